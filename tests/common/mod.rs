//! The two-node test rig: network namespaces for a bridge, two nodes and a client;
//! tandem daemons run as real processes inside them. Everything a test creates has a
//! unique name and is removed by Drop guards, even when the test fails.
//!
//! Addresses (DESIGN.md §4): service LAN 192.0.2.0/24 (alpha .1, beta .2, client .100,
//! floating .50), dedicated heartbeat link 198.51.100.0/24 (alpha .1, beta .2).
#![allow(dead_code)]

pub mod bmc;
pub mod guest;
pub mod hbfix;
pub mod hbmixed;
pub mod hbrig;
pub mod relay;
pub mod rmcp_bmc;
mod rng;
#[allow(unused_imports)] // not every test crate draws random numbers
pub use rng::Rng;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const FLOAT: &str = "192.0.2.50";
pub const PORT: u16 = 8080;

pub fn tandem() -> &'static str {
    env!("CARGO_BIN_EXE_tandem")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when the test may run. A missing tool is a failure in CI, a skip elsewhere.
pub fn require(tools: &[&str]) -> bool {
    for t in tools {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("prerequisite {t} is missing (scripts/prereqs test installs it)");
            }
            eprintln!("SKIP: {t} is not installed");
            return false;
        }
    }
    if !nix_is_root() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("these tests need root");
        }
        eprintln!("SKIP: not root");
        return false;
    }
    true
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short unique token (fits interface and namespace names).
pub fn unique() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{}{}", std::process::id() % 100_000, n)
}

pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    if !out.status.success() {
        panic!("{args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    out
}

pub fn try_run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn sh(cmd: &str) -> Output {
    run(&["sh", "-c", cmd])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls `f` every `every` until it is true or `timeout` passes.
pub fn wait_for(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("tandem-{tag}-{}", unique()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var("TANDEM_KEEP_TEST_DIRS").is_err() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A network namespace; on drop every process in it is killed and it is deleted.
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: String) -> Netns {
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }
    pub fn name(&self) -> &str {
        &self.0
    }
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", &self.0];
        v.extend_from_slice(args);
        run(&v)
    }
    pub fn kill_all(&self) {
        let out = Command::new("ip").args(["netns", "pids", &self.0]).output();
        if let Ok(o) = out {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
    pub fn has_addr(&self, addr: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.0, "-o", "addr", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().any(|w| w.split('/').next() == Some(addr)))
            .unwrap_or(false)
    }
    pub fn mac(&self, iface: &str) -> String {
        let o = run(&["ip", "-n", &self.0, "-o", "link", "show", iface]);
        let s = stdout(&o);
        let mut it = s.split_whitespace();
        while let Some(w) = it.next() {
            if w == "link/ether" {
                return it.next().unwrap_or("").to_string();
            }
        }
        panic!("no MAC for {iface} in {s}");
    }
    pub fn link(&self, iface: &str, up: bool) {
        run(&["ip", "-n", &self.0, "link", "set", iface, if up { "up" } else { "down" }]);
    }
    /// `ip -n NS ARGS…`; panics on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.0];
        v.extend_from_slice(args);
        stdout(&run(&v))
    }
    /// Runs `f` on a thread that has joined this namespace (network only; the rest of the
    /// process is untouched).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        use std::os::fd::AsFd;
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Bridge + two nodes + client, wired as described at the top of this file.
pub struct Rig {
    pub id: String,
    pub dir: TempDir,
    pub a: Netns,
    pub b: Netns,
    pub c: Netns,
    pub br: Netns,
}

impl Rig {
    pub fn new() -> Rig {
        let id = unique();
        let dir = TempDir::new("rig");
        let br = Netns::new(format!("tbr{id}"));
        let a = Netns::new(format!("ta{id}"));
        let b = Netns::new(format!("tb{id}"));
        let c = Netns::new(format!("tc{id}"));
        let brn = br.name().to_string();
        run(&["ip", "-n", &brn, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &brn, "link", "set", "br0", "up"]);
        for (ns, port, addr) in [(&a, "pa", "192.0.2.1/24"), (&b, "pb", "192.0.2.2/24"), (&c, "pc", "192.0.2.100/24")] {
            run(&["ip", "-n", ns.name(), "link", "add", "lan0", "type", "veth", "peer", "name", port, "netns", &brn]);
            run(&["ip", "-n", &brn, "link", "set", port, "master", "br0"]);
            run(&["ip", "-n", &brn, "link", "set", port, "up"]);
            run(&["ip", "-n", ns.name(), "addr", "add", addr, "dev", "lan0"]);
            run(&["ip", "-n", ns.name(), "link", "set", "lan0", "up"]);
        }
        run(&["ip", "-n", a.name(), "link", "add", "hb0", "type", "veth", "peer", "name", "hb0", "netns", b.name()]);
        run(&["ip", "-n", a.name(), "addr", "add", "198.51.100.1/24", "dev", "hb0"]);
        run(&["ip", "-n", b.name(), "addr", "add", "198.51.100.2/24", "dev", "hb0"]);
        a.link("hb0", true);
        b.link("hb0", true);
        Rig { id, dir, a, b, c, br }
    }

    /// Writes the shared config (and key) and returns its path.
    /// `extra` is appended (e.g. group lines, timing overrides).
    pub fn config(&self, timing: &str, extra: &str) -> PathBuf {
        self.config_links(
            "ucast lan0 192.0.2.1\nucast lan0 192.0.2.2\nucast hb0 198.51.100.1\nucast hb0 198.51.100.2",
            timing,
            extra,
        )
    }

    /// Like [`Rig::config`] with explicit link lines.
    pub fn config_links(&self, links: &str, timing: &str, extra: &str) -> PathBuf {
        let key = self.dir.path().join("authkey");
        if !key.exists() {
            let o = Command::new(tandem()).arg("keygen").arg(&key).output().unwrap();
            assert!(o.status.success(), "keygen: {}", String::from_utf8_lossy(&o.stderr));
        }
        let cfg = format!(
            "cluster rig{id}\nnode alpha beta\nauthkey {key}\n{timing}\nrealtime off\n{links}\n\
             logfile -\nlogfacility none\n{extra}\n",
            id = self.id,
            key = key.display()
        );
        let p = self.dir.path().join(format!("tandem{}.conf", unique()));
        std::fs::write(&p, cfg).unwrap();
        p
    }

    /// The service group used by most tests: floating address + the TCP service.
    pub fn web_group(&self, preferred: &str) -> String {
        format!(
            "group web {preferred} ip::{FLOAT}/24/lan0 script::{}::{FLOAT}::{PORT}::-::{}",
            repo().join("tests/tools/svc").display(),
            self.dir.path().join("run").display()
        )
    }

    pub fn node(&self, name: &str, config: &Path) -> Node {
        let ns = if name == "alpha" { self.a.name() } else { self.b.name() };
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Node {
            name: name.to_string(),
            ns: ns.to_string(),
            config: config.to_path_buf(),
            sock: dir.join("tandem.sock"),
            log: dir.join("log"),
            dir,
            bin: PathBuf::from(tandem()),
            child: None,
        }
    }

    pub fn ns(&self, name: &str) -> &Netns {
        if name == "alpha" {
            &self.a
        } else {
            &self.b
        }
    }

    /// Starts the prober in the client namespace; returns its child (stdout to `out`).
    pub fn probe(&self, out: &Path, duration_ms: u64, stop_file: &Path) -> Child {
        let f = std::fs::File::create(out).unwrap();
        Command::new("ip")
            .args(["netns", "exec", self.c.name()])
            .arg(probe_bin())
            .arg(format!("{FLOAT}:{PORT}"))
            .args([
                "--interval-ms",
                "10",
                "--timeout-ms",
                "50",
                "--duration-ms",
                &duration_ms.to_string(),
                "--until-file",
            ])
            .arg(stop_file)
            .stdout(f)
            .spawn()
            .unwrap()
    }

    /// One TCP request from the client: the serving node's name, if any.
    pub fn ask(&self) -> Option<String> {
        let o = Command::new("ip")
            .args(["netns", "exec", self.c.name()])
            .arg(probe_bin())
            .arg(format!("{FLOAT}:{PORT}"))
            .args(["--interval-ms", "10", "--timeout-ms", "300", "--duration-ms", "1"])
            .output()
            .ok()?;
        stdout(&o).lines().find_map(|l| {
            let mut w = l.split_whitespace();
            let _t = w.next()?;
            (w.next()? == "ok").then(|| w.next().unwrap_or("").to_string())
        })
    }
}

pub fn probe_bin() -> PathBuf {
    // Built by `cargo test` as an example? Not automatically: build it once here.
    static ONCE: std::sync::Once = std::sync::Once::new();
    // The test binary is target/<profile>/deps/NAME-HASH, wherever CARGO_TARGET_DIR points.
    let p = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("examples/probe")))
        .unwrap_or_else(|| repo().join("target/debug/examples/probe"));
    ONCE.call_once(|| {
        let st =
            Command::new(env!("CARGO")).args(["build", "--quiet", "--example", "probe"]).current_dir(repo()).status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "cannot build examples/probe");
    });
    p
}

