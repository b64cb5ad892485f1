#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The roaming datapath end to end (issue 18; docs/ROAMING.md), for the attach
# mode in XD_MODE (xdp by default; e2e_roam_datapath_tc.sh runs it with tc).
# No Mobile IP signalling yet: the care-of endpoint is written with the
# user-space setter (build/roam-tool coa-set, i.e. xd_coa_set), the host's
# end of the tunnel is xdnat_host_roam_* attached by roam-tool host-away.
#
#   [remote] ---- [isp] ---- wan [router] lan ---- [switch] ---- [h1] (home)
#                   |
#                 [nat] (nftables masquerade) ---- [away] (the host, away)
#
# Proves:
#   - at home, h1 gets its traffic over the LAN tunnel;
#   - away behind the NAT, with one setter call: UDP and TCP from the remote
#     to G reach the host through the RFC 3519 UDP tunnel, its replies and
#     its own TCP transfer are reverse-tunnelled and reach the remote from G
#     (SHA-256 checked), counted roam_to_coa / roam_from_coa;
#   - tunnel data before the endpoint is registered is dropped and counted
#     (drop_coa_unknown);
#   - the remote never sees the care-of address, the NAT's or the host's
#     private address (tcpdump on the remote);
#   - a 1000/s stream loses at most MAX_LOST datagrams across a move home
#     and away again (each one coa-clear / coa-set);
#   - one coa-clear and h1 gets the traffic on the LAN again.
set -euo pipefail
XD_WAN_PLEN=${XD_WAN_PLEN:-28} # the router's /28 of the WAN; isp splits the rest
. "$(dirname "$0")/lib/netns.sh"

XD_MODE=${XD_MODE:-xdp}
ROAM_TOOL=${ROAM_TOOL:-$XD_BUILD/roam-tool}
H1_PORTS=${H1_PORTS:-20000-20999}
REMOTE_ADDR=${REMOTE_ADDR:-198.51.100.17}  # the remote, behind isp
ISP_REMOTE=${ISP_REMOTE:-198.51.100.18}
NAT_PUB=${NAT_PUB:-198.51.100.33}          # the NAT's public address
ISP_NAT=${ISP_NAT:-198.51.100.34}
SUB_PLEN=${SUB_PLEN:-28}
AWAY_NET=${AWAY_NET:-10.99.0}              # the foreign network behind the NAT
AWAY_PORT=${AWAY_PORT:-43434}              # the host's tunnel (registration) port
TUN_MTU=${TUN_MTU:-1468}                   # 1500 - 32 bytes of tunnel
TCP_BYTES=${TCP_BYTES:-3000000}
RATE=${RATE:-1000}                         # datagrams/s of the stream across moves
MAX_LOST=${MAX_LOST:-2}                    # per the two switches: in flight at most

xd_init
[ -x "$ROAM_TOOL" ] || fail "missing $ROAM_TOOL: run 'make all' first"
command -v nft >/dev/null || fail "missing tool: nft (scripts/deps.sh)"

ISP=${XD_TAG}-isp NAT=${XD_TAG}-nat AWAY=${XD_TAG}-away
R=$XD_NS_REMOTE

