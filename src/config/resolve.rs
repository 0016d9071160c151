//! Validation: raw directives → [`Parsed`] (pure), then [`apply_host`] resolves the parts that
//! depend on the host (which node we are, our own addresses, which interfaces exist).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use super::parsed::Parsed;
use super::raw::{Directive, RawLine, RawLink, TimeKey};
use super::resource::ResourceSpec;
use super::{Config, ConfigError, ConfigWarning, GroupConfig, LinkConfig, NodeId, StonithConfig, Timeouts};
use crate::time::Duration;

/// Directives that may appear on several lines (their values accumulate).
const LIST_DIRECTIVES: [&str; 10] =
    ["node", "ucast", "bcast", "mcast", "serial", "ping", "stonith", "group", "monitor", "notify"];

/// Cross-line validation. `errs` holds the `(line, message)` errors from `raw`.
pub fn resolve(file: &Path, raws: Vec<RawLine>, errs: Vec<(usize, String)>) -> Result<Parsed, Vec<ConfigError>> {
    let mut c = collect(raws, errs);
    c.check_required();
    let nodes = c.node_names();
    let t = c.timing();
    let (links, link_lines) = c.links();
    let stonith = c.stonith(&nodes);
    let mut groups = c.groups(&nodes);
    c.monitors(&mut groups);
    let mut warnings = c.warnings(file, &stonith);
    warnings.extend(port_warnings(file, &links, &link_lines));
    warnings.extend(guest_stop_warnings(file, &groups, t.timeouts.stop));

    if !c.errs.is_empty() {
        let mut errs = c.errs;
        errs.sort_by_key(|(l, _)| *l);
        return Err(errs.into_iter().map(|(line, msg)| ConfigError { file: file.to_path_buf(), line, msg }).collect());
    }
    let protocol = c.protocol(&groups);
    let (authkey, authkey_line) = c.authkey.clone().unwrap_or_default();
    let (authkey_accept, authkey_accept_line) = match c.authkey_accept.clone() {
        Some((p, l)) => (Some(p), l),
        None => (None, 0),
    };
    let config = Config {
        file: file.to_path_buf(),
        cluster: c.cluster.unwrap_or_default(),
        nodes: nodes.names,
        local: 0,
        authkey,
        key: super::Key::default(),
        authkey_accept,
        accept_key: None,
        keepalive: t.keepalive,
        warntime: t.warntime,
        deadtime: t.deadtime,
        initdead: t.initdead,
        auto_failback: c.auto_failback,
        udpport: c.udpport,
        links,
        ping: c.ping,
        failure: super::FailurePolicy {
            restart_limit: c.restart_limit,
            restart_window: t.restart_window,
            failure_timeout: t.failure_timeout,
        },
        ping_policy: super::PingPolicy {
            interval: t.ping_interval,
            deadtime: t.ping_deadtime,
            hold: t.ping_hold,
            isolated_stop: c.isolated_stop,
        },
        watchdog: c.watchdog.map(|(device, timeout, line)| super::WatchdogConfig { device, timeout, line }),
        fencing: super::FencePolicy {
            delay: t.fence_delay,
            timeout: t.fence_timeout,
            check: Some(t.fence_check).filter(|d| !d.is_zero()),
            // With fencing configured, both default to on (docs/fencing.md).
            wait_for_peer: c.wait_for_peer.unwrap_or(!stonith.is_empty()),
            required: c.stonith_required.unwrap_or(!stonith.is_empty()),
        },
        stonith,
        socket: c.socket,
        statedir: c.statedir,
        logfacility: c.logfacility,
        logfile: c.logfile,
        groups,
        timeouts: t.timeouts,
        garp_count: c.garp_count,
        garp_interval: t.garp_interval,
        realtime: c.realtime,
        notify: c.notify.into_iter().map(|(path, line)| super::NotifyHook { path, line }).collect(),
        notify_timeout: t.notify_timeout,
        metrics_listen: c.metrics_listen,
        protocol,
    };
    Ok(Parsed { config, link_lines, node_line: c.node_line, authkey_line, authkey_accept_line, warnings })
}

/// Every directive's value, collected line by line, with the errors found so far.
struct Collected {
    errs: Vec<(usize, String)>,
    /// Directives given with a bad value (already reported: no follow-up errors about them).
    bad: Vec<&'static str>,
    cluster: Option<String>,
    nodes: Vec<(String, usize)>,
    node_line: usize,
    authkey: Option<(PathBuf, usize)>,
    authkey_accept: Option<(PathBuf, usize)>,
    times: HashMap<TimeKey, (Duration, usize)>,
    auto_failback: bool,
    realtime: bool,
    wait_for_peer: Option<bool>,
    stonith_required: Option<bool>,
    isolated_stop: bool,
    watchdog: Option<(PathBuf, Duration, usize)>,
    restart_limit: u32,
    monitors: Vec<(Option<Duration>, Vec<String>, usize)>,
    udpport: u16,
    garp_count: u32,
    links: Vec<(RawLink, usize)>,
    ping: Vec<IpAddr>,
    ping_lines: Vec<usize>,
    stonith: Vec<(String, super::FenceMethod, usize)>,
    socket: Option<PathBuf>,
    statedir: Option<PathBuf>,
    logfacility: Option<String>,
    logfile: Option<PathBuf>,
    groups: Vec<(String, String, Vec<super::Resource>, usize)>,
    notify: Vec<(PathBuf, usize)>,
    metrics_listen: Option<SocketAddr>,
    /// `protocol heartbeat` (its line), `hb_authkeys`, `auto_failback legacy` (its line).
    protocol_hb: Option<usize>,
    hb_authkeys: Option<(PathBuf, usize)>,
    failback_legacy: Option<usize>,
}

/// The node names and how to look them up.
struct Nodes {
    names: Vec<String>,
    /// The node list is usable (given, and not bad): unknown-node errors make sense.
    known: bool,
}

impl Nodes {
    fn id(&self, n: &str) -> Option<NodeId> {
        self.names.iter().position(|m| m == n).and_then(|i| NodeId::try_from(i).ok())
    }
    fn list(&self) -> String {
        self.names.join(" ")
    }
}

/// The resolved timers.
struct Times {
    keepalive: Duration,
    warntime: Duration,
    deadtime: Duration,
    initdead: Duration,
    timeouts: Timeouts,
    garp_interval: Duration,
    fence_delay: Option<Duration>,
    fence_timeout: Duration,
    fence_check: Duration,
    ping_interval: Duration,
    ping_deadtime: Duration,
    ping_hold: Duration,
    restart_window: Duration,
    failure_timeout: Option<Duration>,
    notify_timeout: Duration,
}

