//! Interoperability with a real heartbeat 3.0.6 node (Debian's `heartbeat` package): ONE
//! heartbeat machine in its own namespaces, and our protocol engine in another network
//! namespace, as the second node of the cluster, over UDP and over a serial line (a pty).
//!
//! haresources (the same on both): `hb1 hbtest::a` (heartbeat's group) and `tn2 hbtest::b`
//! (ours); `auto_failback on`. The driver runs resource work instantly (it only keeps a set).
//!
//! Shown: heartbeat reports our node `active` (`cl_status nodestatus`), its log has no
//! authentication failure and no lost packets in 20 s of steady state, retransmissions are
//! requested and answered both ways (packets dropped with nftables on its side, in the driver
//! on ours), and the groups move as our messages say: each node takes its own at start-up,
//! hb_standby from us gives heartbeat everything, hb_takeover from us takes everything, and our
//! clean shutdown hands everything to heartbeat.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::hbrig::{Cmd, Driver, HbMachine, Medium, HB, HBTEST, KEYS};
use common::relay::Pty;
use common::{require, run, unique, wait_for, Netns};
use tandem::hb::auth::AuthKeys;
use tandem::hb::proto::{Config, Failback, Group, GroupMask, NodeStatus, Notice, RscSet};

const A: GroupMask = GroupMask(1);
const B: GroupMask = GroupMask(2);

fn prerequisites() -> bool {
    require(&["ip", "nsenter", "unshare", "nft", "python3", "cl_status", "timeout", HB])
}

fn machine(tag: &str, media: &str) -> HbMachine {
    let m = HbMachine::new("hb1", tag);
    let d = m.dir.path().display().to_string();
    m.write_etc(
        "ha.cf",
        &format!(
            "logfile {d}/log/ha-log\ndebugfile {d}/log/ha-debug\nlogfacility none\nuse_logd no\n\
             keepalive 1\ndeadtime 5\nwarntime 3\ninitdead 10\n{media}auto_failback on\nnode hb1\nnode tn2\ncrm off\n"
        ),
        0o644,
    );
    m.write_etc("haresources", "hb1 hbtest::a\ntn2 hbtest::b\n", 0o644);
    m.write_etc("authkeys", KEYS, 0o600);
    m.write_etc("resource.d/hbtest", HBTEST, 0o755);
    m
}

fn engine_config(serial: bool) -> Config {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut c = Config::new("tn2", "hb1", *b"tandem-interop-1", wall);
    c.keepalive = Duration::from_secs(1);
    c.deadtime = Duration::from_secs(5);
    c.warntime = Duration::from_secs(3);
    c.initdead = Duration::from_secs(10);
    c.failback = Failback::On;
    c.nodes = vec!["hb1".into(), "tn2".into()];
    c.groups = vec![Group { key: "hbtest::a".into(), local: false }, Group { key: "hbtest::b".into(), local: true }];
    c.serial = serial;
    c
}

/// Log lines that must never appear while both nodes run normally.
const NEVER: &[&str] = &[
    "authentication failed",
    "failed authentication",
    "authtoken does not match",
    "Invalid authentication",
    "Bad/invalid",
    "bad sequence number",
    "replay attack",
    "Late heartbeat",
    "is dead",
    "Irretrievably lost",
    "Cannot rexmit",
    "Both machines own",
];

fn check_log(hb: &HbMachine, from: usize, also: &[&str]) {
    check_log_but(hb, from, also, &[]);
}

/// As [`check_log`], with the lines of `NEVER` named in `but` allowed.
fn check_log_but(hb: &HbMachine, from: usize, also: &[&str], but: &[&str]) {
    let log = hb.log();
    let part = &log[from.min(log.len())..];
    for bad in NEVER.iter().filter(|b| !but.contains(b)).chain(also) {
        assert!(!part.contains(bad), "heartbeat logged \"{bad}\":\n{part}");
    }
}

fn no_bad_notices(d: &Driver) {
    let r = d.report();
    for n in &r.notices {
        assert!(
            !matches!(
                n,
                Notice::BadFrame { .. } | Notice::Replay { .. } | Notice::IrretrievablyLost(_) | Notice::Audit(_)
            ),
            "engine notice {n:?}; all: {:?}",
            r.notices
        );
    }
}

