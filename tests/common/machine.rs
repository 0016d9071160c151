//! A tandem node as a whole machine behind a power switch and a BMC, for fencing and chaos
//! tests.
//!
//! ```text
//!   BMC ns 203.0.113.1X (ipmi_sim) ── chassis_control ── tests/tools/machine-power.sh
//!        │ power on: unshare --pid --fork --kill-child --mount-proc machine-init.py …
//!        ▼
//!   PID namespace: PID 1 = machine-init.py ── ip netns exec NODE_NS tandem daemon …
//!                                           └─ orphans (the services the daemon started)
//! ```
//!
//! - **Power** (the BMC's switch, or [`Machine::power`] at the switch itself): off SIGKILLs
//!   the machine's PID 1, and with it the daemon and every service it started, at once.
//! - **What "off" does to the network.** A machine without power has dark NICs and has lost
//!   what it held in memory. Killing its processes alone would leave the node's namespace
//!   as it was: links up, the floating addresses configured and answering ARP. So once the
//!   machine is dead, and before the switch reports "off" (tests/tools/machine-power.sh
//!   holds a lock for that), the switch takes the node's links down and deletes the
//!   addresses in [`Machine::new`]'s `addrs`. A survivor that waits for a confirmed
//!   power-off therefore never holds an address at the same time as the dead machine, and
//!   an address sampler needs no special case for powered-off nodes.
//! - **Boot.** Before the machine starts, the switch brings the links up and forgets what a
//!   reboot forgets: the service's pid files in the rig's run directory and the serial
//!   line's UUCP lock (/run and /var/lock are tmpfs on a real host).
//! - **The daemon alone** can be signalled ([`Machine::signal`]: SIGKILL, SIGSTOP, SIGHUP…)
//!   and restarted on the live machine ([`Machine::restart`]); the machine's init appends
//!   each exit of the daemon (`exit N` or `signal N`) to a file ([`Machine::exits`]), so a
//!   test can tell the exits it caused from the ones it did not.
//!
//! Firewall rules in the node's namespace (a test's cut or lossy links) are not touched by
//! the power switch: they stand for the cables and switches around the machine.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bmc::{Bmc, MgmtNet, PowerEvent};
use super::cable::Cable;
use super::{repo, wait_for, Node, Rig, FLOAT, PORT};

pub const BMC_USER: &str = "admin";
pub const BMC_PASSWORD: &str = "chaos-pw";

/// One exit of the daemon, as the machine's init saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    /// Seconds since the epoch.
    pub at: f64,
    /// `Some(code)` for an exit, None when killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// Memory of one process, from `/proc/PID/smaps_rollup` (KiB).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pss {
    pub pss: u64,
    pub anon: u64,
    pub file: u64,
    pub rss: u64,
}

/// Reads `/proc/PID/smaps_rollup`.
pub fn pss_of(pid: u32) -> Option<Pss> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let mut p = Pss::default();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let (Some(k), Some(v)) = (w.next(), w.next().and_then(|v| v.parse::<u64>().ok())) else { continue };
        match k {
            "Pss:" => p.pss = v,
            "Pss_Anon:" => p.anon = v,
            "Pss_File:" => p.file = v,
            "Rss:" => p.rss = v,
            _ => {}
        }
    }
    (p.rss > 0).then_some(p)
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A tandem node that is the machine of its BMC; see the module documentation.
pub struct Machine {
    /// The node: name, namespace, socket, log; its `child` is never used (the machine's
    /// init is the daemon's parent).
    pub node: Node,
    pub bmc: Bmc,
    exits: PathBuf,
}

