//! Fencing over heartbeat's protocol, end to end: two tandem daemons run from one
//! /etc/ha.d-style directory (ha.cf, haresources, authkeys) whose `stonith_host * external/ipmi`
//! lines point at real BMCs (OpenIPMI's ipmi_sim, tests/common/fencerig.rs), run through
//! cluster-glue's `stonith` command and its external/ipmi plugin, as heartbeat 3.0.6 runs them.
//!
//! - the holder freezes (SIGSTOP): the survivor powers it off through its BMC, and takes the
//!   group over only then (the address is never on both nodes);
//! - the holder's BMC is unreachable: the attempts fail and are retried, and the survivor does
//!   not take over while they fail; once the BMC answers again, the fence lands and it does.
//!
//! Needs root, iproute2, nftables, unshare, python3, ipmi_sim (openipmi), ipmitool and
//! cluster-glue's `stonith`. Without them the tests print a note and pass, unless CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fencerig::{bmc_addr, FenceRig, Machine, BMC_PASSWORD, BMC_USER};
use common::*;

const GROUP: &str = "IPaddr::192.0.2.50/24/lan0";

fn ready() -> bool {
    require(&["ip", "nft", "unshare", "ipmi_sim", "ipmitool", "stonith", "python3"])
}

/// heartbeat's files for both nodes, and the environment the daemons need: ipmi_sim offers no
/// SHA256 cipher suites, so the plugin's ipmitool (its `ipmitool` parameter, from the
/// environment as under heartbeat) is a wrapper asking for suite 3.
fn ha_d(fr: &FenceRig) -> (PathBuf, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = fr.rig.dir.path().join("ha.d");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cf = String::from(
        "logfacility none\nkeepalive 200ms\nwarntime 600ms\ndeadtime 1\ninitdead 3\nudpport 694\n\
         ucast lan0 192.0.2.1\nucast lan0 192.0.2.2\nucast hb0 198.51.100.1\nucast hb0 198.51.100.2\n\
         auto_failback off\nnode alpha beta\ncrm off\n",
    );
    for n in ["alpha", "beta"] {
        cf.push_str(&format!("stonith_host * external/ipmi {n} {} {BMC_USER} {BMC_PASSWORD} lanplus\n", bmc_addr(n)));
    }
    std::fs::write(dir.join("ha.cf"), cf).unwrap();
    std::fs::write(dir.join("haresources"), format!("alpha {GROUP}\n")).unwrap();
    std::fs::write(dir.join("authkeys"), "auth 1\n1 sha1 hb-fencing-test-key\n").unwrap();
    std::fs::set_permissions(dir.join("authkeys"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrapper = fr.rig.dir.path().join("ipmitool-c3");
    std::fs::write(&wrapper, "#!/bin/sh\nexec ipmitool -C 3 \"$@\"\n").unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, format!("ipmitool={}", wrapper.display()))
}

fn group(m: &Machine) -> serde_json::Value {
    m.node.group(GROUP).unwrap_or_default()
}

fn fencing(m: &Machine) -> serde_json::Value {
    m.node.status().map(|s| s["peers"][0]["fencing"].clone()).unwrap_or_default()
}

/// Both daemons up from `dir`, hearing each other, alpha holding the group.
fn pair(fr: &FenceRig, dir: &Path, env: &str) -> (Machine, Machine) {
    let host_uuid = Path::new("/var/lib/heartbeat/hb_uuid");
    let host_before = std::fs::read(host_uuid).ok();
    let (a, b) = fr.machines_env(dir, &[env]);
    for m in [&a, &b] {
        assert!(
            wait_for(Duration::from_secs(20), Duration::from_millis(50), || m.node.peer_state() == "up"),
            "{}: peer never up: {:?}\n{}",
            m.node.name,
            m.node.status(),
            m.log()
        );
    }
    assert!(
        wait_for(Duration::from_secs(20), Duration::from_millis(50), || group(&b)["owner"] == "alpha"
            && fr.rig.a.has_addr(FLOAT)),
        "the group never started on alpha: {}\n{}",
        group(&b),
        a.log()
    );
    let f = fencing(&b);
    assert_eq!(f["method"], "exec", "{f}");
    assert_eq!(f["state"], "idle", "{f}");
    // Each machine keeps heartbeat's uuid and generation in its own directory; the host's
    // /var/lib/heartbeat is left as it was.
    for m in [&a, &b] {
        let own = m.node.dir.join("var-lib-heartbeat");
        assert!(own.join("hb_uuid").exists() && own.join("hb_generation").exists(), "{}: {own:?}", m.node.name);
    }
    assert_eq!(std::fs::read(host_uuid).ok(), host_before, "a daemon wrote the host's {host_uuid:?}");
    (a, b)
}

#[test]
fn frozen_holder_is_powered_off_through_its_bmc_before_the_takeover() {
    if !ready() {
        return;
    }
    let fr = FenceRig::new();
    let (dir, env) = ha_d(&fr);
    let (a, b) = pair(&fr, &dir, &env);
    let sampler = Sampler::start(fr.rig.a.name(), fr.rig.b.name(), FLOAT, Duration::from_millis(10));
    let offs = a.offs();
    let start = Instant::now();
    let frozen = a.freeze();
    assert!(frozen >= 2, "froze {frozen} processes");

    assert!(
        wait_for(Duration::from_secs(40), Duration::from_millis(20), || group(&b)["owner"] == "beta"
            && group(&b)["state"] == "started"
            && fr.rig.b.has_addr(FLOAT)),
        "beta never took over: {:?}\n{}",
        b.node.status(),
        b.log()
    );
    eprintln!("frozen alpha -> group on beta: {:?}", start.elapsed());
    // The BMC powered alpha off: the frozen daemon and its children were killed.
    assert_eq!(a.offs(), offs + 1, "{:?}", a.bmc.power_log());
    assert!(!a.on());
    assert!(a.pids().is_empty(), "{:?}", a.pids());
    let f = fencing(&b);
    eprintln!("beta's fencing: {f}");
    assert_eq!(f["state"], "confirmed", "{f}");
    assert_eq!(f["fenced"], 1, "{f}");
    assert_eq!(f["last"]["ok"], true, "{f}");
    let (code, prom) = b.node.ctl(&["status", "--prometheus"]);
    assert_eq!(code, 0, "{prom}");
    let sample =
        |name: &str| prom.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).map(String::from);
    assert_eq!(sample("tandem_fence_attempts_total").as_deref(), Some("1"), "{prom}");
    assert_eq!(sample("tandem_fence_confirmed_total").as_deref(), Some("1"), "{prom}");
    let log = b.log();
    for l in log.lines().filter(|l| l.contains("fenc") || l.contains("dead")) {
        eprintln!("beta: {l}");
    }
    assert!(log.contains("peer alpha is dead: fencing it now"), "{log}");
    assert!(log.contains("fenced alpha:"), "{log}");
    assert!(!log.contains("no STONITH configured"), "{log}");
    // The power-off is logged before the group starts.
    let fenced_at = log.find("fenced alpha:").unwrap();
    let started_at = log.find(&format!("group {GROUP}: starting -> started")).unwrap_or(usize::MAX);
    assert!(fenced_at < started_at, "{log}");
    let s = sampler.finish();
    eprintln!("address samples: {s:?}");
    assert_eq!(s.both, 0, "{s:?}");
}

