//! `tandem export pacemaker` against Pacemaker's own tools: `crm_verify` accepts the CIB of
//! the interface's demo cluster and of a bigger one (drbd, mount, lvm, ocf, a guest, scripts,
//! fencing devices, monitor lines and a failure policy, groups on two preferred nodes),
//! `crm_simulate` places every group on its preferred node, moves it when that node goes
//! down, and honours auto_failback; and the `--crm` script loads into a CIB with crmsh and
//! verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use tandem::cli::export;

const DEMO: &str = "cluster demo
node alpha beta
authkey /etc/tandem/authkey
keepalive 100ms
deadtime 500ms
warntime 300ms
initdead 2s
auto_failback off
ucast veth-lan 192.0.2.1
ucast veth-lan 192.0.2.2
serial /dev/ttyS1 115200
group web alpha ip::192.0.2.50/24/veth-lan script::/etc/tandem/www.sh
";

const BIG: &str = "cluster big
node alpha beta
authkey /etc/tandem/authkey
deadtime 3s
auto_failback on
ucast eth1 198.51.100.1
ucast eth1 198.51.100.2
garp_count 3
start_timeout 90s
group db alpha drbd::r0 lvm::vg_db mount::/dev/vg_db/data::/srv/db::ext4::noatime 192.0.2.60/24/eth0 \\
    script::/etc/init.d/postgresql
group web beta ocf::heartbeat:IPaddr2::ip=192.0.2.61::cidr_netmask=24 mount::/dev/sdc1::/srv/www \\
    ocf::heartbeat:apache::configfile=/etc/apache2/apache2.conf script::/usr/local/bin/www::8080
group vm beta guest::g1::/srv/g1 ocf::heartbeat:Dummy::state=/run/vm.state
monitor 10s
monitor 2500ms web
monitor 0 db/1
failure_timeout 600s
";

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn tools() -> bool {
    // crm_verify/crm_simulate read files only: no root needed.
    for t in ["crm_verify", "crm_simulate"] {
        if Command::new(t).arg("--version").output().is_err() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{t} is missing (pacemaker-cli-utils)");
            eprintln!("SKIP: {t} is not installed");
            return false;
        }
    }
    true
}

/// Exports `conf` with the CLI; returns the output file.
fn export_cli(dir: &Path, conf: &str, crm: bool) -> PathBuf {
    let c = dir.join(format!("t{}.conf", unique()));
    std::fs::write(&c, conf).unwrap();
    let mut cmd = Command::new(tandem());
    cmd.args(["export", "pacemaker", "-c"]).arg(&c);
    if crm {
        cmd.arg("--crm");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.join(format!("cib{}.{}", unique(), if crm { "crm" } else { "xml" }));
    std::fs::write(&out, &o.stdout).unwrap();
    out
}

/// BIG exported through the library, with `ipmi` and `agent` stonith lines.
fn export_big(dir: &Path) -> PathBuf {
    let mut p = tandem::config::parse_str(Path::new("/etc/tandem/tandem.conf"), BIG).unwrap();
    for (node, words) in [
        (0u8, "ipmi 203.0.113.11 admin /etc/tandem/bmc-alpha.pw cipher=17"),
        (1, "agent /usr/sbin/fence_virsh ip=203.0.113.1 username=root identity_file=/root/.ssh/id_rsa port=vm-beta"),
    ] {
        let w: Vec<String> = words.split_whitespace().map(String::from).collect();
        let method = tandem::config::stonith::parse_method(&w).unwrap();
        p.config.stonith.push(tandem::config::StonithConfig { node, method, line: 3 });
    }
    let out = dir.join("big.xml");
    std::fs::write(&out, export::cib::render(&export::build(&p.config))).unwrap();
    out
}

fn verify(file: &Path) {
    let o = Command::new("crm_verify").arg("--xml-file").arg(file).arg("-VV").output().unwrap();
    assert!(
        o.status.success(),
        "crm_verify {}:\n{}\n{}",
        file.display(),
        text(&o),
        std::fs::read_to_string(file).unwrap()
    );
    assert!(!text(&o).to_lowercase().contains("error"), "{}", text(&o));
}

/// crm_verify on a CIB with fencing enabled and no status yet: Pacemaker has never seen the
/// nodes, so it warns that it would fence them first (startup fencing) and, without quorum,
/// that it cannot. Those warnings, and nothing else.
fn verify_unseen(file: &Path) {
    let o = Command::new("crm_verify").arg("--xml-file").arg(file).arg("-VV").output().unwrap();
    let t = text(&o);
    assert!(!t.to_lowercase().contains("error"), "{t}");
    for l in t.lines().filter(|l| l.contains("warning")) {
        assert!(
            l.contains("unclean but cannot be fenced") || l.contains("lack of quorum") || l.contains("for fencing"),
            "unexpected warning: {l}\n{t}"
        );
    }
}

/// Runs `crm_simulate -S -x IN ARGS… -O OUT`; returns where each resource runs afterwards.
fn simulate(input: &Path, args: &[&str], out: &Path) -> Vec<(String, String)> {
    let o = Command::new("crm_simulate").arg("-S").arg("-x").arg(input).args(args).arg("-O").arg(out).output().unwrap();
    assert!(o.status.success(), "crm_simulate {args:?}:\n{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    let revised = s.split("Revised Cluster Status:").nth(1).unwrap_or_else(|| panic!("no revised status:\n{s}"));
    revised
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("* ")?;
            let name = l.split_whitespace().next()?;
            let at = l.split("Started ").nth(1)?.split_whitespace().next()?;
            Some((name.to_string(), at.to_string()))
        })
        .collect()
}

