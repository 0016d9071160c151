//! Unit tests with explicit times, one rule at a time.

use super::*;
use crate::wire::gflag::{CLAIM, OFFER, PINNED};

const GEN: u64 = 7;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn def(name: &str, preferred: bool, n: usize) -> GroupDef {
    GroupDef { name: name.into(), preferred_is_local: preferred, n_resources: n, monitor: Vec::new() }
}

fn settings(auto_failback: bool) -> Settings {
    Settings { auto_failback, stop_retries: 2, stop_retry_delay: Duration::from_millis(500), ..Settings::default() }
}

fn pw(index: u8, state: GroupState, flags: u8, claim: u32, grant: u32) -> GroupWire {
    GroupWire { index, state, flags, claim, grant }
}

/// The first token a node of generation `gen` hands out, and the ones after it.
fn token(gen: u64, k: u32) -> u32 {
    ((gen as u32) << 16) | k
}

struct H {
    c: Cluster,
    now: Instant,
}

impl H {
    fn new(groups: Vec<GroupDef>, s: Settings) -> H {
        H { c: Cluster::new(t(0), groups, s, GEN), now: t(0) }
    }

    fn ev(&mut self, ev: Event) -> Vec<Action> {
        let mut out = Vec::with_capacity(64);
        self.c.handle(self.now, ev, &mut out);
        out
    }

    fn at(&mut self, ms: u64, ev: Event) -> Vec<Action> {
        self.now = t(ms);
        self.ev(ev)
    }

    fn done(&mut self, group: usize, resource: usize, op: Op, result: OpResult) -> Vec<Action> {
        self.ev(Event::OpDone { group: GroupId(group), resource: ResId(resource), op, result })
    }

    fn packet(&mut self, node_state: NodeState, groups: &[GroupWire]) -> Vec<Action> {
        self.ev(Event::PeerPacket { node_state, groups })
    }

    fn wire(&self, g: usize) -> GroupWire {
        let mut buf = [GroupWire::EMPTY; MAX_GROUPS];
        let n = self.c.wire_groups(&mut buf);
        assert!(g < n);
        buf[g]
    }

    fn state(&self, g: usize) -> GroupState {
        self.c.group_view(GroupId(g)).state
    }

    /// Probes every group of `n` resources as not running; the node becomes Active.
    fn probe_clean(&mut self) {
        let first = self.ev(Event::Tick);
        for (g, _) in first.iter().filter_map(as_run).map(|(g, r, op)| {
            assert_eq!((r, op), (0, Op::Status));
            (g, r)
        }) {
            let mut r = 0;
            loop {
                let a = self.done(g, r, Op::Status, OpResult::Stopped);
                match a.iter().filter_map(as_run).next() {
                    Some((g2, r2, Op::Status)) => {
                        assert_eq!((g2, r2), (g, r + 1));
                        r = r2;
                    }
                    Some(other) => panic!("unexpected {other:?}"),
                    None => break,
                }
            }
        }
        assert_eq!(self.c.node_state(), NodeState::Active);
    }

    /// Peer up and heard, with this packet.
    fn peer_up(&mut self, node_state: NodeState, groups: &[GroupWire]) -> Vec<Action> {
        let mut a = self.ev(Event::Peer(PeerState::Up));
        a.extend(self.packet(node_state, groups));
        a
    }

    /// Completes starting group `g` (n resources), checking the order.
    fn finish_start(&mut self, g: usize, n: usize) {
        for r in 0..n {
            let a = self.done(g, r, Op::Start, OpResult::Running);
            if r + 1 < n {
                assert_eq!(runs(&a), vec![(g, r + 1, Op::Start)]);
            } else {
                assert!(runs(&a).is_empty());
            }
        }
        assert_eq!(self.state(g), GroupState::Started);
    }

    /// Completes stopping group `g` from resource `top` down, checking the order; returns
    /// the actions of the last stop's completion.
    fn finish_stop(&mut self, g: usize, top: usize) -> Vec<Action> {
        let mut last = Vec::new();
        for r in (0..=top).rev() {
            last = self.done(g, r, Op::Stop, OpResult::Stopped);
            if r > 0 {
                assert_eq!(runs(&last), vec![(g, r - 1, Op::Stop)]);
            }
        }
        last
    }
}

fn as_run(a: &Action) -> Option<(usize, usize, Op)> {
    match *a {
        Action::Run { group, resource, op } => Some((group.0, resource.0, op)),
        _ => None,
    }
}

fn runs(a: &[Action]) -> Vec<(usize, usize, Op)> {
    a.iter().filter_map(as_run).collect()
}

fn announces(a: &[Action]) -> usize {
    a.iter().filter(|x| **x == Action::Announce).count()
}

fn has_log(a: &[Action], f: impl Fn(&LogEvent) -> bool) -> bool {
    a.iter().any(|x| matches!(x, Action::Log(l) if f(l)))
}

/// A started one-group node (preferred = `preferred`, `n` resources), peer up.
fn started(preferred: bool, n: usize, s: Settings) -> H {
    let mut h = H::new(vec![def("web", preferred, n)], s);
    h.probe_clean();
    let a = h.ev(Event::Peer(PeerState::Dead));
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
    h.finish_start(0, n);
    // The peer comes back (stopped, not claiming).
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    assert_eq!(h.state(0), GroupState::Started);
    h
}

// ----- start-up -----

#[test]
fn probe_is_sequential_per_group_then_active() {
    let mut h = H::new(vec![def("a", true, 2), def("b", false, 1)], settings(false));
    assert_eq!(h.c.node_state(), NodeState::Init);
    let a = h.ev(Event::Tick);
    assert_eq!(runs(&a), vec![(0, 0, Op::Status), (1, 0, Op::Status)]);
    assert_eq!(runs(&h.done(1, 0, Op::Status, OpResult::Stopped)), vec![]);
    assert_eq!(h.c.node_state(), NodeState::Init);
    assert_eq!(runs(&h.done(0, 0, Op::Status, OpResult::Stopped)), vec![(0, 1, Op::Status)]);
    let a = h.done(0, 1, Op::Status, OpResult::Stopped);
    assert_eq!(h.c.node_state(), NodeState::Active);
    assert!(has_log(&a, |l| *l == LogEvent::Node { from: NodeState::Init, to: NodeState::Active }));
    assert_eq!(announces(&a), 1);
}

