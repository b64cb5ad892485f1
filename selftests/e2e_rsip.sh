#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# RSIP control plane end to end (RFC 3103/3104 over TCP, docs/CONTROL-PLANE.md):
#   - two enrolled hosts register over the protocol and get disjoint port
#     and SPI blocks, installed in the router's maps; UDP flows both ways;
#   - a host with the wrong secret is refused (REGISTRATION_DENIED) and gets
#     nothing;
#   - a host that stops renewing loses its block from the maps as soon as
#     the lease lapses; the block is not handed out during the quarantine
#     (another host gets another block) and is handed out again after it;
#   - SIGHUP makes xdnat-host renew at once; it keeps renewing afterwards;
#   - a clean stop frees the blocks (FREE, DE-REGISTER);
#   - `xdnatctl unenroll` ends a connected host's session: its next request
#     (a renewal, forced with SIGHUP) is refused and the agent gives up;
#   - `rsip list` shows the quarantined blocks of ended registrations;
#   - a router without shared IKE ports announces none: no XDNAT_IKE_PORT.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.45}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.45.0}
. "$(dirname "$0")/lib/netns.sh"

LEASE=${LEASE:-4}            # seconds: short, so expiry is quick to observe
QUARANTINE=${QUARANTINE:-6}
POOL=${POOL:-30000-30999}
PORTS_PER_HOST=${PORTS_PER_HOST:-200}
STATE=""

envget() { sed -n "s/^$2=//p" "$1"; }
owner() { xd_ctl -j lookup port "$1" | jget '["host"]'; }

# start_host I NAME SECRET_FILE [OPTIONS...]: xdnat-host in RSIP mode.
start_host() {
	local i=$1 name=$2 secret=$3
	shift 3
	local log=$XD_TMP/xdnat-host-h$i.log
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
		--router "$XD_ROUTER_LAN" --secret-file "$secret" --name "$name" \
		--port-count "$PORTS_PER_HOST" --info-file "$XD_TMP/h$i.env" --replace-routes "$@"
	XD_HOST_PID[$i]=$XD_LAST_PID
}

xd_init
STATE=$XD_TMP/state
xd_step "topology: global $XD_GLOBAL, LAN $XD_LAN_PREFIX.0/24, 3 hosts"
xd_topology 3
xd_start_router --rsip --state-dir "$STATE" --lease "$LEASE" --max-lease "$LEASE" \
	--quarantine "$QUARANTINE" --port-range "$POOL" --port-block 100 --unknown drop
grep -q "RSIP server on $XD_ROUTER_LAN:4555" "$XD_TMP/xdnatd.log" || fail "no RSIP server line"
xd_ok "xdnatd serves RSIP on $XD_ROUTER_LAN:4555 (LAN side)"

xd_step "enrol h1, h2, h3 (operator: xdnatctl enroll)"
for i in 1 2 3; do
	xd_ctl --state-dir "$STATE" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key"
	[ "$(stat -c %a "$XD_TMP/h$i.key")" = 600 ] || fail "secret file of h$i is not mode 600"
done
# A secret that is not h3's (well-formed, wrong).
xd_ctl --state-dir "$STATE" enroll decoy secret-file "$XD_TMP/wrong.key"
xd_ok "enrolled; secrets written 0600"

xd_step "h1 and h2 register over RSIP and get disjoint blocks"
start_host 1 h1 "$XD_TMP/h1.key"
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h1.log" '^xdnat-host: ready'
start_host 2 h2 "$XD_TMP/h2.key"
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h2.log" '^xdnat-host: ready'
P1=$(envget "$XD_TMP/h1.env" XDNAT_PORTS) P2=$(envget "$XD_TMP/h2.env" XDNAT_PORTS)
S1=$(envget "$XD_TMP/h1.env" XDNAT_SPIS) S2=$(envget "$XD_TMP/h2.env" XDNAT_SPIS)
[ "$(envget "$XD_TMP/h1.env" XDNAT_GLOBAL)" = "$XD_GLOBAL" ] || fail "h1 did not get $XD_GLOBAL"
# The router shares no IKE ports: nothing announced, nothing written
# (e2e_shared_ike.sh checks the announcement).
grep -q '^XDNAT_IKE_PORT' "$XD_TMP/h1.env" && fail "h1 was told to use shared IKE ports the router does not share"
grep -q 'shared IKE ports' "$XD_TMP/xdnat-host-h1.log" && fail "h1 reports shared IKE ports the router does not share"
python3 - "$P1" "$P2" "$S1" "$S2" "$PORTS_PER_HOST" "$POOL" <<'PY' || fail "blocks overlap or are wrong: ports $P1 / $P2, SPIs $S1 / $S2"
import sys
r = lambda s: tuple(int(x, 0) for x in s.split("-"))
p1, p2, s1, s2 = map(r, sys.argv[1:5])
n = int(sys.argv[5]); lo, hi = r(sys.argv[6])
for p in (p1, p2):
    assert p[1] - p[0] + 1 == n and lo <= p[0] and p[1] <= hi, p
