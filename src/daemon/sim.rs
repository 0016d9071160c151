//! Deterministic two-node simulation of the daemon's real core ([`Node`]: membership,
//! cluster, heartbeat de-duplication), with a fake loop per node that runs operations after
//! random delays (and can be told to fail them), and a lossy, delaying, duplicating,
//! reordering network of two links. Packets go through the real wire codec (encoding, MAC,
//! replay window), as the daemon sends them: one copy per link, each with its own sequence
//! number.
//!
//! The safety invariant is checked after every input either node handles; liveness is
//! checked after the commands stop and the network is healed.

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::fencing::{FenceSetup, Method};
use super::io::{Event as NodeEvent, Input, Msg, Output};
use super::node::{Node, NodeSetup};
use super::partition::{PartitionSetup, PeerFencing};
use crate::cluster::{GroupDef, GroupId, GroupSel, GroupView, Op, OpResult, ResId, Settings};
use crate::config::FencePolicy;
use crate::membership::{PeerState, Timing};
use crate::testutil::Rng;
use crate::time::{Duration, Instant};
use crate::wire::auth::Codec;
use crate::wire::{GroupState, NodeState, Repr};

const KEEPALIVE: u64 = 100;
const DEADTIME: u64 = 1000;
const INITDEAD: u64 = 2000;
const LINKS: usize = 2;
const TRACE_LINES: usize = 300;
const KEY: &[u8] = b"simulation key";
const PING_INTERVAL: u64 = 100;
const PING_DEADTIME: u64 = 400;
const PING_HOLD: u64 = 600;

#[derive(Clone)]
struct Packet {
    to: usize,
    link: usize,
    at: u64,
    bytes: Vec<u8>,
}

struct SimNode {
    node: Option<Node>,
    codec: Codec,
    gen: u64,
    /// Physical state of every resource (what a real host would have up).
    held: Vec<Vec<bool>>,
    /// Per group: (due, resource, op).
    pending: Vec<Option<(u64, usize, Op)>>,
    fail_start: Vec<Vec<bool>>,
    fail_stop: Vec<Vec<bool>>,
    restart_at: Option<u64>,
    /// Restart this long after a clean exit (None: stay down).
    restart_after_exit: Option<u64>,
    deaths: u32,
    exits: u32,
    /// A fence attempt of this node's completes at this time.
    fence_due: Option<u64>,
    fence_attempt: u32,
    /// This node was powered off while its own attempt was under way: the BMC carries it
    /// out all the same (a mutual fence).
    fence_orphan: bool,
    /// Times this node was powered off by its peer's fence.
    fenced: u32,
    /// Its last verdict on the peer in this episode: (when, its partition slot).
    verdict: Option<(u64, u64)>,
}

pub(super) struct Sim {
    pub(super) seed: u64,
    rng: Rng,
    pub(super) now: u64,
    nodes: [SimNode; 2],
    n_res: Vec<usize>,
    /// Preferred node per group.
    pref: Vec<usize>,
    settings: Settings,
    /// A death was seen: a double hold of this group is excused until it is resolved.
    excused: Vec<bool>,
    cut: bool,
    /// One-way cut: packets to this node are lost.
    cut_to: [bool; 2],
    heal_at: Option<u64>,
    loss: u64,
    dup: u64,
    delay: (u64, u64),
    op_delay: (u64, u64),
    inflight: Vec<Packet>,
    /// Each node fences the other (a power method); a fenced node is powered off.
    fencing: bool,
    /// Both nodes were powered off by each other's fence.
    mutual_fences: u32,
    /// Of those, the ones whose two verdicts lay further apart than their slots cover.
    skewed_fences: u32,
    /// The last one-way cut began then: the two nodes' verdicts may be far apart, and a
    /// mutual fence is possible (and counted, not failed).
    asymmetric_at: Option<u64>,
    fence_time: (u64, u64),
    /// Percentage of fence attempts that fail (the BMC does not answer).
    fence_fail: u64,
    /// Resources are monitored this often (None: not at all).
    monitor: Option<Duration>,
    /// Ping targets (0: none); a node reaches them while its uplink is up.
    targets: usize,
    uplink: [bool; 2],
    /// Echo replies on their way: (to node, index, seq, at).
    echoes: Vec<(usize, u16, u16, u64)>,
    trace: VecDeque<String>,
    out: Vec<Output>,
    repr: Repr,
    buf: Vec<u8>,
}

fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

impl Sim {
    /// Groups: (preferred node, resources). Both nodes boot at time 0 (node 1 a little later).
    pub(super) fn new(seed: u64, settings: Settings, groups: &[(usize, usize)]) -> Sim {
        let n_res: Vec<usize> = groups.iter().map(|g| g.1).collect();
        let pref: Vec<usize> = groups.iter().map(|g| g.0).collect();
        let mk = |i: u8| SimNode {
            node: None,
            codec: Codec::new(KEY, "sim", i, 1 - i, 0),
            gen: 0,
            held: n_res.iter().map(|&n| vec![false; n]).collect(),
            pending: vec![None; n_res.len()],
            fail_start: n_res.iter().map(|&n| vec![false; n]).collect(),
            fail_stop: n_res.iter().map(|&n| vec![false; n]).collect(),
            restart_at: None,
            restart_after_exit: None,
            deaths: 0,
            exits: 0,
            fence_due: None,
            verdict: None,
            fence_attempt: 0,
            fence_orphan: false,
            fenced: 0,
        };
        let mut rng = Rng::new(seed);
        let second = rng.range(0, 300);
        let mut sim = Sim {
            seed,
            rng,
            now: 0,
            nodes: [mk(0), mk(1)],
            excused: vec![false; n_res.len()],
            n_res,
            pref,
            settings,
            cut: false,
            cut_to: [false; 2],
            heal_at: None,
            loss: 0,
            dup: 5,
            delay: (1, 40),
            op_delay: (0, 60),
            inflight: Vec::new(),
            fencing: false,
            mutual_fences: 0,
            skewed_fences: 0,
            asymmetric_at: None,
            fence_time: (5, 60),
            fence_fail: 0,
            monitor: None,
            targets: 0,
            uplink: [true; 2],
            echoes: Vec::new(),
            trace: VecDeque::new(),
            out: Vec::with_capacity(64),
            repr: super::build::empty_repr(),
            buf: vec![0; super::MAX_PACKET],
        };
        sim.nodes[0].restart_at = Some(0);
        sim.nodes[1].restart_at = Some(second);
        sim
    }

