//! The model as a complete Pacemaker CIB (XML), for `cibadmin --replace --xml-file` or
//! `crm_verify --xml-file`. Notes become XML comments.

use super::{Cib, Primitive};
use crate::agent::ocf::ra::escape;
use crate::config::resource::xml_id;
use crate::time::Duration;

/// The CIB schema the output validates against (Pacemaker 2.1).
pub const VALIDATE_WITH: &str = "pacemaker-3.9";

/// Renders the whole CIB.
pub fn render(m: &Cib) -> String {
    let mut x = String::with_capacity(8192);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&comment(
        0,
        &format!(
            "Pacemaker configuration of tandem cluster {}, made by `tandem export pacemaker` (tandem {}) \
             from {}. Check it with `crm_verify -x FILE`; load it into a running cluster with \
             `cibadmin -R -o configuration -x FILE` (replacing the whole CIB is refused: a running cluster's \
             epoch is newer).",
            m.cluster,
            env!("CARGO_PKG_VERSION"),
            m.source
        ),
    ));
    for n in &m.notes {
        x.push_str(&comment(0, n));
    }
    x.push_str(&format!(
        "<cib validate-with=\"{VALIDATE_WITH}\" admin_epoch=\"0\" epoch=\"1\" num_updates=\"0\">\n  <configuration>\n"
    ));
    x.push_str("    <crm_config>\n      <cluster_property_set id=\"cib-bootstrap-options\">\n");
    for (k, v) in &m.properties {
        x.push_str(&nvpair(8, "cib-bootstrap-options", k, v));
    }
    x.push_str("      </cluster_property_set>\n    </crm_config>\n    <nodes>\n");
    for (i, n) in m.nodes.iter().enumerate() {
        x.push_str(&format!("      <node id=\"{}\" uname=\"{}\"/>\n", i + 1, escape(n)));
    }
    x.push_str("    </nodes>\n    <resources>\n");
    for d in &m.fencing {
        primitive(&mut x, 6, d);
    }
    for g in &m.groups {
        x.push_str(&format!("      <group id=\"{}\">\n", g.id));
        for p in &g.members {
            primitive(&mut x, 8, p);
        }
        x.push_str("      </group>\n");
    }
    x.push_str("    </resources>\n    <constraints>\n");
    for l in &m.locations {
        x.push_str(&format!(
            "      <rsc_location id=\"{}\" rsc=\"{}\" node=\"{}\" score=\"{}\"/>\n",
            l.id,
            l.rsc,
            escape(&l.node),
            l.score.cib()
        ));
    }
    x.push_str("    </constraints>\n    <rsc_defaults>\n      <meta_attributes id=\"rsc-options\">\n");
    for (k, v) in &m.rsc_defaults {
        x.push_str(&nvpair(8, "rsc-options", k, v));
    }
    x.push_str("      </meta_attributes>\n    </rsc_defaults>\n  </configuration>\n  <status/>\n</cib>\n");
    x
}

fn primitive(x: &mut String, ind: usize, p: &Primitive) {
    let pad = " ".repeat(ind);
    for n in &p.notes {
        x.push_str(&comment(ind, n));
    }
    let provider = p.provider.as_ref().map(|v| format!(" provider=\"{}\"", escape(v))).unwrap_or_default();
    x.push_str(&format!(
        "{pad}<primitive id=\"{}\" class=\"{}\"{provider} type=\"{}\">\n",
        p.id,
        p.class,
        escape(&p.agent)
    ));
    if !p.params.is_empty() {
        let set = format!("{}-instance_attributes", p.id);
        x.push_str(&format!("{pad}  <instance_attributes id=\"{set}\">\n"));
        for (k, v) in &p.params {
            x.push_str(&nvpair(ind + 4, &set, k, v));
        }
        x.push_str(&format!("{pad}  </instance_attributes>\n"));
    }
    x.push_str(&format!("{pad}  <operations>\n"));
    for o in &p.ops {
        x.push_str(&format!(
            "{pad}    <op id=\"{}\" name=\"{}\" interval=\"{}\" timeout=\"{}\"/>\n",
            xml_id(&format!("{}-{}-interval-{}", p.id, o.name, secs(o.interval))),
            o.name,
            secs(o.interval),
            secs(o.timeout)
        ));
    }
    x.push_str(&format!("{pad}  </operations>\n{pad}</primitive>\n"));
}

fn nvpair(ind: usize, set: &str, k: &str, v: &str) -> String {
    format!(
        "{}<nvpair id=\"{}\" name=\"{}\" value=\"{}\"/>\n",
        " ".repeat(ind),
        xml_id(&format!("{set}-{k}")),
        escape(k),
        escape(v)
    )
}

/// `10s`, `1500ms`: Pacemaker's interval and timeout syntax.
pub fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An XML comment.
fn comment(ind: usize, text: &str) -> String {
    format!("{}<!-- {} -->\n", " ".repeat(ind), comment_text(text))
}

/// `text` made fit for a comment: no `--` inside and no `-` at the end (XML's rule, which
/// crmsh applies to its comments too, since it stores them in the CIB).
pub fn comment_text(text: &str) -> String {
    let mut t = text.replace('\n', " ");
    while t.contains("--") {
        t = t.replace("--", "- -");
    }
    if t.ends_with('-') {
        t.push('.');
    }
    t
}
