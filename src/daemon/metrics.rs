//! `tandem status --prometheus` and `GET /metrics`: the daemon's state in the Prometheus text
//! exposition format (version 0.0.4). Pure rendering of a [`MetricsView`] the loop fills in;
//! a new figure is a field in the view and a few lines in [`MetricsView::render`].
//!
//! Conventions: every name starts with `tandem_` (the start time too: a `process_` name would
//! collide with node_exporter's own when this text is served by its textfile collector),
//! counters end in `_total`, times are in seconds. A state is one series
//! per possible state with the value 1 for the current one and 0 for the others (so a series
//! does not vanish when the state changes); an "info" metric carries text as labels with the
//! value 1. Every family has `# HELP` and `# TYPE`. `docs/metrics.md` lists them all.

use std::fmt::Write as _;

use crate::link::LinkStats;

use super::jitter::Jitter;
use super::notify::HookStats;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every peer state, in the order rendered.
pub const PEER_STATES: [&str; 3] = ["init", "up", "dead"];
/// Every node state.
pub const NODE_STATES: [&str; 3] = ["init", "active", "leaving"];
/// Every group state as `status` names it.
pub const GROUP_STATES: [&str; 5] = ["started", "starting", "stopping", "stopped", "failed"];
/// Every state of fencing the peer.
pub const FENCE_STATES: [&str; 6] = ["idle", "waiting", "running", "failed", "operator", "confirmed"];
/// Every state of this node's reach of its ping targets.
pub const REACH_STATES: [&str; 4] = ["no_targets", "reaching", "proving", "isolated"];
/// Resource operations and their results, as labels.
pub const OPS: [&str; 3] = ["start", "stop", "status"];

/// Everything rendered, borrowed from the daemon at the time of the request.
pub struct MetricsView<'a> {
    pub version: &'a str,
    pub cluster: &'a str,
    pub node: &'a str,
    /// This node's state (`NODE_STATES`).
    pub node_state: &'a str,
    pub generation: u64,
    /// Wall-clock start of the daemon, seconds since the epoch.
    pub start_time: f64,
    pub peer: PeerView<'a>,
    pub links: Vec<LinkView<'a>>,
    pub groups: Vec<GroupView<'a>>,
    /// Fencing the peer (`None`: it has no stonith line).
    pub fence: Option<FenceView<'a>>,
    /// The ping targets (`None`: none configured).
    pub ping: Option<PingView>,
    /// This node's hardware watchdog (`None`: none).
    pub watchdog: Option<WatchdogView<'a>>,
    pub heartbeats_sent: u64,
    pub jitter: &'a Jitter,
    pub hooks: Vec<HookView<'a>>,
    /// The HTTP responder, when one runs.
    pub http: Option<HttpStats>,
    /// Children that did not die after SIGKILL and hold their slots.
    pub stuck_children: usize,
}

pub struct PeerView<'a> {
    pub name: &'a str,
    /// `PEER_STATES`.
    pub state: &'a str,
    /// Seconds since anything was heard from it (`None`: never).
    pub last_seen: Option<f64>,
    pub protocol_level: Option<u8>,
    /// Its configuration digest equals ours (`None`: not told yet).
    pub same_config: Option<bool>,
}

pub struct LinkView<'a> {
    /// As `status` names it: `ucast lan0 192.0.2.2`.
    pub name: &'a str,
    /// `ucast`, `bcast`, `mcast` or `serial`.
    pub medium: &'a str,
    pub up: bool,
    /// Seconds since a packet from the peer arrived on it (`None`: never).
    pub last_seen: Option<f64>,
    pub stats: LinkStats,
    /// Serial lines: whether the device is open (`None`: not a serial line).
    pub serial_present: Option<bool>,
}

pub struct GroupView<'a> {
    pub name: &'a str,
    pub preferred: &'a str,
    /// The node holding it, or `none`.
    pub owner: &'a str,
    /// `GROUP_STATES`.
    pub state: &'a str,
    pub failed_here: bool,
    pub standby: bool,
    pub pinned: bool,
    pub resources: Vec<ResourceView<'a>>,
}

