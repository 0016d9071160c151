//! The `script::PATH[::ARG…]` agent: an LSB- or heartbeat-style script called as
//! `PATH ARG… start|stop|status`, exit codes judged by LSB rules
//! (status: 0 running, 3 not running; start/stop: 0 success), or, for scripts named in
//! heartbeat's haresources, `status` judged by what it prints, as heartbeat judges it
//! ([`hb_status_running`]).

use std::os::unix::fs::PermissionsExt;

use super::runner::{judge, run_blocking, Done, ExitKind, ExitRules, Spawn};
use super::{Agent, AgentError, Exec, Op, Outcome};
use crate::config::{ScriptSpec, Timeouts};
use crate::time::Duration;

#[derive(Debug, Clone)]
pub struct ScriptAgent {
    text: String,
    path: String,
    args: Vec<String>,
    timeouts: Timeouts,
    status_by_stdout: bool,
}

impl ScriptAgent {
    /// PATH must name an executable regular file.
    pub fn new(spec: &ScriptSpec, text: &str) -> Result<ScriptAgent, AgentError> {
        let path = spec.path.to_string_lossy().into_owned();
        let meta = std::fs::metadata(&spec.path).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
                None => e.to_string(),
            };
            AgentError::Config(format!("{text}: script {path}: {why}"))
        })?;
        if !meta.is_file() {
            return Err(AgentError::Config(format!("{text}: script {path} is not a regular file")));
        }
        if meta.permissions().mode() & 0o111 == 0
            || nix::unistd::access(spec.path.as_path(), nix::unistd::AccessFlags::X_OK).is_err()
        {
            return Err(AgentError::Config(format!("{text}: script {path} is not executable")));
        }
        Ok(ScriptAgent {
            text: text.to_string(),
            path,
            args: spec.args.clone(),
            timeouts: Timeouts::default(),
            status_by_stdout: spec.status_by_stdout,
        })
    }

    /// Sets the deadlines of the three operations.
    pub fn with_timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = t;
        self
    }

    /// The deadline of `op`.
    pub fn timeout(&self, op: Op) -> Duration {
        match op {
            Op::Start => self.timeouts.start,
            Op::Stop => self.timeouts.stop,
            Op::Status => self.timeouts.status,
        }
    }

    /// `[PATH, ARG…, op]`; a heartbeat-style `status` runs through `sh` with its stderr
    /// discarded, since heartbeat judges it by its stdout alone.
    pub fn argv(&self, op: Op) -> Vec<String> {
        let mut v = Vec::with_capacity(self.args.len() + 5);
        if self.status_by_stdout && op == Op::Status {
            v.extend(["/bin/sh".to_string(), "-c".to_string(), "exec \"$0\" \"$@\" 2>/dev/null".to_string()]);
        }
        v.push(self.path.clone());
        v.extend(self.args.iter().cloned());
        v.push(op.name().to_string());
        v
    }
}

impl Agent for ScriptAgent {
    fn text(&self) -> &str {
        &self.text
    }

    fn exec(&self, op: Op) -> Exec {
        Exec::Exec(self.argv(op))
    }

    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        let argv = self.argv(op);
        let done = run_blocking(Spawn::Exec(&argv), self.timeout(op))?;
        self.judge(op, &done)
    }

    fn judge(&self, op: Op, done: &Done) -> Result<Outcome, AgentError> {
        if !(self.status_by_stdout && op == Op::Status) {
            return judge(ExitRules::Lsb, op, done);
        }
        match done.status {
            ExitKind::Code(_) if hb_status_running(&done.output) => Ok(Outcome::Running),
            ExitKind::Code(_) => Ok(Outcome::Stopped),
            _ => judge(ExitRules::Lsb, op, done),
        }
    }
}

