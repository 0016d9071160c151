#!/usr/bin/python3
"""tandem vs keepalived vs heartbeat 3.0.6: the benchmark harness behind `make bench`.

Every tool runs in the same rig: network namespaces for a bridge, two nodes and a client,
a service LAN 192.0.2.0/24 (alpha .1, beta .2, client .100, floating address .50) and a
dedicated heartbeat link 198.51.100.0/24 between the nodes. Each node is a "machine" with
its own network, mount, UTS and PID namespace (bench/node-init.sh). The service is the
same small socat server (tests/tools/svc) started by each tool's own mechanism.

Phases (see docs/benchmarks.md):
  1. parallel: every tool and setting up at once, each in its own rig: idle footprint
     (PSS/RSS, processes, CPU, wakeups, heartbeat packets), then (c) 20 % loss on every
     heartbeat path and (d) the same with all CPUs saturated by stress-ng, counting false
     failovers (address events, service moves).
  2. failover: sequential, one rig at a time: (b) planned switch-over and (a) active node
     dies, BENCH_RUNS times each, with a client probing every 10 ms.
  3. scale: (a) with 1, 10 and 100 floating addresses in the group (BENCH_SCALE_N), per tool:
     outage, every address up, the survivor's CPU time for the takeover, PSS.
  4. guests: bench/guests.py (overhead of a guest, start to first HTTP answer against
     systemd-nspawn, memory per idle guest).
  5. pacemaker: bench/pacemaker.py bench (the same failover under Pacemaker + corosync).
  6. ping: bench/ping.py (the holder loses its uplink; tandem's ping targets against
     keepalived's track_interface; it uses this module's rig and tools).
  7. fencing: bench/fencing.py (tandem and heartbeat fencing a frozen holder through the same
     BMC, ipmi_sim, and partitions; BENCH_RUNS runs and partitions each).
  8. svccrash: bench/svccrash.py (a crashed service to its first answer: tandem's monitor
     against keepalived's vrrp_script).
  9. hbmixed: bench/hbmixed.sh (a mixed heartbeat 3.0.6 / tandem cluster's failover in both
     directions, next to pure heartbeat and pure tandem; tests/hb_bench.rs).
 10. watchdog: bench/watchdog.py (failover with watchdog self-fencing against the watchdog
     TIMEOUT, next to the built-in IPMI fencing, in the VM rig's QEMU VMs; tests/vm).
Each phase runs alone too (BENCH_PHASES=guests, `make bench PHASE=guests`): the results of
the others are kept from the last bench/out/results.json, and each phase's tables in
docs/benchmarks.md have markers of their own, so only the phases that ran are rewritten.

Environment: BENCH_RUNS (5), BENCH_SOAK_S (120), BENCH_IDLE_S (60), BENCH_QUICK=1
(1 run, 10 s soaks, 10 s idle), BENCH_ONLY (regex on "tool setting"), BENCH_PHASES
(default "soak,failover,scale,guests,pacemaker,ping,fencing,svccrash,hbmixed,watchdog"), BENCH_SCALE_N ("1,10,100"), BENCH_SCALE_RUNS (3),
BENCH_PCMK_RUNS (BENCH_RUNS), BENCH_UPDATE_DOCS (default 1 unless quick), BENCH_PROBE_TIMEOUT_MS (25),
BENCH_TANDEM_EXTRA (extra tandem.conf lines, ";"-separated, for experiments), TANDEM (binary),
PROBE (binary, built by run.sh), BENCH_OUT (default bench/out).
Only standard library. Root required.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import results

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench", "out"))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = int(os.environ.get("BENCH_RUNS", "1" if QUICK else "5"))
SOAK_S = float(os.environ.get("BENCH_SOAK_S", "10" if QUICK else "120"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "10" if QUICK else "60"))
# The namespaces' prefix: this run's (run.sh sweeps by it), or the parent bench.py's.
NS_PID = int(os.environ.get("BENCH_NS_PID", str(os.getpid())))
ONLY = re.compile(os.environ.get("BENCH_ONLY", ".*"))
ALL_PHASES = ("soak", "failover", "scale", "guests", "pacemaker", "ping", "fencing", "svccrash", "hbmixed", "watchdog")
PHASES = [x.strip() for x in os.environ.get("BENCH_PHASES", ",".join(ALL_PHASES)).split(",") if x.strip()]
PCMK_RUNS = int(os.environ.get("BENCH_PCMK_RUNS", str(RUNS)))
UPDATE_DOCS = os.environ.get("BENCH_UPDATE_DOCS", "0" if QUICK else "1") not in ("", "0")
TANDEM = os.environ.get("TANDEM", os.path.join(REPO, "target/x86_64-unknown-linux-gnu/release/tandem"))
PROBE = os.environ.get("PROBE", os.path.join(OUT, "probe"))
WAKECOST = os.environ.get("WAKECOST", os.path.join(OUT, "wakecost"))
SVC = os.path.join(REPO, "tests", "tools", "svc")
NODE_INIT = os.path.join(HERE, "node-init.sh")
HB_BIN = "/usr/libexec/heartbeat/heartbeat"
KA_BIN = "/usr/sbin/keepalived"

VIP, PORT = "192.0.2.50", 8080


def vip_list(n):
    """The group's floating addresses: VIP (which the service binds) and n - 1 more on the
    service LAN (192.0.2.101 up; at most 100 in all)."""
    return [VIP] + [f"192.0.2.{101 + i}" for i in range(max(0, min(n, 100) - 1))]


LAN = {"alpha": "192.0.2.1", "beta": "192.0.2.2", "client": "192.0.2.100"}
HB = {"alpha": "198.51.100.1", "beta": "198.51.100.2"}
LOSS_PCT = 20
PROBE_MS = 10
# The client's connect/read timeout in the failover runs: an attempt sent to the dead node's MAC
# just before the gratuitous ARP hangs until this timeout, so it bounds the time resolution.
PROBE_TIMEOUT_MS = int(os.environ.get("BENCH_PROBE_TIMEOUT_MS", "25"))

# The settings ladder, slowest first (the headline picks the fastest loss-proof one).
# tandem 10ms/30ms is an extra rung, reported in a table of its own; it is measured like the
# others. The 5 ms rungs are tandem's fastest, on the ladder like the rest.
SETTINGS = [
    ("tandem", "1s/3s", {"ka": 1000, "dt": 3000}),
    ("tandem", "100ms/300ms", {"ka": 100, "dt": 300}),
    ("tandem", "20ms/100ms", {"ka": 20, "dt": 100}),
    ("tandem", "10ms/50ms", {"ka": 10, "dt": 50}),
    ("tandem", "10ms/30ms", {"ka": 10, "dt": 30}),
    ("tandem", "5ms/35ms", {"ka": 5, "dt": 35}),
    ("tandem", "5ms/25ms", {"ka": 5, "dt": 25}),
    ("keepalived", "advert_int 1", {"adv": "1", "ka": 1000, "dt": 3000}),
    ("keepalived", "advert_int 0.1", {"adv": "0.1", "ka": 100, "dt": 300}),
    ("keepalived", "advert_int 0.05", {"adv": "0.05", "ka": 50, "dt": 150}),
    ("keepalived", "advert_int 0.01", {"adv": "0.01", "ka": 10, "dt": 30}),
    ("heartbeat", "2s/30s", {"ka": 2000, "dt": 30000}),
    ("heartbeat", "100ms/500ms", {"ka": 100, "dt": 500}),
    ("heartbeat", "100ms/201ms", {"ka": 100, "dt": 201}),
]
HEADLINE_EXCLUDE = {("tandem", "10ms/30ms")}  # an extra rung, not part of the compared ladder


def now_us():
    return time.time_ns() // 1000


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- cleanup registry
class Registry:
    """Everything this run created, so that it can be undone even on failure or Ctrl-C."""

    def __init__(self):
        self.procs = []  # Popen objects we started
        self.netns = []  # netns names we created

    def popen(self, *a, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(*a, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                pass
        self.procs = []
        for ns in reversed(self.netns):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.netns = []


REG = Registry()


def sh(args, check=True, input=None, timeout=60, quiet=False):
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[:500]}")
    return r


def wait_for(pred, timeout, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- nodes and rigs
class Node:
    def __init__(self, rig, name, ns):
        self.rig, self.name, self.ns = rig, name, ns
        self.dir = os.path.join(rig.dir, name)
        self.lan, self.hb = LAN[name], HB[name]
        self.unshare = None
        self.init = None
        self.devlog = os.path.join(self.dir, "log", "devlog")
        self.boot_us = 0

    @property
    def peer(self):
        return self.rig.beta if self is self.rig.alpha else self.rig.alpha

    def prepare(self):
        d = self.dir
        for sub in ("etc-keepalived", "run", "dev", "log", "etc-tandem", "var-lib-tandem"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        if not os.path.exists(os.path.join(d, "etc-ha.d")):
            sh(["cp", "-a", "/etc/ha.d", os.path.join(d, "etc-ha.d")])
        if not os.path.exists(os.path.join(d, "var-lib-heartbeat")):
            sh(["cp", "-a", "/var/lib/heartbeat", os.path.join(d, "var-lib-heartbeat")])
            # A host that has run heartbeat has its identity and peers there: each node starts afresh.
            for f in ("hb_uuid", "hb_generation", "hostcache", "delhostcache"):
                try:
                    os.unlink(os.path.join(d, "var-lib-heartbeat", f))
                except FileNotFoundError:
                    pass

    def boot(self):
        """Start the node's "machine": fresh /run (as after a reboot), new mount/UTS/PID namespaces."""
        run = os.path.join(self.dir, "run")
        shutil.rmtree(run, ignore_errors=True)
        os.makedirs(run)
        for sub in ("heartbeat", "heartbeat/ccm", "heartbeat/crm", "heartbeat/dopd", "crm"):
            p = os.path.join(run, sub)
            os.makedirs(p)
            shutil.chown(p, "hacluster", "haclient")
            os.chmod(p, 0o750)
        os.makedirs(os.path.join(run, "tandem"))
        for sub, mode in (("resource-agents", 0o1755), ("lock", 0o1777)):  # as tmpfiles.d would
            os.makedirs(os.path.join(run, sub))
            os.chmod(os.path.join(run, sub), mode)
        env = dict(os.environ, BENCH_PY=PY)
        self.unshare = REG.popen(
            ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--uts", "--pid", "--fork",
             "--mount-proc", NODE_INIT, self.name, self.dir, self.devlog],
            env=env, stdout=open(os.path.join(self.dir, "log", "init.out"), "a"), stderr=subprocess.STDOUT)
        up = self.unshare.pid

        def child():
            try:
                kids = open(f"/proc/{up}/task/{up}/children").read().split()
            except OSError:
                return None
            if not kids:
                return None
            k = int(kids[0])
            try:
                exe = os.readlink(f"/proc/{k}/exe")
            except OSError:
                return None
            return k if "python" in os.path.basename(exe) else None

        self.init = wait_for(child, 10, what=f"{self.name} init")
        self.boot_us = now_us()

    def exec(self, cmd, check=True, timeout=60):
        return sh(["nsenter", "-t", str(self.init), "-n", "-m", "-u", "-p", "--"] + cmd, check=check, timeout=timeout)

    def popen(self, cmd, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        return subprocess.Popen(["nsenter", "-t", str(self.init), "-n", "-m", "-u", "-p", "--"] + cmd,
                                stdin=subprocess.DEVNULL, **kw)

    def kill(self):
        """SIGKILL the PID namespace's init: the kernel kills every process of the node at once."""
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

    def pids(self):
        """Processes of this node's PID namespace other than its init."""
        if not self.init:
            return []
        try:
            me = os.readlink(f"/proc/{self.init}/ns/pid")
        except OSError:
            return []
        out = []
        for e in os.listdir("/proc"):
            if not e.isdigit() or int(e) == self.init:
                continue
            try:
                if os.readlink(f"/proc/{e}/ns/pid") == me:
                    out.append(int(e))
            except OSError:
                pass
        return out

    def tool_pids(self):
        """The HA tool's own processes: everything in the node but the init, the service and shells."""
        res = []
        for p in self.pids():
            try:
                comm = open(f"/proc/{p}/comm").read().strip()
            except OSError:
                continue
            # the service, shells, and heartbeat's transient resource-agent helpers (IPaddr keeps a
            # send_arp running for ~5 s after a takeover)
            if comm in ("socat", "sh", "dash", "bash", "sleep", "ss", "svc", "svc-wrapper", "nsenter",
                        "IPaddr", "send_arp", "ResourceManager", "ip", "ifconfig"):
                continue
            res.append((p, comm))
        return res

    def has_vip(self):
        r = sh(["ip", "-n", self.ns, "-o", "-4", "addr", "show", "dev", "lan0"], check=False)
        return f" {VIP}/" in r.stdout


class Rig:
    def __init__(self, idx, tool, label, params, base):
        self.idx, self.tool_name, self.label, self.params = idx, tool, label, params
        self.vips = vip_list(params.get("n", 1))
        self.stamp = "n" in params  # the scale phase times the service's start
        self.tag = f"{tool}-{label}".replace(" ", "_").replace("/", "-") + (f"-n{len(self.vips)}" if len(self.vips) > 1 else "")
        self.dir = os.path.join(base, self.tag)
        p = f"tb{NS_PID % 100000}x{idx}"
        self.ns_br, self.ns_c = p + "br", p + "c"
        self.alpha = Node(self, "alpha", p + "a")
        self.beta = Node(self, "beta", p + "b")
        self.nodes = (self.alpha, self.beta)
        self.tool = TOOLS[tool](self)
        self.syslog = os.path.join(self.dir, "syslog.log")
        self.syslogd = None
        self.mons = {}

    def addr_log(self, node):
        return os.path.join(node.dir, "log", "addr.log")

    def up(self):
        os.makedirs(self.dir, exist_ok=True)
        for ns in (self.ns_br, self.alpha.ns, self.beta.ns, self.ns_c):
            sh(["ip", "netns", "add", ns])
            REG.netns.append(ns)
            sh(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        sh(["ip", "-n", self.ns_br, "link", "add", "br0", "type", "bridge", "forward_delay", "0"])
        sh(["ip", "-n", self.ns_br, "link", "set", "br0", "up"])
        for name, ns in (("alpha", self.alpha.ns), ("beta", self.beta.ns), ("client", self.ns_c)):
            port = "p-" + name
            sh(["ip", "-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", port, "netns", self.ns_br])
            sh(["ip", "-n", self.ns_br, "link", "set", port, "master", "br0", "up"])
            sh(["ip", "-n", ns, "addr", "add", LAN[name] + "/24", "dev", "lan0"])
            sh(["ip", "-n", ns, "link", "set", "lan0", "up"])
        sh(["ip", "-n", self.alpha.ns, "link", "add", "hb0", "type", "veth", "peer", "name", "hb0",
            "netns", self.beta.ns])
        for n in self.nodes:
            sh(["ip", "-n", n.ns, "addr", "add", n.hb + "/24", "dev", "hb0"])
            sh(["ip", "-n", n.ns, "link", "set", "hb0", "up"])
            n.prepare()
            self.mons[n.name] = REG.popen(["ip", "netns", "exec", n.ns, PY, "-u", os.path.join(HERE, "nlmon.py")],
                                          stdout=open(self.addr_log(n), "a"))
        self.syslogd = REG.popen([PY, "-u", os.path.join(HERE, "syslogd.py"), self.syslog]
                                 + [f"{n.devlog}={n.name}" for n in self.nodes])
        wait_for(lambda: all(os.path.exists(n.devlog) for n in self.nodes)
                 and all(read_lines(self.addr_log(n)) for n in self.nodes), 10, what="monitors")
        self.tool.configure()

    def start_node(self, node):
        node.boot()
        self.tool.start(node)

    def start(self):
        for n in self.nodes:
            n.boot()
        for n in self.nodes:
            self.tool.start(n)

    def holders(self):
        return [n for n in self.nodes if n.has_vip()]

    def holder(self):
        h = self.holders()
        return h[0] if len(h) == 1 else None

    def wait_stable(self, timeout):
        """Exactly one node holds the address, the client gets answers from it, the other node is ready."""
        def ok():
            h = self.holder()
            if not h:
                return None
            r = sh(["ip", "netns", "exec", self.ns_c, PROBE, f"{VIP}:{PORT}", "--duration-ms", "1",
                    "--timeout-ms", "200"], check=False, timeout=10)
            if f" ok {h.name}" not in r.stdout:
                return None
            if not self.tool.ready(h.peer, 0):
                return None
            return h
        return wait_for(ok, timeout, step=0.2, what=f"{self.tag} stable")

    def start_probe(self, path, interval_ms=PROBE_MS, timeout_ms=PROBE_TIMEOUT_MS):
        stop = path + ".stop"
        try:
            os.unlink(stop)
        except FileNotFoundError:
            pass
        p = REG.popen(["ip", "netns", "exec", self.ns_c, PROBE, f"{VIP}:{PORT}", "--interval-ms", str(interval_ms),
                       "--timeout-ms", str(timeout_ms), "--duration-ms", "3600000", "--until-file", stop],
                      stdout=open(path, "w"))
        return p, stop

    @staticmethod
    def stop_probe(pr):
        p, stop = pr
        open(stop, "w").close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def set_loss(self, on):
        for n in self.nodes:
            if on:
                # output only: each direction of each path loses LOSS_PCT % once
                rules = (f"table inet tbloss {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n"
                         f"  udp dport 694 numgen random mod 100 < {LOSS_PCT} counter drop\n"
                         f"  ip protocol vrrp numgen random mod 100 < {LOSS_PCT} counter drop\n }}\n}}\n")
                sh(["ip", "netns", "exec", n.ns, "nft", "-f", "-"], input=rules)
            else:
                sh(["ip", "netns", "exec", n.ns, "nft", "delete", "table", "inet", "tbloss"], check=False)

    def loss_counters(self):
        tot = 0
        for n in self.nodes:
            r = sh(["ip", "netns", "exec", n.ns, "nft", "list", "table", "inet", "tbloss"], check=False)
            tot += sum(int(x) for x in re.findall(r"packets (\d+)", r.stdout))
        return tot

    def down(self):
        for n in self.nodes:
            n.kill()
        for n in self.nodes:
            n.reap()


# ---------------------------------------------------------------- the service wrapper
SVC_OPS_LOG = "/run/bench-svc-ops.log"


def write_svc_wrapper(path, stamp=False):
    """`stamp` (the scale phase): each operation's begin and end go to SVC_OPS_LOG in the node
    (two `date` runs per operation), so that the service's own start time can be told apart."""
    begin = f'echo "$(date +%s%N) begin $op" >> {SVC_OPS_LOG}\n' if stamp else ""
    end = f'echo "$(date +%s%N) end $op $rc" >> {SVC_OPS_LOG}\n' if stamp else ""
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
# The benchmark service (tests/tools/svc on {VIP}:{PORT}, answering the node's name) as one
# start|stop|status script for all three tools. Prints "running"/"stopped" on status for heartbeat.
op=${{1:-status}}
{begin}{SVC} {VIP} {PORT} "$(uname -n)" /run/bench-svc "$op"
rc=$?
{end}if [ "$op" = status ]; then
    if [ $rc = 0 ]; then echo running; else echo stopped; fi
fi
exit $rc
""")
    os.chmod(path, 0o755)


def svc_start_times(node, t0):
    """(begin, end) in µs of the first `start` of the service on `node` after t0 (stamped wrappers)."""
    b = e = None
    for line in read_lines(os.path.join(node.dir, "run", SVC_OPS_LOG.lstrip("/").split("/", 1)[1])):
        w = line.split()
        if len(w) >= 3 and w[0].isdigit() and w[2] == "start":
            t = int(w[0]) // 1000
            if t < t0:
                continue
            if w[1] == "begin" and b is None:
                b = t
            elif w[1] == "end" and b is not None and e is None:
                e = t
    return b, e


# ---------------------------------------------------------------- the tools
class Tandem:
    name = "tandem"
    garp_tail_s = 1.5  # 5 gratuitous ARPs per address, 200 ms apart (the loop's timers)
    # survivor's log line that shows it declared the peer dead
    detect_re = re.compile(r"peer \S+: \S+ -> dead")

    def __init__(self, rig):
        self.rig = rig
        self.key = os.path.join(rig.dir, "authkey")
        self.conf = os.path.join(rig.dir, "tandem.conf")

    def configure(self):
        r, p = self.rig, self.rig.params
        if not os.path.exists(self.key):
            sh([TANDEM, "keygen", self.key])
        wrapper = os.path.join(r.dir, "svc-wrapper")
        write_svc_wrapper(wrapper, stamp=r.stamp)
        ips = " \\\n    ".join(f"ip::{v}/24/lan0" for v in r.vips)
        with open(self.conf, "w") as f:
            f.write(f"""# generated by bench/bench.py
cluster bench
node alpha beta
authkey {self.key}
keepalive {p['ka']}ms
deadtime {p['dt']}ms
auto_failback off
udpport 694
ucast lan0 {LAN['alpha']}
ucast lan0 {LAN['beta']}
ucast hb0 {HB['alpha']}
ucast hb0 {HB['beta']}
logfacility daemon
group web alpha {ips} script::{wrapper}
""")
            # BENCH_TANDEM_EXTRA: extra config lines for experiments, e.g. "realtime off"
            for line in os.environ.get("BENCH_TANDEM_EXTRA", "").split(";"):
                if line.strip():
                    f.write(line.strip() + "\n")

    def sock(self):
        return "/run/tandem/tandem.sock"

    def start(self, node):
        node.exec([TANDEM, "daemon", "-c", self.conf, "--socket", self.sock(),
                   "--state-dir", os.path.join(node.dir, "var-lib-tandem"), "--pidfile", "/run/tandem/tandem.pid"])

    def ready(self, node, since_us):
        r = node.exec([TANDEM, "status", "-s", self.sock(), "--json"], check=False, timeout=10)
        try:
            st = json.loads(r.stdout)
            return any(p.get("state") == "up" for p in st.get("peers", []))
        except (ValueError, AttributeError):
            return False

    def planned(self, holder, i):
        # Like hb_standby: always `standby` on the holder. (A standby on the other node from
        # the run before ends when this node gives the group up.)
        return holder.popen([TANDEM, "standby", "-s", self.sock(), "all"])

    @staticmethod
    def planned_cmd(i):
        return "standby on the holder"

    def after_planned(self, holder):
        pass

    @staticmethod
    def binaries(_self=None):
        return [TANDEM]


class Keepalived:
    name = "keepalived"
    garp_tail_s = 6.0  # a second round of gratuitous ARPs garp_master_delay (5 s) after the transition
    detect_re = re.compile(r"Receive advertisement timeout|Entering MASTER STATE")

    def __init__(self, rig):
        self.rig = rig

    def configure(self):
        r, adv = self.rig, self.rig.params["adv"]
        wrapper = os.path.join(r.dir, "svc-wrapper")
        write_svc_wrapper(wrapper, stamp=r.stamp)
        # All of them as virtual_ipaddress; keepalived itself moves those beyond the room in
        # a VRRP packet to its excluded list (and says so in its log); all move together.
        vips = "\n".join(f"        {v}/24 dev lan0" for v in r.vips)
        for n, prio in ((r.alpha, 150), (r.beta, 100)):
            with open(os.path.join(n.dir, "etc-keepalived", "keepalived.conf"), "w") as f:
                f.write(f"""# generated by bench/bench.py (VRRP runs on the service LAN only: keepalived has one path)
global_defs {{
    router_id {n.name}
    script_user root
    enable_script_security
    vrrp_version 3
}}
vrrp_instance VI_1 {{
    state BACKUP
    nopreempt
    interface lan0
    virtual_router_id 51
    priority {prio}
    advert_int {adv}
    virtual_ipaddress {{
{vips}
    }}
    notify_master "{wrapper} start"
    notify_backup "{wrapper} stop"
    notify_fault "{wrapper} stop"
    notify_stop "{wrapper} stop"
}}
""")

    def start(self, node):
        node.ka_start_us = now_us()
        node.exec([KA_BIN, "-f", "/etc/keepalived/keepalived.conf"])

    def ready(self, node, since_us):
        since = max(since_us, getattr(node, "ka_start_us", 0))
        for line in read_lines(self.rig.syslog):
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] == node.name and int(parts[0]) >= since and \
                    ("Entering BACKUP STATE" in parts[2] or "Entering MASTER STATE" in parts[2]):
                return True
        return False

    def planned(self, holder, _i):
        pid = int(open(os.path.join(holder.dir, "run", "keepalived.pid")).read().split()[0])
        # pid is in the node's PID namespace: signal it from inside
        return holder.popen(["kill", "-TERM", str(pid)])

    def after_planned(self, holder):
        pidf = os.path.join(holder.dir, "run", "keepalived.pid")
        wait_for(lambda: not os.path.exists(pidf), 10, what="keepalived exit")
        self.start(holder)
        wait_for(lambda: self.ready(holder, 0), 30, step=0.05, what="keepalived back")

    @staticmethod
    def planned_cmd(_i):
        return "SIGTERM to keepalived on the master (priority-0 advert), then restart it"

    @staticmethod
    def binaries(_self=None):
        return [KA_BIN]


class Heartbeat:
    name = "heartbeat"
    garp_tail_s = 1.0  # IPaddr's send_arp runs on as a process of its own: waited for as a helper
    detect_re = re.compile(r"is dead|Dead node")

    def __init__(self, rig):
        self.rig = rig

    def configure(self):
        r, p = self.rig, self.rig.params
        for n in r.nodes:
            ha = os.path.join(n.dir, "etc-ha.d")
            peer = n.peer
            warn = max(p["dt"] // 2, p["ka"] + 1) if p["dt"] < 30000 else 10000
            initdead = max(2 * p["dt"], 2000) if p["dt"] < 30000 else 60000
            with open(os.path.join(ha, "ha.cf"), "w") as f:
                f.write(f"""# generated by bench/bench.py
logfacility daemon
keepalive {p['ka']}ms
deadtime {p['dt']}ms
warntime {warn}ms
initdead {initdead}ms
udpport 694
ucast lan0 {peer.lan}
ucast hb0 {peer.hb}
auto_failback off
node alpha
node beta
crm off
""")
            with open(os.path.join(ha, "authkeys"), "w") as f:
                f.write("auth 1\n1 sha1 tandem-bench-shared-secret\n")
            os.chmod(os.path.join(ha, "authkeys"), 0o600)
            with open(os.path.join(ha, "haresources"), "w") as f:
                f.write("alpha " + " ".join(f"{v}/24/lan0" for v in r.vips) + " svc-wrapper\n")
            write_svc_wrapper(os.path.join(ha, "resource.d", "svc-wrapper"), stamp=r.stamp)

    def start(self, node):
        node.exec([HB_BIN])

    def ready(self, node, since_us):
        r = node.exec(["cl_status", "nodestatus", node.peer.name], check=False, timeout=10)
        return r.stdout.strip() in ("active", "up")

    def planned(self, holder, _i):
        return holder.popen(["/usr/share/heartbeat/hb_standby", "all"])

    def after_planned(self, holder):
        pass

    @staticmethod
    def planned_cmd(_i):
        return "hb_standby all on the holder"

    @staticmethod
    def binaries(_self=None):
        return [HB_BIN]


TOOLS = {"tandem": Tandem, "keepalived": Keepalived, "heartbeat": Heartbeat}
WORK = None


# ---------------------------------------------------------------- log parsing
def probe_oks(path):
    oks, fails = [], 0
    for line in read_lines(path):
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit():
            if parts[1] == "ok":
                oks.append((int(parts[0]), parts[2]))
            elif parts[1] == "fail":
                fails += 1
    return oks, fails


def first_ok_from(path, who, t0):
    for t, w in probe_oks(path)[0]:
        if t >= t0 and w == who:
            return t
    return None


def addr_events(path, addr=VIP):
    ev = []
    for line in read_lines(path):
        parts = line.split()
        if len(parts) >= 3 and parts[1] in ("add", "del") and parts[2].split("/")[0] == addr:
            ev.append((int(parts[0]), parts[1]))
    return ev


def all_added(path, addrs, t0):
    """When the last of `addrs` was added after t0 (None while one is missing)."""
    first = {}
    for line in read_lines(path):
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "add" and parts[0].isdigit() and int(parts[0]) >= t0:
            a = parts[2].split("/")[0]
            if a in addrs and a not in first:
                first[a] = int(parts[0])
    return max(first.values()) if len(first) == len(addrs) else None


def log_first(rig, node, t0, regex):
    for line in read_lines(rig.syslog):
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] == node.name and parts[0].isdigit() and int(parts[0]) >= t0 \
                and regex.search(parts[2]):
            return int(parts[0]), parts[2]
    return None, None


def ms(a, b):
    return None if a is None or b is None else round((a - b) / 1000.0, 1)


summary = results.summary


# ---------------------------------------------------------------- phase: failovers
def failover_run(rig, kind, i, hook=None):
    """One fault of `kind` ("a": the holder dies, "b": planned switch-over), measured, and the
    cluster back to two nodes. `hook` (the scale phase) may measure more: `hook.before(s)` just
    before the fault, `hook.after(s, t0, res)` once the survivor answers."""
    h = rig.holder()
    if h is None:
        raise RuntimeError(f"{rig.tag}: no single holder before run {kind}{i}")
    s = h.peer
    plog = os.path.join(rig.dir, f"probe-{kind}{i}.log")
    pr = rig.start_probe(plog)
    wait_for(lambda: len(probe_oks(plog)[0]) >= 30, 20, what="probe answers")
    if hook:
        hook.before(s)
    cmd = None
    t0 = now_us()
    if kind == "a":
        sh(["ip", "-n", h.ns, "-batch", "-"], input="link set lan0 down\nlink set hb0 down\n")
        h.kill()
    else:
        cmd = rig.tool.planned(h, i)
    t_done = now_us()
    try:
        # heartbeat runs its IPaddr script once per address: ~1 s each under load
        wait_for(lambda: first_ok_from(plog, s.name, t0), rig.params["dt"] / 1000.0 + 30 + 2 * len(rig.vips), step=0.01,
                 what=f"{rig.tag} {kind}{i}: answer from {s.name}")
    finally:
        time.sleep(1.0)
        rig.stop_probe(pr)
    if cmd is not None:
        try:
            cmd.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cmd.kill()
    oks, fails = probe_oks(plog)
    gap = max((b[0] - a[0] for a, b in zip(oks, oks[1:])), default=None)
    t_ans = first_ok_from(plog, s.name, t0)
    t_addr = next((t for t, op in addr_events(rig.addr_log(s)) if t >= t0 and op == "add"), None)
    t_det, det_line = log_first(rig, s, t0, rig.tool.detect_re) if kind == "a" else (None, None)
    res = {"run": i, "from": h.name, "to": s.name, "t_fault_us": t0, "fault_cmd_ms": ms(t_done, t0),
           "outage_ms": None if gap is None else round(gap / 1000.0, 1),
           "detect_ms": ms(t_det, t0), "addr_ms": ms(t_addr, t0), "answer_ms": ms(t_ans, t0),
           "detect_line": det_line, "probe_fails": fails, "probe_log": os.path.relpath(plog, OUT)}
    if kind == "b":
        res["how"] = rig.tool.planned_cmd(i)
    if hook:
        hook.after(s, t0, res)
    log(f"  {rig.tag} {kind}{i} {h.name}->{s.name}: outage {res['outage_ms']} ms, detect {res['detect_ms']},"
        f" addr {res['addr_ms']}, answer {res['answer_ms']}"
        + (f", all {len(rig.vips)} addresses {res.get('all_addr_ms')}, takeover CPU {res.get('takeover_cpu_ms')} ms"
           if hook else ""))
    # back to a two-node cluster
    if kind == "a":
        h.reap()
        # a reboot forgets the floating addresses
        sh(["ip", "-n", h.ns, "-force", "-batch", "-"], check=False,
           input="".join(f"addr del {v}/24 dev lan0\n" for v in rig.vips))
        sh(["ip", "-n", h.ns, "-batch", "-"], input="link set lan0 up\nlink set hb0 up\n")
        t_r = now_us()
        rig.start_node(h)
        wait_for(lambda: rig.tool.ready(h, t_r), 60 + rig.params["dt"] / 1000.0, step=0.1,
                 what=f"{rig.tag}: {h.name} rejoined")
    else:
        rig.tool.after_planned(h)
    time.sleep(1.0 + 2 * rig.params["ka"] / 1000.0)
    rig.wait_stable(60 + rig.params["dt"] / 1000.0)
    return res


def phase_failover(entries):
    for e in entries:
        tool, label, params = e["tool"], e["setting"], e["params"]
        log(f"failover: {tool} {label}")
        rig = Rig(50 + e["idx"], tool, label, params, os.path.join(WORK, "failover"))
        t_start = time.monotonic()
        try:
            rig.up()
            rig.start()
            h = rig.wait_stable(120 + params["dt"] / 1000.0)
            time.sleep(2)
            # memory with only this rig running (its two nodes still share file pages)
            e["memory"] = {"active": {"node": h.name, **memory(h)}, "passive": {"node": h.peer.name, **memory(h.peer)}}
            for kind in ("b", "a"):
                runs = []
                for i in range(1, RUNS + 1):
                    try:
                        runs.append(failover_run(rig, kind, i))
                    except (RuntimeError, TimeoutError) as err:
                        log(f"  {rig.tag} {kind}{i}: FAILED: {err}")
                        runs.append({"run": i, "error": str(err)})
                        break
                e[kind] = {"runs": runs, **{k: summary([r.get(k + "_ms") for r in runs])
                                            for k in ("outage", "detect", "addr", "answer")}}
        except (RuntimeError, TimeoutError) as err:
            log(f"  {rig.tag}: FAILED: {err}")
            e.setdefault("errors", []).append(f"failover: {err}")
        finally:
            rig.down()
            REG.cleanup()
            e["failover_phase_s"] = round(time.monotonic() - t_start, 1)
            save_results()


# ---------------------------------------------------------------- phase: scale (N floating addresses)
SCALE_SETTINGS = [("tandem", "20ms/100ms"), ("tandem", "100ms/300ms"), ("keepalived", "advert_int 0.1"),
                  ("heartbeat", "100ms/500ms")]
SCALE_N = [int(x) for x in os.environ.get("BENCH_SCALE_N", "1,10,100").split(",")]
SCALE_RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "1" if QUICK else "3"))
SCALE_IDLE_S = 3.0  # the survivor's idle CPU rate alone, measured after each takeover


def node_cpu_ns(node):
    """(all, own): on-CPU time of the node's HA processes with their reaped children and the
    orphans the node's init reaped (heartbeat's send_arp); and of the HA processes alone."""
    tot = reaped_cpu_ns(node.init)
    own = 0
    for pid, _comm in node.tool_pids():
        c = task_stats(pid)[0]
        own += c
        tot += c + reaped_cpu_ns(pid)
    return tot, own


def node_extra_pids(node, base):
    """The node's processes other than `base` and the service (socat): helpers still running."""
    out = []
    for p in node.pids():
        if p in base:
            continue
        try:
            if open(f"/proc/{p}/comm").read().strip() == "socat":
                continue
        except OSError:
            continue
        out.append(p)
    return out


class ScaleHook:
    """The survivor's CPU time for a takeover: its HA processes' CPU from the fault until the
    takeover is over (every address up, every helper gone, and the tool's repeated gratuitous
    ARPs sent: `garp_tail_s` after the last address), less its idle rate alone (measured for
    SCALE_IDLE_S right after) over that time."""

    def __init__(self, rig):
        self.rig = rig

    def before(self, s):
        self.base = set(s.pids())
        self.c1, self.t1 = node_cpu_ns(s), time.monotonic()

    def after(self, s, t0, res):
        rig = self.rig
        path = rig.addr_log(s)
        vips = set(rig.vips)
        t_all = None
        try:
            t_all = wait_for(lambda: all_added(path, vips, t0), 30 + len(vips), step=0.05,
                             what=f"{rig.tag}: all {len(vips)} addresses on {s.name}")
        except TimeoutError as e:
            res["error_addrs"] = str(e)
        res["all_addr_ms"] = ms(t_all, t0)
        b, e = svc_start_times(s, t0)
        res["svc_begin_ms"], res["svc_start_ms"] = ms(b, t0), ms(e, b)
        if t_all:
            left = (t_all + rig.tool.garp_tail_s * 1e6 - now_us()) / 1e6
            if left > 0:
                time.sleep(left)
        try:
            wait_for(lambda: not node_extra_pids(s, self.base), 30 + len(vips), step=0.1,
                     what=f"{rig.tag}: {s.name}'s helpers to finish")
            res["settled"] = True
        except TimeoutError:
            res["settled"] = False
        c2, t2 = node_cpu_ns(s), time.monotonic()
        time.sleep(SCALE_IDLE_S)
        c3, t3 = node_cpu_ns(s), time.monotonic()
        res["takeover_window_s"] = round(t2 - self.t1, 2)
        for k, name in ((0, "takeover_cpu"), (1, "takeover_own_cpu")):
            idle = (c3[k] - c2[k]) / (t3 - t2)
            res[f"{name}_raw_ms"] = round((c2[k] - self.c1[k]) / 1e6, 1)
            res[f"{name}_idle_ms_per_s"] = round(idle / 1e6, 2)
            res[f"{name}_ms"] = round((c2[k] - self.c1[k] - idle * (t2 - self.t1)) / 1e6, 1)


def phase_scale(entries):
    """Failover (a) with 1, 10 and 100 floating addresses in the group, per tool."""
    by_key = {(e["tool"], e["setting"]): e for e in entries}
    t_start = time.monotonic()
    out = []
    for k, (tool, label) in enumerate(SCALE_SETTINGS):
        if not ONLY.search(f"{tool} {label}"):
            continue
        base = next(p for t, l, p in SETTINGS if (t, l) == (tool, label))
        for n in SCALE_N:
            params = dict(base, n=n)
            e = {"tool": tool, "setting": label, "n": n, "runs": []}
            if (tool, label) in by_key:
                e["binary"] = by_key[(tool, label)].get("binary")
            log(f"scale: {tool} {label}, {n} address{'es' if n > 1 else ''}")
            rig = Rig(100 + 10 * k + SCALE_N.index(n), tool, label, params, os.path.join(WORK, "scale"))
            t_rig = time.monotonic()
            try:
                rig.up()
                t_up = time.monotonic()
                rig.start()
                h = rig.wait_stable(120 + params["dt"] / 1000.0 + 2 * n)
                e["start_s"] = round(time.monotonic() - t_up, 1)
                time.sleep(2)
                e["memory"] = {"active": {"node": h.name, **memory(h)}}
                hook = ScaleHook(rig)
                for i in range(1, SCALE_RUNS + 1):
                    try:
                        e["runs"].append(failover_run(rig, "a", i, hook))
                    except (RuntimeError, TimeoutError) as err:
                        log(f"  {rig.tag} a{i}: FAILED: {err}")
                        e["runs"].append({"run": i, "error": str(err)})
                        break
            except (RuntimeError, TimeoutError) as err:
                log(f"  {rig.tag}: FAILED: {err}")
                e.setdefault("errors", []).append(f"scale: {err}")
            finally:
                rig.down()
                REG.cleanup()
            runs = e["runs"]
            for key in ("outage", "detect", "addr", "all_addr", "svc_begin", "svc_start", "answer", "takeover_cpu",
                        "takeover_own_cpu"):
                e[key] = summary([r.get(key + "_ms") for r in runs])
            e["phase_s"] = round(time.monotonic() - t_rig, 1)
            out.append(e)
            RESULTS["scale"] = {"entries": out, "runs": SCALE_RUNS, "n": SCALE_N}
            save_results()
    RESULTS["scale"] = {"entries": out, "runs": SCALE_RUNS, "n": SCALE_N,
                        "duration_s": round(time.monotonic() - t_start, 1)}
    save_results()


# ---------------------------------------------------------------- phases that are programs of their own
def run_waited(args, env):
    """Runs a phase's program to its end and returns its exit code; on Ctrl-C or SIGTERM it
    gets SIGTERM (it cleans up after itself), SIGKILL after 120 s, and the interrupt goes on."""
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, env=env)
    try:
        return p.wait()
    except KeyboardInterrupt:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        raise


