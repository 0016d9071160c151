//! Explicit-time unit tests of the membership state machine.

use super::*;

const KA: u64 = 100;
const WARN: u64 = 300;
const DEAD: u64 = 500;
/// When silence counts as death: deadtime plus the quarter-keepalive skew.
const DEATH: u64 = DEAD + KA / 4;
const INITDEAD: u64 = 2000;

fn timing() -> Timing {
    Timing {
        keepalive: Duration::from_millis(KA),
        warntime: Duration::from_millis(WARN),
        deadtime: Duration::from_millis(DEAD),
        initdead: Duration::from_millis(INITDEAD),
    }
}

fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

fn us(v: u64) -> Instant {
    Instant::from_micros(v)
}

fn rx(link: usize, generation: u64) -> Event {
    Event::Received { link, generation }
}

/// A membership at t=1000ms (so "before start" is representable), 2 links.
fn fresh() -> Membership {
    Membership::new(ms(1000), timing(), 2)
}

/// `fresh()` with the peer heard on both links at `at` ms.
fn up_at(at: u64) -> Membership {
    let mut m = fresh();
    m.handle(ms(at), rx(0, 7));
    m.handle(ms(at), rx(1, 7));
    assert_eq!(m.peer_state(), PeerState::Up);
    m
}

#[test]
fn starts_init_with_links_down_and_heartbeat_due() {
    let m = fresh();
    assert_eq!(m.peer_state(), PeerState::Init);
    assert_eq!(m.peer_since(), ms(1000));
    assert_eq!(m.peer_generation(), None);
    assert_eq!(m.last_seen(), None);
    assert_eq!(m.n_links(), 2);
    assert_eq!(m.link(0), Some(LinkStatus { up: false, last_seen: None }));
    assert_eq!(m.link(1), Some(LinkStatus { up: false, last_seen: None }));
    assert_eq!(m.link(2), None);
    assert_eq!(m.timing(), timing());
    // First heartbeat immediately.
    assert_eq!(m.poll_at(), ms(1000));
}

#[test]
fn heartbeat_every_keepalive_first_at_once() {
    let mut m = fresh();
    let a = m.handle(ms(1000), Event::Tick);
    assert!(a.send_heartbeat);
    assert_eq!(a.peer, None);
    assert_eq!(m.poll_at(), ms(1000 + KA));
    // Idempotent: a second tick at the same instant does nothing.
    assert!(m.handle(ms(1000), Event::Tick).is_empty());
    // Not one microsecond early.
    assert!(!m.handle(us((1000 + KA) * 1000 - 1), Event::Tick).send_heartbeat);
    assert!(m.handle(ms(1000 + KA), Event::Tick).send_heartbeat);
    assert_eq!(m.poll_at(), ms(1000 + 2 * KA));
    // A late wake (poll rounding) keeps the cadence: next due stays on the grid.
    assert!(m.handle(us((1000 + 2 * KA) * 1000 + 700), Event::Tick).send_heartbeat);
    assert_eq!(m.poll_at(), ms(1000 + 3 * KA));
    // Oversleeping by more than an interval sends once and restarts from now.
    let a = m.handle(ms(1000 + 3 * KA + 250), Event::Tick);
    assert!(a.send_heartbeat);
    assert_eq!(m.poll_at(), ms(1000 + 3 * KA + 250 + KA));
    assert!(!m.handle(ms(1000 + 3 * KA + 250), Event::Tick).send_heartbeat);
}

