//! The heartbeat-protocol core: heartbeat 3.0.6's engine ([`crate::hb::proto::Engine`]) adapted
//! to the daemon's loop, in place of tandem's own core (`node.rs`) when the configuration
//! selects heartbeat's protocol (`--ha-d`, or `protocol heartbeat`).
//!
//! Pure, like `node.rs`: the loop feeds it [`Input`]s (bytes as the links delivered them,
//! operation results, operator commands, ticks) and carries out its [`Output`]s (bytes to send,
//! one resource operation at a time, replies, events, exit).
//!
//! The engine acquires and releases whole haresources groups; the loop runs one resource
//! operation at a time. This core sequences them as heartbeat's ResourceManager does:
//! - acquire: left to right, each resource's `status` first and `start` only if it is not
//!   running; a failed start gives the whole group up (every resource stopped, right to left)
//!   and puts its resources in standby 30 s later (heartbeat's `hb_standby local|foreign`);
//! - release: right to left, a failed `stop` retried every second, 10 attempts in all; then,
//!   if `status` says it still runs, the group is held as failed: tandem does not reboot the
//!   node as heartbeat does, it keeps retrying the stop every 10 s and does not tell the engine
//!   the hand-over is done, so the peer never starts a group that still runs here (the
//!   operator fixes the cause, or powers the node off);
//! - at start-up, before the engine asks for anything, every resource's `status` is probed and
//!   a group found running is stopped (a node restarted after a crash leaves nothing behind;
//!   heartbeat only logs it).
//!
//! The engine's requests queue up; each answer ([`Event::OpDone`]) goes back when the whole
//! request is done.
//!
//! Fencing: when the peer has a stonith line with a power method (ipmi, agent, exec: ha.cf's
//! `stonith`/`stonith_host` lines map to these), the engine runs with STONITH on, as heartbeat
//! with a STONITH device does: a dead peer that may hold groups is powered off first
//! ([`Output::Fence`], run by the loop as for tandem's core), and its groups are taken over
//! only once the power-off is confirmed ([`Input::FenceDone`] ok); a failed attempt is retried
//! every 5 s, without a takeover in between. With the `manual` method (heartbeat's
//! `meatware`), nothing runs: an operator powers the peer off and confirms with `tandem fenced
//! PEER` (meatware's `meatclient -c`). Without a stonith line, heartbeat's rule without
//! STONITH: the groups are taken over, with the warning that shared disks are not protected.

use std::collections::VecDeque;

use crate::cluster::{GroupId, GroupSel, Op, OpResult, ResId};
use crate::config::{Config, FenceMethod};
use crate::hb::auth::AuthKeys;
use crate::hb::classic::Deframer;
use crate::hb::proto::{self, Action, Engine, Event, GroupMask, NodeStatus, Notice, OpId, RscSet};
use crate::hb::HbError;
use crate::logging::RateLimit;
use crate::time::{Duration, Instant};

use super::io::{self, Input, Output, ReplyCode};

pub use super::hbevents::{GState, HbEvent, STANDBY_AFTER_FAILURE, STOP_FAILED_RETRY, STOP_RETRY, STOP_TRIES};

/// After a failed fence attempt the engine asks again this much later (heartbeat's 5 s).
pub const FENCE_RETRY: Duration = Duration::from_secs(5);

/// What the core is built from.
pub struct HbSetup {
    pub engine: proto::Config,
    pub keys: AuthKeys,
    /// `time(NULL)` now.
    pub wall_secs: u64,
    /// Each group's number of resources and whether it is ours (its preferred node is this one).
    pub groups: Vec<(usize, bool)>,
    /// Per link: a serial line (classic frames, deframed here) or not (one datagram = one frame).
    pub serial_links: Vec<bool>,
    /// How the peer is fenced (see the module documentation).
    pub fence: PeerFence,
}

/// How the peer is fenced before its groups are taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFence {
    /// No stonith line for the peer (or one that cannot run over heartbeat's protocol: the
    /// watchdog method): heartbeat's rule without STONITH.
    None,
    /// ipmi, agent or exec: attempts run in a child of the loop.
    Power,
    /// An operator powers it off and confirms with `tandem fenced PEER`.
    Manual,
}

