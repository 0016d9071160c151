# boot: 1+
# IPMI fencing: each node's stonith line names its BMC (ipmi_sim on the host, over eth1).
# node-a holds web and writes; the host cuts every path between the VMs (eth0 isolated
# both ways, serial blocked; eth1 stays). a's DRBD freezes I/O and calls
# `tandem fence-peer`; a (the holder: no fence delay) powers b off through b's BMC, the
# handler returns 7 and I/O resumes: the writer goes on. b never becomes Primary (the host
# checks the roles throughout). Then the host heals the network and powers b on by its BMC
# (ipmitool); b resyncs as SyncTarget and joins; every acknowledged record is on a.
# expect a ipmi_start ipmi_fence ipmi_peer_back ipmi_verify
# expect b ipmi_start ipmi_rejoin
on_boot a:1 b:1 b:2 || return 0

ipmi_start() {
    use_conf ipmi
    tandem check-config || return 1
    tandem_up || return 1
    wait_secs 60 group_has web node-a started || { echo "web not started"; tandem status; return 1; }
    # each node's first device check of its peer's BMC
    wait_secs 30 eval 'tandem status | grep -q "power is on"' || { tandem status; return 1; }
    tandem status | grep -iE 'fenc|power'
    [ "$NODE" = b ] || wait_secs 30 web_here
}
ipmi_fence() {
    writer_start ipmi
    wait_secs 30 acks_past ipmi 20 || { echo "writer stuck"; return 1; }
    # the holder fences at once once the slots have settled (b's view of a settles within a
    # keepalive of a's own)
    wait_secs 30 slot_settled || { tandem status; return 1; }
    sleep 1
    mark=$(log_lines)
    host_req cut link; t0=$(up); note "cut asked at $(writer_acks ipmi) records"
    wait_secs 60 fenced || { echo "not fenced: $(fence_state)"; tandem status; return 1; }
    echo "peer fenced $(since $t0)s after the cut: $(tandem status | grep -i fenc | tr -s ' ' | tr '\n' ';')"
    n0=$(writer_acks ipmi); note "peer fenced, $n0 records"
    wait_secs 60 drbd_helper_said 7 || { echo "no handler 7:"; dmesg | grep -i fence | tail -5; return 1; }
    dmesg | grep -E 'fence-peer|helper command' | tail -4
    note "handler returned 7"
    wait_secs 30 acks_past ipmi $((n0 + 20)) || { echo "writes stuck at $n0: $(drbd_state)"; return 1; }
    echo "writes went on: $n0 -> $(writer_acks ipmi) records; $(drbd_state)"
    log_order_since $mark "peer node-b is dead: fencing it now" "fencing node-b: attempt 1" \
        "fenced node-b: ipmi 203.0.113.12:623: power off confirmed" || { tail -n +$mark $TLOG | tail -20; return 1; }
    tail -n +$((mark + 1)) $TLOG | grep -E 'dead|fenc|outdate' | cut -d' ' -f2- | head -12
    drbd_has ro:Primary/Unknown && drbd_has ds:UpToDate/Outdated && group_has web node-a started
}
# b is back: powered on by its BMC, resynced, its daemon up
ipmi_peer_back() {
    host_req heal
    host_req power b on
    recv b-rejoined 300 || { echo "b did not rejoin"; return 1; }
    wait_secs 30 peer_up && drbd_has ds:UpToDate/UpToDate && group_has web node-a started
}
ipmi_verify() {
    writer_stop ipmi
    echo "last ACK $(writer_acks ipmi)"
    writer_verify ipmi
}
ipmi_rejoin() {   # b's second boot
    rejoin_drbd || return 1
    use_conf ipmi
    tandem_up || return 1
    grep -E 'generation|peer node-a' $TLOG | tail -3
    group_has web node-a started && drbd_has ro:Secondary/Primary
}

if [ "$NODE" = a ]; then
    scenario ipmi_start ipmi_start
    recv b-started 120
    scenario ipmi_fence ipmi_fence
    scenario ipmi_peer_back ipmi_peer_back
    scenario ipmi_verify ipmi_verify
elif [ "$BOOT" = 1 ]; then
    scenario ipmi_start ipmi_start
    send b-started
    sleep 300    # powered off by a, through its BMC
    echo "RIG b still running 300 s after the start: never fenced"
else
    scenario ipmi_rejoin ipmi_rejoin
    send b-rejoined
fi
