//! The `guest::NAME::ROOTDIR[::KEY=VALUE…]` agent: starts, stops and checks a whole guest
//! (see `crate::guest` and docs/guests.md).
//!
//! Every operation is [`Exec::Fork`]: start forks the guest's monitor and waits for the
//! guest's init to run (bounded), stop waits up to the guest's `stop_timeout` and then
//! kills it, status reads the runtime state. None of them depends on the daemon's memory.
//!
//! For `net=macvlan:IFACE` / `net=ipvlan:IFACE` guests the group's addresses live inside
//! the guest's network namespace: [`add_address`], [`del_address`] and [`garp`] do
//! the work of the `ip` agent there.

use std::net::IpAddr;
use std::os::fd::AsFd;

use super::ip::{send_garp, GarpTarget};
use super::{Agent, AgentError, Exec, Op, Outcome};
use crate::config::guest::GuestSpec;
use crate::guest::{net, GuestError, GuestState, Guests};

impl From<GuestError> for AgentError {
    fn from(e: GuestError) -> AgentError {
        match e {
            GuestError::Config(m) => AgentError::Config(m),
            GuestError::Sys { op, errno } => AgentError::Sys { op, errno },
            GuestError::Other(m) => AgentError::Failed(m),
        }
    }
}

/// The `guest::` agent.
#[derive(Debug, Clone)]
pub struct GuestAgent {
    text: String,
    spec: GuestSpec,
    guests: Guests,
}

impl GuestAgent {
    pub fn new(spec: &GuestSpec, text: &str) -> GuestAgent {
        GuestAgent { text: text.to_string(), spec: spec.clone(), guests: Guests::system() }
    }

    /// Other runtime and cgroup places (tests).
    pub fn with_guests(mut self, guests: Guests) -> GuestAgent {
        self.guests = guests;
        self
    }

    pub fn spec(&self) -> &GuestSpec {
        &self.spec
    }
}

impl Agent for GuestAgent {
    fn text(&self) -> &str {
        &self.text
    }

    fn exec(&self, _op: Op) -> Exec {
        Exec::Fork
    }

    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        match op {
            Op::Start => {
                self.guests.start(&self.spec)?;
                Ok(Outcome::Running)
            }
            Op::Stop => {
                self.guests.stop(&self.spec.name, None)?;
                Ok(Outcome::Stopped)
            }
            Op::Status => Ok(match self.guests.status(&self.spec.name)? {
                GuestState::Running => Outcome::Running,
                GuestState::Stopped => Outcome::Stopped,
            }),
        }
    }
}

/// Adds `addr/prefix` to the `eth0` of running guest `name` (a private network), from
/// inside its namespace. Returns the interface index there (for [`garp`]).
pub fn add_address(guests: &Guests, name: &str, addr: IpAddr, prefix: u8) -> Result<u32, AgentError> {
    let ns = guests.netns(name)?;
    Ok(net::add_address(ns.as_fd(), addr, prefix)?)
}

/// Removes `addr/prefix` from the guest's `eth0` (nothing to do when it is not there).
pub fn del_address(guests: &Guests, name: &str, addr: IpAddr, prefix: u8) -> Result<(), AgentError> {
    let ns = guests.netns(name)?;
    Ok(net::del_address(ns.as_fd(), addr, prefix)?)
}

/// Sends ONE gratuitous ARP (IPv4) or unsolicited NA (IPv6) for `addr` from inside the
/// guest's network namespace, on its interface `ifindex` (as [`add_address`] returned).
pub fn garp(guests: &Guests, name: &str, ifindex: u32, addr: IpAddr) -> Result<(), AgentError> {
    let ns = guests.netns(name)?;
    let mut out: Result<(), AgentError> = Ok(());
    net::with_netns(ns.as_fd(), || {
        out = send_garp(&GarpTarget { ifindex, addr });
        Ok(())
    })?;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn agent(word: &str) -> GuestAgent {
        let r = crate::config::parse_resource(word).unwrap();
        let crate::config::ResourceSpec::Guest(g) = &r.spec else { panic!("{word}") };
        GuestAgent::new(g, &r.text)
    }

    #[test]
    fn builds_and_runs_forked() {
        let a = agent("guest::www::/srv/www::memory=64M");
        assert_eq!(a.text(), "guest::www::/srv/www::memory=64M");
        assert_eq!(a.spec().memory, Some(64 << 20));
        for op in [Op::Start, Op::Stop, Op::Status] {
            assert_eq!(a.exec(op), Exec::Fork);
        }
        let e = crate::config::parse_resource("guest::www::/srv/www::bogus=1").unwrap_err();
        assert!(e.contains("unknown option 'bogus'"), "{e}");
    }

    #[test]
    fn status_of_a_guest_that_never_ran() {
        let d = TempDir::new("guest-agent");
        let mut a = agent("guest::nothere::/nonexistent").with_guests(Guests::with_dirs(d.path(), "tandem-unit"));
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
    }
}
