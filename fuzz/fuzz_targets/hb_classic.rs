//! `cargo +nightly fuzz run hb_classic`: outside bytes into heartbeat's classic (serial) text
//! decoder and the `auth` field check. Whatever decodes must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::hb::auth::{self, AuthKeys, Method};
use tandem::hb::classic;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = classic::decode(data) {
        let mut out = Vec::new();
        classic::encode(&m, &mut out).expect("a decoded message encodes");
        assert_eq!(out, data);
        let keys = AuthKeys::single(1, Method::Crc, b"").expect("key");
        let _ = auth::verify_field(&m, &keys);
        let mut text = Vec::new();
        classic::auth_text(&m, &mut text).expect("auth text");
        // And the same message as a netstring frame, when it has no classic-only field.
        let mut ns = Vec::new();
        if tandem::hb::netstring::encode(&m, &mut ns).is_ok() {
            let (back, _) = tandem::hb::netstring::decode(&ns).expect("netstring round trip");
            assert_eq!(back, m);
        }
    }
});
