#!/usr/bin/python3
"""The watchdog phase of `make bench`: failover time with watchdog self-fencing (no BMC) as
a function of the watchdog TIMEOUT, next to the built-in IPMI fencing, in two QEMU VMs.

It runs the VM rig's suite `wdbench` (tests/vm/run.sh with VM_SUITE=wdbench; the rig is the
fence suite's, tests/vm/fence-rig.sh: a network namespace with the cluster LAN
192.0.2.0/24 and the management network 203.0.113.0/24, two QEMU/TCG VMs with QEMU's
i6300esb watchdog (`-action watchdog=reset`), QMP events, an ipmi_sim BMC per VM, DRBD r0
with `fencing resource-and-stonith`, group web = ip + drbd + ext4 mount + httpd). The VMs
boot once; node-a boots again after each round. Each round: node-a holds web, its tandem
gets SIGSTOP; with `watchdog /dev/watchdog TIMEOUT` + `stonith NODE watchdog` its i6300esb
resets it and node-b takes over once the watchdog period has passed; with `stonith NODE
ipmi ...` node-b powers it off through its BMC first. keepalive 250 ms, deadtime 3 s
(tests/vm/rootfs/rig/fence/tandem.conf). Measured from the freeze (the host's clock: the
console line stamped as it arrives, QMP's own timestamps, the BMC's power log): death
declared by node-b (its log, polled every 50 ms in the VM), the watchdog's reset (QMP
WATCHDOG) or the power-off (BMC), node-b's group started (its log, polled likewise); and,
from node-b's log alone, the wait from the death to the fence's confirmation and the
group's start.

usage: bench/watchdog.py [--timeouts 2,5,10] [--runs N] [--ipmi-runs N] [--render]
Environment: TANDEM (a static tandem; default: run.sh builds one), BENCH_OUT (bench/out),
BENCH_WD_TIMEOUTS (2,5,10), BENCH_WD_RUNS (3), BENCH_WD_IPMI_RUNS (BENCH_WD_RUNS),
BENCH_WD_W (the rig's work dir, tests/vm/build: the downloaded kernel and tools are kept
there), BENCH_UPDATE_DOCS (1: rewrite docs/benchmarks.md's watchdog section). Root.
Standard library only.
"""
import argparse
import calendar
import json
import os
import re
import signal
import subprocess
import sys
import time

