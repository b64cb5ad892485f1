#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Every router fills its own maps from the store (issue 17; docs/CLUSTER.md,
# "Keeping routers' maps in step").  Three etcd members and two xdnatd
# routers sharing one global address, each in namespaces this test makes
# (selftests/lib/cluster_store.sh); router a talks to member 1, router b to
# member 2.  Then:
#   1. both routers start with a snapshot (one "resync (start)" line each);
#   2. an RSIP allocation storm on both routers at once (HOSTS hosts, each
#      REGISTER + 2 port blocks + 1 SPI block, >= MIN_ALLOC allocations):
#      every host served, 0 overlapping grants, and afterwards each router's
#      maps equal the store's bindings (cluster-bench check: host entries,
#      port and SPI runs, no RSIP host the store lacks) and `xdnatctl -j host
#      show` equals `bpftool map dump` (lib/writer_stress.py check);
#   3. member 3 killed (SIGKILL): another storm on both routers, no host
#      refused, maps equal to the store;
#   4. member 2 (router b's) killed while router a allocates, then back:
#      router b's watch resyncs ("resync (disconnect") and converges;
#   5. router b stopped (maps kept); router a allocates for new hosts and EVICT
#      hosts deregister; etcd compacted at its current revision; router b
#      started again: its resync removes exactly the hosts that left, rewrites
#      none, and its maps equal the store.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.73}
. "$(dirname "$0")/lib/netns.sh"
HOSTS=${HOSTS:-350}
MIN_ALLOC=${MIN_ALLOC:-1000}
EVICT=${EVICT:-10}
STRESS=$(dirname "$0")/lib/writer_stress.py

xd_init
. "$(dirname "$0")/lib/cluster_store.sh"

# Both routers' maps equal the store (within 20 s: the watch is asynchronous).
converged() {
	local r out
	for r in a b; do
		wait_for 20 cl_check "$r" || { cl_check "$r" || true; fail "router $r's maps differ from the store (above)"; }
		out=$(cl_check "$r")
		xd_info "router $r: $out"
	done
}

# lib/writer_stress.py check on router R: host show == bpftool map dump,
# hosts == LAN index, store bindings == maps.
listing_check() {
	local r=$1
	python3 "$STRESS" check "$CL_PIN-$r/$CL_INSTANCE" -- nsenter --mount="/proc/${CL_PID[$r]}/ns/mnt" \
		--net="/var/run/netns/$(cl_ns_r "$r")" -- "$XD_XDNATCTL" -i "$CL_INSTANCE" --pin-base "$CL_PIN-$r" \
		--state-dir "$(cl_store "$([ "$r" = a ] && echo 1 || echo 2)")" >"$XD_TMP/check-$r.json" ||
		fail "router $r: $(cat "$XD_TMP/check-$r.json")"
	xd_info "router $r listing: $(cat "$XD_TMP/check-$r.json")"
}

# storm LABEL ARGS...: cluster-bench storm; fails on a refused host or an overlap.
storm() {
	local label=$1 out
	shift
	out=$XD_TMP/storm-$label.json
	cl_storm "$@" >"$out" 2>"$XD_TMP/storm-$label.err" ||
		fail "storm $label: $(cat "$out") $(tail -5 "$XD_TMP/storm-$label.err")"
	python3 - "$out" <<'EOF' || fail "storm $label: $(cat "$out")"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
sys.exit(0 if r["overlaps"] == 0 and r["failed_hosts"] == 0 else 1)
EOF
	xd_info "$(cat "$out")"
}

jfield() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$@"; }

resync_line() { grep "cluster sync: resync ($2" "$XD_TMP/xdnatd-$1.log" | tail -1; }

xd_step "topology: 3 etcd members, routers a and b sharing $CL_G"
cl_topology
cl_clients $((HOSTS + 400 + 4 * 50))
cl_etcd_start 3
cl_router_start a 1 --quarantine 30
cl_router_start b 2 --quarantine 30 --keep-maps
for r in a b; do
	wait_for 10 grep -q "cluster sync: resync (start)" "$XD_TMP/xdnatd-$r.log" ||
		fail "router $r: no start snapshot: $(tail -3 "$XD_TMP/xdnatd-$r.log")"
done
xd_ok "etcd healthy; both routers up; $(resync_line a start | sed 's/.*resync/resync/')"

