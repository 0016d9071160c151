//! Persistent node state in the state directory (default `/var/lib/tandem`).
//!
//! `generation`: the boot generation, a decimal number followed by a newline, bumped at
//! every daemon start and carried in every packet, so the peer can tell a restarted daemon
//! (whose sequence numbers start again at 1) from a replay of old packets.
//!
//! `peer`: the peer's newest generation and the highest sequence number accepted from it,
//! `GENERATION SEQ\n`, written at each transition of the peer and at a clean exit, so that
//! after a restart of this daemon a replay of the peer's old packets is still refused.

use core::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// Name of the generation file inside the state directory.
pub const GENERATION_FILE: &str = "generation";
/// Longest generation file we accept (u64::MAX has 20 digits).
const MAX_FILE_LEN: usize = 64;

#[derive(Debug)]
pub enum StateError {
    Io {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// The file exists but does not hold a number; never silently reset (the peer would
    /// refuse our packets as an old generation).
    Corrupt {
        path: PathBuf,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io { op, path, errno } => {
                write!(f, "{op} {}: {}", path.display(), errno.desc())
            }
            StateError::Corrupt { path } => write!(f, "{}: unreadable contents; fix or remove it", path.display()),
        }
    }
}

impl std::error::Error for StateError {}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |e| StateError::Io {
        op,
        path: path.to_path_buf(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// Name of the peer's replay mark inside the state directory.
pub const PEER_FILE: &str = "peer";

/// Reads the stored generation: `Ok(0)` if the file does not exist.
pub fn read_generation(statedir: &Path) -> Result<u64, StateError> {
    let text = match read_small(statedir, GENERATION_FILE)? {
        Some(t) => t,
        None => return Ok(0),
    };
    let path = statedir.join(GENERATION_FILE);
    let corrupt = || StateError::Corrupt { path: path.clone() };
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(corrupt());
    }
    text.parse::<u64>().map_err(|_| corrupt())
}

/// The peer's replay mark (generation, highest sequence number accepted), if stored.
pub fn read_peer_mark(statedir: &Path) -> Result<Option<(u64, u64)>, StateError> {
    let Some(text) = read_small(statedir, PEER_FILE)? else { return Ok(None) };
    let path = statedir.join(PEER_FILE);
    let mut w = text.split_ascii_whitespace();
    let mut num = || w.next().and_then(|x| x.parse::<u64>().ok());
    match (num(), num()) {
        (Some(g), Some(s)) => Ok(Some((g, s))),
        _ => Err(StateError::Corrupt { path }),
    }
}

/// Stores the peer's replay mark durably (temp file, fsync, rename, fsync of the
/// directory). Blocking: the daemon calls it from a child, or at exit.
pub fn write_peer_mark(statedir: &Path, generation: u64, seq: u64) -> Result<(), StateError> {
    write_durably(statedir, PEER_FILE, &format!("{generation} {seq}\n"))
}

/// Reads a small file of the state directory (`None` if it does not exist).
fn read_small(statedir: &Path, name: &str) -> Result<Option<String>, StateError> {
    let path = statedir.join(name);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    let mut buf = [0u8; MAX_FILE_LEN + 1];
    let mut len = 0;
    while let Some(dst) = buf.get_mut(len..).filter(|d| !d.is_empty()) {
        match f.read(dst) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", &path)(e)),
        }
    }
    let corrupt = || StateError::Corrupt { path: path.clone() };
    if len > MAX_FILE_LEN {
        return Err(corrupt());
    }
    let text = buf.get(..len).ok_or_else(corrupt)?;
    core::str::from_utf8(text).map(|t| Some(t.to_string())).map_err(|_| corrupt())
}

/// Writes `name` in `statedir` durably: a temp file, fsync, rename over, fsync of the dir.
fn write_durably(statedir: &Path, name: &str, text: &str) -> Result<(), StateError> {
    let tmp = statedir.join(format!("{name}.tmp"));
    let path = statedir.join(name);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(text.as_bytes()).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    File::open(statedir).and_then(|d| d.sync_all()).map_err(io_err("fsync", statedir))
}

