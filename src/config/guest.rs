//! The `guest::NAME::ROOTDIR[::KEY=VALUE…]` resource: a whole virtual server.
//!
//! Pure: [`GuestSpec::parse`] decodes the `::`-separated words after `guest` into a
//! validated spec. Nothing here touches the host (the root directory may not exist yet:
//! it usually lives on a filesystem an earlier resource of the group mounts).
//!
//! Options (each at most once, except `arg`), documented in `docs/guests.md`:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `memory=SIZE` | memory limit, bytes with an optional `K`/`M`/`G`/`T` suffix (powers of 1024) | none |
//! | `cpu=N%` | CPU quota in percent of one CPU (`150%` = one and a half CPUs) | none |
//! | `pids=N` | most tasks (processes and threads) at once | none |
//! | `net=host\|none\|macvlan:IFACE\|ipvlan:IFACE` | network namespace | `host` |
//! | `caps=+CAP,-CAP…` or `caps=CAP,CAP…` or `caps=none` | bounding set: changes to the default set, or a whole set | see [`DEFAULT_CAPS`] |
//! | `init=PATH` | the guest's init, a path inside the guest | `/sbin/init` |
//! | `arg=WORD` | one more argument for init (repeatable, in order) | none |
//! | `hostname=NAME` | the guest's host name | the guest's name |
//! | `stop_signal=SIG` | what `stop` sends to init first (`SIGINT`, `INT`, `RTMIN+4`, `38`) | `SIGINT` |
//! | `stop_timeout=TIME` | how long `stop` waits for init before killing the guest | `20s` |

use std::path::{Component, Path, PathBuf};

use crate::time::Duration;

/// Longest guest name (it is also the default host name, at most 64 bytes).
pub const NAME_MAX: usize = 64;
/// Default init, a path inside the guest.
pub const DEFAULT_INIT: &str = "/sbin/init";
/// Default `stop_timeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest `stop_timeout` accepted.
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default `stop_signal`: SIGINT is "ctrl-alt-del" for every classic init (busybox init,
/// sysvinit, systemd), and their ctrl-alt-del action ends a guest (a reboot inside a PID
/// namespace ends it).
pub const DEFAULT_STOP_SIGNAL: i32 = libc::SIGINT;
/// The interface name a `macvlan`/`ipvlan` guest sees.
pub const GUEST_IFNAME: &str = "eth0";
/// `cpu.max`/`cpu.cfs_period_us` period the CPU percentage is applied to, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;
/// Highest `cpu=` percentage (1024 CPUs).
pub const MAX_CPU_PERCENT: u32 = 102_400;
/// Smallest `memory=` limit accepted.
pub const MIN_MEMORY: u64 = 1 << 20;

/// Capability names, index = capability number (linux/capability.h, up to Linux 6.x).
pub const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

const fn cap_bit(n: u32) -> u64 {
    1u64 << n
}

/// The default bounding set: what an ordinary service run as root needs (own files,
/// switch users, bind ports below 1024, chroot, signals within the guest), and
/// `SYS_BOOT`, which inside a guest's PID namespace can only end the guest (the kernel
/// turns reboot(2) there into a signal to the guest's init; kexec is refused by the
/// seccomp filter). Everything else, in particular SYS_ADMIN, NET_ADMIN, NET_RAW,
/// SYS_MODULE, SYS_RAWIO, SYS_TIME, SYS_PTRACE, MKNOD, DAC_READ_SEARCH, SYSLOG,
/// MAC_ADMIN, IPC_LOCK, SYS_NICE and SYS_RESOURCE, is dropped.
pub const DEFAULT_CAPS: u64 = cap_bit(0) // CHOWN
    | cap_bit(1) // DAC_OVERRIDE
    | cap_bit(3) // FOWNER
    | cap_bit(4) // FSETID
    | cap_bit(5) // KILL
    | cap_bit(6) // SETGID
    | cap_bit(7) // SETUID
    | cap_bit(8) // SETPCAP
    | cap_bit(10) // NET_BIND_SERVICE
    | cap_bit(18) // SYS_CHROOT
    | cap_bit(22) // SYS_BOOT
    | cap_bit(28) // LEASE
    | cap_bit(29) // AUDIT_WRITE
    | cap_bit(31); // SETFCAP

/// The capability number for a name (`NET_ADMIN`, `cap_net_admin`, `CAP_NET_ADMIN`).
pub fn cap_from_name(s: &str) -> Option<u32> {
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    CAP_NAMES.iter().position(|n| *n == bare).and_then(|i| u32::try_from(i).ok())
}

/// The names of the capabilities in `mask`, comma-separated (`none` when empty).
pub fn caps_to_string(mask: u64) -> String {
    let names: Vec<&str> =
        CAP_NAMES.iter().enumerate().filter(|(i, _)| mask & (1u64 << i) != 0).map(|(_, n)| *n).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

/// Signal names tandem accepts, without the `SIG` prefix.
const SIGNALS: [(&str, i32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];
/// SIGRTMIN as programs see it (glibc keeps 32 and 33 for itself): systemd's
/// "SIGRTMIN+4" is signal 38.
pub const SIGRTMIN: i32 = 34;
/// SIGRTMAX.
pub const SIGRTMAX: i32 = 64;

/// Parses `SIGTERM`, `TERM`, `term`, `15`, `SIGRTMIN+4`, `RTMAX-2`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=SIGRTMAX).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some((_, n)) = SIGNALS.iter().find(|(name, _)| *name == bare) {
        return Some(*n);
    }
    let rt = |base: i32, rest: &str| -> Option<i32> {
        let n = if rest.is_empty() {
            base
        } else if let Some(off) = rest.strip_prefix('+') {
            base.checked_add(off.parse::<i32>().ok()?)?
        } else if let Some(off) = rest.strip_prefix('-') {
            base.checked_sub(off.parse::<i32>().ok()?)?
        } else {
            return None;
        };
        (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
    };
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        return rt(SIGRTMIN, rest);
    }
    if let Some(rest) = bare.strip_prefix("RTMAX") {
        return rt(SIGRTMAX, rest);
    }
    None
}

/// The conventional name of signal `n` (`SIGTERM`, `SIGRTMIN+4`).
pub fn signal_name(n: i32) -> String {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, v)| *v == n) {
        return format!("SIG{name}");
    }
    if (SIGRTMIN..=SIGRTMAX).contains(&n) {
        return if n == SIGRTMIN { "SIGRTMIN".to_string() } else { format!("SIGRTMIN+{}", n - SIGRTMIN) };
    }
    format!("signal {n}")
}

