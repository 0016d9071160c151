//! The `mount::DEVICE::DIR[::FSTYPE[::OPTIONS]]` agent (heartbeat's `Filesystem`).
//!
//! - **start**: mount(2), no `mount` binary. `OPTIONS` (comma-separated) are split into
//!   `MS_*` flags (`ro`, `noatime`, `nodev`, …) and the filesystem's own data string.
//!   Without `FSTYPE` (or with `auto` / an empty field) the non-`nodev` types of
//!   `/proc/filesystems` are tried in order. Refuses when `DIR` or `DEVICE` is missing,
//!   the type is unknown, or the device is mounted somewhere else; succeeds at once when
//!   it is already mounted on `DIR`.
//! - **status**: running iff `/proc/self/mountinfo` has an entry on `DIR` whose
//!   `major:minor` is the device's `st_rdev` (or, for filesystems with anonymous device
//!   numbers such as btrfs, whose source resolves to the same device node).
//! - **stop**: finds the processes that hold the filesystem (`/proc/PID/{cwd,root,exe}`,
//!   every fd, and the file mappings in `maps`, compared by `st_dev`), sends them SIGTERM,
//!   waits, SIGKILLs the survivors, then umount2(2) with retries. Never a lazy unmount: a
//!   filesystem that stays busy is a failed stop.
//!
//! `DEVICE` may be a path or `UUID=…` / `LABEL=…` (looked up in `/dev/disk/by-*`).
//! Every op may block (journal replay, dying processes), so [`Agent::exec`] is
//! [`Exec::Fork`]; [`Agent::run`] is safe to call in a forked child.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{major, minor};
use nix::unistd::Pid;

use super::{Agent, AgentError, Exec, Op, Outcome};
use crate::config::MountSpec;
use crate::time::{self, Duration};

/// How long holders get after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// How long SIGKILLed holders get to go away.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// umount2 attempts (each after a fresh holder sweep).
const UMOUNT_TRIES: u32 = 5;
const UMOUNT_RETRY_DELAY: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(50);

/// The `mount::` agent.
#[derive(Debug, Clone)]
pub struct MountAgent {
    text: String,
    device: String,
    dir: PathBuf,
    fstype: Option<String>,
    flags: MsFlags,
    data: String,
    term_grace: Duration,
    kill_grace: Duration,
}

impl MountAgent {
    /// DEVICE may not exist yet (a DRBD or LVM device appears when an earlier resource of
    /// the group starts): it is looked at only when the mount is started or checked.
    pub fn new(spec: &MountSpec, text: &str) -> MountAgent {
        let (flags, data) = parse_options(&spec.options);
        MountAgent {
            text: text.to_string(),
            device: spec.device.clone(),
            dir: spec.dir.clone(),
            fstype: spec.fstype.clone(),
            flags,
            data,
            term_grace: TERM_GRACE,
            kill_grace: KILL_GRACE,
        }
    }

    /// Shortens the TERM/KILL waits (tests).
    pub fn with_grace(mut self, term: Duration, kill: Duration) -> MountAgent {
        self.term_grace = term;
        self.kill_grace = kill;
        self
    }

    /// The MS_* flags and data string the options were parsed into.
    pub fn options(&self) -> (MsFlags, &str) {
        (self.flags, &self.data)
    }

    fn device_path(&self) -> PathBuf {
        if let Some(u) = self.device.strip_prefix("UUID=") {
            PathBuf::from("/dev/disk/by-uuid").join(u)
        } else if let Some(l) = self.device.strip_prefix("LABEL=") {
            PathBuf::from("/dev/disk/by-label").join(l)
        } else {
            PathBuf::from(&self.device)
        }
    }

    /// The device's `st_rdev` and canonical path; errors when missing or not a block device.
    fn device_rdev(&self) -> Result<(u64, PathBuf), AgentError> {
        let path = self.device_path();
        let md = fs::metadata(&path).map_err(|e| sys(format!("device {}", path.display()), &e))?;
        if !md.file_type().is_block_device() {
            return Err(AgentError::Failed(format!("{} is not a block device", path.display())));
        }
        let canon = fs::canonicalize(&path).unwrap_or(path);
        Ok((md.rdev(), canon))
    }

    /// Mounts of this device, from mountinfo.
    fn mounts_of(&self, rdev: u64, canon: &Path) -> Result<Vec<MountEntry>, AgentError> {
        let text =
            fs::read_to_string("/proc/self/mountinfo").map_err(|e| sys("read /proc/self/mountinfo".to_string(), &e))?;
        Ok(text.lines().filter_map(MountEntry::parse).filter(|m| m.is_device(rdev, canon)).collect())
    }

