//! Directives: one logical line → one typed [`Directive`], each value checked on its own.
//! Cross-line rules (duplicates, defaults, timing relations, known nodes) are in `resolve`.
//! Pure: no filesystem, no host lookups.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::lex::Line;
use super::resource::parse_resource;
use super::words::{check_ifname, parse_duration};
use super::Resource;
use crate::time::Duration;

/// Standard serial line rates.
pub const BAUD_RATES: [u32; 11] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600];

/// Syslog facility names accepted by `logfacility`.
pub const FACILITIES: [&str; 20] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "local0",
    "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// A time-valued directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeKey {
    Keepalive,
    Warntime,
    Deadtime,
    Initdead,
    StartTimeout,
    StopTimeout,
    StatusTimeout,
    GarpInterval,
    FenceDelay,
    FenceTimeout,
    FenceCheck,
    PingInterval,
    PingDeadtime,
    PingHold,
    RestartWindow,
    FailureTimeout,
    NotifyTimeout,
}

/// A link line as written (port `None` = take `udpport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawLink {
    Ucast { iface: String, peer: IpAddr, port: Option<u16> },
    Bcast { iface: String, port: Option<u16> },
    Mcast { iface: String, group: IpAddr, port: Option<u16>, ttl: u8, loop_: bool },
    Serial { device: PathBuf, baud: u32, rtscts: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    Cluster(String),
    Node(Vec<String>),
    Authkey(PathBuf),
    /// A second key accepted on receive (key rotation); packets are sent with `authkey`.
    AuthkeyAccept(PathBuf),
    Time(TimeKey, Duration),
    AutoFailback(bool),
    Realtime(bool),
    WaitForPeer(bool),
    StonithRequired(bool),
    IsolatedStop(bool),
    /// `watchdog DEVICE TIMEOUT` (whole seconds).
    Watchdog {
        device: PathBuf,
        timeout: Duration,
    },
    Udpport(u16),
    GarpCount(u32),
    RestartLimit(u32),
    /// `monitor INTERVAL [GROUP[/N]…]` (`None`: off; targets as written).
    Monitor {
        interval: Option<Duration>,
        targets: Vec<String>,
    },
    Link(RawLink),
    Ping(Vec<IpAddr>),
    Stonith {
        node: String,
        method: super::stonith::FenceMethod,
    },
    Socket(PathBuf),
    Statedir(PathBuf),
    /// `None` = "none".
    Logfacility(Option<String>),
    /// `protocol tandem|heartbeat`: true for heartbeat's.
    ProtocolHeartbeat(bool),
    /// `hb_authkeys PATH`: heartbeat's authkeys file (with `protocol heartbeat`).
    HbAuthkeys(PathBuf),
    /// `auto_failback legacy` (heartbeat's old mode; with `protocol heartbeat` only).
    AutoFailbackLegacy,
    Logfile(PathBuf),
    /// A program run on every transition (`notify PATH`, repeatable).
    Notify(PathBuf),
    /// `metrics_listen ADDR:PORT`: serve `GET /metrics` there.
    MetricsListen(SocketAddr),
    /// A known directive whose value was bad (already reported): `resolve` knows it was
    /// given and so does not report it missing or check rules against a default instead.
    Bad,
    /// `resources` holds the words that parsed; bad ones were reported.
    Group {
        name: String,
        preferred: String,
        resources: Vec<Resource>,
    },
}

/// One parsed line: the directive name as written, its line, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub name: &'static str,
    pub line: usize,
    pub directive: Directive,
}

/// Parses every logical line; returns the good ones and `(line, message)` for the bad ones.
pub fn parse(lines: &[Line]) -> (Vec<RawLine>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for l in lines {
        let Some((first, rest)) = l.words.split_first() else {
            continue;
        };
        let mut e = |m: String| errs.push((l.line, m));
        if let Some((name, directive)) = parse_line(first, rest, &mut e) {
            out.push(RawLine { name, line: l.line, directive });
        } else if let Some(name) = static_name(first) {
            // Known directive, bad value: tell `resolve` it was there.
            out.push(RawLine { name, line: l.line, directive: Directive::Bad });
        }
    }
    (out, errs)
}

