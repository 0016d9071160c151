//! RMCP / IPMI session framing and IPMI LAN messages: zero-copy views of what a BMC sends,
//! builders for what we send.
//!
//! Every datagram starts with the 4-byte RMCP header (version 6, reserved, sequence 0xFF
//! = no RMCP ACK, class 7 = IPMI). Then one of two session headers:
//!
//! IPMI v1.5 (only before a session exists, for Get Channel Authentication Capabilities):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 4 | 1 | authentication type (0 = none) |
//! | 5 | 4 | session sequence number (LE) |
//! | 9 | 4 | session id (LE) |
//! | 13 | 1 | message length |
//! | 14 | n | IPMI message |
//!
//! IPMI v2.0 / RMCP+:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 4 | 1 | authentication type (6 = RMCP+) |
//! | 5 | 1 | payload type: bit 7 encrypted, bit 6 authenticated, bits 5:0 type |
//! | 6 | 4 | session id (LE; the receiver's id) |
//! | 10 | 4 | session sequence number (LE) |
//! | 14 | 2 | payload length (LE) |
//! | 16 | n | payload (when encrypted: 16-byte IV + AES-CBC ciphertext) |
//! | 16+n | p | integrity pad (0xFF), so that offsets 4 .. next header are a multiple of 4 |
//! | | 1 | pad length |
//! | | 1 | next header (7) |
//! | | 12/16 | AuthCode: HMAC-SHA1-96 / HMAC-SHA256-128 over offsets 4 .. next header |
//!
//! The trailer exists only when the authenticated bit is set.
//!
//! [`Packet::new_checked`] validates the RMCP header, the authentication type and the
//! declared lengths; afterwards no accessor can go out of bounds (accessors never index:
//! on an unchecked buffer they return zeros or empty slices).

use core::fmt;

/// RMCP header for IPMI messages: version 6, reserved, no RMCP ACK, class IPMI.
pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xff, 0x07];
/// Authentication type "none" (IPMI v1.5 framing, pre-session).
pub const AUTH_NONE: u8 = 0x00;
/// Authentication type "RMCP+" (IPMI v2.0 framing).
pub const AUTH_RMCPP: u8 = 0x06;
/// Next-header byte in the integrity trailer.
pub const NEXT_HEADER: u8 = 0x07;
/// The remote console's software id, as requester address in IPMI messages.
pub const CONSOLE_SWID: u8 = 0x81;
/// The BMC's slave address.
pub const BMC_SA: u8 = 0x20;

/// Payload types (bits 5:0 of the payload type byte).
pub mod payload {
    pub const IPMI: u8 = 0x00;
    pub const OEM: u8 = 0x02;
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    pub const RAKP1: u8 = 0x12;
    pub const RAKP2: u8 = 0x13;
    pub const RAKP3: u8 = 0x14;
    pub const RAKP4: u8 = 0x15;
    /// Bit 7 of the payload type byte.
    pub const ENCRYPTED: u8 = 0x80;
    /// Bit 6 of the payload type byte.
    pub const AUTHENTICATED: u8 = 0x40;
}

/// Network functions (requests; the response's is one more).
pub mod netfn {
    pub const CHASSIS: u8 = 0x00;
    pub const APP: u8 = 0x06;
}

/// Commands.
pub mod cmd {
    /// Chassis: Get Chassis Status.
    pub const GET_CHASSIS_STATUS: u8 = 0x01;
    /// Chassis: Chassis Control.
    pub const CHASSIS_CONTROL: u8 = 0x02;
    /// App: Get Channel Authentication Capabilities.
    pub const GET_CHANNEL_AUTH_CAPS: u8 = 0x38;
    /// App: Set Session Privilege Level.
    pub const SET_SESSION_PRIVILEGE: u8 = 0x3b;
    /// App: Close Session.
    pub const CLOSE_SESSION: u8 = 0x3c;
}

/// Outside bytes that do not parse: what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) fn le16(d: &[u8], at: usize) -> u16 {
    match d.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    }
}

pub(crate) fn le32(d: &[u8], at: usize) -> u32 {
    match d.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, e]) => u32::from_le_bytes([a, b, c, e]),
        _ => 0,
    }
}

pub(crate) fn byte(d: &[u8], at: usize) -> u8 {
    d.get(at).copied().unwrap_or(0)
}

pub(crate) fn slice(d: &[u8], from: usize, to: usize) -> &[u8] {
    d.get(from..to).unwrap_or(&[])
}

