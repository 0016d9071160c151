//! A mixed cluster: Debian's heartbeat 3.0.6 on one node, tandem (`tandem daemon --ha-d
//! /etc/ha.d`, the same files) on the other, over one UDP link and one serial line (a pty
//! pair), as during a migration (tests/common/hbmixed.rs has the rig).
//!
//! Shown: they see each other (`cl_status` on both sides, `tandem status`); the group starts
//! once, on its preferred node; `hb_standby` on the heartbeat node moves it to tandem, `tandem
//! standby` and tandem's own `hb_standby` move it back; a dead heartbeat node (every process
//! SIGKILLed, its interface gone) is taken over by tandem within deadtime plus the hand-over, a
//! dead tandem node by heartbeat; the address is never on both nodes (sampled every 10 ms in
//! both); heartbeat's log shows no authentication failure and no lost-packet storm; sha1, md5
//! and crc authkeys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::hbmixed::*;
use common::{wait_for, Sampler};

fn wait_seen(x: &Mixed) {
    assert!(
        wait_for(Duration::from_secs(60), Duration::from_millis(250), || x.nodestatus(0, "hn2") == "active"
            && x.nodestatus(1, "hn1") == "active"),
        "the nodes do not see each other: hn1 says {:?}, hn2 says {:?}\n--- hn1\n{}\n--- hn2\n{}",
        x.nodestatus(0, "hn2"),
        x.nodestatus(1, "hn1"),
        x.log(0),
        x.log(1)
    );
}

/// heartbeat's whole log has no authentication failure, and from `from` on no storm of lost
/// packets.
fn heartbeat_log_clean(x: &Mixed, i: usize, from: usize) {
    let log = x.log(i);
    for bad in HB_NEVER {
        assert!(!log.contains(bad), "heartbeat on {} logged \"{bad}\":\n{log}", NAMES[i]);
    }
    let part = &log[from.min(log.len())..];
    let lost = lost_reports(part);
    eprintln!(
        "heartbeat on {}: {} lost-packet report(s) in its log, {lost} since start-up",
        NAMES[i],
        lost_reports(&log)
    );
    assert!(lost <= 3, "heartbeat on {} reported lost packets {lost} times:\n{part}", NAMES[i]);
}

fn served(x: &Mixed, i: usize, what: &str) -> Duration {
    let t = Instant::now();
    assert!(
        x.served_by(i, Duration::from_secs(40)),
        "{what}: {} never served the client\n--- hn1\n{}\n--- hn2\n{}",
        NAMES[i],
        x.log(0),
        x.log(1)
    );
    t.elapsed()
}

