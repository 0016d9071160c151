//! Monitoring and the failure policy end to end: real daemons in the namespace rig, a real
//! TCP service on the floating address, a real client.
//!
//! - a killed service is seen by the holder's monitor within one interval plus
//!   `status_timeout`, and restarted in place with what follows it (in order), on the same
//!   node; the client's outage is measured and printed;
//! - a service that dies at once after every start: past `restart_limit` the group moves to
//!   the peer by the orderly hand-over, this node is marked failed for it, nothing moves
//!   back, and `tandem cleanup` clears the mark;
//! - a service that dies on both nodes: the group ends stopped on both, with
//!   `nowhere-to-run` in the log, and no loop of starts;
//! - `failure_timeout` lifts the mark; the built-in `ip` and `mount` checks detect an address
//!   removed and a file system unmounted by hand, and restore them.
//!
//! - a status check that hangs is killed at `status_timeout` and counts as a failure;
//!
//! Every resource of the test groups but the address is one script (tests/common/svcres.rs)
//! that logs each call: the order of operations is read there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::svcres::SvcRes;
use common::watch::peer_trouble;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";
/// The monitor's interval in these tests, and the status check's deadline.
const INTERVAL_MS: u64 = 200;
const STATUS_TIMEOUT_MS: u64 = 1000;

/// A rig whose group `web` is made of [`SvcRes`] resources.
struct Mon {
    rig: Rig,
    dir: PathBuf,
    res: PathBuf,
    r: SvcRes,
}

impl std::ops::Deref for Mon {
    type Target = SvcRes;
    fn deref(&self) -> &SvcRes {
        &self.r
    }
}

impl Mon {
    fn new() -> Mon {
        let rig = Rig::new();
        let dir = rig.dir.path().to_path_buf();
        let r = SvcRes::new(&dir);
        Mon { rig, dir, res: r.path.clone(), r }
    }

    /// `group web alpha ip::FLOAT script::res::svc script::res::after`, monitored.
    fn web(&self) -> String {
        format!(
            "group web alpha {}\nmonitor {INTERVAL_MS}ms web\nstatus_timeout {STATUS_TIMEOUT_MS}ms\n",
            self.r.resources()
        )
    }

    /// Both daemons, started with `extra`; returns once alpha serves.
    fn up(&self, extra: &str) -> (Node, Node) {
        let cfg = self.rig.config(TIMING, extra);
        // As installed (SCHED_FIFO): the restarts fork many scripts, and on a busy two-CPU
        // machine a loop at normal priority could wait for them past deadtime.
        self.rig.realtime(&cfg);
        let mut a = self.rig.node("alpha", &cfg);
        let mut b = self.rig.node("beta", &cfg);
        a.start();
        b.start();
        assert!(wait_group(&b, "web", "alpha", "started", Duration::from_secs(15)), "{:?}", b.status());
        assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
        (a, b)
    }
}

/// The log lines of `node` that contain `what`.
fn lines(node: &Node, what: &str) -> Vec<String> {
    node.log_text().lines().filter(|l| l.contains(what)).map(String::from).collect()
}

/// A log line's time (`2026-11-29T20:05:20.123456Z tandem[…]: …`), µs since the epoch.
fn log_time_us(line: &str) -> u128 {
    let t = line.split(' ').next().unwrap();
    let (date, time) = t.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap();
    let h: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from the civil date (H. Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2];
    secs as u128 * 1_000_000 + frac.parse::<u128>().unwrap()
}

/// The client's answers in a probe log: (µs since the epoch, answered).
fn probe_log(path: &Path) -> Vec<(u128, bool)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()? == "ok"))
        })
        .collect()
}

/// The longest gap between two answers, and the first answer after `t_us` (µs).
fn outage(samples: &[(u128, bool)], t_us: u128) -> (u128, Option<u128>) {
    let ok: Vec<u128> = samples.iter().filter(|s| s.1).map(|s| s.0).collect();
    let gap = ok.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    // The first answer after the first failure that follows the fault.
    let fail = samples.iter().find(|s| s.0 > t_us && !s.1).map(|s| s.0);
    let first = fail.and_then(|f| ok.iter().copied().find(|&t| t > f));
    (gap, first)
}

