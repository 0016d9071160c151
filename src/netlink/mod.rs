//! Our own small netlink layer, in the spirit of `netlink-packet-core` (no crates).
//!
//! - [`NlSocket`]: an `AF_NETLINK` socket (CLOEXEC, bound) with one reused receive buffer,
//!   a sequence number checked on every reply, `NLM_F_ACK` and dump handling, and a receive
//!   deadline (every request waits in `poll(2)` at most [`NlSocket::timeout`]).
//! - [`MsgBuilder`]: writes `nlmsghdr` + family header + attributes (nested too) into a
//!   caller buffer with netlink alignment. It never panics: running out of room is
//!   remembered and reported by [`MsgBuilder::finish`].
//! - [`Request`]: a message that knows its exact size ([`Request::buffer_len`] equals what
//!   [`Request::emit`] writes). Implement it for every request you send.
//! - [`NlMsg`], [`NlMsgIter`], [`Nla`], [`NlaIter`]: zero-copy views. The iterators yield
//!   `Err(NetlinkError::Malformed)` once for the first malformed element and then stop.
//!
//! `route.rs` has rtnetlink links and addresses, `genl.rs` generic netlink (family lookup).
//!
//! # Writing a new request (e.g. a generic netlink family)
//! ```ignore
//! struct MyReq<'a> { family: u16, name: &'a str }
//! impl Request for MyReq<'_> {
//!     fn message_type(&self) -> u16 { self.family }
//!     fn flags(&self) -> u16 { NLM_F_ACK }
//!     fn payload_len(&self) -> usize { genl::GENL_HDRLEN + nla_size(strz_len(self.name)) }
//!     fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
//!         genl::put_header(b, CMD, VERSION);
//!         b.put_strz(ATTR_NAME, self.name);
//!     }
//! }
//! sock.request("my op", &MyReq { .. }, |msg| { /* look at msg.payload() */ Ok(()) })?;
//! ```

pub mod genl;
pub mod route;

use core::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

use crate::time::Duration;

// ---- constants (linux/netlink.h) ----

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_MULTI: u16 = 0x02;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_ECHO: u16 = 0x08;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

pub const NLA_F_NESTED: u16 = 1 << 15;
pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// Default receive deadline of a request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default receive buffer (enough for the kernel's largest dump chunk).
pub const DEFAULT_RECV_BUF: usize = 32 * 1024;
/// Default send buffer.
pub const DEFAULT_SEND_BUF: usize = 4 * 1024;

/// Rounds up to the netlink alignment (4).
pub const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Space an attribute with `payload` bytes takes, padding included.
pub const fn nla_size(payload: usize) -> usize {
    align(NLA_HDRLEN + payload)
}

/// Payload length of a NUL-terminated string attribute.
pub const fn strz_len(s: &str) -> usize {
    s.len() + 1
}

// ---- errors ----

/// The one error type of the netlink layer. `op` names what we were doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetlinkError {
    /// The kernel answered with `NLMSG_ERROR` and this (positive) errno.
    Kernel { op: &'static str, errno: Errno },
    /// A socket syscall failed.
    Sys { op: &'static str, errno: Errno },
    /// No (complete) answer within the receive deadline.
    Timeout { op: &'static str },
    /// A reply (or an attribute) did not parse.
    Malformed { op: &'static str, what: &'static str },
    /// The request does not fit the send buffer.
    TooBig { op: &'static str, need: usize, have: usize },
}

impl NetlinkError {
    /// The errno, for kernel and syscall errors.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } | NetlinkError::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }
    /// What we were doing.
    pub fn op(&self) -> &'static str {
        match self {
            NetlinkError::Kernel { op, .. }
            | NetlinkError::Sys { op, .. }
            | NetlinkError::Timeout { op }
            | NetlinkError::Malformed { op, .. }
            | NetlinkError::TooBig { op, .. } => op,
        }
    }
    /// Replaces the operation name (parsers report a generic one).
    pub fn with_op(self, op: &'static str) -> NetlinkError {
        match self {
            NetlinkError::Kernel { errno, .. } => NetlinkError::Kernel { op, errno },
            NetlinkError::Sys { errno, .. } => NetlinkError::Sys { op, errno },
            NetlinkError::Timeout { .. } => NetlinkError::Timeout { op },
            NetlinkError::Malformed { what, .. } => NetlinkError::Malformed { op, what },
            NetlinkError::TooBig { need, have, .. } => NetlinkError::TooBig { op, need, have },
        }
    }
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Kernel { op, errno } => write!(f, "{op}: {}", errno.desc()),
            NetlinkError::Sys { op, errno } => write!(f, "{op}: {}", errno.desc()),
            NetlinkError::Timeout { op } => write!(f, "{op}: no answer from the kernel in time"),
            NetlinkError::Malformed { op, what } => {
                write!(f, "{op}: malformed netlink reply ({what})")
            }
            NetlinkError::TooBig { op, need, have } => {
                write!(f, "{op}: request of {need} bytes exceeds the {have}-byte buffer")
            }
        }
    }
}

