//! The daemon side of the control socket. Non-blocking; driven by the poll loop.
//! At most [`MAX_CONNS`] clients at once, each with a deadline; only uid 0 is served.
//!
//! [`OUTDATE_SLOTS`] more slots are kept for `outdate` (DRBD's fence-peer handler, which
//! must be answered while a burst of other clients, or idle connections, fill the others;
//! DRBD runs it once per resource, all at once when the replication link drops): a
//! connection gets one only when every other slot is taken; anything but `outdate` read
//! there is answered "busy". When all of them are taken too, the connection that has been
//! silent there longest, for at least [`KEPT_SILENCE`], is closed for the new one, so idle
//! connections cannot hold them, and handlers that connect at once do not push each other
//! out before their requests are read.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::{CtlError, Request, MAX_REQUEST};
use crate::time::{Duration, Instant};

pub const MAX_CONNS: usize = 8;
/// Slots kept for `outdate`: as many DRBD resources' fence-peer handlers at once.
pub const OUTDATE_SLOTS: usize = 4;
/// Connection slots in all: [`MAX_CONNS`] and the [`OUTDATE_SLOTS`] after them.
pub const SLOTS: usize = MAX_CONNS + OUTDATE_SLOTS;
/// How long a connection in a kept slot may stay silent before another one may take its
/// slot (a fence-peer handler sends its request as soon as it connects).
const KEPT_SILENCE: Duration = Duration::from_millis(500);
const BUSY: &[u8] = b"1\nbusy: too many control connections\n";
/// How long a client may take to send its request and read the answer.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(5);

enum ConnState {
    Reading,
    /// Waiting for the daemon to answer later (e.g. an outdate request to the peer).
    Pending,
    Writing {
        pos: usize,
    },
}

struct Conn {
    stream: UnixStream,
    buf: [u8; MAX_REQUEST],
    len: usize,
    out: Vec<u8>,
    state: ConnState,
    /// When it was accepted.
    opened: Instant,
    deadline: Instant,
    /// Not uid 0: its request is read (closing with unread data would reset the connection
    /// and lose the answer) and answered with a refusal.
    refused: bool,
}

