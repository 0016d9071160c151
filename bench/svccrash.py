#!/usr/bin/python3
"""Service crash to first answer: tandem's monitor against keepalived's vrrp_script.

The rig, the nodes, the service and the client are bench/bench.py's (imported). The fault:
SIGKILL to the service's listening process (socat) on the node that holds the floating
address; the figure is the client's time from the kill to its first good answer after the
answers stopped, and the longest gap between two answers.

- tandem, `monitor INTERVAL web` on the group `ip::VIP script::svc-wrapper`: the holder's
  monitor sees the service gone and restarts it in place (the address stays); restart_limit
  100 so that every run is an in-place restart.
- keepalived, `vrrp_script` with `fall 1 rise 1` tracked by the instance (weight 0: a
  failure puts the instance in FAULT, it gives up the address, the backup becomes master and
  starts the service from notify_master). The check runs the same LSB status, but only on the
  node that holds the address (elsewhere it says ok: the service is stopped there by design),
  so the faulted node comes back as backup. keepalived's `vrrp_track_process` cannot work in
  the rig: it listens to the kernel's process-events connector, which exists only in the
  initial network namespace (a netlink connector socket in another one is refused), and the
  VRRP instance has to run in the node's namespace. keepalived takes vrrp_script intervals in
  whole seconds: 1 s is its fastest.

Environment: BENCH_RUNS (5; 1 with BENCH_QUICK=1), BENCH_UPDATE_DOCS (1 unless quick), TANDEM,
PROBE, BENCH_OUT (bench/out), BENCH_ONLY (regex on "tool setting"). Writes
BENCH_OUT/svccrash.json and svccrash.md, and the section between the SVCCRASH markers of
docs/benchmarks.md. Root; standard library only.
"""
import json
import os
import re
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (the rig, the tools, the probe)
import results  # noqa: E402

RUNS = B.RUNS
# tool, setting, rig parameters: keepalive/deadtime as bench.py's 100ms/300ms rung, VRRP at 0.1 s.
SETTINGS = [
    ("tandem", "monitor 100ms", {"ka": 100, "dt": 300, "monitor": "100ms"}),
    ("tandem", "monitor 1s", {"ka": 100, "dt": 300, "monitor": "1s"}),
    ("keepalived", "vrrp_script interval 1", {"adv": "0.1", "ka": 100, "dt": 300, "interval": 1}),
]


class TandemMon(B.Tandem):
    detect_re = re.compile(r"monitor: \S+ is not running")

    def configure(self):
        super().configure()
        with open(self.conf, "a") as f:
            f.write(f"monitor {self.rig.params['monitor']} web\nrestart_limit 100\n")


class KeepalivedScript(B.Keepalived):
    detect_re = re.compile(r"VRRP_Script\(chk_svc\) failed")

    def configure(self):
        super().configure()
        r = self.rig
        check = os.path.join(r.dir, "check-svc")
        with open(check, "w") as f:
            f.write(f"""#!/bin/sh
# keepalived's check: the service's LSB status, on the node that holds the address only.
ip -o -4 addr show dev lan0 | grep -q ' {B.VIP}/' || exit 0
exec {B.SVC} {B.VIP} {B.PORT} "$(uname -n)" /run/bench-svc status
""")
        os.chmod(check, 0o755)
        for n in r.nodes:
            p = os.path.join(n.dir, "etc-keepalived", "keepalived.conf")
            text = open(p).read()
            script = (f"vrrp_script chk_svc {{\n    script \"{check}\"\n    interval {r.params['interval']}\n"
                      f"    timeout 1\n    fall 1\n    rise 1\n}}\nvrrp_instance VI_1 {{")
            text = text.replace("vrrp_instance VI_1 {", script, 1)
            text = text.replace("    notify_master", "    track_script {\n        chk_svc\n    }\n    notify_master", 1)
            with open(p, "w") as f:
                f.write(text)


TOOLS = {"tandem": TandemMon, "keepalived": KeepalivedScript}


def listener_pid(node):
    """The service's listening socat (its per-connection children have a socat parent)."""
    for p in node.pids():
        try:
            if open(f"/proc/{p}/comm").read().strip() != "socat":
                continue
            ppid = int(re.search(r"^PPid:\s+(\d+)", open(f"/proc/{p}/status").read(), re.M).group(1))
            if open(f"/proc/{ppid}/comm").read().strip() != "socat":
                return p
        except (OSError, AttributeError, ValueError):
            continue
    return None


def crash_run(rig, i):
    h = rig.holder()
    if h is None:
        raise RuntimeError(f"{rig.tag}: no single holder before run {i}")
    pid = B.wait_for(lambda: listener_pid(h), 10, what=f"{rig.tag}: the service on {h.name}")
    plog = os.path.join(rig.dir, f"probe-crash{i}.log")
    pr = rig.start_probe(plog)
    B.wait_for(lambda: len(B.probe_oks(plog)[0]) >= 30, 20, what="probe answers")
    t0 = B.now_us()
    os.kill(pid, 9)

    def answered():
        fails = [int(line.split()[0]) for line in B.read_lines(plog)
                 if line.split()[1:2] == ["fail"] and int(line.split()[0]) >= t0]
        if not fails:
            return None
        return next((t for t, _w in B.probe_oks(plog)[0] if t > fails[0]), None)
    try:
        t_ans = B.wait_for(answered, 30, step=0.01, what=f"{rig.tag} run {i}: an answer after the crash")
    finally:
        time.sleep(0.5)
        rig.stop_probe(pr)
    oks, fails = B.probe_oks(plog)
    gap = max((b[0] - a[0] for a, b in zip(oks, oks[1:])), default=None)
    who = next((w for t, w in oks if t == t_ans), None)
    t_det, _line = B.log_first(rig, h, t0, rig.tool.detect_re)
    res = {"run": i, "node": h.name, "answered_by": who, "answer_ms": B.ms(t_ans, t0), "detect_ms": B.ms(t_det, t0),
           "outage_ms": None if gap is None else round(gap / 1000.0, 1), "probe_fails": fails,
           "probe_log": os.path.relpath(plog, B.OUT)}
    B.log(f"  {rig.tag} crash{i} on {h.name}: first answer {res['answer_ms']} ms (from {who}), detected "
          f"{res['detect_ms']} ms, longest gap {res['outage_ms']} ms")
    time.sleep(1.0)
    rig.wait_stable(30)
    time.sleep(0.5)
    return res


