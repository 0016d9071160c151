//! A built-in IPMI v2.0 RMCP+ ("lanplus") client: power a node off, on or cycle it through
//! its BMC, and read the power state back, with no ipmitool installed.
//!
//! - [`packet`]: RMCP and session framing, IPMI messages, checksums, completion codes;
//! - [`crypto`]: RAKP codes, SIK/K1/K2, HMAC-SHA1-96 / HMAC-SHA256-128, AES-CBC-128;
//! - [`session`]: the handshake (Open Session, RAKP 1–4) and the session's packet
//!   protection, pure;
//! - [`client`]: the blocking UDP client: [`power`], [`power_status`].
//!
//! The client blocks (every receive bounded by a per-attempt timeout and the caller's
//! deadline): run it in a forked child or a command, never in the daemon's loop.
//! `docs/ipmi.md` describes the exchange and the error messages.

pub mod client;
pub mod crypto;
pub mod packet;
pub mod session;

use core::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;

use crate::config::key::{read_private, KeyError};

pub use client::{power, power_status};

/// The UDP port of RMCP.
pub const DEFAULT_PORT: u16 = 623;
/// IPMI v2.0 user names are at most 16 bytes.
pub const MAX_USER_LEN: usize = 16;
/// IPMI v2.0 passwords are at most 20 bytes.
pub const MAX_PASSWORD_LEN: usize = 20;

/// The RMCP+ cipher suites this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// 3: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Three,
    /// 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Seventeen,
}

impl CipherSuite {
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Three => 3,
            CipherSuite::Seventeen => 17,
        }
    }
    pub fn from_id(id: u8) -> Option<CipherSuite> {
        match id {
            3 => Some(CipherSuite::Three),
            17 => Some(CipherSuite::Seventeen),
            _ => None,
        }
    }
    /// Authentication (RAKP) algorithm number: 1 = HMAC-SHA1, 3 = HMAC-SHA256.
    pub fn auth_alg(self) -> u8 {
        match self {
            CipherSuite::Three => 1,
            CipherSuite::Seventeen => 3,
        }
    }
    /// Integrity algorithm number: 1 = HMAC-SHA1-96, 4 = HMAC-SHA256-128.
    pub fn integrity_alg(self) -> u8 {
        match self {
            CipherSuite::Three => 1,
            CipherSuite::Seventeen => 4,
        }
    }
    /// Confidentiality algorithm number: 1 = AES-CBC-128.
    pub fn conf_alg(self) -> u8 {
        1
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CipherSuite::Three => f.write_str("cipher suite 3 (HMAC-SHA1, AES-CBC-128)"),
            CipherSuite::Seventeen => f.write_str("cipher suite 17 (HMAC-SHA256, AES-CBC-128)"),
        }
    }
}

/// The session privilege the client asks for. Chassis Control needs OPERATOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Privilege {
    Operator = 3,
    Administrator = 4,
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Privilege::Operator => "OPERATOR",
            Privilege::Administrator => "ADMINISTRATOR",
        })
    }
}

/// What to do with the node's power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerAction {
    Off,
    On,
    /// Power off, then on (the BMC's own cycle; no effect on a node that is off).
    Cycle,
}

impl PowerAction {
    /// The Chassis Control data byte.
    pub fn control_byte(self) -> u8 {
        match self {
            PowerAction::Off => 0x00,
            PowerAction::On => 0x01,
            PowerAction::Cycle => 0x02,
        }
    }
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerAction::Off => "power off",
            PowerAction::On => "power on",
            PowerAction::Cycle => "power cycle",
        })
    }
}

/// The chassis power state as the BMC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerState {
    On,
    Off,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        })
    }
}

/// One BMC and how to log in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct IpmiTarget {
    pub addr: SocketAddr,
    pub user: String,
    pub password: Vec<u8>,
    pub cipher: CipherSuite,
    pub privilege: Privilege,
    /// How long to wait for each answer before sending again.
    pub attempt_timeout: Duration,
    /// How often each request is sent (the whole handshake is restarted that often).
    pub attempts: u32,
    /// Pause between two power state reads while waiting for the confirmation.
    pub poll_interval: Duration,
}