#[test]
fn probe_found_running_stops_whole_group_right_to_left() {
    let mut h = H::new(vec![def("a", true, 3)], settings(false));
    h.ev(Event::Tick);
    h.done(0, 0, Op::Status, OpResult::Stopped);
    let a = h.done(0, 1, Op::Status, OpResult::Running);
    assert!(has_log(&a, |l| matches!(
        l,
        LogEvent::FoundRunning { group: GroupId(0), resource: ResId(1), status_error: false }
    )));
    assert_eq!(runs(&a), vec![(0, 2, Op::Stop)]);
    assert_eq!(h.state(0), GroupState::Stopping);
    // Even with the peer dead, nothing starts before cleanup is over.
    assert!(runs(&h.ev(Event::Peer(PeerState::Dead))).is_empty());
    assert_eq!(h.c.node_state(), NodeState::Init);
    let a = h.finish_stop(0, 2);
    assert_eq!(h.c.node_state(), NodeState::Active);
    // Cleanup done, peer dead: now it starts.
    assert!(runs(&a).contains(&(0, 0, Op::Start)));
}

#[test]
fn probe_status_error_counts_as_running() {
    let mut h = H::new(vec![def("a", true, 2)], settings(false));
    h.ev(Event::Tick);
    let a = h.done(0, 0, Op::Status, OpResult::Failed);
    assert!(has_log(&a, |l| matches!(l, LogEvent::FoundRunning { status_error: true, .. })));
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)]);
}

#[test]
fn nothing_starts_before_peer_state_is_known() {
    let mut h = H::new(vec![def("a", true, 1)], settings(false));
    h.probe_clean();
    assert!(runs(&h.ev(Event::Tick)).is_empty());
    // Up, but no packet yet.
    assert!(runs(&h.ev(Event::Peer(PeerState::Up))).is_empty());
    assert_eq!(h.state(0), GroupState::Stopped);
    // Dead (initdead passed): start.
    assert_eq!(runs(&h.ev(Event::Peer(PeerState::Dead))), vec![(0, 0, Op::Start)]);
}

#[test]
fn no_grant_and_no_claim_while_init() {
    let mut h = H::new(vec![def("a", false, 1)], settings(false));
    h.ev(Event::Tick);
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 99, 0)]);
    let w = h.wire(0);
    assert_eq!((w.grant, w.claim, w.flags), (0, 0, 0));
    h.done(0, 0, Op::Status, OpResult::Stopped);
    assert_eq!(h.wire(0).grant, 99, "granted once probing is over");
}

// ----- claims, grants, starting -----

#[test]
fn preferred_node_claims_and_starts_only_with_grant() {
    let mut h = H::new(vec![def("a", true, 2)], settings(false));
    h.probe_clean();
    let a = h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    assert!(runs(&a).is_empty());
    let w = h.wire(0);
    assert_eq!(w.flags, CLAIM);
    assert_eq!(w.claim, token(GEN, 1));
    // A grant of some other token does nothing.
    assert!(runs(&h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 12345)])).is_empty());
    // A grant of our token, but the peer is not stopped: nothing.
    let tok = w.claim;
    assert!(runs(&h.packet(NodeState::Active, &[pw(0, GroupState::Stopping, OFFER, 0, tok)])).is_empty());
    // The grant of our token with the peer stopped: start left to right.
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, tok)]);
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
    assert_eq!(announces(&a), 1);
    assert_eq!(h.wire(0).state, GroupState::Starting);
    h.finish_start(0, 2);
    let w = h.wire(0);
    assert_eq!((w.state, w.flags, w.claim), (GroupState::Started, CLAIM, tok));
}

#[test]
fn non_preferred_node_grants_and_does_not_claim() {
    let mut h = H::new(vec![def("a", false, 1)], settings(false));
    h.probe_clean();
    let a = h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0003_0001, 0)]);
    assert!(runs(&a).is_empty());
    assert_eq!(announces(&a), 1);
    let w = h.wire(0);
    assert_eq!((w.flags & CLAIM, w.claim, w.grant), (0, 0, 0x0003_0001));
    // Identical packets change nothing and announce nothing.
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0003_0001, 0)]);
    assert_eq!(announces(&a), 0);
    // The peer stops claiming: the grant goes.
    h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    assert_eq!(h.wire(0).grant, 0);
}

#[test]
fn a_grant_stays_while_the_peer_claims_that_token_and_blocks_our_start() {
    let mut h = H::new(vec![def("a", false, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 500, 0)]);
    assert_eq!(h.wire(0).grant, 500);
    // Operator takeover here: we claim (pinned) but keep the grant while the peer claims 500.
    h.ev(Event::Takeover(GroupSel::One(GroupId(0))));
    let w = h.wire(0);
    assert_eq!((w.grant, w.flags & (CLAIM | PINNED)), (500, CLAIM | PINNED));
    let tok = w.claim;
    // Even a grant of our token does not let us start while we grant theirs.
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 500, tok)]);
    assert!(runs(&a).is_empty());
    // The peer yields (drops its claim) and grants ours: grant goes, we start.
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, tok)]);
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
    assert_eq!(h.wire(0).grant, 0);
}

#[test]
fn pinned_claim_beats_preferred_when_neither_holds() {
    let mut h = H::new(vec![def("a", true, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    assert_eq!(h.wire(0).flags, CLAIM);
    // The peer claims pinned: we yield (stop claiming) and grant.
    h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM | PINNED, 77, 0)]);
    let w = h.wire(0);
    assert_eq!((w.flags, w.claim, w.grant), (0, 0, 77));
}

