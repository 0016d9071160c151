//! Membership: is the peer alive, and on which links? A pure state machine:
//! no clock reads, no fds. `handle(now, event) -> Actions`, `poll_at()`.
//!
//! SHARED TYPES: [`PeerState`], [`Timing`].

use crate::time::Duration;

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

/// The four timers of INTERFACE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub keepalive: Duration,
    pub warntime: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
}