#[test]
fn heartbeat_and_tandem_share_a_cluster_sha1() {
    if !prerequisites() {
        return;
    }
    let mut x = Mixed::new(&Opts::default());
    let sampler = Sampler::start(x.ns(0), x.ns(1), FLOAT, Duration::from_millis(10));
    x.start_heartbeat(0);
    x.start_tandem(1);
    wait_seen(&x);
    served(&x, 0, "start-up");
    // Started once, on its preferred node.
    std::thread::sleep(Duration::from_secs(3));
    assert!(x.has_addr(0) && !x.has_addr(1));
    let starts = x.log(0).matches("websvc  start").count() + x.log(0).matches("websvc start").count();
    assert_eq!(starts, 1, "websvc started {starts} times on hn1:\n{}", x.log(0));
    assert!(!x.log(1).contains("start IPaddr"), "tandem started the group too:\n{}", x.log(1));

    // Both sides' cl_status, and tandem's status.
    assert_eq!(x.cmd(0, "cl_status", &["nodestatus", "hn2"]), (0, "active\n".into(), String::new()));
    assert_eq!(x.cmd(1, "cl_status", &["nodestatus", "hn1"]), (0, "active\n".into(), String::new()));
    for args in
        [&["listnodes"][..], &["hbstatus"], &["rscstatus"], &["nodestatus", "nosuchnode"], &["listhblinks", "hn1"]]
    {
        let hb = x.cmd(0, "cl_status", args);
        let tn = x.cmd(1, "cl_status", args);
        eprintln!("cl_status {args:?}: heartbeat {hb:?} tandem {tn:?}");
    }
    let (_, hb_nodes, _) = x.cmd(0, "cl_status", &["listnodes"]);
    let (_, tn_nodes, _) = x.cmd(1, "cl_status", &["listnodes"]);
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&hb_nodes), sorted(&tn_nodes));
    assert_eq!(x.cmd(0, "cl_status", &["hbstatus"]).0, 0);
    assert_eq!(
        x.cmd(1, "cl_status", &["hbstatus"]),
        (0, "Heartbeat is running on this machine.\n".into(), String::new())
    );
    // heartbeat's words: each node holds its "local" groups (hn2 has none).
    assert_eq!(x.cmd(0, "cl_status", &["rscstatus"]).1, "local\n");
    assert_eq!(x.cmd(1, "cl_status", &["rscstatus"]).1, "local\n");
    let bad_hb = x.cmd(0, "cl_status", &["nodestatus", "nosuchnode"]);
    let bad_tn = x.cmd(1, "cl_status", &["nodestatus", "nosuchnode"]);
    assert_eq!((bad_hb.0, bad_hb.1.as_str()), (bad_tn.0, bad_tn.1.as_str()));
    for (i, link) in [(0, "lan0"), (1, "lan0")] {
        let peer = NAMES[1 - i];
        assert_eq!(x.cmd(i, "cl_status", &["hblinkstatus", peer, link]).1, "up\n", "{} sees {peer}'s {link}", NAMES[i]);
    }
    let st = x.tandem_status(1).unwrap();
    assert_eq!(st["peers"][0]["state"], "up", "{st}");
    assert_eq!(st["protocol"], "heartbeat");
    assert!(st["peers"][0]["links"].as_array().unwrap().iter().all(|l| l["up"] == true), "{st}");
    assert_eq!(st["groups"][0]["owner"], "hn1");
    assert_eq!(st["groups"][0]["state"], "started");
    let from = x.log(0).len();

    // hb_standby on the heartbeat node: to tandem.
    let (code, out, err) = x.cmd(0, "hb_standby", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let d = served(&x, 1, "hb_standby on heartbeat");
    eprintln!("hb_standby on heartbeat (hn1): served by tandem after {d:?}");
    assert!(wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        x.tandem_status(1).is_some_and(|s| s["groups"][0]["owner"] == "hn2" && s["groups"][0]["state"] == "started")
    }));
    // `tandem standby` on the tandem node: back to heartbeat.
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = x.tandem_cmd(1, &["standby"]);
    assert_eq!(code, 0, "{out}");
    let d = served(&x, 0, "tandem standby");
    eprintln!("tandem standby on hn2: served by heartbeat after {d:?}");
    // Once more, and back with tandem's own hb_standby.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(x.cmd(0, "hb_standby", &["all"]).0, 0);
    served(&x, 1, "second hb_standby on heartbeat");
    std::thread::sleep(Duration::from_secs(2));
    let (code, out, err) = x.cmd(1, "hb_standby", &["foreign"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let d = served(&x, 0, "tandem's hb_standby foreign");
    eprintln!("tandem's hb_standby foreign on hn2: served by heartbeat after {d:?}");
    // And tandem takes it with its hb_takeover.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(x.cmd(1, "hb_takeover", &[]).0, 0);
    served(&x, 1, "tandem's hb_takeover");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(x.cmd(0, "hb_takeover", &["all"]).0, 0);
    served(&x, 0, "heartbeat's hb_takeover");
    std::thread::sleep(Duration::from_secs(2));
    heartbeat_log_clean(&x, 0, from);
    assert!(x.log(0).contains("hn2 wants to go standby [foreign]"), "{}", x.log(0));

    // The heartbeat node dies: tandem takes over within deadtime (5 s) plus the hand-over.
    let t = Instant::now();
    x.power_off(0);
    assert!(x.served_by(1, Duration::from_secs(15)), "tandem never took over:\n{}", x.log(1));
    let took = t.elapsed();
    eprintln!("heartbeat node killed: tandem serves after {took:?} (deadtime 5 s)");
    assert!(took < Duration::from_millis(5000 + 2500), "takeover took {took:?}");
    assert!(x.log(1).contains("taking over the dead peer's groups anyway"), "{}", x.log(1));
    let s = sampler.finish();
    eprintln!("sampler: {s:?}");
    assert_eq!(s.both, 0, "the address was on both nodes at once: {s:?}");
    assert!(s.changes >= 8, "the address did not move as often as asked: {s:?}");
}

#[test]
fn heartbeat_takes_over_from_a_dead_tandem_node() {
    if !prerequisites() {
        return;
    }
    // The group prefers the tandem node.
    let mut x = Mixed::new(&Opts { haresources: "hn2 IPaddr::192.0.2.50/24/lan0 websvc\n", ..Opts::default() });
    let sampler = Sampler::start(x.ns(0), x.ns(1), FLOAT, Duration::from_millis(10));
    x.start_tandem(1);
    x.start_heartbeat(0);
    wait_seen(&x);
    served(&x, 1, "start-up on the preferred (tandem) node");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!x.has_addr(0));
    let from = x.log(0).len();
    let t = Instant::now();
    x.power_off(1);
    assert!(x.served_by(0, Duration::from_secs(15)), "heartbeat never took over:\n{}", x.log(0));
    let took = t.elapsed();
    eprintln!("tandem node killed: heartbeat serves after {took:?} (deadtime 5 s)");
    assert!(took < Duration::from_millis(5000 + 3000), "takeover took {took:?}");
    let log = x.log(0);
    assert!(log[from..].contains("node hn2: is dead"), "{log}");
    let s = sampler.finish();
    eprintln!("sampler: {s:?}");
    assert_eq!(s.both, 0, "the address was on both nodes at once: {s:?}");
}

