//! The chaos run's reusable parts; `tests/chaos.rs` drives them and docs/chaos.md explains
//! the run:
//! - [`Timing`]: the cluster's timers and the allowances derived from them;
//! - the schedule: [`LinkFault`]s and [`NodeFault`]s, each lane drawn from its own seeded
//!   [`Rng`] stream, so a seed gives the same sequence of faults whatever the pace;
//! - [`Journal`]: what happened when (printed for a failing seed), the counts, and the
//!   allowance windows in which the group may be held by nobody;
//! - [`Watch`]: the floating address in both node namespaces every 10 ms, as a timeline;
//! - [`unheld`], [`uncovered`], [`probe_answers`]: pure evaluation of the timeline and the
//!   client's answers against the windows.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Rng;

/// The cluster's timers, and what the invariants allow because of them.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    /// `fence_delay` in a fenced configuration.
    pub fence_delay: Option<Duration>,
    /// The hand-over: stop on one node, claim and grant, start on the other (address first).
    pub handover: Duration,
}

impl Timing {
    /// The directives for tandem.conf.
    pub fn config(&self) -> String {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut s = format!(
            "keepalive {}\ndeadtime {}\nwarntime {}\ninitdead {}\n",
            ms(self.keepalive),
            ms(self.deadtime),
            ms(self.warntime),
            ms(self.initdead)
        );
        if let Some(d) = self.fence_delay {
            s += &format!("fence_delay {}\n", ms(d));
        }
        s
    }

    /// When a silent peer is declared dead at the latest: deadtime, plus the skew the
    /// daemon adds (at most keepalive/4), plus one keepalive (the last heartbeat may have
    /// left up to one keepalive before the silence began).
    pub fn dead_after(&self) -> Duration {
        self.deadtime + self.keepalive + self.keepalive / 4
    }

    /// The fence's share of a takeover: the longest partition slot (1½ fence_delay, within
    /// the settling window after a change), one power-off with its read-back, and one retry
    /// 1 s later. Zero when unfenced.
    pub fn fence_budget(&self) -> Duration {
        match self.fence_delay {
            Some(d) => d + d / 2 + Duration::from_secs(2),
            None => Duration::ZERO,
        }
    }

    /// From a node's death (or silence) to the group held by the other: deadtime plus the
    /// fence plus the hand-over.
    pub fn takeover(&self) -> Duration {
        self.dead_after() + self.fence_budget() + self.handover
    }

    /// The longest SIGSTOP the schedule uses: well under deadtime (two keepalives short,
    /// so the silence seen by the peer, which adds up to one keepalive, stays below it).
    pub fn max_freeze(&self) -> Duration {
        self.deadtime.saturating_sub(self.keepalive * 2)
    }
}

/// A heartbeat link of the rig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Link {
    /// UDP over lan0 (which also carries the service: only port 694 is cut).
    Lan,
    /// UDP over hb0, the dedicated veth.
    Hb,
    /// The serial line (a pty relay).
    Serial,
}

pub const LINKS: [Link; 3] = [Link::Lan, Link::Hb, Link::Serial];

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Link::Lan => "lan0",
            Link::Hb => "hb0",
            Link::Serial => "serial",
        })
    }
}

/// A fault of the link lane. All three links cut is a full partition.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkFault {
    Cut {
        links: Vec<Link>,
        ms: u64,
    },
    /// One UDP link cut in one direction: what `node` sends on it is lost.
    OneWay {
        link: Link,
        node: usize,
        ms: u64,
    },
    /// `pct` % of the link's heartbeats dropped both ways, by nftables in `node`'s namespace.
    Loss {
        link: Link,
        node: usize,
        pct: u32,
        ms: u64,
    },
    /// The serial relay corrupts `corrupt_pct` % of the frames and injects `bursts` bursts
    /// of random bytes per second each way.
    Noise {
        corrupt_pct: u32,
        bursts: u32,
        ms: u64,
    },
}

impl LinkFault {
    pub fn ms(&self) -> u64 {
        match self {
            LinkFault::Cut { ms, .. }
            | LinkFault::OneWay { ms, .. }
            | LinkFault::Loss { ms, .. }
            | LinkFault::Noise { ms, .. } => *ms,
        }
    }

    pub fn is_partition(&self) -> bool {
        matches!(self, LinkFault::Cut { links, .. } if links.len() == LINKS.len())
    }

