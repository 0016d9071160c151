//! Two engines on a simulated network with a fake clock and fake resource work: start-up,
//! standby, takeover, shutdown, death, late join, every auto_failback mode, and loss.

use std::collections::HashMap;

use super::*;
use crate::hb::auth::{AuthKeys, Method};

const A: usize = 0;
const B: usize = 1;

fn keys() -> AuthKeys {
    AuthKeys::single(1, Method::Sha1, b"tandemfixturekey").unwrap()
}

fn cfg(me: usize, failback: Failback) -> Config {
    let names = ["hn1", "hn2"];
    let mut c = Config::new(names[me], names[1 - me], [me as u8 + 1; 16], 0x6b0a_67b5 + me as u64);
    c.keepalive = Duration::from_secs(1);
    c.deadtime = Duration::from_secs(5);
    c.warntime = Duration::from_secs(3);
    c.initdead = Duration::from_secs(10);
    c.failback = failback;
    c.nodes = vec!["hn1".into(), "hn2".into()];
    // g0 belongs to hn1, g1 to hn2 (haresources: "hn1 g0" and "hn2 g1").
    c.groups = vec![Group { key: "g0".into(), local: me == 0 }, Group { key: "g1".into(), local: me == 1 }];
    c.serial = true;
    c.seed = 7 + me as u64;
    c
}

struct Node {
    e: Option<Engine>,
    /// Groups actually running (the fake daemon's view).
    running: GroupMask,
    ops: Vec<(Instant, OpId, bool, GroupMask)>,
    fence: Option<Instant>,
    sent: Vec<(Instant, Message, Outbound)>,
    actions: Vec<(Instant, Action)>,
    done: bool,
    restart: bool,
}

type DropRule = Box<dyn FnMut(usize, &Message) -> bool>;

struct Sim {
    now: Instant,
    n: [Node; 2],
    wire: Vec<(Instant, usize, Vec<u8>)>,
    /// (from, message) -> drop it?
    drop: DropRule,
    latency: Duration,
    op_time: Duration,
    both_held: u64,
}

fn node() -> Node {
    Node {
        e: None,
        running: GroupMask::EMPTY,
        ops: vec![],
        fence: None,
        sent: vec![],
        actions: vec![],
        done: false,
        restart: false,
    }
}

impl Sim {
    fn new() -> Sim {
        Sim {
            now: Instant::from_millis(1_000_000),
            n: [node(), node()],
            wire: vec![],
            drop: Box::new(|_, _| false),
            latency: Duration::from_millis(2),
            op_time: Duration::from_millis(300),
            both_held: 0,
        }
    }

    fn start(&mut self, i: usize, c: Config) {
        let wall = 1_795_844_020 + self.now.as_millis() / 1000;
        self.n[i] = node();
        self.n[i].e = Some(Engine::new(c, keys(), self.now, wall).unwrap());
        self.feed(i, Event::Tick);
    }

    /// Pulls the plug: the node stops at once (its groups die with it).
    fn kill(&mut self, i: usize) {
        self.n[i].e = None;
        self.n[i].running = GroupMask::EMPTY;
        self.n[i].ops.clear();
        self.wire.retain(|w| w.1 != i);
    }

    fn e(&self, i: usize) -> &Engine {
        self.n[i].e.as_ref().unwrap()
    }

    fn feed(&mut self, i: usize, ev: Event<'_>) {
        let now = self.now;
        let Some(e) = self.n[i].e.as_mut() else { return };
        let mut out = Vec::new();
        e.handle(now, ev, &mut out);
        for a in out {
            match &a {
                Action::Send(o) => {
                    let m = crate::hb::netstring::decode(&o.udp).unwrap().0;
                    // Both encodings must be valid, signed frames of the same message.
                    let back = crate::hb::decode_verified(&o.serial, &keys()).unwrap().msg;
                    let mut m2 = m.clone();
                    crate::hb::auth::add_field(&mut m2, &keys()).unwrap();
                    assert_eq!(back, m2);
                    if !(self.drop)(i, &m) {
                        let wire = if now.as_millis().is_multiple_of(2) { o.udp.clone() } else { o.serial.clone() };
                        self.wire.push((now + self.latency, 1 - i, wire));
                    }
                    self.n[i].sent.push((now, m, o.clone()));
                }
                Action::Acquire { op, groups, .. } => {
                    assert!(groups.and(self.n[i].running).is_empty(), "acquire of running groups {groups:?}");
                    self.n[i].ops.push((now + self.op_time, *op, true, *groups));
                }
                Action::Release { op, groups, .. } => self.n[i].ops.push((now + self.op_time, *op, false, *groups)),
                Action::Fence => self.n[i].fence = Some(now + Duration::from_secs(1)),
                Action::ShutdownDone => self.n[i].done = true,
                Action::Restart => self.n[i].restart = true,
                _ => {}
            }
            self.n[i].actions.push((now, a));
        }
    }

