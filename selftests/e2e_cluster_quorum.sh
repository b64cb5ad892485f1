#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Two routers for one global address on one etcd store: elections and
# quorum loss (docs/CLUSTER.md, "Elections and quorum loss").
#   - three etcd members of our own (data in our temp dir), two xdnatd
#     routers r1 and r2 sharing G, each in its own network namespace, with
#     its own pins and its own /run/xdnat (a private mount);
#   - exactly one router acts as the expiry worker, and one as the signer
#     (one LCA key on both), at every check, and `xdnatctl cluster` names
#     them; a CSR sent to the other router is refused (BAD_PARAM);
#   - the expiry worker killed with -9: the other takes over within the
#     election TTL (measured); the killed one restarts and stays a candidate;
#   - one etcd member killed: nothing changes (a host still registers);
#   - two killed (quorum lost): UDP through G to a host and back still
#     flows, a new host is refused with INTERNAL_SERVER_ERROR (104), the
#     running hosts keep their blocks although their 4 s leases lapse, and
#     nobody acts as the expiry worker;
#   - members restarted: a new host gets a block, none granted twice, and
#     the hosts whose leases lapsed during the outage renew them;
#   - after the grace, a killed host's lease is expired by the expiry
#     worker alone.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.46}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.46.0}
. "$(dirname "$0")/lib/netns.sh"

LEASE=${LEASE:-4}          # host leases: short, so that they lapse during the outage
TTL=${TTL:-4}              # election lease TTL (xdnatd --elect-ttl)
POOL=${POOL:-31000-31999}
ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
XD_CA=${XD_CA:-$XD_ROOT/build/xdnat-ca}
R2_LAN=$XD_LAN_PREFIX.250
ETCD_IP=$XD_LAN_PREFIX.251
ETCD_PORTS=(23791 23792 23793)
PEER_PORTS=(23801 23802 23803)
PREFIX=/xdnat-e2e-$$
declare -A R_NS=() R_PID=() R_PINS=() R_LAN=() R_RUN=() R_LOG=()
ETCD_PID=()

[ -x "$ETCD" ] || { echo "missing $ETCD: install etcd-server (scripts/deps.sh) or set ETCD" >&2; exit 1; }
[ -x "$ETCDCTL" ] || { echo "missing $ETCDCTL: install etcd-client (scripts/deps.sh) or set ETCDCTL" >&2; exit 1; }
command -v unshare >/dev/null || { echo "missing tool: unshare (util-linux)" >&2; exit 1; }

xd_init
LOC=etcd://$ETCD_IP:${ETCD_PORTS[0]}$PREFIX
ENDPOINTS=$ETCD_IP:${ETCD_PORTS[0]},$ETCD_IP:${ETCD_PORTS[1]},$ETCD_IP:${ETCD_PORTS[2]}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
cleanup_pins() { rm -rf "${R_PINS[r1]:-/nonexistent}" "${R_PINS[r2]:-/nonexistent}"; }
XD_CLEANUP_HOOKS+=(cleanup_pins)

