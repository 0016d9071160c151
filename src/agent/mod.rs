//! Resource agents: `guest.rs` (whole virtual servers), `ip.rs` (rtnetlink + gratuitous ARP /
//! unsolicited NA), `script.rs` (LSB/heartbeat scripts), `drbd.rs` (generic netlink), `mount.rs`,
//! `lvm.rs`, `ocf/` (OCF resource agents run by tandem, and tandem's own agents offered as OCF
//! agents),
//! and `runner.rs` (forked children with deadlines).
//!
//! Agents are built from the config's typed [`ResourceSpec`]s; they never parse resource words.

pub mod drbd;
pub mod guest;
pub mod ip;
pub mod lvm;
pub mod mount;
pub mod ocf;
pub mod records;
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
    /// An OCF resource agent exited with this code (OCF meaning, named in the message).
    Ocf { code: i32, output: String },
    /// Killed by this signal.
    Signal { signal: i32, output: String },
    /// Did not finish within the deadline; its process group was killed.
    Timeout { after: Duration, output: String },
    /// A kernel facility or tool the agent needs is missing (the DRBD module is not loaded,
    /// lvm2 is not installed).
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
            AgentError::Ocf { code, output } => {
                write!(f, "exited with status {code} ({})", ocf::OcfCode::describe(*code))?;
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
    /// fork+exec this argv (script agents); the exit code is judged by the agent's
    /// [`Agent::exit_rules`].
    Exec(Vec<String>),
    /// As `Exec`, with these variables added to the environment (OCF agents).
    ExecEnv { argv: Vec<String>, env: Vec<(String, String)> },
}

/// One resource of a group.
pub trait Agent {
    /// As written in the config, e.g. `ip::192.0.2.50/24/eth0`.
    fn text(&self) -> &str;
    /// How to run `op`.
    fn exec(&self, op: Op) -> Exec;
    /// How to run a recurring `status` check of a `monitor` line, every `interval`: OCF
    /// agents are told the interval (a recurring monitor, not a probe); others run `status`.
    fn exec_recurring(&self, interval: Duration) -> Exec {
        let _ = interval;
        self.exec(Op::Status)
    }
    /// Perform `op` here and now (blocking, but bounded by the agent's own deadlines).
    /// For `Exec::Exec` agents this runs the command and waits (used by `tandem agent`).
    fn run(&mut self, op: Op) -> Result<Outcome, AgentError>;
    /// How the exit code of an `Exec`/`ExecEnv` operation is read (`Fork` children follow LSB).
    fn exit_rules(&self) -> runner::ExitRules {
        runner::ExitRules::Lsb
    }
    /// For `ip` agents: where to send gratuitous ARPs (IPv6: unsolicited NAs) after a successful start.
    fn garp(&self) -> Option<ip::GarpTarget> {
        None
    }
    /// For `ip` agents: the interface its gratuitous ARPs will use, so the daemon can open
    /// the packet socket at start-up rather than during a failover.
    fn garp_iface(&self) -> Option<u32> {
        None
    }
    /// For `Exec::Inline` agents run inside the daemon's loop: the most one operation may
    /// wait in total (its netlink deadlines). Others ignore it.
    fn set_inline_budget(&mut self, _budget: Duration) {}
    /// The budget set by [`Agent::set_inline_budget`], for inline agents.
    fn inline_budget(&self) -> Option<Duration> {
        None
    }
    /// What a finished `Exec` child means: its exit code read by [`Agent::exit_rules`],
    /// unless the agent says otherwise.
    fn judge(&self, op: Op, done: &runner::Done) -> Result<Outcome, AgentError> {
        runner::judge(self.exit_rules(), op, done)
    }
}

/// Builds the agent for one resource and checks what can be checked on this host without
/// side effects (the interface exists, the script is executable, `vgchange` is installed).
/// `Unsupported` for types not built yet.
/// An OCF agent gets the resource word, made safe, as its `OCF_RESOURCE_INSTANCE`; the daemon
/// and `check-config` use [`build_in`].
pub fn build(res: &Resource, t: &Timeouts) -> Result<Box<dyn Agent>, AgentError> {
    build_named(res, t, &ocf::word_instance(&res.text))
}

/// As [`build`], for resource `index` (from 0) of group `group`: an OCF agent's
/// `OCF_RESOURCE_INSTANCE` is [`crate::config::instance_name`] (`GROUP-TYPE-N`), the id the
/// Pacemaker export gives the same resource.
pub fn build_in(res: &Resource, t: &Timeouts, group: &str, index: usize) -> Result<Box<dyn Agent>, AgentError> {
    build_named(res, t, &crate::config::instance_name(group, index, &res.spec))
}

fn build_named(res: &Resource, t: &Timeouts, instance: &str) -> Result<Box<dyn Agent>, AgentError> {
    let text = res.text.as_str();
    Ok(match &res.spec {
        ResourceSpec::Ip(s) => Box::new(ip::IpAgent::new(s, text)?),
        ResourceSpec::Script(s) => Box::new(script::ScriptAgent::new(s, text)?.with_timeouts(*t)),
        ResourceSpec::Mount(s) => Box::new(mount::MountAgent::new(s, text)),
        ResourceSpec::Drbd(s) => Box::new(drbd::DrbdAgent::new(s, text)),
        ResourceSpec::Lvm(s) => Box::new(lvm::LvmAgent::new(s, text)?.with_timeout(t.start.max(t.stop))),
        ResourceSpec::Guest(s) => Box::new(guest::GuestAgent::new(s, text)),
        ResourceSpec::Ocf(s) => Box::new(ocf::OcfAgent::new(s, text, instance)?.with_timeouts(*t)),
    })
}

/// For the daemon: like [`build`], but a resource that is wrong *on this host* (an interface
/// that does not exist, a script that is not executable) becomes an agent whose `start`
/// always fails with that message: the group is marked failed here, the error is logged,
/// the daemon keeps running and the peer can take the group. An unimplemented type is
/// still an error (the daemon refuses to start).
pub fn build_or_broken(res: &Resource, t: &Timeouts) -> Result<Box<dyn Agent>, AgentError> {
    broken_on_host(res, build(res, t))
}

/// [`build_or_broken`] for resource `index` of group `group` (see [`build_in`]).
pub fn build_or_broken_in(
    res: &Resource,
    t: &Timeouts,
    group: &str,
    index: usize,
) -> Result<Box<dyn Agent>, AgentError> {
    broken_on_host(res, build_in(res, t, group, index))
}

fn broken_on_host(res: &Resource, built: Result<Box<dyn Agent>, AgentError>) -> Result<Box<dyn Agent>, AgentError> {
    match built {
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
