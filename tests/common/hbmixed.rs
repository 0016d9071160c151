//! A two-node haresources cluster of "machines" (tests/common/hbrig.rs: each node its own
//! network, mount, UTS and PID namespaces, with a private /etc/ha.d, /var/lib/heartbeat and
//! /run), where each node runs either Debian's heartbeat 3.0.6 or tandem (`tandem daemon
//! --ha-d /etc/ha.d`) from the same files, and a client probes the service:
//!
//! ```text
//!   hn1 (lan0 192.0.2.1) ─┐                 ┌─ client (192.0.2.100)
//!                         ├─ bridge (br0) ──┤
//!   hn2 (lan0 192.0.2.2) ─┘                 │
//!   hn1 /dev/pts/A ══ relay (null modem) ══ /dev/pts/B hn2
//! ```
//!
//! haresources: `hn1 IPaddr::192.0.2.50/24/lan0 websvc` — the floating address and a real TCP
//! service on it (tests/tools/svc behind a heartbeat-style resource.d script, whose `status`
//! prints `running` or `stopped`). Both links (UDP and serial) are optional.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::hbrig::{HbMachine, HB};
use super::relay::{Faults, Pty, Relay};
use super::{probe_bin, repo, run, stdout, tandem, unique, wait_for, Netns};

pub const FLOAT: &str = "192.0.2.50";
pub const PORT: u16 = 8080;
pub const NAMES: [&str; 2] = ["hn1", "hn2"];

/// authkeys files of the three methods.
pub const SHA1: &str = "auth 1\n1 sha1 tandem-mixed-cluster-key\n";
pub const MD5: &str = "auth 2\n2 md5 tandem-mixed-md5-key\n";
pub const CRC: &str = "auth 3\n3 crc\n";

/// The haresources line of the service.
pub const HARESOURCES: &str = "hn1 IPaddr::192.0.2.50/24/lan0 websvc\n";

/// Who runs on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Heartbeat,
    Tandem,
    Nobody,
}

/// The cluster's shape.
pub struct Opts {
    pub authkeys: &'static str,
    pub failback: &'static str,
    pub udp: bool,
    pub serial: bool,
    /// Timing lines (ha.cf syntax).
    pub timing: &'static str,
    pub haresources: &'static str,
    /// Use these files unchanged instead: tests/fixtures/hb/configs/NAME/hnX/{ha.cf,
    /// haresources,authkeys} (heartbeat's captures; their interface is veth0, their paths are
    /// under /tmp/hbwire and /tmp/hbcap, private to each machine).
    pub fixture: Option<&'static str>,
    /// The LAN interface's name in each machine.
    pub iface: &'static str,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            authkeys: SHA1,
            failback: "on",
            udp: true,
            serial: true,
            timing: "keepalive 1\ndeadtime 5\nwarntime 3\ninitdead 10\n",
            haresources: HARESOURCES,
            fixture: None,
            iface: "lan0",
        }
    }
}

/// Where heartbeat's captured configurations keep their files (a tmpfs in each machine).
const FIXTURE_DIRS: [&str; 2] = ["/tmp/hbwire", "/tmp/hbcap"];
/// Clusters of this process using those mount points.
static FIXTURE_USERS: std::sync::Mutex<u32> = std::sync::Mutex::new(0);

pub struct Mixed {
    pub id: String,
    pub br: Netns,
    pub c: Netns,
    pub m: [HbMachine; 2],
    pub who: [Who; 2],
    ptys: Option<(Pty, Pty)>,
    relay: Option<Relay>,
    iface: &'static str,
    fixture: bool,
}

impl Drop for Mixed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, name) in NAMES.iter().enumerate() {
                eprintln!("----- log of {name} -----\n{}", self.log(i));
            }
        }
        for m in self.m.iter_mut() {
            m.kill();
        }
        if self.fixture {
            // The fixtures' mount points (empty), once no machine of this process uses them.
            let mut n = FIXTURE_USERS.lock().unwrap();
            *n -= 1;
            if *n == 0 {
                for top in FIXTURE_DIRS {
                    let _ = std::fs::remove_dir(top);
                }
            }
        }
    }
}

