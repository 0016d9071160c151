//! The blocking RMCP+ client over a UDP socket.
//!
//! Each request waits at most `attempt_timeout` (and never past the caller's deadline) for
//! its answer and is sent at most `attempts` times. An IPMI command is retransmitted as a
//! new packet (new session sequence number, same IPMI request sequence number, so a late
//! answer to an earlier copy still matches). Session setup cannot resume half-way (a BMC
//! ignores a second RAKP 1 for the same session), so a lost setup message restarts the whole
//! handshake with a new session id and random number, up to `attempts` times.
//!
//! Blocking: for a forked child or a command line tool, never for the daemon's loop.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::packet::{self, cmd, netfn, AuthCaps, Malformed, Request, Response};
use super::session::{Handshake, Refusal, Session};
use super::{IpmiError, IpmiTarget, PasswordCheck, PowerAction, PowerState, Privilege, Step, MAX_USER_LEN};

/// Direction of a traced datagram: `'>'` to the BMC, `'<'` from it.
pub type Trace = Box<dyn FnMut(char, &[u8])>;

/// How one send-and-wait ended without an accepted answer.
enum Miss {
    TimedOut,
    Errno(&'static str, Errno),
}

struct Link {
    sock: UdpSocket,
    bmc: SocketAddr,
    rx: Vec<u8>,
    trace: Option<Trace>,
}

fn errno_of(e: &std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

impl Link {
    fn open(bmc: SocketAddr) -> Result<Link, IpmiError> {
        let local: SocketAddr = match bmc {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let io = |op| move |e: std::io::Error| IpmiError::Io { bmc, step: Step::Capabilities, op, errno: errno_of(&e) };
        let sock = UdpSocket::bind(local).map_err(io("bind"))?;
        // Connected: only the BMC's datagrams arrive, and ICMP errors are reported.
        sock.connect(bmc).map_err(io("connect"))?;
        Ok(Link { sock, bmc, rx: vec![0; 2048], trace: None })
    }

    /// Sends `pkt` once, then hands every datagram that arrives before `until` to
    /// `accept` until it returns an answer or an error.
    fn round<R>(
        &mut self,
        step: Step,
        pkt: &[u8],
        until: Instant,
        mut accept: impl FnMut(&[u8]) -> Result<Option<R>, IpmiError>,
    ) -> Result<Result<R, Miss>, IpmiError> {
        if let Some(t) = self.trace.as_mut() {
            t('>', pkt);
        }
        match self.sock.send(pkt) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Ok(Err(Miss::Errno("send", errno_of(&e)))),
        }
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(Err(Miss::TimedOut));
            }
            // A zero timeout would mean "block forever".
            let wait = (until - now).max(Duration::from_micros(100));
            self.sock.set_read_timeout(Some(wait)).map_err(|e| IpmiError::Io {
                bmc: self.bmc,
                step,
                op: "setsockopt",
                errno: errno_of(&e),
            })?;
            let n = match self.sock.recv(&mut self.rx) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Ok(Err(Miss::Errno("recv", errno_of(&e)))),
            };
            let d = self.rx.get(..n).unwrap_or(&[]);
            if let Some(t) = self.trace.as_mut() {
                t('<', d);
            }
            if let Some(r) = accept(d)? {
                return Ok(Ok(r));
            }
        }
    }
}

/// Random bytes for ids, RAKP random numbers and IVs.
fn random<const N: usize>(bmc: SocketAddr, step: Step) -> Result<[u8; N], IpmiError> {
    let mut b = [0u8; N];
    crate::sys::random::getrandom(&mut b).map_err(|errno| IpmiError::Io { bmc, step, op: "getrandom", errno })?;
    Ok(b)
}

/// An open RMCP+ session with one BMC. Dropping it sends Close Session (without waiting).
pub struct Client<'a> {
    target: &'a IpmiTarget,
    deadline: Instant,
    link: Link,
    session: Option<Session>,
    rq_seq: u8,
    out: Vec<u8>,
}

