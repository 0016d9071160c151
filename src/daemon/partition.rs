//! Partition decisions, as pure bookkeeping for the core (docs/fencing.md, "Partitions").
//!
//! - **Ping targets.** Echoes go out every `ping_interval` (the loop sends them); a target is
//!   up while it answered within `ping_deadtime`. Each node sends its count in heartbeats.
//! - **Connectivity policy** (heartbeat's ipfail): with the peer up, a node that reaches
//!   fewer targets than its peer for `ping_hold` gives its groups to the peer by the orderly
//!   hand-over; it takes them back only after reaching as many for `ping_hold` again. Equal
//!   counts move nothing.
//! - **A silent peer.** The proof that this node still reaches its clients must be *fresh*: a
//!   target's answer after the peer was declared dead (a round is sent at once then). Until
//!   it comes the node neither fences nor takes over; without it for `ping_deadtime` the
//!   node is *isolated*: it never fences nor takes over, and stops the groups it holds
//!   (`isolated_stop`), since no client reaches them anyway. So the node that reaches its
//!   targets wins a partition, ahead of the holder priority of fencing.
//! - **Watchdog self-fencing.** A node whose own stonith line is `watchdog` pets the
//!   hardware watchdog only while it may keep its groups: the peer is heard, or it is not
//!   isolated (nor still proving it is not) while it holds a group. The survivor counts a
//!   silent watchdog-fenced peer as fenced `TIMEOUT + margin` after its last heartbeat, and
//!   only once the addresses of the groups (probed by echo) stayed silent for three rounds:
//!   a peer that is alive and reachable, still holding its addresses, is never taken over.
//!
//! [`decide`] is the decision table itself; the core follows it.

use std::net::IpAddr;

use crate::reach::Targets;
use crate::time::{Duration, Instant};

/// Probe indices are sent with this bit set, to tell them from ping targets in replies.
pub const PROBE_BIT: u16 = 0x8000;
/// Episodes of a node being worse are remembered this long (for the growing recovery hold).
const EPISODE_MEMORY: Duration = Duration::from_secs(3600);
/// The longest recovery hold.
const RECOVER_HOLD_MAX: Duration = Duration::from_secs(600);
/// Probe rounds without an answer before a group's addresses count as silent.
const PROBE_ROUNDS: u32 = 3;

/// How this node stands towards its clients, after the peer fell silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No `ping` line: nothing to prove.
    NoTargets,
    /// A target answered since the peer fell silent.
    Reaching,
    /// None answered yet; `ping_deadtime` has not passed.
    Proving,
    /// None answered for `ping_deadtime` since the peer fell silent.
    Isolated,
}

/// How the peer is fenced (its stonith line), as far as this table goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFencing {
    None,
    Power,
    Manual,
    Watchdog,
}

/// What the node knows when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Situation {
    /// The peer is silent on every link (declared dead).
    pub peer_silent: bool,
    pub reach: Reach,
    /// This node holds (or is starting or stopping) a group.
    pub holds: bool,
    pub peer_fencing: PeerFencing,
    /// This node's own stonith line is `watchdog` (it self-fences).
    pub self_watchdog: bool,
    pub isolated_stop: bool,
}

/// What to do about the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceAction {
    /// Nothing (the peer is heard, or this node lost the partition).
    Nothing,
    /// Not yet: the proof of reachability is pending.
    Wait,
    /// Power it off, after this node's delay (holder first; docs/fencing.md).
    PowerOff,
    /// An operator confirms it is off.
    Operator,
    /// It resets itself: count it fenced after the watchdog period, once its groups'
    /// addresses are silent.
    WatchdogPeriod,
    /// No stonith line: take over at once (and warn).
    Unfenced,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub fence: FenceAction,
    /// Stop the groups this node holds.
    pub stop_own: bool,
    /// Pet the watchdog (only meaningful with `self_watchdog`).
    pub pet: bool,
}

