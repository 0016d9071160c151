//! OCF resource agents, both ways.
//!
//! - [`OcfAgent`]: the `ocf::PROVIDER:TYPE::NAME=VALUE…` resource. It runs
//!   `/usr/lib/ocf/resource.d/PROVIDER/TYPE start|stop|monitor` (fork + exec, by the daemon's
//!   runner) as the OCF resource agent API describes: the parameters as `OCF_RESKEY_NAME`,
//!   `OCF_ROOT`, `OCF_RA_VERSION_MAJOR/MINOR`, `OCF_RESOURCE_INSTANCE`, `OCF_RESOURCE_TYPE`,
//!   `OCF_RESOURCE_PROVIDER` and `OCF_RESKEY_CRM_meta_timeout` (the op's deadline in ms).
//!   tandem's `status` is OCF's `monitor`; exit codes are read by
//!   [`super::runner::ExitRules::Ocf`].
//! - [`metadata`]: a small, pure reader of an agent's `meta-data` XML (parameters, required,
//!   defaults, actions), used by `check-config`.
//! - [`ra`]: tandem's own agents (ip, drbd, mount, lvm, script, guest) offered as OCF agents
//!   (`tandem ocf AGENT ACTION`, or the binary linked as `/usr/lib/ocf/resource.d/tandem/AGENT`).
//!
//! Promotable (multi-state) agents are out of scope: their codes 8, 9 and 191 are errors.

pub mod metadata;
pub mod ra;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::runner::{judge, run_blocking, ExitKind, ExitRules, Spawn};
use super::{Agent, AgentError, Exec, Op, Outcome};
use crate::config::{OcfSpec, Timeouts};
use crate::time::{self, Duration};

/// Where resource agents live: `OCF_ROOT/resource.d/PROVIDER/TYPE`.
pub const OCF_ROOT: &str = "/usr/lib/ocf";
/// The version of the OCF resource agent API tandem speaks.
pub const RA_VERSION: (u32, u32) = (1, 1);
/// How long `meta-data` may take.
pub const META_DATA_TIMEOUT: Duration = Duration::from_secs(10);
/// The most `meta-data` output read.
pub const META_DATA_MAX: usize = metadata::MAX_LEN;

/// The exit codes of the OCF resource agent API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcfCode {
    Success,
    ErrGeneric,
    ErrArgs,
    ErrUnimplemented,
    ErrPerm,
    ErrInstalled,
    ErrConfigured,
    NotRunning,
    RunningPromoted,
    FailedPromoted,
    RunningDegraded,
    DegradedPromoted,
}

impl OcfCode {
    pub const ALL: [OcfCode; 12] = [
        OcfCode::Success,
        OcfCode::ErrGeneric,
        OcfCode::ErrArgs,
        OcfCode::ErrUnimplemented,
        OcfCode::ErrPerm,
        OcfCode::ErrInstalled,
        OcfCode::ErrConfigured,
        OcfCode::NotRunning,
        OcfCode::RunningPromoted,
        OcfCode::FailedPromoted,
        OcfCode::RunningDegraded,
        OcfCode::DegradedPromoted,
    ];

    pub fn code(self) -> i32 {
        match self {
            OcfCode::Success => 0,
            OcfCode::ErrGeneric => 1,
            OcfCode::ErrArgs => 2,
            OcfCode::ErrUnimplemented => 3,
            OcfCode::ErrPerm => 4,
            OcfCode::ErrInstalled => 5,
            OcfCode::ErrConfigured => 6,
            OcfCode::NotRunning => 7,
            OcfCode::RunningPromoted => 8,
            OcfCode::FailedPromoted => 9,
            OcfCode::RunningDegraded => 190,
            OcfCode::DegradedPromoted => 191,
        }
    }

    pub fn from_code(code: i32) -> Option<OcfCode> {
        OcfCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The name in the OCF specification and resource-agents' `ocf-returncodes`.
    pub fn name(self) -> &'static str {
        match self {
            OcfCode::Success => "OCF_SUCCESS",
            OcfCode::ErrGeneric => "OCF_ERR_GENERIC",
            OcfCode::ErrArgs => "OCF_ERR_ARGS",
            OcfCode::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfCode::ErrPerm => "OCF_ERR_PERM",
            OcfCode::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfCode::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfCode::NotRunning => "OCF_NOT_RUNNING",
            OcfCode::RunningPromoted => "OCF_RUNNING_PROMOTED",
            OcfCode::FailedPromoted => "OCF_FAILED_PROMOTED",
            OcfCode::RunningDegraded => "OCF_RUNNING_DEGRADED",
            OcfCode::DegradedPromoted => "OCF_DEGRADED_PROMOTED",
        }
    }

