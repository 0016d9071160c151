//! Resource words of `group` lines: `TYPE::ARG[::ARG…]`, parsed once into a typed
//! [`ResourceSpec`]. Pure. Agents are built from these specs and never parse words themselves,
//! so what `check-config` accepts is exactly what the daemon runs.
//!
//! A bare IP address word (heartbeat style, e.g. `192.0.2.50/24/eth0` or `192.0.2.50`) is an
//! `ip` resource. A left-out prefix means "the prefix of the subnet on this host that holds the
//! address", found when the agent is built (heartbeat's `IPaddr` did the same). The fourth
//! field is an alias label, or, when it is an IPv4 address, the broadcast address (heartbeat's
//! `IPaddr::ADDR/PREFIX/IFACE/BROADCAST`).
//!
//! An OCF resource agent is `ocf::PROVIDER:TYPE[::NAME=VALUE…]`. A piece without `=` continues
//! the value before it, so IPv6 addresses can be written as they are
//! (`ocf::heartbeat:IPaddr2::ip=2001:db8::50`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

pub use super::guest::GuestSpec;
use super::words::{check_ifname, IFNAME_MAX};
use super::ResourceKind;

/// Longest DRBD resource name (it must fit a wire payload after one status byte).
pub const DRBD_NAME_MAX: usize = crate::wire::MAX_PAYLOAD - 1;
/// Longest volume group name.
pub const VG_NAME_MAX: usize = 127;
/// Longest guest name.
pub const GUEST_NAME_MAX: usize = 64;
/// Longest OCF provider or agent type name.
pub const OCF_NAME_MAX: usize = 64;
/// Longest OCF parameter name.
pub const OCF_PARAM_NAME_MAX: usize = 64;
/// Parameter names tandem sets itself (`OCF_RESKEY_CRM_meta_timeout`, …).
pub const OCF_RESERVED_PREFIX: &str = "CRM_meta_";

/// One resource of a group: its typed meaning and the word as written (for logs and status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub spec: ResourceSpec,
    /// As written in the file.
    pub text: String,
}

/// What a resource is, with its arguments decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSpec {
    Ip(IpSpec),
    Script(ScriptSpec),
    Drbd(DrbdSpec),
    Mount(MountSpec),
    Lvm(LvmSpec),
    Guest(GuestSpec),
    Ocf(OcfSpec),
}

/// `ip::ADDR[/PREFIX[/IFACE[/LABEL|/BROADCAST]]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSpec {
    pub addr: IpAddr,
    /// `None`: the prefix of the subnet on this host that holds `addr`.
    pub prefix: Option<u8>,
    /// `None`: the interface whose subnet holds `addr`.
    pub iface: Option<String>,
    /// IPv4 only: the alias label, either whole (`eth0:web`) or the part after `IFACE:`.
    pub label: Option<String>,
    /// IPv4 only: an explicit broadcast address (heartbeat's 4th field).
    pub broadcast: Option<Ipv4Addr>,
}

/// `script::PATH[::ARG…]`: an LSB or heartbeat-style script called as `PATH ARG… start|stop|status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSpec {
    /// Absolute.
    pub path: PathBuf,
    pub args: Vec<String>,
    /// heartbeat's rule for haresources scripts: `status` is judged by what it prints, not
    /// by its exit code (`running` or `OK` = running, `not running` or anything else =
    /// stopped). Set for scripts named in haresources; `script::` lines use LSB exit codes.
    pub status_by_stdout: bool,
}

/// `drbd::RESOURCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdSpec {
    pub resource: String,
}

/// `mount::DEVICE::DIR[::FSTYPE[::OPTIONS]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// A path, `UUID=…` or `LABEL=…`.
    pub device: String,
    /// Absolute.
    pub dir: PathBuf,
    /// `None`: let the kernel find out (`auto` or left out).
    pub fstype: Option<String>,
    /// Comma-separated, as in fstab (may be empty).
    pub options: String,
}

/// `lvm::VG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvmSpec {
    pub vg: String,
}

/// `ocf::PROVIDER:TYPE[::NAME=VALUE…]`: the agent `/usr/lib/ocf/resource.d/PROVIDER/TYPE`
/// with its instance parameters (passed as `OCF_RESKEY_NAME=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcfSpec {
    pub provider: String,
    pub agent_type: String,
    /// In the order written; names are unique.
    pub params: Vec<(String, String)>,
}