pub(crate) fn array16(d: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    if let Some(s) = d.get(at..at.saturating_add(16)) {
        a.copy_from_slice(s);
    }
    a
}

/// Field offsets of the session headers.
pub mod field {
    pub const AUTH_TYPE: usize = 4;
    // v1.5
    pub const V15_SEQ: usize = 5;
    pub const V15_SID: usize = 9;
    pub const V15_LEN: usize = 13;
    pub const V15_MSG: usize = 14;
    // v2.0
    pub const PAYLOAD_TYPE: usize = 5;
    pub const SID: usize = 6;
    pub const SEQ: usize = 10;
    pub const LEN: usize = 14;
    pub const PAYLOAD: usize = 16;
}

/// A view of one datagram from a BMC.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>, Malformed> {
        let p = Packet::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// RMCP header, authentication type (none or RMCP+), declared lengths within the buffer.
    pub fn check(&self) -> Result<(), Malformed> {
        let d = self.buffer.as_ref();
        if d.len() < field::AUTH_TYPE + 1 {
            return Err(Malformed("shorter than an RMCP header"));
        }
        match d.get(..4) {
            Some(&[0x06, _, _, 0x07]) => {}
            Some(&[0x06, _, _, 0x06]) => return Err(Malformed("an RMCP ASF message, not IPMI")),
            _ => return Err(Malformed("not an RMCP IPMI message")),
        }
        match self.auth_type() {
            AUTH_NONE => {
                if d.len() < field::V15_MSG {
                    return Err(Malformed("IPMI v1.5 session header truncated"));
                }
                if d.len() < field::V15_MSG + usize::from(byte(d, field::V15_LEN)) {
                    return Err(Malformed("IPMI v1.5 message truncated"));
                }
            }
            AUTH_RMCPP => {
                if d.len() < field::PAYLOAD {
                    return Err(Malformed("RMCP+ session header truncated"));
                }
                if self.payload_type() == payload::OEM {
                    return Err(Malformed("OEM explicit payload"));
                }
                if d.len() < field::PAYLOAD + usize::from(le16(d, field::LEN)) {
                    return Err(Malformed("RMCP+ payload truncated"));
                }
            }
            _ => return Err(Malformed("IPMI v1.5 authenticated session (not RMCP+)")),
        }
        Ok(())
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn auth_type(&self) -> u8 {
        byte(self.buffer.as_ref(), field::AUTH_TYPE)
    }

    pub fn is_v2(&self) -> bool {
        self.auth_type() == AUTH_RMCPP
    }

    /// Payload type without the encrypted/authenticated bits (v2.0; IPMI for v1.5).
    pub fn payload_type(&self) -> u8 {
        if self.is_v2() {
            byte(self.buffer.as_ref(), field::PAYLOAD_TYPE) & 0x3f
        } else {
            payload::IPMI
        }
    }

    pub fn encrypted(&self) -> bool {
        self.is_v2() && byte(self.buffer.as_ref(), field::PAYLOAD_TYPE) & payload::ENCRYPTED != 0
    }

    pub fn authenticated(&self) -> bool {
        self.is_v2() && byte(self.buffer.as_ref(), field::PAYLOAD_TYPE) & payload::AUTHENTICATED != 0
    }

    pub fn session_id(&self) -> u32 {
        let d = self.buffer.as_ref();
        if self.is_v2() {
            le32(d, field::SID)
        } else {
            le32(d, field::V15_SID)
        }
    }

    pub fn session_seq(&self) -> u32 {
        let d = self.buffer.as_ref();
        if self.is_v2() {
            le32(d, field::SEQ)
        } else {
            le32(d, field::V15_SEQ)
        }
    }

    /// Where the payload lies in the buffer: (start, end).
    pub fn payload_range(&self) -> (usize, usize) {
        let d = self.buffer.as_ref();
        if self.is_v2() {
            (field::PAYLOAD, field::PAYLOAD + usize::from(le16(d, field::LEN)))
        } else {
            (field::V15_MSG, field::V15_MSG + usize::from(byte(d, field::V15_LEN)))
        }
    }

    /// The payload as sent (ciphertext with its IV when encrypted).
    pub fn payload(&self) -> &[u8] {
        let (a, b) = self.payload_range();
        slice(self.buffer.as_ref(), a, b)
    }

    /// Everything after the payload: integrity pad, pad length, next header, AuthCode.
    pub fn trailer(&self) -> &[u8] {
        let (_, b) = self.payload_range();
        let d = self.buffer.as_ref();
        d.get(b..).unwrap_or(&[])
    }
}

