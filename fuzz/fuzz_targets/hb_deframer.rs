//! `cargo +nightly fuzz run hb_deframer`: a serial byte stream into heartbeat's frame cutter,
//! in arbitrary pieces. Properties: no panic; the buffer stays under its limit; every frame
//! delivered starts with `>>>\n` and ends with `<<<\n`; a valid frame after the noise (and a
//! newline) is always recovered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::hb::classic::Deframer;

const GOOD: &[u8] = b">>>\nt=status\nst=up\nsrc=hn1\n<<<\n";

fuzz_target!(|data: &[u8]| {
    let (chunk, line) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c).max(1), rest),
        None => (1, data),
    };
    let limit = 256 + usize::from(data.len() as u8);
    let mut d = Deframer::with_limit(limit);
    for part in line.chunks(chunk) {
        d.feed(part, |f| {
            assert!(f.starts_with(b">>>\n") && f.ends_with(b"<<<\n"));
            assert!(f.len() <= limit);
        });
        assert!(d.buffered() <= limit);
    }
    let mut seen = false;
    d.feed(b"\n", |_| {});
    d.feed(GOOD, |f| seen |= f == GOOD);
    assert!(seen, "valid frame lost after noise");
});
