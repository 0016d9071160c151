//! mount(2)/umount2(2): thin wrappers over nix (no `mount` binary, never a lazy unmount).

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

/// mount(2). `data` is the filesystem-specific option string (may be empty).
pub fn mount(device: &Path, dir: &Path, fstype: &str, flags: MsFlags, data: &str) -> Result<(), Errno> {
    let data = if data.is_empty() { None } else { Some(data) };
    nix::mount::mount(Some(device), dir, Some(fstype), flags, data)
}

/// umount2(2) with no flags: never `MNT_DETACH`, never `MNT_FORCE`.
pub fn umount(dir: &Path) -> Result<(), Errno> {
    nix::mount::umount2(dir, MntFlags::UMOUNT_NOFOLLOW)
}
