//! The parts of the loop that differ when the daemon speaks heartbeat's protocol, and what
//! heartbeat's commands (`hb_standby`, `hb_takeover`, `cl_status`) ask of either core:
//! - building the core: tandem's [`Node`], or the heartbeat core with the node's heartbeat
//!   identity (`hb_uuid`) and a generation above any heartbeat used on this node;
//! - links: bytes as they arrive go to the heartbeat core, which decodes its own frames, and
//!   its frames go out as they are (UDP datagrams, raw serial);
//! - `status` for the heartbeat core, and the `hbinfo` answer `cl_status` formats.

use std::fmt::Write as _;
use std::path::Path;

use log::{error, info, warn};

use crate::cluster::{GroupId, GroupSel, Owner};
use crate::config::{Config, LinkConfig};
use crate::ctl::Request;
use crate::hb::proto::RscSet;
use crate::link::LinkKind;
use crate::time::{Duration, Instant};

use super::core::Core;
use super::hbcore::{FenceState, GState, HbCore, HbSetup, PeerFence};
use super::io::{Input, ReplyCode};
use super::node::Node;
use super::{node_setup, pool, setup, Daemon, DaemonError, Job};

/// The core for this configuration, and the generation it runs with.
pub(super) fn make_core(
    now: Instant,
    cfg: &Config,
    generation: u64,
    n_links: usize,
    statedir: &Path,
) -> Result<(Core, u64), DaemonError> {
    let Some(hb) = cfg.heartbeat() else {
        return Ok((Core::Tandem(Node::new(now, node_setup(cfg, generation, n_links))), generation));
    };
    let state_err = |e: crate::state::StateError| setup("state", e);
    // Above anything heartbeat used on this node (its generations are `time(NULL)`, +1 per
    // start), or heartbeat's peer drops everything we send as a replay.
    let hb_gen = crate::state::read_hb_generation(&hb.state_dir).map_err(state_err)?;
    let generation = generation.max(hb_gen.map_or(0, |g| g.saturating_add(1)));
    crate::state::store_generation(statedir, generation).map_err(state_err)?;
    if hb.state_dir.is_dir() {
        crate::state::write_hb_generation(&hb.state_dir, generation).map_err(state_err)?;
    }
    let uuid = crate::state::hb_uuid(statedir, &hb.state_dir).map_err(state_err)?;
    let keys = hb.keys.clone().ok_or_else(|| setup("authkeys", "not loaded"))?;
    for (k, v) in &hb.env {
        // Single-threaded here: the resource scripts inherit it, as heartbeat's `env` meant.
        std::env::set_var(k, v);
    }
    let wall = u64::try_from(crate::sys::rt::realtime().0).unwrap_or(0);
    let s = HbSetup {
        engine: HbCore::engine_config(cfg, uuid, generation),
        keys,
        wall_secs: wall,
        groups: cfg.groups.iter().map(|g| (g.resources.len(), g.preferred == cfg.local)).collect(),
        serial_links: cfg.links.iter().map(|l| matches!(l, LinkConfig::Serial { .. })).collect(),
        fence: PeerFence::of(cfg),
    };
    let mut core = HbCore::new(now, s).map_err(|e| setup("heartbeat protocol", e))?;
    if let Ok(ld) = std::fs::read_to_string("/proc/loadavg") {
        core.set_loadavg(&ld);
    }
    info!(
        "speaking heartbeat 3.0.6's protocol as {} (uuid {}, generation {generation}, auto_failback {})",
        cfg.local_name(),
        uuid_text(&uuid),
        hb.failback.name()
    );
    Ok((Core::Heartbeat(Box::new(core)), generation))
}

/// A uuid as heartbeat prints it.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// heartbeat's name of a link (`cl_status listhblinks`): the interface, or the serial device.
pub fn hb_link_name(l: &LinkConfig) -> String {
    match l {
        LinkConfig::Ucast { iface, .. } | LinkConfig::Bcast { iface, .. } | LinkConfig::Mcast { iface, .. } => {
            iface.clone()
        }
        LinkConfig::Serial { device, .. } => device.display().to_string(),
    }
}