/// The decision table (docs/fencing.md prints it).
pub fn decide(s: Situation) -> Decision {
    if !s.peer_silent {
        return Decision { fence: FenceAction::Nothing, stop_own: false, pet: true };
    }
    let (fence, lost) = match s.reach {
        Reach::Isolated => (FenceAction::Nothing, true),
        Reach::Proving => (FenceAction::Wait, false),
        Reach::NoTargets | Reach::Reaching => (
            match s.peer_fencing {
                PeerFencing::None => FenceAction::Unfenced,
                PeerFencing::Power => FenceAction::PowerOff,
                PeerFencing::Manual => FenceAction::Operator,
                PeerFencing::Watchdog => FenceAction::WatchdogPeriod,
            },
            false,
        ),
    };
    let stop_own = lost && s.isolated_stop && s.holds;
    // A self-fencing node that holds a group keeps running only while it is not isolated
    // and not still proving it; one that holds nothing has nothing to give up.
    let pet = !s.self_watchdog || !s.holds || matches!(s.reach, Reach::NoTargets | Reach::Reaching);
    Decision { fence, stop_own, pet }
}

/// The partition settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSetup {
    pub targets: Vec<IpAddr>,
    /// The groups' addresses, probed before a watchdog-fenced peer's groups are taken.
    pub probes: Vec<IpAddr>,
    /// For each probe, the groups (bit i: group i) whose `ip` resources carry its address.
    pub probe_groups: Vec<u64>,
    pub ping_interval: Duration,
    pub ping_deadtime: Duration,
    pub ping_hold: Duration,
    pub isolated_stop: bool,
    /// This node's own watchdog timeout, when its stonith line is `watchdog`.
    pub self_watchdog: Option<Duration>,
    pub peer_fencing: PeerFencing,
}

impl PartitionSetup {
    /// No ping targets, no watchdog (the core as it was without them).
    pub fn none(peer_fencing: PeerFencing) -> PartitionSetup {
        PartitionSetup {
            targets: Vec::new(),
            probes: Vec::new(),
            probe_groups: Vec::new(),
            ping_interval: Duration::from_secs(1),
            ping_deadtime: Duration::from_secs(5),
            ping_hold: Duration::from_secs(5),
            isolated_stop: true,
            self_watchdog: None,
            peer_fencing,
        }
    }
}

/// The peer's reachability, from its heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerReach {
    pub count: u8,
    pub known: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Partition {
    setup: PartitionSetup,
    targets: Targets,
    probes: Targets,
    probing: bool,
    probe_rounds: u32,
    /// When the peer was declared dead (None: it is heard).
    silent_at: Option<Instant>,
    peer_reach: Option<PeerReach>,
    /// The connectivity policy: (fewer targets than the peer now, since when).
    fewer: (bool, Option<Instant>),
    worse: bool,
    /// Episodes of being worse, and the start of the last one.
    episodes: u32,
    last_episode: Option<Instant>,
    /// When a missing proof of reachability turns into isolation (a wake-up is due then).
    isolation_at: Option<Instant>,
}

impl Partition {
    pub fn new(now: Instant, setup: PartitionSetup) -> Partition {
        let targets = Targets::new(now, &setup.targets, setup.ping_interval, setup.ping_deadtime);
        let probes = Targets::new(now, &setup.probes, setup.ping_interval, setup.ping_interval * PROBE_ROUNDS);
        Partition {
            setup,
            targets,
            probes,
            probing: false,
            probe_rounds: 0,
            silent_at: None,
            peer_reach: None,
            fewer: (false, None),
            worse: false,
            episodes: 0,
            last_episode: None,
            isolation_at: None,
        }
    }

    pub fn setup(&self) -> &PartitionSetup {
        &self.setup
    }

    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    pub fn peer_reach(&self) -> Option<PeerReach> {
        self.peer_reach
    }

    /// What this node sends in its heartbeats (`None`: no targets).
    pub fn own_reach(&self, now: Instant) -> Option<PeerReach> {
        if self.targets.is_empty() {
            return None;
        }
        Some(PeerReach {
            count: u8::try_from(self.targets.count(now)).unwrap_or(u8::MAX),
            known: self.targets.known(now),
        })
    }

    pub fn reach(&self, now: Instant) -> Reach {
        if self.targets.is_empty() {
            return Reach::NoTargets;
        }
        let Some(since) = self.silent_at else {
            return if self.targets.known(now) && self.targets.count(now) == 0 {
                Reach::Isolated
            } else {
                Reach::Reaching
            };
        };
        if self.targets.answered_since(since) {
            Reach::Reaching
        } else if now.saturating_since(since) >= self.setup.ping_deadtime {
            Reach::Isolated
        } else {
            Reach::Proving
        }
    }

    pub fn decide(&self, now: Instant, holds: bool) -> Decision {
        decide(Situation {
            peer_silent: self.silent_at.is_some(),
            reach: self.reach(now),
            holds,
            peer_fencing: self.setup.peer_fencing,
            self_watchdog: self.setup.self_watchdog.is_some(),
            isolated_stop: self.setup.isolated_stop,
        })
    }

