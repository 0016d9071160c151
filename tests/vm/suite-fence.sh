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

ACTS=acts-fence
NS=vmf$$
VM_WRAP="ip netns exec $NS"
ALONE_LIMIT=150
PSER=7000
# the watchdog period and timing of the acts' configurations (tests/vm/rootfs/rig/fence)
WD_T=5 DEADTIME=3 KEEPALIVE=0.25

nsx() { ip netns exec "$NS" "$@"; }
declare -A SIM_PID QMP_PID

fence_cleanup() {
    vm_kill_all; sleep 0.5; vm_kill a; vm_kill b
    local p
    for p in "${SIM_PID[@]}" "${QMP_PID[@]}"; do kill "$p" 2>/dev/null || true; done
    stamp_stop
    for p in "${SIM_PID[@]}" "${QMP_PID[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
}

rm -rf ./*.img ./*.log ./*.stamped host-*.txt ./*.power-on bmc-* ./*.qmp ./*.pid
for n in a b; do truncate -s "${FENCE_DISK_MB:-32}M" disk-$n.img; done

# ---- the namespace: two bridges, four taps, the target and the BMCs' addresses
ip netns add "$NS"
trap 'fence_cleanup' EXIT
nsx ip link set lo up
for br in br0 br1; do nsx ip link add $br type bridge; nsx ip link set $br up; done
for n in a b; do
    for i in 0 1; do
        nsx ip tuntap add dev t$n$i mode tap
        nsx ip link set t$n$i master br$i
        nsx ip link set t$n$i up
    done
done
nsx ip addr add 192.0.2.254/24 dev br0
nsx ip addr add 203.0.113.11/24 dev br1
nsx ip addr add 203.0.113.12/24 dev br1

# ---- the BMCs
bmc_start() {  # bmc_start NODE ADDR
    local n=$1 addr=$2 d=$PWD/bmc-$1
    mkdir -p "$d/state"
    cat > "$d/power.sh" <<P
#!/bin/sh
# ipmi_sim's chassis_control for VM $n: power.sh get power | power.sh set power 0|1 [reset 1]
W=$PWD n=$n
P
    cat >> "$d/power.sh" <<'P'
alive() {
    p=$(cat $W/$n.pid 2>/dev/null) && [ -n "$p" ] && [ -r /proc/$p/stat ] && ! grep -qs '^[0-9]* ([^)]*) Z' /proc/$p/stat
}
off() {
    rm -f $W/$n.power-on
    if alive; then
        kill -9 "$(cat $W/$n.pid)"
        i=0; while alive && [ $i -lt 200 ]; do sleep 0.01; i=$((i+1)); done
    fi
    echo "off $(date +%s.%N)" >> $W/bmc-$n/power.log
}
on() { alive || touch $W/$n.power-on; echo "on $(date +%s.%N)" >> $W/bmc-$n/power.log; }
op=$1; shift
case $op in
get) for p; do case $p in
        power) if alive || [ -e $W/$n.power-on ]; then echo power:1; else echo power:0; fi ;;
        *) echo "Invalid parameter: $p"; exit 1 ;;
     esac; done ;;
set) while [ $# -ge 2 ]; do case $1 in power) if [ "$2" = 0 ]; then off; else on; fi ;; reset) off; on ;; esac; shift 2; done ;;
*) exit 1 ;;
esac
P
    chmod +x "$d/power.sh"
    local auths="none md2 md5 straight"
    cat > "$d/lan.conf" <<C
name "bmc$n"
set_working_mc 0x20
  startlan 1
    addr $addr 623
    priv_limit admin
    allowed_auths_callback $auths
    allowed_auths_user $auths
    allowed_auths_operator $auths
    allowed_auths_admin $auths
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$d/power.sh"
  user 2 true "admin" "s3cret" admin 10 $auths
C
    printf 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n' > "$d/bmc.emu"
    ip netns exec "$NS" ipmi_sim -n -p -c "$d/lan.conf" -f "$d/bmc.emu" -s "$d/state" </dev/null >"$d/ipmi_sim.log" 2>&1 &
    SIM_PID[$n]=$!
    for _ in $(seq 100); do nsx ss -Hlun | grep -q "$addr:623" && return 0; sleep 0.1; done
    say "ipmi_sim for $n does not listen on $addr:623: $(tail -3 "$d/ipmi_sim.log")"; return 1
}
bmc_start a 203.0.113.11
bmc_start b 203.0.113.12
ipmi() {  # ipmi NODE ARGS...: ipmitool against NODE's BMC, from the namespace
    local addr=203.0.113.11; [ "$1" = b ] && addr=203.0.113.12; shift
    nsx ipmitool -I lanplus -C 3 -N 1 -R 3 -H $addr -U admin -P s3cret "$@"
}

suite_qemu() {  # NAME BOOT
    local n=$1 no ser
    case $n in a) no=1 ser=server=on,wait=off ;; b) no=2 ser=reconnect=1 ;; esac
    QAPPEND="rig.ip=192.0.2.$no rig.peer=203.0.113.$((3 - no)) rig.mgmt=203.0.113.$no"
    QARGS=(-drive file=disk-$n.img,format=raw,if=virtio,cache=unsafe
           -netdev tap,id=n0,ifname=t${n}0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:99:01:0$no
           -netdev tap,id=n1,ifname=t${n}1,script=no,downscript=no -device virtio-net-pci,netdev=n1,mac=52:54:00:99:02:0$no
           -chardev socket,id=s1,host=127.0.0.1,port=$PSER,$ser -serial chardev:s1
           -device i6300esb -action watchdog=reset
           -qmp unix:$PWD/$n.qmp,server=on,wait=off)
    rm -f $n.qmp
    QMP_WANT[$n]=1
}
# QMP: events with QEMU's own timestamps, appended to NODE.qmp.log until QEMU ends (socat
# would parse the JSON's colons as its own: the command is a file)
declare -A QMP_WANT
printf '#!/bin/sh\necho '"'"'{"execute": "qmp_capabilities"}'"'"'\nexec cat >> "$1"\n' > qmp-reader.sh
qmp_poll() {
    local n
    for n in a b; do
        [ -n "${QMP_WANT[$n]:-}" ] && [ -S $n.qmp ] || continue
        QMP_WANT[$n]=
        socat UNIX-CONNECT:$PWD/$n.qmp EXEC:"sh $PWD/qmp-reader.sh $PWD/$n.qmp.log" 2>>$n.qmp.err &
        QMP_PID[$n]=$!
    done
}

# ---- the host verbs
cut_serial() {
    nsx nft -f - <<N
table inet vmcut {
    chain out { type filter hook output priority 0; tcp dport $PSER drop; tcp sport $PSER drop; }
}
N
}
host_req_cut() {
    case $1 in
        link) nsx bridge link set dev ta0 isolated on; nsx bridge link set dev tb0 isolated on ;;
        a|b) nsx ip link set t${1}0 nomaster ;;
        *) say "cut what? $1"; return ;;
    esac
    cut_serial
    host_event cut "$1"; say "cut $1 (and the serial line)"
}
host_req_heal() {
    local n
    nsx nft delete table inet vmcut 2>/dev/null || true
    for n in a b; do
        nsx ip link set t${n}0 master br0 2>/dev/null || true
        nsx bridge link set dev t${n}0 isolated off 2>/dev/null || true
    done
    host_event heal; say "healed"
}
host_req_power() {  # power NODE on|off
    local out
    out=$(ipmi "$1" chassis power "$2" 2>&1)
    host_event "ipmitool $1 power $2: $out"; say "ipmitool: node $1 power $2: $out"
}
# the BMCs' power on: NODE.power-on, left by power.sh
power_poll() {
    local n
    for n in a b; do
        [ -e $n.power-on ] || continue
        rm -f $n.power-on
        vm_alive $n || { say "node $n powered on by its BMC"; vm_boot $n; }
    done
}
suite_poll() { qmp_poll; power_poll; }

stamp_start
vm_boot a
for i in $(seq 50); do nsx ss -ltn | grep -q "127.0.0.1:$PSER " && break; sleep 0.1; done
vm_boot b
say "fence: qemu a=${VM_PID[a]} b=${VM_PID[b]} in namespace $NS ($ACCEL, $MEM MiB each)"
LOOP_SLEEP=0.1
host_loop
stamp_stop

# ------------------------------------------------------------ the host's verdicts
collect_scenarios
# qmp NODE EVENT: "SECONDS.MICROS DATA" of every QMP event EVENT of NODE (QEMU's clock is
# the host's)
qmp() {
    grep -a "\"event\": *\"$2\"" "$1.qmp.log" 2>/dev/null | tr -d '\r' |
        sed -E 's/.*"seconds": *([0-9]+), *"microseconds": *([0-9]+).*/\1 \2 &/' |
        awk '{ t = $1 "." sprintf("%06d", $2); i = index($0, "\"data\""); print t, (i ? substr($0, i) : "") }'
}
qmp_all() { grep -a '"event"' "$1.qmp.log" 2>/dev/null | tr -d '\r'; }
for n in a b; do qmp_all $n | sed "s/^/  qmp $n: /" >&2 || true; done
sed 's/^/  host: /' host-events.txt >&2
for n in a b; do sed "s/^/  bmc-$n power.log: /" bmc-$n/power.log >&2 2>/dev/null || true; done