impl std::error::Error for NetlinkError {}

pub type Result<T> = core::result::Result<T, NetlinkError>;

fn malformed(what: &'static str) -> NetlinkError {
    NetlinkError::Malformed { op: "parse", what }
}

fn get_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([*s.first()?, *s.get(1)?]))
}

fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_ne_bytes(a))
}

// ---- message builder ----

/// Where a nest starts; hand it back to [`MsgBuilder::nest_end`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Nest(usize);

/// Writes one netlink message into a caller buffer. Never panics; if the buffer is too
/// small, the rest is dropped and [`MsgBuilder::finish`] reports [`NetlinkError::TooBig`].
pub struct MsgBuilder<'a> {
    buf: &'a mut [u8],
    /// Bytes actually in `buf`.
    written: usize,
    /// Bytes the message needs (more than `written` once the buffer ran out).
    size: usize,
}

impl<'a> MsgBuilder<'a> {
    /// Starts a message: writes the `nlmsghdr` (length filled in by `finish`).
    pub fn new(buf: &'a mut [u8], msg_type: u16, flags: u16, seq: u32, portid: u32) -> MsgBuilder<'a> {
        let mut b = MsgBuilder { buf, written: 0, size: 0 };
        b.put_raw(&0u32.to_ne_bytes());
        b.put_raw(&msg_type.to_ne_bytes());
        b.put_raw(&flags.to_ne_bytes());
        b.put_raw(&seq.to_ne_bytes());
        b.put_raw(&portid.to_ne_bytes());
        b
    }

    /// Bytes written so far (aligned after every put).
    pub fn len(&self) -> usize {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn put_raw(&mut self, data: &[u8]) {
        let end = self.size.saturating_add(data.len());
        if self.size == self.written {
            if let Some(dst) = self.buf.get_mut(self.written..end) {
                dst.copy_from_slice(data);
                self.written = end;
            }
        }
        self.size = end;
    }

    fn pad(&mut self) {
        let target = align(self.size);
        while self.size < target {
            self.put_raw(&[0]);
        }
    }

    fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(dst) = self.buf.get_mut(at..at.saturating_add(2)) {
            if at.saturating_add(2) <= self.written {
                dst.copy_from_slice(&v.to_ne_bytes());
            }
        }
    }

    fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(dst) = self.buf.get_mut(at..at.saturating_add(4)) {
            if at.saturating_add(4) <= self.written {
                dst.copy_from_slice(&v.to_ne_bytes());
            }
        }
    }

    /// A fixed family header (`ifaddrmsg`, `genlmsghdr`, …), padded to 4.
    pub fn put_header(&mut self, bytes: &[u8]) {
        self.put_raw(bytes);
        self.pad();
    }

    /// An attribute with raw payload.
    pub fn put_attr(&mut self, ty: u16, payload: &[u8]) {
        let len = u16::try_from(NLA_HDRLEN + payload.len()).unwrap_or(u16::MAX);
        self.put_raw(&len.to_ne_bytes());
        self.put_raw(&ty.to_ne_bytes());
        self.put_raw(payload);
        self.pad();
    }

