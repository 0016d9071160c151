//! Serial heartbeat links end to end: real daemons whose serial links are pty pairs joined
//! by the relay of `tests/common/relay.rs` (a null-modem cable that can be paced, corrupted
//! and cut), in the namespace rig of `tests/common/rig.rs`.
//! Run: `cargo test --test serial_cluster -- --nocapture` (root; prints measured figures).
//!
//! Each node gets its own config file differing only in the `serial` line, which names a
//! uniquely named symlink to that node's pty slave. The daemon keeps its UUCP lock in
//! /var/lock (there is no private lock directory), so every lock name is unique
//! (`LCK..tty<unique>a`) and the [`Cable`] guard removes them, even on failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::relay::{Faults, Pty, Relay};
use common::*;
use serde_json::Value;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";
const DEADTIME: Duration = Duration::from_millis(500);
const KEEPALIVE: Duration = Duration::from_millis(100);
const UDP_HB: &str = "ucast hb0 198.51.100.1\nucast hb0 198.51.100.2";
const LOCK_DIR: &str = "/var/lock";

/// A null-modem cable: two pty pairs joined by a relay; each node's end is a symlink with a
/// unique name in the rig directory. On drop the relay stops and both lock files go.
struct Cable {
    relay: Relay,
    /// Where each node's serial line appears (symlinks to the pty slaves).
    a: PathBuf,
    b: PathBuf,
    slave_a: PathBuf,
    _slaves: (OwnedFd, OwnedFd),
}

impl Cable {
    /// `link_a`: create alpha's symlink now (false: the device is absent until [`Cable::plug_a`]).
    fn new(dir: &Path, baud: u32, link_a: bool) -> Cable {
        let pa = Pty::new();
        let pb = Pty::new();
        let id = unique();
        let a = dir.join(format!("tty{id}a"));
        let b = dir.join(format!("tty{id}b"));
        std::os::unix::fs::symlink(&pb.path, &b).unwrap();
        if link_a {
            std::os::unix::fs::symlink(&pa.path, &a).unwrap();
        }
        let slave_a = pa.path.clone();
        let relay = Relay::start(
            pa.master,
            pb.master,
            Faults { baud: Some(baud), ..Faults::default() },
            0x5e71a1 ^ u64::from(baud),
        );
        Cable { relay, a, b, slave_a, _slaves: (pa.slave, pb.slave) }
    }

    fn plug_a(&self) {
        std::os::unix::fs::symlink(&self.slave_a, &self.a).unwrap();
    }

    fn cut(&self, cut: bool) {
        let mut f = self.relay.faults();
        f.cut = cut;
        self.relay.set_faults(f);
    }

    fn lock_of(dev: &Path) -> PathBuf {
        Path::new(LOCK_DIR).join(format!("LCK..{}", dev.file_name().unwrap().to_string_lossy()))
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        for d in [&self.a, &self.b] {
            let _ = std::fs::remove_file(Cable::lock_of(d));
        }
    }
}

/// Two config files, identical but for the serial device.
fn configs(rig: &Rig, cable: &Cable, other_links: &str, baud: u32, timing: &str, extra: &str) -> (PathBuf, PathBuf) {
    let links = |dev: &Path| {
        let serial = format!("serial {} {baud}", dev.display());
        if other_links.is_empty() {
            serial
        } else {
            format!("{other_links}\n{serial}")
        }
    };
    (rig.config_links(&links(&cable.a), timing, extra), rig.config_links(&links(&cable.b), timing, extra))
}

/// The first link in `status --json` whose name starts with `prefix`.
fn link(st: &Value, prefix: &str) -> Value {
    st["peers"][0]["links"]
        .as_array()
        .and_then(|v| v.iter().find(|l| l["name"].as_str().is_some_and(|n| n.starts_with(prefix))))
        .cloned()
        .unwrap_or(Value::Null)
}