/// Names of all directives, for messages and docs.
pub const DIRECTIVES: [&str; 46] = [
    "cluster",
    "node",
    "authkey",
    "authkey_accept",
    "keepalive",
    "warntime",
    "deadtime",
    "initdead",
    "auto_failback",
    "udpport",
    "ucast",
    "bcast",
    "mcast",
    "serial",
    "ping",
    "stonith",
    "fence_delay",
    "fence_timeout",
    "fence_check",
    "ping_interval",
    "ping_deadtime",
    "ping_hold",
    "monitor",
    "restart_limit",
    "restart_window",
    "failure_timeout",
    "isolated_stop",
    "watchdog",
    "wait_for_peer",
    "stonith_required",
    "socket",
    "statedir",
    "logfacility",
    "logfile",
    "group",
    "start_timeout",
    "stop_timeout",
    "status_timeout",
    "garp_count",
    "garp_interval",
    "realtime",
    "notify",
    "notify_timeout",
    "metrics_listen",
    "protocol",
    "hb_authkeys",
];

fn static_name(word: &str) -> Option<&'static str> {
    DIRECTIVES.iter().copied().find(|d| *d == word)
}

/// Parses one line. Reports errors through `e` and returns `None` when nothing usable is left.
fn parse_line(word: &str, args: &[String], e: &mut dyn FnMut(String)) -> Option<(&'static str, Directive)> {
    let Some(name) = static_name(word) else {
        e(unknown_directive(word));
        return None;
    };
    let a = |i: usize| args.get(i).map(String::as_str);
    // Checks the argument count; reports and returns false when it is wrong.
    let mut count = |min: usize, max: usize, usage: &str| -> bool {
        if args.len() < min || args.len() > max {
            e(format!("{name}: usage: {name} {usage}"));
            false
        } else {
            true
        }
    };
    let d = match name {
        "cluster" => {
            if !count(1, 1, "NAME") {
                return None;
            }
            let n = a(0).unwrap_or("");
            Directive::Cluster(valid_name(n, 64, "cluster").map_err(&mut *e).ok()?)
        }
        "node" => {
            if !count(1, usize::MAX, "NAME [NAME…]") {
                return None;
            }
            let mut v = Vec::new();
            let mut ok = true;
            for n in args {
                match valid_name(n, 64, "node") {
                    Ok(n) => v.push(n),
                    Err(m) => {
                        e(m);
                        ok = false;
                    }
                }
            }
            if !ok {
                return None;
            }
            Directive::Node(v)
        }
        "authkey" => {
            if !count(1, 1, "PATH") {
                return None;
            }
            Directive::Authkey(abs_path(name, a(0).unwrap_or("")).map_err(&mut *e).ok()?)
        }
        "authkey_accept" => {
            if !count(1, 1, "PATH") {
                return None;
            }
            Directive::AuthkeyAccept(abs_path(name, a(0).unwrap_or("")).map_err(&mut *e).ok()?)
        }
        "keepalive" | "warntime" | "deadtime" | "initdead" | "start_timeout" | "stop_timeout" | "status_timeout"
        | "garp_interval" | "fence_delay" | "fence_timeout" | "fence_check" | "ping_interval" | "ping_deadtime"
        | "ping_hold" | "restart_window" | "failure_timeout" | "notify_timeout" => {
            if !count(1, 1, "TIME (e.g. 500ms, 2s)") {
                return None;
            }
            let key = match name {
                "keepalive" => TimeKey::Keepalive,
                "warntime" => TimeKey::Warntime,
                "deadtime" => TimeKey::Deadtime,
                "initdead" => TimeKey::Initdead,
                "start_timeout" => TimeKey::StartTimeout,
                "stop_timeout" => TimeKey::StopTimeout,
                "status_timeout" => TimeKey::StatusTimeout,
                "fence_delay" => TimeKey::FenceDelay,
                "fence_timeout" => TimeKey::FenceTimeout,
                "fence_check" => TimeKey::FenceCheck,
                "ping_interval" => TimeKey::PingInterval,
                "ping_deadtime" => TimeKey::PingDeadtime,
                "ping_hold" => TimeKey::PingHold,
                "restart_window" => TimeKey::RestartWindow,
                "failure_timeout" => TimeKey::FailureTimeout,
                "notify_timeout" => TimeKey::NotifyTimeout,
                _ => TimeKey::GarpInterval,
            };
            let v = a(0).unwrap_or("");
            let d = parse_duration(v).map_err(|m| e(format!("{name}: {m}"))).ok()?;
            // fence_delay 0: the node that would wait fences at once; fence_check 0: never;
            // ping_hold 0: no hysteresis.
            if !matches!(key, TimeKey::FenceDelay | TimeKey::FenceCheck | TimeKey::PingHold | TimeKey::FailureTimeout)
                && d < Duration::from_millis(1)
            {
                e(format!("{name}: must be at least 1ms, not '{v}'"));
                return None;
            }
            Directive::Time(key, d)
        }
        "auto_failback" | "realtime" | "wait_for_peer" | "stonith_required" | "isolated_stop" => {
            if !count(1, 1, "on|off") {
                return None;
            }
            let v = a(0).unwrap_or("");
            let b = match parse_bool(v) {
                Some(b) => b,
                None if v == "legacy" && name == "auto_failback" => return Some((name, Directive::AutoFailbackLegacy)),
                None => {
                    e(format!("{name}: expected on or off, not '{v}'"));
                    return None;
                }
            };
            match name {
                "realtime" => Directive::Realtime(b),
                "wait_for_peer" => Directive::WaitForPeer(b),
                "stonith_required" => Directive::StonithRequired(b),
                "isolated_stop" => Directive::IsolatedStop(b),
                _ => Directive::AutoFailback(b),
            }
        }
        "watchdog" => {
            if !count(2, 2, "DEVICE TIMEOUT (e.g. /dev/watchdog 5s)") {
                return None;
            }
            let device = abs_path(name, a(0).unwrap_or("")).map_err(&mut *e).ok()?;
            let v = a(1).unwrap_or("");
            let timeout = parse_duration(v).map_err(|m| e(format!("watchdog: {m}"))).ok()?;
            if timeout.subsec_nanos() != 0 || timeout.as_secs() == 0 || timeout.as_secs() > 600 {
                e(format!("watchdog: the timeout is whole seconds from 1s to 600s (the driver's unit), not '{v}'"));
                return None;
            }
            Directive::Watchdog { device, timeout }
        }
        "udpport" => {
            if !count(1, 1, "PORT") {
                return None;
            }
            Directive::Udpport(port(name, a(0).unwrap_or("")).map_err(&mut *e).ok()?)
        }
        "restart_limit" => {
            if !count(1, 1, "COUNT (0..100)") {
                return None;
            }
            let v = a(0).unwrap_or("");
            match number(v) {
                Some(n) if n <= 100 => Directive::RestartLimit(u32::try_from(n).unwrap_or(100)),
                _ => {
                    e(format!("restart_limit: expected a number from 0 to 100, not '{v}'"));
                    return None;
                }
            }
        }
        "monitor" => {
            if !count(1, usize::MAX, "INTERVAL [GROUP[/N]…] (e.g. 10s, or 0 to turn monitoring off)") {
                return None;
            }
            let v = a(0).unwrap_or("");
            let d = parse_duration(v).map_err(|m| e(format!("monitor: {m}"))).ok()?;
            if !d.is_zero() && d < Duration::from_millis(100) {
                e(format!("monitor: an interval of at least 100ms (or 0: off), not '{v}'"));
                return None;
            }
            let targets: Vec<String> = args.iter().skip(1).cloned().collect();
            Directive::Monitor { interval: Some(d).filter(|d| !d.is_zero()), targets }
        }
        "garp_count" => {
            if !count(1, 1, "COUNT (0..100)") {
                return None;
            }
            let v = a(0).unwrap_or("");
            match number(v) {
                Some(n) if n <= 100 => Directive::GarpCount(u32::try_from(n).unwrap_or(100)),
                _ => {
                    e(format!("garp_count: expected a number from 0 to 100, not '{v}'"));
                    return None;
                }
            }
        }
        "ucast" => {
            if !count(2, 3, "IFACE PEER_ADDR [PORT]") {
                return None;
            }
            let iface = link_iface(name, a(0).unwrap_or("")).map_err(&mut *e);
            let p = a(1).unwrap_or("");
            let peer = match p.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                    e(format!("ucast: {ip} is not a unicast address"));
                    None
                }
                Ok(ip) => Some(ip),
                Err(_) => {
                    e(format!("ucast: '{p}' is not an IP address (host names are not looked up)"));
                    None
                }
            };
            let port = opt_port(name, a(2)).map_err(&mut *e);
            Directive::Link(RawLink::Ucast { iface: iface.ok()?, peer: peer?, port: port.ok()? })
        }
        "bcast" => {
            if args.len() >= 2 && number(a(1).unwrap_or("")).is_none() {
                e("bcast: one interface per line (usage: bcast IFACE [PORT])".to_string());
                return None;
            }
            if !count(1, 2, "IFACE [PORT]") {
                return None;
            }
            let iface = link_iface(name, a(0).unwrap_or("")).map_err(&mut *e);
            let port = opt_port(name, a(1)).map_err(&mut *e);
            Directive::Link(RawLink::Bcast { iface: iface.ok()?, port: port.ok()? })
        }
        "mcast" => {
            if !count(2, 5, "IFACE GROUP_ADDR [PORT [TTL [LOOP]]]") {
                return None;
            }
            let iface = link_iface(name, a(0).unwrap_or("")).map_err(&mut *e);
            let g = a(1).unwrap_or("");
            let group = match g.parse::<IpAddr>() {
                Ok(ip) if ip.is_multicast() => Some(ip),
                Ok(ip) => {
                    e(format!("mcast: {ip} is not a multicast group address"));
                    None
                }
                Err(_) => {
                    e(format!("mcast: '{g}' is not an IP address"));
                    None
                }
            };
            let port = opt_port(name, a(2)).map_err(&mut *e);
            let ttl = match a(3) {
                None => Some(1),
                Some(t) => match number(t) {
                    Some(n @ 1..=255) => u8::try_from(n).ok(),
                    _ => {
                        e(format!("mcast: TTL must be 1 to 255, not '{t}'"));
                        None
                    }
                },
            };
            let loop_ = match a(4) {
                None | Some("0") => Some(false),
                Some("1") => Some(true),
                Some(l) => {
                    e(format!("mcast: LOOP must be 0 or 1, not '{l}'"));
                    None
                }
            };
            Directive::Link(RawLink::Mcast {
                iface: iface.ok()?,
                group: group?,
                port: port.ok()?,
                ttl: ttl?,
                loop_: loop_?,
            })
        }
        "serial" => {
            if !count(1, 3, "DEVICE [BAUD] [rtscts]") {
                return None;
            }
            let device = abs_path(name, a(0).unwrap_or("")).map_err(&mut *e);
            let mut baud = Some(19200);
            let mut rtscts = false;
            for (i, w) in args.iter().enumerate().skip(1) {
                if w == "rtscts" && !rtscts {
                    rtscts = true;
                } else if i == 1 {
                    baud = match number(w).and_then(|n| u32::try_from(n).ok()) {
                        Some(b) if BAUD_RATES.contains(&b) => Some(b),
                        _ => {
                            e(format!(
                                "serial: bad baud rate '{w}' (one of 1200 2400 4800 9600 19200 38400 57600 \
                                 115200 230400 460800 921600)"
                            ));
                            None
                        }
                    };
                } else {
                    e(format!("serial: unexpected '{w}' (usage: serial DEVICE [BAUD] [rtscts])"));
                    return None;
                }
            }
            Directive::Link(RawLink::Serial { device: device.ok()?, baud: baud?, rtscts })
        }
        "ping" => {
            if !count(1, usize::MAX, "ADDR [ADDR…]") {
                return None;
            }
            let mut v = Vec::new();
            for w in args {
                match w.parse::<IpAddr>() {
                    Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => v.push(ip),
                    Ok(ip) => e(format!("ping: {ip} is not a unicast address")),
                    Err(_) => e(format!("ping: '{w}' is not an IP address")),
                }
            }
            Directive::Ping(v)
        }
        "stonith" => {
            if !count(2, usize::MAX, "NODE METHOD [ARG…]") {
                return None;
            }
            let node = a(0).unwrap_or("").to_string();
            let method = super::stonith::parse_method(args.get(1..).unwrap_or(&[]))
                .map_err(|m| e(format!("stonith {node}: {m}")))
                .ok()?;
            Directive::Stonith { node, method }
        }
        "socket" | "statedir" | "logfile" => {
            let usage = if name == "statedir" {
                "DIR"
            } else if name == "logfile" {
                "PATH|-"
            } else {
                "PATH"
            };
            if !count(1, 1, usage) {
                return None;
            }
            let v = a(0).unwrap_or("");
            if name == "logfile" && v == "-" {
                Directive::Logfile(PathBuf::from("-"))
            } else {
                let p = abs_path(name, v).map_err(&mut *e).ok()?;
                match name {
                    "socket" => Directive::Socket(p),
                    "statedir" => Directive::Statedir(p),
                    _ => Directive::Logfile(p),
                }
            }
        }
        "notify" => {
            if !count(1, 1, "PATH") {
                return None;
            }
            Directive::Notify(abs_path(name, a(0).unwrap_or("")).map_err(&mut *e).ok()?)
        }
        "metrics_listen" => {
            if !count(1, 1, "ADDR:PORT (e.g. 192.0.2.1:9694, [2001:db8::1]:9694)") {
                return None;
            }
            Directive::MetricsListen(listen_addr(a(0).unwrap_or("")).map_err(|m| e(format!("{name}: {m}"))).ok()?)
        }
        "logfacility" => {
            if !count(1, 1, "FACILITY|none") {
                return None;
            }
            let v = a(0).unwrap_or("");
            if v == "none" {
                Directive::Logfacility(None)
            } else if FACILITIES.contains(&v) {
                Directive::Logfacility(Some(v.to_string()))
            } else {
                e(format!("logfacility: unknown syslog facility '{v}' (daemon, local0…local7, user, … or none)"));
                return None;
            }
        }
        "protocol" => {
            if !count(1, 1, "tandem|heartbeat") {
                return None;
            }
            match a(0).unwrap_or("") {
                "tandem" => Directive::ProtocolHeartbeat(false),
                "heartbeat" => Directive::ProtocolHeartbeat(true),
                v => {
                    e(format!("protocol: expected tandem or heartbeat, not '{v}'"));
                    return None;
                }
            }
        }
        "hb_authkeys" => {
            if !count(1, 1, "PATH") {
                return None;
            }
            Directive::HbAuthkeys(abs_path(name, a(0).unwrap_or("")).map_err(&mut *e).ok()?)
        }
        "group" => {
            if args.len() < 3 {
                if args.len() == 2 {
                    e("group: a group needs at least one resource".to_string());
                } else {
                    e("group: usage: group NAME PREFERRED_NODE RESOURCE [RESOURCE…]".to_string());
                }
                return None;
            }
            let gname = a(0).unwrap_or("");
            let gname = match valid_name(gname, 32, "group") {
                Ok(_) if gname == "all" => {
                    e("group: 'all' is reserved (standby/takeover all)".to_string());
                    return None;
                }
                Ok(n) => n,
                Err(m) => {
                    e(m);
                    return None;
                }
            };
            let mut resources = Vec::new();
            for w in args.iter().skip(2) {
                match parse_resource(w) {
                    Ok(r) => resources.push(r),
                    Err(m) => e(format!("group {gname}: {m}")),
                }
            }
            Directive::Group { name: gname, preferred: a(1).unwrap_or("").to_string(), resources }
        }
        _ => {
            e(unknown_directive(word));
            return None;
        }
    };
    Some((name, d))
}

