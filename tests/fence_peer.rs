//! `tandem fence-peer` end to end on this machine (no DRBD module here; the QEMU rig,
//! `make vm-test`, covers the outdating itself): the CLI asks its daemon, the daemon asks
//! the peer's over the cluster links, the peer answers with a drbd.conf(5) code. "5" (peer
//! unreachable, DRBD then assumes it dead) is answered only for a peer that is dead on every
//! link; a live peer that could not outdate its disk answers 1 (failed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";

fn wait_up(a: &Node) {
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || a.peer_state() == "up"),
        "peer never up:\n{}",
        a.log_text()
    );
}

/// `tandem fence-peer RES` against `node`'s socket, in the background.
fn ask_bg(node: &Node, res: &str) -> std::process::Child {
    Command::new(tandem())
        .args(["fence-peer", "-s"])
        .arg(&node.sock)
        .arg(res)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: std::process::Child) -> (i32, String) {
    let o = c.wait_with_output().unwrap();
    (o.status.code().unwrap_or(-1), format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn fence_peer_codes_over_the_cluster_links() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config(TIMING, &rig.web_group("alpha"));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    wait_up(&a);

    // The peer is alive but has no such DRBD resource (no module on this machine): its disk
    // was not outdated, so it answers 1 (failed), never 5, and the CLI exits 1.
    let (code, out) = a.ctl(&["fence-peer", "r0"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("peer answered 1 for r0"), "{out}");
    // The request travels on both links (lan0, hb0) but is handled once.
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(20), || b
            .log_text()
            .contains("outdate DRBD resource r0: answered 1")),
        "{}",
        b.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let n = b.log_text().matches("peer asked to outdate DRBD resource r0").count();
    assert_eq!(n, 1, "handled once per request, not {n} times:\n{}", b.log_text());

    // DRBD_RESOURCE is the default (DRBD sets it for its handlers).
    let o =
        Command::new(tandem()).args(["fence-peer", "-s"]).arg(&a.sock).env("DRBD_RESOURCE", "data").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("for data"));

    // Two resources at once are answered under their own names.
    let (c0, c1) = (ask_bg(&a, "r2"), ask_bg(&a, "r3"));
    let ((k0, o0), (k1, o1)) = (finish(c0), finish(c1));
    assert_eq!((k0, k1), (1, 1), "{o0} / {o1}");
    assert!(o0.contains("for r2") && o1.contains("for r3"), "{o0} / {o1}");

    // A 64-byte name cannot be answered under its own name (the reply carries 63): refused.
    let (code, out) = a.ctl(&["fence-peer", &"r".repeat(64)]);
    assert_eq!(code, 2, "{out}");

    // Lost requests are sent again every keepalive: drop alpha's heartbeat traffic for
    // 300 ms (less than deadtime) while it asks.
    let ns = rig.a.name();
    run(&["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "tfp"]);
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "nft",
        "add",
        "chain",
        "inet",
        "tfp",
        "o",
        "{ type filter hook output priority 0 ; }",
    ]);
    run(&["ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "tfp", "o", "udp", "dport", "694", "drop"]);
    let t = Instant::now();
    let c = ask_bg(&a, "r4");
    std::thread::sleep(Duration::from_millis(300));
    run(&["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "tfp"]);
    let (code, out) = finish(c);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("peer answered 1 for r4"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(3), "answered only after {:?}: not resent", t.elapsed());

    // The peer is gone: 5 at once ("peer unreachable"), without waiting for a reply.
    b.signal("KILL");
    let _ = b.wait_exit(Duration::from_secs(5));
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || a.peer_state() == "dead"),
        "peer never dead"
    );
    let t = Instant::now();
    let (code, out) = a.ctl(&["fence-peer", "r0"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("unreachable"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(2));

    // No daemon: 1 (operation failed); no resource: 2 (usage).
    let (code, out) = b.ctl(&["fence-peer", "r0"]);
    assert_eq!(code, 1, "{out}");
    let o =
        Command::new(tandem()).args(["fence-peer", "-s"]).arg(&a.sock).env_remove("DRBD_RESOURCE").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    a.signal("TERM");
    let _ = a.wait_exit(Duration::from_secs(10));
}

/// A request made while the peer is still unknown (just started, not heard yet) waits for
/// membership to know, and is then sent: it is not answered "unreachable".
#[test]
fn fence_peer_waits_out_a_peer_in_init() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config("keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 5s", &rig.web_group("alpha"));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    assert_eq!(a.peer_state(), "init");
    let c = ask_bg(&a, "r0");
    std::thread::sleep(Duration::from_millis(700));
    b.start();
    let (code, out) = finish(c);
    assert_eq!(code, 1, "answered by the live peer, not 5: {out}");
    assert!(out.contains("peer answered 1 for r0"), "{out}");
}
