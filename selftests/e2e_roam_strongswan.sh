#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Issue 18's acceptance: a host moves mid-transfer from the LAN to a
# foreign network behind an nftables masquerading NAT and back, while an
# IPsec SA of unmodified strongSwan (charon, kernel-libipsec: ESP in UDP)
# with a remote peer stays up (topology: lib/roam.sh).
#
#   - h1 gets its blocks and Local-CA certificate over RSIP (xdnat-host
#     --swan-dir) and keeps that agent running, with short leases
#     (RSIP_LEASE): its renewals time out while away (the registration keeps
#     the leases) and succeed again at home; `xdnat-host mobile
#     --home-router` runs next to it (README "Roaming hosts": the operating
#     procedure); at the end the agent is still up and holds the same blocks;
#   - h1's charon brings up an IKE_SA + CHILD_SA with the remote through G;
#   - a paced TCP transfer (TCP_SECONDS, from G:port of h1's block) runs, and
#     a ping through the CHILD_SA every PING_MS; h1 moves out, stays away,
#     comes back; the transfer completes byte-identical (SHA-256);
#   - the CHILD_SA and IKE_SA survive: same SPIs and unique ids on both ends
#     before and after (swanctl --list-sas), no new IKE_SA, no rekey;
#   - while away, ESP-in-UDP the remote sends to h1's inbound SPI reaches
#     h1 at its care-of endpoint: the router's roam_to_coa grows and h1's
#     CHILD_SA counts the packets in;
#   - the remote never sees the care-of or the NAT address (tcpdump in its
#     namespace for packets to/from its own addresses; charon and the TCP
#     server see only G);
#   - the interruption of each move (longest TCP stall at the receiver) and
#     the pings lost through the SA are printed.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.54}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.54.0}
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/strongswan.sh"
. "$(dirname "$0")/lib/roam.sh"

REMOTE_INNER=${REMOTE_INNER:-10.99.0.1}   # the remote's tunnel-side address
H1_INNER=${H1_INNER:-10.98.1.1}           # h1's tunnel-side address
TCP_SECONDS=${TCP_SECONDS:-20}            # length of the paced transfer (at least)
TCP_RATE=${TCP_RATE:-100000}              # bytes per second
OUT_AT=${OUT_AT:-4}                       # seconds into the transfer: move out
AWAY=${AWAY:-8}                           # seconds away
PING_MS=${PING_MS:-100}                   # ping through the SA every ...
MAX_STALL_MS=${MAX_STALL_MS:-5000}        # a move must not stall TCP longer
TCP_PORT=${TCP_PORT:-8001}
RSIP_LEASE=${RSIP_LEASE:-16}              # xdnatd --lease: renewals while away and back

xd_init
xs_init
command -v tcpdump >/dev/null || fail "tcpdump not found (scripts/deps.sh)"
PKI=$XD_TMP/pki STATE=$XD_TMP/state SWAN=$XD_TMP/h1-swan
mkdir -p "$PKI"

xd_step "PKI (root, the router's LCA, the remote) and the topology: h1 on the LAN, a NAT ($NAT_PUB_NET.2) on the WAN side"
"$XD_BUILD/xdnat-ca" init-root -k "$PKI/root.key" -o "$PKI/root.crt" >/dev/null
"$XD_BUILD/xdnat-ca" init-lca -g "$XD_GLOBAL" -k "$PKI/lca.key" -R "$PKI/root.crt" -K "$PKI/root.key" \
	-o "$PKI/lca.crt" >/dev/null
xs_anchors "$PKI"
xs_remote_pki "$PKI" "$XD_REMOTE_WAN"
roam_topology
H1=$ROAM_H1
cat <<DIAGRAM

  remote $XD_REMOTE_WAN ── [router: xdnatd, RSIP + LCA + home agent on $XD_GLOBAL:434] ── LAN ── h1 $(xd_host_lan 1) (home)
     │                                                                            ╎
     └── $NAT_PUB_NET.2 [NAT: nftables masquerade] $FOREIGN_NET.1 ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ h1 $FOREIGN_NET.2 (away)
