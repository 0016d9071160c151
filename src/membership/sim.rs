//! A seeded, deterministic two-node simulation of membership over lossy links.
//!
//! Two [`Membership`] instances exchange heartbeats over `LINKS` links through a
//! discrete-event scheduler that delays every packet by a random 0..=jitter, drops
//! packets with a per-link probability, duplicates some (so they also arrive
//! reordered), and can cut links for an interval. Each receiver runs a model of the
//! wire layer's replay window (newest generation wins, 64-packet sequence window)
//! before feeding `Event::Received`. Nodes wake like the daemon's poll loop: at
//! `poll_at()` rounded up to whole milliseconds, or when a packet arrives.

use super::*;
use crate::testutil::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const LINKS: usize = 2;
const MS: u64 = 1000;
const SEC: u64 = 1_000_000;
const SEEDS: u64 = 200;

/// The wire layer's replay protection, modelled: newest generation only, and a
/// 64-entry window of sequence numbers below the highest seen.
#[derive(Default)]
struct Window {
    generation: Option<u64>,
    top: u64,
    bits: u64,
}

impl Window {
    fn accept(&mut self, generation: u64, seq: u64) -> bool {
        match self.generation {
            Some(g) if generation < g => return false,
            Some(g) if generation == g => {}
            _ => {
                *self = Window { generation: Some(generation), top: seq, bits: 1 };
                return true;
            }
        }
        if seq > self.top {
            let shift = seq - self.top;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = seq;
            return true;
        }
        let off = self.top - seq;
        if off >= 64 || self.bits & (1 << off) != 0 {
            return false;
        }
        self.bits |= 1 << off;
        true
    }
}

/// A link cut: packets sent on `link` in [from, to) are lost.
#[derive(Clone, Copy)]
struct Cut {
    link: usize,
    from: u64,
    to: u64,
}

#[derive(Clone)]
struct Cfg {
    timing: Timing,
    jitter: u64,
    /// Loss per link, per mille.
    loss: [u64; LINKS],
    /// Duplication, per mille.
    dup: u64,
    end: u64,
    /// Node 1 boots at a random instant in 0..=boot_spread.
    boot_spread: u64,
    cuts: Vec<Cut>,
    /// Node 1 stops at .0 and boots again (next generation) at .1.
    restart: Option<(u64, u64)>,
}

impl Cfg {
    fn base() -> Cfg {
        Cfg {
            timing: Timing {
                keepalive: Duration::from_millis(100),
                warntime: Duration::from_millis(300),
                deadtime: Duration::from_millis(500),
                initdead: Duration::from_millis(2000),
            },
            jitter: 20 * MS,
            loss: [0; LINKS],
            dup: 100,
            end: 60 * SEC,
            boot_spread: 300 * MS,
            cuts: Vec::new(),
            restart: None,
        }
    }
    fn ka(&self) -> u64 {
        dur(self.timing.keepalive)
    }
    /// When silence counts as death: deadtime plus the skew (Timing::dead_after).
    fn dead(&self) -> u64 {
        dur(self.timing.dead_after())
    }
    fn warn(&self) -> u64 {
        dur(self.timing.warntime)
    }
    fn cut(&self, link: usize, t: u64) -> bool {
        self.cuts.iter().any(|c| c.link == link && c.from <= t && t < c.to)
    }
}

