//! The daemon's core, whichever protocol it speaks: tandem's own ([`Node`]) or heartbeat
//! 3.0.6's ([`HbCore`]). The loop in `mod.rs` talks to this one type, so it stays one loop:
//! both cores take the same [`Input`]s and give the same [`Output`]s; the few methods only one
//! of them has answer neutrally for the other.

use crate::membership::PeerState;
use crate::time::Instant;
use crate::wire::{NodeState, Repr};

use super::hbcore::HbCore;
use super::io::{Input, Output};
use super::node::Node;

// One per daemon: tandem's core stays inline, where it was before this enum.
#[allow(clippy::large_enum_variant)]
pub enum Core {
    Tandem(Node),
    Heartbeat(Box<HbCore>),
}

impl Core {
    pub fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Output>) {
        match self {
            Core::Tandem(n) => n.handle(now, input, out),
            Core::Heartbeat(h) => h.handle(now, input, out),
        }
    }

    /// tandem's core sends its one heartbeat per change here; heartbeat's sends as it goes.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Core::Tandem(n) = self {
            n.flush(now, out);
        }
    }

    pub fn poll_at(&self) -> Instant {
        match self {
            Core::Tandem(n) => n.poll_at(),
            Core::Heartbeat(h) => h.poll_at(),
        }
    }

    pub fn is_heartbeat(&self) -> bool {
        matches!(self, Core::Heartbeat(_))
    }

    pub fn tandem(&self) -> Option<&Node> {
        match self {
            Core::Tandem(n) => Some(n),
            Core::Heartbeat(_) => None,
        }
    }

    pub fn heartbeat(&self) -> Option<&HbCore> {
        match self {
            Core::Heartbeat(h) => Some(h),
            Core::Tandem(_) => None,
        }
    }

    pub fn heartbeat_mut(&mut self) -> Option<&mut HbCore> {
        match self {
            Core::Heartbeat(h) => Some(h),
            Core::Tandem(_) => None,
        }
    }

    /// Writes tandem's heartbeat packet (only tandem's core sends [`super::io::Msg`]s).
    pub fn fill_heartbeat(&self, r: &mut Repr) {
        if let Core::Tandem(n) = self {
            n.fill_heartbeat(r);
        }
    }

    pub fn node_state(&self) -> NodeState {
        match self {
            Core::Tandem(n) => n.node_state(),
            Core::Heartbeat(_) => NodeState::Active,
        }
    }

    pub fn peer_state(&self) -> PeerState {
        match self {
            Core::Tandem(n) => n.membership().peer_state(),
            Core::Heartbeat(h) => match h.engine().peer_status() {
                crate::hb::proto::NodeStatus::Up | crate::hb::proto::NodeStatus::Active => PeerState::Up,
                crate::hb::proto::NodeStatus::Dead => PeerState::Dead,
                _ => PeerState::Init,
            },
        }
    }

    /// The peer's replay mark (tandem's protocol only).
    pub fn peer_mark(&self) -> Option<(u64, u64)> {
        self.tandem().and_then(Node::peer_mark)
    }

    /// Ping targets and probes (tandem's protocol only).
    pub fn partition(&self) -> Option<&super::partition::Partition> {
        self.tandem().map(Node::partition)
    }

    /// Whether the hardware watchdog may be petted (heartbeat's protocol has no partition
    /// decisions: while the loop runs).
    pub fn may_pet(&self, now: Instant) -> bool {
        self.tandem().is_none_or(|n| n.may_pet(now))
    }

    /// The peer's protocol level (0 until heard, and on heartbeat's protocol).
    pub fn peer_level(&self) -> u8 {
        self.tandem().and_then(Node::peer_ext).map_or(0, |e| e.level)
    }

    pub fn outdate_answering(&self, id: usize) -> Option<&str> {
        self.tandem().and_then(|n| n.outdate_answering(id))
    }
}
