#!/bin/bash
# make vm-test: DRBD 8.4 (Debian 12's kernel) in two QEMU/TCG VMs running tandem. Suites
# (tests/vm/suite-NAME.sh, each a fresh pair of VMs; VM_SUITE picks, default "main fence"):
#  main   tandem's agents by hand, then the daemon on both nodes (started by init/tandem)
#         moving three groups:
#           web  ip + drbd r0 + mount (ext4) + httpd
#           vol  ip + drbd r1 + lvm (real LVM: a volume group on the DRBD device) + mount + httpd
#           box  ip + drbd r2 + mount + guest (busybox init, httpd, crond, syslogd; cgroup v2 limits)
#         through a planned switch-over, a refused second primary, a hanging vgchange, a racing
#         takeover, DRBD's fence-peer handler over the serial link, and a crash of the holder
#         (the host kills its QEMU while it appends fsync'd records; the survivor takes over);
#         then a cluster run from heartbeat's /etc/ha.d (act 95: the file server's set of
#         tests/fixtures/hacompat, drbddisk + Filesystem + IPaddr over serial and bcast):
#         start, hb_standby, a crash of the holder, its rejoin.
#  fence  fencing for real: each VM's power is an IPMI BMC (OpenIPMI's ipmi_sim on a
#         management network in a network namespace), DRBD with `fencing resource-and-stonith`;
#         the host cuts the heartbeat and replication paths and the holder powers the other
#         off; then watchdog self-fencing with QEMU's i6300esb: a frozen daemon, partitions
#         decided by a ping target, a clean stop (tests/vm/suite-fence.sh).
#  wdbench (only on request: VM_SUITE=wdbench; `make bench PHASE=watchdog` runs it) the fence
#         suite's rig (tests/vm/fence-rig.sh) timing frozen-holder failovers with the
#         watchdog at several TIMEOUTs and with IPMI (tests/vm/suite-wdbench.sh).
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
# Layout: tests/vm/init is the VMs' /init; tests/vm/lib.sh their helpers; the acts of a suite
# (tests/vm/acts/*.sh for main, acts-fence/) are sourced in order by both VMs
# (each act file lists the scenarios it must report in `# expect NODE NAME...` lines;
# `# quick: skip` acts are left out by QUICK=1; `# boot: N` acts run only in a VM's Nth
# boot, default 1; `# boot: N+` from the Nth on); tests/vm/rootfs/ is copied over the
# initramfs (configuration, the guest's files). tests/vm/host.sh holds the host's side
# (booting, the loop, the verdict).
# Each scenario prints `SCENARIO <node> <name> PASS|FAIL <seconds>s [details]` on the
# console. A VM asks the host for what only the host can do with a console line
# `HOST-REQ VERB ARG...` (host_req_VERB in the suite's file: crash, boot, cut, heal, power...).
# Each suite prints one line per scenario and PASS/FAIL; the script exits 0 iff all passed.
#
# Adding a scenario: a function in an act file, run by `scenario NAME FUNC` (lib.sh) and
# named in an `# expect NODE NAME` line; a new host verb: a host_req_VERB function in the
# suite's file (state moved on by its suite_poll, results in host-*.txt for the verdict).
#
# Env: W (work dir, default tests/vm/build), VM_SUITE (suites to run, default "main fence"),
#      MEM (MiB per VM), ACCEL (tcg|kvm), DISK_MB, TIMEOUT (s, per
#      suite), QUICK=1 (skip the agent scenarios), KEEP_GOING=1 (do not stop 15 s after a
#      failure), PNET (first of three loopback ports of the main suite), TANDEM (static
#      tandem binary; default: built here), PROBE_BIN, WRITER_BIN (static
#      examples/drbd_probe.rs, examples/vm_writer.rs; default: built here).
#      Everything downloaded or built goes under $W.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMDIR=$ROOT/tests/vm
W=${W:-$VMDIR/build}
MEM=${MEM:-256}
ACCEL=${ACCEL:-tcg}
DISK_MB=${DISK_MB:-64}
TIMEOUT=${TIMEOUT:-900}
SUITES=${VM_SUITE:-main fence}
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
KIMG=$W/vmlinux-$KVER; [ -s "$KIMG" ] || KIMG=$W/kernel/boot/vmlinuz-$KVER

