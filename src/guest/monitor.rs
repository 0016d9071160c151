//! Starting a guest, and the monitor: the host-side process that is the parent of the
//! guest's init for the guest's whole life.
//!
//! ```text
//! caller (agent child or CLI)          checks, cgroups + limits, console pty, report pipe
//!   └ fork ─ setsid ─ fork ─ exit      (so the monitor is re-parented to the host's init)
//!              └ monitor               stdio on /dev/null, every other fd closed
//!                 └ clone3(NEWNS|NEWPID|NEWUTS|NEWIPC[|NEWNET], INTO_CGROUP v2)
//!                     child: waits for "go"        monitor: v1 cgroups, network, "go"
//!                     child: tree, rights, exec    monitor: error pipe EOF = init runs
//!                 monitor: state file, "ok PID" to the caller, then: console → log,
//!                          init's exit → kill leftovers, remove cgroups, `ended`, exit
//! ```
//! The caller waits for the monitor's one-line report ([`START_WAIT`]); the monitor waits
//! for the child's set-up ([`SETUP_WAIT`]); the monitor's own loop wakes at least every
//! minute.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::cgroup::{self, CgDir, Limits};
use super::setup::{self, ChildPlan};
use super::state::{ProcId, State};
use super::{cap_last_cap, create_private_dir, net, seccomp, GuestError, Guests, GUEST_PATH};
use crate::config::guest::{signal_name, GuestNet, GuestSpec};
use crate::sys;

/// How long the caller waits for the monitor's report.
pub const START_WAIT: Duration = Duration::from_secs(15);
/// How long the monitor waits for the guest's set-up to reach exec.
pub const SETUP_WAIT: Duration = Duration::from_secs(10);
/// Console log size before it is rotated to `console.1`.
pub const CONSOLE_MAX: u64 = 256 * 1024;
/// How often the monitor wakes without events.
const IDLE_WAKE_MS: i32 = 60_000;
/// How long the monitor gives leftovers to die and cgroups to go.
const CLEANUP_WAIT: Duration = Duration::from_secs(5);

fn sys_err(op: impl Into<String>, errno: Errno) -> GuestError {
    GuestError::Sys { op: op.into(), errno }
}

/// Everything the monitor needs, prepared by the caller before the forks.
struct Ctx {
    name: String,
    dir: PathBuf,
    root: String,
    dirs: Vec<CgDir>,
    net: GuestNet,
    caps: u64,
    stop_signal: i32,
    stop_timeout_ms: u64,
    seccomp: bool,
    v2: Option<OwnedFd>,
    master: OwnedFd,
    slave: OwnedFd,
    console: Console,
    report: Option<OwnedFd>,
    child: ChildPlan,
}

impl Ctx {
    /// One line to the caller waiting in [`start`].
    fn report_line(&self, line: &str) {
        if let Some(r) = &self.report {
            sys::process::write_all_raw(r.as_raw_fd(), format!("{line}\n").as_bytes());
        }
    }
}

