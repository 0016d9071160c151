//! The `drbd::RESOURCE` agent (heartbeat's `drbddisk`): DRBD role over generic netlink,
//! with no drbd-utils at run time.
//!
//! - **start**: promote every volume of the resource to Primary. `SS_TWO_PRIMARIES` (the
//!   peer has not demoted yet) and `SS_PRIMARY_NOP` (the peer just vanished and DRBD's
//!   fence-peer handler has not outdated it yet) are retried up to [`PROMOTE_TRIES`] times,
//!   [`RETRY_DELAY`] apart, as drbddisk did. Never forced.
//! - **stop**: demote every volume to Secondary.
//! - **status**: running iff every volume is Primary; the role, disk and connection state
//!   are logged (and returned by [`DrbdAgent::query`]).
//!
//! [`outdate_for_peer`] answers the peer's `tandem fence-peer` (DRBD's fence-peer handler):
//! `OUTDATE` (cmd 25) for every minor, and a drbd.conf(5) exit code from the state read back.
//!
//! # Versions covered
//! DRBD **8.4** (the module in mainline Linux, 8.4.11 in Debian 12's kernel): the family
//! `drbd` (version 1), `PRIMARY`/`SECONDARY` addressed **by minor** (8.4's `set_role`
//! needs one), status from the `GET_STATUS` dump filtered by resource name, whose
//! `state_info.current_state` is 8.4's `union drbd_state`. The resource name is always
//! sent too, so the kernel checks that the minor belongs to it.
//! DRBD 9 addresses `PRIMARY`/`SECONDARY` by resource name (`minor = 0xFFFFFFFF`) and has
//! no `GET_STATUS`; its state comes from `GET_RESOURCES`/`GET_DEVICES`/`GET_CONNECTIONS`
//! (commands 30–32, present in 8.4.11 too). The builders take any command number, but
//! the agent's state decoding is 8.4's: DRBD 9 is not covered yet.
//!
//! # Wire format (checked against `include/linux/drbd_genl.h`, `genl_magic_struct.h`)
//! `nlmsghdr | genlmsghdr{cmd, version} | drbd_genlmsghdr{u32 minor; u32 flags/ret_code} |
//! DRBD_NLA_CFG_CONTEXT(2){ ctx_resource_name(2): NUL-terminated, <= 128 bytes }`.
//! Field attributes carry `DRBD_GENLA_F_MANDATORY` (1 << 14) as the kernel's own
//! `T_ctx_resource_name` does (0x4002); the kernel strips it (`drbd_nla_check_mandatory`)
//! and also accepts the bare number. The context nest carries `NLA_F_NESTED`: 6.1's
//! generic netlink validates the `GET_STATUS` dump strictly and answers `EINVAL` to a
//! nest without it (found in the QEMU rig; `examples/storage_agent.rs drbd-probe` tries
//! all four encodings against the real module).

use std::fmt;

use super::{Agent, AgentError, Exec, Op, Outcome};
use crate::config::DrbdSpec;
use crate::netlink::{nla_size, strz_len, MsgBuilder, NetlinkError, NlMsg, NlSocket, NlaIter, Protocol, Request};
use crate::netlink::{NLM_F_ACK, NLM_F_DUMP};
use crate::time::Duration;

/// The generic netlink family name.
pub const FAMILY: &str = "drbd";
/// `GENL_MAGIC_VERSION` of `drbd_genl_api.h`, used if the family reports none.
pub const FAMILY_VERSION: u8 = 1;

// genlmsghdr.cmd (drbd_genl.h)
pub const CMD_EVENT: u8 = 1;
pub const CMD_GET_STATUS: u8 = 2;
pub const CMD_PRIMARY: u8 = 14;
pub const CMD_SECONDARY: u8 = 15;
/// `OUTDATE`: mark the local disk Outdated (the peer's `fence-peer` handler asks for it).
pub const CMD_OUTDATE: u8 = 25;
pub const CMD_GET_RESOURCES: u8 = 30;
pub const CMD_GET_DEVICES: u8 = 31;
pub const CMD_GET_CONNECTIONS: u8 = 32;

// top-level attributes
pub const NLA_CFG_REPLY: u16 = 1;
pub const NLA_CFG_CONTEXT: u16 = 2;
pub const NLA_SET_ROLE_PARMS: u16 = 6;
pub const NLA_STATE_INFO: u16 = 8;
// drbd_cfg_reply
pub const T_INFO_TEXT: u16 = 1;
// drbd_cfg_context
pub const T_CTX_VOLUME: u16 = 1;
pub const T_CTX_RESOURCE_NAME: u16 = 2;
// state_info
pub const T_SIB_REASON: u16 = 1;
pub const T_CURRENT_STATE: u16 = 2;

/// `DRBD_GENLA_F_MANDATORY`.
pub const GENLA_F_MANDATORY: u16 = 1 << 14;
/// `drbd_genlmsghdr.minor` meaning "no minor: by resource name".
pub const MINOR_NONE: u32 = 0xFFFF_FFFF;
/// Size of `struct drbd_genlmsghdr`.
pub const DRBD_HDRLEN: usize = 8;
/// `ctx_resource_name` holds at most this many bytes, NUL included.
pub const RESOURCE_NAME_MAX: usize = 128;
const GENL_HDRLEN: usize = 4;

