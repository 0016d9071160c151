//! Failover end to end: real daemons, a real TCP service on the floating address, a real
//! client, in network namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";

fn neigh_mac(rig: &Rig) -> String {
    let o = run(&["ip", "-n", rig.c.name(), "neigh", "show", FLOAT]);
    let s = stdout(&o);
    let mut it = s.split_whitespace();
    while let Some(w) = it.next() {
        if w == "lladdr" {
            return it.next().unwrap_or("").to_string();
        }
    }
    String::new()
}

/// Starts alpha and beta with `extra` config lines and waits until alpha serves.
fn up(rig: &Rig, timing: &str, extra: &str) -> (Node, Node) {
    let cfg = rig.config(timing, extra);
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    (a, b)
}

#[test]
fn preferred_holds_then_survivor_takes_over_and_announces() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let (a, b) = up(&rig, TIMING, &rig.web_group("alpha"));
    assert!(
        wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)),
        "alpha never started web: {:?}",
        a.status()
    );
    assert!(rig.a.has_addr(FLOAT) && !rig.b.has_addr(FLOAT));
    assert_eq!(rig.ask().as_deref(), Some(rig.a.name()), "client not served by alpha");
    let mac_a = rig.a.mac("lan0");
    let mac_b = rig.b.mac("lan0");
    assert_eq!(neigh_mac(&rig), mac_a, "client's neighbour entry is not alpha's MAC");
    run(&["ip", "netns", "exec", rig.c.name(), "sysctl", "-qw", "net.ipv4.conf.lan0.arp_accept=1"]);

    // alpha dies: links down, then every process in it killed.
    let t0 = Instant::now();
    rig.a.link("lan0", false);
    rig.a.link("hb0", false);
    rig.a.kill_all();
    drop(a);
    assert!(
        wait_for(Duration::from_millis(2500), Duration::from_millis(5), || rig.b.has_addr(FLOAT)),
        "beta never added the address"
    );
    let t_ip = t0.elapsed();
    // The client's cached entry flips to beta's MAC because of our gratuitous ARP (its own
    // re-resolution would wait delay_first_probe_time, 5 s).
    assert!(
        wait_for(Duration::from_millis(1000), Duration::from_millis(5), || neigh_mac(&rig) == mac_b),
        "client's neighbour entry still {} (beta is {mac_b})",
        neigh_mac(&rig)
    );
    assert!(wait_for(Duration::from_secs(3), Duration::from_millis(20), || rig.ask().as_deref() == Some(rig.b.name())));
    let served = t0.elapsed();
    eprintln!("address up on beta after {t_ip:?}, client served after {served:?}");
    assert!(served < Duration::from_millis(500 + 2000), "takeover too slow: {served:?}");
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(1)));
}

#[test]
fn standby_and_takeover_move_the_group_never_held_twice() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let (a, b) = up(&rig, TIMING, &rig.web_group("alpha"));
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)));
    let sampler = Sampler::start(rig.a.name(), rig.b.name(), FLOAT, Duration::from_millis(2));
    for (who, cmd, owner, ns) in [
        (&a, "standby", "beta", rig.b.name()),
        (&a, "takeover", "alpha", rig.a.name()),
        (&b, "takeover", "beta", rig.b.name()),
        (&b, "standby", "alpha", rig.a.name()),
    ] {
        let t = Instant::now();
        let (code, out) = who.ctl(&[cmd, "web"]);
        assert_eq!(code, 0, "{cmd}: {out}");
        assert!(
            wait_group(&a, "web", owner, "started", Duration::from_secs(10)),
            "{cmd} on {}: group not started on {owner}: {:?}",
            who.name,
            a.status()
        );
        assert!(
            wait_for(Duration::from_secs(3), Duration::from_millis(10), || rig.ask().as_deref() == Some(ns)),
            "client not served by {owner}"
        );
        eprintln!("{cmd} on {}: served by {owner} after {:?}", who.name, t.elapsed());
    }
    let s = sampler.finish();
    eprintln!("sampler: {s:?}");
    assert!(s.samples > 50, "too few samples: {s:?}");
    // Each move is seen as one or two changes (a gap shorter than a sample may be missed).
    assert!(s.changes >= 4 && s.a > 0 && s.b > 0, "the address did not move four times: {s:?}");
    assert_eq!(s.both, 0, "the address was on both nodes at once: {s:?}");
}

