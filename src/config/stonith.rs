//! `stonith NODE METHOD [ARG…]`: how to power a node off. Pure parsing into [`FenceMethod`];
//! docs/fencing.md and tandem.conf(5) describe the methods.
//!
//! ```text
//! stonith NODE ipmi HOST[:PORT] USER PASSWORD_FILE [cipher=3|17] [action=off|cycle]
//! stonith NODE agent PROGRAM [key=value…]        (fence-agents stdin protocol)
//! stonith NODE exec PATH [ARG…]                   (also: stonith NODE /abs/path ARG…)
//! stonith NODE manual
//! stonith NODE watchdog
//! ```

use crate::time::Duration;
use std::path::PathBuf;

/// What the `ipmi` method does to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Power off, confirmed by reading the power state back as off.
    Off,
    /// Power cycle: off and on again (the node boots and rejoins); confirmed when the BMC
    /// accepts it.
    Cycle,
}

/// How a node is fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceMethod {
    /// The built-in IPMI v2.0 RMCP+ client.
    Ipmi {
        host: String,
        port: u16,
        user: String,
        /// Holds the password; the authkey's permission rules apply.
        password_file: PathBuf,
        /// 3 or 17.
        cipher: u8,
        action: PowerAction,
    },
    /// A fence-agents program (`fence_ipmilan`, `fence_virsh`, …), given `key=value` lines on
    /// stdin: `action=off`, then `action=status` to confirm.
    Agent {
        program: PathBuf,
        /// Passed as given, except `password_file=`, whose file's contents go as `password=`.
        params: Vec<(String, String)>,
    },
    /// A script called as `PATH ARG… off|on|status NODE`; exit 0 means done.
    Exec { path: PathBuf, args: Vec<String> },
    /// An operator confirms with `tandem fenced NODE` that the node is off.
    Manual,
    /// The node resets itself through its hardware watchdog when it may not keep its groups;
    /// the survivor counts it fenced after the watchdog's timeout.
    Watchdog,
}

impl FenceMethod {
    /// The method's name as written.
    pub fn name(&self) -> &'static str {
        match self {
            FenceMethod::Ipmi { .. } => "ipmi",
            FenceMethod::Agent { .. } => "agent",
            FenceMethod::Exec { .. } => "exec",
            FenceMethod::Manual => "manual",
            FenceMethod::Watchdog => "watchdog",
        }
    }

    /// What one fence by this method may take before any was timed (docs/fencing.md): a
    /// BMC answers within a second; a fence agent or a script starts an interpreter and
    /// talks to a device in its own way.
    pub fn typical_time(&self) -> Duration {
        match self {
            FenceMethod::Ipmi { .. } => Duration::from_secs(1),
            FenceMethod::Agent { .. } | FenceMethod::Exec { .. } => Duration::from_secs(5),
            FenceMethod::Manual | FenceMethod::Watchdog => Duration::ZERO,
        }
    }

    /// A one-line description for `status` (no secret: the password stays in its file).
    pub fn describe(&self) -> String {
        match self {
            FenceMethod::Ipmi { host, port, user, cipher, action, .. } => {
                let a = match action {
                    PowerAction::Off => "off",
                    PowerAction::Cycle => "cycle",
                };
                format!("ipmi {host}:{port} user {user} cipher {cipher} action {a}")
            }
            FenceMethod::Agent { program, .. } => format!("agent {}", program.display()),
            FenceMethod::Exec { path, .. } => format!("exec {}", path.display()),
            FenceMethod::Manual => "manual".to_string(),
            FenceMethod::Watchdog => "watchdog".to_string(),
        }
    }

    /// The method as written after `stonith NODE` (the password stays in its file).
    pub fn words(&self) -> Vec<String> {
        match self {
            FenceMethod::Ipmi { host, port, user, password_file, cipher, action } => {
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                let mut w = vec![
                    "ipmi".to_string(),
                    format!("{host}:{port}"),
                    user.clone(),
                    password_file.display().to_string(),
                    format!("cipher={cipher}"),
                ];
                if *action == PowerAction::Cycle {
                    w.push("action=cycle".to_string());
                }
                w
            }
            FenceMethod::Agent { program, params } => {
                let mut w = vec!["agent".to_string(), program.display().to_string()];
                w.extend(params.iter().map(|(k, v)| format!("{k}={v}")));
                w
            }
            FenceMethod::Exec { path, args } => {
                let mut w = vec!["exec".to_string(), path.display().to_string()];
                w.extend(args.iter().cloned());
                w
            }
            FenceMethod::Manual => vec!["manual".to_string()],
            FenceMethod::Watchdog => vec!["watchdog".to_string()],
        }
    }

    /// Files the method reads when it runs (checked by check-config on the host).
    pub fn files(&self) -> Vec<&PathBuf> {
        match self {
            FenceMethod::Ipmi { password_file, .. } => vec![password_file],
            FenceMethod::Agent { program, .. } => vec![program],
            FenceMethod::Exec { path, .. } => vec![path],
            FenceMethod::Manual | FenceMethod::Watchdog => vec![],
        }
    }
}

