//! What `check-config` accepts is what the daemon runs: for a corpus of resource words (every
//! documented form, heartbeat's aliases, and seeded random mutations of them), `check-config`
//! on a file naming the word accepts it exactly when the agent for it builds, and the address
//! an `ip` word without a prefix adds is the one the documentation promises (the subnet's
//! prefix). Runs in a network namespace of its own: 192.0.2.0/24 only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::path::Path;

use common::{require, unique, Netns, Rng, TempDir};
use tandem::config::{parse_resource, ResourceSpec, Timeouts};

/// Every form the documentation lists, and the errors it names.
const SEEDS: &[&str] = &[
    "ip::192.0.2.50/24/veth0",
    "ip::192.0.2.50/24",
    "ip::192.0.2.50",
    "192.0.2.51",
    "192.0.2.52/24/veth0",
    "IPaddr::192.0.2.53/24/veth0/192.0.2.255",
    "IPaddr2::192.0.2.54/24/veth0/web",
    "ip::192.0.2.55/24/veth0/veth0:x",
    "ip::192.0.2.56/24/nosuchif",
    "ip::198.51.100.7",
    "ip::2001:db8::5/64/veth0",
    "ip::2001:db8::6",
    "ip::127.0.0.9/8",
    "ip::192.0.2.57/24/veth0/a/b",
    "ip::192.0.2.58/33",
    "script::SCRIPT",
    "script::SCRIPT::arg1::arg2",
    "script::NOEXEC",
    "script::/nonexistent/script",
    "script::relative.sh",
    "drbd::r0",
    "drbddisk::r0",
    "drbd::r0::x",
    "mount::/dev/drbd0::/srv/data",
    "mount::/dev/drbd0::/srv/data::ext4::noatime,nodev",
    "Filesystem::/dev/drbd0::/srv/data::auto",
    "mount::UUID=1234::/data::xfs",
    "mount::/dev/x::relative",
    "mount::/dev/x::/d::ext/4",
    "lvm::vg_data",
    "LVM::vg0",
    "lvm::-bad",
    "guest::web1::/srv/guests/web1",
    "nosuchtype::x",
    "httpd",
];

/// A plausible typo of `w`: one character dropped, doubled, or replaced by a separator.
fn mutate(rng: &mut Rng, w: &str) -> String {
    let chars: Vec<char> = w.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let i = rng.below(chars.len() as u64) as usize;
    let mut out: Vec<char> = chars.clone();
    match rng.below(4) {
        0 => {
            out.remove(i);
        }
        1 => out.insert(i, chars[i]),
        2 => out[i] = [':', '/', '.', '0'][rng.below(4) as usize],
        _ => out.truncate(i),
    }
    out.into_iter().collect()
}

#[test]
fn check_config_accepts_exactly_what_builds() {
    if !require(&["ip"]) {
        return;
    }
    let id = unique();
    let ns = Netns::new(format!("tnd-agree-{id}"));
    let dev = format!("ag{id}");
    ns.ip(&["link", "add", "veth0", "type", "veth", "peer", "name", &dev]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "veth0"]);
    ns.ip(&["link", "set", "veth0", "up"]);
    let dir = TempDir::new("agree");
    let script = common::script(dir.path(), "svc", "exit 3");
    let noexec = dir.path().join("noexec");
    std::fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    let key = dir.path().join("key");
    tandem::config::keygen(&key).unwrap();

    let mut words: Vec<String> = SEEDS
        .iter()
        .map(|w| w.replace("SCRIPT", script.to_str().unwrap()).replace("NOEXEC", noexec.to_str().unwrap()))
        .collect();
    let mut rng = Rng::new(0x7a6e_5eed);
    for i in 0..400 {
        let base = words[i % SEEDS.len()].clone();
        words.push(mutate(&mut rng, &base));
    }
    words.retain(|w| !w.is_empty() && !w.contains(char::is_whitespace) && !w.starts_with('#'));

    let conf = dir.path().join("t.conf");
    let (mut accepted, mut refused) = (0, 0);
    for w in &words {
        let text =
            format!("cluster agree\nnode a b\nauthkey {}\nucast veth0 192.0.2.2\ngroup g a {w}\n", key.display());
        std::fs::write(&conf, text).unwrap();
        let (c, w2) = (conf.clone(), w.clone());
        let (rc, out, built) = ns.run(move || {
            let mut out = Vec::new();
            let rc = tandem::cli::check_config(&c, Some("a"), &mut out);
            let built = match parse_resource(&w2) {
                Ok(r) => tandem::agent::build(&r, &Timeouts::default()).map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            (rc, String::from_utf8_lossy(&out).into_owned(), built)
        });
        assert_eq!(
            rc == 0,
            built.is_ok(),
            "{w}: check-config says {rc} ({}), the agent says {built:?}",
            out.trim_end()
        );
        if rc == 0 {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("{} words: {accepted} accepted by both, {refused} refused by both", words.len());
    assert!(accepted >= 15 && refused >= 15, "the corpus must exercise both sides");
}

/// A left-out prefix is the prefix of the subnet that holds the address (tandem.conf(5)),
/// the same in check-config's view and in what the agent adds; the 4th field is a label or a
/// broadcast address.
#[test]
fn ip_without_prefix_takes_the_subnets() {
    if !require(&["ip"]) {
        return;
    }
    let id = unique();
    let ns = Netns::new(format!("tnd-agrp-{id}"));
    let dev = format!("ap{id}");
    ns.ip(&["link", "add", "veth0", "type", "veth", "peer", "name", &dev]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "veth0"]);
    ns.ip(&["link", "set", "veth0", "up"]);
    ns.ip(&["link", "set", &dev, "up"]);
    for (word, want) in [
        ("192.0.2.60", "192.0.2.60/24"),
        ("ip::192.0.2.61/28", "192.0.2.61/28"),
        ("IPaddr::192.0.2.62/24/veth0/192.0.2.127", "192.0.2.62/24 brd 192.0.2.127"),
        ("IPaddr2::192.0.2.63/24/veth0/svc", "192.0.2.63/24 brd 192.0.2.255 scope global secondary veth0:svc"),
    ] {
        let w = word.to_string();
        let r = parse_resource(word).unwrap();
        assert!(matches!(r.spec, ResourceSpec::Ip(_)));
        let started = ns.run(move || {
            let mut a = tandem::agent::build(&parse_resource(&w).unwrap(), &Timeouts::default()).unwrap();
            a.run(tandem::agent::Op::Start).map(|_| ()).map_err(|e| e.to_string())
        });
        started.unwrap();
        let shown = ns.ip(&["-4", "-o", "addr", "show", "dev", "veth0"]);
        assert!(shown.contains(want), "{word}: want '{want}' in {shown}");
    }
    let _ = Path::new("/");
}