impl PeerFence {
    pub fn of(cfg: &Config) -> PeerFence {
        match cfg.peer_stonith().map(|s| &s.method) {
            None | Some(FenceMethod::Watchdog) => PeerFence::None,
            Some(FenceMethod::Manual) => PeerFence::Manual,
            Some(_) => PeerFence::Power,
        }
    }
}

/// Where fencing of the peer stands (for `status` and the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceState {
    Idle,
    /// Attempt `attempt` runs, since `since`.
    Running {
        attempt: u32,
        since: Instant,
    },
    /// Attempt `attempt` failed; the engine asks again 5 s later.
    Failed {
        attempt: u32,
    },
    /// Manual method: waiting for `tandem fenced PEER`.
    Operator,
    /// The peer is off (until it is heard again).
    Confirmed,
}

impl FenceState {
    /// The interface's names (those of tandem's core).
    pub fn name(self) -> &'static str {
        match self {
            FenceState::Idle => "idle",
            FenceState::Running { .. } => "running",
            FenceState::Failed { .. } => "failed",
            FenceState::Operator => "operator",
            FenceState::Confirmed => "confirmed",
        }
    }
}

/// Fencing of the peer in this core.
#[derive(Debug)]
struct HbFence {
    method: PeerFence,
    state: FenceState,
    /// When the engine first asked, in this episode (for the time a fence took).
    since: Option<Instant>,
    /// The last attempt's number (attempts count from 1 in each episode).
    attempt: u32,
    /// The previous failure's detail, to report a repeated error once.
    last_error: Option<String>,
    /// An operator confirmed the peer off while no attempt ran: the engine's next request
    /// is answered at once.
    operator_ok: bool,
    attempts_total: u64,
    confirmed_total: u64,
    /// The last outcome: (confirmed, from the first request to it, detail).
    last: Option<(bool, Duration, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    /// Start-up: find groups that run here and stop them.
    Probe,
    Acquire,
    Release,
}

#[derive(Debug)]
struct Job {
    kind: JobKind,
    /// The engine's operation to answer when done.
    op: Option<OpId>,
    groups: VecDeque<usize>,
    ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Acquire: `status` of resource `r`, then `start` unless running.
    Status(usize),
    Start(usize),
    /// Stop resource `r` (attempt `attempt`, from 1). `giving_up`: after a failed start.
    Stop {
        r: usize,
        attempt: u32,
        giving_up: bool,
    },
    /// The stop attempts are used up: does it still run?
    StopCheck {
        r: usize,
        attempt: u32,
        giving_up: bool,
    },
    /// Start-up: `status` of resource `r`.
    Probe(usize),
}

#[derive(Debug)]
struct Cur {
    job: Job,
    /// The group being worked on and its step (`None` between groups).
    g: Option<(usize, Step)>,
    /// The operation asked of the loop, not answered yet.
    waiting: Option<(usize, usize, Op)>,
    /// A retry is due then (no operation running).
    retry_at: Option<Instant>,
}

/// The heartbeat-protocol core. See the module documentation.
pub struct HbCore {
    engine: Engine,
    keys: AuthKeys,
    start: Instant,
    wall0: u64,
    /// Per group: (resources, ours).
    groups: Vec<(usize, bool)>,
    gstate: Vec<GState>,
    /// A start failed here (until the group starts here again).
    start_failed: Vec<bool>,
    deframers: Vec<Option<Deframer>>,
    /// When each link last delivered bytes.
    last_rx: Vec<Option<Instant>>,
    last_peer: Option<Instant>,
    actions: Vec<Action>,
    jobs: VecDeque<Job>,
    cur: Option<Cur>,
    standby_due: Vec<(Instant, usize, RscSet)>,
    exit_at: Option<Instant>,
    exited: bool,
    peer_holds: GroupMask,
    rl: RateLimit,
    keepalive: Duration,
    fence: HbFence,
}

impl HbCore {
    pub fn new(now: Instant, s: HbSetup) -> Result<HbCore, HbError> {
        let keepalive = s.engine.keepalive;
        let engine = Engine::new(s.engine, s.keys.clone(), now, s.wall_secs)?;
        let n = s.groups.len();
        let deframers = s.serial_links.iter().map(|&serial| serial.then(Deframer::new)).collect();
        let mut jobs = VecDeque::new();
        jobs.push_back(Job { kind: JobKind::Probe, op: None, groups: (0..n).collect(), ok: true });
        Ok(HbCore {
            engine,
            keys: s.keys,
            start: now,
            wall0: s.wall_secs,
            gstate: vec![GState::Unknown; n],
            start_failed: vec![false; n],
            groups: s.groups,
            last_rx: vec![None; s.serial_links.len()],
            deframers,
            last_peer: None,
            actions: Vec::with_capacity(32),
            jobs,
            cur: None,
            standby_due: Vec::new(),
            exit_at: None,
            exited: false,
            peer_holds: GroupMask::EMPTY,
            rl: RateLimit::new(Duration::from_secs(10), 5),
            keepalive,
            fence: HbFence {
                method: s.fence,
                state: FenceState::Idle,
                since: None,
                attempt: 0,
                last_error: None,
                operator_ok: false,
                attempts_total: 0,
                confirmed_total: 0,
                last: None,
            },
        })
    }

