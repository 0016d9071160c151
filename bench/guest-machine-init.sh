#!/bin/sh
# PID 1 of the guests benchmark's "machine": run by bench/guests.py as
#   nsenter --net=/run/netns/NS unshare --mount --pid --fork --mount-proc bench/guest-machine-init.sh DIR
# (nsenter, not `ip netns exec`, which would mount a fresh /sys without the host's cgroup
# hierarchies). The machine has its own network, mount and PID namespace and its own /run
# (DIR/run), so tandem's /run/tandem/guests and systemd-nspawn's /run/systemd stay in it.
# Then it reaps orphans (guest monitors and systemd-nspawn end up here). SIGKILL to it
# (from the root namespace) ends every process of the machine, guests included.
set -eu
d=$1
mount --make-rprivate /
mount --bind "$d/run" /run
exec "${BENCH_PY:-python3}" -c '
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
'
