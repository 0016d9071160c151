//! A null-modem cable made of two pty pairs and a relay thread, for serial tests.
//!
//! ```text
//! link A ── slave A │ master A ══ relay thread ══ master B │ slave B ── link B
//! ```
//!
//! The relay copies bytes both ways and can
//! - pace them at a baud rate (10 bits per byte, like 8N1), since a pty itself is instant;
//! - corrupt a share of frames (a frame = the bytes between `0x00` delimiters) by flipping
//!   one bit or inserting one byte, never touching a delimiter, so each corrupted frame is
//!   exactly one bad frame at the receiver;
//! - cut the line (drop everything);
//! - inject line noise: bursts of random bytes (delimiters included) at random moments,
//!   between or inside frames, as a noisy cable would.
//!
//! Reusable by daemon-level tests: `mod common; use common::relay::*;`.
#![allow(dead_code)]

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::Rng;

/// One pty: the master (the "cable" end) and the slave (the "serial port").
pub struct Pty {
    pub master: OwnedFd,
    /// Kept open by the test so the pty lives while links open and close the slave by path.
    pub slave: OwnedFd,
    pub path: PathBuf,
}

impl Pty {
    pub fn new() -> Pty {
        let p = nix::pty::openpty(None, None).expect("openpty");
        let path = nix::unistd::ttyname(p.slave.as_fd()).expect("ttyname");
        // The slave starts cooked (ECHO, ICANON); make it raw so the test's own fd does not
        // echo bytes back before a link has opened it.
        let mut t = nix::sys::termios::tcgetattr(p.slave.as_fd()).expect("tcgetattr");
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(p.slave.as_fd(), nix::sys::termios::SetArg::TCSANOW, &t).expect("tcsetattr");
        set_nonblock(&p.master);
        Pty { master: p.master, slave: p.slave, path }
    }
}

pub fn set_nonblock(fd: &OwnedFd) {
    let fl = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).expect("F_GETFL");
    let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(fl)).expect("F_SETFL");
}

/// What the relay does to the traffic. Change it while running with [`Relay::set_faults`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Pace each direction at this many baud (None = as fast as the ptys go).
    pub baud: Option<u32>,
    /// Share of frames to corrupt, 0.0..=1.0.
    pub corrupt: f64,
    /// Drop every byte (a cut cable).
    pub cut: bool,
    /// Bursts of 1..=16 random bytes injected per second in each direction (0.0 = none).
    pub noise: f64,
}

/// Per-direction counters (index 0 = A→B, 1 = B→A).
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayStats {
    pub bytes: [u64; 2],
    pub frames: [u64; 2],
    pub corrupted: [u64; 2],
    pub dropped_bytes: [u64; 2],
    pub noise_bytes: [u64; 2],
}

pub struct Relay {
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Faults>>,
    stats: Arc<Mutex<RelayStats>>,
    thread: Option<JoinHandle<()>>,
}

struct Dir {
    /// Bytes read, not yet written to the other side.
    pending: Vec<u8>,
    /// Bytes the pacing allows to pass (token bucket).
    credit: f64,
    in_frame: bool,
    /// Corrupt the byte at this offset of the current frame.
    corrupt_at: Option<usize>,
    frame_pos: usize,
}

/// Uniform in [0, 1).
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

const MAX_PENDING: usize = 1 << 16;

impl Relay {
    /// Starts relaying between two pty masters (taken over by the relay).
    pub fn start(a: OwnedFd, b: OwnedFd, faults: Faults, seed: u64) -> Relay {
        Relay::spawn(a, b, faults, seed, false)
    }

    /// Like [`Relay::start`], with the relay's thread at real-time priority (SCHED_FIFO 10,
    /// below the daemons' 20): a cable does not stall when the machine is loaded, and a
    /// relay starved for half a second by other work would look like a dead line.
    pub fn start_realtime(a: OwnedFd, b: OwnedFd, faults: Faults, seed: u64) -> Relay {
        Relay::spawn(a, b, faults, seed, true)
    }