    /// The engine's configuration (from [`Config`]): identity, timers, failback, groups.
    pub fn engine_config(cfg: &Config, uuid: [u8; 16], generation: u64) -> proto::Config {
        let local = cfg.local_name();
        let mut c = proto::Config::new(local, cfg.peer_name(), uuid, generation);
        c.nodes = cfg.nodes.clone();
        c.keepalive = cfg.keepalive;
        c.deadtime = cfg.deadtime;
        c.warntime = cfg.warntime;
        c.initdead = cfg.initdead;
        c.serial = cfg.links.iter().any(|l| matches!(l, crate::config::LinkConfig::Serial { .. }));
        // With a stonith line for the peer, heartbeat's rule with a STONITH device: a dead peer
        // that may hold groups is fenced before they are taken over (module documentation).
        c.stonith = PeerFence::of(cfg) != PeerFence::None;
        if let Some(hb) = cfg.heartbeat() {
            c.failback = match hb.failback {
                crate::config::HbFailback::On => proto::Failback::On,
                crate::config::HbFailback::Off => proto::Failback::Off,
                crate::config::HbFailback::Legacy => proto::Failback::Legacy,
            };
            c.auth_field = !hb.msgfmt_netstring;
            c.hopfudge = hb.hopfudge;
            c.groups = cfg
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| proto::Group {
                    key: hb.group_keys.get(i).cloned().unwrap_or_else(|| g.name.clone()),
                    local: g.preferred == cfg.local,
                })
                .collect();
        }
        c
    }

