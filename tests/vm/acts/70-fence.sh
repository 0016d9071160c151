# DRBD's fence-peer handler: node-b's network is cut (DRBD and UDP; the serial link
# stays). a is Primary of r0, r1 and r2: its kernel calls `/sbin/tandem fence-peer` for
# each, which reaches b's daemon over the serial line, and b outdates all three disks at
# once. Then `tandem fence-peer r0` by hand on a exits 4 (already outdated); the network
# comes back and DRBD resyncs; connected, the handler answers 1 (alive, not outdated).
# expect a fence_handler fence_by_hand fence_resync fence_refused
# expect b fence_outdated fence_resync

fence_handler() {   # on the primary (a)
    t0=$(up)
    wait_until 60 drbd_all ds:UpToDate/Outdated || { echo "peer disks not marked Outdated: $(cat /proc/drbd)"; dmesg | grep -i fence | tail -5; return 1; }
    echo "peer Outdated after $(since $t0)s:"; for m in $MINORS; do minor_state $m; done
    dmesg | grep -iE 'fence-peer|helper' | tail -6
    peer_up && status_has node-a started || { echo "cluster view changed"; tandem status; return 1; }
}
fence_by_hand() {
    sleep 3   # past the 3 s in which the peer repeats its last answer for r0
    out=$(tandem fence-peer r0 2>&1); rc=$?
    echo "tandem fence-peer r0: exit $rc: $out"
    [ $rc = 4 ]
}
answered_twice() { [ "$(grep -c 'outdate DRBD resource r0: answered 4' $TLOG)" -ge 2 ]; }
fence_outdated() {  # on the secondary (b)
    ip link set eth0 down; t0=$(up)
    wait_until 60 drbd_all ds:Outdated/DUnknown || { echo "disks not Outdated: $(cat /proc/drbd)"; ip link set eth0 up; return 1; }
    echo "own disks Outdated after $(since $t0)s:"; for m in $MINORS; do minor_state $m; done
    # the handler's requests (one per resource), then the one by hand, all answered 4
    wait_until 60 answered_twice; ok=$?
    grep 'outdate DRBD resource' $TLOG | tail -4
    grep 'OUTDATE.*state change' $TLOG | tail -3          # our netlink OUTDATE did it
    ip link set eth0 up
    for r in r1 r2; do grep -q "outdate DRBD resource $r: answered 4" $TLOG || { echo "$r not answered 4"; ok=1; }; done
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
    wait_until 120 drbd_all ds:UpToDate/UpToDate || { echo "no resync: $(cat /proc/drbd)"; return 1; }
    wait_until 30 peer_up || return 1
    for m in $MINORS; do minor_state $m; done
}

if [ "$NODE" = a ]; then
    send fence
    scenario fence_handler fence_handler
    scenario fence_by_hand fence_by_hand
    scenario fence_resync resynced
    recv b-resynced 200
    scenario fence_refused fence_refused
else
    recv fence
    scenario fence_outdated fence_outdated
    scenario fence_resync resynced
    send b-resynced
fi