    fn next_time(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        for w in &self.wire {
            min(w.0);
        }
        for n in &self.n {
            if let Some(e) = &n.e {
                min(e.poll_at());
            }
            for o in &n.ops {
                min(o.0);
            }
            if let Some(f) = n.fence {
                min(f);
            }
        }
        t
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..1_000_000 {
            let Some(t) = self.next_time() else { break };
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            let now = self.now;
            let due: Vec<(Instant, usize, Vec<u8>)> = self.wire.iter().filter(|w| w.0 <= now).cloned().collect();
            self.wire.retain(|w| w.0 > now);
            for (_, to, bytes) in due {
                self.feed(to, Event::Received { link: 0, frame: &bytes });
            }
            for i in [A, B] {
                let due: Vec<_> = self.n[i].ops.iter().filter(|o| o.0 <= now).cloned().collect();
                self.n[i].ops.retain(|o| o.0 > now);
                for (_, op, acq, g) in due {
                    self.n[i].running = if acq { self.n[i].running.union(g) } else { self.n[i].running.minus(g) };
                    self.feed(i, Event::OpDone { op, ok: true });
                }
                if self.n[i].fence.is_some_and(|f| f <= now) {
                    self.n[i].fence = None;
                    self.feed(i, Event::Fenced { ok: true });
                }
                if self.n[i].e.as_ref().is_some_and(|e| e.poll_at() <= now) {
                    self.feed(i, Event::Tick);
                }
            }
            if !self.n[A].running.and(self.n[B].running).is_empty() {
                self.both_held += 1;
            }
        }
        self.now = end;
        for i in [A, B] {
            self.feed(i, Event::Tick);
        }
    }

    fn sent_types(&self, i: usize) -> Vec<String> {
        self.n[i]
            .sent
            .iter()
            .filter_map(|(_, m, _)| {
                let t = m.msg_type()?;
                if t == "status" || t.starts_with("NS_") {
                    return None;
                }
                let mut s = t.to_string();
                for fl in m.fields() {
                    let k = String::from_utf8_lossy(fl.name);
                    if ["rsc_hold", "info", "isstable", "dest"].contains(&k.as_ref()) {
                        s.push_str(&format!(" {k}={}", String::from_utf8_lossy(fl.value)));
                    }
                }
                Some(s)
            })
            .collect()
    }
}

const G0: GroupMask = GroupMask(1);
const G1: GroupMask = GroupMask(2);
const BOTH: GroupMask = GroupMask(3);

fn both_start(fb: Failback) -> Sim {
    let mut s = Sim::new();
    s.start(A, cfg(A, fb));
    s.run(Duration::from_millis(15));
    s.start(B, cfg(B, fb));
    s.run(Duration::from_secs(16));
    s
}

