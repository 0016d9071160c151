//! tandem as a heartbeat drop-in: heartbeat's files, unchanged, pass `tandem check-config
//! --ha-d`, and two tandem nodes run a cluster from them speaking heartbeat's protocol.
//!
//! - heartbeat's captured configurations (tests/fixtures/hb/configs: udp-sha1 and serial-sha1,
//!   both nodes) and a file server's (tests/fixtures/hacompat/serial-drbd: serial, bcast,
//!   drbddisk, Filesystem, IPaddr, heartbeat's apache script, md5) pass check-config (the
//!   file server's set also runs as a cluster with real DRBD in `make vm-test`, act 95);
//! - /etc/ha.d is the default configuration when there is no /etc/tandem/tandem.conf;
//! - udp-sha1 and serial-sha1, unchanged, run a tandem pair: the address starts on its
//!   preferred node, `hb_standby` moves it, a clean stop hands it over, never on both nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::hbmixed::{prerequisites, Mixed, Opts};
use common::{repo, require, run, stdout, tandem, wait_for, Netns, Sampler, TempDir};

/// A copy of a configuration directory with authkeys at mode 0600 (git keeps 0644).
fn copy_ha_d(from: &Path, tmp: &TempDir, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp.path().join(name);
    std::fs::create_dir_all(&d).unwrap();
    for f in ["ha.cf", "haresources", "authkeys"] {
        std::fs::copy(from.join(f), d.join(f)).unwrap();
    }
    std::fs::set_permissions(d.join("authkeys"), std::fs::Permissions::from_mode(0o600)).unwrap();
    d
}