def run_program(name, args, outdir):
    """Runs a phase that is a program of its own (bench/guests.py, bench/pacemaker.py; each
    cleans up after itself, also on SIGTERM) and takes its results.json into RESULTS[name]."""
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "results.json")
    if os.path.exists(path):
        os.unlink(path)
    # namespaces named like this run's, so that run.sh's sweep finds leftovers
    env = dict(os.environ, TANDEM=TANDEM, PROBE=PROBE, BENCH_NS_PREFIX=f"tb{os.getpid() % 100000}x")
    rc = run_waited(args, env)
    try:
        res = json.load(open(path))
    except (OSError, ValueError):
        res = {"error": f"no results (exit {rc})"}
    res["exit"] = rc
    RESULTS[name] = res
    save_results()


def phase_guests():
    run_program("guests", [PY, os.path.join(HERE, "guests.py"), "--out", os.path.join(OUT, "guests")]
                + (["--quick"] if QUICK else []), os.path.join(OUT, "guests"))


def phase_pacemaker():
    d = os.path.join(OUT, "pacemaker")
    run_program("pacemaker", [PY, os.path.join(HERE, "pacemaker.py"), "bench", "--runs", str(PCMK_RUNS), "--out", d], d)


def run_child(name, args):
    """A phase that writes its own results (BENCH_OUT/NAME.json, NAME.md) and its own section
    of docs/benchmarks.md; its namespaces carry this run's prefix (run.sh sweeps them)."""
    env = dict(os.environ, TANDEM=TANDEM, PROBE=PROBE, BENCH_NS_PID=str(NS_PID),
               BENCH_UPDATE_DOCS="1" if UPDATE_DOCS else "0")
    rc = run_waited([PY, os.path.join(HERE, f"{name}.py")] + args, env)
    RESULTS[f"{name}_rc"] = rc
    if rc != 0:
        log(f"{name}: bench/{name}.py exited {rc}")


