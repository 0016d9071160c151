//! Membership: is the peer alive, and on which links? A pure state machine:
//! no clock reads, no fds. `handle(now, event) -> Actions`, `poll_at()`.
//! (implementation to come; see the API in the issue brief)
