# Host-side helpers of the VM rig, sourced by tests/vm/run.sh for every suite (bash).
# A suite (tests/vm/suite-*.sh) defines:
#   suite_qemu NAME BOOT   fills the array QARGS with NAME's QEMU arguments (NICs, serial,
#                          disks, devices, -append extras in QAPPEND) for its BOOTth boot
#   suite_poll             (optional) called every loop turn: state moved on by HOST-REQs
#   host_req_VERB ARG...   what a VM may ask with a console line `HOST-REQ VERB ARG...`
# and the variables VM_WRAP (a command prefix for QEMU, e.g. `ip netns exec NS`), ACTS (the
# acts' directory under tests/vm, e.g. acts-fence), ALONE_LIMIT (seconds one VM may run alone).
# Everything of a suite lives in $W/$SUITE (consoles a.log b.log, disks, host-*.txt).

declare -A VM_PID VM_BOOTS REQS_SEEN=([a]=0 [b]=0) STAMPER
VM_WRAP=${VM_WRAP:-}
ALONE_LIMIT=${ALONE_LIMIT:-30}

# host_event WORDS...: one line "EPOCH WORDS" in host-events.txt (the host's timeline)
host_event() { echo "$EPOCHREALTIME $*" >> host-events.txt; }

# vm_boot NAME: starts (or starts again: same disks, its console appended, rig.boot one more,
# which the acts see as $BOOT) VM NAME; records its pid in NAME.pid
vm_boot() {
    local n=$1 QARGS=() QAPPEND=""
    VM_BOOTS[$n]=$(( ${VM_BOOTS[$n]:-0} + 1 ))
    suite_qemu "$n" "${VM_BOOTS[$n]}"
    # shellcheck disable=SC2086
    $VM_WRAP qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
        -accel "$ACCEL" -cpu "$CPU" -smp 1 -m "$MEM" -kernel "$KIMG" -initrd "$W/initrd.gz" \
        -append "console=ttyS0 quiet panic=-1 rig.node=$n rig.quick=${QUICK:-} rig.boot=${VM_BOOTS[$n]} rig.acts=/rig/$ACTS $QAPPEND" \
        -chardev file,id=c0,path=$n.log,append=on -serial chardev:c0 \
        "${QARGS[@]}" >>$n.qemu.log 2>&1 &
    VM_PID[$n]=$!
    echo "${VM_PID[$n]}" > $n.pid
    host_event boot $n ${VM_BOOTS[$n]}
}
# alive and not a zombie (a VM powered off by its BMC is reaped by the loop)
vm_alive() {
    local p=${VM_PID[$1]:-}
    [ -n "$p" ] && [ -r /proc/$p/stat ] && ! grep -qs '^[0-9]* ([^)]*) Z' /proc/$p/stat
}
vm_kill() {  # vm_kill NAME: power off at once (SIGKILL to its QEMU)
    vm_alive "$1" || return 0
    kill -9 "${VM_PID[$1]}"; wait "${VM_PID[$1]}" 2>/dev/null || true
}
vm_kill_all() { local n; for n in a b; do vm_alive $n && kill "${VM_PID[$n]}" 2>/dev/null; done; true; }
# vm_reap: a VM that ended (its guest powered off, its BMC cut the power, its watchdog reset
# it under -no-reboot) is waited for and its end noted once in host-events.txt
declare -A VM_ENDED
vm_reap() {
    local n
    for n in a b; do
        [ -n "${VM_PID[$n]:-}" ] || continue
        if vm_alive $n; then VM_ENDED[$n]=; continue; fi
        [ -z "${VM_ENDED[$n]:-}" ] || continue
        VM_ENDED[$n]=1
        wait "${VM_PID[$n]}" 2>/dev/null || true
        rm -f $n.pid
        host_event ended $n
    done
}

# Each console line stamped with the host's clock when it appeared (NAME.stamped: "EPOCH
# line"): the host's one timeline for both VMs (their clocks are their own).
stamp_start() {
    local n
    for n in a b; do
        : >> $n.log
        # (no filter between tail and the loop: a pipe's block buffering would stamp the
        # lines seconds late)
        ( tail -n +1 -F $n.log 2>/dev/null |
            while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "${l%$'\r'}"; done >> $n.stamped ) &
        STAMPER[$n]=$!
    done
}
stamp_stop() {
    local n
    sleep 0.5   # the last lines
    for n in a b; do [ -z "${STAMPER[$n]:-}" ] || pkill -P "${STAMPER[$n]}" 2>/dev/null; done
    for n in a b; do [ -z "${STAMPER[$n]:-}" ] || kill "${STAMPER[$n]}" 2>/dev/null; done
    for n in a b; do [ -z "${STAMPER[$n]:-}" ] || wait "${STAMPER[$n]}" 2>/dev/null; done
    STAMPER=()
}
# at LINE-PATTERN NODE: the host time of the first stamped console line of NODE matching the
# extended regular expression (empty if none)
at() { grep -aE -m1 "^[0-9.]+ $1" "$2.stamped" 2>/dev/null | cut -d' ' -f1; }
# event_at PATTERN: the time of the first host event matching PATTERN
event_at() { grep -aE -m1 "^[0-9.]+ $1" host-events.txt 2>/dev/null | cut -d' ' -f1; }
# diff_s A B: B - A in seconds, one decimal
diff_s() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# acks NODE LABEL: the last `ACK LABEL n` on NODE's console
acks() { { grep -a -o "^ACK $2 [0-9]*" "$1.log" || true; } | tail -1 | cut -d' ' -f3; }

