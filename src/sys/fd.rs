//! File descriptors as `OwnedFd`: open(2) through nix (which returns raw numbers), owned
//! from the moment the kernel hands them out.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::NixPath;

/// open(2), the result owned (closed on drop). Add `O_CLOEXEC` unless the fd must survive exec.
pub fn open<P: ?Sized + NixPath>(path: &P, flags: OFlag, mode: Mode) -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::open(path, flags, mode)?;
    // SAFETY: open just returned this fd; nothing else owns it, so OwnedFd may close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes sure fds 0, 1 and 2 are open (on /dev/null where they were closed), so that no
/// later open(2) or pipe(2) hands out one of them.
pub fn ensure_std_fds() {
    for _ in 0..3 {
        match nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
            Ok(fd) if fd > 2 => {
                let _ = nix::unistd::close(fd);
                return;
            }
            // Kept open on purpose: it now is one of 0, 1, 2.
            Ok(_) => continue,
            Err(_) => return,
        }
    }
}
