//! A real BMC for tests: OpenIPMI's `ipmi_sim` (IPMI v2.0 RMCP+ on UDP 623) in its own
//! network namespace on a management network 203.0.113.0/24, whose chassis power switch is
//! a "machine": the caller's command, run in its own PID namespace. Power off SIGKILLs the
//! machine's PID namespace (everything in it dies at once, like pulling the plug); power on
//! starts the command again. Every power change is appended to `power.log` with a
//! wall-clock timestamp.
//!
//! ```text
//!   client ns (203.0.113.100+) ──┐
//!   node ns   (any address)   ──┼── bridge ns (br0) ──┬── BMC ns 203.0.113.X (ipmi_sim)
//!                                │                    └── BMC ns 203.0.113.Y (ipmi_sim)
//! ```
//!
//! `ipmi_sim` 2.0.33 (Debian 12) offers cipher suites 0–14 only (RAKP-HMAC-SHA1/MD5): it
//! refuses suite 17 (RAKP-HMAC-SHA256) with Open Session status 0x04.
//!
//! The machine runs in the BMC's network namespace unless its command enters another one:
//! to make a node the machine, pass e.g. `["ip", "netns", "exec", NODE_NS, "tandem", ...]`.
//! For cipher suite 17 see `rmcp_bmc.rs`.
//!
//! Everything has unique names; Drop stops ipmi_sim and the machine and removes the
//! namespaces and the directory.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{run, unique, wait_for, Netns, TempDir};

/// The BMC GUID every rig BMC reports (part of the RAKP 2 code).
pub const GUID: &str = "a123456789abcdefa123456789abcdef";

/// The management network: a bridge in its own namespace, plus a client namespace
/// (203.0.113.100) from which tests talk to the BMCs.
pub struct MgmtNet {
    pub id: String,
    pub bridge: Netns,
    pub client: Netns,
}

impl MgmtNet {
    pub fn new() -> MgmtNet {
        let id = unique();
        let bridge = Netns::new(format!("tmgb{id}"));
        run(&["ip", "-n", bridge.name(), "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", bridge.name(), "link", "set", "br0", "up"]);
        let client = Netns::new(format!("tmgc{id}"));
        let net = MgmtNet { id, bridge, client };
        net.attach(net.client.name(), "mgmt0", "203.0.113.100/24");
        net.add_v6(net.client.name(), "mgmt0", "2001:db8:623::100/64");
        net
    }

    /// Connects namespace `ns` to the bridge with a veth named `iface` there, address `cidr`
    /// (IPv4, or IPv6 in 2001:db8::/32 without duplicate address detection).
    pub fn attach(&self, ns: &str, iface: &str, cidr: &str) {
        let port = format!("mp{}", unique());
        let br = self.bridge.name();
        run(&["ip", "-n", ns, "link", "add", iface, "type", "veth", "peer", "name", &port, "netns", br]);
        run(&["ip", "-n", br, "link", "set", &port, "master", "br0"]);
        run(&["ip", "-n", br, "link", "set", &port, "up"]);
        if cidr.contains(':') {
            self.add_v6(ns, iface, cidr);
        } else {
            run(&["ip", "-n", ns, "addr", "add", cidr, "dev", iface]);
        }
        run(&["ip", "-n", ns, "link", "set", iface, "up"]);
    }

    /// Adds an IPv6 address (documentation prefix 2001:db8::/32) without duplicate detection.
    pub fn add_v6(&self, ns: &str, iface: &str, cidr: &str) {
        run(&["ip", "-n", ns, "addr", "add", cidr, "dev", iface, "nodad"]);
    }

    /// Runs a command in the client namespace.
    pub fn client_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.client.name()]).args(args);
        c
    }
}

impl Default for MgmtNet {
    fn default() -> Self {
        MgmtNet::new()
    }
}

/// Shell commands the power switch runs (as root, from the BMC's namespace): `off` just
/// before it kills a running machine, `on` just before it starts a stopped one. The fencing
/// rig uses them for what happens to a machine's network when its power goes: its NICs go
/// dark and what it held in memory (addresses, firewall rules) is gone (tests/common/fencerig.rs).
#[derive(Debug, Clone, Default)]
pub struct PowerHooks {
    pub off: String,
    pub on: String,
}

/// One power change from `power.log`.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerEvent {
    pub on: bool,
    /// Seconds since the epoch.
    pub at: f64,
}

/// Wall-clock now in seconds since the epoch (to compare with [`PowerEvent::at`]).
pub fn wall_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// An ipmi_sim BMC with its machine.
pub struct Bmc {
    pub ns: Netns,
    pub dir: TempDir,
    pub addr: IpAddr,
    pub user: String,
    pub password: String,
    sim: Option<Child>,
}

