//! Serial (null-modem) heartbeat links. See `docs/serial.md`.
//!
//! - The line is opened `O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC`, made exclusive (TIOCEXCL)
//!   and set to raw 8N1 with CLOCAL at the configured baud (CRTSCTS optional). The original
//!   settings are restored when the line is closed.
//! - A UUCP lock file (`/var/lock/LCK..ttyS1`, the pid as 10 right-aligned digits and a
//!   newline) is held for the life of the link; a stale lock (dead pid) is taken over, a
//!   live one is [`LinkError::Locked`]. A lock naming this very process that it does not
//!   hold is stale too: an earlier daemon had the same pid (killed, then started again in a
//!   PID namespace, where pids start over, with /var/lock kept).
//! - A missing device is not an error: the link stays *absent* and reopens with exponential
//!   backoff (100 ms doubling to 5 s) from [`Link::on_timer`]. A device that vanishes while
//!   open (hang-up, EIO) is closed and retried the same way.
//! - Frames: [`crate::link::frame`] (COBS, length, CRC-16); or, in raw mode
//!   ([`SerialLink::set_raw`]), none: the bytes given to `send` go on the line as they are and
//!   `recv` hands over the bytes read, for a protocol with its own framing (heartbeat's classic
//!   text frames, `>>>` … `<<<`, which a heartbeat peer expects without tandem's framing).
//! - Output: a queue of [`QUEUE_FRAMES`] fixed frame buffers. When it is full the oldest frame
//!   not yet started on the line is dropped (`tx_dropped`). Writes never block. Besides, a
//!   frame is handed to the driver only when the line is about to be free, judged by the
//!   baud rate and by the driver's output queue (TIOCOUTQ) where it has one: the kernel
//!   never holds more than about one frame plus [`OUTQ_LOW`] bytes, so a heartbeat never
//!   waits behind seconds of older ones on a slow line.

use std::fs;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use log::{info, warn};
use nix::errno::Errno;
use nix::sys::termios::{BaudRate, Termios};

use crate::config::LinkConfig;
use crate::link::frame::{self, Decoder, FrameError, MAX_FRAME};
use crate::link::{Link, LinkError, LinkKind, LinkStats};
use crate::sys::tty;
use crate::time::{Duration, Instant};

pub use crate::link::frame::{frame_len, heartbeat_packet_len, line_time, min_keepalive};

/// Where UUCP lock files live unless told otherwise.
pub const DEFAULT_LOCK_DIR: &str = "/var/lock";
/// Frames the output queue holds.
pub const QUEUE_FRAMES: usize = 4;
/// Frames the output queue holds in raw mode (heartbeat's protocol sends bursts of messages,
/// and a frame dropped here is one the peer asks to be sent again).
pub const QUEUE_FRAMES_RAW: usize = 16;
/// Largest frame accepted in raw mode (heartbeat's own limit is 64 KiB per message).
pub const MAX_RAW: usize = 64 * 1024;
/// Bytes the driver may still hold before the link writes the next frame.
pub const OUTQ_LOW: usize = 64;
/// First reopen delay; doubles after each failure.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reopen delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

const READ_CHUNK: usize = 1024;
const MAX_READS: usize = 32;

/// Bounded output queue of encoded frames, oldest first. Allocation-free in framed mode (each
/// buffer is allocated once, at its largest frame size); raw frames grow their buffer.
struct TxQueue {
    bufs: Vec<Vec<u8>>,
    /// `order[..count]`: buffer slots, oldest first.
    order: Vec<usize>,
    count: usize,
    /// Bytes of the oldest frame already written.
    offset: usize,
}

impl TxQueue {
    fn new() -> TxQueue {
        TxQueue::with_frames(QUEUE_FRAMES)
    }