#[test]
fn both_start_each_takes_its_own_group() {
    for fb in [Failback::On, Failback::Off, Failback::Legacy] {
        let s = both_start(fb);
        assert_eq!(s.n[A].running, G0, "{fb:?}");
        assert_eq!(s.n[B].running, G1, "{fb:?}");
        assert_eq!(s.both_held, 0);
        for i in [A, B] {
            assert_eq!(s.e(i).local_status(), NodeStatus::Active);
            assert_eq!(s.e(i).peer_status(), NodeStatus::Active);
            assert!(s.e(i).link_up(0));
            if fb != Failback::Legacy {
                assert_eq!(s.e(i).resource_state(), RscState::Stable);
                assert_eq!(s.e(i).claims(), RscSet::LOCAL, "{fb:?} node {i}: {:?}", s.sent_types(i));
                assert_eq!(s.e(i).peer_claims(), RscSet::FOREIGN);
                assert_eq!(s.e(i).rscstatus(), "local");
            }
        }
        if fb != Failback::Legacy {
            let t = s.sent_types(A);
            assert_eq!(t.first().map(String::as_str), Some("reqnodes dest=hn2"), "{t:?}");
            assert!(t.contains(&"starting".to_string()));
            assert!(t.iter().any(|x| x.starts_with("ip-request-resp") && x.contains("dest=hn1")), "{t:?}");
            assert!(t.contains(&"resource rsc_hold=local isstable=1 info=req_our_resources()".to_string()));
        } else {
            assert!(!s.sent_types(A).iter().any(|x| x.starts_with("resource") || x == "starting"));
        }
    }
}

#[test]
fn start_up_burst_and_status_fields_are_heartbeats() {
    let s = both_start(Failback::On);
    let st: Vec<&Message> = s.n[A].sent.iter().map(|x| &x.1).filter(|m| m.msg_type() == Some("status")).collect();
    let names: Vec<String> = st[0].fields().map(|f| String::from_utf8_lossy(f.name).into_owned()).collect();
    assert_eq!(names, ["t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"]);
    assert_eq!((st[0].st(), st[1].st(), st[2].st()), (Some("init"), Some("up"), Some("up")));
    assert_eq!((st[0].seq(), st[1].seq(), st[2].seq()), (Some(1), Some(2), Some(3)));
    assert_eq!(st[0].dt(), Some(7000));
    assert_eq!(st[0].ttl(), Some(3));
    assert_eq!(st[0].protocol(), Some(1));
    assert!(st.iter().any(|m| m.st() == Some("active")));
    assert_eq!(st.last().unwrap().dt(), Some(5000), "deadtime + 2 s only for 5 s");
    // One status per keepalive in steady state.
    let times: Vec<Instant> = s.n[A].sent.iter().filter(|x| x.1.msg_type() == Some("status")).map(|x| x.0).collect();
    let tail = &times[times.len() - 5..];
    for w in tail.windows(2) {
        assert!(w[1].saturating_since(w[0]) <= Duration::from_secs(1));
    }
    let ack = s.n[A].sent.iter().map(|x| &x.1).find(|m| m.msg_type() == Some("NS_ackmsg")).unwrap();
    let names: Vec<String> = ack.fields().map(|f| String::from_utf8_lossy(f.name).into_owned()).collect();
    assert_eq!(names, ["t", "dest", "ackseq", "destuuid", "src", "srcuuid", "hg", "ts", "ttl", "auth"]);
    assert_eq!(ack.destuuid(), Some([2; 16]));
}

#[test]
fn standby_and_takeover_move_everything() {
    let mut s = both_start(Failback::On);
    s.feed(A, Event::Standby(RscSet::ALL));
    s.run(Duration::from_secs(3));
    assert_eq!((s.n[A].running, s.n[B].running), (GroupMask::EMPTY, BOTH));
    assert_eq!(s.e(A).claims(), RscSet::NONE);
    assert_eq!(s.e(B).claims(), RscSet::ALL);
    assert_eq!(s.e(A).standby_state(), Standby::Not);
    assert_eq!(s.e(B).standby_state(), Standby::Not);
    let ta = s.sent_types(A);
    assert!(ta.iter().any(|x| x == "ask_resources rsc_hold=all info=me"));
    assert!(ta.iter().any(|x| x == "resource rsc_hold=none isstable=0 info=standby"));
    assert!(ta.iter().any(|x| x == "ask_resources rsc_hold=all info=done"));
    assert!(s.sent_types(B).iter().any(|x| x == "ask_resources rsc_hold=all info=other"));
    s.feed(A, Event::Takeover(RscSet::ALL));
    s.run(Duration::from_secs(3));
    assert_eq!((s.n[A].running, s.n[B].running), (BOTH, GroupMask::EMPTY));
    assert!(s.sent_types(A).iter().any(|x| x == "hb_takeover rsc_hold=all"));
    assert!(s.sent_types(B).iter().filter(|x| *x == "ask_resources rsc_hold=all info=me").count() == 1);
    assert_eq!(s.both_held, 0);
    // Standby of only the foreign group (hb_standby failback) gives g1 back.
    s.feed(A, Event::Standby(RscSet::FOREIGN));
    s.run(Duration::from_secs(3));
    assert_eq!((s.n[A].running, s.n[B].running), (G0, G1));
    assert_eq!(s.e(A).claims(), RscSet::LOCAL);
    assert_eq!(s.e(B).claims(), RscSet::LOCAL);
    assert_eq!(s.both_held, 0);
}

