//! UdpLink against the real kernel: two network namespaces joined by two veth pairs
//! (192.0.2.0/24 and 198.51.100.0/24, plus 2001:db8::/64 on the first), links opened
//! inside each namespace from a thread that entered it with setns(2).
//!
//! Needs root and iproute2. Without them the tests print a note and pass, unless CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant as StdInstant};

use common::{in_netns, require, wait_for, Netns, Pair};
use tandem::config::LinkConfig;
use tandem::link::udp::UdpLink;
use tandem::link::{Link, LinkError};
use tandem::time::Instant;
use tandem::wire::auth::Codec;
use tandem::wire::packet::MAX_LEN;
use tandem::wire::{GroupWire, MsgKind, NodeState, Repr, MAX_GROUPS, MAX_PAYLOAD};

const PORT: u16 = 6940;

/// Two namespaces `a` and `b` joined by two veth pairs: pair 0: a0 (192.0.2.1, 2001:db8::1)
/// ↔ b0 (192.0.2.2, 2001:db8::2); pair 1: a1 (198.51.100.1) ↔ b1 (198.51.100.2).
/// The names are those of the [`Pair`], which deletes everything on drop.
struct Rig {
    pair: Pair,
    a: String,
    b: String,
    a0: String,
    a1: String,
    b0: String,
    b1: String,
}

impl Rig {
    fn new() -> Rig {
        let pair = Pair::new("tu", 2);
        let (a, b) = (pair.a.name().to_string(), pair.b.name().to_string());
        let (a0, a1, b0, b1) =
            (pair.a_if(0).to_string(), pair.a_if(1).to_string(), pair.b_if(0).to_string(), pair.b_if(1).to_string());
        let addrs: [(&Netns, &str, &str); 6] = [
            (&pair.a, &a0, "192.0.2.1/24"),
            (&pair.b, &b0, "192.0.2.2/24"),
            (&pair.a, &a1, "198.51.100.1/24"),
            (&pair.b, &b1, "198.51.100.2/24"),
            (&pair.a, &a0, "2001:db8::1/64"),
            (&pair.b, &b0, "2001:db8::2/64"),
        ];
        for (ns, dev, addr) in addrs {
            if addr.contains(':') {
                ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
            } else {
                ns.ip(&["addr", "add", addr, "brd", "+", "dev", dev]);
            }
        }
        pair.up();
        // IPv6 multicast needs the kernel's ff00::/8 route, added shortly after carrier up.
        for (ns, dev) in [(&pair.a, &a0), (&pair.b, &b0)] {
            wait_for_route(ns, dev, "ff00::/8");
        }
        Rig { pair, a, b, a0, a1, b0, b1 }
    }
}

/// Waits (at most 5 s) until `ip -6 route show table local` in `ns` lists `prefix` on `dev`.
fn wait_for_route(ns: &Netns, dev: &str, prefix: &str) {
    let found = wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
        ns.ip(&["-6", "route", "show", "table", "local", "dev", dev]).contains(prefix)
    });
    assert!(found, "no {prefix} route on {dev} in {}", ns.name());
}

fn open_in(ns: &str, cfg: LinkConfig) -> Result<UdpLink, LinkError> {
    let name = cfg.name();
    in_netns(ns, move || UdpLink::open(&cfg, name))
}

/// Polls `link` (non-blocking) until it has delivered `want` packets or `timeout` passed.
fn collect(link: &mut UdpLink, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let end = StdInstant::now() + timeout;
    loop {
        link.recv(Instant::ZERO, &mut |p: &[u8]| got.push(p.to_vec())).expect("recv");
        if got.len() >= want || StdInstant::now() >= end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends one distinct packet each way and checks both arrive intact, exactly once.
fn exchange(x: &mut UdpLink, y: &mut UdpLink) {
    let px = b"from x: hello".to_vec();
    let py = b"from y: hello back".to_vec();
    x.send(Instant::ZERO, &px).expect("send x");
    y.send(Instant::ZERO, &py).expect("send y");
    let got_y = collect(y, 1, Duration::from_secs(3));
    let got_x = collect(x, 1, Duration::from_secs(3));
    // Looped-back own packets (bcast) may show up too; the peer's must be there exactly once.
    assert_eq!(got_y.iter().filter(|p| **p == px).count(), 1, "y got {got_y:?}");
    assert_eq!(got_x.iter().filter(|p| **p == py).count(), 1, "x got {got_x:?}");
    assert_eq!(x.stats().tx, 1);
    assert_eq!(y.stats().tx, 1);
    assert_eq!(x.stats().tx_errors, 0);
}

#[test]
fn ucast_v4_both_ways_with_codec() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let mut a =
        open_in(&rig.a, LinkConfig::Ucast { iface: rig.a0.clone(), peer: "192.0.2.2".parse().unwrap(), port: PORT })
            .unwrap();
    let mut b =
        open_in(&rig.b, LinkConfig::Ucast { iface: rig.b0.clone(), peer: "192.0.2.1".parse().unwrap(), port: PORT })
            .unwrap();
    assert_eq!(a.name(), format!("ucast {} 192.0.2.2", rig.a0));
    assert!(a.fd().is_some());
    exchange(&mut a, &mut b);

    // A real authenticated packet end to end.
    let mut ca = Codec::new(b"k", "demo", 0, 1, 3);
    let mut cb = Codec::new(b"k", "demo", 1, 0, 8);
    let mut repr = Repr {
        cluster_id: 0,
        sender: 0,
        generation: 0,
        seq: 0,
        kind: MsgKind::Heartbeat,
        node_state: NodeState::Active,
        keepalive_ms: 100,
        n_groups: 0,
        groups: [GroupWire::EMPTY; MAX_GROUPS],
        payload_len: 0,
        payload: [0; MAX_PAYLOAD],
    };
    let mut buf = [0u8; MAX_LEN];
    let n = ca.encode(&mut repr, &mut buf).unwrap();
    a.send(Instant::ZERO, &buf[..n]).unwrap();
    let got = collect(&mut b, 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1);
    assert_eq!(cb.decode(&got[0]).unwrap(), repr);
    // the same bytes again (a replay) are refused
    a.send(Instant::ZERO, &buf[..n]).unwrap();
    let got = collect(&mut b, 1, Duration::from_secs(3));
    assert_eq!(cb.decode(&got[0]), Err(tandem::wire::WireError::Replay));
}

#[test]
fn bcast_both_ways() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let mut a = open_in(&rig.a, LinkConfig::Bcast { iface: rig.a1.clone(), port: PORT }).unwrap();
    let mut b = open_in(&rig.b, LinkConfig::Bcast { iface: rig.b1.clone(), port: PORT }).unwrap();
    assert_eq!(a.destination(), Some(format!("198.51.100.255:{PORT}").parse().unwrap()));
    exchange(&mut a, &mut b);
}

