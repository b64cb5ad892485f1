#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# One-arm mode: the router has a single NIC, as a cloud VM does; the
# subnet's gateway routes the global address to it, and the hosts live in
# the same subnet.  Both directions leave through the NIC they came in on.
#
#   remote 198.51.100.2 -- gw 198.51.100.1 | 10.1.0.1 --+-- router 10.1.0.10 (G on its NIC)
#                          (routes G via 10.1.0.10)      +-- h1 10.1.0.21
#                                                        +-- h2 10.1.0.22
# Proves: both hosts' TCP (SHA-256) and UDP to the remote and back, inbound
# TCP and ESP to the right host byte-identical, a spoofed source port
# dropped, reload-programs with 0 lost packets.  XD_MODE=tc for tc.
set -euo pipefail
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.1.0}
. "$(dirname "$0")/lib/netns.sh"

XD_MODE=${XD_MODE:-xdp}
ROUTER_IP=${ROUTER_IP:-$XD_LAN_PREFIX.10}
GW_LAN=${GW_LAN:-$XD_LAN_PREFIX.1}
H1_PORTS=${H1_PORTS:-20000-20999}
H2_PORTS=${H2_PORTS:-21000-21999}
H1_SPIS=${H1_SPIS:-0x00010000-0x0001ffff}
host_lan() { echo "$XD_LAN_PREFIX.$((20 + $1))"; }

xd_init
xd_step "topology: one subnet $XD_LAN_PREFIX.0/24 with gateway, router (one NIC) and 2 hosts"
SW=$XD_NS_SWITCH GW=${XD_TAG}-gw R=$XD_NS_ROUTER REM=$XD_NS_REMOTE
for ns in "$SW" "$GW" "$R" "$REM"; do xd_netns_add "$ns"; done
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
attach() { # NS IFNAME PORT ADDR/LEN
	ip -n "$1" link add "$2" type veth peer name "$3" netns "$SW"
	ip -n "$SW" link set "$3" master br0 up
	ip -n "$1" addr add "$4" dev "$2"
	ip -n "$1" link set "$2" up
	xd_ns "$1" ethtool -K "$2" tx off >/dev/null
}
attach "$GW" eth0 p-gw "$GW_LAN/24"
attach "$R" eth0 p-router "$ROUTER_IP/24"
# The router redirects out of its own NIC: the switch port must accept
# XDP frames (GRO on, see lib/netns.sh).
xd_ns "$SW" ethtool -K p-router gro on >/dev/null
ip -n "$R" addr add "$XD_GLOBAL/32" dev eth0
ip -n "$R" route add default via "$GW_LAN"
for i in 1 2; do
	xd_netns_add "$(xd_host_ns $i)"
	attach "$(xd_host_ns $i)" eth0 "p-h$i" "$(host_lan $i)/24"
done
ip -n "$GW" link add eth1 type veth peer name eth0 netns "$REM"
ip -n "$GW" addr add "$XD_ROUTER_WAN/24" dev eth1
ip -n "$GW" link set eth1 up
ip -n "$REM" addr add "$XD_REMOTE_WAN/24" dev eth0
ip -n "$REM" link set eth0 up
ip -n "$REM" route add default via "$XD_ROUTER_WAN"
xd_ns "$REM" ethtool -K eth0 tx off >/dev/null
xd_ns "$GW" ethtool -K eth1 tx off >/dev/null
xd_ns "$GW" sysctl -qw net.ipv4.ip_forward=1
ip -n "$GW" route add "$XD_GLOBAL/32" via "$ROUTER_IP"

xd_step "xdnatd one-arm ($XD_MODE) on eth0; hosts registered"
log=$XD_TMP/xdnatd.log
xd_bg xdnatd "$R" "$log" "$XD_XDNATD" --wan eth0 --lan eth0 --global "$XD_GLOBAL" \
	--lan-addr "$ROUTER_IP" --instance "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" --mode "$XD_MODE"
XD_ROUTER_PID=$XD_LAST_PID
xd_wait_line "$XD_ROUTER_PID" "$log" '^xdnatd: ready'
grep -q "$XD_MODE on eth0" "$log" || fail "not attached in $XD_MODE mode: $(cat "$log")"
xd_ctl host add 1 lan "$(host_lan 1)" ports "$H1_PORTS" spi "$H1_SPIS"
xd_ctl host add 2 lan "$(host_lan 2)" ports "$H2_PORTS"
for i in 1 2; do
	ports=H${i}_PORTS
	xd_bg "xdnat-host h$i" "$(xd_host_ns $i)" "$XD_TMP/host$i.log" "$XD_XDNAT_HOST" --dev eth0 \
		--global "$XD_GLOBAL" --router "$ROUTER_IP" --ports "${!ports}"
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/host$i.log" '^xdnat-host: ready'
done
xd_ok "$(head -1 "$log")"

xd_step "TCP and UDP from both hosts to the remote, at the same time"
for i in 1 2; do
	xd_bg "srv$i" "$REM" "$XD_TMP/srv$i" python3 "$XD_TRAFFIC" tcp-server --port $((8000 + i))
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/srv$i" listening
done
pids=()
for i in 1 2; do
	xd_bg "cli$i" "$(xd_host_ns $i)" "$XD_TMP/cli$i" python3 "$XD_TRAFFIC" tcp-client \
		--dst "$XD_REMOTE_WAN" --port $((8000 + i)) --bytes 2000000 --seed "$i"
	pids+=("$XD_LAST_PID")
