//! The model as a `crm configure` script (crmsh), for
//! `crm configure load update FILE`. Notes become `#` comments.

use super::cib::secs;
use super::{Cib, Primitive, Score};

/// Renders the script.
pub fn render(m: &Cib) -> String {
    let mut s = String::with_capacity(4096);
    s.push_str(&format!(
        "# crm configure script of tandem cluster {}, made by `tandem export pacemaker` (tandem {})\n\
         # from {}. Load it with `crm configure load update FILE`.\n",
        m.cluster,
        env!("CARGO_PKG_VERSION"),
        m.source
    ));
    for n in &m.notes {
        s.push_str(&comment(n));
    }
    for (i, n) in m.nodes.iter().enumerate() {
        s.push_str(&format!("node {}: {n}\n", i + 1));
    }
    for d in &m.fencing {
        primitive(&mut s, d);
    }
    for g in &m.groups {
        for p in &g.members {
            primitive(&mut s, p);
        }
        let ids: Vec<&str> = g.members.iter().map(|p| p.id.as_str()).collect();
        s.push_str(&format!("group {} {}\n", g.id, ids.join(" ")));
    }
    for l in &m.locations {
        let score = match l.score {
            Score::Value(v) => v.to_string(),
            Score::Infinity => "inf".to_string(),
            Score::MinusInfinity => "-inf".to_string(),
        };
        s.push_str(&format!("location {} {} {score}: {}\n", l.id, l.rsc, l.node));
    }
    let props: Vec<String> = m.properties.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    s.push_str(&format!("property cib-bootstrap-options: {}\n", props.join(" ")));
    let defs: Vec<String> = m.rsc_defaults.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    s.push_str(&format!("rsc_defaults rsc-options: {}\n", defs.join(" ")));
    s
}

fn primitive(s: &mut String, p: &Primitive) {
    for n in &p.notes {
        s.push_str(&comment(n));
    }
    s.push_str(&format!("primitive {} {}", p.id, p.agent_spec()));
    if !p.params.is_empty() {
        s.push_str(" \\\n    params");
        for (k, v) in &p.params {
            s.push_str(&format!(" {k}={}", quote(v)));
        }
    }
    for o in &p.ops {
        s.push_str(&format!(" \\\n    op {} interval={} timeout={}", o.name, secs(o.interval), secs(o.timeout)));
    }
    s.push('\n');
}

/// A value in double quotes, with `"` and `\` escaped.
fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn comment(text: &str) -> String {
    format!("# {}\n", super::cib::comment_text(text))
}