    fn with_frames(n: usize) -> TxQueue {
        let n = n.max(1);
        TxQueue {
            bufs: (0..n).map(|_| Vec::with_capacity(MAX_FRAME)).collect(),
            order: vec![0; n],
            count: 0,
            offset: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.bufs.len()
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn len(&self) -> usize {
        self.count
    }

    /// Removes the entry at queue position `pos` (0 = oldest).
    fn remove(&mut self, pos: usize) {
        if pos >= self.count {
            return;
        }
        if let Some(tail) = self.order.get_mut(pos..self.count) {
            tail.rotate_left(1);
        }
        self.count -= 1;
        if pos == 0 {
            self.offset = 0;
        }
    }

    /// Encodes `pkt` at the back (`raw`: as it is, without tandem's framing). Returns true when
    /// the queue was full and the oldest frame not yet partly on the line was dropped to make
    /// room.
    fn push(&mut self, pkt: &[u8], raw: bool) -> Result<bool, FrameError> {
        let max = if raw { MAX_RAW } else { frame::MAX_PAYLOAD };
        if pkt.len() > max {
            return Err(FrameError::TooLong);
        }
        let mut dropped = false;
        if self.count >= self.capacity() {
            self.remove(if self.offset > 0 { 1 } else { 0 });
            dropped = true;
        }
        let used = self.order.get(..self.count).unwrap_or(&[]);
        let Some(slot) = (0..self.capacity()).find(|s| !used.contains(s)) else {
            return Err(FrameError::BufferTooSmall);
        };
        let buf = self.bufs.get_mut(slot).ok_or(FrameError::BufferTooSmall)?;
        buf.clear();
        if raw {
            buf.extend_from_slice(pkt);
        } else {
            buf.resize(MAX_FRAME, 0);
            let n = frame::encode(pkt, buf)?;
            buf.truncate(n);
        }
        if let Some(o) = self.order.get_mut(self.count) {
            *o = slot;
            self.count += 1;
        }
        Ok(dropped)
    }

    /// The unwritten bytes of the oldest frame.
    fn front(&self) -> Option<&[u8]> {
        if self.count == 0 {
            return None;
        }
        let slot = *self.order.first()?;
        self.bufs.get(slot)?.get(self.offset..)
    }

    /// Marks `n` bytes of the oldest frame written; true when that completed it.
    fn consume(&mut self, n: usize) -> bool {
        let Some(len) = self.order.first().and_then(|&s| self.bufs.get(s)).map(Vec::len) else {
            return false;
        };
        if self.count == 0 {
            return false;
        }
        self.offset = self.offset.saturating_add(n);
        if self.offset >= len {
            self.remove(0);
            true
        } else {
            false
        }
    }

    /// Empties the queue; returns how many frames were in it.
    fn clear(&mut self) -> usize {
        let n = self.count;
        self.count = 0;
        self.offset = 0;
        n
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// True for a pid that exists (kill(pid, 0) succeeds or is refused for permission).
fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e != Errno::ESRCH,
    }
}

/// Reads the pid in a lock file: ASCII digits with blanks (the UUCP/lockdev format).
/// `Ok(None)` for content that is not a pid (treated as stale, as lockdev does).
fn read_lock_pid(path: &Path) -> Result<Option<u32>, Errno> {
    let text = fs::read(path).map_err(|e| io_errno(&e))?;
    let text = text.get(..64).unwrap_or(&text);
    Ok(std::str::from_utf8(text).ok().and_then(|s| s.trim().parse::<u32>().ok()))
}

/// The lock files this process holds (their paths). A lock file naming our own pid that is
/// not in here was written by an earlier process with the same pid, and is stale.
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Whether this process holds the lock at `path` (a poisoned registry counts as held).
fn held_here(path: &Path) -> bool {
    HELD.lock().map_or(true, |h| h.iter().any(|p| p == path))
}

/// A held UUCP lock file; removed on drop if it still names this process.
struct LockFile {
    path: PathBuf,
    pid: u32,
}

impl LockFile {
    /// Creates `dir/LCK..<basename of device>` holding our pid. Written to a temporary file
    /// first and hard-linked into place, so the lock appears atomically with its content
    /// (`link` fails with EEXIST like `O_EXCL`).
    fn acquire(dir: &Path, device: &Path) -> Result<LockFile, LinkError> {
        let base =
            device.file_name().ok_or_else(|| LinkError::Config(format!("{}: not a device path", device.display())))?;
        let open_err =
            |what: &Path, e: &std::io::Error| LinkError::Open { what: what.display().to_string(), errno: io_errno(e) };
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(|e| open_err(dir, &e))?;
        }
        let mut name = std::ffi::OsString::from("LCK..");
        name.push(base);
        let path = dir.join(&name);
        let pid = std::process::id();
        let mut tmp_name = std::ffi::OsString::from(format!(".LTMP.{pid}."));
        tmp_name.push(base);
        let tmp = dir.join(tmp_name);
        let _ = fs::remove_file(&tmp);
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)
                .map_err(|e| open_err(&tmp, &e))?;
            let written = f.write_all(format!("{pid:>10}\n").as_bytes());
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(open_err(&tmp, &e));
            }
        }
        let result = Self::link_into_place(&tmp, &path, device);
        let _ = fs::remove_file(&tmp);
        result?;
        if let Ok(mut h) = HELD.lock() {
            h.push(path.clone());
        }
        Ok(LockFile { path, pid })
    }

    fn link_into_place(tmp: &Path, path: &Path, device: &Path) -> Result<(), LinkError> {
        for _ in 0..4 {
            let e = match fs::hard_link(tmp, path) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if io_errno(&e) != Errno::EEXIST {
                return Err(LinkError::Open { what: path.display().to_string(), errno: io_errno(&e) });
            }
            match read_lock_pid(path) {
                Ok(Some(holder)) if pid_alive(holder) && (holder != std::process::id() || held_here(path)) => {
                    return Err(LinkError::Locked { device: device.display().to_string(), pid: holder });
                }
                Ok(holder) => {
                    warn!(
                        "{}: removing stale lock {} (process {} is gone)",
                        device.display(),
                        path.display(),
                        holder.map_or_else(|| "?".to_string(), |p| p.to_string())
                    );
                    match fs::remove_file(path) {
                        Ok(()) => {}
                        Err(e) if io_errno(&e) == Errno::ENOENT => {}
                        Err(e) => {
                            return Err(LinkError::Open { what: path.display().to_string(), errno: io_errno(&e) })
                        }
                    }
                }
                // Removed between link() and read(): try again.
                Err(Errno::ENOENT) => {}
                Err(errno) => return Err(LinkError::Open { what: path.display().to_string(), errno }),
            }
        }
        Err(LinkError::Open { what: path.display().to_string(), errno: Errno::EEXIST })
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if let Ok(mut h) = HELD.lock() {
            if let Some(i) = h.iter().position(|p| *p == self.path) {
                h.swap_remove(i);
            }
        }
        if let Ok(Some(pid)) = read_lock_pid(&self.path) {
            if pid == self.pid {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// An open, configured line; restores the saved settings when dropped.
struct Tty {
    fd: OwnedFd,
    saved: Termios,
}

impl Tty {
    fn open(path: &Path, baud: BaudRate, rtscts: bool) -> Result<Tty, Errno> {
        let fd = tty::open_tty(path)?;
        let saved = tty::get_attr(fd.as_fd())?;
        let t = Tty { fd, saved };
        tty::set_exclusive(t.fd.as_fd(), true)?;
        let mut raw = t.saved.clone();
        tty::make_raw(&mut raw, baud, rtscts)?;
        tty::set_attr(t.fd.as_fd(), &raw)?;
        tty::flush_both(t.fd.as_fd())?;
        Ok(t)
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        // Best effort: on a vanished device these fail, and there is nothing to restore.
        let _ = tty::set_attr(self.fd.as_fd(), &self.saved);
        let _ = tty::set_exclusive(self.fd.as_fd(), false);
    }
}

/// Errors on open that mean "the device is not there (yet)".
fn is_absent(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ENODEV | Errno::ENXIO | Errno::EIO | Errno::ENOTDIR)
}

/// Errors on read/write that mean the device went away.
fn is_gone(e: Errno) -> bool {
    matches!(e, Errno::EIO | Errno::ENXIO | Errno::ENODEV | Errno::EBADF)
}

/// A serial heartbeat link. See the module docs.
pub struct SerialLink {
    name: String,
    device: PathBuf,
    baud: u32,
    baud_rate: BaudRate,
    rtscts: bool,
    // Field order matters: the line is closed (settings restored) before the lock goes.
    tty: Option<Tty>,
    lock: LockFile,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_open_err: Option<Errno>,
    /// Waiting for the driver's output queue to drain below [`OUTQ_LOW`].
    drain_at: Option<Instant>,
    /// When the bytes written so far will have left the wire (by the baud rate).
    line_free_at: Instant,
    decoder: Decoder,
    tx: TxQueue,
    /// No framing of ours: see [`SerialLink::set_raw`].
    raw: bool,
    stats: LinkStats,
}

impl SerialLink {
    /// Opens the link described by `cfg` (a [`LinkConfig::Serial`]) with its lock file in
    /// `/var/lock`.
    pub fn open(cfg: &LinkConfig, name: String, now: Instant) -> Result<SerialLink, LinkError> {
        Self::open_in(cfg, name, now, Path::new(DEFAULT_LOCK_DIR))
    }

    /// As [`SerialLink::open`], with the lock file in `lock_dir` (created if missing).
    ///
    /// A missing device (ENOENT, ENODEV, ENXIO, EIO) is not an error: the link starts absent
    /// and retries from [`Link::on_timer`]. A lock held by a live process is
    /// [`LinkError::Locked`]; other failures are [`LinkError::Open`].
    pub fn open_in(cfg: &LinkConfig, name: String, now: Instant, lock_dir: &Path) -> Result<SerialLink, LinkError> {
        let LinkConfig::Serial { device, baud, rtscts } = cfg else {
            return Err(LinkError::Config(format!("{name}: not a serial link")));
        };
        let baud_rate = tty::baud_rate(*baud)
            .ok_or_else(|| LinkError::Config(format!("{}: unsupported baud rate {baud}", device.display())))?;
        let lock = LockFile::acquire(lock_dir, device)?;
        let mut link = SerialLink {
            name,
            device: device.clone(),
            baud: *baud,
            baud_rate,
            rtscts: *rtscts,
            tty: None,
            lock,
            retry_at: None,
            backoff: BACKOFF_MIN,
            last_open_err: None,
            drain_at: None,
            line_free_at: now,
            decoder: Decoder::new(),
            tx: TxQueue::new(),
            raw: false,
            stats: LinkStats::default(),
        };
        match Tty::open(&link.device, baud_rate, link.rtscts) {
            Ok(t) => {
                info!("{}: {} open at {} baud", link.name, link.device.display(), link.baud);
                link.tty = Some(t);
            }
            Err(e) if is_absent(e) => {
                warn!("{}: {} not present ({}); will retry", link.name, link.device.display(), e.desc());
                link.last_open_err = Some(e);
                link.retry_at = Some(now + BACKOFF_MIN);
            }
            Err(errno) => return Err(LinkError::Open { what: link.device.display().to_string(), errno }),
        }
        Ok(link)
    }

    /// Raw mode: no framing of tandem's (COBS, length, CRC-16). `send` writes its bytes as
    /// they are (up to [`MAX_RAW`]) and `recv` hands over whatever was read, in pieces as they
    /// arrive: the caller's own protocol delimits its frames. Call before the first `send`.
    pub fn set_raw(&mut self, raw: bool) {
        if raw != self.raw {
            self.raw = raw;
            self.tx = if raw { TxQueue::with_frames(QUEUE_FRAMES_RAW) } else { TxQueue::new() };
            self.decoder.reset();
        }
    }

    pub fn is_raw(&self) -> bool {
        self.raw
    }

    /// Whether the device is open.
    pub fn is_present(&self) -> bool {
        self.tty.is_some()
    }

    pub fn device(&self) -> &Path {
        &self.device
    }

    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// The lock file this link holds.
    pub fn lock_path(&self) -> &Path {
        &self.lock.path
    }

    /// Frames waiting in the output queue.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.tty.as_ref().map(|t| t.fd.as_raw_fd())
    }

    /// The device went away: close it and schedule a reopen.
    fn lost(&mut self, now: Instant, why: &str) {
        warn!("{}: {} lost ({why}); reopening with backoff", self.name, self.device.display());
        self.tty = None;
        let n = self.tx.clear();
        self.stats.tx_dropped += u64::try_from(n).unwrap_or(0);
        self.decoder.reset();
        self.drain_at = None;
        self.backoff = BACKOFF_MIN;
        self.last_open_err = None;
        self.retry_at = Some(now + BACKOFF_MIN);
    }

    fn try_reopen(&mut self, now: Instant) {
        match Tty::open(&self.device, self.baud_rate, self.rtscts) {
            Ok(t) => {
                info!("{}: {} open at {} baud", self.name, self.device.display(), self.baud);
                self.tty = Some(t);
                self.decoder.reset();
                self.retry_at = None;
                self.backoff = BACKOFF_MIN;
                self.last_open_err = None;
            }
            Err(e) => {
                // Log each new reason once, not every retry.
                if self.last_open_err != Some(e) {
                    warn!("{}: cannot open {}: {}; retrying", self.name, self.device.display(), e.desc());
                    self.last_open_err = Some(e);
                }
                self.backoff = self.backoff.saturating_mul(2).min(BACKOFF_MAX);
                self.retry_at = Some(now + self.backoff);
            }
        }
    }

    /// Writes queued bytes until the queue is empty, the driver is full, or the driver
    /// holds more than [`OUTQ_LOW`] bytes (then waits for it by timer).
    fn flush(&mut self, now: Instant) {
        for _ in 0..4 * QUEUE_FRAMES {
            if let Some(at) = self.drain_at {
                if now < at {
                    return;
                }
                self.drain_at = None;
            }
            let Some(tty) = self.tty.as_ref() else { return };
            let Some(chunk) = self.tx.front() else { return };
            if self.tx.offset == 0 {
                // Start a frame only when the line is about to be free: by our own clock
                // of the line (works for any driver, ptys included) and by the driver's
                // output queue where it reports one (catches a line held by CTS).
                let slack = line_time(OUTQ_LOW, self.baud);
                if self.line_free_at > now + slack {
                    self.drain_at = Some(self.line_free_at - slack);
                    return;
                }
                if let Ok(q) = tty::output_queue(tty.fd.as_fd()) {
                    if q > OUTQ_LOW {
                        let wait = line_time(q - OUTQ_LOW, self.baud).max(Duration::from_millis(1));
                        self.drain_at = Some(now + wait);
                        return;
                    }
                }
            }
            let want = chunk.len();
            match nix::unistd::write(tty.fd.as_fd(), chunk) {
                Ok(n) => {
                    self.line_free_at = self.line_free_at.max(now) + line_time(n, self.baud);
                    if self.tx.consume(n) {
                        self.stats.tx += 1;
                    }
                    if n < want {
                        return; // driver full: POLLOUT continues
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => {}
                Err(e) if is_gone(e) => {
                    self.lost(now, e.desc());
                    return;
                }
                Err(_) => {
                    self.stats.tx_errors += 1;
                    self.tx.remove(0);
                    return;
                }
            }
        }
    }
}

impl Link for SerialLink {
    fn kind(&self) -> LinkKind {
        LinkKind::Serial
    }
    fn name(&self) -> &str {
        &self.name
    }

    fn fd(&self) -> Option<RawFd> {
        self.raw_fd()
    }

    fn wants_write(&self) -> bool {
        self.tty.is_some() && !self.tx.is_empty() && self.drain_at.is_none()
    }

    fn send(&mut self, now: Instant, pkt: &[u8]) -> Result<(), LinkError> {
        if self.tty.is_none() {
            self.stats.tx_errors += 1;
            return Ok(());
        }
        match self.tx.push(pkt, self.raw) {
            Ok(true) => self.stats.tx_dropped += 1,
            Ok(false) => {}
            Err(e) => return Err(LinkError::Config(format!("{}: {e}", self.name))),
        }
        self.flush(now);
        Ok(())
    }

    fn recv(&mut self, now: Instant, on_packet: &mut dyn FnMut(&[u8])) -> Result<(), LinkError> {
        let Some(fd) = self.raw_fd() else {
            return Ok(());
        };
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..MAX_READS {
            match nix::unistd::read(fd, &mut buf) {
                // VMIN=1 + O_NONBLOCK: no data is EAGAIN, so 0 means hung up.
                Ok(0) => {
                    self.lost(now, "hung up");
                    return Ok(());
                }
                Ok(n) => {
                    let got = buf.get(..n).unwrap_or(&[]);
                    if self.raw {
                        on_packet(got);
                    } else {
                        self.decoder.feed(got, &mut self.stats, on_packet);
                    }
                    if n < buf.len() {
                        return Ok(());
                    }
                }
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) if is_gone(e) => {
                    self.lost(now, e.desc());
                    return Ok(());
                }
                Err(errno) => return Err(LinkError::Io { op: "read", errno }),
            }
        }
        Ok(())
    }

    fn on_writable(&mut self, now: Instant) {
        self.flush(now);
    }

    fn poll_at(&self) -> Option<Instant> {
        match (self.retry_at, self.drain_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
            self.try_reopen(now);
        }
        if self.drain_at.is_some_and(|at| at <= now) {
            self.drain_at = None;
            self.flush(now);
        }
    }

    fn stats(&self) -> &LinkStats {
        &self.stats
    }

    fn stats_mut(&mut self) -> &mut LinkStats {
        &mut self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn decode(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        let mut got = Vec::new();
        d.feed(bytes, &mut st, &mut |p| got.push(p.to_vec()));
        got
    }

    #[test]
    fn queue_full_drops_oldest() {
        let mut q = TxQueue::new();
        for i in 0..QUEUE_FRAMES as u8 {
            assert!(!q.push(&[i + 1; 10], false).unwrap());
        }
        assert!(q.push(&[9; 10], false).unwrap()); // drops [1; 10]
        let mut line = Vec::new();
        while let Some(c) = q.front() {
            line.extend_from_slice(c);
            let n = c.len();
            q.consume(n);
        }
        assert_eq!(decode(&line), vec![vec![2; 10], vec![3; 10], vec![4; 10], vec![9; 10]]);
    }

    #[test]
    fn queue_never_drops_a_frame_partly_written() {
        let mut q = TxQueue::new();
        for i in 0..QUEUE_FRAMES as u8 {
            q.push(&[i + 1; 20], false).unwrap();
        }
        let mut line = q.front().unwrap()[..5].to_vec();
        assert!(!q.consume(5));
        assert!(q.push(&[7; 20], false).unwrap()); // drops [2; 20], not the half-sent [1; 20]
        assert!(q.push(&[8; 20], false).unwrap()); // drops [3; 20]
        while let Some(c) = q.front() {
            line.extend_from_slice(c);
            let n = c.len();
            q.consume(n);
        }
        assert!(q.is_empty());
        assert_eq!(decode(&line), vec![vec![1; 20], vec![4; 20], vec![7; 20], vec![8; 20]]);
        assert_eq!(q.push(&[0; frame::MAX_PAYLOAD + 1], false), Err(FrameError::TooLong));
        q.push(&[1], false).unwrap();
        assert_eq!(q.clear(), 1);
        assert!(q.front().is_none());
    }

    #[test]
    fn raw_queue_keeps_bytes_as_they_are() {
        let mut q = TxQueue::with_frames(QUEUE_FRAMES_RAW);
        let big = vec![b'x'; 3000];
        assert!(!q.push(b">>>\nt=status\n<<<\n", true).unwrap());
        assert!(!q.push(&big, true).unwrap());
        assert_eq!(q.front().unwrap(), b">>>\nt=status\n<<<\n");
        let n = q.front().unwrap().len();
        assert!(q.consume(n));
        assert_eq!(q.front().unwrap(), &big[..]);
        assert_eq!(q.push(&vec![0; MAX_RAW + 1], true), Err(FrameError::TooLong));
        for _ in 0..QUEUE_FRAMES_RAW {
            q.push(b"y", true).unwrap();
        }
        assert_eq!(q.len(), QUEUE_FRAMES_RAW);
    }

    #[test]
    fn budget_numbers() {
        // 1 group: 31 + 11 + 1 + 29 + 32 = 104-byte packet, 104 + 7 = 111 bytes on the line.
        assert_eq!(heartbeat_packet_len(1), 104);
        assert_eq!(frame_len(104), 111);
        assert_eq!(line_time(111, 9600), Duration::from_micros(115_625));
        assert_eq!(min_keepalive(1, 9600), Duration::from_millis(463));
        assert_eq!(min_keepalive(1, 115200), Duration::from_millis(39));
        assert!(min_keepalive(4, 19200) > min_keepalive(1, 19200));
        // the table in docs/serial.md
        let table = [(9600, 463, 600), (19200, 232, 300), (38400, 116, 150), (57600, 78, 100), (115200, 39, 50)];
        for (baud, one, four) in table {
            assert_eq!(min_keepalive(1, baud), Duration::from_millis(one), "{baud}");
            assert_eq!(min_keepalive(4, baud), Duration::from_millis(four), "{baud}");
        }
        assert_eq!(frame_len(heartbeat_packet_len(4)), 144);
    }

    #[test]
    fn lock_file_format_stale_and_live() {
        let tmp = TempDir::new("lock");
        let dir = tmp.join("locks");
        let dev = Path::new("/dev/ttyFAKE0");
        let lock = LockFile::acquire(&dir, dev).unwrap();
        let text = fs::read_to_string(dir.join("LCK..ttyFAKE0")).unwrap();
        assert_eq!(text, format!("{:>10}\n", std::process::id()));
        assert_eq!(text.len(), 11);
        // our own live pid holds it
        match LockFile::acquire(&dir, dev) {
            Err(LinkError::Locked { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("{:?}", other.map(|_| ())),
        }
        drop(lock);
        assert!(!dir.join("LCK..ttyFAKE0").exists());
        // garbage content counts as stale
        fs::write(dir.join("LCK..ttyFAKE0"), "junk\n").unwrap();
        let lock = LockFile::acquire(&dir, dev).unwrap();
        drop(lock);
    }

    #[test]
    fn a_lock_naming_our_pid_that_we_do_not_hold_is_stale() {
        // An earlier daemon with our pid left it: killed, started again in a PID namespace
        // (pids start over there) with /var/lock kept. Found by the chaos run: a power-cycled
        // machine's daemon refused to start, "in use by process 2" (itself).
        let tmp = TempDir::new("lock");
        let dir = tmp.join("locks");
        fs::create_dir_all(&dir).unwrap();
        let dev = Path::new("/dev/ttyFAKE1");
        fs::write(dir.join("LCK..ttyFAKE1"), format!("{:>10}\n", std::process::id())).unwrap();
        let lock = LockFile::acquire(&dir, dev).unwrap();
        assert!(matches!(LockFile::acquire(&dir, dev), Err(LinkError::Locked { .. })), "held now");
        drop(lock);
        assert!(!dir.join("LCK..ttyFAKE1").exists());
    }
}
