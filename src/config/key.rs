//! The shared authentication key: `tandem keygen` writes it, the daemon reads it.
//!
//! Format: 64 hexadecimal characters (256 bits) and a newline. Leading and trailing
//! whitespace is ignored when reading; upper-case hex digits are accepted.
//! The file must not be readable or writable by group or others.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;

/// The shared key's bytes. `Debug` prints only their number, and they are overwritten
/// with zeros when the key is dropped (every clone too).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new(bytes: Vec<u8>) -> Key {
        Key(bytes)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        crate::sys::zeroize(&mut self.0);
    }
}

/// Why a key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// keygen: the file is already there; it was not touched.
    Exists(PathBuf),
    /// The key file does not exist.
    Missing(PathBuf),
    /// A system call failed.
    Io { op: &'static str, path: PathBuf, errno: Errno },
    /// The mode lets group or others read or write it.
    Permissions { path: PathBuf, mode: u32 },
    /// Owned by another user than the one reading it (root, for the daemon).
    Owner { path: PathBuf, uid: u32, expected: u32 },
    /// Not a regular file.
    NotAFile(PathBuf),
    /// Empty (or only whitespace).
    Empty(PathBuf),
    /// Not 64 hex characters.
    Malformed { path: PathBuf, reason: String },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Exists(p) => write!(f, "{} already exists; refusing to overwrite it", p.display()),
            KeyError::Missing(p) => {
                write!(f, "key file {} does not exist (create it with `tandem keygen`)", p.display())
            }
            KeyError::Io { op, path, errno } => {
                write!(f, "{op} {}: {}", path.display(), errno.desc())
            }
            KeyError::Permissions { path, mode } => write!(
                f,
                "key file {} (mode {:04o}) is readable by group or others; chmod 600",
                path.display(),
                mode & 0o7777
            ),
            KeyError::Owner { path, uid, expected } => write!(
                f,
                "key file {} is owned by uid {uid}, not by uid {expected} who reads it; chown it",
                path.display()
            ),
            KeyError::NotAFile(p) => write!(f, "key file {} is not a regular file", p.display()),
            KeyError::Empty(p) => write!(f, "key file {} is empty", p.display()),
            KeyError::Malformed { path, reason } => {
                write!(f, "key file {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for KeyError {}

fn errno_of(e: &std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len().saturating_mul(2).saturating_add(1));
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Writes a fresh 256-bit key to `path`: created with O_CREAT|O_EXCL, mode 0600, fsynced
/// (and its directory too). Refuses to overwrite an existing file.
pub fn keygen(path: &Path) -> Result<(), KeyError> {
    let mut key = [0u8; KEY_LEN];
    crate::sys::random::getrandom(&mut key).map_err(|errno| KeyError::Io {
        op: "getrandom",
        path: path.into(),
        errno,
    })?;
    let mut text = hex(&key);
    text.push('\n');
    key.fill(0);

    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            KeyError::Exists(path.into())
        } else {
            KeyError::Io { op: "create", path: path.into(), errno: errno_of(&e) }
        }
    })?;
    let io = |op: &'static str| move |e: std::io::Error| KeyError::Io { op, path: path.into(), errno: errno_of(&e) };
    let written = f
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io("chmod"))
        .and_then(|()| f.write_all(text.as_bytes()).map_err(io("write")))
        .and_then(|()| f.sync_all().map_err(io("fsync")));
    if let Err(e) = written {
        // We created it; do not leave a partial key behind.
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    drop(f);
    // Make the directory entry durable too (best effort: some filesystems refuse).
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Opens `path` for reading without ever blocking in `open(2)`: `O_NONBLOCK` (a FIFO with
/// no writer would otherwise wait forever, and SIGHUP reads the key inside the daemon's
/// loop), `O_NOCTTY`, close-on-exec. Callers must check the file type on the open file
/// (`fstat`) before reading; only a regular file is read, and for one `O_NONBLOCK` is
/// meaningless.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC).open(path)
}

/// Reads a private file (a key or a password): a regular file, owned by the effective user
/// (root, for the daemon), no permission bits for group or others; at most `limit` bytes
/// are read. The checks are made on the open file, so what is checked is what is read.
pub fn read_private(path: &Path, limit: u64) -> Result<Vec<u8>, KeyError> {
    let f = open_regular(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            KeyError::Missing(path.into())
        } else {
            KeyError::Io { op: "open", path: path.into(), errno: errno_of(&e) }
        }
    })?;
    let meta = f.metadata().map_err(|e| KeyError::Io { op: "stat", path: path.into(), errno: errno_of(&e) })?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile(path.into()));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(KeyError::Owner { path: path.into(), uid: meta.uid(), expected: euid });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.into(), mode: meta.mode() });
    }
    let mut buf = Vec::with_capacity(128);
    f.take(limit).read_to_end(&mut buf).map_err(|e| KeyError::Io {
        op: "read",
        path: path.into(),
        errno: errno_of(&e),
    })?;
    Ok(buf)
}

