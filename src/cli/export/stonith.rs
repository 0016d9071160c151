//! `stonith NODE METHOD …` lines as Pacemaker fencing devices, read from the method's words
//! (`FenceMethod::words`), with the syntax of tandem.conf(5): `ipmi HOST[:PORT] USER PASSWORD_FILE [cipher=3|17] [action=off|cycle]`,
//! `agent PROGRAM [key=value…]`, `exec PATH [ARG…]` (or an absolute path), `manual`,
//! `watchdog`.

use super::{Location, OpDef, Primitive, Score};
use crate::config::{resource::xml_id, Config};
use crate::time::Duration;

/// What a stonith line becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// `stonith:AGENT` with these parameters.
    Agent { agent: String, params: Vec<(String, String)>, notes: Vec<String> },
    /// Nothing Pacemaker can run; the reason.
    None(String),
}

/// How long Pacemaker gives a fencing operation: tandem's fencing waits up to this.
const FENCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads one stonith line's words (after the node name) for node `node`.
pub fn device(node: &str, words: &[String]) -> Device {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["ipmi", rest @ ..] => ipmi(node, rest),
        ["agent", program, rest @ ..] => agent(node, program, rest),
        ["agent"] => Device::None("'agent' without a program".to_string()),
        [first, ..] if *first == "exec" || first.starts_with('/') => Device::None(
            "an exec method runs a program with tandem's own arguments; Pacemaker runs only fence agents \
             (the fence-agents stdin protocol): wrap the program in a fence agent"
                .to_string(),
        ),
        ["manual"] => Device::None(
            "manual fencing has no Pacemaker device (an operator confirms with `stonith_admin --confirm NODE` \
             instead of `tandem fenced NODE`)"
                .to_string(),
        ),
        ["watchdog"] => Device::None(
            "watchdog self-fencing needs sbd: run the sbd daemon with the watchdog device and set the \
             stonith-watchdog-timeout property; it cannot be expressed in the CIB alone"
                .to_string(),
        ),
        [m, ..] => Device::None(format!("unknown stonith method '{m}'")),
        [] => Device::None("no stonith method".to_string()),
    }
}

fn ipmi(node: &str, args: &[&str]) -> Device {
    let [target, user, password_file, opts @ ..] = args else {
        return Device::None("ipmi needs HOST[:PORT] USER PASSWORD_FILE".to_string());
    };
    let Some((host, port)) = split_host_port(target) else {
        return Device::None(format!("ipmi: cannot read '{target}' as HOST[:PORT]"));
    };
    let (mut cipher, mut action) = ("3", "off");
    for o in opts {
        match o.split_once('=') {
            Some(("cipher", c @ ("3" | "17"))) => cipher = c,
            Some(("action", a @ ("off" | "cycle"))) => action = a,
            _ => return Device::None(format!("ipmi: unknown option '{o}' (cipher=3|17, action=off|cycle)")),
        }
    }
    let mut params = vec![
        ("ip".to_string(), host.to_string()),
        ("username".to_string(), user.to_string()),
        ("password_script".to_string(), format!("cat {password_file}")),
        ("lanplus".to_string(), "1".to_string()),
        ("cipher".to_string(), cipher.to_string()),
    ];
    if let Some(p) = port {
        params.insert(1, ("ipport".to_string(), p.to_string()));
    }
    match action {
        "cycle" => params.push(("method".to_string(), "cycle".to_string())),
        _ => params.push(("pcmk_reboot_action".to_string(), "off".to_string())),
    }
    params.push(("pcmk_host_list".to_string(), node.to_string()));
    let notes = vec![format!("the password file {password_file} must exist on both nodes, readable by root only")];
    Device::Agent { agent: "fence_ipmilan".to_string(), params, notes }
}

/// `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT`, or a bare IPv6 address.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.matches(':').count() {
        0 => Some((s, None)),
        1 => {
            let (h, p) = s.split_once(':')?;
            Some((h, Some(p.parse().ok()?)))
        }
        _ => Some((s, None)),
    }
    .filter(|(h, _)| !h.is_empty())
}

fn agent(node: &str, program: &str, args: &[&str]) -> Device {
    let name = program.rsplit('/').next().unwrap_or(program);
    if name.is_empty() {
        return Device::None(format!("agent: bad program '{program}'"));
    }
    let mut notes = Vec::new();
    if let Some(dir) = program.rsplit_once('/').map(|(d, _)| d) {
        if !matches!(dir, "/usr/sbin" | "/sbin") {
            notes
                .push(format!("Pacemaker runs fence agents by name from /usr/sbin: install {program} there as {name}"));
        }
    }
    let mut params: Vec<(String, String)> = Vec::new();
    let mut host_map = None;
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Device::None(format!("agent: '{a}' is not key=value"));
        };
        match k {
            // Pacemaker chooses the plug from the node name: map ours.
            "port" | "plug" => host_map = Some(format!("{node}:{v}")),
            "action" => params.push(("pcmk_reboot_action".to_string(), v.to_string())),
            _ => params.push((k.to_string(), v.to_string())),
        }
    }
    if let Some(m) = host_map {
        params.push(("pcmk_host_map".to_string(), m));
    }
    params.push(("pcmk_host_list".to_string(), node.to_string()));
    Device::Agent { agent: name.to_string(), params, notes }
}

