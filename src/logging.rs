//! Logging: syslog (the configured facility) and/or a log file or stderr.
//!
//! The syslog sender is ours, not the `syslog` crate's: it writes RFC 3164 datagrams to
//! `/dev/log` on a **non-blocking** socket, so a hung syslogd can never stall heartbeats
//! (a full socket drops the line and counts it).

use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Lines dropped because syslog would have blocked.
pub static SYSLOG_DROPPED: AtomicU64 = AtomicU64::new(0);

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

enum Sink {
    Stderr,
    File(File),
}

struct Logger {
    syslog: Option<(UnixDatagram, u8)>,
    sink: Mutex<Option<Sink>>,
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
            let line = format!("{} tandem[{}]: {lvl}: {}\n", timestamp(), self.pid, r.args());
            match g.as_mut() {
                Some(Sink::Stderr) => {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
                Some(Sink::File(f)) => {
                    let _ = f.write_all(line.as_bytes());
                }
                None => {}
            }
        }
    }
    fn flush(&self) {}
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
    let sink = match file {
        Some(p) if p.as_os_str() == "-" => Some(Sink::Stderr),
        Some(p) => Some(Sink::File(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("cannot open log file {}: {e}", p.display()))?,
        )),
        None if syslog.is_none() => Some(Sink::Stderr),
        None => None,
    };
    let level = match std::env::var("TANDEM_DEBUG").as_deref() {
        Ok("1") | Ok("yes") => LevelFilter::Debug,
        _ => LevelFilter::Info,
    };
    let logger = Logger { syslog, sink: Mutex::new(sink), level, pid: std::process::id() };
    log::set_boxed_logger(Box::new(logger)).map_err(|e| e.to_string())?;
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
}
