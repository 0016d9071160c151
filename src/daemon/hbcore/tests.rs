//! The heartbeat core with fake time and fake resources: the start-up probe, heartbeat's
//! group sequencing and failure rules, and two cores talking through their raw frames.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::*;
use crate::hb::auth::Method;
use crate::hb::proto::NodeStatus;

fn config(local: u8, failback: &str, haresources: &str) -> Config {
    config_with(local, failback, haresources, "")
}

/// With more ha.cf lines (`extra`).
fn config_with(local: u8, failback: &str, haresources: &str, extra: &str) -> Config {
    let cf = format!(
        "logfile /l\nkeepalive 1\ndeadtime 3\ninitdead 4\nucast eth0 192.0.2.2\nnode hn1 hn2\nauto_failback {failback}\n\
         {extra}"
    );
    let scripts = |_: &str| Some(PathBuf::from("/etc/ha.d/resource.d/res"));
    let mut c =
        crate::config::hacompat::parse(Path::new("/etc/ha.d"), &cf, Some(haresources), &scripts).unwrap().config;
    c.local = local;
    c
}

fn core(cfg: &Config, now: Instant, generation: u64) -> HbCore {
    let keys = AuthKeys::single(1, Method::Sha1, b"k").unwrap();
    let s = HbSetup {
        engine: HbCore::engine_config(cfg, [cfg.local + 1; 16], generation),
        keys,
        wall_secs: 1_700_000_000 + generation,
        groups: cfg.groups.iter().map(|g| (g.resources.len(), g.preferred == cfg.local)).collect(),
        serial_links: vec![false],
        fence: PeerFence::of(cfg),
    };
    HbCore::new(now, s).unwrap()
}

/// One core whose resources are simulated: `running[g][r]`, operations answered at once
/// (unless a rule says otherwise).
struct Fake {
    c: HbCore,
    running: Vec<Vec<bool>>,
    /// Operations asked and not answered yet.
    ops: VecDeque<(usize, usize, Op)>,
    /// Every operation asked, in order.
    log: Vec<(usize, usize, Op)>,
    events: Vec<HbEvent>,
    sent: Vec<Vec<u8>>,
    exited: bool,
    /// (group, resource, op) answered Failed.
    fail: Vec<(usize, usize, Op)>,
    /// Fence attempts asked for (`Output::Fence`), in order.
    fences: Vec<u32>,
    /// The loop's own events (fencing).
    io_events: Vec<io::Event>,
    /// Replies to control requests: (conn, code).
    replies: Vec<(io::ConnId, ReplyCode)>,
    cancels: usize,
}

impl Fake {
    fn new(cfg: &Config, now: Instant, generation: u64) -> Fake {
        let running = cfg.groups.iter().map(|g| vec![false; g.resources.len()]).collect();
        Fake {
            c: core(cfg, now, generation),
            running,
            ops: VecDeque::new(),
            log: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
            exited: false,
            fail: Vec::new(),
            fences: Vec::new(),
            io_events: Vec::new(),
            replies: Vec::new(),
            cancels: 0,
        }
    }

    fn take(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Run { group, resource, op } => {
                    self.ops.push_back((group.0, resource.0, op));
                    self.log.push((group.0, resource.0, op));
                }
                Output::SendRaw { udp, .. } => self.sent.push(udp),
                Output::Event(io::Event::Hb(e)) => self.events.push(e),
                Output::Event(e) => self.io_events.push(e),
                Output::Fence { attempt } => self.fences.push(attempt),
                Output::CancelFence => self.cancels += 1,
                Output::Reply { conn, code, .. } => self.replies.push((conn, code)),
                Output::Exit => self.exited = true,
                _ => {}
            }
        }
    }

    fn input(&mut self, now: Instant, i: Input<'_>) {
        let mut out = Vec::new();
        self.c.handle(now, i, &mut out);
        self.take(out);
        self.answer(now);
    }

    /// Answers every pending operation (new ones included) as the fake resources say.
    fn answer(&mut self, now: Instant) {
        for _ in 0..1000 {
            let Some((g, r, op)) = self.ops.pop_front() else { return };
            let failed = self.fail.contains(&(g, r, op));
            let result = match op {
                _ if failed => OpResult::Failed,
                Op::Start => {
                    self.running[g][r] = true;
                    OpResult::Running
                }
                Op::Stop => {
                    self.running[g][r] = false;
                    OpResult::Stopped
                }
                Op::Status if self.running[g][r] => OpResult::Running,
                Op::Status => OpResult::Stopped,
            };
            let mut out = Vec::new();
            self.c.handle(now, Input::OpDone { group: GroupId(g), resource: ResId(r), op, result }, &mut out);
            self.take(out);
        }
    }

    fn held(&self, g: usize) -> bool {
        self.running[g].iter().all(|&x| x)
    }
}

