#!/bin/bash
# make vm-test: DRBD 8.4 (Debian 12's kernel) in two QEMU/TCG VMs: tandem's agents by hand,
# then the tandem daemon on both nodes (started by init/tandem) moving a group
# ip + drbd + mount + service: planned switch-over, a refused second primary, a racing
# takeover, DRBD's fence-peer handler over the serial link, and a crash of the holder
# (this script kills its QEMU while it appends fsync'd records; the survivor takes over).
#
#   node-a 192.0.2.1  <-- virtio-net over a 127.0.0.1 socket netdev -->  node-b 192.0.2.2
#   /dev/ttyS1        <-- chardev socket (a = server, b = client)     -->  /dev/ttyS1
#   /dev/vda (raw file) is each node's DRBD backing disk; /dev/ttyS0 is the console (a.log, b.log).
# The VMs have no other NIC: nothing reaches the host's network.
#
# What the rig must get right under TCG:
#  - the Debian kernel has a PVH entry point: boot the extracted vmlinux (saves ~3 s of xz under TCG);
#  - drbd 8.4 preallocates minor_count MiB at load: minor_count=4;
#  - connect-int 2 (crossed initial packets wait connect-int), fixed resync rate (c-plan-ahead 0);
#  - busybox ash runs its applets before $PATH: call real tools by full path (/sbin/mke2fs);
#  - drbdadm/drbdsetup 9.x exec drbdadm-84/drbdsetup-84 from /lib/drbd for an 8.4 module.
# drbd-utils is used in the guest only to SET UP the resource (create-md, up, the initial
# sync); every promote/demote of the scenarios is done by tandem's drbd agent over netlink.
#
# Scenarios run inside the guests as shell functions (tests/vm/scenarios.sh); each prints
#   SCENARIO <node> <name> PASS|FAIL <seconds>s [takeover=<seconds>]
# on the console; the crash is judged here (records found on b >= last ACK printed by a).
# This script prints one line per scenario, PASS/FAIL, and exits 0 iff all passed.
#
# Env: W (work dir, default tests/vm/build), MEM (MiB per VM), ACCEL (tcg|kvm), DISK_MB,
#      TIMEOUT (s, whole run), QUICK=1 (skip the agent scenarios), PNET/PSER (loopback ports), CRASH_ACKS (records acknowledged
#      before the kill), TANDEM (static tandem binary; default: built here),
#      PROBE_BIN, WRITER_BIN (static examples/drbd_probe.rs, examples/vm_writer.rs;
#      default: built here). Everything downloaded or built goes under $W.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${W:-$ROOT/tests/vm/build}
MEM=${MEM:-160}
ACCEL=${ACCEL:-tcg}
DISK_MB=${DISK_MB:-64}
TIMEOUT=${TIMEOUT:-540}
CRASH_ACKS=${CRASH_ACKS:-100}
PNET=${PNET:-$((40000 + $$ % 10000))}
PSER=$((PNET + 1))
TARGET=x86_64-unknown-linux-gnu
mkdir -p "$W"; cd "$W"
say() { echo "vm-test: $*" >&2; }

# ---------------------------------------------------------------- 1. host tools
"$ROOT"/scripts/prereqs vm

# ---------------------------------------------------------------- 2. our static binaries
BUILD=""
[ -n "${TANDEM:-}" ] || BUILD="$BUILD --bin tandem"
[ -n "${PROBE_BIN:-}" ] || BUILD="$BUILD --example drbd_probe"
[ -n "${WRITER_BIN:-}" ] || BUILD="$BUILD --example vm_writer"
if [ -n "$BUILD" ]; then
    say "building static:$BUILD"
    (cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release --target $TARGET $BUILD)
fi
REL=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release
TANDEM=${TANDEM:-$REL/tandem}
PROBE_BIN=${PROBE_BIN:-$REL/examples/drbd_probe}
WRITER_BIN=${WRITER_BIN:-$REL/examples/vm_writer}
for b in "$TANDEM" "$PROBE_BIN" "$WRITER_BIN"; do
    file -L "$b" 2>/dev/null | grep -q 'static' || { say "$b is not a static binary"; exit 1; }
done