    fn spawn(a: OwnedFd, b: OwnedFd, faults: Faults, seed: u64, realtime: bool) -> Relay {
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Mutex::new(faults));
        let stats = Arc::new(Mutex::new(RelayStats::default()));
        let (s, f, st) = (stop.clone(), faults.clone(), stats.clone());
        let thread = std::thread::spawn(move || {
            if realtime {
                let _ = tandem::sys::rt::set_realtime(10);
            }
            run(a, b, s, f, st, seed)
        });
        Relay { stop, faults, stats, thread: Some(thread) }
    }

    pub fn set_faults(&self, f: Faults) {
        *self.faults.lock().unwrap() = f;
    }

    pub fn faults(&self) -> Faults {
        *self.faults.lock().unwrap()
    }

    pub fn stats(&self) -> RelayStats {
        *self.stats.lock().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    a: OwnedFd,
    b: OwnedFd,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Faults>>,
    stats: Arc<Mutex<RelayStats>>,
    seed: u64,
) {
    let fds = [a, b];
    let mut rng = Rng::new(seed);
    let mut dirs: Vec<Dir> = (0..2)
        .map(|_| Dir { pending: Vec::new(), credit: 0.0, in_frame: false, corrupt_at: None, frame_pos: 0 })
        .collect();
    let mut last = Instant::now();
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let f = *faults.lock().unwrap();
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        for (i, d) in dirs.iter_mut().enumerate() {
            if f.noise > 0.0 && !f.cut && d.pending.len() < MAX_PENDING && unit(&mut rng) < f.noise * dt {
                let n = 1 + rng.below(16) as usize;
                d.pending.extend(rng.bytes(n));
                stats.lock().unwrap().noise_bytes[i] += n as u64;
            }
            match f.baud {
                Some(baud) => d.credit = (d.credit + dt * f64::from(baud) / 10.0).min(64.0),
                None => d.credit = f64::INFINITY,
            }
        }
        // Poll for input only where pending data has room; wake at least every 2 ms for pacing.
        let mut pfds: Vec<PollFd> = fds
            .iter()
            .zip(&dirs)
            .map(|(fd, d)| {
                let ev = if d.pending.len() < MAX_PENDING { PollFlags::POLLIN } else { PollFlags::empty() };
                PollFd::new(fd.as_fd(), ev)
            })
            .collect();
        let _ = poll(&mut pfds, PollTimeout::from(2u8));
        let hup: Vec<bool> = pfds
            .iter()
            .map(|p| p.revents().is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)))
            .collect();
        drop(pfds);
        let mut st = stats.lock().unwrap();
        for i in 0..2 {
            // read side i
            if dirs[i].pending.len() < MAX_PENDING {
                match nix::unistd::read(fds[i].as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        if f.cut {
                            st.dropped_bytes[i] += n as u64;
                        } else {
                            let d = &mut dirs[i];
                            for &byte in &buf[..n] {
                                push_byte(d, byte, f.corrupt, &mut rng, &mut st, i);
                            }
                        }
                    }
                    _ => {}
                }
            }
            // write to the other side, paced
            let d = &mut dirs[i];
            let allowed = if d.credit.is_finite() { d.credit.floor() as usize } else { usize::MAX };
            let n = d.pending.len().min(allowed);
            if n > 0 {
                match nix::unistd::write(fds[1 - i].as_fd(), &d.pending[..n]) {
                    Ok(w) => {
                        d.pending.drain(..w);
                        if d.credit.is_finite() {
                            d.credit -= w as f64;
                        }
                        st.bytes[i] += w as u64;
                    }
                    Err(Errno::EAGAIN) => {}
                    Err(_) => {
                        // The other side is gone: the cable goes nowhere.
                        st.dropped_bytes[i] += d.pending.len() as u64;
                        d.pending.clear();
                    }
                }
            }
        }
        drop(st);
        if hup.iter().any(|&h| h) {
            // A slave end has no opener: avoid spinning on POLLHUP.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn push_byte(d: &mut Dir, byte: u8, corrupt: f64, rng: &mut Rng, st: &mut RelayStats, i: usize) {
    if byte == 0 {
        if d.in_frame {
            st.frames[i] += 1;
        }
        d.in_frame = false;
        d.corrupt_at = None;
        d.pending.push(0);
        return;
    }
    if !d.in_frame {
        d.in_frame = true;
        d.frame_pos = 0;
        d.corrupt_at = if corrupt > 0.0 && unit(rng) < corrupt { Some((rng.next_u64() % 48) as usize) } else { None };
    }
    if d.corrupt_at == Some(d.frame_pos) {
        d.corrupt_at = None;
        st.corrupted[i] += 1;
        let r = rng.next_u64();
        if r & 1 == 0 {
            // flip one bit, keeping the byte non-zero
            let mut flipped = byte ^ (1 << ((r >> 8) % 8));
            if flipped == 0 {
                flipped = byte ^ 0x80 ^ 0x01;
            }
            d.pending.push(if flipped == 0 { byte.wrapping_add(1).max(1) } else { flipped });
        } else {
            // insert a random non-zero byte before this one
            d.pending.push(((r >> 16) as u8).max(1));
            d.pending.push(byte);
        }
    } else {
        d.pending.push(byte);
    }
    d.frame_pos += 1;
}