/// The heartbeat-style wrapper of tests/tools/svc (`status` judged by what it prints).
fn websvc() -> String {
    let svc = repo().join("tests/tools/svc");
    format!(
        "#!/bin/sh\n# haresources: websvc (heartbeat-style: `status` prints running/stopped)\n\
         svc={}\nop=$1\n[ $# -ge 2 ] && op=$2\n\
         case \"$op\" in\n  status) if $svc {FLOAT} {PORT} - /run/websvc status; then echo running; else echo stopped; fi; exit 0;;\n\
         \x20 *) exec $svc {FLOAT} {PORT} - /run/websvc \"$op\";;\nesac\n",
        svc.display()
    )
}

impl Mixed {
    pub fn new(o: &Opts) -> Mixed {
        let id = unique();
        let br = Netns::new(format!("tmb{id}"));
        let c = Netns::new(format!("tmc{id}"));
        let m = [HbMachine::new("hn1", &format!("m1{id}")), HbMachine::new("hn2", &format!("m2{id}"))];
        run(&["ip", "-n", br.name(), "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", br.name(), "link", "set", "br0", "up"]);
        let client_port = format!("pc{id}");
        run(&[
            "ip",
            "-n",
            c.name(),
            "link",
            "add",
            "lan0",
            "type",
            "veth",
            "peer",
            "name",
            &client_port,
            "netns",
            br.name(),
        ]);
        run(&["ip", "-n", br.name(), "link", "set", &client_port, "master", "br0", "up"]);
        run(&["ip", "-n", c.name(), "addr", "add", "192.0.2.100/24", "dev", "lan0"]);
        c.link("lan0", true);
        let ptys = o.serial.then(|| (Pty::new(), Pty::new()));
        let mut x = Mixed {
            id,
            br,
            c,
            m,
            who: [Who::Nobody; 2],
            ptys,
            relay: None,
            iface: o.iface,
            fixture: o.fixture.is_some(),
        };
        for i in 0..2 {
            x.wire(i);
        }
        if let Some((a, b)) = &x.ptys {
            let relay =
                Relay::start(a.master.try_clone().unwrap(), b.master.try_clone().unwrap(), Faults::default(), 7);
            x.relay = Some(relay);
        }
        for i in 0..2 {
            // heartbeat's command names, as links to tandem (what `make install HB_LINKS=1` makes).
            let bin = x.m[i].dir.path().join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for name in ["cl_status", "hb_standby", "hb_takeover"] {
                std::os::unix::fs::symlink(tandem(), bin.join(name)).unwrap();
            }
        }
        if let Some(f) = o.fixture {
            x.fixture(f);
            return x;
        }
        for i in 0..2 {
            let d = x.m[i].dir.path().display().to_string();
            let mut media = String::new();
            if o.udp {
                media.push_str("udpport 694\nucast lan0 192.0.2.1\nucast lan0 192.0.2.2\n");
            }
            if let Some((a, b)) = &x.ptys {
                let p = if i == 0 { &a.path } else { &b.path };
                media.push_str(&format!("baud 19200\nserial {}\n", p.display()));
            }
            x.m[i].write_etc(
                "ha.cf",
                &format!(
                    "logfile {d}/log/ha-log\ndebugfile {d}/log/ha-debug\nlogfacility none\nuse_logd no\n{}{media}\
                     auto_failback {}\nnode hn1\nnode hn2\ncrm off\n",
                    o.timing, o.failback
                ),
                0o644,
            );
            x.m[i].write_etc("haresources", o.haresources, 0o644);
            x.m[i].write_etc("authkeys", o.authkeys, 0o600);
            x.m[i].write_etc("resource.d/websvc", &websvc(), 0o755);
            x.m[i].boot();
        }
        x
    }

    /// The machine's LAN interface, into the bridge.
    fn wire(&self, i: usize) {
        let ns = self.m[i].ns.name();
        let port = format!("p{}{}", i + 1, self.id);
        let lan = self.iface;
        run(&["ip", "-n", ns, "link", "add", lan, "type", "veth", "peer", "name", &port, "netns", self.br.name()]);
        run(&["ip", "-n", self.br.name(), "link", "set", &port, "master", "br0", "up"]);
        run(&["ip", "-n", ns, "addr", "add", &format!("192.0.2.{}/24", i + 1), "brd", "+", "dev", lan]);
        self.m[i].ns.link(lan, true);
    }

