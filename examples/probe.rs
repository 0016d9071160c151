//! The client prober used by the demo, the tests and the benchmarks.
//!
//! Connects to ADDR:PORT every INTERVAL (fresh TCP connection each time, bounded by a
//! connect/read timeout), reads one line (the serving node's name) and logs one line per
//! attempt to stdout: `<unix_us> ok <reply>` or `<unix_us> fail <reason>`.
//! At the end it prints `# longest_gap_ms <ms> from <unix_us> to <unix_us>` (the longest
//! time between two successful answers) and `# ok <n> fail <n>`.
//!
//! usage: probe ADDR:PORT [--interval-ms 10] [--timeout-ms 50] [--duration-ms 10000]
//!        [--until-file PATH]   (stop early once PATH exists)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn attempt(addr: &SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(addr, timeout).map_err(|e| e.kind().to_string().replace(' ', "_"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 128];
    let mut n = 0;
    loop {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].contains(&b'\n') || n == buf.len() {
                    break;
                }
            }
            Err(e) => return Err(format!("read_{}", e.kind().to_string().replace(' ', "_"))),
        }
    }
    let line = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    if line.is_empty() {
        Err("empty_reply".into())
    } else {
        Ok(line.replace(' ', "_"))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(addr) = args.first().and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: probe ADDR:PORT [--interval-ms N] [--timeout-ms N] [--duration-ms N] [--until-file PATH]");
        std::process::exit(2);
    };
    let interval = Duration::from_millis(arg(&args, "--interval-ms", 10));
    let timeout = Duration::from_millis(arg(&args, "--timeout-ms", 50));
    let duration = Duration::from_millis(arg(&args, "--duration-ms", 10_000).min(3_600_000));
    let until = args.iter().position(|a| a == "--until-file").and_then(|i| args.get(i + 1)).cloned();
    let start = Instant::now();
    let mut next = start;
    let (mut ok, mut fail) = (0u64, 0u64);
    let mut last_ok: Option<u128> = None;
    let mut gap = (0u128, 0u128, 0u128);
    while start.elapsed() < duration {
        if let Some(p) = &until {
            if std::path::Path::new(p).exists() {
                break;
            }
        }
        let t = unix_us();
        match attempt(&addr, timeout) {
            Ok(who) => {
                ok += 1;
                println!("{t} ok {who}");
                if let Some(prev) = last_ok {
                    if t - prev > gap.0 {
                        gap = (t - prev, prev, t);
                    }
                }
                last_ok = Some(t);
            }
            Err(why) => {
                fail += 1;
                println!("{t} fail {why}");
            }
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    println!("# longest_gap_ms {:.1} from {} to {}", gap.0 as f64 / 1000.0, gap.1, gap.2);
    println!("# ok {ok} fail {fail}");
}