#[test]
fn initdead_expiry_exactly() {
    let mut m = fresh();
    m.handle(ms(1000), Event::Tick);
    // Nothing heard: poll_at walks the heartbeats, and initdead is one of the deadlines.
    let mut t = ms(1000);
    let mut n = 0;
    while t < ms(1000 + INITDEAD) {
        assert_eq!(m.peer_state(), PeerState::Init);
        t = m.poll_at();
        assert!(t <= ms(1000 + INITDEAD));
        let a = m.handle(t, Event::Tick);
        n += 1;
        assert!(n < 100);
        if t < ms(1000 + INITDEAD) {
            assert_eq!(a.peer, None);
        } else {
            assert_eq!(a.peer, Some((PeerState::Init, PeerState::Dead)));
        }
    }
    assert_eq!(m.peer_state(), PeerState::Dead);
    assert_eq!(m.peer_since(), ms(1000 + INITDEAD));
    // Dead: only heartbeats are left to wake for.
    assert_eq!(m.poll_at(), ms(1000 + INITDEAD + KA));
    // A dead peer that is heard again is up.
    let a = m.handle(ms(5000), rx(1, 3));
    assert_eq!(a.peer, Some((PeerState::Dead, PeerState::Up)));
    assert!(!a.peer_restarted, "first generation ever seen is not a restart");
    assert_eq!(a.links_changed, 0b10);
    assert_eq!(m.peer_since(), ms(5000));
}

#[test]
fn initdead_not_one_microsecond_early() {
    let mut m = fresh();
    let a = m.handle(us((1000 + INITDEAD) * 1000 - 1), Event::Tick);
    assert_eq!(a.peer, None);
    assert_eq!(m.poll_at(), ms(1000 + INITDEAD));
    let a = m.handle(ms(1000 + INITDEAD), Event::Tick);
    assert_eq!(a.peer, Some((PeerState::Init, PeerState::Dead)));
}

#[test]
fn up_after_first_packet() {
    let mut m = fresh();
    m.handle(ms(1000), Event::Tick);
    let a = m.handle(ms(1050), rx(0, 7));
    assert_eq!(a.peer, Some((PeerState::Init, PeerState::Up)));
    assert_eq!(a.links_changed, 0b01);
    assert!(!a.peer_restarted);
    assert!(!a.send_heartbeat);
    assert_eq!(m.peer_state(), PeerState::Up);
    assert_eq!(m.peer_since(), ms(1050));
    assert_eq!(m.peer_generation(), Some(7));
    assert_eq!(m.last_seen(), Some(ms(1050)));
    assert_eq!(m.link(0), Some(LinkStatus { up: true, last_seen: Some(ms(1050)) }));
    assert_eq!(m.link(1), Some(LinkStatus { up: false, last_seen: None }));
    // A second packet: no transition, no link change.
    let a = m.handle(ms(1060), rx(0, 7));
    assert_eq!(a, Actions::default());
    // Initdead no longer applies once up.
    m.handle(ms(1000 + INITDEAD), rx(0, 7));
    assert_eq!(m.peer_state(), PeerState::Up);
}

#[test]
fn death_at_exactly_deadtime() {
    let mut m = up_at(2000);
    // Keep ticking at the heartbeats; the peer stays up.
    let mut t = ms(2000);
    loop {
        let next = m.poll_at();
        assert!(next > t);
        if next >= ms(2000 + DEATH) {
            break;
        }
        t = next;
        let a = m.handle(t, Event::Tick);
        assert_eq!(a.peer, None, "at {t:?}");
    }
    assert_eq!(m.poll_at(), ms(2000 + DEATH), "loop must wake at the death deadline");
    let a = m.handle(us((2000 + DEATH) * 1000 - 1), Event::Tick);
    assert_eq!(a.peer, None, "not one microsecond early");
    assert_eq!(m.poll_at(), ms(2000 + DEATH));
    let a = m.handle(ms(2000 + DEATH), Event::Tick);
    assert_eq!(a.peer, Some((PeerState::Up, PeerState::Dead)));
    assert_eq!(a.links_changed, 0b11, "both links go down with the peer");
    assert_eq!(m.peer_since(), ms(2000 + DEATH));
    assert_eq!(m.link(0).map(|l| l.up), Some(false));
    assert_eq!(m.link(0).and_then(|l| l.last_seen), Some(ms(2000)), "last_seen kept");
    // Idempotent.
    let a = m.handle(ms(2000 + DEATH), Event::Tick);
    assert_eq!(a.peer, None);
    assert_eq!(a.links_changed, 0);
}

