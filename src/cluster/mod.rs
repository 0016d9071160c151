//! Cluster: who holds which group. A pure state machine: it never reads the clock and never
//! touches an fd. The daemon feeds it [`Event`]s with the current time and carries out the
//! [`Action`]s it asks for; [`Cluster::poll_at`] says when it next needs a [`Event::Tick`].
//!
//! Per group it decides whether this node should start or stop it, sequences the group's
//! resources (start left to right, stop right to left, one operation at a time), and computes
//! what this node advertises in every heartbeat ([`Cluster::wire_groups`]).
//!
//! The protocol (claims, grants, priorities) and its safety argument are in `docs/cluster.md`.
//! In short: a node starts a group only when it knows the peer is dead, or the peer's latest
//! packet grants this node's current claim token while the peer is fully stopped, or the
//! peer is leaving with the group stopped. A grant stays given for as long as the peer keeps
//! claiming with that token, a node never starts while it gives a grant, and claim tokens are
//! never reused; so a grant cannot be used twice and two grants cannot be used at once.
//!
//! This layer relies on the wire layer handing over the peer's packets in sending order
//! (older sequence numbers are dropped), so "the peer's latest packet" is well defined.

#[cfg(test)]
mod tests;

use crate::membership::PeerState;
use crate::time::{Duration, Instant};
use crate::wire::{gflag, GroupState, GroupWire, NodeState, MAX_GROUPS};

/// An operation on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Status,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Status => "status",
        }
    }
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "start" => Some(Op::Start),
            "stop" => Some(Op::Stop),
            "status" => Some(Op::Status),
            _ => None,
        }
    }
}

/// A group: its index in the configuration's group list (the same on both nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub usize);

/// A resource of a group: its index in the group's resource list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResId(pub usize);

/// What an operation found: the resource is running (a start succeeded, or status says so),
/// stopped (a stop succeeded, or status says so), or the operation failed (for a status:
/// the state cannot be told, which counts as possibly running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpResult {
    Running,
    Stopped,
    Failed,
}

/// One group as the cluster layer sees it (from `Config::groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDef {
    pub name: String,
    /// This node is the group's preferred node.
    pub preferred_is_local: bool,
    /// How many resources the group has (started 0..n, stopped n..0).
    pub n_resources: usize,
    /// Per resource: how often its status is checked while the group runs here (`None`:
    /// never). Shorter than `n_resources`: the rest are not monitored.
    pub monitor: Vec<Option<Duration>>,
}

/// Policy knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// A group goes back to its preferred node when that node returns.
    pub auto_failback: bool,
    /// How often a failed stop is retried before the group becomes FailedToStop.
    pub stop_retries: u32,
    /// Delay between stop attempts.
    pub stop_retry_delay: Duration,
    /// A resource that fails its monitor is restarted in place (with what follows it) at
    /// most this often within `restart_window`; then the group moves to the peer.
    pub restart_limit: u32,
    pub restart_window: Duration,
    /// A node's failed mark for a group expires this long after the failure (`None`: only
    /// `tandem cleanup` or a takeover clears it).
    pub failure_timeout: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            auto_failback: false,
            stop_retries: 3,
            stop_retry_delay: Duration::from_secs(1),
            restart_limit: crate::config::DEFAULT_RESTART_LIMIT,
            restart_window: crate::config::DEFAULT_RESTART_WINDOW,
            failure_timeout: None,
        }
    }
}

/// Which groups an operator command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSel {
    All,
    One(GroupId),
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Time passed (the daemon sends this at [`Cluster::poll_at`]; extra ticks are harmless).
    Tick,
    /// A membership transition (Init/Up/Dead).
    Peer(PeerState),
    /// The peer restarted (new generation): forget everything it advertised.
    PeerRestarted,
    /// Every accepted heartbeat from the peer, in sending order.
    PeerPacket { node_state: NodeState, groups: &'a [GroupWire] },
    /// An operation asked for by [`Action::Run`] finished. For `Start`/`Stop` any result but
    /// `Failed` is success.
    OpDone { group: GroupId, resource: ResId, op: Op, result: OpResult },
    /// Operator: hand these local groups to the peer (sticky until a local takeover or the peer's death).
    Standby(GroupSel),
    /// Operator: take these groups (orderly: the peer stops them first). Clears a local Failed.
    Takeover(GroupSel),
    /// Clean daemon stop: release everything, then [`Action::Exit`].
    Shutdown,
    /// Operator: forget the failures of these groups here (fail counts, restarts, the
    /// failed mark).
    Cleanup(GroupSel),
}

/// What the daemon must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run one operation on one resource. At most one is outstanding per group.
    Run { group: GroupId, resource: ResId, op: Op },
    /// What we advertise changed: send a heartbeat now.
    Announce,
    /// Something worth a log line.
    Log(LogEvent),
    /// Shutdown finished: every group is stopped and that has been announced.
    Exit,
}

/// Why a node gives up a group it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The operator put this node in standby for the group.
    Standby,
    /// The peer claims it by an operator takeover (PINNED).
    PeerPinned,
    /// auto_failback: the group goes back to its preferred node, the peer.
    Failback,
    /// Both nodes hold it (after a partition); the non-preferred node gives way.
    BothHold,
    /// The daemon is shutting down.
    Shutdown,
    /// This node reaches fewer ping targets than its peer (for `ping_hold`).
    Reach,
    /// The peer is silent and this node reaches none of its ping targets.
    Isolated,
}

impl ReleaseReason {
    pub fn name(self) -> &'static str {
        match self {
            ReleaseReason::Standby => "standby",
            ReleaseReason::PeerPinned => "peer takeover",
            ReleaseReason::Failback => "failback to the preferred node",
            ReleaseReason::BothHold => "both nodes hold it, the preferred node keeps it",
            ReleaseReason::Shutdown => "shutdown",
            ReleaseReason::Reach => "this node reaches fewer ping targets than its peer",
            ReleaseReason::Isolated => "the peer is silent and this node reaches no ping target",
        }
    }
}

