//! Forked children with deadlines, driven from the daemon's poll loop.
//!
//! Every resource operation that can take long runs in a child: either an
//! executed program ([`Spawn::Exec`], script agents) or a closure run in a plain
//! fork ([`Spawn::Fork`], built-in agents calling syscalls). The [`Runner`]
//! never blocks:
//!
//! ```text
//! loop {
//!     pollfds.clear(); runner.fds(&mut pollfds);          // + the daemon's own fds
//!     timeout = min(runner.poll_at(), other deadlines)    // rounded up to ms
//!     poll(..)
//!     for each fd with any revents: runner.on_ready(now, fd)
//!     runner.collect(now, &mut done)                      // deadlines, reaping, results
//! }
//! ```
//!
//! Each child:
//! - leads its own process group, so escalation reaches everything it spawned;
//! - is killed by the kernel when the daemon dies (`PR_SET_PDEATHSIG`), and, in the
//!   daemon, is recorded in the state directory until it is reaped, so that a restarted
//!   daemon kills what is left of its group first (`records.rs`);
//! - has stdin on /dev/null, stdout+stderr on one pipe to the daemon, no other fd,
//!   default signal dispositions and an empty signal mask, and a `PATH`.
//!
//! Exit is detected with a pidfd, never by the pipe closing: a start script that
//! leaves a daemon behind keeps the pipe's write end open forever. Once the
//! child has exited, what is readable is drained without blocking and the pipe is
//! closed. Output is kept in a fixed ring buffer (the last `output_cap` bytes).
//!
//! At the deadline the child's process group gets SIGTERM, and SIGKILL after a
//! grace of `min(2s, deadline/2)`; the result is [`ExitKind::TimedOut`]. When the
//! leader dies of the TERM before the grace is over, what is left of its group is
//! KILLed at once (the zombie leader still holds the group id, so this cannot hit
//! a recycled pid). If even SIGKILL does not make it exit (uninterruptible sleep),
//! the timeout is reported [`ABANDON_AFTER`] later anyway, and the child is reaped
//! whenever it finally dies. A child that exits on its own is never signalled, so
//! a service left running by a successful `start` survives.
//!
//! Nobody else in the process may `waitpid(-1)` or set SIGCHLD to SIG_IGN: the
//! runner reaps its own children by pid.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::records::Recorder;
use super::{AgentError, Op, Outcome};
use crate::sys::process::{self as sysproc, ChildAction};
use crate::time::{Duration, Instant};

/// How many bytes of a child's output are kept (the tail).
pub const DEFAULT_OUTPUT_CAP: usize = 4096;
/// Upper bound for the TERM→KILL grace.
pub const MAX_GRACE: Duration = Duration::from_secs(2);
/// After SIGKILL, how long to wait for the exit before reporting the timeout anyway.
pub const ABANDON_AFTER: Duration = Duration::from_secs(1);
/// Without a pidfd (kernel < 5.3), how often `collect` must look for exits.
const FALLBACK_CHECK: Duration = Duration::from_millis(50);
/// `PATH` for children when the daemon has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Reads per readiness event, so a child spewing output cannot starve the loop.
const MAX_READS_PER_EVENT: usize = 16;

/// What to run in the child.
pub enum Spawn<'a> {
    /// fork + exec this argv (script agents). `argv[0]` is a path, or a name looked up in `PATH`.
    Exec(&'a [String]),
    /// As `Exec`, with these variables added to the children's environment (replacing any
    /// inherited ones of the same name): OCF agents get their parameters this way.
    ExecEnv { argv: &'a [String], env: &'a [(String, String)] },
    /// fork and run the closure in the child, then `_exit(code)` (built-in agents).
    /// The code follows LSB (0 ok/running, 3 stopped, 1 error). The closure may write an
    /// error message to fd 1 (use [`child_print`]; Rust's `print!` is buffered).
    /// It starts with fds 0 (/dev/null), 1 and 2 (the pipe) only.
    Fork(&'a mut dyn FnMut() -> i32),
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Code(i32),
    Signal(i32),
    TimedOut,
}

/// A finished job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub tag: u64,
    pub status: ExitKind,
    /// The last `output_cap` bytes of stdout+stderr, lossy UTF-8.
    pub output: String,
    pub elapsed: Duration,
}

/// For `Fork` closures: writes `msg` to the child's stdout (the pipe), unbuffered.
pub fn child_print(msg: &str) {
    sysproc::write_stdout(msg.as_bytes());
}

