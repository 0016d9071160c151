# boot: 1+
# Case 6, a clean stop: `/etc/init.d/tandem stop` on node-a stops web and disarms the
# watchdog (magic close, after every group is stopped); b takes web over. a is not reset in
# the next 2 x TIMEOUT (nor later: the host checks for WATCHDOG events after the stop).
# Then b stops the same way and both power off.
# expect a clean_stop clean_stop_not_reset
# expect b clean_stop_takeover clean_stop
on_boot a:3 b:2 || return 0

clean_stop() {
    echo "WD-CLEAN-STOP $NODE" > /dev/console
    mark=$(log_lines)
    /etc/init.d/tandem stop || return 1
    tail -n +$((mark + 1)) $TLOG | grep -E 'watchdog|stop|exit' | cut -d' ' -f2- | tail -6
    tail -n +$((mark + 1)) $TLOG | grep -q 'watchdog /dev/watchdog disarmed' || return 1
    ! has_vip && ! mounted && drbd_has ro:Secondary/
}
not_reset() { t0=$(up); sleep $((2 * WD_T + 2)); echo "still up $(since $t0)s after the stop"; }

if [ "$NODE" = a ]; then
    wait_secs 30 web_here
    scenario clean_stop clean_stop
    send a-stopped
    scenario clean_stop_not_reset not_reset
    send a-done
else
    recv a-stopped 120
    scenario clean_stop_takeover eval 'wait_secs 60 web_here'
    recv a-done 120
    scenario clean_stop clean_stop
    sleep $((2 * WD_T + 2))
fi
