#!/bin/bash
# make vm-test: DRBD 8.4 (Debian 12's kernel) in two QEMU/TCG VMs, driven by tandem's agents.
#
#   node-a 192.0.2.1  <-- virtio-net over a 127.0.0.1 socket netdev -->  node-b 192.0.2.2
#   /dev/ttyS1        <-- chardev socket (a = server, b = client)     -->  /dev/ttyS1
#   /dev/vda (raw file) is each node's DRBD backing disk; /dev/ttyS0 is the console (a.log, b.log).
# The VMs have no other NIC: nothing reaches the host's network.
#
# Built on shared/tools/drbd-qemu-rig.sh (the reference prototype) and its pitfalls:
#  - the Debian kernel has a PVH entry point: boot the extracted vmlinux (saves ~3 s of xz under TCG);
#  - drbd 8.4 preallocates minor_count MiB at load: minor_count=4;
#  - connect-int 2 (crossed initial packets wait connect-int), fixed resync rate (c-plan-ahead 0);
#  - busybox ash runs its applets before $PATH: call real tools by full path (/sbin/mke2fs);
#  - drbdadm/drbdsetup 9.x exec drbdadm-84/drbdsetup-84 from /lib/drbd for an 8.4 module.
# drbd-utils is used in the guest only to SET UP the resource (create-md, up, the initial
# sync); every promote/demote of the scenarios is done by tandem's drbd agent over netlink.
#
# Scenarios run inside the guests as shell functions; each prints
#   SCENARIO <node> <name> PASS|FAIL <seconds>s [detail]
# on the console; this script collects them and prints a summary. Exit 0 iff all passed.
#
# Env: W (work dir, default tests/vm/build), MEM (MiB per VM), ACCEL (tcg|kvm), DISK_MB,
#      TIMEOUT (s, whole run), PNET/PSER (loopback ports), TANDEM (static tandem binary, optional),
#      AGENT_BIN (static agent runner; default: built from examples/storage_agent.rs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${W:-$ROOT/tests/vm/build}
MEM=${MEM:-160}
ACCEL=${ACCEL:-tcg}
DISK_MB=${DISK_MB:-64}
TIMEOUT=${TIMEOUT:-400}
PNET=${PNET:-$((40000 + $$ % 10000))}
PSER=$((PNET + 1))
TARGET=x86_64-unknown-linux-gnu
mkdir -p "$W"; cd "$W"
say() { echo "vm-test: $*" >&2; }

# ---------------------------------------------------------------- 1. host tools
need=""
for c in qemu-system-x86_64:qemu-system-x86 cpio:cpio depmod:kmod xz:xz-utils mke2fs:e2fsprogs gcc:gcc; do
    command -v "${c%%:*}" >/dev/null 2>&1 || need="$need ${c#*:}"
done
if [ -n "$need" ]; then
    say "installing$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# ---------------------------------------------------------------- 2. our static binaries
if [ -z "${AGENT_BIN:-}" ]; then
    say "building the static agent runner (examples/storage_agent.rs)"
    (cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release --target $TARGET \
        --example storage_agent)
    AGENT_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/examples/storage_agent
fi
file -L "$AGENT_BIN" 2>/dev/null | grep -q 'static' || { say "$AGENT_BIN is not a static binary"; exit 1; }

# ------------------------- 3. Debian packages: downloaded and unpacked, never installed
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
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
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$V" | head -1 | cut -d: -f1)
    [ -z "$off" ] || { tail -c +$((off + 1)) "$V" || true; } | xz -dc --single-stream > vmlinux-$KVER ||
        rm -f vmlinux-$KVER
fi
KIMG=vmlinux-$KVER; [ -s "$KIMG" ] || KIMG=kernel/boot/vmlinuz-$KVER

# ------------------------------------------------------------ 4. initramfs
R=$W/initramfs; rm -rf "$R"
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,lib64,var/lib/drbd,var/run/drbd,var/lock}
cp bbox/bin/busybox "$R"/bin/busybox; ln -s busybox "$R"/bin/sh
cp "$AGENT_BIN" "$R"/bin/storage_agent
[ -z "${TANDEM:-}" ] || [ ! -x "$TANDEM" ] || cp "$TANDEM" "$R"/bin/tandem

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