DIAGRAM
xd_start_router --rsip --mobile --state-dir "$STATE" --lease "$RSIP_LEASE" --mobile-keepalive 5 \
	--ca-key "$PKI/lca.key" --ca-cert "$PKI/lca.crt"
xd_ctl --state-dir "$STATE" enroll h1 lan "$(xd_host_lan 1)" secret-file "$XD_TMP/h1.key" >/dev/null

xd_step "h1 at home: blocks and certificate over RSIP (--swan-dir), then the mobile agent"
xd_bg "xdnat-host h1" "$H1" "$XD_TMP/h1.log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
	--router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h1.key" --name h1 --port-count 200 \
	--info-file "$XD_TMP/h1.env" --replace-routes --state-dir "$XD_TMP/h1-state" \
	--swan-dir "$SWAN" --swan-ca "$PKI/anchors.pem" --swan-no-reload
A=$XD_LAST_PID
xd_wait_line "$A" "$XD_TMP/h1.log" '^xdnat-host: ready'
PORTS=$(sed -n 's/^XDNAT_PORTS=//p' "$XD_TMP/h1.env")
SPIS=$(sed -n 's/^XDNAT_SPIS=//p' "$XD_TMP/h1.env")
[ -n "$PORTS" ] && [ -n "$SPIS" ] || fail "h1: no port or SPI block in its info file"
PORTS=${PORTS%%,*} SPIS=${SPIS%%,*}
xd_bg "mobile h1" "$H1" "$XD_TMP/m.log" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" \
	--secret-file "$XD_TMP/h1.key" --name h1 --lifetime 60 --dev "$ROAM_IF_FOREIGN" \
	--home-router "$XD_ROUTER_LAN" --route "$XD_REMOTE_WAN/32"
M=$XD_LAST_PID
xd_ok "h1: ports $PORTS, SPIs $SPIS, certificate from the LCA (lease ${RSIP_LEASE}s); the mobile agent watches $XD_ROUTER_LAN"

xd_step "strongSwan: charon on h1 and the remote, IKE_SA + CHILD_SA through G"
ID=$(xs_swan_id "$SWAN")
[ -n "$ID" ] || fail "h1: no IKE identity in $SWAN/swanctl/conf.d/xdnat.conf"
xs_host_setup h1 "$SWAN" "$XD_REMOTE_WAN" h1 "$H1_INNER/32" "$REMOTE_INNER/32"
xd_ns "$H1" ip addr add "$H1_INNER/32" dev lo
xs_remote_setup remote "$PKI"
{
	echo "connections {"
	xs_remote_conn h1 "$XD_REMOTE_WAN" "$XD_GLOBAL" "$ID" "$REMOTE_INNER/32" "$H1_INNER/32"
	echo "}"
} >"$(xs_dir remote)/swanctl/swanctl.conf"
xd_ns "$XD_NS_REMOTE" ip addr add "$REMOTE_INNER/32" dev lo
xs_start remote "$XD_NS_REMOTE"
xs_load remote
xs_start h1 "$H1"
xs_load h1
xs_initiate h1 h1 remote
xd_ns "$H1" ping -c 2 -i 0.2 -W 2 -I "$H1_INNER" "$REMOTE_INNER" >/dev/null ||
	fail "no ping through the CHILD_SA at home"
# sas NAME: the unique id and IKE SPIs of NAME's ESTABLISHED IKE_SA, the
# SPIs of its CHILD_SA h1 (in, out) and the peer's address.
sas() {
	local ike remote
	ike=$(xs_sas "$1" | awk '/^[^ ].*: #[0-9]+, ESTABLISHED/ {
		si = $5; sr = $6; sub(/_i\*?$/, "", si); sub(/_r\*?$/, "", sr); print $2, si, sr }' | tr -d ',\n')
	remote=$(xs_sas "$1" | sed -n "s/^  remote '.*' @ \([0-9.]*\)\[.*/\1/p" | tr '\n' ' ')
	printf 'ike %s child %speer %s\n' "$ike" "$(xs_child_spis "$1" h1 | tr '\n' ' ')" "$remote"
}
H1_SAS0=$(sas h1) R_SAS0=$(sas remote)
for x in "$H1_SAS0" "$R_SAS0"; do
	grep -Eq '^ike #[0-9]+ [0-9a-f]{16} [0-9a-f]{16} child [0-9a-f]{8} [0-9a-f]{8} peer [0-9.]+ $' <<<"$x" ||
		fail "not one IKE_SA with one CHILD_SA: '$x'"