fn dur(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn at(us: u64) -> Instant {
    Instant::from_micros(us)
}

struct Node {
    m: Membership,
    running: bool,
    generation: u64,
    seq: u64,
    window: Window,
    wake: u64,
    /// Peer transitions (time, old, new), all instances of this node.
    trans: Vec<(u64, PeerState, PeerState)>,
    /// (time, links_changed, links up afterwards as a mask).
    links: Vec<(u64, u64, u64)>,
    late: Vec<u64>,
    restarts: Vec<u64>,
    /// Last accepted packet, and the longest gap between accepted packets while Up.
    last_rx: Option<u64>,
    worst_gap: u64,
    handled: u64,
}

impl Node {
    fn new(cfg: &Cfg) -> Node {
        Node {
            m: Membership::new(Instant::ZERO, cfg.timing, LINKS),
            running: false,
            generation: 0,
            seq: 0,
            window: Window::default(),
            wake: u64::MAX,
            trans: Vec::new(),
            links: Vec::new(),
            late: Vec::new(),
            restarts: Vec::new(),
            last_rx: None,
            worst_gap: 0,
            handled: 0,
        }
    }
    fn up_mask(&self) -> u64 {
        (0..LINKS).filter(|&i| self.m.link(i).is_some_and(|l| l.up)).fold(0, |a, i| a | 1 << i)
    }
}

/// (arrival time, tie-breaker, to, generation, seq, link)
type Pkt = (u64, u64, usize, u64, u64, usize);

struct Sim {
    cfg: Cfg,
    rng: Rng,
    nodes: [Node; 2],
    net: BinaryHeap<Reverse<Pkt>>,
    order: u64,
    /// (time, node, boot?) sorted by time.
    ctl: Vec<(u64, usize, bool)>,
}

impl Sim {
    fn new(cfg: Cfg, seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let boot1 = rng.range(0, cfg.boot_spread);
        let mut ctl = vec![(0, 0, true), (boot1, 1, true)];
        if let Some((stop, boot)) = cfg.restart {
            ctl.push((stop, 1, false));
            ctl.push((boot, 1, true));
        }
        ctl.sort();
        let nodes = [Node::new(&cfg), Node::new(&cfg)];
        Sim { cfg, rng, nodes, net: BinaryHeap::new(), order: 0, ctl }
    }

    fn run(mut self) -> Sim {
        let end = self.cfg.end;
        let mut ci = 0;
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < 5_000_000, "simulation does not progress");
            let mut t = end + 1;
            if let Some(Reverse(p)) = self.net.peek() {
                t = t.min(p.0);
            }
            if let Some(c) = self.ctl.get(ci) {
                t = t.min(c.0);
            }
            for n in &self.nodes {
                if n.running {
                    t = t.min(n.wake);
                }
            }
            if t > end {
                break;
            }
            while let Some(&(ct, i, boot)) = self.ctl.get(ci) {
                if ct > t {
                    break;
                }
                ci += 1;
                let n = &mut self.nodes[i];
                if boot {
                    n.generation += 1;
                    n.seq = 0;
                    n.window = Window::default();
                    n.m = Membership::new(at(t), self.cfg.timing, LINKS);
                    n.running = true;
                    n.wake = t;
                    n.last_rx = None;
                } else {
                    n.running = false;
                }
            }
            while let Some(Reverse(p)) = self.net.peek() {
                if p.0 > t {
                    break;
                }
                let (_, _, to, generation, seq, link) = *p;
                self.net.pop();
                self.deliver(t, to, generation, seq, link);
            }
            for i in 0..2 {
                if self.nodes[i].running && self.nodes[i].wake <= t {
                    let act = self.nodes[i].m.handle(at(t), Event::Tick);
                    self.after(i, t, act);
                }
            }
        }
        self
    }

    fn deliver(&mut self, t: u64, to: usize, generation: u64, seq: u64, link: usize) {
        let n = &mut self.nodes[to];
        if !n.running || !n.window.accept(generation, seq) {
            return;
        }
        let was_up = n.m.peer_state() == PeerState::Up;
        if let (true, Some(prev)) = (was_up, n.last_rx) {
            n.worst_gap = n.worst_gap.max(t - prev);
        }
        n.last_rx = Some(t);
        let act = n.m.handle(at(t), Event::Received { link, generation });
        self.after(to, t, act);
    }

    /// What the daemon does with the actions, plus the invariants every call must keep.
    fn after(&mut self, i: usize, t: u64, act: Actions) {
        let ka = self.cfg.ka();
        let n = &mut self.nodes[i];
        n.handled += 1;
        if let Some((old, new)) = act.peer {
            assert_ne!(old, new);
            n.trans.push((t, old, new));
            n.m.announce(); // the daemon tells the peer at once about a state change
        }
        if act.peer_late {
            n.late.push(t);
        }
        if act.peer_restarted {
            n.restarts.push(t);
        }
        if act.links_changed != 0 {
            n.links.push((t, act.links_changed, n.up_mask()));
        }
        let p = n.m.poll_at();
        assert!(p >= at(t), "poll_at {p:?} in the past at {t}");
        assert!(p <= at(t + ka), "poll_at {p:?} beyond now + keepalive at {t}");
        // Idempotence: the same tick again changes nothing (except a pending announce).
        let again = n.m.handle(at(t), Event::Tick);
        assert_eq!(again.peer, None);
        assert!(!again.peer_late && !again.peer_restarted && again.links_changed == 0);
        if again.send_heartbeat {
            assert!(act.peer.is_some(), "only an announce may send twice at {t}");
        }
        let send = act.send_heartbeat || again.send_heartbeat;
        // The poll loop: wake at poll_at rounded up to whole milliseconds.
        let p = n.m.poll_at();
        n.wake = t + at(t).millis_until_ceil(p) * MS;
        if send {
            for link in 0..LINKS {
                let n = &mut self.nodes[i];
                n.seq += 1; // one sequence number per transmission, on every link
                let (generation, seq) = (n.generation, n.seq);
                if self.cfg.cut(link, t) || self.rng.permille(self.cfg.loss[link]) {
                    continue;
                }
                let copies = if self.rng.permille(self.cfg.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let arrive = t + self.rng.range(0, self.cfg.jitter);
                    self.order += 1;
                    self.net.push(Reverse((arrive, self.order, 1 - i, generation, seq, link)));
                }
            }
        }
    }
}

