//! The control socket: a Unix stream socket, mode 0600, served to uid 0 only (SO_PEERCRED).
//!
//! Protocol (one request per connection): the client writes one line, e.g. `status`,
//! `status json`, `standby web`, `takeover all`, `outdate r0`; the daemon answers with a
//! first line holding the exit code the client should return, then the body, then closes.

pub mod client;
pub mod json;
pub mod server;

use core::fmt;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status {
        json: bool,
    },
    Standby(String),
    Takeover(String),
    /// DRBD fence-peer: ask the peer to outdate this DRBD resource.
    Outdate(String),
    /// `tandem fence NODE`: power NODE off by its stonith method; answered with the result.
    Fence(String),
    /// `tandem fenced NODE`: an operator confirms NODE is off.
    Fenced(String),
    /// What `cl_status` shows: nodes, links, resources, parameters (one fact per line).
    HbInfo,
    /// heartbeat's `hb_standby all|local|foreign|failback`.
    HbStandby(String),
    /// heartbeat's `hb_takeover all|local|foreign|failback`.
    HbTakeover(String),
}

impl Request {
    pub fn parse(line: &str) -> Result<Request, CtlError> {
        let mut w = line.split_ascii_whitespace();
        let verb = w.next().unwrap_or("");
        let arg = w.next();
        if w.next().is_some() {
            return Err(CtlError::BadRequest(line.to_string()));
        }
        match (verb, arg) {
            ("status", None) => Ok(Request::Status { json: false }),
            ("status", Some("json")) => Ok(Request::Status { json: true }),
            ("standby", a) => Ok(Request::Standby(a.unwrap_or("all").to_string())),
            ("takeover", a) => Ok(Request::Takeover(a.unwrap_or("all").to_string())),
            ("outdate", Some(r)) => Ok(Request::Outdate(r.to_string())),
            ("fence", Some(n)) => Ok(Request::Fence(n.to_string())),
            ("fenced", Some(n)) => Ok(Request::Fenced(n.to_string())),
            ("hbinfo", None) => Ok(Request::HbInfo),
            ("hb_standby", a) => Ok(Request::HbStandby(a.unwrap_or("all").to_string())),
            ("hb_takeover", a) => Ok(Request::HbTakeover(a.unwrap_or("all").to_string())),
            _ => Err(CtlError::BadRequest(line.to_string())),
        }
    }

    pub fn line(&self) -> String {
        match self {
            Request::Status { json: false } => "status\n".to_string(),
            Request::Status { json: true } => "status json\n".to_string(),
            Request::Standby(g) => format!("standby {g}\n"),
            Request::Takeover(g) => format!("takeover {g}\n"),
            Request::Outdate(r) => format!("outdate {r}\n"),
            Request::Fence(n) => format!("fence {n}\n"),
            Request::Fenced(n) => format!("fenced {n}\n"),
            Request::HbInfo => "hbinfo\n".to_string(),
            Request::HbStandby(s) => format!("hb_standby {s}\n"),
            Request::HbTakeover(s) => format!("hb_takeover {s}\n"),
        }
    }
}

#[derive(Debug)]
pub enum CtlError {
    /// No daemon listening on the socket (ENOENT, ECONNREFUSED).
    NotRunning {
        path: String,
        errno: nix::errno::Errno,
    },
    Io {
        op: &'static str,
        errno: nix::errno::Errno,
    },
    Timeout,
    BadRequest(String),
    BadReply,
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::NotRunning { path, errno } => {
                write!(f, "tandem is not running (no answer on {path}: {})", errno.desc())
            }
            CtlError::Io { op, errno } => write!(f, "{op}: {}", errno.desc()),
            CtlError::Timeout => write!(f, "the daemon did not answer in time"),
            CtlError::BadRequest(l) => write!(f, "bad request: {l:?}"),
            CtlError::BadReply => write!(f, "malformed reply from the daemon"),
        }
    }
}

impl std::error::Error for CtlError {}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn request_round_trip() {
        for r in [
            Request::Status { json: false },
            Request::Status { json: true },
            Request::Standby("all".into()),
            Request::Takeover("web".into()),
            Request::Outdate("r0".into()),
            Request::Fence("beta".into()),
            Request::Fenced("beta".into()),
            Request::HbInfo,
            Request::HbStandby("failback".into()),
            Request::HbTakeover("all".into()),
        ] {
            assert_eq!(Request::parse(r.line().trim_end()).unwrap(), r);
        }
        assert_eq!(Request::parse("standby").unwrap(), Request::Standby("all".into()));
        assert!(Request::parse("reboot now").is_err());
        assert!(Request::parse("fence").is_err());
        assert!(Request::parse("status json extra").is_err());
    }
}
