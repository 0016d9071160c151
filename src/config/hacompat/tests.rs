use super::*;

const BASE: &str = "logfile /var/log/ha-log\nkeepalive 1\ndeadtime 5\ninitdead 10\nucast eth0 192.0.2.2\n\
                    auto_failback on\nnode hn1\nnode hn2\ncrm off\n";

fn no_scripts(_: &str) -> Option<PathBuf> {
    None
}

fn scripts(name: &str) -> Option<PathBuf> {
    match name {
        "hbtest" | "Filesystem" | "drbddisk" | "apache" => Some(PathBuf::from(format!("/etc/ha.d/resource.d/{name}"))),
        "postfix" => Some(PathBuf::from("/etc/init.d/postfix")),
        _ => None,
    }
}

fn parse_ok(cf: &str, hr: &str) -> Parsed {
    match parse(Path::new("/etc/ha.d"), cf, Some(hr), &scripts) {
        Ok(p) => p,
        Err(e) => panic!("refused:\n{}\n{e:?}", cf),
    }
}

/// The errors as `file:line: message`.
fn errs(cf: &str, hr: &str) -> Vec<String> {
    match parse(Path::new("/etc/ha.d"), cf, Some(hr), &scripts) {
        Ok(_) => panic!("accepted:\n{cf}\n--\n{hr}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

/// The one error of `BASE` plus `line` (at line 10), as `10: message`.
fn refused(line: &str) -> String {
    let e = errs(&format!("{BASE}{line}\n"), "");
    assert_eq!(e.len(), 1, "{line}: {e:?}");
    let m = &e[0];
    assert!(m.starts_with("/etc/ha.d/ha.cf:10: "), "{line}: {m}");
    m.trim_start_matches("/etc/ha.d/ha.cf:10: ").to_string()
}

fn warnings(p: &Parsed) -> Vec<String> {
    p.warnings.iter().map(|w| format!("{}: {}", w.line, w.msg)).collect()
}

fn hb(c: &Config) -> &HbSettings {
    c.heartbeat().unwrap()
}

#[test]
fn fixtures_parse_as_heartbeat_reads_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hb/configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        for node in ["hn1", "hn2"] {
            let d = case.join(node);
            let cf = std::fs::read_to_string(d.join("ha.cf")).unwrap();
            let hr = std::fs::read_to_string(d.join("haresources")).unwrap();
            let p = match parse(&d, &cf, Some(&hr), &no_scripts) {
                Ok(p) => p,
                Err(e) => panic!("{}: {e:?}", d.display()),
            };
            let c = &p.config;
            assert_eq!(c.nodes, ["hn1", "hn2"]);
            assert_eq!(c.keepalive, Duration::from_secs(1));
            assert_eq!(c.deadtime, Duration::from_secs(5));
            assert_eq!(c.initdead, Duration::from_secs(10));
            assert_eq!(c.warntime, Duration::from_millis(2500));
            assert_eq!(c.links.len(), 1, "{}", d.display());
            assert_eq!(c.groups.len(), 1);
            assert_eq!(c.groups[0].name, "IPaddr::192.0.2.50/24/veth0");
            assert_eq!(c.groups[0].preferred, 0);
            assert_eq!(c.logfacility, None, "logfacility none");
            assert!(c.logfile.as_ref().unwrap().ends_with(format!("{node}/log/ha-log")), "{:?}", c.logfile);
            let h = hb(c);
            assert_eq!(h.group_keys, ["IPaddr::192.0.2.50/24/veth0"]);
            assert_eq!(h.authkeys, d.join("authkeys"));
            let name = case.file_name().unwrap().to_str().unwrap();
            let want = if name.ends_with("legacy") {
                HbFailback::Legacy
            } else if name.ends_with("failback-off") {
                HbFailback::Off
            } else {
                HbFailback::On
            };
            assert_eq!(h.failback, want, "{name}");
            assert_eq!(h.msgfmt_netstring, name.contains("netstring"), "{name}");
            if name.starts_with("serial") {
                assert!(matches!(&c.links[0], LinkConfig::Serial { baud: 19200, rtscts: true, .. }), "{:?}", c.links);
            }
            if name.starts_with("mcast") {
                assert!(matches!(&c.links[0], LinkConfig::Mcast { port: 694, ttl: 1, loop_: false, .. }));
            }
            n += 1;
        }
    }
    assert_eq!(n, 26);
}

#[test]
fn heartbeat_defaults() {
    let p = parse_ok("logfile /l\nucast eth0 192.0.2.2\nnode a b\n", "");
    let c = &p.config;
    assert_eq!(c.keepalive, Duration::from_secs(1));
    assert_eq!(c.deadtime, Duration::from_secs(30));
    assert_eq!(c.warntime, Duration::from_secs(15));
    // deadtime > 10 s: initdead = deadtime.
    assert_eq!(c.initdead, Duration::from_secs(30));
    assert_eq!(c.udpport, 694);
    assert_eq!(c.cluster, "linux-ha");
    assert!(!c.auto_failback);
    assert_eq!(hb(c).failback, HbFailback::Legacy, "heartbeat's default is legacy");
    assert_eq!(hb(c).hopfudge, 1);
    assert_eq!(c.timeouts, HB_TIMEOUTS);
    assert!(c.realtime);
    assert!(c.groups.is_empty());
    // initdead rules: deadtime < 6 s → 12 s; 6..=10 s → 2 × deadtime.
    let c = parse_ok("logfile /l\nucast eth0 192.0.2.2\nnode a b\ndeadtime 5\n", "").config;
    assert_eq!(c.initdead, Duration::from_secs(12));
    let c = parse_ok("logfile /l\nucast eth0 192.0.2.2\nnode a b\ndeadtime 8\n", "").config;
    assert_eq!(c.initdead, Duration::from_secs(16));
    let c = parse_ok("logfile /l\nucast eth0 192.0.2.2\nnode a b\ndeadtime 10\n", "").config;
    assert_eq!(c.initdead, Duration::from_secs(20));
    // Times: decimals and units.
    let c = parse_ok("logfile /l\nucast eth0 192.0.2.2\nnode a b\nkeepalive 200ms\ndeadtime 1.5\n", "").config;
    assert_eq!((c.keepalive, c.deadtime), (Duration::from_millis(200), Duration::from_millis(1500)));
    assert_eq!(c.warntime, Duration::from_millis(750));
}

#[test]
fn times_as_cl_get_msec() {
    assert_eq!(hb_msec("1"), Some(1000));
    assert_eq!(hb_msec("0.1"), Some(100));
    assert_eq!(hb_msec(".5"), Some(500));
    assert_eq!(hb_msec("100ms"), Some(100));
    assert_eq!(hb_msec("100MS"), Some(100));
    assert_eq!(hb_msec("2msec"), Some(2));
    assert_eq!(hb_msec("1000000us"), Some(1000));
    assert_eq!(hb_msec("499us"), Some(0));
    assert_eq!(hb_msec("501us"), Some(1));
    for bad in ["", "x", "1s", "1.2.3", "-1", "1 ms", "ms", "."] {
        assert_eq!(hb_msec(bad), None, "{bad:?}");
    }
    assert_eq!(hb_bool("Yes"), Some(true));
    assert_eq!(hb_bool("0"), Some(false));
    assert_eq!(hb_bool("maybe"), None);
}

#[test]
fn heartbeat_tokenizing() {
    // `#` anywhere, commas and blanks between values, several values per line.
    let p = parse_ok(
        "logfile /l # trailing comment\nnode hn1,HN2\nbcast eth0 eth1\nserial /dev/ttyS0 /dev/ttyS1\n\
         \t  keepalive 2 # two seconds\ndeadtime 10\n",
        "",
    );
    let c = &p.config;
    assert_eq!(c.nodes, ["hn1", "hn2"], "lower-cased as heartbeat does");
    assert_eq!(c.keepalive, Duration::from_secs(2));
    assert_eq!(c.links.len(), 4);
    assert_eq!(p.link_lines, [3, 3, 4, 4]);
    assert_eq!(c.links[1], LinkConfig::Bcast { iface: "eth1".into(), port: 694 });
    assert_eq!(c.links[3], LinkConfig::Serial { device: "/dev/ttyS1".into(), baud: 19200, rtscts: true });
    assert_eq!(p.node_line, 2);
}

#[test]
fn udpport_and_baud_apply_as_heartbeat_reads_them() {
    let p = parse_ok("logfile /l\nnode a b\nudpport 7000\nbaud 115200\nucast eth0 192.0.2.2\nserial /dev/ttyS0\n", "");
    assert_eq!(
        p.config.links[0],
        LinkConfig::Ucast { iface: "eth0".into(), peer: "192.0.2.2".parse().unwrap(), port: 7000 }
    );
    assert_eq!(p.config.links[1], LinkConfig::Serial { device: "/dev/ttyS0".into(), baud: 115200, rtscts: true });
    assert!(p.warnings.is_empty(), "{:?}", warnings(&p));
    // After the first media line heartbeat keeps what it had read.
    let p = parse_ok("logfile /l\nnode a b\nucast eth0 192.0.2.2\nserial /dev/ttyS0\nudpport 7000\nbaud 9600\nucast eth1 192.0.2.3\n", "");
    let ports: Vec<u16> = p
        .config
        .links
        .iter()
        .filter_map(|l| match l {
            LinkConfig::Ucast { port, .. } => Some(*port),
            _ => None,
        })
        .collect();
    assert_eq!(ports, [694, 694]);
    assert!(matches!(p.config.links[1], LinkConfig::Serial { baud: 19200, .. }));
    let w = warnings(&p);
    assert!(
        w.iter().any(|w| w.starts_with("5: udpport: heartbeat read the port at the first ucast line (line 3)")),
        "{w:?}"
    );
    assert!(w.iter().any(|w| w.starts_with("6: baud: heartbeat reads it before the serial line at line 4")), "{w:?}");
}

#[test]
fn media_lines() {
    let p = parse_ok(
        "logfile /l\nnode a b\nmcast eth0 239.1.2.3 700 2 1\nucast6 eth0 2001:db8::2\nmcast6 eth1 ff02::1:2 694 1 0\n\
         ping 192.0.2.254\nping6 2001:db8::fe\nping_group g 192.0.2.253 192.0.2.252\n",
        "",
    );
    let c = &p.config;
    assert_eq!(
        c.links[0],
        LinkConfig::Mcast { iface: "eth0".into(), group: "239.1.2.3".parse().unwrap(), port: 700, ttl: 2, loop_: true }
    );
    assert_eq!(c.links[1], LinkConfig::Ucast { iface: "eth0".into(), peer: "2001:db8::2".parse().unwrap(), port: 694 });
    assert!(matches!(c.links[2], LinkConfig::Mcast { port: 694, ttl: 1, loop_: false, .. }));
    assert_eq!(c.ping.len(), 4);
    assert!(warnings(&p).iter().any(|w| w.starts_with("8: ping_group g: tandem pings each address on its own")));
    // `udp`: heartbeat's old name of `bcast` (Debian's heartbeat warns and reads it as bcast).
    let p = parse_ok("logfile /l\nnode a b\nudpport 695\nudp eth0 eth1\n", "");
    assert_eq!(
        p.config.links,
        [LinkConfig::Bcast { iface: "eth0".into(), port: 695 }, LinkConfig::Bcast { iface: "eth1".into(), port: 695 }]
    );
    assert_eq!(
        warnings(&p),
        ["4: udp is heartbeat's old name of bcast: read as bcast (as heartbeat reads it); write bcast"]
    );
}

#[test]
fn failback_spellings() {
    for (line, want, warned) in [
        ("auto_failback on", HbFailback::On, false),
        ("auto_failback off", HbFailback::Off, false),
        ("auto_failback legacy", HbFailback::Legacy, false),
        ("auto_failback yes", HbFailback::On, false),
        ("nice_failback on", HbFailback::Off, true),
        ("nice_failback off", HbFailback::Legacy, true),
    ] {
        let p = parse_ok(&format!("logfile /l\nucast eth0 192.0.2.2\nnode a b\n{line}\n"), "");
        assert_eq!(hb(&p.config).failback, want, "{line}");
        assert_eq!(p.config.auto_failback, want == HbFailback::On);
        assert_eq!(p.warnings.iter().any(|w| w.msg.contains("nice_failback is obsolete")), warned, "{line}");
    }
    assert_eq!(refused("auto_failback sometimes"), "auto_failback: expected on, off or legacy, not 'sometimes'");
}

#[test]
fn accepted_without_effect() {
    // Every one of these is accepted, as heartbeat accepts it, and changes nothing tandem does.
    for line in [
        "cluster prod",
        "hopfudge 2",
        "deadping 10",
        "rtprio 5",
        "hbgenmethod time",
        "hbgenmethod file",
        "realtime off",
        "debug 1",
        "msgfmt classic",
        "use_logd yes",
        "conn_logd_time 30",
        "use_apphbd no",
        "log_badpack false",
        "syslogmsgfmt true",
        "coredumps yes",
        "coreroot /var/lib/heartbeat/cores",
        "crm_daemon_dir /usr/lib/pacemaker",
        "crmd_spawns_pengine yes",
        "crm off",
        "pacemaker no",
        "autojoin none",
        "uuidfrom file",
        "compression bz2",
        "compression_threshold 2",
        "traditional_compression no",
        "env FOO=bar",
        "max_rexmit_delay 250",
        "record_config_changes on",
        "record_pengine_inputs on",
        "enable_config_writes off",
        "memreserve 6500",
        "apiauth ipfail uid=hacluster",
        "apiauth ping gid=haclient uid=alice,bob",
        "debugfile /var/log/ha-debug",
        "logfacility local0",
        "udpport 694",
        "baud 38400",
    ] {
        let p = parse(Path::new("/etc/ha.d"), &format!("{BASE}{line}\n"), Some(""), &scripts);
        assert!(p.is_ok(), "{line}: {:?}", p.err());
    }
    let p = parse_ok(&format!("{BASE}env FOO=bar\nrealtime no\nhopfudge 3\ncluster prod\n"), "");
    assert_eq!(hb(&p.config).env, [("HA_FOO".to_string(), "bar".to_string())]);
    assert!(!p.config.realtime);
    assert_eq!(hb(&p.config).hopfudge, 3);
    assert_eq!(p.config.cluster, "prod");
    let params = &hb(&p.config).params;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("keepalive"), Some("1"));
    assert_eq!(get("deadtime"), Some("5"));
    assert_eq!(get("udpport"), Some("694"));
    assert_eq!(get("msgfmt"), Some("classic"));
    assert_eq!(get("warntime"), Some("2500ms"));
}

