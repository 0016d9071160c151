//! Records of the runner's children in the state directory, so that a daemon killed with
//! SIGKILL leaves nothing running behind the next one's back.
//!
//! Each child gets a file `STATEDIR/children/PGID` ("PGID STARTTIME BOOT_ID TAG"), written
//! (tmp + rename) when it is spawned and removed when it is reaped: I/O only when a child
//! starts or ends. At start-up, before anything else runs, [`kill_previous`] kills every
//! recorded process group that still exists and is provably the one recorded:
//! - another boot id: the machine rebooted, nothing of it can be left; the record goes;
//! - the leader's pid is alive with the recorded start time (clock ticks since boot, field
//!   22 of `/proc/PID/stat`): it is our old child; its group is killed;
//! - the pid is alive with another start time: the pid was reused, which the kernel only
//!   does once no process uses that number as a process group id any more, so our group is
//!   gone; nothing is killed;
//! - no such pid, but the process group still has members: those are our old child's
//!   (the number cannot be reused while the group exists); the group is killed.
//!
//! This complements `PR_SET_PDEATHSIG`, which kills the direct child the moment the daemon
//! dies but is not inherited: what the child started (a script's background service, a
//! `sleep`) survives it in the same process group, and only the record finds it. A process
//! that left the group (`setsid`, `setpgid`) escapes both.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How long start-up waits for the killed groups to disappear.
const GONE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One recorded child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pgid: i32,
    pub starttime: u64,
    pub boot_id: String,
    pub tag: u64,
}

impl Record {
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(80);
        let _ = writeln!(s, "{} {} {} {}", self.pgid, self.starttime, self.boot_id, self.tag);
        s
    }

    pub fn parse(text: &str) -> Option<Record> {
        let mut w = text.split_ascii_whitespace();
        let r = Record {
            pgid: w.next()?.parse().ok().filter(|&p: &i32| p > 1)?,
            starttime: w.next()?.parse().ok()?,
            boot_id: w.next()?.to_string(),
            tag: w.next()?.parse().ok()?,
        };
        w.next().is_none().then_some(r)
    }
}

/// What to do with a record, from what the system says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Our old child's group: kill it.
    Kill,
    /// Nothing of it is left (or it was before a reboot, or the pid was reused).
    Gone,
}

/// Pure: `leader_start` is the start time of the live process whose pid is the recorded
/// pgid (None: no such process); `group_exists`: `kill(-pgid, 0)` found members.
pub fn judge(rec: &Record, boot_id: &str, leader_start: Option<u64>, group_exists: bool) -> Verdict {
    if rec.boot_id != boot_id {
        return Verdict::Gone;
    }
    match leader_start {
        Some(t) if t == rec.starttime => Verdict::Kill,
        Some(_) => Verdict::Gone,
        None if group_exists => Verdict::Kill,
        None => Verdict::Gone,
    }
}

/// Field 22 (starttime) of a `/proc/PID/stat` line: the fields after the command name,
/// which may itself hold spaces and parentheses, so the split is at the last `)`.
pub fn stat_starttime(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The start time of process `pid`, if it exists.
pub fn starttime(pid: i32) -> Option<u64> {
    stat_starttime(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), or "" where it cannot be read.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Where the runner keeps its records: `STATEDIR/children`.
#[derive(Debug, Clone)]
pub struct Recorder {
    dir: PathBuf,
    boot_id: String,
}

impl Recorder {
    pub fn new(statedir: &Path) -> Recorder {
        Recorder { dir: statedir.join("children"), boot_id: boot_id() }
    }

    fn path(&self, pgid: i32) -> PathBuf {
        self.dir.join(pgid.to_string())
    }

    /// Records a child that was just forked (it leads process group `pid`).
    pub fn add(&self, pid: i32, tag: u64) -> Result<(), std::io::Error> {
        let starttime = starttime(pid).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
        let rec = Record { pgid: pid, starttime, boot_id: self.boot_id.clone(), tag };
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{pid}.tmp"));
        std::fs::write(&tmp, rec.to_line())?;
        std::fs::rename(&tmp, self.path(pid))
    }

    /// Forgets a child that was reaped.
    pub fn remove(&self, pid: i32) {
        let _ = std::fs::remove_file(self.path(pid));
    }
}

/// Kills what a previous daemon's children left (see the module text), waits (at most
/// 2 s) until those groups are gone, and removes every record. Returns one line per group
/// killed, for the log.
pub fn kill_previous(statedir: &Path) -> Vec<String> {
    let dir = statedir.join("children");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let boot = boot_id();
    let mut killed = Vec::new();
    let mut said = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let rec = std::fs::read_to_string(&path).ok().and_then(|t| Record::parse(&t));
        if let Some(rec) = rec {
            let group_exists = killpg(Pid::from_raw(rec.pgid), None).is_ok();
            if judge(&rec, &boot, starttime(rec.pgid), group_exists) == Verdict::Kill {
                let _ = killpg(Pid::from_raw(rec.pgid), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(rec.pgid), Signal::SIGKILL);
                said.push(format!("killed process group {} left by a previous tandem (job tag {})", rec.pgid, rec.tag));
                killed.push(rec.pgid);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    let end = std::time::Instant::now() + GONE_WAIT;
    while !killed.is_empty() && std::time::Instant::now() < end {
        killed.retain(|&g| killpg(Pid::from_raw(g), None) != Err(Errno::ESRCH));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for g in killed {
        said.push(format!("process group {g} left by a previous tandem is still there after SIGKILL"));
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_garbage() {
        let r = Record { pgid: 4242, starttime: 987_654, boot_id: "b-1".into(), tag: 7 };
        assert_eq!(Record::parse(&r.to_line()), Some(r));
        for bad in ["", "1 2 b 3", "x 2 b 3", "42 2 b", "42 2 b 3 4", "-5 2 b 3"] {
            assert_eq!(Record::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn starttime_survives_odd_command_names() {
        let line = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 556677 1000 10 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(stat_starttime(line), Some(556_677));
        assert_eq!(stat_starttime("1234 (x"), None);
        let me = std::process::id() as i32;
        assert!(starttime(me).is_some());
    }

    #[test]
    fn only_the_recorded_group_is_killed() {
        let r = Record { pgid: 4242, starttime: 100, boot_id: "boot".into(), tag: 0 };
        // Same boot, leader alive with the recorded start time.
        assert_eq!(judge(&r, "boot", Some(100), true), Verdict::Kill);
        // The pid was reused by another process: never killed.
        assert_eq!(judge(&r, "boot", Some(101), true), Verdict::Gone);
        // Leader gone, members left in its group.
        assert_eq!(judge(&r, "boot", None, true), Verdict::Kill);
        assert_eq!(judge(&r, "boot", None, false), Verdict::Gone);
        // Another boot: nothing of it can be running.
        assert_eq!(judge(&r, "other", Some(100), true), Verdict::Gone);
    }

    #[test]
    fn a_reused_pid_is_left_alone() {
        let t = crate::testutil::TempDir::new("rec");
        let d = t.path();
        // A live process of ours, recorded with a start time that is not its own.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let rec = Record { pgid: pid, starttime: starttime(pid).unwrap() + 1, boot_id: boot_id(), tag: 1 };
        std::fs::create_dir_all(d.join("children")).unwrap();
        std::fs::write(d.join("children").join(pid.to_string()), rec.to_line()).unwrap();
        assert!(kill_previous(d).is_empty());
        assert!(child.try_wait().unwrap().is_none(), "a stranger was killed");
        assert!(!d.join("children").join(pid.to_string()).exists(), "record left");
        let _ = child.kill();
        let _ = child.wait();
    }
}
