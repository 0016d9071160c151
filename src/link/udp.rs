//! UDP heartbeat links: `ucast`, `bcast` and `mcast`, IPv4 and (ucast/mcast) IPv6.
//!
//! Every socket is non-blocking and close-on-exec, tied to its interface with
//! `SO_BINDTODEVICE` (a packet that reaches the port through another interface is not seen
//! by this link), and bound without `SO_REUSEADDR` or `SO_REUSEPORT` to the most specific
//! address it can have:
//! - `ucast`: this host's address on the interface in the peer's subnet (IPv6: the
//!   link-local address for a link-local peer), else, with a warning, the wildcard;
//!   datagrams from any other source address than the peer's are dropped and counted
//!   (`dropped`, `foreign`), with a rate-limited log line;
//! - `bcast`: the broadcast address it sends to (only broadcasts arrive);
//! - `mcast`: the group (only the group's datagrams arrive).
//!
//! Why no address sharing: with `SO_REUSEADDR` on our socket, any local process could bind
//! the same port with it too (a more specific address or device wins unicast delivery) and
//! take the peer's heartbeats. `SO_REUSEPORT` limits sharing to the same user, which would
//! keep others out, but it balances unicast datagrams between the sockets of the group,
//! and nothing here needs sharing: sockets on different interfaces never conflict, and a
//! ucast link owns its address. So a port is ours alone; a process that binds it first (a
//! port of 1024 or more needs no privilege, which check-config warns about) makes the
//! daemon fail to start, loudly, rather than miss heartbeats.
//!
//! What is left for `bcast`/`mcast`: the peer's address is not known, so any host on the
//! segment (or local process) may send to the broadcast address or group; such packets
//! fail authentication and are counted `bad`. Receiving heartbeats sent by broadcast or to a
//! group needs no privilege on any host of the segment; they are authenticated, not secret.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage,
};

use super::{Link, LinkError, LinkKind, LinkStats, RxClock};
use crate::config::LinkConfig;
use crate::logging::RateLimit;
use crate::sys::net as sysnet;
use crate::time::Instant;

/// Most datagrams one `recv` call reads, so a flood cannot starve the poll loop. They are
/// read [`sysnet::RECV_BATCH`] at a time (one `recvmmsg`), into buffers of
/// [`sysnet::RECV_BUF`] bytes: larger than the largest wire packet, so an oversized datagram
/// arrives with a wrong length and is rejected by the packet parser.
const RECV_BURST: usize = 256;

/// One UDP heartbeat medium.
pub struct UdpLink {
    name: String,
    fd: OwnedFd,
    dest: SockaddrStorage,
    /// ucast: the only source address accepted.
    peer: Option<IpAddr>,
    /// Where the socket is bound.
    local: SocketAddr,
    stats: LinkStats,
    rl_foreign: RateLimit,
    batch: Box<sysnet::RecvBatch>,
}

impl core::fmt::Debug for UdpLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UdpLink").field("name", &self.name).field("fd", &self.fd).field("dest", &self.dest).finish()
    }
}

fn open_err(what: impl Into<String>) -> impl FnOnce(Errno) -> LinkError {
    let what = what.into();
    move |errno| LinkError::Open { what, errno }
}

fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The IPv4 broadcast address of `iface`: its configured one (getifaddrs), else computed
/// from its address and netmask, else 255.255.255.255. An address added without `brd`
/// reports 0.0.0.0 or its own address as its broadcast: sending there would loop back to
/// this host.
fn broadcast_addr(iface: &str) -> Ipv4Addr {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Ipv4Addr::BROADCAST;
    };
    let mut computed = None;
    for ifa in addrs {
        if ifa.interface_name != iface {
            continue;
        }
        let addr = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()).map(|a| a.ip());
        // glibc fills the broadcast slot with the address itself when no `brd` is set.
        if let Some(b) = ifa.broadcast.as_ref().and_then(|b| b.as_sockaddr_in()).map(|b| b.ip()) {
            if !b.is_unspecified() && Some(b) != addr {
                return b;
            }
        }
        let mask = ifa.netmask.as_ref().and_then(|m| m.as_sockaddr_in()).map(|m| m.ip());
        if let (Some(a), Some(m), None) = (addr, mask, computed) {
            computed = Some(broadcast_of(a, m));
        }
    }
    computed.unwrap_or(Ipv4Addr::BROADCAST)
}

