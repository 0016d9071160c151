//! Notify hooks (`notify PATH`): every transition is told to each configured program, with
//! its fields in the environment (`TANDEM_*`) and as positional arguments
//! (`EVENT SUBJECT STATE PREVIOUS REASON`, so keepalived-style scripts take `$1 $2 $3`).
//!
//! - [`notice`] is the one place a core event ([`Event`]) becomes a [`Notice`]: its event
//!   name and fields. The match has no wildcard, so a new event variant does not compile
//!   until it is given a name here (and a sample in the test that every variant maps). An
//!   event that repeats what was already told (a fence attempt failing as the one before,
//!   a device check with the same outcome) is told once: `None` for the repeats.
//! - [`Notifier`] keeps, per hook, a bounded queue ([`queue_size`]: at least [`QUEUE`]
//!   notices, and room for a whole failover) and at most one run in flight, so each hook
//!   sees the events in order. What does not fit is dropped and
//!   counted; the count is logged once the hook takes an event again (the burst is over),
//!   at most every [`DROP_REPORT`] while the overload lasts. A run that fails (non-zero exit,
//!   killed, past `notify_timeout`) is logged, rate-limited, and never retried: the next
//!   event runs.
//!
//! Pure but for [`executable`]: the loop feeds events and runs the children (the runner's
//! notify pool).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use log::warn;

use crate::agent::drbd::fence;
use crate::cluster::{self, GroupId, ResId};
use crate::config::Config;
use crate::logging::RateLimit;
use crate::membership::PeerState;
use crate::time::{Duration, Instant};

use crate::hb::proto::{NodeStatus, Notice as HbNotice};

use super::events::{group_name, res_text};
use super::hbcore::HbEvent;
use super::io::Event;

/// Notices queued per hook at least; more are dropped (and counted).
pub const QUEUE: usize = 64;
/// While a hook's queue keeps overflowing, its drops are logged at most this often.
pub const DROP_REPORT: Duration = Duration::from_secs(5);

/// Notices queued per hook at most: [`QUEUE`], or room for every group to move at once (a
/// group's move tells about four group events and one per resource) if that is more.
pub fn queue_size(cfg: &Config) -> usize {
    let resources: usize = cfg.groups.iter().map(|g| g.resources.len()).sum();
    QUEUE.max(16 + 4 * cfg.groups.len() + 2 * resources)
}

/// The event names (`TANDEM_EVENT`, `$1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This node's state (init, active, leaving), and a blocked exit.
    Node,
    /// The peer: up, dead, late, restarted, configuration and protocol changes.
    Peer,
    /// One heartbeat link up or down.
    Link,
    /// A group's state, and what was done with it (standby, takeover, release).
    Group,
    /// One resource: started, stopped, failed.
    Resource,
    /// Fencing a node.
    Fence,
    /// The peer asked to outdate a DRBD disk here (its fence-peer handler), and our answer.
    Outdate,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Peer => "peer",
            Kind::Link => "link",
            Kind::Group => "group",
            Kind::Resource => "resource",
            Kind::Fence => "fence",
            Kind::Outdate => "outdate",
        }
    }
}

/// One transition as a hook sees it. Fields that do not apply are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub event: Kind,
    /// What the event is about (`$2`): the node, peer, link, group or resource name.
    pub subject: String,
    /// The new state, or what happened (`$3`, `TANDEM_STATE`).
    pub state: &'static str,
    /// The state before, when there is one (`$4`, `TANDEM_PREVIOUS`).
    pub previous: &'static str,
    pub group: String,
    /// The resource as written in the group line (a DRBD resource name for `outdate`).
    pub resource: String,
    pub link: String,
    /// Why, in words (`$5`, `TANDEM_REASON`).
    pub reason: String,
    /// Milliseconds since the daemon started (monotonic).
    pub time_ms: u64,
    /// Milliseconds since the Unix epoch (wall clock), for `TANDEM_TIME`.
    pub unix_ms: u64,
}

impl Notice {
    fn new(event: Kind, subject: &str, state: &'static str) -> Notice {
        Notice {
            event,
            subject: subject.to_string(),
            state,
            previous: "",
            group: String::new(),
            resource: String::new(),
            link: String::new(),
            reason: String::new(),
            time_ms: 0,
            unix_ms: 0,
        }
    }

    fn previous(mut self, p: &'static str) -> Notice {
        self.previous = p;
        self
    }

    fn reason(mut self, r: impl Into<String>) -> Notice {
        self.reason = r.into();
        self
    }

    fn group(mut self, cfg: &Config, g: GroupId) -> Notice {
        self.group = group_name(cfg, g).to_string();
        self
    }

    fn resource(mut self, cfg: &Config, g: GroupId, r: ResId) -> Notice {
        self.group = group_name(cfg, g).to_string();
        self.resource = res_text(cfg, g, r).to_string();
        self
    }

    /// A group event about group `g`.
    fn of_group(cfg: &Config, g: GroupId, state: &'static str) -> Notice {
        Notice::new(Kind::Group, group_name(cfg, g), state).group(cfg, g)
    }

    /// A resource event about resource `r` of group `g`.
    fn of_resource(cfg: &Config, g: GroupId, r: ResId, state: &'static str) -> Notice {
        Notice::new(Kind::Resource, res_text(cfg, g, r), state).resource(cfg, g, r)
    }