/// Builds a v1.5 pre-session datagram (authentication type none, session 0) around `msg`.
pub fn emit_v15(msg: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    let len = u8::try_from(msg.len()).map_err(|_| Malformed("IPMI message longer than 255 bytes"))?;
    out.clear();
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_NONE);
    out.extend_from_slice(&[0; 8]); // sequence, session id
    out.push(len);
    out.extend_from_slice(msg);
    Ok(())
}

/// Builds an unauthenticated, unencrypted v2.0 datagram (session setup messages).
pub fn emit_v2_plain(payload_type: u8, sid: u32, seq: u32, body: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    let len = u16::try_from(body.len()).map_err(|_| Malformed("payload too long"))?;
    out.clear();
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_RMCPP);
    out.push(payload_type & 0x3f);
    out.extend_from_slice(&sid.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Two's-complement checksum: the byte that makes `data` plus it sum to zero.
pub fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |a, b| a.wrapping_add(*b)).wrapping_neg()
}

/// An IPMI request from the remote console (software id 0x81) to the BMC (0x20), LUN 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub netfn: u8,
    pub cmd: u8,
    /// 6-bit request sequence number; matches the response to the request.
    pub rq_seq: u8,
    pub data: &'a [u8],
}

impl Request<'_> {
    pub fn buffer_len(&self) -> usize {
        7 + self.data.len()
    }

    /// Appends the message: rsSA, netFn/rsLUN, checksum, rqSA, rqSeq/rqLUN, cmd, data, checksum.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(BMC_SA);
        out.push(self.netfn << 2);
        out.push(checksum(&[BMC_SA, self.netfn << 2]));
        out.push(CONSOLE_SWID);
        out.push((self.rq_seq & 0x3f) << 2);
        out.push(self.cmd);
        out.extend_from_slice(self.data);
        let sum = checksum(out.get(start + 3..).unwrap_or(&[]));
        out.push(sum);
    }
}

/// A view of an IPMI response message: rqSA, netFn/rqLUN, checksum, rsSA, rqSeq/rsLUN, cmd,
/// completion code, data, checksum.
#[derive(Debug, Clone)]
pub struct Response<T: AsRef<[u8]>> {
    buffer: T,
}

/// Shortest response: six header bytes, completion code, checksum.
pub const RESPONSE_MIN_LEN: usize = 8;

impl<T: AsRef<[u8]>> Response<T> {
    pub const fn new_unchecked(buffer: T) -> Response<T> {
        Response { buffer }
    }

    /// Length and both checksums.
    pub fn new_checked(buffer: T) -> Result<Response<T>, Malformed> {
        let d = buffer.as_ref();
        if d.len() < RESPONSE_MIN_LEN {
            return Err(Malformed("IPMI response shorter than 8 bytes"));
        }
        if checksum(slice(d, 0, 3)) != 0 {
            return Err(Malformed("IPMI response header checksum"));
        }
        if checksum(d.get(3..).unwrap_or(&[])) != 0 {
            return Err(Malformed("IPMI response data checksum"));
        }
        Ok(Response { buffer })
    }

    pub fn rq_addr(&self) -> u8 {
        byte(self.buffer.as_ref(), 0)
    }
    pub fn netfn(&self) -> u8 {
        byte(self.buffer.as_ref(), 1) >> 2
    }
    pub fn rs_addr(&self) -> u8 {
        byte(self.buffer.as_ref(), 3)
    }
    pub fn rq_seq(&self) -> u8 {
        byte(self.buffer.as_ref(), 4) >> 2
    }
    pub fn cmd(&self) -> u8 {
        byte(self.buffer.as_ref(), 5)
    }
    pub fn completion_code(&self) -> u8 {
        byte(self.buffer.as_ref(), 6)
    }
    /// Response data after the completion code, without the trailing checksum.
    pub fn data(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        slice(d, 7, d.len().saturating_sub(1))
    }

    /// True when this answers `req` (netFn + 1, same command and sequence number).
    pub fn answers(&self, req: &Request<'_>) -> bool {
        self.netfn() == req.netfn | 1 && self.cmd() == req.cmd && self.rq_seq() == req.rq_seq & 0x3f
    }
}

