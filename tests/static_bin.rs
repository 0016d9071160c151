//! `make` builds a stripped, static binary that runs on a host with no shared libraries at
//! all (an empty chroot holding only the binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::process::Command;

#[test]
fn release_binary_is_static_and_runs_without_libraries() {
    let Some(bin) = common::prereq::env("TANDEM_STATIC_BIN", "`make test` sets it") else {
        return;
    };
    if !require(&["file", "chroot"]) {
        return;
    }
    let f = stdout(&run(&["file", "-L", &bin]));
    assert!(f.contains("static"), "not static: {f}");
    assert!(!f.contains("not stripped"), "not stripped: {f}");
    let root = TempDir::new("chroot");
    std::fs::copy(&bin, root.path().join("tandem")).unwrap();
    let o = Command::new("chroot").arg(root.path()).args(["/tandem", "version"]).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).starts_with("tandem "), "{o:?}");
    // Real work inside the empty root: random key, file modes, config parsing.
    let o = Command::new("chroot").arg(root.path()).args(["/tandem", "keygen", "/key"]).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    std::fs::write(root.path().join("c.conf"), "cluster c\nnode a b\nauthkey /key\nserial /nonexistent\n").unwrap();
    let o = Command::new("chroot")
        .arg(root.path())
        .args(["/tandem", "check-config", "-c", "/c.conf", "--node", "a"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let size = std::fs::metadata(&bin).unwrap().len();
    eprintln!("static binary: {size} bytes");
}

#[test]
fn cli_exit_codes() {
    let o = Command::new(tandem()).arg("bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let d = TempDir::new("cli");
    let sock = d.path().join("none.sock");
    let o = Command::new(tandem()).args(["status", "-s"]).arg(&sock).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "status without a daemon: {o:?}");
    let key = d.path().join("k");
    let o = Command::new(tandem()).arg("keygen").arg(&key).output().unwrap();
    assert!(o.status.success());
    let before = std::fs::read(&key).unwrap();
    let o = Command::new(tandem()).arg("keygen").arg(&key).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "keygen must refuse to overwrite");
    assert_eq!(std::fs::read(&key).unwrap(), before);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // keygen creates a missing directory, private.
    let nested = d.path().join("etc/tandem/authkey");
    let o = Command::new(tandem()).arg("keygen").arg(&nested).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::metadata(nested.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    // check-config: file:line and exit 2.
    let conf = d.path().join("bad.conf");
    std::fs::write(
        &conf,
        format!("cluster c\nnode a b\nauthkey {}\nkeepalive fast\nucast lo 192.0.2.9\n", key.display()),
    )
    .unwrap();
    let o = Command::new(tandem()).args(["check-config", "--node", "a", "-c"]).arg(&conf).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stdout(&o).contains(&format!("{}:4: ", conf.display())), "{o:?}");
    // agent: status of an address nobody holds is "stopped" (3).
    let o = Command::new(tandem()).args(["agent", "ip::203.0.113.77/32/lo", "status"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{o:?}");
}