    fn note(&mut self, s: String) {
        if self.trace.len() >= TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace.push_back(s);
    }

    fn fail(&self, msg: &str) -> ! {
        let mut s = String::new();
        for l in &self.trace {
            let _ = writeln!(s, "  {l}");
        }
        panic!("seed {} t={}ms: {msg}\ntrace (last {} lines):\n{s}", self.seed, self.now, self.trace.len());
    }

    // ----- node life -----

    fn restart(&mut self, i: usize) {
        let now = self.now;
        let groups: Vec<GroupDef> = (0..self.n_res.len())
            .map(|g| GroupDef {
                name: format!("g{g}"),
                preferred_is_local: self.pref[g] == i,
                n_resources: self.n_res[g],
                monitor: vec![self.monitor; self.n_res[g]],
            })
            .collect();
        let n = &mut self.nodes[i];
        n.gen += 1;
        let setup = NodeSetup {
            timing: Timing {
                keepalive: Duration::from_millis(KEEPALIVE),
                warntime: Duration::from_millis(DEADTIME / 2),
                deadtime: Duration::from_millis(DEADTIME),
                initdead: Duration::from_millis(INITDEAD),
            },
            groups,
            settings: self.settings,
            generation: n.gen,
            n_links: LINKS,
            leave_linger: Duration::from_millis(300),
            config_digest: 0x5157,
            fence: FenceSetup {
                method: if self.fencing { Method::Power } else { Method::None },
                policy: FencePolicy {
                    // Automatic: from the keepalive and the fence time below.
                    delay: None,
                    timeout: Duration::from_secs(5),
                    check: None,
                    // The simulation restarts nodes on its own: a node that never heard its
                    // peer after a restart would wait for an operator for ever.
                    wait_for_peer: false,
                    required: self.fencing,
                },
                first_node: i == 0,
                keepalive: Duration::from_millis(KEEPALIVE),
                default_fence_time: Duration::from_millis(100),
            },
            partition: PartitionSetup {
                targets: (0..self.targets).map(|t| std::net::IpAddr::from([192, 0, 2, 200 + t as u8])).collect(),
                ping_interval: Duration::from_millis(PING_INTERVAL),
                ping_deadtime: Duration::from_millis(PING_DEADTIME),
                ping_hold: Duration::from_millis(PING_HOLD),
                ..PartitionSetup::none(if self.fencing { PeerFencing::Power } else { PeerFencing::None })
            },
        };
        n.node = Some(Node::new(ms(now), setup));
        n.codec = Codec::new(KEY, "sim", i as u8, 1 - i as u8, n.gen);
        n.restart_at = None;
        self.note(format!("{now} n{i} BOOT gen {}", self.nodes[i].gen));
        self.deliver(i, Input::Tick);
    }

    /// The daemon dies. `keep`: kill -9 (resources stay up); else power-off (they vanish).
    pub(super) fn crash(&mut self, i: usize, keep: bool, restart_after: Option<u64>) {
        if self.nodes[i].node.is_none() {
            return;
        }
        self.note(format!("{} n{i} CRASH keep={keep}", self.now));
        let n_groups = self.n_res.len();
        for g in 0..n_groups {
            if let Some((_, r, op)) = self.nodes[i].pending[g].take() {
                if keep && op == Op::Start && self.rng.percent(50) {
                    self.nodes[i].held[g][r] = true;
                }
                if keep && op == Op::Stop && self.rng.percent(50) {
                    self.nodes[i].held[g][r] = false;
                }
            }
            if !keep {
                self.nodes[i].held[g].iter_mut().for_each(|h| *h = false);
            }
        }
        self.nodes[i].node = None;
        self.nodes[i].restart_at = restart_after.map(|d| self.now + d);
        if !self.nodes[i].fence_orphan {
            // The fence child dies with the daemon.
            self.nodes[i].fence_due = None;
        }
        self.check();
    }

    pub(super) fn cmd(&mut self, i: usize, input: Input<'_>) {
        if self.nodes[i].node.is_some() {
            self.deliver(i, input);
        }
    }

    pub(super) fn shutdown(&mut self, i: usize, restart_after_exit: Option<u64>) {
        self.nodes[i].restart_after_exit = restart_after_exit;
        self.cmd(i, Input::Shutdown);
    }

    pub(super) fn partition(&mut self, duration: u64) {
        self.note(format!("{} PARTITION {duration}ms", self.now));
        self.cut = true;
        self.heal_at = Some(self.now + duration);
    }

    /// Only packets to node `to` are lost, for `duration`.
    pub(super) fn one_way_cut(&mut self, to: usize, duration: u64) {
        self.note(format!("{} ONE-WAY CUT to n{to} {duration}ms", self.now));
        self.asymmetric_at = Some(self.now);
        self.cut_to[to] = true;
        self.heal_at = Some(self.now + duration);
    }

    /// Each node fences the other before taking over (call before the nodes boot).
    pub(super) fn with_fencing(mut self) -> Sim {
        self.fencing = true;
        self
    }

    pub(super) fn fenced(&self, i: usize) -> u32 {
        self.nodes[i].fenced
    }

    pub(super) fn mutual_fences(&self) -> u32 {
        self.mutual_fences
    }

    pub(super) fn skewed_fences(&self) -> u32 {
        self.skewed_fences
    }

    /// Both nodes ping this many targets (call before the nodes boot).
    pub(super) fn with_targets(mut self, n: usize) -> Sim {
        self.targets = n;
        self
    }

    /// Resources are monitored every `ms` (call before the nodes boot).
    pub(super) fn with_monitor(mut self, ms: u64) -> Sim {
        self.monitor = Some(Duration::from_millis(ms));
        self
    }

