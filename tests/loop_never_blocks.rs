//! The daemon's loop never blocks on what an operator or a log reader does: a FIFO named as
//! the key or the configuration and a SIGHUP, or a stderr pipe nobody reads while it logs a
//! lot. Measured from the peer's side: it never finds the node late, let alone dead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::watch::peer_trouble;
use common::*;
use std::time::Duration;

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";

fn both_up(a: &Node, b: &Node) {
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || a.peer_state() == "up"
            && b.peer_state() == "up"),
        "peers never came up"
    );
}

#[test]
fn fifo_key_or_config_and_sighup_do_not_stall_heartbeats() {
    if !require(&["ip", "mkfifo"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config(TIMING, "");
    // alpha gets a config of its own (a copy), so that its path can become a FIFO.
    let cfg_a = rig.dir.path().join("alpha.conf");
    std::fs::copy(&cfg, &cfg_a).unwrap();
    let mut a = rig.node("alpha", &cfg_a);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    both_up(&a, &b);
    let key = rig.dir.path().join("authkey");
    let key_a = rig.dir.path().join("authkey-alpha");
    std::fs::copy(&key, &key_a).unwrap();
    let text =
        std::fs::read_to_string(&cfg_a).unwrap().replace(&key.display().to_string(), &key_a.display().to_string());
    std::fs::write(&cfg_a, text).unwrap();

    // The key becomes a FIFO nobody writes to; SIGHUP.
    std::fs::remove_file(&key_a).unwrap();
    run(&["mkfifo", "-m", "600", key_a.to_str().unwrap()]);
    a.signal("HUP");
    let refused = |what: &str| {
        let what = what.to_string();
        wait_for(Duration::from_secs(3), Duration::from_millis(20), || {
            a.log_text()
                .lines()
                .any(|l| l.contains("reload refused") && l.contains(&what) && l.contains("regular file"))
        })
    };
    assert!(refused(key_a.to_str().unwrap()), "no refusal naming the key FIFO:\n{}", a.log_text());
    // The config itself as a FIFO.
    let saved = std::fs::read_to_string(&cfg_a).unwrap();
    std::fs::remove_file(&cfg_a).unwrap();
    run(&["mkfifo", "-m", "600", cfg_a.to_str().unwrap()]);
    a.signal("HUP");
    assert!(refused(cfg_a.to_str().unwrap()), "no refusal naming the config FIFO:\n{}", a.log_text());
    // Past deadtime and more: beta never found alpha late.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(a.peer_state(), "up", "alpha's loop stalled");
    assert_eq!(b.peer_state(), "up");
    let trouble = peer_trouble(&b);
    assert!(trouble.is_empty(), "beta saw alpha late or dead: {trouble:?}");
    std::fs::remove_file(&cfg_a).unwrap();
    std::fs::write(&cfg_a, saved).unwrap();
}