impl Daemon {
    /// Reads everything pending on link `l` and hands the bytes to the heartbeat core.
    pub(super) fn receive_raw(&mut self, now: Instant, l: usize) {
        let Some(link) = self.links.get_mut(l) else { return };
        let mut got: Vec<Vec<u8>> = Vec::new();
        let res = link.recv(now, &mut |bytes: &[u8]| got.push(bytes.to_vec()));
        link.stats_mut().rx += u64::try_from(got.len()).unwrap_or(0);
        if let Err(e) = res {
            if let Some(s) = self.rl_bad.allow(now) {
                warn!("link {}: receive: {e} ({s} similar messages suppressed)", link.name());
            }
        }
        for bytes in got {
            self.counters.packets_received += 1;
            self.feed(now, Input::Raw { link: l, bytes: &bytes });
        }
    }

    /// Sends heartbeat's frames: `udp` on every UDP link, `serial` on every serial link.
    pub(super) fn transmit_raw(&mut self, now: Instant, udp: &[u8], serial: &[u8]) {
        self.counters.heartbeats_sent += 1;
        for l in self.links.iter_mut() {
            let bytes = if l.kind() == LinkKind::Serial { serial } else { udp };
            if bytes.is_empty() {
                continue;
            }
            match l.send(now, bytes) {
                Ok(()) => {
                    if l.kind() == LinkKind::Udp {
                        // UdpLink counts its own sends.
                    }
                }
                Err(e) => {
                    l.stats_mut().tx_errors += 1;
                    if let Some(s) = self.rl_send.allow(now) {
                        warn!("link {}: send: {e} ({s} similar messages suppressed)", l.name());
                    }
                }
            }
        }
    }

    /// Stores a new generation (the heartbeat core restarted itself), in a child: fsync can
    /// take long. The child is tagged as a state write, whose end needs nothing more.
    pub(super) fn save_generation(&mut self, now: Instant, generation: u64) {
        let dir = self.statedir.clone();
        let hb_dir = self.cfg.heartbeat().map(|h| h.state_dir.clone());
        let mut f = move || {
            crate::logging::child_mode();
            let mut code = 0;
            if let Err(e) = crate::state::store_generation(&dir, generation) {
                super::runner::child_print(&format!("{e}\n"));
                code = 1;
            }
            if let Some(h) = hb_dir.as_deref().filter(|h| h.is_dir()) {
                if let Err(e) = crate::state::write_hb_generation(h, generation) {
                    super::runner::child_print(&format!("{e}\n"));
                    code = 1;
                }
            }
            code
        };
        let spawn = super::runner::Spawn::Fork(&mut f);
        if let Err(e) = self.runner.spawn_in(now, pool::STATE, Job::SaveMark.tag(), spawn, Duration::from_secs(30)) {
            error!("cannot store generation {generation}: {e}");
        }
        self.generation = generation;
    }

    /// `hb_standby`, `hb_takeover` and `hbinfo` (for `cl_status`), for either core.
    pub(super) fn on_hb_request(&mut self, now: Instant, conn: usize, req: Request) {
        match req {
            Request::HbInfo => {
                let text = self.hbinfo(now);
                self.ctl.reply(conn, ReplyCode::Ok.code(), &text);
            }
            Request::HbStandby(ref set) | Request::HbTakeover(ref set) => {
                let standby = matches!(req, Request::HbStandby(_));
                let set = set.clone();
                let Some(s) = parse_set(&set, standby) else {
                    self.ctl.reply(conn, ReplyCode::Usage.code(), &format!("wrong resources({set}).\n"));
                    return;
                };
                let cmd = if standby { "hb_standby" } else { "hb_takeover" };
                self.note(log::Level::Info, now, format!("operator: {cmd} {set}"));
                if let Some(h) = self.node.heartbeat_mut() {
                    if standby {
                        h.hb_standby(now, s, &mut self.out);
                    } else {
                        h.hb_takeover(now, s, &mut self.out);
                    }
                    self.settle(now);
                } else {
                    // tandem's protocol: the groups of that set, one by one.
                    let sels = self.tandem_groups_of(s);
                    for sel in sels {
                        self.feed(now, if standby { Input::Standby(sel) } else { Input::Takeover(sel) });
                    }
                }
                self.ctl.reply(conn, ReplyCode::Ok.code(), "");
            }
            _ => self.ctl.reply(conn, ReplyCode::Usage.code(), "not a heartbeat command\n"),
        }
    }

