//! `tandem fence-peer` end to end on this machine (no DRBD module here; the QEMU rig,
//! `make vm-test`, covers the outdating itself): the CLI asks its daemon, the daemon asks
//! the peer's over the cluster links, the peer answers with a drbd.conf(5) code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::time::Duration;

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";

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
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || a.peer_state() == "up"),
        "peer never up:\n{}",
        a.log_text()
    );

    // The peer has no such DRBD resource (no module on this machine): it cannot outdate
    // anything, so it answers 5, and the CLI exits 5.
    let (code, out) = a.ctl(&["fence-peer", "r0"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("peer answered 5 for r0"), "{out}");
    // The request travels on both links (lan0, hb0) but is handled once.
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(20), || b
            .log_text()
            .contains("outdate DRBD resource r0: answered 5")),
        "{}",
        b.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let n = b.log_text().matches("peer asked to outdate DRBD resource r0").count();
    assert_eq!(n, 1, "handled once per request, not {n} times:\n{}", b.log_text());

    // DRBD_RESOURCE is the default (DRBD sets it for its handlers).
    let o = std::process::Command::new(tandem())
        .args(["fence-peer", "-s"])
        .arg(&a.sock)
        .env("DRBD_RESOURCE", "data")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("for data"));

    // The peer is gone: 5 at once ("peer unreachable"), without waiting for a reply.
    b.signal("KILL");
    let _ = b.wait_exit(Duration::from_secs(5));
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || a.peer_state() == "dead"),
        "peer never dead"
    );
    let t = std::time::Instant::now();
    let (code, out) = a.ctl(&["fence-peer", "r0"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("unreachable"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(2));

    // No daemon: 1 (operation failed); no resource: 2 (usage).
    let (code, out) = b.ctl(&["fence-peer", "r0"]);
    assert_eq!(code, 1, "{out}");
    let o = std::process::Command::new(tandem())
        .args(["fence-peer", "-s"])
        .arg(&a.sock)
        .env_remove("DRBD_RESOURCE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    a.signal("TERM");
    let _ = a.wait_exit(Duration::from_secs(10));
}
