//! Failover times of a mixed heartbeat/tandem cluster, next to pure heartbeat and pure
//! tandem with the same timings (keepalive 1 s, deadtime 5 s, one UDP link and one serial
//! line), in the namespace rig of tests/common/hbmixed.rs. Not a test: `bench/hbmixed.sh`
//! runs it (`cargo test --release --test hb_bench -- --ignored --nocapture`).
//!
//! The fault: the node that serves loses its power (every process SIGKILLed, its interface
//! gone). Measured: the client-observed outage (a client probing every 10 ms: the longest gap
//! between two answers) and the time from the fault to the survivor serving.
//! Environment: HB_BENCH_RUNS (default 3), HB_BENCH_OUT (a JSON lines file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::hbmixed::*;
use common::{wait_for, TempDir};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Runs {
    Heartbeat,
    /// tandem on heartbeat's protocol (`--ha-d`).
    TandemHb,
    /// tandem on its own protocol, same timings.
    TandemNative,
}

fn start(x: &mut Mixed, i: usize, r: Runs) {
    match r {
        Runs::Heartbeat => x.start_heartbeat(i),
        Runs::TandemHb => x.start_tandem(i),
        Runs::TandemNative => x.start_tandem_native(i, "keepalive 1s\ndeadtime 5s\nwarntime 3s\ninitdead 10s"),
    }
}

fn up(x: &Mixed, i: usize, r: Runs) -> bool {
    match r {
        Runs::Heartbeat | Runs::TandemHb => x.nodestatus(i, NAMES[1 - i]) == "active",
        Runs::TandemNative => x.tandem_status(i).is_some_and(|s| s["peers"][0]["state"] == "up"),
    }
}

/// One failover: `active` (serving, node 0) dies, `survivor` (node 1) takes over.
/// Returns (client-observed outage ms, fault to served ms).
fn failover(active: Runs, survivor: Runs) -> (f64, f64) {
    let tmp = TempDir::new("hbbench");
    let mut x = Mixed::new(&Opts { failback: "off", ..Opts::default() });
    start(&mut x, 0, active);
    start(&mut x, 1, survivor);
    assert!(
        wait_for(Duration::from_secs(60), Duration::from_millis(200), || up(&x, 0, active) && up(&x, 1, survivor)),
        "not up\n{}\n{}",
        x.log(0),
        x.log(1)
    );
    assert!(x.served_by(0, Duration::from_secs(60)), "hn1 never served\n{}\n{}", x.log(0), x.log(1));
    std::thread::sleep(Duration::from_secs(3));
    let out = tmp.path().join("probe");
    let stop = tmp.path().join("stop");
    let mut p = x.probe(&out, 120_000, &stop);
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    x.power_off(0);
    assert!(x.served_by(1, Duration::from_secs(30)), "no takeover\n{}", x.log(1));
    let served = t.elapsed().as_secs_f64() * 1000.0;
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&stop, "").unwrap();
    let _ = p.wait();
    let gap = longest_gap_ms(&std::fs::read_to_string(&out).unwrap());
    (gap, served)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[ignore]
fn failover_mixed_vs_pure() {
    if !prerequisites() {
        return;
    }
    let runs: usize = std::env::var("HB_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let cases = [
        ("heartbeat -> heartbeat", Runs::Heartbeat, Runs::Heartbeat),
        ("heartbeat -> tandem (mixed)", Runs::Heartbeat, Runs::TandemHb),
        ("tandem -> heartbeat (mixed)", Runs::TandemHb, Runs::Heartbeat),
        ("tandem -> tandem, heartbeat protocol", Runs::TandemHb, Runs::TandemHb),
        ("tandem -> tandem, tandem protocol", Runs::TandemNative, Runs::TandemNative),
    ];
    let mut lines = Vec::new();
    println!();
    println!("failover (the serving node loses power), keepalive 1 s, deadtime 5 s, UDP + serial, {runs} runs each");
    println!("{:<40} {:>14} {:>14} {:>30}", "dies -> takes over", "outage ms", "served ms", "outages (all runs)");
    for (name, a, s) in cases {
        let mut gaps = Vec::new();
        let mut served = Vec::new();
        for _ in 0..runs {
            let (g, sv) = failover(a, s);
            gaps.push(g);
            served.push(sv);
        }
        let all: Vec<String> = gaps.iter().map(|g| format!("{g:.0}")).collect();
        let (mg, ms) = (median(&mut gaps.clone()), median(&mut served));
        println!("{name:<40} {mg:>14.0} {ms:>14.0} {:>30}", all.join(" "));
        lines.push(format!(
            "{{\"case\":\"{name}\",\"runs\":{runs},\"outage_ms_median\":{mg:.1},\"served_ms_median\":{ms:.1},\"outages_ms\":[{}]}}",
            all.join(",")
        ));
    }
    if let Ok(p) = std::env::var("HB_BENCH_OUT") {
        std::fs::write(p, lines.join("\n") + "\n").unwrap();
    }
}