fn link_up(n: &Node, prefix: &str) -> bool {
    n.status().is_some_and(|s| link(&s, prefix)["up"] == true)
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// Polls `n` until its peer is in `state`; the time it took, or None after `timeout`.
fn time_until_peer(n: &Node, state: &str, timeout: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    wait_for(timeout, Duration::from_millis(5), || n.peer_state() == state).then(|| t0.elapsed())
}

/// Polls both nodes until each sees its peer in `state`: the time each took.
fn until_both(a: &Node, b: &Node, state: &str, timeout: Duration) -> (Option<Duration>, Option<Duration>) {
    let t0 = Instant::now();
    let mut t = [None, None];
    wait_for(timeout, Duration::from_millis(2), || {
        for (i, n) in [a, b].into_iter().enumerate() {
            if t[i].is_none() && n.peer_state() == state {
                t[i] = Some(t0.elapsed());
            }
        }
        t.iter().all(Option::is_some)
    });
    (t[0], t[1])
}

fn both_up(a: &Node, b: &Node, timeout: Duration) -> bool {
    wait_for(timeout, Duration::from_millis(20), || a.peer_state() == "up" && b.peer_state() == "up")
}

/// 1. A serial-only cluster forms; a cut cable and a killed peer are detected within
///    deadtime plus a small margin.
#[test]
fn serial_only_cluster_forms_and_detects_death() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cable = Cable::new(rig.dir.path(), 115200, true);
    let (ca, cb) = configs(&rig, &cable, "", 115200, TIMING, "");
    let mut a = rig.node("alpha", &ca);
    let mut b = rig.node("beta", &cb);
    a.start();
    b.start();
    let t0 = Instant::now();
    assert!(both_up(&a, &b, Duration::from_secs(10)), "no cluster over serial: {:?} / {:?}", a.status(), b.status());
    eprintln!("serial-only cluster formed {:?} after start", t0.elapsed());
    for n in [&a, &b] {
        let s = n.status().unwrap();
        let l = link(&s, "serial");
        assert_eq!(s["peers"][0]["links"].as_array().map(Vec::len), Some(1), "{s}");
        assert!(l["up"] == true && l["present"] == true && num(&l, "rx") > 0, "{}: {l}", n.name);
        let (_, text) = n.ctl(&["status"]);
        assert!(
            text.contains(&format!(
                "link serial {}: up",
                if n.name == "alpha" { cable.a.display() } else { cable.b.display() }
            )),
            "{text}"
        );
    }

    // The cable is cut: both sides declare the peer dead after deadtime.
    cable.cut(true);
    let (da, db) = until_both(&a, &b, "dead", Duration::from_secs(5));
    let (da, db) = (da.expect("alpha never saw beta dead"), db.expect("beta never saw alpha dead"));
    eprintln!(
        "cable cut: alpha declared beta dead after {da:?}, beta declared alpha dead by {db:?} (deadtime {DEADTIME:?})"
    );
    for d in [da, db] {
        assert!(d + Duration::from_millis(50) >= DEADTIME - KEEPALIVE, "dead too early: {d:?}");
        assert!(d <= DEADTIME + Duration::from_millis(500), "detection too slow: {d:?}");
    }

    // Reconnected: the cluster re-forms.
    cable.cut(false);
    assert!(both_up(&a, &b, Duration::from_secs(5)), "no re-join after the cable is back");

    // alpha is killed (SIGKILL): beta declares it dead after deadtime.
    std::thread::sleep(Duration::from_millis(300));
    a.kill9();
    let d = time_until_peer(&b, "dead", Duration::from_secs(5)).expect("beta never saw alpha dead");
    eprintln!("alpha SIGKILLed: beta declared it dead after {d:?} (deadtime {DEADTIME:?})");
    assert!(d + Duration::from_millis(50) >= DEADTIME - KEEPALIVE, "dead too early: {d:?}");
    assert!(d <= DEADTIME + Duration::from_millis(500), "detection too slow: {d:?}");
    let s = b.status().unwrap();
    assert_eq!(link(&s, "serial")["up"], false, "{s}");
    assert!(b.log_text().contains("peer alpha: up -> dead"), "{}", b.log_text());
}