/// Starts the guest; see the module doc. Returns the init's host pid.
pub(super) fn start(g: &Guests, spec: &GuestSpec) -> Result<i32, GuestError> {
    // The monitor puts /dev/null on 0, 1, 2: none of the fds it keeps may be one of them.
    sys::fd::ensure_std_fds();
    let md = fs::metadata(&spec.root)
        .map_err(|e| GuestError::Config(format!("root directory {}: {}", spec.root.display(), e)))?;
    if !md.is_dir() {
        return Err(GuestError::Config(format!("root directory {} is not a directory", spec.root.display())));
    }
    // An empty program: no filter (`seccomp=off`).
    let filter = if spec.seccomp { seccomp::program().map_err(GuestError::Config)? } else { Vec::new() };
    let layout = cgroup::discover()?;
    let limits = Limits { memory: spec.memory, cpu_percent: spec.cpu_percent, pids: spec.pids };
    let plan = cgroup::plan(&layout, g.cgroup_parent(), &spec.name, &limits).map_err(GuestError::Config)?;
    let dir = g.dir(&spec.name);
    create_private_dir(&dir)?;
    let _ = fs::remove_file(dir.join("ended"));
    let console = Console::open(&dir)?;
    let pty = nix::pty::openpty(None, None).map_err(|e| sys_err("open a pty for the console", e))?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))
            .map_err(|e| sys_err("fcntl", e))?;
    }
    nix::fcntl::fcntl(pty.master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK | OFlag::O_RDWR))
        .map_err(|e| sys_err("fcntl", e))?;

    cgroup::create(&plan)?;
    let r = (|| {
        let v2 = match plan.v2() {
            Some(d) => Some(
                sys::fd::open(&d.path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                    .map_err(|e| sys_err(format!("open {}", d.path.display()), e))?,
            ),
            None => None,
        };
        let tty = fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .map_err(|e| super::sys_err("find the console pty's name", &e))?;
        let steps = setup::plan(&spec.root, &tty).map_err(GuestError::Config)?;
        let env = [format!("PATH={GUEST_PATH}"), "TERM=linux".to_string(), "container=tandem".to_string()];
        let child = ChildPlan::new(
            steps,
            &spec.hostname,
            pty.slave.as_raw_fd(),
            spec.caps,
            cap_last_cap(),
            filter,
            &spec.init,
            &env,
        )
        .map_err(GuestError::Config)?;
        let (rep_r, rep_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| sys_err("pipe", e))?;
        let ctx = Ctx {
            name: spec.name.clone(),
            dir: dir.clone(),
            root: spec.root.display().to_string(),
            dirs: plan.dirs.clone(),
            net: spec.net.clone(),
            caps: spec.caps,
            stop_signal: spec.stop_signal,
            stop_timeout_ms: u64::try_from(spec.stop_timeout.as_millis()).unwrap_or(u64::MAX),
            seccomp: spec.seccomp,
            v2,
            master: pty.master,
            slave: pty.slave,
            console,
            report: Some(rep_w),
            child,
        };
        match sys::rt::fork().map_err(|e| sys_err("fork", e))? {
            sys::rt::Forked::Child => {
                let _ = nix::unistd::setsid();
                match sys::rt::fork() {
                    Ok(sys::rt::Forked::Child) => monitor_main(ctx),
                    Ok(sys::rt::Forked::Parent { .. }) => sys::ns::exit_now(0),
                    Err(e) => {
                        ctx.report_line(&format!("err fork: {}", e.desc()));
                        sys::ns::exit_now(1)
                    }
                }
            }
            sys::rt::Forked::Parent { child } => {
                drop(ctx);
                let _ = waitpid(Pid::from_raw(child), None);
                read_report(&rep_r, &spec.name)
            }
        }
    })();
    if r.is_err() {
        cgroup::kill_all(&plan.dirs, Duration::from_secs(2));
        let _ = cgroup::remove(&plan.dirs, Duration::from_secs(2));
    }
    r
}

/// Reads the monitor's `ok PID` / `err MESSAGE` line.
fn read_report(fd: &OwnedFd, name: &str) -> Result<i32, GuestError> {
    let end = Instant::now() + START_WAIT;
    let mut buf = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(GuestError::Other(format!("guest {name}: no word from its monitor within {START_WAIT:?}")));
        }
        let mut fds = [libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        match sys::process::poll(&mut fds, i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(sys_err("poll", e)),
        }
        let mut chunk = [0u8; 512];
        match nix::unistd::read(fd.as_raw_fd(), &mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("read the monitor's report", e)),
        }
        if buf.len() > 4096 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().unwrap_or("");
    if let Some(pid) = line.strip_prefix("ok ").and_then(|p| p.trim().parse::<i32>().ok()) {
        return Ok(pid);
    }
    match line.strip_prefix("err ") {
        Some(m) => Err(GuestError::Other(format!("guest {name}: {m}"))),
        None => Err(GuestError::Other(format!("guest {name}: its monitor ended without a report"))),
    }
}

/// The console log: `DIR/console`, rotated to `console.1` at [`CONSOLE_MAX`] bytes.
struct Console {
    path: PathBuf,
    file: Option<fs::File>,
    size: u64,
}

impl Console {
    fn open(dir: &Path) -> Result<Console, GuestError> {
        let path = dir.join("console");
        if path.exists() {
            let _ = fs::rename(&path, dir.join("console.1"));
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| super::sys_err(format!("open {}", path.display()), &e))?;
        Ok(Console { path, file: Some(file), size: 0 })
    }