#[test]
fn logging() {
    let c = parse_ok("ucast eth0 192.0.2.2\nnode a b\nlogfacility local7\n", "").config;
    assert_eq!((c.logfacility.as_deref(), c.logfile.as_deref()), (Some("local7"), None));
    // No log at all: heartbeat uses logd, i.e. syslog.
    let c = parse_ok("ucast eth0 192.0.2.2\nnode a b\n", "").config;
    assert_eq!(c.logfacility.as_deref(), Some("daemon"));
    let c = parse_ok("ucast eth0 192.0.2.2\nnode a b\ndebugfile /var/log/ha-debug\n", "").config;
    assert_eq!(c.logfile.as_deref(), Some(Path::new("/var/log/ha-debug")));
    assert_eq!(c.logfacility, None);
    let c = parse_ok("ucast eth0 192.0.2.2\nnode a b\nlogfile /l\nuse_logd yes\n", "").config;
    assert_eq!(c.logfacility.as_deref(), Some("daemon"));
    let e = errs("ucast eth0 192.0.2.2\nnode a b\nuse_logd no\n", "");
    assert_eq!(
        e,
        ["/etc/ha.d/ha.cf:3: No log entry found in ha.cf and use_logd is set to off: set logfile or logfacility"]
    );
}

#[test]
fn refused_directives_say_why_and_what_to_do() {
    let cases: &[(&str, &str)] = &[
        ("watchdog /dev/watchdog", "watchdog: tandem does not keep heartbeat's watchdog device open"),
        ("use_apphbd yes", "use_apphbd on: tandem does not register with apphbd"),
        ("crm on", "crm on: a heartbeat cluster managed by Pacemaker (the v2 CRM) is not a haresources cluster"),
        ("crm respawn", "crm respawn: a heartbeat cluster managed by Pacemaker"),
        ("pacemaker yes", "pacemaker yes: a heartbeat cluster managed by Pacemaker"),
        ("autojoin any", "autojoin any: nodes joining at run time conflict with haresources"),
        ("autojoin other", "autojoin other: nodes joining at run time conflict with haresources"),
        ("uuidfrom nodename", "uuidfrom nodename: tandem keeps the node's uuid in /var/lib/heartbeat/hb_uuid"),
        ("quorum_server qs.example.org", "quorum_server: a quorum server serves Pacemaker (crm) clusters"),
        (
            "respawn hacluster /usr/lib/heartbeat/ipfail",
            "respawn /usr/lib/heartbeat/ipfail: ipfail is a heartbeat API client",
        ),
        (
            "respawn hacluster /usr/lib/heartbeat/dopd",
            "respawn /usr/lib/heartbeat/dopd: dopd answers DRBD's fence-peer handler",
        ),
        ("respawn hacluster /usr/lib/heartbeat/ccm", "respawn /usr/lib/heartbeat/ccm: this is heartbeat's v2 CRM"),
        (
            "respawn root /usr/local/bin/mon",
            "respawn /usr/local/bin/mon: tandem does not start and watch helper programs",
        ),
        ("failfast hacluster /usr/lib/heartbeat/crmd", "failfast /usr/lib/heartbeat/crmd: this is heartbeat's v2 CRM"),
        ("stonith null /etc/ha.d/null.cfg", "stonith null: it powers nothing off and reports success"),
        ("stonith_host * suicide", "stonith_host suicide: a node cannot fence its peer by rebooting itself"),
        ("stonith_host * external/ssh hn1 hn2", "stonith_host external/ssh: it needs the dead node to answer ssh"),
        (
            "stonith_host * external/ipmi hn2 203.0.113.2 admin",
            "stonith_host external/ipmi: expected HOSTNAME IPADDR USERID PASSWD INTERFACE",
        ),
        (
            "stonith_host * external/ipmi zz 203.0.113.2 admin pw lanplus",
            "stonith_host external/ipmi: host 'zz' is not a node (hn1 hn2)",
        ),
        (
            "stonith_host * external/ipmi hn2 203.0.113.2 admin pw open",
            "stonith_host external/ipmi: interface 'open' (lan or lanplus)",
        ),
        ("stonith_host hn9 apcmaster 203.0.113.9 apc apc", "stonith_host: 'hn9' is neither * nor a node (hn1 hn2)"),
        ("stonith meatware", "stonith: usage: stonith TYPE CONFIGFILE"),
        ("stonith apcsmart cfg", "stonith: 'cfg' is not an absolute path"),
        ("normalpoll true", "unknown directive 'normalpoll' (heartbeat 3.0.6 refuses it too: Illegal directive)"),
        ("frobnicate 1", "unknown directive 'frobnicate'"),
        ("keepalive fast", "keepalive: bad time 'fast'"),
        ("warntime 0", "warntime: Warn time [0] is invalid"),
        ("baud 12345", "baud: invalid baudrate [12345]"),
        ("baud 19200\nbaud 19200", "baud: Baudrate multiply specified"),
        ("udpport 0", "udpport: invalid port [0]"),
        ("logfacility bogus", "logfacility: Log facility(bogus) not valid"),
        ("logfile log/ha-log", "logfile: 'log/ha-log' is not an absolute path"),
        ("hopfudge 256", "hopfudge: expected a number from 0 to 255"),
        ("rtprio 100", "rtprio: Illegal realtime priority [100]"),
        ("hbgenmethod random", "hbgenmethod: Illegal hb generation method [random]"),
        ("msgfmt xml", "msgfmt: expected classic or netstring"),
        ("compression lzma", "compression: unknown compression module 'lzma'"),
        ("env =x", "env: invalid nvpair(=x)"),
        ("apiauth ipfail hacluster", "apiauth: Syntax: apiauth client [uid=uidlist] [gid=gidlist]"),
        ("ucast eth0 hn2.example.org", "ucast: 'hn2.example.org' is not an IP address (host names are not looked up"),
        ("ucast eth0", "ucast: usage: ucast INTERFACE PEER_ADDRESS"),
        ("ucast eth0 192.0.2.2 695", "ucast: usage: ucast INTERFACE PEER_ADDRESS (heartbeat takes no port here)"),
        ("ucast eth0 192.0.2.2", "duplicate link 'ucast eth0 192.0.2.2' (already at line 5)"),
        ("ucast6 eth0 192.0.2.3", "ucast6: 192.0.2.3 is not a unicast IPv6 address"),
        ("mcast eth0 239.0.0.1 694 1", "mcast: usage: mcast INTERFACE GROUP PORT TTL LOOP"),
        ("mcast eth0 192.0.2.9 694 1 0", "mcast [eth0] bad addr [192.0.2.9]"),
        ("mcast eth0 239.0.0.1 694 5 0", "mcast [eth0] bad ttl [5] (0 to 4)"),
        ("mcast eth0 239.0.0.1 694 1 2", "mcast [eth0] bad loop [2] (0 or 1)"),
        ("serial ttyS0", "serial: 'ttyS0' is not an absolute path"),
        ("bcast averyveryverylongname", "bcast: bad interface name"),
        ("ping 239.0.0.1", "ping: 239.0.0.1 is not a unicast IPv4 address"),
        ("ping_group g", "ping_group: usage: ping_group NAME ADDR [ADDR…]"),
        ("node hn3", "tandem runs two-node clusters: exactly two `node` names are needed, found 3 (hn1 hn2 hn3)"),
        ("node hn1", "node hn1 is already named at line 7"),
        ("node bad/name", "node: bad node name 'bad/name'"),
        ("initdead 2", "Initial dead time [2000] is smaller than deadtime [5000]"),
        ("deadping 1", "Ping dead time [1000] is too small compared to keepalive [1000]"),
    ];
    for (line, want) in cases {
        let e = errs(&format!("{BASE}{line}\n"), "");
        assert!(e.iter().any(|m| m.contains(want)), "{line}: want {want:?} in {e:?}");
        // Every message names the file and a line.
        for m in &e {
            assert!(m.starts_with("/etc/ha.d/ha.cf:"), "{m}");
        }
    }
    // The exact form of a few.
    assert_eq!(
        refused("watchdog /dev/watchdog"),
        "watchdog: tandem does not keep heartbeat's watchdog device open (the kernel's softdog would reboot this \
         node); remove this line (tandem's own watchdog self-fencing is set up in tandem.conf, see tandem.conf(5))"
    );
    assert!(refused("crm on")
        .ends_with("(`tandem export pacemaker` goes the other way, from tandem.conf to a Pacemaker CIB)"));
    // Timing rules that span lines.
    let e = errs("logfile /l\nnode a b\nucast eth0 192.0.2.2\nkeepalive 2\ndeadtime 4\n", "");
    assert_eq!(
        e,
        ["/etc/ha.d/ha.cf:5: Dead time [4000] is too small compared to keepalive [2000] (must be more than twice)"]
    );
    let e = errs("logfile /l\nnode a b\n", "");
    assert_eq!(e, ["/etc/ha.d/ha.cf: No heartbeat media defined: need a ucast, bcast, mcast or serial line"]);
    let e = errs("logfile /l\nucast eth0 192.0.2.2\n", "");
    assert_eq!(e, ["/etc/ha.d/ha.cf: no nodes defined: name both nodes with `node`"]);
}

