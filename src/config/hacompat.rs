//! heartbeat 3.0.6's configuration, read as it is: `ha.cf`, `haresources` (and `authkeys`,
//! through [`crate::hb::auth::AuthKeys`]) become the same [`Config`] as a `tandem.conf`, with
//! [`Protocol::Heartbeat`], so that `tandem daemon --ha-d /etc/ha.d` replaces a heartbeat
//! node without touching its files (docs/migrating-from-heartbeat.md).
//!
//! Pure, like the rest of `config`: the caller reads the files and says which resource
//! scripts exist ([`ScriptLookup`]). Every directive heartbeat 3.0.6 accepts is either mapped
//! or refused with a `file:line` message saying why and what to do instead; anything else is
//! refused as heartbeat refuses it.
//!
//! ha.cf is read with heartbeat's rules (heartbeat/config.c): `#` starts a comment anywhere on
//! a line, there is no line continuation, a directive's words are separated by blanks or
//! commas and each word is one value (`node a b` names two nodes, `bcast eth0 eth1` makes two
//! links), except for the whole-line directives (`ucast`, `mcast`, `ucast6`, `mcast6`,
//! `ping_group`, `stonith`, `stonith_host`, `apiauth`, `respawn`, `failfast`). Times are
//! heartbeat's: a bare number is seconds (decimals allowed), `ms` and `us` suffixes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::parsed::Parsed;
use super::resource::{parse_resource, IpSpec, Resource, ResourceSpec, ScriptSpec};
use super::{
    Config, ConfigError, ConfigWarning, GroupConfig, HbFailback, HbSettings, LinkConfig, NodeId, Protocol,
    StonithConfig, Timeouts,
};
use crate::time::Duration;

/// heartbeat's configuration directory.
pub const HA_D: &str = "/etc/ha.d";
pub const HA_CF: &str = "ha.cf";
pub const HARESOURCES: &str = "haresources";
pub const AUTHKEYS: &str = "authkeys";
/// heartbeat's state directory (`hb_uuid`, `hb_generation`).
pub const HB_STATE_DIR: &str = "/var/lib/heartbeat";
/// Where heartbeat looks for init scripts after `resource.d`.
pub const INIT_D: &str = "/etc/init.d";
/// cluster-glue's `stonith` command, which runs heartbeat's STONITH plugins.
pub const STONITH_CMD: &str = "/usr/sbin/stonith";
/// The most haresources groups the heartbeat engine tracks.
pub const MAX_GROUPS: usize = 64;
/// heartbeat's own UDP port.
pub const HB_UDPPORT: u16 = 694;
/// heartbeat's default baud rate.
pub const HB_BAUD: u32 = 19200;
/// Resource operation deadlines for haresources groups. heartbeat has none; tandem bounds
/// every wait, generously, so a slow service start is not cut short.
pub const HB_TIMEOUTS: Timeouts =
    Timeouts { start: Duration::from_secs(300), stop: Duration::from_secs(300), status: Duration::from_secs(60) };

/// Resource scripts by name, as heartbeat finds them: `DIR/resource.d/NAME`, then
/// `/etc/init.d/NAME` (an executable regular file). The caller looks at the file system.
pub trait ScriptLookup {
    fn find(&self, name: &str) -> Option<PathBuf>;
}

impl<F: Fn(&str) -> Option<PathBuf>> ScriptLookup for F {
    fn find(&self, name: &str) -> Option<PathBuf> {
        self(name)
    }
}

/// Parses the contents of `DIR/ha.cf` and `DIR/haresources` (`haresources` = `None`: the
/// file does not exist, which heartbeat accepts: no groups). Errors name the file and line.
pub fn parse(
    dir: &Path,
    ha_cf: &str,
    haresources: Option<&str>,
    scripts: &dyn ScriptLookup,
) -> Result<Parsed, Vec<ConfigError>> {
    let cf_path = dir.join(HA_CF);
    let hr_path = dir.join(HARESOURCES);
    let mut p = HaCf::new();
    for (n, raw) in ha_cf.split('\n').enumerate() {
        p.line(n + 1, raw);
    }
    p.finish();
    let mut errs: Vec<ConfigError> =
        p.errs.iter().map(|(l, m)| ConfigError { file: cf_path.clone(), line: *l, msg: m.clone() }).collect();
    let mut warnings: Vec<ConfigWarning> =
        p.warns.iter().map(|(l, m)| ConfigError { file: cf_path.clone(), line: *l, msg: m.clone() }).collect();
    let nodes: Vec<String> = p.nodes.iter().map(|(n, _)| n.clone()).collect();
    let (groups, keys, herrs) = match haresources {
        Some(text) => haresources_groups(text, &nodes, scripts),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    errs.extend(herrs.into_iter().map(|(l, m)| ConfigError { file: hr_path.clone(), line: l, msg: m }));
    if !errs.is_empty() {
        errs.sort_by_key(|e| (e.file != cf_path, e.line));
        return Err(errs);
    }
    warnings.sort_by_key(|w| w.line);
    let mut hb = HbSettings::new(dir.join(AUTHKEYS));
    hb.failback = p.failback;
    hb.hopfudge = p.hopfudge;
    hb.msgfmt_netstring = p.msgfmt_netstring;
    hb.group_keys = keys;
    hb.haresources = Some(hr_path);
    hb.env = p.env.clone();
    hb.params = p.params();
    let node_line = p.nodes.first().map(|(_, l)| *l).unwrap_or(0);
    let (links, link_lines): (Vec<LinkConfig>, Vec<usize>) = p.links.iter().cloned().unzip();
    let t = p.times();
    let config = Config {
        file: cf_path,
        cluster: p.cluster.clone(),
        nodes,
        local: 0,
        authkey: dir.join(AUTHKEYS),
        key: super::Key::default(),
        authkey_accept: None,
        accept_key: None,
        keepalive: t.keepalive,
        warntime: t.warntime,
        deadtime: t.deadtime,
        initdead: t.initdead,
        auto_failback: p.failback == HbFailback::On,
        udpport: p.udpport.unwrap_or(HB_UDPPORT),
        links,
        ping: p.ping.clone(),
        ping_policy: super::PingPolicy {
            interval: super::DEFAULT_PING_INTERVAL,
            deadtime: super::DEFAULT_PING_DEADTIME,
            hold: super::DEFAULT_PING_HOLD,
            isolated_stop: true,
        },
        watchdog: None,
        failure: super::FailurePolicy {
            restart_limit: super::DEFAULT_RESTART_LIMIT,
            restart_window: super::DEFAULT_RESTART_WINDOW,
            failure_timeout: None,
        },
        // heartbeat's protocol fences as heartbeat does: at the peer's death, without
        // fence_delay, device checks or stonith_required (docs/migrating-from-heartbeat.md).
        fencing: super::FencePolicy {
            delay: None,
            timeout: super::DEFAULT_FENCE_TIMEOUT,
            check: None,
            wait_for_peer: false,
            required: false,
        },
        stonith: p.stonith_lines(),
        socket: None,
        statedir: None,
        logfacility: p.logfacility(),
        logfile: p.logfile.clone().or_else(|| p.debugfile.clone()),
        groups,
        timeouts: HB_TIMEOUTS,
        garp_count: super::DEFAULT_GARP_COUNT,
        garp_interval: super::DEFAULT_GARP_INTERVAL,
        realtime: p.realtime,
        // ha.cf has no notify hooks nor metrics listener (tandem.conf with protocol heartbeat does).
        notify: Vec::new(),
        notify_timeout: super::DEFAULT_NOTIFY_TIMEOUT,
        metrics_listen: None,
        protocol: Protocol::Heartbeat(Box::new(hb)),
    };
    Ok(Parsed { config, link_lines, node_line, authkey_line: 0, authkey_accept_line: 0, warnings })
}

// ------------------------------------------------------------------ ha.cf

/// How heartbeat reads a directive's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Each word is a value of its own.
    Options,
    /// The rest of the line is one value.
    WholeLine,
}

