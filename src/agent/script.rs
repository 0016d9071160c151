//! The `script::PATH[::ARG…]` agent: an LSB- or heartbeat-style script called as
//! `PATH ARG… start|stop|status`, exit codes judged by LSB rules
//! (status: 0 running, 3 not running; start/stop: 0 success).

use std::os::unix::fs::PermissionsExt;

use super::runner::{judge, run_blocking, Spawn};
use super::{Agent, AgentError, Exec, Op, Outcome};
use crate::time::Duration;

pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_STATUS_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a script named without a `/` is looked for, in order.
pub const SEARCH_DIRS: [&str; 3] = ["/etc/tandem/resource.d", "/etc/ha.d/resource.d", "/etc/init.d"];

/// A bare name → the first existing `DIR/name` of [`SEARCH_DIRS`]; anything else unchanged.
fn resolve(path: &str) -> String {
    if path.contains('/') {
        return path.to_string();
    }
    SEARCH_DIRS
        .iter()
        .map(|d| format!("{d}/{path}"))
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| path.to_string())
}

#[derive(Debug, Clone)]
pub struct ScriptAgent {
    text: String,
    path: String,
    args: Vec<String>,
    start_timeout: Duration,
    stop_timeout: Duration,
    status_timeout: Duration,
}

impl ScriptAgent {
    /// `args` = `[PATH, ARG…]` from `script::PATH[::ARG…]`; `text` as written.
    /// PATH must name an executable regular file: an absolute path, or (as heartbeat's
    /// haresources allows) a bare name looked up in [`SEARCH_DIRS`].
    pub fn new(args: &[String], text: &str) -> Result<ScriptAgent, AgentError> {
        let Some((path, rest)) = args.split_first() else {
            return Err(AgentError::Config(format!("{text}: script needs a path (script::PATH[::ARG…])")));
        };
        if path.is_empty() {
            return Err(AgentError::Config(format!("{text}: empty script path")));
        }
        let path = &resolve(path);
        let meta = std::fs::metadata(path).map_err(|e| {
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
            || nix::unistd::access(path.as_str(), nix::unistd::AccessFlags::X_OK).is_err()
        {
            return Err(AgentError::Config(format!("{text}: script {path} is not executable")));
        }
        Ok(ScriptAgent {
            text: text.to_string(),
            path: path.clone(),
            args: rest.to_vec(),
            start_timeout: DEFAULT_START_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            status_timeout: DEFAULT_STATUS_TIMEOUT,
        })
    }

    /// Sets the deadlines of the three operations.
    pub fn with_timeouts(mut self, start: Duration, stop: Duration, status: Duration) -> Self {
        self.start_timeout = start;
        self.stop_timeout = stop;
        self.status_timeout = status;
        self
    }

    /// The deadline of `op`.
    pub fn timeout(&self, op: Op) -> Duration {
        match op {
            Op::Start => self.start_timeout,
            Op::Stop => self.stop_timeout,
            Op::Status => self.status_timeout,
        }
    }

    /// `[PATH, ARG…, op]`.
    pub fn argv(&self, op: Op) -> Vec<String> {
        let mut v = Vec::with_capacity(self.args.len() + 2);
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
        judge(op, &done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    static N: AtomicU32 = AtomicU32::new(0);

    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn new() -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "tandem-script-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn script(&self, name: &str, body: &str, mode: u32) -> String {
            let p = self.0.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p.to_str().unwrap().to_string()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn lsb_codes_per_op() {
        let d = TempDir::new();
        // Exit code chosen by the op and the argument: ARG is the status to report.
        let p = d.script(
            "svc",
            r#"echo "called $*"
case "$2" in start) exit 0;; stop) exit 0;; status) exit "$1";; esac
exit 9"#,
            0o755,
        );
        let mut a = ScriptAgent::new(&[p.clone(), "3".into()], "script::x::3").unwrap();
        assert_eq!(a.text(), "script::x::3");
        assert_eq!(a.exec(Op::Status), Exec::Exec(vec![p.clone(), "3".into(), "status".into()]));
        assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running);
        assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped);
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
        let mut a = ScriptAgent::new(&[p.clone(), "0".into()], "t").unwrap();
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Running);
        let mut a = ScriptAgent::new(&[p.clone(), "1".into()], "t").unwrap();
        match a.run(Op::Status) {
            Err(AgentError::Exit { code: 1, output }) => assert_eq!(output, "called 1 status\n"),
            other => panic!("{other:?}"),
        }
        let f = d.script("fail", "echo boom >&2; exit 1", 0o755);
        let mut a = ScriptAgent::new(&[f], "t").unwrap();
        for op in [Op::Start, Op::Stop] {
            match a.run(op) {
                Err(AgentError::Exit { code: 1, output }) => assert_eq!(output, "boom\n"),
                other => panic!("{other:?}"),
            }
        }
        let s3 = d.script("three", "exit 3", 0o755);
        let mut a = ScriptAgent::new(&[s3], "t").unwrap();
        assert!(matches!(a.run(Op::Start), Err(AgentError::Exit { code: 3, .. })));
    }

    #[test]
    fn timeouts_are_settable() {
        let d = TempDir::new();
        let p = d.script("slow", "sleep 30", 0o755);
        let mut a = ScriptAgent::new(&[p], "t").unwrap().with_timeouts(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_millis(300),
        );
        assert_eq!(a.timeout(Op::Start), Duration::from_secs(1));
        let t0 = std::time::Instant::now();
        assert!(matches!(a.run(Op::Status), Err(AgentError::Timeout { .. })));
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "{:?}", t0.elapsed());
    }

    #[test]
    fn bad_scripts_are_config_errors() {
        let d = TempDir::new();
        let p = d.script("noexec", "exit 0", 0o644);
        match ScriptAgent::new(&[p], "script::noexec") {
            Err(AgentError::Config(m)) => assert!(m.contains("not executable"), "{m}"),
            other => panic!("{other:?}"),
        }
        let missing = d.0.join("missing").to_str().unwrap().to_string();
        match ScriptAgent::new(&[missing], "script::missing") {
            Err(AgentError::Config(m)) => assert!(m.contains("No such file"), "{m}"),
            other => panic!("{other:?}"),
        }
        let dir = d.0.to_str().unwrap().to_string();
        assert!(matches!(ScriptAgent::new(&[dir], "t"), Err(AgentError::Config(_))));
        assert!(matches!(ScriptAgent::new(&[], "t"), Err(AgentError::Config(_))));
        assert!(matches!(ScriptAgent::new(&["tandem-no-such-script".into()], "t"), Err(AgentError::Config(_))));
        assert!(matches!(ScriptAgent::new(&["".into()], "t"), Err(AgentError::Config(_))));
    }
}