    /// The peer was declared dead: prove reachability now; probe the groups' addresses
    /// when the peer fences itself.
    pub fn peer_dead(&mut self, now: Instant) {
        self.silent_at = Some(now);
        self.targets.probe_now(now);
        if !self.targets.is_empty() {
            self.isolation_at = Some(now + self.setup.ping_deadtime);
        }
        if self.setup.peer_fencing == PeerFencing::Watchdog && !self.probes.is_empty() {
            self.probing = true;
            self.probe_rounds = 0;
            self.probes = Targets::new(
                now,
                &self.setup.probes,
                self.setup.ping_interval,
                self.setup.ping_interval * PROBE_ROUNDS,
            );
        }
    }

    pub fn peer_up(&mut self) {
        self.silent_at = None;
        self.isolation_at = None;
        self.probing = false;
    }

    /// The groups' addresses have been silent for [`PROBE_ROUNDS`] rounds (true when there
    /// is nothing to probe). `held`: the groups this node holds itself (bit i: group i); the
    /// address of such a group answers from this very node, so its echo proves nothing about
    /// the peer and does not count.
    pub fn probes_silent(&self, now: Instant, held: u64) -> bool {
        if self.probes.is_empty() {
            return true;
        }
        if !self.probing || self.probe_rounds <= PROBE_ROUNDS {
            return false;
        }
        let ours = |i: usize| self.setup.probe_groups.get(i).is_some_and(|&g| g & held != 0);
        self.probes.targets().iter().enumerate().all(|(i, t)| ours(i) || !self.probes.is_up(t, now))
    }

    pub fn set_peer_reach(&mut self, r: Option<PeerReach>) {
        self.peer_reach = r;
    }

    /// Echoes due now: (index, seq); probes have [`PROBE_BIT`] set.
    pub fn due(&mut self, now: Instant, out: &mut Vec<(u16, u16)>, scratch: &mut Vec<(usize, u16)>) {
        scratch.clear();
        self.targets.due(now, scratch);
        out.extend(scratch.iter().map(|&(i, s)| (i as u16, s)));
        if self.probing {
            scratch.clear();
            self.probes.due(now, scratch);
            if !scratch.is_empty() {
                // A silent round proves something only while this node reaches its targets:
                // cut off itself, it hears no address at all, and the rounds count again
                // from zero once a target answers.
                let reaching = match self.reach(now) {
                    Reach::NoTargets => true,
                    Reach::Reaching => self.targets.count(now) > 0,
                    Reach::Proving | Reach::Isolated => false,
                };
                self.probe_rounds = if reaching { self.probe_rounds.saturating_add(1) } else { 0 };
            }
            out.extend(scratch.iter().map(|&(i, s)| (i as u16 | PROBE_BIT, s)));
        }
    }

    /// An echo reply for index `i` (with [`PROBE_BIT`]: a probe).
    pub fn reply(&mut self, now: Instant, i: u16, seq: u16) {
        if i & PROBE_BIT != 0 {
            self.probes.reply(now, usize::from(i & !PROBE_BIT), seq);
        } else {
            self.targets.reply(now, usize::from(i), seq);
        }
    }

    /// The address of echo index `i`.
    pub fn addr_of(&self, i: u16) -> Option<IpAddr> {
        let list = if i & PROBE_BIT != 0 { &self.probes } else { &self.targets };
        list.targets().get(usize::from(i & !PROBE_BIT)).map(|t| t.addr)
    }

    /// The connectivity policy, updated: true while this node has reached fewer targets
    /// than its peer for `ping_hold` (and until it reached as many for `ping_hold`).
    pub fn update_worse(&mut self, now: Instant, peer_up: bool) -> bool {
        if self.isolation_at.is_some_and(|t| t <= now) {
            self.isolation_at = None;
        }
        let mine = self.own_reach(now);
        let fewer = match (mine, self.peer_reach, peer_up) {
            (Some(m), Some(p), true) if m.known && p.known => m.count < p.count,
            _ => false,
        };
        if fewer != self.fewer.0 {
            self.fewer = (fewer, Some(now));
        }
        let hold = if fewer { self.setup.ping_hold } else { self.recover_hold() };
        let held = self.fewer.1.is_none_or(|since| now.saturating_since(since) >= hold);
        if held && self.worse != fewer {
            self.worse = fewer;
            if fewer {
                // Another episode: the way back gets longer while they keep coming.
                let recent = self.last_episode.is_some_and(|t| now.saturating_since(t) < EPISODE_MEMORY);
                self.episodes = if recent { self.episodes.saturating_add(1) } else { 1 };
                self.last_episode = Some(now);
            }
        }
        self.worse
    }

