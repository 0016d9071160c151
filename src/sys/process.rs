//! Child processes: fork with a clean child environment, pidfds, poll(2).
//!
//! The child set-up runs between `fork` and `exec`/`_exit` and only makes
//! async-signal-safe system calls (no allocation, no locks): every buffer it
//! needs is prepared by the parent before the fork.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// What the child does once its stdio and signals are set up.
pub enum ChildAction<'a> {
    /// `execve(path, argv, envp)`. On failure the child writes
    /// `tandem: cannot execute PATH: REASON` to its stderr and exits 127 (not found) or 126.
    Exec { path: &'a CStr, argv: &'a [CString], envp: &'a [CString] },
    /// Runs the closure and `_exit`s with its return value (1 if it panics).
    Run(&'a mut dyn FnMut() -> i32),
}

/// Forks a child that:
/// - becomes the leader of its own process group (`setpgid(0, 0)`),
/// - is sent SIGKILL when the thread that forked it dies (`PR_SET_PDEATHSIG`; the daemon
///   is single-threaded, so: when the daemon dies), and exits at once if the parent is
///   already gone; this is not inherited by the child's own children,
/// - has every signal disposition reset to the default and an empty signal mask,
/// - has `stdin` on fd 0, `output` on fds 1 and 2, and no other fd open,
/// - then performs `action`.
///
/// Returns the child's pid in the parent. `fork` failing (EAGAIN, ENOMEM) is an error.
pub fn spawn_child(stdin: BorrowedFd<'_>, output: BorrowedFd<'_>, action: ChildAction<'_>) -> Result<Pid, Errno> {
    // Everything the child needs is built here, before the fork.
    let mut argv_ptrs: Vec<*const libc::c_char> = Vec::new();
    let mut envp_ptrs: Vec<*const libc::c_char> = Vec::new();
    let mut exec_path: *const libc::c_char = core::ptr::null();
    let mut exec_name: &[u8] = b"";
    let mut run: Option<&mut dyn FnMut() -> i32> = None;
    match action {
        ChildAction::Exec { path, argv, envp } => {
            argv_ptrs.reserve_exact(argv.len().saturating_add(1));
            argv_ptrs.extend(argv.iter().map(|a| a.as_ptr()));
            argv_ptrs.push(core::ptr::null());
            envp_ptrs.reserve_exact(envp.len().saturating_add(1));
            envp_ptrs.extend(envp.iter().map(|e| e.as_ptr()));
            envp_ptrs.push(core::ptr::null());
            exec_path = path.as_ptr();
            exec_name = path.to_bytes();
        }
        ChildAction::Run(f) => run = Some(f),
    }
    let in_fd = stdin.as_raw_fd();
    let out_fd = output.as_raw_fd();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };

    // SAFETY: fork has no memory-safety preconditions. In the child we only call
    // async-signal-safe functions on memory prepared above (Exec), or run the
    // caller's closure (Run), which the daemon only does single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid > 0 {
        return Ok(Pid::from_raw(pid));
    }

    // ---- child ----
    child_setup(in_fd, out_fd, parent);
    match run {
        Some(f) => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(1);
            // SAFETY: _exit never returns and skips atexit handlers and destructors,
            // which belong to the parent.
            unsafe { libc::_exit(code) }
        }
        None => {
            // SAFETY: exec_path, argv_ptrs and envp_ptrs are NUL-terminated arrays of
            // pointers to NUL-terminated strings that outlive this call (the parent's
            // CStrings are still borrowed by `action`).
            unsafe { libc::execve(exec_path, argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
            let err = Errno::last();
            write_all_raw(2, b"tandem: cannot execute ");
            write_all_raw(2, exec_name);
            write_all_raw(2, b": ");
            write_all_raw(2, err.desc().as_bytes());
            write_all_raw(2, b"\n");
            let code = if err == Errno::ENOENT { 127 } else { 126 };
            // SAFETY: see above.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The child's set-up between fork and exec. Async-signal-safe calls only.
fn child_setup(in_fd: RawFd, out_fd: RawFd, parent: libc::pid_t) {
    // SAFETY: (whole function) plain syscalls on integers and on stack memory we own;
    // errors are ignored because there is nobody to report them to but the pipe.
    unsafe {
        libc::setpgid(0, 0);
        // Dies with the daemon. Survives exec (except of a set-user-ID program). If the
        // daemon died before this call, nobody would send the signal: leave now.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(126);
        }
    }
    reset_signals();
    // SAFETY: as above.
    unsafe {
        // Move both fds above 2 first, so dup2 onto 0/1/2 cannot clobber one of them,
        // then put them in place (dup2 clears close-on-exec on the target).
        let hi_in = libc::fcntl(in_fd, libc::F_DUPFD, 3);
        let hi_out = libc::fcntl(out_fd, libc::F_DUPFD, 3);
        if hi_in < 0 || hi_out < 0 {
            libc::_exit(126);
        }
        libc::dup2(hi_in, 0);
        libc::dup2(hi_out, 1);
        libc::dup2(hi_out, 2);
        close_from(3);
    }
}

/// Every signal disposition back to the default, and an empty signal mask: ignored
/// dispositions would survive exec (Rust ignores SIGPIPE, the daemon handles
/// TERM/INT/HUP/CHLD). Async-signal-safe.
pub fn reset_signals() {
    // SAFETY: plain syscalls on stack memory we own. The raw syscall, because libc's
    // sigaction refuses its internal real-time signals (32, 33), which may have been
    // inherited as ignored. An all-zero kernel `struct sigaction` is SIG_DFL with no flags
    // and an empty mask on every architecture. KILL and STOP fail with EINVAL, harmlessly.
    unsafe {
        let dfl = [0u64; 4];
        let mut sig: libc::c_long = 1;
        while sig <= 64 {
            libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), core::ptr::null_mut::<u64>(), 8usize);
            sig += 1;
        }
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, core::ptr::null_mut());
    }
}

