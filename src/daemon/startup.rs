//! Start-up and shut-down of `tandem daemon`: load the configuration, detach (unless
//! `--foreground`) with a ready handshake, the pidfile, memory locking and real-time
//! priority, then the loop.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use log::{debug, error, info, warn};

use super::{build_agents, setup, Daemon, DaemonError, Options};

/// The pidfile, locked for the daemon's whole life: "already running" means that lock is
/// held, never that the pid written in it is alive (pids are reused).
struct Pidfile {
    lock: nix::fcntl::Flock<std::fs::File>,
    path: PathBuf,
}

impl Pidfile {
    /// Opens (creating, never truncating) and locks `path` (LOCK_EX|LOCK_NB), then writes
    /// this process's pid into it. A lock held by another process is "already running".
    fn lock(path: &Path) -> Result<Pidfile, DaemonError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| setup(format!("pidfile directory {}", dir.display()), e))?;
            }
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| setup(format!("pidfile {}", path.display()), e))?;
        let mut lock = match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut (&f).take(32), &mut text);
                let who = match text.trim() {
                    "" => String::new(),
                    pid => format!(" as process {pid}"),
                };
                return Err(setup("pidfile", format!("already running{who} ({} is locked)", path.display())));
            }
            Err((_, errno)) => return Err(setup(format!("pidfile {}: flock", path.display()), errno.desc())),
        };
        let text = format!("{}\n", std::process::id());
        let written = lock
            .set_len(0)
            .and_then(|()| std::io::Write::write_all(&mut *lock, text.as_bytes()))
            .and_then(|()| std::io::Write::flush(&mut *lock));
        written.map_err(|e| setup(format!("pidfile {}", path.display()), e))?;
        Ok(Pidfile { lock, path: path.to_path_buf() })
    }

    /// Clean exit: the file goes first, then the lock (on drop).
    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.lock);
    }
}

/// `tandem daemon`: load, detach (unless --foreground), run, clean up. Returns the exit code.
pub fn main(opts: Options) -> i32 {
    crate::sys::rt::close_inherited_fds();
    let (cfg, warnings) = match crate::load::load(&opts.config, opts.node.as_deref()) {
        Ok(x) => x,
        Err(errs) => {
            for e in errs {
                eprintln!("tandem: {e}");
            }
            return 2;
        }
    };
    for w in &warnings {
        eprintln!("tandem: warning: {w}");
    }
    if let Err(e) = build_agents(&cfg) {
        eprintln!("tandem: {e}");
        return 2;
    }
    // Detach: the parent waits (bounded) for the child to report that it is up, so that
    // `tandem daemon` and the init script return a truthful exit code.
    let mut ready_tx: Option<UnixStream> = None;
    if !opts.foreground {
        let (rx, tx) = match UnixStream::pair() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("tandem: socketpair: {e}");
                return 1;
            }
        };
        match crate::sys::rt::fork() {
            Err(e) => {
                eprintln!("tandem: fork: {}", e.desc());
                return 1;
            }
            Ok(crate::sys::rt::Forked::Parent { .. }) => {
                drop(tx);
                let _ = rx.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                let mut b = [0u8; 1];
                return match std::io::Read::read(&mut &rx, &mut b) {
                    Ok(1) if b[0] == b'1' => 0,
                    _ => 1,
                };
            }
            Ok(crate::sys::rt::Forked::Child) => {
                drop(rx);
                let _ = nix::unistd::setsid();
                let _ = std::env::set_current_dir("/");
                ready_tx = Some(tx);
            }
        }
    }

    // The lock is taken here, after the fork: the detaching parent must not share it (its
    // exit would not release it, but an unlock from it would).
    let pidfile = match Pidfile::lock(&opts.pidfile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tandem: {e}");
            return 1;
        }
    };
    let logfile = cfg.logfile.clone();
    if let Err(e) = crate::logging::init(cfg.logfacility.as_deref(), logfile.as_deref()) {
        eprintln!("tandem: {e}");
        pidfile.remove();
        return 2;
    }
    let realtime = cfg.realtime;
    for w in &warnings {
        warn!("{w}");
    }
    let mut d = match Daemon::new(cfg, opts) {
        Ok(d) => d,
        Err(e) => {
            error!("cannot start: {e}");
            eprintln!("tandem: {e}");
            // Ours (we hold its lock): a daemon that did not start leaves no pidfile.
            pidfile.remove();
            return if matches!(e, DaemonError::Config(_)) { 2 } else { 1 };
        }
    };
    // Memory: release the start-up code's pages, then lock what the loop touches from here
    // on (MCL_ONFAULT), and run heartbeats at real-time priority so CPU load cannot starve them.
    if let Err(e) = crate::sys::rt::trim_text() {
        debug!("trim_text: {}", e.desc());
    }
    if realtime {
        if let Err(e) = crate::sys::rt::mlockall() {
            warn!("mlockall: {} (continuing without locked memory)", e.desc());
        }
        if let Err(e) = crate::sys::rt::set_realtime(20) {
            warn!("SCHED_FIFO: {} (continuing with normal scheduling)", e.desc());
        }
    }
    if let Some(tx) = ready_tx.take() {
        if crate::logging::stderr_fallback() {
            eprintln!(
                "tandem: warning: no syslog (/dev/log) and no logfile: the daemon logs nowhere once detached \
                 (set logfile, or start a syslog daemon first)"
            );
        }
        let _ = std::io::Write::write_all(&mut &tx, b"1");
        drop(tx);
        crate::sys::rt::null_stdio(logfile.as_deref().is_some_and(|p| p.as_os_str() == "-"));
        crate::logging::detach();
    }
    let code = d.run();
    d.save_mark_now();
    drop(d);
    pidfile.remove();
    info!("exited");
    code
}
