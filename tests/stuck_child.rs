//! A resource operation that cannot be killed (here: frozen by the cgroup v1 freezer, the
//! way a process in uninterruptible sleep on a dead NFS server would be) keeps its child
//! slot. The daemon reports it (log at error level, `stuck_children` in status) and it
//! cannot take the slots that answer the peer's outdate requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

/// A freezer cgroup (v1), thawed and removed on drop.
struct Freezer(PathBuf);

impl Freezer {
    fn new() -> Option<Freezer> {
        let root = PathBuf::from("/sys/fs/cgroup/freezer");
        if !root.join("tasks").exists() {
            return None;
        }
        let p = root.join(format!("tandem-stuck-{}", unique()));
        std::fs::create_dir_all(&p).unwrap();
        Some(Freezer(p))
    }
    fn set(&self, state: &str) {
        std::fs::write(self.0.join("freezer.state"), state).unwrap();
    }
    fn tasks(&self) -> String {
        std::fs::read_to_string(self.0.join("tasks")).unwrap_or_default()
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
        for pid in self.tasks().split_whitespace() {
            let _ = std::process::Command::new("kill").args(["-9", pid]).status();
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_child_that_survives_sigkill_is_reported_and_cannot_starve_outdate_answers() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let Some(fz) = Freezer::new() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "no cgroup v1 freezer (CI=true)");
        eprintln!("SKIP: no cgroup v1 freezer");
        return;
    };
    let rig = Rig::new();
    // beta's start of `stuck` says its pid and waits; the test freezes it (`ip netns exec`
    // mounts its own /sys, so the script cannot reach the freezer itself).
    let pidfile = rig.dir.path().join("stuck.pid");
    let script = script(
        rig.dir.path(),
        "stuck",
        &format!(
            "case \"$1\" in start) echo $$ > {p}; exec sleep 60;; stop) exit 0;; status) exit 3;; esac",
            p = pidfile.display()
        ),
    );
    let cfg = rig.config(
        "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s\nstart_timeout 1s",
        &format!("group stuck beta script::{}", script.display()),
    );
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_for(Duration::from_secs(10), Duration::from_millis(5), || pidfile.exists()));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    std::fs::write(fz.0.join("tasks"), pid.trim()).unwrap();
    fz.set("FROZEN");
    // The start times out; TERM and KILL cannot end a frozen process: it is reported stuck.
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || b.status().is_some_and(|s| s
            ["stuck_children"]
            .as_u64()
            .unwrap_or(0)
            >= 1)),
        "never reported stuck: {:?}\n{}",
        b.status(),
        b.log_text()
    );
    assert!(b.log_text().contains("does not die after SIGKILL"), "{}", b.log_text());
    let (_, text) = b.ctl(&["status"]);
    assert!(text.contains("did not die after SIGKILL"), "{text}");
    // The outdate answers have slots of their own: alpha's fence-peer is still answered
    // by beta (1: no DRBD here), not refused for want of a slot.
    let (code, out) = a.ctl(&["fence-peer", "r0"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("peer answered 1 for r0"), "{out}");
    assert!(!b.log_text().contains("slots are busy"), "{}", b.log_text());
    // Thawed, the killed child dies and its slot comes back.
    fz.set("THAWED");
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || b
            .status()
            .is_some_and(|s| s["stuck_children"].as_u64() == Some(0))),
        "{:?}",
        b.status()
    );
}
