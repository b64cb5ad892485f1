#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# End to end through a real router: remote <-> xdnatd <-> two hosts sharing
# one global address, in network namespaces.  Proves, for the attach mode in
# XD_MODE (xdp by default; e2e_forwarding_tc.sh runs it with tc):
#   - both hosts talk TCP (transfers checked by SHA-256) and UDP to the
#     remote at the same time, and the remote only ever sees the global address;
#   - inbound TCP to a host's port and ICMP echo replies reach that host;
#   - ESP from the remote to each host's SPIs arrives at the right host
#     byte-identical, and at no other; an unallocated SPI is counted;
#   - a host sending from another host's port is dropped and counted;
#   - per-host counters account for the traffic.
# Every address, block and size can be changed through the variables below.
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"

XD_MODE=${XD_MODE:-xdp}
H1_PORTS=${H1_PORTS:-20000-20999}
H2_PORTS=${H2_PORTS:-21000-21999}
SPI_BITS=${SPI_BITS:-16}
H1_SPIS=${H1_SPIS:-0x00010000-0x0001ffff}
H2_SPIS=${H2_SPIS:-0x00020000-0x0002ffff}
UNKNOWN_SPI=${UNKNOWN_SPI:-0x00550000}
TCP_BYTES=${TCP_BYTES:-4000000}

first() { echo "${1%-*}"; }

xd_init
xd_step "topology: remote, router ($XD_MODE), 2 hosts; global $XD_GLOBAL"
xd_topology 2
xd_start_router --mode "$XD_MODE" --spi-block-bits "$SPI_BITS"
grep -q "ready" "$XD_TMP/xdnatd.log"
[ "$XD_MODE" = tc ] && { grep -q "tc" "$XD_TMP/xdnatd.log" || fail "xdnatd did not attach in tc mode"; }
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$H1_PORTS" spi "$H1_SPIS"
xd_ctl host add 2 lan "$(xd_host_lan 2)" ports "$H2_PORTS" spi "$H2_SPIS"
xd_start_host 1 "$H1_PORTS"
xd_start_host 2 "$H2_PORTS"
H1=$(xd_host_ns 1)
H2=$(xd_host_ns 2)
R=$XD_NS_REMOTE
xd_ok "router and hosts up"

xd_capture remote-cap "$R" "$XD_IF_REMOTE" "$XD_TMP/remote.pcap" ip
CAP_PID=$XD_LAST_PID

# ------------------------------------------------ concurrent TCP and UDP
xd_step "TCP: both hosts send $TCP_BYTES bytes to the remote at once"
xd_bg srv1 "$R" "$XD_TMP/srv1" python3 "$XD_TRAFFIC" tcp-server --port 8001
SRV1=$XD_LAST_PID
xd_bg srv2 "$R" "$XD_TMP/srv2" python3 "$XD_TRAFFIC" tcp-server --port 8002
SRV2=$XD_LAST_PID
xd_wait_line "$SRV1" "$XD_TMP/srv1" listening
xd_wait_line "$SRV2" "$XD_TMP/srv2" listening
xd_bg cli1 "$H1" "$XD_TMP/cli1" python3 "$XD_TRAFFIC" tcp-client --dst "$XD_REMOTE_WAN" --port 8001 --bytes "$TCP_BYTES" --seed 1
CLI1=$XD_LAST_PID
xd_bg cli2 "$H2" "$XD_TMP/cli2" python3 "$XD_TRAFFIC" tcp-client --dst "$XD_REMOTE_WAN" --port 8002 --bytes "$TCP_BYTES" --seed 2
CLI2=$XD_LAST_PID
for p in "$CLI1" "$CLI2" "$SRV1" "$SRV2"; do
	wait "$p" || { cat "$XD_TMP"/cli* "$XD_TMP"/srv* >&2; fail "a TCP endpoint failed"; }
