//! What a running guest leaves in its runtime directory, so that start, stop, status,
//! list and enter work from any process (the daemon's forked children, the CLI), without
//! the daemon's memory: `RUN_DIR/NAME/state`, a `key=value` text file written atomically
//! by the guest's monitor once the guest's init runs, and removed when the guest is gone.
//!
//! A pid alone is not an identity: pids are reused. Every pid is stored with the
//! process's start time (field 22 of `/proc/PID/stat`, clock ticks since boot), and a
//! process counts as the guest's only while both match.

use std::fs;
use std::path::Path;

use nix::errno::Errno;

use super::cgroup::CgDir;

/// A process identity: pid plus start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

/// The start time and state letter from the text of `/proc/PID/stat`.
pub fn parse_stat(text: &str) -> Option<(char, u64)> {
    // The command name (field 2) is in parentheses and may itself contain ')' or blanks.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    // After the state (field 3), field 22 is the 19th.
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl ProcId {
    /// The identity of a live process (`ESRCH` if there is none).
    pub fn of(pid: i32) -> Result<ProcId, Errno> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|_| Errno::ESRCH)?;
        let (_, start) = parse_stat(&text).ok_or(Errno::EINVAL)?;
        Ok(ProcId { pid, start })
    }

    /// Whether this very process still exists and has not exited (a zombie has).
    pub fn alive(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(t) => matches!(parse_stat(&t), Some((s, start)) if start == self.start && s != 'Z' && s != 'X'),
            Err(_) => false,
        }
    }
}

/// The contents of a running guest's state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub name: String,
    pub root: String,
    pub init: ProcId,
    pub monitor: ProcId,
    /// The capability bounding set of the guest (for `enter`).
    pub caps: u64,
    pub stop_signal: i32,
    /// `stop_timeout`, milliseconds.
    pub stop_timeout_ms: u64,
    /// Whether the guest runs under the seccomp filter (`enter` does the same).
    pub seccomp: bool,
    /// `net=` as configured.
    pub net: String,
    pub cgroups: Vec<CgDir>,
    /// Unix time of the start, seconds.
    pub started: u64,
}

