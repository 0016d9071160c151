//! The children the daemon runs through its runner: the `Job` each runner tag stands for,
//! the pools they run in, and how resource operations, fence attempts and checks, outdate
//! answers and stored replay marks are started and finished.

use log::{debug, error, info, warn};

use crate::agent::drbd::fence;
use crate::agent::runner::{self, Spawn};
use crate::agent::{self, Exec, Outcome};
use crate::cluster::{GroupId, Op, OpResult, ResId};
use crate::time::{Duration, Instant};
use crate::wire::GroupState;

use super::build::fence_child_priority;
use super::{events, outdate, Daemon, Pending};

/// The runner's pools: a kind of job that runs out of slots (children stuck in
/// uninterruptible sleep keep theirs) cannot starve another kind.
pub(super) mod pool {
    /// Resource operations.
    pub const OPS: usize = 0;
    /// Answers to the peer's outdate requests.
    pub const OUTDATE: usize = 1;
    /// Durable writes to the state directory.
    pub const STATE: usize = 2;
    /// Fencing the peer.
    pub const FENCE: usize = 3;
    /// Notify hooks.
    pub const NOTIFY: usize = 4;
}

/// What a child of the runner is doing (its runner tag, typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    /// One resource operation.
    Op { group: GroupId, resource: ResId, op: Op },
    /// Answering the peer's outdate request (the core's id for it).
    Outdate { id: usize },
    /// Storing the peer's replay mark.
    SaveMark,
    /// A fence attempt (its number).
    Fence { attempt: u32 },
    /// A check of the peer's fence device (the core's id for it).
    FenceCheck { id: u32 },
    /// A notify hook's run (the notifier's id of the hook).
    Notify { hook: u32 },
}

impl Job {
    pub(super) const OUTDATE: u64 = 1 << 63;
    pub(super) const SAVE_MARK: u64 = 1 << 62;
    /// With the attempt number in bits 32..60.
    pub(super) const FENCE: u64 = (1 << 62) | 1;
    pub(super) const FENCE_MASK: u64 = (1 << 62) | 0xffff_ffff;
    pub(super) const FENCE_CHECK: u64 = 1 << 61;
    pub(super) const NOTIFY: u64 = 1 << 60;

    pub(super) fn tag(self) -> u64 {
        match self {
            Job::Op { group: GroupId(group), resource: ResId(resource), op } => {
                let op = match op {
                    Op::Start => 0u64,
                    Op::Stop => 1,
                    Op::Status => 2,
                };
                ((group as u64 & 0xffff) << 32) | ((resource as u64 & 0xff_ffff) << 8) | op
            }
            Job::Outdate { id } => Job::OUTDATE | id as u64,
            Job::SaveMark => Job::SAVE_MARK,
            Job::Fence { attempt } => Job::FENCE | (u64::from(attempt & 0x0fff_ffff) << 32),
            Job::FenceCheck { id } => Job::FENCE_CHECK | u64::from(id),
            Job::Notify { hook } => Job::NOTIFY | u64::from(hook),
        }
    }

    pub(super) fn from_tag(tag: u64) -> Option<Job> {
        if tag & Job::OUTDATE != 0 {
            return Some(Job::Outdate { id: (tag & 0xffff) as usize });
        }
        if tag == Job::SAVE_MARK {
            return Some(Job::SaveMark);
        }
        if tag & Job::FENCE_MASK == Job::FENCE {
            return Some(Job::Fence { attempt: ((tag >> 32) & 0x0fff_ffff) as u32 });
        }
        if tag & Job::FENCE_CHECK != 0 {
            return Some(Job::FenceCheck { id: tag as u32 });
        }
        if tag & Job::NOTIFY != 0 {
            return Some(Job::Notify { hook: (tag & 0xffff_ffff) as u32 });
        }
        let op = match tag & 0xff {
            0 => Op::Start,
            1 => Op::Stop,
            2 => Op::Status,
            _ => return None,
        };
        Some(Job::Op { group: GroupId((tag >> 32) as usize), resource: ResId(((tag >> 8) & 0xff_ffff) as usize), op })
    }
}

