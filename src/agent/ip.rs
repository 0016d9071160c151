//! The `ip::ADDR/PREFIX[/IFACE[/LABEL]]` agent: adds and removes an address with
//! rtnetlink, and sends a gratuitous ARP request (IPv4) or an unsolicited
//! neighbour advertisement (IPv6) on a packet socket.
//!
//! The argument is the config's [`IpSpec`]:
//! - `PREFIX` left out: the prefix of the subnet on the host that holds `ADDR` (heartbeat's
//!   `IPaddr` did the same), found when the agent is built and again at each start;
//! - `IFACE` left out: the interface whose subnet contains `ADDR`;
//! - `LABEL` (IPv4 only): with a `:` it is the whole label, else `IFACE:LABEL`; an IPv4
//!   address in that place is the broadcast address (`IPaddr::ADDR/24/eth0/BROADCAST`).
//!
//! All operations are quick netlink requests with a receive deadline: `Exec::Inline`.
//! Each operation as a whole (up to five requests) waits at most its budget, 1 s by default;
//! the daemon, which runs these operations inside its loop, sets it below its deadtime
//! with [`Agent::set_inline_budget`] (`min(250ms, deadtime/4)`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::errno::Errno;

use super::{Agent, AgentError, Exec, Op, Outcome};
pub use crate::config::IpSpec;
use crate::netlink::route::{self, Family};
use crate::netlink::{NetlinkError, NlSocket, Protocol};
use crate::sys::packet::PacketSocket;
use crate::time::Duration;

/// Where to send gratuitous ARPs after an address is added: the daemon sends one immediately and
/// the rest (`garp_count - 1`) every `garp_interval` from its timer wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpTarget {
    pub ifindex: u32,
    pub addr: IpAddr,
}

/// The `ip` resource agent.
#[derive(Debug)]
pub struct IpAgent {
    text: String,
    spec: IpSpec,
    /// Prefix as used (given, or found at build time).
    prefix: u8,
    /// Where the address went at the last successful start.
    garp: Option<GarpTarget>,
    /// The interface found at build time (where its gratuitous ARPs will go).
    ifindex: u32,
    /// How long one operation's netlink requests may wait in total.
    budget: Duration,
}

fn nl_err(e: NetlinkError) -> AgentError {
    match e {
        NetlinkError::Kernel { op, errno } | NetlinkError::Sys { op, errno } => {
            AgentError::Sys { op: op.to_owned(), errno }
        }
        NetlinkError::Timeout { op } => AgentError::Sys { op: op.to_owned(), errno: Errno::ETIMEDOUT },
        other => AgentError::Failed(other.to_string()),
    }
}

fn route_socket() -> Result<NlSocket, AgentError> {
    NlSocket::new(Protocol::Route).map_err(nl_err)
}

/// A socket whose requests, all together, wait at most `budget` from now.
fn budget_socket(budget: Duration) -> Result<NlSocket, AgentError> {
    let mut sock = route_socket()?;
    sock.set_timeout(budget);
    sock.set_end(Some(crate::time::now() + budget));
    Ok(sock)
}

impl IpAgent {
    /// Checks, without side effects, that the interface exists (or that a subnet holds the
    /// address when no interface is named), and finds the prefix when it was left out.
    pub fn new(spec: &IpSpec, text: &str) -> Result<IpAgent, AgentError> {
        let mut sock = route_socket()?;
        let (ifindex, prefix) = Self::place(&mut sock, spec)?;
        Ok(IpAgent {
            text: text.to_owned(),
            spec: spec.clone(),
            prefix,
            garp: None,
            ifindex,
            budget: crate::netlink::DEFAULT_TIMEOUT,
        })
    }

