//! OCF resource agent directories for tests: tandem's agents linked busybox-style into a
//! `resource.d/tandem/` tree of a temporary OCF root, and temporary providers under the real
//! `/usr/lib/ocf/resource.d` (tandem's `ocf::` resources look there); all removed on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{repo, tandem, unique, TempDir};

/// tandem's OCF agent names.
pub const AGENTS: [&str; 6] = ["ip", "drbd", "mount", "lvm", "script", "guest"];

/// `DIR/resource.d/tandem/{ip,drbd,…}` → a copy of the tandem binary in DIR (a copy, so that
/// user `nobody`, as ocf-tester's permission check runs the agent, can reach it).
pub struct TandemRa {
    pub dir: TempDir,
}

impl TandemRa {
    pub fn new() -> TandemRa {
        let dir = TempDir::new("ocf-ra");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("tandem");
        std::fs::copy(tandem(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let prov = dir.path().join("resource.d/tandem");
        std::fs::create_dir_all(&prov).unwrap();
        for d in [dir.path().join("resource.d"), prov.clone()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for a in AGENTS {
            std::os::unix::fs::symlink(&bin, prov.join(a)).unwrap();
        }
        TandemRa { dir }
    }
    /// The path of agent `name` (a link to the binary).
    pub fn agent(&self, name: &str) -> PathBuf {
        self.dir.path().join("resource.d/tandem").join(name)
    }
}

/// A provider directory `/usr/lib/ocf/resource.d/tandemtestNNN`, removed on drop.
pub struct Provider {
    pub name: String,
    pub dir: PathBuf,
}

impl Provider {
    pub fn new() -> Provider {
        let name = format!("tandemtest{}", unique());
        let dir = Path::new("/usr/lib/ocf/resource.d").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Provider { name, dir }
    }
    /// Writes agent `name` as a shell script.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
    /// Links the test TCP service's OCF agent (tests/tools/ocf-svc) as `svc`.
    pub fn svc(&self) -> PathBuf {
        let p = self.dir.join("svc");
        std::os::unix::fs::symlink(repo().join("tests/tools/ocf-svc"), &p).unwrap();
        p
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