/// Every directive heartbeat 3.0.6 (Debian's package, with its HBcomm plugins) accepts.
const DIRECTIVES: &[(&str, Kind)] = &[
    ("cluster", Kind::Options),
    ("node", Kind::Options),
    ("hopfudge", Kind::Options),
    ("keepalive", Kind::Options),
    ("deadtime", Kind::Options),
    ("deadping", Kind::Options),
    ("initdead", Kind::Options),
    ("warntime", Kind::Options),
    ("watchdog", Kind::Options),
    ("baud", Kind::Options),
    ("udpport", Kind::Options),
    ("logfacility", Kind::Options),
    ("logfile", Kind::Options),
    ("debugfile", Kind::Options),
    ("nice_failback", Kind::Options),
    ("auto_failback", Kind::Options),
    ("rtprio", Kind::Options),
    ("hbgenmethod", Kind::Options),
    ("realtime", Kind::Options),
    ("debug", Kind::Options),
    ("msgfmt", Kind::Options),
    ("use_logd", Kind::Options),
    ("conn_logd_time", Kind::Options),
    ("use_apphbd", Kind::Options),
    ("log_badpack", Kind::Options),
    ("syslogmsgfmt", Kind::Options),
    ("coredumps", Kind::Options),
    ("coreroot", Kind::Options),
    ("crm_daemon_dir", Kind::Options),
    ("crmd_spawns_pengine", Kind::Options),
    ("crm", Kind::Options),
    ("pacemaker", Kind::Options),
    ("autojoin", Kind::Options),
    ("uuidfrom", Kind::Options),
    ("compression", Kind::Options),
    ("compression_threshold", Kind::Options),
    ("traditional_compression", Kind::Options),
    ("env", Kind::Options),
    ("max_rexmit_delay", Kind::Options),
    ("record_config_changes", Kind::Options),
    ("record_pengine_inputs", Kind::Options),
    ("enable_config_writes", Kind::Options),
    ("memreserve", Kind::Options),
    ("quorum_server", Kind::Options),
    ("stonith", Kind::WholeLine),
    ("stonith_host", Kind::WholeLine),
    ("apiauth", Kind::WholeLine),
    ("respawn", Kind::WholeLine),
    ("failfast", Kind::WholeLine),
    // HBcomm plugins.
    ("bcast", Kind::Options),
    // heartbeat's old name of `bcast`: it warns, then reads the line as `bcast`.
    ("udp", Kind::Options),
    ("serial", Kind::Options),
    ("ping", Kind::Options),
    ("ping6", Kind::Options),
    ("ucast", Kind::WholeLine),
    ("ucast6", Kind::WholeLine),
    ("mcast", Kind::WholeLine),
    ("mcast6", Kind::WholeLine),
    ("ping_group", Kind::WholeLine),
];

/// The directive names heartbeat 3.0.6 accepts (for docs and tests).
pub fn directive_names() -> impl Iterator<Item = &'static str> {
    DIRECTIVES.iter().map(|(n, _)| *n)
}

const DELIMS: &[char] = &[',', ' ', '\t', '\r', '\x0c'];
const WHITESPACE: &[char] = &[' ', '\t', '\r', '\x0c'];

/// A STONITH line as written (mapped to tandem's `stonith` lines once the nodes are known).
#[derive(Debug, Clone)]
enum RawStonith {
    /// `stonith TYPE CFGFILE`: for both nodes.
    Global { ty: String, file: String },
    /// `stonith_host FROM TYPE PARAMS…`.
    Host { from: String, ty: String, params: String },
}

struct HaCf {
    errs: Vec<(usize, String)>,
    warns: Vec<(usize, String)>,
    cluster: String,
    nodes: Vec<(String, usize)>,
    times: HashMap<&'static str, (u64, usize)>,
    hopfudge: u32,
    baud: Option<(u32, usize)>,
    udpport: Option<u16>,
    udpport_line: usize,
    /// heartbeat's UDP plugins read `udpport` once, when their first line is parsed.
    ucast_port: Option<(u16, usize)>,
    bcast_port: Option<(u16, usize)>,
    serial_first: Option<usize>,
    logfacility: Option<Option<String>>,
    logfile: Option<PathBuf>,
    debugfile: Option<PathBuf>,
    use_logd: Option<bool>,
    failback: HbFailback,
    failback_line: usize,
    realtime: bool,
    msgfmt_netstring: bool,
    links: Vec<(LinkConfig, usize)>,
    ping: Vec<IpAddr>,
    stonith: Vec<(RawStonith, usize)>,
    env: Vec<(String, String)>,
    /// Values as written, for `cl_status hbparameter` (last one wins, as heartbeat keeps it).
    recorded: Vec<(String, String)>,
    seen: HashMap<&'static str, usize>,
}

/// The resolved timers.
struct Times {
    keepalive: Duration,
    deadtime: Duration,
    warntime: Duration,
    initdead: Duration,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl HaCf {
    fn new() -> HaCf {
        HaCf {
            errs: Vec::new(),
            warns: Vec::new(),
            cluster: "linux-ha".to_string(),
            nodes: Vec::new(),
            times: HashMap::new(),
            hopfudge: 1,
            baud: None,
            udpport: None,
            udpport_line: 0,
            ucast_port: None,
            bcast_port: None,
            serial_first: None,
            logfacility: None,
            logfile: None,
            debugfile: None,
            use_logd: None,
            failback: HbFailback::Legacy,
            failback_line: 0,
            realtime: true,
            msgfmt_netstring: false,
            links: Vec::new(),
            ping: Vec::new(),
            stonith: Vec::new(),
            env: Vec::new(),
            recorded: Vec::new(),
            seen: HashMap::new(),
        }
    }

    fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.errs.push((line, msg.into()));
    }

    fn warn(&mut self, line: usize, msg: impl Into<String>) {
        self.warns.push((line, msg.into()));
    }

    fn record(&mut self, name: &str, value: &str) {
        if let Some(r) = self.recorded.iter_mut().find(|(n, _)| n == name) {
            r.1 = value.to_string();
        } else {
            self.recorded.push((name.to_string(), value.to_string()));
        }
    }

    /// One physical line of ha.cf.
    fn line(&mut self, n: usize, raw: &str) {
        let text = raw.split('#').next().unwrap_or("");
        let text = text.split(['\r', '\n']).next().unwrap_or("");
        let text = text.trim_start_matches(WHITESPACE);
        if text.is_empty() {
            return;
        }
        let dlen = text.find(WHITESPACE).unwrap_or(text.len());
        let (word, rest) = text.split_at(dlen);
        let Some(&(name, kind)) = DIRECTIVES.iter().find(|(d, _)| *d == word) else {
            self.err(n, unknown(word));
            return;
        };
        let rest = rest.trim_start_matches(DELIMS);
        if name == "udp" {
            self.warn(n, "udp is heartbeat's old name of bcast: read as bcast (as heartbeat reads it); write bcast");
        }
        match kind {
            Kind::WholeLine => self.whole_line(n, name, rest.trim_end_matches(WHITESPACE)),
            Kind::Options => {
                let words: Vec<&str> = rest.split(DELIMS).filter(|w| !w.is_empty()).collect();
                if words.is_empty() {
                    // heartbeat silently ignores a directive without a value; say so.
                    self.warn(n, format!("{name} without a value is ignored (as heartbeat ignores it)"));
                }
                for w in words {
                    self.option(n, name, w);
                }
            }
        }
    }

    /// Directives that may appear once (heartbeat keeps the last; a second one is a mistake).
    fn once(&mut self, n: usize, name: &'static str) {
        if let Some(first) = self.seen.get(name) {
            if *first != n {
                self.warn(
                    n,
                    format!("{name} is already set at line {first}; this value replaces it (as in heartbeat)"),
                );
            }
        }
        self.seen.insert(name, n);
    }

