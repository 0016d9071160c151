//! A daemon killed with SIGKILL leaves no resource child behind to bring a resource up
//! behind its successor's back. Two mechanisms, each tested for what it covers:
//! - PR_SET_PDEATHSIG kills the direct child (the script) the moment the daemon dies, with
//!   no restart needed; it is not inherited, so what the script started survives it;
//! - the record of the child's process group in the state directory lets the restarted
//!   daemon kill those survivors before anything else runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"))
        .unwrap_or(false)
}

fn pgid(pid: i32) -> i32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s.rsplit(')').next().unwrap().split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn read_pid(p: &Path) -> i32 {
    let mut v = 0;
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(10), || {
            v = std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            v > 0
        }),
        "{} never written",
        p.display()
    );
    v
}

struct One {
    _ns: Netns,
    dir: TempDir,
    node: Node,
}

/// One node (its peer never answers) whose group `web` runs `start_body` as its start.
fn one_node(tag: &str, start_body: &str) -> One {
    let ns = Netns::new(format!("to{}", unique()));
    run(&["ip", "-n", ns.name(), "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    run(&["ip", "-n", ns.name(), "addr", "add", "192.0.2.1/24", "dev", "lan0"]);
    ns.link("lan0", true);
    ns.link("lan1", true);
    let dir = TempDir::new(tag);
    let d = dir.path();
    let s = script(d, "slow", &format!("case \"$2\" in start) {start_body} ;; stop) exit 0 ;; status) exit 3 ;; esac"));
    run(&[tandem(), "keygen", d.join("authkey").to_str().unwrap()]);
    let conf = d.join("tandem.conf");
    std::fs::write(
        &conf,
        format!(
            "cluster orph\nnode alpha beta\nauthkey {}\nkeepalive 100ms\ndeadtime 500ms\ninitdead 1s\nrealtime off\n\
             ucast lan0 192.0.2.2\nlogfacility none\nlogfile -\ngroup web alpha script::{}::{}\n",
            d.join("authkey").display(),
            s.display(),
            d.display()
        ),
    )
    .unwrap();
    let nd = d.join("alpha");
    std::fs::create_dir_all(&nd).unwrap();
    let node = Node {
        name: "alpha".into(),
        ns: ns.name().into(),
        config: conf,
        sock: nd.join("tandem.sock"),
        log: nd.join("log"),
        dir: nd,
        bin: tandem().into(),
        child: None,
    };
    One { _ns: ns, dir, node }
}

#[test]
fn pdeathsig_kills_the_running_script_when_the_daemon_dies() {
    if !require(&["ip"]) {
        return;
    }
    // The script becomes the long sleep itself: the direct child of the daemon.
    let mut o = one_node("pdeath", "echo $$ > \"$1/leader\"; exec sleep 300");
    o.node.start();
    let leader = read_pid(&o.dir.path().join("leader"));
    assert!(alive(leader));
    assert_eq!(pgid(leader), leader, "the child leads its own process group");
    o.node.kill9();
    // No restart: the kernel kills it.
    assert!(
        wait_for(Duration::from_secs(2), Duration::from_millis(10), || !alive(leader)),
        "the start script survived its daemon's SIGKILL"
    );
}

#[test]
fn a_restarted_daemon_kills_what_the_old_children_left_first() {
    if !require(&["ip"]) {
        return;
    }
    // The script starts a grandchild in its process group and waits for it.
    let mut o = one_node("records", "echo $$ > \"$1/leader\"; sleep 300 & echo $! > \"$1/grandchild\"; wait");
    o.node.start();
    let d = o.dir.path().to_path_buf();
    let leader = read_pid(&d.join("leader"));
    let grandchild = read_pid(&d.join("grandchild"));
    assert_eq!(pgid(grandchild), leader);
    let record = o.node.dir.join("state/children").join(leader.to_string());
    assert!(record.exists(), "no record of the running child");
    o.node.kill9();
    assert!(wait_for(Duration::from_secs(2), Duration::from_millis(10), || !alive(leader)));
    // What PDEATHSIG does not cover: the grandchild lives on, in the old group.
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(grandchild), "the grandchild died without the record's help");
    std::fs::remove_file(d.join("leader")).unwrap();
    std::fs::remove_file(d.join("grandchild")).unwrap();

    // The restart kills it before anything else: by the time the control socket is up.
    let _ = std::fs::remove_file(&o.node.sock);
    o.node.start();
    assert!(!alive(grandchild), "the old start's grandchild survived the restart");
    let log = o.node.log_text();
    assert!(log.contains(&format!("killed process group {leader} left by a previous tandem")), "{log}");
    // The new start is recorded under its own group, the old record is gone.
    let new_leader = read_pid(&d.join("leader"));
    assert_ne!(new_leader, leader);
    assert!(!record.exists());
    assert!(o.node.dir.join("state/children").join(new_leader.to_string()).exists());
}