// enum drbd_ret_code / drbd_state_rv (drbd.h)
pub const NO_ERROR: i32 = 101;
pub const ERR_MINOR_INVALID: i32 = 127;
pub const ERR_RES_NOT_KNOWN: i32 = 158;
pub const SS_SUCCESS: i32 = 1;
pub const SS_NOTHING_TO_DO: i32 = 2;
pub const SS_TWO_PRIMARIES: i32 = -1;
/// "Refusing to be Primary while peer is not outdated": with `fencing resource-and-stonith`
/// a promote right after the peer's power-off can meet DRBD still detecting the lost
/// connection (ping-timeout), before its fence-peer handler outdates the peer.
pub const SS_PRIMARY_NOP: i32 = -7;
pub const SS_DEVICE_IN_USE: i32 = -12;
/// "Refusing to be Outdated while Connected".
pub const SS_CONNECTED_OUTDATES: i32 = -6;
/// "Disk state is lower than outdated" (an Inconsistent disk cannot be Outdated).
pub const SS_LOWER_THAN_OUTDATED: i32 = -16;

// enum drbd_disk_state
pub const D_DISKLESS: u32 = 0;
pub const D_INCONSISTENT: u32 = 4;
pub const D_OUTDATED: u32 = 5;
pub const D_CONSISTENT: u32 = 7;
pub const D_UP_TO_DATE: u32 = 8;
// enum drbd_conns
pub const C_CONNECTED: u32 = 10;

/// drbd.conf(5) exit codes of a `fence-peer` handler.
pub mod fence {
    /// Not outdated, and the peer is not known to be dead: any code DRBD does not list is a
    /// failed handler to it, so it neither assumes the peer dead nor marks its disk
    /// Outdated (and refuses to promote with `fencing resource-only`).
    pub const PEER_FAILED: u8 = 1;
    /// The peer's disk is Inconsistent or worse (Diskless, Failed…).
    pub const PEER_INCONSISTENT: u8 = 3;
    /// The peer's disk is Outdated (we outdated it, or it already was).
    pub const PEER_OUTDATED: u8 = 4;
    /// The peer could not be reached: dead on every link. DRBD then assumes it dead.
    pub const PEER_UNREACHABLE: u8 = 5;
    /// The peer is Primary: the asking node should outdate itself.
    pub const PEER_PRIMARY: u8 = 6;
    /// The peer was powered off (STONITH).
    pub const PEER_FENCED: u8 = 7;
}

/// How often start asks for Primary while the peer still is.
pub const PROMOTE_TRIES: u32 = 10;
/// Pause between those tries.
pub const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Receive deadline of a role change (8.4 may wait for the peer or a fence-peer handler).
const ROLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Receive deadline of a status dump.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive deadline of each request of [`outdate_for_peer`].
pub const FENCE_REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long [`outdate_for_peer`] keeps trying: DRBD refuses OUTDATE while it still sees the
/// connection, and its own detection of a lost peer takes up to ping-int + ping-timeout
/// (10.5 s with the defaults). With the per-request deadline it returns within
/// `OUTDATE_BUDGET + 2 × FENCE_REQUEST_TIMEOUT`.
pub const OUTDATE_BUDGET: Duration = Duration::from_secs(14);
/// Pause between OUTDATE attempts.
const OUTDATE_RETRY: Duration = Duration::from_millis(250);

/// One DRBD request: a command for a resource (and a minor, or [`MINOR_NONE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrbdRequest<'a> {
    pub family: u16,
    pub version: u8,
    pub cmd: u8,
    pub minor: u32,
    pub resource: &'a str,
    /// A dump (`NLM_F_DUMP`) rather than a `doit` with `NLM_F_ACK`.
    pub dump: bool,
    /// Set [`GENLA_F_MANDATORY`] on `ctx_resource_name`.
    pub mandatory: bool,
    /// Set `NLA_F_NESTED` on the context nest (strict genl validation needs it).
    pub nested_flag: bool,
}

