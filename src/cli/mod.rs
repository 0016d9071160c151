//! The commands: argv → subcommand, and the commands that combine layers (check-config needs
//! the config, the host and the agents; `agent` runs one agent by hand). Exit codes: 0 success,
//! 1 operation failed, 2 usage or config error, 3 not running.

mod args;
mod check;
pub mod export;
mod fence;
mod guest;
pub mod hb;
mod ocf;

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::{self, Op, Outcome};
use crate::ctl::{self, CtlError, Request};
use crate::daemon::{self, Options};
use args::{parse_args, Args};
pub use check::check_config;

const USAGE: &str = "usage:
  tandem daemon   [-c CONFIG | --ha-d DIR] [--node NAME] [--socket PATH] [--state-dir DIR] [--foreground] [--pidfile PATH]
  tandem status   [-s SOCKET] [--json | --prometheus [--listen ADDR:PORT]]
  tandem standby  [-s SOCKET] [GROUP|all]
  tandem takeover [-s SOCKET] [GROUP|all]
  tandem check-config [-c CONFIG | --ha-d DIR] [--node NAME]
  tandem keygen   [FILE]
  tandem agent    TYPE::ARG::ARG... start|stop|status
  tandem fence-peer [-s SOCKET] [RESOURCE]
  tandem cleanup  [-s SOCKET] GROUP|all [NODE]
  tandem fence    [-s SOCKET] [-c CONFIG] [--node NAME] [--local|--check] NODE
  tandem fenced   [-s SOCKET] NODE
  tandem guest    [-c CONFIG] list | enter NAME [CMD...] | start NAME | stop NAME
  tandem ocf      ip|drbd|mount|lvm|script|guest ACTION   # OCF resource agent (OCF_RESKEY_*)
  tandem ocf      info PROVIDER:TYPE[::NAME=VALUE...]      # an installed OCF agent's parameters
  tandem export   pacemaker [-c CONFIG] [--crm]
  tandem version
  hb_standby [all|foreign|local|failback], hb_takeover [...], cl_status SUBCOMMAND
                  (heartbeat's commands: links to this binary by those names)
";

/// The default configuration: /etc/tandem/tandem.conf, or heartbeat's /etc/ha.d when there is
/// no tandem.conf and there is an /etc/ha.d/ha.cf (a heartbeat node replaced in place).
pub fn default_config() -> PathBuf {
    let tandem = PathBuf::from(crate::daemon::DEFAULT_CONFIG);
    let ha_d = std::path::Path::new(crate::config::hacompat::HA_D);
    if !tandem.exists() && ha_d.join(crate::config::hacompat::HA_CF).exists() {
        return ha_d.to_path_buf();
    }
    tandem
}

/// The configuration an `-c FILE` / `--ha-d DIR` pair names (`--ha-d` wins; neither: the
/// default). A directory is read as heartbeat's.
fn config_of(a: &Args) -> PathBuf {
    a.get(&["--ha-d"]).or_else(|| a.get(&["-c", "--config"])).map(PathBuf::from).unwrap_or_else(default_config)
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("tandem: {msg}");
    eprint!("{USAGE}");
    2
}

/// Runs the program with its whole argv, as invoked: as `/usr/lib/ocf/resource.d/tandem/AGENT`
/// (a link to the binary) it is that OCF agent; by heartbeat's command names (`hb_standby`,
/// `hb_takeover`, `cl_status`, links too) it is that command; otherwise `tandem COMMAND …`.
pub fn main(argv: Vec<String>) -> i32 {
    let mut it = argv.into_iter();
    let argv0 = it.next().unwrap_or_default();
    let rest: Vec<String> = it.collect();
    if let Some(agent) = ocf::agent_of_argv0(&argv0) {
        return ocf::run(agent, rest.first().map(String::as_str));
    }
    let base = std::path::Path::new(&argv0).file_name().and_then(|n| n.to_str()).unwrap_or("");
    if hb::NAMES.contains(&base) {
        return hb::run(base, &argv0, &rest);
    }
    run(rest)
}

/// Runs one command line (without the program name); returns the exit code.
pub fn run(argv: Vec<String>) -> i32 {
    let Some(cmd) = argv.first() else {
        return usage_error("no command given");
    };
    let rest = argv.get(1..).unwrap_or(&[]);
    match cmd.as_str() {
        "daemon" => cmd_daemon(rest),
        "status" => cmd_status(rest),
        "standby" | "takeover" => cmd_move(cmd, rest),
        "check-config" => cmd_check(rest),
        "keygen" => cmd_keygen(rest),
        "agent" => cmd_agent(rest),
        "fence-peer" => cmd_fence_peer(rest),
        "fence" => fence::cmd_fence(rest),
        "cleanup" => cmd_cleanup(rest),
        "fenced" => fence::cmd_fenced(rest),
        "guest" => cmd_guest(rest),
        "export" => export::command(rest),
        "ocf" => match rest {
            [info, word] if info == "info" => ocf::info(word),
            [agent] => ocf::run(agent, None),
            [agent, action] => ocf::run(agent, Some(action)),
            _ => usage_error("ocf needs AGENT and ACTION"),
        },
        "version" | "--version" | "-V" => {
            println!("tandem {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            0
        }
        other => usage_error(&format!("unknown command {other:?}")),
    }
}

fn cmd_daemon(rest: &[String]) -> i32 {
    let a = match parse_args(
        rest,
        &["-c", "--config", "--ha-d", "--node", "--socket", "-s", "--state-dir", "--pidfile"],
        &["--foreground", "-f"],
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if !a.words.is_empty() {
        return usage_error("daemon takes no arguments");
    }
    let mut o = Options { config: config_of(&a), ..Options::default() };
    o.node = a.get(&["--node"]);
    o.socket = a.get(&["--socket", "-s"]).map(PathBuf::from);
    o.state_dir = a.get(&["--state-dir"]).map(PathBuf::from);
    if let Some(p) = a.get(&["--pidfile"]) {
        o.pidfile = PathBuf::from(p);
    }
    o.foreground = a.has("--foreground") || a.has("-f");
    daemon::main(o)
}

fn socket_of(a: &Args) -> PathBuf {
    a.get(&["-s", "--socket"]).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(daemon::DEFAULT_SOCKET))
}

fn call(a: &Args, req: &Request, timeout: Duration) -> i32 {
    match ctl::client::call(&socket_of(a), req, timeout) {
        Ok((code, body)) => {
            if code == 0 {
                print!("{body}");
            } else {
                eprint!("tandem: {body}");
            }
            code
        }
        Err(e @ CtlError::NotRunning { .. }) => {
            eprintln!("tandem: {e}");
            3
        }
        Err(e) => {
            eprintln!("tandem: {e}");
            1
        }
    }
}

fn cmd_status(rest: &[String]) -> i32 {
    let a = match parse_args(rest, &["-s", "--socket", "--listen"], &["--json", "--prometheus"]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if !a.words.is_empty() {
        return usage_error("status takes no arguments");
    }
    let prometheus = a.has("--prometheus");
    if prometheus && a.has("--json") {
        return usage_error("status: --json and --prometheus exclude each other");
    }
    let req = match (prometheus, a.get(&["--listen"])) {
        (true, Some(addr)) => Request::MetricsListen(addr),
        (false, Some(_)) => return usage_error("status: --listen goes with --prometheus"),
        (true, None) => Request::Metrics,
        (false, None) => Request::Status { json: a.has("--json") },
    };
    call(&a, &req, Duration::from_secs(5))
}

fn cmd_move(cmd: &str, rest: &[String]) -> i32 {
    let a = match parse_args(rest, &["-s", "--socket"], &[]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if a.words.len() > 1 {
        return usage_error(&format!("{cmd} takes at most one group name"));
    }
    let g = a.words.first().cloned().unwrap_or_else(|| "all".to_string());
    let req = if cmd == "standby" { Request::Standby(g) } else { Request::Takeover(g) };
    call(&a, &req, Duration::from_secs(5))
}

fn cmd_check(rest: &[String]) -> i32 {
    let a = match parse_args(rest, &["-c", "--config", "--ha-d", "--node"], &[]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if !a.words.is_empty() {
        return usage_error("check-config takes no arguments");
    }
    if let Some(d) = a.get(&["--ha-d"]) {
        if !std::path::Path::new(&d).is_dir() {
            return usage_error(&format!("--ha-d {d}: not a directory"));
        }
    }
    let path = config_of(&a);
    let node = a.get(&["--node"]);
    check_config(&path, node.as_deref(), &mut std::io::stdout())
}

fn cmd_keygen(rest: &[String]) -> i32 {
    if rest.len() > 1 || rest.first().is_some_and(|a| a.starts_with('-')) {
        return usage_error("keygen takes one optional FILE");
    }
    let path = rest.first().cloned().unwrap_or_else(|| "/etc/tandem/authkey".to_string());
    // A fresh host may not have /etc/tandem yet: create it, private.
    if let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            eprintln!("tandem: keygen: cannot create {}: {e}", dir.display());
            return 1;
        }
    }
    match crate::config::keygen(std::path::Path::new(&path)) {
        Ok(()) => {
            println!("wrote a new 256-bit key to {path} (mode 0600); copy it to the other node");
            0
        }
        Err(e) => {
            eprintln!("tandem: keygen {path}: {e}");
            1
        }
    }
}

fn cmd_agent(rest: &[String]) -> i32 {
    let (Some(spec), Some(op), None) = (rest.first(), rest.get(1), rest.get(2)) else {
        return usage_error("agent needs TYPE::ARGS and one of start|stop|status");
    };
    let Some(op) = Op::parse(op) else {
        return usage_error(&format!("unknown operation {op:?}: use start, stop or status"));
    };
    let res = match crate::config::parse_resource(spec) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tandem: {spec}: {e}");
            return 2;
        }
    };
    let mut a = match agent::build(&res, &crate::config::Timeouts::default()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tandem: {spec}: {e}");
            return 2;
        }
    };
    let r = a.run(op);
    let code = match (&r, op) {
        (Ok(Outcome::Running), Op::Status) => {
            println!("{spec}: running");
            0
        }
        (Ok(Outcome::Stopped), Op::Status) => {
            println!("{spec}: stopped");
            3
        }
        (Ok(_), _) => {
            println!("{spec}: {} ok", op.name());
            0
        }
        (Err(e), _) => {
            eprintln!("tandem: {spec}: {}: {e}", op.name());
            if op == Op::Status {
                4
            } else {
                1
            }
        }
    };
    if code == 0 && op == Op::Start {
        if let Some(ann) = a.garp() {
            if let Err(e) = send_garps(&ann, crate::config::DEFAULT_GARP_COUNT, crate::config::DEFAULT_GARP_INTERVAL) {
                eprintln!("tandem: announce {}: {e}", ann.addr);
            }
        }
    }
    code
}