    /// The count key of the report.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkFault::Cut { .. } if self.is_partition() => "partition",
            LinkFault::Cut { links, .. } if links.len() == 1 => "cut one link",
            LinkFault::Cut { .. } => "cut two links",
            LinkFault::OneWay { .. } => "one-way cut",
            LinkFault::Loss { .. } => "loss 20%",
            LinkFault::Noise { .. } => "serial noise",
        }
    }
}

impl fmt::Display for LinkFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkFault::Cut { links, ms } => {
                let l: Vec<String> = links.iter().map(|l| l.to_string()).collect();
                let what = if self.is_partition() { "partition: cut" } else { "cut" };
                write!(f, "{what} {} for {ms} ms", l.join("+"))
            }
            LinkFault::OneWay { link, node, ms } => {
                write!(f, "one-way cut: {link} from {} for {ms} ms", super::machine::NODES[*node])
            }
            LinkFault::Loss { link, node, pct, ms } => {
                write!(f, "{pct}% loss on {link} (at {}) for {ms} ms", super::machine::NODES[*node])
            }
            LinkFault::Noise { corrupt_pct, bursts, ms } => {
                write!(f, "serial noise: {corrupt_pct}% of frames corrupted, {bursts} bursts/s, for {ms} ms")
            }
        }
    }
}

/// Which node a node fault hits, resolved when it happens: the one holding the group, or
/// the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Holder,
    Other,
}

/// What a reload changes in the configuration file (all of it may change live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Same,
    Comment,
    Warntime,
    GarpCount,
}

/// One operator command of a storm.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub node: usize,
    pub op: &'static str,
    pub target: Option<&'static str>,
    /// Pause after the command.
    pub gap_ms: u64,
}

/// A fault of the node lane.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeFault {
    /// SIGKILL the daemon, start it again `down_ms` later (a powered-off machine: power on).
    Kill { who: Role, down_ms: u64 },
    /// SIGSTOP the daemon for `ms` (shorter than deadtime), then SIGCONT.
    Freeze { who: Role, ms: u64 },
    /// Power the machine off at its switch and on again `down_ms` later.
    PowerCycle { who: Role, down_ms: u64 },
    /// `tandem standby|takeover [web|all]` on either node, in quick succession.
    Storm(Vec<Command>),
    /// SIGHUP after rewriting the configuration file of `nodes`.
    Reload { nodes: Vec<usize>, change: Change },
}

impl NodeFault {
    pub fn kind(&self) -> &'static str {
        match self {
            NodeFault::Kill { .. } => "SIGKILL+restart",
            NodeFault::Freeze { .. } => "SIGSTOP/SIGCONT",
            NodeFault::PowerCycle { .. } => "power cycle",
            NodeFault::Storm(_) => "standby/takeover storm",
            NodeFault::Reload { .. } => "reload (SIGHUP)",
        }
    }
}

impl fmt::Display for NodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = |r: &Role| if *r == Role::Holder { "the holder" } else { "the other node" };
        match self {
            NodeFault::Kill { who, down_ms } => write!(f, "SIGKILL {}, restart after {down_ms} ms", role(who)),
            NodeFault::Freeze { who, ms } => write!(f, "SIGSTOP {} for {ms} ms", role(who)),
            NodeFault::PowerCycle { who, down_ms } => write!(f, "power off {} for {down_ms} ms", role(who)),
            NodeFault::Storm(cmds) => {
                let c: Vec<String> = cmds
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {}{} +{}ms",
                            super::machine::NODES[c.node],
                            c.op,
                            c.target.map(|t| format!(" {t}")).unwrap_or_default(),
                            c.gap_ms
                        )
                    })
                    .collect();
                write!(f, "storm: {}", c.join(", "))
            }
            NodeFault::Reload { nodes, change } => {
                let n: Vec<&str> = nodes.iter().map(|&i| super::machine::NODES[i]).collect();
                write!(f, "reload {} ({change:?})", n.join("+"))
            }
        }
    }
}

