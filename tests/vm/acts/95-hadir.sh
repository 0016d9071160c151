# boot: 1+
# tandem from heartbeat's /etc/ha.d, unchanged in kind: the file server's set of the
# heartbeat-compatibility fixtures (tests/fixtures/hacompat/serial-drbd: serial line,
# broadcast link, drbddisk, Filesystem, IPaddr, heartbeat's apache script, md5 authkeys),
# copied with only the node names (hn1, hn2 -> node-a, node-b), the broadcast link's
# interface (eth1 -> eth0, the VMs' only NIC) and the rig's timings (keepalive 250ms, deadtime
# 3, warntime 1500ms, initdead 10) changed, and `logfile` added (the VMs have no syslogd). Its
# `apache` is a script in /etc/ha.d/resource.d that runs the rig's httpd (www.sh) on the
# fixture's address 192.0.2.60 serving the fixture's mount point /srv/data. DRBD r0 runs with
# `fencing dont-care`, as on a heartbeat node without dopd: over heartbeat's protocol
# `tandem fence-peer` answers "failed", which DRBD would take as a reason not to promote.
#
# Runs after the crash and rejoin (acts 80-91): node-a in its second boot, node-b in its first,
# both daemons stopped. Both write /etc/ha.d, pass `tandem check-config --ha-d`, and start
# `tandem daemon` through the init script with CONFIG=/etc/ha.d in /etc/default/tandem.
# The group starts once, on node-a (its preferred node); `cl_status` and `tandem status` see
# the peer and both links up; `hb_standby` on node-a moves everything to node-b; node-b asks
# the host to kill it (HOST-REQ kill b) and node-a takes over; node-b boots again (its second
# boot runs this act's rejoin), resyncs r0 as SyncTarget, joins; both stop cleanly and the
# rig's own configuration is put back (/etc/ha.d removed).
# expect a hadir_ready hadir_config hadir_start hadir_status hadir_standby hadir_crash_takeover
# expect a hadir_peer_rejoined hadir_stop hadir_clean
# expect b hadir_ready hadir_config hadir_start hadir_status hadir_standby_data hadir_crash_ready
# expect b hadir_rejoin hadir_stop hadir_clean

HADIR_FIX=/rig/hacompat/serial-drbd
HAG=drbddisk::r0          # the group: named after its first resource, as heartbeat names it
HAIP=192.0.2.60           # the fixture's address
HAMNT=/srv/data           # the fixture's mount point
ha_svc() { svc_at $HAIP; }
ha_svc_is() { svc_at_is $HAIP "hadir $1"; }
ha_mounted() { grep -q " $HAMNT " /proc/mounts; }
ha_state() {
    echo "drbd: $(drbd_state)"
    echo "mounted=$(ha_mounted && echo yes || echo no) addr=$(has_addr $HAIP && echo yes || echo no) service=$(ha_svc)"
}
ha_held() { drbd_has ro:Primary/ && ha_mounted && has_addr $HAIP && ha_svc_is node-$NODE; }
ha_free() { drbd_has ro:Secondary/ && ! ha_mounted && ! has_addr $HAIP; }
# the number of times the group went to `started` here, in tandem's log after line $1
ha_starts() { tail -n +$(($1 + 1)) $TLOG | grep -c "group $HAG: .* -> started"; }
peer_of() { case $NODE in a) echo node-b ;; b) echo node-a ;; esac; }

# DRBD r0 with `fencing dont-care` (the rig's drbd.conf says resource-only): heartbeat's
# file server ran no dopd. drbdadm adjust applies it to the running resource.
HADRBD=/tmp/drbd.conf.rig
drbd_nofence() {
    [ -e $HADRBD ] || cp /etc/drbd.conf $HADRBD
    awk '{ print } /^resource r0 \{/ { print "    disk { fencing dont-care; }" }' $HADRBD > /etc/drbd.conf
}
drbd_fencing() { drbdsetup show r0 2>/dev/null | grep -o 'fencing[[:space:]]*[a-z-]*' | tr -s '[:space:]' ' '; }