impl IpmiTarget {
    /// A target with the defaults: ADMINISTRATOR, 1 s per attempt, 3 attempts, 20 ms polls.
    pub fn new(addr: SocketAddr, user: &str, password: Vec<u8>, cipher: CipherSuite) -> IpmiTarget {
        IpmiTarget {
            addr,
            user: user.to_string(),
            password,
            cipher,
            privilege: Privilege::Administrator,
            attempt_timeout: Duration::from_secs(1),
            attempts: 3,
            poll_interval: Duration::from_millis(20),
        }
    }
}

impl fmt::Debug for IpmiTarget {
    /// Never shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpmiTarget")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("cipher", &self.cipher)
            .field("privilege", &self.privilege)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// The exchange a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Get Channel Authentication Capabilities.
    Capabilities,
    OpenSession,
    Rakp1,
    Rakp3,
    SetPrivilege,
    ChassisControl(PowerAction),
    ChassisStatus,
    CloseSession,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Capabilities => f.write_str("Get Channel Authentication Capabilities"),
            Step::OpenSession => f.write_str("RMCP+ Open Session"),
            Step::Rakp1 => f.write_str("RAKP 1"),
            Step::Rakp3 => f.write_str("RAKP 3"),
            Step::SetPrivilege => f.write_str("Set Session Privilege Level"),
            Step::ChassisControl(a) => write!(f, "Chassis Control ({a})"),
            Step::ChassisStatus => f.write_str("Get Chassis Status"),
            Step::CloseSession => f.write_str("Close Session"),
        }
    }
}

/// How the password was found to be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordCheck {
    /// RAKP 2's key exchange code did not verify with our password.
    Rakp2Code,
    /// The BMC refused our RAKP 3 code (RAKP 4 status "invalid integrity check value").
    Rakp3Refused,
    /// RAKP 4's integrity check value did not verify (a BMC key, KG, is set?).
    Rakp4Check,
}

/// Why an IPMI operation failed. Every message names the BMC; none shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpmiError {
    /// The target cannot be used as given (user or password too long).
    BadTarget {
        bmc: SocketAddr,
        what: &'static str,
    },
    /// No valid answer before the per-attempt timeouts ran out or the deadline passed.
    Timeout {
        bmc: SocketAddr,
        step: Step,
        attempts: u32,
    },
    /// A socket call failed (ECONNREFUSED: nothing listens on the BMC's port).
    Io {
        bmc: SocketAddr,
        step: Step,
        op: &'static str,
        errno: Errno,
    },
    /// RAKP 2 status "unauthorized name" (or "invalid name length").
    UnknownUser {
        bmc: SocketAddr,
        user: String,
        status: u8,
    },
    WrongPassword {
        bmc: SocketAddr,
        user: String,
        check: PasswordCheck,
    },
    /// The BMC does not offer the cipher suite (status of Open Session), or no RMCP+ at all
    /// (`status` None).
    CipherUnsupported {
        bmc: SocketAddr,
        cipher: CipherSuite,
        status: Option<u8>,
    },
    /// The privilege level was refused: an RMCP+ status (`step` Open Session / RAKP 1) or a
    /// completion code (Set Session Privilege Level, or Chassis Control with 0xD4).
    PrivilegeRefused {
        bmc: SocketAddr,
        user: String,
        privilege: Privilege,
        step: Step,
        code: u8,
    },
    /// Another RMCP+ status code in session setup.
    SessionRefused {
        bmc: SocketAddr,
        step: Step,
        status: u8,
    },
    /// A command answered with a completion code other than 0.
    Command {
        bmc: SocketAddr,
        step: Step,
        code: u8,
    },
    /// The BMC's answer could not be understood.
    Malformed {
        bmc: SocketAddr,
        step: Step,
        what: &'static str,
    },
    /// The command was accepted but the power state did not reach `wanted` by the deadline.
    NotConfirmed {
        bmc: SocketAddr,
        wanted: PowerState,
        last: Option<PowerState>,
    },
}

