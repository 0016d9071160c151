//! Serial links against the real kernel: pty pairs joined by a relay thread.
//! Run: `cargo test --test serial`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use common::relay::{Faults, Pty};
use common::serial::{open_serial, serial_config as cfg, SerialPair};
use common::{KillOnDrop, TempDir};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, BaudRate, LocalFlags};
use tandem::config::LinkConfig;
use tandem::link::serial::SerialLink;
use tandem::link::{Link, LinkError};
use tandem::time::{self, Instant};

/// Test payload: `tag` + sequence number, padded to a heartbeat-like 81 bytes.
fn packet(tag: u8, seq: u32) -> Vec<u8> {
    let mut p = vec![tag; 81];
    p[1..5].copy_from_slice(&seq.to_be_bytes());
    // some zeros and 0xFF to exercise the stuffing
    p[10] = 0;
    p[20] = 0xFF;
    p
}

fn seq_of(p: &[u8]) -> u32 {
    u32::from_be_bytes(p[1..5].try_into().unwrap())
}

/// One round of a tiny poll loop over `links`, like the daemon's: up to `max_wait`.
fn step(links: &mut [&mut SerialLink], rx: &mut [Vec<Vec<u8>>], max_wait: Duration) {
    let now = time::now();
    let mut timeout = max_wait.as_millis() as u64;
    for l in links.iter() {
        if let Some(at) = l.poll_at() {
            timeout = timeout.min(now.millis_until_ceil(at));
        }
    }
    let fds: Vec<Option<RawFd>> = links.iter().map(|l| l.fd()).collect();
    let mut pfds = Vec::new();
    let mut which = Vec::new();
    for (i, fd) in fds.iter().enumerate() {
        if let Some(fd) = fd {
            let mut ev = PollFlags::POLLIN;
            if links[i].wants_write() {
                ev |= PollFlags::POLLOUT;
            }
            // SAFETY: the link owns the fd and outlives this poll.
            pfds.push(PollFd::new(unsafe { BorrowedFd::borrow_raw(*fd) }, ev));
            which.push(i);
        }
    }
    let _ = poll(&mut pfds, PollTimeout::try_from(timeout as i32).unwrap_or(PollTimeout::MAX));
    let revents: Vec<PollFlags> = pfds.iter().map(|p| p.revents().unwrap_or(PollFlags::empty())).collect();
    drop(pfds);
    let now = time::now();
    for (k, &i) in which.iter().enumerate() {
        let r = revents[k];
        if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let out = &mut rx[i];
            links[i].recv(now, &mut |p| out.push(p.to_vec())).unwrap();
        }
        if r.contains(PollFlags::POLLOUT) {
            links[i].on_writable(now);
        }
    }
    for l in links.iter_mut() {
        if l.poll_at().is_some_and(|at| at <= now) {
            l.on_timer(now);
        }
    }
}

fn cable(baud: u32, faults: Faults) -> SerialPair {
    SerialPair::new(baud, faults, 0x5EED ^ u64::from(baud))
}

/// Sends `n` packets each way, one every `interval`, and pumps until all arrived or `limit`.
fn exchange(c: &mut SerialPair, n: u32, interval: Duration, limit: Duration) -> [Vec<Vec<u8>>; 2] {
    let mut rx = [Vec::new(), Vec::new()];
    let start = time::now();
    let mut sent = 0u32;
    let mut next = start;
    while time::now() < start + limit {
        let now = time::now();
        if sent < n && now >= next {
            c.a.send(now, &packet(b'A', sent)).unwrap();
            c.b.send(now, &packet(b'B', sent)).unwrap();
            sent += 1;
            next = next + interval;
        }
        if sent == n && rx[0].len() as u32 >= n && rx[1].len() as u32 >= n {
            break;
        }
        if sent == n && !c.a.wants_write() && !c.b.wants_write() && time::now() > next + Duration::from_millis(500) {
            break; // everything written; whatever is missing is lost
        }
        let wait = next.saturating_since(time::now()).max(Duration::from_millis(1)).min(Duration::from_millis(20));
        step(&mut [&mut c.a, &mut c.b], &mut rx, wait);
    }
    rx
}