/// 2. UDP + serial with the web group: cutting UDP moves nothing; cutting serial too fails
///    the group over to beta.
#[test]
fn cutting_udp_alone_no_failover_then_serial_too_fails_over() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let cable = Cable::new(rig.dir.path(), 115200, true);
    // Heartbeats on hb0 only, so the client keeps reaching the service on lan0.
    let (ca, cb) = configs(&rig, &cable, UDP_HB, 115200, TIMING, &rig.web_group("alpha"));
    let mut a = rig.node("alpha", &ca);
    let mut b = rig.node("beta", &cb);
    a.start();
    b.start();
    assert!(
        wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)),
        "alpha never started web: {:?}",
        a.status()
    );
    assert!(both_up(&a, &b, Duration::from_secs(5)));
    for n in [&a, &b] {
        assert!(
            wait_for(Duration::from_secs(3), Duration::from_millis(20), || link_up(n, "ucast") && link_up(n, "serial")),
            "{}: links not all up: {:?}",
            n.name,
            n.status()
        );
    }
    assert_eq!(rig.ask().as_deref(), Some(rig.a.name()), "client not served by alpha");

    // Fault 1: the heartbeat network is cut (hb0 down in alpha's namespace).
    let sampler = Sampler::start(rig.a.name(), rig.b.name(), FLOAT, Duration::from_millis(5));
    rig.a.link("hb0", false);
    let t0 = Instant::now();
    for n in [&a, &b] {
        assert!(
            wait_for(Duration::from_secs(3), Duration::from_millis(10), || n
                .status()
                .is_some_and(|s| link(&s, "ucast")["up"] == false)),
            "{}: UDP link never went down: {:?}",
            n.name,
            n.status()
        );
    }
    eprintln!("UDP link down on both after {:?}", t0.elapsed());
    // Hold for 6 deadtimes: the peer stays up on both sides, and the group stays on alpha.
    let end = Instant::now() + DEADTIME * 6;
    let mut samples = 0;
    while Instant::now() < end {
        for n in [&a, &b] {
            let s = n.status().unwrap();
            assert_eq!(s["peers"][0]["state"], "up", "{}: false death with serial up: {s}", n.name);
            assert_eq!(link(&s, "serial")["up"], true, "{}: {s}", n.name);
            assert_eq!(link(&s, "ucast")["up"], false, "{}: {s}", n.name);
            let g = n.group("web").unwrap();
            assert!(g["owner"] == "alpha" && g["state"] == "started", "{}: group moved: {g}", n.name);
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in [&a, &b] {
        let (code, text) = n.ctl(&["status"]);
        assert_eq!(code, 0);
        let dev = if n.name == "alpha" { &cable.a } else { &cable.b };
        assert!(text.contains("link ucast hb0 198.51.100.") && text.contains(": down, "), "{}: {text}", n.name);
        assert!(text.contains(&format!("link serial {}: up, ", dev.display())), "{}: {text}", n.name);
        eprintln!("{} during the UDP cut:\n{text}", n.name);
    }
    assert_eq!(rig.ask().as_deref(), Some(rig.a.name()), "client not served by alpha during the UDP cut");
    let st = sampler.finish();
    eprintln!("UDP cut for {:?}: {samples} status samples per node, address samples {st:?}", t0.elapsed());
    assert!(st.samples > 100 && st.b == 0 && st.both == 0 && st.a == st.samples, "the address moved: {st:?}");
    assert!(!b.log_text().contains("-> dead") && !a.log_text().contains("-> dead"));

    // Fault 2: the serial cable is cut too. beta hears nothing on any link: the normal
    // failover. (alpha is still alive and now also sees beta dead — the split brain the
    // serial link exists to prevent; this test only checks beta's takeover.)
    cable.cut(true);
    let t1 = Instant::now();
    let dead = time_until_peer(&b, "dead", Duration::from_secs(5)).expect("beta never saw alpha dead");
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(5), || rig.b.has_addr(FLOAT)),
        "beta never took the address: {:?}",
        b.status()
    );
    let took = t1.elapsed();
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)), "beta's group: {:?}", b.group("web"));
    eprintln!("serial cut too: beta saw alpha dead after {dead:?}, held the address after {took:?}");
    assert!(dead <= DEADTIME + Duration::from_millis(500), "detection too slow: {dead:?}");
    assert!(took <= DEADTIME + Duration::from_millis(2000), "takeover too slow: {took:?}");
    // alpha declares beta dead on its own clock (its last packet from beta came at a
    // slightly different time): wait for it, bounded.
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(10), || a.peer_state() == "dead"),
        "alpha never saw beta dead: {}",
        a.peer_state()
    );
}