    /// tandem's groups of a heartbeat resource set (`local`: preferred here).
    fn tandem_groups_of(&self, s: RscSet) -> Vec<GroupSel> {
        if s == RscSet::ALL {
            return vec![GroupSel::All];
        }
        let want_local = s == RscSet::LOCAL;
        self.cfg
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| (g.preferred == self.cfg.local) == want_local)
            .map(|(i, _)| GroupSel::One(GroupId(i)))
            .collect()
    }

    /// What `cl_status` needs, one fact per line, tab-separated:
    /// `local NODE`, `node NAME STATUS TYPE`, `link NODE NAME STATUS`, `rsc STATUS`,
    /// `param NAME VALUE`.
    pub(super) fn hbinfo(&self, _now: Instant) -> String {
        let cfg = &self.cfg;
        let mut s = String::with_capacity(512);
        let local = cfg.local_name();
        let peer = cfg.peer_name();
        let _ = writeln!(s, "local\t{local}");
        let (local_st, peer_st, rsc) = match &self.node {
            Core::Heartbeat(h) => {
                let e = h.engine();
                (e.local_status().name().to_string(), e.peer_status().name().to_string(), e.rscstatus().to_string())
            }
            Core::Tandem(n) => {
                let local_st = match n.node_state() {
                    crate::wire::NodeState::Init => "up",
                    _ => "active",
                };
                let peer_st = match n.membership().peer_state() {
                    crate::membership::PeerState::Up => "active",
                    crate::membership::PeerState::Dead => "dead",
                    crate::membership::PeerState::Init => "init",
                };
                (local_st.to_string(), peer_st.to_string(), tandem_rscstatus(cfg, n).to_string())
            }
        };
        for name in &cfg.nodes {
            let st = if name == local { &local_st } else { &peer_st };
            let _ = writeln!(s, "node\t{name}\t{st}\tnormal");
        }
        for ip in &cfg.ping {
            let _ = writeln!(s, "node\t{ip}\tunknown\tping");
        }
        for (i, l) in cfg.links.iter().enumerate() {
            let name = hb_link_name(l);
            let _ = writeln!(s, "link\t{local}\t{name}\tup");
            let up = match &self.node {
                Core::Heartbeat(h) => h.engine().link_up(i),
                Core::Tandem(n) => n.membership().link(i).is_some_and(|st| st.up),
            };
            let _ = writeln!(s, "link\t{peer}\t{name}\t{}", if up { "up" } else { "dead" });
        }
        let _ = writeln!(s, "rsc\t{rsc}");
        for (k, v) in hb_params(cfg) {
            let _ = writeln!(s, "param\t{k}\t{v}");
        }
        s
    }

    /// `status` for humans (`json` = false) or as one JSON object, for either core.
    pub(super) fn status_body(&self, now: Instant, json: bool) -> String {
        match &self.node {
            Core::Tandem(n) => {
                let v = self.status_view(n);
                if json {
                    v.json(now)
                } else {
                    v.text(now)
                }
            }
            Core::Heartbeat(h) => {
                if json {
                    self.hb_status_json(h, now)
                } else {
                    self.hb_status_text(h, now)
                }
            }
        }
    }

    /// A group's owner and state name, seen from here.
    fn hb_group(&self, h: &HbCore, g: usize) -> (&str, &'static str) {
        let st = h.group_state(g);
        let here = matches!(st, GState::Starting | GState::Started | GState::Stopping | GState::StopFailed);
        if here {
            return (self.cfg.local_name(), st.name());
        }
        if h.peer_holds().contains(g) {
            return (self.cfg.peer_name(), "started");
        }
        ("none", if h.start_failed(g) { "failed" } else { "stopped" })
    }

    fn hb_status_json(&self, h: &HbCore, now: Instant) -> String {
        let cfg = &self.cfg;
        let e = h.engine();
        let mut s = String::with_capacity(1024);
        {
            let mut o = crate::ctl::json::Obj::object(&mut s);
            o.str("node", cfg.local_name())
                .str("cluster", &cfg.cluster)
                .str("state", e.local_status().name())
                .str("protocol", "heartbeat")
                .num("generation", self.generation)
                .str("rscstatus", e.rscstatus())
                .num("stuck_children", self.runner.stuck() as u64);
            {
                let mut peers = o.nested(Some("peers"), true);
                let mut p = peers.nested(None, false);
                p.str("name", cfg.peer_name())
                    .str("state", peer_state_name(e.peer_status()))
                    .str("hb_status", e.peer_status().name());
                p.opt_num("last_seen_ms", h.last_heard().map(|t| now.saturating_since(t).as_millis() as u64));
                hb_fencing_json(cfg, h, &mut p);
                let mut links = p.nested(Some("links"), true);
                for (i, l) in self.links.iter().enumerate() {
                    let st = l.stats();
                    let mut lo = links.nested(None, false);
                    lo.str("name", l.name())
                        .bool("up", e.link_up(i))
                        .opt_num("last_seen_ms", h.link_last_rx(i).map(|t| now.saturating_since(t).as_millis() as u64))
                        .num("rx", st.rx)
                        .num("tx", st.tx)
                        .num("dropped", st.dropped)
                        .num("bad", st.bad)
                        .num("tx_errors", st.tx_errors);
                }
            }
            {
                let stats = e.stats();
                let mut so = o.nested(Some("heartbeat"), false);
                so.num("received", stats.received)
                    .num("bad", stats.bad)
                    .num("duplicates", stats.duplicates)
                    .num("lost", stats.lost)
                    .num("rexmit_requests_sent", stats.rexmit_requests_sent)
                    .num("retransmitted", stats.retransmitted)
                    .num("sent", stats.sent);
            }
            let mut groups = o.nested(Some("groups"), true);
            for (i, g) in cfg.groups.iter().enumerate() {
                let (owner, state) = self.hb_group(h, i);
                let mut go = groups.nested(None, false);
                go.str("name", &g.name)
                    .str("preferred", cfg.nodes.get(usize::from(g.preferred)).map(String::as_str).unwrap_or(""))
                    .str("owner", owner)
                    .str("state", state)
                    .str("local_state", h.group_state(i).name())
                    .bool("failed_here", h.start_failed(i) || h.group_state(i) == GState::StopFailed);
            }
        }
        s.push('\n');
        s
    }

    fn hb_status_text(&self, h: &HbCore, now: Instant) -> String {
        let cfg = &self.cfg;
        let e = h.engine();
        let mut s = String::with_capacity(1024);
        let failback = cfg.heartbeat().map(|x| x.failback.name()).unwrap_or("?");
        let _ = writeln!(
            s,
            "node {} ({}), cluster {}, generation {}, heartbeat 3.0.6 protocol (auto_failback {failback})",
            cfg.local_name(),
            e.local_status().name(),
            cfg.cluster,
            self.generation
        );
        let seen = h
            .last_heard()
            .map(|t| format!(", last heard {} ms ago", now.saturating_since(t).as_millis()))
            .unwrap_or_default();
        let _ = writeln!(s, "peer {}: {}{seen}", cfg.peer_name(), e.peer_status().name());
        for (i, l) in self.links.iter().enumerate() {
            let c = l.stats();
            let up = if e.link_up(i) { "up" } else { "down" };
            let _ = writeln!(s, "  link {}: {up}; rx {} tx {} tx-errors {}", l.name(), c.rx, c.tx, c.tx_errors);
        }
        let st = e.stats();
        let _ = writeln!(
            s,
            "  messages: received {} bad {} lost {} retransmitted {}",
            st.received, st.bad, st.lost, st.retransmitted
        );
        if let Some(l) = hb_fencing_line(cfg, h) {
            let _ = writeln!(s, "{l}");
        }
        let _ = writeln!(s, "this node holds {} resources", e.rscstatus());
        for (i, g) in cfg.groups.iter().enumerate() {
            let (owner, state) = self.hb_group(h, i);
            let pref = cfg.nodes.get(usize::from(g.preferred)).map(String::as_str).unwrap_or("");
            let extra = if h.start_failed(i) { ", failed to start here" } else { "" };
            let _ = writeln!(s, "group {} (preferred {pref}): {state} on {owner}{extra}", g.name);
        }
        if self.runner.stuck() > 0 {
            let _ = writeln!(s, "{} child process(es) did not die after SIGKILL", self.runner.stuck());
        }
        if !self.transitions.is_empty() {
            s.push_str("recent transitions:\n");
            for t in &self.transitions {
                let _ = writeln!(s, "  {t}");
            }
        }
        s
    }
}

