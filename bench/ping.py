#!/usr/bin/python3
"""The holder loses its uplink: tandem's ping targets against keepalived's track_interface.

The rig is bench.py's (bridge, alpha, beta, client; each node a "machine"), plus a router-like
namespace on the client LAN answering echoes on 192.0.2.254 and 192.0.2.253: tandem's ping
targets. The fault: `ip link set lan0 down` in the holder's namespace. lan0 carries the
floating address and the client's traffic; tandem's heartbeats also run on hb0, which stays
up, so nobody dies: tandem's holder counts fewer targets than its peer and hands the group
over (ping_deadtime + ping_hold + the orderly hand-over). keepalived runs VRRP on lan0 with
`track_interface { lan0 }`: the master goes to FAULT and the backup takes over when it stops
hearing adverts (3 × advert_int + skew). Both with their defaults, then both tuned.

Per tool and setting, BENCH_RUNS runs (the holder alternates; after each run the old holder's
lan0 comes back and the cluster settles): client-observed outage (longest gap between two
answers, probing every 10 ms), fault → decision (tandem: the holder's "reaches fewer ping
targets" line; keepalived: the backup's "Entering MASTER STATE"), decision → address up
(tandem: the orderly hand-over, the service's stop on the old holder included), fault →
address up on the survivor (rtnetlink), fault → first answer from the survivor. Times are
taken from the return of the `ip link set` command (the outage does not depend on it).
Medians and ranges, and the ratio tandem/keepalived per pair.

usage: bench/ping.py            (root; or `make bench PHASES=ping`, or part of `make bench`)
Environment: as bench.py (BENCH_RUNS, BENCH_QUICK, BENCH_ONLY, BENCH_OUT, TANDEM, PROBE,
BENCH_UPDATE_DOCS); TANDEM defaults to the release build, else the debug one; PROBE is built
with rustc when missing. Results: bench/out/ping.json, ping.md, and docs/benchmarks.md
between its ping markers. Standard library only.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import results

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ("192.0.2.254", "192.0.2.253")

# (tool, label, params): the defaults of both, then both tuned to a comparable speed.
SETTINGS = [
    ("tandem", "defaults", {"ping": "", "ka": 1000, "dt": 10000, "budget_s": 14}),
    ("keepalived", "defaults (advert_int 1)", {"adv": "1", "ka": 1000, "dt": 3000, "budget_s": 6}),
    ("tandem", "ping 100ms/300ms, hold 0", {"ping": "ping_interval 100ms\nping_deadtime 300ms\nping_hold 0\n",
                                            "ka": 1000, "dt": 10000, "budget_s": 3}),
    ("keepalived", "advert_int 0.1", {"adv": "0.1", "ka": 100, "dt": 300, "budget_s": 3}),
]
PAIRS = [("tandem defaults", "keepalived defaults (advert_int 1)"),
         ("tandem ping 100ms/300ms, hold 0", "keepalived advert_int 0.1")]
BEGIN, END = "<!-- BEGIN PING RESULTS -->", "<!-- END PING RESULTS -->"


def tool_classes(B):
    """tandem and keepalived as bench.py runs them, with ping targets and track_interface."""

    class TandemPing(B.Tandem):
        detect_re = re.compile(r"reaches fewer ping targets")
        detect_on_holder = True

        def configure(self):
            super().configure()
            with open(self.conf, "a") as f:
                f.write(f"ping {' '.join(TARGETS)}\n{self.rig.params['ping']}")

        def ready(self, node, since_us):
            """The peer is up, and this node counts every target, as its peer does."""
            r = node.exec([B.TANDEM, "status", "-s", self.sock(), "--json"], check=False, timeout=10)
            try:
                st = json.loads(r.stdout)
            except ValueError:
                return False
            p = st.get("ping", {})
            return any(x.get("state") == "up" for x in st.get("peers", [])) and \
                p.get("count") == len(TARGETS) and p.get("peer_count") == len(TARGETS) and \
                not p.get("fewer_than_peer")

    class KeepalivedTrack(B.Keepalived):
        detect_re = re.compile(r"Entering MASTER STATE")
        detect_on_holder = False

        def configure(self):
            super().configure()
            for n in (self.rig.alpha, self.rig.beta):
                path = os.path.join(n.dir, "etc-keepalived", "keepalived.conf")
                text = open(path).read()
                text = text.replace("    interface lan0\n", "    interface lan0\n    track_interface {\n        lan0\n    }\n")
                open(path, "w").write(text)

    return {"tandem": TandemPing, "keepalived": KeepalivedTrack}


def make_rig(B, idx, tool, label, params, base):
    """bench.py's rig, plus the targets' namespace on the bridge."""
    classes = tool_classes(B)

    class PingRig(B.Rig):
        def __init__(self):
            saved = B.TOOLS[tool]
            B.TOOLS[tool] = classes[tool]
            try:
                super().__init__(idx, tool, label, params, base)
            finally:
                B.TOOLS[tool] = saved
            self.ns_t = self.ns_c[:-1] + "t"

        def up(self):
            super().up()
            ns = self.ns_t
            B.sh(["ip", "netns", "add", ns])
            B.REG.netns.append(ns)
            B.sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            B.sh(["ip", "-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", "p-targets",
                  "netns", self.ns_br])
            B.sh(["ip", "-n", self.ns_br, "link", "set", "p-targets", "master", "br0", "up"])
            for a in TARGETS:
                B.sh(["ip", "-n", ns, "addr", "add", a + "/24", "dev", "lan0"])
            B.sh(["ip", "-n", ns, "link", "set", "lan0", "up"])

    return PingRig()


def one_run(B, rig, i):
    h = rig.holder()
    if h is None:
        raise RuntimeError(f"{rig.tag}: no single holder before run {i}")
    s = h.peer
    plog = os.path.join(rig.dir, f"probe-ping{i}.log")
    pr = rig.start_probe(plog)
    B.wait_for(lambda: len(B.probe_oks(plog)[0]) >= 30, 20, what="probe answers")
    t0 = B.now_us()
    B.sh(["ip", "-n", h.ns, "link", "set", "lan0", "down"])
    # The link goes down at the end of the command (most of its time is the program's start):
    # times are taken from its return.
    t_f = B.now_us()
    try:
        B.wait_for(lambda: B.first_ok_from(plog, s.name, t0), rig.params["budget_s"] + 30, step=0.01,
                   what=f"{rig.tag} run {i}: answer from {s.name}")
    finally:
        time.sleep(1.0)
        rig.stop_probe(pr)
    oks, fails = B.probe_oks(plog)
    gap = max((b[0] - a[0] for a, b in zip(oks, oks[1:])), default=None)
    t_ans = B.first_ok_from(plog, s.name, t0)
    t_addr = next((t for t, op in B.addr_events(rig.addr_log(s)) if t >= t0 and op == "add"), None)
    who = h if rig.tool.detect_on_holder else s
    t_det, det_line = B.log_first(rig, who, t0, rig.tool.detect_re)
    deaths = [line for line in B.read_lines(rig.syslog) if re.search(r"-> dead|is dead", line)
              and int(line.split(" ", 1)[0]) >= t0]
    res = {"run": i, "from": h.name, "to": s.name, "t_fault_us": t_f, "fault_cmd_ms": B.ms(t_f, t0),
           "outage_ms": None if gap is None else round(gap / 1000.0, 1),
           "decision_ms": B.ms(t_det, t_f), "addr_ms": B.ms(t_addr, t_f), "answer_ms": B.ms(t_ans, t_f),
           "handover_ms": B.ms(t_addr, t_det),
           "decision_line": det_line, "deaths": len(deaths), "probe_fails": fails,
           "probe_log": os.path.relpath(plog, B.OUT)}
    B.log(f"  {rig.tag} run {i} {h.name}->{s.name}: outage {res['outage_ms']} ms, decision {res['decision_ms']},"
          f" addr {res['addr_ms']}, answer {res['answer_ms']} (fault command {res['fault_cmd_ms']} ms)")
    # The old holder's uplink comes back; the cluster settles (the group stays where it is).
    t_r = B.now_us()
    B.sh(["ip", "-n", h.ns, "link", "set", "lan0", "up"])
    B.wait_for(lambda: rig.tool.ready(h, t_r), 60, step=0.1, what=f"{rig.tag}: {h.name} ready again")
    time.sleep(1.0)
    rig.wait_stable(60)
    return res


def run_setting(B, e, base):
    tool, label, params = e["tool"], e["setting"], e["params"]
    B.log(f"ping: {tool} {label}")
    rig = make_rig(B, 70 + e["idx"], tool, label, params, base)
    t_start = time.monotonic()
    try:
        rig.up()
        rig.start()
        rig.wait_stable(120)
        time.sleep(1)
        runs = []
        for i in range(1, B.RUNS + 1):
            try:
                runs.append(one_run(B, rig, i))
            except (RuntimeError, TimeoutError) as err:
                B.log(f"  {rig.tag} run {i}: FAILED: {err}")
                runs.append({"run": i, "error": str(err)})
                break
        e["runs"] = runs
        for k in ("outage", "decision", "handover", "addr", "answer"):
            e[k] = B.summary([r.get(k + "_ms") for r in runs])
    except (RuntimeError, TimeoutError) as err:
        B.log(f"  {rig.tag}: FAILED: {err}")
        e.setdefault("errors", []).append(str(err))
    finally:
        rig.down()
        B.REG.cleanup()
        e["phase_s"] = round(time.monotonic() - t_start, 1)


def markdown(B, R):
    m = R["machine"]
    L = [f"Measured {R['started']} on {m['nproc']} × {m['cpu']}, Linux {m['kernel']}; keepalived"
         f" {m['packages'].get('keepalived')}, {m['tandem']}. {R['runs']} runs per setting; the phase took"
         f" {R['duration_s'] / 60:.1f} min. Command: `{R['command']}`.", "",
         "| tool | setting | decides by | client outage | fault → decision | decision → address up | fault → address up"
         " | fault → first answer |",
         "|---|---|---|---|---|---|---|---|"]
    how = {"tandem": "fewer targets than the peer for ping_hold", "keepalived": "adverts missing (master in FAULT)"}
    for e in R["settings"]:
        L.append(f"| {e['tool']} | {e['setting']} | {how[e['tool']]} | {B.fmt_range(e.get('outage'), ' ms')}"
                 f" | {B.fmt_range(e.get('decision'))} | {B.fmt_range(e.get('handover'))} | {B.fmt_range(e.get('addr'))}"
                 f" | {B.fmt_range(e.get('answer'))} |")
    L.append("")
    for a, b in PAIRS:
        ea = next((e for e in R["settings"] if f"{e['tool']} {e['setting']}" == a), None)
        eb = next((e for e in R["settings"] if f"{e['tool']} {e['setting']}" == b), None)
        if ea and eb and ea.get("outage") and eb.get("outage"):
            L.append(f"- outage ratio {a} / {b}: **{ea['outage']['median'] / eb['outage']['median']:.2f}**")
    deaths = sum(r.get("deaths", 0) for e in R["settings"] for r in e.get("runs", []))
    L.append(f"- peers declared dead during the runs: {deaths} (the heartbeat link stays up; tandem moves"
             " the group by the orderly hand-over)")
    errs = [(e["tool"], e["setting"], x) for e in R["settings"] for x in e.get("errors", [])]
    errs += [(e["tool"], e["setting"], r["error"]) for e in R["settings"] for r in e.get("runs", []) if "error" in r]
    for t, s, x in errs:
        L.append(f"- error: {t} {s}: {x}")
    return "\n".join(L) + "\n"


def update_docs(md):
    results.update_block(BEGIN, END, md)


def phase_ping(B):
    """The ping phase; returns its results (also written to BENCH_OUT/ping.json and ping.md)."""
    t_start = time.monotonic()
    base = os.path.join(B.OUT, "run", "ping")
    os.makedirs(base, exist_ok=True)
    entries = [{"idx": i, "tool": t, "setting": l, "params": p} for i, (t, l, p) in enumerate(SETTINGS)
               if B.ONLY.search(f"{t} {l}")]
    R = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": B.machine(), "runs": B.RUNS,
         "command": os.environ.get("BENCH_COMMAND", "bench/ping.py"), "targets": list(TARGETS), "settings": entries}
    B.log(f"ping: {len(entries)} settings, {B.RUNS} runs each; work in {base}")
    for e in entries:
        run_setting(B, e, base)
    R["duration_s"] = round(time.monotonic() - t_start, 1)
    md = markdown(B, R)
    with open(os.path.join(B.OUT, "ping.json"), "w") as f:
        json.dump(R, f, indent=1)
    with open(os.path.join(B.OUT, "ping.md"), "w") as f:
        f.write(md)
    print(md)
    if B.UPDATE_DOCS:
        update_docs(md)
        B.log("ping: docs/benchmarks.md updated")
    B.log(f"ping: done in {R['duration_s'] / 60:.1f} min; results in {B.OUT}/ping.json and ping.md")
    return R


def main():
    if os.geteuid() != 0:
        print("bench/ping.py: must run as root (network namespaces)", file=sys.stderr)
        return 2
    sys.path.insert(0, HERE)
    repo = os.path.dirname(HERE)
    if "TANDEM" not in os.environ:
        rel = os.path.join(repo, "target/x86_64-unknown-linux-gnu/release/tandem")
        os.environ["TANDEM"] = rel if os.path.exists(rel) else os.path.join(repo, "target/debug/tandem")
    import bench as B  # reads the environment above

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    os.makedirs(B.OUT, exist_ok=True)
    if not os.access(B.PROBE, os.X_OK):
        subprocess.run(["rustc", "-O", "--edition", "2021", os.path.join(repo, "examples/probe.rs"), "-o", B.PROBE],
                       check=True)
    for p in (B.TANDEM, B.KA_BIN):
        if not os.access(p, os.X_OK):
            print(f"bench/ping.py: missing {p}", file=sys.stderr)
            return 2
    try:
        phase_ping(B)
    except KeyboardInterrupt:
        B.log("ping: interrupted; cleaning up")
        return 130
    finally:
        B.REG.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
