//! The guest's seccomp filter: a deny list, written as a classic BPF program here (pure)
//! and installed by `sys::caps::install_seccomp`.
//!
//! Why our own program rather than a filter compiler crate: a deny list must also refuse
//! the x32 aliases of every syscall (`nr | 0x40000000` reaches the same kernel function
//! under the same AUDIT_ARCH_X86_64 on kernels built with x32 support), and it needs
//! different answers per rule (EPERM, but ENOSYS for clone3 so that libc falls back to
//! clone, whose flags can be checked). Both are a few instructions here.
//!
//! Layout:
//! 1. architecture is not x86_64 (e.g. a 32-bit `int 0x80` call) → kill the process;
//! 2. syscall number has the x32 bit → ENOSYS;
//! 3. one block per rule: `jeq NR` then the rule's body, which always returns;
//! 4. everything else → allow.
//!
//! Allowed syscalls are decided from the architecture and number alone, so the kernel's
//! seccomp action cache (Linux >= 5.11) lets them through without running the filter at
//! all: the cost falls on the denied calls and on the few with argument checks (`clone`,
//! `unshare`, `ioctl`, `reboot`).

use libc::sock_filter;

/// `AUDIT_ARCH_X86_64`.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `__X32_SYSCALL_BIT`.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// seccomp return values (linux/seccomp.h).
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

// struct seccomp_data offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of argument `i` (little-endian).
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

// Classic BPF opcodes.
/// BPF_LD | BPF_W | BPF_ABS.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

/// The reboot(2) commands the kernel turns into "end this PID namespace" in a guest
/// (RESTART, RESTART2, HALT, POWER_OFF); every other command is refused.
pub const REBOOT_GUEST_CMDS: [u32; 4] = [0x0123_4567, 0xA1B2_C3D4, 0xCDEF_0123, 0x4321_FEDC];
/// ioctls refused on any fd: TIOCSTI (push input into a terminal, e.g. the host's
/// terminal of `tandem guest enter`) and TIOCLINUX (console selection and paste).
pub const DENIED_IOCTLS: [u32; 2] = [0x5412, 0x541C];

