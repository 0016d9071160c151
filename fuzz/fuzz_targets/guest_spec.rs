//! Fuzz the guest parsers: the `guest::` resource words of the config, and the runtime
//! files tandem reads back (`state`, `/proc/self/mountinfo`, `/proc/PID/stat`).
//! Properties: no panic; an accepted spec is valid (absolute root, init path absolute,
//! limits in range) and its options survive a round trip through their text form; a
//! parsed state file survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::config::guest::{GuestSpec, MAX_CPU_PERCENT, MIN_MEMORY};
use tandem::guest::cgroup::parse_mountinfo;
use tandem::guest::state::{parse_stat, State};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let words: Vec<String> = text.split("::").map(str::to_string).collect();
    if let Ok(g) = GuestSpec::parse(&words) {
        assert!(g.root.is_absolute() && g.root != std::path::Path::new("/"));
        assert!(g.init.first().is_some_and(|i| i.starts_with('/')));
        assert!(g.memory.map_or(true, |m| m >= MIN_MEMORY));
        assert!(g.cpu_percent.map_or(true, |c| (1..=MAX_CPU_PERCENT).contains(&c)));
        assert!(g.pids.map_or(true, |p| p >= 2));
        let mut again = vec![g.name.clone(), g.root.display().to_string()];
        let opts = g.options_text();
        if !opts.is_empty() {
            again.extend(opts.split("::").map(str::to_string));
        }
        let h = GuestSpec::parse(&again).expect("options_text parses");
        assert_eq!(
            (h.memory, h.cpu_percent, h.pids, &h.net, h.caps, h.seccomp),
            (g.memory, g.cpu_percent, g.pids, &g.net, g.caps, g.seccomp)
        );
    }
    if let Ok(st) = State::parse(text) {
        assert_eq!(State::parse(&st.to_text()).as_ref(), Ok(&st));
    }
    let _ = parse_mountinfo(text);
    let _ = parse_stat(text);
});
