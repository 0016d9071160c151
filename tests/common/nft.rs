//! Link faults made with nftables inside a test's network namespace: cut or lossy links
//! (there is no netem in the test kernel). Each fault is a table of its own, deleted by
//! Drop, even when the test fails.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{try_run, unique};

/// An nftables table (family inet) in namespace `ns`, deleted on drop.
pub struct NftTable {
    ns: String,
    name: String,
}

impl NftTable {
    /// Creates table `inet NAME` (NAME made unique) in `ns` with the chains in `body`
    /// (nft syntax, the lines inside `table … { }`); panics if nft refuses it.
    pub fn new(ns: &str, tag: &str, body: &str) -> NftTable {
        let name = format!("{tag}_{}", unique().replace('-', "_"));
        let text = format!("table inet {name} {{\n{body}\n}}\n");
        let mut c = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "nft in {ns}: {}\n{text}", String::from_utf8_lossy(&o.stderr));
        NftTable { ns: ns.to_string(), name }
    }

    /// Drops, in `ns`, packets in and out of interface `iface` that `what` matches (nft
    /// match expressions, e.g. `udp dport 694`; empty: everything), all of them or, with
    /// `percent`, that share of them at random (`numgen random`).
    pub fn drop(ns: &str, iface: &str, what: &str, percent: Option<u32>) -> NftTable {
        NftTable::drop_dir(ns, iface, what, percent, true, true)
    }

    /// Like [`NftTable::drop`], in one direction or both: packets arriving on `iface`
    /// (`inbound`), leaving by it (`outbound`).
    pub fn drop_dir(
        ns: &str,
        iface: &str,
        what: &str,
        percent: Option<u32>,
        inbound: bool,
        outbound: bool,
    ) -> NftTable {
        let chance = percent.map(|p| format!("numgen random mod 100 < {p} ")).unwrap_or_default();
        let mut body = String::new();
        if inbound {
            body += &format!(
                " chain in {{ type filter hook input priority -10; policy accept; iifname \"{iface}\" {what} {chance}drop; }}\n"
            );
        }
        if outbound {
            body += &format!(
                " chain out {{ type filter hook output priority -10; policy accept; oifname \"{iface}\" {what} {chance}drop; }}\n"
            );
        }
        NftTable::new(ns, "fault", &body)
    }

    /// Drops UDP to and from `port` on `iface` (a heartbeat link that shares its interface
    /// with the service).
    pub fn drop_udp(ns: &str, iface: &str, port: u16, percent: Option<u32>) -> NftTable {
        NftTable::drop(ns, iface, &format!("udp dport {port}"), percent)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        try_run(&["ip", "netns", "exec", &self.ns, "nft", "delete", "table", "inet", &self.name]);
    }
}
