//! Socket options that nix 0.29 does not wrap: multicast by interface index.

use std::net::{Ipv4Addr, Ipv6Addr};
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
