//! heartbeat 3.0.6's wire protocol, so that a tandem node can be one of the two nodes of a
//! running Linux-HA heartbeat cluster (rolling replacement, one node at a time).
//!
//! Layers, bottom up (`docs/heartbeat-wire.md` has the protocol itself):
//! - [`msg`]: a message is an ordered list of typed `(type, name, value)` fields; unknown
//!   fields are kept, so re-encoding gives back the same bytes.
//! - [`netstring`]: the `###\n … %%%\n` frame and its authentication trailer (UDP).
//! - [`classic`]: the `>>>\n … <<<\n` text form (serial, and accepted on UDP) and the serial
//!   stream [`classic::Deframer`].
//! - [`auth`]: `authkeys` (sha1 / md5 / crc), the two digest spans, verification.
//! - [`proto`]: a pure engine for one local node talking to one heartbeat peer: membership,
//!   reliable delivery (seq, acks, retransmission) and the haresources hand-over messages.
//!
//! Nothing here reads a clock or touches an fd, except [`auth::AuthKeys::load`].
//! Unlike tandem's own wire format, messages are variable text and the codecs allocate
//! (two vectors per message).

pub mod auth;
pub mod classic;
pub mod msg;
pub mod netstring;
pub mod proto;

use core::fmt;

pub use msg::Message;

/// Largest frame we encode or accept, in bytes. heartbeat's own limit is 256 KiB (it compresses
/// anything larger than 128 KiB); a UDP datagram holds at most 64 KiB anyway.
pub const MAX_FRAME: usize = 64 * 1024;

/// Why bytes could not be turned into a message, or a message into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HbError {
    /// The bytes are not a well-formed frame; the text says what was wrong.
    Malformed(&'static str),
    /// Larger than [`MAX_FRAME`].
    TooLarge,
    /// A field name or value that cannot be represented in this encoding.
    Unrepresentable(&'static str),
    /// No digest where one is required (netstring trailer or classic `auth` field).
    NoAuth,
    /// The digest names a key index that authkeys does not define.
    UnknownKeyIndex(u32),
    /// The digest does not match (wrong key, or changed bytes).
    BadAuth,
    /// authkeys: a line heartbeat would refuse (1-based line number).
    AuthKeys { line: usize, what: &'static str },
    /// authkeys is readable by group or others; heartbeat refuses to start.
    AuthKeysMode(u32),
    /// A system call failed (reading authkeys).
    Io { op: &'static str, errno: nix::errno::Errno },
}

impl fmt::Display for HbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HbError::Malformed(what) => write!(f, "malformed heartbeat message: {what}"),
            HbError::TooLarge => write!(f, "heartbeat message larger than {MAX_FRAME} bytes"),
            HbError::Unrepresentable(what) => write!(f, "cannot encode: {what}"),
            HbError::NoAuth => write!(f, "no authentication digest"),
            HbError::UnknownKeyIndex(i) => write!(f, "digest uses key index {i}, which authkeys does not define"),
            HbError::BadAuth => write!(f, "authentication digest does not match"),
            HbError::AuthKeys { line, what } => write!(f, "authkeys line {line}: {what}"),
            HbError::AuthKeysMode(m) => {
                write!(f, "authkeys (mode {:04o}) is readable by group or others; chmod 600", m & 0o7777)
            }
            HbError::Io { op, errno } => write!(f, "{op}: {}", errno.desc()),
        }
    }
}

impl std::error::Error for HbError {}

/// How a frame was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `###\n … %%%\n` + trailer: what heartbeat sends on UDP.
    Netstring,
    /// `>>>\n … <<<\n` text: what heartbeat sends on serial lines.
    Classic,
}

/// A received frame, decoded and authenticated the way heartbeat checks it on receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub msg: Message,
    pub framing: Framing,
    /// The authkeys index the sender signed with.
    pub key_index: u32,
}

/// Decodes one frame (either framing, told apart by its first four bytes) and checks its
/// digest as heartbeat does: the trailer of a netstring frame (its `auth` field, if any, is
/// not checked), the `auth` field of a classic frame.
pub fn decode_verified(buf: &[u8], keys: &auth::AuthKeys) -> Result<Frame, HbError> {
    if buf.len() > MAX_FRAME {
        return Err(HbError::TooLarge);
    }
    if buf.starts_with(netstring::START) {
        let (msg, info) = netstring::decode(buf)?;
        let (index, digest) = info.trailer(buf).ok_or(HbError::NoAuth)?;
        keys.verify(index, info.signed(buf), digest)?;
        Ok(Frame { msg, framing: Framing::Netstring, key_index: index })
    } else if buf.starts_with(classic::START) {
        let msg = classic::decode(buf)?;
        let index = auth::verify_field(&msg, keys)?;
        Ok(Frame { msg, framing: Framing::Classic, key_index: index })
    } else {
        Err(HbError::Malformed("neither ###\\n nor >>>\\n at the start"))
    }
}