/// What a rule does when its syscall number matches.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// Always return this errno.
    Errno(u16),
    /// EPERM when the low 32 bits of argument `arg` have any bit of `mask` set.
    FlagsDenied { arg: u32, mask: u32 },
    /// EPERM when the low 32 bits of argument `arg` equal one of `values`.
    ArgIn { arg: u32, values: &'static [u32] },
    /// EPERM unless the low 32 bits of argument `arg` equal one of `values`.
    ArgNotIn { arg: u32, values: &'static [u32] },
}

const EPERM: u16 = libc::EPERM as u16;
const ENOSYS: u16 = libc::ENOSYS as u16;

/// One denied syscall: its x86_64 number, its name (docs and tests) and what is refused.
#[derive(Debug, Clone, Copy)]
struct Rule {
    nr: i64,
    name: &'static str,
    body: Body,
}

const fn deny(nr: i64, name: &'static str) -> Rule {
    Rule { nr, name, body: Body::Errno(EPERM) }
}

/// The deny list (x86_64 numbers). See docs/guests.md for why each is there.
#[cfg(target_arch = "x86_64")]
const RULES: &[Rule] = &[
    // Hot paths first: ioctl is frequent and has an argument check.
    Rule { nr: libc::SYS_ioctl, name: "ioctl", body: Body::ArgIn { arg: 1, values: &DENIED_IOCTLS } },
    Rule {
        nr: libc::SYS_clone,
        name: "clone",
        body: Body::FlagsDenied { arg: 0, mask: crate::sys::ns::CLONE_NEWUSER as u32 },
    },
    Rule { nr: libc::SYS_clone3, name: "clone3", body: Body::Errno(ENOSYS) },
    Rule {
        nr: libc::SYS_unshare,
        name: "unshare",
        body: Body::FlagsDenied { arg: 0, mask: crate::sys::ns::CLONE_NEWUSER as u32 },
    },
    Rule { nr: libc::SYS_reboot, name: "reboot", body: Body::ArgNotIn { arg: 2, values: &REBOOT_GUEST_CMDS } },
    // The filesystem tree.
    deny(libc::SYS_mount, "mount"),
    deny(libc::SYS_umount2, "umount2"),
    deny(libc::SYS_pivot_root, "pivot_root"),
    deny(libc::SYS_open_tree, "open_tree"),
    deny(libc::SYS_move_mount, "move_mount"),
    deny(libc::SYS_fsopen, "fsopen"),
    deny(libc::SYS_fsconfig, "fsconfig"),
    deny(libc::SYS_fsmount, "fsmount"),
    deny(libc::SYS_fspick, "fspick"),
    deny(libc::SYS_mount_setattr, "mount_setattr"),
    deny(libc::SYS_open_by_handle_at, "open_by_handle_at"),
    deny(libc::SYS_name_to_handle_at, "name_to_handle_at"),
    deny(libc::SYS_quotactl, "quotactl"),
    deny(libc::SYS_quotactl_fd, "quotactl_fd"),
    deny(libc::SYS_fanotify_init, "fanotify_init"),
    deny(libc::SYS_swapon, "swapon"),
    deny(libc::SYS_swapoff, "swapoff"),
    deny(libc::SYS_acct, "acct"),
    // Other namespaces and other processes.
    deny(libc::SYS_setns, "setns"),
    deny(libc::SYS_ptrace, "ptrace"),
    deny(libc::SYS_process_vm_readv, "process_vm_readv"),
    deny(libc::SYS_process_vm_writev, "process_vm_writev"),
    deny(libc::SYS_pidfd_getfd, "pidfd_getfd"),
    // The kernel itself.
    deny(libc::SYS_init_module, "init_module"),
    deny(libc::SYS_finit_module, "finit_module"),
    deny(libc::SYS_delete_module, "delete_module"),
    deny(libc::SYS_kexec_load, "kexec_load"),
    deny(libc::SYS_kexec_file_load, "kexec_file_load"),
    deny(libc::SYS_bpf, "bpf"),
    deny(libc::SYS_perf_event_open, "perf_event_open"),
    deny(libc::SYS_lookup_dcookie, "lookup_dcookie"),
    deny(libc::SYS_syslog, "syslog"),
    deny(libc::SYS_uselib, "uselib"),
    deny(libc::SYS__sysctl, "_sysctl"),
    deny(libc::SYS_nfsservctl, "nfsservctl"),
    deny(libc::SYS_iopl, "iopl"),
    deny(libc::SYS_ioperm, "ioperm"),
    deny(libc::SYS_userfaultfd, "userfaultfd"),
    deny(libc::SYS_io_uring_setup, "io_uring_setup"),
    deny(libc::SYS_io_uring_enter, "io_uring_enter"),
    deny(libc::SYS_io_uring_register, "io_uring_register"),
    // Keys.
    deny(libc::SYS_keyctl, "keyctl"),
    deny(libc::SYS_add_key, "add_key"),
    deny(libc::SYS_request_key, "request_key"),
    // The clock.
    deny(libc::SYS_settimeofday, "settimeofday"),
    deny(libc::SYS_clock_settime, "clock_settime"),
    deny(libc::SYS_clock_adjtime, "clock_adjtime"),
    deny(libc::SYS_adjtimex, "adjtimex"),
];

#[cfg(not(target_arch = "x86_64"))]
const RULES: &[Rule] = &[];

/// The names of the syscalls the filter refuses or restricts, in filter order.
pub fn denied_names() -> Vec<&'static str> {
    RULES.iter().map(|r| r.name).collect()
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn body_len(b: &Body) -> usize {
    match b {
        Body::Errno(_) => 1,
        Body::FlagsDenied { .. } => 4,
        Body::ArgIn { values, .. } | Body::ArgNotIn { values, .. } => values.len() + 3,
    }
}

fn emit_body(out: &mut Vec<sock_filter>, b: &Body) -> Result<(), String> {
    let eperm = RET_ERRNO | u32::from(EPERM);
    match *b {
        Body::Errno(e) => out.push(stmt(BPF_RET_K, RET_ERRNO | u32::from(e))),
        Body::FlagsDenied { arg, mask } => {
            out.push(stmt(BPF_LD_W_ABS, off_arg_lo(arg)));
            out.push(jump(BPF_JMP_JSET_K, mask, 0, 1));
            out.push(stmt(BPF_RET_K, eperm));
            out.push(stmt(BPF_RET_K, RET_ALLOW));
        }
        Body::ArgIn { arg, values } | Body::ArgNotIn { arg, values } => {
            let (on_match, otherwise) =
                if matches!(b, Body::ArgIn { .. }) { (eperm, RET_ALLOW) } else { (RET_ALLOW, eperm) };
            out.push(stmt(BPF_LD_W_ABS, off_arg_lo(arg)));
            let k = values.len();
            for (i, v) in values.iter().enumerate() {
                // On a match skip the rest of the comparisons and the "otherwise" return.
                let jt = u8::try_from(k - i).map_err(|_| "seccomp rule too long".to_string())?;
                out.push(jump(BPF_JMP_JEQ_K, *v, jt, 0));
            }
            out.push(stmt(BPF_RET_K, otherwise));
            out.push(stmt(BPF_RET_K, on_match));
        }
    }
    Ok(())
}

/// The filter program. Refuses (cleanly, at start) on architectures other than x86_64.
pub fn program() -> Result<Vec<sock_filter>, String> {
    if cfg!(not(target_arch = "x86_64")) {
        return Err(format!(
            "guests are only supported on x86_64 (the seccomp filter is written for it), not {}",
            std::env::consts::ARCH
        ));
    }
    let mut p = Vec::with_capacity(8 + RULES.len() * 3);
    p.push(stmt(BPF_LD_W_ABS, OFF_ARCH));
    p.push(jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0));
    p.push(stmt(BPF_RET_K, RET_KILL_PROCESS));
    p.push(stmt(BPF_LD_W_ABS, OFF_NR));
    p.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
    p.push(stmt(BPF_RET_K, RET_ERRNO | u32::from(ENOSYS)));
    for r in RULES {
        let nr = u32::try_from(r.nr).map_err(|_| format!("bad syscall number for {}", r.name))?;
        let skip = u8::try_from(body_len(&r.body)).map_err(|_| "seccomp rule too long".to_string())?;
        p.push(jump(BPF_JMP_JEQ_K, nr, 0, skip));
        emit_body(&mut p, &r.body)?;
    }
    p.push(stmt(BPF_RET_K, RET_ALLOW));
    if p.len() > 4096 {
        return Err("seccomp program too long".to_string());
    }
    Ok(p)
}