#[test]
fn preferred_wins_between_two_unpinned_claims() {
    let mut h = H::new(vec![def("a", true, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 77, 0)]);
    let w = h.wire(0);
    assert_eq!((w.flags, w.grant), (CLAIM, 0));
    let mut h = H::new(vec![def("a", false, 1)], settings(false));
    h.probe_clean();
    h.ev(Event::Takeover(GroupSel::One(GroupId(0))));
    // Both pinned: the preferred node (the peer) wins.
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM | PINNED, 77, 0)]);
    let w = h.wire(0);
    assert_eq!((w.flags, w.grant), (PINNED, 77));
}

#[test]
fn tokens_are_fresh_nonzero_and_carry_the_generation() {
    let mut h = H::new(vec![def("a", true, 1), def("b", true, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[]);
    let (a, b) = (h.wire(0).claim, h.wire(1).claim);
    assert!(a != 0 && b != 0 && a != b);
    assert_eq!(a >> 16, GEN as u32);
    // Stop wanting, want again: a new token.
    h.ev(Event::Standby(GroupSel::One(GroupId(0))));
    assert_eq!(h.wire(0).claim, 0);
    h.ev(Event::Takeover(GroupSel::One(GroupId(0))));
    let a2 = h.wire(0).claim;
    assert!(a2 != 0 && a2 != a && a2 != b);
}

#[test]
fn peer_leaving_with_group_stopped_lets_us_start_without_grant() {
    let mut h = H::new(vec![def("a", false, 1)], settings(false));
    h.probe_clean();
    let a = h.peer_up(NodeState::Leaving, &[pw(0, GroupState::Stopping, OFFER, 0, 0)]);
    assert!(runs(&a).is_empty());
    assert_eq!(h.wire(0).flags, CLAIM);
    let a = h.packet(NodeState::Leaving, &[pw(0, GroupState::Stopped, OFFER, 0, 0)]);
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
}

#[test]
fn peer_failed_or_offering_makes_the_other_node_want_it() {
    for peer in [pw(0, GroupState::Failed, OFFER, 0, 0), pw(0, GroupState::Stopped, OFFER, 0, 0)] {
        let mut h = H::new(vec![def("a", false, 1)], settings(false));
        h.probe_clean();
        h.peer_up(NodeState::Active, &[peer]);
        let w = h.wire(0);
        assert_eq!(w.flags, CLAIM);
        let a = h.packet(NodeState::Active, &[GroupWire { grant: w.claim, ..peer }]);
        assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
    }
}

// ----- auto_failback -----

#[test]
fn auto_failback_off_preferred_does_not_claim_from_a_holder() {
    let mut h = H::new(vec![def("a", true, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 9, 0)]);
    let w = h.wire(0);
    assert_eq!(w.flags & CLAIM, 0);
    assert_eq!(w.grant, 9, "harmless grant to the holder");
}

#[test]
fn auto_failback_on_preferred_claims_and_holder_releases() {
    // Preferred side: claims even though the peer holds.
    let mut h = H::new(vec![def("a", true, 1)], settings(true));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 9, 0)]);
    assert_eq!(h.wire(0).flags, CLAIM);
    // Holder side (non-preferred): releases on the preferred node's claim.
    let mut h = started(false, 2, settings(true));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0009_0001, 0)]);
    assert!(has_log(&a, |l| *l == LogEvent::Release { group: GroupId(0), reason: ReleaseReason::Failback }));
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)]);
    let w = h.wire(0);
    assert_eq!((w.state, w.flags, w.claim), (GroupState::Stopping, 0, 0));
    h.finish_stop(0, 1);
    let w = h.wire(0);
    assert_eq!((w.state, w.flags, w.grant), (GroupState::Stopped, 0, 0x0009_0001));
}

#[test]
fn auto_failback_off_holder_keeps_group_on_preferred_claim() {
    let mut h = started(false, 1, settings(false));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0009_0001, 0)]);
    assert!(runs(&a).is_empty());
    assert_eq!(h.state(0), GroupState::Started);
}

#[test]
fn pinned_holder_is_not_pulled_back_by_failback() {
    let mut h = started(false, 1, settings(true));
    h.ev(Event::Takeover(GroupSel::One(GroupId(0))));
    assert_eq!(h.wire(0).flags, CLAIM | PINNED);
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0009_0001, 0)]);
    assert!(runs(&a).is_empty());
}

// ----- releasing -----

#[test]
fn holder_releases_on_peer_pinned_claim() {
    let mut h = started(true, 2, settings(false));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM | PINNED, 0x0009_0001, 0)]);
    assert!(has_log(&a, |l| *l == LogEvent::Release { group: GroupId(0), reason: ReleaseReason::PeerPinned }));
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)]);
    assert_eq!(h.wire(0).flags, 0, "no claim, no offer while releasing to a takeover");
    h.finish_stop(0, 1);
    let w = h.wire(0);
    assert_eq!((w.state, w.flags, w.claim, w.grant), (GroupState::Stopped, 0, 0, 0x0009_0001));
}

#[test]
fn holder_pinned_by_an_older_takeover_yields_to_the_peers_takeover() {
    // The operator's newest takeover wins, even over our own earlier one and even when we
    // are the preferred node.
    let mut h = started(true, 1, settings(false));
    h.ev(Event::Takeover(GroupSel::One(GroupId(0))));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM | PINNED, 0x0009_0001, 0)]);
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    assert!(!h.c.group_view(GroupId(0)).pinned, "PINNED is cleared on release");
    // The same with us non-preferred.
    let mut h = started(false, 1, settings(false));
    h.ev(Event::Takeover(GroupSel::One(GroupId(0))));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM | PINNED, 0x0009_0001, 0)]);
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    assert!(!h.c.group_view(GroupId(0)).pinned, "PINNED is cleared on release");
}

