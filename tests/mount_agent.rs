//! The mount agent against real loop devices: an ext4 file system made with mkfs.ext4 on a
//! file, attached with losetup. Needs root, /dev/loop-control, losetup (mount) and
//! mkfs.ext4 (e2fsprogs); without them the tests are skipped (a failure when CI=true).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::loopdev::LoopDev;
use common::{needs, TempDir};
use tandem::agent::mount::{holders, MountAgent, MountEntry};
use tandem::agent::{Agent, Op, Outcome};

fn prerequisites() -> bool {
    needs().root().files(&["/dev/loop-control"]).tools(&["losetup", "mkfs.ext4"]).ok()
}

/// A file with an ext4 file system on a loop device, and mount points; all removed on drop.
struct Fixture {
    tmp: TempDir,
    dev: Option<LoopDev>,
    children: Vec<Child>,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = TempDir::new("mount");
        let img = tmp.join("fs.img");
        fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
        let st = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img).status().unwrap();
        assert!(st.success(), "mkfs.ext4 failed");
        let mut f = Fixture { tmp, dev: None, children: Vec::new() };
        f.dev = Some(LoopDev::attach(&img));
        fs::create_dir(f.dir("a")).unwrap();
        fs::create_dir(f.dir("b")).unwrap();
        f
    }
    fn device(&self) -> String {
        self.dev.as_ref().unwrap().path().display().to_string()
    }
    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }
    fn agent(&self, dir: &str, rest: &[&str]) -> MountAgent {
        let mut args = vec![self.device(), self.dir(dir).display().to_string()];
        args.extend(rest.iter().map(|s| s.to_string()));
        mount_agent(&format!("mount::{}", args.join("::")))
            .with_grace(Duration::from_millis(500), Duration::from_secs(2))
    }
}

/// The agent for a `mount::` word, through the config's parser (as the daemon builds it).
fn mount_agent(word: &str) -> MountAgent {
    let r = tandem::config::parse_resource(word).unwrap();
    let tandem::config::ResourceSpec::Mount(spec) = &r.spec else { panic!("{word}: not a mount") };
    MountAgent::new(spec, &r.text)
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Test cleanup only (the agent never does this): make sure nothing stays mounted.
        for d in ["a", "b"] {
            for _ in 0..4 {
                if nix::mount::umount2(&self.dir(d), nix::mount::MntFlags::MNT_DETACH).is_err() {
                    break;
                }
            }
        }
        drop(self.dev.take());
        // `tmp` goes last, with the image file and the mount points.
    }
}

/// The mountinfo entry on `dir`, if any.
fn mounted_on(dir: &Path) -> Option<MountEntry> {
    let dir = fs::canonicalize(dir).ok()?;
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(MountEntry::parse)
        .find(|m| m.mount_point == dir)
}

/// Starts `sh -c SCRIPT` with cwd inside `dir` and an fd open on `dir/held`, and waits until
/// it holds the file system.
fn spawn_holder(fx: &mut Fixture, dir: &str, ignore_term: bool) -> u32 {
    let d = fx.dir(dir);
    let trap = if ignore_term { "trap '' TERM; " } else { "" };
    let script = format!("{trap}cd \"$1\" || exit 9; exec 3>\"$1/held\"; echo ok > \"$1/ready\"; exec sleep 1000");
    let child = Command::new("sh").arg("-c").arg(script).arg("sh").arg(&d).spawn().unwrap();
    let pid = child.id();
    fx.children.push(child);
    let dev = fs::metadata(&d).map(|m| std::os::unix::fs::MetadataExt::dev(&m)).unwrap();
    let t0 = Instant::now();
    while !(d.join("ready").exists() && holders(dev, &[]).contains(&(pid as i32))) {
        assert!(t0.elapsed() < Duration::from_secs(10), "holder did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    pid
}

#[test]
fn start_status_stop() {
    if !prerequisites() {
        return;
    }
    let fx = Fixture::new();
    let mut a = fx.agent("a", &["ext4", "noatime,nodev,commit=5"]);
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
    assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped, "stop when not mounted is a success");
    assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running);
    let m = mounted_on(&fx.dir("a")).expect("mounted");
    assert_eq!(m.fstype, "ext4");
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Running);
    assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running, "start is idempotent");
    let n = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*fx.tmp.path().to_string_lossy()))
        .count();
    assert_eq!(n, 1, "a second start must not mount twice");
    let opts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = opts.lines().find(|l| l.contains(&*fx.dir("a").to_string_lossy())).unwrap();
    assert!(line.contains("noatime") && line.contains("nodev"), "{line}");
    fs::File::create(fx.dir("a").join("data")).unwrap().write_all(b"hello").unwrap();
    assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped);
    assert!(mounted_on(&fx.dir("a")).is_none());
    assert!(!fx.dir("a").join("data").exists(), "the file lives on the unmounted fs");
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
    // Mount again, with the type probed, read-only: the data is there.
    let mut p = fx.agent("a", &["auto", "ro"]);
    assert_eq!(p.run(Op::Start).unwrap(), Outcome::Running);
    let m = mounted_on(&fx.dir("a")).unwrap();
    assert_eq!(m.fstype, "ext4", "probe found the type");
    assert_eq!(fs::read(fx.dir("a").join("data")).unwrap(), b"hello");
    assert!(fs::File::create(fx.dir("a").join("x")).is_err(), "mounted read-only");
    assert_eq!(p.run(Op::Stop).unwrap(), Outcome::Stopped);
}

