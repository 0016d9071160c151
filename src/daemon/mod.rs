//! The daemon: one poll(2) loop around a pure core.
//!
//! - `node.rs`: the core (membership, cluster, heartbeat de-duplication, outdate
//!   bookkeeping), driven by `handle(now, input) -> outputs`; the simulation drives it too.
//! - `mod.rs` (this file): the fds (links, control socket, signal pipe, children) and the
//!   poll dispatch; it turns readiness into inputs and outputs into I/O.
//! - `build.rs` (construction from the config), `jobs.rs` (the runner's children: resource
//!   operations, fencing, outdate answers, replay marks), `requests.rs` (the control
//!   socket), `alarms.rs` (the hardware watchdog, the authentication alarm).
//! - `status.rs` (rendering), `events.rs` (log lines), `garp.rs` (gratuitous ARPs),
//!   `outdate.rs` (the fence-peer sub-protocol), `reload.rs` (what SIGHUP may change),
//!   `startup.rs` (detach, pidfile).
//! - `outside.rs`: what the outside world is told: notify hooks (`notify.rs`), the
//!   heartbeat delay (`jitter.rs`), Prometheus metrics (`metrics.rs`) and their HTTP
//!   responder (`http.rs`).
//!
//! Nothing here blocks except `poll`, whose timeout is the nearest deadline rounded up.

mod alarms;
mod build;
pub mod core;
mod events;
pub mod fencing;
mod garp;
pub mod hbcore;
mod hbevents;
mod hbmode;
pub mod http;
pub mod io;
pub mod jitter;
mod jobs;
pub mod metrics;
pub mod node;
pub mod notify;
mod outdate;
mod outside;
pub mod partition;
mod pinger;
pub mod reload;
mod requests;
mod startup;
pub mod status;

#[cfg(test)]
mod sim;

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::{debug, error, info, warn};

use crate::agent::drbd::fence;
use crate::agent::runner::{self, Done, Runner};
use crate::agent::Agent;
use crate::cluster::{GroupId, Op, OpResult, ResId};
use crate::config::{Config, LinkConfig};
use crate::ctl::server::Server;
use crate::link::{Link, RxClock};
use crate::logging::RateLimit;
use crate::membership::PeerState;
use crate::time::{self, Instant};
use crate::wire::auth::Codec;
use crate::wire::{MsgKind, Repr, WireError};

use alarms::{AuthAlarm, Dog};
use build::timing;
pub use build::{build_agents, inline_budget, node_setup, watchdog_period};
use garp::Garp;
pub use io::ReplyCode;
use io::{Input, Msg, Output};
use jobs::{pool, Job};
use pinger::Pinger;
pub use startup::main;

/// Largest wire packet we send or accept.
pub const MAX_PACKET: usize = 1024;
/// Most packets decoded per link per wakeup before the loop moves on.
const RX_BATCH: usize = 64;
/// Recent transitions kept for `status`.
const TRANSITIONS: usize = 16;

pub const DEFAULT_CONFIG: &str = "/etc/tandem/tandem.conf";
pub const DEFAULT_SOCKET: &str = "/run/tandem/tandem.sock";
pub const DEFAULT_STATEDIR: &str = "/var/lib/tandem";

/// Where the daemon's files live (command line over config over defaults).
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub node: Option<String>,
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub pidfile: PathBuf,
    pub foreground: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            config: PathBuf::from(DEFAULT_CONFIG),
            node: None,
            socket: None,
            state_dir: None,
            pidfile: PathBuf::from("/run/tandem/tandem.pid"),
            foreground: false,
        }
    }
}

pub fn socket_path(opts: &Options, cfg: Option<&Config>) -> PathBuf {
    opts.socket.clone().or_else(|| cfg.and_then(|c| c.socket.clone())).unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Errors that stop the daemon from starting.
#[derive(Debug)]
pub enum DaemonError {
    Config(Vec<crate::config::ConfigError>),
    Setup { what: String, detail: String },
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Config(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            DaemonError::Setup { what, detail } => write!(f, "{what}: {detail}"),
        }
    }
}

impl std::error::Error for DaemonError {}

fn setup(what: impl Into<String>, detail: impl std::fmt::Display) -> DaemonError {
    DaemonError::Setup { what: what.into(), detail: detail.to_string() }
}

