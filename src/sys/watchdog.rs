//! The Linux watchdog device (`/dev/watchdog`, Documentation/watchdog/watchdog-api.rst):
//! open arms it, `WDIOC_SETTIMEOUT` sets its period, `WDIOC_KEEPALIVE` pets it, and writing
//! the magic character `V` before closing disarms it. Closing without it (a crash, SIGKILL)
//! leaves it armed: the machine resets when the period runs out.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;

nix::ioctl_read!(wdioc_keepalive, b'W', 5, libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);

/// An armed watchdog.
#[derive(Debug)]
pub struct Watchdog {
    file: Option<File>,
    /// The period the driver accepted (it may round), in seconds.
    pub timeout_s: u32,
}

impl Watchdog {
    /// Opens (arms) `path` and sets its period to `timeout_s` seconds.
    pub fn open(path: &Path, timeout_s: u32) -> Result<Watchdog, Errno> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let mut t = libc::c_int::try_from(timeout_s).unwrap_or(libc::c_int::MAX);
        // SAFETY: the fd is an open watchdog device; `t` is a valid, exclusively borrowed int
        // the driver reads the wanted period from and writes the accepted one to.
        let set = unsafe { wdioc_settimeout(file.as_raw_fd(), &mut t) };
        let mut wd = Watchdog { file: Some(file), timeout_s };
        match set {
            Ok(_) => wd.timeout_s = u32::try_from(t).unwrap_or(timeout_s),
            Err(e) => {
                // A driver without a settable period: disarm and refuse.
                wd.disarm();
                return Err(e);
            }
        }
        wd.pet()?;
        Ok(wd)
    }

    /// Restarts the period.
    pub fn pet(&mut self) -> Result<(), Errno> {
        let Some(f) = &self.file else { return Ok(()) };
        let mut dummy: libc::c_int = 0;
        // SAFETY: the fd is an open watchdog device; `dummy` is a valid int the driver may
        // write to.
        unsafe { wdioc_keepalive(f.as_raw_fd(), &mut dummy) }.map(|_| ())
    }

    /// Magic close: the watchdog stops (after a clean stop of the daemon).
    pub fn disarm(&mut self) {
        if let Some(mut f) = self.file.take() {
            let _ = f.write_all(b"V");
            drop(f);
        }
    }
}
