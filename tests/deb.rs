//! `make deb` builds a Debian package that lintian accepts, that installs into a fresh Debian
//! bookworm (mmdebstrap --variant=minbase), puts its files where the documentation says,
//! runs there (version, the OCF agents through their links, keygen, check-config of the
//! example config, the daemon through the init script), does not start the daemon before a
//! configuration exists, stops it on removal (the group is released), and leaves nothing
//! behind after `dpkg --purge`.
//!
//! The minbase root is cached as a tarball under target/deb-test (a week at most), so only the
//! first run pays for mmdebstrap (about 90 s; it needs Debian's mirrors).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// The longest one step in the root may take (dpkg, the init script, the agents).
const STEP_LIMIT: Duration = Duration::from_secs(120);

/// How long a cached root tarball is used.
const CACHE_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"))
}

/// A fresh bookworm minbase root as a tarball: the newest cached one younger than
/// [`CACHE_FOR`], else a new one from mmdebstrap.
fn minbase_tarball() -> PathBuf {
    let dir = target_dir().join("deb-test");
    std::fs::create_dir_all(&dir).unwrap();
    let fresh = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() < CACHE_FOR)
            .unwrap_or(false)
    };
    let mut cached: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        // Finished tarballs only: a `.bookworm-minbase-….tar` is an mmdebstrap that was cut short.
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bookworm-minbase-") && n.ends_with(".tar"))
        })
        .collect();
    cached.sort();
    if let Some(p) = cached.iter().rev().find(|p| fresh(p)) {
        return p.clone();
    }
    for old in &cached {
        let _ = std::fs::remove_file(old);
    }
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.file_name().to_str().is_some_and(|n| n.starts_with(".bookworm-minbase-")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let day = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() / 86400;
    let out = dir.join(format!("bookworm-minbase-{day}.tar"));
    let tmp = dir.join(format!(".bookworm-minbase-{}.tar", unique()));
    let t0 = Instant::now();
    let o = Command::new("timeout")
        .args(["600", "mmdebstrap", "--quiet", "--variant=minbase", "bookworm"])
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(o.status.success(), "mmdebstrap failed:\n{}", text(&o));
    std::fs::rename(&tmp, &out).unwrap();
    eprintln!("mmdebstrap: {:?} (cached as {})", t0.elapsed(), out.display());
    out
}

/// An unpacked root with /proc mounted; on drop every process running in it is killed,
/// /proc unmounted and the tree removed.
struct Root {
    dir: PathBuf,
    proc_mounted: bool,
}