/// One series of `status --prometheus` on `node`: `name` with exactly these `{labels}`.
fn metric(node: &Node, name: &str, labels: &str) -> Option<f64> {
    let (_, text) = node.ctl(&["status", "--prometheus"]);
    let series = format!("{name}{labels} ");
    text.lines().find_map(|l| l.strip_prefix(&series)?.parse().ok())
}

fn json_res<'a>(g: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    g["resources"].as_array().unwrap().iter().find(|r| r["resource"].as_str().unwrap().ends_with(kind)).unwrap()
}

#[test]
fn a_killed_service_is_restarted_in_place_with_what_follows_it() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, b) = m.up(&m.web());
    let (na, nb) = (m.rig.a.name().to_string(), m.rig.b.name().to_string());
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || m.rig.ask().as_deref() == Some(na.as_str()))
    );
    // Wait for a few good checks.
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        a.group("web").is_some_and(|g| json_res(&g, "::svc")["last_check_ok"] == true)
    }));
    let sampler = Sampler::start(&na, &nb, FLOAT, Duration::from_millis(5));
    let out = m.dir.join("probe1");
    let stop = m.dir.join("probe1.stop");
    let mut probe = KillOnDrop(m.rig.probe(&out, 20_000, &stop));
    std::thread::sleep(Duration::from_millis(500));

    let pid = m.svc_pid(&na).unwrap();
    let t_kill = unix_us();
    run(&["kill", "-9", &pid.to_string()]);
    let restarted = || {
        m.changes(&na, t_kill).len() >= 4
            && a.group("web").is_some_and(|g| g["state"] == "started" && g["owner"] == "alpha")
    };
    assert!(wait_for(Duration::from_secs(10), Duration::from_millis(20), restarted), "{:?}", a.status());
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || m.rig.ask().as_deref() == Some(na.as_str()))
    );
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&stop, "").unwrap();
    let _ = probe.0.wait();
    let st = sampler.finish();

    // Seen within one interval plus status_timeout: the first failed check after the kill.
    // A check already running at the kill ends (and is stamped) just after it, and may still
    // have found the service: at most that one passes.
    let after: Vec<_> =
        m.ops().into_iter().filter(|o| o.ns == na && o.t_us > t_kill && o.kind == "svc" && o.op == "status").collect();
    let first_bad = after.iter().position(|o| o.rc != 0).expect("a failed status check after the kill");
    assert!(first_bad <= 1, "{after:?}");
    let failed = &after[first_bad];
    assert_eq!(failed.rc, 3, "{failed:?}");
    let seen_ms = (failed.t_us - t_kill) / 1000;
    let log = lines(&a, "monitor: script::");
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].ends_with("::svc is not running"), "{log:?}");
    let logged_ms = (log_time_us(&log[0]).saturating_sub(t_kill)) / 1000;
    assert!(
        logged_ms <= u128::from(INTERVAL_MS + STATUS_TIMEOUT_MS) + 100,
        "seen {logged_ms} ms after the kill (check ended at {seen_ms} ms)"
    );
    // In place, in order: what follows the service stops first, then the service; both
    // start again left to right; the address (before the service) is never touched.
    assert_eq!(m.changes(&na, t_kill), ["after stop", "svc stop", "svc start", "after start"]);
    assert!(m.changes(&nb, t_kill).is_empty(), "beta ran {:?}", m.changes(&nb, t_kill));
    assert!(lines(&a, "group web: stop ip::").is_empty() && lines(&a, "group web: start ip::").len() == 1);
    assert_eq!((st.b, st.changes), (0, 0), "the address moved: {st:?}");
    let restart = lines(&a, "restarting script::");
    assert_eq!(restart.len(), 1, "{restart:?}");
    assert!(restart[0].contains("(restart 1 of 3 within restart_window)"), "{restart:?}");
    let order: Vec<String> = a
        .log_text()
        .lines()
        .filter_map(|l| l.split_once("group web: ").map(|x| x.1.to_string()))
        .skip_while(|l| !l.starts_with("monitor:"))
        // (an operation is logged as it is asked for, just before the state it brings)
        .filter(|l| l.contains("->") || l.starts_with("stop ") || l.starts_with("start "))
        .map(|l| l.replace(&m.res.display().to_string(), "res"))
        .collect();
    assert_eq!(
        order,
        [
            "stop script::res::after",
            "started -> stopping",
            "stop script::res::svc",
            "start script::res::svc",
            "stopping -> starting",
            "start script::res::after",
            "starting -> started"
        ],
        "{}",
        a.log_text()
    );

    // Status: the failure is counted and told; the group is not failed here.
    let g = a.group("web").unwrap();
    assert_eq!((g["restarts"].as_u64(), g["failed_here"].as_bool()), (Some(1), Some(false)), "{g}");
    let svc = json_res(&g, "::svc");
    assert_eq!(svc["fail_count"], 1, "{svc}");
    assert_eq!(svc["monitor_ms"], INTERVAL_MS, "{svc}");
    assert_eq!(svc["last_failure"], "not running", "{svc}");
    assert!(svc["last_failure_ms"].as_u64().is_some(), "{svc}");
    assert_eq!(json_res(&g, "::after")["fail_count"], 0);
    let (_, text) = a.ctl(&["status"]);
    assert!(text.contains("1 failure(s), last "), "{text}");

    let samples = probe_log(&out);
    let (gap, first) = outage(&samples, t_kill);
    let first_ms = first.map(|f| (f - t_kill) / 1000);
    eprintln!(
        "service killed: check failed after {seen_ms} ms (logged at {logged_ms} ms), client's longest gap \
         {} ms, first answer {first_ms:?} ms after the kill",
        gap / 1000
    );
    assert!(gap < 3_000_000, "outage {gap} µs");
    assert!(peer_trouble(&b).is_empty(), "{:?}", peer_trouble(&b));
}