    /// The positional arguments after the program: `EVENT SUBJECT STATE PREVIOUS REASON`.
    pub fn args(&self) -> [&str; 5] {
        [self.event.name(), &self.subject, self.state, self.previous, &self.reason]
    }

    /// The environment a hook gets (added to the daemon's), every variable always set.
    pub fn env(&self, cfg: &Config) -> Vec<(String, String)> {
        let v = |k: &str, v: &str| (k.to_string(), v.to_string());
        vec![
            v("TANDEM_EVENT", self.event.name()),
            v("TANDEM_STATE", self.state),
            v("TANDEM_PREVIOUS", self.previous),
            v("TANDEM_GROUP", &self.group),
            v("TANDEM_RESOURCE", &self.resource),
            v("TANDEM_LINK", &self.link),
            v("TANDEM_REASON", &self.reason),
            v("TANDEM_NODE", cfg.local_name()),
            v("TANDEM_PEER", cfg.peer_name()),
            v("TANDEM_CLUSTER", &cfg.cluster),
            v("TANDEM_TIME", &rfc3339_ms(self.unix_ms)),
            ("TANDEM_TIME_MS".to_string(), self.time_ms.to_string()),
        ]
    }
}

/// A resource operation finished in the loop (not a core event): the successful starts
/// and stops. Failures come from the core as events ([`notice`]); checks are not told.
pub fn op_notice(cfg: &Config, g: GroupId, r: ResId, op: cluster::Op, ok: bool) -> Option<Notice> {
    match (op, ok) {
        (cluster::Op::Start, true) => Some(Notice::of_resource(cfg, g, r, "started").previous("stopped")),
        (cluster::Op::Stop, true) => Some(Notice::of_resource(cfg, g, r, "stopped").previous("started")),
        _ => None,
    }
}

/// The one place a core event gets its event name and fields (`None`: a repeat of what was
/// told already). See the module documentation.
pub fn notice(cfg: &Config, link_name: &dyn Fn(usize) -> String, ev: &Event) -> Option<Notice> {
    let peer = cfg.peer_name();
    let fence = |state: &'static str| Notice::new(Kind::Fence, peer, state);
    let fmt = crate::time::fmt_duration;
    Some(match *ev {
        Event::Cluster(ref e) => cluster_notice(cfg, e),
        Event::LinkUp(i) => {
            let name = link_name(i);
            let mut n = Notice::new(Kind::Link, &name, "up").previous("down");
            n.link = name;
            n
        }
        Event::LinkDown(i) => {
            let name = link_name(i);
            let reason = format!("nothing received for {}", crate::time::fmt_duration(cfg.deadtime));
            let mut n = Notice::new(Kind::Link, &name, "down").previous("up").reason(reason);
            n.link = name;
            n
        }
        Event::PeerLate => Notice::new(Kind::Peer, peer, "late")
            .previous("up")
            .reason(format!("nothing heard for more than {}", crate::time::fmt_duration(cfg.warntime))),
        Event::PeerRestarted => Notice::new(Kind::Peer, peer, "restarted").reason("a new boot generation"),
        Event::Peer { from, to, silent_ms } => {
            let n = Notice::new(Kind::Peer, peer, to.name()).previous(from.name());
            match (to, silent_ms) {
                (PeerState::Dead, Some(ms)) => n.reason(format!("silent for {ms} ms")),
                (PeerState::Dead, None) => n.reason("never heard within initdead"),
                _ => n,
            }
        }
        Event::KeepaliveMismatch { peer_ms } => Notice::new(Kind::Peer, peer, "keepalive-mismatch")
            .reason(format!("the peer uses keepalive {peer_ms}ms, this node {}ms", cfg.keepalive.as_millis())),
        Event::OutdateAnswered { ref resource, code } => {
            let mut n = Notice::new(Kind::Outdate, resource, outdate_state(code))
                .reason(format!("the peer asked to outdate DRBD resource {resource}: answered {code}"));
            n.resource = resource.clone();
            n
        }
        Event::OutdateBusy { ref resource } => {
            let mut n = Notice::new(Kind::Outdate, resource, "busy")
                .reason("every outdate child is busy: answered failed (1)".to_string());
            n.resource = resource.clone();
            n
        }
        Event::PeerLevel { level } => {
            Notice::new(Kind::Peer, peer, "protocol").reason(format!("the peer speaks protocol level {level}"))
        }
        Event::BadExtension => {
            Notice::new(Kind::Peer, peer, "bad-extension").reason("malformed heartbeat extension fields (ignored)")
        }
        Event::ConfigDigest { ours, theirs, same: false } => Notice::new(Kind::Peer, peer, "config-differs").reason(
            format!("configuration digest {theirs:08x}, ours {ours:08x}: neither node acts on the other's word"),
        ),
        Event::ConfigDigest { same: true, .. } => Notice::new(Kind::Peer, peer, "config-matches")
            .previous("config-differs")
            .reason("the peer's configuration matches again"),
        Event::ReachWorse { worse: true } => Notice::new(Kind::Node, cfg.local_name(), "reach-worse")
            .previous("reach-ok")
            .reason(format!("this node reaches fewer ping targets than {peer}: its groups go to {peer}")),
        Event::ReachWorse { worse: false } => Notice::new(Kind::Node, cfg.local_name(), "reach-ok")
            .previous("reach-worse")
            .reason(format!("this node reaches as many ping targets as {peer} again")),
        Event::Isolated { stops } => Notice::new(Kind::Node, cfg.local_name(), "isolated").reason(format!(
            "{peer} is silent and no ping target answers: {}no fencing, no takeover",
            if stops { "the groups stop here; " } else { "the groups stay (isolated_stop off); " }
        )),
        Event::Hb(ref e) => return hb_notice(cfg, e),
        Event::FenceScheduled { delay } if delay.is_zero() => fence("scheduled").reason("the peer is dead: now"),
        Event::FenceScheduled { delay } => fence("scheduled").reason(format!("the peer is dead: in {}", fmt(delay))),
        Event::FenceStarted { attempt } => fence("started").reason(format!("attempt {attempt}")),
        Event::FenceFailed { repeated: true, .. } => return None,
        Event::FenceFailed { attempt, ref detail, retry_in, .. } => {
            fence("failed").previous("started").reason(match retry_in {
                Some(r) => {
                    format!("attempt {attempt}: {detail}; no takeover until it is fenced; retrying in {}", fmt(r))
                }
                None => format!("attempt {attempt}: {detail}; the peer is alive: not retried"),
            })
        }
        Event::FenceConfirmed { took, ref detail } => {
            fence("confirmed").reason(format!("{detail} ({} ms after it was declared dead)", took.as_millis()))
        }
        Event::FenceCancelled => fence("cancelled").reason("the peer is heard again"),
        Event::PeerLeft => fence("not-needed").reason("the peer had shut down cleanly, every group stopped"),
        Event::FenceCheck { changed: false, .. } => return None,
        Event::FenceCheck { ok: true, ref detail, took, .. } => {
            fence("device-ok").previous("device-failed").reason(format!("{detail} ({} ms)", took.as_millis()))
        }
        Event::FenceCheck { ok: false, ref detail, .. } => {
            fence("device-failed").reason(format!("{detail}: fencing the peer would fail"))
        }
        Event::FenceOperator { never_heard } => fence("operator-needed").reason(if never_heard {
            format!("{peer} was never heard since this start: run tandem fenced {peer} once it is off")
        } else {
            format!("manual fencing: power {peer} off, then run tandem fenced {peer}")
        }),
    })
}

