//! What the daemon tells the outside world, glued to the loop: notify hooks (`notify.rs`),
//! the heartbeat delay measurement (`jitter.rs`), the Prometheus view (`metrics.rs`) and the
//! metrics responder (`http.rs`). The loop calls in at a few places (an event, a finished
//! operation, a heartbeat sent, the end of each iteration, the responder's fds); all of it is
//! here, so that the loop's file holds only those calls.

use std::net::SocketAddr;
use std::path::PathBuf;

use log::{debug, error, info, warn};

use crate::agent::runner::{Done, ExitKind, Spawn};
use crate::cluster::{self, GroupId, Op, OpResult, ResId};
use crate::config::{Config, LinkConfig};
use crate::time::{self, Instant};

use super::core::Core;
use super::hbcore::GState;
use super::http::{self, Responder};
use super::io::{Event, ReplyCode};
use super::jitter::Jitter;
use super::metrics::{
    FenceView, GroupView, HookView, LinkView, MetricsView, PeerView, PingView, ResourceView, WatchdogView,
};
use super::notify::{self, Notice, Notifier, RunEnd};
use super::{pool, status, Daemon, Job, Source};

/// The outside world's share of the daemon's state.
pub(super) struct Outside {
    notifier: Notifier,
    /// Hooks the notify pool has room for (two slots each, fixed at start).
    hook_capacity: usize,
    jitter: Jitter,
    http: Option<Responder>,
    /// Responder fds found ready; served at the end of the iteration, after what was due
    /// (heartbeats) has gone out.
    http_ready: Vec<http::Slot>,
    /// The core's next deadline (a heartbeat) is too near to serve the responder first: its
    /// fds are left out of the poll set until that deadline is handled.
    http_paused: bool,
    /// The metrics rendered in this iteration (its `now`), for every request it answers.
    rendered: Option<(Instant, String)>,
    /// Resource notices of operations that finished while the core's outputs were carried
    /// out: told after those outputs' events (an inline start ends before the group's
    /// "starting" is carried out, but happened after it).
    held: Vec<Notice>,
    /// Per group, per resource: operations run here, `[op][ok, failed]`.
    ops: Vec<Vec<[[u64; 2]; 3]>>,
    /// When the daemon started: monotonic, and wall clock in ms since the epoch.
    started: Instant,
    start_unix_ms: u64,
}

/// The responder is not served when the core's next deadline is nearer than this.
const HTTP_GUARD: crate::time::Duration = crate::time::Duration::from_millis(5);

/// Wall-clock milliseconds since the epoch (0 if the clock is before it).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The notify pool's size: two slots per hook, so a hook whose child is stuck in
/// uninterruptible sleep (it keeps its slot) does not stop the others.
pub(super) fn notify_pool(cfg: &Config) -> usize {
    2 * cfg.notify.len()
}

/// One link's row of the metrics.
fn link_view<'a>(
    cfg: &Config,
    i: usize,
    l: &'a dyn crate::link::Link,
    up: bool,
    last_seen: Option<f64>,
) -> LinkView<'a> {
    let lc = cfg.links.get(i);
    LinkView {
        name: l.name(),
        medium: match lc {
            Some(LinkConfig::Ucast { .. }) => "ucast",
            Some(LinkConfig::Bcast { .. }) => "bcast",
            Some(LinkConfig::Mcast { .. }) => "mcast",
            Some(LinkConfig::Serial { .. }) => "serial",
            None => "",
        },
        up,
        last_seen,
        stats: *l.stats(),
        serial_present: matches!(lc, Some(LinkConfig::Serial { .. })).then(|| l.fd().is_some()),
    }
}

/// Binds the responder; an address that cannot be bound is an error in the log, and the
/// daemon runs without it (a monitoring port is not worth a cluster node).
fn bind(addr: SocketAddr) -> Option<Responder> {
    match Responder::bind(addr) {
        Ok(r) => {
            info!("metrics: serving GET /metrics on http://{}/metrics", r.addr());
            Some(r)
        }
        Err(e) => {
            error!("metrics_listen {addr}: {e}; running without the metrics responder (SIGHUP retries)");
            None
        }
    }
}

