//! The daemon: one poll(2) loop that feeds events to the pure state machines
//! (membership, cluster) and carries out their actions (send heartbeats, run resource
//! operations in children, announce addresses, answer the control socket).
//!
//! Nothing here blocks except `poll`, whose timeout is the nearest deadline rounded up.

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::{debug, error, info, warn};

use crate::agent::runner::{self, Done, Runner, Spawn};
use crate::agent::{self, ip::Announce, Agent, Exec, Op, Outcome};
use crate::cluster::{self, Cluster, GroupDef, GroupSel, Settings};
use crate::config::{Config, LinkConfig};
use crate::ctl::server::{Incoming, Server};
use crate::ctl::Request;
use crate::link::{serial::SerialLink, udp::UdpLink, Link};
use crate::logging::RateLimit;
use crate::membership::{self, Membership, PeerState, Timing};
use crate::time::{self, Duration, Instant};
use crate::wire::auth::Codec;
use crate::wire::{GroupState, GroupWire, MsgKind, NodeState, Repr, WireError, MAX_GROUPS, MAX_PAYLOAD};

/// Largest wire packet we send or accept.
pub const MAX_PACKET: usize = 1024;
/// Most packets decoded per link per wakeup before the loop moves on.
const RX_BATCH: usize = 64;
/// Resource children at once: each group runs at most one operation at a time, so the
/// runner's table (with its preallocated output buffers) is sized from the config.
fn max_children(cfg: &Config) -> usize {
    cfg.groups.len() + 2
}
/// How long `tandem fence-peer` waits for the peer's answer.
const OUTDATE_TIMEOUT: Duration = Duration::from_secs(10);
/// An outdate request arrives once per link: copies of the one just handled (same
/// resource, within this time) get the same answer without outdating again.
const OUTDATE_COPIES: Duration = Duration::from_secs(2);
/// Runner tag of the child answering a peer's outdate request (group ops use group << 32).
const OUTDATE_TAG: u64 = u64::MAX;

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
            config: PathBuf::from("/etc/tandem/tandem.conf"),
            node: None,
            socket: None,
            state_dir: None,
            pidfile: PathBuf::from("/run/tandem/tandem.pid"),
            foreground: false,
        }
    }
}

pub const DEFAULT_SOCKET: &str = "/run/tandem/tandem.sock";
pub const DEFAULT_STATEDIR: &str = "/var/lib/tandem";

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
}

/// An address being announced: the rest of its gratuitous ARPs / unsolicited NAs.
#[derive(Debug, Clone, Copy)]
struct AnnounceJob {
    group: usize,
    resource: usize,
    a: Announce,
    sent: u32,
    next: Instant,
}

/// A `tandem fence-peer` waiting for the peer's outdate answer.
struct OutdateWait {
    conn: usize,
    resource: String,
    deadline: Instant,
}

/// Counters for tests and status.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub heartbeats_sent: u64,
    pub packets_received: u64,
    pub iterations: u64,
}

pub struct Daemon {
    cfg: Config,
    opts: Options,
    generation: u64,
    codec: Codec,
    links: Vec<Box<dyn Link>>,
    membership: Membership,
    cluster: Cluster,
    agents: Vec<Vec<Box<dyn Agent>>>,
    runner: Runner,
    ctl: Server,
    sig_rx: UnixStream,
    sig_term: Arc<AtomicBool>,
    sig_hup: Arc<AtomicBool>,
    started: Instant,
    counters: Counters,
    // Reused buffers: steady state allocates nothing.
    pollfds: Vec<libc::pollfd>,
    sources: Vec<Source>,
    actions: Vec<cluster::Action>,
    actions_spare: Vec<cluster::Action>,
    op_results: Vec<(usize, usize, Op, cluster::OpResult)>,
    done: Vec<Done>,
    child_fds: Vec<(RawFd, u64)>,
    conn_fds: Vec<(RawFd, bool, usize)>,
    rx: Vec<(usize, Repr)>,
    tx_buf: Box<[u8; MAX_PACKET]>,
    repr: Box<Repr>,
    announces: Vec<AnnounceJob>,
    announcer: agent::ip::Announcer,
    expired: Vec<usize>,
    outdates: Vec<OutdateWait>,
    transitions: Vec<String>,
    send_now: bool,
    exit: bool,
    term_signals: u32,
    peer_keepalive_ms: u32,
    /// (generation, seq) of the newest heartbeat given to the cluster.
    last_state: Option<(u64, u64)>,
    /// The last outdate request handled: (resource, when, answer).
    last_outdate: Option<(String, Instant, u8)>,
    /// The resource whose outdate child is running, if any.
    outdate_running: Option<String>,
    rl_bad: RateLimit,
    rl_send: RateLimit,
    rl_drop: RateLimit,
}

fn group_sel(cfg: &Config, name: &str) -> Result<GroupSel, String> {
    if name == "all" {
        return Ok(GroupSel::All);
    }
    cfg.groups.iter().position(|g| g.name == name).map(GroupSel::One).ok_or_else(|| format!("no group named {name:?}"))
}

fn tag_of(group: usize, resource: usize, op: Op) -> u64 {
    let op = match op {
        Op::Start => 0u64,
        Op::Stop => 1,
        Op::Status => 2,
    };
    ((group as u64) << 32) | ((resource as u64) << 8) | op
}

fn untag(tag: u64) -> (usize, usize, Op) {
    let op = match tag & 0xff {
        0 => Op::Start,
        1 => Op::Stop,
        _ => Op::Status,
    };
    ((tag >> 32) as usize, ((tag >> 8) & 0xff_ffff) as usize, op)
}

/// Builds the agents for every group, refusing types not implemented yet.
pub fn build_agents(cfg: &Config) -> Result<Vec<Vec<Box<dyn Agent>>>, DaemonError> {
    let mut errs = Vec::new();
    let mut out = Vec::with_capacity(cfg.groups.len());
    for g in &cfg.groups {
        let mut v = Vec::with_capacity(g.resources.len());
        for r in &g.resources {
            match agent::build_or_broken(r, &cfg.timeouts) {
                Ok(a) => v.push(a),
                Err(e) => errs.push(crate::config::ConfigError {
                    file: cfg.file.clone(),
                    line: g.line,
                    msg: format!("group {}: resource {}: {e}", g.name, r.text),
                }),
            }
        }
        out.push(v);
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(DaemonError::Config(errs))
    }
}