impl Machine {
    /// A machine, powered off, for `node` (made by [`super::Rig::node`], not started) with
    /// a BMC at `bmc_addr` on `net`. `links`: the node's interfaces, down while the power is
    /// off; `addrs`: `ADDR/PREFIX dev IFACE` of the addresses its groups may hold, deleted
    /// at power-off; `forget`: files a reboot removes.
    pub fn new(
        net: &MgmtNet,
        bmc_addr: &str,
        node: Node,
        links: &[&str],
        addrs: &[&str],
        forget: &[PathBuf],
    ) -> Machine {
        let switch = repo().join("tests/tools/machine-power.sh");
        let bmc = Bmc::start_switch(net, bmc_addr, BMC_USER, BMC_PASSWORD, &switch);
        let exits = bmc.dir().join("exits");
        let ns = node.ns.clone();
        let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
        let mut argv = vec![
            "/usr/bin/python3".to_string(),
            q(&repo().join("tests/tools/machine-init.py")),
            ns.clone(),
            q(&node.log),
            q(&exits),
            q(&node.bin),
            "daemon --foreground -c".to_string(),
            q(&node.config),
            format!("--node {} --socket", node.name),
            q(&node.sock),
            "--state-dir".to_string(),
            q(&node.dir.join("state")),
            "--pidfile".to_string(),
            q(&node.dir.join("pid")),
        ];
        argv.insert(0, "exec unshare --pid --fork --kill-child --mount-proc".to_string());
        let down: String = links.iter().map(|l| format!("link set {l} down\n")).collect();
        let up: String = links.iter().map(|l| format!("link set {l} up\n")).collect();
        let del: String = addrs.iter().map(|a| format!("addr del {a}\n")).collect();
        let rm: String = forget.iter().map(|f| format!("rm -f {}\n", q(f))).collect();
        for (name, text) in [
            ("machine.sh", format!("#!/bin/sh\n{}\n", argv.join(" "))),
            ("off.sh", format!("ip -force -n {ns} -batch - >/dev/null 2>&1 <<EOF\n{down}{del}EOF\n")),
            ("on.sh", format!("{rm}ip -force -n {ns} -batch - >/dev/null 2>&1 <<EOF\n{del}{up}EOF\n")),
        ] {
            let p = bmc.dir().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Powered off: dark links, as the switch leaves them.
        let _ = bmc.power_script(&["set", "power", "0"]);
        Machine { node, bmc, exits }
    }

    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// Powers the machine on (true) or off at its switch, as a power button or a pulled
    /// plug would (a fence goes through the BMC instead).
    pub fn power(&self, on: bool) {
        let o = self.bmc.power_script(&["set", "power", if on { "1" } else { "0" }]);
        assert!(o.status.success(), "{}: power {on}: {o:?}", self.name());
    }

    /// Whether the power is on (what the switch reports).
    pub fn is_on(&self) -> bool {
        self.bmc.machine_on()
    }

    /// The power log, oldest first.
    pub fn power_log(&self) -> Vec<PowerEvent> {
        self.bmc.power_log()
    }

    /// The pid (in this namespace) of the machine's init, if the power is on.
    pub fn init_pid(&self) -> Option<u32> {
        let p: u32 = std::fs::read_to_string(self.bmc.dir().join("machine.pid")).ok()?.trim().parse().ok()?;
        children(p).first().copied()
    }

    /// The daemon's pid (in this namespace), if it runs.
    pub fn daemon_pid(&self) -> Option<u32> {
        let init = self.init_pid()?;
        let bin = std::fs::canonicalize(&self.node.bin).unwrap_or_else(|_| self.node.bin.clone());
        children(init).into_iter().find(|c| std::fs::read_link(format!("/proc/{c}/exe")).is_ok_and(|e| e == bin))
    }

    /// Every process of the machine but its init: (pid, command line).
    pub fn processes(&self) -> Vec<(u32, String)> {
        let Some(init) = self.init_pid() else { return Vec::new() };
        let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else { return Vec::new() };
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if pid == init || std::fs::read_link(format!("/proc/{pid}/ns/pid")).map_or(true, |n| n != ns) {
                continue;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd: Vec<String> = cmd
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            out.push((pid, cmd.join(" ")));
        }
        out
    }

    /// Sends `sig` to the daemon alone; false when it does not run.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> bool {
        match self.daemon_pid() {
            Some(p) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), sig).is_ok(),
            None => false,
        }
    }

    /// Every exit of the daemon so far.
    pub fn exits(&self) -> Vec<Exit> {
        std::fs::read_to_string(&self.exits)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let at = w.next()?.parse().ok()?;
                let kind = w.next()?;
                let n: i32 = w.next()?.parse().ok()?;
                Some(match kind {
                    "exit" => Exit { at, code: Some(n), signal: None },
                    _ => Exit { at, code: None, signal: Some(n) },
                })
            })
            .collect()
    }

    /// Starts the daemon again on the live machine, once the previous one is gone (bounded).
    pub fn restart(&self) -> bool {
        if !wait_for(Duration::from_secs(5), Duration::from_millis(2), || self.daemon_pid().is_none()) {
            return false;
        }
        let Some(init) = self.init_pid() else { return false };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(init as i32), nix::sys::signal::Signal::SIGUSR1).is_ok()
    }

    /// Waits until the daemon answers on its control socket.
    pub fn wait_daemon(&self, timeout: Duration) -> bool {
        wait_for(timeout, Duration::from_millis(20), || self.node.status().is_some())
    }

    /// PSS of the daemon, with its pid.
    pub fn pss(&self) -> Option<(u32, Pss)> {
        let p = self.daemon_pid()?;
        Some((p, pss_of(p)?))
    }

    pub fn log(&self) -> String {
        self.node.log_text()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Power off first (the BMC's Drop does it too, after stopping ipmi_sim).
        let _ = self.bmc.power_script(&["set", "power", "0"]);
    }
}

/// The BMC address of a node in a [`MachineRig`].
pub fn bmc_addr(node: &str) -> &'static str {
    if node == "alpha" {
        "203.0.113.11"
    } else {
        "203.0.113.12"
    }
}