#[test]
fn standby_is_refused_while_the_peer_is_in_flux() {
    let mut s = Sim::new();
    s.start(A, cfg(A, Failback::On));
    s.start(B, cfg(B, Failback::On));
    s.run(Duration::from_secs(2));
    s.feed(A, Event::Standby(RscSet::ALL));
    assert!(s.n[A].actions.iter().any(|(_, a)| matches!(a, Action::Notice(Notice::StandbyIgnored(_)))));
}

#[test]
fn clean_shutdown_hands_everything_over() {
    for fb in [Failback::On, Failback::Off, Failback::Legacy] {
        let mut s = both_start(fb);
        s.feed(A, Event::Shutdown);
        s.run(Duration::from_secs(3));
        assert!(s.n[A].done, "{fb:?}");
        assert_eq!((s.n[A].running, s.n[B].running), (GroupMask::EMPTY, BOTH), "{fb:?}");
        let ta = s.sent_types(A);
        assert_eq!(ta.last().map(String::as_str), Some("shutdone"), "{fb:?} {ta:?}");
        if fb != Failback::Legacy {
            assert!(ta.iter().any(|x| x == "resource rsc_hold=none isstable=0 info=shutdown"));
            let tb = s.sent_types(B);
            assert!(tb.iter().any(|x| x == "resource rsc_hold=foreign info=mach_down"), "{tb:?}");
        }
        // A stops; B declares it dead later without needing to fence it.
        s.kill(A);
        s.run(Duration::from_secs(8));
        assert_eq!(s.e(B).peer_status(), NodeStatus::Dead);
        assert!(s.sent_types(B).iter().any(|x| x.starts_with("stonith")), "{fb:?}");
        assert!(!s.n[B].actions.iter().any(|(_, a)| matches!(a, Action::Fence)));
        assert_eq!(s.n[B].running, BOTH);
        s.feed(B, Event::Shutdown);
        s.run(Duration::from_secs(3));
        assert!(s.n[B].done);
        assert_eq!(s.n[B].running, GroupMask::EMPTY);
    }
}

#[test]
fn death_of_a_peer_that_held_groups_is_fenced_first_when_possible() {
    for stonith in [false, true] {
        let mut s = Sim::new();
        let (mut ca, mut cb) = (cfg(A, Failback::On), cfg(B, Failback::On));
        ca.stonith = stonith;
        cb.stonith = stonith;
        s.start(A, ca);
        s.start(B, cb);
        s.run(Duration::from_secs(16));
        let t_kill = s.now;
        s.kill(A);
        s.run(Duration::from_secs(10));
        assert_eq!(s.n[B].running, BOTH);
        let dead_at = s.n[B]
            .actions
            .iter()
            .find(|(_, a)| matches!(a, Action::PeerStatus { new: NodeStatus::Dead, .. }))
            .map(|x| x.0)
            .unwrap();
        let d = dead_at.saturating_since(t_kill);
        assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(6), "{d:?}");
        let fenced = s.n[B].actions.iter().any(|(_, a)| matches!(a, Action::Fence));
        assert_eq!(fenced, stonith);
        let st = s.sent_types(B);
        assert!(st.iter().any(|x| x.starts_with("stonith")));
        let result = s.n[B]
            .sent
            .iter()
            .find_map(|(_, m, _)| (m.msg_type() == Some("stonith")).then(|| m.get_str("result").unwrap().to_string()));
        assert_eq!(result.as_deref(), Some(if stonith { "OK" } else { "n_stnth" }));
    }
}