done
wait "${pids[@]}" || fail "a TCP client failed"
for i in 1 2; do
	wait_for 10 grep -q sha256 "$XD_TMP/srv$i" || fail "h$i: server got nothing"
	[ "$(jget '["sha256"]' <"$XD_TMP/cli$i")" = "$(jget '["sha256"]' <"$XD_TMP/srv$i")" ] ||
		fail "h$i: TCP data corrupted"
	[ "$(jget '["peer"]' <"$XD_TMP/srv$i")" = "$XD_GLOBAL" ] || fail "h$i: remote saw another source"
done
xd_bg echo "$REM" "$XD_TMP/echo" python3 "$XD_TRAFFIC" udp-echo --port 5353 --count 20
ECHO=$XD_LAST_PID
xd_wait_line "$ECHO" "$XD_TMP/echo" listening
for i in 1 2; do
	xd_py "$(xd_host_ns $i)" udp-client --dst "$XD_REMOTE_WAN" --port 5353 --count 10 >"$XD_TMP/u$i"
	[ "$(jget '["echoed"]' <"$XD_TMP/u$i")" = 10 ] || fail "h$i: UDP echoes missing"
done
wait "$ECHO" || true
xd_ok "2 x 2 MB TCP intact, 2 x 10 UDP echoes; the remote saw only $XD_GLOBAL"

xd_step "inbound TCP and ESP reach the right host"
port=$(( ${H2_PORTS%-*} + 80 ))
xd_bg in2 "$(xd_host_ns 2)" "$XD_TMP/in2" python3 "$XD_TRAFFIC" tcp-server --port "$port"
IN2=$XD_LAST_PID
xd_wait_line "$IN2" "$XD_TMP/in2" listening
xd_py "$REM" tcp-client --dst "$XD_GLOBAL" --port "$port" --bytes 500000 >"$XD_TMP/inc2" ||
	fail "remote cannot reach $XD_GLOBAL:$port"
wait "$IN2"
[ "$(jget '["sha256"]' <"$XD_TMP/in2")" = "$(jget '["sha256"]' <"$XD_TMP/inc2")" ] || fail "inbound TCP corrupted"
spi=$(( ${H1_SPIS%-*} + 5 ))
pkt=$(xd_py "$REM" ipv4 --src "$XD_REMOTE_WAN" --dst "$XD_GLOBAL" --proto 50 \
	--payload-hex "$(printf '%08x%08x' "$spi" 7)00112233445566778899" | jget '["hex"]')
for i in 1 2; do
	xd_bg "esp$i" "$(xd_host_ns $i)" "$XD_TMP/esp$i" python3 "$XD_TRAFFIC" raw-recv --proto 50 --count 1 --timeout 3
	eval "ESP$i=$XD_LAST_PID"
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/esp$i" listening
done
xd_py "$REM" raw-send --dst "$XD_GLOBAL" --proto 50 --hex "$pkt" >/dev/null
wait "$ESP1" "$ESP2" || true
# The gateway routes (TTL - 1, new header checksum): compare what the router
# must not touch, addresses and the whole ESP payload.
python3 - "$XD_TMP/esp1" "$pkt" <<'EOF2' || fail "ESP not delivered intact to h1"
import json, sys
got = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["packets"]
want = sys.argv[2]
assert len(got) == 1, got
g = got[0]
assert g[24:40] == want[24:40] and g[40:] == want[40:], (g, want)
EOF2
[ "$(jget '["received"]' <"$XD_TMP/esp2")" = 0 ] || fail "h2 received h1's ESP"
xd_ok "inbound TCP to h2 intact; ESP SPI $(printf 0x%x $spi) intact at h1 only"

xd_step "anti-spoofing and a program swap under traffic"
before=$(xd_stat drop_spoof_port)
xd_py "$(xd_host_ns 1)" udp-client --dst "$XD_REMOTE_WAN" --port 5354 --sport $(( ${H2_PORTS%-*} + 1 )) \
	--count 2 --timeout 0.3 >/dev/null || true
[ $(( $(xd_stat drop_spoof_port) - before )) -ge 2 ] || fail "spoofed source port not dropped"
p=$(( ${H1_PORTS%-*} + 3 ))
xd_bg sink "$(xd_host_ns 1)" "$XD_TMP/sink" python3 "$XD_TRAFFIC" udp-count --port "$p"
SINK=$XD_LAST_PID
xd_wait_line "$SINK" "$XD_TMP/sink" listening
xd_bg src "$REM" "$XD_TMP/src" python3 "$XD_TRAFFIC" udp-stream --dst "$XD_GLOBAL" --port "$p" \
	--rate 2000 --seconds 3
SRC=$XD_LAST_PID
sleep 1
xd_ctl reload-programs >/dev/null || fail "reload-programs failed in one-arm mode"
wait "$SRC" "$SINK" || fail "stream failed"
sent=$(jget '["sent"]' <"$XD_TMP/src")
got=$(jget '["received"]' <"$XD_TMP/sink")
[ "$sent" = "$got" ] || fail "$((sent - got)) of $sent packets lost across reload-programs"
xd_ok "spoofed port dropped; program swap with $sent packets, 0 lost"
echo "e2e_onearm ($XD_MODE): all checks passed"
