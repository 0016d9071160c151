//! Netlink socket options nix does not wrap (`SOL_NETLINK`).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

pub const NETLINK_ADD_MEMBERSHIP: i32 = libc::NETLINK_ADD_MEMBERSHIP;
pub const NETLINK_DROP_MEMBERSHIP: i32 = libc::NETLINK_DROP_MEMBERSHIP;
pub const NETLINK_CAP_ACK: i32 = libc::NETLINK_CAP_ACK;
pub const NETLINK_EXT_ACK: i32 = libc::NETLINK_EXT_ACK;
pub const NETLINK_GET_STRICT_CHK: i32 = libc::NETLINK_GET_STRICT_CHK;

/// `setsockopt(fd, SOL_NETLINK, opt, &val, sizeof(int))`.
pub fn set_opt(fd: BorrowedFd<'_>, opt: i32, val: i32) -> Result<(), Errno> {
    // SAFETY: `val` lives on the stack for the duration of the call and we pass its exact
    // size; the fd is valid for the borrow's lifetime.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            opt,
            (&val as *const i32).cast(),
            core::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