    pub fn put_u8(&mut self, ty: u16, v: u8) {
        self.put_attr(ty, &[v]);
    }
    pub fn put_u16(&mut self, ty: u16, v: u16) {
        self.put_attr(ty, &v.to_ne_bytes());
    }
    pub fn put_u32(&mut self, ty: u16, v: u32) {
        self.put_attr(ty, &v.to_ne_bytes());
    }
    pub fn put_u64(&mut self, ty: u16, v: u64) {
        self.put_attr(ty, &v.to_ne_bytes());
    }
    /// A flag attribute (no payload).
    pub fn put_flag(&mut self, ty: u16) {
        self.put_attr(ty, &[]);
    }
    /// A NUL-terminated string (payload `s.len() + 1`).
    pub fn put_strz(&mut self, ty: u16, s: &str) {
        let len = u16::try_from(NLA_HDRLEN + s.len() + 1).unwrap_or(u16::MAX);
        self.put_raw(&len.to_ne_bytes());
        self.put_raw(&ty.to_ne_bytes());
        self.put_raw(s.as_bytes());
        self.put_raw(&[0]);
        self.pad();
    }

    /// Opens a nested attribute (`NLA_F_NESTED` is added to `ty`).
    pub fn nest_start(&mut self, ty: u16) -> Nest {
        let at = self.size;
        self.put_raw(&0u16.to_ne_bytes());
        self.put_raw(&(ty | NLA_F_NESTED).to_ne_bytes());
        Nest(at)
    }

    /// Opens a nested attribute exactly as `ty` (for families that reject `NLA_F_NESTED`).
    pub fn nest_start_raw(&mut self, ty: u16) -> Nest {
        let at = self.size;
        self.put_raw(&0u16.to_ne_bytes());
        self.put_raw(&ty.to_ne_bytes());
        Nest(at)
    }

    /// Closes a nest: patches its length.
    pub fn nest_end(&mut self, nest: Nest) {
        let len = u16::try_from(self.size.saturating_sub(nest.0)).unwrap_or(u16::MAX);
        self.patch_u16(nest.0, len);
    }

