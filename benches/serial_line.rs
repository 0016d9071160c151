//! Serial line budget benchmark: `cargo bench --bench serial_line`.
//!
//! Two `SerialLink`s on two pty slaves, joined by the test relay pacing bytes at the baud
//! rate (10 bits per byte). For 9600, 19200 and 115200 baud and 1 and 4 groups it reports
//! - the bytes on the line per heartbeat (measured by the relay, and the `frame_len` bound);
//! - the smallest keepalive the line sustains: every heartbeat arrives, no tx drops, no
//!   overruns, and no backlog (latency stays under keepalive + frame time + 15 ms and grows
//!   by at most 10 ms from the first heartbeats to the last).
//!   Found by bisection over whole milliseconds, ~4 s of heartbeats per trial.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::fd::BorrowedFd;
use std::time::Duration;

use common::relay::Faults;
use common::serial::SerialPair;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tandem::link::serial::{frame_len, heartbeat_packet_len, line_time, min_keepalive};
use tandem::link::Link;
use tandem::time::{self, Instant};

/// The two links at `baud`, on a cable paced at the baud rate.
fn rig(baud: u32) -> SerialPair {
    SerialPair::new(baud, Faults { baud: Some(baud), ..Faults::default() }, 7)
}

/// A heartbeat-sized packet: send time (µs) and sequence up front, the rest pseudo-random
/// with some zeros, like a real packet (MAC bytes are random).
fn packet(len: usize, seq: u32, sent_us: u64) -> Vec<u8> {
    let mut p = vec![0u8; len];
    let mut x = u64::from(seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in p.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = if x % 7 == 0 { 0 } else { x as u8 };
    }
    p[..8].copy_from_slice(&sent_us.to_be_bytes());
    p[8..12].copy_from_slice(&seq.to_be_bytes());
    p
}

struct Trial {
    sent: u32,
    received: u32,
    max_latency: Duration,
    /// Latency of the last heartbeats minus that of the first ones: a backlog building up.
    growth: Duration,
    tx_dropped: u64,
    overruns: u64,
    bytes_per_frame: f64,
}

/// Sends `count` heartbeats A→B at `keepalive` and drives both links like the daemon does.
fn trial(baud: u32, groups: usize, keepalive: Duration, count: u32) -> Trial {
    let mut r = rig(baud);
    let len = heartbeat_packet_len(groups);
    let start = time::now();
    let mut next = start;
    let mut sent = 0u32;
    let mut received = 0u32;
    let mut max_latency = Duration::ZERO;
    let mut lats: Vec<Duration> = Vec::with_capacity(count as usize);
    let end_by = start + keepalive * count + Duration::from_secs(2);
    loop {
        let now = time::now();
        if sent < count && now >= next {
            let p = packet(len, sent, now.as_micros());
            r.a.send(now, &p).unwrap();
            sent += 1;
            next = next + keepalive;
        }
        if (sent == count && received == count) || now > end_by {
            break;
        }
        let mut timeout = if sent < count { now.millis_until_ceil(next) } else { 20 };
        for l in [&r.a, &r.b] {
            if let Some(at) = l.poll_at() {
                timeout = timeout.min(now.millis_until_ceil(at));
            }
        }
        let (fa, fb) = (r.a.fd().unwrap(), r.b.fd().unwrap());
        // SAFETY: the links own these fds and outlive the poll.
        let (ba, bb) = unsafe { (BorrowedFd::borrow_raw(fa), BorrowedFd::borrow_raw(fb)) };
        let mut ev_a = PollFlags::POLLIN;
        if r.a.wants_write() {
            ev_a |= PollFlags::POLLOUT;
        }
        let mut pfds = [PollFd::new(ba, ev_a), PollFd::new(bb, PollFlags::POLLIN)];
        let _ = poll(&mut pfds, PollTimeout::try_from(timeout as i32).unwrap_or(PollTimeout::MAX));
        let (ra, rb) =
            (pfds[0].revents().unwrap_or(PollFlags::empty()), pfds[1].revents().unwrap_or(PollFlags::empty()));
        let now = time::now();
        if ra.contains(PollFlags::POLLOUT) {
            r.a.on_writable(now);
        }
        if rb.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            r.b.recv(now, &mut |p| {
                let sent_us = u64::from_be_bytes(p[..8].try_into().unwrap());
                let lat = now.saturating_since(Instant::from_micros(sent_us));
                max_latency = max_latency.max(lat);
                lats.push(lat);
                received += 1;
            })
            .unwrap();
        }
        for l in [&mut r.a, &mut r.b] {
            if l.poll_at().is_some_and(|at| at <= now) {
                l.on_timer(now);
            }
        }
    }
    let rs = r.relay.stats();
    let k = lats.len().min(5);
    let first = lats.iter().take(k).min().copied().unwrap_or_default();
    let last = lats.iter().rev().take(k).max().copied().unwrap_or_default();
    Trial {
        growth: last.saturating_sub(first),
        sent,
        received,
        max_latency,
        tx_dropped: r.a.stats().tx_dropped,
        overruns: r.b.stats().overruns,
        bytes_per_frame: rs.bytes[0] as f64 / rs.frames[0].max(1) as f64,
    }
}

