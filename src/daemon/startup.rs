//! Start-up and shut-down of `tandem daemon`: load the configuration, detach (unless
//! `--foreground`) with a ready handshake, the pidfile, memory locking and real-time
//! priority, then the loop.

use std::os::unix::net::UnixStream;
use std::path::Path;

use log::{debug, error, info, warn};

use super::{build_agents, setup, Daemon, DaemonError, Options};

/// Reads a pidfile and tells whether that process is alive.
fn pidfile_owner(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(pid),
        Err(_) => None,
    }
}

fn write_pidfile(path: &Path) -> Result<(), DaemonError> {
    if let Some(pid) = pidfile_owner(path) {
        if pid != std::process::id() as i32 {
            return Err(setup("pidfile", format!("{} names running process {pid}: already running?", path.display())));
        }
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| setup(format!("pidfile directory {}", dir.display()), e))?;
        }
    }
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .map_err(|e| setup(format!("pidfile {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| setup(format!("pidfile {}", path.display()), e))?;
    Ok(())
}

/// `tandem daemon`: load, detach (unless --foreground), run, clean up. Returns the exit code.
pub fn main(opts: Options) -> i32 {
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
    if let Some(pid) = pidfile_owner(&opts.pidfile) {
        eprintln!("tandem: already running as process {pid} (pidfile {})", opts.pidfile.display());
        return 1;
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

    let logfile = cfg.logfile.clone();
    if let Err(e) = crate::logging::init(cfg.logfacility.as_deref(), logfile.as_deref()) {
        eprintln!("tandem: {e}");
        return 2;
    }
    let pidfile = opts.pidfile.clone();
    let realtime = cfg.realtime;
    for w in &warnings {
        warn!("{w}");
    }
    let mut d = match Daemon::new(cfg, opts) {
        Ok(d) => d,
        Err(e) => {
            error!("cannot start: {e}");
            eprintln!("tandem: {e}");
            return if matches!(e, DaemonError::Config(_)) { 2 } else { 1 };
        }
    };
    if let Err(e) = write_pidfile(&pidfile) {
        error!("cannot start: {e}");
        eprintln!("tandem: {e}");
        return 1;
    }
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
        let _ = std::io::Write::write_all(&mut &tx, b"1");
        drop(tx);
        crate::sys::rt::null_stdio(logfile.as_deref().is_some_and(|p| p.as_os_str() == "-"));
    }
    let code = d.run();
    d.save_mark_now();
    drop(d);
    let _ = std::fs::remove_file(&pidfile);
    info!("exited");
    code
}
