//! Heartbeat links: `udp.rs` (ucast/bcast/mcast) and `serial.rs` (null-modem, framed).
//! Every link carries the same authenticated wire packets.

pub mod frame;
pub mod serial;
pub mod udp;

use core::fmt;
use std::os::fd::RawFd;

use crate::time::Instant;

/// Counters shown by `tandem status` for every link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub tx: u64,
    pub tx_errors: u64,
    /// Authenticated packets accepted from the peer.
    pub rx: u64,
    /// Well-formed, authenticated packets dropped (replay, old generation, our own loopback).
    pub dropped: u64,
    /// Packets that failed to parse or authenticate (garbage, wrong key, other cluster).
    pub bad: u64,
    /// UDP `ucast`: datagrams from another source address than the peer's (also in `dropped`).
    pub foreign: u64,
    // serial-only (zero for UDP):
    pub bad_crc: u64,
    pub resyncs: u64,
    pub overruns: u64,
    /// Frames dropped from the bounded output queue because the line was too slow.
    pub tx_dropped: u64,
}

#[derive(Debug)]
pub enum LinkError {
    /// Socket/device setup failed (errno kept).
    Open {
        what: String,
        errno: nix::errno::Errno,
    },
    Io {
        op: &'static str,
        errno: nix::errno::Errno,
    },
    /// The serial line is held by another process.
    Locked {
        device: String,
        pid: u32,
    },
    Config(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Open { what, errno } => write!(f, "cannot open {what}: {}", errno.desc()),
            LinkError::Io { op, errno } => write!(f, "{op}: {}", errno.desc()),
            LinkError::Locked { device, pid } => write!(f, "{device} is in use by process {pid}"),
            LinkError::Config(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for LinkError {}

/// What medium a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Udp,
    Serial,
}

/// The clock a batch of received packets is timed by: when each one arrived, from the
/// kernel's receive stamp where the medium has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxClock {
    /// The loop's current time.
    pub now: Instant,
    /// The loop's previous wakeup: every packet still queued arrived after it (the links
    /// were drained then, or polled since).
    pub since: Instant,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC at `now`, in microseconds.
    pub realtime_offset_us: i64,
}

impl RxClock {
    /// A clock without receive stamps: everything arrives `now`.
    pub fn at(now: Instant) -> RxClock {
        RxClock { now, since: now, realtime_offset_us: 0 }
    }

    /// When a packet with the kernel's receive stamp `stamp_us` (CLOCK_REALTIME, µs)
    /// arrived: between `since` and `now`, whatever the realtime clock did meanwhile (a step
    /// of the clock cannot make a packet older than the last time the link was read).
    pub fn arrival(&self, stamp_us: Option<u64>) -> Instant {
        let Some(stamp) = stamp_us.and_then(|s| i64::try_from(s).ok()) else {
            return self.now;
        };
        let mono = stamp.saturating_sub(self.realtime_offset_us);
        let t = Instant::from_micros(u64::try_from(mono).unwrap_or(0));
        t.clamp(self.since.min(self.now), self.now)
    }
}

/// One heartbeat medium. Driven only by the daemon's poll loop; never blocks.
pub trait Link {
    /// Name shown in status, e.g. `ucast veth0 192.0.2.2`.
    fn name(&self) -> &str;
    fn kind(&self) -> LinkKind;
    /// The fd to poll for input, or `None` while the medium is unavailable (serial device gone).
    fn fd(&self) -> Option<RawFd>;
    /// Whether the loop should also poll for POLLOUT (a non-empty output queue).
    fn wants_write(&self) -> bool {
        false
    }
    /// Send one wire packet (the link adds its own framing). Never blocks; may queue or drop.
    fn send(&mut self, now: Instant, pkt: &[u8]) -> Result<(), LinkError>;
    /// Read everything available without blocking; call `on_packet` once per received packet
    /// (framing already removed). Framing-level garbage is counted in `stats`, not returned.
    fn recv(&mut self, now: Instant, on_packet: &mut dyn FnMut(&[u8])) -> Result<(), LinkError>;
    /// Like [`Link::recv`], with each packet's arrival time ([`RxClock::arrival`]); a medium
    /// without receive stamps gives `clock.now`.
    fn recv_timed(&mut self, clock: RxClock, on_packet: &mut dyn FnMut(&[u8], Instant)) -> Result<(), LinkError> {
        self.recv(clock.now, &mut |p| on_packet(p, clock.now))
    }
    /// Called when POLLOUT is ready.
    fn on_writable(&mut self, _now: Instant) {}
    /// Next time the link needs [`Link::on_timer`] (serial reopen backoff), if any.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
    fn on_timer(&mut self, _now: Instant) {}
    fn stats(&self) -> &LinkStats;
    fn stats_mut(&mut self) -> &mut LinkStats;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_times_come_from_the_stamp_within_the_wakeup() {
        let c = RxClock {
            now: Instant::from_millis(1_000),
            since: Instant::from_millis(990),
            realtime_offset_us: 1_700_000_000_000_000,
        };
        let real = |mono_ms: u64| Some(1_700_000_000_000_000 + mono_ms * 1000);
        assert_eq!(c.arrival(real(995)), Instant::from_millis(995));
        assert_eq!(c.arrival(None), c.now, "no stamp: now");
        assert_eq!(c.arrival(real(1_005)), c.now, "never after now");
        assert_eq!(c.arrival(real(10)), c.since, "a realtime step forward cannot age a packet past the last read");
        assert_eq!(c.arrival(Some(0)), c.since);
        assert_eq!(RxClock::at(c.now).arrival(real(995)), c.now);
    }
}
