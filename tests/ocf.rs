//! OCF both ways, against the real programs:
//! - tandem's agents as OCF agents (`tandem ocf AGENT ACTION`, and the binary linked as
//!   `resource.d/tandem/AGENT`): meta-data valid against the OCF 1.1 schema (ClusterLabs'
//!   ra-api.rng, tests/fixtures/ocf) and resource-agents' ra-api-1.dtd; exit codes;
//!   resource-agents' `ocf-tester` drives `ip` and `script` in a network namespace, `mount`
//!   on a loop device and `guest` on a busybox guest root. `drbd` and `lvm` are not driven by
//!   ocf-tester here: this host's kernel has no DRBD module and no device-mapper (no volume
//!   group can be activated); what it can check of them is checked below. DRBD and LVM are
//!   covered in the QEMU VM rig (tests/vm).
//! - OCF agents as tandem resources (`ocf::PROVIDER:TYPE::…`): check-config asks the agent
//!   (meta-data, validate-all), `tandem agent` runs resource-agents' Dummy, and a two-node
//!   cluster fails over a group with an OCF service agent, and one of resource-agents'
//!   IPaddr2 and Dummy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::ocf::{Provider, TandemRa, AGENTS};
use common::*;

const RNG: &str = "tests/fixtures/ocf/ra-api-1.1.rng";
const DTD_DIR: &str = "/usr/share/resource-agents";

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `tandem ocf AGENT ACTION` with exactly these OCF_RESKEY_ parameters.
fn ocf(agent: &str, action: &str, params: &[(&str, &str)]) -> Output {
    let mut c = Command::new(tandem());
    c.args(["ocf", agent, action]);
    for (k, _) in std::env::vars() {
        if k.starts_with("OCF_") {
            c.env_remove(k);
        }
    }
    for (k, v) in params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    c.output().unwrap()
}

