//! A heartbeat message: an ordered list of `(type, name, value)` fields.
//!
//! Field order is significant (both digests cover the fields in order) and names may repeat
//! (lookups return the first, as heartbeat's do). Every field is kept, understood or not,
//! so a message decoded and encoded again gives back the same bytes.
//!
//! Storage: one byte arena and one vector of spans, so a message costs two allocations.
//!
//! Number encodings, as heartbeat writes them: `seq`, `hg`, `ts`, `dt`, `ackseq` and the
//! `firstseq` of `NS_nak_rexmit` are lower-case hexadecimal without padding (`%lx`);
//! `protocol`, `ttl` and the `firstseq`/`lastseq` of `NS_rexmit` are decimal.

use super::HbError;

/// Field types (the digit in `(T)name=`). Only string and binary occur in the haresources
/// protocol; the others are kept as opaque bytes.
pub const FT_STRING: u8 = 0;
pub const FT_BINARY: u8 = 1;
pub const FT_STRUCT: u8 = 2;
pub const FT_LIST: u8 = 3;
pub const FT_COMPRESS: u8 = 4;
pub const FT_UNCOMPRESS: u8 = 5;

/// Field names heartbeat uses (cluster-glue's `F_*`).
pub mod f {
    pub const TYPE: &str = "t";
    pub const SRC: &str = "src";
    pub const SRCUUID: &str = "srcuuid";
    pub const DEST: &str = "dest";
    pub const DESTUUID: &str = "destuuid";
    pub const SEQ: &str = "seq";
    pub const HG: &str = "hg";
    pub const TS: &str = "ts";
    pub const LD: &str = "ld";
    pub const TTL: &str = "ttl";
    pub const AUTH: &str = "auth";
    pub const ST: &str = "st";
    pub const DT: &str = "dt";
    pub const PROTOCOL: &str = "protocol";
    pub const INFO: &str = "info";
    pub const RSC_HOLD: &str = "rsc_hold";
    pub const RTYPE: &str = "rtype";
    pub const ISSTABLE: &str = "isstable";
    pub const ACKSEQ: &str = "ackseq";
    pub const FIRSTSEQ: &str = "firstseq";
    pub const LASTSEQ: &str = "lastseq";
    pub const NODELIST: &str = "nodelist";
    pub const DELNODELIST: &str = "delnodelist";
    pub const NODE: &str = "node";
    pub const RESULT: &str = "result";
    pub const IPADDR: &str = "ipaddr";
    pub const WEOWN: &str = "weown";
    pub const OK: &str = "ok";
}

/// Message types (`t=`) of the haresources protocol.
pub mod t {
    pub const STATUS: &str = "status";
    pub const ACKMSG: &str = "NS_ackmsg";
    pub const REXMIT: &str = "NS_rexmit";
    pub const NAK_REXMIT: &str = "NS_nak_rexmit";
    pub const NS_STATUS: &str = "NS_st";
    pub const REQNODES: &str = "reqnodes";
    pub const REPNODES: &str = "repnodes";
    pub const STARTING: &str = "starting";
    pub const RESOURCE: &str = "resource";
    pub const ASK_RESOURCES: &str = "ask_resources";
    pub const HB_TAKEOVER: &str = "hb_takeover";
    pub const IP_REQUEST: &str = "ip-request";
    pub const IP_REQUEST_RESP: &str = "ip-request-resp";
    pub const SHUTDONE: &str = "shutdone";
    pub const STONITH: &str = "stonith";
    /// Types starting with this carry no `seq` (and no `ld`) and are never retransmitted.
    pub const NOSEQ_PREFIX: &str = "NS_";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    ftype: u8,
    name: (u32, u32),
    value: (u32, u32),
}

/// One field, borrowed from its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub ftype: u8,
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// A message (see the module documentation). Two messages are equal when their fields are.
#[derive(Clone, Default)]
pub struct Message {
    data: Vec<u8>,
    slots: Vec<Slot>,
    /// Set by a decoder that kept a struct, list or compressed field: those values are
    /// encoding-specific bytes, so only the same encoding can write them back.
    opaque: Option<super::Framing>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.len() == other.len() && self.fields().zip(other.fields()).all(|(a, b)| a == b)
    }
}