#[test]
fn packet_at_the_deadline_before_the_tick_keeps_the_peer_up() {
    let mut m = up_at(2000);
    let a = m.handle(ms(2000 + DEATH), rx(0, 7));
    assert_eq!(a.peer, None);
    assert_eq!(a.links_changed, 0b10, "only the silent link goes down");
    assert_eq!(m.peer_state(), PeerState::Up);
}

#[test]
fn late_warning_once_per_episode() {
    let mut m = up_at(2000);
    assert_eq!(m.poll_at(), ms(2000 + KA), "overdue heartbeat was sent at 2000");
    let a = m.handle(us((2000 + WARN) * 1000 - 1), Event::Tick);
    assert!(!a.peer_late);
    let a = m.handle(ms(2000 + WARN), Event::Tick);
    assert!(a.peer_late);
    assert_eq!(a.peer, None);
    assert!(!m.handle(ms(2000 + WARN), Event::Tick).peer_late);
    assert!(!m.handle(ms(2000 + WARN + 50), Event::Tick).peer_late);
    // After the warning, the next deadline is the death (or a heartbeat).
    assert!(m.poll_at() > ms(2000 + WARN));
    // A packet re-arms it.
    let a = m.handle(ms(2400), rx(1, 7));
    assert!(!a.peer_late);
    assert!(!m.handle(ms(2400 + WARN - 1), Event::Tick).peer_late);
    assert!(m.handle(ms(2400 + WARN), Event::Tick).peer_late);
    assert!(!m.handle(ms(2400 + WARN + 1), Event::Tick).peer_late);
    // Overslept past the death deadline: death, not a late warning.
    let mut m = up_at(2000);
    let a = m.handle(ms(2000 + DEATH + 100), Event::Tick);
    assert_eq!(a.peer, Some((PeerState::Up, PeerState::Dead)));
    assert!(!a.peer_late);
}

#[test]
fn late_only_for_an_up_peer() {
    let mut m = fresh();
    for t in (1000..4000).step_by(50) {
        assert!(!m.handle(ms(t), Event::Tick).peer_late);
    }
    assert_eq!(m.peer_state(), PeerState::Dead);
}

#[test]
fn links_go_up_and_down_independently() {
    let mut m = fresh();
    let a = m.handle(ms(1000), rx(1, 1));
    assert_eq!(a.links_changed, 0b10);
    let a = m.handle(ms(1200), rx(0, 1));
    assert_eq!(a.links_changed, 0b01);
    // Sent at 1000 (due at start); at 1200 the 1100 slot was a whole interval late.
    assert_eq!(m.poll_at(), ms(1200 + KA), "heartbeat before any deadline");
    // Link 1 last heard at 1000, link 0 at 1200; keep link 0 alive.
    let a = m.handle(ms(1400), rx(0, 1));
    assert_eq!(a.links_changed, 0);
    let a = m.handle(us((1000 + DEATH) * 1000 - 1), Event::Tick);
    assert_eq!(a.links_changed, 0);
    let a = m.handle(ms(1000 + DEATH), Event::Tick);
    assert_eq!(a.links_changed, 0b10);
    assert_eq!(a.peer, None);
    assert_eq!(m.link(1).map(|l| l.up), Some(false));
    assert_eq!(m.link(0).map(|l| l.up), Some(true));
    // Link 1 back.
    let a = m.handle(ms(1600), rx(1, 1));
    assert_eq!(a.links_changed, 0b10);
    assert_eq!(a.peer, None);
    assert_eq!(m.link(1), Some(LinkStatus { up: true, last_seen: Some(ms(1600)) }));
}

