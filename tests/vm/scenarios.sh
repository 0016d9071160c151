# Sourced by the guest /init of tests/vm/run.sh (busybox ash). Helpers from /init:
# log, scenario NAME FUNC, agent, is, wait_for, send MSG, recv MSG [TIMEOUT], $NODE, $PEER.
# Each scenario is a function whose exit status is its verdict; it may print details, and
# a line `takeover=SECONDS` that the summary shows as the scenario's takeover time.
#
# Part 1 drives the agents by hand (`tandem agent`), part 2 runs the daemon on both nodes,
# started by the LSB init script, with the group
#   web node-a ip::$VIP/24/eth0 drbd::r0 mount::/dev/drbd0::/data::ext4 script::/etc/tandem/www.sh
# and moves it: planned switch-over, a refused second primary and a racing takeover, the
# DRBD fence-peer handler over the serial link, and (with the host) a crash of the holder.

# ---- set-up with drbd-utils (not under test)
setup_drbd() {
    drbdadm create-md r0 </dev/null >/dev/null 2>&1 || return 1
    drbdadm up r0 || return 1
    wait_for 120 is cstate Connected || { echo "not Connected: $(cat /proc/drbd)"; return 1; }
    if [ "$NODE" = a ]; then     # initial full sync from a, then a mkfs (set-up only)
        drbdadm primary --force r0 || return 1
        wait_for 300 is dstate UpToDate/UpToDate || { echo "no initial sync"; return 1; }
        /sbin/mke2fs -q -t ext4 /dev/drbd0 || return 1
        drbdadm secondary r0 || return 1
    fi
    wait_for 300 is dstate UpToDate/UpToDate || { echo "not UpToDate"; return 1; }
    echo "$(drbdadm role r0) $(drbdadm dstate r0) $(drbdadm cstate r0)"
}

# ---- the agent against the real module
# Our byte layout (ctx_resource_name with and without DRBD_GENLA_F_MANDATORY) is accepted.
probe_encodings() { /bin/drbd_probe r0; }

status_secondary() {  # Secondary: status exits 3 (not running)
    agent drbd::r0 status; rc=$?
    r=$(drbdadm role r0)     # the peer may already have been promoted: check ours only
    [ $rc = 3 ] && [ "${r%%/*}" = Secondary ]
}

promote() {
    agent drbd::r0 start || return 1
    is role Primary/Secondary || { echo "role $(drbdadm role r0)"; return 1; }
    agent drbd::r0 status
}

demote() {
    agent drbd::r0 stop || return 1
    r=$(drbdadm role r0); echo "role $r"
    [ "${r%%/*}" = Secondary ]
}

# The peer is Primary: start must be refused (bounded retries), and we stay Secondary.
never_two_primaries() {
    out=$(agent drbd::r0 start); rc=$?
    echo "$out"
    [ $rc != 0 ] || { echo "start succeeded while the peer is Primary"; return 1; }
    echo "$out" | grep -qi "primar" || return 1
    is role Secondary/Primary
}

MNT=mount::/dev/drbd0::/mnt::ext4::noatime
write_data() {
    agent $MNT start || return 1
    dd if=/dev/urandom of=/mnt/data bs=1M count=4 2>/dev/null
    md5sum /mnt/data | cut -d' ' -f1 > /mnt/data.md5
    echo "md5 $(cat /mnt/data.md5)"
    # a process holding the filesystem (cwd + an open fd): stop must remove it
    (cd /mnt && exec sleep 1000 3</mnt/data) >/dev/null 2>&1 &
    holder=$!
    sleep 1
    agent $MNT stop || return 1
    if kill -0 $holder 2>/dev/null; then echo "holder $holder survived"; return 1; fi
    ! grep -q ' /mnt ' /proc/mounts
}

# A Primary that is mounted refuses to demote: the group must stop mount before drbd.
demote_refused_while_mounted() {
    agent $MNT start || return 1
    out=$(agent drbd::r0 stop); rc=$?
    echo "$out"
    agent $MNT stop || return 1
    [ $rc != 0 ] && is role Primary/Secondary
}

read_back() {
    agent $MNT start || return 1
    [ "$(md5sum /mnt/data | cut -d' ' -f1)" = "$(cat /mnt/data.md5)" ] || { echo "md5 mismatch"; return 1; }
    echo "md5 $(cat /mnt/data.md5) OK"
    agent $MNT stop
}