#[test]
fn every_heartbeat_directive_is_known() {
    // Each name heartbeat 3.0.6 accepts is either mapped or refused with its own message,
    // never "unknown directive".
    for name in directive_names() {
        let e = parse(Path::new("/etc/ha.d"), &format!("{BASE}{name} x y\n"), Some(""), &scripts);
        if let Err(e) = e {
            for m in e {
                assert!(!m.msg.contains("unknown directive"), "{name}: {m}");
            }
        }
    }
}

#[test]
fn stonith_mapping() {
    let c = parse_ok(&format!("{BASE}stonith_host * external/ipmi hn2 203.0.113.2 admin s3cret lanplus\n"), "").config;
    assert_eq!(c.stonith.len(), 1);
    assert_eq!(c.stonith[0].node, 1);
    assert_eq!(c.stonith[0].line, 10);
    // tandem's exec method appends `off NODE`: `stonith … -T off hn2`.
    assert_eq!(
        c.stonith[0].method.words(),
        [
            "exec",
            "/usr/sbin/stonith",
            "-t",
            "external/ipmi",
            "hostname=hn2",
            "ipaddr=203.0.113.2",
            "userid=admin",
            "passwd=s3cret",
            "interface=lanplus",
            "-T",
        ]
    );
    // A global device: one line per node; meatware is tandem's manual method.
    let c = parse_ok(&format!("{BASE}stonith baytech /etc/ha.d/baytech.cfg\n"), "").config;
    assert_eq!(c.stonith.len(), 2);
    assert_eq!(
        c.stonith[1].method.words(),
        ["exec", "/usr/sbin/stonith", "-t", "baytech", "-F", "/etc/ha.d/baytech.cfg", "-T"]
    );
    let c = parse_ok(&format!("{BASE}stonith_host hn1 meatware hn2\nstonith_host hn2 meatware hn1\n"), "").config;
    assert_eq!(c.stonith.len(), 2);
    assert!(c.stonith.iter().all(|s| s.method == crate::config::FenceMethod::Manual));
    let c = parse_ok(&format!("{BASE}stonith_host hn1 apcmaster 203.0.113.9 apc my secret\n"), "").config;
    assert_eq!(c.stonith.len(), 1);
    assert_eq!(c.stonith[0].node, 1, "the line from hn1 fences hn2");
    assert_eq!(c.stonith[0].method.words()[5], "203.0.113.9 apc my secret");
}

