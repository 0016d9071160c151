//! Guests against the real kernel: a busybox-static guest root, the static escape probe
//! (`examples/guest_probe.rs`) run inside as the guest's root, cgroup limits on this host's
//! cgroup layout, stop, reboot inside, and both network modes. Every guest runs in a
//! fresh network namespace on 192.0.2.0/24 and has unique names (guest, runtime
//! directory, cgroup parent), removed on drop.
//!
//! Run: `cargo test --test guest -- --nocapture` (root; prints what it measured).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::guest::*;
use common::*;

use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The CPU measurement runs alone; everything else may run side by side.
static CPU: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|e| e.into_inner())
}

fn prerequisites() -> bool {
    if !require(&["busybox", "ip", "nsenter", "socat", "timeout", "ldd"]) {
        return false;
    }
    // The guest root gets a copy of /bin/busybox: it must not need shared libraries.
    let bb = stdout(&run(&["sh", "-c", "command -v busybox"])).trim().to_string();
    if try_run(&["ldd", &bb]) {
        return prereq::missing(
            &format!("a static busybox ({bb} is not)"),
            "scripts/prereqs test installs busybox-static",
        );
    }
    true
}

fn netns() -> Netns {
    Netns::new(format!("tg{}", unique()))
}

/// What every attempt in the escape battery must answer.
fn expected(host_pid: u32) -> Vec<(&'static str, Vec<String>)> {
    let one = |s: &str| vec![s.to_string()];
    let mut v: Vec<(&'static str, Vec<String>)> = vec![
        ("uid", one("0")),
        ("capbnd", one(&format!("{:016x}", tandem::config::guest::DEFAULT_CAPS))),
        ("capeff", one(&format!("{:016x}", tandem::config::guest::DEFAULT_CAPS))),
        ("nonewprivs", one("1")),
        ("seccomp", one("2")),
        ("init_fds", one("0,1,2")),
        ("mount_x32", one("ENOSYS")),
        ("chroot_jail", one("ok")),
        ("chroot_dot", one("ok")),
        ("chroot_escape", one("contained")),
        ("write_/proc/sys/kernel/hostname", one("EROFS")),
        ("write_/proc/sys/vm/drop_caches", one("EROFS")),
        ("mkdir_/sys", one("EROFS")),
        ("read_/proc/keys", one("0")),
        ("read_/proc/timer_list", one("0")),
        ("entries_/sys/firmware", one("0")),
        ("kill_host_pid", one("ESRCH")),
        ("host_pid_in_proc", one("hidden")),
        ("open_/proc/1/ns/net", one("ok")),
        ("clone3", one("ENOSYS")),
        ("control_socket", one("ENOENT")),
        ("host_socket", one("ENOENT")),
    ];
    // Files this kernel may not have at all (no MAGIC_SYSRQ, no PROC_KCORE): then absent
    // in the guest too; when present, read-only / masked.
    let sysrq = if Path::new("/proc/sysrq-trigger").exists() { "EROFS" } else { "ENOENT" };
    v.push(("write_/proc/sysrq-trigger", one(sysrq)));
    let kcore = if Path::new("/proc/kcore").exists() { "0" } else { "ENOENT" };
    v.push(("read_/proc/kcore", one(kcore)));
    for name in [
        "mount",
        "umount",
        "umount_detach",
        "pivot_root",
        "open_tree",
        "fsopen",
        "mknod_block",
        "mknod_mem",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "open_by_handle_at",
        "name_to_handle_at",
        "userfaultfd",
        "io_uring_setup",
        "swapon",
        "acct",
        "iopl",
        "ioperm",
        "syslog",
        "lookup_dcookie",
        "reboot_cad_on",
        "settimeofday",
        "clock_settime",
        "adjtimex",
        "sethostname",
        "socket_raw",
        "socket_packet",
        "netlink_setlink",
        "ptrace_attach_init",
        "ptrace_traceme",
        "process_vm_readv",
        "setns",
        "unshare_user",
        "unshare_mount",
        "clone_newuser",
        "ioctl_tiocsti",
    ] {
        v.push((name, one("EPERM")));
    }
    for dev in ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/loop0"]
    {
        v.push((Box::leak(format!("open_{dev}").into_boxed_str()), one("ENOENT")));
    }
    let _ = host_pid;
    v
}

