use super::*;

const DEMO: &str = "cluster demo
node alpha beta
authkey /etc/tandem/authkey
keepalive 100ms
deadtime 500ms
warntime 300ms
initdead 2s
auto_failback off
ucast veth-lan 192.0.2.1
ucast veth-lan 192.0.2.2
serial /dev/ttyS1 115200
group web alpha ip::192.0.2.50/24/veth-lan script::/etc/tandem/www.sh
";

const BIG: &str = "cluster big
node alpha beta
authkey /etc/tandem/authkey
auto_failback on
ucast eth1 198.51.100.1
ucast eth1 198.51.100.2
garp_count 3
group db alpha drbd::r0 mount::/dev/drbd0::/srv/db::ext4::noatime lvm::vg_db 192.0.2.60/24/eth0/eth0:db \
    script::/etc/init.d/postgresql
group web beta ocf::heartbeat:IPaddr2::ip=192.0.2.61::cidr_netmask=24 mount::UUID=ab-12::/srv/www::xfs \
    mount::/dev/sdc1::/srv/tmp script::/usr/local/bin/www::8080 guest::g1::/srv/g1
monitor 10s
monitor 2500ms web
monitor 0 web/3
";

/// The stonith lines of BIG, added to the parsed config.
const BIG_STONITH: [(u8, &str, usize); 2] = [
    (0, "ipmi 203.0.113.11 admin /etc/tandem/bmc.pw cipher=17", 7),
    (1, "agent /usr/sbin/fence_virsh ip=203.0.113.1 username=root port=vm-beta", 8),
];

fn model_with(text: &str, stonith: &[(u8, &str, usize)]) -> Cib {
    let mut p = config::parse_str(Path::new("/etc/tandem/tandem.conf"), text).unwrap();
    for (node, words, line) in stonith {
        let w: Vec<String> = words.split_whitespace().map(String::from).collect();
        let method = config::stonith::parse_method(&w).unwrap();
        p.config.stonith.push(config::StonithConfig { node: *node, method, line: *line });
    }
    build(&p.config)
}

fn model(text: &str) -> Cib {
    model_with(text, &[])
}

fn agents(g: &Group) -> Vec<String> {
    g.members.iter().map(|p| format!("{} {}", p.id, p.agent_spec())).collect()
}

#[test]
fn demo_cluster() {
    let m = model(DEMO);
    assert_eq!(m.nodes, ["alpha", "beta"]);
    assert_eq!(m.groups.len(), 1);
    assert_eq!(agents(&m.groups[0]), ["web-ip-1 ocf:heartbeat:IPaddr2", "web-script-2 ocf:tandem:script"]);
    let ip = &m.groups[0].members[0];
    let kv: Vec<(&str, &str)> = ip.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(kv, [("ip", "192.0.2.50"), ("cidr_netmask", "24"), ("nic", "veth-lan")]);
    assert_eq!(
        ip.ops,
        [
            OpDef { name: "start", interval: Duration::ZERO, timeout: Duration::from_secs(60) },
            OpDef { name: "stop", interval: Duration::ZERO, timeout: Duration::from_secs(60) },
            // No monitor line: tandem does not monitor it, Pacemaker only probes it.
            OpDef { name: "monitor", interval: Duration::ZERO, timeout: Duration::from_secs(20) },
        ]
    );
    assert_eq!(m.groups[0].members[1].params, [("path".to_string(), "/etc/tandem/www.sh".to_string())]);
    assert_eq!(
        m.locations,
        [Location { id: "loc-web-alpha".into(), rsc: "web".into(), node: "alpha".into(), score: Score::Value(100) }]
    );
    assert_eq!(m.rsc_defaults, [("resource-stickiness".to_string(), "200".to_string())]);
    assert_eq!(m.properties, [("stonith-enabled".to_string(), "false".to_string())]);
    assert!(m.fencing.is_empty());
    let notes = m.notes.join("\n");
    for want in [
        "serial links cannot be expressed",
        "token: 500",
        "two_node: 1",
        "node alpha has no stonith line",
        "stonith-enabled=false",
    ] {
        assert!(notes.contains(want), "{want} not in\n{notes}");
    }
}

