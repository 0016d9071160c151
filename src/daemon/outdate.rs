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
    /// No fencing configured for the peer.
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
    /// `None` while the peer is in `Init`: nothing sent yet.
    next_send: Option<Instant>,
    deadline: Instant,
}

/// One of the peer's requests that a child is answering. `id` is its place in the table.
#[derive(Debug, Clone)]
struct Answering {
    resource: String,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Outdates {
    asks: Vec<Ask>,
    /// Indexed by the child's id (`Output::SpawnOutdate { id }`).
    answering: [Option<Answering>; MAX_ANSWERING],
    /// Answers we gave: (resource, when, code).
    answers: Vec<(String, Instant, u8)>,
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
        let mut a = Ask { conn, resource: resource.to_string(), next_send: None, deadline: now + wait };
        if peer == PeerState::Up {
            a.next_send = Some(now + keepalive);
            a.deadline = now + ASK_TIMEOUT;
            out.push(Output::Send(Msg::OutdateRequest(a.resource.clone())));
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
                    out.push(Output::Send(Msg::OutdateRequest(a.resource.clone())));
                }
                (Some(at), PeerState::Up) if at <= now && now < a.deadline => {
                    a.next_send = Some(now + keepalive);
                    out.push(Output::Send(Msg::OutdateRequest(a.resource.clone())));
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
        self.answers.retain(|(_, at, _)| now.saturating_since(*at) < ANSWER_KEPT);
    }

    /// The peer answered our request for `resource`: every client asking for it gets it.
    pub fn peer_answers(&mut self, resource: &str, code: u8, out: &mut Vec<Output>) {
        let mut i = 0;
        while i < self.asks.len() {
            if self.asks.get(i).is_some_and(|a| a.resource == resource && a.next_send.is_some()) {
                let a = self.asks.swap_remove(i);
                let text = format!("peer answered {code} for {resource}\n");
                out.push(Output::Reply { conn: a.conn, code: ReplyCode::FencePeer(code), text });
                continue;
            }
            i += 1;
        }
    }

    /// The peer asks us to outdate our disk of `resource`.
    pub fn peer_asks(&mut self, now: Instant, resource: &str, out: &mut Vec<Output>) {
        let reply = |code| Output::Send(Msg::OutdateReply { resource: resource.to_string(), code });
        if let Some((_, _, code)) =
            self.answers.iter().find(|(r, at, _)| r == resource && now.saturating_since(*at) < ANSWER_KEPT)
        {
            out.push(reply(*code));
            return;
        }
        if self.answering.iter().flatten().any(|a| a.resource == resource) {
            return; // a child is on it; its answer will go out
        }
        if resource.len() > DRBD_NAME_MAX || !valid_resource_name(resource) {
            out.push(reply(fence::PEER_FAILED));
            return;
        }
        let Some(id) = self.answering.iter().position(Option::is_none) else {
            out.push(Output::Event(Event::OutdateBusy { resource: resource.to_string() }));
            out.push(reply(fence::PEER_FAILED));
            return;
        };
        if let Some(slot) = self.answering.get_mut(id) {
            *slot = Some(Answering { resource: resource.to_string() });
        }
        out.push(Output::SpawnOutdate { id, resource: resource.to_string() });
    }

    /// Outdate child `id` finished (or could not start) with `code`.
    pub fn answered(&mut self, now: Instant, id: usize, code: u8, out: &mut Vec<Output>) {
        let Some(a) = self.answering.get_mut(id).and_then(Option::take) else { return };
        self.answers.retain(|(r, _, _)| *r != a.resource);
        self.answers.push((a.resource.clone(), now, code));
        out.push(Output::Event(Event::OutdateAnswered { resource: a.resource.clone(), code }));
        out.push(Output::Send(Msg::OutdateReply { resource: a.resource, code }));
    }

    pub fn conn_gone(&mut self, conn: ConnId) {
        self.asks.retain(|a| a.conn != conn);
    }

    pub fn poll_at(&self) -> Option<Instant> {
        let asks = self.asks.iter().map(|a| a.next_send.map_or(a.deadline, |s| s.min(a.deadline)));
        let answers = self.answers.iter().map(|(_, at, _)| *at + ANSWER_KEPT);
        asks.chain(answers).min()
    }

    /// The resource outdate child `id` is answering.
    pub fn answering(&self, id: usize) -> Option<&str> {
        self.answering.get(id).and_then(|a| a.as_ref()).map(|a| a.resource.as_str())
    }
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
                Output::Send(Msg::OutdateRequest(r)) => Some(r.clone()),
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
        o.peer_answers("r1", 4, &mut out);
        assert_eq!(replies(&out), [(2, 4)]);
        out.clear();
        o.peer_answers("r0", 3, &mut out);
        assert_eq!(replies(&out), [(1, 3)]);
    }

    #[test]
    fn the_answering_side_runs_one_child_per_resource_and_repeats_its_answer() {
        let mut o = Outdates::default();
        let mut out = Vec::new();
        o.peer_asks(t(0), "r0", &mut out);
        o.peer_asks(t(1), "r1", &mut out);
        o.peer_asks(t(2), "r0", &mut out); // a copy on the other link: no second child
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
                Output::Send(Msg::OutdateReply { resource, code }) => Some((resource.clone(), *code)),
                _ => None,
            })
            .collect();
        assert_eq!(sent, [("r1".to_string(), 4), ("r0".to_string(), 3)]);
        out.clear();
        // A retransmission soon after gets the kept answer, without a child.
        o.peer_asks(t(500), "r0", &mut out);
        assert_eq!(out, [Output::Send(Msg::OutdateReply { resource: "r0".into(), code: 3 })]);
        out.clear();
        // Later, a new request runs a new child.
        o.tick(t(60) + ANSWER_KEPT, PeerState::Up, KA, FenceView::None, &mut out);
        o.peer_asks(t(60) + ANSWER_KEPT, "r0", &mut out);
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
        o.peer_asks(t(0), &long, &mut out);
        assert_eq!(out, [Output::Send(Msg::OutdateReply { resource: long.clone(), code: fence::PEER_FAILED })]);
        out.clear();
        for i in 0..MAX_ANSWERING {
            o.peer_asks(t(0), &format!("r{i}"), &mut out);
        }
        out.clear();
        o.peer_asks(t(0), "one-more", &mut out);
        assert!(
            out.contains(&Output::Send(Msg::OutdateReply { resource: "one-more".into(), code: fence::PEER_FAILED }))
        );
    }
}