# /etc/ha.d from the fixture (hn1 for node-a, hn2 for node-b)
hadir_write() {
    from=$HADIR_FIX/hn$(node_no $NODE)
    mkdir -p /etc/ha.d/resource.d $HAMNT /var/lib/heartbeat || return 1
    sed -e 's/hn1/node-a/g; s/hn2/node-b/g' -e 's/^\(bcast[[:space:]]*\)eth1/\1eth0/' \
        -e 's/^keepalive .*/keepalive 250ms/; s/^deadtime .*/deadtime 3/' \
        -e 's/^warntime .*/warntime 1500ms/; s/^initdead .*/initdead 10/' $from/ha.cf > /etc/ha.d/ha.cf
    echo "logfile /var/log/tandem.log" >> /etc/ha.d/ha.cf
    sed -e 's/hn1/node-a/g; s/hn2/node-b/g' $from/haresources > /etc/ha.d/haresources
    cp $from/authkeys /etc/ha.d/authkeys && chmod 600 /etc/ha.d/authkeys
    # heartbeat's apache script, as the rig has it: `apache CONFIG start|stop|status`,
    # status printed (running / stopped) as heartbeat's scripts print it
    cat > /etc/ha.d/resource.d/apache <<'EOF'
#!/bin/sh
op=$1; [ $# -lt 2 ] || op=$2
www() { /etc/tandem/www.sh hadir 192.0.2.60 /srv/data "$1"; }
case $op in
status) if www status; then echo running; else echo stopped; fi ;;
*) www "$op" ;;
esac
EOF
    chmod 755 /etc/ha.d/resource.d/apache
    printf 'TANDEM=/usr/sbin/tandem\nCONFIG=/etc/ha.d\n' > /etc/default/tandem
    echo "--- ha.cf"; grep -v '^#' /etc/ha.d/ha.cf
    echo "--- haresources"; grep -v '^#' /etc/ha.d/haresources
    echo "--- changed from the fixture:"
    diff -u $from/ha.cf /etc/ha.d/ha.cf | grep '^[-+][^-+]'
    diff -u $from/haresources /etc/ha.d/haresources | grep '^[-+][^-+]'
    cmp -s $from/authkeys /etc/ha.d/authkeys && echo "authkeys: the fixture's ($(sed -n 2p $from/authkeys | cut -d' ' -f2))"
}

# The rig's own daemon is stopped on both nodes and r0 is free: Secondary, connected, clean.
hadir_ready() {
    /etc/init.d/tandem status >/dev/null 2>&1; rc=$?
    echo "init script status: $rc; $(drbd_state)"
    [ $rc = 3 ] && drbd_has cs:Connected && drbd_has ro:Secondary/Secondary && drbd_has ds:UpToDate/UpToDate &&
        ! mounted && ! ha_mounted && ! has_vip && ! has_addr $HAIP
}

hadir_config() {
    drbd_nofence || return 1
    drbdadm adjust r0 || { echo "drbdadm adjust failed"; return 1; }
    f=$(drbd_fencing); echo "r0: ${f:-fencing dont-care (the default: not shown)}"
    ! echo "$f" | grep -q resource-only || { echo "r0 still fences"; return 1; }
    hadir_write || return 1
    out=$(tandem check-config --ha-d /etc/ha.d 2>&1); rc=$?
    echo "$out"
    [ $rc = 0 ] && echo "$out" | grep -q "^/etc/ha.d: OK: cluster linux-ha, node node-$NODE (peer $(peer_of)), 2 links, 1 group, 4 resources"
}

hadir_start() {
    mark=$(log_lines); echo $mark > /tmp/hadir.mark
    /etc/init.d/tandem start || { echo "init script failed"; return 1; }
    wait_until 60 peer_up || { echo "peer not up"; tandem status; return 1; }
    wait_until 90 group_has $HAG node-a started || { echo "group not started on node-a"; tandem status; return 1; }
    ok=0
    if [ $NODE = a ]; then
        wait_until 30 ha_held || ok=1
    else
        ha_free || ok=1
    fi
    ha_state
    tandem status | sed -n '1,/^recent/p'
    n=$(ha_starts $mark); echo "started here $n time(s)"
    case $NODE in a) [ "$n" = 1 ] || ok=1 ;; b) [ "$n" = 0 ] || ok=1 ;; esac
    [ $ok = 0 ]
}

