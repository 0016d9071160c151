//! Reliable delivery, heartbeat style: the sequence numbers we have seen from the peer (and
//! the gaps we ask it to fill), and the history of what we sent (to answer its requests).

use std::collections::VecDeque;

use crate::time::Instant;

/// Most missing sequence numbers remembered at once (heartbeat: 500); when full, the lowest
/// is forgotten.
pub const MAX_MISSING: usize = 64;
/// A jump larger than this is not a gap but a reason to start over (heartbeat's flow-control
/// limit, half its 500-message history).
pub const RESET_GAP: u64 = 250;
/// heartbeat acknowledges every tenth sequence number (those with `seq % 10 == trigger`).
pub const ACK_DIV: u64 = 10;

/// One sequence number we are waiting for, and when we next ask for it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    pub seq: u64,
    /// `None`: no more requests (heartbeat stops asking a peer that is not up).
    pub next_request: Option<Instant>,
}

/// What we know of the peer's numbering.
#[derive(Debug, Clone, Default)]
pub struct SeqTrack {
    /// The peer's generation (`hg`); 0 until its first status message.
    pub generation: u64,
    /// The highest `seq` accepted so far.
    pub last_seq: Option<u64>,
    pub missing: Vec<Missing>,
    /// The lowest missing number, 0 when none (heartbeat's `first_missing_seq`).
    pub first_missing: u64,
}

impl SeqTrack {
    /// Forgets everything but the generation (heartbeat's `reset_seqtrack`).
    pub fn reset(&mut self) {
        self.last_seq = None;
        self.missing.clear();
        self.first_missing = 0;
    }

    /// Records `from..=to` as missing, each first requested at `at(seq)`.
    pub fn add_missing(&mut self, from: u64, to: u64, mut at: impl FnMut(u64) -> Instant) {
        if self.first_missing == 0 || self.first_missing > from {
            self.first_missing = from;
        }
        let mut s = from;
        while s <= to {
            let m = Missing { seq: s, next_request: Some(at(s)) };
            if self.missing.len() < MAX_MISSING {
                self.missing.push(m);
            } else if let Some(low) = self.missing.iter_mut().min_by_key(|m| m.seq) {
                *low = m;
            }
            s += 1;
        }
    }

    #[cfg(test)]
    pub fn is_missing(&self, seq: u64) -> bool {
        self.missing.iter().any(|m| m.seq == seq)
    }

    /// Removes `seq` from the missing set (heartbeat's `is_lost_packet`). Returns whether it
    /// was missing, and, when it was the lowest missing number while others remain, the
    /// number heartbeat would now acknowledge (if any).
    pub fn found(&mut self, seq: u64, ack_trigger: u64) -> (bool, Option<u64>) {
        let Some(i) = self.missing.iter().position(|m| m.seq == seq) else {
            return (false, None);
        };
        self.missing.swap_remove(i);
        if self.missing.is_empty() {
            // heartbeat clears the lowest missing number before it looks at it, so the last
            // gap filled never triggers the acknowledgement below.
            self.first_missing = 0;
        }
        if seq != self.first_missing {
            return (true, None);
        }
        let old = self.first_missing;
        self.first_missing = self.missing.iter().map(|m| m.seq).min().unwrap_or(0);
        let upto = if self.first_missing == 0 { self.last_seq.unwrap_or(0) } else { self.first_missing - 1 };
        let x = upto % ACK_DIV;
        let base = upto / ACK_DIV;
        let ack = if x >= ack_trigger {
            Some(base * ACK_DIV + ack_trigger)
        } else {
            base.checked_sub(1).map(|b| b * ACK_DIV + ack_trigger)
        };
        (true, ack.filter(|&a| a >= old))
    }

    /// Would heartbeat acknowledge `seq` now?
    pub fn wants_ack(&self, seq: u64, ack_trigger: u64) -> bool {
        !(self.first_missing != 0 && seq > self.first_missing) && seq % ACK_DIV == ack_trigger
    }
}

/// One message we sent with a sequence number.
#[derive(Debug, Clone)]
pub struct Sent {
    pub seq: u64,
    /// The netstring frame as sent (trailer included).
    pub frame: Vec<u8>,
    pub last_rexmit: Option<Instant>,
}

/// What we sent, for retransmission: a bounded ring. Entries the peer has acknowledged are
/// dropped early.
#[derive(Debug, Clone)]
pub struct History {
    ring: VecDeque<Sent>,
    cap: usize,
    /// Everything up to this number is gone (heartbeat's `lowseq`).
    pub low: u64,
    /// The highest number sent (heartbeat's `hiseq`).
    pub high: u64,
}

impl History {
    pub fn new(cap: usize) -> History {
        let cap = cap.max(1);
        History { ring: VecDeque::with_capacity(cap), cap, low: 0, high: 0 }
    }

    pub fn push(&mut self, seq: u64, frame: Vec<u8>) {
        if self.ring.len() >= self.cap {
            if let Some(old) = self.ring.pop_front() {
                self.low = old.seq;
            }
        }
        self.high = seq;
        self.ring.push_back(Sent { seq, frame, last_rexmit: None });
    }

    /// Drops entries up to and including `acked`.
    pub fn acked(&mut self, acked: u64) {
        while self.ring.front().is_some_and(|s| s.seq <= acked) {
            if let Some(old) = self.ring.pop_front() {
                self.low = old.seq;
            }
        }
    }

    pub fn get_mut(&mut self, seq: u64) -> Option<&mut Sent> {
        self.ring.iter_mut().find(|s| s.seq == seq)
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.ring.iter().map(|s| s.frame.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_the_acknowledgement_after_the_first_is_filled() {
        let mut t = SeqTrack { last_seq: Some(20), ..Default::default() };
        t.add_missing(21, 23, |_| Instant::ZERO);
        t.last_seq = Some(24);
        assert_eq!(t.first_missing, 21);
        assert!(!t.wants_ack(26, 6), "beyond the first gap: no ack");
        assert!(t.wants_ack(16, 6));
        // 21 arrives: the lowest missing is now 22, ack the highest trigger below it.
        assert_eq!(t.found(21, 6), (true, None), "16 < old first missing 21");
        assert_eq!(t.first_missing, 22);
        assert_eq!(t.found(22, 2), (true, Some(22)));
        assert_eq!(t.found(99, 1), (false, None));
        // The last one clears first_missing before the check: no ack.
        assert_eq!(t.found(23, 3), (true, None));
        assert_eq!(t.first_missing, 0);
    }

    #[test]
    fn missing_set_is_bounded() {
        let mut t = SeqTrack::default();
        t.add_missing(1, 200, |_| Instant::ZERO);
        assert_eq!(t.missing.len(), MAX_MISSING);
        assert!(t.is_missing(200) && !t.is_missing(1));
    }

    #[test]
    fn history_is_bounded_and_forgets_acked_entries() {
        let mut h = History::new(3);
        for s in 1..=5 {
            h.push(s, vec![s as u8]);
        }
        assert_eq!((h.len(), h.low, h.high), (3, 2, 5));
        assert!(h.get_mut(2).is_none() && h.get_mut(3).is_some());
        h.acked(4);
        assert_eq!((h.len(), h.low), (1, 4));
    }
}
