//! A pure protocol engine for one local node talking to one heartbeat 3.0.6 peer in
//! haresources mode (`crm off`). No clock reads, no fds: the daemon feeds it
//! [`Event`]s with the time, carries out the [`Action`]s it returns, and wakes it at
//! [`Engine::poll_at`].
//!
//! It does what heartbeat's core and resource manager do, message for message
//! (`docs/heartbeat-wire.md` has the sequences):
//! - status heartbeats every keepalive (`st` init → up → active, `dt`, `protocol`), and the
//!   `reqnodes`/`repnodes` exchange heartbeat waits for before it calls a node active;
//! - sequence numbers with a generation, duplicate/replay/restart detection, acknowledgements
//!   (`NS_ackmsg`), retransmission requests for gaps (`NS_rexmit`) and byte-identical
//!   retransmissions from a bounded history when the peer asks (or `NS_nak_rexmit`);
//! - peer and link liveness (the peer's advertised `dt`, `initdead` until the first contact);
//! - the resource hand-over (`starting`, `resource`, `ask_resources`, `hb_takeover`,
//!   `ip-request`/`ip-request-resp`, `shutdone`, `stonith`) with heartbeat's `auto_failback`
//!   semantics (on, off, legacy), so both nodes agree on who holds which haresources group.
//!
//! Resource work is asked of the daemon with [`Action::Acquire`] / [`Action::Release`]
//! (a set of haresources groups, by index into [`Config::groups`]); the daemon answers each
//! with [`Event::OpDone`]. One operation is outstanding at a time.

mod rsc;
mod seq;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use super::auth::{self, AuthKeys};
use super::msg::{f, t, Message, FT_BINARY, FT_STRING};
use super::{classic, decode_verified, netstring, HbError};
use crate::time::{Duration, Instant};

pub use seq::{MAX_MISSING, RESET_GAP};

/// Resources as heartbeat names them (`rsc_hold`), relative to the node that speaks:
/// `local` = the groups whose haresources line names that node, `foreign` = the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RscSet(u8);

impl RscSet {
    pub const NONE: RscSet = RscSet(0);
    pub const LOCAL: RscSet = RscSet(1);
    pub const FOREIGN: RscSet = RscSet(2);
    pub const ALL: RscSet = RscSet(3);

    /// `none`, `local`, `foreign`, `all`.
    pub fn name(self) -> &'static str {
        match self.0 & 3 {
            0 => "none",
            1 => "local",
            2 => "foreign",
            _ => "all",
        }
    }
    pub fn parse(s: &str) -> Option<RscSet> {
        match s {
            "none" => Some(RscSet::NONE),
            "local" => Some(RscSet::LOCAL),
            "foreign" => Some(RscSet::FOREIGN),
            "all" => Some(RscSet::ALL),
            _ => None,
        }
    }
    /// The same resources as the other node names them.
    pub fn mirror(self) -> RscSet {
        RscSet(((self.0 & 1) << 1) | ((self.0 >> 1) & 1))
    }
    pub fn contains(self, o: RscSet) -> bool {
        self.0 & o.0 == o.0
    }
    pub fn intersects(self, o: RscSet) -> bool {
        self.0 & o.0 != 0
    }
    pub fn union(self, o: RscSet) -> RscSet {
        RscSet(self.0 | o.0)
    }
    pub fn minus(self, o: RscSet) -> RscSet {
        RscSet(self.0 & !o.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A set of haresources groups: bit `i` = `Config::groups[i]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GroupMask(pub u64);

impl GroupMask {
    pub const EMPTY: GroupMask = GroupMask(0);
    pub fn contains(self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |&i| self.0 & (1u64 << i) != 0)
    }
    pub fn union(self, o: GroupMask) -> GroupMask {
        GroupMask(self.0 | o.0)
    }
    pub fn minus(self, o: GroupMask) -> GroupMask {
        GroupMask(self.0 & !o.0)
    }
    pub fn and(self, o: GroupMask) -> GroupMask {
        GroupMask(self.0 & o.0)
    }
}

/// One haresources line, as both nodes have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// heartbeat's name for the group: the line's first resource, as written
    /// (`IPaddr::192.0.2.50/24/veth0`); it appears in `ip-request`/`ip-request-resp`.
    pub key: String,
    /// The line names this (local) node as the preferred one.
    pub local: bool,
}

/// ha.cf's `auto_failback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failback {
    /// `on`: a node that comes back gets its groups back.
    On,
    /// `off`: groups stay where they are until moved.
    Off,
    /// `legacy` (no `starting`/`resource` messages; groups are asked for one by one with
    /// `ip-request`, and a holder always gives them up; no hb_standby).
    Legacy,
}

/// What the engine needs to know. Both nodes must agree on the timings, `failback`,
/// `groups` and authkeys, as two heartbeat nodes must.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our node name (`uname -n`, lower case, as in ha.cf's `node` lines).
    pub node: String,
    /// The heartbeat peer's node name.
    pub peer: String,
    /// The `node` names in ha.cf order (what `repnodes` lists); empty = `[node, peer]`.
    pub nodes: Vec<String>,
    /// Our uuid (`srcuuid`); keep it across restarts, heartbeat remembers it.
    pub uuid: [u8; 16],
    /// Our generation (`hg`): must grow at every start, and start above any generation this
    /// node used before (heartbeat starts at `time(NULL)`), or the peer drops us as a replay.
    pub generation: u64,
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    pub failback: Failback,
    /// The haresources lines, in file order (at most 64).
    pub groups: Vec<Group>,
    /// Put an `auth` field in every message (heartbeat's default `msgfmt classic`); false =
    /// `msgfmt netstring`. Serial frames always carry one.
    pub auth_field: bool,
    /// Also produce the classic form of every message, for serial links.
    pub serial: bool,
    /// The daemon can fence the peer ([`Action::Fence`]); without, heartbeat's rule for a dead
    /// peer that may hold resources is to take over anyway ("No STONITH device configured").
    pub stonith: bool,
    /// ha.cf's `hopfudge` (default 1): `ttl` = hopfudge + number of nodes.
    pub hopfudge: u32,
    /// Sent messages kept for retransmission (heartbeat keeps 500).
    pub history: usize,
    /// Seeds the acknowledgement trigger and the retransmission-request jitter.
    pub seed: u64,
}

impl Config {
    /// heartbeat's defaults for the rest.
    pub fn new(node: &str, peer: &str, uuid: [u8; 16], generation: u64) -> Config {
        Config {
            node: node.to_string(),
            peer: peer.to_string(),
            nodes: Vec::new(),
            uuid,
            generation,
            keepalive: Duration::from_secs(1),
            deadtime: Duration::from_secs(30),
            warntime: Duration::from_secs(15),
            initdead: Duration::from_secs(30),
            failback: Failback::Legacy,
            groups: Vec::new(),
            auth_field: true,
            serial: false,
            stonith: false,
            hopfudge: 1,
            history: 100,
            seed: generation ^ 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// Which operation an [`Event::OpDone`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(pub u32);

/// Why the engine asks for resource work (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Start-up: our own groups (heartbeat's `req_our_resources`).
    OwnGroups,
    /// The peer died or shut down: its groups (heartbeat's `mach_down`).
    PeerDown,
    /// A standby hand-over (hb_standby / hb_takeover / auto failback), either direction.
    Standby,
    /// Clean shutdown: every group.
    Shutdown,
    /// legacy: the peer asked for one of its groups, or granted us one of ours.
    IpRequest,
    /// The peer came back after a partition: heartbeat gives everything up and restarts.
    Partition,
}

/// A node's status as heartbeat reports it (`cl_status nodestatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Never heard from (peer), or just started (us).
    Init,
    Up,
    Active,
    Dead,
    /// A status string heartbeat does not use between nodes.
    Other,
}

impl NodeStatus {
    pub fn name(self) -> &'static str {
        match self {
            NodeStatus::Init => "init",
            NodeStatus::Up => "up",
            NodeStatus::Active => "active",
            NodeStatus::Dead => "dead",
            NodeStatus::Other => "other",
        }
    }
    fn parse(s: &str) -> NodeStatus {
        match s {
            "init" => NodeStatus::Init,
            "up" => NodeStatus::Up,
            "active" => NodeStatus::Active,
            "dead" => NodeStatus::Dead,
            _ => NodeStatus::Other,
        }
    }
}

/// What happened, fed to [`Engine::handle`]. Every event also runs the timers due at `now`.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Time passed (the loop woke at [`Engine::poll_at`]).
    Tick,
    /// A UDP datagram, or a serial frame from [`classic::Deframer`], arrived on link `link`
    /// (the daemon's index; links are told apart for up/down reporting only).
    Received { link: usize, frame: &'a [u8] },
    /// The daemon finished an [`Action::Acquire`] or [`Action::Release`]. `ok: false` (a group
    /// failed to start or stop) does not change the protocol: heartbeat reports a hand-over
    /// done either way; what to do about the failure is the daemon's policy.
    OpDone { op: OpId, ok: bool },
    /// `hb_standby`: give these of our resources to the peer (`failback` = [`RscSet::FOREIGN`]).
    Standby(RscSet),
    /// `hb_takeover`: ask the peer to give us these resources (named from our side).
    Takeover(RscSet),
    /// Clean shutdown: release everything, tell the peer, then [`Action::ShutdownDone`].
    Shutdown,
    /// The daemon finished an [`Action::Fence`].
    Fenced { ok: bool },
}

/// One message, encoded for every medium; send it on every link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// `t` of the message (for logs).
    pub msg_type: String,
    /// `seq`, if the message has one.
    pub seq: Option<u64>,
    /// The netstring frame (UDP links).
    pub udp: Vec<u8>,
    /// The classic frame (serial links); empty unless [`Config::serial`].
    pub serial: Vec<u8>,
    /// A retransmission of an earlier message (the bytes are identical to the first time).
    pub retransmission: bool,
}

