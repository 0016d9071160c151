//! The core's events as log lines: names from the configuration, and the level by who must
//! act (error: an operator; warn: degraded; info: each transition once).

use log::Level;

use crate::cluster::{self, GroupId, ResId};
use crate::config::Config;
use crate::link::Link;
use crate::membership::PeerState;
use crate::time;

use super::io::Event;

/// How an event is reported.
pub struct Line {
    pub level: Level,
    pub text: String,
    /// Kept in `status`'s recent transitions (a transition, not a recurring warning).
    pub transition: bool,
}

/// The log line for `ev`.
pub fn describe(cfg: &Config, links: &[Box<dyn Link>], ev: &Event) -> Line {
    let link_name = |i: usize| links.get(i).map(|l| l.name().to_string()).unwrap_or_default();
    let t = |level: Level, text: String| Line { level, text, transition: true };
    match *ev {
        Event::Cluster(ref e) => cluster_line(cfg, e),
        Event::LinkUp(i) => t(Level::Info, format!("link {}: up", link_name(i))),
        Event::LinkDown(i) => t(
            Level::Warn,
            format!("link {}: down (nothing received for {})", link_name(i), time::fmt_duration(cfg.deadtime)),
        ),
        Event::PeerLate => Line {
            level: Level::Warn,
            text: format!(
                "peer {} is late: nothing heard for more than {}",
                cfg.peer_name(),
                time::fmt_duration(cfg.warntime)
            ),
            transition: false,
        },
        Event::PeerRestarted => t(Level::Info, format!("peer {} restarted (new generation)", cfg.peer_name())),
        Event::Peer { from, to, silent_ms } => {
            let why = match (to, silent_ms) {
                (PeerState::Dead, Some(ms)) => format!(" after {ms} ms of silence"),
                _ => String::new(),
            };
            t(Level::Info, format!("peer {}: {} -> {}{why}", cfg.peer_name(), from.name(), to.name()))
        }
        Event::KeepaliveMismatch { peer_ms } => Line {
            level: Level::Warn,
            text: format!(
                "peer {} uses keepalive {peer_ms}ms, we use {}ms: configure both nodes alike",
                cfg.peer_name(),
                cfg.keepalive.as_millis()
            ),
            transition: false,
        },
        Event::PeerLevel { level } => t(
            Level::Info,
            match level {
                0 => format!("peer {} runs tandem 0.1.0 (protocol level 0)", cfg.peer_name()),
                l => format!("peer {} speaks protocol level {l}", cfg.peer_name()),
            },
        ),
        Event::ConfigDigest { ours, theirs, same: false } => t(
            Level::Error,
            format!(
                "peer {}'s configuration differs from ours (digest {theirs:08x}, ours {ours:08x}: cluster, nodes, \
                 auto_failback or groups): neither node starts a group on the other's word until both run the \
                 same file",
                cfg.peer_name()
            ),
        ),
        Event::ConfigDigest { same: true, .. } => {
            t(Level::Info, format!("peer {}'s configuration matches ours again", cfg.peer_name()))
        }
        Event::FenceScheduled { delay } if delay.is_zero() => {
            t(Level::Warn, format!("peer {} is dead: fencing it now", cfg.peer_name()))
        }
        Event::FenceScheduled { delay } => t(
            Level::Warn,
            format!(
                "peer {} is dead: fencing it in {} (fence_delay: the node holding a group fences first)",
                cfg.peer_name(),
                time::fmt_duration(delay)
            ),
        ),
        Event::FenceStarted { attempt } => t(Level::Info, format!("fencing {}: attempt {attempt}", cfg.peer_name())),
        Event::FenceFailed { attempt, ref detail, repeated, retry_in: Some(retry_in) } => Line {
            // An operator must act; once per change of the error, not once per retry.
            level: if repeated { Level::Debug } else { Level::Error },
            text: format!(
                "fencing {}: attempt {attempt} failed: {detail}; no takeover until it is fenced; retrying in {}",
                cfg.peer_name(),
                time::fmt_duration(retry_in)
            ),
            transition: !repeated,
        },
        Event::FenceFailed { attempt, ref detail, retry_in: None, .. } => t(
            Level::Error,
            format!(
                "fencing {}: attempt {attempt} failed: {detail}; the peer is not dead: not retried (tandem fence {} \
                 to try again)",
                cfg.peer_name(),
                cfg.peer_name()
            ),
        ),
        Event::FenceConfirmed { took, ref detail } => t(
            Level::Warn,
            format!("fenced {}: {detail} ({} ms after it was declared dead)", cfg.peer_name(), took.as_millis()),
        ),
        Event::ReachWorse { worse: true } => t(
            Level::Warn,
            format!(
                "this node reaches fewer ping targets than {} (for ping_hold): handing its groups over",
                cfg.peer_name()
            ),
        ),
        Event::ReachWorse { worse: false } => {
            t(Level::Info, format!("this node reaches as many ping targets as {} again", cfg.peer_name()))
        }
        Event::Isolated { stops } => t(
            Level::Error,
            format!(
                "peer {} is silent and no ping target answers: this node is cut off from its clients; it {} and \
                 neither fences nor takes over",
                cfg.peer_name(),
                if stops { "stops its groups" } else { "keeps its groups (isolated_stop off)" }
            ),
        ),
        Event::PeerLeft => t(
            Level::Info,
            format!("peer {} had shut down cleanly (every group stopped): not fencing it", cfg.peer_name()),
        ),
        Event::FenceCancelled => {
            t(Level::Info, format!("fencing {}: stopped, the peer is heard again", cfg.peer_name()))
        }
        Event::FenceCheck { ok, ref detail, took, changed } => Line {
            // A device that stops answering is an error (once per change): fencing would fail.
            level: match (ok, changed) {
                (false, true) => Level::Error,
                (true, true) => Level::Info,
                _ => Level::Debug,
            },
            text: if ok {
                format!("fence device of {} answers: {detail} ({} ms)", cfg.peer_name(), took.as_millis())
            } else {
                format!(
                    "fence device of {} does not answer: {detail}; fencing it would fail until this is fixed",
                    cfg.peer_name()
                )
            },
            transition: changed,
        },
        Event::FenceOperator { never_heard: true } => t(
            Level::Error,
            format!(
                "peer {} was never heard since this start (wait_for_peer on): not fencing it and not taking over; \
                 once it is known to be off, run tandem fenced {} (or tandem fence {})",
                cfg.peer_name(),
                cfg.peer_name(),
                cfg.peer_name()
            ),
        ),
        Event::FenceOperator { never_heard: false } => t(
            Level::Error,
            format!(
                "peer {} is dead and its fencing is manual: power it off, then run tandem fenced {}; no takeover \
                 before that",
                cfg.peer_name(),
                cfg.peer_name()
            ),
        ),
        Event::BadExtension => Line {
            level: Level::Warn,
            text: format!("peer {}: malformed heartbeat extension fields (ignored)", cfg.peer_name()),
            transition: false,
        },
        Event::OutdateBusy { ref resource } => t(
            Level::Error,
            format!("peer asked to outdate DRBD resource {resource}: every outdate child is busy: answered failed"),
        ),
        Event::OutdateAnswered { ref resource, code } => {
            t(Level::Info, format!("peer asked to outdate DRBD resource {resource}: answered {code}"))
        }
        Event::Hb(ref e) => {
            let (level, text, transition) = super::hbevents::describe(cfg, e);
            Line { level, text, transition }
        }
    }
}