impl OcfSpec {
    /// Parses the arguments after `ocf::`: `PROVIDER:TYPE`, then `NAME=VALUE` pieces (a piece
    /// without `=` continues the value before it, joined with `::`).
    pub fn parse(args: &[&str]) -> Result<OcfSpec, String> {
        let Some((first, rest)) = args.split_first() else {
            return Err("takes PROVIDER:TYPE[::NAME=VALUE…]".to_string());
        };
        let Some((provider, agent_type)) = first.split_once(':') else {
            return Err(format!("'{first}' is not PROVIDER:TYPE (e.g. heartbeat:IPaddr2)"));
        };
        check_ocf_name(provider, "provider")?;
        check_ocf_name(agent_type, "agent type")?;
        let mut params: Vec<(String, String)> = Vec::new();
        for piece in rest {
            match piece.split_once('=') {
                Some((name, value)) => {
                    check_ocf_param_name(name)?;
                    if params.iter().any(|(n, _)| n == name) {
                        return Err(format!("parameter '{name}' is given twice"));
                    }
                    params.push((name.to_string(), value.to_string()));
                }
                None => match params.last_mut() {
                    Some((_, v)) => {
                        v.push_str("::");
                        v.push_str(piece);
                    }
                    None => return Err(format!("'{piece}' is not NAME=VALUE")),
                },
            }
        }
        if let Some((n, _)) = params.iter().find(|(_, v)| v.chars().any(|c| c.is_control())) {
            return Err(format!("the value of parameter '{n}' contains a control character"));
        }
        Ok(OcfSpec { provider: provider.to_string(), agent_type: agent_type.to_string(), params })
    }

    /// `PROVIDER:TYPE`.
    pub fn agent_name(&self) -> String {
        format!("{}:{}", self.provider, self.agent_type)
    }

    /// The value of parameter `name`, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A provider or agent type: 1..=64 of `[A-Za-z0-9_.+-]`, not starting with `.` or `-`
/// (it becomes a path component under the OCF root).
fn check_ocf_name(s: &str, what: &str) -> Result<(), String> {
    check_name(s, OCF_NAME_MAX, what)?;
    if s.starts_with('.') || s.starts_with('-') {
        return Err(format!("bad {what} name '{s}'"));
    }
    Ok(())
}

/// An instance parameter name becomes part of an environment variable name:
/// `[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters, not `CRM_meta_*` (tandem sets those).
fn check_ocf_param_name(n: &str) -> Result<(), String> {
    let first_ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || n.len() > OCF_PARAM_NAME_MAX || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "bad parameter name '{n}' (letters, digits and '_', not starting with a digit, at most \
             {OCF_PARAM_NAME_MAX})"
        ));
    }
    if n.starts_with(OCF_RESERVED_PREFIX) {
        return Err(format!("parameter '{n}': {OCF_RESERVED_PREFIX}* parameters are set by tandem"));
    }
    Ok(())
}

impl ResourceSpec {
    pub fn kind(&self) -> ResourceKind {
        match self {
            ResourceSpec::Ip(_) => ResourceKind::Ip,
            ResourceSpec::Script(_) => ResourceKind::Script,
            ResourceSpec::Drbd(_) => ResourceKind::Drbd,
            ResourceSpec::Mount(_) => ResourceKind::Mount,
            ResourceSpec::Lvm(_) => ResourceKind::Lvm,
            ResourceSpec::Guest(_) => ResourceKind::Guest,
            ResourceSpec::Ocf(_) => ResourceKind::Ocf,
        }
    }

    /// What two resources must not share (in one group or across groups): the same address,
    /// DRBD resource, mount point, volume group, guest, or identical script or OCF agent call
    /// (the same agent with the same parameters, in any order).
    pub fn identity(&self) -> String {
        match self {
            ResourceSpec::Ip(ip) => format!("ip {}", ip.addr),
            ResourceSpec::Script(s) => {
                let mut id = format!("script {}", s.path.display());
                for a in &s.args {
                    id.push(' ');
                    id.push_str(a);
                }
                id
            }
            ResourceSpec::Drbd(d) => format!("drbd {}", d.resource),
            ResourceSpec::Mount(m) => {
                let dir = m.dir.to_string_lossy();
                let dir = dir.trim_end_matches('/');
                format!("mount point {}", if dir.is_empty() { "/" } else { dir })
            }
            ResourceSpec::Lvm(l) => format!("volume group {}", l.vg),
            ResourceSpec::Guest(g) => format!("guest {}", g.name),
            ResourceSpec::Ocf(o) => {
                let mut params: Vec<&(String, String)> = o.params.iter().collect();
                params.sort();
                let mut id = format!("ocf agent {}", o.agent_name());
                for (n, v) in params {
                    id.push_str(&format!(" {n}={v}"));
                }
                id
            }
        }
    }
}

