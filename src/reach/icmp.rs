//! ICMP echo (IPv4) and ICMPv6 echo: the requests tandem sends to its ping targets and the
//! replies it reads back. Pure: bytes in, bytes out.
//!
//! A raw IPv4 ICMP socket hands over the whole IP datagram (header included); a raw ICMPv6
//! socket hands over the ICMPv6 message only, and the kernel computes and checks the ICMPv6
//! checksum (it needs the pseudo-header). Every request carries an 8-byte payload: a magic
//! word and the target's index, so a reply is matched to its target even when the reply's
//! source is another address of the same host.

/// ICMP types.
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// Marks tandem's echoes ("tdm" + version).
const MAGIC: [u8; 4] = *b"tdm1";
/// Header (8) + payload (8).
pub const ECHO_LEN: usize = 16;

/// The parts of an echo that tandem reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    pub ident: u16,
    pub seq: u16,
    /// The target index the request was sent for.
    pub target: u16,
}

/// RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request for `e`. `v6`: ICMPv6 (the kernel fills in the checksum).
pub fn request(e: Echo, v6: bool) -> [u8; ECHO_LEN] {
    let mut b = [0u8; ECHO_LEN];
    b[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    b[4..6].copy_from_slice(&e.ident.to_be_bytes());
    b[6..8].copy_from_slice(&e.seq.to_be_bytes());
    b[8..12].copy_from_slice(&MAGIC);
    b[12..14].copy_from_slice(&e.target.to_be_bytes());
    if !v6 {
        let c = checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
    }
    b
}

/// Reads an echo reply to one of our requests from what a raw socket returned: for IPv4 the
/// whole datagram, for IPv6 the ICMPv6 message. `None` for anything else (other ICMP
/// types, other programs' echoes, truncated or corrupt packets).
pub fn parse_reply(packet: &[u8], v6: bool) -> Option<Echo> {
    let icmp = if v6 {
        packet
    } else {
        let first = *packet.first()?;
        if first >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
        let end = total.min(packet.len());
        let icmp = packet.get(ihl..end)?;
        if checksum(icmp) != 0 {
            return None;
        }
        icmp
    };
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    if icmp.len() < ECHO_LEN || icmp[0] != want || icmp[1] != 0 || icmp.get(8..12)? != MAGIC {
        return None;
    }
    Some(Echo {
        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        target: u16::from_be_bytes([icmp[12], icmp[13]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps an ICMP message in a minimal IPv4 header, as a raw socket returns it.
    fn ipv4(icmp: &[u8]) -> Vec<u8> {
        let total = (20 + icmp.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 9, 192, 0, 2, 1];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(icmp);
        p
    }

    /// A reply as a host makes it from a request: type changed, checksum redone (v4).
    fn answer(req: &[u8; ECHO_LEN], v6: bool) -> Vec<u8> {
        let mut r = req.to_vec();
        r[0] = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
        r[2] = 0;
        r[3] = 0;
        if !v6 {
            let c = checksum(&r);
            r[2..4].copy_from_slice(&c.to_be_bytes());
        }
        r
    }

    #[test]
    fn request_bytes_and_checksum() {
        let e = Echo { ident: 0x1234, seq: 7, target: 2 };
        let r = request(e, false);
        assert_eq!(r[..2], [8, 0]);
        assert_eq!(checksum(&r), 0, "a valid checksum sums to zero");
        assert_eq!(&r[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&r[8..14], b"tdm1\x00\x02");
        let r6 = request(e, true);
        assert_eq!(r6[..4], [128, 0, 0, 0], "the kernel computes ICMPv6 checksums");
        // RFC 1071's example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn replies_are_read_back_and_others_refused() {
        let e = Echo { ident: 0xbeef, seq: 65535, target: 3 };
        let v4 = ipv4(&answer(&request(e, false), false));
        assert_eq!(parse_reply(&v4, false), Some(e));
        assert_eq!(parse_reply(&answer(&request(e, true), true), true), Some(e));
        // Our own request (a raw socket sees those too), a corrupt checksum, someone else's
        // echo, truncation, a non-IPv4 header.
        assert_eq!(parse_reply(&ipv4(&request(e, false)), false), None);
        let mut bad = v4.clone();
        bad[30] ^= 1;
        assert_eq!(parse_reply(&bad, false), None);
        let mut other = answer(&request(e, false), false);
        other[8..12].copy_from_slice(b"ping");
        other[2] = 0;
        other[3] = 0;
        let c = checksum(&other);
        other[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_reply(&ipv4(&other), false), None);
        for n in 0..v4.len() {
            assert_eq!(parse_reply(&v4[..n], false), None, "truncated to {n}");
        }
        assert_eq!(parse_reply(&[0x65; 40], false), None);
        assert_eq!(parse_reply(&[], true), None);
    }
}