def run_setting(idx, tool, label, params, work):
    B.TOOLS[tool] = TOOLS[tool]
    rig = B.Rig(80 + idx, tool, label, params, work)
    e = {"tool": tool, "setting": label, "params": params}
    t_start = time.monotonic()
    try:
        rig.up()
        rig.start()
        rig.wait_stable(120)
        time.sleep(2)
        runs = []
        for i in range(1, RUNS + 1):
            try:
                runs.append(crash_run(rig, i))
            except (RuntimeError, TimeoutError) as err:
                B.log(f"  {rig.tag} crash{i}: FAILED: {err}")
                runs.append({"run": i, "error": str(err)})
                break
        e["runs"] = runs
        for k in ("answer", "detect", "outage"):
            e[k] = B.summary([r.get(k + "_ms") for r in runs])
    except (RuntimeError, TimeoutError) as err:
        B.log(f"  {rig.tag}: FAILED: {err}")
        e["error"] = str(err)
    finally:
        rig.down()
        B.REG.cleanup()
        e["phase_s"] = round(time.monotonic() - t_start, 1)
    return e


def fmt(s):
    return "–" if not s else f"{s['median']:g} ({s['min']:g}–{s['max']:g})"


def markdown(res):
    out = [f"Measured {res['started']} on {res['machine']}; {res['runs']} runs per setting; "
           f"harness wall time {res['duration_s']:.0f} s.", "",
           "Command: `make bench` (this part alone: `BENCH_PHASES=svccrash bench/run.sh`)", "",
           "| tool | setting | what happens | kill → first answer, ms | kill → detection, ms | longest gap, ms | runs |",
           "|---|---|---|---|---|---|---|"]
    what = {"tandem": "restart in place on the holder", "keepalived": "FAULT; the backup takes the address and starts it"}
    for e in res["settings"]:
        n = len([r for r in e.get("runs", []) if "error" not in r])
        out.append(f"| {e['tool']} | {e['setting']} | {what[e['tool']]} | {fmt(e.get('answer'))} | "
                   f"{fmt(e.get('detect'))} | {fmt(e.get('outage'))} | {n} |")
    med = {(e["tool"], e["setting"]): (e.get("answer") or {}).get("median") for e in res["settings"]}
    ka = med.get(("keepalived", "vrrp_script interval 1"))
    out.append("")
    for label in ("monitor 100ms", "monitor 1s"):
        t = med.get(("tandem", label))
        if t and ka:
            out.append(f"- ratio tandem ({label}) / keepalived (interval 1), median kill → first answer: "
                       f"**{t / ka:.2f}** ({t:g} / {ka:g} ms)")
    out.append("")
    return "\n".join(out)


def update_docs(md):
    results.update_block("<!-- BEGIN SVCCRASH RESULTS -->", "<!-- END SVCCRASH RESULTS -->", md)


def main():
    if os.geteuid() != 0:
        print("svccrash: must run as root (network namespaces)", file=sys.stderr)
        return 2
    for p in (B.TANDEM, B.PROBE, B.KA_BIN):
        if not os.access(p, os.X_OK):
            print(f"svccrash: missing {p}", file=sys.stderr)
            return 2
    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    work = os.path.join(B.OUT, "svccrash")
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t_start = time.monotonic()
    res = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "runs": RUNS, "settings": []}
    try:
        for idx, (tool, label, params) in enumerate(SETTINGS):
            if B.ONLY.search(f"{tool} {label}"):
                B.log(f"svccrash: {tool} {label}")
                res["settings"].append(run_setting(idx, tool, label, params, work))
    except KeyboardInterrupt:
        B.log("svccrash: interrupted; cleaning up")
        return 130
    finally:
        B.REG.cleanup()
    res["duration_s"] = round(time.monotonic() - t_start, 1)
    with open(os.path.join(B.OUT, "svccrash.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(os.path.join(B.OUT, "svccrash.md"), "w") as f:
        f.write(md)
    print(md)
    if B.UPDATE_DOCS:
        update_docs(md)
        B.log("svccrash: docs/benchmarks.md updated")
    B.log(f"svccrash: done in {res['duration_s']:.0f} s")
    return 0


def machine():
    m = B.machine()
    return (f"{m['nproc']} × {m['cpu']}, {m['mem_mb']} MB, Linux {m['kernel']} ({m['os']}); "
            f"keepalived {m['packages'].get('keepalived', '?')}, {m['tandem']}")


if __name__ == "__main__":
    sys.exit(main())
