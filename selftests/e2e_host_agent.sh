#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# xdnat-host over RSIP, the cases of issue 13:
#   - MTU: h1's LAN interface has MTU LAN_MTU; the agent runs under
#     `nsenter --net` (the /sys it sees is the root namespace's) and still
#     routes global destinations with LAN_MTU - 20;
#   - exact SPI block: the agent reports the router's whole binding
#     (0x10000 SPIs with 16-bit blocks, not 65535) in its ready line and
#     in XDNAT_SPIS, equal to the router's listing;
#   - port runs that came apart: a statically owned range right after h1's
#     first grant and --max-ports = the count (no second try possible) give
#     h1 two runs; the namespace's ephemeral ports (ip_local_port_range minus
#     ip_local_reserved_ports) are exactly the ports the router lists for h1;
#   - the router restarts (now with room for a second try);
#   - three agents started at once: each one's ephemeral ports are exactly
#     its grants, in one run (how many did is printed), and their default
#     info files (no --info-file, one namespace each) are three different
#     files;
#   - free after the router restart: h1, idle since, stops: it reconnects and
#     frees its blocks (the listing shows none active, the maps none of its
#     ports).
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.58}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.58.0}
. "$(dirname "$0")/lib/netns.sh"

POOL_FIRST=${POOL_FIRST:-40000}
POOL=$POOL_FIRST-49999
COUNT=${COUNT:-500}          # --port-count of every agent (two requests: 255 + 245)
LAN_MTU=${LAN_MTU:-1480}
LEASE=120                    # no renewal during the test: the release must reconnect
STATE=""