    /// Resource `r` of group `g` dies on node `i` (its process crashed).
    pub(super) fn kill_resource(&mut self, i: usize, g: usize, r: usize) {
        if self.nodes[i].held[g][r] {
            self.note(format!("{} n{i} g{g} r{r} DIES", self.now));
            self.nodes[i].held[g][r] = false;
        }
    }

    /// Node `i`'s uplink: while down, no target answers it.
    pub(super) fn set_uplink(&mut self, i: usize, up: bool) {
        self.note(format!("{} n{i} UPLINK {}", self.now, if up { "up" } else { "DOWN" }));
        self.uplink[i] = up;
    }

    pub(super) fn set_fence_fail(&mut self, pct: u64) {
        self.fence_fail = pct;
    }

    pub(super) fn set_loss(&mut self, pct: u64) {
        self.loss = pct;
    }

    pub(super) fn fail_start(&mut self, i: usize, g: usize, r: usize, on: bool) {
        self.nodes[i].fail_start[g][r] = on;
    }

    pub(super) fn fail_stop(&mut self, i: usize, g: usize, r: usize, on: bool) {
        self.nodes[i].fail_stop[g][r] = on;
    }

    /// Commands stop: heal the network, clear injected failures, bring every node up.
    pub(super) fn quiet(&mut self) {
        self.uplink = [true; 2];
        self.cut = false;
        self.cut_to = [false; 2];
        self.heal_at = None;
        self.loss = 0;
        for i in 0..2 {
            let n = &mut self.nodes[i];
            n.fail_start.iter_mut().flatten().for_each(|f| *f = false);
            n.fail_stop.iter_mut().flatten().for_each(|f| *f = false);
            n.restart_after_exit = Some(50);
            if n.node.is_none() && n.restart_at.is_none() {
                n.restart_at = Some(self.now + 10);
            }
        }
    }

    // ----- the fake loop -----

    fn deliver(&mut self, i: usize, input: Input<'_>) {
        let now = ms(self.now);
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        node.handle(now, input, &mut out);
        node.flush(now, &mut out);
        let quiet = matches!(input, Input::Packet { .. } | Input::Tick | Input::PingReply { .. })
            && out.iter().all(|o| matches!(o, Output::Send(Msg::Heartbeat) | Output::Ping { .. }));
        if !quiet {
            let line = format!("{} n{i} {:?} -> {:?}", self.now, input, out);
            self.note(line);
        }
        for o in out.drain(..) {
            self.apply(i, o);
        }
        self.out = out;
        self.check();
    }

    fn apply(&mut self, i: usize, o: Output) {
        match o {
            Output::Run { group: GroupId(group), resource: ResId(resource), op } => {
                let node_state = self.nodes[i].node.as_ref().map(|n| n.node_state());
                if op == Op::Start && node_state != Some(NodeState::Active) {
                    self.fail("start while not active");
                }
                if self.nodes[i].pending[group].is_some() {
                    self.fail("two operations outstanding for one group");
                }
                let d = self.rng.range(self.op_delay.0, self.op_delay.1);
                self.nodes[i].pending[group] = Some((self.now + d, resource, op));
            }
            Output::Send(Msg::Heartbeat) => self.send(i),
            Output::Send(_)
            | Output::SavePeerMark { .. }
            | Output::SpawnOutdate { .. }
            | Output::Reply { .. }
            | Output::Hold { .. }
            | Output::SendRaw { .. }
            | Output::SaveGeneration(_) => {}
            Output::Event(NodeEvent::FenceScheduled { delay }) => {
                self.nodes[i].verdict = Some((self.now, delay.as_millis() as u64));
            }
            Output::Event(NodeEvent::Peer { to: PeerState::Up, .. }) => self.nodes[i].verdict = None,
            Output::Event(NodeEvent::Peer { to: PeerState::Dead, .. }) => {
                self.nodes[i].deaths += 1;
                self.excused.iter_mut().for_each(|e| *e = true);
                self.note(format!("{} n{i} sees peer DEAD", self.now));
            }
            Output::Fence { attempt } => {
                if !self.fencing {
                    self.fail("fence without a fence method");
                }
                let d = self.rng.range(self.fence_time.0, self.fence_time.1);
                self.note(format!("{} n{i} FENCE attempt {attempt} ({d}ms)", self.now));
                self.nodes[i].fence_due = Some(self.now + d);
                self.nodes[i].fence_attempt = attempt;
            }
            Output::CancelFence => self.nodes[i].fence_due = None,
            Output::FenceCheck { .. } => self.fail("a device check with fence_check off"),
            Output::Ping { index, seq } => {
                if self.uplink[i] {
                    let at = self.now + self.rng.range(1, 5);
                    self.echoes.push((i, index, seq, at));
                }
            }
            Output::Event(_) => {}
            Output::Exit => {
                for g in 0..self.n_res.len() {
                    if self.nodes[i].held[g].iter().any(|&h| h) {
                        self.fail("exit with resources still up");
                    }
                }
                self.note(format!("{} n{i} EXIT", self.now));
                self.nodes[i].node = None;
                self.nodes[i].exits += 1;
                self.nodes[i].restart_at = self.nodes[i].restart_after_exit.map(|d| self.now + d);
            }
        }
    }

    fn complete(&mut self, i: usize, g: usize) {
        let Some((_, r, op)) = self.nodes[i].pending[g].take() else {
            return;
        };
        let n = &mut self.nodes[i];
        let result = match op {
            Op::Start => {
                if n.fail_start[g][r] {
                    // May be half-started.
                    n.held[g][r] = self.rng.percent(50);
                    OpResult::Failed
                } else {
                    n.held[g][r] = true;
                    OpResult::Running
                }
            }
            Op::Stop => {
                if n.fail_stop[g][r] {
                    OpResult::Failed
                } else {
                    n.held[g][r] = false;
                    OpResult::Stopped
                }
            }
            Op::Status => {
                if n.held[g][r] {
                    OpResult::Running
                } else {
                    OpResult::Stopped
                }
            }
        };
        self.deliver(i, Input::OpDone { group: GroupId(g), resource: ResId(r), op, result });
    }

