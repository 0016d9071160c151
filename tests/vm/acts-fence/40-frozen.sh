# boot: 1+
# Case 4, a frozen daemon: node-a holds web and writes; its tandem gets SIGSTOP (the kernel,
# DRBD and the writer go on). It no longer pets its watchdog: the i6300esb resets it within
# the period (the host sees QMP's WATCHDOG event and QEMU ending). node-b declares it dead
# after deadtime but takes over only once the period has passed (TIMEOUT + deadtime +
# 2 x keepalive after a's last heartbeat) and web's address stopped answering (probed by
# echo): the host checks the order. Every record a acknowledged is on b. Then b asks the
# host to boot a again: a resyncs, joins and takes web back (act 50).
# expect a frozen_writer
# expect b frozen_takeover frozen_back
on_boot a:1 b:2 || return 0

frozen_writer() {
    wait_secs 30 web_here || return 1
    writer_start frozen
    wait_secs 30 acks_past frozen 20 || { echo "writer stuck"; return 1; }
    sed "s/^/TLOG $NODE /" $TLOG > /dev/console   # a's log, before it is lost
}
# b: the takeover, then the records a acknowledged
frozen_takeover() {
    mark=$(log_lines); t0=$(up)
    wait_secs 90 svc_is node-b || { echo "no takeover"; tandem status; local_state; return 1; }
    echo "TAKEOVER-DONE frozen" > /dev/console
    echo "web answered from b $(since $t0)s after a's freeze was announced"
    tail -n +$((mark + 1)) $TLOG | grep -E 'dead|fenc|watchdog|web' | cut -d' ' -f2- | head -12
    log_order_since $mark "peer node-a: up -> dead" "fenced node-a: its watchdog period has passed" \
        "group web: drbd::r0 started" || return 1
    dmesg | grep -E 'fence-peer helper returned' | tail -2
    writer_verify frozen
}

if [ "$NODE" = a ]; then
    scenario frozen_writer frozen_writer
    send freezing
    echo "WD-CUT frozen" > /dev/console
    kill -STOP "$(cat /run/tandem/tandem.pid)"
    sleep 60     # reset by the watchdog before this returns
    kill -CONT "$(cat /run/tandem/tandem.pid)"
    echo "RIG a frozen 60 s and not reset"
else
    recv freezing 120
    scenario frozen_takeover frozen_takeover
    host_req boot a
    recv a-rejoined 300
    scenario frozen_back back_on_a
fi
