//! Fencing decisions, as pure bookkeeping for the core (docs/fencing.md).
//!
//! When membership declares the peer dead, this node fences it, whether or not a group must
//! move (a silent peer may be about to take groups itself). Takeover from the dead peer waits
//! for the power-off to be *confirmed* when fencing is required.
//!
//! - **Who fences first.** In a partition both nodes are alive and each declares the other
//!   dead; each picks a slot in units of half of `fence_delay`. A node whose own holding and
//!   whose view of the peer's have not changed for a settling window (twice the sum of
//!   deadtime and keepalive, the peer heard meanwhile) sees both holdings as the peer does:
//!   the holder, or when both or neither hold the node named first in `node`, fences at
//!   once, the other waits half of `fence_delay`. A node whose holding or view changed within
//!   the window may be seen wrongly by its peer, so it keeps out of both of those slots: named
//!   first it waits the whole `fence_delay`, named second one and a half. Every pair of slots
//!   the two nodes can pick lies half of `fence_delay` apart (a unit test tries them all,
//!   wrong views included), and when both have settled the holder's comes first: it
//!   survives, and its clients see no outage. A survivor whose peer froze while holding the
//!   groups waits that half, whichever node it is, which is what one keepalive of skew plus
//!   one fence needs, and no more.
//! - **fence_delay** defaults to four times (keepalive + one fence's time), where a fence's
//!   time is measured: the last confirmed fence, and twice the slowest of the last checks
//!   of the device. Half of it covers one keepalive of skew between the two nodes' verdicts
//!   plus one fence, twice over.
//! - **Checks.** Every `fence_check` the peer's fence device is asked for the power status
//!   (nothing is powered): a broken BMC or password shows in `status` and the log long
//!   before it is needed, and the answers time the device.
//! - **Retries.** A failed attempt is retried with a growing delay (1 s doubling to 30 s)
//!   until one succeeds or the peer is heard again, which cancels fencing. The loop never
//!   waits: attempts run in a child of the daemon's runner.
//! - **No fence loop.** With `wait_for_peer`, a node that has not heard its peer once since it
//!   started neither fences nor takes over: an operator confirms (`tandem fenced NODE`) or
//!   fences by hand (`tandem fence NODE`).
//! - **manual**: no attempt runs; an operator confirms with `tandem fenced NODE`.

use crate::config::FencePolicy;
use crate::time::{Duration, Instant};

use super::io::{ConnId, Event, Output, ReplyCode};

/// First retry delay after a failed attempt; doubles up to [`RETRY_MAX`].
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Device checks remembered for the fence time estimate.
const SAMPLES: usize = 4;
/// A failed check is tried again this soon (or at `fence_check`, if sooner).
const CHECK_RETRY: Duration = Duration::from_secs(10);

/// How the peer is fenced, as far as the decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// None configured: takeover as soon as the peer is dead (and warned about).
    None,
    /// A power method (ipmi, agent, exec): attempts and checks run in a child.
    Power,
    /// An operator confirms.
    Manual,
    /// The peer resets itself by its hardware watchdog: it counts as fenced `period`
    /// (its watchdog timeout plus a margin) after its last heartbeat, once the groups'
    /// addresses are silent.
    Watchdog { period: Duration },
}

/// What the partition decisions allow now (docs/fencing.md, "Partitions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allow {
    /// A power-off attempt may start (this node reaches its clients, or has no targets).
    pub attempt: bool,
    /// A watchdog-fenced peer may be counted fenced once its period has passed (this node
    /// reaches its clients, and the groups' addresses are silent).
    pub watchdog: bool,
}

impl Allow {
    pub const ALL: Allow = Allow { attempt: true, watchdog: true };
}

/// What the fencing setup needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct FenceSetup {
    pub method: Method,
    pub policy: FencePolicy,
    /// This node is named first in `node` (it goes first when both or neither hold a group).
    pub first_node: bool,
    pub keepalive: Duration,
    /// One fence's time until one is measured (the method's own guess).
    pub default_fence_time: Duration,
}

/// Where fencing of the peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The peer is alive (or was never declared dead).
    Idle,
    /// The peer fences itself: it counts as fenced at `until` if allowed then.
    WatchdogWait { until: Instant },
    /// The peer is dead; the first attempt starts at `until` (the delay of the node that
    /// does not go first).
    Waiting { until: Instant },
    /// Attempt `attempt` is running, since `since`.
    Running { attempt: u32, since: Instant },
    /// Attempt `attempt` failed; the next starts at `retry_at`.
    Failed { attempt: u32, retry_at: Instant },
    /// Nothing runs until an operator acts (manual method, or the peer never heard).
    Operator,
    /// The peer is off (or an operator said so), since `at`.
    Confirmed { at: Instant },
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::WatchdogWait { .. } => "watchdog",
            State::Waiting { .. } => "waiting",
            State::Running { .. } => "running",
            State::Failed { .. } => "failed",
            State::Operator => "operator",
            State::Confirmed { .. } => "confirmed",
        }
    }
}