import results

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT = os.path.abspath(os.environ.get("BENCH_OUT", os.path.join(REPO, "bench", "out")))
KA_S, DT_S = 0.25, 3.0   # tests/vm/rootfs/rig/fence/tandem.conf
RESULTS = {}


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def kill_namespace(ns):
    """Whatever still runs in the rig's namespace (QEMU, ipmi_sim, socat), then the namespace."""
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for p in r.stdout.split():
        try:
            os.kill(int(p), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def run_suite(timeouts, runs, ipmi_runs, work):
    """tests/vm/run.sh VM_SUITE=wdbench, bounded; its output in OUT/watchdog-vm.log."""
    nr = ipmi_runs + runs * len(timeouts)
    limit = nr * 90 + 180 + 900   # the suite's own bound, plus building and the initramfs
    env = dict(os.environ, VM_SUITE="wdbench", W=work, BENCH_WD_TIMEOUTS=",".join(map(str, timeouts)),
               BENCH_WD_RUNS=str(runs), BENCH_WD_IPMI_RUNS=str(ipmi_runs))
    env.pop("TIMEOUT", None)
    logf = os.path.join(OUT, "watchdog-vm.log")
    log(f"watchdog: {nr} rounds in the VM rig (log: {logf}); at most {limit // 60} min")
    with open(logf, "w") as f:
        p = subprocess.Popen([os.path.join(REPO, "tests", "vm", "run.sh")], stdin=subprocess.DEVNULL,
                             stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = p.wait(timeout=limit)
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as e:
            log(f"watchdog: stopping the VM rig ({type(e).__name__})")
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            kill_namespace(f"vmf{p.pid}")
            if isinstance(e, KeyboardInterrupt):
                raise
            rc = 124
    kill_namespace(f"vmf{p.pid}")   # (gone already when the suite ended normally)
    return rc


def fnum(x):
    return None if x in ("-", "", None) else float(x)


def tlog_time(line):
    """A tandem log line's own timestamp (node-b's clock), in seconds."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d(?:\.\d+)?)Z", line)
    if not m:
        return None
    t = time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + float(m.group(6)) % 1


def parse(sdir):
    """Rounds from the suite's rounds.tsv and node-b's `BENCH-TLOG k` lines."""
    tlog = {}
    with open(os.path.join(sdir, "b.stamped"), errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 3)
            if len(parts) == 4 and parts[1] == "BENCH-TLOG":
                tlog.setdefault(int(parts[2]), []).append(parts[3])
    rounds = []
    with open(os.path.join(sdir, "rounds.tsv")) as f:
        for line in f:
            k, conf, fr, dead, fence, end, take = line.split()
            fr, dead, fence, end, take = map(fnum, (fr, dead, fence, end, take))
            rel = (lambda t: None if t is None or fr is None else round(t - fr, 3))
            r = {"round": int(k), "fencing": "ipmi" if conf == "ipmi" else "watchdog",
                 "timeout_s": None if conf == "ipmi" else int(conf),
                 "dead_s": rel(dead), "fenced_s": rel(fence), "qemu_ended_s": rel(end), "takeover_s": rel(take)}
            # node-b's own log: death -> fence confirmed -> group started
            t_dead = t_conf = t_started = None
            for tl in tlog.get(int(k), []):
                if t_dead is None and "peer node-a: up -> dead" in tl:
                    t_dead = tlog_time(tl)
                elif t_conf is None and "fenced node-a:" in tl:
                    t_conf = tlog_time(tl)
                elif t_started is None and "group web: starting -> started" in tl:
                    t_started = tlog_time(tl)
                m = re.search(r"fencing it in (\d+(?:\.\d+)?)(ms|s)\b", tl)
                if m and "scheduled_ms" not in r:
                    r["scheduled_ms"] = round(float(m.group(1)) * (1 if m.group(2) == "ms" else 1000))
            if t_dead is not None and t_conf is not None:
                r["wait_s"] = round(t_conf - t_dead, 3)
            if t_conf is not None and t_started is not None:
                r["start_s"] = round(t_started - t_conf, 3)
            r["ok"] = all(r[x] is not None for x in ("dead_s", "fenced_s", "takeover_s"))
            rounds.append(r)
    return rounds


def stats(vals):
    return results.summary(vals, 2)


def summarize(rounds):
    groups = []
    keys = []
    for r in rounds:
        key = (r["fencing"], r["timeout_s"])
        if key not in keys:
            keys.append(key)
    for fencing, t in keys:
        rs = [r for r in rounds if (r["fencing"], r["timeout_s"]) == (fencing, t) and r["ok"]]
        g = {"fencing": fencing, "timeout_s": t, "rounds": len([r for r in rounds if (r["fencing"], r["timeout_s"]) == (fencing, t)]),
             "ok": len(rs)}
        for m in ("dead_s", "fenced_s", "qemu_ended_s", "takeover_s", "wait_s", "start_s"):
            g[m] = stats([r.get(m) for r in rs])
        if fencing == "watchdog":
            g["period_s"] = round(t + DT_S + 2 * KA_S, 2)   # the peer's wait: from the last heartbeat
            g["over_period_s"] = stats([r["takeover_s"] - g["period_s"] for r in rs])
        groups.append(g)
    return groups


def cell(s):
    if not s:
        return "–"
    if s["min"] == s["max"]:
        return f"{s['median']:.2f}"
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def markdown():
    R = RESULTS
    m = R.get("machine", {})
    L = [f"Measured {R['started']} on {m.get('cpu', '?')} ({m.get('nproc', '?')} CPUs, shared), {m.get('kernel', '')};"
         f" {R.get('tandem', 'tandem')}; two QEMU {R.get('qemu', '')} VMs under TCG (one vCPU, 256 MiB each), Debian's"
         f" {R.get('guest_kernel', 'kernel')}, `i6300esb`; keepalive 250 ms, deadtime 3 s."
         f" {R['runs']} rounds per TIMEOUT, {R['ipmi_runs']} with IPMI; phase wall time {R.get('duration_s', 0) / 60:.1f} min;"
         f" load average (1 min) {R['loadavg_start'][0]} at the start, {R.get('loadavg_end', ['?'])[0]} at the end.",
         "", f"Command: `{R.get('command', 'make bench PHASE=watchdog')}`", "",
         "Seconds from the freeze (SIGSTOP of the holder's tandem), median (min–max). *reset / off*: QMP's WATCHDOG"
         " event (the i6300esb reset the VM), or the BMC switching the VM off. *peer's wait*: node-b's own log, death"
         " declared → fence confirmed; *start*: fence confirmed → group web started (ip, DRBD promote, mount, httpd).",
         "",
         "| fencing | TIMEOUT | rounds | death declared | reset / off | takeover done | peer's wait after death | start | watchdog period (TIMEOUT + deadtime + 2 × keepalive) | takeover − period |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for g in R.get("groups", []):
        name = "built-in IPMI (ipmi_sim BMC)" if g["fencing"] == "ipmi" else "watchdog (i6300esb)"
        t = "–" if g["timeout_s"] is None else f"{g['timeout_s']} s"
        per = f"{g['period_s']:.2f}" if g.get("period_s") is not None else "– (fence_delay, then power off)"
        ok = f"{g['ok']}" if g["ok"] == g["rounds"] else f"{g['ok']} of {g['rounds']}"
        L.append(f"| {name} | {t} | {ok} | {cell(g['dead_s'])} | {cell(g['fenced_s'])} | **{cell(g['takeover_s'])}** |"
                 f" {cell(g['wait_s'])} | {cell(g['start_s'])} | {per} | {cell(g.get('over_period_s'))} |")
    wd = [g for g in R.get("groups", []) if g["fencing"] == "watchdog" and g["takeover_s"]]
    ip = [g for g in R.get("groups", []) if g["fencing"] == "ipmi" and g["takeover_s"]]
    if len(wd) >= 2:
        # the slope between the two largest TIMEOUTs: below some TIMEOUT the probing of the
        # group's address (three rounds of ping_interval after the death), not the period, sets the wait
        a, b = wd[-2], wd[-1]
        slope = (b["takeover_s"]["median"] - a["takeover_s"]["median"]) / (b["timeout_s"] - a["timeout_s"])
        L += ["", f"Takeover grows by **{slope:.2f} s per second of TIMEOUT** between {a['timeout_s']} s and"
              f" {b['timeout_s']} s (medians)."]
        R["slope"] = round(slope, 3)
    if ip and wd:
        base = ip[0]["takeover_s"]["median"]
        diffs = ", ".join(f"{g['takeover_s']['median'] - base:+.2f} s at {g['timeout_s']} s" for g in wd)
        L.append(f"Takeover with the watchdog minus takeover with IPMI (medians): {diffs}.")
    bad = [r for r in R.get("rounds", []) if not r["ok"]]
    if bad:
        L.append("")
        L.append(f"Rounds without a complete measurement (left out): {', '.join(str(r['round']) for r in bad)}"
                 f" (suite exit {R.get('suite_rc')}; see bench/out/watchdog-vm.log).")
    return "\n".join(L) + "\n"


def update_docs(md):
    results.update_block("<!-- BEGIN GENERATED WATCHDOG -->", "<!-- END GENERATED WATCHDOG -->", md)


def save():
    results.write_json(OUT, "watchdog.json", RESULTS)


def finish(update):
    md = markdown()
    with open(os.path.join(OUT, "watchdog.md"), "w") as f:
        f.write(md)
    save()
    print(md)
    if update:
        update_docs(md)
        log("watchdog: docs/benchmarks.md updated")


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count(), "kernel": "Linux " + os.uname().release}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeouts", default=os.environ.get("BENCH_WD_TIMEOUTS", "2,5,10"))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_WD_RUNS", "3")))
    ap.add_argument("--ipmi-runs", type=int, default=None)
    ap.add_argument("--render", action="store_true", help="rebuild the table and docs from watchdog.json")
    a = ap.parse_args()
    update = os.environ.get("BENCH_UPDATE_DOCS", "1") not in ("", "0")
    if a.render:
        RESULTS.update(json.load(open(os.path.join(OUT, "watchdog.json"))))
        finish(update)
        return 0
    if os.geteuid() != 0:
        print("watchdog: run as root (network namespaces, QEMU's taps)", file=sys.stderr)
        return 2
    timeouts = [int(x) for x in re.split(r"[,\s]+", a.timeouts) if x]
    ipmi_runs = a.ipmi_runs if a.ipmi_runs is not None else int(os.environ.get("BENCH_WD_IPMI_RUNS", a.runs))

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    os.makedirs(OUT, exist_ok=True)
    work = os.path.abspath(os.environ.get("BENCH_WD_W", os.path.join(REPO, "tests", "vm", "build")))
    t0 = time.monotonic()
    RESULTS.update({"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                    "timeouts": timeouts, "runs": a.runs, "ipmi_runs": ipmi_runs, "keepalive_s": KA_S,
                    "deadtime_s": DT_S, "command": os.environ.get("BENCH_COMMAND", "python3 bench/watchdog.py"),
                    "loadavg_start": [round(x, 2) for x in os.getloadavg()]})
    qv = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    RESULTS["qemu"] = qv.replace("QEMU emulator version ", "")
    try:
        rc = run_suite(timeouts, a.runs, ipmi_runs, work)
    except KeyboardInterrupt as e:
        log(f"watchdog: interrupted ({e})")
        return 130
    RESULTS["suite_rc"] = rc
    sdir = os.path.join(work, "wdbench")
    try:
        RESULTS["rounds"] = parse(sdir)
    except (OSError, ValueError) as e:
        log(f"watchdog: no rounds ({e}); see {OUT}/watchdog-vm.log")
        RESULTS["rounds"] = []
    try:
        kv = open(os.path.join(sdir, "a.stamped"), errors="replace").read()
        m = re.search(r"READY kernel=(\S+)", kv)
        RESULTS["guest_kernel"] = f"Linux {m.group(1)}" if m else "kernel"
        m = re.search(r"tandem (\d+\.\d+\.\d+) starting", open(os.path.join(sdir, "b.stamped"), errors="replace").read())
        RESULTS["tandem"] = f"tandem {m.group(1)}" if m else "tandem"
    except OSError:
        pass
    RESULTS["groups"] = summarize(RESULTS["rounds"])
    RESULTS["duration_s"] = round(time.monotonic() - t0, 1)
    RESULTS["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    ok = RESULTS["rounds"] and all(r["ok"] for r in RESULTS["rounds"])
    finish(update and bool(RESULTS["rounds"]))
    log(f"watchdog: done in {RESULTS['duration_s'] / 60:.1f} min (suite exit {rc}); results in {OUT}/watchdog.json")
    return 0 if ok and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