    /// Patches `nlmsg_len` and returns the message.
    pub fn finish(mut self, op: &'static str) -> Result<&'a [u8]> {
        if self.size != self.written {
            return Err(NetlinkError::TooBig { op, need: self.size, have: self.buf.len() });
        }
        let len = u32::try_from(self.written).unwrap_or(u32::MAX);
        self.patch_u32(0, len);
        let MsgBuilder { buf, written, .. } = self;
        buf.get(..written).ok_or(NetlinkError::TooBig { op, need: written, have: 0 })
    }
}

// ---- requests ----

/// A request message with an exact size. `buffer_len()` equals what `emit()` writes.
pub trait Request {
    /// `nlmsg_type` (an `RTM_*` value, or a generic netlink family id).
    fn message_type(&self) -> u16;
    /// Extra flags (`NLM_F_ACK`, `NLM_F_DUMP`, `NLM_F_CREATE`…); `NLM_F_REQUEST` is implied.
    fn flags(&self) -> u16;
    /// Bytes after the `nlmsghdr`: family header + attributes, padding included.
    fn payload_len(&self) -> usize;
    /// Writes family header + attributes.
    fn emit_payload(&self, b: &mut MsgBuilder<'_>);

    /// Total size of the message.
    fn buffer_len(&self) -> usize {
        NLMSG_HDRLEN + self.payload_len()
    }
    /// Writes the whole message into `buf`; returns the bytes written.
    fn emit(&self, buf: &mut [u8], seq: u32, portid: u32) -> Result<usize> {
        let mut b = MsgBuilder::new(buf, self.message_type(), self.flags() | NLM_F_REQUEST, seq, portid);
        self.emit_payload(&mut b);
        b.finish("build request").map(<[u8]>::len)
    }
}

// ---- message views ----

/// A view of one netlink message (header checked; payload within bounds).
#[derive(Debug, Clone, Copy)]
pub struct NlMsg<'a> {
    buf: &'a [u8],
}

impl<'a> NlMsg<'a> {
    /// Checks the header and the length; `buf` may hold more (it is cut to `nlmsg_len`).
    pub fn new_checked(buf: &'a [u8]) -> Result<NlMsg<'a>> {
        let len = get_u32(buf, 0).ok_or(malformed("short netlink header"))?;
        let len = usize::try_from(len).map_err(|_| malformed("bad netlink length"))?;
        if len < NLMSG_HDRLEN {
            return Err(malformed("netlink length below header size"));
        }
        let buf = buf.get(..len).ok_or(malformed("netlink message beyond buffer"))?;
        Ok(NlMsg { buf })
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// The whole message, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    pub fn message_type(&self) -> u16 {
        get_u16(self.buf, 4).unwrap_or(0)
    }
    pub fn flags(&self) -> u16 {
        get_u16(self.buf, 6).unwrap_or(0)
    }
    pub fn seq(&self) -> u32 {
        get_u32(self.buf, 8).unwrap_or(0)
    }
    pub fn portid(&self) -> u32 {
        get_u32(self.buf, 12).unwrap_or(0)
    }
    /// Everything after the `nlmsghdr`.
    pub fn payload(&self) -> &'a [u8] {
        self.buf.get(NLMSG_HDRLEN..).unwrap_or(&[])
    }
    /// The attributes after a family header of `hdr_len` bytes (aligned to 4).
    pub fn attrs(&self, hdr_len: usize) -> NlaIter<'a> {
        match self.payload().get(align(hdr_len)..) {
            Some(rest) => NlaIter::new(rest),
            None => NlaIter::failed("family header beyond message"),
        }
    }
    /// For `NLMSG_ERROR` and `NLMSG_DONE`: the (negated) error code in the payload.
    pub fn error_code(&self) -> Option<i32> {
        get_u32(self.payload(), 0).map(|v| v as i32)
    }
}

/// Iterates over the messages of one datagram; yields one `Err` on malformed input, then stops.
#[derive(Debug, Clone)]
pub struct NlMsgIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> NlMsgIter<'a> {
    pub fn new(buf: &'a [u8]) -> NlMsgIter<'a> {
        NlMsgIter { rest: buf, done: false }
    }
}

impl<'a> Iterator for NlMsgIter<'a> {
    type Item = Result<NlMsg<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        match NlMsg::new_checked(self.rest) {
            Ok(m) => {
                self.rest = self.rest.get(align(m.len())..).unwrap_or(&[]);
                Some(Ok(m))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A view of one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nla<'a> {
    ty: u16,
    payload: &'a [u8],
}

impl<'a> Nla<'a> {
    /// The type without the `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` bits.
    pub fn kind(&self) -> u16 {
        self.ty & NLA_TYPE_MASK
    }
    /// The type as on the wire.
    pub fn raw_type(&self) -> u16 {
        self.ty
    }
    pub fn is_nested(&self) -> bool {
        self.ty & NLA_F_NESTED != 0
    }
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    fn exact<const N: usize>(&self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        if self.payload.len() != N {
            return Err(malformed("attribute has the wrong size"));
        }
        a.copy_from_slice(self.payload);
        Ok(a)
    }
    pub fn as_u8(&self) -> Result<u8> {
        self.exact::<1>().map(|a| a[0])
    }
    pub fn as_u16(&self) -> Result<u16> {
        self.exact::<2>().map(u16::from_ne_bytes)
    }
    pub fn as_u32(&self) -> Result<u32> {
        self.exact::<4>().map(u32::from_ne_bytes)
    }
    pub fn as_u64(&self) -> Result<u64> {
        self.exact::<8>().map(u64::from_ne_bytes)
    }
    /// A fixed-size byte array (addresses).
    pub fn as_array<const N: usize>(&self) -> Result<[u8; N]> {
        self.exact::<N>()
    }
    /// A string; a trailing NUL (and anything after the first NUL) is cut off.
    pub fn as_str(&self) -> Result<&'a str> {
        let end = self.payload.iter().position(|&c| c == 0).unwrap_or(self.payload.len());
        let s = self.payload.get(..end).unwrap_or(&[]);
        core::str::from_utf8(s).map_err(|_| malformed("string attribute is not UTF-8"))
    }
    /// The attributes nested inside this one.
    pub fn nested(&self) -> NlaIter<'a> {
        NlaIter::new(self.payload)
    }
}

