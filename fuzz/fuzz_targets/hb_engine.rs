//! `cargo +nightly fuzz run hb_engine`: arbitrary (but correctly signed) heartbeat messages
//! from the peer, at arbitrary times, into the protocol engine. Properties: no panic, and the
//! engine's bookkeeping stays bounded.
//!
//! Input: a sequence of records `[dt_ms: u8][len: u8][classic frame body: len bytes]`; each
//! body is decoded as the lines of a classic frame, signed with the test key, and received.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::hb::auth::{self, AuthKeys, Method};
use tandem::hb::proto::{Action, Config, Engine, Event, Failback, Group};
use tandem::hb::{classic, netstring};
use tandem::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let keys = AuthKeys::single(1, Method::Md5, b"fuzz").expect("key");
    let mut c = Config::new("hn1", "hn2", [1; 16], 100);
    c.keepalive = Duration::from_millis(200);
    c.deadtime = Duration::from_secs(2);
    c.initdead = Duration::from_secs(4);
    c.failback = match data.first().map(|b| b % 3) {
        Some(0) => Failback::On,
        Some(1) => Failback::Off,
        _ => Failback::Legacy,
    };
    c.groups = vec![Group { key: "a".into(), local: true }, Group { key: "b".into(), local: false }];
    c.serial = true;
    c.history = 8;
    let mut now = Instant::from_millis(1000);
    let mut e = Engine::new(c, keys.clone(), now, 1_700_000_000).expect("engine");
    let mut out = Vec::new();
    let mut ops = Vec::new();
    let mut rest = data.get(1..).unwrap_or(&[]);
    while rest.len() >= 2 {
        let dt = u64::from(rest[0]) * 10;
        let len = usize::from(rest[1]).min(rest.len() - 2);
        let body = &rest[2..2 + len];
        rest = &rest[2 + len..];
        now = now + Duration::from_millis(dt);
        e.handle(now, Event::Tick, &mut out);
        let mut frame = b">>>\n".to_vec();
        frame.extend_from_slice(body);
        if !body.is_empty() && !body.ends_with(b"\n") {
            frame.push(b'\n');
        }
        frame.extend_from_slice(b"<<<\n");
        if let Ok(mut m) = classic::decode(&frame) {
            if auth::add_field(&mut m, &keys).is_ok() {
                let mut f = Vec::new();
                if netstring::encode_signed(&m, &keys, &mut f).is_ok() {
                    e.handle(now, Event::Received { link: usize::from(dt as u8 % 3), frame: &f }, &mut out);
                }
            }
        }
        for a in out.drain(..) {
            if let Action::Acquire { op, .. } | Action::Release { op, .. } = a {
                ops.push(op);
            }
        }
        if dt % 7 == 0 {
            for op in ops.drain(..) {
                e.handle(now, Event::OpDone { op, ok: dt % 2 == 0 }, &mut out);
            }
        }
        assert!(e.history_len().0 <= 8);
        assert!(e.poll_at() > Instant::ZERO);
    }
});