    /// What it means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            OcfCode::Success => "success",
            OcfCode::ErrGeneric => "generic error",
            OcfCode::ErrArgs => "invalid arguments on this host",
            OcfCode::ErrUnimplemented => "action not implemented",
            OcfCode::ErrPerm => "insufficient privileges",
            OcfCode::ErrInstalled => "not installed",
            OcfCode::ErrConfigured => "not configured",
            OcfCode::NotRunning => "not running",
            OcfCode::RunningPromoted => "running promoted (promotable agents are not supported)",
            OcfCode::FailedPromoted => "failed promoted (promotable agents are not supported)",
            OcfCode::RunningDegraded => "running, degraded",
            OcfCode::DegradedPromoted => "degraded promoted (promotable agents are not supported)",
        }
    }

    /// `OCF_ERR_INSTALLED: not installed`, or `not an OCF exit code` for others.
    pub fn describe(code: i32) -> String {
        match OcfCode::from_code(code) {
            Some(c) => format!("{}: {}", c.name(), c.meaning()),
            None => "not an OCF exit code".to_string(),
        }
    }
}

/// The OCF action for a tandem operation: `status` is `monitor`.
pub fn action(op: Op) -> &'static str {
    match op {
        Op::Start => "start",
        Op::Stop => "stop",
        Op::Status => "monitor",
    }
}

/// `OCF_RESOURCE_INSTANCE` for a resource run outside a group (`tandem agent WORD`): the word,
/// with every character that a file name or an XML ID cannot hold replaced by `_`.
pub fn word_instance(text: &str) -> String {
    let mut s = crate::config::resource::xml_id(text);
    s.truncate(200);
    s
}

/// The `ocf::PROVIDER:TYPE::…` agent.
#[derive(Debug, Clone)]
pub struct OcfAgent {
    text: String,
    spec: OcfSpec,
    root: PathBuf,
    path: PathBuf,
    instance: String,
    timeouts: Timeouts,
}

impl OcfAgent {
    /// The agent must exist under [`OCF_ROOT`] and be executable.
    pub fn new(spec: &OcfSpec, text: &str, instance: &str) -> Result<OcfAgent, AgentError> {
        OcfAgent::with_root(spec, text, instance, Path::new(OCF_ROOT))
    }

    /// As [`OcfAgent::new`] with another OCF root (tests).
    pub fn with_root(spec: &OcfSpec, text: &str, instance: &str, root: &Path) -> Result<OcfAgent, AgentError> {
        let path = root.join("resource.d").join(&spec.provider).join(&spec.agent_type);
        let meta = std::fs::metadata(&path).map_err(|e| {
            let why = e.raw_os_error().map(|n| nix::errno::Errno::from_raw(n).desc().to_string());
            AgentError::Config(format!(
                "OCF agent {} is not installed: {}: {}",
                spec.agent_name(),
                path.display(),
                why.unwrap_or_else(|| e.to_string())
            ))
        })?;
        if !meta.is_file() {
            return Err(AgentError::Config(format!(
                "OCF agent {}: {} is not a file",
                spec.agent_name(),
                path.display()
            )));
        }
        if meta.permissions().mode() & 0o111 == 0
            || nix::unistd::access(path.as_path(), nix::unistd::AccessFlags::X_OK).is_err()
        {
            return Err(AgentError::Config(format!(
                "OCF agent {}: {} is not executable",
                spec.agent_name(),
                path.display()
            )));
        }
        Ok(OcfAgent {
            text: text.to_string(),
            spec: spec.clone(),
            root: root.to_path_buf(),
            path,
            instance: instance.to_string(),
            timeouts: Timeouts::default(),
        })
    }