# never_two_primaries: over the host's timeline, no time at which both VMs are Primary.
# A VM's role comes from its ROLE lines (sampled every 50 ms in the VM, stamped when they
# reach the host's console), and ends with its QEMU. That timeline is precise to about two
# samples: in an orderly hand-over the old primary's "Secondary" can reach the host a few
# ms after the new primary's "Primary" (DRBD itself refuses a second primary while
# connected). So an overlap fails when it lasts over 150 ms (three samples; a split brain
# lasts seconds, until a fence or a reset), a shorter one is listed; `TWO-PRIMARIES`
# (DRBD's own view, connected) fails at once.
two_primaries() {
    { grep -ah ' ROLE [ab] ' a.stamped b.stamped | awk '{ print $1, "role", $3, $4 }'
      awk '$2 == "ended" || $2 == "boot" { print $1, $2, $3 }' host-events.txt
    } | sort -n | awk '
        function check(t) {
            both = p["a"] && p["b"]
            if (both && since == "") since = t
            if (!both && since != "") {
                if (t - since > 0.15) bad = bad " " since "(" int((t - since) * 1000) "ms)"
                else short = short " " since "(" int((t - since) * 1000) "ms)"
                since = ""
            }
        }
        $2 == "role" && $4 == "TWO-PRIMARIES" { bad = bad " " $1 ":" $3 "-saw-Primary/Primary" }
        $2 == "role" { p[$3] = ($4 == "Primary"); n++ }
        $2 == "ended" || $2 == "boot" { p[$3] = 0 }
        { last = $1; check($1) }
        END {
            if (since != "") bad = bad " " since "(to the end)"
            printf "%d role changes", n
            if (short != "") printf "; overlaps within the sampling:%s", short
            if (bad != "") { printf "; both Primary at%s", bad; exit 1 }
        }'
}
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
