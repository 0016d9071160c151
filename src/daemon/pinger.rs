//! The ping targets' echoes on raw ICMP sockets (one for IPv4, one for ICMPv6, opened only
//! when some target or probed address needs it). Non-blocking; the loop polls the sockets.
//! The core says what to send ([`super::io::Output::Ping`]); replies are matched by our
//! identifier, the target index in the payload and the source address.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage};

use crate::reach::icmp::{self, Echo};

/// Replies read per wakeup and socket, at most (the rest waits for the next poll).
const BATCH: usize = 32;

pub struct Pinger {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
    ident: u16,
    buf: Box<[u8; 1500]>,
}

impl Pinger {
    /// Opens the sockets the addresses need (none when the list is empty).
    pub fn open(addrs: &[IpAddr]) -> Result<Pinger, Errno> {
        let raw = |family, proto| {
            socket::socket(family, SockType::Raw, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, proto)
        };
        let v4 =
            if addrs.iter().any(IpAddr::is_ipv4) { Some(raw(AddressFamily::Inet, SockProtocol::Icmp)?) } else { None };
        let v6 = if addrs.iter().any(IpAddr::is_ipv6) {
            Some(raw(AddressFamily::Inet6, SockProtocol::IcmpV6)?)
        } else {
            None
        };
        // The low bits of the pid tell this daemon's echoes from other programs' on the host.
        let ident = (std::process::id() & 0xffff) as u16;
        Ok(Pinger { v4, v6, ident, buf: Box::new([0u8; 1500]) })
    }

    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.v4.iter().chain(self.v6.iter()).map(AsRawFd::as_raw_fd)
    }

    /// Sends echo `seq` for target `index` to `addr`.
    pub fn send(&self, addr: IpAddr, index: u16, seq: u16) -> Result<(), Errno> {
        let v6 = addr.is_ipv6();
        let fd = if v6 { &self.v6 } else { &self.v4 };
        let Some(fd) = fd else { return Err(Errno::EAFNOSUPPORT) };
        let pkt = icmp::request(Echo { ident: self.ident, seq, target: index }, v6);
        let to = SockaddrStorage::from(SocketAddr::new(addr, 0));
        socket::sendto(fd.as_raw_fd(), &pkt, &to, MsgFlags::MSG_DONTWAIT).map(|_| ())
    }

    /// Reads what is pending on `fd`; calls `f(source, echo)` for each of our replies.
    pub fn recv(&mut self, fd: RawFd, f: &mut dyn FnMut(IpAddr, Echo)) {
        let v6 = self.v6.as_ref().is_some_and(|s| s.as_raw_fd() == fd);
        for _ in 0..BATCH {
            let (n, from) = match socket::recvfrom::<SockaddrStorage>(fd, &mut self.buf[..]) {
                Ok(r) => r,
                Err(_) => return,
            };
            let Some(src) = from.and_then(|a| source(&a)) else { continue };
            let Some(e) = self.buf.get(..n).and_then(|p| icmp::parse_reply(p, v6)) else { continue };
            if e.ident == self.ident {
                f(src, e);
            }
        }
    }
}

fn source(a: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}