#[test]
fn cutting_one_of_two_links_keeps_the_peer_then_restore() {
    let mut m = fresh();
    let mut t = 1000;
    let mut down_seen = false;
    // Both links carry packets every keepalive until 3000; then only link 0 until 6000.
    while t < 6000 {
        let a = m.handle(ms(t), rx(0, 4));
        assert_eq!(a.peer.map(|p| p.1).unwrap_or(PeerState::Up), PeerState::Up);
        if t < 3000 {
            m.handle(ms(t), rx(1, 4));
        }
        // Tick at every deadline up to the next packet, as the loop would.
        while m.poll_at() <= ms(t + KA) {
            let p = m.poll_at();
            let a = m.handle(p, Event::Tick);
            assert_eq!(a.peer, None);
            if a.links_changed != 0 {
                assert_eq!(a.links_changed, 0b10);
                // Link 1's last packet was at 2900.
                assert_eq!(p, ms(2900 + DEATH));
                down_seen = true;
            }
        }
        t += KA;
    }
    assert!(down_seen);
    assert_eq!(m.peer_state(), PeerState::Up);
    assert_eq!(m.link(0).map(|l| l.up), Some(true));
    assert_eq!(m.link(1).map(|l| l.up), Some(false));
    // Restore link 1.
    let a = m.handle(ms(6000), rx(1, 4));
    assert_eq!(a.links_changed, 0b10);
    assert_eq!(a.peer, None);
    assert_eq!(m.link(1).map(|l| l.up), Some(true));
}

#[test]
fn restart_detected_by_generation() {
    let mut m = fresh();
    m.handle(ms(1000), rx(0, 5));
    assert_eq!(m.peer_generation(), Some(5));
    // Same generation: nothing.
    assert!(!m.handle(ms(1100), rx(0, 5)).peer_restarted);
    // Higher: restart, peer stays up.
    let a = m.handle(ms(1200), rx(1, 6));
    assert!(a.peer_restarted);
    assert_eq!(a.peer, None);
    assert_eq!(a.links_changed, 0b10);
    assert_eq!(m.peer_generation(), Some(6));
    // Lower than known: ignored entirely (no link up, no last_seen, no re-arm).
    let before = m.link(0);
    let a = m.handle(ms(1300), rx(0, 5));
    assert!(!a.peer_restarted);
    assert_eq!(m.link(0), before);
    assert_eq!(m.last_seen(), Some(ms(1200)));
    assert_eq!(m.peer_generation(), Some(6));
    // Restart while dead: Dead -> Up and restarted in the same call.
    m.handle(ms(1200 + DEATH), Event::Tick);
    assert_eq!(m.peer_state(), PeerState::Dead);
    // An old generation cannot resurrect it.
    let a = m.handle(ms(1800), rx(0, 5));
    assert_eq!(a.peer, None);
    assert_eq!(m.peer_state(), PeerState::Dead);
    let a = m.handle(ms(1900), rx(0, 9));
    assert_eq!(a.peer, Some((PeerState::Dead, PeerState::Up)));
    assert!(a.peer_restarted);
    assert_eq!(m.peer_generation(), Some(9));
}

#[test]
fn out_of_range_link_is_ignored() {
    let mut m = fresh();
    let a = m.handle(ms(1000), rx(2, 1));
    assert_eq!(a.peer, None);
    assert_eq!(a.links_changed, 0);
    assert!(a.send_heartbeat, "still acts as a tick");
    assert_eq!(m.peer_state(), PeerState::Init);
    assert_eq!(m.peer_generation(), None);
    m.handle(ms(1000), rx(usize::MAX, 1));
    m.handle(ms(1000), rx(64, 1));
    assert_eq!(m.last_seen(), None);
    // 64 links is the maximum; more is clamped.
    let mut m = Membership::new(ms(0), timing(), 1000);
    assert_eq!(m.n_links(), MAX_LINKS);
    let a = m.handle(ms(0), rx(63, 1));
    assert_eq!(a.links_changed, 1u64 << 63);
    let a = m.handle(ms(0), rx(64, 1));
    assert_eq!(a.links_changed, 0);
    let a = m.handle(ms(DEATH), Event::Tick);
    assert_eq!(a.links_changed, 1u64 << 63);
    // Zero links: never up, no panic.
    let mut m = Membership::new(ms(0), timing(), 0);
    m.handle(ms(0), rx(0, 1));
    assert_eq!(m.peer_state(), PeerState::Init);
    assert_eq!(m.link(0), None);
}