const HR: &str = "hn1 res::a res::b\nhn2 res::c\n";

fn t0() -> Instant {
    Instant::from_millis(1_000_000)
}

#[test]
fn probe_at_start_stops_what_runs() {
    let cfg = config(0, "on", HR);
    let now = t0();
    let mut f = Fake::new(&cfg, now, 1);
    f.running[0][1] = true; // left over from a crash
    f.input(now, Input::Tick);
    assert_eq!(f.log[..4], [(0, 0, Op::Status), (0, 1, Op::Status), (0, 1, Op::Stop), (0, 0, Op::Stop)], "{:?}", f.log);
    assert_eq!(f.log[4..], [(1, 0, Op::Status)]);
    assert!(f.events.contains(&HbEvent::FoundRunning { group: 0, resource: 1 }));
    assert_eq!((f.c.group_state(0), f.c.group_state(1)), (GState::Stopped, GState::Stopped));
    assert!(!f.running[0][1]);
    // The engine's first status went out at once.
    assert!(!f.sent.is_empty());
}

/// Runs `f` (one core alone) until `until`, ticking at its poll_at.
fn run_alone(f: &mut Fake, now: &mut Instant, until: Instant) {
    while *now < until {
        let next = f.c.poll_at().max(*now + Duration::from_millis(1)).min(until);
        *now = next;
        f.input(*now, Input::Tick);
    }
}

#[test]
fn alone_after_initdead_takes_every_group_status_first() {
    let cfg = config(0, "on", HR);
    let mut now = t0();
    let mut f = Fake::new(&cfg, now, 1);
    f.running[1][0] = false;
    run_alone(&mut f, &mut now, t0() + Duration::from_secs(8));
    assert!(f.held(0) && f.held(1), "{:?}\n{:?}", f.log, f.events);
    // heartbeat's acquire: status, then start, per resource, left to right.
    let acq: Vec<_> = f.log.iter().skip(3).copied().collect();
    assert!(
        acq.windows(4).any(|w| w == [(0, 0, Op::Status), (0, 0, Op::Start), (0, 1, Op::Status), (0, 1, Op::Start)]),
        "{acq:?}"
    );
    assert_eq!(f.c.group_state(0), GState::Started);
    run_alone(&mut f, &mut now, t0() + Duration::from_secs(20));
    assert_eq!(f.c.engine().rscstatus(), "all");
}

#[test]
fn failed_start_gives_the_group_up_then_standby_30s_later() {
    let cfg = config(0, "on", HR);
    let mut now = t0();
    let mut f = Fake::new(&cfg, now, 1);
    f.fail.push((0, 1, Op::Start));
    run_alone(&mut f, &mut now, t0() + Duration::from_secs(8));
    let i = f.log.iter().position(|x| *x == (0, 1, Op::Start)).unwrap();
    assert_eq!(f.log[i + 1..i + 3], [(0, 1, Op::Stop), (0, 0, Op::Stop)], "{:?}", f.log);
    assert!(!f.held(0) && !f.running[0][0]);
    assert!(f.c.start_failed(0));
    assert_eq!(f.c.group_state(0), GState::Stopped);
    assert!(f.events.contains(&HbEvent::StartFailed { group: 0, resource: 1 }));
    assert!(f.held(1), "the other group is not affected");
    // The start failed at about initdead (4 s); the standby follows 30 s later.
    run_alone(&mut f, &mut now, t0() + Duration::from_secs(33));
    assert!(!f.events.iter().any(|e| matches!(e, HbEvent::StandbyAfterFailure { .. })));
    run_alone(&mut f, &mut now, t0() + Duration::from_secs(40));
    assert!(f.events.contains(&HbEvent::StandbyAfterFailure { group: 0, set: RscSet::LOCAL }), "{:?}", f.events);
}

