//! The outdate sub-protocol behind `tandem fence-peer` (DRBD's fence-peer handler), as pure
//! bookkeeping for the core.
//!
//! Asking (our DRBD lost its peer and wants the peer's disk outdated before it goes on):
//! - peer `Up`: the request goes out on every link and again every keepalive until the
//!   answer comes (copies are answered once), or [`ASK_TIMEOUT`] passes: then the client
//!   gets [`fence::PEER_FAILED`], never "unreachable", because the peer is alive and its
//!   disk was not outdated;
//! - peer `Init` (just started, not heard yet): the request waits until membership knows;
//! - peer `Dead` (silent on every link for deadtime): without fencing,
//!   [`fence::PEER_UNREACHABLE`] at once, the only case that answers it; with fencing
//!   (DRBD's `fencing resource-and-stonith`), the request waits for the fence:
//!   [`fence::PEER_FENCED`] once the peer's power-off is confirmed, [`fence::PEER_FAILED`] if
//!   it is not within [`FENCE_WAIT`] (DRBD then keeps I/O frozen).
//!
//! Answering (the peer asks us): one child per resource outdates our disk (it retries until
//! our DRBD sees the disconnect, within its budget); its answer is sent and kept for
//! [`ANSWER_KEPT`], so the copies of a request that arrive on the other links, and the
//! peer's retransmissions, get it without a second outdate.
//!
//! Every request carries an id (protocol level 3; [`encode_request`]): copies and
//! retransmissions of one request share it, a new `fence-peer` gets a new one. An answer is
//! repeated only to the request it answered, so a new request (the link dropped again after a
//! resync) always gets a fresh outdate, never the answer to an older one. A peer of an older
//! release sends no id: its requests are matched by resource name, as it expects.

use crate::agent::drbd::{fence, valid_resource_name};
use crate::config::resource::DRBD_NAME_MAX;
use crate::membership::PeerState;
use crate::time::{Duration, Instant};

use super::io::{ConnId, Event, Msg, Output, ReplyCode};

/// How long an asked-for outdate may take, from the first request sent to the answer: the
/// peer's child may need [`crate::agent::drbd::OUTDATE_BUDGET`] to see the disconnect.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a request waits for a peer in `Init` (not heard yet) to be known.
pub const INIT_WAIT: Duration = Duration::from_secs(30);
/// How long a request about a dead peer waits for its fence to be confirmed.
pub const FENCE_WAIT: Duration = Duration::from_secs(120);

/// Where fencing of the peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceView {
    /// No fencing for the peer: none configured, or it shut down cleanly (nothing to fence).
    None,
    /// Fencing is configured and not confirmed (waiting, running, retrying, or an operator).
    Pending,
    /// The peer's power-off is confirmed.
    Confirmed,
}
/// How long an answer we gave is repeated to copies and retransmissions of the request.
pub const ANSWER_KEPT: Duration = Duration::from_secs(3);
/// How long the outdate child may run (the DRBD agent's own budget, plus margin).
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(18);
/// Outdate children at once (distinct resources); more requests are answered "failed".
pub const MAX_ANSWERING: usize = 4;
/// Extra time the control connection stays open past the ask's own deadline.
const HOLD_MARGIN: Duration = Duration::from_secs(1);

/// A local `tandem fence-peer` waiting for the peer's answer.
#[derive(Debug, Clone)]
struct Ask {
    conn: ConnId,
    resource: String,
    /// This request's id (never 0).
    id: u32,
    /// `None` while the peer is in `Init`: nothing sent yet.
    next_send: Option<Instant>,
    deadline: Instant,
}

