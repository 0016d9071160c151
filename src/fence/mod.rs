//! Fencing methods: how a node powers off a dead peer before it takes the peer's groups over.
//!
//! - [`ipmi`]: a built-in IPMI v2.0 RMCP+ client (no ipmitool needed).

pub mod ipmi;
