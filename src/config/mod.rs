//! Configuration: `lex` (pure, line numbers) → `raw` (directives) → `resolve` (validated [`Config`]).
//! The syntax is documented in `docs/tandem.conf.5`.
//!
//! This layer knows nothing of agents, links or the running host: what needs the host (which
//! node is this, which interfaces exist) comes in as [`HostFacts`], gathered by the caller.

pub mod guest;
pub mod hacompat;
pub mod key;
pub mod lex;
pub mod parsed;
pub mod raw;
pub mod resolve;
pub mod resource;
pub mod stonith;
pub mod words;

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::time::Duration;

pub use key::{keygen, read_key, Key, KeyError};
pub use resolve::{apply_host, HostFacts, Parsed};
pub use resource::{
    instance_name, parse_resource, DrbdSpec, GuestSpec, IpSpec, LvmSpec, MountSpec, OcfSpec, Resource, ResourceSpec,
    ScriptSpec,
};
pub use stonith::{FenceMethod, PowerAction};
pub use words::parse_duration;

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

/// Reads `path` (a regular file, at most [`MAX_FILE_SIZE`] bytes, UTF-8).
pub fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    let err = |line: usize, msg: String| ConfigError { file: path.to_path_buf(), line, msg };
    let errno =
        |e: &std::io::Error| e.raw_os_error().map(nix::errno::Errno::from_raw).unwrap_or(nix::errno::Errno::EIO);
    // Never blocks in open (a FIFO), and only a regular file is read.
    let f = key::open_regular(path).map_err(|e| err(0, format!("cannot open: {}", errno(&e).desc())))?;
    let meta = f.metadata().map_err(|e| err(0, format!("cannot stat: {}", errno(&e).desc())))?;
    if !meta.is_file() {
        return Err(err(0, "not a regular file; refusing to read it".to_string()));
    }
    check_config_owner(path, meta.uid(), meta.mode(), nix::unistd::geteuid().as_raw()).map_err(|m| err(0, m))?;
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

