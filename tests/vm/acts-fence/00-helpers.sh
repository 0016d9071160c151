# boot: 1+
# The fence suite's helpers (every boot): DRBD r0 with fencing resource-and-stonith, the
# tandem configuration of each phase, the role watcher, the writer. Each act runs in the
# boots its `on_boot` names (node-b is powered off by its BMC once, node-a is reset by its
# watchdog twice, so the two count their boots differently).
cp /rig/fence/drbd.conf /etc/drbd.conf
WD_T=5   # the watchdog period of the cases (suite-fence.sh's WD_T)

# on_boot a:N b:M: this act runs in node-a's Nth boot and node-b's Mth
on_boot() {
    for x in "$@"; do [ "$x" = "$NODE:${BOOT:-1}" ] && return 0; done
    return 1
}

# this node's partition slot has settled (docs/fencing.md: right after a change, such as web
# starting, both nodes keep to the longer slots for twice (deadtime + keepalive))
slot_settled() {
    tandem status | grep "fell silent now" | grep -vq "not settled"
}

# use_conf ipmi | watchdog TIMEOUT: /etc/tandem/tandem.conf for the phase
use_conf() {
    { cat /rig/fence/tandem.conf; sed "s/TIMEOUT/${2:-$WD_T}s/" /rig/fence/$1.conf; } > /etc/tandem/tandem.conf
    chmod 600 /etc/tandem/tandem.conf
}

# The role watcher: `ROLE <node> <role>` on the console at each change of r0's role (sampled
# every 50 ms; the host stamps the lines and checks both VMs are never Primary at once), and
# `ROLE <node> TWO-PRIMARIES` if this DRBD ever sees Primary/Primary.
role_watch() {
    last=
    while :; do
        r=$(sed -n 's/^ *0: cs:[^ ]* ro:\([A-Za-z]*\)\/.*/\1/p' /proc/drbd 2>/dev/null)
        r=${r:-none}
        [ "$r" = "$last" ] || { echo "ROLE $NODE $r" > /dev/console; last=$r; }
        grep -q 'ro:Primary/Primary' /proc/drbd 2>/dev/null && echo "ROLE $NODE TWO-PRIMARIES" > /dev/console
        usleep 50000
    done
}
role_watch &

# the writer: fsync'd records to /data/LABEL.rec, `ACK LABEL n` in /tmp/LABEL.acks (and,
# copied by tail, on the console) only once each is on disk; stopped by its pid
writer_start() {
    : > /tmp/$1.acks
    # (nothing of the scenario's output pipe may stay open in the background)
    /bin/vm_writer write -i 20 -l $1 /data/$1.rec > /tmp/$1.acks 2>&1 < /dev/null &
    echo $! > /tmp/$1.wpid
    tail -f /tmp/$1.acks > /dev/console 2>&1 < /dev/null &
}
writer_acks() { tail -n 1 /tmp/$1.acks 2>/dev/null | sed -n "s/^ACK $1 //p"; }
acks_past() { [ "$(writer_acks $1)" -ge "$2" ] 2>/dev/null; }
# (a zombie is not alive: the writer's parent, a scenario's subshell, is gone)
pid_alive() { [ -r /proc/$1/stat ] && ! grep -q ') Z' /proc/$1/stat; }
writer_stop() {
    p=$(cat /tmp/$1.wpid 2>/dev/null) && kill "$p" 2>/dev/null
    i=0; while pid_alive "$p" && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
    ! pid_alive "$p" || echo "writer $1 ($p) still running"
}
# writer_verify LABEL: the file checked here; `WRITER-VERIFY LABEL FOUND n BAD b ...` on the
# console for the host, which compares it with the writer's last ACK
writer_verify() {
    res=$(/bin/vm_writer verify /data/$1.rec); rc=$?
    echo "WRITER-VERIFY $1 $res" > /dev/console
    echo "$res"
    return $rc
}

# tandem's JSON status: the fencing state of the peer
fence_state() { tandem status --json 2>/dev/null | sed -n 's/.*"fencing":{[^}]*"state":"\([a-z]*\)".*/\1/p'; }
fenced() { [ "$(fence_state)" = confirmed ]; }
web_here() { drbd_has ro:Primary/ && mounted && has_vip && svc_is node-$NODE; }
drbd_helper_said() { dmesg | grep -q "fence-peer helper returned $1"; }

# rejoin: after a power-off or a reset, DRBD comes up on the same disk and resyncs from the
# survivor (this node becomes SyncTarget: no split brain), then the daemon joins
rejoin_drbd() {
    drbdadm up r0 || return 1
    wait_secs 120 is cstate Connected || { echo "not Connected: $(cat /proc/drbd)"; return 1; }
    wait_secs 120 is dstate UpToDate/UpToDate || { echo "no resync: $(cat /proc/drbd)"; return 1; }
    dmesg | grep -iE 'split.brain|SyncTarget|Resync done' | tail -4
    ! dmesg | grep -qi 'split-brain'
}
tandem_up() {
    /etc/init.d/tandem start >/dev/null || { echo "init script start failed"; return 1; }
    wait_secs 60 peer_up || { echo "peer not up"; tandem status; return 1; }
}
# b, once a is back and took web again
back_on_a() {
    wait_secs 30 group_has web node-a started && drbd_has ro:Secondary/Primary && drbd_has ds:UpToDate/UpToDate &&
        ! mounted && ! has_vip
}
# wait_secs SECONDS CMD...: poll CMD every 0.1 s for at most SECONDS of the VM's clock (a
# slow CMD under TCG does not stretch the bound)
wait_secs() {
    end=$(( $(cut -d. -f1 /proc/uptime) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(cut -d. -f1 /proc/uptime)" -lt $end ] || return 1
        usleep 100000
    done
}
# note WORDS: a progress line on the console at once (a scenario's output comes at its end)
note() { echo "RIG $NODE $(up) $*" > /dev/console; }
