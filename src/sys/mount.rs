//! mount(2)/umount2(2) and loop devices.
//!
//! `mount`/`umount` are thin wrappers over nix (no `mount` binary, never a lazy unmount).
//! [`LoopDevice`] attaches a file to a free loop device through `/dev/loop-control`
//! (`LOOP_CTL_GET_FREE` + `LOOP_SET_FD`) and detaches it (`LOOP_CLR_FD`) on drop; the
//! integration tests use it so they need no `losetup`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

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

// <linux/loop.h>
const LOOP_SET_FD: u32 = 0x4C00;
const LOOP_CLR_FD: u32 = 0x4C01;
const LOOP_CTL_GET_FREE: u32 = 0x4C82;
const LOOP_MAJOR: u64 = 7;

/// A file attached to a loop device; detached when dropped.
#[derive(Debug)]
pub struct LoopDevice {
    path: PathBuf,
    dev: File,
    attached: bool,
}

impl LoopDevice {
    /// Attaches `backing` (read-write) to a free loop device. Retries a few times when
    /// another process grabs the same free device first.
    pub fn attach(backing: &Path) -> Result<LoopDevice, Errno> {
        let file = OpenOptions::new().read(true).write(true).open(backing).map_err(io_errno)?;
        let ctl = OpenOptions::new().read(true).write(true).open("/dev/loop-control").map_err(io_errno)?;
        let mut last = Errno::EBUSY;
        for _ in 0..20 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number;
            // `ctl` is an open fd for the duration of the call.
            let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as libc::Ioctl) };
            if n < 0 {
                return Err(Errno::last());
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            if !path.exists() {
                let rdev = nix::sys::stat::makedev(LOOP_MAJOR, u64::try_from(n).unwrap_or(0));
                let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
                match nix::sys::stat::mknod(&path, nix::sys::stat::SFlag::S_IFBLK, mode, rdev) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
            let dev = OpenOptions::new().read(true).write(true).open(&path).map_err(io_errno)?;
            // SAFETY: LOOP_SET_FD takes the backing fd by value; both fds are open.
            let r =
                unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD as libc::Ioctl, file.as_raw_fd() as libc::c_ulong) };
            if r == 0 {
                return Ok(LoopDevice { path, dev, attached: true });
            }
            last = Errno::last();
            if last != Errno::EBUSY {
                return Err(last);
            }
        }
        Err(last)
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Detaches now (fails with EBUSY while the device is mounted).
    pub fn detach(&mut self) -> Result<(), Errno> {
        if !self.attached {
            return Ok(());
        }
        // SAFETY: LOOP_CLR_FD takes no argument; `self.dev` is open.
        let r = unsafe { libc::ioctl(self.dev.as_raw_fd(), LOOP_CLR_FD as libc::Ioctl, 0) };
        if r == 0 {
            self.attached = false;
            Ok(())
        } else {
            Err(Errno::last())
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        for _ in 0..50 {
            match self.detach() {
                Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(20)),
                _ => return,
            }
        }
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
