#!/bin/sh
# PID 1 of a fencing test's "machine" (tests/common/fencerig.rs). The BMC's power switch
# starts it as `unshare --pid --fork --kill-child --mount-proc fence-machine.sh NETNS LOG HBSTATE CMD...`:
# it binds HBSTATE over /var/lib/heartbeat in the machine's mount namespace (a daemon reading an
# ha.d directory keeps heartbeat's uuid and generation there: each machine has its own, and the
# host's is never written), runs CMD in the node's network namespace, its output appended to
# LOG, then reaps orphans until the power goes off (SIGKILL to this PID 1 kills everything in
# the PID namespace).
ns=$1 log=$2 hbstate=$3
shift 3
if [ -d /var/lib/heartbeat ]; then
    mkdir -p "$hbstate" && mount --bind "$hbstate" /var/lib/heartbeat || exit 1
fi
ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
exec python3 -c '
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
'
