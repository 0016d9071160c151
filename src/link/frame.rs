//! Serial framing: COBS with `0x00` delimiters around `length + payload + CRC-16`.
//!
//! On the line one frame is
//!
//! ```text
//! 0x00  COBS( len_hi len_lo  payload…  crc_hi crc_lo )  0x00
//! ```
//!
//! - `len` is the payload length, big-endian u16, at most [`MAX_PAYLOAD`].
//! - `crc` is CRC-16/CCITT (poly 0x1021, init 0xFFFF, no reflection; a.k.a.
//!   CRC-16/IBM-3740 or "CCITT-FALSE") over the length and payload bytes.
//! - COBS removes every `0x00` from the body, so `0x00` only ever delimits frames and a
//!   receiver that lost its place (line noise, a cut frame, inserted bytes) is back in step
//!   at the next delimiter. The leading delimiter makes a frame sent right after noise
//!   start clean; empty runs between delimiters are ignored.
//!
//! The [`Decoder`] un-stuffs COBS on the fly into one fixed buffer: it never allocates and
//! never holds more than [`MAX_INNER`] bytes, whatever arrives.

use crate::link::LinkStats;
use crate::time::Duration;

/// Largest payload (an authenticated wire packet) one frame carries.
/// The largest version-1 wire packet is 486 bytes (32 groups, 64 payload bytes).
pub const MAX_PAYLOAD: usize = 512;
/// Length field + CRC.
pub const OVERHEAD: usize = 4;
/// Largest un-stuffed frame body: length + payload + CRC.
pub const MAX_INNER: usize = MAX_PAYLOAD + OVERHEAD;
/// Largest frame on the line, delimiters included.
pub const MAX_FRAME: usize = frame_len(MAX_PAYLOAD);

const DELIM: u8 = 0x00;

/// Worst-case bytes on the line for a frame carrying `payload_len` bytes: two delimiters,
/// the 4 bytes of length and CRC, and the COBS overhead (one code byte per 254 bytes, plus one).
pub const fn frame_len(payload_len: usize) -> usize {
    let inner = payload_len + OVERHEAD;
    2 + inner + inner / 254 + 1
}

/// Bytes of one heartbeat packet carrying `n_groups` groups, at most: the wire header, the
/// group entries, the payload-length byte, every extension field and the MAC.
pub const fn heartbeat_packet_len(n_groups: usize) -> usize {
    heartbeat_packet_len_ext(n_groups, crate::wire::ext::OURS_LEN)
}

/// Bytes of one heartbeat packet carrying `n_groups` groups and `ext_len` bytes of
/// extension fields ([`crate::wire::ext::emitted_len`]).
pub const fn heartbeat_packet_len_ext(n_groups: usize, ext_len: usize) -> usize {
    crate::wire::packet::HEADER_LEN
        + crate::wire::packet::field::GROUP_LEN * n_groups
        + 1
        + ext_len
        + crate::wire::MAC_LEN
}

/// Time `bytes` take on the line at `baud` (8N1 = 10 bits per byte), rounded up to µs.
pub fn line_time(bytes: usize, baud: u32) -> Duration {
    let bits = u64::try_from(bytes).unwrap_or(u64::MAX).saturating_mul(10_000_000);
    Duration::from_micros(bits.div_ceil(u64::from(baud.max(1))))
}

/// The fastest keepalive at which one heartbeat frame for `n_groups` groups uses at most a
/// quarter of the line at `baud`, rounded up to whole milliseconds.
pub fn min_keepalive(n_groups: usize, baud: u32) -> Duration {
    min_keepalive_for(heartbeat_packet_len(n_groups), baud)
}

/// The fastest keepalive at which a frame of a `packet_len`-byte packet uses at most a
/// quarter of the line at `baud`, rounded up to whole milliseconds.
fn min_keepalive_for(packet_len: usize, baud: u32) -> Duration {
    let t = line_time(frame_len(packet_len), baud);
    let us = u64::try_from(t.as_micros()).unwrap_or(u64::MAX).saturating_mul(4);
    Duration::from_millis(us.div_ceil(1000))
}