/// The outcome of the last fence attempt, or of the last device check, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last {
    pub ok: bool,
    pub detail: String,
    /// Fence: from the peer's death (or the operator's command) to this outcome.
    /// Check: how long the device took to answer.
    pub took: Duration,
    pub at: Instant,
}

/// Takeover from the dead peer is allowed, or not (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Closed,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Fencing {
    setup: FenceSetup,
    state: State,
    /// The peer was heard at least once since this daemon started.
    heard_once: bool,
    /// Membership declares the peer dead (an operator may fence a live peer: that attempt
    /// is not retried).
    peer_dead: bool,
    /// When the current episode began (the peer's death, or an operator's `fence`).
    episode: Option<Instant>,
    /// The delay picked at the peer's death (for `status`).
    delay: Option<Duration>,
    /// The last failure's text (an error is logged when it changes, not on every retry).
    last_error: Option<String>,
    last: Option<Last>,
    /// The duration of the last confirmed attempt.
    last_fence_time: Option<Duration>,
    /// Operators waiting for the result of `tandem fence`.
    waiting: Vec<ConnId>,
    attempts_total: u64,
    confirmed_total: u64,
    // Device checks.
    check_next: Option<Instant>,
    /// The running check: (id, since).
    check_running: Option<(u32, Instant)>,
    check_id: u32,
    check_last: Option<Last>,
    samples: [Option<Duration>; SAMPLES],
    sample_at: usize,
    /// The attempt (or watchdog confirmation) is due but the partition decisions hold it
    /// back: no wake-up for it until an input changes that.
    blocked: bool,
    /// The silent peer had shut down cleanly (every group stopped): nothing to fence.
    left: bool,
    /// What the slot is picked from: this node holds a group, it sees the peer hold one
    /// (as last heard), and since when both have been so (or the peer was last heard coming
    /// up), with the settling window.
    holds: Holdings,
    holds_since: Instant,
    settle: Duration,
}

/// What each node holds, as this node sees it (a group starting, started or stopping counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holdings {
    pub own: bool,
    pub peer: bool,
}

impl Fencing {
    pub fn new(now: Instant, setup: FenceSetup) -> Fencing {
        let checks = setup.method == Method::Power && setup.policy.check.is_some();
        Fencing {
            setup,
            state: State::Idle,
            heard_once: false,
            peer_dead: false,
            episode: None,
            delay: None,
            last_error: None,
            last: None,
            last_fence_time: None,
            waiting: Vec::new(),
            attempts_total: 0,
            confirmed_total: 0,
            check_next: checks.then_some(now),
            check_running: None,
            check_id: 0,
            check_last: None,
            samples: [None; SAMPLES],
            sample_at: 0,
            blocked: false,
            left: false,
            holds: Holdings::default(),
            holds_since: now,
            settle: Duration::ZERO,
        }
    }

