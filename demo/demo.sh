#!/bin/bash
# make demo: two tandem nodes and a client in network namespaces on this host, with a UDP
# heartbeat link and a serial null-modem link (a pty pair joined by socat). It shows:
#   1. both nodes coming up; the service on the floating address answering from alpha;
#   2. cutting the heartbeat network alone: no failover (the serial link still carries);
#   3. killing alpha (links down, then all its processes): beta takes over; a timeline
#      from the fault to the first client answer, and the client-observed outage.
# Test traffic stays inside the namespaces created here (192.0.2.0/24, 198.51.100.0/24).
set -euo pipefail
TANDEM=${TANDEM:-$(cd "$(dirname "$0")/.." && pwd)/target/x86_64-unknown-linux-gnu/release/tandem}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROBE=${PROBE:-$ROOT/target/release/examples/probe}
SVC=$ROOT/tests/tools/svc
KEEPALIVE=${KEEPALIVE:-100ms} DEADTIME=${DEADTIME:-500ms} WARNTIME=${WARNTIME:-300ms}
[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)"; exit 1; }
[ -x "$TANDEM" ] || { echo "demo: $TANDEM missing: run make"; exit 1; }
[ -x "$PROBE" ] || (cd "$ROOT" && cargo build --quiet --release --example probe)

id=$$; A=dA$id; B=dB$id; C=dC$id; BR=dBR$id
dir=$(mktemp -d /tmp/tandem-demo.XXXXXX)
cleanup() {
    set +e
    for ns in $A $B $C $BR; do
        for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del $ns 2>/dev/null
    done
    [ -n "${SOCAT_PID:-}" ] && kill "$SOCAT_PID" 2>/dev/null
    [ -n "${PROBE_PID:-}" ] && kill "$PROBE_PID" 2>/dev/null
    wait 2>/dev/null
    # serial lock files of the killed daemons (the daemon removes its own on a clean exit)
    rm -f /var/lock/LCK..tdemo${id}a /var/lock/LCK..tdemo${id}b
    [ -n "${KEEP:-}" ] && echo "demo files kept in $dir" || rm -rf "$dir"
}
trap cleanup EXIT INT TERM
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now_us() { date +%s%6N; }

say "network: bridge + alpha + beta + client (192.0.2.0/24), dedicated heartbeat link (198.51.100.0/24)"
for ns in $BR $A $B $C; do ip netns add $ns; ip -n $ns link set lo up; done
ip -n $BR link add br0 type bridge; ip -n $BR link set br0 up
for x in "$A pa 192.0.2.1" "$B pb 192.0.2.2" "$C pc 192.0.2.100"; do
    set -- $x
    ip -n $1 link add lan0 type veth peer name $2 netns $BR
    ip -n $BR link set $2 master br0; ip -n $BR link set $2 up
    ip -n $1 addr add $3/24 dev lan0; ip -n $1 link set lan0 up
done
ip -n $A link add hb0 type veth peer name hb0 netns $B
ip -n $A addr add 198.51.100.1/24 dev hb0; ip -n $B addr add 198.51.100.2/24 dev hb0
ip -n $A link set hb0 up; ip -n $B link set hb0 up
ip netns exec $C sysctl -qw net.ipv4.conf.lan0.arp_accept=1

say "serial null-modem: a pty pair joined by socat"
socat pty,raw,echo=0,link=$dir/tdemo${id}a pty,raw,echo=0,link=$dir/tdemo${id}b 2>/dev/null &
SOCAT_PID=$!
for i in $(seq 100); do [ -e $dir/tdemo${id}a ] && [ -e $dir/tdemo${id}b ] && break; sleep 0.02; done

"$TANDEM" keygen $dir/authkey >/dev/null
for n in alpha beta; do
    tty=$dir/tdemo${id}a; [ $n = beta ] && tty=$dir/tdemo${id}b
    cat > $dir/$n.conf <<CONF
# the demo cluster (the same file on both nodes but for the serial device path)
cluster demo
node alpha beta
authkey $dir/authkey
keepalive $KEEPALIVE
deadtime $DEADTIME
warntime $WARNTIME
initdead 2s
auto_failback off
realtime on
ucast hb0 198.51.100.1
ucast hb0 198.51.100.2
serial $tty 115200
logfacility none
logfile $dir/$n.log
group web alpha ip::192.0.2.50/24/lan0 script::$SVC::192.0.2.50::8080::-::$dir/run
CONF
done
sed -n '2,16p' $dir/alpha.conf | sed 's/^/    /'

say "starting tandem on alpha and beta"
for n in alpha beta; do
    ns=$A; [ $n = beta ] && ns=$B
    ip netns exec $ns "$TANDEM" daemon -c $dir/$n.conf --node $n --socket $dir/$n.sock \
        --state-dir $dir/$n.state --pidfile $dir/$n.pid
done
for i in $(seq 300); do
    "$TANDEM" status -s $dir/alpha.sock 2>/dev/null | grep -q "group web.*started on alpha" && break
    sleep 0.02
done
"$TANDEM" status -s $dir/alpha.sock
echo; echo "client asks 192.0.2.50:8080 -> $(ip netns exec $C socat -T1 - TCP:192.0.2.50:8080 2>/dev/null </dev/null)"

ip netns exec $C "$PROBE" 192.0.2.50:8080 --interval-ms 10 --timeout-ms 50 --duration-ms 60000 \
    --until-file $dir/stop-probe > $dir/probe.log &
PROBE_PID=$!
sleep 0.5

say "fault 1: cut the heartbeat network (hb0 down on alpha); serial still carries"
ip -n $A link set hb0 down
sleep 2
"$TANDEM" status -s $dir/beta.sock | sed -n '1,6p'
if "$TANDEM" status -s $dir/beta.sock | grep -q "peer alpha: up"; then
    echo "=> no failover: beta still sees alpha (over serial); the group stays on alpha"
else
    echo "=> UNEXPECTED: beta lost alpha"; exit 1
fi
ip -n $A link set hb0 up
sleep 1

say "fault 2: alpha dies (links down, serial cut, every process killed)"
T_FAULT=$(now_us)
ip -n $A link set lan0 down; ip -n $A link set hb0 down
kill $SOCAT_PID 2>/dev/null; SOCAT_PID=
for p in $(ip netns pids $A); do kill -9 $p 2>/dev/null; done
for i in $(seq 500); do
    "$TANDEM" status -s $dir/beta.sock 2>/dev/null | grep -q "group web.*started on beta" && break
    sleep 0.01
done
sleep 1
touch $dir/stop-probe; wait $PROBE_PID 2>/dev/null; PROBE_PID=
"$TANDEM" status -s $dir/beta.sock

# Timeline from beta's log and the client's probe log (demo/timeline.sh: integer microseconds).
say "timeline (keepalive $KEEPALIVE, deadtime $DEADTIME)"
"$ROOT/demo/timeline.sh" "$T_FAULT" $dir/beta.log $dir/probe.log \
    "fault (alpha killed)" @fault \
    "peer declared dead on beta" "-> dead" \
    "floating IP added on beta" "ip::192.0.2.50/24/lan0 started" \
    "gratuitous ARP sent" "announced 192.0.2.50" \
    "service started on beta" "script::$SVC::192.0.2.50::8080::-::$dir/run started" \
    "first client answer from beta" "@answer:$B"