/// heartbeat's judgement of a resource script's `status` output (ResourceManager's
/// `we_own_resource`), whatever the exit code: `not running` (and any text after `not `
/// that ends in `running`, any case) means stopped; otherwise `running` (any case) or `OK`
/// means running; anything else means stopped.
pub fn hb_status_running(out: &str) -> bool {
    let lower = out.to_ascii_lowercase();
    if let Some(i) = lower.find("not ") {
        if lower.get(i + 4..).is_some_and(|rest| rest.contains("running")) {
            return false;
        }
    }
    lower.contains("running") || out.contains("OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: &[&str]) -> ScriptSpec {
        ScriptSpec { path: v[0].into(), args: v[1..].iter().map(|a| a.to_string()).collect(), status_by_stdout: false }
    }
    use crate::testutil::TempDir;

    /// Writes `#!/bin/sh` + `body` into `d` with `mode`; returns its path.
    fn script(d: &TempDir, name: &str, body: &str, mode: u32) -> String {
        let p = d.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn lsb_codes_per_op() {
        let d = TempDir::new("script");
        // Exit code chosen by the op and the argument: ARG is the status to report.
        let p = script(
            &d,
            "svc",
            r#"echo "called $*"
case "$2" in start) exit 0;; stop) exit 0;; status) exit "$1";; esac
exit 9"#,
            0o755,
        );
        let mut a = ScriptAgent::new(&spec(&[&p, "3"]), "script::x::3").unwrap();
        assert_eq!(a.text(), "script::x::3");
        assert_eq!(a.exec(Op::Status), Exec::Exec(vec![p.clone(), "3".into(), "status".into()]));
        assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running);
        assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped);
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
        let mut a = ScriptAgent::new(&spec(&[&p, "0"]), "t").unwrap();
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Running);
        let mut a = ScriptAgent::new(&spec(&[&p, "1"]), "t").unwrap();
        match a.run(Op::Status) {
            Err(AgentError::Exit { code: 1, output }) => assert_eq!(output, "called 1 status\n"),
            other => panic!("{other:?}"),
        }
        let f = script(&d, "fail", "echo boom >&2; exit 1", 0o755);
        let mut a = ScriptAgent::new(&spec(&[&f]), "t").unwrap();
        for op in [Op::Start, Op::Stop] {
            match a.run(op) {
                Err(AgentError::Exit { code: 1, output }) => assert_eq!(output, "boom\n"),
                other => panic!("{other:?}"),
            }
        }
        let s3 = script(&d, "three", "exit 3", 0o755);
        let mut a = ScriptAgent::new(&spec(&[&s3]), "t").unwrap();
        assert!(matches!(a.run(Op::Start), Err(AgentError::Exit { code: 3, .. })));
    }

    #[test]
    fn heartbeat_status_by_stdout() {
        for (out, running) in [
            ("running", true),
            ("apache is Running (pid 4)", true),
            ("INFO: IPaddr Running OK", true),
            ("OK", true),
            ("ok", false),
            ("not running", false),
            ("apache is NOT  running", false),
            ("Not currently running", false),
            ("stopped", false),
            ("", false),
            // heartbeat's pattern finds "not " in "cannot": drbddisk's "may be running" is stopped.
            ("cannot determine status, may be running (Unknown)", false),
            ("running (Primary)", true),
            ("stopped (Secondary)", false),
        ] {
            assert_eq!(hb_status_running(out), running, "{out:?}");
        }
        let d = TempDir::new("script");
        // The exit code does not count; stderr is not read.
        let p = script(&d, "hbsvc", r#"echo "not running" >&2; echo "$1"; exit 3"#, 0o755);
        let mk = |arg: &str| {
            let mut s = spec(&[&p, arg]);
            s.status_by_stdout = true;
            ScriptAgent::new(&s, "hbsvc").unwrap()
        };
        assert_eq!(mk("running").run(Op::Status).unwrap(), Outcome::Running);
        assert_eq!(mk("stopped").run(Op::Status).unwrap(), Outcome::Stopped);
        assert_eq!(mk("OK").run(Op::Status).unwrap(), Outcome::Running);
        assert_eq!(
            mk("running").exec(Op::Status),
            Exec::Exec(vec![
                "/bin/sh".into(),
                "-c".into(),
                "exec \"$0\" \"$@\" 2>/dev/null".into(),
                p.clone(),
                "running".into(),
                "status".into()
            ])
        );
        // start and stop keep their exit codes.
        assert!(matches!(mk("x").run(Op::Start), Err(AgentError::Exit { code: 3, .. })));
        assert_eq!(mk("x").exec(Op::Start), Exec::Exec(vec![p.clone(), "x".into(), "start".into()]));
    }

    #[test]
    fn timeouts_are_settable() {
        let d = TempDir::new("script");
        let p = script(&d, "slow", "sleep 30", 0o755);
        let mut a = ScriptAgent::new(&spec(&[&p]), "t").unwrap().with_timeouts(Timeouts {
            start: Duration::from_secs(1),
            stop: Duration::from_secs(1),
            status: Duration::from_millis(300),
        });
        assert_eq!(a.timeout(Op::Start), Duration::from_secs(1));
        let t0 = std::time::Instant::now();
        assert!(matches!(a.run(Op::Status), Err(AgentError::Timeout { .. })));
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "{:?}", t0.elapsed());
    }

    #[test]
    fn bad_scripts_are_config_errors() {
        let d = TempDir::new("script");
        let p = script(&d, "noexec", "exit 0", 0o644);
        match ScriptAgent::new(&spec(&[&p]), "script::noexec") {
            Err(AgentError::Config(m)) => assert!(m.contains("not executable"), "{m}"),
            other => panic!("{other:?}"),
        }
        let missing = d.join("missing").to_str().unwrap().to_string();
        match ScriptAgent::new(&spec(&[&missing]), "script::missing") {
            Err(AgentError::Config(m)) => assert!(m.contains("No such file"), "{m}"),
            other => panic!("{other:?}"),
        }
        let dir = d.path().to_str().unwrap().to_string();
        assert!(matches!(ScriptAgent::new(&spec(&[&dir]), "t"), Err(AgentError::Config(_))));
    }
}