/// The peer's state under heartbeat's protocol, in the words of tandem's (`up` for heartbeat's
/// `up` and `active`).
fn hb_peer_state(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Up | NodeStatus::Active => "up",
        NodeStatus::Dead => "dead",
        NodeStatus::Init => "init",
        NodeStatus::Other => "other",
    }
}

/// The heartbeat-protocol core's events (`protocol heartbeat`, `--ha-d`): the same names as
/// tandem's core gives its own; engine notices other than a late peer are log lines only.
fn hb_notice(cfg: &Config, ev: &HbEvent) -> Option<Notice> {
    let peer = cfg.peer_name();
    let (g, r) = (|g: usize| GroupId(g), |r: usize| ResId(r));
    Some(match *ev {
        HbEvent::LocalStatus(s) => Notice::new(Kind::Node, cfg.local_name(), s.name()),
        HbEvent::Peer { old, new } => Notice::new(Kind::Peer, peer, hb_peer_state(new))
            .previous(hb_peer_state(old))
            .reason(format!("heartbeat status {} (was {})", new.name(), old.name())),
        // Which groups the peer holds: told by the groups' own events where it matters here.
        HbEvent::PeerHolds(_) => return None,
        HbEvent::Notice { ref notice, .. } => match notice {
            HbNotice::LateHeartbeat(d) => Notice::new(Kind::Peer, peer, "late")
                .previous("up")
                .reason(format!("a status message {} ms after the previous one", d.as_millis())),
            HbNotice::ReturnedAfterPartition => Notice::new(Kind::Peer, peer, "restarted")
                .reason("back after a partition: every resource is given up and the cluster starts over"),
            _ => return None,
        },
        HbEvent::Group { group, from, to } => Notice::of_group(cfg, g(group), to.name()).previous(from.name()),
        HbEvent::FoundRunning { group, resource } => Notice::of_resource(cfg, g(group), r(resource), "running")
            .reason("found at start-up: the whole group is stopped before anything else"),
        HbEvent::StartFailed { group, resource } => {
            Notice::of_resource(cfg, g(group), r(resource), "start-failed").previous("starting")
        }
        HbEvent::StandbyAfterFailure { group, .. } => {
            Notice::of_group(cfg, g(group), "standby").reason("after its failed start")
        }
        HbEvent::StopFailed { group, resource, attempts } => {
            Notice::of_resource(cfg, g(group), r(resource), "stop-failed")
                .previous("stopping")
                .reason(format!("{attempts} attempts: held here as failed"))
        }
        HbEvent::StopNotLsb { group, resource } => Notice::of_resource(cfg, g(group), r(resource), "stopped")
            .reason("the stop failed but status says stopped (not LSB-compliant)"),
        HbEvent::ShutdownDone => Notice::new(Kind::Node, cfg.local_name(), "stopped").reason("clean shutdown done"),
        HbEvent::Restarted { generation } => Notice::new(Kind::Node, cfg.local_name(), "restarted")
            .reason(format!("after a healed partition, generation {generation}")),
        HbEvent::Unsupported(what) => Notice::new(Kind::Node, cfg.local_name(), "unsupported").reason(what),
    })
}