    /// The `ld` field of the messages we send (/proc/loadavg).
    pub fn set_loadavg(&mut self, ld: &str) {
        self.engine.set_loadavg(ld);
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn group_state(&self, g: usize) -> GState {
        self.gstate.get(g).copied().unwrap_or(GState::Unknown)
    }

    /// A start failed here (sticky until the group starts here again).
    pub fn start_failed(&self, g: usize) -> bool {
        self.start_failed.get(g).copied().unwrap_or(false)
    }

    /// The groups the peer says it holds.
    pub fn peer_holds(&self) -> GroupMask {
        self.peer_holds
    }

    /// When link `l` last delivered bytes.
    pub fn link_last_rx(&self, l: usize) -> Option<Instant> {
        self.last_rx.get(l).copied().flatten()
    }

    /// When anything last came from the peer.
    pub fn last_heard(&self) -> Option<Instant> {
        self.last_peer
    }

    pub fn exited(&self) -> bool {
        self.exited
    }

    /// How the peer is fenced.
    pub fn fence_method(&self) -> PeerFence {
        self.fence.method
    }

    /// Where fencing of the peer stands.
    pub fn fence_state(&self) -> FenceState {
        self.fence.state
    }

    /// (attempts, confirmed fences) since start.
    pub fn fence_counts(&self) -> (u64, u64) {
        (self.fence.attempts_total, self.fence.confirmed_total)
    }

    /// The last fence's outcome: (confirmed, from the peer's death to it, detail).
    pub fn fence_last(&self) -> Option<(bool, Duration, &str)> {
        self.fence.last.as_ref().map(|(ok, took, d)| (*ok, *took, d.as_str()))
    }

    /// `time(NULL)` at `now`.
    fn wall(&self, now: Instant) -> u64 {
        self.wall0.saturating_add(now.saturating_since(self.start).as_secs())
    }

    pub fn poll_at(&self) -> Instant {
        let mut t = self.engine.poll_at();
        if let Some(r) = self.cur.as_ref().and_then(|c| c.retry_at) {
            t = t.min(r);
        }
        for (at, _, _) in &self.standby_due {
            t = t.min(*at);
        }
        if let Some(x) = self.exit_at {
            t = t.min(x);
        }
        t
    }

    /// Feeds one input (see [`Input`]); appends what to do to `out`.
    pub fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Output>) {
        if self.exited {
            return;
        }
        match input {
            Input::Tick => {
                self.engine_event(now, Event::Tick, out);
                self.timers(now, out);
            }
            Input::Raw { link, bytes } => self.raw(now, link, bytes, out),
            Input::OpDone { group, resource, op, result } => self.op_done(now, group.0, resource.0, op, result, out),
            Input::Standby(sel) => {
                let set = self.set_of(sel);
                self.engine_event(now, Event::Standby(set), out);
            }
            Input::Takeover(sel) => {
                let set = self.set_of(sel);
                self.engine_event(now, Event::Takeover(set), out);
            }
            Input::Shutdown => self.engine_event(now, Event::Shutdown, out),
            Input::OutdateAsk { conn, .. } => out.push(Output::Reply {
                conn,
                code: ReplyCode::Failed,
                text: "fence-peer is not answered over heartbeat's protocol (heartbeat used dopd); \
                       the peer's disk was not outdated\n"
                    .to_string(),
            }),
            Input::FenceNow { conn } => out.push(Output::Reply {
                conn,
                code: ReplyCode::Failed,
                text: "over heartbeat's protocol the peer is fenced when it is declared dead, not on request; \
                       use tandem fence --local NODE\n"
                    .to_string(),
            }),
            Input::Fenced { conn } => self.operator_confirms(now, conn, out),
            Input::FenceDone { attempt, ok, detail } => self.fence_done(now, attempt, ok, detail, out),
            Input::Packet { .. }
            | Input::OutdateDone { .. }
            | Input::ConnGone(_)
            | Input::Reload { .. }
            | Input::FenceCheckDone { .. }
            | Input::PingReply { .. }
            | Input::Cleanup(_) => {}
        }
        self.pump(now, out);
    }

    /// `hb_standby SET` (`failback` = foreign).
    pub fn hb_standby(&mut self, now: Instant, set: RscSet, out: &mut Vec<Output>) {
        self.engine_event(now, Event::Standby(set), out);
        self.pump(now, out);
    }

    /// `hb_takeover SET`.
    pub fn hb_takeover(&mut self, now: Instant, set: RscSet, out: &mut Vec<Output>) {
        self.engine_event(now, Event::Takeover(set), out);
        self.pump(now, out);
    }

    /// The resource set of a tandem group selection: all, or the one of that group.
    fn set_of(&self, sel: GroupSel) -> RscSet {
        match sel {
            GroupSel::All => RscSet::ALL,
            GroupSel::One(GroupId(g)) => match self.groups.get(g) {
                Some((_, true)) => RscSet::LOCAL,
                Some((_, false)) => RscSet::FOREIGN,
                None => RscSet::NONE,
            },
        }
    }

    fn raw(&mut self, now: Instant, link: usize, bytes: &[u8], out: &mut Vec<Output>) {
        if let Some(t) = self.last_rx.get_mut(link) {
            *t = Some(now);
        }
        self.last_peer = Some(now);
        let mut frames: Vec<Vec<u8>> = Vec::new();
        match self.deframers.get_mut(link) {
            Some(Some(d)) => d.feed(bytes, |f| frames.push(f.to_vec())),
            _ => frames.push(bytes.to_vec()),
        }
        for f in frames {
            self.engine_event(now, Event::Received { link, frame: &f }, out);
        }
    }

    fn timers(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut i = 0;
        while i < self.standby_due.len() {
            let Some(&(at, g, set)) = self.standby_due.get(i) else { break };
            if at <= now {
                self.standby_due.swap_remove(i);
                out.push(ev(HbEvent::StandbyAfterFailure { group: g, set }));
                self.engine_event(now, Event::Standby(set), out);
            } else {
                i += 1;
            }
        }
        if let Some(c) = self.cur.as_mut() {
            if c.retry_at.is_some_and(|t| t <= now) {
                c.retry_at = None;
                self.issue_step(out);
            }
        }
        if self.exit_at.is_some_and(|t| t <= now) {
            self.exit_at = None;
            self.exited = true;
            out.push(Output::Exit);
        }
    }

