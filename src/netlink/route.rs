//! rtnetlink: links (`RTM_GETLINK`) and addresses (`RTM_GETADDR`/`NEWADDR`/`DELADDR`).
//!
//! Every function takes a `NETLINK_ROUTE` [`NlSocket`]; the socket works in the network
//! namespace it was created in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    nla_size, strz_len, MsgBuilder, NetlinkError, NlMsg, NlSocket, Request, Result, NLA_HDRLEN, NLM_F_ACK,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;

pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_LINK: u16 = 5;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_NET_NS_FD: u16 = 28;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
/// `IFLA_MACVLAN_MODE` (u32) and `IFLA_IPVLAN_MODE` (u16) are both attribute 1 of
/// `IFLA_INFO_DATA`.
pub const IFLA_VLAN_MODE: u16 = 1;
pub const MACVLAN_MODE_BRIDGE: u32 = 4;
pub const IPVLAN_MODE_L2: u16 = 0;
pub const RTM_SETLINK: u16 = 19;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_FLAGS: u16 = 8;

pub const IFA_F_SECONDARY: u32 = 0x01;
pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_TENTATIVE: u32 = 0x40;

pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x1_0000;

pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

/// Size of `struct ifaddrmsg`.
pub const IFADDRMSG_LEN: usize = 8;
/// Size of `struct ifinfomsg`.
pub const IFINFOMSG_LEN: usize = 16;
/// `IFNAMSIZ - 1`: the longest interface name or address label.
pub const MAX_NAME_LEN: usize = 15;

/// An address family filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
    fn af(self) -> u8 {
        match self {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }
}

fn addr_bytes(addr: &IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => {
            b.copy_from_slice(&a.octets());
            (b, 16)
        }
    }
}

/// The IPv4 broadcast address of `addr/prefix`, or `None` for /31 and /32.
pub fn v4_broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    if prefix >= 31 {
        return None;
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Some(Ipv4Addr::from(u32::from(addr) | !mask))
}

/// Whether `addr` lies in the subnet `net/prefix` (same family only).
pub fn subnet_contains(net: &IpAddr, prefix: u8, addr: &IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(*n) & mask == u32::from(*a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(*n) & mask == u128::from(*a) & mask
        }
        _ => false,
    }
}

// ---- requests ----

/// `RTM_GETLINK` for one link, by index or (index 0) by name.
#[derive(Debug, Clone, Copy)]
pub struct GetLink<'a> {
    pub index: u32,
    pub name: Option<&'a str>,
}

impl Request for GetLink<'_> {
    fn message_type(&self) -> u16 {
        RTM_GETLINK
    }
    fn flags(&self) -> u16 {
        0
    }
    fn payload_len(&self) -> usize {
        IFINFOMSG_LEN + self.name.map_or(0, |n| nla_size(strz_len(n)))
    }
    fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
        let mut h = [0u8; IFINFOMSG_LEN];
        h[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b.put_header(&h);
        if let Some(n) = self.name {
            b.put_strz(IFLA_IFNAME, n);
        }
    }
}

/// `RTM_GETADDR` dump, optionally for one family.
#[derive(Debug, Clone, Copy)]
pub struct GetAddrDump {
    pub family: Option<Family>,
}

impl Request for GetAddrDump {
    fn message_type(&self) -> u16 {
        RTM_GETADDR
    }
    fn flags(&self) -> u16 {
        NLM_F_DUMP
    }
    fn payload_len(&self) -> usize {
        IFADDRMSG_LEN
    }
    fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
        let mut h = [0u8; IFADDRMSG_LEN];
        h[0] = self.family.map_or(0, Family::af);
        b.put_header(&h);
    }
}

/// `RTM_NEWADDR` (create, exclusive, acked) or `RTM_DELADDR` (acked).
#[derive(Debug, Clone, Copy)]
pub struct AddrRequest<'a> {
    pub delete: bool,
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 only (`IFA_LABEL`); at most 15 bytes.
    pub label: Option<&'a str>,
    /// IPv4 only (`IFA_BROADCAST`); only sent when adding.
    pub broadcast: Option<Ipv4Addr>,
}