/// Bounded output: keeps the last `buf.len()` bytes.
#[derive(Debug)]
struct Ring {
    buf: Vec<u8>,
    /// Next write position.
    head: usize,
    len: usize,
    dropped: bool,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring { buf: vec![0; cap.max(1)], head: 0, len: 0, dropped: false }
    }
    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.dropped = false;
    }
    fn push(&mut self, mut data: &[u8]) {
        let cap = self.buf.len();
        if data.len() >= cap {
            self.dropped |= self.len > 0 || data.len() > cap;
            data = data.get(data.len() - cap..).unwrap_or(&[]);
            self.buf.copy_from_slice(data);
            self.head = 0;
            self.len = cap;
            return;
        }
        let first = (cap - self.head).min(data.len());
        let (a, b) = data.split_at(first);
        if let Some(dst) = self.buf.get_mut(self.head..self.head + a.len()) {
            dst.copy_from_slice(a);
        }
        if let Some(dst) = self.buf.get_mut(..b.len()) {
            dst.copy_from_slice(b);
        }
        self.head = (self.head + data.len()) % cap;
        let new_len = self.len + data.len();
        if new_len > cap {
            self.dropped = true;
        }
        self.len = new_len.min(cap);
    }
    /// The kept bytes, oldest first, as lossy UTF-8. When bytes were dropped, a
    /// split UTF-8 sequence at the start is skipped.
    fn to_string_lossy(&self) -> String {
        let cap = self.buf.len();
        let start = (self.head + cap - self.len) % cap;
        let mut bytes = Vec::with_capacity(self.len);
        let first = (cap - start).min(self.len);
        bytes.extend_from_slice(self.buf.get(start..start + first).unwrap_or(&[]));
        bytes.extend_from_slice(self.buf.get(..self.len - first).unwrap_or(&[]));
        let mut from = 0;
        if self.dropped {
            while from < bytes.len().min(3) && bytes.get(from).is_some_and(|b| b & 0xC0 == 0x80) {
                from += 1;
            }
        }
        String::from_utf8_lossy(bytes.get(from..).unwrap_or(&[])).into_owned()
    }
}

#[derive(Debug)]
enum Phase {
    /// Running, before its deadline.
    Running,
    /// SIGTERM sent to the group; SIGKILL at `kill_at`.
    Terminating { kill_at: Instant },
    /// SIGKILL sent; the timeout is reported at `abandon_at` if it has not exited.
    Killed { abandon_at: Instant },
}

#[derive(Debug)]
struct Slot {
    /// The pool this slot belongs to (fixed): one kind of job cannot starve another.
    pool: usize,
    used: bool,
    tag: u64,
    pid: Pid,
    pidfd: Option<OwnedFd>,
    pipe: Option<OwnedFd>,
    started: Instant,
    deadline: Instant,
    grace: Duration,
    phase: Phase,
    /// The deadline passed (TERM was sent).
    timed_out: bool,
    /// Reaped: how it ended and when.
    reaped: Option<(ExitKind, Instant)>,
    /// A Done was already handed out (abandoned after KILL); only reaping is left.
    reported: bool,
    out: Ring,
}

impl Slot {
    fn new(pool: usize, cap: usize) -> Slot {
        Slot {
            pool,
            used: false,
            tag: 0,
            pid: Pid::from_raw(0),
            pidfd: None,
            pipe: None,
            started: Instant::ZERO,
            deadline: Instant::ZERO,
            grace: Duration::ZERO,
            phase: Phase::Running,
            timed_out: false,
            reaped: None,
            reported: false,
            out: Ring::new(cap),
        }
    }

    /// Reads what is available from the pipe (bounded number of reads).
    fn read_pipe(&mut self, max_reads: usize) {
        let Some(fd) = self.pipe.as_ref().map(|p| p.as_raw_fd()) else {
            return;
        };
        let mut buf = [0u8; 4096];
        for _ in 0..max_reads {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => self.out.push(buf.get(..n).unwrap_or(&[])),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    log::debug!("reading child output: {e}");
                    self.pipe = None;
                    return;
                }
            }
        }
    }

    /// waitpid(WNOHANG). On exit: records the status, and for a timed-out child KILLs
    /// what is left of its group first (the unreaped zombie still holds the group id).
    fn try_reap(&mut self, now: Instant) {
        if self.reaped.is_some() || !self.used {
            return;
        }
        if self.timed_out {
            // Only when the leader is a zombie: peek without reaping.
            let exited = matches!(
                nix::sys::wait::waitid(
                    nix::sys::wait::Id::Pid(self.pid),
                    WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
                ),
                Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..))
            );
            if exited {
                let _ = killpg(self.pid, Signal::SIGKILL);
            }
        }
        let kind = match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => ExitKind::Code(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => ExitKind::Signal(sig as i32),
            Ok(_) => return,
            Err(Errno::EINTR) => return,
            Err(e) => {
                // ECHILD: someone else reaped it (SIGCHLD ignored?). Status unknown.
                log::warn!("waitpid({}): {e}; exit status of the child is unknown", self.pid);
                ExitKind::Code(-1)
            }
        };
        let kind = if self.timed_out { ExitKind::TimedOut } else { kind };
        self.reaped = Some((kind, now));
        self.pidfd = None;
        // Drain what the child left in the pipe, then close it: a background process
        // that inherited the write end must not keep the job alive.
        self.read_pipe(64);
        self.pipe = None;
    }

    fn release(&mut self) {
        self.used = false;
        self.pidfd = None;
        self.pipe = None;
        self.reaped = None;
        self.reported = false;
        self.timed_out = false;
        self.phase = Phase::Running;
        self.out.clear();
    }

    fn next_event(&self, fallback_base: Instant) -> Option<Instant> {
        if !self.used {
            return None;
        }
        if let Some((_, at)) = self.reaped {
            return Some(at);
        }
        let timer = match self.phase {
            Phase::Running => Some(self.deadline),
            Phase::Terminating { kill_at } => Some(kill_at),
            Phase::Killed { abandon_at } => (!self.reported).then_some(abandon_at),
        };
        if self.pidfd.is_none() {
            let check = fallback_base + FALLBACK_CHECK;
            return Some(timer.map_or(check, |t| t.min(check)));
        }
        timer
    }
}

