//! Ping targets end to end: real daemons sending ICMP echoes on raw sockets to targets in a
//! namespace on the client LAN (tests/common/targets.rs), the connectivity policy moving the
//! group when the holder loses its uplink, hysteresis under a lossy target, and a partition
//! won by the node that reaches its targets (fencing through an ipmi_sim BMC).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::targets::{add_v6, nft, nft_counters, node_v6, PingTargets};
use common::*;
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";
const T1: &str = "192.0.2.254";
const T2: &str = "192.0.2.253";
const T6: &str = "2001:db8:5::fe";

fn ping_lines(targets: &[&str], interval_ms: u64, deadtime_ms: u64, hold_ms: u64) -> String {
    format!(
        "ping {}\nping_interval {interval_ms}ms\nping_deadtime {deadtime_ms}ms\nping_hold {hold_ms}ms",
        targets.join(" ")
    )
}

/// The `ping` object of a node's status.
fn ping_of(n: &Node) -> Option<serde_json::Value> {
    n.status().map(|s| s["ping"].clone())
}

/// The status entry of target `addr`.
fn target_of(n: &Node, addr: &str) -> Option<serde_json::Value> {
    ping_of(n)?["targets"].as_array()?.iter().find(|t| t["addr"] == addr).cloned()
}

#[test]
fn echoes_on_raw_sockets_ipv4_and_ipv6_targets_up_then_down_after_ping_deadtime() {
    if !require(&["ip", "nft"]) {
        return;
    }
    let rig = Rig::new();
    let tg = PingTargets::on(&rig, &[T1, T2], &[T6]);
    for n in ["alpha", "beta"] {
        add_v6(rig.ns(n).name(), "lan0", node_v6(n));
    }
    let cfg = rig.config(TIMING, &ping_lines(&[T1, T2, T6], 100, 500, 1000));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    let all_up = |n: &Node| ping_of(n).is_some_and(|p| p["count"] == 3 && p["known"] == true && p["peer_count"] == 3);
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || all_up(&a) && all_up(&b)),
        "targets not all up on both nodes: alpha {:?} beta {:?}",
        ping_of(&a),
        ping_of(&b)
    );
    let p = ping_of(&a).unwrap();
    eprintln!("alpha: {p}");
    assert_eq!(p["total"], 3);
    assert_eq!(p["reach"], "reaching");
    assert_eq!(p["fewer_than_peer"], false);
    for t in p["targets"].as_array().unwrap() {
        assert_eq!(t["up"], true, "{t}");
        let rtt = t["rtt_us"].as_u64().unwrap_or_else(|| panic!("no rtt: {t}"));
        assert!(rtt < 100_000, "rtt {rtt} us: {t}");
        assert!(t["last_reply_ms"].as_u64().unwrap() <= 500, "{t}");
    }
    let text = a.ctl(&["status"]).1;
    assert!(text.contains("ping: 3 of 3 targets answer"), "{text}");
    assert!(text.contains(&format!("target {T6}: up")), "{text}");

    // T1 (IPv4) and then T6 (IPv6) stop answering: each goes down after ping_deadtime.
    for addr in [T1, T6] {
        let t0 = Instant::now();
        tg.answer(addr, false);
        assert!(
            wait_for(Duration::from_secs(3), Duration::from_millis(10), || target_of(&a, addr)
                .is_some_and(|t| t["up"] == false)),
            "{addr} still up: {:?}",
            target_of(&a, addr)
        );
        let took = t0.elapsed();
        eprintln!("{addr} down after {took:?} (ping_deadtime 500 ms, interval 100 ms)");
        assert!(took >= Duration::from_millis(390) && took <= Duration::from_millis(900), "{addr}: {took:?}");
    }
    assert!(wait_for(Duration::from_secs(2), Duration::from_millis(20), || ping_of(&b)
        .is_some_and(|p| p["count"] == 1 && p["peer_count"] == 1)));
    // Both back.
    tg.answer(T1, true);
    tg.answer(T6, true);
    assert!(
        wait_for(Duration::from_secs(3), Duration::from_millis(20), || all_up(&a) && all_up(&b)),
        "targets not back: {:?}",
        ping_of(&a)
    );
    assert_eq!(a.peer_state(), "up");
}