    /// What each node holds now, and the settling window (twice deadtime + keepalive):
    /// called after every input, so that the slot at the peer's death is picked on what
    /// was held just before.
    pub fn observe(&mut self, now: Instant, holds: Holdings, settle: Duration) {
        self.settle = settle;
        if holds != self.holds {
            self.holds = holds;
            self.holds_since = now;
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn last(&self) -> Option<&Last> {
        self.last.as_ref()
    }

    pub fn last_check(&self) -> Option<&Last> {
        self.check_last.as_ref()
    }

    pub fn method(&self) -> Method {
        self.setup.method
    }

    /// The delay picked at the peer's death, while fencing is pending.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// (attempts, confirmed fences) since start.
    pub fn counts(&self) -> (u64, u64) {
        (self.attempts_total, self.confirmed_total)
    }

    /// One fence's time: measured (the last confirmed fence; twice the slowest recent
    /// check, as a fence is a power-off and a read-back), else the method's guess.
    pub fn fence_time(&self) -> Duration {
        let checks = self.samples.iter().flatten().max().map(|d| d.saturating_mul(2));
        match (self.last_fence_time, checks) {
            (None, None) => self.setup.default_fence_time,
            (a, b) => a.max(b).unwrap_or(Duration::ZERO),
        }
    }

    /// `fence_delay`: as configured, else four times (keepalive + one fence's time).
    pub fn fence_delay(&self) -> Duration {
        self.setup.policy.delay.unwrap_or_else(|| (self.setup.keepalive + self.fence_time()).saturating_mul(4))
    }

    /// The `fence_delay` sent to the peer in heartbeats (milliseconds), with a power method.
    pub fn advertised_delay_ms(&self) -> Option<u32> {
        (self.setup.method == Method::Power).then(|| u32::try_from(self.fence_delay().as_millis()).unwrap_or(u32::MAX))
    }

    /// Whether this node's holdings and its view of the peer's have settled (module
    /// documentation).
    pub fn settled(&self, now: Instant) -> bool {
        self.heard_once && now.saturating_since(self.holds_since) >= self.settle
    }

    /// This node's delay before its first attempt if the peer were declared dead now (module
    /// documentation), from the larger of its own and the peer's `fence_delay`.
    pub fn slot(&self, now: Instant, peer_delay: Option<Duration>) -> Duration {
        let d = self.fence_delay().max(peer_delay.unwrap_or(Duration::ZERO));
        let first = self.setup.first_node;
        if !self.settled(now) {
            return if first { d } else { d + d / 2 };
        }
        // The holder goes first; when both or neither hold, the node named first.
        let Holdings { own, peer } = self.holds;
        let goes_first = if own != peer { own } else { first };
        if goes_first {
            Duration::ZERO
        } else {
            d / 2
        }
    }

    /// May a group be taken over from the dead peer now?
    pub fn gate(&self) -> Gate {
        if matches!(self.state, State::Confirmed { .. }) || (self.left && self.state == State::Idle) {
            return Gate::Open;
        }
        let power = matches!(self.setup.method, Method::Power | Method::Manual);
        if power && self.setup.policy.wait_for_peer && !self.heard_once {
            return Gate::Closed;
        }
        match self.setup.method {
            Method::None => Gate::Open,
            _ if !self.setup.policy.required => Gate::Open,
            _ => Gate::Closed,
        }
    }

    /// The peer is up (heard): fencing stops. What it holds is learnt anew: the slots wait
    /// for the settling window again.
    pub fn peer_up(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.heard_once = true;
        self.holds_since = now;
        self.peer_dead = false;
        match self.state {
            State::Idle | State::Confirmed { .. } => {}
            State::Running { .. } => {
                out.push(Output::CancelFence);
                out.push(Output::Event(Event::FenceCancelled));
            }
            State::Waiting { .. } | State::Failed { .. } | State::Operator | State::WatchdogWait { .. } => {
                out.push(Output::Event(Event::FenceCancelled))
            }
        }
        for conn in self.waiting.drain(..) {
            let text = "the peer is heard again: fencing stopped\n".to_string();
            out.push(Output::Reply { conn, code: ReplyCode::Failed, text });
        }
        self.state = State::Idle;
        self.episode = None;
        self.delay = None;
        self.last_error = None;
        self.left = false;
    }

    /// The peer fell silent after a clean shutdown: it had announced that it was leaving and
    /// had stopped every group, then its daemon exited. It holds nothing and claims nothing:
    /// no fence (an operator stopping a daemon must not see the machine powered off), and its
    /// groups may be taken.
    pub fn peer_left(&mut self, out: &mut Vec<Output>) {
        if !matches!(self.state, State::Idle) || self.setup.method == Method::None {
            return;
        }
        self.left = true;
        out.push(Output::Event(Event::PeerLeft));
    }

    /// The silent peer had shut down cleanly ([`Fencing::peer_left`]).
    pub fn left(&self) -> bool {
        self.left && self.state == State::Idle
    }

    /// Membership declared the peer dead. The slot is picked on what [`Fencing::observe`]
    /// saw just before; `peer_delay`: the peer's `fence_delay`, as last heard; `last_heard`:
    /// the peer's last heartbeat.
    pub fn peer_dead(
        &mut self,
        now: Instant,
        peer_delay: Option<Duration>,
        last_heard: Instant,
        out: &mut Vec<Output>,
    ) {
        self.peer_dead = true;
        if !matches!(self.state, State::Idle) || self.setup.method == Method::None {
            return;
        }
        self.episode = Some(now);
        if let Method::Watchdog { period } = self.setup.method {
            // wait_for_peer does not apply: nothing is powered, the peer resets itself.
            let until = last_heard + period;
            self.delay = Some(until.saturating_since(now));
            self.state = State::WatchdogWait { until };
            out.push(Output::Event(Event::FenceScheduled { delay: until.saturating_since(now) }));
            return;
        }
        if self.setup.policy.wait_for_peer && !self.heard_once {
            self.state = State::Operator;
            out.push(Output::Event(Event::FenceOperator { never_heard: true }));
            return;
        }
        if self.setup.method == Method::Manual {
            self.state = State::Operator;
            out.push(Output::Event(Event::FenceOperator { never_heard: false }));
            return;
        }
        let delay = self.slot(now, peer_delay);
        self.delay = Some(delay);
        self.state = State::Waiting { until: now + delay };
        out.push(Output::Event(Event::FenceScheduled { delay }));
    }

    /// Time passed: start the attempt or the check that is due, as far as `allow` lets.
    pub fn tick(&mut self, now: Instant, allow: Allow, out: &mut Vec<Output>) {
        self.blocked = false;
        if let State::WatchdogWait { until } = self.state {
            if until <= now {
                if allow.watchdog {
                    let detail = "its watchdog period has passed and its groups' addresses are silent";
                    self.confirm(now, detail.into(), out);
                } else {
                    self.blocked = true;
                }
            }
            return;
        }
        let due = match self.state {
            State::Waiting { until } if until <= now => Some(1),
            State::Failed { attempt, retry_at } if retry_at <= now => Some(attempt + 1),
            _ => None,
        };
        if due.is_some() && !allow.attempt {
            self.blocked = true;
        }
        let next = due.filter(|_| allow.attempt);
        if let Some(attempt) = next {
            self.start(now, attempt, out);
            return;
        }
        let check_due = self.check_next.is_some_and(|t| t <= now);
        if check_due && self.state == State::Idle && self.check_running.is_none() {
            self.check_id = self.check_id.wrapping_add(1);
            self.check_running = Some((self.check_id, now));
            out.push(Output::FenceCheck { id: self.check_id });
        }
    }

    fn start(&mut self, now: Instant, attempt: u32, out: &mut Vec<Output>) {
        // An attempt replaces a running check (the daemon kills it; its result is dropped).
        self.check_running = None;
        self.state = State::Running { attempt, since: now };
        self.attempts_total += 1;
        out.push(Output::Fence { attempt });
        if attempt == 1 {
            out.push(Output::Event(Event::FenceStarted { attempt }));
        }
    }

    /// Check `id` ended: `ok` = the device answered (`detail`: what it said).
    pub fn check_done(&mut self, now: Instant, id: u32, ok: bool, detail: String, out: &mut Vec<Output>) {
        let Some((running, since)) = self.check_running else { return };
        if running != id {
            return;
        }
        self.check_running = None;
        let took = now.saturating_since(since);
        let every = self.setup.policy.check.unwrap_or(RETRY_MAX);
        self.check_next = Some(now + if ok { every } else { every.min(CHECK_RETRY) });
        if ok {
            self.samples[self.sample_at % SAMPLES] = Some(took);
            self.sample_at = self.sample_at.wrapping_add(1);
        }
        let changed = match &self.check_last {
            None => true,
            Some(l) => l.ok != ok || (!ok && l.detail != detail),
        };
        self.check_last = Some(Last { ok, detail: detail.clone(), took, at: now });
        out.push(Output::Event(Event::FenceCheck { ok, detail, took, changed }));
    }

    /// An operator runs `tandem fence PEER` on connection `conn`: an attempt now (unless
    /// one runs: then its result is the answer).
    pub fn operator_fence(&mut self, now: Instant, conn: ConnId, out: &mut Vec<Output>) {
        if self.setup.method != Method::Power {
            let text = match self.setup.method {
                Method::Manual => "the peer's method is manual: power it off, then run tandem fenced\n",
                Method::Watchdog { .. } => "the peer fences itself by its watchdog: there is nothing to run\n",
                _ => "no stonith line for the peer\n",
            };
            out.push(Output::Reply { conn, code: ReplyCode::Failed, text: text.to_string() });
            return;
        }
        self.waiting.push(conn);
        out.push(Output::Hold { conn, until: now + self.setup.policy.timeout + Duration::from_secs(5) });
        if !matches!(self.state, State::Running { .. }) {
            self.episode = Some(now);
            let attempt = match self.state {
                State::Failed { attempt, .. } => attempt + 1,
                _ => 1,
            };
            // The operator's word opens the gate of a peer never heard.
            self.heard_once = true;
            self.start(now, attempt, out);
        }
    }

    /// An operator confirms the peer is off (`tandem fenced PEER`).
    pub fn operator_confirms(&mut self, now: Instant, conn: ConnId, peer_up: bool, out: &mut Vec<Output>) {
        if peer_up {
            let text = "the peer is up (heard on a link): it is not off\n".to_string();
            out.push(Output::Reply { conn, code: ReplyCode::Failed, text });
            return;
        }
        if matches!(self.state, State::Running { .. }) {
            out.push(Output::CancelFence);
        }
        if self.episode.is_none() {
            self.episode = Some(now);
        }
        self.heard_once = true;
        self.confirm(now, "confirmed by an operator".to_string(), out);
        out.push(Output::Reply { conn, code: ReplyCode::Ok, text: "confirmed: the peer is off\n".to_string() });
    }

    /// The running attempt ended.
    /// Attempt `done` ended (the result of an attempt that is no longer the running one, a
    /// cancelled attempt's late exit, is dropped).
    pub fn attempt_done(&mut self, now: Instant, done: u32, ok: bool, detail: String, out: &mut Vec<Output>) {
        let State::Running { attempt, since } = self.state else { return };
        if attempt != done {
            return;
        }
        if ok {
            self.last_fence_time = Some(now.saturating_since(since));
            self.confirm(now, detail, out);
            return;
        }
        let took = self.episode.map_or(Duration::ZERO, |e| now.saturating_since(e));
        self.last = Some(Last { ok: false, detail: detail.clone(), took, at: now });
        let retry_in = if self.peer_dead {
            let backoff = RETRY_MIN.saturating_mul(1u32 << (attempt.clamp(1, 6) - 1)).min(RETRY_MAX);
            self.state = State::Failed { attempt, retry_at: now + backoff };
            Some(backoff)
        } else {
            // An operator's attempt on a peer that is not dead: the answer is the error. A
            // retry would power the peer off later, unasked, once the device works again.
            self.state = State::Idle;
            self.episode = None;
            None
        };
        let repeated = self.last_error.as_deref() == Some(detail.as_str());
        self.last_error = retry_in.map(|_| detail.clone());
        out.push(Output::Event(Event::FenceFailed { attempt, detail: detail.clone(), repeated, retry_in }));
        for conn in self.waiting.drain(..) {
            out.push(Output::Reply { conn, code: ReplyCode::Failed, text: format!("fence failed: {detail}\n") });
        }
    }

    fn confirm(&mut self, now: Instant, detail: String, out: &mut Vec<Output>) {
        let took = self.episode.map_or(Duration::ZERO, |e| now.saturating_since(e));
        self.state = State::Confirmed { at: now };
        self.delay = None;
        self.confirmed_total += 1;
        self.last_error = None;
        self.last = Some(Last { ok: true, detail: detail.clone(), took, at: now });
        out.push(Output::Event(Event::FenceConfirmed { took, detail: detail.clone() }));
        for conn in self.waiting.drain(..) {
            let text = format!("peer fenced: {detail} ({} ms)\n", took.as_millis());
            out.push(Output::Reply { conn, code: ReplyCode::Ok, text });
        }
    }

    pub fn conn_gone(&mut self, conn: ConnId) {
        self.waiting.retain(|&c| c != conn);
    }

    pub fn poll_at(&self) -> Option<Instant> {
        let fence = match self.state {
            _ if self.blocked => None,
            State::Waiting { until } | State::WatchdogWait { until } => Some(until),
            State::Failed { retry_at, .. } => Some(retry_at),
            _ => None,
        };
        let check = match (self.state, self.check_running) {
            (State::Idle, None) => self.check_next,
            _ => None,
        };
        match (fence, check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn setup(method: Method, first_node: bool, wait_for_peer: bool) -> FenceSetup {
        FenceSetup {
            method,
            policy: FencePolicy {
                delay: Some(Duration::from_secs(2)),
                timeout: Duration::from_secs(30),
                check: None,
                wait_for_peer,
                required: method != Method::None,
            },
            first_node,
            keepalive: ms(100),
            default_fence_time: Duration::from_secs(1),
        }
    }

    /// The peer is declared dead at `now`, this node holding a group or not and the peer
    /// none, both settled (no settling window).
    fn dead(f: &mut Fencing, now: Instant, holds: bool, peer_delay: Option<Duration>, out: &mut Vec<Output>) {
        f.observe(now, Holdings { own: holds, peer: false }, Duration::ZERO);
        f.peer_dead(now, peer_delay, now, out);
    }

    fn fencing(method: Method, first_node: bool, wait_for_peer: bool) -> Fencing {
        Fencing::new(t(0), setup(method, first_node, wait_for_peer))
    }

    /// The attempt running now (0: none).
    fn running(f: &Fencing) -> u32 {
        match f.state() {
            State::Running { attempt, .. } => attempt,
            _ => 0,
        }
    }

    fn fences(out: &[Output]) -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Output::Fence { attempt } => Some(*attempt),
                _ => None,
            })
            .collect()
    }

    /// When a node that heard its peer and then declared it dead at 10 s starts its first
    /// attempt (ms after its verdict). `settled`: its holdings were last seen to change
    /// long before the settling window (1 s); else just before the verdict.
    fn slot(first_node: bool, own: bool, peer: bool, settled: bool) -> u64 {
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, first_node, true);
        f.peer_up(t(0), &mut out);
        let changed = if settled { t(5000) } else { t(9500) };
        // The other holdings first, so that the change is seen at `changed` in every case.
        f.observe(t(1000), Holdings { own: !own, peer: !peer }, ms(1000));
        f.observe(changed, Holdings { own, peer }, ms(1000));
        f.peer_dead(t(10_000), None, t(10_000), &mut out);
        f.tick(t(10_000), Allow::ALL, &mut out);
        if !fences(&out).is_empty() {
            return 0;
        }
        assert_eq!(f.gate(), Gate::Closed, "no takeover before the fence is confirmed");
        let at = f.poll_at().expect("an attempt is scheduled");
        f.tick(at - ms(1), Allow::ALL, &mut out);
        assert!(fences(&out).is_empty(), "not before its time");
        f.tick(at, Allow::ALL, &mut out);
        assert_eq!(fences(&out), [1]);
        (at - t(10_000)).as_millis() as u64
    }

