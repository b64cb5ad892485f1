#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Fragments, ICMP errors and the tunnel MTU, end to end (issue 5):
#   1. 4000-byte UDP datagrams from the remote (fragmented on the 1500-byte
#      WAN; two of three fragments do not fit the LAN once wrapped) reach
#      the right host intact: fragment table + outer fragmentation by the
#      router's stack + reassembly on the host (xdnat-host slow path);
#   2. the same with the fragments sent last-first: the later fragments are
#      held by xdnatd's slow path and re-injected once the first arrives;
#   3. a full-size (1500-byte) DF UDP datagram from the remote is answered
#      with ICMP frag-needed 1480 (router, XDP), the remote's stack learns
#      the path MTU, and a datagram of that size arrives;
#   4. a full-size TCP transfer from the remote to a host (MSS from the
#      host's tunnel route MTU);
#   5. path MTU discovery from a host through a 1280-byte link beyond the
#      remote: the remote's frag-needed is routed to the host by the quoted
#      source port; UDP learns 1280, TCP gets through.
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"

XD_MODE=${XD_MODE:-xdp}
TF="$XD_ROOT/selftests/lib/traffic_frag.py"
FAR_MTU=${FAR_MTU:-1280}
FAR_NET=203.0.113
TCP_BYTES=${TCP_BYTES:-3000000}

stat_delta() { echo $(( $(xd_stat "$1") - $2 )); }

xd_init
xd_step "topology: remote, router ($XD_MODE), 2 hosts, far peer behind a $FAR_MTU-byte link"
xd_topology 2
FAR=${XD_TAG}-far
xd_netns_add "$FAR"
R=$XD_NS_REMOTE
ip -n "$R" link add far type veth peer name eth0 netns "$FAR"
ip -n "$R" link set far mtu "$FAR_MTU" up
ip -n "$FAR" link set eth0 mtu "$FAR_MTU" up
ip -n "$R" addr add "$FAR_NET.1/24" dev far
ip -n "$FAR" addr add "$FAR_NET.2/24" dev eth0
ip -n "$FAR" route add default via "$FAR_NET.1"
xd_ns "$R" sysctl -qw net.ipv4.ip_forward=1
xd_ns "$FAR" ethtool -K eth0 tx off >/dev/null

xd_start_router --mode "$XD_MODE"
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports 20000-20999
xd_ctl host add 2 lan "$(xd_host_lan 2)" ports 21000-21999
xd_start_host 1 20000-20999
xd_start_host 2 21000-21999
H1=$(xd_host_ns 1)
H2=$(xd_host_ns 2)
# PMTU discovery needs an unlocked route MTU (a locked one makes Linux send
# without DF and ignore frag-needed): xdnat-host must install "mtu N".
rt=$(xd_ns "$H1" ip -o route show default)
grep -q "mtu lock" <<<"$rt" && fail "xdnat-host installed a locked route MTU: $rt"
grep -q "mtu " <<<"$rt" || fail "xdnat-host installed no route MTU: $rt"
xd_ok "router and hosts up; host route: $(xd_ns "$H1" ip -o route show default)"

# recv NS PORT COUNT LOG: start a UDP receiver; sets RPID
recv() {
	xd_bg "udp-recv $1:$2" "$1" "$4" python3 "$TF" udp-recv --port "$2" --count "$3" --timeout 8
	RPID=$XD_LAST_PID
	xd_wait_line "$RPID" "$4" listening
}
# expect_got LOG PID SHA LEN COUNT: receiver got COUNT datagrams, all LEN/SHA
expect_got() {
	wait "$2" || true
	python3 - "$1" "$3" "$4" "$5" <<'PY' || { cat "$1" >&2; xd_ctl stats >&2; fail "receiver $1"; }
import json, sys
log, sha, ln, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
got = json.loads(open(log).read().strip().splitlines()[-1])["got"]
assert len(got) == n, f"{len(got)} datagrams, expected {n}"
assert all(g["sha256"] == sha and g["len"] == ln for g in got), got
PY
}

# ------------------------------------------------------------ 1
xd_step "4000-byte UDP from the remote to each host (fragmented)"
f0=$(xd_stat frag_to_host); t0=$(xd_stat pass_too_big)
recv "$H1" 20500 2 "$XD_TMP/r1"; P1=$RPID
recv "$H2" 21500 2 "$XD_TMP/r2"; P2=$RPID
recv "$H2" 20500 1 "$XD_TMP/r2x"; P2X=$RPID   # h2 must never see h1's port
s1=$(xd_ns "$R" python3 "$TF" udp-send --dst "$XD_GLOBAL" --port 20500 --size 4000 --count 2 --gap 0.2)
s2=$(xd_ns "$R" python3 "$TF" udp-send --dst "$XD_GLOBAL" --port 21500 --size 4000 --count 2 --gap 0.2)
expect_got "$XD_TMP/r1" "$P1" "$(jget '["sha256"]' <<<"$s1")" 4000 2
expect_got "$XD_TMP/r2" "$P2" "$(jget '["sha256"]' <<<"$s2")" 4000 2
wait "$P2X" || true
[ "$(jget '["got"]' <"$XD_TMP/r2x")" = "[]" ] || fail "host 2 received host 1's datagram"
fd=$(stat_delta frag_to_host "$f0"); td=$(stat_delta pass_too_big "$t0")
[ "$fd" -ge 4 ] || fail "frag_to_host grew by $fd, expected >= 4"
xd_ok "4 x 4000 bytes intact at the right host; frag_to_host +$fd, pass_too_big +$td (outer fragmentation)"