    fn time(&mut self, n: usize, name: &'static str, v: &str) -> Option<u64> {
        match hb_msec(v) {
            Some(t) => Some(t),
            None => {
                self.err(n, format!("{name}: bad time '{v}' (seconds, e.g. 2 or 1.5, or 500ms)"));
                None
            }
        }
    }

    fn boolean(&mut self, n: usize, name: &str, v: &str) -> Option<bool> {
        let b = hb_bool(v);
        if b.is_none() {
            self.err(n, format!("{name}: expected on or off (yes/no, true/false, 1/0), not '{v}'"));
        }
        b
    }

    fn option(&mut self, n: usize, name: &'static str, v: &str) {
        match name {
            "cluster" => {
                self.cluster = v.to_string();
                self.record(name, v);
            }
            "node" => {
                let lower = v.to_ascii_lowercase();
                if let Err(m) = valid_node(&lower) {
                    self.err(n, m);
                } else if let Some((_, l)) = self.nodes.iter().find(|(m, _)| *m == lower) {
                    let l = *l;
                    self.err(n, format!("node {lower} is already named at line {l}"));
                } else {
                    self.nodes.push((lower, n));
                }
            }
            "hopfudge" => match v.parse::<u32>() {
                Ok(h) if h < 256 => {
                    self.hopfudge = h;
                    self.record(name, v);
                }
                _ => self.err(n, format!("hopfudge: expected a number from 0 to 255, not '{v}'")),
            },
            "keepalive" | "deadtime" | "deadping" | "initdead" | "warntime" => {
                self.once(n, name);
                if let Some(t) = self.time(n, name, v) {
                    if name == "keepalive" && t == 0 {
                        self.err(n, "keepalive: must be more than 0");
                        return;
                    }
                    if name == "warntime" && t == 0 {
                        self.err(n, format!("warntime: Warn time [{v}] is invalid (must be more than 0)"));
                        return;
                    }
                    self.times.insert(name, (t, n));
                    self.record(name, v);
                }
            }
            "watchdog" => self.err(
                n,
                "watchdog: tandem does not keep heartbeat's watchdog device open (the kernel's softdog \
                 would reboot this node); remove this line (tandem's own watchdog self-fencing is set up \
                 in tandem.conf, see tandem.conf(5))",
            ),
            "baud" => {
                if let Some((_, first)) = self.baud {
                    self.err(n, format!("baud: Baudrate multiply specified (already at line {first})"));
                    return;
                }
                match v.parse::<u32>() {
                    Ok(b) if [9600, 19200, 38400, 57600, 115200, 230400, 460800].contains(&b) => {
                        if let Some(l) = self.serial_first {
                            self.warn(
                                n,
                                format!(
                                    "baud: heartbeat reads it before the serial line at line {l}, which keeps \
                                     19200 baud; move baud above the serial lines"
                                ),
                            );
                        }
                        self.baud = Some((b, n));
                        self.record(name, v);
                    }
                    _ => self
                        .err(n, format!("baud: invalid baudrate [{v}] (9600 19200 38400 57600 115200 230400 460800)")),
                }
            }
            "udpport" => match v.parse::<u16>() {
                Ok(p) if p > 0 => {
                    for (what, first) in [("ucast", self.ucast_port), ("bcast", self.bcast_port)] {
                        if let Some((port, l)) = first {
                            self.warn(
                                n,
                                format!(
                                    "udpport: heartbeat read the port at the first {what} line (line {l}), \
                                     which keeps port {port}; move udpport above the media lines"
                                ),
                            );
                        }
                    }
                    self.udpport = Some(p);
                    self.udpport_line = n;
                    self.record(name, v);
                }
                _ => self.err(n, format!("udpport: invalid port [{v}] (1 to 65535)")),
            },
            "logfacility" => {
                self.once(n, name);
                if v == "none" {
                    self.logfacility = Some(None);
                } else if let Some(f) = facility(v) {
                    self.logfacility = Some(Some(f.to_string()));
                } else {
                    self.err(n, format!("logfacility: Log facility({v}) not valid (daemon, local0…local7, … or none)"));
                    return;
                }
                self.record(name, v);
            }
            "logfile" | "debugfile" => {
                self.once(n, name);
                let p = PathBuf::from(if v == "/dev/null" { "/dev/null" } else { v });
                if !p.is_absolute() {
                    self.err(n, format!("{name}: '{v}' is not an absolute path"));
                    return;
                }
                if name == "logfile" {
                    self.logfile = Some(p);
                } else {
                    if self.logfile.is_none() {
                        self.warn(
                            n,
                            "debugfile: tandem keeps one log; with no logfile it is written here \
                             (set TANDEM_DEBUG=1 for debug messages)",
                        );
                    }
                    self.debugfile = Some(p);
                }
                self.record(name, v);
            }
            "nice_failback" => {
                let Some(b) = self.boolean(n, name, v) else { return };
                // heartbeat: on → `auto_failback off`; off → `legacy`.
                self.failback = if b { HbFailback::Off } else { HbFailback::Legacy };
                self.failback_line = n;
                self.warn(
                    n,
                    format!(
                        "nice_failback is obsolete: read as 'auto_failback {}' (as heartbeat reads it)",
                        self.failback.name()
                    ),
                );
                self.record("auto_failback", self.failback.name());
            }
            "auto_failback" => {
                self.once(n, name);
                self.failback = match hb_bool(v) {
                    Some(true) => HbFailback::On,
                    Some(false) => HbFailback::Off,
                    None if v.eq_ignore_ascii_case("legacy") => HbFailback::Legacy,
                    None => {
                        self.err(n, format!("auto_failback: expected on, off or legacy, not '{v}'"));
                        return;
                    }
                };
                self.failback_line = n;
                self.record(name, v);
            }
            "rtprio" => match v.parse::<i32>() {
                Ok(p) if (1..=99).contains(&p) => {
                    self.warn(n, format!("rtprio {p}: tandem's loop runs at SCHED_FIFO priority 20"));
                    self.record(name, v);
                }
                _ => self.err(n, format!("rtprio: Illegal realtime priority [{v}] (1 to 99)")),
            },
            "hbgenmethod" => {
                if v != "file" && v != "time" {
                    self.err(n, format!("hbgenmethod: Illegal hb generation method [{v}] (file or time)"));
                    return;
                }
                // Both: tandem starts at max(the stored generation + 1, the time), above both.
                self.record(name, v);
            }
            "realtime" => {
                if let Some(b) = self.boolean(n, name, v) {
                    self.realtime = b;
                    self.record(name, v);
                }
            }
            "debug" => match v.parse::<u32>() {
                Ok(d) if d < 256 => self.record(name, v),
                _ => self.err(n, format!("debug: expected a level from 0 to 255, not '{v}'")),
            },
            "msgfmt" => match v {
                "classic" => {
                    self.msgfmt_netstring = false;
                    self.record(name, v);
                }
                "netstring" => {
                    self.msgfmt_netstring = true;
                    self.warn(
                        n,
                        "msgfmt netstring: heartbeat 3.0.6 loses messages in this mode (docs/heartbeat-wire.md); \
                         use msgfmt classic",
                    );
                    self.record(name, v);
                }
                _ => self.err(n, format!("msgfmt: expected classic or netstring, not '{v}'")),
            },
            "use_logd" => {
                self.once(n, name);
                if let Some(b) = self.boolean(n, name, v) {
                    self.use_logd = Some(b);
                    self.record(name, v);
                }
            }
            "conn_logd_time" => {
                if self.time(n, name, v).is_some_and(|t| t > 0) {
                    self.record(name, v);
                } else {
                    self.err(n, format!("conn_logd_time: bad time '{v}'"));
                }
            }
            "use_apphbd" => {
                if self.boolean(n, name, v) == Some(true) {
                    self.err(
                        n,
                        "use_apphbd on: tandem does not register with apphbd; remove this line \
                         (supervise the tandem daemon with its init script or systemd unit)",
                    );
                }
            }
            "log_badpack" | "syslogmsgfmt" | "coredumps" | "traditional_compression" => {
                // Accepted: tandem always rate-limits its bad-packet warnings, logs in one format,
                // and never compresses (heartbeat compresses only messages over 128 KiB).
                if self.boolean(n, name, v).is_some() {
                    self.record(name, v);
                }
            }
            "record_config_changes" | "record_pengine_inputs" | "enable_config_writes" | "crmd_spawns_pengine" => {
                // Pacemaker settings: meaningless with `crm off`, as in heartbeat.
                if self.boolean(n, name, v).is_some() {
                    self.record(name, v);
                }
            }
            "coreroot" | "crm_daemon_dir" => {
                if !v.starts_with('/') {
                    self.err(n, format!("{name}: '{v}' is not an absolute path"));
                } else {
                    self.record(name, v);
                }
            }
            "crm" | "pacemaker" => {
                if hb_bool(v) == Some(false) {
                    self.record("pacemaker", v);
                } else {
                    self.err(
                        n,
                        format!(
                            "{name} {v}: a heartbeat cluster managed by Pacemaker (the v2 CRM) is not a \
                             haresources cluster; tandem replaces heartbeat only with '{name} off'. Keep \
                             Pacemaker on corosync, or describe the groups in tandem.conf (`tandem export \
                             pacemaker` goes the other way, from tandem.conf to a Pacemaker CIB)"
                        ),
                    );
                }
            }
            "autojoin" => {
                if v.eq_ignore_ascii_case("none") {
                    self.record(name, v);
                } else if v.eq_ignore_ascii_case("other") || v.eq_ignore_ascii_case("any") {
                    self.err(
                        n,
                        format!(
                            "autojoin {v}: nodes joining at run time conflict with haresources (heartbeat \
                             refuses it too); list both nodes with `node` and remove this line"
                        ),
                    );
                } else {
                    self.err(n, format!("autojoin: Invalid autojoin directive [{v}] (none, other or any)"));
                }
            }
            "uuidfrom" => match v {
                "file" => self.record(name, v),
                "nodename" => self.err(
                    n,
                    "uuidfrom nodename: tandem keeps the node's uuid in /var/lib/heartbeat/hb_uuid (heartbeat's \
                     default, `uuidfrom file`); remove this line on BOTH nodes at the same time, or keep \
                     heartbeat on this node",
                ),
                _ => self.err(n, format!("uuidfrom: Invalid uuidfrom directive [{v}] (file or nodename)")),
            },
            "compression" => {
                if v == "zlib" || v == "bz2" {
                    self.record(name, v);
                } else {
                    self.err(n, format!("compression: unknown compression module '{v}' (zlib or bz2)"));
                }
            }
            "compression_threshold" | "memreserve" | "max_rexmit_delay" => match v.parse::<u32>() {
                Ok(x) if x > 0 => {
                    if name == "max_rexmit_delay" && x != 250 {
                        self.warn(n, "max_rexmit_delay: tandem asks for retransmissions after 50..250 ms");
                    }
                    self.record(name, v);
                }
                _ => self.err(n, format!("{name}: expected a positive number, not '{v}'")),
            },
            "env" => match v.split_once('=') {
                Some((k, val)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    self.env.push((format!("HA_{k}"), val.to_string()));
                }
                _ => self.err(n, format!("env: invalid nvpair({v}) (NAME=VALUE)")),
            },
            "quorum_server" => self.err(
                n,
                "quorum_server: a quorum server serves Pacemaker (crm) clusters; a two-node haresources \
                 cluster does not use it; remove this line",
            ),
            "bcast" | "udp" => self.bcast(n, v),
            "serial" => self.serial(n, v),
            "ping" | "ping6" => match v.parse::<IpAddr>() {
                Ok(ip) if (name == "ping") == ip.is_ipv4() && !ip.is_unspecified() && !ip.is_multicast() => {
                    self.add_ping(n, ip)
                }
                Ok(ip) => self
                    .err(n, format!("{name}: {ip} is not a unicast IPv{} address", if name == "ping" { 4 } else { 6 })),
                Err(_) => self.err(n, format!("{name}: '{v}' is not an IP address (host names are not looked up)")),
            },
            _ => self.err(n, unknown(name)),
        }
    }

