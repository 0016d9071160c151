//! What heartbeat's protocol core reports, and how it reads in the log: the types the core,
//! the daemon's interface types and its log formatting share, in a file of their own so that
//! none of them imports another in a circle.

use crate::config::Config;
use crate::hb::proto::{GroupMask, NodeStatus, Notice, RscSet};
use crate::time::Duration;

/// Attempts of a failing `stop` before heartbeat gives up on it (its HA_STOPRETRYMAX).
pub const STOP_TRIES: u32 = 10;
/// Between two attempts.
pub const STOP_RETRY: Duration = Duration::from_secs(1);
/// Between attempts once a group is held as failed.
pub const STOP_FAILED_RETRY: Duration = Duration::from_secs(10);
/// After a failed start, the group's resources go standby this much later (heartbeat's 30 s).
pub const STANDBY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// A group's state on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GState {
    /// Not probed yet.
    Unknown,
    Stopped,
    Starting,
    Started,
    Stopping,
    /// A stop failed and the resource still runs: held here, stop retried.
    StopFailed,
}

impl GState {
    pub fn name(self) -> &'static str {
        match self {
            GState::Unknown => "unknown",
            GState::Stopped => "stopped",
            GState::Starting => "starting",
            GState::Started => "started",
            GState::Stopping => "stopping",
            GState::StopFailed => "failed",
        }
    }
}

/// What this core reports (formatted by [`describe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HbEvent {
    LocalStatus(NodeStatus),
    Peer {
        old: NodeStatus,
        new: NodeStatus,
    },
    /// The groups the peer says it holds changed.
    PeerHolds(GroupMask),
    /// An engine notice (`suppressed`: similar ones not reported since the last).
    Notice {
        notice: Notice,
        suppressed: u64,
    },
    Group {
        group: usize,
        from: GState,
        to: GState,
    },
    /// Start-up probe: the group was found running here and is stopped.
    FoundRunning {
        group: usize,
        resource: usize,
    },
    StartFailed {
        group: usize,
        resource: usize,
    },
    /// The group's resources go standby after its failed start.
    StandbyAfterFailure {
        group: usize,
        set: RscSet,
    },
    StopFailed {
        group: usize,
        resource: usize,
        attempts: u32,
    },
    /// A stop failed but `status` says stopped (not LSB-compliant, heartbeat's warning).
    StopNotLsb {
        group: usize,
        resource: usize,
    },
    /// The engine finished its clean shutdown (`shutdone` sent).
    ShutdownDone,
    /// After a healed partition the engine gave everything up and starts over.
    Restarted {
        generation: u64,
    },
    /// The engine asked for something the daemon cannot do here.
    Unsupported(&'static str),
}

/// The log line of an [`HbEvent`].
pub fn describe(cfg: &Config, ev: &HbEvent) -> (log::Level, String, bool) {
    use log::Level;
    let line = |level: Level, text: String, transition: bool| (level, text, transition);
    let gname = |g: usize| cfg.groups.get(g).map(|g| g.name.as_str()).unwrap_or("?");
    let rname =
        |g: usize, r: usize| cfg.groups.get(g).and_then(|g| g.resources.get(r)).map(|r| r.text.as_str()).unwrap_or("?");
    let peer = cfg.peer_name();
    match ev {
        HbEvent::LocalStatus(s) => line(Level::Info, format!("node {}: {}", cfg.local_name(), s.name()), true),
        HbEvent::Peer { old, new } => {
            let level = if *new == NodeStatus::Dead { Level::Warn } else { Level::Info };
            line(level, format!("peer {peer}: {} -> {}", old.name(), new.name()), true)
        }
        HbEvent::PeerHolds(m) => {
            let names: Vec<&str> = m.iter().map(gname).collect();
            let what = if names.is_empty() { "nothing".to_string() } else { names.join(" ") };
            line(Level::Debug, format!("peer {peer} says it holds {what}"), false)
        }
        HbEvent::Notice { notice, suppressed } => {
            let more = if *suppressed > 0 { format!(" ({suppressed} similar messages suppressed)") } else { String::new() };
            let (level, text) = notice_text(cfg, notice);
            line(level, format!("{text}{more}"), false)
        }
        HbEvent::Group { group, from, to } => {
            line(Level::Info, format!("group {}: {} -> {}", gname(*group), from.name(), to.name()), true)
        }
        HbEvent::FoundRunning { group, resource } => line(
            Level::Warn,
            format!(
                "group {}: {} runs here at start-up (or its status failed): stopping the group",
                gname(*group),
                rname(*group, *resource)
            ),
            true,
        ),
        HbEvent::StartFailed { group, resource } => line(
            Level::Error,
            format!(
                "group {}: start of {} failed: giving the group up; its resources go standby in {}",
                gname(*group),
                rname(*group, *resource),
                crate::time::fmt_duration(STANDBY_AFTER_FAILURE)
            ),
            true,
        ),
        HbEvent::StandbyAfterFailure { group, set } => line(
            Level::Warn,
            format!("group {}: failed to start here: hb_standby {}", gname(*group), set.name()),
            true,
        ),
        HbEvent::StopFailed { group, resource, attempts } => line(
            Level::Error,
            format!(
                "group {}: stop of {} failed {attempts} times and it still runs: the group is held here as \
                 failed (heartbeat would reboot this node); the peer is not told it may start it; retrying every \
                 {}; fix the resource, or power this node off",
                gname(*group),
                rname(*group, *resource),
                crate::time::fmt_duration(STOP_FAILED_RETRY)
            ),
            true,
        ),
        HbEvent::StopNotLsb { group, resource } => line(
            Level::Warn,
            format!(
                "group {}: stop of {} failed, but its status says stopped: its script is probably not \
                 LSB-compliant (a stop must succeed when already stopped)",
                gname(*group),
                rname(*group, *resource)
            ),
            false,
        ),
        HbEvent::ShutdownDone => line(Level::Info, "every group released and the peer told (shutdone)".to_string(), true),
        HbEvent::Restarted { generation } => line(
            Level::Warn,
            format!("peer {peer} came back after a partition: everything was released; starting over (generation {generation})"),
            true,
        ),
        HbEvent::Unsupported(what) => line(Level::Warn, format!("heartbeat protocol: {what} is not available"), false),
    }
}