/// Validates `xml` with xmllint against the OCF 1.1 schema and, as ocf-tester does, the DTD.
fn validate(xml: &[u8], what: &str) {
    let dir = TempDir::new("ocf-md");
    let f = dir.path().join("md.xml");
    std::fs::write(&f, xml).unwrap();
    let o = Command::new("xmllint").args(["--noout", "--relaxng"]).arg(repo().join(RNG)).arg(&f).output().unwrap();
    assert!(o.status.success(), "{what}: not valid against {RNG}:\n{}", text(&o));
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("cd {DTD_DIR} && xmllint --noout --valid - < {}", f.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{what}: not valid against ra-api-1.dtd:\n{}", text(&o));
}

#[test]
fn meta_data_is_valid_ocf() {
    if !require(&["xmllint"]) {
        return;
    }
    assert!(Path::new(DTD_DIR).join("ra-api-1.dtd").exists() || std::env::var("CI").as_deref() != Ok("true"));
    let ra = TandemRa::new();
    for a in AGENTS {
        let o = ocf(a, "meta-data", &[]);
        assert_eq!(code(&o), 0, "{a}: {}", text(&o));
        validate(&o.stdout, &format!("tandem ocf {a} meta-data"));
        // The same through the link, busybox style.
        let l = Command::new(ra.agent(a)).arg("meta-data").output().unwrap();
        assert_eq!((code(&l), &l.stdout), (0, &o.stdout), "{a} via its link");
    }
    // The schema's own example passes too (the fixture is the real schema).
    let o = Command::new("xmllint")
        .args(["--noout", "--relaxng", RNG, "tests/fixtures/ocf/ra-metadata-example.xml"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn exit_codes_of_the_ocf_command() {
    // No root needed: nothing here changes the host.
    let ip = [("ip", "192.0.2.77"), ("cidr_netmask", "24"), ("nic", "tandem-no-such0")];
    assert_eq!(code(&ocf("ip", "monitor", &ip)), 7, "an address on a missing interface is not running");
    assert_eq!(code(&ocf("ip", "stop", &ip)), 0, "stopping it succeeds");
    let o = ocf("ip", "start", &ip);
    assert_eq!(code(&o), 2, "start on this host: OCF_ERR_ARGS: {}", text(&o));
    assert!(text(&o).contains("tandem-no-such0"), "{}", text(&o));
    let o = ocf("ip", "validate-all", &[]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(text(&o).contains("parameter 'ip' is required"), "{}", text(&o));
    let o = ocf("ip", "validate-all", &[("ip", "192.0.2.7"), ("netmask", "24")]);
    assert_eq!(code(&o), 6);
    assert!(text(&o).contains("unknown parameter 'netmask'"), "{}", text(&o));
    // The manager's own parameters are ignored.
    let o =
        ocf("mount", "monitor", &[("device", "/dev/tandem-none"), ("directory", "/mnt"), ("CRM_meta_interval", "0")]);
    assert_eq!(code(&o), 7, "{}", text(&o));
    for action in ["promote", "demote", "notify", "reload", "migrate_to", "status"] {
        assert_eq!(code(&ocf("ip", action, &ip)), 3, "{action}");
    }
    assert_eq!(code(&ocf("ip", "usage", &[])), 0);
    let o = Command::new(tandem()).args(["ocf", "ip"]).output().unwrap();
    assert_eq!(code(&o), 2, "no action: {}", text(&o));
    assert_eq!(code(&ocf("nosuch", "monitor", &[])), 6);
    // The guest agent: meta-data, and a guest that never ran is valid and not running.
    let g = [("name", &*format!("ocfg{}", std::process::id())), ("root", "/srv/g1")];
    assert_eq!(code(&ocf("guest", "meta-data", &[])), 0);
    let o = ocf("guest", "validate-all", &g);
    assert_eq!(code(&o), 0, "guest validate-all: {}", text(&o));
    let o = ocf("guest", "monitor", &g);
    assert_eq!(code(&o), 7, "guest monitor: {}", text(&o));
    // A bad guest name is still a configuration error first.
    assert_eq!(code(&ocf("guest", "start", &[("name", "a b"), ("root", "/x")])), 6);
}

#[test]
fn drbd_and_lvm_without_kernel_support() {
    // What this host can check of the agents ocf-tester cannot drive here: no DRBD module,
    // no device-mapper.
    if Path::new("/sys/module/drbd").exists() || Path::new("/dev/mapper/control").exists() {
        eprintln!("SKIP: this host has DRBD or device-mapper; the VM rig covers them");
        return;
    }
    let o = ocf("drbd", "monitor", &[("drbd_resource", "r0")]);
    assert_eq!(code(&o), 7, "{}", text(&o));
    let o = ocf("drbd", "start", &[("drbd_resource", "r0")]);
    assert_eq!(code(&o), 5, "no DRBD module: OCF_ERR_INSTALLED: {}", text(&o));
    let o = ocf("lvm", "monitor", &[("volgrpname", "tandem_none_vg")]);
    assert!(matches!(code(&o), 5 | 7), "{}", text(&o));
}

/// Runs ocf-tester on `agent` with `params` (in `netns` when given); asserts it passes.
fn ocf_tester(agent: &Path, name: &str, params: &[(&str, &str)], wrap: &[&str]) {
    let mut c = Command::new(wrap.first().copied().unwrap_or("ocf-tester"));
    if !wrap.is_empty() {
        c.args(&wrap[1..]).arg("ocf-tester");
    }
    c.args(["-n", name]);
    for (k, v) in params {
        c.arg("-o").arg(format!("{k}={v}"));
    }
    c.arg(agent);
    for (k, _) in std::env::vars() {
        if k.starts_with("OCF_") {
            c.env_remove(k);
        }
    }
    let t0 = Instant::now();
    let o = c.output().unwrap();
    let out = text(&o);
    assert!(o.status.success() && out.contains("passed all tests"), "ocf-tester {name}:\n{out}");
    eprintln!("ocf-tester {name}: passed in {:?}", t0.elapsed());
}

#[test]
fn ocf_tester_drives_ip_in_a_namespace() {
    if !require(&["ocf-tester", "ip", "xmllint"]) {
        return;
    }
    let ra = TandemRa::new();
    let ns = Netns::new(format!("tocf{}", unique()));
    ns.ip(&["link", "add", "lan0", "type", "veth", "peer", "name", "peer0"]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "lan0"]);
    ns.link("lan0", true);
    ns.link("peer0", true);
    let params =
        [("ip", "192.0.2.50"), ("cidr_netmask", "24"), ("nic", "lan0"), ("arp_count", "2"), ("arp_interval", "10")];
    ocf_tester(&ra.agent("ip"), "web-ip", &params, &["ip", "netns", "exec", ns.name()]);
    assert!(!ns.has_addr("192.0.2.50"), "ocf-tester ends with a stop");
    // Without a prefix and an interface: the subnet's, found on the host (as IPaddr2 does).
    ocf_tester(&ra.agent("ip"), "web-ip2", &[("ip", "192.0.2.51")], &["ip", "netns", "exec", ns.name()]);
    // Start really adds the address, and announces it: the first gratuitous ARP at once, the
    // others from a background child, so start returns before they are all out.
    let env = |c: &mut Command| {
        c.env("OCF_ROOT", "/usr/lib/ocf").env("OCF_RESKEY_ip", "192.0.2.52").env("OCF_RESKEY_nic", "lan0");
        c.env("OCF_RESKEY_arp_count", "4").env("OCF_RESKEY_arp_interval", "150");
    };
    let arps = count_arps(&ns, "peer0", [192, 0, 2, 52], Duration::from_millis(1500));
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns.name()]).arg(ra.agent("ip")).arg("start");
    env(&mut c);
    let t0 = Instant::now();
    let o = c.output().unwrap();
    let took = t0.elapsed();
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(took < Duration::from_millis(400), "start waited for the announcements: {took:?}");
    assert!(ns.has_addr("192.0.2.52"));
    assert_eq!(arps.join().unwrap(), 4, "gratuitous ARPs for 192.0.2.52");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns.name()]).arg(ra.agent("ip")).arg("stop");
    env(&mut c);
    assert_eq!(code(&c.output().unwrap()), 0);
    assert!(!ns.has_addr("192.0.2.52"));
}