/// The client's longest gap between two answers in a probe log (ms), and the servers seen.
fn outage(log: &std::path::Path) -> (f64, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut last: Option<u64> = None;
    let mut gap = 0u64;
    let mut servers: Vec<String> = Vec::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let mut w = l.split_whitespace();
        let (Some(t), Some("ok"), Some(who)) = (w.next().and_then(|t| t.parse::<u64>().ok()), w.next(), w.next())
        else {
            continue;
        };
        if let Some(p) = last {
            gap = gap.max(t - p);
        }
        last = Some(t);
        if servers.last().map(String::as_str) != Some(who) {
            servers.push(who.to_string());
        }
    }
    (gap as f64 / 1000.0, servers)
}

/// A client probing the service every 10 ms until dropped (then its log is complete).
struct Probe {
    child: Option<std::process::Child>,
    stop: std::path::PathBuf,
    pub log: std::path::PathBuf,
}

impl Probe {
    fn start(rig: &Rig, tag: &str) -> Probe {
        let log = rig.dir.path().join(format!("probe-{tag}.log"));
        let stop = rig.dir.path().join(format!("probe-{tag}.stop"));
        let child = rig.probe(&log, 120_000, &stop);
        let p = Probe { child: Some(child), stop, log };
        assert!(
            wait_for(Duration::from_secs(5), Duration::from_millis(20), || outage(&p.log).1.len() == 1),
            "the client gets no answer"
        );
        p
    }

    /// Stops the client; returns (longest gap in ms, the servers in order).
    fn finish(mut self) -> (f64, Vec<String>) {
        self.end();
        outage(&self.log)
    }

    fn end(&mut self) {
        if let Some(mut c) = self.child.take() {
            std::fs::write(&self.stop, "").unwrap();
            if !wait_for(Duration::from_secs(3), Duration::from_millis(10), || c.try_wait().ok().flatten().is_some()) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.end();
    }
}

/// Polls both nodes' view of each other every 20 ms from a thread until dropped; counts
/// samples where either did not see its peer up.
struct PeerWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<(u32, u32)>>,
}

impl PeerWatch {
    fn start(socks: [std::path::PathBuf; 2]) -> PeerWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut samples, mut not_up) = (0u32, 0u32);
            let end = Instant::now() + Duration::from_secs(120);
            while !st.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < end {
                for s in &socks {
                    let o = std::process::Command::new(tandem()).args(["status", "--json", "-s"]).arg(s).output();
                    let up = o
                        .ok()
                        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
                        .is_some_and(|v| v["peers"][0]["state"] == "up");
                    samples += 1;
                    not_up += u32::from(!up);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (samples, not_up)
        });
        PeerWatch { stop, handle: Some(handle) }
    }

    fn finish(mut self) -> (u32, u32) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for PeerWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Starts alpha and beta on `cfg` and waits until alpha serves `web` and both know their
/// targets.
fn up_serving(rig: &Rig, cfg: &std::path::Path, targets: u64) -> (Node, Node) {
    let mut a = rig.node("alpha", cfg);
    let mut b = rig.node("beta", cfg);
    a.start();
    b.start();
    assert!(
        wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)),
        "alpha never started web: {:?}",
        a.status()
    );
    let ready = |n: &Node| ping_of(n).is_some_and(|p| p["count"] == targets && p["peer_count"] == targets);
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || ready(&a) && ready(&b)),
        "targets: alpha {:?} beta {:?}",
        ping_of(&a),
        ping_of(&b)
    );
    (a, b)
}

