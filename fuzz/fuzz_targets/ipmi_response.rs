//! `cargo +nightly fuzz run ipmi_response`: a BMC's bytes into every parse path of the
//! built-in IPMI client: RMCP/session framing, IPMI responses, capabilities, chassis status,
//! Open Session Response, RAKP 2 and 4 (before and after a real handshake), and session
//! packets (AuthCode, sequence window, AES-CBC and its pad).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::fence::ipmi::crypto::Keys;
use tandem::fence::ipmi::packet::{parse_chassis_power, AuthCaps, Packet, Response};
use tandem::fence::ipmi::session::{Handshake, OpenSessionResponse, Rakp2, Rakp4, Session};
use tandem::fence::ipmi::{CipherSuite, Privilege};

/// ipmitool against ipmi_sim (user admin, password s3cret): the handshake's answers.
const CAPTURE: &str = include_str!("../../tests/fixtures/ipmi/status3.txt");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn answers() -> Vec<Vec<u8>> {
    CAPTURE.lines().filter_map(|l| l.strip_prefix("< ")).map(unhex).collect()
}

fn views(data: &[u8]) {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = (p.auth_type(), p.payload_type(), p.encrypted(), p.authenticated(), p.session_id(), p.session_seq());
        let (a, b) = p.payload_range();
        assert!(a <= b && b <= data.len());
        let _ = p.trailer();
        if let Ok(r) = Response::new_checked(p.payload()) {
            let _ = (r.rq_addr(), r.netfn(), r.rs_addr(), r.rq_seq(), r.cmd(), r.completion_code());
            let _ = AuthCaps::parse(r.data()).map(|c| (c.rmcp_plus(), c.kg_set()));
            let _ = parse_chassis_power(r.data());
        }
        if let Ok(o) = OpenSessionResponse::new_checked(p.payload()) {
            let _ = (o.tag(), o.status(), o.max_privilege(), o.console_sid(), o.bmc_sid());
            let _ = (o.auth_alg(), o.integrity_alg(), o.conf_alg());
        }
        if let Ok(r) = Rakp2::new_checked(p.payload()) {
            let _ = (r.tag(), r.status(), r.console_sid(), r.bmc_random(), r.bmc_guid(), r.code());
        }
        if let Ok(r) = Rakp4::new_checked(p.payload()) {
            let _ = (r.tag(), r.status(), r.console_sid(), r.check_value());
        }
    }
    // Every view must stay panic-free on raw payload bytes too.
    let _ = Response::new_checked(data);
    let _ = OpenSessionResponse::new_checked(data);
    let _ = Rakp2::new_checked(data);
    let _ = Rakp4::new_checked(data);
}

fuzz_target!(|data: &[u8]| {
    views(data);
    let rm: [u8; 16] = unhex("1ce9ec690476b94fa53e52fbeecc8aea").try_into().unwrap_or([0; 16]);
    for suite in [CipherSuite::Three, CipherSuite::Seventeen] {
        // Fresh handshake: the fuzz bytes as each answer.
        let mut h = Handshake::new(suite, Privilege::Administrator, b"admin", b"s3cret", 0, 0xa0a2a3a4, rm);
        let _ = h.on_open_response(data);
        let _ = h.on_rakp2(data);
        let _ = h.on_rakp4(data);
        // Session with fixed keys.
        let mut s = Session::new(suite, 0xa0a2a3a4, 2, Keys::derive(suite, vec![0x5a; 20]));
        let _ = s.unwrap(data);
        let _ = Keys::derive(suite, vec![1; 20]).decrypt(data);
    }
    // The real handshake up to RAKP 4, then the fuzz bytes as RAKP 4 and as session packets.
    let a = answers();
    let mut h = Handshake::new(CipherSuite::Three, Privilege::Administrator, b"admin", b"s3cret", 0, 0xa0a2a3a4, rm);
    if let (Some(open), Some(r2), Some(r4)) = (a.get(1), a.get(2), a.get(3)) {
        if h.on_open_response(open).is_ok() && h.on_rakp2(r2).is_ok() {
            let _ = h.on_rakp4(data);
            if let Ok(mut s) = h.on_rakp4(r4) {
                let _ = s.unwrap(data);
                if let Some(first) = a.get(4) {
                    let _ = s.unwrap(first);
                    let _ = s.unwrap(data);
                }
            }
        }
    }
});