#[test]
fn stop_kills_processes_holding_the_filesystem() {
    if !prerequisites() {
        return;
    }
    let mut fx = Fixture::new();
    let mut a = fx.agent("a", &["ext4"]);
    assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running);
    spawn_holder(&mut fx, "a", false);
    spawn_holder(&mut fx, "a", true);
    let t0 = Instant::now();
    assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped);
    eprintln!("stop with two holders took {:?}", t0.elapsed());
    assert!(mounted_on(&fx.dir("a")).is_none());
    let polite = fx.children[0].wait().unwrap();
    assert_eq!(polite.signal(), Some(libc::SIGTERM), "{polite:?}");
    let stubborn = fx.children[1].wait().unwrap();
    assert_eq!(stubborn.signal(), Some(libc::SIGKILL), "{stubborn:?}");
}

#[test]
fn busy_filesystem_is_a_failed_stop_not_a_lazy_unmount() {
    if !prerequisites() {
        return;
    }
    let fx = Fixture::new();
    let mut a = fx.agent("a", &["ext4"]);
    assert_eq!(a.run(Op::Start).unwrap(), Outcome::Running);
    // This process is never signalled by the agent, so the fs stays busy.
    let held = fs::File::create(fx.dir("a").join("mine")).unwrap();
    let err = a.run(Op::Stop).unwrap_err();
    eprintln!("busy stop: {err}");
    assert!(err.to_string().contains("umount"), "{err}");
    assert!(mounted_on(&fx.dir("a")).is_some(), "still mounted, not detached");
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Running);
    drop(held);
    assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped);
}

#[test]
fn refuses_a_device_mounted_elsewhere() {
    if !prerequisites() {
        return;
    }
    let fx = Fixture::new();
    let mut b = fx.agent("b", &["ext4"]);
    assert_eq!(b.run(Op::Start).unwrap(), Outcome::Running);
    let mut a = fx.agent("a", &["ext4"]);
    assert_eq!(a.run(Op::Status).unwrap(), Outcome::Stopped);
    let err = a.run(Op::Start).unwrap_err();
    assert!(err.to_string().contains("already mounted on"), "{err}");
    assert!(mounted_on(&fx.dir("a")).is_none());
    assert_eq!(a.run(Op::Stop).unwrap(), Outcome::Stopped, "stop does not touch the other mount");
    assert!(mounted_on(&fx.dir("b")).is_some());
    assert_eq!(b.run(Op::Stop).unwrap(), Outcome::Stopped);
}

#[test]
fn bad_input_gives_clear_errors() {
    if !prerequisites() {
        return;
    }
    let fx = Fixture::new();
    let mut t = fx.agent("a", &["nosuchfs"]);
    let err = t.run(Op::Start).unwrap_err();
    assert!(err.to_string().contains("not known"), "{err}");
    assert!(mounted_on(&fx.dir("a")).is_none());

    let missing = format!("/dev/tandem-missing-{}", std::process::id());
    let mut m = mount_agent(&format!("mount::{missing}::{}::ext4", fx.dir("a").display()));
    let err = m.run(Op::Start).unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
    assert_eq!(m.run(Op::Status).unwrap(), Outcome::Stopped);

    let mut d = fx.agent("nodir", &["ext4"]);
    let err = d.run(Op::Start).unwrap_err();
    assert!(err.to_string().contains("mount point"), "{err}");

    // A regular file is not a block device.
    let word = format!("mount::{}::{}", fx.tmp.join("fs.img").display(), fx.dir("a").display());
    let err = mount_agent(&word).run(Op::Start).unwrap_err();
    assert!(err.to_string().contains("not a block device"), "{err}");
}