    /// heartbeat's captured configuration files, unchanged, with what their paths need inside
    /// each machine: private /tmp/hbwire and /tmp/hbcap, the log directories, and the serial
    /// device names as links to the ptys.
    fn fixture(&mut self, name: &str) {
        let src = repo().join("tests/fixtures/hb/configs").join(name);
        {
            let mut n = FIXTURE_USERS.lock().unwrap();
            *n += 1;
            for top in FIXTURE_DIRS {
                std::fs::create_dir_all(top).unwrap();
            }
        }
        for (i, name) in NAMES.iter().enumerate() {
            let from = src.join(name);
            let cf = std::fs::read_to_string(from.join("ha.cf")).unwrap();
            self.m[i].write_etc("ha.cf", &cf, 0o644);
            self.m[i].write_etc("haresources", &std::fs::read_to_string(from.join("haresources")).unwrap(), 0o644);
            self.m[i].write_etc("authkeys", &std::fs::read_to_string(from.join("authkeys")).unwrap(), 0o600);
            self.m[i].boot();
            let mut sh = String::from("set -e\n");
            for top in FIXTURE_DIRS {
                // The mount points themselves live in the shared /tmp (empty directories).
                sh.push_str(&format!("mount -t tmpfs tmpfs {top}\n"));
            }
            for l in cf.lines() {
                let mut w = l.split_whitespace();
                match (w.next(), w.next()) {
                    (Some("logfile" | "debugfile"), Some(p)) => {
                        let dir = std::path::Path::new(p).parent().unwrap().display().to_string();
                        sh.push_str(&format!("mkdir -p {dir}\n"));
                    }
                    (Some("serial"), Some(p)) => {
                        let (a, b) = self.ptys.as_ref().expect("the fixture has a serial line: Opts::serial");
                        let pty = if i == 0 { &a.path } else { &b.path };
                        sh.push_str(&format!("ln -sf {} {p}\n", pty.display()));
                    }
                    _ => {}
                }
            }
            let o = self.m[i].exec(&["sh", "-c", &sh], Duration::from_secs(10));
            assert!(o.status.success(), "{sh}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }

    /// The log file of machine `i` as ha.cf names it (fixtures: inside the machine's /tmp).
    fn logfile(&self, i: usize) -> Option<String> {
        let cf = std::fs::read_to_string(self.m[i].dir.path().join("etc-ha.d/ha.cf")).ok()?;
        let p = cf.lines().find_map(|l| l.strip_prefix("logfile "))?.trim().to_string();
        if p.starts_with("/tmp/hbwire") || p.starts_with("/tmp/hbcap") {
            let o = self.m[i].exec(&["cat", &p], Duration::from_secs(5));
            return Some(stdout(&o));
        }
        std::fs::read_to_string(p).ok()
    }

    pub fn ns(&self, i: usize) -> &str {
        self.m[i].ns.name()
    }

    pub fn start_heartbeat(&mut self, i: usize) {
        self.m[i].start_heartbeat();
        self.who[i] = Who::Heartbeat;
    }

    /// `heartbeat -k`: a clean stop (every group handed over first).
    pub fn stop_heartbeat(&mut self, i: usize) {
        assert!(self.m[i].stop_heartbeat(Duration::from_secs(120)), "heartbeat -k on {}:\n{}", NAMES[i], self.log(i));
        self.who[i] = Who::Nobody;
    }

    fn state_dir(&self, i: usize) -> String {
        self.m[i].dir.path().join("tandem-state").display().to_string()
    }

    /// `tandem daemon --ha-d /etc/ha.d` on machine `i` (it detaches once up).
    pub fn start_tandem(&mut self, i: usize) {
        let o = self.m[i].exec(
            &[tandem(), "daemon", "--ha-d", "/etc/ha.d", "--state-dir", &self.state_dir(i)],
            Duration::from_secs(30),
        );
        assert!(
            o.status.success(),
            "tandem did not start on {}: {}{}\n{}",
            NAMES[i],
            stdout(&o),
            String::from_utf8_lossy(&o.stderr),
            self.log(i)
        );
        self.who[i] = Who::Tandem;
    }

    /// tandem with its own protocol on machine `i`, from a tandem.conf equivalent to this
    /// cluster's ha.cf (same timings, links, group): `timing` in tandem.conf syntax.
    pub fn start_tandem_native(&mut self, i: usize, timing: &str) {
        let d = self.m[i].dir.path();
        let key = d.join("tandem-authkey");
        if !key.exists() {
            // Both nodes need the same key: made once, copied.
            let other = self.m[1 - i].dir.path().join("tandem-authkey");
            if other.exists() {
                std::fs::copy(&other, &key).unwrap();
            } else {
                let o = Command::new(tandem()).arg("keygen").arg(&key).output().unwrap();
                assert!(o.status.success());
            }
        }
        let mut links = String::from("ucast lan0 192.0.2.1\nucast lan0 192.0.2.2\n");
        if let Some((a, b)) = &self.ptys {
            let p = if i == 0 { &a.path } else { &b.path };
            links.push_str(&format!("serial {} 19200\n", p.display()));
        }
        let conf = format!(
            "cluster mixed{}\nnode hn1 hn2\nauthkey {}\n{timing}\n{links}logfile {}/log/ha-log\nlogfacility none\n\
             group web hn1 IPaddr::{FLOAT}/24/lan0 script::{}::{FLOAT}::{PORT}::-::/run/websvc\n",
            self.id,
            key.display(),
            d.display(),
            repo().join("tests/tools/svc").display()
        );
        let path = d.join("tandem.conf");
        std::fs::write(&path, conf).unwrap();
        let o = self.m[i].exec(
            &[tandem(), "daemon", "-c", &path.display().to_string(), "--state-dir", &self.state_dir(i)],
            Duration::from_secs(30),
        );
        assert!(o.status.success(), "tandem: {}{}\n{}", stdout(&o), String::from_utf8_lossy(&o.stderr), self.log(i));
        self.who[i] = Who::Tandem;
    }

    /// tandem with heartbeat's protocol from a tandem.conf (`protocol heartbeat`, heartbeat's
    /// authkeys by `hb_authkeys`), equivalent to this cluster's ha.cf and haresources.
    pub fn start_tandem_hb_conf(&mut self, i: usize, failback: &str) {
        let d = self.m[i].dir.path();
        let mut links = String::from("ucast lan0 192.0.2.1\nucast lan0 192.0.2.2\n");
        if let Some((a, b)) = &self.ptys {
            let p = if i == 0 { &a.path } else { &b.path };
            links.push_str(&format!("serial {} 19200\n", p.display()));
        }
        let conf = format!(
            "cluster linux-ha\nnode hn1 hn2\nprotocol heartbeat\nhb_authkeys /etc/ha.d/authkeys\n\
             auto_failback {failback}\nkeepalive 1s\ndeadtime 5s\nwarntime 3s\ninitdead 10s\n{links}\
             logfile {}/log/ha-log\nlogfacility none\n\
             group web hn1 IPaddr::{FLOAT}/24/lan0 script::{}::{FLOAT}::{PORT}::-::/run/websvc\n",
            d.display(),
            repo().join("tests/tools/svc").display()
        );
        let path = d.join("tandem-hb.conf");
        std::fs::write(&path, conf).unwrap();
        let o = self.m[i].exec(
            &[tandem(), "daemon", "-c", &path.display().to_string(), "--state-dir", &self.state_dir(i)],
            Duration::from_secs(30),
        );
        assert!(o.status.success(), "tandem: {}{}\n{}", stdout(&o), String::from_utf8_lossy(&o.stderr), self.log(i));
        self.who[i] = Who::Tandem;
    }

    /// The daemon's pid inside the machine.
    fn tandem_pid(&self, i: usize) -> Option<String> {
        std::fs::read_to_string(self.m[i].dir.path().join("run/tandem/tandem.pid")).ok().map(|s| s.trim().to_string())
    }

    /// SIGTERM to tandem, and wait for it to exit (a clean stop: groups handed over first).
    pub fn stop_tandem(&mut self, i: usize) {
        self.term_tandem(i);
        self.wait_tandem_exit(i);
    }

    /// SIGTERM to tandem (a clean stop begins).
    pub fn term_tandem(&mut self, i: usize) {
        let pid = self.tandem_pid(i).expect("tandem pidfile");
        self.m[i].exec(&["kill", "-TERM", &pid], Duration::from_secs(5));
    }

    /// Waits until tandem on machine `i` has exited (its pidfile removed).
    pub fn wait_tandem_exit(&mut self, i: usize) {
        let pidfile = self.m[i].dir.path().join("run/tandem/tandem.pid");
        assert!(
            wait_for(Duration::from_secs(60), Duration::from_millis(50), || !pidfile.exists()),
            "tandem on {} did not exit:\n{}",
            NAMES[i],
            self.log(i)
        );
        self.who[i] = Who::Nobody;
    }

    /// A node dies: every process of the machine is SIGKILLed at once and its network
    /// interface goes away with it (so its addresses do too, as when the power is cut).
    pub fn power_off(&mut self, i: usize) {
        run(&["ip", "-n", self.ns(i), "link", "set", self.iface, "down"]);
        self.m[i].kill();
        let _ = Command::new("ip").args(["-n", self.ns(i), "link", "del", self.iface]).status();
        self.who[i] = Who::Nobody;
    }

    /// Runs a heartbeat command on machine `i`: heartbeat's own when heartbeat runs there,
    /// tandem's (the binary under that name) otherwise. (exit code, stdout, stderr)
    pub fn cmd(&self, i: usize, name: &str, args: &[&str]) -> (i32, String, String) {
        let path = if self.who[i] == Who::Heartbeat {
            match name {
                "cl_status" => "/usr/bin/cl_status".to_string(),
                other => format!("/usr/share/heartbeat/{other}"),
            }
        } else {
            self.m[i].dir.path().join("bin").join(name).display().to_string()
        };
        let mut v = vec![path.as_str()];
        v.extend_from_slice(args);
        let o = self.m[i].exec(&v, Duration::from_secs(15));
        (o.status.code().unwrap_or(-1), stdout(&o), String::from_utf8_lossy(&o.stderr).into_owned())
    }

    /// tandem's own commands on machine `i` (`status`, `standby`…).
    pub fn tandem_cmd(&self, i: usize, args: &[&str]) -> (i32, String) {
        let mut v = vec![tandem()];
        v.extend_from_slice(args);
        let o = self.m[i].exec(&v, Duration::from_secs(15));
        (o.status.code().unwrap_or(-1), format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)))
    }

    pub fn tandem_status(&self, i: usize) -> Option<serde_json::Value> {
        let (code, out) = self.tandem_cmd(i, &["status", "--json"]);
        if code != 0 {
            return None;
        }
        serde_json::from_str(&out).ok()
    }

    pub fn nodestatus(&self, i: usize, node: &str) -> String {
        self.cmd(i, "cl_status", &["nodestatus", node]).1.trim().to_string()
    }

    pub fn log(&self, i: usize) -> String {
        if self.m[i].booted() {
            if let Some(l) = self.logfile(i) {
                return l;
            }
        }
        self.m[i].log()
    }

    /// heartbeat's `IPaddr::…/veth0`s address is on machine `i` (as the sampler sees it).
    pub fn holds(&self, i: usize, addr: &str) -> bool {
        self.m[i].ns.has_addr(addr)
    }

    /// The floating address is on machine `i`.
    pub fn has_addr(&self, i: usize) -> bool {
        self.m[i].ns.has_addr(FLOAT)
    }

    /// One request from the client: the serving node's name.
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

    /// Waits until the client is served by node `i` (by its host name).
    pub fn served_by(&self, i: usize, timeout: Duration) -> bool {
        wait_for(timeout, Duration::from_millis(50), || self.ask().as_deref() == Some(NAMES[i]))
    }

    /// The prober in the client namespace (every 10 ms), until `stop` exists.
    pub fn probe(&self, out: &std::path::Path, duration_ms: u64, stop: &std::path::Path) -> Child {
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
            .arg(stop)
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    pub fn dir(&self, i: usize) -> PathBuf {
        self.m[i].dir.path().to_path_buf()
    }
}

/// The prober's longest gap between two answers (ms), from its last lines.
pub fn longest_gap_ms(probe_out: &str) -> f64 {
    probe_out
        .lines()
        .find_map(|l| l.strip_prefix("# longest_gap_ms ").and_then(|r| r.split_whitespace().next()?.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// heartbeat log lines that must never appear while both nodes run.
pub const HB_NEVER: &[&str] = &[
    "authentication failed",
    "failed authentication",
    "authtoken does not match",
    "Invalid authentication",
    "Bad/invalid",
    "bad sequence number",
    "replay attack",
    "Both machines own",
    "Irretrievably lost",
];

/// Counts "lost packet(s)" reports in a heartbeat log part: a storm is many.
pub fn lost_reports(log: &str) -> usize {
    log.matches("lost packet(s)").count()
}

/// What the tests need installed.
pub fn prerequisites() -> bool {
    super::require(&["ip", "nsenter", "unshare", "python3", "cl_status", "timeout", "socat", "ss", HB])
}
