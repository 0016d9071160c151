//! `cargo +nightly fuzz run hb_netstring`: outside bytes into heartbeat's netstring decoder
//! and the digest check. Whatever decodes must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::hb::auth::{AuthKeys, Method};
use tandem::hb::netstring;

fuzz_target!(|data: &[u8]| {
    if let Ok((m, info)) = netstring::decode(data) {
        let mut out = Vec::new();
        netstring::encode(&m, &mut out).expect("a decoded message encodes");
        assert_eq!(out, info.signed(data));
        assert_eq!(netstring::encoded_len(&m), out.len());
        let _ = info.trailer(data);
        for f in m.fields() {
            let _ = (f.ftype, f.name, f.value);
        }
        let _ = (m.seq(), m.hg(), m.ts(), m.dt(), m.ackseq(), m.firstseq(), m.lastseq(), m.auth(), m.srcuuid());
    }
    let keys = AuthKeys::single(1, Method::Sha1, b"fuzz").expect("key");
    let _ = tandem::hb::decode_verified(data, &keys);
});