fn open_links(cfg: &Config, now: Instant) -> Result<Vec<Box<dyn Link>>, DaemonError> {
    let mut links: Vec<Box<dyn Link>> = Vec::with_capacity(cfg.links.len());
    for l in &cfg.links {
        let name = l.name();
        let link: Box<dyn Link> = match l {
            LinkConfig::Serial { .. } => {
                Box::new(SerialLink::open(l, name.clone(), now).map_err(|e| setup(format!("link {name}"), e))?)
            }
            _ => Box::new(UdpLink::open(l, name.clone()).map_err(|e| setup(format!("link {name}"), e))?),
        };
        links.push(link);
    }
    if links.is_empty() {
        return Err(setup("links", "no heartbeat link is configured for this node"));
    }
    Ok(links)
}

impl Daemon {
    /// Sets up everything (generation, links, control socket, signals) without detaching.
    pub fn new(cfg: Config, opts: Options) -> Result<Daemon, DaemonError> {
        let now = time::now();
        let agents = build_agents(&cfg)?;
        let statedir =
            opts.state_dir.clone().or_else(|| cfg.statedir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_STATEDIR));
        let generation = crate::state::bump_generation(&statedir)
            .map_err(|e| setup(format!("state directory {}", statedir.display()), e))?;
        let links = open_links(&cfg, now)?;
        // Announcement sockets are bound now: binding one during a failover costs an RCU
        // grace period (~10-20 ms) before the first gratuitous ARP.
        let mut announcer = agent::ip::Announcer::new();
        for a in agents.iter().flatten() {
            if let Some(ifindex) = a.announce_iface() {
                if let Err(e) = announcer.prepare(ifindex) {
                    warn!("{}: {e} (will retry when announcing)", a.text());
                }
            }
        }
        let ctl = Server::bind(&socket_path(&opts, Some(&cfg))).map_err(|e| setup("control socket", e))?;

        let (sig_rx, sig_tx) = UnixStream::pair().map_err(|e| setup("signal pipe", e))?;
        sig_rx.set_nonblocking(true).map_err(|e| setup("signal pipe", e))?;
        sig_tx.set_nonblocking(true).map_err(|e| setup("signal pipe", e))?;
        let sig_term = Arc::new(AtomicBool::new(false));
        let sig_hup = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [
            (signal_hook::consts::SIGTERM, &sig_term),
            (signal_hook::consts::SIGINT, &sig_term),
            (signal_hook::consts::SIGHUP, &sig_hup),
        ] {
            signal_hook::flag::register(sig, Arc::clone(flag)).map_err(|e| setup("signal handler", e))?;
            let tx = sig_tx.try_clone().map_err(|e| setup("signal pipe", e))?;
            signal_hook::low_level::pipe::register(sig, tx).map_err(|e| setup("signal handler", e))?;
        }

