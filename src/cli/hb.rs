//! heartbeat's commands, as names of the one binary (busybox style): `hb_standby`,
//! `hb_takeover` and `cl_status`, with heartbeat's output and exit codes. They ask the tandem
//! daemon over its control socket (`TANDEM_SOCKET`, default /run/tandem/tandem.sock), whichever
//! protocol it speaks.

use std::path::PathBuf;
use std::time::Duration;

use crate::ctl::{self, CtlError, Request};

/// The names this binary answers to besides `tandem`.
pub const NAMES: [&str; 3] = ["hb_standby", "hb_takeover", "cl_status"];

/// cl_status's exit codes.
const OK: i32 = 0;
const NORMAL_FAIL: i32 = 1;
const PARAMETER_ERROR: i32 = 11;
const UNKNOWN_ERROR: i32 = 13;

fn socket() -> PathBuf {
    std::env::var_os("TANDEM_SOCKET").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(crate::daemon::DEFAULT_SOCKET))
}

/// Runs heartbeat command `name` (the base name of argv[0]); `argv0` as invoked, for usage
/// lines, as heartbeat's scripts print `$0`.
pub fn run(name: &str, argv0: &str, args: &[String]) -> i32 {
    match name {
        "hb_standby" => move_cmd(true, argv0, args),
        "hb_takeover" => move_cmd(false, argv0, args),
        _ => cl_status(args),
    }
}

/// `hb_standby [all|foreign|local|failback]`, `hb_takeover [all|foreign|local|failback]`.
fn move_cmd(standby: bool, argv0: &str, args: &[String]) -> i32 {
    let usage = || {
        println!("usage:");
        eprintln!("{argv0} [all|foreign|local|failback]");
        1
    };
    if args.len() >= 2 {
        println!("{argv0}: too many arguments");
        return usage();
    }
    let set = args.first().map(String::as_str).unwrap_or("all");
    if set == "--help" {
        return usage();
    }
    if !matches!(set, "all" | "foreign" | "local" | "failback") {
        println!("{argv0}: wrong resources({set}).");
        return usage();
    }
    let req = if standby { Request::HbStandby(set.to_string()) } else { Request::HbTakeover(set.to_string()) };
    match ctl::client::call(&socket(), &req, Duration::from_secs(5)) {
        Ok((0, _)) => 0,
        Ok((_, body)) => {
            eprint!("{argv0}: {body}");
            1
        }
        Err(e) => {
            eprintln!("{argv0}: {e}");
            1
        }
    }
}

/// What the daemon's `hbinfo` answer says.
#[derive(Debug, Default)]
pub struct Info {
    pub local: String,
    /// (name, status, type)
    pub nodes: Vec<(String, String, String)>,
    /// (node, link, status)
    pub links: Vec<(String, String, String)>,
    pub rsc: String,
    pub params: Vec<(String, String)>,
}

impl Info {
    pub fn parse(text: &str) -> Info {
        let mut i = Info::default();
        for l in text.lines() {
            let f: Vec<&str> = l.split('\t').collect();
            let s = |k: usize| f.get(k).copied().unwrap_or("").to_string();
            match f.first().copied() {
                Some("local") => i.local = s(1),
                Some("node") => i.nodes.push((s(1), s(2), s(3))),
                Some("link") => i.links.push((s(1), s(2), s(3))),
                Some("rsc") => i.rsc = s(1),
                Some("param") => i.params.push((s(1), s(2))),
                _ => {}
            }
        }
        i
    }

    fn node(&self, n: &str) -> Option<&(String, String, String)> {
        let n = n.to_ascii_lowercase();
        self.nodes.iter().find(|(m, _, _)| *m == n)
    }
}

const HELP: &str = "Usage: cl_status <sub-command> [<options>] [<parameters>]

Sub-commands:
clientstatus <node-name> <client-id> [<timeout>]
	Show the status of heartbeat clients.
hblinkstatus <node-name> <link-name>
	Show the status of a heartbeat link
hbstatus
	Indicate if heartbeat is running on the local system.
	Options:
		-v	verbose: also add \"listnodes -v\" output
listnodes [<option>]
	List the nodes in the cluster.
	Options:
		-p	list only 'ping' type nodes
		-n	list only 'normal' type nodes
		-v	verbose: also list type and status,
			then add \"listhblinks -v\" output
listhblinks <node-name>
	List the network interfaces used as hearbeat links.
	Options:
		-v	verbose: list link status as well
nodestatus <node-name>
	List the node status.
nodeweight <node-name>
	List the node weight.
nodesite <node-name>
	List the node site.
nodetype <node-name>
	List the nodes of a given type.
rscstatus
	Show the status of cluster resources.
hbparameter -p <parameter-name>
	Retrieve the value of a cluster parameter.
