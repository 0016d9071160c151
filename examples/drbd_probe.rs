//! Test-only probe used inside the QEMU rig (tests/vm/run.sh): `drbd_probe RESOURCE` sends
//! the GET_STATUS dump with and without DRBD_GENLA_F_MANDATORY on ctx_resource_name and
//! prints what the module answers. Not part of the daemon.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test
use std::process::ExitCode;

use tandem::agent::drbd::DrbdAgent;
use tandem::config::DrbdSpec;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [resource] => probe(resource),
        _ => {
            eprintln!("usage: drbd_probe RESOURCE");
            ExitCode::from(2)
        }
    }
}

fn probe(resource: &str) -> ExitCode {
    use tandem::agent::drbd::{DrbdRequest, Reply};
    use tandem::netlink::{NlSocket, Protocol};
    let mut d = DrbdAgent::new(&DrbdSpec { resource: resource.to_string() }, "probe");
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