cat > "$R"/etc/drbd.conf <<CONF
global { usage-count no; }
resource r0 {
    net    { protocol C; connect-int 2; }
    disk   { c-plan-ahead 0; resync-rate 200M; }
    device /dev/drbd0;
    disk   /dev/vda;
    meta-disk internal;
    on node-a { address 192.0.2.1:7789; }
    on node-b { address 192.0.2.2:7789; }
}
CONF

cat > "$R"/init <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin:/lib/drbd
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for kv in $(cat /proc/cmdline); do
    case $kv in rig.node=*) NODE=${kv#*=} ;; rig.ip=*) IP=${kv#*=} ;; rig.peer=*) PEER=${kv#*=} ;; esac
done
log()  { echo "RIG $NODE $(cut -d' ' -f1 /proc/uptime) $*"; }
up()   { cut -d' ' -f1 /proc/uptime; }
finish() { dmesg | grep -E "drbd|EXT4" | sed "s/^/KMSG $NODE /"; sync; poweroff -f; }
wait_for() {  # wait_for SECONDS CMD...: poll CMD every 0.2 s
    t=$(( $1 * 5 )); shift
    until "$@" >/dev/null 2>&1; do t=$((t-1)); [ $t -gt 0 ] || return 1; usleep 200000; done
}
is() { [ "$(drbdadm $1 r0 2>/dev/null)" = "$2" ]; }
# The agent runner: `tandem agent` once main's binary has these agents, else the example.
agent() {
    if [ -x /bin/tandem ] && ! /bin/tandem agent "$1" status 2>&1 | grep -q "not implemented"; then
        /bin/tandem agent "$@" 2>&1
    else
        /bin/storage_agent "$@" 2>&1
    fi
}
# scenario NAME CMD...: runs CMD (a shell function), prints PASS/FAIL and its duration.
scenario() {
    name=$1; shift; t0=$(up)
    if out=$("$@" 2>&1); then res=PASS; else res=FAIL; fi
    dt=$(awk -v a=$t0 -v b=$(up) 'BEGIN{printf "%.2f", b-a}')
    echo "$out" | sed "s/^/RIG $NODE   $name: /"
    echo "SCENARIO $NODE $name $res ${dt}s"
}
send() { for i in 1 2 3 4 5 6 7 8 9 10; do echo "$1" | nc $PEER 5555 && return 0; sleep 1; done; return 1; }
recv() { timeout ${2:-200} nc -l -p 5555 > /tmp/msg; grep -qx "$1" /tmp/msg; }

KVER=$(uname -r)
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
        -append "console=ttyS0 quiet panic=-1 rig.node=$1 rig.ip=$2 rig.peer=$3" \
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
alone=
while :; do
    s=$(since $T0); s=${s%.*}
    kill -0 $PA 2>/dev/null || kill -0 $PB 2>/dev/null || break
    if ! kill -0 $PA 2>/dev/null || ! kill -0 $PB 2>/dev/null; then
        alone=${alone:-$s}
        [ $((s - alone)) -lt 30 ] || { say "one VM gone, stopping the other"; kill $PA $PB 2>/dev/null || true; }
    fi
    [ "$s" -lt "$TIMEOUT" ] || { say "timeout after ${TIMEOUT}s"; kill $PA $PB 2>/dev/null || true; break; }
    sleep 0.5
done
trap - EXIT
say "whole run $(since $T0)s"

# ------------------------------------------------------------ 6. verdict
grep -h '^RIG' a.log b.log | tr -d '\r' >&2 || true
echo "---- scenarios"
grep -h '^SCENARIO' a.log b.log | tr -d '\r' | sed 's/^SCENARIO //' | tee scenarios.txt
n=$(wc -l < scenarios.txt); f=$(grep -c ' FAIL ' scenarios.txt || true)
want=$(grep -c '^ *scenario ' "$ROOT"/tests/vm/scenarios.sh || true)
if [ "$n" -gt 0 ] && [ "$f" = 0 ] && grep -q 'RIG a .*ALL DONE' a.log && grep -q 'RIG b .*ALL DONE' b.log; then
    echo "PASS ($n scenario results)"
else
    echo "FAIL ($f failed of $n; $want scenario lines in the script; logs: $W/a.log $W/b.log)"
    exit 1
fi