    /// Feeds the engine and carries out its actions.
    fn engine_event(&mut self, now: Instant, e: Event<'_>, out: &mut Vec<Output>) {
        let mut actions = std::mem::take(&mut self.actions);
        self.engine.handle(now, e, &mut actions);
        for a in actions.drain(..) {
            self.action(now, a, out);
        }
        self.actions = actions;
    }

    fn action(&mut self, now: Instant, a: Action, out: &mut Vec<Output>) {
        match a {
            Action::Send(o) => out.push(Output::SendRaw { udp: o.udp, serial: o.serial }),
            Action::Acquire { op, groups, .. } => self.jobs.push_back(Job {
                kind: JobKind::Acquire,
                op: Some(op),
                groups: groups.iter().filter(|&g| g < self.groups.len()).collect(),
                ok: true,
            }),
            Action::Release { op, groups, .. } => self.jobs.push_back(Job {
                kind: JobKind::Release,
                op: Some(op),
                groups: {
                    let mut v: VecDeque<usize> = groups.iter().filter(|&g| g < self.groups.len()).collect();
                    v.make_contiguous().reverse();
                    v
                },
                ok: true,
            }),
            Action::Fence => self.fence_asked(now, out),
            Action::PeerStatus { old, new } => {
                if matches!(new, NodeStatus::Up | NodeStatus::Active) && self.fence.state == FenceState::Confirmed {
                    // Back after its fence: a later death is a new episode.
                    self.fence.state = FenceState::Idle;
                }
                out.push(ev(HbEvent::Peer { old, new }))
            }
            Action::Link { link, up } => {
                out.push(Output::Event(if up { io::Event::LinkUp(link) } else { io::Event::LinkDown(link) }))
            }
            Action::PeerRestarted { .. } => out.push(Output::Event(io::Event::PeerRestarted)),
            Action::PeerHolds(m) => {
                self.peer_holds = m;
                out.push(ev(HbEvent::PeerHolds(m)));
            }
            Action::LocalStatus(s) => out.push(ev(HbEvent::LocalStatus(s))),
            Action::ShutdownDone => {
                out.push(ev(HbEvent::ShutdownDone));
                // heartbeat sends status for a while after `shutdone`; the peer has taken over
                // on `shutdone` already.
                self.exit_at = Some(now + (self.keepalive * 2).min(Duration::from_secs(2)));
            }
            Action::Restart => self.restart(now, out),
            // Reported with its detail by `fence_done`.
            Action::Notice(Notice::FenceFailed) => {}
            Action::Notice(n) => {
                if network_triggered(&n) {
                    if let Some(suppressed) = self.rl.allow(now) {
                        out.push(ev(HbEvent::Notice { notice: n, suppressed }));
                    }
                } else {
                    out.push(ev(HbEvent::Notice { notice: n, suppressed: 0 }));
                }
            }
        }
    }

    // ------------------------------------------------------------------ fencing

    /// The engine asks to fence the peer (it was declared dead and may hold groups), first
    /// or again 5 s after a failure; it takes over only on [`Event::Fenced`] ok.
    fn fence_asked(&mut self, now: Instant, out: &mut Vec<Output>) {
        let f = &mut self.fence;
        let first = f.since.is_none();
        if first {
            f.since = Some(now);
            f.attempt = 0;
            f.last_error = None;
        }
        match f.method {
            PeerFence::None => {
                // The engine runs without STONITH then and never asks; answer so nothing waits.
                out.push(ev(HbEvent::Unsupported("fencing")));
                self.fenced_engine(now, false, out);
            }
            PeerFence::Manual if f.operator_ok => self.confirm(now, "confirmed by an operator".to_string(), out),
            PeerFence::Manual => {
                f.state = FenceState::Operator;
                if first {
                    out.push(Output::Event(io::Event::FenceOperator { never_heard: false }));
                }
            }
            PeerFence::Power if f.operator_ok => self.confirm(now, "confirmed by an operator".to_string(), out),
            PeerFence::Power => {
                f.attempt = f.attempt.saturating_add(1);
                f.attempts_total += 1;
                f.state = FenceState::Running { attempt: f.attempt, since: now };
                if first {
                    out.push(Output::Event(io::Event::FenceScheduled { delay: Duration::ZERO }));
                }
                out.push(Output::Fence { attempt: f.attempt });
                if f.attempt == 1 {
                    out.push(Output::Event(io::Event::FenceStarted { attempt: 1 }));
                }
            }
        }
    }