#[test]
fn both_hold_after_partition_non_preferred_releases() {
    let mut h = started(false, 1, settings(false));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 0x0009_0001, 0)]);
    assert!(has_log(&a, |l| *l == LogEvent::Release { group: GroupId(0), reason: ReleaseReason::BothHold }));
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    let mut h = started(true, 1, settings(false));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM | PINNED, 0x0009_0001, 0)]);
    assert!(runs(&a).is_empty(), "the preferred node keeps it even against a pinned holder");
}

#[test]
fn release_while_starting_waits_for_the_outstanding_op() {
    let mut h = H::new(vec![def("a", true, 3)], settings(false));
    h.probe_clean();
    assert_eq!(runs(&h.ev(Event::Peer(PeerState::Dead))), vec![(0, 0, Op::Start)]);
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    let a = h.ev(Event::Standby(GroupSel::One(GroupId(0))));
    assert!(runs(&a).is_empty(), "one op at a time");
    assert_eq!(h.wire(0).flags, OFFER);
    let a = h.done(0, 0, Op::Start, OpResult::Running);
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    h.finish_stop(0, 0);
    assert_eq!(h.state(0), GroupState::Stopped);
}

// ----- peer death -----

#[test]
fn peer_dead_takes_over_every_group_but_failed_ones() {
    let mut h = H::new(vec![def("a", false, 1), def("b", true, 1), def("c", false, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[pw(2, GroupState::Stopped, CLAIM, 0x0009_0001, 0)]);
    // c: we grant it, peer starts it; we then fail c ourselves? Simpler: make c Failed by a
    // failed start after a takeover.
    h.ev(Event::Peer(PeerState::Dead));
    // Everything not failed starts.
    let a = h.ev(Event::Tick);
    assert!(runs(&a).is_empty(), "already started on the Dead event");
    assert_eq!(h.state(0), GroupState::Starting);
    assert_eq!(h.state(1), GroupState::Starting);
    assert_eq!(h.state(2), GroupState::Starting);
    h.done(2, 0, Op::Start, OpResult::Failed);
    h.done(2, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.state(2), GroupState::Failed);
    // Failed stays failed even with the peer dead.
    assert!(runs(&h.ev(Event::Peer(PeerState::Dead))).is_empty());
    assert_eq!(h.state(2), GroupState::Failed);
}

#[test]
fn peer_death_clears_standby_and_standby_is_refused_while_dead() {
    let mut h = H::new(vec![def("a", true, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[]);
    h.ev(Event::Standby(GroupSel::All));
    assert!(h.c.group_view(GroupId(0)).standby);
    assert_eq!(h.wire(0).flags, OFFER);
    let a = h.ev(Event::Peer(PeerState::Dead));
    assert!(has_log(&a, |l| *l == LogEvent::TakeoverPeerDead { group: GroupId(0) }));
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
    assert!(!h.c.group_view(GroupId(0)).standby);
    let a = h.ev(Event::Standby(GroupSel::All));
    assert!(has_log(&a, |l| *l == LogEvent::StandbyRefused { group: GroupId(0) }));
    assert!(!h.c.group_view(GroupId(0)).standby);
}

#[test]
fn peer_restart_and_death_forget_what_it_advertised() {
    let mut h = H::new(vec![def("a", true, 1)], settings(false));
    h.probe_clean();
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    let tok = h.wire(0).claim;
    h.ev(Event::PeerRestarted);
    assert_eq!(h.c.group_view(GroupId(0)).peer_state, None);
    // A stale grant cannot arrive (the wire layer drops the old generation); the new
    // instance is in Init and does not grant: nothing starts.
    let a = h.packet(NodeState::Init, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    assert!(runs(&a).is_empty());
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, tok)]);
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
}

#[test]
fn peer_up_again_waits_for_a_packet() {
    let mut h = started(false, 1, settings(false));
    h.ev(Event::Peer(PeerState::Dead));
    h.ev(Event::Peer(PeerState::Up));
    assert_eq!(h.c.group_view(GroupId(0)).peer_state, None);
    assert_eq!(h.state(0), GroupState::Started);
}

// ----- failures -----

#[test]
fn start_failure_stops_k_to_0_then_failed_with_offer() {
    let mut h = H::new(vec![def("a", true, 3)], settings(false));
    h.probe_clean();
    h.ev(Event::Peer(PeerState::Dead));
    h.done(0, 0, Op::Start, OpResult::Running);
    let a = h.done(0, 1, Op::Start, OpResult::Failed);
    assert!(has_log(&a, |l| *l == LogEvent::StartFailed { group: GroupId(0), resource: ResId(1) }));
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)], "the failed resource is stopped too");
    let a = h.finish_stop(0, 1);
    assert!(runs(&a).is_empty(), "no restart: Failed is sticky");
    let w = h.wire(0);
    assert_eq!((w.state, w.flags, w.claim), (GroupState::Failed, OFFER, 0));
    assert!(h.c.group_view(GroupId(0)).failed);
    // Peer back and claiming: we grant; we never claim.
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0009_0001, 0)]);
    let w = h.wire(0);
    assert_eq!((w.state, w.flags, w.grant), (GroupState::Failed, OFFER, 0x0009_0001));
    h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 0x0009_0001, 0)]);
    assert_eq!(h.state(0), GroupState::Failed);
}