fn wait_active(hb: &HbMachine, d: &Driver) {
    assert!(
        wait_for(Duration::from_secs(40), Duration::from_millis(250), || hb.cl_status(&["nodestatus", "tn2"]).1
            == "active"),
        "heartbeat never saw tn2 active: {:?}\n{:?}",
        hb.cl_status(&["nodestatus", "tn2"]),
        d.report()
    );
    assert_eq!(hb.cl_status(&["hbstatus"]).0, 0);
    assert!(
        d.wait(Duration::from_secs(10), |r| r.peer == Some(NodeStatus::Active) && r.local == Some(NodeStatus::Active))
    );
}

fn wait_groups(hb: &HbMachine, d: &Driver, hb_a: bool, hb_b: bool, ours: GroupMask, what: &str) {
    let ok = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        hb.holds("a") == hb_a && hb.holds("b") == hb_b && d.report().held == ours
    });
    assert!(
        ok,
        "{what}: heartbeat holds a={} b={}, we hold {:?}; report {:?}",
        hb.holds("a"),
        hb.holds("b"),
        d.report().held,
        d.report()
    );
}

#[test]
fn udp_interop_with_a_real_heartbeat_node() {
    if !prerequisites() {
        return;
    }
    let tag = unique();
    let mut hb = machine(&tag, "udpport 694\nucast veth0 192.0.2.2\n");
    let us = Netns::new(format!("ttn{tag}"));
    run(&[
        "ip",
        "-n",
        hb.ns.name(),
        "link",
        "add",
        "veth0",
        "type",
        "veth",
        "peer",
        "name",
        "veth0",
        "netns",
        us.name(),
    ]);
    run(&["ip", "-n", hb.ns.name(), "addr", "add", "192.0.2.1/24", "dev", "veth0"]);
    run(&["ip", "-n", us.name(), "addr", "add", "192.0.2.2/24", "dev", "veth0"]);
    hb.ns.link("veth0", true);
    us.link("veth0", true);
    hb.boot();
    let keys = AuthKeys::parse(KEYS.as_bytes()).unwrap();
    let medium = Medium::Udp { netns: us.name().to_string(), local: "192.0.2.2".into(), peer: "192.0.2.1".into() };
    let d = Driver::start(engine_config(false), keys, medium, Duration::from_secs(180));
    hb.start_heartbeat();

    // heartbeat accepts us, and each node takes its own group.
    wait_active(&hb, &d);
    wait_groups(&hb, &d, true, false, B, "start-up");
    assert_eq!(d.report().peer_holds, A);

    // 20 s of steady state: no authentication failure, no lost packet, nothing late.
    // (A gap while the two first meet is filled by retransmission like any other; the
    // window is what must be clean.)
    let from = hb.log().len();
    let lost_before = d.report().stats.lost;
    std::thread::sleep(Duration::from_secs(20));
    check_log(&hb, from, &["lost packet"]);
    no_bad_notices(&d);
    let r = d.report();
    assert_eq!(r.stats.lost, lost_before, "notices: {:?}", r.notices);
    assert_eq!(hb.cl_status(&["nodestatus", "tn2"]).1, "active");

    // Retransmissions, both ways. heartbeat's side: nftables drops every 3rd datagram from us.
    let from = hb.log().len();
    let rule = "table inet hbwire {\n chain input {\n  type filter hook input priority 0;\n  \
                ip saddr 192.0.2.2 udp dport 694 numgen inc mod 3 == 1 drop\n }\n}\n";
    let mut nft = std::process::Command::new("ip")
        .args(["netns", "exec", hb.ns.name(), "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(nft.stdin.as_mut().unwrap(), rule.as_bytes()).unwrap();
    drop(nft.stdin.take());
    assert!(nft.wait().unwrap().success());
    // Our side: the driver drops every 3rd frame with a sequence number.
    d.send(Cmd::DropIncoming(3));
    std::thread::sleep(Duration::from_secs(8));
    run(&["ip", "netns", "exec", hb.ns.name(), "nft", "delete", "table", "inet", "hbwire"]);
    d.send(Cmd::DropIncoming(0));
    std::thread::sleep(Duration::from_secs(3));
    let r = d.report();
    eprintln!(
        "retransmission: we resent {} (heartbeat asked), asked {} times, dropped {} incoming",
        r.stats.retransmitted, r.stats.rexmit_requests_sent, r.dropped_incoming
    );
    assert!(r.stats.retransmitted > 0, "heartbeat never asked us to retransmit: {r:?}");
    assert!(r.stats.rexmit_requests_sent > 0 && r.dropped_incoming > 0);
    assert!(r.notices.contains(&Notice::NoPacketsMissing), "our gaps were never filled: {:?}", r.notices);
    let part = hb.log()[from..].to_string();
    assert!(part.contains("lost packet(s) for [tn2]"), "heartbeat did not notice the drops:\n{part}");
    assert!(part.contains("No pkts missing from tn2!"), "heartbeat's gaps were never filled:\n{part}");
    // The filter drops every 3rd datagram of ours whatever it is: now and then two status
    // messages in a row, which heartbeat reports as a late heartbeat (warntime), never more.
    check_log_but(&hb, from, &[], &["Late heartbeat"]);
    no_bad_notices(&d);
    assert_eq!(hb.cl_status(&["nodestatus", "tn2"]).1, "active");

    // hb_standby on our node: heartbeat takes our group too.
    let from = hb.log().len();
    d.send(Cmd::Standby(RscSet::ALL));
    wait_groups(&hb, &d, true, true, GroupMask::EMPTY, "our standby");
    let part = hb.log()[from..].to_string();
    assert!(
        part.contains("tn2 wants to go standby [all]") && part.contains("acquire [all] resources from tn2"),
        "{part}"
    );

    // hb_takeover on our node: heartbeat's rc.d/hb_takeover makes it go standby.
    std::thread::sleep(Duration::from_secs(2));
    d.send(Cmd::Takeover(RscSet::ALL));
    wait_groups(&hb, &d, false, false, A.union(B), "our takeover");
    assert!(d.wait(Duration::from_secs(10), |r| r.rscstatus == "all"));
    check_log(&hb, from, &[]);

    // Our clean shutdown: heartbeat takes everything at once, without waiting for deadtime.
    std::thread::sleep(Duration::from_secs(2));
    let from = hb.log().len();
    d.send(Cmd::Shutdown);
    assert!(d.wait(Duration::from_secs(20), |r| r.shutdown_done));
    wait_groups(&hb, &d, true, true, GroupMask::EMPTY, "our shutdown");
    let part = hb.log()[from..].to_string();
    assert!(part.contains("Received shutdown notice from 'tn2'"), "{part}");
    no_bad_notices(&d);
    drop(d);
    assert!(hb.stop_heartbeat(Duration::from_secs(60)), "heartbeat -k failed:\n{}", hb.log());
}

#[test]
fn serial_interop_with_a_real_heartbeat_node() {
    if !prerequisites() {
        return;
    }
    let tag = unique();
    let pty = Pty::new();
    let mut hb = machine(&tag, &format!("baud 19200\nserial {}\n", pty.path.display()));
    hb.boot();
    let keys = AuthKeys::parse(KEYS.as_bytes()).unwrap();
    let master = pty.master.try_clone().unwrap();
    let d = Driver::start(engine_config(true), keys, Medium::Serial { master }, Duration::from_secs(150));
    hb.start_heartbeat();

    wait_active(&hb, &d);
    wait_groups(&hb, &d, true, false, B, "start-up");

    let from = hb.log().len();
    std::thread::sleep(Duration::from_secs(10));
    check_log(&hb, from, &["lost packet"]);
    no_bad_notices(&d);

    // We lose every 3rd frame for a while: we ask heartbeat, it resends over the line.
    d.send(Cmd::DropIncoming(3));
    std::thread::sleep(Duration::from_secs(6));
    d.send(Cmd::DropIncoming(0));
    std::thread::sleep(Duration::from_secs(3));
    let r = d.report();
    assert!(r.stats.rexmit_requests_sent > 0 && r.dropped_incoming > 0, "{r:?}");
    assert!(r.notices.contains(&Notice::NoPacketsMissing), "{:?}", r.notices);
    check_log(&hb, from, &[]);

    d.send(Cmd::Standby(RscSet::ALL));
    wait_groups(&hb, &d, true, true, GroupMask::EMPTY, "our standby");
    std::thread::sleep(Duration::from_secs(2));
    d.send(Cmd::Shutdown);
    assert!(d.wait(Duration::from_secs(20), |r| r.shutdown_done));
    no_bad_notices(&d);
    drop(d);
    assert!(hb.stop_heartbeat(Duration::from_secs(60)), "heartbeat -k failed:\n{}", hb.log());
    drop(pty);
}
