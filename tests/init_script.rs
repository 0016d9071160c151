//! `init/tandem` is an LSB init script that runs under busybox sh:
//! start, stop, restart, reload, status, with LSB exit codes. Also: HUP applies what it can
//! live and refuses (with a log line) what it cannot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

struct Env<'a> {
    ns: &'a Netns,
    dir: &'a std::path::Path,
    conf: std::path::PathBuf,
}

impl Env<'_> {
    fn init(&self, action: &str) -> (i32, String) {
        let o = Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "busybox", "sh"])
            .arg(repo().join("init/tandem"))
            .arg(action)
            .env("TANDEM_BIN", tandem())
            .env("TANDEM_CONFIG", &self.conf)
            .env("TANDEM_PIDFILE", self.dir.join("tandem.pid"))
            .env("TANDEM_SOCKET", self.dir.join("tandem.sock"))
            .env("TANDEM_NODE", "alpha")
            .env("TANDEM_OPTS", format!("--state-dir {}", self.dir.join("state").display()))
            .env("TANDEM_STOP_TIMEOUT", "20")
            .output()
            .unwrap();
        (o.status.code().unwrap_or(-1), format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)))
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

fn config(dir: &std::path::Path, cluster: &str, keepalive: &str) -> String {
    format!(
        "cluster {cluster}\nnode alpha beta\nauthkey {}\nkeepalive {keepalive}\ndeadtime 3s\nrealtime off\n\
         ucast lan0 192.0.2.2\nlogfacility none\nlogfile {}\n",
        dir.join("authkey").display(),
        dir.join("log").display()
    )
}