    pub fn spec(&self) -> &IpSpec {
        &self.spec
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Where to add the address: (ifindex, prefix).
    fn place(sock: &mut NlSocket, spec: &IpSpec) -> Result<(u32, u8), AgentError> {
        match &spec.iface {
            Some(name) => {
                let idx = iface_index(sock, name)?;
                let prefix = match spec.prefix {
                    Some(p) => p,
                    None => route::addresses(sock, Some(Family::of(&spec.addr)))
                        .map_err(nl_err)?
                        .iter()
                        .filter(|e| e.ifindex == idx && e.prefix > 0)
                        .filter(|e| route::subnet_contains(&e.addr, e.prefix, &spec.addr))
                        .map(|e| e.prefix)
                        .max()
                        .ok_or_else(|| {
                            AgentError::Config(format!(
                                "no prefix given for {} and no subnet on {name} holds it",
                                spec.addr
                            ))
                        })?,
                };
                Ok((idx, prefix))
            }
            None => {
                let e = route::subnet_for(sock, spec.addr)
                    .map_err(nl_err)?
                    .ok_or_else(|| AgentError::Config(format!("no interface has a subnet that holds {}", spec.addr)))?;
                Ok((e.ifindex, spec.prefix.unwrap_or(e.prefix)))
            }
        }
    }

    /// Where the address is now (for stop/status): the named interface, or any
    /// interface that holds exactly ADDR/PREFIX. `None` = not present anywhere we look.
    fn locate(&self, sock: &mut NlSocket) -> Result<Option<u32>, AgentError> {
        let list = route::addresses(sock, Some(Family::of(&self.spec.addr))).map_err(nl_err)?;
        let idx = match &self.spec.iface {
            Some(name) => match route::link_index(sock, name) {
                Ok(i) => Some(i),
                Err(e) if e.errno() == Some(Errno::ENODEV) => return Ok(None),
                Err(e) => return Err(nl_err(e)),
            },
            None => None,
        };
        Ok(list
            .iter()
            .find(|e| e.addr == self.spec.addr && e.prefix == self.prefix && idx.is_none_or(|i| e.ifindex == i))
            .map(|e| e.ifindex))
    }

    fn start(&mut self) -> Result<Outcome, AgentError> {
        let mut sock = budget_socket(self.budget)?;
        let (idx, prefix) = Self::place(&mut sock, &self.spec)?;
        self.prefix = prefix;
        // Only a labelled address needs the interface's name (one more request).
        let label = match &self.spec.label {
            None => None,
            Some(_) => {
                let name = match &self.spec.iface {
                    Some(n) => n.clone(),
                    None => route::link_info(&mut sock, idx).map_err(nl_err)?.name,
                };
                self.spec.full_label(&name)
            }
        };
        let label = label.as_deref();
        let res = match (self.spec.addr, self.spec.broadcast) {
            (IpAddr::V4(_), Some(bc)) => {
                let req = route::AddrRequest {
                    delete: false,
                    ifindex: idx,
                    addr: self.spec.addr,
                    prefix,
                    label,
                    broadcast: Some(bc),
                };
                sock.request("add address", &req, |_| Ok(()))
            }
            _ => route::add_address(&mut sock, idx, self.spec.addr, prefix, label),
        };
        match res {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::EEXIST) => {
                // Already there: fine if it is ours (same interface and address).
                let held = route::addresses(&mut sock, Some(Family::of(&self.spec.addr)))
                    .map_err(nl_err)?
                    .iter()
                    .any(|a| a.ifindex == idx && a.addr == self.spec.addr);
                if !held {
                    return Err(nl_err(e));
                }
            }
            Err(e) => return Err(nl_err(e)),
        }
        self.garp = Some(GarpTarget { ifindex: idx, addr: self.spec.addr });
        Ok(Outcome::Running)
    }

    fn stop(&mut self) -> Result<Outcome, AgentError> {
        let mut sock = budget_socket(self.budget)?;
        if let Some(idx) = self.locate(&mut sock)? {
            match route::del_address(&mut sock, idx, self.spec.addr, self.prefix) {
                Ok(()) => {}
                Err(e) if matches!(e.errno(), Some(Errno::EADDRNOTAVAIL | Errno::ENOENT | Errno::ENODEV)) => {}
                Err(e) => return Err(nl_err(e)),
            }
        }
        self.garp = None;
        Ok(Outcome::Stopped)
    }

    fn status(&mut self) -> Result<Outcome, AgentError> {
        let mut sock = budget_socket(self.budget)?;
        Ok(match self.locate(&mut sock)? {
            Some(_) => Outcome::Running,
            None => Outcome::Stopped,
        })
    }
}