xd_step "topology: remote and a NAT behind an ISP on the router's WAN; router in $XD_MODE"
xd_topology 1
H1=$(xd_host_ns 1)
xd_netns_add "$ISP"
xd_netns_add "$NAT"
xd_netns_add "$AWAY"
# The router's WAN peer becomes the ISP's link; the remote moves behind it.
ip -n "$R" link set "$XD_IF_REMOTE" netns "$ISP"
ip -n "$ISP" addr add "$XD_REMOTE_WAN/$XD_WAN_PLEN" dev "$XD_IF_REMOTE"
ip -n "$ISP" link set "$XD_IF_REMOTE" up
ip -n "$ISP" route add "$XD_GLOBAL_NET" via "$XD_ROUTER_WAN"
ip -n "$ISP" link add to-remote type veth peer name eth1 netns "$R"
ip -n "$ISP" addr add "$ISP_REMOTE/$SUB_PLEN" dev to-remote
ip -n "$ISP" link set to-remote up
ip -n "$R" addr add "$REMOTE_ADDR/$SUB_PLEN" dev eth1
ip -n "$R" link set eth1 up
ip -n "$R" route add default via "$ISP_REMOTE"
ip -n "$ISP" link add to-nat type veth peer name out netns "$NAT"
ip -n "$ISP" addr add "$ISP_NAT/$SUB_PLEN" dev to-nat
ip -n "$ISP" link set to-nat up
xd_ns "$ISP" sysctl -qw net.ipv4.ip_forward=1
ip -n "$NAT" addr add "$NAT_PUB/$SUB_PLEN" dev out
ip -n "$NAT" link set out up
ip -n "$NAT" route add default via "$ISP_NAT"
ip -n "$NAT" link add in type veth peer name wlan netns "$AWAY"
ip -n "$NAT" addr add "$AWAY_NET.1/24" dev in
ip -n "$NAT" link set in up
xd_ns "$NAT" sysctl -qw net.ipv4.ip_forward=1
xd_ns "$NAT" nft -f - <<EOF
table ip roamnat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "out" masquerade
	}
}
EOF
# The host away: G on lo, its traffic from G through the tunnel (route MTU
# leaves room for the 32 bytes), full checksums into the tunnel (veth).
ip -n "$AWAY" addr add "$AWAY_NET.2/24" dev wlan
ip -n "$AWAY" link set wlan up
ip -n "$AWAY" addr add "$XD_GLOBAL/32" dev lo
ip -n "$AWAY" route add default via "$AWAY_NET.1" dev wlan src "$XD_GLOBAL" mtu lock "$TUN_MTU"
xd_ns "$AWAY" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.wlan.rp_filter=0 \
	net.ipv4.conf.wlan.arp_announce=2
for ifc in "$R eth1" "$AWAY wlan" "$NAT out" "$ISP $XD_IF_REMOTE"; do
	set -- $ifc
	xd_ns "$1" ethtool -K "$2" tx off >/dev/null
done

xd_start_router --mode "$XD_MODE" --router-ports 434
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$H1_PORTS"
xd_start_host 1 "$H1_PORTS"
xd_ok "router, h1 at home, NAT and away namespace up"

xd_capture remote-cap "$R" eth1 "$XD_TMP/remote.pcap" ip
CAP_PID=$XD_LAST_PID

# udp_to NS PORT LABEL: the remote sends 10 datagrams to G:PORT, an echo
# server in NS answers; prints the number of echoes the remote got.
udp_to() {
	local ns=$1 port=$2 label=$3 echo
	xd_bg "echo-$label" "$ns" "$XD_TMP/echo-$label" python3 "$XD_TRAFFIC" udp-echo --port "$port" --count 10 --timeout 8
	echo=$XD_LAST_PID
	xd_wait_line "$echo" "$XD_TMP/echo-$label" listening
	xd_py "$R" udp-client --dst "$XD_GLOBAL" --port "$port" --count 10 --size 600 --timeout 2 \
		>"$XD_TMP/ucli-$label"
	wait "$echo" || true
	jget '["echoed"]' <"$XD_TMP/ucli-$label"
}

first=${H1_PORTS%-*}
xd_step "at home: the remote reaches h1 over the LAN tunnel"
n=$(udp_to "$H1" "$((first + 10))" home1)
[ "$n" -ge 9 ] || fail "at home: $n of 10 echoes"
xd_ok "h1 at home echoed $n of 10"

xd_step "away: tunnel data before registration is dropped, and opens the NAT binding"
xd_bg roam-host "$AWAY" "$XD_TMP/roam-host" "$ROAM_TOOL" host-away --dev wlan --global "$XD_GLOBAL" \
	--local "$AWAY_NET.2" --port "$AWAY_PORT"
