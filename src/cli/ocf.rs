//! `tandem ocf AGENT ACTION`, and the binary called as `/usr/lib/ocf/resource.d/tandem/AGENT`:
//! tandem's agents under the OCF resource agent API. The parameters come from
//! `OCF_RESKEY_*` (read by [`crate::agent::ocf::ra`] into the same specs as the configuration
//! file's words), the deadline from `OCF_RESKEY_CRM_meta_timeout`, and the exit code is an
//! OCF one. Messages go to stderr.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::agent::ocf::ra::{self, Action, SetupError};
use crate::agent::ocf::OcfCode;
use crate::agent::{self, AgentError, Op, Outcome};
use crate::config::{Resource, Timeouts};
use crate::time::Duration;

/// The agent name when the binary was called through a link in an OCF provider directory
/// named `tandem` (`…/resource.d/tandem/ip`), busybox style.
pub fn agent_of_argv0(argv0: &str) -> Option<&'static str> {
    let p = Path::new(argv0);
    let dir = p.parent()?.file_name()?;
    if dir != ra::PROVIDER {
        return None;
    }
    let name = p.file_name()?.to_str()?;
    ra::find(name).map(|r| r.name)
}

fn usage(agent: &str) -> String {
    format!("usage: {agent} meta-data|validate-all|start|stop|monitor (OCF resource agent; parameters in OCF_RESKEY_*)")
}

/// `tandem ocf info PROVIDER:TYPE[::NAME=VALUE…]`: what an installed OCF agent's meta-data
/// says of its parameters (required, default, the value given). Exit 0, or 2 when the agent
/// cannot be asked or a required parameter of the given ones is missing.
pub fn info(word: &str) -> i32 {
    let args: Vec<&str> = word.split("::").collect();
    let spec = match crate::config::OcfSpec::parse(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tandem ocf info: {word}: {e}");
            return 2;
        }
    };
    let text = format!("ocf::{word}");
    let a = match crate::agent::ocf::OcfAgent::new(&spec, &text, "info") {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tandem ocf info: {e}");
            return 2;
        }
    };
    let md = match a.meta_data().map_err(|e| e.to_string()).and_then(|x| crate::agent::ocf::metadata::parse(&x)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("tandem ocf info: {}: meta-data: {e}", spec.agent_name());
            return 2;
        }
    };
    let t = crate::agent::ocf::describe(&md, &spec);
    print!("{t}");
    if t.lines().any(|l| l.starts_with("error: ")) {
        2
    } else {
        0
    }
}

/// Runs one OCF action of tandem's agent `agent`; returns the OCF exit code.
pub fn run(agent: &str, action: Option<&str>) -> i32 {
    let Some(ra) = ra::find(agent) else {
        let names: Vec<&str> = ra::AGENTS.iter().map(|a| a.name).collect();
        eprintln!("tandem ocf: unknown agent {agent:?} (one of {})", names.join(", "));
        return OcfCode::ErrConfigured.code();
    };
    let Some(action_word) = action else {
        eprintln!("{}", usage(agent));
        return OcfCode::ErrArgs.code();
    };
    let action = Action::parse(action_word);
    let code = match action {
        Action::MetaData => {
            print!("{}", ra.meta_data());
            OcfCode::Success
        }
        Action::Usage => {
            println!("{}", usage(agent));
            OcfCode::Success
        }
        Action::Unimplemented => {
            eprintln!("{agent}: action {action_word:?} is not implemented");
            OcfCode::ErrUnimplemented
        }
        Action::ValidateAll | Action::Start | Action::Stop | Action::Monitor => act(ra, action),
    };
    code.code()
}

/// The `OCF_RESKEY_*` variables, without the prefix.
fn reskeys() -> Result<Vec<(String, String)>, String> {
    let mut v = Vec::new();
    for (k, val) in std::env::vars_os() {
        let Some(name) = k.as_bytes().strip_prefix(b"OCF_RESKEY_") else { continue };
        let name = String::from_utf8(name.to_vec()).map_err(|_| "a parameter name is not UTF-8".to_string())?;
        let val = val.into_string().map_err(|_: OsString| format!("the value of parameter '{name}' is not UTF-8"))?;
        v.push((name, val));
    }
    v.sort();
    Ok(v)
}

