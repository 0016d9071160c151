//! A small blocking HTTP/1.1 client for the metrics responder's tests, bounded by timeouts,
//! and clients that misbehave on purpose (never send, never read). Call them from a thread
//! inside the client's network namespace ([`super::in_netns`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// An answer: status code, headers (lower-case names), body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` (a whole request) to `addr` and reads the answer until the server closes.
/// Every step is bounded by `timeout` in all.
pub fn request(addr: &str, raw: &[u8], timeout: Duration) -> Result<Answer, String> {
    let end = Instant::now() + timeout;
    let sa: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(raw).map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if Instant::now() > end {
            return Err(format!("no complete answer within {timeout:?} ({} bytes)", got.len()));
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {} bytes: {e}", got.len())),
        }
    }
    parse(&got)
}

/// `GET PATH` on `addr`.
pub fn get(addr: &str, path: &str, timeout: Duration) -> Result<Answer, String> {
    request(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n").as_bytes(), timeout)
}

fn parse(raw: &[u8]) -> Result<Answer, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no end of headers in {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {status:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let a = Answer { code, headers, body: body.to_string() };
    if let Some(len) = a.header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if len != a.body.len() {
            return Err(format!("Content-Length {len}, body of {} bytes", a.body.len()));
        }
    }
    Ok(a)
}

/// A client that connects and never sends anything (it holds a connection until dropped).
pub fn silent_client(addr: &str) -> TcpStream {
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).unwrap()
}

/// A client that sends `GET /metrics` with a tiny receive window and never reads, so a large
/// answer cannot be written out.
pub fn non_reading_client(addr: &str) -> TcpStream {
    use nix::sys::socket::{connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    let sa: std::net::SocketAddrV4 = addr.parse().unwrap();
    let fd: OwnedFd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    // Before connect, so that the window the client announces is small from the start.
    setsockopt(&fd, sockopt::RcvBuf, &1024).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::from(sa)).unwrap();
    let mut s = TcpStream::from(fd);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s
}
