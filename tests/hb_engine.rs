//! The protocol engine replaying captured heartbeat conversations (tests/fixtures/hb): our
//! engine plays one node, fed the other node's captured messages at their captured times and
//! the rig's operator actions (hb_standby, hb_takeover, heartbeat -k) for its node; what it
//! sends must be what the real node sent, message for message (within a time window, since
//! its resource work and timers do not run at exactly the same instants).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::hbfix::{self, Capture};
use tandem::hb::netstring;
use tandem::hb::proto::{Action, Config, Engine, Event, Failback, Group, RscSet};
use tandem::hb::Message;
use tandem::time::{Duration, Instant};

/// The parts of a message that carry meaning for the hand-over (not `seq`, `ts`, `ld`…).
fn signature(m: &Message) -> Option<String> {
    let t = m.msg_type()?;
    if t.starts_with("NS_") {
        return None;
    }
    let mut s = t.to_string();
    for f in m.fields() {
        let k = String::from_utf8_lossy(f.name);
        if [
            "st", "dest", "rsc_hold", "rtype", "isstable", "info", "ipaddr", "weown", "ok", "nodelist", "node",
            "result",
        ]
        .contains(&k.as_ref())
        {
            s.push_str(&format!(" {k}={}", String::from_utf8_lossy(f.value)));
        }
    }
    Some(s)
}

fn read_failback(c: &Capture) -> Failback {
    let cf = std::fs::read_to_string(hbfix::dir().join(format!("configs/{}/hn1/ha.cf", c.name))).unwrap();
    match cf.lines().find_map(|l| l.strip_prefix("auto_failback ")).map(str::trim) {
        Some("on") => Failback::On,
        Some("off") => Failback::Off,
        _ => Failback::Legacy,
    }
}

struct Replay {
    /// (capture time, message) sent by our engine.
    sent: Vec<(f64, Message)>,
    actions: Vec<(f64, Action)>,
}