def phase_ping():
    run_child("ping", [])


def phase_fencing():
    run_child("fencing", ["--runs", str(RUNS), "--partitions", str(RUNS)])


def phase_svccrash():
    run_child("svccrash", [])


def phase_watchdog():
    run_child("watchdog", ["--runs", "1"] if QUICK else [])


def phase_hbmixed():
    """bench/hbmixed.sh: its table goes to BENCH_OUT/hbmixed.txt (and docs/migrating-from-heartbeat.md
    by hand)."""
    env = dict(os.environ, BENCH_OUT=OUT)
    rc = run_waited(["sh", os.path.join(HERE, "hbmixed.sh")], env)
    RESULTS["hbmixed_rc"] = rc
    try:
        RESULTS["hbmixed"] = open(os.path.join(OUT, "hbmixed.txt")).read()
    except OSError:
        pass


# ---------------------------------------------------------------- phase: footprint and soaks
def task_stats(pid):
    cpu = ctx = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for t in tids:
        try:
            cpu += int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    ctx += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return cpu, ctx


def tx_packets(node):
    r = sh(["ip", "-n", node.ns, "-j", "-s", "link", "show"], check=False)
    try:
        links = json.loads(r.stdout)
    except ValueError:
        return {}
    return {l["ifname"]: l["stats64"]["tx"]["packets"] for l in links if l.get("ifname") in ("lan0", "hb0")}