/// Plain data for the daemon to format and log. Every variant is emitted once per
/// transition, never per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEvent {
    /// The node's state changed (init → active, active → leaving).
    Node { from: NodeState, to: NodeState },
    /// A group's local state changed.
    Group { group: GroupId, from: GroupState, to: GroupState },
    /// Start-up probe: a resource is running (or its status failed), so the whole group is stopped.
    FoundRunning { group: GroupId, resource: ResId, status_error: bool },
    /// This node gives up a group it holds.
    Release { group: GroupId, reason: ReleaseReason },
    /// The peer is dead: this node takes the group without a grant.
    TakeoverPeerDead { group: GroupId },
    /// Starting a resource failed; the group is stopped and offered to the peer.
    StartFailed { group: GroupId, resource: ResId },
    /// Stopping a resource failed (`retrying` = another attempt follows).
    StopFailed { group: GroupId, resource: ResId, attempt: u32, retrying: bool },
    /// Operator standby refused: the peer is dead, nobody could take the group.
    StandbyRefused { group: GroupId },
    /// Operator takeover refused: the group failed to stop here, or the node is leaving.
    TakeoverRefused { group: GroupId, state: GroupState },
    /// Operator takeover accepted.
    Takeover { group: GroupId },
    /// Operator standby accepted.
    Standby { group: GroupId },
    /// Our standby ended because the peer gave the group up (its own standby, a failed
    /// start, or leaving).
    StandbyCleared { group: GroupId },
    /// Shutdown cannot finish: this group failed to stop.
    ExitBlocked { group: GroupId },
    /// A running resource's status says it is not running (`error`: the status itself
    /// failed).
    MonitorFailed { group: GroupId, resource: ResId, error: bool },
    /// The failed resource and those after it are restarted here (`restart` of `limit`
    /// within the window).
    Restart { group: GroupId, resource: ResId, restart: u32, limit: u32 },
    /// The restart limit is reached: the group stops here, is marked failed, and goes to
    /// the peer if it can run it.
    RestartLimit { group: GroupId },
    /// The group failed here and the peer cannot run it either (failed there, or dead):
    /// it stays stopped until an operator acts.
    NowhereToRun { group: GroupId },
    /// The failed mark expired (`failure_timeout`).
    FailureExpired { group: GroupId },
    /// An operator cleared the group's failures here.
    Cleanup { group: GroupId },
}

/// One resource's health, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResHealth {
    pub monitor: Option<Duration>,
    /// The last status check while running: when, and whether it said running.
    pub last_check: Option<(Instant, bool)>,
    /// Monitor failures since the start or the last cleanup.
    pub fail_count: u32,
    /// Monitor failures since the start (a cleanup does not clear it: a counter).
    pub failures_total: u64,
    pub last_failure: Option<Instant>,
}

/// Who holds a group, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Local,
    Peer,
    None,
}

/// One group's state, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupView {
    /// Local state.
    pub state: GroupState,
    /// A start failed here (sticky until a local takeover).
    pub failed: bool,
    /// Held here by an operator takeover.
    pub pinned: bool,
    /// Operator standby is set here.
    pub standby: bool,
    /// The peer's advertised state, when known.
    pub peer_state: Option<GroupState>,
    pub owner: Owner,
}

/// Which operation sequence a group is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seq {
    Idle,
    Probe,
    Start,
    Stop,
    /// A status check of the running group (resource `cursor`).
    Monitor,
}

#[derive(Debug, Clone)]
struct Group {
    def: GroupDef,
    state: GroupState,
    seq: Seq,
    /// The resource of the current (or next, while waiting to retry) operation.
    cursor: usize,
    /// An operation is outstanding.
    busy: bool,
    retry_at: Option<Instant>,
    stop_failures: u32,
    /// A start failed here: Failed once stopped, sticky until a local takeover.
    failed: bool,
    standby: bool,
    pinned: bool,
    /// Starting, but must stop once the outstanding start finishes.
    release_pending: bool,
    exit_blocked_logged: bool,
    /// Our claim token (0 = not claiming).
    claim: u32,
    /// The peer's claim token we grant (0 = none).
    grant: u32,
    /// A stop that ends at this resource and starts again from it (an in-place restart).
    restart_from: Option<usize>,
    health: Vec<ResHealth>,
    /// When each resource's next status check is due (while Started).
    next_check: Vec<Option<Instant>>,
    /// In-place restarts within the restart window (oldest first).
    restarts: Vec<Instant>,
    /// When the failed mark was set (for `failure_timeout`).
    failed_at: Option<Instant>,
    /// Failed here, and the peer cannot run it either: said once, until that changes.
    nowhere: bool,
}

impl Group {
    fn holding(&self) -> bool {
        matches!(self.state, GroupState::Starting | GroupState::Started)
    }
}

/// Default for [`Cluster::set_leave_linger`].
pub const DEFAULT_LEAVE_LINGER: Duration = Duration::from_secs(3);

/// The cluster state machine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Cluster {
    settings: Settings,
    generation: u64,
    counter: u16,
    /// Counter of tokens while the peer binds its grants to our generation (see
    /// [`Cluster::set_grants_bound`]).
    bound_counter: u32,
    grants_bound: bool,
    /// Groups may be taken from a dead peer (fencing confirmed it, or is not required).
    dead_peer_cleared: bool,
    /// This node reaches fewer ping targets than its peer: its groups go to the peer.
    reach_worse: bool,
    /// The peer is silent and this node reaches no ping target: it stops its groups.
    isolated: bool,
    groups: Vec<Group>,
    node: NodeState,
    kicked: bool,
    shutdown: bool,
    exited: bool,
    peer: PeerState,
    /// At least one packet received since the peer came up / restarted.
    peer_known: bool,
    peer_node: NodeState,
    peer_groups: [GroupWire; MAX_GROUPS],
    last_adv: [GroupWire; MAX_GROUPS],
    last_node: NodeState,
    leave_linger: Duration,
    /// Leaving, everything stopped: exit at the latest then.
    linger_until: Option<Instant>,
}

fn claims(p: &GroupWire) -> bool {
    p.flags & gflag::CLAIM != 0 && p.claim != 0
}