impl IpSpec {
    /// Parses `ADDR[/PREFIX[/IFACE[/LABEL|/BROADCAST]]]`.
    pub fn parse(s: &str) -> Result<IpSpec, String> {
        let mut parts = s.split('/');
        let addr = parts.next().unwrap_or("");
        let (prefix, iface, fourth) = (parts.next(), parts.next(), parts.next());
        if parts.next().is_some() {
            // Checked after the fields before it, so the first bad field is the one reported.
            IpSpec::from_parts(addr, prefix, iface, None, None)?;
            return Err(format!("too many '/' fields in '{s}' (ADDR/PREFIX/IFACE/LABEL)"));
        }
        // Heartbeat's 4th field: a broadcast address, or else a label.
        let (label, broadcast) = match fourth {
            Some(f) if f.parse::<Ipv4Addr>().is_ok() => (None, Some(f)),
            Some(f) => (Some(f), None),
            None => (None, None),
        };
        IpSpec::from_parts(addr, prefix, iface, label, broadcast)
    }

    /// Builds a spec from its fields as text (the `ip` word's, or an OCF agent's parameters),
    /// with the same checks as [`IpSpec::parse`]. A label and a broadcast address may both
    /// be given here.
    pub fn from_parts(
        addr_s: &str,
        prefix: Option<&str>,
        iface: Option<&str>,
        label: Option<&str>,
        broadcast: Option<&str>,
    ) -> Result<IpSpec, String> {
        let addr: IpAddr = addr_s.parse().map_err(|_| format!("'{addr_s}' is not an IPv4 or IPv6 address"))?;
        if addr.is_unspecified()
            || addr.is_multicast()
            || addr.is_loopback()
            || addr == IpAddr::from([255, 255, 255, 255])
        {
            return Err(format!("{addr} cannot be a service address"));
        }
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => None,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if (1..=max).contains(&n) && !p.starts_with('+') => Some(n),
                _ => return Err(format!("bad prefix length '{p}' for {addr} (1..{max})")),
            },
        };
        let iface = match iface {
            None => None,
            Some(i) => {
                check_ifname(i)?;
                Some(i.to_string())
            }
        };
        if (label.is_some() || broadcast.is_some()) && !addr.is_ipv4() {
            return Err("a label or broadcast address is only possible for IPv4 addresses".to_string());
        }
        let broadcast = match broadcast {
            None => None,
            Some(b) => Some(b.parse::<Ipv4Addr>().map_err(|_| format!("bad broadcast address '{b}'"))?),
        };
        let label = match label {
            None => None,
            Some(l) => {
                if l.is_empty() || l.chars().any(|c| c.is_ascii_whitespace() || c.is_control() || c == '/') {
                    return Err(format!("bad label '{l}'"));
                }
                let full = match (l.contains(':'), iface.as_deref()) {
                    (true, _) => l.to_string(),
                    (false, Some(i)) => format!("{i}:{l}"),
                    (false, None) => {
                        return Err(format!("label '{l}' needs the interface (ADDR/PREFIX/IFACE/LABEL)"));
                    }
                };
                if full.len() > IFNAME_MAX {
                    return Err(format!("label '{full}' is longer than {IFNAME_MAX} characters"));
                }
                Some(l.to_string())
            }
        };
        Ok(IpSpec { addr, prefix, iface, label, broadcast })
    }

    /// The whole kernel label for interface `iface` (`IFACE:LABEL`, or the label as written
    /// when it holds a `:`).
    pub fn full_label(&self, iface: &str) -> Option<String> {
        self.label.as_ref().map(|l| if l.contains(':') { l.clone() } else { format!("{iface}:{l}") })
    }
}

