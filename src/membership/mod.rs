//! Membership: is the peer alive, and on which links? A pure state machine:
//! no clock reads, no fds. `handle(now, event) -> Actions`, `poll_at()`.
//!
//! [`PeerState`] and [`Timing`] are used by the cluster layer and the daemon too.
//!
//! [`Membership`] tracks one peer over up to [`MAX_LINKS`] links. The daemon feeds it
//! [`Event::Received`] for every authenticated, non-replayed packet and [`Event::Tick`]
//! when it wakes at [`Membership::poll_at`], and carries out the returned [`Actions`].
//! Order matters only at an exact deadline: a packet handled before the tick at
//! `last_seen + deadtime + keepalive/4` keeps the peer up.
//!
//! When `send_heartbeat` is set the daemon sends on every link, and each of those
//! transmissions needs its own sequence number: with one number shared by all links the
//! replay window would drop the copy on the second link, which would never come up.
//! On a peer transition the daemon should call [`Membership::announce`] so the peer
//! learns the new state at once.
//!
//! Every heartbeat goes out on every link: the links are independent paths, and a receiver
//! declares the peer dead only when all of them were silent for deadtime, so each carries
//! the full rate (a slower secondary, tried, cost false deaths under 20 % loss on both
//! paths: the sender cannot tell which of its packets the peer missed).

use crate::time::{Duration, Instant};

/// The peer as membership sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Not heard from yet, and initdead has not passed.
    Init,
    /// Heard from within deadtime on at least one link.
    Up,
    /// Silent on every link for deadtime (or never heard within initdead).
    Dead,
}

impl PeerState {
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Init => "init",
            PeerState::Up => "up",
            PeerState::Dead => "dead",
        }
    }
}

/// The four timers of the configuration: `keepalive`, `warntime`, `deadtime`, `initdead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub keepalive: Duration,
    pub warntime: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
}

impl Timing {
    /// How long silence lasts before it counts as death: `deadtime` plus a skew of a quarter
    /// keepalive. The heartbeat that is due exactly at `deadtime` after the last one heard
    /// arrives a little after it (network and scheduling jitter); without the skew it would
    /// always lose that race, and `deadtime = 3 × keepalive` would survive only two lost
    /// heartbeats in a row, not three. (VRRP's skew time serves the same purpose.)
    /// (Capped at deadtime/8, which binds only for timings the config refuses.)
    pub fn dead_after(&self) -> Duration {
        self.deadtime + (self.keepalive / 4).min(self.deadtime / 8)
    }
}

/// What happened. Every event also acts as a tick: timers are evaluated at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Time passed (the loop woke at or after [`Membership::poll_at`]).
    Tick,
    /// An authenticated, non-replayed packet from the peer arrived on link `link`
    /// (index into the daemon's link table), sent by the peer's boot `generation`.
    Received { link: usize, generation: u64 },
}

/// What the caller must do (or report) after one [`Membership::handle`] call.
/// Plain data, no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions {
    /// Time to send a heartbeat, on every link.
    pub send_heartbeat: bool,
    /// A peer transition old -> new; at most one per call.
    pub peer: Option<(PeerState, PeerState)>,
    /// The peer's generation increased while we knew an older one: it restarted,
    /// so whatever we knew about its state is stale.
    pub peer_restarted: bool,
    /// The peer just became later than warntime (once per late episode).
    pub peer_late: bool,
    /// Bit `i` set = link `i` went up or down in this call.
    pub links_changed: u64,
}

impl Actions {
    /// True when the call asks for nothing and reports nothing.
    pub fn is_empty(&self) -> bool {
        *self == Actions::default()
    }
}

/// One link as membership sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// A packet arrived on it within deadtime.
    pub up: bool,
    /// When the last packet arrived on it; `None` = never.
    pub last_seen: Option<Instant>,
}

/// Most links one membership tracks (one bit each in [`Actions::links_changed`]).
pub const MAX_LINKS: usize = 64;

