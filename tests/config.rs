//! Configuration files on disk: `check-config` and `load` against real files, real keys,
//! and this host's real interfaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{in_new_netns, require, TempDir};
use tandem::cli::check_config as check_config_cmd;
use tandem::config::{self, keygen, read_key, Config, ConfigError, KeyError, LinkConfig};
use tandem::load::load;

/// The demo cluster of docs/tandem.conf.5 (EXAMPLE), with `lo` for `veth-lan` and a key in `dir`.
/// Line numbers: 1 cluster, 2 node, 3 authkey, 4 keepalive, 5 deadtime, 6 warntime,
/// 7 initdead, 8 auto_failback, 9-10 ucast, 11 serial, 12 group.
fn demo(key: &Path) -> Vec<String> {
    [
        "cluster demo".to_string(),
        "node alpha beta".to_string(),
        format!("authkey {}", key.display()),
        "keepalive 100ms".to_string(),
        "deadtime 500ms".to_string(),
        "warntime 300ms".to_string(),
        "initdead 2s".to_string(),
        "auto_failback off".to_string(),
        "ucast lo 192.0.2.1".to_string(),
        "ucast lo 192.0.2.2".to_string(),
        "serial /dev/ttyS1 115200".to_string(),
        format!("group web alpha ip::192.0.2.50/24/lo script::{}", key.with_file_name("www.sh").display()),
    ]
    .to_vec()
}

/// A directory holding a fresh key and a config made from `demo` by `edit`.
fn setup(tag: &str, edit: impl FnOnce(&mut Vec<String>)) -> (TempDir, PathBuf) {
    let d = TempDir::new(tag);
    let key = d.join("authkey");
    keygen(&key).unwrap();
    let www = d.join("www.sh");
    std::fs::write(&www, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&www, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut lines = demo(&key);
    edit(&mut lines);
    let conf = d.join("tandem.conf");
    std::fs::write(&conf, lines.join("\n") + "\n").unwrap();
    (d, conf)
}

type Loaded = Result<(Config, Vec<ConfigError>), Vec<ConfigError>>;

/// `load` in a private network namespace.
fn load_ns(conf: &Path, node: &'static str) -> Loaded {
    let conf = conf.to_path_buf();
    in_new_netns(move || load(&conf, Some(node)))
}

/// Runs check-config as `--node alpha` (private network namespace); returns (exit code, output lines).
fn check(conf: &Path) -> (i32, Vec<String>) {
    check_as(conf, "alpha")
}

fn check_as(conf: &Path, node: &'static str) -> (i32, Vec<String>) {
    let conf = conf.to_path_buf();
    in_new_netns(move || {
        let mut out = Vec::new();
        let rc = check_config_cmd(&conf, Some(node), &mut out);
        let text = String::from_utf8(out).unwrap();
        (rc, text.lines().map(str::to_string).collect())
    })
}

/// Asserts exit 2 and exactly one error line, starting with `file:line: ` and containing `needle`.
fn expect_error(conf: &Path, line: usize, needle: &str) {
    let (rc, out) = check(conf);
    assert_eq!(rc, 2, "{out:?}");
    let errors: Vec<&String> = out.iter().filter(|l| !l.contains(": warning: ")).collect();
    assert_eq!(errors.len(), 1, "{out:?}");
    let prefix = format!("{}:{line}: ", conf.display());
    assert!(errors[0].starts_with(&prefix), "expected prefix {prefix:?}: {out:?}");
    assert!(errors[0].contains(needle), "expected {needle:?}: {out:?}");
    // load() agrees.
    let e = load_ns(conf, "alpha").unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].line, line);
}