# ------------------------------------------------------------ 4. initramfs
R=$W/initramfs; rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/sbin,etc/tandem,etc/init.d,etc/default,proc,sys,dev,tmp,mnt,data,vol,box,run}
mkdir -p "$R"/{lib64,var/lib/drbd,var/run/drbd,var/lock,var/lib/tandem,var/log,rig}
cp bbox/bin/busybox "$R"/bin/busybox; ln -s busybox "$R"/bin/sh
cp "$PROBE_BIN" "$R"/bin/drbd_probe
cp "$WRITER_BIN" "$R"/bin/vm_writer
cp "$TANDEM" "$R"/usr/sbin/tandem
ln -s /usr/sbin/tandem "$R"/sbin/tandem; ln -s /usr/sbin/tandem "$R"/bin/tandem
for c in hb_standby hb_takeover cl_status; do ln -s tandem "$R"/usr/sbin/$c; done   # as HB_LINKS=1 installs them

for m in virtio_pci virtio_blk virtio_net drbd ext4 dm_mod i6300esb; do
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
grep -q i6300esb.ko "$R"/etc/rig-modules || { say "no i6300esb.ko in $KPKG"; exit 1; }

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
# heartbeat's files of the heartbeat-compatibility fixtures (act 95 runs a cluster from them)
mkdir -p "$R"/rig/hacompat; cp -a "$ROOT"/tests/fixtures/hacompat/serial-drbd "$R"/rig/hacompat/
for d in "$VMDIR"/acts*/; do d=${d%/}; mkdir -p "$R/rig/${d##*/}"; cp "$d"/*.sh "$R/rig/${d##*/}/"; done
# tandem: the same files on both nodes, started by the LSB init script
cp "$ROOT"/init/tandem "$R"/etc/init.d/tandem
cat > "$R"/etc/default/tandem <<'DEF'
TANDEM=/usr/sbin/tandem
CONFIG=/etc/tandem/tandem.conf
DEF
rm -f "$W"/authkey; "$TANDEM" keygen "$W"/authkey >/dev/null; cp -p "$W"/authkey "$R"/etc/tandem/authkey
# the BMCs' password (suite fence): root's, mode 0600, as tandem requires
printf 's3cret\n' > "$R"/etc/tandem/bmc.pw
chmod 600 "$R"/etc/tandem/*.conf "$R"/etc/tandem/bmc.pw

(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > initrd.gz
say "initramfs $(du -h initrd.gz | cut -f1) ($(du -sh "$R" | cut -f1) unpacked) for $KVER"


# ------------------------------------------------------------ 5. the suites
CPU=max; [ "$ACCEL" = kvm ] && CPU=host
. "$VMDIR"/host.sh
rc=0
declare -A SUITE_TIME
for SUITE in $SUITES; do
    [ -f "$VMDIR/suite-$SUITE.sh" ] || { say "no suite $SUITE"; rc=1; continue; }
    mkdir -p "$W/$SUITE"
    t=$(now)
    # each suite in a subshell of its own, in its own directory: its traps clean up after it
    ( cd "$W/$SUITE" && . "$VMDIR/suite-$SUITE.sh" ) || rc=1
    SUITE_TIME[$SUITE]=$(since "$t")
done
for SUITE in $SUITES; do say "suite $SUITE: ${SUITE_TIME[$SUITE]:-?}s"; done
say "whole run $(since "$T_START")s"
if [ $rc = 0 ]; then echo "PASS ($SUITES)"; else echo "FAIL (logs under $W)"; fi
exit $rc
