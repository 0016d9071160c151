//! The resource runner and the script agent against real processes.
//!
//! Every test takes `GUARD` for reading; `no_zombies_left` takes it for writing so
//! that no other test has a child in flight while it looks for zombies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use common::TempDir;
use tandem::agent::runner::{judge, run_blocking, Done, ExitKind, ExitRules, Runner, Spawn, DEFAULT_OUTPUT_CAP};
use tandem::agent::script::ScriptAgent;
use tandem::agent::{Agent, AgentError, Op, Outcome};
use tandem::time::{self, Duration};

static GUARD: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    GUARD.read().unwrap_or_else(|e| e.into_inner())
}

/// A temp dir holding test scripts, with paths as strings (what argv wants).
struct Dir(TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(TempDir::new("runner"))
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
    fn script(&self, name: &str, body: &str) -> String {
        common::script(self.0.path(), name, body).to_str().unwrap().to_string()
    }
    /// Waits (bounded) for a pid file written by a script.
    fn read_pid(&self, name: &str) -> i32 {
        let p = self.path(name);
        for _ in 0..200 {
            if let Ok(s) = std::fs::read_to_string(&p) {
                if let Ok(pid) = s.trim().parse() {
                    return pid;
                }
            }
            std::thread::sleep(StdDuration::from_millis(10));
        }
        panic!("no pid in {p}");
    }
}

/// Kills a pid on drop (a background "daemon" a test left running).
struct KillPid(i32);

impl Drop for KillPid {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGKILL);
    }
}

/// (state, ppid) from /proc/PID/stat, or None when the process is gone.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    matches!(proc_stat(pid), Some((st, _)) if st != 'Z' && st != 'X')
}

/// Waits up to `max` for `pid` to stop being alive.
fn wait_dead(pid: i32, max: StdDuration) -> bool {
    let t0 = StdInstant::now();
    while t0.elapsed() < max {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
    !alive(pid)
}

fn run_script(path: &str, op: Op, deadline: StdDuration) -> Done {
    let argv = [path.to_string(), op.name().to_string()];
    run_blocking(Spawn::Exec(&argv), deadline).unwrap()
}

#[test]
fn lsb_exit_codes_are_judged_per_op() {
    let _g = shared();
    let d = Dir::new();
    let secs = StdDuration::from_secs(10);
    for (code, op, want) in [
        (0, Op::Start, Ok(Outcome::Running)),
        (0, Op::Stop, Ok(Outcome::Stopped)),
        (0, Op::Status, Ok(Outcome::Running)),
        (3, Op::Status, Ok(Outcome::Stopped)),
        (1, Op::Start, Err(1)),
        (1, Op::Stop, Err(1)),
        (1, Op::Status, Err(1)),
        (3, Op::Start, Err(3)),
        (3, Op::Stop, Err(3)),
    ] {
        let p = d.script(&format!("exit{code}"), &format!("echo \"op=$1\"\nexit {code}"));
        let done = run_script(&p, op, secs);
        assert_eq!(done.status, ExitKind::Code(code));
        assert_eq!(done.output, format!("op={}\n", op.name()));
        match (judge(ExitRules::Lsb, op, &done), want) {
            (Ok(got), Ok(w)) => assert_eq!(got, w, "{code} {op:?}"),
            (Err(AgentError::Exit { code: c, output }), Err(w)) => {
                assert_eq!(c, w);
                assert_eq!(output, format!("op={}\n", op.name()));
            }
            (got, w) => panic!("exit {code} {op:?}: got {got:?}, want {w:?}"),
        }
    }
}

#[test]
fn script_agent_runs_with_op_appended() {
    let _g = shared();
    let d = Dir::new();
    let state = d.path("state");
    let p = d.script(
        "svc",
        &format!(
            r#"case "$2" in
start) echo "$1" > {state}; echo "started $1";;
stop) rm -f {state};;
status) [ -f {state} ] || exit 3;;
*) exit 2;;
esac"#
        ),
    );
    let text = format!("script::{p}::web");
    let mut a = script_agent(&text).unwrap();
    assert_eq!(a.text(), text);
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
    assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running);
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "web\n");
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Running);
    assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped);
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
}