/// One of the peer's requests that a child is answering. Its place in the table is the
/// child's id.
#[derive(Debug, Clone)]
struct Answering {
    resource: String,
    /// The requests (ids) its answer goes to: the first, and new ones that came meanwhile.
    ids: Vec<u32>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Outdates {
    asks: Vec<Ask>,
    /// Indexed by the child's id (`Output::SpawnOutdate { id }`).
    answering: [Option<Answering>; MAX_ANSWERING],
    /// Answers we gave: (resource, request id, when, code).
    answers: Vec<(String, u32, Instant, u8)>,
    /// The last request id we used.
    last_id: u32,
}

/// The answer for a dead peer: fenced (7) or, without fencing, unreachable (5).
fn dead_reply(conn: ConnId, resource: &str, fencing: FenceView) -> Output {
    match fencing {
        FenceView::Confirmed => Output::Reply {
            conn,
            code: ReplyCode::FencePeer(fence::PEER_FENCED),
            text: format!("peer was fenced (powered off) while asked to outdate {resource}\n"),
        },
        _ => Output::Reply {
            conn,
            code: ReplyCode::FencePeer(fence::PEER_UNREACHABLE),
            text: format!("peer is unreachable (dead on every link) while asked to outdate {resource}\n"),
        },
    }
}

fn failed(conn: ConnId, text: String) -> Output {
    Output::Reply { conn, code: ReplyCode::FencePeer(fence::PEER_FAILED), text }
}

impl Outdates {
    /// A local client asks us to have the peer outdate `resource`.
    #[allow(clippy::too_many_arguments)]
    pub fn ask(
        &mut self,
        now: Instant,
        conn: ConnId,
        resource: &str,
        peer: PeerState,
        keepalive: Duration,
        fencing: FenceView,
        out: &mut Vec<Output>,
    ) {
        if resource.len() > DRBD_NAME_MAX || !valid_resource_name(resource) {
            let text =
                format!("{resource:?} is not a DRBD resource name (1 to {DRBD_NAME_MAX} of A-Z a-z 0-9 _ . - +)\n");
            out.push(Output::Reply { conn, code: ReplyCode::Usage, text });
            return;
        }
        if peer == PeerState::Dead && fencing != FenceView::Pending {
            out.push(dead_reply(conn, resource, fencing));
            return;
        }
        let wait = if peer == PeerState::Dead { FENCE_WAIT } else { INIT_WAIT };
        self.last_id = self.last_id.wrapping_add(1).max(1);
        let mut a =
            Ask { conn, resource: resource.to_string(), id: self.last_id, next_send: None, deadline: now + wait };
        if peer == PeerState::Up {
            a.next_send = Some(now + keepalive);
            a.deadline = now + ASK_TIMEOUT;
            out.push(Output::Send(Msg::OutdateRequest { resource: a.resource.clone(), id: a.id }));
        }
        out.push(Output::Hold { conn, until: a.deadline.max(now + ASK_TIMEOUT) + HOLD_MARGIN });
        self.asks.push(a);
    }

    /// Time passed or the peer's state changed: send, resend, give up, or answer for a
    /// dead peer.
    pub fn tick(
        &mut self,
        now: Instant,
        peer: PeerState,
        keepalive: Duration,
        fencing: FenceView,
        out: &mut Vec<Output>,
    ) {
        let mut i = 0;
        while i < self.asks.len() {
            let Some(a) = self.asks.get_mut(i) else { break };
            if peer == PeerState::Dead {
                if fencing != FenceView::Pending {
                    let a = self.asks.swap_remove(i);
                    out.push(dead_reply(a.conn, &a.resource, fencing));
                    continue;
                }
                // Wait for the fence; a request already sent goes on waiting too.
                if a.next_send.is_some() {
                    a.next_send = None;
                    a.deadline = now + FENCE_WAIT;
                }
            }
            match (a.next_send, peer) {
                (None, PeerState::Up) => {
                    a.next_send = Some(now + keepalive);
                    a.deadline = now + ASK_TIMEOUT;
                    out.push(Output::Send(Msg::OutdateRequest { resource: a.resource.clone(), id: a.id }));
                }
                (Some(at), PeerState::Up) if at <= now && now < a.deadline => {
                    a.next_send = Some(now + keepalive);
                    out.push(Output::Send(Msg::OutdateRequest { resource: a.resource.clone(), id: a.id }));
                }
                _ => {}
            }
            if now >= a.deadline {
                let a = self.asks.swap_remove(i);
                let text = match (a.next_send, peer) {
                    (None, PeerState::Dead) => {
                        format!("the dead peer's fence was not confirmed in time: {} was not outdated\n", a.resource)
                    }
                    (None, _) => format!("peer's state is still unknown: {} was not outdated\n", a.resource),
                    (Some(_), _) => {
                        format!("peer did not answer the outdate request for {}: not outdated\n", a.resource)
                    }
                };
                out.push(failed(a.conn, text));
                continue;
            }
            i += 1;
        }
        self.answers.retain(|(_, _, at, _)| now.saturating_since(*at) < ANSWER_KEPT);
    }

