//! `cargo +nightly fuzz run hacompat`: heartbeat's ha.cf and haresources, as `tandem
//! check-config --ha-d` and `tandem daemon --ha-d` read them. Input: ha.cf, a NUL byte,
//! haresources (no NUL: no haresources file). Properties: no panic; an accepted configuration
//! has two nodes, a link, heartbeat's protocol with one key per group, groups whose preferred
//! node is one of the two, and every timer rule heartbeat enforces.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use tandem::config::hacompat;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (cf, hr) = match text.split_once('\0') {
        Some((c, h)) => (c, Some(h)),
        None => (text, None),
    };
    let scripts = |name: &str| (name.len() % 2 == 0).then(|| PathBuf::from(format!("/etc/ha.d/resource.d/{name}")));
    if let Ok(p) = hacompat::parse(Path::new("/etc/ha.d"), cf, hr, &scripts) {
        let c = &p.config;
        assert_eq!(c.nodes.len(), 2);
        assert!(!c.links.is_empty());
        assert_eq!(p.link_lines.len(), c.links.len());
        let hb = c.heartbeat().expect("heartbeat's protocol");
        assert_eq!(hb.group_keys.len(), c.groups.len());
        assert!(c.groups.iter().all(|g| usize::from(g.preferred) < 2 && !g.resources.is_empty()));
        assert!(c.deadtime > c.keepalive * 2);
        assert!(c.initdead >= c.deadtime);
        assert!(c.groups.len() <= hacompat::MAX_GROUPS);
    }
});