fn states(n: &Node) -> Vec<(PeerState, PeerState)> {
    n.trans.iter().map(|&(_, a, b)| (a, b)).collect()
}

const INIT_UP: (PeerState, PeerState) = (PeerState::Init, PeerState::Up);
const UP_DEAD: (PeerState, PeerState) = (PeerState::Up, PeerState::Dead);
const DEAD_UP: (PeerState, PeerState) = (PeerState::Dead, PeerState::Up);

#[test]
fn rng_and_window_models() {
    let mut a = Rng::new(1);
    let hits = (0..10_000).filter(|_| a.permille(200)).count();
    assert!((1800..2200).contains(&hits), "{hits}");

    let mut w = Window::default();
    assert!(w.accept(1, 5));
    assert!(!w.accept(1, 5), "duplicate");
    assert!(w.accept(1, 3), "reordered, within window");
    assert!(!w.accept(1, 3));
    assert!(w.accept(1, 100));
    assert!(!w.accept(1, 36), "older than the window");
    assert!(w.accept(1, 37));
    assert!(!w.accept(0, 1000), "old generation");
    assert!(w.accept(2, 1), "new generation resets");
    assert!(!w.accept(1, 1000));
}

/// (a) 20% loss on each of 2 links, deadtime = 5 x keepalive: once both are Up,
/// nobody is declared dead.
#[test]
fn sim_lossy_links_no_false_death() {
    let mut cfg = Cfg::base();
    cfg.loss = [200, 200];
    assert_eq!(dur(cfg.timing.deadtime), 5 * cfg.ka());
    let (mut worst, mut worst_seed, mut lates, mut handled) = (0, 0, 0, 0);
    let mut link_flaps = 0;
    for seed in 0..SEEDS {
        let s = Sim::new(cfg.clone(), seed).run();
        for n in &s.nodes {
            assert_eq!(states(n), [INIT_UP], "seed {seed}: {:?}", n.trans);
            // Both nodes boot within 300ms; the first heartbeats get through long
            // before initdead.
            assert!(n.trans[0].0 < 2 * SEC, "seed {seed}");
            assert!(n.restarts.is_empty());
            assert_eq!(n.m.peer_state(), PeerState::Up);
            if n.worst_gap > worst {
                worst = n.worst_gap;
                worst_seed = seed;
            }
            assert!(n.worst_gap < cfg.dead(), "seed {seed}");
            lates += n.late.len();
            handled += n.handled;
            link_flaps += n.links.len();
        }
    }
    println!(
        "lossy: {SEEDS} seeds x 60s, 20% loss x 2 links: worst silence {} ms (seed {worst_seed}), \
         deadtime {} ms; {lates} late warnings, {link_flaps} link up/down changes, {handled} calls",
        worst / MS,
        cfg.dead() / MS
    );
    assert!(worst > cfg.ka(), "the fault injection must bite");
}

