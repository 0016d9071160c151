//! The classic text form (cluster-glue's `msg2string`): what heartbeat writes on serial
//! lines, and what a UDP receiver also accepts.
//!
//! ```text
//! ">>>\n" { [ "(" T ")" ] NAME "=" TEXT "\n" }* "<<<\n"
//! ```
//!
//! String fields (type 0) carry no prefix and their newlines become byte 0x13; binary fields
//! (type 1) are standard base64 with `=` padding. The `auth=INDEX DIGEST` field is one of the
//! lines (heartbeat puts it last); its digest covers the same text without the `>>>`/`<<<`
//! lines and without the `auth` line ([`auth_text`]).
//!
//! [`Deframer`] cuts a serial byte stream into frames, resynchronising on garbage.

use super::msg::{self, Message, FT_BINARY, FT_STRING};
use super::{Framing, HbError, MAX_FRAME};

pub const START: &[u8] = b">>>\n";
pub const END: &[u8] = b"<<<\n";

/// heartbeat's stand-in for a newline inside a string value.
pub const NL_SYMBOL: u8 = 0x13;

/// Decodes exactly one frame `>>>\n … <<<\n` (nothing before or after). The `auth` field is
/// kept as a field; see [`super::auth::verify_field`].
pub fn decode(buf: &[u8]) -> Result<Message, HbError> {
    if buf.len() > MAX_FRAME {
        return Err(HbError::TooLarge);
    }
    let body =
        buf.strip_prefix(START).and_then(|b| b.strip_suffix(END)).ok_or(HbError::Malformed("not >>>\\n … <<<\\n"))?;
    let mut m = Message::with_capacity(buf.len(), 16);
    if body.is_empty() {
        return Ok(m);
    }
    let body = body.strip_suffix(b"\n").ok_or(HbError::Malformed("last field line without newline"))?;
    for line in body.split(|&c| c == b'\n') {
        decode_line(&mut m, line)?;
    }
    Ok(m)
}

fn decode_line(m: &mut Message, line: &[u8]) -> Result<(), HbError> {
    let (ftype, nv) = match line {
        [b'(', d @ b'1'..=b'9', b')', rest @ ..] => (d - b'0', rest),
        [b'(', ..] => return Err(HbError::Malformed("bad (T) type prefix")),
        _ => (FT_STRING, line),
    };
    let eq = nv.iter().position(|&c| c == b'=').ok_or(HbError::Malformed("line without '='"))?;
    let (name, text) = (&nv[..eq], &nv[eq + 1..]);
    if !msg::valid_name(name) {
        return Err(HbError::Malformed("bad field name"));
    }
    match ftype {
        FT_STRING => {
            if text.contains(&0) {
                return Err(HbError::Malformed("NUL in a string field"));
            }
            msg::push_with(m, ftype, name, |out| {
                out.extend(text.iter().map(|&c| if c == NL_SYMBOL { b'\n' } else { c }));
                Ok(())
            })
        }
        FT_BINARY => msg::push_with(m, ftype, name, |out| msg::base64_decode(text, out)),
        _ => {
            msg::set_opaque_origin(m, Framing::Classic);
            msg::push_raw(m, ftype, name, text)
        }
    }
}

/// Appends the text of one field (`[(T)]NAME=TEXT\n`). `strict`: refuse values that would
/// not decode back to themselves (a string holding byte 0x13); heartbeat itself writes them
/// unchanged, which is what the digest must cover.
fn encode_field(fl: msg::Field<'_>, strict: bool, out: &mut Vec<u8>) -> Result<(), HbError> {
    if fl.ftype != FT_STRING {
        if fl.ftype > 9 {
            return Err(HbError::Unrepresentable("field type above 9"));
        }
        out.extend_from_slice(&[b'(', b'0' + fl.ftype, b')']);
    }
    out.extend_from_slice(fl.name);
    out.push(b'=');
    match fl.ftype {
        FT_STRING => {
            if strict && fl.value.contains(&NL_SYMBOL) {
                return Err(HbError::Unrepresentable("byte 0x13 in a string field"));
            }
            out.extend(fl.value.iter().map(|&c| if c == b'\n' { NL_SYMBOL } else { c }));
        }
        FT_BINARY => msg::base64_encode(fl.value, out),
        _ => {
            if fl.value.contains(&b'\n') {
                return Err(HbError::Unrepresentable("newline in an opaque field"));
            }
            out.extend_from_slice(fl.value);
        }
    }
    out.push(b'\n');
    Ok(())
}

