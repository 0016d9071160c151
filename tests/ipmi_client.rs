//! The built-in IPMI client against a real BMC (OpenIPMI's ipmi_sim, see
//! tests/common/bmc.rs), side by side with `ipmitool -I lanplus` and fence-agents'
//! `fence_ipmilan` on the same BMC.
//!
//! Needs root, iproute2, nftables, ipmi_sim (openipmi), ipmitool and fence_ipmilan
//! (fence-agents). Without them the tests print a note and pass, unless CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::bmc::{wall_now, Bmc, MgmtNet};
use common::in_netns;
use tandem::fence::ipmi::client::Client;
use tandem::fence::ipmi::{
    power, power_status, CipherSuite, IpmiError, IpmiTarget, PasswordCheck, PowerAction, PowerState, Privilege, Step,
};

const USER: &str = "admin";
const PASSWORD: &str = "s3cret";

fn ready() -> bool {
    common::require(&["ip", "nft", "ss", "unshare", "ipmi_sim", "ipmitool", "fence_ipmilan"])
}

fn target(addr: SocketAddr, user: &str, password: &str, cipher: CipherSuite) -> IpmiTarget {
    let mut t = IpmiTarget::new(addr, user, password.as_bytes().to_vec(), cipher);
    t.attempt_timeout = Duration::from_millis(500);
    t
}

/// Our client, run from the management network's client namespace.
fn ours_power(net: &MgmtNet, t: &IpmiTarget, action: PowerAction) -> Result<PowerState, IpmiError> {
    let t = t.clone();
    in_netns(net.client.name(), move || power(&t, action, Instant::now() + Duration::from_secs(10)))
}

fn ours_status(net: &MgmtNet, t: &IpmiTarget) -> Result<PowerState, IpmiError> {
    let t = t.clone();
    in_netns(net.client.name(), move || power_status(&t, Instant::now() + Duration::from_secs(10)))
}

