//! `tandem status`: the daemon's state as text for humans and as one JSON object.
//! Pure formatting of a borrowed view; the loop builds the view when a client asks.

use std::fmt::Write as _;

use crate::cluster;
use crate::config::Config;
use crate::link::{Link, LinkKind};
use crate::time::Instant;
use crate::wire::GroupState;

use super::fencing::{Last, Method, State};
use super::node::Node;
use super::partition::Reach;

/// What `status` shows, borrowed from the daemon.
pub struct StatusView<'a> {
    pub cfg: &'a Config,
    pub node: &'a Node,
    pub links: &'a [Box<dyn Link>],
    pub generation: u64,
    /// Recent transitions, oldest first, already formatted (`+MSms message`).
    pub transitions: &'a [String],
    /// Children that did not die after SIGKILL and still hold a slot.
    pub stuck_children: usize,
    /// Per group and resource: why its last monitor check failed.
    pub failure_text: &'a [Vec<Option<String>>],
    pub watchdog: Option<WatchdogView>,
}

/// The hardware watchdog, when this node self-fences.
pub struct WatchdogView {
    pub device: String,
    pub timeout_s: u32,
    pub petting: bool,
    /// The loop never worked longer than half the period.
    pub healthy: bool,
}

pub(super) fn reach_name(r: Reach) -> &'static str {
    match r {
        Reach::NoTargets => "no_targets",
        Reach::Reaching => "reaching",
        Reach::Proving => "proving",
        Reach::Isolated => "isolated",
    }
}