impl Outside {
    pub(super) fn new(cfg: &Config, now: Instant) -> Outside {
        let hooks: Vec<PathBuf> = cfg.notify.iter().map(|h| h.path.clone()).collect();
        for p in &hooks {
            if let Err(why) = notify::executable(p) {
                warn!("notify {}: {why}", p.display());
            }
        }
        Outside {
            notifier: Notifier::new(&hooks, cfg.notify_timeout, notify::queue_size(cfg)),
            hook_capacity: cfg.notify.len(),
            jitter: Jitter::default(),
            http: cfg.metrics_listen.and_then(bind),
            http_ready: Vec::with_capacity(http::MAX_CONNS + 1),
            http_paused: false,
            rendered: None,
            held: Vec::new(),
            ops: cfg.groups.iter().map(|g| vec![[[0; 2]; 3]; g.resources.len()]).collect(),
            started: now,
            start_unix_ms: unix_ms(),
        }
    }
}

impl Daemon {
    /// A core event: queued for every hook (they run at the end of the loop's iteration).
    pub(super) fn tell_event(&mut self, now: Instant, e: &Event) {
        if self.outside.notifier.is_empty() {
            return;
        }
        let links = &self.links;
        let name = |i: usize| links.get(i).map(|l| l.name().to_string()).unwrap_or_default();
        if let Some(n) = notify::notice(&self.cfg, &name, e) {
            self.queue_notice(now, n);
        }
    }

    /// An operation finished here: counted, and a successful start or stop told to the hooks.
    pub(super) fn tell_op(&mut self, now: Instant, g: GroupId, r: ResId, op: Op, result: OpResult) {
        let failed = result == OpResult::Failed;
        let k = match op {
            Op::Start => 0,
            Op::Stop => 1,
            Op::Status => 2,
        };
        if let Some(c) = self
            .outside
            .ops
            .get_mut(g.0)
            .and_then(|v| v.get_mut(r.0))
            .and_then(|c| c.get_mut(k))
            .and_then(|c| c.get_mut(usize::from(failed)))
        {
            *c += 1;
        }
        if self.outside.notifier.is_empty() {
            return;
        }
        if let Some(mut n) = notify::op_notice(&self.cfg, g, r, op, !failed) {
            self.stamp(now, &mut n);
            self.outside.held.push(n);
        }
    }

    /// The core's outputs of one round are carried out: the resource notices held meanwhile
    /// follow their events.
    pub(super) fn release_op_notices(&mut self) {
        for n in std::mem::take(&mut self.outside.held) {
            self.outside.notifier.push(&n);
        }
    }

    fn queue_notice(&mut self, now: Instant, mut n: Notice) {
        self.stamp(now, &mut n);
        self.outside.notifier.push(&n);
    }

    fn stamp(&self, now: Instant, n: &mut Notice) {
        n.time_ms = now.saturating_since(self.outside.started).as_millis() as u64;
        n.unix_ms = unix_ms();
    }

    /// A heartbeat went out on every link: how late was it?
    pub(super) fn heartbeat_sent(&mut self) {
        // Only tandem's core sends heartbeats as messages (heartbeat's protocol sends raw frames).
        if let Some(n) = self.node.tandem() {
            self.outside.jitter.sent(time::now(), n.membership().next_heartbeat());
        }
    }

    /// Starts the queued hook runs that may run (one per hook at a time).
    pub(super) fn pump_hooks(&mut self, now: Instant) {
        let timeout = self.outside.notifier.timeout();
        while let Some((id, path, n)) = self.outside.notifier.take(now) {
            let mut argv = Vec::with_capacity(6);
            argv.push(path.display().to_string());
            argv.extend(n.args().iter().map(|a| a.to_string()));
            let env = n.env(&self.cfg);
            let tag = Job::Notify { hook: id }.tag();
            let how = Spawn::ExecEnv { argv: &argv, env: &env };
            if let Err(e) = self.runner.spawn_in(now, pool::NOTIFY, tag, how, timeout) {
                let end = RunEnd::Failed { why: format!("cannot start: {e}"), output: String::new() };
                self.outside.notifier.finished(now, id, end);
            }
        }
    }

