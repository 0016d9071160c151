//! The client side used by `tandem status|standby|takeover|fence-peer`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;

use super::{CtlError, Request};

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Sends one request and returns (exit code, body). Every wait is bounded by `timeout`.
pub fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<(i32, String), CtlError> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        let errno = errno_of(&e);
        match errno {
            Errno::ENOENT | Errno::ECONNREFUSED | Errno::ENOTDIR => {
                CtlError::NotRunning { path: socket.display().to_string(), errno }
            }
            _ => CtlError::Io { op: "connect", errno },
        }
    })?;
    s.set_read_timeout(Some(timeout)).map_err(|e| CtlError::Io { op: "setsockopt", errno: errno_of(&e) })?;
    s.set_write_timeout(Some(timeout)).map_err(|e| CtlError::Io { op: "setsockopt", errno: errno_of(&e) })?;
    // The daemon may answer (a refusal) and close before reading: read the answer anyway.
    if let Err(e) = s.write_all(req.line().as_bytes()) {
        if !matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset) {
            return Err(CtlError::Io { op: "write", errno: errno_of(&e) });
        }
    }
    let mut reply = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(CtlError::Timeout)
            }
            Err(e) => return Err(CtlError::Io { op: "read", errno: errno_of(&e) }),
        }
        if std::time::Instant::now() > deadline || reply.len() > 1 << 20 {
            return Err(CtlError::Timeout);
        }
    }
    let text = String::from_utf8_lossy(&reply).into_owned();
    let (code, body) = text.split_once('\n').ok_or(CtlError::BadReply)?;
    let code: i32 = code.trim().parse().map_err(|_| CtlError::BadReply)?;
    Ok((code, body.to_string()))
}