fn notice_text(cfg: &Config, n: &Notice) -> (log::Level, String) {
    use log::Level;
    match n {
        Notice::BadFrame { link, error } => (Level::Warn, format!("link {link}: rejected heartbeat message: {error}")),
        Notice::UnknownNode(node) => (Level::Warn, format!("message from unknown node {node}")),
        Notice::LostPackets { n, last, got } => {
            (Level::Debug, format!("{n} lost packet(s) (last {last}, got {got}); asking for them again"))
        }
        Notice::NoPacketsMissing => (Level::Debug, "no packets missing any more".to_string()),
        Notice::IrretrievablyLost(s) => (Level::Warn, format!("message {s} from the peer is irretrievably lost")),
        Notice::Replay { generation, current } => {
            (Level::Warn, format!("dropped a replayed message (generation {generation} < {current})"))
        }
        Notice::LateHeartbeat(d) => {
            (Level::Warn, format!("late heartbeat: {} since the last", crate::time::fmt_duration(*d)))
        }
        Notice::ReturnedAfterPartition => (Level::Warn, "the peer returned after a partition".to_string()),
        Notice::CannotRetransmit { seq, reason } => (Level::Debug, format!("cannot resend message {seq}: {reason}")),
        Notice::NoFlowControl => (Level::Warn, "the peer is an old heartbeat without flow control".to_string()),
        Notice::NodeListMismatch(l) => {
            (Level::Error, format!("the peer's node list is '{l}', not both nodes of ha.cf"))
        }
        Notice::StandbyIgnored(why) => (Level::Warn, format!("standby request ignored: {why}")),
        Notice::StandbyRequested { node, set } => (Level::Info, format!("{node} wants to go standby [{}]", set.name())),
        Notice::StandbyCancelled => (Level::Warn, "no answer to the standby request in 10 s: cancelled".to_string()),
        Notice::ShutdownDelayed => (Level::Info, "shutdown waits for running resource work".to_string()),
        Notice::NoStonith => match cfg.peer_stonith() {
            // Only a method heartbeat's protocol cannot run (watchdog) leaves the engine without STONITH.
            Some(s) => (
                Level::Warn,
                format!(
                    "the stonith of {} ({}) does not run over heartbeat's protocol: taking over the dead peer's \
                     groups without fencing it; shared disks are not protected",
                    cfg.peer_name(),
                    s.method.name()
                ),
            ),
            None => (
                Level::Warn,
                "no STONITH configured: taking over the dead peer's groups anyway; shared disks are not protected"
                    .to_string(),
            ),
        },
        Notice::FenceFailed => (Level::Error, "fencing the peer failed; retrying".to_string()),
        Notice::Unexpected(what) => (Level::Debug, format!("unexpected resource message: {what}")),
        Notice::Audit(what) => (Level::Error, format!("resource audit: {what}")),
    }
}
