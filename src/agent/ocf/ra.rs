//! tandem's own agents as OCF resource agents (provider `tandem`): the parameter tables, the
//! `meta-data` XML, and `OCF_RESKEY_*` parameters read into the same typed
//! [`ResourceSpec`]s the configuration file gives. Pure; the command is `tandem ocf` (src/cli).
//!
//! Parameter names follow the stock agents that mean the same, so a Pacemaker configuration
//! can switch between them: `ip` takes IPaddr2's (`ip`, `cidr_netmask`, `nic`, `iflabel`,
//! `broadcast`, `arp_count`, `arp_interval`), `mount` Filesystem's (`device`, `directory`,
//! `fstype`, `options`), `lvm` LVM's (`volgrpname`), `drbd` linbit's (`drbd_resource`).

use super::OcfCode;
use crate::config::{IpSpec, ResourceKind, ResourceSpec};
use crate::time::Duration;

/// The OCF provider name of tandem's agents: `/usr/lib/ocf/resource.d/tandem/`.
pub const PROVIDER: &str = "tandem";

/// A parameter's type in meta-data (the types both the OCF 1.1 schema and the 1.0 DTD know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
}

impl ParamType {
    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
        }
    }
}

/// One instance parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    /// Two instances must not have the same value.
    pub unique: bool,
    pub ty: ParamType,
    pub default: Option<&'static str>,
    pub short: &'static str,
    pub long: &'static str,
}

/// One of tandem's agents as an OCF agent.
#[derive(Debug)]
pub struct Ra {
    pub kind: ResourceKind,
    /// The file name under `resource.d/tandem/`.
    pub name: &'static str,
    pub short: &'static str,
    pub long: &'static str,
    pub params: &'static [Param],
}

const fn p(name: &'static str, required: bool, short: &'static str, long: &'static str) -> Param {
    Param { name, required, unique: false, ty: ParamType::String, default: None, short, long }
}

/// The default `arp_count` and `arp_interval` (ms) of the `ip` agent.
pub const DEFAULT_ARP_COUNT: &str = "5";
pub const DEFAULT_ARP_INTERVAL_MS: &str = "200";
/// Bounds of `arp_count` and `arp_interval` (ms).
pub const MAX_ARP_COUNT: u32 = 100;
pub const MAX_ARP_INTERVAL_MS: u64 = 10_000;

const IP_PARAMS: &[Param] = &[
    Param {
        unique: true,
        ..p("ip", true, "IPv4 or IPv6 address", "The address to add, e.g. 192.0.2.50 or 2001:db8::50.")
    },
    Param {
        ty: ParamType::Integer,
        ..p(
            "cidr_netmask",
            false,
            "Prefix length",
            "The prefix length, e.g. 24. Default: the prefix of the subnet on this host that holds the address.",
        )
    },
    p("nic", false, "Interface", "The interface. Default: the interface whose subnet holds the address."),
    p(
        "iflabel",
        false,
        "Label (IPv4)",
        "An alias label: appended to the interface name (nic:iflabel), or whole when it contains ':'.",
    ),
    p("broadcast", false, "Broadcast address (IPv4)", "An explicit broadcast address."),
    Param {
        ty: ParamType::Integer,
        default: Some(DEFAULT_ARP_COUNT),
        ..p(
            "arp_count",
            false,
            "Announcements",
            "How many gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6) start sends.",
        )
    },
    Param {
        ty: ParamType::Integer,
        default: Some(DEFAULT_ARP_INTERVAL_MS),
        ..p("arp_interval", false, "Announcement interval (ms)", "Milliseconds between two announcements.")
    },
];

const DRBD_PARAMS: &[Param] =
    &[Param { unique: true, ..p("drbd_resource", true, "DRBD resource", "The name of the DRBD resource.") }];

