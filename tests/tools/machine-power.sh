#!/bin/sh
# The power switch of a test machine (tests/common/machine.rs). The machine's BMC (ipmi_sim's
# chassis_control) and the tests call it as
#   machine-power.sh DIR get power | set power 0 | set power 1 | set reset 1
# DIR holds:
#   machine.sh   the machine; started in a session of its own, it execs unshare into a PID
#                namespace whose PID 1 is the machine's init (tests/tools/machine-init.py)
#   machine.pid  the pid of that unshare while the power is on
#   power.log    one line per change: "on|off UNIX_TIME"
#   off.sh       optional, sourced once the machine is dead, before "off" is reported
#   on.sh        optional, sourced before the machine starts
# Power off SIGKILLs the machine's PID 1: the kernel kills every process of the namespace, and
# unshare exits once PID 1 is reaped. Only then does off.sh run (the rig takes the machine's
# links down and removes its addresses there), and only then does "get" answer power:0: every
# request holds DIR/lock, so no reader can see "off" while a dead machine still holds an
# address, and a survivor that waits for a confirmed power-off never overlaps with it.
dir=$1
shift
exec 9>>"$dir/lock"
flock 9
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
# wait_dead: until the machine is gone, 5 ms sleeps, 2 s at most
wait_dead() {
    n=0
    while alive && [ $n -lt 400 ]; do sleep 0.005; n=$((n + 1)); done
}
off() {
    if alive; then
        init=
        { read -r init _ <"/proc/$p/task/$p/children"; } 2>/dev/null
        [ -n "$init" ] && kill -9 "$init" 2>/dev/null
        wait_dead
        alive && kill -9 "$p" 2>/dev/null
        wait_dead
        if alive; then
            echo "machine-power: $dir: the machine does not die" >&2
            exit 1
        fi
        [ -r "$dir/off.sh" ] && . "$dir/off.sh"
    fi
    rm -f "$pidf"
    echo "off $(date +%s.%N)" >>"$dir/power.log"
}
on() {
    if ! alive; then
        [ -r "$dir/on.sh" ] && . "$dir/on.sh"
        setsid "$dir/machine.sh" </dev/null >>"$dir/machine.out" 2>&1 9>&- &
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
