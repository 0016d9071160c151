//! Resource agents: `guest.rs` (whole virtual servers), `ip.rs` (rtnetlink + gratuitous ARP / unsolicited NA), `script.rs`
//! (LSB/heartbeat scripts), `drbd.rs` (generic netlink), `mount.rs`, `lvm.rs`,
//! and `runner.rs` (forked children with deadlines).
//!
//! Agents are built from the config's typed [`ResourceSpec`]s; they never parse resource words.

pub mod drbd;
pub mod guest;
pub mod ip;
pub mod lvm;
pub mod mount;
pub mod runner;
pub mod script;

use core::fmt;

use crate::config::{Resource, ResourceKind, ResourceSpec, Timeouts};
use crate::time::Duration;

pub use crate::cluster::Op;

/// Result of a successful operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// start/stop succeeded, or status says running.
    Running,
    /// status says not running (or stop succeeded).
    Stopped,
}

#[derive(Debug)]
pub enum AgentError {
    /// Bad `TYPE::ARGS` or an argument that makes no sense (e.g. nonexistent interface).
    Config(String),
    /// A type the daemon does not implement yet.
    Unsupported(ResourceKind),
    /// A syscall or netlink request failed.
    Sys { op: String, errno: nix::errno::Errno },
    /// The child/script exited with this code (LSB meaning).
    Exit { code: i32, output: String },
    /// Killed by this signal.
    Signal { signal: i32, output: String },
    /// Did not finish within the deadline; its process group was killed.
    Timeout { after: Duration, output: String },
    /// A kernel facility the agent needs is missing (e.g. the DRBD module is not loaded).
    Unavailable(String),
    /// The operation did not reach its goal; the message says what was found instead.
    Failed(String),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Config(m) => write!(f, "{m}"),
            AgentError::Unsupported(k) => {
                write!(f, "resource type '{}' is not implemented in this version of tandem", k.name())
            }
            AgentError::Sys { op, errno } => write!(f, "{op}: {}", errno.desc()),
            AgentError::Exit { code, output } => {
                write!(f, "exited with status {code}")?;
                if !output.is_empty() {
                    write!(f, ": {}", output.trim_end())?;
                }
                Ok(())
            }
            AgentError::Signal { signal, output } => {
                write!(f, "killed by signal {signal}")?;
                if !output.is_empty() {
                    write!(f, ": {}", output.trim_end())?;
                }
                Ok(())
            }
            AgentError::Timeout { after, output } => {
                write!(f, "timed out after {}", crate::time::fmt_duration(*after))?;
                if !output.is_empty() {
                    write!(f, ": {}", output.trim_end())?;
                }
                Ok(())
            }
            AgentError::Unavailable(m) | AgentError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for AgentError {}

/// How the daemon must run an agent's operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exec {
    /// Fast and bounded (netlink with a receive deadline): call [`Agent::run`] in the loop.
    Inline,
    /// Call [`Agent::run`] in a forked child (fork, no exec) with the op's deadline.
    Fork,
    /// fork+exec this argv (script agents); the exit code is judged by LSB rules.
    Exec(Vec<String>),
}

/// One resource of a group.
pub trait Agent {
    /// As written in the config, e.g. `ip::192.0.2.50/24/eth0`.
    fn text(&self) -> &str;
    /// How to run `op`.
    fn exec(&self, op: Op) -> Exec;
    /// Perform `op` here and now (blocking, but bounded by the agent's own deadlines).
    /// For `Exec::Exec` agents this runs the command and waits (used by `tandem agent`).
    fn run(&mut self, op: Op) -> Result<Outcome, AgentError>;
    /// For `ip` agents: what to announce after a successful start (gratuitous ARP / NA).
    fn announce(&self) -> Option<ip::Announce> {
        None
    }
    /// For `ip` agents: the interface its announcements will use, so the daemon can open
    /// the announcement socket at start-up rather than during a failover.
    fn announce_iface(&self) -> Option<u32> {
        None
    }
    /// What a finished `Exec` child means (LSB exit codes, unless the agent says otherwise).
    fn judge(&self, op: Op, done: &runner::Done) -> Result<Outcome, AgentError> {
        runner::judge(op, done)
    }
}

/// Builds the agent for one resource and checks what can be checked on this host without
/// side effects (the interface exists, the script is executable, `vgchange` is installed).
/// `Unsupported` for types not built yet.
pub fn build(res: &Resource, t: &Timeouts) -> Result<Box<dyn Agent>, AgentError> {
    let text = res.text.as_str();
    Ok(match &res.spec {
        ResourceSpec::Ip(s) => Box::new(ip::IpAgent::new(s, text)?),
        ResourceSpec::Script(s) => Box::new(script::ScriptAgent::new(s, text)?.with_timeouts(*t)),
        ResourceSpec::Mount(s) => Box::new(mount::MountAgent::new(s, text)),
        ResourceSpec::Drbd(s) => Box::new(drbd::DrbdAgent::new(s, text)),
        ResourceSpec::Lvm(s) => Box::new(lvm::LvmAgent::new(s, text)?.with_timeout(t.start.max(t.stop))),
        ResourceSpec::Guest(s) => Box::new(guest::GuestAgent::new(s, text)),
    })
}

/// For the daemon: like [`build`], but a resource that is wrong *on this host* (an interface
/// that does not exist, a script that is not executable) becomes an agent whose `start`
/// always fails with that message: the group is marked failed here, the error is logged,
/// the daemon keeps running and the peer can take the group. An unimplemented type is
/// still an error (the daemon refuses to start).
pub fn build_or_broken(res: &Resource, t: &Timeouts) -> Result<Box<dyn Agent>, AgentError> {
    match build(res, t) {
        Ok(a) => Ok(a),
        Err(e @ AgentError::Unsupported(_)) => Err(e),
        Err(e) => Ok(Box::new(Broken { text: res.text.clone(), why: e.to_string() })),
    }
}

/// A resource that cannot work on this host; see [`build_or_broken`].
pub struct Broken {
    text: String,
    why: String,
}

impl Agent for Broken {
    fn text(&self) -> &str {
        &self.text
    }
    fn exec(&self, _op: Op) -> Exec {
        Exec::Inline
    }
    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        match op {
            Op::Start => Err(AgentError::Config(self.why.clone())),
            // Nothing of it can have been started here.
            Op::Stop | Op::Status => Ok(Outcome::Stopped),
        }
    }
}
