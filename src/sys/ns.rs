//! Namespaces and process creation for guests: clone3(2) into new namespaces and a
//! cgroup, pidfd signals, setns(2) through a pidfd.
//!
//! nix covers unshare, setns, pivot_root, mount, sethostname; this adds what it lacks.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// linux/sched.h flags (as the 64-bit `clone_args.flags`).
pub const CLONE_NEWNS: u64 = 0x0002_0000;
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
pub const CLONE_NEWUTS: u64 = 0x0400_0000;
pub const CLONE_NEWIPC: u64 = 0x0800_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
pub const CLONE_NEWNET: u64 = 0x4000_0000;
pub const CLONE_PIDFD: u64 = 0x0000_1000;
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` as of Linux 5.7 (CLONE_ARGS_SIZE_VER2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What [`clone_fork`] returned in this process.
#[derive(Debug)]
pub enum Cloned {
    /// In the parent: the child's pid (in our PID namespace) and a pidfd for it.
    Parent { pid: Pid, pidfd: OwnedFd },
    /// In the child, which continues like a forked child.
    Child,
}

/// clone3(2) with fork semantics (no shared memory, SIGCHLD on exit) plus `flags`
/// (namespace flags), always with CLONE_PIDFD, and with CLONE_INTO_CGROUP when `cgroup`
/// (an O_PATH or O_DIRECTORY fd of a cgroup v2 directory) is given: the child then starts
/// in that cgroup and never runs a single instruction outside it.
///
/// Like fork, it must only be called while the process is single-threaded (the guest
/// monitor is). Linux >= 5.7 (5.3 without `cgroup`).
pub fn clone_fork(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Cloned, Errno> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = u64::try_from(fd.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    }
    // SAFETY: clone3 reads `args` (which lives across the call) and writes the pidfd into
    // `pidfd` in the parent. Without CLONE_VM and with a null stack the child gets a
    // copy-on-write copy of this single-threaded process and continues here with the
    // return value 0, exactly like fork(2).
    let r = unsafe {
        libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, core::mem::size_of::<CloneArgs>() as libc::size_t)
    };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(Cloned::Child),
        pid => {
            let pid = Pid::from_raw(i32::try_from(pid).map_err(|_| Errno::EINVAL)?);
            // SAFETY: the kernel stored a new pidfd in `pidfd` (CLONE_PIDFD); we own it.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Cloned::Parent { pid, pidfd: fd })
        }
    }
}

/// pidfd_send_signal(2): signals the process the pidfd refers to, never a recycled pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: integer arguments and a null siginfo (the kernel fills in SI_USER).
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, core::ptr::null::<libc::siginfo_t>(), 0u32)
    };
    Errno::result(r).map(drop)
}

/// setns(2) through a pidfd (Linux >= 5.8): joins the namespaces in `nstypes` (CLONE_NEW*
/// bits) of that process at once. A new PID namespace applies to children only.
pub fn setns_pidfd(pidfd: BorrowedFd<'_>, nstypes: u64) -> Result<(), Errno> {
    let flags = libc::c_int::try_from(nstypes).map_err(|_| Errno::EINVAL)?;
    // SAFETY: setns takes an fd and flags and touches no memory of ours.
    let r = unsafe { libc::setns(pidfd.as_raw_fd(), flags) };
    Errno::result(r).map(drop)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the tty the controlling terminal of this session
/// (the caller must be a session leader without one).
pub fn set_controlling_tty(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and touches no memory.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY as libc::Ioctl, 0) };
    Errno::result(r).map(drop)
}

/// Sets close-on-exec on every fd >= `low` (close_range CLOSE_RANGE_CLOEXEC, Linux 5.11),
/// so they stay usable until execve and then vanish.
pub fn cloexec_from(low: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: close_range only changes fd flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, low, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    // Older kernels: one fcntl per open fd number.
    let mut lim: libc::rlimit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    let max =
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur.min(1 << 20) } else { 4096 };
    let mut fd = u64::from(low);
    while fd < max {
        // SAFETY: F_SETFD on an fd number; EBADF for closed numbers is harmless.
        unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, libc::FD_CLOEXEC) };
        fd += 1;
    }
    Ok(())
}

/// `execve(path, argv, envp)` with NUL-terminated pointer arrays prepared by the caller
/// (so a child between clone and exec does not allocate). Returns only on failure.
pub fn execve(path: &std::ffi::CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    if argv.last().is_some_and(|p| !p.is_null()) || envp.last().is_some_and(|p| !p.is_null()) {
        return Errno::EINVAL;
    }
    // SAFETY: `path` is NUL-terminated; argv and envp end with a null pointer (checked
    // above) and point to NUL-terminated strings the caller keeps alive across the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// `_exit(code)`: ends a forked/cloned child without running the parent's destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches nothing of the process's Rust state.
    unsafe { libc::_exit(code) }
}