/// What a completion code means (IPMI v2.0 table 5-2).
pub fn completion_code_text(cc: u8) -> &'static str {
    match cc {
        0x00 => "success",
        0xc0 => "node busy",
        0xc1 => "invalid command",
        0xc2 => "command invalid for given LUN",
        0xc3 => "timeout while processing command",
        0xc4 => "out of space",
        0xc5 => "reservation cancelled or invalid",
        0xc6 => "request data truncated",
        0xc7 => "request data length invalid",
        0xc8 => "request data field length limit exceeded",
        0xc9 => "parameter out of range",
        0xca => "cannot return number of requested data bytes",
        0xcb => "requested sensor, data, or record not present",
        0xcc => "invalid data field in request",
        0xcd => "command illegal for specified sensor or record type",
        0xce => "command response could not be provided",
        0xcf => "cannot execute duplicated request",
        0xd0 => "SDR repository in update mode",
        0xd1 => "device in firmware update mode",
        0xd2 => "BMC initialization in progress",
        0xd3 => "destination unavailable",
        0xd4 => "insufficient privilege level",
        0xd5 => "command not supported in present state",
        0xd6 => "command sub-function disabled or unavailable",
        0xff => "unspecified error",
        0x01..=0x7e => "device-specific (OEM) code",
        0x80..=0xbe => "command-specific code",
        _ => "unknown code",
    }
}

/// What an RMCP+ status code means (IPMI v2.0 table 13-15).
pub fn rmcpp_status_text(status: u8) -> &'static str {
    match status {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session id",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session id",
        0x09 => "invalid role",
        0x0a => "unauthorized role or privilege level requested",
        0x0b => "insufficient resources to create a session at the requested role",
        0x0c => "invalid name length",
        0x0d => "unauthorized name",
        0x0e => "unauthorized GUID",
        0x0f => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

/// Get Channel Authentication Capabilities response data (after the completion code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCaps {
    pub channel: u8,
    /// Byte 2: bit 7 = IPMI v2.0 extended data present, bits 5:0 = v1.5 auth types.
    pub auth_types: u8,
    /// Byte 3: KG status, per-message auth, user-level auth, anonymous/null/non-null logins.
    pub flags: u8,
    /// Byte 4: bit 1 = IPMI v2.0 (RMCP+) supported, bit 0 = IPMI v1.5 supported.
    pub ext: u8,
}

impl AuthCaps {
    pub fn parse(data: &[u8]) -> Result<AuthCaps, Malformed> {
        if data.len() < 4 {
            return Err(Malformed("authentication capabilities truncated"));
        }
        Ok(AuthCaps { channel: byte(data, 0), auth_types: byte(data, 1), flags: byte(data, 2), ext: byte(data, 3) })
    }

    /// Whether the BMC speaks IPMI v2.0 / RMCP+ on this channel.
    pub fn rmcp_plus(&self) -> bool {
        self.auth_types & 0x80 != 0 && self.ext & 0x02 != 0
    }

    /// Bit 5 of byte 3: a non-zero BMC key (KG) is configured.
    pub fn kg_set(&self) -> bool {
        self.flags & 0x20 != 0
    }
}