    /// One heartbeat, encoded separately for each link (as the daemon does).
    fn send(&mut self, i: usize) {
        let Some(node) = self.nodes[i].node.as_ref() else {
            return;
        };
        node.fill_heartbeat(&mut self.repr);
        for link in 0..LINKS {
            let n = match self.nodes[i].codec.encode(&mut self.repr, &mut self.buf) {
                Ok(n) => n,
                Err(e) => self.fail(&format!("encode: {e}")),
            };
            let bytes = self.buf[..n].to_vec();
            if self.cut || self.cut_to[1 - i] || self.rng.percent(self.loss) {
                continue;
            }
            let copies = if self.rng.percent(self.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let at = self.now + self.rng.range(self.delay.0, self.delay.1);
                self.inflight.push(Packet { to: 1 - i, link, at, bytes: bytes.clone() });
            }
        }
    }

    fn receive(&mut self, p: Packet) {
        let i = p.to;
        if self.nodes[i].node.is_none() {
            return;
        }
        // The wire layer drops duplicates, old generations and replays.
        let Ok(repr) = self.nodes[i].codec.decode(&p.bytes) else {
            return;
        };
        self.deliver(i, Input::Packet { link: p.link, repr: &repr });
    }

    /// Whether the two nodes' verdicts on each other lay further apart than their partition
    /// slots cover (docs/fencing.md: half of fence_delay covers a keepalive of skew plus a
    /// fence, twice over, not a deadtime): the gap between the slots, less one fence, is
    /// shorter than the time between the verdicts. Loss in one direction just before a
    /// partition does that, as a one-way cut does. Two slots that were not a proper pair (the
    /// same, or less than half of fence_delay apart) never excuse a mutual fence.
    fn verdicts_beyond_slots(&self, i: usize, p: usize) -> bool {
        let (Some((vi, di)), Some((vp, dp))) = (self.nodes[i].verdict, self.nodes[p].verdict) else {
            return false;
        };
        let gap = di.abs_diff(dp);
        // Slots are multiples of half of fence_delay, the longest one and a half of it.
        if gap == 0 || gap * 3 < di.max(dp) {
            return false;
        }
        vi.abs_diff(vp) + self.fence_time.1 > gap
    }

    /// Node `i`'s fence succeeds: the peer is powered off (its resources vanish) and boots
    /// again a while later.
    fn fence_peer_of(&mut self, i: usize) {
        let orphan = std::mem::take(&mut self.nodes[i].fence_orphan);
        if self.nodes[i].node.is_none() && !orphan {
            return; // the fencer itself died meanwhile
        }
        if orphan {
            let p = 1 - i;
            self.note(format!("{} n{i}'s BMC command, sent before it was powered off, FENCES n{p}", self.now));
            self.mutual_fences += 1;
            let skewed = self.verdicts_beyond_slots(i, p);
            if skewed {
                self.skewed_fences += 1;
                self.note(format!("{} the two verdicts lay further apart than the slots cover", self.now));
            }
            if self.asymmetric_at.is_none_or(|a| self.now >= a + 5000) && !skewed {
                self.fail("mutual fence without a one-way cut");
            }
            self.nodes[p].fenced += 1;
            let back = self.rng.range(500, 3000);
            self.crash(p, false, Some(back));
            for g in 0..self.n_res.len() {
                self.nodes[p].held[g].iter_mut().for_each(|h| *h = false);
            }
            return;
        }
        if self.rng.percent(self.fence_fail) {
            self.note(format!("{} n{i} FENCE FAILS", self.now));
            let attempt = self.nodes[i].fence_attempt;
            self.deliver(i, Input::FenceDone { attempt, ok: false, detail: "BMC: no answer" });
            return;
        }
        let p = 1 - i;
        self.note(format!("{} n{i} FENCES n{p}", self.now));
        if self.nodes[p].fence_due.is_some() {
            // Its own attempt was under way: a real BMC carries it out all the same.
            self.nodes[p].fence_orphan = true;
        }
        if self.nodes[p].node.is_some() || self.nodes[p].held.iter().flatten().any(|&h| h) {
            self.nodes[p].fenced += 1;
            let back = self.rng.range(500, 3000);
            self.crash(p, false, Some(back));
            // Powered off: nothing survives, even a daemon that had already exited.
            for g in 0..self.n_res.len() {
                self.nodes[p].held[g].iter_mut().for_each(|h| *h = false);
            }
        }
        let attempt = self.nodes[i].fence_attempt;
        self.deliver(i, Input::FenceDone { attempt, ok: true, detail: "off" });
    }

    fn next_time(&self) -> u64 {
        let mut t = u64::MAX;
        if let Some(h) = self.heal_at {
            t = t.min(h);
        }
        for p in &self.inflight {
            t = t.min(p.at);
        }
        for e in &self.echoes {
            t = t.min(e.3);
        }
        for n in &self.nodes {
            if let Some(r) = n.restart_at {
                t = t.min(r);
            }
            if let (Some(f), true) = (n.fence_due, n.fence_orphan) {
                t = t.min(f);
            }
            let Some(node) = n.node.as_ref() else {
                continue;
            };
            for (at, _, _) in n.pending.iter().flatten() {
                t = t.min(*at);
            }
            if let Some(f) = n.fence_due {
                t = t.min(f);
            }
            t = t.min(node.poll_at().as_micros().div_ceil(1000));
        }
        t
    }