fn abs(what: &str, s: &str) -> Result<PathBuf, String> {
    if s.starts_with('/') {
        Ok(PathBuf::from(s))
    } else {
        Err(format!("{what} '{s}' is not an absolute path"))
    }
}

/// Parses the words after `stonith NODE`.
pub fn parse_method(words: &[String]) -> Result<FenceMethod, String> {
    let Some((first, rest)) = words.split_first() else {
        return Err("needs a method: ipmi, agent, exec, manual or watchdog".to_string());
    };
    match first.as_str() {
        "ipmi" => parse_ipmi(rest),
        "agent" => {
            let Some((program, params)) = rest.split_first() else {
                return Err("agent needs a program (e.g. /usr/sbin/fence_ipmilan) and key=value parameters".into());
            };
            let program = abs("fence agent", program)?;
            let mut out = Vec::new();
            for p in params {
                let Some((k, v)) = p.split_once('=') else {
                    return Err(format!("agent parameter '{p}' is not key=value"));
                };
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(format!("agent parameter name '{k}' is not valid"));
                }
                if k == "action" {
                    return Err("agent: 'action' is set by tandem (off, then status)".to_string());
                }
                if k == "password" {
                    return Err(
                        "agent: put the password in a file (password_file=PATH), not in the configuration".to_string()
                    );
                }
                if k == "password_file" {
                    abs("password_file", v)?;
                }
                out.push((k.to_string(), v.to_string()));
            }
            Ok(FenceMethod::Agent { program, params: out })
        }
        "exec" => {
            let Some((path, args)) = rest.split_first() else {
                return Err("exec needs a program path".to_string());
            };
            Ok(FenceMethod::Exec { path: abs("exec program", path)?, args: args.to_vec() })
        }
        "manual" | "watchdog" if !rest.is_empty() => Err(format!("{first} takes no arguments")),
        "manual" => Ok(FenceMethod::Manual),
        "watchdog" => Ok(FenceMethod::Watchdog),
        p if p.starts_with('/') => Ok(FenceMethod::Exec { path: PathBuf::from(p), args: rest.to_vec() }),
        other => Err(format!(
            "unknown fencing method '{other}' (ipmi, agent, exec, manual, watchdog, or an absolute program path)"
        )),
    }
}

fn parse_ipmi(rest: &[String]) -> Result<FenceMethod, String> {
    const USAGE: &str = "ipmi HOST[:PORT] USER PASSWORD_FILE [cipher=3|17] [action=off|cycle]";
    let (Some(hostport), Some(user), Some(pw)) = (rest.first(), rest.get(1), rest.get(2)) else {
        return Err(format!("takes {USAGE}"));
    };
    let (host, port) = split_host_port(hostport)?;
    if user.is_empty() || user.len() > 16 {
        return Err(format!("ipmi user '{user}' must be 1 to 16 characters"));
    }
    let password_file = abs("password file", pw)?;
    let (mut cipher, mut action) = (3u8, PowerAction::Off);
    for opt in rest.iter().skip(3) {
        match opt.split_once('=') {
            Some(("cipher", "3")) => cipher = 3,
            Some(("cipher", "17")) => cipher = 17,
            Some(("cipher", c)) => return Err(format!("ipmi cipher suite '{c}' is not supported (3 or 17)")),
            Some(("action", "off")) => action = PowerAction::Off,
            Some(("action", "cycle")) => action = PowerAction::Cycle,
            Some(("action", a)) => return Err(format!("ipmi action '{a}' is not supported (off or cycle)")),
            _ => return Err(format!("unexpected '{opt}': {USAGE}")),
        }
    }
    Ok(FenceMethod::Ipmi { host, port, user: user.clone(), password_file, cipher, action })
}