/// Plays node `me` of capture `c`.
fn replay(c: &Capture, me: &str) -> Replay {
    let peer = if me == "hn1" { "hn2" } else { "hn1" };
    let first = c.msgs.iter().find(|r| r.sender() == me).unwrap();
    let m0 = tandem::hb::decode_verified(&first.raw, &c.keys).unwrap().msg;
    let base = c.msgs[0].t.min(c.events.first().map(|e| e.0).unwrap_or(f64::MAX)) - 1.0;
    let at = |t: f64| Instant::from_micros(((t - base) * 1e6) as u64);
    let back = |i: Instant| base + i.as_micros() as f64 / 1e6;
    let mut cfg = Config::new(me, peer, m0.srcuuid().unwrap(), m0.hg().unwrap());
    cfg.keepalive = Duration::from_secs(1);
    cfg.deadtime = Duration::from_secs(5);
    cfg.warntime = Duration::from_millis(2500);
    cfg.initdead = Duration::from_secs(10);
    cfg.failback = read_failback(c);
    cfg.nodes = vec!["hn1".into(), "hn2".into()];
    cfg.groups = vec![Group { key: "IPaddr::192.0.2.50/24/veth0".into(), local: me == "hn1" }];
    cfg.auth_field = first.field("auth").is_some();
    cfg.serial = c.medium == "serial";
    // Inputs, in time order: the peer's messages, and our operator's actions.
    enum In {
        Msg(Vec<u8>),
        Op(Event<'static>),
        Kill,
    }
    let mut inputs: Vec<(f64, In)> = Vec::new();
    for r in c.msgs.iter().filter(|r| r.sender() == peer) {
        inputs.push((r.t, In::Msg(r.raw.clone())));
    }
    // Our node starts when the real one sent its first message: what the peer sent before
    // that was lost (heartbeat was not listening yet).
    let start = first.t - 0.001;
    inputs.retain(|i| i.0 >= start);
    for (t, what) in &c.events {
        let Some(rest) = what.strip_prefix(&format!("{me}: ")) else {
            continue;
        };
        let ev = if rest.starts_with("hb_standby") {
            In::Op(Event::Standby(RscSet::ALL))
        } else if rest.starts_with("hb_takeover") {
            In::Op(Event::Takeover(RscSet::ALL))
        } else if rest.starts_with("heartbeat -k (begin)") {
            In::Op(Event::Shutdown)
        } else if rest.starts_with("kill -9") || rest.contains("machine killed") {
            In::Kill
        } else {
            continue;
        };
        inputs.push((*t, ev));
    }
    // A shutdown the rig did not log (the serial rig stopped the last node while tearing
    // down): it began just before the node's `info=shutdown` message.
    if !inputs.iter().any(|i| matches!(i.1, In::Op(Event::Shutdown))) {
        if let Some(r) = c.msgs.iter().find(|r| r.sender() == me && r.field_str("info") == Some("shutdown")) {
            inputs.push((r.t - 0.01, In::Op(Event::Shutdown)));
        }
    }
    inputs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let end = c.msgs.last().unwrap().t + 1.0;

    let mut e = Engine::new(cfg, c.keys.clone(), at(start), start as u64).unwrap();
    let mut out = Vec::new();
    let mut rep = Replay { sent: vec![], actions: vec![] };
    let mut ops: Vec<(Instant, tandem::hb::proto::OpId)> = vec![];
    let mut stop_at: Option<Instant> = None;
    let mut now = at(start);
    let mut next_in = 0;
    for _ in 0..1_000_000 {
        let mut t = e.poll_at();
        if let Some(i) = inputs.get(next_in) {
            t = t.min(at(i.0));
        }
        for o in &ops {
            t = t.min(o.0);
        }
        if t > at(end) || stop_at.is_some_and(|s| t > s) {
            break;
        }
        now = now.max(t);
        if let Some(i) = inputs.get(next_in).filter(|i| at(i.0) <= now) {
            next_in += 1;
            match &i.1 {
                In::Msg(b) => e.handle(now, Event::Received { link: 0, frame: b }, &mut out),
                In::Op(ev) => e.handle(now, *ev, &mut out),
                In::Kill => break,
            }
        } else if let Some(k) = ops.iter().position(|o| o.0 <= now) {
            let (_, op) = ops.remove(k);
            e.handle(now, Event::OpDone { op, ok: true }, &mut out);
        } else {
            e.handle(now, Event::Tick, &mut out);
        }
        for a in out.drain(..) {
            match &a {
                Action::Send(o) => {
                    let (m, _) = netstring::decode(&o.udp).unwrap();
                    if !o.retransmission {
                        rep.sent.push((back(now), m));
                    }
                }
                Action::Acquire { op, .. } | Action::Release { op, .. } => {
                    ops.push((now + Duration::from_millis(150), *op));
                }
                // heartbeat keeps sending status for about two seconds after shutdone.
                Action::ShutdownDone => stop_at = Some(now + Duration::from_millis(1500)),
                _ => {}
            }
            rep.actions.push((back(now), a));
        }
    }
    rep
}

/// Matches every significant message the real node sent with one our engine sent (same
/// signature, within `window` seconds), in order of the real ones. Status messages count once
/// per change of `st`.
fn compare(c: &Capture, me: &str, rep: &Replay, window: f64) -> (Vec<String>, Vec<String>) {
    let dedup = |v: Vec<(f64, String)>| {
        let mut out: Vec<(f64, String)> = Vec::new();
        for (t, s) in v {
            // Status: once per change of `st`. reqnodes: heartbeat repeats it every second
            // until it gets repnodes, so how many go out depends on timing.
            let kind = s.split(' ').next().unwrap_or("").to_string();
            if (kind == "status" || kind == "reqnodes")
                && out.iter().rev().find(|x| x.1.starts_with(&kind)).is_some_and(|x| x.1 == s)
            {
                continue;
            }
            out.push((t, s));
        }
        out
    };
    let want = dedup(
        c.msgs
            .iter()
            .filter(|r| r.sender() == me)
            .filter_map(|r| {
                let m = tandem::hb::decode_verified(&r.raw, &c.keys).unwrap().msg;
                Some((r.t, signature(&m)?))
            })
            .collect(),
    );
    let got = dedup(rep.sent.iter().filter_map(|(t, m)| Some((*t, signature(m)?))).collect());
    let mut used = vec![false; got.len()];
    let mut missing = Vec::new();
    for (t, s) in &want {
        let hit = got.iter().enumerate().position(|(i, (tg, sg))| !used[i] && sg == s && (tg - t).abs() <= window);
        match hit {
            Some(i) => used[i] = true,
            None => missing.push(format!("{:8.3} {s}", t - c.msgs[0].t)),
        }
    }
    let extra =
        got.iter().zip(&used).filter(|(_, u)| !**u).map(|((t, s), _)| format!("{:8.3} {s}", t - c.msgs[0].t)).collect();
    (missing, extra)
}

/// Replays node `me` of capture `name` and compares; `race` lists (seconds into the capture, signature) of messages allowed
/// to be missing or extra within 1 s of that time: where a race may end the other way.
fn check_except(name: &str, me: &str, race: &[(f64, &str)]) {
    let c = hbfix::load(name);
    let rep = replay(&c, me);
    let (mut missing, mut extra) = compare(&c, me, &rep, 2.5);
    let excused = |line: &String| {
        let (t, sig) = line.trim_start().split_once(' ').unwrap();
        let t: f64 = t.parse().unwrap();
        race.iter().any(|(rt, rs)| (t - rt).abs() <= 1.0 && sig == *rs)
    };
    missing.retain(|l| !excused(l));
    extra.retain(|l| !excused(l));
    if !missing.is_empty() || !extra.is_empty() {
        let mut s = format!("{name} as {me}:\n  sent by {me} in the capture, not by us:\n");
        for m in &missing {
            s.push_str(&format!("    {m}\n"));
        }
        s.push_str("  sent by us, not in the capture:\n");
        for m in &extra {
            s.push_str(&format!("    {m}\n"));
        }
        s.push_str("  our notices:\n");
        for (t, a) in &rep.actions {
            if !matches!(a, Action::Send(_)) {
                s.push_str(&format!("    {:8.3} {a:?}\n", t - c.msgs[0].t));
            }
        }
        panic!("{s}");
    }
}

/// The start-up race of heartbeat's RQSTDELAY: both nodes wait (up to 10 s) for the other
/// to claim its groups, and claim their own when their timer runs out first. heartbeat's first
/// node answered every message about half a second late in these captures (its replies come
/// on its 0.5 s ticks), so its own timer ran out after the peer's claim had come in: it then
/// answered `resource none isstable=0` followed by `local isstable=1`. Our engine's timer is
/// on time, so where it plays that node it claims first (`local isstable=1`): the other,
/// equally legal end of the same race, with the same holders afterwards.
const RQSTDELAY_RACE: &[(f64, &str)] =
    &[(12.0, "resource rsc_hold=none rtype=full isstable=0"), (12.0, "resource rsc_hold=local rtype=full isstable=1")];

/// With `msgfmt netstring`, heartbeat's hn2 lost the `ask_resources info=done` of its own
/// resource child: heartbeat writes a netstring message into its FIFO without its last byte
/// (the newline of `%%%\n`; the `len - 1` is meant for the classic form's NUL), so the FIFO
/// reader misses the start of the next message written there and drops it. Its standby
/// take-over never finished, and its shutdown waited until the machine was killed. Our
/// engine has no FIFO: it finishes the take-over and shuts down cleanly.
const NETSTRING_LOST_DONE: &[(f64, &str)] = &[
    (25.8, "ask_resources rsc_hold=all info=done"),
    (25.8, "resource rsc_hold=all rtype=full isstable=1"),
    (25.8, "resource rsc_hold=foreign info=mach_down"),
    (31.5, "resource rsc_hold=none rtype=full isstable=0 info=shutdown"),
    (31.7, "shutdone st=dead"),
];

/// When the peer shuts down, heartbeat runs two resource children at once (the standby
/// take-over of everything and `req_our_resources`); the second looked before the first had
/// started the group and announced it (`ip-request-resp` to itself). Our engine runs one
/// operation at a time, so the group is already running when it looks, and nothing is sent.
const CONCURRENT_CHILDREN: &[(f64, &str)] =
    &[(35.1, "ip-request-resp dest=hn1 ipaddr=IPaddr::192.0.2.50/24/veth0 weown=yes ok=OK")];

fn both(name: &str, hn1: &[(f64, &str)], hn2: &[(f64, &str)]) {
    check_except(name, "hn1", hn1);
    check_except(name, "hn2", hn2);
}

#[test]
fn udp_sha1() {
    both("udp-sha1", &[], &[]);
}

#[test]
fn serial_sha1() {
    both("serial-sha1", RQSTDELAY_RACE, &[]);
}

#[test]
fn udp_md5() {
    both("udp-md5", RQSTDELAY_RACE, &[]);
}

#[test]
fn udp_crc() {
    both("udp-crc", RQSTDELAY_RACE, &[]);
}

#[test]
fn udp_sha1_msgfmt_netstring() {
    both("udp-sha1-msgfmt-netstring", &[], NETSTRING_LOST_DONE);
}

#[test]
fn bcast_sha1() {
    both("bcast-sha1", RQSTDELAY_RACE, &[]);
}

#[test]
fn mcast_sha1() {
    both("mcast-sha1", &[], RQSTDELAY_RACE);
}

#[test]
fn udp_sha1_rexmit() {
    both("udp-sha1-rexmit", &[], &[]);
}

#[test]
fn udp_sha1_join_death() {
    both("udp-sha1-join-death", &[], &[]);
}

#[test]
fn udp_sha1_failback() {
    both("udp-sha1-failback", &[], &[]);
}

#[test]
fn udp_sha1_failback_off() {
    both("udp-sha1-failback-off", CONCURRENT_CHILDREN, &[]);
}

#[test]
fn udp_sha1_legacy() {
    both("udp-sha1-legacy", &[], &[]);
}

#[test]
fn serial_crc() {
    both("serial-crc", &[], &[]);
}

#[test]
fn every_capture_has_a_replay_test() {
    let src = std::fs::read_to_string(file!()).unwrap();
    for c in hbfix::captures() {
        assert!(src.contains(&format!("both(\"{}\"", c.name)), "{} is not replayed", c.name);
    }
}