/// The guest's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestNet {
    /// The host's network namespace (the vserver way): the guest can bind the host's
    /// addresses (the group's floating address) but change nothing.
    Host,
    /// A network namespace of its own with only `lo`.
    Loopback,
    /// Its own network namespace with a macvlan (bridge mode) interface `eth0` on `parent`.
    Macvlan { parent: String },
    /// Its own network namespace with an ipvlan (L2 mode) interface `eth0` on `parent`.
    Ipvlan { parent: String },
}

impl GuestNet {
    /// Whether the guest gets a network namespace of its own.
    pub fn private(&self) -> bool {
        !matches!(self, GuestNet::Host)
    }
    /// As written after `net=`.
    pub fn text(&self) -> String {
        match self {
            GuestNet::Host => "host".to_string(),
            GuestNet::Loopback => "none".to_string(),
            GuestNet::Macvlan { parent } => format!("macvlan:{parent}"),
            GuestNet::Ipvlan { parent } => format!("ipvlan:{parent}"),
        }
    }
    /// Parses what follows `net=`.
    pub fn parse(v: &str) -> Result<GuestNet, String> {
        match v {
            "host" => return Ok(GuestNet::Host),
            "none" => return Ok(GuestNet::Loopback),
            _ => {}
        }
        let (kind, parent) = v
            .split_once(':')
            .ok_or_else(|| format!("bad net '{v}': write net=host, net=none, net=macvlan:IFACE or net=ipvlan:IFACE"))?;
        super::words::check_ifname(parent).map_err(|e| format!("net={v}: {e}"))?;
        let parent = parent.to_string();
        match kind {
            "macvlan" => Ok(GuestNet::Macvlan { parent }),
            "ipvlan" => Ok(GuestNet::Ipvlan { parent }),
            _ => Err(format!("bad net '{v}': the interface type is macvlan or ipvlan")),
        }
    }
}

