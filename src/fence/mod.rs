//! Fencing methods: how a node powers off a dead peer before it takes the peer's groups over
//! (docs/fencing.md).
//!
//! - [`ipmi`]: a built-in IPMI v2.0 RMCP+ client (no ipmitool needed);
//! - `agent`: a fence-agents program, spoken with its stdin protocol;
//! - `exec`: a script called as `PATH ARG… off NODE`.
//!
//! [`run`] is blocking, bounded by its deadline: the daemon calls it in a forked child, and
//! `tandem fence NODE` calls it directly when no daemon runs.

pub mod ipmi;

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::config::{FenceMethod, PowerAction};

/// Why a fence attempt did not confirm the node off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceError(pub String);

impl std::fmt::Display for FenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FenceError {}

fn err(m: impl Into<String>) -> FenceError {
    FenceError(m.into())
}

/// Powers `node` off by `method`; returns what confirmed it. Blocks until done or until
/// `deadline`.
pub fn run(method: &FenceMethod, node: &str, deadline: Instant) -> Result<String, FenceError> {
    match method {
        FenceMethod::Ipmi { host, port, user, password_file, cipher, action } => {
            let target = ipmi_target(host, *port, user, password_file, *cipher)?;
            let (act, name) = match action {
                PowerAction::Off => (ipmi::PowerAction::Off, "off"),
                PowerAction::Cycle => (ipmi::PowerAction::Cycle, "cycle"),
            };
            match ipmi::power(&target, act, deadline) {
                Ok(state) => Ok(format!("ipmi {}: power {name} confirmed (power is {state})", target.addr)),
                Err(e) => Err(err(e.to_string())),
            }
        }
        FenceMethod::Agent { program, params } => run_agent(program, params, deadline),
        FenceMethod::Exec { path, args } => run_exec(path, args, "off", node, deadline),
        FenceMethod::Manual => Err(err("manual: an operator confirms with tandem fenced")),
        FenceMethod::Watchdog => Err(err("watchdog: the node resets itself; there is nothing to run")),
    }
}

/// Checks that the fence device answers (without powering anything): the power status
/// over IPMI, `action=status` of an agent, `PATH ARG… status NODE`. Returns what it said.
pub fn check(method: &FenceMethod, node: &str, deadline: Instant) -> Result<String, FenceError> {
    match method {
        FenceMethod::Ipmi { host, port, user, password_file, cipher, .. } => {
            let target = ipmi_target(host, *port, user, password_file, *cipher)?;
            match ipmi::power_status(&target, deadline) {
                Ok(state) => Ok(format!("ipmi {}: power is {state}", target.addr)),
                Err(e) => Err(err(e.to_string())),
            }
        }
        FenceMethod::Agent { program, params } => {
            let (code, out) = agent_action(program, params, "status", deadline)?;
            match code {
                0 => Ok(format!("{}: on", program.display())),
                2 => Ok(format!("{}: off", program.display())),
                c => Err(err(format!("{} action=status exited {c}: {}", program.display(), last_line(&out)))),
            }
        }
        FenceMethod::Exec { path, args } => run_exec(path, args, "status", node, deadline),
        FenceMethod::Manual | FenceMethod::Watchdog => Ok("nothing to check".to_string()),
    }
}

fn ipmi_target(
    host: &str,
    port: u16,
    user: &str,
    password_file: &Path,
    cipher: u8,
) -> Result<ipmi::IpmiTarget, FenceError> {
    let password = ipmi::read_password(password_file).map_err(|e| err(format!("{}: {e}", password_file.display())))?;
    let addr = resolve(host, port)?;
    let suite = ipmi::CipherSuite::from_id(cipher).ok_or_else(|| err(format!("cipher suite {cipher}")))?;
    Ok(ipmi::IpmiTarget::new(addr, user, password, suite))
}

/// An IP literal, or a name looked up (a static binary may have no resolver: use addresses).
fn resolve(host: &str, port: u16) -> Result<SocketAddr, FenceError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| err(format!("cannot resolve BMC address '{host}' (use an IP address)")))
}

fn last_line(out: &str) -> String {
    out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

/// Runs `program` with `stdin` as its standard input, until it exits or `deadline` (then it
/// is killed); returns (exit code, output). The output goes to a memory file, so a chatty
/// program never blocks on a full pipe.
fn run_with_stdin(
    program: &Path,
    args: &[String],
    stdin: &str,
    deadline: Instant,
) -> Result<(i32, String), FenceError> {
    let fail = |e: std::io::Error| err(format!("{}: {e}", program.display()));
    let out = nix::sys::memfd::memfd_create(c"tandem-fence", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| err(format!("memfd_create: {e}")))?;
    let mut out = std::fs::File::from(out);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out.try_clone().map_err(fail)?))
        .stderr(Stdio::from(out.try_clone().map_err(fail)?))
        .spawn()
        .map_err(fail)?;
    if let Some(mut i) = child.stdin.take() {
        // A few hundred bytes: the pipe takes them whether or not the program reads.
        let _ = i.write_all(stdin.as_bytes());
    }
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(-1),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!("{}: no answer before the deadline", program.display())));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => return Err(fail(e)),
        }
    };
    let mut text = String::new();
    let _ = out.seek(SeekFrom::Start(0));
    let _ = (&mut out).take(64 * 1024).read_to_string(&mut text);
    Ok((code, text))
}

/// One action of the fence-agents stdin protocol: `action=…` and the `key=value` lines
/// (a `password_file=` becomes `password=`, read from the file).
fn agent_action(
    program: &Path,
    params: &[(String, String)],
    action: &str,
    deadline: Instant,
) -> Result<(i32, String), FenceError> {
    let mut lines = format!("action={action}\n");
    for (k, v) in params {
        if k == "password_file" {
            let pw = ipmi::read_password(Path::new(v)).map_err(|e| err(format!("{v}: {e}")))?;
            lines.push_str("password=");
            lines.push_str(&String::from_utf8_lossy(&pw));
            lines.push('\n');
        } else {
            lines.push_str(&format!("{k}={v}\n"));
        }
    }
    run_with_stdin(program, &[], &lines, deadline)
}

/// `action=off`, then `action=status`, which exits 2 when the node is off (0: on, 1: error).
fn run_agent(program: &Path, params: &[(String, String)], deadline: Instant) -> Result<String, FenceError> {
    let (code, out) = agent_action(program, params, "off", deadline)?;
    if code != 0 {
        return Err(err(format!("{} action=off exited {code}: {}", program.display(), last_line(&out))));
    }
    let (code, out) = agent_action(program, params, "status", deadline)?;
    match code {
        2 => Ok(format!("{}: off, confirmed by action=status", program.display())),
        _ if out.to_ascii_lowercase().contains("status: off") => {
            Ok(format!("{}: off, confirmed by action=status", program.display()))
        }
        c => Err(err(format!("{} action=status exited {c} (not off): {}", program.display(), last_line(&out)))),
    }
}

/// `PATH ARG… ACTION NODE`: exit 0 means done (off: the node is off; status: the device
/// answers).
fn run_exec(path: &Path, args: &[String], action: &str, node: &str, deadline: Instant) -> Result<String, FenceError> {
    let mut argv: Vec<String> = args.to_vec();
    argv.push(action.to_string());
    argv.push(node.to_string());
    let (code, out) = run_with_stdin(path, &argv, "", deadline)?;
    if code == 0 {
        Ok(format!("{} {action} {node}: done", path.display()))
    } else {
        Err(err(format!("{} {action} {node} exited {code}: {}", path.display(), last_line(&out))))
    }
}