/// A fixed-capacity table of children with preallocated output buffers.
#[derive(Debug)]
pub struct Runner {
    slots: Vec<Slot>,
    env: Vec<CString>,
    last_collect: Instant,
    records: Option<Recorder>,
}

impl Runner {
    /// A runner for up to `max_children` concurrent children, keeping
    /// [`DEFAULT_OUTPUT_CAP`] bytes of output each.
    pub fn new(max_children: usize) -> Runner {
        Runner::with_output_cap(max_children, DEFAULT_OUTPUT_CAP)
    }

    /// As [`Runner::new`], keeping the last `output_cap` bytes of each child's output.
    pub fn with_output_cap(max_children: usize, output_cap: usize) -> Runner {
        Runner::with_pools(&[max_children], output_cap)
    }

    /// A runner with pools of slots, `pools[i]` slots in pool `i`: a kind of job that runs
    /// out (children stuck in uninterruptible sleep keep their slots) cannot take the slots
    /// of another.
    pub fn with_pools(pools: &[usize], output_cap: usize) -> Runner {
        let mut slots = Vec::with_capacity(pools.iter().sum());
        for (pool, &n) in pools.iter().enumerate() {
            for _ in 0..n {
                slots.push(Slot::new(pool, output_cap));
            }
        }
        Runner { slots, env: child_env(), last_collect: Instant::ZERO, records: None }
    }

    /// Records every child's process group under `statedir` while it runs (see
    /// `records.rs`); the daemon's runner does, `tandem agent`'s does not.
    pub fn with_records(mut self, statedir: &std::path::Path) -> Runner {
        self.records = Some(Recorder::new(statedir));
        self
    }

    /// Starts a child in pool 0. See [`Runner::spawn_in`].
    pub fn spawn(&mut self, now: Instant, tag: u64, how: Spawn<'_>, deadline: Duration) -> Result<(), AgentError> {
        self.spawn_in(now, 0, tag, how, deadline)
    }