/// What one poll slot stands for.
#[derive(Debug, Clone, Copy)]
enum Source {
    Signal,
    Listener,
    Conn(usize),
    Link(usize),
    Child,
    /// The metrics responder.
    Http(http::Slot),
    Ping,
}

/// An input the loop owes the core (results that arrive while outputs are carried out).
#[derive(Debug)]
enum Pending {
    Op { group: GroupId, resource: ResId, op: Op, result: OpResult },
    Outdate { id: usize, code: u8 },
    Fence { attempt: u32, ok: bool, detail: String },
    FenceCheck { id: u32, ok: bool, detail: String },
}

/// Counters for tests and status.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub heartbeats_sent: u64,
    pub packets_received: u64,
    pub iterations: u64,
}

/// The signal pipe (signal-hook): the pipe only wakes the loop, the flags say which arrived.
struct Signals {
    rx: UnixStream,
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Signals, DaemonError> {
        let (rx, tx) = UnixStream::pair().map_err(|e| setup("signal pipe", e))?;
        rx.set_nonblocking(true).map_err(|e| setup("signal pipe", e))?;
        tx.set_nonblocking(true).map_err(|e| setup("signal pipe", e))?;
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [
            (signal_hook::consts::SIGTERM, &term),
            (signal_hook::consts::SIGINT, &term),
            (signal_hook::consts::SIGHUP, &hup),
        ] {
            signal_hook::flag::register(sig, Arc::clone(flag)).map_err(|e| setup("signal handler", e))?;
            let tx = tx.try_clone().map_err(|e| setup("signal pipe", e))?;
            signal_hook::low_level::pipe::register(sig, tx).map_err(|e| setup("signal handler", e))?;
        }
        Ok(Signals { rx, term, hup })
    }

    /// Drains the pipe; returns (term, hup).
    fn take(&self) -> (bool, bool) {
        let mut buf = [0u8; 16];
        while let Ok(n) = std::io::Read::read(&mut &self.rx, &mut buf) {
            if n == 0 {
                break;
            }
        }
        (self.term.swap(false, Ordering::SeqCst), self.hup.swap(false, Ordering::SeqCst))
    }
}

pub struct Daemon {
    cfg: Config,
    opts: Options,
    statedir: PathBuf,
    generation: u64,
    /// A peer mark to store once the child storing the previous one is done.
    mark_pending: Option<(u64, u64)>,
    codec: Codec,
    links: Vec<Box<dyn Link>>,
    /// tandem's core, or heartbeat's (one loop for both: `core.rs`).
    node: core::Core,
    agents: Vec<Vec<Box<dyn Agent>>>,
    runner: Runner,
    ctl: Server,
    signals: Signals,
    garp: Garp,
    started: Instant,
    counters: Counters,
    // Reused buffers: steady state allocates nothing.
    pollfds: Vec<libc::pollfd>,
    sources: Vec<Source>,
    out: Vec<Output>,
    pending: Vec<Pending>,
    done: Vec<Done>,
    child_fds: Vec<(RawFd, u64)>,
    conn_fds: Vec<(RawFd, bool, usize)>,
    /// Packets read in this wakeup: (link, arrival, packet), fed to the core oldest first.
    rx: Vec<(usize, Instant, Repr)>,
    /// Links with input in this wakeup.
    ready: Vec<usize>,
    /// The previous wakeup (every packet still queued arrived after it).
    last_wake: Instant,
    tx_buf: Box<[u8; MAX_PACKET]>,
    repr: Box<Repr>,
    expired: Vec<usize>,
    transitions: Vec<String>,
    exit: bool,
    term_signals: u32,
    rl_bad: RateLimit,
    rl_send: RateLimit,
    rl_drop: RateLimit,
    rl_own_id: RateLimit,
    auth_alarms: Vec<AuthAlarm>,
    /// Notify hooks, metrics.
    outside: outside::Outside,
    pinger: Pinger,
    dog: Option<Dog>,
    /// Output::Exit was carried out (the groups are released): the watchdog may be disarmed.
    clean_exit: bool,
    /// Per group and resource: why its last monitor check failed (for `status`).
    failure_text: Vec<Vec<Option<String>>>,
}