assert p1[1] < p2[0] or p2[1] < p1[0]
assert s1[1] < s2[0] or s2[1] < s1[0]
assert s1[0] > 255 and s2[0] > 255
PY
for i in 1 2; do
	p=P$i
	first=${!p%-*} last=${!p#*-}
	o1=$(owner "$first") o2=$(owner "$last")
	[ "$o1" != 0 ] && [ "$o1" = "$o2" ] || fail "h$i's ports $first-$last are not one host's in the maps ($o1, $o2)"
	eval "H${i}_ID=$o1"
done
[ "$H1_ID" != "$H2_ID" ] || fail "both hosts have map id $H1_ID"
o=$(xd_ctl -j lookup spi "${S1%-*}" | jget '["host"]')
[ "$o" = "$H1_ID" ] || fail "h1's SPI block is owned by host $o in the maps"
xd_ok "h1: ports $P1, SPIs $S1 (host $H1_ID); h2: ports $P2, SPIs $S2 (host $H2_ID)"

xd_step "traffic flows for both hosts"
R=$XD_NS_REMOTE
xd_bg echo "$R" "$XD_TMP/uecho" python3 "$XD_TRAFFIC" udp-echo --port 5353 --count 20 --timeout 15
ECHO=$XD_LAST_PID
xd_wait_line "$ECHO" "$XD_TMP/uecho" listening
for i in 1 2; do
	xd_py "$(xd_host_ns "$i")" udp-client --dst "$XD_REMOTE_WAN" --port 5353 --count 10 >"$XD_TMP/u$i"
	n=$(jget '["echoed"]' <"$XD_TMP/u$i") sport=$(jget '["sport"]' <"$XD_TMP/u$i")
	p=P$i
	[ "$n" = 10 ] || fail "h$i: $n of 10 UDP echoes came back"
	[ "$sport" -ge "${!p%-*}" ] && [ "$sport" -le "${!p#*-}" ] || fail "h$i used port $sport outside ${!p}"
done
wait "$ECHO" || fail "echo server failed"
xd_ok "10 datagrams each way per host, from ports inside each block"

xd_step "SIGHUP to xdnat-host renews at once and the renewals go on"
# (It used to end the renewal loop: the leases then lapsed.)
R1=$(xd_ctl --state-dir "$STATE" -j rsip list | python3 -c 'import json,sys; print(min(b["remaining_s"] for b in json.load(sys.stdin)["bindings"] if b["host"] == "h1" and "bind_id" in b))')
for k in 1 2; do
	kill -HUP "${XD_HOST_PID[1]}"
	sleep $((LEASE + 1))
	xd_alive "${XD_HOST_PID[1]}" || fail "xdnat-host h1 died on SIGHUP"
	[ "$(owner "${P1%-*}")" = "$H1_ID" ] || fail "h1's block left the maps $((LEASE + 1))s after SIGHUP $k: not renewed"
done
n=$(grep -c "SIGHUP: renewing the leases now" "$XD_TMP/xdnat-host-h1.log" || true)
[ "$n" = 2 ] || fail "h1 logged $n immediate renewals for 2 SIGHUPs"
xd_ok "h1 renewed at each SIGHUP and kept its block for $((2 * (LEASE + 1)))s (lease ${LEASE}s, ${R1}s left before)"

xd_step "a host with the wrong secret is refused"
rc=0
xd_ns "$(xd_host_ns 3)" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" \
	--secret-file "$XD_TMP/wrong.key" --name h3 --info-file "$XD_TMP/bad.env" \
	>"$XD_TMP/bad.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat "$XD_TMP/bad.log"; fail "xdnat-host with a wrong secret exited $rc, not 1"; }
grep -q REGISTRATION_DENIED "$XD_TMP/bad.log" || { cat "$XD_TMP/bad.log"; fail "no REGISTRATION_DENIED"; }
[ ! -e "$XD_TMP/bad.env" ] || fail "refused host wrote an info file"
[ "$(xd_ctl -j host show | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hosts"]))')" = 2 ] ||
	fail "a refused host appeared in the maps"
xd_ok "refused with REGISTRATION_DENIED; maps unchanged"

xd_step "h2 stops renewing (SIGKILL): its block leaves the maps when the lease lapses"
kill -KILL "${XD_HOST_PID[2]}"
wait "${XD_HOST_PID[2]}" 2>/dev/null || true
t0=$(date +%s%N)
wait_for $((LEASE + 3)) bash -c "[ \"\$('$XD_XDNATCTL' -i '$XD_INSTANCE' --pin-base '$XD_PIN_BASE' -j lookup port ${P2%-*} | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"host\"])')\" = 0 ]" ||
	fail "h2's ports still in the maps $((LEASE + 3))s after it stopped renewing"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(owner "${P2#*-}")" = 0 ] || fail "the end of h2's block is still mapped"
