//! Building the daemon from its configuration: the agents, the links, the core's setup,
//! the runner's pools, the hardware watchdog, and `Daemon::new` itself.

use log::{info, warn};

use crate::agent::runner::{self, Runner};
use crate::agent::{self, Agent};
use crate::cluster::{GroupDef, Settings};
use crate::config::{Config, FenceMethod, LinkConfig};
use crate::ctl::server::Server;
use crate::link::{serial::SerialLink, udp::UdpLink, Link};
use crate::logging::RateLimit;
use crate::membership::Timing;
use crate::time::{self, Duration, Instant};
use crate::wire::auth::Codec;
use crate::wire::{GroupWire, MsgKind, NodeState, Repr, MAX_GROUPS, MAX_PAYLOAD};

use super::alarms::{AuthAlarm, Dog};
use super::garp::Garp;
use super::node::NodeSetup;
use super::partition::{PartitionSetup, PeerFencing};
use super::pinger::Pinger;
use super::{
    fencing, hbmode, http, outdate, outside, setup, socket_path, Counters, Daemon, DaemonError, Options, Signals,
    DEFAULT_STATEDIR, MAX_PACKET, RX_BATCH, TRANSITIONS,
};

/// The runner's pool sizes, from the config: each group runs at most one operation at a
/// time; twice that leaves room for a retry while a stuck child holds a slot.
fn pools(cfg: &Config) -> [usize; 5] {
    // Fencing: one attempt or device check at a time, and slots for killed ones still dying.
    [2 * cfg.groups.len() + 1, outdate::MAX_ANSWERING, 1, 3, outside::notify_pool(cfg)]
}

/// How long one inline operation (an `ip` start: a few netlink requests) may wait in total:
/// `min(250ms, deadtime/4)`, so a kernel that does not answer costs the loop at most a
/// quarter of deadtime, never a heartbeat the peer would miss.
pub fn inline_budget(cfg: &Config) -> Duration {
    Duration::from_millis(250).min(cfg.deadtime / 4)
}

