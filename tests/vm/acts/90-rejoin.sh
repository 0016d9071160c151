# After the crash, node-b asks the host to power node-a on again (HOST-REQ boot a: same
# disks); a's second boot runs 91-rejoin.sh. b sees a rejoin (DRBD reconnects, a resyncs
# as SyncTarget, its daemon joins; the groups stay on b: auto_failback off), then stops
# its daemon with the init script: b releases its groups and a takes them.
# expect b rejoin_peer_view tandem_stop stopped_clean
[ "$NODE" = b ] || return 0

rejoin_peer_view() {
    wait_until 60 drbd_all cs:Connected && wait_until 60 drbd_all ds:UpToDate/UpToDate; ok=$?
    for m in $MINORS; do minor_state $m; done
    tandem status
    [ $ok = 0 ] && peer_up && group_has web node-b started && group_has vol node-b started &&
        group_has box node-b started && drbd_all ro:Primary/Secondary
}

host_req boot a
recv a-rejoined 300
scenario rejoin_peer_view rejoin_peer_view
scenario tandem_stop tandem_stop
scenario stopped_clean stopped_clean
send b-stopped