/// One pass over the directives: values, duplicates of single-valued directives.
fn collect(raws: Vec<RawLine>, errs: Vec<(usize, String)>) -> Collected {
    let mut c = Collected {
        errs,
        bad: Vec::new(),
        cluster: None,
        nodes: Vec::new(),
        node_line: 0,
        authkey: None,
        authkey_accept: None,
        times: HashMap::new(),
        auto_failback: false,
        realtime: true,
        wait_for_peer: None,
        stonith_required: None,
        isolated_stop: true,
        watchdog: None,
        restart_limit: super::DEFAULT_RESTART_LIMIT,
        monitors: Vec::new(),
        udpport: 694,
        garp_count: super::DEFAULT_GARP_COUNT,
        links: Vec::new(),
        ping: Vec::new(),
        ping_lines: Vec::new(),
        stonith: Vec::new(),
        socket: None,
        statedir: None,
        logfacility: Some("daemon".to_string()),
        logfile: None,
        groups: Vec::new(),
        notify: Vec::new(),
        metrics_listen: None,
        protocol_hb: None,
        hb_authkeys: None,
        failback_legacy: None,
    };
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for r in raws {
        let line = r.line;
        if !LIST_DIRECTIVES.contains(&r.name) {
            if let Some(first) = seen.get(r.name) {
                c.errs.push((line, format!("{} is already set at line {first}", r.name)));
                continue;
            }
            seen.insert(r.name, line);
        }
        match r.directive {
            Directive::Bad => {
                if r.name == "node" && c.node_line == 0 {
                    c.node_line = line;
                }
                c.bad.push(r.name);
            }
            Directive::Cluster(v) => c.cluster = Some(v),
            Directive::Node(ns) => {
                if c.node_line == 0 {
                    c.node_line = line;
                }
                for n in ns {
                    if let Some((_, l)) = c.nodes.iter().find(|(m, _)| *m == n) {
                        c.errs.push((line, format!("duplicate node '{n}' (already named at line {l})")));
                    } else {
                        c.nodes.push((n, line));
                    }
                }
            }
            Directive::Authkey(p) => c.authkey = Some((p, line)),
            Directive::AuthkeyAccept(p) => c.authkey_accept = Some((p, line)),
            Directive::Time(k, d) => {
                c.times.insert(k, (d, line));
            }
            Directive::AutoFailback(b) => c.auto_failback = b,
            Directive::WaitForPeer(b) => c.wait_for_peer = Some(b),
            Directive::StonithRequired(b) => c.stonith_required = Some(b),
            Directive::IsolatedStop(b) => c.isolated_stop = b,
            Directive::Watchdog { device, timeout } => c.watchdog = Some((device, timeout, line)),
            Directive::Realtime(b) => c.realtime = b,
            Directive::Udpport(p) => c.udpport = p,
            Directive::GarpCount(n) => c.garp_count = n,
            Directive::RestartLimit(n) => c.restart_limit = n,
            Directive::Monitor { interval, targets } => c.monitors.push((interval, targets, line)),
            Directive::Link(l) => c.links.push((l, line)),
            Directive::Ping(v) => {
                c.ping_lines.push(line);
                for ip in v {
                    if c.ping.contains(&ip) {
                        c.errs.push((line, format!("ping: {ip} is listed twice")));
                    } else {
                        c.ping.push(ip);
                    }
                }
            }
            Directive::Stonith { node, method } => c.stonith.push((node, method, line)),
            Directive::Socket(p) => c.socket = Some(p),
            Directive::Statedir(p) => c.statedir = Some(p),
            Directive::Logfacility(f) => c.logfacility = f,
            Directive::Logfile(p) => c.logfile = Some(p),
            Directive::ProtocolHeartbeat(hb) => c.protocol_hb = hb.then_some(line),
            Directive::HbAuthkeys(p) => c.hb_authkeys = Some((p, line)),
            Directive::AutoFailbackLegacy => c.failback_legacy = Some(line),
            Directive::Group { name, preferred, resources } => c.groups.push((name, preferred, resources, line)),
            Directive::Notify(p) => {
                if let Some((_, l)) = c.notify.iter().find(|(q, _)| *q == p) {
                    c.errs.push((line, format!("notify: {} is already named at line {l}", p.display())));
                } else {
                    c.notify.push((p, line));
                }
            }
            Directive::MetricsListen(a) => c.metrics_listen = Some(a),
        }
    }
    c
}

impl Collected {
    fn is_bad(&self, name: &str) -> bool {
        self.bad.contains(&name)
    }

    /// Required directives (missing ones are reported for the whole file: line 0).
    fn check_required(&mut self) {
        if self.cluster.is_none() && !self.is_bad("cluster") {
            self.errs.push((0, "missing required directive 'cluster'".to_string()));
        }
        if self.node_line == 0 {
            self.errs.push((0, "missing required directive 'node'".to_string()));
        } else if self.nodes.len() != 2 && !self.is_bad("node") {
            self.errs.push((self.node_line, format!("exactly two nodes are needed, found {}", self.nodes.len())));
        }
        super::hacompat::check_tandem_conf_protocol(
            self.protocol_hb,
            &self.authkey,
            &self.hb_authkeys,
            self.failback_legacy,
            self.is_bad("authkey") || self.is_bad("hb_authkeys"),
            &mut self.errs,
        );
    }

    /// The wire protocol (`protocol`, with `hb_authkeys` and `auto_failback`).
    fn protocol(&self, groups: &[GroupConfig]) -> super::Protocol {
        match (self.protocol_hb, &self.hb_authkeys) {
            (Some(_), Some((path, line))) => {
                let failback = match (self.failback_legacy, self.auto_failback) {
                    (Some(_), _) => super::HbFailback::Legacy,
                    (None, true) => super::HbFailback::On,
                    (None, false) => super::HbFailback::Off,
                };
                super::Protocol::Heartbeat(Box::new(super::hacompat::settings_for_tandem_conf(
                    path.clone(),
                    *line,
                    failback,
                    groups,
                )))
            }
            _ => super::Protocol::Tandem,
        }
    }

    fn node_names(&self) -> Nodes {
        let names: Vec<String> = self.nodes.iter().map(|(n, _)| n.clone()).collect();
        Nodes { known: !names.is_empty() && !self.is_bad("node"), names }
    }

    /// Timers with their defaults, and the rules between them.
    fn timing(&mut self) -> Times {
        let get = |k: TimeKey| self.times.get(&k).copied();
        let (keepalive, ka_line) = get(TimeKey::Keepalive).unwrap_or((Duration::from_secs(1), 0));
        let (deadtime, dt_line) = get(TimeKey::Deadtime).unwrap_or((Duration::from_secs(10), 0));
        let fmt = crate::time::fmt_duration;
        let (ka_bad, dt_bad) = (self.is_bad("keepalive"), self.is_bad("deadtime"));
        let mut errs = Vec::new();
        if deadtime <= keepalive.saturating_mul(2) && !ka_bad && !dt_bad {
            let line = if dt_line != 0 { dt_line } else { ka_line };
            let default = if dt_line == 0 { " (deadtime defaults to 10s)" } else { "" };
            errs.push((
                line,
                format!("deadtime ({}) must be more than 2 × keepalive ({}){default}", fmt(deadtime), fmt(keepalive)),
            ));
        }
        let warntime = match get(TimeKey::Warntime) {
            Some((w, line)) => {
                if dt_bad || ka_bad {
                    // Compared with a value that was not understood: nothing to say.
                } else if w >= deadtime {
                    errs.push((line, format!("warntime ({}) must be less than deadtime ({})", fmt(w), fmt(deadtime))));
                } else if w < keepalive {
                    errs.push((line, format!("warntime ({}) must be at least keepalive ({})", fmt(w), fmt(keepalive))));
                }
                w
            }
            None => deadtime / 2,
        };
        let initdead = match get(TimeKey::Initdead) {
            Some((i, line)) => {
                if i < deadtime && !dt_bad {
                    errs.push((line, format!("initdead ({}) must be at least deadtime ({})", fmt(i), fmt(deadtime))));
                }
                i
            }
            None => deadtime.saturating_mul(2),
        };
        let t = |k: TimeKey, d: Duration| get(k).map(|(v, _)| v).unwrap_or(d);
        let d = Timeouts::default();
        let timeouts = Timeouts {
            start: t(TimeKey::StartTimeout, d.start),
            stop: t(TimeKey::StopTimeout, d.stop),
            status: t(TimeKey::StatusTimeout, d.status),
        };
        let garp_interval = t(TimeKey::GarpInterval, super::DEFAULT_GARP_INTERVAL);
        let fence_delay = get(TimeKey::FenceDelay).map(|(v, _)| v);
        let fence_timeout = t(TimeKey::FenceTimeout, super::DEFAULT_FENCE_TIMEOUT);
        let fence_check = t(TimeKey::FenceCheck, super::DEFAULT_FENCE_CHECK);
        let ping_interval = t(TimeKey::PingInterval, super::DEFAULT_PING_INTERVAL);
        let ping_deadtime = match get(TimeKey::PingDeadtime) {
            Some((d, line)) => {
                if d < ping_interval.saturating_mul(2) {
                    let msg = format!(
                        "ping_deadtime ({}) must be at least twice ping_interval ({})",
                        fmt(d),
                        fmt(ping_interval)
                    );
                    errs.push((line, msg));
                }
                d
            }
            None => super::DEFAULT_PING_DEADTIME.max(ping_interval.saturating_mul(3)),
        };
        let ping_hold = t(TimeKey::PingHold, super::DEFAULT_PING_HOLD);
        let restart_window = t(TimeKey::RestartWindow, super::DEFAULT_RESTART_WINDOW);
        let failure_timeout = get(TimeKey::FailureTimeout).map(|(d, _)| d).filter(|d| !d.is_zero());
        let notify_timeout = t(TimeKey::NotifyTimeout, super::DEFAULT_NOTIFY_TIMEOUT);
        self.errs.extend(errs);
        Times {
            keepalive,
            warntime,
            deadtime,
            initdead,
            timeouts,
            garp_interval,
            fence_delay,
            fence_timeout,
            fence_check,
            ping_interval,
            ping_deadtime,
            ping_hold,
            restart_window,
            failure_timeout,
            notify_timeout,
        }
    }