#[test]
fn ocf_tester_drives_script_in_a_namespace() {
    // ocf:tandem:script running the test TCP service (an LSB script) on the namespace's address.
    if !require(&["ocf-tester", "ip", "socat", "ss", "xmllint"]) {
        return;
    }
    let ra = TandemRa::new();
    let ns = Netns::new(format!("tocs{}", unique()));
    ns.ip(&["link", "add", "lan0", "type", "veth", "peer", "name", "peer0"]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "lan0"]);
    ns.link("lan0", true);
    ns.link("peer0", true);
    let run = TempDir::new("ocf-script");
    let svc = repo().join("tests/tools/svc").display().to_string();
    let args = format!("192.0.2.1 8080 - {}", run.path().display());
    ocf_tester(
        &ra.agent("script"),
        "web-script",
        &[("path", &svc), ("args", &args)],
        &["ip", "netns", "exec", ns.name()],
    );
}

/// Counts, on a thread in `ns`, the ARP frames on `iface` whose sender address is `addr`,
/// for `during`.
fn count_arps(ns: &Netns, iface: &str, addr: [u8; 4], during: Duration) -> std::thread::JoinHandle<usize> {
    use std::os::fd::AsFd;
    use tandem::sys::packet::{PacketSocket, ETH_P_ARP};
    let (path, iface) = (format!("/run/netns/{}", ns.name()), iface.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut s = tandem::netlink::NlSocket::new(tandem::netlink::Protocol::Route).unwrap();
        let idx = tandem::netlink::route::link_index(&mut s, &iface).unwrap();
        let ps = PacketSocket::bind(idx, ETH_P_ARP).unwrap();
        tx.send(()).unwrap();
        let (end, mut n, mut buf) = (Instant::now() + during, 0, [0u8; 2048]);
        while Instant::now() < end {
            let mut fds = [nix::poll::PollFd::new(ps.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(50u16));
            while let Ok(len) = ps.recv(&mut buf) {
                // Ethernet header (14), then ARP: sender protocol address at 14..18 of it.
                n += usize::from(len >= 42 && buf[28..32] == addr);
            }
        }
        n
    });
    rx.recv_timeout(Duration::from_secs(3)).unwrap();
    h
}

