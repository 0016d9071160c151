//! The escape battery of the guest tests: a static program copied into a guest's root
//! and run there as the guest's root. Built with
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --example guest_probe
//! --target x86_64-unknown-linux-gnu`.
//!
//! `guest_probe battery HOST_PID HOST_MARKER HOST_SOCKET` prints one line per attempt,
//! `NAME RESULT`, where RESULT is the errno name of the failure (`EPERM`), `ok` when the
//! call succeeded, or a word described with the check. The test asserts each line.
//!
//! Other commands: `reboot` (reboot(2) RESTART), `hog MIB` (allocate and touch),
//! `spin SECONDS` (busy loop), `forks N` (fork children that sleep a second, until N or EAGAIN).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test tool

use std::ffi::CString;
use std::io::Read;

fn errno_name(e: i32) -> String {
    let n = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ESOCKTNOSUPPORT => "ESOCKTNOSUPPORT",
        libc::ENXIO => "ENXIO",
        libc::ECONNREFUSED => "ECONNREFUSED",
        _ => return format!("E{e}"),
    };
    n.to_string()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Prints `name ok` (r >= 0) or `name ERRNO`.
fn report(name: &str, r: i64) {
    if r >= 0 {
        println!("{name} ok");
    } else {
        println!("{name} {}", errno_name(errno()));
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn sys(nr: i64, a: [u64; 6]) -> i64 {
    // SAFETY: test tool: raw syscalls with argument values that either point to live
    // memory of ours or are plain integers; the kernel is expected to refuse them.
    unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) }
}

fn p<T>(x: &T) -> u64 {
    x as *const T as u64
}

fn cp(s: &CString) -> u64 {
    s.as_ptr() as u64
}

fn status_field(key: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default()
}

fn fds_of(dir: &str) -> String {
    let mut v: Vec<i32> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
}