(answered by tandem's daemon: see tandem(8))
";

/// Options and parameters of a sub-command: `-X` flags from `optstr` (a letter followed by
/// `:` takes a value), in any position, as getopt permutes them.
struct Opts {
    flags: Vec<char>,
    value: Option<String>,
    params: Vec<String>,
}

fn opts(args: &[String], optstr: &str) -> Result<Opts, char> {
    let mut o = Opts { flags: Vec::new(), value: None, params: Vec::new() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(letters) = a.strip_prefix('-').filter(|l| !l.is_empty()) else {
            o.params.push(a.clone());
            continue;
        };
        let mut chars = letters.chars();
        while let Some(c) = chars.next() {
            let Some(pos) = optstr.find(c) else { return Err(c) };
            if optstr[pos + c.len_utf8()..].starts_with(':') {
                let rest: String = chars.by_ref().collect();
                o.value = Some(if rest.is_empty() { it.next().cloned().ok_or(c)? } else { rest });
                break;
            }
            o.flags.push(c);
        }
    }
    Ok(o)
}

/// cl_status's way of reporting an error (cl_log to stderr).
fn log_err(msg: &str) {
    eprintln!("cl_status: ERROR: {msg}");
}

fn cl_status(args: &[String]) -> i32 {
    let Some(cmd) = args.first() else {
        print!("{HELP}");
        return OK;
    };
    if cmd == "-h" && args.len() == 1 {
        print!("{HELP}");
        return OK;
    }
    let rest = args.get(1..).unwrap_or(&[]);
    let optstr = match cmd.as_str() {
        "hbstatus" | "listhblinks" => "mv",
        "listnodes" => "mpnv",
        "nodestatus" | "nodeweight" | "nodesite" | "nodetype" | "hblinkstatus" | "clientstatus" | "rscstatus" => "m",
        "hbparameter" => "mp:",
        _ => {
            log_err(&format!("{cmd}: invalid sub-command."));
            return PARAMETER_ERROR;
        }
    };
    let o = match opts(rest, optstr) {
        Ok(o) => o,
        Err(c) => {
            log_err(&format!("Error: getopt returned character code {c}."));
            return PARAMETER_ERROR;
        }
    };
    let human = o.flags.contains(&'m');
    let verbose = o.flags.contains(&'v');
    let info = match ctl::client::call(&socket(), &Request::HbInfo, Duration::from_secs(5)) {
        Ok((0, body)) => Ok(Info::parse(&body)),
        Ok((_, body)) => Err(body.trim().to_string()),
        Err(e @ CtlError::NotRunning { .. }) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if cmd == "hbstatus" {
        return match info {
            Err(why) => {
                println!("Heartbeat is stopped on this machine.");
                if verbose {
                    println!("({why})");
                }
                NORMAL_FAIL
            }
            Ok(i) => {
                if !verbose {
                    println!("Heartbeat is running on this machine.");
                    return OK;
                }
                let version =
                    i.params.iter().find(|(k, _)| k == "hbversion").map(|(_, v)| v.as_str()).unwrap_or("unknown");
                if human {
                    println!("Heartbeat version {version}");
                    println!("Resources controlled by \"haresources\"");
                } else {
                    println!("version:\t{version}");
                    println!("managed by:\t\"haresources\"");
                }
                list_nodes(&i, false, false, true, human);
                OK
            }
        };
    }
    let i = match info {
        Ok(i) => i,
        Err(why) => {
            log_err("Cannot signon with heartbeat");
            log_err(&format!("REASON: {why}"));
            return NORMAL_FAIL;
        }
    };
    let param = |k: usize| o.params.get(k).map(String::as_str);
    match cmd.as_str() {
        "listnodes" => {
            list_nodes(&i, o.flags.contains(&'n'), o.flags.contains(&'p'), verbose, human);
            OK
        }
        "nodestatus" | "nodetype" | "nodeweight" | "nodesite" => {
            let Some(n) = param(0) else {
                eprintln!("{}", if cmd == "nodetype" { "No enough parameter." } else { "Not enough parameters." });
                return PARAMETER_ERROR;
            };
            let Some((_, status, ty)) = i.node(n) else {
                let e = if cmd == "nodeweight" {
                    "Error. Maybe due to incorrect node name."
                } else {
                    "Error. May be due to incorrect node name"
                };
                eprintln!("{e}");
                return PARAMETER_ERROR;
            };
            match cmd.as_str() {
                "nodestatus" => {
                    if human {
                        println!("The cluster node {n} is {status}");
                    } else {
                        println!("{status}");
                    }
                    if matches!(status.as_str(), "active" | "up" | "ping") {
                        OK
                    } else {
                        NORMAL_FAIL
                    }
                }
                "nodetype" => {
                    if human {
                        println!("The node {n}'s type: {ty}");
                    } else {
                        println!("{ty}");
                    }
                    OK
                }
                "nodeweight" => {
                    if human {
                        println!("The weight of the cluster node {n} is 100");
                    } else {
                        println!("100");
                    }
                    OK
                }
                _ => {
                    if human {
                        println!("The site of the cluster node {n} is ");
                    } else {
                        println!();
                    }
                    OK
                }
            }
        }
        "listhblinks" => {
            let Some(n) = param(0) else {
                eprintln!("No enough parameter.");
                return PARAMETER_ERROR;
            };
            if i.node(n).is_none() {
                log_err("Cannot start heartbeat link interface walk.");
                log_err(&format!("REASON: unknown node {n}"));
                return UNKNOWN_ERROR;
            }
            list_links(&i, n, verbose, human);
            OK
        }
        "hblinkstatus" => {
            let (Some(n), Some(l)) = (param(0), param(1)) else {
                eprintln!("No enough parameter.");
                return PARAMETER_ERROR;
            };
            let n = n.to_ascii_lowercase();
            let Some((_, _, st)) = i.links.iter().find(|(m, name, _)| *m == n && name == l) else {
                log_err("Cannot get heartbeat link status");
                log_err(&format!("REASON: no link {l} of node {n}"));
                return UNKNOWN_ERROR;
            };
            if human {
                println!("The node {n}'s heartbeat link {l} is {st}");
            } else {
                println!("{st}");
            }
            if st == "up" {
                OK
            } else {
                NORMAL_FAIL
            }
        }
        "clientstatus" => {
            if param(1).is_none() {
                eprintln!("No enough parameter.");
                return PARAMETER_ERROR;
            }
            // tandem has no heartbeat API clients: none is ever online.
            println!("offline");
            NORMAL_FAIL
        }
        "rscstatus" => {
            if human {
                println!("This node is holding {} resources.", i.rsc);
            } else {
                println!("{}", i.rsc);
            }
            OK
        }
        "hbparameter" => {
            let Some(p) = o.value.as_deref() else {
                log_err("parameter name required");
                return PARAMETER_ERROR;
            };
            match i.params.iter().find(|(k, _)| k == p) {
                Some((_, v)) => {
                    if human {
                        println!("Heartbeat parameter {p}'s value: {v}");
                    } else {
                        println!("{v}");
                    }
                    OK
                }
                None => {
                    log_err(&format!("Cannot get parameter {p}'s value"));
                    NORMAL_FAIL
                }
            }
        }
        _ => PARAMETER_ERROR,
    }
}

fn list_nodes(i: &Info, normal_only: bool, ping_only: bool, verbose: bool, human: bool) {
    let (normal_only, ping_only) = if normal_only && ping_only { (false, false) } else { (normal_only, ping_only) };
    if human {
        println!("The nodes are as follow:");
    }
    for (n, st, ty) in &i.nodes {
        if (normal_only && ty != "normal") || (ping_only && ty != "ping") {
            continue;
        }
        if verbose {
            println!("\n{n}\t{st}\t(nodetype: {ty})");
            list_links(i, n, true, human);
        } else {
            println!("{n}");
        }
    }
}

fn list_links(i: &Info, node: &str, verbose: bool, human: bool) {
    let node = node.to_ascii_lowercase();
    if human {
        println!("\tthis node has the following heartbeat links:");
    }
    for (_, name, st) in i.links.iter().filter(|(n, _, _)| *n == node) {
        if verbose {
            println!("\t{name}\t{st}");
        } else {
            println!("\t{name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trip() {
        let i = Info::parse(
            "local\thn2\nnode\thn1\tactive\tnormal\nnode\thn2\tactive\tnormal\nlink\thn2\teth0\tup\n\
             link\thn1\teth0\tdead\nrsc\tlocal\nparam\tkeepalive\t1000ms\n",
        );
        assert_eq!(i.local, "hn2");
        assert_eq!(i.nodes.len(), 2);
        assert_eq!(i.node("HN1").unwrap().1, "active");
        assert_eq!(i.links[1], ("hn1".into(), "eth0".into(), "dead".into()));
        assert_eq!(i.rsc, "local");
        assert_eq!(i.params, [("keepalive".to_string(), "1000ms".to_string())]);
    }

    #[test]
    fn getopt_like() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = opts(&a(&["-m", "hn1", "-v"]), "mv").unwrap();
        assert_eq!((o.flags, o.params), (vec!['m', 'v'], vec!["hn1".to_string()]));
        let o = opts(&a(&["-mp", "deadtime"]), "mp:").unwrap();
        assert_eq!((o.flags, o.value.as_deref()), (vec!['m'], Some("deadtime")));
        let o = opts(&a(&["-pkeepalive"]), "mp:").unwrap();
        assert_eq!(o.value.as_deref(), Some("keepalive"));
        assert_eq!(opts(&a(&["-x"]), "m").err(), Some('x'));
    }
}
