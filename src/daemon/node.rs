//! The daemon's pure core: membership, the cluster state machine and the bookkeeping that
//! glues them to the wire (heartbeat de-duplication, the peer's keepalive, the outdate
//! sub-protocol). No clock reads, no fds: the loop in `mod.rs` feeds it [`Input`]s with the
//! current time and carries out the [`Output`]s; the seeded simulation in `sim.rs` drives
//! two of these through a lossy network, so what is simulated is what runs.
//!
//! Heartbeats are not sent from [`Node::handle`]: the loop calls [`Node::flush`] once it
//! has fed back the results of every inline operation, so that one state change costs one
//! heartbeat.

use crate::cluster::{self, Cluster, GroupDef, Settings};
use crate::membership::{self, Membership, PeerState, Timing};
use crate::time::{Duration, Instant};
use crate::wire::ext::Ext;
use crate::wire::{GroupWire, MsgKind, NodeState, Repr, MAX_GROUPS};

use super::fencing::{Allow, FenceSetup, Fencing, Gate, Holdings};
use super::io::{Event, Input, Msg, Output};
use super::outdate::{FenceView, Outdates};
use super::partition::{FenceAction, Partition, PartitionSetup, PeerReach, Reach};

/// What the core is built from.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    pub timing: Timing,
    pub groups: Vec<GroupDef>,
    pub settings: Settings,
    /// This daemon's boot generation.
    pub generation: u64,
    pub n_links: usize,
    /// After a clean stop, how long to keep announcing until the peer has taken over.
    pub leave_linger: Duration,
    /// [`crate::config::Config::digest`]: both nodes must agree on it.
    pub config_digest: u32,
    /// How the peer is fenced.
    pub fence: FenceSetup,
    /// Ping targets, connectivity policy, partition decisions, watchdog.
    pub partition: PartitionSetup,
}

/// The pure core. See the module documentation.
#[derive(Debug)]
pub struct Node {
    membership: Membership,
    cluster: Cluster,
    generation: u64,
    config_digest: u32,
    /// The peer's configuration digest differs from ours (reported once per episode).
    config_mismatch: bool,
    keepalive_ms: u32,
    /// The keepalive the peer last advertised (0 = not heard yet).
    peer_keepalive_ms: u32,
    /// (generation, seq) of the newest heartbeat given to the cluster.
    last_state: Option<(u64, u64)>,
    /// The extension fields of the peer's newest heartbeat.
    peer_ext: Option<Ext>,
    /// The peer's newest (generation, seq) accepted, on any link, of any kind.
    peer_mark: Option<(u64, u64)>,
    /// The last heartbeat's extensions were malformed (reported once per episode).
    ext_bad: bool,
    /// The peer's newest heartbeat said it is shutting down cleanly with every group stopped.
    peer_leaving_clean: bool,
    outdates: Outdates,
    fencing: Fencing,
    partition: Partition,
    /// What the cluster was last told: fewer targets than the peer; isolated.
    cluster_reach_worse: bool,
    cluster_isolated: bool,
    /// Isolation was last reported (logged whether or not `isolated_stop` stops the groups).
    isolated_reported: bool,
    /// What the cluster was last told: groups may be taken from a dead peer.
    cluster_cleared: bool,
    /// The reachability sent in heartbeats (updated as targets answer or fall silent).
    reach_advertised: Option<PeerReach>,
    /// Reused buffers for the echoes due.
    echoes: Vec<(u16, u16)>,
    echo_scratch: Vec<(usize, u16)>,
    /// Reused buffer for the cluster's actions.
    actions: Vec<cluster::Action>,
    /// The cluster changed what we advertise: send at the next flush.
    announce: bool,
    /// Membership asked for a heartbeat: send at the next flush.
    send_due: bool,
    exited: bool,
}

