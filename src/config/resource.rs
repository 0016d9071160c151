//! Resource words of `group` lines: `TYPE::ARG[::ARG…]`, syntax-checked per type. Pure.
//!
//! [`parse_resource`] turns one word into a [`ResourceSpec`]: `kind` is the canonical type
//! (aliases resolved), `args` are the `::`-separated arguments exactly as written (for `ip`,
//! one argument `ADDR[/PREFIX[/IFACE[/LABEL]]]`, which [`IpSpec::parse`] decodes), `text` is
//! the whole word as written. A bare IP address word (heartbeat style, e.g. `192.0.2.50/24/eth0`
//! or `192.0.2.50`) is an `ip` resource. A missing prefix means a host address (/32, /128).

use std::net::IpAddr;

use super::{ResourceKind, ResourceSpec};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Longest DRBD resource name (it must fit a wire payload after one status byte).
pub const DRBD_NAME_MAX: usize = crate::wire::MAX_PAYLOAD - 1;

/// The decoded argument of an `ip` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSpec {
    pub addr: IpAddr,
    pub prefix: u8,
    /// `None`: the interface whose subnet holds `addr` (found when the resource starts).
    pub iface: Option<String>,
    /// IPv4 only: the alias label suffix; the kernel label is `IFACE:LABEL`.
    pub label: Option<String>,
}

impl IpSpec {
    /// Parses `ADDR[/PREFIX[/IFACE[/LABEL]]]`.
    pub fn parse(s: &str) -> Result<IpSpec, String> {
        let mut parts = s.split('/');
        let addr_s = parts.next().unwrap_or("");
        let addr: IpAddr = addr_s.parse().map_err(|_| format!("'{addr_s}' is not an IPv4 or IPv6 address"))?;
        if addr.is_unspecified() || addr.is_multicast() || addr == IpAddr::from([255, 255, 255, 255]) {
            return Err(format!("{addr} cannot be a service address"));
        }
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match parts.next() {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if (1..=max).contains(&n) && !p.starts_with('+') => n,
                _ => return Err(format!("bad prefix length '{p}' for {addr} (1..{max})")),
            },
        };
        let iface = match parts.next() {
            None => None,
            Some(i) => {
                check_ifname(i)?;
                Some(i.to_string())
            }
        };
        let label = match parts.next() {
            None => None,
            Some(l) => {
                if !addr.is_ipv4() {
                    return Err("a label is only possible for IPv4 addresses".to_string());
                }
                if l.parse::<IpAddr>().is_ok() {
                    return Err(format!(
                        "'{l}': the 4th field is an alias label, not a broadcast address \
                         (tandem derives the broadcast address from the prefix)"
                    ));
                }
                let ifname = iface.as_deref().unwrap_or("");
                let full = ifname.len().saturating_add(1).saturating_add(l.len());
                if l.is_empty() || l.chars().any(|c| c.is_ascii_whitespace() || c == '/') {
                    return Err(format!("bad label '{l}'"));
                }
                if full > IFNAME_MAX {
                    return Err(format!("label '{ifname}:{l}' is longer than {IFNAME_MAX} characters"));
                }
                Some(l.to_string())
            }
        };
        if parts.next().is_some() {
            return Err(format!("too many '/' fields in '{s}' (ADDR/PREFIX/IFACE/LABEL)"));
        }
        Ok(IpSpec { addr, prefix, iface, label })
    }
}

/// Checks an interface name: 1..=15 characters, no `/`, `:` or blanks.
pub fn check_ifname(i: &str) -> Result<(), String> {
    if i.is_empty() || i.len() > IFNAME_MAX {
        return Err(format!("bad interface name '{i}' (1 to {IFNAME_MAX} characters)"));
    }
    if i == "." || i == ".." || i.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()) {
        return Err(format!("bad interface name '{i}'"));
    }
    Ok(())
}

