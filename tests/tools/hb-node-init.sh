#!/bin/sh
# PID 1 of one heartbeat "machine" in the test rigs, started as
#   ip netns exec NETNS unshare --mount --uts --pid --fork --mount-proc tests/tools/hb-node-init.sh NAME NODEDIR
# The node gets its own network (NETNS), mount, UTS and PID namespaces. In the new mount
# namespace (private propagation) it gets its own /etc/ha.d, /var/lib/heartbeat and /run
# (so /var/run and /run/lock, where heartbeat keeps its pid file, API sockets and the serial
# lock file), all from NODEDIR, and its own host name. Then it reaps orphans until killed;
# SIGKILL to this process from the root namespace ends every process of the node at once.
set -eu
name=$1 d=$2
hostname "$name"
mount --make-rprivate /
mount --bind "$d/etc-ha.d" /etc/ha.d
mount --bind "$d/var-lib-heartbeat" /var/lib/heartbeat
mount --bind "$d/run" /run
exec python3 -c '
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
'