impl Bmc {
    /// Starts a BMC at `addr` (203.0.113.X, or 2001:db8:623::X for IPv6) on `net`, user
    /// `user` with `password` and ADMINISTRATOR privilege, plus user "oper" (same password,
    /// OPERATOR). The machine (`machine`, argv) is powered on first.
    ///
    /// ipmi_sim 2.0.33 does not enforce a user's privilege limit in RMCP+ sessions (the
    /// session gets what RAKP 1 asks for): "oper" can log in as ADMINISTRATOR there.
    pub fn start(net: &MgmtNet, addr: &str, user: &str, password: &str, machine: &[&str]) -> Bmc {
        Bmc::start_with(net, addr, user, password, machine, &PowerHooks::default(), true)
    }

    /// Like [`Bmc::start`], with shell commands run by the power switch around the machine
    /// (see [`PowerHooks`]); the machine is powered on first only with `power_on`.
    pub fn start_with(
        net: &MgmtNet,
        addr: &str,
        user: &str,
        password: &str,
        machine: &[&str],
        hooks: &PowerHooks,
        power_on: bool,
    ) -> Bmc {
        let ns = Netns::new(format!("tbmc{}", unique()));
        let ip: IpAddr = addr.parse().unwrap();
        net.attach(ns.name(), "mgmt0", &format!("{addr}/{}", if ip.is_ipv6() { 64 } else { 24 }));
        let dir = TempDir::new("bmc");
        let bmc = Bmc { ns, dir, addr: ip, user: user.to_string(), password: password.to_string(), sim: None };
        bmc.write_power_script(machine, hooks);
        bmc.write_lan_conf();
        std::fs::write(
            bmc.dir.path().join("bmc.emu"),
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
        )
        .unwrap();
        if power_on {
            bmc.power_script(&["set", "power", "1"]);
        }
        let mut bmc = bmc;
        bmc.start_sim();
        bmc
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, 623)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_power_script(&self, machine: &[&str], hooks: &PowerHooks) {
        let dir = self.dir.path().display().to_string();
        let quoted: Vec<String> = machine.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
        let machine_sh = format!(
            "#!/bin/sh\n# The machine: its own PID namespace; when unshare dies its child (PID 1 there) gets SIGKILL.\n\
             exec unshare --pid --fork --kill-child --mount-proc {}\n",
            quoted.join(" ")
        );
        // The switch itself is tests/tools/bmc-power.sh (shared with bench/fencing.py).
        let power_sh =
            format!("#!/bin/sh\nexec '{}' '{dir}' \"$@\"\n", super::repo().join("tests/tools/bmc-power.sh").display());
        for (name, hook) in [("off-hook.sh", &hooks.off), ("on-hook.sh", &hooks.on)] {
            if !hook.is_empty() {
                std::fs::write(self.path(name), format!("{hook}\n")).unwrap();
            }
        }
        for (name, text) in [("machine.sh", machine_sh), ("power.sh", power_sh)] {
            let p = self.path(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn write_lan_conf(&self) {
        let auths = "none md2 md5 straight";
        let addrs = format!("    addr {} 623\n", self.addr);
        let conf = format!(
            "name \"bmc{id}\"\nset_working_mc 0x20\n  startlan 1\n{addrs}    priv_limit admin\n\
             \x20   allowed_auths_callback {auths}\n    allowed_auths_user {auths}\n\
             \x20   allowed_auths_operator {auths}\n    allowed_auths_admin {auths}\n    guid {GUID}\n  endlan\n\
             \x20 chassis_control \"{power}\"\n\
             \x20 user 2 true \"{user}\" \"{pw}\" admin 10 {auths}\n\
             \x20 user 3 true \"oper\" \"{pw}\" operator 10 {auths}\n",
            id = self.ns.name(),
            power = self.path("power.sh").display(),
            user = self.user,
            pw = self.password,
        );
        std::fs::write(self.path("lan.conf"), conf).unwrap();
    }

    fn start_sim(&mut self) {
        assert!(self.sim.is_none());
        let state = self.path("state");
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("ipmi_sim.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "ipmi_sim", "-n", "-p", "-c"])
            .arg(self.path("lan.conf"))
            .arg("-f")
            .arg(self.path("bmc.emu"))
            .arg("-s")
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.sim = Some(child);
        let ns = self.ns.name().to_string();
        let want = self.socket_addr().to_string();
        let listening = wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            Command::new("ip")
                .args(["netns", "exec", &ns, "ss", "-Hlun"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains(&want))
                .unwrap_or(false)
        });
        assert!(listening, "ipmi_sim does not listen on {want}:\n{}", self.sim_log());
    }

    fn stop_sim(&mut self) {
        if let Some(mut c) = self.sim.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn sim_log(&self) -> String {
        std::fs::read_to_string(self.path("ipmi_sim.log")).unwrap_or_default()
    }

    /// Restarts ipmi_sim with another password for the main user (the machine keeps running).
    pub fn set_password(&mut self, password: &str) {
        self.stop_sim();
        self.password = password.to_string();
        self.write_lan_conf();
        self.start_sim();
    }

    /// Drops (false) or passes again (true) everything that arrives in the BMC's namespace.
    pub fn set_reachable(&self, reachable: bool) {
        let ns = self.ns.name();
        if reachable {
            run(&["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "bmc_rig"]);
        } else {
            run(&["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "bmc_rig"]);
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "nft",
                "add chain inet bmc_rig input { type filter hook input priority 0; policy drop; }",
            ]);
        }
    }

    /// Runs the power switch script directly (as ipmi_sim does).
    pub fn power_script(&self, args: &[&str]) -> Output {
        Command::new(self.path("power.sh")).args(args).output().unwrap()
    }

    /// Whether the machine is running (what the power switch reports).
    pub fn machine_on(&self) -> bool {
        String::from_utf8_lossy(&self.power_script(&["get", "power"]).stdout).contains("power:1")
    }

    /// The power log, oldest first.
    pub fn power_log(&self) -> Vec<PowerEvent> {
        std::fs::read_to_string(self.path("power.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (what, at) = l.split_once(' ')?;
                Some(PowerEvent { on: what == "on", at: at.trim().parse().ok()? })
            })
            .collect()
    }

    /// `ipmitool -I lanplus -C cipher -H addr -U user -P password ARGS` from `net`'s client
    /// namespace.
    pub fn ipmitool(&self, net: &MgmtNet, cipher: u8, user: &str, password: &str, args: &[&str]) -> Output {
        let addr = self.addr.to_string();
        let cipher = cipher.to_string();
        let mut v = vec!["ipmitool", "-I", "lanplus", "-C", &cipher, "-H", &addr, "-U", user, "-P", password];
        v.extend_from_slice(args);
        // -N 1 -R 2: one-second timeouts, two tries, so a refused login fails fast.
        v.splice(1..1, ["-N", "1", "-R", "2"]);
        net.client_cmd(&v).output().unwrap()
    }

    /// `fence_ipmilan` (fence-agents' stdin protocol) from the client namespace.
    pub fn fence_ipmilan(&self, net: &MgmtNet, action: &str, cipher: u8) -> Output {
        use std::io::Write;
        let mut child = net
            .client_cmd(&["fence_ipmilan"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = format!(
            "action={action}\nip={}\nusername={}\npassword={}\nlanplus=1\ncipher={cipher}\npower_wait=0\n",
            self.addr, self.user, self.password
        );
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Waits (bounded) until the machine is in the given state.
    pub fn wait_machine(&self, on: bool, timeout: Duration) -> bool {
        wait_for(timeout, Duration::from_millis(20), || self.machine_on() == on)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A BMC like [`Bmc::start`] whose chassis power switch is the program `switch`, called
    /// as `switch DIR get power | set power 0|1 | set reset 1` with DIR = [`Bmc::dir`] (and
    /// printing `power:0|1` for `get`): the caller writes the machine into DIR and owns it
    /// (tests/common/machine.rs). Nothing is powered on here.
    pub fn start_switch(net: &MgmtNet, addr: &str, user: &str, password: &str, switch: &Path) -> Bmc {
        let ns = Netns::new(format!("tbmc{}", unique()));
        let ip: IpAddr = addr.parse().unwrap();
        net.attach(ns.name(), "mgmt0", &format!("{addr}/{}", if ip.is_ipv6() { 64 } else { 24 }));
        let dir = TempDir::new("bmc");
        let mut bmc = Bmc { ns, dir, addr: ip, user: user.to_string(), password: password.to_string(), sim: None };
        let power = bmc.path("power.sh");
        std::fs::write(&power, format!("#!/bin/sh\nexec '{}' '{}' \"$@\"\n", switch.display(), bmc.dir().display()))
            .unwrap();
        std::fs::set_permissions(&power, std::fs::Permissions::from_mode(0o755)).unwrap();
        bmc.write_lan_conf();
        std::fs::write(
            bmc.path("bmc.emu"),
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
        )
        .unwrap();
        bmc.start_sim();
        bmc
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- ipmi_sim log ({}) -----\n{}", self.ns.name(), self.sim_log());
        }
        self.stop_sim();
        // Power the machine off (kills its PID namespace).
        let _ = self.power_script(&["set", "power", "0"]);
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.machine_on() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