impl fmt::Display for IpmiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpmiError::BadTarget { bmc, what } => write!(f, "BMC {bmc}: {what}"),
            IpmiError::Timeout { bmc, step, attempts } => write!(
                f,
                "BMC {bmc}: no answer to {step} ({attempts} attempt{}): BMC down or unreachable",
                if *attempts == 1 { "" } else { "s" }
            ),
            IpmiError::Io { bmc, step, op, errno } => {
                if *errno == Errno::ECONNREFUSED {
                    write!(f, "BMC {bmc}: {step}: nothing listens on that port (ICMP port unreachable)")
                } else {
                    write!(f, "BMC {bmc}: {step}: {op}: {}", errno.desc())
                }
            }
            IpmiError::UnknownUser { bmc, user, status } => {
                write!(
                    f,
                    "BMC {bmc}: user '{user}' unknown (RAKP 2 status 0x{status:02x}: {})",
                    packet::rmcpp_status_text(*status)
                )
            }
            IpmiError::WrongPassword { bmc, user, check } => {
                let why = match check {
                    PasswordCheck::Rakp2Code => "RAKP 2 key exchange code did not verify",
                    PasswordCheck::Rakp3Refused => "the BMC refused the RAKP 3 key exchange code",
                    PasswordCheck::Rakp4Check => "RAKP 4 integrity check value did not verify; is a BMC key (KG) set?",
                };
                write!(f, "BMC {bmc}: wrong password for user '{user}' ({why})")
            }
            IpmiError::CipherUnsupported { bmc, cipher, status: Some(s) } => write!(
                f,
                "BMC {bmc}: {cipher} not supported by the BMC (Open Session status 0x{s:02x}: {})",
                packet::rmcpp_status_text(*s)
            ),
            IpmiError::CipherUnsupported { bmc, cipher, status: None } => {
                write!(f, "BMC {bmc}: does not offer IPMI v2.0 / RMCP+ (needed for {cipher})")
            }
            IpmiError::PrivilegeRefused { bmc, user, privilege, step, code } => {
                let text = match step {
                    Step::OpenSession | Step::Rakp1 => packet::rmcpp_status_text(*code),
                    _ => packet::completion_code_text(*code),
                };
                write!(f, "BMC {bmc}: privilege {privilege} refused for user '{user}' in {step} (0x{code:02x}: {text})")
            }
            IpmiError::SessionRefused { bmc, step, status } => write!(
                f,
                "BMC {bmc}: {step} refused with RMCP+ status 0x{status:02x}: {}",
                packet::rmcpp_status_text(*status)
            ),
            IpmiError::Command { bmc, step, code } => write!(
                f,
                "BMC {bmc}: {step} failed: completion code 0x{code:02x} ({})",
                packet::completion_code_text(*code)
            ),
            IpmiError::Malformed { bmc, step, what } => write!(f, "BMC {bmc}: malformed answer to {step}: {what}"),
            IpmiError::NotConfirmed { bmc, wanted, last } => match last {
                Some(s) => write!(f, "BMC {bmc}: power still {s}, not {wanted}, at the deadline"),
                None => write!(f, "BMC {bmc}: power state never read back before the deadline (wanted {wanted})"),
            },
        }
    }
}

impl std::error::Error for IpmiError {}

impl IpmiError {
    /// The BMC the error is about.
    pub fn bmc(&self) -> SocketAddr {
        match self {
            IpmiError::BadTarget { bmc, .. }
            | IpmiError::Timeout { bmc, .. }
            | IpmiError::Io { bmc, .. }
            | IpmiError::UnknownUser { bmc, .. }
            | IpmiError::WrongPassword { bmc, .. }
            | IpmiError::CipherUnsupported { bmc, .. }
            | IpmiError::PrivilegeRefused { bmc, .. }
            | IpmiError::SessionRefused { bmc, .. }
            | IpmiError::Command { bmc, .. }
            | IpmiError::Malformed { bmc, .. }
            | IpmiError::NotConfirmed { bmc, .. } => *bmc,
        }
    }
}