#[test]
fn frames_pass_both_ways_at_19200_and_115200() {
    for (baud, interval_ms) in [(19200u32, 60u64), (115200, 15)] {
        let mut c = cable(baud, Faults { baud: Some(baud), ..Faults::default() });
        let n = 25;
        let rx = exchange(&mut c, n, Duration::from_millis(interval_ms), Duration::from_secs(10));
        // rx[0] is what A received (from B), rx[1] what B received
        let want_a: Vec<Vec<u8>> = (0..n).map(|i| packet(b'B', i)).collect();
        let want_b: Vec<Vec<u8>> = (0..n).map(|i| packet(b'A', i)).collect();
        assert_eq!(rx[0], want_a, "A at {baud}");
        assert_eq!(rx[1], want_b, "B at {baud}");
        for l in [&c.a, &c.b] {
            let s = l.stats();
            assert_eq!((s.bad_crc, s.resyncs, s.overruns, s.tx_dropped, s.tx_errors), (0, 0, 0, 0, 0), "{s:?}");
            assert_eq!(s.tx, u64::from(n));
        }
        let rs = c.relay.stats();
        assert_eq!(rs.frames, [u64::from(n); 2], "{rs:?}");
    }
}

#[test]
fn corrupted_frames_are_counted_and_good_ones_arrive() {
    let baud = 19200;
    let mut c = cable(baud, Faults { baud: Some(baud), corrupt: 0.10, ..Faults::default() });
    let n = 100;
    let rx = exchange(&mut c, n, Duration::from_millis(50), Duration::from_secs(20));
    let rs = c.relay.stats();
    assert_eq!(rs.frames, [u64::from(n); 2], "{rs:?}");
    assert!(rs.corrupted[0] > 0 && rs.corrupted[1] > 0, "{rs:?}");
    // (receiver index, relay direction that feeds it, sender tag)
    for (r, dir, tag) in [(1usize, 0usize, b'A'), (0, 1, b'B')] {
        let link = if r == 0 { &c.a } else { &c.b };
        let s = link.stats();
        let got = &rx[r];
        // every delivered packet is an intact one that was sent, in order, no duplicates
        for p in got {
            assert_eq!(p, &packet(tag, seq_of(p)));
        }
        assert!(got.windows(2).all(|w| seq_of(&w[0]) < seq_of(&w[1])));
        assert_eq!(got.len() as u64, u64::from(n) - rs.corrupted[dir], "{s:?} {rs:?}");
        assert_eq!(s.bad_crc + s.resyncs, rs.corrupted[dir], "{s:?} {rs:?}");
        assert_eq!(s.overruns, 0);
    }
}