fn cmd_guest(rest: &[String]) -> i32 {
    // Options come before the subcommand, so that `enter NAME CMD -x` keeps CMD's options.
    let mut i = 0;
    let mut config = crate::daemon::DEFAULT_CONFIG.to_string();
    let mut node = None;
    while let Some(a) = rest.get(i) {
        match a.as_str() {
            "-c" | "--config" | "--node" => {
                let Some(v) = rest.get(i + 1) else { return usage_error(&format!("{a} needs a value")) };
                if a == "--node" {
                    node = Some(v.clone());
                } else {
                    config = v.clone();
                }
                i += 2;
            }
            _ => break,
        }
    }
    guest::run(std::path::Path::new(&config), node.as_deref(), rest.get(i..).unwrap_or(&[]))
}

/// Sends `count` gratuitous ARPs (or unsolicited NAs), `interval` apart, blocking: for
/// commands, never for the daemon (its loop spaces them with timers).
fn send_garps(ann: &agent::ip::GarpTarget, count: u32, interval: Duration) -> Result<(), agent::AgentError> {
    let mut sender = agent::ip::GarpSender::new();
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        sender.send(ann)?;
    }
    Ok(())
}

fn cmd_cleanup(rest: &[String]) -> i32 {
    let a = match parse_args(rest, &["-s", "--socket"], &[]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let (group, node) = match a.words.as_slice() {
        [g] => (g.clone(), None),
        [g, n] => (g.clone(), Some(n.clone())),
        _ => return usage_error("cleanup needs GROUP (or all) and optionally NODE"),
    };
    call(&a, &Request::Cleanup { group, node }, Duration::from_secs(10))
}

fn cmd_fence_peer(rest: &[String]) -> i32 {
    let a = match parse_args(rest, &["-s", "--socket"], &[]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let res = a.words.first().cloned().or_else(|| std::env::var("DRBD_RESOURCE").ok());
    let Some(res) = res else {
        return usage_error("fence-peer needs a DRBD resource (argument or DRBD_RESOURCE)");
    };
    // The daemon answers within its own deadlines (waiting for a peer that is starting, up
    // to 20 s for the answer, up to 120 s for a dead peer's fence); this is only the backstop.
    match ctl::client::call(&socket_of(&a), &Request::Outdate(res.clone()), Duration::from_secs(180)) {
        Ok((code, body)) => {
            eprint!("tandem fence-peer {res}: {body}");
            code
        }
        Err(e) => {
            eprintln!("tandem fence-peer {res}: {e}");
            1
        }
    }
}
