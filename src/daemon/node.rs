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

use super::io::{Event, Input, Msg, Output};
use super::outdate::Outdates;

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
}

/// The pure core. See the module documentation.
#[derive(Debug)]
pub struct Node {
    membership: Membership,
    cluster: Cluster,
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
    outdates: Outdates,
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
        Node {
            membership: Membership::new(now, s.timing, s.n_links),
            cluster,
            keepalive_ms: millis_u32(s.timing.keepalive),
            peer_keepalive_ms: 0,
            last_state: None,
            peer_ext: None,
            peer_mark: None,
            ext_bad: false,
            outdates: Outdates::default(),
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
                self.cluster_event(now, cluster::Event::Tick, out);
            }
            Input::Packet { link, repr } => self.packet(now, link, repr, out),
            Input::OpDone { group, resource, op, result } => {
                self.cluster_event(now, cluster::Event::OpDone { group, resource, op, result }, out)
            }
            Input::Standby(sel) => self.cluster_event(now, cluster::Event::Standby(sel), out),
            Input::Takeover(sel) => self.cluster_event(now, cluster::Event::Takeover(sel), out),
            Input::Shutdown => self.cluster_event(now, cluster::Event::Shutdown, out),
            Input::OutdateAsk { conn, resource } => {
                let (peer, ka) = (self.membership.peer_state(), self.membership.timing().keepalive);
                self.outdates.ask(now, conn, resource, peer, ka, out);
            }
            Input::OutdateDone { id, code } => self.outdates.answered(now, id, code, out),
            Input::ConnGone(conn) => self.outdates.conn_gone(conn),
            Input::Reload { timing, auto_failback } => {
                self.membership.set_timing(timing);
                self.keepalive_ms = millis_u32(timing.keepalive);
                self.cluster.set_auto_failback(auto_failback);
            }
            // For the heartbeat core only (tandem's packets arrive decoded).
            Input::Raw { .. } => {}
        }
        // Outdate requests follow the peer's state (sent once it is up, answered at once
        // when it is dead) and time (resends, deadlines).
        let (peer, ka) = (self.membership.peer_state(), self.membership.timing().keepalive);
        self.outdates.tick(now, peer, ka, out);
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

    /// When the core next needs a [`Input::Tick`].
    pub fn poll_at(&self) -> Instant {
        let mut t = self.membership.poll_at();
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
        let len = Ext::ours().emit(&mut r.payload);
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
                let groups: &[GroupWire] = repr.groups();
                self.cluster_event(now, cluster::Event::PeerPacket { node_state: repr.node_state, groups }, out);
            }
            MsgKind::OutdateRequest => {
                let resource = String::from_utf8_lossy(repr.payload());
                self.outdates.peer_asks(now, &resource, out);
            }
            MsgKind::OutdateReply => {
                if let Some((&code, name)) = repr.payload().split_first() {
                    self.outdates.peer_answers(&String::from_utf8_lossy(name), code, out);
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
