//! Logging: syslog (the configured facility) and/or a log file or stderr.
//!
//! The syslog sender is ours, not the `syslog` crate's: it writes RFC 3164 datagrams to
//! `/dev/log` on a **non-blocking** socket, so a hung syslogd can never stall heartbeats
//! (a full socket drops the line and counts it).
//!
//! The log file and stderr are written without blocking too ([`Out`]): a pipe nobody reads
//! (a stuck log collector) or a slow terminal fills a bounded buffer ([`SINK_BUFFER`]),
//! then lines are dropped and counted, and once writing resumes one line says how many
//! were lost ("N log lines dropped"). stderr is reopened through `/proc/self/fd/2` so that
//! `O_NONBLOCK` is set on the daemon's own open file, never on one it shares with its
//! parent (a shell's terminal); a socket (journald's stdout) is written with
//! `MSG_DONTWAIT`. A regular file ignores `O_NONBLOCK`: a log file on a disk that hangs
//! can still block; use syslog, or a log file on a local disk.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Lines dropped because syslog would have blocked.
pub static SYSLOG_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines dropped because the log file or stderr would have blocked with the buffer full.
pub static SINK_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Bytes kept for the log file or stderr while it cannot take them.
pub const SINK_BUFFER: usize = 64 * 1024;

/// Set in a forked agent child: log lines go to stdout, which the runner captures and the
/// daemon logs (the child has no log file or syslog socket: every fd above 2 is closed).
static CHILD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Switches this (forked child) process's logging to stdout.
pub fn child_mode() {
    CHILD.store(true, Ordering::SeqCst);
}

pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// A non-blocking log sink with a bounded buffer: what the fd cannot take now waits in
/// `buf` (at most `cap` bytes); lines that do not fit are counted in `dropped`.
pub struct Out {
    fd: OwnedFd,
    /// Written with `send(MSG_DONTWAIT)` (a socket) rather than `write` on an `O_NONBLOCK` file.
    socket: bool,
    buf: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl Out {
    /// `fd` must already be non-blocking unless it is a socket (then `socket` is true).
    pub fn new(fd: OwnedFd, socket: bool, cap: usize) -> Out {
        Out { fd, socket, buf: Vec::with_capacity(cap), cap, dropped: 0 }
    }

    /// Opens stderr for the logger: a socket as is (a duplicate), anything else reopened
    /// through /proc/self/fd/2 with `O_NONBLOCK` (on a new open file, not the shared one).
    fn stderr() -> Result<Out, String> {
        let err = |e: std::io::Error| format!("cannot set up stderr for logging: {e}");
        let dup = std::io::stderr().as_fd().try_clone_to_owned().map_err(err)?;
        let meta = File::from(dup.try_clone().map_err(err)?).metadata().map_err(err)?;
        if meta.file_type().is_socket() {
            return Ok(Out::new(dup, true, SINK_BUFFER));
        }
        let f = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open("/proc/self/fd/2")
            .map_err(err)?;
        Ok(Out::new(f.into(), false, SINK_BUFFER))
    }

    /// A log file, appended to, non-blocking where the file type allows it.
    fn file(path: &Path) -> Result<Out, String> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
        Ok(Out::new(f.into(), false, SINK_BUFFER))
    }

    /// Lines dropped since writing last resumed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes what is queued; once all of it is out, queues the "n lines dropped" line
    /// (`note(n)`) if lines were dropped. For the loop to call on every wakeup: without
    /// anything queued it costs a check.
    pub fn flush(&mut self, note: impl FnOnce(u64) -> String) {
        if self.buf.is_empty() && self.dropped == 0 {
            return;
        }
        self.drain();
        if self.dropped > 0 && self.buf.is_empty() {
            let n = note(self.dropped);
            if n.len() <= self.cap {
                self.buf.extend_from_slice(n.as_bytes());
                self.dropped = 0;
                self.drain();
            }
        }
    }