impl<'a> DrbdRequest<'a> {
    /// `PRIMARY` (never with `assume_uptodate`, i.e. never forced).
    pub fn primary(family: u16, version: u8, minor: u32, resource: &'a str) -> DrbdRequest<'a> {
        DrbdRequest {
            family,
            version,
            cmd: CMD_PRIMARY,
            minor,
            resource,
            dump: false,
            mandatory: true,
            nested_flag: true,
        }
    }
    /// `SECONDARY`.
    pub fn secondary(family: u16, version: u8, minor: u32, resource: &'a str) -> DrbdRequest<'a> {
        DrbdRequest {
            family,
            version,
            cmd: CMD_SECONDARY,
            minor,
            resource,
            dump: false,
            mandatory: true,
            nested_flag: true,
        }
    }
    /// `OUTDATE` of one minor (8.4 needs the minor, as for `PRIMARY`).
    pub fn outdate(family: u16, version: u8, minor: u32, resource: &'a str) -> DrbdRequest<'a> {
        DrbdRequest {
            family,
            version,
            cmd: CMD_OUTDATE,
            minor,
            resource,
            dump: false,
            mandatory: true,
            nested_flag: true,
        }
    }
    /// The 8.4 `GET_STATUS` dump of one resource's volumes.
    pub fn status_dump(family: u16, version: u8, resource: &'a str) -> DrbdRequest<'a> {
        DrbdRequest {
            family,
            version,
            cmd: CMD_GET_STATUS,
            minor: MINOR_NONE,
            resource,
            dump: true,
            mandatory: true,
            nested_flag: true,
        }
    }
}

/// Checks a resource name: 1..=127 bytes, no NUL, no `/` (the kernel refuses those).
pub fn valid_resource_name(name: &str) -> bool {
    !name.is_empty() && name.len() < RESOURCE_NAME_MAX && !name.contains(['\0', '/']) && !name.starts_with('-')
}

impl Request for DrbdRequest<'_> {
    fn message_type(&self) -> u16 {
        self.family
    }
    fn flags(&self) -> u16 {
        if self.dump {
            NLM_F_DUMP
        } else {
            NLM_F_ACK
        }
    }
    fn payload_len(&self) -> usize {
        GENL_HDRLEN + DRBD_HDRLEN + nla_size(nla_size(strz_len(self.resource)))
    }
    fn emit_payload(&self, b: &mut MsgBuilder<'_>) {
        b.put_header(&[self.cmd, self.version, 0, 0]);
        let mut hdr = [0u8; DRBD_HDRLEN];
        hdr[..4].copy_from_slice(&self.minor.to_ne_bytes());
        b.put_header(&hdr);
        let ctx = if self.nested_flag { b.nest_start(NLA_CFG_CONTEXT) } else { b.nest_start_raw(NLA_CFG_CONTEXT) };
        let ty = if self.mandatory { T_CTX_RESOURCE_NAME | GENLA_F_MANDATORY } else { T_CTX_RESOURCE_NAME };
        b.put_strz(ty, self.resource);
        b.nest_end(ctx);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Unknown,
    Primary,
    Secondary,
}

impl Role {
    fn from_bits(v: u32) -> Role {
        match v {
            1 => Role::Primary,
            2 => Role::Secondary,
            _ => Role::Unknown,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Role::Unknown => "Unknown",
            Role::Primary => "Primary",
            Role::Secondary => "Secondary",
        }
    }
}

const CONN_NAMES: [&str; 24] = [
    "StandAlone",
    "Disconnecting",
    "Unconnected",
    "Timeout",
    "BrokenPipe",
    "NetworkFailure",
    "ProtocolError",
    "TearDown",
    "WFConnection",
    "WFReportParams",
    "Connected",
    "StartingSyncS",
    "StartingSyncT",
    "WFBitMapS",
    "WFBitMapT",
    "WFSyncUUID",
    "SyncSource",
    "SyncTarget",
    "VerifyS",
    "VerifyT",
    "PausedSyncS",
    "PausedSyncT",
    "Ahead",
    "Behind",
];
const DISK_NAMES: [&str; 9] = [
    "Diskless",
    "Attaching",
    "Failed",
    "Negotiating",
    "Inconsistent",
    "Outdated",
    "DUnknown",
    "Consistent",
    "UpToDate",
];

/// `enum drbd_disk_state`'s UpToDate.
const DISK_UP_TO_DATE: u32 = 8;

/// 8.4's `union drbd_state` (little-endian bit fields: role:2 peer:2 conn:5 disk:4 pdsk:4 susp:1 …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrbdState(pub u32);

impl DrbdState {
    pub fn role(self) -> Role {
        Role::from_bits(self.0 & 3)
    }
    pub fn peer(self) -> Role {
        Role::from_bits((self.0 >> 2) & 3)
    }
    /// `enum drbd_conns`: 10 = Connected.
    pub fn conn(self) -> u32 {
        (self.0 >> 4) & 31
    }
    /// `enum drbd_disk_state`: 8 = UpToDate.
    pub fn disk(self) -> u32 {
        (self.0 >> 9) & 15
    }
    pub fn pdsk(self) -> u32 {
        (self.0 >> 13) & 15
    }
    pub fn susp(self) -> bool {
        (self.0 >> 17) & 1 == 1
    }
    pub fn conn_name(self) -> &'static str {
        usize::try_from(self.conn()).ok().and_then(|i| CONN_NAMES.get(i)).copied().unwrap_or("?")
    }
    pub fn disk_name(self) -> &'static str {
        usize::try_from(self.disk()).ok().and_then(|i| DISK_NAMES.get(i)).copied().unwrap_or("?")
    }
    pub fn pdsk_name(self) -> &'static str {
        usize::try_from(self.pdsk()).ok().and_then(|i| DISK_NAMES.get(i)).copied().unwrap_or("?")
    }
}

impl fmt::Display for DrbdState {
    /// As `/proc/drbd` writes it: `ro:Primary/Secondary ds:UpToDate/UpToDate cs:Connected`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ro:{}/{} ds:{}/{} cs:{}",
            self.role().name(),
            self.peer().name(),
            self.disk_name(),
            self.pdsk_name(),
            self.conn_name()
        )?;
        if self.susp() {
            write!(f, " suspended")?;
        }
        Ok(())
    }
}

/// One DRBD reply message, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub cmd: u8,
    pub minor: u32,
    /// `NO_ERROR` (101), another `ERR_*` (> 100) or a state-change result `SS_*` (<= 4).
    pub ret_code: i32,
    /// `drbd_cfg_reply.info_text`, if the kernel explained itself.
    pub info: Option<String>,
    pub resource: Option<String>,
    pub volume: Option<u32>,
    pub state: Option<DrbdState>,
}

