//! Loop devices for the mount tests, through util-linux's `losetup`: a file attached to a
//! free loop device (`losetup --find --show FILE`), detached on drop (`losetup -d`).
//! Needs root, `losetup` (package `mount`) and `/dev/loop-control`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::try_run;

/// A file attached to a loop device; detached when dropped.
#[derive(Debug)]
pub struct LoopDev {
    path: PathBuf,
}

impl LoopDev {
    /// Attaches `file` (read-write) to a free loop device. Tries a few times: another
    /// process may take the same free device between losetup's lookup and its attach.
    pub fn attach(file: &Path) -> LoopDev {
        let mut last = String::new();
        for _ in 0..5 {
            let out = Command::new("losetup").arg("--find").arg("--show").arg(file).output().expect("run losetup");
            let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && dev.starts_with("/dev/loop") {
                return LoopDev { path: PathBuf::from(dev) };
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("losetup --find --show {}: {last}", file.display());
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        // Bounded retries: the device may still be closing after an unmount.
        let dev = self.path.to_string_lossy().into_owned();
        for _ in 0..50 {
            if try_run(&["losetup", "-d", &dev]) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("losetup -d {dev} failed; the device stays attached");
    }
}