# ---------------------------------------------------------------- topology
xd_step "topology: remote, routers r1 and r2 (both with G $XD_GLOBAL), LAN switch with 3 hosts and etcd"
xd_topology 3
R_NS[r1]=$XD_NS_ROUTER R_LAN[r1]=$XD_ROUTER_LAN R_PINS[r1]=/sys/fs/bpf/xdnat-$XD_TAG-r1
R_NS[r2]=$XD_TAG-r2 R_LAN[r2]=$R2_LAN R_PINS[r2]=/sys/fs/bpf/xdnat-$XD_TAG-r2
xd_netns_add "${R_NS[r2]}"
ip -n "${R_NS[r2]}" link add "$XD_IF_WAN" type veth peer name eth1 netns "$XD_NS_REMOTE"
ip -n "${R_NS[r2]}" link add "$XD_IF_LAN" type veth peer name p-r2 netns "$XD_NS_SWITCH"
ip -n "$XD_NS_SWITCH" link set p-r2 master "$XD_BRIDGE" up
ip -n "${R_NS[r2]}" addr add 198.51.101.1/24 dev "$XD_IF_WAN"
ip -n "${R_NS[r2]}" addr add "$XD_GLOBAL/32" dev "$XD_IF_WAN"
ip -n "${R_NS[r2]}" addr add "$R2_LAN/$XD_LAN_PLEN" dev "$XD_IF_LAN"
ip -n "${R_NS[r2]}" link set "$XD_IF_WAN" up
ip -n "${R_NS[r2]}" link set "$XD_IF_LAN" up
ip -n "$XD_NS_REMOTE" addr add 198.51.101.2/24 dev eth1
ip -n "$XD_NS_REMOTE" link set eth1 up
ip -n "${R_NS[r2]}" route add default via 198.51.101.2
xd_ns "$XD_NS_REMOTE" ethtool -K eth1 gro on >/dev/null
xd_ns "$XD_NS_SWITCH" ethtool -K p-r2 gro on >/dev/null
# etcd lives on the switch's bridge: both routers reach it over their LAN.
ip -n "$XD_NS_SWITCH" addr add "$ETCD_IP/$XD_LAN_PLEN" dev "$XD_BRIDGE"
xd_ok "r1 LAN ${R_LAN[r1]}, r2 LAN ${R_LAN[r2]}, etcd on $ETCD_IP; the remote routes G via r1"

# ------------------------------------------------------------------- etcd
start_member() {
	local i=$1 cluster="" k
	for k in 0 1 2; do
		cluster+="${cluster:+,}m$k=http://$ETCD_IP:${PEER_PORTS[$k]}"
	done
	xd_bg "etcd m$i" "$XD_NS_SWITCH" "$XD_TMP/etcd-m$i.log" "$ETCD" --name "m$i" \
		--data-dir "$XD_TMP/etcd-m$i" \
		--listen-client-urls "http://$ETCD_IP:${ETCD_PORTS[$i]}" \
		--advertise-client-urls "http://$ETCD_IP:${ETCD_PORTS[$i]}" \
		--listen-peer-urls "http://$ETCD_IP:${PEER_PORTS[$i]}" \
		--initial-advertise-peer-urls "http://$ETCD_IP:${PEER_PORTS[$i]}" \
		--initial-cluster "$cluster" --initial-cluster-token "xdnat-e2e-$$" \
		--initial-cluster-state new
	ETCD_PID[$i]=$XD_LAST_PID
}
ectl() { xd_ns "$XD_NS_SWITCH" "$ETCDCTL" --endpoints "$ENDPOINTS" --command-timeout 2s "$@"; }

xd_step "three etcd members (data in $XD_TMP)"
for i in 0 1 2; do start_member "$i"; done
wait_for 20 ectl endpoint health || true
ectl endpoint health >/dev/null 2>&1 || { tail -n 5 "$XD_TMP"/etcd-m*.log >&2; fail "etcd is not healthy"; }
xd_ok "3 members healthy; xdnatd uses $LOC"