    /// Where the device is mounted and whether one of those places is DIR.
    fn state(&self) -> Result<State, AgentError> {
        let (rdev, canon) = match self.device_rdev() {
            Ok(x) => x,
            Err(_) => return Ok(State::NoDevice),
        };
        let dir = fs::canonicalize(&self.dir).ok();
        let mounts = self.mounts_of(rdev, &canon)?;
        if let Some(m) = mounts.iter().find(|m| Some(&m.mount_point) == dir.as_ref()) {
            return Ok(State::Here(m.clone()));
        }
        match mounts.into_iter().next() {
            Some(m) => Ok(State::Elsewhere(m.mount_point)),
            None => Ok(State::Unmounted),
        }
    }

    fn start(&self) -> Result<Outcome, AgentError> {
        let md = fs::metadata(&self.dir).map_err(|e| sys(format!("mount point {}", self.dir.display()), &e))?;
        if !md.is_dir() {
            return Err(AgentError::Failed(format!("mount point {} is not a directory", self.dir.display())));
        }
        let (_, canon) = self.device_rdev()?;
        match self.state()? {
            State::Here(_) => return Ok(Outcome::Running),
            State::Elsewhere(p) => {
                return Err(AgentError::Failed(format!("{} is already mounted on {}", canon.display(), p.display())))
            }
            State::NoDevice | State::Unmounted => {}
        }
        let dir = fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        match &self.fstype {
            Some(t) => crate::sys::mount::mount(&canon, &dir, t, self.flags, &self.data).map_err(|errno| {
                if errno == Errno::ENODEV {
                    AgentError::Failed(format!("filesystem type '{t}' is not known to the kernel"))
                } else {
                    AgentError::Sys { op: format!("mount {} on {} ({t})", canon.display(), dir.display()), errno }
                }
            })?,
            None => self.probe_mount(&canon, &dir)?,
        }
        match self.state()? {
            State::Here(_) => Ok(Outcome::Running),
            _ => Err(AgentError::Failed(format!(
                "mount {} on {} succeeded but mountinfo does not show it",
                canon.display(),
                dir.display()
            ))),
        }
    }

    /// No FSTYPE: tries every block filesystem type the kernel knows, in order.
    fn probe_mount(&self, dev: &Path, dir: &Path) -> Result<(), AgentError> {
        let list =
            fs::read_to_string("/proc/filesystems").map_err(|e| sys("read /proc/filesystems".to_string(), &e))?;
        for t in block_fstypes(&list) {
            match crate::sys::mount::mount(dev, dir, t, self.flags, &self.data) {
                Ok(()) => {
                    log::debug!("{}: probed filesystem type {t}", self.text);
                    return Ok(());
                }
                // The wrong type (EINVAL), or a type needing a helper (fuseblk): next.
                Err(Errno::EINVAL | Errno::ENODEV | Errno::ENOTBLK | Errno::ENOENT) => continue,
                Err(errno) => {
                    return Err(AgentError::Sys {
                        op: format!("mount {} on {} ({t})", dev.display(), dir.display()),
                        errno,
                    })
                }
            }
        }
        Err(AgentError::Failed(format!("{}: no filesystem type known to the kernel recognises it", dev.display())))
    }

    fn stop(&self) -> Result<Outcome, AgentError> {
        let mut tries = 0;
        loop {
            let entry = match self.state()? {
                State::Here(m) => m,
                _ => return Ok(Outcome::Stopped),
            };
            let dev = nix::sys::stat::makedev(u64::from(entry.major), u64::from(entry.minor));
            let dir = entry.mount_point.clone();
            self.evict(dev, &dir);
            match crate::sys::mount::umount(&dir) {
                Ok(()) => {
                    // Stacked mounts of the same device on DIR: loop to unmount them too.
                    tries = 0;
                    continue;
                }
                Err(errno) => {
                    tries += 1;
                    if tries >= UMOUNT_TRIES {
                        let left = holders(dev, &skip_pids());
                        let mut op = format!("umount {}", dir.display());
                        if !left.is_empty() {
                            op.push_str(&format!(" (still held by pids {})", join_pids(&left)));
                        }
                        return Err(AgentError::Sys { op, errno });
                    }
                    log::warn!("{}: umount {}: {}; retrying", self.text, dir.display(), errno.desc());
                    std::thread::sleep(UMOUNT_RETRY_DELAY);
                }
            }
        }
    }