impl Daemon {
    pub fn counters(&self) -> Counters {
        self.counters
    }
    pub fn peer_state(&self) -> PeerState {
        self.node.peer_state()
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn exited(&self) -> bool {
        self.exit
    }

    /// Logs a transition once and keeps it for `status`.
    fn note(&mut self, level: log::Level, now: Instant, msg: String) {
        log::log!(level, "{msg}");
        if self.transitions.len() >= TRANSITIONS {
            self.transitions.remove(0);
        }
        let ms = now.saturating_since(self.started).as_millis();
        self.transitions.push(format!("+{ms}ms {msg}"));
    }

    /// Starts the state machines (resource probes); call once before [`Daemon::step`].
    pub fn begin(&mut self) {
        let now = time::now();
        self.feed(now, Input::Tick);
    }

    /// Runs the loop until a clean exit. Returns the process exit code.
    pub fn run(&mut self) -> i32 {
        self.begin();
        while !self.exit {
            if let Err(e) = self.step() {
                error!("poll failed: {e}; exiting");
                return 1;
            }
        }
        if let Some(d) = self.dog.as_mut() {
            if self.clean_exit {
                d.dev.disarm();
                info!("watchdog {} disarmed", d.path.display());
            } else {
                error!(
                    "exiting without releasing every group: watchdog {} stays armed; this node resets",
                    d.path.display()
                );
            }
        }
        self.drain_hooks();
        0
    }

    /// One loop iteration: wait for the nearest deadline or input, then handle everything due.
    pub fn step(&mut self) -> Result<(), nix::errno::Errno> {
        let now = time::now();
        let deadline = self.poll_at();
        let timeout = now.millis_until_ceil(deadline).min(60_000);
        self.build_pollfds();
        match crate::sys::process::poll(&mut self.pollfds, i32::try_from(timeout).unwrap_or(60_000)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        self.counters.iterations += 1;
        // What the log file or stderr could not take before (never blocks).
        log::logger().flush();
        let now = time::now();
        let clock = RxClock { now, since: self.last_wake, realtime_offset_us: time::realtime_offset_us() };
        self.last_wake = now;
        let work_start = now;
        // Heartbeats first, oldest first, each at its arrival time.
        self.ready.clear();
        for (pfd, src) in self.pollfds.iter().zip(&self.sources) {
            if let Source::Link(l) = *src {
                if pfd.revents & !libc::POLLOUT != 0 {
                    self.ready.push(l);
                }
            }
        }
        self.receive(clock);
        for i in 0..self.pollfds.len() {
            let (Some(pfd), Some(src)) = (self.pollfds.get(i).copied(), self.sources.get(i).copied()) else {
                continue;
            };
            if pfd.revents == 0 {
                continue;
            }
            match src {
                Source::Signal => self.on_signal(now),
                Source::Listener => self.ctl.accept(now),
                Source::Conn(c) => {
                    if pfd.revents & libc::POLLOUT != 0 {
                        self.ctl.on_writable(c);
                    } else if let Some(inc) = self.ctl.on_readable(c) {
                        self.on_request(now, inc);
                    }
                }
                Source::Link(l) => {
                    if pfd.revents & libc::POLLOUT != 0 {
                        if let Some(link) = self.links.get_mut(l) {
                            link.on_writable(now);
                        }
                    }
                }
                Source::Child => self.runner.on_ready(now, pfd.fd),
                Source::Http(slot) => self.on_http(slot),
                Source::Ping => self.on_echo(now, pfd.fd),
            }
        }
        self.timers(now);
        let end = time::now();
        self.watchdog(end, end.saturating_since(work_start));
        Ok(())
    }

    /// Echo replies on a raw ICMP socket: those from a target (or probed address) whose
    /// index and source match go to the core.
    fn on_echo(&mut self, now: Instant, fd: RawFd) {
        let mut got: [(u16, u16); 32] = [(0, 0); 32];
        let mut n = 0;
        let partition = self.node.partition();
        self.pinger.recv(fd, &mut |src, e| {
            if partition.and_then(|p| p.addr_of(e.target)) == Some(src) && n < got.len() {
                got[n] = (e.target, e.seq);
                n += 1;
            }
        });
        for &(index, seq) in got.iter().take(n) {
            self.feed(now, Input::PingReply { index, seq });
        }
    }

    fn poll_at(&self) -> Instant {
        let mut t = self.node.poll_at();
        let dog = self.dog.as_ref().map(|d| d.next_pet);
        for x in [self.runner.poll_at(), self.ctl.poll_at(), self.garp.poll_at(), dog, self.http_poll_at()]
            .into_iter()
            .flatten()
        {
            t = t.min(x);
        }
        for l in &self.links {
            if let Some(x) = l.poll_at() {
                t = t.min(x);
            }
        }
        t
    }

    fn build_pollfds(&mut self) {
        self.pollfds.clear();
        self.sources.clear();
        let push = |fd: RawFd, ev: i16, s: Source, pf: &mut Vec<libc::pollfd>, src: &mut Vec<Source>| {
            pf.push(libc::pollfd { fd, events: ev, revents: 0 });
            src.push(s);
        };
        push(self.signals.rx.as_raw_fd(), libc::POLLIN, Source::Signal, &mut self.pollfds, &mut self.sources);
        push(self.ctl.listen_fd(), libc::POLLIN, Source::Listener, &mut self.pollfds, &mut self.sources);
        self.conn_fds.clear();
        self.ctl.conn_fds(&mut self.conn_fds);
        for &(fd, w, i) in &self.conn_fds {
            let ev = if w { libc::POLLOUT } else { libc::POLLIN };
            push(fd, ev, Source::Conn(i), &mut self.pollfds, &mut self.sources);
        }
        for (i, l) in self.links.iter().enumerate() {
            if let Some(fd) = l.fd() {
                let ev = if l.wants_write() { libc::POLLIN | libc::POLLOUT } else { libc::POLLIN };
                push(fd, ev, Source::Link(i), &mut self.pollfds, &mut self.sources);
            }
        }
        for fd in self.pinger.fds() {
            self.pollfds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
            self.sources.push(Source::Ping);
        }
        self.child_fds.clear();
        self.runner.fds(&mut self.child_fds);
        for &(fd, _) in &self.child_fds {
            push(fd, libc::POLLIN, Source::Child, &mut self.pollfds, &mut self.sources);
        }
        self.push_http_fds();
    }

    fn on_signal(&mut self, now: Instant) {
        let (term, hup) = self.signals.take();
        if hup {
            self.reload(now);
        }
        if term {
            self.term_signals += 1;
            if self.term_signals == 1 {
                self.note(log::Level::Info, now, "shutdown requested: releasing local groups".to_string());
                self.feed(now, Input::Shutdown);
            } else {
                warn!("second shutdown signal: exiting now, killing resource children");
                self.runner.kill_all();
                self.exit = true;
            }
        }
    }

    fn reload(&mut self, now: Instant) {
        if self.node.is_heartbeat() {
            error!("reload refused: heartbeat's protocol is not reconfigured live; restart the daemon");
            return;
        }
        let node = Some(self.cfg.local_name().to_string());
        let new = match crate::load::load(&self.opts.config, node.as_deref()) {
            Ok((c, _)) => c,
            Err(errs) => {
                for e in errs {
                    error!("reload refused: {e}");
                }
                return;
            }
        };
        let fixed = reload::diff(&self.cfg, &new);
        if !fixed.is_empty() {
            error!("reload refused: changing {} needs a restart; running configuration unchanged", fixed.join(", "));
            return;
        }
        self.garp.set(new.garp_count, new.garp_interval);
        for a in self.agents.iter_mut().flatten() {
            a.set_inline_budget(inline_budget(&new));
        }
        if new.key != self.cfg.key || new.accept_key != self.cfg.accept_key {
            self.codec.set_keys(&new.key, new.accept_key.as_deref());
            let accept = if new.accept_key.is_some() { " (and accepting authkey_accept)" } else { "" };
            self.note(log::Level::Info, now, format!("authentication key replaced{accept}"));
        }
        self.reload_outside(&new);
        let config_digest = new.digest();
        let (auto_failback, failure) = (new.auto_failback, new.failure);
        self.feed(now, Input::Reload { timing: timing(&new), auto_failback, failure, config_digest });
        self.cfg = new;
        self.note(log::Level::Info, now, "configuration reloaded".to_string());
    }

    /// Reads and decodes everything pending on the links in `self.ready`, and feeds it to
    /// the core in arrival order, each packet at its arrival time.
    fn receive(&mut self, clock: RxClock) {
        let mut k = 0;
        while let Some(&l) = self.ready.get(k) {
            if self.node.is_heartbeat() {
                self.receive_raw(clock.now, l);
            } else {
                self.collect(clock, l);
            }
            k += 1;
        }
        // Stable insertion sort by arrival: a handful of packets, in place, no allocation.
        for i in 1..self.rx.len() {
            let mut j = i;
            while j > 0 && self.rx.get(j - 1).map(|e| e.1) > self.rx.get(j).map(|e| e.1) {
                self.rx.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut i = 0;
        while i < self.rx.len() {
            if let Some(&(link, at, repr)) = self.rx.get(i) {
                self.counters.packets_received += 1;
                self.feed(at, Input::Packet { link, repr: &repr });
            }
            i += 1;
        }
        self.rx.clear();
    }

    /// Reads and decodes everything pending on link `l` into `self.rx`.
    fn collect(&mut self, clock: RxClock, l: usize) {
        let now = clock.now;
        let Some(link) = self.links.get_mut(l) else { return };
        // Our own packets come back only on bcast/mcast links; with our node id on any
        // other link, they come from another daemon running under this node's name.
        let loops_back = matches!(self.cfg.links.get(l), Some(LinkConfig::Bcast { .. } | LinkConfig::Mcast { .. }));
        let local = self.cfg.local;
        let codec = &mut self.codec;
        let rx = &mut self.rx;
        let (mut ok, mut bad, mut dropped, mut bad_mac) = (0u64, 0u64, 0u64, 0u64);
        let mut last_err: Option<WireError> = None;
        let mut last_drop: Option<WireError> = None;
        let mut own_id: Option<u64> = None;
        let res = link.recv_timed(clock, &mut |pkt: &[u8], at: Instant| match codec.decode(pkt) {
            Ok(repr) => {
                ok += 1;
                if rx.len() < rx.capacity() {
                    rx.push((l, at, repr));
                } else {
                    dropped += 1;
                }
            }
            Err(e) => {
                match e {
                    WireError::BadMac => bad_mac += 1,
                    WireError::OwnIdElsewhere(g) => own_id = Some(g),
                    WireError::UnknownSender(s) if s == local && !loops_back => own_id = Some(0),
                    _ => {}
                }
                if e.is_bad() {
                    bad += 1;
                    last_err = Some(e);
                } else {
                    dropped += 1;
                    last_drop = Some(e);
                }
            }
        });
        let st = link.stats_mut();
        st.rx += ok;
        st.bad += bad;
        st.dropped += dropped;
        if let Err(e) = res {
            if let Some(s) = self.rl_bad.allow(now) {
                warn!("link {}: receive: {e} ({s} similar messages suppressed)", link.name());
            }
        }
        if let Some(e) = last_drop {
            if log::log_enabled!(log::Level::Debug) {
                if let Some(s) = self.rl_drop.allow(now) {
                    debug!("link {}: dropped packet: {e} ({s} similar messages suppressed)", link.name());
                }
            }
        }
        if let Some(e) = last_err {
            if let Some(s) = self.rl_bad.allow(now) {
                warn!("link {}: rejected packet: {e} ({s} similar messages suppressed)", link.name());
            }
        }
        if let Some(g) = own_id {
            if self.rl_own_id.allow(now).is_some() {
                let gen = if g == 0 { String::new() } else { format!(" (generation {g}, ours {})", self.generation) };
                error!(
                    "link {}: packets with this node's own name ({}) from another daemon{gen}: two nodes run as {}; \
                     check --node and uname -n on the other node",
                    link.name(),
                    self.cfg.local_name(),
                    self.cfg.local_name()
                );
            }
        }
        if self.auth_alarms.get_mut(l).is_some_and(|a| a.update(now, bad_mac, ok)) {
            error!(
                "link {}: {} packets in {} s failed authentication and none passed: do both nodes have the same \
                 authkey file?",
                link.name(),
                AuthAlarm::THRESHOLD,
                AuthAlarm::WINDOW.as_secs()
            );
        }
    }

    /// Feeds one input to the core and carries out everything that follows.
    fn feed(&mut self, now: Instant, input: Input<'_>) {
        self.node.handle(now, input, &mut self.out);
        self.settle(now);
    }

    /// Carries out the core's outputs; feeds back results that are known at once (inline
    /// operations, children that could not start) until nothing is left, then lets the core
    /// send the one heartbeat that is due.
    fn settle(&mut self, now: Instant) {
        for _round in 0..1000 {
            let mut out = std::mem::take(&mut self.out);
            for o in out.drain(..) {
                self.apply(now, o);
            }
            self.release_op_notices();
            // Nothing in `apply` pushes to `self.out`: give the buffer back.
            self.out = out;
            if self.pending.is_empty() {
                self.node.flush(now, &mut self.out);
                if self.out.is_empty() {
                    return;
                }
                continue;
            }
            let mut k = 0;
            while k < self.pending.len() {
                match self.pending.get(k) {
                    Some(&Pending::Op { group, resource, op, result }) => {
                        self.node.handle(now, Input::OpDone { group, resource, op, result }, &mut self.out)
                    }
                    Some(&Pending::Outdate { id, code }) => {
                        self.node.handle(now, Input::OutdateDone { id, code }, &mut self.out)
                    }
                    Some(Pending::Fence { attempt, ok, detail }) => {
                        let (attempt, ok, detail) = (*attempt, *ok, detail.clone());
                        self.node.handle(now, Input::FenceDone { attempt, ok, detail: &detail }, &mut self.out)
                    }
                    Some(Pending::FenceCheck { id, ok, detail }) => {
                        let (id, ok, detail) = (*id, *ok, detail.clone());
                        self.node.handle(now, Input::FenceCheckDone { id, ok, detail: &detail }, &mut self.out)
                    }
                    None => {}
                }
                k += 1;
            }
            self.pending.clear();
        }
        error!("internal: the core did not settle after 1000 rounds");
    }

    fn apply(&mut self, now: Instant, o: Output) {
        match o {
            Output::Send(m) => self.send(now, &m),
            Output::Run { group, resource, op } => self.run_op(now, group, resource, op),
            Output::SpawnOutdate { id, resource } => self.spawn_outdate(now, id, resource),
            Output::Reply { conn, code, text } => self.ctl.reply(conn, code.code(), &text),
            Output::Hold { conn, until } => self.ctl.extend(conn, until),
            Output::Fence { attempt } => {
                self.runner.kill_tags(Job::FENCE_CHECK, Job::FENCE_CHECK);
                self.spawn_fence(now, attempt)
            }
            Output::CancelFence => self.runner.kill_tags(Job::FENCE_MASK, Job::FENCE),
            Output::FenceCheck { id } => self.spawn_fence_check(now, id),
            Output::Ping { index, seq } => {
                if let Some(addr) = self.node.partition().and_then(|p| p.addr_of(index)) {
                    if let Err(e) = self.pinger.send(addr, index, seq) {
                        if let Some(s) = self.rl_send.allow(now) {
                            warn!("ping {addr}: send: {e} ({s} similar messages suppressed)");
                        }
                    }
                }
            }
            Output::SavePeerMark { generation, seq } => {
                self.mark_pending = Some((generation, seq));
                self.save_mark(now);
            }
            Output::Event(e) => {
                self.tell_event(now, &e);
                let line = events::describe(&self.cfg, &self.links, &e);
                if line.transition {
                    self.note(line.level, now, line.text);
                } else {
                    log::log!(line.level, "{}", line.text);
                }
            }
            Output::Exit => {
                self.note(log::Level::Info, now, "all groups released; exiting".to_string());
                self.exit = true;
                self.clean_exit = true;
            }
            Output::SendRaw { udp, serial } => self.transmit_raw(now, &udp, &serial),
            Output::SaveGeneration(g) => self.save_generation(now, g),
        }
    }

    fn send(&mut self, now: Instant, m: &Msg) {
        let heartbeat = *m == Msg::Heartbeat;
        let r = &mut *self.repr;
        match m {
            Msg::Heartbeat => {
                self.node.fill_heartbeat(r);
                self.counters.heartbeats_sent += 1;
            }
            Msg::OutdateRequest { resource, id } => {
                r.kind = MsgKind::OutdateRequest;
                r.node_state = self.node.node_state();
                r.n_groups = 0;
                // A peer of an older release reads the whole payload as the name: no id.
                let id = if self.node.peer_level() >= 3 { *id } else { 0 };
                let n = outdate::encode_request(resource, id, &mut r.payload);
                r.payload_len = u8::try_from(n).unwrap_or(0);
            }
            Msg::OutdateReply { resource, id, code } => {
                r.kind = MsgKind::OutdateReply;
                r.node_state = self.node.node_state();
                r.n_groups = 0;
                let n = outdate::encode_reply(resource, *id, *code, &mut r.payload);
                r.payload_len = u8::try_from(n).unwrap_or(0);
            }
        }
        self.transmit(now);
        if heartbeat {
            self.heartbeat_sent();
        }
    }

    fn res_text(&self, g: GroupId, r: ResId) -> &str {
        events::res_text(&self.cfg, g, r)
    }

    fn group_name(&self, g: GroupId) -> &str {
        events::group_name(&self.cfg, g)
    }

    fn timers(&mut self, now: Instant) {
        // Children first: their results may change what we advertise.
        self.done.clear();
        self.runner.collect(now, &mut self.done);
        let mut k = 0;
        while k < self.done.len() {
            let Some(d) = self.done.get(k) else { break };
            match Job::from_tag(d.tag) {
                Some(Job::Outdate { id }) => {
                    // Only the codes the child means count; a crash or a kill is "failed".
                    let code = match d.status {
                        runner::ExitKind::Code(c) => match u8::try_from(c) {
                            Ok(c @ (fence::PEER_INCONSISTENT | fence::PEER_OUTDATED | fence::PEER_PRIMARY)) => c,
                            _ => fence::PEER_FAILED,
                        },
                        _ => fence::PEER_FAILED,
                    };
                    let res = self.node.outdate_answering(id).unwrap_or("?");
                    for line in d.output.lines() {
                        info!("outdate {res}: {line}");
                    }
                    self.pending.push(Pending::Outdate { id, code });
                }
                Some(Job::Op { group, resource, op }) => {
                    let r = match self.agents.get(group.0).and_then(|g| g.get(resource.0)) {
                        Some(a) => a.judge(op, d),
                        None => runner::judge(runner::ExitRules::default(), op, d),
                    };
                    // What the child said (a script's output, a forked agent's log lines).
                    let (gname, text) = (self.group_name(group), self.res_text(group, resource));
                    for line in d.output.lines() {
                        if op == Op::Status {
                            debug!("group {gname}: {} {text}: {line}", op.name());
                        } else {
                            info!("group {gname}: {} {text}: {line}", op.name());
                        }
                    }
                    self.op_finished(now, group, resource, op, r);
                }
                Some(job @ (Job::Fence { .. } | Job::FenceCheck { .. })) => {
                    let ok = matches!(d.status, runner::ExitKind::Code(0));
                    let last = d.output.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                    let detail = match d.status {
                        runner::ExitKind::Code(_) => last.to_string(),
                        runner::ExitKind::TimedOut => format!("no result within fence_timeout: {last}"),
                        _ => format!("the fence child died: {last}"),
                    };
                    match job {
                        Job::FenceCheck { id } => self.pending.push(Pending::FenceCheck { id, ok, detail }),
                        Job::Fence { attempt } => self.pending.push(Pending::Fence { attempt, ok, detail }),
                        _ => {}
                    }
                }
                Some(Job::SaveMark) => {
                    if !matches!(d.status, runner::ExitKind::Code(0)) {
                        warn!("cannot store the peer's replay mark: {}", d.output.trim_end());
                    }
                    self.save_mark(now);
                }
                Some(Job::Notify { hook }) => {
                    let d = d.clone();
                    self.hook_done(now, hook, &d);
                }
                None => error!("internal: a child with unknown tag {} finished", d.tag),
            }
            k += 1;
        }
        self.done.clear();
        self.expired.clear();
        self.ctl.expire(now, &mut self.expired);
        let mut j = 0;
        while j < self.expired.len() {
            if let Some(&c) = self.expired.get(j) {
                self.node.handle(now, Input::ConnGone(c), &mut self.out);
            }
            j += 1;
        }
        self.feed(now, Input::Tick);

        for l in self.links.iter_mut() {
            if l.poll_at().is_some_and(|t| t <= now) {
                l.on_timer(now);
            }
        }
        self.garp.run_due(now);
        self.outside_timers(now);
    }

    /// Encodes `self.repr` and sends it on every link. Each link's copy is encoded
    /// separately, with its own sequence number: the receiver's replay window would drop a
    /// second copy of the same sequence number, and that link would never count as up.
    fn transmit(&mut self, now: Instant) {
        for l in self.links.iter_mut() {
            let len = match self.codec.encode(&mut self.repr, &mut self.tx_buf[..]) {
                Ok(n) => n,
                Err(e) => {
                    error!("internal: cannot encode packet: {e}");
                    return;
                }
            };
            let pkt = self.tx_buf.get(..len).unwrap_or(&[]);
            match l.send(now, pkt) {
                Ok(()) => l.stats_mut().tx += 1,
                Err(e) => {
                    l.stats_mut().tx_errors += 1;
                    if let Some(s) = self.rl_send.allow(now) {
                        warn!("link {}: send: {e} ({s} similar messages suppressed)", l.name());
                    }
                }
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.runner.kill_all();
    }
}