#[test]
fn past_the_restart_limit_the_group_moves_to_the_peer_and_stays() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, b) = m.up(&m.web());
    let (na, nb) = (m.rig.a.name().to_string(), m.rig.b.name().to_string());
    let sampler = Sampler::start(&na, &nb, FLOAT, Duration::from_millis(5));
    let t0 = m.crash_from_now(&na);
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(15)), "{:?}", b.status());
    let moved = Instant::now();
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || m.rig.ask().as_deref() == Some(nb.as_str())));
    eprintln!("moved to beta {} ms after the first crash", (unix_us() - t0) / 1000);

    // alpha restarted it restart_limit (3) times, then gave it up; beta took it by the
    // orderly hand-over (alpha stopped it first; beta never declared alpha dead).
    let starts_a = m.changes(&na, t0).iter().filter(|c| *c == "svc start").count();
    assert_eq!(starts_a, 3, "{:?}", m.changes(&na, t0));
    assert_eq!(lines(&a, "restarting script::").len(), 3);
    assert_eq!(lines(&a, "restart_limit reached").len(), 1, "{}", a.log_text());
    assert!(lines(&b, "is dead").is_empty() && lines(&b, "taking over").is_empty(), "{}", b.log_text());
    let g = a.group("web").unwrap();
    assert_eq!(g["owner"], "beta", "{g}");
    assert_eq!(g["failed_here"], true, "{g}");
    assert_eq!(g["local_state"], "failed", "{g}");
    let svc = json_res(&g, "::svc");
    assert_eq!(svc["fail_count"], 4, "{svc}");
    assert_eq!(svc["last_check_ok"], false, "{svc}");
    assert_eq!(svc["last_failure"], "not running", "{svc}");
    let (_, text) = a.ctl(&["status"]);
    assert!(text.contains("group web (preferred alpha): started on beta, failed here"), "{text}");
    let gb = b.group("web").unwrap();
    assert_eq!((gb["failed_here"].as_bool(), json_res(&gb, "::svc")["fail_count"].as_u64()), (Some(false), Some(0)));

    // No ping-pong: watched for 30 s. A move back would follow within a few seconds of any
    // change (beta's checks run every 200 ms, a hand-over takes a few heartbeats, and alpha
    // would need only its own restarts again), so 30 s covers many such cycles.
    let (starts_b, changes_a) = (m.starts(&nb), m.changes(&na, t0).len());
    let watch = Instant::now();
    let mut unanswered = 0;
    while watch.elapsed() < Duration::from_secs(30) {
        // (a status request that gets no answer on a loaded machine is not a move: the
        // address sampler and the start counts below are the proof)
        match b.group("web") {
            Some(g) => assert!(g["owner"] == "beta" && g["state"] == "started", "{g}\n{}", b.log_text()),
            None => unanswered += 1,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(unanswered < 10, "{unanswered} status requests unanswered");
    let st = sampler.finish();
    assert_eq!(m.starts(&nb), starts_b, "beta restarted the service");
    assert_eq!(m.changes(&na, t0).len(), changes_a, "alpha ran {:?}", m.changes(&na, t0));
    assert_eq!(st.both, 0, "both held the address: {st:?}");
    // alpha: held, released; beta: took it (the moment neither held it may fall between two
    // samples). Nothing more over the watch.
    assert!((1..=2).contains(&st.changes), "{st:?}");
    assert!(rig_b_held(&m), "beta does not hold the address");
    eprintln!("no move in {:?} after the move", moved.elapsed());

    // tandem cleanup clears the mark and the counts; the group stays where it runs.
    let (code, out) = a.ctl(&["cleanup", "web", "beta"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("run tandem cleanup web on beta"), "{out}");
    let svc_metric =
        |name: &str| metric(&a, name, &format!("{{group=\"web\",resource=\"script::{}::svc\"}}", m.res.display()));
    assert_eq!(svc_metric("tandem_resource_monitor_failures_total"), Some(4.0));
    assert_eq!(svc_metric("tandem_resource_monitor_ok"), Some(0.0));
    let (code, out) = a.ctl(&["cleanup", "web"]);
    assert_eq!(code, 0, "{out}");
    // A counter counts from the daemon's start: cleanup does not take it back.
    assert_eq!(svc_metric("tandem_resource_monitor_failures_total"), Some(4.0));
    let g = a.group("web").unwrap();
    assert_eq!((g["failed_here"].as_bool(), g["restarts"].as_u64()), (Some(false), Some(0)), "{g}");
    assert_eq!(g["local_state"], "stopped", "{g}");
    assert_eq!(json_res(&g, "::svc")["fail_count"], 0, "{g}");
    assert!(json_res(&g, "::svc").get("last_failure").is_none(), "{g}");
    assert_eq!(lines(&a, "failures cleared here (cleanup)").len(), 1);
    std::thread::sleep(Duration::from_secs(1));
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(1)));
    assert_eq!(m.starts(&nb), starts_b);
    assert!(peer_trouble(&a).is_empty() && peer_trouble(&b).is_empty(), "{:?}", peer_trouble(&b));
}

