//! Reachability of the ping targets (`ping ADDR …`): which targets answered lately, as pure
//! bookkeeping with the time passed in. The daemon's loop sends the echoes and reads the
//! replies on raw ICMP sockets ([`icmp`] builds and parses them); this module says when to
//! send, and what the answers mean: a target is up while it has answered within
//! `ping_deadtime`.

pub mod icmp;

use std::net::IpAddr;

use crate::time::{Duration, Instant};

/// One target's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub addr: IpAddr,
    pub last_reply: Option<Instant>,
    /// Round-trip time of the last reply.
    pub rtt: Option<Duration>,
    /// When the last request went out, and its sequence number.
    sent: Option<(Instant, u16)>,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Targets {
    targets: Vec<Target>,
    interval: Duration,
    deadtime: Duration,
    started: Instant,
    next_send: Instant,
    seq: u16,
}

impl Targets {
    pub fn new(now: Instant, addrs: &[IpAddr], interval: Duration, deadtime: Duration) -> Targets {
        Targets {
            targets: addrs.iter().map(|&addr| Target { addr, last_reply: None, rtt: None, sent: None }).collect(),
            interval,
            deadtime,
            started: now,
            next_send: now,
            seq: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn deadtime(&self) -> Duration {
        self.deadtime
    }

    /// Targets that answered within `ping_deadtime`.
    pub fn count(&self, now: Instant) -> usize {
        self.targets.iter().filter(|t| self.is_up(t, now)).count()
    }

    pub fn is_up(&self, t: &Target, now: Instant) -> bool {
        t.last_reply.is_some_and(|r| now.saturating_since(r) <= self.deadtime)
    }

    /// The count means something: `ping_deadtime` has passed since the start, or every
    /// target has answered. Before that a target that has not answered yet is not down.
    pub fn known(&self, now: Instant) -> bool {
        now.saturating_since(self.started) >= self.deadtime || self.targets.iter().all(|t| t.last_reply.is_some())
    }

    /// Some target answered after `t`: proof that this node reaches its clients' network now.
    pub fn answered_since(&self, t: Instant) -> bool {
        self.targets.iter().any(|x| x.last_reply.is_some_and(|r| r > t))
    }

    /// Sends every `ping_interval`, or at once after [`Targets::probe_now`].
    pub fn poll_at(&self) -> Option<Instant> {
        (!self.targets.is_empty()).then_some(self.next_send)
    }

    /// The next round is due now (e.g. the peer was just declared dead: the proof of
    /// reachability must be fresh).
    pub fn probe_now(&mut self, now: Instant) {
        self.next_send = self.next_send.min(now);
    }

    /// When a round is due: the (target index, sequence number) of each echo to send.
    pub fn due(&mut self, now: Instant, out: &mut Vec<(usize, u16)>) {
        if self.targets.is_empty() || now < self.next_send {
            return;
        }
        self.seq = self.seq.wrapping_add(1);
        for (i, t) in self.targets.iter_mut().enumerate() {
            t.sent = Some((now, self.seq));
            out.push((i, self.seq));
        }
        self.next_send = now + self.interval;
    }

    /// A reply to the echo `seq` of target `i` arrived.
    pub fn reply(&mut self, now: Instant, i: usize, seq: u16) {
        let Some(t) = self.targets.get_mut(i) else { return };
        t.last_reply = Some(now);
        t.rtt = match t.sent {
            Some((at, s)) if s == seq => Some(now.saturating_since(at)),
            _ => t.rtt,
        };
    }

    /// The target an echo reply's source address belongs to.
    pub fn index_of(&self, addr: IpAddr) -> Option<usize> {
        self.targets.iter().position(|t| t.addr == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn addrs() -> Vec<IpAddr> {
        vec!["192.0.2.200".parse().unwrap(), "2001:db8::c8".parse().unwrap()]
    }

    #[test]
    fn rounds_replies_count_and_deadtime() {
        let mut r = Targets::new(t(0), &addrs(), Duration::from_millis(500), Duration::from_secs(2));
        let mut out = Vec::new();
        r.due(t(0), &mut out);
        assert_eq!(out, [(0, 1), (1, 1)]);
        assert_eq!(r.poll_at(), Some(t(500)));
        assert!(!r.known(t(100)), "not known before deadtime or all answered");
        r.reply(t(3), 0, 1);
        assert_eq!(r.targets()[0].rtt, Some(Duration::from_millis(3)));
        assert_eq!(r.count(t(3)), 1);
        assert!(!r.known(t(3)));
        r.reply(t(4), 1, 1);
        assert!(r.known(t(4)));
        assert_eq!(r.count(t(2003)), 2);
        assert_eq!(r.count(t(2004)), 1, "target 0 silent for more than ping_deadtime");
        assert_eq!(r.count(t(2005)), 0);
        assert!(r.answered_since(t(3)) && !r.answered_since(t(4)));
        // A late reply to an older round still counts as an answer, without an RTT.
        out.clear();
        r.due(t(500), &mut out);
        r.reply(t(600), 0, 1);
        assert_eq!(r.targets()[0].last_reply, Some(t(600)));
        assert_eq!(r.targets()[0].rtt, Some(Duration::from_millis(3)));
        // An extra round on demand.
        r.probe_now(t(700));
        assert_eq!(r.poll_at(), Some(t(700)));
        out.clear();
        r.due(t(700), &mut out);
        assert_eq!(out, [(0, 3), (1, 3)]);
        assert_eq!(r.index_of("2001:db8::c8".parse().unwrap()), Some(1));
    }

    #[test]
    fn no_targets_no_rounds() {
        let mut r = Targets::new(t(0), &[], Duration::from_secs(1), Duration::from_secs(5));
        let mut out = Vec::new();
        r.due(t(0), &mut out);
        assert!(out.is_empty() && r.poll_at().is_none() && r.is_empty());
    }
}