# ----------------------------------------------------------------- routers
# start_router NAME: xdnatd with its own /run/xdnat (the instance lock and
# the control socket are per host in real life) and its own pins.
start_router() {
	local r=$1 log
	R_RUN[$r]=$(( ${R_RUN[$r]:-0} + 1 ))
	log=$XD_TMP/xdnatd-$r-${R_RUN[$r]}.log
	R_LOG[$r]=$log
	mkdir -p /run/xdnat
	xd_bg "xdnatd $r" "${R_NS[$r]}" "$log" unshare -m --propagation private \
		sh -c 'mount -t tmpfs -o mode=755 tmpfs /run/xdnat && exec "$@"' sh \
		"$XD_XDNATD" --wan "$XD_IF_WAN" --lan "$XD_IF_LAN" --global "$XD_GLOBAL" \
		--instance "$XD_INSTANCE" --pin-base "${R_PINS[$r]}" --rsip --state-dir "$LOC" \
		--lease "$LEASE" --max-lease "$LEASE" --quarantine 6 --port-range "$POOL" \
		--port-block 100 --router-id "$r" --elect-ttl "$TTL" --metrics 127.0.0.1:9477 --verbose \
		--ca-key "$XD_TMP/lca.key" --ca-cert "$XD_TMP/lca.crt" --crl-period 3600
	R_PID[$r]=$XD_LAST_PID
	xd_wait_line "${R_PID[$r]}" "$log" '^xdnatd: ready' 20
}
# metric R NAME: the value of /metrics line NAME (a full name with labels) of router R.
metric() {
	xd_ns "${R_NS[$1]}" python3 - "$2" <<'PY'
import sys, urllib.request
want = sys.argv[1]
for line in urllib.request.urlopen("http://127.0.0.1:9477/metrics", timeout=3).read().decode().splitlines():
    if line.startswith(want + " "):
        print(line.split()[-1]); break
else:
    print("missing")
PY
}
acting() { metric "$1" "xdnat_cluster_leader{role=\"${2:-expiry}\",router=\"$1\",candidate=\"1\"}"; }
# expiry_workers [ROLE]: how many live routers act in ROLE (expiry) now.
expiry_workers() {
	local n=0 r
	for r in r1 r2; do
		xd_alive "${R_PID[$r]}" || continue
		[ "$(acting "$r" "${1:-expiry}")" = 1 ] && n=$((n + 1))
	done
	echo "$n"
}
is_acting() { [ "$(acting "$1")" = 1 ]; }
one_worker() { [ "$(expiry_workers)" = 1 ]; }
holder() {   # R [ROLE]: the holder of ROLE (expiry) as xdnatctl cluster shows it from R
	xd_ns "${R_NS[$1]}" "$XD_XDNATCTL" -i "$XD_INSTANCE" --state-dir "$LOC" -j cluster |
		python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin)["roles"] if x["role"]==sys.argv[1]][0]; print(r.get("router","none"))' "${2:-expiry}"
}
ctl_r1() { xd_ns "${R_NS[r1]}" "$XD_XDNATCTL" -i "$XD_INSTANCE" --pin-base "${R_PINS[r1]}" "$@"; }
owner() { ctl_r1 -j lookup port "$1" | jget '["host"]'; }
envget() { sed -n "s/^$2=//p" "$1"; }
start_host() {   # I NAME: xdnat-host on r1
	local i=$1 name=$2
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "${R_LAN[r1]}" --secret-file "$XD_TMP/$name.key" \
		--name "$name" --port-count 50 --info-file "$XD_TMP/$name.env" --replace-routes \
		--state-dir "$XD_TMP/hoststate-$name"
	XD_HOST_PID[$i]=$XD_LAST_PID
}
check_one_worker() {   # WHAT: one expiry worker and one signer
	local n role
	for role in expiry signer; do
		n=$(expiry_workers "$role")
		[ "$n" = 1 ] || fail "$1: $n routers act as the $role"
	done
}

xd_step "a root and one LCA for $XD_GLOBAL (xdnat-ca), its key on both routers"
"$XD_CA" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" -K "$XD_TMP/root.key" \
	-o "$XD_TMP/lca.crt" >/dev/null
xd_ok "root.crt, lca.crt"

xd_step "enrol h1, h2, h3 in etcd; start r1, then r2"
for i in 1 2 3; do
	ctl_r1 --state-dir "$LOC" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key" >/dev/null