impl<'a> Client<'a> {
    /// Opens a session: Get Channel Authentication Capabilities, Open Session, RAKP 1–4,
    /// Set Session Privilege Level.
    pub fn connect(target: &'a IpmiTarget, deadline: Instant) -> Result<Client<'a>, IpmiError> {
        Client::connect_traced(target, deadline, None)
    }

    /// [`Client::connect`], handing every datagram sent and received to `trace`.
    pub fn connect_traced(
        target: &'a IpmiTarget,
        deadline: Instant,
        trace: Option<Trace>,
    ) -> Result<Client<'a>, IpmiError> {
        let bmc = target.addr;
        if target.user.len() > MAX_USER_LEN {
            return Err(IpmiError::BadTarget { bmc, what: "user name longer than 16 bytes" });
        }
        if target.password.len() > super::MAX_PASSWORD_LEN {
            return Err(IpmiError::BadTarget { bmc, what: "password longer than 20 bytes" });
        }
        let mut link = Link::open(bmc)?;
        link.trace = trace;
        let mut c = Client { target, deadline, link, session: None, rq_seq: 0, out: Vec::with_capacity(128) };
        c.capabilities()?;
        c.handshake()?;
        c.set_privilege()?;
        Ok(c)
    }

    fn attempt_until(&self) -> Instant {
        let a = Instant::now() + self.target.attempt_timeout;
        a.min(self.deadline)
    }

    fn attempts(&self) -> u32 {
        self.target.attempts.max(1)
    }