/// The smallest step a timer may take, so that a zero duration cannot make
/// `poll_at()` return the current instant forever (a busy loop).
const MIN_STEP: Duration = Duration::from_micros(1);

/// `since + d`, with `d` at least [`MIN_STEP`].
fn deadline(since: Instant, d: Duration) -> Instant {
    since + d.max(MIN_STEP)
}

/// The peer's liveness and the state of each link, driven by explicit time.
///
/// Timers, as the configuration defines them: a heartbeat is due every `keepalive`, the
/// first at once; the peer is late after `warntime` of silence, dead after `deadtime`
/// (plus a skew of a quarter keepalive, see [`Timing::dead_after`]) of silence on every
/// link, and dead if never heard within `initdead` of start. A link is up while a packet arrived on it within
/// the same time. Every deadline `d` after an
/// instant `t` fires at exactly `t + d`, and [`Membership::poll_at`] returns it.
#[derive(Debug)]
pub struct Membership {
    timing: Timing,
    /// When `new()` was called (initdead counts from here).
    start: Instant,
    /// The latest `now` handled; time never goes backwards in here.
    now: Instant,
    /// When the next periodic heartbeat is due.
    next_send: Instant,
    /// `announce()` was called: the next `handle()` sends.
    announce: bool,
    peer: PeerState,
    peer_since: Instant,
    generation: Option<u64>,
    /// Last accepted packet on any link.
    last_seen: Option<Instant>,
    /// `peer_late` already fired in this silence.
    late: bool,
    /// Last accepted packet per link; allocated once in `new()`.
    link_seen: Box<[Option<Instant>]>,
    /// Bit `i` = link `i` is up.
    links_up: u64,
}

impl Membership {
    /// A fresh membership at `now`: the peer is `Init`, every link down, and a
    /// heartbeat due at once. `n_links` above [`MAX_LINKS`] is clamped.
    pub fn new(now: Instant, timing: Timing, n_links: usize) -> Membership {
        let n = n_links.min(MAX_LINKS);
        Membership {
            timing,
            start: now,
            now,
            next_send: now,
            announce: false,
            peer: PeerState::Init,
            peer_since: now,
            generation: None,
            last_seen: None,
            late: false,
            link_seen: vec![None; n].into_boxed_slice(),
            links_up: 0,
        }
    }

    /// Feeds one event at `now` (earlier than a previous `now` counts as no time
    /// passed) and evaluates every timer.
    pub fn handle(&mut self, now: Instant, ev: Event) -> Actions {
        let now = now.max(self.now);
        self.now = now;
        let peer_before = self.peer;
        let links_before = self.links_up;
        let mut act = Actions::default();

        if let Event::Received { link, generation } = ev {
            self.receive(now, link, generation, &mut act);
        }
        self.expire(now, &mut act);

        if self.announce || now >= self.next_send {
            act.send_heartbeat = true;
            let cadence = self.next_send + self.keepalive();
            // Keep the periodic cadence unless this send was announced early or the
            // loop overslept by a whole interval; then restart the interval from now.
            self.next_send =
                if !self.announce && cadence > now { cadence } else { deadline(now, self.timing.keepalive) };
            self.announce = false;
        }

        if self.peer != peer_before {
            act.peer = Some((peer_before, self.peer));
        }
        act.links_changed = links_before ^ self.links_up;
        act
    }

    fn keepalive(&self) -> Duration {
        self.timing.keepalive.max(MIN_STEP)
    }

    fn receive(&mut self, now: Instant, link: usize, generation: u64, act: &mut Actions) {
        let Some(seen) = self.link_seen.get_mut(link) else {
            return; // not a link we know: ignore
        };
        match self.generation {
            Some(known) if generation < known => return, // stale sender: ignore
            Some(known) if generation > known => act.peer_restarted = true,
            _ => {}
        }
        self.generation = Some(generation);
        *seen = Some(now);
        self.links_up |= 1u64 << link; // link < MAX_LINKS == 64
        self.last_seen = Some(now);
        self.late = false;
        if self.peer != PeerState::Up {
            self.set_peer(now, PeerState::Up);
        }
    }

