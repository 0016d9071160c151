//! Generic netlink: the `genlmsghdr`, family lookup through `nlctrl`, and a small cache.
//!
//! A family's request is a netlink message whose `nlmsg_type` is the family id, followed
//! by a 4-byte [`GENL_HDRLEN`] header (`cmd`, `version`, reserved), an optional
//! family-specific header (DRBD: 8 bytes), then attributes. Build one by implementing
//! [`Request`](super::Request) and calling [`put_header`] first in `emit_payload`;
//! read replies with [`GenlMsg`].

use super::{nla_size, strz_len, MsgBuilder, NetlinkError, NlMsg, NlSocket, NlaIter, Request, Result, NLM_F_ACK};

/// The `nlctrl` family's fixed id.
pub const GENL_ID_CTRL: u16 = 0x10;
/// Size of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;

pub const CTRL_CMD_NEWFAMILY: u8 = 1;
pub const CTRL_CMD_GETFAMILY: u8 = 3;

pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
pub const CTRL_ATTR_VERSION: u16 = 3;
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
pub const CTRL_ATTR_MAXATTR: u16 = 5;
pub const CTRL_ATTR_OPS: u16 = 6;
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;

pub const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
pub const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;

/// Longest family name (`GENL_NAMSIZ - 1`).
pub const MAX_FAMILY_NAME: usize = 15;

/// Writes the `genlmsghdr` (call first in `emit_payload`).
pub fn put_header(b: &mut MsgBuilder<'_>, cmd: u8, version: u8) {
    b.put_header(&[cmd, version, 0, 0]);
}

/// A view of a generic netlink message.
#[derive(Debug, Clone, Copy)]
pub struct GenlMsg<'a> {
    msg: NlMsg<'a>,
}

impl<'a> GenlMsg<'a> {
    /// Checks that the payload holds a `genlmsghdr`.
    pub fn new_checked(msg: NlMsg<'a>) -> Result<GenlMsg<'a>> {
        if msg.payload().len() < GENL_HDRLEN {
            return Err(NetlinkError::Malformed { op: "parse genl", what: "short genlmsghdr" });
        }
        Ok(GenlMsg { msg })
    }
    pub fn cmd(&self) -> u8 {
        self.msg.payload().first().copied().unwrap_or(0)
    }
    pub fn version(&self) -> u8 {
        self.msg.payload().get(1).copied().unwrap_or(0)
    }
    /// The family-specific header of `len` bytes after the `genlmsghdr`.
    pub fn user_header(&self, len: usize) -> Result<&'a [u8]> {
        self.msg
            .payload()
            .get(GENL_HDRLEN..GENL_HDRLEN + len)
            .ok_or(NetlinkError::Malformed { op: "parse genl", what: "short family header" })
    }
    /// The attributes after the `genlmsghdr` and a family header of `user_hdr` bytes.
    pub fn attrs(&self, user_hdr: usize) -> NlaIter<'a> {
        self.msg.attrs(GENL_HDRLEN + user_hdr)
    }
    pub fn nlmsg(&self) -> &NlMsg<'a> {
        &self.msg
    }
}

/// `CTRL_CMD_GETFAMILY` by name.
#[derive(Debug, Clone, Copy)]
pub struct GetFamily<'a> {
    pub name: &'a str,
}

impl Request for GetFamily<'_> {
    fn message_type(&self) -> u16 {
        GENL_ID_CTRL
    }
    fn flags(&self) -> u16 {
        NLM_F_ACK
    }
    fn payload_len(&self) -> usize {
        GENL_HDRLEN + nla_size(strz_len(self.name))
    }
    fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
        put_header(b, CTRL_CMD_GETFAMILY, 1);
        b.put_strz(CTRL_ATTR_FAMILY_NAME, self.name);
    }
}

/// What `nlctrl` tells about a family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyInfo {
    pub name: String,
    /// The `nlmsg_type` of the family's messages.
    pub id: u16,
    /// Put this into `genlmsghdr.version` of requests.
    pub version: u8,
    /// Size of the family-specific header.
    pub hdrsize: u32,
    pub maxattr: u32,
    /// Multicast groups: (name, group id for [`NlSocket::add_membership`]).
    pub mcast_groups: Vec<(String, u32)>,
}

