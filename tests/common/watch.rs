//! Starting a daemon with its stderr on a pipe nobody reads, and reading what its peer saw:
//! for tests that a node's loop never stalls (the peer must never find it late).

use std::os::fd::AsRawFd;
use std::process::{ChildStderr, Command, Stdio};
use std::time::Duration;

use super::{wait_for, Node};

/// Starts `node` like [`Node::start`], but with stderr on a pipe of one page that the
/// caller holds and (so far) does not read; stdout goes to the node's log file.
pub fn start_with_stderr_pipe(node: &mut Node) -> ChildStderr {
    assert!(node.child.is_none(), "{} already started", node.name);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.log).unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &node.ns])
        .arg(&node.bin)
        .args(["daemon", "--foreground", "-c"])
        .arg(&node.config)
        .args(["--node", &node.name, "--socket"])
        .arg(&node.sock)
        .arg("--state-dir")
        .arg(node.dir.join("state"))
        .arg("--pidfile")
        .arg(node.dir.join("pid"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    // The smallest pipe: it fills after 4 KiB.
    nix::fcntl::fcntl(err.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    node.child = Some(child);
    let sock = node.sock.clone();
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(10), || sock.exists()),
        "{}: control socket never appeared",
        node.name
    );
    err
}

/// Reads what `pipe` holds now, without blocking.
pub fn drain(pipe: &mut ChildStderr) -> String {
    use std::io::Read;
    let fd = pipe.as_raw_fd();
    let fl = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let nb = nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(nb)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    for _ in 0..10_000 {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of `node`'s log that say its peer was late, dead, or a link went down.
pub fn peer_trouble(node: &Node) -> Vec<String> {
    node.log_text()
        .lines()
        .filter(|l| l.contains(" is late") || l.contains("-> dead") || l.contains(": down ("))
        .map(String::from)
        .collect()
}