#[test]
fn failed_stop_is_retried_then_held_as_failed_and_never_reported_done() {
    let cfg = config(0, "on", HR);
    let mut now = t0();
    let mut f = Fake::new(&cfg, now, 1);
    run_alone(&mut f, &mut now, t0() + Duration::from_secs(8));
    assert!(f.held(0));
    f.fail.push((1, 0, Op::Stop));
    let before = f.log.len();
    f.input(now, Input::Shutdown);
    let start = now;
    let failed = |f: &Fake| f.events.iter().any(|e| matches!(e, HbEvent::StopFailed { .. }));
    while !failed(&f) && now < start + Duration::from_secs(30) {
        let t = now + Duration::from_millis(100);
        run_alone(&mut f, &mut now, t);
    }
    let stops = |f: &Fake| f.log[before..].iter().filter(|x| **x == (1, 0, Op::Stop)).count();
    // 10 attempts a second apart, then a status check.
    assert_eq!(stops(&f), 10, "{:?}", &f.log[before..]);
    let first = f.log[before..].iter().position(|x| *x == (1, 0, Op::Stop)).unwrap();
    assert_eq!(f.log[before + first..].iter().filter(|x| **x == (1, 0, Op::Status)).count(), 1);
    // Then every 10 s.
    let t = now + Duration::from_millis(10_500);
    run_alone(&mut f, &mut now, t);
    assert_eq!(stops(&f), 11);
    assert!(f.log[before..].contains(&(1, 0, Op::Status)));
    assert_eq!(f.c.group_state(1), GState::StopFailed);
    assert!(f.events.iter().any(|e| matches!(e, HbEvent::StopFailed { group: 1, resource: 0, attempts: 10 })));
    // The engine was not told: no shutdone, no exit; the other group waits behind it.
    assert!(!f.events.contains(&HbEvent::ShutdownDone));
    assert!(!f.exited);
    // Once the stop works, everything goes on.
    f.fail.clear();
    let t = now + Duration::from_secs(15);
    run_alone(&mut f, &mut now, t);
    assert_eq!(f.c.group_state(1), GState::Stopped);
    assert!(f.events.contains(&HbEvent::ShutdownDone), "{:?}", f.events);
    assert!(f.exited);
    assert!(!f.held(0) && !f.running[1][0]);
}

#[test]
fn stop_failure_that_status_calls_stopped_is_only_a_warning() {
    let cfg = config(0, "on", HR);
    let mut now = t0();
    let mut f = Fake::new(&cfg, now, 1);
    run_alone(&mut f, &mut now, t0() + Duration::from_secs(8));
    f.fail.push((0, 0, Op::Stop));
    f.running[0][0] = false;
    f.input(now, Input::Shutdown);
    let start = now;
    run_alone(&mut f, &mut now, start + Duration::from_secs(20));
    assert!(f.events.contains(&HbEvent::StopNotLsb { group: 0, resource: 0 }), "{:?}", f.events);
    assert!(f.exited);
}

/// Two cores wired back to back through their UDP frames.
struct Pair {
    n: [Fake; 2],
    now: Instant,
    /// Whether each node's frames reach the other.
    up: [bool; 2],
}