fn check_battery(what: &str, text: &str, host_pid: u32) {
    assert!(text.contains("\ndone"), "{what}: the battery did not finish:\n{text}");
    let mut bad = Vec::new();
    for (name, want) in expected(host_pid) {
        match probe_value(text, name) {
            Some(v) if want.iter().any(|w| w == v) => {}
            got => bad.push(format!("{name}: got {got:?}, want {want:?}")),
        }
    }
    assert!(bad.is_empty(), "{what}: escape battery:\n{}\n--- output ---\n{text}", bad.join("\n"));
}

#[test]
fn escape_battery_enter_and_a_clean_poweroff() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let root = GuestRoot::busybox();
    let sock = root.dir.path().join("ctl.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let me = std::process::id();
    let battery = format!("/probe battery {me} {} {}", root.host_marker.display(), sock.display());
    root.write(
        "/etc/inittab",
        &format!(
            "::sysinit:{battery} > /var/battery.out 2>&1\n::respawn:/bin/sleep 1000\n\
             ::shutdown:/bin/echo guest shutting down\n"
        ),
        0o644,
    );
    let rig = GuestRig::new(&root, "stop_signal=SIGUSR2::stop_timeout=15s::pids=256::memory=256M", Some(netns()));
    let t0 = Instant::now();
    rig.start_ok();
    eprintln!("start: {:?}", t0.elapsed());
    assert!(rig.running());

    // The battery as run by the guest's init at boot, and again through `enter`.
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || root
            .read("/var/battery.out")
            .contains("\ndone")),
        "boot battery:\n{}\nconsole:\n{}",
        root.read("/var/battery.out"),
        rig.console()
    );
    check_battery("at boot", &root.read("/var/battery.out"), me);
    let args: Vec<&str> = battery.split(' ').collect();
    let o = rig.enter(&args);
    check_battery("entered", &out(&o), me);

    // Host side: the guest's init holds exactly its console on 0, 1, 2.
    let init = rig.init_pid();
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "init's fds");

    // `enter` sees only the guest.
    let o = rig.enter(&["hostname"]);
    assert_eq!(out(&o).trim(), rig.name, "{}", err(&o));
    let o = rig.enter(&["id"]);
    assert!(out(&o).starts_with("uid=0(root) gid=0(root)"), "{}{}", out(&o), err(&o));
    let o = rig.enter(&["ps"]);
    let ps = out(&o);
    let rows: Vec<&str> = ps.lines().skip(1).collect();
    assert!(rows.iter().any(|r| r.trim_start().starts_with("1 ") && r.contains("init")), "{ps}");
    assert!(rows.iter().all(|r| r.contains("init") || r.contains("sleep") || r.contains("ps")), "{ps}");
    assert!(rows.len() <= 4, "ps shows more than the guest:\n{ps}");
    // No network setting can change: netlink answers EPERM.
    for cmd in [&["ip", "addr", "add", "192.0.2.99/24", "dev", "lo"][..], &["ip", "link", "set", "lo", "down"][..]] {
        let o = rig.enter(cmd);
        assert!(!o.status.success(), "{cmd:?} succeeded");
        assert!(err(&o).contains("Operation not permitted"), "{cmd:?}: {}", err(&o));
    }
    let o = rig.ctl(&["list"]);
    assert!(out(&o).contains(&format!("{} running init={init} ", rig.name)), "{}", out(&o));

    // busybox init powers off on SIGUSR2: its shutdown actions run, then reboot(2)
    // (POWER_OFF) inside the PID namespace ends the guest.
    let cgroups = rig.cgroups();
    let t0 = Instant::now();
    let o = rig.stop();
    let took = t0.elapsed();
    assert!(o.status.success(), "stop: {}", err(&o));
    eprintln!("busybox poweroff: {took:?}; ended: {}", rig.ended().trim());
    assert!(took < Duration::from_secs(15), "the guest's own poweroff took {took:?}");
    assert!(rig.ended().contains("halted or powered off"), "{}", rig.ended());
    assert!(rig.console().contains("guest shutting down"), "{}", rig.console());
    for (_, d) in cgroups {
        assert!(!d.exists(), "{} is left", d.display());
    }
}

