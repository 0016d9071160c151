# The watchdog benchmark's suite (VM_SUITE=wdbench; not among `make vm-test`'s defaults; run
# by `make bench PHASE=watchdog`, bench/watchdog.py): the fence suite's rig
# (tests/vm/fence-rig.sh: namespace, bridges, ipmi_sim BMCs, QEMU's i6300esb with
# `-action watchdog=reset` under -no-reboot, QMP events), booted once; the acts
# (tests/vm/acts-wdbench/) freeze node-a's tandem once per round, with the built-in IPMI
# client first, then `watchdog /dev/watchdog TIMEOUT` for each TIMEOUT; the host boots node-a
# again after each round. keepalive 250 ms, deadtime 3 s (tests/vm/rootfs/rig/fence).
# Env: BENCH_WD_TIMEOUTS (seconds, "2,5,10"), BENCH_WD_RUNS (rounds per TIMEOUT, 3),
#      BENCH_WD_IPMI_RUNS (IPMI rounds, BENCH_WD_RUNS).
# Result: rounds.tsv here, one line per round (host times, epoch seconds; "-" if not seen):
#   ROUND CONF FREEZE DEAD RESET_OR_OFF QEMU_ENDED TAKEOVER
# (b's log lines of each round are `BENCH-TLOG k` lines in b.stamped).

ACTS=acts-wdbench
ALONE_LIMIT=150
WDB_T=$(echo "${BENCH_WD_TIMEOUTS:-2,5,10}" | tr ', ' '\n\n' | grep .)
WDB_RUNS=${BENCH_WD_RUNS:-3}
WDB_IPMI=${BENCH_WD_IPMI_RUNS:-$WDB_RUNS}
RIG_ARG=
for _ in $(seq "$WDB_IPMI"); do RIG_ARG=$RIG_ARG,ipmi; done
for t in $WDB_T; do
    case $t in *[!0-9]*|0) say "BENCH_WD_TIMEOUTS: whole seconds, not $t"; exit 1 ;; esac
    for _ in $(seq "$WDB_RUNS"); do RIG_ARG=$RIG_ARG,$t; done
done
RIG_ARG=${RIG_ARG#,}
NR=$(echo "$RIG_ARG" | tr , '\n' | grep -c .)
[ "$NR" -gt 0 ] || { say "wdbench: no rounds"; exit 1; }
# a round takes 30-60 s (the reset, a boot, DRBD's resync, the daemons): bound the whole
TIMEOUT=$(( NR * 90 + 180 ))
say "wdbench: $NR rounds ($RIG_ARG), at most ${TIMEOUT}s"
. "$VMDIR/fence-rig.sh"

fence_rig_run

# ------------------------------------------------------------ rounds and verdicts
collect_scenarios
for n in a b; do qmp_all $n | grep -v NIC_RX | sed "s/^/  qmp $n: /" >&2 || true; done
sed 's/^/  host: /' host-events.txt >&2
sed 's/^/  bmc-a power.log: /' bmc-a/power.log >&2 2>/dev/null || true

r=$(two_primaries); host_verdict never_two_primaries $? "$r"
# first_after T LIST: the first time in LIST (one a line, time first) after T
first_after() { awk -v s="$1" '$1 > s { print $1; exit }'; }
: > rounds.tsv
k=1
for conf in $(echo "$RIG_ARG" | tr , ' '); do
    t_fr=$(at "BENCH-FREEZE $k\$" a); t_dead=$(at "BENCH-DEAD $k\$" b); t_take=$(at "BENCH-TAKEOVER $k\$" b)
    t_fence= t_end=
    if [ -n "$t_fr" ]; then
        if [ "$conf" = ipmi ]; then
            t_fence=$(grep '^off' bmc-a/power.log 2>/dev/null | cut -d' ' -f2 | first_after "$t_fr")
        else
            t_fence=$(qmp a WATCHDOG | grep '"action": *"reset"' | first_after "$t_fr")
        fi
        t_end=$(awk '$2 == "ended" && $3 == "a" { print $1 }' host-events.txt | first_after "$t_fr")
    fi
    echo "$k $conf ${t_fr:--} ${t_dead:--} ${t_fence:--} ${t_end:--} ${t_take:--}" >> rounds.tsv
    # the order: freeze < dead < fenced (reset / off) <= QEMU ended < takeover
    ok=1
    [ -n "$t_fr" ] && [ -n "$t_dead" ] && [ -n "$t_fence" ] && [ -n "$t_end" ] && [ -n "$t_take" ] &&
        awk -v f="$t_fr" -v d="$t_dead" -v r="$t_fence" -v e="$t_end" -v t="$t_take" \
            'BEGIN { exit !(f < d && f < r && r <= e + 0.5 && e < t) }' && ok=0
    host_verdict "round_${k}_$conf" $ok "freeze=${t_fr:-none} dead=+$(diff_s "${t_fr:-0}" "${t_dead:-0}")" \
        "fenced=+$(diff_s "${t_fr:-0}" "${t_fence:-0}") ended=+$(diff_s "${t_fr:-0}" "${t_end:-0}")" \
        "takeover=+$(diff_s "${t_fr:-0}" "${t_take:-0}")"
    k=$((k + 1))
done
b_resets=$(qmp b WATCHDOG | wc -l)
[ "$b_resets" = 0 ]; host_verdict peer_never_reset $? "node-b watchdog resets: $b_resets"

trap - EXIT
fence_cleanup
echo "---- $SUITE scenarios (node, name, duration, details)"
awk '{ t = ""; for (i = 5; i <= NF; i++) t = t " " $i
       printf "%-4s %-30s %-4s %8s%s\n", $3, $2, $1, $4, t }' scenarios.txt
f=$(grep -c ' FAIL ' scenarios.txt || true)
if [ "$f" = 0 ]; then echo "PASS $SUITE ($(wc -l < scenarios.txt) results)"
else echo "FAIL $SUITE ($f failed; logs: $PWD/a.log $PWD/b.log)"; false; fi