impl Pair {
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let next =
                self.n[0].c.poll_at().min(self.n[1].c.poll_at()).max(self.now + Duration::from_millis(1)).min(end);
            self.now = next;
            for i in 0..2 {
                if !self.n[i].exited {
                    self.n[i].input(self.now, Input::Tick);
                }
            }
            // Deliver what was sent (10 ms latency is below the tick here: at the next step).
            for i in 0..2 {
                let frames = std::mem::take(&mut self.n[i].sent);
                if !self.up[i] || self.n[1 - i].exited {
                    continue;
                }
                for fr in frames {
                    let now = self.now;
                    self.n[1 - i].input(now, Input::Raw { link: 0, bytes: &fr });
                }
            }
            assert!(!(self.n[0].held(0) && self.n[1].held(0)), "group 0 on both at {:?}", self.now);
            assert!(!(self.n[0].held(1) && self.n[1].held(1)), "group 1 on both");
        }
    }
}

#[test]
fn two_cores_share_the_groups_and_hand_over() {
    let now = t0();
    let mut p = Pair {
        n: [Fake::new(&config(0, "on", HR), now, 10), Fake::new(&config(1, "on", HR), now, 20)],
        now,
        up: [true, true],
    };
    p.run(Duration::from_secs(20));
    assert!(p.n[0].held(0) && p.n[1].held(1), "each on its preferred node: {:?} {:?}", p.n[0].events, p.n[1].events);
    assert_eq!(p.n[0].c.engine().peer_status(), NodeStatus::Active);
    // hb_standby on hn1: everything to hn2.
    let mut out = Vec::new();
    let t = p.now;
    p.n[0].c.hb_standby(t, RscSet::ALL, &mut out);
    p.n[0].take(out);
    p.run(Duration::from_secs(5));
    assert!(p.n[1].held(0) && p.n[1].held(1) && !p.n[0].held(0));
    // tandem standby of group 0 on hn2 (its foreign set): back to hn1.
    let t = p.now;
    p.n[1].input(t, Input::Standby(GroupSel::One(GroupId(0))));
    p.run(Duration::from_secs(5));
    assert!(p.n[0].held(0) && p.n[1].held(1), "{:?}", p.n[1].events);
    // hn1 shuts down cleanly: hn2 takes over at once.
    let t = p.now;
    p.n[0].input(t, Input::Shutdown);
    p.run(Duration::from_secs(2));
    assert!(p.n[1].held(0) && p.n[1].held(1));
    assert!(p.n[0].exited);
}

#[test]
fn peer_death_is_a_takeover_after_deadtime() {
    let now = t0();
    let mut p = Pair {
        n: [Fake::new(&config(0, "off", HR), now, 10), Fake::new(&config(1, "off", HR), now, 20)],
        now,
        up: [true, true],
    };
    p.run(Duration::from_secs(20));
    assert!(p.n[0].held(0) && p.n[1].held(1));
    // hn1 falls silent (and its resources vanish with it).
    p.up[0] = false;
    p.n[0].running = vec![vec![false; 2], vec![false]];
    p.n[0].exited = true;
    let t = p.now;
    p.run(Duration::from_secs(5));
    assert!(p.n[1].held(0) && p.n[1].held(1), "{:?}", p.n[1].events);
    let took = p.n[1].events.iter().any(|e| matches!(e, HbEvent::Peer { new: NodeStatus::Dead, .. }));
    assert!(took);
    let _ = t;
}

#[test]
fn sets_of_groups_and_requests() {
    assert_eq!(super::super::hbmode::parse_set("failback", true), Some(RscSet::FOREIGN));
    assert_eq!(super::super::hbmode::parse_set("failback", false), Some(RscSet::ALL));
    assert_eq!(super::super::hbmode::parse_set("local", true), Some(RscSet::LOCAL));
    assert_eq!(super::super::hbmode::parse_set("none", true), None);
    assert_eq!(super::super::hbmode::parse_set("x", false), None);
    let cfg = config(1, "on", HR);
    let c = core(&cfg, t0(), 1);
    assert_eq!(c.set_of(GroupSel::All), RscSet::ALL);
    assert_eq!(c.set_of(GroupSel::One(GroupId(0))), RscSet::FOREIGN);
    assert_eq!(c.set_of(GroupSel::One(GroupId(1))), RscSet::LOCAL);
}