pub struct ResourceView<'a> {
    /// As written in the group line.
    pub name: &'a str,
    /// The resource type: `ip`, `script`, `ocf`, ...
    pub kind: &'a str,
    /// Operations run on this node: `[op][0]` succeeded, `[op][1]` failed, in `OPS` order.
    pub ops: [[u64; 2]; 3],
    /// The resource monitor's figures (`None`: not monitored).
    pub monitor: Option<MonitorView>,
}

/// One resource's monitor.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonitorView {
    /// The last check found it running.
    pub ok: bool,
    /// Failed checks since the daemon started (a cleanup does not take them back).
    pub failures: u64,
    /// Seconds since the last check (`None`: none yet).
    pub last_check: Option<f64>,
}

/// Fencing the peer.
pub struct FenceView<'a> {
    /// The node fenced.
    pub node: &'a str,
    /// Its stonith method (`ipmi`, `agent`, `exec`, `manual`, ...).
    pub method: &'a str,
    /// `FENCE_STATES`.
    pub state: &'a str,
    /// Attempts started, and fences confirmed (by a method, or by an operator).
    pub attempts: u64,
    pub confirmed: u64,
    /// The last fence: whether it was confirmed, and the seconds from the peer's death (or
    /// the operator's command) to its outcome.
    pub last: Option<(bool, f64)>,
    /// The last check of the fence device: whether it answered, and in how many seconds.
    pub device: Option<(bool, f64)>,
}

/// The ping targets: how many answer here and at the peer, and each one.
pub struct PingView {
    /// `REACH_STATES`.
    pub reach: &'static str,
    pub up: usize,
    /// The peer's count, when it has told one.
    pub peer_up: Option<u8>,
    /// This node reaches fewer targets than the peer (its groups are handed over).
    pub fewer_than_peer: bool,
    /// Each target: address, answering, seconds since its last reply, round trip seconds.
    pub targets: Vec<(String, bool, Option<f64>, Option<f64>)>,
}

/// This node's hardware watchdog.
pub struct WatchdogView<'a> {
    pub device: std::borrow::Cow<'a, str>,
    pub timeout_s: u32,
    /// Petted now (the node may keep its groups and the loop is healthy).
    pub petting: bool,
    /// The loop never worked longer than half the period.
    pub healthy: bool,
}

pub struct HookView<'a> {
    pub path: &'a str,
    pub stats: HookStats,
    pub queued: usize,
}

/// What the HTTP responder has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Answers by status code, in `HTTP_CODES` order.
    pub answers: [u64; 5],
    /// Connections closed at their deadline (a client that did not send or did not read).
    pub timeouts: u64,
    /// Connections open now.
    pub open: usize,
}

/// The status codes the responder answers with.
pub const HTTP_CODES: [u16; 5] = [200, 400, 404, 405, 431];

