//! tandem: a small, static, synchronous high-availability supervisor for two-host clusters.
//! See `docs/architecture.md`.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod agent;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod fence;
pub mod guest;
pub mod hb;
pub mod link;
pub mod load;
pub mod logging;
pub mod membership;
pub mod netlink;
pub mod reach;
pub mod state;
pub mod sys;
#[cfg(test)]
mod testutil;
pub mod time;
pub mod wire;