    fn whole_line(&mut self, n: usize, name: &'static str, rest: &str) {
        let words: Vec<&str> = rest.split(WHITESPACE).filter(|w| !w.is_empty()).collect();
        match name {
            "ucast" | "ucast6" => self.ucast(n, name, &words),
            "mcast" | "mcast6" => self.mcast(n, name, &words),
            "ping_group" => {
                if words.len() < 2 {
                    self.err(n, "ping_group: usage: ping_group NAME ADDR [ADDR…]");
                    return;
                }
                self.warn(
                    n,
                    format!(
                        "ping_group {}: tandem pings each address on its own (no group node in cl_status)",
                        words.first().copied().unwrap_or("")
                    ),
                );
                for w in words.iter().skip(1) {
                    match w.parse::<IpAddr>() {
                        Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => self.add_ping(n, ip),
                        _ => self.err(n, format!("ping_group: '{w}' is not a unicast IP address")),
                    }
                }
            }
            "stonith" => {
                let (Some(ty), Some(file)) = (words.first(), words.get(1)) else {
                    self.err(n, "stonith: usage: stonith TYPE CONFIGFILE");
                    return;
                };
                if words.len() > 2 {
                    self.err(n, "stonith: usage: stonith TYPE CONFIGFILE (one file name)");
                    return;
                }
                if !file.starts_with('/') {
                    self.err(n, format!("stonith: '{file}' is not an absolute path"));
                    return;
                }
                self.stonith.push((RawStonith::Global { ty: ty.to_string(), file: file.to_string() }, n));
            }
            "stonith_host" => {
                if words.len() < 2 {
                    self.err(n, "stonith_host: usage: stonith_host FROM|* TYPE PARAMETERS…");
                    return;
                }
                let from = words.first().copied().unwrap_or("").to_ascii_lowercase();
                let ty = words.get(1).copied().unwrap_or("").to_string();
                // Everything after TYPE, as heartbeat passes it on (the last parameter may hold blanks).
                let params = rest
                    .trim_start_matches(WHITESPACE)
                    .split_once(WHITESPACE)
                    .map(|(_, r)| r.trim_start_matches(WHITESPACE))
                    .and_then(|r| r.split_once(WHITESPACE).map(|(_, p)| p.trim_start_matches(WHITESPACE)))
                    .unwrap_or("")
                    .to_string();
                self.stonith.push((RawStonith::Host { from, ty, params }, n));
            }
            "apiauth" => {
                // heartbeat's API (ipfail, ccm, dopd…) is not offered; the control socket is
                // root-only. Accepted when well formed, like heartbeat, and without effect.
                let ok =
                    words.len() >= 2 && words.iter().skip(1).all(|w| w.starts_with("uid=") || w.starts_with("gid="));
                if !ok {
                    self.err(n, "apiauth: Syntax: apiauth client [uid=uidlist] [gid=gidlist]");
                }
            }
            "respawn" | "failfast" => {
                let prog = words.get(1).copied().unwrap_or("");
                let base = prog.rsplit('/').next().unwrap_or(prog);
                let why = match base {
                    "ipfail" => "ipfail is a heartbeat API client; tandem has no such API (its `ping` \
                                 directive is the connectivity input); remove this line"
                        .to_string(),
                    "dopd" | "drbd-peer-outdater" => "dopd answers DRBD's fence-peer handler over heartbeat's API; \
                                 with tandem, set DRBD's fence-peer handler to `tandem fence-peer` and remove \
                                 this line"
                        .to_string(),
                    "ccm" | "cib" | "crmd" | "lrmd" | "stonithd" | "attrd" | "pengine" | "mgmtd" => {
                        "this is heartbeat's v2 CRM (Pacemaker) started by respawn; tandem replaces only \
                         haresources clusters (`crm off`); keep Pacemaker on corosync (see `tandem export \
                         pacemaker` for the other direction)"
                            .to_string()
                    }
                    _ => format!(
                        "tandem does not start and watch helper programs; run {prog} from its own systemd \
                         unit or init script (or as a resource of a group), and remove this line"
                    ),
                };
                self.err(n, format!("{name} {prog}: {why}"));
            }
            _ => self.err(n, unknown(name)),
        }
    }