/// The next fault of the link lane. Unfenced, at least one link always stays clean (a
/// full partition with both nodes alive is split brain without fencing); fenced, one in
/// five is a full partition, longer than deadtime.
pub fn link_fault(rng: &mut Rng, fenced: bool, t: &Timing) -> LinkFault {
    let ms = |rng: &mut Rng, lo: u64, hi: u64| rng.range(lo, hi);
    let mut links = LINKS.to_vec();
    let roll = rng.below(100);
    if fenced && roll < 20 {
        let lo = t.dead_after().as_millis() as u64 + 200;
        return LinkFault::Cut { links, ms: ms(rng, lo, lo + 3000) };
    }
    match roll % 100 {
        0..=34 => {
            let l = rng.pick(&LINKS);
            LinkFault::Cut { links: vec![l], ms: ms(rng, 1000, 6000) }
        }
        35..=54 => {
            links.remove(rng.below(3) as usize);
            LinkFault::Cut { links, ms: ms(rng, 1000, 6000) }
        }
        55..=64 => LinkFault::OneWay {
            link: rng.pick(&[Link::Lan, Link::Hb]),
            node: rng.below(2) as usize,
            ms: ms(rng, 1000, 6000),
        },
        65..=79 => LinkFault::Loss {
            link: rng.pick(&[Link::Lan, Link::Hb]),
            node: rng.below(2) as usize,
            pct: 20,
            ms: ms(rng, 2000, 8000),
        },
        _ => LinkFault::Noise {
            corrupt_pct: rng.range(10, 30) as u32,
            bursts: rng.range(5, 50) as u32,
            ms: ms(rng, 2000, 8000),
        },
    }
}

/// The next fault of the node lane. Unfenced, the holder's daemon is restarted within
/// 50 ms of its SIGKILL: its resources stay up while it is dead, and a peer that declared
/// it dead would start them a second time (documented in docs/cluster.md; fencing closes
/// that gap). Any other downtime is from 0 to 4 s.
pub fn node_fault(rng: &mut Rng, fenced: bool, t: &Timing) -> NodeFault {
    let who = if rng.percent(50) { Role::Holder } else { Role::Other };
    match rng.below(100) {
        0..=24 => {
            let down_ms = if !fenced && who == Role::Holder {
                rng.range(0, 50)
            } else if rng.percent(50) {
                rng.range(0, 100)
            } else {
                rng.range(1000, 4000)
            };
            NodeFault::Kill { who, down_ms }
        }
        25..=44 => NodeFault::Freeze { who, ms: rng.range(50, t.max_freeze().as_millis() as u64) },
        45..=54 => NodeFault::PowerCycle { who, down_ms: rng.range(500, 4000) },
        55..=79 => {
            let n = rng.range(2, 8);
            let cmds = (0..n)
                .map(|_| Command {
                    node: rng.below(2) as usize,
                    op: rng.pick(&["standby", "takeover"]),
                    target: rng.pick(&[Some("web"), Some("web"), Some("all"), None]),
                    gap_ms: rng.range(0, 400),
                })
                .collect();
            NodeFault::Storm(cmds)
        }
        _ => {
            let nodes = match rng.below(3) {
                0 => vec![0],
                1 => vec![1],
                _ => vec![0, 1],
            };
            NodeFault::Reload {
                nodes,
                change: rng.pick(&[Change::Same, Change::Comment, Change::Warntime, Change::GarpCount]),
            }
        }
    }
}

/// Whether a node fault may only hit a cluster at rest (one holder, nothing moving): a
/// SIGKILL with a long downtime, unfenced. Its victim must then hold nothing, since what a
/// killed daemon started stays up and its peer, declaring it dead, would start it again.
/// Every other fault may land in the middle of anything (a hand-over, a start, a stop).
pub fn needs_rest(f: &NodeFault, fenced: bool) -> bool {
    !fenced && matches!(f, NodeFault::Kill { down_ms, .. } if *down_ms > 50)
}

/// An interval in which the group may be held by nobody, and why.
#[derive(Debug, Clone)]
pub struct Window {
    pub from: Duration,
    pub to: Duration,
    pub cause: String,
}

#[derive(Default)]
struct JournalInner {
    lines: Vec<String>,
    windows: Vec<Window>,
    silences: [Vec<Window>; 2],
    counts: BTreeMap<String, u64>,
    failures: Vec<String>,
}

/// What happened when, relative to the phase's start; shared by the lanes.
pub struct Journal {
    pub t0: Instant,
    /// The wall clock at `t0`, in seconds since the epoch.
    pub unix0: f64,
    inner: Mutex<JournalInner>,
    /// Print each line as it happens (stderr).
    pub verbose: bool,
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

impl Journal {
    pub fn new(verbose: bool) -> Journal {
        Journal { t0: Instant::now(), unix0: unix_now(), inner: Mutex::new(JournalInner::default()), verbose }
    }

    pub fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// A wall-clock time as time since the start (None before it).
    pub fn rel(&self, unix: f64) -> Option<Duration> {
        Duration::try_from_secs_f64(unix - self.unix0).ok()
    }

    /// Logs one line for lane `lane`; returns its time.
    pub fn note(&self, lane: &str, text: impl fmt::Display) -> Duration {
        let at = self.now();
        let line = format!("t={:>8}s {lane:<5} {text}", secs(at));
        if self.verbose {
            eprintln!("chaos: {line}");
        }
        self.inner.lock().unwrap().lines.push(line);
        at
    }