/// md5 and crc authkeys: the nodes see each other, the group moves both ways, heartbeat's log
/// stays clean.
fn other_auth(authkeys: &'static str, udp: bool, serial: bool) {
    let mut x = Mixed::new(&Opts { authkeys, udp, serial, ..Opts::default() });
    x.start_heartbeat(0);
    x.start_tandem(1);
    wait_seen(&x);
    served(&x, 0, "start-up");
    let from = x.log(0).len();
    assert_eq!(x.cmd(0, "hb_standby", &[]).0, 0);
    served(&x, 1, "hb_standby on heartbeat");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(x.cmd(1, "hb_standby", &[]).0, 0);
    served(&x, 0, "tandem's hb_standby");
    std::thread::sleep(Duration::from_secs(5));
    heartbeat_log_clean(&x, 0, from);
    assert_eq!(x.nodestatus(0, "hn2"), "active");
    let st = x.tandem_status(1).unwrap();
    assert_eq!(st["heartbeat"]["bad"], 0, "{st}");
}

#[test]
fn md5_authkeys() {
    if !prerequisites() {
        return;
    }
    other_auth(MD5, true, true);
}

#[test]
fn crc_authkeys() {
    if !prerequisites() {
        return;
    }
    other_auth(CRC, true, true);
}

#[test]
fn tandem_conf_with_protocol_heartbeat_joins_a_heartbeat_node() {
    if !prerequisites() {
        return;
    }
    // tandem's syntax on hn2 (protocol heartbeat, hb_authkeys), heartbeat's ha.cf on hn1.
    let mut x = Mixed::new(&Opts::default());
    x.start_heartbeat(0);
    x.start_tandem_hb_conf(1, "on");
    wait_seen(&x);
    served(&x, 0, "start-up");
    let from = x.log(0).len();
    assert_eq!(x.cmd(0, "hb_standby", &[]).0, 0);
    served(&x, 1, "hb_standby on heartbeat");
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = x.tandem_cmd(1, &["standby", "web"]);
    assert_eq!(code, 0, "{out}");
    served(&x, 0, "tandem standby web");
    std::thread::sleep(Duration::from_secs(3));
    heartbeat_log_clean(&x, 0, from);
    let st = x.tandem_status(1).unwrap();
    assert_eq!((st["protocol"].as_str(), st["groups"][0]["name"].as_str()), (Some("heartbeat"), Some("web")));
}
