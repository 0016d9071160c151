#!/bin/sh
# The chassis power switch of the test BMCs (tests/common/bmc.rs, bench/fencing.py): OpenIPMI's
# ipmi_sim runs DIR/power.sh, which execs
#   bmc-power.sh DIR get power | set power 0 | set power 1 | set reset 1
# DIR holds machine.sh (the machine: it runs in its own PID namespace), machine.pid (the pid
# of the unshare holding that namespace), power.log ("on|off UNIX_TIME" per change, written
# when done), power-req.log (UNIX_TIME of each power-off request, when it came), and
# optionally off-hook.sh / on-hook.sh, sourced just before the machine is killed / started.
# Power off kills the machine's PID 1 (the kernel then kills every process of the namespace)
# and returns once unshare has seen that happen: "off" means every process is gone.
# Shell builtins only in the loops (read, case, arithmetic): the switch answers in about a
# millisecond plus the hooks, so that it is the fencing client that is measured, not the rig.
dir=$1
shift
pidf="$dir/machine.pid"
alive() {
    p=
    { read -r p <"$pidf"; } 2>/dev/null
    [ -n "$p" ] || return 1
    st=
    { read -r st <"/proc/$p/stat"; } 2>/dev/null
    case $st in
    "") return 1 ;;
    *") Z "*) return 1 ;;
    esac
    return 0
}
# wait_dead N: until the machine is gone, N spins of builtins (a few milliseconds: a machine
# usually dies within one), then 2 ms sleeps, 1 s at most. Spinning longer would take the CPU
# from the very processes whose exit it waits for, on a loaded host.
wait_dead() {
    n=0
    while alive && [ $n -lt "$1" ]; do n=$((n + 1)); done
    n=0
    while alive && [ $n -lt 500 ]; do sleep 0.002; n=$((n + 1)); done
}
off() {
    # When the request came (the benchmark splits a fence into client and switch time).
    date +%s.%N >>"$dir/power-req.log"
    if alive; then
        [ -r "$dir/off-hook.sh" ] && . "$dir/off-hook.sh"
        init=
        { read -r init _ <"/proc/$p/task/$p/children"; } 2>/dev/null
        # No child yet (the machine is still starting: unshare has not forked): kill unshare,
        # whose --kill-child takes a child forked meanwhile with it.
        if [ -n "$init" ]; then kill -9 "$init" 2>/dev/null; else kill -9 "$p" 2>/dev/null; fi
        wait_dead 200
        alive && kill -9 "$p" 2>/dev/null
        wait_dead 0
    fi
    rm -f "$pidf"
    echo "off $(date +%s.%N)" >>"$dir/power.log"
}
on() {
    if ! alive; then
        [ -r "$dir/on-hook.sh" ] && . "$dir/on-hook.sh"
        setsid "$dir/machine.sh" </dev/null >>"$dir/machine.out" 2>&1 &
        echo $! >"$pidf"
    fi
    echo "on $(date +%s.%N)" >>"$dir/power.log"
}
op=$1
shift
case $op in
get)
    for a; do
        case $a in
        power) if alive; then echo power:1; else echo power:0; fi ;;
        *) echo "Invalid parameter: $a"; exit 1 ;;
        esac
    done
    ;;
set)
    while [ $# -ge 2 ]; do
        case $1 in
        power) if [ "$2" = 0 ]; then off; else on; fi ;;
        reset) off; on ;;
        esac
        shift 2
    done
    ;;
*) exit 1 ;;
esac