    /// Starts a child in `pool`. `tag` identifies it in [`Done`] and [`Runner::fds`].
    /// `deadline` is relative to `now`.
    pub fn spawn_in(
        &mut self,
        now: Instant,
        pool: usize,
        tag: u64,
        how: Spawn<'_>,
        deadline: Duration,
    ) -> Result<(), AgentError> {
        let Some(idx) = self.slots.iter().position(|s| !s.used && s.pool == pool) else {
            let size = self.slots.iter().filter(|s| s.pool == pool).count();
            let stuck = self.slots.iter().filter(|s| s.pool == pool && s.reported).count();
            return Err(AgentError::Failed(format!(
                "cannot start another child: all {size} slots are busy ({stuck} held by children that did not \
                 die after SIGKILL, e.g. in uninterruptible sleep)"
            )));
        };
        let devnull = std::fs::File::open("/dev/null").map_err(|e| sys_err("open /dev/null", e.raw_os_error()))?;
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|errno| AgentError::Sys { op: "pipe2".into(), errno })?;
        nix::fcntl::fcntl(rd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
            .map_err(|errno| AgentError::Sys { op: "fcntl(O_NONBLOCK)".into(), errno })?;

        let pid = match how {
            Spawn::Exec(argv) => exec_child(devnull.as_fd(), wr.as_fd(), argv, &self.env)?,
            Spawn::ExecEnv { argv, env } => exec_child(devnull.as_fd(), wr.as_fd(), argv, &env_with(&self.env, env)?)?,
            Spawn::Fork(f) => sysproc::spawn_child(devnull.as_fd(), wr.as_fd(), ChildAction::Run(f)),
        }
        .map_err(|errno| AgentError::Sys { op: "fork".into(), errno })?;
        drop(wr);
        drop(devnull);
        if let Some(r) = &self.records {
            if let Err(e) = r.add(pid.as_raw(), tag) {
                log::warn!("cannot record child {pid} in the state directory: {e}");
            }
        }

        let pidfd = match sysproc::pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::debug!("pidfd_open({pid}): {e}; falling back to periodic waitpid");
                None
            }
        };
        let Some(slot) = self.slots.get_mut(idx) else {
            return Err(AgentError::Failed("runner slot vanished".into()));
        };
        slot.release();
        slot.used = true;
        slot.tag = tag;
        slot.pid = pid;
        slot.pidfd = pidfd;
        slot.pipe = Some(rd);
        slot.started = now;
        slot.deadline = now + deadline;
        slot.grace = MAX_GRACE.min(deadline / 2);
        self.last_collect = self.last_collect.max(now);
        Ok(())
    }

    /// Appends the fds to poll for POLLIN, with their job's tag: a pidfd per child
    /// (readable = exited) and its output pipe while open.
    pub fn fds(&self, out: &mut Vec<(RawFd, u64)>) {
        for s in self.slots.iter().filter(|s| s.used) {
            if let Some(fd) = &s.pidfd {
                out.push((fd.as_raw_fd(), s.tag));
            }
            if let Some(fd) = &s.pipe {
                out.push((fd.as_raw_fd(), s.tag));
            }
        }
    }

    /// Call for every fd from [`Runner::fds`] that poll reported with any revents
    /// (POLLIN, POLLHUP, POLLERR). Reads output, notices exits. Never blocks.
    pub fn on_ready(&mut self, now: Instant, fd: RawFd) {
        for s in self.slots.iter_mut().filter(|s| s.used) {
            if s.pipe.as_ref().is_some_and(|p| p.as_raw_fd() == fd) {
                s.read_pipe(MAX_READS_PER_EVENT);
                return;
            }
            if s.pidfd.as_ref().is_some_and(|p| p.as_raw_fd() == fd) {
                s.try_reap(now);
                return;
            }
        }
    }

    /// The nearest time [`Runner::collect`] has something to do: a deadline, a KILL
    /// escalation, a result waiting (then a time <= now), or a periodic check on
    /// kernels without pidfds.
    pub fn poll_at(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.next_event(self.last_collect)).min()
    }

    /// Enforces deadlines, reaps exited children and appends finished jobs to `done`.
    pub fn collect(&mut self, now: Instant, done: &mut Vec<Done>) {
        self.last_collect = now;
        for s in self.slots.iter_mut().filter(|s| s.used) {
            s.try_reap(now);
            if s.reaped.is_none() {
                match s.phase {
                    Phase::Running if now >= s.deadline => {
                        log::debug!("child {} (tag {}) passed its deadline: SIGTERM", s.pid, s.tag);
                        let _ = killpg(s.pid, Signal::SIGTERM);
                        s.timed_out = true;
                        s.phase = Phase::Terminating { kill_at: s.deadline + s.grace };
                    }
                    Phase::Terminating { kill_at } if now >= kill_at => {
                        log::debug!("child {} (tag {}) ignored SIGTERM: SIGKILL", s.pid, s.tag);
                        let _ = killpg(s.pid, Signal::SIGKILL);
                        s.phase = Phase::Killed { abandon_at: kill_at + ABANDON_AFTER };
                    }
                    Phase::Killed { abandon_at } if now >= abandon_at && !s.reported => {
                        log::error!(
                            "child {} (tag {}) does not die after SIGKILL (uninterruptible sleep?): reporting its \
                             timeout; it keeps its slot until it can be reaped",
                            s.pid,
                            s.tag
                        );
                        s.read_pipe(MAX_READS_PER_EVENT);
                        s.reported = true;
                        done.push(Done {
                            tag: s.tag,
                            status: ExitKind::TimedOut,
                            output: s.out.to_string_lossy(),
                            elapsed: now.saturating_since(s.started),
                        });
                    }
                    _ => {}
                }
                // A TERMed leader may have died just now.
                if s.timed_out {
                    s.try_reap(now);
                }
            }
            if let Some((status, at)) = s.reaped {
                if !s.reported {
                    done.push(Done {
                        tag: s.tag,
                        status,
                        output: s.out.to_string_lossy(),
                        elapsed: at.saturating_since(s.started),
                    });
                }
                if let Some(r) = &self.records {
                    r.remove(s.pid.as_raw());
                }
                s.release();
            }
        }
    }

    /// Children not yet reaped (including ones whose timeout was already reported).
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.used).count()
    }

    /// Kills the process group of every child tagged `tag` (its end is collected as usual).
    pub fn kill_tag(&mut self, tag: u64) {
        for s in self.slots.iter_mut().filter(|s| s.used && s.tag == tag && s.reaped.is_none()) {
            let _ = killpg(s.pid, Signal::SIGKILL);
        }
    }

    /// Kills every child whose tag has `value` in the bits of `mask`.
    pub fn kill_tags(&mut self, mask: u64, value: u64) {
        for s in self.slots.iter_mut().filter(|s| s.used && s.tag & mask == value && s.reaped.is_none()) {
            let _ = killpg(s.pid, Signal::SIGKILL);
        }
    }

    /// Children that did not die after SIGKILL and still hold their slot.
    pub fn stuck(&self) -> usize {
        self.slots.iter().filter(|s| s.used && s.reported).count()
    }

    /// Daemon exit path: SIGKILL every child's process group and reap them all
    /// (waiting at most ~1s in total for unkillable ones).
    pub fn kill_all(&mut self) {
        for s in self.slots.iter_mut().filter(|s| s.used && s.reaped.is_none()) {
            let _ = killpg(s.pid, Signal::SIGKILL);
            s.timed_out = false; // already KILLed; no second killpg after the zombie is gone
        }
        let start = crate::time::now();
        loop {
            let now = crate::time::now();
            let mut left = 0;
            for s in self.slots.iter_mut().filter(|s| s.used) {
                if s.reaped.is_none() {
                    s.try_reap(now);
                }
                if s.reaped.is_some() {
                    if let Some(r) = &self.records {
                        r.remove(s.pid.as_raw());
                    }
                    s.release();
                } else {
                    left += 1;
                }
            }
            if left == 0 || now.saturating_since(start) >= ABANDON_AFTER {
                if left > 0 {
                    log::warn!("{left} child(ren) did not die after SIGKILL");
                }
                return;
            }
            // Wait on the pidfds (or 10ms) instead of spinning.
            let mut pfds: [libc::pollfd; 8] = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 8];
            for (p, s) in pfds.iter_mut().zip(self.slots.iter().filter(|s| s.used)) {
                if let Some(fd) = &s.pidfd {
                    p.fd = fd.as_raw_fd();
                    p.events = libc::POLLIN;
                }
            }
            let _ = sysproc::poll(&mut pfds, 10);
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if self.running() > 0 {
            self.kill_all();
        }
    }
}

