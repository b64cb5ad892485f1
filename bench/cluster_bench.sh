#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Cluster benchmark (docs/CLUSTER.md, docs/BENCHMARKS.md): RSIP allocations
# per second with the state in SQLite and in etcd, and the time a change
# committed on router a takes to reach router b's maps, in one run and one
# table.  Real xdnatd routers in network namespaces (selftests/lib/cluster_store.sh),
# real RSIP clients (build/cluster-bench storm), three etcd members.
#
#   sudo bench/cluster_bench.sh [--hosts N] [--latency L]      (make bench-cluster)
#
# Rows: sqlite (one router, STATE_DIR database), etcd with one router, etcd
# with two routers storming at once; each storm is N hosts x (REGISTER + 2
# port blocks + 1 SPI block) from 16 threads.  Then L single-port
# allocations on router a, each timed from its reply (sent after the
# commit) until router b's pinned maps hold the port.
set -euo pipefail
HOSTS=100
LAT=200
while [ $# -gt 0 ]; do
	case $1 in
	--hosts) HOSTS=$2; shift 2 ;;
	--latency) LAT=$2; shift 2 ;;
	-h|--help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--hosts N] [--latency L]" >&2; exit 2 ;;
	esac
done
XD_QUIET_LOGS=1
. "$(dirname "$0")/../selftests/lib/netns.sh"
xd_init
. "$(dirname "$0")/../selftests/lib/cluster_store.sh"

cl_topology
cl_clients $((4 * HOSTS + 400))
row() { python3 - "$1" "$2" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
lat = "%8.2f %8.2f" % (r["to_other_maps_ms_median"], r["to_other_maps_ms_p99"]) if "latency_n" in r else "%8s %8s" % ("-", "-")
print("%-28s %6d %8.1f %10.0f %8d %s" % (sys.argv[1], r["allocations"], r["seconds"], r["allocations_per_s"],
      r["retries"], lat))
if r["overlaps"] or r["failed_hosts"]:
    sys.exit("overlaps or refused hosts: %s" % r)
EOF
}

# SQLite: one router, its database in XD_TMP.
cl_router_start a - --state-dir "$XD_TMP/state"
CL_STORE=$XD_TMP/state cl_storm --router "$CL_RA_LAN" --hosts "$HOSTS" --prefix q --threads 16 >"$XD_TMP/sqlite.json"
cl_router_stop a
cl_etcd_start 3
cl_router_start a 1
cl_router_start b 2
cl_storm --router "$CL_RA_LAN" --hosts "$HOSTS" --prefix e1 --threads 16 >"$XD_TMP/etcd1.json"
cl_storm --router "$CL_RA_LAN" --router "$CL_RB_LAN" --hosts "$HOSTS" --prefix e2 --threads 16 \
	--latency "$LAT" --maps "$CL_PIN-b:$CL_INSTANCE" >"$XD_TMP/etcd2.json"
cl_check a >/dev/null || fail "router a's maps differ from the store"
cl_check b >/dev/null || fail "router b's maps differ from the store"
echo "cluster benchmark: $HOSTS hosts per row x (REGISTER + 2 x 10 ports + 1 SPI block), 16 client threads;"
echo "etcd: 3 members (etcd $("$CL_ETCD" --version | sed -n 's/^etcd Version: //p')), data in $(df --output=source "$XD_TMP" | tail -1);"
echo "latency: $LAT single-port allocations on router a, reply -> port in router b's maps"
printf '%-28s %6s %8s %10s %8s %8s %8s\n' "" allocs seconds "allocs/s" retries "b ms p50" "b ms p99"
row "sqlite, 1 router" "$XD_TMP/sqlite.json"
row "etcd, 1 router" "$XD_TMP/etcd1.json"
row "etcd, 2 routers at once" "$XD_TMP/etcd2.json"
echo "retries: requests re-sent after the router closed the connection (its batch lost a compare-and-swap)"