/// Iterates over attributes. On the first malformed attribute it yields one `Err`
/// (`Malformed`) and then stops; it never panics.
#[derive(Debug, Clone)]
pub struct NlaIter<'a> {
    rest: &'a [u8],
    error: Option<&'static str>,
    done: bool,
}

impl<'a> NlaIter<'a> {
    pub fn new(buf: &'a [u8]) -> NlaIter<'a> {
        NlaIter { rest: buf, error: None, done: false }
    }
    fn failed(what: &'static str) -> NlaIter<'a> {
        NlaIter { rest: &[], error: Some(what), done: false }
    }
    /// Finds the first attribute of `kind`; `Err` if the list is malformed before it.
    pub fn find(self, kind: u16) -> Result<Option<Nla<'a>>> {
        for a in self {
            let a = a?;
            if a.kind() == kind {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for NlaIter<'a> {
    type Item = Result<Nla<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(what) = self.error.take() {
            self.done = true;
            return Some(Err(malformed(what)));
        }
        // Fewer than a header's worth of bytes left: trailing padding, or junk.
        if self.rest.len() < NLA_HDRLEN {
            self.done = true;
            if self.rest.iter().all(|&b| b == 0) {
                return None;
            }
            return Some(Err(malformed("truncated attribute header")));
        }
        let (Some(len), Some(ty)) = (get_u16(self.rest, 0), get_u16(self.rest, 2)) else {
            self.done = true;
            return Some(Err(malformed("truncated attribute header")));
        };
        let len = usize::from(len);
        if len < NLA_HDRLEN {
            self.done = true;
            return Some(Err(malformed("attribute length below header size")));
        }
        let Some(payload) = self.rest.get(NLA_HDRLEN..len) else {
            self.done = true;
            return Some(Err(malformed("attribute beyond buffer")));
        };
        self.rest = self.rest.get(align(len)..).unwrap_or(&[]);
        Some(Ok(Nla { ty, payload }))
    }
}

// ---- socket ----

/// Which netlink bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `NETLINK_ROUTE` (rtnetlink).
    Route,
    /// `NETLINK_GENERIC`.
    Generic,
}

/// A bound netlink socket: one request at a time, seq checked, receive deadline.
pub struct NlSocket {
    fd: OwnedFd,
    portid: u32,
    seq: u32,
    timeout: Duration,
    /// An end no request may wait past (an operation's whole budget), if set.
    end: Option<crate::time::Instant>,
    rbuf: Vec<u8>,
    sbuf: Vec<u8>,
    /// Replies that did not belong to the current request (old seq, other port).
    skipped: u64,
}

impl NlSocket {
    /// Opens, binds (kernel-assigned port id) and sets `NETLINK_CAP_ACK` where supported
    /// (acks without the echoed request). `NLM_F_DUMP_INTR` on dump parts is not treated
    /// as an error: callers get the (possibly inconsistent) snapshot.
    pub fn new(proto: Protocol) -> Result<NlSocket> {
        Self::with_buffers(proto, DEFAULT_RECV_BUF, DEFAULT_SEND_BUF)
    }

    /// As [`NlSocket::new`] with explicit buffer sizes (allocated once, here).
    pub fn with_buffers(proto: Protocol, recv: usize, send: usize) -> Result<NlSocket> {
        let protocol = match proto {
            Protocol::Route => SockProtocol::NetlinkRoute,
            Protocol::Generic => SockProtocol::NetlinkGeneric,
        };
        let fd = socket::socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, protocol)
            .map_err(|errno| NetlinkError::Sys { op: "netlink socket", errno })?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|errno| NetlinkError::Sys { op: "bind netlink socket", errno })?;
        let addr: NetlinkAddr = socket::getsockname(fd.as_raw_fd())
            .map_err(|errno| NetlinkError::Sys { op: "getsockname netlink", errno })?;
        // Acks without the echoed request: smaller replies. Best effort (old kernels).
        let _ = crate::sys::netlink::set_opt(fd.as_fd(), crate::sys::netlink::NETLINK_CAP_ACK, 1);
        Ok(NlSocket {
            fd,
            portid: addr.pid(),
            seq: initial_seq(),
            timeout: DEFAULT_TIMEOUT,
            end: None,
            rbuf: vec![0; recv.max(4096)],
            sbuf: vec![0; send.max(256)],
            skipped: 0,
        })
    }

