//! A small RMCP+ BMC of our own, for what ipmi_sim lacks: cipher suite 17
//! (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128). It answers Get Channel
//! Authentication Capabilities, Open Session, RAKP 1/3, Set Session Privilege Level, Get
//! Chassis Status, Chassis Control and Close Session, with a power flag for a chassis.
//!
//! It is built on the client's own codec, so on its own it proves nothing about that
//! codec: the tests first drive it with `ipmitool -I lanplus -C 17`, an independent
//! implementation; only when ipmitool accepts its RAKP 2 and RAKP 4 and exchanges
//! encrypted, authenticated commands with it do our SHA256 codes and keys agree with
//! ipmitool's. Every datagram is recorded (`exchange()`), to keep as a fixture.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem::fence::ipmi::crypto::{Keys, RakpInputs};
use tandem::fence::ipmi::packet::{self, payload, Packet};
use tandem::fence::ipmi::session::Session;
use tandem::fence::ipmi::CipherSuite;

/// What the BMC saw and did.
#[derive(Debug, Default)]
pub struct BmcState {
    pub power_on: bool,
    /// (on, when) for every Chassis Control that changed or set the power.
    pub log: Vec<(bool, Instant)>,
    /// Sessions that completed RAKP 3.
    pub sessions: u32,
    pub closed: u32,
    /// Every datagram: '>' to the BMC, '<' from it.
    pub exchange: Vec<(char, Vec<u8>)>,
    /// Requests to ignore, as if lost: (payload type, IPMI command for payload type 0,
    /// how many more).
    pub lose: Vec<(u8, Option<u8>, u32)>,
    /// Requests ignored so far.
    pub lost: u32,
}

impl BmcState {
    /// True (and counted) when this request is to be lost.
    fn losing(&mut self, payload_type: u8, cmd: Option<u8>) -> bool {
        let hit = self.lose.iter_mut().find(|(p, c, n)| *p == payload_type && *c == cmd && *n > 0);
        match hit {
            Some(rule) => {
                rule.2 -= 1;
                self.lost += 1;
                true
            }
            None => false,
        }
    }
}

pub struct RmcpBmc {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<BmcState>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

struct Pending {
    suite: CipherSuite,
    console_sid: u32,
    bmc_sid: u32,
    tag: u8,
    rm: [u8; 16],
    rc: [u8; 16],
    role: u8,
    user: Vec<u8>,
}

struct Server {
    user: Vec<u8>,
    password: Vec<u8>,
    suites: Vec<CipherSuite>,
    state: Arc<Mutex<BmcState>>,
    next_sid: u32,
    pending: Option<Pending>,
    session: Option<Session>,
    counter: u8,
}

fn le32(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(d[at..at + 4].try_into().unwrap())
}

/// An IPMI response to request message `req`.
fn response(req: &[u8], cc: u8, data: &[u8]) -> Vec<u8> {
    let netfn = req[1] >> 2;
    let mut m = vec![req[3], ((netfn | 1) << 2) | (req[1] & 3)];
    m.push(packet::checksum(&m));
    m.extend_from_slice(&[req[0], req[4], req[5], cc]);
    m.extend_from_slice(data);
    let sum = packet::checksum(&m[3..]);
    m.push(sum);
    m
}

impl Server {
    fn random16(&mut self) -> [u8; 16] {
        // Not secret in a test BMC, but different every time.
        self.counter = self.counter.wrapping_add(1);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        let mut r = [self.counter; 16];
        r[..8].copy_from_slice(&t.to_le_bytes());
        r[8..12].copy_from_slice(&self.next_sid.to_le_bytes());
        r
    }

