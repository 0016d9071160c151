//! Configuration reload (SIGHUP): what may change on a running daemon, and what needs a
//! restart. Pure: the loop reads the new file, asks [`diff`], and applies what it may.

use crate::config::Config;

/// The settings that need a restart and differ between `old` and `new` (empty: the new
/// configuration may be applied live). Timers, `auto_failback`, the resource timeouts, the
/// gratuitous ARP settings, the failure policy (`restart_limit`, `restart_window`,
/// `failure_timeout`), the keys (`authkey`, `authkey_accept`: the codec's keys are
/// replaced), the notify hooks and `metrics_listen` may change live; the ping, watchdog,
/// monitoring and fencing settings may not.
pub fn diff(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut fixed = Vec::new();
    if new.cluster != old.cluster {
        fixed.push("cluster");
    }
    if new.nodes != old.nodes || new.local != old.local {
        fixed.push("node");
    }
    if new.links != old.links || new.udpport != old.udpport {
        fixed.push("links (ucast/bcast/mcast/serial/udpport)");
    }
    // As written, not where: a comment added above a line changes nothing.
    let groups = |c: &Config| {
        c.groups
            .iter()
            .map(|g| (g.name.clone(), g.preferred, g.resources.clone(), g.monitor.clone()))
            .collect::<Vec<_>>()
    };
    if groups(new) != groups(old) {
        fixed.push("group/monitor");
    }
    if new.socket != old.socket || new.statedir != old.statedir {
        fixed.push("socket/statedir");
    }
    if new.logfacility != old.logfacility || new.logfile != old.logfile {
        fixed.push("logfacility/logfile");
    }
    let stonith = |c: &Config| c.stonith.iter().map(|s| (s.node, s.method.clone())).collect::<Vec<_>>();
    if stonith(new) != stonith(old) || new.ping != old.ping {
        fixed.push("stonith/ping");
    }
    // The core takes these at start only (a reload passes it timing and auto_failback).
    if new.ping_policy != old.ping_policy {
        fixed.push("ping_interval/ping_deadtime/ping_hold/isolated_stop");
    }
    let dog = |c: &Config| c.watchdog.as_ref().map(|w| (w.device.clone(), w.timeout));
    if dog(new) != dog(old) {
        fixed.push("watchdog");
    }
    if new.fencing != old.fencing {
        fixed.push("fence_delay/fence_timeout/fence_check/wait_for_peer/stonith_required");
    }
    if new.realtime != old.realtime {
        fixed.push("realtime");
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    const BASE: &str = "cluster c\nnode a b\nauthkey /k\nucast eth0 192.0.2.2\nkeepalive 1s\n\
                        group web a ip::192.0.2.50/24/eth0\n";

    fn cfg(extra: &str) -> Config {
        parse_str(Path::new("/t.conf"), &format!("{BASE}{extra}")).unwrap().config
    }

    #[test]
    fn moved_lines_are_not_changes() {
        let old = cfg("stonith b /sbin/f\nmonitor 5s\n");
        let new = parse_str(
            Path::new("/t.conf"),
            &format!("# a comment\n\n{BASE}# another\nstonith b /sbin/f\nmonitor 5s\n"),
        )
        .unwrap()
        .config;
        assert!(diff(&old, &new).is_empty(), "{:?}", diff(&old, &new));
        assert_eq!(diff(&old, &cfg("stonith b /sbin/f\nmonitor 6s\n")), ["group/monitor"]);
        assert!(diff(&old, &cfg("stonith b /sbin/f\nmonitor 5s\nrestart_limit 1\n")).is_empty());
    }

    #[test]
    fn live_settings_need_no_restart() {
        let old = cfg("");
        assert!(diff(&old, &old).is_empty());
        for extra in [
            "deadtime 20s\n",
            "auto_failback on\n",
            "start_timeout 5s\n",
            "garp_count 2\n",
            "warntime 3s\n",
            "notify /usr/local/sbin/hook\nnotify_timeout 2s\n",
            "metrics_listen 192.0.2.1:9694\n",
            "restart_limit 1\nrestart_window 60s\nfailure_timeout 300s\n",
        ] {
            assert!(diff(&old, &cfg(extra)).is_empty(), "{extra}");
        }
    }

    #[test]
    fn fixed_settings_are_named() {
        let old = cfg("");
        let new = |text: &str| parse_str(Path::new("/t.conf"), text).unwrap().config;
        let other_group = BASE.replace("192.0.2.50", "192.0.2.51");
        assert_eq!(diff(&old, &new(&other_group)), ["group/monitor"]);
        assert_eq!(diff(&old, &new(&BASE.replace("cluster c", "cluster d"))), ["cluster"]);
        assert_eq!(
            diff(&old, &new(&BASE.replace("192.0.2.2", "192.0.2.3"))),
            ["links (ucast/bcast/mcast/serial/udpport)"]
        );
        assert_eq!(diff(&old, &cfg("realtime off\n")), ["realtime"]);
        assert_eq!(diff(&old, &cfg("ping 192.0.2.254\n")), ["stonith/ping"]);
        // Partition and fencing settings: the running core would keep the old ones.
        for extra in ["ping_hold 1s\n", "ping_interval 2s\n", "isolated_stop off\n"] {
            assert_eq!(diff(&old, &cfg(extra)), ["ping_interval/ping_deadtime/ping_hold/isolated_stop"], "{extra}");
        }
        for extra in ["fence_delay 3s\n", "wait_for_peer on\n", "fence_check 0\n"] {
            assert_eq!(
                diff(&old, &cfg(extra)),
                ["fence_delay/fence_timeout/fence_check/wait_for_peer/stonith_required"],
                "{extra}"
            );
        }
        assert_eq!(diff(&old, &cfg("watchdog /dev/watchdog 5s\n")), ["watchdog"]);
        let w = cfg("watchdog /dev/watchdog 5s\n");
        let moved = cfg("# a comment moves the watchdog line\nwatchdog /dev/watchdog 5s\n");
        assert!(diff(&w, &moved).is_empty(), "only the line number differs");
        // Keys are replaced live (rotation).
        let mut k = old.clone();
        k.key = crate::config::Key::new(vec![1]);
        k.accept_key = Some(crate::config::Key::new(vec![2]));
        assert!(diff(&old, &k).is_empty());
    }
}