done
for i in 1 2; do
	sent=$(jget '["sha256"]' <"$XD_TMP/cli$i")
	got=$(jget '["sha256"]' <"$XD_TMP/srv$i")
	peer=$(jget '["peer"]' <"$XD_TMP/srv$i")
	sport=$(jget '["sport"]' <"$XD_TMP/cli$i")
	[ "$sent" = "$got" ] || fail "h$i: TCP data corrupted (sent $sent, received $got)"
	[ "$peer" = "$XD_GLOBAL" ] || fail "h$i: remote saw peer $peer, not $XD_GLOBAL"
	ports=H${i}_PORTS
	lo=${!ports%-*} hi=${!ports#*-}
	[ "$sport" -ge "$lo" ] && [ "$sport" -le "$hi" ] || fail "h$i: source port $sport outside its block ${!ports}"
	xd_ok "h$i: $TCP_BYTES bytes intact, remote saw $peer:$sport"
done

xd_step "UDP: both hosts exchange datagrams with the remote at once"
xd_bg echo "$R" "$XD_TMP/uecho" python3 "$XD_TRAFFIC" udp-echo --port 5353 --count 40 --timeout 15
ECHO=$XD_LAST_PID
xd_wait_line "$ECHO" "$XD_TMP/uecho" listening
xd_bg u1 "$H1" "$XD_TMP/u1" python3 "$XD_TRAFFIC" udp-client --dst "$XD_REMOTE_WAN" --port 5353 --count 20 --size 1200
U1=$XD_LAST_PID
xd_bg u2 "$H2" "$XD_TMP/u2" python3 "$XD_TRAFFIC" udp-client --dst "$XD_REMOTE_WAN" --port 5353 --count 20 --size 1200
U2=$XD_LAST_PID
wait "$U1" && wait "$U2" && wait "$ECHO" || fail "a UDP endpoint failed"
for i in 1 2; do
	n=$(jget '["echoed"]' <"$XD_TMP/u$i")
	[ "$n" = 20 ] || fail "h$i: $n of 20 UDP echoes came back"
done
peers=$(jget '["peers"]' <"$XD_TMP/uecho")
python3 - "$peers" "$XD_GLOBAL" <<'EOF' || fail "remote saw UDP peers $peers"
import ast, sys
peers = ast.literal_eval(sys.argv[1])
assert len(peers) == 2 and all(k.split(":")[0] == sys.argv[2] for k in peers), peers
EOF
xd_ok "40 datagrams each way, remote saw only $XD_GLOBAL ($peers)"

# --------------------------------------------------------- inbound TCP
xd_step "inbound: the remote connects to a port of each host's block"
for i in 1 2; do
	ports=H${i}_PORTS
	port=$(( ${!ports%-*} + 80 ))
	xd_bg in$i "$(xd_host_ns $i)" "$XD_TMP/in$i" python3 "$XD_TRAFFIC" tcp-server --port "$port"
	pid=$XD_LAST_PID
	xd_wait_line "$pid" "$XD_TMP/in$i" listening
	xd_ns "$R" python3 "$XD_TRAFFIC" tcp-client --dst "$XD_GLOBAL" --port "$port" --bytes 300000 --seed $((10 + i)) >"$XD_TMP/inc$i" ||
		{ cat "$XD_TMP/inc$i" >&2; xd_ctl stats >&2; fail "remote could not send to $XD_GLOBAL:$port"; }
	wait "$pid" || fail "h$i server failed"
	[ "$(jget '["sha256"]' <"$XD_TMP/in$i")" = "$(jget '["sha256"]' <"$XD_TMP/inc$i")" ] ||
		fail "inbound data to h$i corrupted"
	xd_ok "remote -> $XD_GLOBAL:$port reached h$i intact"
done

xd_step "ICMP: echo with an identifier from each host's block"
for i in 1 2; do
	ports=H${i}_PORTS
	id=$(( ${!ports%-*} + 7 ))
	xd_ns "$(xd_host_ns $i)" ping -c 3 -i 0.2 -W 2 -e "$id" "$XD_REMOTE_WAN" >/dev/null ||
		fail "h$i: ping with id $id got no reply"
	xd_ok "h$i: ping -e $id answered"
done

# ------------------------------------------------------------------ ESP
xd_step "ESP: remote -> SPIs of each host arrive byte-identical, only there"
esp_pkt() { # SPI SEQ -> hex of a whole IPv4 ESP packet from the remote to G
	local body
	body=$(printf '%08x%08x' "$1" "$2")$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')
	xd_py "$R" ipv4 --src "$XD_REMOTE_WAN" --dst "$XD_GLOBAL" --proto 50 --payload-hex "$body" --id "$2" | jget '["hex"]'
}
h1_lo=$(( ${H1_SPIS%-*} )) h1_hi=$(( ${H1_SPIS#*-} ))
h2_lo=$(( ${H2_SPIS%-*} )) h2_hi=$(( ${H2_SPIS#*-} ))
P1A=$(esp_pkt "$h1_lo" 1)
P1B=$(esp_pkt "$h1_hi" 2)
P2A=$(esp_pkt "$h2_lo" 3)
P2B=$(esp_pkt "$h2_hi" 4)
PX=$(esp_pkt "$((UNKNOWN_SPI))" 5)
for i in 1 2; do
	xd_bg esp$i "$(xd_host_ns $i)" "$XD_TMP/esp$i" python3 "$XD_TRAFFIC" raw-recv --proto 50 --count 3 --timeout 8
	eval "ESP$i=$XD_LAST_PID"
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/esp$i" listening
done
unknown_before=$(xd_stat unknown_spi)
for p in "$P1A" "$P2A" "$P1B" "$P2B" "$PX"; do
	xd_py "$R" raw-send --dst "$XD_GLOBAL" --proto 50 --hex "$p" >/dev/null
done
wait "$ESP1" && wait "$ESP2" || fail "ESP receiver failed"
python3 - "$XD_TMP/esp1" "$P1A,$P1B" "$XD_TMP/esp2" "$P2A,$P2B" <<'EOF' || fail "ESP delivery wrong"
import json, sys
for f, want in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    got = json.loads(open(f).read().strip().splitlines()[-1])["packets"]
    want = want.split(",")
    if got != want:
        print("%s: expected %s\n got %s" % (f, want, got), file=sys.stderr)
        sys.exit(1)
EOF
unknown_after=$(xd_stat unknown_spi)
[ "$unknown_after" -gt "$unknown_before" ] || fail "unallocated SPI $UNKNOWN_SPI not counted as unknown_spi"
xd_ok "SPIs at both edges of each block delivered byte-identical to their host only; unallocated SPI counted"

# ------------------------------------------------------------- spoofing
xd_step "anti-spoofing: h1 sends from a port of h2's block"
spoof_port=$(( ${H2_PORTS%-*} + 5 ))
before=$(xd_stat drop_spoof_port)
xd_bg echo2 "$R" "$XD_TMP/uecho2" python3 "$XD_TRAFFIC" udp-echo --port 5354 --count 1 --timeout 4
ECHO2=$XD_LAST_PID
xd_wait_line "$ECHO2" "$XD_TMP/uecho2" listening
xd_py "$H1" udp-client --dst "$XD_REMOTE_WAN" --port 5354 --sport "$spoof_port" --count 3 --timeout 0.5 >"$XD_TMP/spoof" || true
wait "$ECHO2" || true
[ "$(jget '["echoed"]' <"$XD_TMP/uecho2")" = 0 ] || fail "spoofed datagram reached the remote"
after=$(xd_stat drop_spoof_port)
[ $((after - before)) -ge 3 ] || fail "drop_spoof_port went from $before to $after, expected +3"
xd_ok "3 spoofed datagrams dropped and counted (drop_spoof_port +$((after - before)))"

# ------------------------------------------------- what the remote saw
xd_stop "$CAP_PID" || true
lan_pkts=$(tcpdump -r "$XD_TMP/remote.pcap" -n "net ${XD_LAN_PREFIX}.0/${XD_LAN_PLEN}" 2>/dev/null | wc -l)
g_pkts=$(tcpdump -r "$XD_TMP/remote.pcap" -n "src host $XD_GLOBAL" 2>/dev/null | wc -l)
[ "$lan_pkts" = 0 ] || fail "the remote saw $lan_pkts packets with LAN addresses"
[ "$g_pkts" -gt 100 ] || fail "the remote saw only $g_pkts packets from $XD_GLOBAL"
xd_ok "remote capture: $g_pkts packets from $XD_GLOBAL, none with a LAN address"

xd_step "per-host counters"
xd_ctl host show
xd_ctl -j host show | python3 -c '
import json, sys
d = json.load(sys.stdin)
hosts = {h["id"]: h for h in d["hosts"]}
for i in (1, 2):
    h = hosts[i]
    assert h["to_host_packets"] > 100 and h["from_host_packets"] > 100, h
' || fail "per-host counters do not show the traffic"
xd_ok "both hosts counted both ways"

xd_step "Prometheus endpoint (the router's UNIX socket, the default)"
curl -sf --max-time 5 --unix-socket "$XD_RUN_DIR/$XD_INSTANCE.metrics" http://localhost/metrics |
	python3 -c '
import sys
body = sys.stdin.read()
v = {}
for line in body.splitlines():
    if line and not line.startswith("#"):
        k, n = line.rsplit(" ", 1)
        v[k] = int(n)
assert v["xdnat_packets_total{reason=\"wan_to_host\"}"] > 100, body
assert v["xdnat_packets_total{reason=\"drop_spoof_port\"}"] >= 3, body
assert v["xdnat_host_packets_total{host=\"1\",direction=\"from_host\"}"] > 100, body
assert v["xdnat_hosts"] == 2, body
' || fail "metrics endpoint wrong or unreachable"
xd_ns "$XD_NS_REMOTE" python3 -c '
import urllib.request, sys
try:
    urllib.request.urlopen("http://'"$XD_ROUTER_WAN"':9477/metrics", timeout=2)
except Exception:
    sys.exit(0)
sys.exit(1)' || fail "metrics reachable from the WAN"
xd_ok "/metrics on $XD_RUN_DIR/$XD_INSTANCE.metrics has counters by reason and host; not reachable from the WAN"
echo "e2e_forwarding ($XD_MODE): all checks passed"
