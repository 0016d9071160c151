//! heartbeat's authentication: the `authkeys` file and the digests.
//!
//! `authkeys` (heartbeat's `parse_authfile`): `auth N` names the key used to sign, and lines
//! `N sha1 KEY`, `N md5 KEY`, `N crc` define keys 0‥15. `#` starts a comment line. heartbeat
//! refuses the file if group or others may read it (`st_mode & 0044`), and it sets the
//! signing key only from a key line that comes *after* the `auth N` line.
//!
//! Digests (lower-case hex): sha1 = HMAC-SHA1 (40 digits), md5 = HMAC-MD5 (32), with the key
//! string's bytes as the HMAC key; crc = CRC-32, polynomial 0x04C11DB7, MSB first, init 0,
//! complemented, no length appended, printed `%lx` (no zero padding, so 1 to 8 digits).
//!
//! They cover two spans: a netstring frame's trailer signs `###\n … %%%\n`
//! ([`super::netstring`]); the `auth` field signs the classic text of every other field
//! ([`super::classic::auth_text`]). Keyed digests are compared in constant time.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;

use super::msg::{self, Message, FT_STRING};
use super::{classic, HbError};

type HmacSha1 = Hmac<Sha1>;
type HmacMd5 = Hmac<Md5>;

/// Key indices 0‥15 (heartbeat's MAXAUTH).
pub const MAX_KEYS: usize = 16;

/// A digest algorithm of authkeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sha1,
    Md5,
    Crc,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Sha1 => "sha1",
            Method::Md5 => "md5",
            Method::Crc => "crc",
        }
    }
    fn from_name(s: &[u8]) -> Option<Method> {
        match s {
            b"sha1" => Some(Method::Sha1),
            b"md5" => Some(Method::Md5),
            b"crc" => Some(Method::Crc),
            _ => None,
        }
    }
}

#[derive(Clone)]
enum Keyed {
    Sha1(HmacSha1),
    Md5(HmacMd5),
    Crc,
}

/// A digest in lower-case hex, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    buf: [u8; 40],
    len: u8,
}

impl core::fmt::Debug for Digest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Digest {
    fn from_bytes(b: &[u8]) -> Digest {
        const D: &[u8; 16] = b"0123456789abcdef";
        let mut d = Digest { buf: [0; 40], len: 0 };
        for (i, x) in b.iter().take(20).enumerate() {
            d.buf[2 * i] = D[usize::from(x >> 4)];
            d.buf[2 * i + 1] = D[usize::from(x & 0xf)];
            d.len = (2 * i + 2) as u8;
        }
        d
    }
    fn from_crc(v: u32) -> Digest {
        let mut h = [0u8; 16];
        let s = msg::fmt_hex(u64::from(v), &mut h);
        let mut d = Digest { buf: [0; 40], len: s.len() as u8 };
        d.buf[..s.len()].copy_from_slice(s);
        d
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04C1_1DB7 } else { c << 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// heartbeat's crc "digest": CRC-32 (poly 0x04C11DB7, MSB first, init 0, no length), inverted.
pub fn hb_crc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from(((crc >> 24) as u8) ^ b)];
    }
    !crc
}

/// Equal length and equal bytes, in time independent of where they differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

/// The keys of an authkeys file.
#[derive(Clone)]
pub struct AuthKeys {
    keys: [Option<(Method, Keyed)>; MAX_KEYS],
    active: u8,
}

impl core::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let defined: Vec<(usize, &'static str)> =
            self.keys.iter().enumerate().filter_map(|(i, k)| k.as_ref().map(|(m, _)| (i, m.name()))).collect();
        f.debug_struct("AuthKeys").field("active", &self.active).field("defined", &defined).finish()
    }
}