    /// The peer answered our request `id` for `resource` (`id` 0: a peer without ids, whose
    /// answer is for whoever asks about `resource`).
    pub fn peer_answers(&mut self, resource: &str, id: u32, code: u8, out: &mut Vec<Output>) {
        let mut i = 0;
        while i < self.asks.len() {
            let mine = |a: &Ask| a.resource == resource && a.next_send.is_some() && (id == 0 || a.id == id);
            if self.asks.get(i).is_some_and(mine) {
                let a = self.asks.swap_remove(i);
                let text = format!("peer answered {code} for {resource}\n");
                out.push(Output::Reply { conn: a.conn, code: ReplyCode::FencePeer(code), text });
                continue;
            }
            i += 1;
        }
    }

    /// The peer asks us (request `id`, 0 from a peer without ids) to outdate our disk of
    /// `resource`.
    pub fn peer_asks(&mut self, now: Instant, resource: &str, id: u32, out: &mut Vec<Output>) {
        let reply = |code| Output::Send(Msg::OutdateReply { resource: resource.to_string(), id, code });
        // A copy or a retransmission of a request already answered: the same answer.
        if let Some((_, _, _, code)) = self
            .answers
            .iter()
            .find(|(r, i, at, _)| r == resource && *i == id && now.saturating_since(*at) < ANSWER_KEPT)
        {
            out.push(reply(*code));
            return;
        }
        if let Some(a) = self.answering.iter_mut().flatten().find(|a| a.resource == resource) {
            // A child is on it; its answer goes to this request too.
            if !a.ids.contains(&id) {
                a.ids.push(id);
            }
            return;
        }
        if resource.len() > DRBD_NAME_MAX || !valid_resource_name(resource) {
            out.push(reply(fence::PEER_FAILED));
            return;
        }
        let Some(child) = id_slot(&self.answering) else {
            out.push(Output::Event(Event::OutdateBusy { resource: resource.to_string() }));
            out.push(reply(fence::PEER_FAILED));
            return;
        };
        if let Some(slot) = self.answering.get_mut(child) {
            *slot = Some(Answering { resource: resource.to_string(), ids: vec![id] });
        }
        out.push(Output::SpawnOutdate { id: child, resource: resource.to_string() });
    }

    /// Outdate child `id` finished (or could not start) with `code`.
    pub fn answered(&mut self, now: Instant, id: usize, code: u8, out: &mut Vec<Output>) {
        let Some(a) = self.answering.get_mut(id).and_then(Option::take) else { return };
        self.answers.retain(|(r, _, _, _)| *r != a.resource);
        out.push(Output::Event(Event::OutdateAnswered { resource: a.resource.clone(), code }));
        for &rid in &a.ids {
            self.answers.push((a.resource.clone(), rid, now, code));
            out.push(Output::Send(Msg::OutdateReply { resource: a.resource.clone(), id: rid, code }));
        }
    }

    pub fn conn_gone(&mut self, conn: ConnId) {
        self.asks.retain(|a| a.conn != conn);
    }

    pub fn poll_at(&self) -> Option<Instant> {
        let asks = self.asks.iter().map(|a| a.next_send.map_or(a.deadline, |s| s.min(a.deadline)));
        let answers = self.answers.iter().map(|(_, _, at, _)| *at + ANSWER_KEPT);
        asks.chain(answers).min()
    }

    /// The resource outdate child `id` is answering.
    pub fn answering(&self, id: usize) -> Option<&str> {
        self.answering.get(id).and_then(|a| a.as_ref()).map(|a| a.resource.as_str())
    }
}

/// The first free child slot.
fn id_slot(answering: &[Option<Answering>; MAX_ANSWERING]) -> Option<usize> {
    answering.iter().position(Option::is_none)
}

/// An outdate request's payload: the resource name, then (when `id` is not 0, and there is
/// room: names of up to 58 bytes in a reply) a NUL and the id, 4 bytes big-endian. Returns
/// the bytes written.
pub fn encode_request(resource: &str, id: u32, buf: &mut [u8]) -> usize {
    let name = resource.as_bytes();
    let mut n = name.len().min(DRBD_NAME_MAX);
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), name.get(..n)) {
        dst.copy_from_slice(src);
    }
    if id != 0 {
        if let Some(dst) = buf.get_mut(n..n + 5) {
            dst[0] = 0;
            dst[1..].copy_from_slice(&id.to_be_bytes());
            n += 5;
        }
    }
    n
}