fn rig_b_held(m: &Mon) -> bool {
    m.rig.b.has_addr(FLOAT) && !m.rig.a.has_addr(FLOAT)
}

#[test]
fn a_service_that_fails_on_both_nodes_ends_stopped_on_both() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, b) = m.up(&m.web());
    let (na, nb) = (m.rig.a.name().to_string(), m.rig.b.name().to_string());
    m.crash(&nb, true);
    let t0 = m.crash_from_now(&na);
    let stopped = |n: &Node| n.group("web").is_some_and(|g| g["owner"] == "none" && g["local_state"] == "failed");
    assert!(
        wait_for(Duration::from_secs(20), Duration::from_millis(50), || stopped(&a) && stopped(&b)),
        "{:?}\n{:?}",
        a.group("web"),
        b.group("web")
    );
    eprintln!("stopped on both {} ms after the first crash", (unix_us() - t0) / 1000);
    let (starts_a, starts_b) = (m.starts(&na), m.starts(&nb));
    // alpha: its first start, then 3 restarts; beta: its start, then 3 restarts.
    assert_eq!((starts_a, starts_b), (4, 4), "{:?}", m.ops());
    for n in [&a, &b] {
        let g = n.group("web").unwrap();
        assert_eq!((g["state"].as_str(), g["failed_here"].as_bool()), (Some("failed"), Some(true)), "{g}");
        let (_, text) = n.ctl(&["status"]);
        assert!(text.contains("group web (preferred alpha): failed on none, failed here"), "{text}");
    }
    // Both say so: beta when it gives up, alpha when it sees beta give up too.
    for (n, peer) in [(&b, "alpha"), (&a, "beta")] {
        let nowhere = lines(n, "cannot run it either");
        assert_eq!(nowhere.len(), 1, "{}", n.log_text());
        let text = format!("error: group web: failed here and {peer} cannot run it either");
        assert!(nowhere[0].contains(&text), "{nowhere:?}");
        assert!(nowhere[0].contains("tandem cleanup web"), "{nowhere:?}");
    }

    // No loop of starts: nothing more happens.
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!((m.starts(&na), m.starts(&nb)), (4, 4), "{:?}", m.ops());
    assert!(!m.rig.a.has_addr(FLOAT) && !m.rig.b.has_addr(FLOAT));
    assert_eq!(m.rig.ask(), None);
    assert!(stopped(&a) && stopped(&b));
    assert!(peer_trouble(&a).is_empty() && peer_trouble(&b).is_empty(), "{:?}", peer_trouble(&b));
}

