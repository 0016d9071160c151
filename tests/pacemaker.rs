//! Pacemaker really runs the export: bench/pacemaker.py's self-test builds three namespaced
//! machines (own network, mount, UTS and PID namespaces), runs corosync 3 (knet over
//! 192.0.2.0/24) and Pacemaker 2.1 in them without systemd, loads the CIB that
//! `tandem export pacemaker` makes of the demo group (address + TCP service, with tandem's
//! ocf:tandem:script agent) with cibadmin, checks that the group starts on its preferred
//! node and answers a client, kills that machine (link down, SIGKILL of its PID namespace's
//! init) and checks that the group moves and answers again. About 30 s, most of it
//! Pacemaker's DC election.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn pacemaker_runs_the_exported_cib_and_fails_over() {
    if !require(&[
        "corosync",
        "pacemakerd",
        "cibadmin",
        "crm_mon",
        "corosync-quorumtool",
        "nsenter",
        "unshare",
        "python3",
    ]) {
        return;
    }
    let out = TempDir::new("pacemaker");
    let o = Command::new("python3")
        .arg(repo().join("bench/pacemaker.py"))
        .args(["selftest", "--out"])
        .arg(out.path())
        .env("TANDEM", tandem())
        .env("PROBE", probe_bin())
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    eprintln!("{log}");
    assert!(o.status.success(), "bench/pacemaker.py selftest failed:\n{log}");
    let res: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("selftest.json")).unwrap()).unwrap();
    assert_eq!(res["from"], "alpha");
    assert!(res["to"] == "beta" || res["to"] == "gamma", "{res}");
    let outage = res["outage_ms"].as_f64().unwrap();
    assert!(outage > 0.0 && outage < 30_000.0, "{res}");
    assert!(res["crm_mon_after"].as_str().unwrap().contains("OFFLINE: [ alpha ]"), "{res}");
}