impl Daemon {
    pub(super) fn run_op(&mut self, now: Instant, group: GroupId, resource: ResId, op: Op) {
        let timeout = match op {
            Op::Start => self.cfg.timeouts.start,
            Op::Stop => self.cfg.timeouts.stop,
            Op::Status => self.cfg.timeouts.status,
        };
        // A status of a started group is the monitor line's recurring check (OCF agents are
        // told its interval); any other status is a probe.
        let recurring = if op == Op::Status
            && self.node.tandem().is_some_and(|n| n.cluster().group_view(group).state == GroupState::Started)
        {
            self.cfg.groups.get(group.0).and_then(|g| g.monitor.get(resource.0)).copied().flatten()
        } else {
            None
        };
        let gname = events::group_name(&self.cfg, group);
        let Some(agent) = self.agents.get_mut(group.0).and_then(|g| g.get_mut(resource.0)) else {
            error!("internal: no resource {} in group {}", resource.0, group.0);
            self.pending.push(Pending::Op { group, resource, op, result: OpResult::Failed });
            return;
        };
        if op != Op::Status {
            info!("group {gname}: {} {}", op.name(), agent.text());
        } else {
            debug!("group {gname}: status {}", agent.text());
        }
        if op == Op::Stop {
            self.garp.cancel(group, resource);
        }
        let tag = Job::Op { group, resource, op }.tag();
        let mut garp = None;
        // Some(result) when the operation is over now: inline, or a child that could not start.
        let exec = match recurring {
            Some(interval) => agent.exec_recurring(interval),
            None => agent.exec(op),
        };
        let finished = match exec {
            Exec::Inline => {
                let r = agent.run(op);
                if op == Op::Start && r.is_ok() {
                    garp = agent.garp();
                }
                Some(r)
            }
            Exec::Fork => {
                // The exit code is judged by LSB rules (runner::judge): a stop that
                // leaves the resource stopped is 0, a status "stopped" is 3.
                let mut f = || {
                    crate::logging::child_mode();
                    match agent.run(op) {
                        Ok(Outcome::Running) => 0,
                        Ok(Outcome::Stopped) if op == Op::Stop => 0,
                        Ok(Outcome::Stopped) => 3,
                        Err(e) => {
                            runner::child_print(&format!("{e}\n"));
                            1
                        }
                    }
                };
                self.runner.spawn_in(now, pool::OPS, tag, Spawn::Fork(&mut f), timeout).err().map(Err)
            }
            Exec::Exec(argv) => self.runner.spawn_in(now, pool::OPS, tag, Spawn::Exec(&argv), timeout).err().map(Err),
            Exec::ExecEnv { argv, env } => self
                .runner
                .spawn_in(now, pool::OPS, tag, Spawn::ExecEnv { argv: &argv, env: &env }, timeout)
                .err()
                .map(Err),
        };
        // The gratuitous ARP goes out before anything else happens.
        if let Some(a) = garp {
            self.garp.start(now, group, resource, a);
        }
        if let Some(r) = finished {
            self.op_finished(now, group, resource, op, r);
        }
    }

    /// An operation is over: log a failure (or the start), and queue the result for the
    /// core. The one place both inline operations and children end.
    pub(super) fn op_finished(
        &mut self,
        now: Instant,
        group: GroupId,
        resource: ResId,
        op: Op,
        r: Result<Outcome, agent::AgentError>,
    ) {
        let gname = self.group_name(group).to_string();
        let text = self.res_text(group, resource).to_string();
        // A status of a running group is a monitor check: its failure is kept for `status`.
        let monitor = op == Op::Status
            && self.node.tandem().is_some_and(|n| n.cluster().group_view(group).state == GroupState::Started);
        let result = match r {
            Ok(Outcome::Running) => OpResult::Running,
            Ok(Outcome::Stopped) => {
                if monitor {
                    self.set_failure_text(group, resource, "not running".to_string());
                }
                OpResult::Stopped
            }
            Err(e) => {
                if op == Op::Status {
                    warn!("group {gname}: status {text}: {e}");
                } else {
                    error!("group {gname}: {} {text} failed: {e}", op.name());
                }
                if monitor {
                    self.set_failure_text(group, resource, e.to_string());
                }
                OpResult::Failed
            }
        };
        if op == Op::Start && result != OpResult::Failed {
            self.note(log::Level::Info, now, format!("group {gname}: {text} started"));
        }
        self.tell_op(now, group, resource, op, result);
        self.pending.push(Pending::Op { group, resource, op, result });
    }

    fn set_failure_text(&mut self, GroupId(g): GroupId, ResId(r): ResId, text: String) {
        if let Some(slot) = self.failure_text.get_mut(g).and_then(|v| v.get_mut(r)) {
            *slot = Some(text);
        }
    }

    /// Stores the pending peer mark in a child (fsync may take long); one at a time, the
    /// newest wins.
    pub(super) fn save_mark(&mut self, now: Instant) {
        let Some((g, seq)) = self.mark_pending else { return };
        let dir = self.statedir.clone();
        let mut f = move || {
            crate::logging::child_mode();
            match crate::state::write_peer_mark(&dir, g, seq) {
                Ok(()) => 0,
                Err(e) => {
                    runner::child_print(&format!("{e}\n"));
                    1
                }
            }
        };
        match self.runner.spawn_in(now, pool::STATE, Job::SaveMark.tag(), Spawn::Fork(&mut f), Duration::from_secs(30))
        {
            Ok(()) => self.mark_pending = None,
            Err(_) => debug!("peer mark: a store is running; the newest mark follows it"),
        }
    }