envget() { sed -n "s/^$2=//p" "$1" | tr -d '"'; }
rsip_list() { xd_ctl --state-dir "$STATE" -j rsip list; }
owner() { xd_ctl -j lookup port "$1" | jget '["host"]'; }
# granted NAME KIND: the router's active bindings of host NAME, "first-last" per line.
granted() {
	rsip_list | python3 -c '
import json, sys
for b in json.load(sys.stdin)["bindings"]:
    if b["host"] == sys.argv[1] and b.get("kind") == sys.argv[2] and b.get("state") == "active":
        print("%d-%d" % (b["first"], b["last"]))' "$1" "$2"
}
# ephemeral NS: the ports the kernel picks from in NS (range minus reserved),
# as runs "a-b" one per line.
ephemeral() {
	local range reserved
	range=$(xd_ns "$1" cat /proc/sys/net/ipv4/ip_local_port_range)
	reserved=$(xd_ns "$1" cat /proc/sys/net/ipv4/ip_local_reserved_ports)
	python3 - "$range" "$reserved" <<'EOF'
import sys
lo, hi = map(int, sys.argv[1].split())
res = set()
for part in filter(None, sys.argv[2].split(",")):
    a, _, b = part.partition("-")
    res.update(range(int(a), int(b or a) + 1))
ports = [p for p in range(lo, hi + 1) if p not in res]
runs, start = [], None
for i, p in enumerate(ports):
    if start is None:
        start = p
    if i + 1 == len(ports) or ports[i + 1] != p + 1:
        runs.append("%d-%d" % (start, p)); start = None
print("\n".join(runs))
EOF
}
# as_runs: "first-last" lines on stdin, merged into sorted runs.
as_runs() {
	python3 -c '
import sys
r = sorted(tuple(map(int, l.split("-"))) for l in sys.stdin.read().split())
out = []
for a, b in r:
    if out and out[-1][1] + 1 == a:
        out[-1][1] = b
    else:
        out.append([a, b])
print("\n".join("%d-%d" % (a, b) for a, b in out))'
}
check_ports() {   # I: the namespace uses exactly what the router granted h$I
	local i=$1 want have
	want=$(granted "h$i" ports | as_runs)
	have=$(ephemeral "$(xd_host_ns "$i")")
	[ -n "$want" ] || fail "h$i holds no ports"
	[ "$want" = "$have" ] || fail "h$i: ephemeral ports $(echo $have) but granted $(echo $want)"
	[ "$(granted "h$i" ports | as_runs | python3 -c '
import sys
print(sum(int(b) - int(a) + 1 for a, b in (l.split("-") for l in sys.stdin.read().split())))')" = "$COUNT" ] ||
		fail "h$i: granted $(echo $want), not $COUNT ports"
	RUNS_OF[$i]=$(echo $want)
}
declare -A RUNS_OF=()

start_agent() {   # I [OPTIONS...]: in the background, no wait
	local i=$1
	shift
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" \
		--name "h$i" --port-count "$COUNT" --lease "$LEASE" --no-cert "$@"
	XD_HOST_PID[$i]=$XD_LAST_PID
}

xd_init
STATE=$XD_TMP/state
ROUTER_OPTS=(--rsip --state-dir "$STATE" --port-range "$POOL" --lease "$LEASE"
	--max-lease "$LEASE" --quarantine 30 --keep-maps)

xd_step "topology: 4 hosts, h1's LAN MTU $LAN_MTU; xdnatd --rsip --max-ports $COUNT"
xd_topology 4
H1=$(xd_host_ns 1)
ip -n "$XD_NS_SWITCH" link set p-h1 mtu "$LAN_MTU"
ip -n "$H1" link set "$XD_IF_HOST" mtu "$LAN_MTU"
xd_start_router "${ROUTER_OPTS[@]}" --max-ports "$COUNT"
for i in 1 2 3 4; do
	xd_ctl --state-dir "$STATE" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key"
done
# The ports right after h1's first grant (255 ports) belong to a static host.
BLOCK_FIRST=$((POOL_FIRST + 255)) BLOCK_LAST=$((POOL_FIRST + 299))
xd_ctl host add 9 lan "$XD_LAN_PREFIX.99" ports "$BLOCK_FIRST-$BLOCK_LAST"
xd_ok "router up; ports $BLOCK_FIRST-$BLOCK_LAST owned by a static host"

xd_step "h1: MTU from its own namespace, exact SPI block, two port runs used in full"
start_agent 1 --info-file "$XD_TMP/h1.env" --replace-routes
xd_wait_line "${XD_HOST_PID[1]}" "$XD_TMP/xdnat-host-h1.log" '^xdnat-host: ready'
mtu=$(xd_ns "$H1" ip -o route show default | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
[ "$mtu" = $((LAN_MTU - 20)) ] || fail "h1's default route has mtu '$mtu', not $((LAN_MTU - 20))"
xd_ok "h1 routes with mtu $mtu (LAN MTU $LAN_MTU - 20) though /sys shows the root namespace"
spis=$(granted h1 spi)
[ "$(echo "$spis" | wc -l)" = 1 ] || fail "h1 holds SPI bindings '$spis'"
want=$(printf '0x%08x-0x%08x' "${spis%-*}" "${spis#*-}")
[ "$(envget "$XD_TMP/h1.env" XDNAT_SPIS)" = "$want" ] ||
	fail "h1 reports SPIs $(envget "$XD_TMP/h1.env" XDNAT_SPIS), the router granted $want"
grep -q "SPIs $(printf '0x%x-0x%x' "${spis%-*}" "${spis#*-}")" "$XD_TMP/xdnat-host-h1.log" ||
	fail "h1's ready line does not say SPIs $want: $(grep ready "$XD_TMP/xdnat-host-h1.log")"
[ $((${spis#*-} - ${spis%-*} + 1)) = 65536 ] || fail "h1's SPI binding $spis is not one 16-bit block"
xd_ok "h1 reports SPIs $want, the router's binding exactly"
check_ports 1
[ "$(echo "${RUNS_OF[1]}" | wc -w)" = 2 ] || fail "h1 was meant to get two runs, got ${RUNS_OF[1]}"
[ "$(envget "$XD_TMP/h1.env" XDNAT_PORT_RUNS)" = "${RUNS_OF[1]}" ] ||
	fail "h1's info file says runs '$(envget "$XD_TMP/h1.env" XDNAT_PORT_RUNS)', not ${RUNS_OF[1]}"
reserved=$(xd_ns "$H1" cat /proc/sys/net/ipv4/ip_local_reserved_ports)
xd_ok "h1 holds ${RUNS_OF[1]}: ip_local_port_range spans both, reserved '$reserved'"

xd_step "the router restarts (--max-ports $((2 * COUNT)): room for a second try)"
before=$(granted h1 ports | wc -l)
xd_stop "$XD_ROUTER_PID" || fail "xdnatd did not stop cleanly"
mv "$XD_TMP/xdnatd.log" "$XD_TMP/xdnatd-1.log"
xd_start_router "${ROUTER_OPTS[@]}" --max-ports $((2 * COUNT))
[ "$(granted h1 ports | wc -l)" = "$before" ] || fail "h1's bindings changed across the restart"

xd_step "h2, h3, h4 start at once, with default info files"
for i in 2 3 4; do
	start_agent "$i"
done
for i in 2 3 4; do
	xd_wait_line "${XD_HOST_PID[$i]}" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready' 20
done
declare -A ENV_OF=()
for i in 2 3 4; do
	check_ports "$i"
	ENV_OF[$i]=/run/xdnat/host-$(xd_host_ns "$i")-$XD_IF_HOST.env
	[ -f "${ENV_OF[$i]}" ] || fail "h$i: no default info file ${ENV_OF[$i]} ($(ls /run/xdnat))"
	first=$(envget "${ENV_OF[$i]}" XDNAT_PORTS)
	echo "${RUNS_OF[$i]}" | grep -qw -- "$first" || fail "h$i's ${ENV_OF[$i]} has ports $first, not its own"
	xd_info "h$i: ${RUNS_OF[$i]} in ${ENV_OF[$i]}"
done
[ "$(printf '%s\n' "${ENV_OF[@]}" | sort -u | wc -l)" = 3 ] || fail "info files collide: ${ENV_OF[*]}"
for i in 2 3 4; do
	[ "$(echo "${RUNS_OF[$i]}" | wc -w)" = 1 ] || fail "h$i holds ${RUNS_OF[$i]}, not one run"
done
xd_ok "each uses exactly its grants, in one run; 3 distinct default info files"
xd_stop "${XD_HOST_PID[4]}" || fail "h4 did not stop cleanly"
[ ! -e "${ENV_OF[4]}" ] || fail "h4 left ${ENV_OF[4]} behind"
[ -f "${ENV_OF[3]}" ] || fail "h4's stop removed h3's info file"
xd_ok "h4's stop removed its own info file only"

xd_step "h1, idle since the restart, stops and frees its blocks"
P1=${RUNS_OF[1]%% *}
[ "$(owner "${P1%-*}")" != 0 ] || fail "h1's ports are not in the maps after the restart"
xd_stop "${XD_HOST_PID[1]}" || fail "xdnat-host h1 did not stop cleanly"
[ -z "$(granted h1 ports)$(granted h1 spi)" ] ||
	fail "h1's blocks still active after its stop: $(granted h1 ports) $(granted h1 spi); $(tail -5 "$XD_TMP/xdnat-host-h1.log")"
for r in ${RUNS_OF[1]}; do
	[ "$(owner "${r%-*}")" = 0 ] && [ "$(owner "${r#*-}")" = 0 ] || fail "h1's ports $r still mapped"
done
grep -q "expire with their leases" "$XD_TMP/xdnat-host-h1.log" && fail "h1 gave up freeing its blocks"
xd_ok "h1 reconnected after the restart and freed its blocks: none active in rsip list, none in the maps"