done
read -r SPI_IN _ < <(xs_child_spis h1 h1)
[ -n "$SPI_IN" ] || fail "h1: no CHILD_SA"
[ "$(xs_sas remote | grep -c ESTABLISHED)" = 1 ] || fail "the remote has not exactly one IKE_SA"
grep -q "peer $XD_GLOBAL $" <<<"$R_SAS0" || fail "the remote's IKE_SA is not with G: $R_SAS0"
xd_info "h1:     $H1_SAS0"
xd_info "remote: $R_SAS0"
xd_ok "SA up, authenticated by h1's Local-CA certificate; h1's inbound ESP SPI 0x$SPI_IN; the remote sees $XD_GLOBAL"

xd_step "a paced TCP transfer (${TCP_SECONDS} s at $TCP_RATE B/s from G:$(( ${PORTS%-*} + 10 ))) and a ping through the SA every $PING_MS ms"
# Everything the remote's own addresses send or receive, on all its links:
# it must never involve the NAT's or the foreign network's addresses.
xd_capture "tcpdump remote" "$XD_NS_REMOTE" any "$XD_TMP/remote.pcap" \
	"ip and (host $XD_REMOTE_WAN or host $REMOTE_INNER)"
CAP=$XD_LAST_PID
xd_bg "tcp server" "$XD_NS_REMOTE" "$XD_TMP/srv.log" python3 "$XD_TRAFFIC" tcp-server --port "$TCP_PORT" \
	--timeout 30 --gaps 100000
SRV=$XD_LAST_PID
xd_wait_line "$SRV" "$XD_TMP/srv.log" listening
xd_bg "tcp client" "$H1" "$XD_TMP/cli.log" python3 "$XD_TRAFFIC" tcp-client --dst "$XD_REMOTE_WAN" \
	--port "$TCP_PORT" --sport "$(( ${PORTS%-*} + 10 ))" --bytes "$(( TCP_RATE * OUT_AT ))" \
	--rate "$TCP_RATE" --until-file "$XD_TMP/tcp.stop" --timeout 30
CLI=$XD_LAST_PID
T_START=$(date +%s.%N)
xd_bg "ping via SA" "$H1" "$XD_TMP/ping.log" ping -D -i "$(awk -v m="$PING_MS" 'BEGIN{print m/1000}')" \
	-w 300 -I "$H1_INNER" "$REMOTE_INNER"
PING=$XD_LAST_PID
sleep "$OUT_AT"

xd_step "h1 moves out mid-transfer: LAN link down, foreign link behind the NAT up"
COA0=$(xd_stat roam_to_coa)
T_OUT=$(date +%s.%N)
roam_move_out
T_OUT1=$(date +%s.%N)
xd_wait_line "$M" "$XD_TMP/m.log" 'registered: lifetime'
SHOW=$(xd_ctl -j mobile show)
python3 -c 'import json,sys; e=json.loads(sys.argv[1])["mobile"]; assert len(e)==1 and e[0]["tunnel_addr"]==sys.argv[2], e' \
	"$SHOW" "$NAT_PUB_NET.2" || fail "mobile show after the move: $SHOW"
xd_ok "away: registered, tunnel endpoint $NAT_PUB_NET.2 (the NAT); xdnatctl mobile show:"
xd_ctl mobile show | sed 's/^/      /'
sleep "$(( AWAY / 2 ))"
# ESP from the remote to h1's inbound SPI, at the care-of endpoint.
in0=$(xs_sas h1 --raw | grep -o 'packets-in=[0-9]*' | head -1 | cut -d= -f2)
COA1=$(xd_stat roam_to_coa)
xd_ns "$XD_NS_REMOTE" ping -c 5 -i 0.1 -W 2 -I "$REMOTE_INNER" "$H1_INNER" >/dev/null ||
	fail "the remote's pings through the SA do not reach h1 away"