    /// Attempt `attempt` ended (a result for an attempt that is not the running one is dropped).
    fn fence_done(&mut self, now: Instant, attempt: u32, ok: bool, detail: &str, out: &mut Vec<Output>) {
        if !matches!(self.fence.state, FenceState::Running { attempt: a, .. } if a == attempt) {
            return;
        }
        if ok {
            self.confirm(now, detail.to_string(), out);
            return;
        }
        let f = &mut self.fence;
        let repeated = f.last_error.as_deref() == Some(detail);
        f.last_error = Some(detail.to_string());
        f.state = FenceState::Failed { attempt };
        f.last = Some((false, now.saturating_since(f.since.unwrap_or(now)), detail.to_string()));
        out.push(Output::Event(io::Event::FenceFailed {
            attempt,
            detail: detail.to_string(),
            repeated,
            retry_in: Some(FENCE_RETRY),
        }));
        self.fenced_engine(now, false, out);
    }

    /// The peer is off: tell the engine, which takes its groups over.
    fn confirm(&mut self, now: Instant, detail: String, out: &mut Vec<Output>) {
        let f = &mut self.fence;
        let took = now.saturating_since(f.since.unwrap_or(now));
        f.state = FenceState::Confirmed;
        f.since = None;
        f.operator_ok = false;
        f.confirmed_total += 1;
        f.last = Some((true, took, detail.clone()));
        out.push(Output::Event(io::Event::FenceConfirmed { took, detail }));
        self.fenced_engine(now, true, out);
    }

    /// `tandem fenced PEER`: an operator says the peer is off.
    fn operator_confirms(&mut self, now: Instant, conn: io::ConnId, out: &mut Vec<Output>) {
        let peer_dead = self.engine.peer_status() == NodeStatus::Dead;
        let (code, text) = match self.fence.state {
            FenceState::Operator => {
                self.confirm(now, "confirmed by an operator".to_string(), out);
                (ReplyCode::Ok, "confirmed: taking its groups over\n")
            }
            FenceState::Running { .. } => {
                out.push(Output::CancelFence);
                self.confirm(now, "confirmed by an operator".to_string(), out);
                (ReplyCode::Ok, "confirmed: the running attempt is stopped; taking its groups over\n")
            }
            FenceState::Failed { .. } => {
                // The engine asks again within 5 s: answered at once then.
                self.fence.operator_ok = true;
                (ReplyCode::Ok, "confirmed: taking its groups over within 5 s\n")
            }
            FenceState::Idle | FenceState::Confirmed if peer_dead => {
                (ReplyCode::Ok, "nothing to confirm: it is not being fenced\n")
            }
            FenceState::Idle | FenceState::Confirmed => {
                (ReplyCode::Failed, "refused: the peer is not dead here, so it is not being fenced\n")
            }
        };
        out.push(Output::Reply { conn, code, text: text.to_string() });
    }

    fn fenced_engine(&mut self, now: Instant, ok: bool, out: &mut Vec<Output>) {
        self.engine_event(now, Event::Fenced { ok }, out);
    }

    /// A healed partition: the engine gave everything up; start a new one with a higher
    /// generation (heartbeat restarts itself here).
    fn restart(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut cfg = self.engine.config().clone();
        let generation = cfg.generation.saturating_add(1).max(self.wall(now));
        cfg.generation = generation;
        cfg.seed = generation ^ 0x9e37_79b9_7f4a_7c15;
        match Engine::new(cfg, self.keys.clone(), now, self.wall(now)) {
            Ok(e) => {
                self.engine = e;
                self.peer_holds = GroupMask::EMPTY;
                // The new engine asks nothing of the old one's fencing: the peer is back.
                if matches!(self.fence.state, FenceState::Running { .. }) {
                    out.push(Output::CancelFence);
                }
                if self.fence.state != FenceState::Idle {
                    self.fence.state = FenceState::Idle;
                    self.fence.since = None;
                    self.fence.operator_ok = false;
                    out.push(Output::Event(io::Event::FenceCancelled));
                }
                out.push(Output::SaveGeneration(generation));
                out.push(ev(HbEvent::Restarted { generation }));
            }
            Err(_) => out.push(ev(HbEvent::Unsupported("restart"))),
        }
    }

