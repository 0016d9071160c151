//! A service group's resources as one script that keeps a log of its own, for the
//! monitoring and notify tests: `res KIND OP` with KIND `svc` (the TCP service of
//! `tests/tools/svc` on the floating address) or `after` (a flag file, what follows the
//! service in a group). Every call appends `UNIX_US NETNS KIND OP EXIT` to `DIR/ops`, so a
//! test reads the order of operations on each node there. Faults, per node (network
//! namespace): while `DIR/crash-NETNS` exists, the service process dies 100 ms after every
//! successful start; while `DIR/hang-NETNS` exists, its status check never ends.

use std::path::{Path, PathBuf};

use super::{repo, script, FLOAT, PORT};

/// One line of the resources' own log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResOp {
    /// When the operation ended, µs since the epoch.
    pub t_us: u128,
    pub ns: String,
    pub kind: String,
    pub op: String,
    pub rc: i32,
}

/// The `res` script in a directory (its log, pid files and fault files live there too).
pub struct SvcRes {
    pub dir: PathBuf,
    /// The script: `script::PATH::svc`, `script::PATH::after` in a group line.
    pub path: PathBuf,
}

impl SvcRes {
    pub fn new(dir: &Path) -> SvcRes {
        let path = script(
            dir,
            "res",
            &format!(
                r#"d={d}; kind=$1; op=$2; ns=$(ip netns identify $$)
pidf=$d/run/svc-{port}-$ns.pid
rc=0
case $kind in
svc)
    [ "$op" = status ] && [ -e $d/hang-$ns ] && exec sleep 30
    {svc} {float} {port} - $d/run $op || rc=$?
    if [ "$op" = start ] && [ $rc = 0 ] && [ -e $d/crash-$ns ]; then
        setsid sh -c "sleep 0.1; kill -9 \$(cat $pidf)" </dev/null >/dev/null 2>&1 &
    fi ;;
after)
    f=$d/after-$ns
    case $op in start) touch $f ;; stop) rm -f $f ;; status) [ -e $f ] || rc=3 ;; esac ;;
*) rc=2 ;;
esac
echo "$(date +%s%6N) $ns $kind $op $rc" >> $d/ops
exit $rc"#,
                d = dir.display(),
                svc = repo().join("tests/tools/svc").display(),
                float = FLOAT,
                port = PORT,
            ),
        );
        SvcRes { dir: dir.to_path_buf(), path }
    }

    /// `ip::FLOAT/24/lan0 script::res::svc script::res::after`: the resources of a group.
    pub fn resources(&self) -> String {
        format!("ip::{FLOAT}/24/lan0 script::{r}::svc script::{r}::after", r = self.path.display())
    }

    pub fn ops(&self) -> Vec<ResOp> {
        let text = std::fs::read_to_string(self.dir.join("ops")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f.len(), 5, "{l}");
                ResOp {
                    t_us: f[0].parse().unwrap(),
                    ns: f[1].into(),
                    kind: f[2].into(),
                    op: f[3].into(),
                    rc: f[4].parse().unwrap(),
                }
            })
            .collect()
    }

    /// The operations on node `ns` after `t_us`, status checks left out, as `KIND OP`.
    pub fn changes(&self, ns: &str, t_us: u128) -> Vec<String> {
        self.ops()
            .into_iter()
            .filter(|o| o.ns == ns && o.t_us > t_us && o.op != "status")
            .map(|o| format!("{} {}", o.kind, o.op))
            .collect()
    }

    /// How often the service was started on `ns`.
    pub fn starts(&self, ns: &str) -> usize {
        self.ops().iter().filter(|o| o.ns == ns && o.kind == "svc" && o.op == "start").count()
    }

    /// Every service process started on `ns` dies at once from now on (or no longer).
    pub fn crash(&self, ns: &str, on: bool) {
        self.fault("crash", ns, on);
    }

    /// The service's status checks on `ns` hang from now on (or no longer).
    pub fn hang(&self, ns: &str, on: bool) {
        self.fault("hang", ns, on);
    }

    fn fault(&self, what: &str, ns: &str, on: bool) {
        let f = self.dir.join(format!("{what}-{ns}"));
        if on {
            std::fs::write(f, "").unwrap();
        } else {
            let _ = std::fs::remove_file(f);
        }
    }

    /// The service's pid on `ns`.
    pub fn svc_pid(&self, ns: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(format!("run/svc-{PORT}-{ns}.pid"))).ok()?.trim().parse().ok()
    }

    /// Kills the service on `ns` and makes every later start there die at once; returns
    /// when (µs since the epoch).
    pub fn crash_from_now(&self, ns: &str) -> u128 {
        self.crash(ns, true);
        let t = super::unix_us();
        super::run(&["kill", "-9", &self.svc_pid(ns).unwrap().to_string()]);
        t
    }
}