/// This host's address on `iface` whose subnet holds `peer` (for a link-local IPv6 peer:
/// the interface's link-local address).
fn local_addr_for(iface: &str, peer: IpAddr) -> Option<IpAddr> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if ifa.interface_name != iface {
            continue;
        }
        let (Some(a), Some(m)) = (ifa.address.as_ref(), ifa.netmask.as_ref()) else { continue };
        match peer {
            IpAddr::V4(p) => {
                let (Some(a), Some(m)) = (a.as_sockaddr_in(), m.as_sockaddr_in()) else { continue };
                let mask = u32::from(m.ip());
                if u32::from(a.ip()) & mask == u32::from(p) & mask {
                    return Some(IpAddr::V4(a.ip()));
                }
            }
            IpAddr::V6(p) => {
                let (Some(a), Some(m)) = (a.as_sockaddr_in6(), m.as_sockaddr_in6()) else { continue };
                let mask = u128::from(m.ip());
                let same = u128::from(a.ip()) & mask == u128::from(p) & mask;
                if same || (is_link_local_v6(&p) && is_link_local_v6(&a.ip())) {
                    return Some(IpAddr::V6(a.ip()));
                }
            }
        }
    }
    None
}

/// `addr | !netmask`; for a /31 or /32 (no broadcast address) the limited broadcast.
fn broadcast_of(addr: Ipv4Addr, mask: Ipv4Addr) -> Ipv4Addr {
    let (a, m) = (u32::from(addr), u32::from(mask));
    if m.leading_ones() >= 31 {
        return Ipv4Addr::BROADCAST;
    }
    Ipv4Addr::from(a | !m)
}

