//! The `ip` agent against the real kernel, in network namespaces this test creates:
//! A (our node) --veth-- B (the LAN peer). Only 192.0.2.0/24, 203.0.113.0/24 and 2001:db8::/32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{require, spawn_in_netns, Netns};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use tandem::agent::ip::{send_garp, IpAgent};
use tandem::agent::{Agent, AgentError, Op, Outcome};
use tandem::netlink::route;
use tandem::netlink::{NlSocket, Protocol};
use tandem::sys::packet::{PacketSocket, ETH_P_ARP, ETH_P_IPV6};

/// Namespaces A and B joined by a veth pair: va (192.0.2.1/24, 2001:db8:1::1/64) in A,
/// vb (192.0.2.2/24, 2001:db8:1::2/64) in B.
struct Pair {
    p: common::Pair,
    va: String,
    vb: String,
}

impl std::ops::Deref for Pair {
    type Target = common::Pair;
    fn deref(&self) -> &common::Pair {
        &self.p
    }
}

fn pair() -> Pair {
    let p = common::Pair::new("ti", 1);
    let (va, vb) = (p.a_if(0).to_string(), p.b_if(0).to_string());
    p.a.ip(&["addr", "add", "192.0.2.1/24", "dev", &va]);
    p.a.ip(&["addr", "add", "2001:db8:1::1/64", "dev", &va, "nodad"]);
    p.b.ip(&["addr", "add", "192.0.2.2/24", "dev", &vb]);
    p.b.ip(&["addr", "add", "2001:db8:1::2/64", "dev", &vb, "nodad"]);
    p.up();
    Pair { p, va, vb }
}

/// The agent for `ip::ARG`, through the config's parser (as the daemon builds it).
fn agent_in(ns: &Netns, arg: String) -> Result<IpAgent, AgentError> {
    let r = tandem::config::parse_resource(&format!("ip::{arg}")).map_err(AgentError::Config)?;
    let tandem::config::ResourceSpec::Ip(spec) = r.spec else { panic!("not ip") };
    ns.run(move || IpAgent::new(&spec, &r.text))
}

fn op(ns: &Netns, mut ag: IpAgent, o: Op) -> (IpAgent, Result<Outcome, AgentError>) {
    ns.run(move || {
        let r = ag.run(o);
        (ag, r)
    })
}