/// Reads what [`encode_request`] wrote (a payload without a NUL: a peer without ids, id 0).
pub fn decode_request(payload: &[u8]) -> (String, u32) {
    match payload.iter().position(|&b| b == 0) {
        Some(i) => {
            let id = payload.get(i + 1..i + 5).and_then(|b| b.try_into().ok()).map_or(0, u32::from_be_bytes);
            (String::from_utf8_lossy(payload.get(..i).unwrap_or(&[])).into_owned(), id)
        }
        None => (String::from_utf8_lossy(payload).into_owned(), 0),
    }
}

/// An outdate reply's payload: the code, then the request's payload as above.
pub fn encode_reply(resource: &str, id: u32, code: u8, buf: &mut [u8]) -> usize {
    let Some((first, rest)) = buf.split_first_mut() else { return 0 };
    *first = code;
    1 + encode_request(resource, id, rest)
}

/// Reads what [`encode_reply`] wrote: (code, resource, id).
pub fn decode_reply(payload: &[u8]) -> Option<(u8, String, u32)> {
    let (&code, rest) = payload.split_first()?;
    let (name, id) = decode_request(rest);
    Some((code, name, id))
}

/// Answers a peer's outdate request for DRBD resource `res` with a drbd.conf(5) fence-peer
/// exit code; runs in a forked child.
pub fn outdate_local(res: &str) -> u8 {
    crate::agent::drbd::outdate_for_peer(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: Duration = Duration::from_millis(100);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn sends(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(Msg::OutdateRequest { resource, .. }) => Some(resource.clone()),
                _ => None,
            })
            .collect()
    }

    fn replies(out: &[Output]) -> Vec<(ConnId, i32)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Reply { conn, code, .. } => Some((*conn, code.code())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn retransmits_every_keepalive_and_answers_failed_at_the_deadline() {
        let mut o = Outdates::default();
        let mut out = Vec::new();
        o.ask(t(0), 1, "r0", PeerState::Up, KA, FenceView::None, &mut out);
        assert_eq!(sends(&out), ["r0"]);
        out.clear();
        let mut n = 0;
        let mut ms = 0;
        while ms < 30_000 {
            ms += 10;
            o.tick(t(ms), PeerState::Up, KA, FenceView::None, &mut out);
            n += sends(&out).len();
            if !replies(&out).is_empty() {
                break;
            }
            out.clear();
        }
        assert_eq!(ms as u128, ASK_TIMEOUT.as_millis(), "answered at the deadline");
        assert_eq!(replies(&out), [(1, i32::from(fence::PEER_FAILED))], "alive peer: not 5");
        assert!((195..=200).contains(&n), "one resend per keepalive: {n}");
    }

    #[test]
    fn waits_out_init_and_answers_unreachable_only_for_a_dead_peer() {
        let mut o = Outdates::default();
        let mut out = Vec::new();
        o.ask(t(0), 1, "r0", PeerState::Init, KA, FenceView::None, &mut out);
        assert!(sends(&out).is_empty() && replies(&out).is_empty());
        o.tick(t(500), PeerState::Init, KA, FenceView::None, &mut out);
        assert!(sends(&out).is_empty());
        o.tick(t(900), PeerState::Up, KA, FenceView::None, &mut out);
        assert_eq!(sends(&out), ["r0"], "sent once the peer is known");
        out.clear();
        o.tick(t(1000), PeerState::Dead, KA, FenceView::None, &mut out);
        assert_eq!(replies(&out), [(1, i32::from(fence::PEER_UNREACHABLE))]);
        out.clear();
        o.ask(t(1100), 2, "r0", PeerState::Dead, KA, FenceView::None, &mut out);
        assert_eq!(replies(&out), [(2, i32::from(fence::PEER_UNREACHABLE))]);
        out.clear();
        // Init for too long: failed, not unreachable.
        o.ask(t(2000), 3, "r1", PeerState::Init, KA, FenceView::None, &mut out);
        o.tick(t(2000) + INIT_WAIT, PeerState::Init, KA, FenceView::None, &mut out);
        assert_eq!(replies(&out), [(3, i32::from(fence::PEER_FAILED))]);
    }

    #[test]
    fn with_fencing_a_dead_peer_is_answered_fenced_once_confirmed() {
        let mut o = Outdates::default();
        let mut out = Vec::new();
        o.ask(t(0), 1, "r0", PeerState::Dead, KA, FenceView::Pending, &mut out);
        assert!(replies(&out).is_empty(), "waits for the fence");
        o.tick(t(500), PeerState::Dead, KA, FenceView::Pending, &mut out);
        assert!(replies(&out).is_empty());
        o.tick(t(900), PeerState::Dead, KA, FenceView::Confirmed, &mut out);
        assert_eq!(replies(&out), [(1, i32::from(fence::PEER_FENCED))]);
        out.clear();
        o.ask(t(1000), 2, "r0", PeerState::Dead, KA, FenceView::Confirmed, &mut out);
        assert_eq!(replies(&out), [(2, i32::from(fence::PEER_FENCED))]);
        out.clear();
        // Not confirmed in time: failed (DRBD keeps I/O frozen), never 5.
        o.ask(t(2000), 3, "r0", PeerState::Dead, KA, FenceView::Pending, &mut out);
        o.tick(t(2000) + FENCE_WAIT, PeerState::Dead, KA, FenceView::Pending, &mut out);
        assert_eq!(replies(&out), [(3, i32::from(fence::PEER_FAILED))]);
    }

    #[test]
    fn concurrent_resources_are_answered_under_their_own_names() {
        let mut o = Outdates::default();
        let mut out = Vec::new();
        o.ask(t(0), 1, "r0", PeerState::Up, KA, FenceView::None, &mut out);
        o.ask(t(0), 2, "r1", PeerState::Up, KA, FenceView::None, &mut out);
        out.clear();
        o.peer_answers("r1", 0, 4, &mut out);
        assert_eq!(replies(&out), [(2, 4)]);
        out.clear();
        o.peer_answers("r0", 0, 3, &mut out);
        assert_eq!(replies(&out), [(1, 3)]);
    }

    #[test]
    fn the_answering_side_runs_one_child_per_resource_and_repeats_its_answer() {
        let mut o = Outdates::default();
        let mut out = Vec::new();
        o.peer_asks(t(0), "r0", 0, &mut out);
        o.peer_asks(t(1), "r1", 0, &mut out);
        o.peer_asks(t(2), "r0", 0, &mut out); // a copy on the other link: no second child
        let spawned: Vec<(usize, String)> = out
            .iter()
            .filter_map(|x| match x {
                Output::SpawnOutdate { id, resource } => Some((*id, resource.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(spawned, [(0, "r0".to_string()), (1, "r1".to_string())]);
        out.clear();
        o.answered(t(50), 1, 4, &mut out);
        o.answered(t(60), 0, 3, &mut out);
        let sent: Vec<(String, u8)> = out
            .iter()
            .filter_map(|x| match x {
                Output::Send(Msg::OutdateReply { resource, code, .. }) => Some((resource.clone(), *code)),
                _ => None,
            })
            .collect();
        assert_eq!(sent, [("r1".to_string(), 4), ("r0".to_string(), 3)]);
        out.clear();
        // A retransmission soon after gets the kept answer, without a child.
        o.peer_asks(t(500), "r0", 0, &mut out);
        assert_eq!(out, [Output::Send(Msg::OutdateReply { resource: "r0".into(), id: 0, code: 3 })]);
        out.clear();
        // Later, a new request runs a new child.
        o.tick(t(60) + ANSWER_KEPT, PeerState::Up, KA, FenceView::None, &mut out);
        o.peer_asks(t(60) + ANSWER_KEPT, "r0", 0, &mut out);
        assert!(out.iter().any(|x| matches!(x, Output::SpawnOutdate { .. })), "{out:?}");
    }

    #[test]
    fn bad_names_and_a_full_table_are_failures() {
        let mut o = Outdates::default();
        let mut out = Vec::new();
        let long = "r".repeat(64);
        o.ask(t(0), 1, &long, PeerState::Up, KA, FenceView::None, &mut out);
        assert_eq!(replies(&out), [(1, 2)], "a 64-byte name is refused before it is sent");
        out.clear();
        o.peer_asks(t(0), &long, 0, &mut out);
        assert_eq!(out, [Output::Send(Msg::OutdateReply { resource: long.clone(), id: 0, code: fence::PEER_FAILED })]);
        out.clear();
        for i in 0..MAX_ANSWERING {
            o.peer_asks(t(0), &format!("r{i}"), 0, &mut out);
        }
        out.clear();
        o.peer_asks(t(0), "one-more", 0, &mut out);
        assert!(out.contains(&Output::Send(Msg::OutdateReply {
            resource: "one-more".into(),
            id: 0,
            code: fence::PEER_FAILED
        })));
    }

    #[test]
    fn a_new_request_is_never_answered_with_an_older_ones_answer() {
        // The peer's side: request 7 answered 4 (outdated); the link came back, resynced and
        // dropped again: request 8 within ANSWER_KEPT must run a new outdate.
        let mut o = Outdates::default();
        let mut out = Vec::new();
        o.peer_asks(t(0), "r0", 7, &mut out);
        o.answered(t(100), 0, 4, &mut out);
        out.clear();
        o.peer_asks(t(200), "r0", 7, &mut out);
        assert_eq!(out, [Output::Send(Msg::OutdateReply { resource: "r0".into(), id: 7, code: 4 })], "a copy");
        out.clear();
        o.peer_asks(t(300), "r0", 8, &mut out);
        assert!(matches!(&out[..], [Output::SpawnOutdate { .. }]), "{out:?}");
        // A third request while that child runs gets the child's answer too.
        out.clear();
        o.peer_asks(t(400), "r0", 9, &mut out);
        assert!(out.is_empty());
        o.answered(t(900), 0, 1, &mut out);
        let ids: Vec<u32> = out
            .iter()
            .filter_map(|x| match x {
                Output::Send(Msg::OutdateReply { id, code: 1, .. }) => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, [8, 9]);
        // The asking side: an answer to another id is not ours.
        let mut a = Outdates::default();
        out.clear();
        a.ask(t(0), 1, "r0", PeerState::Up, KA, FenceView::None, &mut out);
        let id = match &out[..] {
            [Output::Send(Msg::OutdateRequest { id, .. }), ..] => *id,
            other => panic!("{other:?}"),
        };
        out.clear();
        a.peer_answers("r0", id.wrapping_add(1), 4, &mut out);
        assert!(replies(&out).is_empty(), "a stale answer is ignored");
        a.peer_answers("r0", id, 1, &mut out);
        assert_eq!(replies(&out), [(1, 1)]);
    }

    #[test]
    fn request_and_reply_payloads() {
        let mut buf = [0u8; 80];
        let n = encode_request("r0", 0x0102_0304, &mut buf);
        assert_eq!(&buf[..n], b"r0\x00\x01\x02\x03\x04");
        assert_eq!(decode_request(&buf[..n]), ("r0".to_string(), 0x0102_0304));
        // Without an id: the name alone, as an older peer sends and reads it.
        let n = encode_request("r0", 0, &mut buf);
        assert_eq!(&buf[..n], b"r0");
        assert_eq!(decode_request(b"r0"), ("r0".to_string(), 0));
        let n = encode_reply("r1", 9, 4, &mut buf);
        assert_eq!(decode_reply(&buf[..n]), Some((4, "r1".to_string(), 9)));
        assert_eq!(decode_reply(b"\x03r1"), Some((3, "r1".to_string(), 0)));
        assert_eq!(decode_reply(b""), None);
        // A truncated id reads as none.
        assert_eq!(decode_request(b"r0\x00\x01"), ("r0".to_string(), 0));
        // The longest name with an id fits the payload.
        let long = "r".repeat(DRBD_NAME_MAX);
        let mut full = [0u8; crate::wire::MAX_PAYLOAD];
        let n = encode_reply(&long, 5, 4, &mut full);
        assert_eq!(n, 1 + DRBD_NAME_MAX, "no room for the id: matched by name, as before ids");
        assert_eq!(decode_reply(&full[..n]), Some((4, long.clone(), 0)));
        let name58 = "r".repeat(58);
        let n = encode_reply(&name58, 5, 4, &mut full);
        assert_eq!(decode_reply(&full[..n]), Some((4, name58, 5)));
    }
}