impl AddrRequest<'_> {
    fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl Request for AddrRequest<'_> {
    fn message_type(&self) -> u16 {
        if self.delete {
            RTM_DELADDR
        } else {
            RTM_NEWADDR
        }
    }
    fn flags(&self) -> u16 {
        if self.delete {
            NLM_F_ACK
        } else {
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK
        }
    }
    fn payload_len(&self) -> usize {
        let alen = if self.is_v4() { 4 } else { 16 };
        let mut n = IFADDRMSG_LEN + 2 * nla_size(alen);
        if self.is_v4() {
            if let Some(l) = self.label {
                n += nla_size(strz_len(l));
            }
            if !self.delete && self.broadcast.is_some() {
                n += nla_size(4);
            }
        }
        n
    }
    fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
        let (bytes, alen) = addr_bytes(&self.addr);
        let mut h = [0u8; IFADDRMSG_LEN];
        h[0] = Family::of(&self.addr).af();
        h[1] = self.prefix;
        // IPv6: no duplicate address detection, so the address is usable at once.
        h[2] = if !self.is_v4() && !self.delete { IFA_F_NODAD as u8 } else { 0 };
        h[3] = 0; // RT_SCOPE_UNIVERSE
        h[4..8].copy_from_slice(&self.ifindex.to_ne_bytes());
        b.put_header(&h);
        let a = bytes.get(..alen).unwrap_or(&[]);
        b.put_attr(IFA_LOCAL, a);
        b.put_attr(IFA_ADDRESS, a);
        if self.is_v4() {
            if !self.delete {
                if let Some(bc) = self.broadcast {
                    b.put_attr(IFA_BROADCAST, &bc.octets());
                }
            }
            if let Some(l) = self.label {
                b.put_strz(IFA_LABEL, l);
            }
        }
    }
}

/// The kind of a child link created on a parent interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildLinkKind {
    /// macvlan in bridge mode: its own MAC address; children of one parent reach each other.
    Macvlan,
    /// ipvlan in L2 mode: the parent's MAC address (for switch ports that allow one MAC).
    Ipvlan,
}

/// `RTM_NEWLINK` creating a macvlan/ipvlan link `name` on `parent`, directly in the network
/// namespace `netns_fd` when given (create, exclusive, acked).
#[derive(Debug, Clone, Copy)]
pub struct NewChildLink<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub kind: ChildLinkKind,
    pub netns_fd: Option<i32>,
}

impl NewChildLink<'_> {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            ChildLinkKind::Macvlan => "macvlan",
            ChildLinkKind::Ipvlan => "ipvlan",
        }
    }
    fn data_len(&self) -> usize {
        match self.kind {
            ChildLinkKind::Macvlan => nla_size(4),
            ChildLinkKind::Ipvlan => nla_size(2),
        }
    }
}

impl Request for NewChildLink<'_> {
    fn message_type(&self) -> u16 {
        RTM_NEWLINK
    }
    fn flags(&self) -> u16 {
        NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK
    }
    fn payload_len(&self) -> usize {
        let info = nla_size(strz_len(self.kind_name())) + NLA_HDRLEN + self.data_len();
        IFINFOMSG_LEN
            + nla_size(strz_len(self.name))
            + nla_size(4)
            + self.netns_fd.map_or(0, |_| nla_size(4))
            + NLA_HDRLEN
            + info
    }
    fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
        b.put_header(&[0u8; IFINFOMSG_LEN]);
        b.put_strz(IFLA_IFNAME, self.name);
        b.put_u32(IFLA_LINK, self.parent);
        if let Some(fd) = self.netns_fd {
            b.put_u32(IFLA_NET_NS_FD, fd as u32);
        }
        let info = b.nest_start_raw(IFLA_LINKINFO);
        b.put_strz(IFLA_INFO_KIND, self.kind_name());
        let data = b.nest_start_raw(IFLA_INFO_DATA);
        match self.kind {
            ChildLinkKind::Macvlan => b.put_u32(IFLA_VLAN_MODE, MACVLAN_MODE_BRIDGE),
            ChildLinkKind::Ipvlan => b.put_u16(IFLA_VLAN_MODE, IPVLAN_MODE_L2),
        }
        b.nest_end(data);
        b.nest_end(info);
    }
}

/// `RTM_SETLINK` bringing link `index` up (acked).
#[derive(Debug, Clone, Copy)]
pub struct SetLinkUp {
    pub index: u32,
}

