//! Configuration: `lex` (pure, line numbers) → `raw` (directives) → `resolve` (validated [`Config`]).
//! The syntax is documented in `docs/tandem.conf.5`.
//!
//! This layer knows nothing of agents, links or the running host: what needs the host (which
//! node is this, which interfaces exist) comes in as [`HostFacts`], gathered by the caller.

pub mod key;
pub mod lex;
pub mod raw;
pub mod resolve;
pub mod resource;

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::time::Duration;

pub use key::{keygen, read_key, KeyError};
pub use raw::parse_duration;
pub use resolve::{apply_host, HostFacts, Parsed};
pub use resource::{
    instance_name, parse_resource, DrbdSpec, GuestSpec, IpSpec, LvmSpec, MountSpec, OcfSpec, Resource, ResourceSpec,
    ScriptSpec,
};

/// Default `garp_count`: gratuitous ARPs / unsolicited NAs sent after adding an address.
pub const DEFAULT_GARP_COUNT: u32 = 5;
/// Default `garp_interval`.
pub const DEFAULT_GARP_INTERVAL: Duration = Duration::from_millis(200);

/// The largest configuration file `load` reads.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Parses and validates `text` as the contents of `file`. Pure: no filesystem access and no
/// host lookups, so it serves tests and the fuzzer. See [`Parsed`] for what is left unresolved.
/// All errors are returned (sorted by line), not only the first.
pub fn parse_str(file: &Path, text: &str) -> Result<Parsed, Vec<ConfigError>> {
    let lines = lex::lex(text);
    let (raws, errs) = raw::parse(&lines);
    resolve::resolve(file, raws, errs)
}

/// Reads `path` (at most [`MAX_FILE_SIZE`] bytes, UTF-8).
pub fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    let err = |line: usize, msg: String| ConfigError { file: path.to_path_buf(), line, msg };
    let errno =
        |e: &std::io::Error| e.raw_os_error().map(nix::errno::Errno::from_raw).unwrap_or(nix::errno::Errno::EIO);
    let f = std::fs::File::open(path).map_err(|e| err(0, format!("cannot open: {}", errno(&e).desc())))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_SIZE.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(0, format!("cannot read: {}", errno(&e).desc())))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_SIZE {
        return Err(err(0, format!("larger than {MAX_FILE_SIZE} bytes")));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = e.as_bytes().get(..e.utf8_error().valid_up_to()).unwrap_or(&[]);
        let line = good.iter().filter(|&&b| b == b'\n').count().saturating_add(1);
        err(line, "not valid UTF-8".to_string())
    })
}

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
    /// `start_timeout`, `stop_timeout`, `status_timeout`.
    pub timeouts: Timeouts,
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

/// The deadlines of resource operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `start_timeout`, default 60s.
    pub start: Duration,
    /// `stop_timeout`, default 60s.
    pub stop: Duration,
    /// `status_timeout`, default 20s.
    pub status: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { start: Duration::from_secs(60), stop: Duration::from_secs(60), status: Duration::from_secs(20) }
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
    pub resources: Vec<Resource>,
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
    Ocf,
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
            ResourceKind::Ocf => "ocf",
        }
    }
}