# ------------------------- 3. Debian packages: downloaded and unpacked, never installed
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(kpkg)
[ -n "$KPKG" ] || { apt-get update -qq; KPKG=$(kpkg); }
[ -n "$KPKG" ] || { say "no linux-image-amd64 in the apt sources"; exit 1; }
KVER=${KPKG#linux-image-}
fetch() {  # fetch PACKAGE DIR
    [ -d "$2" ] && [ -n "$(ls -A "$2" 2>/dev/null)" ] && return 0
    say "fetching $1"
    ls "$1"_*.deb >/dev/null 2>&1 || apt-get download -qq "$1" 2>/dev/null
    rm -rf "$2"; dpkg -x "$(ls "$1"_*.deb | head -1)" "$2"
}
fetch "$KPKG" kernel
[ -f kernel/lib/modules/$KVER/modules.dep ] || depmod -b kernel "$KVER"   # the .deb ships none
fetch drbd-utils utils
fetch busybox-static bbox
MODDIR=kernel/lib/modules/$KVER
if [ ! -s vmlinux-$KVER ]; then   # PVH: QEMU boots the uncompressed vmlinux directly
    V=kernel/boot/vmlinuz-$KVER
    off=$({ LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$V" || true; } | head -1 | cut -d: -f1)
    [ -z "$off" ] || { tail -c +$((off + 1)) "$V" || true; } | xz -dc --single-stream > vmlinux-$KVER ||
        rm -f vmlinux-$KVER
fi
KIMG=vmlinux-$KVER; [ -s "$KIMG" ] || KIMG=kernel/boot/vmlinuz-$KVER

# ------------------------------------------------------------ 4. initramfs
R=$W/initramfs; rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/sbin,etc/tandem,etc/init.d,etc/default,proc,sys,dev,tmp,mnt,data,run}
mkdir -p "$R"/{lib64,var/lib/drbd,var/run/drbd,var/lock,var/lib/tandem,var/log}
cp bbox/bin/busybox "$R"/bin/busybox; ln -s busybox "$R"/bin/sh
cp "$PROBE_BIN" "$R"/bin/drbd_probe
cp "$WRITER_BIN" "$R"/bin/vm_writer
cp "$TANDEM" "$R"/usr/sbin/tandem
ln -s /usr/sbin/tandem "$R"/sbin/tandem; ln -s /usr/sbin/tandem "$R"/bin/tandem

for m in virtio_pci virtio_blk virtio_net drbd ext4; do
    modprobe -d kernel -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
    rel=${ko#*/lib/modules/$KVER/}
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$rel")"
    case $ko in
        *.xz)  xz -dc "$ko"    > "$R/lib/modules/$KVER/${rel%.xz}";  rel=${rel%.xz} ;;
        *.zst) zstd -qdc "$ko" > "$R/lib/modules/$KVER/${rel%.zst}"; rel=${rel%.zst} ;;
        *)     cp "$ko" "$R/lib/modules/$KVER/$rel" ;;
    esac
    echo "$rel" >> "$R"/etc/rig-modules
done
sed -i "s|/drbd.ko\$|/drbd.ko minor_count=4|" "$R"/etc/rig-modules
grep -q drbd.ko "$R"/etc/rig-modules || { say "no drbd.ko in $KPKG"; exit 1; }

