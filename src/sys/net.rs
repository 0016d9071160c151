//! Socket calls that nix 0.29 does not wrap (well): multicast by interface index, and
//! batched receives with the kernel's receive stamps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `setsockopt(fd, level, name, &value, sizeof value)`.
fn setsockopt_raw<T: Copy>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: &T) -> Result<(), Errno> {
    let len = libc::socklen_t::try_from(core::mem::size_of::<T>()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `fd` is a live descriptor for the borrow's duration; `value` points to a
    // properly initialised `T` of exactly `len` bytes that the kernel only reads.
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    Errno::result(rc).map(drop)
}

/// An integer-valued socket option.
pub fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<(), Errno> {
    setsockopt_raw(fd, level, name, &value)
}

fn mreqn(group: Ipv4Addr, ifindex: u32) -> Result<libc::ip_mreqn, Errno> {
    Ok(libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: u32::from(group).to_be() },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: libc::c_int::try_from(ifindex).map_err(|_| Errno::EINVAL)?,
    })
}

/// `IP_ADD_MEMBERSHIP` with an `ip_mreqn`: join `group` on the interface `ifindex`.
pub fn ip_add_membership(fd: BorrowedFd<'_>, group: Ipv4Addr, ifindex: u32) -> Result<(), Errno> {
    setsockopt_raw(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreqn(group, ifindex)?)
}

/// `IP_MULTICAST_IF` with an `ip_mreqn`: send multicast out of `ifindex`.
pub fn ip_multicast_if(fd: BorrowedFd<'_>, ifindex: u32) -> Result<(), Errno> {
    setsockopt_raw(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn(Ipv4Addr::UNSPECIFIED, ifindex)?)
}

/// `IPV6_ADD_MEMBERSHIP` (= `IPV6_JOIN_GROUP`): join `group` on `ifindex`.
pub fn ipv6_add_membership(fd: BorrowedFd<'_>, group: Ipv6Addr, ifindex: u32) -> Result<(), Errno> {
    let req =
        libc::ipv6_mreq { ipv6mr_multiaddr: libc::in6_addr { s6_addr: group.octets() }, ipv6mr_interface: ifindex };
    setsockopt_raw(fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &req)
}

/// `IPV6_MULTICAST_IF`: send multicast out of `ifindex`.
pub fn ipv6_multicast_if(fd: BorrowedFd<'_>, ifindex: u32) -> Result<(), Errno> {
    let idx = libc::c_int::try_from(ifindex).map_err(|_| Errno::EINVAL)?;
    setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, idx)
}

/// Most datagrams one [`RecvBatch::recv`] call takes.
pub const RECV_BATCH: usize = 8;
/// Each datagram buffer of a [`RecvBatch`]; a longer datagram is cut to this length.
pub const RECV_BUF: usize = 2048;
/// Room for the control messages of one datagram (the receive stamp is 32 bytes with its header).
const CMSG_WORDS: usize = 8;

/// What the kernel said about one datagram of a [`RecvBatch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes received (at most [`RECV_BUF`]).
    pub len: usize,
    /// The sender's address (an IPv4-mapped IPv6 sender as IPv4).
    pub source: Option<IpAddr>,
    /// When the kernel received it (`SO_TIMESTAMPNS`, CLOCK_REALTIME), in microseconds since the epoch.
    pub stamp_us: Option<u64>,
}

/// Buffers for reading up to [`RECV_BATCH`] datagrams with one `recvmmsg(2)`, with the
/// sender's address and the kernel's receive stamp of each. Allocated once.
pub struct RecvBatch {
    bufs: Box<[[u8; RECV_BUF]; RECV_BATCH]>,
    addrs: [libc::sockaddr_storage; RECV_BATCH],
    cmsgs: [[u64; CMSG_WORDS]; RECV_BATCH],
    got: [Datagram; RECV_BATCH],
    n: usize,
}

impl core::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBatch").field("n", &self.n).finish()
    }
}

