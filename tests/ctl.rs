//! The control socket is mode 0600 and serves uid 0 only (SO_PEERCRED); `status --json`
//! has the shape the interface specifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

#[test]
fn control_socket_is_root_only_and_status_json_has_the_interface_shape() {
    if !require(&["ip", "setpriv", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config("keepalive 100ms\ndeadtime 500ms\ninitdead 1s", &rig.web_group("alpha"));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)));

    let mode = std::fs::metadata(&a.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket mode {mode:o}");

    // A non-root user cannot connect through the file mode...
    let nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", tandem()])
            .args(args)
            .arg("-s")
            .arg(&a.sock)
            .output()
            .unwrap()
    };
    let o = nobody(&["status"]);
    assert_ne!(o.status.code(), Some(0), "nobody got a status: {o:?}");
    // ...and, with the mode opened up, is refused by SO_PEERCRED.
    let dir = a.sock.parent().unwrap().to_path_buf();
    let old_dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in dir.ancestors().skip(1).take(2) {
        let m = std::fs::metadata(p).unwrap().permissions().mode();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m | 0o011)).unwrap();
    }
    std::fs::set_permissions(&a.sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = nobody(&["standby", "web"]);
    std::fs::set_permissions(&a.sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(old_dir_mode)).unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(err.contains("only root"), "{err}");
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(1)), "a refused standby moved the group");

    // status --json: the shape the interface specifies.
    let s = a.status().unwrap();
    assert_eq!(s["node"], "alpha");
    assert_eq!(s["state"], "active");
    let p = &s["peers"][0];
    assert_eq!(p["name"], "beta");
    assert_eq!(p["state"], "up");
    let l = &p["links"][0];
    assert!(l["name"].as_str().unwrap().starts_with("ucast lan0 192.0.2.2"), "{l}");
    assert_eq!(l["up"], true);
    assert!(l["last_seen_ms"].as_u64().unwrap() < 1000, "{l}");
    let g = &s["groups"][0];
    assert_eq!(g["name"], "web");
    assert_eq!(g["preferred"], "alpha");
    assert_eq!(g["owner"], "alpha");
    assert_eq!(g["state"], "started");
    let gb = b.group("web").unwrap();
    assert_eq!(gb["owner"], "alpha", "beta's view: {gb}");
    assert_eq!(gb["state"], "started", "beta's view: {gb}");

    // Plain status for humans, and an unknown group.
    let (code, text) = a.ctl(&["status"]);
    assert_eq!(code, 0);
    assert!(text.contains("peer beta: up") && text.contains("group web (preferred alpha): started on alpha"), "{text}");
    let (code, text) = a.ctl(&["standby", "nosuchgroup"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no group named"), "{text}");

    // status with no daemon: 3.
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(10)), Some(0));
    let (code, _) = a.ctl(&["status"]);
    assert_eq!(code, 3);
    assert!(!a.sock.exists(), "socket left behind after a clean exit");
    assert!(!a.dir.join("pid").exists(), "pidfile left behind after a clean exit");
}

/// A burst of local connections (here: 8, then 12, idle ones held open) must not make
/// DRBD's fence-peer handler get "busy": slots are kept for `outdate`.
#[test]
fn fence_peer_is_answered_while_idle_connections_fill_the_slots() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config("keepalive 100ms\ndeadtime 500ms\ninitdead 1s", "");
    let mut a = rig.node("alpha", &cfg);
    a.start();
    let mut idle: Vec<std::os::unix::net::UnixStream> =
        (0..8).map(|_| std::os::unix::net::UnixStream::connect(&a.sock).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    // Every general slot is taken: other requests are busy...
    let (code, out) = a.ctl(&["status"]);
    assert!(code == 1 && out.contains("busy"), "status with 8 idle connections: {code} {out}");
    // ...but fence-peer is answered (the peer is not up: 5, "peer unreachable").
    let (code, out) = a.ctl(&["fence-peer", "r0"]);
    assert!(!out.contains("busy"), "{out}");
    assert_eq!(code, 5, "{out}");
    // Idle connections sitting in every kept slot do not keep them: once silent for half a
    // second, the longest-silent one gives its slot to a new connection.
    for _ in 0..tandem::ctl::server::OUTDATE_SLOTS {
        idle.push(std::os::unix::net::UnixStream::connect(&a.sock).unwrap());
    }
    std::thread::sleep(Duration::from_millis(700));
    let (code, out) = a.ctl(&["fence-peer", "r0"]);
    assert!(!out.contains("busy") && code == 5, "{code} {out}");
    drop(idle);
    assert!(wait_for(Duration::from_secs(2), Duration::from_millis(20), || a.ctl(&["status"]).0 == 0));
}

/// DRBD calls its fence-peer handler once per resource, all at once when the replication
/// link drops. While a burst of other clients holds every general slot, each of those
/// concurrent handlers still gets a slot of its own: none is "busy", none is cut off.
#[test]
fn concurrent_fence_peers_are_answered_while_the_general_slots_are_full() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    // The peer is started late: the requests wait for it (Init), holding their slots.
    let cfg = rig.config("keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 10s", "");
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    assert_eq!(a.peer_state(), "init");
    let idle: Vec<std::os::unix::net::UnixStream> =
        (0..8).map(|_| std::os::unix::net::UnixStream::connect(&a.sock).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let asks: Vec<std::process::Child> = ["r0", "r1", "r2"]
        .iter()
        .map(|r| {
            Command::new(tandem())
                .args(["fence-peer", "-s"])
                .arg(&a.sock)
                .arg(r)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    b.start();
    for (r, c) in ["r0", "r1", "r2"].iter().zip(asks) {
        let o = c.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!text.contains("busy"), "{r}: {text}");
        // Answered by the live peer (no DRBD on this machine: 1, not outdated).
        assert_eq!(o.status.code(), Some(1), "{r}: {text}");
        assert!(text.contains(&format!("peer answered 1 for {r}")), "{r}: {text}");
    }
    drop(idle);
}