#[test]
fn live_lock_is_refused_naming_the_pid() {
    let locks = TempDir::new("live");
    let pty = Pty::new();
    let holder = KillOnDrop(std::process::Command::new("sleep").arg("30").spawn().unwrap());
    let pid = holder.0.id();
    let name = pty.path.file_name().unwrap().to_str().unwrap().to_string();
    let lock = locks.join(format!("LCK..{name}"));
    fs::write(&lock, format!("{pid:>10}\n")).unwrap();
    let err = SerialLink::open_in(&cfg(&pty.path, 19200), "s".into(), time::now(), locks.path())
        .err()
        .expect("a live lock must refuse");
    match &err {
        LinkError::Locked { device, pid: p } => {
            assert_eq!(*p, pid);
            assert_eq!(device, &pty.path.display().to_string());
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains(&pid.to_string()), "{err}");
    // the holder's lock is untouched
    assert_eq!(fs::read_to_string(&lock).unwrap(), format!("{pid:>10}\n"));
}

#[test]
fn stale_lock_is_taken_over_and_removed_on_drop() {
    let locks = TempDir::new("stale");
    let pty = Pty::new();
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    let name = pty.path.file_name().unwrap().to_str().unwrap().to_string();
    let lock = locks.join(format!("LCK..{name}"));
    fs::write(&lock, format!("{pid:>10}\n")).unwrap();
    let link = open_serial(&pty.path, 19200, locks.path());
    assert!(link.is_present());
    assert_eq!(fs::read_to_string(&lock).unwrap(), format!("{:>10}\n", std::process::id()));
    assert_eq!(link.lock_path(), lock.as_path());
    drop(link);
    assert!(!lock.exists());
}

#[test]
fn lock_dir_is_created() {
    let locks = TempDir::new("mkdir");
    let sub = locks.join("a/b");
    let pty = Pty::new();
    let link = open_serial(&pty.path, 9600, &sub);
    assert!(sub.join(format!("LCK..{}", pty.path.file_name().unwrap().to_str().unwrap())).exists());
    drop(link);
}

/// Polls the link (as the daemon would) until `cond` or `limit`.
fn drive(link: &mut SerialLink, limit: Duration, mut cond: impl FnMut(&SerialLink) -> bool) -> bool {
    let end = time::now() + limit;
    let mut rx = [Vec::new()];
    while time::now() < end {
        if cond(link) {
            return true;
        }
        step(&mut [link], &mut rx, Duration::from_millis(20));
    }
    cond(link)
}

/// Writes one framed packet into the master end and checks the link delivers it.
fn assert_receives(link: &mut SerialLink, master: &OwnedFd, seq: u32) {
    let mut f = vec![0u8; tandem::link::frame::MAX_FRAME];
    let n = tandem::link::frame::encode(&packet(b'M', seq), &mut f).unwrap();
    nix::unistd::write(master.as_fd(), &f[..n]).unwrap();
    let mut rx = [Vec::new()];
    let end = time::now() + Duration::from_secs(3);
    while rx[0].is_empty() && time::now() < end {
        step(&mut [&mut *link], &mut rx, Duration::from_millis(20));
    }
    assert_eq!(rx[0], vec![packet(b'M', seq)]);
}

#[test]
fn missing_device_is_picked_up_when_it_appears() {
    let locks = TempDir::new("appear");
    let dev = locks.join("ttyLATE");
    let mut link = open_serial(&dev, 115200, locks.path());
    assert!(!link.is_present());
    assert_eq!(link.fd(), None);
    let first = link.poll_at().expect("retry scheduled");
    assert!(first <= time::now() + Duration::from_millis(100));
    // sending while absent neither blocks nor fails
    link.send(time::now(), &packet(b'X', 0)).unwrap();
    // let a few retries fail (backoff grows), then plug the device in
    assert!(!drive(&mut link, Duration::from_millis(400), |l| l.is_present()));
    let pty = Pty::new();
    std::os::unix::fs::symlink(&pty.path, &dev).unwrap();
    let plugged = Instant::from_micros(time::now().as_micros());
    assert!(drive(&mut link, Duration::from_secs(3), |l| l.is_present()), "not picked up");
    // backoff so far: 100, 200, 400, 800 ms → picked up well within a second of plugging
    assert!(time::now().saturating_since(plugged) < Duration::from_millis(1000));
    assert_receives(&mut link, &pty.master, 1);
}

#[test]
fn unplugged_device_is_noticed_and_reopened() {
    let locks = TempDir::new("unplug");
    let dev = locks.join("ttyUSB");
    let pty = Pty::new();
    std::os::unix::fs::symlink(&pty.path, &dev).unwrap();
    let mut link = open_serial(&dev, 57600, locks.path());
    assert!(link.is_present());
    assert_receives(&mut link, &pty.master, 1);
    // unplug: the node disappears and the pty is torn down
    fs::remove_file(&dev).unwrap();
    drop(pty);
    // poll reports the hang-up; the link closes and schedules a reopen
    let fd = link.fd().unwrap();
    // SAFETY: the link still owns the fd here.
    let mut pfd = [PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, PollFlags::POLLIN)];
    assert_eq!(poll(&mut pfd, PollTimeout::from(1000u16)).unwrap(), 1);
    assert!(drive(&mut link, Duration::from_secs(2), |l| !l.is_present()), "unplug not noticed");
    assert_eq!(link.fd(), None);
    assert!(link.poll_at().is_some());
    // sending stays harmless
    link.send(time::now(), &packet(b'X', 0)).unwrap();
    // plug in another adapter under the same name
    let pty2 = Pty::new();
    std::os::unix::fs::symlink(&pty2.path, &dev).unwrap();
    assert!(drive(&mut link, Duration::from_secs(3), |l| l.is_present()), "not reopened");
    assert_receives(&mut link, &pty2.master, 2);
}

