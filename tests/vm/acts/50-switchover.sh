# Planned switch-over: `tandem standby` on node-a moves all three groups to node-b. The LV
# is deactivated before the demotion on a and activated after the promotion on b; nothing
# of the guest stays on a. Then a second primary is refused while b holds.
# expect a switchover lvm_released_by_standby guest_released_by_standby second_primary_refused
# expect b switchover_data lvm_switched guest_switched

switchover() {     # on the holder (a): `tandem standby`; watch the service come back from b
    dd if=/dev/urandom of=/data/switch.bin bs=1M count=4 2>/dev/null || return 1
    sync
    md5=$(md5sum /data/switch.bin | cut -d' ' -f1); echo "$md5" > /tmp/switch.md5
    echo "wrote /data/switch.bin md5 $md5"
    log_lines > /tmp/standby.mark
    t0=$(up)
    tandem standby || { echo "standby refused"; return 1; }
    wait_until 120 svc_is node-b || { echo "service did not come back"; local_state; return 1; }
    echo "takeover=$(since $t0)"
    local_state
    drbd_has ro:Secondary/Primary && ! mounted && ! has_vip
}
lvm_released_by_standby() {
    wait_until 60 lvm_released; ok=$?
    lvm_state
    log_order_since $(cat /tmp/standby.mark) "group vol: stop mount::/dev/$VG/lv0" "group vol: stop lvm::$VG" \
        "group vol: stop drbd::r1" || { echo "wrong order"; grep 'group vol' $TLOG | tail -8; return 1; }
    [ $ok = 0 ]
}
guest_released_by_standby() {
    wait_until 60 guest_released; ok=$?
    guest_state
    tandem guest list
    [ $ok = 0 ]
}

switchover_data() {   # on the new holder (b): DRBD, mount, IP, service, the file
    want=$(cat /tmp/msg | cut -d' ' -f2)
    wait_until 60 status_has node-b started || { tandem status; return 1; }
    local_state
    got=$(md5sum /data/switch.bin | cut -d' ' -f1)
    echo "md5 before $want after $got"
    [ -n "$want" ] && [ "$got" = "$want" ] && drbd_has ro:Primary/Secondary && mounted && has_vip
}
lvm_switched() {
    wait_until 60 group_has vol node-b started && wait_until 30 lvm_held; ok=$?
    lvm_state
    log_order "group vol: drbd::r1 started" "group vol: start lvm::$VG" "group vol: lvm::$VG started" \
        "group vol: start mount::/dev/$VG/lv0" || { echo "wrong order"; grep 'group vol' $TLOG; return 1; }
    [ $ok = 0 ]
}
# The guest runs on b and answers from b; its ticker numbers on after a's last line.
guest_switched() {
    wait_until 60 group_has box node-b started && wait_until 30 guest_held; ok=$?
    guest_state
    ticks_grow 10 && ticks_grow 10 || { echo "no ticks on b"; return 1; }
    res=$(ticks_check); r=$?; echo "ticks: $res"
    tail -n 3 $TICKS
    [ $ok = 0 ] && [ $r = 0 ] && echo "$res" | grep -q ' a=[1-9]' && echo "$res" | grep -q ' b=[1-9]'
}

# b holds: DRBD refuses a second primary to the agent, and the daemon keeps the group there.
second_primary_refused() {
    out=$(tandem agent drbd::r0 start 2>&1); rc=$?
    echo "$out" | tail -3
    echo "agent start rc=$rc; $(drbd_state)"
    [ $rc != 0 ] && drbd_has ro:Secondary/Primary && status_has node-b started
}

if [ "$NODE" = a ]; then
    scenario switchover switchover
    send "switched $(cat /tmp/switch.md5)"
    scenario lvm_released_by_standby lvm_released_by_standby
    scenario guest_released_by_standby guest_released_by_standby
    recv b-checked
    scenario second_primary_refused second_primary_refused
else
    recv_any 300 >/dev/null
    scenario switchover_data switchover_data
    scenario lvm_switched lvm_switched
    scenario guest_switched guest_switched
    send b-checked
fi