/// hn1 holds group 0, then falls silent but stays alive (its resources keep running).
fn silent_holder(extra: &str) -> Pair {
    let now = t0();
    let mut p = Pair {
        n: [
            Fake::new(&config_with(0, "off", HR, extra), now, 10),
            Fake::new(&config_with(1, "off", HR, extra), now, 20),
        ],
        now,
        up: [true, true],
    };
    p.run(Duration::from_secs(20));
    assert!(p.n[0].held(0) && p.n[1].held(1));
    p.up[0] = false;
    p.n[0].exited = true;
    p
}

fn starts_of(f: &Fake, g: usize) -> usize {
    f.log.iter().filter(|(gg, _, op)| *gg == g && *op == Op::Start).count()
}

#[test]
fn stonith_fences_the_dead_peer_before_taking_over_and_retries_a_failure() {
    let extra = "stonith_host * external/ipmi hn1 203.0.113.11 admin pw lanplus\n";
    let cfg = config_with(1, "off", HR, extra);
    assert_eq!(PeerFence::of(&cfg), PeerFence::Power);
    assert!(HbCore::engine_config(&cfg, [2; 16], 1).stonith);
    let mut p = silent_holder(extra);
    let starts = starts_of(&p.n[1], 0);
    // Declared dead after deadtime (3 s): one attempt asked, nothing acquired. (Pair::run
    // asserts the group is never on both nodes: hn1 still runs it.)
    p.run(Duration::from_secs(5));
    let b = &p.n[1];
    assert!(b.events.iter().any(|e| matches!(e, HbEvent::Peer { new: NodeStatus::Dead, .. })), "{:?}", b.events);
    assert_eq!(b.fences, [1]);
    assert!(b.io_events.contains(&io::Event::FenceStarted { attempt: 1 }), "{:?}", b.io_events);
    assert_eq!(b.c.fence_state().name(), "running");
    assert_eq!(starts_of(b, 0), starts, "acquired before the fence: {:?}", b.log);
    // Minutes without an answer: still nothing (the loop bounds an attempt by fence_timeout).
    p.run(Duration::from_secs(120));
    assert_eq!((p.n[1].fences.len(), starts_of(&p.n[1], 0)), (1, starts));
    // It fails: retried 5 s later, no takeover in between.
    let t = p.now;
    p.n[1].input(t, Input::FenceDone { attempt: 1, ok: false, detail: "no answer" });
    assert!(
        p.n[1].io_events.iter().any(|e| matches!(e, io::Event::FenceFailed { attempt: 1, repeated: false, .. })),
        "{:?}",
        p.n[1].io_events
    );
    assert_eq!(p.n[1].c.fence_state().name(), "failed");
    p.run(Duration::from_millis(4900));
    assert_eq!((p.n[1].fences.len(), starts_of(&p.n[1], 0)), (1, starts));
    p.run(Duration::from_millis(200));
    assert_eq!(p.n[1].fences, [1, 2]);
    let t = p.now;
    p.n[1].input(t, Input::FenceDone { attempt: 2, ok: false, detail: "no answer" });
    assert!(p.n[1].io_events.iter().any(|e| matches!(e, io::Event::FenceFailed { attempt: 2, repeated: true, .. })));
    p.run(Duration::from_secs(6));
    assert_eq!(p.n[1].fences, [1, 2, 3]);
    assert_eq!(starts_of(&p.n[1], 0), starts);
    // A late result of an older attempt changes nothing.
    let t = p.now;
    p.n[1].input(t, Input::FenceDone { attempt: 2, ok: true, detail: "late" });
    p.run(Duration::from_secs(1));
    assert_eq!(starts_of(&p.n[1], 0), starts);
    // Attempt 3 powers hn1 off: then, and only then, its group is taken over.
    p.n[0].running = vec![vec![false; 2], vec![false]];
    let t = p.now;
    p.n[1].input(t, Input::FenceDone { attempt: 3, ok: true, detail: "chassis power is off" });
    assert!(p.n[1].io_events.iter().any(|e| matches!(e, io::Event::FenceConfirmed { .. })));
    p.run(Duration::from_secs(3));
    assert!(p.n[1].held(0) && p.n[1].held(1), "{:?}", p.n[1].events);
    assert_eq!(p.n[1].c.fence_counts(), (3, 1));
    assert_eq!(p.n[1].c.fence_state().name(), "confirmed");
    assert!(!p.n[1].events.iter().any(|e| matches!(e, HbEvent::Notice { notice: Notice::NoStonith, .. })));
}