/// The name of resource `index` (from 0) of group `group` outside tandem: the
/// `OCF_RESOURCE_INSTANCE` of an OCF agent run by the daemon, and the primitive's id in the
/// Pacemaker export. `GROUP-TYPE-N` with N counted from 1 and TYPE the resource type (the
/// agent type for OCF agents), e.g. `web-ip-1`, `web-IPaddr2-2`. It is a valid XML ID: a
/// group name that does not start with a letter or `_` gets a `g` in front, and characters an
/// ID cannot hold become `_`.
pub fn instance_name(group: &str, index: usize, spec: &ResourceSpec) -> String {
    let ty = match spec {
        ResourceSpec::Ocf(o) => o.agent_type.as_str(),
        other => other.kind().name(),
    };
    xml_id(&format!("{group}-{ty}-{}", index.saturating_add(1)))
}

/// `s` made a valid XML ID (and a safe file name part): `[A-Za-z_][A-Za-z0-9_.-]*`.
pub fn xml_id(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    if !s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
        out.push('g');
    }
    out.extend(s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' }));
    out
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
        "ocf" => ResourceKind::Ocf,
        _ => return None,
    })
}

/// Parses one resource word.
pub fn parse_resource(word: &str) -> Result<Resource, String> {
    let text = word.to_string();
    // Heartbeat's short form: a bare IP address (checked first: IPv6 addresses contain `::`).
    let head = word.split('/').next().unwrap_or("");
    if head.parse::<IpAddr>().is_ok() {
        return Ok(Resource { spec: ResourceSpec::Ip(IpSpec::parse(word)?), text });
    }
    let Some((ty, rest)) = word.split_once("::") else {
        return Err(format!(
            "unknown resource '{word}': write TYPE::ARG (ip, script, drbd, mount, lvm, guest, ocf); \
             for an init script use script::/etc/init.d/{word}"
        ));
    };
    let Some(kind) = kind_from_name(ty) else {
        return Err(format!(
            "unknown resource type '{ty}' in '{word}' (ip, script, drbd, mount, lvm, guest, ocf; \
             for a script use script::/path)"
        ));
    };
    // `ip` has one argument, which may itself contain `::` (IPv6): take the rest whole.
    let args: Vec<&str> = if kind == ResourceKind::Ip { vec![rest] } else { rest.split("::").collect() };
    if args.iter().any(|a| a.is_empty()) {
        return Err(format!("empty argument in '{word}'"));
    }
    let spec = ResourceSpec::from_args(kind, &args).map_err(|m| format!("{}: {m}", kind.name()))?;
    Ok(Resource { spec, text })
}

impl ResourceSpec {
    /// The spec of a `kind` resource from its `::`-separated arguments (non-empty), as in the
    /// resource word after `TYPE::`. `ip` takes its one argument whole.
    pub fn from_args(kind: ResourceKind, args: &[&str]) -> Result<ResourceSpec, String> {
        parse_args(kind, args)
    }
}