fn iface_index(sock: &mut NlSocket, name: &str) -> Result<u32, AgentError> {
    match route::link_index(sock, name) {
        Ok(i) => Ok(i),
        Err(e) if e.errno() == Some(Errno::ENODEV) => {
            Err(AgentError::Config(format!("interface {name} does not exist")))
        }
        Err(e) => Err(nl_err(e)),
    }
}

impl Agent for IpAgent {
    fn text(&self) -> &str {
        &self.text
    }
    fn exec(&self, _op: Op) -> Exec {
        Exec::Inline
    }
    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        match op {
            Op::Start => self.start(),
            Op::Stop => self.stop(),
            Op::Status => self.status(),
        }
    }
    fn garp(&self) -> Option<GarpTarget> {
        self.garp
    }
    fn garp_iface(&self) -> Option<u32> {
        Some(self.ifindex)
    }
    fn set_inline_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }
    fn inline_budget(&self) -> Option<Duration> {
        Some(self.budget)
    }
}

// ---- gratuitous ARP / unsolicited NA ----

/// Length of a gratuitous ARP frame (padded to the Ethernet minimum without FCS).
pub const ARP_FRAME_LEN: usize = 60;
/// Length of an unsolicited NA frame: Ethernet 14 + IPv6 40 + ICMPv6 NA 24 + option 8.
pub const NA_FRAME_LEN: usize = 86;

/// A gratuitous ARP *request* (RFC 5227 announcement): broadcast destination,
/// sender = target = `ip`, sender MAC = `mac`, target MAC zero.
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    let ip = ip.octets();
    let parts: [&[u8]; 10] = [
        &[0xff; 6],                // destination: broadcast
        &mac,                      // source
        &[0x08, 0x06],             // ethertype ARP
        &[0x00, 0x01, 0x08, 0x00], // htype Ethernet, ptype IPv4
        &[6, 4],                   // hlen, plen
        &[0x00, 0x01],             // opcode request
        &mac,                      // sender MAC
        &ip,                       // sender IP
        &[0; 6],                   // target MAC
        &ip,                       // target IP
    ];
    let mut at = 0;
    for p in parts {
        if let Some(dst) = f.get_mut(at..at + p.len()) {
            dst.copy_from_slice(p);
        }
        at += p.len();
    }
    f
}

fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An unsolicited neighbour advertisement: to ff02::1 (MAC 33:33:00:00:00:01), hop limit
/// 255, from and for `ip`, override flag set, with a target link-layer address option.
pub fn unsolicited_na_frame(mac: [u8; 6], ip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets();
    let src = ip.octets();
    let mut icmp = [0u8; 32];
    icmp[0] = 136; // neighbour advertisement
    icmp[4] = 0x20; // O (override); not R, not S (S must be 0 to a multicast destination)
    icmp[8..24].copy_from_slice(&src);
    icmp[24] = 2; // target link-layer address
    icmp[25] = 1; // 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    // checksum over the pseudo-header and the message
    let mut sum = checksum_add(0, &src);
    sum = checksum_add(sum, &all_nodes);
    sum = checksum_add(sum, &(icmp.len() as u32).to_be_bytes());
    sum = checksum_add(sum, &[0, 0, 0, 58]);
    sum = checksum_add(sum, &icmp);
    icmp[2..4].copy_from_slice(&checksum_fold(sum).to_be_bytes());

    let mut ip6 = [0u8; 40];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
    ip6[6] = 58; // ICMPv6
    ip6[7] = 255; // hop limit
    ip6[8..24].copy_from_slice(&src);
    ip6[24..40].copy_from_slice(&all_nodes);

    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14..54].copy_from_slice(&ip6);
    f[54..86].copy_from_slice(&icmp);
    f
}

/// Sends ONE GARP for `a`: a gratuitous ARP request (IPv4) or an unsolicited NA
/// (IPv6), from the interface's current MAC. The daemon calls it `garp_count` times.
pub fn send_garp(a: &GarpTarget) -> Result<(), AgentError> {
    GarpSender::new().send(a)
}