impl Node {
    pub fn new(now: Instant, s: NodeSetup) -> Node {
        let n_res: usize = s.groups.iter().map(|g| g.n_resources).sum();
        let mut cluster = Cluster::new(now, s.groups, s.settings, s.generation);
        cluster.set_leave_linger(s.leave_linger);
        let fencing = Fencing::new(now, s.fence);
        let fencing_open = fencing.gate() == Gate::Open;
        cluster.set_dead_peer_cleared(fencing_open);
        let n_echo = s.partition.targets.len() + s.partition.probes.len();
        let partition = Partition::new(now, s.partition);
        Node {
            membership: Membership::new(now, s.timing, s.n_links),
            cluster,
            generation: s.generation,
            config_digest: s.config_digest,
            config_mismatch: false,
            keepalive_ms: millis_u32(s.timing.keepalive),
            peer_keepalive_ms: 0,
            last_state: None,
            peer_ext: None,
            peer_mark: None,
            ext_bad: false,
            peer_leaving_clean: false,
            outdates: Outdates::default(),
            fencing,
            partition,
            cluster_reach_worse: false,
            cluster_isolated: false,
            isolated_reported: false,
            cluster_cleared: fencing_open,
            reach_advertised: None,
            echoes: Vec::with_capacity(n_echo),
            echo_scratch: Vec::with_capacity(n_echo),
            actions: Vec::with_capacity(64 + 4 * n_res),
            announce: false,
            send_due: false,
            exited: false,
        }
    }

