#!/usr/bin/python3
"""A real Pacemaker 2.1 + Corosync 3 cluster in namespaced machines, running the CIB that
`tandem export pacemaker` makes, next to tandem itself in the same rig.

Each machine has its own network, mount, UTS and PID namespaces (bench/pcmk-node-init.sh):
private /etc/corosync, /var/lib/{corosync,pacemaker}, /var/log/pacemaker, /run and /dev/shm,
and tandem's OCF agents (ocf:tandem:*, links to the tandem binary) over
/usr/lib/ocf/resource.d. corosync runs with -f (knet over 192.0.2.0/24), pacemakerd in the
foreground: no systemd. A client namespace probes the service every 10 ms (examples/probe).
A machine dies as in bench/bench.py: its LAN link goes down and its PID namespace's init gets
SIGKILL (every process of the machine dies at once).

The group is the demo's: a floating address 192.0.2.50/24 and a small TCP service on it
(tests/tools/svc, an LSB script), written in tandem's config as
    group web alpha ip::192.0.2.50/24/lan0 script::tests/tools/svc::192.0.2.50::8080::-::/run/svc
Under Pacemaker it is the export's: ocf:heartbeat:IPaddr2 + ocf:tandem:script ("stock"), or,
for the same code as tandem runs, ocf:tandem:ip + ocf:tandem:script ("tandem agents").

usage:
  bench/pacemaker.py selftest [--nodes 3]    three machines: load the exported CIB with
                                             cibadmin, the group starts on alpha, kill alpha,
                                             the group moves; exit 0 when it did
  bench/pacemaker.py bench [--runs 5]        failover outage: tandem vs Pacemaker (tandem's
                                             agents, and the stock IPaddr2), two machines each
Options: --token MS (corosync token = tandem's deadtime, default 500), --keepalive MS (100),
--out DIR (bench/out/pacemaker). Environment: TANDEM (binary; default the release build, else
the debug one), PROBE (the prober; built with rustc when missing), BENCH_NS_PREFIX (the start of
every namespace's name; default pk<pid>). Standard library only; root.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
NODE_INIT = os.path.join(HERE, "pcmk-node-init.sh")
SVC = os.path.join(REPO, "tests", "tools", "svc")
VIP, PORT = "192.0.2.50", 8080
ADDR = {"alpha": "192.0.2.1", "beta": "192.0.2.2", "gamma": "192.0.2.3", "client": "192.0.2.100"}
OCF_AGENTS = ("ip", "drbd", "mount", "lvm", "script", "guest")


def now_us():
    return time.time_ns() // 1000


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


class Registry:
    """Everything this run starts, for cleanup even on failure."""

    def __init__(self):
        self.procs, self.netns, self.machines = [], [], []

    def popen(self, *a, **kw):
        p = subprocess.Popen(*a, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for m in self.machines:
            m.kill()
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for m in self.machines:
            m.unmount_leftovers()
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.procs, self.netns, self.machines = [], [], []


REG = Registry()


def sh(args, check=True, input=None, timeout=60):
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stdout}{r.stderr}")
    return r


def wait_for(pred, timeout, step=0.05, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def find_tandem():
    for p in (os.environ.get("TANDEM"), os.path.join(REPO, "target/x86_64-unknown-linux-gnu/release/tandem"),
              os.path.join(REPO, "target/debug/tandem")):
        if p and os.access(p, os.X_OK):
            return os.path.abspath(p)
    sys.exit("pacemaker.py: no tandem binary (make build, or TANDEM=...)")


def find_probe(out):
    p = os.environ.get("PROBE")
    if p and os.access(p, os.X_OK):
        return p
    p = os.path.join(out, "probe")
    src = os.path.join(REPO, "examples", "probe.rs")
    if not os.access(p, os.X_OK) or os.path.getmtime(src) > os.path.getmtime(p):
        sh(["rustc", "-O", "--edition", "2021", src, "-o", p], timeout=300)
    return p


# ---------------------------------------------------------------- machines and the rig
class Machine:
    def __init__(self, rig, name):
        self.rig, self.name = rig, name
        self.ns = rig.prefix + name[0]
        self.dir = os.path.join(rig.dir, name)
        self.init = None
        self.unshare = None

    def prepare(self, tandem):
        d = self.dir
        for sub in ("etc-corosync", "var-lib-corosync", "var-log-pacemaker", "dev", "log", "var-lib-tandem",
                    "ocf-extra/tandem"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for sub in ("cib", "pengine", "blackbox", "cores"):
            p = os.path.join(d, "var-lib-pacemaker", sub)
            os.makedirs(p, exist_ok=True)
            shutil.chown(p, "hacluster", "haclient")
            os.chmod(p, 0o750)
        for p in (os.path.join(d, "var-lib-pacemaker"), os.path.join(d, "var-log-pacemaker")):
            shutil.chown(p, "hacluster", "haclient")
            os.chmod(p, 0o770)
        for a in OCF_AGENTS:
            link = os.path.join(d, "ocf-extra", "tandem", a)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(tandem, link)

    def boot(self):
        """Start the machine: a fresh /run (as after a reboot), new namespaces."""
        run = os.path.join(self.dir, "run")
        shutil.rmtree(run, ignore_errors=True)
        os.makedirs(run)
        for sub, mode in (("crm", 0o750), ("resource-agents", 0o1755), ("lock", 0o1777), ("tandem", 0o755)):
            p = os.path.join(run, sub)
            os.makedirs(p)
            os.chmod(p, mode)
        shutil.chown(os.path.join(run, "crm"), "hacluster", "haclient")
        self.unshare = REG.popen(
            ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc",
             NODE_INIT, self.name, self.dir],
            env=dict(os.environ, BENCH_PY=PY), stdout=open(os.path.join(self.dir, "log", "init.out"), "a"),
            stderr=subprocess.STDOUT)
        up = self.unshare.pid

        def child():
            try:
                kids = open(f"/proc/{up}/task/{up}/children").read().split()
                k = int(kids[0])
                return k if "python" in os.path.basename(os.readlink(f"/proc/{k}/exe")) else None
            except (OSError, IndexError, ValueError):
                return None

        self.init = wait_for(child, 10, what=f"{self.name} init")
        if self not in REG.machines:
            REG.machines.append(self)

    def cmd(self, args):
        return ["nsenter", "-t", str(self.init), "-n", "-m", "-u", "-p", "--"] + args

    def exec(self, args, check=True, timeout=60, env=None):
        r = subprocess.run(self.cmd(args), capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, **(env or {})))
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(args)}: exit {r.returncode}: {r.stdout}{r.stderr}")
        return r

    def popen(self, args, logname, env=None):
        return REG.popen(self.cmd(args), stdin=subprocess.DEVNULL,
                         stdout=open(os.path.join(self.dir, "log", logname), "a"), stderr=subprocess.STDOUT,
                         env=dict(os.environ, **(env or {})))

    def kill(self):
        if self.init:
            try:
                os.kill(self.init, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reap(self):
        if self.unshare:
            try:
                self.unshare.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.init = None

    def unmount_leftovers(self):
        """The machine's mounts live in its own mount namespace and die with it; nothing to do
        on the host, but /run's files may belong to hacluster: leave them to the rig's rmtree."""

    def has_vip(self):
        r = sh(["ip", "-n", self.ns, "-o", "-4", "addr", "show", "dev", "lan0"], check=False)
        return f" {VIP}/" in r.stdout

    def link(self, up):
        sh(["ip", "-n", self.ns, "link", "set", "lan0", "up" if up else "down"])


class Rig:
    def __init__(self, names, workdir, tag):
        # BENCH_NS_PREFIX: `make bench` names every namespace of a run alike (its sweep finds leftovers)
        self.prefix = os.environ.get("BENCH_NS_PREFIX", f"pk{os.getpid() % 100000}") + tag
        self.dir = os.path.join(workdir, tag)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.machines = [Machine(self, n) for n in names]
        self.ns_br, self.ns_c = self.prefix + "br", self.prefix + "c"

    def by_name(self, name):
        return next(m for m in self.machines if m.name == name)

    def up(self, tandem):
        for ns in [self.ns_br, self.ns_c] + [m.ns for m in self.machines]:
            sh(["ip", "netns", "add", ns])
            REG.netns.append(ns)
            sh(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        sh(["ip", "-n", self.ns_br, "link", "add", "br0", "type", "bridge", "forward_delay", "0"])
        sh(["ip", "-n", self.ns_br, "link", "set", "br0", "up"])
        for name, ns in [(m.name, m.ns) for m in self.machines] + [("client", self.ns_c)]:
            port = "p-" + name
            sh(["ip", "-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", port, "netns", self.ns_br])
            sh(["ip", "-n", self.ns_br, "link", "set", port, "master", "br0", "up"])
            sh(["ip", "-n", ns, "addr", "add", ADDR[name] + "/24", "dev", "lan0"])
            sh(["ip", "-n", ns, "link", "set", "lan0", "up"])
        for m in self.machines:
            m.prepare(tandem)

    def holders(self):
        return [m for m in self.machines if m.init and m.has_vip()]


# ---------------------------------------------------------------- the cluster managers
def tandem_config(rig, keepalive, deadtime, key):
    return f"""cluster demo