fn check_opaque(m: &Message) -> Result<(), HbError> {
    if msg::opaque_origin(m) == Some(Framing::Netstring) {
        return Err(HbError::Unrepresentable("struct/list field decoded from a netstring frame"));
    }
    Ok(())
}

/// Appends the whole frame `>>>\n … <<<\n` for `m`.
pub fn encode(m: &Message, out: &mut Vec<u8>) -> Result<(), HbError> {
    check_opaque(m)?;
    let start = out.len();
    out.extend_from_slice(START);
    for fl in m.fields() {
        encode_field(fl, true, out)?;
    }
    out.extend_from_slice(END);
    if out.len() - start > MAX_FRAME {
        out.truncate(start);
        return Err(HbError::TooLarge);
    }
    Ok(())
}

/// Appends the text the `auth` field's digest covers (heartbeat's `msg2string_buf` with
/// `NOHEAD`): every field but `auth`, in order, without `>>>`/`<<<`.
pub fn auth_text(m: &Message, out: &mut Vec<u8>) -> Result<(), HbError> {
    check_opaque(m)?;
    for fl in m.fields() {
        if fl.name == msg::f::AUTH.as_bytes() {
            continue;
        }
        encode_field(fl, false, out)?;
    }
    Ok(())
}

/// Counters of a [`Deframer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeframerStats {
    /// Complete frames delivered.
    pub frames: u64,
    /// Bytes thrown away: outside any frame, or in a frame cut short.
    pub discarded: u64,
    /// Frames dropped because they grew beyond the limit.
    pub oversize: u64,
    /// Frames abandoned because a new `>>>` line started before their `<<<`.
    pub restarted: u64,
}

/// Cuts a serial byte stream into classic frames. Lines outside a frame are skipped until a
/// line that is exactly `>>>`; the frame ends at a line that is exactly `<<<`. A new `>>>` line
/// inside a frame starts over there (the sender was cut off), and a frame longer than the limit
/// is dropped. The buffer is allocated once and never grows past the limit.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    limit: usize,
    in_frame: bool,
    /// Outside a frame: the first bytes and the length of the current line.
    head: [u8; 3],
    line_len: usize,
    /// Inside a frame: where the current line starts in `buf`.
    line_start: usize,
    /// Inside a frame that overflowed: skipping to its end.
    skipping: bool,
    stats: DeframerStats,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer::new()
    }
}

impl Deframer {
    pub fn new() -> Deframer {
        Deframer::with_limit(MAX_FRAME)
    }

    /// A deframer that drops frames longer than `limit` bytes.
    pub fn with_limit(limit: usize) -> Deframer {
        let limit = limit.max(START.len() + END.len());
        Deframer {
            buf: Vec::with_capacity(limit),
            limit,
            in_frame: false,
            head: [0; 3],
            line_len: 0,
            line_start: 0,
            skipping: false,
            stats: DeframerStats::default(),
        }
    }

    pub fn stats(&self) -> DeframerStats {
        self.stats
    }