fn battery(host_pid: i32, host_marker: &str, host_socket: &str) {
    // --- who am I ---
    println!("uid {}", unsafe_free::getuid());
    println!("capbnd {}", status_field("CapBnd:"));
    println!("capeff {}", status_field("CapEff:"));
    println!("nonewprivs {}", status_field("NoNewPrivs:"));
    println!("seccomp {}", status_field("Seccomp:"));
    println!("init_fds {}", fds_of("/proc/1/fd"));

    // --- the filesystem tree ---
    let none = c("none");
    let tmp = c("/tmp");
    let tmpfs = c("tmpfs");
    let root = c("/");
    let dot = c(".");
    report("mount", sys(libc::SYS_mount, [cp(&none), cp(&tmp), cp(&tmpfs), 0, 0, 0]));
    report("mount_x32", sys(libc::SYS_mount | 0x4000_0000, [cp(&none), cp(&tmp), cp(&tmpfs), 0, 0, 0]));
    report("umount", sys(libc::SYS_umount2, [cp(&root), 0, 0, 0, 0, 0]));
    report("umount_detach", sys(libc::SYS_umount2, [cp(&root), libc::MNT_DETACH as u64, 0, 0, 0, 0]));
    report("pivot_root", sys(libc::SYS_pivot_root, [cp(&dot), cp(&dot), 0, 0, 0, 0]));
    report("open_tree", sys(libc::SYS_open_tree, [libc::AT_FDCWD as u64, cp(&root), 1, 0, 0, 0]));
    report("fsopen", sys(libc::SYS_fsopen, [cp(&tmpfs), 0, 0, 0, 0, 0]));
    chroot_escape(host_marker);
    let sda = c("/tmp/sda");
    report(
        "mknod_block",
        sys(libc::SYS_mknodat, [libc::AT_FDCWD as u64, cp(&sda), (libc::S_IFBLK | 0o600) as u64, 0x800, 0, 0]),
    );
    let mem = c("/tmp/mem");
    report(
        "mknod_mem",
        sys(libc::SYS_mknodat, [libc::AT_FDCWD as u64, cp(&mem), (libc::S_IFCHR | 0o600) as u64, 0x101, 0, 0]),
    );
    for dev in ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/loop0"]
    {
        let r = std::fs::OpenOptions::new().read(true).open(dev);
        println!(
            "open_{dev} {}",
            r.map(|_| "ok".to_string()).unwrap_or_else(|e| errno_name(e.raw_os_error().unwrap_or(0)))
        );
    }

    // --- the kernel ---
    let empty = c("");
    report("init_module", sys(libc::SYS_init_module, [0, 0, cp(&empty), 0, 0, 0]));
    report("finit_module", sys(libc::SYS_finit_module, [u64::MAX, cp(&empty), 0, 0, 0, 0]));
    report("delete_module", sys(libc::SYS_delete_module, [cp(&empty), 0, 0, 0, 0, 0]));
    report("kexec_load", sys(libc::SYS_kexec_load, [0, 0, 0, 0, 0, 0]));
    report("kexec_file_load", sys(libc::SYS_kexec_file_load, [u64::MAX, u64::MAX, 0, 0, 0, 0]));
    let attr = [0u8; 128];
    report("bpf", sys(libc::SYS_bpf, [0, p(&attr), 128, 0, 0, 0]));
    let mut pattr = [0u8; 128];
    pattr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size; type 0 = hardware
    report("perf_event_open", sys(libc::SYS_perf_event_open, [p(&pattr), 0, u64::MAX, u64::MAX, 0, 0]));
    report("keyctl", sys(libc::SYS_keyctl, [0, (-3i64) as u64, 0, 0, 0, 0]));
    let user = c("user");
    let desc = c("tandem");
    report("add_key", sys(libc::SYS_add_key, [cp(&user), cp(&desc), 0, 0, (-3i64) as u64, 0]));
    report("request_key", sys(libc::SYS_request_key, [cp(&user), cp(&desc), 0, 0, 0, 0]));
    let handle = [0u8; 136];
    report("open_by_handle_at", sys(libc::SYS_open_by_handle_at, [libc::AT_FDCWD as u64, p(&handle), 0, 0, 0, 0]));
    let mut h2 = [0u8; 136];
    h2[0..4].copy_from_slice(&128u32.to_ne_bytes());
    let mount_id = 0i32;
    report(
        "name_to_handle_at",
        sys(libc::SYS_name_to_handle_at, [libc::AT_FDCWD as u64, cp(&root), p(&h2), p(&mount_id), 0, 0]),
    );
    report("userfaultfd", sys(libc::SYS_userfaultfd, [0, 0, 0, 0, 0, 0]));
    let uring = [0u8; 120];
    report("io_uring_setup", sys(libc::SYS_io_uring_setup, [4, p(&uring), 0, 0, 0, 0]));
    report("swapon", sys(libc::SYS_swapon, [cp(&tmp), 0, 0, 0, 0, 0]));
    report("acct", sys(libc::SYS_acct, [0, 0, 0, 0, 0, 0]));
    report("iopl", sys(libc::SYS_iopl, [3, 0, 0, 0, 0, 0]));
    report("ioperm", sys(libc::SYS_ioperm, [0x80, 1, 1, 0, 0, 0]));
    report("syslog", sys(libc::SYS_syslog, [10, 0, 0, 0, 0, 0]));
    report("lookup_dcookie", sys(libc::SYS_lookup_dcookie, [0, 0, 0, 0, 0, 0]));
    report("reboot_cad_on", sys(libc::SYS_reboot, [0xfee1_dead, 0x2812_1969, 0x89AB_CDEF, 0, 0, 0]));

    // --- /proc and /sys ---
    for f in ["/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger"] {
        let r = std::fs::OpenOptions::new().write(true).open(f);
        println!(
            "write_{f} {}",
            r.map(|_| "ok".to_string()).unwrap_or_else(|e| errno_name(e.raw_os_error().unwrap_or(0)))
        );
    }
    let r = std::fs::create_dir("/sys/tandem-probe");
    println!(
        "mkdir_/sys {}",
        r.map(|_| "ok".to_string()).unwrap_or_else(|e| errno_name(e.raw_os_error().unwrap_or(0)))
    );
    for f in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
        let mut buf = Vec::new();
        let r = std::fs::File::open(f).and_then(|mut h| h.read_to_end(&mut buf));
        match r {
            Ok(n) => println!("read_{f} {n}"),
            Err(e) => println!("read_{f} {}", errno_name(e.raw_os_error().unwrap_or(0))),
        }
    }
    let n = std::fs::read_dir("/sys/firmware").map(|d| d.count()).unwrap_or(usize::MAX);
    println!("entries_/sys/firmware {n}");

    // --- the clock, the host name ---
    let tv = libc::timeval { tv_sec: 1_000_000_000, tv_usec: 0 };
    report("settimeofday", sys(libc::SYS_settimeofday, [p(&tv), 0, 0, 0, 0, 0]));
    let ts = libc::timespec { tv_sec: 1_000_000_000, tv_nsec: 0 };
    report("clock_settime", sys(libc::SYS_clock_settime, [libc::CLOCK_REALTIME as u64, p(&ts), 0, 0, 0, 0]));
    let tx = [0u8; 208];
    report("adjtimex", sys(libc::SYS_adjtimex, [p(&tx), 0, 0, 0, 0, 0]));
    let evil = c("evil");
    report("sethostname", sys(libc::SYS_sethostname, [cp(&evil), 4, 0, 0, 0, 0]));

    // --- the network ---
    report(
        "socket_raw",
        sys(libc::SYS_socket, [libc::AF_INET as u64, libc::SOCK_RAW as u64, libc::IPPROTO_ICMP as u64, 0, 0, 0]),
    );
    report("socket_packet", sys(libc::SYS_socket, [libc::AF_PACKET as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0]));
    println!("netlink_setlink {}", netlink_setlink_lo_down());

    // --- other processes, other namespaces ---
    report("kill_host_pid", sys(libc::SYS_kill, [host_pid as u64, 0, 0, 0, 0, 0]));
    report("ptrace_attach_init", sys(libc::SYS_ptrace, [libc::PTRACE_ATTACH as u64, 1, 0, 0, 0, 0]));
    report("ptrace_traceme", sys(libc::SYS_ptrace, [libc::PTRACE_TRACEME as u64, 0, 0, 0, 0, 0]));
    let iov = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    report("process_vm_readv", sys(libc::SYS_process_vm_readv, [1, p(&iov), 1, p(&iov), 1, 0]));
    let ns = c("/proc/1/ns/net");
    // SAFETY: open with a valid C string.
    let fd = unsafe { libc::open(ns.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    report("open_/proc/1/ns/net", i64::from(fd));
    report("setns", sys(libc::SYS_setns, [fd as u64, 0, 0, 0, 0, 0]));
    report("unshare_user", sys(libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]));
    report("unshare_mount", sys(libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]));
    let cargs = [0u64; 11];
    report("clone3", sys(libc::SYS_clone3, [p(&cargs), 88, 0, 0, 0, 0]));
    let r = sys(libc::SYS_clone, [(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64, 0, 0, 0, 0, 0]);
    if r == 0 {
        // SAFETY: the child of a successful raw clone leaves at once.
        unsafe { libc::_exit(0) };
    }
    report("clone_newuser", r);
    let x = b'x';
    report("ioctl_tiocsti", sys(libc::SYS_ioctl, [0, libc::TIOCSTI, p(&x), 0, 0, 0]));
    for (name, path) in [("control_socket", "/run/tandem/tandem.sock"), ("host_socket", host_socket)] {
        let r = std::fs::metadata(path);
        println!(
            "{name} {}",
            r.map(|_| "visible".to_string()).unwrap_or_else(|e| errno_name(e.raw_os_error().unwrap_or(0)))
        );
    }
    let procs: Vec<i32> = std::fs::read_dir("/proc")
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    println!("host_pid_in_proc {}", if procs.contains(&host_pid) { "visible" } else { "hidden" });
    println!("own_fds {}", fds_of("/proc/self/fd"));
    println!("done");
}

