//! Guests: whole virtual servers (the linux-vserver idea) built from the kernel's own
//! facilities: namespaces (mount, PID, UTS, IPC, cgroup, optionally network),
//! `pivot_root`, a capability bounding set, `no_new_privs`, a seccomp filter and cgroup
//! limits. tandem starts and stops a guest as a whole; what runs inside is the guest's
//! own business (its own init, cron, MTA, logrotate). See `docs/guests.md`.
//!
//! Modules: `cgroup` (limits and clean-up, v2 and v1), `setup` (the tree and the rights,
//! run in the guest's first process), `seccomp` (the filter program), `monitor` (start,
//! and the host-side process that owns each guest), `net` (private network namespaces),
//! `state` (the runtime files that make every operation work from any process).
//!
//! Processes of a running guest:
//! ```text
//! host init (or the nearest subreaper)
//!  └─ tandem-guest NAME      the monitor: parent of the guest's init, keeps the console
//!      └─ init (pid 1 in the guest)     pty master, logs it, reaps init, cleans up
//!          └─ …the guest's processes
//! ```
//! `start` runs in a forked child of the daemon (or in the CLI); it forks, the fork calls
//! `setsid` and forks the monitor, then exits, so the monitor is re-parented to the host's
//! init and lives on when the caller exits. Consequences: a guest survives a restart or a
//! crash of the daemon (like every other resource, a new daemon finds it with `status`);
//! the daemon never has guest processes as children (its runner only reaps its own); and
//! when a guest's init ends for any reason (stop, reboot inside the guest, crash) the
//! monitor sees it at once, kills what is left in the guest's cgroups, removes them, and
//! records how it ended.
//!
//! API for the CLI (`tandem guest list | enter | start | stop`) and the `guest` agent:
//! [`Guests::list`], [`Guests::enter`], [`Guests::start`], [`Guests::stop`],
//! [`Guests::status`], [`Guests::info`]; for private networks [`Guests::netns`].

pub mod cgroup;
pub mod monitor;
pub mod net;
pub mod seccomp;
pub mod setup;
pub mod state;

use core::fmt;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::config::guest::{check_guest_name, signal_name, GuestSpec};
use crate::sys;
use state::{ProcId, State};

/// Where guests keep their runtime files.
pub const RUN_DIR: &str = "/run/tandem/guests";
/// The cgroup directory (in every hierarchy) under which each guest gets `NAME`.
pub const CGROUP_PARENT: &str = "tandem";
/// How long `stop` waits for the guest's processes after SIGKILL, and for the monitor.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long an operation waits for another one on the same guest.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// `PATH` inside a guest for `enter` and for init.
pub const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors of the guest layer.
#[derive(Debug)]
pub enum GuestError {
    /// The spec or the host cannot work (missing root, unknown interface, no controller).
    Config(String),
    /// A system call failed.
    Sys { op: String, errno: Errno },
    /// Anything else (the guest's set-up failed, processes that will not die).
    Other(String),
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestError::Config(m) | GuestError::Other(m) => write!(f, "{m}"),
            GuestError::Sys { op, errno } => write!(f, "{op}: {}", errno.desc()),
        }
    }
}

impl std::error::Error for GuestError {}

fn sys_err(op: impl Into<String>, e: &std::io::Error) -> GuestError {
    GuestError::Sys { op: op.into(), errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)) }
}

/// Whether a guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestState {
    Running,
    Stopped,
}

impl GuestState {
    pub fn name(self) -> &'static str {
        match self {
            GuestState::Running => "running",
            GuestState::Stopped => "stopped",
        }
    }
}

/// One guest, for `tandem guest list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestInfo {
    pub name: String,
    pub state: GuestState,
    /// The guest's init, as a host pid.
    pub init_pid: Option<i32>,
    /// Memory in use by the guest's cgroup.
    pub memory_bytes: Option<u64>,
    /// Tasks in the guest's cgroup.
    pub pids: Option<u64>,
    /// For a stopped guest: how its last run ended (`killed by SIGHUP (reboot)`…).
    pub ended: Option<String>,
}