#[test]
fn ocf_tester_drives_mount_on_a_loop_device() {
    if !require(&["ocf-tester", "mkfs.ext4", "unshare", "xmllint"]) {
        return;
    }
    let ra = TandemRa::new();
    let dir = TempDir::new("ocf-mount");
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
    run(&["mkfs.ext4", "-q", "-F", img.to_str().unwrap()]);
    let dev = common::loopdev::LoopDev::attach(&img);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let device = dev.path().display().to_string();
    // A private mount namespace: nothing is left mounted on the host if the test dies.
    let wrap = ["unshare", "--mount", "--propagation", "private"];
    let d = mnt.to_str().unwrap();
    ocf_tester(&ra.agent("mount"), "data-mount", &[("device", &device), ("directory", d), ("fstype", "ext4")], &wrap);
    ocf_tester(
        &ra.agent("mount"),
        "data-mount2",
        &[("device", &device), ("directory", d), ("options", "noatime")],
        &wrap,
    );
}

/// Stops the guest and removes its run directory when the test ends, passed or not.
struct GuestCleanup<'a> {
    agent: PathBuf,
    params: &'a [(&'a str, &'a str)],
    name: String,
}

impl Drop for GuestCleanup<'_> {
    fn drop(&mut self) {
        let mut c = Command::new(&self.agent);
        c.arg("stop");
        for (k, v) in self.params {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        let _ = c.output();
        let run = Path::new("/run/tandem/guests");
        let _ = std::fs::remove_dir_all(run.join(&self.name));
        let _ = std::fs::remove_file(run.join(format!("{}.lock", self.name)));
    }
}

#[test]
fn ocf_tester_drives_guest() {
    if !require(&["ocf-tester", "busybox", "xmllint"]) {
        return;
    }
    let ra = TandemRa::new();
    let root = common::guest::GuestRoot::busybox();
    let init = root.script_init("").replace("::", " ");
    let name = format!("ocfg{}", unique().replace('-', ""));
    let dir = root.root.display().to_string();
    let options = format!("{init} net=none stop_timeout=5s");
    let params = [("name", name.as_str()), ("root", dir.as_str()), ("options", options.as_str())];
    let _cleanup = GuestCleanup { agent: ra.agent("guest"), params: &params, name: name.clone() };
    ocf_tester(&ra.agent("guest"), "vm-guest", &params, &[]);
    // ocf-tester ends with a stop: the guest is gone.
    let o = Command::new(ra.agent("guest"))
        .arg("monitor")
        .envs(params.map(|(k, v)| (format!("OCF_RESKEY_{k}"), v)))
        .output()
        .unwrap();
    assert_eq!(code(&o), 7, "{}", text(&o));
}

#[test]
fn check_config_asks_ocf_agents() {
    if !Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "resource-agents is not installed");
        eprintln!("SKIP: resource-agents is not installed");
        return;
    }
    let dir = TempDir::new("ocf-check");
    let key = dir.path().join("authkey");
    run(&[tandem(), "keygen", key.to_str().unwrap()]);
    let conf = |groups: &str| {
        let p = dir.path().join(format!("c{}.conf", unique()));
        std::fs::write(
            &p,
            format!("cluster c\nnode alpha beta\nauthkey {}\nucast lo 127.0.0.2\n{groups}\n", key.display()),
        )
        .unwrap();
        p
    };
    let check = |p: &Path| {
        let o = Command::new(tandem()).args(["check-config", "--node", "alpha", "-c"]).arg(p).output().unwrap();
        (code(&o), text(&o))
    };
    let state = dir.path().join("d.state");
    let good = conf(&format!("group web alpha ocf::heartbeat:Dummy::state={}", state.display()));
    let (c, out) = check(&good);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("OK:"), "{out}");
    let bad = conf(
        "group a alpha ocf::heartbeat:IPaddr2::cidr_netmask=24::bogus=1\n\
         group b beta ocf::heartbeat:IPaddr2::ip=192.0.2.77::nic=tandem-no-such0\n\
         group c beta ocf::nosuch:Agent",
    );
    let (c, out) = check(&bad);
    assert_eq!(c, 2, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.iter().any(|l| l.ends_with(
            ":5: group a: ocf::heartbeat:IPaddr2::cidr_netmask=24::bogus=1: OCF agent \
             heartbeat:IPaddr2: parameter 'ip' is required by the agent's meta-data"
        )),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.contains(":5: warning: group a:") && l.contains("parameter 'bogus' is not in")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.contains(":6: group b:")
            && l.contains("validate-all failed: exited with status 6 (OCF_ERR_CONFIGURED: not configured)")
            && l.contains("tandem-no-such0")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.contains(":7: group c: ocf::nosuch:Agent: OCF agent nosuch:Agent is not installed")),
        "{out}"
    );
}