    fn process_due(&mut self) {
        let now = self.now;
        if self.heal_at.is_some_and(|h| h <= now) {
            self.heal_at = None;
            self.cut = false;
            self.cut_to = [false; 2];
            self.note(format!("{now} HEAL"));
        }
        for i in 0..2 {
            if self.nodes[i].restart_at.is_some_and(|r| r <= now) {
                self.restart(i);
            }
        }
        // Packets, in arrival order.
        while let Some((k, _)) = self.inflight.iter().enumerate().filter(|(_, p)| p.at <= now).min_by_key(|(_, p)| p.at)
        {
            let p = self.inflight.swap_remove(k);
            self.receive(p);
        }
        while let Some(k) = self.echoes.iter().position(|e| e.3 <= now) {
            let (to, index, seq, _) = self.echoes.swap_remove(k);
            // A reply that arrives after the uplink went down is lost with it.
            if self.uplink[to] {
                self.deliver(to, Input::PingReply { index, seq });
            }
        }
        for i in 0..2 {
            for g in 0..self.n_res.len() {
                if self.nodes[i].pending[g].is_some_and(|(at, _, _)| at <= now) {
                    self.complete(i, g);
                }
            }
        }
        for i in 0..2 {
            if self.nodes[i].fence_due.is_some_and(|t| t <= now) {
                self.nodes[i].fence_due = None;
                self.fence_peer_of(i);
            }
        }
        for i in 0..2 {
            let due = self.nodes[i].node.as_ref().is_some_and(|n| n.poll_at() <= ms(now));
            if due {
                self.deliver(i, Input::Tick);
            }
        }
    }

    pub(super) fn run_until(&mut self, until: u64) {
        let mut guard = 0u64;
        loop {
            let t = self.next_time();
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.process_due();
            guard += 1;
            if guard > 10_000_000 {
                self.fail("simulation does not advance");
            }
        }
        self.now = self.now.max(until);
    }

    // ----- checks -----

    fn local_state(&self, i: usize, g: usize) -> Option<GroupState> {
        self.nodes[i].node.as_ref().map(|n| n.cluster().group_view(GroupId(g)).state)
    }

    fn phys(&self, i: usize, g: usize) -> bool {
        self.nodes[i].held[g].iter().any(|&h| h)
    }

    /// How node `i` sees its peer (`None`: the node is down).
    fn sees(&self, i: usize) -> Option<PeerState> {
        self.nodes[i].node.as_ref().map(|n| n.membership().peer_state())
    }

    /// The safety invariant: no group is held (by local state while each node sees the other
    /// up, or physically at all) by both nodes, unless a death was seen and the double hold
    /// has not been resolved yet.
    fn check(&mut self) {
        let mutual_up = (0..2).all(|i| self.sees(i) == Some(PeerState::Up));
        for g in 0..self.n_res.len() {
            let may_hold = |i: usize| self.local_state(i, g).is_some_and(|s| s.may_hold());
            let logical = mutual_up && may_hold(0) && may_hold(1);
            let physical = self.phys(0, g) && self.phys(1, g);
            if physical && self.fencing {
                self.fail(&format!("group {g}: both nodes have resources up, with fencing"));
            }
            if logical || physical {
                if !self.excused[g] {
                    let what = if logical { "both nodes' states may hold" } else { "both nodes have resources up" };
                    self.fail(&format!("group {g}: {what} without a death"));
                }
            } else if mutual_up && !((may_hold(0) || self.phys(0, g)) && (may_hold(1) || self.phys(1, g))) {
                // The double hold a death caused is over: from now on, none is allowed.
                self.excused[g] = false;
            }
        }
    }

    /// After `quiet()` and enough time: every group that some node can serve is Started on
    /// exactly one node (all its resources up there, none on the other). Returns how many
    /// groups were checked (the rest are failed or in standby on both / failed to stop).
    pub(super) fn assert_settled(&self) -> usize {
        let mut checked = 0;
        for g in 0..self.n_res.len() {
            let views: Vec<Option<GroupView>> =
                self.nodes.iter().map(|n| n.node.as_ref().map(|c| c.cluster().group_view(GroupId(g)))).collect();
            if views.iter().flatten().any(|v| v.state == GroupState::FailedToStop) {
                continue;
            }
            let can_serve = |i: usize| match (&views[i], self.nodes[i].node.as_ref()) {
                (Some(v), Some(c)) => !v.failed && !v.standby && c.node_state() == NodeState::Active,
                _ => false,
            };
            if !can_serve(0) && !can_serve(1) {
                continue;
            }
            checked += 1;
            let started: Vec<usize> =
                (0..2).filter(|&i| views[i].is_some_and(|v| v.state == GroupState::Started)).collect();
            if started.len() != 1 {
                self.fail(&format!("group {g} not settled on exactly one node: {views:?}"));
            }
            let on = started[0];
            let off = 1 - on;
            if !self.nodes[on].held[g].iter().all(|&h| h) || self.phys(off, g) {
                self.fail(&format!(
                    "group {g}: physical state does not match: {:?}",
                    self.nodes.iter().map(|n| &n.held[g]).collect::<Vec<_>>()
                ));
            }
            if views[off].is_some_and(|v| v.state.may_hold()) {
                self.fail(&format!("group {g}: other node still may hold it: {views:?}"));
            }
        }
        checked
    }

    pub(super) fn started_on(&self, g: usize) -> Vec<usize> {
        (0..2).filter(|&i| self.local_state(i, g) == Some(GroupState::Started)).collect()
    }

    pub(super) fn view(&self, i: usize, g: usize) -> Option<GroupView> {
        self.nodes[i].node.as_ref().map(|n| n.cluster().group_view(GroupId(g)))
    }

    pub(super) fn deaths(&self, i: usize) -> u32 {
        self.nodes[i].deaths
    }

    pub(super) fn exits(&self, i: usize) -> u32 {
        self.nodes[i].exits
    }

    pub(super) fn is_up(&self, i: usize) -> bool {
        self.nodes[i].node.is_some()
    }

    pub(super) fn peer_seen_as(&self, i: usize) -> PeerState {
        self.sees(i).unwrap_or(PeerState::Init)
    }

    pub(super) fn phys_held(&self, i: usize, g: usize) -> bool {
        self.phys(i, g)
    }

    /// Runs until `cond` holds (checked after every processed instant) or `until`; returns
    /// the time it first held.
    pub(super) fn run_until_cond(&mut self, until: u64, mut cond: impl FnMut(&Sim) -> bool) -> Option<u64> {
        loop {
            if cond(self) {
                return Some(self.now);
            }
            let t = self.next_time();
            if t > until {
                self.now = self.now.max(until);
                return None;
            }
            self.now = self.now.max(t);
            self.process_due();
        }
    }