    /// The port id the kernel gave this socket.
    pub fn portid(&self) -> u32 {
        self.portid
    }
    /// The receive deadline of each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }
    /// Bounds every later request by an absolute end as well as by [`NlSocket::timeout`]:
    /// an operation of several requests (an `ip` start) then waits at most its whole budget.
    pub fn set_end(&mut self, end: Option<crate::time::Instant>) {
        self.end = end;
    }
    /// Replies skipped because their sequence number or port id did not match.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
    /// Joins a multicast group (e.g. a generic netlink family's `events`).
    pub fn add_membership(&self, group: u32) -> Result<()> {
        crate::sys::netlink::set_opt(
            self.fd.as_fd(),
            crate::sys::netlink::NETLINK_ADD_MEMBERSHIP,
            i32::try_from(group).unwrap_or(i32::MAX),
        )
        .map_err(|errno| NetlinkError::Sys { op: "join netlink multicast group", errno })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    /// Sends `req` and feeds every reply data message to `on_msg` until the exchange is
    /// complete: `NLMSG_DONE` for dumps, the ack (`NLMSG_ERROR` with errno 0) when
    /// `NLM_F_ACK` was asked for, otherwise the first reply without `NLM_F_MULTI`.
    /// A nonzero `NLMSG_ERROR` becomes [`NetlinkError::Kernel`]. Replies with another
    /// sequence number or port id are skipped. Waits at most [`NlSocket::timeout`] in total.
    pub fn request<R, F>(&mut self, op: &'static str, req: &R, mut on_msg: F) -> Result<()>
    where
        R: Request + ?Sized,
        F: FnMut(&NlMsg<'_>) -> Result<()>,
    {
        let seq = self.next_seq();
        let need = req.buffer_len();
        if need > self.sbuf.len() {
            return Err(NetlinkError::TooBig { op, need, have: self.sbuf.len() });
        }
        let n = req.emit(&mut self.sbuf, seq, self.portid).map_err(|e| e.with_op(op))?;
        let msg = self.sbuf.get(..n).ok_or(NetlinkError::TooBig { op, need: n, have: 0 })?;
        let sent = socket::send(self.fd.as_raw_fd(), msg, MsgFlags::empty())
            .map_err(|errno| NetlinkError::Sys { op, errno })?;
        if sent != n {
            return Err(NetlinkError::Sys { op, errno: Errno::EMSGSIZE });
        }
        let flags = req.flags();
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let want_ack = flags & NLM_F_ACK != 0;
        let mut deadline = crate::time::Instant::from_micros(crate::sys::monotonic_micros()) + self.timeout;
        if let Some(end) = self.end {
            deadline = deadline.min(end);
        }
        loop {
            let len = self.recv_until(op, deadline)?;
            let data = self.rbuf.get(..len).unwrap_or(&[]);
            let mut finished = false;
            for m in NlMsgIter::new(data) {
                let m = m.map_err(|e| e.with_op(op))?;
                if m.seq() != seq || (m.portid() != self.portid && m.portid() != 0) {
                    self.skipped = self.skipped.saturating_add(1);
                    continue;
                }
                match m.message_type() {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR => {
                        let code = m.error_code().ok_or(NetlinkError::Malformed { op, what: "short error message" })?;
                        if code != 0 {
                            return Err(NetlinkError::Kernel { op, errno: Errno::from_raw(code.saturating_neg()) });
                        }
                        finished = true;
                    }
                    NLMSG_DONE => {
                        if let Some(code) = m.error_code() {
                            if code < 0 {
                                return Err(NetlinkError::Kernel { op, errno: Errno::from_raw(code.saturating_neg()) });
                            }
                        }
                        // A dump with NLM_F_ACK gets no separate ack.
                        finished = true;
                    }
                    NLMSG_OVERRUN => return Err(NetlinkError::Malformed { op, what: "overrun" }),
                    _ => {
                        on_msg(&m)?;
                        if !dump && !want_ack && m.flags() & NLM_F_MULTI == 0 {
                            finished = true;
                        }
                    }
                }
                if finished {
                    break;
                }
            }
            if finished {
                return Ok(());
            }
        }
    }

    /// Waits (at most until `deadline`) for one datagram; returns its length.
    fn recv_until(&mut self, op: &'static str, deadline: crate::time::Instant) -> Result<usize> {
        loop {
            let now = crate::time::Instant::from_micros(crate::sys::monotonic_micros());
            if now >= deadline {
                return Err(NetlinkError::Timeout { op });
            }
            let ms = now.millis_until_ceil(deadline);
            let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, timeout) {
                Ok(0) => return Err(NetlinkError::Timeout { op }),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(NetlinkError::Sys { op, errno }),
            }
            match socket::recv(self.fd.as_raw_fd(), &mut self.rbuf, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC) {
                Ok(n) if n > self.rbuf.len() => {
                    return Err(NetlinkError::Malformed { op, what: "reply larger than the receive buffer" })
                }
                Ok(n) => return Ok(n),
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(errno) => return Err(NetlinkError::Sys { op, errno }),
            }
        }
    }

    /// Receives unsolicited (multicast) messages: waits at most `timeout` for one datagram
    /// and feeds each of its messages to `on_msg`. Returns the number of messages seen
    /// (0 on timeout). For event subscriptions after [`NlSocket::add_membership`].
    pub fn recv_notifications<F>(&mut self, op: &'static str, timeout: Duration, mut on_msg: F) -> Result<usize>
    where
        F: FnMut(&NlMsg<'_>) -> Result<()>,
    {
        let deadline = crate::time::Instant::from_micros(crate::sys::monotonic_micros()) + timeout;
        let len = match self.recv_until(op, deadline) {
            Ok(n) => n,
            Err(NetlinkError::Timeout { .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let data = self.rbuf.get(..len).unwrap_or(&[]);
        let mut count = 0;
        for m in NlMsgIter::new(data) {
            let m = m.map_err(|e| e.with_op(op))?;
            count += 1;
            on_msg(&m)?;
        }
        Ok(count)
    }
}

impl AsFd for NlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NlSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A starting sequence number that differs between sockets and runs.
fn initial_seq() -> u32 {
    let us = crate::sys::monotonic_micros();
    (us as u32) ^ ((us >> 32) as u32).rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl Request for Plain {
        fn message_type(&self) -> u16 {
            0x22
        }
        fn flags(&self) -> u16 {
            NLM_F_ACK
        }
        fn payload_len(&self) -> usize {
            4 + nla_size(strz_len("abc")) + nla_size(0) + NLA_HDRLEN + nla_size(4) + nla_size(1)
        }
        fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
            b.put_header(&[1, 2]);
            b.put_strz(1, "abc");
            b.put_flag(2);
            let n = b.nest_start(3);
            b.put_u32(1, 7);
            b.put_u8(2, 9);
            b.nest_end(n);
        }
    }

    #[test]
    fn builder_layout_and_len() {
        let mut buf = [0u8; 128];
        let n = Plain.emit(&mut buf, 5, 6).unwrap();
        assert_eq!(n, Plain.buffer_len());
        let want: Vec<u8> = [
            &(n as u32).to_ne_bytes()[..],
            &0x22u16.to_ne_bytes(),
            &(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes(),
            &5u32.to_ne_bytes(),
            &6u32.to_ne_bytes(),
            &[1, 2, 0, 0],
            &8u16.to_ne_bytes(),
            &1u16.to_ne_bytes(),
            b"abc\0",
            &4u16.to_ne_bytes(),
            &2u16.to_ne_bytes(),
            &20u16.to_ne_bytes(),
            &(3 | NLA_F_NESTED).to_ne_bytes(),
            &8u16.to_ne_bytes(),
            &1u16.to_ne_bytes(),
            &7u32.to_ne_bytes(),
            &5u16.to_ne_bytes(),
            &2u16.to_ne_bytes(),
            &[9, 0, 0, 0],
        ]
        .concat();
        assert_eq!(&buf[..n], &want[..]);

        // parse it back
        let m = NlMsg::new_checked(&buf[..n]).unwrap();
        assert_eq!(m.seq(), 5);
        let attrs: Vec<_> = m.attrs(2).collect::<Result<_>>().unwrap();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0].as_str().unwrap(), "abc");
        assert!(attrs[2].is_nested());
        let inner: Vec<_> = attrs[2].nested().collect::<Result<_>>().unwrap();
        assert_eq!(inner[0].as_u32().unwrap(), 7);
        assert_eq!(inner[1].as_u8().unwrap(), 9);
    }

    #[test]
    fn builder_too_small_no_panic() {
        for size in 0..Plain.buffer_len() {
            let mut buf = vec![0u8; size];
            assert!(matches!(Plain.emit(&mut buf, 1, 1), Err(NetlinkError::TooBig { .. })), "size {size}");
        }
    }

    #[test]
    fn nla_iter_malformed_stops() {
        // good attr, then one with len 2 (< header), then a good one that must not be reached
        let mut b = Vec::new();
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&1u32.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes());
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&3u16.to_ne_bytes());
        b.extend_from_slice(&1u32.to_ne_bytes());
        let v: Vec<_> = NlaIter::new(&b).collect();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_ok());
        assert!(matches!(v[1], Err(NetlinkError::Malformed { .. })));

        // length beyond the buffer
        let bad = [0x20, 0, 1, 0, 1, 2, 3, 4];
        let v: Vec<_> = NlaIter::new(&bad).collect();
        assert_eq!(v.len(), 1);
        assert!(v[0].is_err());

        // trailing junk shorter than a header
        let v: Vec<_> = NlaIter::new(&[1, 2]).collect();
        assert_eq!(v.len(), 1);
        assert!(v[0].is_err());
        // trailing zero padding is fine
        assert_eq!(NlaIter::new(&[0, 0]).count(), 0);
    }

    #[test]
    fn nla_iter_fuzz_no_panic() {
        let mut rng = crate::testutil::Rng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let mut buf = [0u8; 40];
            for b in buf.iter_mut() {
                *b = (rng.next_u64() & 0x1f) as u8;
            }
            let len = rng.below(41) as usize;
            for a in NlaIter::new(&buf[..len]).flatten() {
                let _ = (a.as_u32(), a.as_str(), a.nested().count());
            }
            for m in NlMsgIter::new(&buf[..len]).flatten() {
                let _ = (m.attrs(4).count(), m.error_code());
            }
        }
    }

    #[test]
    fn msg_iter_malformed_stops() {
        let mut b = vec![0u8; 16];
        b[0] = 16;
        b.extend_from_slice(&[8, 0, 0, 0]); // claims 8 < header
        let v: Vec<_> = NlMsgIter::new(&b).collect();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_ok());
        assert!(v[1].is_err());
    }

    #[test]
    fn an_operation_end_bounds_every_request() {
        let mut sock = NlSocket::new(Protocol::Route).unwrap();
        assert!(route::link_index(&mut sock, "lo").is_ok());
        // An end already passed: the next request gives up at once, whatever its timeout.
        sock.set_end(Some(crate::time::now()));
        assert!(matches!(route::link_index(&mut sock, "lo"), Err(NetlinkError::Timeout { .. })));
        sock.set_end(None);
        assert!(route::link_index(&mut sock, "lo").is_ok());
    }
}