    /// Feeds one input; appends what to do to `out` (allocation-free in the steady state
    /// when `out` has room). Call [`Node::flush`] after feeding back inline results.
    pub fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Output>) {
        match input {
            Input::Tick => {
                let a = self.membership.handle(now, membership::Event::Tick);
                self.membership_actions(now, a, out);
                self.echoes.clear();
                self.partition.due(now, &mut self.echoes, &mut self.echo_scratch);
                for &(index, seq) in &self.echoes {
                    out.push(Output::Ping { index, seq });
                }
                self.cluster_event(now, cluster::Event::Tick, out);
            }
            Input::Packet { link, repr } => self.packet(now, link, repr, out),
            Input::PingReply { index, seq } => self.partition.reply(now, index, seq),
            Input::OpDone { group, resource, op, result } => {
                self.cluster_event(now, cluster::Event::OpDone { group, resource, op, result }, out)
            }
            Input::Standby(sel) => self.cluster_event(now, cluster::Event::Standby(sel), out),
            Input::Takeover(sel) => self.cluster_event(now, cluster::Event::Takeover(sel), out),
            Input::Shutdown => self.cluster_event(now, cluster::Event::Shutdown, out),
            Input::Cleanup(sel) => self.cluster_event(now, cluster::Event::Cleanup(sel), out),
            Input::OutdateAsk { conn, resource } => {
                let (peer, ka) = (self.membership.peer_state(), self.membership.timing().keepalive);
                let fence = self.fence_view();
                self.outdates.ask(now, conn, resource, peer, ka, fence, out);
            }
            Input::OutdateDone { id, code } => self.outdates.answered(now, id, code, out),
            Input::ConnGone(conn) => {
                self.outdates.conn_gone(conn);
                self.fencing.conn_gone(conn);
            }
            Input::FenceDone { attempt, ok, detail } => {
                self.fencing.attempt_done(now, attempt, ok, detail.to_string(), out);
            }
            Input::FenceCheckDone { id, ok, detail } => {
                self.fencing.check_done(now, id, ok, detail.to_string(), out);
            }
            Input::FenceNow { conn } => {
                self.fencing.operator_fence(now, conn, out);
            }
            Input::Fenced { conn } => {
                let up = self.membership.peer_state() == PeerState::Up;
                self.fencing.operator_confirms(now, conn, up, out);
            }
            Input::Reload { timing, auto_failback, failure, config_digest } => {
                self.config_digest = config_digest;
                self.membership.set_timing(timing);
                self.keepalive_ms = millis_u32(timing.keepalive);
                self.cluster.set_auto_failback(auto_failback);
                self.cluster.set_failure_policy(failure.restart_limit, failure.restart_window, failure.failure_timeout);
            }
            // For the heartbeat core only (tandem's packets arrive decoded).
            Input::Raw { .. } => {}
        }
        self.partition_step(now, out);
        // Outdate requests follow the peer's state (sent once it is up, answered at once
        // when it is dead) and time (resends, deadlines).
        let (peer, ka) = (self.membership.peer_state(), self.membership.timing().keepalive);
        let fence = self.fence_view();
        self.outdates.tick(now, peer, ka, fence, out);
        self.observe_holdings(now);
    }

    /// Tells fencing what each node holds (its partition slot is picked on it), with the
    /// settling window: twice (deadtime + keepalive) covers the skew between the two nodes'
    /// verdicts, so a node whose view of this one is stale finds this one's change recent.
    fn observe_holdings(&mut self, now: Instant) {
        let held = Holdings { own: self.cluster.holds_any(), peer: self.cluster.peer_holds_any() };
        let t = self.membership.timing();
        self.fencing.observe(now, held, (t.deadtime + t.keepalive).saturating_mul(2));
    }

    /// Follows the partition decisions (docs/fencing.md): the connectivity policy, whether
    /// this node stops its groups, and what fencing may do now.
    fn partition_step(&mut self, now: Instant, out: &mut Vec<Output>) {
        let peer_up = self.membership.peer_state() == PeerState::Up;
        let reach = self.partition.own_reach(now);
        if reach != self.reach_advertised {
            self.reach_advertised = reach;
            self.announce = true;
        }
        let worse = self.partition.update_worse(now, peer_up);
        let d = self.partition.decide(now, self.cluster.holds_any());
        // Isolation is about reach alone: once the groups are stopped the node stays
        // isolated (it must not take them back) until a target answers again.
        let isolated = !peer_up && self.partition.reach(now) == Reach::Isolated;
        let stop = isolated && self.partition.setup().isolated_stop;
        if isolated != self.isolated_reported {
            self.isolated_reported = isolated;
            if isolated {
                out.push(Output::Event(Event::Isolated { stops: stop }));
            }
        }
        if worse != self.cluster_reach_worse || stop != self.cluster_isolated {
            if worse != self.cluster_reach_worse {
                out.push(Output::Event(Event::ReachWorse { worse }));
            }
            self.cluster_reach_worse = worse;
            self.cluster_isolated = stop;
            self.cluster.set_reach_worse(worse);
            self.cluster.set_isolated(stop);
            self.cluster_event(now, cluster::Event::Tick, out);
        }
        let allow = Allow {
            attempt: d.fence == FenceAction::PowerOff,
            watchdog: d.fence == FenceAction::WatchdogPeriod && self.partition.probes_silent(now, self.held_groups()),
        };
        self.fencing.tick(now, allow, out);
        // A dead peer's groups are taken only by a node that reaches its clients (or has no
        // targets), and once fencing allows it.
        let cleared = self.cleared(now);
        if cleared != self.cluster_cleared {
            self.cluster_cleared = cleared;
            self.fence_gate(now, out);
        }
    }

    /// Whether a dead peer's groups may be taken now: this node reaches its clients (or has
    /// no targets), and fencing allows it.
    fn cleared(&self, now: Instant) -> bool {
        let peer_up = self.membership.peer_state() == PeerState::Up;
        let d = self.partition.decide(now, self.cluster.holds_any());
        let reach_ok = peer_up || !matches!(d.fence, FenceAction::Wait | FenceAction::Nothing);
        reach_ok && self.fencing.gate() == Gate::Open
    }

    /// The groups this node holds (bit i: group i).
    fn held_groups(&self) -> u64 {
        (0..self.cluster.n_groups().min(64))
            .filter(|&g| self.cluster.group_view(cluster::GroupId(g)).owner == cluster::Owner::Local)
            .fold(0, |m, g| m | 1u64 << g)
    }

    /// Whether this node may pet its hardware watchdog now: the partition decisions let it
    /// keep its groups (always true when its stonith line is not `watchdog`).
    pub fn may_pet(&self, now: Instant) -> bool {
        self.partition.decide(now, self.cluster.holds_any()).pet
    }

    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Where fencing of the peer stands, for the outdate requests.
    fn fence_view(&self) -> FenceView {
        use super::fencing::{Method, State};
        match (self.fencing.method(), self.fencing.state()) {
            (Method::None, _) => FenceView::None,
            // A peer that shut down cleanly is not fenced: "unreachable", as without fencing.
            _ if self.fencing.left() => FenceView::None,
            (_, State::Confirmed { .. }) => FenceView::Confirmed,
            _ => FenceView::Pending,
        }
    }

    /// Fencing or reachability decided something: let the cluster take over from the dead
    /// peer if allowed.
    fn fence_gate(&mut self, now: Instant, out: &mut Vec<Output>) {
        let open = self.cluster_cleared;
        self.cluster.set_dead_peer_cleared(open);
        if open && self.membership.peer_state() == PeerState::Dead {
            self.cluster_event(now, cluster::Event::Tick, out);
        }
    }

    /// Sends the heartbeat that is due (on the keepalive cadence, or because what we
    /// advertise changed), at most one.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.announce {
            self.announce = false;
            self.membership.announce();
            let a = self.membership.handle(now, membership::Event::Tick);
            self.membership_actions(now, a, out);
        }
        if self.send_due {
            self.send_due = false;
            out.push(Output::Send(Msg::Heartbeat));
        }
    }

    pub fn fencing(&self) -> &Fencing {
        &self.fencing
    }

    /// When the core next needs a [`Input::Tick`].
    pub fn poll_at(&self) -> Instant {
        let mut t = self.membership.poll_at();
        if let Some(f) = self.fencing.poll_at() {
            t = t.min(f);
        }
        if let Some(p) = self.partition.poll_at() {
            t = t.min(p);
        }
        if let Some(c) = self.cluster.poll_at() {
            t = t.min(c);
        }
        if let Some(o) = self.outdates.poll_at() {
            t = t.min(o);
        }
        t
    }

    /// Writes the heartbeat we advertise now into `r` (kind, node state, keepalive, groups).
    pub fn fill_heartbeat(&self, r: &mut Repr) {
        r.kind = MsgKind::Heartbeat;
        r.node_state = self.cluster.node_state();
        r.keepalive_ms = self.keepalive_ms;
        let n = self.cluster.wire_groups(&mut r.groups);
        r.n_groups = u8::try_from(n.min(MAX_GROUPS)).unwrap_or(0);
        let echo = self.membership.peer_generation().unwrap_or(0);
        let ext = Ext::ours(self.config_digest, echo)
            .with_fence_delay(self.fencing.advertised_delay_ms())
            .with_reach(self.reach_advertised.map(|r| (r.count, r.known)));
        let len = ext.emit(&mut r.payload);
        r.payload_len = u8::try_from(len).unwrap_or(0);
    }

    /// The extension fields of the peer's newest heartbeat (`None`: not heard yet).
    pub fn peer_ext(&self) -> Option<Ext> {
        self.peer_ext
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn node_state(&self) -> NodeState {
        self.cluster.node_state()
    }

    /// The DRBD resource outdate child `id` is answering.
    pub fn outdate_answering(&self, id: usize) -> Option<&str> {
        self.outdates.answering(id)
    }

    /// True once [`Output::Exit`] has been emitted.
    pub fn exited(&self) -> bool {
        self.exited
    }

    fn packet(&mut self, now: Instant, link: usize, repr: &Repr, out: &mut Vec<Output>) {
        let mark = (repr.generation, repr.seq);
        if self.peer_mark.is_none_or(|m| mark > m) {
            self.peer_mark = Some(mark);
        }
        let a = self.membership.handle(now, membership::Event::Received { link, generation: repr.generation });
        self.membership_actions(now, a, out);
        if repr.keepalive_ms != self.peer_keepalive_ms {
            if self.peer_keepalive_ms != 0 || repr.keepalive_ms != self.keepalive_ms {
                out.push(Output::Event(Event::KeepaliveMismatch { peer_ms: repr.keepalive_ms }));
            }
            self.peer_keepalive_ms = repr.keepalive_ms;
        }
        match repr.kind {
            MsgKind::Heartbeat => {
                // The same state arrives once per link: the cluster sees each heartbeat once,
                // strictly in sending order (the replay window accepts reordered copies, which
                // is right for link liveness but not for state).
                let key = (repr.generation, repr.seq);
                if self.last_state.is_some_and(|last| key <= last) {
                    return;
                }
                self.last_state = Some(key);
                let ext = match Ext::parse(repr.payload()) {
                    Ok(e) => {
                        self.ext_bad = false;
                        e
                    }
                    Err(_) => {
                        if !self.ext_bad {
                            self.ext_bad = true;
                            out.push(Output::Event(Event::BadExtension));
                        }
                        Ext::default()
                    }
                };
                if self.peer_ext.map(|e| e.level) != Some(ext.level) {
                    out.push(Output::Event(Event::PeerLevel { level: ext.level }));
                }
                self.peer_ext = Some(ext);
                self.partition.set_peer_reach(ext.reach.map(|(count, known)| PeerReach { count, known }));
                // A peer with another group list: its group entries would be matched to the
                // wrong groups. Keep what each holds, start nothing on its word.
                let mismatch = ext.config_digest.is_some_and(|d| d != self.config_digest);
                if mismatch != self.config_mismatch {
                    self.config_mismatch = mismatch;
                    out.push(Output::Event(Event::ConfigDigest {
                        ours: self.config_digest,
                        theirs: ext.config_digest.unwrap_or(0),
                        same: !mismatch,
                    }));
                }
                if mismatch {
                    return;
                }
                // Grants are bound to our generation: a grant the peer sent for our previous
                // life (before it heard this one) is not ours to use.
                self.cluster.set_grants_bound(ext.echo.is_some());
                let mut groups = [GroupWire::EMPTY; MAX_GROUPS];
                let src = repr.groups();
                let n = src.len().min(MAX_GROUPS);
                groups[..n].copy_from_slice(&src[..n]);
                if ext.echo.is_some_and(|e| e != self.generation) {
                    for g in groups.iter_mut() {
                        g.grant = 0;
                    }
                }
                let groups = &groups[..n];
                self.peer_leaving_clean =
                    repr.node_state == NodeState::Leaving && groups.iter().all(|g| !g.state.may_hold());
                self.cluster_event(now, cluster::Event::PeerPacket { node_state: repr.node_state, groups }, out);
            }
            MsgKind::OutdateRequest => {
                let (resource, id) = super::outdate::decode_request(repr.payload());
                self.outdates.peer_asks(now, &resource, id, out);
            }
            MsgKind::OutdateReply => {
                if let Some((code, name, id)) = super::outdate::decode_reply(repr.payload()) {
                    self.outdates.peer_answers(&name, id, code, out);
                }
            }
        }
    }

    fn membership_actions(&mut self, now: Instant, a: membership::Actions, out: &mut Vec<Output>) {
        if a.links_changed != 0 {
            for i in 0..self.membership.n_links().min(membership::MAX_LINKS) {
                if a.links_changed & (1u64 << i) == 0 {
                    continue;
                }
                let up = self.membership.link(i).is_some_and(|s| s.up);
                out.push(Output::Event(if up { Event::LinkUp(i) } else { Event::LinkDown(i) }));
            }
        }
        if a.peer_late {
            out.push(Output::Event(Event::PeerLate));
        }
        if a.peer_restarted {
            out.push(Output::Event(Event::PeerRestarted));
            self.save_peer_mark(out);
            self.cluster_event(now, cluster::Event::PeerRestarted, out);
        }
        if let Some((from, to)) = a.peer {
            let silent_ms = match to {
                PeerState::Dead => self.membership.last_seen().map(|t| now.saturating_since(t).as_millis() as u64),
                _ => None,
            };
            out.push(Output::Event(Event::Peer { from, to, silent_ms }));
            self.save_peer_mark(out);
            match to {
                PeerState::Dead => {
                    // Decided on what this node held just before the death, and on the
                    // larger of the two nodes' fence delays.
                    let peer_delay =
                        self.peer_ext.and_then(|e| e.fence_delay_ms).map(|ms| Duration::from_millis(ms.into()));
                    let last_heard = self.membership.last_seen().unwrap_or(now);
                    self.partition.peer_dead(now);
                    if self.peer_leaving_clean {
                        self.fencing.peer_left(out);
                    } else {
                        self.observe_holdings(now);
                        self.fencing.peer_dead(now, peer_delay, last_heard, out);
                    }
                }
                PeerState::Up => {
                    self.peer_leaving_clean = false;
                    self.partition.peer_up();
                    self.fencing.peer_up(now, out);
                }
                PeerState::Init => {}
            }
            self.cluster_cleared = self.cleared(now);
            self.cluster.set_dead_peer_cleared(self.cluster_cleared);
            self.cluster_event(now, cluster::Event::Peer(to), out);
        }
        if a.send_heartbeat {
            self.send_due = true;
        }
    }

    fn save_peer_mark(&self, out: &mut Vec<Output>) {
        if let Some((generation, seq)) = self.peer_mark {
            out.push(Output::SavePeerMark { generation, seq });
        }
    }

    /// The peer's newest (generation, seq) accepted, for a last store at exit.
    pub fn peer_mark(&self) -> Option<(u64, u64)> {
        self.peer_mark
    }

    fn cluster_event(&mut self, now: Instant, ev: cluster::Event<'_>, out: &mut Vec<Output>) {
        if self.exited {
            return;
        }
        self.actions.clear();
        self.cluster.handle(now, ev, &mut self.actions);
        for a in self.actions.drain(..) {
            match a {
                cluster::Action::Run { group, resource, op } => out.push(Output::Run { group, resource, op }),
                cluster::Action::Announce => self.announce = true,
                cluster::Action::Log(e) => out.push(Output::Event(Event::Cluster(e))),
                cluster::Action::Exit => {
                    // The final state goes out before the exit.
                    self.announce = true;
                    self.exited = true;
                }
            }
        }
        if self.exited {
            self.flush(now, out);
            out.push(Output::Exit);
        }
    }
}