bad_resource() {
    out=$(agent drbd::nosuch start); rc=$?
    echo "$out"
    [ $rc = 1 ] && echo "$out" | grep -q "not configured"
}

bad_device() {
    out=$(agent mount::/dev/drbd3::/mnt::ext4 start); rc=$?
    echo "$out"
    [ $rc != 0 ]
}

module_not_loaded() {
    drbdadm down r0 && rmmod drbd || return 1
    out=$(agent drbd::r0 start); rc=$?
    echo "$out"
    [ $rc = 1 ] && echo "$out" | grep -q "not loaded"
}


# DRBD again after module_not_loaded: same metadata, so it reconnects without a resync.
reup() {
    insmod /lib/modules/$KVER/$(grep drbd.ko /etc/rig-modules) || return 1
    drbdadm up r0 || return 1
    wait_for 120 is cstate Connected || { echo "not Connected: $(cat /proc/drbd)"; return 1; }
    wait_for 120 is dstate UpToDate/UpToDate || { echo "not UpToDate: $(cat /proc/drbd)"; return 1; }
    echo "$(drbdadm role r0) $(drbdadm dstate r0) $(drbdadm cstate r0)"
}

# ======================================================================= part 2: the daemon
VIP=192.0.2.100
TLOG=/var/log/tandem.log
drbd_has() { grep -q "$1" /proc/drbd; }          # e.g. ro:Primary/Secondary
drbd_state() { grep ' 0: cs:' /proc/drbd | sed 's/^ *//'; }
# The service's answer: the body of GET / (busybox's static wget crashes on name lookup).
svc() { printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc -w 2 $VIP 80 2>/dev/null | tail -1; }
svc_is() { [ "$(svc)" = "$1" ]; }
mounted() { grep -q ' /data ' /proc/mounts; }
has_vip() { ip -4 addr show dev eth0 | grep -q " $VIP/"; }
# status_has NODE STATE: tandem's JSON shows group web owned by NODE in STATE
status_has() { tandem status --json 2>/dev/null | grep -q "\"name\":\"web\",[^}]*\"owner\":\"$1\",\"state\":\"$2\""; }
peer_up() { tandem status --json 2>/dev/null | grep -q '"peers":\[{"name":"[^"]*","state":"up"'; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN{printf "%.2f", b-a}'; }
# wait_until SECONDS CMD...: like wait_for, polling every 0.1 s
wait_until() {
    t=$(( $1 * 10 )); shift
    until "$@" >/dev/null 2>&1; do t=$((t-1)); [ $t -gt 0 ] || return 1; usleep 100000; done
}
local_state() {
    echo "drbd: $(drbd_state)"
    echo "mounted=$(mounted && echo yes || echo no) vip=$(has_vip && echo yes || echo no) service=$(svc)"
}
diag() {
    ps w | grep -v ']$'; netstat -ltn; ip -4 addr show dev eth0; ls -la /data /data/www
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc -w 2 $VIP 80 2>&1
}
recv_any() { timeout ${1:-200} nc -l -p 5555 > /tmp/msg; cat /tmp/msg; }

start_tandem() {   # the LSB init script, as a boot would run it (/etc/default/tandem)
    /etc/init.d/tandem start || { echo "init script failed"; return 1; }
    /etc/init.d/tandem status >/dev/null || { echo "status after start: $?"; return 1; }
    wait_until 60 peer_up || { echo "peer not up"; tandem status; return 1; }
    wait_until 90 status_has node-a started || { echo "group not started"; tandem status; return 1; }
    if [ "$NODE" = a ]; then
        wait_until 30 svc_is node-a || { echo "no service"; local_state; diag; return 1; }
    fi
    tandem status
    local_state
}

switchover() {     # on the holder (a): `tandem standby`; watch the service come back from b
    dd if=/dev/urandom of=/data/switch.bin bs=1M count=4 2>/dev/null || return 1
    sync
    md5=$(md5sum /data/switch.bin | cut -d' ' -f1); echo "$md5" > /tmp/switch.md5
    echo "wrote /data/switch.bin md5 $md5"
    t0=$(up)
    tandem standby || { echo "standby refused"; return 1; }
    wait_until 120 svc_is node-b || { echo "service did not come back"; local_state; return 1; }
    echo "takeover=$(since $t0)"
    local_state
    drbd_has ro:Secondary/Primary && ! mounted && ! has_vip
}

switchover_data() {   # on the new holder (b): DRBD, mount, IP, service, the file
    want=$(cat /tmp/msg | cut -d' ' -f2)
    wait_until 60 status_has node-b started || { tandem status; return 1; }
    local_state
    got=$(md5sum /data/switch.bin | cut -d' ' -f1)
    echo "md5 before $want after $got"
    [ -n "$want" ] && [ "$got" = "$want" ] && drbd_has ro:Primary/Secondary && mounted && has_vip
}

# b holds: DRBD refuses a second primary to the agent, and the daemon keeps the group there.
second_primary_refused() {
    out=$(tandem agent drbd::r0 start 2>&1); rc=$?
    echo "$out" | tail -3
    echo "agent start rc=$rc; $(drbd_state)"
    [ $rc != 0 ] && drbd_has ro:Secondary/Primary && status_has node-b started
}

# Samples the local DRBD roles every 50 ms until /tmp/sample.stop appears; a line
# "ro:Primary/Primary" ever seen is written to /tmp/sample.bad.
sampler() {
    rm -f /tmp/sample.stop /tmp/sample.bad; n=0
    while [ ! -e /tmp/sample.stop ]; do
        grep -o 'ro:[A-Za-z]*/[A-Za-z]*' /proc/drbd | grep -q 'ro:Primary/Primary' &&
            grep ' 0: cs:' /proc/drbd >> /tmp/sample.bad
        n=$((n+1)); usleep 50000
    done
    echo "$n" > /tmp/sample.count
}
sampler_verdict() {
    echo "$(cat /tmp/sample.count 2>/dev/null) samples"
    [ ! -s /tmp/sample.bad ] || { echo "TWO PRIMARIES:"; cat /tmp/sample.bad; return 1; }
}

# a takes the group back (`tandem takeover`) while racing its own `tandem agent drbd::r0
# start` against b's orderly stop; both nodes sample their roles throughout.
takeover_race() {
    sampler & sp=$!
    t0=$(up)
    tandem takeover web || { echo "takeover refused"; touch /tmp/sample.stop; return 1; }
    (tandem agent drbd::r0 start > /tmp/race.agent 2>&1; echo "rc=$?" >> /tmp/race.agent) &
    ap=$!
    wait_until 120 svc_is node-a || { echo "service did not come back"; local_state; }
    echo "takeover=$(since $t0)"
    wait $ap; echo "racing agent: $(tail -1 /tmp/race.agent)"
    sleep 1; touch /tmp/sample.stop; wait $sp
    local_state
    sampler_verdict && svc_is node-a && drbd_has ro:Primary/Secondary && status_has node-a started
}
peer_sampler_verdict() {   # the sampler is the main shell's child: wait for its count
    touch /tmp/sample.stop; wait_until 10 [ -e /tmp/sample.count ]
    sampler_verdict && drbd_has ro:Secondary/Primary
}

# b's network is cut (DRBD and UDP; the serial link stays): a's DRBD calls its fence-peer
# handler `/sbin/tandem fence-peer`, which reaches b's daemon over the serial line, and b
# outdates its disk. Then `tandem fence-peer r0` by hand on a exits 4 (already outdated).
fence_handler() {   # on the primary (a)
    t0=$(up)
    wait_until 60 drbd_has ds:UpToDate/Outdated || { echo "peer disk not marked Outdated: $(drbd_state)"; dmesg | grep -i fence | tail -5; return 1; }
    echo "peer Outdated after $(since $t0)s: $(drbd_state)"
    dmesg | grep -iE 'fence-peer|helper' | tail -4
    peer_up && status_has node-a started || { echo "cluster view changed"; tandem status; return 1; }
}
fence_by_hand() {
    sleep 3   # past the peer's 2 s window in which copies of one request share an answer
    out=$(tandem fence-peer r0 2>&1); rc=$?
    echo "tandem fence-peer r0: exit $rc: $out"
    [ $rc = 4 ]
}
answered_twice() { [ "$(grep -c 'outdate DRBD resource r0: answered 4' $TLOG)" -ge 2 ]; }
fence_outdated() {  # on the secondary (b)
    ip link set eth0 down; t0=$(up)
    wait_until 60 drbd_has ds:Outdated/DUnknown || { echo "disk not Outdated: $(drbd_state)"; ip link set eth0 up; return 1; }
    echo "own disk Outdated after $(since $t0)s: $(drbd_state)"
    # the handler's request, then the one by hand, both answered 4
    wait_until 60 answered_twice; ok=$?
    grep 'outdate DRBD resource' $TLOG | tail -2
    grep 'OUTDATE: ' $TLOG | tail -1          # our netlink OUTDATE did it
    ip link set eth0 up
    [ $ok = 0 ] && grep -q 'OUTDATE.*: state change succeeded' $TLOG
}
# Connected again: DRBD ignores OUTDATE on a connected disk; the peer repeats it for its
# whole budget, then answers 1 (not outdated): it is alive, so never 5 ("unreachable", which
# DRBD takes as "dead"). Its disk stays UpToDate. A resource the peer does not have is 1 too.
fence_refused() {
    sleep 3   # past the 3 s in which the peer repeats its last answer for r0 (4, outdated)
    out=$(tandem fence-peer r0 2>&1); rc=$?
    echo "connected: exit $rc: $out; $(drbd_state)"
    [ $rc = 1 ] && drbd_has ds:UpToDate/UpToDate || return 1
    out=$(tandem fence-peer nosuch 2>&1); rc=$?
    echo "unknown resource: exit $rc: $out"
    [ $rc = 1 ]
}
resynced() {
    wait_until 120 drbd_has ds:UpToDate/UpToDate || { echo "no resync: $(drbd_state)"; return 1; }
    wait_until 30 peer_up || return 1
    drbd_state
}

# The crash: a starts the writer and waits to be killed by the host; b waits for the
# service to answer from b, then checks every record.
crash_writer() {
    mounted || return 1
    sed "s/^/TLOG $NODE /" $TLOG > /dev/console   # a's log, before it is lost
    /bin/vm_writer write /data/records > /dev/console 2>&1 &
    log "CRASH-READY writer pid $!" > /dev/console
    sleep 600
}
crash_takeover() {
    t0=$(up)
    wait_until 300 svc_is node-b || { echo "no takeover"; local_state; tandem status; return 1; }
    log "TAKEOVER-DONE after $(since $t0)s of waiting" > /dev/console
    local_state
    grep -iE 'dead|takeover|starting|started' $TLOG | tail -8
    res=$(/bin/vm_writer verify /data/records); rc=$?
    log "CRASH-VERIFY $res" > /dev/console
    [ $rc = 0 ] && drbd_has ro:Primary/ && mounted && has_vip
}
tandem_stop() {    # the init script releases the group before the daemon exits
    /etc/init.d/tandem stop || return 1
    local_state
    drbd_has ro:Secondary/ && ! mounted && ! has_vip && ! /etc/init.d/tandem status >/dev/null
}

# ---- the run: a is the first holder
scenario setup setup_drbd
if [ -z "$QUICK" ]; then   # rig.quick=1: the daemon scenarios only
scenario probe_encodings probe_encodings
scenario status_secondary status_secondary
if [ "$NODE" = a ]; then
    scenario promote promote
    scenario mount_evicts_holders write_data
    scenario demote_refused_while_mounted demote_refused_while_mounted
    send a-primary
    recv b-refused
    scenario demote demote
    send a-secondary
    recv b-done 300
else
    recv a-primary
    scenario never_two_primaries never_two_primaries
    send b-refused
    recv a-secondary
    scenario promote_after_peer_demoted promote
    scenario read_back_on_peer read_back
    scenario demote demote
    send b-done
fi
scenario bad_resource bad_resource
scenario bad_device bad_device
sleep 2
scenario module_not_loaded module_not_loaded
scenario drbd_up_again reup
fi

# ---- part 2: the daemon
scenario tandem_start start_tandem
if [ "$NODE" = a ]; then
    recv b-started
    scenario switchover switchover
    send "switched $(cat /tmp/switch.md5)"
    recv b-checked
    scenario second_primary_refused second_primary_refused
    send race; recv b-sampling
    scenario takeover_race takeover_race
    send race-done; recv b-race-checked
    send fence
    scenario fence_handler fence_handler
    scenario fence_by_hand fence_by_hand
    scenario fence_resync resynced
    recv b-resynced 200
    scenario fence_refused fence_refused
    send crash
    scenario crash_writer crash_writer   # killed by the host before it returns
else
    send b-started
    recv_any 300 >/dev/null
    scenario switchover_data switchover_data
    send b-checked
    recv race; sampler & send b-sampling
    recv race-done 300
    scenario never_two_primaries_peer peer_sampler_verdict
    send b-race-checked
    recv fence
    scenario fence_outdated fence_outdated
    scenario fence_resync resynced
    send b-resynced
    recv crash
    scenario crash_takeover crash_takeover
    scenario tandem_stop tandem_stop
fi
log "ALL DONE"
