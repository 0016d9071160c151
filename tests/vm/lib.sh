# Helpers of the rig's VMs, sourced by /init (tests/vm/init) before the acts. busybox ash.
# Set by /init: NODE (a|b), IP, PEER (the other VM's address), QUICK, KVER, BOOT (1, then
# 2... when the host boots the VM again on the same disks: HOST-REQ boot).
#
# A scenario is a shell function whose exit status is its verdict; `scenario NAME FUNC`
# runs it and prints on the console
#   SCENARIO <node> <name> PASS|FAIL <seconds>s [takeover=<seconds>]
# (its output goes to the console too, prefixed; a line `takeover=S` it prints is shown in
# the summary). The host (tests/vm/run.sh) collects these lines; each act file lists the
# scenarios it must report in `# expect NODE NAME...` lines.
#
# The host acts on console lines `HOST-REQ VERB ARG...` (see run.sh: crash NODE ...).
# The two VMs talk over eth0: `send MSG` / `recv MSG [TIMEOUT]` (nc on port 5555).
# busybox ash runs its applets before $PATH: call the real tools by full path (/sbin/mke2fs).

log()  { echo "RIG $NODE $(cut -d' ' -f1 /proc/uptime) $*"; }
up()   { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN{printf "%.2f", b-a}'; }
finish() {
    log "MemAvailable $(awk '/^MemAvailable/ { print int($2 / 1024) }' /proc/meminfo) MiB of $(awk '/^MemTotal/ { print int($2 / 1024) }' /proc/meminfo)"
    dmesg | grep -E "drbd|EXT4|device-mapper|Memory cgroup|oom" | sed "s/^/KMSG $NODE /"
    [ ! -r /var/log/tandem.log ] || sed "s/^/TLOG $NODE /" /var/log/tandem.log
    sync; poweroff -f
}
wait_for() {  # wait_for SECONDS CMD...: poll CMD every 0.2 s
    t=$(( $1 * 5 )); shift
    until "$@" >/dev/null 2>&1; do t=$((t-1)); [ $t -gt 0 ] || return 1; usleep 200000; done
}
wait_until() {  # wait_until SECONDS CMD...: like wait_for, polling every 0.1 s
    t=$(( $1 * 10 )); shift
    until "$@" >/dev/null 2>&1; do t=$((t-1)); [ $t -gt 0 ] || return 1; usleep 100000; done
}
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
host_req() { echo "HOST-REQ $*" > /dev/console; }
send() {   # the peer has 30 s to be listening
    i=0; until echo "$1" | nc $PEER 5555; do i=$((i+1)); [ $i -lt 30 ] || return 1; sleep 1; done
}
recv() { timeout ${2:-200} nc -l -p 5555 > /tmp/msg; grep -qx "$1" /tmp/msg; }
recv_any() { timeout ${1:-200} nc -l -p 5555 > /tmp/msg; cat /tmp/msg; }

# ---- DRBD (drbd-utils for set-up and looks only; tandem does every role change)
is() { [ "$(drbdadm $1 ${3:-r0} 2>/dev/null)" = "$2" ]; }   # is cstate Connected [RES]
agent() { /bin/tandem agent "$@" 2>&1; }   # one resource agent, once
minor_state() { grep " ${1:-0}: cs:" /proc/drbd | sed 's/^ *//'; }   # minor_state [MINOR]
drbd_state() { minor_state 0; }
# drbd_has PATTERN [MINOR]: /proc/drbd's line of MINOR (default 0) shows PATTERN
drbd_has() { minor_state "${2:-0}" | grep -q "$1"; }
# every configured minor shows PATTERN
drbd_all() { for m in $MINORS; do drbd_has "$1" $m || return 1; done; }
MINORS=0

# ---- the daemon and its groups
TLOG=/var/log/tandem.log
VIP=192.0.2.100
# The body of GET / from ADDR:80 (busybox's static wget crashes on name lookup).
svc_at() { printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc -w 2 $1 80 2>/dev/null | tail -1; }
svc() { svc_at $VIP; }
svc_is() { [ "$(svc)" = "$1" ]; }
svc_at_is() { [ "$(svc_at $1)" = "$2" ]; }
mounted() { grep -q " ${1:-/data} " /proc/mounts; }
has_addr() { ip -4 addr show dev eth0 | grep -q " $1/"; }
has_vip() { has_addr $VIP; }
# group_has GROUP NODE STATE: tandem's JSON shows GROUP owned by NODE in STATE
group_has() { tandem status --json 2>/dev/null | grep -q "\"name\":\"$1\",[^}]*\"owner\":\"$2\",\"state\":\"$3\""; }
status_has() { group_has web "$1" "$2"; }
peer_up() { tandem status --json 2>/dev/null | grep -q '"peers":\[{"name":"[^"]*","state":"up"'; }
local_state() {
    echo "drbd: $(drbd_state)"
    echo "mounted=$(mounted && echo yes || echo no) vip=$(has_vip && echo yes || echo no) service=$(svc)"
}
diag() {
    ps w | grep -v ']$'; netstat -ltn; ip -4 addr show dev eth0; ls -la /data /data/www
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc -w 2 $VIP 80 2>&1
}
# log_order PATTERN...: each PATTERN matches a line of tandem's log after the previous
# one's (the last occurrence of the sequence is not required: the first is enough)
log_order() {
    awk -v n=$# 'BEGIN { for (i = 1; i < ARGC; i++) p[i] = ARGV[i]; ARGC = 1; k = 1 }
        k <= n && index($0, p[k]) { k++ } END { exit k <= n }' "$@" < $TLOG
}
# log_order_since LINE PATTERN...: as log_order, in the log after its first LINE lines
log_order_since() {
    s=$1; shift
    tail -n +$((s + 1)) $TLOG | awk -v n=$# 'BEGIN { for (i = 1; i < ARGC; i++) p[i] = ARGV[i]; ARGC = 1; k = 1 }
        k <= n && index($0, p[k]) { k++ } END { exit k <= n }' "$@"
}
log_lines() { { wc -l < $TLOG; } 2>/dev/null || echo 0; }

# ---- LVM: the volume group vgrig on DRBD r1 (/dev/drbd1), its LV lv0 mounted on /vol
VG=vgrig
lvm() { /sbin/lvm "$@"; }
dm_names() { for d in /sys/block/dm-*/dm/name; do [ -r "$d" ] && cat "$d"; done; }
# lv_active: device-mapper has vgrig-lv0, LVM reports it active (attr 5 = a)
lv_active() {
    dm_names | grep -qx "$VG-lv0" && [ -b /dev/$VG/lv0 ] &&
        lvm lvs --noheadings -o lv_attr $VG/lv0 2>/dev/null | grep -q '^ *....a'
}
# lv_gone: no device-mapper device at all, no /dev/vgrig
lv_gone() { [ -z "$(dm_names)" ] && [ ! -e /dev/$VG ] && [ -z "$(/sbin/dmsetup ls 2>/dev/null | grep -v 'No devices')" ]; }
lvm_state() {
    echo "drbd1: $(minor_state 1)"
    echo "dm: $(dm_names | tr '\n' ' ') dmsetup: $(/sbin/dmsetup ls 2>&1 | tr '\n' ' ')"
    echo "lvs: $(lvm lvs --noheadings -o vg_name,lv_name,lv_attr 2>&1 | tr -s ' \n' '  ')"
    echo "vol mounted=$(mounted /vol && echo yes || echo no) addr=$(has_addr 192.0.2.101 && echo yes || echo no) service=$(svc_at 192.0.2.101)"
}
lvm_held() {  # this node holds group vol: DRBD r1 Primary, LV active, mounted, served
    drbd_has ro:Primary 1 && lv_active && mounted /vol && has_addr 192.0.2.101 &&
        svc_at_is 192.0.2.101 "vol node-$NODE"
}
lvm_released() {  # nothing of group vol here
    drbd_has ro:Secondary 1 && lv_gone && ! mounted /vol && ! has_addr 192.0.2.101
}

# ---- the guest box: root /box/root on DRBD r2 (/dev/drbd2), its httpd on 192.0.2.102
GVIP=192.0.2.102
GCG=/sys/fs/cgroup/tandem/box
guest_running() { tandem guest list 2>/dev/null | grep -q '^box  *running'; }
guest_init() { tandem guest list 2>/dev/null | awk '$1 == "box" && $2 == "running" { print $3 }'; }
# guest_serves NODE: the guest's httpd answers with the address of NODE's eth0
guest_serves() { svc_at_is $GVIP "box 192.0.2.$(node_no $1)"; }
node_no() { case $1 in a) echo 1 ;; b) echo 2 ;; esac; }
# guest_procs: pids of the guest's processes seen from here: in its cgroup, or in a mount
# namespace other than this init's (only guests make them in the rig; kernel threads such
# as kdevtmpfs, with an empty command line, are not counted)
guest_procs() {
    ns=$(readlink /proc/1/ns/mnt)
    { grep -l 'tandem/box' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3
      ls -l /proc/[0-9]*/ns/mnt 2>/dev/null | awk -v ns="$ns" '$NF != ns { split($(NF - 2), p, "/"); print p[3] }' |
          while read -r p; do [ -s /proc/$p/cmdline ] && echo $p; done
    } | sort -u
}
guest_state() {
    echo "guest: $(tandem guest list 2>&1 | tr '\n' ';')"
    echo "drbd2: $(minor_state 2)"
    echo "box mounted=$(mounted /box && echo yes || echo no) addr=$(has_addr $GVIP && echo yes || echo no) service=$(svc_at $GVIP)"
    echo "cgroup: $(ls -d $GCG 2>&1) procs: $(guest_procs | tr '\n' ' ')"
}
guest_held() {  # the guest runs here, on DRBD r2, and answers
    drbd_has ro:Primary 2 && mounted /box && has_addr $GVIP && guest_running && [ -d $GCG ] &&
        guest_serves $NODE
}
# nothing of the guest here: no process (list, /proc, cgroup), no mount of its root or of
# the DRBD device, no cgroup, DRBD Secondary
guest_released() {
    ! guest_running && [ -z "$(guest_procs)" ] && [ ! -e $GCG ] &&
        ! grep -qE ' /box|^/dev/drbd2 ' /proc/mounts && ! grep -q ' /box' /proc/self/mountinfo &&
        ! grep -qs 'tandem/box' /proc/[0-9]*/cgroup && ! has_addr $GVIP && drbd_has ro:Secondary 2
}
# the guest's tick file (on its root): "tick N EPOCH ADDR", one a second, fsync'd
TICKS=/box/root/var/log/ticks
# ticks_check: the numbers strictly increase by one, every line well formed; prints
# "lines=L first=F last=N a=<last n from 192.0.2.1> b=<count from 192.0.2.2>"
ticks_check() {
    awk '$1 != "tick" || $2 !~ /^[0-9]+$/ || NF != 4 { bad++; next }
         prev && $2 != prev + 1 { gap++ }
         { prev = $2; n++; if (!first) first = $2; if ($4 == "192.0.2.1") la = $2; if ($4 == "192.0.2.2") nb++ }
         END { printf "lines=%d first=%d last=%d a=%d b=%d bad=%d gaps=%d\n", n, first, prev, la, nb, bad, gap
               exit (bad > 0 || gap > 0) }' $TICKS
}
last_tick() { tail -n 1 $TICKS 2>/dev/null | cut -d' ' -f2; }
ticks_grow() {  # ticks_grow SECONDS: a new line within SECONDS
    t0=$(last_tick); wait_until $1 ticks_past "${t0:-0}"
}
ticks_past() { [ "$(last_tick)" -gt "$1" ] 2>/dev/null; }

# ---- the end of a node
tandem_stop() {    # the init script releases the groups before the daemon exits
    /etc/init.d/tandem stop || return 1
    local_state
    drbd_has ro:Secondary/ && ! mounted && ! has_vip && ! /etc/init.d/tandem status >/dev/null
}
stopped_clean() {  # nothing of any group left here
    lvm_state; guest_state
    lvm_released && guest_released && ! grep -q drbd /proc/mounts && ! has_vip
}
