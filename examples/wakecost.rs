//! What the machine charges a process for the primitives of a heartbeat, for the benchmark's
//! idle-cost floor (docs/benchmarks.md, "Idle cost per interval").
//!
//! Measured as on-CPU time (`/proc/thread-self/schedstat`) per event, 10 ms apart:
//! - `timer_us`: a wakeup by a timer's expiry (a thread sleeping 10 ms, nothing else);
//! - `timer_send_us`: the same plus one UDP datagram sent over loopback to a thread that
//!   sleeps in `recv` (the sender pays for the receiver's delivery and wakeup);
//! - `event_us`: that receiver's wakeup and read, per datagram;
//! - `send_us`, `read_us`: a send to a socket nobody waits on, and the read of a datagram
//!   already queued (the price of a packet that wakes nobody).
//!
//! A VRRP pair at rest costs at least `timer_send_us + event_us` per advertisement (the
//! master's timer and send, the backup's wakeup); a heartbeat exchange in which both nodes
//! send on every link at least one timer wakeup and one event wakeup per keepalive, and a
//! send and a read per packet.
//!
//! usage: wakecost [--rounds 5] [--per-round 100]; prints one JSON object (medians).
//!        wakecost --sink PORT [--ms 3000]; wakecost --send-to ADDR:PORT [--count 2000]
//!        (the price of a send over a real path: a sink on the far side, the sender here).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench tool: a failed step ends it

use std::net::{ToSocketAddrs, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

/// The word after `name` on the command line.
fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1))
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    opt(args, name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A heartbeat's size.
const PKT: [u8; 94] = [0x5a; 94];

/// Sends `k` heartbeat-sized datagrams to `to` back to back; the wall-clock nanoseconds taken.
fn timed_burst(tx: &UdpSocket, to: impl ToSocketAddrs + Copy, k: u64) -> u64 {
    let t0 = Instant::now();
    for _ in 0..k {
        tx.send_to(&PKT, to).unwrap();
    }
    t0.elapsed().as_nanos() as u64
}

/// This thread's on-CPU time so far, in nanoseconds.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    s.split_whitespace().next().and_then(|v| v.parse().ok()).expect("schedstat field")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// On-CPU µs per timer wakeup over `n` sleeps of 10 ms.
fn timer_round(n: u64) -> f64 {
    let t0 = cpu_ns();
    for _ in 0..n {
        thread::sleep(Duration::from_millis(10));
    }
    (cpu_ns() - t0) as f64 / 1000.0 / n as f64
}

/// (sender µs per timer wakeup + send, receiver µs per wakeup + read) over `n` datagrams.
fn send_round(n: u64) -> (f64, f64) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    let receiver = thread::spawn(move || {
        let mut buf = [0u8; 128];
        rx.recv(&mut buf).unwrap(); // the first one starts the clock
        let t0 = cpu_ns();
        for _ in 0..n {
            rx.recv(&mut buf).unwrap();
        }
        (cpu_ns() - t0) as f64 / 1000.0 / n as f64
    });
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(&PKT, to).unwrap();
    thread::sleep(Duration::from_millis(20));
    let t0 = cpu_ns();
    for _ in 0..n {
        thread::sleep(Duration::from_millis(10));
        tx.send_to(&PKT, to).unwrap();
    }
    let sender = (cpu_ns() - t0) as f64 / 1000.0 / n as f64;
    (sender, receiver.join().unwrap())
}

/// (µs per send to a socket nobody waits on, µs per read of a queued datagram), `n` of each
/// in bursts of 32 (the receive queue never fills): the per-packet price without a wakeup.
/// Timed by the wall clock: the thread never sleeps here, and schedstat is only brought up to
/// date when a thread is switched out.
fn queued_round(n: u64) -> (f64, f64) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    let mut buf = [0u8; 128];
    let (mut send_ns, mut read_ns, mut done) = (0u64, 0u64, 0u64);
    while done < n {
        let k = (n - done).min(32);
        send_ns += timed_burst(&tx, to, k);
        let t1 = Instant::now();
        for _ in 0..k {
            rx.recv(&mut buf).unwrap();
        }
        read_ns += t1.elapsed().as_nanos() as u64;
        done += k;
    }
    (send_ns as f64 / 1000.0 / n as f64, read_ns as f64 / 1000.0 / n as f64)
}

/// `--sink PORT --ms MS`: reads whatever comes to UDP PORT for MS milliseconds.
fn sink(port: u16, ms: u64) {
    let rx = UdpSocket::bind(("0.0.0.0", port)).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let end = Instant::now() + Duration::from_millis(ms);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        let _ = rx.recv(&mut buf);
    }
}

/// `--send-to ADDR:PORT --count N`: µs per heartbeat-sized datagram sent to a sink on the
/// other side of a real path (in bursts of 32, 2 ms apart: the sink's wakeup is shared by a
/// burst), by the wall clock: what a send costs its sender where the path is veth (the
/// receiver's whole path runs inside the sender's call).
fn send_to(to: &str, n: u64) -> f64 {
    let tx = UdpSocket::bind("0.0.0.0:0").unwrap();
    let (mut ns, mut done) = (0u64, 0u64);
    while done < n {
        let k = (n - done).min(32);
        ns += timed_burst(&tx, to, k);
        done += k;
        thread::sleep(Duration::from_millis(2));
    }
    ns as f64 / 1000.0 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(port) = opt(&args, "--sink").and_then(|v| v.parse().ok()) {
        sink(port, arg(&args, "--ms", 3000));
        return;
    }
    if let Some(to) = opt(&args, "--send-to") {
        println!("{{\"send_us\": {:.1}}}", send_to(to, arg(&args, "--count", 2000)));
        return;
    }
    let rounds = arg(&args, "--rounds", 5).max(1);
    let n = arg(&args, "--per-round", 100).max(1);
    let (mut timer, mut ts, mut ev, mut sq, mut rq) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        timer.push(timer_round(n));
        let (s, r) = send_round(n);
        ts.push(s);
        ev.push(r);
        let (s, r) = queued_round(n * 10);
        sq.push(s);
        rq.push(r);
    }
    println!(
        "{{\"timer_us\": {:.1}, \"timer_send_us\": {:.1}, \"event_us\": {:.1}, \"send_us\": {:.1}, \"read_us\": {:.1}, \
         \"rounds\": {rounds}, \"per_round\": {n}}}",
        median(timer),
        median(ts),
        median(ev),
        median(sq),
        median(rq)
    );
}