    fn link_iface(&mut self, n: usize, name: &str, i: &str) -> bool {
        if let Err(m) = super::words::check_ifname(i) {
            self.err(n, format!("{name}: {m}"));
            return false;
        }
        true
    }

    fn add_link(&mut self, n: usize, l: LinkConfig) {
        if let Some((_, first)) = self.links.iter().find(|(o, _)| o == &l) {
            let first = *first;
            self.err(n, format!("duplicate link '{}' (already at line {first})", l.name()));
            return;
        }
        self.links.push((l, n));
    }

    fn add_ping(&mut self, n: usize, ip: IpAddr) {
        if self.ping.contains(&ip) {
            self.warn(n, format!("ping: {ip} is listed twice"));
        } else {
            self.ping.push(ip);
        }
    }

    fn ucast(&mut self, n: usize, name: &str, words: &[&str]) {
        let (Some(iface), Some(peer)) = (words.first(), words.get(1)) else {
            self.err(n, format!("{name}: usage: {name} INTERFACE PEER_ADDRESS"));
            return;
        };
        if words.len() > 2 {
            self.err(n, format!("{name}: usage: {name} INTERFACE PEER_ADDRESS (heartbeat takes no port here)"));
            return;
        }
        if !self.link_iface(n, name, iface) {
            return;
        }
        let v6 = name == "ucast6";
        let peer = match peer.parse::<IpAddr>() {
            Ok(ip) if ip.is_ipv6() == v6 && !ip.is_unspecified() && !ip.is_multicast() => ip,
            Ok(ip) => {
                self.err(n, format!("{name}: {ip} is not a unicast IPv{} address", if v6 { 6 } else { 4 }));
                return;
            }
            Err(_) => {
                self.err(
                    n,
                    format!("{name}: '{peer}' is not an IP address (host names are not looked up: write the address)"),
                );
                return;
            }
        };
        let port = *self.ucast_port.get_or_insert((self.udpport.unwrap_or(HB_UDPPORT), n));
        self.add_link(n, LinkConfig::Ucast { iface: iface.to_string(), peer, port: port.0 });
    }

    fn bcast(&mut self, n: usize, iface: &str) {
        if !self.link_iface(n, "bcast", iface) {
            return;
        }
        let port = *self.bcast_port.get_or_insert((self.udpport.unwrap_or(HB_UDPPORT), n));
        self.add_link(n, LinkConfig::Bcast { iface: iface.to_string(), port: port.0 });
    }

    fn mcast(&mut self, n: usize, name: &str, words: &[&str]) {
        if words.len() != 5 {
            self.err(n, format!("{name}: usage: {name} INTERFACE GROUP PORT TTL LOOP"));
            return;
        }
        let w = |i: usize| words.get(i).copied().unwrap_or("");
        if !self.link_iface(n, name, w(0)) {
            return;
        }
        let v6 = name == "mcast6";
        let group = match w(1).parse::<IpAddr>() {
            Ok(ip) if ip.is_multicast() && ip.is_ipv6() == v6 => ip,
            _ => {
                self.err(n, format!("{name} [{}] bad addr [{}]", w(0), w(1)));
                return;
            }
        };
        let Some(port) = w(2).parse::<u16>().ok().filter(|p| *p > 0) else {
            self.err(n, format!("{name} [{}] bad port [{}]", w(0), w(2)));
            return;
        };
        let max_ttl = if v6 { 255 } else { 4 };
        let Some(ttl) = w(3).parse::<u8>().ok().filter(|t| *t <= max_ttl) else {
            self.err(n, format!("{name} [{}] bad ttl [{}] (0 to {max_ttl})", w(0), w(3)));
            return;
        };
        let loop_ = match w(4) {
            "0" => false,
            "1" => true,
            l => {
                self.err(n, format!("{name} [{}] bad loop [{l}] (0 or 1)", w(0)));
                return;
            }
        };
        if ttl == 0 {
            self.warn(n, format!("{name}: ttl 0 is sent as ttl 1 (the group's packets stay on the link)"));
        }
        self.add_link(n, LinkConfig::Mcast { iface: w(0).to_string(), group, port, ttl: ttl.max(1), loop_ });
    }

    fn serial(&mut self, n: usize, dev: &str) {
        if !dev.starts_with('/') {
            self.err(n, format!("serial: '{dev}' is not an absolute path"));
            return;
        }
        self.serial_first.get_or_insert(n);
        // heartbeat sets 8N1 with CRTSCTS and CLOCAL; the baud rate is read once.
        let baud = self.baud.map(|(b, _)| b).unwrap_or(HB_BAUD);
        self.add_link(n, LinkConfig::Serial { device: PathBuf::from(dev), baud, rtscts: true });
    }

    /// After the last line: defaults and cross-line rules.
    fn finish(&mut self) {
        if self.links.is_empty() {
            self.err(0, "No heartbeat media defined: need a ucast, bcast, mcast or serial line");
        }
        if self.nodes.len() != 2 {
            let line = self.nodes.first().map(|(_, l)| *l).unwrap_or(0);
            let msg = if self.nodes.is_empty() {
                "no nodes defined: name both nodes with `node`".to_string()
            } else {
                format!(
                    "tandem runs two-node clusters: exactly two `node` names are needed, found {} ({})",
                    self.nodes.len(),
                    self.nodes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(" ")
                )
            };
            self.err(line, msg);
        }
        let times = self.times.clone();
        let get = |k: &str| times.get(k).copied();
        let ka = get("keepalive").map(|(v, _)| v).unwrap_or(1000);
        if let Some((dt, l)) = get("deadtime").or(Some((30_000, 0))) {
            if dt <= 2 * ka {
                let l = if l != 0 { l } else { get("keepalive").map(|(_, l)| l).unwrap_or(0) };
                self.err(
                    l,
                    format!("Dead time [{dt}] is too small compared to keepalive [{ka}] (must be more than twice)"),
                );
            }
        }
        let dt = get("deadtime").map(|(v, _)| v).unwrap_or(30_000);
        if let Some((id, l)) = get("initdead") {
            if id < dt {
                self.err(l, format!("Initial dead time [{id}] is smaller than deadtime [{dt}]"));
            } else if id < 10_000 {
                self.warn(l, format!("Initial dead time [{id} ms] may be too small (it should be >= 10 seconds)"));
            }
        }
        if let Some((dp, l)) = get("deadping") {
            if dp <= 2 * ka {
                self.err(l, format!("Ping dead time [{dp}] is too small compared to keepalive [{ka}]"));
            }
        }
        if let Some((wt, l)) = get("warntime") {
            if wt >= dt {
                self.warn(l, format!("warntime [{wt}] is not less than deadtime [{dt}]: no late-heartbeat warning"));
            }
        }
        // STONITH lines that cannot be run faithfully.
        let nodes: Vec<String> = self.nodes.iter().map(|(n, _)| n.clone()).collect();
        let node_refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let mut serr = Vec::new();
        for (s, line) in &self.stonith {
            if let Err(m) = map_stonith(s, &node_refs) {
                serr.push((*line, m));
            }
        }
        self.errs.extend(serr);
        // Logging: heartbeat falls back on logd when nothing else is configured.
        let no_sink = self.logfile.is_none() && self.debugfile.is_none() && !matches!(self.logfacility, Some(Some(_)));
        if no_sink && self.use_logd == Some(false) {
            let l = self.seen.get("use_logd").copied().unwrap_or(0);
            self.err(l, "No log entry found in ha.cf and use_logd is set to off: set logfile or logfacility");
        }
    }