/// The configuration names programs the daemon runs as root: it must be owned by root or
/// by the user reading it (`euid`), and writable by nobody else. Pure, for tests.
pub fn check_config_owner(path: &Path, uid: u32, mode: u32, euid: u32) -> Result<(), String> {
    if uid != 0 && uid != euid {
        return Err(format!(
            "owned by uid {uid}, not by root{}: it names programs run as root; chown root {}",
            if euid == 0 { String::new() } else { format!(" or uid {euid}") },
            path.display()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "is writable by group or others (mode {:04o}): it names programs run as root; chmod go-w {}",
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
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
    /// The key bytes, loaded and permission-checked (`Debug` shows only their number).
    pub key: Key,
    /// `authkey_accept`: a second key also accepted on receive, for key rotation.
    pub authkey_accept: Option<PathBuf>,
    /// Its bytes, loaded like `key`.
    pub accept_key: Option<Key>,
    pub keepalive: Duration,
    pub warntime: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
    pub auto_failback: bool,
    pub udpport: u16,
    /// Links after skipping ucast lines that point at this host's own addresses.
    pub links: Vec<LinkConfig>,
    pub ping: Vec<IpAddr>,
    pub ping_policy: PingPolicy,
    /// What a failing monitor leads to (restarts, then a move).
    pub failure: FailurePolicy,
    /// `watchdog DEVICE TIMEOUT`.
    pub watchdog: Option<WatchdogConfig>,
    pub stonith: Vec<StonithConfig>,
    pub fencing: FencePolicy,
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
    /// `notify PATH` lines, in file order: programs run on every transition.
    pub notify: Vec<NotifyHook>,
    /// `notify_timeout`, default 10s: the deadline of one hook run.
    pub notify_timeout: Duration,
    /// `metrics_listen ADDR:PORT`: the daemon serves `GET /metrics` there (off by default).
    pub metrics_listen: Option<SocketAddr>,
    /// The wire protocol spoken with the peer (`protocol`; heartbeat's for `--ha-d`).
    pub protocol: Protocol,
}

/// The wire protocol the daemon speaks with its peer.
#[derive(Debug, Clone, Default)]
pub enum Protocol {
    /// tandem's own (docs/wire.md).
    #[default]
    Tandem,
    /// heartbeat 3.0.6's (docs/heartbeat-wire.md): a drop-in replacement for a heartbeat node,
    /// and mixed heartbeat/tandem clusters (docs/migrating-from-heartbeat.md).
    Heartbeat(Box<HbSettings>),
}

/// heartbeat's `auto_failback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbFailback {
    On,
    Off,
    /// heartbeat's default: groups go back to their preferred node, asked for one by one.
    Legacy,
}

impl HbFailback {
    pub fn name(self) -> &'static str {
        match self {
            HbFailback::On => "on",
            HbFailback::Off => "off",
            HbFailback::Legacy => "legacy",
        }
    }
}

/// What heartbeat's protocol needs beyond the rest of [`Config`].
#[derive(Debug, Clone)]
pub struct HbSettings {
    /// heartbeat's `authkeys` file (`auth N`, then `N sha1|md5 KEY` or `N crc`).
    pub authkeys: PathBuf,
    /// The line naming it (`hb_authkeys`; 0 for `--ha-d`).
    pub authkeys_line: usize,
    /// The keys, read and permission-checked by `load` (`None` after a pure parse).
    pub keys: Option<crate::hb::auth::AuthKeys>,
    pub failback: HbFailback,
    /// `hopfudge` (default 1).
    pub hopfudge: u32,
    /// `msgfmt netstring`: no `auth` field in UDP messages.
    pub msgfmt_netstring: bool,
    /// heartbeat's state directory, for `hb_uuid` and `hb_generation` (/var/lib/heartbeat).
    pub state_dir: PathBuf,
    /// heartbeat's name of each group (same order as [`Config::groups`]): the first resource
    /// of its haresources line, as written.
    pub group_keys: Vec<String>,
    /// The haresources file the groups come from (`None`: the groups are in [`Config::file`]);
    /// group lines are its lines.
    pub haresources: Option<PathBuf>,
    /// `env NAME=VALUE`: `HA_NAME=VALUE` in the resource scripts' environment.
    pub env: Vec<(String, String)>,
    /// Parameters as `cl_status hbparameter` reports them (name, value), heartbeat's
    /// defaults included.
    pub params: Vec<(String, String)>,
}

impl HbSettings {
    /// heartbeat's defaults, with the authkeys file at `authkeys`.
    pub fn new(authkeys: PathBuf) -> HbSettings {
        HbSettings {
            authkeys,
            authkeys_line: 0,
            keys: None,
            failback: HbFailback::Legacy,
            hopfudge: 1,
            msgfmt_netstring: false,
            state_dir: PathBuf::from(hacompat::HB_STATE_DIR),
            group_keys: Vec::new(),
            haresources: None,
            env: Vec::new(),
            params: Vec::new(),
        }
    }
}

impl Config {
    /// A digest of what both nodes must agree on: the cluster's name, the nodes in order,
    /// `auto_failback`, and every group (name, preferred node, resources as written, in
    /// order). Carried in heartbeats, so that two nodes with different group lists (the
    /// peer's group state is matched by position) notice instead of acting on each other's
    /// groups by mistake.
    pub fn digest(&self) -> u32 {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let mut put = |s: &str| {
            h.update((s.len() as u32).to_be_bytes());
            h.update(s.as_bytes());
        };
        put(&self.cluster);
        for n in &self.nodes {
            put(n);
        }
        put(if self.auto_failback { "failback" } else { "stay" });
        for g in &self.groups {
            put(&g.name);
            put(self.nodes.get(usize::from(g.preferred)).map(String::as_str).unwrap_or(""));
            for r in &g.resources {
                put(&r.text);
            }
            put("");
        }
        let d = h.finalize();
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
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
    /// The fencing method for the peer, if any.
    pub fn peer_stonith(&self) -> Option<&StonithConfig> {
        self.stonith.iter().find(|s| s.node == self.peer())
    }

    pub fn peer_name(&self) -> &str {
        self.nodes.get(usize::from(self.peer())).map(String::as_str).unwrap_or("")
    }
    /// The file a group's line is in (haresources, for heartbeat's configuration).
    pub fn group_file(&self) -> &Path {
        self.heartbeat().and_then(|h| h.haresources.as_deref()).unwrap_or(&self.file)
    }
    /// heartbeat's protocol settings, when the daemon speaks it.
    pub fn heartbeat(&self) -> Option<&HbSettings> {
        match &self.protocol {
            Protocol::Heartbeat(h) => Some(h),
            Protocol::Tandem => None,
        }
    }
}

/// A `notify PATH` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyHook {
    pub path: PathBuf,
    pub line: usize,
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

/// How to fence one node (`stonith NODE METHOD …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StonithConfig {
    pub node: NodeId,
    pub method: FenceMethod,
    pub line: usize,
}

/// The fencing policy (docs/fencing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FencePolicy {
    /// `fence_delay`: how long the node that does not hold a group waits before it fences
    /// (the holder fences at once), so two live nodes in a partition do not kill each other.
    /// `None`: four times (keepalive + one fence's measured time).
    pub delay: Option<Duration>,
    /// `fence_timeout`: the deadline of one fence attempt.
    pub timeout: Duration,
    /// `fence_check`: how often the peer's fence device is checked (`None`: never).
    pub check: Option<Duration>,
    /// `wait_for_peer`: after start-up, neither fence nor take over before the peer was
    /// heard once (or an operator confirmed it is off).
    pub wait_for_peer: bool,
    /// `stonith_required`: never take over from a silent peer without a confirmed fence.
    pub required: bool,
}

