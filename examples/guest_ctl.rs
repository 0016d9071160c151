//! A small command line over the guest API, for the integration tests (`tests/guest.rs`)
//! until `tandem guest …` carries the same calls.
//!
//! ```text
//! guest_ctl [--run-dir DIR] [--cgroup-parent NAME] start  NAME::ROOTDIR[::KEY=VALUE…]
//! guest_ctl [...] stop   NAME::ROOTDIR[::…]      (through the agent: stop_timeout of the spec)
//! guest_ctl [...] status NAME::ROOTDIR[::…]      exit 0 running, 3 stopped
//! guest_ctl [...] list
//! guest_ctl [...] enter  NAME CMD [ARG…]          exit code of CMD
//! guest_ctl [...] addr   NAME ADDR/PREFIX         add to a private guest's eth0, send gratuitous ARPs
//! guest_ctl [...] cgroups NAME                    the guest's cgroup directories
//! ```
//! start/stop/status go through the `guest` agent exactly as the daemon's forked child does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test tool

use std::path::PathBuf;
use std::process::ExitCode;

use tandem::agent::guest::{add_address, garp, GuestAgent};
use tandem::agent::{Agent, Op, Outcome};
use tandem::guest::Guests;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut run_dir = PathBuf::from(tandem::guest::RUN_DIR);
    let mut parent = tandem::guest::CGROUP_PARENT.to_string();
    while args.first().is_some_and(|a| a.starts_with("--")) {
        let flag = args.remove(0);
        let value = if args.is_empty() { String::new() } else { args.remove(0) };
        match flag.as_str() {
            "--run-dir" => run_dir = PathBuf::from(value),
            "--cgroup-parent" => parent = value,
            _ => return usage(),
        }
    }
    let guests = Guests::with_dirs(&run_dir, &parent);
    let Some(cmd) = args.first().cloned() else { return usage() };
    let rest: Vec<String> = args.get(1..).unwrap_or(&[]).to_vec();
    match (cmd.as_str(), rest.first()) {
        ("start" | "stop" | "status", Some(word)) => {
            let word = word.strip_prefix("guest::").unwrap_or(word);
            let text = format!("guest::{word}");
            let spec = match tandem::config::parse_resource(&text).map(|r| r.spec) {
                Ok(tandem::config::ResourceSpec::Guest(g)) => g,
                Ok(_) => unreachable!("guest:: parses as a guest"),
                Err(e) => {
                    eprintln!("{text}: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut a = GuestAgent::new(&spec, &text).with_guests(guests);
            let op = Op::parse(&cmd).unwrap();
            match a.run(op) {
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
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        ("list", None) => {
            for g in guests.list() {
                println!(
                    "{} {} init={} memory={} pids={} ended={}",
                    g.name,
                    g.state.name(),
                    g.init_pid.map_or("-".to_string(), |p| p.to_string()),
                    g.memory_bytes.map_or("-".to_string(), |p| p.to_string()),
                    g.pids.map_or("-".to_string(), |p| p.to_string()),
                    g.ended.as_deref().unwrap_or("-").replace(' ', "_"),
                );
            }
            ExitCode::SUCCESS
        }
        ("enter", Some(name)) => match guests.enter(name, rest.get(1..).unwrap_or(&[])) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(125)
            }
        },
        ("addr", Some(name)) => {
            let Some((a, p)) = rest.get(1).and_then(|s| s.split_once('/')) else { return usage() };
            let addr = a.parse().unwrap();
            let idx = match add_address(&guests, name, addr, p.parse().unwrap()) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            if let Err(e) = garp(&guests, name, idx, addr) {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        ("cgroups", Some(name)) => match guests.cgroups(name) {
            Ok(dirs) => {
                for d in dirs {
                    println!("{}", d.to_line());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: guest_ctl [--run-dir DIR] [--cgroup-parent NAME] start|stop|status SPEC | list | enter NAME CMD… | addr NAME ADDR/PREFIX | cgroups NAME");
    ExitCode::from(2)
}
