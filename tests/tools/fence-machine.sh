#!/bin/sh
# PID 1 of a fencing test's "machine" (tests/common/fencerig.rs). The BMC's power switch
# starts it as `unshare --pid --fork --kill-child --mount-proc fence-machine.sh NETNS LOG CMD...`:
# it runs CMD in the node's network namespace, its output appended to LOG, then reaps orphans
# until the power goes off (SIGKILL to this PID 1 kills everything in the PID namespace).
ns=$1 log=$2
shift 2
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
