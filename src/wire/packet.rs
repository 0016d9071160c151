//! Zero-copy view of a version-1 wire packet, smoltcp style, and [`Repr`] parse/emit.
//!
//! Layout (big-endian; the table is also in `docs/wire.md`):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `0x54 0x44` ("TD") |
//! | 2 | 1 | version (1) |
//! | 3 | 1 | kind ([`MsgKind`]) |
//! | 4 | 4 | cluster id |
//! | 8 | 1 | sender node id |
//! | 9 | 1 | node state ([`NodeState`]) |
//! | 10 | 8 | boot generation |
//! | 18 | 8 | sequence number |
//! | 26 | 4 | keepalive in ms |
//! | 30 | 1 | n_groups (≤ [`MAX_GROUPS`]) |
//! | 31 | 11 × n | groups: index u8, state u8, flags u8, claim u32, grant u32 |
//! | 31 + 11n | 1 | payload_len (≤ [`MAX_PAYLOAD`]) |
//! | 32 + 11n | p | payload |
//! | 32 + 11n + p | 32 | HMAC-SHA256 of every byte before it |
//!
//! [`Packet::new_checked`] validates magic, version and every length, so that afterwards no
//! accessor can go out of bounds. Accessors never index: on a buffer that was not checked
//! (`new_unchecked`) they return zeros or empty slices instead of panicking.

use super::{GroupState, GroupWire, MsgKind, NodeState, Repr, WireError, MAC_LEN, MAX_GROUPS, MAX_PAYLOAD};

/// The two magic bytes, "TD".
pub const MAGIC: [u8; 2] = [0x54, 0x44];
/// The only version this code speaks.
pub const VERSION: u8 = 1;

/// Byte ranges of the fixed fields.
pub mod field {
    use core::ops::Range;
    pub type Field = Range<usize>;

    pub const MAGIC: Field = 0..2;
    pub const VERSION: usize = 2;
    pub const KIND: usize = 3;
    pub const CLUSTER_ID: Field = 4..8;
    pub const SENDER: usize = 8;
    pub const NODE_STATE: usize = 9;
    pub const GENERATION: Field = 10..18;
    pub const SEQ: Field = 18..26;
    pub const KEEPALIVE_MS: Field = 26..30;
    pub const N_GROUPS: usize = 30;
    /// Start of the group entries.
    pub const GROUPS: usize = 31;

    /// Offsets inside one group entry.
    pub const G_INDEX: usize = 0;
    pub const G_STATE: usize = 1;
    pub const G_FLAGS: usize = 2;
    pub const G_CLAIM: Field = 3..7;
    pub const G_GRANT: Field = 7..11;
    /// Size of one group entry.
    pub const GROUP_LEN: usize = 11;
}

/// Length of the fixed header (up to and including `n_groups`).
pub const HEADER_LEN: usize = field::GROUPS;
/// Shortest possible packet: header, payload_len, MAC.
pub const MIN_LEN: usize = HEADER_LEN + 1 + MAC_LEN;
/// Longest possible packet.
pub const MAX_LEN: usize = HEADER_LEN + MAX_GROUPS * field::GROUP_LEN + 1 + MAX_PAYLOAD + MAC_LEN;

/// Offset of the payload_len byte for `n` groups.
const fn payload_len_offset(n_groups: usize) -> usize {
    field::GROUPS + n_groups * field::GROUP_LEN
}

/// Offset of the MAC for `n` groups and `p` payload bytes (= the signed length).
const fn mac_offset(n_groups: usize, payload_len: usize) -> usize {
    payload_len_offset(n_groups) + 1 + payload_len
}