fn failback(on: bool) {
    let rig = Rig::new();
    let timing = format!("{TIMING}\nauto_failback {}", if on { "on" } else { "off" });
    let cfg = rig.config(&timing, &rig.web_group("alpha"));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)));
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(10)), Some(0), "alpha did not exit cleanly");
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)));
    a.start();
    assert!(wait_for(Duration::from_secs(10), Duration::from_millis(20), || a.peer_state() == "up"));
    if on {
        assert!(
            wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)),
            "group did not fail back: {:?}",
            a.status()
        );
        assert!(
            wait_for(Duration::from_secs(3), Duration::from_millis(20), || rig.ask().as_deref() == Some(rig.a.name()))
        );
    } else {
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            wait_group(&a, "web", "beta", "started", Duration::from_secs(1)),
            "group moved back with auto_failback off: {:?}",
            a.status()
        );
        assert_eq!(rig.ask().as_deref(), Some(rig.b.name()));
    }
}

#[test]
fn auto_failback_on_returns_the_group() {
    if require(&["ip", "socat", "ss"]) {
        failback(true);
    }
}

#[test]
fn auto_failback_off_leaves_the_group() {
    if require(&["ip", "socat", "ss"]) {
        failback(false);
    }
}

#[test]
fn failing_start_leaves_nothing_and_the_peer_runs_the_group() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let svc = repo().join("tests/tools/svc");
    let run_dir = rig.dir.path().join("run");
    // Fails to start on alpha only (by network namespace), after the address was added.
    let s = script(
        rig.dir.path(),
        "flaky",
        &format!(
            "[ \"$(ip netns identify $$)\" = \"{}\" ] && [ \"$1\" = start ] && {{ echo 'simulated failure'; exit 1; }}\n\
             exec {} {FLOAT} {PORT} - {} \"$1\"",
            rig.a.name(),
            svc.display(),
            run_dir.display()
        ),
    );
    let (a, b) = up(&rig, TIMING, &format!("group web alpha ip::{FLOAT}/24/lan0 script::{}", s.display()));
    assert!(
        wait_group(&b, "web", "beta", "started", Duration::from_secs(10)),
        "beta never ran the group: {:?}",
        b.status()
    );
    let g = a.group("web").unwrap();
    assert_eq!(g["failed_here"], true, "alpha does not show the failure: {g}");
    assert!(!rig.a.has_addr(FLOAT), "alpha kept the address after a failed start");
    assert_eq!(rig.ask().as_deref(), Some(rig.b.name()));
    assert!(a.log_text().contains("simulated failure"), "script output not logged");
    // A takeover on alpha clears the mark and (the script still failing there) the group stays served.
    let (_, text) = a.ctl(&["status"]);
    assert!(text.contains("failed here"), "{text}");
}

#[test]
fn kill9_and_restart_never_holds_twice() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let (mut a, b) = up(&rig, TIMING, &rig.web_group("alpha"));
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)));
    let sampler = Sampler::start(rig.a.name(), rig.b.name(), FLOAT, Duration::from_millis(2));
    a.kill9();
    a.start();
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || rig.ask().is_some()),
        "service never came back"
    );
    std::thread::sleep(Duration::from_secs(1));
    let s = sampler.finish();
    eprintln!("sampler: {s:?}");
    assert_eq!(s.both, 0, "the address was on both nodes at once: {s:?}");
    let owner = a.group("web").unwrap()["owner"].clone();
    assert!(owner == "alpha" || owner == "beta", "nobody holds web: {owner}");
    assert!(wait_group(&b, "web", owner.as_str().unwrap(), "started", Duration::from_secs(3)));
}