def reaped_cpu_ns(pid):
    """CPU time of a process's reaped children (cutime + cstime, clock ticks) in ns."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[13]) + int(f[14])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0


def snapshot(rig):
    snap = {"t": time.monotonic(), "nodes": {}}
    for n in rig.nodes:
        procs = {}
        for pid, comm in n.tool_pids():
            cpu, ctx = task_stats(pid)
            procs[pid] = (comm, cpu + reaped_cpu_ns(pid), ctx)
        # short-lived helpers that exited are counted through whoever reaped them (the tool, or
        # the node's init for orphans)
        snap["nodes"][n.name] = {"procs": procs, "tx": tx_packets(n), "init_reaped": reaped_cpu_ns(n.init)}
    return snap


def memory(node):
    pss = rss = uss = 0
    comms = []
    for pid, comm in node.tool_pids():
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                    uss += int(line.split()[1])
            comms.append(comm)
        except OSError:
            pass
    return {"pss_kb": pss, "rss_kb": rss, "uss_kb": uss, "procs": len(comms), "comms": sorted(comms)}


def idle_figures(rig, s0, s1):
    dt = s1["t"] - s0["t"]
    cpu_ns = ctx = pk = 0
    stable = True
    per_link = {}
    per_node = {}
    for name in ("alpha", "beta"):
        a, b = s0["nodes"][name], s1["nodes"][name]
        if set(a["procs"]) != set(b["procs"]):
            stable = False
        n_cpu = n_ctx = 0
        for pid, (_c, cpu, cx) in b["procs"].items():
            if pid in a["procs"]:
                n_cpu += cpu - a["procs"][pid][1]
                n_ctx += cx - a["procs"][pid][2]
        n_cpu += b["init_reaped"] - a["init_reaped"]
        cpu_ns += n_cpu
        ctx += n_ctx
        # Per node: a VRRP master and backup work differently (the master's timer and send,
        # the backup's wakeup on arrival); the cost of each wakeup shows it.
        per_node[name] = {"cpu_ms_per_min": round(n_cpu / 1e6 * 60.0 / dt, 2), "wakeups_per_s": round(n_ctx / dt, 1),
                          "us_per_wakeup": round(n_cpu / 1e3 / n_ctx, 1) if n_ctx else None}
        for ifn, v in b["tx"].items():
            d = v - a["tx"].get(ifn, v)
            pk += d
            per_link[f"{name}:{ifn}"] = round(d / dt, 1)
    h = rig.holder() or rig.alpha
    return {"window_s": round(dt, 1), "cpu_ms_per_min": round(cpu_ns / 1e6 * 60.0 / dt, 2),
            "wakeups_per_s": round(ctx / dt, 1), "hb_pkts_per_s": round(pk / dt, 1), "tx_pkts_per_s": per_link,
            "per_node": per_node,
            "process_set_stable": stable, "active": {"node": h.name, **memory(h)},
            "passive": {"node": h.peer.name, **memory(h.peer)}}


def soak_figures(rig, t0, t1, plog):
    """False failovers in [t0, t1 + 2 s]: every time the address is added to a node, the service moved."""
    t_end = t1 + 2_000_000
    adds = 0
    evs = []
    for n in rig.nodes:
        for t, op in addr_events(rig.addr_log(n)):
            evs.append((t, n.name, op))
            if t0 <= t <= t_end and op == "add":
                adds += 1
    evs.sort()
    held = {"alpha": False, "beta": False}
    dual_us, last = 0, t0
    for t, name, op in evs + [(t_end, None, None)]:
        if t >= t0:
            lo = max(last, t0)
            if held["alpha"] and held["beta"] and t > lo:
                dual_us += min(t, t_end) - lo
            last = t
        if name:
            held[name] = op == "add"
        if t > t_end:
            break
    oks, fails = probe_oks(plog)
    moves = sum(1 for a, b in zip(oks, oks[1:]) if a[1] != b[1])
    return {"false_failovers": adds, "service_moves": moves, "dual_holder_ms": round(dual_us / 1000.0, 1),
            "probe_ok": len(oks), "probe_fail": fails, "dropped_pkts": rig.loss_counters(),
            "duration_s": round((t1 - t0) / 1e6, 1)}


def startup_flaps(rig):
    return max(0, sum(1 for n in rig.nodes for _t, op in addr_events(rig.addr_log(n)) if op == "add") - 1)


def wakecost():
    """The machine's price of a timer wakeup, an event wakeup and a send (examples/wakecost.rs),
    measured before the rigs start: the floor under any tool's idle cost."""
    try:
        out = subprocess.run([WAKECOST], capture_output=True, text=True, timeout=120, check=True).stdout
        return json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        log(f"wakecost: {err}")
        return None


