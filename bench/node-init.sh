#!/bin/sh
# PID 1 of one benchmark node ("machine"): run by bench.py as
#   ip netns exec NETNS unshare --mount --uts --pid --fork --mount-proc bench/node-init.sh NAME NODEDIR DEVLOG
# so the node has its own network, mount, UTS and PID namespace. Here, inside the new mount
# namespace (private propagation), it gives the node its own /etc/ha.d, /etc/keepalived,
# /var/lib/heartbeat and /run (hence /var/run/heartbeat), a private /dev whose /dev/log is the
# benchmark's syslog receiver for this node, and its own host name; then it becomes a zombie
# reaper. Killing it (SIGKILL from the root namespace) kills every process of the node at once.
set -eu
name=$1 d=$2 devlog=$3
hostname "$name"
mount --make-rprivate /
mount --bind "$d/etc-ha.d" /etc/ha.d
mount --bind "$d/etc-keepalived" /etc/keepalived
mount --bind "$d/var-lib-heartbeat" /var/lib/heartbeat
mount --bind "$d/run" /run
# A private /dev: the usual character devices bound from the host's, and /dev/log.
mount -t tmpfs -o mode=0755,size=1m bench-dev "$d/dev"
for n in null zero full random urandom tty; do
    : > "$d/dev/$n"
    mount --bind "/dev/$n" "$d/dev/$n"
done
mkdir -p "$d/dev/shm" "$d/dev/pts"
mount -t tmpfs -o mode=1777,size=16m bench-shm "$d/dev/shm"
ln -s /proc/self/fd "$d/dev/fd"
ln -s /proc/self/fd/0 "$d/dev/stdin"
ln -s /proc/self/fd/1 "$d/dev/stdout"
ln -s /proc/self/fd/2 "$d/dev/stderr"
ln -s "$devlog" "$d/dev/log"
mount --move "$d/dev" /dev
# Reap orphans (daemons detach and end up here).
exec "${BENCH_PY:-python3}" -c '
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
'