impl Eq for Message {}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut l = f.debug_list();
        for fl in self.fields() {
            l.entry(&format_args!(
                "({}){}={}",
                fl.ftype,
                String::from_utf8_lossy(fl.name),
                if fl.ftype == FT_STRING { String::from_utf8_lossy(fl.value).into_owned() } else { hex(fl.value) }
            ));
        }
        l.finish()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Is `name` a field name every encoding can carry? Non-empty, without `=`, newline or NUL,
/// not starting with `(` (the classic form's type prefix) nor with a frame marker.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && !name.iter().any(|&b| b == b'=' || b == b'\n' || b == 0)
        && name[0] != b'('
        && !name.starts_with(b">>>")
        && !name.starts_with(b"<<<")
        && !name.starts_with(b"###")
        && !name.starts_with(b"%%%")
}

fn span(start: usize, len: usize) -> Result<(u32, u32), HbError> {
    let s = u32::try_from(start).map_err(|_| HbError::TooLarge)?;
    let l = u32::try_from(len).map_err(|_| HbError::TooLarge)?;
    Ok((s, l))
}

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    pub fn with_capacity(bytes: usize, fields: usize) -> Message {
        Message { data: Vec::with_capacity(bytes), slots: Vec::with_capacity(fields), opaque: None }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn bytes(&self, (s, l): (u32, u32)) -> &[u8] {
        let s = s as usize;
        self.data.get(s..s.saturating_add(l as usize)).unwrap_or(&[])
    }

    fn view(&self, s: &Slot) -> Field<'_> {
        Field { ftype: s.ftype, name: self.bytes(s.name), value: self.bytes(s.value) }
    }

    /// The fields in wire order.
    pub fn fields(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        self.slots.iter().map(move |s| self.view(s))
    }

    pub fn field(&self, i: usize) -> Option<Field<'_>> {
        self.slots.get(i).map(|s| self.view(s))
    }

    fn store(&mut self, b: &[u8]) -> Result<(u32, u32), HbError> {
        let start = self.data.len();
        if start.saturating_add(b.len()) > u32::MAX as usize {
            return Err(HbError::TooLarge);
        }
        self.data.extend_from_slice(b);
        span(start, b.len())
    }

    /// Appends a field. The name must satisfy [`valid_name`]; a string value may not hold NUL
    /// (heartbeat keeps strings as C strings). Types above 9 cannot be written.
    pub fn push(&mut self, ftype: u8, name: &[u8], value: &[u8]) -> Result<(), HbError> {
        if !valid_name(name) {
            return Err(HbError::Unrepresentable("field name"));
        }
        if ftype > 9 {
            return Err(HbError::Unrepresentable("field type above 9"));
        }
        if ftype == FT_STRING && value.contains(&0) {
            return Err(HbError::Unrepresentable("NUL in a string field"));
        }
        let name = self.store(name)?;
        let value = self.store(value)?;
        self.slots.push(Slot { ftype, name, value });
        Ok(())
    }

    /// Appends a string field (the common case).
    pub fn add(&mut self, name: &str, value: &str) -> Result<(), HbError> {
        self.push(FT_STRING, name.as_bytes(), value.as_bytes())
    }

    /// Appends a string field holding `v` in lower-case hexadecimal, as heartbeat's `%lx`.
    pub fn add_hex(&mut self, name: &str, v: u64) -> Result<(), HbError> {
        let mut buf = [0u8; 16];
        self.push(FT_STRING, name.as_bytes(), fmt_hex(v, &mut buf))
    }

    /// Appends a string field holding `v` in decimal.
    pub fn add_dec(&mut self, name: &str, v: u64) -> Result<(), HbError> {
        let mut buf = [0u8; 20];
        self.push(FT_STRING, name.as_bytes(), fmt_dec(v, &mut buf))
    }

    /// heartbeat's `ha_msg_mod`: replaces the value (and type) of the first field called
    /// `name`, keeping its position, or appends the field when there is none.
    pub fn set(&mut self, ftype: u8, name: &str, value: &[u8]) -> Result<(), HbError> {
        match self.position(name) {
            Some(i) => {
                if ftype == FT_STRING && value.contains(&0) {
                    return Err(HbError::Unrepresentable("NUL in a string field"));
                }
                if ftype > 9 {
                    return Err(HbError::Unrepresentable("field type above 9"));
                }
                let v = self.store(value)?;
                if let Some(s) = self.slots.get_mut(i) {
                    s.ftype = ftype;
                    s.value = v;
                }
                Ok(())
            }
            None => self.push(ftype, name.as_bytes(), value),
        }
    }

    /// Removes every field called `name`; true if there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.slots.len();
        let data = &self.data;
        self.slots.retain(|s| {
            let (st, l) = s.name;
            data.get(st as usize..(st as usize).saturating_add(l as usize)) != Some(name.as_bytes())
        });
        before != self.slots.len()
    }

    /// Index of the first field called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| self.bytes(s.name) == name.as_bytes())
    }

    /// The first field called `name`.
    pub fn get_field(&self, name: &str) -> Option<Field<'_>> {
        self.position(name).and_then(|i| self.field(i))
    }

    /// The value of the first field called `name` (any type).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.get_field(name).map(|f| f.value)
    }

    /// The value of the first *string* field called `name`, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        let fl = self.get_field(name)?;
        if fl.ftype != FT_STRING {
            return None;
        }
        core::str::from_utf8(fl.value).ok()
    }

    /// A string field holding a lower-case or upper-case hex number (1 to 16 digits).
    pub fn get_hex(&self, name: &str) -> Option<u64> {
        parse_hex(self.get_str(name)?.as_bytes())
    }

    /// A string field holding a decimal number.
    pub fn get_dec(&self, name: &str) -> Option<u64> {
        parse_dec(self.get_str(name)?.as_bytes())
    }

    /// A binary field of exactly 16 bytes (a node uuid).
    pub fn get_uuid(&self, name: &str) -> Option<[u8; 16]> {
        let fl = self.get_field(name)?;
        if fl.ftype != FT_BINARY {
            return None;
        }
        fl.value.try_into().ok()
    }

    /// `t`: the message type.
    pub fn msg_type(&self) -> Option<&str> {
        self.get_str(f::TYPE)
    }
    /// `src`: the originating node.
    pub fn src(&self) -> Option<&str> {
        self.get_str(f::SRC)
    }
    /// `dest`: the node a message is for (absent: every node).
    pub fn dest(&self) -> Option<&str> {
        self.get_str(f::DEST)
    }
    /// `seq` (hex): the sender's sequence number; absent on `NS_` messages.
    pub fn seq(&self) -> Option<u64> {
        self.get_hex(f::SEQ)
    }
    /// `hg` (hex): the sender's generation, +1 at every start.
    pub fn hg(&self) -> Option<u64> {
        self.get_hex(f::HG)
    }
    /// `ts` (hex): the sender's `time(NULL)` when it made the message.
    pub fn ts(&self) -> Option<u64> {
        self.get_hex(f::TS)
    }
    /// `dt` (hex): the sender's deadtime in milliseconds (status messages).
    pub fn dt(&self) -> Option<u64> {
        self.get_hex(f::DT)
    }
    /// `ackseq` (hex) of `NS_ackmsg`.
    pub fn ackseq(&self) -> Option<u64> {
        self.get_hex(f::ACKSEQ)
    }
    /// `ld`: the sender's /proc/loadavg line.
    pub fn ld(&self) -> Option<&str> {
        self.get_str(f::LD)
    }
    /// `ttl` (decimal).
    pub fn ttl(&self) -> Option<u64> {
        self.get_dec(f::TTL)
    }
    /// `protocol` (decimal), present in status messages of nodes that do flow control.
    pub fn protocol(&self) -> Option<u64> {
        self.get_dec(f::PROTOCOL)
    }
    /// `st`: node status (`init`, `up`, `active`, `dead`).
    pub fn st(&self) -> Option<&str> {
        self.get_str(f::ST)
    }
    /// `info`: a free comment (`standby`, `shutdown`, `me`, `other`, `done`, …).
    pub fn info(&self) -> Option<&str> {
        self.get_str(f::INFO)
    }
    /// `rsc_hold`: `none`, `local`, `foreign` or `all`.
    pub fn rsc_hold(&self) -> Option<&str> {
        self.get_str(f::RSC_HOLD)
    }
    /// `srcuuid`: the sender's 16-byte uuid.
    pub fn srcuuid(&self) -> Option<[u8; 16]> {
        self.get_uuid(f::SRCUUID)
    }
    /// `destuuid`: the destination's 16-byte uuid.
    pub fn destuuid(&self) -> Option<[u8; 16]> {
        self.get_uuid(f::DESTUUID)
    }
    /// `firstseq`: decimal in `NS_rexmit`, hex in `NS_nak_rexmit` (as heartbeat writes them).
    pub fn firstseq(&self) -> Option<u64> {
        if self.msg_type() == Some(t::NAK_REXMIT) {
            self.get_hex(f::FIRSTSEQ)
        } else {
            self.get_dec(f::FIRSTSEQ)
        }
    }
    /// `lastseq` (decimal) of `NS_rexmit`.
    pub fn lastseq(&self) -> Option<u64> {
        self.get_dec(f::LASTSEQ)
    }
    /// `auth`: `(key index, hex digest)`.
    pub fn auth(&self) -> Option<(u32, &str)> {
        parse_auth(self.get_str(f::AUTH)?.as_bytes())
    }
}