/// Reads a BMC password file with the rules of the cluster key (a regular file, owned by
/// us, no permission bits for group or others) and strips one trailing newline. The
/// password must be 1 to 20 bytes.
pub fn read_password(path: &Path) -> Result<Vec<u8>, KeyError> {
    let mut buf = read_private(path, 4096)?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if buf.is_empty() {
        return Err(KeyError::Empty(path.into()));
    }
    if buf.len() > MAX_PASSWORD_LEN {
        let n = buf.len();
        buf.fill(0);
        return Err(KeyError::Malformed {
            path: path.into(),
            reason: format!("an IPMI password is at most {MAX_PASSWORD_LEN} bytes, this one has {n}"),
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn messages_are_clear_and_hide_the_password() {
        let bmc: SocketAddr = "203.0.113.11:623".parse().unwrap();
        let e = IpmiError::UnknownUser { bmc, user: "admin".into(), status: 0x0d };
        assert_eq!(e.to_string(), "BMC 203.0.113.11:623: user 'admin' unknown (RAKP 2 status 0x0d: unauthorized name)");
        let e = IpmiError::WrongPassword { bmc, user: "admin".into(), check: PasswordCheck::Rakp2Code };
        assert_eq!(
            e.to_string(),
            "BMC 203.0.113.11:623: wrong password for user 'admin' (RAKP 2 key exchange code did not verify)"
        );
        let e = IpmiError::Timeout { bmc, step: Step::OpenSession, attempts: 3 };
        assert_eq!(
            e.to_string(),
            "BMC 203.0.113.11:623: no answer to RMCP+ Open Session (3 attempts): BMC down or unreachable"
        );
        let e = IpmiError::CipherUnsupported { bmc, cipher: CipherSuite::Seventeen, status: Some(4) };
        assert_eq!(
            e.to_string(),
            "BMC 203.0.113.11:623: cipher suite 17 (HMAC-SHA256, AES-CBC-128) not supported by the BMC \
             (Open Session status 0x04: invalid authentication algorithm)"
        );
        let e = IpmiError::Command { bmc, step: Step::ChassisControl(PowerAction::Off), code: 0xd5 };
        assert_eq!(
            e.to_string(),
            "BMC 203.0.113.11:623: Chassis Control (power off) failed: completion code 0xd5 \
             (command not supported in present state)"
        );
        let v6: SocketAddr = "[2001:db8::1]:623".parse().unwrap();
        let e = IpmiError::PrivilegeRefused {
            bmc: v6,
            user: "op".into(),
            privilege: Privilege::Administrator,
            step: Step::SetPrivilege,
            code: 0x81,
        };
        assert_eq!(
            e.to_string(),
            "BMC [2001:db8::1]:623: privilege ADMINISTRATOR refused for user 'op' in Set Session Privilege Level \
             (0x81: command-specific code)"
        );
        let t = IpmiTarget::new(bmc, "admin", b"hunter2".to_vec(), CipherSuite::Three);
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn cipher_ids() {
        assert_eq!(CipherSuite::from_id(3), Some(CipherSuite::Three));
        assert_eq!(CipherSuite::from_id(17).map(CipherSuite::id), Some(17));
        assert_eq!(CipherSuite::from_id(0), None);
    }

    #[test]
    fn password_file_rules() {
        let dir = TempDir::new("ipmi-pw");
        let p = dir.join("pw");
        let write = |text: &[u8], mode: u32| {
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(b"s3cret\n", 0o600);
        assert_eq!(read_password(&p).unwrap(), b"s3cret");
        write(b" two words \n\n", 0o400);
        assert_eq!(read_password(&p).unwrap(), b" two words \n", "only one newline is stripped");
        write(b"s3cret", 0o640);
        assert!(matches!(read_password(&p), Err(KeyError::Permissions { .. })));
        write(b"\n", 0o600);
        assert!(matches!(read_password(&p), Err(KeyError::Empty(_))));
        write(b"123456789012345678901\n", 0o600);
        let e = read_password(&p).unwrap_err();
        assert!(e.to_string().contains("at most 20 bytes, this one has 21"), "{e}");
        assert!(!e.to_string().contains("12345"));
        assert!(matches!(read_password(&dir.join("nope")), Err(KeyError::Missing(_))));
    }
}