/// The state names of an answer to the peer's outdate request (drbd.conf(5) codes).
fn outdate_state(code: u8) -> &'static str {
    match code {
        fence::PEER_INCONSISTENT => "inconsistent",
        fence::PEER_OUTDATED => "outdated",
        fence::PEER_UNREACHABLE => "unreachable",
        fence::PEER_PRIMARY => "primary",
        fence::PEER_FENCED => "fenced",
        _ => "failed",
    }
}

fn cluster_notice(cfg: &Config, ev: &cluster::LogEvent) -> Notice {
    use cluster::LogEvent as L;
    match *ev {
        L::Node { from, to } => Notice::new(Kind::Node, cfg.local_name(), to.name()).previous(from.name()),
        L::Group { group, from, to } => Notice::of_group(cfg, group, to.name()).previous(from.name()),
        L::FoundRunning { group, resource, status_error } => {
            Notice::of_resource(cfg, group, resource, if status_error { "unknown" } else { "running" })
                .reason("found at start-up: the whole group is stopped before anything else")
        }
        L::Release { group, reason } => Notice::of_group(cfg, group, "releasing").reason(reason.name()),
        L::TakeoverPeerDead { group } => {
            Notice::of_group(cfg, group, "taking-over").reason(format!("the peer {} is dead", cfg.peer_name()))
        }
        L::StartFailed { group, resource } => Notice::of_resource(cfg, group, resource, "start-failed")
            .previous("starting")
            .reason(format!("the group is stopped here and offered to {}", cfg.peer_name())),
        L::StopFailed { group, resource, attempt, retrying } => {
            let then = if retrying { "retrying" } else { "the group stays here until an operator resolves it" };
            Notice::of_resource(cfg, group, resource, "stop-failed")
                .previous("stopping")
                .reason(format!("attempt {attempt}: {then}"))
        }
        L::StandbyRefused { group } => {
            Notice::of_group(cfg, group, "standby-refused").reason("the peer is not up: nobody could take the group")
        }
        L::TakeoverRefused { group, state } => {
            Notice::of_group(cfg, group, "takeover-refused").reason(format!("local state {}", state.name()))
        }
        L::Takeover { group } => Notice::of_group(cfg, group, "takeover").reason("operator"),
        L::Standby { group } => Notice::of_group(cfg, group, "standby").reason("operator"),
        L::StandbyCleared { group } => {
            Notice::of_group(cfg, group, "standby-cleared").reason(format!("{} gave the group up", cfg.peer_name()))
        }
        L::ExitBlocked { group } => Notice::new(Kind::Node, cfg.local_name(), "exit-blocked")
            .group(cfg, group)
            .reason(format!("group {} failed to stop", group_name(cfg, group))),
        L::MonitorFailed { group, resource, error } => Notice::of_resource(cfg, group, resource, "monitor-failed")
            .previous("running")
            .reason(if error { "its status failed" } else { "not running" }),
        L::Restart { group, resource, restart, limit } => Notice::of_resource(cfg, group, resource, "restarting")
            .reason(format!("restart {restart} of {limit} within restart_window")),
        L::RestartLimit { group } => Notice::of_group(cfg, group, "restart-limit")
            .reason(format!("stopped and marked failed here; offered to {}", cfg.peer_name())),
        L::NowhereToRun { group } => Notice::of_group(cfg, group, "nowhere-to-run")
            .reason(format!("failed here, and {} cannot run it either", cfg.peer_name())),
        L::FailureExpired { group } => Notice::of_group(cfg, group, "failure-expired").reason("failure_timeout"),
        L::Cleanup { group } => Notice::of_group(cfg, group, "cleanup").reason("operator"),
    }
}

/// Why `p` cannot be run as a hook, if it cannot (`check-config` warns too).
pub fn executable(p: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err("not an executable file".to_string()),
        Err(e) => Err(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)).desc().to_string()),
    }
}

/// `unix_ms` as RFC 3339 in UTC with milliseconds: `2026-03-01T12:34:56.789Z`.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, unix_ms % 1000)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (400-year eras of 146097 days; years counted from March so the leap day is last).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// What one hook has done, for `status --prometheus`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookStats {
    /// Runs started.
    pub runs: u64,
    /// Runs that failed: non-zero exit, killed, past the deadline, or could not start.
    pub failures: u64,
    /// Notices dropped because the queue was full.
    pub dropped: u64,
}

/// How a hook's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Ok,
    /// Why it failed, and the tail of its output.
    Failed {
        why: String,
        output: String,
    },
}

struct Hook {
    /// Stable across reloads; the runner's tag carries it.
    id: u32,
    path: PathBuf,
    queue: VecDeque<Notice>,
    running: bool,
    /// Dropped since the last report.
    burst: u64,
    /// When drops were last reported.
    reported: Option<Instant>,
    stats: HookStats,
    rl_fail: RateLimit,
}

/// The hooks, their queues and what runs. See the module documentation.
pub struct Notifier {
    hooks: Vec<Hook>,
    next_id: u32,
    timeout: Duration,
    /// Notices queued per hook at most.
    queue: usize,
}