/// Case 1: the holder's client-side link (lan0) goes down, the heartbeat link hb0 stays.
/// The group moves to the peer by the orderly hand-over, within ping_deadtime + ping_hold
/// plus the hand-over, and nobody is declared dead. Returns the time from the cut until
/// beta serves, and the client's outage.
fn uplink_loss_moves_the_group(hold_ms: u64) -> (Duration, f64) {
    let rig = Rig::new();
    let _tg = PingTargets::on(&rig, &[T1, T2], &[]);
    let extra = format!("{}\n{}", ping_lines(&[T1, T2], 100, 500, hold_ms), rig.web_group("alpha"));
    let cfg = rig.config(TIMING, &extra);
    let (a, b) = up_serving(&rig, &cfg, 2);
    let probe = Probe::start(&rig, "uplink");
    let watch = PeerWatch::start([a.sock.clone(), b.sock.clone()]);
    let sampler = Sampler::start(rig.a.name(), rig.b.name(), FLOAT, Duration::from_millis(10));
    let t0 = Instant::now();
    rig.a.link("lan0", false);
    assert!(
        wait_group(&b, "web", "beta", "started", Duration::from_secs(10)),
        "web never moved to beta: alpha {:?}\nbeta {:?}",
        a.status(),
        b.status()
    );
    let moved = t0.elapsed();
    assert!(
        wait_for(Duration::from_secs(3), Duration::from_millis(10), || rig.ask().as_deref() == Some(rig.b.name())),
        "the client is not served by beta"
    );
    let served = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let (gap, servers) = probe.finish();
    let (samples, not_up) = watch.finish();
    let s = sampler.finish();
    let pa = ping_of(&a).unwrap();
    eprintln!(
        "ping_hold {hold_ms} ms: group started on beta {moved:?} after alpha's lan0 went down, client served after \
         {served:?}; client outage {gap:.1} ms; servers {servers:?}; alpha {pa}"
    );
    assert_eq!(servers, [rig.a.name(), rig.b.name()], "the client saw other servers");
    assert_eq!(pa["fewer_than_peer"], true, "{pa}");
    assert_eq!((pa["count"].as_u64(), pa["peer_count"].as_u64()), (Some(0), Some(2)), "{pa}");
    assert!(samples > 20 && not_up == 0, "a node did not see its peer up in {not_up} of {samples} samples");
    for n in [&a, &b] {
        let log = n.log_text();
        assert!(!log.contains("-> dead"), "{}: a death was declared:\n{log}", n.name);
        assert!(!log.contains("fencing alpha") && !log.contains("fencing beta"), "{}: fencing:\n{log}", n.name);
    }
    assert!(a.log_text().contains("reaches fewer ping targets than beta"), "{}", a.log_text());
    assert_eq!(s.both, 0, "the address on both nodes: {s:?}");
    // alpha's uplink is back: after ping_hold it counts as equal again, keeps nothing
    // (auto_failback off), and takes the group back when beta loses its own uplink.
    rig.a.link("lan0", true);
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || ping_of(&a)
            .is_some_and(|p| p["count"] == 2 && p["fewer_than_peer"] == false)),
        "alpha not equal again: {:?}",
        ping_of(&a)
    );
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_millis(10)));
    rig.b.link("lan0", false);
    assert!(
        wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)),
        "web never came back to alpha: alpha {:?}\nbeta {:?}",
        a.status(),
        b.status()
    );
    for n in [&a, &b] {
        assert!(!n.log_text().contains("-> dead"), "{}: a death was declared:\n{}", n.name, n.log_text());
    }
    (moved, gap)
}

/// What the bounds allow for the hand-over and the test's own sampling on a loaded 2-CPU
/// machine (the times themselves are measured by `make bench PHASE=ping`).
const HANDOVER_SLACK: Duration = Duration::from_millis(2000);

#[test]
fn holder_loses_its_uplink_group_moves_without_a_death() {
    if !require(&["ip", "nft", "socat", "ss"]) {
        return;
    }
    let (moved, gap) = uplink_loss_moves_the_group(1000);
    // Down after ping_deadtime (500 ms: the last answer came at most one interval before
    // the cut), fewer for ping_hold (1 s), then the hand-over (stop on alpha, start on beta).
    assert!(moved >= Duration::from_millis(1300), "moved before ping_deadtime + ping_hold: {moved:?}");
    assert!(moved <= Duration::from_millis(1500) + HANDOVER_SLACK, "moved too late: {moved:?}");
    assert!(gap < 1500.0 + 1200.0, "client outage {gap} ms");
}