fn keyed(method: Method, key: &[u8]) -> Result<Keyed, HbError> {
    const BAD: HbError = HbError::AuthKeys { line: 0, what: "key rejected by HMAC" };
    Ok(match method {
        Method::Sha1 => Keyed::Sha1(HmacSha1::new_from_slice(key).map_err(|_| BAD)?),
        Method::Md5 => Keyed::Md5(HmacMd5::new_from_slice(key).map_err(|_| BAD)?),
        Method::Crc => Keyed::Crc,
    })
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// `%d` as sscanf reads it: optional blanks, an optional sign, digits. Returns the value and
/// the rest of the input.
fn scan_int(s: &[u8]) -> Option<(i64, &[u8])> {
    let s = &s[s.iter().take_while(|&&c| is_ws(c)).count()..];
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let v = i64::try_from(msg::parse_dec(s.get(..n.min(18))?)?).ok()?;
    Some((if neg { -v } else { v }, &s[n..]))
}

/// `%s` as sscanf reads it: optional blanks, then a run of non-blanks.
fn scan_word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = &s[s.iter().take_while(|&&c| is_ws(c)).count()..];
    let n = s.iter().take_while(|&&c| !is_ws(c)).count();
    (n > 0).then(|| (&s[..n], &s[n..]))
}

impl AuthKeys {
    /// One key, used to sign and to check (tests, and callers without a file).
    pub fn single(index: u8, method: Method, key: &[u8]) -> Result<AuthKeys, HbError> {
        if usize::from(index) >= MAX_KEYS {
            return Err(HbError::AuthKeys { line: 0, what: "key index must be 0..15" });
        }
        let mut keys: [Option<(Method, Keyed)>; MAX_KEYS] = Default::default();
        keys[usize::from(index)] = Some((method, keyed(method, key)?));
        Ok(AuthKeys { keys, active: index })
    }