fn on(placed: &[(String, String)], rsc: &str) -> Option<String> {
    placed.iter().find(|(r, _)| r == rsc).map(|(_, n)| n.clone())
}

#[test]
fn demo_cluster_verifies_and_fails_over() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("export-demo");
    let cib = export_cli(dir.path(), DEMO, false);
    verify(&cib);
    let s = |n: &str| dir.path().join(n);
    // Both nodes up, with quorum: the group starts on its preferred node.
    let placed = simulate(&cib, &["-u", "alpha", "-u", "beta", "-q", "1"], &s("1.xml"));
    assert_eq!(on(&placed, "web-ip-1").as_deref(), Some("alpha"), "{placed:?}");
    assert_eq!(on(&placed, "web-script-2").as_deref(), Some("alpha"), "{placed:?}");
    // alpha goes down: the group moves to beta.
    let placed = simulate(&s("1.xml"), &["-d", "alpha"], &s("2.xml"));
    assert_eq!(on(&placed, "web-ip-1").as_deref(), Some("beta"), "{placed:?}");
    assert_eq!(on(&placed, "web-script-2").as_deref(), Some("beta"), "{placed:?}");
    // alpha returns: auto_failback off, the group stays on beta.
    let placed = simulate(&s("2.xml"), &["-u", "alpha"], &s("3.xml"));
    assert_eq!(on(&placed, "web-ip-1").as_deref(), Some("beta"), "{placed:?}");
    // The same with auto_failback on: it goes back.
    let cib = export_cli(dir.path(), &DEMO.replace("auto_failback off", "auto_failback on"), false);
    verify(&cib);
    simulate(&cib, &["-u", "alpha", "-u", "beta", "-q", "1"], &s("4.xml"));
    simulate(&s("4.xml"), &["-d", "alpha"], &s("5.xml"));
    let placed = simulate(&s("5.xml"), &["-u", "alpha"], &s("6.xml"));
    assert_eq!(on(&placed, "web-ip-1").as_deref(), Some("alpha"), "{placed:?}");
}