    /// Sets the deadlines of the three operations (passed to the agent in ms as
    /// `OCF_RESKEY_CRM_meta_timeout`).
    pub fn with_timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = t;
        self
    }

    pub fn spec(&self) -> &OcfSpec {
        &self.spec
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The deadline of `op`.
    pub fn timeout(&self, op: Op) -> Duration {
        match op {
            Op::Start => self.timeouts.start,
            Op::Stop => self.timeouts.stop,
            Op::Status => self.timeouts.status,
        }
    }

    /// The variables an action runs with (added to the daemon's environment).
    /// `monitor` is a probe (`OCF_RESKEY_CRM_meta_interval=0`): tandem asks once, when it
    /// needs the answer; [`OcfAgent::env_recurring`] is the `monitor` line's recurring check.
    pub fn env(&self, action: &str, timeout: Duration) -> Vec<(String, String)> {
        self.env_interval(action, timeout, Duration::ZERO)
    }

    /// The variables of a recurring `monitor` every `interval`
    /// (`OCF_RESKEY_CRM_meta_interval` in milliseconds, as Pacemaker passes it).
    pub fn env_recurring(&self, interval: Duration) -> Vec<(String, String)> {
        self.env_interval("monitor", self.timeouts.status, interval)
    }

    fn env_interval(&self, action: &str, timeout: Duration, interval: Duration) -> Vec<(String, String)> {
        let mut env = Vec::with_capacity(self.spec.params.len() + 9);
        let mut set = |k: &str, v: String| env.push((k.to_string(), v));
        set("OCF_ROOT", self.root.display().to_string());
        set("OCF_RA_VERSION_MAJOR", RA_VERSION.0.to_string());
        set("OCF_RA_VERSION_MINOR", RA_VERSION.1.to_string());
        set("OCF_RESOURCE_INSTANCE", self.instance.clone());
        set("OCF_RESOURCE_TYPE", self.spec.agent_type.clone());
        set("OCF_RESOURCE_PROVIDER", self.spec.provider.clone());
        set("OCF_RESKEY_CRM_meta_timeout", timeout.as_millis().to_string());
        if action == "monitor" {
            set("OCF_RESKEY_CRM_meta_interval", interval.as_millis().to_string());
        }
        for (k, v) in &self.spec.params {
            env.push((format!("OCF_RESKEY_{k}"), v.clone()));
        }
        env
    }

    /// `[PATH, action]`.
    pub fn argv(&self, action: &str) -> Vec<String> {
        vec![self.path.display().to_string(), action.to_string()]
    }

    /// Runs `validate-all` (bounded by the status deadline). `Ok(false)` when the agent does
    /// not implement it (exit 3).
    pub fn validate_all(&self) -> Result<bool, AgentError> {
        let t = self.timeouts.status;
        let (argv, env) = (self.argv("validate-all"), self.env("validate-all", t));
        let done = run_blocking(Spawn::ExecEnv { argv: &argv, env: &env }, t)?;
        match done.status {
            ExitKind::Code(0) => Ok(true),
            ExitKind::Code(3) => Ok(false),
            _ => judge(ExitRules::Ocf, Op::Start, &done).map(|_| true),
        }
    }

    /// Runs `meta-data` and returns what it printed on stdout (stderr is dropped unless it
    /// fails, then it is in the error).
    pub fn meta_data(&self) -> Result<String, AgentError> {
        let (code, out, err) =
            capture(&self.argv("meta-data"), &self.env("meta-data", META_DATA_TIMEOUT), META_DATA_TIMEOUT)?;
        if code != ExitKind::Code(0) {
            let done = super::runner::Done { tag: 0, status: code, output: err, elapsed: META_DATA_TIMEOUT };
            return judge(ExitRules::Ocf, Op::Start, &done).map(|_| String::new());
        }
        Ok(out)
    }
}

/// Something `check-config` found out about an OCF resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// An error (the daemon would fail the resource) or a warning.
    pub error: bool,
    pub msg: String,
}

/// What the agent's meta-data says about the parameters given: a required one missing is an
/// error; one the agent does not list is a warning (a typo, or an agent that reads more than
/// it documents).
pub fn check_params(md: &metadata::MetaData, spec: &OcfSpec) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in md.params.iter().filter(|p| p.required && spec.param(&p.name).is_none()) {
        out.push(Finding { error: true, msg: format!("parameter '{}' is required by the agent's meta-data", p.name) });
    }
    for (n, _) in spec.params.iter().filter(|(n, _)| md.param(n).is_none()) {
        out.push(Finding { error: false, msg: format!("parameter '{n}' is not in the agent's meta-data") });
    }
    out
}

