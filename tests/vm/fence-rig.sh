# The fence rig of the VM suites (sourced by tests/vm/suite-fence.sh and suite-wdbench.sh,
# in their directory under $W): the namespace, the two bridges, the BMCs, QEMU with its
# i6300esb watchdog and QMP, the host verbs; the picture is in suite-fence.sh. The suite sets
# ACTS (and may set RIG_ARG: rig.arg= on both VMs' command line, $RIG_ARG in the acts) before
# sourcing this file, then calls fence_rig_run.
NS=vmf$$
VM_WRAP="ip netns exec $NS"
PSER=7000

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
    QAPPEND="rig.ip=192.0.2.$no rig.peer=203.0.113.$((3 - no)) rig.mgmt=203.0.113.$no${RIG_ARG:+ rig.arg=$RIG_ARG}"
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

# fence_rig_run: both VMs booted, the loop until both are off
fence_rig_run() {
    stamp_start
    vm_boot a
    for i in $(seq 50); do nsx ss -ltn | grep -q "127.0.0.1:$PSER " && break; sleep 0.1; done
    vm_boot b
    say "$SUITE: qemu a=${VM_PID[a]} b=${VM_PID[b]} in namespace $NS ($ACCEL, $MEM MiB each)"
    LOOP_SLEEP=0.1
    host_loop
    stamp_stop
}

# qmp NODE EVENT: "SECONDS.MICROS DATA" of every QMP event EVENT of NODE (QEMU's clock is
# the host's)
qmp() {
    grep -a "\"event\": *\"$2\"" "$1.qmp.log" 2>/dev/null | tr -d '\r' |
        sed -E 's/.*"seconds": *([0-9]+), *"microseconds": *([0-9]+).*/\1 \2 &/' |
        awk '{ t = $1 "." sprintf("%06d", $2); i = index($0, "\"data\""); print t, (i ? substr($0, i) : "") }'
}
qmp_all() { grep -a '"event"' "$1.qmp.log" 2>/dev/null | tr -d '\r'; }

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
