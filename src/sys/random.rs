//! getrandom(2).

use nix::errno::Errno;

/// Fills `buf` from the kernel's CSPRNG with getrandom(2) (flags 0: blocks only until the
/// pool is initialised, once per boot). Retries on EINTR and short reads.
pub fn getrandom(buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the whole call;
        // the kernel writes at most that many bytes into it.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(Errno::EIO);
        }
        done = done.saturating_add(usize::try_from(n).unwrap_or(0));
    }
    Ok(())
}