/// What one heartbeat costs on a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineBudget {
    /// The wire packet.
    pub packet_len: usize,
    /// The framed packet, worst case.
    pub frame_len: usize,
    /// How long the frame takes on the line.
    pub line_time: Duration,
    /// The fastest keepalive at which a heartbeat takes at most a quarter of the line.
    pub min_keepalive: Duration,
}

/// The line budget of a heartbeat for `n_groups` groups with `ext_len` bytes of extension
/// fields at `baud`.
pub fn heartbeat_budget(n_groups: usize, ext_len: usize, baud: u32) -> LineBudget {
    let packet_len = heartbeat_packet_len_ext(n_groups, ext_len);
    let frame_len = frame_len(packet_len);
    LineBudget {
        packet_len,
        frame_len,
        line_time: line_time(frame_len, baud),
        min_keepalive: min_keepalive_for(packet_len, baud),
    }
}

/// Why a frame could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Payload longer than [`MAX_PAYLOAD`].
    TooLong,
    /// Output buffer shorter than [`frame_len`].
    BufferTooSmall,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::TooLong => write!(f, "packet too long for a serial frame"),
            FrameError::BufferTooSmall => write!(f, "frame buffer too small"),
        }
    }
}

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC16_TABLE: [u16; 256] = crc16_table();

/// Continues a CRC-16/CCITT (0x1021, MSB first) over `data`. Start with `0xFFFF`.
pub fn crc16_update(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        let idx = usize::from(((crc >> 8) as u8) ^ b);
        crc = (crc << 8) ^ CRC16_TABLE.get(idx).copied().unwrap_or(0);
    }
    crc
}

/// CRC-16/CCITT-FALSE of `data` (check value for `"123456789"` is 0x29B1).
pub fn crc16(data: &[u8]) -> u16 {
    crc16_update(0xFFFF, data)
}

/// A byte sink that refuses to write past the end of its buffer.
struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Out<'_> {
    fn put_at(&mut self, at: usize, b: u8) -> Result<(), FrameError> {
        *self.buf.get_mut(at).ok_or(FrameError::BufferTooSmall)? = b;
        Ok(())
    }
    fn push(&mut self, b: u8) -> Result<(), FrameError> {
        self.put_at(self.pos, b)?;
        self.pos += 1;
        Ok(())
    }
}

/// Writes one complete frame (both delimiters included) for `payload` into `out` and
/// returns its length, which is at most [`frame_len`]`(payload.len())`.
pub fn encode(payload: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameError::TooLong);
    }
    let len = u16::try_from(payload.len()).map_err(|_| FrameError::TooLong)?.to_be_bytes();
    let crc = crc16_update(crc16(&len), payload).to_be_bytes();
    let mut o = Out { buf: out, pos: 0 };
    o.push(DELIM)?;
    // COBS: `code_at` is the slot of the current block's code byte, `code` = 1 + data bytes.
    let mut code_at = o.pos;
    o.push(0)?;
    let mut code: u8 = 1;
    for &b in len.iter().chain(payload).chain(crc.iter()) {
        if b == 0 {
            o.put_at(code_at, code)?;
            code_at = o.pos;
            o.push(0)?;
            code = 1;
        } else {
            o.push(b)?;
            code += 1;
            if code == 0xFF {
                o.put_at(code_at, code)?;
                code_at = o.pos;
                o.push(0)?;
                code = 1;
            }
        }
    }
    o.put_at(code_at, code)?;
    o.push(DELIM)?;
    Ok(o.pos)
}

/// Streaming frame decoder with a fixed buffer. See the module docs for the format.
///
/// Counters (in [`LinkStats`]):
/// - `bad_crc`: a complete frame between delimiters whose length field or CRC is wrong
///   (corruption inside a frame);
/// - `resyncs`: a run of bytes that is not a COBS frame at all (line noise, inserted bytes,
///   a frame cut short), discarded up to the next delimiter;
/// - `overruns`: a frame longer than the maximum, discarded up to the next delimiter
///   without being buffered.
#[derive(Clone)]
pub struct Decoder {
    buf: [u8; MAX_INNER],
    len: usize,
    /// Data bytes left in the current COBS block (0 = the next byte is a code byte).
    left: u8,
    /// The current block's code (0 = at the start of a frame).
    code: u8,
    /// Bytes seen since the last delimiter.
    in_frame: bool,
    /// Too long: drop everything up to the next delimiter.
    overflow: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub const fn new() -> Decoder {
        Decoder { buf: [0; MAX_INNER], len: 0, left: 0, code: 0, in_frame: false, overflow: false }
    }