fn unknown_directive(word: &str) -> String {
    let hint = match word {
        "baud" => "; give the rate on the serial line: serial DEVICE BAUD",
        "nice_failback" => "; use auto_failback on|off",
        "debugfile" | "use_logd" => "; use logfile and logfacility",
        "crm"
        | "respawn"
        | "ping_group"
        | "deadping"
        | "hopfudge"
        | "autojoin"
        | "stonith_host"
        | "apiauth"
        | "compression"
        | "traditional_compression"
        | "coredumps"
        | "debug" => "; this heartbeat directive is not supported",
        _ => "",
    };
    format!("unknown directive '{word}'{hint}")
}

/// `on|off|yes|no|true|false|1|0`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "on" | "yes" | "true" | "1" => Some(true),
        "off" | "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// A plain decimal number (no sign), at most 18 digits.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn port(name: &str, s: &str) -> Result<u16, String> {
    match number(s) {
        Some(n @ 1..=65535) => u16::try_from(n).map_err(|_| String::new()),
        _ => Err(format!("{name}: bad port '{s}' (1 to 65535)")),
    }
}

fn opt_port(name: &str, s: Option<&str>) -> Result<Option<u16>, String> {
    s.map(|s| port(name, s)).transpose()
}

/// `ADDR:PORT` for a TCP listener: an IP address (IPv6 in brackets) and a port 1..65535.
/// Host names are not looked up.
pub fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr =
        s.parse().map_err(|_| format!("'{s}' is not ADDR:PORT (an IP address and a port; IPv6 as [ADDR]:PORT)"))?;
    if a.port() == 0 {
        return Err(format!("'{s}': the port must be 1 to 65535"));
    }
    if a.ip().is_multicast() {
        return Err(format!("'{s}': a multicast address cannot be listened on"));
    }
    Ok(a)
}

