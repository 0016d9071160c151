//! The `lvm::VG` agent (heartbeat's `LVM`): volume group activation.
//!
//! - **start**: `vgchange -a y VG`; **stop**: `vgchange -a n VG`. Both are
//!   [`Exec::Exec`]: the daemon's runner forks, execs and judges the exit code, with the
//!   op's deadline. [`Agent::run`] (used by `tandem agent`) runs the same argv itself with
//!   its own deadline.
//! - **status** reads the device-mapper table in sysfs, with no LVM tool: the VG is
//!   running iff at least one of its logical volumes is active, i.e. some
//!   `/sys/block/dm-*/dm/uuid` starts with `LVM-` and the matching `dm/name`
//!   (`VG-LV`, with each `-` inside a name doubled) names this VG. That is what
//!   `lvs -o lv_active` reports, read in microseconds and without taking LVM's locks,
//!   so status is [`Exec::Inline`]. A VG without logical volumes is never running.
//!
//! `vgchange` is looked up in `$PATH`, `/sbin` and `/usr/sbin` when the agent is built;
//! when it is missing the agent cannot be built ([`AgentError::Unavailable`], "install lvm2").

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Agent, AgentError, Exec, Op, Outcome};
use crate::config::LvmSpec;
use crate::time::{self, Duration};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const OUTPUT_MAX: u64 = 4096;

/// The `lvm::` agent.
#[derive(Debug, Clone)]
pub struct LvmAgent {
    text: String,
    vg: String,
    vgchange: PathBuf,
    timeout: Duration,
    sys_block: PathBuf,
}

impl LvmAgent {
    /// Fails when `vgchange` is not installed.
    pub fn new(spec: &LvmSpec, text: &str) -> Result<LvmAgent, AgentError> {
        let vgchange = find_tool("vgchange").ok_or_else(|| {
            AgentError::Unavailable(format!("{text}: vgchange not found in PATH, /sbin or /usr/sbin (install lvm2)"))
        })?;
        Ok(LvmAgent::with_tool(spec, text, vgchange))
    }

    /// As [`LvmAgent::new`] with an explicit `vgchange` (tests).
    pub fn with_tool(spec: &LvmSpec, text: &str, vgchange: PathBuf) -> LvmAgent {
        LvmAgent {
            text: text.to_string(),
            vg: spec.vg.clone(),
            vgchange,
            timeout: DEFAULT_TIMEOUT,
            sys_block: "/sys/block".into(),
        }
    }

    /// The deadline [`Agent::run`] gives `vgchange`.
    pub fn with_timeout(mut self, timeout: Duration) -> LvmAgent {
        self.timeout = timeout;
        self
    }

    /// Reads the device-mapper table from `dir` instead of `/sys/block` (tests).
    pub fn with_sys_block(mut self, dir: PathBuf) -> LvmAgent {
        self.sys_block = dir;
        self
    }

    fn argv(&self, activate: bool) -> Vec<String> {
        vec![
            self.vgchange.display().to_string(),
            "-a".to_string(),
            if activate { "y" } else { "n" }.to_string(),
            self.vg.clone(),
        ]
    }

    /// Whether any logical volume of the VG is active.
    fn active(&self) -> bool {
        let Ok(rd) = fs::read_dir(&self.sys_block) else {
            return false;
        };
        rd.flatten().any(|e| {
            let dm = e.path().join("dm");
            let uuid = fs::read_to_string(dm.join("uuid")).unwrap_or_default();
            let name = fs::read_to_string(dm.join("name")).unwrap_or_default();
            uuid.starts_with("LVM-") && dm_vg_name(name.trim()).as_deref() == Some(self.vg.as_str())
        })
    }
}

impl Agent for LvmAgent {
    fn text(&self) -> &str {
        &self.text
    }
    fn exec(&self, op: Op) -> Exec {
        match op {
            Op::Start => Exec::Exec(self.argv(true)),
            Op::Stop => Exec::Exec(self.argv(false)),
            Op::Status => Exec::Inline,
        }
    }
    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        match op {
            Op::Status => Ok(if self.active() { Outcome::Running } else { Outcome::Stopped }),
            Op::Start => {
                run_with_deadline(&self.argv(true), self.timeout)?;
                Ok(Outcome::Running)
            }
            Op::Stop => {
                run_with_deadline(&self.argv(false), self.timeout)?;
                Ok(Outcome::Stopped)
            }
        }
    }
}