    fn write(&mut self, data: &[u8]) {
        if self.size.saturating_add(data.len() as u64) > CONSOLE_MAX {
            let _ = fs::rename(&self.path, self.path.with_extension("1"));
            self.file = fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path).ok();
            self.size = 0;
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(data).is_ok() {
                self.size = self.size.saturating_add(data.len() as u64);
            }
        }
    }

    fn note(&mut self, msg: &str) {
        self.write(format!("\ntandem: {msg}\n").as_bytes());
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.file.as_ref().map(|f| f.as_raw_fd())
    }
}

/// The monitor process. Never returns.
fn monitor_main(mut ctx: Ctx) -> ! {
    let _ = nix::sys::prctl::set_name(c"tandem-guest");
    for s in [Signal::SIGPIPE, Signal::SIGHUP, Signal::SIGINT] {
        let _ = sys::process::ignore_signal(s);
    }
    if let Ok(null) = sys::fd::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
        for n in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), n);
        }
    }
    let mut keep = vec![ctx.master.as_raw_fd(), ctx.slave.as_raw_fd()];
    keep.extend(ctx.report.as_ref().map(|f| f.as_raw_fd()));
    keep.extend(ctx.console.raw_fd());
    keep.extend(ctx.v2.as_ref().map(|f| f.as_raw_fd()));
    close_all_but(&keep);

    match launch(&mut ctx) {
        Err(msg) => {
            ctx.console.note(&format!("guest {} did not start: {msg}", ctx.name));
            ctx.report_line(&format!("err {msg}"));
            sys::ns::exit_now(1)
        }
        Ok((pid, pidfd)) => {
            ctx.console.note(&format!("guest {} started, init pid {pid} (host)", ctx.name));
            ctx.report_line(&format!("ok {pid}"));
            ctx.report = None;
            watch(ctx, pid, pidfd)
        }
    }
}

/// Closes every fd >= 3 that is not in `keep`.
fn close_all_but(keep: &[RawFd]) {
    let fds: Vec<RawFd> = match fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd.filter_map(Result::ok).filter_map(|e| e.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => (3..1024).collect(),
    };
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Clones the guest's init and waits until it runs (or its set-up failed).
fn launch(ctx: &mut Ctx) -> Result<(Pid, OwnedFd), String> {
    let (go_r, go_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {}", e.desc()))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {}", e.desc()))?;
    ctx.child.go = go_r.as_raw_fd();
    ctx.child.err = err_w.as_raw_fd();
    ctx.child.close = vec![go_w.as_raw_fd(), err_r.as_raw_fd(), ctx.master.as_raw_fd()];
    ctx.child.close.extend(ctx.report.as_ref().map(|f| f.as_raw_fd()));
    ctx.child.close.extend(ctx.console.raw_fd());
    ctx.child.close.extend(ctx.v2.as_ref().map(|f| f.as_raw_fd()));
    let mut flags = sys::ns::CLONE_NEWNS | sys::ns::CLONE_NEWPID | sys::ns::CLONE_NEWUTS | sys::ns::CLONE_NEWIPC;
    if ctx.net.private() {
        flags |= sys::ns::CLONE_NEWNET;
    }
    let (pid, pidfd) = match sys::ns::clone_fork(flags, ctx.v2.as_ref().map(|f| f.as_fd())) {
        Ok(sys::ns::Cloned::Child) => setup::child_main(&ctx.child),
        Ok(sys::ns::Cloned::Parent { pid, pidfd }) => (pid, pidfd),
        Err(Errno::ENOSYS) | Err(Errno::E2BIG) => {
            return Err("clone3 with CLONE_INTO_CGROUP is not available (guests need Linux 5.8 or later)".into())
        }
        Err(e) => return Err(format!("clone into new namespaces: {}", e.desc())),
    };
    drop(go_r);
    drop(err_w);
    let abort = |msg: String| -> Result<(Pid, OwnedFd), String> {
        let _ = sys::ns::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = waitpid(pid, None);
        Err(msg)
    };
    if let Err(e) = cgroup::join(&ctx.dirs, pid.as_raw(), ctx.v2.is_some()) {
        return abort(e.to_string());
    }
    if ctx.net.private() {
        let r = net::netns_of(pid.as_raw()).and_then(|ns| net::setup(ns.as_fd(), &ctx.net));
        if let Err(e) = r {
            return abort(format!("network ({}): {e}", ctx.net.text()));
        }
    }
    if nix::unistd::write(&go_w, b"g") != Ok(1) {
        return abort("the guest's first process died before its set-up".to_string());
    }
    drop(go_w);
    // EOF on the error pipe: init has been executed. Eight bytes: (step, errno).
    let end = Instant::now() + SETUP_WAIT;
    let mut msg = [0u8; 8];
    let mut got = 0usize;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return abort(format!("the guest's set-up did not finish within {SETUP_WAIT:?}"));
        }
        let mut fds = [libc::pollfd { fd: err_r.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        match sys::process::poll(&mut fds, i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return abort(format!("poll: {}", e.desc())),
        }
        match nix::unistd::read(err_r.as_raw_fd(), msg.get_mut(got..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return abort(format!("read: {}", e.desc())),
        }
        if got >= 8 {
            break;
        }
    }
    if got > 0 {
        let step = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let errno = Errno::from_raw(i32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]));
        return abort(ctx.child.describe_failure(step, errno));
    }
    let state = (|| -> Result<(), String> {
        let init = ProcId::of(pid.as_raw()).map_err(|e| format!("the guest's init: {}", e.desc()))?;
        let monitor = ProcId::of(nix::unistd::getpid().as_raw()).map_err(|e| format!("the monitor: {}", e.desc()))?;
        let started =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        State {
            name: ctx.name.clone(),
            root: ctx.root.clone(),
            init,
            monitor,
            caps: ctx.caps,
            stop_signal: ctx.stop_signal,
            stop_timeout_ms: ctx.stop_timeout_ms,
            seccomp: ctx.seccomp,
            net: ctx.net.text(),
            cgroups: ctx.dirs.clone(),
            started,
        }
        .save(&ctx.dir)
        .map_err(|e| format!("write {}/state: {e}", ctx.dir.display()))
    })();
    if let Err(m) = state {
        return abort(m);
    }
    Ok((pid, pidfd))
}