    /// The links with their ports, without duplicates; and the line of each.
    fn links(&mut self) -> (Vec<LinkConfig>, Vec<usize>) {
        let udpport = self.udpport;
        let mut out: Vec<LinkConfig> = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        for (l, line) in std::mem::take(&mut self.links) {
            let lc = match l {
                RawLink::Ucast { iface, peer, port } => {
                    LinkConfig::Ucast { iface, peer, port: port.unwrap_or(udpport) }
                }
                RawLink::Bcast { iface, port } => LinkConfig::Bcast { iface, port: port.unwrap_or(udpport) },
                RawLink::Mcast { iface, group, port, ttl, loop_ } => {
                    LinkConfig::Mcast { iface, group, port: port.unwrap_or(udpport), ttl, loop_ }
                }
                RawLink::Serial { device, baud, rtscts } => LinkConfig::Serial { device, baud, rtscts },
            };
            if let Some(i) = out.iter().position(|o| same_link(o, &lc)) {
                let first = lines.get(i).copied().unwrap_or(0);
                self.errs.push((line, format!("duplicate link '{}' (already at line {first})", lc.name())));
                continue;
            }
            out.push(lc);
            lines.push(line);
        }
        let link_bad = ["ucast", "bcast", "mcast", "serial"].iter().any(|n| self.is_bad(n));
        if out.is_empty() && !link_bad {
            self.errs.push((0, "no links: need at least one ucast, bcast, mcast or serial line".to_string()));
        }
        (out, lines)
    }

    /// One stonith line per known node.
    fn stonith(&mut self, nodes: &Nodes) -> Vec<StonithConfig> {
        let mut out: Vec<StonithConfig> = Vec::new();
        for (node, method, line) in std::mem::take(&mut self.stonith) {
            let Some(id) = nodes.id(&node) else {
                if nodes.known {
                    self.errs.push((line, format!("stonith: unknown node '{node}' (nodes: {})", nodes.list())));
                }
                continue;
            };
            if let Some(s) = out.iter().find(|s| s.node == id) {
                let msg = format!("stonith: node '{node}' already has a stonith line (line {})", s.line);
                self.errs.push((line, msg));
                continue;
            }
            if method == super::FenceMethod::Watchdog && self.watchdog.is_none() {
                self.errs.push((
                    line,
                    format!("stonith {node} watchdog: needs a watchdog line (watchdog DEVICE TIMEOUT, e.g. /dev/watchdog 5s)"),
                ));
                continue;
            }
            out.push(StonithConfig { node: id, method, line });
        }
        out
    }

    /// `monitor` lines: each resource's interval, the most specific line winning
    /// (`GROUP/N` over `GROUP` over a line without targets).
    fn monitors(&mut self, groups: &mut [GroupConfig]) {
        let mut all: Option<(Option<Duration>, usize)> = None;
        let mut per_group: HashMap<String, (Option<Duration>, usize)> = HashMap::new();
        let mut per_res: HashMap<(String, usize), (Option<Duration>, usize)> = HashMap::new();
        let names = || groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(" ");
        for (interval, targets, line) in std::mem::take(&mut self.monitors) {
            if targets.is_empty() {
                if let Some((_, l)) = all {
                    self.errs.push((line, format!("monitor: a line for all groups is already given (line {l})")));
                }
                all = Some((interval, line));
                continue;
            }
            for t in targets {
                let (name, res) = match t.split_once('/') {
                    Some((g, n)) => (g.to_string(), Some(n.to_string())),
                    None => (t.clone(), None),
                };
                let Some(g) = groups.iter().find(|g| g.name == name) else {
                    self.errs.push((line, format!("monitor: unknown group '{name}' (groups: {})", names())));
                    continue;
                };
                match res {
                    None => {
                        if let Some((_, l)) = per_group.insert(name.clone(), (interval, line)) {
                            self.errs.push((line, format!("monitor: group {name} already has a monitor line ({l})")));
                        }
                    }
                    Some(n) => match n.parse::<usize>() {
                        Ok(k) if (1..=g.resources.len()).contains(&k) => {
                            if let Some((_, l)) = per_res.insert((name.clone(), k - 1), (interval, line)) {
                                let msg = format!("monitor: {t} already has a monitor line ({l})");
                                self.errs.push((line, msg));
                            }
                        }
                        _ => self.errs.push((
                            line,
                            format!(
                                "monitor: {t}: group {name} has {} resource(s): use {name}/1 to {name}/{}",
                                g.resources.len(),
                                g.resources.len()
                            ),
                        )),
                    },
                }
            }
        }
        for g in groups.iter_mut() {
            g.monitor = (0..g.resources.len())
                .map(|r| {
                    per_res
                        .get(&(g.name.clone(), r))
                        .or_else(|| per_group.get(&g.name))
                        .or(all.as_ref())
                        .and_then(|(i, _)| *i)
                })
                .collect();
        }
    }

    /// Groups: unique names, known preferred nodes, no resource shared by two groups.
    fn groups(&mut self, nodes: &Nodes) -> Vec<GroupConfig> {
        let mut out: Vec<GroupConfig> = Vec::new();
        let mut used: HashMap<String, (String, usize)> = HashMap::new();
        for (n, (name, preferred, resources, line)) in std::mem::take(&mut self.groups).into_iter().enumerate() {
            if n == crate::wire::MAX_GROUPS {
                self.errs.push((line, format!("too many groups (at most {})", crate::wire::MAX_GROUPS)));
            }
            if let Some(g) = out.iter().find(|g| g.name == name) {
                self.errs.push((line, format!("duplicate group '{name}' (already defined at line {})", g.line)));
                continue;
            }
            for r in &resources {
                let id = r.spec.identity();
                if let Some((g, l)) = used.get(&id) {
                    self.errs.push((line, format!("group {name}: {id} is already used by group {g} (line {l})")));
                } else {
                    used.insert(id, (name.clone(), line));
                }
            }
            let Some(pref) = nodes.id(&preferred) else {
                if nodes.known {
                    self.errs
                        .push((line, format!("group {name}: unknown node '{preferred}' (nodes: {})", nodes.list())));
                }
                continue;
            };
            let monitor = Vec::new();
            out.push(GroupConfig { name, preferred: pref, resources, line, monitor });
        }
        out
    }

