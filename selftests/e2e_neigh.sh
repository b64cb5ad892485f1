#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# xdnatd and the router's neighbour entries (README, "Neighbour entries"):
#   - an operator's permanent entry for h1 and noarp entry for h4, made before
#     xdnatd starts, stay as they are; one for h2, made over xdnatd's managed
#     entry while it runs, stays permanent too;
#   - inbound traffic to all three flows through the XDP path (wan_to_host),
#     not one packet counted pass_no_neigh;
#   - h3 gets a managed entry tagged "proto 88" that xdnatd removes when h3
#     is deleted; xdnatd's stop removes its own entries, never the operator's;
#   - while all that happens, xdnatd runs no program (strace -f: no execve),
#     i.e. no `ip` any more.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.57}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.57.0}
. "$(dirname "$0")/lib/netns.sh"

PROTO=88                    # XD_NEIGH_PROTO (loader/daemon/neigh.h)
STREAM_N=${STREAM_N:-200}   # datagrams per inbound stream
SETTLE=${SETTLE:-3}         # seconds: several of xdnatd's 1 s passes

command -v strace >/dev/null || { echo "missing tool: strace (scripts/deps.sh)" >&2; exit 1; }

R=$XD_NS_ROUTER
# neigh_json ADDR: `ip -j -d neigh` entry for ADDR on the router's LAN ("" if none).
neigh_json() {
	ip -n "$R" -j -d neigh show "$1" dev "$XD_IF_LAN" nud all | python3 -c '
import json, sys
e = json.load(sys.stdin)
print(json.dumps(e[0]) if e else "")'
}
# neigh_field ADDR KEY: one field of that entry (state is a list: joined by ",").
neigh_field() {
	neigh_json "$1" | python3 -c '
import json, sys
t = sys.stdin.read().strip()
if not t:
    print("ABSENT"); sys.exit(0)
v = json.loads(t).get(sys.argv[1], "")
print(",".join(map(str, v)) if isinstance(v, list) else v)' "$2"
}
is_permanent() { [ "$(neigh_field "$1" state)" = PERMANENT ] && [ "$(neigh_field "$1" lladdr)" = "$2" ]; }
absent() { [ "$(neigh_field "$1" state)" = ABSENT ]; }
is_noarp() { [ "$(neigh_field "$1" state)" = NOARP ] && [ "$(neigh_field "$1" lladdr)" = "$2" ]; }
is_ours_managed() {
	local j
	j=$(neigh_json "$1")
	[ -n "$j" ] && python3 -c '
import json, sys
e = json.loads(sys.argv[1])
assert str(e.get("protocol")) == sys.argv[2], e
assert "managed" in e.get("flags", []) or "managed" in json.dumps(e), e
assert any(s in ("REACHABLE", "STALE", "DELAY", "PROBE") for s in e["state"]), e' "$j" "$PROTO" 2>/dev/null
}
mac_of() { ip -n "$(xd_host_ns "$1")" -j link show "$XD_IF_HOST" | jget '[0]["address"]'; }

# inbound I PORT: a UDP stream from the remote to G:PORT, counted in host I;
# fails unless every datagram arrived and none went pass_no_neigh.
inbound() {
	local i=$1 port=$2 nn0 nn1 w0 w1 cnt got
	nn0=$(xd_stat pass_no_neigh) w0=$(xd_stat wan_to_host)
	xd_bg "count h$i" "$(xd_host_ns "$i")" "$XD_TMP/count$i" python3 "$XD_TRAFFIC" udp-count \
		--port "$port" --idle 1.5 --timeout 20
	cnt=$XD_LAST_PID
	xd_wait_line "$cnt" "$XD_TMP/count$i" listening
	xd_py "$XD_NS_REMOTE" udp-stream --dst "$XD_GLOBAL" --port "$port" --rate 400 \
		--seconds "$(python3 -c "print($STREAM_N / 400)")" >/dev/null
	wait "$cnt" || fail "h$i: udp-count failed: $(cat "$XD_TMP/count$i")"
	got=$(jget '["received"]' <"$XD_TMP/count$i")
	nn1=$(xd_stat pass_no_neigh) w1=$(xd_stat wan_to_host)
	[ "$got" = "$STREAM_N" ] || fail "h$i: $got of $STREAM_N datagrams arrived"
	[ "$nn1" = "$nn0" ] || fail "h$i: $((nn1 - nn0)) packets went pass_no_neigh"
	[ $((w1 - w0)) -ge "$STREAM_N" ] || fail "h$i: wan_to_host counted $((w1 - w0)) < $STREAM_N"
	xd_ok "h$i: $got/$STREAM_N datagrams to $XD_GLOBAL:$port via XDP (wan_to_host +$((w1 - w0)), pass_no_neigh +0)"
}