#[test]
fn takeover_clears_failed_and_claims_pinned() {
    let mut h = H::new(vec![def("a", false, 1)], settings(false));
    h.probe_clean();
    h.ev(Event::Peer(PeerState::Dead));
    h.done(0, 0, Op::Start, OpResult::Failed);
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.state(0), GroupState::Failed);
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 0x0009_0001, 0)]);
    let a = h.ev(Event::Takeover(GroupSel::All));
    assert!(
        has_log(&a, |l| *l == LogEvent::Group { group: GroupId(0), from: GroupState::Failed, to: GroupState::Stopped })
    );
    let w = h.wire(0);
    assert_eq!((w.state, w.flags), (GroupState::Stopped, CLAIM | PINNED));
    assert!(!h.c.group_view(GroupId(0)).failed);
    // The peer releases and grants: we start.
    let tok = w.claim;
    h.packet(NodeState::Active, &[pw(0, GroupState::Stopping, 0, 0, 0)]);
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, tok)]);
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
}

#[test]
fn failed_stop_is_retried_then_failed_to_stop() {
    let mut h = started(true, 2, settings(false));
    h.now = t(10_000);
    let a = h.ev(Event::Standby(GroupSel::One(GroupId(0))));
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)]);
    let a = h.done(0, 1, Op::Stop, OpResult::Failed);
    assert!(has_log(&a, |l| matches!(l, LogEvent::StopFailed { attempt: 1, retrying: true, .. })));
    assert!(runs(&a).is_empty());
    assert_eq!(h.c.poll_at(), Some(t(10_500)));
    assert!(runs(&h.at(10_499, Event::Tick)).is_empty());
    assert_eq!(runs(&h.at(10_500, Event::Tick)), vec![(0, 1, Op::Stop)]);
    assert_eq!(h.c.poll_at(), None);
    h.done(0, 1, Op::Stop, OpResult::Failed);
    assert_eq!(runs(&h.at(11_000, Event::Tick)), vec![(0, 1, Op::Stop)]);
    let a = h.done(0, 1, Op::Stop, OpResult::Failed);
    assert!(has_log(&a, |l| matches!(l, LogEvent::StopFailed { attempt: 3, retrying: false, .. })));
    assert_eq!(h.state(0), GroupState::FailedToStop);
    assert_eq!(h.c.poll_at(), None);
    // Never handed over, never claimed, never granted.
    let w = h.wire(0);
    assert_eq!((w.state, w.flags, w.claim, w.grant), (GroupState::FailedToStop, 0, 0, 0));
    h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0009_0001, 0)]);
    assert_eq!(h.wire(0).grant, 0);
    let a = h.ev(Event::Takeover(GroupSel::One(GroupId(0))));
    assert!(has_log(&a, |l| matches!(l, LogEvent::TakeoverRefused { .. })));
    assert_eq!(h.state(0), GroupState::FailedToStop);
    h.ev(Event::Peer(PeerState::Dead));
    assert_eq!(h.state(0), GroupState::FailedToStop);
}

#[test]
fn failed_stop_retry_that_succeeds_continues_down() {
    let mut h = started(true, 2, settings(false));
    h.ev(Event::Standby(GroupSel::One(GroupId(0))));
    h.done(0, 1, Op::Stop, OpResult::Failed);
    assert_eq!(runs(&h.at(500, Event::Tick)), vec![(0, 1, Op::Stop)]);
    assert_eq!(runs(&h.done(0, 1, Op::Stop, OpResult::Stopped)), vec![(0, 0, Op::Stop)]);
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.state(0), GroupState::Stopped);
}

#[test]
fn unexpected_op_results_are_ignored() {
    let mut h = H::new(vec![def("a", true, 2)], settings(false));
    h.ev(Event::Tick);
    assert!(h.done(0, 1, Op::Status, OpResult::Running).is_empty());
    assert!(h.done(0, 0, Op::Start, OpResult::Running).is_empty());
    assert!(h.done(5, 0, Op::Status, OpResult::Running).is_empty());
    assert_eq!(runs(&h.done(0, 0, Op::Status, OpResult::Stopped)), vec![(0, 1, Op::Status)]);
}

// ----- operator -----

#[test]
fn standby_releases_with_offer_and_takeover_clears_it() {
    let mut h = started(true, 1, settings(true));
    let a = h.ev(Event::Standby(GroupSel::All));
    assert!(has_log(&a, |l| *l == LogEvent::Release { group: GroupId(0), reason: ReleaseReason::Standby }));
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    assert_eq!(h.wire(0).flags, OFFER);
    h.finish_stop(0, 0);
    // Preferred + auto_failback, but standby: no claim, keeps offering.
    h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 0x0009_0001, 0)]);
    assert_eq!(h.wire(0).flags, OFFER);
    h.ev(Event::Takeover(GroupSel::All));
    assert_eq!(h.wire(0).flags, CLAIM | PINNED);
    assert!(!h.c.group_view(GroupId(0)).standby);
}

#[test]
fn standby_here_gives_way_when_the_peer_gives_the_group_up() {
    // Standby here, the peer holds the group; then the peer is put in standby too and
    // releases it with OFFER: our (older) standby ends and we claim the group, rather than
    // leave it with nobody.
    let mut h = started(true, 1, settings(false));
    h.ev(Event::Standby(GroupSel::All));
    h.finish_stop(0, 0);
    h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 0x0009_0001, 0)]);
    assert!(h.c.group_view(GroupId(0)).standby);
    assert_eq!(h.wire(0).flags, OFFER);
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, OFFER, 0, 0)]);
    assert!(has_log(&a, |l| *l == LogEvent::StandbyCleared { group: GroupId(0) }));
    assert!(!h.c.group_view(GroupId(0)).standby);
    assert_eq!(h.wire(0).flags & CLAIM, CLAIM, "we claim the group back");
}

#[test]
fn out_of_range_selection_is_ignored() {
    let mut h = started(true, 1, settings(false));
    assert!(h.ev(Event::Standby(GroupSel::One(GroupId(3)))).is_empty());
    assert_eq!(h.c.group_view(GroupId(9)).owner, Owner::None);
}

// ----- shutdown -----

