//! Misconfigurations that used to fail silently: two daemons under one node name, the two
//! nodes' group lists in a different order (the peer's group state is matched by
//! position), and different keys. Each is now an error in the log, and a group list that
//! differs makes neither node start anything on the other's word.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::time::Duration;

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 1s";

fn groups(rig: &Rig, order: &[&str]) -> String {
    let script = script(rig.dir.path(), "noop", "case \"$1\" in status) exit 3;; *) exit 0;; esac");
    order.iter().map(|g| format!("group {g} alpha script::{}::{g}\n", script.display())).collect()
}

#[test]
fn a_different_group_order_starts_nothing_and_says_so() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let ca = rig.config(TIMING, &groups(&rig, &["web", "db"]));
    let cb = rig.config(TIMING, &groups(&rig, &["db", "web"]));
    let mut a = rig.node("alpha", &ca);
    let mut b = rig.node("beta", &cb);
    a.start();
    b.start();
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || a.peer_state() == "up"));
    std::thread::sleep(Duration::from_secs(2));
    for n in [&a, &b] {
        let st = n.status().unwrap();
        assert_eq!(st["peers"][0]["same_config"], false, "{st}");
        for g in st["groups"].as_array().unwrap() {
            assert_eq!(g["owner"], "none", "{}: a group started on a peer's word despite the mismatch: {st}", n.name);
        }
        let log = n.log_text();
        assert_eq!(log.matches("configuration differs from ours").count(), 1, "{log}");
    }
    // The same file on both: the groups start.
    b.kill9();
    b.config = ca.clone();
    b.start();
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    assert!(wait_group(&a, "db", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    assert_eq!(b.status().unwrap()["peers"][0]["same_config"], true);
}

#[test]
fn two_daemons_under_one_name_are_reported() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config(TIMING, "");
    let mut a = rig.node("alpha", &cfg);
    // "beta" is started as alpha, the mistake of a copied --node or hostname.
    let mut b = rig.node("beta", &cfg);
    b.name = "alpha".to_string();
    a.start();
    b.start();
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || a.log_text().contains("two nodes run as alpha")),
        "{}",
        a.log_text()
    );
    // Once (a minute's rate limit), at error level, naming the link and the remedy.
    std::thread::sleep(Duration::from_secs(1));
    let log = a.log_text();
    let said: Vec<&str> = log.lines().filter(|l| l.contains("two nodes run as alpha")).collect();
    assert_eq!(said.len(), 1, "{said:?}");
    for l in &said {
        assert!(l.contains(": error: link ") && l.contains("check --node and uname -n"), "{l}");
    }
}

#[test]
fn a_different_key_is_reported() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config(TIMING, "");
    let other_key = rig.dir.path().join("otherkey");
    tandem::config::keygen(&other_key).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let key_line = text.lines().find(|l| l.starts_with("authkey")).unwrap();
    let cfg_b = rig.dir.path().join("b.conf");
    std::fs::write(&cfg_b, text.replace(key_line, &format!("authkey {}", other_key.display()))).unwrap();
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg_b);
    a.start();
    b.start();
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || a
            .log_text()
            .contains("failed authentication and none passed")),
        "{}",
        a.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    let n = a.log_text().matches("failed authentication and none passed").count();
    assert!(n <= 2, "once per link, not per packet: {n}");
}