    fn warnings(&self, file: &Path, stonith: &[StonithConfig]) -> Vec<ConfigWarning> {
        let warn = |line: usize, msg: &str| ConfigError { file: file.to_path_buf(), line, msg: msg.to_string() };
        let mut out = Vec::new();
        if let Some((_, _, line)) = &self.watchdog {
            if !stonith.iter().any(|s| s.method == super::FenceMethod::Watchdog) {
                out.push(warn(*line, "watchdog: no stonith line uses the watchdog method: the device is not opened"));
            }
        }
        out
    }
}

/// A UDP link on a port of 1024 or above: any local user may bind that port before the
/// daemon does (then the daemon cannot start, or, on a kernel that lets them share it,
/// could miss heartbeats); ports below 1024 need root.
fn port_warnings(file: &Path, links: &[LinkConfig], lines: &[usize]) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    for (l, line) in links.iter().zip(lines) {
        let port = match l {
            LinkConfig::Ucast { port, .. } | LinkConfig::Bcast { port, .. } | LinkConfig::Mcast { port, .. } => *port,
            LinkConfig::Serial { .. } => continue,
        };
        if port >= 1024 {
            out.push(ConfigError {
                file: file.to_path_buf(),
                line: *line,
                msg: format!(
                    "{}: port {port} is 1024 or above: an unprivileged local process can bind it before \
                     tandem does; use a port below 1024 (udpport, default 694)",
                    l.name()
                ),
            });
        }
    }
    out
}

/// A guest's own `stop_timeout` (then its cgroup is killed) must fit in the group's stop
/// deadline, or the daemon kills the stop operation first and counts a failed stop.
fn guest_stop_warnings(file: &Path, groups: &[GroupConfig], stop: Duration) -> Vec<ConfigWarning> {
    let margin = Duration::from_secs(20);
    let mut out = Vec::new();
    for g in groups {
        for r in &g.resources {
            if let ResourceSpec::Guest(spec) = &r.spec {
                if spec.stop_timeout + margin > stop {
                    out.push(ConfigError {
                        file: file.to_path_buf(),
                        line: g.line,
                        msg: format!(
                            "group {}: guest {}: stop_timeout {} plus 20s of clean-up is more than stop_timeout {} \
                             of the group's operations; raise stop_timeout",
                            g.name,
                            spec.name,
                            crate::time::fmt_duration(spec.stop_timeout),
                            crate::time::fmt_duration(stop)
                        ),
                    });
                }
            }
        }
    }
    out
}

/// Two link lines are the same medium (ports aside for ucast/mcast: the same peer or group on
/// the same interface twice is a mistake even with different ports).
fn same_link(a: &LinkConfig, b: &LinkConfig) -> bool {
    match (a, b) {
        (LinkConfig::Ucast { iface: i, peer: p, .. }, LinkConfig::Ucast { iface: j, peer: q, .. }) => i == j && p == q,
        (LinkConfig::Bcast { iface: i, port: p }, LinkConfig::Bcast { iface: j, port: q }) => i == j && p == q,
        (LinkConfig::Mcast { iface: i, group: g, .. }, LinkConfig::Mcast { iface: j, group: h, .. }) => {
            i == j && g == h
        }
        (LinkConfig::Serial { device: d, .. }, LinkConfig::Serial { device: e, .. }) => d == e,
        _ => false,
    }
}

/// Errors and warnings of [`apply_host`].
pub type HostErrors = (Vec<ConfigError>, Vec<ConfigWarning>);

/// What [`apply_host`] needs to know about this host.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// `uname -n`.
    pub hostname: String,
    /// Every address of every interface: (interface, address, prefix length).
    pub addrs: Vec<(String, IpAddr, u8)>,
    /// Names of interfaces that exist (at least those the file names).
    pub ifaces: Vec<String>,
    /// Paths that exist (only serial devices are asked about).
    pub existing_paths: Vec<PathBuf>,
}

impl HostFacts {
    fn own_addr(&self, ip: &IpAddr) -> bool {
        self.addrs.iter().any(|(_, a, _)| a == ip)
    }

    fn has_iface(&self, name: &str) -> bool {
        self.ifaces.iter().any(|i| i == name)
    }

    fn subnet_holds(&self, ip: &IpAddr) -> bool {
        self.addrs.iter().any(|(_, a, p)| same_subnet(a, ip, *p))
    }
}

fn same_subnet(a: &IpAddr, b: &IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            a.to_bits() & mask == b.to_bits() & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            a.to_bits() & mask == b.to_bits() & mask
        }
        _ => false,
    }
}