xd_init
xd_step "topology: 4 hosts; before xdnatd starts the operator makes h1's entry permanent, h4's noarp"
xd_topology 4
H1=$(xd_host_lan 1) H2=$(xd_host_lan 2) H3=$(xd_host_lan 3) H4=$(xd_host_lan 4)
MAC1=$(mac_of 1) MAC2=$(mac_of 2) MAC4=$(mac_of 4)
ip -n "$R" neigh add "$H1" lladdr "$MAC1" nud permanent dev "$XD_IF_LAN"
# extern_learn: the kernel's forced garbage collection (the ARP table is one
# table for all namespaces; over gc_thresh2 entries, e.g. while other tests
# run) deletes unreferenced NOARP entries, which would test the kernel, not
# xdnatd.  The entry is still NOARP, which is what xdnatd must leave alone.
ip -n "$R" neigh add "$H4" lladdr "$MAC4" nud noarp extern_learn dev "$XD_IF_LAN"
is_permanent "$H1" "$MAC1" || fail "could not set h1's permanent entry"
is_noarp "$H4" "$MAC4" || fail "could not set h4's noarp entry: $(neigh_json "$H4")"
xd_start_router
ROUTER=$XD_ROUTER_PID
# Every program xdnatd would run from now on shows as an execve.
xd_bg strace - "$XD_TMP/strace.log" strace -f -qq -e trace=execve,execveat -o "$XD_TMP/strace.out" \
	-p "$ROUTER"
STRACE=$XD_LAST_PID
wait_for 5 grep -q . "$XD_TMP/strace.out" || true   # nothing expected; give it time to attach
sleep 0.5
xd_alive "$STRACE" || fail "strace could not attach to xdnatd: $(cat "$XD_TMP/strace.log")"

xd_ctl host add 1 lan "$H1" ports 20000-20999
xd_ctl host add 2 lan "$H2" ports 21000-21999
xd_ctl host add 3 lan "$H3" ports 22000-22999
xd_ctl host add 4 lan "$H4" ports 23000-23999
for i in 1 2 3 4; do
	xd_start_host "$i" "$((19 + i))000-$((19 + i))999"
done
wait_for 10 is_ours_managed "$H2" || fail "no managed entry (proto $PROTO) for h2: $(neigh_json "$H2")"
wait_for 10 is_ours_managed "$H3" || fail "no managed entry (proto $PROTO) for h3: $(neigh_json "$H3")"
sleep "$SETTLE"
is_permanent "$H1" "$MAC1" || fail "h1's permanent entry changed: $(neigh_json "$H1")"
is_noarp "$H4" "$MAC4" || fail "h4's noarp entry changed: $(neigh_json "$H4")"
xd_ok "h1: still PERMANENT $MAC1, h4: still NOARP $MAC4 after ${SETTLE}s; h2, h3: managed entries made by xdnatd (proto $PROTO)"

xd_step "traffic to h1, h4 (operator's entries) and h2 (xdnatd's) goes through XDP"
inbound 1 20100
inbound 4 23100
inbound 2 21100

xd_step "the operator makes h2's entry permanent while xdnatd runs"
ip -n "$R" neigh replace "$H2" lladdr "$MAC2" nud permanent dev "$XD_IF_LAN"
sleep "$SETTLE"
is_permanent "$H2" "$MAC2" || fail "h2's permanent entry changed: $(neigh_json "$H2")"
xd_ok "h2: still PERMANENT $MAC2 after ${SETTLE}s"
inbound 2 21200

xd_step "host del: xdnatd removes its own entry (h3), never the operator's (h2)"
xd_ctl host del 3
xd_ctl host del 2
wait_for 5 absent "$H3" ||
	fail "h3's entry outlived h3: $(neigh_json "$H3")"
sleep "$SETTLE"
is_permanent "$H2" "$MAC2" || fail "h2's permanent entry went with h2: $(neigh_json "$H2")"
xd_ok "h3's managed entry removed; h2's permanent entry kept"

xd_step "no program run by xdnatd meanwhile (strace -f -e execve)"
kill -TERM "$STRACE"
wait "$STRACE" 2>/dev/null || true
if grep -q 'execve' "$XD_TMP/strace.out"; then
	cat "$XD_TMP/strace.out" >&2
	fail "xdnatd ran programs"
fi
xd_ok "0 execve in xdnatd's process tree over $((SECONDS))s of the test"

xd_step "xdnatd stops: the operator's entries stay"
xd_ctl host add 3 lan "$H3" ports 22000-22999
wait_for 10 is_ours_managed "$H3" || fail "no managed entry for h3 after it came back"
xd_stop "$ROUTER" || fail "xdnatd did not stop cleanly"
is_permanent "$H1" "$MAC1" || fail "h1's permanent entry did not survive xdnatd's stop"
is_permanent "$H2" "$MAC2" || fail "h2's permanent entry did not survive xdnatd's stop"
is_noarp "$H4" "$MAC4" || fail "h4's noarp entry did not survive xdnatd's stop"
absent "$H3" || fail "xdnatd left its entry for h3: $(neigh_json "$H3")"
xd_ok "h1, h2 PERMANENT and h4 NOARP as the operator set them; xdnatd's own entry for h3 removed"