    fn times(&self) -> Times {
        let get = |k: &str| self.times.get(k).map(|(v, _)| *v);
        let keepalive = get("keepalive").unwrap_or(1000);
        let deadtime = get("deadtime").unwrap_or(30_000);
        let initdead = get("initdead").unwrap_or(if deadtime > 10_000 {
            deadtime
        } else if deadtime < 6000 {
            12_000
        } else {
            2 * deadtime
        });
        let warntime = get("warntime").unwrap_or(deadtime / 2);
        Times { keepalive: ms(keepalive), deadtime: ms(deadtime), warntime: ms(warntime), initdead: ms(initdead) }
    }

    /// tandem's syslog facility: `logfacility`, or syslog through logd (`use_logd yes`, or no
    /// log configured at all, as heartbeat does) at facility daemon.
    fn logfacility(&self) -> Option<String> {
        match &self.logfacility {
            Some(Some(f)) => Some(f.clone()),
            _ => {
                let no_sink = self.logfile.is_none() && self.debugfile.is_none();
                (self.use_logd == Some(true) || no_sink).then(|| "daemon".to_string())
            }
        }
    }

    /// `cl_status hbparameter` values: what ha.cf says, then heartbeat's defaults.
    fn params(&self) -> Vec<(String, String)> {
        let mut out = self.recorded.clone();
        let t = self.times();
        let fmt = |d: Duration| format!("{}ms", d.as_millis());
        let defaults: [(&str, String); 16] = [
            ("cluster", "linux-ha".to_string()),
            ("hopfudge", "1".to_string()),
            ("keepalive", "1000ms".to_string()),
            ("deadtime", "30000ms".to_string()),
            ("initdead", fmt(t.initdead)),
            ("warntime", fmt(t.warntime)),
            ("deadping", fmt(t.deadtime)),
            ("baud", "19200".to_string()),
            ("udpport", HB_UDPPORT.to_string()),
            ("auto_failback", "legacy".to_string()),
            ("hbgenmethod", "file".to_string()),
            ("realtime", "true".to_string()),
            ("msgfmt", "classic".to_string()),
            ("pacemaker", "false".to_string()),
            ("autojoin", "none".to_string()),
            ("uuidfrom", "file".to_string()),
        ];
        for (k, v) in defaults {
            if !out.iter().any(|(n, _)| n == k) {
                out.push((k.to_string(), v));
            }
        }
        out
    }

    /// tandem `stonith` lines from heartbeat's STONITH lines (errors for what cannot be mapped).
    fn stonith_lines(&self) -> Vec<StonithConfig> {
        let nodes: Vec<&str> = self.nodes.iter().map(|(n, _)| n.as_str()).collect();
        let mut out: Vec<StonithConfig> = Vec::new();
        for (s, line) in &self.stonith {
            if let Ok(v) = map_stonith(s, &nodes) {
                for (node, words) in v {
                    if let Some(id) = nodes.iter().position(|n| *n == node).and_then(|i| NodeId::try_from(i).ok()) {
                        if !out.iter().any(|o| o.node == id) {
                            out.push(StonithConfig { node: id, method: method_of(&words), line: *line });
                        }
                    }
                }
            }
        }
        out
    }
}

fn unknown(word: &str) -> String {
    format!("unknown directive '{word}' (heartbeat 3.0.6 refuses it too: Illegal directive)")
}

/// Node names: what `uname -n` can be (heartbeat lower-cases them).
fn valid_node(n: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > 64 {
        return Err(format!("node: bad node name '{n}' (1 to 64 characters)"));
    }
    if !n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(format!("node: bad node name '{n}'"));
    }
    Ok(())
}

/// cluster-glue's `cl_str_to_boolean`.
pub fn hb_bool(v: &str) -> Option<bool> {
    let l = v.to_ascii_lowercase();
    match l.as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// cluster-glue's `cl_get_msec`, strictly: `[0-9]*[.[0-9]+]` seconds, or with an `ms`/`msec`
/// or `us`/`usec` suffix (any case), rounded to the nearest millisecond.
pub fn hb_msec(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let unit = unit.to_ascii_lowercase();
    let (mul_us, ok) = match unit.as_str() {
        "" => (1_000_000u128, true),
        "ms" | "msec" => (1_000, true),
        "us" | "usec" => (1, true),
        _ => (0, false),
    };
    if !ok || num.is_empty() || num.matches('.').count() > 1 || num == "." {
        return None;
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.len() > 12 || frac.len() > 9 {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut frac_v: u128 = 0;
    let mut scale: u128 = 1;
    for b in frac.bytes() {
        frac_v = frac_v * 10 + u128::from(b - b'0');
        scale *= 10;
    }
    // Microseconds, then rounded to milliseconds (heartbeat adds 0.5 and truncates).
    let us = int_v * mul_us + frac_v * mul_us / scale;
    u64::try_from((us + 500) / 1000).ok()
}

fn facility(v: &str) -> Option<&'static str> {
    if v == "security" {
        return Some("auth");
    }
    super::raw::FACILITIES.iter().copied().find(|f| *f == v)
}

// ------------------------------------------------------------------ STONITH

/// heartbeat STONITH plugin types that cannot be run faithfully, with the reason.
fn stonith_refused(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "null" | "external/null" => {
            "it powers nothing off and reports success; remove it (without STONITH, \
                                      tandem logs that shared disks are not protected, as heartbeat does)"
        }
        "suicide" | "external/suicide" => {
            "a node cannot fence its peer by rebooting itself; use a power \
                                           switch or IPMI"
        }
        "ssh" | "external/ssh" => {
            "it needs the dead node to answer ssh, so it cannot fence a dead or hung \
                                   node; use a power switch or IPMI"
        }
        _ => return None,
    })
}

/// The typed method of mapped words: `manual`, or `exec PATH ARG… -T reset NODE`, whose
/// `reset NODE` tandem's exec method supplies itself (as `off NODE`: tandem powers off).
fn method_of(words: &[String]) -> super::FenceMethod {
    match words {
        [exec, path, args @ ..] if exec == "exec" => {
            let args = match args {
                [head @ .., t, _reset, _node] if t == "-T" => {
                    let mut a = head.to_vec();
                    a.push(t.clone());
                    a
                }
                _ => args.to_vec(),
            };
            super::FenceMethod::Exec { path: path.into(), args }
        }
        _ => super::FenceMethod::Manual,
    }
}