    /// Stores the peer's replay mark now (blocking): for the exit path.
    pub fn save_mark_now(&self) {
        if let Some((g, seq)) = self.node.peer_mark() {
            if let Err(e) = crate::state::write_peer_mark(&self.statedir, g, seq) {
                warn!("cannot store the peer's replay mark: {e}");
            }
        }
    }

    /// Runs one fence attempt on the peer in a child, bounded by `fence_timeout`.
    pub(super) fn spawn_fence(&mut self, now: Instant, attempt: u32) {
        let Some(method) = self.cfg.peer_stonith().map(|s| s.method.clone()) else {
            self.pending.push(Pending::Fence { attempt, ok: false, detail: "no stonith line for the peer".into() });
            return;
        };
        let (peer, timeout) = (self.cfg.peer_name().to_string(), self.cfg.fencing.timeout);
        let rt = self.cfg.realtime;
        info!("fencing {peer}: attempt {attempt}: {}", method.describe());
        let mut f = move || {
            crate::logging::child_mode();
            fence_child_priority(rt);
            // A little under the runner's deadline, so the method reports its own timeout.
            let deadline = std::time::Instant::now() + timeout.mul_f32(0.9);
            match crate::fence::run(&method, &peer, deadline) {
                Ok(done) => {
                    runner::child_print(&format!("{done}\n"));
                    0
                }
                Err(e) => {
                    runner::child_print(&format!("{e}\n"));
                    1
                }
            }
        };
        let tag = Job::Fence { attempt }.tag();
        if let Err(e) = self.runner.spawn_in(now, pool::FENCE, tag, Spawn::Fork(&mut f), timeout) {
            self.pending.push(Pending::Fence { attempt, ok: false, detail: e.to_string() });
        }
    }

    /// Checks the peer's fence device in a child (nothing is powered).
    pub(super) fn spawn_fence_check(&mut self, now: Instant, id: u32) {
        let Some(method) = self.cfg.peer_stonith().map(|s| s.method.clone()) else {
            return;
        };
        let (peer, timeout) = (self.cfg.peer_name().to_string(), self.cfg.fencing.timeout);
        let rt = self.cfg.realtime;
        let mut f = move || {
            crate::logging::child_mode();
            fence_child_priority(rt);
            let deadline = std::time::Instant::now() + timeout.mul_f32(0.9);
            let (code, text) = match crate::fence::check(&method, &peer, deadline) {
                Ok(said) => (0, said),
                Err(e) => (1, e.to_string()),
            };
            runner::child_print(&format!("{text}\n"));
            code
        };
        let tag = Job::FenceCheck { id }.tag();
        if let Err(e) = self.runner.spawn_in(now, pool::FENCE, tag, Spawn::Fork(&mut f), timeout) {
            self.pending.push(Pending::FenceCheck { id, ok: false, detail: e.to_string() });
        }
    }

    pub(super) fn spawn_outdate(&mut self, now: Instant, id: usize, res: String) {
        let name = res.clone();
        let mut f = move || {
            crate::logging::child_mode();
            i32::from(outdate::outdate_local(&name))
        };
        let tag = Job::Outdate { id }.tag();
        if let Err(e) = self.runner.spawn_in(now, pool::OUTDATE, tag, Spawn::Fork(&mut f), outdate::CHILD_TIMEOUT) {
            error!("cannot answer the peer's outdate request for {res}: {e}");
            self.pending.push(Pending::Outdate { id, code: fence::PEER_FAILED });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_tags_round_trip() {
        for job in [
            Job::Op { group: GroupId(0), resource: ResId(0), op: Op::Start },
            Job::Op { group: GroupId(31), resource: ResId(200), op: Op::Stop },
            Job::Op { group: GroupId(7), resource: ResId(3), op: Op::Status },
            Job::Outdate { id: 0 },
            Job::Outdate { id: 3 },
            Job::SaveMark,
            Job::Fence { attempt: 1 },
            Job::Fence { attempt: 0x0fff_ffff },
            Job::FenceCheck { id: 7 },
            Job::Notify { hook: 0 },
            Job::Notify { hook: u32::MAX },
        ] {
            assert_eq!(Job::from_tag(job.tag()), Some(job));
        }
        assert_eq!(Job::from_tag(0xff), None);
    }
}