fn sustained(t: &Trial, keepalive: Duration, frame_time: Duration) -> bool {
    t.received == t.sent
        && t.tx_dropped == 0
        && t.overruns == 0
        && t.growth <= Duration::from_millis(10)
        && t.max_latency <= keepalive + frame_time + Duration::from_millis(15)
}

fn main() {
    if let Ok(k) = std::env::var("SERIAL_TRIAL_MS") {
        let k = Duration::from_millis(k.parse().unwrap());
        let t = trial(9600, 1, k, 43);
        println!(
            "sent {} rcvd {} max {:?} growth {:?} drops {}",
            t.sent, t.received, t.max_latency, t.growth, t.tx_dropped
        );
        return;
    }
    // `cargo bench` passes `--bench`; ignore arguments.
    println!("serial line budget through a pty pair + pacing relay (8N1, 10 bits/byte)");
    println!();
    println!("| baud | groups | packet bytes | line bytes/heartbeat (measured / bound) | frame time | smallest sustained keepalive | quarter-line keepalive (check-config) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for baud in [9600u32, 19200, 115200] {
        for groups in [1usize, 4] {
            let bound = frame_len(heartbeat_packet_len(groups));
            let ft = line_time(bound, baud);
            // ~4 s per trial: long enough that a deficit of 1 ms per frame builds a backlog
            // well past the latency tolerance
            let count = (4000 / (ft.as_millis() as u32).max(1)).max(40);
            // bisection over ms: lo fails (or is 1), hi sustains
            let ft_ms = ft.as_millis() as u64;
            let mut lo = (ft_ms * 4 / 5).max(1);
            let mut hi = ft_ms * 13 / 10 + 3;
            let mut first = trial(baud, groups, Duration::from_millis(hi), count);
            // A loaded machine may need a wider start; widen (bounded), never give up silently.
            let mut widen = 0;
            while !sustained(&first, Duration::from_millis(hi), ft) && widen < 4 {
                hi = hi * 3 / 2 + 1;
                first = trial(baud, groups, Duration::from_millis(hi), count);
                widen += 1;
            }
            let mut measured = first.bytes_per_frame;
            if !sustained(&first, Duration::from_millis(hi), ft) {
                println!(
                    "| {baud} | {groups} | {} | {measured:.1} / {bound} | {:.1} ms | not sustained up to {hi} ms (machine loaded?) | {} ms |",
                    heartbeat_packet_len(groups),
                    ft.as_secs_f64() * 1000.0,
                    min_keepalive(groups, baud).as_millis()
                );
                continue;
            }
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                let k = Duration::from_millis(mid);
                let t = trial(baud, groups, k, count);
                if t.bytes_per_frame > 0.0 {
                    measured = measured.max(t.bytes_per_frame);
                }
                if sustained(&t, k, ft) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            println!(
                "| {baud} | {groups} | {} | {measured:.1} / {bound} | {:.1} ms | {hi} ms | {} ms |",
                heartbeat_packet_len(groups),
                ft.as_secs_f64() * 1000.0,
                min_keepalive(groups, baud).as_millis()
            );
        }
    }
}