/// The guests of this host: where their runtime files and cgroups live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guests {
    run_dir: PathBuf,
    cgroup_parent: String,
}

impl Default for Guests {
    fn default() -> Guests {
        Guests::system()
    }
}

/// An exclusive lock on one guest's name (flock on `RUN_DIR/NAME.lock`).
struct Lock(#[allow(dead_code)] nix::fcntl::Flock<fs::File>);

impl Guests {
    /// `/run/tandem/guests` and cgroups under `tandem/`.
    pub fn system() -> Guests {
        Guests::with_dirs(Path::new(RUN_DIR), CGROUP_PARENT)
    }

    /// Other places (tests).
    pub fn with_dirs(run_dir: &Path, cgroup_parent: &str) -> Guests {
        Guests { run_dir: run_dir.to_path_buf(), cgroup_parent: cgroup_parent.trim_matches('/').to_string() }
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// `RUN_DIR/NAME`: the state file, the console log (`console`, `console.1`) and how
    /// the last run ended (`ended`).
    pub fn dir(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    fn lock(&self, name: &str) -> Result<Lock, GuestError> {
        check_guest_name(name).map_err(GuestError::Config)?;
        create_private_dir(&self.run_dir)?;
        let path = self.run_dir.join(format!("{name}.lock"));
        let end = Instant::now() + LOCK_WAIT;
        loop {
            let f = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| sys_err(format!("open {}", path.display()), &e))?;
            match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(Lock(l)),
                Err((_, Errno::EWOULDBLOCK)) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(GuestError::Other(format!("guest {name} is busy (another start or stop runs)")))
                }
                Err((_, errno)) => return Err(GuestError::Sys { op: format!("lock {}", path.display()), errno }),
            }
        }
    }

    fn load(&self, name: &str) -> Result<Option<State>, GuestError> {
        check_guest_name(name).map_err(GuestError::Config)?;
        State::load(&self.dir(name)).map_err(GuestError::Other)
    }

    /// Starts the guest (or does nothing if it runs). Returns the init's host pid once
    /// init has been executed inside the finished guest.
    pub fn start(&self, spec: &GuestSpec) -> Result<i32, GuestError> {
        let _lock = self.lock(&spec.name)?;
        if let Some(st) = self.load(&spec.name)? {
            if running(&st) {
                return Ok(st.init.pid);
            }
            // The last run ended; let its monitor finish, then clean up what is left.
            self.finish_stopped(&st)?;
        }
        self.remove_stray_cgroups(&spec.name)?;
        monitor::start(self, spec)
    }

    /// Stops the guest: `stop_signal` to its init, up to `timeout` (the guest's
    /// `stop_timeout` when `None`) for it to end, then SIGKILL to everything in its
    /// cgroups; then its cgroups are removed. Its mounts live in its own mount namespace,
    /// which dies with its last process. Succeeds at once for a guest that does not run.
    pub fn stop(&self, name: &str, timeout: Option<Duration>) -> Result<(), GuestError> {
        let _lock = self.lock(name)?;
        let Some(st) = self.load(name)? else {
            return self.remove_stray_cgroups(name);
        };
        if st.init.alive() {
            if let Some(pidfd) = open_pidfd(st.init) {
                let wait = timeout.unwrap_or(Duration::from_millis(st.stop_timeout_ms));
                if let Err(errno) = sys::ns::pidfd_send_signal(pidfd.as_fd(), st.stop_signal) {
                    log::warn!("guest {name}: {} to its init: {}", signal_name(st.stop_signal), errno.desc());
                }
                if !wait_exit(&pidfd, wait) {
                    log::warn!(
                        "guest {name}: init still runs {} after {}; killing the guest",
                        crate::time::fmt_duration(wait),
                        signal_name(st.stop_signal)
                    );
                    kill_guest(&st, &pidfd);
                }
            }
        }
        self.finish_stopped(&st)
    }

    /// After init has ended: waits for the monitor to clean up, then makes sure no
    /// process and no cgroup is left and the state file is gone.
    fn finish_stopped(&self, st: &State) -> Result<(), GuestError> {
        if st.init.alive() {
            if let Some(pidfd) = open_pidfd(st.init) {
                kill_guest(st, &pidfd);
            }
        }
        if st.monitor.alive() {
            if let Some(m) = open_pidfd(st.monitor) {
                if !wait_exit(&m, KILL_WAIT) {
                    log::warn!("guest {}: its monitor (pid {}) did not finish; cleaning up", st.name, st.monitor.pid);
                }
            }
        }
        if !cgroup::kill_all(&st.cgroups, KILL_WAIT) {
            return Err(GuestError::Other(format!(
                "guest {}: processes are left in its cgroups after SIGKILL",
                st.name
            )));
        }
        cgroup::remove(&st.cgroups, KILL_WAIT)?;
        let dir = self.dir(&st.name);
        if matches!(State::load(&dir), Ok(Some(s)) if s.init == st.init) {
            let _ = fs::remove_file(dir.join("state"));
        }
        if !dir.join("ended").exists() {
            let _ = fs::write(dir.join("ended"), "stopped by tandem (its monitor was gone)\n");
        }
        Ok(())
    }

    /// Cgroups named like the guest that no state file accounts for (a start that died
    /// half-way, or a host that lost `/run`): emptied and removed.
    fn remove_stray_cgroups(&self, name: &str) -> Result<(), GuestError> {
        let layout = match cgroup::discover() {
            Ok(l) => l,
            Err(_) => return Ok(()),
        };
        let Ok(plan) = cgroup::plan(&layout, &self.cgroup_parent, name, &cgroup::Limits::default()) else {
            return Ok(());
        };
        let present: Vec<cgroup::CgDir> = plan.dirs.into_iter().filter(|d| d.path.exists()).collect();
        if present.is_empty() {
            return Ok(());
        }
        if !cgroup::kill_all(&present, KILL_WAIT) {
            return Err(GuestError::Other(format!("guest {name}: processes are left in its cgroups after SIGKILL")));
        }
        cgroup::remove(&present, KILL_WAIT)
    }

    /// Running: its init is alive (same pid, same start time) and its cgroup is not empty.
    pub fn status(&self, name: &str) -> Result<GuestState, GuestError> {
        Ok(match self.load(name)? {
            Some(st) if running(&st) => GuestState::Running,
            _ => GuestState::Stopped,
        })
    }

    /// One guest's details.
    pub fn info(&self, name: &str) -> Result<GuestInfo, GuestError> {
        let st = self.load(name)?;
        let ended = fs::read_to_string(self.dir(name).join("ended")).ok().map(|s| s.trim().to_string());
        Ok(match st {
            Some(st) if running(&st) => GuestInfo {
                name: name.to_string(),
                state: GuestState::Running,
                init_pid: Some(st.init.pid),
                memory_bytes: cgroup::memory_bytes(&st.cgroups),
                pids: cgroup::pids(&st.cgroups),
                ended: None,
            },
            _ => GuestInfo {
                name: name.to_string(),
                state: GuestState::Stopped,
                init_pid: None,
                memory_bytes: None,
                pids: None,
                ended,
            },
        })
    }

    /// Every guest this host has run since boot (runtime directories), sorted by name.
    pub fn list(&self) -> Vec<GuestInfo> {
        let Ok(rd) = fs::read_dir(&self.run_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_guest_name(n).is_ok())
            .collect();
        names.sort();
        names.iter().filter_map(|n| self.info(n).ok()).collect()
    }

    /// The cgroup directories of a running guest (measurements, tests).
    pub fn cgroups(&self, name: &str) -> Result<Vec<cgroup::CgDir>, GuestError> {
        match self.load(name)? {
            Some(st) if running(&st) => Ok(st.cgroups),
            _ => Err(GuestError::Other(format!("guest {name} is not running"))),
        }
    }

    /// The network namespace of a running guest (for `net=macvlan`/`ipvlan`: add the
    /// group's addresses with [`net::add_address`], announce them from inside with
    /// [`net::with_netns`]).
    pub fn netns(&self, name: &str) -> Result<OwnedFd, GuestError> {
        let st = self
            .load(name)?
            .filter(running)
            .ok_or_else(|| GuestError::Other(format!("guest {name} is not running")))?;
        let fd = net::netns_of(st.init.pid)?;
        // The pid may have been reused between the check and the open: check again.
        if !st.init.alive() {
            return Err(GuestError::Other(format!("guest {name} is not running")));
        }
        Ok(fd)
    }

    /// Runs `cmd` (a shell when empty) inside a running guest, with the guest's
    /// namespaces, cgroups, capability bounding set, no_new_privs and seccomp filter, and
    /// this process's stdin, stdout and stderr. Returns its exit code (128 + signal when
    /// killed). A bare command name is looked up in the guest's standard `PATH`.
    pub fn enter(&self, name: &str, cmd: &[String]) -> Result<i32, GuestError> {
        let st = self
            .load(name)?
            .filter(running)
            .ok_or_else(|| GuestError::Other(format!("guest {name} is not running")))?;
        let pidfd = open_pidfd(st.init).ok_or_else(|| GuestError::Other(format!("guest {name} is not running")))?;
        let filter = if st.seccomp { seccomp::program().map_err(GuestError::Config)? } else { Vec::new() };
        let cap_last = cap_last_cap();
        let cmd: Vec<String> = if cmd.is_empty() { vec!["/bin/sh".to_string()] } else { cmd.to_vec() };
        let c = |s: &str| CString::new(s).map_err(|_| GuestError::Config(format!("'{s}' contains a NUL byte")));
        let argv: Vec<CString> = cmd.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
        let first = cmd.first().map(String::as_str).unwrap_or("/bin/sh");
        let candidates: Vec<CString> = if first.contains('/') {
            vec![c(first)?]
        } else {
            GUEST_PATH.split(':').map(|d| c(&format!("{d}/{first}"))).collect::<Result<_, _>>()?
        };
        let term = std::env::var("TERM").unwrap_or_else(|_| "dumb".to_string());
        let envp: Vec<CString> =
            [format!("PATH={GUEST_PATH}"), "HOME=/root".to_string(), format!("TERM={term}"), "container=tandem".into()]
                .iter()
                .map(|s| c(s))
                .collect::<Result<_, _>>()?;
        let argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).chain([core::ptr::null()]).collect();
        let envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).chain([core::ptr::null()]).collect();
        let nstypes = sys::ns::CLONE_NEWNS
            | sys::ns::CLONE_NEWPID
            | sys::ns::CLONE_NEWUTS
            | sys::ns::CLONE_NEWIPC
            | sys::ns::CLONE_NEWCGROUP
            | sys::ns::CLONE_NEWNET;

        let child = match sys::rt::fork().map_err(|errno| GuestError::Sys { op: "fork".into(), errno })? {
            sys::rt::Forked::Parent { child } => Pid::from_raw(child),
            sys::rt::Forked::Child => {
                // The cgroups first (their host paths vanish with the guest's mount
                // namespace), then every namespace at once, then a child that is in the
                // guest's PID namespace.
                let fail = |what: &str, e: Errno| -> ! {
                    sys::process::write_all_raw(2, format!("tandem: enter {name}: {what}: {}\n", e.desc()).as_bytes());
                    sys::ns::exit_now(125)
                };
                if let Err(e) = cgroup::join(&st.cgroups, 0, false) {
                    sys::process::write_all_raw(2, format!("tandem: enter {name}: {e}\n").as_bytes());
                    sys::ns::exit_now(125);
                }
                if let Err(e) = sys::ns::setns_pidfd(pidfd.as_fd(), nstypes) {
                    fail("join the guest's namespaces", e);
                }
                let inner = match sys::rt::fork() {
                    Ok(sys::rt::Forked::Parent { child }) => Pid::from_raw(child),
                    Ok(sys::rt::Forked::Child) => {
                        let _ = nix::unistd::chdir("/");
                        let _ = sys::ns::cloexec_from(3);
                        sys::process::reset_signals();
                        if let Err(e) = sys::caps::bounding_set_keep(st.caps, cap_last) {
                            fail("capability bounding set", e);
                        }
                        if let Err(e) = sys::caps::clear_inheritable_and_ambient() {
                            fail("capabilities", e);
                        }
                        if let Err(e) = sys::caps::set_no_new_privs() {
                            fail("no_new_privs", e);
                        }
                        if !filter.is_empty() {
                            if let Err(e) = sys::caps::install_seccomp(&filter) {
                                fail("seccomp filter", e);
                            }
                        }
                        let mut last = Errno::ENOENT;
                        for path in &candidates {
                            let e = sys::ns::execve(path, &argv_p, &envp_p);
                            if e != Errno::ENOENT {
                                last = e;
                            }
                        }
                        fail(&format!("execute {first}"), last)
                    }
                    Err(e) => fail("fork", e),
                };
                // Terminal signals are for the command, not for this go-between.
                ignore_interactive();
                sys::ns::exit_now(wait_code(inner))
            }
        };
        Ok(sys::process::with_interactive_signals_ignored(|| wait_code(child)))
    }
}

