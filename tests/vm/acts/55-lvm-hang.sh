# A vgchange that hangs: node-a's daemon is restarted with a PATH whose first vgchange
# sleeps on activation (/rig/hang/vgchange; deactivation is the real one) and with
# start_timeout 8s; `tandem takeover vol` brings the group to a, its vgchange is killed at
# the deadline, the group fails cleanly on a (nothing of it left there, no process left)
# and goes back to b. Then a's daemon is restarted as before.
# expect a lvm_start_hangs tandem_restart
# expect b lvm_hang_peer

hang_procs() { ps w | grep -E '[s]leep 600|/rig/hang/[v]gchange'; }
lvm_start_hangs() {
    /etc/init.d/tandem stop >/dev/null || { echo "init script stop failed"; return 1; }
    { cat /etc/tandem/tandem.conf; echo "start_timeout 8s"; } > /etc/tandem/hang.conf
    chmod 600 /etc/tandem/hang.conf
    PATH=/rig/hang:$PATH TANDEM_CONFIG=/etc/tandem/hang.conf /etc/init.d/tandem start >/dev/null || return 1
    wait_until 30 peer_up || { echo "peer not up"; return 1; }
    mark=$(log_lines); t0=$(up)
    tandem takeover vol || { echo "takeover refused"; return 1; }
    wait_until 60 log_order_since $mark "group vol: start lvm::$VG" \
        "group vol: start lvm::$VG failed: timed out after 8"; ok=$?
    echo "failed after $(since $t0)s"
    wait_until 60 group_has vol node-b started || { echo "vol not back on b"; ok=1; }
    wait_until 30 lvm_released || ok=1
    tail -n +$((mark + 1)) $TLOG | grep 'group vol' | cut -d' ' -f3- | sed 's/^/  log: /'
    tandem status | grep -i vol
    lvm_state
    if hang_procs; then echo "a hanging process is left"; ok=1; fi
    log_order_since $mark "group vol: start lvm::$VG failed" "group vol: stop drbd::r1" \
        "group vol: stop ip::192.0.2.101" || { echo "not stopped in order"; ok=1; }
    [ $ok = 0 ]
}
tandem_restart() {    # back to the usual PATH and configuration
    /etc/init.d/tandem stop >/dev/null || return 1
    /etc/init.d/tandem start >/dev/null || return 1
    wait_until 30 peer_up || { echo "peer not up"; return 1; }
    tandem status
}
# b gave the group (an orderly takeover by a) and got it back after a's failure.
lvm_hang_peer() {
    wait_until 30 lvm_held; ok=$?
    lvm_state
    grep 'group vol' $TLOG | tail -n 12 | cut -d' ' -f3- | sed 's/^/  log: /'
    [ $ok = 0 ] && group_has vol node-b started
}

if [ "$NODE" = a ]; then
    scenario lvm_start_hangs lvm_start_hangs
    scenario tandem_restart tandem_restart
    send hang-done
    recv b-checked
else
    recv hang-done 300
    scenario lvm_hang_peer lvm_hang_peer
    send b-checked
fi
