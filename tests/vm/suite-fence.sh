# The fence suite of the VM rig (sourced by tests/vm/run.sh in a subshell, in $W/fence):
# fencing with real BMCs and real watchdogs. Acts: tests/vm/acts-fence/*.sh.
#
#   network namespace vmfPID (nothing routed, no link to the host's network):
#     br0 192.0.2.0/24 (cluster LAN: heartbeats, DRBD, the group's address)
#         ta0 -- node-a eth0 192.0.2.1      tb0 -- node-b eth0 192.0.2.2
#         192.0.2.254 on br0: the ping target of the watchdog cases
#     br1 203.0.113.0/24 (management)
#         ta1 -- node-a eth1 203.0.113.1    tb1 -- node-b eth1 203.0.113.2
#         203.0.113.11: node-a's BMC, 203.0.113.12: node-b's BMC (two ipmi_sim, RMCP+ on 623)
#     127.0.0.1: node-a's ttyS1 (chardev server) <-> node-b's ttyS1 (client)
#   Each QEMU runs in the namespace (tap NICs), with QEMU's i6300esb watchdog
#   (`-action watchdog=reset`: under -no-reboot the reset ends QEMU) and a QMP socket whose
#   events (WATCHDOG, SHUTDOWN) go to NODE.qmp.log.
#   A BMC's chassis power off SIGKILLs its VM's QEMU (power.sh); power on asks this script to
#   boot it again (NODE.power-on). power.log: one line per change.
#
# HOST-REQ verbs:
#   cut link      the VMs' eth0 ports isolated from each other (each still reaches the
#                 target) and the serial line blocked: every heartbeat and replication path
#   cut a | cut b that VM's eth0 off the bridge (no peer, no target) and the serial line
#   heal          everything joined again
#   power NODE on|off   ipmitool -I lanplus against NODE's BMC (as an operator would)
#   boot NODE     QEMU started again after a reset
# The acts talk to each other over eth1 (send/recv), which no cut touches.
# The rig itself (all of the above) is tests/vm/fence-rig.sh, shared with suite wdbench.

ACTS=acts-fence
ALONE_LIMIT=150
# the watchdog period and timing of the acts' configurations (tests/vm/rootfs/rig/fence)
WD_T=5 DEADTIME=3 KEEPALIVE=0.25
. "$VMDIR/fence-rig.sh"

fence_rig_run

# ------------------------------------------------------------ the host's verdicts
collect_scenarios
for n in a b; do qmp_all $n | sed "s/^/  qmp $n: /" >&2 || true; done
sed 's/^/  host: /' host-events.txt >&2
for n in a b; do sed "s/^/  bmc-$n power.log: /" bmc-$n/power.log >&2 2>/dev/null || true; done

r=$(two_primaries); host_verdict never_two_primaries $? "$r"

# the IPMI partition: node-b's BMC powered it off after the cut, its QEMU ended then
t_cut=$(event_at 'cut link'); t_off=$(grep -m1 '^off' bmc-b/power.log 2>/dev/null | cut -d' ' -f2)
t_end=$(event_at 'ended b')
if [ -n "$t_cut" ] && [ -n "$t_off" ] && [ -n "$t_end" ]; then
    d1=$(diff_s "$t_cut" "$t_off"); d2=$(diff_s "$t_off" "$t_end")
    awk -v a="$d1" -v b="$d2" 'BEGIN { exit !(a > 0 && b >= -0.5 && b < 2) }'
    host_verdict ipmi_power_off $? "${d1}s off_after_cut=$d1 qemu_ended_after_off=$d2"
else
    host_verdict ipmi_power_off 1 "cut=${t_cut:-none} bmc_off=${t_off:-none} ended=${t_end:-none}"
fi