/// A validated `guest::` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    pub name: String,
    /// The guest's root directory on the host (absolute, normalised).
    pub root: PathBuf,
    pub hostname: String,
    /// `init` followed by the `arg=` words; `init[0]` is an absolute path inside the guest.
    pub init: Vec<String>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU quota in percent of one CPU.
    pub cpu_percent: Option<u32>,
    /// Most tasks at once.
    pub pids: Option<u64>,
    pub net: GuestNet,
    /// The capability bounding set the guest keeps (bit n = capability n).
    pub caps: u64,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// Whether the guest's processes run under the seccomp filter (`seccomp=on`, the default).
    pub seccomp: bool,
}

const KEYS: &str = "memory, cpu, pids, net, caps, init, arg, hostname, stop_signal, stop_timeout, seccomp";

impl GuestSpec {
    /// A spec with every default, for `name` rooted at `root` (not validated).
    pub fn new(name: &str, root: &str) -> GuestSpec {
        GuestSpec {
            name: name.to_string(),
            root: PathBuf::from(root),
            hostname: name.to_string(),
            init: vec![DEFAULT_INIT.to_string()],
            memory: None,
            cpu_percent: None,
            pids: None,
            net: GuestNet::Host,
            caps: DEFAULT_CAPS,
            stop_signal: DEFAULT_STOP_SIGNAL,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            seccomp: true,
        }
    }

    /// Parses the `::`-separated words after `guest`: `NAME`, `ROOTDIR`, then options.
    pub fn parse(args: &[String]) -> Result<GuestSpec, String> {
        let (Some(name), Some(root)) = (args.first(), args.get(1)) else {
            return Err("takes NAME::ROOTDIR[::KEY=VALUE…]".to_string());
        };
        check_guest_name(name)?;
        let root = check_root(root)?;
        let mut spec = GuestSpec::new(name, "/");
        spec.root = root;
        let mut seen: Vec<&str> = Vec::new();
        let mut init: Option<String> = None;
        let mut extra: Vec<String> = Vec::new();
        for word in args.get(2..).unwrap_or(&[]) {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!("'{word}' is not KEY=VALUE (options: {KEYS})"));
            };
            if key != "arg" {
                if seen.contains(&key) {
                    return Err(format!("{key} is given twice"));
                }
                seen.push(key);
            }
            if value.is_empty() && key != "arg" {
                return Err(format!("{key}= needs a value"));
            }
            match key {
                "memory" => spec.memory = Some(parse_memory(value)?),
                "cpu" => spec.cpu_percent = Some(parse_cpu(value)?),
                "pids" => spec.pids = Some(parse_pids(value)?),
                "net" => spec.net = GuestNet::parse(value)?,
                "caps" => spec.caps = parse_caps(value)?,
                "init" => {
                    if !value.starts_with('/') {
                        return Err(format!("init '{value}' is not an absolute path (inside the guest)"));
                    }
                    if value.contains('\0') {
                        return Err("init contains a NUL byte".to_string());
                    }
                    init = Some(value.to_string());
                }
                "arg" => {
                    if value.contains('\0') {
                        return Err("arg contains a NUL byte".to_string());
                    }
                    extra.push(value.to_string());
                }
                "hostname" => {
                    check_hostname(value)?;
                    spec.hostname = value.to_string();
                }
                "stop_signal" => {
                    spec.stop_signal = parse_signal(value)
                        .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
                        .ok_or_else(|| format!("bad stop_signal '{value}' (e.g. SIGINT, SIGPWR, SIGRTMIN+4)"))?;
                }
                "stop_timeout" => {
                    let d = super::words::parse_duration(value).map_err(|e| format!("stop_timeout: {e}"))?;
                    if d > MAX_STOP_TIMEOUT {
                        return Err(format!("stop_timeout {value} is longer than an hour"));
                    }
                    spec.stop_timeout = d;
                }
                "seccomp" => {
                    spec.seccomp = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("seccomp={value}: on or off")),
                    }
                }
                _ => return Err(format!("unknown option '{key}' (options: {KEYS})")),
            }
        }
        if let Some(i) = init {
            spec.init = vec![i];
        }
        spec.init.extend(extra);
        Ok(spec)
    }

    /// The options back in config syntax (defaults left out), for messages and tests.
    pub fn options_text(&self) -> String {
        let mut o: Vec<String> = Vec::new();
        if let Some(m) = self.memory {
            o.push(format!("memory={m}"));
        }
        if let Some(c) = self.cpu_percent {
            o.push(format!("cpu={c}%"));
        }
        if let Some(p) = self.pids {
            o.push(format!("pids={p}"));
        }
        if self.net != GuestNet::Host {
            o.push(format!("net={}", self.net.text()));
        }
        if self.caps != DEFAULT_CAPS {
            o.push(format!("caps={}", caps_to_string(self.caps)));
        }
        if let Some((init, args)) = self.init.split_first() {
            if init != DEFAULT_INIT || !args.is_empty() {
                o.push(format!("init={init}"));
                o.extend(args.iter().map(|a| format!("arg={a}")));
            }
        }
        if self.hostname != self.name {
            o.push(format!("hostname={}", self.hostname));
        }
        if self.stop_signal != DEFAULT_STOP_SIGNAL {
            o.push(format!("stop_signal={}", signal_name(self.stop_signal)));
        }
        if self.stop_timeout != DEFAULT_STOP_TIMEOUT {
            o.push(format!("stop_timeout={}", crate::time::fmt_duration(self.stop_timeout)));
        }
        if !self.seccomp {
            o.push("seccomp=off".to_string());
        }
        o.join("::")
    }
}