/// (b) A full cut at T: death is declared within [T + deadtime - keepalive - jitter,
/// T + deadtime + jitter + 1ms], after exactly one late warning; (c) when the links
/// come back at R, the peer is Up again within keepalive + jitter + 1ms, with both links.
#[test]
fn sim_full_cut_death_and_recovery() {
    let base = Cfg::base();
    let (ka, dead, warn, jit) = (base.ka(), base.dead(), base.warn(), base.jitter);
    let (mut min_d, mut max_d, mut max_u) = (u64::MAX, 0, 0);
    for seed in 0..SEEDS {
        let mut r = Rng::new(seed ^ 0xC07);
        let t_cut = 10 * SEC + r.range(0, 10 * SEC);
        let t_back = t_cut + 2 * SEC + r.range(0, 3 * SEC);
        let mut cfg = base.clone();
        cfg.cuts = (0..LINKS).map(|link| Cut { link, from: t_cut, to: t_back }).collect();
        let s = Sim::new(cfg, seed).run();
        for n in &s.nodes {
            assert_eq!(states(n), [INIT_UP, UP_DEAD, DEAD_UP], "seed {seed}: {:?}", n.trans);
            let d = n.trans[1].0;
            assert!(d >= t_cut + dead - ka - jit, "seed {seed}: death {d} too early (cut {t_cut})");
            assert!(d <= t_cut + dead + jit + MS, "seed {seed}: death {d} too late (cut {t_cut})");
            min_d = min_d.min(d - t_cut);
            max_d = max_d.max(d - t_cut);
            // The late warning came once, deadtime - warntime before the death.
            let lates: Vec<u64> = n.late.iter().copied().filter(|&l| l >= t_cut).collect();
            assert_eq!(lates.len(), 1, "seed {seed}: {:?}", n.late);
            assert!(d - lates[0] > dead - warn - MS && d - lates[0] < dead - warn + MS);
            // Each link went down at its own deadline; the last one with the peer.
            let last = n.links.iter().rfind(|l| l.0 <= d);
            assert!(last.is_some_and(|&(t, _, up)| t == d && up == 0), "seed {seed}");
            let u = n.trans[2].0;
            assert!(u >= t_back, "seed {seed}");
            assert!(u <= t_back + ka + jit + MS, "seed {seed}: up {u} (back {t_back})");
            max_u = max_u.max(u - t_back);
            // Both links up again within the same bound.
            let both = n.links.iter().find(|&&(t, _, up)| t >= t_back && up == 0b11).map(|l| l.0);
            assert!(both.is_some_and(|b| b <= t_back + ka + jit + MS), "seed {seed}");
            assert_eq!(n.m.peer_state(), PeerState::Up);
            assert!(n.restarts.is_empty());
        }
    }
    println!(
        "full cut: death {}..{} ms after the cut (deadtime {} ms), up again <= {} ms after repair",
        min_d / MS,
        max_d / MS,
        dead / MS,
        max_u / MS
    );
}