#[test]
fn termios_is_raw_while_open_and_restored_after_drop() {
    let locks = TempDir::new("termios");
    let p = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(p.slave.as_fd()).unwrap();
    let mut orig = termios::tcgetattr(p.slave.as_fd()).unwrap();
    orig.local_flags |= LocalFlags::ICANON | LocalFlags::ECHO;
    termios::cfsetspeed(&mut orig, BaudRate::B9600).unwrap();
    termios::tcsetattr(p.slave.as_fd(), termios::SetArg::TCSANOW, &orig).unwrap();
    let orig = termios::tcgetattr(p.slave.as_fd()).unwrap();
    let link = open_serial(&path, 38400, locks.path());
    let t = termios::tcgetattr(p.slave.as_fd()).unwrap();
    assert!(!t.local_flags.intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG));
    assert_eq!(termios::cfgetospeed(&t), BaudRate::B38400);
    assert!(t.control_flags.contains(termios::ControlFlags::CLOCAL | termios::ControlFlags::CS8));
    assert!(!t.control_flags.contains(termios::ControlFlags::CRTSCTS));
    drop(link);
    assert_eq!(termios::tcgetattr(p.slave.as_fd()).unwrap(), orig);
}

#[test]
fn rtscts_and_bad_baud() {
    let locks = TempDir::new("rtscts");
    let pty = Pty::new();
    let c = LinkConfig::Serial { device: pty.path.clone(), baud: 115200, rtscts: true };
    let link = SerialLink::open_in(&c, "s".into(), time::now(), locks.path()).unwrap();
    let t = termios::tcgetattr(pty.slave.as_fd()).unwrap();
    assert!(t.control_flags.contains(termios::ControlFlags::CRTSCTS));
    drop(link);
    let c = LinkConfig::Serial { device: pty.path.clone(), baud: 14400, rtscts: false };
    assert!(matches!(SerialLink::open_in(&c, "s".into(), time::now(), locks.path()), Err(LinkError::Config(_))));
    // not a tty at all: a real error, not "absent"
    let file = locks.join("plainfile");
    fs::write(&file, "x").unwrap();
    assert!(matches!(
        SerialLink::open_in(&cfg(&file, 9600), "s".into(), time::now(), locks.path()),
        Err(LinkError::Open { .. })
    ));
}

#[test]
fn slow_line_drops_oldest_and_never_blocks() {
    // 1200 baud: an 88-byte frame takes 733 ms; sending every 10 ms must drop, not block.
    let mut c = cable(1200, Faults { baud: Some(1200), ..Faults::default() });
    let start = std::time::Instant::now();
    for i in 0..200 {
        let now = time::now();
        c.a.send(now, &packet(b'A', i)).unwrap();
        c.a.on_writable(now);
    }
    assert!(start.elapsed() < Duration::from_millis(500), "send blocked: {:?}", start.elapsed());
    assert!(c.a.queued() <= tandem::link::serial::QUEUE_FRAMES);
    let s = *c.a.stats();
    // only the first frame went to the driver; the rest queued, and all but the last
    // QUEUE_FRAMES were dropped oldest first
    assert_eq!(s.tx, 1, "{s:?}");
    assert_eq!(c.a.queued(), tandem::link::serial::QUEUE_FRAMES);
    assert_eq!(s.tx_dropped, 200 - 1 - tandem::link::serial::QUEUE_FRAMES as u64, "{s:?}");
    assert!(!c.a.wants_write(), "waits by timer, not by POLLOUT");
    assert!(c.a.poll_at().is_some());
    // the newest frames are the ones still to go
    let mut rx = [Vec::new(), Vec::new()];
    let end = time::now() + Duration::from_secs(6);
    while rx[1].len() < 5 && time::now() < end {
        step(&mut [&mut c.a, &mut c.b], &mut rx, Duration::from_millis(50));
    }
    let seqs: Vec<u32> = rx[1].iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs, vec![0, 196, 197, 198, 199]);
}