const MOUNT_PARAMS: &[Param] = &[
    p("device", true, "Block device", "The device: a path, UUID=... or LABEL=...."),
    Param { unique: true, ..p("directory", true, "Mount point", "The absolute path to mount on.") },
    Param {
        default: Some("auto"),
        ..p("fstype", false, "Filesystem type", "The filesystem type; auto tries the types the kernel knows.")
    },
    p("options", false, "Mount options", "Comma-separated options, as in fstab."),
];

const LVM_PARAMS: &[Param] =
    &[Param { unique: true, ..p("volgrpname", true, "Volume group", "The volume group to activate.") }];

const SCRIPT_PARAMS: &[Param] = &[
    p("path", true, "Script", "The absolute path of an LSB or heartbeat-style script."),
    p("args", false, "Arguments", "Arguments given before the action, separated by blanks."),
];

const GUEST_PARAMS: &[Param] = &[
    Param { unique: true, ..p("name", true, "Guest name", "The name of the guest.") },
    p("root", true, "Root directory", "The absolute path of the guest's root directory."),
    p("options", false, "Options", "Guest options, separated by blanks (see guests.md)."),
];

/// tandem's agents as OCF agents, in the order of `resource.d/tandem/`.
pub const AGENTS: [Ra; 6] = [
    Ra {
        kind: ResourceKind::Ip,
        name: "ip",
        short: "IP address (tandem)",
        long: "Adds an IPv4 or IPv6 address over rtnetlink and announces it with gratuitous ARPs or \
               unsolicited neighbour advertisements. Monitor: the address is on the interface.",
        params: IP_PARAMS,
    },
    Ra {
        kind: ResourceKind::Drbd,
        name: "drbd",
        short: "DRBD role (tandem)",
        long: "Start makes a DRBD resource primary, stop makes it secondary, over generic netlink \
               (heartbeat's drbddisk). Monitor: the resource is primary here.",
        params: DRBD_PARAMS,
    },
    Ra {
        kind: ResourceKind::Mount,
        name: "mount",
        short: "Filesystem mount (tandem)",
        long: "Mounts a filesystem with mount(2). Stop terminates the processes that hold it, then \
               unmounts (never lazily). Monitor: the device is mounted on the directory.",
        params: MOUNT_PARAMS,
    },
    Ra {
        kind: ResourceKind::Lvm,
        name: "lvm",
        short: "LVM volume group (tandem)",
        long: "Activates (vgchange -a y) and deactivates a volume group. Monitor: a logical volume \
               of the group is active in the device mapper.",
        params: LVM_PARAMS,
    },
    Ra {
        kind: ResourceKind::Script,
        name: "script",
        short: "LSB script (tandem)",
        long: "Calls an LSB or heartbeat-style script as PATH ARGS start|stop|status; status exit 3 \
               means not running.",
        params: SCRIPT_PARAMS,
    },
    Ra {
        kind: ResourceKind::Guest,
        name: "guest",
        short: "Guest (tandem)",
        long: "A whole virtual server: namespaces, capabilities, seccomp and cgroup limits.",
        params: GUEST_PARAMS,
    },
];

/// The agent called `name` (`ip`, `drbd`, …).
pub fn find(name: &str) -> Option<&'static Ra> {
    AGENTS.iter().find(|a| a.name == name)
}

/// The agent for a resource kind (none for `ocf` itself).
pub fn for_kind(kind: ResourceKind) -> Option<&'static Ra> {
    AGENTS.iter().find(|a| a.kind == kind)
}

/// What the parameters say: the resource, and for `ip` its announcements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaConfig {
    pub spec: ResourceSpec,
    pub arp_count: u32,
    pub arp_interval: Duration,
}

/// The OCF action asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    MetaData,
    ValidateAll,
    Start,
    Stop,
    Monitor,
    Usage,
    /// Anything else (promote, notify, reload, migrate_to, …): `OCF_ERR_UNIMPLEMENTED`.
    Unimplemented,
}