#[test]
fn failure_timeout_lifts_the_mark_and_the_node_may_run_the_group_again() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, b) = m.up(&format!("{}failure_timeout 3s\n", m.web()));
    let (na, nb) = (m.rig.a.name().to_string(), m.rig.b.name().to_string());
    m.crash_from_now(&na);
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(15)), "{:?}", b.status());
    let marked = a.group("web").unwrap();
    assert_eq!(marked["failed_here"], true, "{marked}");
    let t_mark = Instant::now();
    assert!(
        wait_for(Duration::from_secs(6), Duration::from_millis(50), || a
            .group("web")
            .is_some_and(|g| g["failed_here"] == false && g["local_state"] == "stopped")),
        "{:?}",
        a.group("web")
    );
    let lifted = t_mark.elapsed();
    let expired = lines(&a, "failure_timeout passed");
    assert_eq!(expired.len(), 1, "{}", a.log_text());
    assert!(expired[0].ends_with("group web: failure_timeout passed: this node may run it again"), "{expired:?}");
    eprintln!("mark lifted {lifted:?} after the move (failure_timeout 3s)");
    assert!(lifted <= Duration::from_millis(3500), "{lifted:?}");
    // Lifting the mark moves nothing by itself (auto_failback off).
    std::thread::sleep(Duration::from_millis(500));
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(1)));
    // Now the service is fixed on alpha and breaks on beta: alpha may run it again.
    m.crash(&na, false);
    m.crash_from_now(&nb);
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(15)), "{:?}", a.status());
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || m.rig.ask().as_deref() == Some(na.as_str()))
    );
    assert_eq!(b.group("web").unwrap()["failed_here"], true);
    assert!(peer_trouble(&a).is_empty() && peer_trouble(&b).is_empty(), "{:?}", peer_trouble(&b));
}

