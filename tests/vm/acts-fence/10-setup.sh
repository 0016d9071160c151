# boot: 1+
# DRBD r0 (drbd-utils; not under test): both disks are new and zero, so the initial sync is
# skipped (new-current-uuid --clear-bitmap); an ext4 on it, made on node-a.
# expect a fence_setup
# expect b fence_setup
on_boot a:1 b:1 || return 0

fence_setup() {
    drbdadm create-md r0 </dev/null >/dev/null 2>&1 || return 1
    drbdadm up r0 || return 1
    wait_for 120 is cstate Connected || { echo "not Connected: $(cat /proc/drbd)"; return 1; }
    if [ "$NODE" = a ]; then
        drbdadm -- --clear-bitmap new-current-uuid r0 || return 1
        wait_for 60 is dstate UpToDate/UpToDate || { echo "not UpToDate: $(cat /proc/drbd)"; return 1; }
        drbdadm primary r0 && /sbin/mke2fs -q -t ext4 /dev/drbd0 && drbdadm secondary r0 || return 1
    fi
    wait_for 60 is dstate UpToDate/UpToDate || { echo "not UpToDate: $(cat /proc/drbd)"; return 1; }
    ls -l /dev/watchdog || return 1
    cat /proc/drbd
}
scenario fence_setup fence_setup
