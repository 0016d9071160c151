//! Configuration: `lex` (pure, line numbers) → `raw` (directives) → `resolve` (validated [`Config`]).
//! The syntax is documented in `docs/tandem.conf.5` and `shared/INTERFACE.md`.
//!
//! SHARED TYPES: the structs below are used by the daemon and every other layer.
//! Change them only together with their users.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::time::Duration;

/// A configuration error. `Display` prints `file:line: message` (line 0 = whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.msg)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A warning that does not stop the daemon (e.g. a slow serial line); same format as errors.
pub type ConfigWarning = ConfigError;

/// Index of a node in [`Config::nodes`]. Both nodes share one file, so indexes agree.
pub type NodeId = u8;

/// A validated configuration, resolved for one local node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    pub cluster: String,
    /// Exactly two names, in file order.
    pub nodes: Vec<String>,
    /// Which of `nodes` this host is (from `--node` or `uname -n`).
    pub local: NodeId,
    pub authkey: PathBuf,
    /// The key bytes, loaded and permission-checked.
    pub key: Vec<u8>,
    pub keepalive: Duration,
    pub warntime: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
    pub auto_failback: bool,
    pub udpport: u16,
    /// Links after skipping ucast lines that point at this host's own addresses.
    pub links: Vec<LinkConfig>,
    pub ping: Vec<IpAddr>,
    pub stonith: Vec<StonithConfig>,
    pub socket: Option<PathBuf>,
    pub statedir: Option<PathBuf>,
    /// `None` = "none" (no syslog). Default "daemon".
    pub logfacility: Option<String>,
    /// `Some("-")` = stderr.
    pub logfile: Option<PathBuf>,
    pub groups: Vec<GroupConfig>,
    /// `start_timeout`, default 60s.
    pub start_timeout: Duration,
    /// `stop_timeout`, default 60s.
    pub stop_timeout: Duration,
    /// `status_timeout`, default 20s.
    pub status_timeout: Duration,
    /// `garp_count`, default 5 (gratuitous ARPs / unsolicited NAs after adding an address).
    pub garp_count: u32,
    /// `garp_interval`, default 200ms.
    pub garp_interval: Duration,
    /// `realtime on|off`, default on: SCHED_FIFO + mlockall.
    pub realtime: bool,
}

impl Config {
    pub fn local_name(&self) -> &str {
        self.nodes.get(usize::from(self.local)).map(String::as_str).unwrap_or("")
    }
    /// The other node's id (two-node clusters).
    pub fn peer(&self) -> NodeId {
        if self.local == 0 {
            1
        } else {
            0
        }
    }
    pub fn peer_name(&self) -> &str {
        self.nodes.get(usize::from(self.peer())).map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkConfig {
    Ucast { iface: String, peer: IpAddr, port: u16 },
    Bcast { iface: String, port: u16 },
    Mcast { iface: String, group: IpAddr, port: u16, ttl: u8, loop_: bool },
    Serial { device: PathBuf, baud: u32, rtscts: bool },
}

impl LinkConfig {
    /// The name shown in status, e.g. `ucast veth0 192.0.2.2`, `serial /dev/ttyS1`.
    pub fn name(&self) -> String {
        match self {
            LinkConfig::Ucast { iface, peer, .. } => format!("ucast {iface} {peer}"),
            LinkConfig::Bcast { iface, .. } => format!("bcast {iface}"),
            LinkConfig::Mcast { iface, group, .. } => format!("mcast {iface} {group}"),
            LinkConfig::Serial { device, .. } => format!("serial {}", device.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StonithConfig {
    pub node: NodeId,
    pub command: Vec<String>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub name: String,
    pub preferred: NodeId,
    pub resources: Vec<ResourceSpec>,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Ip,
    Script,
    Drbd,
    Mount,
    Lvm,
    Guest,
}

impl ResourceKind {
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Ip => "ip",
            ResourceKind::Script => "script",
            ResourceKind::Drbd => "drbd",
            ResourceKind::Mount => "mount",
            ResourceKind::Lvm => "lvm",
            ResourceKind::Guest => "guest",
        }
    }
}

/// One `TYPE::ARG[::ARG…]` word of a group line, syntax-checked for its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    pub kind: ResourceKind,
    pub args: Vec<String>,
    /// As written, for logs and status.
    pub text: String,
}
