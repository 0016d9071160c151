//! `tandem fence NODE` and `tandem fenced NODE` (docs/fencing.md).
//!
//! With a daemon running, both go to it: it runs the attempt in its own child (so its
//! fencing state, takeover and `status` follow) and answers with the confirmed result.
//! Without one, `fence` runs the method itself, from the configuration file: this is how a
//! BMC, an agent or a script is tried out before the cluster relies on it (`--check` only
//! reads the power status).

use std::path::Path;
use std::time::{Duration, Instant};

use super::args::parse_args;
use super::{socket_of, usage_error};
use crate::config::{Config, FenceMethod};
use crate::ctl::{self, CtlError, Request};

/// The client's backstop; the daemon answers within `fence_timeout` (plus a margin).
const DAEMON_WAIT: Duration = Duration::from_secs(600);

pub fn cmd_fence(rest: &[String]) -> i32 {
    let a = match parse_args(rest, &["-s", "--socket", "-c", "--config", "--node"], &["--check", "--local"]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let [node] = a.words.as_slice() else {
        return usage_error("fence needs one NODE");
    };
    let config = a.get(&["-c", "--config"]).unwrap_or_else(|| crate::daemon::DEFAULT_CONFIG.to_string());
    let local_node = a.get(&["--node"]);
    if a.has("--check") {
        return local(Path::new(&config), local_node.as_deref(), node, true);
    }
    if !a.has("--local") {
        match ctl::client::call(&socket_of(&a), &Request::Fence(node.clone()), DAEMON_WAIT) {
            Ok((code, body)) => {
                if code == 0 {
                    print!("{body}");
                } else {
                    eprint!("tandem fence {node}: {body}");
                }
                return code;
            }
            Err(CtlError::NotRunning { .. }) => {}
            Err(e) => {
                eprintln!("tandem fence {node}: {e}");
                return 1;
            }
        }
    }
    local(Path::new(&config), local_node.as_deref(), node, false)
}

pub fn cmd_fenced(rest: &[String]) -> i32 {
    let a = match parse_args(rest, &["-s", "--socket"], &[]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let [node] = a.words.as_slice() else {
        return usage_error("fenced needs one NODE");
    };
    match ctl::client::call(&socket_of(&a), &Request::Fenced(node.clone()), Duration::from_secs(10)) {
        Ok((code, body)) => {
            if code == 0 {
                print!("{body}");
            } else {
                eprint!("tandem fenced {node}: {body}");
            }
            code
        }
        Err(e @ CtlError::NotRunning { .. }) => {
            eprintln!("tandem fenced {node}: {e} (only a running daemon takes a confirmation)");
            3
        }
        Err(e) => {
            eprintln!("tandem fenced {node}: {e}");
            1
        }
    }
}

/// Runs NODE's method here: the power-off (confirmed), or with `check` the power status.
fn local(config: &Path, local_node: Option<&str>, node: &str, check: bool) -> i32 {
    let cfg = match crate::load::load(config, local_node) {
        Ok((c, _)) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("tandem: {e}");
            }
            return 2;
        }
    };
    let method = match method_of(&cfg, node) {
        Ok(m) => m,
        Err(msg) => {
            eprintln!("tandem fence {node}: {msg}");
            return 1;
        }
    };
    let start = Instant::now();
    let deadline = start + cfg.fencing.timeout;
    let (what, r) = if check {
        ("check", crate::fence::check(method, node, deadline))
    } else {
        ("fence", crate::fence::run(method, node, deadline))
    };
    let ms = start.elapsed().as_millis();
    match r {
        Ok(said) => {
            println!("{node}: {said} ({ms} ms)");
            0
        }
        Err(e) => {
            eprintln!("tandem {what} {node}: {e} ({ms} ms)");
            1
        }
    }
}

fn method_of<'a>(cfg: &'a Config, node: &str) -> Result<&'a FenceMethod, String> {
    let Some(id) = cfg.nodes.iter().position(|n| n == node) else {
        return Err(format!("no node named {node:?} (nodes: {})", cfg.nodes.join(" ")));
    };
    match cfg.stonith.iter().find(|s| usize::from(s.node) == id) {
        None => Err(format!("no stonith line for {node}")),
        Some(s) => match &s.method {
            FenceMethod::Manual => {
                Err(format!("{node}'s method is manual: power it off by hand, then run tandem fenced {node}"))
            }
            FenceMethod::Watchdog => Err(format!("{node}'s method is watchdog: it resets itself")),
            m => Ok(m),
        },
    }
}