done
start_router r1
start_router r2
wait_for 10 grep -q 'cluster: elected expiry' "${R_LOG[r1]}" || fail "timed out waiting: r1 elected"
sleep 1
check_one_worker "after start"
[ "$(holder r2)" = r1 ] || fail "xdnatctl cluster names $(holder r2) as the expiry worker, not r1"
[ "$(holder r2 signer)" = r1 ] || fail "xdnatctl cluster names $(holder r2 signer) as the signer, not r1"
[ "$(acting r2)" = 0 ] || fail "r2 acts as the expiry worker next to r1"
[ "$(acting r2 signer)" = 0 ] || fail "r2 acts as the signer next to r1"
[ "$(metric r1 xdnat_cluster_store_available)" = 1 ] || fail "r1 says the store is unavailable"
xd_ok "r1 is the expiry worker and the signer (xdnatctl cluster, /metrics of both); r2 is a candidate"

xd_step "h1 registers with r1; UDP flows through G"
start_host 1 h1
xd_wait_line "${XD_HOST_PID[1]}" "$XD_TMP/xdnat-host-h1.log" '^xdnat-host: ready' 15
P1=$(envget "$XD_TMP/h1.env" XDNAT_PORTS)
H1_ID=$(owner "${P1%-*}")
[ "$H1_ID" != 0 ] || fail "h1's ports $P1 are not in r1's maps"
[ -s "$(envget "$XD_TMP/h1.env" XDNAT_CERT)" ] || fail "h1 got no certificate from the signer r1"
udp_through_g() {   # COUNT: datagrams h1 -> remote -> h1 through G; prints the echoes
	local n=$1 out
	xd_bg echo "$XD_NS_REMOTE" "$XD_TMP/uecho" python3 "$XD_TRAFFIC" udp-echo --port 5353 \
		--count "$n" --timeout 15
	local e=$XD_LAST_PID
	xd_wait_line "$e" "$XD_TMP/uecho" listening
	out=$(xd_py "$(xd_host_ns 1)" udp-client --dst "$XD_REMOTE_WAN" --port 5353 --count "$n" | jget '["echoed"]')
	wait "$e" || true
	echo "$out"
}
n=$(udp_through_g 10)
[ "$n" = 10 ] || fail "$n of 10 UDP datagrams came back through G"
xd_ok "h1: ports $P1 (host $H1_ID), a certificate from r1; 10 of 10 datagrams through G and back"

# -------------------------------------------------------------- failover
xd_step "kill -9 the expiry worker r1: r2 takes over within the TTL ($TTL s)"
# When etcd deletes r1's key (its lease expired), for the report.
xd_bg "watch" "$XD_NS_SWITCH" "$XD_TMP/watch.log" python3 -c '
import base64, json, sys, time, urllib.request
key = base64.b64encode(sys.argv[2].encode()).decode()
req = urllib.request.Request(sys.argv[1] + "/v3/watch",
                             data=json.dumps({"create_request": {"key": key}}).encode())
with urllib.request.urlopen(req) as r:
    for line in r:
        for e in json.loads(line).get("result", {}).get("events", []):
            print(int(time.time() * 1000), e.get("type", "PUT"), flush=True)
' "http://$ETCD_IP:${ETCD_PORTS[0]}" "$PREFIX/$XD_INSTANCE/leader/expiry"
WATCH=$XD_LAST_PID
sleep 0.5
t0=$(now_ms)
kill -KILL "${R_PID[r1]}"
wait "${R_PID[r1]}" 2>/dev/null || true
deadline=$((t0 + (TTL + 5) * 1000))
while [ "$(holder r2)" != r2 ]; do
	[ "$(now_ms)" -lt "$deadline" ] || fail "r2 did not become the expiry worker within $((TTL + 5)) s"
	sleep 0.1
done
t1=$(now_ms)
wait_for 5 is_acting r2 || fail "timed out waiting: r2 acting"
[ "$(holder r2 signer)" = r2 ] || fail "the signer role did not follow to r2"
TAKEOVER=$((t1 - t0))
DELETED=$(awk '$2 == "DELETE" { print $1; exit }' "$XD_TMP/watch.log")
DELETED=$(( ${DELETED:-$t0} - t0 ))
kill "$WATCH" 2>/dev/null || true
# etcd deletes the key TTL after r1's last keepalive (plus its own
# revocation delay, ~0.5 s), r2 campaigns every TTL/5, and this loop polls
# with xdnatctl (slow on a loaded machine): at most TTL + 4 s in all, and
# r2 within 2 s of the deletion.
[ "$TAKEOVER" -le $(( (TTL + 4) * 1000 )) ] || fail "takeover took $TAKEOVER ms (TTL $TTL s)"
[ $((TAKEOVER - DELETED)) -le 2000 ] || fail "r2 took $((TAKEOVER - DELETED)) ms after etcd deleted the key"

