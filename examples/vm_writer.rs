//! The crash-failover writer and checker of the QEMU rig (tests/vm), built static.
//!
//! `vm_writer write [-i MS] [-l LABEL] FILE [MAX]`: appends numbered 64-byte records 1, 2,
//! 3… to FILE, `fsync`ing each one, and prints `ACK n` (`ACK LABEL n` with a label, so that
//! two writers can share a console) on stdout (the VM console) only once the fsync for record
//! n returned: every number printed is an acknowledged write. `-i MS`: a pause of MS
//! milliseconds after each record (a console under TCG takes a few hundred lines a second).
//!
//! `vm_writer verify FILE`: prints `FOUND n BAD b TAIL t`: n = how many records 1..n are
//! present and intact from the start, b = how many whole records after them are wrong
//! (must be 0), t = bytes of a torn last record (allowed: never acknowledged).
//! Exits 0 iff b = 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::process::ExitCode;

const REC: usize = 64;

/// Record `n`: its number twice and a checksum-like filler, so a torn, shifted or
/// zero-filled record never passes.
fn record(n: u64) -> [u8; REC] {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut filler = [b'.'; 24];
    for b in filler.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = b'a' + (x % 26) as u8;
    }
    let s = format!("rec {n:010} {} {:016x}\n", String::from_utf8_lossy(&filler), n ^ 0x5555_AAAA_5555_AAAA);
    let mut out = [b'#'; REC];
    let b = s.as_bytes();
    let k = b.len().min(REC);
    out[..k].copy_from_slice(&b[..k]);
    out[REC - 1] = b'\n';
    out
}

fn write(path: &str, max: u64, label: Option<&str>, pause: std::time::Duration) -> ExitCode {
    let mut f = match OpenOptions::new().create(true).append(true).open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vm_writer: {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    for n in 1..=max {
        if let Err(e) = f.write_all(&record(n)).and_then(|()| f.sync_all()) {
            eprintln!("vm_writer: record {n}: {e}");
            return ExitCode::from(1);
        }
        let _ = match label {
            Some(l) => writeln!(out, "ACK {l} {n}"),
            None => writeln!(out, "ACK {n}"),
        };
        let _ = out.flush();
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    ExitCode::SUCCESS
}

fn verify(path: &str) -> ExitCode {
    let mut data = Vec::new();
    if let Err(e) = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data)) {
        eprintln!("vm_writer: {path}: {e}");
        println!("FOUND 0 BAD 0 TAIL 0");
        return ExitCode::from(1);
    }
    let whole = data.len() / REC;
    let tail = data.len() % REC;
    let ok = |i: usize| data.get(i * REC..(i + 1) * REC) == Some(&record(i as u64 + 1)[..]);
    let found = (0..whole).take_while(|&i| ok(i)).count();
    // After the intact prefix only the in-flight (never acknowledged) record may show,
    // as a torn tail or a zero-filled block: any other whole record there is bad.
    let bad =
        (found..whole).filter(|&i| data.get(i * REC..(i + 1) * REC).is_some_and(|r| r.iter().any(|&b| b != 0))).count();
    let zeros = whole - found - bad;
    println!("FOUND {found} BAD {bad} TAIL {tail} ZEROS {zeros}");
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut pause = std::time::Duration::ZERO;
    if args.get(1).map(String::as_str) == Some("-i") && args.len() > 2 {
        pause = std::time::Duration::from_millis(args[2].parse().unwrap_or(0));
        args.drain(1..3);
    }
    match args.as_slice() {
        [op, path] if op == "write" => write(path, u64::MAX, None, pause),
        [op, path, max] if op == "write" => write(path, max.parse().unwrap_or(u64::MAX), None, pause),
        [op, l, label, path] if op == "write" && l == "-l" => write(path, u64::MAX, Some(label), pause),
        [op, l, label, path, max] if op == "write" && l == "-l" => {
            write(path, max.parse().unwrap_or(u64::MAX), Some(label), pause)
        }
        [op, path] if op == "verify" => verify(path),
        _ => {
            eprintln!("usage: vm_writer write [-i MS] [-l LABEL] FILE [MAX] | verify FILE");
            ExitCode::from(2)
        }
    }
}
