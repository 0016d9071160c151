//! Fuzz the serial frame decoder: arbitrary line bytes, fed in arbitrary pieces.
//! Properties: no panic; buffered state bounded; every delivered payload is at most
//! MAX_PAYLOAD; and a valid frame appended after the noise is always recovered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::link::frame::{encode, Decoder, MAX_FRAME, MAX_PAYLOAD};
use tandem::link::LinkStats;

fuzz_target!(|data: &[u8]| {
    // First byte picks the chunk size, so split reads are explored too.
    let (chunk, line) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c).max(1), rest),
        None => (1, data),
    };
    let mut d = Decoder::new();
    let mut stats = LinkStats::default();
    for part in line.chunks(chunk) {
        d.feed(part, &mut stats, &mut |p| assert!(p.len() <= MAX_PAYLOAD));
    }
    // Round trip: whatever came before, a good frame gets through.
    let payload = &line[..line.len().min(MAX_PAYLOAD)];
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(payload, &mut buf).expect("payload fits");
    let mut seen = false;
    d.feed(&buf[..n], &mut stats, &mut |p| seen |= p == payload);
    assert!(seen, "valid frame lost after noise");
});