#[test]
fn an_address_removed_by_hand_is_detected_and_restored() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, b) = m.up(&m.web());
    let na = m.rig.a.name().to_string();
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        a.group("web").is_some_and(|g| json_res(&g, "/lan0")["last_check_ok"] == true)
    }));
    let t0 = unix_us();
    m.rig.a.ip(&["addr", "del", &format!("{FLOAT}/24"), "dev", "lan0"]);
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(5), || m.rig.a.has_addr(FLOAT)), "never restored");
    let back_ms = (unix_us() - t0) / 1000;
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || m.rig.ask().as_deref() == Some(na.as_str()))
    );
    eprintln!("address removed by hand: back after {back_ms} ms");
    // Within one interval plus status_timeout, as for a killed service, and the restart.
    assert!(back_ms <= u128::from(INTERVAL_MS + STATUS_TIMEOUT_MS) + 100, "{back_ms} ms");
    let seen = lines(&a, "monitor: ip::");
    assert_eq!(seen.len(), 1, "{}", a.log_text());
    assert!(seen[0].ends_with("group web: monitor: ip::192.0.2.50/24/lan0 is not running"), "{seen:?}");
    // The address and everything after it restarted, in order.
    assert_eq!(m.changes(&na, t0), ["after stop", "svc stop", "svc start", "after start"]);
    assert_eq!(lines(&a, "group web: start ip::").len(), 2);
    assert_eq!(json_res(&a.group("web").unwrap(), "/lan0")["fail_count"], 1);
    assert!(peer_trouble(&a).is_empty() && peer_trouble(&b).is_empty(), "{:?}", peer_trouble(&b));
}

#[test]
fn a_file_system_unmounted_by_hand_is_detected_and_remounted() {
    if !needs()
        .root()
        .tools(&["ip", "losetup", "mkfs.ext4", "nsenter", "umount", "findmnt"])
        .files(&["/dev/loop-control"])
        .ok()
    {
        return;
    }
    let m = Mon::new();
    let img = m.dir.join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
    run(&["mkfs.ext4", "-q", "-F", img.to_str().unwrap()]);
    let dev = common::loopdev::LoopDev::attach(&img);
    let mnt = m.dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let cfg = format!(
        "group fs alpha mount::{dev}::{mnt}::ext4 script::{r}::after\nmonitor {INTERVAL_MS}ms fs\n",
        dev = dev.path().display(),
        mnt = mnt.display(),
        r = m.res.display()
    );
    let cfg = m.rig.config(TIMING, &cfg);
    m.rig.realtime(&cfg);
    let mut a = m.rig.node("alpha", &cfg);
    let mut b = m.rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_group(&a, "fs", "alpha", "started", Duration::from_secs(15)), "{:?}", a.status());
    // The daemon runs under `ip netns exec`, in a mount namespace of its own: the file
    // system is mounted there, and unmounted there by hand.
    let pid = a.pid().unwrap().to_string();
    let in_ns = |args: &[&str]| {
        let mut v = vec!["nsenter", "-t", &pid, "-m", "--"];
        v.extend_from_slice(args);
        Command::new(v[0]).args(&v[1..]).output().unwrap()
    };
    let mounted = || {
        String::from_utf8_lossy(&in_ns(&["findmnt", "-n", "-o", "SOURCE", mnt.to_str().unwrap()]).stdout).trim()
            == dev.path().to_str().unwrap()
    };
    assert!(mounted(), "not mounted in the daemon's namespace");
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        a.group("fs").is_some_and(|g| json_res(&g, "::ext4")["last_check_ok"] == true)
    }));
    let na = m.rig.a.name().to_string();
    let t0 = unix_us();
    assert!(in_ns(&["umount", mnt.to_str().unwrap()]).status.success());
    assert!(!mounted());
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(5), mounted), "never remounted");
    let back_ms = (unix_us() - t0) / 1000;
    assert!(wait_group(&a, "fs", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    eprintln!("file system unmounted by hand: mounted again after {back_ms} ms");
    let seen = lines(&a, "monitor: mount::");
    assert_eq!(seen.len(), 1, "{}", a.log_text());
    assert!(seen[0].ends_with("::ext4 is not running"), "{seen:?}");
    assert_eq!(m.changes(&na, t0), ["after stop", "after start"]);
    assert_eq!(json_res(&a.group("fs").unwrap(), "::ext4")["fail_count"], 1);
    assert!(peer_trouble(&b).is_empty(), "{:?}", peer_trouble(&b));
    // Unmounted before the loop device goes: stop the group, then the daemons.
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(10)), Some(0), "{}", a.log_text());
    b.kill9();
}