        let timing =
            Timing { keepalive: cfg.keepalive, warntime: cfg.warntime, deadtime: cfg.deadtime, initdead: cfg.initdead };
        let membership = Membership::new(now, timing, links.len());
        let defs = cfg
            .groups
            .iter()
            .map(|g| GroupDef {
                name: g.name.clone(),
                preferred_is_local: g.preferred == cfg.local,
                n_resources: g.resources.len(),
            })
            .collect();
        let settings =
            Settings { auto_failback: cfg.auto_failback, stop_retries: 3, stop_retry_delay: Duration::from_secs(1) };
        let mut cluster = Cluster::new(now, defs, settings, generation);
        // After a clean stop, keep announcing until the peer has taken over (bounded).
        cluster.set_leave_linger((cfg.keepalive * 3).max(Duration::from_millis(300)));
        let codec = Codec::new(&cfg.key, &cfg.cluster, cfg.local, cfg.peer(), generation);
        let n_res: usize = cfg.groups.iter().map(|g| g.resources.len()).sum();
        let n_children = max_children(&cfg);
        let n_poll = 4 + links.len() + crate::ctl::server::MAX_CONNS + 2 * n_children;
        let n_links = links.len();
        info!(
            "tandem {} starting as node {} of cluster {} (generation {generation}, {} links, {} groups)",
            env!("CARGO_PKG_VERSION"),
            cfg.local_name(),
            cfg.cluster,
            n_links,
            cfg.groups.len()
        );
        Ok(Daemon {
            codec,
            links,
            membership,
            cluster,
            agents,
            runner: Runner::new(n_children),
            ctl,
            sig_rx,
            sig_term,
            sig_hup,
            started: now,
            counters: Counters::default(),
            pollfds: Vec::with_capacity(n_poll),
            sources: Vec::with_capacity(n_poll),
            actions: Vec::with_capacity(64 + 4 * n_res),
            actions_spare: Vec::with_capacity(64 + 4 * n_res),
            op_results: Vec::with_capacity(16 + n_res),
            done: Vec::with_capacity(n_children),
            child_fds: Vec::with_capacity(2 * n_children),
            conn_fds: Vec::with_capacity(crate::ctl::server::MAX_CONNS),
            rx: Vec::with_capacity(RX_BATCH * n_links.max(1)),
            tx_buf: Box::new([0u8; MAX_PACKET]),
            repr: Box::new(Repr {
                cluster_id: 0,
                sender: 0,
                generation: 0,
                seq: 0,
                kind: MsgKind::Heartbeat,
                node_state: NodeState::Init,
                keepalive_ms: 0,
                n_groups: 0,
                groups: [GroupWire::EMPTY; MAX_GROUPS],
                payload_len: 0,
                payload: [0; MAX_PAYLOAD],
            }),
            announces: Vec::with_capacity(n_res.max(4)),
            announcer,
            expired: Vec::with_capacity(crate::ctl::server::MAX_CONNS),
            outdates: Vec::with_capacity(4),
            transitions: Vec::with_capacity(16),
            send_now: false,
            exit: false,
            term_signals: 0,
            peer_keepalive_ms: 0,
            last_state: None,
            last_outdate: None,
            outdate_running: None,
            rl_bad: RateLimit::new(Duration::from_secs(10), 5),
            rl_send: RateLimit::new(Duration::from_secs(10), 5),
            rl_drop: RateLimit::new(Duration::from_secs(10), 5),
            generation,
            cfg,
            opts,
        })
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }
    pub fn peer_state(&self) -> PeerState {
        self.membership.peer_state()
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn exited(&self) -> bool {
        self.exit
    }

    /// Logs a transition once (at `info`) and keeps it for `status`.
    fn note(&mut self, now: Instant, msg: String) {
        self.note_at(log::Level::Info, now, msg);
    }

    /// Logs a transition once at `level` and keeps it for `status`.
    fn note_at(&mut self, level: log::Level, now: Instant, msg: String) {
        log::log!(level, "{msg}");
        if self.transitions.len() >= 16 {
            self.transitions.remove(0);
        }
        let ms = now.saturating_since(self.started).as_millis();
        self.transitions.push(format!("+{ms}ms {msg}"));
    }

    /// Starts the state machines (resource probes); call once before [`Daemon::step`].
    pub fn begin(&mut self) {
        let now = time::now();
        self.cluster_event(now, cluster::Event::Tick);
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
        0
    }

    /// One loop iteration: wait for the nearest deadline or input, then handle everything due.
    pub fn step(&mut self) -> Result<(), nix::errno::Errno> {
        let now = time::now();
        let deadline = self.poll_at(now);
        let timeout = now.millis_until_ceil(deadline).min(60_000);
        self.build_pollfds();
        match crate::sys::process::poll(&mut self.pollfds, i32::try_from(timeout).unwrap_or(60_000)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        self.counters.iterations += 1;
        let now = time::now();
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
                    if pfd.revents & !libc::POLLOUT != 0 {
                        self.receive(now, l);
                    }
                }
                Source::Child => self.runner.on_ready(now, pfd.fd),
            }
        }
        self.timers(now);
        Ok(())
    }

    fn poll_at(&self, now: Instant) -> Instant {
        let mut t = self.membership.poll_at();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        consider(self.cluster.poll_at());
        consider(self.runner.poll_at());
        consider(self.ctl.poll_at());
        consider(self.announces.iter().map(|a| a.next).min());
        consider(self.outdates.iter().map(|o| o.deadline).min());
        for l in &self.links {
            consider(l.poll_at());
        }
        if self.send_now || !self.op_results.is_empty() {
            t = now;
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
        push(self.sig_rx.as_raw_fd(), libc::POLLIN, Source::Signal, &mut self.pollfds, &mut self.sources);
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
        self.child_fds.clear();
        self.runner.fds(&mut self.child_fds);
        for &(fd, _) in &self.child_fds {
            push(fd, libc::POLLIN, Source::Child, &mut self.pollfds, &mut self.sources);
        }
    }

    fn on_signal(&mut self, now: Instant) {
        // The pipe only wakes us; the flags say which signals arrived.
        let mut buf = [0u8; 16];
        while let Ok(n) = std::io::Read::read(&mut &self.sig_rx, &mut buf) {
            if n == 0 {
                break;
            }
        }
        let term = self.sig_term.swap(false, Ordering::SeqCst);
        let hup = self.sig_hup.swap(false, Ordering::SeqCst);
        if hup {
            self.reload(now);
        }
        if term {
            self.term_signals += 1;
            if self.term_signals == 1 {
                self.note(now, "shutdown requested: releasing local groups".to_string());
                self.cluster_event(now, cluster::Event::Shutdown);
            } else {
                warn!("second shutdown signal: exiting now, killing resource children");
                self.runner.kill_all();
                self.exit = true;
            }
        }
    }

    fn reload(&mut self, now: Instant) {
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
        let old = &self.cfg;
        let mut fixed = Vec::new();
        if new.cluster != old.cluster {
            fixed.push("cluster");
        }
        if new.nodes != old.nodes {
            fixed.push("node");
        }
        if new.key != old.key {
            fixed.push("authkey");
        }
        if new.links != old.links || new.udpport != old.udpport {
            fixed.push("links (ucast/bcast/mcast/serial/udpport)");
        }
        if new.groups != old.groups {
            fixed.push("group");
        }
        if new.socket != old.socket || new.statedir != old.statedir {
            fixed.push("socket/statedir");
        }
        if new.logfacility != old.logfacility || new.logfile != old.logfile {
            fixed.push("logfacility/logfile");
        }
        if new.stonith != old.stonith || new.ping != old.ping {
            fixed.push("stonith/ping");
        }
        if new.realtime != old.realtime {
            fixed.push("realtime");
        }
        if !fixed.is_empty() {
            error!("reload refused: changing {} needs a restart; running configuration unchanged", fixed.join(", "));
            return;
        }
        let timing =
            Timing { keepalive: new.keepalive, warntime: new.warntime, deadtime: new.deadtime, initdead: new.initdead };
        self.membership.set_timing(timing);
        self.cluster.set_auto_failback(new.auto_failback);
        self.cfg = new;
        self.note(now, "configuration reloaded".to_string());
    }

    /// Reads and decodes everything pending on link `l`.
    fn receive(&mut self, now: Instant, l: usize) {
        let Some(link) = self.links.get_mut(l) else { return };
        let codec = &mut self.codec;
        let rx = &mut self.rx;
        let (mut ok, mut bad, mut dropped) = (0u64, 0u64, 0u64);
        let mut last_err: Option<WireError> = None;
        let mut last_drop: Option<WireError> = None;
        let res = link.recv(now, &mut |pkt: &[u8]| match codec.decode(pkt) {
            Ok(repr) => {
                ok += 1;
                if rx.len() < rx.capacity() {
                    rx.push((l, repr));
                } else {
                    dropped += 1;
                }
            }
            Err(e) => {
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
        let mut i = 0;
        while i < self.rx.len() {
            if let Some(&(link, repr)) = self.rx.get(i) {
                self.on_packet(now, link, &repr);
            }
            i += 1;
        }
        self.rx.clear();
    }

    fn on_packet(&mut self, now: Instant, link: usize, repr: &Repr) {
        self.counters.packets_received += 1;
        let a = self.membership.handle(now, membership::Event::Received { link, generation: repr.generation });
        self.membership_actions(now, a);
        if repr.keepalive_ms != self.peer_keepalive_ms {
            if self.peer_keepalive_ms != 0 || u128::from(repr.keepalive_ms) != self.cfg.keepalive.as_millis() {
                warn!(
                    "peer {} uses keepalive {}ms, we use {}ms: configure both nodes alike",
                    self.cfg.peer_name(),
                    repr.keepalive_ms,
                    self.cfg.keepalive.as_millis()
                );
            }
            self.peer_keepalive_ms = repr.keepalive_ms;
        }
        match repr.kind {
            MsgKind::Heartbeat => {
                // The same state arrives once per link: the cluster sees each heartbeat once,
                // strictly in sending order (the replay window accepts reordered copies, which
                // is right for link liveness but not for state).
                let key = (repr.generation, repr.seq);
                if self.last_state.is_some_and(|last| key <= last) {
                    return;
                }
                self.last_state = Some(key);
                self.cluster_event(
                    now,
                    cluster::Event::PeerPacket { node_state: repr.node_state, groups: repr.groups() },
                );
            }
            MsgKind::OutdateRequest => self.on_outdate_request(now, repr),
            MsgKind::OutdateReply => self.on_outdate_reply(now, repr),
        }
    }

    fn membership_actions(&mut self, now: Instant, a: membership::Actions) {
        if a.links_changed != 0 {
            for i in 0..self.links.len().min(64) {
                if a.links_changed & (1u64 << i) == 0 {
                    continue;
                }
                let up = self.membership.link(i).map(|s| s.up).unwrap_or(false);
                let name = self.links.get(i).map(|l| l.name().to_string()).unwrap_or_default();
                if up {
                    self.note(now, format!("link {name}: up"));
                } else {
                    let m =
                        format!("link {name}: down (nothing received for {})", time::fmt_duration(self.cfg.deadtime));
                    self.note_at(log::Level::Warn, now, m);
                }
            }
        }
        if a.peer_late {
            warn!(
                "peer {} is late: nothing heard for more than {}",
                self.cfg.peer_name(),
                time::fmt_duration(self.cfg.warntime)
            );
        }
        if a.peer_restarted {
            self.note(now, format!("peer {} restarted (new generation)", self.cfg.peer_name()));
            self.cluster_event(now, cluster::Event::PeerRestarted);
        }
        if let Some((old, new)) = a.peer {
            let silent = self
                .membership
                .last_seen()
                .map(|t| format!(" after {} ms of silence", now.saturating_since(t).as_millis()))
                .unwrap_or_default();
            let why = if new == PeerState::Dead { silent } else { String::new() };
            self.note(now, format!("peer {}: {} -> {}{why}", self.cfg.peer_name(), old.name(), new.name()));
            self.cluster_event(now, cluster::Event::Peer(new));
        }
        if a.send_heartbeat {
            self.send_heartbeat(now);
        }
    }

    /// Feeds one event to the cluster and carries out every resulting action, including
    /// the results of inline operations, until nothing is left.
    fn cluster_event(&mut self, now: Instant, ev: cluster::Event) {
        self.cluster.handle(now, ev, &mut self.actions);
        self.drain_actions(now);
    }

    fn drain_actions(&mut self, now: Instant) {
        for _round in 0..1000 {
            if self.actions.is_empty() && self.op_results.is_empty() {
                break;
            }
            std::mem::swap(&mut self.actions, &mut self.actions_spare);
            let mut i = 0;
            while i < self.actions_spare.len() {
                if let Some(a) = self.actions_spare.get(i).cloned() {
                    self.do_action(now, a);
                }
                i += 1;
            }
            self.actions_spare.clear();
            let mut j = 0;
            while j < self.op_results.len() {
                if let Some(&(group, resource, op, result)) = self.op_results.get(j) {
                    self.cluster.handle(now, cluster::Event::OpDone { group, resource, op, result }, &mut self.actions);
                }
                j += 1;
            }
            self.op_results.clear();
        }
        if self.send_now {
            self.send_now = false;
            self.membership.announce();
            let a = self.membership.handle(now, membership::Event::Tick);
            self.membership_actions(now, a);
        }
    }

    fn do_action(&mut self, now: Instant, a: cluster::Action) {
        match a {
            cluster::Action::Run { group, resource, op } => self.run_op(now, group, resource, op),
            cluster::Action::Announce => self.send_now = true,
            cluster::Action::Log(ev) => self.log_event(now, ev),
            cluster::Action::Exit => {
                self.note(now, "all groups released; exiting".to_string());
                self.send_heartbeat(now);
                self.exit = true;
            }
        }
    }

    fn res_text(&self, g: usize, r: usize) -> String {
        self.cfg.groups.get(g).and_then(|g| g.resources.get(r)).map(|r| r.text.clone()).unwrap_or_default()
    }

    /// Formats a cluster transition; errors are what an operator must act on.
    fn log_event(&mut self, now: Instant, ev: cluster::LogEvent) {
        use cluster::LogEvent as L;
        let mut level = log::Level::Info;
        let msg = match ev {
            L::Node { from, to } => format!("node {}: {} -> {}", self.cfg.local_name(), from.name(), to.name()),
            L::Group { group, from, to } => {
                format!("group {}: {} -> {}", self.group_name(group), from.name(), to.name())
            }
            L::FoundRunning { group, resource, status_error } => format!(
                "group {}: {} {} at start-up: stopping the whole group before anything else",
                self.group_name(group),
                self.res_text(group, resource),
                if status_error { "cannot be checked" } else { "is running" }
            ),
            L::Release { group, reason } => format!("group {}: releasing ({})", self.group_name(group), reason.name()),
            L::TakeoverPeerDead { group } => {
                format!("group {}: peer {} is dead, taking over", self.group_name(group), self.cfg.peer_name())
            }
            L::StartFailed { group, resource } => {
                let m = format!(
                    "group {}: start of {} failed: stopping the group here and offering it to {}",
                    self.group_name(group),
                    self.res_text(group, resource),
                    self.cfg.peer_name()
                );
                level = log::Level::Error;
                m
            }
            L::StopFailed { group, resource, attempt, retrying } => {
                let m = format!(
                    "group {}: stop of {} failed (attempt {attempt}){}",
                    self.group_name(group),
                    self.res_text(group, resource),
                    if retrying {
                        ", retrying"
                    } else {
                        ": resources may still be held here; the group will not be handed over until an operator resolves it"
                    }
                );
                level = log::Level::Error;
                m
            }
            L::StandbyRefused { group } => {
                level = log::Level::Warn;
                format!(
                    "group {}: standby refused: the peer is not up, nobody could take the group",
                    self.group_name(group)
                )
            }
            L::TakeoverRefused { group, state } => {
                level = log::Level::Warn;
                format!("group {}: takeover refused (local state {})", self.group_name(group), state.name())
            }
            L::Takeover { group } => format!("group {}: takeover accepted", self.group_name(group)),
            L::Standby { group } => format!("group {}: standby accepted", self.group_name(group)),
            L::StandbyCleared { group } => format!(
                "group {}: standby here ends: {} gave the group up",
                self.group_name(group),
                self.cfg.peer_name()
            ),
            L::ExitBlocked { group } => {
                let m = format!(
                    "cannot exit cleanly: group {} failed to stop; resolve it by hand, then signal again to exit",
                    self.group_name(group)
                );
                level = log::Level::Error;
                m
            }
        };
        self.note_at(level, now, msg);
    }

    fn run_op(&mut self, now: Instant, group: usize, resource: usize, op: Op) {
        let timeout = match op {
            Op::Start => self.cfg.timeouts.start,
            Op::Stop => self.cfg.timeouts.stop,
            Op::Status => self.cfg.timeouts.status,
        };
        let gname = self.cfg.groups.get(group).map(|g| g.name.as_str()).unwrap_or("?");
        let Some(agent) = self.agents.get_mut(group).and_then(|g| g.get_mut(resource)) else {
            error!("internal: no resource {resource} in group {group}");
            self.op_results.push((group, resource, op, cluster::OpResult::Failed));
            return;
        };
        if op != Op::Status {
            info!("group {gname}: {} {}", op.name(), agent.text());
        } else {
            debug!("group {gname}: status {}", agent.text());
        }
        if op == Op::Stop {
            self.announces.retain(|j| !(j.group == group && j.resource == resource));
        }
        let tag = tag_of(group, resource, op);
        let mut announce = None;
        // Some(result) when the operation is over now: inline, or a child that could not start.
        let finished = match agent.exec(op) {
            Exec::Inline => {
                let r = agent.run(op);
                if op == Op::Start && r.is_ok() {
                    announce = agent.announce();
                }
                Some(r)
            }
            Exec::Fork => {
                // The exit code is judged by LSB rules (runner::judge): a stop that
                // leaves the resource stopped is 0, a status "stopped" is 3.
                let mut f = || {
                    crate::logging::child_mode();
                    match agent.run(op) {
                        Ok(Outcome::Running) => 0,
                        Ok(Outcome::Stopped) if op == Op::Stop => 0,
                        Ok(Outcome::Stopped) => 3,
                        Err(e) => {
                            runner::child_print(&format!("{e}\n"));
                            1
                        }
                    }
                };
                self.runner.spawn(now, tag, Spawn::Fork(&mut f), timeout).err().map(Err)
            }
            Exec::Exec(argv) => self.runner.spawn(now, tag, Spawn::Exec(&argv), timeout).err().map(Err),
        };
        // The gratuitous ARP goes out before anything else happens.
        if let Some(a) = announce {
            self.announce_now(now, group, resource, a);
        }
        if let Some(r) = finished {
            self.op_finished(now, group, resource, op, r);
        }
    }

    fn group_name(&self, g: usize) -> &str {
        self.cfg.groups.get(g).map(|g| g.name.as_str()).unwrap_or("?")
    }

    /// An operation is over: log a failure (or the start), and queue the result for the
    /// cluster. The one place both inline operations and children end.
    fn op_finished(
        &mut self,
        now: Instant,
        group: usize,
        resource: usize,
        op: Op,
        r: Result<Outcome, agent::AgentError>,
    ) {
        let gname = self.group_name(group).to_string();
        let text = self.res_text(group, resource);
        let res = match r {
            Ok(Outcome::Running) => cluster::OpResult::Running,
            Ok(Outcome::Stopped) => cluster::OpResult::Stopped,
            Err(e) => {
                if op == Op::Status {
                    warn!("group {gname}: status {text}: {e}");
                } else {
                    error!("group {gname}: {} {text} failed: {e}", op.name());
                }
                cluster::OpResult::Failed
            }
        };
        if op == Op::Start && res != cluster::OpResult::Failed {
            self.note(now, format!("group {gname}: {text} started"));
        }
        self.op_results.push((group, resource, op, res));
    }

    fn announce_now(&mut self, now: Instant, group: usize, resource: usize, a: Announce) {
        match self.announcer.send(&a) {
            Ok(()) => info!("announced {} (1/{})", a.addr, self.cfg.garp_count),
            Err(e) => warn!("announce {}: {e}", a.addr),
        }
        if self.cfg.garp_count > 1 {
            self.announces.push(AnnounceJob { group, resource, a, sent: 1, next: now + self.cfg.garp_interval });
        }
    }

    fn timers(&mut self, now: Instant) {
        // Children first: their results may change what we advertise.
        self.done.clear();
        self.runner.collect(now, &mut self.done);
        let mut k = 0;
        while k < self.done.len() {
            if self.done.get(k).is_some_and(|d| d.tag == OUTDATE_TAG) {
                let d = self.done.swap_remove(k);
                self.outdate_done(now, &d);
                continue;
            }
            if let Some(d) = self.done.get(k) {
                let (group, resource, op) = untag(d.tag);
                let r = runner::judge(op, d);
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
            k += 1;
        }
        self.done.clear();

        let a = self.membership.handle(now, membership::Event::Tick);
        self.membership_actions(now, a);
        self.cluster_event(now, cluster::Event::Tick);

        for l in self.links.iter_mut() {
            if l.poll_at().is_some_and(|t| t <= now) {
                l.on_timer(now);
            }
        }

        let mut i = 0;
        while i < self.announces.len() {
            let Some(job) = self.announces.get_mut(i) else { break };
            if job.next <= now {
                let a = job.a;
                job.sent += 1;
                job.next = now + self.cfg.garp_interval;
                let sent = job.sent;
                if let Err(e) = self.announcer.send(&a) {
                    warn!("announce {}: {e}", a.addr);
                } else {
                    debug!("announced {} ({sent}/{})", a.addr, self.cfg.garp_count);
                }
                if sent >= self.cfg.garp_count {
                    self.announces.swap_remove(i);
                    continue;
                }
            }
            i += 1;
        }

        self.expired.clear();
        self.ctl.expire(now, &mut self.expired);
        for &c in &self.expired {
            self.outdates.retain(|o| o.conn != c);
        }
        let mut j = 0;
        while j < self.outdates.len() {
            if self.outdates.get(j).is_some_and(|o| o.deadline <= now) {
                let o = self.outdates.swap_remove(j);
                self.ctl.reply(o.conn, 5, &format!("peer did not answer the outdate request for {}\n", o.resource));
                continue;
            }
            j += 1;
        }
    }

    fn send_heartbeat(&mut self, now: Instant) {
        let r = &mut *self.repr;
        r.kind = MsgKind::Heartbeat;
        r.node_state = self.cluster.node_state();
        r.keepalive_ms = u32::try_from(self.cfg.keepalive.as_millis()).unwrap_or(u32::MAX);
        let n = self.cluster.wire_groups(&mut r.groups);
        r.n_groups = u8::try_from(n.min(MAX_GROUPS)).unwrap_or(0);
        r.payload_len = 0;
        self.transmit(now);
        self.counters.heartbeats_sent += 1;
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

    fn on_request(&mut self, now: Instant, inc: Incoming) {
        let req = match inc.request {
            Ok(r) => r,
            Err(e) => {
                self.ctl.reply(inc.conn, 2, &format!("{e}\n"));
                return;
            }
        };
        match req {
            Request::Status { json } => {
                let body = if json { self.status_json(now) } else { self.status_text(now) };
                self.ctl.reply(inc.conn, 0, &body);
            }
            Request::Standby(g) | Request::Takeover(g) if group_sel(&self.cfg, &g).is_err() => {
                self.ctl.reply(inc.conn, 1, &format!("no group named {g:?}\n"));
            }
            Request::Standby(g) => {
                if let Ok(sel) = group_sel(&self.cfg, &g) {
                    self.note(now, format!("operator: standby {g}"));
                    self.cluster_event(now, cluster::Event::Standby(sel));
                    self.ctl.reply(inc.conn, 0, &format!("standby {g}: handing over to {}\n", self.cfg.peer_name()));
                }
            }
            Request::Takeover(g) => {
                if let Ok(sel) = group_sel(&self.cfg, &g) {
                    self.note(now, format!("operator: takeover {g}"));
                    self.cluster_event(now, cluster::Event::Takeover(sel));
                    self.ctl.reply(inc.conn, 0, &format!("takeover {g}: requested\n"));
                }
            }
            Request::Outdate(res) => self.start_outdate(now, inc.conn, res),
        }
    }

    fn start_outdate(&mut self, now: Instant, conn: usize, res: String) {
        if self.membership.peer_state() != PeerState::Up {
            self.ctl.reply(conn, 5, &format!("peer {} is unreachable\n", self.cfg.peer_name()));
            return;
        }
        let bytes = res.as_bytes();
        if bytes.len() > MAX_PAYLOAD {
            self.ctl.reply(conn, 1, "resource name too long\n");
            return;
        }
        let r = &mut *self.repr;
        r.kind = MsgKind::OutdateRequest;
        r.node_state = self.cluster.node_state();
        r.n_groups = 0;
        r.payload_len = u8::try_from(bytes.len()).unwrap_or(0);
        if let Some(dst) = r.payload.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.transmit(now);
        self.ctl.extend(conn, now + OUTDATE_TIMEOUT + Duration::from_secs(1));
        self.outdates.push(OutdateWait { conn, resource: res, deadline: now + OUTDATE_TIMEOUT });
    }

    /// The peer's DRBD fence-peer handler asks us to outdate our disk. The DRBD requests run
    /// in a forked child (they can take seconds), never in the loop; copies of the request
    /// that arrive on the other links meanwhile are ignored, and copies arriving just after
    /// get the same answer.
    fn on_outdate_request(&mut self, now: Instant, repr: &Repr) {
        let res = String::from_utf8_lossy(repr.payload()).into_owned();
        if let Some((r, at, code)) = &self.last_outdate {
            if *r == res && now.saturating_since(*at) < OUTDATE_COPIES {
                let code = *code;
                self.send_outdate_reply(now, &res, code);
                return;
            }
        }
        if self.outdate_running.as_deref() == Some(res.as_str()) {
            return;
        }
        let name = res.clone();
        let mut f = move || {
            crate::logging::child_mode();
            i32::from(outdate_local(&name))
        };
        match self.runner.spawn(now, OUTDATE_TAG, Spawn::Fork(&mut f), OUTDATE_TIMEOUT) {
            Ok(()) => self.outdate_running = Some(res),
            Err(e) => {
                error!("cannot answer the peer's outdate request for {res}: {e}");
                self.send_outdate_reply(now, &res, 5);
            }
        }
    }

    /// The outdate child finished: cache and send its answer.
    fn outdate_done(&mut self, now: Instant, d: &Done) {
        let Some(res) = self.outdate_running.take() else { return };
        let code = match d.status {
            runner::ExitKind::Code(c) => u8::try_from(c).unwrap_or(5),
            _ => 5,
        };
        for line in d.output.lines() {
            info!("outdate {res}: {line}");
        }
        self.note(now, format!("peer asked to outdate DRBD resource {res}: answered {code}"));
        self.last_outdate = Some((res.clone(), now, code));
        self.send_outdate_reply(now, &res, code);
    }

    fn send_outdate_reply(&mut self, now: Instant, res: &str, code: u8) {
        let r = &mut *self.repr;
        r.kind = MsgKind::OutdateReply;
        r.node_state = self.cluster.node_state();
        r.n_groups = 0;
        let bytes = res.as_bytes();
        let n = bytes.len().min(MAX_PAYLOAD - 1);
        r.payload[0] = code;
        if let (Some(dst), Some(src)) = (r.payload.get_mut(1..=n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        r.payload_len = u8::try_from(n + 1).unwrap_or(1);
        self.transmit(now);
    }

    fn on_outdate_reply(&mut self, _now: Instant, repr: &Repr) {
        let p = repr.payload();
        let Some((&code, name)) = p.split_first() else { return };
        let name = String::from_utf8_lossy(name).into_owned();
        if let Some(pos) = self.outdates.iter().position(|o| o.resource == name) {
            let o = self.outdates.swap_remove(pos);
            self.ctl.reply(o.conn, i32::from(code), &format!("peer answered {code} for {name}\n"));
        }
    }

    fn link_json(&self, out: &mut crate::ctl::json::Obj<'_>, now: Instant) {
        for (i, l) in self.links.iter().enumerate() {
            let st = self.membership.link(i);
            let s = l.stats();
            let mut o = out.nested(None, false);
            o.str("name", l.name())
                .bool("up", st.map(|s| s.up).unwrap_or(false))
                .opt_num(
                    "last_seen_ms",
                    st.and_then(|s| s.last_seen).map(|t| now.saturating_since(t).as_millis() as u64),
                )
                .num("rx", s.rx)
                .num("tx", s.tx)
                .num("dropped", s.dropped)
                .num("bad", s.bad)
                .num("tx_errors", s.tx_errors);
            if l.name().starts_with("serial") {
                o.num("bad_crc", s.bad_crc)
                    .num("resyncs", s.resyncs)
                    .num("overruns", s.overruns)
                    .num("tx_dropped", s.tx_dropped);
                o.bool("present", l.fd().is_some());
            }
        }
    }

    fn owner_name(&self, o: cluster::Owner) -> &str {
        match o {
            cluster::Owner::Local => self.cfg.local_name(),
            cluster::Owner::Peer => self.cfg.peer_name(),
            cluster::Owner::None => "none",
        }
    }

    /// `status --json`, as INTERFACE.md specifies (plus counters).
    pub fn status_json(&self, now: Instant) -> String {
        let mut s = String::with_capacity(1024);
        {
            let mut o = crate::ctl::json::Obj::object(&mut s);
            o.str("node", self.cfg.local_name())
                .str("cluster", &self.cfg.cluster)
                .str("state", self.cluster.node_state().name())
                .num("generation", self.generation);
            {
                let mut peers = o.nested(Some("peers"), true);
                let mut p = peers.nested(None, false);
                p.str("name", self.cfg.peer_name()).str("state", self.membership.peer_state().name());
                p.opt_num(
                    "last_seen_ms",
                    self.membership.last_seen().map(|t| now.saturating_since(t).as_millis() as u64),
                );
                let mut links = p.nested(Some("links"), true);
                self.link_json(&mut links, now);
            }
            let mut groups = o.nested(Some("groups"), true);
            for (i, g) in self.cfg.groups.iter().enumerate() {
                let v = self.cluster.group_view(i);
                let mut go = groups.nested(None, false);
                go.str("name", &g.name)
                    .str("preferred", self.cfg.nodes.get(usize::from(g.preferred)).map(String::as_str).unwrap_or(""))
                    .str("owner", self.owner_name(v.owner))
                    .str("state", group_state_name(&v))
                    .str("local_state", v.state.name())
                    .str("peer_state", v.peer_state.map(|p| p.name()).unwrap_or("unknown"))
                    .bool("failed_here", failed_here(&v))
                    .bool("standby", v.standby)
                    .bool("pinned", v.pinned);
            }
        }
        s.push('\n');
        s
    }

    pub fn status_text(&self, now: Instant) -> String {
        let mut s = String::with_capacity(1024);
        let _ = writeln!(
            s,
            "node {} ({}), cluster {}, generation {}",
            self.cfg.local_name(),
            self.cluster.node_state().name(),
            self.cfg.cluster,
            self.generation
        );
        let seen = self
            .membership
            .last_seen()
            .map(|t| format!(", last heard {} ms ago", now.saturating_since(t).as_millis()))
            .unwrap_or_default();
        let _ = writeln!(s, "peer {}: {}{seen}", self.cfg.peer_name(), self.membership.peer_state().name());
        for (i, l) in self.links.iter().enumerate() {
            let st = self.membership.link(i);
            let up = if st.map(|s| s.up).unwrap_or(false) { "up" } else { "down" };
            let last = st
                .and_then(|s| s.last_seen)
                .map(|t| format!("last seen {} ms ago", now.saturating_since(t).as_millis()))
                .unwrap_or_else(|| "never seen".to_string());
            let c = l.stats();
            let _ = write!(
                s,
                "  link {}: {up}, {last}; rx {} tx {} dropped {} bad {}",
                l.name(),
                c.rx,
                c.tx,
                c.dropped,
                c.bad
            );
            if l.name().starts_with("serial") {
                let present = if l.fd().is_some() { "" } else { ", device absent" };
                let _ = write!(
                    s,
                    "; bad-crc {} resyncs {} overruns {} tx-dropped {}{present}",
                    c.bad_crc, c.resyncs, c.overruns, c.tx_dropped
                );
            }
            s.push('\n');
        }
        for (i, g) in self.cfg.groups.iter().enumerate() {
            let v = self.cluster.group_view(i);
            let pref = self.cfg.nodes.get(usize::from(g.preferred)).map(String::as_str).unwrap_or("");
            let mut extra = String::new();
            if failed_here(&v) {
                let what = if v.state == GroupState::FailedToStop { "failed to stop" } else { "failed" };
                let _ = write!(extra, ", {what} here");
            }
            if v.standby {
                extra.push_str(", standby here");
            }
            if v.pinned {
                extra.push_str(", pinned by takeover");
            }
            let _ = writeln!(
                s,
                "group {} (preferred {pref}): {} on {}{extra}",
                g.name,
                group_state_name(&v),
                self.owner_name(v.owner)
            );
        }
        if !self.transitions.is_empty() {
            s.push_str("recent transitions:\n");
            for t in &self.transitions {
                let _ = writeln!(s, "  {t}");
            }
        }
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.runner.kill_all();
    }
}

/// Answers a peer's fence-peer request for DRBD resource `res` with a drbd.conf(5)
/// fence-peer exit code (see [`agent::drbd::outdate_for_peer`]; bounded by its netlink
/// deadlines, so the loop stalls at most ~2.5 s).
fn outdate_local(res: &str) -> u8 {
    agent::drbd::outdate_for_peer(res)
}

/// A start failed here (sticky), or a stop failed here.
fn failed_here(v: &cluster::GroupView) -> bool {
    v.failed || v.state == GroupState::FailedToStop || v.state == GroupState::Failed
}

/// The group's state as INTERFACE.md names it, seen at its owner:
/// started|starting|stopping|stopped|failed.
fn group_state_name(v: &cluster::GroupView) -> &'static str {
    let st = match v.owner {
        cluster::Owner::Local => Some(v.state),
        cluster::Owner::Peer => v.peer_state,
        cluster::Owner::None => None,
    };
    match st {
        Some(GroupState::Starting) => "starting",
        Some(GroupState::Started) => "started",
        Some(GroupState::Stopping) => "stopping",
        Some(GroupState::FailedToStop) => "failed",
        _ if v.failed || v.state == GroupState::Failed || v.state == GroupState::FailedToStop => "failed",
        _ => "stopped",
    }
}

/// Reads a pidfile and tells whether that process is alive.
fn pidfile_owner(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(pid),
        Err(_) => None,
    }
}

fn write_pidfile(path: &Path) -> Result<(), DaemonError> {
    if let Some(pid) = pidfile_owner(path) {
        if pid != std::process::id() as i32 {
            return Err(setup("pidfile", format!("{} names running process {pid}: already running?", path.display())));
        }
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| setup(format!("pidfile directory {}", dir.display()), e))?;
        }
    }
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .map_err(|e| setup(format!("pidfile {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| setup(format!("pidfile {}", path.display()), e))?;
    Ok(())
}

/// `tandem daemon`: load, detach (unless --foreground), run, clean up. Returns the exit code.
pub fn main(opts: Options) -> i32 {
    let (cfg, warnings) = match crate::load::load(&opts.config, opts.node.as_deref()) {
        Ok(x) => x,
        Err(errs) => {
            for e in errs {
                eprintln!("tandem: {e}");
            }
            return 2;
        }
    };
    for w in &warnings {
        eprintln!("tandem: warning: {w}");
    }
    if let Err(e) = build_agents(&cfg) {
        eprintln!("tandem: {e}");
        return 2;
    }
    if let Some(pid) = pidfile_owner(&opts.pidfile) {
        eprintln!("tandem: already running as process {pid} (pidfile {})", opts.pidfile.display());
        return 1;
    }

    // Detach: the parent waits (bounded) for the child to report that it is up, so that
    // `tandem daemon` and the init script return a truthful exit code.
    let mut ready_tx: Option<UnixStream> = None;
    if !opts.foreground {
        let (rx, tx) = match UnixStream::pair() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("tandem: socketpair: {e}");
                return 1;
            }
        };
        match crate::sys::rt::fork() {
            Err(e) => {
                eprintln!("tandem: fork: {}", e.desc());
                return 1;
            }
            Ok(crate::sys::rt::Forked::Parent { .. }) => {
                drop(tx);
                let _ = rx.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                let mut b = [0u8; 1];
                return match std::io::Read::read(&mut &rx, &mut b) {
                    Ok(1) if b[0] == b'1' => 0,
                    _ => 1,
                };
            }
            Ok(crate::sys::rt::Forked::Child) => {
                drop(rx);
                let _ = nix::unistd::setsid();
                let _ = std::env::set_current_dir("/");
                ready_tx = Some(tx);
            }
        }
    }

    let logfile = cfg.logfile.clone();
    if let Err(e) = crate::logging::init(cfg.logfacility.as_deref(), logfile.as_deref()) {
        eprintln!("tandem: {e}");
        return 2;
    }
    let pidfile = opts.pidfile.clone();
    let realtime = cfg.realtime;
    for w in &warnings {
        warn!("{w}");
    }
    let mut d = match Daemon::new(cfg, opts) {
        Ok(d) => d,
        Err(e) => {
            error!("cannot start: {e}");
            eprintln!("tandem: {e}");
            return if matches!(e, DaemonError::Config(_)) { 2 } else { 1 };
        }
    };
    if let Err(e) = write_pidfile(&pidfile) {
        error!("cannot start: {e}");
        eprintln!("tandem: {e}");
        return 1;
    }
    // Memory: release the start-up code's pages, then lock what the loop touches from here
    // on (MCL_ONFAULT), and run heartbeats at real-time priority so CPU load cannot starve them.
    if let Err(e) = crate::sys::rt::trim_text() {
        debug!("trim_text: {}", e.desc());
    }
    if realtime {
        if let Err(e) = crate::sys::rt::mlockall() {
            warn!("mlockall: {} (continuing without locked memory)", e.desc());
        }
        if let Err(e) = crate::sys::rt::set_realtime(20) {
            warn!("SCHED_FIFO: {} (continuing with normal scheduling)", e.desc());
        }
    }
    if let Some(tx) = ready_tx.take() {
        let _ = std::io::Write::write_all(&mut &tx, b"1");
        drop(tx);
        crate::sys::rt::null_stdio(logfile.as_deref().is_some_and(|p| p.as_os_str() == "-"));
    }
    let code = d.run();
    drop(d);
    let _ = std::fs::remove_file(&pidfile);
    info!("exited");
    code
}