# heartbeat's cl_status and tandem's status: the peer active, both links (serial, bcast) up
hadir_status() {
    p=$(peer_of); ok=0
    cl_status hbstatus || ok=1
    st=$(cl_status nodestatus $p); echo "cl_status nodestatus $p: $st"; [ "$st" = active ] || ok=1
    echo "cl_status listhblinks $p: $(cl_status listhblinks $p | tr '\n' ' ')"
    for l in /dev/ttyS1 eth0; do
        st=$(cl_status hblinkstatus $p $l); echo "cl_status hblinkstatus $p $l: $st"; [ "$st" = up ] || ok=1
    done
    s=$(tandem status); echo "$s" | sed -n '1,/^this node/p'
    echo "$s" | grep -q "^peer $p: active" || ok=1
    [ "$(echo "$s" | grep -c '^  link .*: up;')" = 2 ] || ok=1
    echo "$s" | grep -q '^  link .*ttyS1.*: up;' || ok=1
    [ $ok = 0 ]
}

# on the holder (a): a file, then `hb_standby`; the service comes back from b
hadir_standby() {
    dd if=/dev/urandom of=$HAMNT/hadir.bin bs=1M count=2 2>/dev/null || return 1
    sync
    md5sum $HAMNT/hadir.bin | cut -d' ' -f1 > /tmp/hadir.md5; echo "wrote hadir.bin md5 $(cat /tmp/hadir.md5)"
    t0=$(up)
    hb_standby || { echo "hb_standby failed"; return 1; }
    wait_until 120 ha_svc_is node-b || { echo "the service did not come back from node-b"; ha_state; return 1; }
    echo "takeover=$(since $t0)"
    wait_until 30 ha_free; ok=$?
    ha_state
    [ $ok = 0 ] && group_has $HAG node-b started
}
hadir_standby_data() {   # on b: the group, the file
    want=$(cut -d' ' -f2 /tmp/msg)
    wait_until 60 group_has $HAG node-b started && wait_until 30 ha_held; ok=$?
    ha_state
    got=$(md5sum $HAMNT/hadir.bin 2>/dev/null | cut -d' ' -f1); echo "md5 here $got, on node-a $want"
    [ $ok = 0 ] && [ -n "$want" ] && [ "$got" = "$want" ] && drbd_has ro:Primary/Secondary
}

# b, the holder, writes a file and asks the host to kill it
hadir_crash_ready() {
    echo "written on node-b" > $HAMNT/onb.txt && sync || return 1
    ha_state
    ha_held
}
# a: the peer is killed while holding the group: a takes it over (deadtime 3 s)
hadir_crash_takeover() {
    t0=$(up)
    wait_until 60 ha_svc_is node-a || { echo "no takeover"; ha_state; tandem status; return 1; }
    echo "takeover=$(since $t0)"
    ha_state
    tail -n +$(($(cat /tmp/hadir.mark) + 1)) $TLOG | grep -E "peer node-b|group $HAG" | tail -6 | cut -d' ' -f3-
    got=$(md5sum $HAMNT/hadir.bin | cut -d' ' -f1); echo "hadir.bin md5 $got (written $(cat /tmp/hadir.md5))"
    echo "onb.txt: $(cat $HAMNT/onb.txt)"
    st=$(cl_status nodestatus node-b); echo "cl_status nodestatus node-b: $st"
    ha_held && [ "$got" = "$(cat /tmp/hadir.md5)" ] && [ "$(cat $HAMNT/onb.txt)" = "written on node-b" ] &&
        [ "$st" = dead ] && group_has $HAG node-a started
}

