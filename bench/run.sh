#!/bin/bash
# tandem vs keepalived vs heartbeat: `make bench` runs this as root with TANDEM=<static binary>.
# Environment: BENCH_RUNS (5) BENCH_SOAK_S (120) BENCH_IDLE_S (60) BENCH_QUICK=1 BENCH_ONLY=REGEX
<<<<<<< HEAD
# BENCH_PHASES=soak,failover,fencing BENCH_UPDATE_DOCS=0|1. Results: bench/out/results.json, results.md
# (fencing: fencing.json, fencing.md).
=======
# BENCH_PHASES=soak,failover,svccrash BENCH_UPDATE_DOCS=0|1. Results: bench/out/results.json,
# results.md; bench/out/svccrash.json, svccrash.md.
>>>>>>> h-montest
set -u
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (network namespaces)" >&2; exit 2; }
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
out=${BENCH_OUT:-bench/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export BENCH_OUT=$out
# The shared client prober, std only: built standalone so the harness does not need cargo.
if [ ! -x "$out/probe" ] || [ examples/probe.rs -nt "$out/probe" ]; then
    rustc -O --edition 2021 examples/probe.rs -o "$out/probe" || exit 1
fi
export PROBE=${PROBE:-$out/probe}
export TANDEM=${TANDEM:-$PWD/target/x86_64-unknown-linux-gnu/release/tandem}
# BENCH_PHASES=fencing (make bench PHASE=fencing): the fencing phase alone, bench/fencing.py.
script=bench/bench.py
if [ "${BENCH_PHASES:-}" = fencing ]; then
    script=bench/fencing.py
    BENCH_COMMAND=${BENCH_COMMAND:-make bench PHASE=fencing}
fi
export BENCH_COMMAND=${BENCH_COMMAND:-make bench}
<<<<<<< HEAD
"$PY" $script &
pid=$!
sweep() { # whatever namespaces of this run survived (bench.py cleans up itself; this is the backstop)
=======
# Phases: soak and failover (bench/bench.py), svccrash (bench/svccrash.py: a crashed service,
# tandem's monitor against keepalived's vrrp_script). BENCH_PHASES=svccrash runs that part alone.
export BENCH_PHASES=${BENCH_PHASES:-soak,failover,svccrash}
pid=
sweep() { # whatever namespaces of this run survived (the harness cleans up itself; this is the backstop)
>>>>>>> h-montest
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^tb$((pid % 100000))x"); do
        ip netns del "$ns" 2>/dev/null
    done
}
trap '[ -n "$pid" ] && { kill -TERM $pid 2>/dev/null; wait $pid; sweep; }; exit 130' INT TERM HUP
harness() { # harness SCRIPT: runs it in the background (so a signal reaches the trap), waits
    "$PY" "$1" &
    pid=$!
    wait $pid
    r=$?
    sweep
    return $r
}
rc=0
case ",$BENCH_PHASES," in *,soak,* | *,failover,*) harness bench/bench.py || rc=$? ;; esac
case ",$BENCH_PHASES," in *,svccrash,*) harness bench/svccrash.py || rc=$? ;; esac
exit $rc
