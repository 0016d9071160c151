#!/bin/sh
# PID 1 of one machine of the Pacemaker rig (bench/pacemaker.py), run as
#   ip netns exec NETNS unshare --mount --uts --pid --fork --mount-proc bench/pcmk-node-init.sh NAME DIR
# so the machine has its own network, mount, UTS and PID namespace. Here, in the new mount
# namespace, it gives the machine its own /etc/corosync, /var/lib/corosync,
# /var/lib/pacemaker, /var/log/pacemaker, /run and /dev (libqb's IPC uses abstract sockets,
# which follow the network namespace, and shared memory in /dev/shm, private here), adds
# tandem's OCF agents (DIR/ocf-extra/tandem) over /usr/lib/ocf/resource.d with overlayfs,
# sets the host name, and becomes a zombie reaper. SIGKILL from outside kills the machine.
set -eu
name=$1 d=$2
hostname "$name"
mount --make-rprivate /
mount --bind "$d/etc-corosync" /etc/corosync
mount --bind "$d/var-lib-corosync" /var/lib/corosync
mount --bind "$d/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$d/var-log-pacemaker" /var/log/pacemaker
mount --bind "$d/run" /run
mount -t tmpfs -o mode=0755,size=1m pcmk-dev "$d/dev"
for n in null zero full random urandom tty; do
    : > "$d/dev/$n"
    mount --bind "/dev/$n" "$d/dev/$n"
done
mkdir -p "$d/dev/shm" "$d/dev/pts"
mount -t tmpfs -o mode=1777,size=64m pcmk-shm "$d/dev/shm"
ln -s /proc/self/fd "$d/dev/fd"
ln -s /proc/self/fd/0 "$d/dev/stdin"
ln -s /proc/self/fd/1 "$d/dev/stdout"
ln -s /proc/self/fd/2 "$d/dev/stderr"
mount --move "$d/dev" /dev
mount -t overlay pcmk-ocf -o "lowerdir=$d/ocf-extra:/usr/lib/ocf/resource.d" /usr/lib/ocf/resource.d
exec "${BENCH_PY:-python3}" -c '
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
'
