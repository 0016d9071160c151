//! The outdate sub-protocol behind `tandem fence-peer` (DRBD's fence-peer handler), as
//! bookkeeping for the pure core: a local client asks, we send an outdate request to the
//! peer, the peer outdates its disk in a child and answers, and the client gets the answer
//! as its exit code (drbd.conf(5) fence-peer codes).

use crate::agent::drbd::fence;
use crate::time::{Duration, Instant};
use crate::wire::MAX_PAYLOAD;

use super::io::{ConnId, Event, Msg, Output, ReplyCode};

/// How long `tandem fence-peer` waits for the peer's answer.
pub const OUTDATE_TIMEOUT: Duration = Duration::from_secs(10);
/// An outdate request arrives once per link: copies of the one just handled (same
/// resource, within this time) get the same answer without outdating again.
pub const OUTDATE_COPIES: Duration = Duration::from_secs(2);
/// Extra time the control connection stays open past [`OUTDATE_TIMEOUT`].
const HOLD_MARGIN: Duration = Duration::from_secs(1);

/// A local `tandem fence-peer` waiting for the peer's answer.
#[derive(Debug, Clone)]
struct Wait {
    conn: ConnId,
    resource: String,
    deadline: Instant,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Outdates {
    waits: Vec<Wait>,
    /// The last request of the peer's that we answered: (resource, when, answer).
    last: Option<(String, Instant, u8)>,
    /// The resource whose outdate child is running, if any.
    running: Option<String>,
}

impl Outdates {
    /// A local client asks us to have the peer outdate `resource`.
    pub fn ask(&mut self, now: Instant, conn: ConnId, resource: &str, peer_up: bool, out: &mut Vec<Output>) {
        if !peer_up {
            let code = ReplyCode::FencePeer(fence::PEER_UNREACHABLE);
            out.push(Output::Reply { conn, code, text: "peer is unreachable\n".to_string() });
            return;
        }
        if resource.len() > MAX_PAYLOAD {
            out.push(Output::Reply { conn, code: ReplyCode::Failed, text: "resource name too long\n".to_string() });
            return;
        }
        out.push(Output::Send(Msg::OutdateRequest(resource.to_string())));
        out.push(Output::Hold { conn, until: now + OUTDATE_TIMEOUT + HOLD_MARGIN });
        self.waits.push(Wait { conn, resource: resource.to_string(), deadline: now + OUTDATE_TIMEOUT });
    }

    /// The peer answered our request for `resource`.
    pub fn peer_answers(&mut self, resource: &str, code: u8, out: &mut Vec<Output>) {
        if let Some(pos) = self.waits.iter().position(|w| w.resource == resource) {
            let w = self.waits.swap_remove(pos);
            let text = format!("peer answered {code} for {resource}\n");
            out.push(Output::Reply { conn: w.conn, code: ReplyCode::FencePeer(code), text });
        }
    }

    /// The peer asks us to outdate our disk of `resource`. The DRBD requests run in a
    /// child (they can take seconds), never in the loop; copies of the request that arrive
    /// on the other links meanwhile are ignored, and copies arriving just after get the
    /// same answer.
    pub fn peer_asks(&mut self, now: Instant, resource: &str, out: &mut Vec<Output>) {
        if let Some((r, at, code)) = &self.last {
            if r == resource && now.saturating_since(*at) < OUTDATE_COPIES {
                out.push(Output::Send(Msg::OutdateReply { resource: resource.to_string(), code: *code }));
                return;
            }
        }
        if self.running.as_deref() == Some(resource) {
            return;
        }
        self.running = Some(resource.to_string());
        out.push(Output::SpawnOutdate(resource.to_string()));
    }

    /// Our outdate child for `resource` finished (or could not start: code 5).
    pub fn answered(&mut self, now: Instant, resource: &str, code: u8, out: &mut Vec<Output>) {
        if self.running.as_deref() == Some(resource) {
            self.running = None;
        }
        self.last = Some((resource.to_string(), now, code));
        out.push(Output::Event(Event::OutdateAnswered { resource: resource.to_string(), code }));
        out.push(Output::Send(Msg::OutdateReply { resource: resource.to_string(), code }));
    }

    /// Waits past their deadline are answered "unreachable".
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut i = 0;
        while i < self.waits.len() {
            if self.waits.get(i).is_some_and(|w| w.deadline <= now) {
                let w = self.waits.swap_remove(i);
                let text = format!("peer did not answer the outdate request for {}\n", w.resource);
                out.push(Output::Reply { conn: w.conn, code: ReplyCode::FencePeer(fence::PEER_UNREACHABLE), text });
                continue;
            }
            i += 1;
        }
    }

    pub fn conn_gone(&mut self, conn: ConnId) {
        self.waits.retain(|w| w.conn != conn);
    }

    pub fn poll_at(&self) -> Option<Instant> {
        self.waits.iter().map(|w| w.deadline).min()
    }

    /// The resource of the running outdate child, if any.
    pub fn running(&self) -> Option<&str> {
        self.running.as_deref()
    }
}

/// Answers a peer's outdate request for DRBD resource `res` with a drbd.conf(5) fence-peer
/// exit code; runs in a forked child (bounded by the DRBD agent's netlink deadlines).
pub fn outdate_local(res: &str) -> u8 {
    crate::agent::drbd::outdate_for_peer(res)
}