impl Request for SetLinkUp {
    fn message_type(&self) -> u16 {
        RTM_SETLINK
    }
    fn flags(&self) -> u16 {
        NLM_F_ACK
    }
    fn payload_len(&self) -> usize {
        IFINFOMSG_LEN
    }
    fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
        let mut h = [0u8; IFINFOMSG_LEN];
        h[4..8].copy_from_slice(&self.index.to_ne_bytes());
        h[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        h[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
        b.put_header(&h);
    }
}

// ---- replies ----

/// One link (`RTM_NEWLINK` reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// The Ethernet address, if the link has a 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// `ifi_flags` (`IFF_UP`, `IFF_RUNNING`, `IFF_LOWER_UP`, …).
    pub flags: u32,
}

impl LinkInfo {
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    pub fn parse(msg: &NlMsg<'_>) -> Result<LinkInfo> {
        if msg.message_type() != RTM_NEWLINK {
            return Err(NetlinkError::Malformed { op: "parse link", what: "not RTM_NEWLINK" });
        }
        let h = msg
            .payload()
            .get(..IFINFOMSG_LEN)
            .ok_or(NetlinkError::Malformed { op: "parse link", what: "short ifinfomsg" })?;
        let mut idx = [0u8; 4];
        idx.copy_from_slice(h.get(4..8).unwrap_or(&[0; 4]));
        let mut fl = [0u8; 4];
        fl.copy_from_slice(h.get(8..12).unwrap_or(&[0; 4]));
        let mut info =
            LinkInfo { index: u32::from_ne_bytes(idx), name: String::new(), mac: None, flags: u32::from_ne_bytes(fl) };
        for a in msg.attrs(IFINFOMSG_LEN) {
            let a = a.map_err(|e| e.with_op("parse link"))?;
            match a.kind() {
                IFLA_IFNAME => info.name = a.as_str().map_err(|e| e.with_op("parse link"))?.to_owned(),
                IFLA_ADDRESS => info.mac = a.as_array::<6>().ok(),
                _ => {}
            }
        }
        Ok(info)
    }
}

/// One address (`RTM_NEWADDR` in a dump).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEntry {
    pub ifindex: u32,
    /// The local address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 label (`eth0:web`); `None` for IPv6.
    pub label: Option<String>,
    /// `IFA_FLAGS` (or `ifa_flags`): `IFA_F_SECONDARY`, `IFA_F_TENTATIVE`, …
    pub flags: u32,
    pub scope: u8,
}

impl AddrEntry {
    pub fn parse(msg: &NlMsg<'_>) -> Result<AddrEntry> {
        const OP: &str = "parse address";
        if msg.message_type() != RTM_NEWADDR {
            return Err(NetlinkError::Malformed { op: OP, what: "not RTM_NEWADDR" });
        }
        let h =
            msg.payload().get(..IFADDRMSG_LEN).ok_or(NetlinkError::Malformed { op: OP, what: "short ifaddrmsg" })?;
        let (family, prefix, flags8, scope) = (
            h.first().copied().unwrap_or(0),
            h.get(1).copied().unwrap_or(0),
            h.get(2).copied().unwrap_or(0),
            h.get(3).copied().unwrap_or(0),
        );
        let mut idx = [0u8; 4];
        idx.copy_from_slice(h.get(4..8).unwrap_or(&[0; 4]));
        let mut local = None;
        let mut address = None;
        let mut label = None;
        let mut flags = u32::from(flags8);
        for a in msg.attrs(IFADDRMSG_LEN) {
            let a = a.map_err(|e| e.with_op(OP))?;
            let ip = || -> Result<IpAddr> {
                match family {
                    AF_INET => Ok(IpAddr::V4(Ipv4Addr::from(a.as_array::<4>()?))),
                    AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(a.as_array::<16>()?))),
                    _ => Err(NetlinkError::Malformed { op: OP, what: "unknown address family" }),
                }
            };
            match a.kind() {
                IFA_LOCAL => local = Some(ip().map_err(|e| e.with_op(OP))?),
                IFA_ADDRESS => address = Some(ip().map_err(|e| e.with_op(OP))?),
                IFA_LABEL => label = Some(a.as_str().map_err(|e| e.with_op(OP))?.to_owned()),
                IFA_FLAGS => flags = a.as_u32().map_err(|e| e.with_op(OP))?,
                _ => {}
            }
        }
        let addr = local
            .or(address)
            .ok_or(NetlinkError::Malformed { op: OP, what: "address without IFA_LOCAL/IFA_ADDRESS" })?;
        Ok(AddrEntry { ifindex: u32::from_ne_bytes(idx), addr, prefix, label, flags, scope })
    }
}

// ---- operations ----