    /// SIGTERM the holders of `dev`, wait, SIGKILL the survivors, wait. Bounded.
    fn evict(&self, dev: u64, dir: &Path) {
        let skip = skip_pids();
        let first = holders(dev, &skip);
        if first.is_empty() {
            return;
        }
        log::info!("{}: sending SIGTERM to pids {} holding {}", self.text, join_pids(&first), dir.display());
        signal_all(&first, Signal::SIGTERM);
        if wait_released(dev, &skip, self.term_grace) {
            return;
        }
        let left = holders(dev, &skip);
        log::warn!("{}: sending SIGKILL to pids {} still holding {}", self.text, join_pids(&left), dir.display());
        signal_all(&left, Signal::SIGKILL);
        wait_released(dev, &skip, self.kill_grace);
    }
}

impl Agent for MountAgent {
    fn text(&self) -> &str {
        &self.text
    }
    fn exec(&self, _op: Op) -> Exec {
        Exec::Fork
    }
    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        match op {
            Op::Start => self.start(),
            Op::Stop => self.stop(),
            Op::Status => match self.state()? {
                State::Here(_) => Ok(Outcome::Running),
                _ => Ok(Outcome::Stopped),
            },
        }
    }
}

enum State {
    NoDevice,
    Unmounted,
    Elsewhere(PathBuf),
    Here(MountEntry),
}

fn sys(op: String, e: &std::io::Error) -> AgentError {
    AgentError::Sys { op, errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)) }
}