#[test]
fn lsb_init_script_under_busybox() {
    if !require(&["ip", "busybox"]) {
        return;
    }
    let ns = Netns::new(format!("ti{}", unique()));
    run(&["ip", "-n", ns.name(), "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    run(&["ip", "-n", ns.name(), "addr", "add", "192.0.2.1/24", "dev", "lan0"]);
    ns.link("lan0", true);
    ns.link("lan1", true);
    let d = TempDir::new("init");
    run(&[tandem(), "keygen", d.path().join("authkey").to_str().unwrap()]);
    let conf = d.path().join("tandem.conf");
    std::fs::write(&conf, config(d.path(), "initcl", "1s")).unwrap();
    let e = Env { ns: &ns, dir: d.path(), conf: conf.clone() };

    let (rc, out) = e.init("status");
    assert_eq!(rc, 3, "status before start: {out}");
    let (rc, out) = e.init("start");
    assert_eq!(rc, 0, "start: {out}\n{}", e.log());
    assert!(out.contains("tandem started"), "{out}");
    let pid: i32 = std::fs::read_to_string(d.path().join("tandem.pid")).unwrap().trim().parse().unwrap();
    let (rc, out) = e.init("start");
    assert_eq!(rc, 0, "second start: {out}");
    assert!(out.contains("already running"), "{out}");
    let (rc, out) = e.init("status");
    assert_eq!(rc, 0, "status: {out}");
    assert!(out.contains("node alpha"), "{out}");

    // reload: a timing change applies live; a cluster rename is refused.
    std::fs::write(&conf, config(d.path(), "initcl", "500ms")).unwrap();
    let (rc, out) = e.init("reload");
    assert_eq!(rc, 0, "reload: {out}");
    assert!(
        wait_for(Duration::from_secs(3), Duration::from_millis(20), || e.log().contains("configuration reloaded")),
        "{}",
        e.log()
    );
    std::fs::write(&conf, config(d.path(), "othername", "500ms")).unwrap();
    let (rc, out) = e.init("reload");
    assert_eq!(rc, 0, "reload: {out}");
    assert!(
        wait_for(Duration::from_secs(3), Duration::from_millis(20), || e
            .log()
            .contains("reload refused: changing cluster needs a restart")),
        "{}",
        e.log()
    );
    let (rc, _) = e.init("status");
    assert_eq!(rc, 0, "the daemon must survive a refused reload");
    std::fs::write(&conf, config(d.path(), "initcl", "500ms")).unwrap();

    // restart gives a new process.
    let (rc, out) = e.init("restart");
    assert_eq!(rc, 0, "restart: {out}");
    let pid2: i32 = std::fs::read_to_string(d.path().join("tandem.pid")).unwrap().trim().parse().unwrap();
    assert_ne!(pid, pid2);

    let (rc, out) = e.init("stop");
    assert_eq!(rc, 0, "stop: {out}");
    assert!(!std::path::Path::new(&format!("/proc/{pid2}")).exists(), "daemon still running after stop");
    assert!(!d.path().join("tandem.pid").exists(), "pidfile left behind");
    let (rc, out) = e.init("status");
    assert_eq!(rc, 3, "status after stop: {out}");
    let (rc, _) = e.init("stop");
    assert_eq!(rc, 0, "stop when stopped is success (LSB)");

    // A stale pidfile: status 1.
    std::fs::write(d.path().join("tandem.pid"), "999999\n").unwrap();
    let (rc, out) = e.init("status");
    assert_eq!(rc, 1, "status with a stale pidfile: {out}");
    std::fs::remove_file(d.path().join("tandem.pid")).unwrap();

    // A broken configuration: start refuses with 6 and says why.
    std::fs::write(&conf, "cluster x\nbogus directive\n").unwrap();
    let (rc, out) = e.init("start");
    assert_eq!(rc, 6, "start with a bad config: {out}");
    assert!(out.contains(":2:"), "no file:line in {out}");
    let (rc, _) = e.init("frobnicate");
    assert_eq!(rc, 2);
}

/// A live process that is not tandem, killed on drop.
struct Stranger(std::process::Child);

impl Stranger {
    fn new(cmd: &[&str]) -> Stranger {
        Stranger(Command::new(cmd[0]).args(&cmd[1..]).spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A pidfile that names a live, unrelated process (a reused pid): the daemon starts (the
/// pidfile's lock, not the pid, says whether one runs), the init script neither reports
/// "already running" nor signals that process on stop.
#[test]
fn a_reused_pid_in_the_pidfile_is_not_trusted() {
    if !require(&["ip", "busybox", "flock"]) {
        return;
    }
    let ns = Netns::new(format!("tp{}", unique()));
    run(&["ip", "-n", ns.name(), "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    run(&["ip", "-n", ns.name(), "addr", "add", "192.0.2.1/24", "dev", "lan0"]);
    ns.link("lan0", true);
    ns.link("lan1", true);
    let d = TempDir::new("pidf");
    run(&[tandem(), "keygen", d.path().join("authkey").to_str().unwrap()]);
    let conf = d.path().join("tandem.conf");
    std::fs::write(&conf, config(d.path(), "pidcl", "1s")).unwrap();
    let e = Env { ns: &ns, dir: d.path(), conf: conf.clone() };
    let pidfile = d.path().join("tandem.pid");
    let mut stranger = Stranger::new(&["sleep", "60"]);
    let daemon_pid = || std::fs::read_to_string(&pidfile).unwrap_or_default().trim().parse::<u32>().unwrap_or(0);

    // The daemon itself, without the init script.
    std::fs::write(&pidfile, format!("{}\n", stranger.pid())).unwrap();
    let o = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(tandem())
        .args(["daemon", "-c"])
        .arg(&conf)
        .args(["--node", "alpha", "--pidfile"])
        .arg(&pidfile)
        .arg("--socket")
        .arg(d.path().join("tandem.sock"))
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .output()
        .unwrap();
    assert!(o.status.success(), "daemon refused a pidfile naming sleep: {}", String::from_utf8_lossy(&o.stderr));
    let pid = daemon_pid();
    assert!(pid != 0 && pid != stranger.pid(), "pidfile: {pid}");
    // A second daemon finds the lock held.
    let o = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(tandem())
        .args(["daemon", "--foreground", "-c"])
        .arg(&conf)
        .args(["--node", "alpha", "--pidfile"])
        .arg(&pidfile)
        .arg("--socket")
        .arg(d.path().join("other.sock"))
        .arg("--state-dir")
        .arg(d.path().join("state2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("already running as process {pid}")), "{err}");
    let (rc, out) = e.init("stop");
    assert_eq!(rc, 0, "stop: {out}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "daemon still running after stop");

    // The init script: start and stop with the stranger's pid in the pidfile.
    std::fs::write(&pidfile, format!("{}\n", stranger.pid())).unwrap();
    let (rc, out) = e.init("status");
    assert_eq!(rc, 1, "status: {out}");
    let (rc, out) = e.init("stop");
    assert_eq!(rc, 0, "stop: {out}");
    assert!(out.contains("not running"), "{out}");
    assert!(stranger.alive(), "stop signalled an unrelated process");
    let (rc, out) = e.init("start");
    assert_eq!(rc, 0, "start: {out}\n{}", e.log());
    assert!(out.contains("tandem started") && !out.contains("already running"), "{out}");
    let pid = daemon_pid();
    assert_ne!(pid, stranger.pid());
    let (rc, out) = e.init("stop");
    assert_eq!(rc, 0, "stop: {out}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "daemon still running after stop");

    // The pid is checked even when the lock is held (by something else than tandem).
    std::fs::write(&pidfile, format!("{}\n", stranger.pid())).unwrap();
    let mut holder = Stranger::new(&["flock", pidfile.to_str().unwrap(), "sleep", "60"]);
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(10), || {
        !Command::new("flock").args(["-n"]).arg(&pidfile).arg("true").status().unwrap().success()
    }));
    let (rc, out) = e.init("stop");
    assert_eq!(rc, 0, "stop: {out}");
    assert!(out.contains("not running"), "{out}");
    assert!(stranger.alive() && holder.alive(), "stop signalled an unrelated process");
}