/// Logs the console until init ends, then cleans up and exits.
fn watch(mut ctx: Ctx, pid: Pid, pidfd: OwnedFd) -> ! {
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            libc::pollfd { fd: ctx.master.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        match sys::process::poll(&mut fds, IDLE_WAKE_MS) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
        if fds[0].revents & libc::POLLIN != 0 {
            drain(&mut ctx, &mut buf, 16);
        }
        if fds[1].revents != 0 {
            break;
        }
    }
    let how = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break format!("init exited with status {code}"),
            Ok(WaitStatus::Signaled(_, s, _)) => {
                let n = s as i32;
                break match n {
                    libc::SIGHUP => "rebooted (init killed by SIGHUP)".to_string(),
                    libc::SIGINT => "halted or powered off (init killed by SIGINT)".to_string(),
                    _ => format!("init killed by {}", signal_name(n)),
                };
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => break format!("init gone ({})", e.desc()),
        }
    };
    drain(&mut ctx, &mut buf, 64);
    ctx.console.note(&format!("guest {} ended: {how}", ctx.name));
    // The PID namespace died with init; anything in the cgroups (nothing, normally) is
    // killed, then the cgroups go. The mount namespace went with its last process.
    if !cgroup::kill_all(&ctx.dirs, CLEANUP_WAIT) {
        ctx.console.note("processes are left in the guest's cgroups");
    }
    if let Err(e) = cgroup::remove(&ctx.dirs, CLEANUP_WAIT) {
        ctx.console.note(&e.to_string());
    }
    let _ = fs::write(ctx.dir.join("ended"), format!("{how}\n"));
    if let Ok(Some(st)) = State::load(&ctx.dir) {
        if st.init.pid == pid.as_raw() {
            let _ = fs::remove_file(ctx.dir.join("state"));
        }
    }
    sys::ns::exit_now(0)
}

/// Copies what the console has into the log (at most `reads` reads).
fn drain(ctx: &mut Ctx, buf: &mut [u8], reads: usize) {
    for _ in 0..reads {
        match nix::unistd::read(ctx.master.as_raw_fd(), buf) {
            Ok(0) => return,
            Ok(n) => ctx.console.write(buf.get(..n).unwrap_or(&[])),
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}