fn mac_of(ns: &Netns, ifname: &str) -> (u32, [u8; 6]) {
    let ifname = ifname.to_owned();
    ns.run(move || {
        let mut s = NlSocket::new(Protocol::Route).unwrap();
        let idx = route::link_index(&mut s, &ifname).unwrap();
        (idx, route::link_info(&mut s, idx).unwrap().mac.unwrap())
    })
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[test]
fn v4_with_label_add_check_remove() {
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    let ag = agent_in(&p.a, format!("192.0.2.50/24/{}/web", p.va)).unwrap();
    assert_eq!(ag.garp(), None);
    let (ag, r) = op(&p.a, ag, Op::Status);
    assert_eq!(r.unwrap(), Outcome::Stopped);
    let (ag, r) = op(&p.a, ag, Op::Start);
    assert_eq!(r.unwrap(), Outcome::Running);
    let out = p.a.ip(&["-4", "addr", "show", "dev", &p.va]);
    let line = out.lines().find(|l| l.contains("inet 192.0.2.50/24")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("brd 192.0.2.255"), "{line}");
    assert!(line.trim_end().ends_with(&format!("{}:web", p.va)), "{line}");
    let (idx, _) = mac_of(&p.a, &p.va);
    let ann = ag.garp().unwrap();
    assert_eq!((ann.ifindex, ann.addr), (idx, "192.0.2.50".parse().unwrap()));

    // idempotent start
    let (ag, r) = op(&p.a, ag, Op::Start);
    assert_eq!(r.unwrap(), Outcome::Running);
    let (ag, r) = op(&p.a, ag, Op::Status);
    assert_eq!(r.unwrap(), Outcome::Running);
    assert_eq!(p.a.ip(&["-4", "addr", "show", "dev", &p.va]).matches("192.0.2.50").count(), 1);

    let (ag, r) = op(&p.a, ag, Op::Stop);
    assert_eq!(r.unwrap(), Outcome::Stopped);
    assert!(!p.a.ip(&["-4", "addr", "show", "dev", &p.va]).contains("192.0.2.50"));
    // the node's own address is untouched
    assert!(p.a.ip(&["-4", "addr", "show", "dev", &p.va]).contains("192.0.2.1/24"));
    let (ag, r) = op(&p.a, ag, Op::Stop);
    assert_eq!(r.unwrap(), Outcome::Stopped);
    let (_, r) = op(&p.a, ag, Op::Status);
    assert_eq!(r.unwrap(), Outcome::Stopped);
}

#[test]
fn v6_add_check_remove() {
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    let ag = agent_in(&p.a, format!("2001:db8:1::50/64/{}", p.va)).unwrap();
    let (ag, r) = op(&p.a, ag, Op::Start);
    assert_eq!(r.unwrap(), Outcome::Running);
    let out = p.a.ip(&["-6", "addr", "show", "dev", &p.va]);
    let line = out.lines().find(|l| l.contains("inet6 2001:db8:1::50/64")).unwrap_or_else(|| panic!("{out}"));
    assert!(!line.contains("tentative"), "{line}");
    let (ag, r) = op(&p.a, ag, Op::Start);
    assert_eq!(r.unwrap(), Outcome::Running);
    let (ag, r) = op(&p.a, ag, Op::Status);
    assert_eq!(r.unwrap(), Outcome::Running);
    let (ag, r) = op(&p.a, ag, Op::Stop);
    assert_eq!(r.unwrap(), Outcome::Stopped);
    assert!(!p.a.ip(&["-6", "addr", "show", "dev", &p.va]).contains("2001:db8:1::50"));
    let (ag, r) = op(&p.a, ag, Op::Stop);
    assert_eq!(r.unwrap(), Outcome::Stopped);
    let (_, r) = op(&p.a, ag, Op::Status);
    assert_eq!(r.unwrap(), Outcome::Stopped);
}

#[test]
fn iface_chosen_by_subnet() {
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    // a second interface in another subnet, to choose between
    let other = format!("{}o", p.va);
    p.a.ip(&["link", "add", &other, "type", "veth", "peer", "name", &format!("{}p", p.va)]);
    p.a.ip(&["addr", "add", "203.0.113.1/24", "dev", &other]);

    for (arg, want) in [("192.0.2.60/24", "192.0.2.60/24"), ("192.0.2.61", "192.0.2.61/24"), ("203.0.113.9/24", "")] {
        let ag = agent_in(&p.a, arg.to_owned()).unwrap();
        let (ag, r) = op(&p.a, ag, Op::Start);
        assert_eq!(r.unwrap(), Outcome::Running);
        if !want.is_empty() {
            assert!(p.a.ip(&["-4", "addr", "show", "dev", &p.va]).contains(want), "{arg}");
        } else {
            assert!(p.a.ip(&["-4", "addr", "show", "dev", &other]).contains("203.0.113.9/24"));
        }
        let (_, r) = op(&p.a, ag, Op::Stop);
        assert_eq!(r.unwrap(), Outcome::Stopped);
    }
    let ag = agent_in(&p.a, "2001:db8:1::60/64".to_owned()).unwrap();
    let (ag, r) = op(&p.a, ag, Op::Start);
    assert_eq!(r.unwrap(), Outcome::Running);
    assert!(p.a.ip(&["-6", "addr", "show", "dev", &p.va]).contains("2001:db8:1::60/64"));
    let (_, r) = op(&p.a, ag, Op::Stop);
    assert_eq!(r.unwrap(), Outcome::Stopped);

    // no subnet holds it
    match agent_in(&p.a, "198.51.100.7/24".to_owned()) {
        Err(AgentError::Config(m)) => assert!(m.contains("no interface"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nonexistent_interface_is_a_clear_error() {
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    match agent_in(&p.a, "192.0.2.50/24/nosuchif0".to_owned()) {
        Err(e @ AgentError::Config(_)) => {
            assert_eq!(e.to_string(), "interface nosuchif0 does not exist")
        }
        other => panic!("{other:?}"),
    }
    // through agent::build too, and a bad argument
    let r = tandem::config::parse_resource("ip::192.0.2.50/24/nosuchif0").unwrap();
    let t = tandem::config::Timeouts::default();
    assert!(matches!(p.a.run(move || tandem::agent::build(&r, &t).map(|_| ())), Err(AgentError::Config(_))));
    assert!(matches!(agent_in(&p.a, "192.0.2.300/24".to_owned()), Err(AgentError::Config(_))));
}

/// Binds a capture socket for `proto` on `ifname` in `ns`, then returns the first frame
/// for which `pred` holds (within 3 s), on a background thread.
fn capture(
    ns: &Netns,
    ifname: &str,
    proto: u16,
    pred: impl Fn(&[u8]) -> bool + Send + 'static,
) -> std::thread::JoinHandle<Option<Vec<u8>>> {
    let ifname = ifname.to_owned();
    let (tx, rx) = mpsc::channel();
    let h = spawn_in_netns(ns.name(), move || {
        let mut s = NlSocket::new(Protocol::Route).unwrap();
        let idx = route::link_index(&mut s, &ifname).unwrap();
        let ps = PacketSocket::bind(idx, proto).unwrap();
        tx.send(()).unwrap();
        let end = Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            let mut fds = [PollFd::new(ps.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(100u16));
            while let Ok(n) = ps.recv(&mut buf) {
                if pred(&buf[..n]) {
                    return Some(buf[..n].to_vec());
                }
            }
        }
        None
    });
    rx.recv_timeout(Duration::from_secs(3)).unwrap();
    h
}

fn start_and_send_garp(p: &Pair, arg: String) -> IpAgent {
    let ag = agent_in(&p.a, arg).unwrap();
    let (ag, r) = op(&p.a, ag, Op::Start);
    assert_eq!(r.unwrap(), Outcome::Running);
    let ann = ag.garp().unwrap();
    p.a.run(move || send_garp(&ann)).unwrap();
    ag
}

#[test]
fn gratuitous_arp_is_captured() {
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    let (_, mac) = mac_of(&p.a, &p.va);
    let addr = Ipv4Addr::new(192, 0, 2, 50);
    let cap = capture(&p.b, &p.vb, ETH_P_ARP, move |f| f.len() >= 42 && f[28..32] == addr.octets());
    start_and_send_garp(&p, format!("{addr}/24/{}", p.va));
    let f = cap.join().unwrap().expect("no gratuitous ARP captured");
    assert_eq!(&f[0..6], &[0xff; 6], "broadcast destination");
    assert_eq!(&f[6..12], &mac, "source MAC");
    assert_eq!(&f[12..14], &[0x08, 0x06]);
    assert_eq!(&f[14..20], &[0, 1, 8, 0, 6, 4]);
    assert_eq!(&f[20..22], &[0, 1], "opcode request");
    assert_eq!(&f[22..28], &mac, "sender MAC");
    assert_eq!(&f[28..32], &addr.octets(), "sender IP");
    assert_eq!(&f[38..42], &addr.octets(), "target IP");
}

#[test]
fn unsolicited_na_is_captured() {
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    let (_, mac) = mac_of(&p.a, &p.va);
    let addr: Ipv6Addr = "2001:db8:1::50".parse().unwrap();
    let cap = capture(&p.b, &p.vb, ETH_P_IPV6, move |f| {
        f.len() >= 86 && f[20] == 58 && f[54] == 136 && f[62..78] == addr.octets()
    });
    start_and_send_garp(&p, format!("{addr}/64/{}", p.va));
    let f = cap.join().unwrap().expect("no unsolicited NA captured");
    assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(&f[6..12], &mac);
    assert_eq!(f[21], 255, "hop limit");
    assert_eq!(&f[22..38], &addr.octets(), "source");
    assert_eq!(&f[38..54], &"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
    assert_eq!(f[55], 0, "code");
    assert_eq!(f[58] & 0xe0, 0x20, "override only");
    assert_eq!(&f[78..80], &[2, 1], "target link-layer address option");
    assert_eq!(&f[80..86], &mac);
}

fn neigh_has(p: &Pair, addr: &str, mac: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let out = p.b.ip(&["neigh", "show", addr, "dev", &p.vb]);
        if out.contains(mac) {
            return true;
        }
        if Instant::now() >= end {
            eprintln!("neigh: {out}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn neighbour_tables_learn_the_new_mac() {
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    let (_, mac) = mac_of(&p.a, &p.va);
    let mac = mac_str(mac);
    let old = "02:00:00:00:00:99";
    p.b.exec(&["sh", "-c", &format!("echo 1 > /proc/sys/net/ipv4/conf/{}/arp_accept", p.vb)]);
    for addr in ["192.0.2.50", "2001:db8:1::50"] {
        p.b.ip(&["neigh", "replace", addr, "dev", &p.vb, "lladdr", old, "nud", "stale"]);
    }
    // adding the addresses alone sends no gratuitous ARP
    let v4 = agent_in(&p.a, format!("192.0.2.50/24/{}", p.va)).unwrap();
    let (v4, r) = op(&p.a, v4, Op::Start);
    r.unwrap();
    let v6 = agent_in(&p.a, format!("2001:db8:1::50/64/{}", p.va)).unwrap();
    let (v6, r) = op(&p.a, v6, Op::Start);
    r.unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(p.b.ip(&["neigh", "show", "192.0.2.50", "dev", &p.vb]).contains(old));
    assert!(p.b.ip(&["neigh", "show", "2001:db8:1::50", "dev", &p.vb]).contains(old));

    for ag in [&v4, &v6] {
        let ann = ag.garp().unwrap();
        p.a.run(move || send_garp(&ann)).unwrap();
    }
    assert!(neigh_has(&p, "192.0.2.50", &mac), "IPv4 neighbour not updated by the gratuitous ARP");
    assert!(neigh_has(&p, "2001:db8:1::50", &mac), "IPv6 neighbour not updated by the NA");
}

/// A request that gets no reply at all: RTM_NEWADDR without NLM_F_ACK (success is silent).
struct Silent<'a>(route::AddrRequest<'a>);

impl tandem::netlink::Request for Silent<'_> {
    fn message_type(&self) -> u16 {
        self.0.message_type()
    }
    fn flags(&self) -> u16 {
        self.0.flags() & !tandem::netlink::NLM_F_ACK
    }
    fn payload_len(&self) -> usize {
        self.0.payload_len()
    }
    fn emit_payload(&self, b: &mut tandem::netlink::MsgBuilder<'_>) {
        self.0.emit_payload(b)
    }
}

#[test]
fn netlink_deadline_and_stale_replies() {
    use tandem::netlink::{NetlinkError, Request};
    if !require(&["ip"]) {
        return;
    }
    let p = pair();
    let va = p.va.clone();
    p.a.run(move || {
        let mut s = NlSocket::new(Protocol::Route).unwrap();
        let idx = route::link_index(&mut s, &va).unwrap();
        // No answer comes: the deadline ends the wait.
        s.set_timeout(Duration::from_millis(150));
        let req = Silent(route::AddrRequest {
            delete: false,
            ifindex: idx,
            addr: "192.0.2.77".parse().unwrap(),
            prefix: 24,
            label: None,
            broadcast: None,
        });
        let t0 = Instant::now();
        let e = s.request("silent add", &req, |_| Ok(())).unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e, NetlinkError::Timeout { op: "silent add" });
        assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(1), "{took:?}");
        assert!(route::has_address(&mut s, idx, "192.0.2.77".parse().unwrap(), 24).unwrap());

        // A reply that arrives after its request gave up is skipped by the next one.
        s.set_timeout(Duration::ZERO);
        assert!(matches!(route::link_info(&mut s, idx), Err(NetlinkError::Timeout { .. })));
        s.set_timeout(Duration::from_secs(1));
        let before = s.skipped();
        let info = route::link_info(&mut s, idx).unwrap();
        assert_eq!(info.name, va);
        assert!(s.skipped() > before);

        // Kernel errors keep their errno.
        let e = route::del_address(&mut s, idx, "192.0.2.78".parse().unwrap(), 24).unwrap_err();
        assert_eq!(e.errno(), Some(nix::errno::Errno::EADDRNOTAVAIL));
        let e = route::link_info(&mut s, 999_999).unwrap_err();
        assert_eq!(e.errno(), Some(nix::errno::Errno::ENODEV));
        let _ = req.buffer_len();
    });
}