#[test]
fn demo_config_is_valid() {
    let (d, conf) = setup("valid", |_| {});
    let (rc, out) = check(&conf);
    assert_eq!(rc, 0, "{out:?}");
    let last = out.last().unwrap();
    assert!(last.starts_with(&format!("{}: OK: cluster demo, node alpha (peer beta)", conf.display())), "{out:?}");
    // Anything else printed is a warning (e.g. /dev/ttyS1 missing on this machine).
    for l in &out[..out.len() - 1] {
        assert!(l.contains(": warning: "), "{out:?}");
    }

    let (cfg, _warnings) = load_ns(&conf, "alpha").unwrap();
    assert_eq!(cfg.cluster, "demo");
    assert_eq!(cfg.local_name(), "alpha");
    assert_eq!(cfg.peer_name(), "beta");
    assert_eq!(cfg.key, read_key(&d.join("authkey")).unwrap());
    assert_eq!(cfg.key.len(), 32);
    assert_eq!(cfg.keepalive, std::time::Duration::from_millis(100));
    assert_eq!(cfg.groups.len(), 1);
    assert_eq!(cfg.groups[0].resources.len(), 2);
    // Neither 192.0.2.1 nor .2 is an address of this host (in its private namespace): both kept.
    assert_eq!(cfg.links.len(), 3);
    assert!(matches!(cfg.links[2], LinkConfig::Serial { baud: 115200, .. }));
}

#[test]
fn unknown_directive() {
    let (_d, conf) = setup("unknown", |l| l.insert(4, "frobnicate yes".into()));
    expect_error(&conf, 5, "unknown directive 'frobnicate'");
}

#[test]
fn bad_time() {
    let (_d, conf) = setup("badtime", |l| l[3] = "keepalive 100 ms".into());
    expect_error(&conf, 4, "keepalive");
    let (_d, conf) = setup("badtime2", |l| l[3] = "keepalive 1x".into());
    expect_error(&conf, 4, "bad time '1x'");
}

#[test]
fn deadtime_not_above_twice_keepalive() {
    let (_d, conf) = setup("deadtime", |l| l[3] = "keepalive 300ms".into());
    expect_error(&conf, 5, "deadtime (500ms) must be more than 2 × keepalive (300ms)");
}

#[test]
fn initdead_below_deadtime() {
    let (_d, conf) = setup("initdead", |l| l[6] = "initdead 400ms".into());
    expect_error(&conf, 7, "initdead (400ms) must be at least deadtime (500ms)");
}

#[test]
fn unknown_node_in_group() {
    let (_d, conf) = setup("unode", |l| l[11] = "group web gamma ip::192.0.2.50/24/lo".into());
    expect_error(&conf, 12, "unknown node 'gamma'");
}

#[test]
fn duplicate_group() {
    let (_d, conf) = setup("dupgroup", |l| l.push("group web beta script::/etc/tandem/other.sh".into()));
    expect_error(&conf, 13, "duplicate group 'web' (already defined at line 12)");
}

#[test]
fn missing_key_file() {
    let (d, conf) = setup("nokey", |_| {});
    std::fs::remove_file(d.join("authkey")).unwrap();
    expect_error(&conf, 3, "does not exist");
}

#[test]
fn world_readable_key_file() {
    let (d, conf) = setup("openkey", |_| {});
    std::fs::set_permissions(d.join("authkey"), std::fs::Permissions::from_mode(0o644)).unwrap();
    expect_error(&conf, 3, "readable by group or others; chmod 600");
}

#[test]
fn config_writable_by_others_or_owned_by_a_stranger_is_refused() {
    let (_d, conf) = setup("confmode", |_| {});
    assert_eq!(check(&conf).0, 0, "{:?}", check(&conf).1);
    let p = conf.display().to_string();
    for mode in [0o664, 0o646, 0o666] {
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(mode)).unwrap();
        let (rc, out) = check(&conf);
        assert_eq!(rc, 2, "mode {mode:o}: {out:?}");
        assert_eq!(
            out[0],
            format!(
                "{p}: is writable by group or others (mode 0{mode:o}): it names programs run as root; chmod go-w {p}"
            )
        );
    }
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(&conf, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let (rc, out) = check(&conf);
        assert_eq!(rc, 2, "{out:?}");
        assert_eq!(
            out[0],
            format!("{p}: owned by uid 65534, not by root: it names programs run as root; chown root {p}")
        );
    }
    // Read-only for everyone but root is fine.
    nix::unistd::chown(&conf, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(check(&conf).0, 0);
}

#[test]
fn unknown_resource_type() {
    let (_d, conf) = setup("restype", |l| l[11] = "group web alpha frob::x ip::192.0.2.50/24/lo".into());
    expect_error(&conf, 12, "group web: unknown resource type 'frob'");
}