check_one_worker "after the takeover"
# The datapath of the killed daemon forwards on (pinned links and maps).
n=$(udp_through_g 5)
[ "$n" = 5 ] || fail "$n of 5 datagrams through G with r1's daemon dead"
xd_ok "takeover after $TAKEOVER ms (etcd deleted r1's key after $DELETED ms; TTL $TTL s); r1's datapath kept forwarding (5/5)"
start_router r1
sleep 1
check_one_worker "after r1's restart"
[ "$(holder r1)" = r2 ] || fail "the restarted r1 took the role from r2"
xd_ok "r1 restarted as a candidate; r2 stays the expiry worker and the signer"

# ---------------------------------------------------------------- members
# The member the routers use (m0) stays; m1/m2 go, the raft leader last
# if it is one of them (killing a follower first must change nothing).
raft_leader() {
	ectl endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(s["Endpoint"].rsplit(":", 1)[1])'
}
LEADER_PORT=$(raft_leader)
if [ "$LEADER_PORT" = "${ETCD_PORTS[1]}" ]; then FIRST=2 SECOND=1; else FIRST=1 SECOND=2; fi
xd_step "kill etcd member m$FIRST (a follower): no effect"
kill -KILL "${ETCD_PID[$FIRST]}"
wait "${ETCD_PID[$FIRST]}" 2>/dev/null || true
start_host 2 h2
xd_wait_line "${XD_HOST_PID[2]}" "$XD_TMP/xdnat-host-h2.log" '^xdnat-host: ready' 15
P2=$(envget "$XD_TMP/h2.env" XDNAT_PORTS)
sleep 1
check_one_worker "with one member down"
[ "$(holder r1)" = r2 ] || fail "the expiry worker changed when one member died"
grep -q 'store unavailable' "${R_LOG[r1]}" "${R_LOG[r2]}" &&
	fail "a router saw the store unavailable with 2 of 3 members up"
# r1 is not the signer: it refuses h2's CSR, h2 keeps its blocks without a certificate.
grep -q "refused our certificate request (BAD_PARAM" "$XD_TMP/xdnat-host-h2.log" ||
	fail "h2's CSR was not refused by r1, which is not the signer"
grep -q "not the cluster's signer" "${R_LOG[r1]}" || fail "r1 does not say why it refused h2's CSR"
xd_ok "h2 registered (ports $P2), its CSR refused by r1 (not the signer: BAD_PARAM, no certificate); same roles; no router saw an outage"

xd_step "kill m$SECOND too: quorum lost"
kill -KILL "${ETCD_PID[$SECOND]}"
wait "${ETCD_PID[$SECOND]}" 2>/dev/null || true
Q0=$(now_ms)
wait_for 10 grep -q 'cluster: store unavailable' "${R_LOG[r1]}" || fail "timed out waiting: r1 notices"
wait_for 10 grep -q 'cluster: store unavailable' "${R_LOG[r2]}" || fail "timed out waiting: r2 notices"
xd_ok "both routers report the store unavailable after $(( $(now_ms) - Q0 )) ms"
# Past TTL/2 without a keepalive nobody acts, so nobody can expire.
sleep $((TTL / 2 + 1))
n=$(expiry_workers)
[ "$n" = 0 ] || fail "$n routers still act as the expiry worker without quorum"
n=$(expiry_workers signer)
[ "$n" = 0 ] || fail "$n routers still act as the signer without quorum"
xd_ok "no expiry worker and no signer without quorum (stepped down at TTL/2)"