/// Maps one heartbeat STONITH line to tandem `stonith NODE METHOD ARG…` lines, as words:
/// `meatware` becomes `manual` (the operator confirms, with `tandem fenced NODE`); any other
/// plugin becomes `exec`, running cluster-glue's own `stonith` command with heartbeat's type
/// and parameters (`-T reset`, what heartbeat asks for), which is what heartbeat runs.
fn map_stonith(s: &RawStonith, nodes: &[&str]) -> Result<Vec<(String, Vec<String>)>, String> {
    let words = |v: &[&str]| v.iter().map(|w| w.to_string()).collect::<Vec<String>>();
    match s {
        RawStonith::Global { ty, file } => {
            if let Some(why) = stonith_refused(ty) {
                return Err(format!("stonith {ty}: {why}"));
            }
            let mut out = Vec::new();
            for n in nodes {
                let cmd = if ty == "meatware" {
                    words(&["manual"])
                } else {
                    words(&["exec", STONITH_CMD, "-t", ty, "-F", file, "-T", "reset", n])
                };
                out.push((n.to_string(), cmd));
            }
            Ok(out)
        }
        RawStonith::Host { from, ty, params } => {
            if let Some(why) = stonith_refused(ty) {
                return Err(format!("stonith_host {ty}: {why}"));
            }
            if from != "*" && !nodes.contains(&from.as_str()) {
                return Err(format!("stonith_host: '{from}' is neither * nor a node ({})", nodes.join(" ")));
            }
            let p: Vec<&str> = params.split(WHITESPACE).filter(|w| !w.is_empty()).collect();
            if ty == "meatware" {
                // meatware's parameter is the node list it controls.
                let targets: Vec<String> = p.iter().map(|w| w.to_ascii_lowercase()).collect();
                return Ok(targets.into_iter().map(|t| (t, words(&["manual"]))).collect());
            }
            if ty == "external/ipmi" {
                // hostname ipaddr userid passwd interface (cluster-glue 1.0.12's order).
                let [host, ip, user, pass, iface] = match p.as_slice() {
                    [a, b, c, d, e] => [*a, *b, *c, *d, *e],
                    _ => {
                        return Err("stonith_host external/ipmi: expected HOSTNAME IPADDR USERID PASSWD \
                                    INTERFACE (cluster-glue's parameter order)"
                            .to_string())
                    }
                };
                let target = host.to_ascii_lowercase();
                if !nodes.contains(&target.as_str()) {
                    return Err(format!(
                        "stonith_host external/ipmi: host '{host}' is not a node ({})",
                        nodes.join(" ")
                    ));
                }
                if iface != "lan" && iface != "lanplus" {
                    return Err(format!("stonith_host external/ipmi: interface '{iface}' (lan or lanplus)"));
                }
                // The password is in ha.cf itself: tandem's built-in IPMI client wants it in a
                // file of its own, so this stays heartbeat's plugin, through `stonith`.
                let cmd = words(&[
                    "exec",
                    STONITH_CMD,
                    "-t",
                    "external/ipmi",
                    &format!("hostname={host}"),
                    &format!("ipaddr={ip}"),
                    &format!("userid={user}"),
                    &format!("passwd={pass}"),
                    &format!("interface={iface}"),
                    "-T",
                    "reset",
                    &target,
                ]);
                return Ok(vec![(target, cmd)]);
            }
            // Other plugins: the parameters in order (`stonith -p` takes them as one string,
            // which a command word cannot hold; each becomes NAME=VALUE only for known plugins),
            // so the whole parameter string goes to `stonith -p`.
            let target_nodes: Vec<&str> =
                if from == "*" { nodes.to_vec() } else { nodes.iter().copied().filter(|n| *n != from).collect() };
            Ok(target_nodes
                .into_iter()
                .map(|t| {
                    let cmd = vec![
                        "exec".to_string(),
                        STONITH_CMD.to_string(),
                        "-t".to_string(),
                        ty.clone(),
                        "-p".to_string(),
                        params.clone(),
                        "-T".to_string(),
                        "reset".to_string(),
                        t.to_string(),
                    ];
                    (t.to_string(), cmd)
                })
                .collect())
        }
    }
}

// ------------------------------------------------------------------ haresources

/// The groups of haresources (heartbeat's ResourceManager rules: `#` starts a comment
/// anywhere, a trailing `\` joins the next line, the first word is the preferred node, in any
/// case), with heartbeat's name (key) of each, and `(line, message)` errors.
fn haresources_groups(
    text: &str,
    nodes: &[String],
    scripts: &dyn ScriptLookup,
) -> (Vec<GroupConfig>, Vec<String>, Vec<(usize, String)>) {
    let mut groups: Vec<GroupConfig> = Vec::new();
    let mut keys = Vec::new();
    let mut errs = Vec::new();
    let mut used: HashMap<String, (String, usize)> = HashMap::new();
    let mut logical = String::new();
    let mut start = 0;
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let l = raw.split('#').next().unwrap_or("").trim_end_matches(['\r']);
        if logical.is_empty() {
            start = i + 1;
        }
        if let Some(body) = l.strip_suffix('\\') {
            logical.push_str(body);
            logical.push(' ');
            if i + 1 < lines.len() {
                continue;
            }
        } else {
            logical.push_str(l);
        }
        let words: Vec<String> = logical.split_whitespace().map(str::to_string).collect();
        logical.clear();
        let Some((node, res)) = words.split_first() else { continue };
        let node = node.to_ascii_lowercase();
        let Some(pref) = nodes.iter().position(|n| *n == node).and_then(|p| NodeId::try_from(p).ok()) else {
            if !nodes.is_empty() {
                errs.push((start, format!("'{node}' is not a node of ha.cf ({})", nodes.join(" "))));
            }
            continue;
        };
        if res.is_empty() {
            errs.push((start, format!("{node}: a line needs at least one resource")));
            continue;
        }
        if groups.len() == MAX_GROUPS {
            errs.push((start, format!("too many resource groups (at most {})", MAX_GROUPS)));
            continue;
        }
        let key = res.first().cloned().unwrap_or_default();
        if let Some(g) = groups.iter().find(|g| g.name == key) {
            errs.push((
                start,
                format!("the first resource '{key}' is already the first of line {}: it must be unique", g.line),
            ));
            continue;
        }
        let mut resources = Vec::new();
        for w in res {
            match haresource(w, scripts) {
                Ok(r) => {
                    let id = r.spec.identity();
                    if let Some((g, l)) = used.get(&id) {
                        errs.push((start, format!("{w}: {id} is already used by the group of line {l} ({g})")));
                    } else {
                        used.insert(id, (key.clone(), start));
                    }
                    resources.push(r);
                }
                Err(m) => errs.push((start, m)),
            }
        }
        keys.push(key.clone());
        let monitor = vec![None; resources.len()];
        groups.push(GroupConfig { name: key, preferred: pref, resources, line: start, monitor });
    }
    (groups, keys, errs)
}

/// One haresources resource: `NAME[::ARG…]`, or a bare IP address (`IPaddr::ADDR…`).
/// `IPaddr`, `IPaddr2`, `drbddisk`, `Filesystem` and `LVM` become tandem's built-in agents with
/// the same argument meaning as heartbeat's scripts; anything else is a script found as
/// heartbeat finds it, whose `status` is judged by what it prints.
pub fn haresource(word: &str, scripts: &dyn ScriptLookup) -> Result<Resource, String> {
    let text = word.to_string();
    let is_ip = word.split('/').next().is_some_and(|h| h.parse::<Ipv4Addr>().is_ok());
    let (name, args): (&str, Vec<&str>) = if is_ip {
        ("IPaddr", vec![word])
    } else {
        match word.split_once("::") {
            Some((n, rest)) => (n, rest.split("::").collect()),
            None => (word, Vec::new()),
        }
    };
    if args.iter().any(|a| a.is_empty()) {
        return Err(format!("{word}: empty argument"));
    }
    let built = |spec: ResourceSpec| Ok(Resource { spec, text: text.clone() });
    let script = |why: Option<&str>| -> Result<Resource, String> {
        match scripts.find(name) {
            Some(path) => Ok(Resource {
                spec: ResourceSpec::Script(ScriptSpec {
                    path,
                    args: args.iter().map(|a| a.to_string()).collect(),
                    status_by_stdout: true,
                }),
                text: text.clone(),
            }),
            None => Err(match why {
                Some(w) => format!("{word}: {w}, and there is no script {HA_D}/resource.d/{name} to run instead"),
                None => format!("{word}: no resource script {HA_D}/resource.d/{name} or {INIT_D}/{name}"),
            }),
        }
    };
    match name {
        "IPaddr" | "IPaddr2" => {
            let [arg] = args.as_slice() else {
                return Err(format!("{word}: {name} takes one argument, ADDRESS[/BITS[/INTERFACE[/BROADCAST]]]"));
            };
            hb_ip(arg).map(ResourceSpec::Ip).map_err(|m| format!("{word}: {m}")).and_then(built)
        }
        "drbddisk" => match args.as_slice() {
            [res] => parse_resource(&format!("drbd::{res}")).map(|r| Resource { spec: r.spec, text }),
            // No resource name: drbddisk acts on all DRBD resources.
            [] => script(Some("drbddisk without a resource name means all DRBD resources")),
            _ => Err(format!("{word}: drbddisk takes one argument, the DRBD resource")),
        },
        "Filesystem" => {
            if !(2..=4).contains(&args.len()) {
                return Err(format!("{word}: Filesystem takes DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]"));
            }
            let arg = |i: usize| args.get(i).copied().unwrap_or("");
            let device = if let Some(l) = arg(0).strip_prefix("-L") {
                format!("LABEL={l}")
            } else if let Some(u) = arg(0).strip_prefix("-U") {
                format!("UUID={u}")
            } else {
                arg(0).to_string()
            };
            let fstype = arg(2);
            let network = ["nfs", "nfs4", "cifs", "smbfs", "glusterfs", "ceph", "sshfs"].contains(&fstype);
            let local_dev = device.starts_with('/') || device.starts_with("LABEL=") || device.starts_with("UUID=");
            if network || !local_dev {
                // Network filesystems need mount(8)'s helpers: heartbeat's own script does that.
                return script(Some("a network filesystem needs mount(8)'s helpers"));
            }
            let mut t = format!("mount::{device}::{}", arg(1));
            for a in args.iter().skip(2) {
                t.push_str("::");
                t.push_str(a);
            }
            parse_resource(&t).map(|r| Resource { spec: r.spec, text }).map_err(|m| format!("{word}: {m}"))
        }
        "LVM" => match args.as_slice() {
            [vg] => parse_resource(&format!("lvm::{vg}"))
                .map(|r| Resource { spec: r.spec, text })
                .map_err(|m| format!("{word}: {m}")),
            _ => Err(format!("{word}: LVM takes one argument, the volume group")),
        },
        _ => {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(format!("{word}: bad resource script name '{name}'"));
            }
            script(None)
        }
    }
}