#[test]
fn time_going_backwards_counts_as_no_time_passed() {
    let mut m = fresh();
    // Before start.
    let a = m.handle(ms(10), Event::Tick);
    assert!(a.send_heartbeat);
    assert_eq!(m.poll_at(), ms(1000 + KA));
    // Heard "in the past": recorded at the latest known now.
    m.handle(ms(1500), Event::Tick);
    let a = m.handle(ms(1200), rx(0, 1));
    assert_eq!(a.peer, Some((PeerState::Init, PeerState::Up)));
    assert_eq!(m.last_seen(), Some(ms(1500)));
    assert_eq!(m.peer_since(), ms(1500));
    assert!(m.poll_at() >= ms(1500));
    // A far-past tick changes nothing.
    assert!(m.handle(Instant::ZERO, Event::Tick).is_empty());
    // Deadlines still count from 1500.
    assert_eq!(m.handle(us((1500 + DEATH) * 1000 - 1), Event::Tick).peer, None);
    assert_eq!(m.handle(ms(1500 + DEATH), Event::Tick).peer, Some((PeerState::Up, PeerState::Dead)));
}

#[test]
fn poll_at_values() {
    let mut m = fresh();
    assert_eq!(m.poll_at(), ms(1000));
    m.handle(ms(1000), Event::Tick);
    assert_eq!(m.poll_at(), ms(1100), "next heartbeat");
    // Heartbeat much longer than initdead: initdead is nearer.
    let slow = Timing { keepalive: Duration::from_secs(10), ..timing() };
    let mut s = Membership::new(ms(0), slow, 1);
    s.handle(ms(0), Event::Tick);
    assert_eq!(s.poll_at(), ms(INITDEAD));
    s.handle(ms(INITDEAD), Event::Tick);
    assert_eq!(s.peer_state(), PeerState::Dead);
    assert_eq!(s.poll_at(), ms(10_000));
    // Up: warn, then death, then link deadlines.
    s.handle(ms(3000), rx(0, 1));
    assert_eq!(s.poll_at(), ms(3000 + WARN));
    s.handle(ms(3000 + WARN), Event::Tick);
    assert_eq!(s.poll_at(), ms(3000) + slow.dead_after());
    s.handle(ms(3000) + slow.dead_after(), Event::Tick);
    assert_eq!(s.peer_state(), PeerState::Dead);
    assert_eq!(s.poll_at(), ms(10_000));
    // Per-link deadline nearer than the peer's.
    let mut m = Membership::new(ms(0), slow, 2);
    m.handle(ms(0), rx(0, 1));
    m.handle(ms(100), rx(1, 1));
    assert_eq!(m.poll_at(), ms(100 + WARN));
    assert!(m.handle(ms(100 + WARN), Event::Tick).peer_late);
    assert_eq!(m.poll_at(), ms(0) + slow.dead_after(), "link 0 goes down before the peer dies");
    assert_eq!(m.handle(ms(0) + slow.dead_after(), Event::Tick).links_changed, 0b01);
    assert_eq!(m.poll_at(), ms(100) + slow.dead_after());
}

#[test]
fn announce_sends_now_and_restarts_the_interval() {
    let mut m = fresh();
    m.handle(ms(1000), Event::Tick);
    assert_eq!(m.poll_at(), ms(1100));
    m.handle(ms(1030), Event::Tick);
    m.announce();
    assert_eq!(m.poll_at(), ms(1030), "wake at once");
    // Any event carries it: here a packet.
    let a = m.handle(ms(1040), rx(0, 1));
    assert!(a.send_heartbeat);
    assert_eq!(m.poll_at(), ms(1040 + KA).min(ms(1040 + WARN)));
    assert!(!m.handle(ms(1100), Event::Tick).send_heartbeat, "old slot is gone");
    assert!(m.handle(ms(1140), Event::Tick).send_heartbeat);
    assert_eq!(m.poll_at(), ms(1240));
    // Announce twice before a handle: one send.
    m.announce();
    m.announce();
    assert!(m.handle(ms(1150), Event::Tick).send_heartbeat);
    assert!(!m.handle(ms(1150), Event::Tick).send_heartbeat);
}