/// Reads and checks the key: [`read_private`]'s rules, 64 hex characters (surrounding
/// whitespace allowed). Returns the 32 key bytes.
pub fn read_key(path: &Path) -> Result<Key, KeyError> {
    // Bounded read: a key file is 65 bytes; anything past 4 KiB is not a key.
    let mut buf = read_private(path, 4096)?;
    let text = buf.trim_ascii();
    if text.is_empty() {
        return Err(KeyError::Empty(path.into()));
    }
    let malformed = |reason: String| KeyError::Malformed { path: path.into(), reason };
    if text.len() != KEY_LEN * 2 {
        return Err(malformed(format!("expected {} hex characters, found {} characters", KEY_LEN * 2, text.len())));
    }
    let mut key = Vec::with_capacity(KEY_LEN);
    for pair in text.chunks_exact(2) {
        let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
            return Err(malformed("odd length".to_string()));
        };
        match (nibble(hi), nibble(lo)) {
            (Some(h), Some(l)) => key.push(h << 4 | l),
            _ => {
                crate::sys::zeroize(&mut buf);
                crate::sys::zeroize(&mut key);
                return Err(malformed("not a hexadecimal key".to_string()));
            }
        }
    }
    crate::sys::zeroize(&mut buf);
    Ok(Key(key))
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn write_mode(p: &Path, text: &str, mode: u32) {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn keygen_writes_0600_hex_and_round_trips() {
        let d = TempDir::new("key");
        let p = d.join("authkey");
        keygen(&p).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert!(text[..64].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let key = read_key(&p).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(hex(&key), text[..64]);
        // Two keys differ.
        let q = d.join("authkey2");
        keygen(&q).unwrap();
        assert_ne!(read_key(&q).unwrap(), key);
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let d = TempDir::new("key");
        let p = d.join("authkey");
        write_mode(&p, "precious\n", 0o600);
        assert_eq!(keygen(&p), Err(KeyError::Exists(p.clone())));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "precious\n");
        assert!(keygen(&p).unwrap_err().to_string().contains("refusing to overwrite"));
    }

    #[test]
    fn keygen_into_missing_dir_fails_cleanly() {
        let d = TempDir::new("key");
        let p = d.join("nodir").join("authkey");
        assert!(matches!(keygen(&p), Err(KeyError::Io { op: "create", errno: Errno::ENOENT, .. })));
    }

    #[test]
    fn read_key_checks() {
        let d = TempDir::new("key");
        let good = "0123456789abcdef".repeat(4);
        let p = d.join("k");
        write_mode(&p, &format!("  {}\n\n", good.to_uppercase()), 0o600);
        assert_eq!(hex(&read_key(&p).unwrap()), good);
        write_mode(&p, &good, 0o400);
        assert_eq!(hex(&read_key(&p).unwrap()), good);

        write_mode(&p, &good, 0o644);
        let e = read_key(&p).unwrap_err();
        assert!(matches!(e, KeyError::Permissions { .. }));
        assert!(e.to_string().contains("readable by group or others; chmod 600"), "{e}");
        write_mode(&p, &good, 0o620);
        assert!(matches!(read_key(&p), Err(KeyError::Permissions { .. })));

        write_mode(&p, "", 0o600);
        assert_eq!(read_key(&p), Err(KeyError::Empty(p.clone())));
        write_mode(&p, " \n", 0o600);
        assert_eq!(read_key(&p), Err(KeyError::Empty(p.clone())));
        write_mode(&p, &good[..62], 0o600);
        assert!(matches!(read_key(&p), Err(KeyError::Malformed { .. })));
        write_mode(&p, &format!("{}zz", &good[..62]), 0o600);
        assert!(matches!(read_key(&p), Err(KeyError::Malformed { .. })));
        write_mode(&p, &format!("{good} x"), 0o600);
        assert!(matches!(read_key(&p), Err(KeyError::Malformed { .. })));

        if nix::unistd::geteuid().is_root() {
            write_mode(&p, &good, 0o600);
            nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            let e = read_key(&p).unwrap_err();
            assert!(matches!(e, KeyError::Owner { uid: 65534, expected: 0, .. }), "{e}");
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        }

        let missing = d.join("nope");
        assert_eq!(read_key(&missing), Err(KeyError::Missing(missing.clone())));
        assert!(matches!(read_key(d.path()), Err(KeyError::NotAFile(_))));
    }
}