#[test]
fn haresources_groups_and_resources() {
    let hr = "# comment\nhn1 192.0.2.50 apache::/etc/apache2/httpd.conf # web\n\
              HN2 drbddisk::r0 Filesystem::/dev/drbd0::/srv::ext4::noatime \\\n   IPaddr2::192.0.2.51/24/eth0:db/192.0.2.255 postfix\n\
              hn1 LVM::vg0 Filesystem::-Ldata::/data IPaddr::192.0.2.52/24/192.0.2.255\n\
              hn2 Filesystem::nfs1:/export::/mnt::nfs::ro drbddisk\n";
    let p = parse_ok(BASE, hr);
    let c = &p.config;
    assert_eq!(c.groups.len(), 4);
    let g = &c.groups[0];
    assert_eq!((g.name.as_str(), g.preferred, g.line), ("192.0.2.50", 0, 2));
    match &g.resources[0].spec {
        ResourceSpec::Ip(ip) => {
            assert_eq!((ip.addr.to_string(), ip.prefix, ip.iface.clone()), ("192.0.2.50".into(), None, None))
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(
        g.resources[1].spec,
        ResourceSpec::Script(ScriptSpec {
            path: "/etc/ha.d/resource.d/apache".into(),
            args: vec!["/etc/apache2/httpd.conf".into()],
            status_by_stdout: true
        })
    );
    let g = &c.groups[1];
    assert_eq!((g.name.as_str(), g.preferred, g.line), ("drbddisk::r0", 1, 3));
    assert_eq!(g.resources.len(), 4, "continued line");
    assert_eq!(g.resources[0].spec, ResourceSpec::Drbd(super::super::DrbdSpec { resource: "r0".into() }));
    match &g.resources[1].spec {
        ResourceSpec::Mount(m) => {
            assert_eq!(
                (m.device.as_str(), m.dir.to_str().unwrap(), m.fstype.as_deref(), m.options.as_str()),
                ("/dev/drbd0", "/srv", Some("ext4"), "noatime")
            )
        }
        o => panic!("{o:?}"),
    }
    match &g.resources[2].spec {
        ResourceSpec::Ip(ip) => {
            assert_eq!(ip.iface.as_deref(), Some("eth0"));
            assert_eq!(ip.label.as_deref(), Some("db"));
            assert_eq!(ip.broadcast, Some("192.0.2.255".parse().unwrap()));
            assert_eq!(ip.prefix, Some(24));
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(g.resources[2].text, "IPaddr2::192.0.2.51/24/eth0:db/192.0.2.255");
    assert!(
        matches!(&g.resources[3].spec, ResourceSpec::Script(s) if s.path == Path::new("/etc/init.d/postfix") && s.status_by_stdout)
    );
    let g = &c.groups[2];
    assert_eq!(g.resources[0].spec, ResourceSpec::Lvm(super::super::LvmSpec { vg: "vg0".into() }));
    assert!(matches!(&g.resources[1].spec, ResourceSpec::Mount(m) if m.device == "LABEL=data" && m.fstype.is_none()));
    match &g.resources[2].spec {
        // IPaddr: a third field with a digit is the broadcast address.
        ResourceSpec::Ip(ip) => {
            assert_eq!((ip.iface.clone(), ip.broadcast), (None, Some("192.0.2.255".parse().unwrap())))
        }
        o => panic!("{o:?}"),
    }
    // NFS and drbddisk without a resource: heartbeat's own scripts.
    let g = &c.groups[3];
    assert!(
        matches!(&g.resources[0].spec, ResourceSpec::Script(s) if s.path.ends_with("resource.d/Filesystem") && s.args == ["nfs1:/export", "/mnt", "nfs", "ro"])
    );
    assert!(
        matches!(&g.resources[1].spec, ResourceSpec::Script(s) if s.path.ends_with("resource.d/drbddisk") && s.args.is_empty())
    );
    assert_eq!(hb(c).group_keys, ["192.0.2.50", "drbddisk::r0", "LVM::vg0", "Filesystem::nfs1:/export::/mnt::nfs::ro"]);
    // A netmask in dotted quad notation, as heartbeat's scripts (findif) accept it.
    let p = parse_ok(BASE, "hn1 IPaddr::192.0.2.50/255.255.255.0/eth0 IPaddr2::192.0.2.51/255.255.240.0\n");
    match (&p.config.groups[0].resources[0].spec, &p.config.groups[0].resources[1].spec) {
        (ResourceSpec::Ip(a), ResourceSpec::Ip(b)) => {
            assert_eq!(
                (a.prefix, a.iface.as_deref(), b.prefix, b.iface.as_deref()),
                (Some(24), Some("eth0"), Some(20), None)
            )
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn haresources_errors() {
    let e = errs(BASE, "hn3 192.0.2.50\nhn1 nosuchscript::x\nhn1 IPaddr::192.0.2.300\nhn2 192.0.2.60 IPaddr::192.0.2.60/24\n\
                        hn1\\\n  LVM::vg0 LVM::vg0\nhn1 Filesystem::/dev/sdb1\nhn2 IPaddr::192.0.2.61::x\nhn2 IPaddr::192.0.2.62/24/eth0/192.0.2.255/x\n\
                        hn1 drbddisk::a::b\nhn1 192.0.2.70\nhn2 192.0.2.70\nhn1 IPaddr::192.0.2.71/255.0.255.0\n");
    let want = [
        "haresources:1: 'hn3' is not a node of ha.cf (hn1 hn2)",
        "haresources:2: nosuchscript::x: no resource script /etc/ha.d/resource.d/nosuchscript or /etc/init.d/nosuchscript",
        "haresources:3: IPaddr::192.0.2.300: '192.0.2.300' is not an IPv4 or IPv6 address",
        "haresources:4: IPaddr::192.0.2.60/24: ip 192.0.2.60 is already used by the group of line 4",
        "haresources:5: LVM::vg0: volume group vg0 is already used by the group of line 5",
        "haresources:7: Filesystem::/dev/sdb1: Filesystem takes DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]",
        "haresources:8: IPaddr::192.0.2.61::x: IPaddr takes one argument",
        "haresources:9: IPaddr::192.0.2.62/24/eth0/192.0.2.255/x: too many '/' fields",
        "haresources:10: drbddisk::a::b: drbddisk takes one argument, the DRBD resource",
        "haresources:13: IPaddr::192.0.2.71/255.0.255.0: bad netmask '255.0.255.0' (its one bits must come first)",
        "haresources:12: the first resource '192.0.2.70' is already the first of line 11: it must be unique",
    ];
    for w in want {
        assert!(e.iter().any(|m| m.contains(w)), "want {w:?} in {e:#?}");
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
    // No haresources at all: no groups, as heartbeat.
    let p = parse(Path::new("/etc/ha.d"), BASE, None, &scripts).unwrap();
    assert!(p.config.groups.is_empty());
}

#[test]
fn tandem_conf_protocol_heartbeat() {
    let base = "cluster c\nnode hn1 hn2\nucast eth0 192.0.2.2\nkeepalive 1s\ndeadtime 5s\n\
                group web hn1 IPaddr::192.0.2.50/24/eth0 script::/etc/www\n";
    let ok = |extra: &str| match crate::config::parse_str(Path::new("/t.conf"), &format!("{base}{extra}")) {
        Ok(p) => p.config,
        Err(e) => panic!("{extra}: {e:?}"),
    };
    let bad = |extra: &str| match crate::config::parse_str(Path::new("/t.conf"), &format!("{base}{extra}")) {
        Ok(_) => panic!("accepted: {extra}"),
        Err(e) => e.iter().map(|e| format!("{}: {}", e.line, e.msg)).collect::<Vec<_>>(),
    };
    let c = ok("authkey /etc/tandem/authkey\n");
    assert!(c.heartbeat().is_none());
    let c = ok("protocol tandem\nauthkey /etc/tandem/authkey\n");
    assert!(c.heartbeat().is_none());
    let c = ok("protocol heartbeat\nhb_authkeys /etc/ha.d/authkeys\nauto_failback legacy\n");
    let h = hb(&c);
    assert_eq!((h.authkeys.to_str(), h.authkeys_line, h.failback), (Some("/etc/ha.d/authkeys"), 8, HbFailback::Legacy));
    assert_eq!(h.group_keys, ["IPaddr::192.0.2.50/24/eth0"]);
    assert_eq!(hb(&ok("protocol heartbeat\nhb_authkeys /a\nauto_failback on\n")).failback, HbFailback::On);
    assert_eq!(hb(&ok("protocol heartbeat\nhb_authkeys /a\n")).failback, HbFailback::Off);
    assert_eq!(
        bad("protocol heartbeat\n"),
        ["7: protocol heartbeat: missing `hb_authkeys PATH` (heartbeat's authkeys file)"]
    );
    assert_eq!(
        bad("protocol heartbeat\nhb_authkeys /a\nauthkey /k\n"),
        ["9: authkey: with `protocol heartbeat` the key is heartbeat's authkeys file, named by `hb_authkeys`; remove this line"]
    );
    assert_eq!(
        bad("authkey /k\nhb_authkeys /a\n"),
        ["8: hb_authkeys: only with `protocol heartbeat` (tandem's own key is `authkey`)"]
    );
    assert_eq!(
        bad("authkey /k\nauto_failback legacy\n"),
        ["8: auto_failback: 'legacy' (heartbeat's old failback mode) is only spoken with `protocol heartbeat`; use on or off"]
    );
    assert_eq!(bad("authkey /k\nprotocol ospf\n"), ["8: protocol: expected tandem or heartbeat, not 'ospf'"]);
    assert_eq!(bad("protocol heartbeat\nhb_authkeys a\n"), ["8: hb_authkeys: 'a' is not an absolute path"]);
}
