#!/bin/sh
# Failover of a mixed heartbeat 3.0.6 / tandem cluster in both directions, next to pure
# heartbeat and pure tandem (heartbeat's protocol and tandem's own) with the same timings
# (keepalive 1 s, deadtime 5 s, one UDP link and one serial line): tests/hb_bench.rs in the
# namespace rig of tests/common/hbmixed.rs. Run as root; about 2 minutes per run and case.
# Environment: HB_BENCH_RUNS (3). Results: bench/out/hbmixed.txt and hbmixed.jsonl.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hbmixed: run as root (network namespaces)" >&2; exit 2; }
scripts/prereqs test
out=${BENCH_OUT:-bench/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The client prober, where the release test binary looks for it.
cargo build --release --locked --example probe
HB_BENCH_OUT="$out/hbmixed.jsonl" cargo test --release --locked --test hb_bench -- --ignored --nocapture \
    --test-threads 1 2>&1 | tee "$out/hbmixed.log" | grep -v '^\(running\|test \|$\)' | tee "$out/hbmixed.txt"