/// `[A-Za-z0-9_.+-]`, 1..=64 characters, not `.` or `..`, not starting with `-` or `.`.
pub fn check_guest_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > NAME_MAX {
        return Err(format!("bad guest name '{s}' (1 to {NAME_MAX} characters)"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')) {
        return Err(format!("bad guest name '{s}' (letters, digits, '_', '.', '-', '+')"));
    }
    if s.starts_with('.') || s.starts_with('-') {
        return Err(format!("bad guest name '{s}' (must not start with '.' or '-')"));
    }
    Ok(())
}

fn check_hostname(s: &str) -> Result<(), String> {
    let ok_label =
        |l: &str| !l.is_empty() && !l.starts_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if s.len() > 64 || !s.split('.').all(ok_label) {
        return Err(format!("bad hostname '{s}' (letters, digits, '-' and dots, at most 64 characters)"));
    }
    Ok(())
}

/// Absolute, not `/` itself, no `.`/`..` components; trailing slashes dropped.
fn check_root(s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') {
        return Err(format!("root directory '{s}' is not an absolute path"));
    }
    let p = Path::new(s);
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => out.push(n),
            _ => return Err(format!("root directory '{s}' must not contain '.' or '..'")),
        }
    }
    if out == Path::new("/") {
        return Err("the root directory of a guest cannot be the host's /".to_string());
    }
    if s.contains('\0') {
        return Err("root directory contains a NUL byte".to_string());
    }
    Ok(out)
}

