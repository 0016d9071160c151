//! The metrics responder: a tiny HTTP/1.x server in the daemon's loop that answers
//! `GET /metrics` (off by default: `metrics_listen ADDR:PORT`, or
//! `tandem status --prometheus --listen ADDR:PORT`).
//!
//! - Non-blocking: the listener and every connection are polled by the loop; nothing here
//!   waits.
//! - At most [`MAX_CONNS`] connections; while they are all taken the listener is not polled,
//!   so further clients wait in the kernel's accept queue instead of being refused.
//! - Each connection has one deadline ([`CONN_TIMEOUT`] from its accept) for sending its
//!   request and reading the whole answer; at the deadline it is closed (counted), so a
//!   client that never sends or never reads holds a slot for that long at most.
//! - A request is at most [`MAX_REQUEST`] bytes (request line and headers; a body is not
//!   read). `GET /metrics` (a query string is ignored) is answered 200 with the metrics;
//!   another path 404, another method 405, a malformed request 400, a request too long 431.
//!   Every answer closes the connection.
//!
//! [`parse_request`] and [`answer_for`] are pure.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use crate::time::{Duration, Instant};

use super::metrics::{HttpStats, CONTENT_TYPE, HTTP_CODES};

/// Connections served at once.
pub const MAX_CONNS: usize = 8;
/// The longest request (request line and headers) read.
pub const MAX_REQUEST: usize = 4096;
/// How long a client has to send its request and read the answer.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the bytes read so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse<'a> {
    /// No end of the headers yet.
    Incomplete,
    /// A complete request line and headers: the method and the path (without a query).
    Request { method: &'a str, path: &'a str },
    /// Not an HTTP/1.x request.
    Bad,
    /// No end of the headers within [`MAX_REQUEST`] bytes.
    TooLarge,
}

/// Parses the start of a request. Accepts CRLF or bare LF line ends.
pub fn parse_request(buf: &[u8]) -> Parse<'_> {
    let end = find(buf, b"\r\n\r\n").or_else(|| find(buf, b"\n\n"));
    let Some(end) = end else {
        // A request line that is already not HTTP need not wait for more bytes.
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            if request_line(buf.get(..nl).unwrap_or(&[])).is_none() {
                return Parse::Bad;
            }
        }
        return if buf.len() >= MAX_REQUEST { Parse::TooLarge } else { Parse::Incomplete };
    };
    if end > MAX_REQUEST {
        return Parse::TooLarge;
    }
    let head = buf.get(..end).unwrap_or(&[]);
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    match request_line(line) {
        Some((method, path)) => Parse::Request { method, path },
        None => Parse::Bad,
    }
}

/// `METHOD SP TARGET SP HTTP/1.x` (an optional CR at the end) → (method, path).
fn request_line(line: &[u8]) -> Option<(&str, &str)> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).ok()?;
    let mut w = line.split(' ');
    let (method, target, version) = (w.next()?, w.next()?, w.next()?);
    if w.next().is_some() || !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return None;
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    Some((method, path))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the metrics.
    Metrics,
    /// An error status (no body but a short text).
    Status(u16),
    /// Wait for more bytes.
    Wait,
}