/// Splits mount options into MS_* flags and the filesystem's data string.
/// fstab-only words (`defaults`, `auto`, `noauto`, `user`, `nouser`, `nofail`, `_netdev`)
/// are dropped.
pub fn parse_options(opts: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (set, clear) = match o {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "defaults" | "auto" | "noauto" | "user" | "nouser" | "nofail" | "_netdev" => continue,
            other => {
                data.push(other);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// The block-device filesystem types of a `/proc/filesystems` text, in order.
pub fn block_fstypes(list: &str) -> impl Iterator<Item = &str> {
    list.lines().filter_map(|l| {
        let mut w = l.split_whitespace();
        let first = w.next()?;
        if first == "nodev" {
            return None;
        }
        if w.next().is_some() {
            return None;
        }
        Some(first)
    })
}

/// One line of `/proc/PID/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub major: u32,
    pub minor: u32,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

impl MountEntry {
    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
    pub fn parse(line: &str) -> Option<MountEntry> {
        let mut f = line.split(' ');
        let _id = f.next()?;
        let _parent = f.next()?;
        let (maj, min) = f.next()?.split_once(':')?;
        let _root = f.next()?;
        let mount_point = PathBuf::from(unescape(f.next()?));
        let _opts = f.next()?;
        // Optional fields up to the "-" separator.
        loop {
            if f.next()? == "-" {
                break;
            }
        }
        let fstype = unescape(f.next()?);
        let source = unescape(f.next()?);
        Some(MountEntry { major: maj.parse().ok()?, minor: min.parse().ok()?, mount_point, fstype, source })
    }

    /// Whether this mount is of the block device `rdev` (canonical node `canon`).
    fn is_device(&self, rdev: u64, canon: &Path) -> bool {
        if u64::from(self.major) == major(rdev) && u64::from(self.minor) == minor(rdev) {
            return true;
        }
        // Anonymous device numbers (btrfs, …): compare the source's device node.
        self.major == 0
            && self.source.starts_with('/')
            && fs::canonicalize(&self.source).map(|p| p == canon).unwrap_or(false)
    }
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = oct.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                    if let Ok(v) = u8::try_from(v) {
                        out.push(v);
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

/// The `major:minor` (hex) of a `/proc/PID/maps` line, or `None` for a malformed line.
pub fn maps_dev(line: &str) -> Option<(u32, u32)> {
    let dev = line.split_whitespace().nth(3)?;
    let (ma, mi) = dev.split_once(':')?;
    Some((u32::from_str_radix(ma, 16).ok()?, u32::from_str_radix(mi, 16).ok()?))
}

/// Ourselves and our parent (the daemon, or the shell running `tandem agent`) are never
/// signalled: if they hold the filesystem the unmount fails instead.
fn skip_pids() -> [i32; 2] {
    [nix::unistd::getpid().as_raw(), nix::unistd::getppid().as_raw()]
}

/// The pids whose cwd, root, exe, open files or file mappings are on device `dev`.
pub fn holders(dev: u64, skip: &[i32]) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for ent in rd.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if skip.contains(&pid) {
            continue;
        }
        if holds(&ent.path(), dev) {
            out.push(pid);
        }
    }
    out
}

fn holds(proc_dir: &Path, dev: u64) -> bool {
    let on_dev = |p: &Path| fs::metadata(p).map(|m| m.dev() == dev).unwrap_or(false);
    if ["cwd", "root", "exe"].iter().any(|l| on_dev(&proc_dir.join(l))) {
        return true;
    }
    if let Ok(fds) = fs::read_dir(proc_dir.join("fd")) {
        if fds.flatten().any(|fd| on_dev(&fd.path())) {
            return true;
        }
    }
    let (ma, mi) = (major(dev), minor(dev));
    if let Ok(maps) = fs::read_to_string(proc_dir.join("maps")) {
        return maps
            .lines()
            .filter_map(maps_dev)
            .any(|(a, b)| u64::from(a) == ma && u64::from(b) == mi && (a, b) != (0, 0));
    }
    false
}

fn signal_all(pids: &[i32], sig: Signal) {
    for &p in pids {
        let _ = kill(Pid::from_raw(p), sig);
    }
}

/// Polls until nothing holds `dev` or `grace` has passed; true when released.
fn wait_released(dev: u64, skip: &[i32], grace: Duration) -> bool {
    let deadline = time::now() + grace;
    loop {
        if holders(dev, skip).is_empty() {
            return true;
        }
        if time::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

fn join_pids(p: &[i32]) -> String {
    p.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d) = parse_options("ro,noatime,nodev,nosuid,noexec,sync,dirsync,data=ordered,errors=remount-ro");
        assert_eq!(
            f,
            MsFlags::MS_RDONLY
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_SYNCHRONOUS
                | MsFlags::MS_DIRSYNC
        );
        assert_eq!(d, "data=ordered,errors=remount-ro");
        let (f, d) = parse_options("ro,rw,defaults,relatime,nodiratime,_netdev");
        assert_eq!(f, MsFlags::MS_RELATIME | MsFlags::MS_NODIRATIME);
        assert_eq!(d, "");
        assert_eq!(parse_options(""), (MsFlags::empty(), String::new()));
    }

    #[test]
    fn options_and_devices() {
        let spec = |d: &str, fs: Option<&str>, o: &str| MountSpec {
            device: d.into(),
            dir: "/srv".into(),
            fstype: fs.map(str::to_string),
            options: o.into(),
        };
        let a = MountAgent::new(&spec("/dev/drbd0", Some("ext4"), "noatime,commit=5"), "t");
        assert_eq!(a.fstype.as_deref(), Some("ext4"));
        assert_eq!(a.options(), (MsFlags::MS_NOATIME, "commit=5"));
        let a = MountAgent::new(&spec("UUID=1234", None, ""), "t");
        assert_eq!(a.device_path(), PathBuf::from("/dev/disk/by-uuid/1234"));
        assert_eq!(a.exec(Op::Start), Exec::Fork);
    }

    #[test]
    fn mountinfo_lines() {
        let m = MountEntry::parse(
            "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!((m.major, m.minor), (98, 0));
        assert_eq!(m.mount_point, PathBuf::from("/mnt/my dir"));
        assert_eq!(m.fstype, "ext3");
        assert_eq!(m.source, "/dev/root");
        let m = MountEntry::parse("43 27 7:0 / /tmp/x rw,relatime - ext4 /dev/loop0 rw").unwrap();
        assert_eq!((m.major, m.minor, m.fstype.as_str()), (7, 0, "ext4"));
        assert_eq!(MountEntry::parse("43 27 7:0 / /tmp/x rw,relatime ext4 /dev/loop0 rw"), None);
        assert_eq!(MountEntry::parse("43 27 x:0 / /a rw - ext4 /dev/loop0 rw"), None);
        assert_eq!(MountEntry::parse(""), None);
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("a\\040b\\011c\\012d\\134e"), "a b\tc\nd\\e");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(unescape("\\999"), "\\999");
        assert_eq!(unescape("\\777"), "\\777"); // > 255: left as is
    }

    #[test]
    fn maps_and_filesystems() {
        assert_eq!(maps_dev("7f1c2a000000-7f1c2a022000 r--p 00000000 fd:01 1837  /usr/lib/libc.so.6"), Some((0xfd, 1)));
        assert_eq!(maps_dev("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]"), Some((0, 0)));
        assert_eq!(maps_dev("garbage"), None);
        let list = "nodev\tsysfs\n\text3\n\text4\nnodev\tfuse\n\txfs\n";
        assert_eq!(block_fstypes(list).collect::<Vec<_>>(), ["ext3", "ext4", "xfs"]);
    }
}