/// Sets `sig` to SIG_IGN.
pub fn ignore_signal(sig: nix::sys::signal::Signal) -> Result<(), Errno> {
    // SAFETY: SIG_IGN installs no handler code, so there is no async-signal-safety concern.
    unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) }.map(drop)
}

/// Runs `f` with SIGINT and SIGQUIT ignored, then puts their previous dispositions back
/// (for a command line tool that waits for an interactive child: ^C is for the child).
pub fn with_interactive_signals_ignored<T>(f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    let mut old = Vec::new();
    for s in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: SIG_IGN installs no handler code.
        if let Ok(prev) = unsafe { sigaction(s, &ign) } {
            old.push((s, prev));
        }
    }
    let r = f();
    for (s, prev) in old {
        // SAFETY: puts back exactly the disposition that was installed before.
        let _ = unsafe { sigaction(s, &prev) };
    }
    r
}

/// Closes every fd >= `low` (close_range, or a bounded loop on old kernels).
fn close_from(low: u32) {
    // SAFETY: close_range only closes descriptors; called in the child only.
    let r = unsafe { libc::syscall(libc::SYS_close_range, low, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    let mut lim: libc::rlimit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    let max =
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur.min(1 << 20) } else { 4096 };
    let mut fd = u64::from(low);
    while fd < max {
        // SAFETY: closing an fd number in the child; EBADF is harmless.
        unsafe { libc::close(fd as libc::c_int) };
        fd += 1;
    }
}

/// write(2) all of `buf` to a raw fd, ignoring errors. Async-signal-safe.
pub fn write_all_raw(fd: RawFd, mut buf: &[u8]) {
    let mut tries = 0;
    while !buf.is_empty() && tries < 64 {
        tries += 1;
        // SAFETY: buf is a valid slice for buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return;
        }
        buf = buf.get(n as usize..).unwrap_or(&[]);
    }
}

/// Writes `msg` to fd 1 without Rust's stdout buffer or lock; for `Fork` closures,
/// whose fd 1 is the pipe to the daemon.
pub fn write_stdout(msg: &[u8]) {
    write_all_raw(1, msg);
}

/// `pidfd_open(pid, 0)` (Linux >= 5.3): an fd that polls readable once `pid` has
/// exited. It has close-on-exec set.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: the syscall takes two integers and returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0u32) };
    if r < 0 {
        return Err(Errno::last());
    }
    let fd = RawFd::try_from(r).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// poll(2) over caller-built `pollfd`s. `timeout_ms < 0` waits forever (avoid that).
/// EINTR is returned as an error for the caller to loop on.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    let n = libc::nfds_t::try_from(fds.len()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fds is a valid, exclusively borrowed array of n pollfd structs.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(usize::try_from(r).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn pidfd_of_self_child_signals_exit() {
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut f = || 7;
        let pid = spawn_child(devnull.as_fd(), w.as_fd(), ChildAction::Run(&mut f)).unwrap();
        drop(w);
        let pfd = pidfd_open(pid).unwrap();
        let mut fds = [libc::pollfd { fd: pfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let n = poll(&mut fds, 5000).unwrap();
        assert_eq!(n, 1);
        let st = nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(st, nix::sys::wait::WaitStatus::Exited(pid, 7));
        drop(r);
    }
}