    /// Queues `line` (a whole line, newline included) and writes what the fd takes now.
    /// `note(n)` makes the "n lines dropped" line, queued first once there is room again.
    pub fn line(&mut self, line: &[u8], note: impl FnOnce(u64) -> String) {
        self.drain();
        if self.dropped > 0 && self.buf.is_empty() {
            let n = note(self.dropped);
            if n.len() + line.len() <= self.cap {
                self.buf.extend_from_slice(n.as_bytes());
                self.dropped = 0;
            }
        }
        if self.dropped == 0 && self.buf.len() + line.len() <= self.cap {
            self.buf.extend_from_slice(line);
        } else {
            self.dropped += 1;
            SINK_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        self.drain();
    }

    /// Writes what the fd takes without blocking.
    pub fn drain(&mut self) {
        let mut tries = 0;
        while !self.buf.is_empty() && tries < 16 {
            tries += 1;
            let r = if self.socket {
                nix::sys::socket::send(
                    self.fd.as_raw_fd(),
                    &self.buf,
                    nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                )
            } else {
                nix::unistd::write(&self.fd, &self.buf)
            };
            match r {
                Ok(0) => return,
                Ok(n) => {
                    self.buf.drain(..n.min(self.buf.len()));
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    // Nobody will ever read it (EPIPE, EIO): what is queued is lost.
                    let lines = self.buf.iter().filter(|&&b| b == b'\n').count() as u64;
                    self.dropped += lines;
                    SINK_DROPPED.fetch_add(lines, Ordering::Relaxed);
                    self.buf.clear();
                    return;
                }
            }
        }
    }
}

struct Logger {
    syslog: Option<(UnixDatagram, u8)>,
    sink: Mutex<Option<Out>>,
    /// The sink is stderr only because there is neither syslog nor a log file: it is dropped
    /// when the daemon detaches ([`detach`]).
    fallback: bool,
    level: LevelFilter,
    pid: u32,
}

fn severity(l: Level) -> u8 {
    match l {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// `2026-11-28T05:44:40.123456Z` from the realtime clock (UTC; no time zone database needed).
pub fn timestamp() -> String {
    let (secs, us) = crate::sys::rt::realtime();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Logger {
    fn dropped_note(&self, n: u64) -> String {
        format!("{} tandem[{}]: warn: {n} log lines dropped\n", timestamp(), self.pid)
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.level
    }
    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let lvl = match r.level() {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        if CHILD.load(Ordering::Relaxed) {
            let mut out = std::io::stdout();
            let _ = out.write_all(format!("{lvl}: {}\n", r.args()).as_bytes());
            let _ = out.flush();
            return;
        }
        if let Some((sock, fac)) = &self.syslog {
            let pri = u16::from(*fac) * 8 + u16::from(severity(r.level()));
            let line = format!("<{pri}>tandem[{}]: {lvl}: {}", self.pid, r.args());
            if sock.send(line.as_bytes()).is_err() {
                SYSLOG_DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut g) = self.sink.lock() {
            if let Some(out) = g.as_mut() {
                let line = format!("{} tandem[{}]: {lvl}: {}\n", timestamp(), self.pid, r.args());
                out.line(line.as_bytes(), |n| self.dropped_note(n));
            }
        }
    }
    /// Writes what the log file or stderr could not take before (without blocking).
    fn flush(&self) {
        if let Ok(mut g) = self.sink.lock() {
            if let Some(out) = g.as_mut() {
                out.flush(|n| self.dropped_note(n));
            }
        }
    }
}

static LOGGER: std::sync::OnceLock<&'static Logger> = std::sync::OnceLock::new();

/// Whether the log goes to stderr only because neither syslog (`/dev/log`) nor a log file
/// is there: a daemon that detaches then logs nowhere.
pub fn stderr_fallback() -> bool {
    LOGGER.get().is_some_and(|l| l.fallback)
}

/// The daemon detached: a stderr that is the log only for want of anything else is closed
/// (it belongs to whoever started the daemon: a terminal, or a pipe that a shell waits on
/// until every writer is gone). A `logfile -` asked for stderr and keeps it.
pub fn detach() {
    if let Some(l) = LOGGER.get().filter(|l| l.fallback) {
        if let Ok(mut g) = l.sink.lock() {
            *g = None;
        }
    }
}

/// Installs the logger. `facility` None = no syslog; `file` Some("-") = stderr.
/// With neither, logs go to stderr. `TANDEM_DEBUG=1` enables debug messages.
pub fn init(facility: Option<&str>, file: Option<&Path>) -> Result<(), String> {
    let syslog = match facility {
        Some(f) => {
            let code = facility_code(f).ok_or_else(|| format!("unknown syslog facility {f:?}"))?;
            // No syslogd (busybox rescue host without one): carry on with the other sink.
            UnixDatagram::unbound()
                .ok()
                .filter(|s| s.connect("/dev/log").is_ok() && s.set_nonblocking(true).is_ok())
                .map(|s| (s, code))
        }
        None => None,
    };
    let fallback = file.is_none() && syslog.is_none();
    let sink = match file {
        Some(p) if p.as_os_str() == "-" => Some(Out::stderr()?),
        Some(p) => Some(Out::file(p)?),
        None if fallback => Some(Out::stderr()?),
        None => None,
    };
    let level = match std::env::var("TANDEM_DEBUG").as_deref() {
        Ok("1") | Ok("yes") => LevelFilter::Debug,
        _ => LevelFilter::Info,
    };
    let logger: &'static Logger =
        Box::leak(Box::new(Logger { syslog, sink: Mutex::new(sink), fallback, level, pid: std::process::id() }));
    log::set_logger(logger).map_err(|e| e.to_string())?;
    let _ = LOGGER.set(logger);
    log::set_max_level(level);
    Ok(())
}

/// A per-site rate limiter for anything a peer or the network can trigger:
/// at most `burst` messages per `window`, then one summary of how many were suppressed.
pub struct RateLimit {
    window: crate::time::Duration,
    burst: u32,
    start: crate::time::Instant,
    count: u32,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(window: crate::time::Duration, burst: u32) -> RateLimit {
        RateLimit { window, burst, start: crate::time::Instant::ZERO, count: 0, suppressed: 0 }
    }
    /// Returns `Some(suppressed_so_far)` when a message may be logged now.
    pub fn allow(&mut self, now: crate::time::Instant) -> Option<u64> {
        if now.saturating_since(self.start) >= self.window {
            self.start = now;
            self.count = 0;
        }
        if self.count < self.burst {
            self.count += 1;
            let s = self.suppressed;
            self.suppressed = 0;
            Some(s)
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Duration, Instant};
    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
    }
    #[test]
    fn rate_limit() {
        let mut r = RateLimit::new(Duration::from_secs(1), 2);
        let t = Instant::from_millis(5000);
        assert_eq!(r.allow(t), Some(0));
        assert_eq!(r.allow(t), Some(0));
        assert_eq!(r.allow(t), None);
        assert_eq!(r.allow(t), None);
        assert_eq!(r.allow(t + Duration::from_secs(1)), Some(2));
    }

    #[test]
    fn a_full_pipe_drops_and_counts_lines_and_says_so_once_it_drains() {
        use std::io::Read;
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        // The smallest pipe (one page), so that it fills fast.
        nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
        let mut out = Out::new(w, false, 1000);
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        let note = |n: u64| format!("{n} log lines dropped\n");
        // 4096 bytes in the pipe, 1000 in the buffer: 50 lines of 100 bytes fit, never blocking.
        for _ in 0..60 {
            out.line(&line, note);
        }
        assert_eq!(out.dropped(), 10);
        let mut got = Vec::new();
        let mut rd = std::fs::File::from(r);
        let mut chunk = [0u8; 8192];
        while let Ok(n) = rd.read(&mut chunk) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            out.drain();
        }
        out.flush(note);
        out.line(b"resumed\n", note);
        while let Ok(n) = rd.read(&mut chunk) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        assert_eq!(text.matches(&*String::from_utf8_lossy(&line)).count(), 50);
        assert!(text.ends_with("10 log lines dropped\nresumed\n"), "{}", &text[text.len() - 60..]);
        assert_eq!(out.dropped(), 0);
    }
}