/// Resolves the host facts: which node this is (`node`, else `hostname`, else its short form
/// before the first `.`), drops `ucast` links whose peer is one of this host's own addresses,
/// and checks that every link interface and every explicit `ip` interface exists.
/// Does not read the key. Returns the config (key still empty) and warnings.
pub fn apply_host(
    parsed: &Parsed,
    node: Option<&str>,
    host: &HostFacts,
) -> Result<(Config, Vec<ConfigWarning>), HostErrors> {
    let mut cfg = parsed.config.clone();
    let file = cfg.file.clone();
    let mut errs: Vec<ConfigError> = Vec::new();
    let mut warns: Vec<ConfigWarning> = parsed.warnings.clone();
    let err = |line: usize, msg: String| ConfigError { file: file.clone(), line, msg };

    let pos = |n: &str| cfg.nodes.iter().position(|m| m == n);
    let local = match node {
        Some(n) => pos(n).ok_or_else(|| format!("--node {n} is not in the node list ({})", cfg.nodes.join(" "))),
        None => {
            let short = host.hostname.split('.').next().unwrap_or("");
            pos(&host.hostname).or_else(|| pos(short)).ok_or_else(|| {
                format!(
                    "this host's name '{}' (uname -n) is not in the node list ({}); use --node",
                    host.hostname,
                    cfg.nodes.join(" ")
                )
            })
        }
    };
    match local {
        Ok(i) => cfg.local = NodeId::try_from(i).unwrap_or(0),
        Err(m) => errs.push(err(parsed.node_line, m)),
    }

    let mut links = Vec::new();
    for (l, line) in cfg.links.iter().zip(&parsed.link_lines) {
        match l {
            LinkConfig::Ucast { peer, .. } if host.own_addr(peer) => continue,
            LinkConfig::Ucast { iface, .. } | LinkConfig::Bcast { iface, .. } | LinkConfig::Mcast { iface, .. } => {
                if !host.has_iface(iface) {
                    errs.push(err(*line, format!("interface '{iface}' does not exist on this host")));
                }
            }
            LinkConfig::Serial { device, .. } => {
                if !host.existing_paths.contains(device) {
                    warns.push(err(*line, format!("serial device {} does not exist (yet)", device.display())));
                }
            }
        }
        links.push(l.clone());
    }
    // A node that self-fences needs its watchdog device here.
    let own_watchdog = cfg.stonith.iter().any(|s| s.node == cfg.local && s.method == super::FenceMethod::Watchdog);
    if let (true, Some(w)) = (own_watchdog && errs.is_empty(), &cfg.watchdog) {
        if !host.existing_paths.contains(&w.device) {
            errs.push(err(
                w.line,
                format!(
                    "watchdog {}: no such device on this host (load the board's watchdog driver, e.g. i6300esb or \
                     iTCO_wdt; softdog resets only when the kernel still runs)",
                    w.device.display()
                ),
            ));
        }
    }
    // Say loudly when the peer cannot be fenced, so nobody believes a silent peer is
    // powered off before its groups are taken over.
    if errs.is_empty() && cfg.peer_stonith().is_none() {
        let n = cfg.peer_name();
        warns.push(err(
            0,
            format!(
                "no stonith line for {n}: if {n} goes silent but stays alive, its groups are taken over WITHOUT \
                 powering it off first, and both nodes hold them (docs/fencing.md)"
            ),
        ));
    } else if let (true, Some(s), Some(_)) = (errs.is_empty(), cfg.peer_stonith(), cfg.heartbeat()) {
        // heartbeat's protocol fences with the peer's line as heartbeat does (a power method, or
        // manual as meatware), before any takeover; only the watchdog method has no place in it.
        if s.method == super::FenceMethod::Watchdog {
            let n = cfg.peer_name();
            warns.push(err(
                s.line,
                format!(
                    "stonith {n} watchdog does not run over heartbeat's protocol: if {n} goes silent but stays \
                     alive, its groups are taken over WITHOUT it being reset first; use a power method \
                     (docs/migrating-from-heartbeat.md)"
                ),
            ));
        }
    }
    if links.is_empty() && !cfg.links.is_empty() {
        errs.push(err(
            parsed.link_lines.first().copied().unwrap_or(0),
            "no links left: every ucast line points at this host's own addresses".to_string(),
        ));
    }
    cfg.links = links;

    for g in &cfg.groups {
        for r in &g.resources {
            let ResourceSpec::Ip(ip) = &r.spec else {
                continue;
            };
            match &ip.iface {
                // Not fatal for the daemon: the group fails here (clear error at start) and the
                // peer can run it. `check-config` reports it as an error through the agent.
                Some(i) if !host.has_iface(i) => warns.push(err(
                    g.line,
                    format!(
                        "group {}: {}: interface '{i}' does not exist on this host; the group cannot start here",
                        g.name, r.text
                    ),
                )),
                Some(_) => {}
                None if !host.subnet_holds(&ip.addr) => warns.push(err(
                    g.line,
                    format!(
                        "group {}: {}: no interface here has a subnet holding {}; name the interface \
                         (ADDR/PREFIX/IFACE)",
                        g.name, r.text, ip.addr
                    ),
                )),
                None => {}
            }
        }
    }

    if errs.is_empty() {
        Ok((cfg, warns))
    } else {
        Err((errs, warns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const DEMO: &str = "\
cluster demo
node alpha beta
authkey /etc/tandem/authkey
keepalive 100ms
deadtime 500ms
warntime 300ms
initdead 2s
auto_failback off
ucast veth-lan 192.0.2.1
ucast veth-lan 192.0.2.2
serial /dev/ttyS1 115200
group web alpha ip::192.0.2.50/24/veth-lan script::/etc/tandem/www.sh
";

    const MIN: &str = "cluster c\nnode a b\nauthkey /k\nucast eth0 192.0.2.2\n";

    fn parse(text: &str) -> Result<Parsed, Vec<ConfigError>> {
        parse_str(Path::new("/etc/tandem/tandem.conf"), text)
    }

    /// The errors as `line: message`.
    fn errs(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.iter().map(|e| format!("{}: {}", e.line, e.msg)).collect(),
        }
    }

    fn has(errs: &[String], line: usize, needle: &str) -> bool {
        errs.iter().any(|e| e.starts_with(&format!("{line}: ")) && e.contains(needle))
    }

    #[test]
    fn demo_parses() {
        let p = parse(DEMO).unwrap();
        let c = &p.config;
        assert_eq!(c.cluster, "demo");
        assert_eq!(c.nodes, ["alpha", "beta"]);
        assert_eq!(c.authkey, Path::new("/etc/tandem/authkey"));
        assert_eq!(c.keepalive, Duration::from_millis(100));
        assert_eq!(c.deadtime, Duration::from_millis(500));
        assert_eq!(c.warntime, Duration::from_millis(300));
        assert_eq!(c.initdead, Duration::from_secs(2));
        assert_eq!(c.links.len(), 3);
        assert_eq!(p.link_lines, [9, 10, 11]);
        assert_eq!(p.node_line, 2);
        assert_eq!(p.authkey_line, 3);
        assert_eq!(c.links[2], LinkConfig::Serial { device: "/dev/ttyS1".into(), baud: 115200, rtscts: false });
        assert_eq!(c.groups.len(), 1);
        let g = &c.groups[0];
        assert_eq!((g.name.as_str(), g.preferred, g.line), ("web", 0, 12));
        assert_eq!(g.resources.len(), 2);
        assert_eq!(g.resources[1].spec.kind(), crate::config::ResourceKind::Script);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn defaults() {
        let c = parse(MIN).unwrap().config;
        assert_eq!(c.keepalive, Duration::from_secs(1));
        assert_eq!(c.deadtime, Duration::from_secs(10));
        assert_eq!(c.warntime, Duration::from_secs(5));
        assert_eq!(c.initdead, Duration::from_secs(20));
        assert!(!c.auto_failback);
        assert_eq!(c.udpport, 694);
        assert_eq!(
            c.links,
            [LinkConfig::Ucast { iface: "eth0".into(), peer: "192.0.2.2".parse().unwrap(), port: 694 }]
        );
        assert_eq!(c.logfacility.as_deref(), Some("daemon"));
        assert_eq!(c.logfile, None);
        assert_eq!(c.socket, None);
        assert_eq!(c.statedir, None);
        assert_eq!(c.timeouts, Timeouts::default());
        assert_eq!(c.timeouts.start, Duration::from_secs(60));
        assert_eq!(c.timeouts.stop, Duration::from_secs(60));
        assert_eq!(c.timeouts.status, Duration::from_secs(20));
        assert_eq!(c.garp_count, 5);
        assert_eq!(c.garp_interval, Duration::from_millis(200));
        assert!(c.realtime);
        assert!(c.groups.is_empty() && c.ping.is_empty() && c.stonith.is_empty());
        assert!(c.key.is_empty());
        // The key never shows in a Debug print of the configuration.
        let mut k = c.clone();
        k.key = crate::config::Key::new(vec![0xab; 32]);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("key: <32 bytes>") && !dbg.contains("171"), "{dbg}");

        // warntime and initdead follow deadtime.
        let c = parse(&format!("{MIN}deadtime 4s\n")).unwrap().config;
        assert_eq!(c.warntime, Duration::from_secs(2));
        assert_eq!(c.initdead, Duration::from_secs(8));
    }

    #[test]
    fn udpport_applies_regardless_of_order() {
        let t = "cluster c\nnode a b\nauthkey /k\nucast eth0 192.0.2.2\nbcast eth1\n\
                 mcast eth2 239.1.1.1\nucast eth3 192.0.2.3 800\nudpport 7000\n";
        let c = parse(t).unwrap().config;
        let ports: Vec<u16> = c
            .links
            .iter()
            .map(|l| match l {
                LinkConfig::Ucast { port, .. } | LinkConfig::Bcast { port, .. } | LinkConfig::Mcast { port, .. } => {
                    *port
                }
                LinkConfig::Serial { .. } => 0,
            })
            .collect();
        assert_eq!(ports, [7000, 7000, 7000, 800]);
        assert_eq!(c.udpport, 7000);
    }

    #[test]
    fn node_lines_accumulate() {
        let c = parse("cluster c\nnode a\nnode b\nauthkey /k\nserial /dev/ttyS0\n").unwrap().config;
        assert_eq!(c.nodes, ["a", "b"]);
        let e = errs("cluster c\nnode a b\nnode a\nauthkey /k\nserial /dev/ttyS0\n");
        assert!(has(&e, 3, "duplicate node 'a'"), "{e:?}");
        let e = errs("cluster c\nnode a b c\nauthkey /k\nserial /dev/ttyS0\n");
        assert!(has(&e, 2, "exactly two nodes"), "{e:?}");
        let e = errs("cluster c\nnode a\nauthkey /k\nserial /dev/ttyS0\n");
        assert!(has(&e, 2, "exactly two nodes are needed, found 1"), "{e:?}");
    }

    #[test]
    fn missing_required_and_links() {
        let e = errs("keepalive 1s\n");
        assert!(has(&e, 0, "missing required directive 'cluster'"));
        assert!(has(&e, 0, "missing required directive 'node'"));
        assert!(has(&e, 0, "missing required directive 'authkey'"));
        assert!(has(&e, 0, "no links"));
        assert_eq!(e.len(), 4, "{e:?}");
        let e = errs("");
        assert_eq!(e.len(), 4, "{e:?}");
    }

    #[test]
    fn timing_rules() {
        let e = errs(&format!("{MIN}keepalive 2s\ndeadtime 4s\n"));
        assert_eq!(e, ["6: deadtime (4s) must be more than 2 × keepalive (2s)"]);
        // deadtime left at its default: the error is on the keepalive line.
        let e = errs(&format!("{MIN}keepalive 5s\n"));
        assert!(has(&e, 5, "deadtime (10s) must be more than 2 × keepalive (5s)"), "{e:?}");
        let e = errs(&format!("{MIN}deadtime 4s\ninitdead 3s\n"));
        assert_eq!(e, ["6: initdead (3s) must be at least deadtime (4s)"]);
        let e = errs(&format!("{MIN}deadtime 4s\nwarntime 4s\n"));
        assert_eq!(e, ["6: warntime (4s) must be less than deadtime (4s)"]);
        let e = errs(&format!("{MIN}keepalive 500ms\nwarntime 400ms\n"));
        assert_eq!(e, ["6: warntime (400ms) must be at least keepalive (500ms)"]);
        // Boundaries that are fine.
        parse(&format!("{MIN}keepalive 1s\ndeadtime 2001ms\ninitdead 2001ms\nwarntime 1s\n")).unwrap();
    }

    #[test]
    fn duplicates() {
        let e = errs(&format!("{MIN}keepalive 1s\nkeepalive 2s\ncluster d\n"));
        assert!(has(&e, 6, "keepalive is already set at line 5"), "{e:?}");
        assert!(has(&e, 7, "cluster is already set at line 1"), "{e:?}");
        let e = errs(&format!("{MIN}ucast eth0 192.0.2.2 700\n"));
        assert!(has(&e, 5, "duplicate link 'ucast eth0 192.0.2.2' (already at line 4)"), "{e:?}");
        let e = errs(&format!("{MIN}ping 192.0.2.9\nping 192.0.2.9\n"));
        assert!(has(&e, 6, "192.0.2.9 is listed twice"), "{e:?}");
    }

    #[test]
    fn notify_hooks_and_metrics_listener() {
        let c = parse(MIN).unwrap().config;
        assert!(c.notify.is_empty());
        assert_eq!(c.notify_timeout, Duration::from_secs(10));
        assert_eq!(c.metrics_listen, None);
        let t = format!(
            "{MIN}notify /usr/local/sbin/mail-hook\nnotify_timeout 3s\nnotify /etc/tandem/keepalived-compat\n\
             metrics_listen [2001:db8::1]:9694\n"
        );
        let c = parse(&t).unwrap().config;
        let hooks: Vec<(&Path, usize)> = c.notify.iter().map(|h| (h.path.as_path(), h.line)).collect();
        assert_eq!(
            hooks,
            [(Path::new("/usr/local/sbin/mail-hook"), 5), (Path::new("/etc/tandem/keepalived-compat"), 7)]
        );
        assert_eq!(c.notify_timeout, Duration::from_secs(3));
        assert_eq!(c.metrics_listen, Some("[2001:db8::1]:9694".parse().unwrap()));

        let e = errs(&format!("{MIN}notify hook.sh\nnotify /a\nnotify /a\nnotify\nnotify_timeout 0\n"));
        assert!(has(&e, 5, "notify: 'hook.sh' is not an absolute path"), "{e:?}");
        assert!(has(&e, 7, "notify: /a is already named at line 6"), "{e:?}");
        assert!(has(&e, 8, "notify: usage: notify PATH"), "{e:?}");
        assert!(has(&e, 9, "notify_timeout: must be at least 1ms"), "{e:?}");
        for (bad, why) in [
            ("9694", "is not ADDR:PORT"),
            ("localhost:9694", "is not ADDR:PORT"),
            ("192.0.2.1:0", "the port must be 1 to 65535"),
            ("2001:db8::1:9694", "is not ADDR:PORT"),
            ("224.0.0.1:9694", "multicast"),
        ] {
            let e = errs(&format!("{MIN}metrics_listen {bad}\n"));
            assert!(has(&e, 5, &format!("metrics_listen: '{bad}'")) && has(&e, 5, why), "{bad}: {e:?}");
        }
        let e = errs(&format!("{MIN}metrics_listen 192.0.2.1:9694\nmetrics_listen 192.0.2.1:9695\n"));
        assert!(has(&e, 6, "metrics_listen is already set at line 5"), "{e:?}");
    }

    #[test]
    fn groups_and_stonith() {
        let e = errs(&format!(
            "{MIN}group web x ip::192.0.2.5/24\ngroup db a drbd::r0\ngroup db b drbd::r1\n\
             group mail b ip::192.0.2.5/32\nstonith z /bin/fence\nstonith a /bin/fence\nstonith a /bin/f2\n"
        ));
        assert!(has(&e, 5, "group web: unknown node 'x' (nodes: a b)"), "{e:?}");
        assert!(has(&e, 7, "duplicate group 'db' (already defined at line 6)"), "{e:?}");
        assert!(has(&e, 8, "ip 192.0.2.5 is already used by group web"), "{e:?}");
        assert!(has(&e, 9, "stonith: unknown node 'z'"), "{e:?}");
        assert!(has(&e, 11, "node 'a' already has a stonith line"), "{e:?}");
        assert_eq!(e.len(), 5, "{e:?}");

        let mut t = MIN.to_string();
        for i in 0..33 {
            t.push_str(&format!("group g{i} a script::/bin/s{i}\n"));
        }
        let e = errs(&t);
        assert_eq!(e, ["37: too many groups (at most 32)"]);

        let c = parse(&format!("{MIN}group g b ip::192.0.2.5/24 script::/x\nstonith b /sbin/f -x\n")).unwrap().config;
        assert_eq!(c.groups[0].preferred, 1);
        let method = crate::config::FenceMethod::Exec { path: "/sbin/f".into(), args: vec!["-x".into()] };
        assert_eq!(c.stonith, [StonithConfig { node: 1, method, line: 6 }]);
        assert!(c.fencing.wait_for_peer && c.fencing.required, "on by default with a stonith line");
        let c = parse(MIN).unwrap().config;
        assert!(!c.fencing.wait_for_peer && !c.fencing.required, "off without one");
        let c = parse(&format!(
            "{MIN}stonith a manual
wait_for_peer off
fence_delay 0
fence_check 0
"
        ))
        .unwrap()
        .config;
        assert!(!c.fencing.wait_for_peer && c.fencing.required);
        assert_eq!((c.fencing.delay, c.fencing.check), (Some(Duration::ZERO), None));
        let c = parse(MIN).unwrap().config;
        assert_eq!((c.fencing.delay, c.fencing.check), (None, Some(Duration::from_secs(60))), "defaults");
    }

    #[test]
    fn all_errors_are_collected_in_line_order() {
        let t = "frob 1\ncluster c\nnode a b\nwarntime fast\nauthkey /k\nucast eth0 192.0.2.2\n\
                 group g a bogus::1\ndeadtime 1\n";
        let e = errs(t);
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("1: unknown directive 'frob'"));
        assert!(e[1].starts_with("4: warntime: bad time 'fast'"));
        assert!(e[2].starts_with("7: group g: unknown resource type 'bogus'"));
        assert!(e[3].starts_with("8: deadtime (1s) must be more than 2 × keepalive (1s)"));
    }

    #[test]
    fn bad_values_do_not_cascade() {
        // A bad keepalive is not replaced by its default in the timing rules; a bad cluster,
        // node, authkey or link line is not "missing" too.
        let t = "cluster bad/name\nnode a b@d\nauthkey k\nkeepalive soon\ndeadtime 500ms\n\
                 warntime 300ms\nucast eth0 x\ngroup g zz script::/s\n";
        let e = errs(t);
        assert_eq!(e.len(), 5, "{e:?}");
        for (i, l) in [1, 2, 3, 4, 7].iter().enumerate() {
            assert!(e[i].starts_with(&format!("{l}: ")), "{e:?}");
        }
    }

    #[test]
    fn a_peer_without_fencing_and_ping_are_warned_about() {
        let p = parse(&format!("{MIN}stonith b /sbin/poweroff-b\nping 192.0.2.254\n")).unwrap();
        let w: Vec<(usize, &str)> = p.warnings.iter().map(|w| (w.line, w.msg.as_str())).collect();
        assert!(w.is_empty(), "{w:?}");
        // Resolved for node a: its peer b has a stonith line, no warning; for b, a has none.
        let mut h = host("a");
        h.addrs.clear();
        h.ifaces.push("eth0".into());
        let (_, w) = apply_host(&p, Some("a"), &h).unwrap();
        assert!(!w.iter().any(|w| w.msg.contains("no stonith line")), "{w:?}");
        let (_, w) = apply_host(&p, Some("b"), &h).unwrap();
        assert!(w.iter().any(|w| w.msg.starts_with("no stonith line for a:") && w.msg.contains("WITHOUT")), "{w:?}");
        assert!(errs(&format!("{MIN}stonith b watchdog\n"))[0].contains("needs a watchdog line"));
    }

    #[test]
    fn watchdog_lines() {
        let p = parse(&format!("{MIN}stonith a watchdog\nstonith b watchdog\nwatchdog /dev/watchdog 5s\n")).unwrap();
        let w = p.config.watchdog.clone().unwrap();
        assert_eq!((w.device.to_str(), w.timeout, w.line), (Some("/dev/watchdog"), Duration::from_secs(5), 7));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        // The device must exist on a node that self-fences.
        let mut h = host("a");
        h.addrs.clear();
        h.ifaces.push("eth0".into());
        let e = apply_host(&p, Some("a"), &h).unwrap_err();
        assert!(e.0[0].to_string().contains(":7: watchdog /dev/watchdog: no such device on this host"), "{e:?}");
        h.existing_paths.push("/dev/watchdog".into());
        assert!(apply_host(&p, Some("a"), &h).is_ok());
        // A watchdog line nobody uses is a warning; bad timeouts are errors.
        let p = parse(&format!("{MIN}watchdog /dev/watchdog 5s\n")).unwrap();
        assert!(p.warnings[0].msg.contains("no stonith line uses the watchdog"), "{:?}", p.warnings);
        for bad in ["watchdog /dev/watchdog 500ms", "watchdog /dev/watchdog 0", "watchdog dev 5", "watchdog /dev/w"] {
            assert_eq!(errs(&format!("{MIN}{bad}\n")).len(), 1, "{bad}");
        }
    }

    #[test]
    fn monitor_lines_and_failure_policy() {
        let groups = "group web a ip::192.0.2.5/24 script::/etc/init.d/www\ngroup db b script::/x script::/y\n";
        let c = parse(&format!("{MIN}{groups}monitor 10s\nmonitor 2s web\nmonitor 500ms web/2 db/1\nmonitor 0 db/2\n"))
            .unwrap()
            .config;
        let s = Duration::from_secs;
        assert_eq!(c.groups[0].monitor, [Some(s(2)), Some(Duration::from_millis(500))], "web/2 over web");
        assert_eq!(c.groups[1].monitor, [Some(Duration::from_millis(500)), None], "db/2 off");
        assert_eq!(
            c.failure,
            crate::config::FailurePolicy { restart_limit: 3, restart_window: s(600), failure_timeout: None },
            "defaults"
        );
        let c = parse(&format!("{MIN}{groups}restart_limit 0\nrestart_window 1m\nfailure_timeout 30m\n"));
        assert!(c.is_err(), "1m is not a time unit here");
        let c =
            parse(&format!("{MIN}{groups}restart_limit 0\nrestart_window 60s\nfailure_timeout 1800\n")).unwrap().config;
        assert_eq!(c.failure.restart_limit, 0);
        assert_eq!(c.failure.failure_timeout, Some(s(1800)));
        assert!(c.groups.iter().all(|g| g.monitor.iter().all(Option::is_none)), "not monitored by default");
        // Errors name the line.
        let e = errs(&format!(
            "{MIN}{groups}monitor 5s nope\nmonitor 5s web/3\nmonitor 5s web\nmonitor 6s web\nmonitor 10ms\n"
        ));
        assert!(has(&e, 7, "monitor: unknown group 'nope' (groups: web db)"), "{e:?}");
        assert!(has(&e, 8, "monitor: web/3: group web has 2 resource(s): use web/1 to web/2"), "{e:?}");
        assert!(has(&e, 10, "monitor: group web already has a monitor line (9)"), "{e:?}");
        assert!(has(&e, 11, "monitor: an interval of at least 100ms"), "{e:?}");
    }

    #[test]
    fn ping_settings() {
        let c = parse(MIN).unwrap().config;
        assert_eq!(
            c.ping_policy,
            crate::config::PingPolicy {
                interval: Duration::from_secs(1),
                deadtime: Duration::from_secs(5),
                hold: Duration::from_secs(5),
                isolated_stop: true
            }
        );
        let c = parse(&format!("{MIN}ping_interval 100ms\nping_hold 0\nisolated_stop off\n")).unwrap().config;
        assert_eq!(c.ping_policy.deadtime, Duration::from_secs(5));
        assert_eq!(c.ping_policy.hold, Duration::ZERO);
        assert!(!c.ping_policy.isolated_stop);
        let c = parse(&format!("{MIN}ping_interval 3s\n")).unwrap().config;
        assert_eq!(c.ping_policy.deadtime, Duration::from_secs(9), "at least three intervals by default");
        let e = errs(&format!("{MIN}ping_interval 1s\nping_deadtime 1500ms\n"));
        assert!(e[0].contains("ping_deadtime (1500ms) must be at least twice ping_interval (1s)"), "{e:?}");
    }

    fn host(name: &str) -> HostFacts {
        HostFacts {
            hostname: name.into(),
            addrs: vec![
                ("lo".into(), "127.0.0.1".parse().unwrap(), 8),
                ("veth-lan".into(), "192.0.2.1".parse().unwrap(), 24),
            ],
            ifaces: vec!["lo".into(), "veth-lan".into()],
            existing_paths: vec!["/dev/ttyS1".into()],
        }
    }

    #[test]
    fn heartbeat_protocol_runs_its_stonith_line() {
        // The peer's stonith line is run over heartbeat's protocol: no warning for it; a node
        // without a line for its peer is still told.
        let cf = "logfile /l\nkeepalive 1\ndeadtime 5\nucast veth-lan 192.0.2.2\nnode alpha beta\n\
                  stonith_host * external/ipmi beta 203.0.113.2 admin pw lanplus\n";
        let none = |_: &str| -> Option<std::path::PathBuf> { None };
        let p = crate::config::hacompat::parse(Path::new("/etc/ha.d"), cf, Some(""), &none).unwrap();
        let (c, w) = apply_host(&p, Some("alpha"), &host("alpha")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert!(c.heartbeat().is_some() && c.peer_stonith().is_some());
        let (_, w) = apply_host(&p, Some("beta"), &host("beta")).unwrap();
        assert!(w.iter().any(|w| w.msg.starts_with("no stonith line for alpha:")), "{w:?}");
        // meatware: manual, run too (the operator confirms).
        let cf = cf.replace("external/ipmi beta 203.0.113.2 admin pw lanplus", "meatware beta");
        let p = crate::config::hacompat::parse(Path::new("/etc/ha.d"), &cf, Some(""), &none).unwrap();
        let (_, w) = apply_host(&p, Some("alpha"), &host("alpha")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        // tandem.conf with `protocol heartbeat`: the watchdog method has no place in it.
        let conf = "cluster c\nnode a b\nprotocol heartbeat\nhb_authkeys /etc/ha.d/authkeys\nucast eth0 192.0.2.2\n\
                    stonith b watchdog\nwatchdog /dev/watchdog 5s\n";
        let p = parse(conf).unwrap();
        let mut h = host("a");
        h.ifaces.push("eth0".into());
        let (_, w) = apply_host(&p, Some("a"), &h).unwrap();
        assert!(
            w.iter().any(|w| w.line == 6 && w.msg.starts_with("stonith b watchdog does not run over heartbeat's")),
            "{w:?}"
        );
    }

    #[test]
    fn host_facts_drop_own_ucast_and_pick_node() {
        let p = parse(DEMO).unwrap();
        let (c, w) = apply_host(&p, None, &host("alpha.example.org")).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].msg.starts_with("no stonith line for beta"), "{w:?}");
        assert_eq!(c.local, 0);
        assert_eq!(c.local_name(), "alpha");
        assert_eq!(c.peer_name(), "beta");
        assert_eq!(c.links.len(), 2);
        assert_eq!(c.links[0].name(), "ucast veth-lan 192.0.2.2");
        assert_eq!(c.links[1].name(), "serial /dev/ttyS1");

        let (c, _) = apply_host(&p, Some("beta"), &host("whatever")).unwrap();
        assert_eq!(c.local, 1);

        let (e, _) = apply_host(&p, Some("gamma"), &host("alpha")).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 2);
        assert!(e[0].msg.contains("--node gamma is not in the node list (alpha beta)"));
        let (e, _) = apply_host(&p, None, &host("gamma")).unwrap_err();
        assert!(e[0].msg.contains("'gamma' (uname -n)"));
    }

    #[test]
    fn host_facts_missing_interfaces_and_devices() {
        let p = parse(DEMO).unwrap();
        let mut h = host("alpha");
        h.ifaces = vec!["lo".into()];
        h.existing_paths.clear();
        let (e, w) = apply_host(&p, None, &h).unwrap_err();
        let e: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(e, ["/etc/tandem/tandem.conf:10: interface 'veth-lan' does not exist on this host"]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].line, 11);
        assert_eq!(
            w[1].to_string(),
            "/etc/tandem/tandem.conf:12: group web: ip::192.0.2.50/24/veth-lan: \
             interface 'veth-lan' does not exist on this host; the group cannot start here"
        );
        assert!(w[0].msg.contains("/dev/ttyS1 does not exist"));

        // An ip without interface whose subnet no interface holds: a warning.
        let t = DEMO.replace("ip::192.0.2.50/24/veth-lan", "ip::203.0.113.5/24");
        let (_, w) = apply_host(&parse(&t).unwrap(), None, &host("alpha")).unwrap();
        let w: Vec<&ConfigWarning> = w.iter().filter(|w| !w.msg.starts_with("no stonith line")).collect();
        assert_eq!(w.len(), 1);
        assert!(w[0].msg.contains("no interface here has a subnet holding 203.0.113.5"));
        let t = DEMO.replace("ip::192.0.2.50/24/veth-lan", "192.0.2.50");
        let (_, w) = apply_host(&parse(&t).unwrap(), None, &host("alpha")).unwrap();
        assert!(w.iter().all(|w| w.msg.starts_with("no stonith line")), "{w:?}");

        // Every ucast line is ours: nothing left.
        let t = "cluster c\nnode alpha b\nauthkey /k\nucast veth-lan 192.0.2.1\n";
        let (e, _) = apply_host(&parse(t).unwrap(), None, &host("alpha")).unwrap_err();
        assert!(e[0].msg.contains("no links left"));
    }

    #[test]
    fn subnets() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_subnet(&a("192.0.2.1"), &a("192.0.2.200"), 24));
        assert!(!same_subnet(&a("192.0.2.1"), &a("192.0.3.1"), 24));
        assert!(same_subnet(&a("192.0.2.1"), &a("10.0.0.1"), 0));
        assert!(same_subnet(&a("2001:db8::1"), &a("2001:db8::ffff"), 64));
        assert!(!same_subnet(&a("2001:db8::1"), &a("192.0.2.1"), 0));
    }
}

