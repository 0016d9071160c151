//! The core's interface: what the loop feeds it ([`Input`]) and what it asks the loop to do
//! ([`Output`]), shared by `node.rs`, `outdate.rs` and the loop.

use crate::cluster::{self, GroupId, GroupSel, Op, OpResult, ResId};
use crate::membership::{PeerState, Timing};
use crate::time::Instant;
use crate::wire::Repr;

/// A control-socket connection, as the loop numbers them.
pub type ConnId = usize;

/// The exit code a control request's client returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCode {
    Ok,
    /// The operation failed or was refused.
    Failed,
    /// Bad request.
    Usage,
    /// A drbd.conf(5) fence-peer exit code (3..=7), for `tandem fence-peer`.
    FencePeer(u8),
}

impl ReplyCode {
    pub fn code(self) -> i32 {
        match self {
            ReplyCode::Ok => 0,
            ReplyCode::Failed => 1,
            ReplyCode::Usage => 2,
            ReplyCode::FencePeer(c) => i32::from(c),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Time passed (the loop woke at or after [`Node::poll_at`]).
    Tick,
    /// An authenticated, non-replayed packet from the peer arrived on `link`.
    Packet { link: usize, repr: &'a Repr },
    /// An operation asked for by [`Output::Run`] finished.
    OpDone { group: GroupId, resource: ResId, op: Op, result: OpResult },
    /// Operator: hand these groups to the peer.
    Standby(GroupSel),
    /// Operator: take these groups.
    Takeover(GroupSel),
    /// Clean stop: release everything, then [`Output::Exit`].
    Shutdown,
    /// `tandem fence-peer RESOURCE` on connection `conn`: ask the peer to outdate its disk.
    OutdateAsk { conn: ConnId, resource: &'a str },
    /// Outdate child `id` (for the peer's request) finished, or could not start, with this
    /// drbd.conf(5) fence-peer code.
    OutdateDone { id: usize, code: u8 },
    /// The running fence attempt ended: `ok` = the peer's power-off is confirmed.
    FenceDone { attempt: u32, ok: bool, detail: &'a str },
    /// Device check `id` ended: `ok` = the peer's fence device answered (`detail`: what).
    FenceCheckDone { id: u32, ok: bool, detail: &'a str },
    /// An echo reply from ping target (or probe) `index` (the loop matched its source and
    /// identifier), to request `seq`.
    PingReply { index: u16, seq: u16 },
    /// `tandem cleanup GROUP`: forget the groups' failures here.
    Cleanup(GroupSel),
    /// `tandem fence PEER` on connection `conn`.
    FenceNow { conn: ConnId },
    /// `tandem fenced PEER` on connection `conn`: an operator confirms the peer is off.
    Fenced { conn: ConnId },
    /// A control connection went away (closed or expired).
    ConnGone(ConnId),
    /// Configuration reload: new timers, failback and failure policies.
    Reload { timing: Timing, auto_failback: bool, failure: crate::config::FailurePolicy, config_digest: u32 },
    /// Bytes as a link delivered them, for a core that decodes its own frames (heartbeat's
    /// protocol): a UDP datagram, or what was read from a serial line in raw mode.
    Raw { link: usize, bytes: &'a [u8] },
}

/// A packet to send on every link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// The periodic (and on-change) heartbeat; [`Node::fill_heartbeat`] writes it.
    Heartbeat,
    /// Ask the peer to outdate its disk of this DRBD resource; `id` tells this request
    /// from earlier ones for the same resource (0: a peer without ids).
    OutdateRequest { resource: String, id: u32 },
    /// Our answer to the peer's outdate request `id`.
    OutdateReply { resource: String, id: u32, code: u8 },
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(Msg),
    /// Run one operation on one resource.
    Run {
        group: GroupId,
        resource: ResId,
        op: Op,
    },
    /// Answer the peer's outdate request in a child (`outdate_local(resource)`); its result
    /// comes back as `Input::OutdateDone { id }`.
    SpawnOutdate {
        id: usize,
        resource: String,
    },
    /// Answer a control-socket request and close it.
    Reply {
        conn: ConnId,
        code: ReplyCode,
        text: String,
    },
    /// Keep connection `conn` open until `until` (a reply will follow).
    Hold {
        conn: ConnId,
        until: Instant,
    },
    /// Store the peer's replay mark (its generation and the highest sequence number accepted)
    /// durably, so that a replay of its old packets is refused after this daemon restarts.
    SavePeerMark {
        generation: u64,
        seq: u64,
    },
    /// Run fence attempt `attempt` on the peer in a child; its end comes back as
    /// `Input::FenceDone`.
    Fence {
        attempt: u32,
    },
    /// Kill the running fence attempt (the peer is heard again, or an operator confirmed).
    CancelFence,
    /// Check the peer's fence device in a child (power status; nothing is powered); the
    /// end comes back as `Input::FenceCheckDone`. A `Fence` kills a running check.
    FenceCheck {
        id: u32,
    },
    /// Send an ICMP echo request to ping target (or, with the probe bit, group address)
    /// `index`.
    Ping {
        index: u16,
        seq: u16,
    },
    /// Something worth a log line and a place in `status`'s recent transitions.
    Event(Event),
    /// Everything released and announced: the daemon may exit.
    Exit,
    /// Send these bytes as they are: `udp` as one datagram on every UDP link, `serial` on every
    /// serial link (in raw mode). For heartbeat's protocol, whose frames differ per medium.
    SendRaw {
        udp: Vec<u8>,
        serial: Vec<u8>,
    },
    /// Store this boot generation durably (the heartbeat core restarted itself with a new one).
    SaveGeneration(u64),
}

/// A transition, as plain data; the loop formats it with the configuration's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Cluster(cluster::LogEvent),
    LinkUp(usize),
    LinkDown(usize),
    /// The peer is later than warntime.
    PeerLate,
    /// The peer came back with a new boot generation.
    PeerRestarted,
    /// Membership moved the peer from one state to another; `silent_ms` for a death.
    Peer {
        from: PeerState,
        to: PeerState,
        silent_ms: Option<u64>,
    },
    /// The peer's keepalive differs from ours.
    KeepaliveMismatch {
        peer_ms: u32,
    },
    /// We answered the peer's outdate request.
    OutdateAnswered {
        resource: String,
        code: u8,
    },
    /// The peer asked to outdate `resource` while every outdate child was busy: "failed".
    OutdateBusy {
        resource: String,
    },
    /// The peer's protocol level, first heard or changed (0: tandem 0.1.0).
    PeerLevel {
        level: u8,
    },
    /// A heartbeat's extension fields were malformed (ignored; reported once per episode).
    BadExtension,
    /// The peer is dead: fencing starts after `delay` (zero: at once).
    FenceScheduled {
        delay: crate::time::Duration,
    },
    FenceStarted {
        attempt: u32,
    },
    /// An attempt failed; `repeated`: with the same error as the previous one; `retry_in`:
    /// the next attempt (`None`: an operator's attempt on a peer that is not dead, not retried).
    FenceFailed {
        attempt: u32,
        detail: String,
        repeated: bool,
        retry_in: Option<crate::time::Duration>,
    },
    /// The peer is off: `took` from its death (or the operator's command).
    FenceConfirmed {
        took: crate::time::Duration,
        detail: String,
    },
    /// The peer was heard again: fencing stopped.
    FenceCancelled,
    /// The silent peer had shut down cleanly (its groups stopped): it is not fenced.
    PeerLeft,
    /// The connectivity policy: this node reaches fewer ping targets than its peer (its
    /// groups go to the peer), or no longer.
    ReachWorse {
        worse: bool,
    },
    /// The peer is silent and this node reaches no ping target: it neither fences nor takes
    /// over, and stops its groups when `stops` (`isolated_stop`).
    Isolated {
        stops: bool,
    },
    /// A check of the peer's fence device ended; `changed`: its outcome differs from the
    /// previous check's (worth a log line above debug).
    FenceCheck {
        ok: bool,
        detail: String,
        took: crate::time::Duration,
        changed: bool,
    },
    /// Nothing is fenced or taken over until an operator acts (`never_heard`: the peer was
    /// never heard since this start, with wait_for_peer; else the manual method).
    FenceOperator {
        never_heard: bool,
    },
    /// The peer's configuration digest differs from ours (`same: false`), or matches again.
    ConfigDigest {
        ours: u32,
        theirs: u32,
        same: bool,
    },
    /// What the heartbeat-protocol core reports (`hbevents.rs` formats it).
    Hb(super::hbevents::HbEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes() {
        assert_eq!(ReplyCode::Ok.code(), 0);
        assert_eq!(ReplyCode::Failed.code(), 1);
        assert_eq!(ReplyCode::Usage.code(), 2);
        assert_eq!(ReplyCode::FencePeer(4).code(), 4);
    }
}
