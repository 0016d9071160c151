//! The fencing rig: the two-node rig ([`Rig`]) whose nodes are machines behind BMCs.
//!
//! ```text
//!   alpha ns: lan0 192.0.2.1, hb0 198.51.100.1, mgmt0 203.0.113.1 ──┐
//!   beta ns:  lan0 192.0.2.2, hb0 198.51.100.2, mgmt0 203.0.113.2 ──┼── management bridge
//!   BMC of alpha 203.0.113.11 (ipmi_sim), BMC of beta 203.0.113.12 ─┘   (MgmtNet, bmc.rs)
//! ```
//!
//! A [`Machine`] is a tandem node whose daemon is the "machine" of its BMC: the BMC's power
//! switch starts `tests/tools/fence-machine.sh` in a PID namespace of its own, and that runs
//! `ip netns exec NODE_NS tandem daemon …`. Power off kills the PID namespace: the daemon and
//! every child of it (the service) die at once.
//!
//! **What "powered off" means for the network.** Killing processes would leave the node's
//! namespace as it was: its interfaces up and the floating address still configured, still
//! answering ARP for it. A machine without power has dark NICs and has lost what it held in
//! memory. So the power switch ([`PowerHooks`]) does, just before it kills the machine:
//! every interface of the node down (lan0, hb0, mgmt0) and the floating address removed;
//! and just before it starts the machine again: the node's nftables rules flushed, the
//! service's stale pid file removed (a reboot forgets /run) and the interfaces up. Both
//! happen inside the power command, before the BMC reports the new state, so a survivor
//! that waits for a confirmed "off" can never see the address on the other node, and the
//! [`super::Sampler`] (addresses in both namespaces every 10 ms) needs no special case.
//!
//! Heartbeats are cut with nftables (UDP port 694, both directions) rather than by taking
//! links down: lan0 also carries the service, which the client must keep reaching.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bmc::{Bmc, MgmtNet, PowerHooks};
use super::{repo, run, tandem, try_run, wait_for, Node, Rig, FLOAT};

pub const BMC_USER: &str = "admin";
pub const BMC_PASSWORD: &str = "s3cret";

/// The BMC address of a node.
pub fn bmc_addr(node: &str) -> &'static str {
    if node == "alpha" {
        "203.0.113.11"
    } else {
        "203.0.113.12"
    }
}

/// The two-node rig on a management network; see the module documentation.
pub struct FenceRig {
    pub net: MgmtNet,
    pub rig: Rig,
}

impl FenceRig {
    pub fn new() -> FenceRig {
        let rig = Rig::new();
        let net = MgmtNet::new();
        net.attach(rig.a.name(), "mgmt0", "203.0.113.1/24");
        net.attach(rig.b.name(), "mgmt0", "203.0.113.2/24");
        let fr = FenceRig { net, rig };
        for n in ["alpha", "beta"] {
            fr.write_password(n, BMC_PASSWORD);
        }
        fr
    }

    /// The password file tandem reads for `node`'s BMC (root's, mode 0600).
    pub fn password_file(&self, node: &str) -> PathBuf {
        self.rig.dir.path().join(format!("bmc-{node}.pw"))
    }