/// SIGINT and SIGQUIT ignored (the go-between of `enter` waits for the command).
fn ignore_interactive() {
    for s in [Signal::SIGINT, Signal::SIGQUIT] {
        let _ = sys::process::ignore_signal(s);
    }
}

/// waitpid until it ends: its exit code, or 128 + signal.
fn wait_code(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}

/// The guest runs: its init is the same live process and its cgroup holds processes.
fn running(st: &State) -> bool {
    st.init.alive() && st.cgroups.first().is_none_or(|d| !cgroup::is_empty(d).unwrap_or(true))
}

/// A pidfd for exactly this process (checked after opening, so a reused pid is refused).
fn open_pidfd(p: ProcId) -> Option<OwnedFd> {
    let fd = sys::process::pidfd_open(Pid::from_raw(p.pid)).ok()?;
    p.alive().then_some(fd)
}

/// Polls a pidfd until the process exits or `within` passes.
fn wait_exit(pidfd: &OwnedFd, within: Duration) -> bool {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        match sys::process::poll(&mut fds, ms) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// SIGKILL to the whole guest: `cgroup.kill` (v2) and to its init (which takes its whole
/// PID namespace with it); waits for init to go.
fn kill_guest(st: &State, init: &OwnedFd) {
    for d in st.cgroups.iter().filter(|d| d.is_v2()) {
        let _ = fs::write(d.path.join("cgroup.kill"), "1");
    }
    let _ = sys::ns::pidfd_send_signal(init.as_fd(), libc::SIGKILL);
    if !wait_exit(init, KILL_WAIT) {
        log::error!("guest {}: init (pid {}) survives SIGKILL", st.name, st.init.pid);
    }
}

/// `/proc/sys/kernel/cap_last_cap` (40 when unreadable).
pub fn cap_last_cap() -> u32 {
    fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

/// Creates `dir` (and parents) with mode 0700 when missing.
fn create_private_dir(dir: &Path) -> Result<(), GuestError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| sys_err(format!("create {}", dir.display()), &e))
}