    pub fn count(&self, what: &str) {
        *self.inner.lock().unwrap().counts.entry(what.to_string()).or_default() += 1;
    }

    pub fn add(&self, what: &str, n: u64) {
        *self.inner.lock().unwrap().counts.entry(what.to_string()).or_default() += n;
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.inner.lock().unwrap().counts.clone()
    }

    /// The group may be held by nobody from `from` to `to`, because of `cause`.
    pub fn allow(&self, from: Duration, to: Duration, cause: impl Into<String>) {
        self.inner.lock().unwrap().windows.push(Window { from, to, cause: cause.into() });
    }

    pub fn windows(&self) -> Vec<Window> {
        self.inner.lock().unwrap().windows.clone()
    }

    /// Node `node` may be silent to its peer (dead, powered off, cut off by a partition)
    /// from `from` to `to`: the peer may declare it dead then.
    pub fn silent(&self, node: usize, from: Duration, to: Duration, cause: impl Into<String>) {
        self.inner.lock().unwrap().silences[node].push(Window { from, to, cause: cause.into() });
    }

    pub fn silences(&self, node: usize) -> Vec<Window> {
        self.inner.lock().unwrap().silences[node].clone()
    }

    /// Records a broken invariant (the run stops at the next step of each lane).
    pub fn fail(&self, what: impl fmt::Display) {
        let at = self.now();
        let line = format!("t={:>8}s FAIL  {what}", secs(at));
        eprintln!("chaos: {line}");
        let mut i = self.inner.lock().unwrap();
        i.lines.push(line.clone());
        i.failures.push(line);
    }

    pub fn failures(&self) -> Vec<String> {
        self.inner.lock().unwrap().failures.clone()
    }

    pub fn failed(&self) -> bool {
        !self.inner.lock().unwrap().failures.is_empty()
    }

