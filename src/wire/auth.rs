//! Packet authentication (HMAC-SHA256 over everything before the trailer), the per-sender
//! replay window, and [`Codec`]: what the daemon calls to turn a [`Repr`] into bytes and back.
//!
//! Nothing here allocates: the keyed HMAC state is computed once and cloned (on the stack)
//! for every packet.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::packet::Packet;
use super::{Repr, WireError, MAC_LEN};

type HmacSha256 = Hmac<Sha256>;

/// SHA-256's block size: HMAC keys longer than this are hashed first (RFC 2104).
const BLOCK_LEN: usize = 64;

/// The cluster id carried in every packet: the first 4 bytes of SHA-256(name), big-endian.
pub fn cluster_id(name: &str) -> u32 {
    let d = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 4];
    if let Some(src) = d.get(..4) {
        b.copy_from_slice(src);
    }
    u32::from_be_bytes(b)
}

/// An HMAC-SHA256 key, pre-keyed once.
#[derive(Clone)]
pub struct Auth {
    keyed: HmacSha256,
}

impl core::fmt::Debug for Auth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

impl Auth {
    /// Any key length is valid (as in HMAC): long keys are hashed, short ones zero-padded.
    pub fn new(key: &[u8]) -> Auth {
        let mut block = [0u8; BLOCK_LEN];
        if key.len() > BLOCK_LEN {
            let d = Sha256::digest(key);
            if let Some(dst) = block.get_mut(..d.len()) {
                dst.copy_from_slice(&d);
            }
        } else if let Some(dst) = block.get_mut(..key.len()) {
            dst.copy_from_slice(key);
        }
        // A block-sized key is used by HMAC as is, so this equals HMAC(key) for every key.
        let keyed = HmacSha256::new(&block.into());
        Auth { keyed }
    }

    /// The MAC of `data`.
    pub fn sign(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut m = self.keyed.clone();
        m.update(data);
        let out = m.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        if let Some(src) = out.get(..MAC_LEN) {
            tag.copy_from_slice(src);
        }
        tag
    }

    /// Constant-time check of `tag` against the MAC of `data`.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> Result<(), WireError> {
        let mut m = self.keyed.clone();
        m.update(data);
        m.verify_slice(tag).map_err(|_| WireError::BadMac)
    }
}

/// Size of the replay window in sequence numbers.
pub const WINDOW: u64 = 64;

/// Replay protection for one sender: newest boot generation, highest sequence number seen
/// in it, and a bitmap of the [`WINDOW`] sequence numbers at and below the highest
/// (bit `i` = `top - i` seen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    seen_any: bool,
    generation: u64,
    top: u64,
    bitmap: u64,
}

impl ReplayWindow {
    pub const fn new() -> ReplayWindow {
        ReplayWindow { seen_any: false, generation: 0, top: 0, bitmap: 0 }
    }

    /// A window that has seen everything up to `(generation, seq)`: what a restarted
    /// daemon starts from, so that the peer's old packets replayed after the restart are
    /// still refused.
    pub const fn with_floor(generation: u64, seq: u64) -> ReplayWindow {
        ReplayWindow { seen_any: true, generation, top: seq, bitmap: u64::MAX }
    }

    /// The newest generation seen, if any packet was accepted yet.
    pub fn generation(&self) -> Option<u64> {
        self.seen_any.then_some(self.generation)
    }

    /// Would `(generation, seq)` be accepted? Does not change the window.
    pub fn check(&self, generation: u64, seq: u64) -> Result<(), WireError> {
        if !self.seen_any || generation > self.generation {
            return Ok(());
        }
        if generation < self.generation {
            return Err(WireError::OldGeneration);
        }
        if seq > self.top {
            return Ok(());
        }
        let back = self.top - seq;
        if back >= WINDOW || self.bitmap & (1u64 << back) != 0 {
            return Err(WireError::Replay);
        }
        Ok(())
    }

