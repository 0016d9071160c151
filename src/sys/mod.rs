//! The ONLY module with `unsafe`. Every block carries a `// SAFETY:` comment.
//! Thin, typed wrappers over syscalls that nix does not cover.
#![allow(unsafe_code)]

pub mod caps;
pub mod fd;
pub mod mount;
pub mod net;
pub mod netlink;
pub mod ns;
pub mod packet;
pub mod process;
pub mod random;
pub mod rt;
pub mod tty;
pub mod watchdog;

/// Overwrites `buf` with zeros in a way the compiler may not remove (a secret about to be
/// freed): one volatile write per byte, then a compiler fence.
pub fn zeroize(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, exclusively borrowed byte.
        unsafe { core::ptr::write_volatile(b, 0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// CLOCK_MONOTONIC in microseconds.
pub fn monotonic_micros() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let s = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let ns = u64::try_from(ts.tv_nsec()).unwrap_or(0);
            s.saturating_mul(1_000_000).saturating_add(ns / 1000)
        }
        Err(_) => 0,
    }
}

/// CLOCK_REALTIME in microseconds since the epoch (0 before it).
pub fn realtime_micros() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME) {
        Ok(ts) => {
            let s = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let ns = u64::try_from(ts.tv_nsec()).unwrap_or(0);
            s.saturating_mul(1_000_000).saturating_add(ns / 1000)
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroize_clears_every_byte() {
        let mut b = vec![0xa5u8; 37];
        super::zeroize(&mut b);
        assert!(b.iter().all(|&x| x == 0));
    }
}