# b's second boot: r0 comes up on the same disk and resyncs from a (b died as Primary: no
# split brain), the daemon joins from /etc/ha.d and holds nothing (auto_failback off)
hadir_rejoin() {
    drbd_nofence || return 1
    drbdadm up r0 || return 1
    wait_until 120 drbd_has cs:Connected || { echo "not Connected: $(drbd_state)"; return 1; }
    wait_until 120 drbd_has ds:UpToDate/UpToDate || { echo "no resync: $(drbd_state)"; return 1; }
    drbd_state; echo "r0: $(drbd_fencing)"
    dmesg | grep -iE 'split.brain|SyncTarget|Resync done' | tail -4
    ! dmesg | grep -qi 'split-brain' || return 1
    hadir_write >/dev/null || return 1
    tandem check-config --ha-d /etc/ha.d >/dev/null || { tandem check-config --ha-d /etc/ha.d; return 1; }
    log_lines > /tmp/hadir.mark
    /etc/init.d/tandem start || return 1
    wait_until 60 peer_up || { echo "peer not up"; tandem status; return 1; }
    wait_until 30 group_has $HAG node-a started || { tandem status; return 1; }
    sleep 2   # auto_failback off: nothing comes back here
    ha_state
    ha_free && group_has $HAG node-a started && [ "$(ha_starts $(cat /tmp/hadir.mark))" = 0 ]
}
hadir_peer_rejoined() {
    wait_until 30 peer_up; ok=$?
    st=$(cl_status nodestatus node-b); echo "cl_status nodestatus node-b: $st"
    ha_state
    [ $ok = 0 ] && [ "$st" = active ] && ha_held && drbd_has ds:UpToDate/UpToDate && group_has $HAG node-a started
}

# the init script stops the daemon; nothing of the group is left here
hadir_stop() {
    /etc/init.d/tandem stop || return 1
    ha_state
    ! /etc/init.d/tandem status >/dev/null && wait_until 30 ha_free
}
# the rig's own configuration back: no /etc/ha.d, /etc/default/tandem and r0's fencing as
# they were (the peer may have finished and powered off already: r0 need not be connected)
hadir_clean() {
    rm -rf /etc/ha.d
    printf 'TANDEM=/usr/sbin/tandem\nCONFIG=/etc/tandem/tandem.conf\n' > /etc/default/tandem
    cp $HADRBD /etc/drbd.conf && drbdadm adjust r0 || return 1
    echo "r0: $(drbd_fencing); $(drbd_state)"
    ha_state
    [ ! -e /etc/ha.d ] && drbd_fencing | grep -q resource-only && ha_free && ! pidof tandem >/dev/null
}

case $NODE$BOOT in
a2)
    send hadir
    scenario hadir_ready hadir_ready
    scenario hadir_config hadir_config
    recv b-configured 120
    send go
    scenario hadir_start hadir_start
    scenario hadir_status hadir_status
    recv b-status 120
    scenario hadir_standby hadir_standby
    send "standby $(cat /tmp/hadir.md5)"
    recv crash 120
    scenario hadir_crash_takeover hadir_crash_takeover
    host_req boot b
    recv b-rejoined 300
    scenario hadir_peer_rejoined hadir_peer_rejoined
    send a-checked
    recv b-stopped 120
    scenario hadir_stop hadir_stop
    scenario hadir_clean hadir_clean
    ;;
b1)
    recv hadir 300
    scenario hadir_ready hadir_ready
    scenario hadir_config hadir_config
    send b-configured
    recv go 120
    scenario hadir_start hadir_start
    scenario hadir_status hadir_status
    send b-status
    recv_any 120 >/dev/null
    scenario hadir_standby_data hadir_standby_data
    scenario hadir_crash_ready hadir_crash_ready
    send crash
    host_req kill b
    sleep 600     # killed by the host before this returns
    ;;
b2)
    MINORS=0
    scenario hadir_rejoin hadir_rejoin
    send b-rejoined
    recv a-checked 120
    scenario hadir_stop hadir_stop
    send b-stopped
    scenario hadir_clean hadir_clean
    ;;
esac