ROAM_HOST=$XD_LAST_PID
xd_wait_line "$ROAM_HOST" "$XD_TMP/roam-host" '^ready'
xd_capture isp-cap "$ISP" to-nat "$XD_TMP/isp.pcap" udp dst port 434
ISPCAP=$XD_LAST_PID
before=$(xd_stat drop_coa_unknown)
xd_py "$AWAY" udp-client --dst "$REMOTE_ADDR" --port 9 --sport "$((first + 1))" --count 1 --timeout 1 >/dev/null
wait_for 5 sh -c "[ \$(tcpdump -r '$XD_TMP/isp.pcap' -n 2>/dev/null | wc -l) -ge 1 ]" ||
	fail "no tunnel packet left the NAT"
xd_stop "$ISPCAP" || true
# "IP 198.51.100.33.1024 > 192.0.2.1.434: UDP, length 132": the endpoint as the router sees it.
ep=$(tcpdump -r "$XD_TMP/isp.pcap" -n 2>/dev/null | awk 'NR == 1 { print $3 }')
COA=${ep%.*} COA_PORT=${ep##*.}
[ "$COA" = "$NAT_PUB" ] || fail "tunnel packet from $ep, not from the NAT's $NAT_PUB"
dropped() { [ "$(xd_stat drop_coa_unknown)" -gt "$before" ]; }
wait_for 5 dropped || fail "drop_coa_unknown did not count the unregistered tunnel data"
xd_ok "care-of endpoint $COA:$COA_PORT (NAT binding of $AWAY_NET.2:$AWAY_PORT); unregistered data dropped"

xd_step "away: one update of xdnat_coa (roam-tool coa-set) switches the host to $COA:$COA_PORT"
"$ROAM_TOOL" coa-set -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" 1 "$COA" "$COA_PORT"
to0=$(xd_stat roam_to_coa) from0=$(xd_stat roam_from_coa)
n=$(udp_to "$AWAY" "$((first + 20))" away1)
[ "$n" -ge 9 ] || fail "away: $n of 10 echoes through the tunnel"
peer=$(jget '["peers"]' <"$XD_TMP/echo-away1")
case "$peer" in *"$REMOTE_ADDR:"*) ;; *) fail "the host saw peers $peer, not $REMOTE_ADDR" ;; esac
xd_ok "UDP: $n of 10 echoes; the host saw $peer"

xd_step "away: TCP both ways ($TCP_BYTES bytes each), checked by SHA-256"
xd_bg srv-away "$AWAY" "$XD_TMP/srv-away" python3 "$XD_TRAFFIC" tcp-server --port "$((first + 30))" --timeout 30
SRV=$XD_LAST_PID
xd_wait_line "$SRV" "$XD_TMP/srv-away" listening
xd_py "$R" tcp-client --dst "$XD_GLOBAL" --port "$((first + 30))" --bytes "$TCP_BYTES" --seed 3 \
	>"$XD_TMP/cli-remote" || fail "remote -> host TCP failed"
wait "$SRV" || fail "the host's TCP server failed"
[ "$(jget '["sha256"]' <"$XD_TMP/cli-remote")" = "$(jget '["sha256"]' <"$XD_TMP/srv-away")" ] ||
	fail "remote -> host: data corrupted"
xd_ok "remote -> host: $TCP_BYTES bytes intact (host saw $(jget '["peer"]' <"$XD_TMP/srv-away"))"

xd_bg srv-remote "$R" "$XD_TMP/srv-remote" python3 "$XD_TRAFFIC" tcp-server --port 8001 --timeout 30
SRV=$XD_LAST_PID
xd_wait_line "$SRV" "$XD_TMP/srv-remote" listening
xd_py "$AWAY" tcp-client --dst "$REMOTE_ADDR" --port 8001 --sport "$((first + 31))" \
	--bytes "$TCP_BYTES" --seed 4 >"$XD_TMP/cli-away" || fail "host -> remote TCP failed"
wait "$SRV" || fail "the remote's TCP server failed"
[ "$(jget '["sha256"]' <"$XD_TMP/cli-away")" = "$(jget '["sha256"]' <"$XD_TMP/srv-remote")" ] ||
	fail "host -> remote: data corrupted"
