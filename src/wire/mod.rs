//! Wire format v1: the authenticated packet every link carries.
//!
//! `packet.rs`: `Packet<T: AsRef<[u8]>>` zero-copy view with `new_checked` + `Repr` parse/emit.
//! `auth.rs`: HMAC-SHA256 over the whole packet, and the replay window.
//! `ext.rs`: the heartbeat's extension fields (TLVs), how the format grows compatibly.
//!
//! The byte layout is documented in `docs/wire.md` and pinned by byte-fixture tests.

pub mod auth;
pub mod ext;
pub mod packet;

use core::fmt;

/// Most groups one packet can carry (and so most groups a cluster may have).
pub const MAX_GROUPS: usize = 32;
/// Most payload bytes (e.g. a DRBD resource name for an outdate request).
pub const MAX_PAYLOAD: usize = 64;
/// Length of the HMAC-SHA256 trailer.
pub const MAC_LEN: usize = 32;

/// What a node as a whole is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeState {
    /// Just started: probing resources, not yet acting.
    Init = 1,
    /// Running normally.
    Active = 2,
    /// Shutting down cleanly: releasing its groups; the peer may take them at once.
    Leaving = 3,
}

impl NodeState {
    pub fn from_u8(v: u8) -> Option<NodeState> {
        match v {
            1 => Some(NodeState::Init),
            2 => Some(NodeState::Active),
            3 => Some(NodeState::Leaving),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Init => "init",
            NodeState::Active => "active",
            NodeState::Leaving => "leaving",
        }
    }
}

/// A group's state on the node that sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum GroupState {
    Stopped = 0,
    Starting = 1,
    Started = 2,
    Stopping = 3,
    /// Start failed here and it was stopped cleanly; offered to the peer.
    Failed = 4,
    /// Stop failed: resources may still be held here. Never handed over.
    FailedToStop = 5,
}

impl GroupState {
    pub fn from_u8(v: u8) -> Option<GroupState> {
        match v {
            0 => Some(GroupState::Stopped),
            1 => Some(GroupState::Starting),
            2 => Some(GroupState::Started),
            3 => Some(GroupState::Stopping),
            4 => Some(GroupState::Failed),
            5 => Some(GroupState::FailedToStop),
            _ => None,
        }
    }
    /// True when some of the group's resources may be held by the sender.
    pub fn may_hold(self) -> bool {
        matches!(self, GroupState::Starting | GroupState::Started | GroupState::Stopping | GroupState::FailedToStop)
    }
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Stopped => "stopped",
            GroupState::Starting => "starting",
            GroupState::Started => "started",
            GroupState::Stopping => "stopping",
            GroupState::Failed => "failed",
            GroupState::FailedToStop => "failed-to-stop",
        }
    }
}

/// Per-group flag bits in [`GroupWire::flags`].
pub mod gflag {
    /// The sender wants to hold this group (with `claim` = its claim token).
    pub const CLAIM: u8 = 0x01;
    /// The sender holds it by an operator's `takeover`; auto-failback must not pull it away.
    pub const PINNED: u8 = 0x02;
    /// The sender does not want it and asks the peer to take it (standby, failure, leaving).
    pub const OFFER: u8 = 0x04;
}

/// One group's entry in a packet: the sender's view of that group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupWire {
    /// Index into `Config::groups`.
    pub index: u8,
    pub state: GroupState,
    pub flags: u8,
    /// The sender's current claim token for this group (0 = not claiming).
    pub claim: u32,
    /// The peer's claim token that the sender grants (0 = no grant).
    pub grant: u32,
}

impl GroupWire {
    pub const EMPTY: GroupWire = GroupWire { index: 0, state: GroupState::Stopped, flags: 0, claim: 0, grant: 0 };
}

/// What a packet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgKind {
    /// The periodic (and on-change) heartbeat carrying full state.
    Heartbeat = 1,
    /// "Outdate your DRBD disk for resource <payload>" (DRBD fence-peer).
    OutdateRequest = 2,
    /// The answer; `payload[0]` = drbd.conf fence-peer exit code, then the resource name.
    OutdateReply = 3,
}

impl MsgKind {
    pub fn from_u8(v: u8) -> Option<MsgKind> {
        match v {
            1 => Some(MsgKind::Heartbeat),
            2 => Some(MsgKind::OutdateRequest),
            3 => Some(MsgKind::OutdateReply),
            _ => None,
        }
    }
}

/// The meaning of a packet. Fixed-size: building and parsing one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// First 4 bytes of SHA-256(cluster name), big-endian.
    pub cluster_id: u32,
    /// Sender's node id (index in the shared node list).
    pub sender: u8,
    /// Sender's boot generation (persisted, +1 at every daemon start).
    pub generation: u64,
    /// Per-generation sequence number, strictly increasing per sender.
    pub seq: u64,
    pub kind: MsgKind,
    pub node_state: NodeState,
    /// The sender's configured keepalive in ms (lets the receiver spot mismatched timing).
    pub keepalive_ms: u32,
    pub n_groups: u8,
    pub groups: [GroupWire; MAX_GROUPS],
    pub payload_len: u8,
    pub payload: [u8; MAX_PAYLOAD],
}

impl Repr {
    pub fn groups(&self) -> &[GroupWire] {
        let n = usize::from(self.n_groups).min(MAX_GROUPS);
        &self.groups[..n]
    }
    pub fn payload(&self) -> &[u8] {
        let n = usize::from(self.payload_len).min(MAX_PAYLOAD);
        &self.payload[..n]
    }
}

/// Why a packet was rejected. Counted per link; never propagated past the receive path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its header or than its declared contents.
    Truncated,
    BadMagic,
    BadVersion(u8),
    /// A field holds a value no version-1 sender writes.
    BadField(&'static str),
    /// HMAC mismatch (wrong key, corruption).
    BadMac,
    /// Another cluster's id.
    WrongCluster,
    /// An authenticated packet of a kind this release does not know (a newer peer's).
    UnknownKind(u8),
    /// An authenticated packet with this node's own id but another boot generation (the
    /// one given): a second daemon runs under this node's name.
    OwnIdElsewhere(u64),
    /// A sender id that is not the peer (includes our own id looped back).
    UnknownSender(u8),
    /// Older generation than the newest seen from that sender.
    OldGeneration,
    /// Sequence number already seen or too old for the window.
    Replay,
    /// Buffer too small to emit into.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated packet"),
            WireError::BadMagic => write!(f, "bad magic"),
            WireError::BadVersion(v) => write!(f, "unsupported version {v}"),
            WireError::BadField(n) => write!(f, "bad field {n}"),
            WireError::BadMac => write!(f, "authentication failed"),
            WireError::WrongCluster => write!(f, "packet from another cluster"),
            WireError::UnknownKind(k) => write!(f, "message kind {k} is unknown to this release"),
            WireError::OwnIdElsewhere(g) => write!(f, "a packet with this node's own id from generation {g}"),
            WireError::UnknownSender(s) => write!(f, "unknown sender id {s}"),
            WireError::OldGeneration => write!(f, "old boot generation"),
            WireError::Replay => write!(f, "replayed or duplicate sequence number"),
            WireError::BufferTooSmall => write!(f, "buffer too small"),
        }
    }
}

impl std::error::Error for WireError {}
