#!/bin/bash
# make vm-test: DRBD 8.4 (Debian 12's kernel) in two QEMU/TCG VMs: tandem's agents by hand,
# then the tandem daemon on both nodes (started by init/tandem) moving three groups:
#   web  ip + drbd r0 + mount (ext4) + httpd
#   vol  ip + drbd r1 + lvm (real LVM: a volume group on the DRBD device) + mount + httpd
#   box  ip + drbd r2 + mount + guest (busybox init, httpd, crond, syslogd; cgroup v2 limits)
# through a planned switch-over, a refused second primary, a hanging vgchange, a racing
# takeover, DRBD's fence-peer handler over the serial link, and a crash of the holder (this
# script kills its QEMU while it appends fsync'd records; the survivor takes over).
#
#   node-a 192.0.2.1  <-- virtio-net over 127.0.0.1 UDP (socket netdev) -->  node-b 192.0.2.2
#   /dev/ttyS1        <-- chardev socket (a = server, b = client)     -->  /dev/ttyS1
#   /dev/vda, vdb, vdc (raw files) are each node's DRBD backing disks (r0, r1, r2);
#   /dev/ttyS0 is the console (a.log, b.log).
# The VMs have no other NIC: nothing reaches the host's network.
#
# What the rig must get right under TCG:
#  - the Debian kernel has a PVH entry point: boot the extracted vmlinux (saves ~3 s of xz under TCG);
#  - drbd 8.4 preallocates minor_count MiB at load: minor_count=4;
#  - connect-int 2 (crossed initial packets wait connect-int), fixed resync rate (c-plan-ahead 0);
#  - busybox ash runs its applets before $PATH: call real tools by full path (/sbin/mke2fs);
#  - drbdadm/drbdsetup 9.x exec drbdadm-84/drbdsetup-84 from /lib/drbd for an 8.4 module;
#  - lvm2 has no static build in Debian 12: /sbin/lvm and its shared libraries are copied
#    from the downloaded packages; LVM runs without udev (tests/vm/rootfs/etc/lvm/lvm.conf).
# drbd-utils and LVM's tools are used in the VMs only to SET UP (create-md, up, the initial
# sync, pvcreate...) and to look; every promote/demote and (de)activation of the scenarios
# is done by tandem.
#
# Layout: tests/vm/init is the VMs' /init; tests/vm/lib.sh their helpers; tests/vm/acts/*.sh
# the scenarios, sourced in order by both VMs (each act file lists the scenarios it must
# report in `# expect NODE NAME...` lines; `# quick: skip` acts are left out by QUICK=1;
# `# boot: N` acts run only in a VM's Nth boot, default 1);
# tests/vm/rootfs/ is copied over the initramfs (configuration, the guest's files).
# Each scenario prints `SCENARIO <node> <name> PASS|FAIL <seconds>s [takeover=<seconds>]`
# on the console. A VM asks this script for what only the host can do with a console line
# `HOST-REQ VERB ARG...` (host_req_VERB below: crash, boot). This script prints one line
# per scenario, PASS/FAIL, and exits 0 iff all passed.
#
# Env: W (work dir, default tests/vm/build), MEM (MiB per VM), ACCEL (tcg|kvm), DISK_MB,
#      TIMEOUT (s, whole run), QUICK=1 (skip the agent scenarios), KEEP_GOING=1 (do not stop
#      15 s after a failure), PNET (first of three loopback ports), TANDEM (static tandem binary;
#      default: built here), PROBE_BIN, WRITER_BIN (static examples/drbd_probe.rs,
#      examples/vm_writer.rs; default: built here). Everything downloaded or built goes under $W.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMDIR=$ROOT/tests/vm
W=${W:-$VMDIR/build}
MEM=${MEM:-256}
ACCEL=${ACCEL:-tcg}
DISK_MB=${DISK_MB:-64}
TIMEOUT=${TIMEOUT:-900}
PNET=${PNET:-$((40000 + $$ % 10000))}
PSER=$((PNET + 1)) PNET_B=$((PNET + 2))
TARGET=x86_64-unknown-linux-gnu
mkdir -p "$W"; cd "$W"
say() { echo "vm-test: $*" >&2; }
now()   { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
T_START=$(now)

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
fetch() {  # fetch DIR PACKAGE...: the packages unpacked into DIR (once)
    local dir=$1 p; shift
    [ -f "$dir/.done" ] && return 0
    rm -rf "$dir"
    for p in "$@"; do
        say "fetching $p"
        ls "$p"_*.deb >/dev/null 2>&1 || apt-get download -qq "$p" 2>/dev/null ||
            { apt-get update -qq; apt-get download -qq "$p"; }
        dpkg -x "$(ls "$p"_*.deb | head -1)" "$dir"
    done
    touch "$dir/.done"
}
fetch kernel "$KPKG"
[ -f kernel/lib/modules/$KVER/modules.dep ] || depmod -b kernel "$KVER"   # the .deb ships none
fetch utils drbd-utils
fetch bbox busybox-static
# LVM: the tool and the libraries that a minimal host may not have (the rest, libc,
# libudev, libsystemd..., come from the host, which is Debian 12 like the packages)
fetch lvm lvm2 dmsetup libdevmapper1.02.1 libdevmapper-event1.02.1 libaio1 libedit2
if [ ! -s vmlinux-$KVER ]; then   # PVH: QEMU boots the uncompressed vmlinux directly
    V=kernel/boot/vmlinuz-$KVER
    off=$({ LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$V" || true; } | head -1 | cut -d: -f1)
    [ -z "$off" ] || { tail -c +$((off + 1)) "$V" || true; } | xz -dc --single-stream > vmlinux-$KVER ||
        rm -f vmlinux-$KVER
fi
KIMG=vmlinux-$KVER; [ -s "$KIMG" ] || KIMG=kernel/boot/vmlinuz-$KVER

# ------------------------------------------------------------ 4. initramfs
R=$W/initramfs; rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/sbin,etc/tandem,etc/init.d,etc/default,proc,sys,dev,tmp,mnt,data,vol,box,run}
mkdir -p "$R"/{lib64,var/lib/drbd,var/run/drbd,var/lock,var/lib/tandem,var/log,rig}
cp bbox/bin/busybox "$R"/bin/busybox; ln -s busybox "$R"/bin/sh
cp "$PROBE_BIN" "$R"/bin/drbd_probe
cp "$WRITER_BIN" "$R"/bin/vm_writer
cp "$TANDEM" "$R"/usr/sbin/tandem
ln -s /usr/sbin/tandem "$R"/sbin/tandem; ln -s /usr/sbin/tandem "$R"/bin/tandem

for m in virtio_pci virtio_blk virtio_net drbd ext4 dm_mod; do
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
grep -q dm-mod.ko "$R"/etc/rig-modules || { say "no dm-mod.ko in $KPKG"; exit 1; }

LIBS=$W/lvm/lib/x86_64-linux-gnu:$W/lvm/usr/lib/x86_64-linux-gnu
copy_bin() {  # copy_bin SRC DEST: a dynamic binary and the libraries ldd names
    mkdir -p "$R$(dirname "$2")"; cp "$1" "$R$2"
    local deps; deps=$(LD_LIBRARY_PATH=$LIBS ldd "$1" 2>&1) || { say "ldd $1: $deps"; exit 1; }
    if echo "$deps" | grep -q 'not found'; then say "$1: $(echo "$deps" | grep 'not found')"; exit 1; fi
    echo "$deps" | grep -o '/[^ ]*' | while read -r lib; do
        dest=$lib; case $lib in "$W"/lvm/*) dest=/${lib#"$W"/lvm/} ;; esac
        [ -e "$R$dest" ] || { mkdir -p "$R$(dirname "$dest")"; cp -L "$lib" "$R$dest"; }
    done
}
for b in sbin/drbdadm sbin/drbdsetup sbin/drbdmeta lib/drbd/drbdadm-84 lib/drbd/drbdsetup-84; do
    copy_bin "utils/$b" "/$b"
done
copy_bin "$(command -v mke2fs)" /sbin/mke2fs
cp /etc/mke2fs.conf "$R"/etc/
copy_bin lvm/sbin/lvm /sbin/lvm
copy_bin lvm/sbin/dmsetup /sbin/dmsetup
ln -s lvm "$R"/sbin/vgchange

# ---- the rig's files (configuration, the guest's), the VMs' /init, helpers and acts
cp -a "$VMDIR"/rootfs/. "$R"/
cp "$VMDIR"/init "$R"/init; chmod +x "$R"/init
cp "$VMDIR"/lib.sh "$R"/rig/lib.sh
mkdir -p "$R"/rig/acts; cp "$VMDIR"/acts/*.sh "$R"/rig/acts/
# tandem: the same files on both nodes, started by the LSB init script
cp "$ROOT"/init/tandem "$R"/etc/init.d/tandem
cat > "$R"/etc/default/tandem <<'DEF'
TANDEM=/usr/sbin/tandem
CONFIG=/etc/tandem/tandem.conf
DEF
rm -f "$W"/authkey; "$TANDEM" keygen "$W"/authkey >/dev/null; cp -p "$W"/authkey "$R"/etc/tandem/authkey
chmod 600 "$R"/etc/tandem/tandem.conf

(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > initrd.gz
say "initramfs $(du -h initrd.gz | cut -f1) ($(du -sh "$R" | cut -f1) unpacked) for $KVER"

# ------------------------------------------------------------ 5. the VMs
CPU=max; [ "$ACCEL" = kvm ] && CPU=host
declare -A VM_PID VM_ARGS VM_BOOTS
# vm_boot NAME IP PEER NETDEV MAC TTYS1-OPTS: starts the VM (again: same disks, its console
# log appended, rig.boot one more, which the acts see as $BOOT), records its pid
vm_boot() {
    local n=$1
    VM_ARGS[$n]="$*"; VM_BOOTS[$n]=$(( ${VM_BOOTS[$n]:-0} + 1 ))
    qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
        -accel "$ACCEL" -cpu $CPU -smp 1 -m "$MEM" -kernel "$KIMG" -initrd initrd.gz \
        -append "console=ttyS0 quiet panic=-1 rig.node=$1 rig.ip=$2 rig.peer=$3 rig.quick=${QUICK:-} rig.boot=${VM_BOOTS[$n]}" \
        -drive file=disk-$1.img,format=raw,if=virtio,cache=unsafe \
        -drive file=disk-$1-r1.img,format=raw,if=virtio,cache=unsafe \
        -drive file=disk-$1-r2.img,format=raw,if=virtio,cache=unsafe \
        -netdev socket,id=n0,$4 -device virtio-net-pci,netdev=n0,mac=52:54:00:99:00:0$5 \
        -chardev file,id=c0,path=$1.log,append=on -serial chardev:c0 \
        -chardev socket,id=s1,host=127.0.0.1,port=$PSER,$6 -serial chardev:s1 \
        >>$1.qemu.log 2>&1 &
    VM_PID[$n]=$!
}
vm_alive() { [ -n "${VM_PID[$1]:-}" ] && kill -0 "${VM_PID[$1]}" 2>/dev/null; }
vm_kill() {  # vm_kill NAME: power off at once (SIGKILL to its QEMU)
    vm_alive "$1" || return 0
    kill -9 "${VM_PID[$1]}"; wait "${VM_PID[$1]}" 2>/dev/null || true
}
vm_kill_all() { local n; for n in a b; do vm_alive $n && kill "${VM_PID[$n]}" 2>/dev/null; done; true; }

rm -f disk-*.img a.log b.log a.qemu.log b.qemu.log host-*.txt
for n in a b; do truncate -s ${DISK_MB}M disk-$n.img disk-$n-r1.img disk-$n-r2.img; done
T0=$(now)
# The NICs are joined by UDP datagrams (not a TCP stream): a VM powered off and on again
# is joined at once. ttyS1: a listens, b reconnects every second.
vm_boot a 192.0.2.1 192.0.2.2 udp=127.0.0.1:$PNET_B,localaddr=127.0.0.1:$PNET 1 server=on,wait=off
trap 'vm_kill_all' EXIT
for i in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$PSER " && break; sleep 0.1; done
vm_boot b 192.0.2.2 192.0.2.1 udp=127.0.0.1:$PNET,localaddr=127.0.0.1:$PNET_B 2 reconnect=1
say "qemu a=${VM_PID[a]} b=${VM_PID[b]} ($ACCEL, $MEM MiB each), ports $PNET-$PNET_B"

# ---- what the VMs ask of the host: `HOST-REQ VERB ARG...` on a console -> host_req_VERB ARG...
# Long requests keep state and are moved on by host_poll (every loop turn); results go to
# host-*.txt for the verdict.
declare -A REQS_SEEN=([a]=0 [b]=0)
# acks NODE LABEL: the last `ACK LABEL n` on NODE's console
acks() { { grep -a -o "^ACK $2 [0-9]*" "$1.log" || true; } | tail -1 | cut -d' ' -f3; }
# crash NODE LABEL=MIN...: kill NODE's QEMU once its console shows MIN acknowledgements of
# every LABEL (or 20 s after the request); records the last ACK of each label and the time.
CRASH_NODE= CRASH_WANT= CRASH_AT= TKILL=
host_req_crash() {
    CRASH_NODE=$1; shift; CRASH_WANT="$*"; CRASH_AT=$(now)
    say "node $CRASH_NODE asks to be killed after ${CRASH_WANT:-nothing}"
}
# boot NODE: power NODE on again after a kill (the acts see rig.boot=2 as BOOT=2)
host_req_boot() { vm_alive "$1" || { say "booting node $1 again"; vm_boot ${VM_ARGS[$1]}; }; }
host_poll_crash() {
    [ -n "$CRASH_NODE" ] && [ -z "$TKILL" ] || return 0
    local ready=1 kv n
    for kv in $CRASH_WANT; do
        n=$(acks $CRASH_NODE "${kv%=*}"); [ "${n:-0}" -ge "${kv#*=}" ] || ready=0
    done
    [ $ready = 1 ] || [ "$(since "$CRASH_AT" | cut -d. -f1)" -ge 20 ] || return 0
    vm_kill $CRASH_NODE; TKILL=$(now)
    : > host-acked.txt
    for kv in $CRASH_WANT; do echo "${kv%=*} $(acks $CRASH_NODE "${kv%=*}")" >> host-acked.txt; done
    say "killed node $CRASH_NODE (qemu) after: $(tr '\n' ' ' < host-acked.txt)"
}
# takeover times: from the kill to each `TAKEOVER-DONE GROUP` on the survivor's console
host_poll_takeover() {
    [ -n "$TKILL" ] || return 0
    local g
    for g in $(grep -a -o 'TAKEOVER-DONE [a-z]*' a.log b.log 2>/dev/null | awk '{print $2}'); do
        grep -q "^$g " host-takeover.txt 2>/dev/null && continue
        echo "$g $(since "$TKILL")" >> host-takeover.txt; say "$g answered from the survivor $(since "$TKILL")s after the kill"
    done
}
host_reqs() {
    local n lines total verb
    for n in a b; do
        [ -f $n.log ] || continue
        total=$(grep -a -c '^HOST-REQ ' $n.log || true)
        [ "$total" -gt "${REQS_SEEN[$n]}" ] || continue
        lines=$(grep -a '^HOST-REQ ' $n.log | tr -d '\r' | tail -n +$((REQS_SEEN[$n] + 1)))
        REQS_SEEN[$n]=$total
        while read -r _ verb args; do
            if declare -F host_req_$verb >/dev/null; then host_req_$verb $args
            else say "node $n asks for an unknown $verb"; fi
        done <<< "$lines"
    done
}

# ---- the loop: until both VMs are off, the time is up, or (unless KEEP_GOING) 15 s after
# a failure. A VM alone (the other killed or gone) gets 30 s, or 240 s after a crash.
alone= failed=
while :; do
    s=$(since $T0); s=${s%.*}
    host_reqs; host_poll_crash; host_poll_takeover
    vm_alive a || vm_alive b || break
    if ! vm_alive a || ! vm_alive b; then
        alone=${alone:-$s}
        lim=30; [ -z "$TKILL" ] || lim=240
        [ $((s - alone)) -lt $lim ] || { say "one VM gone, stopping the other"; vm_kill_all; }
    else
        alone=
    fi
    [ "$s" -lt "$TIMEOUT" ] || { say "timeout after ${TIMEOUT}s"; vm_kill_all; break; }
    if [ -z "${KEEP_GOING:-}" ] && grep -aq '^SCENARIO .* FAIL' a.log b.log 2>/dev/null; then
        failed=${failed:-$s}
        [ $((s - failed)) -lt 15 ] || { say "a scenario failed: stopping the VMs"; vm_kill_all; break; }
    fi
    if [ -n "$CRASH_NODE" ] && [ "$(wc -l < host-takeover.txt 2>/dev/null || echo 0)" -lt 3 ]; then
        sleep 0.1; else sleep 0.5; fi
done
trap - EXIT
T_VMS=$(since $T0)
say "VMs ran ${T_VMS}s"

# ------------------------------------------------------------ 6. verdict
grep -ah '^RIG' a.log b.log | tr -d '\r' >&2 || true
grep -ah '^SCENARIO' a.log b.log | tr -d '\r' | sed 's/^SCENARIO //' > scenarios.txt || true
# the crash, judged here: every record (line) acknowledged by a is on b, intact
verify() { { grep -a "CRASH-VERIFY $1 " b.log || true; } | tr -d '\r' | tail -1; }
field() { echo "$1" | sed -n "s/.* $2 \([0-9]*\).*/\1/p"; }
judge_crash() {  # judge_crash NAME LABEL GROUP [EXTRA-CHECK]
    local name=$1 label=$2 group=$3 v found bad acked took detail ok=1
    v=$(verify $label); found=$(field "$v" FOUND); bad=$(field "$v" BAD)
    acked=$(awk -v l=$label '$1 == l { print $2 }' host-acked.txt 2>/dev/null)
    took=$(awk -v g=$group '$1 == g { print $2 }' host-takeover.txt 2>/dev/null)
    detail="found=${found:-none} acked=${acked:-none} bad=${bad:-?}"
    [ -z "${4:-}" ] || detail="$detail new=$(field "$v" NEW)"
    [ -n "$took" ] && [ -n "$found" ] && [ "${acked:-0}" -gt 0 ] && [ "$found" -ge "$acked" ] &&
        [ "$bad" = 0 ] || ok=0
    [ -z "${4:-}" ] || [ "$(field "$v" NEW)" -gt 0 ] 2>/dev/null || ok=0
    if [ $ok = 1 ]; then echo "host $name PASS ${took}s $detail takeover=$took" >> scenarios.txt
    else echo "host $name FAIL - $detail takeover=${took:-none}" >> scenarios.txt; fi
}
if [ -n "$TKILL" ]; then
    judge_crash crash_failover data web
    judge_crash crash_failover_lvm vol vol
    judge_crash crash_failover_guest tick box new
else
    for x in crash_failover crash_failover_lvm crash_failover_guest; do
        echo "host $x FAIL - node a never asked to be killed" >> scenarios.txt
    done
fi
# Every scenario the acts name must have reported (a hung VM reports nothing).
for act in "$VMDIR"/acts/*.sh; do
    if [ -n "${QUICK:-}" ] && grep -q '^# quick: skip' "$act"; then continue; fi
    grep '^# expect [ab] ' "$act" | while read -r _ _ n names; do
        for x in $names; do
            grep -q "^$n $x " scenarios.txt || echo "$n $x FAIL - never reported" >> scenarios.txt
        done
    done
done
for n in a b; do   # (a's last boot)
    grep -aq "RIG $n .*ALL DONE" $n.log || echo "$n all_done FAIL - $n did not finish" >> scenarios.txt
done

echo "---- scenarios (node, name, duration, takeover time)"
awk '{ t = ""; for (i = 5; i <= NF; i++) t = t " " $i
       printf "%-4s %-30s %-4s %8s%s\n", $3, $2, $1, $4, t }' scenarios.txt
n=$(wc -l < scenarios.txt); f=$(grep -c ' FAIL ' scenarios.txt || true)
say "whole run $(since $T_START)s (the VMs ${T_VMS}s)"
if [ "$f" = 0 ]; then
    echo "PASS ($n scenario results)"
else
    echo "FAIL ($f of $n failed; logs: $W/a.log $W/b.log, tandem's log is in them)"
    exit 1
fi