n=$(udp_through_g 20)
[ "$n" = 20 ] || fail "$n of 20 datagrams through G without quorum"
xd_ok "forwarding goes on: 20 of 20 UDP datagrams through G and back"

start_host 3 h3
H3=${XD_HOST_PID[3]}
# xdnat-host asks again for ~13 s at start-up (a store that cannot commit
# now), then gives up
for _ in $(seq 300); do xd_alive "$H3" || break; sleep 0.1; done
xd_alive "$H3" && fail "h3 got through without quorum"
grep -q 'INTERNAL_SERVER_ERROR (104)' "$XD_TMP/xdnat-host-h3.log" ||
	{ cat "$XD_TMP/xdnat-host-h3.log" >&2; fail "h3 was not refused with INTERNAL_SERVER_ERROR (104)"; }
grep -q 'asking again in' "$XD_TMP/xdnat-host-h3.log" ||
	{ cat "$XD_TMP/xdnat-host-h3.log" >&2; fail "h3 did not ask again after the 104"; }
xd_ok "a new host is refused after $(grep -c 'asking again in' "$XD_TMP/xdnat-host-h3.log") more tries: $(grep -m1 -o 'refused: .*' "$XD_TMP/xdnat-host-h3.log")"

# The leases (4 s) lapse meanwhile; nothing may expire.
sleep $((LEASE * 2))
for i in 1 2; do
	xd_alive "${XD_HOST_PID[$i]}" || fail "h$i gave its blocks up during the outage"
done
[ "$(owner "${P1%-*}")" = "$H1_ID" ] || fail "h1's ports left r1's maps during the outage"
grep -q "cannot answer now" "$XD_TMP/xdnat-host-h1.log" ||
	fail "h1 did not see its renewal refused during the outage"
OUTAGE_S=$(( ($(now_ms) - Q0) / 1000 ))
xd_ok "after ${OUTAGE_S} s without quorum (leases of $LEASE s): h1, h2 alive, h1's ports still in the maps"

xd_step "restart m1 and m2: quorum back"
# h3 starts while quorum is still lost: refused (104), it asks again and
# gets its blocks once the store answers
: >"$XD_TMP/xdnat-host-h3.log"
start_host 3 h3
wait_for 10 grep -q 'asking again in' "$XD_TMP/xdnat-host-h3.log" ||
	{ cat "$XD_TMP/xdnat-host-h3.log" >&2; fail "h3 did not ask again"; }
start_member 1
start_member 2
R0=$(now_ms)
wait_for 30 grep -q 'cluster: store answers again' "${R_LOG[r1]}" || fail "timed out waiting: r1 back"
xd_ok "r1 sees the store again $(( $(now_ms) - R0 )) ms after the restart"
wait_for 15 one_worker || fail "timed out waiting: an expiry worker"
check_one_worker "after quorum returned"
hold=$(metric "$(holder r1)" xdnat_cluster_expiry_hold_seconds)
python3 -c "import sys; sys.exit(0 if float('$hold') > 0 else 1)" ||
	fail "the expiry worker does not hold expiry after the outage (grace $hold s)"
xd_ok "one expiry worker ($(holder r1)), expiry held for another $hold s (grace)"