#[test]
fn output_is_bounded_and_keeps_the_tail() {
    let _g = shared();
    let d = Dir::new();
    // 10 MB of 'x', then a marker; stderr goes to the same pipe.
    let p = d.script("spew", "head -c 10000000 /dev/zero | tr '\\0' x\necho END-OF-OUTPUT >&2\nexit 1");
    let t0 = StdInstant::now();
    let done = run_script(&p, Op::Start, StdDuration::from_secs(30));
    assert_eq!(done.status, ExitKind::Code(1));
    assert!(done.output.len() <= DEFAULT_OUTPUT_CAP, "{}", done.output.len());
    assert!(done.output.ends_with("xxxxEND-OF-OUTPUT\n"), "{:?}", &done.output[done.output.len() - 40..]);
    assert!(done.output.len() > DEFAULT_OUTPUT_CAP - 64);
    assert!(t0.elapsed() < StdDuration::from_secs(20));
    // The error carries the (bounded) output.
    match judge(ExitRules::Lsb, Op::Start, &done) {
        Err(AgentError::Exit { code: 1, output }) => assert!(output.len() <= DEFAULT_OUTPUT_CAP),
        other => panic!("{other:?}"),
    }
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let _g = shared();
    let d = Dir::new();
    let pidfile = d.path("bg.pid");
    let p = d.script("hang", &format!("sleep 100 &\necho $! > {pidfile}\necho waiting\nsleep 100"));
    let deadline = StdDuration::from_millis(1000);
    let grace = StdDuration::from_millis(500); // min(2s, deadline/2)
    let t0 = StdInstant::now();
    let done = run_script(&p, Op::Start, deadline);
    let took = t0.elapsed();
    let bg = d.read_pid("bg.pid");
    let _k = KillPid(bg);
    assert_eq!(done.status, ExitKind::TimedOut);
    assert_eq!(done.output, "waiting\n");
    assert!(took >= deadline, "{took:?}");
    assert!(took < deadline + grace + StdDuration::from_secs(1), "{took:?}");
    assert!(done.elapsed >= deadline && done.elapsed < deadline + grace + StdDuration::from_secs(1));
    assert!(wait_dead(bg, StdDuration::from_secs(2)), "background child {bg} survived the timeout");
    match judge(ExitRules::Lsb, Op::Start, &done) {
        Err(AgentError::Timeout { after, output }) => {
            assert!(after >= deadline);
            assert_eq!(output, "waiting\n");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn term_ignoring_script_is_killed_after_the_grace() {
    let _g = shared();
    let d = Dir::new();
    let pidfile = d.path("bg.pid");
    // The trap makes TERM ignored in the shell and in everything it starts.
    let p = d.script("stubborn", &format!("trap '' TERM\nsleep 100 &\necho $! > {pidfile}\nsleep 100"));
    let deadline = StdDuration::from_millis(1000);
    let grace = StdDuration::from_millis(500);
    let t0 = StdInstant::now();
    let done = run_script(&p, Op::Stop, deadline);
    let took = t0.elapsed();
    let bg = d.read_pid("bg.pid");
    let _k = KillPid(bg);
    assert_eq!(done.status, ExitKind::TimedOut);
    assert!(took >= deadline + grace, "KILL came before the grace: {took:?}");
    assert!(took < deadline + grace + StdDuration::from_secs(1), "{took:?}");
    assert!(wait_dead(bg, StdDuration::from_secs(2)), "TERM-ignoring child {bg} survived");
}

#[test]
fn start_leaving_a_daemon_completes_and_the_daemon_survives() {
    let _g = shared();
    let d = Dir::new();
    let pidfile = d.path("daemon.pid");
    // The "daemon" keeps the output pipe open (no redirection), as careless scripts do.
    let p = d.script("start-daemon", &format!("sleep 100 &\necho $! > {pidfile}\necho started\nexit 0"));
    let t0 = StdInstant::now();
    let done = run_script(&p, Op::Start, StdDuration::from_secs(10));
    let took = t0.elapsed();
    let daemon = d.read_pid("daemon.pid");
    let _k = KillPid(daemon);
    assert_eq!(done.status, ExitKind::Code(0));
    assert_eq!(done.output, "started\n");
    assert!(took < StdDuration::from_secs(2), "waited for the pipe to close: {took:?}");
    assert_eq!(judge(ExitRules::Lsb, Op::Start, &done).unwrap(), Outcome::Running);
    std::thread::sleep(StdDuration::from_millis(300));
    assert!(alive(daemon), "the service started by a successful start was killed");
}

#[test]
fn fork_closure_returns_lsb_code_and_message() {
    let _g = shared();
    let mut f = || {
        tandem::agent::runner::child_print("mount: /srv/data is not mounted\n");
        3
    };
    let done = run_blocking(Spawn::Fork(&mut f), StdDuration::from_secs(10)).unwrap();
    assert_eq!(done.status, ExitKind::Code(3));
    assert_eq!(done.output, "mount: /srv/data is not mounted\n");
    assert_eq!(judge(ExitRules::Lsb, Op::Status, &done).unwrap(), Outcome::Stopped);
    assert!(matches!(judge(ExitRules::Lsb, Op::Start, &done), Err(AgentError::Exit { code: 3, .. })));

    // A closure that hangs is timed out like a script.
    let mut hang = || {
        std::thread::sleep(StdDuration::from_secs(100));
        0
    };
    let done = run_blocking(Spawn::Fork(&mut hang), StdDuration::from_millis(300)).unwrap();
    assert_eq!(done.status, ExitKind::TimedOut);
}

#[test]
fn killed_by_signal_is_reported() {
    let _g = shared();
    let argv = ["/bin/sh".to_string(), "-c".into(), "echo bye; kill -SEGV $$".into()];
    let done = run_blocking(Spawn::Exec(&argv), StdDuration::from_secs(10)).unwrap();
    assert_eq!(done.status, ExitKind::Signal(libc::SIGSEGV));
    assert!(matches!(
        judge(ExitRules::Lsb, Op::Start, &done),
        Err(AgentError::Signal { signal, ref output }) if signal == libc::SIGSEGV && output == "bye\n"
    ));
}

#[test]
fn many_concurrent_children_with_the_poll_loop() {
    let _g = shared();
    const N: u64 = 24;
    let mut runner = Runner::new(N as usize);
    let start = time::now();
    let mut want: HashMap<u64, ExitKind> = HashMap::new();
    for tag in 0..N {
        // Tags divisible by 8 hang and time out; the others exit with tag % 4 after a
        // short, varied sleep.
        let (cmd, deadline, kind) = if tag % 8 == 0 {
            ("echo hanging; sleep 100".to_string(), Duration::from_millis(700), ExitKind::TimedOut)
        } else {
            let ms = (tag * 37) % 400;
            let code = (tag % 4) as i32;
            (format!("sleep 0.{ms:03}; echo job {tag}; exit {code}"), Duration::from_secs(10), ExitKind::Code(code))
        };
        let argv = ["/bin/sh".to_string(), "-c".into(), cmd];
        runner.spawn(start, tag, Spawn::Exec(&argv), deadline).unwrap();
        want.insert(tag, kind);
    }
    assert_eq!(runner.running(), N as usize);
    let argv = ["/bin/true".to_string()];
    assert!(runner.spawn(start, 99, Spawn::Exec(&argv), Duration::from_secs(1)).is_err());

    let mut fds = Vec::new();
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut done: Vec<Done> = Vec::new();
    let mut iterations = 0;
    while runner.running() > 0 {
        iterations += 1;
        assert!(iterations < 10_000, "poll loop does not converge");
        let now = time::now();
        assert!(now.saturating_since(start) < Duration::from_secs(15), "jobs took too long");
        fds.clear();
        runner.fds(&mut fds);
        assert!(fds.iter().all(|&(_, tag)| tag < N));
        pfds.clear();
        pfds.extend(fds.iter().map(|&(fd, _)| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }));
        let timeout = runner.poll_at().map_or(1000, |t| now.millis_until_ceil(t).min(1000) as i32);
        match tandem::sys::process::poll(&mut pfds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("poll: {e}"),
        }
        let now = time::now();
        for p in pfds.iter().filter(|p| p.revents != 0) {
            runner.on_ready(now, p.fd);
        }
        runner.collect(now, &mut done);
    }
    assert_eq!(done.len(), N as usize);
    for d in &done {
        assert_eq!(Some(&d.status), want.get(&d.tag), "tag {}", d.tag);
        if d.status == ExitKind::TimedOut {
            assert_eq!(d.output, "hanging\n");
            assert!(d.elapsed >= Duration::from_millis(700) && d.elapsed < Duration::from_millis(2000));
        } else {
            assert_eq!(d.output, format!("job {}\n", d.tag));
            assert!(d.elapsed < Duration::from_secs(3), "tag {} took {:?}", d.tag, d.elapsed);
        }
    }
    let mut tags: Vec<u64> = done.iter().map(|d| d.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..N).collect::<Vec<_>>());
    assert_eq!(runner.poll_at(), None);
    let mut fds2 = Vec::new();
    runner.fds(&mut fds2);
    assert!(fds2.is_empty());
}

#[test]
fn kill_all_kills_and_reaps_every_group() {
    let _g = shared();
    let d = Dir::new();
    let mut runner = Runner::new(4);
    let now = time::now();
    let mut bgs = Vec::new();
    for i in 0..4 {
        let pidfile = d.path(&format!("bg{i}.pid"));
        let argv = ["/bin/sh".to_string(), "-c".into(), format!("sleep 100 & echo $! > {pidfile}; sleep 100")];
        runner.spawn(now, i, Spawn::Exec(&argv), Duration::from_secs(60)).unwrap();
    }
    for i in 0..4 {
        let pid = d.read_pid(&format!("bg{i}.pid"));
        bgs.push(KillPid(pid));
    }
    runner.kill_all();
    assert_eq!(runner.running(), 0);
    for bg in &bgs {
        assert!(wait_dead(bg.0, StdDuration::from_secs(2)), "{} survived kill_all", bg.0);
    }
}

/// The agent for a `script::` word, through the config's parser (as the daemon builds it).
fn script_agent(word: &str) -> Result<ScriptAgent, AgentError> {
    let r = tandem::config::parse_resource(word).unwrap();
    let tandem::config::ResourceSpec::Script(spec) = &r.spec else { panic!("{word}: not a script") };
    ScriptAgent::new(spec, &r.text)
}

#[test]
fn bad_scripts_are_config_errors() {
    let _g = shared();
    let d = Dir::new();
    let p = d.path("noexec");
    std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    match script_agent(&format!("script::{p}")) {
        Err(AgentError::Config(m)) => {
            assert!(m.contains("not executable") && m.contains(&p), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let missing = d.path("missing");
    match script_agent(&format!("script::{missing}")) {
        Err(e @ AgentError::Config(_)) => assert!(e.to_string().contains(&missing), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_zombies_left() {
    // Exclusive: no other test of this file has children in flight.
    let _g = GUARD.write().unwrap_or_else(|e| e.into_inner());
    let d = Dir::new();
    let ok = d.script("ok", "exit 0");
    let hang = d.script("hang", "sleep 100 & sleep 100");
    for _ in 0..5 {
        run_script(&ok, Op::Start, StdDuration::from_secs(5));
    }
    run_script(&hang, Op::Start, StdDuration::from_millis(200));
    let mut f = || 1;
    run_blocking(Spawn::Fork(&mut f), StdDuration::from_secs(5)).unwrap();
    let me = std::process::id() as i32;
    let mut zombies = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((state, ppid)) = proc_stat(pid) {
            if ppid == me && state == 'Z' {
                zombies.push(pid);
            }
        }
    }
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
}
