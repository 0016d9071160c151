//! Loading a configuration for this host: read the file, parse it (pure, in `config`), gather
//! the host's facts (hostname, addresses, interfaces, devices), resolve, read the key, and add
//! the warnings that need the link layer (the serial line budget).
//!
//! This sits above `config` and `link`: the config layer never asks the host anything itself.

use std::net::IpAddr;
use std::path::Path;

use crate::config::{
    self, apply_host, parse_str, read_config_file, read_key, Config, ConfigError, ConfigWarning, HostFacts, LinkConfig,
    Parsed, ResourceSpec,
};
use crate::link::frame::heartbeat_budget;

/// Everything a load found: the configuration (when it resolved), its errors and warnings,
/// sorted by line.
#[derive(Debug)]
pub struct Loaded {
    pub config: Option<Config>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigWarning>,
}

/// Full load for one node: reads the file, parses it, resolves `node` (`None` = `uname -n`,
/// or its part before the first `.`; it must be one of the `node` names), reads and
/// permission-checks the key, drops `ucast` links whose peer address is one of this host's own
/// addresses, and checks that the interfaces of links and of `ip` resources exist.
pub fn load(path: &Path, node: Option<&str>) -> Result<(Config, Vec<ConfigWarning>), Vec<ConfigError>> {
    let l = load_all(path, node);
    match l.config {
        Some(cfg) if l.errors.is_empty() => Ok((cfg, l.warnings)),
        _ => Err(l.errors),
    }
}