#[test]
fn meatware_waits_for_the_operator() {
    let extra = "stonith_host * meatware hn1\n";
    assert_eq!(PeerFence::of(&config_with(1, "off", HR, extra)), PeerFence::Manual);
    let mut p = silent_holder(extra);
    let starts = starts_of(&p.n[1], 0);
    // Before the peer is dead, a confirmation is refused.
    let t = p.now;
    p.n[1].input(t, Input::Fenced { conn: 7 });
    assert_eq!(p.n[1].replies, [(7, ReplyCode::Failed)]);
    p.run(Duration::from_secs(60));
    assert!(p.n[1].io_events.contains(&io::Event::FenceOperator { never_heard: false }), "{:?}", p.n[1].io_events);
    assert!(p.n[1].fences.is_empty());
    assert_eq!(starts_of(&p.n[1], 0), starts);
    p.n[0].running = vec![vec![false; 2], vec![false]];
    let t = p.now;
    p.n[1].input(t, Input::Fenced { conn: 8 });
    assert_eq!(p.n[1].replies[1], (8, ReplyCode::Ok));
    p.run(Duration::from_secs(3));
    assert!(p.n[1].held(0) && p.n[1].held(1), "{:?}", p.n[1].events);
}

#[test]
fn without_stonith_the_takeover_is_heartbeats_no_stonith_rule() {
    assert_eq!(PeerFence::of(&config(1, "off", HR)), PeerFence::None);
    assert!(!HbCore::engine_config(&config(1, "off", HR), [2; 16], 1).stonith);
    let mut p = silent_holder("");
    // The silent hn1 still runs group 0: heartbeat without STONITH takes it over anyway.
    p.n[0].running = vec![vec![false; 2], vec![false]];
    p.run(Duration::from_secs(5));
    assert!(p.n[1].held(0));
    assert!(p.n[1].fences.is_empty());
    assert!(p.n[1].events.iter().any(|e| matches!(e, HbEvent::Notice { notice: Notice::NoStonith, .. })));
}

#[test]
fn an_operator_may_confirm_a_peer_whose_fence_fails() {
    let extra = "stonith_host * external/ipmi hn1 203.0.113.11 admin pw lanplus\n";
    let mut p = silent_holder(extra);
    p.run(Duration::from_secs(5));
    assert_eq!(p.n[1].fences, [1]);
    let t = p.now;
    p.n[1].input(t, Input::FenceDone { attempt: 1, ok: false, detail: "no answer" });
    // The operator powered hn1 off by hand and says so: the engine's next request (5 s after
    // the failure) is answered at once, without another attempt.
    p.n[0].running = vec![vec![false; 2], vec![false]];
    let t = p.now;
    p.n[1].input(t, Input::Fenced { conn: 3 });
    assert_eq!(p.n[1].replies, [(3, ReplyCode::Ok)]);
    p.run(Duration::from_secs(8));
    assert_eq!(p.n[1].fences, [1]);
    assert!(p.n[1].held(0) && p.n[1].held(1), "{:?}", p.n[1].events);
    assert_eq!(p.n[1].c.fence_counts(), (1, 1));
    // While an attempt runs, a confirmation stops it.
    let mut p = silent_holder(extra);
    p.run(Duration::from_secs(5));
    p.n[0].running = vec![vec![false; 2], vec![false]];
    let t = p.now;
    p.n[1].input(t, Input::Fenced { conn: 4 });
    assert_eq!((p.n[1].replies.clone(), p.n[1].cancels), (vec![(4, ReplyCode::Ok)], 1));
    p.run(Duration::from_secs(3));
    assert!(p.n[1].held(0));
}
