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