impl StatusView<'_> {
    fn link_json(&self, out: &mut crate::ctl::json::Obj<'_>, now: Instant) {
        for (i, l) in self.links.iter().enumerate() {
            let st = self.node.membership().link(i);
            let s = l.stats();
            let mut o = out.nested(None, false);
            o.str("name", l.name())
                .bool("up", st.map(|s| s.up).unwrap_or(false))
                .opt_num(
                    "last_seen_ms",
                    st.and_then(|s| s.last_seen).map(|t| now.saturating_since(t).as_millis() as u64),
                )
                .num("rx", s.rx)
                .num("tx", s.tx)
                .num("dropped", s.dropped)
                .num("bad", s.bad)
                .num("tx_errors", s.tx_errors);
            if l.kind() == LinkKind::Serial {
                o.num("bad_crc", s.bad_crc)
                    .num("resyncs", s.resyncs)
                    .num("overruns", s.overruns)
                    .num("tx_dropped", s.tx_dropped);
                o.bool("present", l.fd().is_some());
            }
        }
    }

    /// Where fencing of the peer stands, in words (`None`: no stonith line for the peer).
    fn fencing_lines(&self, now: Instant) -> Vec<String> {
        let f = self.node.fencing();
        let Some(st) = self.cfg.peer_stonith() else {
            return Vec::new();
        };
        let peer = self.cfg.peer_name();
        let mut head = format!("fencing {peer}: {}", st.method.describe());
        if f.method() == Method::Power {
            let (own, theirs) = (f.fence_delay(), self.peer_fence_delay());
            let _ = write!(head, "; fence_delay {}", crate::time::fmt_duration(own.max(theirs.unwrap_or(own))));
            if theirs.is_some_and(|t| t > own) {
                let _ = write!(head, " ({peer}'s; this node's is {})", crate::time::fmt_duration(own));
            }
            if f.state() == State::Idle {
                let slot = f.slot(now, theirs);
                let when = if slot.is_zero() {
                    "at once".to_string()
                } else {
                    format!("after {}", crate::time::fmt_duration(slot))
                };
                let why = if f.settled(now) { "" } else { ", holdings not settled" };
                let _ = write!(head, "; if {peer} fell silent now: fence {when}{why}");
            }
        }
        let mut lines = vec![head];
        let ago = |at: Instant| crate::time::fmt_duration(now.saturating_since(at));
        let state = match f.state() {
            State::Idle => None,
            State::Waiting { until } => Some(format!(
                "fencing {peer}: first attempt in {} (fence_delay)",
                crate::time::fmt_duration(until.saturating_since(now))
            )),
            State::Running { attempt, since } => {
                Some(format!("fencing {peer}: attempt {attempt} running for {}", ago(since)))
            }
            State::Failed { attempt, retry_at } => Some(format!(
                "fencing {peer}: attempt {attempt} failed: {}; next attempt in {}; no takeover until it is fenced",
                f.last().map_or("?", |l| l.detail.as_str()),
                crate::time::fmt_duration(retry_at.saturating_since(now))
            )),
            State::Operator if f.method() == Method::Manual => Some(format!(
                "fencing {peer}: manual: waiting for an operator to power it off and run tandem fenced {peer}"
            )),
            State::Operator => Some(format!(
                "fencing {peer}: never heard since this start: waiting for tandem fenced {peer} or tandem fence {peer}"
            )),
            State::WatchdogWait { until } => Some(format!(
                "fencing {peer}: it resets itself by its watchdog; counted fenced in {} once its groups' addresses \
                 are silent",
                crate::time::fmt_duration(until.saturating_since(now))
            )),
            State::Confirmed { .. } => None,
        };
        lines.extend(state);
        if let Some(l) = f.last() {
            let verdict = if l.ok { "fenced" } else { "failed" };
            lines.push(format!(
                "fencing {peer}: last fence {} ago: {verdict}: {} ({} ms after it was declared dead)",
                ago(l.at),
                l.detail,
                l.took.as_millis()
            ));
        }
        // After a confirmed fence the device was last checked before it: not news.
        let confirmed = matches!(f.state(), State::Confirmed { .. });
        if let (Some(c), false) = (f.last_check(), confirmed) {
            let verdict = if c.ok { "answers" } else { "DOES NOT ANSWER" };
            lines.push(format!(
                "fencing {peer}: device {verdict}: {} ({} ms, checked {} ago)",
                c.detail,
                c.took.as_millis(),
                ago(c.at)
            ));
        }
        lines
    }

    /// The `fence_delay` the peer advertises in its heartbeats, if any.
    fn peer_fence_delay(&self) -> Option<crate::time::Duration> {
        self.node.peer_ext()?.fence_delay_ms.map(|ms| crate::time::Duration::from_millis(ms.into()))
    }

    fn fencing_json(&self, p: &mut crate::ctl::json::Obj<'_>, now: Instant) {
        let f = self.node.fencing();
        let mut o = p.nested(Some("fencing"), false);
        let Some(st) = self.cfg.peer_stonith() else {
            o.str("method", "none");
            return;
        };
        let ms = |d: crate::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        o.str("method", st.method.name()).str("describe", &st.method.describe()).str("state", f.state().name());
        match f.state() {
            State::Waiting { until } | State::WatchdogWait { until } => {
                o.num("next_attempt_ms", ms(until.saturating_since(now)));
            }
            State::Running { attempt, .. } => {
                o.num("attempt", u64::from(attempt));
            }
            State::Failed { attempt, retry_at } => {
                o.num("attempt", u64::from(attempt)).num("next_attempt_ms", ms(retry_at.saturating_since(now)));
            }
            State::Idle | State::Operator | State::Confirmed { .. } => {}
        }
        let (attempts, fenced) = f.counts();
        // Both nodes wait by the larger of the two nodes' fence_delay: show the one in effect.
        let (own, theirs) = (f.fence_delay(), self.peer_fence_delay());
        o.num("fence_delay_ms", ms(own.max(theirs.unwrap_or(own))))
            .num("own_fence_delay_ms", ms(own))
            .opt_num("peer_fence_delay_ms", theirs.map(ms))
            .num("attempts", attempts)
            .num("fenced", fenced);
        if f.method() == Method::Power {
            o.num("slot_ms", ms(f.slot(now, theirs))).bool("settled", f.settled(now));
        }
        let last = |o: &mut crate::ctl::json::Obj<'_>, k: &str, l: Option<&Last>| {
            if let Some(l) = l {
                let mut x = o.nested(Some(k), false);
                x.bool("ok", l.ok)
                    .str("detail", &l.detail)
                    .num("took_ms", ms(l.took))
                    .num("ago_ms", ms(now.saturating_since(l.at)));
            }
        };
        last(&mut o, "last", f.last());
        last(&mut o, "check", f.last_check());
    }

    /// The ping targets and the watchdog, in words.
    fn reach_lines(&self, now: Instant) -> Vec<String> {
        let p = self.node.partition();
        let mut lines = Vec::new();
        let t = p.targets();
        if !t.is_empty() {
            let peer = match p.peer_reach() {
                Some(r) if r.known => format!("{} reaches {}", self.cfg.peer_name(), r.count),
                Some(_) => format!("{} does not know yet", self.cfg.peer_name()),
                None => format!("{}'s count unknown", self.cfg.peer_name()),
            };
            let known = if t.known(now) { "" } else { " (not known yet)" };
            let worse = if p.worse() { "; fewer than the peer: groups handed over" } else { "" };
            lines.push(format!(
                "ping: {} of {} targets answer{known}; {peer}; {}{worse}",
                t.count(now),
                t.len(),
                reach_name(p.reach(now))
            ));
            for x in t.targets() {
                let up = if t.is_up(x, now) { "up" } else { "down" };
                let last = x
                    .last_reply
                    .map(|r| format!("last reply {} ago", crate::time::fmt_duration(now.saturating_since(r))))
                    .unwrap_or_else(|| "never answered".to_string());
                let rtt = x.rtt.map(|d| format!(", rtt {} us", d.as_micros())).unwrap_or_default();
                lines.push(format!("  target {}: {up}, {last}{rtt}", x.addr));
            }
        }
        if let Some(w) = &self.watchdog {
            let state = match (w.healthy, w.petting) {
                (false, _) => "NOT petted: the loop was stuck; this node resets",
                (true, false) => "NOT petted: this node may not keep its groups; it resets",
                (true, true) => "petted",
            };
            lines.push(format!("watchdog {}: {} s, {state}", w.device, w.timeout_s));
        }
        lines
    }

    fn reach_json(&self, o: &mut crate::ctl::json::Obj<'_>, now: Instant) {
        let p = self.node.partition();
        let t = p.targets();
        {
            let mut r = o.nested(Some("ping"), false);
            r.num("count", t.count(now) as u64)
                .num("total", t.len() as u64)
                .bool("known", t.known(now))
                .str("reach", reach_name(p.reach(now)))
                .bool("fewer_than_peer", p.worse());
            r.opt_num("peer_count", p.peer_reach().filter(|x| x.known).map(|x| u64::from(x.count)));
            let mut list = r.nested(Some("targets"), true);
            for x in t.targets() {
                let mut e = list.nested(None, false);
                e.str("addr", &x.addr.to_string()).bool("up", t.is_up(x, now));
                e.opt_num("last_reply_ms", x.last_reply.map(|r| now.saturating_since(r).as_millis() as u64));
                e.opt_num("rtt_us", x.rtt.map(|d| d.as_micros() as u64));
            }
        }
        if let Some(w) = &self.watchdog {
            let mut d = o.nested(Some("watchdog"), false);
            d.str("device", &w.device)
                .num("timeout_s", u64::from(w.timeout_s))
                .bool("petting", w.petting)
                .bool("healthy", w.healthy);
        }
    }

    fn owner_name(&self, o: cluster::Owner) -> &str {
        match o {
            cluster::Owner::Local => self.cfg.local_name(),
            cluster::Owner::Peer => self.cfg.peer_name(),
            cluster::Owner::None => "none",
        }
    }

    /// `status --json`: one JSON object (the interface's fields, plus counters).
    pub fn json(&self, now: Instant) -> String {
        let mut s = String::with_capacity(1024);
        {
            let mut o = crate::ctl::json::Obj::object(&mut s);
            o.str("node", self.cfg.local_name())
                .str("cluster", &self.cfg.cluster)
                .str("state", self.node.cluster().node_state().name())
                .num("generation", self.generation)
                .num("stuck_children", self.stuck_children as u64);
            self.reach_json(&mut o, now);
            {
                let mut peers = o.nested(Some("peers"), true);
                let mut p = peers.nested(None, false);
                p.str("name", self.cfg.peer_name()).str("state", self.node.membership().peer_state().name());
                p.opt_num("protocol_level", self.node.peer_ext().map(|e| u64::from(e.level)));
                if let Some(d) = self.node.peer_ext().and_then(|e| e.config_digest) {
                    p.bool("same_config", d == self.cfg.digest());
                }
                p.opt_num(
                    "last_seen_ms",
                    self.node.membership().last_seen().map(|t| now.saturating_since(t).as_millis() as u64),
                );
                self.fencing_json(&mut p, now);
                let mut links = p.nested(Some("links"), true);
                self.link_json(&mut links, now);
            }
            let mut groups = o.nested(Some("groups"), true);
            for (i, g) in self.cfg.groups.iter().enumerate() {
                let v = self.node.cluster().group_view(crate::cluster::GroupId(i));
                let mut go = groups.nested(None, false);
                go.str("name", &g.name)
                    .str("preferred", self.cfg.nodes.get(usize::from(g.preferred)).map(String::as_str).unwrap_or(""))
                    .str("owner", self.owner_name(v.owner))
                    .str("state", group_state_name(&v))
                    .str("local_state", v.state.name())
                    .str("peer_state", v.peer_state.map(|p| p.name()).unwrap_or("unknown"))
                    .bool("failed_here", failed_here(&v))
                    .bool("standby", v.standby)
                    .bool("pinned", v.pinned)
                    .num("restarts", self.node.cluster().restarts(crate::cluster::GroupId(i)) as u64);
                let mut res = go.nested(Some("resources"), true);
                for (r, rc) in g.resources.iter().enumerate() {
                    let h = self
                        .node
                        .cluster()
                        .res_health(crate::cluster::GroupId(i), crate::cluster::ResId(r))
                        .unwrap_or_default();
                    let ago = |t: Instant| now.saturating_since(t).as_millis() as u64;
                    let mut ro = res.nested(None, false);
                    ro.str("resource", &rc.text)
                        .opt_num("monitor_ms", h.monitor.map(|d| d.as_millis() as u64))
                        .opt_num("last_check_ms", h.last_check.map(|(t, _)| ago(t)));
                    if let Some((_, ok)) = h.last_check {
                        ro.bool("last_check_ok", ok);
                    }
                    ro.num("fail_count", u64::from(h.fail_count)).opt_num("last_failure_ms", h.last_failure.map(ago));
                    if let Some(t) = self.failure_text.get(i).and_then(|v| v.get(r)).and_then(Option::as_deref) {
                        ro.str("last_failure", t);
                    }
                }
            }
        }
        s.push('\n');
        s
    }

    pub fn text(&self, now: Instant) -> String {
        let mut s = String::with_capacity(1024);
        let _ = writeln!(
            s,
            "node {} ({}), cluster {}, generation {}",
            self.cfg.local_name(),
            self.node.cluster().node_state().name(),
            self.cfg.cluster,
            self.generation
        );
        let seen = self
            .node
            .membership()
            .last_seen()
            .map(|t| format!(", last heard {} ms ago", now.saturating_since(t).as_millis()))
            .unwrap_or_default();
        let _ = writeln!(s, "peer {}: {}{seen}", self.cfg.peer_name(), self.node.membership().peer_state().name());
        for (i, l) in self.links.iter().enumerate() {
            let st = self.node.membership().link(i);
            let up = if st.map(|s| s.up).unwrap_or(false) { "up" } else { "down" };
            let last = st
                .and_then(|s| s.last_seen)
                .map(|t| format!("last seen {} ms ago", now.saturating_since(t).as_millis()))
                .unwrap_or_else(|| "never seen".to_string());
            let c = l.stats();
            let _ = write!(
                s,
                "  link {}: {up}, {last}; rx {} tx {} dropped {} bad {}",
                l.name(),
                c.rx,
                c.tx,
                c.dropped,
                c.bad
            );
            if l.kind() == LinkKind::Serial {
                let present = if l.fd().is_some() { "" } else { ", device absent" };
                let _ = write!(
                    s,
                    "; bad-crc {} resyncs {} overruns {} tx-dropped {}{present}",
                    c.bad_crc, c.resyncs, c.overruns, c.tx_dropped
                );
            }
            s.push('\n');
        }
        for l in self.fencing_lines(now) {
            let _ = writeln!(s, "  {l}");
        }
        for l in self.reach_lines(now) {
            let _ = writeln!(s, "{l}");
        }
        for (i, g) in self.cfg.groups.iter().enumerate() {
            let v = self.node.cluster().group_view(crate::cluster::GroupId(i));
            let pref = self.cfg.nodes.get(usize::from(g.preferred)).map(String::as_str).unwrap_or("");
            let mut extra = String::new();
            if failed_here(&v) {
                let what = if v.state == GroupState::FailedToStop { "failed to stop" } else { "failed" };
                let _ = write!(extra, ", {what} here");
            }
            if v.standby {
                extra.push_str(", standby here");
            }
            if v.pinned {
                extra.push_str(", pinned by takeover");
            }
            let _ = writeln!(
                s,
                "group {} (preferred {pref}): {} on {}{extra}",
                g.name,
                group_state_name(&v),
                self.owner_name(v.owner)
            );
            for (r, rc) in g.resources.iter().enumerate() {
                let Some(h) = self.node.cluster().res_health(crate::cluster::GroupId(i), crate::cluster::ResId(r))
                else {
                    continue;
                };
                if h.monitor.is_none() && h.fail_count == 0 {
                    continue;
                }
                let ago = |t: Instant| crate::time::fmt_duration(now.saturating_since(t));
                let mut line = format!("  {}:", rc.text);
                if let Some(m) = h.monitor {
                    let _ = write!(line, " monitor every {}", crate::time::fmt_duration(m));
                    match h.last_check {
                        Some((t, ok)) => {
                            let _ = write!(line, ", last check {} ago: {}", ago(t), if ok { "ok" } else { "FAILED" });
                        }
                        None => line.push_str(", not checked yet"),
                    }
                }
                if h.fail_count > 0 {
                    let why = self.failure_text.get(i).and_then(|v| v.get(r)).and_then(Option::as_deref).unwrap_or("");
                    let when = h.last_failure.map(|t| format!(", last {} ago", ago(t))).unwrap_or_default();
                    let _ = write!(line, "; {} failure(s){when}: {why}", h.fail_count);
                }
                let _ = writeln!(s, "{line}");
            }
        }
        if self.stuck_children > 0 {
            let _ = writeln!(
                s,
                "{} child process(es) did not die after SIGKILL (uninterruptible sleep?) and hold their slots",
                self.stuck_children
            );
        }
        if !self.transitions.is_empty() {
            s.push_str("recent transitions:\n");
            for t in self.transitions {
                let _ = writeln!(s, "  {t}");
            }
        }
        s
    }
}

/// A start failed here (sticky), or a stop failed here.
pub(super) fn failed_here(v: &cluster::GroupView) -> bool {
    v.failed || v.state == GroupState::FailedToStop || v.state == GroupState::Failed
}

/// The group's state as `status` names it, seen at its owner:
/// started|starting|stopping|stopped|failed.
pub(super) fn group_state_name(v: &cluster::GroupView) -> &'static str {
    let st = match v.owner {
        cluster::Owner::Local => Some(v.state),
        cluster::Owner::Peer => v.peer_state,
        cluster::Owner::None => None,
    };
    match st {
        Some(GroupState::Starting) => "starting",
        Some(GroupState::Started) => "started",
        Some(GroupState::Stopping) => "stopping",
        Some(GroupState::FailedToStop) => "failed",
        _ if v.failed || v.state == GroupState::Failed || v.state == GroupState::FailedToStop => "failed",
        _ => "stopped",
    }
}