impl Action {
    pub fn parse(s: &str) -> Action {
        match s {
            "meta-data" => Action::MetaData,
            "validate-all" => Action::ValidateAll,
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" => Action::Monitor,
            "usage" | "help" | "--help" | "-h" => Action::Usage,
            _ => Action::Unimplemented,
        }
    }
}

/// Why an action could not even be tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// The parameters are wrong in themselves (missing, unknown, malformed).
    Params(String),
    /// They cannot work on this host (an interface that does not exist, a script that is not
    /// executable).
    Host(String),
    /// A tool or kernel facility is missing (lvm2, the DRBD module).
    Missing(String),
    /// tandem cannot run this kind of resource yet.
    Unsupported(String),
}

/// The exit code when the action could not be tried. A resource that cannot exist on this
/// host is not running there, so `stop` succeeds and `monitor` says not running.
pub fn setup_code(action: Action, e: &SetupError) -> OcfCode {
    match (e, action) {
        (SetupError::Params(_), _) => OcfCode::ErrConfigured,
        (SetupError::Unsupported(_), _) => OcfCode::ErrUnimplemented,
        (SetupError::Host(_) | SetupError::Missing(_), Action::Stop) => OcfCode::Success,
        (SetupError::Host(_), Action::Monitor) => OcfCode::NotRunning,
        (SetupError::Host(_), _) => OcfCode::ErrArgs,
        (SetupError::Missing(_), _) => OcfCode::ErrInstalled,
    }
}

/// The exit code of an action that ran: `Ok(running?)` or the agent's error, classified.
pub fn result_code(action: Action, r: &Result<bool, super::super::AgentError>) -> OcfCode {
    use super::super::AgentError as E;
    match (r, action) {
        (Ok(true), _) => OcfCode::Success,
        (Ok(false), Action::Monitor) => OcfCode::NotRunning,
        (Ok(false), _) => OcfCode::Success,
        (Err(E::Sys { errno: nix::errno::Errno::EPERM | nix::errno::Errno::EACCES, .. }), _) => OcfCode::ErrPerm,
        (Err(E::Unavailable(_)), _) => OcfCode::ErrInstalled,
        (Err(E::Unsupported(_)), _) => OcfCode::ErrUnimplemented,
        (Err(E::Config(_)), Action::Start | Action::ValidateAll) => OcfCode::ErrArgs,
        (Err(_), _) => OcfCode::ErrGeneric,
    }
}

/// Parameter names that a cluster manager or resource-agents' tooling sets for every agent;
/// they are not instance parameters and are ignored.
fn is_manager_param(name: &str) -> bool {
    name.starts_with("CRM_meta_") || name.starts_with("crm_") || name.starts_with("trace_")
}