    fn handle(&mut self, d: &[u8]) -> Option<Vec<u8>> {
        let p = Packet::new_checked(d).ok()?;
        if !p.is_v2() {
            let msg = p.payload();
            if msg.len() < 7 || msg[5] != packet::cmd::GET_CHANNEL_AUTH_CAPS {
                return None;
            }
            // Channel 1; IPMI v2.0 data; non-null user names; RMCP+ supported.
            let r = response(msg, 0, &[0x01, 0x80 | 0x04, 0x04, 0x02, 0, 0, 0, 0]);
            let mut out = Vec::new();
            packet::emit_v15(&r, &mut out).ok()?;
            return Some(out);
        }
        let body = p.payload().to_vec();
        let mut out = Vec::new();
        if p.payload_type() != payload::IPMI && self.state.lock().unwrap().losing(p.payload_type(), None) {
            return None;
        }
        match p.payload_type() {
            payload::OPEN_SESSION_REQUEST if body.len() >= 32 => {
                let (tag, priv_, console_sid) = (body[0], body[1] & 0xf, le32(&body, 4));
                let algs = (body[12] & 0x3f, body[20] & 0x3f, body[28] & 0x3f);
                let suite =
                    self.suites.iter().copied().find(|s| (s.auth_alg(), s.integrity_alg(), s.conf_alg()) == algs);
                let Some(suite) = suite else {
                    packet::emit_v2_plain(payload::OPEN_SESSION_RESPONSE, 0, 0, &[tag, 0x11], &mut out).ok()?;
                    return Some(out);
                };
                self.next_sid = self.next_sid.wrapping_add(2).max(2);
                let bmc_sid = self.next_sid;
                let mut r = vec![tag, 0, if priv_ == 0 { 4 } else { priv_ }, 0];
                r.extend_from_slice(&console_sid.to_le_bytes());
                r.extend_from_slice(&bmc_sid.to_le_bytes());
                for (i, alg) in [algs.0, algs.1, algs.2].into_iter().enumerate() {
                    r.extend_from_slice(&[i as u8, 0, 0, 8, alg, 0, 0, 0]);
                }
                self.pending =
                    Some(Pending { suite, console_sid, bmc_sid, tag, rm: [0; 16], rc: [0; 16], role: 0, user: vec![] });
                packet::emit_v2_plain(payload::OPEN_SESSION_RESPONSE, 0, 0, &r, &mut out).ok()?;
            }
            payload::RAKP1 if body.len() >= 28 => {
                let rc = self.random16();
                let p = self.pending.as_mut().filter(|p| p.bmc_sid == le32(&body, 4))?;
                p.tag = body[0];
                p.rm.copy_from_slice(&body[8..24]);
                p.role = body[24];
                let ulen = usize::from(body[27]);
                p.user = body.get(28..28 + ulen)?.to_vec();
                p.rc = rc;
                let mut r = vec![p.tag, 0, 0, 0];
                r.extend_from_slice(&p.console_sid.to_le_bytes());
                if p.user != self.user {
                    r[1] = 0x0d;
                    self.pending = None;
                } else {
                    r.extend_from_slice(&p.rc);
                    r.extend_from_slice(&GUID_BYTES);
                    let inputs = inputs(p, &self.password);
                    r.extend_from_slice(&inputs.rakp2_code());
                }
                packet::emit_v2_plain(payload::RAKP2, 0, 0, &r, &mut out).ok()?;
            }
            payload::RAKP3 if body.len() >= 8 => {
                let p = self.pending.take().filter(|p| p.bmc_sid == le32(&body, 4))?;
                if body[1] != 0 {
                    return None; // the console gave up
                }
                let inputs = inputs(&p, &self.password);
                let mut r = vec![body[0], 0, 0, 0];
                r.extend_from_slice(&p.console_sid.to_le_bytes());
                if body[8..] != inputs.rakp3_code()[..] {
                    r[1] = 0x0f;
                } else {
                    let sik = inputs.sik();
                    r.extend_from_slice(&inputs.rakp4_icv(&sik));
                    // The BMC's view: packets to it carry its session id.
                    self.session = Some(Session::new(p.suite, p.bmc_sid, p.console_sid, Keys::derive(p.suite, sik)));
                    self.state.lock().unwrap().sessions += 1;
                }
                packet::emit_v2_plain(payload::RAKP4, 0, 0, &r, &mut out).ok()?;
            }
            payload::IPMI => {
                let iv = self.random16();
                let s = self.session.as_mut()?;
                let msg = s.unwrap(d).ok()?;
                if msg.len() < 7 {
                    return None;
                }
                let (netfn, cmd, data) = (msg[1] >> 2, msg[5], &msg[6..msg.len() - 1]);
                if self.state.lock().unwrap().losing(payload::IPMI, Some(cmd)) {
                    return None;
                }
                let mut close = false;
                let r = {
                    let mut st = self.state.lock().unwrap();
                    match (netfn, cmd) {
                        (packet::netfn::APP, packet::cmd::SET_SESSION_PRIVILEGE) => {
                            response(&msg, 0, &[data.first().copied().unwrap_or(4)])
                        }
                        (packet::netfn::APP, packet::cmd::CLOSE_SESSION) => {
                            close = true;
                            st.closed += 1;
                            response(&msg, 0, &[])
                        }
                        (packet::netfn::CHASSIS, packet::cmd::GET_CHASSIS_STATUS) => {
                            response(&msg, 0, &[u8::from(st.power_on), 0, 0x40])
                        }
                        (packet::netfn::CHASSIS, packet::cmd::CHASSIS_CONTROL) => match data.first() {
                            Some(0) | Some(1) => {
                                st.power_on = data[0] == 1;
                                let on = st.power_on;
                                st.log.push((on, Instant::now()));
                                response(&msg, 0, &[])
                            }
                            Some(2) if st.power_on => {
                                st.log.push((false, Instant::now()));
                                st.log.push((true, Instant::now()));
                                response(&msg, 0, &[])
                            }
                            Some(2) => response(&msg, 0xd5, &[]),
                            _ => response(&msg, 0xcc, &[]),
                        },
                        _ => response(&msg, 0xc1, &[]),
                    }
                };
                s.wrap(&r, iv, &mut out).ok()?;
                if close {
                    self.session = None;
                }
            }
            _ => return None,
        }
        Some(out)
    }
}

fn inputs<'a>(p: &'a Pending, password: &'a [u8]) -> RakpInputs<'a> {
    RakpInputs {
        suite: p.suite,
        kuid: password,
        console_sid: p.console_sid,
        bmc_sid: p.bmc_sid,
        rm: p.rm,
        rc: p.rc,
        guid: GUID_BYTES,
        role: p.role,
        user: &p.user,
    }
}

/// The same GUID as the ipmi_sim rig's.
const GUID_BYTES: [u8; 16] =
    [0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

impl RmcpBmc {
    /// Serves `addr`:623 from inside network namespace `ns` (which must hold `addr`), for
    /// `user`/`password` and the given suites. The chassis starts powered on.
    pub fn start(ns: &str, addr: &str, user: &str, password: &str, suites: &[CipherSuite]) -> RmcpBmc {
        let addr: SocketAddr = SocketAddr::new(addr.parse().unwrap(), 623);
        let state = Arc::new(Mutex::new(BmcState { power_on: true, ..Default::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut server = Server {
            user: user.as_bytes().to_vec(),
            password: password.as_bytes().to_vec(),
            suites: suites.to_vec(),
            state: state.clone(),
            next_sid: 0x100,
            pending: None,
            session: None,
            counter: 0,
        };
        let st = stop.clone();
        let handle = super::spawn_in_netns(ns, move || {
            let sock = UdpSocket::bind(addr).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            tx.send(()).unwrap();
            let end = Instant::now() + Duration::from_secs(300);
            let mut buf = [0u8; 1024];
            while !st.load(Ordering::SeqCst) && Instant::now() < end {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                let d = buf[..n].to_vec();
                server.state.lock().unwrap().exchange.push(('>', d.clone()));
                if let Some(out) = server.handle(&d) {
                    server.state.lock().unwrap().exchange.push(('<', out.clone()));
                    let _ = sock.send_to(&out, from);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        RmcpBmc { addr, state, stop, handle: Some(handle) }
    }

    /// Ignores the next `count` requests of `payload_type` (and IPMI command `cmd`).
    pub fn lose(&self, payload_type: u8, cmd: Option<u8>, count: u32) {
        self.state.lock().unwrap().lose.push((payload_type, cmd, count));
    }

    pub fn power_on(&self) -> bool {
        self.state.lock().unwrap().power_on
    }

    /// The recorded exchange in the fixture format: one datagram per line, `>`/`<` and hex.
    pub fn exchange(&self) -> String {
        let st = self.state.lock().unwrap();
        st.exchange
            .iter()
            .map(|(d, b)| format!("{d} {}\n", b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
            .collect()
    }
}

impl Drop for RmcpBmc {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