impl Default for RecvBatch {
    fn default() -> RecvBatch {
        RecvBatch::new()
    }
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid (AF_UNSPEC) value.
        let storage: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        RecvBatch {
            bufs: Box::new([[0u8; RECV_BUF]; RECV_BATCH]),
            addrs: [storage; RECV_BATCH],
            cmsgs: [[0u64; CMSG_WORDS]; RECV_BATCH],
            got: [Datagram::default(); RECV_BATCH],
            n: 0,
        }
    }

    /// Reads what is queued on `fd`, up to [`RECV_BATCH`] datagrams, without blocking:
    /// `Ok(n)` with `n >= 1`, or the errno (`EAGAIN`: nothing queued). Fewer than
    /// [`RECV_BATCH`] means the queue was empty when the call returned.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> Result<usize, Errno> {
        self.n = 0;
        // SAFETY: iovec and mmsghdr are plain old data; all zeroes is valid (null pointers,
        // zero lengths), and every pointer the kernel uses is set below.
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; RECV_BATCH] = unsafe { core::mem::zeroed() };
        let name_len = libc::socklen_t::try_from(core::mem::size_of::<libc::sockaddr_storage>()).unwrap_or(0);
        for ((iov, hdr), (buf, (addr, cmsg))) in iovs
            .iter_mut()
            .zip(hdrs.iter_mut())
            .zip(self.bufs.iter_mut().zip(self.addrs.iter_mut().zip(self.cmsgs.iter_mut())))
        {
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = buf.len();
            hdr.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = name_len;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_control = cmsg.as_mut_ptr().cast();
            hdr.msg_hdr.msg_controllen = core::mem::size_of_val(cmsg);
        }
        let vlen = libc::c_uint::try_from(RECV_BATCH).unwrap_or(1);
        // SAFETY: `hdrs` holds RECV_BATCH headers whose name, iovec and control pointers
        // point into buffers of `self` and `iovs`, all alive and exclusively borrowed for the
        // call, each with its true length; the timeout pointer may be null.
        let rc = unsafe {
            libc::recvmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), vlen, libc::MSG_DONTWAIT, core::ptr::null_mut())
        };
        if rc < 0 {
            return Err(Errno::last());
        }
        let n = usize::try_from(rc).unwrap_or(0).min(RECV_BATCH);
        for (k, hdr) in hdrs.iter().enumerate().take(n) {
            let len = usize::try_from(hdr.msg_len).unwrap_or(0).min(RECV_BUF);
            let source = self.addrs.get(k).and_then(|a| source_of(a, hdr.msg_hdr.msg_namelen));
            let stamp_us = stamp_of(&hdr.msg_hdr);
            if let Some(g) = self.got.get_mut(k) {
                *g = Datagram { len, source, stamp_us };
            }
        }
        self.n = n;
        Ok(n)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]: its bytes and what the kernel said.
    pub fn get(&self, i: usize) -> Option<(&[u8], Datagram)> {
        if i >= self.n {
            return None;
        }
        let d = *self.got.get(i)?;
        Some((self.bufs.get(i)?.get(..d.len)?, d))
    }
}

/// The sender's IP address from a `sockaddr_storage` the kernel filled with `len` bytes.
fn source_of(a: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<IpAddr> {
    let len = usize::try_from(len).ok()?;
    match libc::c_int::from(a.ss_family) {
        libc::AF_INET if len >= core::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than
            // and no more aligned than sockaddr_storage.
            let sin = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 if len >= core::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4))
        }
        _ => None,
    }
}

/// The `SCM_TIMESTAMPNS` control message of a received message, in microseconds.
fn stamp_of(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` was filled by recvmmsg: msg_control points to our buffer and
    // msg_controllen is what the kernel wrote there; CMSG_FIRSTHDR/NXTHDR stay within it.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: `c` is non-null and points to a complete cmsghdr inside the control buffer.
        let h = unsafe { &*c };
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS {
            let need = core::mem::size_of::<libc::timespec>();
            // SAFETY: `c` points to a cmsghdr in the buffer; CMSG_LEN gives the header plus `need`.
            let full = unsafe { libc::CMSG_LEN(u32::try_from(need).unwrap_or(u32::MAX)) } as usize;
            if h.cmsg_len < full {
                return None;
            }
            // SAFETY: the message carries a timespec right after the header (length checked);
            // the data may be unaligned, hence read_unaligned.
            let ts: libc::timespec = unsafe { core::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            let s = u64::try_from(ts.tv_sec).ok()?;
            let ns = u64::try_from(ts.tv_nsec).ok()?;
            return Some(s.saturating_mul(1_000_000).saturating_add(ns / 1000));
        }
        // SAFETY: as for CMSG_FIRSTHDR; returns null after the last header.
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
    None
}

/// `SO_TIMESTAMPNS` on: the kernel stamps each datagram with its receive time, which
/// [`RecvBatch`] reports.
pub fn enable_rx_stamps(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn a_batch_reads_several_datagrams_with_sources_and_stamps() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        enable_rx_stamps(rx.as_fd()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = RecvBatch::new();
        assert_eq!(b.recv(rx.as_fd()), Err(Errno::EAGAIN));
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
        for i in 0..(RECV_BATCH + 3) {
            tx.send_to(&[i as u8; 5], rx.local_addr().unwrap()).unwrap();
        }
        assert_eq!(b.recv(rx.as_fd()), Ok(RECV_BATCH));
        // Right after the first socket of the system asks for stamps, the kernel may still
        // stamp at read time (it turns stamping on in the background): hence after the read.
        let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
        for i in 0..RECV_BATCH {
            let (bytes, d) = b.get(i).unwrap();
            assert_eq!(bytes, &[i as u8; 5]);
            assert_eq!(d.source, Some(tx.local_addr().unwrap().ip()));
            let s = d.stamp_us.expect("stamped");
            assert!(s + 1 >= before && s <= after + 1, "{before} <= {s} <= {after}");
        }
        assert!(b.get(RECV_BATCH).is_none());
        assert_eq!(b.recv(rx.as_fd()), Ok(3), "the rest, and no more");
        assert_eq!(b.get(2).unwrap().0, &[(RECV_BATCH + 2) as u8; 5]);
        assert!(b.get(3).is_none());
        assert_eq!(b.recv(rx.as_fd()), Err(Errno::EAGAIN));
    }

    #[test]
    fn an_oversized_datagram_is_cut_and_an_unstamped_socket_has_no_stamp() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[7u8; RECV_BUF + 100], rx.local_addr().unwrap()).unwrap();
        let mut b = RecvBatch::new();
        assert_eq!(b.recv(rx.as_fd()), Ok(1));
        let (bytes, d) = b.get(0).unwrap();
        assert_eq!(bytes.len(), RECV_BUF);
        assert_eq!(d.stamp_us, None);
    }
}