#[test]
fn big_cluster_with_fencing_verifies_and_fails_over() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("export-big");
    let cib = export_big(dir.path());
    verify_unseen(&cib);
    let xml = std::fs::read_to_string(&cib).unwrap();
    for want in [
        "type=\"fence_ipmilan\"",
        "type=\"fence_virsh\"",
        "name=\"stonith-enabled\" value=\"true\"",
        "type=\"drbd\"",
        // The monitor lines: each resource's interval; db/1 is only probed.
        "<op id=\"db-script-5-monitor-interval-10s\" name=\"monitor\" interval=\"10s\"",
        "<op id=\"web-apache-3-monitor-interval-2500ms\" name=\"monitor\" interval=\"2500ms\"",
        "<op id=\"db-drbd-1-monitor-interval-0s\" name=\"monitor\" interval=\"0s\"",
        "name=\"migration-threshold\" value=\"4\"",
        "name=\"failure-timeout\" value=\"600s\"",
    ] {
        assert!(xml.contains(want), "{want} not in\n{xml}");
    }
    let s = |n: &str| dir.path().join(n);
    let placed = simulate(&cib, &["-u", "alpha", "-u", "beta", "-q", "1"], &s("1.xml"));
    // Once both nodes are up, the configuration verifies without a warning.
    verify(&s("1.xml"));
    for (rsc, node) in [
        ("db-drbd-1", "alpha"),
        ("db-script-5", "alpha"),
        ("web-IPaddr2-1", "beta"),
        ("web-script-4", "beta"),
        ("vm-guest-1", "beta"),
        ("vm-Dummy-2", "beta"),
        // Each fencing device runs on the node it does not fence.
        ("fence-alpha", "beta"),
        ("fence-beta", "alpha"),
    ] {
        assert_eq!(on(&placed, rsc).as_deref(), Some(node), "{rsc}: {placed:?}");
    }
    // beta fails (crm_simulate --node-fail): it is fenced by the device that runs on alpha,
    // and its groups move to alpha.
    let o = Command::new("crm_simulate").arg("-S").arg("-x").arg(s("1.xml")).args(["-f", "beta"]).output().unwrap();
    assert!(text(&o).contains("Fencing beta"), "{}", text(&o));
    let placed = simulate(&s("1.xml"), &["-f", "beta"], &s("2.xml"));
    for rsc in ["db-drbd-1", "web-IPaddr2-1", "web-mount-2", "web-apache-3", "vm-Dummy-2", "fence-beta"] {
        assert_eq!(on(&placed, rsc).as_deref(), Some("alpha"), "{rsc}: {placed:?}");
    }
    // auto_failback on: beta's groups go home when it returns.
    let placed = simulate(&s("2.xml"), &["-u", "beta"], &s("3.xml"));
    assert_eq!(on(&placed, "web-IPaddr2-1").as_deref(), Some("beta"), "{placed:?}");
    assert_eq!(on(&placed, "db-drbd-1").as_deref(), Some("alpha"), "{placed:?}");
}

#[test]
fn crm_script_loads_and_verifies() {
    if !tools() {
        return;
    }
    if Command::new("crm").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "crm is missing (crmsh)");
        eprintln!("SKIP: crmsh is not installed");
        return;
    }
    let dir = TempDir::new("export-crm");
    let script = export_cli(dir.path(), DEMO, true);
    let o = Command::new("cibadmin").arg("--empty").output().unwrap();
    let cib = dir.path().join("cib.xml");
    std::fs::write(&cib, &o.stdout).unwrap();
    // -F: crmsh looks up each agent's meta-data, and tandem's own agents (ocf:tandem:*) are
    // installed by the Debian package, not on the test host.
    let o = Command::new("crm")
        .args(["-F", "configure", "load", "update"])
        .arg(&script)
        .env("CIB_file", &cib)
        .output()
        .unwrap();
    assert!(o.status.success(), "crm configure load:\n{}", text(&o));
    verify(&cib);
    // The same configuration as the XML export.
    let loaded = std::fs::read_to_string(&cib).unwrap();
    for want in [
        "<primitive id=\"web-ip-1\" class=\"ocf\" provider=\"heartbeat\" type=\"IPaddr2\">",
        "<primitive id=\"web-script-2\" class=\"ocf\" provider=\"tandem\" type=\"script\">",
        "name=\"nic\" value=\"veth-lan\"",
        "<rsc_location id=\"loc-web-alpha\"",
        "name=\"resource-stickiness\" value=\"200\"",
        "name=\"stonith-enabled\" value=\"false\"",
    ] {
        assert!(loaded.contains(want), "{want} not in\n{loaded}");
    }
    // And it places the group the same way.
    let s = |n: &str| dir.path().join(n);
    let placed = simulate(&cib, &["-u", "alpha", "-u", "beta", "-q", "1"], &s("1.xml"));
    assert_eq!(on(&placed, "web-ip-1").as_deref(), Some("alpha"), "{placed:?}");
    let placed = simulate(&s("1.xml"), &["-d", "alpha"], &s("2.xml"));
    assert_eq!(on(&placed, "web-script-2").as_deref(), Some("beta"), "{placed:?}");
}