/// (d) Cutting one link at a time (2% background loss) never kills the peer; the
/// cut link goes down within deadtime + jitter + 1ms and comes back.
#[test]
fn sim_single_link_cut_never_kills() {
    let base = Cfg::base();
    let (ka, dead, jit) = (base.ka(), base.dead(), base.jitter);
    for seed in 0..SEEDS {
        let mut r = Rng::new(seed ^ 0x51);
        let c0 = 5 * SEC + r.range(0, 5 * SEC);
        let c0_end = c0 + 5 * SEC + r.range(0, 20 * SEC);
        // Link 1 is cut shortly after link 0 comes back (but not overlapping).
        let c1 = c0_end + 50 * MS + r.range(0, 5 * SEC);
        let c1_end = c1 + 2 * SEC + r.range(0, 10 * SEC);
        let mut cfg = base.clone();
        cfg.loss = [20, 20];
        cfg.cuts = vec![Cut { link: 0, from: c0, to: c0_end }, Cut { link: 1, from: c1, to: c1_end }];
        let s = Sim::new(cfg, seed).run();
        for n in &s.nodes {
            assert_eq!(states(n), [INIT_UP], "seed {seed}: {:?}", n.trans);
            for (link, from, to) in [(0, c0, c0_end), (1, c1, c1_end)] {
                let bit = 1u64 << link;
                let down = n.links.iter().find(|&&(t, ch, up)| t >= from && ch & bit != 0 && up & bit == 0);
                let down = down.map(|l| l.0).unwrap_or(u64::MAX);
                assert!(down <= from + dead + jit + MS, "seed {seed} link {link}: down {down}");
                if to < s.cfg.end {
                    let back = n.links.iter().find(|&&(t, ch, up)| t >= to && ch & bit != 0 && up & bit != 0);
                    let back = back.map(|l| l.0).unwrap_or(u64::MAX);
                    // One lost packet (2%) may delay it by a keepalive or two.
                    assert!(back <= to + 3 * ka + jit + MS, "seed {seed} link {link}: back {back}");
                }
            }
        }
    }
}

/// A restart of node 1 (new generation, sequence numbers from 0): node 0 reports
/// `peer_restarted` exactly once and ends Up; it is declared dead only when the
/// restart took longer than deadtime.
#[test]
fn sim_restart_detected_once() {
    let base = Cfg::base();
    let dead = base.dead();
    let (mut quick, mut slow) = (0, 0);
    for seed in 0..SEEDS {
        let mut r = Rng::new(seed ^ 0xBEEF);
        let stop = 10 * SEC + r.range(0, 10 * SEC);
        let downtime = r.range(0, 2 * dead);
        let boot = stop + downtime;
        let mut cfg = base.clone();
        cfg.loss = [50, 50];
        cfg.end = 30 * SEC;
        cfg.restart = Some((stop, boot));
        let s = Sim::new(cfg, seed).run();
        let a = &s.nodes[0];
        assert_eq!(a.restarts.len(), 1, "seed {seed}");
        assert!(a.restarts[0] >= boot, "seed {seed}");
        assert_eq!(a.m.peer_generation(), Some(2));
        assert_eq!(a.m.peer_state(), PeerState::Up);
        let st = states(a);
        if st == [INIT_UP] {
            quick += 1;
            assert!(downtime < dead, "seed {seed}: down {downtime}us unnoticed");
        } else {
            slow += 1;
            assert_eq!(st, [INIT_UP, UP_DEAD, DEAD_UP], "seed {seed}");
            // Dead only if the silence (stop - last packet + downtime) reached deadtime.
            assert!(a.trans[1].0 >= stop + dead - base.ka() - base.jitter, "seed {seed}");
            // Reported as restarted in the same call that brought it back.
            assert_eq!(a.trans[2].0, a.restarts[0]);
        }
        // The restarted node: a fresh Init -> Up (its first instance was Init -> Up too).
        let b = &s.nodes[1];
        assert_eq!(states(b), [INIT_UP, INIT_UP], "seed {seed}");
        assert!(b.restarts.is_empty());
    }
    println!("restart: {quick} seeds restarted within deadtime, {slow} seen dead first");
    assert!(quick > 0 && slow > 0, "both cases covered");
}

/// The scheduler itself is deterministic: the same seed gives the same history.
#[test]
fn sim_is_deterministic() {
    let mut cfg = Cfg::base();
    cfg.loss = [300, 100];
    cfg.end = 10 * SEC;
    cfg.cuts = vec![Cut { link: 0, from: 3 * SEC, to: 6 * SEC }, Cut { link: 1, from: 4 * SEC, to: 5 * SEC }];
    let a = Sim::new(cfg.clone(), 42).run();
    let b = Sim::new(cfg.clone(), 42).run();
    let c = Sim::new(cfg, 43).run();
    for i in 0..2 {
        assert_eq!(a.nodes[i].trans, b.nodes[i].trans);
        assert_eq!(a.nodes[i].links, b.nodes[i].links);
        assert_eq!(a.nodes[i].handled, b.nodes[i].handled);
    }
    assert_ne!(a.nodes[0].links, c.nodes[0].links);
}
