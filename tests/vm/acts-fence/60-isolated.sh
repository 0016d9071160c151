# boot: 1+
# Case 5, a partition with both nodes alive, the target on the non-holder's side: the host
# takes node-a's eth0 off the bridge and blocks the serial line, so a reaches neither b nor
# the target 192.0.2.254. a (the holder) finds no target answering: it stops petting its
# watchdog and is reset. b reaches the target: it takes over once a's watchdog period has
# passed (and web's address is silent). Every record a acknowledged is on b (a's DRBD froze
# I/O at the cut: resource-and-stonith, and a's handler never gets a fence). Then the host
# heals the network and boots a again (act 45 at boot 3).
# expect a isolated_writer
# expect b isolated_takeover isolated_back
on_boot a:2 b:2 || return 0

isolated_writer() {
    wait_secs 30 web_here || return 1
    writer_start isolated
    wait_secs 30 acks_past isolated 20 || { echo "writer stuck"; return 1; }
}
isolated_takeover() {
    mark=$(log_lines); t0=$(up)
    wait_secs 90 svc_is node-b || { echo "no takeover"; tandem status; local_state; return 1; }
    echo "TAKEOVER-DONE isolated" > /dev/console
    echo "web answered from b $(since $t0)s after the cut was announced"
    tail -n +$((mark + 1)) $TLOG | grep -E 'dead|fenc|watchdog|web|ping' | cut -d' ' -f2- | head -12
    log_order_since $mark "peer node-a: up -> dead" "fenced node-a: its watchdog period has passed" \
        "group web: drbd::r0 started" || return 1
    writer_verify isolated
}

if [ "$NODE" = a ]; then
    scenario isolated_writer isolated_writer
    send cutting
    echo "WD-CUT isolated" > /dev/console
    host_req cut a
    sleep 60     # reset by the watchdog before this returns
    echo "RIG a isolated 60 s and not reset"
    tail -20 $TLOG
else
    recv cutting 120
    scenario isolated_takeover isolated_takeover
    host_req heal
    host_req boot a
    recv a-rejoined 300
    scenario isolated_back back_on_a
fi