    /// Records `(generation, seq)` as seen. Call only after [`ReplayWindow::check`] passed
    /// for a packet whose MAC verified.
    pub fn accept(&mut self, generation: u64, seq: u64) {
        if !self.seen_any || generation > self.generation {
            *self = ReplayWindow { seen_any: true, generation, top: seq, bitmap: 1 };
            return;
        }
        if generation < self.generation {
            return;
        }
        if seq > self.top {
            let shift = seq - self.top;
            self.bitmap = if shift >= WINDOW { 0 } else { self.bitmap << shift };
            self.bitmap |= 1;
            self.top = seq;
        } else {
            let back = self.top - seq;
            if back < WINDOW {
                self.bitmap |= 1u64 << back;
            }
        }
    }

    /// [`ReplayWindow::check`], then [`ReplayWindow::accept`] on success.
    pub fn check_and_accept(&mut self, generation: u64, seq: u64) -> Result<(), WireError> {
        self.check(generation, seq)?;
        self.accept(generation, seq);
        Ok(())
    }
}

impl WireError {
    /// True when the packet counts as `bad` (garbage, failed authentication, another cluster);
    /// false when it is a well-formed authenticated packet that is merely `dropped` (replay,
    /// old generation, our own packet looped back, a sender that is not the peer).
    pub fn is_bad(&self) -> bool {
        !matches!(
            self,
            WireError::Replay
                | WireError::OldGeneration
                | WireError::UnknownSender(_)
                | WireError::UnknownKind(_)
                | WireError::OwnIdElsewhere(_)
        )
    }
}

/// One node's view of the link to its peer: key, cluster, ids, own sequence counter and
/// the peer's replay window. One per peer, shared by all links (the window is per sender,
/// so a packet that arrives on two links is accepted once).
#[derive(Debug, Clone)]
pub struct Codec {
    auth: Auth,
    /// A second key accepted on receive (`authkey_accept`, for key rotation); never sent with.
    accept: Option<Auth>,
    cluster_id: u32,
    local: u8,
    peer: u8,
    generation: u64,
    tx_seq: u64,
    window: ReplayWindow,
}

impl Codec {
    pub fn new(key: &[u8], cluster: &str, local: u8, peer: u8, generation: u64) -> Codec {
        Codec {
            auth: Auth::new(key),
            accept: None,
            cluster_id: cluster_id(cluster),
            local,
            peer,
            generation,
            tx_seq: 0,
            window: ReplayWindow::new(),
        }
    }

    pub fn cluster_id(&self) -> u32 {
        self.cluster_id
    }
    /// Replaces the keys (a reload): `key` signs and verifies, `accept` also verifies.
    /// The sequence counter and the replay window are kept.
    pub fn set_keys(&mut self, key: &[u8], accept: Option<&[u8]>) {
        self.auth = Auth::new(key);
        self.accept = accept.map(Auth::new);
    }
    /// Our boot generation, as sent.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// The peer's newest generation seen, if any.
    pub fn peer_generation(&self) -> Option<u64> {
        self.window.generation()
    }
    /// Refuse everything of the peer's up to `(generation, seq)` (the mark stored before
    /// this daemon restarted). Call before the first [`Codec::decode`].
    pub fn set_peer_floor(&mut self, generation: u64, seq: u64) {
        self.window = ReplayWindow::with_floor(generation, seq);
    }

    /// The sequence number the last [`Codec::encode`] used.
    pub fn last_tx_seq(&self) -> u64 {
        self.tx_seq
    }

    /// Fills seq (own counter, +1 each call), sender, cluster id and generation into `repr`,
    /// emits it into `buf` and appends the MAC. Returns the packet length.
    pub fn encode(&mut self, repr: &mut Repr, buf: &mut [u8]) -> Result<usize, WireError> {
        self.tx_seq = self.tx_seq.wrapping_add(1);
        repr.seq = self.tx_seq;
        repr.sender = self.local;
        repr.cluster_id = self.cluster_id;
        repr.generation = self.generation;
        let signed = repr.buffer_len();
        let total = signed + MAC_LEN;
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        repr.emit(&mut Packet::new_unchecked(&mut *out))?;
        let (data, mac) = out.split_at_mut(signed);
        mac.copy_from_slice(&self.auth.sign(data));
        Ok(total)
    }