impl Reply {
    /// Parses the payload of a DRBD message (after the `nlmsghdr`).
    pub fn parse(payload: &[u8]) -> Result<Reply, NetlinkError> {
        const OP: &str = "parse drbd reply";
        let bad = |what| NetlinkError::Malformed { op: OP, what };
        let cmd = *payload.first().ok_or(bad("short genlmsghdr"))?;
        let hdr = payload.get(GENL_HDRLEN..GENL_HDRLEN + DRBD_HDRLEN).ok_or(bad("short drbd_genlmsghdr"))?;
        let word = |i: usize| -> Result<[u8; 4], NetlinkError> {
            hdr.get(i..i + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()).ok_or(bad("short drbd_genlmsghdr"))
        };
        let mut r = Reply {
            cmd,
            minor: u32::from_ne_bytes(word(0)?),
            ret_code: i32::from_ne_bytes(word(4)?),
            ..Reply::default()
        };
        let attrs = payload.get(GENL_HDRLEN + DRBD_HDRLEN..).unwrap_or(&[]);
        for a in NlaIter::new(attrs) {
            let a = a.map_err(|e| e.with_op(OP))?;
            // kind() masks NLA_F_NESTED and bit 14 (= DRBD_GENLA_F_MANDATORY).
            match a.kind() {
                NLA_CFG_REPLY => {
                    for f in a.nested() {
                        let f = f.map_err(|e| e.with_op(OP))?;
                        if f.kind() == T_INFO_TEXT {
                            r.info = Some(f.as_str().map_err(|e| e.with_op(OP))?.to_owned());
                        }
                    }
                }
                NLA_CFG_CONTEXT => {
                    for f in a.nested() {
                        let f = f.map_err(|e| e.with_op(OP))?;
                        match f.kind() {
                            T_CTX_RESOURCE_NAME => r.resource = Some(f.as_str().map_err(|e| e.with_op(OP))?.to_owned()),
                            T_CTX_VOLUME => r.volume = Some(f.as_u32().map_err(|e| e.with_op(OP))?),
                            _ => {}
                        }
                    }
                }
                NLA_STATE_INFO => {
                    for f in a.nested() {
                        let f = f.map_err(|e| e.with_op(OP))?;
                        if f.kind() == T_CURRENT_STATE {
                            r.state = Some(DrbdState(f.as_u32().map_err(|e| e.with_op(OP))?));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(r)
    }

    /// Whether `ret_code` means success (`NO_ERROR`, or `SS_SUCCESS`…`SS_CW_NO_NEED`).
    pub fn ok(&self) -> bool {
        self.ret_code == NO_ERROR || (SS_SUCCESS..=4).contains(&self.ret_code)
    }
}

/// A readable name for a `ret_code` (`drbd_set_st_err_str` / `drbd_ret_code`).
pub fn ret_code_text(code: i32) -> &'static str {
    match code {
        NO_ERROR => "no error",
        ERR_MINOR_INVALID => "unknown minor",
        ERR_RES_NOT_KNOWN => "unknown resource",
        126 => "unknown mandatory attribute",
        138 => "device has no disk attached",
        162 => "invalid request",
        1 => "state change succeeded",
        2 => "nothing to do",
        0 => "unknown error",
        -1 => "multiple primaries not allowed by config (the peer is Primary)",
        -2 => "need access to UpToDate data",
        -4 => "can not resync without local disk",
        -5 => "can not resync without remote disk",
        -6 => "refusing to be Outdated while Connected",
        -7 => "refusing to be Primary while peer is not outdated",
        -8 => "can not start OV/resync since it is already active",
        -10 => "state change was refused by peer node",
        -11 => "device is diskless, the requested operation requires a disk",
        -12 => "device is held open by someone (still mounted?)",
        -13 => "have no net/connection configuration",
        -16 => "disk state is lower than outdated",
        -18 => "in transient state, retry after next state change",
        -19 => "concurrent state changes detected and aborted",
        -20 => "primary nodes must be connected to a volume's peer",
        _ => "DRBD error",
    }
}

/// Whether a refused promote is tried again: the peer still Primary (it has not demoted
/// yet), or not outdated yet (it was just fenced and DRBD's handler is still running; DRBD
/// itself refuses the promote until the peer is outdated, so a retry never forces anything).
pub fn promote_retries(ret_code: i32) -> bool {
    matches!(ret_code, SS_TWO_PRIMARIES | SS_PRIMARY_NOP)
}

/// The status of one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub minor: u32,
    pub volume: u32,
    pub state: DrbdState,
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "volume {} (minor {}): {}", self.volume, self.minor, self.state)
    }
}

/// The `drbd::` agent.
#[derive(Debug)]
pub struct DrbdAgent {
    text: String,
    resource: String,
    tries: u32,
    retry_delay: Duration,
    /// (family id, version), resolved once through `nlctrl`.
    family: Option<(u16, u8)>,
}

impl DrbdAgent {
    pub fn new(spec: &DrbdSpec, text: &str) -> DrbdAgent {
        DrbdAgent {
            text: text.to_string(),
            resource: spec.resource.clone(),
            tries: PROMOTE_TRIES,
            retry_delay: RETRY_DELAY,
            family: None,
        }
    }

    /// The cached (family id, version), once resolved.
    pub fn family(&self) -> Option<(u16, u8)> {
        self.family
    }

    /// Changes the promote retry policy.
    pub fn with_retry(mut self, tries: u32, delay: Duration) -> DrbdAgent {
        self.tries = tries.max(1);
        self.retry_delay = delay;
        self
    }

