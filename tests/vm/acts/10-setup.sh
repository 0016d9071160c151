# Set-up of DRBD r0 with drbd-utils (not under test): create-md, up, the initial full sync
# from a, mkfs.
# expect a setup
# expect b setup

setup_drbd() {
    drbdadm create-md r0 </dev/null >/dev/null 2>&1 || return 1
    drbdadm up r0 || return 1
    wait_for 120 is cstate Connected || { echo "not Connected: $(cat /proc/drbd)"; return 1; }
    if [ "$NODE" = a ]; then     # initial full sync from a, then a mkfs (set-up only)
        drbdadm primary --force r0 || return 1
        wait_for 300 is dstate UpToDate/UpToDate || { echo "no initial sync"; return 1; }
        /sbin/mke2fs -q -t ext4 /dev/drbd0 || return 1
        drbdadm secondary r0 || return 1
    fi
    wait_for 300 is dstate UpToDate/UpToDate || { echo "not UpToDate"; return 1; }
    echo "$(drbdadm role r0) $(drbdadm dstate r0) $(drbdadm cstate r0)"
}

scenario setup setup_drbd