/// Parses `"<index> <digest>"` (the auth field and the netstring trailer).
pub(crate) fn parse_auth(b: &[u8]) -> Option<(u32, &str)> {
    let sp = b.iter().position(|&c| c == b' ')?;
    let idx = u32::try_from(parse_dec(b.get(..sp)?)?).ok()?;
    let digest = core::str::from_utf8(b.get(sp + 1..)?).ok()?;
    if digest.is_empty() || digest.bytes().any(|c| !c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((idx, digest))
}

/// 1 to 16 hex digits, nothing else.
pub fn parse_hex(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// 1 to 19 decimal digits, nothing else.
pub fn parse_dec(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// `v` as heartbeat's `%lx`: lower-case hex, no padding.
pub fn fmt_hex(v: u64, buf: &mut [u8; 16]) -> &[u8] {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut i = buf.len();
    let mut x = v;
    loop {
        i -= 1;
        buf[i] = D[(x & 0xf) as usize];
        x >>= 4;
        if x == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `v` in decimal.
pub fn fmt_dec(v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut x = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Standard base64 with `=` padding (cluster-glue's alphabet).
pub fn base64_encode(input: &[u8], out: &mut Vec<u8>) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in input.chunks(3) {
        let b0 = c.first().copied().unwrap_or(0);
        let b1 = c.get(1).copied().unwrap_or(0);
        let b2 = c.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        out.push(A[(n >> 18) as usize & 63]);
        out.push(A[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 { A[(n >> 6) as usize & 63] } else { b'=' });
        out.push(if c.len() > 2 { A[n as usize & 63] } else { b'=' });
    }
}

/// Length of the base64 text for `n` bytes.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

fn b64_value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Decodes canonical base64 (padded, unused bits zero), so that encoding the result gives
/// back exactly `input`. Anything else is refused.
pub fn base64_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HbError> {
    const BAD: HbError = HbError::Malformed("bad base64 value");
    if !input.len().is_multiple_of(4) {
        return Err(BAD);
    }
    let n = input.len() / 4;
    for (i, q) in input.chunks(4).enumerate() {
        let last = i + 1 == n;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err(BAD);
        }
        let mut v: u32 = 0;
        for (j, &c) in q.iter().enumerate() {
            let d = if j >= 4 - pad { 0 } else { b64_value(c).ok_or(BAD)? };
            v = (v << 6) | d;
        }
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        let keep = 3 - pad;
        // Canonical: the bits below the kept bytes are zero.
        if (pad == 1 && v & 0xff != 0) || (pad == 2 && v & 0xffff != 0) {
            return Err(BAD);
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Ok(())
}

/// The encoding whose opaque (struct, list, compressed) values this message holds, if any.
pub(crate) fn opaque_origin(m: &Message) -> Option<super::Framing> {
    m.opaque
}

pub(crate) fn set_opaque_origin(m: &mut Message, f: super::Framing) {
    m.opaque = Some(f);
}

/// Appends to `m` from already-validated parts; used by the decoders, which check names
/// themselves (they must accept what heartbeat sends).
pub(crate) fn push_raw(m: &mut Message, ftype: u8, name: &[u8], value: &[u8]) -> Result<(), HbError> {
    let name = m.store(name)?;
    let value = m.store(value)?;
    m.slots.push(Slot { ftype, name, value });
    Ok(())
}

/// Appends a field whose value the caller writes into the arena with `fill` (decoders that
/// transform the value: base64, newline symbols).
pub(crate) fn push_with(
    m: &mut Message,
    ftype: u8,
    name: &[u8],
    fill: impl FnOnce(&mut Vec<u8>) -> Result<(), HbError>,
) -> Result<(), HbError> {
    let name = m.store(name)?;
    let start = m.data.len();
    fill(&mut m.data)?;
    let value = span(start, m.data.len() - start)?;
    m.slots.push(Slot { ftype, name, value });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_heartbeat_writes_them() {
        let mut b = [0u8; 16];
        assert_eq!(fmt_hex(0, &mut b), b"0");
        assert_eq!(fmt_hex(0x6b0a67b5, &mut b), b"6b0a67b5");
        assert_eq!(fmt_hex(u64::MAX, &mut b), b"ffffffffffffffff");
        let mut d = [0u8; 20];
        assert_eq!(fmt_dec(34, &mut d), b"34");
        assert_eq!(fmt_dec(u64::MAX, &mut d), b"18446744073709551615");
        assert_eq!(parse_hex(b"1b58"), Some(7000));
        assert_eq!(parse_hex(b"1B58"), Some(7000));
        assert_eq!(parse_hex(b""), None);
        assert_eq!(parse_hex(b"1 "), None);
        assert_eq!(parse_hex(b"0x1"), None);
        assert_eq!(parse_hex(b"11111111111111111"), None);
        assert_eq!(parse_dec(b"34"), Some(34));
        assert_eq!(parse_dec(b"-1"), None);
        assert_eq!(parse_dec(b"99999999999999999999"), None);
    }

    #[test]
    fn base64_round_trip_and_strictness() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let mut t = Vec::new();
            base64_encode(&data, &mut t);
            assert_eq!(t.len(), base64_len(n));
            let mut back = Vec::new();
            base64_decode(&t, &mut back).unwrap();
            assert_eq!(back, data);
        }
        let mut t = Vec::new();
        base64_encode(&hex_bytes("c8ec5433875f4c01a7c60806ec4e8ba4"), &mut t);
        assert_eq!(t, b"yOxUM4dfTAGnxggG7E6LpA==");
        let mut o = Vec::new();
        assert!(base64_decode(b"yOxUM4dfTAGnxggG7E6LpB==", &mut o).is_err(), "non-zero pad bits");
        assert!(base64_decode(b"abc", &mut o).is_err());
        assert!(base64_decode(b"ab=c", &mut o).is_err());
        assert!(base64_decode(b"a===", &mut o).is_err());
        assert!(base64_decode(b"ab==abcd", &mut o).is_err());
        assert!(base64_decode(b"ab!d", &mut o).is_err());
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn fields_keep_order_and_set_replaces_in_place() {
        let mut m = Message::new();
        m.add("t", "status").unwrap();
        m.add("st", "init").unwrap();
        m.add_hex("seq", 10).unwrap();
        m.push(FT_BINARY, b"srcuuid", &[7u8; 16]).unwrap();
        m.set(FT_STRING, "st", b"up").unwrap();
        m.set(FT_STRING, "ttl", b"3").unwrap();
        let names: Vec<&[u8]> = m.fields().map(|f| f.name).collect();
        assert_eq!(names, vec![&b"t"[..], b"st", b"seq", b"srcuuid", b"ttl"]);
        assert_eq!(m.st(), Some("up"));
        assert_eq!(m.seq(), Some(10));
        assert_eq!(m.ttl(), Some(3));
        assert_eq!(m.srcuuid(), Some([7u8; 16]));
        assert_eq!(m.get_str("srcuuid"), None, "binary is not a string");
        assert!(m.remove("st"));
        assert!(!m.remove("st"));
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn names_that_no_encoding_can_carry_are_refused() {
        let mut m = Message::new();
        for bad in [&b""[..], b"a=b", b"a\nb", b"(1)x", b">>>", b"<<<x", b"a\0"] {
            assert!(m.push(FT_STRING, bad, b"v").is_err(), "{bad:?}");
        }
        assert!(m.push(FT_STRING, b"x", b"a\0b").is_err());
        assert!(m.push(10, b"x", b"v").is_err());
        assert!(m.push(FT_BINARY, b"x", b"a\0b").is_ok());
    }

    #[test]
    fn auth_value() {
        let mut m = Message::new();
        m.add("auth", "1 db26a9a1a749674d37b7882c6ee4101f0fbf4bcf").unwrap();
        assert_eq!(m.auth(), Some((1, "db26a9a1a749674d37b7882c6ee4101f0fbf4bcf")));
        assert_eq!(parse_auth(b"1"), None);
        assert_eq!(parse_auth(b"x abc"), None);
        assert_eq!(parse_auth(b"1 "), None);
        assert_eq!(parse_auth(b"1 ab cd"), None);
    }
}