#[test]
fn ping_hold_0_moves_at_once() {
    if !require(&["ip", "nft", "socat", "ss"]) {
        return;
    }
    let (moved, gap) = uplink_loss_moves_the_group(0);
    assert!(moved >= Duration::from_millis(350), "moved before the targets were down: {moved:?}");
    assert!(moved <= Duration::from_millis(500) + HANDOVER_SLACK, "ping_hold 0 moved late: {moved:?}");
    assert!(gap < 500.0 + 1200.0, "client outage {gap} ms");
}

/// How long the lossy target runs in each half of case 2 (`PING_LOSS_S`, default 60 s).
fn loss_duration() -> Duration {
    Duration::from_secs(std::env::var("PING_LOSS_S").ok().and_then(|v| v.parse().ok()).unwrap_or(60))
}

/// What a lossy run saw.
#[derive(Debug)]
struct LossRun {
    /// The longest time without a reply from the lossy target, sampled from alpha's status.
    worst_gap_ms: u64,
    /// Samples (every ~50 ms) in which alpha counted the target down, and in which it
    /// counted fewer targets than beta.
    down_samples: u32,
    fewer_samples: u32,
    samples: u32,
    /// The group's owners in order (as beta reports them).
    owners: Vec<String>,
    /// Echo replies from the target that reached alpha's firewall, and those it dropped.
    replies: u64,
    dropped: u64,
    both: u64,
}

/// Case 2: on alpha only (the holder), 30 % of the echo replies of target T1 are dropped
/// for `loss_duration()`; T2 answers normally, and beta sees both. ping_interval 100 ms,
/// ping_deadtime 300 ms (so T1 does go down now and then), `hold_ms` as given.
fn lossy_target(hold_ms: u64, extra: &str) -> LossRun {
    let rig = Rig::new();
    let _tg = PingTargets::on(&rig, &[T1, T2], &[]);
    let cfg_extra = format!("{}\n{extra}\n{}", ping_lines(&[T1, T2], 100, 300, hold_ms), rig.web_group("alpha"));
    let cfg = rig.config(TIMING, &cfg_extra);
    let (a, b) = up_serving(&rig, &cfg, 2);
    let sampler = Sampler::start(rig.a.name(), rig.b.name(), FLOAT, Duration::from_millis(10));
    nft(
        rig.a.name(),
        &format!(
            "table inet lossy {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n  \
             ip saddr {T1} icmp type echo-reply counter\n  \
             ip saddr {T1} icmp type echo-reply numgen random mod 100 < 30 counter drop\n }}\n}}\n"
        ),
    );
    let mut r = LossRun {
        worst_gap_ms: 0,
        down_samples: 0,
        fewer_samples: 0,
        samples: 0,
        owners: vec!["alpha".into()],
        replies: 0,
        dropped: 0,
        both: 0,
    };
    let end = Instant::now() + loss_duration();
    while Instant::now() < end {
        if let Some(s) = a.status() {
            let p = &s["ping"];
            if let Some(t) = p["targets"].as_array().and_then(|v| v.iter().find(|t| t["addr"] == T1)) {
                r.worst_gap_ms = r.worst_gap_ms.max(t["last_reply_ms"].as_u64().unwrap_or(0));
                r.down_samples += u32::from(t["up"] == false);
            }
            r.fewer_samples += u32::from(p["count"].as_u64() < p["peer_count"].as_u64());
            r.samples += 1;
        }
        if let Some(g) = b.group("web") {
            let owner = g["owner"].as_str().unwrap_or("").to_string();
            if owner != "none" && r.owners.last() != Some(&owner) {
                r.owners.push(owner);
            }
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    let c = nft_counters(rig.a.name(), "inet", "lossy");
    (r.replies, r.dropped) = (c.first().copied().unwrap_or(0), c.get(1).copied().unwrap_or(0));
    r.both = sampler.finish().both;
    eprintln!("ping_hold {hold_ms} ms {extra}: {r:?}");
    assert!(r.replies > 100, "too few replies from {T1}: {r:?}");
    let pct = r.dropped * 100 / r.replies;
    assert!((20..=40).contains(&pct), "dropped {pct} %: {r:?}");
    assert!(r.samples > 100, "{r:?}");
    assert_eq!(r.both, 0, "the address on both nodes: {r:?}");
    // Never a death: both nodes saw each other all along.
    for n in [&a, &b] {
        assert!(!n.log_text().contains("-> dead"), "{}:\n{}", n.name, n.log_text());
    }
    r
}

#[test]
fn lossy_target_with_ping_hold_above_the_worst_gap_moves_nothing() {
    if !require(&["ip", "nft", "socat", "ss"]) {
        return;
    }
    let r = lossy_target(2000, "");
    assert!(r.down_samples > 0, "the target never went down: the test proves nothing: {r:?}");
    assert!(r.worst_gap_ms < 2000, "a gap above ping_hold: {r:?}");
    assert_eq!(r.owners, ["alpha"], "the group moved: {r:?}");
}

#[test]
fn lossy_target_with_ping_hold_below_the_worst_gap_moves_at_most_once() {
    if !require(&["ip", "nft", "socat", "ss"]) {
        return;
    }
    let r = lossy_target(100, "");
    assert!(r.owners.len() <= 2, "ping-pong: {r:?}");
}

/// A node whose daemon is the "machine" of an ipmi_sim BMC (tests/common/bmc.rs): the BMC's
/// power switch runs it in a PID namespace of its own; power off kills that namespace.
fn machine(rig: &Rig, net: &bmc::MgmtNet, name: &str, bmc_addr: &str, cfg: &std::path::Path) -> (Node, bmc::Bmc) {
    let node = rig.node(name, cfg);
    let cmd = format!(
        "exec ip netns exec {ns} {bin} daemon --foreground -c {cfg} --node {name} --socket {sock} --state-dir {state} \
         --pidfile {pid} >>{log} 2>&1",
        ns = rig.ns(name).name(),
        bin = tandem(),
        cfg = cfg.display(),
        sock = node.sock.display(),
        state = node.dir.join("state").display(),
        pid = node.dir.join("pid").display(),
        log = node.log.display(),
    );
    let b = bmc::Bmc::start(net, bmc_addr, "admin", "s3cret", &["sh", "-c", &cmd]);
    let sock = node.sock.clone();
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(10), || sock.exists()),
        "{name}: no control socket; log:\n{}",
        node.log_text()
    );
    (node, b)
}

