#!/bin/bash
# tandem vs keepalived vs heartbeat: `make bench` runs this as root with TANDEM=<static binary>.
# Environment: BENCH_RUNS (5) BENCH_SOAK_S (120) BENCH_IDLE_S (60) BENCH_QUICK=1 BENCH_ONLY=REGEX
# BENCH_PHASES=soak,failover,scale,guests,pacemaker,ping,fencing,svccrash,hbmixed,watchdog (all; any
# subset) BENCH_SCALE_N (1,10,100)
# BENCH_SCALE_RUNS (3) BENCH_PCMK_RUNS (BENCH_RUNS) BENCH_UPDATE_DOCS=0|1.
# Results: bench/out/results.json, results.md (guests/ and pacemaker/ hold those phases' own
# files; ping, fencing, svccrash and watchdog write NAME.json and NAME.md).
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
# The machine's price of a timer wakeup, an event wakeup and a send (the idle-cost floor).
if [ ! -x "$out/wakecost" ] || [ examples/wakecost.rs -nt "$out/wakecost" ]; then
    rustc -O --edition 2021 examples/wakecost.rs -o "$out/wakecost" || exit 1
fi
export WAKECOST=${WAKECOST:-$out/wakecost}
export TANDEM=${TANDEM:-$PWD/target/x86_64-unknown-linux-gnu/release/tandem}
export BENCH_COMMAND=${BENCH_COMMAND:-make bench}
"$PY" bench/bench.py &
pid=$!
sweep() { # whatever namespaces of this run survived (bench.py cleans up itself; this is the backstop)
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^tb$((pid % 100000))x"); do
        ip netns del "$ns" 2>/dev/null
    done
}
trap 'kill -TERM $pid 2>/dev/null; wait $pid; sweep; exit 130' INT TERM HUP
wait $pid
rc=$?
sweep
exit $rc