impl UdpLink {
    /// Opens the socket for a `ucast`, `bcast` or `mcast` link (`LinkConfig::Serial` is a
    /// `Config` error). Ports are already resolved by the config layer.
    pub fn open(cfg: &LinkConfig, name: String) -> Result<UdpLink, LinkError> {
        let (iface, v6, port) = match cfg {
            LinkConfig::Ucast { iface, peer, port } => (iface, peer.is_ipv6(), *port),
            LinkConfig::Bcast { iface, port } => (iface, false, *port),
            LinkConfig::Mcast { iface, group, port, .. } => {
                if !group.is_multicast() {
                    return Err(LinkError::Config(format!("{name}: {group} is not a multicast address")));
                }
                (iface, group.is_ipv6(), *port)
            }
            LinkConfig::Serial { .. } => {
                return Err(LinkError::Config(format!("{name}: not a UDP link")));
            }
        };
        let ifindex = nix::net::if_::if_nametoindex(iface.as_str()).map_err(open_err(format!("interface {iface}")))?;

        let family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
        let fd = socket(family, SockType::Datagram, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
            .map_err(open_err(format!("{name}: socket")))?;
        setsockopt(&fd, sockopt::BindToDevice, &OsString::from(iface.as_str()))
            .map_err(open_err(format!("{name}: SO_BINDTODEVICE {iface}")))?;
        if v6 {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(open_err(format!("{name}: IPV6_V6ONLY")))?;
        }
        let at = |a: IpAddr| match a {
            IpAddr::V4(a) => SocketAddr::V4(SocketAddrV4::new(a, port)),
            IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(
                a,
                port,
                0,
                if is_link_local_v6(&a) || a.is_multicast() { ifindex } else { 0 },
            )),
        };
        let wildcard = at(if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) });
        let local = match cfg {
            LinkConfig::Ucast { peer, .. } => local_addr_for(iface, *peer).map(at).unwrap_or_else(|| {
                log::warn!(
                    "{name}: no address of {iface} is in {peer}'s subnet; listening on every address of {iface} \
                     (datagrams from other sources than {peer} are still dropped)"
                );
                wildcard
            }),
            LinkConfig::Bcast { .. } => at(IpAddr::V4(broadcast_addr(iface))),
            LinkConfig::Mcast { group, .. } => at(*group),
            LinkConfig::Serial { .. } => wildcard,
        };
        bind(fd.as_raw_fd(), &SockaddrStorage::from(local)).map_err(open_err(format!("{name}: bind {local}")))?;
        // Each datagram carries its receive time: read late, it still counts from its arrival.
        sysnet::enable_rx_stamps(fd.as_fd()).map_err(open_err(format!("{name}: SO_TIMESTAMPNS")))?;

        let scoped_v6 =
            |a: Ipv6Addr, scope: bool| SocketAddr::V6(SocketAddrV6::new(a, port, 0, if scope { ifindex } else { 0 }));
        let dest: SocketAddr = match cfg {
            LinkConfig::Ucast { peer: IpAddr::V4(a), .. } => SocketAddr::V4(SocketAddrV4::new(*a, port)),
            LinkConfig::Ucast { peer: IpAddr::V6(a), .. } => scoped_v6(*a, is_link_local_v6(a)),
            LinkConfig::Bcast { .. } => {
                setsockopt(&fd, sockopt::Broadcast, &true).map_err(open_err(format!("{name}: SO_BROADCAST")))?;
                SocketAddr::V4(SocketAddrV4::new(broadcast_addr(iface), port))
            }
            LinkConfig::Mcast { group: IpAddr::V4(g), ttl, loop_, .. } => {
                sysnet::ip_add_membership(fd.as_fd(), *g, ifindex)
                    .map_err(open_err(format!("{name}: join {g} on {iface}")))?;
                sysnet::ip_multicast_if(fd.as_fd(), ifindex).map_err(open_err(format!("{name}: IP_MULTICAST_IF")))?;
                setsockopt(&fd, sockopt::IpMulticastTtl, ttl).map_err(open_err(format!("{name}: IP_MULTICAST_TTL")))?;
                setsockopt(&fd, sockopt::IpMulticastLoop, loop_)
                    .map_err(open_err(format!("{name}: IP_MULTICAST_LOOP")))?;
                // Only the groups this socket joined, not every group joined on the host.
                sysnet::setsockopt_int(fd.as_fd(), libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0)
                    .map_err(open_err(format!("{name}: IP_MULTICAST_ALL")))?;
                SocketAddr::V4(SocketAddrV4::new(*g, port))
            }
            LinkConfig::Mcast { group: IpAddr::V6(g), ttl, loop_, .. } => {
                sysnet::ipv6_add_membership(fd.as_fd(), *g, ifindex)
                    .map_err(open_err(format!("{name}: join {g} on {iface}")))?;
                sysnet::ipv6_multicast_if(fd.as_fd(), ifindex)
                    .map_err(open_err(format!("{name}: IPV6_MULTICAST_IF")))?;
                setsockopt(&fd, sockopt::Ipv6MulticastHops, &libc::c_int::from(*ttl))
                    .map_err(open_err(format!("{name}: IPV6_MULTICAST_HOPS")))?;
                sysnet::setsockopt_int(
                    fd.as_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_LOOP,
                    libc::c_int::from(*loop_),
                )
                .map_err(open_err(format!("{name}: IPV6_MULTICAST_LOOP")))?;
                sysnet::setsockopt_int(fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL, 0)
                    .map_err(open_err(format!("{name}: IPV6_MULTICAST_ALL")))?;
                scoped_v6(*g, true)
            }
            LinkConfig::Serial { .. } => {
                return Err(LinkError::Config(format!("{name}: not a UDP link")));
            }
        };
        let peer = match cfg {
            LinkConfig::Ucast { peer, .. } => Some(*peer),
            _ => None,
        };
        Ok(UdpLink {
            name,
            fd,
            dest: SockaddrStorage::from(dest),
            peer,
            local,
            stats: LinkStats::default(),
            rl_foreign: RateLimit::new(crate::time::Duration::from_secs(10), 5),
            batch: Box::new(sysnet::RecvBatch::new()),
        })
    }

    /// Where the socket is bound (address and port).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Where `send` goes (peer, broadcast address or group, with the port).
    pub fn destination(&self) -> Option<SocketAddr> {
        if let Some(a) = self.dest.as_sockaddr_in() {
            return Some(SocketAddr::V4(SocketAddrV4::new(a.ip(), a.port())));
        }
        self.dest
            .as_sockaddr_in6()
            .map(|a| SocketAddr::V6(SocketAddrV6::new(a.ip(), a.port(), a.flowinfo(), a.scope_id())))
    }
}