xd_wait_line "${XD_HOST_PID[3]}" "$XD_TMP/xdnat-host-h3.log" '^xdnat-host: ready' 20
xd_ok "h3, started without quorum, has its blocks after asking again $(grep -c "asking again in" "$XD_TMP/xdnat-host-h3.log") times"
P3=$(envget "$XD_TMP/h3.env" XDNAT_PORTS)
# The hosts renew the leases that lapsed in the outage: their retries back
# off to 16 s, well inside the grace.
bindings_ok() {
	ctl_r1 --state-dir "$LOC" -j rsip list >"$XD_TMP/list.json" || return 1
	python3 - "$XD_TMP/list.json" "$P1" "$P2" "$P3" >"$XD_TMP/list.why" 2>&1 <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["bindings"]
act = [r for r in rows if r.get("state") == "active"]
for kind in ("ports", "spi"):
    b = sorted((r["first"], r["last"], r["host"]) for r in act if r["kind"] == kind)
    for x, y in zip(b, b[1:]):
        if x[1] >= y[0]:
            sys.exit(f"OVERLAP {x} {y}")
want = {f"h{i}": tuple(map(int, p.split("-"))) for i, p in zip((1, 2, 3), sys.argv[2:5])}
for h, (f, l) in want.items():
    mine = [r for r in act if r["host"] == h and r["kind"] == "ports"]
    if not any(r["first"] == f and r["last"] == l and r["remaining_s"] > 0 for r in mine):
        sys.exit(f"{h} has no live binding {f}-{l}: {mine}")
PY
}
deadline=$(( $(now_ms) + 30000 ))
until bindings_ok; do
	grep -q OVERLAP "$XD_TMP/list.why" && fail "a block was granted twice: $(cat "$XD_TMP/list.why")"
	[ "$(now_ms)" -lt "$deadline" ] || fail "after quorum returned: $(cat "$XD_TMP/list.why")"
	sleep 2
done
for i in 1 2; do
	xd_alive "${XD_HOST_PID[$i]}" || fail "h$i gave up after quorum returned"
done
[ "$(owner "${P1%-*}")" = "$H1_ID" ] || fail "h1's ports left r1's maps after the outage"
if grep -H 'lease of bind .* expired' "$XD_TMP"/xdnatd-*.log; then
	fail "a router expired a lease (above): the grace rule was broken"
fi
xd_ok "h3 got ports $P3; h1 $P1 and h2 $P2 renewed and kept; no overlap among the store's active bindings; no lease expired"

xd_step "after the grace, the expiry worker (and only it) expires a dead host's lease"
W=$(holder r1)
HOLD=$(metric "$W" xdnat_cluster_expiry_hold_seconds)
{ kill -KILL "${XD_HOST_PID[3]}"; wait "${XD_HOST_PID[3]}"; } 2>/dev/null || true   # h3 stops renewing
T=$(python3 -c "import math; print(math.ceil(float('$HOLD')) + $LEASE + 10)")
wait_for "$T" grep -q "lease of bind .* expired" "$XD_TMP"/xdnatd-*.log ||
	fail "no router expired h3's lease within $T s (grace left $HOLD s)"
sleep 2
n=$(cat "$XD_TMP"/xdnatd-*.log | grep -c "lease of bind .* expired" || true)
who=$(grep -l "lease of bind .* expired" "$XD_TMP"/xdnatd-*.log | xargs -n1 basename | tr '\n' ' ')
case "$who" in "xdnatd-$W-"*) ;; *) fail "the expiry was done by $who, not by the expiry worker $W" ;; esac
[ "$(echo "$who" | wc -w)" = 1 ] || fail "more than one router expired leases: $who"
ctl_r1 --state-dir "$LOC" -j rsip list >"$XD_TMP/list2.json"
python3 - "$XD_TMP/list2.json" <<'PY' || fail "h3's ports are not quarantined in the store"
import json, sys
rows = json.load(open(sys.argv[1]))["bindings"]
h3 = [r for r in rows if r["host"] == "h3" and r.get("kind") == "ports"]
assert h3 and all(r["state"] == "quarantine" for r in h3), h3
PY
xd_ok "$n lease(s) of h3 expired by $W alone, after the grace ($HOLD s left when h3 died); h3's ports quarantined"

xd_step "summary"
xd_info "takeover of the expiry role after kill -9: $TAKEOVER ms (etcd's lease expiry: $DELETED ms; election TTL $TTL s)"
xd_info "quorum lost for ${OUTAGE_S} s: forwarding 20/20, allocation refused (104), no lease expired"
xd_ok "e2e_cluster_quorum: all checks passed"
