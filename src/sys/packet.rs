//! `AF_PACKET`/`SOCK_RAW` sockets bound to one interface: send whole Ethernet frames
//! (gratuitous ARP, unsolicited NA) and, for tests and diagnostics, receive them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;
pub const ETH_P_IP: u16 = libc::ETH_P_IP as u16;
pub const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;
pub const ETH_P_IPV6: u16 = libc::ETH_P_IPV6 as u16;

/// A non-blocking, close-on-exec packet socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens and binds to `ifindex`. `protocol` (an `ETH_P_*` value, host order) selects
    /// what is received; 0 receives nothing (send-only).
    pub fn bind(ifindex: u32, protocol: u16) -> Result<PacketSocket, Errno> {
        let proto_be = protocol.to_be();
        // SAFETY: plain socket(2) call with constant arguments; the returned fd is checked
        // and immediately owned.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                i32::from(proto_be),
            )
        };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = proto_be;
        sll.sll_ifindex = i32::try_from(ifindex).map_err(|_| Errno::ENODEV)?;
        // SAFETY: we pass a pointer to a live sockaddr_ll and its exact size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Errno::last());
        }
        Ok(PacketSocket { fd, ifindex })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one complete Ethernet frame (header included).
    pub fn send(&self, frame: &[u8]) -> Result<usize, Errno> {
        // SAFETY: the pointer and length describe the borrowed slice; the fd is valid.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            return Err(Errno::last());
        }
        usize::try_from(rc).map_err(|_| Errno::EIO)
    }

    /// Receives one frame into `buf` (non-blocking: `EAGAIN` when none is queued).
    /// Returns the bytes stored (the frame is cut to `buf.len()`).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: the pointer and length describe the borrowed, writable slice.
        let rc = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if rc < 0 {
            return Err(Errno::last());
        }
        usize::try_from(rc).map_err(|_| Errno::EIO)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