    fn expire(&mut self, now: Instant, act: &mut Actions) {
        let t = self.timing;
        for (i, seen) in self.link_seen.iter().enumerate() {
            let bit = 1u64 << i;
            if self.links_up & bit != 0 {
                if let Some(ls) = seen {
                    if now >= deadline(*ls, t.dead_after()) {
                        self.links_up &= !bit;
                    }
                }
            }
        }
        match self.peer {
            PeerState::Init => {
                if now >= deadline(self.start, t.initdead) {
                    self.set_peer(now, PeerState::Dead);
                }
            }
            PeerState::Up => {
                if let Some(ls) = self.last_seen {
                    if now >= deadline(ls, t.dead_after()) {
                        self.set_peer(now, PeerState::Dead);
                    } else if !self.late && now >= deadline(ls, t.warntime) {
                        self.late = true;
                        act.peer_late = true;
                    }
                }
            }
            PeerState::Dead => {}
        }
    }

    fn set_peer(&mut self, now: Instant, to: PeerState) {
        self.peer = to;
        self.peer_since = now;
    }

    /// The nearest instant at which `handle()` has something to do: the next
    /// heartbeat, the warn or death deadline, initdead, a link's down deadline.
    /// Never earlier than the last handled `now`; at most one keepalive after it.
    pub fn poll_at(&self) -> Instant {
        let t = self.timing;
        let mut at = if self.announce { self.now } else { self.next_send };
        match self.peer {
            PeerState::Init => at = at.min(deadline(self.start, t.initdead)),
            PeerState::Up => {
                if let Some(ls) = self.last_seen {
                    at = at.min(deadline(ls, t.dead_after()));
                    if !self.late {
                        at = at.min(deadline(ls, t.warntime));
                    }
                }
            }
            PeerState::Dead => {}
        }
        for (i, seen) in self.link_seen.iter().enumerate() {
            if let (true, Some(ls)) = (self.links_up & (1u64 << i) != 0, seen) {
                at = at.min(deadline(*ls, t.dead_after()));
            }
        }
        at.max(self.now)
    }

    /// Makes the next `handle()` (any event) return `send_heartbeat = true`, e.g.
    /// after a state change; that send restarts the keepalive interval.
    pub fn announce(&mut self) {
        self.announce = true;
    }

    pub fn peer_state(&self) -> PeerState {
        self.peer
    }

    /// When the current peer state began (`new()` time for `Init`).
    pub fn peer_since(&self) -> Instant {
        self.peer_since
    }

    /// The peer's boot generation, once heard.
    pub fn peer_generation(&self) -> Option<u64> {
        self.generation
    }

    /// When the next periodic heartbeat is due (an announced one goes out earlier and
    /// restarts the interval). For measuring how late the loop sends them.
    pub fn next_heartbeat(&self) -> Instant {
        self.next_send
    }

    /// The last accepted packet on any link.
    pub fn last_seen(&self) -> Option<Instant> {
        self.last_seen
    }

    /// Link `i`, or `None` when out of range.
    pub fn link(&self, i: usize) -> Option<LinkStatus> {
        let seen = self.link_seen.get(i)?;
        Some(LinkStatus { up: self.links_up & (1u64 << i) != 0, last_seen: *seen })
    }

    /// How many links are tracked.
    pub fn n_links(&self) -> usize {
        self.link_seen.len()
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Replaces the timers (config reload). Deadlines are recomputed from the
    /// recorded instants; the next heartbeat is never more than one new keepalive away.
    pub fn set_timing(&mut self, t: Timing) {
        self.timing = t;
        self.next_send = self.next_send.min(deadline(self.now, t.keepalive));
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
