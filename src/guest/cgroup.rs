//! Cgroups for guests: limits (memory, CPU, tasks), accounting, and the handle that kills
//! everything a guest left behind.
//!
//! A guest gets one directory `PARENT/NAME` in every hierarchy that matters:
//! - the cgroup v2 hierarchy when one is mounted (its init is cloned straight into it,
//!   `cgroup.kill` ends it), with the memory, cpu and pids controllers enabled where v2
//!   has them;
//! - each cgroup v1 hierarchy holding one of memory, cpu, cpuacct, pids (hosts whose
//!   controllers are bound to v1, alone or next to an empty v2 hierarchy).
//!
//! A limit is written where its controller lives: v2 `memory.max`, `cpu.max`, `pids.max`,
//! or v1 `memory.limit_in_bytes`, `cpu.cfs_period_us` + `cpu.cfs_quota_us`, `pids.max`.
//! A limit whose controller is nowhere is an error at start, never silently dropped.
//!
//! [`plan`] is pure (paths and file contents from a [`Layout`]); the rest does the I/O.

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::GuestError;
use crate::config::guest::CPU_PERIOD_US;

/// Controllers a guest is placed under (v1) or that are enabled for it (v2).
pub const CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];

/// One line of `/proc/self/mountinfo`, the fields we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_point: PathBuf,
    /// The mount's root within its filesystem (`/` unless a subtree is mounted).
    pub root: String,
    pub fstype: String,
    pub super_opts: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a blank, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        if c == b'\\' {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = oct.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo` (lines that do not parse are skipped).
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut lw = left.split(' ');
            let _id = lw.next()?;
            let _parent = lw.next()?;
            let _dev = lw.next()?;
            let root = unescape(lw.next()?);
            let mount_point = PathBuf::from(unescape(lw.next()?));
            let mut rw = right.split(' ');
            let fstype = rw.next()?.to_string();
            let _source = rw.next()?;
            let super_opts = rw.next().unwrap_or("").to_string();
            Some(MountInfo { mount_point, root, fstype, super_opts })
        })
        .collect()
}

/// Where the cgroup hierarchies are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The cgroup v2 mount point, if any.
    pub v2: Option<PathBuf>,
    /// Controllers the v2 hierarchy offers (its root's `cgroup.controllers`).
    pub v2_controllers: Vec<String>,
    /// v1 hierarchies holding one of [`CONTROLLERS`]: (controllers, mount point).
    pub v1: Vec<(Vec<String>, PathBuf)>,
}

impl Layout {
    /// Builds the layout from mountinfo entries and the v2 root's `cgroup.controllers`.
    pub fn from_mounts(mounts: &[MountInfo], v2_controllers: &str) -> Layout {
        let mut l = Layout::default();
        for m in mounts {
            match m.fstype.as_str() {
                "cgroup2" if l.v2.is_none() => {
                    l.v2 = Some(m.mount_point.clone());
                    l.v2_controllers = v2_controllers.split_whitespace().map(str::to_string).collect();
                }
                "cgroup" => {
                    let ctl: Vec<String> =
                        m.super_opts.split(',').filter(|o| CONTROLLERS.contains(o)).map(str::to_string).collect();
                    if !ctl.is_empty() && !l.v1.iter().any(|(c, _)| c.iter().any(|x| ctl.contains(x))) {
                        l.v1.push((ctl, m.mount_point.clone()));
                    }
                }
                _ => {}
            }
        }
        l
    }

    /// Nothing at all is mounted (then tandem mounts cgroup2 itself).
    pub fn is_empty(&self) -> bool {
        self.v2.is_none() && self.v1.is_empty()
    }

    fn v1_for(&self, controller: &str) -> Option<&PathBuf> {
        self.v1.iter().find(|(c, _)| c.iter().any(|x| x == controller)).map(|(_, p)| p)
    }
    fn v2_has(&self, controller: &str) -> bool {
        self.v2.is_some() && self.v2_controllers.iter().any(|c| c == controller)
    }
}

/// The limits of one guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpu_percent: Option<u32>,
    pub pids: Option<u64>,
}

/// One directory of a guest's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgDir {
    pub path: PathBuf,
    /// `None` for cgroup v2, else the v1 hierarchy's controllers.
    pub v1: Option<Vec<String>>,
}

impl CgDir {
    pub fn is_v2(&self) -> bool {
        self.v1.is_none()
    }
    /// `cgroup.procs`.
    pub fn procs(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }
    /// The form kept in the state file: `2 PATH` or `1 CTL,CTL PATH`.
    pub fn to_line(&self) -> String {
        match &self.v1 {
            None => format!("2 {}", self.path.display()),
            Some(c) => format!("1 {} {}", c.join(","), self.path.display()),
        }
    }
    pub fn from_line(s: &str) -> Option<CgDir> {
        if let Some(p) = s.strip_prefix("2 ") {
            return (p.starts_with('/')).then(|| CgDir { path: PathBuf::from(p), v1: None });
        }
        let rest = s.strip_prefix("1 ")?;
        let (ctl, p) = rest.split_once(' ')?;
        if !p.starts_with('/') || ctl.is_empty() {
            return None;
        }
        Some(CgDir { path: PathBuf::from(p), v1: Some(ctl.split(',').map(str::to_string).collect()) })
    }
}

/// What to create and write for a guest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub dirs: Vec<CgDir>,
    /// `cgroup.subtree_control` files and what to write to each (`+memory`), parents first.
    pub enable: Vec<(PathBuf, String)>,
    /// Limit files and their contents, in order.
    pub writes: Vec<(PathBuf, String)>,
}

impl Plan {
    /// The v2 directory, if the guest has one.
    pub fn v2(&self) -> Option<&CgDir> {
        self.dirs.iter().find(|d| d.is_v2())
    }
}

/// Computes a guest's cgroup directories and files. `parent` is relative to each
/// hierarchy's root (e.g. `tandem`).
pub fn plan(layout: &Layout, parent: &str, name: &str, limits: &Limits) -> Result<Plan, String> {
    if layout.is_empty() {
        return Err("no cgroup hierarchy is mounted".to_string());
    }
    let rel = Path::new(parent.trim_matches('/')).join(name);
    let mut p = Plan::default();
    if let Some(root) = &layout.v2 {
        p.dirs.push(CgDir { path: root.join(&rel), v1: None });
        // Enable what v2 offers of our controllers (for limits and for accounting), on
        // every level from the root down to the parent.
        let wanted: Vec<&str> =
            ["memory", "cpu", "pids"].into_iter().filter(|c| layout.v2_controllers.iter().any(|x| x == c)).collect();
        if !wanted.is_empty() {
            let words: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
            let mut level = root.clone();
            p.enable.push((level.join("cgroup.subtree_control"), words.join(" ")));
            for comp in Path::new(parent.trim_matches('/')).components() {
                level.push(comp);
                p.enable.push((level.join("cgroup.subtree_control"), words.join(" ")));
            }
        }
    }
    for (ctl, mnt) in &layout.v1 {
        p.dirs.push(CgDir { path: mnt.join(&rel), v1: Some(ctl.clone()) });
    }
    let missing = |what: &str, ctl: &str| {
        format!("{what}: this host has no {ctl} controller (neither in cgroup v2 nor in a v1 hierarchy)")
    };
    if let Some(bytes) = limits.memory {
        if layout.v2_has("memory") {
            p.writes.push((v2_path(layout, &rel, "memory.max"), bytes.to_string()));
        } else if let Some(m) = layout.v1_for("memory") {
            p.writes.push((m.join(&rel).join("memory.limit_in_bytes"), bytes.to_string()));
        } else {
            return Err(missing("memory limit", "memory"));
        }
    }
    if let Some(pct) = limits.cpu_percent {
        let quota = u64::from(pct) * CPU_PERIOD_US / 100;
        if layout.v2_has("cpu") {
            p.writes.push((v2_path(layout, &rel, "cpu.max"), format!("{quota} {CPU_PERIOD_US}")));
        } else if let Some(m) = layout.v1_for("cpu") {
            let d = m.join(&rel);
            p.writes.push((d.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string()));
            p.writes.push((d.join("cpu.cfs_quota_us"), quota.to_string()));
        } else {
            return Err(missing("cpu quota", "cpu"));
        }
    }
    if let Some(n) = limits.pids {
        if layout.v2_has("pids") {
            p.writes.push((v2_path(layout, &rel, "pids.max"), n.to_string()));
        } else if let Some(m) = layout.v1_for("pids") {
            p.writes.push((m.join(&rel).join("pids.max"), n.to_string()));
        } else {
            return Err(missing("pids limit", "pids"));
        }
    }
    Ok(p)
}

fn v2_path(layout: &Layout, rel: &Path, file: &str) -> PathBuf {
    layout.v2.as_ref().map(|r| r.join(rel).join(file)).unwrap_or_default()
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn sys(op: String, e: &std::io::Error) -> GuestError {
    GuestError::Sys { op, errno: io_errno(e) }
}

/// Reads the host's layout; when no cgroup filesystem is mounted at all, mounts cgroup2
/// on `/sys/fs/cgroup` first.
pub fn discover() -> Result<Layout, GuestError> {
    let read = || -> Result<Layout, GuestError> {
        let text =
            fs::read_to_string("/proc/self/mountinfo").map_err(|e| sys("read /proc/self/mountinfo".to_string(), &e))?;
        let mounts = parse_mountinfo(&text);
        let v2root = mounts.iter().find(|m| m.fstype == "cgroup2").map(|m| m.mount_point.clone());
        let ctl = match v2root {
            Some(r) => fs::read_to_string(r.join("cgroup.controllers")).unwrap_or_default(),
            None => String::new(),
        };
        Ok(Layout::from_mounts(&mounts, &ctl))
    };
    let l = read()?;
    if !l.is_empty() {
        return Ok(l);
    }
    let target = Path::new("/sys/fs/cgroup");
    nix::mount::mount(
        Some("cgroup2"),
        target,
        Some("cgroup2"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|errno| GuestError::Sys { op: "mount cgroup2 on /sys/fs/cgroup".to_string(), errno })?;
    log::info!("mounted cgroup2 on /sys/fs/cgroup (no cgroup hierarchy was mounted)");
    read()
}

/// Appends `+ctl` words to a `cgroup.subtree_control` unless all are enabled already.
fn enable(file: &Path, words: &str) -> Result<(), GuestError> {
    let have = fs::read_to_string(file).unwrap_or_default();
    let missing: Vec<&str> =
        words.split_whitespace().filter(|w| !have.split_whitespace().any(|h| Some(h) == w.strip_prefix('+'))).collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::write(file, missing.join(" "))
        .map_err(|e| sys(format!("write '{}' to {}", missing.join(" "), file.display()), &e))
}

/// Creates the directories, enables controllers and writes the limits. On error, what was
/// created is removed again.
pub fn create(plan: &Plan) -> Result<(), GuestError> {
    let r = (|| {
        for d in &plan.dirs {
            if let Some(parent) = d.path.parent() {
                fs::create_dir_all(parent).map_err(|e| sys(format!("create {}", parent.display()), &e))?;
            }
        }
        for (file, words) in &plan.enable {
            enable(file, words)?;
        }
        for d in &plan.dirs {
            match fs::create_dir(&d.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !is_empty(d)? {
                        return Err(GuestError::Other(format!(
                            "cgroup {} already holds processes (another guest of that name?)",
                            d.path.display()
                        )));
                    }
                }
                Err(e) => return Err(sys(format!("create cgroup {}", d.path.display()), &e)),
            }
        }
        for (file, value) in &plan.writes {
            fs::write(file, value).map_err(|e| sys(format!("write {value} to {}", file.display()), &e))?;
        }
        Ok(())
    })();
    if r.is_err() {
        let _ = remove(&plan.dirs, std::time::Duration::from_millis(200));
    }
    r
}

/// The pids in `cgroup.procs` (empty when the directory is gone).
pub fn procs(d: &CgDir) -> Result<Vec<i32>, GuestError> {
    match fs::read_to_string(d.procs()) {
        Ok(t) => Ok(t.split_whitespace().filter_map(|w| w.parse().ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(sys(format!("read {}", d.procs().display()), &e)),
    }
}

/// No process in this directory (or it is gone).
pub fn is_empty(d: &CgDir) -> Result<bool, GuestError> {
    Ok(procs(d)?.is_empty())
}

/// Writes `pid` into every directory's `cgroup.procs` (0 = the caller).
pub fn join(dirs: &[CgDir], pid: i32, skip_v2: bool) -> Result<(), GuestError> {
    for d in dirs.iter().filter(|d| !(skip_v2 && d.is_v2())) {
        fs::write(d.procs(), pid.to_string()).map_err(|e| sys(format!("move {pid} into {}", d.path.display()), &e))?;
    }
    Ok(())
}

/// Kills every process in the guest's cgroups: `cgroup.kill` where v2 has it, and
/// SIGKILL to each pid listed in any directory, repeated until all are empty or
/// `within` has passed. Returns whether they are empty.
pub fn kill_all(dirs: &[CgDir], within: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + within;
    for d in dirs.iter().filter(|d| d.is_v2()) {
        let _ = fs::write(d.path.join("cgroup.kill"), "1");
    }
    loop {
        let mut any = false;
        for d in dirs {
            for pid in procs(d).unwrap_or_default() {
                any = true;
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        if !any {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Removes the directories (rmdir; EBUSY is retried while dying tasks go away, up to
/// `within`). Missing directories are fine.
pub fn remove(dirs: &[CgDir], within: std::time::Duration) -> Result<(), GuestError> {
    let end = std::time::Instant::now() + within;
    for d in dirs {
        loop {
            match fs::remove_dir(&d.path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => {
                    if std::time::Instant::now() >= end {
                        return Err(sys(format!("remove cgroup {}", d.path.display()), &e));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
    Ok(())
}

/// Memory in use (v2 `memory.current` or v1 `memory.usage_in_bytes`).
pub fn memory_bytes(dirs: &[CgDir]) -> Option<u64> {
    for d in dirs {
        let f = if d.is_v2() { "memory.current" } else { "memory.usage_in_bytes" };
        if let Ok(t) = fs::read_to_string(d.path.join(f)) {
            if let Ok(n) = t.trim().parse() {
                return Some(n);
            }
        }
    }
    None
}

/// Tasks (v2 or v1 `pids.current`, else the number of processes listed).
pub fn pids(dirs: &[CgDir]) -> Option<u64> {
    for d in dirs {
        if let Ok(t) = fs::read_to_string(d.path.join("pids.current")) {
            if let Ok(n) = t.trim().parse() {
                return Some(n);
            }
        }
    }
    dirs.first().and_then(|d| procs(d).ok()).map(|p| p.len() as u64)
}

/// CPU time used in nanoseconds (v1 `cpuacct.usage`, or v2 `cpu.stat` usage_usec).
pub fn cpu_nanos(dirs: &[CgDir]) -> Option<u64> {
    for d in dirs {
        if let Ok(t) = fs::read_to_string(d.path.join("cpuacct.usage")) {
            if let Ok(n) = t.trim().parse() {
                return Some(n);
            }
        }
        if d.is_v2() {
            if let Ok(t) = fs::read_to_string(d.path.join("cpu.stat")) {
                let us =
                    t.lines().find_map(|l| l.strip_prefix("usage_usec ")).and_then(|v| v.trim().parse::<u64>().ok());
                if let Some(us) = us {
                    return Some(us.saturating_mul(1000));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's kind: v1 controllers and an empty unified v2 hierarchy.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    /// A modern host: everything in v2.
    const UNIFIED: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    /// An older v1 host with cpu and cpuacct co-mounted.
    const V1_COMOUNT: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_parses_and_unescapes() {
        let m = parse_mountinfo(
            "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue\nbad line\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt two"));
        assert_eq!(m[0].root, "/mnt1");
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[0].super_opts, "rw,errors=continue");
        assert_eq!(unescape("a\\134b\\011c\\9"), "a\\b\tc\\9");
    }

    #[test]
    fn hybrid_host_limits_go_to_v1() {
        let l = Layout::from_mounts(&parse_mountinfo(HYBRID), "");
        assert_eq!(l.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(l.v1.len(), 4, "{l:?}");
        let lim = Limits { memory: Some(256 << 20), cpu_percent: Some(50), pids: Some(512) };
        let p = plan(&l, "tandem", "www", &lim).unwrap();
        let dirs: Vec<String> = p.dirs.iter().map(CgDir::to_line).collect();
        assert_eq!(
            dirs,
            [
                "2 /sys/fs/cgroup/unified/tandem/www",
                "1 cpu /sys/fs/cgroup/cpu/tandem/www",
                "1 cpuacct /sys/fs/cgroup/cpuacct/tandem/www",
                "1 memory /sys/fs/cgroup/memory/tandem/www",
                "1 pids /sys/fs/cgroup/pids/tandem/www",
            ]
        );
        assert!(p.enable.is_empty(), "the empty v2 hierarchy has no controllers to enable");
        let w: Vec<(String, &str)> = p.writes.iter().map(|(f, v)| (f.display().to_string(), v.as_str())).collect();
        assert_eq!(
            w,
            [
                ("/sys/fs/cgroup/memory/tandem/www/memory.limit_in_bytes".to_string(), "268435456"),
                ("/sys/fs/cgroup/cpu/tandem/www/cpu.cfs_period_us".to_string(), "100000"),
                ("/sys/fs/cgroup/cpu/tandem/www/cpu.cfs_quota_us".to_string(), "50000"),
                ("/sys/fs/cgroup/pids/tandem/www/pids.max".to_string(), "512"),
            ]
        );
        assert_eq!(p.v2().unwrap().path, PathBuf::from("/sys/fs/cgroup/unified/tandem/www"));
    }

    #[test]
    fn unified_host_limits_go_to_v2() {
        let l = Layout::from_mounts(&parse_mountinfo(UNIFIED), "cpuset cpu io memory hugetlb pids rdma misc\n");
        let lim = Limits { memory: Some(1 << 30), cpu_percent: Some(150), pids: Some(64) };
        let p = plan(&l, "/ha/tandem/", "db", &lim).unwrap();
        assert_eq!(p.dirs, [CgDir { path: PathBuf::from("/sys/fs/cgroup/ha/tandem/db"), v1: None }]);
        let e: Vec<(String, &str)> = p.enable.iter().map(|(f, v)| (f.display().to_string(), v.as_str())).collect();
        assert_eq!(
            e,
            [
                ("/sys/fs/cgroup/cgroup.subtree_control".to_string(), "+memory +cpu +pids"),
                ("/sys/fs/cgroup/ha/cgroup.subtree_control".to_string(), "+memory +cpu +pids"),
                ("/sys/fs/cgroup/ha/tandem/cgroup.subtree_control".to_string(), "+memory +cpu +pids"),
            ]
        );
        let w: Vec<(String, &str)> = p.writes.iter().map(|(f, v)| (f.display().to_string(), v.as_str())).collect();
        assert_eq!(
            w,
            [
                ("/sys/fs/cgroup/ha/tandem/db/memory.max".to_string(), "1073741824"),
                ("/sys/fs/cgroup/ha/tandem/db/cpu.max".to_string(), "150000 100000"),
                ("/sys/fs/cgroup/ha/tandem/db/pids.max".to_string(), "64"),
            ]
        );
    }

    #[test]
    fn comounted_v1_and_missing_controllers() {
        let l = Layout::from_mounts(&parse_mountinfo(V1_COMOUNT), "");
        assert_eq!(l.v2, None);
        assert_eq!(l.v1[0].0, ["cpu", "cpuacct"]);
        let p = plan(&l, "tandem", "g", &Limits { cpu_percent: Some(5), ..Limits::default() }).unwrap();
        assert_eq!(p.dirs[0].to_line(), "1 cpu,cpuacct /sys/fs/cgroup/cpu,cpuacct/tandem/g");
        assert_eq!(p.writes[1].1, "5000");
        let e = plan(&l, "tandem", "g", &Limits { pids: Some(5), ..Limits::default() }).unwrap_err();
        assert!(e.contains("no pids controller"), "{e}");
        // No limits at all: the guest is still placed (accounting and clean-up).
        assert_eq!(plan(&l, "tandem", "g", &Limits::default()).unwrap().dirs.len(), 2);
        assert!(plan(&Layout::default(), "tandem", "g", &Limits::default()).is_err());
        assert!(Layout::default().is_empty());
    }

    #[test]
    fn dir_lines_round_trip() {
        for s in ["2 /sys/fs/cgroup/tandem/a", "1 cpu,cpuacct /sys/fs/cgroup/cpu,cpuacct/tandem/a"] {
            assert_eq!(CgDir::from_line(s).unwrap().to_line(), s);
        }
        for s in ["", "2 rel", "1 /x", "1  /x", "3 /x", "1 memory rel"] {
            assert_eq!(CgDir::from_line(s), None, "{s:?}");
        }
    }
}