/// A tandem daemon in a node namespace (killed on drop).
pub struct Node {
    pub name: String,
    pub ns: String,
    pub config: PathBuf,
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub log: PathBuf,
    /// The tandem binary this node runs (this build's, unless a test runs another release).
    pub bin: PathBuf,
    pub child: Option<Child>,
}

impl Node {
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already started", self.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(&self.bin)
            .args(["daemon", "--foreground", "-c"])
            .arg(&self.config)
            .args(["--node", &self.name, "--socket"])
            .arg(&self.sock)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--pidfile")
            .arg(self.dir.join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let sock = self.sock.clone();
        assert!(
            wait_for(Duration::from_secs(10), Duration::from_millis(10), || sock.exists()),
            "{}: control socket never appeared; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `tandem ARGS -s SOCK`; returns (exit code, stdout+stderr).
    pub fn ctl(&self, args: &[&str]) -> (i32, String) {
        let o = Command::new(tandem()).args(args).arg("-s").arg(&self.sock).output().unwrap();
        (o.status.code().unwrap_or(-1), format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)))
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        let (code, out) = self.ctl(&["status", "--json"]);
        if code != 0 {
            return None;
        }
        serde_json::from_str(&out).ok()
    }

    pub fn peer_state(&self) -> String {
        self.status().and_then(|s| s["peers"][0]["state"].as_str().map(String::from)).unwrap_or_default()
    }

    pub fn group(&self, g: &str) -> Option<serde_json::Value> {
        let s = self.status()?;
        s["groups"].as_array()?.iter().find(|x| x["name"] == g).cloned()
    }

    /// Sends a signal to the daemon (the `ip netns exec` child execs tandem, so its pid is tandem's).
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status();
        }
    }

    /// Waits (bounded) for the daemon process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return st.code();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- log of {} -----\n{}", self.name, self.log_text());
        }
    }
}

/// Watches one address in two namespaces every `every`, in one thread that owns a netlink
/// socket in each namespace, and counts samples where both hold it at once.
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<SampleStats>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SampleStats {
    pub samples: u64,
    pub both: u64,
    pub a: u64,
    pub b: u64,
    /// How often the holder changed (a → none → b counts 2).
    pub changes: u64,
}

fn netlink_in(ns: &str) -> tandem::netlink::NlSocket {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    tandem::netlink::NlSocket::new(tandem::netlink::Protocol::Route).unwrap()
}

fn holds(sock: &mut tandem::netlink::NlSocket, addr: std::net::IpAddr) -> bool {
    tandem::netlink::route::addresses(sock, None).map(|v| v.iter().any(|e| e.addr == addr)).unwrap_or(false)
}

impl Sampler {
    pub fn start(ns_a: &str, ns_b: &str, addr: &str, every: Duration) -> Sampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ns_a, ns_b) = (ns_a.to_string(), ns_b.to_string());
        let addr: std::net::IpAddr = addr.parse().unwrap();
        let st = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let mut sa = netlink_in(&ns_a);
            let mut sb = netlink_in(&ns_b);
            let _ = tx.send(());
            let mut s = SampleStats::default();
            let mut last = (false, false);
            let end = Instant::now() + Duration::from_secs(300);
            while !st.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < end {
                let a = holds(&mut sa, addr);
                let b = holds(&mut sb, addr);
                s.samples += 1;
                s.a += a as u64;
                s.b += b as u64;
                s.both += (a && b) as u64;
                if (a, b) != last && s.samples > 1 {
                    s.changes += 1;
                }
                last = (a, b);
                std::thread::sleep(every);
            }
            s
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Sampler { stop, handle: Some(handle) }
    }

    pub fn finish(mut self) -> SampleStats {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits until `node` reports group `g` with this owner and state.
pub fn wait_group(node: &Node, g: &str, owner: &str, state: &str, timeout: Duration) -> bool {
    wait_for(timeout, Duration::from_millis(10), || {
        node.group(g).is_some_and(|v| v["owner"] == owner && v["state"] == state)
    })
}

/// Writes an executable shell script into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}