    /// Hook `id`'s child ended.
    pub(super) fn hook_done(&mut self, now: Instant, id: u32, d: &Done) {
        let why = match d.status {
            ExitKind::Code(0) => None,
            ExitKind::Code(c) => Some(format!("exit status {c}")),
            ExitKind::Signal(s) => Some(format!("killed by signal {s}")),
            ExitKind::TimedOut => Some(format!(
                "still running after notify_timeout ({}): killed",
                time::fmt_duration(self.outside.notifier.timeout())
            )),
        };
        let end = match why {
            None => {
                for line in d.output.lines() {
                    debug!("notify: {line}");
                }
                RunEnd::Ok
            }
            Some(why) => RunEnd::Failed { why, output: d.output.clone() },
        };
        self.outside.notifier.finished(now, id, end);
    }

    /// Exit path: lets the hooks tell what is queued, for at most `notify_timeout` in all,
    /// then the ones still running are killed with the other children. A shutdown signal
    /// ends the wait, and a second one before the exit (every child killed already) skips it.
    pub(super) fn drain_hooks(&mut self) {
        if !self.outside.notifier.busy() || self.term_signals > 1 {
            return;
        }
        let start = time::now();
        let end = start + self.outside.notifier.timeout();
        info!("waiting up to {} for notify hooks to finish", time::fmt_duration(self.outside.notifier.timeout()));
        loop {
            let now = time::now();
            self.pump_hooks(now);
            if !self.outside.notifier.busy() {
                return;
            }
            if now >= end {
                warn!("notify hooks still running at exit are killed");
                return;
            }
            self.pollfds.clear();
            self.child_fds.clear();
            self.runner.fds(&mut self.child_fds);
            let fd = |fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            self.pollfds.push(fd(std::os::fd::AsRawFd::as_raw_fd(&self.signals.rx)));
            for &(f, _) in &self.child_fds {
                self.pollfds.push(fd(f));
            }
            let until = self.runner.poll_at().map_or(end, |t| t.min(end));
            let ms = i32::try_from(now.millis_until_ceil(until).min(1000)).unwrap_or(1000);
            let _ = crate::sys::process::poll(&mut self.pollfds, ms);
            let now = time::now();
            if self.pollfds.first().is_some_and(|p| p.revents != 0) && self.signals.take().0 {
                warn!("shutdown signal: not waiting for the notify hooks");
                return;
            }
            for i in 1..self.pollfds.len() {
                if let Some(p) = self.pollfds.get(i).filter(|p| p.revents != 0).copied() {
                    self.runner.on_ready(now, p.fd);
                }
            }
            self.done.clear();
            self.runner.collect(now, &mut self.done);
            let done = std::mem::take(&mut self.done);
            for d in &done {
                if let Some(Job::Notify { hook }) = Job::from_tag(d.tag) {
                    self.hook_done(now, hook, d);
                }
            }
            self.done = done;
        }
    }

    /// Reload: the new hooks and timeout (as many hooks as the pool has room for), and the
    /// responder's address when `metrics_listen` changed (or is to be retried).
    pub(super) fn reload_outside(&mut self, new: &Config) {
        let cap = self.outside.hook_capacity;
        if new.notify.len() > cap {
            error!(
                "notify: {} hooks configured, the daemon started with {cap}: only the first {cap} run; restart to \
                 run them all",
                new.notify.len()
            );
        }
        let hooks: Vec<PathBuf> = new.notify.iter().take(cap).map(|h| h.path.clone()).collect();
        for p in &hooks {
            if let Err(why) = notify::executable(p) {
                warn!("notify {}: {why}", p.display());
            }
        }
        self.outside.notifier.configure(&hooks, new.notify_timeout);
        let running = self.outside.http.as_ref().map(Responder::addr);
        if new.metrics_listen != self.cfg.metrics_listen || (new.metrics_listen.is_some() && running.is_none()) {
            match new.metrics_listen {
                Some(a) if running == Some(a) => {}
                Some(a) => {
                    self.outside.http = None;
                    self.outside.http = bind(a);
                }
                None => {
                    if let Some(r) = self.outside.http.take() {
                        info!("metrics: no longer serving on {}", r.addr());
                    }
                }
            }
        }
    }

