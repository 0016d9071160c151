//! A null-modem cable for daemon-level tests: two pty pairs joined by a [`Relay`], each
//! node's end a uniquely named symlink to its pty slave (for its `serial` line), so that the
//! daemons open and reopen the line by path. The test keeps the slaves open, so the ptys
//! live while daemons come and go.
//!
//! The daemon keeps its UUCP lock in /var/lock (`LCK..<name of the symlink>`); the names are
//! unique and [`Cable`]'s Drop removes both locks, even on failure. [`Cable::lock_of`] names
//! a node's lock, for a rig that must forget it (a machine's reboot clears /var/lock).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::relay::{Faults, Pty, Relay};
use super::unique;

pub const LOCK_DIR: &str = "/var/lock";

pub struct Cable {
    pub relay: Relay,
    /// Alpha's end (a symlink to a pty slave).
    pub a: PathBuf,
    /// Beta's end.
    pub b: PathBuf,
    _slaves: (OwnedFd, OwnedFd),
}

impl Cable {
    /// A cable at `baud` (paced like a real line), its ends in `dir`; the relay's random
    /// choices (corruption, noise) come from `seed`. The relay runs at real-time priority
    /// ([`Relay::start_realtime`]): a real cable never stalls.
    pub fn new(dir: &Path, baud: u32, seed: u64) -> Cable {
        let pa = Pty::new();
        let pb = Pty::new();
        let id = unique();
        let a = dir.join(format!("tty{id}a"));
        let b = dir.join(format!("tty{id}b"));
        std::os::unix::fs::symlink(&pa.path, &a).unwrap();
        std::os::unix::fs::symlink(&pb.path, &b).unwrap();
        let relay = Relay::start_realtime(pa.master, pb.master, Faults { baud: Some(baud), ..Faults::default() }, seed);
        Cable { relay, a, b, _slaves: (pa.slave, pb.slave) }
    }

    /// The end of node `name` ("alpha" or "beta").
    pub fn end(&self, name: &str) -> &Path {
        if name == "alpha" {
            &self.a
        } else {
            &self.b
        }
    }

    /// Cuts the line (true) or mends it, leaving the other faults as they are.
    pub fn cut(&self, cut: bool) {
        let mut f = self.relay.faults();
        f.cut = cut;
        self.relay.set_faults(f);
    }

    /// The UUCP lock file a daemon holds for the line at `dev`.
    pub fn lock_of(dev: &Path) -> PathBuf {
        Path::new(LOCK_DIR).join(format!("LCK..{}", dev.file_name().unwrap().to_string_lossy()))
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        for d in [&self.a, &self.b] {
            let _ = std::fs::remove_file(Cable::lock_of(d));
        }
    }
}