copy_bin() {  # copy_bin SRC DEST: a dynamic binary and the libraries ldd names
    mkdir -p "$R$(dirname "$2")"; cp "$1" "$R$2"
    ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
        [ -e "$R$lib" ] || { mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"; }
    done
}
for b in sbin/drbdadm sbin/drbdsetup sbin/drbdmeta lib/drbd/drbdadm-84 lib/drbd/drbdsetup-84; do
    copy_bin "utils/$b" "/$b"
done
copy_bin "$(command -v mke2fs)" /sbin/mke2fs
cp /etc/mke2fs.conf "$R"/etc/

# fencing resource-only: a Primary that loses its peer calls the fence-peer handler, i.e.
# tandem asks the peer's tandem over the cluster links (UDP and serial) to outdate its disk.
# ping-int 1: both sides notice a dead connection within ~1.5 s.
cat > "$R"/etc/drbd.conf <<CONF
global { usage-count no; }
resource r0 {
    net      { protocol C; connect-int 2; ping-int 1; ping-timeout 5; }
    disk     { c-plan-ahead 0; resync-rate 200M; fencing resource-only; }
    handlers { fence-peer "/sbin/tandem fence-peer"; }
    device /dev/drbd0;
    disk   /dev/vda;
    meta-disk internal;
    on node-a { address 192.0.2.1:7789; }
    on node-b { address 192.0.2.2:7789; }
}
CONF

# ---- tandem: the same files on both nodes, started by the LSB init script
cp "$ROOT"/init/tandem "$R"/etc/init.d/tandem
cat > "$R"/etc/default/tandem <<'DEF'
TANDEM=/usr/sbin/tandem
CONFIG=/etc/tandem/tandem.conf
DEF
rm -f "$W"/authkey; "$TANDEM" keygen "$W"/authkey >/dev/null; cp -p "$W"/authkey "$R"/etc/tandem/authkey
cat > "$R"/etc/tandem/tandem.conf <<'CONF'
# tandem in the QEMU rig (tests/vm/run.sh); node names are the VMs' hostnames
cluster vmrig
node node-a node-b
authkey /etc/tandem/authkey
keepalive 250ms
warntime 1500ms
deadtime 3s
initdead 10s
auto_failback off
ucast eth0 192.0.2.1
ucast eth0 192.0.2.2
serial /dev/ttyS1 115200
logfacility none
logfile /var/log/tandem.log
group web node-a ip::192.0.2.100/24/eth0 drbd::r0 mount::/dev/drbd0::/data::ext4 script::/etc/tandem/www.sh
CONF
# The service: busybox httpd on the floating address, serving /data/www (so it needs the
# filesystem), whose index is the node's name.
cat > "$R"/etc/tandem/www.sh <<'SH'
#!/bin/sh
PIDFILE=/run/www.pid
# Running = the process exists and is not a zombie: httpd is reparented to the VM's /init
# (a shell), which reaps it only when it next waits, and kill -0 succeeds on zombies.
alive() { st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1); [ -n "$st" ] && [ "$st" != Z ]; }
running() { [ -r $PIDFILE ] && alive "$(cat $PIDFILE)"; }
case "$1" in
start)
    running && exit 0
    mkdir -p /data/www && uname -n > /data/www/index.html || exit 1
    /bin/start-stop-daemon -S -b -m -p $PIDFILE -x /bin/httpd -- -f -p 192.0.2.100:80 -h /data/www
    i=0; until /bin/netstat -ltn | grep -q '192.0.2.100:80 '; do
        i=$((i+1)); [ $i -lt 50 ] || exit 1; /bin/usleep 100000
    done ;;
stop)
    running || { rm -f $PIDFILE; exit 0; }
    pid=$(cat $PIDFILE); kill "$pid"
    i=0; while alive $pid; do
        i=$((i+1)); [ $i -lt 50 ] || kill -KILL $pid; [ $i -lt 60 ] || exit 1; /bin/usleep 100000
    done
    rm -f $PIDFILE ;;
status) running || exit 3 ;;
*) exit 2 ;;
esac
exit 0
SH
chmod 755 "$R"/etc/tandem/www.sh

