# The main suite of the VM rig (sourced by tests/vm/run.sh in a subshell of its own, in
# $W/main): DRBD, LVM and a guest moved by tandem between two VMs joined only to each other,
# the crash of the holder and its rejoin. Acts: tests/vm/acts/*.sh.
#
#   node-a 192.0.2.1  <-- virtio-net over 127.0.0.1 UDP (socket netdev) -->  node-b 192.0.2.2
#   /dev/ttyS1        <-- chardev socket (a = server, b = client)     -->  /dev/ttyS1
#   /dev/vda, vdb, vdc (raw files) are each node's DRBD backing disks (r0, r1, r2);
#   /dev/ttyS0 is the console (a.log, b.log).
# The VMs have no other NIC: nothing reaches the host's network.
# HOST-REQ verbs: crash NODE LABEL=MIN..., kill NODE, boot NODE.

ACTS=acts
PNET=${PNET:-$((40000 + $$ % 10000))}
PSER=$((PNET + 1)) PNET_B=$((PNET + 2))

suite_qemu() {  # NAME BOOT: the NICs joined by UDP datagrams (a VM powered off and on again
    # is joined at once); ttyS1: a listens, b reconnects every second
    local n=$1 ip peer net mac ser d
    case $n in
        a) ip=192.0.2.1 peer=192.0.2.2 mac=1 ser=server=on,wait=off
           net=udp=127.0.0.1:$PNET_B,localaddr=127.0.0.1:$PNET ;;
        b) ip=192.0.2.2 peer=192.0.2.1 mac=2 ser=reconnect=1
           net=udp=127.0.0.1:$PNET,localaddr=127.0.0.1:$PNET_B ;;
    esac
    QAPPEND="rig.ip=$ip rig.peer=$peer"
    for d in disk-$n.img disk-$n-r1.img disk-$n-r2.img; do
        QARGS+=(-drive file=$d,format=raw,if=virtio,cache=unsafe)
    done
    QARGS+=(-netdev socket,id=n0,$net -device virtio-net-pci,netdev=n0,mac=52:54:00:99:00:0$mac
            -chardev socket,id=s1,host=127.0.0.1,port=$PSER,$ser -serial chardev:s1)
}

rm -f disk-*.img ./*.log ./*.stamped host-*.txt
for n in a b; do truncate -s "${DISK_MB}M" disk-$n.img disk-$n-r1.img disk-$n-r2.img; done
vm_boot a
trap 'vm_kill_all' EXIT
for i in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$PSER " && break; sleep 0.1; done
vm_boot b
say "main: qemu a=${VM_PID[a]} b=${VM_PID[b]} ($ACCEL, $MEM MiB each), ports $PNET-$PNET_B"

# crash NODE LABEL=MIN...: kill NODE's QEMU once its console shows MIN acknowledgements of
# every LABEL (or 20 s after the request); records the last ACK of each label and the time.
CRASH_NODE= CRASH_WANT= CRASH_AT= TKILL=
host_req_crash() {
    CRASH_NODE=$1; shift; CRASH_WANT="$*"; CRASH_AT=$(now)
    say "node $CRASH_NODE asks to be killed after ${CRASH_WANT:-nothing}"
}
host_poll_crash() {
    [ -n "$CRASH_NODE" ] && [ -z "$TKILL" ] || return 0
    local ready=1 kv n
    for kv in $CRASH_WANT; do
        n=$(acks $CRASH_NODE "${kv%=*}"); [ "${n:-0}" -ge "${kv#*=}" ] || ready=0
    done
    [ $ready = 1 ] || [ "$(since "$CRASH_AT" | cut -d. -f1)" -ge 20 ] || return 0
    vm_kill $CRASH_NODE; TKILL=$(now)
    ALONE_LIMIT=240
    : > host-acked.txt
    for kv in $CRASH_WANT; do echo "${kv%=*} $(acks $CRASH_NODE "${kv%=*}")" >> host-acked.txt; done
    say "killed node $CRASH_NODE (qemu) after: $(tr '\n' ' ' < host-acked.txt)"
}
# kill NODE: kill NODE's QEMU at once (SIGKILL: a crash), e.g. the holder of act 95's
# group; the survivor times its own takeover. (crash, above, is act 80's: once, judged here.)
host_req_kill() {
    vm_kill "$1"; host_event killed "$1"; ALONE_LIMIT=240
    say "killed node $1 (qemu), as it asked"
}
# takeover times: from the kill to each `TAKEOVER-DONE GROUP` on the survivor's console
host_poll_takeover() {
    [ -n "$TKILL" ] || return 0
    local g
    for g in $(grep -a -o 'TAKEOVER-DONE [a-z]*' a.log b.log 2>/dev/null | awk '{print $2}'); do
        grep -q "^$g " host-takeover.txt 2>/dev/null && continue
        echo "$g $(since "$TKILL")" >> host-takeover.txt; say "$g answered from the survivor $(since "$TKILL")s after the kill"
    done
}
suite_poll() {
    host_poll_crash; host_poll_takeover
    if [ -n "$CRASH_NODE" ] && [ "$(wc -l < host-takeover.txt 2>/dev/null || echo 0)" -lt 3 ]; then
        LOOP_SLEEP=0.1; else LOOP_SLEEP=0.5; fi
}

host_loop
trap - EXIT

collect_scenarios
# the crash, judged here: every record (line) acknowledged by a is on b, intact
verify() { { grep -a "CRASH-VERIFY $1 " b.log || true; } | tr -d '\r' | tail -1; }
field() { echo "$1" | sed -n "s/.* $2 \([0-9]*\).*/\1/p"; }
judge_crash() {  # judge_crash NAME LABEL GROUP [EXTRA-CHECK]
    local name=$1 label=$2 group=$3 v found bad acked took detail ok=1
    v=$(verify $label); found=$(field "$v" FOUND); bad=$(field "$v" BAD)
    acked=$(awk -v l=$label '$1 == l { print $2 }' host-acked.txt 2>/dev/null)
    took=$(awk -v g=$group '$1 == g { print $2 }' host-takeover.txt 2>/dev/null)
    detail="found=${found:-none} acked=${acked:-none} bad=${bad:-?}"
    [ -z "${4:-}" ] || detail="$detail new=$(field "$v" NEW)"
    [ -n "$took" ] && [ -n "$found" ] && [ "${acked:-0}" -gt 0 ] && [ "$found" -ge "$acked" ] &&
        [ "$bad" = 0 ] || ok=0
    [ -z "${4:-}" ] || [ "$(field "$v" NEW)" -gt 0 ] 2>/dev/null || ok=0
    if [ $ok = 1 ]; then echo "host $name PASS ${took}s $detail takeover=$took" >> scenarios.txt
    else echo "host $name FAIL - $detail takeover=${took:-none}" >> scenarios.txt; fi
}
if [ -n "$TKILL" ]; then
    judge_crash crash_failover data web
    judge_crash crash_failover_lvm vol vol
    judge_crash crash_failover_guest tick box new
else
    for x in crash_failover crash_failover_lvm crash_failover_guest; do
        echo "host $x FAIL - node a never asked to be killed" >> scenarios.txt
    done
fi
verdict