/// Things worth a log line (heartbeat logs them too). Anything the peer or the network can
/// trigger repeatedly should be rate-limited by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A frame failed to decode or authenticate.
    BadFrame { link: usize, error: HbError },
    /// A well-formed frame from a node that is neither us nor the peer.
    UnknownNode(String),
    /// `n` sequence numbers skipped between `last` and `got`.
    LostPackets { n: u64, last: u64, got: u64 },
    /// Every gap is filled again.
    NoPacketsMissing,
    /// The peer says a message we asked for is gone.
    IrretrievablyLost(u64),
    /// A message with an older generation than the peer's current one.
    Replay { generation: u64, current: u64 },
    /// A status message arrived later than warntime (or deadtime) after the previous one.
    LateHeartbeat(Duration),
    /// The peer is back with the same generation after we declared it dead: heartbeat gives
    /// up its resources and restarts; so do we ([`Action::Restart`]).
    ReturnedAfterPartition,
    /// The peer asked for a message we no longer have (we answered `NS_nak_rexmit`).
    CannotRetransmit { seq: u64, reason: &'static str },
    /// The peer's status has no `protocol` field: an old heartbeat without flow control.
    NoFlowControl,
    /// The peer's `repnodes` does not list both nodes.
    NodeListMismatch(String),
    /// A standby request was ignored (heartbeat logs why).
    StandbyIgnored(&'static str),
    /// "`node` wants to go standby [`set`]"
    StandbyRequested { node: String, set: RscSet },
    /// No answer to our standby request in 10 s: cancelled.
    StandbyCancelled,
    /// Shutdown waits for running resource work (or for the first contact).
    ShutdownDelayed,
    /// The peer may hold resources and we cannot fence it: taking over anyway.
    NoStonith,
    /// Fencing failed; retrying in 5 s.
    FenceFailed,
    /// A resource message heartbeat would complain about.
    Unexpected(&'static str),
    /// heartbeat's audit: both nodes claim the same groups, or nobody holds some.
    Audit(&'static str),
}

/// What the daemon must do after [`Engine::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send on every link.
    Send(Outbound),
    /// Start these groups (those already running stay), then answer [`Event::OpDone`].
    Acquire {
        op: OpId,
        groups: GroupMask,
        why: Why,
    },
    /// Stop these groups, then answer [`Event::OpDone`].
    Release {
        op: OpId,
        groups: GroupMask,
        why: Why,
    },
    /// Fence (STONITH) the peer, then answer [`Event::Fenced`].
    Fence,
    /// The peer's status changed.
    PeerStatus {
        old: NodeStatus,
        new: NodeStatus,
    },
    /// A link to the peer came up or went down.
    Link {
        link: usize,
        up: bool,
    },
    /// The peer restarted (a higher generation).
    PeerRestarted {
        generation: u64,
    },
    /// The peer's claim changed (its `resource` messages), in group terms.
    PeerHolds(GroupMask),
    /// Our status changed (init → up → active).
    LocalStatus(NodeStatus),
    /// Our `shutdone` is sent and every group released; exit when convenient (heartbeat keeps
    /// sending status for about two more seconds, so the peer sees the end cleanly).
    ShutdownDone,
    /// Everything was given up after a healed partition: start again with a higher
    /// generation (heartbeat restarts itself here).
    Restart,
    Notice(Notice),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub bad: u64,
    pub duplicates: u64,
    pub dropped: u64,
    pub lost: u64,
    pub rexmit_requests_sent: u64,
    pub retransmitted: u64,
    pub naks_sent: u64,
    pub sent: u64,
}

/// heartbeat's resource state (`resourcestate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RscState {
    Init,
    Starting,
    BothStarting,
    /// Got the peer's `resource` message; our own groups follow when it is stable or after 10 s.
    RscRcvd,
    Stable,
    Shutdown,
}

/// heartbeat's standby protocol state (`going_standby`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standby {
    Not,
    Me,
    Other,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comm {
    /// Waiting to hear from the peer (or for initdead).
    Waiting,
    /// Heard: asking for the node list (`reqnodes`) every second until `repnodes`.
    LinksUp,
    /// Active.
    Up,
}

#[derive(Debug, Clone)]
struct Peer {
    status: NodeStatus,
    uuid: Option<[u8; 16]>,
    track: seq::SeqTrack,
    /// When its last status message arrived (heartbeat's `local_lastupdate`).
    last_status: Instant,
    /// Its last status message's `ts` and `seq`.
    rmt_lastupdate: u64,
    status_seqno: u64,
    /// Its `dt`: how long it may be silent.
    deadtime: Duration,
    any_packets: bool,
    /// legacy: may hold resources (heartbeat's `has_resources`).
    has_resources: bool,
    /// Our messages it acknowledged (its `ackseq` to us).
    acked: u64,
}

#[derive(Debug, Clone, Copy)]
struct LinkTrack {
    last: Option<Instant>,
    up: bool,
}

/// A queued or running resource operation (see rsc.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
enum OpKind {
    OwnGroups,
    MachDown,
    StandbyRelease(RscSet),
    StandbyAcquire(RscSet),
    GiveUp,
    /// legacy: the peer asked for group `g`; answer `ip-request-resp` when released.
    IpRequest(usize),
    /// legacy: take group `g` (the peer granted it).
    TakeGroup(usize),
    /// rc.d/hb_takeover: send `ask_resources info=me` for this set, when nothing else runs.
    AskStandby(RscSet),
}

#[derive(Debug, Clone)]
struct Running {
    id: OpId,
    kind: OpKind,
    groups: GroupMask,
    acquire: bool,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    keys: AuthKeys,
    start: Instant,
    wall0: u64,
    loadavg: String,
    local_mask: GroupMask,
    foreign_mask: GroupMask,
    // Outbound.
    next_seq: u64,
    history: seq::History,
    status: NodeStatus,
    next_status: Instant,
    dt_boost_until: Option<Instant>,
    started: bool,
    // Peer and links.
    peer: Peer,
    links: Vec<LinkTrack>,
    comm: Comm,
    next_reqnodes: Option<Instant>,
    flow_control: bool,
    ack_trigger: u64,
    rng: u64,
    // Resources (rsc.rs).
    rsc_enabled: bool,
    rstate: RscState,
    i_hold: RscSet,
    other_holds: RscSet,
    other_is_stable: bool,
    going_standby: Standby,
    standby_until: Option<Instant>,
    standby_rsctype: RscSet,
    takeover_in_progress: bool,
    needs_failback: bool,
    needs_shutdown: bool,
    shutdown_in_progress: bool,
    giveup_started: bool,
    restart_after_giveup: bool,
    startup_complete: bool,
    local_takeover_at: Option<Instant>,
    failback_retry_at: Option<Instant>,
    fence_retry_at: Option<Instant>,
    fencing: bool,
    restart_at: Option<Instant>,
    held: GroupMask,
    reported_peer_holds: GroupMask,
    audit_last: Option<&'static str>,
    ops: VecDeque<OpKind>,
    running: Option<Running>,
    next_op: u32,
    loop_depth: u8,
    finished: bool,
    stats: Stats,
}

/// heartbeat's standby timeouts: 10 s for the first answer, an hour for the resource work.
const STANDBY_INIT_TO: Duration = Duration::from_secs(10);
const STANDBY_RSC_TO: Duration = Duration::from_secs(3600);
/// RQSTDELAY: after the peer's first `resource` message, take our own groups at the latest
/// after this long, stable peer or not.
const LOCAL_TAKEOVER_DELAY: Duration = Duration::from_secs(10);
/// The extra deadtime advertised during the first 5 s.
const DT_BOOST: Duration = Duration::from_millis(2000);
const DT_BOOST_FOR: Duration = Duration::from_secs(5);
/// Retransmission requests: first after 50‥250 ms (random), then every 250 ms.
const REXMIT_MIN_MS: u64 = 50;
const REXMIT_MS: u64 = 250;
/// A message is resent at most once per 240 ms, and at most 50 per request.
const REXMIT_ACCEPT: Duration = Duration::from_millis(240);
const REXMIT_BATCH: usize = 50;
const MAX_LINKS: usize = 16;

impl Engine {
    /// A new engine at `now`; `wall_secs` = `time(NULL)` now (for the `ts` fields). The first
    /// [`Engine::handle`] call (a `Tick` at [`Engine::poll_at`] = `now`) sends the start-up
    /// status messages.
    pub fn new(cfg: Config, keys: AuthKeys, now: Instant, wall_secs: u64) -> Result<Engine, HbError> {
        if cfg.groups.len() > 64 {
            return Err(HbError::Unrepresentable("more than 64 haresources groups"));
        }
        if cfg.node.is_empty() || cfg.peer.is_empty() || cfg.node == cfg.peer {
            return Err(HbError::Unrepresentable("node names"));
        }
        let mut local_mask = GroupMask::EMPTY;
        let mut foreign_mask = GroupMask::EMPTY;
        for (i, g) in cfg.groups.iter().enumerate() {
            if g.local {
                local_mask.0 |= 1 << i;
            } else {
                foreign_mask.0 |= 1 << i;
            }
        }
        let mut rng = cfg.seed | 1;
        let ack_trigger = xorshift(&mut rng) % seq::ACK_DIV;
        let peer = Peer {
            status: NodeStatus::Init,
            uuid: None,
            track: seq::SeqTrack::default(),
            last_status: now,
            rmt_lastupdate: 0,
            status_seqno: 0,
            deadtime: cfg.deadtime,
            any_packets: false,
            has_resources: true,
            acked: 0,
        };
        Ok(Engine {
            history: seq::History::new(cfg.history),
            keys,
            start: now,
            wall0: wall_secs,
            loadavg: "n/a".to_string(),
            local_mask,
            foreign_mask,
            next_seq: 1,
            status: NodeStatus::Init,
            next_status: now,
            dt_boost_until: None,
            started: false,
            peer,
            links: Vec::new(),
            comm: Comm::Waiting,
            next_reqnodes: None,
            flow_control: true,
            ack_trigger,
            rng,
            rsc_enabled: false,
            rstate: RscState::Init,
            i_hold: RscSet::NONE,
            other_holds: RscSet::NONE,
            other_is_stable: false,
            going_standby: Standby::Not,
            standby_until: None,
            standby_rsctype: RscSet::ALL,
            takeover_in_progress: false,
            needs_failback: false,
            needs_shutdown: false,
            shutdown_in_progress: false,
            giveup_started: false,
            restart_after_giveup: false,
            startup_complete: false,
            local_takeover_at: None,
            failback_retry_at: None,
            fence_retry_at: None,
            fencing: false,
            restart_at: None,
            held: GroupMask::EMPTY,
            reported_peer_holds: GroupMask::EMPTY,
            audit_last: None,
            ops: VecDeque::new(),
            running: None,
            next_op: 1,
            loop_depth: 0,
            finished: false,
            stats: Stats::default(),
            cfg,
        })
    }

    /// Sets the `ld` field of the messages we send (the /proc/loadavg line, without the
    /// newline); heartbeat sends `n/a` when it cannot read it.
    pub fn set_loadavg(&mut self, ld: &str) {
        let ld = ld.trim_end_matches('\n');
        if !ld.is_empty() && !ld.contains('\0') {
            self.loadavg.clear();
            self.loadavg.push_str(ld);
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    pub fn local_status(&self) -> NodeStatus {
        self.status
    }
    pub fn peer_status(&self) -> NodeStatus {
        self.peer.status
    }
    /// Link `link` is up (heard from within the peer's deadtime).
    pub fn link_up(&self, link: usize) -> bool {
        self.links.get(link).is_some_and(|l| l.up)
    }
    /// The groups we run (as far as the operations we asked for completed).
    pub fn held(&self) -> GroupMask {
        self.held
    }
    /// What we claim, as heartbeat counts it (`i_hold_resources`).
    pub fn claims(&self) -> RscSet {
        self.i_hold
    }
    /// What the peer claims, from our side (its `local` is our `foreign`).
    pub fn peer_claims(&self) -> RscSet {
        self.other_holds.mirror()
    }
    /// The groups the peer claims.
    pub fn peer_holds(&self) -> GroupMask {
        self.mask_of(self.other_holds.mirror())
    }
    pub fn resource_state(&self) -> RscState {
        self.rstate
    }
    pub fn standby_state(&self) -> Standby {
        self.going_standby
    }
    /// What `cl_status rscstatus` prints: `none|local|foreign|all`, or `transition`.
    pub fn rscstatus(&self) -> &'static str {
        if self.rsc_is_stable() {
            self.i_hold.name()
        } else {
            "transition"
        }
    }
    /// Messages held for retransmission, and their bytes.
    pub fn history_len(&self) -> (usize, usize) {
        (self.history.len(), self.history.bytes())
    }

    /// The groups of a resource set (named from our side).
    pub fn mask_of(&self, s: RscSet) -> GroupMask {
        let mut m = GroupMask::EMPTY;
        if s.contains(RscSet::LOCAL) {
            m = m.union(self.local_mask);
        }
        if s.contains(RscSet::FOREIGN) {
            m = m.union(self.foreign_mask);
        }
        m
    }

    fn wall(&self, now: Instant) -> u64 {
        self.wall0.saturating_add(now.saturating_since(self.start).as_secs())
    }

    fn rand_ms(&mut self, lo: u64, hi: u64) -> Duration {
        let span = hi.saturating_sub(lo).max(1);
        Duration::from_millis(lo + xorshift(&mut self.rng) % span)
    }

    /// Our advertised deadtime (`dt`).
    fn own_deadtime(&self, now: Instant) -> Duration {
        match self.dt_boost_until {
            Some(t) if now < t => self.cfg.deadtime + DT_BOOST,
            _ => self.cfg.deadtime,
        }
    }

    /// How long the peer may be silent before it is dead right now: its advertised `dt`
    /// (`initdead` before the first contact), plus a skew of a quarter keepalive (at most an
    /// eighth of it), as tandem's own membership: the status due exactly at the deadline comes
    /// a little after it. (heartbeat checks its deadlines every 250 ms, which is a skew too.)
    fn peer_dead_after(&self) -> Duration {
        let d = if self.comm == Comm::Waiting { self.cfg.initdead } else { self.peer.deadtime };
        d + (self.cfg.keepalive / 4).min(d / 8)
    }

    /// The next instant the engine must run.
    pub fn poll_at(&self) -> Instant {
        let mut t = self.next_status;
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        if !self.started {
            return self.start;
        }
        min(self.dt_boost_until);
        if self.peer.status != NodeStatus::Dead {
            min(Some(self.peer.last_status + self.peer_dead_after()));
        }
        for l in &self.links {
            if let (Some(last), true) = (l.last, l.up) {
                min(Some(last + self.peer_dead_after()));
            }
        }
        min(self.next_reqnodes);
        for m in &self.peer.track.missing {
            min(m.next_request);
        }
        min(self.standby_until);
        min(self.local_takeover_at.filter(|_| self.rstate == RscState::RscRcvd));
        min(self.failback_retry_at);
        min(self.fence_retry_at);
        min(self.restart_at);
        t
    }

    /// Handles one event at `now` (after running the timers due), appending actions to `out`.
    pub fn handle(&mut self, now: Instant, ev: Event<'_>, out: &mut Vec<Action>) {
        self.timers(now, out);
        match ev {
            Event::Tick => {}
            Event::Received { link, frame } => self.receive(now, link, frame, out),
            Event::OpDone { op, ok } => self.op_done(now, op, ok, out),
            Event::Standby(set) => {
                // hb_standby: `ask_resources rsc_hold=SET info=me`, handled by everyone,
                // us included; heartbeat decides there whether it is possible now.
                self.send_ask_resources(now, set, "me", out);
            }
            Event::Takeover(set) => {
                // hb_takeover: the peer's rc.d/hb_takeover runs hb_standby with the mirror set.
                let mut m = Message::with_capacity(64, 12);
                let _ = m.add(f::TYPE, t::HB_TAKEOVER);
                let _ = m.add(f::RSC_HOLD, set.name());
                self.send(now, m, out);
            }
            Event::Shutdown => self.initiate_shutdown(now, out),
            Event::Fenced { ok } => self.fenced(now, ok, out),
        }
        self.start_next_op(now, out);
    }

    // ------------------------------------------------------------------ timers

    fn timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.started {
            self.started = true;
            self.startup(now, out);
        }
        if self.dt_boost_until.is_some_and(|t| now >= t) {
            self.dt_boost_until = None;
            self.send_status(now, out);
        }
        if now >= self.next_status {
            self.send_status(now, out);
            let ka = self.cfg.keepalive.max(Duration::from_millis(1));
            while self.next_status <= now {
                self.next_status = self.next_status + ka;
            }
        }
        // Peer and link deadlines.
        let dead_after = self.peer_dead_after();
        if self.peer.status != NodeStatus::Dead && now >= self.peer.last_status + dead_after {
            self.mark_peer_dead(now, out);
        }
        for i in 0..self.links.len() {
            let l = self.links[i];
            if l.up && l.last.is_some_and(|last| now >= last + dead_after) {
                self.links[i].up = false;
                out.push(Action::Link { link: i, up: false });
            }
        }
        if self.comm != Comm::Up {
            self.check_comm_up(now, out);
        }
        if self.next_reqnodes.is_some_and(|t| now >= t) {
            self.send_reqnodes(now, out);
        }
        self.rexmit_requests(now, out);
        self.rsc_timers(now, out);
    }

    fn startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        // heartbeat: deadtime + 2 s advertised for 5 s (status "init"), then status "up"
        // twice, then one status per keepalive.
        self.dt_boost_until = Some(now + DT_BOOST_FOR);
        self.send_status(now, out);
        self.set_status(now, NodeStatus::Up, out);
        self.send_status(now, out);
        self.next_status = now + self.cfg.keepalive;
        self.peer.last_status = now;
    }

    fn set_status(&mut self, now: Instant, s: NodeStatus, out: &mut Vec<Action>) {
        if self.status != s {
            self.status = s;
            out.push(Action::LocalStatus(s));
            self.send_status(now, out);
        }
    }

    // ------------------------------------------------------------------ sending

    /// Adds the fields heartbeat adds to every message (`add_control_msg_fields`), signs,
    /// encodes, records for retransmission, and hands the message to our own handlers as
    /// heartbeat does with its own messages.
    fn send(&mut self, now: Instant, mut m: Message, out: &mut Vec<Action>) {
        let msg_type = m.msg_type().unwrap_or("").to_string();
        let noseq = msg_type.starts_with(t::NOSEQ_PREFIX);
        if let Some(dest) = m.dest() {
            let uuid = if dest == self.cfg.node { Some(self.cfg.uuid) } else { self.peer.uuid };
            if let Some(u) = uuid {
                let _ = m.set(FT_BINARY, f::DESTUUID, &u);
            }
        }
        let seq = if noseq { None } else { Some(self.next_seq) };
        let mut hexbuf = [0u8; 16];
        let ts = self.wall(now);
        let ttl = u64::from(self.cfg.hopfudge) + 2;
        let controls: [(&str, u8, Vec<u8>); 7] = [
            (f::SRC, FT_STRING, self.cfg.node.as_bytes().to_vec()),
            (f::SRCUUID, FT_BINARY, self.cfg.uuid.to_vec()),
            (f::SEQ, FT_STRING, seq.map(|s| super::msg::fmt_hex(s, &mut hexbuf).to_vec()).unwrap_or_default()),
            (f::HG, FT_STRING, super::msg::fmt_hex(self.cfg.generation, &mut [0u8; 16]).to_vec()),
            (f::TS, FT_STRING, super::msg::fmt_hex(ts, &mut [0u8; 16]).to_vec()),
            (f::LD, FT_STRING, self.loadavg.as_bytes().to_vec()),
            (f::TTL, FT_STRING, super::msg::fmt_dec(ttl, &mut [0u8; 20]).to_vec()),
        ];
        for (name, ft, value) in controls {
            if noseq && (name == f::SEQ || name == f::LD) {
                continue;
            }
            if noseq && m.get(name).is_some() {
                continue;
            }
            if m.set(ft, name, &value).is_err() {
                return;
            }
        }
        if self.cfg.auth_field && auth::add_field(&mut m, &self.keys).is_err() {
            return;
        }
        let mut udp = Vec::with_capacity(512);
        if netstring::encode_signed(&m, &self.keys, &mut udp).is_err() {
            return;
        }
        let serial = if self.cfg.serial { self.classic_of(&m) } else { Vec::new() };
        if let Some(s) = seq {
            self.next_seq += 1;
            self.history.push(s, udp.clone());
        }
        self.stats.sent += 1;
        out.push(Action::Send(Outbound { msg_type, seq, udp, serial, retransmission: false }));
        self.loopback(now, &m, out);
    }

    /// heartbeat's serial writer: the message with its `auth` field (re)computed, as text.
    fn classic_of(&self, m: &Message) -> Vec<u8> {
        let mut m = m.clone();
        let mut v = Vec::with_capacity(512);
        if auth::add_field(&mut m, &self.keys).is_err() || classic::encode(&m, &mut v).is_err() {
            v.clear();
        }
        v
    }

    fn send_status(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut m = Message::with_capacity(256, 13);
        let _ = m.add(f::TYPE, t::STATUS);
        let _ = m.add(f::ST, self.status.name());
        let _ = m.add_hex(f::DT, self.own_deadtime(now).as_millis() as u64);
        let _ = m.add_dec(f::PROTOCOL, 1);
        self.send(now, m, out);
    }

    fn send_to_peer(&mut self, now: Instant, msg_type: &str, fields: &[(&str, &str)], out: &mut Vec<Action>) {
        let mut m = Message::with_capacity(128, 8 + fields.len());
        let _ = m.add(f::TYPE, msg_type);
        let peer = self.cfg.peer.clone();
        let _ = m.add(f::DEST, &peer);
        for (n, v) in fields {
            let _ = m.add(n, v);
        }
        self.send(now, m, out);
    }

    fn send_ack(&mut self, now: Instant, seq: u64, out: &mut Vec<Action>) {
        if !self.flow_control {
            return;
        }
        let mut h = [0u8; 16];
        let s = String::from_utf8_lossy(super::msg::fmt_hex(seq, &mut h)).into_owned();
        self.send_to_peer(now, t::ACKMSG, &[(f::ACKSEQ, &s)], out);
    }

    fn send_reqnodes(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.peer.status == NodeStatus::Dead {
            self.next_reqnodes = None;
            self.comm_now_up(now, out);
            return;
        }
        self.send_to_peer(now, t::REQNODES, &[], out);
        self.next_reqnodes = Some(now + Duration::from_secs(1));
    }

    fn send_repnodes(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut list = String::new();
        let default = [self.cfg.node.clone(), self.cfg.peer.clone()];
        let nodes: &[String] = if self.cfg.nodes.is_empty() { &default } else { &self.cfg.nodes };
        for n in nodes {
            list.push_str(n);
            list.push(' ');
        }
        // heartbeat writes `dest` before `t` here.
        let mut m = Message::with_capacity(160, 12);
        let _ = m.add(f::DEST, &self.cfg.peer);
        let _ = m.add(f::TYPE, t::REPNODES);
        let _ = m.add(f::NODELIST, &list);
        let _ = m.add(f::DELNODELIST, " ");
        self.send(now, m, out);
    }

    // ------------------------------------------------------------------ receiving

    fn receive(&mut self, now: Instant, link: usize, frame: &[u8], out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        let m = match decode_verified(frame, &self.keys) {
            Ok(fr) => fr.msg,
            Err(error) => {
                self.stats.bad += 1;
                out.push(Action::Notice(Notice::BadFrame { link, error }));
                return;
            }
        };
        self.stats.received += 1;
        let (Some(mtype), Some(src), Some(ts)) = (m.msg_type(), m.src(), m.ts()) else {
            self.stats.dropped += 1;
            return;
        };
        if ts == 0 || (m.seq().is_none() && !mtype.starts_with(t::NOSEQ_PREFIX)) {
            self.stats.dropped += 1;
            return;
        }
        if src == self.cfg.node {
            // Our own message, looped back by broadcast or multicast.
            self.stats.dropped += 1;
            return;
        }
        if src != self.cfg.peer {
            self.stats.dropped += 1;
            out.push(Action::Notice(Notice::UnknownNode(src.to_string())));
            return;
        }
        if let Some(u) = m.srcuuid() {
            if u != [0; 16] {
                self.peer.uuid = Some(u);
            }
        }
        self.peer.any_packets = true;
        let mtype = mtype.to_string();
        let verdict = self.classify(now, &m, &mtype, out);
        match verdict {
            Verdict::Drop => {
                self.stats.dropped += 1;
                return;
            }
            Verdict::Duplicate | Verdict::Keep => {
                if link < MAX_LINKS {
                    if self.links.len() <= link {
                        self.links.resize(link + 1, LinkTrack { last: None, up: false });
                    }
                    self.links[link].last = Some(now);
                    if !self.links[link].up {
                        self.links[link].up = true;
                        out.push(Action::Link { link, up: true });
                    }
                }
                if verdict == Verdict::Duplicate {
                    self.stats.duplicates += 1;
                    return;
                }
            }
        }
        self.dispatch(now, &m, &mtype, out);
        if self.comm != Comm::Up {
            self.check_comm_up(now, out);
        }
    }

    /// heartbeat's `should_drop_message`: sequence and generation bookkeeping for every
    /// message from the peer, then whether it is for us.
    fn classify(&mut self, now: Instant, m: &Message, mtype: &str, out: &mut Vec<Action>) -> Verdict {
        let dest = m.dest();
        let to_us_by_name = dest.is_none() || dest == Some(self.cfg.node.as_str());
        if mtype.starts_with(t::NOSEQ_PREFIX) {
            if mtype == t::NAK_REXMIT {
                let Some(nseq) = m.firstseq().filter(|&s| s > 0) else {
                    return Verdict::Drop;
                };
                if to_us_by_name {
                    out.push(Action::Notice(Notice::IrretrievablyLost(nseq)));
                }
                self.forget_missing(now, nseq, out);
                return Verdict::Drop;
            }
            return if to_us_by_name { Verdict::Keep } else { Verdict::Drop };
        }
        let Some(seq) = m.seq().filter(|&s| s > 0) else {
            return Verdict::Drop;
        };
        let gen = match m.get(f::HG) {
            Some(_) => match m.hg() {
                Some(g) => g,
                None => return Verdict::Drop,
            },
            None => 0,
        };
        let to_us = match m.destuuid().filter(|u| *u != [0; 16]) {
            Some(u) => u == self.cfg.uuid,
            None => to_us_by_name,
        };
        let keep = if to_us { Verdict::Keep } else { Verdict::Drop };
        let is_status = mtype == t::STATUS;
        let (mut restart, mut healed) = (false, false);
        let current = self.peer.track.generation;
        if gen < current {
            out.push(Action::Notice(Notice::Replay { generation: gen, current }));
            return Verdict::Drop;
        } else if is_status {
            if gen == current && gen > 0 {
                if self.peer.status == NodeStatus::Dead {
                    if seq <= self.peer.status_seqno {
                        return Verdict::Drop;
                    }
                    out.push(Action::Notice(Notice::ReturnedAfterPartition));
                    self.send_status(now, out);
                    if self.restart_at.is_none() && !self.shutdown_in_progress {
                        self.restart_at = Some(now + Duration::from_secs(2));
                    }
                    healed = true;
                }
            } else if gen > current {
                restart = true;
                if current > 0 {
                    out.push(Action::PeerRestarted { generation: gen });
                }
                self.peer.track.reset();
                self.peer.acked = 0;
                self.peer.rmt_lastupdate = 0;
                self.peer.status_seqno = 0;
                self.peer.has_resources = true;
            }
            self.peer.track.generation = gen;
        }
        match self.peer.track.last_seq {
            None => {
                self.peer.track.last_seq = Some(seq);
                self.ack_if_needed(now, seq, out);
                return keep;
            }
            Some(last) if seq == last + 1 => {
                self.peer.track.last_seq = Some(seq);
                self.ack_if_needed(now, seq, out);
                return keep;
            }
            Some(last) if seq == last => return Verdict::Duplicate,
            Some(last) if seq > last => {
                let n = seq - last - 1;
                self.stats.lost += n;
                out.push(Action::Notice(Notice::LostPackets { n, last, got: seq }));
                if n > RESET_GAP {
                    self.peer.track.reset();
                    self.peer.track.last_seq = Some(seq);
                    return keep;
                }
                let mut at = Vec::with_capacity(n as usize);
                for _ in 0..n.min(seq::MAX_MISSING as u64 * 4) {
                    at.push(now + self.rand_ms(REXMIT_MIN_MS, REXMIT_MS));
                }
                let mut i = 0;
                self.peer.track.add_missing(last + 1, seq - 1, |_| {
                    let t = at.get(i).copied().unwrap_or(now);
                    i += 1;
                    t
                });
                self.peer.track.last_seq = Some(seq);
                return keep;
            }
            Some(_) => {}
        }
        // Older than the last one: a gap being filled?
        let (was_missing, ack) = self.peer.track.found(seq, self.ack_trigger);
        if was_missing {
            if self.peer.track.missing.is_empty() {
                out.push(Action::Notice(Notice::NoPacketsMissing));
            }
            if let Some(a) = ack {
                self.ack_if_needed(now, a, out);
            }
            return keep;
        }
        if healed || restart {
            self.ack_if_needed(now, seq, out);
            self.peer.rmt_lastupdate = m.ts().unwrap_or(0);
            self.peer.track.reset();
            self.peer.track.last_seq = Some(seq);
            return keep;
        }
        Verdict::Drop
    }

    fn forget_missing(&mut self, _now: Instant, seq: u64, out: &mut Vec<Action>) {
        let (was, _) = self.peer.track.found(seq, self.ack_trigger);
        if was && self.peer.track.missing.is_empty() {
            out.push(Action::Notice(Notice::NoPacketsMissing));
        }
    }

    fn ack_if_needed(&mut self, now: Instant, seq: u64, out: &mut Vec<Action>) {
        if self.peer.track.wants_ack(seq, self.ack_trigger) {
            self.send_ack(now, seq, out);
        }
    }

    fn rexmit_requests(&mut self, now: Instant, out: &mut Vec<Action>) {
        let due: Vec<u64> = self
            .peer
            .track
            .missing
            .iter()
            .filter(|m| m.next_request.is_some_and(|t| now >= t))
            .map(|m| m.seq)
            .collect();
        for s in due {
            let alive = matches!(self.peer.status, NodeStatus::Up | NodeStatus::Active);
            let next = alive.then(|| now + Duration::from_millis(REXMIT_MS));
            if let Some(m) = self.peer.track.missing.iter_mut().find(|m| m.seq == s) {
                m.next_request = next;
            }
            if alive {
                let mut d = [0u8; 20];
                let v = String::from_utf8_lossy(super::msg::fmt_dec(s, &mut d)).into_owned();
                self.stats.rexmit_requests_sent += 1;
                self.send_to_peer(now, t::REXMIT, &[(f::FIRSTSEQ, &v), (f::LASTSEQ, &v)], out);
            }
        }
    }

    /// The peer asks for retransmissions (heartbeat's `process_rexmit`).
    fn answer_rexmit(&mut self, now: Instant, m: &Message, out: &mut Vec<Action>) {
        let (Some(first), Some(last)) = (m.firstseq(), m.lastseq()) else {
            out.push(Action::Notice(Notice::Unexpected("invalid rexmit seqnos")));
            return;
        };
        if first == 0 || first > last {
            out.push(Action::Notice(Notice::Unexpected("invalid rexmit seqnos")));
            return;
        }
        let mut resent = 0;
        let mut naks = 0;
        let from = first.max(self.peer.acked.saturating_add(1));
        let to = last.min(self.history.high);
        if last > self.history.high {
            out.push(Action::Notice(Notice::CannotRetransmit { seq: last, reason: "seqno too high" }));
        }
        let mut s = from;
        while s <= to {
            if s <= self.history.low {
                if naks >= REXMIT_BATCH {
                    break;
                }
                naks += 1;
                self.nak(now, s, "seqno too low", out);
                s += 1;
                continue;
            }
            match self.history.get_mut(s) {
                Some(sent) => {
                    if sent.last_rexmit.is_some_and(|t| now.saturating_since(t) < REXMIT_ACCEPT) {
                        s += 1;
                        continue;
                    }
                    resent += 1;
                    if resent > REXMIT_BATCH {
                        return;
                    }
                    sent.last_rexmit = Some(now);
                    let udp = sent.frame.clone();
                    let serial = if self.cfg.serial {
                        netstring::decode(&udp).map(|(m, _)| self.classic_of(&m)).unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let msg_type = netstring::decode(&udp)
                        .ok()
                        .and_then(|(m, _)| m.msg_type().map(str::to_string))
                        .unwrap_or_default();
                    self.stats.retransmitted += 1;
                    out.push(Action::Send(Outbound { msg_type, seq: Some(s), udp, serial, retransmission: true }));
                }
                None => {
                    if naks >= REXMIT_BATCH {
                        break;
                    }
                    naks += 1;
                    self.nak(now, s, "seqno not found", out);
                }
            }
            s += 1;
        }
    }

    fn nak(&mut self, now: Instant, seq: u64, reason: &'static str, out: &mut Vec<Action>) {
        out.push(Action::Notice(Notice::CannotRetransmit { seq, reason }));
        self.stats.naks_sent += 1;
        let mut h = [0u8; 16];
        let s = String::from_utf8_lossy(super::msg::fmt_hex(seq, &mut h)).into_owned();
        // heartbeat's field order: t, firstseq, dest, info.
        let mut m = Message::with_capacity(128, 12);
        let _ = m.add(f::TYPE, t::NAK_REXMIT);
        let _ = m.add(f::FIRSTSEQ, &s);
        let _ = m.add(f::DEST, &self.cfg.peer);
        let _ = m.add(f::INFO, reason);
        self.send(now, m, out);
    }

    /// A message from the peer that passed [`Engine::classify`].
    fn dispatch(&mut self, now: Instant, m: &Message, mtype: &str, out: &mut Vec<Action>) {
        match mtype {
            t::STATUS | t::NS_STATUS => self.peer_status_msg(now, m, out),
            t::REXMIT => self.answer_rexmit(now, m, out),
            t::ACKMSG if m.dest() == Some(self.cfg.node.as_str()) => {
                if let Some(a) = m.ackseq().filter(|&a| a > self.peer.acked && a <= self.history.high) {
                    self.peer.acked = a;
                    self.history.acked(a);
                }
            }
            t::REQNODES => self.send_repnodes(now, out),
            t::REPNODES => {
                let list = m.get_str(f::NODELIST).unwrap_or("");
                let names: Vec<&str> = list.split_whitespace().collect();
                if !names.contains(&self.cfg.node.as_str()) || !names.contains(&self.cfg.peer.as_str()) {
                    out.push(Action::Notice(Notice::NodeListMismatch(list.to_string())));
                }
                if self.comm != Comm::Up {
                    self.next_reqnodes = None;
                    self.comm_now_up(now, out);
                }
            }
            t::SHUTDONE => self.peer_shutdone(now, m, out),
            _ if self.rsc_enabled => self.resource_msg(now, m, mtype, false, out),
            _ => {}
        }
    }

    /// heartbeat's status handler.
    fn peer_status_msg(&mut self, now: Instant, m: &Message, out: &mut Vec<Action>) {
        let Some(st) = m.st() else {
            return;
        };
        let ts = m.ts().unwrap_or(0);
        let seq = m.seq().unwrap_or(0);
        if ts < self.peer.rmt_lastupdate && seq < self.peer.status_seqno {
            return;
        }
        if self.flow_control && m.protocol().is_none() {
            self.flow_control = false;
            out.push(Action::Notice(Notice::NoFlowControl));
        }
        if self.peer.status != NodeStatus::Dead && self.peer.status_seqno > 0 {
            let gap = now.saturating_since(self.peer.last_status);
            if gap > self.cfg.warntime {
                out.push(Action::Notice(Notice::LateHeartbeat(gap)));
            }
        }
        let new = NodeStatus::parse(st);
        if new != self.peer.status {
            let old = self.peer.status;
            self.peer.status = new;
            out.push(Action::PeerStatus { old, new });
            if new == NodeStatus::Dead {
                // A node says it is dead: rc.d/status runs mach_down (heartbeat queues it).
                self.takeover_from_peer(now, out);
            }
        }
        if let Some(dt) = m.dt() {
            self.peer.deadtime = Duration::from_millis(dt);
        }
        self.peer.rmt_lastupdate = ts;
        self.peer.last_status = now;
        self.peer.status_seqno = seq;
    }

    fn mark_peer_dead(&mut self, now: Instant, out: &mut Vec<Action>) {
        let old = self.peer.status;
        self.peer.status = NodeStatus::Dead;
        out.push(Action::PeerStatus { old, new: NodeStatus::Dead });
        self.recover_dead_resources(now, out);
        self.peer.rmt_lastupdate = 0;
        self.peer.any_packets = false;
        self.peer.track.reset();
        self.peer.acked = 0;
        for i in 0..self.links.len() {
            if self.links[i].up {
                self.links[i].up = false;
                out.push(Action::Link { link: i, up: false });
            }
        }
    }

    /// heartbeat's `check_comm_isup`: once we heard from the peer (or it is dead), ask it for
    /// the node list; `comm_now_up` follows its answer (or its death).
    fn check_comm_up(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.comm != Comm::Waiting {
            return;
        }
        if self.peer.any_packets || self.peer.status == NodeStatus::Dead {
            self.comm = Comm::LinksUp;
            if self.flow_control {
                self.send_reqnodes(now, out);
            } else {
                self.comm_now_up(now, out);
            }
        }
    }

    fn comm_now_up(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.comm == Comm::Up {
            return;
        }
        self.comm = Comm::Up;
        self.next_reqnodes = None;
        self.set_status(now, NodeStatus::Active, out);
        self.comm_up_resources(now, out);
        if !self.startup_complete {
            self.startup_complete = true;
            if self.shutdown_in_progress {
                self.shutdown_in_progress = false;
                self.initiate_shutdown(now, out);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Drop,
    Duplicate,
}

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}
