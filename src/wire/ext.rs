//! Heartbeat extensions: optional fields carried in a heartbeat's payload as TLVs
//! (type: 1 byte, length: 1 byte, value). This is how the wire format grows without a new
//! version: tandem 0.1.0 ignores a heartbeat's payload, and a receiver skips the types it
//! does not know, so nodes of different releases keep forming one cluster during a rolling
//! upgrade (docs/upgrading.md). A field that must change meaning gets a new type instead.
//!
//! Parsing is zero-copy and allocation-free; a malformed TLV list (a length that runs past
//! the payload) is `BadField("extension")`.

use super::{WireError, MAX_PAYLOAD};

/// TLV types.
pub mod tlv {
    /// 1 byte: the sender's protocol level ([`super::PROTOCOL_LEVEL`]). Absent: 0.1.0.
    pub const LEVEL: u8 = 1;
    /// 4 bytes: a digest of the sender's cluster-relevant configuration (level 2).
    pub const CONFIG_DIGEST: u8 = 2;
    /// 8 bytes: the receiver's boot generation as the sender last heard it, 0 when it has
    /// not heard the receiver yet (level 2). Binds the sender's grants to that generation.
    pub const ECHO: u8 = 3;
    /// 4 bytes: the sender's `fence_delay` in milliseconds, when it fences by a power
    /// method (level 3). Both nodes pick their delays from the larger of the two, so their
    /// order holds when their measured fence times differ.
    pub const FENCE_DELAY: u8 = 4;
    /// 2 bytes: how many of its ping targets the sender reaches, and flags (bit 0: the
    /// count is known: `ping_deadtime` has passed since its start or every target answered).
    /// Sent only with ping targets (level 3).
    pub const REACH: u8 = 5;
}

/// The protocol level this build speaks: 0 is tandem 0.1.0 (no extensions), 1 adds the
/// extension area itself, 2 adds the configuration digest and the generation echo, 3 the
/// fence delay. Each additive change raises it, so a node knows which messages its peer
/// understands before it sends them.
pub const PROTOCOL_LEVEL: u8 = 3;

/// The bytes [`Ext::emit`] writes: the level, the configuration digest and the generation
/// echo always; the fence delay when the node fences by a power method; the reach count
/// when it has ping targets (the serial line budget counts them).
pub const fn emitted_len(fence_delay: bool, reach: bool) -> usize {
    3 + 6 + 10 + if fence_delay { 6 } else { 0 } + if reach { 4 } else { 0 }
}

/// The most bytes [`Ext::emit`] writes for this build's fields.
pub const OURS_LEN: usize = emitted_len(true, true);

/// The extension fields of one heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ext {
    /// The sender's protocol level (0 when absent: a 0.1.0 peer).
    pub level: u8,
    /// The sender's configuration digest, when sent.
    pub config_digest: Option<u32>,
    /// The receiver's generation as the sender knows it, when sent (0: not heard yet).
    pub echo: Option<u64>,
    /// The sender's `fence_delay` in milliseconds, when it fences by a power method.
    pub fence_delay_ms: Option<u32>,
    /// The sender's reachable ping targets and whether that count is known yet.
    pub reach: Option<(u8, bool)>,
}

impl Ext {
    /// What this build sends: its level, its configuration digest, and the peer's generation
    /// as heard (0 if not yet).
    pub fn ours(config_digest: u32, echo: u64) -> Ext {
        Ext {
            level: PROTOCOL_LEVEL,
            config_digest: Some(config_digest),
            echo: Some(echo),
            fence_delay_ms: None,
            reach: None,
        }
    }

    /// With the sender's reachability.
    pub fn with_reach(self, reach: Option<(u8, bool)>) -> Ext {
        Ext { reach, ..self }
    }

    /// With the sender's fence delay.
    pub fn with_fence_delay(self, ms: Option<u32>) -> Ext {
        Ext { fence_delay_ms: ms, ..self }
    }

    /// Reads the TLVs of a heartbeat payload; unknown types are skipped.
    pub fn parse(payload: &[u8]) -> Result<Ext, WireError> {
        let bad = WireError::BadField("extension");
        let mut ext = Ext::default();
        for item in Tlvs(payload) {
            let (t, v) = item?;
            match t {
                tlv::LEVEL => match v {
                    [l] => ext.level = *l,
                    _ => return Err(bad),
                },
                tlv::CONFIG_DIGEST => ext.config_digest = Some(u32::from_be_bytes(v.try_into().map_err(|_| bad)?)),
                tlv::ECHO => ext.echo = Some(u64::from_be_bytes(v.try_into().map_err(|_| bad)?)),
                tlv::FENCE_DELAY => ext.fence_delay_ms = Some(u32::from_be_bytes(v.try_into().map_err(|_| bad)?)),
                tlv::REACH => match v {
                    [count, flags] => ext.reach = Some((*count, flags & 1 != 0)),
                    _ => return Err(bad),
                },
                _ => {}
            }
        }
        Ok(ext)
    }