in1=$(xs_sas h1 --raw | grep -o 'packets-in=[0-9]*' | head -1 | cut -d= -f2)
COA2=$(xd_stat roam_to_coa)
[ "$(sas h1)" = "$H1_SAS0" ] || fail "h1's SAs changed while away: $(sas h1)"
[ "$COA2" -gt "$COA1" ] && [ "$COA1" -gt "$COA0" ] || fail "roam_to_coa did not grow: $COA0 $COA1 $COA2"
[ "${in1:-0}" -ge "$(( ${in0:-0} + 5 ))" ] || fail "h1's CHILD_SA counted ${in0:-?} -> ${in1:-?} packets in"
xd_ok "ESP to SPI 0x$SPI_IN reached h1 at its care-of endpoint: roam_to_coa $COA0 -> $COA2, CHILD_SA packets in $in0 -> $in1"
# Back at OUT_AT + AWAY into the transfer (later if the checks above took
# longer: the transfer goes on until told, so both moves are mid-transfer).
python3 -c 'import sys, time; time.sleep(max(0, float(sys.argv[1]) - time.time()))' \
	"$(awk -v t="$T_START" -v o="$OUT_AT" -v a="$AWAY" 'BEGIN { printf "%.3f", t + o + a }')"

xd_step "h1 comes back: foreign link down, LAN link up"
T_BACK=$(date +%s.%N)
roam_move_back
T_BACK1=$(date +%s.%N)
xd_wait_line "$M" "$XD_TMP/m.log" 'deregistered'
[ "$(roam_mobile_count)" = 0 ] || fail "still listed after coming home"
xd_ok "home: deregistered, nothing listed"
# The transfer ends TCP_SECONDS after its start, but at least 4 s after
# the move back.
python3 -c 'import sys, time; time.sleep(max(0, max(map(float, sys.argv[1:])) - time.time()))' \
	"$(awk -v t="$T_START" -v d="$TCP_SECONDS" 'BEGIN { printf "%.3f", t + d }')" \
	"$(awk -v t="$T_BACK1" 'BEGIN { printf "%.3f", t + 4 }')"
touch "$XD_TMP/tcp.stop"

xd_step "the transfer ends: data, SAs, what the remote saw, the interruptions"
# tcp_fail WHAT: fail with both ends' output and the resets the remote saw.
tcp_fail() {
	xd_stop "$CAP" >/dev/null 2>&1 || true
	tcpdump -nn -tt -r "$XD_TMP/remote.pcap" 'tcp[tcpflags] & tcp-rst != 0' 2>/dev/null | head -5 | sed 's/^/    rst| /' >&2
	fail "$1: client $(tail -1 "$XD_TMP/cli.log"); server $(tail -1 "$XD_TMP/srv.log" | cut -c1-300); moves at $T_OUT, $T_BACK"
}
wait "$CLI" || tcp_fail "the TCP client failed"
wait "$SRV" || tcp_fail "the TCP server failed"
kill -INT "$PING" 2>/dev/null || true
wait "$PING" || true
C=$(tail -1 "$XD_TMP/cli.log") S=$(tail -1 "$XD_TMP/srv.log")
[ "$(jget '["sha256"]' <<<"$C")" = "$(jget '["sha256"]' <<<"$S")" ] || fail "TCP data differ: $C / $S"
[ "$(jget '["peer"]' <<<"$S")" = "$XD_GLOBAL" ] || fail "the TCP server saw $(jget '["peer"]' <<<"$S"), not G"
# The interruption of a move: the longest stall of the receiver that
# overlaps the move's commands (from the first to 0.5 s after the last: the
# data is paced every 10 ms, so a stall there is the move's).
R=$(python3 - "$S" "$MAX_STALL_MS" "$T_OUT" "$T_OUT1" "$T_BACK" "$T_BACK1" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); lim = int(sys.argv[2])
res = []
for t0, t1 in ((float(sys.argv[3]), float(sys.argv[4])), (float(sys.argv[5]), float(sys.argv[6]))):
    tm = t0
    st = [g for g, at in r["gaps"] if r["t0"] + at + g / 1000 > t0 and r["t0"] + at < t1 + 0.5]
    assert st, ("no stall spans the move at %.3f" % tm, r)
    res.append(max(st))
