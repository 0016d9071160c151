//! Configuration: `lex` (pure, line numbers) → `raw` (directives) → `resolve` (validated [`Config`]).
//! The syntax is documented in `docs/tandem.conf.5` and `shared/INTERFACE.md`.
//!
//! SHARED TYPES: the structs below are used by the daemon and every other layer.
//! Change them only together with their users.

pub mod guest;
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
pub use resource::{parse_resource, IpSpec};

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
fn read_config_file(path: &Path) -> Result<String, ConfigError> {
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

/// Errors and warnings of a load, kept together so `check-config` can print both.
fn load_inner(path: &Path, node: Option<&str>) -> (Option<Config>, Vec<ConfigError>, Vec<ConfigWarning>) {
    let text = match read_config_file(path) {
        Ok(t) => t,
        Err(e) => return (None, vec![e], Vec::new()),
    };
    let parsed = match parse_str(path, &text) {
        Ok(p) => p,
        Err(errs) => return (None, errs, Vec::new()),
    };
    let host = match HostFacts::gather(&parsed) {
        Ok(h) => h,
        Err(e) => return (None, vec![e], parsed.warnings),
    };
    let (mut cfg, mut errs, warns) = match apply_host(&parsed, node, &host) {
        Ok((cfg, w)) => (Some(cfg), Vec::new(), w),
        Err((e, w)) => (None, e, w),
    };
    match read_key(&parsed.config.authkey) {
        Ok(k) => {
            if let Some(c) = cfg.as_mut() {
                c.key = k;
            }
        }
        Err(e) => {
            cfg = None;
            errs.push(ConfigError { file: path.to_path_buf(), line: parsed.authkey_line, msg: e.to_string() });
        }
    }
    errs.sort_by_key(|e| e.line);
    (cfg, errs, warns)
}

/// Full load for one node: reads the file, parses it, resolves `node` (`None` = `uname -n`,
/// or its part before the first `.`; it must be one of the `node` names), reads and
/// permission-checks the key, drops `ucast` links whose peer address is one of this host's own
/// addresses, and checks that the interfaces of links and of `ip` resources exist.
pub fn load(path: &Path, node: Option<&str>) -> Result<(Config, Vec<ConfigWarning>), Vec<ConfigError>> {
    match load_inner(path, node) {
        (Some(cfg), errs, warns) if errs.is_empty() => Ok((cfg, warns)),
        (_, errs, _) => Err(errs),
    }
}

/// Formats a warning the way `check-config` prints it: `file:line: warning: message`.
pub fn format_warning(w: &ConfigWarning) -> String {
    if w.line == 0 {
        format!("{}: warning: {}", w.file.display(), w.msg)
    } else {
        format!("{}:{}: warning: {}", w.file.display(), w.line, w.msg)
    }
}

/// `tandem check-config`: prints every error (`file:line: message`) and warning
/// (`file:line: warning: message`) to `out`, in line order, then a one-line summary when the
/// configuration is good. Returns the exit code: 0 good, 2 errors.
pub fn check_config_cmd(path: &Path, node: Option<&str>, out: &mut dyn std::io::Write) -> i32 {
    let (cfg, mut errs, warns) = load_inner(path, node);
    // Resources are checked as strictly as the daemon would build them: an unimplemented
    // type, a missing interface, a script that is not executable.
    if let (Some(c), true) = (&cfg, errs.is_empty()) {
        for g in &c.groups {
            for r in &g.resources {
                if let Err(e) = crate::agent::build(r, c) {
                    let e = e.to_string();
                    let msg = if e.starts_with(&r.text) {
                        format!("group {}: {e}", g.name)
                    } else {
                        format!("group {}: {}: {e}", g.name, r.text)
                    };
                    errs.push(ConfigError { file: c.file.clone(), line: g.line, msg });
                }
            }
        }
    }
    let mut lines: Vec<(usize, String)> = errs.iter().map(|e| (e.line, e.to_string())).collect();
    lines.extend(warns.iter().map(|w| (w.line, format_warning(w))));
    lines.sort_by_key(|(l, _)| *l);
    for (_, l) in &lines {
        let _ = writeln!(out, "{l}");
    }
    match cfg {
        Some(c) if errs.is_empty() => {
            let n_res: usize = c.groups.iter().map(|g| g.resources.len()).sum();
            let _ = writeln!(
                out,
                "{}: OK: cluster {}, node {} (peer {}), {} link{}, {} group{}, {} resource{}",
                path.display(),
                c.cluster,
                c.local_name(),
                c.peer_name(),
                c.links.len(),
                plural(c.links.len()),
                c.groups.len(),
                plural(c.groups.len()),
                n_res,
                plural(n_res)
            );
            0
        }
        _ => 2,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
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
    /// Built-in defaults for running one agent by hand (`tandem agent`): the timeouts and
    /// announcement settings a config file would default to.
    pub fn for_agent() -> Config {
        const TEXT: &str = "cluster agent\nnode a b\nauthkey /etc/tandem/authkey\nucast lo 127.0.0.2\n";
        match parse_str(Path::new("<built-in>"), TEXT) {
            Ok(p) => p.config,
            Err(_) => Config {
                file: PathBuf::from("<built-in>"),
                cluster: String::new(),
                nodes: Vec::new(),
                local: 0,
                authkey: PathBuf::new(),
                key: Vec::new(),
                keepalive: Duration::from_secs(1),
                warntime: Duration::from_secs(5),
                deadtime: Duration::from_secs(10),
                initdead: Duration::from_secs(20),
                auto_failback: false,
                udpport: 694,
                links: Vec::new(),
                ping: Vec::new(),
                stonith: Vec::new(),
                socket: None,
                statedir: None,
                logfacility: None,
                logfile: None,
                groups: Vec::new(),
                start_timeout: Duration::from_secs(60),
                stop_timeout: Duration::from_secs(60),
                status_timeout: Duration::from_secs(20),
                garp_count: 5,
                garp_interval: Duration::from_millis(200),
                realtime: true,
            },
        }
    }

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