def rig_send_price(rigs):
    """What one heartbeat-sized send costs its sender on the rig's two paths (lan0 through the
    bridge, hb0 straight), measured in tandem 10ms/50ms's rig after the soaks: a sink in beta,
    bursts from alpha (examples/wakecost.rs)."""
    w = RESULTS.get("wakecost")
    rig = next((r for r in rigs if (r.tool_name, r.label) == ("tandem", "10ms/50ms")), None)
    if not w or not rig:
        return
    sink = rig.beta.popen([WAKECOST, "--sink", "47999", "--ms", "8000"])
    try:
        time.sleep(0.3)
        for path, addr in (("lan0", rig.beta.lan), ("hb0", rig.beta.hb)):
            r = rig.alpha.exec([WAKECOST, "--send-to", f"{addr}:47999", "--count", "2000"], check=False, timeout=30)
            try:
                w.setdefault("rig_send_us", {})[path] = json.loads(r.stdout)["send_us"]
            except (ValueError, KeyError, TypeError, AttributeError):
                log(f"wakecost: no send price over {path}")
    finally:
        sink.kill()
        sink.wait()


def phase_soak(entries):
    rigs = []
    t_start = time.monotonic()
    RESULTS["wakecost"] = wakecost()
    try:
        for e in entries:
            rig = Rig(e["idx"], e["tool"], e["setting"], e["params"], os.path.join(WORK, "soak"))
            rig.entry = e
            rig.up()
            rigs.append(rig)
        log(f"soak: {len(rigs)} rigs up, starting the tools")
        for rig in rigs:
            rig.start()
        for rig in rigs:
            try:
                rig.wait_stable(150)
                rig.ok = True
            except TimeoutError as err:
                log(f"  {rig.tag}: {err}")
                rig.entry.setdefault("errors", []).append(f"soak: {err}")
                rig.ok = False
        rigs = [r for r in rigs if r.ok]
        time.sleep(2)
        for rig in rigs:
            rig.entry["startup_flaps"] = startup_flaps(rig)
        log(f"idle: {IDLE_S:.0f} s")
        s0 = {r.tag: snapshot(r) for r in rigs}
        time.sleep(IDLE_S)
        s1 = {r.tag: snapshot(r) for r in rigs}
        for rig in rigs:
            rig.entry["idle"] = idle_figures(rig, s0[rig.tag], s1[rig.tag])
        for kind in ("c", "d"):
            log(f"soak ({kind}): {LOSS_PCT} % loss on every heartbeat path{' + stress-ng on all CPUs' if kind == 'd' else ''}"
                f" for {SOAK_S:.0f} s")
            probes = {r.tag: r.start_probe(os.path.join(r.dir, f"probe-{kind}.log"), 100, 50) for r in rigs}
            time.sleep(1)
            stress = None
            if kind == "d":
                stress = REG.popen(["stress-ng", "--cpu", "0", "--timeout", f"{int(SOAK_S) + 10}s", "--quiet"])
                time.sleep(0.5)
            t0 = now_us()
            for rig in rigs:
                rig.set_loss(True)
            time.sleep(SOAK_S)
            t1 = now_us()
            for rig in rigs:
                rig.entry[kind] = {"dropped_pkts": rig.loss_counters()}
                rig.set_loss(False)
            if stress:
                stress.terminate()
                stress.wait(timeout=20)
            time.sleep(2.5)
            for rig in rigs:
                Rig.stop_probe(probes[rig.tag])
                dropped = rig.entry[kind]["dropped_pkts"]
                rig.entry[kind] = soak_figures(rig, t0, t1, os.path.join(rig.dir, f"probe-{kind}.log"))
                rig.entry[kind]["dropped_pkts"] = dropped
                log(f"  {rig.tag} ({kind}): false failovers {rig.entry[kind]['false_failovers']},"
                    f" service moves {rig.entry[kind]['service_moves']}, dual {rig.entry[kind]['dual_holder_ms']} ms")
            time.sleep(3)
        rig_send_price(rigs)
    finally:
        for rig in rigs:
            rig.down()
        REG.cleanup()
        RESULTS["soak_phase_s"] = round(time.monotonic() - t_start, 1)
        save_results()


# ---------------------------------------------------------------- results
RESULTS = {}


def save_results():
    results.write_json(OUT, "results.json", RESULTS)


def machine():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])

    def ver(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    pkg = {}
    for p in ("keepalived", "heartbeat", "stress-ng", "pacemaker", "corosync", "systemd-container", "busybox-static"):
        pkg[p] = ver(["dpkg-query", "-W", "-f", "${Version}", p])
    return {"nproc": os.cpu_count(), "kernel": os.uname().release, "cpu": cpu, "mem_mb": mem_kb // 1024,
            "os": ver(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]), "packages": pkg,
            "tandem": ver([TANDEM, "version"]) if os.path.exists(TANDEM) else "?"}


def binary_info(path):
    info = {"path": path}
    try:
        info["bytes"] = os.path.getsize(path)
    except OSError:
        return info
    r = subprocess.run(["ldd", path], capture_output=True, text=True)
    libs = re.findall(r"=> (/\S+)", r.stdout)
    info["static"] = not libs
    info["shared_libs"] = len(libs)
    info["with_libs_bytes"] = info["bytes"] + sum(os.path.getsize(l) for l in libs if os.path.exists(l))
    return info


def fmt_range(s, unit=""):
    if not s:
        return "–"
    if s["n"] == 1:
        return f"{s['median']:g}{unit}"
    return f"{s['median']:g}{unit} ({s['min']:g}–{s['max']:g})"


def loss_proof(e):
    return all(e.get(k, {}).get("false_failovers") == 0 for k in ("c", "d"))


