//! `tandem export pacemaker [-c CONFIG] [--crm]`: the configuration as a Pacemaker cluster
//! configuration. Pure from the parsed [`Config`] to a small model ([`Cib`]), then two
//! renderings: a complete CIB in XML ([`cib::render`]) or a `crm configure` script
//! ([`crm::render`]). Whatever Pacemaker cannot express is kept as a note with the reason
//! and printed as a comment, never dropped. docs/pacemaker.md has the mapping table.
//!
//! The file is read without this host's facts (no key, no local node), so the export runs
//! anywhere.

pub mod cib;
pub mod crm;
mod stonith;

use std::path::Path;

use crate::agent::ocf::ra;
use crate::config::{self, Config, GroupConfig, Resource, ResourceSpec};
use crate::time::Duration;

/// The preferred node's location score.
pub const PREFERRED_SCORE: i64 = 100;
/// `resource-stickiness` with `auto_failback off`: larger than [`PREFERRED_SCORE`], so a
/// group stays where it runs when its preferred node returns, and smaller than INFINITY, so
/// `crm resource move` still works.
pub const STICKY: i64 = 200;

/// A location score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    Value(i64),
    Infinity,
    MinusInfinity,
}

impl Score {
    pub fn cib(self) -> String {
        match self {
            Score::Value(v) => v.to_string(),
            Score::Infinity => "INFINITY".to_string(),
            Score::MinusInfinity => "-INFINITY".to_string(),
        }
    }
}

/// One operation of a primitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpDef {
    pub name: &'static str,
    pub interval: Duration,
    pub timeout: Duration,
}

/// A resource agent instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primitive {
    pub id: String,
    /// `ocf`, `lsb` or `stonith`.
    pub class: &'static str,
    pub provider: Option<String>,
    pub agent: String,
    pub params: Vec<(String, String)>,
    pub ops: Vec<OpDef>,
    /// The resource as tandem's config wrote it, and why this agent was chosen when that
    /// needs saying.
    pub notes: Vec<String>,
}

