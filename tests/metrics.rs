//! Prometheus metrics on a real daemon pair in the namespace rig: `status --prometheus`
//! passes `promtool check metrics`; the HTTP responder (`metrics_listen`, and
//! `status --prometheus --listen`) answers GET /metrics and nothing else; 100 concurrent
//! clients, one that never sends and one that never reads a large answer do not delay a
//! heartbeat (the peer never finds the node late; the heartbeat delay histogram says by how
//! much the loop was late).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step ends the test

mod common;
use common::http::{get, non_reading_client, request, silent_client};
use common::watch::peer_trouble;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMING: &str = "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 2s";
const ALPHA: &str = "192.0.2.1:9694";
const BETA: &str = "192.0.2.2:9694";

/// `promtool check metrics` on `text`: (passed, what it said).
fn promtool(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    let said = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    (o.status.success() && said.trim().is_empty(), said)
}

fn prometheus(n: &Node) -> String {
    let (code, out) = n.ctl(&["status", "--prometheus"]);
    assert_eq!(code, 0, "{out}");
    out
}

/// The value of the sample written exactly `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn both_up(a: &Node, b: &Node) {
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || a.peer_state() == "up"
            && b.peer_state() == "up"),
        "peers never came up"
    );
}

#[test]
fn prometheus_output_passes_promtool_and_is_served_over_http() {
    if !require(&["ip", "promtool", "socat", "ss"]) {
        return;
    }
    let rig = Rig::new();
    // One file for both nodes: alpha serves on its address; beta cannot bind it (an error
    // in its log, and it runs on without the responder).
    let cfg = rig.config(TIMING, &format!("{}\nmetrics_listen {ALPHA}", rig.web_group("alpha")));
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    both_up(&a, &b);
    assert!(wait_group(&b, "web", "alpha", "started", Duration::from_secs(10)), "{:?}", b.status());

    // Some periodic heartbeats for the delay histogram, and from beta on both links.
    let rx = |link: &str| format!("tandem_link_received_packets_total{{link=\"ucast {link}\",medium=\"ucast\"}}");
    assert!(
        wait_for(Duration::from_secs(5), Duration::from_millis(100), || {
            let t = prometheus(&a);
            value(&t, "tandem_heartbeat_delay_seconds_count").unwrap_or(0.0) > 5.0
                && value(&t, &rx("hb0 198.51.100.2")).unwrap_or(0.0) > 5.0
                && value(&t, &rx("lan0 192.0.2.2")).unwrap_or(0.0) > 5.0
        }),
        "{}",
        prometheus(&a)
    );
    let text = prometheus(&a);
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    for (series, v) in [
        ("tandem_build_info{version=\"0.2.0\"}", 1.0),
        ("tandem_peer_state{peer=\"beta\",state=\"up\"}", 1.0),
        ("tandem_peer_state{peer=\"beta\",state=\"dead\"}", 0.0),
        ("tandem_group_state{group=\"web\",state=\"started\"}", 1.0),
        ("tandem_group_owner{group=\"web\",owner=\"alpha\"}", 1.0),
        ("tandem_group_owner{group=\"web\",owner=\"beta\"}", 0.0),
        ("tandem_link_up{link=\"ucast lan0 192.0.2.2\",medium=\"ucast\"}", 1.0),
        ("tandem_link_up{link=\"ucast hb0 198.51.100.2\",medium=\"ucast\"}", 1.0),
        ("tandem_peer_config_match{peer=\"beta\"}", 1.0),
    ] {
        assert_eq!(value(&text, series), Some(v), "{series} in\n{text}");
    }
    let active = format!("tandem_node_state{{cluster=\"rig{}\",node=\"alpha\",state=\"active\"}}", rig.id);
    assert_eq!(value(&text, &active), Some(1.0), "{text}");
    let started = "tandem_resource_operations_total{group=\"web\",resource=\"ip::192.0.2.50/24/lan0\",op=\"start\",\
                   result=\"ok\"}";
    assert_eq!(value(&text, started), Some(1.0), "{text}");
    let start = value(&text, "tandem_start_time_seconds").unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(start <= now && start > now - 120.0, "start {start}, now {now}");

    // beta could not bind alpha's address: said so, and runs on.
    assert!(b.log_text().contains(&format!("metrics_listen {ALPHA}:")), "{}", b.log_text());
    assert!(promtool(&prometheus(&b)).0);
    // The interface's spelling: ask beta's daemon to listen on its own address.
    let (code, out) = b.ctl(&["status", "--prometheus", "--listen", BETA]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("serving GET /metrics on http://{BETA}/metrics")), "{out}");
    let (code, out) = b.ctl(&["status", "--prometheus", "--listen", BETA]);
    assert_eq!((code, out.contains("already serving")), (0, true), "{out}");
    let (code, out) = b.ctl(&["status", "--prometheus", "--listen", "192.0.2.77:9694"]);
    assert_eq!(code, 1, "an address beta does not have: {out}");
    let (code, out) = b.ctl(&["status", "--prometheus", "--listen", "nonsense"]);
    assert_eq!(code, 2, "{out}");
    let (code, _) = b.ctl(&["status", "--listen", BETA]);
    assert_eq!(code, 2, "--listen without --prometheus");
    let (code, _) = b.ctl(&["status", "--json", "--prometheus"]);
    assert_eq!(code, 2);

    // Over HTTP, from the client's namespace.
    let t = Duration::from_secs(5);
    let answers = in_netns(rig.c.name(), || {
        (
            get(ALPHA, "/metrics", t),
            get(BETA, "/metrics?name[]=x", t),
            get(ALPHA, "/", t),
            get(ALPHA, "/metrics/x", t),
            request(ALPHA, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", t),
            request(ALPHA, b"HEAD /metrics HTTP/1.0\r\n\r\n", t),
            request(ALPHA, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n\n", t),
            request(ALPHA, &[b'A'; 5000], t),
        )
    });
    let ok = answers.0.unwrap();
    assert_eq!(ok.code, 200);
    assert_eq!(ok.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let (pass, said) = promtool(&ok.body);
    assert!(pass, "{said}");
    assert_eq!(value(&ok.body, "tandem_group_owner{group=\"web\",owner=\"alpha\"}"), Some(1.0));
    let from_beta = answers.1.unwrap();
    assert_eq!(from_beta.code, 200);
    assert_eq!(value(&from_beta.body, "tandem_group_owner{group=\"web\",owner=\"alpha\"}"), Some(1.0));
    assert_eq!(answers.2.unwrap().code, 404);
    assert_eq!(answers.3.unwrap().code, 404);
    let post = answers.4.unwrap();
    assert_eq!((post.code, post.header("allow")), (405, Some("GET")));
    assert_eq!(answers.5.unwrap().code, 405);
    assert_eq!(answers.6.unwrap().code, 400);
    assert_eq!(answers.7.unwrap().code, 431);
    let text = prometheus(&a);
    for (code, n) in [(200, 1.0), (404, 2.0), (405, 2.0), (400, 1.0), (431, 1.0)] {
        let series = format!("tandem_metrics_http_responses_total{{code=\"{code}\"}}");
        assert_eq!(value(&text, &series), Some(n), "{series}\n{text}");
    }
    assert!(peer_trouble(&a).is_empty() && peer_trouble(&b).is_empty());
}

/// The histogram's cumulative bucket counts, by upper bound.
fn buckets(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("tandem_heartbeat_delay_seconds_bucket{le=\"")?;
            let (le, v) = rest.split_once("\"} ")?;
            Some((le.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Prints the heartbeats sent between two scrapes: how many, mean delay, and the count per
/// bucket bound (cumulative); returns the count and the buckets.
fn report(what: &str, before: &str, after: &str, window: Duration) -> (f64, Vec<(String, f64)>) {
    let delta = |name: &str| value(after, name).unwrap() - value(before, name).unwrap();
    let count = delta("tandem_heartbeat_delay_seconds_count");
    let sum = delta("tandem_heartbeat_delay_seconds_sum");
    let per_bucket: Vec<(String, f64)> =
        buckets(after).iter().zip(buckets(before)).map(|((le, n1), (_, n0))| (le.clone(), n1 - n0)).collect();
    let max = per_bucket.iter().find(|(_, n)| *n == count).map(|(le, _)| le.clone()).unwrap_or_default();
    eprintln!(
        "{what}: {count} heartbeats in {window:.1?}, mean delay {:.0} µs, all within {max} s; cumulative: {per_bucket:?}",
        sum / count * 1e6
    );
    (count, per_bucket)
}

#[test]
fn hundred_clients_and_stuck_ones_do_not_delay_heartbeats() {
    if !require(&["ip", "promtool"]) {
        return;
    }
    const GROUPS: usize = 24;
    let rig = Rig::new();
    // Groups enough for an answer of some 40 KiB: it cannot all sit in the socket buffers of
    // a client that does not read.
    let cfg = rig.config(TIMING, &format!("{}metrics_listen {ALPHA}", rig.flag_groups(GROUPS, "alpha")));
    // As installed: the loop at SCHED_FIFO (the rig's other tests run it without), so the
    // 100 client threads on the same CPUs cannot push it back.
    rig.realtime(&cfg);
    let mut a = rig.node("alpha", &cfg);
    let mut b = rig.node("beta", &cfg);
    a.start();
    b.start();
    both_up(&a, &b);
    for i in 0..GROUPS {
        assert!(wait_group(&b, &format!("g{i:02}"), "alpha", "started", Duration::from_secs(20)), "{:?}", b.status());
    }
    // A baseline: the loop at rest, as the peer and the histogram see it.
    let idle0 = prometheus(&a);
    std::thread::sleep(Duration::from_secs(2));
    let before = prometheus(&a);
    report("at rest", &idle0, &before, Duration::from_secs(2));
    assert!(before.len() > 25_000, "the answer is only {} bytes", before.len());
    let t0 = Instant::now();

    let t = Duration::from_secs(10);
    let (rounds, stuck) = in_netns(rig.c.name(), || {
        // Two slots held for the connection deadline (5 s): one client never sends, one
        // never reads its answer.
        let stuck = (silent_client(ALPHA), non_reading_client(ALPHA));
        let mut rounds = Vec::new();
        for _ in 0..4 {
            let start = Instant::now();
            let answers: Vec<Result<usize, String>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..100)
                    .map(|_| {
                        s.spawn(|| {
                            let a = get(ALPHA, "/metrics", t)?;
                            if a.code != 200 || !a.body.contains("tandem_heartbeat_delay_seconds_count") {
                                return Err(format!("{} {}", a.code, a.body.len()));
                            }
                            Ok(a.body.len())
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let failed: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
            assert!(failed.is_empty(), "{} of 100 failed: {:?}", failed.len(), &failed[..failed.len().min(5)]);
            rounds.push(start.elapsed());
        }
        (rounds, stuck)
    });
    eprintln!("4 rounds of 100 concurrent GET /metrics ({} bytes each): {rounds:?}", before.len());
    let during = prometheus(&a);
    assert_eq!(value(&during, "tandem_metrics_http_connections"), Some(2.0), "the two stuck clients");
    // Past their deadline, both are dropped.
    assert!(wait_for(Duration::from_secs(8), Duration::from_millis(100), || {
        value(&prometheus(&a), "tandem_metrics_http_timeouts_total") == Some(2.0)
    }));
    drop(stuck);
    let after = prometheus(&a);
    let window = t0.elapsed();
    // 400 clients, and the one that never read its answer (counted when it was begun).
    assert_eq!(value(&after, "tandem_metrics_http_responses_total{code=\"200\"}"), Some(401.0));
    assert_eq!(value(&after, "tandem_metrics_http_connections"), Some(0.0));

    // The peer's view: never late, let alone dead.
    let trouble = peer_trouble(&b);
    assert!(trouble.is_empty(), "beta saw alpha late or dead: {trouble:?}");
    assert_eq!(b.peer_state(), "up");
    // The loop's own view: the heartbeats sent in the window, by how late they were.
    let (count, per_bucket) = report("under load", &before, &after, window);
    assert!(count >= (window.as_millis() / 100) as f64 * 0.9, "{count} heartbeats in {window:?}");
    // None of them later than 25 ms, a quarter keepalive (warntime is 300 ms; measured:
    // almost all within 5 ms, mean under 1 ms, one in 51 once between 10 and 25 ms while
    // the 100 clients were served); 50 ms where the loop could not have SCHED_FIFO (normal
    // scheduling among the clients' threads). The figures themselves are the bench's.
    let bound = if a.log_text().contains("SCHED_FIFO:") { "0.05" } else { "0.025" };
    let within = per_bucket.iter().find(|(le, _)| le == bound).unwrap().1;
    assert_eq!(within, count, "heartbeats later than {bound} s: {per_bucket:?}");
    assert!(peer_trouble(&a).is_empty());
}

/// Every family the renderer knows, the optional ones too (serial links, monitors, fencing,
/// ping targets, the watchdog, hooks, the responder), passes promtool.
#[test]
fn every_family_passes_promtool() {
    if !needs().tools(&["promtool"]).ok() {
        return;
    }
    use tandem::daemon::jitter::Jitter;
    use tandem::daemon::metrics::*;
    use tandem::daemon::notify::HookStats;
    use tandem::link::LinkStats;
    use tandem::time::Instant;
    let mut j = Jitter::default();
    for i in 0..20u64 {
        j.sent(Instant::from_micros(i * 100_000 + i * 37), Instant::from_micros((i + 1) * 100_000));
    }
    let link = |name, medium, serial| LinkView {
        name,
        medium,
        up: true,
        last_seen: Some(0.05),
        stats: LinkStats { rx: 5, tx: 6, bad: 1, ..LinkStats::default() },
        serial_present: serial,
    };
    let res = |name, kind, monitor| ResourceView { name, kind, ops: [[1, 0], [1, 1], [9, 2]], monitor };
    let view = MetricsView {
        version: "0.2.0",
        cluster: "c",
        node: "alpha",
        node_state: "active",
        generation: 3,
        start_time: 1.7e9,
        peer: PeerView {
            name: "beta",
            state: "dead",
            last_seen: Some(12.5),
            protocol_level: Some(2),
            same_config: Some(false),
        },
        links: vec![link("ucast eth1 198.51.100.2", "ucast", None), link("serial /dev/ttyS1", "serial", Some(true))],
        groups: vec![GroupView {
            name: "web",
            preferred: "beta",
            owner: "alpha",
            state: "started",
            failed_here: false,
            standby: false,
            pinned: false,
            resources: vec![
                res("ip::192.0.2.50/24/eth0", "ip", None),
                res(
                    "script::/etc/a \"b\"",
                    "script",
                    Some(MonitorView { ok: false, failures: 3, last_check: Some(2.0) }),
                ),
            ],
        }],
        fence: Some(FenceView {
            node: "beta",
            method: "ipmi",
            state: "confirmed",
            attempts: 2,
            confirmed: 1,
            last: Some((true, 0.4)),
            device: Some((false, 1.0)),
        }),
        ping: Some(PingView {
            reach: "proving",
            up: 1,
            peer_up: Some(2),
            fewer_than_peer: false,
            targets: vec![
                ("192.0.2.254".into(), true, Some(0.2), Some(0.0003)),
                ("2001:db8::1".into(), false, None, None),
            ],
        }),
        watchdog: Some(WatchdogView { device: "/dev/watchdog".into(), timeout_s: 5, petting: true, healthy: true }),
        heartbeats_sent: 21,
        jitter: &j,
        hooks: vec![HookView {
            path: "/etc/tandem/hook",
            stats: HookStats { runs: 4, failures: 1, dropped: 2 },
            queued: 1,
        }],
        http: Some(HttpStats { answers: [1, 2, 3, 4, 5], timeouts: 6, open: 1 }),
        stuck_children: 0,
    };
    let text = view.render();
    let (ok, said) = promtool(&text);
    assert!(ok, "{said}\n{text}");
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    eprintln!("{families} families, {} bytes", text.len());
}

/// Under heartbeat's protocol (a pair from heartbeat's files, `--ha-d`), `status
/// --prometheus` is served from heartbeat's engine and passes promtool.
#[test]
fn heartbeat_protocol_metrics_pass_promtool() {
    if !common::hbmixed::prerequisites() || !needs().tools(&["promtool"]).ok() {
        return;
    }
    use common::hbmixed::{Mixed, Opts};
    let mut x = Mixed::new(&Opts { fixture: Some("udp-sha1"), iface: "veth0", ..Opts::default() });
    x.start_tandem(0);
    x.start_tandem(1);
    assert!(
        wait_for(Duration::from_secs(40), Duration::from_millis(100), || x.nodestatus(0, "hn2") == "active"),
        "{}",
        x.log(0)
    );
    let mut text = String::new();
    assert!(
        wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
            let (code, out) = x.tandem_cmd(0, &["status", "--prometheus"]);
            text = out;
            // heartbeat's group is named by its first resource.
            let owner = "tandem_group_owner{group=\"IPaddr::192.0.2.50/24/veth0\",owner=\"hn1\"}";
            code == 0 && value(&text, owner) == Some(1.0)
        }),
        "{text}"
    );
    let (ok, said) = promtool(&text);
    assert!(ok, "{said}\n{text}");
    assert_eq!(value(&text, "tandem_peer_state{peer=\"hn2\",state=\"up\"}"), Some(1.0), "{text}");
    assert!(text.contains("tandem_link_up{link=\"ucast veth0 "), "{text}");
}
