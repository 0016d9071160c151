//! Byte-fixture tests of the heartbeat codecs against every message of every capture in
//! tests/fixtures/hb: each one decodes, its fields are what the capture script decoded, it
//! encodes back to the very same bytes, and its digests verify (and fail with a wrong key).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::hbfix::{self, Capture};
use tandem::hb::auth::{self, AuthKeys, Method};
use tandem::hb::classic::{self, Deframer};
use tandem::hb::{decode_verified, netstring, Framing, HbError};

fn wrong_keys(c: &Capture) -> AuthKeys {
    match c.keys.method(1).unwrap() {
        Method::Crc => AuthKeys::single(1, Method::Sha1, b"x").unwrap(),
        m => AuthKeys::single(1, m, b"not-the-fixture-key").unwrap(),
    }
}

#[test]
fn every_captured_message_round_trips_and_verifies() {
    let caps = hbfix::captures();
    assert!(caps.len() >= 2, "captures.tsv lists too few captures");
    let mut total = 0;
    for c in &caps {
        let wrong = wrong_keys(c);
        let (mut trailers, mut fields) = (0, 0);
        for r in &c.msgs {
            let ctx = format!("{} #{}", c.name, r.i);
            let f = decode_verified(&r.raw, &c.keys).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            // The same fields as the independent decoder saw, in the same order.
            let got: Vec<(u8, String, Vec<u8>)> = f
                .msg
                .fields()
                .map(|x| (x.ftype, String::from_utf8_lossy(x.name).into_owned(), x.value.to_vec()))
                .collect();
            assert_eq!(got, r.fields, "{ctx}: fields");
            assert_eq!(f.key_index, 1, "{ctx}");
            // Byte-identical re-encoding, digests included.
            let mut out = Vec::new();
            match f.framing {
                Framing::Netstring => {
                    assert_eq!(r.framing, "netstring", "{ctx}");
                    netstring::encode_signed(&f.msg, &c.keys, &mut out).unwrap();
                    trailers += 1;
                }
                Framing::Classic => {
                    assert_eq!(r.framing, "classic", "{ctx}");
                    classic::encode(&f.msg, &mut out).unwrap();
                }
            }
            assert_eq!(out, r.raw, "{ctx}: re-encoded bytes differ");
            // The auth field, where heartbeat put one (classic msgfmt, and serial frames),
            // verifies too; and re-signing the message without it gives it back.
            if f.msg.auth().is_some() {
                assert_eq!(auth::verify_field(&f.msg, &c.keys), Ok(1), "{ctx}: auth field");
                let mut m = f.msg.clone();
                m.set(0, "auth", b"1 0").unwrap();
                auth::add_field(&mut m, &c.keys).unwrap();
                assert_eq!(m, f.msg, "{ctx}: recomputed auth field");
                fields += 1;
                assert_eq!(auth::verify_field(&f.msg, &wrong), Err(HbError::BadAuth), "{ctx}: wrong key");
            }
            // A wrong key fails.
            assert_eq!(decode_verified(&r.raw, &wrong).map(|_| ()), Err(HbError::BadAuth), "{ctx}: wrong key");
            // And so does one changed byte in the signed part.
            let mut bad = r.raw.clone();
            let at = bad.iter().position(|&b| b == b'=').unwrap() + 1;
            bad[at] ^= 0x01;
            assert!(decode_verified(&bad, &c.keys).is_err(), "{ctx}: flipped byte accepted");
            total += 1;
        }
        eprintln!("{}: {} messages, {} trailers, {} auth fields verified", c.name, c.msgs.len(), trailers, fields);
        assert!(!c.msgs.is_empty(), "{}: empty capture", c.name);
    }
    eprintln!("{total} messages in {} captures", caps.len());
}

#[test]
fn serial_streams_deframe_into_the_captured_frames() {
    for c in hbfix::captures().iter().filter(|c| c.medium == "serial") {
        for dir in ["hn1->hn2", "hn2->hn1"] {
            let mut d = Deframer::new();
            let mut got = Vec::new();
            for (_, bytes) in hbfix::serial_reads(&c.name).iter().filter(|(d, _)| d == dir) {
                d.feed(bytes, |f| got.push(f.to_vec()));
            }
            let want: Vec<Vec<u8>> = c.msgs.iter().filter(|r| r.dir == dir).map(|r| r.raw.clone()).collect();
            assert_eq!(got.len(), want.len(), "{} {dir}", c.name);
            assert!(got == want, "{} {dir}: frames differ", c.name);
            assert_eq!(d.stats().discarded, 0, "{} {dir}", c.name);
            // Byte by byte, with garbage in front and between, gives the same frames.
            let mut d = Deframer::new();
            let mut again = Vec::new();
            for (i, f) in want.iter().enumerate() {
                d.feed(if i % 2 == 0 { b"\x00garbage\xff\n" } else { b"<<<\n" }, |x| again.push(x.to_vec()));
                for b in f {
                    d.feed(&[*b], |x| again.push(x.to_vec()));
                }
            }
            assert!(again == want, "{} {dir}: resync", c.name);
        }
    }
}

#[test]
fn netstring_frames_convert_to_serial_frames_like_heartbeat_does() {
    // heartbeat's serial writer turns a netstring frame back into a message, recomputes the
    // auth field and writes the classic text: the same function, applied to the UDP capture,
    // must give frames that verify.
    let c = hbfix::load("udp-sha1");
    for r in &c.msgs {
        let f = decode_verified(&r.raw, &c.keys).unwrap();
        let mut m = f.msg.clone();
        auth::add_field(&mut m, &c.keys).unwrap();
        let mut text = Vec::new();
        classic::encode(&m, &mut text).unwrap();
        let back = decode_verified(&text, &c.keys).unwrap();
        assert_eq!(back.framing, Framing::Classic);
        assert_eq!(back.msg, m);
    }
}