    #[test]
    fn each_node_picks_its_own_delay_and_the_holder_goes_first() {
        // fence_delay 2s. Settled: the holder (else the first-named) at once, the other
        // after 1 s; unsettled: first-named 2 s, second-named 3 s.
        assert_eq!(slot(true, true, false, true), 0);
        assert_eq!(slot(false, false, true, true), 1000);
        assert_eq!(slot(false, true, false, true), 0);
        assert_eq!(slot(true, false, true, true), 1000);
        assert_eq!(slot(true, true, true, true), 0);
        assert_eq!(slot(false, true, true, true), 1000);
        assert_eq!(slot(true, false, false, true), 0);
        assert_eq!(slot(false, false, false, true), 1000);
        for (own, peer) in [(true, true), (true, false), (false, true), (false, false)] {
            assert_eq!(slot(true, own, peer, false), 2000);
            assert_eq!(slot(false, own, peer, false), 3000);
        }
        // Every pair the two nodes can pick, for every real holding: a node that settled sees
        // the peer's holding rightly when the peer settled too (the window covers the skew
        // between the verdicts), and may see anything when the peer's changed recently.
        let bools = [false, true];
        for (a_holds, b_holds) in [(true, true), (true, false), (false, true), (false, false)] {
            for (a_settled, b_settled) in [(true, true), (true, false), (false, true), (false, false)] {
                let a_views: &[bool] = if b_settled { &[b_holds] } else { &bools };
                let b_views: &[bool] = if a_settled { &[a_holds] } else { &bools };
                for &a_view in a_views {
                    for &b_view in b_views {
                        let a = slot(true, a_holds, a_view, a_settled);
                        let b = slot(false, b_holds, b_view, b_settled);
                        let case = format!("a holds {a_holds} sees {a_view} settled {a_settled}, b holds {b_holds} sees {b_view} settled {b_settled}: {a} / {b} ms");
                        assert!(a.abs_diff(b) >= 1000, "{case}");
                        if a_settled && b_settled && a_holds != b_holds {
                            assert_eq!(a < b, a_holds, "the holder first: {case}");
                        }
                    }
                }
            }
        }
        // Not before the peer was heard: unsettled.
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, true, false);
        f.observe(t(0), Holdings { own: true, peer: false }, ms(1000));
        f.peer_dead(t(10_000), None, t(10_000), &mut out);
        assert_eq!(f.poll_at(), Some(t(12_000)));
        // The peer's larger fence_delay counts.
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, false, true);
        f.peer_up(t(0), &mut out);
        dead(&mut f, t(0), false, Some(Duration::from_secs(5)), &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        assert_eq!(f.poll_at(), Some(t(2500)));
        assert_eq!(f.advertised_delay_ms(), Some(2000));
        assert_eq!(fencing(Method::Manual, true, true).advertised_delay_ms(), None);
    }

    #[test]
    fn the_automatic_delay_follows_the_measured_fence_time() {
        let mut s = setup(Method::Power, true, false);
        s.policy.delay = None;
        s.policy.check = Some(Duration::from_secs(60));
        let mut f = Fencing::new(t(0), s);
        // Nothing measured: the method's guess (1 s), plus a keepalive, four times.
        assert_eq!(f.fence_delay(), ms(4400));
        let mut out = Vec::new();
        f.tick(t(0), Allow::ALL, &mut out);
        assert_eq!(out, [Output::FenceCheck { id: 1 }]);
        out.clear();
        f.check_done(t(30), 1, true, "ipmi 203.0.113.12:623: power is on".into(), &mut out);
        assert!(matches!(&out[..], [Output::Event(Event::FenceCheck { ok: true, changed: true, .. })]), "{out:?}");
        assert_eq!(f.fence_time(), ms(60), "twice the check's time");
        assert_eq!(f.fence_delay(), ms(640));
        assert_eq!(f.poll_at(), Some(t(60_030)), "the next check");
        // A failed check is logged (once per change) and tried again sooner.
        out.clear();
        f.tick(t(60_030), Allow::ALL, &mut out);
        f.check_done(t(61_030), 2, false, "BMC: no answer".into(), &mut out);
        assert!(out.iter().any(|o| matches!(o, Output::Event(Event::FenceCheck { ok: false, changed: true, .. }))));
        assert_eq!(f.poll_at(), Some(t(71_030)));
        out.clear();
        f.tick(t(71_030), Allow::ALL, &mut out);
        f.check_done(t(72_030), 3, false, "BMC: no answer".into(), &mut out);
        assert!(out.iter().any(|o| matches!(o, Output::Event(Event::FenceCheck { ok: false, changed: false, .. }))));
        assert_eq!(f.fence_time(), ms(60), "failed checks do not count");
        // A confirmed fence's own time counts too.
        out.clear();
        f.peer_up(t(0), &mut out);
        dead(&mut f, t(80_000), true, None, &mut out);
        f.tick(t(80_000), Allow::ALL, &mut out);
        assert_eq!(fences(&out), [1]);
        f.attempt_done(t(80_200), running(&f), true, "off".into(), &mut out);
        assert_eq!(f.fence_time(), ms(200));
        // A stale check result (its child was killed for the attempt) is dropped.
        let before = f.last_check().cloned();
        f.check_done(t(80_300), 4, true, "late".into(), &mut out);
        assert_eq!(f.last_check().cloned(), before);
    }

    #[test]
    fn no_checks_while_fencing_or_without_a_power_method() {
        let mut s = setup(Method::Power, true, false);
        s.policy.check = Some(Duration::from_secs(60));
        let mut f = Fencing::new(t(0), s);
        let mut out = Vec::new();
        f.peer_up(t(0), &mut out);
        dead(&mut f, t(0), false, None, &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        assert!(!out.iter().any(|o| matches!(o, Output::FenceCheck { .. })), "{out:?}");
        s.method = Method::Manual;
        let mut m = Fencing::new(t(0), s);
        m.tick(t(0), Allow::ALL, &mut out);
        assert!(!out.iter().any(|o| matches!(o, Output::FenceCheck { .. })));
        assert_eq!(m.poll_at(), None);
    }

    #[test]
    fn failures_retry_with_backoff_and_confirmation_opens_the_gate() {
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, true, true);
        f.peer_up(t(0), &mut out);
        dead(&mut f, t(0), true, None, &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        let mut now = 0;
        let mut retries = Vec::new();
        for _ in 0..7 {
            out.clear();
            now += 50;
            f.attempt_done(t(now), running(&f), false, "BMC 203.0.113.12:623: no answer".into(), &mut out);
            let Some(at) = f.poll_at() else { panic!() };
            retries.push(at.saturating_since(t(now)).as_secs());
            let repeated: Vec<bool> = out
                .iter()
                .filter_map(|o| match o {
                    Output::Event(Event::FenceFailed { repeated, .. }) => Some(*repeated),
                    _ => None,
                })
                .collect();
            assert_eq!(repeated, [retries.len() > 1], "an error once per change, not per retry");
            now = at.as_millis();
            f.tick(t(now), Allow::ALL, &mut out);
        }
        assert_eq!(retries, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(f.gate(), Gate::Closed);
        out.clear();
        f.attempt_done(t(now + 20), running(&f), true, "power off confirmed".into(), &mut out);
        assert_eq!(f.gate(), Gate::Open);
        assert!(matches!(f.state(), State::Confirmed { .. }));
        assert!(f.last().unwrap().ok);
    }

    #[test]
    fn a_late_result_of_an_older_attempt_is_dropped() {
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, true, true);
        f.peer_up(t(0), &mut out);
        dead(&mut f, t(0), true, None, &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        f.attempt_done(t(10), 1, false, "no answer".into(), &mut out);
        f.tick(t(1010), Allow::ALL, &mut out);
        assert_eq!(f.state(), State::Running { attempt: 2, since: t(1010) });
        // Attempt 1's child, killed and reaped late, reports success: not attempt 2's.
        f.attempt_done(t(1020), 1, true, "late".into(), &mut out);
        assert_eq!(f.state(), State::Running { attempt: 2, since: t(1010) });
        f.attempt_done(t(1030), 2, true, "off".into(), &mut out);
        assert!(matches!(f.state(), State::Confirmed { .. }));
    }

    #[test]
    fn the_peer_heard_again_cancels() {
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, true, true);
        f.peer_up(t(0), &mut out);
        dead(&mut f, t(0), true, None, &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        out.clear();
        f.peer_up(t(0), &mut out);
        assert!(out.contains(&Output::CancelFence));
        assert_eq!(f.state(), State::Idle);
        // A late result of the cancelled attempt changes nothing.
        f.attempt_done(t(10), running(&f), true, "late".into(), &mut out);
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn no_fence_loop_and_manual_wait_for_an_operator() {
        let mut out = Vec::new();
        // Started, never heard the peer, initdead passed: neither fence nor take over.
        let mut f = fencing(Method::Power, true, true);
        dead(&mut f, t(0), false, None, &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        assert!(fences(&out).is_empty());
        assert_eq!(f.state(), State::Operator);
        assert_eq!(f.gate(), Gate::Closed);
        f.operator_confirms(t(10), 7, false, &mut out);
        assert_eq!(f.gate(), Gate::Open);
        // Without wait_for_peer it fences at initdead (here: first-named, holding nothing).
        out.clear();
        let mut f = fencing(Method::Power, true, false);
        dead(&mut f, t(0), false, None, &mut out);
        f.tick(t(0), Allow::ALL, &mut out);
        assert_eq!(f.poll_at(), Some(t(2000)));
        // Manual: an operator's confirmation is the only way.
        out.clear();
        let mut m = fencing(Method::Manual, true, true);
        m.peer_up(t(0), &mut out);
        dead(&mut m, t(0), true, None, &mut out);
        m.tick(t(0), Allow::ALL, &mut out);
        assert!(fences(&out).is_empty());
        assert_eq!(m.gate(), Gate::Closed);
        m.operator_confirms(t(5), 3, true, &mut out);
        assert_eq!(m.gate(), Gate::Closed, "refused while the peer is up");
        m.operator_confirms(t(6), 3, false, &mut out);
        assert_eq!(m.gate(), Gate::Open);
        // No method: takeover as today.
        let n = fencing(Method::None, true, false);
        assert_eq!(n.gate(), Gate::Open);
    }

    #[test]
    fn a_failed_operators_fence_of_a_live_peer_is_not_retried() {
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, true, true);
        f.peer_up(t(0), &mut out);
        f.operator_fence(t(0), 4, &mut out);
        assert_eq!(fences(&out), [1]);
        out.clear();
        f.attempt_done(t(40), running(&f), false, "BMC: wrong password".into(), &mut out);
        assert!(out.iter().any(|o| matches!(o, Output::Reply { conn: 4, code: ReplyCode::Failed, .. })), "{out:?}");
        assert!(out.iter().any(|o| matches!(o, Output::Event(Event::FenceFailed { retry_in: None, .. }))), "{out:?}");
        assert_eq!(f.state(), State::Idle);
        assert_eq!(f.poll_at(), None, "no retry");
        assert!(!f.last().unwrap().ok);
        // The same on a dead peer is retried (no takeover until it is fenced).
        dead(&mut f, t(100), false, None, &mut out);
        out.clear();
        f.operator_fence(t(200), 5, &mut out);
        f.attempt_done(t(240), running(&f), false, "BMC: wrong password".into(), &mut out);
        assert!(matches!(f.state(), State::Failed { attempt: 1, .. }), "{:?}", f.state());
        assert_eq!(f.poll_at(), Some(t(1240)));
    }

    #[test]
    fn an_operators_fence_is_answered_with_the_result() {
        let mut out = Vec::new();
        let mut f = fencing(Method::Power, true, true);
        f.operator_fence(t(0), 4, &mut out);
        assert_eq!(fences(&out), [1]);
        out.clear();
        f.attempt_done(t(40), running(&f), true, "power off confirmed".into(), &mut out);
        assert!(out.iter().any(|o| matches!(o, Output::Reply { conn: 4, code: ReplyCode::Ok, .. })), "{out:?}");
        // Without a power method it is refused at once.
        let mut m = fencing(Method::Manual, true, true);
        out.clear();
        m.operator_fence(t(0), 5, &mut out);
        assert!(matches!(&out[..], [Output::Reply { conn: 5, code: ReplyCode::Failed, .. }]));
    }
}
