//! `tandem guest` as an administrator uses it: the guest is a resource of the configuration
//! (`guest::NAME::ROOTDIR::options` in a group), started outside the daemon to prepare it,
//! listed, entered (it sees only itself), and stopped, leaving nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::guest::GuestRoot;
use common::*;

use std::process::Command;

fn tandem_guest(cfg: &std::path::Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(tandem()).args(["guest", "-c"]).arg(cfg).args(["--node", "a"]).args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)))
}

/// Stops the guest (best effort) when the test ends, even on failure.
struct StopOnDrop(std::path::PathBuf, String);
impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = tandem_guest(&self.0, &["stop", &self.1]);
    }
}

#[test]
fn start_list_enter_stop_from_the_configuration() {
    if !require(&["busybox", "ip", "nsenter"]) {
        return;
    }
    let root = GuestRoot::busybox();
    let init = root.script_init("");
    let name = format!("cli{}", unique());
    let dir = TempDir::new("guestcli");
    let key = dir.path().join("key");
    tandem::config::keygen(&key).unwrap();
    let cfg = dir.path().join("t.conf");
    std::fs::write(
        &cfg,
        format!(
            "cluster c\nnode a b\nauthkey {}\nucast lo 127.0.0.2\n\
             group g a guest::{name}::{}::{init}::memory=64M::pids=64\n",
            key.display(),
            root.root.display()
        ),
    )
    .unwrap();
    let _stop = StopOnDrop(cfg.clone(), name.clone());
    let (code, out) = tandem_guest(&cfg, &["start", &name]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("running (init pid"), "{out}");

    let (code, out) = tandem_guest(&cfg, &["list"]);
    assert_eq!(code, 0, "{out}");
    let line = out.lines().find(|l| l.starts_with(&name)).unwrap_or_else(|| panic!("{name} not listed:\n{out}"));
    assert!(line.contains("running"), "{line}");

    // Inside, the guest sees only itself.
    let (code, out) = tandem_guest(&cfg, &["enter", &name, "hostname"]);
    assert_eq!((code, out.trim()), (0, name.as_str()));
    let (code, out) = tandem_guest(&cfg, &["enter", &name, "id"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("uid=0(root)"), "{out}");
    let (code, out) = tandem_guest(&cfg, &["enter", &name, "ps"]);
    assert_eq!(code, 0, "{out}");
    let pids: Vec<&str> = out.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert!(pids.contains(&"1"), "the guest's init is pid 1 in its namespace:\n{out}");
    assert!(pids.len() <= 6, "only the guest's processes: {out}");
    assert!(!out.contains("tandem"), "a host process is visible:\n{out}");
    let (code, _) = tandem_guest(&cfg, &["enter", &name, "sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "the command's exit code comes back");

    let (code, out) = tandem_guest(&cfg, &["stop", &name]);
    assert_eq!(code, 0, "{out}");
    let (_, out) = tandem_guest(&cfg, &["list"]);
    let line = out.lines().find(|l| l.starts_with(&name)).unwrap_or("");
    assert!(line.is_empty() || line.contains("stopped"), "{out}");
    let (code, out) = tandem_guest(&cfg, &["start", "nosuchguest"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no guest named"), "{out}");
}