#[test]
fn shutdown_stops_everything_then_announces_and_exits() {
    let mut h = started(true, 2, settings(false));
    let a = h.ev(Event::Shutdown);
    assert_eq!(h.c.node_state(), NodeState::Leaving);
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)]);
    assert_eq!(h.wire(0).flags, OFFER);
    assert!(!a.contains(&Action::Exit));
    h.done(0, 1, Op::Stop, OpResult::Stopped);
    let a = h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert!(!a.contains(&Action::Exit), "waits for the peer to show it took over");
    assert_eq!(h.c.poll_at(), Some(h.now + DEFAULT_LEAVE_LINGER));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, CLAIM, 0x0009_0001, 0)]);
    assert!(!a.contains(&Action::Exit));
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Starting, CLAIM, 0x0009_0001, 0)]);
    let pos_ann = a.iter().rposition(|x| *x == Action::Announce);
    let pos_exit = a.iter().position(|x| *x == Action::Exit);
    assert!(pos_ann.is_some() && pos_exit.is_some() && pos_ann < pos_exit);
    assert!(h.c.exited());
    assert!(h.ev(Event::Tick).is_empty());
    assert_eq!(h.c.poll_at(), None);
}

#[test]
fn shutdown_exits_after_the_linger_if_the_peer_never_shows_a_takeover() {
    let mut h = started(true, 1, settings(false));
    h.c.set_leave_linger(Duration::from_millis(300));
    h.now = t(1000);
    h.ev(Event::Shutdown);
    let a = h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert!(!a.contains(&Action::Exit));
    assert_eq!(h.c.poll_at(), Some(t(1300)));
    assert!(!h.at(1299, Event::Tick).contains(&Action::Exit));
    let a = h.at(1300, Event::Tick);
    assert_eq!(a, vec![Action::Announce, Action::Exit]);
}

#[test]
fn shutdown_exits_at_once_when_the_peer_is_dead_or_in_standby() {
    let mut h = started(true, 1, settings(false));
    h.packet(NodeState::Active, &[pw(0, GroupState::Stopped, OFFER, 0, 0)]);
    h.ev(Event::Shutdown);
    assert_eq!(h.done(0, 0, Op::Stop, OpResult::Stopped).last(), Some(&Action::Exit));
    let mut h = started(true, 1, settings(false));
    h.ev(Event::Shutdown);
    h.ev(Event::Peer(PeerState::Dead));
    assert_eq!(h.done(0, 0, Op::Stop, OpResult::Stopped).last(), Some(&Action::Exit));
}

#[test]
fn shutdown_with_failed_to_stop_does_not_exit() {
    let mut h = started(true, 1, settings(false));
    h.ev(Event::Shutdown);
    h.done(0, 0, Op::Stop, OpResult::Failed);
    h.at(500, Event::Tick);
    h.done(0, 0, Op::Stop, OpResult::Failed);
    h.at(1000, Event::Tick);
    let a = h.done(0, 0, Op::Stop, OpResult::Failed);
    assert!(has_log(&a, |l| *l == LogEvent::ExitBlocked { group: GroupId(0) }));
    assert!(!a.contains(&Action::Exit));
    assert!(!h.c.exited());
    assert!(!has_log(&h.ev(Event::Tick), |l| matches!(l, LogEvent::ExitBlocked { .. })), "logged once");
}

#[test]
fn shutdown_during_probe_finishes_probe_then_exits() {
    let mut h = H::new(vec![def("a", true, 1)], settings(false));
    h.ev(Event::Tick);
    h.ev(Event::Shutdown);
    assert_eq!(h.c.node_state(), NodeState::Init);
    let a = h.done(0, 0, Op::Status, OpResult::Running);
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    let a = h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.c.node_state(), NodeState::Leaving);
    assert_eq!(a.last(), Some(&Action::Exit));
}

#[test]
fn shutdown_does_not_take_over_on_peer_death() {
    let mut h = started(false, 1, settings(false));
    h.ev(Event::Shutdown);
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    h.ev(Event::Peer(PeerState::Dead));
    assert!(h.c.exited());
    let mut h = H::new(vec![def("a", true, 1), def("b", true, 1)], settings(false));
    h.probe_clean();
    h.ev(Event::Peer(PeerState::Dead));
    h.done(0, 0, Op::Start, OpResult::Running);
    let a = h.ev(Event::Shutdown);
    // b is starting: it is stopped once its start finishes, never restarted.
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    assert_eq!(runs(&h.done(1, 0, Op::Start, OpResult::Running)), vec![(1, 0, Op::Stop)]);
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    let a = h.done(1, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(a.last(), Some(&Action::Exit));
}

#[test]
fn zero_resource_group_is_handled() {
    let mut h = H::new(vec![def("empty", true, 0)], settings(false));
    h.ev(Event::Tick);
    assert_eq!(h.c.node_state(), NodeState::Active);
    h.ev(Event::Peer(PeerState::Dead));
    assert_eq!(h.state(0), GroupState::Started);
    h.ev(Event::Shutdown);
    assert!(h.c.exited());
}

#[test]
fn group_view_reports_owner() {
    let mut h = started(true, 1, settings(false));
    assert_eq!(h.c.group_view(GroupId(0)).owner, Owner::Local);
    h.ev(Event::Standby(GroupSel::One(GroupId(0))));
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 5, 0)]);
    let v = h.c.group_view(GroupId(0));
    assert_eq!((v.owner, v.peer_state, v.standby), (Owner::Peer, Some(GroupState::Started), true));
}

#[test]
fn claim_tokens_per_generation_or_bound_to_it() {
    let mut h = started(true, 1, settings(false));
    // Legacy tokens: the generation's low 16 bits above a counter.
    let legacy = h.c.new_token();
    assert_eq!(legacy >> 16, (h.c.generation as u32) & 0xffff);
    // Once the peer binds its grants to our generation: a 31-bit counter with the top bit set,
    // never repeating within the generation.
    h.c.set_grants_bound(true);
    let a = h.c.new_token();
    let b = h.c.new_token();
    assert_eq!((a, b), (0x8000_0001, 0x8000_0002));
}