/// The classic escape: chroot into a subdirectory while holding a directory fd outside
/// it, fchdir back out, climb with "..", chroot("."). In a guest this ends at the guest's
/// own root: the host's marker must stay invisible and the guest's own root visible.
fn chroot_escape(host_marker: &str) {
    let jail = c("/tmp/jail");
    let root = c("/");
    let dotdot = c("..");
    let dot = c(".");
    // SAFETY: test tool: plain syscalls with valid C strings and fds of ours.
    unsafe {
        libc::mkdir(jail.as_ptr(), 0o755);
        let fd = libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        report("chroot_jail", i64::from(libc::chroot(jail.as_ptr())));
        libc::fchdir(fd);
        for _ in 0..64 {
            libc::chdir(dotdot.as_ptr());
        }
        report("chroot_dot", i64::from(libc::chroot(dot.as_ptr())));
    }
    let host = std::path::Path::new(host_marker).exists();
    let guest = std::path::Path::new("/guest-marker").exists();
    println!(
        "chroot_escape {}",
        if host {
            "ESCAPED"
        } else if guest {
            "contained"
        } else {
            "lost"
        }
    );
}

/// RTM_SETLINK lo down with an ack: the errno of the kernel's answer.
fn netlink_setlink_lo_down() -> String {
    // SAFETY: test tool: a netlink socket, one request, one answer into our buffer.
    unsafe {
        let s = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE);
        if s < 0 {
            return format!("socket:{}", errno_name(errno()));
        }
        let mut msg = [0u8; 32];
        msg[0..4].copy_from_slice(&32u32.to_ne_bytes());
        msg[4..6].copy_from_slice(&19u16.to_ne_bytes()); // RTM_SETLINK
        msg[6..8].copy_from_slice(&(0x01u16 | 0x04).to_ne_bytes()); // REQUEST|ACK
        msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
        msg[20..24].copy_from_slice(&1i32.to_ne_bytes()); // ifindex 1 (lo)
        msg[28..32].copy_from_slice(&1u32.to_ne_bytes()); // change IFF_UP, flags 0
        if libc::send(s, msg.as_ptr().cast(), msg.len(), 0) < 0 {
            return format!("send:{}", errno_name(errno()));
        }
        let mut buf = [0u8; 1024];
        let n = libc::recv(s, buf.as_mut_ptr().cast(), buf.len(), 0);
        libc::close(s);
        if n < 20 {
            return "short".to_string();
        }
        let err = i32::from_ne_bytes(buf[16..20].try_into().unwrap());
        if err == 0 {
            "ok".to_string()
        } else {
            errno_name(-err)
        }
    }
}

