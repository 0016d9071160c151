# boot: 1+
# The watchdog benchmark (suite wdbench, `make bench PHASE=watchdog`): one frozen-holder
# round per boot of node-a. $RIG_ARG lists the rounds' fencing, one per round, e.g.
# `ipmi,ipmi,5,5,10`: `ipmi` is the built-in IPMI client against node-a's BMC, a number is
# `watchdog /dev/watchdog Ns` with `stonith NODE watchdog` (the fence suite's files under
# /rig/fence; keepalive 250 ms, deadtime 3 s). Round k runs in node-a's kth boot:
#   a  (boot > 1: DRBD resyncs from b) `ready k` to b, which restarts its daemon with the
#      round's configuration if it changed and answers `go k`; a starts its daemon with it
#      and holds web (takes it back from b); `freeze k`, then `BENCH-FREEZE k` on the
#      console and SIGSTOP to its tandem: its watchdog resets it (QEMU ends), or b powers
#      it off by its BMC.
#   b  watches its own log every 50 ms: `BENCH-DEAD k` at `peer node-a: up -> dead`,
#      `BENCH-TAKEOVER k` at `group web: starting -> started`, then the round's log lines
#      (`BENCH-TLOG k ...`) and asks the host to boot a again (not after the last round).
# The host stamps the console lines and reads the QMP WATCHDOG events and the BMC's power
# log (suite-wdbench.sh; bench/watchdog.py makes the table). Every wait is bounded.
. /rig/acts-fence/00-helpers.sh
. /rig/acts-fence/10-setup.sh     # boot 1 of both: DRBD r0, ext4 (scenario fence_setup)

NR=$(echo "$RIG_ARG" | tr , '\n' | grep -c .)
conf_of() { echo "$RIG_ARG" | cut -d, -f"$1"; }
use_round() { case $1 in ipmi) use_conf ipmi ;; *) use_conf watchdog "$1" ;; esac; }
uptime_s() { cut -d. -f1 /proc/uptime; }

# a: ready for round $BOOT, holding web under the round's configuration
a_ready() {
    k=$BOOT; R=$(conf_of $k)
    if [ "$k" -gt 1 ]; then rejoin_drbd || return 1; fi
    send "ready $k" || { echo "b does not listen"; return 1; }
    recv "go $k" 120 || { echo "no go from b: $(cat /tmp/msg)"; return 1; }
    use_round "$R"
    tandem check-config >/dev/null || { tandem check-config; return 1; }
    tandem_up || return 1
    wait_secs 60 eval 'group_has web node-a started || group_has web node-b started' ||
        { echo "web not started"; tandem status; return 1; }
    group_has web node-a started || tandem takeover web || return 1
    wait_secs 60 web_here || { echo "web not here"; tandem status; local_state; return 1; }
    if [ "$R" = ipmi ]; then   # b's first device check of a's BMC
        send "check $k"; recv "checked $k" 60 || { echo "b never checked a's BMC"; return 1; }
    else
        grep -q "watchdog /dev/watchdog armed: $R s" $TLOG || { grep watchdog $TLOG; return 1; }
    fi
    sleep 2    # a few seconds of steady heartbeats and pets
    echo "round $k: $R, web on a"
}

# b: the round's configuration (its daemon restarted if it changed), then `go k`
b_prepare() {
    recv "ready $k" 300 || { echo "no ready $k: $(cat /tmp/msg)"; return 1; }
    if [ "$R" = "$cur" ]; then send "go $k"; return; fi
    [ -z "$cur" ] || /etc/init.d/tandem stop >/dev/null || return 1
    use_round "$R"
    send "go $k" || return 1
    tandem_up || return 1
    cur=$R
    echo "round $k: b now runs with $R"
}
b_checked() {
    recv "check $k" 120 || return 1
    wait_secs 60 eval 'tandem status | grep -q "power is on"' || { tandem status; return 1; }
    send "checked $k"
}
# b: the takeover, timed by its log (polled every 50 ms, for at most 120 s)
b_watch() {
    mark=$(log_lines); end=$(( $(uptime_s) + 120 )); dead=; took=
    while [ "$(uptime_s)" -lt $end ]; do
        new=$(sed -n "$((mark + 1)),\$p" $TLOG)
        if [ -z "$dead" ] && echo "$new" | grep -q 'peer node-a: up -> dead'; then
            dead=1; echo "BENCH-DEAD $k" > /dev/console
        fi
        if echo "$new" | grep -q 'group web: starting -> started'; then
            took=1; echo "BENCH-TAKEOVER $k" > /dev/console; break
        fi
        usleep 50000
    done
    sed -n "$((mark + 1)),\$p" $TLOG | grep -E 'node-a|fenc|group web: [a-z]+ -> ' |
        sed "s/^/BENCH-TLOG $k /" > /dev/console
    [ -n "$dead" ] && [ -n "$took" ] || { echo "dead=$dead takeover=$took"; tandem status; return 1; }
    group_has web node-b started
}

# step NAME FUNC: like `scenario`, but FUNC runs in this shell (its variables stay)
step() {
    name=$1; shift; t0=$(up)
    if "$@" > /tmp/step.out 2>&1; then res=PASS; else res=FAIL; fi
    sed "s/^/RIG $NODE   $name: /" /tmp/step.out
    [ $res = PASS ] || tail -30 $TLOG 2>/dev/null | sed "s/^/RIG $NODE   $name: tlog: /"
    echo "SCENARIO $NODE $name $res $(since $t0)s"
    [ $res = PASS ]
}

if [ "$NODE" = a ]; then
    k=$BOOT
    if step round_$k a_ready; then
        send "freeze $k"
        echo "BENCH-FREEZE $k" > /dev/console
        kill -STOP "$(cat /run/tandem/tandem.pid)"
        sleep 120    # reset by the watchdog or powered off by the BMC long before
        kill -CONT "$(cat /run/tandem/tandem.pid)"
        echo "SCENARIO a freeze_$k FAIL 120s - not reset or powered off in 120 s"
    fi
else
    cur=
    k=1
    while [ $k -le "$NR" ]; do
        R=$(conf_of $k)
        step prepare_$k b_prepare || break
        if [ "$R" = ipmi ]; then step checked_$k b_checked || break; fi
        recv "freeze $k" 300 || { echo "SCENARIO b freeze_$k FAIL 300s - a never froze"; break; }
        step takeover_$k b_watch || break
        [ $k -lt "$NR" ] || break
        host_req boot a
        k=$((k + 1))
    done
fi