impl Ra {
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Reads `(NAME, VALUE)` pairs (the `OCF_RESKEY_` prefix removed) into a spec. An empty
    /// value is the same as none. Unknown names are errors, except the manager's own
    /// (`CRM_meta_*`, `crm_*`, `trace_*`).
    pub fn parse_params(&self, vars: &[(String, String)]) -> Result<RaConfig, String> {
        let mut given: Vec<(&'static str, &str)> = Vec::new();
        for (n, v) in vars {
            if is_manager_param(n) {
                continue;
            }
            let Some(p) = self.param(n) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.name).collect();
                return Err(format!("unknown parameter '{n}' (the {} agent takes {})", self.name, known.join(", ")));
            };
            if !v.is_empty() {
                given.push((p.name, v.as_str()));
            }
        }
        let get = |n: &str| given.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        if let Some(p) = self.params.iter().find(|p| p.required && get(p.name).is_none()) {
            return Err(format!("parameter '{}' is required", p.name));
        }
        let words = |n: &str| get(n).map(|v| v.split_whitespace().collect::<Vec<_>>()).unwrap_or_default();
        let req = |n: &str| get(n).unwrap_or("");
        let kind = self.kind;
        let from = |args: &[&str]| ResourceSpec::from_args(kind, args);
        let spec = match kind {
            ResourceKind::Ip => ResourceSpec::Ip(IpSpec::from_parts(
                req("ip"),
                get("cidr_netmask"),
                get("nic"),
                get("iflabel"),
                get("broadcast"),
            )?),
            ResourceKind::Drbd => from(&[req("drbd_resource")])?,
            ResourceKind::Lvm => from(&[req("volgrpname")])?,
            ResourceKind::Mount => {
                let mut args = vec![req("device"), req("directory")];
                match (get("fstype"), get("options")) {
                    (t, Some(o)) => args.extend([t.unwrap_or("auto"), o]),
                    (Some(t), None) => args.push(t),
                    (None, None) => {}
                }
                from(&args)?
            }
            ResourceKind::Script => {
                let mut args = vec![req("path")];
                args.extend(words("args"));
                from(&args)?
            }
            ResourceKind::Guest => {
                let mut args = vec![req("name"), req("root")];
                args.extend(words("options"));
                from(&args)?
            }
            ResourceKind::Ocf => return Err("not one of tandem's agents".to_string()),
        };
        let arp_count = get("arp_count").unwrap_or(DEFAULT_ARP_COUNT);
        let arp_count = arp_count
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_ARP_COUNT)
            .ok_or_else(|| format!("bad arp_count '{arp_count}' (0 to {MAX_ARP_COUNT})"))?;
        let ms = get("arp_interval").unwrap_or(DEFAULT_ARP_INTERVAL_MS);
        let arp_interval = ms
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_ARP_INTERVAL_MS).contains(n))
            .map(Duration::from_millis)
            .ok_or_else(|| format!("bad arp_interval '{ms}' (1 to {MAX_ARP_INTERVAL_MS} ms)"))?;
        Ok(RaConfig { spec, arp_count, arp_interval })
    }

    /// The `meta-data` XML: valid against the OCF 1.1 schema (ra-api.rng) and resource-agents'
    /// ra-api-1.dtd, which `ocf-tester` checks.
    pub fn meta_data(&self) -> String {
        let mut x = String::with_capacity(4096);
        x.push_str("<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
        x.push_str(&format!(
            "<resource-agent name=\"{}\" version=\"{}\">\n<version>1.1</version>\n",
            self.name,
            env!("CARGO_PKG_VERSION")
        ));
        x.push_str(&format!("<longdesc lang=\"en\">\n{}\n</longdesc>\n", escape(self.long)));
        x.push_str(&format!("<shortdesc lang=\"en\">{}</shortdesc>\n<parameters>\n", escape(self.short)));
        for p in self.params {
            x.push_str(&format!(
                "<parameter name=\"{}\" unique=\"{}\" required=\"{}\">\n",
                p.name,
                u8::from(p.unique),
                u8::from(p.required)
            ));
            x.push_str(&format!("<longdesc lang=\"en\">{}</longdesc>\n", escape(p.long)));
            x.push_str(&format!("<shortdesc lang=\"en\">{}</shortdesc>\n", escape(p.short)));
            match p.default {
                Some(d) => x.push_str(&format!("<content type=\"{}\" default=\"{}\"/>\n", p.ty.name(), escape(d))),
                None => x.push_str(&format!("<content type=\"{}\"/>\n", p.ty.name())),
            }
            x.push_str("</parameter>\n");
        }
        x.push_str(
            "</parameters>\n<actions>\n\
             <action name=\"start\" timeout=\"60s\"/>\n\
             <action name=\"stop\" timeout=\"60s\"/>\n\
             <action name=\"monitor\" timeout=\"20s\" interval=\"10s\" depth=\"0\"/>\n\
             <action name=\"meta-data\" timeout=\"5s\"/>\n\
             <action name=\"validate-all\" timeout=\"20s\"/>\n\
             </actions>\n</resource-agent>\n",
        );
        x
    }
}

