//! Inside the new namespaces, before the guest's init runs: the guest's filesystem tree
//! and its rights.
//!
//! [`plan`] (pure) lists the steps as data, with every path prepared as a C string, so
//! the cloned child only makes system calls. [`child_main`] runs them and then executes
//! init; a failure is reported to the monitor over a pipe as (step, errno).
//!
//! The tree (mounted relative to ROOT, then `pivot_root`ed into):
//! - every mount of the new namespace made private first, so nothing propagates to the host;
//! - ROOT bind-mounted onto itself (recursively) and remounted `nodev`, keeping the host
//!   mount's other flags: device nodes on the guest's disk are dead;
//! - a fresh `/proc` of the guest's PID namespace, with the OCI runtime defaults:
//!   `/proc/{bus,fs,irq,sys,sysrq-trigger}` read-only, and `/proc/{acpi,asound,kcore,keys,
//!   latency_stats,timer_list,timer_stats,sched_debug,scsi}`, `/sys/firmware` and
//!   `/sys/devices/virtual/powercap` masked (an empty read-only tmpfs over a directory,
//!   `/dev/null` over a file);
//! - `/sys` read-only;
//! - `/dev` on a small tmpfs: null, zero, full, random, urandom, tty, a new `devpts`
//!   instance (`/dev/pts`, `/dev/ptmx`), `/dev/shm`, `/dev/mqueue`, the usual symlinks, and
//!   `/dev/console`: the slave of a host pty whose master the guest's monitor keeps and logs;
//! - tmpfs on `/run` and `/tmp`;
//! - `pivot_root` into ROOT and the old root detached (`umount2(MNT_DETACH)`).
//!
//! A mount point that is a symlink in the guest's tree is refused, not followed.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

use crate::sys;

/// Read-only paths (OCI runtime defaults).
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];
/// Masked paths (OCI runtime defaults).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Device nodes of the guest's `/dev`: (name, major, minor), all mode 0666.
pub const DEVICES: [(&str, u64, u64); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];
/// Symlinks of the guest's `/dev`: (name, target).
pub const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

const NOSUID_NODEV_NOEXEC: MsFlags =
    MsFlags::from_bits_truncate(MsFlags::MS_NOSUID.bits() | MsFlags::MS_NODEV.bits() | MsFlags::MS_NOEXEC.bits());

/// One step of the set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `mount --make-rprivate /`.
    PrivateTree,
    /// `mount --rbind ROOT ROOT`, then a bind remount adding `nodev`.
    BindRoot {
        root: CString,
    },
    /// A directory that must exist (created with `mode` when missing) and not be a symlink.
    Dir {
        path: CString,
        mode: u32,
    },
    Mount {
        source: CString,
        target: CString,
        fstype: CString,
        flags: MsFlags,
        data: CString,
    },
    /// Bind `source` onto `target` (an fd path like `/proc/self/fd/N` is followed).
    Bind {
        source: CString,
        target: CString,
    },
    Mknod {
        path: CString,
        major: u64,
        minor: u64,
    },
    Symlink {
        target: CString,
        path: CString,
    },
    /// An empty regular file (a bind-mount target).
    File {
        path: CString,
    },
    /// Bind onto itself and remount read-only, if it exists.
    ReadOnly {
        path: CString,
    },
    /// Hide: an empty read-only tmpfs over a directory, `/dev/null` over a file; skipped
    /// when missing.
    Mask {
        path: CString,
    },
    /// `pivot_root` into ROOT and detach the old root.
    PivotRoot {
        root: CString,
    },
}

impl Step {
    /// For error messages.
    pub fn describe(&self) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Step::PrivateTree => "make the mount tree private".to_string(),
            Step::BindRoot { root } => format!("bind-mount the root {}", s(root)),
            Step::Dir { path, .. } => format!("directory {}", s(path)),
            Step::Mount { target, fstype, .. } => format!("mount {} on {}", s(fstype), s(target)),
            Step::Bind { source, target } => format!("bind {} on {}", s(source), s(target)),
            Step::Mknod { path, .. } => format!("mknod {}", s(path)),
            Step::Symlink { path, .. } => format!("symlink {}", s(path)),
            Step::File { path } => format!("create {}", s(path)),
            Step::ReadOnly { path } => format!("make {} read-only", s(path)),
            Step::Mask { path } => format!("mask {}", s(path)),
            Step::PivotRoot { root } => format!("pivot_root into {}", s(root)),
        }
    }
}

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| format!("{} contains a NUL byte", p.display()))
}

