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