# ---- what the VMs ask of the host: `HOST-REQ VERB ARG...` on a console -> host_req_VERB ARG...
host_reqs() {
    local n lines total verb args
    for n in a b; do
        [ -f $n.log ] || continue
        total=$(grep -a -c '^HOST-REQ ' $n.log || true)
        [ "$total" -gt "${REQS_SEEN[$n]}" ] || continue
        lines=$(grep -a '^HOST-REQ ' $n.log | tr -d '\r' | tail -n +$((REQS_SEEN[$n] + 1)))
        REQS_SEEN[$n]=$total
        while read -r _ verb args; do
            host_event "req $n $verb $args"
            # shellcheck disable=SC2086
            if declare -F host_req_$verb >/dev/null; then host_req_$verb $args
            else say "node $n asks for an unknown $verb"; fi
        done <<< "$lines"
    done
}
# boot NODE: power NODE on again after a kill or a reset (the acts see rig.boot=2 as BOOT=2)
host_req_boot() { vm_alive "$1" || { say "booting node $1 again"; vm_boot "$1"; }; }

# ---- the loop: until both VMs are off, the time is up, or (unless KEEP_GOING) 15 s after
# a failure. A VM alone (the other gone, no boot asked for) gets ALONE_LIMIT seconds.
host_loop() {
    local s alone= failed= lim
    T0=$(now)
    while :; do
        s=$(since "$T0"); s=${s%.*}
        host_reqs
        vm_reap
        ! declare -F suite_poll >/dev/null || suite_poll
        vm_alive a || vm_alive b || break
        if ! vm_alive a || ! vm_alive b; then
            alone=${alone:-$s}
            lim=$ALONE_LIMIT
            [ $((s - alone)) -lt "$lim" ] || { say "one VM gone for ${lim}s, stopping the other"; vm_kill_all; }
        else
            alone=
        fi
        [ "$s" -lt "$TIMEOUT" ] || { say "timeout after ${TIMEOUT}s"; vm_kill_all; break; }
        if [ -z "${KEEP_GOING:-}" ] && grep -aq '^SCENARIO .* FAIL' a.log b.log 2>/dev/null; then
            failed=${failed:-$s}
            [ $((s - failed)) -lt 15 ] || { say "a scenario failed: stopping the VMs"; vm_kill_all; break; }
        fi
        sleep "${LOOP_SLEEP:-0.2}"
    done
    vm_reap
    T_VMS=$(since "$T0")
    say "$SUITE: the VMs ran ${T_VMS}s"
}

# ---- the verdict: the VMs' scenario lines (plus the host's, added by the suite to
# scenarios.txt), every scenario named by an act's `# expect` line, both VMs finished
collect_scenarios() {
    grep -ah '^RIG' a.log b.log | tr -d '\r' >&2 || true
    grep -ah '^SCENARIO' a.log b.log | tr -d '\r' | sed 's/^SCENARIO //' > scenarios.txt || true
}
# pass_or_fail NAME OK DETAIL...: a host scenario's line
host_verdict() {
    local name=$1 ok=$2; shift 2
    if [ "$ok" = 0 ]; then echo "host $name PASS $*" >> scenarios.txt
    else echo "host $name FAIL - $*" >> scenarios.txt; fi
}
verdict() {
    local act n x names f
    for act in "$VMDIR/$ACTS"/*.sh; do
        if [ -n "${QUICK:-}" ] && grep -q '^# quick: skip' "$act"; then continue; fi
        grep '^# expect [ab] ' "$act" | while read -r _ _ n names; do
            for x in $names; do
                grep -q "^$n $x " scenarios.txt || echo "$n $x FAIL - never reported" >> scenarios.txt
            done
        done
    done
    for n in a b; do   # (each VM's last boot)
        grep -aq "RIG $n .*ALL DONE" $n.log || echo "$n all_done FAIL - $n did not finish" >> scenarios.txt
    done
    echo "---- $SUITE scenarios (node, name, duration, details)"
    awk '{ t = ""; for (i = 5; i <= NF; i++) t = t " " $i
           printf "%-4s %-30s %-4s %8s%s\n", $3, $2, $1, $4, t }' scenarios.txt
    n=$(wc -l < scenarios.txt); f=$(grep -c ' FAIL ' scenarios.txt || true)
    if [ "$f" = 0 ]; then
        echo "PASS $SUITE ($n scenario results)"
    else
        echo "FAIL $SUITE ($f of $n failed; logs: $PWD/a.log $PWD/b.log, tandem's log is in them)"
        return 1
    fi
}
