# boot: 2
# node-a's second boot, after the crash: its DRBD resources come up on the same disks and
# resync from b (a was Primary when it died: it becomes SyncTarget, no split brain); its
# daemon joins and holds nothing (auto_failback off). When b's daemon stops, a takes the
# three groups: the records acknowledged before the crash are there, the guest's ticks
# number on. Then a stops too.
# expect a rejoin takeover_on_peer_stop tandem_stop stopped_clean
[ "$NODE" = a ] || return 0   # (node-b's second boot: act 95's rejoin)
MINORS="0 1 2"

rejoin() {
    drbdadm up all || return 1
    wait_until 120 drbd_all cs:Connected || { echo "not Connected: $(cat /proc/drbd)"; return 1; }
    wait_until 120 drbd_all ds:UpToDate/UpToDate || { echo "no resync: $(cat /proc/drbd)"; return 1; }
    for m in $MINORS; do minor_state $m; done
    dmesg | grep -iE 'split.brain|SyncTarget|Resync done' | tail -6
    ! dmesg | grep -qi 'split-brain' || return 1
    /etc/init.d/tandem start || return 1
    wait_until 60 peer_up || { echo "peer not up"; return 1; }
    wait_until 30 group_has box node-b started || return 1
    tandem status
    drbd_all ro:Secondary/Primary && ! mounted && lv_gone && ! guest_running
}
takeover_on_peer_stop() {
    t0=$(up)
    wait_until 120 svc_is node-a && wait_until 60 lvm_held && wait_until 60 guest_held; ok=$?
    echo "all three served here $(since $t0)s after b reported its stop"
    local_state; lvm_state; guest_state
    for f in /data/records /vol/records; do echo "$f: $(/bin/vm_writer verify $f)" || ok=1; done
    ticks_grow 10; res=$(ticks_check) || ok=1; echo "ticks: $res"
    [ $ok = 0 ] && [ "$(tail -n 1 $TICKS | cut -d' ' -f4)" = $IP ]
}

scenario rejoin rejoin
send a-rejoined
recv b-stopped 300
scenario takeover_on_peer_stop takeover_on_peer_stop
scenario tandem_stop tandem_stop
scenario stopped_clean stopped_clean