xd_step "1. allocation storm on both routers at once: $HOSTS hosts"
# 12 client threads: a router commits the requests of one loop turn in one
# etcd Txn (group commit, cut at [store] max-txn-ops); more threads only
# make the two routers' batches collide more often on this 2-core machine.
storm s1 --router "$CL_RA_LAN" --router "$CL_RB_LAN" --hosts "$HOSTS" --assigns 2 --ports 10 --threads 12 --prefix s1
n=$(jfield "$XD_TMP/storm-s1.json" allocations)
[ "$n" -ge "$MIN_ALLOC" ] || fail "only $n allocations (need $MIN_ALLOC)"
converged
listing_check a
listing_check b
xd_ok "$n allocations, 0 overlapping grants; both routers' maps equal the store"

xd_step "2. etcd member 3 killed (SIGKILL): allocation goes on"
leader=$(cl_etcdctl endpoint status -w json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["leader"] == e["Status"]["header"]["member_id"]: print(e["Endpoint"])')
cl_etcd_kill 3
# if it led, the others elect a leader (a second or two: requests meanwhile
# are refused and retried by the clients) before the storm enrols its hosts
wait_for 20 cl_etcdctl --endpoints "http://$(cl_member 1):2379,http://$(cl_member 2):2379" \
	endpoint health || fail "members 1 and 2 have no quorum without member 3"
storm s2 --router "$CL_RA_LAN" --router "$CL_RB_LAN" --hosts 60 --assigns 2 --ports 10 --threads 16 --prefix s2
converged
xd_ok "member 3 (leader before: $leader) down: 60 more hosts served on both routers, maps equal the store"
cl_etcd_restart 3

xd_step "3. router b's member (2) down while router a allocates, then back"
cl_etcd_kill 2
# the others elect a leader (member 2 may have been it) before a allocates
wait_for 20 cl_etcdctl --endpoints "http://$(cl_member 1):2379,http://$(cl_member 3):2379" \
	endpoint health || fail "members 1 and 3 have no quorum without member 2"
storm s3 --router "$CL_RA_LAN" --hosts 30 --assigns 1 --ports 10 --threads 8 --prefix s3
cl_etcd_restart 2
wait_for 30 grep -q "cluster sync: resync (disconnect" "$XD_TMP/xdnatd-b.log" ||
	fail "router b did not resync after its member came back"
converged
xd_ok "router b: $(resync_line b disconnect | sed 's/.*resync/resync/')"

xd_step "4. router b stopped; router a allocates, $EVICT hosts deregister; etcd compacted; b rejoins"
cl_router_stop b
storm s4 --router "$CL_RA_LAN" --hosts 30 --assigns 1 --ports 10 --threads 8 --prefix s4
# the first EVICT hosts of storm 1 (client addresses from CL_CLI_FIRST) leave
xd_ns "$CL_NS_CLI" "$CL_BENCH" deregister --store "$(cl_store 1)" --instance "$CL_INSTANCE" \
	--router "$CL_RA_LAN" --src "$CL_CLI_FIRST" --hosts "$EVICT" --prefix s1 >"$XD_TMP/dereg.json" 2>&1 ||
	fail "deregistering $EVICT hosts: $(cat "$XD_TMP/dereg.json")"
rev=$(cl_revision)
cl_etcdctl compact "$rev" >/dev/null || fail "etcdctl compact $rev failed"
cl_router_start b 2 --quarantine 30 --keep-maps
wait_for 10 grep -q "cluster sync: resync (start)" "$XD_TMP/xdnatd-b.log" || fail "router b: no resync"
line=$(resync_line b start)
xd_info "$line"
removed=$(sed -n 's/.* \([0-9]*\) removed, .*/\1/p' <<<"$line")
rewritten=$(sed -n 's/.* \([0-9]*\) rewritten,.*/\1/p' <<<"$line")
[ "$removed" = "$EVICT" ] || fail "router b removed $removed hosts on rejoining, not the $EVICT that left: $line"
[ "$rewritten" = 0 ] || fail "router b rewrote $rewritten hosts that did not change: $line"
converged
listing_check a
listing_check b
xd_ok "compacted at revision $rev; router b removed the $EVICT hosts that left, rewrote none, equals the store"

for r in a b; do
	xd_alive "${CL_PID[$r]}" || fail "xdnatd $r died"
	! grep -q "runtime error\|AddressSanitizer" "$XD_TMP/xdnatd-$r.log" ||
		fail "xdnatd $r: $(grep "runtime error\|AddressSanitizer" "$XD_TMP/xdnatd-$r.log" | head -3)"
done
echo "e2e_cluster_sync: all checks passed"