cat > "$R"/init <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin:/lib/drbd
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for kv in $(cat /proc/cmdline); do
    case $kv in rig.node=*) NODE=${kv#*=} ;; rig.ip=*) IP=${kv#*=} ;; rig.peer=*) PEER=${kv#*=} ;; rig.quick=*) QUICK=${kv#*=} ;; esac
done
log()  { echo "RIG $NODE $(cut -d' ' -f1 /proc/uptime) $*"; }
up()   { cut -d' ' -f1 /proc/uptime; }
finish() {
    dmesg | grep -E "drbd|EXT4" | sed "s/^/KMSG $NODE /"
    [ ! -r /var/log/tandem.log ] || sed "s/^/TLOG $NODE /" /var/log/tandem.log
    sync; poweroff -f
}
wait_for() {  # wait_for SECONDS CMD...: poll CMD every 0.2 s
    t=$(( $1 * 5 )); shift
    until "$@" >/dev/null 2>&1; do t=$((t-1)); [ $t -gt 0 ] || return 1; usleep 200000; done
}
is() { [ "$(drbdadm $1 r0 2>/dev/null)" = "$2" ]; }
agent() { /bin/tandem agent "$@" 2>&1; }   # one resource agent, once
# scenario NAME CMD...: runs CMD (a shell function), prints PASS/FAIL and its duration.
scenario() {
    name=$1; shift; t0=$(up)
    if out=$("$@" 2>&1); then res=PASS; else res=FAIL; fi
    dt=$(awk -v a=$t0 -v b=$(up) 'BEGIN{printf "%.2f", b-a}')
    echo "$out" | sed "s/^/RIG $NODE   $name: /"
    if [ $res = FAIL ] && [ -r /var/log/tandem.log ]; then   # what tandem did, for the record
        tail -40 /var/log/tandem.log | sed "s/^/RIG $NODE   $name: tlog: /"
    fi
    echo "SCENARIO $NODE $name $res ${dt}s $(echo "$out" | grep -o 'takeover=[0-9.]*' | tail -1)"
}
send() { for i in 1 2 3 4 5 6 7 8 9 10; do echo "$1" | nc $PEER 5555 && return 0; sleep 1; done; return 1; }
recv() { timeout ${2:-200} nc -l -p 5555 > /tmp/msg; grep -qx "$1" /tmp/msg; }

KVER=$(uname -r)
mount -t tmpfs run /run; mkdir -p /run/tandem
while read -r m args; do insmod /lib/modules/$KVER/$m $args || log "insmod $m failed"; done < /etc/rig-modules
hostname node-$NODE
ip link set lo up; ip link set eth0 up; ip addr add $IP/24 dev eth0
log "READY kernel=$KVER drbd=$(head -1 /proc/drbd)"
. /scenarios.sh
finish
INIT
chmod +x "$R"/init
cp "$ROOT"/tests/vm/scenarios.sh "$R"/scenarios.sh

(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > initrd.gz
say "initramfs $(du -h initrd.gz | cut -f1) for $KVER"

# ------------------------------------------------------------ 5. boot both VMs
rm -f disk-a.img disk-b.img a.log b.log
truncate -s ${DISK_MB}M disk-a.img disk-b.img
CPU=max; [ "$ACCEL" = kvm ] && CPU=host
vm() {  # vm NAME IP PEER NETDEV MAC TTYS1-OPTS
    qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
        -accel "$ACCEL" -cpu $CPU -smp 1 -m "$MEM" -kernel "$KIMG" -initrd initrd.gz \
        -append "console=ttyS0 quiet panic=-1 rig.node=$1 rig.ip=$2 rig.peer=$3 rig.quick=${QUICK:-}" \
        -drive file=disk-$1.img,format=raw,if=virtio,cache=unsafe \
        -netdev socket,id=n0,$4 -device virtio-net-pci,netdev=n0,mac=52:54:00:99:00:0$5 \
        -serial file:$1.log -chardev socket,id=s1,host=127.0.0.1,port=$PSER,$6 -serial chardev:s1 \
        >$1.qemu.log 2>&1 &
    echo $!
}
now()   { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
T0=$(now)
PA=$(vm a 192.0.2.1 192.0.2.2 listen=127.0.0.1:$PNET 1 server=on,wait=off)
PB=
trap 'kill $PA $PB 2>/dev/null || true' EXIT
for i in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$PNET " && break; sleep 0.1; done
PB=$(vm b 192.0.2.2 192.0.2.1 connect=127.0.0.1:$PNET 2 reconnect=1)
say "qemu a=$PA b=$PB ($ACCEL, $MEM MiB each), ports $PNET/$PSER"
# The crash: once a's writer has printed CRASH_ACKS acknowledgements (or 20 s after it
# started), a's QEMU is killed with SIGKILL; the takeover time is from then until b prints
# TAKEOVER-DONE (the service answers from b). Polled every 0.1 s.
acks() { { grep -a -o '^ACK [0-9]*' a.log || true; } | tail -1 | cut -d' ' -f2; }
alone= ready= TKILL= TDONE= ACKED= failed=
while :; do
    s=$(since $T0); s=${s%.*}
    kill -0 $PA 2>/dev/null || kill -0 $PB 2>/dev/null || break
    if [ -z "$TKILL" ] && grep -aq 'CRASH-READY' a.log; then
        ready=${ready:-$s}
        n=$(acks); n=${n:-0}
        if [ "$n" -ge "$CRASH_ACKS" ] || [ $((s - ready)) -ge 20 ]; then
            kill -9 $PA; TKILL=$(now); wait $PA 2>/dev/null || true
            ACKED=$(acks); say "killed node a (qemu $PA) after ACK ${ACKED:-none}"
        fi
    fi
    if [ -n "$TKILL" ] && [ -z "$TDONE" ] && grep -aq 'TAKEOVER-DONE' b.log 2>/dev/null; then
        TDONE=$(since $TKILL); say "b took over ${TDONE}s after the kill"
    fi
    if ! kill -0 $PA 2>/dev/null || ! kill -0 $PB 2>/dev/null; then
        alone=${alone:-$s}
        lim=30; [ -z "$TKILL" ] || lim=240     # after the crash b still has work to do
        [ $((s - alone)) -lt $lim ] || { say "one VM gone, stopping the other"; kill $PA $PB 2>/dev/null || true; }
    fi
    [ "$s" -lt "$TIMEOUT" ] || { say "timeout after ${TIMEOUT}s"; kill $PA $PB 2>/dev/null || true; break; }
    # A failure makes the scenarios after it wait for messages that never come: stop
    # early (after 15 s, for the logs) unless KEEP_GOING is set.
    if [ -z "${KEEP_GOING:-}" ] && grep -aq '^SCENARIO .* FAIL' a.log b.log 2>/dev/null; then
        failed=${failed:-$s}
        [ $((s - failed)) -lt 15 ] || { say "a scenario failed: stopping the VMs"; kill $PA $PB 2>/dev/null || true; break; }
    fi
    if [ -n "$ready" ] && [ -z "$TDONE" ]; then sleep 0.1; else sleep 0.5; fi
done
trap - EXIT
say "whole run $(since $T0)s"

# ------------------------------------------------------------ 6. verdict
grep -ah '^RIG' a.log b.log | tr -d '\r' >&2 || true
grep -ah '^SCENARIO' a.log b.log | tr -d '\r' | sed 's/^SCENARIO //' > scenarios.txt || true
# the crash, judged here: every record acknowledged by a is on b, intact
if [ -n "$TKILL" ]; then
    v=$({ grep -a 'CRASH-VERIFY' b.log || true; } | tr -d '\r' | tail -1)
    found=$(echo "$v" | sed -n 's/.*FOUND \([0-9]*\).*/\1/p')
    bad=$(echo "$v" | sed -n 's/.*BAD \([0-9]*\).*/\1/p')
    detail="found=${found:-none} acked=${ACKED:-none} bad=${bad:-?} takeover=${TDONE:-none}"
    if [ -n "$TDONE" ] && [ -n "$found" ] && [ "${ACKED:-0}" -gt 0 ] && [ "$found" -ge "$ACKED" ] &&
        [ "$bad" = 0 ]; then
        echo "host crash_failover PASS ${TDONE}s $detail" >> scenarios.txt
    else
        echo "host crash_failover FAIL - $detail" >> scenarios.txt
    fi
else
    echo "host crash_failover FAIL - node a never became CRASH-READY" >> scenarios.txt
fi
# Every scenario the script names must have reported (a hung VM reports nothing).
expect() {  # NODE NAME...
    n=$1; shift
    for x in "$@"; do grep -q "^$n $x " scenarios.txt || echo "$n $x FAIL - never reported" >> scenarios.txt; done
}
common="setup probe_encodings status_secondary bad_resource bad_device module_not_loaded drbd_up_again tandem_start fence_resync"
[ -z "${QUICK:-}" ] || common="setup tandem_start fence_resync"
[ -n "${QUICK:-}" ] || expect a promote mount_evicts_holders demote_refused_while_mounted demote
[ -n "${QUICK:-}" ] || expect b never_two_primaries promote_after_peer_demoted read_back_on_peer demote
expect a $common switchover \
    second_primary_refused takeover_race fence_handler fence_by_hand fence_refused
expect b $common \
    switchover_data never_two_primaries_peer fence_outdated crash_takeover tandem_stop
grep -aq 'RIG b .*ALL DONE' b.log || echo "b all_done FAIL - b did not finish" >> scenarios.txt

echo "---- scenarios (node, name, duration, takeover time)"
awk '{ t = ""; for (i = 5; i <= NF; i++) t = t " " $i
       printf "%-4s %-30s %-4s %8s%s\n", $3, $2, $1, $4, t }' scenarios.txt
n=$(wc -l < scenarios.txt); f=$(grep -c ' FAIL ' scenarios.txt || true)
if [ "$f" = 0 ]; then
    echo "PASS ($n scenario results)"
else
    echo "FAIL ($f of $n failed; logs: $W/a.log $W/b.log, tandem's log is in them)"
    exit 1
fi
