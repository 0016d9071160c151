//! Process-level syscalls for the daemon: mlockall, real-time scheduling, fork for
//! detaching, and the realtime clock for log timestamps.

use nix::errno::Errno;

/// Locks all current and future pages in memory so a loaded host cannot page the daemon out.
pub fn mlockall() -> Result<(), Errno> {
    // SAFETY: mlockall takes only flags and touches no memory of ours.
    let r = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    Errno::result(r).map(drop)
}

/// SCHED_FIFO at `prio`, with SCHED_RESET_ON_FORK so resource children run as normal processes.
pub fn set_realtime(prio: i32) -> Result<(), Errno> {
    let param = libc::sched_param { sched_priority: prio };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 = this thread.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    Errno::result(r).map(drop)
}

pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// fork(2) for detaching. Called before any thread exists (the daemon is single-threaded).
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: the daemon is single-threaded when it detaches, so the child is a consistent
    // copy; it continues with ordinary Rust code.
    let r = unsafe { libc::fork() };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { child: pid }),
    }
}

/// Wall-clock time as (seconds, microseconds) since the epoch, for log lines.
pub fn realtime() -> (i64, u32) {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME) {
        Ok(ts) => (ts.tv_sec(), u32::try_from(ts.tv_nsec() / 1000).unwrap_or(0)),
        Err(_) => (0, 0),
    }
}

/// Points stdin/stdout (and stderr unless `keep_stderr`) at /dev/null after detaching.
pub fn null_stdio(keep_stderr: bool) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        let fd = f.as_raw_fd();
        let _ = nix::unistd::dup2(fd, 0);
        let _ = nix::unistd::dup2(fd, 1);
        if !keep_stderr {
            let _ = nix::unistd::dup2(fd, 2);
        }
    }
}