fn cs(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// The steps for a guest rooted at `root` whose console is the host's tty `console`
/// (`/dev/pts/N`: a bind source must be a path of the child's own mount namespace, so not
/// a `/proc/self/fd` link to a file opened in the monitor's).
pub fn plan(root: &Path, console: &Path) -> Result<Vec<Step>, String> {
    let at = |p: &str| cstr(&root.join(p.trim_start_matches('/')));
    let mount = |source: &str, target: &str, fstype: &str, flags: MsFlags, data: &str| -> Result<Step, String> {
        Ok(Step::Mount { source: cs(source), target: at(target)?, fstype: cs(fstype), flags, data: cs(data) })
    };
    let mut v = vec![Step::PrivateTree, Step::BindRoot { root: cstr(root)? }];
    for (d, mode) in [("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755), ("tmp", 0o1777)] {
        v.push(Step::Dir { path: at(d)?, mode });
    }
    v.push(mount("proc", "proc", "proc", NOSUID_NODEV_NOEXEC, "")?);
    v.push(mount("sysfs", "sys", "sysfs", NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY, "")?);
    for p in READONLY_PATHS {
        v.push(Step::ReadOnly { path: at(p)? });
    }
    for p in MASKED_PATHS {
        v.push(Step::Mask { path: at(p)? });
    }
    v.push(mount("tmpfs", "dev", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, "mode=755,size=65536")?);
    for (name, major, minor) in DEVICES {
        v.push(Step::Mknod { path: at(&format!("dev/{name}"))?, major, minor });
    }
    for (name, target) in DEV_LINKS {
        v.push(Step::Symlink { target: cs(target), path: at(&format!("dev/{name}"))? });
    }
    for (d, mode) in [("dev/pts", 0o755), ("dev/shm", 0o1777), ("dev/mqueue", 0o1777)] {
        v.push(Step::Dir { path: at(d)?, mode });
    }
    v.push(mount(
        "devpts",
        "dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )?);
    v.push(mount("shm", "dev/shm", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, "mode=1777")?);
    v.push(mount("mqueue", "dev/mqueue", "mqueue", NOSUID_NODEV_NOEXEC, "")?);
    v.push(Step::File { path: at("dev/console")? });
    v.push(Step::Bind { source: cstr(console)?, target: at("dev/console")? });
    v.push(mount("tmpfs", "run", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, "mode=755")?);
    v.push(mount("tmpfs", "tmp", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, "mode=1777")?);
    v.push(Step::PivotRoot { root: cstr(root)? });
    Ok(v)
}

fn opt(c: &CStr) -> Option<&CStr> {
    (!c.is_empty()).then_some(c)
}

/// The `MS_*` flags of the mount at `path` that a bind remount must keep.
fn kept_flags(path: &CStr) -> Result<MsFlags, Errno> {
    use nix::sys::statvfs::FsFlags;
    let f = nix::sys::statvfs::statvfs(path)?.flags();
    let mut m = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(st) {
            m |= ms;
        }
    }
    Ok(m)
}

fn lstat(path: &CStr) -> Result<Option<libc::mode_t>, Errno> {
    match nix::sys::stat::lstat(path) {
        Ok(st) => Ok(Some(st.st_mode & libc::S_IFMT)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn bind(source: &CStr, target: &CStr, recursive: bool) -> Result<(), Errno> {
    let rec = if recursive { MsFlags::MS_REC } else { MsFlags::empty() };
    nix::mount::mount(Some(source), target, None::<&CStr>, MsFlags::MS_BIND | rec, None::<&CStr>)
}

fn remount_bind(target: &CStr, flags: MsFlags) -> Result<(), Errno> {
    nix::mount::mount(
        None::<&CStr>,
        target,
        None::<&CStr>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
        None::<&CStr>,
    )
}

/// Runs one step (in the child, as root in the guest's new namespaces).
pub fn run_step(step: &Step) -> Result<(), Errno> {
    match step {
        Step::PrivateTree => {
            nix::mount::mount(None::<&CStr>, "/", None::<&CStr>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&CStr>)
        }
        Step::BindRoot { root } => {
            bind(root, root, true)?;
            let keep = kept_flags(root)?;
            remount_bind(root, keep | MsFlags::MS_NODEV)
        }
        Step::Dir { path, mode } => match lstat(path)? {
            Some(libc::S_IFDIR) => Ok(()),
            Some(_) => Err(Errno::ENOTDIR),
            None => nix::unistd::mkdir(path.as_ref(), Mode::from_bits_truncate(*mode)),
        },
        Step::Mount { source, target, fstype, flags, data } => {
            nix::mount::mount(Some(source.as_ref()), target.as_ref(), opt(fstype), *flags, opt(data))
        }
        Step::Bind { source, target } => bind(source, target, false),
        Step::Mknod { path, major, minor } => nix::sys::stat::mknod(
            path.as_ref(),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(*major, *minor),
        ),
        Step::Symlink { target, path } => nix::unistd::symlinkat(target.as_ref(), None, path.as_ref()),
        Step::File { path } => {
            let fd = nix::fcntl::open(
                path.as_ref(),
                nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            nix::unistd::close(fd)
        }
        Step::ReadOnly { path } => {
            if lstat(path)?.is_none() {
                return Ok(());
            }
            bind(path, path, true)?;
            remount_bind(path, NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY)
        }
        Step::Mask { path } => match lstat(path)? {
            None => Ok(()),
            Some(libc::S_IFDIR) => nix::mount::mount(
                Some("tmpfs"),
                path.as_ref(),
                Some("tmpfs"),
                NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY,
                Some("size=0,mode=555"),
            ),
            Some(_) => bind(c"/dev/null", path, false),
        },
        Step::PivotRoot { root } => {
            nix::unistd::chdir(root.as_ref())?;
            nix::unistd::pivot_root(".", ".")?;
            // The old root is now stacked on "/": detach it, with everything under it.
            nix::mount::umount2(".", MntFlags::MNT_DETACH)?;
            nix::unistd::chdir("/")
        }
    }
}

/// Everything the cloned child needs, prepared before the clone.
pub struct ChildPlan {
    pub steps: Vec<Step>,
    pub hostname: CString,
    /// The console tty (pty slave).
    pub console: RawFd,
    /// Read end of the "go" pipe: the monitor writes one byte once the child is in its
    /// cgroups and its network is set up.
    pub go: RawFd,
    /// Write end of the error pipe (close-on-exec: closing without data = init runs).
    pub err: RawFd,
    /// Ends the monitor kept that the child must close (the "go" pipe's write end...).
    pub close: Vec<RawFd>,
    pub caps: u64,
    pub cap_last: u32,
    /// The seccomp program; empty: none (`seccomp=off`).
    pub filter: Vec<libc::sock_filter>,
    pub init: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

/// Pseudo step numbers for failures outside the mount steps.
pub const STEP_GO: u32 = 1000;
pub const STEP_CGROUP_NS: u32 = 1001;
pub const STEP_HOSTNAME: u32 = 1002;
pub const STEP_SESSION: u32 = 1003;
pub const STEP_CONSOLE: u32 = 1004;
pub const STEP_CAPS: u32 = 1005;
pub const STEP_NO_NEW_PRIVS: u32 = 1006;
pub const STEP_SECCOMP: u32 = 1007;
pub const STEP_EXEC: u32 = 1008;

impl ChildPlan {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        steps: Vec<Step>,
        hostname: &str,
        console: RawFd,
        caps: u64,
        cap_last: u32,
        filter: Vec<libc::sock_filter>,
        init: &[String],
        env: &[String],
    ) -> Result<ChildPlan, String> {
        let c = |s: &str| CString::new(s).map_err(|_| format!("'{s}' contains a NUL byte"));
        let argv = init.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
        let envp = env.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
        let Some(first) = init.first() else {
            return Err("no init command".to_string());
        };
        let mut p = ChildPlan {
            steps,
            hostname: c(hostname)?,
            console,
            go: -1,
            err: -1,
            close: Vec::new(),
            caps,
            cap_last,
            filter,
            init: c(first)?,
            argv,
            envp,
            argv_ptrs: Vec::new(),
            envp_ptrs: Vec::new(),
        };
        p.argv_ptrs = p.argv.iter().map(|a| a.as_ptr()).chain([core::ptr::null()]).collect();
        p.envp_ptrs = p.envp.iter().map(|a| a.as_ptr()).chain([core::ptr::null()]).collect();
        Ok(p)
    }

    /// What a (step, errno) failure report means.
    pub fn describe_failure(&self, step: u32, errno: Errno) -> String {
        let what = match step {
            STEP_GO => "waiting for the monitor".to_string(),
            STEP_CGROUP_NS => "new cgroup namespace".to_string(),
            STEP_HOSTNAME => "set the host name".to_string(),
            STEP_SESSION => "new session".to_string(),
            STEP_CONSOLE => "console as controlling terminal".to_string(),
            STEP_CAPS => "capability bounding set".to_string(),
            STEP_NO_NEW_PRIVS => "no_new_privs".to_string(),
            STEP_SECCOMP => "seccomp filter".to_string(),
            STEP_EXEC => format!("execute {} in the guest", self.init.to_string_lossy()),
            n => usize::try_from(n)
                .ok()
                .and_then(|i| self.steps.get(i))
                .map_or_else(|| format!("step {n}"), Step::describe),
        };
        format!("{what}: {}", errno.desc())
    }
}

/// Reports (step, errno) to the monitor and ends the child.
fn fail(err: RawFd, step: u32, errno: Errno) -> ! {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&step.to_le_bytes());
    msg[4..].copy_from_slice(&(errno as i32).to_le_bytes());
    sys::process::write_all_raw(err, &msg);
    sys::ns::exit_now(127)
}

/// The cloned child: waits for the monitor's go, builds the guest's tree, drops its
/// rights and executes init. Never returns.
pub fn child_main(p: &ChildPlan) -> ! {
    for fd in &p.close {
        let _ = nix::unistd::close(*fd);
    }
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(p.go, &mut b) {
            Ok(1) if b[0] == b'g' => break,
            Err(Errno::EINTR) => continue,
            Ok(_) => fail(p.err, STEP_GO, Errno::EPIPE),
            Err(e) => fail(p.err, STEP_GO, e),
        }
    }
    let _ = nix::unistd::close(p.go);
    // The monitor has put us into every cgroup: root the cgroup namespace there.
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
        fail(p.err, STEP_CGROUP_NS, e);
    }
    if let Err(e) = nix::unistd::sethostname(p.hostname.to_string_lossy().as_ref()) {
        fail(p.err, STEP_HOSTNAME, e);
    }
    nix::sys::stat::umask(Mode::empty());
    for (i, s) in p.steps.iter().enumerate() {
        if let Err(e) = run_step(s) {
            fail(p.err, u32::try_from(i).unwrap_or(u32::MAX), e);
        }
    }
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    // Session and console: init leads a session whose controlling terminal is the console.
    if let Err(e) = nix::unistd::setsid() {
        fail(p.err, STEP_SESSION, e);
    }
    if let Err(e) = sys::ns::set_controlling_tty(p.console) {
        fail(p.err, STEP_CONSOLE, e);
    }
    for target in 0..3 {
        if let Err(e) = nix::unistd::dup2(p.console, target) {
            fail(p.err, STEP_CONSOLE, e);
        }
    }
    if p.console > 2 {
        let _ = nix::unistd::close(p.console);
    }
    // Whatever else is open goes at exec (the error pipe stays usable until then).
    let _ = sys::ns::cloexec_from(3);
    sys::process::reset_signals();
    if let Err(e) = sys::caps::bounding_set_keep(p.caps, p.cap_last) {
        fail(p.err, STEP_CAPS, e);
    }
    if let Err(e) = sys::caps::clear_inheritable_and_ambient() {
        fail(p.err, STEP_CAPS, e);
    }
    if let Err(e) = sys::caps::set_no_new_privs() {
        fail(p.err, STEP_NO_NEW_PRIVS, e);
    }
    if !p.filter.is_empty() {
        if let Err(e) = sys::caps::install_seccomp(&p.filter) {
            fail(p.err, STEP_SECCOMP, e);
        }
    }
    let e = sys::ns::execve(&p.init, &p.argv_ptrs, &p.envp_ptrs);
    fail(p.err, STEP_EXEC, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(c: &CString) -> &str {
        c.to_str().unwrap()
    }

    #[test]
    fn the_tree() {
        let steps = plan(Path::new("/srv/www"), Path::new("/dev/pts/7")).unwrap();
        assert_eq!(steps.first(), Some(&Step::PrivateTree));
        assert!(matches!(steps.last(), Some(Step::PivotRoot { root }) if s(root) == "/srv/www"));
        let find = |target: &str| {
            steps
                .iter()
                .find_map(|st| match st {
                    Step::Mount { target: t, fstype, flags, data, .. } if s(t) == target => {
                        Some((s(fstype).to_string(), *flags, s(data).to_string()))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no mount on {target}"))
        };
        let (fs, flags, _) = find("/srv/www/proc");
        assert_eq!(fs, "proc");
        assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC));
        let (fs, flags, _) = find("/srv/www/sys");
        assert_eq!(fs, "sysfs");
        assert!(flags.contains(MsFlags::MS_RDONLY));
        let (fs, _, data) = find("/srv/www/dev/pts");
        assert_eq!(fs, "devpts");
        assert!(data.contains("newinstance") && data.contains("ptmxmode=0666"), "{data}");
        assert_eq!(find("/srv/www/run").0, "tmpfs");
        assert_eq!(find("/srv/www/tmp").0, "tmpfs");
        let (fs, flags, _) = find("/srv/www/dev");
        assert_eq!(fs, "tmpfs");
        assert!(!flags.contains(MsFlags::MS_NODEV), "device nodes must work in /dev");
        // /proc/sys read-only, kcore masked, /sys/firmware masked; after their filesystems.
        let pos = |want: &Step| steps.iter().position(|x| x == want).unwrap();
        let ro = pos(&Step::ReadOnly { path: cs("/srv/www/proc/sys") });
        let kcore = pos(&Step::Mask { path: cs("/srv/www/proc/kcore") });
        let fw = pos(&Step::Mask { path: cs("/srv/www/sys/firmware") });
        let sysfs = steps.iter().position(|x| matches!(x, Step::Mount { fstype, .. } if s(fstype) == "sysfs")).unwrap();
        let procfs = steps.iter().position(|x| matches!(x, Step::Mount { fstype, .. } if s(fstype) == "proc")).unwrap();
        assert!(procfs < ro && procfs < kcore && sysfs < fw);
        assert!(steps.contains(&Step::ReadOnly { path: cs("/srv/www/proc/sysrq-trigger") }));
        // The console is the pty slave the monitor handed over.
        assert!(steps.contains(&Step::Bind { source: cs("/dev/pts/7"), target: cs("/srv/www/dev/console") }));
        for (name, _, _) in DEVICES {
            assert!(steps
                .iter()
                .any(|x| matches!(x, Step::Mknod { path, .. } if s(path) == format!("/srv/www/dev/{name}"))));
        }
        assert!(plan(Path::new("/srv/a\0b"), Path::new("/dev/pts/7")).is_err());
    }

    #[test]
    fn failures_are_described() {
        let steps = plan(Path::new("/g"), Path::new("/dev/pts/3")).unwrap();
        let p = ChildPlan::new(steps, "g", 3, 0, 40, Vec::new(), &["/sbin/init".to_string()], &[]).unwrap();
        assert_eq!(
            p.describe_failure(STEP_EXEC, Errno::ENOENT),
            "execute /sbin/init in the guest: No such file or directory"
        );
        assert_eq!(p.describe_failure(2, Errno::EPERM), "directory /g/proc: Operation not permitted");
        assert_eq!(p.describe_failure(9999, Errno::EIO), "step 9999: I/O error");
        assert_eq!(p.argv_ptrs.len(), 2);
        assert!(p.argv_ptrs[1].is_null());
        assert!(ChildPlan::new(Vec::new(), "g", 3, 0, 40, Vec::new(), &[], &[]).is_err());
    }
}
