//! `cargo +nightly fuzz run wire_packet`: outside bytes into the wire parser and the codec.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::wire::auth::Codec;
use tandem::wire::packet::Packet;
use tandem::wire::{Repr, MAC_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = (p.kind(), p.seq(), p.payload(), p.signed_bytes());
        assert_eq!(p.mac().len(), MAC_LEN);
        if let Ok(r) = Repr::parse(&p) {
            // whatever parses must emit back to the same bytes
            assert_eq!(r.buffer_len() + MAC_LEN, data.len());
            let mut out = [0u8; tandem::wire::packet::MAX_LEN];
            let n = r.buffer_len();
            r.emit(&mut Packet::new_unchecked(&mut out[..n])).unwrap();
            assert_eq!(&out[..n], &data[..n]);
        }
    }
    let mut codec = Codec::new(b"fuzz key", "fuzz", 1, 0, 1);
    if let Err(e) = codec.decode(data) {
        let _ = e.is_bad();
    }
});