#[test]
fn ocf_info_shows_what_the_meta_data_says() {
    if !Path::new("/usr/lib/ocf/resource.d/heartbeat/IPaddr2").exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "resource-agents is not installed");
        return;
    }
    let info = |word: &str| {
        let o = Command::new(tandem()).args(["ocf", "info", word]).output().unwrap();
        (code(&o), text(&o))
    };
    // Dummy: no required parameter, its defaults as the agent prints them.
    let (c, t) = info("heartbeat:Dummy::fake=x");
    assert_eq!(c, 0, "{t}");
    let row = |name: &str| t.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or("").to_string();
    assert!(row("state").contains("/run/resource-agents/Dummy-"), "{t}");
    assert!(row("fake").ends_with(" x"), "{t}");
    assert!(t.lines().any(|l| l.starts_with("actions: ") && l.contains("monitor")), "{t}");
    // IPaddr2: ip is required; leaving it out is the same error as check-config's.
    let (c, t) = info("heartbeat:IPaddr2");
    assert_eq!(c, 2, "{t}");
    let ip: Vec<&str> = t.lines().find(|l| l.starts_with("ip ")).unwrap_or("").split_whitespace().collect();
    assert_eq!(ip.get(1), Some(&"yes"), "{t}");
    assert!(t.contains("error: parameter 'ip' is required by the agent's meta-data"), "{t}");
    let (c, t) = info("heartbeat:NoSuchAgent");
    assert_eq!(c, 2);
    assert!(t.contains("is not installed"), "{t}");
}

#[test]
fn agent_command_runs_resource_agents_dummy() {
    if !Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "resource-agents is not installed");
        return;
    }
    let dir = TempDir::new("ocf-dummy");
    let word = format!("ocf::heartbeat:Dummy::state={}", dir.path().join("state").display());
    let agent = |op: &str| {
        let o = Command::new(tandem()).args(["agent", &word, op]).output().unwrap();
        (code(&o), text(&o))
    };
    assert_eq!(agent("status").0, 3, "stopped");
    assert_eq!(agent("start").0, 0);
    assert_eq!(agent("status"), (0, format!("{word}: running\n")));
    assert_eq!(agent("start").0, 0, "start is idempotent");
    assert_eq!(agent("stop").0, 0);
    assert_eq!(agent("stop").0, 0, "stop of a stopped resource succeeds (OCF_NOT_RUNNING)");
    assert_eq!(agent("status").0, 3);
}