/// Case 3: every heartbeat link is cut and the holder (alpha) has lost its uplink too. beta
/// still reaches the targets: it wins, powers alpha off through alpha's BMC and takes over.
/// alpha, isolated, stops its group and never fences beta (beta's BMC never powers off).
#[test]
fn partition_the_node_that_reaches_its_targets_fences_the_isolated_holder() {
    if !require(&["ip", "nft", "socat", "ss", "ipmi_sim", "unshare"]) {
        return;
    }
    let rig = Rig::new();
    let _tg = PingTargets::on(&rig, &[T1, T2], &[]);
    let net = bmc::MgmtNet::new();
    net.attach(rig.a.name(), "mgmt0", "203.0.113.1/24");
    net.attach(rig.b.name(), "mgmt0", "203.0.113.2/24");
    let pw = rig.dir.path().join("bmc.pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // fence_delay 6 s: beta (holding nothing, settled) fences half of it, 3 s, after the death,
    // which leaves alpha's isolation (ping_deadtime after the death) in plain view.
    let extra = format!(
        "{}\n{}\nstonith alpha ipmi 203.0.113.11 admin {pw} cipher=3\nstonith beta ipmi 203.0.113.12 admin {pw} \
         cipher=3\nfence_delay 6s\nfence_timeout 10s",
        ping_lines(&[T1, T2], 100, 500, 1000),
        rig.web_group("alpha"),
        pw = pw.display()
    );
    let cfg = rig.config(TIMING, &extra);
    let (a, bmc_a) = machine(&rig, &net, "alpha", "203.0.113.11", &cfg);
    let (b, bmc_b) = machine(&rig, &net, "beta", "203.0.113.12", &cfg);
    assert!(
        wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)),
        "alpha never started web: {:?}\n{}",
        a.status(),
        a.log_text()
    );
    let ready = |n: &Node| ping_of(n).is_some_and(|p| p["count"] == 2 && p["peer_count"] == 2);
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || ready(&a) && ready(&b)));
    assert!(wait_fence_settled(&[&a, &b], Duration::from_secs(5)));
    let probe = Probe::start(&rig, "partition");

    let t0 = Instant::now();
    rig.a.link("lan0", false);
    rig.a.link("hb0", false);
    // Watch alpha until its machine is off: isolated, group stopped, before the power-off.
    let mut isolated_at = None;
    let mut stopped_at = None;
    let end = t0 + Duration::from_secs(15);
    while bmc_a.machine_on() && Instant::now() < end {
        if let Some(s) = a.status() {
            if isolated_at.is_none() && s["ping"]["reach"] == "isolated" && s["peers"][0]["state"] == "dead" {
                isolated_at = Some(t0.elapsed());
            }
            let web = s["groups"].as_array().and_then(|g| g.iter().find(|g| g["name"] == "web")).cloned();
            if stopped_at.is_none() && web.is_some_and(|g| g["state"] == "stopped") {
                stopped_at = Some(t0.elapsed());
                assert!(!rig.a.has_addr(FLOAT), "alpha stopped web but kept its address");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let off_at = t0.elapsed();
    assert!(
        !bmc_a.machine_on(),
        "alpha was never powered off; beta's status: {:?}\nbeta:\n{}",
        b.status(),
        b.log_text()
    );
    assert!(
        wait_group(&b, "web", "beta", "started", Duration::from_secs(10)),
        "beta never took web over: {:?}\n{}",
        b.status(),
        b.log_text()
    );
    let took_over = t0.elapsed();
    assert!(
        wait_for(Duration::from_secs(3), Duration::from_millis(10), || rig.ask().as_deref() == Some(rig.b.name())),
        "the client is not served by beta"
    );
    let (gap, servers) = probe.finish();
    eprintln!(
        "partition: alpha isolated after {isolated_at:?}, its group stopped after {stopped_at:?}, powered off after \
         {off_at:?}; beta serves after {took_over:?}; client outage {gap:.1} ms, servers {servers:?}"
    );
    let alog = a.log_text();
    assert!(alog.contains("no ping target answers"), "no isolation line in alpha's log:\n{alog}");
    assert!(!alog.contains("fencing beta") && !alog.contains("fenced beta"), "alpha fenced beta:\n{alog}");
    let isolated_at = isolated_at.unwrap_or_else(|| panic!("alpha never showed reach isolated:\n{alog}"));
    let stopped_at = stopped_at.unwrap_or_else(|| panic!("alpha never stopped web:\n{alog}"));
    assert!(isolated_at < off_at && stopped_at < off_at, "{isolated_at:?} {stopped_at:?} {off_at:?}");
    // Death after deadtime (~0.5 s), isolation ping_deadtime later, the fence ½ × fence_delay after the death.
    assert!(isolated_at >= Duration::from_millis(850), "isolated too early: {isolated_at:?}");
    assert!(off_at >= Duration::from_millis(3200), "fenced before its delay: {off_at:?}");
    assert!(
        bmc_b.power_log().iter().all(|e| e.on),
        "beta's BMC powered beta off: {:?}\nalpha's log:\n{alog}",
        bmc_b.power_log()
    );
    assert!(bmc_a.power_log().iter().any(|e| !e.on), "{:?}", bmc_a.power_log());
    let blog = b.log_text();
    assert!(blog.contains("fenced alpha"), "{blog}");
}

/// Cuts alpha (the holder) off: heartbeat links and uplink. Returns alpha's status once it is
/// isolated (peer dead, reach isolated) and `settle` has passed.
fn isolate_alpha(rig: &Rig, a: &Node, settle: Duration) -> serde_json::Value {
    let t0 = Instant::now();
    rig.a.link("lan0", false);
    rig.a.link("hb0", false);
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || a
            .status()
            .is_some_and(|s| s["ping"]["reach"] == "isolated" && s["peers"][0]["state"] == "dead")),
        "alpha never isolated: {:?}",
        a.status()
    );
    eprintln!("alpha isolated {:?} after the cut", t0.elapsed());
    std::thread::sleep(settle);
    a.status().unwrap()
}