    /// Fails with the trace unless `cond`.
    pub(super) fn ensure(&self, cond: bool, msg: &str) {
        if !cond {
            self.fail(msg);
        }
    }

    pub(super) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

// ----- the tests -----

fn sim_settings(auto_failback: bool) -> Settings {
    Settings {
        auto_failback,
        stop_retries: 2,
        stop_retry_delay: Duration::from_millis(200),
        restart_limit: 2,
        restart_window: Duration::from_secs(10),
        failure_timeout: None,
    }
}

/// One random run: 30 s of random operator commands, crashes, shutdowns, partitions, loss
/// and injected failures, then 20 s of quiet. Returns (groups checked, groups exempt,
/// (mutual fences, of which with verdicts further apart than the slots cover)).
fn chaos(seed: u64, fencing: bool, targets: usize) -> (usize, usize, (u32, u32)) {
    chaos_with(seed, fencing, targets, None)
}

fn chaos_with(seed: u64, fencing: bool, targets: usize, monitor: Option<u64>) -> (usize, usize, (u32, u32)) {
    let mut r = Rng::new(seed ^ 0x5EED_CAFE);
    let auto_failback = r.percent(50);
    let groups: Vec<(usize, usize)> = (0..3).map(|g| (g % 2, r.range(1, 3) as usize)).collect();
    let mut sim = Sim::new(seed, sim_settings(auto_failback), &groups).with_targets(targets);
    if let Some(ms) = monitor {
        sim = sim.with_monitor(ms);
    }
    if fencing {
        sim = sim.with_fencing();
        sim.set_fence_fail(10);
    }
    sim.set_loss(5);
    let mut t = 0;
    while t < 30_000 {
        t += sim.rng().range(50, 1500);
        sim.run_until(t);
        let i = sim.rng().below(2) as usize;
        let g = sim.rng().below(groups.len() as u64) as usize;
        let sel = if sim.rng().percent(30) { GroupSel::All } else { GroupSel::One(GroupId(g)) };
        let res = sim.rng().below(groups[g].1 as u64) as usize;
        match sim.rng().below(100) {
            0..=14 => sim.cmd(i, Input::Standby(sel)),
            15..=29 => sim.cmd(i, Input::Takeover(sel)),
            30..=39 => {
                let keep = sim.rng().percent(50);
                let after = sim.rng().range(100, 3000);
                sim.crash(i, keep, Some(after));
            }
            40..=46 => {
                let after = sim.rng().range(50, 2000);
                sim.shutdown(i, Some(after));
            }
            47..=55 => {
                let d = sim.rng().range(200, 2500);
                sim.partition(d);
            }
            56..=65 => {
                let l = [0, 5, 20, 40][sim.rng().below(4) as usize];
                sim.set_loss(l);
            }
            66..=79 => {
                let on = sim.rng().percent(60);
                sim.fail_start(i, g, res, on);
            }
            80..=83 => {
                let on = sim.rng().percent(50);
                sim.fail_stop(i, g, res, on);
            }
            84..=88 => {
                let d = sim.rng().range(200, 2500);
                sim.one_way_cut(i, d);
            }
            89..=92 => sim.cmd(i, Input::Tick),
            93..=97 if targets > 0 => {
                let up = sim.rng().percent(40);
                sim.set_uplink(i, up);
            }
            93..=99 if monitor.is_some() => sim.kill_resource(i, g, res),
            _ => {}
        }
    }
    sim.quiet();
    sim.set_fence_fail(0);
    sim.run_until(t + 20_000);
    let checked = sim.assert_settled();
    (checked, groups.len() - checked, (sim.mutual_fences(), sim.skewed_fences()))
}

#[test]
fn simulation_random_seeds_are_safe_and_live() {
    let seeds: u64 = std::env::var("TANDEM_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let (mut checked, mut exempt) = (0, 0);
    for seed in 1..=seeds {
        let (c, e, _) = chaos(seed, false, 0);
        checked += c;
        exempt += e;
    }
    eprintln!("liveness: {checked} groups checked, {exempt} exempt (failed/standby on both, failed to stop)");
    // The liveness check must not be vacuous.
    assert!(checked * 2 > checked + exempt, "only {checked} of {} groups checked", checked + exempt);
}

/// With fencing, no group is ever up on both nodes, not even for a moment after a death,
/// and two nodes fence each other only when their verdicts lay further apart than their
/// slots cover: after a one-way cut, or loss in one direction just before a partition
/// (counted, and rare); any other mutual fence fails the run.
#[test]
fn simulation_with_fencing_never_holds_a_group_twice() {
    let seeds: u64 = std::env::var("TANDEM_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let (mut checked, mut exempt, mut mutual, mut skewed) = (0, 0, 0, 0);
    for seed in 1..=seeds {
        let (c, e, (m, k)) = chaos(seed, true, 0);
        checked += c;
        exempt += e;
        mutual += m;
        skewed += k;
    }
    eprintln!(
        "liveness with fencing: {checked} groups checked, {exempt} exempt; {mutual} mutual fences \
         ({skewed} with verdicts further apart than the slots cover)"
    );
    assert!(u64::from(mutual) * 50 <= seeds, "{mutual} mutual fences in {seeds} runs");
    assert!(checked * 2 > checked + exempt, "only {checked} of {} groups checked", checked + exempt);
}

/// With ping targets and uplinks that fail, with and without fencing: the same safety
/// (with fencing: never up on both nodes), and liveness once the uplinks are back.
#[test]
fn simulation_with_ping_targets_and_failing_uplinks() {
    let seeds: u64 = std::env::var("TANDEM_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300) / 2;
    for fencing in [false, true] {
        let (mut checked, mut exempt, mut mutual, mut skewed) = (0, 0, 0, 0);
        for seed in 1..=seeds {
            let (c, e, (m, k)) = chaos(seed + 10_000, fencing, 2);
            checked += c;
            exempt += e;
            mutual += m;
            skewed += k;
        }
        eprintln!(
            "ping targets, fencing {fencing}: {checked} groups checked, {exempt} exempt; {mutual} mutual fences \
             ({skewed} with verdicts further apart than the slots cover)"
        );
        assert!(checked * 2 > checked + exempt, "only {checked} of {} groups checked", checked + exempt);
        assert!(u64::from(mutual) * 50 <= seeds, "{mutual} mutual fences in {seeds} runs");
    }
}

/// With monitored resources that die now and then: the same safety, and liveness.
#[test]
fn simulation_with_monitored_resources_that_die() {
    let seeds: u64 = std::env::var("TANDEM_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300) / 2;
    for fencing in [false, true] {
        let (mut checked, mut exempt) = (0, 0);
        for seed in 1..=seeds {
            let (c, e, _) = chaos_with(seed + 20_000, fencing, 0, Some(200));
            checked += c;
            exempt += e;
        }
        eprintln!("monitored, fencing {fencing}: {checked} groups checked, {exempt} exempt");
        assert!(checked * 2 > checked + exempt, "only {checked} of {} groups checked", checked + exempt);
    }
}

/// A resource that dies is restarted in place; one that keeps dying moves the group to the
/// peer after restart_limit restarts, and stays there.
#[test]
fn simulation_a_dying_resource_restarts_then_moves() {
    for seed in 1..=20 {
        let mut sim = Sim::new(seed, sim_settings(false), &[(0, 2)]).with_monitor(200);
        sim.set_loss(5);
        sim.run_until(5_000);
        sim.assert_settled();
        sim.kill_resource(0, 0, 0);
        sim.run_until(sim.now + 1000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![0], "seed {seed}: restarted in place");
        assert_eq!(sim.view(0, 0).map(|v| v.failed), Some(false));
        // It keeps dying: after restart_limit (2) restarts it moves, and stays moved.
        for _ in 0..3 {
            sim.kill_resource(0, 0, 1);
            sim.run_until(sim.now + 1000);
        }
        sim.run_until(sim.now + 3000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![1], "seed {seed}: moved to the peer");
        assert_eq!(sim.view(0, 0).map(|v| v.failed), Some(true), "failed on the first node");
        sim.ensure(sim.deaths(0) + sim.deaths(1) == 0, "no death");
    }
}

/// The holder's uplink fails while the heartbeat links stay: its group moves to the peer by
/// the orderly hand-over after ping_deadtime + ping_hold, without a death; it does not come
/// back when the uplink does (no failback), and a flapping uplink moves nothing.
#[test]
fn simulation_holder_losing_its_uplink_hands_over() {
    for seed in 1..=20 {
        let mut sim = Sim::new(seed, sim_settings(false), &[(0, 2)]).with_targets(2);
        sim.set_loss(5);
        sim.run_until(5_000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![0]);
        sim.set_uplink(0, false);
        let t0 = sim.now;
        let moved = sim.run_until_cond(t0 + 5000, |s| s.started_on(0) == vec![1]);
        let took = moved.map(|t| t - t0);
        sim.ensure(took.is_some_and(|d| (PING_HOLD..PING_DEADTIME + PING_HOLD + 700).contains(&d)), "moved in time");
        sim.ensure(sim.deaths(0) + sim.deaths(1) == 0, "without a death");
        sim.set_uplink(0, true);
        sim.run_until(sim.now + 5000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![1], "seed {seed}: stays on the peer");
        // A flapping uplink on the new holder, faster than ping_hold: nothing moves.
        for k in 0..20 {
            sim.set_uplink(1, k % 2 == 1);
            sim.run_until(sim.now + PING_HOLD / 2);
        }
        sim.set_uplink(1, true);
        sim.run_until(sim.now + 3000);
        assert_eq!(sim.started_on(0), vec![1], "seed {seed}: no ping-pong");
    }
}

/// All heartbeat links cut and the holder's uplink gone at the same moment: the non-holder
/// reaches its targets, fences the holder and takes over; the isolated holder never fences
/// and stops its group.
#[test]
fn simulation_partition_with_an_isolated_holder() {
    for seed in 1..=20 {
        let mut sim = Sim::new(seed, sim_settings(false), &[(0, 2)]).with_targets(2).with_fencing();
        sim.set_loss(5);
        sim.run_until(5_000);
        sim.assert_settled();
        sim.partition(4000);
        sim.set_uplink(0, false);
        sim.run_until(sim.now + 3500);
        sim.ensure(sim.fenced(0) == 1 && sim.fenced(1) == 0, "the isolated holder was fenced, never the other way");
        assert_eq!(sim.started_on(0), vec![1]);
        sim.set_uplink(0, true);
        sim.run_until(sim.now + 8000);
        sim.assert_settled();
        sim.ensure(sim.fenced(1) == 0, "no fence after the reboot");
        // Without fencing: the isolated holder stops its group by itself.
        let mut sim = Sim::new(seed, sim_settings(false), &[(0, 2)]).with_targets(2);
        sim.run_until(5_000);
        sim.partition(4000);
        sim.set_uplink(0, false);
        sim.run_until(sim.now + 2500);
        sim.ensure(!sim.phys_held(0, 0), "the isolated holder stopped its group");
        assert_eq!(sim.started_on(0), vec![1]);
    }
}

/// A partition with both nodes alive: exactly one is powered off, and it is not the only
/// holder, whose groups stay up throughout.
#[test]
fn simulation_partition_with_fencing_powers_off_one_node() {
    // (groups, the node expected to survive)
    let cases: [(&[(usize, usize)], usize); 3] = [(&[(0, 2)], 0), (&[(1, 2)], 1), (&[(0, 1), (1, 2)], 0)];
    for (groups, survivor) in cases {
        for seed in 1..=20 {
            let mut sim = Sim::new(seed, sim_settings(seed % 2 == 0), groups).with_fencing();
            sim.set_loss(10);
            sim.run_until(5_000);
            sim.assert_settled();
            let held: Vec<usize> = (0..groups.len()).filter(|&g| sim.phys_held(survivor, g)).collect();
            sim.partition(3000);
            let end = sim.now + 2500;
            while sim.now < end {
                let t = sim.now + 10;
                sim.run_until(t);
                for &g in &held {
                    sim.ensure(sim.phys_held(survivor, g), "the survivor's group stayed up");
                }
            }
            let loser = 1 - survivor;
            sim.ensure(sim.fenced(loser) == 1 && sim.fenced(survivor) == 0, "exactly the other node was fenced");
            for g in 0..groups.len() {
                sim.ensure(sim.started_on(g) == vec![survivor], "the survivor holds every group");
            }
            sim.run_until(sim.now + 8000);
            sim.assert_settled();
            sim.ensure(sim.fenced(loser) == 1 && sim.fenced(survivor) == 0, "no second fence after the reboot");
        }
    }
}

/// Both nodes up, groups settled; returns the sim.
fn settled(seed: u64, auto_failback: bool, groups: &[(usize, usize)]) -> Sim {
    let mut sim = Sim::new(seed, sim_settings(auto_failback), groups);
    sim.set_loss(10);
    sim.run_until(5_000);
    sim.assert_settled();
    sim
}

#[test]
fn simulation_start_up_puts_each_group_on_its_preferred_node() {
    for seed in 1..=20 {
        let sim = settled(seed, false, &[(0, 2), (1, 3)]);
        assert_eq!(sim.started_on(0), vec![0]);
        assert_eq!(sim.started_on(1), vec![1]);
        sim.ensure((sim.deaths(0), sim.deaths(1)) == (0, 0), "no death at a joint start");
    }
}

#[test]
fn simulation_auto_failback_on_returns_to_preferred_node() {
    for seed in 1..=20 {
        let mut sim = settled(seed, true, &[(0, 2)]);
        sim.crash(0, false, Some(2500));
        sim.run_until(sim.now + 1500);
        assert_eq!(sim.started_on(0), vec![1], "the survivor took over");
        sim.run_until(sim.now + 5000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![0], "seed {seed}: back on the preferred node");
    }
}

#[test]
fn simulation_auto_failback_off_stays_on_survivor() {
    for seed in 1..=20 {
        let mut sim = settled(seed, false, &[(0, 2)]);
        sim.crash(0, seed % 2 == 0, Some(2500));
        sim.run_until(sim.now + 8000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![1], "seed {seed}: stays where it is");
    }
}

#[test]
fn simulation_failed_start_moves_group_to_peer() {
    for seed in 1..=20 {
        let mut sim = Sim::new(seed, sim_settings(seed % 2 == 0), &[(0, 3)]);
        sim.set_loss(10);
        sim.fail_start(0, 0, 1, true);
        sim.run_until(6_000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![1]);
        let v = sim.view(0, 0).unwrap();
        assert_eq!((v.state, v.failed), (GroupState::Failed, true));
        assert!(!sim.phys_held(0, 0), "nothing left started on the failing node");
        // The operator fixes it and takes it back.
        sim.fail_start(0, 0, 1, false);
        sim.cmd(0, Input::Takeover(GroupSel::All));
        sim.run_until(sim.now + 3000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![0]);
    }
}

#[test]
fn simulation_shutdown_hands_over_without_a_death() {
    for seed in 1..=20 {
        let mut sim = settled(seed, false, &[(0, 2), (0, 1)]);
        sim.shutdown(0, None);
        let t0 = sim.now;
        let took = sim.run_until_cond(t0 + 3000, |s| s.started_on(0) == vec![1] && s.started_on(1) == vec![1]);
        assert!(took.is_some(), "seed {seed}: peer took over");
        sim.ensure(sim.deaths(1) == 0, "before any Dead event");
        assert_eq!(sim.peer_seen_as(1), PeerState::Up);
        // The leaving node exits once it has seen the peer take over (or after the linger).
        let exited = sim.run_until_cond(sim.now + 1000, |s| !s.is_up(0));
        sim.ensure(exited.is_some() && sim.exits(0) == 1, "exited");
        sim.ensure(sim.deaths(1) == 0, "still no Dead event");
    }
}

#[test]
fn simulation_partition_heals_to_one_holder() {
    for seed in 1..=20 {
        let mut sim = settled(seed, seed % 2 == 0, &[(0, 2), (1, 2)]);
        sim.partition(3000);
        sim.run_until(sim.now + 2500);
        assert_eq!(sim.started_on(0), vec![0, 1], "both hold during the partition");
        sim.run_until(sim.now + 4000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![0], "the preferred node keeps it");
        assert_eq!(sim.started_on(1), vec![1]);
    }
}

#[test]
fn simulation_standby_and_takeover_move_groups() {
    for seed in 1..=20 {
        let afb = seed % 2 == 0;
        let mut sim = settled(seed, afb, &[(0, 2), (1, 1)]);
        sim.cmd(0, Input::Standby(GroupSel::All));
        sim.run_until(sim.now + 2000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![1]);
        sim.cmd(0, Input::Takeover(GroupSel::All));
        sim.run_until(sim.now + 2000);
        sim.assert_settled();
        assert_eq!(sim.started_on(0), vec![0]);
        assert_eq!(sim.started_on(1), vec![0], "takeover pulls the peer's group too");
        // The peer is preferred for group 1, but a pinned holder keeps it even with failback.
        sim.run_until(sim.now + 2000);
        assert_eq!(sim.started_on(1), vec![0]);
        // A takeover on the peer pulls it back.
        sim.cmd(1, Input::Takeover(GroupSel::One(GroupId(1))));
        sim.run_until(sim.now + 2000);
        sim.assert_settled();
        assert_eq!(sim.started_on(1), vec![1]);
    }
}

#[test]
fn simulation_fast_restart_after_kill_cleans_up_first() {
    for seed in 1..=20 {
        let mut sim = settled(seed, false, &[(0, 3)]);
        // kill -9 and back before deadtime: the peer sees a restart, not a death.
        sim.crash(0, true, Some(100));
        sim.run_until(sim.now + 5000);
        sim.assert_settled();
        assert_eq!(sim.deaths(1), 0);
        assert_eq!(sim.started_on(0), vec![0]);
    }
}