/// Where fencing of the peer stands, in words (`None`: no stonith line runs for the peer).
fn hb_fencing_line(cfg: &Config, h: &HbCore) -> Option<String> {
    let peer = cfg.peer_name();
    let method = cfg.peer_stonith().map(|s| s.method.describe())?;
    if h.fence_method() == PeerFence::None {
        return Some(format!("fencing {peer}: {method}: not run over heartbeat's protocol"));
    }
    let (attempts, fenced) = h.fence_counts();
    let mut l = format!("fencing {peer}: {method}; {}", h.fence_state().name());
    match h.fence_state() {
        FenceState::Running { attempt, .. } => {
            let _ = write!(l, " (attempt {attempt})");
        }
        FenceState::Failed { attempt } => {
            let _ = write!(l, " (attempt {attempt}; no takeover until it is fenced; retried every 5s)");
        }
        FenceState::Operator => {
            let _ = write!(l, " (power it off, then run tandem fenced {peer}; no takeover before that)");
        }
        FenceState::Idle | FenceState::Confirmed => {}
    }
    let _ = write!(l, "; attempts {attempts}, fenced {fenced}");
    if let Some((ok, took, detail)) = h.fence_last() {
        let verdict = if ok { "fenced" } else { "failed" };
        let _ = write!(l, "; last: {verdict}: {detail} ({} ms after it was declared dead)", took.as_millis());
    }
    Some(l)
}

