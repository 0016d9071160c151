//! Monotonic time as a newtype. Only the daemon loop calls [`now`]; state
//! machines receive the time as an argument so they can be tested with a fake clock.

use core::ops::{Add, Sub};
pub use core::time::Duration;

/// A point on CLOCK_MONOTONIC, in microseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    us: u64,
}

impl Instant {
    pub const ZERO: Instant = Instant { us: 0 };

    pub const fn from_micros(us: u64) -> Instant {
        Instant { us }
    }
    pub const fn from_millis(ms: u64) -> Instant {
        Instant { us: ms.saturating_mul(1000) }
    }
    pub const fn as_micros(self) -> u64 {
        self.us
    }
    pub const fn as_millis(self) -> u64 {
        self.us / 1000
    }
    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.us.saturating_sub(earlier.us))
    }
    /// Milliseconds from `self` until `deadline`, rounded **up**, for poll(2).
    pub fn millis_until_ceil(self, deadline: Instant) -> u64 {
        let d = deadline.us.saturating_sub(self.us);
        d.div_ceil(1000)
    }
}

fn dur_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant { us: self.us.saturating_add(dur_us(d)) }
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant { us: self.us.saturating_sub(dur_us(d)) }
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, o: Instant) -> Duration {
        self.saturating_since(o)
    }
}

/// The current CLOCK_MONOTONIC time. Call only from the daemon loop and CLI code.
pub fn now() -> Instant {
    Instant::from_micros(crate::sys::monotonic_micros())
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in microseconds, read back to back: what turns
/// the kernel's receive stamps (CLOCK_REALTIME) into [`Instant`]s. Read with [`now`].
pub fn realtime_offset_us() -> i64 {
    let real = i64::try_from(crate::sys::realtime_micros()).unwrap_or(i64::MAX);
    let mono = i64::try_from(crate::sys::monotonic_micros()).unwrap_or(0);
    real.saturating_sub(mono)
}

/// Formats a duration the way the config writes it: `1500ms`, `2s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn arithmetic_saturates_and_rounds_up() {
        let a = Instant::from_millis(10);
        assert_eq!(a + Duration::from_millis(5), Instant::from_millis(15));
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(a - Instant::from_millis(20), Duration::ZERO);
        assert_eq!(a.millis_until_ceil(Instant::from_micros(10_001)), 1);
        assert_eq!(a.millis_until_ceil(Instant::from_micros(10_000)), 0);
        assert_eq!(a.millis_until_ceil(Instant::ZERO), 0);
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2s");
    }
}