# ------------------------------------------------------------ 2
xd_step "4000-byte UDP with the fragments sent last-first (slow path)"
h0=$(xd_stat frag_held)
recv "$H1" 20600 1 "$XD_TMP/r3"; P3=$RPID
s3=$(xd_ns "$R" python3 "$TF" udp-frags --src "$XD_REMOTE_WAN" --dst "$XD_GLOBAL" --sport 4444 \
	--dport 20600 --size 4000 --frag 1200 --order rev)
expect_got "$XD_TMP/r3" "$P3" "$(jget '["sha256"]' <<<"$s3")" 4000 1
hd=$(stat_delta frag_held "$h0")
[ "$hd" -ge 2 ] || fail "frag_held grew by $hd, expected >= 2 (3 later fragments before the first)"
xd_ok "reversed fragments delivered intact; frag_held +$hd (held by xdnatd, re-injected)"

# ------------------------------------------------------------ 3
xd_step "full-size DF UDP from the remote"
i0=$(xd_stat too_big_icmp)
recv "$H1" 20700 1 "$XD_TMP/r4"; P4=$RPID
s4=$(xd_ns "$R" python3 "$TF" udp-send --dst "$XD_GLOBAL" --port 20700 --size 1472 --df --count 3 --gap 0.3)
mtu=$(jget '["mtu"]' <<<"$s4")
[ "$(stat_delta too_big_icmp "$i0")" -ge 1 ] || fail "no frag-needed counted for a 1500-byte DF datagram"
[ "$mtu" = 1480 ] || fail "remote's path MTU to $XD_GLOBAL is $mtu, expected 1480 ($s4)"
s5=$(xd_ns "$R" python3 "$TF" udp-send --dst "$XD_GLOBAL" --port 20700 --size $((mtu - 28)) --df)
expect_got "$XD_TMP/r4" "$P4" "$(jget '["sha256"]' <<<"$s5")" $((mtu - 28)) 1
xd_ok "1500-byte DF: frag-needed 1480 (errors: $(jget '["errors"]' <<<"$s4")); $mtu-byte DF datagram delivered"

# ------------------------------------------------------------ 4
xd_step "full-size TCP from the remote to host 1 ($TCP_BYTES bytes)"
xd_bg tsrv "$H1" "$XD_TMP/tsrv" python3 "$XD_TRAFFIC" tcp-server --port 20800 --timeout 30
TSRV=$XD_LAST_PID
xd_wait_line "$TSRV" "$XD_TMP/tsrv" listening
tc_out=$(xd_ns "$R" timeout 30 python3 "$XD_TRAFFIC" tcp-client --dst "$XD_GLOBAL" --port 20800 --bytes "$TCP_BYTES" --seed 5)
wait "$TSRV" || true
[ "$(jget '["sha256"]' <<<"$tc_out")" = "$(jget '["sha256"]' <"$XD_TMP/tsrv")" ] ||
	{ cat "$XD_TMP/tsrv" >&2; fail "TCP transfer from the remote corrupted or incomplete"; }
xd_ok "TCP from the remote: $TCP_BYTES bytes, SHA-256 equal"

# ------------------------------------------------------------ 5
xd_step "PMTU discovery from host 1 through the $FAR_MTU-byte link"
e0=$(xd_stat icmp_err_to_host)
recv "$FAR" 9000 5 "$XD_TMP/r5"; P5=$RPID
rmtu=$(xd_ns "$H1" ip -o route show default | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
rmtu=${rmtu:-1480}
s6=$(xd_ns "$H1" python3 "$TF" udp-send --dst "$FAR_NET.2" --port 9000 --sport 20900 --size $((rmtu - 28)) --df --count 3 --gap 0.3)
mtu=$(jget '["mtu"]' <<<"$s6")
ed=$(stat_delta icmp_err_to_host "$e0")
[ "$ed" -ge 1 ] || fail "the remote's frag-needed did not reach host 1 (icmp_err_to_host +0)"
[ "$mtu" = "$FAR_MTU" ] || fail "host 1's path MTU to $FAR_NET.2 is $mtu, expected $FAR_MTU ($s6)"
s7=$(xd_ns "$H1" python3 "$TF" udp-send --dst "$FAR_NET.2" --port 9000 --sport 20900 --size $((mtu - 28)) --df)
wait "$P5" || true
python3 - "$XD_TMP/r5" "$(jget '["sha256"]' <<<"$s7")" <<'PY' || fail "the $((mtu - 28))-byte DF datagram did not arrive"
import json, sys
got = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["got"]
assert any(g["sha256"] == sys.argv[2] for g in got), got
PY
xd_bg fsrv "$FAR" "$XD_TMP/fsrv" python3 "$XD_TRAFFIC" tcp-server --port 9001 --timeout 30
FSRV=$XD_LAST_PID
xd_wait_line "$FSRV" "$XD_TMP/fsrv" listening
fc=$(xd_ns "$H1" timeout 30 python3 "$XD_TRAFFIC" tcp-client --dst "$FAR_NET.2" --port 9001 --bytes 1000000 --seed 6)
wait "$FSRV" || true
[ "$(jget '["sha256"]' <<<"$fc")" = "$(jget '["sha256"]' <"$XD_TMP/fsrv")" ] ||
	{ cat "$XD_TMP/fsrv" >&2; fail "TCP from host 1 through the $FAR_MTU-byte link failed"; }
xd_ok "host 1 learnt path MTU $mtu from a routed frag-needed (icmp_err_to_host +$ed); 1 MB TCP through it"

xd_step "counters"
xd_ctl stats | grep -E "frag|icmp_err|too_big|wan_to_host" || true
xd_ok "e2e_frag_mtu passed"