def headline():
    """Per tool: the fastest setting (ladder order) with zero false failovers in (c) and (d).
    A tool with no such setting is represented by its setting with the fewest false failovers
    (the fastest among equals), flagged as not loss-proof."""
    h = {}
    for tool in ("tandem", "keepalived", "heartbeat"):
        cands = [e for e in RESULTS["settings"] if e["tool"] == tool and (tool, e["setting"]) not in HEADLINE_EXCLUDE
                 and "c" in e and "d" in e and e.get("a", {}).get("outage")]
        if not cands:
            continue
        proof = [e for e in cands if loss_proof(e)]
        if proof:
            e, ok = proof[-1], True  # the ladder is slowest first
        else:
            e = min(reversed(cands), key=lambda x: x["c"]["false_failovers"] + x["d"]["false_failovers"])
            ok = False
        h[tool] = {"setting": e["setting"], "loss_proof": ok, "outage_ms": e["a"]["outage"]["median"],
                   "outage": e["a"]["outage"], "answer": e["a"].get("answer"),
                   "false_failovers": e["c"]["false_failovers"] + e["d"]["false_failovers"]}
    for other in ("keepalived", "heartbeat"):
        if "tandem" in h and other in h and h[other]["outage_ms"]:
            h[f"ratio_tandem_{other}"] = round(h["tandem"]["outage_ms"] / h[other]["outage_ms"], 3)
    return h


PHASE_WHAT = {"soak": "idle footprint, (c) loss and (d) loss + CPU, all settings at once",
              "failover": "(a) and (b), one setting at a time",
              "scale": "(a) with 1, 10, 100 floating addresses",
              "guests": "guest overhead, start to first answer, memory",
              "pacemaker": "the same failover under Pacemaker + corosync",
              "ping": "the holder loses its uplink (ping targets, track_interface)",
              "fencing": "fencing a frozen holder through a BMC, partitions",
              "svccrash": "a crashed service to its first answer (monitor, vrrp_script)",
              "hbmixed": "mixed heartbeat/tandem cluster failover (bench/hbmixed.sh)",
              "watchdog": "failover with watchdog self-fencing against TIMEOUT, next to IPMI (QEMU VMs)"}


def md_phases():
    R = RESULTS
    m = R["machine"]
    pk = m["packages"]
    L = [f"Measured on {m['nproc']} × {m['cpu']}, {m['mem_mb']} MB, Linux {m['kernel']} ({m['os']});"
         f" keepalived {pk.get('keepalived')}, heartbeat {pk.get('heartbeat')}, pacemaker {pk.get('pacemaker')},"
         f" corosync {pk.get('corosync')}, systemd-nspawn {pk.get('systemd-container')}, stress-ng {pk.get('stress-ng')},"
         f" {m['tandem']}.", ""]
    ph = R.get("phases", {})
    run_here = [p for p in ALL_PHASES if p in ph and ph[p].get("run_id") == R.get("run_id")]
    L.append(f"Command: `{R.get('command', 'make bench')}`"
             + (f" (phases {', '.join(run_here)}: {R.get('duration_s', 0) / 60:.1f} min in all)" if run_here else ""))
    L.append("")
    L.append("| phase | measured | wall time | load average (1 min) at start → end | what |")
    L.append("|---|---|---|---|---|")
    for p in ALL_PHASES:
        if p not in ph:
            continue
        i = ph[p]
        la = f"{i['load_start'][0]:.1f} → {i['load_end'][0]:.1f}" if i.get("load_end") else "–"
        L.append(f"| {p} | {i.get('started', '–')} | {i.get('duration_s', 0) / 60:.1f} min | {la} |"
                 f" {PHASE_WHAT[p]}{' (quick)' if i.get('quick') else ''} |")
    return "\n".join(L) + "\n"