fn pinned(p: &GroupWire) -> bool {
    p.flags & gflag::PINNED != 0
}

fn fully_stopped_state(s: GroupState) -> bool {
    matches!(s, GroupState::Stopped | GroupState::Failed)
}

impl Cluster {
    /// A new cluster state machine. Every group starts in the probe phase; the first
    /// [`Cluster::handle`] call (any event) asks for the probes. Groups beyond
    /// [`MAX_GROUPS`] are ignored (the config layer rejects them).
    pub fn new(now: Instant, groups: Vec<GroupDef>, settings: Settings, generation: u64) -> Cluster {
        let _ = now;
        if groups.len() > MAX_GROUPS {
            log::error!("cluster: {} groups configured, only the first {MAX_GROUPS} are managed", groups.len());
        }
        let groups = groups
            .into_iter()
            .take(MAX_GROUPS)
            .map(|def| Group {
                health: (0..def.n_resources)
                    .map(|r| ResHealth { monitor: def.monitor.get(r).copied().flatten(), ..ResHealth::default() })
                    .collect(),
                next_check: vec![None; def.n_resources],
                restarts: Vec::with_capacity(settings.restart_limit.min(64) as usize + 1),
                restart_from: None,
                failed_at: None,
                nowhere: false,
                def,
                state: GroupState::Stopped,
                seq: Seq::Probe,
                cursor: 0,
                busy: false,
                retry_at: None,
                stop_failures: 0,
                failed: false,
                standby: false,
                pinned: false,
                release_pending: false,
                exit_blocked_logged: false,
                claim: 0,
                grant: 0,
            })
            .collect();
        Cluster {
            settings,
            generation,
            counter: 0,
            bound_counter: 0,
            grants_bound: false,
            dead_peer_cleared: true,
            reach_worse: false,
            isolated: false,
            groups,
            node: NodeState::Init,
            kicked: false,
            shutdown: false,
            exited: false,
            peer: PeerState::Init,
            peer_known: false,
            peer_node: NodeState::Init,
            peer_groups: [GroupWire::EMPTY; MAX_GROUPS],
            last_adv: [GroupWire::EMPTY; MAX_GROUPS],
            last_node: NodeState::Init,
            leave_linger: DEFAULT_LEAVE_LINGER,
            linger_until: None,
        }
    }

    /// Feeds one event; appends the resulting actions to `out` (allocation-free when `out`
    /// has spare capacity).
    pub fn handle(&mut self, now: Instant, ev: Event, out: &mut Vec<Action>) {
        if self.exited {
            return;
        }
        if !self.kicked {
            self.kicked = true;
            self.kick_probes(out);
        }
        match ev {
            Event::Tick => {}
            Event::Peer(s) => self.on_peer(s),
            Event::PeerRestarted => self.reset_peer(),
            Event::PeerPacket { node_state, groups } => self.on_packet(node_state, groups, out),
            Event::OpDone { group, resource, op, result } => self.on_op_done(now, group.0, resource.0, op, result, out),
            Event::Standby(sel) => self.for_sel(sel, |c, g| c.standby(g, out)),
            Event::Takeover(sel) => self.for_sel(sel, |c, g| c.takeover(g, out)),
            Event::Shutdown => self.shutdown = true,
            Event::Cleanup(sel) => self.for_sel(sel, |c, g| c.cleanup(g, out)),
        }
        self.expire_failures(now, out);
        self.fire_retries(now, out);
        self.fire_monitors(now, out);
        self.update_node_state(out);
        if self.node != NodeState::Init {
            for g in 0..self.groups.len() {
                self.reconcile(g, out);
                self.tell_nowhere(g, out);
            }
        }
        let announced = self.announce_if_changed(out);
        self.check_exit(now, announced, out);
    }