impl MetricsView<'_> {
    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut o = Out { s: String::with_capacity(8192) };
        o.family("tandem_build_info", "gauge", "The version of tandem running, as a label.");
        o.sample("tandem_build_info", &[("version", self.version)], 1u64);
        o.family("tandem_start_time_seconds", "gauge", "When the daemon started, in seconds since the epoch.");
        o.sample("tandem_start_time_seconds", &[], self.start_time);
        o.family("tandem_generation", "gauge", "This daemon's boot generation (one more at every start).");
        o.sample("tandem_generation", &[], self.generation);
        let node = [("cluster", self.cluster), ("node", self.node)];
        o.family("tandem_node_state", "gauge", "This node's state: 1 for the current state, 0 for the others.");
        for s in NODE_STATES {
            o.sample("tandem_node_state", &[node[0], node[1], ("state", s)], u64::from(s == self.node_state));
        }

        let p = &self.peer;
        o.family("tandem_peer_state", "gauge", "The peer's state: 1 for the current state, 0 for the others.");
        for s in PEER_STATES {
            o.sample("tandem_peer_state", &[("peer", p.name), ("state", s)], u64::from(s == p.state));
        }
        o.family("tandem_peer_last_seen_seconds", "gauge", "Seconds since a packet from the peer arrived on any link.");
        if let Some(t) = p.last_seen {
            o.sample("tandem_peer_last_seen_seconds", &[("peer", p.name)], t);
        }
        if let Some(l) = p.protocol_level {
            o.family("tandem_peer_protocol_level", "gauge", "The protocol level the peer speaks.");
            o.sample("tandem_peer_protocol_level", &[("peer", p.name)], u64::from(l));
        }
        if let Some(same) = p.same_config {
            o.family("tandem_peer_config_match", "gauge", "1 when the peer's configuration digest equals ours.");
            o.sample("tandem_peer_config_match", &[("peer", p.name)], u64::from(same));
        }

        self.render_links(&mut o);
        self.render_groups(&mut o);
        self.render_fences(&mut o);
        self.render_reach(&mut o);

        o.family("tandem_heartbeats_sent_total", "counter", "Heartbeats sent (each on every link).");
        o.sample("tandem_heartbeats_sent_total", &[], self.heartbeats_sent);
        self.render_jitter(&mut o);
        self.render_hooks(&mut o);
        if let Some(h) = self.http {
            o.family("tandem_metrics_http_responses_total", "counter", "Answers of the metrics responder, by code.");
            for (code, n) in HTTP_CODES.iter().zip(h.answers) {
                o.sample("tandem_metrics_http_responses_total", &[("code", &code.to_string())], n);
            }
            o.family(
                "tandem_metrics_http_timeouts_total",
                "counter",
                "Metrics connections closed at their deadline (the client did not send or did not read).",
            );
            o.sample("tandem_metrics_http_timeouts_total", &[], h.timeouts);
            o.family("tandem_metrics_http_connections", "gauge", "Metrics connections open now.");
            o.sample("tandem_metrics_http_connections", &[], h.open as u64);
        }
        o.family("tandem_stuck_children", "gauge", "Children that did not die after SIGKILL and hold their slots.");
        o.sample("tandem_stuck_children", &[], self.stuck_children as u64);
        o.s
    }

    fn render_links(&self, o: &mut Out) {
        fn l<'a>(v: &LinkView<'a>) -> [(&'static str, &'a str); 2] {
            [("link", v.name), ("medium", v.medium)]
        }
        o.family("tandem_link_up", "gauge", "1 while packets from the peer arrive on the link within deadtime.");
        for v in &self.links {
            o.sample("tandem_link_up", &l(v), u64::from(v.up));
        }
        o.family("tandem_link_last_seen_seconds", "gauge", "Seconds since a packet from the peer arrived on the link.");
        for v in &self.links {
            if let Some(t) = v.last_seen {
                o.sample("tandem_link_last_seen_seconds", &l(v), t);
            }
        }
        let counters: [Family<LinkStats, u64>; 5] = [
            ("tandem_link_received_packets_total", "Authenticated packets accepted from the peer.", |s| s.rx),
            ("tandem_link_sent_packets_total", "Packets sent.", |s| s.tx),
            (
                "tandem_link_bad_packets_total",
                "Packets that failed to parse or authenticate (garbage, wrong key, other cluster).",
                |s| s.bad,
            ),
            (
                "tandem_link_dropped_packets_total",
                "Well-formed packets dropped (replays, old generations, our own, foreign sources).",
                |s| s.dropped,
            ),
            ("tandem_link_send_errors_total", "Sends that failed.", |s| s.tx_errors),
        ];
        for (name, help, get) in counters {
            o.family(name, "counter", help);
            for v in &self.links {
                o.sample(name, &l(v), get(&v.stats));
            }
        }
        if !self.links.iter().any(|v| v.serial_present.is_some()) {
            return;
        }
        let serial: [Family<LinkStats, u64>; 4] = [
            ("tandem_link_serial_crc_errors_total", "Serial frames with a bad CRC.", |s| s.bad_crc),
            ("tandem_link_serial_resyncs_total", "Times the serial deframer resynchronised.", |s| s.resyncs),
            ("tandem_link_serial_overruns_total", "Serial frames longer than the largest packet.", |s| s.overruns),
            (
                "tandem_link_serial_queue_dropped_total",
                "Frames dropped from the serial output queue (the line is too slow).",
                |s| s.tx_dropped,
            ),
        ];
        for (name, help, get) in serial {
            o.family(name, "counter", help);
            for v in self.links.iter().filter(|v| v.serial_present.is_some()) {
                o.sample(name, &l(v), get(&v.stats));
            }
        }
        o.family("tandem_link_serial_present", "gauge", "1 while the serial device is open.");
        for v in &self.links {
            if let Some(p) = v.serial_present {
                o.sample("tandem_link_serial_present", &l(v), u64::from(p));
            }
        }
    }

    fn render_groups(&self, o: &mut Out) {
        o.family("tandem_group_info", "gauge", "A configured group and its preferred node.");
        for g in &self.groups {
            o.sample("tandem_group_info", &[("group", g.name), ("preferred", g.preferred)], 1u64);
        }
        o.family(
            "tandem_group_state",
            "gauge",
            "A group's state as seen at its owner: 1 for the current state, 0 for the others.",
        );
        for g in &self.groups {
            for s in GROUP_STATES {
                o.sample("tandem_group_state", &[("group", g.name), ("state", s)], u64::from(s == g.state));
            }
        }
        o.family(
            "tandem_group_owner",
            "gauge",
            "Who holds a group: 1 for the holder (a node, or none), 0 for the others.",
        );
        for g in &self.groups {
            for owner in [self.node, self.peer.name, "none"] {
                o.sample("tandem_group_owner", &[("group", g.name), ("owner", owner)], u64::from(owner == g.owner));
            }
        }
        let flags: [Family<GroupView<'_>, bool>; 3] = [
            ("tandem_group_failed", "1 when the group failed here (a start or a stop).", |g| g.failed_here),
            ("tandem_group_standby", "1 when an operator put this node in standby for the group.", |g| g.standby),
            ("tandem_group_pinned", "1 when the group is held here by an operator's takeover.", |g| g.pinned),
        ];
        for (name, help, get) in flags {
            o.family(name, "gauge", help);
            for g in &self.groups {
                o.sample(name, &[("group", g.name)], u64::from(get(g)));
            }
        }
        o.family("tandem_resource_info", "gauge", "A configured resource (as written), its group and type.");
        for g in &self.groups {
            for r in &g.resources {
                o.sample("tandem_resource_info", &[("group", g.name), ("resource", r.name), ("type", r.kind)], 1u64);
            }
        }
        o.family(
            "tandem_resource_operations_total",
            "counter",
            "Resource operations run on this node, by operation and result.",
        );
        for g in &self.groups {
            for r in &g.resources {
                for (op, counts) in OPS.iter().zip(r.ops) {
                    for (result, n) in ["ok", "failed"].iter().zip(counts) {
                        let labels = [("group", g.name), ("resource", r.name), ("op", op), ("result", result)];
                        o.sample("tandem_resource_operations_total", &labels, n);
                    }
                }
            }
        }
        let monitored = || self.groups.iter().flat_map(|g| g.resources.iter().map(move |r| (g, r)));
        if monitored().any(|(_, r)| r.monitor.is_some()) {
            o.family(
                "tandem_resource_monitor_ok",
                "gauge",
                "1 when the last monitor check found the resource running.",
            );
            for (g, r) in monitored() {
                if let Some(m) = r.monitor {
                    o.sample("tandem_resource_monitor_ok", &[("group", g.name), ("resource", r.name)], u64::from(m.ok));
                }
            }
            o.family("tandem_resource_monitor_failures_total", "counter", "Monitor checks that failed.");
            for (g, r) in monitored() {
                if let Some(m) = r.monitor {
                    let labels = [("group", g.name), ("resource", r.name)];
                    o.sample("tandem_resource_monitor_failures_total", &labels, m.failures);
                }
            }
            o.family("tandem_resource_monitor_last_check_seconds", "gauge", "Seconds since the last monitor check.");
            for (g, r) in monitored() {
                if let Some(t) = r.monitor.and_then(|m| m.last_check) {
                    let labels = [("group", g.name), ("resource", r.name)];
                    o.sample("tandem_resource_monitor_last_check_seconds", &labels, t);
                }
            }
        }
    }

    fn render_fences(&self, o: &mut Out) {
        let Some(f) = &self.fence else { return };
        let l = [("node", f.node), ("method", f.method)];
        o.family("tandem_fence_state", "gauge", "Fencing the peer: 1 for the current state, 0 for the others.");
        for s in FENCE_STATES {
            o.sample("tandem_fence_state", &[l[0], l[1], ("state", s)], u64::from(s == f.state));
        }
        o.family("tandem_fence_attempts_total", "counter", "Fence attempts started.");
        o.sample("tandem_fence_attempts_total", &l, f.attempts);
        o.family("tandem_fence_confirmed_total", "counter", "Fences confirmed (by the method, or by an operator).");
        o.sample("tandem_fence_confirmed_total", &l, f.confirmed);
        if let Some((ok, took)) = f.last {
            o.family("tandem_fence_last_ok", "gauge", "1 when the last fence was confirmed, 0 when it failed.");
            o.sample("tandem_fence_last_ok", &l, u64::from(ok));
            o.family(
                "tandem_fence_last_duration_seconds",
                "gauge",
                "The last fence: from the peer's death (or the operator's command) to its outcome.",
            );
            o.sample("tandem_fence_last_duration_seconds", &l, took);
        }
        if let Some((ok, took)) = f.device {
            o.family("tandem_fence_device_ok", "gauge", "1 when the last check of the fence device got an answer.");
            o.sample("tandem_fence_device_ok", &l, u64::from(ok));
            o.family("tandem_fence_device_check_seconds", "gauge", "How long the last device check took.");
            o.sample("tandem_fence_device_check_seconds", &l, took);
        }
    }

    fn render_reach(&self, o: &mut Out) {
        if let Some(p) = &self.ping {
            o.family("tandem_ping_reach", "gauge", "This node's reach of its ping targets: 1 for the current state.");
            for s in REACH_STATES {
                o.sample("tandem_ping_reach", &[("state", s)], u64::from(s == p.reach));
            }
            o.family("tandem_ping_targets", "gauge", "Ping targets configured.");
            o.sample("tandem_ping_targets", &[], p.targets.len() as u64);
            o.family("tandem_ping_targets_up", "gauge", "Ping targets answering this node.");
            o.sample("tandem_ping_targets_up", &[], p.up as u64);
            if let Some(n) = p.peer_up {
                o.family("tandem_ping_peer_targets_up", "gauge", "Ping targets answering the peer, as it tells.");
                o.sample("tandem_ping_peer_targets_up", &[("peer", self.peer.name)], u64::from(n));
            }
            o.family(
                "tandem_ping_fewer_than_peer",
                "gauge",
                "1 while this node reaches fewer targets than the peer (its groups are handed over).",
            );
            o.sample("tandem_ping_fewer_than_peer", &[], u64::from(p.fewer_than_peer));
            o.family("tandem_ping_target_up", "gauge", "1 while the target answers.");
            for (addr, up, _, _) in &p.targets {
                o.sample("tandem_ping_target_up", &[("target", addr)], u64::from(*up));
            }
            o.family("tandem_ping_target_last_reply_seconds", "gauge", "Seconds since the target last answered.");
            for (addr, _, last, _) in &p.targets {
                if let Some(t) = last {
                    o.sample("tandem_ping_target_last_reply_seconds", &[("target", addr)], *t);
                }
            }
            o.family("tandem_ping_target_rtt_seconds", "gauge", "The round trip of the target's last answer.");
            for (addr, _, _, rtt) in &p.targets {
                if let Some(t) = rtt {
                    o.sample("tandem_ping_target_rtt_seconds", &[("target", addr)], *t);
                }
            }
        }
        if let Some(w) = &self.watchdog {
            let l = [("device", w.device.as_ref())];
            o.family("tandem_watchdog_timeout_seconds", "gauge", "The hardware watchdog's timeout.");
            o.sample("tandem_watchdog_timeout_seconds", &l, u64::from(w.timeout_s));
            o.family("tandem_watchdog_petting", "gauge", "1 while the watchdog is petted (0: this node resets).");
            o.sample("tandem_watchdog_petting", &l, u64::from(w.petting));
            o.family(
                "tandem_watchdog_healthy",
                "gauge",
                "0 once an iteration of the loop worked longer than half the period.",
            );
            o.sample("tandem_watchdog_healthy", &l, u64::from(w.healthy));
        }
    }

    fn render_jitter(&self, o: &mut Out) {
        let j = self.jitter;
        let name = "tandem_heartbeat_delay_seconds";
        o.family(
            name,
            "histogram",
            "How late periodic heartbeats went out: from when each was due to when every link had it.",
        );
        for (le, n) in j.cumulative() {
            let le = match le {
                Some(us) => fmt_f64(us as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            o.sample("tandem_heartbeat_delay_seconds_bucket", &[("le", &le)], n);
        }
        o.sample("tandem_heartbeat_delay_seconds_sum", &[], j.sum_us() as f64 / 1e6);
        o.sample("tandem_heartbeat_delay_seconds_count", &[], j.count());
        o.family("tandem_heartbeat_delay_max_seconds", "gauge", "The largest heartbeat delay since the start.");
        o.sample("tandem_heartbeat_delay_max_seconds", &[], j.max_us() as f64 / 1e6);
        o.family("tandem_heartbeat_delay_min_seconds", "gauge", "The smallest heartbeat delay since the start.");
        o.sample("tandem_heartbeat_delay_min_seconds", &[], j.min_us() as f64 / 1e6);
        o.family(
            "tandem_heartbeats_early_total",
            "counter",
            "Heartbeats sent before their periodic time, to announce a change (not in the delay histogram).",
        );
        o.sample("tandem_heartbeats_early_total", &[], j.early());
    }

    fn render_hooks(&self, o: &mut Out) {
        if self.hooks.is_empty() {
            return;
        }
        let counters: [Family<HookView<'_>, u64>; 3] = [
            ("tandem_notify_runs_total", "Notify hook runs started.", |h| h.stats.runs),
            (
                "tandem_notify_failures_total",
                "Notify hook runs that failed (non-zero exit, killed, past notify_timeout, could not start).",
                |h| h.stats.failures,
            ),
            ("tandem_notify_dropped_total", "Events not told to a hook because its queue was full.", |h| {
                h.stats.dropped
            }),
        ];
        for (name, help, get) in counters {
            o.family(name, "counter", help);
            for h in &self.hooks {
                o.sample(name, &[("hook", h.path)], get(h));
            }
        }
        o.family("tandem_notify_queued", "gauge", "Events waiting for a hook.");
        for h in &self.hooks {
            o.sample("tandem_notify_queued", &[("hook", h.path)], h.queued as u64);
        }
    }
}

/// A family of one figure per item: name, help, and how to read the figure.
type Family<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// A sample value.
trait Value {
    fn write(&self, s: &mut String);
}

impl Value for u64 {
    fn write(&self, s: &mut String) {
        let _ = write!(s, "{self}");
    }
}

impl Value for f64 {
    fn write(&self, s: &mut String) {
        s.push_str(&fmt_f64(*self));
    }
}

/// A float as the text format writes it (`NaN`, `+Inf`, `-Inf`, or a decimal).
fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

struct Out {
    s: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.s, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.s, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl Value) {
        self.s.push_str(name);
        if !labels.is_empty() {
            self.s.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                let _ = write!(self.s, "{k}=\"{}\"", escape(val, true));
            }
            self.s.push('}');
        }
        self.s.push(' ');
        v.write(&mut self.s);
        self.s.push('\n');
    }
}