    /// `status --prometheus --listen ADDR:PORT`: serve on this address from now on (until
    /// the daemon restarts, or a reload changes `metrics_listen`).
    pub(super) fn metrics_listen(&mut self, addr: &str) -> (ReplyCode, String) {
        let a = match crate::config::raw::listen_addr(addr) {
            Ok(a) => a,
            Err(m) => return (ReplyCode::Usage, format!("--listen: {m}\n")),
        };
        if let Some(r) = &self.outside.http {
            if r.addr() == a {
                return (ReplyCode::Ok, format!("already serving GET /metrics on http://{}/metrics\n", r.addr()));
            }
        }
        match Responder::bind(a) {
            Ok(r) => {
                let text = format!(
                    "serving GET /metrics on http://{}/metrics until the daemon restarts (metrics_listen in the \
                     configuration makes it permanent)\n",
                    r.addr()
                );
                if let Some(old) = self.outside.http.replace(r) {
                    info!("metrics: moved from {} to {}", old.addr(), a);
                } else {
                    info!("metrics: serving GET /metrics on http://{a}/metrics (asked on the control socket)");
                }
                (ReplyCode::Ok, text)
            }
            Err(e) => (ReplyCode::Failed, format!("cannot listen on {a}: {e}\n")),
        }
    }

    /// The responder's fds, appended to the poll set (none while it waits for a deadline).
    pub(super) fn push_http_fds(&mut self) {
        let Some(r) = &self.outside.http else { return };
        if self.outside.http_paused {
            return;
        }
        let (pollfds, sources) = (&mut self.pollfds, &mut self.sources);
        r.fds(|fd, events, slot| {
            pollfds.push(libc::pollfd { fd, events, revents: 0 });
            sources.push(Source::Http(slot));
        });
    }

    pub(super) fn http_poll_at(&self) -> Option<Instant> {
        self.outside.http.as_ref().and_then(Responder::poll_at)
    }

    /// A responder fd is ready: served at the end of the iteration ([`Daemon::outside_timers`]).
    pub(super) fn on_http(&mut self, slot: http::Slot) {
        if self.outside.http_ready.len() < self.outside.http_ready.capacity() {
            self.outside.http_ready.push(slot);
        }
    }

    /// Serves the responder's ready fds. Every request answered in one iteration gets the
    /// same rendering. When the core's next deadline (a heartbeat, most often) is nearer than
    /// [`HTTP_GUARD`] (or a quarter keepalive), the responder waits until it is handled:
    /// serving a burst of clients costs a few milliseconds.
    fn serve_http(&mut self, now: Instant) {
        if let Some(r) = self.outside.http.as_mut() {
            r.expire(now);
        }
        let guard = HTTP_GUARD.min(self.cfg.keepalive / 4);
        self.outside.http_paused = self.node.poll_at().saturating_since(now) < guard;
        if self.outside.http_paused {
            // The fds are polled again (level-triggered) once the deadline is handled.
            self.outside.http_ready.clear();
            return;
        }
        let mut ready = std::mem::take(&mut self.outside.http_ready);
        for slot in ready.drain(..) {
            let Some(r) = self.outside.http.as_mut() else { break };
            match slot {
                http::Slot::Listener => r.accept(now),
                http::Slot::Conn(i) => {
                    if r.on_ready(i) {
                        if self.outside.rendered.as_ref().is_none_or(|(t, _)| *t != now) {
                            self.outside.rendered = Some((now, self.metrics_text(now)));
                        }
                        if let (Some(r), Some((_, body))) = (self.outside.http.as_mut(), &self.outside.rendered) {
                            r.answer(i, 200, body);
                        }
                    }
                }
            }
        }
        self.outside.http_ready = ready;
        self.outside.rendered = None;
    }

