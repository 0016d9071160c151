//! A guest's network namespace (`net=none`, `net=macvlan:IFACE`, `net=ipvlan:IFACE`).
//!
//! The guest's `eth0` is created on the host interface directly inside the guest's network
//! namespace (`IFLA_NET_NS_FD`), then `lo` and `eth0` are brought up from inside. The
//! group's addresses are added later, from inside too ([`with_netns`]); the guest itself
//! cannot change any of it (no NET_ADMIN).
//!
//! [`with_netns`] switches the calling thread's network namespace and back: call it from a
//! single-threaded process (a forked agent child, the CLI, the guest's monitor).

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use super::GuestError;
use crate::config::guest::{GuestNet, GUEST_IFNAME};
use crate::netlink::route::{self, ChildLinkKind, NewChildLink};
use crate::netlink::{NetlinkError, NlSocket, Protocol};

fn nl(e: NetlinkError) -> GuestError {
    match e.errno() {
        Some(errno) => GuestError::Sys { op: e.op().to_string(), errno },
        None => GuestError::Other(e.to_string()),
    }
}

fn open_ns(path: &str) -> Result<OwnedFd, GuestError> {
    crate::sys::fd::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| GuestError::Sys { op: format!("open {path}"), errno })
}

/// The network namespace of process `pid` (in our PID namespace).
pub fn netns_of(pid: i32) -> Result<OwnedFd, GuestError> {
    open_ns(&format!("/proc/{pid}/ns/net"))
}

/// Runs `f` with the calling thread in the network namespace `ns`, then switches back
/// (even when `f` fails). Sockets `f` opens belong to `ns` for their whole life.
pub fn with_netns<T>(ns: BorrowedFd<'_>, f: impl FnOnce() -> Result<T, GuestError>) -> Result<T, GuestError> {
    let home = open_ns("/proc/thread-self/ns/net")?;
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)
        .map_err(|errno| GuestError::Sys { op: "enter the guest's network namespace".to_string(), errno })?;
    let r = f();
    if let Err(errno) = nix::sched::setns(home.as_fd(), CloneFlags::CLONE_NEWNET) {
        // Staying in the guest's namespace would be much worse than failing: give up.
        log::error!("cannot return to the host's network namespace: {}", errno.desc());
        crate::sys::ns::exit_now(1);
    }
    r
}

fn route_socket() -> Result<NlSocket, GuestError> {
    NlSocket::new(Protocol::Route).map_err(nl)
}

/// Brings `lo` (and `eth0` when `eth0`) up in the current network namespace.
fn links_up(eth0: bool) -> Result<(), GuestError> {
    let mut s = route_socket()?;
    let lo = route::link_index(&mut s, "lo").map_err(nl)?;
    route::set_link_up(&mut s, lo).map_err(nl)?;
    if eth0 {
        let i = route::link_index(&mut s, GUEST_IFNAME).map_err(nl)?;
        route::set_link_up(&mut s, i).map_err(nl)?;
    }
    Ok(())
}

/// Sets up the network namespace `ns` of a new guest (before its init runs).
pub fn setup(ns: BorrowedFd<'_>, net: &GuestNet) -> Result<(), GuestError> {
    let (kind, parent) = match net {
        GuestNet::Host => return Ok(()),
        GuestNet::Loopback => return with_netns(ns, || links_up(false)),
        GuestNet::Macvlan { parent } => (ChildLinkKind::Macvlan, parent),
        GuestNet::Ipvlan { parent } => (ChildLinkKind::Ipvlan, parent),
    };
    let mut s = route_socket()?;
    let parent_index = route::link_index(&mut s, parent).map_err(|e| match e.errno() {
        Some(Errno::ENODEV) => GuestError::Config(format!("net: there is no interface {parent}")),
        _ => nl(e),
    })?;
    let req = NewChildLink { name: GUEST_IFNAME, parent: parent_index, kind, netns_fd: Some(ns.as_raw_fd()) };
    route::new_child_link(&mut s, &req).map_err(|e| match e.errno() {
        Some(Errno::EOPNOTSUPP) => GuestError::Config(format!(
            "net: this kernel cannot create {} interfaces",
            if kind == ChildLinkKind::Macvlan { "macvlan" } else { "ipvlan" }
        )),
        _ => nl(e),
    })?;
    with_netns(ns, || links_up(true))
}

/// Adds `addr/prefix` to the guest's `eth0` (run inside its namespace). `EEXIST` is success.
pub fn add_address(ns: BorrowedFd<'_>, addr: IpAddr, prefix: u8) -> Result<u32, GuestError> {
    with_netns(ns, || {
        let mut s = route_socket()?;
        let idx = route::link_index(&mut s, GUEST_IFNAME).map_err(nl)?;
        match route::add_address(&mut s, idx, addr, prefix, None) {
            Ok(()) => Ok(idx),
            Err(e) if e.errno() == Some(Errno::EEXIST) => Ok(idx),
            Err(e) => Err(nl(e)),
        }
    })
}

/// Removes `addr/prefix` from the guest's `eth0`. `EADDRNOTAVAIL` (not there) is success.
pub fn del_address(ns: BorrowedFd<'_>, addr: IpAddr, prefix: u8) -> Result<(), GuestError> {
    with_netns(ns, || {
        let mut s = route_socket()?;
        let idx = route::link_index(&mut s, GUEST_IFNAME).map_err(nl)?;
        match route::del_address(&mut s, idx, addr, prefix) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(Errno::EADDRNOTAVAIL) => Ok(()),
            Err(e) => Err(nl(e)),
        }
    })
}