# judge_writes NAME LABEL WRITER SURVIVOR: every record WRITER acknowledged (its console's
# last `ACK LABEL n`) is on SURVIVOR's disk (`WRITER-VERIFY LABEL FOUND n BAD b`)
judge_writes() {
    local name=$1 label=$2 v found bad acked
    acked=$(acks "$3" "$label")
    v=$({ grep -a "WRITER-VERIFY $label " "$4.log" || true; } | tr -d '\r' | tail -1)
    found=$(echo "$v" | sed -n 's/.* FOUND \([0-9]*\).*/\1/p'); bad=$(echo "$v" | sed -n 's/.* BAD \([0-9]*\).*/\1/p')
    [ -n "$found" ] && [ "${acked:-0}" -gt 0 ] && [ "$found" -ge "$acked" ] && [ "$bad" = 0 ]
    host_verdict "$name" $? "acked=${acked:-none} found=${found:-none} bad=${bad:-?}"
}
# judge_watchdog NAME LABEL: the holder (a) stopped at `WD-CUT LABEL` (frozen, or cut off);
# its watchdog reset it (QMP WATCHDOG action reset) within the period (+1.5 s: the host's
# and QEMU's clocks, the last pet up to a quarter period before) of its last possible pet;
# node-b answered for the group only after a's QEMU ended and at least
# TIMEOUT + deadtime after the stop.
judge_watchdog() {
    local name=$1 label=$2 t_stop t_wd t_end t_take since_pet ok=0 detail
    t_stop=$(at "WD-CUT $label" a); t_take=$(at "TAKEOVER-DONE $label" b)
    t_end=$(awk -v s="${t_stop:-0}" '$2 == "ended" && $3 == "a" && $1 > s { print $1; exit }' host-events.txt)
    t_wd=$(qmp a WATCHDOG | awk -v s="${t_stop:-0}" '$1 > s { print; exit }')
    detail="stop=${t_stop:-none} watchdog=${t_wd:-none} ended=${t_end:-none} takeover=${t_take:-none}"
    [ -n "$t_stop" ] && [ -n "$t_wd" ] && [ -n "$t_end" ] && [ -n "$t_take" ] || {
        host_verdict "$name" 1 "$detail"; return; }
    echo "$t_wd" | grep -q '"action": *"reset"' || ok=1
    # the last pet: at the stop (frozen) or when it declared b dead (cut: deadtime later)
    since_pet=$(diff_s "$t_stop" "${t_wd%% *}")
    local reset=$since_pet take take_end
    take=$(diff_s "$t_stop" "$t_take"); take_end=$(diff_s "$t_end" "$t_take")
    awk -v r="$reset" -v lim="$3" -v t="$take" -v te="$take_end" -v min="$((WD_T + DEADTIME))" \
        'BEGIN { exit !(r > 0 && r <= lim && t >= min && te > 0) }' || ok=1
    host_verdict "$name" $ok "${take}s reset_after=${reset}s (limit $3) takeover_after=${take}s (min $((WD_T + DEADTIME))) after_reset=${take_end}s"
}
judge_writes ipmi_writes_kept ipmi a a
judge_watchdog frozen_holder_reset frozen $(awk -v t=$WD_T 'BEGIN { print t + 1.5 }')
judge_writes frozen_writes_kept frozen a b
judge_watchdog isolated_holder_reset isolated $(awk -v t=$WD_T -v d=$DEADTIME 'BEGIN { print t + d + 1.5 }')
judge_writes isolated_writes_kept isolated a b
judge_writes peer_side_writes_kept kept a a
# the clean stops: no WATCHDOG event at all after the first `WD-CLEAN-STOP` (a's QEMU ends by
# the guest's own poweroff, b's too)
t_clean=$(at "WD-CLEAN-STOP" a)
late=$(for n in a b; do qmp $n WATCHDOG | awk -v s="${t_clean:-9e99}" -v n=$n '$1 > s { print n, $0 }'; done)
down=$(for n in a b; do qmp $n SHUTDOWN | tail -1 | sed "s/^/$n /"; done | tr '\n' ';')
[ -n "$t_clean" ] && [ -z "$late" ] && ! echo "$down" | grep -q 'guest-reset'
host_verdict clean_stop_no_reset $? "stop=${t_clean:-none} watchdog_after=${late:-none} last_shutdowns: $down"
b_resets=$(qmp b WATCHDOG | wc -l)
[ "$b_resets" = 0 ]; host_verdict peer_never_reset $? "node-b watchdog resets: $b_resets"

trap - EXIT
fence_cleanup
verdict
