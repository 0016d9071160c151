//! Membership over real links: two real daemons in network namespaces see each other over
//! ucast and bcast links, detect a cut within deadtime, ignore intruders and replays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";
const LINKS: &str = "ucast lan0 192.0.2.1\nucast lan0 192.0.2.2\nbcast hb0";

fn link_up(n: &Node, prefix: &str) -> Option<bool> {
    let s = n.status()?;
    s["peers"][0]["links"].as_array()?.iter().find(|l| l["name"].as_str().is_some_and(|x| x.starts_with(prefix)))?["up"]
        .as_bool()
}

fn wait_peer(n: &Node, state: &str, timeout: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    wait_for(timeout, Duration::from_millis(10), || n.peer_state() == state).then(|| t0.elapsed())
}

#[test]
fn ucast_and_bcast_peers_come_up_and_detect_cuts() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config_links(LINKS, TIMING, "");
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    let t0 = Instant::now();
    a.start();
    b.start();
    let startup = t0.elapsed();
    // Up within 2 x keepalive plus start-up.
    let bound = startup + Duration::from_millis(200) + Duration::from_millis(300);
    assert!(wait_peer(&a, "up", bound).is_some(), "alpha never saw beta up within {bound:?}");
    assert!(wait_peer(&b, "up", bound).is_some(), "beta never saw alpha up within {bound:?}");
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(20), || link_up(&a, "bcast") == Some(true)
            && link_up(&a, "ucast") == Some(true)),
        "links not both up: {:?}",
        a.status()
    );

    // Cut only the bcast link: no death, and that link shows down.
    rig.a.link("hb0", false);
    assert!(
        wait_for(Duration::from_secs(3), Duration::from_millis(20), || link_up(&b, "bcast") == Some(false)),
        "beta's bcast link never went down"
    );
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        assert_eq!(a.peer_state(), "up", "alpha declared beta dead with one link left");
        assert_eq!(b.peer_state(), "up", "beta declared alpha dead with one link left");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(link_up(&b, "ucast"), Some(true));
    let (_, text) = b.ctl(&["status"]);
    assert!(text.contains("bcast hb0: down"), "plain status: {text}");

    // Cut both: each declares the other dead within deadtime plus a margin.
    rig.a.link("lan0", false);
    let cut = Instant::now();
    let da = wait_peer(&a, "dead", Duration::from_secs(3)).expect("alpha never declared beta dead");
    let db =
        wait_peer(&b, "dead", Duration::from_secs(3)).map(|_| cut.elapsed()).expect("beta never declared alpha dead");
    eprintln!("detection after cut: alpha {da:?}, beta {db:?} (deadtime 500ms)");
    for d in [da, db] {
        assert!(d >= Duration::from_millis(380), "declared dead too early: {d:?}");
        assert!(d <= Duration::from_millis(500 + 700), "declared dead too late: {d:?}");
    }
    assert!(b.log_text().contains("-> dead"), "transition not logged");

    // Restore one link: both up again.
    rig.a.link("lan0", true);
    assert!(wait_peer(&a, "up", Duration::from_secs(3)).is_some());
    assert!(wait_peer(&b, "up", Duration::from_secs(3)).is_some());
}

/// A third daemon with the wrong key, or another cluster's name, is never seen. They run
/// in beta's namespace, one after the other: datagrams from any other address than the
/// peer's never reach the packet parser (tests/udp_hardening.rs), and the port is not shared.
#[test]
fn intruders_are_counted_bad_and_never_seen() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config_links("ucast lan0 192.0.2.2", TIMING, "");
    let mut a = rig.node("alpha", &cfg);
    a.start();

    // Intruder 1: right cluster name, wrong key, pretending to be beta (from beta's address).
    let dir = TempDir::new("intruder");
    let key = dir.path().join("key");
    run(&[tandem(), "keygen", key.to_str().unwrap()]);
    let mut bad_before = 0;
    for (i, cluster) in [format!("rig{}", rig.id), "othercluster".to_string()].iter().enumerate() {
        let k = if i == 0 { key.clone() } else { rig.dir.path().join("authkey") };
        let conf = dir.path().join(format!("i{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "cluster {cluster}\nnode alpha beta\nauthkey {}\n{TIMING}\nrealtime off\nucast lan0 192.0.2.1\nlogfile -\nlogfacility none\n",
                k.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", rig.b.name(), tandem(), "daemon", "--foreground", "-c"])
            .arg(&conf)
            .args(["--node", "beta", "--socket"])
            .arg(dir.path().join(format!("i{i}.sock")))
            .arg("--state-dir")
            .arg(dir.path().join(format!("st{i}")))
            .arg("--pidfile")
            .arg(dir.path().join(format!("i{i}.pid")))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let intruder = KillOnDrop(child);
        std::thread::sleep(Duration::from_millis(1500));
        drop(intruder);
        let s = a.status().unwrap();
        assert_ne!(s["peers"][0]["state"], "up", "intruder {i} was accepted: {s}");
        let bad = s["peers"][0]["links"][0]["bad"].as_u64().unwrap();
        let rx = s["peers"][0]["links"][0]["rx"].as_u64().unwrap();
        assert!(bad >= bad_before + 10, "intruder {i}'s packets not counted as bad: {s}");
        assert_eq!(rx, 0, "intruder packets accepted: {s}");
        bad_before = bad;
    }
}

/// A packet captured (here: built with the real key) and replayed later is rejected.
#[test]
fn replayed_packet_is_dropped() {
    if !require(&["ip", "socat"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config_links("ucast lan0 192.0.2.2", "keepalive 1s\ndeadtime 30s\ninitdead 60s", "");
    let mut a = rig.node("alpha", &cfg);
    a.start();
    let key = tandem::config::read_key(&rig.dir.path().join("authkey")).unwrap();
    let mut codec = tandem::wire::auth::Codec::new(&key, &format!("rig{}", rig.id), 1, 0, 7);
    let mut repr = tandem::wire::Repr {
        cluster_id: 0,
        sender: 0,
        generation: 0,
        seq: 0,
        kind: tandem::wire::MsgKind::Heartbeat,
        node_state: tandem::wire::NodeState::Init,
        keepalive_ms: 1000,
        n_groups: 0,
        groups: [tandem::wire::GroupWire::EMPTY; tandem::wire::MAX_GROUPS],
        payload_len: 0,
        payload: [0; tandem::wire::MAX_PAYLOAD],
    };
    let mut buf = [0u8; 1024];
    let n = codec.encode(&mut repr, &mut buf).unwrap();
    let pkt = buf[..n].to_vec();
    let send = |bytes: &[u8]| {
        let mut c = std::process::Command::new("ip")
            .args(["netns", "exec", rig.b.name(), "socat", "-u", "STDIN", "UDP-SENDTO:192.0.2.1:694"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(bytes).unwrap();
        assert!(c.wait().unwrap().success());
    };
    send(&pkt);
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(10), || a.peer_state() == "up"),
        "the genuine packet was not accepted"
    );
    std::thread::sleep(Duration::from_millis(300));
    send(&pkt);
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(10), || a.status().unwrap()["peers"][0]["links"][0]
            ["dropped"]
            .as_u64()
            == Some(1)),
        "replay not counted: {}",
        a.status().unwrap()
    );
    assert_eq!(a.status().unwrap()["peers"][0]["links"][0]["rx"].as_u64(), Some(1), "replay accepted");
}
