//! Guest test helpers: a busybox-static guest root, the static escape probe, and a rig
//! that drives `examples/guest_ctl` inside a test network namespace, with unique names
//! (guest, run directory, cgroup parent, namespaces) removed on drop.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{repo, run, unique, wait_for, Netns, TempDir};

/// target/ of this build (the test binary is target/<profile>/deps/NAME-HASH).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| repo().join("target"))
}

/// The static escape probe, built once per test run.
pub fn static_probe() -> PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let t = target_dir();
    ONCE.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--release", "--example", "guest_probe", "--target", "x86_64-unknown-linux-gnu"])
            .arg("--target-dir")
            .arg(&t)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .current_dir(repo())
            .status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "cannot build examples/guest_probe (static)");
    });
    t.join("x86_64-unknown-linux-gnu/release/examples/guest_probe")
}

/// `examples/guest_ctl` (the guest API on the command line), built once per test run.
pub fn guest_ctl() -> PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let t = target_dir();
    ONCE.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "guest_ctl"])
            .arg("--target-dir")
            .arg(&t)
            .current_dir(repo())
            .status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "cannot build examples/guest_ctl");
    });
    t.join("debug/examples/guest_ctl")
}

/// A guest root directory made of busybox-static (every applet linked), `/probe`, a
/// `/guest-marker`, `/www/index.html`, and a host-only marker file next to it.
pub struct GuestRoot {
    pub dir: TempDir,
    pub root: PathBuf,
    pub host_marker: PathBuf,
}

impl GuestRoot {
    pub fn busybox() -> GuestRoot {
        let dir = TempDir::new("guest");
        // The parent of a guest root is a barrier: no other user may walk into the root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let root = dir.path().join("root");
        for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "var", "www"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let bb = Command::new("sh").args(["-c", "command -v busybox"]).output().unwrap();
        let bb = String::from_utf8_lossy(&bb.stdout).trim().to_string();
        std::fs::copy(&bb, root.join("bin/busybox")).unwrap();
        let list = run(&[&bb, "--list-full"]);
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let p = root.join(applet);
            if !p.exists() && p.symlink_metadata().is_err() {
                std::os::unix::fs::symlink("/bin/busybox", &p).unwrap();
            }
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\ntty:x:5:\n").unwrap();
        std::fs::write(root.join("guest-marker"), "guest\n").unwrap();
        std::fs::write(root.join("www/index.html"), "hello from the guest\n").unwrap();
        std::fs::copy(static_probe(), root.join("probe")).unwrap();
        let host_marker = dir.path().join("host-marker");
        std::fs::write(&host_marker, "host only\n").unwrap();
        GuestRoot { dir, root, host_marker }
    }

    /// Writes a file in the guest root with `mode`.
    pub fn write(&self, path: &str, text: &str, mode: u32) {
        let p = self.root.join(path.trim_start_matches('/'));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A file of the guest root, read from the host.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root.join(path.trim_start_matches('/'))).unwrap_or_default()
    }

    /// An init script that stops at once on SIGTERM, runs `body` first.
    pub fn script_init(&self, body: &str) -> String {
        self.write(
            "/init.sh",
            &format!("#!/bin/sh\ntrap 'exit 0' TERM\n{body}\nwhile :; do sleep 1 & wait $!; done\n"),
            0o755,
        );
        "init=/init.sh::stop_signal=SIGTERM".to_string()
    }
}

/// One guest driven through `guest_ctl`, optionally inside a network namespace; stopped
/// (and its cgroups, cgroup parent and namespace removed) on drop.
pub struct GuestRig {
    pub name: String,
    pub spec: String,
    pub run_dir: TempDir,
    pub cgroup_parent: String,
    pub netns: Option<Netns>,
}

impl GuestRig {
    /// `options` are the `::`-separated options after ROOTDIR (may be empty).
    pub fn new(root: &GuestRoot, options: &str, netns: Option<Netns>) -> GuestRig {
        let id = unique();
        let name = format!("g{id}");
        let spec = if options.is_empty() {
            format!("{name}::{}", root.root.display())
        } else {
            format!("{name}::{}::{options}", root.root.display())
        };
        GuestRig { name, spec, run_dir: TempDir::new("guestrun"), cgroup_parent: format!("tandem-test-{id}"), netns }
    }