/// The canonical kind for a type name or alias.
pub fn kind_from_name(t: &str) -> Option<ResourceKind> {
    Some(match t {
        "ip" | "IPaddr" | "IPaddr2" => ResourceKind::Ip,
        "script" => ResourceKind::Script,
        "drbd" | "drbddisk" => ResourceKind::Drbd,
        "mount" | "Filesystem" => ResourceKind::Mount,
        "lvm" | "LVM" => ResourceKind::Lvm,
        "guest" => ResourceKind::Guest,
        _ => return None,
    })
}

/// Parses and syntax-checks one resource word.
pub fn parse_resource(word: &str) -> Result<ResourceSpec, String> {
    let text = word.to_string();
    // Heartbeat's short form: a bare IP address (checked first: IPv6 addresses contain `::`).
    let head = word.split('/').next().unwrap_or("");
    if head.parse::<IpAddr>().is_ok() {
        IpSpec::parse(word)?;
        return Ok(ResourceSpec { kind: ResourceKind::Ip, args: vec![word.to_string()], text });
    }
    let Some((ty, rest)) = word.split_once("::") else {
        return Err(format!(
            "unknown resource '{word}': write TYPE::ARG (ip, script, drbd, mount, lvm, guest); \
             for an init script use script::/etc/init.d/{word}"
        ));
    };
    let Some(kind) = kind_from_name(ty) else {
        return Err(format!(
            "unknown resource type '{ty}' in '{word}' (ip, script, drbd, mount, lvm, guest; \
             for a script use script::/path)"
        ));
    };
    // `ip` has one argument, which may itself contain `::` (IPv6): take the rest whole.
    let args: Vec<String> =
        if kind == ResourceKind::Ip { vec![rest.to_string()] } else { rest.split("::").map(str::to_string).collect() };
    if args.iter().any(String::is_empty) {
        return Err(format!("empty argument in '{word}'"));
    }
    check_args(kind, &args).map_err(|m| format!("{}: {m}", kind.name()))?;
    Ok(ResourceSpec { kind, args, text })
}

fn arg(args: &[String], i: usize) -> &str {
    args.get(i).map(String::as_str).unwrap_or("")
}

fn check_args(kind: ResourceKind, args: &[String]) -> Result<(), String> {
    let n = args.len();
    match kind {
        ResourceKind::Ip => {
            if n != 1 {
                return Err("takes one argument ADDR/PREFIX[/IFACE[/LABEL]]".to_string());
            }
            IpSpec::parse(arg(args, 0)).map(|_| ())
        }
        ResourceKind::Script => {
            let p = arg(args, 0);
            if !p.starts_with('/') {
                return Err(format!("'{p}' is not an absolute path"));
            }
            Ok(())
        }
        ResourceKind::Drbd => {
            if n != 1 {
                return Err("takes one argument, the DRBD resource name".to_string());
            }
            check_name(arg(args, 0), DRBD_NAME_MAX, "DRBD resource")
        }
        ResourceKind::Mount => {
            if !(2..=4).contains(&n) {
                return Err("takes DEVICE::DIR[::FSTYPE[::OPTIONS]]".to_string());
            }
            let dir = arg(args, 1);
            if !dir.starts_with('/') {
                return Err(format!("mount point '{dir}' is not an absolute path"));
            }
            if let Some(fs) = args.get(2) {
                if fs.contains('/') || fs.contains(',') {
                    return Err(format!("bad filesystem type '{fs}'"));
                }
            }
            Ok(())
        }
        ResourceKind::Lvm => {
            if n != 1 {
                return Err("takes one argument, the volume group name".to_string());
            }
            let vg = arg(args, 0);
            check_name(vg, 127, "volume group")?;
            if vg.starts_with('-') || vg == "." || vg == ".." {
                return Err(format!("bad volume group name '{vg}'"));
            }
            Ok(())
        }
        ResourceKind::Guest => {
            if n < 2 {
                return Err("takes NAME::ROOTDIR[::CMD…]".to_string());
            }
            check_name(arg(args, 0), 64, "guest")?;
            let root = arg(args, 1);
            if !root.starts_with('/') {
                return Err(format!("root directory '{root}' is not an absolute path"));
            }
            Ok(())
        }
    }
}

