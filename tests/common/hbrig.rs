//! A real heartbeat 3.0.6 node (Debian's package) as a namespaced "machine", and a driver
//! that runs our protocol engine over a UDP socket or a pty in another namespace.
//!
//! The machine has its own network namespace, and its own mount, UTS and PID namespaces
//! (tests/tools/hb-node-init.sh is its PID 1) with a private /etc/ha.d, /var/lib/heartbeat and
//! /run, all under a temporary directory. Dropping it kills every process of the machine and
//! removes the namespace and the directory.
#![allow(dead_code)]

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tandem::hb::auth::AuthKeys;
use tandem::hb::classic::Deframer;
use tandem::hb::proto::{Action, Config, Engine, Event, GroupMask, NodeStatus, Notice, RscSet, Stats};

use super::{repo, run, wait_for, Netns, TempDir};

pub const HB: &str = "/usr/libexec/heartbeat/heartbeat";

/// A resource script for haresources (`hbtest::NAME`): a file in the node's /run.
pub const HBTEST: &str = "#!/bin/sh\nf=/run/hbtest-$1\ncase \"$2\" in\n  start) : > \"$f\";;\n  stop) rm -f \"$f\";;\n  status) if [ -e \"$f\" ]; then echo running; else echo stopped; fi;;\nesac\nexit 0\n";

pub struct HbMachine {
    pub name: String,
    pub ns: Netns,
    pub dir: TempDir,
    init: Option<(Child, u32)>,
}

fn copy_tree(from: &Path, to: &Path) {
    run(&["cp", "-a", &from.display().to_string(), &to.display().to_string()]);
}

impl HbMachine {
    /// Prepares (does not boot) a machine called `name` in a fresh network namespace.
    pub fn new(name: &str, tag: &str) -> HbMachine {
        let ns = Netns::new(format!("thb{tag}"));
        let dir = TempDir::new(&format!("hb-{name}"));
        let d = dir.path();
        std::fs::create_dir_all(d.join("log")).unwrap();
        copy_tree(Path::new("/etc/ha.d"), &d.join("etc-ha.d"));
        copy_tree(Path::new("/var/lib/heartbeat"), &d.join("var-lib-heartbeat"));
        for f in ["hb_generation", "hb_uuid", "hostcache", "delhostcache"] {
            let _ = std::fs::remove_file(d.join("var-lib-heartbeat").join(f));
        }
        let runp = d.join("run");
        for sub in ["heartbeat", "heartbeat/ccm", "heartbeat/crm", "heartbeat/dopd", "crm"] {
            std::fs::create_dir_all(runp.join(sub)).unwrap();
            run(&["chown", "hacluster:haclient", &runp.join(sub).display().to_string()]);
            run(&["chmod", "0750", &runp.join(sub).display().to_string()]);
        }
        for (sub, mode) in [("resource-agents", "1755"), ("lock", "1777")] {
            std::fs::create_dir_all(runp.join(sub)).unwrap();
            run(&["chmod", mode, &runp.join(sub).display().to_string()]);
        }
        HbMachine { name: name.to_string(), ns, dir, init: None }
    }

