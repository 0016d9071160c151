//! The steady state allocates nothing: after start-up, 10,000 heartbeats sent and received
//! through the real loop allocate nothing. A counting global allocator (per thread) watches
//! two in-process daemons, each on its own thread inside its own network namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds GlobalAlloc's contract; we pass it on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller upholds GlobalAlloc's contract; we pass it on unchanged.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds GlobalAlloc's contract; we pass it on unchanged.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds GlobalAlloc's contract; we pass it on unchanged.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HEARTBEATS: u64 = 10_000;

/// One daemon, driven step by step on the calling thread (inside the node's namespace).
fn run_node(cfg: std::path::PathBuf, node: &'static str, dir: std::path::PathBuf) -> (u64, u64, u64) {
    let (c, _) = tandem::load::load(&cfg, Some(node)).unwrap();
    let opts = tandem::daemon::Options {
        config: cfg.clone(),
        node: Some(node.to_string()),
        socket: Some(dir.join(format!("{node}.sock"))),
        state_dir: Some(dir.join(format!("{node}.state"))),
        pidfile: dir.join(format!("{node}.pid")),
        foreground: true,
    };
    let mut d = tandem::daemon::Daemon::new(c, opts).unwrap();
    d.begin();
    let end = Instant::now() + Duration::from_secs(120);
    // Start-up: until the peer is up and the loop has settled.
    while (d.peer_state() != tandem::membership::PeerState::Up || d.counters().heartbeats_sent < 1000)
        && Instant::now() < end
    {
        d.step().unwrap();
    }
    let c0 = d.counters();
    let a0 = ALLOCS.with(|c| c.get());
    while (d.counters().heartbeats_sent < c0.heartbeats_sent + HEARTBEATS
        || d.counters().packets_received < c0.packets_received + HEARTBEATS)
        && Instant::now() < end
    {
        d.step().unwrap();
    }
    let a1 = ALLOCS.with(|c| c.get());
    let c1 = d.counters();
    // Keep serving the peer until it has measured too.
    MEASURED.fetch_add(1, Ordering::SeqCst);
    let linger = Instant::now() + Duration::from_secs(60);
    while Instant::now() < linger && MEASURED.load(Ordering::SeqCst) < 2 {
        d.step().unwrap();
    }
    (a1 - a0, c1.heartbeats_sent - c0.heartbeats_sent, c1.packets_received - c0.packets_received)
}

static MEASURED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[test]
fn steady_state_heartbeats_allocate_nothing() {
    if !require(&["ip"]) {
        return;
    }
    let rig = Rig::new();
    let cfg = rig.config("keepalive 1ms\ndeadtime 5s\nwarntime 4s\ninitdead 10s", "");
    let dir = rig.dir.path().to_path_buf();
    let mut handles = Vec::new();
    for (ns, node) in [(&rig.a, "alpha"), (&rig.b, "beta")] {
        let (cfg, dir) = (cfg.clone(), dir.clone());
        handles.push(spawn_in_netns(ns.name(), move || run_node(cfg, node, dir)));
    }
    for (h, node) in handles.into_iter().zip(["alpha", "beta"]) {
        let (allocs, sent, recv) = h.join().unwrap();
        eprintln!("{node}: {sent} heartbeats sent, {recv} packets received, {allocs} allocations");
        assert!(sent >= HEARTBEATS && recv >= HEARTBEATS, "{node}: loop did not reach {HEARTBEATS} heartbeats in time");
        assert_eq!(allocs, 0, "{node}: the steady-state loop allocated");
    }
}