#[test]
fn a_node_alone_takes_everything_and_auto_failback_gives_it_back() {
    for fb in [Failback::On, Failback::Off, Failback::Legacy] {
        let mut s = Sim::new();
        s.start(B, cfg(B, fb));
        s.run(Duration::from_secs(14));
        assert_eq!(s.n[B].running, BOTH, "{fb:?}: alone after initdead");
        s.start(A, cfg(A, fb));
        s.run(Duration::from_secs(20));
        let want_a = if fb == Failback::Off { GroupMask::EMPTY } else { G0 };
        assert_eq!(s.n[A].running, want_a, "{fb:?}: {:?} / {:?}", s.sent_types(A), s.sent_types(B));
        assert_eq!(s.n[B].running, BOTH.minus(want_a), "{fb:?}");
        assert_eq!(s.both_held, 0, "{fb:?}");
        if fb == Failback::Legacy {
            assert!(s.sent_types(A).iter().any(|x| x == "ip-request"), "{:?}", s.sent_types(A));
        }
    }
}

#[test]
fn restart_of_the_peer_is_detected_and_it_gets_its_group_back() {
    let mut s = both_start(Failback::On);
    s.kill(A);
    s.run(Duration::from_secs(1));
    let mut c = cfg(A, Failback::On);
    c.generation += 1;
    s.start(A, c);
    s.run(Duration::from_secs(20));
    assert!(s.n[B].actions.iter().any(|(_, a)| matches!(a, Action::PeerRestarted { .. })));
    assert_eq!((s.n[A].running, s.n[B].running), (G0, G1));
}

#[test]
fn lost_messages_are_requested_and_resent_byte_for_byte() {
    let mut s = both_start(Failback::On);
    let mut n = 0;
    s.drop = Box::new(move |from, m| {
        if from == A && m.seq().is_some() {
            n += 1;
            n % 3 == 0
        } else {
            false
        }
    });
    s.feed(A, Event::Standby(RscSet::ALL));
    s.run(Duration::from_secs(12));
    s.drop = Box::new(|_, _| false);
    s.run(Duration::from_secs(3));
    assert_eq!((s.n[A].running, s.n[B].running), (GroupMask::EMPTY, BOTH));
    assert!(s.e(B).stats().rexmit_requests_sent > 0);
    assert!(s.e(A).stats().retransmitted > 0);
    assert_eq!(s.e(B).peer_status(), NodeStatus::Active);
    // Every retransmission is the same bytes as the first transmission of that seq.
    let mut first: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut resent = 0;
    for (_, _, o) in &s.n[A].sent {
        if let Some(q) = o.seq {
            if o.retransmission {
                assert_eq!(first.get(&q), Some(&o.udp), "seq {q}");
                resent += 1;
            } else {
                first.insert(q, o.udp.clone());
            }
        }
    }
    assert!(resent > 0);
    assert!(s.sent_types(B).is_empty() || s.n[B].sent.iter().any(|x| x.1.msg_type() == Some("NS_rexmit")));
    let rx = s.n[B].sent.iter().map(|x| &x.1).find(|m| m.msg_type() == Some("NS_rexmit")).unwrap();
    assert_eq!(rx.get_str("firstseq"), rx.get_str("lastseq"));
    assert!(rx.seq().is_none() && rx.ld().is_none());
}

