//! Gratuitous ARPs (IPv6: unsolicited neighbour advertisements) after an address is added:
//! the first goes out at once, the rest (`garp_count`, `garp_interval`) from the loop's timers.

use log::{debug, info, warn};

use crate::agent::ip::{GarpSender, GarpTarget};
use crate::cluster::{GroupId, ResId};
use crate::time::{Duration, Instant};

/// An address whose gratuitous ARPs are not all sent yet.
#[derive(Debug, Clone, Copy)]
struct Job {
    group: GroupId,
    resource: ResId,
    a: GarpTarget,
    sent: u32,
    next: Instant,
}

/// The packet socket(s), and the addresses with gratuitous ARPs still to send.
pub struct Garp {
    sender: GarpSender,
    jobs: Vec<Job>,
    count: u32,
    interval: Duration,
}

impl Garp {
    /// `n_addresses`: how many addresses the groups hold at most (the job table's size).
    pub fn new(count: u32, interval: Duration, n_addresses: usize) -> Garp {
        Garp { sender: GarpSender::new(), jobs: Vec::with_capacity(n_addresses.max(4)), count, interval }
    }

    /// Opens the packet socket for `ifindex` now: binding one during a failover costs
    /// an RCU grace period (~10-20 ms) before the first gratuitous ARP.
    pub fn prepare(&mut self, ifindex: u32) -> Result<(), crate::agent::AgentError> {
        self.sender.prepare(ifindex)
    }

    /// Sends `a` its first gratuitous ARP at once and schedules the rest.
    pub fn start(&mut self, now: Instant, group: GroupId, resource: ResId, a: GarpTarget) {
        match self.sender.send(&a) {
            Ok(()) => info!("announced {} (1/{})", a.addr, self.count),
            Err(e) => warn!("announce {}: {e}", a.addr),
        }
        if self.count > 1 {
            self.jobs.push(Job { group, resource, a, sent: 1, next: now + self.interval });
        }
    }

    /// The resource is being stopped: no more gratuitous ARPs for it.
    pub fn cancel(&mut self, group: GroupId, resource: ResId) {
        self.jobs.retain(|j| !(j.group == group && j.resource == resource));
    }

    /// Sends the gratuitous ARPs that are due.
    pub fn run_due(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.jobs.len() {
            let Some(job) = self.jobs.get_mut(i) else { break };
            if job.next <= now {
                job.sent += 1;
                job.next = now + self.interval;
                let (a, sent) = (job.a, job.sent);
                match self.sender.send(&a) {
                    Err(e) => warn!("announce {}: {e}", a.addr),
                    Ok(()) => debug!("announced {} ({sent}/{})", a.addr, self.count),
                }
                if sent >= self.count {
                    self.jobs.swap_remove(i);
                    continue;
                }
            }
            i += 1;
        }
    }

    pub fn poll_at(&self) -> Option<Instant> {
        self.jobs.iter().map(|j| j.next).min()
    }

    /// A reload may change the count and the interval.
    pub fn set(&mut self, count: u32, interval: Duration) {
        self.count = count;
        self.interval = interval;
    }
}