#[test]
fn set_timing_applies_to_running_timers() {
    let mut m = fresh();
    m.handle(ms(1000), Event::Tick);
    m.handle(ms(1000), rx(0, 1));
    // Shorter keepalive: next heartbeat pulled in.
    let t2 = Timing { keepalive: Duration::from_millis(20), ..timing() };
    m.set_timing(t2);
    assert_eq!(m.timing(), t2);
    assert_eq!(m.poll_at(), ms(1020));
    // Shorter deadtime: the deadline moves; a deadline already past fires at once.
    m.handle(ms(1150), Event::Tick);
    m.set_timing(Timing { warntime: Duration::from_millis(50), deadtime: Duration::from_millis(100), ..t2 });
    assert_eq!(m.poll_at(), ms(1150), "overdue: wake now");
    let a = m.handle(ms(1150), Event::Tick);
    assert_eq!(a.peer, Some((PeerState::Up, PeerState::Dead)));
}

#[test]
fn zero_durations_do_not_busy_loop() {
    let z = Timing {
        keepalive: Duration::ZERO,
        warntime: Duration::ZERO,
        deadtime: Duration::ZERO,
        initdead: Duration::ZERO,
    };
    let mut m = Membership::new(ms(0), z, 1);
    let mut t = ms(0);
    for _ in 0..10 {
        m.handle(t, Event::Tick);
        let next = m.poll_at();
        assert!(next > t);
        t = next;
    }
    let a = m.handle(ms(5), rx(0, 1));
    assert_eq!(a.peer, Some((PeerState::Dead, PeerState::Up)));
    assert!(m.poll_at() > ms(5));
}

/// The loop reads a link only when it wakes for its own timers, and feeds each packet at
/// its arrival time (the kernel's receive stamp): liveness is judged exactly as if every
/// packet had woken it. Peer every 10 ms on two links, arriving 3.7 ms into our interval.
#[test]
fn packets_read_at_the_next_tick_count_from_their_arrival() {
    let t = Timing {
        keepalive: Duration::from_millis(10),
        warntime: Duration::from_millis(30),
        deadtime: Duration::from_millis(50),
        initdead: Duration::from_millis(2000),
    };
    let death = t.dead_after();
    let mut m = Membership::new(ms(1000), t, 2);
    let arrivals = |from: u64, to: u64| {
        (0..).map(move |k| us(from * 1000 + 3_700 + k * 10_000)).take_while(move |a| *a < us(to * 1000))
    };
    let mut queued: Vec<(Instant, usize)> = Vec::new();
    let mut next_arrival = arrivals(1000, 1300).peekable();
    let mut cut_link1_at = None;
    let mut wakes = 0;
    let mut now = ms(1000);
    while now < ms(1400) {
        wakes += 1;
        // What arrived since the last wakeup: both links until 1200, then link 0 only;
        // the peer itself goes silent at 1300.
        while let Some(&a) = next_arrival.peek() {
            if a > now {
                break;
            }
            queued.push((a, 0));
            if a < ms(1200) {
                queued.push((a, 1));
            }
            next_arrival.next();
        }
        for &(a, l) in &queued {
            m.handle(a, rx(l, 7));
        }
        queued.clear();
        let act = m.handle(now, Event::Tick);
        if act.links_changed & 2 != 0 {
            cut_link1_at = Some(now);
        }
        if now < ms(1300) && now > ms(1004) {
            assert_eq!(m.peer_state(), PeerState::Up, "at {now:?}");
        }
        now = m.poll_at();
    }
    // Link 1's last packet arrived at 1193.7: down exactly at its deadline, not later.
    assert_eq!(cut_link1_at, Some(us(1_193_700) + death));
    // The peer's last packet at 1293.7: dead at its deadline.
    assert_eq!(m.peer_state(), PeerState::Dead);
    assert_eq!(m.peer_since(), us(1_293_700) + death);
    // About one wakeup per keepalive (plus the deadlines), not one per packet.
    assert!(wakes <= 45, "{wakes} wakeups");
}