#[test]
fn mcast_v4_both_ways_no_loop() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = |iface: &str| LinkConfig::Mcast {
        iface: iface.to_string(),
        group: "239.255.69.4".parse().unwrap(),
        port: PORT,
        ttl: 1,
        loop_: false,
    };
    let mut a = open_in(&rig.a, cfg(&rig.a0)).unwrap();
    let mut b = open_in(&rig.b, cfg(&rig.b0)).unwrap();
    exchange(&mut a, &mut b);
    // loop off: nobody heard their own packet
    assert!(collect(&mut a, 1, Duration::from_millis(100)).is_empty());
}

#[test]
fn ipv6_ucast_and_mcast() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let mut a =
        open_in(&rig.a, LinkConfig::Ucast { iface: rig.a0.clone(), peer: "2001:db8::2".parse().unwrap(), port: PORT })
            .unwrap();
    let mut b =
        open_in(&rig.b, LinkConfig::Ucast { iface: rig.b0.clone(), peer: "2001:db8::1".parse().unwrap(), port: PORT })
            .unwrap();
    exchange(&mut a, &mut b);
    drop((a, b));
    let cfg = |iface: &str| LinkConfig::Mcast {
        iface: iface.to_string(),
        group: "ff12::7a:6e64".parse().unwrap(),
        port: PORT + 1,
        ttl: 1,
        loop_: true,
    };
    let mut a = open_in(&rig.a, cfg(&rig.a0)).unwrap();
    let mut b = open_in(&rig.b, cfg(&rig.b0)).unwrap();
    exchange(&mut a, &mut b);
}

#[test]
fn bindtodevice_isolates_interfaces() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    // Two links in namespace a on the same port, one per interface.
    let mut on_a0 =
        open_in(&rig.a, LinkConfig::Ucast { iface: rig.a0.clone(), peer: "192.0.2.2".parse().unwrap(), port: PORT })
            .unwrap();
    let mut on_a1 =
        open_in(&rig.a, LinkConfig::Ucast { iface: rig.a1.clone(), peer: "198.51.100.2".parse().unwrap(), port: PORT })
            .unwrap();
    let sock = in_netns(&rig.b, || UdpSocket::bind("0.0.0.0:0").unwrap());
    sock.send_to(b"via pair 1", ("198.51.100.1", PORT)).unwrap();
    sock.send_to(b"via pair 0", ("192.0.2.1", PORT)).unwrap();
    let got0 = collect(&mut on_a0, 1, Duration::from_secs(3));
    let got1 = collect(&mut on_a1, 1, Duration::from_secs(3));
    // give a stray packet time to show up where it must not
    std::thread::sleep(Duration::from_millis(100));
    let more0 = collect(&mut on_a0, 1, Duration::ZERO);
    let more1 = collect(&mut on_a1, 1, Duration::ZERO);
    assert_eq!(got0, vec![b"via pair 0".to_vec()]);
    assert_eq!(got1, vec![b"via pair 1".to_vec()]);
    assert!(more0.is_empty() && more1.is_empty(), "{more0:?} {more1:?}");

    // With only the a0 link left, a packet to the port through a1 is still not seen on a0.
    drop(on_a1);
    sock.send_to(b"via pair 1 again", ("198.51.100.1", PORT)).unwrap();
    assert!(collect(&mut on_a0, 1, Duration::from_millis(300)).is_empty());
}

#[test]
fn send_errors_are_counted() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let mut a =
        open_in(&rig.a, LinkConfig::Ucast { iface: rig.a0.clone(), peer: "192.0.2.2".parse().unwrap(), port: PORT })
            .unwrap();
    // Too big for a datagram: EMSGSIZE, counted, returned.
    let big = vec![0u8; 70_000];
    for i in 1..=3u64 {
        match a.send(Instant::ZERO, &big) {
            Err(LinkError::Io { op: "sendto", errno }) => {
                assert_eq!(errno, nix::errno::Errno::EMSGSIZE)
            }
            other => panic!("expected EMSGSIZE, got {other:?}"),
        }
        assert_eq!(a.stats().tx_errors, i);
        assert_eq!(a.stats().tx, 0);
    }
    a.send(Instant::ZERO, b"ok").unwrap();
    assert_eq!(a.stats().tx, 1);
    // The interface going down makes sends fail, without panicking.
    rig.pair.a.link(&rig.a0, false);
    match a.send(Instant::ZERO, b"y") {
        Err(LinkError::Io { op: "sendto", errno }) => eprintln!("link down: {errno}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(a.stats().tx_errors, 4);
    assert_eq!(a.stats().tx, 1);
}