    /// When the next [`Event::Tick`] is due (stop retries, the end of the leave linger), if any.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.exited {
            return None;
        }
        let monitors = self
            .groups
            .iter()
            .filter(|g| g.state == GroupState::Started && g.seq == Seq::Idle && !g.release_pending)
            .flat_map(|g| g.next_check.iter().flatten().copied());
        let expiries = self.groups.iter().filter(|g| g.failed).filter_map(|g| {
            let (at, t) = (g.failed_at?, self.settings.failure_timeout?);
            Some(at + t)
        });
        self.groups.iter().filter_map(|g| g.retry_at).chain(self.linger_until).chain(monitors).chain(expiries).min()
    }

    /// One resource's health (`None` for a resource out of range).
    pub fn res_health(&self, GroupId(g): GroupId, ResId(r): ResId) -> Option<ResHealth> {
        self.groups.get(g)?.health.get(r).copied()
    }

    /// In-place restarts of the group within the restart window.
    pub fn restarts(&self, GroupId(g): GroupId) -> usize {
        self.groups.get(g).map_or(0, |gr| gr.restarts.len())
    }

    /// How long a leaving node whose groups are all stopped keeps running (and so keeps
    /// sending heartbeats) while the peer has not yet shown that it took over what was
    /// offered. A lost final heartbeat then costs at most this, not a deadtime. A few
    /// keepalive intervals is right; default [`DEFAULT_LEAVE_LINGER`].
    pub fn set_leave_linger(&mut self, d: Duration) {
        self.leave_linger = d;
    }

    /// What this node advertises as a whole.
    pub fn node_state(&self) -> NodeState {
        self.node
    }

    /// True once [`Action::Exit`] has been emitted.
    pub fn exited(&self) -> bool {
        self.exited
    }

    /// The peer as last reported by membership.
    pub fn peer_state(&self) -> PeerState {
        self.peer
    }

    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Fills `out` with what to advertise now; returns how many entries were written.
    pub fn wire_groups(&self, out: &mut [GroupWire]) -> usize {
        let mut n = 0;
        for (i, slot) in out.iter_mut().enumerate().take(self.groups.len()) {
            *slot = self.wire_of(i);
            n += 1;
        }
        n
    }

    /// One group's state, for `status`. Out-of-range indexes read as stopped and unowned.
    pub fn group_view(&self, GroupId(g): GroupId) -> GroupView {
        let Some(gr) = self.groups.get(g) else {
            return GroupView {
                state: GroupState::Stopped,
                failed: false,
                pinned: false,
                standby: false,
                peer_state: None,
                owner: Owner::None,
            };
        };
        let peer_state = self.peer_group(g).map(|p| p.state);
        let owner = if gr.state.may_hold() {
            Owner::Local
        } else if peer_state.is_some_and(|s| s.may_hold()) {
            Owner::Peer
        } else {
            Owner::None
        };
        GroupView { state: gr.state, failed: gr.failed, pinned: gr.pinned, standby: gr.standby, peer_state, owner }
    }

    // ----- events -----

    fn kick_probes(&mut self, out: &mut Vec<Action>) {
        for g in 0..self.groups.len() {
            let Some(gr) = self.groups.get_mut(g) else {
                continue;
            };
            if gr.def.n_resources == 0 {
                gr.seq = Seq::Idle;
            } else {
                gr.cursor = 0;
                gr.busy = true;
                out.push(Action::Run { group: GroupId(g), resource: ResId(0), op: Op::Status });
            }
        }
    }

    fn on_peer(&mut self, s: PeerState) {
        match s {
            PeerState::Dead => {
                self.reset_peer();
                for gr in &mut self.groups {
                    gr.standby = false;
                }
            }
            PeerState::Up => {
                if self.peer != PeerState::Up {
                    self.reset_peer();
                }
            }
            PeerState::Init => self.reset_peer(),
        }
        self.peer = s;
    }

    fn reset_peer(&mut self) {
        self.peer_known = false;
        self.peer_node = NodeState::Init;
        self.peer_groups = [GroupWire::EMPTY; MAX_GROUPS];
    }

    fn on_packet(&mut self, node_state: NodeState, groups: &[GroupWire], out: &mut Vec<Action>) {
        self.peer_known = true;
        self.peer_node = node_state;
        self.peer_groups = [GroupWire::EMPTY; MAX_GROUPS];
        let n = self.groups.len();
        for gw in groups {
            let idx = usize::from(gw.index);
            if idx < n {
                if let Some(slot) = self.peer_groups.get_mut(idx) {
                    *slot = *gw;
                }
            }
        }
        // A local standby gives way when the peer gives the group up too (its own standby,
        // a failed start, or leaving): the newest word wins, and the group is never left
        // with nobody willing to run it.
        for g in 0..n {
            let Some(p) = self.peer_groups.get(g).copied() else { continue };
            let peer_gives_up =
                p.flags & gflag::OFFER != 0 || p.state == GroupState::Failed || node_state == NodeState::Leaving;
            if let Some(gr) = self.groups.get_mut(g) {
                if gr.standby && peer_gives_up {
                    gr.standby = false;
                    out.push(Action::Log(LogEvent::StandbyCleared { group: GroupId(g) }));
                }
            }
        }
    }

    fn for_sel(&mut self, sel: GroupSel, mut f: impl FnMut(&mut Cluster, usize)) {
        match sel {
            GroupSel::All => {
                for g in 0..self.groups.len() {
                    f(self, g);
                }
            }
            GroupSel::One(GroupId(g)) => {
                if g < self.groups.len() {
                    f(self, g);
                }
            }
        }
    }

    fn standby(&mut self, g: usize, out: &mut Vec<Action>) {
        let peer_dead = self.peer == PeerState::Dead;
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        if peer_dead {
            out.push(Action::Log(LogEvent::StandbyRefused { group: GroupId(g) }));
            return;
        }
        gr.standby = true;
        gr.pinned = false;
        out.push(Action::Log(LogEvent::Standby { group: GroupId(g) }));
    }

    fn takeover(&mut self, g: usize, out: &mut Vec<Action>) {
        let leaving = self.shutdown;
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        if leaving || gr.state == GroupState::FailedToStop {
            out.push(Action::Log(LogEvent::TakeoverRefused { group: GroupId(g), state: gr.state }));
            return;
        }
        gr.failed = false;
        gr.failed_at = None;
        gr.restarts.clear();
        gr.standby = false;
        gr.pinned = true;
        out.push(Action::Log(LogEvent::Takeover { group: GroupId(g) }));
        if gr.state == GroupState::Failed {
            self.set_state(g, GroupState::Stopped, out);
        }
    }

    fn on_op_done(&mut self, now: Instant, g: usize, resource: usize, op: Op, result: OpResult, out: &mut Vec<Action>) {
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        let expected = match gr.seq {
            Seq::Idle => None,
            Seq::Probe | Seq::Monitor => Some(Op::Status),
            Seq::Start => Some(Op::Start),
            Seq::Stop => Some(Op::Stop),
        };
        if !gr.busy || gr.cursor != resource || expected != Some(op) {
            log::debug!("cluster: ignoring unexpected result of {} on group {g} resource {resource}", op.name());
            return;
        }
        gr.busy = false;
        let n = gr.def.n_resources;
        if gr.seq == Seq::Monitor {
            self.monitor_done(now, g, resource, result, out);
            return;
        }
        match op {
            Op::Status => match result {
                OpResult::Stopped => {
                    gr.cursor += 1;
                    if gr.cursor >= n {
                        gr.seq = Seq::Idle;
                    } else {
                        gr.busy = true;
                        out.push(Action::Run { group: GroupId(g), resource: ResId(gr.cursor), op: Op::Status });
                    }
                }
                OpResult::Running | OpResult::Failed => {
                    let status_error = result == OpResult::Failed;
                    out.push(Action::Log(LogEvent::FoundRunning {
                        group: GroupId(g),
                        resource: ResId(resource),
                        status_error,
                    }));
                    self.begin_stop(g, n.checked_sub(1), out);
                }
            },
            Op::Start => match result {
                OpResult::Running | OpResult::Stopped => {
                    gr.cursor += 1;
                    if gr.release_pending {
                        let top = gr.cursor.checked_sub(1);
                        self.begin_stop(g, top, out);
                    } else if gr.cursor >= n {
                        gr.seq = Seq::Idle;
                        self.set_state(g, GroupState::Started, out);
                        self.schedule_checks(g, now);
                    } else {
                        gr.busy = true;
                        out.push(Action::Run { group: GroupId(g), resource: ResId(gr.cursor), op: Op::Start });
                    }
                }
                OpResult::Failed => {
                    gr.failed = true;
                    gr.failed_at = Some(now);
                    gr.pinned = false;
                    out.push(Action::Log(LogEvent::StartFailed { group: GroupId(g), resource: ResId(resource) }));
                    // Resource `resource` may be half-started: stop it too.
                    self.begin_stop(g, Some(resource), out);
                }
            },
            Op::Stop => match result {
                OpResult::Running | OpResult::Stopped => {
                    gr.stop_failures = 0;
                    let keep = self.restart_still_wanted(g);
                    let Some(gr) = self.groups.get_mut(g) else { return };
                    if gr.restart_from.is_some() && !keep {
                        // Released meanwhile (shutdown, standby…): stop for good.
                        gr.restart_from = None;
                    }
                    if gr.restart_from == Some(gr.cursor) {
                        // An in-place restart: stopped down to the failed resource; start
                        // again from it.
                        gr.restart_from = None;
                        gr.seq = Seq::Start;
                        gr.busy = true;
                        out.push(Action::Run { group: GroupId(g), resource: ResId(gr.cursor), op: Op::Start });
                        self.set_state(g, GroupState::Starting, out);
                    } else if let Some(next) = gr.cursor.checked_sub(1) {
                        gr.cursor = next;
                        gr.busy = true;
                        out.push(Action::Run { group: GroupId(g), resource: ResId(next), op: Op::Stop });
                    } else {
                        self.finish_stop(g, out);
                    }
                }
                OpResult::Failed => {
                    gr.stop_failures = gr.stop_failures.saturating_add(1);
                    let retrying = gr.stop_failures <= self.settings.stop_retries;
                    out.push(Action::Log(LogEvent::StopFailed {
                        group: GroupId(g),
                        resource: ResId(resource),
                        attempt: gr.stop_failures,
                        retrying,
                    }));
                    if retrying {
                        gr.retry_at = Some(now + self.settings.stop_retry_delay);
                    } else {
                        gr.seq = Seq::Idle;
                        gr.release_pending = false;
                        gr.pinned = false;
                        gr.claim = 0;
                        self.set_state(g, GroupState::FailedToStop, out);
                    }
                }
            },
        }
    }

    // ----- sequencing -----

    fn set_state(&mut self, g: usize, to: GroupState, out: &mut Vec<Action>) {
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        if gr.state != to {
            out.push(Action::Log(LogEvent::Group { group: GroupId(g), from: gr.state, to }));
            gr.state = to;
        }
    }

    /// Stops resources `top..=0`, right to left (`None`: nothing to stop).
    fn begin_stop(&mut self, g: usize, top: Option<usize>, out: &mut Vec<Action>) {
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        gr.release_pending = false;
        gr.restart_from = None;
        gr.claim = 0;
        match top {
            Some(k) => {
                gr.seq = Seq::Stop;
                gr.cursor = k;
                gr.busy = true;
                gr.stop_failures = 0;
                gr.retry_at = None;
                out.push(Action::Run { group: GroupId(g), resource: ResId(k), op: Op::Stop });
                self.set_state(g, GroupState::Stopping, out);
            }
            None => self.finish_stop(g, out),
        }
    }

    fn finish_stop(&mut self, g: usize, out: &mut Vec<Action>) {
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        gr.seq = Seq::Idle;
        gr.busy = false;
        gr.release_pending = false;
        gr.retry_at = None;
        let to = if gr.failed { GroupState::Failed } else { GroupState::Stopped };
        self.set_state(g, to, out);
    }

    /// Says once that nobody can run `g` (failed here, and the peer failed it too, gives it
    /// up, or is not up), whenever that becomes true: after this node's own failure, and
    /// also when the peer that took the group over fails it in turn or dies.
    fn tell_nowhere(&mut self, g: usize, out: &mut Vec<Action>) {
        let peer_cannot = match self.peer {
            PeerState::Dead => true,
            PeerState::Up => self.peer_known && !self.peer_can_take(g),
            PeerState::Init => false,
        };
        let active = self.node == NodeState::Active && !self.shutdown;
        let Some(gr) = self.groups.get_mut(g) else { return };
        let now = active && gr.failed && gr.seq == Seq::Idle && gr.state == GroupState::Failed && peer_cannot;
        if now && !gr.nowhere {
            out.push(Action::Log(LogEvent::NowhereToRun { group: GroupId(g) }));
        }
        gr.nowhere = now;
    }

    /// Each monitored resource's first check, one interval after the group started.
    fn schedule_checks(&mut self, g: usize, now: Instant) {
        if let Some(gr) = self.groups.get_mut(g) {
            for (next, h) in gr.next_check.iter_mut().zip(&gr.health) {
                *next = h.monitor.map(|i| now + i);
            }
        }
    }

    /// Starts the status check that is due on each running, idle group (one at a time).
    fn fire_monitors(&mut self, now: Instant, out: &mut Vec<Action>) {
        for (g, gr) in self.groups.iter_mut().enumerate() {
            if gr.state != GroupState::Started || gr.seq != Seq::Idle || gr.busy || gr.release_pending {
                continue;
            }
            let due = gr.next_check.iter().position(|t| t.is_some_and(|t| t <= now));
            if let Some(r) = due {
                gr.next_check[r] = None;
                gr.seq = Seq::Monitor;
                gr.cursor = r;
                gr.busy = true;
                out.push(Action::Run { group: GroupId(g), resource: ResId(r), op: Op::Status });
            }
        }
    }

    /// A monitor's status check ended.
    fn monitor_done(&mut self, now: Instant, g: usize, r: usize, result: OpResult, out: &mut Vec<Action>) {
        let (limit, window) = (self.settings.restart_limit, self.settings.restart_window);
        let Some(gr) = self.groups.get_mut(g) else { return };
        gr.seq = Seq::Idle;
        let ok = result == OpResult::Running;
        let interval = gr.health.get(r).and_then(|h| h.monitor);
        if let Some(h) = gr.health.get_mut(r) {
            h.last_check = Some((now, ok));
        }
        if gr.release_pending {
            // Released while the check ran: stop now, whatever it said.
            let top = gr.def.n_resources.checked_sub(1);
            self.begin_stop(g, top, out);
            return;
        }
        if ok {
            if let Some(slot) = gr.next_check.get_mut(r) {
                *slot = interval.map(|i| now + i);
            }
            return;
        }
        if let Some(h) = gr.health.get_mut(r) {
            h.fail_count = h.fail_count.saturating_add(1);
            h.failures_total = h.failures_total.saturating_add(1);
            h.last_failure = Some(now);
        }
        let error = result == OpResult::Failed;
        out.push(Action::Log(LogEvent::MonitorFailed { group: GroupId(g), resource: ResId(r), error }));
        gr.restarts.retain(|&t| now.saturating_since(t) < window);
        let done = u32::try_from(gr.restarts.len()).unwrap_or(u32::MAX);
        if done < limit {
            gr.restarts.push(now);
            let restart = done + 1;
            out.push(Action::Log(LogEvent::Restart { group: GroupId(g), resource: ResId(r), restart, limit }));
            self.begin_restart(g, r, out);
        } else {
            out.push(Action::Log(LogEvent::RestartLimit { group: GroupId(g) }));
            gr.failed = true;
            gr.failed_at = Some(now);
            gr.pinned = false;
            let top = gr.def.n_resources.checked_sub(1);
            self.begin_stop(g, top, out);
        }
    }

    /// An in-place restart still makes sense: nothing asks this node to give the group up.
    fn restart_still_wanted(&self, g: usize) -> bool {
        let Some(gr) = self.groups.get(g) else { return false };
        let released = self.shutdown
            || self.node != NodeState::Active
            || gr.standby
            || (self.isolated && self.peer == PeerState::Dead)
            || (self.reach_worse && self.peer_can_take(g));
        !released
    }

    /// Stops the resources from the last down to `r`, then starts them again from `r`.
    fn begin_restart(&mut self, g: usize, r: usize, out: &mut Vec<Action>) {
        let Some(gr) = self.groups.get_mut(g) else { return };
        let Some(top) = gr.def.n_resources.checked_sub(1) else { return };
        gr.restart_from = Some(r);
        gr.seq = Seq::Stop;
        gr.cursor = top;
        gr.busy = true;
        gr.stop_failures = 0;
        gr.retry_at = None;
        gr.next_check.iter_mut().for_each(|t| *t = None);
        out.push(Action::Run { group: GroupId(g), resource: ResId(top), op: Op::Stop });
        self.set_state(g, GroupState::Stopping, out);
    }

    /// `failure_timeout`: a failed mark that has lasted long enough is lifted.
    fn expire_failures(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(timeout) = self.settings.failure_timeout else { return };
        for g in 0..self.groups.len() {
            let due =
                self.groups.get(g).is_some_and(|gr| gr.failed && gr.failed_at.is_some_and(|at| at + timeout <= now));
            if due {
                self.clear_failures(g);
                out.push(Action::Log(LogEvent::FailureExpired { group: GroupId(g) }));
                if self.groups.get(g).is_some_and(|gr| gr.state == GroupState::Failed) {
                    self.set_state(g, GroupState::Stopped, out);
                }
            }
        }
    }

    fn clear_failures(&mut self, g: usize) {
        if let Some(gr) = self.groups.get_mut(g) {
            gr.failed = false;
            gr.failed_at = None;
            gr.restarts.clear();
        }
    }

    /// `tandem cleanup`: fail counts, restarts and the failed mark are forgotten here.
    fn cleanup(&mut self, g: usize, out: &mut Vec<Action>) {
        self.clear_failures(g);
        let Some(gr) = self.groups.get_mut(g) else { return };
        for h in &mut gr.health {
            h.fail_count = 0;
            h.last_failure = None;
        }
        out.push(Action::Log(LogEvent::Cleanup { group: GroupId(g) }));
        if gr.state == GroupState::Failed {
            self.set_state(g, GroupState::Stopped, out);
        }
    }

    fn begin_start(&mut self, g: usize, out: &mut Vec<Action>) {
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        if gr.def.n_resources == 0 {
            self.set_state(g, GroupState::Started, out);
            return;
        }
        gr.seq = Seq::Start;
        gr.cursor = 0;
        gr.busy = true;
        out.push(Action::Run { group: GroupId(g), resource: ResId(0), op: Op::Start });
        self.set_state(g, GroupState::Starting, out);
    }

    fn begin_release(&mut self, g: usize, reason: ReleaseReason, out: &mut Vec<Action>) {
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        out.push(Action::Log(LogEvent::Release { group: GroupId(g), reason }));
        gr.pinned = false;
        gr.claim = 0;
        // A restart in progress stops for good: down to the first resource.
        gr.restart_from = None;
        match gr.state {
            // A status check is running: stop once it is done (one operation at a time).
            GroupState::Started if gr.busy => gr.release_pending = true,
            GroupState::Started => {
                let top = gr.def.n_resources.checked_sub(1);
                self.begin_stop(g, top, out);
            }
            GroupState::Starting => gr.release_pending = true,
            _ => {}
        }
    }

    fn fire_retries(&mut self, now: Instant, out: &mut Vec<Action>) {
        for (g, gr) in self.groups.iter_mut().enumerate() {
            if let Some(at) = gr.retry_at {
                if at <= now {
                    gr.retry_at = None;
                    gr.busy = true;
                    out.push(Action::Run { group: GroupId(g), resource: ResId(gr.cursor), op: Op::Stop });
                }
            }
        }
    }

    fn update_node_state(&mut self, out: &mut Vec<Action>) {
        let from = self.node;
        let to = match from {
            NodeState::Init if self.groups.iter().all(|g| g.seq == Seq::Idle) => {
                if self.shutdown {
                    NodeState::Leaving
                } else {
                    NodeState::Active
                }
            }
            NodeState::Active if self.shutdown => NodeState::Leaving,
            s => s,
        };
        if to != from {
            self.node = to;
            out.push(Action::Log(LogEvent::Node { from, to }));
        }
    }

    // ----- policy -----

    /// The peer's latest advertised entry for `g`, when the peer is up and has been heard.
    fn peer_group(&self, g: usize) -> Option<GroupWire> {
        if self.peer == PeerState::Up && self.peer_known {
            self.peer_groups.get(g).copied()
        } else {
            None
        }
    }

    /// The peer's claim beats ours when neither holds: PINNED beats unpinned, else the
    /// preferred node wins.
    fn peer_has_priority(gr: &Group, p: &GroupWire) -> bool {
        let pp = pinned(p);
        if pp != gr.pinned {
            pp
        } else {
            !gr.def.preferred_is_local
        }
    }

    /// Whether this node wants to hold `g` now (and so claims it).
    fn wants(&self, g: usize) -> bool {
        let Some(gr) = self.groups.get(g) else {
            return false;
        };
        if self.node != NodeState::Active || self.shutdown {
            return false;
        }
        if gr.failed
            || gr.release_pending
            || gr.seq == Seq::Stop
            || matches!(gr.state, GroupState::Failed | GroupState::FailedToStop | GroupState::Stopping)
        {
            return false;
        }
        if self.peer == PeerState::Dead {
            if self.isolated {
                return false;
            }
            // Taking a dead peer's group waits until fencing allows it; a held group is kept.
            return gr.holding() || self.dead_peer_cleared;
        }
        if gr.standby || (self.reach_worse && self.peer_can_take(g)) {
            return false;
        }
        if gr.holding() {
            return true;
        }
        let Some(p) = self.peer_group(g) else {
            // Peer not known yet: claiming is harmless (starting needs the peer's grant).
            return gr.pinned || gr.def.preferred_is_local;
        };
        let base = gr.pinned
            || p.flags & gflag::OFFER != 0
            || p.state == GroupState::Failed
            || self.peer_node == NodeState::Leaving
            || (gr.def.preferred_is_local && (self.settings.auto_failback || !p.state.may_hold()));
        if !base {
            return false;
        }
        // An operator's takeover here is not withdrawn because the peer holds the group
        // by an older takeover: the holder yields to our pinned claim.
        if gr.pinned && p.state.may_hold() {
            return true;
        }
        // Yield to a peer whose claim has priority over ours.
        !(claims(&p) && Self::peer_has_priority(gr, &p))
    }

    /// Why a holder must give the group up now, if it must.
    fn release_reason(&self, g: usize) -> Option<ReleaseReason> {
        let gr = self.groups.get(g)?;
        if self.node == NodeState::Leaving || self.shutdown {
            return Some(ReleaseReason::Shutdown);
        }
        if gr.standby {
            return Some(ReleaseReason::Standby);
        }
        if self.isolated && self.peer == PeerState::Dead {
            return Some(ReleaseReason::Isolated);
        }
        if self.reach_worse && self.peer_can_take(g) {
            return Some(ReleaseReason::Reach);
        }
        let p = self.peer_group(g)?;
        let peer_preferred = !gr.def.preferred_is_local;
        if matches!(p.state, GroupState::Starting | GroupState::Started) {
            return if peer_preferred { Some(ReleaseReason::BothHold) } else { None };
        }
        if claims(&p) && !p.state.may_hold() {
            // An operator's takeover on the peer is the newest word: it wins even over our
            // own earlier takeover (releasing clears our pin, so this cannot ping-pong).
            if pinned(&p) {
                return Some(ReleaseReason::PeerPinned);
            }
            if !pinned(&p) && peer_preferred && self.settings.auto_failback && !gr.pinned {
                return Some(ReleaseReason::Failback);
            }
        }
        None
    }

    /// Whether `g` may be started now (after claim and grant are up to date).
    fn may_start(&self, g: usize) -> bool {
        let Some(gr) = self.groups.get(g) else {
            return false;
        };
        if self.node != NodeState::Active
            || self.shutdown
            || gr.state != GroupState::Stopped
            || gr.seq != Seq::Idle
            || gr.claim == 0
            || gr.grant != 0
        {
            return false;
        }
        match self.peer {
            PeerState::Dead => self.dead_peer_cleared,
            PeerState::Init => false,
            PeerState::Up => match self.peer_group(g) {
                Some(p) => {
                    fully_stopped_state(p.state) && (p.grant == gr.claim || self.peer_node == NodeState::Leaving)
                }
                None => false,
            },
        }
    }

    /// A fresh claim token. While the peer binds its grants to our generation, a grant
    /// cannot outlive a restart of ours, so tokens need only be unique within this
    /// generation: a 31-bit counter, with the top bit set (2^31 claims before it repeats).
    /// Otherwise (a 0.1.0 peer) the low 16 bits of the generation above a 16-bit counter,
    /// so that a restarted node does not reuse the tokens of its previous life.
    fn new_token(&mut self) -> u32 {
        if self.grants_bound {
            self.bound_counter = self.bound_counter.wrapping_add(1) & 0x7fff_ffff;
            if self.bound_counter == 0 {
                self.bound_counter = 1;
            }
            return 0x8000_0000 | self.bound_counter;
        }
        self.counter = self.counter.wrapping_add(1);
        if self.counter == 0 {
            self.counter = 1;
        }
        ((self.generation as u32) << 16) | u32::from(self.counter)
    }

    /// Whether groups may be taken from a dead peer now (fencing decides; without fencing,
    /// always). A group already held is kept either way.
    pub fn set_dead_peer_cleared(&mut self, on: bool) {
        self.dead_peer_cleared = on;
    }

    /// This node reaches fewer ping targets than its peer: hand its groups to the peer
    /// (orderly), and claim none.
    pub fn set_reach_worse(&mut self, on: bool) {
        self.reach_worse = on;
    }

    /// The peer is silent and this node reaches no ping target: stop every group and claim
    /// none (ignored while the peer is heard).
    pub fn set_isolated(&mut self, on: bool) {
        self.isolated = on;
    }

    /// The peer is up and active, and could run `g` (it has not failed it, nor offers it).
    fn peer_can_take(&self, g: usize) -> bool {
        self.peer == PeerState::Up
            && self.peer_node == NodeState::Active
            && self.peer_group(g).is_some_and(|p| {
                p.flags & gflag::OFFER == 0 && !matches!(p.state, GroupState::Failed | GroupState::FailedToStop)
            })
    }

    /// This node holds (or is starting or stopping) some group.
    pub fn holds_any(&self) -> bool {
        self.groups.iter().any(|g| g.state.may_hold())
    }

    /// The peer holds (or is starting or stopping) some group, as last heard, whether or not
    /// it is still heard.
    pub fn peer_holds_any(&self) -> bool {
        self.peer_known && self.peer_groups.iter().take(self.groups.len()).any(|p| p.state.may_hold())
    }

    /// The peer binds its grants to our generation (it echoes the generation it heard, and
    /// the daemon drops grants that echo another): claim tokens need only be unique within
    /// this generation.
    pub fn set_grants_bound(&mut self, on: bool) {
        self.grants_bound = on;
    }

    fn reconcile(&mut self, g: usize, out: &mut Vec<Action>) {
        // 1. A holder that must give the group up starts doing so.
        let holding_ok = self.groups.get(g).is_some_and(|gr| gr.holding() && !gr.release_pending);
        if holding_ok {
            if let Some(reason) = self.release_reason(g) {
                self.begin_release(g, reason, out);
            }
        }
        // 2. Claim.
        let want = self.wants(g);
        let fresh = if want && self.groups.get(g).is_some_and(|gr| gr.claim == 0) { self.new_token() } else { 0 };
        // 3. Grant.
        let peer_claim = self.peer_group(g).filter(claims).map_or(0, |p| p.claim);
        let node_ready = self.node != NodeState::Init;
        let Some(gr) = self.groups.get_mut(g) else {
            return;
        };
        if !want {
            gr.claim = 0;
        } else if fresh != 0 {
            gr.claim = fresh;
        }
        let fully_stopped = node_ready && gr.seq == Seq::Idle && fully_stopped_state(gr.state);
        gr.grant = if gr.grant != 0 && gr.grant == peer_claim && fully_stopped {
            gr.grant // a grant stays given while the peer claims with that token
        } else if peer_claim != 0 && fully_stopped && gr.claim == 0 {
            peer_claim
        } else {
            0
        };
        // 4. Start.
        if self.may_start(g) {
            if self.peer == PeerState::Dead {
                out.push(Action::Log(LogEvent::TakeoverPeerDead { group: GroupId(g) }));
            }
            self.begin_start(g, out);
        }
    }

    fn offer(&self, gr: &Group) -> bool {
        gr.claim == 0
            && gr.state != GroupState::FailedToStop
            && self.node != NodeState::Init
            && (gr.standby || gr.failed || self.reach_worse || self.node == NodeState::Leaving)
    }

    fn wire_of(&self, g: usize) -> GroupWire {
        let Some(gr) = self.groups.get(g) else {
            return GroupWire::EMPTY;
        };
        let mut flags = 0;
        if gr.claim != 0 {
            flags |= gflag::CLAIM;
        }
        if gr.pinned {
            flags |= gflag::PINNED;
        }
        if self.offer(gr) {
            flags |= gflag::OFFER;
        }
        GroupWire {
            index: u8::try_from(g).unwrap_or(u8::MAX),
            state: gr.state,
            flags,
            claim: gr.claim,
            grant: gr.grant,
        }
    }

    fn announce_if_changed(&mut self, out: &mut Vec<Action>) -> bool {
        let mut changed = self.node != self.last_node;
        self.last_node = self.node;
        for g in 0..self.groups.len() {
            let w = self.wire_of(g);
            if let Some(slot) = self.last_adv.get_mut(g) {
                if *slot != w {
                    *slot = w;
                    changed = true;
                }
            }
        }
        if changed {
            out.push(Action::Announce);
        }
        changed
    }

    /// The peer has shown what it does with every group we gave up (or cannot be waited for).
    fn peer_took_over(&self) -> bool {
        if self.peer != PeerState::Up {
            return true;
        }
        if !self.peer_known {
            return false;
        }
        if self.peer_node == NodeState::Leaving {
            return true;
        }
        self.peer_groups.iter().take(self.groups.len()).all(|p| {
            p.flags & gflag::OFFER != 0
                || matches!(
                    p.state,
                    GroupState::Starting | GroupState::Started | GroupState::Failed | GroupState::FailedToStop
                )
        })
    }

    fn check_exit(&mut self, now: Instant, announced: bool, out: &mut Vec<Action>) {
        if self.node != NodeState::Leaving {
            return;
        }
        if self.groups.iter().any(|g| g.seq != Seq::Idle) {
            return;
        }
        let mut blocked = false;
        for (g, gr) in self.groups.iter_mut().enumerate() {
            if !fully_stopped_state(gr.state) {
                blocked = true;
                if !gr.exit_blocked_logged {
                    gr.exit_blocked_logged = true;
                    out.push(Action::Log(LogEvent::ExitBlocked { group: GroupId(g) }));
                }
            }
        }
        if blocked {
            return;
        }
        let deadline = *self.linger_until.get_or_insert(now + self.leave_linger);
        if !self.peer_took_over() && now < deadline {
            return;
        }
        if !announced {
            out.push(Action::Announce);
        }
        out.push(Action::Exit);
        self.exited = true;
    }
}

impl Cluster {
    /// Config reload: `auto_failback` may change live.
    pub fn set_auto_failback(&mut self, on: bool) {
        self.settings.auto_failback = on;
    }

    /// Config reload: `restart_limit`, `restart_window` and `failure_timeout` may change
    /// live. They apply from the next failure; restarts already counted stay counted, and
    /// a failed mark set earlier expires by the new `failure_timeout`.
    pub fn set_failure_policy(
        &mut self,
        restart_limit: u32,
        restart_window: Duration,
        failure_timeout: Option<Duration>,
    ) {
        self.settings.restart_limit = restart_limit;
        self.settings.restart_window = restart_window;
        self.settings.failure_timeout = failure_timeout;
    }
}
