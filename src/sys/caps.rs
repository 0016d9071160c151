//! Capabilities, no_new_privs and seccomp: the rights a guest keeps.
//!
//! Each function is one or two plain syscalls, safe to call between fork/clone and exec.

use nix::errno::Errno;

/// PR_CAPBSET_DROP for every capability from 0 to `last` (the kernel's
/// `/proc/sys/kernel/cap_last_cap`) that is not in `keep`. Needs CAP_SETPCAP.
pub fn bounding_set_keep(keep: u64, last: u32) -> Result<(), Errno> {
    for cap in 0..=last.min(63) {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if r != 0 {
            let e = Errno::last();
            // EINVAL: a capability this kernel does not know (beyond cap_last_cap).
            if e != Errno::EINVAL {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Clears the ambient set, and sets the inheritable set to empty while keeping the
/// permitted and effective sets as they are, so nothing passes through execve by
/// inheritance: after exec, root gets exactly the bounding set.
pub fn clear_inheritable_and_ambient() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(Errno::last());
    }
    // linux/capability.h: _LINUX_CAPABILITY_VERSION_3, two 32-bit data words.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header { version: 0x2008_0522, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` words into `data` for version 3; `hdr` is valid.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    if r != 0 {
        return Err(Errno::last());
    }
    for d in data.iter_mut() {
        d.inheritable = 0;
    }
    // SAFETY: capset reads the header and two `Data` words we own.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) };
    Errno::result(r).map(drop)
}

/// PR_SET_NO_NEW_PRIVS: execve can never grant more rights (setuid bits and file
/// capabilities stop working), and seccomp filters may be installed without CAP_SYS_ADMIN.
pub fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// Installs a classic-BPF seccomp filter on the calling thread (no_new_privs must be set,
/// or the caller must have CAP_SYS_ADMIN). Filters stack and can never be removed.
pub fn install_seccomp(prog: &[libc::sock_filter]) -> Result<(), Errno> {
    let len = u16::try_from(prog.len()).map_err(|_| Errno::E2BIG)?;
    let fprog = libc::sock_fprog { len, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: the kernel copies `len` instructions from `prog`, which outlives the call,
    // and only reads `fprog`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    Errno::result(r).map(drop)
}
