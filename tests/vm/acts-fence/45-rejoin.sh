# boot: 1+
# node-a after a watchdog reset (boots 2 and 3): DRBD resyncs from b (a becomes SyncTarget,
# no split brain), the daemon joins with the watchdog configuration, and a takes web back
# (`tandem takeover web`: b stops it first) for the next case.
# expect a wd_rejoin_2 wd_rejoin_3
on_boot a:2 a:3 || return 0

wd_rejoin() {
    rejoin_drbd || return 1
    use_conf watchdog
    tandem_up || return 1
    group_has web node-b started || { echo "web not on b"; tandem status; return 1; }
    tandem takeover web || return 1
    wait_secs 60 web_here || { tandem status; local_state; return 1; }
    grep 'watchdog /dev/watchdog armed' $TLOG
}
scenario wd_rejoin_$BOOT wd_rejoin
send a-rejoined