/// Sends GARPs over sockets kept open between calls. Binding an AF_PACKET socket
/// waits for an RCU grace period in the kernel (`synchronize_net`, ~10-20 ms): the daemon
/// binds one per interface at start-up ([`GarpSender::prepare`]) so a failover pays nothing.
#[derive(Default)]
pub struct GarpSender {
    route: Option<NlSocket>,
    packet: Vec<PacketSocket>,
}

impl GarpSender {
    pub fn new() -> GarpSender {
        GarpSender::default()
    }

    /// Opens and binds the packet socket for `ifindex` now, if not open yet.
    pub fn prepare(&mut self, ifindex: u32) -> Result<(), AgentError> {
        if self.packet.iter().any(|p| p.ifindex() == ifindex) {
            return Ok(());
        }
        let ps = PacketSocket::bind(ifindex, 0)
            .map_err(|errno| AgentError::Sys { op: format!("packet socket on interface index {ifindex}"), errno })?;
        self.packet.push(ps);
        Ok(())
    }

    /// ONE gratuitous ARP request (IPv4) or unsolicited NA (IPv6) for `a`, with the
    /// interface's current MAC.
    pub fn send(&mut self, a: &GarpTarget) -> Result<(), AgentError> {
        let sock = match &mut self.route {
            Some(s) => s,
            None => self.route.insert(route_socket()?),
        };
        let link = route::link_info(sock, a.ifindex).map_err(nl_err)?;
        let mac = link.mac.ok_or_else(|| {
            AgentError::Failed(format!("interface {} has no Ethernet address to announce", link.name))
        })?;
        self.prepare(a.ifindex)?;
        let (frame_v4, frame_v6);
        let (frame, what): (&[u8], &str) = match a.addr {
            IpAddr::V4(ip) => {
                frame_v4 = garp_frame(mac, ip);
                (&frame_v4, "gratuitous ARP")
            }
            IpAddr::V6(ip) => {
                frame_v6 = unsolicited_na_frame(mac, ip);
                (&frame_v6, "unsolicited neighbour advertisement")
            }
        };
        let pos = self.packet.iter().position(|p| p.ifindex() == a.ifindex);
        let res = match pos.and_then(|i| self.packet.get(i)) {
            Some(ps) => ps.send(frame),
            None => Err(nix::errno::Errno::ENODEV),
        };
        if res.is_err() {
            // The interface may have been re-created: bind afresh next time.
            if let Some(i) = pos {
                self.packet.swap_remove(i);
            }
        }
        res.map(|_| ())
            .map_err(|errno| AgentError::Sys { op: format!("send {what} for {} on {}", a.addr, link.name), errno })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_bytes() {
        let f = garp_frame([2, 0, 0, 0, 0, 1], "192.0.2.50".parse().unwrap());
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1,
            192, 0, 2, 50, 0, 0, 0, 0, 0, 0, 192, 0, 2, 50,
        ];
        assert_eq!(&f[..42], &want);
        assert!(f[42..].iter().all(|&b| b == 0));
    }

    #[test]
    fn na_bytes_and_checksum() {
        let ip: Ipv6Addr = "2001:db8::50".parse().unwrap();
        let f = unsolicited_na_frame([2, 0, 0, 0, 0, 1], ip);
        assert_eq!(&f[0..14], &[0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x86, 0xdd]);
        assert_eq!(&f[14..22], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(&f[22..38], &ip.octets());
        assert_eq!(&f[38..54], &"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(&f[54..56], &[136, 0]);
        assert_eq!(&f[58..62], &[0x20, 0, 0, 0]);
        assert_eq!(&f[62..78], &ip.octets());
        assert_eq!(&f[78..86], &[2, 1, 2, 0, 0, 0, 0, 1]);
        // verifying: the sum over pseudo-header + message, checksum included, folds to 0
        let mut sum = checksum_add(0, &f[22..38]);
        sum = checksum_add(sum, &f[38..54]);
        sum = checksum_add(sum, &[0, 0, 0, 32, 0, 0, 0, 58]);
        sum = checksum_add(sum, &f[54..86]);
        assert_eq!(checksum_fold(sum), 0);
    }
}