assert all(x < lim for x in res), (res, r)
print(*res)
PY
) || fail "TCP stalls above ${MAX_STALL_MS} ms: $S"
read -r OUT_MS BACK_MS <<<"$R"
xd_ok "TCP: $(jget '["bytes"]' <<<"$S") bytes in $(jget '["seconds"]' <<<"$S") s, SHA-256 identical; the server saw $XD_GLOBAL:$(jget '["peer_port"]' <<<"$S")"

H1_SAS1=$(sas h1) R_SAS1=$(sas remote)
[ "$H1_SAS1" = "$H1_SAS0" ] || fail "h1's SAs changed: before '$H1_SAS0', after '$H1_SAS1'"
[ "$R_SAS1" = "$R_SAS0" ] || fail "the remote's SAs changed: before '$R_SAS0', after '$R_SAS1'"
[ "$(xs_sas remote | grep -c ESTABLISHED)" = 1 ] || fail "the remote holds more than one IKE_SA"
[ "$(grep -c 'IKE_SA .* established between' "$(xs_log remote)")" = 1 ] ||
	fail "the remote established more than one IKE_SA"
xd_ns "$H1" ping -c 2 -i 0.2 -W 2 -I "$H1_INNER" "$REMOTE_INNER" >/dev/null ||
	fail "no ping through the CHILD_SA after coming back"
xd_ok "the same IKE_SA and CHILD_SA on both ends (same unique id, IKE and ESP SPIs), no new IKE_SA; the remote's peer is $XD_GLOBAL"

xd_stop "$CAP" || true
BAD=$(tcpdump -nn -r "$XD_TMP/remote.pcap" "net $NAT_PUB_NET.0/24 or net $FOREIGN_NET.0/24" 2>/dev/null | wc -l)
TOTAL=$(tcpdump -nn -r "$XD_TMP/remote.pcap" 2>/dev/null | wc -l)
[ "$BAD" = 0 ] || fail "the remote saw the care-of or the NAT address in $BAD packets"
[ "$TOTAL" -gt 100 ] || fail "the capture on the remote holds only $TOTAL packets"
read -r PTX PRX <<<"$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$XD_TMP/ping.log")"
xd_ok "the remote's $TOTAL packets (tcpdump) carry none of $NAT_PUB_NET.2 / $FOREIGN_NET.0/24"
xd_ok "interruption (longest TCP stall): move out $OUT_MS ms, move back $BACK_MS ms; pings through the SA: $PRX of $PTX answered"
# bindings: "kind range state" of h1's RSIP bindings.
bindings() { xd_ctl --state-dir "$STATE" rsip list | awk '$1 == "h1" { print $6, $7, $8 }' | sort; }
B=$(bindings)
sleep "$(( RSIP_LEASE / 2 + 2 ))"
xd_alive "$A" || fail "the RSIP agent exited: $(tail -3 "$XD_TMP/h1.log")"
[ "$(bindings)" = "$B" ] && [ "$(bindings)" = "$(printf 'ports %s active\nspi %s active' "$PORTS" "$(printf '0x%x-0x%x' "${SPIS%-*}" "${SPIS#*-}")" | sort)" ] ||
	fail "h1's RSIP bindings after coming home: $(bindings | tr '\n' ';') (the agent: $(tail -3 "$XD_TMP/h1.log" | tr '\n' ' '))"
xd_ok "the RSIP agent ran throughout ($(grep -c 'router unreachable' "$XD_TMP/h1.log") renewal(s) timed out while away); h1 holds the same blocks, active, back home"
xd_stop "$M" || true