    /// guest_ctl with this rig's directories, in its namespace.
    pub fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{}", ns.name())).arg("--").arg(guest_ctl());
                c
            }
            None => Command::new(guest_ctl()),
        };
        c.arg("--run-dir").arg(self.run_dir.path()).args(["--cgroup-parent", &self.cgroup_parent]).args(args);
        c
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn start(&self) -> Output {
        self.ctl(&["start", &self.spec])
    }
    pub fn start_ok(&self) {
        let o = self.start();
        assert!(o.status.success(), "start {}: {}{}\nconsole:\n{}", self.spec, out(&o), err(&o), self.console());
    }
    pub fn stop(&self) -> Output {
        self.ctl(&["stop", &self.spec])
    }
    pub fn running(&self) -> bool {
        self.ctl(&["status", &self.spec]).status.code() == Some(0)
    }
    pub fn enter(&self, cmd: &[&str]) -> Output {
        let mut a = vec!["enter", self.name.as_str()];
        a.extend_from_slice(cmd);
        self.ctl(&a)
    }
    /// The guest's cgroup directories (`2 PATH` / `1 CTL PATH` lines), while it runs.
    pub fn cgroups(&self) -> Vec<(bool, PathBuf)> {
        let o = self.ctl(&["cgroups", &self.name]);
        assert!(o.status.success(), "cgroups: {}", err(&o));
        out(&o)
            .lines()
            .filter_map(|l| {
                let v2 = l.starts_with("2 ");
                let path = l.rsplit(' ').next()?;
                Some((v2, PathBuf::from(path)))
            })
            .collect()
    }
    /// The cgroup directory of one v1 controller (or the v2 one for "").
    pub fn cgroup_of(&self, controller: &str) -> PathBuf {
        let o = self.ctl(&["cgroups", &self.name]);
        out(&o)
            .lines()
            .find_map(|l| {
                let mut w = l.splitn(3, ' ');
                let kind = w.next()?;
                if controller.is_empty() {
                    return (kind == "2").then(|| PathBuf::from(w.next().unwrap_or("")));
                }
                let ctl = w.next()?;
                let path = w.next()?;
                (kind == "1" && ctl.split(',').any(|c| c == controller)).then(|| PathBuf::from(path))
            })
            .unwrap_or_else(|| panic!("no {controller} cgroup for {}", self.name))
    }
    pub fn state_value(&self, key: &str) -> Option<String> {
        let t = std::fs::read_to_string(self.run_dir.path().join(&self.name).join("state")).ok()?;
        t.lines().find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
    }
    pub fn init_pid(&self) -> i32 {
        self.state_value("init_pid").and_then(|p| p.parse().ok()).expect("no init pid: not running")
    }
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.run_dir.path().join(&self.name).join("console")).unwrap_or_default()
    }
    pub fn ended(&self) -> String {
        std::fs::read_to_string(self.run_dir.path().join(&self.name).join("ended")).unwrap_or_default()
    }
    /// Waits (bounded) until the guest no longer runs.
    pub fn wait_stopped(&self, within: Duration) -> bool {
        wait_for(within, Duration::from_millis(50), || !self.running())
    }
    /// The cgroup directories a guest of this name would have on this host.
    pub fn possible_cgroups(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for h in ["unified", "memory", "cpu", "cpuacct", "pids", ""] {
            let base =
                if h.is_empty() { PathBuf::from("/sys/fs/cgroup") } else { PathBuf::from("/sys/fs/cgroup").join(h) };
            v.push(base.join(&self.cgroup_parent).join(&self.name));
        }
        v
    }
}

impl Drop for GuestRig {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop", &format!("{}::/nonexistent::stop_timeout=0", self.name)]);
        // Whatever is left (a failed test): kill and remove.
        for p in self.possible_cgroups() {
            if let Ok(t) = std::fs::read_to_string(p.join("cgroup.procs")) {
                for pid in t.split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = wait_for(Duration::from_secs(2), Duration::from_millis(20), || {
                std::fs::remove_dir(&p).is_ok() || !p.exists()
            });
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `(value of line "NAME VALUE")` in the probe's output.
pub fn probe_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then_some(v)
    })
}

/// A network namespace with a veth to a client namespace: `ns` holds `vh`
/// (192.0.2.1/24), the client holds `vc` (192.0.2.100/24).
pub struct NetPair {
    pub client: Netns,
}

pub fn net_pair() -> (Netns, NetPair) {
    let id = unique();
    let host = Netns::new(format!("tgh{id}"));
    let client = Netns::new(format!("tgc{id}"));
    run(&["ip", "-n", host.name(), "link", "add", "vh", "type", "veth", "peer", "name", "vc", "netns", client.name()]);
    run(&["ip", "-n", host.name(), "addr", "add", "192.0.2.1/24", "dev", "vh"]);
    run(&["ip", "-n", client.name(), "addr", "add", "192.0.2.100/24", "dev", "vc"]);
    host.link("vh", true);
    client.link("vc", true);
    (host, NetPair { client })
}

/// One HTTP GET from the client namespace (socat, bounded by `timeout`): the body of a
/// 200 answer. (busybox-static's wget crashes on some hosts.)
pub fn http_get(client: &Netns, url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let hostport = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
    let mut c = Command::new("ip")
        .args(["netns", "exec", client.name(), "timeout", "3", "socat", "-T", "2", "-"])
        .arg(format!("TCP:{hostport},connect-timeout=2"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        let mut stdin = c.stdin.take()?;
        let _ = write!(stdin, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n");
    }
    let o = c.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Polls `http_get` until it answers, up to `within`.
pub fn http_get_within(client: &Netns, url: &str, within: Duration) -> Option<String> {
    let end = Instant::now() + within;
    loop {
        if let Some(s) = http_get(client, url) {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The inode of `/proc/PID/ns/KIND` (`None` when the process is gone).
pub fn ns_inode(pid: i32, kind: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok().map(|p| p.display().to_string())
}

/// Every live pid whose namespace `kind` is `inode`.
pub fn pids_in_ns(kind: &str, inode: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|p| ns_inode(*p, kind).as_deref() == Some(inode))
                .collect()
        })
        .unwrap_or_default()
}

/// Mount points of this (host) mount namespace under `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&d))
        .collect()
}