    pub fn write_password(&self, node: &str, password: &str) {
        let p = self.password_file(node);
        std::fs::write(&p, format!("{password}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// `stonith NODE ipmi …` for `node`'s BMC (built-in client, cipher suite 3).
    pub fn stonith_ipmi(&self, node: &str) -> String {
        format!("stonith {node} ipmi {} {BMC_USER} {} cipher=3", bmc_addr(node), self.password_file(node).display())
    }

    /// `stonith NODE agent /usr/sbin/fence_ipmilan …` for `node`'s BMC.
    pub fn stonith_agent(&self, node: &str) -> String {
        format!(
            "stonith {node} agent /usr/sbin/fence_ipmilan ip={} username={BMC_USER} password_file={} lanplus=1 \
             cipher=3 power_wait=0",
            bmc_addr(node),
            self.password_file(node).display()
        )
    }

    /// Both nodes, each the machine of a new BMC, running `cfg`: both BMCs answer before
    /// either machine is powered on (as in a rack: a node's first device check must not
    /// time a BMC that is still booting), then both are powered on.
    pub fn machines(&self, cfg: &Path) -> (Machine, Machine) {
        let a = self.machine_off("alpha", cfg);
        let b = self.machine_off("beta", cfg);
        a.switch_on();
        b.switch_on();
        (a, b)
    }

    /// A node that is the machine of a new BMC, running `cfg`, powered on.
    pub fn machine(&self, name: &str, cfg: &Path) -> Machine {
        let m = self.machine_off(name, cfg);
        m.switch_on();
        m
    }

    /// Both nodes as [`FenceRig::machines`], with these `NAME=VALUE`s in the daemons'
    /// environment (inherited by their fence children, e.g. cluster-glue's `ipmitool=`).
    pub fn machines_env(&self, cfg: &Path, env: &[&str]) -> (Machine, Machine) {
        let a = self.machine_off_env("alpha", cfg, env);
        let b = self.machine_off_env("beta", cfg, env);
        a.switch_on();
        b.switch_on();
        (a, b)
    }

    /// A node that is the machine of a new BMC, running `cfg`, powered off.
    pub fn machine_off(&self, name: &str, cfg: &Path) -> Machine {
        self.machine_off_env(name, cfg, &[])
    }

    /// [`FenceRig::machine_off`] with `NAME=VALUE`s in the daemon's environment.
    pub fn machine_off_env(&self, name: &str, cfg: &Path, env: &[&str]) -> Machine {
        let node = self.rig.node(name, cfg);
        let ns = self.rig.ns(name).name().to_string();
        let script = repo().join("tests/tools/fence-machine.sh");
        let (cfg_s, sock, state, pid, log) = (
            cfg.display().to_string(),
            node.sock.display().to_string(),
            node.dir.join("state").display().to_string(),
            node.dir.join("pid").display().to_string(),
            node.log.display().to_string(),
        );
        let hb_state = node.dir.join("var-lib-heartbeat").display().to_string();
        let mut argv: Vec<&str> = vec![script.to_str().unwrap(), &ns, &log, &hb_state];
        if !env.is_empty() {
            argv.push("env");
            argv.extend_from_slice(env);
        }
        argv.extend_from_slice(&[
            tandem(),
            "daemon",
            "--foreground",
            "-c",
            &cfg_s,
            "--node",
            name,
            "--socket",
            &sock,
            "--state-dir",
            &state,
            "--pidfile",
            &pid,
        ]);
        let svc_pid = self.rig.dir.path().join("run").join(format!("svc-{}-{ns}.pid", super::PORT));
        let hooks = PowerHooks {
            off: format!(
                "ip -force -n {ns} -batch - >/dev/null 2>&1 <<EOF\nlink set lan0 down\nlink set hb0 down\n\
                 link set mgmt0 down\naddr del {FLOAT}/24 dev lan0\nEOF"
            ),
            on: format!(
                "ip netns exec {ns} nft flush ruleset 2>/dev/null; rm -f {svc}; \
                 ip -force -n {ns} -batch - >/dev/null 2>&1 <<EOF\naddr del {FLOAT}/24 dev lan0\nlink set lan0 up\n\
                 link set hb0 up\nlink set mgmt0 up\nEOF",
                svc = svc_pid.display()
            ),
        };
        let bmc = Bmc::start_with(&self.net, bmc_addr(name), BMC_USER, BMC_PASSWORD, &argv, &hooks, false);
        // Powered off: its links are down, as the power switch leaves them.
        ip_n(&ns, &["link", "set", "lan0", "down"]);
        ip_n(&ns, &["link", "set", "hb0", "down"]);
        ip_n(&ns, &["link", "set", "mgmt0", "down"]);
        Machine { node, bmc, ns }
    }

    /// `tandem ARGS` run in `node`'s namespace (e.g. `fence --local` with no daemon).
    pub fn tandem_in(&self, node: &str, args: &[&str]) -> (i32, String) {
        let o = std::process::Command::new("ip")
            .args(["netns", "exec", self.rig.ns(node).name(), tandem()])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        )
    }
}

impl Default for FenceRig {
    fn default() -> Self {
        FenceRig::new()
    }
}

/// Drops UDP port 694 (heartbeats) both ways in namespace `ns` (cut) or stops dropping.
pub fn cut_heartbeats(ns: &str, cut: bool) {
    if cut {
        let rules = "table inet fencecut {\n chain in { type filter hook input priority 0; policy accept; \
                     udp dport 694 drop; udp sport 694 drop; }\n chain out { type filter hook output priority 0; \
                     policy accept; udp dport 694 drop; udp sport 694 drop; }\n}\n";
        let mut c = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success(), "nft in {ns}");
    } else {
        try_run(&["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "fencecut"]);
    }
}

/// A tandem node that is the machine of its BMC.
pub struct Machine {
    pub node: Node,
    pub bmc: Bmc,
    pub ns: String,
}

impl Machine {
    pub fn log(&self) -> String {
        self.node.log_text()
    }

    /// Waits until the daemon answers on its control socket.
    pub fn wait_socket(&self, timeout: Duration) -> bool {
        wait_for(timeout, Duration::from_millis(20), || self.node.status().is_some())
    }

    /// The PIDs of the machine's PID namespace (its init included), as seen from the host.
    pub fn pids(&self) -> Vec<u32> {
        let Ok(p) = std::fs::read_to_string(self.bmc.dir().join("machine.pid")) else { return Vec::new() };
        let p = p.trim();
        let init = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        let Some(init) = init.split_whitespace().next().map(String::from) else { return Vec::new() };
        let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else { return Vec::new() };
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(pid) = name.parse::<u32>() {
                if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns) {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// SIGSTOP every process of the machine: a frozen host (nothing runs, nothing is sent).
    pub fn freeze(&self) -> usize {
        let pids = self.pids();
        for p in &pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p as i32), nix::sys::signal::Signal::SIGSTOP);
        }
        pids.len()
    }

    /// Powers the machine on at its switch (as a power button would), then waits for its
    /// daemon.
    pub fn switch_on(&self) {
        assert!(self.bmc.power_script(&["set", "power", "1"]).status.success());
        assert!(
            self.wait_socket(Duration::from_secs(10)),
            "{}: the daemon never answered; log:\n{}",
            self.node.name,
            self.log()
        );
    }

    pub fn on(&self) -> bool {
        self.bmc.machine_on()
    }

    /// Number of "off" entries in the BMC's power log.
    pub fn offs(&self) -> usize {
        self.bmc.power_log().iter().filter(|e| !e.on).count()
    }

    /// Powers the machine on through its BMC (ipmitool from the management network), then
    /// waits for its daemon.
    pub fn power_on(&self, net: &MgmtNet) {
        let o = self.bmc.ipmitool(net, 3, BMC_USER, &self.bmc.password, &["chassis", "power", "on"]);
        assert!(o.status.success(), "ipmitool power on: {o:?}");
        assert!(self.bmc.wait_machine(true, Duration::from_secs(5)));
        assert!(
            self.wait_socket(Duration::from_secs(10)),
            "{}: no daemon after power on:\n{}",
            self.node.name,
            self.log()
        );
    }
}

/// `ip -n NS` with the given arguments; panics unless it succeeds.
pub fn ip_n(ns: &str, args: &[&str]) {
    let mut v = vec!["ip", "-n", ns];
    v.extend_from_slice(args);
    run(&v);
}
