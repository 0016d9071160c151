//! Serial lines: open, exclusive mode, raw termios, output-queue depth.
//! nix covers termios itself; this adds the ioctls it lacks and the fd ownership step.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::termios::{
    self, BaudRate, ControlFlags, InputFlags, LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices, Termios,
};

nix::ioctl_none_bad!(ioctl_tiocexcl, libc::TIOCEXCL);
nix::ioctl_none_bad!(ioctl_tiocnxcl, libc::TIOCNXCL);
nix::ioctl_read_bad!(ioctl_tiocoutq, libc::TIOCOUTQ, libc::c_int);

/// The standard rates tandem accepts, 1200 to 921600 baud.
pub const BAUD_RATES: [u32; 14] =
    [1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600];

/// The termios constant for a standard rate, or `None` for any other number.
pub fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        1200 => BaudRate::B1200,
        1800 => BaudRate::B1800,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115200 => BaudRate::B115200,
        230400 => BaudRate::B230400,
        460800 => BaudRate::B460800,
        500000 => BaudRate::B500000,
        576000 => BaudRate::B576000,
        921600 => BaudRate::B921600,
        _ => return None,
    })
}

/// Opens a tty `O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC`.
pub fn open_tty(path: &Path) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(path, flags, Mode::empty())?;
    // SAFETY: `open` just returned this fd; nothing else owns it, so OwnedFd may close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// TIOCEXCL (`on`) / TIOCNXCL: while set, further opens of the tty fail with EBUSY
/// (except for CAP_SYS_ADMIN).
pub fn set_exclusive(fd: BorrowedFd<'_>, on: bool) -> Result<(), Errno> {
    // SAFETY: both ioctls take no argument and only touch the tty behind a valid, borrowed fd.
    unsafe {
        if on {
            ioctl_tiocexcl(fd.as_raw_fd())?;
        } else {
            ioctl_tiocnxcl(fd.as_raw_fd())?;
        }
    }
    Ok(())
}

/// TIOCOUTQ: bytes written but not yet sent by the driver (0 for drivers that don't track it).
pub fn output_queue(fd: BorrowedFd<'_>) -> Result<usize, Errno> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one c_int through the pointer, which points at a live local.
    unsafe { ioctl_tiocoutq(fd.as_raw_fd(), &mut n) }?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Turns `t` into a raw 8N1 line at `baud`: CLOCAL|CREAD, no echo, no canonical mode,
/// no input/output processing, no software flow control, hardware flow control only
/// with `rtscts`. VMIN=1/VTIME=0: with O_NONBLOCK a read with no data gives EAGAIN, so a
/// read of 0 bytes only ever means the line was hung up (device gone).
pub fn make_raw(t: &mut Termios, baud: BaudRate, rtscts: bool) -> Result<(), Errno> {
    termios::cfmakeraw(t);
    t.input_flags &= !(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY | InputFlags::INPCK);
    t.input_flags |= InputFlags::IGNBRK;
    t.output_flags &= !OutputFlags::OPOST;
    t.local_flags &= !(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG | LocalFlags::IEXTEN);
    t.control_flags &= !(ControlFlags::CSIZE
        | ControlFlags::PARENB
        | ControlFlags::CSTOPB
        | ControlFlags::CRTSCTS
        | ControlFlags::HUPCL);
    t.control_flags |= ControlFlags::CS8 | ControlFlags::CLOCAL | ControlFlags::CREAD;
    if rtscts {
        t.control_flags |= ControlFlags::CRTSCTS;
    }
    if let Some(c) = t.control_chars.get_mut(SpecialCharacterIndices::VMIN as usize) {
        *c = 1;
    }
    if let Some(c) = t.control_chars.get_mut(SpecialCharacterIndices::VTIME as usize) {
        *c = 0;
    }
    set_speed(t, baud);
    Ok(())
}

/// Puts `baud` into the CBAUD bits of c_cflag (input speed = output speed), which is where
/// glibc's tcsetattr takes the line speed from. Not `cfsetspeed`: the libc crate binds the
/// `cf*speed` functions to versioned glibc symbols, which a static link cannot resolve.
fn set_speed(t: &mut Termios, baud: BaudRate) {
    let cbaud = ControlFlags::from_bits_retain(libc::CBAUD);
    t.control_flags.remove(cbaud);
    t.control_flags.insert(ControlFlags::from_bits_retain(baud as libc::tcflag_t & libc::CBAUD));
}

/// Reads the current settings.
pub fn get_attr(fd: BorrowedFd<'_>) -> Result<Termios, Errno> {
    termios::tcgetattr(fd)
}

/// Applies settings at once.
pub fn set_attr(fd: BorrowedFd<'_>, t: &Termios) -> Result<(), Errno> {
    termios::tcsetattr(fd, SetArg::TCSANOW, t)
}

/// Discards unread input and unsent output.
pub fn flush_both(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    termios::tcflush(fd, termios::FlushArg::TCIOFLUSH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn baud_table_is_complete() {
        for b in BAUD_RATES {
            assert!(baud_rate(b).is_some(), "{b}");
        }
        assert!(baud_rate(14400).is_none());
        assert!(baud_rate(0).is_none());
    }

    #[test]
    fn raw_mode_on_a_pty() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let path = nix::unistd::ttyname(pty.slave.as_fd()).unwrap();
        let fd = open_tty(&path).unwrap();
        set_exclusive(fd.as_fd(), true).unwrap();
        let mut t = get_attr(fd.as_fd()).unwrap();
        make_raw(&mut t, BaudRate::B19200, true).unwrap();
        set_attr(fd.as_fd(), &t).unwrap();
        let got = get_attr(pty.slave.as_fd()).unwrap();
        assert!(!got.local_flags.contains(LocalFlags::ICANON));
        assert!(got.control_flags.contains(ControlFlags::CS8 | ControlFlags::CLOCAL | ControlFlags::CRTSCTS));
        assert_eq!(termios::cfgetospeed(&got), BaudRate::B19200);
        assert_eq!(output_queue(fd.as_fd()).unwrap(), 0);
        set_exclusive(fd.as_fd(), false).unwrap();
        assert_eq!(open_tty(Path::new("/nonexistent/tty")).err(), Some(Errno::ENOENT));
    }
}