o=$(xd_ctl -j lookup spi "${S2%-*}" | jget '["host"]')
[ "$o" = 0 ] || fail "h2's SPI block still mapped to host $o"
[ "$(owner "${P1%-*}")" = "$H1_ID" ] || fail "h1 lost its block"
xd_ok "h2's ports and SPIs unmapped ${ms} ms after its last renewal stopped (lease ${LEASE}s)"
xd_ctl --state-dir "$STATE" rsip list >"$XD_TMP/list"
grep -q quarantine "$XD_TMP/list" || { cat "$XD_TMP/list"; fail "no quarantined binding listed"; }
t_expired=$(date +%s)

xd_step "during the quarantine, another host does not get h2's block"
start_host 3 h3 "$XD_TMP/h3.key"
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h3.log" '^xdnat-host: ready'
P3=$(envget "$XD_TMP/h3.env" XDNAT_PORTS)
python3 -c 'import sys; a=[int(x) for x in sys.argv[1].split("-")]; b=[int(x) for x in sys.argv[2].split("-")]; sys.exit(0 if a[1] < b[0] or b[1] < a[0] else 1)' "$P2" "$P3" ||
	fail "h3 got $P3 which overlaps h2's quarantined $P2"
xd_ok "h3 got $P3, not h2's quarantined $P2"

xd_step "after the quarantine, h2's old block is handed out again"
left=$(( t_expired + QUARANTINE + 2 - $(date +%s) ))
[ "$left" -gt 0 ] && sleep "$left"
start_host 2 h2 "$XD_TMP/h2.key"
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h2.log" '^xdnat-host: ready'
P2b=$(envget "$XD_TMP/h2.env" XDNAT_PORTS)
[ "$P2b" = "$P2" ] || fail "after the quarantine h2 got $P2b, expected the freed $P2 (first fit)"
xd_ok "h2 registered again and got $P2b back"

xd_step "a clean stop frees the blocks"
xd_stop "${XD_HOST_PID[3]}" || fail "xdnat-host h3 did not stop cleanly"
[ "$(owner "${P3%-*}")" = 0 ] || fail "h3's ports still mapped after its clean stop"
[ ! -e "$XD_TMP/h3.env" ] || fail "h3's info file left behind"
xd_ok "h3 freed $P3 and de-registered"

xd_step "rsip list shows h3's quarantined blocks after its de-registration"
xd_ctl --state-dir "$STATE" -j rsip list >"$XD_TMP/list.json"
python3 - "$XD_TMP/list.json" "$P3" "$QUARANTINE" <<'PY' || fail "h3's freed block is not listed as quarantined: $(cat "$XD_TMP/list.json")"
import json, sys
first, last = (int(x) for x in sys.argv[2].split("-"))
q = [b for b in json.load(open(sys.argv[1]))["bindings"]
     if b["host"] == "h3" and b.get("kind") == "ports" and b.get("first") == first]
assert len(q) == 1, q
b = q[0]
assert b["state"] == "quarantine" and b["last"] == last and not b["registered"] and b["enrolled"], b
assert 0 < b["remaining_s"] <= int(sys.argv[3]), b
PY
xd_ctl --state-dir "$STATE" rsip list >"$XD_TMP/list"
grep -E "^h3 .* ports +$P3 +quarantine +[0-9]+s" "$XD_TMP/list" >/dev/null || { cat "$XD_TMP/list"; fail "rsip list: no quarantined line for h3's $P3"; }
xd_ok "h3's $P3 listed as quarantined ($(sed -n "s/.*ports *$P3 *quarantine *//p" "$XD_TMP/list") left)"

xd_step "xdnatctl unenroll ends h2's session at once"
xd_ctl --state-dir "$STATE" unenroll h2
kill -HUP "${XD_HOST_PID[2]}"
for ((k = 0; k < 50; k++)); do
	xd_alive "${XD_HOST_PID[2]}" || break
	sleep 0.1
done
xd_alive "${XD_HOST_PID[2]}" && fail "h2's agent still running 5s after it was unenrolled"
rc=0
wait "${XD_HOST_PID[2]}" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "h2's agent exited $rc, not 1"
grep -q "REGISTRATION_DENIED" "$XD_TMP/xdnat-host-h2.log" || { cat "$XD_TMP/xdnat-host-h2.log"; fail "h2 was not refused with REGISTRATION_DENIED"; }
grep -q "'h2' is no longer enrolled" "$XD_TMP/xdnatd.log" || fail "xdnatd did not log the ended session"
xd_ok "h2's next renewal was refused (REGISTRATION_DENIED) and its agent exited 1"