/// Get Chassis Status data: byte 1 bit 0 = power is on.
pub fn parse_chassis_power(data: &[u8]) -> Result<bool, Malformed> {
    match data.first() {
        Some(b) => Ok(b & 1 != 0),
        None => Err(Malformed("chassis status without the power state byte")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    #[test]
    fn checksum_matches_capture() {
        // ipmitool's Get Channel Authentication Capabilities request: 20 18 c8 81 00 38 8e 04 b5
        assert_eq!(checksum(&[0x20, 0x18]), 0xc8);
        assert_eq!(checksum(&hex("8100388e04")), 0xb5);
    }

    #[test]
    fn request_emit_matches_ipmitool() {
        let mut out = Vec::new();
        Request { netfn: netfn::APP, cmd: cmd::GET_CHANNEL_AUTH_CAPS, rq_seq: 0, data: &[0x8e, 0x04] }.emit(&mut out);
        assert_eq!(out, hex("2018c88100388e04b5"));
        let mut dgram = Vec::new();
        emit_v15(&out, &mut dgram).unwrap();
        assert_eq!(dgram, hex("0600ff07000000000000000000092018c88100388e04b5"));
    }

    #[test]
    fn auth_caps_response_from_ipmi_sim() {
        let d = hex("0600ff0700000000000000000010811c6320003800019704030000000009");
        let p = Packet::new_checked(&d[..]).unwrap();
        assert!(!p.is_v2());
        assert_eq!((p.session_id(), p.session_seq(), p.payload_type()), (0, 0, payload::IPMI));
        let r = Response::new_checked(p.payload()).unwrap();
        assert_eq!((r.rq_addr(), r.netfn(), r.rs_addr(), r.cmd(), r.completion_code()), (0x81, 7, 0x20, 0x38, 0));
        let req = Request { netfn: netfn::APP, cmd: cmd::GET_CHANNEL_AUTH_CAPS, rq_seq: 0, data: &[] };
        assert!(r.answers(&req));
        assert!(!r.answers(&Request { rq_seq: 1, ..req }));
        let caps = AuthCaps::parse(r.data()).unwrap();
        assert_eq!(caps, AuthCaps { channel: 1, auth_types: 0x97, flags: 0x04, ext: 0x03 });
        assert!(caps.rmcp_plus());
        assert!(!caps.kg_set());
    }

    #[test]
    fn v2_header_fields() {
        // ipmi_sim's Open Session Response
        let d = hex(
            "0600ff0706110000000000000000240000000000a4a3a2a002000000000000080100000001000008010000000200000801000000",
        );
        let p = Packet::new_checked(&d[..]).unwrap();
        assert!(p.is_v2() && !p.encrypted() && !p.authenticated());
        assert_eq!(p.payload_type(), payload::OPEN_SESSION_RESPONSE);
        assert_eq!(p.payload().len(), 36);
        assert!(p.trailer().is_empty());
        // encrypted + authenticated
        let d = hex("0600ff0706c0a4a3a2a001000000200052117294bb57ba253a2b8ac5a0f0d8bd89f403b23d680b3b95bc42064ad4d106ffff0207c35d11b8c533b15f993c84d9");
        let p = Packet::new_checked(&d[..]).unwrap();
        assert!(p.encrypted() && p.authenticated());
        assert_eq!((p.session_id(), p.session_seq(), p.payload().len()), (0xa0a2a3a4, 1, 32));
        assert_eq!(p.trailer(), &hex("ffff0207c35d11b8c533b15f993c84d9")[..]);
    }

    #[test]
    fn bad_packets_are_refused() {
        for (bytes, what) in [
            ("", "shorter than an RMCP header"),
            ("0600ff07", "shorter than an RMCP header"),
            ("0600ff0600", "an RMCP ASF message, not IPMI"),
            ("0700ff0700", "not an RMCP IPMI message"),
            ("0600ff0702", "IPMI v1.5 authenticated session (not RMCP+)"),
            ("0600ff07000000000000000000", "IPMI v1.5 session header truncated"),
            ("0600ff07000000000000000000030102", "IPMI v1.5 message truncated"),
            ("0600ff070611000000000000000024", "RMCP+ session header truncated"),
            ("0600ff07061100000000000000000100", "RMCP+ payload truncated"),
            ("0600ff07060200000000000000000000", "OEM explicit payload"),
        ] {
            assert_eq!(Packet::new_checked(hex(bytes)).unwrap_err(), Malformed(what), "{bytes}");
        }
        // Unchecked views never panic.
        let p = Packet::new_unchecked(&[0x06u8, 0, 0xff, 0x07, 0x06, 0xc0][..]);
        assert_eq!((p.session_id(), p.session_seq(), p.payload(), p.trailer()), (0, 0, &[][..], &[][..]));
    }

    #[test]
    fn bad_responses_are_refused() {
        assert!(Response::new_checked(&hex("811c632000")[..]).is_err());
        assert_eq!(
            Response::new_checked(&hex("811c6420003800019704030000000009")[..]).unwrap_err(),
            Malformed("IPMI response header checksum")
        );
        assert_eq!(
            Response::new_checked(&hex("811c6320003800019704030000000008")[..]).unwrap_err(),
            Malformed("IPMI response data checksum")
        );
        let r = Response::new_unchecked(&[][..]);
        assert_eq!((r.cmd(), r.data()), (0, &[][..]));
    }

    #[test]
    fn code_texts() {
        assert_eq!(completion_code_text(0xd4), "insufficient privilege level");
        assert_eq!(completion_code_text(0x81), "command-specific code");
        assert_eq!(rmcpp_status_text(0x0d), "unauthorized name");
        assert_eq!(rmcpp_status_text(0x99), "unknown status");
    }
}
