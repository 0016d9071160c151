//! How late the loop sends its periodic heartbeats: for each one, `sent - due` in
//! microseconds, where `due` is the instant membership scheduled it for and `sent` the
//! instant the loop had handed it to every link. Kept as a fixed histogram with count, sum,
//! minimum and maximum; no allocation. Pure: the loop passes both instants.
//!
//! The loop sleeps until the deadline rounded up to the millisecond, so a healthy loop shows
//! delays under about a millisecond; anything that blocks it shows up here before the peer
//! ever finds it late.

use crate::time::Instant;

/// Upper bounds of the histogram's buckets, in microseconds (a last bucket holds the rest).
pub const BOUNDS_US: [u64; 12] = [100, 250, 500, 1_000, 1_500, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000];

/// The heartbeat delay histogram. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jitter {
    /// When the next periodic heartbeat is due (unknown before the first one is sent).
    due: Option<Instant>,
    /// `buckets[i]`: delays `<= BOUNDS_US[i]` and above the bound before it (not cumulative);
    /// the last one holds delays above every bound.
    buckets: [u64; BOUNDS_US.len() + 1],
    count: u64,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
    /// Heartbeats sent before their periodic time: announcements of a change, which restart
    /// the interval. Not measured.
    early: u64,
}

impl Jitter {
    /// A heartbeat went out at `sent`; `next_due` is when the next periodic one is due
    /// (read after this one was scheduled).
    pub fn sent(&mut self, sent: Instant, next_due: Instant) {
        if let Some(due) = self.due {
            if sent >= due {
                self.record(sent.saturating_since(due).as_micros() as u64);
            } else {
                self.early += 1;
            }
        }
        self.due = Some(next_due);
    }

    fn record(&mut self, us: u64) {
        let i = BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(BOUNDS_US.len());
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.min_us = if self.count == 0 { us } else { self.min_us.min(us) };
        self.max_us = self.max_us.max(us);
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Periodic heartbeats measured.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Sum of their delays, µs.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }
    /// Smallest delay, µs (0 before the first).
    pub fn min_us(&self) -> u64 {
        self.min_us
    }
    /// Largest delay, µs.
    pub fn max_us(&self) -> u64 {
        self.max_us
    }
    /// Mean delay, µs (0 before the first).
    pub fn avg_us(&self) -> u64 {
        self.sum_us.checked_div(self.count).unwrap_or(0)
    }
    /// Heartbeats sent early (announcements), not measured.
    pub fn early(&self) -> u64 {
        self.early
    }
    /// `(upper bound µs, cumulative count)` for every bound, then `(None, count)` for the rest.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let mut acc = 0u64;
        self.buckets.iter().enumerate().map(move |(i, &n)| {
            acc += n;
            (BOUNDS_US.get(i).copied(), acc)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(us: u64) -> Instant {
        Instant::from_micros(us)
    }

    #[test]
    fn periodic_heartbeats_are_measured_announcements_are_not() {
        let mut j = Jitter::default();
        j.sent(t(0), t(100_000)); // the first: nothing was due yet
        assert_eq!(j.count(), 0);
        j.sent(t(100_300), t(200_000));
        j.sent(t(200_900), t(300_000));
        // An announcement at 250ms restarts the interval: due 350ms.
        j.sent(t(250_000), t(350_000));
        assert_eq!(j.early(), 1);
        j.sent(t(352_000), t(450_000));
        assert_eq!(j.count(), 3);
        assert_eq!((j.min_us(), j.max_us(), j.sum_us()), (300, 2_000, 3_200));
        assert_eq!(j.avg_us(), 1_066);
        let c: Vec<_> = j.cumulative().collect();
        assert_eq!(c.len(), BOUNDS_US.len() + 1);
        assert_eq!(c[0], (Some(100), 0));
        assert_eq!(c[2], (Some(500), 1), "300µs");
        assert_eq!(c[3], (Some(1_000), 2), "900µs");
        assert_eq!(c[5], (Some(2_000), 3), "2000µs is in the 2ms bucket");
        assert_eq!(*c.last().unwrap(), (None, 3));
    }

    #[test]
    fn an_overslept_loop_lands_in_the_last_bucket() {
        let mut j = Jitter::default();
        j.sent(t(0), t(100_000));
        j.sent(t(2_100_000), t(2_200_000));
        assert_eq!(j.max_us(), 2_000_000);
        let c: Vec<_> = j.cumulative().collect();
        assert_eq!(c[BOUNDS_US.len() - 1].1, 0);
        assert_eq!(c[BOUNDS_US.len()], (None, 1));
    }
}
