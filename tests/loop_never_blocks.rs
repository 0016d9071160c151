//! The daemon's loop never blocks on what an operator or a log reader does: a FIFO named as
//! the key or the configuration and a SIGHUP, or a stderr pipe nobody reads while it logs a
//! lot. Measured from the peer's side: it never finds the node late, let alone dead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::watch::{drain, peer_trouble, start_with_stderr_pipe};
use common::*;
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";

fn both_up(a: &Node, b: &Node) {
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || a.peer_state() == "up"
            && b.peer_state() == "up"),
        "peers never came up"
    );
}

#[test]
fn fifo_key_or_config_and_sighup_do_not_stall_heartbeats() {
    if !require(&["ip", "mkfifo"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config(TIMING, "");
    // alpha gets a config of its own (a copy), so that its path can become a FIFO.
    let cfg_a = rig.dir.path().join("alpha.conf");
    std::fs::copy(&cfg, &cfg_a).unwrap();
    let mut a = rig.node("alpha", &cfg_a);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    both_up(&a, &b);
    let key = rig.dir.path().join("authkey");
    let key_a = rig.dir.path().join("authkey-alpha");
    std::fs::copy(&key, &key_a).unwrap();
    let text =
        std::fs::read_to_string(&cfg_a).unwrap().replace(&key.display().to_string(), &key_a.display().to_string());
    std::fs::write(&cfg_a, text).unwrap();

    // The key becomes a FIFO nobody writes to; SIGHUP.
    std::fs::remove_file(&key_a).unwrap();
    run(&["mkfifo", "-m", "600", key_a.to_str().unwrap()]);
    a.signal("HUP");
    let refused = |what: &str| {
        let what = what.to_string();
        wait_for(Duration::from_secs(3), Duration::from_millis(20), || {
            a.log_text()
                .lines()
                .any(|l| l.contains("reload refused") && l.contains(&what) && l.contains("regular file"))
        })
    };
    assert!(refused(key_a.to_str().unwrap()), "no refusal naming the key FIFO:\n{}", a.log_text());
    // The config itself as a FIFO.
    let saved = std::fs::read_to_string(&cfg_a).unwrap();
    std::fs::remove_file(&cfg_a).unwrap();
    run(&["mkfifo", "-m", "600", cfg_a.to_str().unwrap()]);
    a.signal("HUP");
    assert!(refused(cfg_a.to_str().unwrap()), "no refusal naming the config FIFO:\n{}", a.log_text());
    // Past deadtime and more: beta never found alpha late.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(a.peer_state(), "up", "alpha's loop stalled");
    assert_eq!(b.peer_state(), "up");
    let trouble = peer_trouble(&b);
    assert!(trouble.is_empty(), "beta saw alpha late or dead: {trouble:?}");
    std::fs::remove_file(&cfg_a).unwrap();
    std::fs::write(&cfg_a, saved).unwrap();
}

/// A group whose start and stop each print 4 KiB: every hand-over logs ~100 lines.
fn chatty_group(rig: &Rig) -> String {
    let s = script(
        rig.dir.path(),
        "chatty",
        r#"ns=$(ip netns identify $$); f="$(dirname "$0")/on-$ns"
i=0; while [ $i -lt 100 ]; do echo "$1 line $i: some words to make the log line longer"; i=$((i+1)); done
case "$1" in start) touch "$f" ;; stop) rm -f "$f" ;; status) [ -e "$f" ] || exit 3 ;; esac
exit 0"#,
    );
    format!("group web alpha script::{}", s.display())
}

#[test]
fn stderr_pipe_nobody_reads_does_not_stall_heartbeats() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config(TIMING, &chatty_group(&rig));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    let mut err = start_with_stderr_pipe(&mut a);
    b.start();
    both_up(&a, &b);
    assert!(wait_group(&b, "web", "alpha", "started", Duration::from_secs(10)), "{:?}", b.status());

    // Hand the group back and forth: each move logs ~10 KiB on alpha, whose stderr pipe
    // (4 KiB) nobody reads; its buffer (64 KiB) fills after a few moves.
    let t0 = Instant::now();
    let mut moves = 0;
    for i in 0..8 {
        let (cmd, owner) = if i % 2 == 0 { ("standby", "beta") } else { ("takeover", "alpha") };
        let (code, out) = a.ctl(&[cmd, "web"]);
        assert_eq!(code, 0, "{cmd}: {out}");
        assert!(
            wait_group(&b, "web", owner, "started", Duration::from_secs(5)),
            "move {i} ({cmd}) did not happen: {:?}",
            b.status()
        );
        moves += 1;
    }
    eprintln!("{moves} moves in {:?}", t0.elapsed());
    assert_eq!(a.peer_state(), "up");
    let trouble = peer_trouble(&b);
    assert!(trouble.is_empty(), "beta saw alpha late or dead: {trouble:?}");

    // The reader comes back: what was dropped is said once, with its count.
    let got = drain(&mut err);
    assert!(got.contains("some words"), "nothing logged?");
    let (code, out) = a.ctl(&["standby", "web"]);
    assert_eq!(code, 0, "{out}");
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(5)));
    let mut later = String::new();
    assert!(wait_for(Duration::from_secs(3), Duration::from_millis(20), || {
        later.push_str(&drain(&mut err));
        later.contains("log lines dropped")
    }));
    let n: u64 = later
        .lines()
        .find(|l| l.contains("log lines dropped"))
        .and_then(|l| l.split_whitespace().rev().nth(3))
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    eprintln!("alpha dropped {n} lines");
    assert!(n > 0, "{later}");
}