fn check_in(ns: &Netns, dir: &Path, node: &str) -> (i32, String) {
    let o = Command::new("ip")
        .args(["netns", "exec", ns.name(), tandem(), "check-config", "--ha-d"])
        .arg(dir)
        .args(["--node", node])
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn heartbeat_files_pass_check_config() {
    if !require(&["ip"]) {
        return;
    }
    let tmp = TempDir::new("dropin");
    // Two hosts with the fixtures' interfaces, as hn1 and as hn2.
    let hosts: Vec<Netns> = (1..=2)
        .map(|n| {
            let ns = Netns::new(format!("tdi{n}{}", common::unique()));
            for (i, addr) in [
                ("veth0", format!("192.0.2.{n}/24")),
                ("eth0", format!("192.0.2.{n}/24")),
                ("eth1", format!("198.51.100.{n}/24")),
            ] {
                run(&["ip", "-n", ns.name(), "link", "add", i, "type", "veth", "peer", "name", &format!("p{i}")]);
                run(&["ip", "-n", ns.name(), "addr", "add", &addr, "brd", "+", "dev", i]);
                ns.link(i, true);
            }
            ns
        })
        .collect();
    let host = |node: &str| if node == "hn1" { &hosts[0] } else { &hosts[1] };
    for (set, node, want) in [
        ("hb/configs/udp-sha1", "hn1", "1 link, 1 group, 1 resource, heartbeat 3.0.6 protocol (auto_failback on)"),
        ("hb/configs/udp-sha1", "hn2", "1 link, 1 group, 1 resource, heartbeat 3.0.6 protocol (auto_failback on)"),
        ("hb/configs/serial-sha1", "hn1", "1 link, 1 group, 1 resource"),
        ("hb/configs/serial-sha1", "hn2", "1 link, 1 group, 1 resource"),
        ("hb/configs/udp-sha1-legacy", "hn1", "(auto_failback legacy)"),
        ("hacompat/serial-drbd", "hn1", "2 links, 1 group, 4 resources, heartbeat 3.0.6 protocol (auto_failback off)"),
        ("hacompat/serial-drbd", "hn2", "2 links, 1 group, 4 resources"),
    ] {
        let d = copy_ha_d(
            &repo().join("tests/fixtures").join(set).join(node),
            &tmp,
            &format!("{}-{node}", set.replace('/', "-")),
        );
        let (code, out) = check_in(host(node), &d, node);
        eprintln!("{set} {node}: {out}");
        assert_eq!(code, 0, "{set} {node}:\n{out}");
        assert!(out.contains(&format!("{}: OK: cluster linux-ha, node {node}", d.display())), "{out}");
        assert!(out.contains(want), "{set} {node}: want {want:?}:\n{out}");
    }
    // heartbeat's mode rule for authkeys, and a file:line error.
    let d = copy_ha_d(&repo().join("tests/fixtures/hb/configs/udp-sha1/hn1"), &tmp, "bad");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("authkeys"), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (code, out) = check_in(&hosts[0], &d, "hn1");
    assert_eq!(code, 2);
    assert!(out.contains("authkeys (mode 0644) is readable by group or others; chmod 600"), "{out}");
    let d = copy_ha_d(&repo().join("tests/fixtures/hb/configs/udp-sha1/hn1"), &tmp, "bad2");
    std::fs::write(
        d.join("ha.cf"),
        std::fs::read_to_string(d.join("ha.cf")).unwrap() + "respawn hacluster /usr/lib/heartbeat/ipfail\n",
    )
    .unwrap();
    let (code, out) = check_in(&hosts[0], &d, "hn1");
    assert_eq!(code, 2);
    assert!(out.contains("ha.cf:14: respawn /usr/lib/heartbeat/ipfail: ipfail is a heartbeat API client"), "{out}");
}

#[test]
fn etc_ha_d_is_the_default_without_tandem_conf() {
    if !prerequisites() {
        return;
    }
    if Path::new("/etc/tandem/tandem.conf").exists() {
        eprintln!("SKIP: this host has /etc/tandem/tandem.conf");
        return;
    }
    let x = Mixed::new(&Opts { fixture: Some("udp-sha1"), iface: "veth0", serial: false, ..Opts::default() });
    // Inside hn1: /etc/ha.d is heartbeat's, and there is no /etc/tandem/tandem.conf.
    let o = x.m[0].exec(&[tandem(), "check-config"], Duration::from_secs(10));
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    // (After the warning that there is no stonith line for hn2.)
    assert!(out.lines().any(|l| l.starts_with("/etc/ha.d: OK: cluster linux-ha, node hn1 (peer hn2)")), "{out}");
}

/// Two tandem nodes from heartbeat's captured files.
fn tandem_pair(fixture: &'static str, serial: bool) {
    let mut x = Mixed::new(&Opts { fixture: Some(fixture), iface: "veth0", serial, ..Opts::default() });
    const ADDR: &str = "192.0.2.50";
    let sampler = Sampler::start(x.ns(0), x.ns(1), ADDR, Duration::from_millis(10));
    x.start_tandem(0);
    x.start_tandem(1);
    assert!(
        wait_for(Duration::from_secs(40), Duration::from_millis(100), || x.nodestatus(0, "hn2") == "active"
            && x.nodestatus(1, "hn1") == "active"),
        "{:?} {:?}\n--- hn1\n{}\n--- hn2\n{}",
        x.cmd(0, "cl_status", &["nodestatus", "hn2"]),
        x.cmd(1, "cl_status", &["nodestatus", "hn1"]),
        x.log(0),
        x.log(1)
    );
    let t = Instant::now();
    assert!(wait_for(Duration::from_secs(30), Duration::from_millis(50), || x.holds(0, ADDR)), "{}", x.log(0));
    eprintln!("{fixture}: the address is on hn1 {:?} after both saw each other", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    assert!(!x.holds(1, ADDR));
    // hb_standby on hn1 (tandem's): to hn2.
    let t = Instant::now();
    assert_eq!(x.cmd(0, "hb_standby", &[]).0, 0);
    assert!(wait_for(Duration::from_secs(20), Duration::from_millis(10), || x.holds(1, ADDR)), "{}", x.log(1));
    eprintln!("{fixture}: hb_standby moved the address in {:?}", t.elapsed());
    // auto_failback on: hn2's clean stop hands it back at once.
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    x.term_tandem(1);
    assert!(wait_for(Duration::from_secs(20), Duration::from_millis(10), || x.holds(0, ADDR)), "{}", x.log(0));
    eprintln!("{fixture}: hn2's clean stop handed the address over in {:?}", t.elapsed());
    x.wait_tandem_exit(1);
    let s = sampler.finish();
    assert_eq!(s.both, 0, "{s:?}");
    assert!(!x.log(0).contains("error"), "{}", x.log(0));
}

#[test]
fn tandem_pair_from_heartbeat_udp_files() {
    if !prerequisites() {
        return;
    }
    tandem_pair("udp-sha1", false);
}

#[test]
fn tandem_pair_from_heartbeat_serial_files() {
    if !prerequisites() {
        return;
    }
    tandem_pair("serial-sha1", true);
}