/// The netmask field of IPaddr/IPaddr2: bits, or a netmask in dotted quad notation, which the
/// scripts' `findif` turns into bits (a mask that is not contiguous is refused).
fn hb_netmask_bits(b: &str) -> Result<String, String> {
    if !b.contains('.') {
        return Ok(b.to_string());
    }
    let m = u32::from(b.parse::<Ipv4Addr>().map_err(|_| format!("bad netmask '{b}'"))?);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(format!("bad netmask '{b}' (its one bits must come first)"));
    }
    Ok(m.leading_ones().to_string())
}

/// heartbeat's IPaddr/IPaddr2 argument: `ADDRESS[/BITS[/INTERFACE[:LABEL]][/BROADCAST]]`; a
/// third field starting with a digit is the broadcast address (no interface).
fn hb_ip(arg: &str) -> Result<IpSpec, String> {
    let mut f = arg.split('/');
    let addr = f.next().unwrap_or("");
    let bits = f.next();
    let third = f.next();
    let fourth = f.next();
    if f.next().is_some() {
        return Err(format!("too many '/' fields in '{arg}'"));
    }
    let (nic, bcast) = match third {
        Some(t) if t.starts_with(|c: char| c.is_ascii_digit()) => (None, Some(t)),
        Some(t) => (Some(t), fourth),
        None => (None, None),
    };
    if third.is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit())) && fourth.is_some() {
        return Err(format!("'{arg}': a broadcast address cannot be followed by more fields"));
    }
    let (iface, label) = match nic.map(|n| n.split_once(':').map(|(i, l)| (i, Some(l))).unwrap_or((n, None))) {
        Some((i, l)) => (Some(i), l),
        None => (None, None),
    };
    let mut t = addr.to_string();
    if let Some(b) = bits {
        t.push('/');
        t.push_str(&hb_netmask_bits(b)?);
        if let Some(i) = iface {
            t.push('/');
            t.push_str(i);
        }
    } else if nic.is_some() || bcast.is_some() {
        return Err(format!("'{arg}': netmask bits missing"));
    }
    let mut spec = IpSpec::parse(&t)?;
    if !spec.addr.is_ipv4() {
        return Err(format!("{} is not an IPv4 address (heartbeat's IPv6addr script manages IPv6)", spec.addr));
    }
    if let Some(l) = label {
        if l.is_empty() || l.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(format!("bad label '{l}'"));
        }
        let full = format!("{}:{l}", iface.unwrap_or(""));
        if full.len() > super::words::IFNAME_MAX {
            return Err(format!("label '{full}' is longer than {} characters", super::words::IFNAME_MAX));
        }
        spec.label = Some(l.to_string());
    }
    if let Some(b) = bcast {
        spec.broadcast = Some(b.parse::<Ipv4Addr>().map_err(|_| format!("bad broadcast address '{b}'"))?);
    }
    Ok(spec)
}

// ------------------------------------------------------------------ tandem.conf

/// `protocol heartbeat` in tandem.conf: the settings heartbeat's protocol needs, from the
/// directives `hb_authkeys PATH` (heartbeat's authkeys file, required) and `auto_failback
/// on|off|legacy`; heartbeat's names of the groups are their first resources as written.
pub fn settings_for_tandem_conf(
    authkeys: PathBuf,
    authkeys_line: usize,
    failback: HbFailback,
    groups: &[GroupConfig],
) -> HbSettings {
    let mut hb = HbSettings::new(authkeys);
    hb.authkeys_line = authkeys_line;
    hb.failback = failback;
    hb.group_keys =
        groups.iter().map(|g| g.resources.first().map(|r| r.text.clone()).unwrap_or_else(|| g.name.clone())).collect();
    hb.params = vec![("auto_failback".to_string(), failback.name().to_string())];
    hb
}

/// tandem.conf's rules for `protocol heartbeat`: `hb_authkeys` instead of `authkey`;
/// `auto_failback legacy` only with it. `bad`: a key directive had a bad value (reported).
pub fn check_tandem_conf_protocol(
    protocol_hb: Option<usize>,
    authkey: &Option<(PathBuf, usize)>,
    hb_authkeys: &Option<(PathBuf, usize)>,
    failback_legacy: Option<usize>,
    bad: bool,
    errs: &mut Vec<(usize, String)>,
) {
    match protocol_hb {
        None => {
            if authkey.is_none() && !bad {
                errs.push((0, "missing required directive 'authkey'".to_string()));
            }
            if let Some((_, l)) = hb_authkeys {
                errs.push((
                    *l,
                    "hb_authkeys: only with `protocol heartbeat` (tandem's own key is `authkey`)".to_string(),
                ));
            }
            if let Some(l) = failback_legacy {
                errs.push((
                    l,
                    "auto_failback: 'legacy' (heartbeat's old failback mode) is only spoken with `protocol \
                     heartbeat`; use on or off"
                        .to_string(),
                ));
            }
        }
        Some(pl) => {
            if hb_authkeys.is_none() && !bad {
                errs.push((
                    pl,
                    "protocol heartbeat: missing `hb_authkeys PATH` (heartbeat's authkeys file)".to_string(),
                ));
            }
            if let Some((_, l)) = authkey {
                errs.push((
                    *l,
                    "authkey: with `protocol heartbeat` the key is heartbeat's authkeys file, named by \
                     `hb_authkeys`; remove this line"
                        .to_string(),
                ));
            }
        }
    }
}

// ------------------------------------------------------------------ files

/// The resource script lookup heartbeat uses, on this host: `DIR/resource.d/NAME` (and
/// /etc/ha.d/resource.d/NAME when DIR is another directory), then `/etc/init.d/NAME`, each an
/// executable regular file.
pub fn host_scripts(dir: &Path) -> impl Fn(&str) -> Option<PathBuf> + '_ {
    move |name: &str| {
        let mut candidates = vec![dir.join("resource.d").join(name)];
        if dir != Path::new(HA_D) {
            candidates.push(Path::new(HA_D).join("resource.d").join(name));
        }
        candidates.push(Path::new(INIT_D).join(name));
        candidates.into_iter().find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }
}

/// Reads `DIR/ha.cf` and `DIR/haresources` (missing haresources = no groups) and parses them.
pub fn read_ha_d(dir: &Path) -> Result<Parsed, Vec<ConfigError>> {
    let cf = super::read_config_file(&dir.join(HA_CF)).map_err(|e| vec![e])?;
    let hr_path = dir.join(HARESOURCES);
    let hr = if hr_path.exists() { Some(super::read_config_file(&hr_path).map_err(|e| vec![e])?) } else { None };
    parse(dir, &cf, hr.as_deref(), &host_scripts(dir))
}

#[cfg(test)]
mod tests;
