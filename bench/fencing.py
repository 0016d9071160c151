#!/usr/bin/python3
"""The fencing phase of `make bench`: tandem and heartbeat 3.0.6 fencing a frozen holder
through the same BMC (OpenIPMI's ipmi_sim), and a partition with both nodes alive.

The rig is bench.py's (namespaces for a bridge, two nodes and a client; each node a
"machine" with its own PID namespace running bench/node-init.sh) plus a management network
203.0.113.0/24: a bridge namespace, the nodes' mgmt0 (.1, .2) and one BMC per node (.11,
.12), each ipmi_sim in its own namespace. A node's machine is started and killed by its
BMC's chassis power switch (tests/tools/bmc-power.sh, as in tests/common/fencerig.rs): power
off takes the node's links down and drops the floating address (a machine without power has
dark NICs and forgets what it held), then kills its PID namespace; power on brings the links
back, with a fresh /run and no nftables rules, and boots node-init.sh again.

Fault (f) "frozen holder": SIGSTOP on every process of the holder's machine and its
heartbeats cut (nftables on both nodes: UDP 694 dropped on input; lan0 stays up for the client). The survivor
must fence it, then take over. Measured from the fault: death declared (the survivor's log),
fence started, machine off (the BMC's power log), fence confirmed (log), address up
(rtnetlink), first answer from the survivor (client probing every 10 ms).
Fault (p) "partition": heartbeats cut, both nodes alive, management network up: which
node(s) the BMCs power off. Two means a mutual fence.

Configurations, same keepalive/deadtime for all (BENCH_FENCE_KA_MS, BENCH_FENCE_DT_MS,
default 100/500 ms: heartbeat's fastest loss-proof rung in the failover phase):
  tandem ipmi          stonith NODE ipmi 203.0.113.1X admin PWFILE   (built-in RMCP+ client)
  tandem fence_ipmilan stonith NODE agent /usr/sbin/fence_ipmilan ... (fence-agents)
  heartbeat            stonith_host NODE external/ipmi PEER 203.0.113.1X admin PASS lanplus
                       (cluster-glue's plugin running ipmitool; heartbeat's v1 STONITH resets)
fence_delay is tandem's automatic default.

usage: bench/fencing.py [--runs N] [--partitions N] [--only REGEX] [--render]
  --only: a regex on "tool label", e.g. 'built-in|heartbeat'.
Environment: TANDEM, PROBE, BENCH_OUT (as bench.py), BENCH_FENCE_RUNS, BENCH_FENCE_PARTITIONS
(5 each), BENCH_FENCE_ONLY, BENCH_FENCE_KA_MS/BENCH_FENCE_DT_MS, BENCH_UPDATE_DOCS (1: write
docs/benchmarks.md's fencing section and docs/benchmarks-fencing.svg). Root. Standard library.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (the failover harness: rig, nodes, tools, probe and log parsing)
import results  # noqa: E402

HERE, REPO = B.HERE, B.REPO
BMC_POWER = os.path.join(REPO, "tests", "tools", "bmc-power.sh")
USER, PASSWORD = "admin", "s3cret"
BMC_ADDR = {"alpha": "203.0.113.11", "beta": "203.0.113.12"}
MGMT_ADDR = {"alpha": "203.0.113.1", "beta": "203.0.113.2"}
KA_MS = int(os.environ.get("BENCH_FENCE_KA_MS", "100"))
DT_MS = int(os.environ.get("BENCH_FENCE_DT_MS", "500"))
GUID = "a123456789abcdefa123456789abcdef"
# (tool, method, label, timing): timing None = the common KA_MS/DT_MS; the last row is
# tandem at a fast setting of its own, shown apart (not in the ratios).
CONFIGS = [
    ("tandem", "ipmi", "built-in IPMI", None),
    ("tandem", "agent", "fence_ipmilan", None),
    ("heartbeat", "external/ipmi", "external/ipmi", None),
    ("tandem", "ipmi", "built-in IPMI fast", (20, 200)),
]
RIGS = []  # rigs up, for the cleanup
NS_PID = int(os.environ.get("BENCH_NS_PID", str(os.getpid())))
RESULTS = {}


def log(msg):
    B.log(msg)


# ---------------------------------------------------------------- the BMC
class Bmc:
    """ipmi_sim in namespace `ns` at `addr`, whose chassis power switch is `node`'s machine."""

    def __init__(self, rig, node, ns, addr):
        self.rig, self.node, self.ns, self.addr = rig, node, ns, addr
        self.dir = os.path.join(node.dir, "bmc")
        self.sim = None

    def write(self):
        d, n = self.dir, self.node
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "state"))
        run = os.path.join(n.dir, "run")
        # The machine: bench.py's node (node-init.sh as PID 1 of new mount/UTS/PID namespaces).
        with open(os.path.join(d, "machine.sh"), "w") as f:
            f.write(f"""#!/bin/sh
export BENCH_PY={B.PY}
exec ip netns exec {n.ns} unshare --mount --uts --pid --fork --kill-child --mount-proc \\
    {B.NODE_INIT} {n.name} {n.dir} {n.devlog}
""")
        with open(os.path.join(d, "power.sh"), "w") as f:
            f.write(f"#!/bin/sh\nexec {BMC_POWER} {d} \"$@\"\n")
        for s in ("machine.sh", "power.sh"):
            os.chmod(os.path.join(d, s), 0o755)
        # Power off: dark NICs, addresses forgotten; then the kill (bmc-power.sh).
        with open(os.path.join(d, "off-hook.sh"), "w") as f:
            f.write(f"""ip -force -n {n.ns} -batch - >/dev/null 2>&1 <<EOF
link set lan0 down
link set hb0 down
link set mgmt0 down
addr del {B.VIP}/24 dev lan0
EOF
""")
        # Power on: a fresh /run (as bench.py's boot makes it), no firewall rules, links up.
        with open(os.path.join(d, "on-hook.sh"), "w") as f:
            f.write(f"""ip netns exec {n.ns} nft flush ruleset 2>/dev/null
rm -rf {run}
mkdir -p {run}/heartbeat/ccm {run}/heartbeat/crm {run}/heartbeat/dopd {run}/crm {run}/tandem \\
    {run}/resource-agents {run}/lock
for x in heartbeat heartbeat/ccm heartbeat/crm heartbeat/dopd crm; do
    chown hacluster:haclient {run}/$x; chmod 750 {run}/$x
done
chmod 1755 {run}/resource-agents; chmod 1777 {run}/lock
ip -force -n {n.ns} -batch - >/dev/null 2>&1 <<EOF
addr del {B.VIP}/24 dev lan0
link set lan0 up
link set hb0 up
link set mgmt0 up
EOF
""")
        auths = "none md2 md5 straight"
        with open(os.path.join(d, "lan.conf"), "w") as f:
            f.write(f"""name "bmc-{n.name}"
set_working_mc 0x20
  startlan 1
    addr {self.addr} 623
    priv_limit admin
    allowed_auths_callback {auths}
    allowed_auths_user {auths}
    allowed_auths_operator {auths}
    allowed_auths_admin {auths}
    guid {GUID}
  endlan
  chassis_control "{os.path.join(d, 'power.sh')}"
  user 2 true "{USER}" "{PASSWORD}" admin 10 {auths}
""")
        with open(os.path.join(d, "bmc.emu"), "w") as f:
            f.write("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n"
                    "mc_enable 0x20\n")

    def start(self):
        self.write()
        self.sim = B.REG.popen(["ip", "netns", "exec", self.ns, "ipmi_sim", "-n", "-p", "-c",
                                os.path.join(self.dir, "lan.conf"), "-f", os.path.join(self.dir, "bmc.emu"),
                                "-s", os.path.join(self.dir, "state")],
                               stdout=open(os.path.join(self.dir, "ipmi_sim.log"), "a"), stderr=subprocess.STDOUT)
        B.wait_for(lambda: f"{self.addr}:623" in B.sh(["ip", "netns", "exec", self.ns, "ss", "-Hlun"],
                                                      check=False).stdout, 10, what=f"ipmi_sim at {self.addr}")

    def switch(self, *args):
        return B.sh([os.path.join(self.dir, "power.sh")] + list(args), check=False, timeout=30)

    def on(self):
        return "power:1" in self.switch("get", "power").stdout

    def machine_pid(self):
        try:
            return int(open(os.path.join(self.dir, "machine.pid")).read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log(self):
        out = []
        for line in B.read_lines(os.path.join(self.dir, "power.log")):
            w = line.split()
            if len(w) == 2:
                out.append((w[0], int(float(w[1]) * 1e6)))
        return out

    def offs_after(self, t_us):
        return [t for what, t in self.log() if what == "off" and t >= t_us]

    def off_requests_after(self, t_us):
        out = []
        for line in B.read_lines(os.path.join(self.dir, "power-req.log")):
            try:
                t = int(float(line.strip()) * 1e6)
            except ValueError:
                continue
            if t >= t_us:
                out.append(t)
        return out

    def ipmitool(self, *args):
        return B.sh(["ip", "netns", "exec", self.rig.ns_mc, "ipmitool", "-I", "lanplus", "-C", "3", "-N", "1", "-R", "3",
                     "-H", self.addr, "-U", USER, "-P", PASSWORD] + list(args), check=False, timeout=30)


# ---------------------------------------------------------------- nodes whose power is a BMC
class FNode(B.Node):
    bmc = None

    def boot(self):
        """Power on through the BMC's switch (a power button), then find the machine's init."""
        if not self.bmc.on():
            self.bmc.switch("set", "power", "1")
        self.find_init()

    def find_init(self):
        def child():
            up = self.bmc.machine_pid()
            if not up:
                return None
            try:
                k = int(open(f"/proc/{up}/task/{up}/children").read().split()[0])
                exe = os.readlink(f"/proc/{k}/exe")
            except (OSError, ValueError, IndexError):
                return None
            return k if "python" in os.path.basename(exe) else None
        self.init = B.wait_for(child, 20, what=f"{self.name} init")
        self.boot_us = B.now_us()

    def kill(self):
        self.bmc.switch("set", "power", "0")
        self.init = None

    def reap(self):
        self.init = None

    def freeze(self):
        """SIGSTOP every process of the machine (its init included)."""
        pids = self.pids() + ([self.init] if self.init else [])
        for p in pids:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        return len(pids)


def cut(rig, on):
    """Heartbeats cut between the nodes: UDP 694 dropped on input in both namespaces (sends
    still succeed, so neither tool logs send errors; lan0 stays up for the client)."""
    for n in rig.nodes:
        if on:
            B.sh(["ip", "netns", "exec", n.ns, "nft", "-f", "-"], input="""table inet fencecut {
 chain in { type filter hook input priority 0; policy accept; udp dport 694 drop; udp sport 694 drop; }
}
""")
        else:
            B.sh(["ip", "netns", "exec", n.ns, "nft", "delete", "table", "inet", "fencecut"], check=False)


# ---------------------------------------------------------------- the tools, with fencing
class FTandem(B.Tandem):
    fence_start_re = re.compile(r"fencing \S+: attempt 1$")
    fence_done_re = re.compile(r"fenced \S+: ")

    def configure(self):
        super().configure()
        r = self.rig
        lines = []
        for n in r.nodes:
            pw = os.path.join(r.dir, f"bmc-{n.name}.pw")
            with open(pw, "w") as f:
                f.write(PASSWORD + "\n")
            os.chmod(pw, 0o600)
            if r.params["method"] == "ipmi":
                lines.append(f"stonith {n.name} ipmi {BMC_ADDR[n.name]} {USER} {pw} cipher=3")
            else:
                lines.append(f"stonith {n.name} agent /usr/sbin/fence_ipmilan ip={BMC_ADDR[n.name]} username={USER} "
                             f"password_file={pw} lanplus=1 cipher=3 power_wait=0")
        with open(self.conf, "a") as f:
            f.write("\n".join(lines) + "\n")

    def fencing(self, node):
        r = node.exec([B.TANDEM, "status", "-s", self.sock(), "--json"], check=False, timeout=10)
        try:
            return json.loads(r.stdout)["peers"][0]["fencing"]
        except (ValueError, KeyError, IndexError, TypeError):
            return {}


class FHeartbeat(B.Heartbeat):
    fence_start_re = re.compile(r"Resetting node \S+ with")
    fence_done_re = re.compile(r"node \S+ now reset")

    def configure(self):
        super().configure()
        r = self.rig
        for n in r.nodes:
            p = n.peer
            with open(os.path.join(n.dir, "etc-ha.d", "ha.cf"), "a") as f:
                # heartbeat's v1 STONITH: one device per node, its parameters in getconfignames
                # order (hostname ipaddr userid passwd interface); heartbeat resets with it.
                f.write(f"stonith_host {n.name} external/ipmi {p.name} {BMC_ADDR[p.name]} {USER} {PASSWORD} lanplus\n")

    def start(self, node):
        # ipmi_sim has no SHA256 suites: the plugin's ipmitool gets -C 3 (through the plugin's
        # own `ipmitool` parameter, inherited from heartbeat's environment).
        node.exec(["env", f"ipmitool={self.rig.ipmitool_c3}", B.HB_BIN])


TOOL_CLASSES = {"tandem": FTandem, "heartbeat": FHeartbeat}


# ---------------------------------------------------------------- the rig
class FRig(B.Rig):
    def __init__(self, idx, tool, method, label, timing=None):
        ka, dt = timing or (KA_MS, DT_MS)
        params = {"ka": ka, "dt": dt, "method": method}
        B.TOOLS["f-" + tool] = TOOL_CLASSES[tool]
        super().__init__(idx, "f-" + tool, label, params, os.path.join(B.WORK, "fencing"))
        self.tool_name, self.method = tool, method
        self.tag = f"{tool}-{label}".replace(" ", "_").replace("/", "-")
        self.dir = os.path.join(B.WORK, "fencing", self.tag)
        self.syslog = os.path.join(self.dir, "syslog.log")
        # Names as bench.py's (run.sh sweeps tb<pid>x*), with the harness's pid when it runs us.
        p = f"tb{NS_PID % 100000}x{idx}"
        self.ns_br, self.ns_c = p + "br", p + "c"
        self.alpha = FNode(self, "alpha", p + "a")
        self.beta = FNode(self, "beta", p + "b")
        self.nodes = (self.alpha, self.beta)
        self.tool = TOOL_CLASSES[tool](self)
        self.ns_mg, self.ns_mc = p + "mg", p + "mc"
        self.ipmitool_c3 = os.path.join(self.dir, "ipmitool-c3")

    def up(self):
        super().up()
        with open(self.ipmitool_c3, "w") as f:
            f.write("#!/bin/sh\nexec ipmitool -C 3 \"$@\"\n")
        os.chmod(self.ipmitool_c3, 0o755)
        mg, mc = self.ns_mg, self.ns_mc
        for ns in (mg, mc):
            B.sh(["ip", "netns", "add", ns])
            B.REG.netns.append(ns)
            B.sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        B.sh(["ip", "-n", mg, "link", "add", "br0", "type", "bridge", "forward_delay", "0"])
        B.sh(["ip", "-n", mg, "link", "set", "br0", "up"])

        def attach(ns, addr, port):
            B.sh(["ip", "-n", ns, "link", "add", "mgmt0", "type", "veth", "peer", "name", port, "netns", mg])
            B.sh(["ip", "-n", mg, "link", "set", port, "master", "br0", "up"])
            B.sh(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", "mgmt0"])
            B.sh(["ip", "-n", ns, "link", "set", "mgmt0", "up"])
        attach(mc, "203.0.113.100", "p-client")
        for n in self.nodes:
            attach(n.ns, MGMT_ADDR[n.name], "p-" + n.name)
            ns = n.ns[:-1] + "i" + n.name[0]  # the BMC's namespace
            B.sh(["ip", "netns", "add", ns])
            B.REG.netns.append(ns)
            B.sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            attach(ns, BMC_ADDR[n.name], "p-bmc-" + n.name)
            n.bmc = Bmc(self, n, ns, BMC_ADDR[n.name])
            n.bmc.start()
            # Off until booted: the links down, as the power switch leaves them.
            B.sh(["ip", "-n", n.ns, "-batch", "-"], input="link set lan0 down\nlink set hb0 down\nlink set mgmt0 down\n")
        RIGS.append(self)

    def down(self):
        for n in self.nodes:
            if n.bmc:
                n.bmc.switch("set", "power", "0")
        if self in RIGS:
            RIGS.remove(self)


# ---------------------------------------------------------------- runs
def restore(rig, timeout=120):
    """Both machines on, the tool running on both, one holder, the client served."""
    cut(rig, False)
    restarted = []
    for n in rig.nodes:
        before = n.init
        if not n.bmc.on():
            r = n.bmc.ipmitool("chassis", "power", "on")
            if r.returncode != 0:
                n.bmc.switch("set", "power", "1")
        n.find_init()
        if n.init != before:
            restarted.append(n)
    t_r = B.now_us()
    for n in restarted:
        rig.tool.start(n)
    for n in restarted:
        B.wait_for(lambda: rig.tool.ready(n, t_r), 60, step=0.1, what=f"{rig.tag}: {n.name} back")
    time.sleep(1.0 + 2 * rig.params["ka"] / 1000.0)
    return rig.wait_stable(timeout)


def settled(rig, survivor):
    """tandem: wait until both nodes' partition slots have settled (docs/fencing.md: a failure
    within the settling window after a change waits longer), as a machine that froze at some
    random moment of a long uptime finds them; returns the survivor's slot (ms)."""
    if rig.tool_name != "tandem":
        return None
    B.wait_for(lambda: all(rig.tool.fencing(n).get("settled") for n in rig.nodes), 30, step=0.05,
               what=f"{rig.tag}: fencing slots settled")
    return rig.tool.fencing(survivor).get("slot_ms") if survivor else None


def frozen_run(rig, i):
    h = rig.holder()
    if h is None:
        raise RuntimeError(f"{rig.tag}: no single holder before run f{i}")
    s = h.peer
    plog = os.path.join(rig.dir, f"probe-f{i}.log")
    pr = rig.start_probe(plog)
    B.wait_for(lambda: len(B.probe_oks(plog)[0]) >= 30, 20, what="probe answers")
    slot = settled(rig, s)
    t0 = B.now_us()
    frozen = h.freeze()
    cut(rig, True)
    t_done = B.now_us()
    try:
        B.wait_for(lambda: B.first_ok_from(plog, s.name, t0), rig.params["dt"] / 1000.0 + 60, step=0.01,
                   what=f"{rig.tag} f{i}: answer from {s.name}")
    finally:
        time.sleep(1.0)
        rig.stop_probe(pr)
    oks, fails = B.probe_oks(plog)
    gap = max((b[0] - a[0] for a, b in zip(oks, oks[1:])), default=None)
    t_dead, line = B.log_first(rig, s, t0, rig.tool.detect_re)
    t_start, _ = B.log_first(rig, s, t0, rig.tool.fence_start_re)
    t_conf, conf_line = B.log_first(rig, s, t0, rig.tool.fence_done_re)
    offs = h.bmc.offs_after(t0)
    t_off = offs[0] if offs else None
    reqs = h.bmc.off_requests_after(t0)
    t_req = reqs[0] if reqs else None
    t_addr = next((t for t, op in B.addr_events(rig.addr_log(s)) if t >= t0 and op == "add"), None)
    t_ans = B.first_ok_from(plog, s.name, t0)
    res = {"run": i, "from": h.name, "to": s.name, "t_fault_us": t0, "frozen_procs": frozen,
           "fault_cmd_ms": B.ms(t_done, t0), "outage_ms": None if gap is None else round(gap / 1000.0, 1),
           "dead_ms": B.ms(t_dead, t0), "fence_start_ms": B.ms(t_start, t0), "off_ms": B.ms(t_off, t0),
           "confirmed_ms": B.ms(t_conf, t0), "addr_ms": B.ms(t_addr, t0), "answer_ms": B.ms(t_ans, t0),
           "dead_to_confirmed_ms": B.ms(t_conf, t_dead), "fence_ms": B.ms(t_conf, t_start),
           "wait_ms": B.ms(t_start, t_dead), "start_to_off_ms": B.ms(t_off, t_start),
           "switch_ms": B.ms(t_off, t_req), "client_ms": None if t_conf is None or t_req is None or t_off is None
           else round((t_conf - t_start - (t_off - t_req)) / 1000.0, 1),
           "powered_off": len(offs), "detect_line": line, "confirm_line": conf_line,
           "probe_fails": fails, "probe_log": os.path.relpath(plog, B.OUT)}
    if rig.tool_name == "tandem":
        f = rig.tool.fencing(s)
        res["status_fencing"] = f
        res["fence_delay_ms"] = f.get("fence_delay_ms")
        res["slot_ms"] = slot
    log(f"  {rig.tag} f{i} {h.name} frozen: dead {res['dead_ms']}, fence {res['fence_start_ms']}..{res['confirmed_ms']}"
        f" (off {res['off_ms']}), addr {res['addr_ms']}, answer {res['answer_ms']} ms; outage {res['outage_ms']}")
    restore(rig)
    return res


def partition_run(rig, i):
    h = rig.holder()
    if h is None:
        raise RuntimeError(f"{rig.tag}: no single holder before run p{i}")
    plog = os.path.join(rig.dir, f"probe-p{i}.log")
    pr = rig.start_probe(plog)
    B.wait_for(lambda: len(B.probe_oks(plog)[0]) >= 30, 20, what="probe answers")
    settled(rig, None)
    t0 = B.now_us()
    cut(rig, True)
    try:
        B.wait_for(lambda: any(n.bmc.offs_after(t0) for n in rig.nodes), rig.params["dt"] / 1000.0 + 60, step=0.01,
                   what=f"{rig.tag} p{i}: a power-off")
        # Time for a second, mutual, fence: several fence_delays.
        time.sleep(max(3.0, 8 * (rig.params["dt"] + rig.params["ka"]) / 1000.0))
    finally:
        rig.stop_probe(pr)
    off = {n.name: len(n.bmc.offs_after(t0)) for n in rig.nodes}
    oks, fails = B.probe_oks(plog)
    gap = max((b[0] - a[0] for a, b in zip(oks, oks[1:])), default=None)
    first = min((n.bmc.offs_after(t0)[0], n.name) for n in rig.nodes if n.bmc.offs_after(t0))
    res = {"run": i, "holder": h.name, "t_fault_us": t0, "powered_off": off,
           "mutual": all(off.values()), "holder_survived": off[h.name] == 0 and h.bmc.on(),
           "first_off": first[1], "first_off_ms": B.ms(first[0], t0),
           "outage_ms": None if gap is None else round(gap / 1000.0, 1), "probe_fails": fails}
    log(f"  {rig.tag} p{i} holder {h.name}: powered off {off}, first {first[1]} after {res['first_off_ms']} ms,"
        f" client's longest gap {res['outage_ms']} ms{'  MUTUAL' if res['mutual'] else ''}")
    restore(rig)
    return res


def summary(values):
    return B.summary(values)


def run_config(idx, tool, method, label, timing, runs, partitions):
    ka, dt = timing or (KA_MS, DT_MS)
    entry = {"tool": tool, "method": method, "label": label, "ka_ms": ka, "dt_ms": dt, "common": timing is None}
    log(f"fencing: {tool} {label}")
    t_start = time.monotonic()
    rig = FRig(80 + idx, tool, method, label, timing)
    try:
        rig.up()
        rig.start()
        B.wait_for(lambda: all(rig.tool.ready(n, 0) for n in rig.nodes), 120, step=0.2, what=f"{rig.tag} up")
        rig.wait_stable(120)
        time.sleep(2)
        entry["f"] = []
        for i in range(1, runs + 1):
            try:
                entry["f"].append(frozen_run(rig, i))
            except (RuntimeError, TimeoutError) as err:
                log(f"  {rig.tag} f{i}: FAILED: {err}")
                entry["f"].append({"run": i, "error": str(err)})
                break
        if partitions:
            entry["p"] = []
            for i in range(1, partitions + 1):
                try:
                    entry["p"].append(partition_run(rig, i))
                except (RuntimeError, TimeoutError) as err:
                    log(f"  {rig.tag} p{i}: FAILED: {err}")
                    entry["p"].append({"run": i, "error": str(err)})
                    break
    except (RuntimeError, TimeoutError) as err:
        log(f"  {rig.tag}: FAILED: {err}")
        entry.setdefault("errors", []).append(str(err))
    finally:
        rig.down()
        B.REG.cleanup()
    f = [r for r in entry.get("f", []) if "error" not in r]
    for k in ("dead", "fence_start", "off", "confirmed", "addr", "answer", "dead_to_confirmed", "fence", "outage",
              "fence_delay", "wait", "start_to_off", "switch", "client"):
        entry[k] = summary([r.get(k + "_ms") for r in f])
    # The frozen node alternates: the survivor is named second or first in turn (tandem,
    # settled: half of fence_delay either way).
    entry["by_frozen"] = {n: summary([r.get("dead_to_confirmed_ms") for r in f if r.get("from") == n])
                          for n in sorted({r.get("from") for r in f if r.get("from")})}
    p = [r for r in entry.get("p", []) if "error" not in r]
    if p:
        entry["mutual"] = sum(1 for r in p if r["mutual"])
        entry["holder_survived"] = sum(1 for r in p if r["holder_survived"])
        entry["partitions"] = len(p)
    entry["phase_s"] = round(time.monotonic() - t_start, 1)
    return entry


# ---------------------------------------------------------------- report
def fmt(s, unit=""):
    return B.fmt_range(s, unit)


def ratios():
    by = {(e["tool"], e["method"]): e for e in RESULTS.get("configs", []) if e.get("common", True)}
    t, a, hb = by.get(("tandem", "ipmi")), by.get(("tandem", "agent")), by.get(("heartbeat", "external/ipmi"))
    out = {}

    def med(e, k):
        return (e or {}).get(k, {}) and e[k]["median"]
    if med(t, "dead_to_confirmed") and med(hb, "dead_to_confirmed"):
        out["tandem_ipmi_vs_heartbeat_dead_to_confirmed"] = round(med(t, "dead_to_confirmed") / med(hb, "dead_to_confirmed"), 2)
    if med(t, "fence") and med(hb, "fence"):
        out["tandem_ipmi_vs_heartbeat_fence"] = round(med(t, "fence") / med(hb, "fence"), 2)
    if med(a, "dead_to_confirmed") and med(hb, "dead_to_confirmed"):
        out["tandem_agent_vs_heartbeat_dead_to_confirmed"] = round(med(a, "dead_to_confirmed") / med(hb, "dead_to_confirmed"), 2)
    if med(t, "fence"):
        out["tandem_ipmi_fence_ms"] = med(t, "fence")
    if med(t, "client"):
        out["tandem_ipmi_fence_without_the_switch_ms"] = med(t, "client")
    if med(t, "answer") and med(hb, "answer"):
        out["tandem_ipmi_vs_heartbeat_answer"] = round(med(t, "answer") / med(hb, "answer"), 2)
    fast = next((e for e in RESULTS.get("configs", []) if not e.get("common", True) and e["method"] == "ipmi"), None)
    if med(fast, "dead_to_confirmed") and med(hb, "dead_to_confirmed"):
        out["tandem_ipmi_fast_vs_heartbeat_dead_to_confirmed"] = round(
            med(fast, "dead_to_confirmed") / med(hb, "dead_to_confirmed"), 2)
    if med(fast, "answer") and med(hb, "answer"):
        out["tandem_ipmi_fast_vs_heartbeat_answer"] = round(med(fast, "answer") / med(hb, "answer"), 2)
    return out


def config_name(e):
    """A configuration's row name; one at its own timing says which."""
    return f"{e['tool']} {e['label']}" + ("" if e.get("common", True) else f" ({e['ka_ms']}ms/{e['dt_ms']}ms)")


def markdown():
    R = RESULTS
    m = R.get("machine", {})
    L = [f"Measured {R['started']} on {m.get('nproc')} × {m.get('cpu')}, Linux {m.get('kernel')}; "
         f"{m.get('tandem')}, heartbeat {m.get('packages', {}).get('heartbeat')}, OpenIPMI ipmi_sim {R.get('ipmi_sim')}."
         f" keepalive {KA_MS} ms, deadtime {DT_MS} ms for all (one extra tandem row at its own fast setting);"
         f" tandem's fence_delay automatic. {R['runs']} frozen-holder runs"
         f" and {R['partitions']} partitions per configuration; phase wall time {R.get('duration_s', 0) / 60:.1f} min;"
         f" load average (1 min) {R.get('loadavg_start', ['?'])[0]} at the start, {R.get('loadavg_end', ['?'])[0]} at the end"
         " (the machine is shared: the BMC's switch and every process but tandem's loop run at normal priority).",
         "", f"Command: `{R.get('command')}`", ""]
    L.append("**(f) frozen holder** — median (min–max), ms from the fault (SIGSTOP on every process of the holder"
             " + its heartbeats cut). *death→confirmed* is the survivor's own log (death declared → fence confirmed);"
             " *fence* is fence started → confirmed (tandem: its attempt; heartbeat: `Resetting node` → `now reset`).")
    L.append("")
    L.append("| configuration | death declared | fence started | machine off (BMC) | fence confirmed | address up | first answer"
             " | death→confirmed | of which waiting (fence_delay) | fence | tandem's fence_delay |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for e in R.get("configs", []):
        name = f"{e['tool']} {e['label']}" + ("" if e.get("common", True) else f" (keepalive {e['ka_ms']} ms, deadtime {e['dt_ms']} ms)")
        L.append(f"| {name} | {fmt(e.get('dead'))} | {fmt(e.get('fence_start'))} | {fmt(e.get('off'))}"
                 f" | {fmt(e.get('confirmed'))} | {fmt(e.get('addr'))} | {fmt(e.get('answer'))}"
                 f" | {fmt(e.get('dead_to_confirmed'))} | {fmt(e.get('wait'))} | {fmt(e.get('fence'))}"
                 f" | {fmt(e.get('fence_delay'))} |")
    L.append("")
    L.append("The frozen node alternates between runs (an even number of runs: both the same weight). *death→confirmed*"
             " by the frozen node (alpha is named first in `node`; tandem's survivor, settled, waits half of its"
             " fence_delay whichever node it is):")
    L.append("")
    L.append("| configuration | alpha frozen | beta frozen |")
    L.append("|---|---|---|")
    for e in R.get("configs", []):
        name = config_name(e)
        bf = e.get("by_frozen", {})
        L.append(f"| {name} | {fmt(bf.get('alpha'))} | {fmt(bf.get('beta'))} |")
    L.append("")
    L.append("**A fence, split** — fence started → confirmed, and of it the BMC's power switch (the power-off request"
             " reaching the switch → every process of the machine gone: its links taken down, the PID namespace killed"
             " and torn down) and the rest (the fence's child or plugin, the RMCP+ session and commands, the read-back).")
    L.append("")
    L.append("| configuration | fence | the BMC's switch | the rest |")
    L.append("|---|---|---|---|")
    for e in R.get("configs", []):
        name = config_name(e)
        L.append(f"| {name} | {fmt(e.get('fence'))} | {fmt(e.get('switch'))} | {fmt(e.get('client'))} |")
    L.append("")
    L.append("**(p) partition** — heartbeats cut, both nodes alive: power-offs per run.")
    L.append("")
    L.append("| configuration | partitions | mutual fences | holder kept the group | first power-off after (ms) | client's longest gap (ms) |")
    L.append("|---|---|---|---|---|---|")
    for e in R.get("configs", []):
        p = [r for r in e.get("p", []) if "error" not in r]
        if not p:
            continue
        name = config_name(e)
        L.append(f"| {name} | {len(p)} | **{e.get('mutual')}** | {e.get('holder_survived')}"
                 f" | {fmt(summary([r['first_off_ms'] for r in p]))} | {fmt(summary([r['outage_ms'] for r in p]))} |")
    r = R.get("ratios", {})
    if r:
        L.append("")
        L.append("**Ratios** (medians): " + "; ".join(f"{k.replace('_', ' ')} **{v}**" for k, v in r.items()))
    errs = [(e["tool"], e["label"], x.get("error")) for e in R.get("configs", []) for k in ("f", "p")
            for x in e.get(k, []) if "error" in x] + [(e["tool"], e["label"], x) for e in R.get("configs", [])
                                                       for x in e.get("errors", [])]
    if errs:
        L.append("")
        L.append("**Errors during this run:**")
        L.append("")
        for t, lab, x in errs:
            L.append(f"- {t} {lab}: {x}")
    return "\n".join(L) + "\n"


def plot(path_svg):
    """One frozen-holder run per configuration (the one with the median death→confirmed): the
    client's answers and the milestones, one panel each, a common time scale."""
    rows = []
    for e in RESULTS.get("configs", []):
        runs = sorted([r for r in e.get("f", []) if r.get("answer_ms") is not None],
                      key=lambda r: r.get("dead_to_confirmed_ms") or 0)
        if runs:
            rows.append((e, runs[len(runs) // 2]))
    if not rows or not shutil.which("gnuplot"):
        return False
    gone = [r["probe_log"] for _, r in rows if not os.path.exists(os.path.join(B.OUT, r["probe_log"]))]
    if gone:
        # Without the client's answers the plot would show milestones only: keep the last one.
        log(f"fencing: no plot ({', '.join(gone)} gone); docs/benchmarks-fencing.svg left as it is")
        return False
    d = os.path.join(B.OUT, "fencing-plot")
    os.makedirs(d, exist_ok=True)
    panels = []
    for k, (e, r) in enumerate(rows):
        # each panel its own time scale (a fence_ipmilan run is several times longer)
        hi = r["answer_ms"] * 1.12 + 50
        lo = -0.04 * hi
        t0 = r["t_fault_us"]
        with open(os.path.join(d, f"ok{k}.dat"), "w") as fo, open(os.path.join(d, f"fail{k}.dat"), "w") as ff:
            for line in B.read_lines(os.path.join(B.OUT, r["probe_log"])):
                p = line.split()
                if len(p) >= 2 and p[0].isdigit():
                    x = (int(p[0]) - t0) / 1000.0
                    if lo <= x <= hi:
                        (fo if p[1] == "ok" else ff).write(f"{x:.1f} 0.5\n")
        marks = ["set arrow from 0,0 to 0,1 nohead lw 2 lc rgb '#000000'",
                 "set label 'fault' at 0,0.93 offset 0.5,0 font 'sans,9'"]
        for key, lab, y, col in (("dead_ms", "dead", 0.82, "#3355aa"), ("fence_start_ms", "fence start", 0.71, "#aa5533"),
                                 ("off_ms", "off (BMC)", 0.60, "#aa3333"), ("confirmed_ms", "confirmed", 0.49, "#aa3333"),
                                 ("addr_ms", "address up", 0.2, "#3355aa"), ("answer_ms", "first answer", 0.09, "#2e8b57")):
            v = r.get(key)
            if v is not None:
                marks.append(f"set arrow from {v},0 to {v},1 nohead lw 1.2 dt 2 lc rgb '{col}'")
                marks.append(f"set label '{lab} {v:.0f}' at {v},{y} offset 0.5,0 font 'sans,9'")
        timing = "" if e.get("common", True) else f" at {e['ka_ms']}ms/{e['dt_ms']}ms"
        panels.append(f"""unset arrow; unset label
set title '{e['tool']} {e['label']}{timing}: frozen holder; death -> confirmed {r['dead_to_confirmed_ms']:.0f} ms, first answer {r['answer_ms']:.0f} ms' font 'sans,11' noenhanced
set xrange [{lo:.0f}:{hi:.0f}]
{chr(10).join(marks)}
plot '{d}/ok{k}.dat' using 1:2 with points pt 7 ps 0.5 lc rgb '#2e8b57' title 'answered', \\
     '{d}/fail{k}.dat' using 1:2 with points pt 2 ps 0.7 lc rgb '#cc3333' title 'no answer'
""")
    n = len(panels)
    gp = f"""set terminal svg size 960,{220 * n} font 'sans,10' background '#ffffff'
set output '{path_svg}'
set yrange [0:1]
unset ytics
set xlabel 'ms since the fault (keepalive {KA_MS} ms, deadtime {DT_MS} ms unless noted)'
set grid xtics
set key outside right top vertical font 'sans,9'
set multiplot layout {n},1
{"".join(panels)}unset multiplot
"""
    with open(os.path.join(d, "timeline.gp"), "w") as f:
        f.write(gp)
    r = subprocess.run(["gnuplot", os.path.join(d, "timeline.gp")], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"gnuplot: {r.stderr.strip()[:300]}")
        return False
    return True


def update_docs(md, svg):
    """The section; and the plot when `svg` is this run's (None: keep the one in docs/)."""
    if not results.update_block("<!-- BEGIN GENERATED FENCING -->", "<!-- END GENERATED FENCING -->", md):
        return
    if svg:
        shutil.copy(svg, os.path.join(REPO, "docs", "benchmarks-fencing.svg"))


def save():
    results.write_json(B.OUT, "fencing.json", RESULTS)


def finish(update):
    RESULTS["ratios"] = ratios()
    svg = os.path.join(B.OUT, "fencing-timeline.svg")
    if not plot(svg):
        svg = None
    md = markdown()
    with open(os.path.join(B.OUT, "fencing.md"), "w") as f:
        f.write(md)
    save()
    print(md)
    if update:
        update_docs(md, svg)
        log("fencing: docs/benchmarks.md" + (" and docs/benchmarks-fencing.svg" if svg else "") + " updated")


def phase(runs, partitions, only=".*", update=True):
    """The fencing phase (bench.py calls it; so does this file's main)."""
    for p, what in ((B.TANDEM, "tandem binary (TANDEM=)"), (B.PROBE, "probe binary (PROBE=)"), (B.HB_BIN, "heartbeat")):
        if not os.access(p, os.X_OK):
            raise RuntimeError(f"missing {what}: {p}")
    for tool in ("ipmi_sim", "ipmitool", "fence_ipmilan", "nft", "unshare", "nsenter"):
        if not shutil.which(tool):
            raise RuntimeError(f"missing {tool}")
    if B.WORK is None:
        B.WORK = os.path.join(B.OUT, "run")
    os.makedirs(os.path.join(B.WORK, "fencing"), exist_ok=True)
    runs += runs % 2  # the frozen node alternates: as many runs for each
    t_start = time.monotonic()
    sel = re.compile(only)
    ipmi_sim = B.sh(["dpkg-query", "-W", "-f", "${Version}", "openipmi"], check=False).stdout.strip()
    RESULTS.update({"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": B.machine(), "runs": runs,
                    "partitions": partitions, "ka_ms": KA_MS, "dt_ms": DT_MS, "ipmi_sim": ipmi_sim,
                    "command": os.environ.get("BENCH_COMMAND", "python3 bench/fencing.py"), "configs": [],
                    "loadavg_start": [round(x, 2) for x in os.getloadavg()]})
    for idx, (tool, method, label, timing) in enumerate(CONFIGS):
        if not sel.search(f"{tool} {label}"):
            continue
        # Partitions for the built-in client (at both settings) and heartbeat (fence_ipmilan
        # only changes the time of a fence; tests/fencing.rs runs 20 at 20ms/200ms).
        parts = partitions if method != "agent" else 0
        RESULTS["configs"].append(run_config(idx, tool, method, label, timing, runs, parts))
        save()
    RESULTS["duration_s"] = round(time.monotonic() - t_start, 1)
    RESULTS["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    finish(update)
    return RESULTS


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_FENCE_RUNS", "5")))
    ap.add_argument("--partitions", type=int, default=int(os.environ.get("BENCH_FENCE_PARTITIONS", "5")))
    ap.add_argument("--only", default=os.environ.get("BENCH_FENCE_ONLY", ".*"))
    ap.add_argument("--render", action="store_true", help="rebuild the table, plot and docs from fencing.json")
    a = ap.parse_args()
    update = os.environ.get("BENCH_UPDATE_DOCS", "1") not in ("", "0")
    if a.render:
        RESULTS.update(json.load(open(os.path.join(B.OUT, "fencing.json"))))
        finish(update)
        return 0
    if os.geteuid() != 0:
        print("fencing: run as root (network namespaces)", file=sys.stderr)
        return 2

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    B.WORK = os.path.join(B.OUT, "run")
    try:
        phase(a.runs, a.partitions, a.only, update)
    except KeyboardInterrupt as e:
        log(f"fencing: interrupted ({e}); cleaning up")
        return 130
    except RuntimeError as e:
        print(f"fencing: {e}", file=sys.stderr)
        return 2
    finally:
        for r in list(RIGS):
            r.down()
        B.REG.cleanup()
    log(f"fencing: done in {RESULTS.get('duration_s', 0) / 60:.1f} min; results in {B.OUT}/fencing.json and fencing.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
