//! A rolling migration from heartbeat to tandem without downtime: two heartbeat 3.0.6 nodes
//! serve a client; hn2 is replaced by tandem (heartbeat stopped, tandem started on the same
//! /etc/ha.d and /var/lib/heartbeat), then hn1. A client probing every 10 ms measures the
//! longest outage over the whole procedure; it is no more than one orderly hand-over (measured
//! first, between the two heartbeat nodes). The replaced nodes keep their heartbeat identity
//! (hb_uuid) and go on above heartbeat's generations, and the address is never on both nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::hbmixed::*;
use common::{wait_for, Sampler, TempDir};

fn wait_seen(x: &Mixed, what: &str) {
    assert!(
        wait_for(Duration::from_secs(60), Duration::from_millis(250), || x.nodestatus(0, "hn2") == "active"
            && x.nodestatus(1, "hn1") == "active"),
        "{what}: the nodes do not see each other\n--- hn1\n{}\n--- hn2\n{}",
        x.log(0),
        x.log(1)
    );
}

fn served(x: &Mixed, i: usize, what: &str) {
    assert!(
        x.served_by(i, Duration::from_secs(60)),
        "{what}: {} never served\n--- hn1\n{}\n--- hn2\n{}",
        NAMES[i],
        x.log(0),
        x.log(1)
    );
}

/// The client prober, running.
struct Probe {
    tag: String,
    out: std::path::PathBuf,
    stop: std::path::PathBuf,
    child: std::process::Child,
}

fn start_probe(x: &Mixed, tmp: &TempDir, tag: &str) -> Probe {
    let out = tmp.path().join(format!("probe-{}", tag.replace(' ', "-")));
    let stop = tmp.path().join(format!("stop-{}", tag.replace(' ', "-")));
    let child = x.probe(&out, 600_000, &stop);
    std::thread::sleep(Duration::from_millis(500));
    Probe { tag: tag.to_string(), out, stop, child }
}

/// Stops the prober; the longest gap between two answers (ms).
fn stop_probe(mut p: Probe) -> f64 {
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&p.stop, "").unwrap();
    let _ = p.child.wait();
    let text = std::fs::read_to_string(&p.out).unwrap();
    let fails = text.lines().filter(|l| l.contains(" fail ")).count();
    let gap = longest_gap_ms(&text);
    eprintln!("{}: longest gap {gap:.1} ms, {fails} failed probes", p.tag);
    gap
}

/// The node's heartbeat uuid file.
fn hb_uuid(x: &Mixed, i: usize) -> Vec<u8> {
    std::fs::read(x.dir(i).join("var-lib-heartbeat/hb_uuid")).unwrap_or_default()
}

fn hb_generation(x: &Mixed, i: usize) -> u64 {
    std::fs::read_to_string(x.dir(i).join("var-lib-heartbeat/hb_generation")).unwrap().trim().parse().unwrap()
}

fn uuid_text(u: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[test]
fn rolling_migration_without_downtime() {
    if !prerequisites() {
        return;
    }
    let tmp = TempDir::new("migrate");
    let mut x = Mixed::new(&Opts::default());
    x.start_heartbeat(0);
    x.start_heartbeat(1);
    wait_seen(&x, "heartbeat pair");
    served(&x, 0, "heartbeat pair");
    std::thread::sleep(Duration::from_secs(2));
    let sampler = Sampler::start(x.ns(0), x.ns(1), FLOAT, Duration::from_millis(10));

    // The reference: one orderly hand-over between the two heartbeat nodes, each way.
    let p = start_probe(&x, &tmp, "heartbeat hand-over (reference)");
    assert_eq!(x.cmd(0, "hb_standby", &[]).0, 0);
    served(&x, 1, "reference hb_standby");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(x.cmd(0, "hb_takeover", &[]).0, 0);
    served(&x, 0, "reference hb_takeover");
    let reference = stop_probe(p);
    std::thread::sleep(Duration::from_secs(3));
    let uuids = [hb_uuid(&x, 0), hb_uuid(&x, 1)];
    assert_eq!(uuids[1].len(), 16);
    let hb_gens = [hb_generation(&x, 0), hb_generation(&x, 1)];
    let from = x.log(0).len();

    let t0 = Instant::now();
    let p = start_probe(&x, &tmp, "migration");
    // 1. hn2 (holding nothing) is replaced: heartbeat stopped, tandem started.
    x.stop_heartbeat(1);
    x.start_tandem(1);
    wait_seen(&x, "heartbeat hn1 + tandem hn2");
    served(&x, 0, "hn2 replaced");
    eprintln!("hn2 replaced by tandem after {:?}", t0.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    // 2. hn1: heartbeat stopped (its group goes to tandem on hn2), then tandem started
    //    (auto_failback on: the group comes back to hn1).
    x.stop_heartbeat(0);
    served(&x, 1, "hn1's heartbeat stopped");
    x.start_tandem(0);
    wait_seen(&x, "tandem pair");
    served(&x, 0, "hn1 replaced: failback");
    eprintln!("hn1 replaced by tandem after {:?}", t0.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let migration = stop_probe(p);
    eprintln!(
        "rolling migration: the client's longest outage was {migration:.1} ms; one orderly hand-over between \
         heartbeat nodes: {reference:.1} ms; whole procedure {:?}",
        t0.elapsed()
    );
    assert!(
        migration <= reference + 500.0 && migration < 5000.0,
        "longest outage {migration:.1} ms, more than one orderly hand-over ({reference:.1} ms)"
    );
    let s = sampler.finish();
    eprintln!("sampler: {s:?}");
    assert_eq!(s.both, 0, "the address was on both nodes at once: {s:?}");

    // Identity: each node kept heartbeat's uuid, and went on above heartbeat's generations.
    for i in 0..2 {
        let log = x.log(i);
        assert!(
            log.contains(&format!("(uuid {}, generation", uuid_text(&uuids[i]))),
            "{}: not heartbeat's uuid {}:\n{log}",
            NAMES[i],
            uuid_text(&uuids[i])
        );
        assert!(hb_generation(&x, i) > hb_gens[i], "{}: hb_generation not above heartbeat's", NAMES[i]);
    }
    // heartbeat (hn1, until it was replaced) never took tandem for a replay or a stranger.
    let log = x.log(0);
    let part = &log[from.min(log.len())..];
    for bad in HB_NEVER {
        assert!(!part.contains(bad), "heartbeat on hn1 logged \"{bad}\":\n{part}");
    }
    assert_eq!(x.cmd(0, "cl_status", &["rscstatus"]).1, "local\n");
    let st = x.tandem_status(0).unwrap();
    assert_eq!((st["groups"][0]["owner"].as_str(), st["groups"][0]["state"].as_str()), (Some("hn1"), Some("started")));
}