/// The OCF parameters of tandem's agent for `spec` (the inverse of [`Ra::parse_params`]),
/// with the agent; `None` for `ocf` resources. `ip` announcements are not part of the spec.
pub fn params_of(spec: &ResourceSpec) -> Option<(&'static Ra, Vec<(String, String)>)> {
    let ra = for_kind(spec.kind())?;
    let mut v: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, val: String| v.push((k.to_string(), val));
    match spec {
        ResourceSpec::Ip(ip) => {
            put("ip", ip.addr.to_string());
            if let Some(p) = ip.prefix {
                put("cidr_netmask", p.to_string());
            }
            if let Some(i) = &ip.iface {
                put("nic", i.clone());
            }
            if let Some(l) = &ip.label {
                put("iflabel", l.clone());
            }
            if let Some(b) = ip.broadcast {
                put("broadcast", b.to_string());
            }
        }
        ResourceSpec::Drbd(d) => put("drbd_resource", d.resource.clone()),
        ResourceSpec::Lvm(l) => put("volgrpname", l.vg.clone()),
        ResourceSpec::Mount(m) => {
            put("device", m.device.clone());
            put("directory", m.dir.display().to_string());
            if let Some(t) = &m.fstype {
                put("fstype", t.clone());
            }
            if !m.options.is_empty() {
                put("options", m.options.clone());
            }
        }
        ResourceSpec::Script(s) => {
            put("path", s.path.display().to_string());
            if !s.args.is_empty() {
                put("args", s.args.join(" "));
            }
        }
        ResourceSpec::Guest(g) => {
            put("name", g.name.clone());
            put("root", g.root.display().to_string());
            let opts = g.options_text();
            if !opts.is_empty() {
                put("options", opts.replace("::", " "));
            }
        }
        ResourceSpec::Ocf(_) => return None,
    }
    Some((ra, v))
}

