//! Process-level syscalls for the daemon: mlockall, real-time scheduling, fork for
//! detaching, and the realtime clock for log timestamps.

use nix::errno::Errno;

/// Locks the daemon's pages in memory so a loaded host cannot page it out. With
/// MCL_ONFAULT (Linux >= 4.4) pages are locked as they are touched: what the loop uses stays
/// resident, and the parts of the binary that never run are not loaded at all (a static
/// binary would otherwise be locked whole). Falls back to locking everything.
pub fn mlockall() -> Result<(), Errno> {
    // SAFETY: mlockall takes only flags and touches no memory of ours.
    let r = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) };
    if r == 0 {
        return Ok(());
    }
    // SAFETY: as above.
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

/// Closes every descriptor above stderr that this process inherited: a daemon must not keep
/// its starter's pipes open (a `$(/etc/init.d/tandem start)` or an ssh session would wait
/// for it for ever), nor a make jobserver or a terminal it never uses. Call before opening
/// anything. `close_range(2)` where the kernel has it (5.9), else one `close` per entry
/// of /proc/self/fd.
pub fn close_inherited_fds() {
    // SAFETY: close_range takes plain integers and touches no memory of ours; nothing above
    // stderr is open by this program yet (the caller runs first thing), so no owner is left
    // with a dangling descriptor.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).filter(|&fd| fd > 2).collect(),
        Err(_) => return,
    };
    // The directory's own descriptor is closed by now; closing its number again is EBADF.
    for fd in fds {
        let _ = nix::unistd::close(fd);
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

/// Drops this process's page-table entries for its own code and read-only data (the `r-xp`
/// mapping of /proc/self/exe and its first `r--p` segment), so that only what the loop
/// actually uses faults back in (and, with `MCL_ONFAULT`, gets locked). The pages stay in
/// the page cache; nothing is lost. Neither mapping is ever written (no DT_TEXTREL), so it
/// is identical to the file; the relocated RELRO and data mappings are never touched.
/// Returns the bytes released.
pub fn trim_text() -> Result<usize, Errno> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|_| Errno::ENOENT)?;
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|_| Errno::EIO)?;
    let mut released = 0usize;
    for line in maps.lines() {
        let mut w = line.split_whitespace();
        let (Some(range), Some(perms), Some(offset)) = (w.next(), w.next(), w.next()) else { continue };
        let path = w.nth(2).unwrap_or("");
        // The text, and the first read-only segment (file offset 0: headers, .rodata and the
        // relocation records only needed at start). Never the RELRO mapping: it is read-only
        // now but holds relocated data, so it sits at a non-zero offset and is skipped.
        let first_ro = perms == "r--p" && offset.bytes().all(|b| b == b'0');
        if !(perms == "r-xp" || first_ro) || std::path::Path::new(path) != exe {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        let len = end.saturating_sub(start);
        // SAFETY: [start, start+len) is a private, read-only, executable file mapping of our
        // own binary, as listed by the kernel. MADV_DONTNEED only drops its page-table
        // entries; the next access re-reads the identical page from the file, so no memory
        // that Rust code holds a reference to changes contents.
        let r = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        Errno::result(r)?;
        // SAFETY: same range; MADV_RANDOM only changes read-ahead/fault-around policy.
        let _ = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_RANDOM) };
        released += len;
    }
    Ok(released)
}
