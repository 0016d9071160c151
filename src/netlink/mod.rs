//! Our own small netlink layer: socket with seq check + receive deadline, attribute views,
//! `route.rs` (rtnetlink addresses/links) and `genl.rs` (generic netlink, family lookup).
pub mod genl;
pub mod route;