impl Primitive {
    /// `ocf:heartbeat:IPaddr2`, `lsb:apache2`, `stonith:fence_ipmilan`.
    pub fn agent_spec(&self) -> String {
        match &self.provider {
            Some(p) => format!("{}:{p}:{}", self.class, self.agent),
            None => format!("{}:{}", self.class, self.agent),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub members: Vec<Primitive>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub id: String,
    pub rsc: String,
    pub node: String,
    pub score: Score,
}

/// The cluster as Pacemaker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cib {
    /// The source file, for the header.
    pub source: String,
    pub cluster: String,
    pub nodes: Vec<String>,
    /// `cib-bootstrap-options`.
    pub properties: Vec<(String, String)>,
    /// `rsc_defaults`.
    pub rsc_defaults: Vec<(String, String)>,
    pub groups: Vec<Group>,
    pub fencing: Vec<Primitive>,
    pub locations: Vec<Location>,
    /// What does not fit the CIB: printed as comments at the top.
    pub notes: Vec<String>,
}

/// `tandem export ARGS…`; returns the exit code.
pub fn command(rest: &[String]) -> i32 {
    let a = match super::args::parse_args(rest, &["-c", "--config"], &["--crm"]) {
        Ok(a) => a,
        Err(e) => return super::usage_error(&e),
    };
    if a.words.first().map(String::as_str) != Some("pacemaker") || a.words.len() != 1 {
        return super::usage_error("export: usage: tandem export pacemaker [-c CONFIG] [--crm]");
    }
    let path = a.get(&["-c", "--config"]).unwrap_or_else(|| crate::daemon::DEFAULT_CONFIG.to_string());
    let path = Path::new(&path);
    let parsed = match config::read_config_file(path).map_err(|e| vec![e]).and_then(|t| config::parse_str(path, &t)) {
        Ok(p) => p,
        Err(errs) => {
            for e in errs {
                eprintln!("{e}");
            }
            return 2;
        }
    };
    let model = build(&parsed.config);
    if a.has("--crm") {
        print!("{}", crm::render(&model));
    } else {
        print!("{}", cib::render(&model));
    }
    0
}

/// The Pacemaker model of a configuration.
pub fn build(c: &Config) -> Cib {
    let mut notes = vec![
        format!(
            "tandem's links, keepalive {}, deadtime {}, initdead {} and authkey belong to corosync.conf, \
             not to the CIB: see the corosync notes below.",
            fmt(c.keepalive),
            fmt(c.deadtime),
            fmt(c.initdead)
        ),
        corosync_notes(c),
    ];
    if c.links.iter().any(|l| matches!(l, config::LinkConfig::Serial { .. })) {
        notes.push(
            "serial links cannot be expressed: corosync has no serial transport; give it a second \
             network link (a knet link per interface) instead."
                .to_string(),
        );
    }
    if !c.ping.is_empty() {
        let addrs: Vec<String> = c.ping.iter().map(|a| a.to_string()).collect();
        notes.push(format!(
            "ping {} is not exported: Pacemaker's equivalent is a cloned ocf:pacemaker:ping \
             (host_list=\"{}\") with a location rule on its pingd attribute; choose the rule yourself.",
            addrs.join(" "),
            addrs.join(" ")
        ));
    }
    let mut groups = Vec::new();
    let mut locations = Vec::new();
    for g in &c.groups {
        let gid = config::resource::xml_id(&g.name);
        groups.push(Group {
            id: gid.clone(),
            members: g
                .resources
                .iter()
                .enumerate()
                .map(|(i, r)| primitive(c, g, i, r, g.monitor.get(i).copied().flatten()))
                .collect(),
        });
        if let Some(pref) = c.nodes.get(usize::from(g.preferred)) {
            locations.push(Location {
                id: config::resource::xml_id(&format!("loc-{}-{pref}", g.name)),
                rsc: gid,
                node: pref.clone(),
                score: Score::Value(PREFERRED_SCORE),
            });
        }
    }
    let (fencing, fence_locs, fence_notes, all_fenced) = stonith::devices(c);
    locations.extend(fence_locs);
    notes.extend(fence_notes);
    let stonith_enabled = all_fenced && !c.nodes.is_empty();
    if !stonith_enabled {
        notes.push(
            "stonith-enabled=false: not every node has a fencing device Pacemaker can run (see the notes \
             above). Pacemaker does not recover a node's resources safely without fencing; add devices \
             and set stonith-enabled=true."
                .to_string(),
        );
    }
    let properties = vec![("stonith-enabled".to_string(), stonith_enabled.to_string())];
    let stickiness = if c.auto_failback { 0 } else { STICKY };
    let mut rsc_defaults = vec![("resource-stickiness".to_string(), stickiness.to_string())];
    if c.groups.iter().any(|g| g.monitor.iter().any(Option::is_some)) {
        let (defaults, policy_notes) = failure_policy(c);
        rsc_defaults.extend(defaults);
        notes.extend(policy_notes);
    }
    for n in &c.notify {
        notes.push(format!(
            "notify {} is not exported: Pacemaker's equivalent is an alert agent (<alerts>, \
             /usr/share/pacemaker/alerts/), which gets CRM_alert_* variables instead of tandem's; \
             adapt the program and add it yourself.",
            n.path.display()
        ));
    }
    if let Some(a) = c.metrics_listen {
        notes.push(format!(
            "metrics_listen {a} is not exported: Pacemaker serves no metrics; a separate exporter \
             (e.g. ha_cluster_exporter) reads crm_mon instead."
        ));
    }
    Cib {
        source: c.file.display().to_string(),
        cluster: c.cluster.clone(),
        nodes: c.nodes.clone(),
        properties,
        rsc_defaults,
        groups,
        fencing,
        locations,
        notes,
    }
}

fn fmt(d: Duration) -> String {
    crate::time::fmt_duration(d)
}

/// What corosync.conf needs to say what tandem's timing and links say.
fn corosync_notes(c: &Config) -> String {
    let token = c.deadtime.as_millis();
    let mut addrs: Vec<String> = c
        .links
        .iter()
        .filter_map(|l| match l {
            config::LinkConfig::Ucast { iface, peer, .. } => Some(format!("{peer} ({iface})")),
            config::LinkConfig::Bcast { iface, .. } => Some(format!("broadcast on {iface}")),
            config::LinkConfig::Mcast { iface, group, .. } => Some(format!("multicast {group} on {iface}")),
            config::LinkConfig::Serial { .. } => None,
        })
        .collect();
    addrs.dedup();
    let nodes: Vec<String> =
        c.nodes.iter().enumerate().map(|(i, n)| format!("node {{ name: {n}; nodeid: {} }}", i + 1)).collect();
    format!(
        "corosync.conf: totem {{ cluster_name: {}; transport: knet; token: {token} }} \
         (token = tandem's deadtime); quorum {{ provider: corosync_votequorum; two_node: 1 }} \
         (two nodes keep quorum when one dies); nodelist {{ {} }} with each node's ring0_addr from \
         tandem's links ({}). The node ids must be the ones in this CIB's <nodes>.",
        c.cluster,
        nodes.join(" "),
        if addrs.is_empty() { "none".to_string() } else { addrs.join(", ") }
    )
}

/// The operations, with tandem's deadlines. `monitor` is the resource's `monitor` interval
/// (a recurring monitor); a resource tandem does not monitor gets a monitor op with interval
/// 0, which only sets the timeout of Pacemaker's probes.
fn ops(c: &Config, monitor: Option<Duration>) -> Vec<OpDef> {
    vec![
        OpDef { name: "start", interval: Duration::ZERO, timeout: c.timeouts.start },
        OpDef { name: "stop", interval: Duration::ZERO, timeout: c.timeouts.stop },
        OpDef { name: "monitor", interval: monitor.unwrap_or(Duration::ZERO), timeout: c.timeouts.status },
    ]
}

/// What tandem's failure policy becomes: `migration-threshold` (the failures on a node
/// before the resource leaves it: tandem's in-place restarts, plus the one that moves the
/// group) and `failure-timeout`; and the notes for what has no equivalent.
fn failure_policy(c: &Config) -> (Vec<(String, String)>, Vec<String>) {
    let f = &c.failure;
    let mut defaults = vec![("migration-threshold".to_string(), (u64::from(f.restart_limit) + 1).to_string())];
    if let Some(t) = f.failure_timeout {
        defaults.push(("failure-timeout".to_string(), cib::secs(t)));
    }
    let notes = vec![format!(
        "restart_window {} has no Pacemaker equivalent: a resource's fail count does not age out of a \
         window, it is cleared all at once by failure-timeout{} or `crm resource cleanup`.",
        fmt(f.restart_window),
        if f.failure_timeout.is_some() { "" } else { " (tandem's failure_timeout is 0: none set)" }
    )];
    (defaults, notes)
}

/// The primitive for resource `i` of group `g`: a stock agent where one exists and means
/// the same, else tandem's own (`ocf:tandem:*`).
fn primitive(c: &Config, g: &GroupConfig, i: usize, r: &Resource, monitor: Option<Duration>) -> Primitive {
    let id = config::instance_name(&g.name, i, &r.spec);
    let mut p = Primitive {
        id,
        class: "ocf",
        provider: Some(ra::PROVIDER.to_string()),
        agent: String::new(),
        params: Vec::new(),
        ops: ops(c, monitor),
        notes: vec![format!("tandem: {}", r.text)],
    };
    let own = |p: &mut Primitive, why: Option<&str>| {
        if let Some((agent, params)) = ra::params_of(&r.spec) {
            p.agent = agent.name.to_string();
            p.params = params;
        }
        if let Some(w) = why {
            p.notes.push(w.to_string());
        }
    };
    match &r.spec {
        ResourceSpec::Ip(ip) => {
            // IPaddr2's iflabel is appended to the interface name; a whole label naming
            // another interface cannot be said that way.
            let label_ok = match (&ip.label, &ip.iface) {
                (Some(l), Some(i)) if l.contains(':') => l.strip_prefix(&format!("{i}:")).is_some(),
                _ => true,
            };
            if !label_ok {
                own(&mut p, Some("ocf:tandem:ip: the label names another interface, which IPaddr2's iflabel cannot"));
                return p;
            }
            own(&mut p, None);
            p.provider = Some("heartbeat".to_string());
            p.agent = "IPaddr2".to_string();
            if let (Some(l), Some(i)) = (&ip.label, &ip.iface) {
                for kv in p.params.iter_mut().filter(|(k, _)| k == "iflabel") {
                    kv.1 = l.strip_prefix(&format!("{i}:")).unwrap_or(l).to_string();
                }
            }
            if c.garp_count != config::DEFAULT_GARP_COUNT {
                p.params.push(("arp_count".to_string(), c.garp_count.to_string()));
            }
            if c.garp_interval != config::DEFAULT_GARP_INTERVAL {
                p.params.push(("arp_interval".to_string(), c.garp_interval.as_millis().to_string()));
            }
        }
        ResourceSpec::Mount(m) if m.fstype.is_some() => {
            own(&mut p, None);
            p.provider = Some("heartbeat".to_string());
            p.agent = "Filesystem".to_string();
            // UUID=/LABEL= as the links tandem's mount agent resolves them to.
            for kv in p.params.iter_mut().filter(|(k, _)| k == "device") {
                if let Some(u) = m.device.strip_prefix("UUID=") {
                    kv.1 = format!("/dev/disk/by-uuid/{u}");
                } else if let Some(l) = m.device.strip_prefix("LABEL=") {
                    kv.1 = format!("/dev/disk/by-label/{l}");
                }
            }
            // tandem's mount runs no fsck (the kernel replays the journal).
            p.params.push(("run_fsck".to_string(), "no".to_string()));
        }
        ResourceSpec::Mount(_) => {
            own(&mut p, Some("ocf:tandem:mount: Filesystem needs the filesystem type, and this mount has none"));
        }
        ResourceSpec::Drbd(_) => own(
            &mut p,
            Some(
                "ocf:tandem:drbd (primary on start, secondary on stop, like heartbeat's drbddisk): Pacemaker's \
                 native alternative is a promotable ocf:linbit:drbd clone with colocation and order \
                 constraints on this group, a different model",
            ),
        ),
        ResourceSpec::Lvm(_) => own(
            &mut p,
            Some(
                "ocf:tandem:lvm: heartbeat's LVM is deprecated, and LVM-activate needs a vg_access_mode \
                 (system_id, tagging, lvmlockd) that changes what activation means",
            ),
        ),
        ResourceSpec::Script(s) => {
            let lsb_name = s
                .path
                .strip_prefix("/etc/init.d")
                .ok()
                .and_then(|n| n.to_str())
                .filter(|n| !n.is_empty() && !n.contains('/'));
            match lsb_name {
                Some(name) if s.args.is_empty() => {
                    p.class = "lsb";
                    p.provider = None;
                    p.agent = name.to_string();
                }
                _ => own(
                    &mut p,
                    Some("ocf:tandem:script: Pacemaker's lsb class takes only /etc/init.d scripts without arguments"),
                ),
            }
        }
        ResourceSpec::Guest(_) => own(&mut p, None),
        ResourceSpec::Ocf(o) => {
            p.provider = Some(o.provider.clone());
            p.agent = o.agent_type.clone();
            p.params = o.params.clone();
        }
    }
    p
}

#[cfg(test)]
mod tests;
