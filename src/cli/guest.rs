//! `tandem guest list | enter NAME [CMD…] | start NAME | stop NAME`: administer the guests of
//! this host. `start` and `stop` are for guests outside a running group (preparing one):
//! the spec comes from the configuration's `guest::NAME::…` resource.

use std::path::Path;

use crate::config::ResourceSpec;
use crate::guest::{GuestState, Guests};

/// Runs the command; returns the exit code.
pub fn run(config: &Path, node: Option<&str>, words: &[String]) -> i32 {
    let guests = Guests::system();
    match words {
        [cmd] if cmd == "list" => list(&guests),
        [cmd, name, rest @ ..] if cmd == "enter" => match guests.enter(name, rest) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("tandem: guest {name}: {e}");
                1
            }
        },
        [cmd, name] if cmd == "start" || cmd == "stop" => {
            let Some(spec) = spec_from_config(config, node, name) else { return 2 };
            let r = if cmd == "start" {
                guests.start(&spec).map(|pid| println!("guest {name}: running (init pid {pid})"))
            } else {
                guests.stop(name, Some(spec.stop_timeout)).map(|()| println!("guest {name}: stopped"))
            };
            match r {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("tandem: guest {name}: {cmd}: {e}");
                    1
                }
            }
        }
        _ => {
            eprintln!("tandem: usage: tandem guest list | enter NAME [CMD...] | start NAME | stop NAME");
            2
        }
    }
}

fn list(guests: &Guests) -> i32 {
    let all = guests.list();
    println!("{:<16} {:<8} {:>8} {:>12} {:>6}  LAST END", "NAME", "STATE", "INIT", "MEMORY", "PIDS");
    for g in &all {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_string());
        println!(
            "{:<16} {:<8} {:>8} {:>12} {:>6}  {}",
            g.name,
            g.state.name(),
            g.init_pid.map(|p| p.to_string()).unwrap_or_else(|| "-".to_string()),
            opt(g.memory_bytes),
            opt(g.pids),
            if g.state == GuestState::Stopped { g.ended.as_deref().unwrap_or("") } else { "" }
        );
    }
    0
}

/// The spec of guest `name` from the configuration's groups.
fn spec_from_config(config: &Path, node: Option<&str>, name: &str) -> Option<crate::config::GuestSpec> {
    let cfg = match crate::load::load(config, node) {
        Ok((c, _)) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("tandem: {e}");
            }
            return None;
        }
    };
    let found = cfg.groups.iter().flat_map(|g| &g.resources).find_map(|r| match &r.spec {
        ResourceSpec::Guest(g) if g.name == name => Some(g.clone()),
        _ => None,
    });
    if found.is_none() {
        eprintln!("tandem: no guest named {name:?} in {}", config.display());
    }
    found
}