#[test]
fn sigterm_hands_over_faster_than_deadtime() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let timing = "keepalive 200ms\ndeadtime 2s\nwarntime 1s\ninitdead 4s";
    let (mut a, b) = up(&rig, timing, &rig.web_group("alpha"));
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)));
    let t0 = Instant::now();
    a.signal("TERM");
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)));
    let took = t0.elapsed();
    assert!(wait_for(Duration::from_secs(2), Duration::from_millis(10), || rig.ask().as_deref() == Some(rig.b.name())));
    eprintln!("planned hand-over on SIGTERM: beta started after {took:?} (deadtime 2s)");
    assert!(took < Duration::from_secs(2), "hand-over on SIGTERM took {took:?}, not faster than deadtime");
    assert_eq!(a.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(!rig.a.has_addr(FLOAT), "alpha left the address behind");
}

#[test]
fn slow_start_script_does_not_delay_heartbeats() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let marker = rig.dir.path().join("slow-started");
    let s = script(
        rig.dir.path(),
        "slow",
        &format!(
            "case \"$1\" in start) sleep 5; touch {m};; stop) rm -f {m};; status) [ -e {m} ] && exit 0; exit 3;; esac",
            m = marker.display()
        ),
    );
    let (a, b) = up(&rig, TIMING, &format!("group slow alpha script::{}", s.display()));
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(10), || a
        .group("slow")
        .is_some_and(|g| g["state"] == "starting")));
    let t = Instant::now();
    let mut worst = 0;
    while t.elapsed() < Duration::from_secs(4) {
        if let Some(st) = b.status() {
            worst = worst.max(st["peers"][0]["last_seen_ms"].as_u64().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(wait_group(&a, "slow", "alpha", "started", Duration::from_secs(5)));
    eprintln!("worst silence seen by beta during alpha's 5 s start: {worst} ms (keepalive 100ms)");
    assert!(worst <= 200, "a keepalive was missed during a slow start: {worst} ms");
    assert!(!b.log_text().contains("is late"), "beta logged alpha as late");
}

#[test]
fn bad_resources_fail_the_group_not_the_daemon() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    // svc1 exists on beta only: alpha's start fails (no such interface), beta takes the group.
    run(&["ip", "-n", rig.b.name(), "link", "add", "svc1", "type", "veth", "peer", "name", "svc1p"]);
    rig.b.link("svc1", true);
    rig.b.link("svc1p", true);
    let hang = script(
        rig.dir.path(),
        "hang",
        &format!("[ \"$(ip netns identify $$)\" = \"{}\" ] && [ \"$1\" = start ] && exec sleep 600\ncase \"$1\" in status) exit 3;; esac; exit 0", rig.a.name()),
    );
    let noexec = rig.dir.path().join("noexec");
    std::fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    let extra = format!(
        "start_timeout 2s\ngroup iface alpha ip::203.0.113.7/24/svc1\ngroup hang alpha script::{}\ngroup noexec alpha script::{}",
        hang.display(),
        noexec.display()
    );
    let (a, b) = up(&rig, TIMING, &extra);
    assert!(wait_group(&b, "iface", "beta", "started", Duration::from_secs(10)), "{:?}", b.status());
    assert!(wait_group(&b, "hang", "beta", "started", Duration::from_secs(10)), "{:?}", b.status());
    for g in ["iface", "hang", "noexec"] {
        assert!(
            wait_for(Duration::from_secs(5), Duration::from_millis(20), || a
                .group(g)
                .is_some_and(|v| v["failed_here"] == true)),
            "group {g} not failed on alpha: {:?}",
            a.group(g)
        );
    }
    let log = a.log_text();
    assert!(log.contains("svc1"), "no clear error naming the interface:\n{log}");
    assert!(log.contains("timed out"), "no clear timeout error:\n{log}");
    assert!(log.contains("not executable") || log.contains("noexec"), "no clear error for the script:\n{log}");
    assert!(a.status().is_some(), "alpha's daemon stopped");
}