/// The VG part of a device-mapper name `VG-LV[-layer]`, where a `-` inside VG or LV is
/// written `--`. `None` if there is no single `-`.
pub fn dm_vg_name(dm: &str) -> Option<String> {
    let b = dm.as_bytes();
    let mut vg = String::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'-' {
            if b.get(i + 1) == Some(&b'-') {
                vg.push('-');
                i += 2;
                continue;
            }
            return if vg.is_empty() { None } else { Some(vg) };
        }
        vg.push(char::from(c));
        i += 1;
    }
    None
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/sbin", "/usr/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false));
    found
}

/// Runs `argv` (stdin /dev/null, output captured up to 4 KiB) and waits at most `timeout`;
/// kills it on timeout. Exit 0 is success.
pub fn run_with_deadline(argv: &[String], timeout: Duration) -> Result<(), AgentError> {
    let (prog, args) = argv.split_first().ok_or_else(|| AgentError::Failed("empty command".to_string()))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AgentError::Sys {
            op: format!("exec {prog}"),
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    let deadline = time::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if time::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => break None,
        }
    };
    let mut output = String::new();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(AgentError::Timeout { after: timeout, output });
    };
    if let Some(o) = child.stdout.take() {
        let _ = o.take(OUTPUT_MAX).read_to_string(&mut output);
    }
    if let Some(e) = child.stderr.take() {
        let _ = e.take(OUTPUT_MAX).read_to_string(&mut output);
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(AgentError::Exit { code, output }),
        (None, Some(signal)) => Err(AgentError::Signal { signal, output }),
        (None, None) => Err(AgentError::Failed(format!("{prog}: unknown exit status"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn dm_names() {
        assert_eq!(dm_vg_name("vg0-data").as_deref(), Some("vg0"));
        assert_eq!(dm_vg_name("my--vg-lv--x").as_deref(), Some("my-vg"));
        assert_eq!(dm_vg_name("vg-lv-real").as_deref(), Some("vg"));
        assert_eq!(dm_vg_name("cryptroot"), None);
        assert_eq!(dm_vg_name("-x"), None);
        assert_eq!(dm_vg_name(""), None);
    }

    #[test]
    fn argv_names_and_status_from_sysfs() {
        let t = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let vg = |n: &str| LvmSpec { vg: n.to_string() };
        let tmp = TempDir::new("lvm");
        let base = tmp.path().to_path_buf();
        let mk = |dev: &str, name: &str, uuid: &str| {
            let d = base.join(dev).join("dm");
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("name"), format!("{name}\n")).unwrap();
            fs::write(d.join("uuid"), format!("{uuid}\n")).unwrap();
        };
        mk("dm-0", "data--vg-home", "LVM-abcdef");
        mk("dm-1", "vg1-x", "CRYPT-LUKS2-1234");
        fs::create_dir_all(base.join("sda")).unwrap();
        let mut a =
            LvmAgent::with_tool(&vg("data-vg"), "lvm::data-vg", "/sbin/vgchange".into()).with_sys_block(base.clone());
        assert_eq!(a.exec(Op::Start), Exec::Exec(t(&["/sbin/vgchange", "-a", "y", "data-vg"])));
        assert_eq!(a.exec(Op::Stop), Exec::Exec(t(&["/sbin/vgchange", "-a", "n", "data-vg"])));
        assert_eq!(a.exec(Op::Status), Exec::Inline);
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Running);
        let mut b = LvmAgent::with_tool(&vg("vg1"), "lvm::vg1", "/x".into()).with_sys_block(base.clone());
        assert_eq!(b.run(Op::Status).unwrap(), Outcome::Stopped, "a crypt mapping is not LVM");
    }

    #[test]
    fn run_judges_exit_and_deadline() {
        let t = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(run_with_deadline(&t(&["/bin/true"]), Duration::from_secs(5)).is_ok());
        match run_with_deadline(&t(&["/bin/sh", "-c", "echo no such vg >&2; exit 5"]), Duration::from_secs(5)) {
            Err(AgentError::Exit { code: 5, output }) => assert!(output.contains("no such vg")),
            other => panic!("{other:?}"),
        }
        let t0 = std::time::Instant::now();
        match run_with_deadline(&t(&["/bin/sleep", "10"]), Duration::from_millis(200)) {
            Err(AgentError::Timeout { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
        match run_with_deadline(&t(&["/nonexistent/vgchange"]), Duration::from_secs(1)) {
            Err(AgentError::Sys { errno, .. }) => assert_eq!(errno, nix::errno::Errno::ENOENT),
            other => panic!("{other:?}"),
        }
    }
}