#[test]
fn missing_interface_and_unknown_local_node() {
    let (_d, conf) = setup("noiface", |l| l[9] = "ucast tandem-no-such0 192.0.2.2".into());
    expect_error(&conf, 10, "interface 'tandem-no-such0' does not exist");

    let (_d, conf) = setup("nonode", |_| {});
    let (rc, out) = check_as(&conf, "gamma");
    assert_eq!(rc, 2);
    assert!(out[0].starts_with(&format!("{}:2: --node gamma is not in the node list", conf.display())), "{out:?}");
}

#[test]
fn several_errors_reported_in_line_order() {
    let (d, conf) = setup("many", |l| {
        l.insert(4, "frobnicate yes".into());
        l[6] = "warntime soon".into();
    });
    std::fs::set_permissions(d.join("authkey"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let (rc, out) = check(&conf);
    assert_eq!(rc, 2);
    let p = conf.display().to_string();
    assert!(out[0].starts_with(&format!("{p}:5: unknown directive")), "{out:?}");
    assert!(out[1].starts_with(&format!("{p}:7: warntime: bad time 'soon'")), "{out:?}");
    // Parse errors stop before host facts and the key are looked at.
    assert_eq!(out.len(), 2, "{out:?}");
}

#[test]
fn missing_config_file() {
    let d = TempDir::new("nofile");
    let conf = d.join("nope.conf");
    let mut out = Vec::new();
    assert_eq!(check_config_cmd(&conf, Some("alpha"), &mut out), 2);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out, format!("{}: cannot open: No such file or directory\n", conf.display()));
}

#[test]
fn own_ucast_address_is_skipped() {
    if !require(&["ip"]) {
        return;
    }
    // In a private network namespace of this thread only: lo holds 192.0.2.1, so the
    // `ucast lo 192.0.2.1` line is this host's own and is skipped; .2 is kept.
    let (_d, conf) = setup("own", |_| {});
    let links = in_new_netns(move || {
        common::run(&["ip", "link", "set", "lo", "up"]);
        common::run(&["ip", "addr", "add", "192.0.2.1/24", "dev", "lo"]);
        let (cfg, _) = load(&conf, Some("alpha")).unwrap_or_else(|e| panic!("{e:?}"));
        cfg.links.iter().map(LinkConfig::name).collect::<Vec<_>>()
    });
    assert_eq!(links, ["ucast lo 192.0.2.2", "serial /dev/ttyS1"]);
}

#[test]
fn keygen_and_read_key() {
    let d = TempDir::new("keygen");
    let p = d.join("authkey");
    keygen(&p).unwrap();
    let meta = std::fs::metadata(&p).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let text = std::fs::read_to_string(&p).unwrap();
    let hex = text.strip_suffix('\n').unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    let key = read_key(&p).unwrap();
    let rehex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rehex, hex);

    // Refuses to overwrite; the existing file stays as it was.
    let e = keygen(&p).unwrap_err();
    assert_eq!(e, KeyError::Exists(p.clone()));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), text);

    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(read_key(&p), Err(KeyError::Permissions { .. })));
}

#[test]
fn parse_str_is_pure() {
    // A path that does not exist is fine: parse_str never touches the filesystem.
    let text = demo(Path::new("/nonexistent/authkey")).join("\n");
    let p = config::parse_str(Path::new("/nonexistent/tandem.conf"), &text).unwrap();
    assert_eq!(p.config.links.len(), 3);
    assert!(p.config.key.is_empty());
}

#[test]
fn notify_hooks_that_cannot_run_are_warnings() {
    if !require(&[]) {
        return;
    }
    let (_d, conf) = setup("notify", |l| {
        l.push("notify /nonexistent/hook".to_string());
        l.push("notify /etc".to_string());
        l.push("metrics_listen 192.0.2.1:9694".to_string());
    });
    let (rc, out) = check(&conf);
    assert_eq!(rc, 0, "{out:?}");
    let file = conf.display();
    for w in [
        format!("{file}:13: warning: notify /nonexistent/hook: No such file or directory"),
        format!("{file}:14: warning: notify /etc: not an executable file"),
    ] {
        assert!(out.contains(&w), "no {w:?} in {out:?}");
    }
}
