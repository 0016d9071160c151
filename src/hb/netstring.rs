//! The netstring frame heartbeat sends on UDP (cluster-glue's `msg2netstring`):
//!
//! ```text
//! "###\n" { LEN ":" "(" T ")" NAME "=" VALUE "," }* "%%%\n" ALEN ":" INDEX " " DIGEST ","
//! ```
//!
//! `LEN` is the decimal length of `(T)NAME=VALUE`; values are raw bytes, without escaping.
//! The trailer is a netstring holding `"<authkeys index> <hex digest>"`, the digest of every
//! byte from `###\n` through `%%%\n` inclusive. Nothing follows the trailer's `,`.
//!
//! Decoding is strict about the form heartbeat writes (no leading zeros in lengths, no bytes
//! after the trailer), so every frame it accepts encodes back to the same bytes.

use super::auth::AuthKeys;
use super::msg::{self, Message};
use super::{Framing, HbError, MAX_FRAME};

pub const START: &[u8] = b"###\n";
pub const END: &[u8] = b"%%%\n";

/// Where the parts of a decoded frame are (offsets into the decoded buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// Length of `###\n … %%%\n`: the span the trailer's digest covers.
    pub signed_len: usize,
    /// The trailer: key index and the digest's byte range, if there is one.
    trailer: Option<(u32, usize, usize)>,
}

impl Info {
    /// The bytes the trailer's digest covers.
    pub fn signed<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(..self.signed_len).unwrap_or(&[])
    }
    /// `(key index, hex digest)` of the trailer.
    pub fn trailer<'a>(&self, buf: &'a [u8]) -> Option<(u32, &'a str)> {
        let (i, s, e) = self.trailer?;
        Some((i, core::str::from_utf8(buf.get(s..e)?).ok()?))
    }
    pub fn has_trailer(&self) -> bool {
        self.trailer.is_some()
    }
}

/// One netstring at `buf[pos..]`: `(payload start, payload end, position after the ',')`.
fn peel(buf: &[u8], pos: usize) -> Result<(usize, usize, usize), HbError> {
    const BAD: HbError = HbError::Malformed("bad netstring length");
    let rest = buf.get(pos..).ok_or(BAD)?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 9 || (digits > 1 && rest[0] == b'0') {
        return Err(BAD);
    }
    if rest.get(digits) != Some(&b':') {
        return Err(BAD);
    }
    let len = msg::parse_dec(&rest[..digits]).ok_or(BAD)? as usize;
    let start = pos + digits + 1;
    let end = start.checked_add(len).ok_or(BAD)?;
    if buf.get(end) != Some(&b',') {
        return Err(HbError::Malformed("netstring not closed by ','"));
    }
    Ok((start, end, end + 1))
}

/// Decodes a frame (trailer optional). The digest is not checked here: see
/// [`super::decode_verified`].
pub fn decode(buf: &[u8]) -> Result<(Message, Info), HbError> {
    if buf.len() > MAX_FRAME {
        return Err(HbError::TooLarge);
    }
    if !buf.starts_with(START) {
        return Err(HbError::Malformed("no ###\\n"));
    }
    let mut m = Message::with_capacity(buf.len(), 16);
    let mut pos = START.len();
    loop {
        let rest = buf.get(pos..).unwrap_or(&[]);
        if rest.starts_with(END) {
            pos += END.len();
            break;
        }
        if rest.is_empty() {
            return Err(HbError::Malformed("no %%%\\n"));
        }
        let (s, e, next) = peel(buf, pos)?;
        let body = &buf[s..e];
        // "(T)NAME=VALUE"
        if body.len() < 5 || body[0] != b'(' || !body[1].is_ascii_digit() || body[2] != b')' {
            return Err(HbError::Malformed("field without (T) type prefix"));
        }
        let ftype = body[1] - b'0';
        let nv = &body[3..];
        let eq = nv.iter().position(|&c| c == b'=').ok_or(HbError::Malformed("field without '='"))?;
        let (name, value) = (&nv[..eq], &nv[eq + 1..]);
        if !msg::valid_name(name) {
            return Err(HbError::Malformed("bad field name"));
        }
        if ftype == msg::FT_STRING && value.contains(&0) {
            return Err(HbError::Malformed("NUL in a string field"));
        }
        if ftype > msg::FT_BINARY {
            msg::set_opaque_origin(&mut m, Framing::Netstring);
        }
        msg::push_raw(&mut m, ftype, name, value)?;
        pos = next;
    }
    let signed_len = pos;
    let trailer = if pos == buf.len() {
        None
    } else {
        let (s, e, next) = peel(buf, pos)?;
        if next != buf.len() {
            return Err(HbError::Malformed("bytes after the auth trailer"));
        }
        let (idx, digest) =
            msg::parse_auth(&buf[s..e]).ok_or(HbError::Malformed("auth trailer is not \"N digest\""))?;
        let ds = e - digest.len();
        Some((idx, ds, e))
    };
    Ok((m, Info { signed_len, trailer }))
}

fn dec_len(n: usize) -> usize {
    let mut d = 1;
    let mut x = n;
    while x >= 10 {
        x /= 10;
        d += 1;
    }
    d
}

/// Bytes [`encode`] writes for `m` (without trailer).
pub fn encoded_len(m: &Message) -> usize {
    let mut n = START.len() + END.len();
    for fl in m.fields() {
        let body = 3 + fl.name.len() + 1 + fl.value.len();
        n += dec_len(body) + 1 + body + 1;
    }
    n
}