/// ipmitool's `chassis power status`: Some(true) on, Some(false) off, None failed.
fn ipmitool_status(net: &MgmtNet, bmc: &Bmc, cipher: u8) -> Option<bool> {
    let o = bmc.ipmitool(net, cipher, USER, &bmc.password, &["chassis", "power", "status"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    if !o.status.success() {
        return None;
    }
    Some(out.contains("is on"))
}

fn last_log(bmc: &Bmc) -> Option<bool> {
    bmc.power_log().last().map(|e| e.on)
}

fn sleeper() -> Vec<&'static str> {
    vec!["sleep", "100000"]
}

#[test]
fn cipher3_off_on_cycle_status_agree_with_ipmitool_and_the_power_log() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let bmc = Bmc::start(&net, "203.0.113.11", USER, PASSWORD, &sleeper());
    let t = target(bmc.socket_addr(), USER, PASSWORD, CipherSuite::Three);

    assert_eq!(ours_status(&net, &t).unwrap(), PowerState::On);
    assert_eq!(ipmitool_status(&net, &bmc, 3), Some(true));

    // Off: confirmed, and everybody agrees.
    let before = wall_now();
    assert_eq!(ours_power(&net, &t, PowerAction::Off).unwrap(), PowerState::Off);
    assert!(!bmc.machine_on());
    let log = bmc.power_log();
    let last = log.last().unwrap();
    assert!(!last.on && last.at >= before, "power log: {log:?}");
    assert_eq!(ipmitool_status(&net, &bmc, 3), Some(false));
    assert_eq!(ours_status(&net, &t).unwrap(), PowerState::Off);

    // Off again: idempotent.
    assert_eq!(ours_power(&net, &t, PowerAction::Off).unwrap(), PowerState::Off);

    // On.
    assert_eq!(ours_power(&net, &t, PowerAction::On).unwrap(), PowerState::On);
    assert!(bmc.machine_on());
    assert_eq!(last_log(&bmc), Some(true));
    assert_eq!(ipmitool_status(&net, &bmc, 3), Some(true));

    // Cycle: ipmi_sim powers off at once and on again a second later.
    let n = bmc.power_log().len();
    ours_power(&net, &t, PowerAction::Cycle).unwrap();
    // The machine may still read "on" before the switch has acted: wait for both entries.
    assert!(
        common::wait_for(Duration::from_secs(5), Duration::from_millis(20), || bmc.power_log().len() >= n + 2),
        "power log after cycle: {:?}",
        bmc.power_log()
    );
    assert!(bmc.wait_machine(true, Duration::from_secs(5)));
    let log = bmc.power_log();
    let tail: Vec<bool> = log[n..].iter().map(|e| e.on).collect();
    assert_eq!(&tail[..2], &[false, true], "power log after cycle: {log:?}");
    assert!(common::wait_for(Duration::from_secs(5), Duration::from_millis(100), || ipmitool_status(&net, &bmc, 3)
        == Some(true)));
    assert_eq!(ours_status(&net, &t).unwrap(), PowerState::On);

    // ipmitool switches, we read.
    let o = bmc.ipmitool(&net, 3, USER, PASSWORD, &["chassis", "power", "off"]);
    assert!(o.status.success(), "{o:?}");
    assert!(bmc.wait_machine(false, Duration::from_secs(5)));
    assert_eq!(ours_status(&net, &t).unwrap(), PowerState::Off);
    let o = bmc.ipmitool(&net, 3, USER, PASSWORD, &["chassis", "power", "on"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(ours_status(&net, &t).unwrap(), PowerState::On);
}

#[test]
fn an_operator_account_fences_at_operator_privilege() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let bmc = Bmc::start(&net, "203.0.113.12", USER, PASSWORD, &sleeper());
    let mut t = target(bmc.socket_addr(), "oper", PASSWORD, CipherSuite::Three);
    t.privilege = Privilege::Operator;
    assert_eq!(ours_power(&net, &t, PowerAction::Off).unwrap(), PowerState::Off);
    assert!(!bmc.machine_on());
    assert_eq!(ours_power(&net, &t, PowerAction::On).unwrap(), PowerState::On);
    assert!(bmc.machine_on());
}

#[test]
fn cipher17_is_refused_by_ipmi_sim_as_by_ipmitool() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let bmc = Bmc::start(&net, "203.0.113.13", USER, PASSWORD, &sleeper());
    let t = target(bmc.socket_addr(), USER, PASSWORD, CipherSuite::Seventeen);
    let e = ours_status(&net, &t).unwrap_err();
    assert_eq!(e, IpmiError::CipherUnsupported { bmc: t.addr, cipher: CipherSuite::Seventeen, status: Some(0x04) });
    eprintln!("cipher 17: {e}");
    let o = bmc.ipmitool(&net, 17, USER, PASSWORD, &["chassis", "power", "status"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid authentication algorithm"), "{o:?}");
    // Nothing was switched.
    assert!(bmc.machine_on());
}

#[test]
fn wrong_password_and_unknown_user_are_refused_distinctly() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let mut bmc = Bmc::start(&net, "203.0.113.14", USER, PASSWORD, &sleeper());
    let addr = bmc.socket_addr();

    let t = target(addr, USER, "wrong", CipherSuite::Three);
    let e = ours_power(&net, &t, PowerAction::Off).unwrap_err();
    assert_eq!(e, IpmiError::WrongPassword { bmc: addr, user: USER.into(), check: PasswordCheck::Rakp2Code });
    assert_eq!(
        e.to_string(),
        "BMC 203.0.113.14:623: wrong password for user 'admin' (RAKP 2 key exchange code did not verify)"
    );
    assert!(!format!("{e} {e:?}").contains("wrong\""));
    let o = bmc.ipmitool(&net, 3, USER, "wrong", &["chassis", "power", "status"]);
    assert!(!o.status.success());

    let t = target(addr, "nobody", PASSWORD, CipherSuite::Three);
    let e = ours_power(&net, &t, PowerAction::Off).unwrap_err();
    assert_eq!(e, IpmiError::UnknownUser { bmc: addr, user: "nobody".into(), status: 0x0d });
    assert!(e.to_string().starts_with("BMC 203.0.113.14:623: user 'nobody' unknown"), "{e}");
    let o = bmc.ipmitool(&net, 3, "nobody", PASSWORD, &["chassis", "power", "status"]);
    assert!(!o.status.success());
    assert!(bmc.machine_on(), "a refused login switched the power");

    // The password changes on the BMC: the old one is now wrong, the new one works.
    bmc.set_password("n3w-pass");
    let old = target(addr, USER, PASSWORD, CipherSuite::Three);
    assert!(matches!(ours_status(&net, &old), Err(IpmiError::WrongPassword { .. })));
    let new = target(addr, USER, "n3w-pass", CipherSuite::Three);
    assert_eq!(ours_status(&net, &new).unwrap(), PowerState::On);
    assert_eq!(ipmitool_status(&net, &bmc, 3), Some(true));
}

#[test]
fn unreachable_bmc_fails_within_the_deadline_and_recovers() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let bmc = Bmc::start(&net, "203.0.113.15", USER, PASSWORD, &sleeper());
    let mut t = target(bmc.socket_addr(), USER, PASSWORD, CipherSuite::Three);
    t.attempt_timeout = Duration::from_millis(300);

    bmc.set_reachable(false);
    for deadline in [Duration::from_millis(2000), Duration::from_millis(500)] {
        let t2 = t.clone();
        let (r, took) = in_netns(net.client.name(), move || {
            let start = Instant::now();
            let r = power(&t2, PowerAction::Off, start + deadline);
            (r, start.elapsed())
        });
        let e = r.unwrap_err();
        assert!(matches!(e, IpmiError::Timeout { step: Step::Capabilities, .. }), "{e:?}");
        assert!(took < deadline + Duration::from_secs(1), "took {took:?} for a {deadline:?} deadline");
        eprintln!("unreachable, deadline {deadline:?}: failed after {took:?}: {e}");
    }
    assert!(bmc.machine_on());

    bmc.set_reachable(true);
    assert_eq!(ours_power(&net, &t, PowerAction::Off).unwrap(), PowerState::Off);
    assert!(!bmc.machine_on());
}

