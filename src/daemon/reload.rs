//! Configuration reload (SIGHUP): what may change on a running daemon, and what needs a
//! restart. Pure: the loop reads the new file, asks [`diff`], and applies what it may.

use crate::config::Config;

/// The settings that need a restart and differ between `old` and `new` (empty: the new
/// configuration may be applied live). Timers, `auto_failback`, the resource timeouts, the
/// gratuitous ARP settings, the failure policy (`restart_limit`, `restart_window`,
/// `failure_timeout`), the keys (`authkey`, `authkey_accept`: the codec's keys are
/// replaced), the notify hooks and `metrics_listen` may change live.
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
        assert_eq!(diff(&old, &new(&other_group)), ["group"]);
        assert_eq!(diff(&old, &new(&BASE.replace("cluster c", "cluster d"))), ["cluster"]);
        assert_eq!(
            diff(&old, &new(&BASE.replace("192.0.2.2", "192.0.2.3"))),
            ["links (ucast/bcast/mcast/serial/udpport)"]
        );
        assert_eq!(diff(&old, &cfg("realtime off\n")), ["realtime"]);
        assert_eq!(diff(&old, &cfg("ping 192.0.2.254\n")), ["stonith/ping"]);
        // Keys are replaced live (rotation).
        let mut k = old.clone();
        k.key = crate::config::Key::new(vec![1]);
        k.accept_key = Some(crate::config::Key::new(vec![2]));
        assert!(diff(&old, &k).is_empty());
    }
}