fn fast() -> Timing {
    Timing {
        keepalive: Duration::from_millis(10),
        warntime: Duration::from_millis(30),
        deadtime: Duration::from_millis(50),
        initdead: Duration::from_millis(2000),
    }
}

/// Two memberships exchanging heartbeats over two links (0.2 ms latency), each sending on
/// both. Returns, for `b`, when link 1 and link 0 went down and whether the peer ever went
/// down, with link `cut` cut from `cut_at` on.
fn two_nodes(cut: usize, cut_at: Instant, until: Instant) -> (Option<Instant>, Option<Instant>, bool, u64) {
    let mut nodes = [Membership::new(ms(1000), fast(), 2), Membership::new(ms(1003), fast(), 2)];
    // In flight: (arrival, to node, link).
    let mut flight: Vec<(Instant, usize, usize)> = Vec::new();
    let mut down: [Option<Instant>; 2] = [None, None];
    let mut peer_lost = false;
    let mut sent_on_secondary = 0;
    loop {
        let next_tick = if nodes[0].poll_at() <= nodes[1].poll_at() { 0 } else { 1 };
        let t_tick = nodes[next_tick].poll_at();
        let first_pkt = flight.iter().enumerate().min_by_key(|(_, f)| f.0).map(|(i, f)| (i, *f));
        let (now, who, ev) = match first_pkt {
            Some((i, (at, to, link))) if at <= t_tick => {
                flight.swap_remove(i);
                (at, to, rx(link, 7))
            }
            _ => (t_tick, next_tick, Event::Tick),
        };
        if now >= until {
            break;
        }
        let a = nodes[who].handle(now, ev);
        if a.send_heartbeat {
            for link in 0..2 {
                if link == 1 {
                    sent_on_secondary += 1;
                }
                if link != cut || now < cut_at {
                    flight.push((now + Duration::from_micros(200), 1 - who, link));
                }
            }
        }
        if who == 1 {
            for (link, d) in down.iter_mut().enumerate() {
                if a.links_changed & (1 << link) != 0 && d.is_none() && now > ms(1100) {
                    *d = Some(now);
                }
            }
            if now > ms(1100) && nodes[1].peer_state() != PeerState::Up {
                peer_lost = true;
            }
        }
    }
    (down[1], down[0], peer_lost, sent_on_secondary)
}

#[test]
fn a_cut_link_is_seen_within_deadtime_and_the_other_keeps_the_peer_up() {
    let death = fast().dead_after();
    // No cut: both links stay up, the secondary carries every heartbeat.
    let (d1, d0, lost, secondary) = two_nodes(9, ms(0), ms(2000));
    assert_eq!((d1, d0, lost), (None, None, false));
    assert!((190..=210).contains(&secondary), "{secondary} heartbeats on the secondary in 1 s for 2 nodes");
    // The secondary cut: down within deadtime (plus the skew) of the cut, the peer stays up.
    let cut = ms(1500);
    let (d1, d0, lost, _) = two_nodes(1, cut, ms(2000));
    assert!(d1.is_some_and(|d| d > cut && d <= cut + death), "{d1:?}");
    assert_eq!((d0, lost), (None, false));
    // The primary cut: down within deadtime of the cut; the secondary keeps itself and the
    // peer up.
    let (d1, d0, lost, _) = two_nodes(0, cut, ms(2000));
    assert!(d0.is_some_and(|d| d > cut && d <= cut + death), "{d0:?}");
    assert_eq!((d1, lost), (None, false));
}