#[test]
fn several_bmcs_and_ipv6() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let a = Bmc::start(&net, "2001:db8:623::21", USER, PASSWORD, &sleeper());
    let b = Bmc::start(&net, "203.0.113.22", USER, "other-pw", &sleeper());
    let ta = target(a.socket_addr(), USER, PASSWORD, CipherSuite::Three);
    let tb = target(b.socket_addr(), USER, "other-pw", CipherSuite::Three);
    assert_eq!(ours_power(&net, &tb, PowerAction::Off).unwrap(), PowerState::Off);
    assert!(!b.machine_on());
    assert!(a.machine_on(), "fencing one BMC's machine touched the other");
    assert_eq!(ours_status(&net, &ta).unwrap(), PowerState::On);

    let t6 = ta;
    assert_eq!(t6.addr.to_string(), "[2001:db8:623::21]:623");
    assert_eq!(ours_power(&net, &t6, PowerAction::Off).unwrap(), PowerState::Off);
    assert!(!a.machine_on());
    assert_eq!(ours_power(&net, &t6, PowerAction::On).unwrap(), PowerState::On);
}

#[test]
fn fence_ipmilan_drives_the_rig() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let bmc = Bmc::start(&net, "203.0.113.16", USER, PASSWORD, &sleeper());
    let o = bmc.fence_ipmilan(&net, "status", 3);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Status: ON"), "{o:?}");
    let o = bmc.fence_ipmilan(&net, "off", 3);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Success: Powered OFF"), "{o:?}");
    assert!(!bmc.machine_on());
    let t = target(bmc.socket_addr(), USER, PASSWORD, CipherSuite::Three);
    assert_eq!(ours_status(&net, &t).unwrap(), PowerState::Off);
    let o = bmc.fence_ipmilan(&net, "on", 3);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Success: Powered ON"), "{o:?}");
    assert!(bmc.machine_on());
}

