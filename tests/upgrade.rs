//! Rolling upgrade of tandem itself: the previous release (built from the commit named in
//! `release/0.1.0`, checked out with `git worktree`) and this build run as the two nodes of
//! one cluster. It forms, standby moves the group both ways, and a failover works both ways
//! (docs/upgrading.md). The address is sampled every 10 ms: never on both nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";

/// The previous release's commit, from `release/0.1.0`.
fn previous_commit() -> String {
    let text = std::fs::read_to_string(repo().join("release/0.1.0")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("commit "))
        .map(|c| c.trim().to_string())
        .expect("release/0.1.0 names no commit")
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git").arg("-C").arg(dir).args(args).output().unwrap()
}

/// Builds the previous release once (cached by commit under target/), returns its binary.
/// `None` (outside CI) when this clone lacks the commit.
fn previous_release() -> Option<PathBuf> {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let repo = repo();
    let commit = previous_commit();
    let cache = repo.join("target/previous-release");
    let bin = cache.join(format!("tandem-{}", &commit[..12]));
    if bin.exists() {
        return Some(bin);
    }
    if !git(&repo, &["cat-file", "-e", &format!("{commit}^{{commit}}")]).status.success() {
        prereq::missing(&format!("the previous release's commit {commit} in this clone"), "a shallow clone?");
        return None;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let src = cache.join(format!("src-{}-{}", &commit[..12], std::process::id()));
    let _ = git(&repo, &["worktree", "remove", "--force", src.to_str().unwrap()]);
    let _ = git(&repo, &["worktree", "prune"]);
    let o = git(&repo, &["worktree", "add", "--detach", src.to_str().unwrap(), &commit]);
    assert!(o.status.success(), "git worktree add: {}", String::from_utf8_lossy(&o.stderr));
    // A debug build is enough for a functional test and much faster than the release profile.
    let st = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--bin", "tandem"])
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", cache.join("target"))
        .status()
        .unwrap();
    let _ = git(&repo, &["worktree", "remove", "--force", src.to_str().unwrap()]);
    assert!(st.success(), "building release 0.1.0 failed");
    std::fs::copy(cache.join("target/debug/tandem"), &bin).unwrap();
    Some(bin)
}

fn version(bin: &Path) -> String {
    stdout(&Command::new(bin).arg("version").output().unwrap()).trim().to_string()
}

fn served_by(rig: &Rig, ns: &str, timeout: Duration) -> bool {
    wait_for(timeout, Duration::from_millis(20), || rig.ask().as_deref() == Some(ns))
}

/// One mixed cluster: `old_node` runs the previous release, the other this build.
fn mixed(old_node: &str) {
    if !require(&["ip", "socat", "ss", "git"]) {
        return;
    }
    let Some(old) = previous_release() else { return };
    let new = PathBuf::from(tandem());
    assert_ne!(version(&old), version(&new), "the two binaries report the same version");
    eprintln!("{old_node} runs {}, the other node {}", version(&old), version(&new));

    let rig = Rig::new();
    let cfg = rig.config(TIMING, &rig.web_group("alpha"));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    if old_node == "alpha" {
        a.bin = old.clone();
    } else {
        b.bin = old.clone();
    }
    a.start();
    b.start();
    let sampler = Sampler::start(rig.a.name(), rig.b.name(), FLOAT, Duration::from_millis(10));

    // It forms, and the group starts once, on its preferred node.
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)), "{:?}", a.status());
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || a.peer_state() == "up"
        && b.peer_state() == "up"));
    assert!(served_by(&rig, rig.a.name(), Duration::from_secs(3)));
    // The new node knows its peer runs the previous release.
    let newer = if old_node == "alpha" { &b } else { &a };
    assert_eq!(newer.status().unwrap()["peers"][0]["protocol_level"], 0, "{:?}", newer.status());

    // Standby both ways: alpha → beta, then beta → alpha.
    assert_eq!(a.ctl(&["standby", "web"]).0, 0);
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)), "{:?}", b.status());
    assert!(served_by(&rig, rig.b.name(), Duration::from_secs(3)));
    assert_eq!(b.ctl(&["standby", "web"]).0, 0);
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    assert!(served_by(&rig, rig.a.name(), Duration::from_secs(3)));

    // Failover both ways: alpha dies, beta takes over; alpha comes back (same binary) and
    // stays secondary (auto_failback off); then beta dies and alpha takes over.
    rig.a.link("lan0", false);
    rig.a.link("hb0", false);
    rig.a.kill_all();
    a.kill9();
    run(&["ip", "-n", rig.a.name(), "addr", "flush", "dev", "lan0", "to", &format!("{FLOAT}/32")]);
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)), "{:?}", b.status());
    assert!(served_by(&rig, rig.b.name(), Duration::from_secs(3)));
    rig.a.link("lan0", true);
    rig.a.link("hb0", true);
    a.start();
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || a.peer_state() == "up"));
    assert!(wait_group(&a, "web", "beta", "started", Duration::from_secs(5)), "{:?}", a.status());
    rig.b.link("lan0", false);
    rig.b.link("hb0", false);
    rig.b.kill_all();
    b.kill9();
    run(&["ip", "-n", rig.b.name(), "addr", "flush", "dev", "lan0", "to", &format!("{FLOAT}/32")]);
    rig.b.link("lan0", true);
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    assert!(served_by(&rig, rig.a.name(), Duration::from_secs(3)));

    let s = sampler.finish();
    assert_eq!(s.both, 0, "the address was on both nodes in {} of {} samples", s.both, s.samples);
    let log = format!("{}{}", a.log_text(), b.log_text());
    assert!(!log.contains("rejected packet"), "a node rejected the other's packets:\n{log}");
}

#[test]
fn previous_release_as_alpha_and_this_build_as_beta() {
    mixed("alpha");
}

#[test]
fn this_build_as_alpha_and_previous_release_as_beta() {
    mixed("beta");
}