/// 3. 10% of frames corrupted for 30 s at 19200 baud, keepalive 200ms, deadtime 1s: no
///    false death, and the bad frames are counted.
#[test]
fn noisy_line_no_false_death_and_bad_frames_counted() {
    if !require(&["ip"]) {
        return;
    }
    let secs: u64 = std::env::var("TANDEM_NOISE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let rig = Rig::new();
    let cable = Cable::new(rig.dir.path(), 19200, true);
    let timing = "keepalive 200ms\ndeadtime 1s\nwarntime 500ms\ninitdead 3s";
    let (ca, cb) = configs(&rig, &cable, "", 19200, timing, "");
    let mut a = rig.node("alpha", &ca);
    let mut b = rig.node("beta", &cb);
    a.start();
    b.start();
    assert!(both_up(&a, &b, Duration::from_secs(10)), "no cluster over serial: {:?} / {:?}", a.status(), b.status());
    assert!(!a.log_text().contains("warning"), "line budget warning at 19200 baud: {}", a.log_text());
    let before = [link(&a.status().unwrap(), "serial"), link(&b.status().unwrap(), "serial")];
    let relay0 = cable.relay.stats();

    cable.relay.set_faults(Faults { baud: Some(19200), corrupt: 0.10, ..Faults::default() });
    let t0 = Instant::now();
    let mut samples = 0u32;
    while t0.elapsed() < Duration::from_secs(secs) {
        for n in [&a, &b] {
            let s = n.status().unwrap();
            let l = link(&s, "serial");
            assert_eq!(s["peers"][0]["state"], "up", "{}: false death after {:?}: {s}", n.name, t0.elapsed());
            assert_eq!(l["up"], true, "{}: serial link down after {:?}: {s}", n.name, t0.elapsed());
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    cable.relay.set_faults(Faults { baud: Some(19200), ..Faults::default() });
    std::thread::sleep(Duration::from_millis(300)); // frames in flight arrive
    let relay = cable.relay.stats();

    let mut report = String::new();
    for (i, n) in [&a, &b].into_iter().enumerate() {
        let l = link(&n.status().unwrap(), "serial");
        let d = |k: &str| num(&l, k) - num(&before[i], k);
        let bad = d("bad_crc") + d("resyncs") + d("overruns") + d("bad");
        // Frames into node i were corrupted by the relay direction 1-i (0 = alpha → beta).
        let corrupted = relay.corrupted[1 - i] - relay0.corrupted[1 - i];
        let frames = relay.frames[1 - i] - relay0.frames[1 - i];
        report += &format!(
            "{}: rx {} of {frames} frames, corrupted by the relay {corrupted}, counted bad_crc {} resyncs {} overruns {} bad {}; late warnings {}\n",
            n.name,
            d("rx"),
            d("bad_crc"),
            d("resyncs"),
            d("overruns"),
            d("bad"),
            n.log_text().matches("is late").count()
        );
        assert!(d("bad_crc") + d("resyncs") > 0, "{}: no bad frame counted: {l}", n.name);
        assert!(
            corrupted > 0 && bad * 2 >= corrupted && bad <= corrupted + 2,
            "{}: bad frames {bad} vs corrupted {corrupted}",
            n.name
        );
        assert!(d("rx") + corrupted + 2 >= frames, "{}: frames lost beyond the corrupted ones: {report}", n.name);
        assert!(!n.log_text().contains("-> dead"), "{}: false death in the log", n.name);
    }
    eprintln!("noise for {secs} s at 19200 baud, 10% of frames corrupted, {samples} status samples per node, peer up throughout:\n{report}");
}

/// Runs `tandem daemon` in `ns` with a bounded wait; returns (exit code, stderr).
fn daemon_once(ns: &str, cfg: &Path, node: &str, dir: &Path) -> (Option<i32>, String) {
    std::fs::create_dir_all(dir).unwrap();
    let err = dir.join("stderr");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, tandem(), "daemon", "--foreground", "-c"])
        .arg(cfg)
        .args(["--node", node, "--socket"])
        .arg(dir.join("sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--pidfile")
        .arg(dir.join("pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut code = None;
    let exited = wait_for(Duration::from_secs(10), Duration::from_millis(10), || match child.try_wait() {
        Ok(Some(st)) => {
            code = st.code();
            true
        }
        _ => false,
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    (code, std::fs::read_to_string(&err).unwrap_or_default())
}

/// 4. A second daemon on a held line refuses to start, naming the holder; a stale lock of a
///    dead process is taken over.
#[test]
fn held_line_refused_naming_holder_and_stale_lock_taken_over() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cable = Cable::new(rig.dir.path(), 115200, true);
    let (ca, cb) = configs(&rig, &cable, "", 115200, TIMING, "");
    let mut a = rig.node("alpha", &ca);
    a.start();
    let holder = a.pid().unwrap();
    let lock_a = Cable::lock_of(&cable.a);
    assert_eq!(std::fs::read_to_string(&lock_a).unwrap(), format!("{holder:>10}\n"));

    // A second daemon configured on the same tty (same host: alpha's namespace).
    let dir2 = rig.dir.path().join("second");
    let (code, err) = daemon_once(rig.a.name(), &ca, "alpha", &dir2);
    eprintln!("second daemon on {}: exit {code:?}, stderr:\n{err}", cable.a.display());
    assert_eq!(code, Some(1), "the second daemon did not fail with exit 1: {err}");
    let want = format!("{} is in use by process {holder}", cable.a.display());
    assert!(
        err.lines().any(|l| l.starts_with("tandem: link serial ") && l.contains(&want)),
        "no clear message naming the holder: {err}"
    );
    assert!(!dir2.join("sock").exists() && !dir2.join("pid").exists(), "the refused daemon left a socket or pidfile");
    assert_eq!(
        std::fs::read_to_string(&lock_a).unwrap(),
        format!("{holder:>10}\n"),
        "the refused daemon touched the holder's lock"
    );
    assert!(a.status().is_some(), "the holder is not running any more");

    // A stale lock on beta's line, left by a process that is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let lock_b = Cable::lock_of(&cable.b);
    std::fs::write(&lock_b, format!("{dead_pid:>10}\n")).unwrap();
    let mut b = rig.node("beta", &cb);
    b.start();
    assert!(both_up(&a, &b, Duration::from_secs(10)), "no cluster after taking over the stale lock: {:?}", b.status());
    assert!(link_up(&b, "serial"));
    assert_eq!(std::fs::read_to_string(&lock_b).unwrap(), format!("{:>10}\n", b.pid().unwrap()), "lock not taken over");
    let log = b.log_text();
    assert!(log.contains(&format!("removing stale lock {} (process {dead_pid} is gone)", lock_b.display())), "{log}");
    eprintln!("stale lock of pid {dead_pid} taken over by beta (pid {})", b.pid().unwrap());

    // A clean exit removes the lock.
    b.signal("TERM");
    assert_eq!(b.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(!lock_b.exists(), "lock left after a clean exit");
}

/// 5. A serial device that does not exist at start-up: the daemon runs on UDP, shows the
///    serial link down and absent, and picks the line up once it appears.
#[test]
fn absent_device_at_start_is_picked_up_when_it_appears() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cable = Cable::new(rig.dir.path(), 115200, false);
    let (ca, cb) = configs(&rig, &cable, UDP_HB, 115200, TIMING, "");
    let mut a = rig.node("alpha", &ca);
    let mut b = rig.node("beta", &cb);
    a.start();
    b.start();
    assert!(both_up(&a, &b, Duration::from_secs(10)), "no cluster over UDP: {:?}", a.status());
    let s = a.status().unwrap();
    let l = link(&s, "serial");
    assert!(l["up"] == false && l["present"] == false, "alpha's serial link: {l}");
    assert!(link(&s, "ucast")["up"] == true, "{s}");
    let (_, text) = a.ctl(&["status"]);
    assert!(
        text.contains(&format!("link serial {}: down, never seen", cable.a.display()))
            && text.contains(", device absent"),
        "{text}"
    );
    assert!(a.log_text().contains("not present"), "{}", a.log_text());
    // beta's device is there but hears nothing.
    let lb = link(&b.status().unwrap(), "serial");
    assert!(lb["up"] == false && lb["present"] == true, "beta's serial link: {lb}");

    // The device appears (a USB adapter plugged in, a udev symlink created) a while later.
    std::thread::sleep(Duration::from_millis(1500));
    cable.plug_a();
    let t0 = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(10), || a
            .status()
            .is_some_and(|s| link(&s, "serial")["present"] == true)),
        "alpha never opened the device: {:?}",
        a.status()
    );
    let opened = t0.elapsed();
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(10), || link_up(&a, "serial") && link_up(&b, "serial")),
        "serial link never came up: {:?} / {:?}",
        a.status(),
        b.status()
    );
    eprintln!("device appeared: opened after {opened:?}, link up on both after {:?}", t0.elapsed());
    assert!(opened <= Duration::from_millis(5500), "reopen backoff longer than 5 s: {opened:?}");
    let (_, text) = a.ctl(&["status"]);
    assert!(!text.contains("device absent"), "{text}");

    // It really carries: with UDP cut the peer stays up.
    rig.a.link("hb0", false);
    let end = Instant::now() + DEADTIME * 4;
    while Instant::now() < end {
        assert_eq!(a.peer_state(), "up");
        assert_eq!(b.peer_state(), "up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!link_up(&a, "ucast") && link_up(&a, "serial"), "{:?}", a.status());
}

/// 6. The link-level pieces exist: the fuzz target for the frame decoder and the bounded
///    random-input test (which `cargo test --lib link::frame` runs).
#[test]
fn frame_fuzz_target_and_random_input_test_exist() {
    let fuzz = std::fs::read_to_string(repo().join("fuzz/fuzz_targets/serial_frame.rs")).unwrap();
    assert!(fuzz.contains("fuzz_target!") && fuzz.contains("Decoder"));
    let manifest = std::fs::read_to_string(repo().join("fuzz/Cargo.toml")).unwrap();
    assert!(manifest.contains("fuzz_targets/serial_frame.rs"));
    let frame = std::fs::read_to_string(repo().join("src/link/frame.rs")).unwrap();
    assert!(frame.contains("fn random_input_bounded()"));
}