/// The name of group `g`.
pub fn group_name(cfg: &Config, GroupId(g): GroupId) -> &str {
    cfg.groups.get(g).map(|g| g.name.as_str()).unwrap_or("?")
}

/// Resource `r` of group `g` as written.
pub fn res_text(cfg: &Config, GroupId(g): GroupId, ResId(r): ResId) -> &str {
    cfg.groups.get(g).and_then(|g| g.resources.get(r)).map(|r| r.text.as_str()).unwrap_or("?")
}

/// A cluster transition; errors are what an operator must act on.
fn cluster_line(cfg: &Config, ev: &cluster::LogEvent) -> Line {
    use cluster::LogEvent as L;
    let mut level = Level::Info;
    let msg = match *ev {
        L::Node { from, to } => format!("node {}: {} -> {}", cfg.local_name(), from.name(), to.name()),
        L::Group { group, from, to } => {
            format!("group {}: {} -> {}", group_name(cfg, group), from.name(), to.name())
        }
        L::FoundRunning { group, resource, status_error } => format!(
            "group {}: {} {} at start-up: stopping the whole group before anything else",
            group_name(cfg, group),
            res_text(cfg, group, resource),
            if status_error { "cannot be checked" } else { "is running" }
        ),
        L::Release { group, reason } => format!("group {}: releasing ({})", group_name(cfg, group), reason.name()),
        L::TakeoverPeerDead { group } => {
            format!("group {}: peer {} is dead, taking over", group_name(cfg, group), cfg.peer_name())
        }
        L::StartFailed { group, resource } => {
            let m = format!(
                "group {}: start of {} failed: stopping the group here and offering it to {}",
                group_name(cfg, group),
                res_text(cfg, group, resource),
                cfg.peer_name()
            );
            level = Level::Error;
            m
        }
        L::StopFailed { group, resource, attempt, retrying } => {
            let m = format!(
                "group {}: stop of {} failed (attempt {attempt}){}",
                group_name(cfg, group),
                res_text(cfg, group, resource),
                if retrying {
                    ", retrying"
                } else {
                    ": resources may still be held here; the group will not be handed over until an operator resolves it"
                }
            );
            level = Level::Error;
            m
        }
        L::StandbyRefused { group } => {
            level = Level::Warn;
            format!(
                "group {}: standby refused: the peer is not up, nobody could take the group",
                group_name(cfg, group)
            )
        }
        L::TakeoverRefused { group, state } => {
            level = Level::Warn;
            format!("group {}: takeover refused (local state {})", group_name(cfg, group), state.name())
        }
        L::Takeover { group } => format!("group {}: takeover accepted", group_name(cfg, group)),
        L::Standby { group } => format!("group {}: standby accepted", group_name(cfg, group)),
        L::StandbyCleared { group } => {
            format!("group {}: standby here ends: {} gave the group up", group_name(cfg, group), cfg.peer_name())
        }
        L::ExitBlocked { group } => {
            let m = format!(
                "cannot exit cleanly: group {} failed to stop; resolve it by hand, then signal again to exit",
                group_name(cfg, group)
            );
            level = Level::Error;
            m
        }
        L::MonitorFailed { group, resource, error } => {
            level = Level::Error;
            format!(
                "group {}: monitor: {} {}",
                group_name(cfg, group),
                res_text(cfg, group, resource),
                if error { "cannot be checked (its status failed)" } else { "is not running" }
            )
        }
        L::Restart { group, resource, restart, limit } => {
            level = Level::Warn;
            format!(
                "group {}: restarting {} and what follows it here (restart {restart} of {limit} within \
                 restart_window)",
                group_name(cfg, group),
                res_text(cfg, group, resource)
            )
        }
        L::RestartLimit { group } => {
            level = Level::Error;
            format!(
                "group {}: restart_limit reached: stopping it here, marking this node failed for it, offering it \
                 to {}",
                group_name(cfg, group),
                cfg.peer_name()
            )
        }
        L::NowhereToRun { group } => {
            level = Level::Error;
            format!(
                "group {}: failed here and {} cannot run it either (failed there, or not up): it stays stopped; \
                 fix it, then run tandem cleanup {} (on each node where it failed)",
                group_name(cfg, group),
                cfg.peer_name(),
                group_name(cfg, group)
            )
        }
        L::FailureExpired { group } => {
            format!("group {}: failure_timeout passed: this node may run it again", group_name(cfg, group))
        }
        L::Cleanup { group } => format!("group {}: failures cleared here (cleanup)", group_name(cfg, group)),
    };
    Line { level, text: msg, transition: true }
}