impl FamilyInfo {
    /// The id of multicast group `name`.
    pub fn mcast_group(&self, name: &str) -> Option<u32> {
        self.mcast_groups.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    /// Parses a `CTRL_CMD_NEWFAMILY` reply.
    pub fn parse(msg: &NlMsg<'_>) -> Result<FamilyInfo> {
        const OP: &str = "parse genl family";
        let g = GenlMsg::new_checked(*msg).map_err(|e| e.with_op(OP))?;
        if msg.message_type() != GENL_ID_CTRL || g.cmd() != CTRL_CMD_NEWFAMILY {
            return Err(NetlinkError::Malformed { op: OP, what: "not CTRL_CMD_NEWFAMILY" });
        }
        let mut info =
            FamilyInfo { name: String::new(), id: 0, version: 0, hdrsize: 0, maxattr: 0, mcast_groups: Vec::new() };
        let mut have_id = false;
        for a in g.attrs(0) {
            let a = a.map_err(|e| e.with_op(OP))?;
            match a.kind() {
                CTRL_ATTR_FAMILY_ID => {
                    info.id = a.as_u16().map_err(|e| e.with_op(OP))?;
                    have_id = true;
                }
                CTRL_ATTR_FAMILY_NAME => info.name = a.as_str().map_err(|e| e.with_op(OP))?.to_owned(),
                CTRL_ATTR_VERSION => {
                    let v = a.as_u32().map_err(|e| e.with_op(OP))?;
                    info.version = u8::try_from(v).unwrap_or(u8::MAX);
                }
                CTRL_ATTR_HDRSIZE => info.hdrsize = a.as_u32().map_err(|e| e.with_op(OP))?,
                CTRL_ATTR_MAXATTR => info.maxattr = a.as_u32().map_err(|e| e.with_op(OP))?,
                CTRL_ATTR_MCAST_GROUPS => {
                    for grp in a.nested() {
                        let grp = grp.map_err(|e| e.with_op(OP))?;
                        let (mut name, mut id) = (None, None);
                        for f in grp.nested() {
                            let f = f.map_err(|e| e.with_op(OP))?;
                            match f.kind() {
                                CTRL_ATTR_MCAST_GRP_NAME => name = Some(f.as_str().map_err(|e| e.with_op(OP))?),
                                CTRL_ATTR_MCAST_GRP_ID => id = Some(f.as_u32().map_err(|e| e.with_op(OP))?),
                                _ => {}
                            }
                        }
                        if let (Some(n), Some(i)) = (name, id) {
                            info.mcast_groups.push((n.to_owned(), i));
                        }
                    }
                }
                _ => {}
            }
        }
        if !have_id {
            return Err(NetlinkError::Malformed { op: OP, what: "family without CTRL_ATTR_FAMILY_ID" });
        }
        Ok(info)
    }
}

/// Looks up a family by name on a `NETLINK_GENERIC` socket. An unknown family (e.g. the
/// module is not loaded) is `Kernel { errno: ENOENT }`.
pub fn resolve_family(sock: &mut NlSocket, name: &str) -> Result<FamilyInfo> {
    const OP: &str = "look up generic netlink family";
    if name.is_empty() || name.len() > MAX_FAMILY_NAME {
        return Err(NetlinkError::Kernel { op: OP, errno: nix::errno::Errno::ENOENT });
    }
    let mut out = None;
    sock.request(OP, &GetFamily { name }, |m| {
        if m.message_type() == GENL_ID_CTRL && out.is_none() {
            out = Some(FamilyInfo::parse(m).map_err(|e| e.with_op(OP))?);
        }
        Ok(())
    })?;
    out.ok_or(NetlinkError::Malformed { op: OP, what: "no family in reply" })
}

/// Family ids looked up once and kept. Call [`FamilyCache::forget`] when a request to a
/// cached id fails with `ENOENT`/`EOPNOTSUPP` (the module was reloaded), then look it up again.
#[derive(Debug, Default, Clone)]
pub struct FamilyCache {
    entries: Vec<FamilyInfo>,
}

impl FamilyCache {
    pub fn new() -> FamilyCache {
        FamilyCache::default()
    }
    /// The cached entry, if any.
    pub fn cached(&self, name: &str) -> Option<&FamilyInfo> {
        self.entries.iter().find(|f| f.name == name)
    }
    /// The family, looked up on first use.
    pub fn get(&mut self, sock: &mut NlSocket, name: &str) -> Result<&FamilyInfo> {
        if let Some(pos) = self.entries.iter().position(|f| f.name == name) {
            return self.entries.get(pos).ok_or(NetlinkError::Malformed { op: "family cache", what: "lost entry" });
        }
        let mut info = resolve_family(sock, name)?;
        // Key the cache by the name asked for (the kernel echoes the same name).
        name.clone_into(&mut info.name);
        self.entries.push(info);
        self.entries.last().ok_or(NetlinkError::Malformed { op: "family cache", what: "lost entry" })
    }
    pub fn forget(&mut self, name: &str) {
        self.entries.retain(|f| f.name != name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{NlMsg, Protocol};

    use crate::testutil::hex;

    #[cfg(target_endian = "little")]
    #[test]
    fn getfamily_request_fixture() {
        let r = GetFamily { name: "drbd" };
        let mut buf = [0u8; 64];
        let n = r.emit(&mut buf, 7, 0).unwrap();
        assert_eq!(n, r.buffer_len());
        let want = hex("20000000 1000 0500 07000000 00000000
             03 01 0000
             0900 0200 6472626400 000000");
        assert_eq!(&buf[..n], &want[..]);
    }

    #[test]
    fn resolve_nlctrl_real_kernel() {
        let mut s = NlSocket::new(Protocol::Generic).unwrap();
        let f = resolve_family(&mut s, "nlctrl").unwrap();
        assert_eq!(f.id, GENL_ID_CTRL);
        assert_eq!(f.name, "nlctrl");
        assert!(f.version >= 1);
        assert!(f.mcast_group("notify").is_some(), "{f:?}");
        // others, when the kernel has them
        for name in ["devlink", "ethtool", "nl80211", "thermal"] {
            match resolve_family(&mut s, name) {
                Ok(i) => {
                    assert_eq!(i.name, name);
                    assert!(i.id > GENL_ID_CTRL);
                }
                Err(e) => assert_eq!(e.errno(), Some(nix::errno::Errno::ENOENT), "{name}: {e}"),
            }
        }
        let e = resolve_family(&mut s, "no-such-family").unwrap_err();
        assert_eq!(e, NetlinkError::Kernel { op: "look up generic netlink family", errno: nix::errno::Errno::ENOENT });

        let mut c = FamilyCache::new();
        let id = c.get(&mut s, "nlctrl").unwrap().id;
        assert_eq!(id, GENL_ID_CTRL);
        assert!(c.cached("nlctrl").is_some());
        c.forget("nlctrl");
        assert!(c.cached("nlctrl").is_none());
    }

    #[test]
    #[ignore = "prints a fixture"]
    fn capture_nlctrl() {
        let mut s = NlSocket::new(Protocol::Generic).unwrap();
        s.request("cap", &GetFamily { name: "nlctrl" }, |m| {
            println!("FAM {}", m.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>());
            Ok(())
        })
        .unwrap();
    }

    /// `CTRL_CMD_NEWFAMILY` for `nlctrl`, captured from a 6.18 kernel.
    const CAP_NLCTRL: &str = "88000000100000009f68b62f95520000010200000b0002006e6c6374726c000006000100100000000800030002000000080004000000000008000500000000002c000600140001000800010003000000080002000e00000014000200080001000a000000080002000c0000001c0007001800010008000200100000000b0001006e6f746966790000";

    #[cfg(target_endian = "little")]
    #[test]
    fn parse_captured_newfamily() {
        let b = hex(CAP_NLCTRL);
        let m = NlMsg::new_checked(&b).unwrap();
        let f = FamilyInfo::parse(&m).unwrap();
        assert_eq!(
            f,
            FamilyInfo {
                name: "nlctrl".into(),
                id: 0x10,
                version: 2,
                hdrsize: 0,
                maxattr: 0,
                mcast_groups: vec![("notify".into(), 0x10)],
            }
        );
        // every truncation parses or fails cleanly
        for cut in 16..b.len() {
            let mut t = b[..cut].to_vec();
            t[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            let m = NlMsg::new_checked(&t).unwrap();
            let _ = FamilyInfo::parse(&m);
        }
    }

    #[test]
    fn parse_malformed_no_panic() {
        let b = hex("1c000000 1000 0000 01000000 00000000 01 02 0000 0800 0700 ffff0000");
        let m = NlMsg::new_checked(&b).unwrap();
        assert!(FamilyInfo::parse(&m).is_err());
    }
}