/// Spawns one child and waits for it (poll on its fds), with the same deadline and
/// escalation rules as the daemon. For `tandem agent` and tests.
pub fn run_blocking(how: Spawn<'_>, deadline: Duration) -> Result<Done, AgentError> {
    let mut runner = Runner::new(1);
    runner.spawn(crate::time::now(), 0, how, deadline)?;
    let mut fds: Vec<(RawFd, u64)> = Vec::with_capacity(2);
    let mut done = Vec::with_capacity(1);
    loop {
        let now = crate::time::now();
        runner.collect(now, &mut done);
        if let Some(d) = done.pop() {
            return Ok(d);
        }
        fds.clear();
        runner.fds(&mut fds);
        let mut pfds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 2];
        for (p, (fd, _)) in pfds.iter_mut().zip(fds.iter()) {
            p.fd = *fd;
            p.events = libc::POLLIN;
        }
        let timeout = runner.poll_at().map_or(1000, |t| now.millis_until_ceil(t).min(1000) as i32);
        match sysproc::poll(&mut pfds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(AgentError::Sys { op: "poll".into(), errno }),
        }
        let now = crate::time::now();
        for p in pfds.iter().filter(|p| p.fd >= 0 && p.revents != 0) {
            runner.on_ready(now, p.fd);
        }
    }
}

/// How the exit code of an operation is read (each agent says which, [`super::Agent::exit_rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExitRules {
    /// LSB init scripts (and forked built-in agents): start/stop exit 0 = success;
    /// status 0 = running, 3 = not running. Anything else is an error.
    #[default]
    Lsb,
    /// The OCF resource agent API: 0 = success / running; 7 (`OCF_NOT_RUNNING`) = not
    /// running, which for `stop` is a success; `monitor` 190 (degraded) = running; 1-6 are
    /// errors with their OCF meanings ([`super::ocf::OcfCode`]); the promotable codes 8, 9
    /// and 191 are errors (promotable agents are not supported).
    Ocf,
}

