//! The two-node test rig: network namespaces for a bridge, two nodes and a client; tandem
//! daemons run as real processes inside them ([`Node`]). Everything a test creates has a
//! unique name and is removed by Drop guards, even when the test fails.
//!
//! ```text
//!   alpha ns: lan0 192.0.2.1   ──┐
//!   beta ns:  lan0 192.0.2.2   ──┼── bridge ns (br0)      floating address 192.0.2.50
//!   client ns: lan0 192.0.2.100 ─┘
//!   alpha ns: hb0 198.51.100.1 ──── beta ns: hb0 198.51.100.2   (dedicated heartbeat link)
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{repo, run, stdout, tandem, unique, wait_for, Netns, TempDir};

pub const FLOAT: &str = "192.0.2.50";
pub const PORT: u16 = 8080;

/// Bridge + two nodes + client, wired as drawn at the top of this file.
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

    /// Turns `realtime on` in a configuration written by [`Rig::config`], as installed: the
    /// loop at SCHED_FIFO, so that many children (or clients) on the test machine's CPUs
    /// cannot push it back.
    pub fn realtime(&self, config: &Path) {
        let text = std::fs::read_to_string(config).unwrap().replace("realtime off", "realtime on");
        std::fs::write(config, text).unwrap();
    }

    /// The service group used by most tests: floating address + the TCP service.
    pub fn web_group(&self, preferred: &str) -> String {
        format!(
            "group web {preferred} ip::{FLOAT}/24/lan0 script::{}::{FLOAT}::{PORT}::-::{}",
            repo().join("tests/tools/svc").display(),
            self.dir.path().join("run").display()
        )
    }

    /// `n` groups `g00`, `g01`, … preferred by `preferred`, each one script resource that
    /// only marks a file (cheap operations): a configuration with many groups, many
    /// transitions and a long `status`.
    pub fn flag_groups(&self, n: usize, preferred: &str) -> String {
        let s = super::script(
            self.dir.path(),
            "flag",
            r#"f="$(dirname "$0")/on-$(ip netns identify $$)-$1"
case "$2" in start) touch "$f" ;; stop) rm -f "$f" ;; status) [ -e "$f" ] || exit 3 ;; esac
exit 0"#,
        );
        (0..n).map(|i| format!("group g{i:02} {preferred} script::{}::g{i:02}\n", s.display())).collect()
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
        // The summary lines start with '#' ("# ok 0 fail 1").
        stdout(&o).lines().filter(|l| !l.starts_with('#')).find_map(|l| {
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

    /// The daemon's log (lossy: a line cut by the log's bounded buffer may split a character).
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
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

/// Waits until every node's partition slot is settled (`status`: its holdings and its view
/// of the peer's unchanged for the settling window), so that a partition or a freeze now
/// meets the slots of docs/fencing.md rather than the longer ones kept right after a change.
pub fn wait_fence_settled(nodes: &[&Node], timeout: Duration) -> bool {
    wait_for(timeout, Duration::from_millis(10), || {
        nodes.iter().all(|n| n.status().is_some_and(|s| s["peers"][0]["fencing"]["settled"] == true))
    })
}

/// Waits until `node` reports group `g` with this owner and state.
pub fn wait_group(node: &Node, g: &str, owner: &str, state: &str, timeout: Duration) -> bool {
    wait_for(timeout, Duration::from_millis(10), || {
        node.group(g).is_some_and(|v| v["owner"] == owner && v["state"] == state)
    })
}