    /// Checks, in order: length/magic/version → cluster id → MAC → sender (must be the peer;
    /// our own id is `UnknownSender`) → field values → replay window. The window is updated
    /// only for packets that pass every check.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Repr, WireError> {
        let packet = Packet::new_checked(buf)?;
        if packet.cluster_id() != self.cluster_id {
            return Err(WireError::WrongCluster);
        }
        if let Err(e) = self.auth.verify(packet.signed_bytes(), packet.mac()) {
            self.accept.as_ref().ok_or(e)?.verify(packet.signed_bytes(), packet.mac())?;
        }
        let sender = packet.sender();
        if sender == self.local && packet.generation() != self.generation {
            // Authenticated, with our own node id, from another boot generation: another
            // daemon runs under this node's name.
            return Err(WireError::OwnIdElsewhere(packet.generation()));
        }
        if sender != self.peer {
            return Err(WireError::UnknownSender(sender));
        }
        let repr = Repr::parse(&packet)?;
        self.window.check_and_accept(repr.generation, repr.seq)?;
        Ok(repr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_refuses_what_came_before_a_restart() {
        let mut w = ReplayWindow::with_floor(7, 1000);
        assert_eq!(w.check(6, 5000), Err(WireError::OldGeneration));
        assert_eq!(w.check(7, 1000), Err(WireError::Replay));
        assert_eq!(w.check(7, 990), Err(WireError::Replay));
        assert_eq!(w.check(7, 10), Err(WireError::Replay));
        assert_eq!(w.check_and_accept(7, 1001), Ok(()));
        assert_eq!(w.check_and_accept(8, 1), Ok(()), "the peer restarted");
    }
    use crate::wire::packet::MAX_LEN;
    use crate::wire::{gflag, GroupState, GroupWire, MsgKind, NodeState, MAX_GROUPS, MAX_PAYLOAD};

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    use crate::testutil::hex;

    fn repr() -> Repr {
        let mut groups = [GroupWire::EMPTY; MAX_GROUPS];
        groups[0] = GroupWire {
            index: 0,
            state: GroupState::Started,
            flags: gflag::CLAIM | gflag::PINNED,
            claim: 0x0102_0304,
            grant: 0,
        };
        groups[1] =
            GroupWire { index: 1, state: GroupState::Stopped, flags: gflag::OFFER, claim: 0, grant: 0x0a0b_0c0d };
        let mut payload = [0u8; MAX_PAYLOAD];
        payload[..2].copy_from_slice(b"r0");
        Repr {
            cluster_id: 0,
            sender: 0,
            generation: 0,
            seq: 0,
            kind: MsgKind::OutdateRequest,
            node_state: NodeState::Active,
            keepalive_ms: 100,
            n_groups: 2,
            groups,
            payload_len: 2,
            payload,
        }
    }

    /// alpha (0) ↔ beta (1) of cluster "demo", generation 5 for alpha, 9 for beta.
    fn pair() -> (Codec, Codec) {
        (Codec::new(KEY, "demo", 0, 1, 5), Codec::new(KEY, "demo", 1, 0, 9))
    }

    fn enc(c: &mut Codec) -> Vec<u8> {
        let mut buf = [0u8; MAX_LEN];
        let n = c.encode(&mut repr(), &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn cluster_id_is_sha256_prefix() {
        // SHA-256("demo") = 2a97516c354b68848cdbd8f54a226a0a55b21ed138e207ad6c5cbb9c00aa5aea
        assert_eq!(cluster_id("demo"), 0x2a97_516c);
        assert_ne!(cluster_id("demo"), cluster_id("demo2"));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let a = Auth::new(b"Jefe");
        let tag = a.sign(b"what do ya want for nothing?");
        assert_eq!(tag.to_vec(), hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
        assert!(a.verify(b"what do ya want for nothing?", &tag).is_ok());
        assert_eq!(a.verify(b"what do ya want for nothing!", &tag), Err(WireError::BadMac));
        assert_eq!(a.verify(b"what do ya want for nothing?", &tag[..31]), Err(WireError::BadMac));
    }

    #[test]
    fn hmac_long_key_rfc4231_case_6() {
        let key = [0xaau8; 131];
        let a = Auth::new(&key);
        let tag = a.sign(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(tag.to_vec(), hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    }

    #[test]
    fn byte_fixture_with_mac() {
        let (mut alpha, mut beta) = pair();
        let bytes = enc(&mut alpha);
        let want = hex("5444 01 02 2a97516c 00 02 0000000000000005 0000000000000001 00000064 02
             00 02 03 01020304 00000000
             01 00 04 00000000 0a0b0c0d
             02 7230");
        assert_eq!(&bytes[..want.len()], &want[..]);
        assert_eq!(bytes.len(), want.len() + MAC_LEN);
        // the MAC is HMAC-SHA256(KEY, header..payload): pinned
        assert_eq!(bytes[want.len()..].to_vec(), Auth::new(KEY).sign(&want).to_vec());
        assert_eq!(
            bytes[want.len()..].to_vec(),
            hex("225f9c634b8387a07e3187830eb3a8f5be4e6297b4b2592a2cb7fb6594ca709b")
        );
        let got = beta.decode(&bytes).unwrap();
        let mut exp = repr();
        exp.cluster_id = 0x2a97_516c;
        exp.generation = 5;
        exp.seq = 1;
        assert_eq!(got, exp);
        // emit of the parsed Repr gives the same bytes back
        let mut buf = vec![0u8; got.buffer_len()];
        got.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(buf, want);
    }

    #[test]
    fn wrong_key_and_cluster() {
        let (mut alpha, _) = pair();
        let bytes = enc(&mut alpha);
        let mut other_key = Codec::new(b"another key", "demo", 1, 0, 1);
        assert_eq!(other_key.decode(&bytes), Err(WireError::BadMac));
        let mut other_cluster = Codec::new(KEY, "prod", 1, 0, 1);
        assert_eq!(other_cluster.decode(&bytes), Err(WireError::WrongCluster));
        assert!(WireError::BadMac.is_bad());
        assert!(WireError::WrongCluster.is_bad());
    }

    #[test]
    fn own_packet_and_unknown_sender_are_dropped() {
        let (mut alpha, _) = pair();
        let bytes = enc(&mut alpha);
        // alpha hears itself (bcast/mcast loopback)
        let e = alpha.decode(&bytes).unwrap_err();
        assert_eq!(e, WireError::UnknownSender(0));
        assert!(!e.is_bad());
    }

    #[test]
    fn truncation_and_bit_flips_fail() {
        let (mut alpha, mut beta) = pair();
        let bytes = enc(&mut alpha);
        for len in 0..bytes.len() {
            assert!(beta.decode(&bytes[..len]).is_err(), "len {len}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(beta.decode(&b).is_err(), "byte {i} bit {bit}");
            }
        }
        // window untouched by all that: the real packet is still accepted once
        assert!(beta.decode(&bytes).is_ok());
        assert_eq!(beta.decode(&bytes), Err(WireError::Replay));
    }

    #[test]
    fn replay_generation_and_reordering() {
        let (mut alpha, mut beta) = pair();
        let p: Vec<Vec<u8>> = (0..5).map(|_| enc(&mut alpha)).collect();
        // in order 1, 3, 2, 5, 4: every one accepted once
        for i in [0, 2, 1, 4, 3] {
            assert!(beta.decode(&p[i]).is_ok(), "first {i}");
        }
        for (i, pkt) in p.iter().enumerate() {
            let e = beta.decode(pkt).unwrap_err();
            assert_eq!(e, WireError::Replay, "again {i}");
            assert!(!e.is_bad());
        }
        // far ahead: older than the window is a replay even if never seen
        let old = enc(&mut alpha); // seq 6, held back
        for _ in 0..WINDOW {
            beta.decode(&enc(&mut alpha)).unwrap();
        }
        assert_eq!(beta.decode(&old), Err(WireError::Replay));
        // alpha restarts with a newer generation: accepted, window reset
        let captured = enc(&mut alpha);
        let mut alpha2 = Codec::new(KEY, "demo", 0, 1, 6);
        let fresh = enc(&mut alpha2);
        assert!(beta.decode(&fresh).is_ok());
        assert_eq!(beta.peer_generation(), Some(6));
        // the old generation's packets are now refused
        let e = beta.decode(&captured).unwrap_err();
        assert_eq!(e, WireError::OldGeneration);
        assert!(!e.is_bad());
        // seq 2.. of the new generation still go through
        assert!(beta.decode(&enc(&mut alpha2)).is_ok());
    }

    #[test]
    fn window_edges() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.generation(), None);
        w.check_and_accept(1, 100).unwrap();
        // exactly WINDOW-1 back is still inside, WINDOW back is outside
        assert!(w.check(1, 100 - (WINDOW - 1)).is_ok());
        assert_eq!(w.check(1, 100 - WINDOW), Err(WireError::Replay));
        w.check_and_accept(1, 100 - (WINDOW - 1)).unwrap();
        assert_eq!(w.check(1, 100 - (WINDOW - 1)), Err(WireError::Replay));
        // a jump by more than the window clears the bitmap
        w.check_and_accept(1, 1000).unwrap();
        assert!(w.check(1, 999).is_ok());
        assert_eq!(w.check(1, 1000), Err(WireError::Replay));
        assert_eq!(w.check(0, 5000), Err(WireError::OldGeneration));
        // seq 0 and u64::MAX do not overflow anything
        let mut w = ReplayWindow::new();
        w.check_and_accept(0, 0).unwrap();
        w.check_and_accept(0, u64::MAX).unwrap();
        assert_eq!(w.check(0, 0), Err(WireError::Replay));
        assert_eq!(w.check(0, u64::MAX), Err(WireError::Replay));
    }

    #[test]
    fn encode_small_buffer() {
        let (mut alpha, _) = pair();
        let mut r = repr();
        let need = r.buffer_len() + MAC_LEN;
        let mut buf = vec![0u8; need - 1];
        assert_eq!(alpha.encode(&mut r, &mut buf), Err(WireError::BufferTooSmall));
        let mut buf = vec![0u8; need];
        assert_eq!(alpha.encode(&mut r, &mut buf), Ok(need));
    }

    #[test]
    fn a_second_key_is_accepted_on_receive_only() {
        let old = b"the old key the old key the old!";
        let new = b"the new key the new key the new!";
        let mut a = Codec::new(old, "demo", 0, 1, 1);
        let mut b = Codec::new(old, "demo", 1, 0, 1);
        let mut r = repr();
        let mut buf = [0u8; MAX_LEN];
        // b still sends with the old key; a sends with the new one and accepts the old.
        a.set_keys(new, Some(old));
        let n = b.encode(&mut r, &mut buf).unwrap();
        assert!(a.decode(&buf[..n]).is_ok());
        let n = a.encode(&mut r, &mut buf).unwrap();
        assert_eq!(b.decode(&buf[..n]), Err(WireError::BadMac));
        b.set_keys(old, Some(new));
        let n = a.encode(&mut r, &mut buf).unwrap();
        assert!(b.decode(&buf[..n]).is_ok());
        // Without the accepted key, the old one is refused again.
        a.set_keys(new, None);
        let n = b.encode(&mut r, &mut buf).unwrap();
        assert_eq!(a.decode(&buf[..n]), Err(WireError::BadMac));
    }
}
