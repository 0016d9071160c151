# quick: skip
# Part 1: tandem's drbd and mount agents by hand (`tandem agent`) against the real module.
# expect a probe_encodings status_secondary promote mount_evicts_holders demote_refused_while_mounted demote
# expect a bad_resource bad_device module_not_loaded drbd_up_again
# expect b probe_encodings status_secondary never_two_primaries promote_after_peer_demoted read_back_on_peer demote
# expect b bad_resource bad_device module_not_loaded drbd_up_again

# Our byte layout (ctx_resource_name with and without DRBD_GENLA_F_MANDATORY) is accepted.
probe_encodings() { /bin/drbd_probe r0; }

status_secondary() {  # Secondary: status exits 3 (not running)
    agent drbd::r0 status; rc=$?
    r=$(drbdadm role r0)     # the peer may already have been promoted: check ours only
    [ $rc = 3 ] && [ "${r%%/*}" = Secondary ]
}

promote() {
    agent drbd::r0 start || return 1
    is role Primary/Secondary || { echo "role $(drbdadm role r0)"; return 1; }
    agent drbd::r0 status
}

demote() {
    agent drbd::r0 stop || return 1
    r=$(drbdadm role r0); echo "role $r"
    [ "${r%%/*}" = Secondary ]
}

# The peer is Primary: start must be refused (bounded retries), and we stay Secondary.
never_two_primaries() {
    out=$(agent drbd::r0 start); rc=$?
    echo "$out"
    [ $rc != 0 ] || { echo "start succeeded while the peer is Primary"; return 1; }
    echo "$out" | grep -qi "primar" || return 1
    is role Secondary/Primary
}

MNT=mount::/dev/drbd0::/mnt::ext4::noatime
write_data() {
    agent $MNT start || return 1
    dd if=/dev/urandom of=/mnt/data bs=1M count=4 2>/dev/null
    md5sum /mnt/data | cut -d' ' -f1 > /mnt/data.md5
    echo "md5 $(cat /mnt/data.md5)"
    # a process holding the filesystem (cwd + an open fd): stop must remove it
    (cd /mnt && exec sleep 1000 3</mnt/data) >/dev/null 2>&1 &
    holder=$!
    sleep 1
    agent $MNT stop || return 1
    if kill -0 $holder 2>/dev/null; then echo "holder $holder survived"; return 1; fi
    ! grep -q ' /mnt ' /proc/mounts
}

# A Primary that is mounted refuses to demote: the group must stop mount before drbd.
demote_refused_while_mounted() {
    agent $MNT start || return 1
    out=$(agent drbd::r0 stop); rc=$?
    echo "$out"
    agent $MNT stop || return 1
    [ $rc != 0 ] && is role Primary/Secondary
}

read_back() {
    agent $MNT start || return 1
    [ "$(md5sum /mnt/data | cut -d' ' -f1)" = "$(cat /mnt/data.md5)" ] || { echo "md5 mismatch"; return 1; }
    echo "md5 $(cat /mnt/data.md5) OK"
    agent $MNT stop
}

bad_resource() {
    out=$(agent drbd::nosuch start); rc=$?
    echo "$out"
    [ $rc = 1 ] && echo "$out" | grep -q "not configured"
}

bad_device() {
    out=$(agent mount::/dev/drbd3::/mnt::ext4 start); rc=$?
    echo "$out"
    [ $rc != 0 ]
}

module_not_loaded() {
    drbdadm down r0 && rmmod drbd || return 1
    out=$(agent drbd::r0 start); rc=$?
    echo "$out"
    [ $rc = 1 ] && echo "$out" | grep -q "not loaded"
}


# DRBD again after module_not_loaded: same metadata, so it reconnects without a resync.
reup() {
    insmod /lib/modules/$KVER/$(grep drbd.ko /etc/rig-modules) || return 1
    drbdadm up r0 || return 1
    wait_for 120 is cstate Connected || { echo "not Connected: $(cat /proc/drbd)"; return 1; }
    wait_for 120 is dstate UpToDate/UpToDate || { echo "not UpToDate: $(cat /proc/drbd)"; return 1; }
    echo "$(drbdadm role r0) $(drbdadm dstate r0) $(drbdadm cstate r0)"
}

scenario probe_encodings probe_encodings
scenario status_secondary status_secondary
if [ "$NODE" = a ]; then
    scenario promote promote
    scenario mount_evicts_holders write_data
    scenario demote_refused_while_mounted demote_refused_while_mounted
    send a-primary
    recv b-refused
    scenario demote demote
    send a-secondary
    recv b-done 300
else
    recv a-primary
    scenario never_two_primaries never_two_primaries
    send b-refused
    recv a-secondary
    scenario promote_after_peer_demoted promote
    scenario read_back_on_peer read_back
    scenario demote demote
    send b-done
fi
scenario bad_resource bad_resource
scenario bad_device bad_device
sleep 2
scenario module_not_loaded module_not_loaded
scenario drbd_up_again reup
