//! Network namespaces: a named namespace with a Drop guard ([`Netns`]); code on a thread
//! inside one ([`in_netns`], [`spawn_in_netns`]) or inside a fresh private one
//! ([`in_new_netns`]); two namespaces joined by veth pairs ([`Pair`]). The host's own
//! namespace is never touched: veths are created inside a test namespace.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{run, stdout, unique, wait_for};

/// Runs `f` on a thread that has entered the named network namespace `ns`
/// (`/run/netns/NS`); sockets it opens stay there, the caller's thread stays where it is.
/// A panic in `f` is the caller's panic.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {ns}: {e}"));
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Starts `f` on a background thread inside network namespace `ns` (a server, a capture),
/// for the caller to join.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
}

/// Runs `f` on a thread of its own in a fresh, private network namespace (only `lo`, down,
/// no addresses); the namespace goes away with the thread. Needs root.
pub fn in_new_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
                panic!("unshare(CLONE_NEWNET): {e} (these tests need root)");
            }
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// A named network namespace with `lo` up; on drop every process in it is killed and it is
/// deleted (which also removes its veths).
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: String) -> Netns {
        run(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `ip netns exec NS ARGS…`; panics on failure.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", &self.0];
        v.extend_from_slice(args);
        run(&v)
    }

    /// `ip -n NS ARGS…`; panics on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.0];
        v.extend_from_slice(args);
        stdout(&run(&v))
    }

    /// Runs `f` on a thread that has joined this namespace (network only; the rest of the
    /// process is untouched).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.0, f)
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
        let s = self.ip(&["-o", "link", "show", iface]);
        let mut it = s.split_whitespace();
        while let Some(w) = it.next() {
            if w == "link/ether" {
                return it.next().unwrap_or("").to_string();
            }
        }
        panic!("no MAC for {iface} in {s}");
    }

    pub fn link(&self, iface: &str, up: bool) {
        self.ip(&["link", "set", iface, if up { "up" } else { "down" }]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Two namespaces `a` and `b` joined directly (no bridge) by `n` veth pairs, link `i` being
/// `a_if(i)` in `a` and `b_if(i)` in `b`, named `TAG<unique>a<i>` / `TAG<unique>b<i>`.
/// The caller adds addresses, then calls [`Pair::up`]. Deleting the namespaces on drop
/// removes the veths.
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
    links: Vec<(String, String)>,
}

impl Pair {
    pub fn new(tag: &str, n: usize) -> Pair {
        let id = unique();
        let a = Netns::new(format!("t{tag}A{id}"));
        let b = Netns::new(format!("t{tag}B{id}"));
        let links: Vec<(String, String)> =
            (0..n).map(|i| (format!("{tag}{id}a{i}"), format!("{tag}{id}b{i}"))).collect();
        for (x, y) in &links {
            a.ip(&["link", "add", x, "type", "veth", "peer", "name", y, "netns", b.name()]);
        }
        Pair { a, b, links }
    }

    /// Link `i`'s interface in `a`.
    pub fn a_if(&self, i: usize) -> &str {
        &self.links[i].0
    }

    /// Link `i`'s interface in `b`.
    pub fn b_if(&self, i: usize) -> &str {
        &self.links[i].1
    }

    /// Sets every link up on both ends and waits (at most 5 s) for carrier: before that,
    /// IPv6 input on a new device drops neighbour discovery.
    pub fn up(&self) {
        for (x, y) in &self.links {
            self.a.link(x, true);
            self.b.link(y, true);
        }
        let carrier = |ns: &Netns, dev: &str| ns.ip(&["-o", "link", "show", "dev", dev]).contains("state UP");
        let all_up = || self.links.iter().all(|(x, y)| carrier(&self.a, x) && carrier(&self.b, y));
        let t0 = Instant::now();
        assert!(
            wait_for(Duration::from_secs(5), Duration::from_millis(10), all_up),
            "veths did not come up in {:?}",
            t0.elapsed()
        );
    }
}