impl Notifier {
    /// Hooks at `paths`, each run with a deadline of `timeout`, each with up to `queue`
    /// notices waiting.
    pub fn new(paths: &[PathBuf], timeout: Duration, queue: usize) -> Notifier {
        let mut n = Notifier { hooks: Vec::new(), next_id: 0, timeout, queue: queue.max(1) };
        n.configure(paths, timeout);
        n
    }

    /// Sets the hooks (start-up, reload). A hook whose path stays keeps its queue, its run
    /// and its counters; a removed hook's queue is dropped and its run's end is ignored.
    pub fn configure(&mut self, paths: &[PathBuf], timeout: Duration) {
        self.timeout = timeout;
        let mut old = std::mem::take(&mut self.hooks);
        for p in paths {
            if let Some(i) = old.iter().position(|h| &h.path == p) {
                self.hooks.push(old.swap_remove(i));
                continue;
            }
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            self.hooks.push(Hook {
                id,
                path: p.clone(),
                queue: VecDeque::new(),
                running: false,
                burst: 0,
                reported: None,
                stats: HookStats::default(),
                rl_fail: RateLimit::new(Duration::from_secs(60), 3),
            });
        }
    }

    /// The deadline of one run.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// Queues `n` for every hook; a full queue drops it (counted, reported once per burst).
    pub fn push(&mut self, n: &Notice) {
        for h in &mut self.hooks {
            if h.queue.len() >= self.queue {
                h.burst += 1;
                h.stats.dropped += 1;
                continue;
            }
            h.queue.push_back(n.clone());
        }
    }

    /// The next run to start: a hook with nothing running and a notice queued (marked
    /// running). `None` when there is none. Drops before are reported (rate-limited).
    pub fn take(&mut self, now: Instant) -> Option<(u32, PathBuf, Notice)> {
        let h = self.hooks.iter_mut().find(|h| !h.running && !h.queue.is_empty())?;
        let n = h.queue.pop_front()?;
        h.running = true;
        h.stats.runs += 1;
        if h.reported.is_none_or(|t| now.saturating_since(t) >= DROP_REPORT) {
            report_burst(h, self.queue, now);
        }
        Some((h.id, h.path.clone(), n))
    }

    /// Hook `id`'s run ended (a removed hook's end is ignored). Failures are logged,
    /// rate-limited per hook; nothing is retried.
    pub fn finished(&mut self, now: Instant, id: u32, end: RunEnd) {
        let Some(h) = self.hooks.iter_mut().find(|h| h.id == id) else { return };
        h.running = false;
        if let RunEnd::Failed { why, output } = end {
            h.stats.failures += 1;
            if let Some(s) = h.rl_fail.allow(now) {
                let out = output.trim_end();
                let out = if out.is_empty() { String::new() } else { format!("; it said: {}", last_line(out)) };
                let sup = if s > 0 { format!(" ({s} similar messages suppressed)") } else { String::new() };
                warn!("notify {}: {why}{out}{sup}", h.path.display());
            }
        }
        if h.queue.is_empty() {
            report_burst(h, self.queue, now);
        }
    }

    /// Something is queued or running.
    pub fn busy(&self) -> bool {
        self.hooks.iter().any(|h| h.running || !h.queue.is_empty())
    }

    /// Each hook: (path, counters, notices queued).
    pub fn hooks(&self) -> impl Iterator<Item = (&Path, HookStats, usize)> + '_ {
        self.hooks.iter().map(|h| (h.path.as_path(), h.stats, h.queue.len()))
    }
}

/// Reports the notices a hook dropped since the last report.
fn report_burst(h: &mut Hook, queue: usize, now: Instant) {
    if h.burst > 0 {
        h.reported = Some(now);
        warn!(
            "notify {}: {} event(s) dropped: its queue of {queue} was full (the hook is slower than the transitions)",
            h.path.display(),
            h.burst
        );
        h.burst = 0;
    }
}