/// The op's deadline: `OCF_RESKEY_CRM_meta_timeout` (ms), else tandem's default.
fn timeouts() -> Timeouts {
    let ms = std::env::var("OCF_RESKEY_CRM_meta_timeout").ok().and_then(|v| v.trim().parse::<u64>().ok());
    match ms.filter(|&m| m > 0) {
        Some(ms) => {
            let d = Duration::from_millis(ms);
            Timeouts { start: d, stop: d, status: d }
        }
        None => Timeouts::default(),
    }
}

fn act(ra: &'static ra::Ra, action: Action) -> OcfCode {
    let instance = std::env::var("OCF_RESOURCE_INSTANCE").unwrap_or_else(|_| ra.name.to_string());
    let who = format!("ocf:tandem:{} {instance}", ra.name);
    let fail = |e: SetupError| {
        let code = ra::setup_code(action, &e);
        let msg = match &e {
            SetupError::Params(m) | SetupError::Host(m) | SetupError::Missing(m) | SetupError::Unsupported(m) => m,
        };
        eprintln!("{who}: {msg}");
        code
    };
    let cfg = match reskeys().and_then(|v| ra.parse_params(&v)) {
        Ok(c) => c,
        Err(m) => return fail(SetupError::Params(m)),
    };
    let res = Resource { spec: cfg.spec.clone(), text: who.clone() };
    let mut a = match agent::build(&res, &timeouts()) {
        Ok(a) => a,
        Err(e @ AgentError::Unsupported(_)) => return fail(SetupError::Unsupported(e.to_string())),
        Err(e @ AgentError::Unavailable(_)) => return fail(SetupError::Missing(e.to_string())),
        Err(e) => return fail(SetupError::Host(e.to_string())),
    };
    let op = match action {
        Action::ValidateAll => return OcfCode::Success,
        Action::Start => Op::Start,
        Action::Stop => Op::Stop,
        _ => Op::Status,
    };
    let r = a.run(op).map(|o| o == Outcome::Running);
    if let Err(e) = &r {
        eprintln!("{who}: {}: {e}", agent::ocf::action(op));
    }
    let code = ra::result_code(action, &r);
    if code == OcfCode::Success && op == Op::Start {
        if let Some(ann) = a.garp() {
            send_garps(&who, &ann, cfg.arp_count, cfg.arp_interval);
        }
    }
    code
}

/// The first gratuitous ARP now, the others from a background child, so that `start` returns
/// as soon as the address is usable (the cluster manager starts the next resource then), as
/// the daemon spaces them with its timers. Without a child, all of them here.
fn send_garps(who: &str, ann: &agent::ip::GarpTarget, count: u32, interval: Duration) {
    if count == 0 {
        return;
    }
    if let Err(e) = super::send_garps(ann, 1, interval) {
        eprintln!("{who}: announce {}: {e}", ann.addr);
        return;
    }
    if count == 1 {
        return;
    }
    let rest = count - 1;
    // The child forks once more: its own child has no parent-death signal (the runner's
    // children are killed with their parent; this one must outlive `tandem ocf`).
    let mut later = || match crate::sys::rt::fork() {
        Ok(crate::sys::rt::Forked::Parent { .. }) => 0,
        Ok(crate::sys::rt::Forked::Child) | Err(_) => {
            std::thread::sleep(interval);
            i32::from(super::send_garps(ann, rest, interval).is_err())
        }
    };
    let spawned = std::fs::File::open("/dev/null").map_err(|_| nix::errno::Errno::EIO).and_then(|null| {
        use std::os::fd::AsFd;
        crate::sys::process::spawn_child(null.as_fd(), null.as_fd(), crate::sys::process::ChildAction::Run(&mut later))
    });
    match spawned {
        // The child forks its own and exits at once: wait for that, or this process's exit
        // would kill it (parent-death signal) before it has forked.
        Ok(pid) => {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        Err(_) => {
            std::thread::sleep(interval);
            if let Err(e) = super::send_garps(ann, rest, interval) {
                eprintln!("{who}: announce {}: {e}", ann.addr);
            }
        }
    }
}