mod unsafe_free {
    pub fn getuid() -> u32 {
        // SAFETY: getuid cannot fail and touches no memory.
        unsafe { libc::getuid() }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("battery") => {
            let host_pid = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            battery(host_pid, args.get(3).map_or("/nonexistent", |s| s), args.get(4).map_or("/nonexistent", |s| s));
        }
        Some("reboot") => {
            report("reboot", sys(libc::SYS_reboot, [0xfee1_dead, 0x2812_1969, 0x0123_4567, 0, 0, 0]));
        }
        Some("hog") => {
            let mib: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
            let mut v: Vec<Vec<u8>> = Vec::new();
            for i in 0..mib {
                v.push(vec![1u8; 1 << 20]);
                if i % 16 == 0 {
                    println!("hog {i} MiB");
                }
            }
            println!("hog survived {mib} MiB");
        }
        Some("spin") => {
            let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
            let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            let mut x = 0u64;
            while std::time::Instant::now() < end {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            println!("spin {x}");
        }
        Some("forks") => {
            let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
            let mut made = 0;
            let mut why = "limit".to_string();
            for _ in 0..n {
                // SAFETY: the child only sleeps and exits.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: sleep and _exit in the child.
                    unsafe {
                        libc::sleep(1);
                        libc::_exit(0);
                    }
                }
                if pid < 0 {
                    why = errno_name(errno());
                    break;
                }
                made += 1;
            }
            println!("forks {made} {why}");
        }
        _ => {
            eprintln!(
                "usage: guest_probe battery HOST_PID HOST_MARKER HOST_SOCKET | reboot | hog MIB | spin SECS | forks N"
            );
            std::process::exit(2);
        }
    }
}
