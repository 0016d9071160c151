//! The integration tests' one set of helpers, by topic:
//! - `tmp`: temporary directories ([`TempDir`], shared with the unit tests);
//! - `prereq`: what a test needs (root, programs, files), skipped or, under `CI=true`, failed;
//! - `netns`: network namespaces ([`Netns`], [`in_netns`], [`Pair`]);
//! - `rig`: the two-node rig of real daemons ([`Rig`], [`Node`], [`Sampler`]);
//! - `relay`, `serial`: a null-modem cable of pty pairs, and serial links on it;
//! - `loopdev`: loop devices for mount tests (util-linux `losetup`);
//! - `svcres`: a service group's resources as one script with a log of its own, and faults;
//! - `bmc`, `rmcp_bmc`: BMCs for fencing tests; `fencerig`: the two-node rig whose nodes are
//!   machines behind BMCs (fencing tests); `machine`: a node as a machine behind a
//!   power switch and a BMC, and the two-node rig of such machines ([`machine::MachineRig`]);
//! - `cable`: a serial null-modem cable for daemons (pty pairs, a relay, lock clean-up);
//! - `nft`: cut and lossy links with nftables; `chaos`: the chaos run's schedule, journal,
//!   address watch and evaluation;
//! - `guest`: guest roots and rigs for the guest agent's tests;
//! - `hbfix`, `hbrig`: heartbeat 3.0.6 captures, and a rig with a real heartbeat node;
//! - `http`: a small HTTP client, and clients that never send or never read;
//! - `targets`: ping targets on the rig's LAN, and nftables helpers;
//! - `rng`: the one seeded random generator ([`Rng`], shared with the unit tests);
//! - here: running programs, waiting with a bound, unique names.
//!
//! Test traffic stays inside namespaces the tests create, on 192.0.2.0/24,
//! 198.51.100.0/24 and 203.0.113.0/24 (management), plus 2001:db8::/32.
#![allow(dead_code, unused_imports)] // each test crate uses its own part

pub mod bmc;
pub mod cable;
pub mod chaos;
pub mod fencerig;
pub mod guest;
pub mod hbfix;
pub mod hbmixed;
pub mod hbrig;
pub mod http;
pub mod loopdev;
pub mod machine;
pub mod netns;
pub mod nft;
pub mod ocf;
pub mod prereq;
pub mod relay;
pub mod rig;
pub mod rmcp_bmc;
mod rng;
pub mod serial;
pub mod svcres;
pub mod targets;
mod tmp;
pub mod watch;

pub use netns::{in_netns, in_new_netns, spawn_in_netns, Netns, Pair};
pub use prereq::{needs, require};
pub use rig::{probe_bin, wait_fence_settled, wait_group, Node, Rig, SampleStats, Sampler, FLOAT, PORT};
pub use rng::Rng;
pub use tmp::TempDir;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn tandem() -> &'static str {
    env!("CARGO_BIN_EXE_tandem")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A short token unique on this machine while this process lives (fits interface and
/// namespace names): the pid in base 36, a dash, a counter. Tests of several processes
/// (other test crates, other worktrees) run side by side, so the pid must stay whole.
pub fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let mut pid = std::process::id();
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit(pid % 36, 36).unwrap_or('0'));
        pid /= 36;
        if pid == 0 {
            break;
        }
    }
    let pid: String = digits.iter().rev().collect();
    format!("{pid}-{n}")
}

/// Runs a program; panics (with its output) unless it succeeds.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    if !out.status.success() {
        panic!("{args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    out
}

/// Runs a program quietly; true when it succeeds.
pub fn try_run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `sh -c CMD`; panics unless it succeeds.
pub fn sh(cmd: &str) -> Output {
    run(&["sh", "-c", cmd])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Now, in µs since the epoch (to compare with the timestamps of logs).
pub fn unix_us() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

/// Polls `f` every `every` until it is true or `timeout` passes.
pub fn wait_for(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Writes an executable shell script into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A child process killed and reaped on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
