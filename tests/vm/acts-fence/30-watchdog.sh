# boot: 1+
# Watchdog self-fencing from here on: both daemons stop (b first, so nothing moves), the
# configuration becomes `watchdog /dev/watchdog 5s`, `stonith node-X watchdog` and a ping
# target (192.0.2.254, on the cluster LAN), and both start again: each opens and arms its
# i6300esb; web starts on node-a.
# expect a wd_start
# expect b wd_start
on_boot a:1 b:2 || return 0

wd_start() {
    use_conf watchdog
    tandem check-config || return 1
    tandem_up || return 1
    grep 'watchdog /dev/watchdog armed' $TLOG || { echo "watchdog not armed"; return 1; }
    wait_secs 60 eval 'group_has web node-a started || group_has web node-b started' ||
        { echo "web not started"; tandem status; return 1; }
    # b may have started it: its daemon can read a's last heartbeats (a leaving, web
    # stopped) from the serial line's buffer after a's restart, and take web as a hand-over
    if [ "$NODE" = a ] && ! group_has web node-a started; then
        echo "web started on b: taking it"
        tandem takeover web || return 1
    fi
    wait_secs 60 group_has web node-a started || { echo "web not on a"; tandem status; return 1; }
    [ "$NODE" = b ] || wait_secs 30 web_here || return 1
    tandem status | grep -iE 'watchdog|ping|192.0.2.254|fenc'
}
if [ "$NODE" = a ]; then
    recv b-stopped 120 || return 0
    /etc/init.d/tandem stop >/dev/null
    send a-stopped
    scenario wd_start wd_start
else
    /etc/init.d/tandem stop >/dev/null
    send b-stopped
    recv a-stopped 120
    scenario wd_start wd_start
fi
