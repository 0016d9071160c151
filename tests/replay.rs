//! Replayed heartbeats after a restart: an attacker on the LAN records the peer's
//! heartbeats; the peer dies; this daemon restarts (its replay window was only in memory);
//! the recordings are sent again from the peer's address. They must be refused: the peer's
//! replay mark (generation, highest sequence number) is stored in the state directory at
//! every peer transition, so the dead peer stays dead and failover is not blocked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use tandem::sys::packet::PacketSocket;

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 1s";

/// The UDP payloads of IPv4 frames from `src` to port 694 seen on `iface` in `ns` for `d`.
fn record(ns: &Netns, iface: &'static str, src: [u8; 4], d: Duration) -> Vec<Vec<u8>> {
    ns.run(move || {
        let mut s = tandem::netlink::NlSocket::new(tandem::netlink::Protocol::Route).unwrap();
        let idx = tandem::netlink::route::link_index(&mut s, iface).unwrap();
        let ps = PacketSocket::bind(idx, 0x0800).unwrap();
        let end = Instant::now() + d;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            let mut fds = [PollFd::new(ps.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(50u16));
            while let Ok(n) = ps.recv(&mut buf) {
                // Ethernet 14 + IPv4 (IHL) + UDP 8.
                let ip = &buf[14..n];
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                if ip[9] != 17 || ip[12..16] != src {
                    continue;
                }
                let udp = &ip[ihl..];
                if u16::from_be_bytes([udp[2], udp[3]]) == 694 {
                    out.push(udp[8..].to_vec());
                }
            }
        }
        out
    })
}

#[test]
fn the_dead_peers_recorded_heartbeats_are_refused_after_a_restart() {
    if !require(&["ip", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config_links("ucast lan0 192.0.2.1\nucast lan0 192.0.2.2", TIMING, &rig.web_group("alpha"));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    assert!(wait_group(&a, "web", "alpha", "started", Duration::from_secs(10)), "{:?}", a.status());
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || a.peer_state() == "up"));

    // Record 1.5 s of beta's heartbeats on alpha's LAN port.
    let recorded = record(&rig.a, "lan0", [192, 0, 2, 2], Duration::from_millis(1500));
    assert!(recorded.len() >= 10, "recorded only {} packets", recorded.len());

    // beta dies; alpha sees it dead. alpha restarts (kill -9: its memory is gone).
    b.kill9();
    assert!(wait_for(Duration::from_secs(5), Duration::from_millis(20), || a.peer_state() == "dead"));
    std::thread::sleep(Duration::from_millis(300)); // the mark is stored by a child
    a.kill9();
    a.start();
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || a.peer_state() == "dead"),
        "beta should be dead after initdead: {:?}",
        a.status()
    );

    // Replay the recording from beta's address and port, paced like the original.
    let dir = rig.dir.path().to_path_buf();
    for (i, p) in recorded.iter().enumerate() {
        std::fs::write(dir.join(format!("r{i}")), p).unwrap();
    }
    let script = format!(
        "for i in $(seq 0 {}); do socat -u FILE:{}/r$i UDP-SENDTO:192.0.2.1:694,bind=192.0.2.2:694; sleep 0.05; done",
        recorded.len() - 1,
        dir.display()
    );
    let mut replay =
        std::process::Command::new("ip").args(["netns", "exec", rig.b.name(), "sh", "-c", &script]).spawn().unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let mut seen_up = false;
    while replay.try_wait().unwrap().is_none() && Instant::now() < end {
        seen_up |= a.peer_state() == "up";
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = replay.kill();
    let _ = replay.wait();
    assert!(!seen_up, "the replayed heartbeats brought the dead peer back up:\n{}", a.log_text());
    let st = a.status().unwrap();
    let dropped = st["peers"][0]["links"][0]["dropped"].as_u64().unwrap();
    assert!(dropped as usize >= recorded.len() / 2, "replays not counted as dropped: {st}");
    assert!(a.log_text().contains("refusing the peer's packets up to generation"), "{}", a.log_text());
}