/// The `fencing` object of the peer in `status --json` (a subset of tandem's core's).
fn hb_fencing_json(cfg: &Config, h: &HbCore, p: &mut crate::ctl::json::Obj<'_>) {
    let mut o = p.nested(Some("fencing"), false);
    let Some(st) = cfg.peer_stonith().filter(|_| h.fence_method() != PeerFence::None) else {
        o.str("method", "none");
        return;
    };
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    o.str("method", st.method.name()).str("describe", &st.method.describe()).str("state", h.fence_state().name());
    if let FenceState::Running { attempt, .. } | FenceState::Failed { attempt } = h.fence_state() {
        o.num("attempt", u64::from(attempt));
    }
    let (attempts, fenced) = h.fence_counts();
    o.num("attempts", attempts).num("fenced", fenced);
    if let Some((ok, took, detail)) = h.fence_last() {
        let mut x = o.nested(Some("last"), false);
        x.bool("ok", ok).str("detail", detail).num("took_ms", ms(took));
    }
}

/// The interface's peer states.
fn peer_state_name(s: crate::hb::proto::NodeStatus) -> &'static str {
    use crate::hb::proto::NodeStatus as N;
    match s {
        N::Up | N::Active => "up",
        N::Dead => "dead",
        N::Init => "init",
        N::Other => "unknown",
    }
}

/// `hb_standby`/`hb_takeover`'s argument (`failback` = foreign for hb_standby; for
/// hb_takeover heartbeat's peer reads it as all).
pub fn parse_set(s: &str, standby: bool) -> Option<RscSet> {
    match s {
        "failback" if standby => Some(RscSet::FOREIGN),
        "failback" => Some(RscSet::ALL),
        _ => RscSet::parse(s).filter(|r| *r != RscSet::NONE),
    }
}

/// What `cl_status rscstatus` prints for tandem's core: the sets of groups held here.
fn tandem_rscstatus(cfg: &Config, n: &Node) -> &'static str {
    let mut set = RscSet::NONE;
    for (i, g) in cfg.groups.iter().enumerate() {
        let v = n.cluster().group_view(GroupId(i));
        if v.owner != Owner::Local {
            continue;
        }
        if matches!(v.state, crate::wire::GroupState::Starting | crate::wire::GroupState::Stopping) {
            return "transition";
        }
        set = set.union(if g.preferred == cfg.local { RscSet::LOCAL } else { RscSet::FOREIGN });
    }
    set.name()
}

/// `cl_status hbparameter` values.
fn hb_params(cfg: &Config) -> Vec<(String, String)> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut v: Vec<(String, String)> = cfg.heartbeat().map(|h| h.params.clone()).unwrap_or_default();
    let mut add = |k: &str, val: String| {
        if !v.iter().any(|(n, _)| n == k) {
            v.push((k.to_string(), val));
        }
    };
    add("keepalive", ms(cfg.keepalive));
    add("deadtime", ms(cfg.deadtime));
    add("warntime", ms(cfg.warntime));
    add("initdead", ms(cfg.initdead));
    add("udpport", cfg.udpport.to_string());
    add("cluster", cfg.cluster.clone());
    add("auto_failback", if cfg.auto_failback { "on" } else { "off" }.to_string());
    add("hbversion", format!("tandem {}", env!("CARGO_PKG_VERSION")));
    v
}
