//! `cargo +nightly fuzz run hb_authkeys`: outside bytes into the authkeys parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::hb::auth::AuthKeys;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = AuthKeys::parse(data) {
        let i = k.active_index();
        assert!(k.method(i).is_some());
        let d = k.sign(data);
        assert!(k.verify(i, data, d.as_str()).is_ok());
    }
});