/// The judgement of a finished operation under `rules`.
pub fn judge(rules: ExitRules, op: Op, done: &Done) -> Result<Outcome, AgentError> {
    let output = || done.output.clone();
    match (done.status, rules, op) {
        (ExitKind::Code(0), _, Op::Start | Op::Status) => Ok(Outcome::Running),
        (ExitKind::Code(0), _, Op::Stop) => Ok(Outcome::Stopped),
        (ExitKind::Code(3), ExitRules::Lsb, Op::Status) => Ok(Outcome::Stopped),
        (ExitKind::Code(7), ExitRules::Ocf, Op::Status | Op::Stop) => Ok(Outcome::Stopped),
        (ExitKind::Code(190), ExitRules::Ocf, Op::Status) => Ok(Outcome::Running),
        (ExitKind::Code(code), ExitRules::Lsb, _) => Err(AgentError::Exit { code, output: output() }),
        (ExitKind::Code(code), ExitRules::Ocf, _) => Err(AgentError::Ocf { code, output: output() }),
        (ExitKind::Signal(signal), _, _) => Err(AgentError::Signal { signal, output: output() }),
        (ExitKind::TimedOut, _, _) => Err(AgentError::Timeout { after: done.elapsed, output: output() }),
    }
}

fn sys_err(op: &str, raw: Option<i32>) -> AgentError {
    AgentError::Sys { op: op.into(), errno: Errno::from_raw(raw.unwrap_or(libc::EIO)) }
}

fn cstring(s: &str) -> Result<CString, AgentError> {
    CString::new(s).map_err(|_| AgentError::Config(format!("argument contains a NUL byte: {s:?}")))
}

/// The children's environment: the daemon's, with `PATH` added when missing.
fn child_env() -> Vec<CString> {
    let mut env = Vec::new();
    let mut has_path = false;
    for (k, v) in std::env::vars_os() {
        has_path |= k.as_bytes() == b"PATH";
        let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
        kv.extend_from_slice(k.as_bytes());
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        if let Ok(c) = CString::new(kv) {
            env.push(c);
        }
    }
    if !has_path {
        if let Ok(c) = CString::new(format!("PATH={DEFAULT_PATH}")) {
            env.push(c);
        }
    }
    env
}

/// fork + exec `argv` with `envp`; the outer error is about the arguments, the inner one
/// about the fork.
fn exec_child(
    stdin: std::os::fd::BorrowedFd<'_>,
    out: std::os::fd::BorrowedFd<'_>,
    argv: &[String],
    envp: &[CString],
) -> Result<Result<Pid, Errno>, AgentError> {
    let Some(prog) = argv.first() else {
        return Err(AgentError::Config("empty command".into()));
    };
    let path = resolve_program(prog, envp)?;
    let cargv = argv.iter().map(|a| cstring(a)).collect::<Result<Vec<_>, _>>()?;
    Ok(sysproc::spawn_child(stdin, out, ChildAction::Exec { path: &path, argv: &cargv, envp }))
}

/// `base` without the variables named in `extra`, then `extra`.
fn env_with(base: &[CString], extra: &[(String, String)]) -> Result<Vec<CString>, AgentError> {
    let mut env = Vec::with_capacity(base.len() + extra.len());
    for e in base {
        let name = e.to_bytes().split(|&b| b == b'=').next().unwrap_or(&[]);
        if !extra.iter().any(|(k, _)| k.as_bytes() == name) {
            env.push(e.clone());
        }
    }
    for (k, v) in extra {
        if k.is_empty() || k.contains('=') {
            return Err(AgentError::Config(format!("bad environment variable name {k:?}")));
        }
        env.push(cstring(&format!("{k}={v}"))?);
    }
    Ok(env)
}