/// Time from "power off" requested to "off" confirmed: ours against ipmitool and
/// fence_ipmilan on the same BMC. Printed, not asserted (the machine is shared).
#[test]
fn measure_power_off() {
    if !ready() {
        return;
    }
    let net = MgmtNet::new();
    let bmc = Bmc::start(&net, "203.0.113.17", USER, PASSWORD, &sleeper());
    let t = target(bmc.socket_addr(), USER, PASSWORD, CipherSuite::Three);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let runs = 5;
    let (mut ours, mut ours_setup, mut tool_off, mut tool_off_status, mut fence) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut switch = vec![];
    for _ in 0..runs {
        // The rig's power switch alone (a shell script ipmi_sim runs for each Chassis Control
        // and each Get Chassis Status).
        assert!(bmc.power_script(&["set", "power", "1"]).status.success());
        let start = Instant::now();
        assert!(bmc.power_script(&["set", "power", "0"]).status.success());
        switch.push(ms(start.elapsed()));
        assert!(!bmc.machine_on());

        assert!(bmc.power_script(&["set", "power", "1"]).status.success());
        let t2 = t.clone();
        let (took, setup) = in_netns(net.client.name(), move || {
            let start = Instant::now();
            let c = Client::connect(&t2, start + Duration::from_secs(10)).unwrap();
            let setup = start.elapsed();
            drop(c);
            let start = Instant::now();
            assert_eq!(power(&t2, PowerAction::Off, start + Duration::from_secs(10)).unwrap(), PowerState::Off);
            (start.elapsed(), setup)
        });
        assert!(!bmc.machine_on());
        ours.push(ms(took));
        ours_setup.push(ms(setup));

        assert!(bmc.power_script(&["set", "power", "1"]).status.success());
        let start = Instant::now();
        let o = bmc.ipmitool(&net, 3, USER, PASSWORD, &["chassis", "power", "off"]);
        let off = start.elapsed();
        assert!(o.status.success());
        assert_eq!(ipmitool_status(&net, &bmc, 3), Some(false));
        tool_off.push(ms(off));
        tool_off_status.push(ms(start.elapsed()));

        assert!(bmc.power_script(&["set", "power", "1"]).status.success());
        let start = Instant::now();
        let o = bmc.fence_ipmilan(&net, "off", 3);
        assert!(String::from_utf8_lossy(&o.stdout).contains("Success: Powered OFF"), "{o:?}");
        fence.push(ms(start.elapsed()));
    }
    eprintln!("power off, request -> confirmed off, ipmi_sim in a namespace, median of {runs} (ms):");
    eprintln!(
        "  tandem built-in client (session + off + status + close): {:.1}  (session setup alone {:.1})",
        median(ours.clone()),
        median(ours_setup)
    );
    eprintln!("  ipmitool lanplus 'chassis power off' (no confirmation):   {:.1}", median(tool_off));
    eprintln!("  ipmitool 'power off' then 'power status':                 {:.1}", median(tool_off_status));
    eprintln!("  fence_ipmilan action=off (stdin protocol):                {:.1}", median(fence));
    eprintln!("  the rig's power switch script alone, 'set power 0':    {:.1}", median(switch));
    eprintln!("  tandem runs: {ours:?}");
}