    fn socket(&mut self, timeout: Duration) -> Result<(NlSocket, u16, u8), AgentError> {
        let mut sock = NlSocket::new(Protocol::Generic).map_err(nl_err)?;
        sock.set_timeout(timeout);
        let (id, version) = match self.family {
            Some(f) => f,
            None => {
                let f = resolve_family(&mut sock, FAMILY).map_err(|e| match e.errno() {
                    Some(nix::errno::Errno::ENOENT) => AgentError::Unavailable(
                        "the DRBD kernel module is not loaded (no generic netlink family 'drbd')".to_string(),
                    ),
                    _ => nl_err(e),
                })?;
                self.family = Some(f);
                f
            }
        };
        Ok((sock, id, version))
    }

    /// The resource's volumes and their state (8.4 `GET_STATUS` dump). An unknown resource
    /// is an empty list.
    pub fn query(&mut self) -> Result<Vec<Volume>, AgentError> {
        let (mut sock, family, version) = self.socket(STATUS_TIMEOUT)?;
        status_on(&mut sock, family, version, &self.resource).map_err(nl_err)
    }

    fn volumes(&mut self) -> Result<Vec<Volume>, AgentError> {
        let v = self.query()?;
        if v.is_empty() {
            return Err(AgentError::Failed(format!(
                "DRBD resource '{}' is not configured in the kernel (is it up?)",
                self.resource
            )));
        }
        Ok(v)
    }

    /// One PRIMARY/SECONDARY request; the kernel's `ret_code`.
    fn set_role(&mut self, primary: bool, minor: u32) -> Result<Reply, AgentError> {
        let (mut sock, family, version) = self.socket(ROLE_TIMEOUT)?;
        let req = if primary {
            DrbdRequest::primary(family, version, minor, &self.resource)
        } else {
            DrbdRequest::secondary(family, version, minor, &self.resource)
        };
        let mut reply = None;
        sock.request(if primary { "drbd primary" } else { "drbd secondary" }, &req, |m: &NlMsg<'_>| {
            reply = Some(Reply::parse(m.payload())?);
            Ok(())
        })
        .map_err(nl_err)?;
        reply.ok_or_else(|| AgentError::Failed("DRBD sent no reply".to_string()))
    }

    fn role_error(&self, what: &str, v: &Volume, r: &Reply) -> AgentError {
        let mut m =
            format!("{what} {} volume {}: {} ({})", self.resource, v.volume, ret_code_text(r.ret_code), r.ret_code);
        if let Some(info) = r.info.as_deref().filter(|s| !s.is_empty()) {
            m.push_str(&format!(": {info}"));
        }
        AgentError::Failed(m)
    }

    fn start(&mut self) -> Result<Outcome, AgentError> {
        for v in self.volumes()? {
            if v.state.role() == Role::Primary {
                continue;
            }
            let mut attempt = 0;
            loop {
                attempt += 1;
                let r = self.set_role(true, v.minor)?;
                if r.ok() {
                    break;
                }
                if promote_retries(r.ret_code) && attempt < self.tries {
                    log::info!("{}: {}, retrying ({attempt}/{})", self.text, ret_code_text(r.ret_code), self.tries);
                    std::thread::sleep(self.retry_delay);
                    continue;
                }
                return Err(self.role_error("promote", &v, &r));
            }
        }
        self.check(Role::Primary)
    }

    fn stop(&mut self) -> Result<Outcome, AgentError> {
        let vols = match self.query()? {
            v if v.is_empty() => return Ok(Outcome::Stopped), // not configured: not Primary
            v => v,
        };
        for v in vols {
            if v.state.role() == Role::Primary {
                let r = self.set_role(false, v.minor)?;
                if !r.ok() {
                    return Err(self.role_error("demote", &v, &r));
                }
            }
        }
        match self.check(Role::Secondary)? {
            Outcome::Running => Ok(Outcome::Stopped),
            Outcome::Stopped => Err(AgentError::Failed(format!("{} is still Primary after demotion", self.resource))),
        }
    }

    /// Running if every volume has `want` role (Primary → Running; Secondary → Running too).
    fn check(&mut self, want: Role) -> Result<Outcome, AgentError> {
        let vols = self.volumes()?;
        for v in &vols {
            log::info!("{}: {v}", self.text);
        }
        if vols.iter().all(|v| v.state.role() == want) {
            Ok(Outcome::Running)
        } else if want == Role::Primary {
            Err(AgentError::Failed(format!("{} did not become Primary", self.resource)))
        } else {
            Ok(Outcome::Stopped)
        }
    }
}

impl Agent for DrbdAgent {
    fn text(&self) -> &str {
        &self.text
    }
    fn exec(&self, _op: Op) -> Exec {
        Exec::Fork
    }
    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        match op {
            Op::Start => self.start(),
            Op::Stop => self.stop(),
            Op::Status => {
                let vols = match self.query() {
                    Ok(v) => v,
                    // No module: certainly not Primary.
                    Err(AgentError::Unavailable(_)) => return Ok(Outcome::Stopped),
                    Err(e) => return Err(e),
                };
                for v in &vols {
                    log::debug!("{}: {v}", self.text);
                }
                if vols.is_empty() || !vols.iter().all(|v| v.state.role() == Role::Primary) {
                    return Ok(Outcome::Stopped);
                }
                // Primary, but serving from a disk that is not UpToDate (detached after an
                // I/O error: Diskless; or Inconsistent, Outdated…): not healthy.
                match vols.iter().find(|v| v.state.disk() != DISK_UP_TO_DATE) {
                    None => Ok(Outcome::Running),
                    Some(v) => Err(AgentError::Failed(format!(
                        "{}: Primary, but volume {} is {}",
                        self.text,
                        v.volume,
                        v.state.disk_name()
                    ))),
                }
            }
        }
    }
}