    // ------------------------------------------------------------------ resource work

    /// Starts queued work while none runs.
    fn pump(&mut self, now: Instant, out: &mut Vec<Output>) {
        for _ in 0..1000 {
            if self.cur.is_none() {
                let Some(job) = self.jobs.pop_front() else { return };
                self.cur = Some(Cur { job, g: None, waiting: None, retry_at: None });
            }
            let busy = self.cur.as_ref().is_some_and(|c| c.waiting.is_some() || c.retry_at.is_some());
            if busy {
                return;
            }
            self.next_group(now, out);
        }
    }

    fn set_state(&mut self, g: usize, to: GState, out: &mut Vec<Output>) {
        if let Some(s) = self.gstate.get_mut(g) {
            if *s != to {
                out.push(ev(HbEvent::Group { group: g, from: *s, to }));
                *s = to;
            }
        }
    }

    fn n_res(&self, g: usize) -> usize {
        self.groups.get(g).map(|(n, _)| *n).unwrap_or(0)
    }

    /// The current group is done (or none was started): take the next one, or finish the job.
    fn next_group(&mut self, now: Instant, out: &mut Vec<Output>) {
        loop {
            let Some(c) = self.cur.as_mut() else { return };
            c.g = None;
            let kind = c.job.kind;
            let Some(g) = c.job.groups.pop_front() else {
                self.finish_job(now, out);
                return;
            };
            let n = self.n_res(g);
            let state = self.group_state(g);
            let first = match kind {
                JobKind::Acquire if state == GState::Started => continue,
                JobKind::Release if state == GState::Stopped => continue,
                _ if n == 0 => {
                    let to = if kind == JobKind::Acquire { GState::Started } else { GState::Stopped };
                    self.set_state(g, to, out);
                    continue;
                }
                JobKind::Acquire => {
                    self.set_state(g, GState::Starting, out);
                    Step::Status(0)
                }
                JobKind::Release => {
                    self.set_state(g, GState::Stopping, out);
                    Step::Stop { r: n - 1, attempt: 1, giving_up: false }
                }
                JobKind::Probe => Step::Probe(0),
            };
            if let Some(c) = self.cur.as_mut() {
                c.g = Some((g, first));
            }
            self.issue_step(out);
            return;
        }
    }

    fn finish_job(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(c) = self.cur.take() else { return };
        if let Some(op) = c.job.op {
            self.engine_event(now, Event::OpDone { op, ok: c.job.ok }, out);
        }
    }

    /// Asks the loop for the operation of the current step.
    fn issue_step(&mut self, out: &mut Vec<Output>) {
        let Some(c) = self.cur.as_mut() else { return };
        let Some((g, step)) = c.g else { return };
        let (r, op) = match step {
            Step::Status(r) | Step::Probe(r) => (r, Op::Status),
            Step::StopCheck { r, .. } => (r, Op::Status),
            Step::Start(r) => (r, Op::Start),
            Step::Stop { r, .. } => (r, Op::Stop),
        };
        c.waiting = Some((g, r, op));
        out.push(Output::Run { group: GroupId(g), resource: ResId(r), op });
    }

