//! A local unprivileged process cannot take a node's heartbeats, and datagrams from another
//! source than the configured peer are dropped and counted. All in network namespaces on
//! 192.0.2.0/24, with an unprivileged port (5694) so that `nobody` may try.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::watch::peer_trouble;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s\nudpport 5694";
const LINKS: &str = "ucast lan0 192.0.2.1\nucast lan0 192.0.2.2";

fn link(n: &Node) -> serde_json::Value {
    n.status().unwrap()["peers"][0]["links"][0].clone()
}

#[test]
fn nobody_cannot_take_heartbeats_on_an_unprivileged_port() {
    if !require(&["ip", "socat", "setpriv", "timeout"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config_links(LINKS, TIMING, "");
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_for(Duration::from_secs(10), Duration::from_millis(20), || a.peer_state() == "up"
        && b.peer_state() == "up"));
    assert!(a.log_text().contains("port 5694 is 1024 or above"), "no port warning:\n{}", a.log_text());

    // In alpha's namespace, as nobody, every way of sharing the port: each gets nothing,
    // and alpha misses nothing (its only link is this one).
    let variants = [
        "reuseaddr,bind=192.0.2.1",
        "reuseaddr,bind=0.0.0.0",
        "reuseport,bind=192.0.2.1",
        "reuseaddr,reuseport,bind=192.0.2.1,so-bindtodevice=lan0",
        "reuseaddr,reuseport,so-bindtodevice=lan0",
    ];
    let mut thieves = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let out = rig.dir.path().join(format!("stolen{i}"));
        let err = rig.dir.path().join(format!("stolen{i}.err"));
        let child = Command::new("ip")
            .args(["netns", "exec", rig.a.name(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["timeout", "3", "socat", "-u", &format!("UDP4-RECV:5694,{v}"), "-"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        thieves.push((v, out, err, child));
    }
    for (v, out, err, mut child) in thieves {
        let _ = child.wait();
        let got = std::fs::metadata(&out).unwrap().len();
        eprintln!("nobody with {v}: {got} bytes; {}", std::fs::read_to_string(&err).unwrap().trim());
        assert_eq!(got, 0, "nobody received alpha's heartbeats with {v}");
    }
    assert_eq!(a.peer_state(), "up");
    let t = peer_trouble(&a);
    assert!(t.is_empty(), "alpha missed heartbeats: {t:?}");
}

#[test]
fn datagrams_from_another_source_than_the_peer_are_dropped_and_counted() {
    if !require(&["ip", "socat"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config_links(LINKS, TIMING, "");
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_for(Duration::from_secs(10), Duration::from_millis(20), || a.peer_state() == "up"));
    let before = link(&a);
    // The client (192.0.2.100) sends 20 datagrams to alpha's heartbeat port.
    for _ in 0..20 {
        Command::new("ip")
            .args(["netns", "exec", rig.c.name(), "socat", "-u", "-", "UDP4-SENDTO:192.0.2.1:5694"])
            .stdin(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(b"not a heartbeat")?;
                c.wait()
            })
            .unwrap();
    }
    assert!(wait_for(Duration::from_secs(3), Duration::from_millis(20), || {
        link(&a)["dropped"].as_u64().unwrap() >= before["dropped"].as_u64().unwrap() + 20
    }));
    let after = link(&a);
    assert_eq!(after["bad"], before["bad"], "a foreign datagram reached the packet parser: {after}");
    assert!(a.log_text().contains("dropped a datagram from 192.0.2.100, not the peer 192.0.2.2"), "{}", a.log_text());
    // Rate-limited: 5 lines for 20 datagrams.
    assert_eq!(a.log_text().matches("not the peer").count(), 5);
    assert_eq!(a.peer_state(), "up");
}
