//! The `ip::ADDR/PREFIX[/IFACE[/LABEL]]` agent. (to be implemented)

use std::net::IpAddr;

/// What to announce after an address is added: the daemon sends one immediately and
/// the rest (`garp_count - 1`) every `garp_interval` from its timer wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    pub ifindex: u32,
    pub addr: IpAddr,
}
