#!/bin/bash
# The failover timeline `make demo` prints, from a daemon's log and the client's probe log.
#
# usage: timeline.sh FAULT_US DAEMON_LOG PROBE_LOG [LABEL WHAT]...
#   FAULT_US    when the fault happened: wall-clock microseconds since the epoch (date +%s%6N)
#   DAEMON_LOG  tandem's log file: each line starts with its time, 2026-11-28T05:44:40.123456Z
#   PROBE_LOG   examples/probe output: `<unix_us> ok <server>` / `<unix_us> fail <why>` lines,
#               then `# longest_gap_ms <ms> ...` and `# ok <n> fail <n>`
#   WHAT        a text: the first DAEMON_LOG line at or after the fault that contains it;
#               @fault: the fault itself;
#               @answer:NAME: the first answer at or after the fault from server NAME
# Prints one row per LABEL with the time after the fault in ms, rounded to 0.1 ms ("?" when
# there is no such line), then the client-observed outage and the probe counts.
#
# Times are integer microseconds end to end, in bash's 64-bit arithmetic. (Epoch microseconds
# have 16 digits: awk would hold them in doubles and print them with 6 significant digits
# under mawk, Debian's default awk.)
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 FAULT_US DAEMON_LOG PROBE_LOG [LABEL WHAT]..." >&2; exit 2; }
fault=$1 log=$2 probe=$3
shift 3
[[ $fault =~ ^[0-9]+$ ]] || { echo "timeline: FAULT_US must be microseconds since the epoch: $fault" >&2; exit 2; }

# 2026-11-28T05:44:40.123456Z -> microseconds since the epoch (UTC)
stamp_us() {
    [[ $1 =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2}:[0-9]{2})\.([0-9]{6})Z$ ]] || return 1
    local secs
    secs=$(TZ=UTC date -u -d "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" +%s) || return 1
    echo $((secs * 1000000 + 10#${BASH_REMATCH[3]}))
}

# The time of the first DAEMON_LOG line at or after the fault that contains $1.
first_log() {
    local stamp rest us
    while read -r stamp rest; do
        us=$(stamp_us "$stamp") || continue
        if ((us >= fault)); then
            echo "$us"
            return
        fi
    done < <(grep -F -- "$1" "$log" || true)
}

# The time of the first answer at or after the fault from server $1.
first_answer() {
    local t st who
    while read -r t st who; do
        [[ $t =~ ^[0-9]+$ ]] || continue
        if ((t >= fault)) && [ "$st" = ok ] && [ "$who" = "$1" ]; then
            echo "$t"
            return
        fi
    done <"$probe"
}

# Microseconds since the epoch -> "   512.3 ms" after the fault ("       ?" when empty).
ms() {
    if [ -z "$1" ]; then
        echo "       ?"
        return
    fi
    local d=$(($1 - fault)) sign=""
    if ((d < 0)); then
        sign=- d=$((-d))
    fi
    local tenths=$(((d + 50) / 100))
    printf '%8s ms' "$sign$((tenths / 10)).$((tenths % 10))"
}

while [ $# -ge 2 ]; do
    label=$1 what=$2
    shift 2
    case $what in
    @fault) at=$fault ;;
    @answer:*) at=$(first_answer "${what#@answer:}") ;;
    *) at=$(first_log "$what") ;;
    esac
    printf '  %-34s %s\n' "$label" "$(ms "$at")"
done

while read -r _ key a _ b _; do
    case $key in
    longest_gap_ms) printf '\n  client-observed outage: %s ms (longest gap between answers, probe every 10 ms)\n' "$a" ;;
    ok) printf '  client probes: %s ok, %s failed\n' "$a" "$b" ;;
    esac
done < <(grep '^# ' "$probe" || true)
