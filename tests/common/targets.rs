//! Ping targets for the two-node rig ([`super::Rig`]): a router-like namespace on the client
//! LAN (the rig's bridge) that answers ICMP echoes on a few addresses, and nftables rules
//! that make a target silent or lossy, seen from everyone or from one node only.
//!
//! ```text
//!   alpha lan0 192.0.2.1  2001:db8:5::1 ──┐
//!   beta  lan0 192.0.2.2  2001:db8:5::2 ──┼── bridge ns (br0) ── targets ns: lan0 192.0.2.254, .253, …
//!   client lan0 192.0.2.100             ──┘                      2001:db8:5::fe, …
//! ```
//!
//! IPv6 addresses are added without duplicate address detection (`nodad`), so they work at
//! once. Everything lives in namespaces the rig (and this guard) created; the targets'
//! namespace goes with [`PingTargets`]'s Drop.

use std::process::{Command, Stdio};

use super::{run, unique, Netns, Rig};

/// The node addresses on the rig's LAN for IPv6 targets (`add_v6`).
pub fn node_v6(name: &str) -> &'static str {
    if name == "alpha" {
        "2001:db8:5::1/64"
    } else {
        "2001:db8:5::2/64"
    }
}

/// Adds an IPv6 address in 2001:db8::/32 to `iface` in `ns`, without duplicate detection.
pub fn add_v6(ns: &str, iface: &str, cidr: &str) {
    run(&["ip", "-n", ns, "addr", "add", cidr, "dev", iface, "nodad"]);
}

/// Loads an nftables ruleset (`nft -f -`) in namespace `ns`; panics on failure.
pub fn nft(ns: &str, rules: &str) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "nft in {ns}: {}\n{rules}", String::from_utf8_lossy(&out.stderr));
}

/// Deletes an nftables table in `ns` (quietly: it may be gone).
pub fn nft_delete(ns: &str, family: &str, table: &str) {
    let _ = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "delete", "table", family, table])
        .stderr(Stdio::null())
        .status();
}

/// The packets of each `counter` of table `family table` in `ns`, in rule order.
pub fn nft_counters(ns: &str, family: &str, table: &str) -> Vec<u64> {
    let o = Command::new("ip").args(["netns", "exec", ns, "nft", "list", "table", family, table]).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut n = Vec::new();
    let mut it = s.split_whitespace();
    while let Some(w) = it.next() {
        if w == "packets" {
            n.push(it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0));
        }
    }
    n
}

/// A namespace on the rig's LAN answering echoes on `v4` and `v6` addresses.
pub struct PingTargets {
    pub ns: Netns,
    pub v4: Vec<String>,
    pub v6: Vec<String>,
}

impl PingTargets {
    /// Attaches a new namespace to `rig`'s bridge with these addresses (IPv4 /24 on
    /// 192.0.2.0/24, IPv6 /64 on 2001:db8:5::/64). With IPv6 targets, give the nodes
    /// their addresses with [`add_v6`] and [`node_v6`].
    pub fn on(rig: &Rig, v4: &[&str], v6: &[&str]) -> PingTargets {
        let ns = Netns::new(format!("tpt{}", unique()));
        let port = format!("pt{}", unique());
        let br = rig.br.name();
        run(&["ip", "-n", ns.name(), "link", "add", "lan0", "type", "veth", "peer", "name", &port, "netns", br]);
        run(&["ip", "-n", br, "link", "set", &port, "master", "br0"]);
        run(&["ip", "-n", br, "link", "set", &port, "up"]);
        for a in v4 {
            run(&["ip", "-n", ns.name(), "addr", "add", &format!("{a}/24"), "dev", "lan0"]);
        }
        for a in v6 {
            add_v6(ns.name(), "lan0", &format!("{a}/64"));
        }
        ns.link("lan0", true);
        PingTargets {
            ns,
            v4: v4.iter().map(|s| s.to_string()).collect(),
            v6: v6.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn table(addr: &str) -> String {
        format!("silent_{}", addr.replace(['.', ':'], "_"))
    }

    /// Makes target `addr` stop answering (false) or answer again (true): echo requests to
    /// it are dropped on arrival, for everyone (neighbour discovery still works).
    pub fn answer(&self, addr: &str, on: bool) {
        let t = Self::table(addr);
        if on {
            nft_delete(self.ns.name(), "inet", &t);
        } else {
            let (fam, icmp) = if addr.contains(':') { ("ip6", "icmpv6") } else { ("ip", "icmp") };
            nft(
                self.ns.name(),
                &format!(
                    "table inet {t} {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n  \
                     {fam} daddr {addr} {icmp} type echo-request counter drop\n }}\n}}\n"
                ),
            );
        }
    }
}
