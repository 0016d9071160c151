//! Rotating the shared key on two live daemons without downtime: `authkey_accept` adds a
//! key accepted on receive, a reload replaces the keys, and no packet is ever counted bad.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::watch::peer_trouble;
use common::*;
use std::time::Duration;

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";

fn reloads(n: &Node) -> usize {
    n.log_text().matches("configuration reloaded").count()
}

/// Rewrites the shared config's key lines and reloads `nodes` in order, `gap` apart.
fn step(cfg: &std::path::Path, base: &str, keys: &str, nodes: &[&Node], gap: Duration) {
    std::fs::write(cfg, format!("{base}{keys}\n")).unwrap();
    for n in nodes {
        let before = reloads(n);
        n.signal("HUP");
        assert!(
            wait_for(Duration::from_secs(3), Duration::from_millis(10), || reloads(n) > before),
            "{} did not reload:\n{}",
            n.name,
            n.log_text()
        );
        std::thread::sleep(gap);
    }
}

fn bad_packets(n: &Node) -> u64 {
    let s = n.status().unwrap();
    s["peers"][0]["links"].as_array().unwrap().iter().map(|l| l["bad"].as_u64().unwrap()).sum()
}

#[test]
fn keys_rotate_on_live_daemons_without_a_bad_packet() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config(TIMING, "");
    let key1 = rig.dir.path().join("authkey");
    let key2 = rig.dir.path().join("authkey2");
    run(&[tandem(), "keygen", key2.to_str().unwrap()]);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line1 = format!("authkey {}\n", key1.display());
    assert!(text.contains(&line1));
    let base = text.replace(&line1, "");
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_for(Duration::from_secs(10), Duration::from_millis(20), || a.peer_state() == "up"
        && b.peer_state() == "up"));
    let (k1, k2) = (key1.display(), key2.display());
    let gap = Duration::from_millis(400);
    // 1. Both accept the new key too.
    step(&cfg, &base, &format!("authkey {k1}\nauthkey_accept {k2}"), &[&a, &b], gap);
    // 2. Both send with the new key, accepting the old one (alpha first: for 400 ms beta
    //    receives the new key only through authkey_accept).
    step(&cfg, &base, &format!("authkey {k2}\nauthkey_accept {k1}"), &[&a, &b], gap);
    // 3. The old key goes.
    step(&cfg, &base, &format!("authkey {k2}"), &[&a, &b], gap);
    std::thread::sleep(Duration::from_millis(600));

    for n in [&a, &b] {
        assert_eq!(n.peer_state(), "up", "{}", n.name);
        assert_eq!(bad_packets(n), 0, "{} counted bad packets: {:?}", n.name, n.status());
        let t = peer_trouble(n);
        assert!(t.is_empty(), "{}: {t:?}", n.name);
        assert_eq!(n.log_text().matches("authentication key replaced").count(), 3, "{}", n.name);
    }
    // The old key is refused now: a daemon still using it is counted bad, never accepted.
    let old = rig.dir.path().join("old.conf");
    std::fs::write(&old, format!("{base}authkey {k1}\n")).unwrap();
    b.kill9();
    let mut b1 = rig.node("beta", &old);
    let _ = std::fs::remove_file(&b1.sock);
    b1.start();
    assert!(wait_for(Duration::from_secs(3), Duration::from_millis(20), || bad_packets(&a) > 0));
    assert_eq!(b1.peer_state(), "init", "beta with the old key heard alpha");
}