/// A name of `[A-Za-z0-9_.+-]`, 1..=max characters.
fn check_name(s: &str, max: usize, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("bad {what} name '{s}' (1 to {max} characters)"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')) {
        return Err(format!("bad {what} name '{s}' (letters, digits, '_', '.', '-', '+')"));
    }
    Ok(())
}

/// What two resources must not share (in one group or across groups): the same address,
/// DRBD resource, mount point, volume group, guest, or identical script call.
pub fn identity(spec: &ResourceSpec) -> String {
    match spec.kind {
        ResourceKind::Ip => match IpSpec::parse(arg(&spec.args, 0)) {
            Ok(ip) => format!("ip {}", ip.addr),
            Err(_) => spec.text.clone(),
        },
        ResourceKind::Script => format!("script {}", spec.args.join(" ")),
        ResourceKind::Drbd => format!("drbd {}", arg(&spec.args, 0)),
        ResourceKind::Mount => format!("mount point {}", arg(&spec.args, 1).trim_end_matches('/')),
        ResourceKind::Lvm => format!("volume group {}", arg(&spec.args, 0)),
        ResourceKind::Guest => format!("guest {}", arg(&spec.args, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(w: &str) -> ResourceSpec {
        match parse_resource(w) {
            Ok(s) => s,
            Err(e) => panic!("{w}: {e}"),
        }
    }
    fn bad(w: &str) -> String {
        match parse_resource(w) {
            Ok(s) => panic!("{w} accepted: {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn ip_forms() {
        let s = ok("ip::192.0.2.50/24/veth-lan");
        assert_eq!(s.kind, ResourceKind::Ip);
        assert_eq!(s.args, ["192.0.2.50/24/veth-lan"]);
        assert_eq!(s.text, "ip::192.0.2.50/24/veth-lan");
        let ip = IpSpec::parse(&s.args[0]).unwrap();
        assert_eq!(ip.prefix, 24);
        assert_eq!(ip.iface.as_deref(), Some("veth-lan"));
        assert_eq!(ip.label, None);

        let ip = IpSpec::parse("192.0.2.50/24/eth0/svc").unwrap();
        assert_eq!(ip.label.as_deref(), Some("svc"));
        assert_eq!(IpSpec::parse("192.0.2.50").unwrap().prefix, 32);
        assert_eq!(IpSpec::parse("2001:db8::5").unwrap().prefix, 128);
        assert_eq!(IpSpec::parse("2001:db8::5/64/eth0").unwrap().prefix, 64);

        for alias in ["IPaddr", "IPaddr2"] {
            assert_eq!(ok(&format!("{alias}::192.0.2.9/24")).kind, ResourceKind::Ip);
        }
        // Heartbeat's bare address.
        let s = ok("192.0.2.50");
        assert_eq!(s.kind, ResourceKind::Ip);
        assert_eq!(s.args, ["192.0.2.50"]);
        assert_eq!(ok("192.0.2.50/24/eth0").kind, ResourceKind::Ip);
        assert_eq!(ok("2001:db8::1/64").kind, ResourceKind::Ip);
        let s = ok("ip::2001:db8::5/64/eth0");
        assert_eq!(s.args, ["2001:db8::5/64/eth0"]);
        assert_eq!(ok("IPaddr2::fe80::1/64/eth0").args, ["fe80::1/64/eth0"]);
    }

    #[test]
    fn ip_errors() {
        assert!(bad("ip::192.0.2.300/24").contains("not an IPv4 or IPv6"));
        assert!(bad("ip::192.0.2.5/33").contains("prefix"));
        assert!(bad("ip::192.0.2.5/0").contains("prefix"));
        assert!(bad("ip::192.0.2.5/x").contains("prefix"));
        assert!(bad("ip::2001:db8::1/129").contains("prefix"));
        assert!(bad("ip::192.0.2.5/24/averyveryverylongname").contains("interface"));
        assert!(bad("ip::192.0.2.5/24/").contains("interface"));
        assert!(bad("ip::2001:db8::1/64/eth0/lbl").contains("only possible for IPv4"));
        assert!(bad("ip::192.0.2.5/24/eth0/a-very-long-one").contains("longer than 15"));
        assert!(bad("ip::192.0.2.5/24/eth0/192.0.2.255").contains("broadcast"));
        assert!(bad("ip::192.0.2.5/24/eth0/l/x").contains("too many"));
        assert!(bad("ip::0.0.0.0/8").contains("cannot be a service address"));
        assert!(bad("ip::224.0.0.5/24").contains("cannot be a service address"));
        assert!(bad("ip::192.0.2.5/24::eth0").contains("prefix"));
        assert!(bad("ip::").contains("empty argument"));
        // Exactly 15 characters is fine.
        ok("ip::192.0.2.5/24/eth0/abcdefghij");
        ok("ip::192.0.2.5/24/abcdefghijklmno");
    }

    #[test]
    fn script_forms() {
        let s = ok("script::/etc/tandem/www.sh");
        assert_eq!(s.kind, ResourceKind::Script);
        assert_eq!(s.args, ["/etc/tandem/www.sh"]);
        let s = ok("script::/etc/init.d/httpd::-v::x");
        assert_eq!(s.args, ["/etc/init.d/httpd", "-v", "x"]);
        assert!(bad("script::www.sh").contains("absolute"));
        assert!(bad("script::/x::").contains("empty"));
        assert!(bad("httpd").contains("script::/etc/init.d/httpd"));
    }

    #[test]
    fn drbd_forms() {
        assert_eq!(ok("drbd::r0").args, ["r0"]);
        assert_eq!(ok("drbddisk::r0").kind, ResourceKind::Drbd);
        assert!(bad("drbd::r0::x").contains("one argument"));
        assert!(bad("drbd::r 0").contains("bad DRBD"));
        assert!(bad(&format!("drbd::{}", "r".repeat(64))).contains("1 to 63"));
        ok(&format!("drbd::{}", "r".repeat(63)));
    }

    #[test]
    fn mount_forms() {
        let s = ok("mount::/dev/drbd0::/srv/data::ext4::noatime,nodev");
        assert_eq!(s.kind, ResourceKind::Mount);
        assert_eq!(s.args.len(), 4);
        assert_eq!(ok("Filesystem::/dev/drbd0::/data").kind, ResourceKind::Mount);
        ok("mount::UUID=1234::/data::xfs");
        assert!(bad("mount::/dev/sda1").contains("DEVICE::DIR"));
        assert!(bad("mount::/dev/sda1::data").contains("absolute"));
        assert!(bad("mount::/dev/a::/d::ext4::o::x").contains("DEVICE::DIR"));
        assert!(bad("mount::/dev/a::/d::ext/4").contains("filesystem type"));
    }

    #[test]
    fn lvm_and_guest_forms() {
        assert_eq!(ok("lvm::vg_data").kind, ResourceKind::Lvm);
        assert_eq!(ok("LVM::vg0").kind, ResourceKind::Lvm);
        assert!(bad("lvm::-vg").contains("bad volume group"));
        assert!(bad("lvm::a::b").contains("one argument"));
        let g = ok("guest::web1::/srv/guests/web1::/sbin/init::single");
        assert_eq!(g.kind, ResourceKind::Guest);
        assert_eq!(g.args, ["web1", "/srv/guests/web1", "/sbin/init", "single"]);
        ok("guest::web1::/srv/web1");
        assert!(bad("guest::web1").contains("NAME::ROOTDIR"));
        assert!(bad("guest::web1::srv").contains("absolute"));
    }

    #[test]
    fn unknown_type() {
        assert!(bad("apache::/etc/x").contains("unknown resource type 'apache'"));
        assert!(bad("IP::1.2.3.4/24").contains("unknown resource type"));
    }

    #[test]
    fn identities() {
        assert_eq!(identity(&ok("ip::192.0.2.5/24")), identity(&ok("IPaddr::192.0.2.5/32/eth0")));
        assert_eq!(identity(&ok("mount::/a::/d/")), identity(&ok("mount::/b::/d")));
        assert_ne!(identity(&ok("drbd::r0")), identity(&ok("drbd::r1")));
    }
}