/// The volumes of `resource` and their state, by the 8.4 `GET_STATUS` dump on `sock`.
/// An unknown resource is an empty list.
fn status_on(sock: &mut NlSocket, family: u16, version: u8, resource: &str) -> Result<Vec<Volume>, NetlinkError> {
    let req = DrbdRequest::status_dump(family, version, resource);
    let mut vols = Vec::new();
    let res = sock.request("drbd get-status", &req, |m: &NlMsg<'_>| {
        let r = Reply::parse(m.payload())?;
        if let (true, Some(state)) = (r.minor != MINOR_NONE, r.state) {
            vols.push(Volume { minor: r.minor, volume: r.volume.unwrap_or(0), state });
        }
        Ok(())
    });
    match res {
        Ok(()) => Ok(vols),
        // 8.4 ends the dump with -ENODEV for a resource it does not know.
        Err(e) if e.errno() == Some(nix::errno::Errno::ENODEV) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The fence-peer answer for a set of volumes: Primary anywhere → 6; every disk Outdated or
/// worse → 4, or 3 if one is worse than Outdated; `None` while a disk is still
/// Consistent/UpToDate (not outdated yet); no volumes → failed.
pub fn fence_code(vols: &[Volume]) -> Option<u8> {
    if vols.is_empty() {
        return Some(fence::PEER_FAILED);
    }
    if vols.iter().any(|v| v.state.role() == Role::Primary) {
        return Some(fence::PEER_PRIMARY);
    }
    if vols.iter().any(|v| v.state.disk() > D_OUTDATED) {
        return None;
    }
    if vols.iter().any(|v| v.state.disk() < D_OUTDATED) {
        return Some(fence::PEER_INCONSISTENT);
    }
    Some(fence::PEER_OUTDATED)
}

/// The peer's `tandem fence-peer` asked us to outdate our disk of DRBD `resource`
/// (heartbeat's dopd). Returns the drbd.conf(5) fence-peer exit code to send back:
///
/// - 6: a volume here is **Primary** (the asking node must outdate itself); nothing sent;
/// - 4: every volume is now **Outdated** (`OUTDATE`, cmd 25, per minor), or already was;
/// - 3: a volume's disk is **Inconsistent**, Diskless, Failed…: worse than Outdated
///   (DRBD refuses to outdate it, and it is no danger);
/// - 1 ([`fence::PEER_FAILED`]): the disk was **not** outdated: a disk stayed UpToDate for
///   the whole [`OUTDATE_BUDGET`] (DRBD ignores OUTDATE while it still sees the connection,
///   so the request is repeated until it sees the disconnect), the module is not loaded, the
///   resource is not configured here (its on-disk metadata stays as it was), or netlink
///   failed. Never 5: that code tells DRBD the peer is dead, and this node is alive.
///
/// Blocking (it sleeps between attempts): runs in a forked child, never in the loop.
pub fn outdate_for_peer(resource: &str) -> u8 {
    if !valid_resource_name(resource) {
        log::warn!("fence-peer: invalid DRBD resource name {resource:?}: not outdated");
        return fence::PEER_FAILED;
    }
    match outdate_inner(resource) {
        Ok((code, vols)) => {
            for v in &vols {
                log::info!("fence-peer: drbd {resource} {v}");
            }
            code
        }
        Err(why) => {
            log::warn!("fence-peer: cannot outdate DRBD {resource}: {why}: not outdated");
            fence::PEER_FAILED
        }
    }
}

fn outdate_inner(resource: &str) -> Result<(u8, Vec<Volume>), String> {
    let start = crate::time::now();
    let late = || crate::time::now().saturating_since(start) >= OUTDATE_BUDGET;
    let mut sock = NlSocket::new(Protocol::Generic).map_err(|e| e.to_string())?;
    sock.set_timeout(FENCE_REQUEST_TIMEOUT);
    let (family, version) = resolve_family(&mut sock, FAMILY).map_err(|e| match e.errno() {
        Some(nix::errno::Errno::ENOENT) => "the DRBD kernel module is not loaded".to_string(),
        _ => e.to_string(),
    })?;
    let mut attempt = 0u32;
    loop {
        let vols = status_on(&mut sock, family, version, resource).map_err(|e| e.to_string())?;
        if vols.is_empty() {
            return Err(format!("resource {resource} is not configured in the kernel"));
        }
        if let Some(code) = fence_code(&vols) {
            return Ok((code, vols));
        }
        if late() {
            return Err(format!(
                "a disk is still UpToDate after {attempt} OUTDATE attempt(s) in {}: DRBD here still sees the \
                 connection",
                crate::time::fmt_duration(OUTDATE_BUDGET)
            ));
        }
        attempt += 1;
        for v in vols.iter().filter(|v| v.state.disk() > D_OUTDATED) {
            let req = DrbdRequest::outdate(family, version, v.minor, resource);
            let mut reply = None;
            sock.request("drbd outdate", &req, |m: &NlMsg<'_>| {
                reply = Some(Reply::parse(m.payload())?);
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            if attempt == 1 || attempt.is_multiple_of(8) {
                match reply {
                    Some(r) => log::info!(
                        "fence-peer: drbd {resource} volume {} (minor {}): OUTDATE (attempt {attempt}): {} ({})",
                        v.volume,
                        v.minor,
                        ret_code_text(r.ret_code),
                        r.ret_code
                    ),
                    None => log::warn!("fence-peer: drbd {resource}: no reply to OUTDATE"),
                }
            }
        }
        // Judge by the state the kernel reports next, not by ret_code: 8.4 answers
        // "nothing to do" to an OUTDATE while Connected (the state is sanitized back).
        let after = status_on(&mut sock, family, version, resource).map_err(|e| e.to_string())?;
        if let Some(code) = fence_code(&after) {
            return Ok((code, after));
        }
        std::thread::sleep(OUTDATE_RETRY);
    }
}

fn nl_err(e: NetlinkError) -> AgentError {
    match e.errno() {
        Some(errno) => AgentError::Sys { op: e.op().to_string(), errno },
        None => AgentError::Failed(e.to_string()),
    }
}

/// The `drbd` generic netlink family: (id, version), through the shared nlctrl lookup.
fn resolve_family(sock: &mut NlSocket, name: &str) -> Result<(u16, u8), NetlinkError> {
    crate::netlink::genl::resolve_family(sock, name).map(|f| (f.id, f.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(req: &impl Request) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let n = req.emit(&mut buf, 7, 0).unwrap();
        assert_eq!(n, req.buffer_len(), "buffer_len() equals what emit() writes");
        buf.truncate(n);
        buf
    }

    /// PRIMARY for minor 0 of "r0", family 0x1c: every byte.
    #[test]
    fn primary_bytes() {
        let b = emit(&DrbdRequest::primary(0x1c, 1, 0, "r0"));
        #[rustfmt::skip]
        let want: &[u8] = &[
            40, 0, 0, 0,   0x1c, 0,   0x05, 0,   7, 0, 0, 0,   0, 0, 0, 0, // nlmsghdr: REQUEST|ACK
            14, 1, 0, 0,                                                    // genlmsghdr: PRIMARY v1
            0, 0, 0, 0,   0, 0, 0, 0,                                       // drbd_genlmsghdr: minor 0
            12, 0, 2, 0x80,                                                    // CFG_CONTEXT | NLA_F_NESTED
            7, 0, 0x02, 0x40, b'r', b'0', 0, 0,                             // ctx_resource_name | MANDATORY
        ];
        assert_eq!(b, want);
    }

    /// OUTDATE (cmd 25) for minor 1 of "r0": every byte (accepted by 8.4.11 in the rig).
    #[test]
    fn outdate_bytes() {
        let b = emit(&DrbdRequest::outdate(0x1c, 1, 1, "r0"));
        #[rustfmt::skip]
        let want: &[u8] = &[
            40, 0, 0, 0,   0x1c, 0,   0x05, 0,   7, 0, 0, 0,   0, 0, 0, 0, // nlmsghdr: REQUEST|ACK
            25, 1, 0, 0,                                                    // genlmsghdr: OUTDATE v1
            1, 0, 0, 0,   0, 0, 0, 0,                                       // drbd_genlmsghdr: minor 1
            12, 0, 2, 0x80,                                                 // CFG_CONTEXT | NLA_F_NESTED
            7, 0, 0x02, 0x40, b'r', b'0', 0, 0,                             // ctx_resource_name | MANDATORY
        ];
        assert_eq!(b, want);
        // The kernel's answer to an OUTDATE while Connected: SS_NOTHING_TO_DO (state
        // sanitized back to UpToDate) or SS_CONNECTED_OUTDATES; both parse.
        let r = Reply::parse(&reply(CMD_OUTDATE, 1, SS_CONNECTED_OUTDATES, &[])).unwrap();
        assert!(!r.ok());
        assert_eq!((r.cmd, r.minor), (CMD_OUTDATE, 1));
        assert!(ret_code_text(r.ret_code).contains("Connected"));
    }

    fn vol(minor: u32, role: u32, conn: u32, disk: u32) -> Volume {
        Volume { minor, volume: minor, state: DrbdState(role | (conn << 4) | (disk << 9) | (6 << 13)) }
    }

    #[test]
    fn fence_codes() {
        use fence::*;
        let (pri, sec) = (1, 2);
        let wf = 8; // WFConnection
        assert_eq!(fence_code(&[]), Some(PEER_FAILED), "not configured here");
        assert_eq!(fence_code(&[vol(0, sec, wf, D_OUTDATED)]), Some(PEER_OUTDATED));
        assert_eq!(
            fence_code(&[vol(0, sec, wf, D_OUTDATED), vol(1, sec, wf, D_INCONSISTENT)]),
            Some(PEER_INCONSISTENT)
        );
        assert_eq!(fence_code(&[vol(0, sec, 0, D_DISKLESS)]), Some(PEER_INCONSISTENT));
        assert_eq!(fence_code(&[vol(0, sec, wf, D_OUTDATED), vol(1, pri, wf, D_UP_TO_DATE)]), Some(PEER_PRIMARY));
        // Still UpToDate after the request (DRBD ignores OUTDATE while Connected): not yet.
        assert_eq!(fence_code(&[vol(0, sec, C_CONNECTED, D_UP_TO_DATE)]), None);
        assert_eq!(fence_code(&[vol(0, sec, wf, D_CONSISTENT)]), None);
        assert_eq!(outdate_for_peer("a/b"), PEER_FAILED, "bad name");
        // No module on this machine: failed, never "unreachable".
        assert_eq!(outdate_for_peer("r0"), PEER_FAILED);
    }

    #[test]
    fn secondary_and_status_dump_bytes() {
        let b = emit(&DrbdRequest::secondary(0x1c, 1, 3, "data"));
        assert_eq!(b.get(16), Some(&CMD_SECONDARY));
        assert_eq!(b.get(20..24), Some(&3u32.to_ne_bytes()[..]));
        assert_eq!(b.len(), 16 + 4 + 8 + 4 + 4 + 8);
        let d = emit(&DrbdRequest::status_dump(0x1c, 1, "r0"));
        assert_eq!(d.get(6..8), Some(&0x0301u16.to_ne_bytes()[..]), "REQUEST|DUMP, no ACK");
        assert_eq!(d.get(16), Some(&CMD_GET_STATUS));
        assert_eq!(d.get(20..24), Some(&[0xff, 0xff, 0xff, 0xff][..]), "minor 0xFFFFFFFF: by name");
        let mut plain = DrbdRequest::status_dump(0x1c, 1, "r0");
        plain.mandatory = false;
        let p = emit(&plain);
        assert_eq!(p.get(34..36), Some(&2u16.to_ne_bytes()[..]), "bare ctx_resource_name");
        // The longest valid name fits the kernel's 128-byte field with its NUL.
        let long = "x".repeat(127);
        assert!(valid_resource_name(&long));
        assert!(!valid_resource_name(&"x".repeat(128)));
        assert!(!valid_resource_name("a/b"));
        assert!(!valid_resource_name(""));
    }

    fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&u16::try_from(4 + payload.len()).unwrap().to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn reply(cmd: u8, minor: u32, ret: i32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![cmd, 1, 0, 0];
        v.extend_from_slice(&minor.to_ne_bytes());
        v.extend_from_slice(&ret.to_ne_bytes());
        for a in attrs {
            v.extend_from_slice(a);
        }
        v
    }

    /// A GET_STATUS dump entry as 8.4.11 writes it: context with 0x4000 flags, a
    /// state_info nest with sib_reason and current_state.
    #[test]
    fn parses_status_reply() {
        // role Primary(1), peer Secondary(2), conn Connected(10), disk UpToDate(8), pdsk UpToDate(8)
        let st: u32 = 1 | (2 << 2) | (10 << 4) | (8 << 9) | (8 << 13);
        let ctx = [nla(0x4002, b"r0\0"), nla(0x4001, &0u32.to_ne_bytes())].concat();
        let si = [nla(0x4001, &3u32.to_ne_bytes()), nla(0x0002, &st.to_ne_bytes())].concat();
        let p = reply(CMD_GET_STATUS, 0, NO_ERROR, &[nla(2, &ctx), nla(8, &si), nla(4, &[])]);
        let r = Reply::parse(&p).unwrap();
        assert!(r.ok());
        assert_eq!((r.cmd, r.minor, r.volume), (CMD_GET_STATUS, 0, Some(0)));
        assert_eq!(r.resource.as_deref(), Some("r0"));
        let s = r.state.unwrap();
        assert_eq!((s.role(), s.peer(), s.conn(), s.disk(), s.pdsk()), (Role::Primary, Role::Secondary, 10, 8, 8));
        assert_eq!(s.to_string(), "ro:Primary/Secondary ds:UpToDate/UpToDate cs:Connected");
        let s = DrbdState(2 | (8 << 4) | (5 << 9) | (6 << 13) | (1 << 17));
        assert_eq!(s.to_string(), "ro:Secondary/Unknown ds:Outdated/DUnknown cs:WFConnection suspended");
    }

    #[test]
    fn parses_role_replies_and_errors() {
        let p = reply(CMD_PRIMARY, 0, SS_TWO_PRIMARIES, &[]);
        let r = Reply::parse(&p).unwrap();
        assert!(!r.ok());
        assert_eq!(r.ret_code, -1);
        assert!(ret_code_text(r.ret_code).contains("multiple primaries"));
        let info = nla(1, &nla(0x4001, b"unknown minor\0"));
        let r = Reply::parse(&reply(CMD_SECONDARY, 9, ERR_MINOR_INVALID, &[info])).unwrap();
        assert_eq!(r.info.as_deref(), Some("unknown minor"));
        assert!(Reply::parse(&reply(CMD_PRIMARY, 0, SS_NOTHING_TO_DO, &[])).unwrap().ok());
        assert!(Reply::parse(&reply(CMD_PRIMARY, 0, SS_SUCCESS, &[])).unwrap().ok());
        // Malformed: short headers, a truncated attribute.
        assert!(Reply::parse(&[14, 1, 0]).is_err());
        assert!(Reply::parse(&[14, 1, 0, 0, 0, 0, 0, 0]).is_err());
        let mut bad = reply(CMD_GET_STATUS, 0, NO_ERROR, &[]);
        bad.extend_from_slice(&[40, 0, 2, 0, 1]);
        assert!(Reply::parse(&bad).is_err());
    }

    #[test]
    fn promote_retries_only_while_the_peer_may_still_go() {
        assert!(promote_retries(SS_TWO_PRIMARIES));
        assert!(promote_retries(SS_PRIMARY_NOP), "the peer fenced, its outdate still on its way");
        assert!(ret_code_text(SS_PRIMARY_NOP).contains("not outdated"));
        for c in [SS_SUCCESS, SS_NOTHING_TO_DO, -2, SS_CONNECTED_OUTDATES, SS_DEVICE_IN_USE, -20, NO_ERROR] {
            assert!(!promote_retries(c), "{c}");
        }
    }

    #[test]
    fn runs_forked() {
        let a = DrbdAgent::new(&DrbdSpec { resource: "r0".into() }, "drbd::r0");
        assert_eq!(a.exec(Op::Start), Exec::Fork);
    }
}