/// Creates `statedir` (mode 0700) if missing, reads the stored generation (missing = 0),
/// stores max(generation + 1, wall-clock seconds) durably (temp file, fsync, rename, fsync
/// of the directory) and returns it.
pub fn bump_generation(statedir: &Path) -> Result<u64, StateError> {
    if !statedir.is_dir() {
        DirBuilder::new().recursive(true).mode(0o700).create(statedir).map_err(io_err("mkdir", statedir))?;
    }
    let old = read_generation(statedir)?;
    let next = old.checked_add(1).ok_or_else(|| StateError::Corrupt { path: statedir.join(GENERATION_FILE) })?;
    // Never below the wall clock in seconds: a node whose state directory was lost
    // (reinstall, wiped disk) would otherwise restart at 1, and its peer would drop every
    // packet as an old generation until the peer itself restarted.
    let (now_secs, _) = crate::sys::rt::realtime();
    let new = next.max(u64::try_from(now_secs).unwrap_or(0));
    write_durably(statedir, GENERATION_FILE, &format!("{new}\n"))?;
    Ok(new)
}

/// Stores `generation` as the last one used (after a start that had to go higher than
/// [`bump_generation`]'s, e.g. above heartbeat's).
pub fn store_generation(statedir: &Path, generation: u64) -> Result<(), StateError> {
    write_durably(statedir, GENERATION_FILE, &format!("{generation}\n"))
}

/// heartbeat's generation file in its state directory (/var/lib/heartbeat).
pub const HB_GENERATION_FILE: &str = "hb_generation";
/// heartbeat's uuid file: the node's 16 uuid bytes, raw.
pub const HB_UUID_FILE: &str = "hb_uuid";

/// heartbeat's last generation (`hb_generation`: the number right-aligned in 15 characters
/// and a newline); `None` if there is none (or it is not a number, which heartbeat too
/// replaces by the time).
pub fn read_hb_generation(hb_dir: &Path) -> Result<Option<u64>, StateError> {
    let Some(text) = read_small(hb_dir, HB_GENERATION_FILE)? else { return Ok(None) };
    Ok(text.trim().parse::<u64>().ok())
}

/// Writes `hb_generation` as heartbeat does, so that heartbeat started again on this node
/// (a rollback) goes on above the generations tandem used.
pub fn write_hb_generation(hb_dir: &Path, generation: u64) -> Result<(), StateError> {
    write_durably(hb_dir, HB_GENERATION_FILE, &format!("{generation:>15}\n"))
}

