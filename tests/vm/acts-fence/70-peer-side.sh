# boot: 1+
# Case 5 again, the target on the holder's side: the host takes node-b's eth0 off the bridge
# and blocks the serial line. b (holding nothing) reaches no target: it is isolated, never
# takes over, and keeps petting its watchdog (it has nothing to give up: not reset). a
# reaches the target: its DRBD froze I/O at the cut and called the handler; a counts b
# fenced once b's watchdog period has passed and b's addresses are silent, the handler
# returns 7, I/O resumes and the writer goes on. Healed, b resyncs from a.
# expect a peer_side_holder_keeps peer_side_healed
# expect b peer_side_stays_secondary
on_boot a:3 b:2 || return 0

peer_side_holder_keeps() {
    wait_secs 30 web_here || return 1
    writer_start kept
    wait_secs 30 acks_past kept 20 || { echo "writer stuck"; return 1; }
    mark=$(log_lines); dm=$(dmesg | wc -l)
    send cutting
    host_req cut b; t0=$(up)
    n0=$(writer_acks kept)
    wait_secs 60 fenced || { echo "b not counted fenced: $(fence_state)"; tandem status; return 1; }
    echo "b counted fenced $(since $t0)s after the cut; writes were at $n0"
    wait_secs 60 drbd_helper_said 7 || { echo "no handler 7:"; dmesg | tail -n +$dm | grep -i fence; tandem status; return 1; }
    wait_secs 30 acks_past kept $((n0 + 20)) || { echo "writes stuck at $(writer_acks kept): $(drbd_state)"; return 1; }
    echo "writes went on: $n0 -> $(writer_acks kept); $(drbd_state)"
    tail -n +$((mark + 1)) $TLOG | grep -E 'dead|fenc|watchdog|ping|isolat' | cut -d' ' -f2- | head -12
    web_here && group_has web node-a started
}
peer_side_healed() {
    host_req heal
    wait_secs 60 peer_up || { echo "b not heard again"; return 1; }
    wait_secs 120 drbd_has ds:UpToDate/UpToDate || { echo "no resync: $(drbd_state)"; return 1; }
    writer_stop kept
    echo "last ACK $(writer_acks kept)"
    writer_verify kept || return 1
    send a-kept
    web_here
}
# b, cut off: isolated, stays Secondary and keeps running (the host checks that its
# watchdog never fired) for the period and well beyond, then resyncs from a
peer_side_stays_secondary() {
    mark=$(log_lines)
    recv a-kept 180 || { echo "no word from a"; return 1; }
    tail -n +$((mark + 1)) $TLOG | grep -E 'dead|fenc|watchdog|ping|isolat|web' | cut -d' ' -f2- | head -12
    grep -q 'no ping target answers: this node is cut off' $TLOG || { echo "never isolated"; return 1; }
    if tail -n +$((mark + 1)) $TLOG | grep -E 'group web: start|fenced node-a|not petting'; then
        echo "b started web, fenced a or stopped petting"; return 1
    fi
    wait_secs 60 eval 'drbd_has ds:UpToDate/UpToDate && drbd_has ro:Secondary/Primary && group_has web node-a started' ||
        { echo "after the heal: $(drbd_state)"; tandem status; return 1; }
}

if [ "$NODE" = a ]; then
    scenario peer_side_holder_keeps peer_side_holder_keeps
    scenario peer_side_healed peer_side_healed
    recv b-checked 120   # (a clean stop next would move web to b under b's checks)
else
    recv cutting 120
    scenario peer_side_stays_secondary peer_side_stays_secondary
    send b-checked
fi