/// Runs a classic BPF seccomp program over one syscall (the subset [`program`] emits), for
/// tests and for `tandem guest` diagnostics. `None` for a malformed program.
pub fn evaluate(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
    let mut data = [0u8; 64];
    data.get_mut(0..4)?.copy_from_slice(&nr.to_le_bytes());
    data.get_mut(4..8)?.copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        let off = 16 + 8 * i;
        data.get_mut(off..off + 8)?.copy_from_slice(&a.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    for _ in 0..=prog.len() {
        let ins = prog.get(pc)?;
        pc += 1;
        match ins.code {
            BPF_LD_W_ABS => {
                let off = usize::try_from(ins.k).ok()?;
                acc = u32::from_le_bytes(data.get(off..off + 4)?.try_into().ok()?);
            }
            BPF_JMP_JEQ_K | BPF_JMP_JGE_K | BPF_JMP_JSET_K => {
                let taken = match ins.code {
                    BPF_JMP_JEQ_K => acc == ins.k,
                    BPF_JMP_JGE_K => acc >= ins.k,
                    _ => acc & ins.k != 0,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            BPF_RET_K => return Some(ins.k),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(nr: i64, args: [u64; 6]) -> u32 {
        let p = program().unwrap();
        evaluate(&p, AUDIT_ARCH_X86_64, u32::try_from(nr).unwrap(), args).unwrap()
    }
    const EPERM_RET: u32 = RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn wrong_architecture_is_killed() {
        let p = program().unwrap();
        // AUDIT_ARCH_I386: a 32-bit int 0x80 call.
        assert_eq!(evaluate(&p, 0x4000_0003, 0, [0; 6]), Some(RET_KILL_PROCESS));
    }

    #[test]
    fn x32_aliases_are_refused() {
        let p = program().unwrap();
        let mount_x32 = u32::try_from(libc::SYS_mount).unwrap() | X32_SYSCALL_BIT;
        assert_eq!(evaluate(&p, AUDIT_ARCH_X86_64, mount_x32, [0; 6]), Some(RET_ERRNO | libc::ENOSYS as u32));
        assert_eq!(evaluate(&p, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), Some(RET_ERRNO | libc::ENOSYS as u32));
    }

    #[test]
    fn every_denied_call_gets_eperm() {
        for r in RULES.iter().filter(|r| matches!(r.body, Body::Errno(_))) {
            let want = if r.name == "clone3" { RET_ERRNO | libc::ENOSYS as u32 } else { EPERM_RET };
            assert_eq!(run(r.nr, [0; 6]), want, "{}", r.name);
        }
        for name in ["mount", "umount2", "pivot_root", "init_module", "kexec_load", "bpf", "keyctl", "setns"] {
            assert!(denied_names().contains(&name), "{name}");
        }
    }

    #[test]
    fn ordinary_calls_pass() {
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_socket,
            libc::SYS_bind,
            libc::SYS_chroot,
            libc::SYS_mknodat,
            libc::SYS_kill,
            libc::SYS_wait4,
            libc::SYS_seccomp,
            libc::SYS_prctl,
            libc::SYS_pidfd_open,
        ] {
            assert_eq!(run(nr, [0; 6]), RET_ALLOW, "{nr}");
        }
    }

    #[test]
    fn clone_and_unshare_without_a_user_namespace() {
        let newuser = crate::sys::ns::CLONE_NEWUSER;
        let sigchld = libc::SIGCHLD as u64;
        assert_eq!(run(libc::SYS_clone, [sigchld, 0, 0, 0, 0, 0]), RET_ALLOW);
        // Threads: CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|...
        assert_eq!(run(libc::SYS_clone, [0x003d_0f00, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(libc::SYS_clone, [sigchld | newuser, 0, 0, 0, 0, 0]), EPERM_RET);
        assert_eq!(run(libc::SYS_unshare, [newuser, 0, 0, 0, 0, 0]), EPERM_RET);
        assert_eq!(run(libc::SYS_unshare, [newuser | crate::sys::ns::CLONE_NEWNS, 0, 0, 0, 0, 0]), EPERM_RET);
        // Other unshare flags are the kernel's business (they need CAP_SYS_ADMIN).
        assert_eq!(run(libc::SYS_unshare, [crate::sys::ns::CLONE_NEWNS, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(libc::SYS_unshare, [0x0000_0200, 0, 0, 0, 0, 0]), RET_ALLOW); // CLONE_FILES
                                                                                     // The upper half of the flags word is not CLONE_NEWUSER.
        assert_eq!(run(libc::SYS_unshare, [newuser << 32, 0, 0, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn reboot_only_ends_the_guest() {
        let magic = [0xfee1_deadu64, 0x2812_1969];
        for cmd in REBOOT_GUEST_CMDS {
            assert_eq!(run(libc::SYS_reboot, [magic[0], magic[1], u64::from(cmd), 0, 0, 0]), RET_ALLOW);
        }
        // CAD_ON, CAD_OFF, SW_SUSPEND, KEXEC.
        for cmd in [0x89AB_CDEFu64, 0, 0xD000_FCE2, 0x4558_4543] {
            assert_eq!(run(libc::SYS_reboot, [magic[0], magic[1], cmd, 0, 0, 0]), EPERM_RET, "{cmd:#x}");
        }
    }

    #[test]
    fn terminal_injection_is_refused() {
        assert_eq!(run(libc::SYS_ioctl, [0, 0x5412, 0, 0, 0, 0]), EPERM_RET);
        assert_eq!(run(libc::SYS_ioctl, [0, 0x541C, 0, 0, 0, 0]), EPERM_RET);
        assert_eq!(run(libc::SYS_ioctl, [0, libc::TCGETS, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(libc::SYS_ioctl, [0, libc::TIOCSCTTY, 0, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn program_is_well_formed() {
        let p = program().unwrap();
        // Every jump lands inside the program; every path ends in a return.
        for (i, ins) in p.iter().enumerate() {
            if ins.code & 0x07 == 0x05 {
                assert!(i + 1 + usize::from(ins.jt) < p.len(), "jt out of range at {i}");
                assert!(i + 1 + usize::from(ins.jf) < p.len(), "jf out of range at {i}");
            }
        }
        assert_eq!(p.last().map(|i| (i.code, i.k)), Some((BPF_RET_K, RET_ALLOW)));
        assert!(p.len() < 200, "{} instructions", p.len());
        // A program without a return is malformed, not an allow.
        assert_eq!(evaluate(&p[..3], AUDIT_ARCH_X86_64, 0, [0; 6]), None);
    }
}