#[test]
fn reboot_in_the_guest_ends_only_the_guest() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let root = GuestRoot::busybox();
    // The default stop signal, SIGINT, is busybox init's ctrl-alt-del.
    root.write("/etc/inittab", "::respawn:/bin/sleep 1000\n::ctrlaltdel:/sbin/reboot\n", 0o644);
    let rig = GuestRig::new(&root, "", Some(netns()));
    rig.start_ok();
    let init = rig.init_pid();
    let cgroups = rig.cgroups();
    let o = rig.enter(&["/probe", "reboot"]);
    // The probe dies with its PID namespace (killed), or sees its call return never.
    assert!(!out(&o).contains("reboot EPERM"), "{}", out(&o));
    assert!(rig.wait_stopped(Duration::from_secs(5)), "the guest still runs after reboot(2)");
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || rig.ended().contains("rebooted")),
        "{}",
        rig.ended()
    );
    assert!(!Path::new(&format!("/proc/{init}/fd")).exists(), "the guest's init is still there");
    // The host is up, and its monitor cleaned up without any stop.
    assert!(Path::new("/proc/1/stat").exists());
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(50), || cgroups.iter().all(|(_, d)| !d.exists())),
        "cgroups left after the guest's reboot"
    );
    eprintln!("after reboot(2) in the guest: {}", rig.ended().trim());
    // And it starts again; the default stop (SIGINT: ctrl-alt-del, a reboot) ends it too.
    rig.start_ok();
    assert!(rig.running());
    let t0 = Instant::now();
    assert!(rig.stop().status.success());
    eprintln!("stop with the default SIGINT (busybox ctrlaltdel): {:?}, {}", t0.elapsed(), rig.ended().trim());
    assert!(rig.ended().contains("rebooted"), "{}", rig.ended());
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let root = GuestRoot::busybox();
    let init = root.script_init("");
    let rig = GuestRig::new(&root, &format!("{init}::pids=32"), Some(netns()));
    rig.start_ok();
    let o = rig.enter(&["/probe", "forks", "10000"]);
    let text = out(&o);
    let line = probe_value(&text, "forks").unwrap_or_else(|| panic!("{text}{}", err(&o)));
    let mut w = line.split(' ');
    let made: u32 = w.next().unwrap().parse().unwrap();
    assert_eq!(w.next(), Some("EAGAIN"), "{line}");
    assert!(made < 32, "{made} forks with pids.max 32");
    let events = std::fs::read_to_string(rig.cgroup_of("pids").join("pids.events")).unwrap();
    assert!(events.lines().any(|l| l.starts_with("max ") && l != "max 0"), "{events}");
    // The host forks as usual.
    assert!(std::process::Command::new("true").status().unwrap().success());
    eprintln!("fork bomb: {made} forks, then EAGAIN; {}", events.trim());
    let t0 = Instant::now();
    assert!(rig.stop().status.success());
    eprintln!("stop (SIGTERM to a shell init): {:?}", t0.elapsed());
}

/// `/proc/PID/status` lines `Seccomp:`, `NoNewPrivs:` and `CapBnd:` of a process.
fn rights_of(status: &str) -> (String, String, String) {
    let field =
        |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string()).unwrap_or_default();
    (field("Seccomp:"), field("NoNewPrivs:"), field("CapBnd:"))
}

#[test]
fn seccomp_off_drops_only_the_filter() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let mut seen = Vec::new();
    for (opts, filter) in [("", "2"), ("::seccomp=off", "0")] {
        let root = GuestRoot::busybox();
        let init = root.script_init("");
        let rig = GuestRig::new(&root, &format!("{init}{opts}"), Some(netns()));
        rig.start_ok();
        let host = std::fs::read_to_string(format!("/proc/{}/status", rig.init_pid())).unwrap();
        let o = rig.enter(&["cat", "/proc/self/status"]);
        let (init_rights, entered) = (rights_of(&host), rights_of(&out(&o)));
        // Mode 2 is "filter"; 0 none. The rest of the rights are the same either way.
        assert_eq!(init_rights.0, filter, "init with '{opts}': {host}");
        assert_eq!(entered, init_rights, "entered with '{opts}': {}", err(&o));
        assert_eq!(init_rights.1, "1", "no_new_privs");
        seen.push(init_rights.2.clone());
        assert!(rig.stop().status.success());
    }
    assert_eq!(seen[0], seen[1], "the bounding set differs");
}