fn last_line(s: &str) -> &str {
    s.lines().next_back().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{LogEvent, ReleaseReason};
    use crate::daemon::hbcore::GState;
    use crate::hb::proto::{GroupMask, RscSet};
    use crate::wire::{GroupState, NodeState};

    fn cfg() -> Config {
        let text = "cluster c\nnode alpha beta\nauthkey /k\nucast eth0 192.0.2.2\nkeepalive 100ms\n\
                    deadtime 500ms\ngroup web alpha ip::192.0.2.50/24/eth0 script::/etc/www.sh\n";
        let mut c = crate::config::parse_str(Path::new("/t.conf"), text).unwrap().config;
        c.local = 0;
        c
    }

    /// An index per variant (the match has no wildcard: a new variant does not compile
    /// until it is listed here, and then [`samples`] must hold one).
    fn variant(e: &Event) -> usize {
        match e {
            Event::Cluster(c) => match c {
                LogEvent::Node { .. } => 0,
                LogEvent::Group { .. } => 1,
                LogEvent::FoundRunning { .. } => 2,
                LogEvent::Release { .. } => 3,
                LogEvent::TakeoverPeerDead { .. } => 4,
                LogEvent::StartFailed { .. } => 5,
                LogEvent::StopFailed { .. } => 6,
                LogEvent::StandbyRefused { .. } => 7,
                LogEvent::TakeoverRefused { .. } => 8,
                LogEvent::Takeover { .. } => 9,
                LogEvent::Standby { .. } => 10,
                LogEvent::StandbyCleared { .. } => 11,
                LogEvent::ExitBlocked { .. } => 12,
                LogEvent::MonitorFailed { .. } => 46,
                LogEvent::Restart { .. } => 47,
                LogEvent::RestartLimit { .. } => 48,
                LogEvent::NowhereToRun { .. } => 49,
                LogEvent::FailureExpired { .. } => 50,
                LogEvent::Cleanup { .. } => 51,
            },
            Event::LinkUp(_) => 13,
            Event::LinkDown(_) => 14,
            Event::PeerLate => 15,
            Event::PeerRestarted => 16,
            Event::Peer { .. } => 17,
            Event::KeepaliveMismatch { .. } => 18,
            Event::OutdateAnswered { .. } => 19,
            Event::OutdateBusy { .. } => 20,
            Event::PeerLevel { .. } => 21,
            Event::BadExtension => 22,
            Event::ConfigDigest { .. } => 23,
            Event::FenceScheduled { .. } => 24,
            Event::FenceStarted { .. } => 25,
            Event::FenceFailed { .. } => 26,
            Event::FenceConfirmed { .. } => 27,
            Event::FenceCancelled => 28,
            Event::PeerLeft => 52,
            Event::FenceCheck { .. } => 29,
            Event::FenceOperator { .. } => 30,
            Event::ReachWorse { .. } => 31,
            Event::Isolated { .. } => 32,
            Event::Hb(h) => match h {
                HbEvent::LocalStatus(_) => 33,
                HbEvent::Peer { .. } => 34,
                HbEvent::PeerHolds(_) => 35,
                HbEvent::Notice { .. } => 36,
                HbEvent::Group { .. } => 37,
                HbEvent::FoundRunning { .. } => 38,
                HbEvent::StartFailed { .. } => 39,
                HbEvent::StandbyAfterFailure { .. } => 40,
                HbEvent::StopFailed { .. } => 41,
                HbEvent::StopNotLsb { .. } => 42,
                HbEvent::ShutdownDone => 43,
                HbEvent::Restarted { .. } => 44,
                HbEvent::Unsupported(_) => 45,
            },
        }
    }
    const VARIANTS: usize = 53;

    fn samples() -> Vec<Event> {
        let (g, r) = (GroupId(0), ResId(1));
        let c = |e| Event::Cluster(e);
        vec![
            c(LogEvent::Node { from: NodeState::Init, to: NodeState::Active }),
            c(LogEvent::Group { group: g, from: GroupState::Starting, to: GroupState::Started }),
            c(LogEvent::FoundRunning { group: g, resource: r, status_error: false }),
            c(LogEvent::Release { group: g, reason: ReleaseReason::Failback }),
            c(LogEvent::TakeoverPeerDead { group: g }),
            c(LogEvent::StartFailed { group: g, resource: r }),
            c(LogEvent::StopFailed { group: g, resource: r, attempt: 2, retrying: true }),
            c(LogEvent::StandbyRefused { group: g }),
            c(LogEvent::TakeoverRefused { group: g, state: GroupState::FailedToStop }),
            c(LogEvent::Takeover { group: g }),
            c(LogEvent::Standby { group: g }),
            c(LogEvent::StandbyCleared { group: g }),
            c(LogEvent::ExitBlocked { group: g }),
            c(LogEvent::MonitorFailed { group: g, resource: r, error: false }),
            c(LogEvent::Restart { group: g, resource: r, restart: 1, limit: 3 }),
            c(LogEvent::RestartLimit { group: g }),
            c(LogEvent::NowhereToRun { group: g }),
            c(LogEvent::FailureExpired { group: g }),
            c(LogEvent::Cleanup { group: g }),
            Event::LinkUp(0),
            Event::LinkDown(0),
            Event::PeerLate,
            Event::PeerRestarted,
            Event::Peer { from: PeerState::Up, to: PeerState::Dead, silent_ms: Some(612) },
            Event::KeepaliveMismatch { peer_ms: 200 },
            Event::OutdateAnswered { resource: "r0".into(), code: 4 },
            Event::OutdateBusy { resource: "r0".into() },
            Event::PeerLevel { level: 2 },
            Event::BadExtension,
            Event::ConfigDigest { ours: 1, theirs: 2, same: false },
            Event::FenceScheduled { delay: Duration::from_secs(2) },
            Event::FenceStarted { attempt: 1 },
            Event::FenceFailed {
                attempt: 1,
                detail: "no answer".into(),
                repeated: false,
                retry_in: Some(Duration::from_secs(1)),
            },
            Event::FenceConfirmed { took: Duration::from_millis(420), detail: "chassis off".into() },
            Event::FenceCancelled,
            Event::PeerLeft,
            Event::FenceCheck { ok: false, detail: "timeout".into(), took: Duration::from_secs(1), changed: true },
            Event::FenceOperator { never_heard: true },
            Event::ReachWorse { worse: true },
            Event::Isolated { stops: true },
            Event::Hb(HbEvent::LocalStatus(NodeStatus::Active)),
            Event::Hb(HbEvent::Peer { old: NodeStatus::Active, new: NodeStatus::Dead }),
            Event::Hb(HbEvent::Notice { notice: HbNotice::LateHeartbeat(Duration::from_millis(700)), suppressed: 0 }),
            Event::Hb(HbEvent::Group { group: 0, from: GState::Starting, to: GState::Started }),
            Event::Hb(HbEvent::FoundRunning { group: 0, resource: 1 }),
            Event::Hb(HbEvent::StartFailed { group: 0, resource: 1 }),
            Event::Hb(HbEvent::StandbyAfterFailure { group: 0, set: RscSet::ALL }),
            Event::Hb(HbEvent::StopFailed { group: 0, resource: 0, attempts: 10 }),
            Event::Hb(HbEvent::StopNotLsb { group: 0, resource: 1 }),
            Event::Hb(HbEvent::ShutdownDone),
            Event::Hb(HbEvent::Restarted { generation: 7 }),
            Event::Hb(HbEvent::Unsupported("a reboot")),
        ]
    }

    /// Events that repeat what was told, or are log lines only: the hooks do not hear them.
    fn untold() -> Vec<Event> {
        vec![
            Event::FenceFailed { attempt: 2, detail: "no answer".into(), repeated: true, retry_in: None },
            Event::FenceCheck { ok: true, detail: "on".into(), took: Duration::ZERO, changed: false },
            Event::Hb(HbEvent::PeerHolds(GroupMask(1))),
            Event::Hb(HbEvent::Notice { notice: HbNotice::NoPacketsMissing, suppressed: 0 }),
        ]
    }

    fn link(i: usize) -> String {
        format!("ucast eth0 192.0.2.{}", i + 2)
    }

    #[test]
    fn every_event_variant_maps_to_a_name_and_a_state() {
        let cfg = cfg();
        let mut seen = [false; VARIANTS];
        for e in samples() {
            seen[variant(&e)] = true;
            let n = notice(&cfg, &link, &e).unwrap_or_else(|| panic!("{e:?} is not told"));
            assert!(!n.subject.is_empty(), "{e:?}: no subject");
            assert!(!n.state.is_empty(), "{e:?}: no state");
            assert!(
                n.state.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{e:?}: state {:?} is not a script-friendly word",
                n.state
            );
            let names = ["node", "peer", "link", "group", "resource", "fence", "outdate"];
            assert!(names.contains(&n.event.name()), "{e:?}");
            // What the event names in its subject is also in its own variable.
            match n.event {
                Kind::Group => assert_eq!(n.group, n.subject),
                Kind::Resource | Kind::Outdate => assert_eq!(n.resource, n.subject),
                Kind::Link => assert_eq!(n.link, n.subject),
                Kind::Peer => assert_eq!(n.subject, "beta"),
                Kind::Node => assert_eq!(n.subject, "alpha"),
                Kind::Fence => assert_eq!(n.subject, "beta"),
            }
        }
        for e in untold() {
            seen[variant(&e)] = true;
            assert!(notice(&cfg, &link, &e).is_none(), "{e:?} is told");
        }
        let missing: Vec<usize> = (0..VARIANTS).filter(|&i| !seen[i]).collect();
        assert!(missing.is_empty(), "variants without a sample: {missing:?}");
    }

    #[test]
    fn fields_arguments_and_environment() {
        let cfg = cfg();
        let group =
            Event::Cluster(LogEvent::Group { group: GroupId(0), from: GroupState::Starting, to: GroupState::Started });
        let mut n = notice(&cfg, &link, &group).unwrap();
        n.time_ms = 1234;
        n.unix_ms = 1_767_225_600_042; // 2026-01-01T00:00:00.042Z
        assert_eq!(n.args(), ["group", "web", "started", "starting", ""]);
        let env = n.env(&cfg);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(get("TANDEM_EVENT"), "group");
        assert_eq!(get("TANDEM_GROUP"), "web");
        assert_eq!(get("TANDEM_STATE"), "started");
        assert_eq!(get("TANDEM_PREVIOUS"), "starting");
        assert_eq!(get("TANDEM_RESOURCE"), "");
        assert_eq!(get("TANDEM_NODE"), "alpha");
        assert_eq!(get("TANDEM_PEER"), "beta");
        assert_eq!(get("TANDEM_CLUSTER"), "c");
        assert_eq!(get("TANDEM_TIME"), "2026-01-01T00:00:00.042Z");
        assert_eq!(get("TANDEM_TIME_MS"), "1234");
        assert_eq!(env.len(), 12);

        let dead = notice(&cfg, &link, &Event::Peer { from: PeerState::Up, to: PeerState::Dead, silent_ms: Some(612) })
            .unwrap();
        assert_eq!(dead.args(), ["peer", "beta", "dead", "up", "silent for 612 ms"]);
        let down = notice(&cfg, &link, &Event::LinkDown(1)).unwrap();
        assert_eq!(down.args(), ["link", "ucast eth0 192.0.2.3", "down", "up", "nothing received for 500ms"]);
        let failed =
            notice(&cfg, &link, &Event::Cluster(LogEvent::StartFailed { group: GroupId(0), resource: ResId(1) }))
                .unwrap();
        assert_eq!(failed.resource, "script::/etc/www.sh");
        assert_eq!(failed.group, "web");
        assert_eq!(failed.state, "start-failed");
        let started = op_notice(&cfg, GroupId(0), ResId(0), cluster::Op::Start, true).unwrap();
        assert_eq!(started.args(), ["resource", "ip::192.0.2.50/24/eth0", "started", "stopped", ""]);
        assert!(op_notice(&cfg, GroupId(0), ResId(0), cluster::Op::Status, true).is_none());
        assert!(op_notice(&cfg, GroupId(0), ResId(0), cluster::Op::Start, false).is_none(), "the core tells failures");
    }

    #[test]
    fn a_queue_holds_a_whole_failover() {
        let mut c = cfg();
        assert_eq!(queue_size(&c), QUEUE);
        let g = c.groups[0].clone();
        c.groups = vec![g; 25];
        assert_eq!(queue_size(&c), 16 + 4 * 25 + 2 * 50);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(rfc3339_ms(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_709_251_199_000), "2024-02-29T23:59:59.000Z");
        // Every day of four centuries round-trips through the calendar.
        let mut prev = (1969, 12, 31);
        for days in 0..146_097 {
            let (y, m, d) = civil_from_days(days);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!([next_day, next_month, next_year].contains(&(y, m, d)), "{days}: {prev:?} -> {:?}", (y, m, d));
            prev = (y, m, d);
        }
        assert_eq!(prev, (2369, 12, 31));
    }

    fn n(state: &'static str) -> Notice {
        Notice::new(Kind::Peer, "beta", state)
    }

    #[test]
    fn one_run_per_hook_in_order_bounded_queue_no_retry() {
        let paths = [PathBuf::from("/a"), PathBuf::from("/b")];
        let mut q = Notifier::new(&paths, Duration::from_secs(10), QUEUE);
        q.push(&n("up"));
        q.push(&n("dead"));
        let (ida, pa, first) = q.take(Instant::ZERO).unwrap();
        assert_eq!((pa.as_path(), first.state), (Path::new("/a"), "up"));
        let (idb, pb, firstb) = q.take(Instant::ZERO).unwrap();
        assert_eq!((pb.as_path(), firstb.state), (Path::new("/b"), "up"));
        assert!(q.take(Instant::ZERO).is_none(), "one run in flight per hook");
        q.finished(Instant::ZERO, ida, RunEnd::Failed { why: "exit 1".into(), output: String::new() });
        let (ida2, _, second) = q.take(Instant::ZERO).unwrap();
        assert_eq!((ida2, second.state), (ida, "dead"), "no retry: the next event runs");
        q.finished(Instant::ZERO, ida, RunEnd::Ok);
        q.finished(Instant::ZERO, idb, RunEnd::Ok);
        let (_, _, secondb) = q.take(Instant::ZERO).unwrap();
        assert_eq!(secondb.state, "dead");
        assert!(q.busy());

        // A burst bigger than the queue: the excess is counted and dropped.
        for _ in 0..(QUEUE + 10) {
            q.push(&n("late"));
        }
        let stats: Vec<_> = q.hooks().collect();
        assert_eq!(stats[0].2, QUEUE);
        assert_eq!(stats[0].1, HookStats { runs: 2, failures: 1, dropped: 10 });
        assert_eq!(stats[1].1, HookStats { runs: 2, failures: 0, dropped: 10 });
    }

    #[test]
    fn drops_are_reported_when_the_hook_takes_again_at_most_every_five_seconds() {
        let mut q = Notifier::new(&[PathBuf::from("/a")], Duration::from_secs(1), 2);
        let t = |s: u64| Instant::from_millis(s * 1000);
        for _ in 0..5 {
            q.push(&n("up"));
        }
        assert_eq!(q.hooks[0].burst, 3);
        let (id, _, _) = q.take(t(1)).unwrap();
        assert_eq!((q.hooks[0].burst, q.hooks[0].reported), (0, Some(t(1))), "reported at the next run");
        q.push(&n("up"));
        q.push(&n("up"));
        assert_eq!(q.hooks[0].burst, 1);
        q.finished(t(2), id, RunEnd::Ok);
        let (id, _, _) = q.take(t(2)).unwrap();
        assert_eq!(q.hooks[0].burst, 1, "not again within 5 s");
        q.finished(t(3), id, RunEnd::Ok);
        let (id, _, _) = q.take(t(3)).unwrap();
        q.finished(t(4), id, RunEnd::Ok);
        assert_eq!((q.hooks[0].burst, q.hooks[0].reported), (0, Some(t(4))), "reported when the queue is empty");
        assert_eq!(q.hooks[0].stats.dropped, 4);
    }

    #[test]
    fn reload_keeps_hooks_that_stay() {
        let mut q = Notifier::new(&[PathBuf::from("/a"), PathBuf::from("/b")], Duration::from_secs(10), 8);
        q.push(&n("up"));
        let (ida, _, _) = q.take(Instant::ZERO).unwrap();
        q.configure(&[PathBuf::from("/c"), PathBuf::from("/a")], Duration::from_secs(3));
        assert_eq!(q.timeout(), Duration::from_secs(3));
        let hooks: Vec<_> = q.hooks().map(|(p, s, n)| (p.to_path_buf(), s.runs, n)).collect();
        assert_eq!(hooks, [(PathBuf::from("/c"), 0, 0), (PathBuf::from("/a"), 1, 0)]);
        assert!(q.busy(), "a's run is still in flight");
        q.finished(Instant::ZERO, ida, RunEnd::Ok);
        assert!(!q.busy());
        q.finished(Instant::ZERO, 999, RunEnd::Ok); // a removed hook's end: ignored
    }
}