// ----- monitoring and the failure policy -----

fn monitored(n: usize, every_ms: u64, limit: u32) -> H {
    let mut d = def("web", true, n);
    d.monitor = vec![Some(Duration::from_millis(every_ms)); n];
    let s = Settings { restart_limit: limit, restart_window: Duration::from_secs(60), ..settings(false) };
    let mut h = H::new(vec![d], s);
    h.probe_clean();
    let a = h.ev(Event::Peer(PeerState::Dead));
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
    h.finish_start(0, n);
    h.peer_up(NodeState::Active, &[pw(0, GroupState::Stopped, 0, 0, 0)]);
    h
}

#[test]
fn monitor_checks_one_resource_at_a_time_on_its_interval() {
    let mut h = monitored(2, 1000, 3);
    let start = h.now;
    assert_eq!(h.c.poll_at(), Some(start + Duration::from_millis(1000)));
    let a = h.at(1000, Event::Tick);
    assert_eq!(runs(&a), vec![(0, 0, Op::Status)], "one check at a time per group");
    assert_eq!(h.state(0), GroupState::Started, "a check changes nothing on the wire");
    let a = h.done(0, 0, Op::Status, OpResult::Running);
    assert_eq!(runs(&a), vec![(0, 1, Op::Status)], "the other one was due too");
    h.done(0, 1, Op::Status, OpResult::Running);
    assert_eq!(h.c.poll_at(), Some(t(2000)));
    let hl = h.c.res_health(GroupId(0), ResId(0)).unwrap();
    assert_eq!((hl.last_check, hl.fail_count), (Some((t(1000), true)), 0));
    assert!(runs(&h.at(1999, Event::Tick)).is_empty());
}

#[test]
fn a_failed_check_restarts_the_resource_and_what_follows_in_place() {
    let mut h = monitored(3, 1000, 3);
    h.at(1000, Event::Tick);
    let a = h.done(0, 0, Op::Status, OpResult::Running);
    assert_eq!(runs(&a), vec![(0, 1, Op::Status)]);
    let a = h.done(0, 1, Op::Status, OpResult::Stopped);
    assert!(has_log(&a, |l| matches!(l, LogEvent::MonitorFailed { resource: ResId(1), error: false, .. })));
    assert!(has_log(&a, |l| matches!(l, LogEvent::Restart { restart: 1, limit: 3, .. })));
    // Stop 2, then 1; start 1, then 2. Resource 0 is not touched.
    assert_eq!(runs(&a), vec![(0, 2, Op::Stop)]);
    assert_eq!(runs(&h.done(0, 2, Op::Stop, OpResult::Stopped)), vec![(0, 1, Op::Stop)]);
    assert_eq!(runs(&h.done(0, 1, Op::Stop, OpResult::Stopped)), vec![(0, 1, Op::Start)]);
    assert_eq!(h.state(0), GroupState::Starting);
    assert!(h.wire(0).state.may_hold(), "the peer always sees it held");
    assert_eq!(runs(&h.done(0, 1, Op::Start, OpResult::Running)), vec![(0, 2, Op::Start)]);
    h.done(0, 2, Op::Start, OpResult::Running);
    assert_eq!(h.state(0), GroupState::Started);
    assert_eq!(h.c.restarts(GroupId(0)), 1);
    let hl = h.c.res_health(GroupId(0), ResId(1)).unwrap();
    assert_eq!((hl.fail_count, hl.last_failure), (1, Some(t(1000))));
}

#[test]
fn past_the_restart_limit_the_group_moves_and_never_ping_pongs() {
    let mut h = monitored(1, 1000, 2);
    let mut now = 0;
    for k in 1..=2 {
        now += 1000;
        h.at(now, Event::Tick);
        let a = h.done(0, 0, Op::Status, OpResult::Stopped);
        assert!(has_log(&a, |l| matches!(l, LogEvent::Restart { restart, .. } if *restart == k)));
        h.done(0, 0, Op::Stop, OpResult::Stopped);
        h.done(0, 0, Op::Start, OpResult::Running);
    }
    now += 1000;
    h.at(now, Event::Tick);
    let a = h.done(0, 0, Op::Status, OpResult::Stopped);
    assert!(has_log(&a, |l| matches!(l, LogEvent::RestartLimit { .. })));
    assert_eq!(runs(&a), vec![(0, 0, Op::Stop)]);
    let a = h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.state(0), GroupState::Failed);
    assert!(!has_log(&a, |l| matches!(l, LogEvent::NowhereToRun { .. })), "the peer can take it");
    assert!(h.c.group_view(GroupId(0)).failed);
    assert_ne!(h.wire(0).flags & OFFER, 0, "offered to the peer");
    // The peer takes it; this node does not claim it back (preferred, but failed here).
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 99, 0)]);
    assert!(runs(&a).is_empty());
    assert_eq!(h.wire(0).flags & CLAIM, 0);
    // The peer fails it too: nobody runs it, and it is said.
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Failed, OFFER, 0, 0)]);
    assert!(runs(&a).is_empty(), "no start loop");
    assert!(has_log(&a, |l| matches!(l, LogEvent::NowhereToRun { .. })), "said here too");
    let a = h.packet(NodeState::Active, &[pw(0, GroupState::Failed, OFFER, 0, 0)]);
    assert!(!has_log(&a, |l| matches!(l, LogEvent::NowhereToRun { .. })), "once");
    // Cleanup here: this node may run it again.
    let a = h.ev(Event::Cleanup(GroupSel::All));
    assert!(has_log(&a, |l| matches!(l, LogEvent::Cleanup { .. })));
    assert!(!h.c.group_view(GroupId(0)).failed);
    let h0 = h.c.res_health(GroupId(0), ResId(0)).unwrap();
    assert_eq!((h0.fail_count, h0.failures_total), (0, 3), "the counter since the start stays");
    assert_ne!(h.wire(0).flags & CLAIM, 0, "claims it again: the peer gave it up");
}