    /// Forgets a partial frame (e.g. after the device was reopened).
    pub fn reset(&mut self) {
        self.len = 0;
        self.left = 0;
        self.code = 0;
        self.in_frame = false;
        self.overflow = false;
    }

    fn append(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    /// Feeds line bytes; calls `on_packet` with the payload of every good frame.
    pub fn feed(&mut self, input: &[u8], stats: &mut LinkStats, on_packet: &mut dyn FnMut(&[u8])) {
        for &b in input {
            if b == DELIM {
                self.end_frame(stats, on_packet);
                continue;
            }
            self.in_frame = true;
            if self.overflow {
                continue;
            }
            if self.left == 0 {
                // A code byte. The previous block ends with an implicit zero unless it was
                // a full 0xFF block (or this is the first block).
                if self.code != 0 && self.code != 0xFF {
                    self.append(0);
                }
                self.code = b;
                self.left = b - 1;
            } else {
                self.append(b);
                self.left -= 1;
            }
        }
    }

    fn end_frame(&mut self, stats: &mut LinkStats, on_packet: &mut dyn FnMut(&[u8])) {
        if !self.in_frame {
            // Back-to-back delimiters: nothing between them.
            return;
        }
        if self.overflow {
            stats.overruns += 1;
        } else if self.left != 0 {
            // The delimiter arrived inside a COBS block: not a frame.
            stats.resyncs += 1;
        } else {
            match self.buf.get(..self.len) {
                Some(body) if self.len >= OVERHEAD => {
                    let (head, rest) = body.split_at(2);
                    let (payload, crc) = rest.split_at(rest.len() - 2);
                    let declared = usize::from(u16::from_be_bytes([head[0], head[1]]));
                    let want = u16::from_be_bytes([crc[0], crc[1]]);
                    if declared == payload.len() && crc16_update(crc16(head), payload) == want {
                        on_packet(payload);
                    } else {
                        stats.bad_crc += 1;
                    }
                }
                _ => stats.bad_crc += 1,
            }
        }
        self.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME];
        let n = encode(payload, &mut out).unwrap();
        assert!(n <= frame_len(payload.len()), "{n} > {}", frame_len(payload.len()));
        out[..n].to_vec()
    }