#[test]
fn isolated_stop_off_keeps_the_groups_on() {
    if !require(&["ip", "nft", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let _tg = PingTargets::on(&rig, &[T1, T2], &[]);
    let extra = format!("{}\nisolated_stop off\n{}", ping_lines(&[T1, T2], 100, 500, 1000), rig.web_group("alpha"));
    let cfg = rig.config(TIMING, &extra);
    let (a, b) = up_serving(&rig, &cfg, 2);
    let s = isolate_alpha(&rig, &a, Duration::from_secs(1));
    let web = a.group("web").unwrap();
    assert_eq!((web["owner"].as_str(), web["state"].as_str()), (Some("alpha"), Some("started")), "{s}");
    assert!(rig.a.has_addr(FLOAT), "alpha dropped the address");
    let log = a.log_text();
    assert!(log.contains("no ping target answers"), "{log}");
    assert!(log.contains("keeps its groups (isolated_stop off)"), "{log}");
    assert!(!log.contains("releasing"), "{log}");
    // Without a stonith line, beta (which reaches the targets) takes over at once.
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)), "{:?}", b.status());
}

#[test]
fn isolated_stop_on_stops_the_groups() {
    if !require(&["ip", "nft", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let _tg = PingTargets::on(&rig, &[T1, T2], &[]);
    let extra = format!("{}\n{}", ping_lines(&[T1, T2], 100, 500, 1000), rig.web_group("alpha"));
    let cfg = rig.config(TIMING, &extra);
    let (a, b) = up_serving(&rig, &cfg, 2);
    isolate_alpha(&rig, &a, Duration::from_millis(300));
    assert!(wait_for(Duration::from_secs(2), Duration::from_millis(20), || !rig.a.has_addr(FLOAT)));
    let web = a.group("web").unwrap();
    assert_eq!(web["state"], "stopped", "{web}");
    let log = a.log_text();
    assert!(log.contains("it stops its groups"), "{log}");
    assert!(log.contains("releasing (the peer is silent and this node reaches no ping target)"), "{log}");
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)), "{:?}", b.status());
}