    /// How long this node must reach as many targets as its peer before it counts as equal
    /// again: `ping_hold` after the first episode, doubling with each further one within
    /// [`EPISODE_MEMORY`], at most [`RECOVER_HOLD_MAX`], so a flapping target cannot move a
    /// group back and forth (with `auto_failback`) faster and faster.
    fn recover_hold(&self) -> Duration {
        let shift = self.episodes.saturating_sub(1).min(16);
        self.setup.ping_hold.saturating_mul(1 << shift).min(RECOVER_HOLD_MAX.max(self.setup.ping_hold))
    }

    pub fn worse(&self) -> bool {
        self.worse
    }

    /// When the next echo round, or the connectivity policy's hold, is due.
    pub fn poll_at(&self) -> Option<Instant> {
        let mut t = self.targets.poll_at();
        if self.probing {
            t = min_opt(t, self.probes.poll_at());
        }
        if let (true, Some(since)) = (self.fewer.0 != self.worse, self.fewer.1) {
            let hold = if self.fewer.0 { self.setup.ping_hold } else { self.recover_hold() };
            t = min_opt(t, Some(since + hold));
        }
        if let (Some(iso), Some(since)) = (self.isolation_at, self.silent_at) {
            // The moment a missing proof turns into isolation.
            if !self.targets.answered_since(since) {
                t = min_opt(t, Some(iso));
            }
        }
        t
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// The decision table exactly as docs/fencing.md prints it.
    #[test]
    fn the_decision_table() {
        use FenceAction::*;
        use PeerFencing as P;
        use Reach::*;
        let s = |peer_silent, reach, holds, peer_fencing, self_watchdog| Situation {
            peer_silent,
            reach,
            holds,
            peer_fencing,
            self_watchdog,
            isolated_stop: true,
        };
        // (situation) -> (fence, stop own groups, pet)
        let table: &[(Situation, (FenceAction, bool, bool))] = &[
            // The peer is heard: nothing happens here.
            (s(false, Isolated, true, P::Power, true), (Nothing, false, true)),
            // Silent peer, this node reaches its clients (or has no targets).
            (s(true, Reaching, true, P::Power, false), (PowerOff, false, true)),
            (s(true, NoTargets, false, P::Power, false), (PowerOff, false, true)),
            (s(true, Reaching, false, P::Manual, false), (Operator, false, true)),
            (s(true, Reaching, false, P::None, false), (Unfenced, false, true)),
            (s(true, Reaching, true, P::Watchdog, true), (WatchdogPeriod, false, true)),
            (s(true, NoTargets, false, P::Watchdog, true), (WatchdogPeriod, false, true)),
            // Still proving: neither fence nor take over; a self-fencing holder stops petting.
            (s(true, Proving, true, P::Power, true), (Wait, false, false)),
            (s(true, Proving, false, P::Watchdog, true), (Wait, false, true)),
            // Isolated: lost. Stop own groups; a self-fencing holder resets.
            (s(true, Isolated, true, P::Power, false), (Nothing, true, true)),
            (s(true, Isolated, true, P::Watchdog, true), (Nothing, true, false)),
            (s(true, Isolated, false, P::Watchdog, true), (Nothing, false, true)),
            (s(true, Isolated, false, P::None, false), (Nothing, false, true)),
        ];
        for (sit, (fence, stop_own, pet)) in table {
            assert_eq!(decide(*sit), Decision { fence: *fence, stop_own: *stop_own, pet: *pet }, "{sit:?}");
        }
        let mut no_stop = s(true, Isolated, true, P::Power, false);
        no_stop.isolated_stop = false;
        assert!(!decide(no_stop).stop_own, "isolated_stop off");
    }

    fn setup(targets: usize, probes: usize) -> PartitionSetup {
        PartitionSetup {
            targets: (0..targets).map(|i| IpAddr::from([192, 0, 2, 200 + i as u8])).collect(),
            probes: (0..probes).map(|i| IpAddr::from([192, 0, 2, 50 + i as u8])).collect(),
            // probe i is the address of group i
            probe_groups: (0..probes).map(|i| 1u64 << i).collect(),
            ping_interval: Duration::from_millis(100),
            ping_deadtime: Duration::from_millis(500),
            ping_hold: Duration::from_secs(2),
            isolated_stop: true,
            self_watchdog: Some(Duration::from_secs(5)),
            peer_fencing: PeerFencing::Watchdog,
        }
    }

    /// Runs the echo schedule from `from` to `to`, answering the targets in `answer` (and
    /// the probes when `probes_answer`) 1 ms after each request.
    fn run(p: &mut Partition, from: u64, to: u64, answer: &[u16], probes_answer: bool) {
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        let mut now = from;
        while now <= to {
            out.clear();
            p.due(t(now), &mut out, &mut scratch);
            for &(i, seq) in &out {
                let probe = i & PROBE_BIT != 0;
                if (probe && probes_answer) || (!probe && answer.contains(&i)) {
                    p.reply(t(now + 1), i, seq);
                }
            }
            now += 10;
        }
    }

    #[test]
    fn a_fresh_answer_proves_reachability_else_isolation() {
        let mut p = Partition::new(t(0), setup(2, 0));
        run(&mut p, 0, 990, &[0, 1], false);
        assert_eq!(p.reach(t(1000)), Reach::Reaching);
        // The peer falls silent at 1000 and this node loses its uplink at the same time:
        // the answers before the death prove nothing.
        p.peer_dead(t(1000));
        assert_eq!(p.poll_at(), Some(t(1000)), "a round at once");
        assert_eq!(p.reach(t(1000)), Reach::Proving);
        assert_eq!(p.decide(t(1000), true).fence, FenceAction::Wait);
        assert!(!p.decide(t(1000), true).pet, "a self-fencing holder does not pet while proving");
        run(&mut p, 1000, 1499, &[], false);
        assert_eq!(p.reach(t(1499)), Reach::Proving);
        assert_eq!(p.reach(t(1500)), Reach::Isolated);
        let d = p.decide(t(1500), true);
        assert_eq!((d.fence, d.stop_own, d.pet), (FenceAction::Nothing, true, false));
        // The other side of the same partition: one target answers after the death.
        let mut q = Partition::new(t(0), setup(2, 0));
        run(&mut q, 0, 990, &[0, 1], false);
        q.peer_dead(t(1000));
        run(&mut q, 1000, 1000, &[1], false);
        assert_eq!(q.reach(t(1001)), Reach::Reaching);
        assert_eq!(q.decide(t(1001), false).fence, FenceAction::WatchdogPeriod);
        q.peer_up();
        assert_eq!(q.decide(t(1002), false).fence, FenceAction::Nothing);
    }

    #[test]
    fn connectivity_needs_fewer_for_ping_hold_and_equal_moves_nothing() {
        let mut p = Partition::new(t(0), setup(3, 0));
        run(&mut p, 0, 600, &[0, 1, 2], false);
        p.set_peer_reach(Some(PeerReach { count: 3, known: true }));
        assert!(!p.update_worse(t(600), true), "equal counts");
        // Target 2 stops answering at 600: down at 1101; fewer from then on.
        run(&mut p, 610, 3000, &[0, 1], false);
        let mut worse_at = None;
        for ms in (610..=4000).step_by(10) {
            if ms > 3000 {
                run(&mut p, ms, ms, &[0, 1], false);
            }
            if p.update_worse(t(ms), true) && worse_at.is_none() {
                worse_at = Some(ms);
            }
        }
        let worse_at = worse_at.unwrap();
        assert!((3100..3200).contains(&worse_at), "fewer from ~1100, plus ping_hold 2 s: {worse_at}");
        // Back to three: not worse only after ping_hold again.
        let mut better_at = None;
        for ms in (4010..=7000).step_by(10) {
            run(&mut p, ms, ms, &[0, 1, 2], false);
            if !p.update_worse(t(ms), true) && better_at.is_none() {
                better_at = Some(ms);
            }
        }
        assert!((6000..=6200).contains(&better_at.unwrap()), "{better_at:?}");
        // A target that flaps faster than ping_hold never makes it worse.
        let mut p = Partition::new(t(0), setup(3, 0));
        p.set_peer_reach(Some(PeerReach { count: 3, known: true }));
        for round in 0..40u64 {
            let answer: &[u16] = if round % 2 == 0 { &[0, 1, 2] } else { &[0, 1] };
            run(&mut p, round * 1000, round * 1000 + 990, answer, false);
            assert!(!p.update_worse(t(round * 1000 + 990), true), "round {round}");
        }
        // Each further episode within the hour doubles the way back.
        let mut p = Partition::new(t(0), setup(3, 0));
        p.set_peer_reach(Some(PeerReach { count: 3, known: true }));
        let mut now = 0;
        let mut back = Vec::new();
        for _ in 0..3 {
            // Target 2 silent until this node is worse…
            while !p.update_worse(t(now), true) {
                run(&mut p, now, now, &[0, 1], false);
                now += 10;
            }
            // …then answering again: how long until it counts as equal?
            let from = now;
            while p.update_worse(t(now), true) {
                run(&mut p, now, now, &[0, 1, 2], false);
                now += 10;
            }
            back.push((now - from) / 1000);
        }
        assert_eq!(back, [2, 4, 8], "ping_hold 2 s, then doubling");
        // A peer that is not up, or counts not known yet, compare nothing.
        assert!(!Partition::new(t(0), setup(3, 0)).update_worse(t(0), false));
    }

    #[test]
    fn probes_must_stay_silent_for_three_rounds() {
        let mut p = Partition::new(t(0), setup(1, 2));
        p.peer_dead(t(0));
        run(&mut p, 0, 1000, &[0], true);
        assert!(!p.probes_silent(t(1000), 0), "the group's address answers: its holder lives");
        run(&mut p, 1010, 1300, &[0], false);
        assert!(!p.probes_silent(t(1300), 0));
        run(&mut p, 1310, 1400, &[0], false);
        assert!(p.probes_silent(t(1402), 0), "silent for three rounds");
        assert_eq!(p.addr_of(PROBE_BIT | 1), Some(IpAddr::from([192, 0, 2, 51])));
        // Without probes configured, or a peer fenced by power, there is nothing to wait for.
        let mut s = setup(1, 0);
        s.peer_fencing = PeerFencing::Power;
        assert!(Partition::new(t(0), s).probes_silent(t(0), 0));
    }

    /// Silent probe rounds taken while this node reaches no target prove nothing (it hears
    /// no address at all): they count only from a target's fresh answer on. Seen in the VM
    /// rig: a non-holder cut off from everything was healed, a target answered a moment
    /// before the peer's heartbeat, and the rounds of its isolation let it take the group.
    #[test]
    fn probe_rounds_while_cut_off_prove_nothing() {
        let mut p = Partition::new(t(0), setup(1, 1));
        run(&mut p, 0, 990, &[0], true);
        p.peer_dead(t(1000));
        // Cut off: neither the target nor the address answers, for twenty rounds.
        run(&mut p, 1000, 3000, &[], false);
        assert_eq!(p.reach(t(3000)), Reach::Isolated);
        assert!(!p.probes_silent(t(3000), 0), "rounds taken while isolated");
        // Healed: the target answers; the address (the peer's) would too, but say it stays
        // silent: silent only after PROBE_ROUNDS rounds taken while reaching.
        run(&mut p, 3010, 3250, &[0], false);
        assert_eq!(p.reach(t(3250)), Reach::Reaching);
        assert!(!p.probes_silent(t(3250), 0), "too few rounds since a target answered");
        run(&mut p, 3260, 4000, &[0], false);
        assert!(p.probes_silent(t(4000), 0), "silent for the rounds after the target answered");
    }

    /// The holder of a group probes its own address too (the same file serves both nodes):
    /// that echo answers from this very node, so it must not keep the peer from counting as
    /// fenced. Seen in the VM rig: the holder's DRBD handler waited for a fence that never
    /// came, and I/O stayed frozen.
    #[test]
    fn the_address_of_a_group_held_here_proves_nothing() {
        let mut p = Partition::new(t(0), setup(1, 2));
        p.peer_dead(t(0));
        // Group 0's address answers (this node holds it); group 1's is silent.
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        for now in (0..=1000).step_by(10) {
            out.clear();
            p.due(t(now), &mut out, &mut scratch);
            for &(i, seq) in &out {
                if i == PROBE_BIT || i == 0 {
                    p.reply(t(now + 1), i, seq);
                }
            }
        }
        assert!(!p.probes_silent(t(1002), 0), "the address answers: someone holds group 0");
        assert!(p.probes_silent(t(1002), 0b01), "group 0 is held here: its echo is our own");
        assert!(!p.probes_silent(t(1002), 0b10), "group 1 held here, group 0's address answers");
    }
}