/// The node's heartbeat uuid: heartbeat's `hb_uuid` when there is one (a node replaced by
/// tandem keeps its identity), else tandem's copy in `statedir`, else a new random one.
/// Whichever it is, it is written to `statedir` and, when heartbeat's directory exists and
/// has none, there too.
pub fn hb_uuid(statedir: &Path, hb_dir: &Path) -> Result<[u8; 16], StateError> {
    let read = |dir: &Path| -> Result<Option<[u8; 16]>, StateError> {
        let path = dir.join(HB_UUID_FILE);
        match fs::read(&path) {
            Ok(b) => Ok(<[u8; 16]>::try_from(b.as_slice()).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    };
    if !statedir.is_dir() {
        DirBuilder::new().recursive(true).mode(0o700).create(statedir).map_err(io_err("mkdir", statedir))?;
    }
    let from_hb = if hb_dir.is_dir() { read(hb_dir)? } else { None };
    let ours = read(statedir)?;
    let uuid = match (from_hb, ours) {
        (Some(u), _) | (None, Some(u)) => u,
        (None, None) => {
            let mut u = [0u8; 16];
            crate::sys::random::getrandom(&mut u).map_err(|errno| StateError::Io {
                op: "getrandom",
                path: statedir.join(HB_UUID_FILE),
                errno,
            })?;
            // A version 4 uuid, as heartbeat's uuid_generate makes.
            u[6] = (u[6] & 0x0f) | 0x40;
            u[8] = (u[8] & 0x3f) | 0x80;
            u
        }
    };
    if ours != Some(uuid) {
        write_bytes_durably(statedir, HB_UUID_FILE, &uuid)?;
    }
    if hb_dir.is_dir() && from_hb.is_none() {
        write_bytes_durably(hb_dir, HB_UUID_FILE, &uuid)?;
    }
    Ok(uuid)
}

fn write_bytes_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn heartbeat_generation_and_uuid() {
        let t = TempDir::new("state");
        let (ours, hb) = (t.join("tandem"), t.join("heartbeat"));
        fs::create_dir_all(&hb).unwrap();
        assert_eq!(read_hb_generation(&hb).unwrap(), None);
        // heartbeat's own format.
        fs::write(hb.join(HB_GENERATION_FILE), "     1764441234\n").unwrap();
        assert_eq!(read_hb_generation(&hb).unwrap(), Some(1764441234));
        write_hb_generation(&hb, 1764441240).unwrap();
        assert_eq!(fs::read_to_string(hb.join(HB_GENERATION_FILE)).unwrap(), "     1764441240\n");
        assert_eq!(fs::read(hb.join(HB_GENERATION_FILE)).unwrap().len(), 16);
        fs::write(hb.join(HB_GENERATION_FILE), "junk").unwrap();
        assert_eq!(read_hb_generation(&hb).unwrap(), None);

        // heartbeat's uuid is kept, and copied to tandem's state directory.
        fs::write(hb.join(HB_UUID_FILE), b"0123456789abcdef").unwrap();
        assert_eq!(&hb_uuid(&ours, &hb).unwrap(), b"0123456789abcdef");
        assert_eq!(fs::read(ours.join(HB_UUID_FILE)).unwrap(), b"0123456789abcdef");
        // Without heartbeat's, tandem's copy; with neither, a new one, stored in both places.
        fs::remove_file(hb.join(HB_UUID_FILE)).unwrap();
        assert_eq!(&hb_uuid(&ours, &hb).unwrap(), b"0123456789abcdef");
        assert_eq!(fs::read(hb.join(HB_UUID_FILE)).unwrap(), b"0123456789abcdef");
        let (ours2, nohb) = (t.join("t2"), t.join("none"));
        let u = hb_uuid(&ours2, &nohb).unwrap();
        assert_eq!(u[6] >> 4, 4);
        assert_eq!(hb_uuid(&ours2, &nohb).unwrap(), u);
        assert!(!nohb.exists());
        store_generation(&ours2, 42).unwrap();
        assert_eq!(read_generation(&ours2).unwrap(), 42);
    }

    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_dir_and_counts_up() {
        let t = TempDir::new("state");
        let dir = t.join("sub");
        assert_eq!(read_generation(&dir).unwrap(), 0);
        // A fresh (or lost) state directory starts at the wall clock, not at 1.
        let now = u64::try_from(crate::sys::rt::realtime().0).unwrap();
        let g1 = bump_generation(&dir).unwrap();
        assert!(g1 >= now && g1 <= now + 5, "{g1} vs {now}");
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Within one second, restarts still count up strictly.
        let g2 = bump_generation(&dir).unwrap();
        let g3 = bump_generation(&dir).unwrap();
        assert!(g1 < g2 && g2 < g3);
        assert_eq!(fs::read_to_string(dir.join(GENERATION_FILE)).unwrap(), format!("{g3}\n"));
        assert!(!dir.join("generation.tmp").exists());
        assert_eq!(read_generation(&dir).unwrap(), g3);
    }

    #[test]
    fn accepts_hand_written_number() {
        let t = TempDir::new("state");
        // A number above the wall clock counts up by one.
        fs::write(t.join(GENERATION_FILE), "99999999999").unwrap();
        assert_eq!(bump_generation(t.path()).unwrap(), 100000000000);
    }

    #[test]
    fn corrupt_is_an_error_and_left_alone() {
        for bad in ["", "\n", "abc\n", "-1\n", "12 \n", "1\n\n", "99999999999999999999999\n"] {
            let t = TempDir::new("state");
            fs::write(t.join(GENERATION_FILE), bad).unwrap();
            match bump_generation(t.path()) {
                Err(StateError::Corrupt { .. }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
            assert_eq!(fs::read_to_string(t.join(GENERATION_FILE)).unwrap(), bad);
        }
        let t = TempDir::new("state");
        fs::write(t.join(GENERATION_FILE), vec![b'1'; 100]).unwrap();
        assert!(matches!(bump_generation(t.path()), Err(StateError::Corrupt { .. })));
        fs::write(t.join(GENERATION_FILE), format!("{}\n", u64::MAX)).unwrap();
        assert!(matches!(bump_generation(t.path()), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn unwritable_dir_is_io_error() {
        let t = TempDir::new("state");
        let file = t.join("file");
        fs::write(&file, "a file, not a dir").unwrap();
        let e = bump_generation(&file).unwrap_err();
        assert!(matches!(e, StateError::Io { op: "mkdir", errno: Errno::EEXIST, .. }), "{e:?}");
    }
}