/// A request read from a client, to be answered with [`Server::reply`].
pub struct Incoming {
    pub conn: usize,
    pub request: Result<Request, CtlError>,
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    conns: Vec<Option<Conn>>,
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Server {
    /// Binds the socket with mode 0600. A stale socket (nobody answering) is replaced;
    /// a live one is an error.
    pub fn bind(path: &Path) -> Result<Server, CtlError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| CtlError::Io { op: "mkdir socket dir", errno: io_errno(&e) })?;
            }
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(CtlError::Io {
                    op: "bind control socket (another daemon answers on it)",
                    errno: Errno::EADDRINUSE,
                });
            }
            let _ = std::fs::remove_file(path);
        }
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let l = UnixListener::bind(path);
        nix::sys::stat::umask(old);
        let listener = l.map_err(|e| CtlError::Io { op: "bind control socket", errno: io_errno(&e) })?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CtlError::Io { op: "chmod control socket", errno: io_errno(&e) })?;
        listener.set_nonblocking(true).map_err(|e| CtlError::Io { op: "set_nonblocking", errno: io_errno(&e) })?;
        let mut conns = Vec::with_capacity(SLOTS);
        conns.resize_with(SLOTS, || None);
        Ok(Server { listener, path: path.to_path_buf(), conns })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn listen_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// (fd, want_write) for every open connection.
    pub fn conn_fds(&self, out: &mut Vec<(RawFd, bool, usize)>) {
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(c) = c {
                match c.state {
                    ConnState::Reading => out.push((c.stream.as_raw_fd(), false, i)),
                    ConnState::Writing { .. } => out.push((c.stream.as_raw_fd(), true, i)),
                    ConnState::Pending => {}
                }
            }
        }
    }

    pub fn poll_at(&self) -> Option<Instant> {
        self.conns.iter().flatten().map(|c| c.deadline).min()
    }

    /// Accepts pending connections; refuses non-root peers at once.
    pub fn accept(&mut self, now: Instant) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("control socket accept: {e}");
                    return;
                }
            };
            let refused = !matches!(getsockopt(&stream, PeerCredentials), Ok(c) if c.uid() == 0);
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let Some(i) = self.free_slot(now) else {
                let _ = (&stream).write(BUSY);
                continue;
            };
            let Some(slot) = self.conns.get_mut(i) else { continue };
            *slot = Some(Conn {
                stream,
                buf: [0; MAX_REQUEST],
                len: 0,
                out: Vec::new(),
                state: ConnState::Reading,
                opened: now,
                deadline: now + CONN_TIMEOUT,
                refused,
            });
        }
    }

    /// A free general slot, else a free kept one, else the kept slot of the connection
    /// silent longest (at least [`KEPT_SILENCE`]; it is closed).
    fn free_slot(&mut self, now: Instant) -> Option<usize> {
        if let Some(i) = self.conns.iter().take(MAX_CONNS).position(|c| c.is_none()) {
            return Some(i);
        }
        if let Some(i) = self.conns.iter().skip(MAX_CONNS).position(|c| c.is_none()) {
            return Some(MAX_CONNS + i);
        }
        let (_, i) = self
            .conns
            .iter()
            .enumerate()
            .skip(MAX_CONNS)
            .filter_map(|(i, c)| match c {
                Some(c) if matches!(c.state, ConnState::Reading) && now.saturating_since(c.opened) >= KEPT_SILENCE => {
                    Some((c.opened, i))
                }
                _ => None,
            })
            .min()?;
        if let Some(slot) = self.conns.get_mut(i) {
            *slot = None;
        }
        Some(i)
    }

    /// Reads from connection `i`; returns a complete request once a line has arrived.
    pub fn on_readable(&mut self, i: usize) -> Option<Incoming> {
        let slot = self.conns.get_mut(i)?;
        let c = slot.as_mut()?;
        if !matches!(c.state, ConnState::Reading) {
            return None;
        }
        loop {
            let free = c.buf.get_mut(c.len..).unwrap_or(&mut []);
            if free.is_empty() {
                *slot = None;
                return None;
            }
            match c.stream.read(free) {
                Ok(0) => {
                    *slot = None;
                    return None;
                }
                Ok(n) => {
                    c.len += n;
                    let filled = c.buf.get(..c.len).unwrap_or(&[]);
                    if let Some(nl) = filled.iter().position(|&b| b == b'\n') {
                        if c.refused {
                            self.reply(i, 1, "permission denied: only root may use the control socket\n");
                            return None;
                        }
                        let line = String::from_utf8_lossy(filled.get(..nl).unwrap_or(&[])).into_owned();
                        let request = Request::parse(line.trim());
                        if i >= MAX_CONNS && !matches!(request, Ok(Request::Outdate(_))) {
                            let busy = String::from_utf8_lossy(BUSY.get(2..).unwrap_or(&[])).into_owned();
                            self.reply(i, 1, &busy);
                            return None;
                        }
                        c.state = ConnState::Pending;
                        return Some(Incoming { conn: i, request });
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(_) => {
                    *slot = None;
                    return None;
                }
            }
        }
    }

    /// Queues the answer for connection `i` (exit code, then body) and starts writing it.
    pub fn reply(&mut self, i: usize, code: i32, body: &str) {
        if let Some(Some(c)) = self.conns.get_mut(i) {
            c.out = format!("{code}\n{body}").into_bytes();
            c.state = ConnState::Writing { pos: 0 };
            self.on_writable(i);
        }
    }

    /// Extends the deadline of a pending connection (e.g. while waiting for the peer).
    pub fn extend(&mut self, i: usize, until: Instant) {
        if let Some(Some(c)) = self.conns.get_mut(i) {
            c.deadline = c.deadline.max(until);
        }
    }

    pub fn on_writable(&mut self, i: usize) {
        let Some(slot) = self.conns.get_mut(i) else { return };
        let Some(c) = slot.as_mut() else { return };
        let ConnState::Writing { pos } = &mut c.state else { return };
        loop {
            let rest = c.out.get(*pos..).unwrap_or(&[]);
            if rest.is_empty() {
                *slot = None;
                return;
            }
            match c.stream.write(rest) {
                Ok(0) => {
                    *slot = None;
                    return;
                }
                Ok(n) => *pos += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    *slot = None;
                    return;
                }
            }
        }
    }

    /// Drops connections past their deadline. Returns the indexes of pending requests
    /// that timed out (so the daemon can forget them).
    pub fn expire(&mut self, now: Instant, expired: &mut Vec<usize>) {
        for (i, slot) in self.conns.iter_mut().enumerate() {
            if matches!(slot, Some(c) if c.deadline <= now) {
                if matches!(slot, Some(Conn { state: ConnState::Pending, .. })) {
                    expired.push(i);
                }
                *slot = None;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