#[test]
fn unknown_and_bad_frames_never_crash_and_are_counted() {
    let mut s = both_start(Failback::On);
    let junk: [&[u8]; 5] = [b"", b"garbage", b"###\n%%%\n", b">>>\nt=status\n<<<\n", &[0xff; 100]];
    for j in junk {
        s.feed(A, Event::Received { link: 1, frame: j });
    }
    assert_eq!(s.e(A).stats().bad, 5);
    // A correctly signed message from a third node.
    let mut m = Message::new();
    m.add("t", "status").unwrap();
    m.add("src", "hn3").unwrap();
    m.add("ts", "1").unwrap();
    m.add("seq", "1").unwrap();
    let mut f = Vec::new();
    crate::hb::netstring::encode_signed(&m, &keys(), &mut f).unwrap();
    s.feed(A, Event::Received { link: 0, frame: &f });
    assert!(s.n[A].actions.iter().any(|(_, a)| matches!(a, Action::Notice(Notice::UnknownNode(n)) if n == "hn3")));
    // Our own message looped back (broadcast) is ignored.
    let own = s.n[A].sent.last().unwrap().2.udp.clone();
    let before = s.n[A].actions.len();
    s.feed(A, Event::Received { link: 0, frame: &own });
    assert_eq!(s.n[A].actions.len(), before);
}

#[test]
fn a_rexmit_request_for_forgotten_messages_is_nakked() {
    let mut s = Sim::new();
    let mut ca = cfg(A, Failback::On);
    ca.history = 3;
    s.start(A, ca);
    s.start(B, cfg(B, Failback::On));
    s.run(Duration::from_secs(16));
    let (acked, low, high) = {
        let e = s.e(A);
        (e.peer.acked, e.history.low, e.history.high)
    };
    assert!(high > acked + 3 && low > acked, "acked {acked} low {low} high {high}");
    let mut m = Message::new();
    let (first, last) = ((acked + 1).to_string(), high.to_string());
    for (k, v) in
        [("t", "NS_rexmit"), ("dest", "hn1"), ("firstseq", &first), ("lastseq", &last), ("src", "hn2"), ("ts", "1")]
    {
        m.add(k, v).unwrap();
    }
    let mut f = Vec::new();
    crate::hb::netstring::encode_signed(&m, &keys(), &mut f).unwrap();
    let before = s.n[A].sent.len();
    s.feed(A, Event::Received { link: 0, frame: &f });
    let new = &s.n[A].sent[before..];
    let naks: Vec<&Message> = new.iter().map(|x| &x.1).filter(|m| m.msg_type() == Some("NS_nak_rexmit")).collect();
    let resent: Vec<&Outbound> = new.iter().map(|x| &x.2).filter(|o| o.retransmission).collect();
    assert_eq!(naks.len() as u64, low - acked, "too low: nakked");
    assert_eq!(resent.len() as u64, high - low, "still held: resent");
    assert_eq!(naks[0].firstseq(), Some(acked + 1));
    let names: Vec<String> = naks[0].fields().map(|f| String::from_utf8_lossy(f.name).into_owned()).collect();
    assert_eq!(&names[..4], ["t", "firstseq", "dest", "info"]);
    // Asked again at once: nothing is resent twice within 240 ms.
    let before = s.n[A].sent.len();
    s.feed(A, Event::Received { link: 0, frame: &f });
    assert!(!s.n[A].sent[before..].iter().any(|x| x.2.retransmission));
    // A huge range costs a bounded amount of work.
    let mut m2 = m.clone();
    m2.set(0, "firstseq", b"1").unwrap();
    m2.set(0, "lastseq", b"999999999999").unwrap();
    let mut f = Vec::new();
    crate::hb::netstring::encode_signed(&m2, &keys(), &mut f).unwrap();
    let before = s.n[A].sent.len();
    s.feed(A, Event::Received { link: 0, frame: &f });
    assert!(s.n[A].sent.len() - before <= 2 * REXMIT_BATCH);
}

#[test]
fn a_healed_partition_makes_both_give_up_and_restart() {
    let mut s = both_start(Failback::On);
    s.drop = Box::new(|_, _| true);
    s.run(Duration::from_secs(8));
    assert_eq!(s.e(A).peer_status(), NodeStatus::Dead);
    assert_eq!(s.e(B).peer_status(), NodeStatus::Dead);
    assert_eq!((s.n[A].running, s.n[B].running), (BOTH, BOTH), "split brain, as heartbeat without fencing");
    s.drop = Box::new(|_, _| false);
    s.run(Duration::from_secs(8));
    assert!(s.n[A].restart && s.n[B].restart);
    assert_eq!((s.n[A].running, s.n[B].running), (GroupMask::EMPTY, GroupMask::EMPTY));
}
