//! `tandem check-config`: everything the daemon would refuse, and everything it would warn
//! about, as `file:line: message`, checked as strictly as the daemon builds its agents.

use std::path::Path;

use crate::agent;
use crate::config::{ConfigError, ConfigWarning, ResourceSpec};
use crate::load::load_all;

/// Prints every error (`file:line: message`) and warning (`file:line: warning: message`) to
/// `out`, in line order, then a one-line summary when the configuration is good. Returns the
/// exit code: 0 good, 2 errors.
pub fn check_config(path: &Path, node: Option<&str>, out: &mut dyn std::io::Write) -> i32 {
    let loaded = load_all(path, node);
    let mut errs = loaded.errors;
    let mut warnings = loaded.warnings;
    // Resources are checked as the daemon builds them: an unimplemented type, a missing
    // interface, a script that is not executable, an OCF agent that is not installed. An
    // OCF agent is asked too: its meta-data (required parameters) and validate-all.
    if let (Some(c), true) = (&loaded.config, errs.is_empty()) {
        for g in &c.groups {
            for (i, r) in g.resources.iter().enumerate() {
                let prefix = |e: &str| {
                    if e.starts_with(&r.text) {
                        format!("group {}: {e}", g.name)
                    } else {
                        format!("group {}: {}: {e}", g.name, r.text)
                    }
                };
                let at = |msg: String| ConfigError { file: c.group_file().to_path_buf(), line: g.line, msg };
                if let Err(e) = agent::build_in(r, &c.timeouts, &g.name, i) {
                    errs.push(at(prefix(&e.to_string())));
                    continue;
                }
                if let ResourceSpec::Ocf(spec) = &r.spec {
                    let instance = crate::config::instance_name(&g.name, i, &r.spec);
                    match agent::ocf::OcfAgent::new(spec, &r.text, &instance) {
                        Ok(a) => {
                            for f in a.with_timeouts(c.timeouts).check() {
                                // One line per problem: the agent's output may have several.
                                let said: Vec<&str> = f.msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                                let msg = at(prefix(&format!("OCF agent {}: {}", spec.agent_name(), said.join("; "))));
                                if f.error {
                                    errs.push(msg);
                                } else {
                                    warnings.push(msg);
                                }
                            }
                        }
                        Err(e) => errs.push(at(prefix(&e.to_string()))),
                    }
                }
            }
        }
    }
    if let Some(c) = &loaded.config {
        warnings.extend(heartbeat_warnings(c));
    }
    let mut lines: Vec<(usize, String)> = errs.iter().map(|e| (e.line, e.to_string())).collect();
    lines.extend(warnings.iter().map(|w| (w.line, format_warning(w))));
    lines.sort_by_key(|(l, _)| *l);
    for (_, l) in &lines {
        let _ = writeln!(out, "{l}");
    }
    match loaded.config {
        Some(c) if errs.is_empty() => {
            let n_res: usize = c.groups.iter().map(|g| g.resources.len()).sum();
            let proto = match c.heartbeat() {
                Some(h) => format!(", heartbeat 3.0.6 protocol (auto_failback {})", h.failback.name()),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{}: OK: cluster {}, node {} (peer {}), {} link{}, {} group{}, {} resource{}{proto}",
                path.display(),
                c.cluster,
                c.local_name(),
                c.peer_name(),
                c.links.len(),
                plural(c.links.len()),
                c.groups.len(),
                plural(c.groups.len()),
                n_res,
                plural(n_res)
            );
            0
        }
        _ => 2,
    }
}

/// What heartbeat's configuration needs of this host beyond the agents: cluster-glue's
/// `stonith` command for the STONITH lines mapped to it.
fn heartbeat_warnings(c: &crate::config::Config) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    for s in &c.stonith {
        if let crate::config::FenceMethod::Exec { path, .. } = &s.method {
            if c.heartbeat().is_some() && !path.exists() {
                out.push(ConfigWarning {
                    file: c.file.clone(),
                    line: s.line,
                    msg: format!(
                        "{} is not installed (package cluster-glue): this STONITH line cannot run",
                        path.display()
                    ),
                });
            }
        }
    }
    out
}

/// A warning the way `check-config` prints it: `file:line: warning: message`.
pub fn format_warning(w: &ConfigWarning) -> String {
    if w.line == 0 {
        format!("{}: warning: {}", w.file.display(), w.msg)
    } else {
        format!("{}:{}: warning: {}", w.file.display(), w.line, w.msg)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