#[test]
fn unreachable_bmc_means_no_takeover_until_the_fence_lands() {
    if !ready() {
        return;
    }
    let fr = FenceRig::new();
    let (dir, env) = ha_d(&fr);
    let (a, b) = pair(&fr, &dir, &env);
    let sampler = Sampler::start(fr.rig.a.name(), fr.rig.b.name(), FLOAT, Duration::from_millis(10));
    a.bmc.set_reachable(false);
    let offs = a.offs();
    let start = Instant::now();
    assert!(a.freeze() >= 2);
    // Attempts fail (ipmitool gets no answer) and are retried; no takeover in between.
    assert!(
        wait_for(Duration::from_secs(60), Duration::from_millis(100), || fencing(&b)["attempts"]
            .as_u64()
            .is_some_and(|n| n >= 2)),
        "fewer than 2 attempts: {}\n{}",
        fencing(&b),
        b.log()
    );
    eprintln!("2 attempts after {:?}: {}", start.elapsed(), fencing(&b));
    assert_ne!(group(&b)["owner"], "beta", "{}", group(&b));
    assert!(!fr.rig.b.has_addr(FLOAT));
    assert!(a.on() && fr.rig.a.has_addr(FLOAT));
    assert_eq!(a.offs(), offs);
    let log = b.log();
    assert!(log.contains("fencing alpha: attempt 1 failed:"), "{log}");
    assert!(log.contains("no takeover until it is fenced"), "{log}");
    let (_, text) = b.node.ctl(&["status"]);
    assert!(text.contains("fencing alpha: exec") && text.contains("attempts"), "{text}");
    // The BMC answers again: the next attempt powers alpha off, then beta takes over.
    a.bmc.set_reachable(true);
    let t = Instant::now();
    assert!(
        wait_for(Duration::from_secs(60), Duration::from_millis(50), || group(&b)["owner"] == "beta"
            && group(&b)["state"] == "started"),
        "no takeover after the BMC came back: {}\n{}",
        fencing(&b),
        b.log()
    );
    eprintln!("BMC back -> group on beta: {:?}", t.elapsed());
    assert_eq!(a.offs(), offs + 1);
    assert!(!a.on());
    let s = sampler.finish();
    eprintln!("address samples: {s:?}");
    assert_eq!(s.both, 0, "{s:?}");
}