/// `256M`, `1G`, `65536`, `512k`: bytes (suffixes are powers of 1024).
pub fn parse_memory(v: &str) -> Result<u64, String> {
    let bad = || format!("bad memory size '{v}' (e.g. 256M, 2G)");
    let (num, mult) = match v.chars().last() {
        Some('k' | 'K') => (&v[..v.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&v[..v.len() - 1], 1 << 20),
        Some('g' | 'G') => (&v[..v.len() - 1], 1 << 30),
        Some('t' | 'T') => (&v[..v.len() - 1], 1 << 40),
        _ => (v, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(mult).ok_or_else(bad)?;
    if bytes < MIN_MEMORY {
        return Err(format!("memory={v} is too small for a guest (at least 1M)"));
    }
    Ok(bytes)
}

/// `50%` (half a CPU), `200%` (two CPUs).
pub fn parse_cpu(v: &str) -> Result<u32, String> {
    let bad = || format!("bad cpu quota '{v}' (percent of one CPU, 1% to {MAX_CPU_PERCENT}%, e.g. cpu=50%)");
    let num = v.strip_suffix('%').ok_or_else(bad)?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = num.parse().map_err(|_| bad())?;
    if !(1..=MAX_CPU_PERCENT).contains(&n) {
        return Err(bad());
    }
    Ok(n)
}

fn parse_pids(v: &str) -> Result<u64, String> {
    let bad = || format!("bad pids limit '{v}' (a number of tasks, at least 2)");
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = v.parse().map_err(|_| bad())?;
    if n < 2 {
        return Err(bad());
    }
    Ok(n)
}

/// `+A,-B` changes the default set; `A,B` is the whole set; `none` is the empty set.
pub fn parse_caps(v: &str) -> Result<u64, String> {
    if v == "none" {
        return Ok(0);
    }
    let items: Vec<&str> = v.split(',').collect();
    let relative = items.iter().any(|i| i.starts_with('+') || i.starts_with('-'));
    if relative && !items.iter().all(|i| i.starts_with('+') || i.starts_with('-')) {
        return Err(format!(
            "caps={v}: write either changes to the default set (+CAP,-CAP) or a whole set (CAP,CAP), not both"
        ));
    }
    let mut mask = if relative { DEFAULT_CAPS } else { 0 };
    for item in items {
        let (op, name) = match item.strip_prefix('+') {
            Some(n) => ('+', n),
            None => match item.strip_prefix('-') {
                Some(n) => ('-', n),
                None => ('+', item),
            },
        };
        let n = cap_from_name(name).ok_or_else(|| format!("caps: unknown capability '{name}'"))?;
        if op == '+' {
            mask |= 1u64 << n;
        } else {
            mask &= !(1u64 << n);
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split("::").map(str::to_string).collect()
    }
    fn ok(s: &str) -> GuestSpec {
        match GuestSpec::parse(&words(s)) {
            Ok(g) => g,
            Err(e) => panic!("{s}: {e}"),
        }
    }
    fn bad(s: &str) -> String {
        match GuestSpec::parse(&words(s)) {
            Ok(g) => panic!("{s} accepted: {g:?}"),
            Err(e) => e,
        }
    }
    fn cap(n: &str) -> u64 {
        1u64 << cap_from_name(n).unwrap()
    }

    #[test]
    fn defaults() {
        let g = ok("www::/srv/www");
        assert_eq!(g.name, "www");
        assert_eq!(g.root, PathBuf::from("/srv/www"));
        assert_eq!(g.hostname, "www");
        assert_eq!(g.init, ["/sbin/init"]);
        assert_eq!((g.memory, g.cpu_percent, g.pids), (None, None, None));
        assert_eq!(g.net, GuestNet::Host);
        assert_eq!(g.caps, DEFAULT_CAPS);
        assert_eq!(g.stop_signal, libc::SIGINT);
        assert_eq!(g.stop_timeout, Duration::from_secs(20));
        assert!(g.seccomp);
        assert_eq!(g.options_text(), "");
        // Trailing slashes and doubled slashes are normalised.
        assert_eq!(ok("www::/srv//www/").root, PathBuf::from("/srv/www"));
    }

    #[test]
    fn the_full_example() {
        let g = ok("www::/srv/www::memory=256M::cpu=50%::pids=512::net=host::caps=+NET_BIND_SERVICE,-CHOWN\
                    ::init=/sbin/init::stop_signal=SIGPWR::stop_timeout=20s");
        assert_eq!(g.memory, Some(256 << 20));
        assert_eq!(g.cpu_percent, Some(50));
        assert_eq!(g.pids, Some(512));
        assert_eq!(g.caps, DEFAULT_CAPS & !cap("CHOWN"));
        assert_eq!(g.stop_signal, libc::SIGPWR);
        assert_eq!(g.stop_timeout, Duration::from_secs(20));
        assert_eq!(
            g.options_text(),
            format!("memory=268435456::cpu=50%::pids=512::caps={}::stop_signal=SIGPWR", caps_to_string(g.caps))
        );
    }

    #[test]
    fn seccomp_switch() {
        assert!(ok("a::/g::seccomp=on").seccomp);
        let g = ok("a::/g::seccomp=off");
        assert!(!g.seccomp);
        assert_eq!(g.options_text(), "seccomp=off");
        assert!(bad("a::/g::seccomp=no").contains("on or off"));
        assert!(bad("a::/g::seccomp=off::seccomp=on").contains("twice"));
    }

    #[test]
    fn init_and_args() {
        let g = ok("a::/g::init=/bin/busybox::arg=init::arg=-v");
        assert_eq!(g.init, ["/bin/busybox", "init", "-v"]);
        // arg= may come first, and may be empty (an empty argument).
        assert_eq!(ok("a::/g::arg=x::init=/bin/sh").init, ["/bin/sh", "x"]);
        assert_eq!(ok("a::/g::arg=").init, ["/sbin/init", ""]);
        assert!(bad("a::/g::init=sbin/init").contains("absolute"));
        assert!(bad("a::/g::init=/a::init=/b").contains("twice"));
    }

    #[test]
    fn sizes_and_quotas() {
        assert_eq!(parse_memory("65536000").unwrap(), 65_536_000);
        assert_eq!(parse_memory("2048k").unwrap(), 2048 << 10);
        assert_eq!(parse_memory("2G").unwrap(), 2 << 30);
        assert_eq!(parse_memory("1T").unwrap(), 1 << 40);
        assert!(parse_memory("100").unwrap_err().contains("too small"));
        assert!(parse_memory("1.5G").is_err());
        assert!(parse_memory("M").is_err());
        assert!(parse_memory("99999999999999999999").is_err());
        assert!(parse_memory("99999999T").is_err());
        assert_eq!(parse_cpu("50%").unwrap(), 50);
        assert_eq!(parse_cpu("250%").unwrap(), 250);
        assert!(parse_cpu("50").is_err());
        assert!(parse_cpu("0%").is_err());
        assert!(parse_cpu("-5%").is_err());
        assert!(parse_cpu("102401%").is_err());
        assert!(bad("a::/g::pids=1").contains("at least 2"));
        assert!(bad("a::/g::pids=x").contains("pids"));
        assert!(bad("a::/g::memory=").contains("needs a value"));
    }

    #[test]
    fn networks() {
        assert_eq!(ok("a::/g::net=none").net, GuestNet::Loopback);
        assert_eq!(ok("a::/g::net=macvlan:eth0").net, GuestNet::Macvlan { parent: "eth0".into() });
        assert_eq!(ok("a::/g::net=ipvlan:bond0.12").net, GuestNet::Ipvlan { parent: "bond0.12".into() });
        assert!(ok("a::/g::net=ipvlan:bond0").net.private());
        assert!(!ok("a::/g").net.private());
        assert!(bad("a::/g::net=private").contains("net=macvlan:IFACE"));
        assert!(bad("a::/g::net=veth:eth0").contains("macvlan or ipvlan"));
        assert!(bad("a::/g::net=macvlan:").contains("interface"));
        assert!(bad("a::/g::net=macvlan:averyveryverylongname").contains("interface"));
        for n in ["host", "none", "macvlan:eth0", "ipvlan:eth1"] {
            assert_eq!(GuestNet::parse(n).unwrap().text(), n);
        }
    }

    #[test]
    fn capabilities() {
        assert_eq!(cap_from_name("net_admin"), Some(12));
        assert_eq!(cap_from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_from_name("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_from_name("FLY"), None);
        assert_eq!(ok("a::/g::caps=+SYS_NICE").caps, DEFAULT_CAPS | cap("SYS_NICE"));
        assert_eq!(ok("a::/g::caps=-SYS_BOOT,-cap_chown").caps, DEFAULT_CAPS & !cap("SYS_BOOT") & !cap("CHOWN"));
        assert_eq!(ok("a::/g::caps=CHOWN,SETUID").caps, cap("CHOWN") | cap("SETUID"));
        assert_eq!(ok("a::/g::caps=none").caps, 0);
        assert!(bad("a::/g::caps=CHOWN,-SETUID").contains("not both"));
        assert!(bad("a::/g::caps=+FLY").contains("unknown capability 'FLY'"));
        // The default drops everything that reaches beyond the guest.
        for n in [
            "SYS_ADMIN",
            "NET_ADMIN",
            "NET_RAW",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_TIME",
            "SYS_PTRACE",
            "MKNOD",
            "DAC_READ_SEARCH",
            "SYSLOG",
            "MAC_ADMIN",
            "IPC_LOCK",
            "SYS_NICE",
            "SYS_RESOURCE",
            "BPF",
            "PERFMON",
        ] {
            assert_eq!(DEFAULT_CAPS & cap(n), 0, "{n} is in the default set");
        }
        assert_eq!(
            caps_to_string(DEFAULT_CAPS),
            "CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,SETPCAP,NET_BIND_SERVICE,SYS_CHROOT,SYS_BOOT,\
             LEASE,AUDIT_WRITE,SETFCAP"
        );
        assert_eq!(caps_to_string(0), "none");
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("PWR"), Some(30));
        assert_eq!(parse_signal("SIGUSR2"), Some(12));
        assert_eq!(parse_signal("SIGRTMIN+4"), Some(38));
        assert_eq!(parse_signal("RTMIN+3"), Some(37));
        assert_eq!(parse_signal("RTMIN"), Some(34));
        assert_eq!(parse_signal("SIGRTMAX-1"), Some(63));
        assert_eq!(parse_signal("RTMAX+1"), None);
        assert_eq!(parse_signal("RTMIN-1"), None);
        assert_eq!(parse_signal("RTMIN4"), None);
        assert_eq!(parse_signal("2"), Some(2));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("SIGFOO"), None);
        assert_eq!(signal_name(38), "SIGRTMIN+4");
        assert_eq!(signal_name(2), "SIGINT");
        assert_eq!(signal_name(34), "SIGRTMIN");
        for n in (1..=31).chain(34..=64) {
            assert_eq!(parse_signal(&signal_name(n)), Some(n), "{n}");
        }
        assert!(bad("a::/g::stop_signal=KILL").contains("bad stop_signal"));
        assert!(bad("a::/g::stop_signal=SIGSTOP").contains("bad stop_signal"));
        assert_eq!(ok("a::/g::stop_signal=SIGRTMIN+4").stop_signal, 38);
    }

    #[test]
    fn times() {
        assert_eq!(ok("a::/g::stop_timeout=500ms").stop_timeout, Duration::from_millis(500));
        assert_eq!(ok("a::/g::stop_timeout=0").stop_timeout, Duration::ZERO);
        assert!(bad("a::/g::stop_timeout=2h").contains("stop_timeout"));
        assert!(bad("a::/g::stop_timeout=3601s").contains("longer than an hour"));
    }

    #[test]
    fn names_and_roots() {
        assert!(bad("").contains("NAME::ROOTDIR"));
        assert!(bad("www").contains("NAME::ROOTDIR"));
        assert!(bad("w w::/g").contains("bad guest name"));
        assert!(bad("..::/g").contains("must not start"));
        assert!(bad("-x::/g").contains("must not start"));
        assert!(bad(&format!("{}::/g", "n".repeat(65))).contains("1 to 64"));
        ok(&format!("{}::/g", "n".repeat(64)));
        assert!(bad("a::srv").contains("absolute"));
        assert!(bad("a::/").contains("host's /"));
        assert!(bad("a::///").contains("host's /"));
        assert!(bad("a::/srv/../etc").contains("'..'"));
        assert_eq!(ok("a::/srv/./x").root, PathBuf::from("/srv/x"));
        assert!(bad("a::/g::hostname=-bad").contains("bad hostname"));
        assert!(bad("a::/g::hostname=a_b").contains("bad hostname"));
        assert_eq!(ok("a::/g::hostname=web-1.example.org").hostname, "web-1.example.org");
    }

    #[test]
    fn option_errors_are_clear() {
        assert!(bad("a::/g::single").contains("not KEY=VALUE"));
        assert!(bad("a::/g::color=red").contains("unknown option 'color'"));
        assert!(bad("a::/g::memory=1G::memory=2G").contains("memory is given twice"));
    }
}
