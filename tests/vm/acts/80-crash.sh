# The crash: node-a holds web, vol and box and writes: vm_writer appends fsync'd records to
# /data/records (ext4 on DRBD) and /vol/records (ext4 on the LV), printing `ACK data n` /
# `ACK vol n` on the console once each is on disk; the guest's ticker prints `ACK tick n`
# on the guest's console (forwarded to a's). a asks the host to kill its QEMU (SIGKILL)
# once it has seen 100 data and 100 vol acknowledgements and one of a tick. node-b
# declares a dead and starts all three groups; the host judges (crash_failover, crash_failover_lvm,
# crash_failover_guest) that everything acknowledged is on b's disks and times each
# takeover from the kill to the first answer from b. Then b's guest runs crond (one cron
# run shown) and syslogd.
# expect a crash_writer_ready
# expect b crash_takeover guest_after_crash guest_cron

crash_writer() {
    mounted && mounted /vol && guest_running || { lvm_state; guest_state; return 1; }
    sed "s/^/TLOG $NODE /" $TLOG > /dev/console   # a's log, before it is lost
    /bin/vm_writer write -l data /data/records > /dev/console 2>&1 &
    /bin/vm_writer write -l vol /vol/records > /dev/console 2>&1 &
    tail -n 0 -f /run/tandem/guests/box/console > /dev/console 2>&1 &
    host_req crash a data=100 vol=100 tick=1
}

# b: polls the three services every 0.1 s; `TAKEOVER-DONE GROUP` on the console the moment
# each answers from b (the host times it from the kill).
crash_takeover() {
    t0=$(up); left="web vol box"
    for i in $(seq 3000); do
        for g in $left; do
            case $g in
                web) svc_is node-b ;;
                vol) svc_at_is 192.0.2.101 "vol node-b" ;;
                box) guest_serves b ;;
            esac && { log "TAKEOVER-DONE $g after $(since $t0)s of waiting" > /dev/console
                      left=$(echo $left | sed "s/$g//"); }
        done
        [ -n "$(echo $left)" ] || break
        usleep 100000
    done
    [ -z "$(echo $left)" ] || { echo "no takeover of $left"; local_state; lvm_state; guest_state; tandem status; return 1; }
    local_state; lvm_state; guest_state
    grep -iE 'dead|takeover|starting|started' $TLOG | tail -12
    ok=0
    for w in data:/data/records vol:/vol/records; do
        res=$(/bin/vm_writer verify ${w#*:}) || ok=1
        log "CRASH-VERIFY ${w%%:*} $res" > /dev/console
    done
    [ $ok = 0 ] && drbd_all ro:Primary/ && mounted && mounted /vol && has_vip && lvm_held && guest_held
}
# The guest's ticks across the crash: every line a wrote (up to the host's last ACK, judged
# there), then new lines from b, numbered on without a gap.
crash_ticks() {
    awk '$1 != "tick" || $2 !~ /^[0-9]+$/ || NF != 4 { bad++; next }
         prev && $2 != prev + 1 { bad++ }
         { prev = $2; if ($4 == "192.0.2.1") { la = $2; after = 0 } else after++ }
         END { printf "FOUND %d BAD %d NEW %d\n", la, bad, after }' $TICKS
}
guest_after_crash() {
    ticks_grow 10 && ticks_grow 10 || { echo "no ticks on b"; return 1; }
    res=$(crash_ticks); log "CRASH-VERIFY tick $res" > /dev/console
    echo "$res; $(ticks_check)"
    grep -h . $TICKS | tail -n 4
    echo "$res" | grep -q ' BAD 0 NEW [1-9]'
}
# crond runs its job once a minute (at the minute): wait for one run if there was none yet
guest_cron() {
    wait_until 70 [ -s /box/root/var/log/cron.ticks ]; ok=$?
    echo "cron runs: $(cat /box/root/var/log/cron.ticks 2>/dev/null | tr '\n' ';')"
    echo "syslog: $(grep -c . /box/root/var/log/messages 2>/dev/null) lines"
    grep -h crond /box/root/var/log/messages | tail -n 2
    [ $ok = 0 ] && grep -q crond /box/root/var/log/messages
}
if [ "$NODE" = a ]; then
    send crash
    scenario crash_writer_ready crash_writer
    sleep 600     # killed by the host before this returns
else
    recv crash
    scenario crash_takeover crash_takeover
    scenario guest_after_crash guest_after_crash
    scenario guest_cron guest_cron
fi