    fn op_done(&mut self, now: Instant, g: usize, r: usize, op: Op, result: OpResult, out: &mut Vec<Output>) {
        let Some(c) = self.cur.as_mut() else { return };
        if c.waiting != Some((g, r, op)) {
            return;
        }
        c.waiting = None;
        let Some((_, step)) = c.g else { return };
        let n = self.n_res(g);
        let next = match (step, result) {
            (Step::Status(r), OpResult::Running) => self.acquire_next(g, r + 1, out),
            (Step::Status(r), _) => Some(Step::Start(r)),
            (Step::Start(r), OpResult::Failed) => {
                out.push(ev(HbEvent::StartFailed { group: g, resource: r }));
                if let Some(f) = self.start_failed.get_mut(g) {
                    *f = true;
                }
                if let Some(c) = self.cur.as_mut() {
                    c.job.ok = false;
                }
                let set =
                    if self.groups.get(g).is_some_and(|(_, ours)| *ours) { RscSet::LOCAL } else { RscSet::FOREIGN };
                self.standby_due.push((now + STANDBY_AFTER_FAILURE, g, set));
                self.set_state(g, GState::Stopping, out);
                Some(Step::Stop { r: n.saturating_sub(1), attempt: 1, giving_up: true })
            }
            (Step::Start(r), _) => self.acquire_next(g, r + 1, out),
            (Step::Stop { r, attempt, giving_up }, OpResult::Failed) => {
                if attempt < STOP_TRIES {
                    self.retry(now + STOP_RETRY, Step::Stop { r, attempt: attempt + 1, giving_up });
                    return;
                }
                Some(Step::StopCheck { r, attempt, giving_up })
            }
            (Step::Stop { r, giving_up, .. }, _) => self.stop_next(g, r, giving_up, out),
            (Step::StopCheck { r, giving_up, .. }, OpResult::Stopped) => {
                out.push(ev(HbEvent::StopNotLsb { group: g, resource: r }));
                self.stop_next(g, r, giving_up, out)
            }
            (Step::StopCheck { r, attempt, giving_up }, _) => {
                if self.group_state(g) != GState::StopFailed || attempt % STOP_TRIES == 0 {
                    out.push(ev(HbEvent::StopFailed { group: g, resource: r, attempts: attempt }));
                }
                self.set_state(g, GState::StopFailed, out);
                if let Some(c) = self.cur.as_mut() {
                    c.job.ok = false;
                }
                self.retry(now + STOP_FAILED_RETRY, Step::Stop { r, attempt: attempt + 1, giving_up });
                return;
            }
            (Step::Probe(r), OpResult::Stopped) => {
                if r + 1 < n {
                    Some(Step::Probe(r + 1))
                } else {
                    self.set_state(g, GState::Stopped, out);
                    None
                }
            }
            (Step::Probe(r), _) => {
                out.push(ev(HbEvent::FoundRunning { group: g, resource: r }));
                self.set_state(g, GState::Stopping, out);
                Some(Step::Stop { r: n.saturating_sub(1), attempt: 1, giving_up: false })
            }
        };
        match next {
            Some(s) => {
                if let Some(c) = self.cur.as_mut() {
                    c.g = Some((g, s));
                }
                self.issue_step(out);
            }
            None => self.next_group(now, out),
        }
    }

    /// Acquire: resource `r` next, or the group is started.
    fn acquire_next(&mut self, g: usize, r: usize, out: &mut Vec<Output>) -> Option<Step> {
        if r < self.n_res(g) {
            return Some(Step::Status(r));
        }
        if let Some(f) = self.start_failed.get_mut(g) {
            *f = false;
        }
        self.set_state(g, GState::Started, out);
        None
    }

    /// Release: the resource left of `r` next, or the group is stopped.
    fn stop_next(&mut self, g: usize, r: usize, giving_up: bool, out: &mut Vec<Output>) -> Option<Step> {
        if r > 0 {
            return Some(Step::Stop { r: r - 1, attempt: 1, giving_up });
        }
        self.set_state(g, GState::Stopped, out);
        None
    }

    fn retry(&mut self, at: Instant, step: Step) {
        if let Some(c) = self.cur.as_mut() {
            if let Some((g, _)) = c.g {
                c.g = Some((g, step));
            }
            c.retry_at = Some(at);
        }
    }
}

fn ev(e: HbEvent) -> Output {
    Output::Event(io::Event::Hb(e))
}

/// Notices the peer or the network can repeat at will: rate-limited.
fn network_triggered(n: &Notice) -> bool {
    matches!(
        n,
        Notice::BadFrame { .. }
            | Notice::UnknownNode(_)
            | Notice::LostPackets { .. }
            | Notice::NoPacketsMissing
            | Notice::Replay { .. }
            | Notice::LateHeartbeat(_)
            | Notice::CannotRetransmit { .. }
            | Notice::IrretrievablyLost(_)
            | Notice::Unexpected(_)
    )
}

#[cfg(test)]
mod tests;
