//! Test-only runner for the storage agents, used inside the QEMU rig (tests/vm/run.sh)
//! until `tandem agent` lands on main. Not part of the daemon.
//!
//! `storage_agent TYPE::ARG[::ARG…] start|stop|status` prints `running`/`stopped` and exits
//! 0 (status: 0 running, 3 stopped), or prints the error and exits 1.
//! `storage_agent drbd-probe RESOURCE` sends the GET_STATUS dump with and without
//! DRBD_GENLA_F_MANDATORY on ctx_resource_name and prints what the module answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test
use std::process::ExitCode;

use tandem::agent::drbd::DrbdAgent;
use tandem::agent::lvm::LvmAgent;
use tandem::agent::mount::MountAgent;
use tandem::agent::{Agent, Op, Outcome};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (spec, op) = match args.as_slice() {
        [spec, op] => (spec.as_str(), op.as_str()),
        _ => {
            eprintln!("usage: storage_agent TYPE::ARG[::ARG…] start|stop|status");
            return ExitCode::from(2);
        }
    };
    if spec == "drbd-probe" {
        return probe(op);
    }
    let Some(op) = Op::parse(op) else {
        eprintln!("unknown operation {op}");
        return ExitCode::from(2);
    };
    let mut parts = spec.split("::");
    let kind = parts.next().unwrap_or("");
    let rest: Vec<String> = parts.map(str::to_string).collect();
    let tries =
        std::env::var("DRBD_TRIES").ok().and_then(|s| s.parse().ok()).unwrap_or(tandem::agent::drbd::PROMOTE_TRIES);
    let agent: Result<Box<dyn Agent>, _> = match kind {
        "drbd" => DrbdAgent::new(&rest, spec)
            .map(|a| Box::new(a.with_retry(tries, tandem::agent::drbd::RETRY_DELAY)) as Box<dyn Agent>),
        "mount" => MountAgent::new(&rest, spec).map(|a| Box::new(a) as Box<dyn Agent>),
        "lvm" => LvmAgent::new(&rest, spec).map(|a| Box::new(a) as Box<dyn Agent>),
        _ => {
            eprintln!("unknown type {kind}");
            return ExitCode::from(2);
        }
    };
    let mut agent = match agent {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{spec}: {e}");
            return ExitCode::from(2);
        }
    };
    if kind == "drbd" {
        if let Ok(mut d) = DrbdAgent::new(&rest, spec) {
            match d.query() {
                Ok(v) => v.iter().for_each(|v| println!("{spec}: {v}")),
                Err(e) => println!("{spec}: query: {e}"),
            }
        }
    }
    match agent.run(op) {
        Ok(Outcome::Running) => {
            println!("running");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Stopped) => {
            println!("stopped");
            if op == Op::Status {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            println!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn probe(resource: &str) -> ExitCode {
    use tandem::agent::drbd::{DrbdRequest, Reply};
    use tandem::netlink::{NlSocket, Protocol};
    let mut d = match DrbdAgent::new(&[resource.to_string()], "probe") {
        Ok(d) => d,
        Err(e) => {
            println!("probe: {e}");
            return ExitCode::from(1);
        }
    };
    // Resolves and caches the family.
    if let Err(e) = d.query() {
        println!("probe: {e}");
        return ExitCode::from(1);
    }
    let (family, version) = match d.family() {
        Some(f) => f,
        None => return ExitCode::from(1),
    };
    println!("probe: family drbd id={family} version={version}");
    let mut ok = true;
    // The agent's encoding (both flags) must work; the others are reported for the record.
    for (mandatory, nested) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut req = DrbdRequest::status_dump(family, version, resource);
        req.mandatory = mandatory;
        req.nested_flag = nested;
        let agents = mandatory && nested;
        let mut n = 0;
        let res = NlSocket::new(Protocol::Generic).and_then(|mut s| {
            s.request("probe get-status", &req, |m| {
                let r = Reply::parse(m.payload())?;
                n += 1;
                println!(
                    "probe: mandatory={mandatory} nested={nested} minor={} ret={} state={:?}",
                    r.minor,
                    r.ret_code,
                    r.state.map(|s| s.to_string())
                );
                Ok(())
            })
        });
        match res {
            Ok(()) if n > 0 => {
                println!("probe: mandatory={mandatory} nested={nested} accepted ({n} volume(s))")
            }
            Ok(()) => {
                println!("probe: mandatory={mandatory} nested={nested} no volumes");
                ok &= !agents;
            }
            Err(e) => {
                println!("probe: mandatory={mandatory} nested={nested} error: {e}");
                ok &= !agents;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