#[cfg(test)]
mod soup {
    //! Word soup through the whole pure pipeline: it must never panic.
    use crate::config::parse_str;
    use crate::testutil::Rng;
    use std::path::Path;

    #[test]
    fn random_configs_never_panic() {
        let mut names: Vec<&str> = crate::config::raw::DIRECTIVES.to_vec();
        names.extend(["bogus", "#", "\\", "group", "node"]);
        let words = [
            "a",
            "b",
            "alpha",
            "beta",
            "eth0",
            "lo",
            "192.0.2.1",
            "2001:db8::1",
            "239.1.2.3",
            "ff02::1",
            "0",
            "1",
            "65535",
            "65536",
            "1.5s",
            "100ms",
            "0.000000001",
            "999999999999",
            "on",
            "off",
            "/dev/ttyS0",
            "/x",
            "x",
            "115200",
            "rtscts",
            "ip::192.0.2.5/24/eth0/l",
            "ip::2001:db8::5/64",
            "script::/s::a",
            "drbd::r0",
            "mount::/d::/m::ext4::o",
            "lvm::vg",
            "guest::g::/r::/init",
            "IPaddr::10.0.0.1",
            "::",
            "ip::",
            "a::b",
            "192.0.2.5/33",
            "\\",
            "#c",
            "é",
            "-",
            "all",
        ];
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let mut text = String::new();
            let n_lines = rng.next_u64() % 12;
            for _ in 0..n_lines {
                text.push_str(rng.pick(&names));
                for _ in 0..rng.next_u64() % 6 {
                    text.push(if rng.next_u64().is_multiple_of(9) { '\t' } else { ' ' });
                    text.push_str(rng.pick(&words));
                }
                text.push('\n');
            }
            let _ = parse_str(Path::new("/f"), &text);
        }
    }

    #[test]
    fn unprivileged_ports_are_warned_about() {
        let t = "cluster c\nnode a b\nauthkey /k\nudpport 5694\nucast eth0 192.0.2.2\nbcast eth1 694\n\
                 mcast eth2 239.1.2.3 1024\n";
        let p = parse_str(Path::new("/t.conf"), t).unwrap();
        let w: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("/t.conf:5: ucast eth0 192.0.2.2: port 5694 is 1024 or above"), "{w:?}");
        assert!(w[1].starts_with("/t.conf:7: mcast eth2 239.1.2.3: port 1024"), "{w:?}");
        assert!(w[0].ends_with("can bind it before tandem does; use a port below 1024 (udpport, default 694)"));
        let p = parse_str(Path::new("/t.conf"), "cluster c\nnode a b\nauthkey /k\nucast eth0 192.0.2.2\n").unwrap();
        assert!(p.warnings.is_empty());
    }
}