def markdown():
    """The soak and failover tables (the block docs/benchmarks.md has had from the start)."""
    R = RESULTS
    L = []
    L.append(f"Runs per fault: {R['config']['runs']}; soaks {R['config']['soak_s']:g} s;"
             f" idle window {R['config']['idle_s']:g} s.")
    L.append("")
    h = R.get("headline", {})
    L.append("**Headline** (fastest setting with zero false failovers in (c) and (d); client-observed outage when the active node dies, median):")
    L.append("")
    for t in ("tandem", "keepalived", "heartbeat"):
        if t not in h:
            L.append(f"- {t}: not measured")
        elif h[t]["loss_proof"]:
            L.append(f"- {t}: **{h[t]['setting']}**: outage {fmt_range(h[t]['outage'], ' ms')}")
        else:
            L.append(f"- {t}: **no setting without false failovers**; the one with the fewest,"
                     f" {h[t]['setting']} ({h[t]['false_failovers']} in (c)+(d)): outage {fmt_range(h[t]['outage'], ' ms')}")
    for o in ("keepalived", "heartbeat"):
        if f"ratio_tandem_{o}" in h:
            flag = "" if h[o]["loss_proof"] else f" (against {o}'s least-flapping setting, which is not loss-proof)"
            L.append(f"- outage ratio tandem/{o}: **{h[f'ratio_tandem_{o}']:.2f}**{flag}")
    L.append("")
    L.append("**Failover** — median (min–max) in ms over the runs; (a) active node dies (links down + every process"
             " killed at once), (b) planned switch-over. Detection, address and answer are measured from the fault.")
    L.append("")
    L.append("| tool | setting | paths | (a) outage | (a) detection | (a) address up | (a) first answer | (b) outage | (b) first answer |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for e in R["settings"]:
        a, b = e.get("a", {}), e.get("b", {})
        paths = "LAN only" if e["tool"] == "keepalived" else "LAN + hb link"
        L.append(f"| {e['tool']} | {e['setting']} | {paths} | {fmt_range(a.get('outage'))} | {fmt_range(a.get('detect'))}"
                 f" | {fmt_range(a.get('addr'))} | {fmt_range(a.get('answer'))} | {fmt_range(b.get('outage'))}"
                 f" | {fmt_range(b.get('answer'))} |")
    L.append("")
    L.append(f"**False failovers and footprint** — (c) {LOSS_PCT} % random loss on every heartbeat path,"
             f" (d) the same with stress-ng on all CPUs, {R['config']['soak_s']:g} s each, all settings at once:"
             " times the address was added to a node (dual = ms with the address on both nodes), start-up flaps."
             " Memory is the active node's tool processes, taken with only that rig running; CPU (including reaped"
             " children), wakeups and packets are both nodes together, over the idle window.")
    L.append("")
    L.append("| tool | setting | (c) false | (c) dual ms | (d) false | (d) dual ms | start-up flaps | PSS MB | RSS MB | procs | idle CPU ms/min | wakeups/s | hb pkts/s | binary |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for e in R["settings"]:
        c, d, i = e.get("c", {}), e.get("d", {}), e.get("idle", {})
        act = e.get("memory", {}).get("active") or i.get("active", {})
        bi = e.get("binary", {})
        size = f"{bi.get('bytes', 0) / 1e6:.2f} MB" + (" static" if bi.get("static") else
                                                        f" (+{bi.get('shared_libs', 0)} libs: {bi.get('with_libs_bytes', 0) / 1e6:.1f} MB)")

        def g(x, k):
            v = x.get(k)
            return "–" if v is None else f"{v:g}"
        L.append(f"| {e['tool']} | {e['setting']} | {g(c, 'false_failovers')} | {g(c, 'dual_holder_ms')} | {g(d, 'false_failovers')}"
                 f" | {g(d, 'dual_holder_ms')} | {g(e, 'startup_flaps')} | {act.get('pss_kb', 0) / 1024:.1f} | {act.get('rss_kb', 0) / 1024:.1f}"
                 f" | {act.get('procs', '–')} | {g(i, 'cpu_ms_per_min')} | {g(i, 'wakeups_per_s')} | {g(i, 'hb_pkts_per_s')} | {size} |")
    L.extend(md_idle_split(R))
    errs = [(e["tool"], e["setting"], x) for e in R["settings"] for x in e.get("errors", [])]
    errs += [(e["tool"], e["setting"], r["error"]) for e in R["settings"] for k in ("a", "b")
             for r in e.get(k, {}).get("runs", []) if "error" in r]
    if errs:
        L.append("")
        L.append("**Errors during this run:**")
        L.append("")
        for t, s, x in errs:
            L.append(f"- {t} {s}: {x}")
    fast = [e for e in R["settings"] if e["tool"] == "tandem" and e["setting"] in ("1s/3s", "100ms/300ms", "10ms/30ms", "5ms/35ms", "5ms/25ms")]
    if fast:
        L.append("")
        L.append("**tandem from 1s/3s down to 5ms/25ms** — client-observed outage when the active node dies, ms:")
        L.append("")
        L.append("| keepalive/deadtime | runs | median | min | max |")
        L.append("|---|---|---|---|---|")
        for e in fast:
            o = e.get("a", {}).get("outage") or {}
            L.append(f"| {e['setting']} | {o.get('n', 0)} | {o.get('median', '–')} | {o.get('min', '–')} | {o.get('max', '–')} |")
    return "\n".join(L) + "\n"


def md_idle_split(R):
    """Where the idle CPU goes, per node, for tandem at 10ms/50ms and keepalived at 0.01, with
    the machine's price of the primitives (docs/benchmarks.md, "Idle cost per interval")."""
    rows = [e for e in R["settings"] if (e["tool"], e["setting"]) in (("tandem", "10ms/50ms"), ("keepalived", "advert_int 0.01"))
            and e.get("idle", {}).get("per_node")]
    if not rows:
        return []
    L = ["", "**Idle cost per node** (same window): on-CPU time, wakeups and the cost of each wakeup.", "",
         "| tool | setting | node | idle CPU ms/min | wakeups/s | µs per wakeup | hb pkts/s sent |", "|---|---|---|---|---|---|---|"]
    for e in rows:
        i = e["idle"]
        for name, n in sorted(i["per_node"].items()):
            sent = sum(v for k, v in i.get("tx_pkts_per_s", {}).items() if k.startswith(name + ":"))
            per = "–" if n["us_per_wakeup"] is None else f"{n['us_per_wakeup']:g}"
            L.append(f"| {e['tool']} | {e['setting']} | {name} | {n['cpu_ms_per_min']:g} | {n['wakeups_per_s']:g}"
                     f" | {per} | {sent:g} |")
    w = R.get("wakecost")
    if w:
        L += ["", f"The machine's price, measured alone before the rigs start (`examples/wakecost.rs`, median of"
              f" {w['rounds']} × {w['per_round']}): a wakeup by a timer {w['timer_us']:g} µs; a timer wakeup and one"
              f" UDP send to a sleeping reader {w['timer_send_us']:g} µs; that reader's wakeup and read {w['event_us']:g} µs;"
              f" over loopback to nobody waiting, a send {w.get('send_us', 0):g} µs and a read {w.get('read_us', 0):g} µs."]
        rs = w.get("rig_send_us")
        if rs:
            L[-1] += (" A heartbeat-sized send on the rig's paths, measured in tandem 10ms/50ms's rig after the soaks (the"
                      " receiver's whole path runs inside the sender's call on veth): "
                      + ", ".join(f"{k} {v:g} µs" for k, v in sorted(rs.items())) + ".")
    return L


def cell(x, unit=""):
    return fmt_range(x, unit) if x else "–"


def md_scale():
    sc = RESULTS.get("scale")
    if not sc or not sc.get("entries"):
        return None
    L = [f"**Scale** — the active node dies as in (a), with N floating addresses in the group (the service binds"
         f" the first; tandem: N `ip::` resources, keepalived: N `virtual_ipaddress`, heartbeat: N `IPaddr` in"
         f" haresources), median (min–max) over {sc.get('runs')} runs, ms from the fault. All N up: the last"
         f" address's RTM_NEWADDR seen by the monitor (a Python process: under load it reads events late). Service"
         f" script: when the group's service script (the same for all) began its `start`, and how long it took."
         f" Takeover CPU: the survivor's HA processes (with their children and helpers, the service script"
         f" included) from the fault until the takeover is over, less their idle rate; of it, the HA processes'"
         f" own threads (not their children: heartbeat's IPaddr runs, the service). PSS: the holder's HA"
         f" processes at rest.", "",
         "| tool | setting | N | outage | detection | all N up | service script begins | service start took | first answer | takeover CPU ms | of it, HA processes themselves | PSS MB | procs |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in sc["entries"]:
        mem = (e.get("memory") or {}).get("active") or {}
        L.append(f"| {e['tool']} | {e['setting']} | {e['n']} | {cell(e.get('outage'))} | {cell(e.get('detect'))}"
                 f" | {cell(e.get('all_addr'))} | {cell(e.get('svc_begin'))} | {cell(e.get('svc_start'))}"
                 f" | {cell(e.get('answer'))} | {cell(e.get('takeover_cpu'))} | {cell(e.get('takeover_own_cpu'))}"
                 f" | {mem.get('pss_kb', 0) / 1024:.1f}"
                 f" | {mem.get('procs', '–')} |")
    L += ["", "How the cost grows from N = 1 to N = 100 (medians):", "",
          "| tool | setting | outage N=1 → N=100 | × | service script begins N=1 → N=100 | per added address | takeover CPU ms N=1 → N=100 | per added address | of it, HA processes themselves | per added address |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    goal = []
    for tool, label in SCALE_SETTINGS:
        es = {e["n"]: e for e in sc["entries"] if (e["tool"], e["setting"]) == (tool, label)}
        lo, hi = es.get(min(es) if es else 0), es.get(max(es) if es else 0)
        if not lo or not hi or lo is hi or not lo.get("outage") or not hi.get("outage"):
            continue
        o1, o2 = lo["outage"]["median"], hi["outage"]["median"]
        dn = hi["n"] - lo["n"]

        def grow(key):
            a, b = (lo.get(key) or {}).get("median"), (hi.get(key) or {}).get("median")
            if a is None or b is None:
                return "–", "–"
            return f"{a:g} → {b:g}", f"{(b - a) / dn:.2f} ms"
        cpu, cpa = grow("takeover_cpu")
        own, owa = grow("takeover_own_cpu")
        sb, sba = grow("svc_begin")
        L.append(f"| {tool} | {label} | {o1:g} → {o2:g} | {o2 / o1:.2f} | {sb} | {sba} | {cpu} | {cpa} | {own} | {owa} |")
        if tool == "tandem" and lo["n"] == 1 and hi["n"] == 100:
            goal.append(f"tandem {label}: {o2 / o1:.2f}× ({o1:g} → {o2:g} ms) — {'met' if o2 <= 2 * o1 else 'MISSED'}")
    if goal:
        L += ["", "Goal, tandem's outage at N = 100 within 2× its outage at N = 1: " + "; ".join(goal) + "."]
    errs = [f"{e['tool']} {e['setting']} N={e['n']}: {x}" for e in sc["entries"]
            for x in e.get("errors", []) + [r["error"] for r in e.get("runs", []) if "error" in r]]
    if errs:
        L += ["", "Errors: " + "; ".join(errs)]
    return "\n".join(L) + "\n"


def md_guests():
    g = RESULTS.get("guests")
    if not g:
        return None
    L = []
    if g.get("error"):
        L += [f"**Guests:** the phase failed: {g['error']}", ""]
    ov = (g.get("overhead") or {}).get("loops")
    if ov:
        any_e = next(iter(ov.values()))
        L += [f"**Guests: overhead** — stress-ng for {any_e.get('seconds', g.get('seconds'))} s per run on the host and"
              f" inside a running guest (`tandem guest enter`), pinned to CPU {g['overhead'].get('cpu')}, in"
              f" {g.get('pairs')} rounds whose order alternates. Bogo-ops per second of CPU time (usr+sys, robust to"
              " other load) and of wall time; the guest's difference to the host is the median of the rounds"
              " (min … max); spread = (max − min) / median of the same loop in the same place.", "",
              "| loop | where | ops/s per CPU s | vs host per CPU s | vs host per wall s | spread per CPU s | spread per wall s |",
              "|---|---|---|---|---|---|---|"]

        def pct(x):
            return "–" if not x else f"{x['median']:+.2f} % ({x['min']:+.2f} … {x['max']:+.2f})"
        for label, e in ov.items():
            for w, name in (("host", "host"), ("guest", "guest"), ("nosc", "guest, `seccomp=off`"),
                            ("seccomp", "host, allow-all seccomp filter")):
                if f"{w}_cpu" not in e:
                    continue
                L.append(f"| {label} | {name} | {e[f'{w}_cpu']['median']:,.0f} |"
                         f" {pct(e.get(f'{w}_diff_cpu_pct')) if w != 'host' else '–'} |"
                         f" {pct(e.get(f'{w}_diff_real_pct')) if w != 'host' else '–'} |"
                         f" {e.get(f'{w}_spread_cpu_pct', 0):.2f} % | {e.get(f'{w}_spread_real_pct', 0):.2f} % |")
        verdicts = []
        for label, e in ov.items():
            if label == "get":
                continue  # not like for like (see the text)
            for w, name in (("guest", "a guest"), ("nosc", "a `seccomp=off` guest")):
                d = e.get(f"{w}_diff_cpu_pct")
                if d:
                    verdicts.append(f"{label} in {name} {d['median']:+.2f} % ({'met' if abs(d['median']) <= 1 else 'MISSED'})")
        if verdicts:
            L += ["", "Overhead goal (within 1 % per CPU second, median of the rounds): " + "; ".join(verdicts) + "."]
    st = g.get("start")
    if st:
        L += ["", "**Guests: start to first HTTP answer** — the same busybox root (busybox init, `httpd -f` from its"
              " inittab); from just before the command is executed until httpd answers a GET (polled every ms), in"
              f" the same network/mount/PID namespaces, {g.get('runs')} runs each, alternating; then the host-side"
              " process the running guest leaves (medians).", "",
              "| runtime | first answer ms | command returned ms | host-side process | its PSS kB | private kB | anonymous kB |",
              "|---|---|---|---|---|---|---|"]
        for kind, name, proc in (("tandem", "`tandem guest start`", "`tandem-guest` (monitor)"),
                                 ("nspawn", "`systemd-nspawn --register=no --keep-unit -b`", "`systemd-nspawn`")):
            e = st.get(kind) or {}
            med = lambda k: "–" if not e.get(k) else f"{e[k]['median']:g}"
            L.append(f"| {name} | {cell(e.get('answer'))} | {cell(e.get('cmd_exit')) if kind == 'tandem' else 'runs in the foreground'}"
                     f" | {proc} | {med('host_pss_kb')} | {med('host_uss_kb')} | {med('host_anon_kb')} |")
        if st.get("ratio") is not None:
            L += ["", f"Ratio tandem/systemd-nspawn: **{st['ratio']:.2f}** (goal ≤ 0.5:"
                      f" {'met' if st['ratio'] <= 0.5 else 'MISSED'})."]
    mem = g.get("memory")
    if mem:
        L += ["", "**Guests: memory outside the guests** — a tandem daemon whose group holds N idle guests (busybox"
              " init only): its PSS before the group starts and with the guests running, and the guests' monitors"
              " (one per guest, forked from the daemon: they share its pages, which lowers the daemon's PSS); kB.", "",
              "| guests | daemon PSS before | daemon PSS after | monitors PSS (sum) | monitors private (sum) | monitors anonymous (sum) | (after + monitors − before) / N |",
              "|---|---|---|---|---|---|---|"]
        for e in mem:
            L.append(f"| {e['guests']} | {e['daemon_before']['pss_kb']} | {e['daemon_after']['pss_kb']} | {e['monitor_pss_kb']}"
                     f" | {e['monitor_uss_kb']} | {e.get('monitor_anon_kb', '–')} | {e['per_guest_kb']:g} |")
    return "\n".join(L) + "\n"


def md_pacemaker():
    pm = RESULTS.get("pacemaker")
    if not pm:
        return None
    L = [f"**Pacemaker** — `bench/pacemaker.py bench --runs {pm.get('runs')}`: the demo group (address + service) when"
         f" its holder dies (link down + every process killed), two machines; tandem keepalive {pm.get('keepalive_ms')} ms"
         f" / deadtime {pm.get('token_ms')} ms against corosync token {pm.get('token_ms')} ms (the export's advice);"
         " client-observed outage, median (min–max) ms; detection from the survivor's log.", "",
         "| cluster manager | outage | detection | first answer |", "|---|---|---|---|"]
    vs = pm.get("variants", [])
    for e in vs:
        err = f" ({e['error']})" if e.get("error") else ""
        L.append(f"| {e['label']}{err} | {cell(e.get('outage'))} | {cell(e.get('detect'))} | {cell(e.get('answer'))} |")
    t = next((e for e in vs if e["label"] == "tandem" and e.get("outage")), None)
    for e in vs:
        if t and e is not t and e.get("outage"):
            L.append("")
            L.append(f"Outage ratio tandem / {e['label']}: **{t['outage']['median'] / e['outage']['median']:.2f}**")
    if pm.get("error") and not vs:
        L.append(f"The phase failed: {pm['error']}")
    return "\n".join(L) + "\n"


def blocks():
    """docs/benchmarks.md's generated blocks: marker name -> text (None: no data, left as it is)."""
    have_main = any(k in e for e in RESULTS.get("settings", []) for k in ("a", "c"))
    return {"PHASES": md_phases(), "RESULTS": markdown() if have_main else None, "SCALE": md_scale(),
            "GUESTS": md_guests(), "PACEMAKER": md_pacemaker()}


def plot(path_svg):
    """A timeline of one failover (a) per tool: the run with the median outage at the headline setting
    (for a tool with no loss-proof setting, at its fastest setting). One panel per tool, each with its
    own time scale."""
    h = RESULTS.get("headline", {})
    rows = []
    for t in ("tandem", "keepalived", "heartbeat"):
        cands = [e for e in RESULTS["settings"] if e["tool"] == t and e.get("a", {}).get("outage")
                 and (e["tool"], e["setting"]) not in HEADLINE_EXCLUDE]
        if not cands:
            continue
        # the headline setting; for a tool without a loss-proof setting, its fastest one
        hs = h.get(t, {}).get("setting") if h.get(t, {}).get("loss_proof") else None
        e = next((x for x in cands if x["setting"] == hs), cands[-1])
        runs = sorted([r for r in e["a"]["runs"] if r.get("outage_ms") is not None], key=lambda r: r["outage_ms"])
        if runs:
            rows.append((t, e["setting"], runs[len(runs) // 2]))
    if not rows or not shutil.which("gnuplot"):
        return False
    d = os.path.join(OUT, "plot")
    os.makedirs(d, exist_ok=True)
    panels = []
    for k, (t, s, r) in enumerate(rows):
        t0 = r["t_fault_us"]
        end = max(r.get("answer_ms") or 0, r.get("addr_ms") or 0, 50)
        lo, hi = -0.15 * end - 20, end * 1.4 + 30
        with open(os.path.join(d, f"ok{k}.dat"), "w") as fo, open(os.path.join(d, f"fail{k}.dat"), "w") as ff:
            for line in read_lines(os.path.join(OUT, r["probe_log"])):
                p = line.split()
                if len(p) >= 2 and p[0].isdigit():
                    x = (int(p[0]) - t0) / 1000.0
                    if lo <= x <= hi:
                        (fo if p[1] == "ok" else ff).write(f"{x:.1f} 0.5\n")
        marks = ["set arrow from 0,0 to 0,1 nohead lw 2 lc rgb '#000000'",
                 "set label 'fault' at 0,0.93 offset 0.5,0 font 'sans,10'"]
        for key, lab, y in (("detect_ms", "detected", 0.8), ("addr_ms", "address up", 0.2),
                            ("answer_ms", "first answer", 0.93)):
            v = r.get(key)
            if v is not None:
                marks.append(f"set arrow from {v},0 to {v},1 nohead lw 1.5 dt 2 lc rgb '#3355aa'")
                marks.append(f"set label '{lab} {v:.0f} ms' at {v},{y} offset 0.5,0 font 'sans,10'")
        panels.append(f"""unset arrow; unset label
set title '{t} {s}{"" if s == h.get(t, {}).get("setting") and h.get(t, {}).get("loss_proof") else " (fastest setting; not loss-proof)"}: client-observed outage {r["outage_ms"]:.0f} ms' font 'sans,12' noenhanced
set xrange [{lo:.0f}:{hi:.0f}]
{chr(10).join(marks)}
plot '{d}/ok{k}.dat' using 1:2 with points pt 7 ps 0.6 lc rgb '#2e8b57' title 'answered', \\
     '{d}/fail{k}.dat' using 1:2 with points pt 2 ps 0.8 lc rgb '#cc3333' title 'no answer'
""")
    n = len(panels)
    body = f"""set yrange [0:1]
unset ytics
set xlabel 'ms since the fault (active node dies: links down, every process killed)'
set grid xtics
set key outside right top vertical font 'sans,10'
set multiplot layout {n},1
{"".join(panels)}unset multiplot
"""
    ok = True
    for term, out in (("svg size 900,{h} font 'sans,11' background '#ffffff'", path_svg),
                      ("pngcairo size 900,{h} font 'sans,10'", path_svg[:-4] + ".png")):
        gp = f"set terminal {term.format(h=230 * n)}\nset output '{out}'\n" + body
        with open(os.path.join(d, "timeline.gp"), "w") as f:
            f.write(gp)
        r = subprocess.run(["gnuplot", os.path.join(d, "timeline.gp")], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"gnuplot: {r.stderr.strip()[:300]}")
            ok = False
    return ok


def update_docs(bl, svg):
    """Replaces each block that has data between its markers (`<!-- BEGIN GENERATED NAME -->`)."""
    doc = results.DOC
    try:
        text = open(doc).read()
    except FileNotFoundError:
        return
    for name, md in bl.items():
        begin, end = f"<!-- BEGIN GENERATED {name} -->", f"<!-- END GENERATED {name} -->"
        if md is None:
            continue
        new = results.replace_block(text, begin, end, md)
        if new is None:
            log(f"bench: docs/benchmarks.md has no {begin} block")
            continue
        text = new
    with open(doc, "w") as f:
        f.write(text)
    if bl.get("RESULTS"):
        for src, dst in ((svg, "benchmarks-failover.svg"), (svg[:-4] + ".png", "benchmarks-failover.png")):
            if os.path.exists(src):
                shutil.copy(src, os.path.join(REPO, "docs", dst))


def merge_previous(prev, ran):
    """Keeps, from the last results.json, what the phases that did not run measured."""
    keys = {"soak": ("c", "d", "idle", "startup_flaps"), "failover": ("a", "b", "memory", "failover_phase_s")}
    prev_e = {(e["tool"], e["setting"]): e for e in prev.get("settings", [])}
    cur_e = {(e["tool"], e["setting"]): e for e in RESULTS.get("settings", [])}
    merged = []
    for t, l, _p in SETTINGS:
        c, pe = cur_e.get((t, l)), prev_e.get((t, l))
        if c is None:
            if pe is not None:
                merged.append(pe)
            continue
        if pe is not None:
            for ph, ks in keys.items():
                if ph in ran:
                    continue
                for k in ks:
                    if k in pe:
                        c[k] = pe[k]
                c["errors"] = c.get("errors", []) + [x for x in pe.get("errors", []) if x.startswith(ph + ":")]
        merged.append(c)
    RESULTS["settings"] = merged
    if "soak" not in ran:
        for k in ("soak_phase_s", "wakecost"):
            if k in prev:
                RESULTS[k] = prev[k]
    for ph in ("scale", "guests", "pacemaker"):
        if ph not in ran and ph in prev:
            RESULTS[ph] = prev[ph]
    phases = dict(prev.get("phases", {}))
    phases.update(RESULTS.get("phases", {}))
    RESULTS["phases"] = phases
    if "config" in prev and not ({"soak", "failover"} & set(ran)):
        RESULTS["config"] = prev["config"]


def finish(svg):
    RESULTS["headline"] = headline()
    bl = blocks()
    if bl["RESULTS"]:
        plot(svg)
    md = "\n".join(x for x in bl.values() if x)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(md)
    print(md)
    if UPDATE_DOCS:
        update_docs(bl, svg)
        log("bench: docs/benchmarks.md updated (blocks: " + ", ".join(k for k, v in bl.items() if v) + ")")


def main():
    global WORK
    if os.geteuid() != 0:
        print("bench: must run as root (network namespaces)", file=sys.stderr)
        return 2
    bad = [p for p in PHASES if p not in ALL_PHASES]
    if bad or not PHASES:
        print(f"bench: unknown phase {', '.join(bad)}; phases: {', '.join(ALL_PHASES)}", file=sys.stderr)
        return 2
    rigs = {"soak", "failover", "scale"} & set(PHASES)
    tools = {t for t, l, _p in SETTINGS if ONLY.search(f"{t} {l}")} if rigs else set()
    if {"ping", "svccrash"} & set(PHASES):
        tools.add("keepalived")
    for p, what in ((TANDEM, "tandem binary (TANDEM=)"), (PROBE, "probe binary (PROBE=)"), (HB_BIN, "heartbeat"),
                    (KA_BIN, "keepalived")):
        if what.split()[0] in ("heartbeat", "keepalived") and what.split()[0] not in tools:
            continue
        if not os.access(p, os.X_OK):
            print(f"bench: missing {what}: {p}", file=sys.stderr)
            return 2
    WORK = os.path.join(OUT, "run")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    prev = {}
    if set(PHASES) != set(ALL_PHASES):
        try:
            prev = json.load(open(os.path.join(OUT, "results.json")))
        except (OSError, ValueError):
            prev = {}

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    t_start = time.monotonic()
    entries = []
    if {"soak", "failover"} & set(PHASES):
        for idx, (tool, label, params) in enumerate(SETTINGS):
            if ONLY.search(f"{tool} {label}"):
                entries.append({"idx": idx, "tool": tool, "setting": label, "params": params,
                                "binary": binary_info(TOOLS[tool].binaries()[0])})
    run_id = f"{time.time_ns()}-{os.getpid()}"
    RESULTS.update({"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "run_id": run_id,
                    "command": os.environ.get("BENCH_COMMAND", "make bench"),
                    "config": {"runs": RUNS, "soak_s": SOAK_S, "idle_s": IDLE_S, "quick": QUICK,
                               "loss_pct": LOSS_PCT, "probe_ms": PROBE_MS, "probe_timeout_ms": PROBE_TIMEOUT_MS,
                               "only": ONLY.pattern, "phases": PHASES},
                    "settings": entries, "phases": {}})
    log(f"bench: phases {', '.join(PHASES)}; {len(entries)} settings, {RUNS} runs per fault, soak {SOAK_S:g} s,"
        f" idle {IDLE_S:g} s; work in {WORK}")
    funcs = {"soak": lambda: phase_soak(entries), "failover": lambda: phase_failover(entries),
             "scale": lambda: phase_scale(entries), "guests": phase_guests, "pacemaker": phase_pacemaker,
             "ping": phase_ping, "fencing": phase_fencing, "svccrash": phase_svccrash,
             "hbmixed": phase_hbmixed, "watchdog": phase_watchdog}
    try:
        for ph in ALL_PHASES:
            if ph not in PHASES:
                continue
            info = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "run_id": run_id, "quick": QUICK,
                    "load_start": [round(x, 2) for x in os.getloadavg()]}
            RESULTS["phases"][ph] = info
            t = time.monotonic()
            log(f"bench: phase {ph} (load average {info['load_start'][0]:.2f})")
            try:
                funcs[ph]()
            finally:
                info["duration_s"] = round(time.monotonic() - t, 1)
                info["load_end"] = [round(x, 2) for x in os.getloadavg()]
                log(f"bench: phase {ph} took {info['duration_s'] / 60:.1f} min")
                save_results()
    except KeyboardInterrupt as e:
        log(f"bench: interrupted ({e}); cleaning up")
        REG.cleanup()
        save_results()
        return 130
    finally:
        REG.cleanup()
    RESULTS["duration_s"] = round(time.monotonic() - t_start, 1)
    if prev:
        merge_previous(prev, PHASES)
    save_results()
    finish(os.path.join(OUT, "failover-timeline.svg"))
    log(f"bench: done in {RESULTS['duration_s'] / 60:.1f} min; results in {OUT}/results.json and results.md")
    return 0


def render():
    """`bench.py --render`: rebuild results.md, the plot and the docs from bench/out/results.json."""
    RESULTS.update(json.load(open(os.path.join(OUT, "results.json"))))
    finish(os.path.join(OUT, "failover-timeline.svg"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(render() if sys.argv[1:] == ["--render"] else main())
    finally:
        REG.cleanup()