/// Escapes text for XML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::super::metadata;
    use super::*;
    use crate::agent::AgentError;
    use crate::config::parse_resource;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn spec_of(agent: &str, v: &[(&str, &str)]) -> Result<RaConfig, String> {
        find(agent).unwrap().parse_params(&vars(v))
    }

    #[test]
    fn params_become_the_same_specs_as_words() {
        let word = |w: &str| parse_resource(w).unwrap().spec;
        let c = spec_of("ip", &[("ip", "192.0.2.50"), ("cidr_netmask", "24"), ("nic", "eth0"), ("iflabel", "web")])
            .unwrap();
        assert_eq!(c.spec, word("ip::192.0.2.50/24/eth0/web"));
        assert_eq!((c.arp_count, c.arp_interval), (5, Duration::from_millis(200)));
        let c = spec_of("ip", &[("ip", "2001:db8::5"), ("arp_count", "2"), ("arp_interval", "50")]).unwrap();
        assert_eq!(c.spec, word("ip::2001:db8::5"));
        assert_eq!((c.arp_count, c.arp_interval), (2, Duration::from_millis(50)));
        let c = spec_of("ip", &[("ip", "192.0.2.50"), ("nic", "eth0"), ("iflabel", "x"), ("broadcast", "192.0.2.255")]);
        let ResourceSpec::Ip(ip) = c.unwrap().spec else { panic!() };
        assert_eq!((ip.label.as_deref(), ip.broadcast.map(|b| b.to_string())), (Some("x"), Some("192.0.2.255".into())));
        assert_eq!(spec_of("drbd", &[("drbd_resource", "r0")]).unwrap().spec, word("drbd::r0"));
        assert_eq!(spec_of("lvm", &[("volgrpname", "vg0")]).unwrap().spec, word("lvm::vg0"));
        assert_eq!(
            spec_of("mount", &[("device", "/dev/sdb1"), ("directory", "/srv")]).unwrap().spec,
            word("mount::/dev/sdb1::/srv")
        );
        assert_eq!(
            spec_of("mount", &[("device", "/dev/sdb1"), ("directory", "/srv"), ("options", "noatime")]).unwrap().spec,
            word("mount::/dev/sdb1::/srv::auto::noatime")
        );
        assert_eq!(
            spec_of("mount", &[("device", "LABEL=d"), ("directory", "/srv"), ("fstype", "ext4")]).unwrap().spec,
            word("mount::LABEL=d::/srv::ext4")
        );
        assert_eq!(
            spec_of("script", &[("path", "/etc/init.d/x"), ("args", " a  b ")]).unwrap().spec,
            word("script::/etc/init.d/x::a::b")
        );
        assert_eq!(
            spec_of("guest", &[("name", "g1"), ("root", "/srv/g1"), ("options", "init=/sbin/init")]).unwrap().spec,
            word("guest::g1::/srv/g1::init=/sbin/init")
        );
        // Empty values are left out; the manager's own parameters are ignored.
        let c = spec_of(
            "ip",
            &[
                ("ip", "192.0.2.5"),
                ("nic", ""),
                ("CRM_meta_timeout", "20000"),
                ("crm_feature_set", "3.16"),
                ("trace_ra", "0"),
            ],
        );
        assert_eq!(c.unwrap().spec, word("ip::192.0.2.5"));
    }

    #[test]
    fn bad_params_are_errors() {
        let e = |agent: &str, v: &[(&str, &str)]| spec_of(agent, v).unwrap_err();
        assert_eq!(e("ip", &[]), "parameter 'ip' is required");
        assert_eq!(e("ip", &[("ip", "")]), "parameter 'ip' is required");
        assert!(e("ip", &[("ip", "192.0.2.5"), ("netmask", "24")])
            .starts_with("unknown parameter 'netmask' (the ip agent takes ip, cidr_netmask"));
        assert!(e("ip", &[("ip", "192.0.2.500")]).contains("not an IPv4"));
        assert!(e("ip", &[("ip", "192.0.2.5"), ("cidr_netmask", "33")]).contains("prefix"));
        assert!(e("ip", &[("ip", "192.0.2.5"), ("broadcast", "x")]).contains("bad broadcast"));
        assert!(e("ip", &[("ip", "192.0.2.5"), ("iflabel", "x")]).contains("needs the interface"));
        assert!(e("ip", &[("ip", "192.0.2.5"), ("arp_count", "101")]).contains("arp_count"));
        assert!(e("ip", &[("ip", "192.0.2.5"), ("arp_interval", "0")]).contains("arp_interval"));
        assert_eq!(e("mount", &[("device", "/dev/x")]), "parameter 'directory' is required");
        assert!(e("mount", &[("device", "/dev/x"), ("directory", "rel")]).contains("absolute"));
        assert!(e("lvm", &[("volgrpname", "-x")]).contains("bad volume group"));
        assert!(e("script", &[("path", "x")]).contains("absolute"));
    }

    #[test]
    fn params_of_is_the_inverse() {
        for w in [
            "ip::192.0.2.50/24/eth0/web",
            "ip::192.0.2.50",
            "IPaddr::192.0.2.50/24/eth0/192.0.2.255",
            "ip::2001:db8::5/64/eth0",
            "drbd::r0",
            "lvm::vg_data",
            "mount::/dev/drbd0::/srv/data::ext4::noatime,nodev",
            "mount::UUID=1234::/data",
            "mount::/dev/a::/d::auto::ro",
            "script::/etc/init.d/httpd::-v::x",
            "script::/etc/tandem/www.sh",
            "guest::web1::/srv/guests/web1::init=/sbin/init::memory=64M",
            "guest::web2::/srv/guests/web2::init=/bin/sh::arg=-c::arg=true::stop_signal=SIGTERM::stop_timeout=5s",
        ] {
            let spec = parse_resource(w).unwrap().spec;
            let (ra, params) = params_of(&spec).unwrap();
            assert_eq!(ra.kind, spec.kind());
            assert_eq!(ra.parse_params(&params).unwrap().spec, spec, "{w}: {params:?}");
        }
        assert!(params_of(&parse_resource("ocf::heartbeat:Dummy").unwrap().spec).is_none());
    }

    #[test]
    fn meta_data_reads_back() {
        for ra in &AGENTS {
            let x = ra.meta_data();
            let md = metadata::parse(&x).unwrap_or_else(|e| panic!("{}: {e}\n{x}", ra.name));
            assert_eq!(md.name, ra.name);
            let names: Vec<&str> = md.params.iter().map(|p| p.name.as_str()).collect();
            let want: Vec<&str> = ra.params.iter().map(|p| p.name).collect();
            assert_eq!(names, want);
            for p in ra.params {
                let m = md.param(p.name).unwrap();
                assert_eq!((m.required, m.unique, m.default.as_deref()), (p.required, p.unique, p.default));
            }
            for a in ["start", "stop", "monitor", "meta-data", "validate-all"] {
                assert!(md.has_action(a), "{}: {a}", ra.name);
            }
        }
        assert!(find("ip").unwrap().meta_data().contains("<content type=\"integer\" default=\"5\"/>"));
    }

    #[test]
    fn exit_codes() {
        use Action::*;
        let params = SetupError::Params("x".into());
        let host = SetupError::Host("x".into());
        let missing = SetupError::Missing("x".into());
        let unsupported = SetupError::Unsupported("x".into());
        for a in [ValidateAll, Start, Stop, Monitor] {
            assert_eq!(setup_code(a, &params), OcfCode::ErrConfigured);
            assert_eq!(setup_code(a, &unsupported), OcfCode::ErrUnimplemented);
        }
        assert_eq!(setup_code(Start, &host), OcfCode::ErrArgs);
        assert_eq!(setup_code(ValidateAll, &host), OcfCode::ErrArgs);
        assert_eq!(setup_code(Monitor, &host), OcfCode::NotRunning);
        assert_eq!(setup_code(Stop, &host), OcfCode::Success);
        assert_eq!(setup_code(Start, &missing), OcfCode::ErrInstalled);
        assert_eq!(setup_code(Monitor, &missing), OcfCode::ErrInstalled);
        assert_eq!(setup_code(Stop, &missing), OcfCode::Success);

        assert_eq!(result_code(Start, &Ok(true)), OcfCode::Success);
        assert_eq!(result_code(Monitor, &Ok(true)), OcfCode::Success);
        assert_eq!(result_code(Monitor, &Ok(false)), OcfCode::NotRunning);
        assert_eq!(result_code(Stop, &Ok(false)), OcfCode::Success);
        let sys = |errno| Err(AgentError::Sys { op: "mount".into(), errno });
        assert_eq!(result_code(Start, &sys(nix::errno::Errno::EPERM)), OcfCode::ErrPerm);
        assert_eq!(result_code(Start, &sys(nix::errno::Errno::EBUSY)), OcfCode::ErrGeneric);
        assert_eq!(result_code(Start, &Err(AgentError::Unavailable("no drbd".into()))), OcfCode::ErrInstalled);
        assert_eq!(result_code(Start, &Err(AgentError::Config("no subnet".into()))), OcfCode::ErrArgs);
        assert_eq!(result_code(Monitor, &Err(AgentError::Failed("?".into()))), OcfCode::ErrGeneric);
        assert_eq!(result_code(Stop, &Err(AgentError::Failed("busy".into()))), OcfCode::ErrGeneric);

        assert_eq!(Action::parse("monitor"), Monitor);
        assert_eq!(Action::parse("status"), Unimplemented);
        assert_eq!(Action::parse("promote"), Unimplemented);
        assert_eq!(Action::parse("meta-data"), MetaData);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