#[test]
fn memory_hog_is_oom_killed_inside_the_guest_only() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let root = GuestRoot::busybox();
    let init = root.script_init("");
    let rig = GuestRig::new(&root, &format!("{init}::memory=48M"), Some(netns()));
    rig.start_ok();
    let init_pid = rig.init_pid();
    let memcg = rig.cgroup_of("memory");
    assert_eq!(std::fs::read_to_string(memcg.join("memory.limit_in_bytes")).unwrap().trim(), (48u64 << 20).to_string());
    let o = rig.enter(&["/probe", "hog", "512"]);
    assert_eq!(o.status.code(), Some(128 + 9), "the hog was not killed: {}{}", out(&o), err(&o));
    assert!(!out(&o).contains("survived"));
    let oom = std::fs::read_to_string(memcg.join("memory.oom_control")).unwrap();
    let kills: u64 = oom.lines().find_map(|l| l.strip_prefix("oom_kill ")).unwrap_or("0").parse().unwrap();
    assert!(kills >= 1, "{oom}");
    // The guest's init survives, and so does the guest.
    assert!(rig.running());
    assert_eq!(rig.init_pid(), init_pid);
    eprintln!("memory hog: OOM-killed inside the guest ({kills} kill), init survives");
    assert!(rig.stop().status.success());
}

#[test]
fn cpu_quota_holds_a_busy_loop() {
    if !prerequisites() {
        return;
    }
    let _g = CPU.write().unwrap_or_else(|e| e.into_inner());
    let root = GuestRoot::busybox();
    let init = root.script_init("");
    let rig = GuestRig::new(&root, &format!("{init}::cpu=50%"), Some(netns()));
    rig.start_ok();
    let cg = rig.cgroup_of("cpu");
    assert_eq!(std::fs::read_to_string(cg.join("cpu.cfs_quota_us")).unwrap().trim(), "50000");
    assert_eq!(std::fs::read_to_string(cg.join("cpu.cfs_period_us")).unwrap().trim(), "100000");
    let acct = rig.cgroup_of("cpuacct").join("cpuacct.usage");
    // Two busy loops want two CPUs; the quota allows half of one.
    let mut spin = rig.ctl_cmd(&["enter", &rig.name, "sh", "-c", "/probe spin 6 & /probe spin 6; wait"]);
    let mut child = spin.stdout(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let read = || -> (u64, Instant) {
        let u = std::fs::read_to_string(&acct).unwrap().trim().parse().unwrap();
        (u, Instant::now())
    };
    let (u1, t1) = read();
    std::thread::sleep(Duration::from_millis(4000));
    let (u2, t2) = read();
    let rate = (u2 - u1) as f64 / (t2 - t1).as_nanos() as f64;
    let _ = child.wait();
    eprintln!("cpu=50%: the guest used {:.1}% of one CPU over {:?}", rate * 100.0, t2 - t1);
    assert!((0.45..=0.55).contains(&rate), "cpu usage {rate:.3} of one CPU, quota 0.50 ± 10 %");
    assert!(rig.stop().status.success());
}

#[test]
fn stop_kills_a_stubborn_init_and_leaves_nothing() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let root = GuestRoot::busybox();
    root.write(
        "/stubborn.sh",
        "#!/bin/sh\ntrap '' TERM INT HUP USR1 USR2 PWR\nsleep 1000 &\nwhile :; do sleep 1; done\n",
        0o755,
    );
    let rig = GuestRig::new(
        &root,
        "init=/stubborn.sh::stop_signal=SIGTERM::stop_timeout=1s::pids=64::memory=64M::cpu=80%",
        Some(netns()),
    );
    rig.start_ok();
    let init = rig.init_pid();
    let monitor: i32 = rig.state_value("monitor_pid").unwrap().parse().unwrap();
    let pidns = ns_inode(init, "pid").unwrap();
    let mntns = ns_inode(init, "mnt").unwrap();
    let cgroups = rig.cgroups();
    assert!(cgroups.iter().any(|(v2, _)| *v2) || !Path::new("/sys/fs/cgroup/unified").exists(), "{cgroups:?}");
    assert!(pids_in_ns("pid", &pidns).len() >= 2, "init and its sleep");
    assert!(!host_mounts_under(&root.root).iter().any(|m| m.contains("/proc")), "guest mounts leak into the host");

    let t0 = Instant::now();
    let o = rig.stop();
    let took = t0.elapsed();
    assert!(o.status.success(), "stop: {}", err(&o));
    eprintln!("stop of an init that ignores SIGTERM (stop_timeout=1s): {took:?}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(6), "{took:?}");
    assert!(rig.ended().contains("SIGKILL"), "{}", rig.ended());
    // No process, no mount, no cgroup, no state.
    assert!(pids_in_ns("pid", &pidns).is_empty(), "processes left in the guest's PID namespace");
    assert!(pids_in_ns("mnt", &mntns).is_empty(), "processes left in the guest's mount namespace");
    assert!(host_mounts_under(&root.root).is_empty(), "{:?}", host_mounts_under(&root.root));
    for (_, d) in &cgroups {
        assert!(!d.exists(), "{} is left", d.display());
    }
    assert!(rig.state_value("init_pid").is_none(), "state file left");
    let stat = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "the monitor still runs: {stat}");
    let o = rig.ctl(&["list"]);
    assert!(out(&o).contains(&format!("{} stopped", rig.name)), "{}", out(&o));
    // Stopping again is fine.
    assert!(rig.stop().status.success());
}