#[test]
fn every_kind_of_resource_and_fencing() {
    let m = model_with(BIG, &BIG_STONITH);
    assert_eq!(
        agents(&m.groups[0]),
        [
            "db-drbd-1 ocf:tandem:drbd",
            "db-mount-2 ocf:heartbeat:Filesystem",
            "db-lvm-3 ocf:tandem:lvm",
            "db-ip-4 ocf:heartbeat:IPaddr2",
            "db-script-5 lsb:postgresql",
        ]
    );
    assert_eq!(
        agents(&m.groups[1]),
        [
            "web-IPaddr2-1 ocf:heartbeat:IPaddr2",
            "web-mount-2 ocf:heartbeat:Filesystem",
            "web-mount-3 ocf:tandem:mount",
            "web-script-4 ocf:tandem:script",
            "web-guest-5 ocf:tandem:guest",
        ]
    );
    let param = |g: usize, i: usize, k: &str| {
        m.groups[g].members[i].params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    assert_eq!(param(0, 0, "drbd_resource").as_deref(), Some("r0"));
    assert_eq!(param(0, 1, "run_fsck").as_deref(), Some("no"));
    assert_eq!(param(0, 1, "options").as_deref(), Some("noatime"));
    assert_eq!(param(0, 3, "iflabel").as_deref(), Some("db"), "IPaddr2 appends iflabel to nic");
    assert_eq!(param(0, 3, "arp_count").as_deref(), Some("3"));
    assert_eq!(param(1, 1, "device").as_deref(), Some("/dev/disk/by-uuid/ab-12"));
    assert_eq!(param(1, 0, "cidr_netmask").as_deref(), Some("24"));
    assert_eq!(param(1, 3, "args").as_deref(), Some("8080"));
    assert!(m.groups[0].members[0].notes.iter().any(|n| n.contains("ocf:linbit:drbd")));
    assert!(m.groups[1].members[2].notes.iter().any(|n| n.contains("needs the filesystem type")));
    assert_eq!(
        m.rsc_defaults,
        [("resource-stickiness".to_string(), "0".to_string()), ("migration-threshold".to_string(), "4".to_string())]
    );
    // Each resource's monitor interval, the most specific line winning; 0: probes only.
    let monitor = |g: usize, i: usize| {
        m.groups[g].members[i].ops.iter().find(|o| o.name == "monitor").map(|o| o.interval.as_millis())
    };
    assert_eq!(monitor(0, 0), Some(10_000));
    assert_eq!(monitor(1, 0), Some(2500));
    assert_eq!(monitor(1, 2), Some(0));
    assert!(m.notes.iter().any(|n| n.starts_with("restart_window 600s has no Pacemaker equivalent")), "{:?}", m.notes);
    assert_eq!(m.properties, [("stonith-enabled".to_string(), "true".to_string())]);
    let f: Vec<String> = m.fencing.iter().map(|p| format!("{} {}", p.id, p.agent_spec())).collect();
    assert_eq!(f, ["fence-alpha stonith:fence_ipmilan", "fence-beta stonith:fence_virsh"]);
    // fence_check (default 60s) is each device's monitor; the rest of the policy is a note.
    assert_eq!(m.fencing[0].ops[0].interval, Duration::from_secs(60));
    let notes = m.notes.join("\n");
    assert!(notes.contains("fencing policy, not exported: fence_timeout 30s"), "{notes}");
    assert!(notes.contains("wait_for_peer off is corosync's wait_for_all"), "{notes}");
    assert!(m.locations.contains(&Location {
        id: "loc-fence-alpha-avoid-alpha".into(),
        rsc: "fence-alpha".into(),
        node: "alpha".into(),
        score: Score::MinusInfinity,
    }));
    assert!(m.locations.iter().any(|l| l.rsc == "web" && l.node == "beta" && l.score == Score::Value(100)));
}

#[test]
fn what_cannot_be_expressed_is_said() {
    let text = DEMO.replace("serial /dev/ttyS1 115200\n", "ping 192.0.2.254\n");
    let m = model_with(&text, &[(0, "manual", 11), (1, "watchdog", 12)]);
    let notes = m.notes.join("\n");
    assert!(notes.contains("line 11: stonith alpha manual: not exported: manual fencing"), "{notes}");
    assert!(notes.contains("stonith beta watchdog: not exported: watchdog self-fencing needs sbd"), "{notes}");
    assert!(notes.contains("ping 192.0.2.254 is not exported"), "{notes}");
    assert!(!notes.contains("serial links"));
    assert_eq!(m.properties, [("stonith-enabled".to_string(), "false".to_string())]);
}

#[test]
fn failure_policy_notify_and_metrics() {
    let text = format!(
        "{DEMO}monitor 5s\nrestart_limit 1\nrestart_window 60s\nfailure_timeout 1800s\n\
         notify /etc/tandem/notify-mail\nmetrics_listen 198.51.100.1:9694\n"
    );
    let m = model(&text);
    assert_eq!(
        m.rsc_defaults,
        [
            ("resource-stickiness".to_string(), "200".to_string()),
            ("migration-threshold".to_string(), "2".to_string()),
            ("failure-timeout".to_string(), "1800s".to_string()),
        ]
    );
    let notes = m.notes.join("\n");
    for want in [
        "restart_window 60s has no Pacemaker equivalent",
        "notify /etc/tandem/notify-mail is not exported: Pacemaker's equivalent is an alert agent",
        "metrics_listen 198.51.100.1:9694 is not exported",
    ] {
        assert!(notes.contains(want), "{want} not in\n{notes}");
    }
    // Without a monitor line there is no failure policy to carry over.
    assert_eq!(model(DEMO).rsc_defaults.len(), 1);
    assert!(!model(DEMO).notes.iter().any(|n| n.contains("fencing policy")), "no stonith line, no policy");
}

#[test]
fn renderings() {
    let m = model_with(BIG, &BIG_STONITH);
    let x = cib::render(&m);
    assert!(
        x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- Pacemaker configuration of tandem cluster big")
    );
    for want in [
        "<cib validate-with=\"pacemaker-3.9\" admin_epoch=\"0\" epoch=\"1\" num_updates=\"0\">",
        "<nvpair id=\"cib-bootstrap-options-stonith-enabled\" name=\"stonith-enabled\" value=\"true\"/>",
        "<node id=\"1\" uname=\"alpha\"/>",
        "<group id=\"db\">",
        "<primitive id=\"db-mount-2\" class=\"ocf\" provider=\"heartbeat\" type=\"Filesystem\">",
        "<nvpair id=\"db-mount-2-instance_attributes-device\" name=\"device\" value=\"/dev/drbd0\"/>",
        "<op id=\"db-mount-2-monitor-interval-10s\" name=\"monitor\" interval=\"10s\" timeout=\"20s\"/>",
        "<primitive id=\"db-script-5\" class=\"lsb\" type=\"postgresql\">",
        "<primitive id=\"fence-alpha\" class=\"stonith\" type=\"fence_ipmilan\">",
        "value=\"cat /etc/tandem/bmc.pw\"",
        "<rsc_location id=\"loc-web-beta\" rsc=\"web\" node=\"beta\" score=\"100\"/>",
        "<rsc_location id=\"loc-fence-beta-avoid-beta\" rsc=\"fence-beta\" node=\"beta\" score=\"-INFINITY\"/>",
        "<op id=\"web-IPaddr2-1-monitor-interval-2500ms\" name=\"monitor\" interval=\"2500ms\" timeout=\"20s\"/>",
        "<op id=\"web-mount-3-monitor-interval-0s\" name=\"monitor\" interval=\"0s\" timeout=\"20s\"/>",
        "<nvpair id=\"rsc-options-resource-stickiness\" name=\"resource-stickiness\" value=\"0\"/>",
        "<nvpair id=\"rsc-options-migration-threshold\" name=\"migration-threshold\" value=\"4\"/>",
        "<!-- tandem: drbd::r0 -->",
    ] {
        assert!(x.contains(want), "{want} not in\n{x}");
    }
    // Comments never hold "--".
    for c in x.split("<!--").skip(1) {
        let body = c.split("-->").next().unwrap();
        assert!(!body.contains("--"), "{body}");
    }
    assert!(crate::agent::ocf::metadata::parse(&x).is_err(), "not meta-data, but well-formed enough to be read");
    let s = crm::render(&m);
    for want in [
        "node 1: alpha\n",
        "primitive db-ip-4 ocf:heartbeat:IPaddr2 \\\n    params ip=\"192.0.2.60\" cidr_netmask=\"24\" nic=\"eth0\" iflabel=\"db\" arp_count=\"3\" \\\n    op start interval=0s timeout=60s",
        "group db db-drbd-1 db-mount-2 db-lvm-3 db-ip-4 db-script-5\n",
        "location loc-db-alpha db 100: alpha\n",
        "location loc-fence-alpha-avoid-alpha fence-alpha -inf: alpha\n",
        "property cib-bootstrap-options: stonith-enabled=\"true\"\n",
        "rsc_defaults rsc-options: resource-stickiness=\"0\" migration-threshold=\"4\"\n",
        "# tandem: drbd::r0\n",
    ] {
        assert!(s.contains(want), "{want:?} not in\n{s}");
    }
}

#[test]
fn ocf_resources_keep_their_parameters_and_instance() {
    let m = model(&DEMO.replace(
        "script::/etc/tandem/www.sh",
        "ocf::heartbeat:apache::configfile=/etc/apache2/apache2.conf::statusurl=http://127.0.0.1/s?a=b&c",
    ));
    let p = &m.groups[0].members[1];
    assert_eq!((p.id.as_str(), p.agent_spec().as_str()), ("web-apache-2", "ocf:heartbeat:apache"));
    assert_eq!(p.params[1], ("statusurl".to_string(), "http://127.0.0.1/s?a=b&c".to_string()));
    assert!(cib::render(&m).contains("value=\"http://127.0.0.1/s?a=b&amp;c\""));
}
