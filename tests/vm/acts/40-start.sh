# Part 2: the daemon, started on both nodes by the LSB init script, with the groups web
# (ext4 on DRBD r0, httpd), vol (LVM on DRBD r1, ext4 on the LV, httpd) and box (the guest
# on DRBD r2). All three start on node-a. Then the guest's cgroup v2 limits, measured.
# expect a tandem_start lvm_started guest_started guest_memory_limit guest_cpu_limit
# expect b tandem_start lvm_not_here guest_not_here guest_client

start_tandem() {   # the LSB init script, as a boot would run it (/etc/default/tandem)
    tandem check-config 2>&1 | grep -v 'no stonith line' || true
    tandem check-config >/dev/null 2>&1 || { echo "check-config failed"; return 1; }
    /etc/init.d/tandem start || { echo "init script failed"; return 1; }
    /etc/init.d/tandem status >/dev/null || { echo "status after start: $?"; return 1; }
    wait_until 60 peer_up || { echo "peer not up"; tandem status; return 1; }
    for g in web vol box; do
        wait_until 90 group_has $g node-a started || { echo "group $g not started"; tandem status; return 1; }
    done
    if [ "$NODE" = a ]; then
        wait_until 30 svc_is node-a || { echo "no service"; local_state; diag; return 1; }
    fi
    tandem status
    local_state
}

# The LV is activated after DRBD's promotion and before the mount, in that order.
lvm_started() {
    wait_until 30 lvm_held; ok=$?
    lvm_state
    log_order "group vol: drbd::r1 started" "group vol: start lvm::$VG" "group vol: lvm::$VG started" \
        "group vol: start mount::/dev/$VG/lv0" || { echo "wrong order"; grep 'group vol' $TLOG; return 1; }
    [ $ok = 0 ]
}
lvm_not_here() { lvm_state; lvm_released; }

# The guest's processes, seen from inside (its own PID namespace) and from here.
guest_ps() { tandem guest enter box ps 2>&1; }
guest_has_services() {
    p=$(guest_ps)
    for s in init syslogd crond httpd ticker; do echo "$p" | grep -q "$s" || return 1; done
}
guest_started() {
    wait_until 30 guest_held || { guest_state; return 1; }
    guest_state
    wait_until 20 guest_has_services || { echo "services missing:"; guest_ps; return 1; }
    guest_ps | sed 's/^/  in guest: /'
    ticks_grow 10 || { echo "no ticks"; return 1; }
    echo "ticks: $(ticks_check)"
    cat $GCG/memory.max $GCG/cpu.max $GCG/pids.max | tr '\n' ' '
    [ "$(cat $GCG/memory.max)" = $((24 * 1024 * 1024)) ] && [ "$(cat $GCG/cpu.max)" = "50000 100000" ] &&
        [ "$(cat $GCG/pids.max)" = 64 ]
}
guest_not_here() { guest_state; guest_released; }
# from node b, over the wire: the guest's httpd on node-a answers
guest_client() { wait_until 30 guest_serves a; r=$?; echo "box answers: $(svc_at $GVIP)"; return $r; }

oom_kills() { sed -n 's/^oom_kill //p' $GCG/memory.events; }
# A 64 MiB allocation in a guest limited to 24 MiB: the kernel's OOM killer ends it, inside
# the guest only; the guest's init and services live on.
guest_memory_limit() {
    init0=$(guest_init); k0=$(oom_kills)
    tandem guest enter box dd if=/dev/zero of=/dev/null bs=64M count=1; rc=$?
    k1=$(oom_kills)
    echo "dd exit $rc; oom_kill $k0 -> $k1; init $init0 -> $(guest_init); memory.peak/current $(cat $GCG/memory.current)"
    dmesg | grep -iE 'out of memory|oom-kill' | tail -2
    [ $rc != 0 ] && [ "$k1" -gt "$k0" ] && [ "$(guest_init)" = "$init0" ] && guest_serves $NODE &&
        guest_has_services
}

usage() { sed -n 's/^usage_usec //p' $1/cpu.stat; }
# share CG SECONDS: the share of one CPU a busy loop in cgroup CG got over SECONDS, in
# per mille, measured after a second of warm-up (the loop is started by the caller)
share() {
    sleep 1
    u0=$(usage $1); t0=$(up); sleep $2; u1=$(usage $1); t1=$(up)
    awk -v u0=$u0 -v u1=$u1 -v t0=$t0 -v t1=$t1 'BEGIN { printf "%d", (u1 - u0) / (t1 - t0) / 1000 }'
}
# cpu=50%: a busy loop in the guest gets half a CPU (+-10 %). Under TCG a CPU is slow and
# shared: the reference is a busy loop outside the guest, in a cgroup of its own.
guest_cpu_limit() {
    ref=/sys/fs/cgroup/rigref; mkdir -p $ref
    sh -c "echo \$\$ > $ref/cgroup.procs; exec timeout -s KILL 5 sh -c 'while :; do :; done'" &
    one=$(share $ref 3); wait
    rmdir $ref
    tandem guest enter box timeout -s KILL 5 sh -c 'while :; do :; done' &
    got=$(share $GCG 3); wait
    want=$(( one < 500 ? one : 500 ))
    echo "one CPU: ${one}/1000; guest with cpu=50%: ${got}/1000 (want $want +-10 %)"
    [ $((got * 10)) -ge $((want * 9)) ] && [ $((got * 10)) -le $((want * 11)) ]
}

scenario tandem_start start_tandem
if [ "$NODE" = a ]; then
    scenario lvm_started lvm_started
    scenario guest_started guest_started
    send a-started
    recv b-checked
    scenario guest_memory_limit guest_memory_limit
    scenario guest_cpu_limit guest_cpu_limit
else
    recv a-started
    scenario lvm_not_here lvm_not_here
    scenario guest_not_here guest_not_here
    scenario guest_client guest_client
    send b-checked
fi