/// A read/write view of a wire packet (including its MAC trailer).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without any checks. Accessors stay panic-free but may return zeros.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check`]: afterwards every accessor reads real bytes.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Magic, version, and that the buffer is exactly as long as the declared contents.
    ///
    /// Shorter → `Truncated`; longer (trailing bytes) → `BadField("length")`;
    /// `n_groups` > [`MAX_GROUPS`] or `payload_len` > [`MAX_PAYLOAD`] → `BadField`.
    pub fn check(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        let len = data.len();
        if len < field::VERSION + 1 {
            return Err(WireError::Truncated);
        }
        if data.get(field::MAGIC) != Some(&MAGIC[..]) {
            return Err(WireError::BadMagic);
        }
        let version = self.version();
        if version != VERSION {
            return Err(WireError::BadVersion(version));
        }
        if len < MIN_LEN {
            return Err(WireError::Truncated);
        }
        let n = usize::from(self.n_groups());
        if n > MAX_GROUPS {
            return Err(WireError::BadField("n_groups"));
        }
        if len < payload_len_offset(n) + 1 + MAC_LEN {
            return Err(WireError::Truncated);
        }
        let p = usize::from(self.payload_len());
        if p > MAX_PAYLOAD {
            return Err(WireError::BadField("payload_len"));
        }
        let total = mac_offset(n, p) + MAC_LEN;
        if len < total {
            return Err(WireError::Truncated);
        }
        if len > total {
            return Err(WireError::BadField("length"));
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u8_at(&self, off: usize) -> u8 {
        self.buffer.as_ref().get(off).copied().unwrap_or(0)
    }

    fn array_at<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buffer.as_ref().get(off..off.saturating_add(N)) {
            out.copy_from_slice(src);
        }
        out
    }

    pub fn magic(&self) -> [u8; 2] {
        self.array_at(field::MAGIC.start)
    }
    pub fn version(&self) -> u8 {
        self.u8_at(field::VERSION)
    }
    /// Raw [`MsgKind`] value.
    pub fn kind(&self) -> u8 {
        self.u8_at(field::KIND)
    }
    pub fn cluster_id(&self) -> u32 {
        u32::from_be_bytes(self.array_at(field::CLUSTER_ID.start))
    }
    pub fn sender(&self) -> u8 {
        self.u8_at(field::SENDER)
    }
    /// Raw [`NodeState`] value.
    pub fn node_state(&self) -> u8 {
        self.u8_at(field::NODE_STATE)
    }
    pub fn generation(&self) -> u64 {
        u64::from_be_bytes(self.array_at(field::GENERATION.start))
    }
    pub fn seq(&self) -> u64 {
        u64::from_be_bytes(self.array_at(field::SEQ.start))
    }
    pub fn keepalive_ms(&self) -> u32 {
        u32::from_be_bytes(self.array_at(field::KEEPALIVE_MS.start))
    }
    pub fn n_groups(&self) -> u8 {
        self.u8_at(field::N_GROUPS)
    }

    fn group_off(&self, i: usize) -> usize {
        field::GROUPS + i * field::GROUP_LEN
    }
    /// Group entry `i`: `(index, raw state, flags, claim, grant)`; zeros when out of range.
    pub fn group_raw(&self, i: usize) -> (u8, u8, u8, u32, u32) {
        if i >= usize::from(self.n_groups()).min(MAX_GROUPS) {
            return (0, 0, 0, 0, 0);
        }
        let o = self.group_off(i);
        (
            self.u8_at(o + field::G_INDEX),
            self.u8_at(o + field::G_STATE),
            self.u8_at(o + field::G_FLAGS),
            u32::from_be_bytes(self.array_at(o + field::G_CLAIM.start)),
            u32::from_be_bytes(self.array_at(o + field::G_GRANT.start)),
        )
    }

    fn payload_len_off(&self) -> usize {
        payload_len_offset(usize::from(self.n_groups()).min(MAX_GROUPS))
    }
    pub fn payload_len(&self) -> u8 {
        self.u8_at(self.payload_len_off())
    }
    /// The payload bytes (empty if the buffer is too short).
    pub fn payload(&self) -> &[u8] {
        let start = self.payload_len_off() + 1;
        let n = usize::from(self.payload_len()).min(MAX_PAYLOAD);
        self.buffer.as_ref().get(start..start + n).unwrap_or(&[])
    }
    /// Offset of the MAC = length of the authenticated part.
    pub fn mac_offset(&self) -> usize {
        mac_offset(usize::from(self.n_groups()).min(MAX_GROUPS), usize::from(self.payload_len()).min(MAX_PAYLOAD))
    }
    /// Every byte the MAC covers (empty if the buffer is too short).
    pub fn signed_bytes(&self) -> &[u8] {
        self.buffer.as_ref().get(..self.mac_offset()).unwrap_or(&[])
    }
    /// The MAC trailer (empty if the buffer is too short).
    pub fn mac(&self) -> &[u8] {
        let o = self.mac_offset();
        self.buffer.as_ref().get(o..o + MAC_LEN).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u8(&mut self, off: usize, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(off) {
            *b = v;
        }
    }
    fn set_bytes(&mut self, off: usize, v: &[u8]) {
        if let Some(dst) = self.buffer.as_mut().get_mut(off..off.saturating_add(v.len())) {
            dst.copy_from_slice(v);
        }
    }

    pub fn set_magic(&mut self) {
        self.set_bytes(field::MAGIC.start, &MAGIC);
    }
    pub fn set_version(&mut self, v: u8) {
        self.set_u8(field::VERSION, v);
    }
    pub fn set_kind(&mut self, v: u8) {
        self.set_u8(field::KIND, v);
    }
    pub fn set_cluster_id(&mut self, v: u32) {
        self.set_bytes(field::CLUSTER_ID.start, &v.to_be_bytes());
    }
    pub fn set_sender(&mut self, v: u8) {
        self.set_u8(field::SENDER, v);
    }
    pub fn set_node_state(&mut self, v: u8) {
        self.set_u8(field::NODE_STATE, v);
    }
    pub fn set_generation(&mut self, v: u64) {
        self.set_bytes(field::GENERATION.start, &v.to_be_bytes());
    }
    pub fn set_seq(&mut self, v: u64) {
        self.set_bytes(field::SEQ.start, &v.to_be_bytes());
    }
    pub fn set_keepalive_ms(&mut self, v: u32) {
        self.set_bytes(field::KEEPALIVE_MS.start, &v.to_be_bytes());
    }
    /// Sets n_groups. Set it before the groups and the payload: it moves them.
    pub fn set_n_groups(&mut self, v: u8) {
        self.set_u8(field::N_GROUPS, v);
    }
    /// Writes group entry `i` (ignored when `i` ≥ n_groups or the buffer is too short).
    pub fn set_group(&mut self, i: usize, g: &GroupWire) {
        if i >= usize::from(self.n_groups()).min(MAX_GROUPS) {
            return;
        }
        let o = self.group_off(i);
        self.set_u8(o + field::G_INDEX, g.index);
        self.set_u8(o + field::G_STATE, g.state as u8);
        self.set_u8(o + field::G_FLAGS, g.flags);
        self.set_bytes(o + field::G_CLAIM.start, &g.claim.to_be_bytes());
        self.set_bytes(o + field::G_GRANT.start, &g.grant.to_be_bytes());
    }
    /// Sets payload_len and copies the payload (set n_groups first).
    pub fn set_payload(&mut self, payload: &[u8]) {
        let off = self.payload_len_off();
        let n = payload.len().min(MAX_PAYLOAD);
        self.set_u8(off, n as u8);
        if let Some(p) = payload.get(..n) {
            self.set_bytes(off + 1, p);
        }
    }
    /// The MAC trailer, writable (empty if the buffer is too short).
    pub fn mac_mut(&mut self) -> &mut [u8] {
        let o = self.mac_offset();
        self.buffer.as_mut().get_mut(o..o + MAC_LEN).unwrap_or(&mut [])
    }
}

impl Repr {
    /// Reads every field of a packet that passed [`Packet::new_checked`]. An unknown message
    /// kind is `UnknownKind` (a newer peer's message: dropped, not bad); other unknown enum
    /// values are `BadField`. Does **not** verify the MAC: that is [`super::auth::Codec`]'s job.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr, WireError> {
        packet.check()?;
        let kind = MsgKind::from_u8(packet.kind()).ok_or(WireError::UnknownKind(packet.kind()))?;
        let node_state = NodeState::from_u8(packet.node_state()).ok_or(WireError::BadField("node_state"))?;
        let n_groups = packet.n_groups();
        let mut groups = [GroupWire::EMPTY; MAX_GROUPS];
        for (i, slot) in groups.iter_mut().enumerate().take(usize::from(n_groups)) {
            let (index, state, flags, claim, grant) = packet.group_raw(i);
            let state = GroupState::from_u8(state).ok_or(WireError::BadField("group state"))?;
            *slot = GroupWire { index, state, flags, claim, grant };
        }
        let src = packet.payload();
        let mut payload = [0u8; MAX_PAYLOAD];
        if let Some(dst) = payload.get_mut(..src.len()) {
            dst.copy_from_slice(src);
        }
        Ok(Repr {
            cluster_id: packet.cluster_id(),
            sender: packet.sender(),
            generation: packet.generation(),
            seq: packet.seq(),
            kind,
            node_state,
            keepalive_ms: packet.keepalive_ms(),
            n_groups,
            groups,
            payload_len: packet.payload_len(),
            payload,
        })
    }

    /// Bytes [`Repr::emit`] writes: everything but the MAC trailer.
    pub fn buffer_len(&self) -> usize {
        mac_offset(self.groups().len(), self.payload().len())
    }

    /// Writes the packet (without the MAC) into the first [`Repr::buffer_len`] bytes.
    ///
    /// `BufferTooSmall` if the packet's buffer is shorter; `BadField` if `n_groups` or
    /// `payload_len` exceed their maxima. Groups and payload beyond the counts are not written.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<(), WireError> {
        if usize::from(self.n_groups) > MAX_GROUPS {
            return Err(WireError::BadField("n_groups"));
        }
        if usize::from(self.payload_len) > MAX_PAYLOAD {
            return Err(WireError::BadField("payload_len"));
        }
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(WireError::BufferTooSmall);
        }
        packet.set_magic();
        packet.set_version(VERSION);
        packet.set_kind(self.kind as u8);
        packet.set_cluster_id(self.cluster_id);
        packet.set_sender(self.sender);
        packet.set_node_state(self.node_state as u8);
        packet.set_generation(self.generation);
        packet.set_seq(self.seq);
        packet.set_keepalive_ms(self.keepalive_ms);
        packet.set_n_groups(self.n_groups);
        for (i, g) in self.groups().iter().enumerate() {
            packet.set_group(i, g);
        }
        packet.set_payload(self.payload());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::gflag;

    pub(crate) fn sample(n_groups: usize, payload: &[u8]) -> Repr {
        let mut groups = [GroupWire::EMPTY; MAX_GROUPS];
        for (i, g) in groups.iter_mut().enumerate().take(n_groups) {
            *g = GroupWire {
                index: i as u8,
                state: GroupState::from_u8((i % 6) as u8).unwrap(),
                flags: gflag::CLAIM | (i as u8 & gflag::PINNED),
                claim: 0x1000_0000 + i as u32,
                grant: 0x2000_0000 + i as u32,
            };
        }
        let mut p = [0u8; MAX_PAYLOAD];
        p[..payload.len()].copy_from_slice(payload);
        Repr {
            cluster_id: 0xdead_beef,
            sender: 1,
            generation: 7,
            seq: 42,
            kind: MsgKind::Heartbeat,
            node_state: NodeState::Active,
            keepalive_ms: 1000,
            n_groups: n_groups as u8,
            groups,
            payload_len: payload.len() as u8,
            payload: p,
        }
    }

    fn emit_full(r: &Repr) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len() + MAC_LEN];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        buf
    }

    #[test]
    fn layout_constants() {
        assert_eq!(HEADER_LEN, 31);
        assert_eq!(MIN_LEN, 64);
        assert_eq!(MAX_LEN, 31 + 32 * 11 + 1 + 64 + 32);
    }

    #[test]
    fn fixture_minimal_packet() {
        let r = sample(0, &[]);
        let bytes = emit_full(&r);
        #[rustfmt::skip]
        let want: [u8; 32] = [
            0x54, 0x44, 0x01, 0x01,             // magic, version, kind=heartbeat
            0xde, 0xad, 0xbe, 0xef,             // cluster id
            0x01, 0x02,                         // sender, node state active
            0, 0, 0, 0, 0, 0, 0, 7,             // generation
            0, 0, 0, 0, 0, 0, 0, 42,            // seq
            0, 0, 0x03, 0xe8,                   // keepalive 1000 ms
            0x00,                               // n_groups
            0x00,                               // payload_len
        ];
        assert_eq!(&bytes[..32], &want[..]);
        assert_eq!(bytes.len(), 64);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn buffer_len_matches_emit() {
        for (n, pl) in [(0, 0), (1, 0), (0, 1), (3, 10), (MAX_GROUPS, MAX_PAYLOAD), (17, 63)] {
            let payload: Vec<u8> = (0..pl as u8).collect();
            let r = sample(n, &payload);
            assert_eq!(r.buffer_len(), 32 + 11 * n + pl);
            // emit writes exactly buffer_len bytes: a sentinel right after stays untouched
            let mut buf = vec![0xa5u8; r.buffer_len() + 1];
            r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
            assert_eq!(buf[r.buffer_len()], 0xa5);
            // one byte short is refused
            let mut short = vec![0u8; r.buffer_len() - 1];
            assert_eq!(r.emit(&mut Packet::new_unchecked(&mut short[..])), Err(WireError::BufferTooSmall));
            let full = emit_full(&r);
            let p = Packet::new_checked(&full[..]).unwrap();
            assert_eq!(p.mac_offset(), r.buffer_len());
            assert_eq!(Repr::parse(&p).unwrap(), r);
        }
    }

    #[test]
    fn rejects_bad_lengths_and_values() {
        let r = sample(2, b"abc");
        let good = emit_full(&r);
        // every truncation fails
        for len in 0..good.len() {
            assert!(Packet::new_checked(&good[..len]).is_err(), "len {len}");
        }
        // trailing garbage
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Packet::new_checked(&long[..]).err(), Some(WireError::BadField("length")));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(WireError::BadMagic));
        let mut b = good.clone();
        b[2] = 2;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(WireError::BadVersion(2)));
        let mut b = good.clone();
        b[field::KIND] = 9;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(WireError::UnknownKind(9)));
        let mut b = good.clone();
        b[field::NODE_STATE] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(WireError::BadField("node_state")));
        let mut b = good.clone();
        b[field::GROUPS + field::GROUP_LEN + field::G_STATE] = 6;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(WireError::BadField("group state")));
        let mut b = good.clone();
        b[field::N_GROUPS] = 33;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(WireError::BadField("n_groups")));
        let mut b = good.clone();
        b[payload_len_offset(2)] = 65;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(WireError::BadField("payload_len")));
        // a huge declared n_groups on a short buffer is Truncated, not a panic
        let mut b = good[..MIN_LEN].to_vec();
        b[field::N_GROUPS] = 32;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(WireError::Truncated));
    }

    #[test]
    fn emit_refuses_oversized_counts() {
        let mut r = sample(1, b"");
        r.n_groups = 33;
        let mut buf = [0u8; MAX_LEN * 2];
        assert_eq!(r.emit(&mut Packet::new_unchecked(&mut buf[..])), Err(WireError::BadField("n_groups")));
        let mut r = sample(1, b"");
        r.payload_len = 65;
        assert_eq!(r.emit(&mut Packet::new_unchecked(&mut buf[..])), Err(WireError::BadField("payload_len")));
    }

    #[test]
    fn unchecked_accessors_never_panic() {
        let short = [0x54u8, 0x44, 1, 1, 0];
        let p = Packet::new_unchecked(&short[..]);
        assert_eq!(p.seq(), 0);
        assert_eq!(p.generation(), 0);
        assert_eq!(p.group_raw(0), (0, 0, 0, 0, 0));
        assert!(p.payload().is_empty());
        assert!(p.mac().is_empty());
        let mut tiny = [0u8; 3];
        let mut p = Packet::new_unchecked(&mut tiny[..]);
        p.set_seq(5);
        p.set_n_groups(3);
        p.set_group(0, &GroupWire::EMPTY);
        p.set_payload(b"xyz");
        assert!(p.mac_mut().is_empty());
    }
}