/// What happens when a monitored resource fails (docs/monitoring.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// `restart_limit`: in-place restarts within `restart_window` before the group moves.
    pub restart_limit: u32,
    pub restart_window: Duration,
    /// `failure_timeout`: a node's failed mark for a group expires (`None`: never; `tandem
    /// cleanup` clears it).
    pub failure_timeout: Option<Duration>,
}

/// Default `restart_limit`.
pub const DEFAULT_RESTART_LIMIT: u32 = 3;
/// Default `restart_window`.
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(600);

/// The reachability settings (docs/fencing.md, "Partitions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingPolicy {
    /// `ping_interval`: one echo to every target this often.
    pub interval: Duration,
    /// `ping_deadtime`: a target is up while it answered within this.
    pub deadtime: Duration,
    /// `ping_hold`: how long a node must reach fewer targets than its peer before its
    /// groups move (and as many again before they may come back).
    pub hold: Duration,
    /// `isolated_stop`: a node whose peer is silent and that reaches no target stops its
    /// groups.
    pub isolated_stop: bool,
}

/// `watchdog DEVICE TIMEOUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogConfig {
    pub device: PathBuf,
    /// Whole seconds.
    pub timeout: Duration,
    pub line: usize,
}

/// Default `ping_interval`.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(1);
/// Default `ping_deadtime` (at least three intervals).
pub const DEFAULT_PING_DEADTIME: Duration = Duration::from_secs(5);
/// Default `ping_hold`.
pub const DEFAULT_PING_HOLD: Duration = Duration::from_secs(5);

/// Default `fence_check`.
pub const DEFAULT_FENCE_CHECK: Duration = Duration::from_secs(60);
/// Default `notify_timeout`.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `fence_timeout`.
pub const DEFAULT_FENCE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub name: String,
    pub preferred: NodeId,
    pub resources: Vec<Resource>,
    pub line: usize,
    /// Per resource: the `monitor` interval (`None`: not monitored).
    pub monitor: Vec<Option<Duration>>,
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