    /// Parses authkeys text the way heartbeat does, refusing what it refuses.
    pub fn parse(text: &[u8]) -> Result<AuthKeys, HbError> {
        let mut keys: [Option<(Method, Keyed)>; MAX_KEYS] = Default::default();
        let mut authnum: Option<i64> = None;
        let mut active: Option<u8> = None;
        let mut first_err: Option<HbError> = None;
        let mut fail = |line: usize, what: &'static str| {
            if first_err.is_none() {
                first_err = Some(HbError::AuthKeys { line, what });
            }
        };
        for (n, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = n + 1;
            let l = &raw[raw.iter().take_while(|&&c| is_ws(c)).count()..];
            if l.is_empty() || l[0] == b'#' {
                continue;
            }
            if l[0] == b'a' {
                match l.strip_prefix(b"auth").and_then(scan_int) {
                    Some((v, _)) => authnum = Some(v),
                    None => fail(line, "expected `auth N`"),
                }
                continue;
            }
            let Some((idx, rest)) = scan_int(l) else {
                fail(line, "expected `N METHOD [KEY]`");
                continue;
            };
            let Some((method, rest)) = scan_word(rest) else {
                fail(line, "expected `N METHOD [KEY]`");
                continue;
            };
            let key = scan_word(rest).map(|(k, _)| k);
            if !(0..MAX_KEYS as i64).contains(&idx) {
                fail(line, "key index must be 0..15");
                continue;
            }
            let Some(m) = Method::from_name(method) else {
                fail(line, "unknown method (sha1, md5 or crc)");
                continue;
            };
            match (m, key) {
                (Method::Crc, Some(_)) => {
                    fail(line, "crc takes no key");
                    continue;
                }
                (Method::Sha1 | Method::Md5, None) => {
                    fail(line, "sha1 and md5 need a key");
                    continue;
                }
                _ => {}
            }
            let k = match keyed(m, key.unwrap_or(b"")) {
                Ok(k) => k,
                Err(_) => {
                    fail(line, "key rejected by HMAC");
                    continue;
                }
            };
            let i = idx as usize;
            keys[i] = Some((m, k));
            if authnum == Some(idx) {
                active = Some(i as u8);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let line = text.split(|&c| c == b'\n').count();
        match (active, authnum) {
            (Some(a), _) => Ok(AuthKeys { keys, active: a }),
            (None, None) => Err(HbError::AuthKeys { line, what: "no `auth N` line" }),
            (None, Some(_)) => {
                Err(HbError::AuthKeys { line, what: "no key line for the `auth N` index after the auth line" })
            }
        }
    }

    /// heartbeat's permission rule: refused if group or others may read it.
    pub fn check_mode(mode: u32) -> Result<(), HbError> {
        if mode & 0o044 != 0 {
            return Err(HbError::AuthKeysMode(mode));
        }
        Ok(())
    }

    /// Reads and checks an authkeys file (mode first, from the open file).
    pub fn load(path: &Path) -> Result<AuthKeys, HbError> {
        let errno =
            |e: std::io::Error| e.raw_os_error().map(nix::errno::Errno::from_raw).unwrap_or(nix::errno::Errno::EIO);
        let mut f = std::fs::File::open(path).map_err(|e| HbError::Io { op: "open authkeys", errno: errno(e) })?;
        let md = f.metadata().map_err(|e| HbError::Io { op: "fstat authkeys", errno: errno(e) })?;
        AuthKeys::check_mode(md.mode())?;
        let mut text = Vec::new();
        f.by_ref()
            .take(1 << 20)
            .read_to_end(&mut text)
            .map_err(|e| HbError::Io { op: "read authkeys", errno: errno(e) })?;
        AuthKeys::parse(&text)
    }

    /// The index messages are signed with (`auth N`).
    pub fn active_index(&self) -> u32 {
        u32::from(self.active)
    }

    pub fn method(&self, index: u32) -> Option<Method> {
        self.entry(index).map(|(m, _)| *m)
    }

    fn entry(&self, index: u32) -> Option<&(Method, Keyed)> {
        self.keys.get(index as usize)?.as_ref()
    }

    /// The digest of `data` with key `index`.
    pub fn digest(&self, index: u32, data: &[u8]) -> Option<Digest> {
        let (_, k) = self.entry(index)?;
        Some(match k {
            Keyed::Sha1(h) => {
                let mut h = h.clone();
                h.update(data);
                Digest::from_bytes(&h.finalize().into_bytes())
            }
            Keyed::Md5(h) => {
                let mut h = h.clone();
                h.update(data);
                Digest::from_bytes(&h.finalize().into_bytes())
            }
            Keyed::Crc => Digest::from_crc(hb_crc(data)),
        })
    }

    /// The digest of `data` with the signing key.
    pub fn sign(&self, data: &[u8]) -> Digest {
        self.digest(self.active_index(), data).unwrap_or(Digest { buf: [0; 40], len: 0 })
    }

    /// Checks `digest` (hex text from a message) against `data` with key `index`.
    pub fn verify(&self, index: u32, data: &[u8], digest: &str) -> Result<(), HbError> {
        let want = self.digest(index, data).ok_or(HbError::UnknownKeyIndex(index))?;
        if ct_eq(want.as_bytes(), digest.as_bytes()) {
            Ok(())
        } else {
            Err(HbError::BadAuth)
        }
    }
}

/// Sets the `auth` field of `m` (replacing it in place, or appending it last) to the digest
/// of its classic text, as heartbeat's `add_msg_auth` does.
pub fn add_field(m: &mut Message, keys: &AuthKeys) -> Result<(), HbError> {
    let mut text = Vec::with_capacity(512);
    classic::auth_text(m, &mut text)?;
    let d = keys.sign(&text);
    let mut v = [0u8; 64];
    let mut i = [0u8; 20];
    let idx = msg::fmt_dec(u64::from(keys.active_index()), &mut i);
    let n = idx.len() + 1 + d.as_bytes().len();
    v[..idx.len()].copy_from_slice(idx);
    v[idx.len()] = b' ';
    v[idx.len() + 1..n].copy_from_slice(d.as_bytes());
    m.set(FT_STRING, msg::f::AUTH, &v[..n])
}

/// Checks the `auth` field of `m` (heartbeat's `isauthentic`); returns the key index.
pub fn verify_field(m: &Message, keys: &AuthKeys) -> Result<u32, HbError> {
    let (index, digest) = m.auth().ok_or(HbError::NoAuth)?;
    let mut text = Vec::with_capacity(512);
    classic::auth_text(m, &mut text)?;
    keys.verify(index, &text, digest)?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_reference_table_and_does_not_pad() {
        assert_eq!(CRC_TABLE[1], 0x04C1_1DB7);
        assert_eq!(CRC_TABLE[2], 0x0982_3B6E);
        assert_eq!(CRC_TABLE[255], 0xB1F7_40B4);
        // POSIX cksum of "123456789" appends the length; without it (our rule) the
        // un-inverted register is the CRC-32/MPEG-2-like value with init 0.
        assert_eq!(!hb_crc(b""), 0);
        let k = AuthKeys::single(1, Method::Crc, b"").unwrap();
        let d = Digest::from_crc(0x0abc_def0);
        assert_eq!(d.as_str(), "abcdef0");
        assert_eq!(k.sign(b"").as_str(), "ffffffff");
    }

    #[test]
    fn hmac_known_answers() {
        // RFC 2202 test case 2.
        let k = AuthKeys::single(1, Method::Sha1, b"Jefe").unwrap();
        assert_eq!(k.sign(b"what do ya want for nothing?").as_str(), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        let k = AuthKeys::single(1, Method::Md5, b"Jefe").unwrap();
        assert_eq!(k.sign(b"what do ya want for nothing?").as_str(), "750c783e6ab0b503eaa86e310a5db738");
        assert!(k.verify(1, b"what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738").is_ok());
        assert_eq!(
            k.verify(1, b"what do ya want for nothing!", "750c783e6ab0b503eaa86e310a5db738"),
            Err(HbError::BadAuth)
        );
        assert_eq!(k.verify(1, b"x", "750C783E"), Err(HbError::BadAuth));
        assert_eq!(k.verify(2, b"x", "00"), Err(HbError::UnknownKeyIndex(2)));
    }

    #[test]
    fn authkeys_like_heartbeat() {
        let k = AuthKeys::parse(b"# comment\n\nauth 1\n1 sha1 tandemfixturekey\n").unwrap();
        assert_eq!(k.active_index(), 1);
        assert_eq!(k.method(1), Some(Method::Sha1));
        let k = AuthKeys::parse(b"auth 2\n  1 md5 a extra words\n2 crc\n").unwrap();
        assert_eq!(k.active_index(), 2);
        assert_eq!(k.method(1), Some(Method::Md5));
        assert!(AuthKeys::parse(b"auth3\n3 crc\n").is_ok(), "sscanf's \"auth %d\" needs no blank");
        let cases: &[(&[u8], usize)] = &[
            (b"1 sha1 k\nauth 1\n", 2),
            (b"auth 1\n", 1),
            (b"1 sha1 k\n", 1),
            (b"auth 1\n1 crc key\n", 2),
            (b"auth 1\n1 sha1\n", 2),
            (b"auth 1\n1 SHA1 k\n", 2),
            (b"auth 1\n16 crc\n", 2),
            (b"auth 1\n-1 crc\n", 2),
            (b"auth 1\n1\n", 2),
            (b"auth 1\nx crc\n", 2),
            (b"authx\n1 crc\n", 1),
            (b"auth 1\n1 crc\nbogus\n", 3),
        ];
        for (text, line) in cases {
            match AuthKeys::parse(text) {
                Err(HbError::AuthKeys { line: l, .. }) => {
                    assert!(l >= *line, "{:?}: line {l}", String::from_utf8_lossy(text))
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
            }
        }
    }

    #[test]
    fn permission_rule() {
        assert!(AuthKeys::check_mode(0o100600).is_ok());
        assert!(AuthKeys::check_mode(0o100400).is_ok());
        assert!(AuthKeys::check_mode(0o100620).is_ok(), "heartbeat only looks at the read bits");
        assert_eq!(AuthKeys::check_mode(0o100640), Err(HbError::AuthKeysMode(0o100640)));
        assert!(AuthKeys::check_mode(0o100604).is_err());
    }

    #[test]
    fn auth_field_goes_last_and_is_replaced_in_place() {
        let k = AuthKeys::single(1, Method::Sha1, b"tandemfixturekey").unwrap();
        let mut m = Message::new();
        m.add("t", "status").unwrap();
        m.add("src", "hn1").unwrap();
        add_field(&mut m, &k).unwrap();
        assert_eq!(m.field(2).map(|f| f.name), Some(&b"auth"[..]));
        assert_eq!(verify_field(&m, &k), Ok(1));
        m.add("ttl", "3").unwrap();
        assert_eq!(verify_field(&m, &k), Err(HbError::BadAuth));
        add_field(&mut m, &k).unwrap();
        assert_eq!(m.field(2).map(|f| f.name), Some(&b"auth"[..]));
        assert_eq!(verify_field(&m, &k), Ok(1));
        let wrong = AuthKeys::single(1, Method::Sha1, b"wrong").unwrap();
        assert_eq!(verify_field(&m, &wrong), Err(HbError::BadAuth));
    }
}