/// tandem's fencing policy, which the CIB's devices do not carry: what each setting would be
/// under Pacemaker.
fn policy_note(c: &Config) -> String {
    let f = &c.fencing;
    let fmt = crate::time::fmt_duration;
    let delay = f.delay.map_or_else(|| "auto".to_string(), fmt);
    format!(
        "fencing policy, not exported: fence_timeout {} is nearest to the stonith-timeout property; \
         fence_delay {delay} (the node that holds no group waits) is nearest to priority-fencing-delay with \
         a priority on the groups, or pcmk_delay_base on a device; wait_for_peer {} is corosync's \
         wait_for_all (on with two_node: 1); stonith_required {}: Pacemaker with stonith-enabled=true \
         never recovers a lost node's resources without a fence. fence_check became each device's \
         monitor interval.",
        fmt(f.timeout),
        if f.wait_for_peer { "on" } else { "off" },
        if f.required { "on" } else { "off" },
    )
}

/// The fencing devices, the constraints that keep each off the node it fences, the notes,
/// and whether every node has a device.
pub fn devices(c: &Config) -> (Vec<Primitive>, Vec<Location>, Vec<String>, bool) {
    let (mut prims, mut locs, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for (id, node) in c.nodes.iter().enumerate() {
        let Some(s) = c.stonith.iter().find(|s| usize::from(s.node) == id) else {
            notes.push(format!("node {node} has no stonith line: no fencing device for it"));
            continue;
        };
        let words = s.method.words();
        let line = format!("stonith {node} {}", words.join(" "));
        match device(node, &words) {
            Device::Agent { agent, params, notes: dev_notes } => {
                let pid = xml_id(&format!("fence-{node}"));
                let mut pn = vec![format!("tandem (line {}): {line}", s.line)];
                pn.extend(dev_notes);
                prims.push(Primitive {
                    id: pid.clone(),
                    class: "stonith",
                    provider: None,
                    agent,
                    params,
                    // fence_check: how often the device is checked (0: never, probes only).
                    ops: vec![OpDef {
                        name: "monitor",
                        interval: c.fencing.check.unwrap_or(Duration::ZERO),
                        timeout: FENCE_TIMEOUT,
                    }],
                    notes: pn,
                });
                locs.push(Location {
                    id: xml_id(&format!("loc-{pid}-avoid-{node}")),
                    rsc: pid,
                    node: node.clone(),
                    score: Score::MinusInfinity,
                });
            }
            Device::None(why) => notes.push(format!("line {}: {line}: not exported: {why}", s.line)),
        }
    }
    if !c.stonith.is_empty() {
        notes.push(policy_note(c));
    }
    let all = prims.len() == c.nodes.len();
    (prims, locs, notes, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(line: &str) -> Device {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        device("beta", &words)
    }
    fn params(d: &Device) -> Vec<(&str, &str)> {
        match d {
            Device::Agent { params, .. } => params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            Device::None(w) => panic!("not exported: {w}"),
        }
    }
    fn none(line: &str) -> String {
        match dev(line) {
            Device::None(w) => w,
            d => panic!("{line}: exported as {d:?}"),
        }
    }

    #[test]
    fn ipmi_lines() {
        let d = dev("ipmi 203.0.113.12 admin /etc/tandem/bmc-beta.pw");
        let Device::Agent { agent, .. } = &d else { panic!() };
        assert_eq!(agent, "fence_ipmilan");
        assert_eq!(
            params(&d),
            [
                ("ip", "203.0.113.12"),
                ("username", "admin"),
                ("password_script", "cat /etc/tandem/bmc-beta.pw"),
                ("lanplus", "1"),
                ("cipher", "3"),
                ("pcmk_reboot_action", "off"),
                ("pcmk_host_list", "beta"),
            ]
        );
        let d = dev("ipmi bmc-b:6230 root /pw cipher=17 action=cycle");
        let p = params(&d);
        assert!(p.contains(&("ip", "bmc-b")) && p.contains(&("ipport", "6230")), "{p:?}");
        assert!(p.contains(&("cipher", "17")) && p.contains(&("method", "cycle")), "{p:?}");
        assert!(!p.iter().any(|(k, _)| *k == "pcmk_reboot_action"));
        assert!(params(&dev("ipmi [2001:db8::7]:623 u /pw")).contains(&("ip", "2001:db8::7")));
        assert!(params(&dev("ipmi 2001:db8::7 u /pw")).contains(&("ip", "2001:db8::7")));
        assert!(none("ipmi 203.0.113.12 admin").contains("needs HOST"));
        assert!(none("ipmi h:x u /pw").contains("HOST[:PORT]"));
        assert!(none("ipmi h u /pw cipher=2").contains("unknown option"));
    }

    #[test]
    fn agent_lines() {
        let d = dev("agent fence_virsh ip=203.0.113.1 username=root identity_file=/root/.ssh/id port=vm-beta");
        let Device::Agent { agent, notes, .. } = &d else { panic!() };
        assert_eq!(agent, "fence_virsh");
        assert!(notes.is_empty());
        assert_eq!(
            params(&d),
            [
                ("ip", "203.0.113.1"),
                ("username", "root"),
                ("identity_file", "/root/.ssh/id"),
                ("pcmk_host_map", "beta:vm-beta"),
                ("pcmk_host_list", "beta"),
            ]
        );
        let d = dev("agent /opt/fence/fence_custom action=reboot");
        let Device::Agent { agent, notes, .. } = &d else { panic!() };
        assert_eq!(agent, "fence_custom");
        assert!(notes[0].contains("/usr/sbin"), "{notes:?}");
        assert!(params(&d).contains(&("pcmk_reboot_action", "reboot")));
        assert!(none("agent fence_x novalue").contains("not key=value"));
    }

    #[test]
    fn what_pacemaker_cannot_run() {
        assert!(none("exec /usr/local/sbin/poweroff-beta --now").contains("only fence agents"));
        assert!(none("/usr/local/sbin/poweroff-beta").contains("only fence agents"));
        assert!(none("manual").contains("stonith_admin --confirm"));
        assert!(none("watchdog").contains("sbd"));
        assert!(none("telepathy").contains("unknown stonith method 'telepathy'"));
    }
}