/// A two-node cluster of `group` at 100ms/500ms in `rig`: check-config must pass on alpha
/// first; both daemons started.
fn checked_pair(rig: &Rig, group: &str) -> (Node, Node) {
    let cfg = rig.config("keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s\nauto_failback off", group);
    let o = Command::new("ip")
        .args(["netns", "exec", rig.a.name(), tandem(), "check-config", "--node", "alpha", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    (a, b)
}

#[test]
fn ocf_resource_fails_over_in_a_cluster() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let prov = Provider::new();
    prov.svc();
    // An agent that records the environment tandem gives it.
    let envlog = TempDir::new("ocf-env");
    prov.script(
        "envlog",
        &format!(
            "[ \"$1\" = meta-data ] && {{ echo '<resource-agent name=\"envlog\"><parameters/><actions/></resource-agent>'; exit 0; }}\n\
             env | grep ^OCF_ | sort > {}/$1-$(ip netns identify $$)\n\
             case $1 in start|stop|validate-all) exit 0;; monitor) exit 7;; esac\nexit 3",
            envlog.path().display()
        ),
    );
    // An agent monitored by a monitor line: running while its state file (per node) exists;
    // each monitor appends the interval it was told.
    prov.script(
        "mon",
        &format!(
            "[ \"$1\" = meta-data ] && {{ echo '<resource-agent name=\"mon\"><parameters/><actions/></resource-agent>'; exit 0; }}\n\
             st={d}/mon-$(ip netns identify $$)\n\
             case $1 in start) touch $st; exit 0;; stop) rm -f $st; exit 0;; validate-all) exit 0;;\n\
             monitor) echo \"$OCF_RESKEY_CRM_meta_interval\" >> $st.monitor; [ -e $st ] && exit 0; exit 7;; esac\nexit 3",
            d = envlog.path().display()
        ),
    );
    let rig = Rig::new();
    let group = format!(
        "group web alpha ip::{FLOAT}/24/lan0 ocf::{p}:svc::addr={FLOAT}::port={PORT}::rundir={run} \
         ocf::{p}:envlog::x=1 ocf::{p}:mon\nmonitor 300ms web/4",
        p = prov.name,
        run = rig.dir.path().join("run").display()
    );
    let (mut a, mut b) = checked_pair(&rig, &group);
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)), "{}", a.log_text());
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || rig.ask().as_deref() == Some(rig.a.name())));
    // The environment of the OCF start, on alpha.
    let env = std::fs::read_to_string(envlog.path().join(format!("start-{}", rig.a.name()))).unwrap();
    for want in [
        "OCF_RA_VERSION_MAJOR=1",
        "OCF_RA_VERSION_MINOR=1",
        "OCF_RESKEY_CRM_meta_timeout=60000",
        "OCF_RESKEY_x=1",
        "OCF_RESOURCE_INSTANCE=web-envlog-3",
        &format!("OCF_RESOURCE_PROVIDER={}", prov.name),
        "OCF_RESOURCE_TYPE=envlog",
        "OCF_ROOT=/usr/lib/ocf",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in\n{env}");
    }
    // The monitor line's recurring checks tell the agent their interval (300 ms); the group
    // stays up on alpha meanwhile.
    let monlog = envlog.path().join(format!("mon-{}.monitor", rig.a.name()));
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
            std::fs::read_to_string(&monlog).unwrap_or_default().lines().filter(|l| *l == "300").count() >= 3
        }),
        "{:?}: {}",
        std::fs::read_to_string(&monlog),
        a.log_text()
    );
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(1)));
    a.kill9();
    rig.a.kill_all();
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(10)), "{}", b.log_text());
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || rig.ask().as_deref() == Some(rig.b.name())));
    // Stopping the group on beta stops the OCF service (monitor says 7 afterwards).
    b.signal("TERM");
    assert!(b.wait_exit(Duration::from_secs(20)).is_some());
    let left = rig.ask();
    assert!(left.is_none(), "still answering: {left:?}");
}

#[test]
fn stock_ipaddr2_and_dummy_fail_over_like_native_ones() {
    // resource-agents' own IPaddr2 and Dummy, as a group, in the namespace rig; the test TCP
    // service after them so that a client can tell which node answers.
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    for a in ["IPaddr2", "Dummy"] {
        if !Path::new("/usr/lib/ocf/resource.d/heartbeat").join(a).exists() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "resource-agents is not installed");
            eprintln!("SKIP: resource-agents is not installed");
            return;
        }
    }
    let prov = Provider::new();
    prov.svc();
    let rig = Rig::new();
    let state = rig.dir.path().join("dummy.state");
    let group = format!(
        "group web alpha ocf::heartbeat:IPaddr2::ip={FLOAT}::cidr_netmask=24::nic=lan0 \
         ocf::heartbeat:Dummy::state={} ocf::{p}:svc::addr={FLOAT}::port={PORT}::rundir={run}",
        state.display(),
        p = prov.name,
        run = rig.dir.path().join("run").display()
    );
    let (mut a, mut b) = checked_pair(&rig, &group);
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(15)), "{}", a.log_text());
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || rig.ask().as_deref() == Some(rig.a.name())));
    assert!(rig.a.has_addr(FLOAT) && !rig.b.has_addr(FLOAT));
    assert!(state.exists(), "Dummy's state file");
    a.kill9();
    rig.a.kill_all();
    let t0 = Instant::now();
    assert!(wait_group(&b, "web", "beta", "started", Duration::from_secs(15)), "{}", b.log_text());
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || rig.ask().as_deref() == Some(rig.b.name())));
    eprintln!("IPaddr2 + Dummy: beta answers {:?} after alpha was killed", t0.elapsed());
    assert!(rig.b.has_addr(FLOAT));
    // Stopping the group on beta stops all three: the address goes, Dummy's state too.
    b.signal("TERM");
    assert!(b.wait_exit(Duration::from_secs(20)).is_some());
    assert!(!rig.b.has_addr(FLOAT), "IPaddr2 stop");
    assert!(!state.exists(), "Dummy stop");
    assert!(rig.ask().is_none());
}