    fn decode_all(d: &mut Decoder, input: &[u8], stats: &mut LinkStats) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        d.feed(input, stats, &mut |p| got.push(p.to_vec()));
        got
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc16_update(crc16(b"1234"), b"56789"), 0x29B1);
    }

    #[test]
    fn fixture() {
        // len = 00 02, payload 11 00, crc16(00 02 11 00)
        let crc = crc16(&[0, 2, 0x11, 0]).to_be_bytes();
        let f = frame(&[0x11, 0x00]);
        // 0x00 | COBS(00 02 11 00 c1 c2) | 0x00 (the CRC of this input has no zero byte)
        assert!(crc[0] != 0 && crc[1] != 0);
        assert_eq!(f, vec![0, 1, 3, 0x02, 0x11, 0x03, crc[0], crc[1], 0]);
    }

    #[test]
    fn round_trip_all_sizes() {
        let mut rng = Rng::new(0x1234_5678);
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        for n in 0..=MAX_PAYLOAD {
            let mut p = rng.bytes(n);
            // plenty of zeros and 0xFF runs too
            if n % 3 == 0 {
                p.iter_mut().for_each(|b| *b = if *b < 64 { 0 } else { *b });
            }
            if n % 5 == 0 {
                p.iter_mut().for_each(|b| *b |= 1);
            }
            let got = decode_all(&mut d, &frame(&p), &mut st);
            assert_eq!(got, vec![p], "size {n}");
        }
        assert_eq!(st, LinkStats::default());
        assert_eq!(encode(&[0; MAX_PAYLOAD + 1], &mut [0; 2 * MAX_FRAME]), Err(FrameError::TooLong));
        assert_eq!(encode(&[1; 10], &mut [0; 10]), Err(FrameError::BufferTooSmall));
    }

    #[test]
    fn frame_len_is_tight_worst_case() {
        // No zeros: COBS adds one code byte per 254 data bytes.
        for n in [0, 1, 250, 251, 252, 253, 400, 486, MAX_PAYLOAD] {
            let f = frame(&vec![0xAB; n]);
            assert!(f.len() <= frame_len(n));
            assert!(f.len() + 1 >= frame_len(n), "n={n} len={} bound={}", f.len(), frame_len(n));
        }
    }

    #[test]
    fn back_to_back_and_byte_at_a_time() {
        let mut rng = Rng::new(7);
        let payloads: Vec<Vec<u8>> = (0..20).map(|i| rng.bytes(i * 23 % 300)).collect();
        let line: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        assert_eq!(decode_all(&mut d, &line, &mut st), payloads);
        let mut got = Vec::new();
        for b in &line {
            got.extend(decode_all(&mut d, std::slice::from_ref(b), &mut st));
        }
        assert_eq!(got, payloads);
        // random split points
        let mut got = Vec::new();
        let mut rest = &line[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(40) as u64) as usize;
            got.extend(decode_all(&mut d, &rest[..n], &mut st));
            rest = &rest[n..];
        }
        assert_eq!(got, payloads);
        assert_eq!(st, LinkStats::default());
    }

    #[test]
    fn garbage_before_and_between_frames() {
        let a = b"first packet".to_vec();
        let b = b"second packet".to_vec();
        let mut line = vec![0x55, 0x13, 0xFF, 0x07, 0x01];
        line.extend(frame(&a));
        line.extend([0x42, 0x42, 0x42, 0x09, 0x00, 0x03]);
        line.extend(frame(&b));
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        assert_eq!(decode_all(&mut d, &line, &mut st), vec![a, b]);
        assert!(st.resyncs + st.bad_crc >= 2, "{st:?}");
    }

    #[test]
    fn inserted_byte_breaks_one_frame_only() {
        let p: Vec<u8> = (1..=100).collect();
        let f = frame(&p);
        let mut bad = f.clone();
        bad.insert(30, 0x77);
        let mut line = bad;
        line.extend(&f);
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        assert_eq!(decode_all(&mut d, &line, &mut st), vec![p]);
        assert_eq!(st.bad_crc + st.resyncs, 1, "{st:?}");
    }

    #[test]
    fn cut_frame_then_good_one_resyncs() {
        let p: Vec<u8> = (1..=200).collect();
        let f = frame(&p);
        let mut line = f[..f.len() / 2].to_vec(); // cut: no closing delimiter
        line.extend(&f);
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        assert_eq!(decode_all(&mut d, &line, &mut st), vec![p.clone()]);
        assert_eq!(st.resyncs, 1, "{st:?}");
        assert_eq!(st.bad_crc, 0);
        // a cut right after a code byte ends "inside a block" too
        let mut line = f[..3].to_vec();
        line.extend(&f);
        assert_eq!(decode_all(&mut d, &line, &mut st), vec![p]);
        assert_eq!(st.resyncs, 2, "{st:?}");
    }

    #[test]
    fn bit_flips_count_bad_crc() {
        let p: Vec<u8> = (1..=120).collect();
        let f = frame(&p);
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        let mut flipped = 0;
        // Flip one bit in each data byte (not a code byte, never producing a zero).
        for i in 4..f.len() - 3 {
            for bit in 0..8 {
                let mut g = f.clone();
                g[i] ^= 1 << bit;
                if g[i] == 0 {
                    continue;
                }
                flipped += 1;
                let got = decode_all(&mut d, &g, &mut st);
                assert!(got.is_empty(), "flip at {i}/{bit} accepted");
            }
        }
        assert_eq!(st.bad_crc + st.resyncs, flipped);
        assert!(st.bad_crc > flipped / 2, "{st:?}");
        // and it still decodes the next good frame
        assert_eq!(decode_all(&mut d, &f, &mut st), vec![p]);
    }

    #[test]
    fn oversize_is_dropped_without_buffering() {
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        // 100 kB of non-zero bytes: a huge "frame"
        let line = vec![0x5Au8; 100_000];
        assert!(decode_all(&mut d, &line, &mut st).is_empty());
        assert!(d.len <= MAX_INNER && d.overflow);
        let p = b"after the flood".to_vec();
        assert_eq!(decode_all(&mut d, &frame(&p), &mut st), vec![p]);
        assert_eq!(st.overruns, 1, "{st:?}");
        // a well-formed COBS frame just one byte too long
        let mut big = vec![0u8; MAX_INNER + 1];
        big.iter_mut().enumerate().for_each(|(i, b)| *b = (i % 250 + 1) as u8);
        let mut out = vec![0u8; 2 * MAX_FRAME];
        let mut o = Out { buf: &mut out, pos: 0 };
        o.push(0).unwrap();
        // hand-made COBS of `big` (no zeros): blocks of 254
        for chunk in big.chunks(254) {
            o.push(chunk.len() as u8 + 1).unwrap();
            chunk.iter().for_each(|&b| o.push(b).unwrap());
        }
        o.push(0).unwrap();
        let n = o.pos;
        assert!(decode_all(&mut d, &out[..n], &mut st).is_empty());
        assert_eq!(st.overruns, 2);
    }

    #[test]
    fn length_mismatch_and_short_frames() {
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        // one data byte only: COBS ok, too short for length + CRC
        assert!(decode_all(&mut d, &[0, 2, 9, 0], &mut st).is_empty());
        assert_eq!(st.bad_crc, 1);
        // correct CRC but the length field lies
        let body = [0u8, 5, 1, 2, 3];
        let crc = crc16(&body).to_be_bytes();
        let mut inner = body.to_vec();
        inner.extend(crc);
        let mut line = vec![0u8];
        let mut code_at = line.len();
        line.push(0);
        for &b in &inner {
            if b == 0 {
                line[code_at] = (line.len() - code_at) as u8;
                code_at = line.len();
                line.push(0);
            } else {
                line.push(b);
            }
        }
        line[code_at] = (line.len() - code_at) as u8;
        line.push(0);
        assert!(decode_all(&mut d, &line, &mut st).is_empty());
        assert_eq!(st.bad_crc, 2);
    }

    /// Random line noise for a bounded time (10 s or 10^7 bytes): never panics, state stays
    /// bounded, and valid frames interleaved with the noise are still recovered.
    #[test]
    fn random_input_bounded() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        let mut d = Decoder::new();
        let mut st = LinkStats::default();
        let mut fed = 0usize;
        let mut sent = 0usize;
        let mut recovered = 0usize;
        let mut chunk = Vec::with_capacity(4096);
        while fed < 10_000_000 && std::time::Instant::now() < deadline {
            chunk.clear();
            let noise = rng.below(2000);
            for _ in 0..noise {
                // bias towards zeros and small codes so the decoder sees many "frames"
                let r = rng.next_u64();
                chunk.push(match r % 4 {
                    0 => 0,
                    1 => (r >> 8) as u8 % 8,
                    _ => (r >> 8) as u8,
                });
            }
            // a valid frame after the noise; it must come through
            let n = rng.below(MAX_PAYLOAD as u64 + 1) as usize;
            let p = rng.bytes(n);
            chunk.extend(frame(&p));
            sent += 1;
            let mut got = None;
            for part in chunk.chunks(1 + rng.below(600) as usize) {
                d.feed(part, &mut st, &mut |q| {
                    if q == &p[..] {
                        got = Some(());
                    }
                });
                assert!(d.len <= MAX_INNER);
            }
            if got.is_some() {
                recovered += 1;
            }
            fed += chunk.len();
        }
        assert!(sent > 100, "only {sent} rounds");
        assert_eq!(recovered, sent, "{st:?}");
        assert!(st.resyncs > 0 && st.bad_crc > 0, "{st:?}");
    }
}