impl Link for UdpLink {
    fn kind(&self) -> LinkKind {
        LinkKind::Udp
    }
    fn name(&self) -> &str {
        &self.name
    }

    fn fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn send(&mut self, _now: Instant, pkt: &[u8]) -> Result<(), LinkError> {
        let mut tries = 0;
        loop {
            match sendto(self.fd.as_raw_fd(), pkt, &self.dest, MsgFlags::empty()) {
                Ok(_) => {
                    self.stats.tx += 1;
                    return Ok(());
                }
                Err(Errno::EINTR) if tries < 3 => tries += 1,
                Err(errno) => {
                    self.stats.tx_errors += 1;
                    return Err(LinkError::Io { op: "sendto", errno });
                }
            }
        }
    }

    fn recv(&mut self, now: Instant, on_packet: &mut dyn FnMut(&[u8])) -> Result<(), LinkError> {
        self.recv_timed(RxClock::at(now), &mut |p, _| on_packet(p))
    }

    fn recv_timed(&mut self, clock: RxClock, on_packet: &mut dyn FnMut(&[u8], Instant)) -> Result<(), LinkError> {
        let mut n_read = 0;
        let mut interrupted = 0;
        while n_read < RECV_BURST {
            let n = match self.batch.recv(self.fd.as_fd()) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) if interrupted < 3 => {
                    interrupted += 1;
                    continue;
                }
                // An ICMP error queued by an earlier send; the next read goes on.
                Err(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH) => {
                    n_read += 1;
                    continue;
                }
                Err(errno) => return Err(LinkError::Io { op: "recvmmsg", errno }),
            };
            n_read += n;
            for i in 0..n {
                let Some((bytes, d)) = self.batch.get(i) else { break };
                if let Some(peer) = self.peer {
                    if d.source != Some(peer) {
                        self.stats.dropped += 1;
                        self.stats.foreign += 1;
                        if let Some(s) = self.rl_foreign.allow(clock.now) {
                            let who = d.source.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
                            log::warn!(
                                "link {}: dropped a datagram from {who}, not the peer {peer} \
                                 ({s} similar messages suppressed)",
                                self.name
                            );
                        }
                        continue;
                    }
                }
                on_packet(bytes, clock.arrival(d.stamp_us));
            }
            // A short batch: the queue was empty; no need for a call that says so.
            if n < sysnet::RECV_BATCH {
                return Ok(());
            }
        }
        Ok(())
    }

    fn stats(&self) -> &LinkStats {
        &self.stats
    }

    fn stats_mut(&mut self) -> &mut LinkStats {
        &mut self.stats
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn broadcast_from_netmask() {
        use std::net::Ipv4Addr;
        assert_eq!(
            super::broadcast_of(Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(255, 255, 255, 0)),
            Ipv4Addr::new(198, 51, 100, 255)
        );
        assert_eq!(
            super::broadcast_of(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(255, 255, 255, 254)),
            Ipv4Addr::BROADCAST
        );
    }

    use super::*;

    #[test]
    fn serial_and_non_multicast_are_config_errors() {
        let e = UdpLink::open(
            &LinkConfig::Serial { device: "/dev/null".into(), baud: 9600, rtscts: false },
            "serial".into(),
        )
        .unwrap_err();
        assert!(matches!(e, LinkError::Config(_)));
        let e = UdpLink::open(
            &LinkConfig::Mcast {
                iface: "lo".into(),
                group: "192.0.2.1".parse().unwrap(),
                port: 694,
                ttl: 1,
                loop_: false,
            },
            "m".into(),
        )
        .unwrap_err();
        assert!(matches!(e, LinkError::Config(_)), "{e:?}");
    }

    #[test]
    fn missing_interface_is_open_error() {
        let e = UdpLink::open(&LinkConfig::Bcast { iface: "nosuchif0x".into(), port: 694 }, "b".into()).unwrap_err();
        assert!(matches!(e, LinkError::Open { errno: Errno::ENODEV, .. }), "{e:?}");
    }
}
