# `tandem takeover web` on node-a, raced by a concurrent `tandem agent drbd::r0 start`
# there; then `tandem takeover all` brings vol and box back to a. Both nodes sample
# /proc/drbd every 50 ms throughout: never Primary/Primary on any minor. Nothing of the
# guest or of the LV stays on b.
# expect a takeover_race takeover_all
# expect b never_two_primaries_peer released_to_a

# Samples the local DRBD roles every 50 ms until /tmp/sample.stop appears; a line
# "ro:Primary/Primary" ever seen is written to /tmp/sample.bad.
sampler() {
    rm -f /tmp/sample.stop /tmp/sample.bad /tmp/sample.count; n=0
    while [ ! -e /tmp/sample.stop ]; do
        grep -q 'ro:Primary/Primary' /proc/drbd && grep 'ro:Primary/Primary' /proc/drbd >> /tmp/sample.bad
        n=$((n+1)); usleep 50000
    done
    echo "$n" > /tmp/sample.count
}
sampler_verdict() {
    echo "$(cat /tmp/sample.count 2>/dev/null) samples"
    [ ! -s /tmp/sample.bad ] || { echo "TWO PRIMARIES:"; cat /tmp/sample.bad; return 1; }
}

# a takes the group back (`tandem takeover`) while racing its own `tandem agent drbd::r0
# start` against b's orderly stop; both nodes sample their roles throughout.
takeover_race() {
    sampler & sp=$!
    t0=$(up)
    tandem takeover web || { echo "takeover refused"; touch /tmp/sample.stop; return 1; }
    (tandem agent drbd::r0 start > /tmp/race.agent 2>&1; echo "rc=$?" >> /tmp/race.agent) &
    ap=$!
    wait_until 120 svc_is node-a || { echo "service did not come back"; local_state; }
    echo "takeover=$(since $t0)"
    wait $ap; echo "racing agent: $(tail -1 /tmp/race.agent)"
    sleep 1; touch /tmp/sample.stop; wait $sp
    local_state
    sampler_verdict && svc_is node-a && drbd_has ro:Primary/Secondary && status_has node-a started
}
peer_sampler_verdict() {   # the sampler is the main shell's child: wait for its count
    touch /tmp/sample.stop; wait_until 10 [ -e /tmp/sample.count ]
    sampler_verdict && drbd_has ro:Secondary/Primary
}

takeover_all() {
    sampler & sp=$!
    t0=$(up)
    tandem takeover all || { echo "takeover refused"; touch /tmp/sample.stop; return 1; }
    wait_until 120 guest_held; g=$?
    echo "takeover=$(since $t0)"
    wait_until 30 lvm_held; l=$?
    touch /tmp/sample.stop; wait $sp
    lvm_state; guest_state
    ticks_grow 10; res=$(ticks_check); r=$?; echo "ticks: $res"
    sampler_verdict && [ $g = 0 ] && [ $l = 0 ] && [ $r = 0 ] && [ "$(tail -n 1 $TICKS | cut -d' ' -f4)" = $IP ]
}
released_to_a() {
    wait_until 60 guest_released; g=$?
    wait_until 30 lvm_released; l=$?
    lvm_state; guest_state
    [ $g = 0 ] && [ $l = 0 ]
}

if [ "$NODE" = a ]; then
    send race; recv b-sampling
    scenario takeover_race takeover_race
    scenario takeover_all takeover_all
    send race-done; recv b-race-checked
else
    recv race; sampler & send b-sampling
    recv race-done 300
    scenario never_two_primaries_peer peer_sampler_verdict
    scenario released_to_a released_to_a
    send b-race-checked
fi