/// Appends `###\n … %%%\n` for `m` to `out` (no trailer).
pub fn encode(m: &Message, out: &mut Vec<u8>) -> Result<(), HbError> {
    let n = encoded_len(m);
    if n > MAX_FRAME {
        return Err(HbError::TooLarge);
    }
    out.reserve(n + 64);
    if msg::opaque_origin(m) == Some(Framing::Classic) {
        return Err(HbError::Unrepresentable("struct/list field decoded from the classic form"));
    }
    out.extend_from_slice(START);
    for fl in m.fields() {
        if fl.ftype > 9 {
            return Err(HbError::Unrepresentable("field type above 9"));
        }
        let body = 3 + fl.name.len() + 1 + fl.value.len();
        let mut d = [0u8; 20];
        out.extend_from_slice(msg::fmt_dec(body as u64, &mut d));
        out.extend_from_slice(b":(");
        out.push(b'0' + fl.ftype);
        out.push(b')');
        out.extend_from_slice(fl.name);
        out.push(b'=');
        out.extend_from_slice(fl.value);
        out.push(b',');
    }
    out.extend_from_slice(END);
    Ok(())
}

/// Appends the whole frame for `m`, with the trailer signed by the active key of `keys`.
/// (The `auth` field, if the caller wants one, must already be in `m`.)
pub fn encode_signed(m: &Message, keys: &AuthKeys, out: &mut Vec<u8>) -> Result<(), HbError> {
    let start = out.len();
    encode(m, out)?;
    let digest = keys.sign(&out[start..]);
    let mut idx = [0u8; 20];
    let idx = msg::fmt_dec(u64::from(keys.active_index()), &mut idx);
    let alen = idx.len() + 1 + digest.as_bytes().len();
    let mut d = [0u8; 20];
    out.extend_from_slice(msg::fmt_dec(alen as u64, &mut d));
    out.push(b':');
    out.extend_from_slice(idx);
    out.push(b' ');
    out.extend_from_slice(digest.as_bytes());
    out.push(b',');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &[u8] = b"###\n11:(0)t=status,10:(0)st=init,10:(0)dt=1b58,13:(0)protocol=1,10:(0)src=hn1,27:(1)srcuuid=\xc8\xecT3\x87_L\x01\xa7\xc6\x08\x06\xecN\x8b\xa4,8:(0)seq=1,14:(0)hg=6b0a67b5,14:(0)ts=6b0a67b4,28:(0)ld=0.20 0.20 0.62 5/94 13,8:(0)ttl=3,50:(0)auth=1 db26a9a1a749674d37b7882c6ee4101f0fbf4bcf,%%%\n42:1 84ddc79381362f69894530b47ab2e03dd17ed642,";

    #[test]
    fn decodes_and_reencodes_a_captured_status() {
        let (m, info) = decode(STATUS).unwrap();
        assert_eq!(m.len(), 12);
        assert_eq!(m.msg_type(), Some("status"));
        assert_eq!(m.seq(), Some(1));
        assert_eq!(m.hg(), Some(0x6b0a67b5));
        assert_eq!(m.ld(), Some("0.20 0.20 0.62 5/94 13"));
        assert_eq!(m.srcuuid().map(|u| u[0]), Some(0xc8));
        assert_eq!(info.trailer(STATUS), Some((1, "84ddc79381362f69894530b47ab2e03dd17ed642")));
        assert!(info.signed(STATUS).ends_with(b"%%%\n"));
        let mut out = Vec::new();
        encode(&m, &mut out).unwrap();
        assert_eq!(out, info.signed(STATUS));
        assert_eq!(encoded_len(&m), out.len());
    }

    #[test]
    fn refuses_what_heartbeat_never_writes() {
        let bad: &[&[u8]] = &[
            b"",
            b"###\n",
            b"###\n8:(0)seq=1,",
            b"###\n08:(0)seq=1,%%%\n",
            b"###\n9:(0)seq=1,%%%\n",
            b"###\n7:(0)seq=1,%%%\n",
            b"###\n5:(0)s=1,%%%\n1:1,",
            b"###\n8:(0)seq=1,%%%\n4:1 ab,x",
            b"###\n5:0)s=1,%%%\n",
            b"###\n5:(x)s=1,%%%\n",
            b"###\n5:(0)=11,%%%\n",
            b"###\n5:(0)s\x001,%%%\n",
            b"###\n7:(0)s=1\x00,%%%\n",
            b"###\n4294967296:(0)s=1,%%%\n",
        ];
        for b in bad {
            assert!(decode(b).is_err(), "{:?}", String::from_utf8_lossy(b));
        }
        let (m, i) = decode(b"###\n7:(0)s=1 ,%%%\n").unwrap();
        assert_eq!(m.get_str("s"), Some("1 "));
        assert!(!i.has_trailer());
    }

    #[test]
    fn values_are_raw_bytes() {
        let mut m = Message::new();
        m.add("info", "a,b=c\n%%%\n###\n").unwrap();
        m.push(msg::FT_BINARY, b"x", b"\x00\xff,").unwrap();
        let mut out = Vec::new();
        encode(&m, &mut out).unwrap();
        let (back, _) = decode(&out).unwrap();
        assert_eq!(back, m);
    }
}