/// `prog` as is when it contains a `/`, else looked up in the children's `PATH`.
fn resolve_program(prog: &str, env: &[CString]) -> Result<CString, AgentError> {
    if prog.contains('/') {
        return cstring(prog);
    }
    let path = env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = format!("{dir}/{prog}");
        if nix::unistd::access(cand.as_str(), nix::unistd::AccessFlags::X_OK).is_ok() {
            return cstring(&cand);
        }
    }
    Err(AgentError::Config(format!("{prog}: command not found in PATH")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_str(cap: usize, pushes: &[&[u8]]) -> (String, bool) {
        let mut r = Ring::new(cap);
        for p in pushes {
            r.push(p);
        }
        (r.to_string_lossy(), r.dropped)
    }

    #[test]
    fn ring_keeps_the_tail() {
        assert_eq!(ring_str(8, &[b"abc", b"def"]), ("abcdef".into(), false));
        assert_eq!(ring_str(8, &[b"abcdef", b"ghijk"]), ("defghijk".into(), true));
        assert_eq!(ring_str(4, &[b"abcdefgh"]), ("efgh".into(), true));
        assert_eq!(ring_str(4, &[b"abcd"]), ("abcd".into(), false));
        assert_eq!(ring_str(4, &[b"a", b"bcdef", b"g"]), ("defg".into(), true));
        let mut r = Ring::new(5);
        for i in 0..1000u32 {
            r.push(&[b'a' + (i % 26) as u8]);
        }
        assert_eq!(r.to_string_lossy().len(), 5);
        assert!(r.to_string_lossy().ends_with((b'a' + (999 % 26) as u8) as char));
    }

    #[test]
    fn ring_skips_a_split_utf8_sequence() {
        // "é" is C3 A9; cut between the two bytes.
        let (s, _) = ring_str(3, &["xé".as_bytes(), b"ab"]);
        assert_eq!(s, "ab");
        let (s, _) = ring_str(4, &["xé".as_bytes(), b"ab"]);
        assert_eq!(s, "éab");
    }

    #[test]
    fn judge_follows_lsb() {
        let d = |status| Done { tag: 0, status, output: "msg".into(), elapsed: Duration::ZERO };
        let judge = |op, d: &Done| judge(ExitRules::Lsb, op, d);
        assert_eq!(judge(Op::Start, &d(ExitKind::Code(0))).unwrap(), Outcome::Running);
        assert_eq!(judge(Op::Stop, &d(ExitKind::Code(0))).unwrap(), Outcome::Stopped);
        assert_eq!(judge(Op::Status, &d(ExitKind::Code(0))).unwrap(), Outcome::Running);
        assert_eq!(judge(Op::Status, &d(ExitKind::Code(3))).unwrap(), Outcome::Stopped);
        assert!(matches!(
            judge(Op::Start, &d(ExitKind::Code(3))),
            Err(AgentError::Exit { code: 3, ref output }) if output == "msg"
        ));
        assert!(matches!(judge(Op::Stop, &d(ExitKind::Code(1))), Err(AgentError::Exit { code: 1, .. })));
        assert!(matches!(judge(Op::Status, &d(ExitKind::Code(1))), Err(AgentError::Exit { code: 1, .. })));
        assert!(matches!(judge(Op::Start, &d(ExitKind::Signal(9))), Err(AgentError::Signal { signal: 9, .. })));
        assert!(matches!(judge(Op::Status, &d(ExitKind::TimedOut)), Err(AgentError::Timeout { .. })));
        assert!(matches!(judge(Op::Stop, &d(ExitKind::Code(7))), Err(AgentError::Exit { code: 7, .. })));
    }

    #[test]
    fn judge_follows_ocf() {
        let d = |code| Done { tag: 0, status: ExitKind::Code(code), output: "msg".into(), elapsed: Duration::ZERO };
        let j = |op, code| judge(ExitRules::Ocf, op, &d(code));
        assert_eq!(j(Op::Start, 0).unwrap(), Outcome::Running);
        assert_eq!(j(Op::Status, 0).unwrap(), Outcome::Running);
        assert_eq!(j(Op::Stop, 0).unwrap(), Outcome::Stopped);
        // OCF_NOT_RUNNING: stopped for monitor, a success for stop, an error for start.
        assert_eq!(j(Op::Status, 7).unwrap(), Outcome::Stopped);
        assert_eq!(j(Op::Stop, 7).unwrap(), Outcome::Stopped);
        assert!(matches!(j(Op::Start, 7), Err(AgentError::Ocf { code: 7, .. })));
        // LSB's "not running" means "unimplemented" to OCF.
        assert!(matches!(j(Op::Status, 3), Err(AgentError::Ocf { code: 3, .. })));
        assert_eq!(j(Op::Status, 190).unwrap(), Outcome::Running);
        for code in [1, 2, 3, 4, 5, 6, 8, 9, 191] {
            for op in [Op::Start, Op::Stop, Op::Status] {
                assert!(matches!(j(op, code), Err(AgentError::Ocf { code: c, .. }) if c == code), "{op:?} {code}");
            }
        }
        let e = j(Op::Start, 5).unwrap_err().to_string();
        assert_eq!(e, "exited with status 5 (OCF_ERR_INSTALLED: not installed): msg");
        let e = j(Op::Start, 6).unwrap_err().to_string();
        assert_eq!(e, "exited with status 6 (OCF_ERR_CONFIGURED: not configured): msg");
        let signal = Done { tag: 0, status: ExitKind::Signal(9), output: String::new(), elapsed: Duration::ZERO };
        assert!(matches!(judge(ExitRules::Ocf, Op::Stop, &signal), Err(AgentError::Signal { signal: 9, .. })));
    }

    #[test]
    fn exec_env_adds_and_replaces_variables() {
        let argv = ["/bin/sh".to_string(), "-c".into(), "echo \"$OCF_ROOT|$TANDEM_T1|${PATH:+path}\"".into()];
        let env = [("OCF_ROOT".to_string(), "/x/ocf".to_string()), ("TANDEM_T1".into(), "a b=c".into())];
        let d = run_blocking(Spawn::ExecEnv { argv: &argv, env: &env }, Duration::from_secs(10)).unwrap();
        assert_eq!(d.output, "/x/ocf|a b=c|path\n");
        let base = [CString::new("OCF_ROOT=/old").unwrap(), CString::new("KEEP=1").unwrap()];
        let e = env_with(&base, &env).unwrap();
        let e: Vec<&str> = e.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(e, ["KEEP=1", "OCF_ROOT=/x/ocf", "TANDEM_T1=a b=c"]);
        assert!(env_with(&base, &[("A=B".into(), "x".into())]).is_err());
        assert!(env_with(&base, &[("A".into(), "x\0y".into())]).is_err());
    }

    #[test]
    fn exec_captures_output_and_code() {
        let argv = ["/bin/sh".to_string(), "-c".into(), "echo out; echo err >&2; exit 3".into()];
        let d = run_blocking(Spawn::Exec(&argv), Duration::from_secs(10)).unwrap();
        assert_eq!(d.status, ExitKind::Code(3));
        assert_eq!(d.output, "out\nerr\n");
    }

    #[test]
    fn exec_resolves_path_and_reports_missing() {
        let argv = ["sh".to_string(), "-c".into(), "exit 0".into()];
        let d = run_blocking(Spawn::Exec(&argv), Duration::from_secs(10)).unwrap();
        assert_eq!(d.status, ExitKind::Code(0));
        let argv = ["no-such-program-tandem".to_string()];
        assert!(matches!(run_blocking(Spawn::Exec(&argv), Duration::from_secs(10)), Err(AgentError::Config(_))));
        let argv = ["/nonexistent/tandem-prog".to_string()];
        let d = run_blocking(Spawn::Exec(&argv), Duration::from_secs(10)).unwrap();
        assert_eq!(d.status, ExitKind::Code(127));
        assert!(d.output.contains("cannot execute /nonexistent/tandem-prog"), "{}", d.output);
    }

    #[test]
    fn fork_closure_code_and_message() {
        let mut f = || {
            child_print("not mounted\n");
            3
        };
        let d = run_blocking(Spawn::Fork(&mut f), Duration::from_secs(10)).unwrap();
        assert_eq!(d.status, ExitKind::Code(3));
        assert_eq!(d.output, "not mounted\n");
        assert_eq!(judge(ExitRules::Lsb, Op::Status, &d).unwrap(), Outcome::Stopped);
    }

    #[test]
    fn child_has_clean_signals_and_no_extra_fds() {
        // SIGPIPE is ignored in Rust programs; the child must see the default again,
        // and only fds 0-2 must be open (plus the one `ls` itself opens for /proc/self/fd).
        let argv = [
            "/bin/sh".to_string(),
            "-c".into(),
            "grep -E '^Sig(Ign|Blk)' /proc/self/status; ls /proc/self/fd | wc -l; [ -n \"$PATH\" ] && echo path".into(),
        ];
        let d = run_blocking(Spawn::Exec(&argv), Duration::from_secs(10)).unwrap();
        assert_eq!(d.status, ExitKind::Code(0));
        let mut lines = d.output.lines();
        assert_eq!(lines.next(), Some("SigBlk:\t0000000000000000"), "{}", d.output);
        assert_eq!(lines.next(), Some("SigIgn:\t0000000000000000"), "{}", d.output);
        assert_eq!(lines.next().map(str::trim), Some("4"), "{}", d.output);
        assert_eq!(lines.next(), Some("path"));
    }

    #[test]
    fn full_table_is_an_error() {
        let mut r = Runner::new(1);
        let argv = ["/bin/sh".to_string(), "-c".into(), "exit 0".into()];
        let now = crate::time::now();
        r.spawn(now, 1, Spawn::Exec(&argv), Duration::from_secs(5)).unwrap();
        assert!(r.spawn(now, 2, Spawn::Exec(&argv), Duration::from_secs(5)).is_err());
        assert_eq!(r.running(), 1);
        r.kill_all();
        assert_eq!(r.running(), 0);
    }

    #[test]
    fn a_full_pool_does_not_take_another_pools_slots() {
        let mut r = Runner::with_pools(&[1, 1], 256);
        let now = crate::time::now();
        let sleep = ["/bin/sleep".to_string(), "5".to_string()];
        r.spawn_in(now, 0, 1, Spawn::Exec(&sleep), Duration::from_secs(10)).unwrap();
        let e = r.spawn_in(now, 0, 2, Spawn::Exec(&sleep), Duration::from_secs(10)).unwrap_err();
        assert!(e.to_string().contains("all 1 slots are busy"), "{e}");
        r.spawn_in(now, 1, 3, Spawn::Exec(&sleep), Duration::from_secs(10)).unwrap();
        assert_eq!(r.running(), 2);
        assert_eq!(r.stuck(), 0);
        r.kill_all();
    }
}
