//! What a test needs from the machine: root, programs, device nodes, environment.
//!
//! A missing prerequisite skips the test with a `SKIP` message on stderr, except under
//! `CI=true`, where it fails the test: CI installs everything with `scripts/prereqs test`,
//! so a missing piece there is a broken setup, not a reason to pass.
//!
//! ```ignore
//! if !require(&["ip", "socat"]) { return; }                          // root + programs
//! if !needs().tools(&["mawk", "gawk"]).ok() { return; }              // programs only
//! if !needs().root().tools(&["losetup"]).files(&["/dev/loop-control"]).ok() { return; }
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// True under `CI=true`.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The effective user is root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `tool` is an executable file in a `PATH` directory, or at that path when it has a `/`
/// (what `command -v` finds).
pub fn have(tool: &str) -> bool {
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if tool.contains('/') {
        return executable(Path::new(tool));
    }
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|d| executable(&d.join(tool)))
}

/// Collects what is missing; [`Needs::ok`] decides.
#[must_use = "call ok() to skip or fail"]
pub struct Needs {
    missing: Vec<String>,
}

/// Starts a list of prerequisites.
pub fn needs() -> Needs {
    Needs { missing: Vec::new() }
}

impl Needs {
    pub fn root(mut self) -> Needs {
        if !is_root() {
            self.missing.push("root".into());
        }
        self
    }

    /// Programs on `PATH`.
    pub fn tools(mut self, tools: &[&str]) -> Needs {
        self.missing.extend(tools.iter().filter(|t| !have(t)).map(|t| t.to_string()));
        self
    }

    /// Files or device nodes that must exist.
    pub fn files(mut self, files: &[&str]) -> Needs {
        self.missing.extend(files.iter().filter(|f| !Path::new(f).exists()).map(|f| f.to_string()));
        self
    }

    /// True when nothing is missing. Otherwise prints why the test is skipped and returns
    /// false, or under `CI=true` fails the test.
    pub fn ok(self) -> bool {
        if self.missing.is_empty() {
            return true;
        }
        missing(&self.missing.join(", "), "scripts/prereqs test installs the programs; the tests run as root")
    }
}

/// Root and the programs `tools`: the usual needs of a namespace test.
pub fn require(tools: &[&str]) -> bool {
    needs().root().tools(tools).ok()
}

/// An environment variable the test needs (`how` says who sets it); None = skip.
pub fn env(var: &str, how: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            missing(var, how);
            None
        }
    }
}

/// Reports a missing prerequisite (`hint`: where it comes from): a failure under
/// `CI=true`, otherwise a skip (false).
pub fn missing(what: &str, hint: &str) -> bool {
    let test = std::thread::current().name().unwrap_or("test").to_string();
    if in_ci() {
        panic!("{test}: missing prerequisite: {what} ({hint})");
    }
    eprintln!("SKIP {test}: missing {what} ({hint})");
    false
}