    /// Every line so far.
    pub fn dump(&self) -> String {
        self.inner.lock().unwrap().lines.join("\n")
    }
}

/// One change of who holds the address: (time, alpha holds, beta holds).
pub type Change2 = (Duration, bool, bool);

#[derive(Debug, Default, Clone)]
pub struct WatchState {
    pub samples: u64,
    /// Samples with the address on both nodes.
    pub both: u64,
    /// Samples with the address on neither.
    pub none: u64,
    /// Netlink dumps that failed (the sample was taken again).
    pub errors: u64,
    /// Every change, the first entry being the initial state.
    pub changes: Vec<Change2>,
    /// The longest time between two samples.
    pub max_interval: Duration,
}

impl WatchState {
    /// The current holders and since when they hold.
    pub fn current(&self) -> Option<Change2> {
        self.changes.last().copied()
    }
}

/// Samples one address in two namespaces every `every`, from one thread that owns a
/// netlink socket in each, recording every change of who holds it.
pub struct Watch {
    stop: Arc<AtomicBool>,
    pub state: Arc<Mutex<WatchState>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn netlink_in(ns: &str) -> tandem::netlink::NlSocket {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    tandem::netlink::NlSocket::new(tandem::netlink::Protocol::Route).unwrap()
}

fn holds(sock: &mut tandem::netlink::NlSocket, addr: IpAddr) -> Option<bool> {
    tandem::netlink::route::addresses(sock, None).ok().map(|v| v.iter().any(|e| e.addr == addr))
}

impl Watch {
    /// Starts sampling until [`Watch::finish`] or `limit` (a bound on the thread's life).
    pub fn start(t0: Instant, ns: [&str; 2], addr: &str, every: Duration, limit: Duration) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(WatchState::default()));
        let ns = [ns[0].to_string(), ns[1].to_string()];
        let addr: IpAddr = addr.parse().unwrap();
        let (st, sh) = (stop.clone(), state.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            // Above normal processes (the load of a shared machine), below the daemons (20):
            // a sample every 10 ms, as promised.
            let _ = tandem::sys::rt::set_realtime(10);
            let mut socks = [netlink_in(&ns[0]), netlink_in(&ns[1])];
            let _ = tx.send(());
            let end = Instant::now() + limit;
            let mut last: Option<Instant> = None;
            while !st.load(Ordering::SeqCst) && Instant::now() < end {
                let mut h = [false; 2];
                let mut errors = 0;
                for i in 0..2 {
                    h[i] = loop {
                        match holds(&mut socks[i], addr) {
                            Some(x) => break x,
                            None if errors < 100 => errors += 1,
                            None => panic!("netlink: cannot list addresses in {}", ns[i]),
                        }
                    };
                }
                let now = Instant::now();
                let at = now.duration_since(t0);
                {
                    let mut s = sh.lock().unwrap();
                    s.samples += 1;
                    s.errors += errors;
                    s.both += (h[0] && h[1]) as u64;
                    s.none += (!h[0] && !h[1]) as u64;
                    if let Some(l) = last {
                        s.max_interval = s.max_interval.max(now - l);
                    }
                    if s.changes.last().is_none_or(|&(_, a, b)| (a, b) != (h[0], h[1])) {
                        s.changes.push((at, h[0], h[1]));
                    }
                }
                last = Some(now);
                std::thread::sleep(every);
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Watch { stop, state, handle: Some(handle) }
    }

    pub fn snapshot(&self) -> WatchState {
        self.state.lock().unwrap().clone()
    }

    pub fn finish(mut self) -> WatchState {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.snapshot()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The intervals in which nobody held the address, from the changes, up to `end`.
pub fn unheld(changes: &[Change2], end: Duration) -> Vec<(Duration, Duration)> {
    let mut out = Vec::new();
    for (i, &(at, a, b)) in changes.iter().enumerate() {
        if !a && !b {
            let to = changes.get(i + 1).map_or(end, |c| c.0);
            if to > at {
                out.push((at, to));
            }
        }
    }
    out
}

/// The intervals in which both held the address.
pub fn held_twice(changes: &[Change2], end: Duration) -> Vec<(Duration, Duration)> {
    let mut out = Vec::new();
    for (i, &(at, a, b)) in changes.iter().enumerate() {
        if a && b {
            out.push((at, changes.get(i + 1).map_or(end, |c| c.0)));
        }
    }
    out
}

/// How much of `[from, to)` no window covers, and where the first uncovered stretch begins.
pub fn uncovered(from: Duration, to: Duration, windows: &[Window]) -> (Duration, Option<Duration>) {
    let mut w: Vec<(Duration, Duration)> =
        windows.iter().filter(|w| w.to > from && w.from < to).map(|w| (w.from.max(from), w.to.min(to))).collect();
    w.sort();
    let mut total = Duration::ZERO;
    let mut first = None;
    let mut at = from;
    for (a, b) in w {
        if a > at {
            total += a - at;
            first.get_or_insert(at);
        }
        at = at.max(b);
    }
    if to > at {
        total += to - at;
        first.get_or_insert(at);
    }
    (total, first)
}

/// The windows that cover instant `t`, as one line of causes.
pub fn causes_at(t: Duration, windows: &[Window]) -> String {
    causes_in(t, t, windows)
}

/// The windows that overlap `[from, to]`, as one line of causes.
pub fn causes_in(from: Duration, to: Duration, windows: &[Window]) -> String {
    let mut c: Vec<&str> = windows.iter().filter(|w| w.from <= to && from <= w.to).map(|w| w.cause.as_str()).collect();
    c.sort();
    c.dedup();
    if c.is_empty() {
        "nothing".to_string()
    } else {
        c.join("; ")
    }
}

/// A log line's timestamp (`2026-11-29T20:09:03.788034Z`, UTC) in seconds since the epoch.
pub fn log_time(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, mi, sec) = (t.next()?.parse::<f64>().ok()?, t.next()?.parse::<f64>().ok()?, t.next()?.parse::<f64>().ok()?);
    // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec)
}

/// The times (seconds since the epoch) at which a daemon's log says its peer `peer` was
/// declared dead (`peer NAME: up -> dead …`, also from init), with the line.
pub fn deaths(log: &str, peer: &str) -> Vec<(f64, String)> {
    let pat = format!("peer {peer}: ");
    log.lines()
        .filter(|l| l.contains(&pat) && l.contains("-> dead"))
        .filter_map(|l| Some((log_time(l)?, l.to_string())))
        .collect()
}

/// The client's answers from the prober's output (`UNIX_US ok NAME` lines): (time in
/// seconds since the epoch, who answered), in order.
pub fn probe_answers(text: &str) -> Vec<(f64, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let t: f64 = w.next()?.parse().ok()?;
            (w.next()? == "ok").then(|| (t / 1e6, w.next().unwrap_or("").to_string()))
        })
        .collect()
}

/// Gaps between successive answers longer than `min`: (from, to) in seconds since the epoch.
pub fn probe_gaps(answers: &[(f64, String)], min: f64) -> Vec<(f64, f64)> {
    answers.windows(2).filter(|w| w[1].0 - w[0].0 > min).map(|w| (w[0].0, w[1].0)).collect()
}