node alpha beta
authkey {key}
keepalive {keepalive}ms
deadtime {deadtime}ms
warntime {deadtime * 3 // 5}ms
initdead {max(2000, 2 * deadtime)}ms
auto_failback off
realtime off
ucast lan0 {ADDR['alpha']}
ucast lan0 {ADDR['beta']}
logfacility none
logfile /run/tandem/tandem.log
group web alpha ip::{VIP}/24/lan0 script::{SVC}::{VIP}::{PORT}::-::/run/svc
"""


class Tandem:
    name = "tandem"

    def __init__(self, rig, tandem, keepalive, deadtime):
        self.rig, self.tandem = rig, tandem
        key = os.path.join(rig.dir, "authkey")
        sh([tandem, "keygen", key])
        self.conf = os.path.join(rig.dir, "tandem.conf")
        with open(self.conf, "w") as f:
            f.write(tandem_config(rig, keepalive, deadtime, key))

    def start(self, m):
        m.exec([self.tandem, "daemon", "-c", self.conf, "--node", m.name, "--socket", "/run/tandem/tandem.sock",
                "--state-dir", os.path.join(m.dir, "var-lib-tandem"), "--pidfile", "/run/tandem/tandem.pid"])

    def start_all(self):
        for m in self.rig.machines:
            m.boot()
        for m in self.rig.machines:
            self.start(m)

    def ready(self, m):
        r = m.exec([self.tandem, "status", "-s", "/run/tandem/tandem.sock", "--json"], check=False, timeout=10)
        try:
            return any(p.get("state") == "up" for p in json.loads(r.stdout).get("peers", []))
        except (ValueError, AttributeError):
            return False

    def detect_us(self, m, t0):
        """When survivor m declared the peer dead (its log, RFC 3339 UTC)."""
        for line in read_lines(os.path.join(m.dir, "run", "tandem", "tandem.log")):
            if re.search(r"peer \S+: \S+ -> dead", line):
                t = parse_rfc3339_us(line.split(" ", 1)[0])
                if t and t >= t0:
                    return t
        return None


class Pacemaker:
    name = "pacemaker"

    def __init__(self, rig, tandem, token, agents, cib_out):
        self.rig, self.tandem, self.token, self.agents = rig, tandem, token, agents
        names = [m.name for m in rig.machines]
        nodes = "".join(f"  node {{\n    name: {n}\n    nodeid: {i + 1}\n    ring0_addr: {ADDR[n]}\n  }}\n"
                        for i, n in enumerate(names))
        quorum = "  provider: corosync_votequorum\n" + ("  two_node: 1\n" if len(names) == 2 else "")
        conf = f"""# generated by bench/pacemaker.py from tandem's demo: token = tandem's deadtime
totem {{
  version: 2
  cluster_name: demo
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: {token}
}}
nodelist {{
{nodes}}}
quorum {{
{quorum}}}
logging {{
  to_stderr: no
  to_logfile: yes
  logfile: /var/log/pacemaker/corosync.log
  to_syslog: no
  timestamp: hires
}}
"""
        for m in rig.machines:
            with open(os.path.join(m.dir, "etc-corosync", "corosync.conf"), "w") as f:
                f.write(conf)
        # The CIB: tandem's export of the same group.
        tconf = os.path.join(rig.dir, "tandem.conf")
        with open(tconf, "w") as f:
            f.write(tandem_config(rig, 100, token, "/etc/tandem/authkey"))
        cib = sh([tandem, "export", "pacemaker", "-c", tconf]).stdout
        if agents == "tandem":
            cib = cib.replace('class="ocf" provider="heartbeat" type="IPaddr2"', 'class="ocf" provider="tandem" type="ip"')
        self.cib = os.path.join(rig.dir, "cib.xml")
        with open(self.cib, "w") as f:
            f.write(cib)
        if cib_out:
            shutil.copy(self.cib, cib_out)

    def start(self, m):
        m.popen(["corosync", "-f"], "corosync.out")
        wait_for(lambda: "Quorate:" in m.exec(["corosync-quorumtool", "-s"], check=False).stdout, 30,
                 step=0.2, what=f"corosync on {m.name}")
        m.popen(["pacemakerd"], "pacemakerd.out",
                env={"PCMK_logfile": "/var/log/pacemaker/pacemaker.log", "PCMK_logfacility": "none"})

    def start_all(self):
        for m in self.rig.machines:
            m.boot()
        for m in self.rig.machines:
            self.start(m)

    def crm_mon(self, m):
        return m.exec(["crm_mon", "-1"], check=False, timeout=30).stdout

    def online(self, m):
        """The machine's view: a DC, and the nodes online."""
        out = self.crm_mon(m)
        if "Current DC: NONE" in out or "Current DC:" not in out:
            return []
        line = next((l for l in out.splitlines() if "Online: [" in l), "")
        return line.split("[", 1)[1].split("]", 1)[0].split() if "[" in line else []

    def ready(self, m):
        others = [x for x in self.rig.machines if x.init and x is not m]
        return any(m.name in self.online(o) for o in others) and len(self.online(m)) >= 2

    def load(self, m):
        shutil.copy(self.cib, os.path.join(m.dir, "run", "cib.xml"))
        # As the export's header says. A whole-CIB replace (cibadmin -R -x) is refused by a
        # running cluster: "Update was older than existing configuration" (its epoch is newer).
        m.exec(["cibadmin", "-R", "-o", "configuration", "-x", "/run/cib.xml"])

    def detect_us(self, m, t0):
        """When survivor m's corosync formed the membership without the dead node."""
        for line in read_lines(os.path.join(m.dir, "var-log-pacemaker", "corosync.log")):
            if "A new membership" in line and "Members left" in line:
                t = parse_syslog_us(line)
                if t and t >= t0:
                    return t
        return None


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def parse_rfc3339_us(s):
    try:
        d = datetime.datetime.strptime(s.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        return int(d.timestamp() * 1e6)
    except ValueError:
        return None


def parse_syslog_us(line):
    """corosync's hires stamp `Nov 29 18:21:31.087` (local time, this year)."""
    m = re.match(r"(\w{3} +\d+ \d\d:\d\d:\d\d\.\d+)", line)
    if not m:
        return None
    try:
        d = datetime.datetime.strptime(f"{datetime.date.today().year} {m.group(1)}", "%Y %b %d %H:%M:%S.%f")
        return int(d.timestamp() * 1e6)
    except ValueError:
        return None


# ---------------------------------------------------------------- the client and a failover
class Probe:
    def __init__(self, rig, probe, path):
        self.path, self.stop = path, path + ".stop"
        if os.path.exists(self.stop):
            os.unlink(self.stop)
        self.p = REG.popen(["ip", "netns", "exec", rig.ns_c, probe, f"{VIP}:{PORT}", "--interval-ms", "10",
                            "--timeout-ms", "25", "--duration-ms", "120000", "--until-file", self.stop],
                           stdout=open(path, "w"), stderr=subprocess.DEVNULL)

    def oks(self):
        out = []
        for line in read_lines(self.path):
            w = line.split()
            if len(w) >= 3 and w[1] == "ok" and w[0].isdigit():
                out.append((int(w[0]), w[2]))
        return out

    def first_from(self, who, t0):
        return next((t for t, w in self.oks() if t >= t0 and w in who), None)

    def finish(self):
        open(self.stop, "w").close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
        oks = self.oks()
        return max((b[0] - a[0] for a, b in zip(oks, oks[1:])), default=None)


def ask(rig, probe):
    r = sh(["ip", "netns", "exec", rig.ns_c, probe, f"{VIP}:{PORT}", "--duration-ms", "1", "--timeout-ms", "200"],
           check=False, timeout=10)
    for line in r.stdout.splitlines():
        w = line.split()
        if len(w) >= 3 and w[1] == "ok" and w[0].isdigit():
            return w[2]
    return None


def ms(a, b):
    return None if a is None or b is None else round((a - b) / 1000.0, 1)


def failover(rig, mgr, probe, i, rejoin=True):
    """Kill the holder; measure; reboot it (when `rejoin`). Returns the run's figures."""
    holders = rig.holders()
    if len(holders) != 1:
        raise RuntimeError(f"{len(holders)} holders before run {i}")
    h = holders[0]
    survivors = [m for m in rig.machines if m is not h]
    pr = Probe(rig, probe, os.path.join(rig.dir, f"probe-{mgr.name}-{i}.log"))
    wait_for(lambda: len(pr.oks()) >= 30, 20, what="probe answers")
    t0 = now_us()
    h.link(False)
    h.kill()
    try:
        t_ans = wait_for(lambda: pr.first_from({m.name for m in survivors}, t0), 60, step=0.01,
                         what=f"an answer from {', '.join(m.name for m in survivors)}")
    finally:
        time.sleep(1.0)
        gap = pr.finish()
    new = next((m for m in survivors if m.has_vip()), None)
    dets = [t for t in (mgr.detect_us(m, t0) for m in survivors) if t]
    res = {"run": i, "from": h.name, "to": new.name if new else None, "outage_ms": ms(gap, 0),
           "detect_ms": ms(min(dets) if dets else None, t0), "answer_ms": ms(t_ans, t0)}
    log(f"  {mgr.name} run {i} {h.name}->{res['to']}: outage {res['outage_ms']} ms, detect {res['detect_ms']} ms,"
        f" first answer {res['answer_ms']} ms")
    h.reap()
    sh(["ip", "-n", h.ns, "addr", "del", VIP + "/24", "dev", "lan0"], check=False)  # a reboot forgets it
    h.link(True)
    if rejoin:
        h.boot()
        mgr.start(h)
        wait_for(lambda: mgr.ready(h), 120, step=0.5, what=f"{h.name} rejoined")
        time.sleep(2.0)
    return res


def summary(vals):
    v = [x for x in vals if x is not None]
    if not v:
        return None
    return {"median": round(statistics.median(v), 1), "min": min(v), "max": max(v), "n": len(v)}


def start_cluster(rig, mgr, probe):
    """Start every machine; for Pacemaker load the CIB; wait for the group on alpha."""
    t = time.monotonic()
    mgr.start_all()
    first = rig.machines[0]
    wait_for(lambda: all(mgr.ready(m) for m in rig.machines), 180, step=0.5, what="all machines in the cluster")
    if isinstance(mgr, Pacemaker):
        mgr.load(first)
    wait_for(lambda: [m.name for m in rig.holders()] == ["alpha"] and ask(rig, probe) == "alpha", 120, step=0.2,
             what="the group on alpha, answering")
    log(f"  {mgr.name}: cluster up, group on alpha after {time.monotonic() - t:.1f}s")


# ---------------------------------------------------------------- commands
def selftest(a, out, tandem, probe):
    names = ["alpha", "beta", "gamma"][:a.nodes]
    rig = Rig(names, out, "selftest")
    rig.up(tandem)
    mgr = Pacemaker(rig, tandem, a.token, "stock", os.path.join(out, "selftest-cib.xml"))
    start_cluster(rig, mgr, probe)
    mon = mgr.crm_mon(rig.machines[0])
    log("  crm_mon:\n" + "\n".join("    " + l for l in mon.splitlines() if l.strip()))
    res = failover(rig, mgr, probe, 1, rejoin=False)
    new = rig.by_name(res["to"]) if res["to"] else None
    mon = mgr.crm_mon(new) if new else ""
    ok = res["to"] in names[1:] and ask(rig, probe) == res["to"] and f"Started {res['to']}" in mon
    res["crm_mon_after"] = mon
    with open(os.path.join(out, "selftest.json"), "w") as f:
        json.dump(res, f, indent=1)
    log(f"selftest: {'PASS' if ok else 'FAIL'}: the group moved from alpha to {res['to']}, "
        f"client-observed outage {res['outage_ms']} ms")
    return 0 if ok else 1


def bench(a, out, tandem, probe):
    variants = [("tandem", None), ("pacemaker", "tandem"), ("pacemaker", "stock")]
    results = {"command": " ".join(sys.argv), "runs": a.runs, "token_ms": a.token, "keepalive_ms": a.keepalive,
               "when": time.strftime("%Y-%m-%d %H:%M:%S"), "variants": []}
    for i, (kind, agents) in enumerate(variants):
        label = "tandem" if kind == "tandem" else f"Pacemaker + corosync ({'ocf:tandem:ip' if agents == 'tandem' else 'ocf:heartbeat:IPaddr2'} + ocf:tandem:script)"
        log(f"bench: {label}")
        rig = Rig(["alpha", "beta"], out, f"b{i}")
        entry = {"label": label, "runs": []}
        try:
            rig.up(tandem)
            mgr = Tandem(rig, tandem, a.keepalive, a.token) if kind == "tandem" else \
                Pacemaker(rig, tandem, a.token, agents, None)
            start_cluster(rig, mgr, probe)
            for r in range(1, a.runs + 1):
                entry["runs"].append(failover(rig, mgr, probe, r, rejoin=r < a.runs))
        except (RuntimeError, TimeoutError) as e:
            log(f"  FAILED: {e}")
            entry["error"] = str(e)
        finally:
            REG.cleanup()
        for k in ("outage", "detect", "answer"):
            entry[k] = summary([r.get(k + "_ms") for r in entry["runs"]])
        results["variants"].append(entry)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = [f"Failover of the demo group (192.0.2.50 + TCP service) when the holder dies (link down + SIGKILL of "
          f"its machine), two machines, tandem keepalive {a.keepalive} ms / deadtime {a.token} ms vs corosync "
          f"token {a.token} ms; {a.runs} runs; client probes every 10 ms (25 ms timeout).", "",
          "| cluster manager | outage median (min-max) ms | detection median ms | first answer median ms |",
          "|---|---|---|---|"]
    for e in results["variants"]:
        o, d, s = e.get("outage"), e.get("detect"), e.get("answer")
        cell = f"{o['median']} ({o['min']}-{o['max']})" if o else "n/a"
        md.append(f"| {e['label']} | {cell} | {d['median'] if d else 'n/a'} | {s['median'] if s else 'n/a'} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if all("error" not in e for e in results["variants"]) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["selftest", "bench"])
    p.add_argument("--nodes", type=int, default=3, choices=[2, 3])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--token", type=int, default=500)
    p.add_argument("--keepalive", type=int, default=100)
    p.add_argument("--out", default=os.path.join(REPO, "bench", "out", "pacemaker"))
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("pacemaker.py: run as root (namespaces)")
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    tandem, probe = find_tandem(), find_probe(out)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    try:
        return selftest(a, out, tandem, probe) if a.command == "selftest" else bench(a, out, tandem, probe)
    finally:
        REG.cleanup()


if __name__ == "__main__":
    sys.exit(main())