/// Escapes `\` and newlines (and `"` in label values), as the text format requires.
fn escape(s: &str, label: bool) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '\n', '"']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '"' if label => o.push_str("\\\""),
            c => o.push(c),
        }
    }
    std::borrow::Cow::Owned(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;

    fn view(j: &Jitter) -> MetricsView<'_> {
        MetricsView {
            version: "0.2.0",
            cluster: "demo",
            node: "alpha",
            node_state: "active",
            generation: 7,
            start_time: 1_767_225_600.5,
            peer: PeerView {
                name: "beta",
                state: "up",
                last_seen: Some(0.012),
                protocol_level: Some(2),
                same_config: Some(true),
            },
            links: vec![
                LinkView {
                    name: "ucast lan0 192.0.2.2",
                    medium: "ucast",
                    up: true,
                    last_seen: Some(0.05),
                    stats: LinkStats { rx: 10, tx: 11, bad: 1, dropped: 2, ..LinkStats::default() },
                    serial_present: None,
                },
                LinkView {
                    name: "serial /dev/ttyS1",
                    medium: "serial",
                    up: false,
                    last_seen: None,
                    stats: LinkStats { bad_crc: 3, ..LinkStats::default() },
                    serial_present: Some(false),
                },
            ],
            groups: vec![GroupView {
                name: "web",
                preferred: "alpha",
                owner: "alpha",
                state: "started",
                failed_here: false,
                standby: false,
                pinned: true,
                resources: vec![
                    ResourceView {
                        name: "ip::192.0.2.50/24",
                        kind: "ip",
                        ops: [[1, 0], [0, 0], [5, 1]],
                        monitor: None,
                    },
                    ResourceView {
                        name: "script::/etc/a \"b\"\\c",
                        kind: "script",
                        ops: [[1, 0], [0, 0], [0, 0]],
                        monitor: Some(MonitorView { ok: true, failures: 2, last_check: Some(1.5) }),
                    },
                ],
            }],
            fence: Some(FenceView {
                node: "beta",
                method: "ipmi",
                state: "confirmed",
                attempts: 2,
                confirmed: 1,
                last: Some((true, 0.42)),
                device: Some((true, 0.05)),
            }),
            ping: Some(PingView {
                reach: "reaching",
                up: 1,
                peer_up: Some(2),
                fewer_than_peer: true,
                targets: vec![
                    ("192.0.2.254".into(), true, Some(0.5), Some(0.0002)),
                    ("192.0.2.253".into(), false, None, None),
                ],
            }),
            watchdog: Some(WatchdogView { device: "/dev/watchdog".into(), timeout_s: 5, petting: true, healthy: true }),
            heartbeats_sent: 100,
            jitter: j,
            hooks: vec![HookView {
                path: "/etc/tandem/notify",
                stats: HookStats { runs: 3, failures: 1, dropped: 0 },
                queued: 0,
            }],
            http: Some(HttpStats { answers: [4, 0, 1, 0, 0], timeouts: 1, open: 2 }),
            stuck_children: 0,
        }
    }

    #[test]
    fn renders_the_text_format() {
        let mut j = Jitter::default();
        j.sent(Instant::from_micros(0), Instant::from_micros(100_000));
        j.sent(Instant::from_micros(100_700), Instant::from_micros(200_000));
        let text = view(&j).render();
        for line in [
            "tandem_build_info{version=\"0.2.0\"} 1",
            "tandem_start_time_seconds 1767225600.5",
            "tandem_node_state{cluster=\"demo\",node=\"alpha\",state=\"active\"} 1",
            "tandem_node_state{cluster=\"demo\",node=\"alpha\",state=\"init\"} 0",
            "tandem_peer_state{peer=\"beta\",state=\"up\"} 1",
            "tandem_peer_state{peer=\"beta\",state=\"dead\"} 0",
            "tandem_peer_last_seen_seconds{peer=\"beta\"} 0.012",
            "tandem_link_up{link=\"ucast lan0 192.0.2.2\",medium=\"ucast\"} 1",
            "tandem_link_received_packets_total{link=\"ucast lan0 192.0.2.2\",medium=\"ucast\"} 10",
            "tandem_link_serial_crc_errors_total{link=\"serial /dev/ttyS1\",medium=\"serial\"} 3",
            "tandem_group_state{group=\"web\",state=\"started\"} 1",
            "tandem_group_owner{group=\"web\",owner=\"alpha\"} 1",
            "tandem_group_owner{group=\"web\",owner=\"none\"} 0",
            "tandem_group_pinned{group=\"web\"} 1",
            "tandem_resource_operations_total{group=\"web\",resource=\"ip::192.0.2.50/24\",op=\"status\",result=\"failed\"} 1",
            "tandem_resource_monitor_ok{group=\"web\",resource=\"script::/etc/a \\\"b\\\"\\\\c\"} 1",
            "tandem_fence_last_duration_seconds{node=\"beta\",method=\"ipmi\"} 0.42",
            "tandem_fence_state{node=\"beta\",method=\"ipmi\",state=\"confirmed\"} 1",
            "tandem_fence_attempts_total{node=\"beta\",method=\"ipmi\"} 2",
            "tandem_ping_reach{state=\"reaching\"} 1",
            "tandem_ping_fewer_than_peer 1",
            "tandem_ping_target_up{target=\"192.0.2.253\"} 0",
            "tandem_ping_target_rtt_seconds{target=\"192.0.2.254\"} 0.0002",
            "tandem_watchdog_petting{device=\"/dev/watchdog\"} 1",
            "tandem_heartbeat_delay_seconds_bucket{le=\"0.0005\"} 0",
            "tandem_heartbeat_delay_seconds_bucket{le=\"0.001\"} 1",
            "tandem_heartbeat_delay_seconds_bucket{le=\"+Inf\"} 1",
            "tandem_heartbeat_delay_seconds_sum 0.0007",
            "tandem_heartbeat_delay_seconds_count 1",
            "tandem_notify_failures_total{hook=\"/etc/tandem/notify\"} 1",
            "tandem_metrics_http_responses_total{code=\"404\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // The never-seen serial link has no last-seen sample.
        assert!(!text.contains("tandem_link_last_seen_seconds{link=\"serial"));
        // Every family is announced once, before its samples, with HELP and TYPE.
        let mut seen = std::collections::HashSet::new();
        let mut current = String::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(seen.insert(name.clone()), "{name} announced twice");
                current = name;
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(name.starts_with(&current), "{name} outside its family {current}");
                let counter = text.contains(&format!("# TYPE {current} counter"));
                assert_eq!(counter, name.ends_with("_total"), "{name}: counters and only counters end in _total");
                assert!(name.starts_with("tandem_"), "{name}");
            }
        }
    }

    #[test]
    fn state_lists_hold_every_state() {
        use crate::daemon::fencing::State;
        use crate::membership::PeerState;
        use crate::wire::NodeState;
        let t = Instant::ZERO;
        for s in [
            State::Idle,
            State::Waiting { until: t },
            State::Running { attempt: 1, since: t },
            State::Failed { attempt: 1, retry_at: t },
            State::Operator,
            State::Confirmed { at: t },
        ] {
            assert!(FENCE_STATES.contains(&s.name()), "{s:?}");
        }
        for s in [PeerState::Init, PeerState::Up, PeerState::Dead] {
            assert!(PEER_STATES.contains(&s.name()));
        }
        for s in [NodeState::Init, NodeState::Active, NodeState::Leaving] {
            assert!(NODE_STATES.contains(&s.name()));
        }
        use crate::daemon::partition::Reach;
        for r in [Reach::NoTargets, Reach::Reaching, Reach::Proving, Reach::Isolated] {
            assert!(REACH_STATES.contains(&super::super::status::reach_name(r)));
        }
    }

    #[test]
    fn floats_and_escapes() {
        assert_eq!(fmt_f64(0.0001), "0.0001");
        assert_eq!(fmt_f64(f64::INFINITY), "+Inf");
        assert_eq!(fmt_f64(f64::NAN), "NaN");
        assert_eq!(fmt_f64(3.0), "3");
        assert_eq!(escape("a\"b\\c\nd", true), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("a\"b", false), "a\"b");
    }
}