#[test]
fn a_reload_applies_a_new_restart_limit() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, b) = m.up(&m.web());
    let na = m.rig.a.name().to_string();
    // restart_limit 3 → 1 on alpha, by SIGHUP.
    let text = std::fs::read_to_string(&a.config).unwrap();
    std::fs::write(&a.config, format!("{text}restart_limit 1\n")).unwrap();
    a.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || !lines(&a, "configuration reloaded").is_empty())
    );
    assert!(lines(&a, "reload refused").is_empty(), "{}", a.log_text());
    let t0 = m.crash_from_now(&na);
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(15)), "{:?}", b.status());
    assert_eq!(m.changes(&na, t0).iter().filter(|c| *c == "svc start").count(), 1, "{:?}", m.changes(&na, t0));
    let restarts = lines(&a, "restarting script::");
    assert_eq!(restarts.len(), 1, "{}", a.log_text());
    assert!(restarts[0].contains("(restart 1 of 1 within restart_window)"), "{restarts:?}");
}

#[test]
fn a_failed_node_whose_peer_dies_says_nowhere_to_run_until_cleanup() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, mut b) = m.up(&m.web());
    let na = m.rig.a.name().to_string();
    m.crash_from_now(&na);
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(15)), "{:?}", b.status());
    assert!(lines(&a, "cannot run it either").is_empty(), "beta runs it: {}", a.log_text());
    // beta dies with everything it ran: alpha, failed for the group, does not take it over,
    // and says so.
    b.kill9();
    m.rig.b.kill_all();
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || a.peer_state() == "dead"));
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(20), || !lines(&a, "cannot run it either").is_empty())
    );
    std::thread::sleep(Duration::from_secs(1));
    let g = a.group("web").unwrap();
    assert_eq!((g["owner"].as_str(), g["state"].as_str()), (Some("none"), Some("failed")), "{g}");
    assert_eq!(lines(&a, "cannot run it either").len(), 1);
    assert!(!m.rig.a.has_addr(FLOAT));
    // Fixed, and cleared: alpha takes it over at once.
    m.crash(&na, false);
    let (code, out) = a.ctl(&["cleanup", "web"]);
    assert_eq!(code, 0, "{out}");
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || m.rig.ask().as_deref() == Some(na.as_str()))
    );
}

#[test]
fn a_check_that_hangs_is_killed_at_status_timeout_and_counts_as_a_failure() {
    if !require(&["ip", "socat", "ss", "setsid"]) {
        return;
    }
    let m = Mon::new();
    let (a, b) = m.up(&m.web());
    let na = m.rig.a.name().to_string();
    m.hang(&na, true);
    let t0 = unix_us();
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(10), || !lines(&a, "monitor: script::").is_empty()),
        "{}",
        a.log_text()
    );
    m.hang(&na, false);
    let seen = lines(&a, "monitor: script::");
    let seen_ms = (log_time_us(&seen[0]) - t0) / 1000;
    eprintln!("a hanging check: failed {seen_ms} ms after it began to hang");
    assert!(seen[0].ends_with("::svc cannot be checked (its status failed)"), "{seen:?}");
    assert!(seen_ms >= u128::from(STATUS_TIMEOUT_MS), "{seen_ms} ms: before status_timeout?");
    assert!(seen_ms <= u128::from(INTERVAL_MS + STATUS_TIMEOUT_MS) + 300, "{seen_ms} ms");
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(5)), "{:?}", a.status());
    assert_eq!(m.changes(&na, t0), ["after stop", "svc stop", "svc start", "after start"]);
    let g = a.group("web").unwrap();
    let svc = json_res(&g, "::svc");
    assert_eq!(svc["fail_count"], 1, "{svc}");
    eprintln!("last_failure: {}", svc["last_failure"]);
    assert!(svc["last_failure"].as_str().is_some_and(|s| !s.is_empty() && s != "not running"), "{svc}");
    assert!(peer_trouble(&a).is_empty() && peer_trouble(&b).is_empty(), "{:?}", peer_trouble(&b));
}