fn millis_u32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{GroupId, Op, OpResult, ResId};
    use crate::wire::{gflag, GroupState, MAX_PAYLOAD};

    const GEN: u64 = 1_000;
    const PEER_GEN: u64 = 2_000;
    const DIGEST: u32 = 0xd1;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn node() -> Node {
        node_with(PartitionSetup::none(super::super::partition::PeerFencing::None))
    }

    fn node_with(partition: PartitionSetup) -> Node {
        let mut setup = node_setup_for_tests();
        setup.partition = partition;
        Node::new(t(0), setup)
    }

    fn node_setup_for_tests() -> NodeSetup {
        let ms = Duration::from_millis;
        NodeSetup {
            timing: Timing { keepalive: ms(100), warntime: ms(300), deadtime: ms(500), initdead: ms(2000) },
            groups: vec![GroupDef {
                name: "web".into(),
                preferred_is_local: true,
                n_resources: 1,
                monitor: Vec::new(),
            }],
            settings: Settings::default(),
            generation: GEN,
            n_links: 1,
            leave_linger: ms(300),
            config_digest: DIGEST,
            fence: FenceSetup {
                method: super::super::fencing::Method::None,
                policy: crate::config::FencePolicy {
                    delay: None,
                    timeout: ms(1000),
                    check: None,
                    wait_for_peer: false,
                    required: false,
                },
                first_node: true,
                keepalive: ms(100),
                default_fence_time: ms(1000),
            },
            partition: PartitionSetup::none(super::super::partition::PeerFencing::None),
        }
    }

    fn heartbeat(seq: u64, grant: u32, ext: Ext) -> Repr {
        let mut groups = [GroupWire::EMPTY; MAX_GROUPS];
        groups[0] = GroupWire { index: 0, state: GroupState::Stopped, flags: 0, claim: 0, grant };
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = ext.emit(&mut payload);
        Repr {
            cluster_id: 0,
            sender: 1,
            generation: PEER_GEN,
            seq,
            kind: MsgKind::Heartbeat,
            node_state: NodeState::Active,
            keepalive_ms: 100,
            n_groups: 1,
            groups,
            payload_len: n as u8,
            payload,
        }
    }

    fn starts(out: &[Output]) -> bool {
        out.iter().any(|o| matches!(o, Output::Run { op: Op::Start, .. }))
    }

    /// The node after its probe: active, claiming group 0; returns (node, claim token).
    fn claiming(first_ext: Ext) -> (Node, u32) {
        let mut n = node();
        let mut out = Vec::new();
        n.handle(t(0), Input::Tick, &mut out);
        let done = Input::OpDone { group: GroupId(0), resource: ResId(0), op: Op::Status, result: OpResult::Stopped };
        n.handle(t(1), done, &mut out);
        n.handle(t(2), Input::Packet { link: 0, repr: &heartbeat(1, 0, first_ext) }, &mut out);
        let mut w = [GroupWire::EMPTY; MAX_GROUPS];
        let k = n.cluster().wire_groups(&mut w);
        assert_eq!(k, 1);
        assert_ne!(w[0].flags & gflag::CLAIM, 0, "claiming");
        (n, w[0].claim)
    }

    fn fenced_node() -> Node {
        let ms = Duration::from_millis;
        let mut setup = node_setup_for_tests();
        setup.fence.method = super::super::fencing::Method::Power;
        setup.fence.policy.required = true;
        setup.fence.policy.delay = Some(ms(0));
        setup.partition = PartitionSetup::none(super::super::partition::PeerFencing::Power);
        Node::new(t(0), setup)
    }

    fn fence_attempts(out: &[Output]) -> usize {
        out.iter().filter(|o| matches!(o, Output::Fence { .. })).count()
    }

    /// Runs ticks every 50 ms from `from` to `to`.
    fn ticks(n: &mut Node, from: u64, to: u64, out: &mut Vec<Output>) {
        for now in (from..=to).step_by(50) {
            n.handle(t(now), Input::Tick, out);
            n.flush(t(now), out);
        }
    }

    /// A peer that shut down cleanly (it announced Leaving with every group stopped, then
    /// its daemon exited) is not fenced when it falls silent: powering off a machine whose
    /// daemon an operator just stopped would be wrong (seen in the VM rig: the survivor's
    /// BMC fence cut the power of a node being reconfigured). A peer that goes silent while
    /// active is fenced as before.
    #[test]
    fn a_peer_that_left_cleanly_is_not_fenced() {
        for leaving in [true, false] {
            let mut n = fenced_node();
            let mut out = Vec::new();
            ticks(&mut n, 0, 100, &mut out);
            let mut hb = heartbeat(1, 0, Ext::ours(DIGEST, GEN));
            n.handle(t(150), Input::Packet { link: 0, repr: &hb }, &mut out);
            if leaving {
                hb.seq = 2;
                hb.node_state = NodeState::Leaving;
                n.handle(t(200), Input::Packet { link: 0, repr: &hb }, &mut out);
            }
            out.clear();
            ticks(&mut n, 250, 2000, &mut out);
            assert_eq!(n.membership.peer_state(), PeerState::Dead);
            if leaving {
                assert_eq!(fence_attempts(&out), 0, "a peer that left cleanly was fenced: {out:?}");
                assert_eq!(n.fencing.gate(), Gate::Open, "its stopped groups may be taken");
            } else {
                assert_eq!(fence_attempts(&out), 1, "a silent active peer is fenced: {out:?}");
            }
        }
    }

    #[test]
    fn a_grant_for_another_generation_of_ours_is_not_used() {
        let (mut n, token) = claiming(Ext::ours(DIGEST, GEN));
        let mut out = Vec::new();
        // The peer grants our token, but for a generation of ours it heard before a restart.
        n.handle(t(10), Input::Packet { link: 0, repr: &heartbeat(2, token, Ext::ours(DIGEST, GEN - 1)) }, &mut out);
        assert!(!starts(&out), "started on a grant meant for a previous life: {out:?}");
        n.handle(t(20), Input::Packet { link: 0, repr: &heartbeat(3, token, Ext::ours(DIGEST, GEN)) }, &mut out);
        assert!(starts(&out), "the grant for this generation is used: {out:?}");
    }

    #[test]
    fn a_previous_release_peer_keeps_the_old_tokens_and_rules() {
        let (mut n, token) = claiming(Ext::default());
        assert_eq!(token >> 16, GEN as u32 & 0xffff, "0.1.0 peer: generation bits above a counter");
        let mut out = Vec::new();
        n.handle(t(10), Input::Packet { link: 0, repr: &heartbeat(2, token, Ext::default()) }, &mut out);
        assert!(starts(&out), "{out:?}");
    }

    #[test]
    fn another_configuration_digest_is_reported_once_and_starts_nothing() {
        let (mut n, token) = claiming(Ext::ours(DIGEST, GEN));
        let mut out = Vec::new();
        for seq in 2..10 {
            n.handle(t(seq * 10), Input::Packet { link: 0, repr: &heartbeat(seq, token, Ext::ours(7, GEN)) }, &mut out);
        }
        assert!(!starts(&out), "{out:?}");
        let reports =
            out.iter().filter(|o| matches!(o, Output::Event(Event::ConfigDigest { same: false, .. }))).count();
        assert_eq!(reports, 1);
        n.handle(t(200), Input::Packet { link: 0, repr: &heartbeat(20, token, Ext::ours(DIGEST, GEN)) }, &mut out);
        assert!(out.iter().any(|o| matches!(o, Output::Event(Event::ConfigDigest { same: true, .. }))));
        assert!(starts(&out), "{out:?}");
    }

    #[test]
    fn isolation_is_reported_once_whether_or_not_the_groups_stop() {
        for isolated_stop in [true, false] {
            let mut setup = PartitionSetup::none(super::super::partition::PeerFencing::None);
            setup.targets = vec![std::net::IpAddr::from([192, 0, 2, 254])];
            setup.ping_interval = Duration::from_millis(100);
            setup.ping_deadtime = Duration::from_millis(500);
            setup.isolated_stop = isolated_stop;
            let mut n = node_with(setup);
            let mut out = Vec::new();
            n.handle(t(0), Input::Tick, &mut out);
            n.handle(t(2), Input::Packet { link: 0, repr: &heartbeat(1, 0, Ext::ours(DIGEST, GEN)) }, &mut out);
            // The peer falls silent and no target ever answers: dead after deadtime, isolated
            // ping_deadtime later.
            for ms in (10..3000).step_by(10) {
                n.handle(t(ms), Input::Tick, &mut out);
            }
            let reports: Vec<bool> = out
                .iter()
                .filter_map(|o| match o {
                    Output::Event(Event::Isolated { stops }) => Some(*stops),
                    _ => None,
                })
                .collect();
            assert_eq!(reports, [isolated_stop], "isolated_stop {isolated_stop}");
        }
    }
}