peer=$(jget '["peer"]' <"$XD_TMP/srv-remote")
[ "$peer" = "$XD_GLOBAL" ] || fail "the remote saw peer $peer, not $XD_GLOBAL"
xd_ok "host -> remote: $TCP_BYTES bytes intact, the remote saw $peer"

to1=$(xd_stat roam_to_coa) from1=$(xd_stat roam_from_coa)
[ "$((to1 - to0))" -ge 10 ] && [ "$((from1 - from0))" -ge 10 ] ||
	fail "counters: roam_to_coa +$((to1 - to0)), roam_from_coa +$((from1 - from0))"
xd_ok "roam_to_coa +$((to1 - to0)), roam_from_coa +$((from1 - from0)) packets"

xd_step "a stream of $((RATE * 6)) datagrams while the host moves home and away again"
xd_bg cnt-home "$H1" "$XD_TMP/cnt-home" python3 "$XD_TRAFFIC" udp-count --port "$((first + 50))" --idle 5 --timeout 20
CH=$XD_LAST_PID
xd_bg cnt-away "$AWAY" "$XD_TMP/cnt-away" python3 "$XD_TRAFFIC" udp-count --port "$((first + 50))" --idle 5 --timeout 20
CA=$XD_LAST_PID
xd_wait_line "$CH" "$XD_TMP/cnt-home" listening
xd_wait_line "$CA" "$XD_TMP/cnt-away" listening
xd_bg stream "$R" "$XD_TMP/stream" python3 "$XD_TRAFFIC" udp-stream --dst "$XD_GLOBAL" \
	--port "$((first + 50))" --rate "$RATE" --seconds 6
ST=$XD_LAST_PID
sleep 2
"$ROAM_TOOL" coa-clear -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" 1
sleep 2
"$ROAM_TOOL" coa-set -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" 1 "$COA" "$COA_PORT"
wait "$ST" || fail "the stream sender failed"
wait "$CH" || true
wait "$CA" || true
sent=$(jget '["sent"]' <"$XD_TMP/stream")
home=$(jget '["received"]' <"$XD_TMP/cnt-home")
away=$(jget '["received"]' <"$XD_TMP/cnt-away")
lost=$((sent - home - away))
[ "$home" -gt 0 ] && [ "$away" -gt 0 ] || fail "stream: $home at home, $away away: no move seen"
[ "$lost" -le "$MAX_LOST" ] || fail "stream: $lost of $sent lost across two moves (at most $MAX_LOST)"
xd_ok "$sent sent at $RATE/s: $home at home, $away away, $lost lost across the two switches"

xd_step "home again: one coa-clear"
"$ROAM_TOOL" coa-clear -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" 1
to2=$(xd_stat roam_to_coa)
n=$(udp_to "$H1" "$((first + 11))" home2)
[ "$n" -ge 9 ] || fail "home again: $n of 10 echoes at h1"
[ "$(xd_stat roam_to_coa)" = "$to2" ] || fail "roam_to_coa still counting after coa-clear"
xd_ok "h1 echoed $n of 10; nothing to the care-of endpoint"

xd_step "the remote never saw the care-of or a private address"
xd_stop "$CAP_PID" || true
total=$(tcpdump -r "$XD_TMP/remote.pcap" -n 2>/dev/null | wc -l)
fromg=$(tcpdump -r "$XD_TMP/remote.pcap" -n "src host $XD_GLOBAL" 2>/dev/null | wc -l)
leak=$(tcpdump -r "$XD_TMP/remote.pcap" -n "host $COA or net $AWAY_NET.0/24 or net 10.0.0.0/8" 2>/dev/null | wc -l)
[ "$fromg" -gt 100 ] || fail "only $fromg of $total packets from $XD_GLOBAL captured at the remote"
[ "$leak" -eq 0 ] || fail "$leak packets at the remote carry the care-of or a private address"
xd_ok "$total packets at the remote, $fromg from $XD_GLOBAL, none with $COA or a private address"
echo "PASS"