/// The two-node rig ([`Rig`]) whose nodes are [`Machine`]s, with a serial cable between
/// them ([`Cable`]) besides lan0 and hb0, and BMCs on a management network ([`MgmtNet`]):
///
/// ```text
///   alpha ns: lan0 192.0.2.1, hb0 198.51.100.1, mgmt0 203.0.113.1, serial (cable end a)
///   beta ns:  lan0 192.0.2.2, hb0 198.51.100.2, mgmt0 203.0.113.2, serial (cable end b)
///   BMC of alpha 203.0.113.11, BMC of beta 203.0.113.12 (ipmi_sim, user admin)
/// ```
///
/// Each node has its own configuration file (they differ in the serial device only), with
/// the `web` group of [`Rig::web_group`] and, when `fenced`, `stonith NODE ipmi …` lines
/// for both BMCs (the built-in client, cipher suite 3).
pub struct MachineRig {
    /// alpha, beta. Declared first: dropped (powered off) before the networks go.
    pub machines: Vec<Machine>,
    pub cable: Cable,
    pub net: MgmtNet,
    pub rig: Rig,
    pub fenced: bool,
    base: Vec<String>,
}

pub const NODES: [&str; 2] = ["alpha", "beta"];

impl MachineRig {
    /// Builds the rig with both machines powered off. `settings`: timing and other
    /// directives for both nodes; `baud`: the serial line's; `seed`: the relay's choices.
    pub fn new(fenced: bool, settings: &str, baud: u32, seed: u64, bin: &Path) -> MachineRig {
        let rig = Rig::new();
        let net = MgmtNet::new();
        net.attach(rig.a.name(), "mgmt0", "203.0.113.1/24");
        net.attach(rig.b.name(), "mgmt0", "203.0.113.2/24");
        let cable = Cable::new(rig.dir.path(), baud, seed);
        let key = rig.dir.path().join("authkey");
        let o = std::process::Command::new(super::tandem()).arg("keygen").arg(&key).output().unwrap();
        assert!(o.status.success(), "keygen: {}", String::from_utf8_lossy(&o.stderr));
        let mut stonith = String::new();
        if fenced {
            for n in NODES {
                let pw = rig.dir.path().join(format!("bmc-{n}.pw"));
                std::fs::write(&pw, format!("{BMC_PASSWORD}\n")).unwrap();
                std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
                stonith += &format!("stonith {n} ipmi {} {BMC_USER} {} cipher=3\n", bmc_addr(n), pw.display());
            }
        }
        let base: Vec<String> = NODES
            .iter()
            .map(|n| {
                format!(
                    "cluster chaos{id}\nnode alpha beta\nauthkey {key}\n{settings}\n\
                     ucast lan0 192.0.2.1\nucast lan0 192.0.2.2\nucast hb0 198.51.100.1\nucast hb0 198.51.100.2\n\
                     serial {dev} {baud}\nlogfile -\nlogfacility none\n{stonith}{group}\n",
                    id = rig.id,
                    key = key.display(),
                    dev = cable.end(n).display(),
                    group = rig.web_group("alpha"),
                )
            })
            .collect();
        let mut machines = Vec::new();
        for (i, n) in NODES.iter().enumerate() {
            let cfg = rig.dir.path().join(format!("{n}.conf"));
            std::fs::write(&cfg, &base[i]).unwrap();
            let mut node = rig.node(n, &cfg);
            node.bin = bin.to_path_buf();
            let ns = rig.ns(n).name().to_string();
            // A reboot forgets /run (the service's pid file); the serial line's UUCP lock
            // stays, as on a disk-backed /var/lock or in a container: the daemon must take
            // over a stale lock, also one naming its own pid (PID namespaces start at 1).
            let forget = [rig.dir.path().join("run").join(format!("svc-{PORT}-{ns}.pid"))];
            let float = format!("{FLOAT}/24 dev lan0");
            machines.push(Machine::new(&net, bmc_addr(n), node, &["lan0", "hb0", "mgmt0"], &[&float], &forget));
        }
        MachineRig { machines, cable, net, rig, fenced, base }
    }

    /// Powers both machines on and waits for both daemons.
    pub fn power_on(&self) {
        for m in &self.machines {
            m.power(true);
        }
        for m in &self.machines {
            assert!(m.wait_daemon(Duration::from_secs(10)), "{}: no daemon after power on:\n{}", m.name(), m.log());
        }
    }

    /// Node `i`'s configuration as first written.
    pub fn base_config(&self, i: usize) -> &str {
        &self.base[i]
    }

    /// Replaces node `i`'s configuration file with `text` (atomically: a daemon reading it
    /// sees the old or the new file, never half of one).
    pub fn write_config(&self, i: usize, text: &str) {
        let path = &self.machines[i].node.config;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// The namespace of node `i`.
    pub fn ns(&self, i: usize) -> &str {
        self.rig.ns(NODES[i]).name()
    }
}