fn get_link(sock: &mut NlSocket, op: &'static str, req: &GetLink<'_>) -> Result<LinkInfo> {
    let mut out = None;
    sock.request(op, req, |m| {
        if m.message_type() == RTM_NEWLINK && out.is_none() {
            out = Some(LinkInfo::parse(m).map_err(|e| e.with_op(op))?);
        }
        Ok(())
    })?;
    out.ok_or(NetlinkError::Malformed { op, what: "no link in reply" })
}

/// The index of the interface called `name` (`Kernel { errno: ENODEV }` if none).
pub fn link_index(sock: &mut NlSocket, name: &str) -> Result<u32> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('\0') {
        return Err(NetlinkError::Kernel { op: "look up interface", errno: nix::errno::Errno::ENODEV });
    }
    get_link(sock, "look up interface", &GetLink { index: 0, name: Some(name) }).map(|l| l.index)
}

/// Name, MAC and flags of link `index` (`Kernel { errno: ENODEV }` if none).
pub fn link_info(sock: &mut NlSocket, index: u32) -> Result<LinkInfo> {
    get_link(sock, "get interface", &GetLink { index, name: None })
}

/// Creates a macvlan/ipvlan link on `parent` (see [`NewChildLink`]).
pub fn new_child_link(sock: &mut NlSocket, req: &NewChildLink<'_>) -> Result<()> {
    sock.request("create interface", req, |_| Ok(()))
}

/// Brings link `index` up.
pub fn set_link_up(sock: &mut NlSocket, index: u32) -> Result<()> {
    sock.request("set interface up", &SetLinkUp { index }, |_| Ok(()))
}