    /// Writes the TLVs into `buf`; returns the bytes written (0 if `buf` is too small: the
    /// extensions are optional, a heartbeat without them is still valid).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let mut w = Writer { buf, at: 0 };
        w.put(tlv::LEVEL, &[self.level]);
        if let Some(d) = self.config_digest {
            w.put(tlv::CONFIG_DIGEST, &d.to_be_bytes());
        }
        if let Some(e) = self.echo {
            w.put(tlv::ECHO, &e.to_be_bytes());
        }
        if let Some(d) = self.fence_delay_ms {
            w.put(tlv::FENCE_DELAY, &d.to_be_bytes());
        }
        if let Some((count, known)) = self.reach {
            w.put(tlv::REACH, &[count, u8::from(known)]);
        }
        if w.at > MAX_PAYLOAD {
            return 0;
        }
        w.at
    }
}

/// Iterates over `(type, value)` pairs; yields one error and stops on a truncated TLV.
struct Tlvs<'a>(&'a [u8]);

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<(u8, &'a [u8]), WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        let (&t, rest) = self.0.split_first()?;
        let Some((&len, rest)) = rest.split_first() else {
            self.0 = &[];
            return Some(Err(WireError::BadField("extension")));
        };
        let Some(v) = rest.get(..usize::from(len)) else {
            self.0 = &[];
            return Some(Err(WireError::BadField("extension")));
        };
        self.0 = rest.get(usize::from(len)..).unwrap_or(&[]);
        Some(Ok((t, v)))
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, t: u8, v: &[u8]) {
        let Ok(len) = u8::try_from(v.len()) else { return };
        let end = self.at + 2 + v.len();
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst[0] = t;
            dst[1] = len;
            dst[2..].copy_from_slice(v);
            self.at = end;
        } else {
            // Too small: report it by running past the end, so emit() returns 0.
            self.at = usize::MAX / 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bytes() {
        let mut buf = [0u8; MAX_PAYLOAD];
        let ours = Ext::ours(0x0102_0304, 0x1122_3344_5566_7788)
            .with_fence_delay(Some(0x0000_0640))
            .with_reach(Some((2, true)));
        let n = ours.emit(&mut buf);
        assert_eq!(
            &buf[..n],
            &[
                tlv::LEVEL,
                1,
                PROTOCOL_LEVEL,
                tlv::CONFIG_DIGEST,
                4,
                1,
                2,
                3,
                4,
                tlv::ECHO,
                8,
                0x11,
                0x22,
                0x33,
                0x44,
                0x55,
                0x66,
                0x77,
                0x88,
                tlv::FENCE_DELAY,
                4,
                0,
                0,
                0x06,
                0x40,
                tlv::REACH,
                2,
                2,
                1
            ]
        );
        assert_eq!(n, OURS_LEN);
        assert_eq!(Ext::parse(&buf[..n]), Ok(ours));
    }

    #[test]
    fn absent_and_unknown() {
        assert_eq!(Ext::parse(&[]), Ok(Ext::default()));
        // An unknown type (from a newer peer) is skipped, whatever its length.
        let e = Ext::parse(&[0xee, 3, 1, 2, 3, tlv::LEVEL, 1, 7, 0xef, 0]).unwrap();
        assert_eq!((e.level, e.config_digest, e.echo), (7, None, None));
    }

    #[test]
    fn malformed() {
        for bad in [
            &[tlv::LEVEL][..],
            &[tlv::LEVEL, 2, 1],
            &[9, 5, 1, 2],
            &[tlv::LEVEL, 2, 1, 1],
            &[tlv::CONFIG_DIGEST, 3, 1, 2, 3],
            &[tlv::ECHO, 4, 1, 2, 3, 4],
            &[tlv::FENCE_DELAY, 2, 1, 2],
            &[tlv::REACH, 1, 1],
        ] {
            assert_eq!(Ext::parse(bad), Err(WireError::BadField("extension")), "{bad:?}");
        }
    }

    #[test]
    fn too_small_a_buffer_writes_nothing() {
        let mut buf = [0u8; 2];
        assert_eq!(Ext::ours(1, 2).emit(&mut buf), 0);
    }
}