/// The answer to what was read so far.
pub fn answer_for(p: Parse<'_>) -> Answer {
    match p {
        Parse::Incomplete => Answer::Wait,
        Parse::Bad => Answer::Status(400),
        Parse::TooLarge => Answer::Status(431),
        Parse::Request { path, .. } if path != "/metrics" => Answer::Status(404),
        Parse::Request { method: "GET", .. } => Answer::Metrics,
        Parse::Request { .. } => Answer::Status(405),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// The whole response: status line, headers, body.
pub fn response(code: u16, body: &str) -> Vec<u8> {
    let (ctype, body) = if code == 200 {
        (CONTENT_TYPE, body.to_string())
    } else {
        ("text/plain; charset=utf-8", format!("{code} {}: only GET /metrics is served here\n", reason(code)))
    };
    let allow = if code == 405 { "Allow: GET\r\n" } else { "" };
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        reason(code),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// One poll slot of the responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Listener,
    Conn(usize),
}

struct Conn {
    stream: TcpStream,
    buf: Box<[u8; MAX_REQUEST]>,
    len: usize,
    /// The response being written, and how much of it is out.
    out: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

/// The responder. See the module documentation.
pub struct Responder {
    listener: TcpListener,
    addr: SocketAddr,
    conns: Vec<Option<Conn>>,
    stats: HttpStats,
}

impl Responder {
    /// Listens on `addr` (non-blocking).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Responder> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut conns = Vec::with_capacity(MAX_CONNS);
        conns.resize_with(MAX_CONNS, || None);
        Ok(Responder { listener, addr, conns, stats: HttpStats::default() })
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> HttpStats {
        HttpStats { open: self.conns.iter().flatten().count(), ..self.stats }
    }

    /// The fds to poll: the listener while a slot is free, each connection for reading its
    /// request or writing its answer.
    pub fn fds(&self, mut push: impl FnMut(RawFd, i16, Slot)) {
        if self.conns.iter().any(Option::is_none) {
            push(self.listener.as_raw_fd(), libc::POLLIN, Slot::Listener);
        }
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(c) = c {
                let ev = if c.out.is_some() { libc::POLLOUT } else { libc::POLLIN };
                push(c.stream.as_raw_fd(), ev, Slot::Conn(i));
            }
        }
    }

    /// The nearest connection deadline.
    pub fn poll_at(&self) -> Option<Instant> {
        self.conns.iter().flatten().map(|c| c.deadline).min()
    }

    /// Accepts while slots are free.
    pub fn accept(&mut self, now: Instant) {
        while let Some(i) = self.conns.iter().position(Option::is_none) {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("metrics listener {}: accept: {e}", self.addr);
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            if let Some(slot) = self.conns.get_mut(i) {
                *slot = Some(Conn {
                    stream,
                    buf: Box::new([0; MAX_REQUEST]),
                    len: 0,
                    out: None,
                    deadline: now + CONN_TIMEOUT,
                });
            }
        }
    }

    /// Connection `i` is readable or writable. Returns true when it asks for the metrics:
    /// answer it with [`Responder::answer`].
    pub fn on_ready(&mut self, i: usize) -> bool {
        let Some(Some(c)) = self.conns.get_mut(i) else { return false };
        if c.out.is_some() {
            self.write(i);
            return false;
        }
        loop {
            let free = c.buf.get_mut(c.len..).unwrap_or(&mut []);
            if free.is_empty() {
                break;
            }
            match c.stream.read(free) {
                Ok(0) => {
                    // The client closed without a complete request.
                    self.close(i);
                    return false;
                }
                Ok(n) => c.len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.close(i);
                    return false;
                }
            }
        }
        match answer_for(parse_request(c.buf.get(..c.len).unwrap_or(&[]))) {
            Answer::Wait => false,
            Answer::Metrics => true,
            Answer::Status(code) => {
                self.answer(i, code, "");
                false
            }
        }
    }

    /// Starts writing the answer to connection `i` (`body` only for 200).
    pub fn answer(&mut self, i: usize, code: u16, body: &str) {
        let Some(Some(c)) = self.conns.get_mut(i) else { return };
        if let Some(n) = HTTP_CODES.iter().position(|&k| k == code).and_then(|k| self.stats.answers.get_mut(k)) {
            *n += 1;
        }
        c.out = Some((response(code, body), 0));
        self.write(i);
    }

    fn write(&mut self, i: usize) {
        let Some(Some(c)) = self.conns.get_mut(i) else { return };
        let Some((out, pos)) = c.out.as_mut() else { return };
        loop {
            let rest = out.get(*pos..).unwrap_or(&[]);
            if rest.is_empty() {
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
                self.close(i);
                return;
            }
            match c.stream.write(rest) {
                Ok(0) => {
                    self.close(i);
                    return;
                }
                Ok(n) => *pos += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.close(i);
                    return;
                }
            }
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(slot) = self.conns.get_mut(i) {
            *slot = None;
        }
    }

    /// Closes the connections past their deadline.
    pub fn expire(&mut self, now: Instant) {
        for slot in self.conns.iter_mut() {
            if slot.as_ref().is_some_and(|c| c.deadline <= now) {
                *slot = None;
                self.stats.timeouts += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(parse_request(get), Parse::Request { method: "GET", path: "/metrics" });
        assert_eq!(answer_for(parse_request(get)), Answer::Metrics);
        assert_eq!(parse_request(b"GET /metrics?x=1 HTTP/1.0\n\n"), Parse::Request { method: "GET", path: "/metrics" });
        for partial in [&b""[..], b"GET /metr", b"GET /metrics HTTP/1.1\r\n", b"GET /metrics HTTP/1.1\r\nHost: x\r\n"] {
            assert_eq!(parse_request(partial), Parse::Incomplete, "{:?}", String::from_utf8_lossy(partial));
        }
        assert_eq!(answer_for(parse_request(b"GET / HTTP/1.1\r\n\r\n")), Answer::Status(404));
        assert_eq!(answer_for(parse_request(b"GET /metricsx HTTP/1.1\r\n\r\n")), Answer::Status(404));
        assert_eq!(answer_for(parse_request(b"POST /metrics HTTP/1.1\r\n\r\n")), Answer::Status(405));
        assert_eq!(answer_for(parse_request(b"HEAD /metrics HTTP/1.1\r\n\r\n")), Answer::Status(405));
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
            b"GET /metrics HTTP/1.1 x\r\n",
        ] {
            assert_eq!(answer_for(parse_request(bad)), Answer::Status(400), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut long = b"GET /metrics HTTP/1.1\r\n".to_vec();
        long.resize(MAX_REQUEST, b'a');
        assert_eq!(parse_request(&long), Parse::TooLarge);
        assert_eq!(answer_for(parse_request(&long)), Answer::Status(431));
    }

    /// The fuzz target's properties over seeded random mutations of good requests.
    #[test]
    fn random_requests_never_panic_and_parse_consistently() {
        let mut rng = crate::testutil::Rng::new(0x4854_5450);
        let seeds: [&[u8]; 3] =
            [b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", b"POST /x?y HTTP/1.0\n\n", b"GET / HTTP/1.1\r\n"];
        for _ in 0..20_000 {
            let mut d = rng.pick(&seeds).to_vec();
            for _ in 0..rng.range(0, 4) {
                let at = rng.below(d.len() as u64 + 1) as usize;
                match rng.below(3) {
                    0 => d.insert(at, rng.pick(b" \r\n/?GETHP1.\x00\xff")),
                    1 if at < d.len() => {
                        d.remove(at);
                    }
                    _ => d.truncate(at),
                }
            }
            let p = parse_request(&d);
            if let Parse::Request { method, path } = p {
                assert!(!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()), "{d:?}");
                assert!(path.starts_with('/') && !path.contains('?'), "{d:?}");
            }
            if let Answer::Status(code) = answer_for(p) {
                assert!([400, 404, 405, 431].contains(&code));
            }
        }
    }

    #[test]
    fn responses() {
        let r = String::from_utf8(response(200, "a 1\n")).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\n\
             Connection: close\r\n\r\na 1\n"
        );
        let r = String::from_utf8(response(405, "")).unwrap();
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
        assert!(r.contains("\r\nAllow: GET\r\n"), "{r}");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