#[test]
fn a_failed_start_says_why_and_leaves_nothing() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let root = GuestRoot::busybox();
    let rig = GuestRig::new(&root, "init=/nonexistent::pids=16", Some(netns()));
    let o = rig.start();
    assert!(!o.status.success());
    assert!(err(&o).contains("execute /nonexistent in the guest: No such file or directory"), "{}", err(&o));
    assert!(!rig.running());
    for d in rig.possible_cgroups() {
        assert!(!d.exists(), "{} is left", d.display());
    }
    let rig2 = GuestRig::new(&root, "net=macvlan:nope0", Some(netns()));
    let o = rig2.start();
    assert!(err(&o).contains("there is no interface nope0"), "{}", err(&o));
    let rig3 = GuestRig::new(&GuestRoot { root: "/nonexistent/root".into(), ..GuestRoot::busybox() }, "", None);
    let o = rig3.start();
    assert!(err(&o).contains("root directory /nonexistent/root"), "{}", err(&o));
}

#[test]
fn host_network_guest_serves_the_floating_address() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let (ns, pair) = net_pair();
    // The group's `ip` resource would add the floating address to the host's interface.
    run(&["ip", "-n", ns.name(), "addr", "add", "192.0.2.50/24", "dev", "vh"]);
    let root = GuestRoot::busybox();
    // Port 80: NET_BIND_SERVICE is in the default set.
    let init = root.script_init("/usr/sbin/httpd -p 192.0.2.50:80 -h /www");
    let rig = GuestRig::new(&root, &init, Some(ns));
    rig.start_ok();
    let got = http_get_within(&pair.client, "http://192.0.2.50/", Duration::from_secs(5));
    assert_eq!(got.as_deref(), Some("hello from the guest\n"), "console:\n{}", rig.console());
    assert!(rig.stop().status.success());
    assert_eq!(http_get(&pair.client, "http://192.0.2.50/"), None, "still served after stop");
}

#[test]
fn private_network_guest_answers_on_its_macvlan() {
    if !prerequisites() {
        return;
    }
    let _g = shared();
    let (ns, pair) = net_pair();
    let root = GuestRoot::busybox();
    let init = root.script_init("/usr/sbin/httpd -p 80 -h /www");
    let nsname = ns.name().to_string();
    let rig = GuestRig::new(&root, &format!("{init}::net=macvlan:vh"), Some(ns));
    rig.start_ok();
    let o = rig.enter(&["ip", "-o", "link"]);
    assert!(out(&o).contains("eth0@"), "{}", out(&o));
    assert!(!out(&o).contains("vh"), "{}", out(&o));
    // The group's address goes into the guest, announced from inside.
    let o = rig.ctl(&["addr", &rig.name, "192.0.2.60/24"]);
    assert!(o.status.success(), "addr: {}", err(&o));
    let got = http_get_within(&pair.client, "http://192.0.2.60/", Duration::from_secs(5));
    assert_eq!(got.as_deref(), Some("hello from the guest\n"), "console:\n{}", rig.console());
    let host_addrs = out(&run(&["ip", "-n", &nsname, "-o", "addr"]));
    assert!(!host_addrs.contains("192.0.2.60"), "{host_addrs}");
    // The guest cannot take it away.
    let o = rig.enter(&["ip", "addr", "del", "192.0.2.60/24", "dev", "eth0"]);
    assert!(err(&o).contains("Operation not permitted"), "{}", err(&o));
    assert!(rig.stop().status.success());
    assert_eq!(http_get(&pair.client, "http://192.0.2.60/"), None, "still served after stop");
}