/// All addresses (of one family, or all).
pub fn addresses(sock: &mut NlSocket, family: Option<Family>) -> Result<Vec<AddrEntry>> {
    const OP: &str = "list addresses";
    let mut out = Vec::new();
    sock.request(OP, &GetAddrDump { family }, |m| {
        if m.message_type() == RTM_NEWADDR {
            let e = AddrEntry::parse(m).map_err(|e| e.with_op(OP))?;
            if family.is_none_or(|f| Family::of(&e.addr) == f) {
                out.push(e);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Adds `addr/prefix` to `ifindex` (`EEXIST` if it is there already). IPv4 gets
/// `IFA_BROADCAST` (for prefixes below 31) and the optional label; IPv6 gets `IFA_F_NODAD`.
pub fn add_address(sock: &mut NlSocket, ifindex: u32, addr: IpAddr, prefix: u8, label: Option<&str>) -> Result<()> {
    let broadcast = match addr {
        IpAddr::V4(a) => v4_broadcast(a, prefix),
        IpAddr::V6(_) => None,
    };
    let label = if addr.is_ipv4() { label } else { None };
    let req = AddrRequest { delete: false, ifindex, addr, prefix, label, broadcast };
    sock.request("add address", &req, |_| Ok(()))
}

/// Deletes `addr/prefix` from `ifindex` (`EADDRNOTAVAIL` if it is not there).
pub fn del_address(sock: &mut NlSocket, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<()> {
    let req = AddrRequest { delete: true, ifindex, addr, prefix, label: None, broadcast: None };
    sock.request("delete address", &req, |_| Ok(()))
}

/// Whether `ifindex` holds exactly `addr/prefix`.
pub fn has_address(sock: &mut NlSocket, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<bool> {
    Ok(addresses(sock, Some(Family::of(&addr)))?
        .iter()
        .any(|e| e.ifindex == ifindex && e.addr == addr && e.prefix == prefix))
}

/// The address entry whose subnet contains `addr`, longest prefix first (prefix 0 and
/// host routes of other addresses never match).
pub fn subnet_for(sock: &mut NlSocket, addr: IpAddr) -> Result<Option<AddrEntry>> {
    let mut best: Option<AddrEntry> = None;
    for e in addresses(sock, Some(Family::of(&addr)))? {
        if e.prefix == 0 || !subnet_contains(&e.addr, e.prefix, &addr) {
            continue;
        }
        if best.as_ref().is_none_or(|b| e.prefix > b.prefix) {
            best = Some(e);
        }
    }
    Ok(best)
}

/// The interface holding a subnet that contains `addr`.
pub fn iface_for(sock: &mut NlSocket, addr: IpAddr) -> Result<Option<u32>> {
    Ok(subnet_for(sock, addr)?.map(|e| e.ifindex))
}

#[cfg(test)]
#[cfg(target_endian = "little")]
mod tests {
    use super::*;
    use crate::netlink::{NlMsgIter, NlSocket, Protocol, Request};

    use crate::testutil::hex;

    fn emit(r: &dyn Request) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let n = r.emit(&mut buf, 0x0102_0304, 0).unwrap();
        assert_eq!(n, r.buffer_len());
        buf.truncate(n);
        buf
    }

    #[test]
    fn newaddr_v4_with_label() {
        let r = AddrRequest {
            delete: false,
            ifindex: 5,
            addr: "192.0.2.50".parse().unwrap(),
            prefix: 24,
            label: Some("veth0:web"),
            broadcast: Some("192.0.2.255".parse().unwrap()),
        };
        let want = hex("40000000 1400 0506 04030201 00000000
             02 18 00 00 05000000
             0800 0200 c0000232
             0800 0100 c0000232
             0800 0400 c00002ff
             0e00 0300 76657468303a776562 00 0000");
        assert_eq!(emit(&r), want);
    }

    #[test]
    fn newaddr_v6_nodad() {
        let r = AddrRequest {
            delete: false,
            ifindex: 7,
            addr: "2001:db8::50".parse().unwrap(),
            prefix: 64,
            label: Some("ignored"),
            broadcast: None,
        };
        let want = hex("40000000 1400 0506 04030201 00000000
             0a 40 02 00 07000000
             1400 0200 20010db8000000000000000000000050
             1400 0100 20010db8000000000000000000000050");
        assert_eq!(emit(&r), want);
    }

    #[test]
    fn deladdr_v4() {
        let r = AddrRequest {
            delete: true,
            ifindex: 5,
            addr: "192.0.2.50".parse().unwrap(),
            prefix: 24,
            label: None,
            broadcast: Some("192.0.2.255".parse().unwrap()),
        };
        let want = hex("28000000 1500 0500 04030201 00000000
             02 18 00 00 05000000
             0800 0200 c0000232
             0800 0100 c0000232");
        assert_eq!(emit(&r), want);
    }

    #[test]
    fn getaddr_dump() {
        let want = hex("18000000 1600 0103 04030201 00000000 0a000000 00000000");
        assert_eq!(emit(&GetAddrDump { family: Some(Family::V6) }), want);
        let want = hex("18000000 1600 0103 04030201 00000000 00000000 00000000");
        assert_eq!(emit(&GetAddrDump { family: None }), want);
    }

    #[test]
    fn getlink_by_name() {
        let want = hex("2c000000 1200 0100 04030201 00000000
             00 00 0000 00000000 00000000 00000000
             0a00 0300 7665746830 00 0000");
        assert_eq!(emit(&GetLink { index: 0, name: Some("veth0") }), want);
    }

    #[test]
    fn new_macvlan_in_a_netns() {
        let r = NewChildLink { name: "eth0", parent: 3, kind: ChildLinkKind::Macvlan, netns_fd: Some(9) };
        let want = hex("58000000 1000 0506 04030201 00000000
             00 00 0000 00000000 00000000 00000000
             0900 0300 65746830 00 000000
             0800 0500 03000000
             0800 1c00 09000000
             1c00 1200
               0c00 0100 6d6163766c616e 00
               0c00 0200 0800 0100 04000000");
        assert_eq!(emit(&r), want);
    }

    #[test]
    fn new_ipvlan_here() {
        let r = NewChildLink { name: "eth0", parent: 3, kind: ChildLinkKind::Ipvlan, netns_fd: None };
        let want = hex("50000000 1000 0506 04030201 00000000
             00 00 0000 00000000 00000000 00000000
             0900 0300 65746830 00 000000
             0800 0500 03000000
             1c00 1200
               0b00 0100 6970766c616e 00 00
               0c00 0200 0600 0100 0000 0000");
        assert_eq!(emit(&r), want);
    }

    #[test]
    fn set_link_up() {
        let want = hex("20000000 1300 0500 04030201 00000000 00 00 0000 07000000 01000000 01000000");
        assert_eq!(emit(&SetLinkUp { index: 7 }), want);
    }

    #[test]
    fn broadcast_and_subnets() {
        assert_eq!(v4_broadcast("192.0.2.50".parse().unwrap(), 24), Some("192.0.2.255".parse().unwrap()));
        assert_eq!(v4_broadcast("192.0.2.50".parse().unwrap(), 0), Some("255.255.255.255".parse().unwrap()));
        assert_eq!(v4_broadcast("192.0.2.50".parse().unwrap(), 31), None);
        let n: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(subnet_contains(&n, 24, &"192.0.2.200".parse().unwrap()));
        assert!(!subnet_contains(&n, 24, &"198.51.100.1".parse().unwrap()));
        assert!(subnet_contains(&n, 0, &"198.51.100.1".parse().unwrap()));
        assert!(!subnet_contains(&n, 33, &"192.0.2.1".parse().unwrap()));
        let n6: IpAddr = "2001:db8:1::1".parse().unwrap();
        assert!(subnet_contains(&n6, 64, &"2001:db8:1::50".parse().unwrap()));
        assert!(!subnet_contains(&n6, 64, &"2001:db8:2::50".parse().unwrap()));
        assert!(!subnet_contains(&n6, 64, &"192.0.2.1".parse().unwrap()));
    }

    #[test]
    #[ignore = "prints fixtures; run inside a scratch netns"]
    fn capture_fixtures() {
        let mut s = NlSocket::new(Protocol::Route).unwrap();
        s.request("dump", &GetAddrDump { family: None }, |m| {
            println!("ADDR {}", m.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>());
            Ok(())
        })
        .unwrap();
        let idx = link_index(&mut s, "d0").unwrap();
        s.request("link", &GetLink { index: idx, name: None }, |m| {
            println!("LINK {}", m.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>());
            Ok(())
        })
        .unwrap();
    }

    // Captured from a 6.18 kernel (RTM_GETADDR dump in a scratch netns: veth d0, index 3,
    // `192.0.2.1/24 brd + label d0:x` and `2001:db8::1/64 nodad`).
    const CAP_ADDR_V4: &str = "580000001400020077a6022d22450000021880000300000008000100c000020108000200c000020108000400c00002ff0900030064303a7800000000080008008000000014000600fffffffffffffffff0260100f0260100";
    const CAP_ADDR_V6: &str = "480000001400020077a6022d224500000a408200030000001400010020010db800000000000000000000000114000600fffffffffffffffff0260100f02601000800080082000000";
    // RTM_NEWLINK reply for d0, trimmed after IFLA_BROADCAST (nlmsg_len patched to 0x48).
    const CAP_LINK: &str = "480000001000000079a6022d2245000000000100030000000310000000000000070003006430000008000d00e80300000a00010002000000000100000a000200ffffffffffff0000";

    #[test]
    fn parse_captured_dump() {
        let mut dgram = hex(CAP_ADDR_V4);
        dgram.extend(hex(CAP_ADDR_V6));
        dgram.extend(hex("140000000300020077a6022d2245000000000000"));
        let msgs: Vec<_> = NlMsgIter::new(&dgram).collect::<crate::netlink::Result<_>>().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2].message_type(), crate::netlink::NLMSG_DONE);
        assert_eq!(msgs[0].flags() & crate::netlink::NLM_F_MULTI, crate::netlink::NLM_F_MULTI);
        let v4 = AddrEntry::parse(&msgs[0]).unwrap();
        assert_eq!(
            v4,
            AddrEntry {
                ifindex: 3,
                addr: "192.0.2.1".parse().unwrap(),
                prefix: 24,
                label: Some("d0:x".into()),
                flags: 0x80, // IFA_F_PERMANENT
                scope: 0,
            }
        );
        let v6 = AddrEntry::parse(&msgs[1]).unwrap();
        assert_eq!(v6.addr, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!((v6.ifindex, v6.prefix, v6.label.as_deref()), (3, 64, None));
        assert_eq!(v6.flags, 0x82); // PERMANENT | NODAD
    }

    #[test]
    fn parse_captured_link() {
        let b = hex(CAP_LINK);
        let m = crate::netlink::NlMsg::new_checked(&b).unwrap();
        let l = LinkInfo::parse(&m).unwrap();
        assert_eq!(l.index, 3);
        assert_eq!(l.name, "d0");
        assert_eq!(l.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(l.is_up());
    }

    #[test]
    fn parse_truncated_no_panic() {
        for cap in [CAP_ADDR_V4, CAP_ADDR_V6, CAP_LINK] {
            let full = hex(cap);
            for cut in 0..full.len() {
                let mut b = full[..cut].to_vec();
                if b.len() >= 4 {
                    b[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
                }
                if let Ok(m) = crate::netlink::NlMsg::new_checked(&b) {
                    let _ = AddrEntry::parse(&m);
                    let _ = LinkInfo::parse(&m);
                }
            }
        }
    }
}