impl State {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "name={}\nroot={}\ninit_pid={}\ninit_start={}\nmonitor_pid={}\nmonitor_start={}\ncaps={:#x}\n\
             stop_signal={}\nstop_timeout_ms={}\nseccomp={}\nnet={}\nstarted={}\n",
            self.name,
            self.root,
            self.init.pid,
            self.init.start,
            self.monitor.pid,
            self.monitor.start,
            self.caps,
            self.stop_signal,
            self.stop_timeout_ms,
            if self.seccomp { "on" } else { "off" },
            self.net,
            self.started
        );
        for c in &self.cgroups {
            s.push_str("cgroup=");
            s.push_str(&c.to_line());
            s.push('\n');
        }
        s
    }

    /// Parses a state file; unknown keys are ignored (a newer tandem may add some).
    pub fn parse(text: &str) -> Result<State, String> {
        let mut name = None;
        let mut root = None;
        let (mut ipid, mut istart, mut mpid, mut mstart) = (None, None, None, None);
        let mut caps = None;
        let mut sig = None;
        let mut stop_ms = None;
        let mut seccomp = None;
        let mut net = None;
        let mut started = None;
        let mut cgroups = Vec::new();
        for line in text.split('\n') {
            let Some((k, v)) = line.split_once('=') else {
                if line.is_empty() {
                    continue;
                }
                return Err(format!("bad line '{line}'"));
            };
            let num = |v: &str| v.parse::<u64>().map_err(|_| format!("bad {k} '{v}'"));
            let pid = |v: &str| v.parse::<i32>().ok().filter(|p| *p > 0).ok_or_else(|| format!("bad {k} '{v}'"));
            match k {
                "name" => name = Some(v.to_string()),
                "root" => root = Some(v.to_string()),
                "init_pid" => ipid = Some(pid(v)?),
                "init_start" => istart = Some(num(v)?),
                "monitor_pid" => mpid = Some(pid(v)?),
                "monitor_start" => mstart = Some(num(v)?),
                "caps" => {
                    let h = v.strip_prefix("0x").ok_or_else(|| format!("bad caps '{v}'"))?;
                    caps = Some(u64::from_str_radix(h, 16).map_err(|_| format!("bad caps '{v}'"))?);
                }
                "stop_signal" => {
                    sig = Some(v.parse::<i32>().ok().filter(|s| (1..=64).contains(s)).ok_or("bad stop_signal")?)
                }
                "stop_timeout_ms" => stop_ms = Some(num(v)?),
                "seccomp" => {
                    seccomp = Some(match v {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("bad seccomp '{v}'")),
                    })
                }
                "net" => net = Some(v.to_string()),
                "started" => started = Some(num(v)?),
                "cgroup" => cgroups.push(CgDir::from_line(v).ok_or_else(|| format!("bad cgroup '{v}'"))?),
                _ => {}
            }
        }
        let missing = |k: &str| format!("{k} is missing");
        Ok(State {
            name: name.ok_or_else(|| missing("name"))?,
            root: root.ok_or_else(|| missing("root"))?,
            init: ProcId {
                pid: ipid.ok_or_else(|| missing("init_pid"))?,
                start: istart.ok_or_else(|| missing("init_start"))?,
            },
            monitor: ProcId {
                pid: mpid.ok_or_else(|| missing("monitor_pid"))?,
                start: mstart.ok_or_else(|| missing("monitor_start"))?,
            },
            caps: caps.ok_or_else(|| missing("caps"))?,
            stop_signal: sig.ok_or_else(|| missing("stop_signal"))?,
            stop_timeout_ms: stop_ms.unwrap_or(20_000),
            // A state file from before the option: every guest had the filter.
            seccomp: seccomp.unwrap_or(true),
            net: net.ok_or_else(|| missing("net"))?,
            cgroups,
            started: started.unwrap_or(0),
        })
    }

    /// Reads `dir/state`: `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<State>, String> {
        match fs::read_to_string(dir.join("state")) {
            Ok(t) => State::parse(&t).map(Some).map_err(|e| format!("{}: {e}", dir.join("state").display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", dir.join("state").display())),
        }
    }

    /// Writes `dir/state` atomically (a temporary file renamed over it), mode 0600.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = dir.join("state.tmp");
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(self.to_text().as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join("state"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::path::PathBuf;

    #[test]
    fn stat_fields() {
        // A command name with blanks and a ')' of its own.
        let t = "4242 (we ir) d) S 1 4242 4242 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 123456 2170880 170 \
                 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(t), Some(('S', 123_456)));
        assert_eq!(parse_stat("1 (x) Z"), None);
        assert_eq!(parse_stat("garbage"), None);
        let me = ProcId::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(!ProcId { start: me.start + 1, ..me }.alive());
        assert_eq!(ProcId::of(-5), Err(Errno::ESRCH));
    }

    fn sample() -> State {
        State {
            name: "www".into(),
            root: "/srv/www".into(),
            init: ProcId { pid: 1234, start: 99 },
            monitor: ProcId { pid: 1200, start: 98 },
            caps: 0xb043_05fb,
            stop_signal: 2,
            stop_timeout_ms: 1500,
            seccomp: true,
            net: "macvlan:eth0".into(),
            cgroups: vec![
                CgDir { path: PathBuf::from("/sys/fs/cgroup/unified/tandem/www"), v1: None },
                CgDir { path: PathBuf::from("/sys/fs/cgroup/memory/tandem/www"), v1: Some(vec!["memory".into()]) },
            ],
            started: 1_700_000_000,
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let t = s.to_text();
        assert!(t.contains("caps=0xb04305fb\n"), "{t}");
        assert!(t.contains("cgroup=1 memory /sys/fs/cgroup/memory/tandem/www\n"), "{t}");
        assert_eq!(State::parse(&t).unwrap(), s);
        // Unknown keys from a newer version are fine; missing ones are not.
        assert_eq!(State::parse(&format!("{t}future=1\n")).unwrap(), s);
        assert!(State::parse(&t.replace("init_start=99\n", "")).unwrap_err().contains("init_start is missing"));
        assert!(State::parse(&t.replace("caps=0x", "caps=")).is_err());
        assert!(State::parse(&t.replace("init_pid=1234", "init_pid=-1")).is_err());
        assert!(State::parse("nonsense").is_err());
        // seccomp: written out; a file from before the option means "on".
        assert!(t.contains("seccomp=on\n"), "{t}");
        assert_eq!(State::parse(&t.replace("seccomp=on\n", "")).unwrap(), s);
        let off = State { seccomp: false, ..s.clone() };
        assert_eq!(State::parse(&off.to_text()).unwrap(), off);
        assert!(State::parse(&t.replace("seccomp=on", "seccomp=1")).is_err());
    }

    #[test]
    fn save_and_load() {
        let t = TempDir::new("guest-state");
        let d = t.path();
        assert_eq!(State::load(d).unwrap(), None);
        sample().save(d).unwrap();
        assert_eq!(State::load(d).unwrap(), Some(sample()));
    }
}