#[test]
fn a_failed_group_with_no_peer_to_take_it_is_said_and_stays_stopped() {
    let mut h = monitored(1, 1000, 0);
    h.ev(Event::Peer(PeerState::Dead));
    h.at(1000, Event::Tick);
    let a = h.done(0, 0, Op::Status, OpResult::Failed);
    assert!(has_log(&a, |l| matches!(l, LogEvent::MonitorFailed { error: true, .. })));
    assert!(has_log(&a, |l| matches!(l, LogEvent::RestartLimit { .. })), "restart_limit 0: move at once");
    let a = h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert!(has_log(&a, |l| matches!(l, LogEvent::NowhereToRun { .. })));
    assert!(runs(&a).is_empty());
    assert!(runs(&h.at(100_000, Event::Tick)).is_empty(), "never started again on its own");
}

#[test]
fn restarts_outside_the_window_do_not_count_and_failures_expire() {
    let mut d = def("web", true, 1);
    d.monitor = vec![Some(Duration::from_millis(1000))];
    let s = Settings {
        restart_limit: 1,
        restart_window: Duration::from_secs(10),
        failure_timeout: Some(Duration::from_secs(30)),
        ..settings(false)
    };
    let mut h = H::new(vec![d], s);
    h.probe_clean();
    h.ev(Event::Peer(PeerState::Dead));
    h.finish_start(0, 1);
    // One failure, restarted; another 20 s later is a fresh first restart.
    for at in [1000, 21_000] {
        h.at(at, Event::Tick);
        let a = h.done(0, 0, Op::Status, OpResult::Stopped);
        assert!(has_log(&a, |l| matches!(l, LogEvent::Restart { restart: 1, .. })), "at {at}");
        h.done(0, 0, Op::Stop, OpResult::Stopped);
        h.done(0, 0, Op::Start, OpResult::Running);
    }
    // A second one within the window: failed here.
    h.at(22_000, Event::Tick);
    h.done(0, 0, Op::Status, OpResult::Stopped);
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.state(0), GroupState::Failed);
    assert_eq!(h.c.poll_at(), Some(t(52_000)), "the failure expires after failure_timeout");
    let a = h.at(52_000, Event::Tick);
    assert!(has_log(&a, |l| matches!(l, LogEvent::FailureExpired { .. })));
    assert!(!h.c.group_view(GroupId(0)).failed);
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)], "the peer is dead: it runs here again");
}

#[test]
fn a_release_during_a_check_waits_for_it() {
    let mut h = monitored(2, 1000, 3);
    let a = h.at(1000, Event::Tick);
    assert_eq!(runs(&a), vec![(0, 0, Op::Status)]);
    let a = h.ev(Event::Standby(GroupSel::All));
    assert!(runs(&a).is_empty(), "one operation at a time");
    let a = h.done(0, 0, Op::Status, OpResult::Running);
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)]);
    h.finish_stop(0, 1);
    assert_eq!(h.state(0), GroupState::Stopped);
    assert!(runs(&h.at(5000, Event::Tick)).is_empty(), "no checks while stopped");
}

#[test]
fn a_shutdown_during_a_restart_stops_for_good() {
    let mut h = monitored(2, 1000, 3);
    h.at(1000, Event::Tick);
    let a = h.done(0, 0, Op::Status, OpResult::Stopped);
    assert_eq!(runs(&a), vec![(0, 1, Op::Stop)]);
    h.ev(Event::Shutdown);
    assert_eq!(runs(&h.done(0, 1, Op::Stop, OpResult::Stopped)), vec![(0, 0, Op::Stop)], "no start: down to 0");
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.state(0), GroupState::Stopped);
}

#[test]
fn a_reloaded_failure_policy_applies_from_the_next_failure() {
    let mut h = monitored(1, 1000, 3);
    h.c.set_failure_policy(1, Duration::from_secs(60), Some(Duration::from_secs(5)));
    h.at(1000, Event::Tick);
    let a = h.done(0, 0, Op::Status, OpResult::Stopped);
    assert!(has_log(&a, |l| matches!(l, LogEvent::Restart { restart: 1, limit: 1, .. })));
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    h.done(0, 0, Op::Start, OpResult::Running);
    h.at(2500, Event::Tick);
    let a = h.done(0, 0, Op::Status, OpResult::Stopped);
    assert!(has_log(&a, |l| matches!(l, LogEvent::RestartLimit { .. })), "the new limit: one restart");
    h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert_eq!(h.state(0), GroupState::Failed);
    assert_eq!(h.c.poll_at(), Some(t(7500)), "the new failure_timeout");
}

#[test]
fn a_failed_node_says_nowhere_to_run_when_the_peer_that_took_the_group_dies() {
    let mut h = monitored(1, 1000, 0);
    h.at(1000, Event::Tick);
    h.done(0, 0, Op::Status, OpResult::Stopped);
    let a = h.done(0, 0, Op::Stop, OpResult::Stopped);
    assert!(!has_log(&a, |l| matches!(l, LogEvent::NowhereToRun { .. })), "the peer can take it");
    h.packet(NodeState::Active, &[pw(0, GroupState::Started, CLAIM, 99, 0)]);
    let a = h.ev(Event::Peer(PeerState::Dead));
    assert!(runs(&a).is_empty(), "failed here: not taken over");
    assert!(has_log(&a, |l| matches!(l, LogEvent::NowhereToRun { .. })), "and it is said");
    assert!(!has_log(&h.at(5000, Event::Tick), |l| matches!(l, LogEvent::NowhereToRun { .. })), "once");
    // Cleared here: taken over at once.
    let a = h.ev(Event::Cleanup(GroupSel::All));
    assert_eq!(runs(&a), vec![(0, 0, Op::Start)]);
}
