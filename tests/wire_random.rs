//! Random input into the wire parser: never panics, and whatever parses round-trips.
//!
//! Runs for `TANDEM_WIRE_RANDOM_SECS` seconds (default 30) or 20 million inputs, whichever
//! comes first. Seeded (tests/common/rng.rs), so a failure is reproducible from the printed seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::time::{Duration, Instant};

use common::Rng;

use tandem::wire::auth::Codec;
use tandem::wire::packet::{Packet, MAX_LEN};
use tandem::wire::{GroupState, GroupWire, MsgKind, NodeState, Repr, WireError, MAC_LEN, MAX_GROUPS, MAX_PAYLOAD};

const MAX_COUNT: u64 = 20_000_000;

fn random_repr(rng: &mut Rng) -> Repr {
    let n = rng.below(MAX_GROUPS as u64 + 1) as usize;
    let p = rng.below(MAX_PAYLOAD as u64 + 1) as usize;
    let mut groups = [GroupWire::EMPTY; MAX_GROUPS];
    for g in groups.iter_mut().take(n) {
        *g = GroupWire {
            index: rng.next_u64() as u8,
            state: GroupState::from_u8(rng.below(6) as u8).unwrap(),
            flags: rng.next_u64() as u8,
            claim: rng.next_u64() as u32,
            grant: rng.next_u64() as u32,
        };
    }
    let mut payload = [0u8; MAX_PAYLOAD];
    for b in payload.iter_mut().take(p) {
        *b = rng.next_u64() as u8;
    }
    Repr {
        cluster_id: 0,
        sender: 0,
        generation: 0,
        seq: 0,
        kind: MsgKind::from_u8(1 + rng.below(3) as u8).unwrap(),
        node_state: NodeState::from_u8(1 + rng.below(3) as u8).unwrap(),
        keepalive_ms: rng.next_u64() as u32,
        n_groups: n as u8,
        groups,
        payload_len: p as u8,
        payload,
    }
}

/// Mutates `buf` in place: bit flips, byte sets, truncation, extension, splices.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !buf.is_empty() => {
                let i = rng.below(buf.len() as u64) as usize;
                buf[i] ^= 1 << rng.below(8);
            }
            1 if !buf.is_empty() => {
                let i = rng.below(buf.len() as u64) as usize;
                buf[i] = rng.next_u64() as u8;
            }
            2 => {
                let n = rng.below(buf.len() as u64 + 1) as usize;
                buf.truncate(n);
            }
            3 => {
                for _ in 0..1 + rng.below(16) {
                    buf.push(rng.next_u64() as u8);
                }
            }
            // the length-driving fields: n_groups (30) and a payload_len candidate
            4 if buf.len() > 30 => buf[30] = rng.next_u64() as u8,
            _ if !buf.is_empty() => {
                let i = rng.below(buf.len() as u64) as usize;
                buf[i] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5) as usize];
            }
            _ => {}
        }
    }
}

/// Every path the receiver runs on outside bytes, plus the round-trip property.
fn check(codec: &mut Codec, bytes: &[u8], parsed: &mut u64) {
    if let Ok(p) = Packet::new_checked(bytes) {
        // every accessor, after a successful check
        let _ = (p.kind(), p.cluster_id(), p.sender(), p.node_state(), p.generation());
        let _ = (p.seq(), p.keepalive_ms(), p.payload(), p.signed_bytes(), p.mac());
        for i in 0..usize::from(p.n_groups()) {
            let _ = p.group_raw(i);
        }
        assert_eq!(p.mac().len(), MAC_LEN);
        if let Ok(r) = Repr::parse(&p) {
            *parsed += 1;
            assert_eq!(r.buffer_len() + MAC_LEN, bytes.len());
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
            assert_eq!(&out[..], &bytes[..r.buffer_len()]);
        }
    }
    let unchecked = Packet::new_unchecked(bytes);
    let _ = (unchecked.seq(), unchecked.payload(), unchecked.mac(), unchecked.group_raw(31));
    match codec.decode(bytes) {
        Ok(_) => {}
        Err(e) => {
            let _ = (e.is_bad(), e.to_string());
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let secs = std::env::var("TANDEM_WIRE_RANDOM_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let seed =
        std::env::var("TANDEM_WIRE_RANDOM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_7a4d_e401_u64);
    eprintln!("wire_random: seed {seed}, {secs} s");
    let mut rng = Rng::new(seed);
    let mut tx = Codec::new(b"fuzz key", "fuzz", 0, 1, 1);
    let mut rx = Codec::new(b"fuzz key", "fuzz", 1, 0, 1);
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut count, mut parsed, mut accepted) = (0u64, 0u64, 0u64);
    let mut pkt = [0u8; MAX_LEN];
    while count < MAX_COUNT && (count % 1024 != 0 || Instant::now() < end) {
        count += 1;
        let bytes: Vec<u8> = match count % 4 {
            // pure random, any length up to a bit over the max
            0 => (0..rng.below(MAX_LEN as u64 + 64)).map(|_| rng.next_u64() as u8).collect(),
            // random but with a valid header start, so the length checks are reached
            1 => {
                let mut b: Vec<u8> = (0..rng.below(MAX_LEN as u64 + 8)).map(|_| rng.next_u64() as u8).collect();
                for (i, v) in [0x54u8, 0x44, 1].iter().enumerate() {
                    if let Some(x) = b.get_mut(i) {
                        *x = *v;
                    }
                }
                b
            }
            // a valid authenticated packet, mutated
            _ => {
                let mut r = random_repr(&mut rng);
                let n = tx.encode(&mut r, &mut pkt).unwrap();
                let mut b = pkt[..n].to_vec();
                if count % 64 == 2 {
                    // unmutated now and then: must be accepted
                    assert_eq!(rx.decode(&b), Ok(r));
                    accepted += 1;
                    continue;
                }
                mutate(&mut rng, &mut b);
                b
            }
        };
        check(&mut rx, &bytes, &mut parsed);
    }
    eprintln!("wire_random: {count} inputs, {parsed} parsed, {accepted} authentic accepted");
    assert!(count > 10_000, "too few inputs: {count}");
    assert!(parsed > 0 && accepted > 0);
    // a mutated packet never gets past the MAC
    let mut r = random_repr(&mut rng);
    let n = tx.encode(&mut r, &mut pkt).unwrap();
    let mut b = pkt[..n].to_vec();
    b[20] ^= 0x10; // inside seq
    assert_eq!(rx.decode(&b), Err(WireError::BadMac));
}