    fn fail(&self, step: Step, attempts: u32, last: Option<(&'static str, Errno)>) -> IpmiError {
        match last {
            Some((op, errno)) => IpmiError::Io { bmc: self.target.addr, step, op, errno },
            None => IpmiError::Timeout { bmc: self.target.addr, step, attempts },
        }
    }

    fn malformed(&self, step: Step, m: Malformed) -> IpmiError {
        IpmiError::Malformed { bmc: self.target.addr, step, what: m.0 }
    }

    fn capabilities(&mut self) -> Result<(), IpmiError> {
        let step = Step::Capabilities;
        let bmc = self.target.addr;
        let data = [0x8e, self.target.privilege as u8]; // bit 7: IPMI v2.0 data; channel 0xE: this one
        let req = Request { netfn: netfn::APP, cmd: cmd::GET_CHANNEL_AUTH_CAPS, rq_seq: 0, data: &data };
        let mut msg = Vec::with_capacity(16);
        req.emit(&mut msg);
        packet::emit_v15(&msg, &mut self.out).map_err(|m| self.malformed(step, m))?;
        let pkt = self.out.clone();
        let mut last = None;
        for attempt in 1..=self.attempts() {
            if Instant::now() >= self.deadline {
                return Err(self.fail(step, attempt - 1, last));
            }
            let until = self.attempt_until();
            let got = self.link.round(step, &pkt, until, |d| {
                let Ok(p) = packet::Packet::new_checked(d) else { return Ok(None) };
                if p.is_v2() || p.session_id() != 0 {
                    return Ok(None);
                }
                let Ok(r) = Response::new_checked(p.payload()) else { return Ok(None) };
                if !r.answers(&req) {
                    return Ok(None);
                }
                if r.completion_code() != 0 {
                    // Some BMCs refuse the v2.0 bit; Open Session will tell.
                    return Ok(Some(None));
                }
                AuthCaps::parse(r.data()).map(|c| Some(Some(c))).map_err(|m| IpmiError::Malformed {
                    bmc,
                    step,
                    what: m.0,
                })
            })?;
            match got {
                Ok(Some(caps)) if !caps.rmcp_plus() => {
                    return Err(IpmiError::CipherUnsupported { bmc, cipher: self.target.cipher, status: None })
                }
                Ok(_) => return Ok(()),
                Err(Miss::TimedOut) => last = None,
                Err(Miss::Errno(op, e)) => last = Some((op, e)),
            }
        }
        Err(self.fail(step, self.attempts(), last))
    }

    fn handshake(&mut self) -> Result<(), IpmiError> {
        let t = self.target;
        let bmc = t.addr;
        let mut step = Step::OpenSession;
        let mut last = None;
        for attempt in 1..=self.attempts() {
            if Instant::now() >= self.deadline {
                return Err(self.fail(step, attempt - 1, last));
            }
            let sid = u32::from_le_bytes(random::<4>(bmc, Step::OpenSession)?).max(1);
            let rm = random::<16>(bmc, Step::Rakp1)?;
            let mut hs = Handshake::new(t.cipher, t.privilege, t.user.as_bytes(), &t.password, attempt as u8, sid, rm);

            step = Step::OpenSession;
            hs.open_request(&mut self.out).map_err(|m| self.malformed(step, m))?;
            let pkt = self.out.clone();
            let until = self.attempt_until();
            let r = self.link.round(step, &pkt, until, |d| match hs.on_open_response(d) {
                Ok(()) => Ok(Some(())),
                Err(Refusal::NotOurs) | Err(Refusal::Malformed(_)) => Ok(None),
                Err(Refusal::Status(s)) => Err(open_status_error(t, s)),
                Err(_) => Err(IpmiError::Malformed { bmc, step, what: "Open Session Response names other algorithms" }),
            })?;
            match r {
                Ok(()) => {}
                Err(Miss::TimedOut) => {
                    last = None;
                    continue;
                }
                Err(Miss::Errno(op, e)) => {
                    last = Some((op, e));
                    continue;
                }
            }

            step = Step::Rakp1;
            hs.rakp1(&mut self.out).map_err(|m| self.malformed(step, m))?;
            let pkt = self.out.clone();
            let until = self.attempt_until();
            let r = self.link.round(step, &pkt, until, |d| match hs.on_rakp2(d) {
                Ok(()) => Ok(Some(true)),
                Err(Refusal::NotOurs) | Err(Refusal::Malformed(_)) => Ok(None),
                Err(Refusal::Status(s)) => Err(rakp2_status_error(t, s)),
                Err(_) => Ok(Some(false)), // the code did not verify
            })?;
            match r {
                Ok(true) => {}
                Ok(false) => {
                    // Tell the BMC to drop the half-open session, then report.
                    if hs.rakp3(0x0f, &mut self.out).is_ok() {
                        let _ = self.link.sock.send(&self.out);
                    }
                    return Err(IpmiError::WrongPassword {
                        bmc,
                        user: t.user.clone(),
                        check: PasswordCheck::Rakp2Code,
                    });
                }
                Err(Miss::TimedOut) => {
                    last = None;
                    continue;
                }
                Err(Miss::Errno(op, e)) => {
                    last = Some((op, e));
                    continue;
                }
            }

            step = Step::Rakp3;
            hs.rakp3(0, &mut self.out).map_err(|m| self.malformed(step, m))?;
            let pkt = self.out.clone();
            let until = self.attempt_until();
            let r = self.link.round(step, &pkt, until, |d| match hs.on_rakp4(d) {
                Ok(s) => Ok(Some(s)),
                Err(Refusal::NotOurs) | Err(Refusal::Malformed(_)) => Ok(None),
                Err(Refusal::Status(0x0f)) => {
                    Err(IpmiError::WrongPassword { bmc, user: t.user.clone(), check: PasswordCheck::Rakp3Refused })
                }
                Err(Refusal::Status(s)) => Err(IpmiError::SessionRefused { bmc, step: Step::Rakp3, status: s }),
                Err(_) => Err(IpmiError::WrongPassword { bmc, user: t.user.clone(), check: PasswordCheck::Rakp4Check }),
            })?;
            match r {
                Ok(s) => {
                    self.session = Some(s);
                    return Ok(());
                }
                Err(Miss::TimedOut) => last = None,
                Err(Miss::Errno(op, e)) => last = Some((op, e)),
            }
        }
        Err(self.fail(step, self.attempts(), last))
    }

    /// Sends one IPMI command in the session (retransmitting) and returns its completion
    /// code and data.
    fn command(&mut self, step: Step, netfn: u8, command: u8, data: &[u8]) -> Result<(u8, Vec<u8>), IpmiError> {
        let bmc = self.target.addr;
        self.rq_seq = (self.rq_seq + 1) & 0x3f;
        let req = Request { netfn, cmd: command, rq_seq: self.rq_seq, data };
        let mut msg = Vec::with_capacity(req.buffer_len());
        req.emit(&mut msg);
        let mut last = None;
        for attempt in 1..=self.attempts() {
            if Instant::now() >= self.deadline {
                return Err(self.fail(step, attempt - 1, last));
            }
            let iv = random::<16>(bmc, step)?;
            let Some(session) = self.session.as_mut() else {
                return Err(IpmiError::Malformed { bmc, step, what: "no session" });
            };
            session.wrap(&msg, iv, &mut self.out).map_err(|m| IpmiError::Malformed { bmc, step, what: m.0 })?;
            let pkt = self.out.clone();
            let until = self.attempt_until();
            let session = &mut self.session;
            let r = self.link.round(step, &pkt, until, |d| {
                let Some(s) = session.as_mut() else { return Ok(None) };
                // Anything that does not verify is not from our BMC's session: ignore it.
                let Ok(plain) = s.unwrap(d) else { return Ok(None) };
                let Ok(resp) = Response::new_checked(&plain[..]) else {
                    return Err(IpmiError::Malformed { bmc, step, what: "IPMI response checksum or length" });
                };
                if !resp.answers(&req) {
                    return Ok(None);
                }
                Ok(Some((resp.completion_code(), resp.data().to_vec())))
            })?;
            match r {
                Ok(answer) => return Ok(answer),
                Err(Miss::TimedOut) => last = None,
                Err(Miss::Errno(op, e)) => last = Some((op, e)),
            }
        }
        Err(self.fail(step, self.attempts(), last))
    }

    fn set_privilege(&mut self) -> Result<(), IpmiError> {
        let t = self.target;
        let step = Step::SetPrivilege;
        let (cc, _) = self.command(step, netfn::APP, cmd::SET_SESSION_PRIVILEGE, &[t.privilege as u8])?;
        match cc {
            0 => Ok(()),
            0x80 | 0x81 | 0xd4 => Err(IpmiError::PrivilegeRefused {
                bmc: t.addr,
                user: t.user.clone(),
                privilege: t.privilege,
                step,
                code: cc,
            }),
            _ => Err(IpmiError::Command { bmc: t.addr, step, code: cc }),
        }
    }

    /// Chassis Control: power off, on or cycle.
    pub fn chassis_control(&mut self, action: PowerAction) -> Result<(), IpmiError> {
        let t = self.target;
        let step = Step::ChassisControl(action);
        let (cc, _) = self.command(step, netfn::CHASSIS, cmd::CHASSIS_CONTROL, &[action.control_byte()])?;
        match cc {
            0 => Ok(()),
            0xd4 => Err(IpmiError::PrivilegeRefused {
                bmc: t.addr,
                user: t.user.clone(),
                privilege: Privilege::Operator,
                step,
                code: cc,
            }),
            _ => Err(IpmiError::Command { bmc: t.addr, step, code: cc }),
        }
    }

    /// Get Chassis Status: the power state.
    pub fn chassis_power(&mut self) -> Result<PowerState, IpmiError> {
        let step = Step::ChassisStatus;
        let bmc = self.target.addr;
        let (cc, data) = self.command(step, netfn::CHASSIS, cmd::GET_CHASSIS_STATUS, &[])?;
        if cc != 0 {
            return Err(IpmiError::Command { bmc, step, code: cc });
        }
        let on = packet::parse_chassis_power(&data).map_err(|m| self.malformed(step, m))?;
        Ok(if on { PowerState::On } else { PowerState::Off })
    }

    /// Close Session, waiting (one attempt, bounded by the deadline) for the answer.
    pub fn close(mut self) -> Result<(), IpmiError> {
        let step = Step::CloseSession;
        let Some(sid) = self.session.as_ref().map(|s| s.bmc_sid) else { return Ok(()) };
        let r = self.command_once(step, &sid.to_le_bytes());
        self.session = None;
        match r? {
            0 => Ok(()),
            cc => Err(IpmiError::Command { bmc: self.target.addr, step, code: cc }),
        }
    }

    fn command_once(&mut self, step: Step, data: &[u8]) -> Result<u8, IpmiError> {
        let bmc = self.target.addr;
        self.rq_seq = (self.rq_seq + 1) & 0x3f;
        let req = Request { netfn: netfn::APP, cmd: cmd::CLOSE_SESSION, rq_seq: self.rq_seq, data };
        let mut msg = Vec::with_capacity(req.buffer_len());
        req.emit(&mut msg);
        let iv = random::<16>(bmc, step)?;
        let Some(session) = self.session.as_mut() else { return Ok(0) };
        session.wrap(&msg, iv, &mut self.out).map_err(|m| IpmiError::Malformed { bmc, step, what: m.0 })?;
        let pkt = self.out.clone();
        let until = self.attempt_until();
        let session = &mut self.session;
        match self.link.round(step, &pkt, until, |d| {
            let Some(s) = session.as_mut() else { return Ok(None) };
            let Ok(plain) = s.unwrap(d) else { return Ok(None) };
            match Response::new_checked(&plain[..]) {
                Ok(r) if r.answers(&req) => Ok(Some(r.completion_code())),
                _ => Ok(None),
            }
        })? {
            Ok(cc) => Ok(cc),
            Err(Miss::TimedOut) => Err(IpmiError::Timeout { bmc, step, attempts: 1 }),
            Err(Miss::Errno(op, errno)) => Err(IpmiError::Io { bmc, step, op, errno }),
        }
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        // Best effort: free the BMC's session slot. One packet, no wait.
        if let Some(s) = self.session.as_mut() {
            let sid = s.bmc_sid.to_le_bytes();
            self.rq_seq = (self.rq_seq + 1) & 0x3f;
            let req = Request { netfn: netfn::APP, cmd: cmd::CLOSE_SESSION, rq_seq: self.rq_seq, data: &sid };
            let mut msg = Vec::with_capacity(req.buffer_len());
            req.emit(&mut msg);
            let mut iv = [0u8; 16];
            if crate::sys::random::getrandom(&mut iv).is_ok() && s.wrap(&msg, iv, &mut self.out).is_ok() {
                let _ = self.link.sock.send(&self.out);
            }
        }
    }
}

fn open_status_error(t: &IpmiTarget, status: u8) -> IpmiError {
    let bmc = t.addr;
    match status {
        0x04 | 0x05 | 0x06 | 0x07 | 0x10 | 0x11 => {
            IpmiError::CipherUnsupported { bmc, cipher: t.cipher, status: Some(status) }
        }
        0x09 | 0x0a => IpmiError::PrivilegeRefused {
            bmc,
            user: t.user.clone(),
            privilege: t.privilege,
            step: Step::OpenSession,
            code: status,
        },
        _ => IpmiError::SessionRefused { bmc, step: Step::OpenSession, status },
    }
}

fn rakp2_status_error(t: &IpmiTarget, status: u8) -> IpmiError {
    let bmc = t.addr;
    match status {
        0x0c | 0x0d => IpmiError::UnknownUser { bmc, user: t.user.clone(), status },
        0x09 | 0x0a => IpmiError::PrivilegeRefused {
            bmc,
            user: t.user.clone(),
            privilege: t.privilege,
            step: Step::Rakp1,
            code: status,
        },
        _ => IpmiError::SessionRefused { bmc, step: Step::Rakp1, status },
    }
}

/// Powers the node off, on or cycles it, then reads the power state back until it is
/// confirmed (off for [`PowerAction::Off`], on for [`PowerAction::On`]) or the deadline
/// passes. For [`PowerAction::Cycle`] the BMC's acceptance is the confirmation and the
/// state read right after it is returned. The session is closed before returning.
pub fn power(target: &IpmiTarget, action: PowerAction, deadline: Instant) -> Result<PowerState, IpmiError> {
    let mut c = Client::connect(target, deadline)?;
    c.chassis_control(action)?;
    let wanted = match action {
        PowerAction::Off => Some(PowerState::Off),
        PowerAction::On => Some(PowerState::On),
        PowerAction::Cycle => None,
    };
    let mut last = None;
    let state = loop {
        match c.chassis_power() {
            Ok(s) if wanted.is_none_or(|w| w == s) => break s,
            Ok(s) => last = Some(s),
            // The command was accepted; a status read that times out at the deadline
            // means "not confirmed".
            Err(IpmiError::Timeout { .. }) if Instant::now() >= deadline => {
                return Err(IpmiError::NotConfirmed {
                    bmc: target.addr,
                    wanted: wanted.unwrap_or(PowerState::On),
                    last,
                })
            }
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(IpmiError::NotConfirmed { bmc: target.addr, wanted: wanted.unwrap_or(PowerState::On), last });
        }
        std::thread::sleep(target.poll_interval.min(deadline - now));
    };
    let _ = c.close();
    Ok(state)
}

/// Reads the chassis power state (one session: set up, Get Chassis Status, close).
pub fn power_status(target: &IpmiTarget, deadline: Instant) -> Result<PowerState, IpmiError> {
    let mut c = Client::connect(target, deadline)?;
    let s = c.chassis_power()?;
    let _ = c.close();
    Ok(s)
}