fn parse_args(kind: ResourceKind, args: &[&str]) -> Result<ResourceSpec, String> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let n = args.len();
    Ok(match kind {
        ResourceKind::Ip => {
            if n != 1 {
                return Err("takes one argument ADDR/PREFIX[/IFACE[/LABEL]]".to_string());
            }
            ResourceSpec::Ip(IpSpec::parse(arg(0))?)
        }
        ResourceKind::Script => {
            let p = arg(0);
            if !p.starts_with('/') {
                return Err(format!("'{p}' is not an absolute path"));
            }
            ResourceSpec::Script(ScriptSpec {
                path: PathBuf::from(p),
                args: args.iter().skip(1).map(|a| a.to_string()).collect(),
                status_by_stdout: false,
            })
        }
        ResourceKind::Drbd => {
            if n != 1 {
                return Err("takes one argument, the DRBD resource name".to_string());
            }
            check_name(arg(0), DRBD_NAME_MAX, "DRBD resource")?;
            ResourceSpec::Drbd(DrbdSpec { resource: arg(0).to_string() })
        }
        ResourceKind::Mount => {
            if !(2..=4).contains(&n) {
                return Err("takes DEVICE::DIR[::FSTYPE[::OPTIONS]]".to_string());
            }
            let dir = arg(1);
            if !dir.starts_with('/') {
                return Err(format!("mount point '{dir}' is not an absolute path"));
            }
            let fstype = match args.get(2).copied() {
                None | Some("auto") => None,
                Some(t) if t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) => Some(t.to_string()),
                Some(t) => return Err(format!("bad filesystem type '{t}'")),
            };
            let options = args.get(3).copied().unwrap_or("");
            if options.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("bad mount options '{options}'"));
            }
            ResourceSpec::Mount(MountSpec {
                device: arg(0).to_string(),
                dir: PathBuf::from(dir),
                fstype,
                options: options.to_string(),
            })
        }
        ResourceKind::Lvm => {
            if n != 1 {
                return Err("takes one argument, the volume group name".to_string());
            }
            let vg = arg(0);
            check_name(vg, VG_NAME_MAX, "volume group")?;
            if vg.starts_with('-') || vg == "." || vg == ".." {
                return Err(format!("bad volume group name '{vg}'"));
            }
            ResourceSpec::Lvm(LvmSpec { vg: vg.to_string() })
        }
        ResourceKind::Guest => {
            let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            ResourceSpec::Guest(GuestSpec::parse(&owned)?)
        }
        ResourceKind::Ocf => ResourceSpec::Ocf(OcfSpec::parse(args)?),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(w: &str) -> Resource {
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
    fn ip(w: &str) -> IpSpec {
        match ok(w).spec {
            ResourceSpec::Ip(ip) => ip,
            other => panic!("{w}: not ip: {other:?}"),
        }
    }

    #[test]
    fn ip_forms() {
        let s = ok("ip::192.0.2.50/24/veth-lan");
        assert_eq!(s.spec.kind(), ResourceKind::Ip);
        assert_eq!(s.text, "ip::192.0.2.50/24/veth-lan");
        let i = ip("ip::192.0.2.50/24/veth-lan");
        assert_eq!(i.prefix, Some(24));
        assert_eq!(i.iface.as_deref(), Some("veth-lan"));
        assert_eq!(i.label, None);

        let i = ip("ip::192.0.2.50/24/eth0/svc");
        assert_eq!(i.label.as_deref(), Some("svc"));
        assert_eq!(i.full_label("eth0").as_deref(), Some("eth0:svc"));
        assert_eq!(ip("ip::192.0.2.50/24/eth0/eth0:x").full_label("eth0").as_deref(), Some("eth0:x"));
        // Heartbeat's 4th field: a broadcast address.
        let i = ip("IPaddr::192.0.2.50/24/eth0/192.0.2.255");
        assert_eq!(i.broadcast, Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(i.label, None);
        // A left-out prefix is the subnet's, found on the host.
        assert_eq!(ip("192.0.2.50").prefix, None);
        assert_eq!(ip("ip::2001:db8::5").prefix, None);
        assert_eq!(ip("ip::2001:db8::5/64/eth0").prefix, Some(64));

        for alias in ["IPaddr", "IPaddr2"] {
            assert_eq!(ok(&format!("{alias}::192.0.2.9/24")).spec.kind(), ResourceKind::Ip);
        }
        // Heartbeat's bare address.
        assert_eq!(ip("192.0.2.50").addr, "192.0.2.50".parse::<IpAddr>().unwrap());
        assert_eq!(ip("192.0.2.50/24/eth0").iface.as_deref(), Some("eth0"));
        assert_eq!(ip("2001:db8::1/64").prefix, Some(64));
        assert_eq!(ip("ip::2001:db8::5/64/eth0").iface.as_deref(), Some("eth0"));
        assert_eq!(ip("IPaddr2::fe80::1/64/eth0").addr, "fe80::1".parse::<IpAddr>().unwrap());
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
        assert!(bad("ip::192.0.2.5/24/eth0/l/x").contains("too many"));
        assert!(bad("ip::0.0.0.0/8").contains("cannot be a service address"));
        assert!(bad("ip::224.0.0.5/24").contains("cannot be a service address"));
        assert!(bad("ip::127.0.0.5/8").contains("cannot be a service address"));
        assert!(bad("ip::::1/128").contains("cannot be a service address"));
        assert!(bad("ip::192.0.2.5/24::eth0").contains("prefix"));
        assert!(bad("ip::").contains("empty argument"));
        // Exactly 15 characters is fine.
        ok("ip::192.0.2.5/24/eth0/abcdefghij");
        ok("ip::192.0.2.5/24/abcdefghijklmno");
    }

    #[test]
    fn script_forms() {
        let s = ok("script::/etc/tandem/www.sh");
        assert_eq!(
            s.spec,
            ResourceSpec::Script(ScriptSpec {
                path: "/etc/tandem/www.sh".into(),
                args: vec![],
                status_by_stdout: false
            })
        );
        let s = ok("script::/etc/init.d/httpd::-v::x");
        assert_eq!(
            s.spec,
            ResourceSpec::Script(ScriptSpec {
                path: "/etc/init.d/httpd".into(),
                args: vec!["-v".into(), "x".into()],
                status_by_stdout: false
            })
        );
        assert!(bad("script::www.sh").contains("absolute"));
        assert!(bad("script::/x::").contains("empty"));
        assert!(bad("httpd").contains("script::/etc/init.d/httpd"));
    }

    #[test]
    fn drbd_forms() {
        assert_eq!(ok("drbd::r0").spec, ResourceSpec::Drbd(DrbdSpec { resource: "r0".into() }));
        assert_eq!(ok("drbddisk::r0").spec.kind(), ResourceKind::Drbd);
        assert!(bad("drbd::r0::x").contains("one argument"));
        assert!(bad("drbd::r 0").contains("bad DRBD"));
        assert!(bad(&format!("drbd::{}", "r".repeat(64))).contains("1 to 63"));
        ok(&format!("drbd::{}", "r".repeat(63)));
    }

    #[test]
    fn mount_forms() {
        let s = ok("mount::/dev/drbd0::/srv/data::ext4::noatime,nodev");
        assert_eq!(
            s.spec,
            ResourceSpec::Mount(MountSpec {
                device: "/dev/drbd0".into(),
                dir: "/srv/data".into(),
                fstype: Some("ext4".into()),
                options: "noatime,nodev".into()
            })
        );
        assert_eq!(ok("Filesystem::/dev/drbd0::/data").spec.kind(), ResourceKind::Mount);
        let ResourceSpec::Mount(m) = ok("mount::UUID=1234::/data::auto").spec else { panic!() };
        assert_eq!(m.fstype, None);
        assert!(bad("mount::/dev/sda1").contains("DEVICE::DIR"));
        assert!(bad("mount::/dev/sda1::data").contains("absolute"));
        assert!(bad("mount::/dev/a::/d::ext4::o::x").contains("DEVICE::DIR"));
        assert!(bad("mount::/dev/a::/d::ext/4").contains("filesystem type"));
    }

    #[test]
    fn lvm_and_guest_forms() {
        assert_eq!(ok("lvm::vg_data").spec, ResourceSpec::Lvm(LvmSpec { vg: "vg_data".into() }));
        assert_eq!(ok("LVM::vg0").spec.kind(), ResourceKind::Lvm);
        assert!(bad("lvm::-vg").contains("bad volume group"));
        assert!(bad("lvm::a::b").contains("one argument"));
        let ResourceSpec::Guest(g) = ok("guest::web1::/srv/guests/web1::init=/sbin/init::memory=64M").spec else {
            panic!()
        };
        assert_eq!((g.name.as_str(), g.root.to_str()), ("web1", Some("/srv/guests/web1")));
        ok("guest::web1::/srv/web1");
        assert!(bad("guest::web1").starts_with("guest: "));
        assert!(bad("guest::web1::srv").contains("absolute"));
        assert!(bad("guest::web1::/srv::bogus=1").starts_with("guest: "));
    }

    fn ocf(w: &str) -> OcfSpec {
        match ok(w).spec {
            ResourceSpec::Ocf(o) => o,
            other => panic!("{w}: not ocf: {other:?}"),
        }
    }

    #[test]
    fn ocf_forms() {
        let o = ocf("ocf::heartbeat:IPaddr2::ip=192.0.2.50::cidr_netmask=24");
        assert_eq!((o.provider.as_str(), o.agent_type.as_str()), ("heartbeat", "IPaddr2"));
        assert_eq!(o.params, [("ip".to_string(), "192.0.2.50".to_string()), ("cidr_netmask".into(), "24".into())]);
        assert_eq!(o.agent_name(), "heartbeat:IPaddr2");
        assert_eq!(o.param("cidr_netmask"), Some("24"));
        assert_eq!(ok("ocf::heartbeat:Dummy").spec.kind(), ResourceKind::Ocf);
        assert!(ocf("ocf::heartbeat:Dummy").params.is_empty());
        // Values may hold '=' and be empty; a piece without '=' continues the value (IPv6).
        let o = ocf("ocf::p:t::opts=a=b,c=d::empty=");
        assert_eq!(o.param("opts"), Some("a=b,c=d"));
        assert_eq!(o.param("empty"), Some(""));
        let o = ocf("ocf::heartbeat:IPaddr2::ip=2001:db8::50::cidr_netmask=64");
        assert_eq!(o.param("ip"), Some("2001:db8::50"));
        assert_eq!(o.param("cidr_netmask"), Some("64"));
        assert_eq!(ocf("ocf::heartbeat:IPaddr2::ip=::ffff:192.0.2.1").param("ip"), Some("::ffff:192.0.2.1"));
        assert_eq!(ocf("ocf::linbit:drbd::drbd_resource=r0").provider, "linbit");
        assert_eq!(ocf("ocf::p+1:t_2.x-y::_a1=v").agent_type, "t_2.x-y");
    }

    #[test]
    fn ocf_errors() {
        assert!(bad("ocf::heartbeat").contains("not PROVIDER:TYPE"));
        assert!(bad("ocf::heartbeat:").contains("bad agent type"));
        assert!(bad("ocf:::Dummy").contains("bad provider"));
        assert!(bad("ocf::../x:Dummy").contains("bad provider"));
        assert!(bad("ocf::heartbeat:..").contains("bad agent type"));
        assert!(bad("ocf::heartbeat:a/b").contains("bad agent type"));
        assert!(bad("ocf::heartbeat:-x").contains("bad agent type"));
        assert!(bad("ocf::heartbeat:Dummy::value").contains("'value' is not NAME=VALUE"));
        assert!(bad("ocf::heartbeat:Dummy::1x=2").contains("bad parameter name '1x'"));
        assert!(bad("ocf::heartbeat:Dummy::a-b=2").contains("bad parameter name"));
        assert!(bad("ocf::heartbeat:Dummy::=2").contains("bad parameter name ''"));
        assert!(bad("ocf::heartbeat:Dummy::a=1::a=2").contains("'a' is given twice"));
        assert!(bad("ocf::heartbeat:Dummy::CRM_meta_timeout=5").contains("set by tandem"));
        assert!(bad("ocf::heartbeat:Dummy::a=\u{1}").contains("control character"));
        assert!(bad(&format!("ocf::heartbeat:Dummy::{}=1", "a".repeat(65))).contains("bad parameter name"));
        assert!(bad(&format!("ocf::heartbeat:{}", "a".repeat(65))).contains("1 to 64"));
        assert!(bad("ocf::heartbeat:Dummy::a=1::").contains("empty argument"));
        assert!(bad("ocf::").contains("empty argument"));
    }

    #[test]
    fn instance_names_are_xml_ids() {
        let spec = |w: &str| ok(w).spec;
        assert_eq!(instance_name("web", 0, &spec("ip::192.0.2.5/24")), "web-ip-1");
        assert_eq!(instance_name("web", 1, &spec("ocf::heartbeat:IPaddr2::ip=192.0.2.5")), "web-IPaddr2-2");
        assert_eq!(instance_name("1st", 2, &spec("drbd::r0")), "g1st-drbd-3");
        assert_eq!(instance_name(".x", 0, &spec("lvm::vg")), "g.x-lvm-1");
        assert_eq!(instance_name("db", 0, &spec("ocf::p:a+b")), "db-a_b-1");
        assert_eq!(xml_id("ocf::heartbeat:Dummy::state=/x"), "ocf__heartbeat_Dummy__state__x");
    }

    #[test]
    fn unknown_type() {
        assert!(bad("apache::/etc/x").contains("unknown resource type 'apache'"));
        assert!(bad("IP::1.2.3.4/24").contains("unknown resource type"));
    }

    #[test]
    fn identities() {
        let id = |w: &str| ok(w).spec.identity();
        assert_eq!(id("ip::192.0.2.5/24"), id("IPaddr::192.0.2.5/32/eth0"));
        assert_eq!(id("mount::/a::/d/"), id("mount::/b::/d"));
        assert_ne!(id("drbd::r0"), id("drbd::r1"));
        assert_ne!(id("script::/a::x"), id("script::/a::y"));
        assert_eq!(id("ocf::p:t::a=1::b=2"), id("ocf::p:t::b=2::a=1"));
        assert_ne!(id("ocf::p:t::a=1"), id("ocf::p:t::a=2"));
        assert_ne!(id("ocf::p:t::a=1"), id("ocf::q:t::a=1"));
        assert_eq!(id("ocf::heartbeat:Dummy"), "ocf agent heartbeat:Dummy");
    }
}
