# Set-up of DRBD r1 and r2 (drbd-utils; not under test): both disks are new and zero, so
# the initial sync is skipped (new-current-uuid --clear-bitmap). On node a: the volume group
# vgrig on /dev/drbd1 (pvcreate, vgcreate, one LV lv0 with ext4), and the guest's root on
# ext4 on /dev/drbd2, built from the initramfs's busybox and /rig/guest. Then the lvm agent
# by hand against real LVM (vgchange, device-mapper): status from sysfs, start, stop; the
# peer (Secondary) sees no LV.
# expect a setup_r1_r2 lvm_setup guest_root lvm_by_hand
# expect b setup_r1_r2 lvm_invisible_on_secondary

setup_more() {
    for r in r1 r2; do
        drbdadm create-md $r </dev/null >/dev/null 2>&1 || { echo "create-md $r"; return 1; }
        drbdadm up $r || return 1
    done
    for r in r1 r2; do
        wait_for 120 is cstate Connected $r || { echo "$r not Connected: $(cat /proc/drbd)"; return 1; }
    done
    if [ "$NODE" = a ]; then
        for r in r1 r2; do drbdadm -- --clear-bitmap new-current-uuid $r || return 1; done
    fi
    for r in r1 r2; do
        wait_for 60 is dstate UpToDate/UpToDate $r || { echo "$r not UpToDate: $(cat /proc/drbd)"; return 1; }
    done
    MINORS="0 1 2"
    cat /proc/drbd
}

lvm_setup() {
    drbdadm primary r1 || return 1
    lvm pvcreate -q -y -ff /dev/drbd1 && lvm vgcreate -q $VG /dev/drbd1 &&
        lvm lvcreate -q -y -n lv0 -l 100%FREE $VG || { drbdadm secondary r1; return 1; }
    lvm_state
    /sbin/mke2fs -q -t ext4 /dev/$VG/lv0 || return 1
    lvm vgchange -q -a n $VG || return 1
    drbdadm secondary r1 || return 1
    lvm_state
    lv_gone
}

guest_root() {
    drbdadm primary r2 || return 1
    /sbin/mke2fs -q -t ext4 /dev/drbd2 || return 1
    mkdir -p /box && mount -t ext4 /dev/drbd2 /box || return 1
    chmod 700 /box     # the guest root's parent stays private
    R=/box/root
    mkdir -p $R/bin $R/sbin $R/etc $R/var/log $R/www $R/root $R/proc $R/sys $R/dev $R/run $R/tmp
    cp /bin/busybox $R/bin/busybox && /bin/busybox --install -s $R/bin && ln -s /bin/busybox $R/sbin/init
    cp -a /rig/guest/etc/. $R/etc/ || return 1
    ls $R $R/etc; du -sh $R
    umount /box && drbdadm secondary r2
}

lvm_by_hand() {
    agent drbd::r1 start >/dev/null || return 1
    agent lvm::$VG status; rc0=$?
    out=$(agent lvm::$VG start); rc1=$?; echo "start: $rc1 $out"
    lvm_state
    agent lvm::$VG status; rc2=$?
    lv_active || { echo "not active"; return 1; }
    send lvm-active; recv b-checked 60
    out=$(agent lvm::$VG stop); rc3=$?; echo "stop: $rc3 $out"
    agent lvm::$VG status; rc4=$?
    lvm_state
    lv_gone || { echo "still active"; return 1; }
    agent drbd::r1 stop >/dev/null || return 1
    echo "status before/after start/after stop: $rc0 $rc2 $rc4"
    [ $rc0 = 3 ] && [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ $rc3 = 0 ] && [ $rc4 = 3 ]
}

# The peer's view while a has the LV active: DRBD r1 Secondary cannot be opened, so LVM
# finds no volume group, and there is no device-mapper device.
lvm_invisible_on_secondary() {
    recv lvm-active 120 || return 1
    lvm_state
    out=$(lvm lvs --noheadings -o lv_name $VG 2>&1)
    send b-checked
    drbd_has ro:Secondary/Primary 1 && lv_gone && ! echo "$out" | grep -q lv0
}

scenario setup_r1_r2 setup_more
MINORS="0 1 2"
if [ "$NODE" = a ]; then
    scenario lvm_setup lvm_setup
    scenario guest_root guest_root
    scenario lvm_by_hand lvm_by_hand
else
    scenario lvm_invisible_on_secondary lvm_invisible_on_secondary
fi