impl Root {
    fn new(tarball: &Path) -> Root {
        let dir = std::env::temp_dir().join(format!("tandem-deb-root-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Root { dir, proc_mounted: false };
        run(&["tar", "-C", r.dir.to_str().unwrap(), "-xf", tarball.to_str().unwrap()]);
        run(&["mount", "-t", "proc", "proc", r.dir.join("proc").to_str().unwrap()]);
        r.proc_mounted = true;
        r
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p.trim_start_matches('/'))
    }
    /// Runs ARGS in the root (inside network namespace `ns` when given), for at most
    /// [`STEP_LIMIT`]. Its output goes to files, not pipes: a daemon it starts that kept a
    /// descriptor of a pipe would make the wait for end-of-file last for ever.
    fn run(&self, ns: Option<&str>, args: &[&str]) -> Output {
        let mut c = Command::new("timeout");
        c.arg(STEP_LIMIT.as_secs().to_string());
        if let Some(n) = ns {
            c.args(["ip", "netns", "exec", n]);
        }
        c.arg("chroot");
        let out = std::env::temp_dir().join(format!("tandem-deb-out-{}", unique()));
        let err = out.with_extension("err");
        let status = c
            .arg(&self.dir)
            .args(args)
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(std::process::Stdio::null())
            // Not close-on-exec, as a shell's redirections are: what the daemon must close.
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        let o = Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&err);
        assert_ne!(status.code(), Some(124), "{args:?} in the root took longer than {STEP_LIMIT:?}:\n{}", text(&o));
        o
    }
    fn ok(&self, ns: Option<&str>, args: &[&str]) -> String {
        let o = self.run(ns, args);
        assert!(o.status.success(), "{args:?} in the root:\n{}", text(&o));
        text(&o)
    }
    /// Every path in the root (relative), except what dpkg and the kernel change anyway.
    fn files(&self) -> BTreeSet<String> {
        let o = Command::new("find").arg(&self.dir).arg("-xdev").output().unwrap();
        let skip = ["proc/", "tmp/", "var/lib/dpkg/", "var/log/", "var/cache/debconf/"];
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(self.dir.to_str().unwrap()))
            .map(|l| l.trim_start_matches('/').to_string())
            .filter(|l| !skip.iter().any(|s| l.starts_with(s)))
            .collect()
    }
    /// Pids of processes whose root is this tree.
    fn pids(&self) -> Vec<u32> {
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            if std::fs::read_link(e.path().join("root")).is_ok_and(|r| r == self.dir) {
                v.push(pid);
            }
        }
        v
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        if self.proc_mounted {
            let _ = Command::new("umount").arg("-l").arg(self.dir.join("proc")).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn deb_installs_runs_and_purges_cleanly() {
    if !require(&["dpkg-deb", "lintian", "mmdebstrap", "chroot", "make", "file", "ip"]) {
        return;
    }
    let t0 = Instant::now();
    // make deb (it builds the static binary when needed).
    let o = Command::new("make").args(["-s", "deb"]).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "make deb:\n{}", text(&o));
    let deb = PathBuf::from(String::from_utf8_lossy(&o.stdout).lines().last().unwrap().trim());
    let deb = if deb.is_absolute() { deb } else { repo().join(deb) };
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    assert_eq!(deb.file_name().unwrap().to_str().unwrap(), format!("tandem_{version}_amd64.deb"));
    eprintln!("make deb: {:?}", t0.elapsed());

    // The data archive's root directory and every directory in it are 0755.
    let o = Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap();
    for l in String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with('d')) {
        assert!(l.starts_with("drwxr-xr-x root/root"), "{l}");
    }

    // The control area.
    let ctl = TempDir::new("deb-ctl");
    run(&["dpkg-deb", "-e", deb.to_str().unwrap(), ctl.path().to_str().unwrap()]);
    for (f, mode) in [
        ("control", 0o644),
        ("conffiles", 0o644),
        ("md5sums", 0o644),
        ("postinst", 0o755),
        ("prerm", 0o755),
        ("postrm", 0o755),
    ] {
        let m = std::fs::metadata(ctl.path().join(f)).unwrap_or_else(|e| panic!("DEBIAN/{f}: {e}"));
        assert_eq!(m.permissions().mode() & 0o777, mode, "DEBIAN/{f}");
    }
    let control = std::fs::read_to_string(ctl.path().join("control")).unwrap();
    for want in ["Package: tandem\n", &format!("Version: {version}\n"), "Architecture: amd64\n", "Installed-Size: "] {
        assert!(control.contains(want), "{want} not in\n{control}");
    }
    assert_eq!(
        std::fs::read_to_string(ctl.path().join("conffiles")).unwrap(),
        "/etc/init.d/tandem\n/etc/default/tandem\n/etc/logrotate.d/tandem\n"
    );

    // lintian: no errors and no warnings (the overrides in the package say why).
    let o = Command::new("lintian").arg(&deb).output().unwrap();
    let l = text(&o);
    let bad: Vec<&str> = l.lines().filter(|x| x.starts_with("E:") || x.starts_with("W:")).collect();
    assert!(bad.is_empty(), "lintian:\n{l}");

    // A fresh Debian.
    let root = Root::new(&minbase_tarball());
    let before = root.files();
    std::fs::copy(&deb, root.path("/tmp/tandem.deb")).unwrap();
    let out = root.ok(None, &["dpkg", "-i", "/tmp/tandem.deb"]);
    assert!(out.contains("no /etc/tandem/tandem.conf yet"), "{out}");
    assert!(root.ok(None, &["dpkg", "--verify", "tandem"]).trim().is_empty(), "md5sums");

    // The files, where tandem(8), tandem.conf(5), ocf.md and the README say.
    for f in [
        "/usr/sbin/tandem",
        "/etc/init.d/tandem",
        "/etc/default/tandem",
        "/etc/logrotate.d/tandem",
        "/lib/systemd/system/tandem.service",
        "/usr/share/man/man8/tandem.8.gz",
        "/usr/share/man/man5/tandem.conf.5.gz",
        "/usr/share/doc/tandem/copyright",
        "/usr/share/doc/tandem/changelog.Debian.gz",
        "/usr/share/doc/tandem/examples/tandem.conf",
        "/usr/share/doc/tandem/ocf.md",
        "/usr/share/doc/tandem/pacemaker.md",
        "/usr/share/doc/tandem/notify.md",
        "/usr/share/doc/tandem/metrics.md",
    ] {
        assert!(root.path(f).exists(), "{f} is missing");
    }
    for a in ["ip", "drbd", "mount", "lvm", "script", "guest"] {
        let link = format!("/usr/lib/ocf/resource.d/tandem/{a}");
        assert_eq!(std::fs::read_link(root.path(&link)).unwrap(), Path::new("../../../../sbin/tandem"), "{link}");
        let md = root.ok(None, &[&link, "meta-data"]);
        assert!(md.contains(&format!("<resource-agent name=\"{a}\"")), "{link} meta-data: {md}");
    }
    for (d, mode) in [("/etc/tandem", 0o700), ("/var/lib/tandem", 0o700), ("/var/log/tandem", 0o750)] {
        assert_eq!(std::fs::metadata(root.path(d)).unwrap().permissions().mode() & 0o777, mode, "{d}");
    }
    // Not started: there is no configuration yet.
    assert!(root.pids().is_empty(), "a process runs in the root after install: {:?}", root.pids());
    assert!(!root.path("/run/tandem/tandem.pid").exists());
    assert!(root.ok(None, &["tandem", "version"]).starts_with(&format!("tandem {}", env!("CARGO_PKG_VERSION"))));

    // The example configuration, with a key made there, on a node whose eth0 is 192.0.2.1.
    let ns = Netns::new(format!("tdeb{}", unique()));
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    ns.link("eth0", true);
    ns.link("eth0p", true);
    root.ok(None, &["tandem", "keygen"]);
    assert_eq!(std::fs::metadata(root.path("/etc/tandem/authkey")).unwrap().permissions().mode() & 0o777, 0o600);
    let ex = "/usr/share/doc/tandem/examples/tandem.conf";
    let out = root.ok(Some(ns.name()), &["tandem", "check-config", "-c", ex, "--node", "alpha"]);
    assert!(out.contains("OK: cluster demo, node alpha (peer beta)"), "{out}");

    // The daemon, through the init script; it takes the group once initdead has passed alone.
    std::fs::copy(root.path(ex), root.path("/etc/tandem/tandem.conf")).unwrap();
    // The root has no syslog daemon; the example logs to the package's log directory.
    let out = root.ok(Some(ns.name()), &["env", "TANDEM_NODE=alpha", "/etc/init.d/tandem", "start"]);
    assert!(!out.contains("logs nowhere once detached"), "{out}");
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || ns.has_addr("192.0.2.50")),
        "the daemon never took the group"
    );
    let log = root.path("/var/log/tandem/tandem.log");
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("web"))),
        "nothing about the group in {}: {:?}",
        log.display(),
        std::fs::read_to_string(&log)
    );
    // The daemon keeps nothing of its starter but what it opened itself: no inherited
    // descriptor above stderr (pipes of the shell that started it, a make jobserver).
    let daemon = *root.pids().first().expect("the daemon runs");
    for e in std::fs::read_dir(format!("/proc/{daemon}/fd")).unwrap().flatten() {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        let t = target.to_string_lossy();
        assert!(
            !t.starts_with("pipe:") && !t.contains("tandem-deb-out-"),
            "the daemon holds a descriptor of its starter: fd {:?} -> {t}",
            e.file_name()
        );
    }
    // Removal stops it (a chroot has no init system: invoke-rc.d blocks, prerm stops it itself),
    // and it releases the group first.
    let out = root.ok(Some(ns.name()), &["dpkg", "-r", "tandem"]);
    assert!(root.pids().is_empty(), "still running after dpkg -r: {out}");
    assert!(!ns.has_addr("192.0.2.50"), "the group was not released");
    assert!(root.path("/etc/tandem/tandem.conf").exists(), "remove keeps the configuration");
    assert!(!root.path("/usr/sbin/tandem").exists());

    // Purge leaves nothing behind.
    root.ok(None, &["dpkg", "--purge", "tandem"]);
    let after = root.files();
    let added: Vec<&String> = after.difference(&before).collect();
    let removed: Vec<&String> = before.difference(&after).collect();
    assert!(added.is_empty() && removed.is_empty(), "left behind: {added:?}; gone: {removed:?}");
    eprintln!("deb test: {:?} in all", t0.elapsed());
}