/// What an agent's meta-data says its parameters are, as a table for people
/// (`tandem ocf info`): each parameter with whether it is required, its default, and the
/// value `spec` gives it; then what is missing, unknown, and the actions it lists.
pub fn describe(md: &metadata::MetaData, spec: &OcfSpec) -> String {
    let mut rows: Vec<[String; 4]> = vec![["parameter".into(), "required".into(), "default".into(), "given".into()]];
    for p in &md.params {
        rows.push([
            p.name.clone(),
            if p.required { "yes".into() } else { "no".into() },
            p.default.clone().unwrap_or_else(|| "-".into()),
            spec.param(&p.name).map_or_else(|| "-".into(), str::to_string),
        ]);
    }
    let mut w = [0usize; 3];
    for r in &rows {
        for (i, c) in r.iter().take(3).enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = format!("ocf::{} (meta-data of {})\n", spec.agent_name(), md.name);
    for r in &rows {
        let line = format!("{:<a$}  {:<b$}  {:<c$}  {}", r[0], r[1], r[2], r[3], a = w[0], b = w[1], c = w[2]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for f in check_params(md, spec) {
        out.push_str(if f.error { "error: " } else { "warning: " });
        out.push_str(&f.msg);
        out.push('\n');
    }
    let mut actions: Vec<&str> = Vec::new();
    for a in &md.actions {
        if !actions.contains(&a.as_str()) {
            actions.push(a);
        }
    }
    out.push_str(&format!("actions: {}\n", actions.join(" ")));
    out
}

impl OcfAgent {
    /// `check-config`'s look at the agent on this host: its meta-data (which must parse),
    /// the parameters against it ([`check_params`]), then `validate-all` with the resource's
    /// parameters (skipped when required ones are missing; an agent without it passes).
    pub fn check(&self) -> Vec<Finding> {
        let md = match self.meta_data() {
            Ok(x) => x,
            Err(e) => return vec![Finding { error: true, msg: format!("meta-data failed: {e}") }],
        };
        let md = match metadata::parse(&md) {
            Ok(m) => m,
            Err(e) => return vec![Finding { error: true, msg: format!("cannot read its meta-data: {e}") }],
        };
        let mut out = check_params(&md, &self.spec);
        if out.iter().any(|f| f.error) {
            return out;
        }
        if let Err(e) = self.validate_all() {
            out.push(Finding { error: true, msg: format!("validate-all failed: {e}") });
        }
        out
    }
}

impl Agent for OcfAgent {
    fn text(&self) -> &str {
        &self.text
    }

    fn exec(&self, op: Op) -> Exec {
        let a = action(op);
        Exec::ExecEnv { argv: self.argv(a), env: self.env(a, self.timeout(op)) }
    }

    fn exec_recurring(&self, interval: Duration) -> Exec {
        Exec::ExecEnv { argv: self.argv("monitor"), env: self.env_recurring(interval) }
    }

    fn exit_rules(&self) -> ExitRules {
        ExitRules::Ocf
    }

    fn run(&mut self, op: Op) -> Result<Outcome, AgentError> {
        let a = action(op);
        let (argv, env) = (self.argv(a), self.env(a, self.timeout(op)));
        let done = run_blocking(Spawn::ExecEnv { argv: &argv, env: &env }, self.timeout(op))?;
        judge(ExitRules::Ocf, op, &done)
    }
}

/// Runs `argv` with `env` added, stdin on /dev/null, in its own process group; returns how it
/// ended, its stdout and its stderr (each at most [`META_DATA_MAX`] bytes, lossy UTF-8). At the
/// deadline the group is killed. For commands, never for the daemon's loop.
pub fn capture(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<(ExitKind, String, String), AgentError> {
    use std::os::fd::AsRawFd;
    let (prog, args) = argv.split_first().ok_or_else(|| AgentError::Config("empty command".to_string()))?;
    let errno = |e: &std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let mut child = Command::new(prog)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| AgentError::Sys { op: format!("exec {prog}"), errno: errno(&e) })?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let deadline = time::now() + timeout;
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let mut bufs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut open = [out_pipe.is_some(), err_pipe.is_some()];
    let mut timed_out = false;
    while open.iter().any(|o| *o) {
        let now = time::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        let fds = [
            out_pipe.as_ref().filter(|_| open[0]).map_or(-1, |p| p.as_raw_fd()),
            err_pipe.as_ref().filter(|_| open[1]).map_or(-1, |p| p.as_raw_fd()),
        ];
        let mut pfds = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
        let ms = i32::try_from(now.millis_until_ceil(deadline).min(1000)).unwrap_or(1000);
        match crate::sys::process::poll(&mut pfds, ms) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(AgentError::Sys { op: "poll".into(), errno: e }),
        }
        for (i, p) in pfds.iter().enumerate() {
            if p.fd < 0 || p.revents == 0 {
                continue;
            }
            let mut chunk = [0u8; 8192];
            let n = if i == 0 {
                out_pipe.as_mut().map(|r| r.read(&mut chunk))
            } else {
                err_pipe.as_mut().map(|r| r.read(&mut chunk))
            };
            match (n, bufs.get_mut(i)) {
                (Some(Ok(n)), Some(b)) if n > 0 => {
                    if b.len() < META_DATA_MAX {
                        b.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                    }
                }
                _ => {
                    if let Some(o) = open.get_mut(i) {
                        *o = false;
                    }
                }
            }
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if !timed_out && time::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => break None,
        }
    };
    let kind = match status {
        Some(st) => {
            use std::os::unix::process::ExitStatusExt;
            match (st.code(), st.signal()) {
                (Some(c), _) => ExitKind::Code(c),
                (None, Some(s)) => ExitKind::Signal(s),
                (None, None) => ExitKind::Code(-1),
            }
        }
        None => {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            ExitKind::TimedOut
        }
    };
    let [out, err] = bufs;
    Ok((kind, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    /// A private OCF root with agents written as shell scripts; removed on drop.
    struct Root(TempDir);
    impl Root {
        fn new() -> Root {
            let dir = TempDir::new("ocf");
            std::fs::create_dir_all(dir.join("resource.d/test")).unwrap();
            Root(dir)
        }
        fn agent(&self, name: &str, body: &str) {
            let p = self.0.join("resource.d/test").join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn describe_lists_required_defaults_and_given() {
        let md = metadata::MetaData {
            name: "Dummy".into(),
            params: vec![
                metadata::ParamInfo { name: "ip".into(), required: true, ..Default::default() },
                metadata::ParamInfo {
                    name: "state".into(),
                    default: Some("/run/x.state".into()),
                    ..Default::default()
                },
            ],
            actions: vec!["start".into(), "monitor".into(), "monitor".into(), "stop".into()],
        };
        let t = describe(&md, &spec("ocf::test:Dummy::state=/tmp/s::bogus=1"));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "ocf::test:Dummy (meta-data of Dummy)");
        assert_eq!(lines[1], "parameter  required  default       given");
        assert_eq!(lines[2], "ip         yes       -             -");
        assert_eq!(lines[3], "state      no        /run/x.state  /tmp/s");
        assert_eq!(lines[4], "error: parameter 'ip' is required by the agent's meta-data");
        assert_eq!(lines[5], "warning: parameter 'bogus' is not in the agent's meta-data");
        assert_eq!(lines[6], "actions: start monitor stop");
    }

    fn spec(w: &str) -> OcfSpec {
        match crate::config::parse_resource(w).unwrap().spec {
            crate::config::ResourceSpec::Ocf(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn codes_and_names() {
        for c in OcfCode::ALL {
            assert_eq!(OcfCode::from_code(c.code()), Some(c));
        }
        assert_eq!(OcfCode::from_code(42), None);
        assert_eq!(OcfCode::describe(1), "OCF_ERR_GENERIC: generic error");
        assert_eq!(OcfCode::describe(2), "OCF_ERR_ARGS: invalid arguments on this host");
        assert_eq!(OcfCode::describe(3), "OCF_ERR_UNIMPLEMENTED: action not implemented");
        assert_eq!(OcfCode::describe(4), "OCF_ERR_PERM: insufficient privileges");
        assert_eq!(OcfCode::describe(5), "OCF_ERR_INSTALLED: not installed");
        assert_eq!(OcfCode::describe(6), "OCF_ERR_CONFIGURED: not configured");
        assert_eq!(OcfCode::describe(7), "OCF_NOT_RUNNING: not running");
        assert_eq!(OcfCode::describe(99), "not an OCF exit code");
        assert_eq!((action(Op::Start), action(Op::Stop), action(Op::Status)), ("start", "stop", "monitor"));
    }

    #[test]
    fn environment_and_argv() {
        let r = Root::new();
        r.agent("env", "env | grep ^OCF_ | sort; exit 0");
        let s = spec("ocf::test:env::ip=2001:db8::50::opts=a=b::empty=");
        let t = Timeouts {
            start: Duration::from_secs(30),
            stop: Duration::from_secs(40),
            status: Duration::from_millis(1500),
        };
        let a = OcfAgent::with_root(&s, "ocf::test:env", "web-env-2", r.0.path()).unwrap().with_timeouts(t);
        let path = r.0.join("resource.d/test/env").display().to_string();
        let Exec::ExecEnv { argv, env } = a.exec(Op::Status) else { panic!() };
        assert_eq!(argv, [path.clone(), "monitor".to_string()]);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("OCF_RESKEY_CRM_meta_timeout"), Some("1500"));
        assert_eq!(get("OCF_RESKEY_CRM_meta_interval"), Some("0"));
        assert_eq!(get("OCF_RESKEY_ip"), Some("2001:db8::50"));
        // The monitor line's recurring check: the interval in ms, the status deadline.
        let Exec::ExecEnv { argv, env } = a.exec_recurring(Duration::from_millis(2500)) else { panic!() };
        assert_eq!(argv, [path.clone(), "monitor".to_string()]);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("OCF_RESKEY_CRM_meta_interval"), Some("2500"));
        assert_eq!(get("OCF_RESKEY_CRM_meta_timeout"), Some("1500"));
        let Exec::ExecEnv { argv, env } = a.exec(Op::Start) else { panic!() };
        assert_eq!(argv[1], "start");
        assert!(!env.iter().any(|(k, _)| k == "OCF_RESKEY_CRM_meta_interval"));
        let (code, out, _) = capture(&a.argv("start"), &a.env("start", t.start), t.start).unwrap();
        assert_eq!(code, ExitKind::Code(0));
        let want = format!(
            "OCF_RA_VERSION_MAJOR=1\nOCF_RA_VERSION_MINOR=1\nOCF_RESKEY_CRM_meta_timeout=30000\n\
             OCF_RESKEY_empty=\nOCF_RESKEY_ip=2001:db8::50\nOCF_RESKEY_opts=a=b\n\
             OCF_RESOURCE_INSTANCE=web-env-2\nOCF_RESOURCE_PROVIDER=test\nOCF_RESOURCE_TYPE=env\nOCF_ROOT={}\n",
            r.0.path().display()
        );
        assert_eq!(out, want);
        assert_eq!(a.instance(), "web-env-2");
    }

    #[test]
    fn exit_codes_per_operation() {
        let r = Root::new();
        // The exit code of each action comes from a parameter: OCF_RESKEY_<action>.
        r.agent("codes", r#"echo "said $1" >&2; eval "exit \${OCF_RESKEY_$1:-0}""#);
        let agent = |w: &str| OcfAgent::with_root(&spec(w), w, "i", r.0.path()).unwrap();
        let mut a = agent("ocf::test:codes::start=0::stop=0::monitor=7");
        assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running);
        assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped);
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
        let mut a = agent("ocf::test:codes::stop=7::monitor=0");
        assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped, "OCF_NOT_RUNNING is a successful stop");
        assert_eq!(a.run(Op::Status).unwrap(), Outcome::Running);
        let mut a = agent("ocf::test:codes::start=5::monitor=1::stop=6");
        match a.run(Op::Start) {
            Err(e @ AgentError::Ocf { code: 5, .. }) => {
                assert_eq!(e.to_string(), "exited with status 5 (OCF_ERR_INSTALLED: not installed): said start")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(a.run(Op::Status), Err(AgentError::Ocf { code: 1, .. })));
        assert!(matches!(a.run(Op::Stop), Err(AgentError::Ocf { code: 6, .. })));
        assert_eq!(a.exit_rules(), ExitRules::Ocf);
    }

    #[test]
    fn validate_and_meta_data() {
        let r = Root::new();
        r.agent(
            "v",
            r#"case $1 in
meta-data) echo '<resource-agent name="v"><parameters/><actions/></resource-agent>'; echo noise >&2; exit 0;;
validate-all) [ -n "$OCF_RESKEY_need" ] && exit 0; echo "need is not set" >&2; exit 6;;
esac
exit 3"#,
        );
        r.agent("nometa", "echo broken >&2; exit 1");
        let ok = OcfAgent::with_root(&spec("ocf::test:v::need=1"), "w", "i", r.0.path()).unwrap();
        assert!(ok.validate_all().unwrap());
        assert_eq!(ok.meta_data().unwrap(), "<resource-agent name=\"v\"><parameters/><actions/></resource-agent>\n");
        let bad = OcfAgent::with_root(&spec("ocf::test:v"), "w", "i", r.0.path()).unwrap();
        let e = bad.validate_all().unwrap_err().to_string();
        assert_eq!(e, "exited with status 6 (OCF_ERR_CONFIGURED: not configured): need is not set");
        let nometa = OcfAgent::with_root(&spec("ocf::test:nometa"), "w", "i", r.0.path()).unwrap();
        assert!(nometa.meta_data().unwrap_err().to_string().contains("broken"));
        // validate-all not implemented: nothing to check.
        r.agent("noval", "exit 3");
        assert!(!OcfAgent::with_root(&spec("ocf::test:noval"), "w", "i", r.0.path()).unwrap().validate_all().unwrap());
    }

    #[test]
    fn check_reads_meta_data_and_validates() {
        let r = Root::new();
        r.agent(
            "chk",
            r#"case $1 in
meta-data) cat <<'X'
<?xml version="1.0"?>
<resource-agent name="chk"><version>1.1</version><parameters>
<parameter name="ip" required="1"><content type="string"/></parameter>
<parameter name="nic"><content type="string" default="eth0"/></parameter>
</parameters><actions><action name="validate-all" timeout="5s"/></actions></resource-agent>
X
exit 0;;
validate-all) [ "$OCF_RESKEY_ip" = bad ] && { echo "ip 'bad' is not an address"; exit 6; }; exit 0;;
esac
exit 3"#,
        );
        let check = |w: &str| OcfAgent::with_root(&spec(w), w, "i", r.0.path()).unwrap().check();
        assert_eq!(check("ocf::test:chk::ip=192.0.2.5::nic=eth1"), []);
        assert_eq!(
            check("ocf::test:chk::nic=eth1::typo=1"),
            [
                Finding { error: true, msg: "parameter 'ip' is required by the agent's meta-data".into() },
                Finding { error: false, msg: "parameter 'typo' is not in the agent's meta-data".into() },
            ]
        );
        assert_eq!(
            check("ocf::test:chk::ip=bad"),
            [Finding {
                error: true,
                msg: "validate-all failed: exited with status 6 (OCF_ERR_CONFIGURED: not configured): ip 'bad' is \
                      not an address"
                    .into()
            }]
        );
        r.agent("junk", "echo '<resource-agent>'; exit 0");
        let f = OcfAgent::with_root(&spec("ocf::test:junk"), "w", "i", r.0.path()).unwrap().check();
        assert!(f.len() == 1 && f[0].error && f[0].msg.starts_with("cannot read its meta-data: "), "{f:?}");
    }

    #[test]
    fn missing_or_unusable_agents_are_config_errors() {
        let r = Root::new();
        let e = OcfAgent::with_root(&spec("ocf::test:absent"), "w", "i", r.0.path()).unwrap_err().to_string();
        assert!(e.starts_with("OCF agent test:absent is not installed: "), "{e}");
        assert!(e.contains("No such file"), "{e}");
        std::fs::write(r.0.join("resource.d/test/plain"), "x").unwrap();
        let e = OcfAgent::with_root(&spec("ocf::test:plain"), "w", "i", r.0.path()).unwrap_err().to_string();
        assert!(e.contains("not executable"), "{e}");
    }

    #[test]
    fn capture_times_out() {
        let argv = ["/bin/sh".to_string(), "-c".into(), "echo early; sleep 30".into()];
        let t0 = std::time::Instant::now();
        let (code, out, _) = capture(&argv, &[], Duration::from_millis(300)).unwrap();
        assert_eq!(code, ExitKind::TimedOut);
        assert_eq!(out, "early\n");
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn word_instances_are_safe() {
        assert_eq!(word_instance("ocf::heartbeat:Dummy::state=/x y"), "ocf__heartbeat_Dummy__state__x_y");
        assert_eq!(word_instance(&"a".repeat(300)).len(), 200);
    }
}