fn link_iface(name: &str, s: &str) -> Result<String, String> {
    check_ifname(s).map_err(|m| format!("{name}: {m}"))?;
    Ok(s.to_string())
}

fn abs_path(name: &str, s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') {
        return Err(format!("{name}: '{s}' is not an absolute path"));
    }
    Ok(PathBuf::from(s))
}

/// A name of `[A-Za-z0-9_.-]`, 1..=max characters, not starting with `-`.
fn valid_name(s: &str, max: usize, what: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("{what}: bad name '{s}' (1 to {max} characters)"));
    }
    if s.starts_with('-') || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!("{what}: bad name '{s}' (letters, digits, '_', '.', '-')"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lex::lex;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("100ms"), Ok(ms(100)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("3"), Ok(ms(3000)));
        assert_eq!(parse_duration("0.25"), Ok(ms(250)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1000000s"), Ok(Duration::from_secs(1_000_000)));
        for bad in [
            "",
            "s",
            "ms",
            "-1",
            "+1",
            "1.",
            ".5",
            "1.5.5",
            "1 s",
            "1m",
            "1h",
            "10sec",
            "1e3",
            "1.0000000001s",
            "0.0000000001",
            "1000001",
            "999999999999999999999",
            "１s",
            "1.0000000005ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn one(text: &str) -> Result<Directive, Vec<String>> {
        let (ok, errs) = parse(&lex(text));
        if !errs.is_empty() {
            return Err(errs.into_iter().map(|(_, m)| m).collect());
        }
        assert_eq!(ok.len(), 1);
        Ok(ok.into_iter().next().unwrap().directive)
    }

    #[test]
    fn link_lines() {
        assert_eq!(
            one("ucast eth0 192.0.2.2"),
            Ok(Directive::Link(RawLink::Ucast {
                iface: "eth0".into(),
                peer: "192.0.2.2".parse().unwrap(),
                port: None
            }))
        );
        assert_eq!(
            one("ucast eth0 2001:db8::2 7000"),
            Ok(Directive::Link(RawLink::Ucast {
                iface: "eth0".into(),
                peer: "2001:db8::2".parse().unwrap(),
                port: Some(7000)
            }))
        );
        assert!(one("ucast eth0 peer.example").unwrap_err()[0].contains("not an IP address"));
        assert!(one("ucast eth0 192.0.2.2 0").unwrap_err()[0].contains("bad port"));
        assert!(one("ucast eth0 192.0.2.2 65536").unwrap_err()[0].contains("bad port"));
        assert!(one("ucast eth0").unwrap_err()[0].contains("usage"));
        assert_eq!(
            one("bcast eth1 700"),
            Ok(Directive::Link(RawLink::Bcast { iface: "eth1".into(), port: Some(700) }))
        );
        assert!(one("bcast eth0 eth1").unwrap_err()[0].contains("one interface per line"));
        assert_eq!(
            one("mcast eth0 239.0.0.1"),
            Ok(Directive::Link(RawLink::Mcast {
                iface: "eth0".into(),
                group: "239.0.0.1".parse().unwrap(),
                port: None,
                ttl: 1,
                loop_: false
            }))
        );
        assert_eq!(
            one("mcast eth0 ff02::1:5 695 3 1"),
            Ok(Directive::Link(RawLink::Mcast {
                iface: "eth0".into(),
                group: "ff02::1:5".parse().unwrap(),
                port: Some(695),
                ttl: 3,
                loop_: true
            }))
        );
        assert!(one("mcast eth0 192.0.2.1").unwrap_err()[0].contains("not a multicast"));
        assert!(one("mcast eth0 239.0.0.1 694 0").unwrap_err()[0].contains("TTL"));
        assert!(one("mcast eth0 239.0.0.1 694 1 2").unwrap_err()[0].contains("LOOP"));
        assert_eq!(
            one("serial /dev/ttyS1"),
            Ok(Directive::Link(RawLink::Serial { device: "/dev/ttyS1".into(), baud: 19200, rtscts: false }))
        );
        assert_eq!(
            one("serial /dev/ttyS1 115200 rtscts"),
            Ok(Directive::Link(RawLink::Serial { device: "/dev/ttyS1".into(), baud: 115200, rtscts: true }))
        );
        assert_eq!(
            one("serial /dev/ttyS1 rtscts"),
            Ok(Directive::Link(RawLink::Serial { device: "/dev/ttyS1".into(), baud: 19200, rtscts: true }))
        );
        assert!(one("serial /dev/ttyS1 14400").unwrap_err()[0].contains("bad baud rate"));
        assert!(one("serial ttyS1").unwrap_err()[0].contains("absolute"));
    }

    #[test]
    fn simple_values() {
        assert_eq!(one("auto_failback on"), Ok(Directive::AutoFailback(true)));
        assert_eq!(one("auto_failback no"), Ok(Directive::AutoFailback(false)));
        // Only with `protocol heartbeat`, which resolve checks.
        assert_eq!(one("auto_failback legacy"), Ok(Directive::AutoFailbackLegacy));
        assert!(one("realtime legacy").unwrap_err()[0].contains("expected on or off"));
        assert_eq!(one("realtime off"), Ok(Directive::Realtime(false)));
        assert_eq!(one("garp_count 0"), Ok(Directive::GarpCount(0)));
        assert!(one("garp_count 101").unwrap_err()[0].contains("0 to 100"));
        assert_eq!(one("logfacility local3"), Ok(Directive::Logfacility(Some("local3".into()))));
        assert_eq!(one("logfacility none"), Ok(Directive::Logfacility(None)));
        assert!(one("logfacility local8").unwrap_err()[0].contains("unknown syslog facility"));
        assert_eq!(one("logfile -"), Ok(Directive::Logfile("-".into())));
        assert!(one("statedir var/lib").unwrap_err()[0].contains("absolute"));
        assert!(one("keepalive 0").unwrap_err()[0].contains("at least 1ms"));
        assert!(one("keepalive 1x").unwrap_err()[0].starts_with("keepalive: bad time '1x'"));
        assert!(one("frobnicate 1").unwrap_err()[0].contains("unknown directive 'frobnicate'"));
        assert!(one("baud 19200").unwrap_err()[0].contains("serial DEVICE BAUD"));
        assert!(one("cluster a b").unwrap_err()[0].contains("usage"));
        assert!(one("node alpha b@d").unwrap_err()[0].contains("bad name 'b@d'"));
        assert!(one("group all alpha ip::192.0.2.5/24").unwrap_err()[0].contains("reserved"));
        assert!(one("group web alpha").unwrap_err()[0].contains("at least one resource"));
        assert!(one("group web alpha frob::x").unwrap_err()[0].starts_with("group web: unknown resource type"));
        assert!(one("stonith beta fence.sh").unwrap_err()[0].contains("unknown fencing method"));
        assert_eq!(
            one("stonith beta /usr/sbin/fence -n beta"),
            Ok(Directive::Stonith {
                node: "beta".into(),
                method: super::super::stonith::FenceMethod::Exec {
                    path: "/usr/sbin/fence".into(),
                    args: vec!["-n".into(), "beta".into()]
                }
            })
        );
        assert_eq!(one("wait_for_peer off"), Ok(Directive::WaitForPeer(false)));
        assert_eq!(one("stonith_required on"), Ok(Directive::StonithRequired(true)));
        assert_eq!(one("fence_delay 0"), Ok(Directive::Time(TimeKey::FenceDelay, Duration::ZERO)));
    }

    #[test]
    fn directive_table_is_complete() {
        for d in DIRECTIVES {
            // Every listed name is handled (no "unknown directive" for a known name).
            let (_, errs) = parse(&lex(d));
            assert!(errs.iter().all(|(_, m)| !m.contains("unknown directive")), "{d}: {errs:?}");
        }
    }
}