    /// Writes a file under the machine's /etc/ha.d.
    pub fn write_etc(&self, name: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join("etc-ha.d").join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn logfile(&self) -> PathBuf {
        self.dir.path().join("log/ha-log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.logfile()).unwrap_or_default()
    }

    /// Starts the machine's PID 1.
    pub fn boot(&mut self) {
        let init = repo().join("tests/tools/hb-node-init.sh");
        let out = std::fs::File::create(self.dir.path().join("log/init.out")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc"])
            .arg(&init)
            .arg(&self.name)
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let up = child.id();
        let mut reaper = 0;
        let ok = wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            let kids = std::fs::read_to_string(format!("/proc/{up}/task/{up}/children")).unwrap_or_default();
            let Some(k) = kids.split_whitespace().next().and_then(|k| k.parse::<u32>().ok()) else { return false };
            let exe = std::fs::read_link(format!("/proc/{k}/exe")).map(|p| p.display().to_string()).unwrap_or_default();
            if exe.contains("python") {
                reaper = k;
                true
            } else {
                false
            }
        });
        assert!(ok, "{}: machine did not boot: {}", self.name, self.init_out());
        self.init = Some((child, reaper));
    }

    fn init_out(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/init.out")).unwrap_or_default()
    }

    /// Runs a command inside the machine (all its namespaces), bounded by `timeout`.
    pub fn exec(&self, args: &[&str], timeout: Duration) -> Output {
        let pid = self.init.as_ref().expect("booted").1.to_string();
        let mut cmd = Command::new("timeout");
        cmd.arg("-k").arg("2").arg(format!("{}", timeout.as_secs().max(1)));
        cmd.args(["nsenter", "-t", &pid, "-n", "-m", "-u", "-p", "--"]).args(args);
        cmd.stdin(Stdio::null()).output().unwrap()
    }

    pub fn start_heartbeat(&self) {
        let o = self.exec(&[HB], Duration::from_secs(30));
        assert!(
            o.status.success(),
            "heartbeat did not start: {}{}\n{}",
            super::stdout(&o),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
    }

    /// `heartbeat -k`; true if it stopped within `timeout`.
    pub fn stop_heartbeat(&self, timeout: Duration) -> bool {
        self.exec(&[HB, "-k"], timeout).status.success()
    }

    /// `cl_status ARGS` inside the machine: (exit code, stdout).
    pub fn cl_status(&self, args: &[&str]) -> (i32, String) {
        let mut v = vec!["cl_status"];
        v.extend_from_slice(args);
        let o = self.exec(&v, Duration::from_secs(10));
        (o.status.code().unwrap_or(-1), super::stdout(&o).trim().to_string())
    }

    /// The `hbtest::NAME` resource is running on this machine.
    pub fn holds(&self, res: &str) -> bool {
        self.dir.path().join("run").join(format!("hbtest-{res}")).exists()
    }

    /// Every process of the machine killed at once (SIGKILL to its PID 1): a power cut, as far
    /// as processes go (the network namespace stays).
    pub fn kill(&mut self) {
        if let Some((mut child, reaper)) = self.init.take() {
            let _ = Command::new("kill").args(["-9", &reaper.to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn booted(&self) -> bool {
        self.init.is_some()
    }
}

impl Drop for HbMachine {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("----- ha-log of {} -----\n{}", self.name, self.log());
        }
    }
}

/// What the driver's engine talks over.
pub enum Medium {
    /// Our socket is bound to `local`:694 in `netns`; heartbeat listens on `peer`:694.
    Udp { netns: String, local: String, peer: String },
    /// The master side of a pty whose slave heartbeat uses.
    Serial { master: OwnedFd },
}

pub enum Cmd {
    Standby(RscSet),
    Takeover(RscSet),
    Shutdown,
    /// Drop every `n`th incoming frame that has a sequence number (0 = none).
    DropIncoming(u32),
    Stop,
}

/// What the driver reports.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub local: Option<NodeStatus>,
    pub peer: Option<NodeStatus>,
    pub held: GroupMask,
    pub peer_holds: GroupMask,
    pub stats: Stats,
    pub notices: Vec<Notice>,
    /// `t` of every message we sent (first transmissions).
    pub sent: Vec<String>,
    pub shutdown_done: bool,
    pub dropped_incoming: u64,
    pub rscstatus: String,
}

pub struct Driver {
    tx: Sender<Cmd>,
    pub report: Arc<Mutex<Report>>,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    pub fn start(cfg: Config, keys: AuthKeys, medium: Medium, limit: Duration) -> Driver {
        let (tx, rx) = channel();
        let report = Arc::new(Mutex::new(Report::default()));
        let r = report.clone();
        let thread = std::thread::spawn(move || drive(cfg, keys, medium, rx, r, limit));
        Driver { tx, report, thread: Some(thread) }
    }

    pub fn send(&self, c: Cmd) {
        let _ = self.tx.send(c);
    }

    pub fn report(&self) -> Report {
        self.report.lock().unwrap().clone()
    }

    pub fn wait(&self, timeout: Duration, mut f: impl FnMut(&Report) -> bool) -> bool {
        wait_for(timeout, Duration::from_millis(50), || f(&self.report.lock().unwrap()))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn drive(cfg: Config, keys: AuthKeys, medium: Medium, rx: Receiver<Cmd>, report: Arc<Mutex<Report>>, limit: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let end = Instant::now() + limit;
    let (udp, peer_addr, master) = match medium {
        Medium::Udp { netns, local, peer } => {
            let f = std::fs::File::open(format!("/run/netns/{netns}")).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let s = std::net::UdpSocket::bind(format!("{local}:694")).unwrap();
            s.set_nonblocking(true).unwrap();
            let pa: std::net::SocketAddr = format!("{peer}:694").parse().unwrap();
            (Some(s), Some(pa), None)
        }
        Medium::Serial { master } => (None, None, Some(master)),
    };
    let mut e = Engine::new(cfg, keys, tandem::time::now(), wall()).unwrap();
    if let Ok(ld) = std::fs::read_to_string("/proc/loadavg") {
        e.set_loadavg(&ld);
    }
    let mut out = Vec::new();
    let mut deframer = Deframer::new();
    let mut drop_every = 0u32;
    let mut seen = 0u32;
    let mut dropped = 0u64;
    let mut pending_ops = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut stopped = false;
    while Instant::now() < end && !stopped {
        while let Ok(c) = rx.try_recv() {
            let now = tandem::time::now();
            match c {
                Cmd::Standby(s) => e.handle(now, Event::Standby(s), &mut out),
                Cmd::Takeover(s) => e.handle(now, Event::Takeover(s), &mut out),
                Cmd::Shutdown => e.handle(now, Event::Shutdown, &mut out),
                Cmd::DropIncoming(n) => drop_every = n,
                Cmd::Stop => stopped = true,
            }
        }
        let now = tandem::time::now();
        let wait_ms = now.millis_until_ceil(e.poll_at()).min(50);
        let fd = udp.as_ref().map(|s| s.as_fd()).or(master.as_ref().map(|m| m.as_fd())).unwrap();
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(wait_ms as u16));
        let readable = fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
        let mut frames: Vec<Vec<u8>> = Vec::new();
        if readable {
            if let Some(s) = &udp {
                while let Ok((n, _)) = s.recv_from(&mut buf) {
                    frames.push(buf[..n].to_vec());
                }
            } else if let Some(m) = &master {
                if let Ok(n) = nix::unistd::read(m.as_raw_fd(), &mut buf) {
                    deframer.feed(&buf[..n], |f| frames.push(f.to_vec()));
                }
            }
        }
        for f in frames {
            let has_seq = frame_seq(&f).is_some();
            if drop_every > 0 && has_seq {
                seen += 1;
                if seen.is_multiple_of(drop_every) {
                    dropped += 1;
                    continue;
                }
            }
            e.handle(tandem::time::now(), Event::Received { link: 0, frame: &f }, &mut out);
        }
        let now = tandem::time::now();
        let done: Vec<_> = pending_ops.iter().filter(|(t, _)| *t <= now).map(|(_, op)| *op).collect();
        pending_ops.retain(|(t, _)| *t > now);
        for op in done {
            e.handle(now, Event::OpDone { op, ok: true }, &mut out);
        }
        if e.poll_at() <= tandem::time::now() {
            e.handle(tandem::time::now(), Event::Tick, &mut out);
        }
        let mut rep = report.lock().unwrap();
        for a in out.drain(..) {
            match a {
                Action::Send(o) => {
                    if let (Some(s), Some(pa)) = (&udp, peer_addr) {
                        let _ = s.send_to(&o.udp, pa);
                    } else if let Some(m) = &master {
                        let mut rest: &[u8] = &o.serial;
                        let t_end = Instant::now() + Duration::from_secs(1);
                        while !rest.is_empty() && Instant::now() < t_end {
                            match nix::unistd::write(m, rest) {
                                Ok(n) => rest = &rest[n..],
                                Err(_) => std::thread::sleep(Duration::from_millis(5)),
                            }
                        }
                    }
                    if !o.retransmission {
                        rep.sent.push(o.msg_type.clone());
                    }
                }
                Action::Acquire { op, .. } | Action::Release { op, .. } => {
                    pending_ops.push((tandem::time::now() + Duration::from_millis(100), op));
                }
                Action::ShutdownDone => rep.shutdown_done = true,
                Action::Notice(n) => rep.notices.push(n),
                _ => {}
            }
        }
        rep.local = Some(e.local_status());
        rep.peer = Some(e.peer_status());
        rep.held = e.held();
        rep.peer_holds = e.peer_holds();
        rep.stats = e.stats();
        rep.dropped_incoming = dropped;
        rep.rscstatus = e.rscstatus().to_string();
    }
}

/// The `seq` of a frame, without checking its digest (to pick frames to drop).
fn frame_seq(f: &[u8]) -> Option<u64> {
    let m = if f.starts_with(b"###") {
        tandem::hb::netstring::decode(f).ok()?.0
    } else {
        tandem::hb::classic::decode(f).ok()?
    };
    m.seq()
}

/// The authkeys both sides use in these tests.
pub const KEYS: &str = "auth 1\n1 sha1 tandem-interop-key\n";