/// Builds the agents for every group, refusing types not implemented yet.
pub fn build_agents(cfg: &Config) -> Result<Vec<Vec<Box<dyn Agent>>>, DaemonError> {
    let mut errs = Vec::new();
    let mut out = Vec::with_capacity(cfg.groups.len());
    for g in &cfg.groups {
        let mut v = Vec::with_capacity(g.resources.len());
        for (i, r) in g.resources.iter().enumerate() {
            match agent::build_or_broken_in(r, &cfg.timeouts, &g.name, i) {
                Ok(mut a) => {
                    a.set_inline_budget(inline_budget(cfg));
                    v.push(a)
                }
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
                let mut s = SerialLink::open(l, name.clone(), now).map_err(|e| setup(format!("link {name}"), e))?;
                // heartbeat's serial frames are text with their own markers, without ours.
                s.set_raw(cfg.heartbeat().is_some());
                Box::new(s)
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

/// The core's setup from a configuration.
pub fn node_setup(cfg: &Config, generation: u64, n_links: usize) -> NodeSetup {
    let (probes, probe_groups) = group_probes(cfg);
    NodeSetup {
        timing: timing(cfg),
        groups: cfg
            .groups
            .iter()
            .map(|g| GroupDef {
                name: g.name.clone(),
                preferred_is_local: g.preferred == cfg.local,
                n_resources: g.resources.len(),
                monitor: g.monitor.clone(),
            })
            .collect(),
        settings: Settings {
            auto_failback: cfg.auto_failback,
            stop_retries: 3,
            stop_retry_delay: Duration::from_secs(1),
            restart_limit: cfg.failure.restart_limit,
            restart_window: cfg.failure.restart_window,
            failure_timeout: cfg.failure.failure_timeout,
        },
        generation,
        n_links,
        // After a clean stop, keep announcing until the peer has taken over (bounded).
        leave_linger: (cfg.keepalive * 3).max(Duration::from_millis(300)),
        config_digest: cfg.digest(),
        fence: fencing::FenceSetup {
            method: match cfg.peer_stonith().map(|s| &s.method) {
                None => fencing::Method::None,
                Some(FenceMethod::Manual) => fencing::Method::Manual,
                Some(FenceMethod::Watchdog) => fencing::Method::Watchdog { period: watchdog_period(cfg) },
                Some(_) => fencing::Method::Power,
            },
            policy: cfg.fencing,
            first_node: cfg.local == 0,
            keepalive: cfg.keepalive,
            default_fence_time: cfg.peer_stonith().map_or(Duration::ZERO, |s| s.method.typical_time()),
        },
        partition: PartitionSetup {
            targets: cfg.ping.clone(),
            probes,
            probe_groups,
            ping_interval: cfg.ping_policy.interval,
            ping_deadtime: cfg.ping_policy.deadtime,
            ping_hold: cfg.ping_policy.hold,
            isolated_stop: cfg.ping_policy.isolated_stop,
            self_watchdog: self_watchdog(cfg).map(|w| w.timeout),
            peer_fencing: match cfg.peer_stonith().map(|s| &s.method) {
                None => PeerFencing::None,
                Some(FenceMethod::Manual) => PeerFencing::Manual,
                Some(FenceMethod::Watchdog) => PeerFencing::Watchdog,
                Some(_) => PeerFencing::Power,
            },
        },
    }
}

/// A fence attempt or device check runs real-time (below the loop's own priority) when the
/// daemon does: on a busy host the holder's fence must land within its slot, and the checks
/// that size the slots must measure the same (children a program execs run normally).
pub(super) fn fence_child_priority(realtime: bool) {
    if realtime {
        let _ = crate::sys::rt::set_realtime(10);
    }
}

/// The watchdog this node pets: its own stonith line is `watchdog`.
fn self_watchdog(cfg: &Config) -> Option<&crate::config::WatchdogConfig> {
    let own = cfg.stonith.iter().find(|s| s.node == cfg.local)?;
    (own.method == FenceMethod::Watchdog).then_some(())?;
    cfg.watchdog.as_ref()
}

/// How long after its last heartbeat a watchdog-fenced peer counts as reset: its watchdog
/// timeout (the same file on both nodes), plus the time it may take to decide it lost
/// (deadtime, and the skew between the two nodes' verdicts) and stop petting.
pub fn watchdog_period(cfg: &Config) -> Duration {
    let timeout = cfg.watchdog.as_ref().map_or(Duration::ZERO, |w| w.timeout);
    timeout + cfg.deadtime + cfg.keepalive * 2
}

/// The addresses of the groups' ip resources: probed before a watchdog-fenced peer's
/// groups are taken over (one that answers is still held).
fn group_addresses(cfg: &Config) -> Vec<std::net::IpAddr> {
    group_probes(cfg).0
}

/// The groups' addresses, and for each the groups that carry it (bit i: group i).
fn group_probes(cfg: &Config) -> (Vec<std::net::IpAddr>, Vec<u64>) {
    let (mut addrs, mut groups) = (Vec::new(), Vec::<u64>::new());
    for (g, group) in cfg.groups.iter().enumerate().take(64) {
        for r in &group.resources {
            if let crate::config::ResourceSpec::Ip(ip) = &r.spec {
                let i = addrs.iter().position(|a| *a == ip.addr).unwrap_or_else(|| {
                    addrs.push(ip.addr);
                    groups.push(0);
                    addrs.len() - 1
                });
                if let Some(m) = groups.get_mut(i) {
                    *m |= 1u64 << g;
                }
            }
        }
    }
    (addrs, groups)
}

pub(super) fn timing(cfg: &Config) -> Timing {
    Timing { keepalive: cfg.keepalive, warntime: cfg.warntime, deadtime: cfg.deadtime, initdead: cfg.initdead }
}

pub(super) fn empty_repr() -> Repr {
    Repr {
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
    }
}

impl Daemon {
    /// Sets up everything (generation, links, control socket, signals) without detaching.
    pub fn new(cfg: Config, opts: Options) -> Result<Daemon, DaemonError> {
        let now = time::now();
        let statedir =
            opts.state_dir.clone().or_else(|| cfg.statedir.clone()).unwrap_or_else(|| DEFAULT_STATEDIR.into());
        // Before anything else runs: what a killed predecessor's children left.
        for line in agent::records::kill_previous(&statedir) {
            warn!("{line}");
        }
        let agents = build_agents(&cfg)?;
        let generation = crate::state::bump_generation(&statedir)
            .map_err(|e| setup(format!("state directory {}", statedir.display()), e))?;
        let peer_mark = crate::state::read_peer_mark(&statedir)
            .map_err(|e| setup(format!("state directory {}", statedir.display()), e))?;
        let links = open_links(&cfg, now)?;
        let n_res: usize = cfg.groups.iter().map(|g| g.resources.len()).sum();
        let mut garp = Garp::new(cfg.garp_count, cfg.garp_interval, n_res);
        for a in agents.iter().flatten() {
            if let Some(ifindex) = a.garp_iface() {
                if let Err(e) = garp.prepare(ifindex) {
                    warn!("{}: {e} (will retry when announcing)", a.text());
                }
            }
        }
        let ctl = Server::bind(&socket_path(&opts, Some(&cfg))).map_err(|e| setup("control socket", e))?;
        let signals = Signals::install()?;
        let (node, generation) = hbmode::make_core(now, &cfg, generation, links.len(), &statedir)?;
        let mut echo_addrs = cfg.ping.clone();
        echo_addrs.extend(group_addresses(&cfg));
        let pinger = Pinger::open(&echo_addrs).map_err(|e| setup("raw ICMP socket for the ping targets", e))?;
        let dog = match self_watchdog(&cfg) {
            None => None,
            Some(w) => {
                let secs = u32::try_from(w.timeout.as_secs()).unwrap_or(u32::MAX);
                let dev = crate::sys::watchdog::Watchdog::open(&w.device, secs)
                    .map_err(|e| setup(format!("watchdog {}", w.device.display()), e))?;
                let period = Duration::from_secs(u64::from(dev.timeout_s));
                info!(
                    "watchdog {} armed: {} s; petted while this node may keep its groups",
                    w.device.display(),
                    dev.timeout_s
                );
                Some(Dog {
                    dev,
                    path: w.device.clone(),
                    next_pet: now + period / 4,
                    every: period / 4,
                    stuck_limit: period / 2,
                    healthy: true,
                    petting: true,
                })
            }
        };
        let mut codec = Codec::new(&cfg.key, &cfg.cluster, cfg.local, cfg.peer(), generation);
        codec.set_keys(&cfg.key, cfg.accept_key.as_deref());
        if let Some((g, seq)) = peer_mark {
            // The peer's packets from before this restart are refused as replays.
            codec.set_peer_floor(g, seq);
            info!("refusing the peer's packets up to generation {g}, sequence {seq} (stored before this start)");
        }
        let pools = pools(&cfg);
        let n_children: usize = pools.iter().sum();
        let n_poll = 4 + links.len() + crate::ctl::server::SLOTS + 2 * n_children + 1 + http::MAX_CONNS;
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
            node,
            agents,
            runner: Runner::with_pools(&pools, runner::DEFAULT_OUTPUT_CAP).with_records(&statedir),
            ctl,
            signals,
            garp,
            started: now,
            counters: Counters::default(),
            pollfds: Vec::with_capacity(n_poll),
            sources: Vec::with_capacity(n_poll),
            out: Vec::with_capacity(64 + 8 * n_res),
            pending: Vec::with_capacity(16 + n_res),
            done: Vec::with_capacity(n_children),
            child_fds: Vec::with_capacity(2 * n_children),
            conn_fds: Vec::with_capacity(crate::ctl::server::SLOTS),
            rx: Vec::with_capacity(RX_BATCH * n_links.max(1)),
            ready: Vec::with_capacity(n_links),
            last_wake: now,
            tx_buf: Box::new([0u8; MAX_PACKET]),
            repr: Box::new(empty_repr()),
            expired: Vec::with_capacity(crate::ctl::server::SLOTS),
            transitions: Vec::with_capacity(TRANSITIONS),
            exit: false,
            term_signals: 0,
            rl_bad: RateLimit::new(Duration::from_secs(10), 5),
            rl_send: RateLimit::new(Duration::from_secs(10), 5),
            rl_drop: RateLimit::new(Duration::from_secs(10), 5),
            rl_own_id: RateLimit::new(Duration::from_secs(60), 1),
            auth_alarms: vec![AuthAlarm::default(); n_links],
            outside: outside::Outside::new(&cfg, now),
            pinger,
            dog,
            clean_exit: false,
            failure_text: cfg.groups.iter().map(|g| vec![None; g.resources.len()]).collect(),
            generation,
            mark_pending: None,
            statedir,
            cfg,
            opts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_operations_wait_well_under_deadtime() {
        let text = "cluster c\nnode a b\nauthkey /k\nucast lo 198.51.100.2\nkeepalive 100ms\ndeadtime 500ms\n\
                    group web a ip::192.0.2.50/24/lo\n";
        let parsed = crate::config::parse_str(std::path::Path::new("/t.conf"), text).unwrap();
        let host = crate::load::gather(&parsed).unwrap();
        let (cfg, _) = crate::config::apply_host(&parsed, Some("a"), &host).unwrap();
        assert_eq!(inline_budget(&cfg), Duration::from_millis(125));
        let agents = build_agents(&cfg).unwrap();
        assert_eq!(agents[0][0].inline_budget(), Some(Duration::from_millis(125)));
        let mut slow = cfg.clone();
        slow.deadtime = Duration::from_secs(10);
        assert_eq!(inline_budget(&slow), Duration::from_millis(250));
    }
}