/// A fresh proof after the peer's death: beta has lost its uplink when alpha (the holder)
/// dies. beta neither takes over nor claims while no target answers (its clients could not
/// reach the group anyway); once its uplink is back and a target answers, it takes over.
#[test]
fn a_survivor_without_uplink_takes_over_only_once_a_target_answers() {
    if !require(&["ip", "nft", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let _tg = PingTargets::on(&rig, &[T1, T2], &[]);
    let extra = format!("{}\n{}", ping_lines(&[T1, T2], 100, 500, 1000), rig.web_group("alpha"));
    let cfg = rig.config(TIMING, &extra);
    let (mut a, b) = up_serving(&rig, &cfg, 2);
    rig.b.link("lan0", false);
    assert!(wait_for(Duration::from_secs(3), Duration::from_millis(20), || ping_of(&b)
        .is_some_and(|p| p["count"] == 0 && p["fewer_than_peer"] == true)));
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_millis(10)), "the non-holder's loss moved web");
    // alpha dies.
    rig.a.link("hb0", false);
    rig.a.link("lan0", false);
    a.kill9();
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || b
            .status()
            .is_some_and(|s| s["peers"][0]["state"] == "dead" && s["ping"]["reach"] == "isolated")),
        "beta not isolated: {:?}",
        b.status()
    );
    std::thread::sleep(Duration::from_secs(1));
    let web = b.group("web").unwrap();
    assert_ne!(web["state"], "started", "beta took over without reaching a target: {web}");
    assert!(!rig.b.has_addr(FLOAT));
    // beta's uplink is back: a fresh answer, then the takeover.
    let t0 = Instant::now();
    rig.b.link("lan0", true);
    assert!(
        wait_group(&b, "web", "beta", "started", Duration::from_secs(5)),
        "beta never took over: {:?}\n{}",
        b.status(),
        b.log_text()
    );
    eprintln!("beta took over {:?} after its uplink came back", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(
        wait_for(Duration::from_secs(3), Duration::from_millis(10), || rig.ask().as_deref() == Some(rig.b.name())),
        "the client is not served by beta"
    );
    assert_eq!(ping_of(&b).unwrap()["reach"], "reaching");
}
