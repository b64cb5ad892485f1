#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Zero-loss changes.  A sequence-numbered UDP stream flows remote -> h1 and
# h1 -> remote the whole time, while
#   1. other hosts' blocks are added and removed at >= CHURN_MIN changes per
#      second (xdnatctl batch mode, like `ip -batch`);
#   2. the BPF programs are replaced by a new load (xdnatctl reload-programs:
#      the daemon re-executes its binary, which takes the pinned links over
#      with bpf_link_update while the pinned maps keep their contents);
#   3. the daemon is killed with SIGKILL and restarted (crash + takeover).
# Each stream must arrive with 0 lost packets.
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"

H1_PORTS=${H1_PORTS:-30000-30999}
RATE=${RATE:-2000}           # packets per second per direction
CHURN_SECONDS=${CHURN_SECONDS:-3}
CHURN_MIN=${CHURN_MIN:-1000} # changes per second that must be sustained

xd_init
xd_topology 2
xd_start_router --mode "${XD_MODE:-xdp}" --keep-maps
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$H1_PORTS"
xd_ctl host add 2 lan "$(xd_host_lan 2)"
xd_start_host 1 "$H1_PORTS"
H1=$(xd_host_ns 1)
in_port=$(( ${H1_PORTS%-*} + 1 ))
out_sport=$(( ${H1_PORTS%-*} + 2 ))

# stream PHASE SECONDS: start both streams for SECONDS; sets SINKS/SENDERS.
stream() {
	local phase=$1 secs=$2
	xd_bg "sink-in-$phase" "$H1" "$XD_TMP/in-$phase" python3 "$XD_TRAFFIC" udp-count --port "$in_port"
	SINK_IN=$XD_LAST_PID
	xd_bg "sink-out-$phase" "$XD_NS_REMOTE" "$XD_TMP/out-$phase" python3 "$XD_TRAFFIC" udp-count --port 9999
	SINK_OUT=$XD_LAST_PID
	xd_wait_line "$SINK_IN" "$XD_TMP/in-$phase" listening
	xd_wait_line "$SINK_OUT" "$XD_TMP/out-$phase" listening
	xd_bg "src-in-$phase" "$XD_NS_REMOTE" "$XD_TMP/sin-$phase" python3 "$XD_TRAFFIC" udp-stream \
		--dst "$XD_GLOBAL" --port "$in_port" --rate "$RATE" --seconds "$secs"
	SRC_IN=$XD_LAST_PID
	xd_bg "src-out-$phase" "$H1" "$XD_TMP/sout-$phase" python3 "$XD_TRAFFIC" udp-stream \
		--dst "$XD_REMOTE_WAN" --port 9999 --sport "$out_sport" --rate "$RATE" --seconds "$secs"
	SRC_OUT=$XD_LAST_PID
}

# check_stream PHASE: wait for the stream and require 0 lost in each direction.
check_stream() {
	local phase=$1 dir sent got lost
	wait "$SRC_IN" "$SRC_OUT" || fail "$phase: a stream sender failed"
	wait "$SINK_IN" "$SINK_OUT" || fail "$phase: a stream sink failed"
	for dir in in out; do
		sent=$(jget '["sent"]' <"$XD_TMP/s$dir-$phase")
		got=$(jget '["received"]' <"$XD_TMP/$dir-$phase")
		lost=$((sent - got))
		[ "$lost" -eq 0 ] || fail "$phase: $lost of $sent packets lost ($dir: $(cat "$XD_TMP/$dir-$phase"))"
	done
	xd_ok "$phase: $sent packets each way, 0 lost"
}

xd_step "1. block churn on host 2 while host 1 streams"
# Each round: 4 changes (ports add/del, spi add/del) on host 2's tables.
rounds=$(( CHURN_MIN * CHURN_SECONDS / 4 * 2 ))
batch=$XD_TMP/churn.batch
for ((i = 0; i < rounds; i++)); do
	p=$(( 40000 + (i % 200) * 10 ))
	s=$(( (i % 200 + 2) << 16 ))
	printf 'ports add 2 %d-%d\nspi add 2 %d-%d\nports del 2 %d-%d\nspi del 2 %d-%d\n' \
		"$p" $((p + 9)) "$s" $((s + 65535)) "$p" $((p + 9)) "$s" $((s + 65535))
done >"$batch"
stream churn $((CHURN_SECONDS + 3))
sleep 1
t0=$(date +%s%N)
xd_ctl -b "$batch" || fail "batch of $((rounds * 4)) changes failed"
t1=$(date +%s%N)
rate=$(( rounds * 4 * 1000000000 / (t1 - t0) ))
check_stream churn
[ "$rate" -ge "$CHURN_MIN" ] || fail "only $rate changes/s (need $CHURN_MIN)"
xd_ok "$((rounds * 4)) changes at $rate changes/s"
xd_ctl -j host show 2 | grep -q '"ports":\[\]' || fail "host 2 kept blocks after the churn: $(xd_ctl host show 2)"

xd_step "2. program swap (xdnatctl reload-programs) under traffic"
old_prog=$(bpftool link show pinned "$XD_PIN_BASE/$XD_INSTANCE/link_wan" | sed -n 's/.*prog \([0-9]*\).*/\1/p')
stream swap 4
sleep 1.5
xd_ctl reload-programs || fail "reload-programs failed"
check_stream swap
new_prog=$(bpftool link show pinned "$XD_PIN_BASE/$XD_INSTANCE/link_wan" | sed -n 's/.*prog \([0-9]*\).*/\1/p')
[ -n "$new_prog" ] && [ "$new_prog" != "$old_prog" ] || fail "WAN program not replaced (prog $old_prog -> $new_prog)"
xd_ctl host show 1 | grep -q "$H1_PORTS" || fail "host 1 lost its block across the swap"
xd_ok "WAN program $old_prog -> $new_prog, maps kept"

xd_step "3. SIGKILL and restart of xdnatd under traffic"
stream crash 4
sleep 1
kill -KILL "$XD_ROUTER_PID"
wait "$XD_ROUTER_PID" 2>/dev/null || true
rm -f "$XD_RUN_DIR/$XD_INSTANCE.lock"
xd_start_router --mode "${XD_MODE:-xdp}" --keep-maps
check_stream crash
echo "e2e_zero_loss: all checks passed"