    /// Bytes held for an unfinished frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn start_frame(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(START);
        self.in_frame = true;
        self.line_start = self.buf.len();
        self.skipping = false;
    }

    /// Feeds received bytes; calls `frame` with each complete `>>>\n … <<<\n`.
    pub fn feed(&mut self, bytes: &[u8], mut frame: impl FnMut(&[u8])) {
        for &b in bytes {
            if !self.in_frame {
                if b == b'\n' {
                    if self.line_len == 3 && &self.head == b">>>" {
                        self.start_frame();
                    } else {
                        self.stats.discarded += self.line_len as u64 + 1;
                    }
                    self.line_len = 0;
                } else {
                    if let Some(h) = self.head.get_mut(self.line_len) {
                        *h = b;
                    }
                    self.line_len = self.line_len.saturating_add(1);
                }
                continue;
            }
            if self.skipping {
                // Overflowed: wait for the end (or a new start) without storing anything.
                if b == b'\n' {
                    let line = self.line_len;
                    self.line_len = 0;
                    if line == 3 && &self.head == b"<<<" {
                        self.in_frame = false;
                        self.skipping = false;
                    } else if line == 3 && &self.head == b">>>" {
                        self.start_frame();
                    }
                } else {
                    if let Some(h) = self.head.get_mut(self.line_len) {
                        *h = b;
                    }
                    self.line_len = self.line_len.saturating_add(1);
                }
                self.stats.discarded += 1;
                continue;
            }
            if self.buf.len() >= self.limit {
                // Too long: drop what we have, and skip to the end of this frame, keeping
                // track of the line in progress (it may be the end or a new start).
                self.stats.oversize += 1;
                self.stats.discarded += self.buf.len() as u64 + 1;
                let partial = self.buf.get(self.line_start..).unwrap_or(&[]);
                self.head = [0; 3];
                for (h, c) in self.head.iter_mut().zip(partial.iter()) {
                    *h = *c;
                }
                self.line_len = partial.len();
                self.buf.clear();
                self.skipping = true;
                if b == b'\n' {
                    if self.line_len == 3 && &self.head == b"<<<" {
                        self.in_frame = false;
                        self.skipping = false;
                    } else if self.line_len == 3 && &self.head == b">>>" {
                        self.start_frame();
                    }
                    self.line_len = 0;
                } else {
                    if let Some(h) = self.head.get_mut(self.line_len) {
                        *h = b;
                    }
                    self.line_len += 1;
                }
                continue;
            }
            self.buf.push(b);
            if b != b'\n' {
                continue;
            }
            let line = &self.buf[self.line_start..self.buf.len() - 1];
            if line == b"<<<" {
                self.stats.frames += 1;
                frame(&self.buf);
                self.buf.clear();
                self.in_frame = false;
                self.line_len = 0;
            } else if line == b">>>" {
                self.stats.restarted += 1;
                self.stats.discarded += self.line_start as u64;
                self.start_frame();
            } else {
                self.line_start = self.buf.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &[u8] = b">>>\nt=status\nst=init\ndt=1b58\nprotocol=1\nsrc=hn1\n(1)srcuuid=EpqhRHMjR5qNz2JlIyZebQ==\nseq=1\nhg=6b0a68d9\nts=6b0a68d8\nld=0.06 0.08 0.45 5/95 13\nttl=3\nauth=1 6862985392144fc47f806d6309d8695f37bc935f\n<<<\n";

    #[test]
    fn decodes_and_reencodes_a_captured_serial_status() {
        let m = decode(STATUS).unwrap();
        assert_eq!(m.len(), 12);
        assert_eq!(m.srcuuid().map(|u| u[0]), Some(0x12));
        assert_eq!(m.auth().map(|a| a.0), Some(1));
        let mut out = Vec::new();
        encode(&m, &mut out).unwrap();
        assert_eq!(out, STATUS);
        let mut t = Vec::new();
        auth_text(&m, &mut t).unwrap();
        assert!(t.starts_with(b"t=status\n") && t.ends_with(b"ttl=3\n"));
    }

    #[test]
    fn newlines_in_strings_become_0x13() {
        let mut m = Message::new();
        m.add("info", "two\nlines").unwrap();
        let mut out = Vec::new();
        encode(&m, &mut out).unwrap();
        assert_eq!(out, b">>>\ninfo=two\x13lines\n<<<\n");
        assert_eq!(decode(&out).unwrap(), m);
        let mut m2 = Message::new();
        m2.add("info", "a\x13b").unwrap();
        assert!(encode(&m2, &mut Vec::new()).is_err());
        let mut t = Vec::new();
        auth_text(&m2, &mut t).unwrap();
        assert_eq!(t, b"info=a\x13b\n");
    }

    #[test]
    fn refuses_what_heartbeat_never_writes() {
        let bad: &[&[u8]] = &[
            b"",
            b">>>\n",
            b">>>\nt=x\n",
            b">>>\nt=x\n<<<\nx",
            b">>>\nt=x<<<\n",
            b">>>\n\nt=x\n<<<\n",
            b">>>\n(0)t=x\n<<<\n",
            b">>>\n(1)u=abc\n<<<\n",
            b">>>\n(x)u=abc\n<<<\n",
            b">>>\n=x\n<<<\n",
            b">>>\ntx\n<<<\n",
            b">>>\nt=x\x00\n<<<\n",
        ];
        for b in bad {
            assert!(decode(b).is_err(), "{:?}", String::from_utf8_lossy(b));
        }
        assert_eq!(decode(b">>>\n<<<\n").unwrap().len(), 0);
        assert_eq!(decode(b">>>\nt=\n<<<\n").unwrap().get_str("t"), Some(""));
    }

    #[test]
    fn opaque_fields_stay_in_their_encoding() {
        let m = decode(b">>>\n(2)sub=>>>\x14t=x\x14<<<\x14\n<<<\n").unwrap();
        let mut out = Vec::new();
        encode(&m, &mut out).unwrap();
        assert_eq!(out, b">>>\n(2)sub=>>>\x14t=x\x14<<<\x14\n<<<\n");
        assert!(super::super::netstring::encode(&m, &mut Vec::new()).is_err());
    }

    fn frames(d: &mut Deframer, bytes: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for c in bytes.chunks(chunk) {
            d.feed(c, |f| v.push(f.to_vec()));
        }
        v
    }

    #[test]
    fn deframer_cuts_back_to_back_frames_in_any_chunking() {
        let mut stream = Vec::new();
        stream.extend_from_slice(STATUS);
        stream.extend_from_slice(STATUS);
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let mut d = Deframer::new();
            assert_eq!(frames(&mut d, &stream, chunk), vec![STATUS.to_vec(), STATUS.to_vec()]);
            assert_eq!(d.buffered(), 0);
            assert_eq!(d.stats().discarded, 0);
        }
    }

    #[test]
    fn deframer_resyncs_on_garbage_and_cut_frames() {
        let mut stream = b"noise\n>>>x\n<<<\n\x00\xff>>>\n>>>\nt=cut".to_vec();
        stream.extend_from_slice(b"\n");
        stream.extend_from_slice(STATUS);
        let mut d = Deframer::new();
        assert_eq!(frames(&mut d, &stream, 5), vec![STATUS.to_vec()]);
        let s = d.stats();
        assert_eq!(s.frames, 1);
        assert_eq!(s.restarted, 1);
        assert!(s.discarded > 10);
    }

    #[test]
    fn deframer_drops_oversize_frames_and_recovers() {
        let mut d = Deframer::with_limit(64);
        let mut stream = b">>>\n".to_vec();
        stream.extend(std::iter::repeat_n(b'a', 500));
        stream.extend_from_slice(b"\n<<<\n>>>\nt=x\n<<<\n");
        assert_eq!(frames(&mut d, &stream, 13), vec![b">>>\nt=x\n<<<\n".to_vec()]);
        assert_eq!(d.stats().oversize, 1);
        assert!(d.buffered() <= 64);
        // An oversize frame cut off by a new start.
        let mut stream = b">>>\n".to_vec();
        stream.extend(std::iter::repeat_n(b'a', 100));
        stream.extend_from_slice(b"\n>>>\nt=y\n<<<\n");
        assert_eq!(frames(&mut d, &stream, 1), vec![b">>>\nt=y\n<<<\n".to_vec()]);
    }
}