    /// The end of an iteration, after the heartbeat that was due went out: the metrics
    /// responder, and the hook runs that may start.
    pub(super) fn outside_timers(&mut self, now: Instant) {
        self.serve_http(now);
        self.pump_hooks(now);
    }

    /// `status --prometheus`, and `GET /metrics`, from whichever core runs.
    pub(super) fn metrics_text(&self, now: Instant) -> String {
        let cfg = &self.cfg;
        let ago = |t: Option<Instant>| t.map(|t| now.saturating_since(t).as_secs_f64());
        let hooks: Vec<(String, notify::HookStats, usize)> =
            self.outside.notifier.hooks().map(|(p, s, q)| (p.display().to_string(), s, q)).collect();
        // What each core knows of the peer, the links and the groups.
        let resources = |gi: usize| -> Vec<ResourceView<'_>> {
            cfg.groups
                .get(gi)
                .map(|g| {
                    g.resources
                        .iter()
                        .enumerate()
                        .map(|(ri, r)| ResourceView {
                            name: &r.text,
                            kind: r.spec.kind().name(),
                            ops: self.outside.ops.get(gi).and_then(|v| v.get(ri)).copied().unwrap_or_default(),
                            monitor: self
                                .node
                                .tandem()
                                .and_then(|n| {
                                    n.cluster().res_health(crate::cluster::GroupId(gi), crate::cluster::ResId(ri))
                                })
                                .filter(|h| h.monitor.is_some())
                                .map(|h| super::metrics::MonitorView {
                                    ok: h.last_check.is_none_or(|(_, ok)| ok),
                                    failures: h.failures_total,
                                    last_check: ago(h.last_check.map(|(t, _)| t)),
                                }),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let preferred = |gi: usize| {
            cfg.groups.get(gi).and_then(|g| cfg.nodes.get(usize::from(g.preferred))).map(String::as_str).unwrap_or("")
        };
        let (peer, links, groups) = match &self.node {
            Core::Tandem(n) => {
                let m = n.membership();
                let ext = n.peer_ext();
                let peer = PeerView {
                    name: cfg.peer_name(),
                    state: m.peer_state().name(),
                    last_seen: ago(m.last_seen()),
                    protocol_level: ext.map(|e| e.level),
                    same_config: ext.and_then(|e| e.config_digest).map(|d| d == cfg.digest()),
                };
                let links: Vec<LinkView<'_>> = self
                    .links
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let st = m.link(i);
                        link_view(cfg, i, l.as_ref(), st.is_some_and(|s| s.up), ago(st.and_then(|s| s.last_seen)))
                    })
                    .collect();
                let owner = |o: cluster::Owner| match o {
                    cluster::Owner::Local => cfg.local_name(),
                    cluster::Owner::Peer => cfg.peer_name(),
                    cluster::Owner::None => "none",
                };
                let groups: Vec<GroupView<'_>> = cfg
                    .groups
                    .iter()
                    .enumerate()
                    .map(|(gi, g)| {
                        let v = n.cluster().group_view(GroupId(gi));
                        GroupView {
                            name: &g.name,
                            preferred: preferred(gi),
                            owner: owner(v.owner),
                            state: status::group_state_name(&v),
                            failed_here: status::failed_here(&v),
                            standby: v.standby,
                            pinned: v.pinned,
                            resources: resources(gi),
                        }
                    })
                    .collect();
                (peer, links, groups)
            }
            Core::Heartbeat(h) => {
                let e = h.engine();
                let peer = PeerView {
                    name: cfg.peer_name(),
                    state: self.node.peer_state().name(),
                    last_seen: ago(h.last_heard()),
                    protocol_level: None,
                    same_config: None,
                };
                let links: Vec<LinkView<'_>> = self
                    .links
                    .iter()
                    .enumerate()
                    .map(|(i, l)| link_view(cfg, i, l.as_ref(), e.link_up(i), ago(h.link_last_rx(i))))
                    .collect();
                let groups: Vec<GroupView<'_>> = cfg
                    .groups
                    .iter()
                    .enumerate()
                    .map(|(gi, g)| {
                        let st = h.group_state(gi);
                        let here =
                            matches!(st, GState::Starting | GState::Started | GState::Stopping | GState::StopFailed);
                        let (owner, state) = if here {
                            (cfg.local_name(), st.name())
                        } else if h.peer_holds().contains(gi) {
                            (cfg.peer_name(), "started")
                        } else {
                            ("none", if h.start_failed(gi) { "failed" } else { "stopped" })
                        };
                        GroupView {
                            name: &g.name,
                            preferred: preferred(gi),
                            owner,
                            state,
                            failed_here: h.start_failed(gi) || st == GState::StopFailed,
                            standby: false,
                            pinned: false,
                            resources: resources(gi),
                        }
                    })
                    .collect();
                (peer, links, groups)
            }
        };
        let tandem = self.node.tandem();
        MetricsView {
            version: env!("CARGO_PKG_VERSION"),
            cluster: &cfg.cluster,
            node: cfg.local_name(),
            node_state: self.node.node_state().name(),
            generation: self.generation,
            start_time: self.outside.start_unix_ms as f64 / 1000.0,
            peer,
            links,
            groups,
            fence: match self.node.heartbeat() {
                Some(h) => {
                    cfg.peer_stonith().filter(|_| h.fence_method() != super::hbcore::PeerFence::None).map(|st| {
                        let (attempts, confirmed) = h.fence_counts();
                        FenceView {
                            node: cfg.peer_name(),
                            method: st.method.name(),
                            state: h.fence_state().name(),
                            attempts,
                            confirmed,
                            last: h.fence_last().map(|(ok, took, _)| (ok, took.as_secs_f64())),
                            device: None,
                        }
                    })
                }
                None => cfg.peer_stonith().zip(tandem).map(|(st, n)| {
                    let f = n.fencing();
                    let (attempts, confirmed) = f.counts();
                    let last = |l: Option<&super::fencing::Last>| l.map(|l| (l.ok, l.took.as_secs_f64()));
                    FenceView {
                        node: cfg.peer_name(),
                        method: st.method.name(),
                        state: f.state().name(),
                        attempts,
                        confirmed,
                        last: last(f.last()),
                        device: last(f.last_check()),
                    }
                }),
            },
            ping: self.node.partition().filter(|p| !p.targets().is_empty()).map(|p| {
                let t = p.targets();
                PingView {
                    reach: status::reach_name(p.reach(now)),
                    up: t.count(now),
                    peer_up: p.peer_reach().filter(|r| r.known).map(|r| r.count),
                    fewer_than_peer: p.worse(),
                    targets: t
                        .targets()
                        .iter()
                        .map(|x| {
                            (x.addr.to_string(), t.is_up(x, now), ago(x.last_reply), x.rtt.map(|d| d.as_secs_f64()))
                        })
                        .collect(),
                }
            }),
            watchdog: self.dog.as_ref().map(|d| WatchdogView {
                device: d.path.to_string_lossy(),
                timeout_s: d.dev.timeout_s,
                petting: d.petting && d.healthy,
                healthy: d.healthy,
            }),
            heartbeats_sent: self.counters.heartbeats_sent,
            jitter: &self.outside.jitter,
            hooks: hooks.iter().map(|(p, s, q)| HookView { path: p, stats: *s, queued: *q }).collect(),
            http: self.outside.http.as_ref().map(Responder::stats),
            stuck_children: self.runner.stuck(),
        }
        .render()
    }
}
