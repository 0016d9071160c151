//! The failover timeline of `make demo` (demo/timeline.sh) on a fixed daemon log and probe
//! log: exact numbers, with `awk` being mawk (Debian's default) and then gawk on the PATH.
//! Epoch microseconds have 16 digits; the timeline must not lose any of them to a number
//! format (mawk prints doubles with 6 significant digits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;

use std::path::Path;
use std::process::Command;

use common::{needs, prereq, repo, TempDir};

/// 2026-11-28T23:59:59.950000Z: the fault, 50 ms before midnight, so that the events after it
/// fall on the next day.
const FAULT_US: &str = "1795910399950000";

const DAEMON_LOG: &str = "\
2026-11-28T23:59:58.100000Z tandem[41]: info: group web: ip::192.0.2.50/24/lan0 started
2026-11-28T23:59:59.949999Z tandem[41]: warn: peer alpha: late
2026-11-28T23:59:59.950000Z tandem[41]: warn: peer alpha: link ucast hb0 198.51.100.1 down
2026-11-29T00:00:00.462311Z tandem[41]: info: peer alpha: up -> dead
2026-11-29T00:00:00.462455Z tandem[41]: info: group web: ip::192.0.2.50/24/lan0 started
2026-11-29T00:00:00.462501Z tandem[41]: info: group web: announced 192.0.2.50 on lan0
2026-11-29T00:00:00.475049Z tandem[41]: info: group web: script::/srv/svc::8080 started
2026-11-29T00:00:12.295649Z tandem[41]: info: peer alpha: init -> up
";

const PROBE_LOG: &str = "\
1795910399940000 ok dA4242
1795910399960000 ok dA4242
1795910400010000 fail connect_timed_out
1795910400520001 ok dB42420
1795910400531650 ok dB4242
1795910400541650 ok dB4242
# longest_gap_ms 571.6 from 1795910399960000 to 1795910400531650
# ok 812 fail 57
";

fn row(label: &str, ms: &str) -> String {
    format!("  {label:<34} {ms:>8} ms\n")
}

fn expected() -> String {
    [
        row("fault (alpha killed)", "0.0"),
        row("peer declared dead on beta", "512.3"),    // 512.311 ms
        row("floating IP added on beta", "512.5"),     // 512.455 ms, rounded up
        row("gratuitous ARP sent", "512.5"),           // 512.501 ms, rounded down
        row("service started on beta", "525.0"),       // 525.049 ms
        row("first client answer from beta", "581.7"), // 581.650 ms; dB42420 is another server
        row("peer back", "12345.6"),                   // 12345.649 ms
        format!("  {:<34} {:>8}\n", "never seen", "?"),
        "\n  client-observed outage: 571.6 ms (longest gap between answers, probe every 10 ms)\n".to_string(),
        "  client probes: 812 ok, 57 failed\n".to_string(),
    ]
    .concat()
}

/// Runs demo/timeline.sh with `awk` on the PATH being `awk_impl`.
fn timeline(dir: &Path, awk_impl: &str) -> String {
    let bin = dir.join(format!("bin-{awk_impl}"));
    std::fs::create_dir_all(&bin).unwrap();
    let real = Command::new("sh").arg("-c").arg(format!("command -v {awk_impl}")).output().unwrap();
    let real = String::from_utf8(real.stdout).unwrap();
    std::os::unix::fs::symlink(real.trim(), bin.join("awk")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let o = Command::new("bash")
        .arg(repo().join("demo/timeline.sh"))
        .arg(FAULT_US)
        .arg(dir.join("beta.log"))
        .arg(dir.join("probe.log"))
        .args(["fault (alpha killed)", "@fault"])
        .args(["peer declared dead on beta", "-> dead"])
        .args(["floating IP added on beta", "ip::192.0.2.50/24/lan0 started"])
        .args(["gratuitous ARP sent", "announced 192.0.2.50"])
        .args(["service started on beta", "script::/srv/svc::8080 started"])
        .args(["first client answer from beta", "@answer:dB4242"])
        .args(["peer back", "init -> up"])
        .args(["never seen", "no such line"])
        .env("PATH", path)
        .env("TZ", "Pacific/Chatham") // the log is UTC whatever the local zone
        .output()
        .unwrap();
    assert!(o.status.success(), "timeline.sh with {awk_impl}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn timeline_has_exact_microseconds_under_mawk_and_gawk() {
    if !needs().tools(&["bash", "date", "grep", "mawk", "gawk"]).ok() {
        return;
    }
    let v = Command::new("mawk").args(["-W", "version"]).output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("mawk"), "mawk -W version: {v:?}");
    let dir = TempDir::new("timeline");
    std::fs::write(dir.join("beta.log"), DAEMON_LOG).unwrap();
    std::fs::write(dir.join("probe.log"), PROBE_LOG).unwrap();
    for awk in ["mawk", "gawk"] {
        assert_eq!(timeline(dir.path(), awk), expected(), "with awk = {awk}");
    }
}

#[test]
fn bad_fault_time_is_a_usage_error() {
    if !prereq::needs().tools(&["bash"]).ok() {
        return;
    }
    let o = Command::new("bash").arg(repo().join("demo/timeline.sh")).args(["1.79591e+15", "x", "y"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}