/// Cipher suite 17 end to end. ipmi_sim has no SHA256, so the BMC is our own small RMCP+
/// responder (tests/common/rmcp_bmc.rs); ipmitool, an independent implementation, checks it
/// first: it must accept its RAKP 2 and RAKP 4 and exchange encrypted, authenticated
/// commands with it. Then our client drives the same BMC.
#[test]
fn cipher17_against_an_rmcp_bmc_that_ipmitool_accepts() {
    if !ready() {
        return;
    }
    use common::rmcp_bmc::RmcpBmc;
    let net = MgmtNet::new();
    let ns = common::Netns::new(format!("tbmc{}", common::unique()));
    net.attach(ns.name(), "mgmt0", "203.0.113.31/24");
    let bmc = RmcpBmc::start(ns.name(), "203.0.113.31", USER, PASSWORD, &[CipherSuite::Seventeen]);
    let tool = |pw: &str, args: &[&str]| {
        let mut v = vec!["ipmitool", "-N", "1", "-R", "2", "-I", "lanplus", "-C", "17", "-H", "203.0.113.31"];
        v.extend_from_slice(&["-U", USER, "-P", pw]);
        v.extend_from_slice(args);
        net.client_cmd(&v).output().unwrap()
    };

    let o = tool(PASSWORD, &["chassis", "power", "status"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Chassis Power is on"), "{o:?}");
    if let Ok(path) = std::env::var("TANDEM_IPMI_CAPTURE") {
        std::fs::write(path, bmc.exchange()).unwrap();
    }
    let o = tool(PASSWORD, &["chassis", "power", "off"]);
    assert!(o.status.success(), "{o:?}");
    assert!(!bmc.power_on());
    let o = tool("wrong", &["chassis", "power", "status"]);
    assert!(!o.status.success(), "ipmitool accepted a wrong password");

    let t = target(bmc.addr, USER, PASSWORD, CipherSuite::Seventeen);
    assert_eq!(ours_status(&net, &t).unwrap(), PowerState::Off);
    assert_eq!(ours_power(&net, &t, PowerAction::On).unwrap(), PowerState::On);
    assert!(bmc.power_on());
    let o = tool(PASSWORD, &["chassis", "power", "status"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Chassis Power is on"), "{o:?}");
    assert_eq!(ours_power(&net, &t, PowerAction::Off).unwrap(), PowerState::Off);
    assert!(!bmc.power_on());

    let e = ours_status(&net, &target(bmc.addr, USER, "wrong", CipherSuite::Seventeen)).unwrap_err();
    assert!(matches!(e, IpmiError::WrongPassword { check: PasswordCheck::Rakp2Code, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "BMC 203.0.113.31:623: wrong password for user 'admin' (RAKP 2 key exchange code did not verify)"
    );
    let e = ours_status(&net, &target(bmc.addr, "nobody", PASSWORD, CipherSuite::Seventeen)).unwrap_err();
    assert!(matches!(e, IpmiError::UnknownUser { .. }), "{e:?}");
    assert!(e.to_string().starts_with("BMC 203.0.113.31:623: user 'nobody' unknown"), "{e}");
    // Suite 3 is not offered by this BMC.
    let e = ours_status(&net, &target(bmc.addr, USER, PASSWORD, CipherSuite::Three)).unwrap_err();
    assert!(matches!(e, IpmiError::CipherUnsupported { status: Some(0x11), .. }), "{e:?}");
    let st = bmc.state.lock().unwrap();
    assert_eq!(st.closed, st.sessions, "every session of ours and ipmitool's was closed");
}

/// Lost requests: a lost RAKP 1 restarts the handshake, a lost Chassis Control is sent
/// again (new session sequence number, same IPMI sequence number) and switches once, and a
/// BMC that stops answering fails at the step it stopped in.
#[test]
fn lost_requests_are_retransmitted() {
    if !ready() {
        return;
    }
    use common::rmcp_bmc::RmcpBmc;
    use tandem::fence::ipmi::packet::{cmd, payload};
    let net = MgmtNet::new();
    let ns = common::Netns::new(format!("tbmc{}", common::unique()));
    net.attach(ns.name(), "mgmt0", "203.0.113.32/24");
    let bmc = RmcpBmc::start(ns.name(), "203.0.113.32", USER, PASSWORD, &[CipherSuite::Three, CipherSuite::Seventeen]);
    let mut t = target(bmc.addr, USER, PASSWORD, CipherSuite::Three);
    t.attempt_timeout = Duration::from_millis(200);
    let timed = |t: &IpmiTarget, action: Option<PowerAction>| {
        let t = t.clone();
        in_netns(net.client.name(), move || {
            let start = Instant::now();
            let deadline = start + Duration::from_secs(3);
            let r = match action {
                Some(a) => power(&t, a, deadline),
                None => power_status(&t, deadline),
            };
            (r, start.elapsed())
        })
    };

    // First contact (neighbour resolution, the BMC's thread scheduled) at the usual attempt
    // timeout: on a loaded host it can take longer than the 200 ms attempts below.
    assert_eq!(ours_status(&net, &target(bmc.addr, USER, PASSWORD, CipherSuite::Three)).unwrap(), PowerState::On);
    assert_eq!(bmc.state.lock().unwrap().lost, 0);

    bmc.lose(payload::RAKP1, None, 1);
    let (r, took) = timed(&t, None);
    assert_eq!(r.unwrap(), PowerState::On);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert_eq!(bmc.state.lock().unwrap().lost, 1);

    bmc.lose(payload::IPMI, Some(cmd::CHASSIS_CONTROL), 1);
    let (r, took) = timed(&t, Some(PowerAction::Off));
    assert_eq!(r.unwrap(), PowerState::Off);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    let st = bmc.state.lock().unwrap();
    assert_eq!((st.lost, st.log.len()), (2, 1), "the power was switched once: {:?}", st.log);
    drop(st);

    bmc.lose(payload::IPMI, Some(cmd::GET_CHASSIS_STATUS), 3);
    let (r, took) = timed(&t, None);
    let e = r.unwrap_err();
    assert_eq!(e, IpmiError::Timeout { bmc: t.addr, step: Step::ChassisStatus, attempts: 3 });
    assert!(took >= Duration::from_millis(600) && took < Duration::from_millis(1500), "{took:?}");
    eprintln!("lost status requests: {e} after {took:?}");
}