/// `HOST`, `HOST:PORT`, `[V6ADDR]:PORT` or a bare IPv6 address.
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(|| format!("bad port '{p}'"));
    if let Some(rest) = s.strip_prefix('[') {
        let Some((h, p)) = rest.split_once(']') else { return Err(format!("bad address '{s}'")) };
        let p = match p.strip_prefix(':') {
            Some(p) => port(p)?,
            None if p.is_empty() => 623,
            None => return Err(format!("bad address '{s}'")),
        };
        return Ok((h.to_string(), p));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((s.to_string(), 623));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Ok((h.to_string(), port(p)?)),
        Some(_) => Err(format!("bad address '{s}'")),
        None if s.is_empty() => Err("empty BMC address".to_string()),
        None => Ok((s.to_string(), 623)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<FenceMethod, String> {
        parse_method(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn methods() {
        assert_eq!(
            p("ipmi 203.0.113.12 admin /etc/tandem/bmc-beta"),
            Ok(FenceMethod::Ipmi {
                host: "203.0.113.12".into(),
                port: 623,
                user: "admin".into(),
                password_file: "/etc/tandem/bmc-beta".into(),
                cipher: 3,
                action: PowerAction::Off
            })
        );
        let Ok(FenceMethod::Ipmi { port, cipher, action, host, .. }) =
            p("ipmi [2001:db8::7]:6230 admin /pw cipher=17 action=cycle")
        else {
            panic!()
        };
        assert_eq!((host.as_str(), port, cipher, action), ("2001:db8::7", 6230, 17, PowerAction::Cycle));
        assert!(matches!(p("ipmi bmc.example:6230 u /pw"), Ok(FenceMethod::Ipmi { port: 6230, .. })));
        assert_eq!(
            p("agent /usr/sbin/fence_ipmilan ip=203.0.113.12 username=admin password_file=/etc/pw lanplus=1"),
            Ok(FenceMethod::Agent {
                program: "/usr/sbin/fence_ipmilan".into(),
                params: vec![
                    ("ip".into(), "203.0.113.12".into()),
                    ("username".into(), "admin".into()),
                    ("password_file".into(), "/etc/pw".into()),
                    ("lanplus".into(), "1".into())
                ]
            })
        );
        assert_eq!(
            p("exec /usr/local/bin/pdu beta"),
            Ok(FenceMethod::Exec { path: "/usr/local/bin/pdu".into(), args: vec!["beta".into()] })
        );
        assert_eq!(
            p("/usr/local/bin/pdu -x"),
            Ok(FenceMethod::Exec { path: "/usr/local/bin/pdu".into(), args: vec!["-x".into()] })
        );
        assert_eq!(p("manual"), Ok(FenceMethod::Manual));
        assert_eq!(p("watchdog"), Ok(FenceMethod::Watchdog));
    }

    #[test]
    fn errors() {
        for (bad, want) in [
            ("", "needs a method"),
            ("ipmi host", "takes ipmi HOST"),
            ("ipmi host u pw", "not an absolute path"),
            ("ipmi host u /pw cipher=1", "cipher suite '1'"),
            ("ipmi host u /pw action=on", "action 'on'"),
            ("ipmi host:0 u /pw", "bad port"),
            ("ipmi host u /pw junk", "unexpected 'junk'"),
            ("ipmi host averyveryverylongusername /pw", "1 to 16"),
            ("agent fence_ipmilan", "not an absolute path"),
            ("agent /f action=reboot", "set by tandem"),
            ("agent /f password=s3cret", "password_file"),
            ("agent /f nokeyvalue", "not key=value"),
            ("exec", "needs a program"),
            ("exec rel/path", "not an absolute"),
            ("manual now", "no arguments"),
            ("poweroff", "unknown fencing method"),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn words_parse_back() {
        for line in [
            "ipmi 203.0.113.12 admin /pw",
            "ipmi [2001:db8::7]:6230 admin /pw cipher=17 action=cycle",
            "agent /usr/sbin/fence_ipmilan ip=203.0.113.12 password_file=/pw",
            "exec /usr/local/bin/pdu beta",
            "manual",
        ] {
            let m = p(line).unwrap();
            assert_eq!(parse_method(&m.words()), Ok(m.clone()), "{line}");
        }
    }

    #[test]
    fn no_password_in_descriptions() {
        let m = p("ipmi 203.0.113.12 admin /etc/tandem/bmc-beta").unwrap();
        assert_eq!(m.describe(), "ipmi 203.0.113.12:623 user admin cipher 3 action off");
    }
}