/// Like [`load`], but keeps errors and warnings together (for `check-config`).
///
/// A directory is heartbeat's configuration directory (`--ha-d`, e.g. /etc/ha.d): its `ha.cf`,
/// `haresources` and `authkeys` are read as they are ([`config::hacompat`]).
pub fn load_all(path: &Path, node: Option<&str>) -> Loaded {
    let ha_d = path.is_dir();
    let parsed = if ha_d {
        match config::hacompat::read_ha_d(path) {
            Ok(p) => p,
            Err(errors) => return Loaded { config: None, errors, warnings: Vec::new() },
        }
    } else {
        let text = match read_config_file(path) {
            Ok(t) => t,
            Err(e) => return Loaded { config: None, errors: vec![e], warnings: Vec::new() },
        };
        match parse_str(path, &text) {
            Ok(p) => p,
            Err(errors) => return Loaded { config: None, errors, warnings: Vec::new() },
        }
    };
    let mut host = match gather(&parsed) {
        Ok(h) => h,
        Err(e) => return Loaded { config: None, errors: vec![e], warnings: parsed.warnings },
    };
    if ha_d {
        // heartbeat lower-cases `uname -n` and the node names alike.
        host.hostname = host.hostname.to_ascii_lowercase();
    }
    let node_lower = node.map(str::to_ascii_lowercase);
    let node = if ha_d { node_lower.as_deref() } else { node };
    let (mut cfg, mut errors, mut warnings) = match apply_host(&parsed, node, &host) {
        Ok((cfg, w)) => (Some(cfg), Vec::new(), w),
        Err((e, w)) => (None, e, w),
    };
    if let Some(hb) = parsed.config.heartbeat() {
        // heartbeat's authkeys: its permission rule, its parser.
        let file = if hb.authkeys_line == 0 { hb.authkeys.clone() } else { path.to_path_buf() };
        match crate::hb::auth::AuthKeys::load(&hb.authkeys) {
            Ok(k) => {
                if let Some(config::Protocol::Heartbeat(h)) = cfg.as_mut().map(|c| &mut c.protocol) {
                    h.keys = Some(k);
                }
            }
            Err(e) => {
                cfg = None;
                let (line, msg) = match e {
                    crate::hb::HbError::AuthKeys { line, what } if hb.authkeys_line == 0 => (line, what.to_string()),
                    e if hb.authkeys_line == 0 => (0, e.to_string()),
                    e => (hb.authkeys_line, format!("{}: {e}", hb.authkeys.display())),
                };
                errors.push(ConfigError { file, line, msg });
            }
        }
    } else {
        match read_key(&parsed.config.authkey) {
            Ok(k) => {
                if let Some(c) = cfg.as_mut() {
                    c.key = k;
                }
            }
            Err(e) => {
                cfg = None;
                errors.push(ConfigError { file: path.to_path_buf(), line: parsed.authkey_line, msg: e.to_string() });
            }
        }
        warnings.extend(serial_budget(&parsed));
    }
    if let Some(hr) = parsed.config.heartbeat().and_then(|h| h.haresources.clone()) {
        // Groups come from haresources: their messages name that file.
        for e in errors.iter_mut().chain(warnings.iter_mut()) {
            if e.file == parsed.config.file && e.msg.starts_with("group ") {
                e.file = hr.clone();
            }
        }
    }
    if let Some(accept) = &parsed.config.authkey_accept {
        match read_key(accept) {
            Ok(k) => {
                if let Some(c) = cfg.as_mut() {
                    c.accept_key = Some(k);
                }
            }
            Err(e) => {
                cfg = None;
                errors.push(ConfigError {
                    file: path.to_path_buf(),
                    line: parsed.authkey_accept_line,
                    msg: e.to_string(),
                });
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    warnings.sort_by_key(|w| w.line);
    Loaded { config: cfg, errors, warnings }
}

/// Warns for every serial link on which one heartbeat frame takes more than a quarter of the
/// keepalive, with the numbers and the way out.
pub fn serial_budget(parsed: &Parsed) -> Vec<ConfigWarning> {
    let cfg = &parsed.config;
    let mut out = Vec::new();
    for (l, line) in cfg.links.iter().zip(&parsed.link_lines) {
        let LinkConfig::Serial { device, baud, .. } = l else { continue };
        // The extension fields this configuration sends: the fence delay only with a
        // stonith line, the reach count only with ping targets.
        let ext = crate::wire::ext::emitted_len(!cfg.stonith.is_empty(), !cfg.ping.is_empty());
        let b = heartbeat_budget(cfg.groups.len(), ext, *baud);
        if b.line_time.saturating_mul(4) <= cfg.keepalive {
            continue;
        }
        let msg = format!(
            "serial {}: a heartbeat frame for {} group(s) is {} bytes on the line ({}-byte packet), {:.1} ms at \
             {baud} baud: more than a quarter of keepalive {}; use keepalive {} or more, or a faster baud rate",
            device.display(),
            cfg.groups.len(),
            b.frame_len,
            b.packet_len,
            b.line_time.as_secs_f64() * 1000.0,
            crate::time::fmt_duration(cfg.keepalive),
            crate::time::fmt_duration(b.min_keepalive),
        );
        out.push(ConfigWarning { file: cfg.file.clone(), line: *line, msg });
    }
    out
}

/// Reads this host's facts: uname(2), getifaddrs(3), if_nametoindex(3) for each interface
/// the file names, and whether each serial device exists.
pub fn gather(parsed: &Parsed) -> Result<HostFacts, ConfigError> {
    let file = &parsed.config.file;
    let err = |msg: String| ConfigError { file: file.clone(), line: 0, msg };
    let hostname = nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .map_err(|e| err(format!("uname: {}", e.desc())))?;
    let ifa = nix::ifaddrs::getifaddrs().map_err(|e| err(format!("getifaddrs: {}", e.desc())))?;
    let mut addrs = Vec::new();
    let mut ifaces: Vec<String> = Vec::new();
    for a in ifa {
        if !ifaces.contains(&a.interface_name) {
            ifaces.push(a.interface_name.clone());
        }
        let Some(addr) = a.address.as_ref() else {
            continue;
        };
        let (ip, prefix) = if let Some(v4) = addr.as_sockaddr_in() {
            let p = a.netmask.as_ref().and_then(|m| m.as_sockaddr_in()).map(|m| m.ip().to_bits().count_ones());
            (IpAddr::V4(v4.ip()), p.unwrap_or(32))
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let p = a.netmask.as_ref().and_then(|m| m.as_sockaddr_in6()).map(|m| m.ip().to_bits().count_ones());
            (IpAddr::V6(v6.ip()), p.unwrap_or(128))
        } else {
            continue;
        };
        addrs.push((a.interface_name.clone(), ip, u8::try_from(prefix).unwrap_or(0)));
    }
    // Every interface the file names, asked by name (also finds interfaces with no address).
    for name in interfaces_named(&parsed.config) {
        if !ifaces.iter().any(|i| i == name) && nix::net::if_::if_nametoindex(name).is_ok() {
            ifaces.push(name.to_string());
        }
    }
    let mut existing_paths = Vec::new();
    for l in &parsed.config.links {
        if let LinkConfig::Serial { device, .. } = l {
            if device.exists() {
                existing_paths.push(device.clone());
            }
        }
    }
    if let Some(w) = &parsed.config.watchdog {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(&w.device).is_ok_and(|m| m.file_type().is_char_device()) {
            existing_paths.push(w.device.clone());
        }
    }
    Ok(HostFacts { hostname, addrs, ifaces, existing_paths })
}

/// The interfaces a configuration names: those of its UDP links and of its `ip` resources.
fn interfaces_named(cfg: &Config) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for l in &cfg.links {
        match l {
            LinkConfig::Ucast { iface, .. } | LinkConfig::Bcast { iface, .. } | LinkConfig::Mcast { iface, .. } => {
                out.push(iface)
            }
            LinkConfig::Serial { .. } => {}
        }
    }
    for r in cfg.groups.iter().flat_map(|g| &g.resources) {
        if let ResourceSpec::Ip(config::IpSpec { iface: Some(i), .. }) = &r.spec {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(keepalive_ms: u64, baud: u32, groups: usize) -> Parsed {
        let mut text = format!(
            "cluster c\nnode a b\nauthkey /k\nkeepalive {keepalive_ms}ms\ndeadtime {}ms\nserial /dev/ttyS9 {baud}\n",
            keepalive_ms * 5
        );
        for g in 0..groups {
            text.push_str(&format!("group g{g} a ip::192.0.2.{}/24/eth0\n", g + 10));
        }
        parse_str(Path::new("/t.conf"), &text).unwrap()
    }

    #[test]
    fn serial_budget_warns_with_numbers_and_line() {
        assert!(serial_budget(&parsed(1000, 19200, 1)).is_empty());
        assert!(serial_budget(&parsed(200, 115200, 4)).is_empty());
        let w = serial_budget(&parsed(100, 9600, 1));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, 6);
        let msg = w[0].to_string();
        assert!(msg.starts_with("/t.conf:6: serial /dev/ttyS9:"), "{msg}");
        // Without stonith or ping lines, the fence delay and reach fields are not sent.
        assert!(msg.contains("101 bytes") && msg.contains("105.2 ms") && msg.contains("9600 baud"), "{msg}");
        assert!(msg.contains("keepalive 100ms") && msg.contains("use keepalive 421ms or more"), "{msg}");
        assert!(serial_budget(&parsed(421, 9600, 1)).is_empty());
        assert_eq!(serial_budget(&parsed(420, 9600, 1)).len(), 1);
    }
}
