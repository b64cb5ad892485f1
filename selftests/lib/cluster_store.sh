# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Two xdnatd routers sharing one global address G and one etcd cluster, for
# selftests/e2e_cluster_sync.sh and bench/cluster_bench.sh.  Source after
# lib/netns.sh and xd_init (it sources lib/cluster_ns.sh, what it shares
# with lib/cluster.sh):
#
#     cl_topology                   # namespaces and links below
#     cl_etcd_start 3               # members m1..m3 (data in $XD_TMP/etcd)
#     cl_router_start a --state-dir "$(cl_store 1)" ...
#
#   [up] u-a ---- wan [ra] lan ---+                  +--- eth0 [cli]  storm clients
#   [up] u-b ---- wan [rb] lan ---+-- [sw: br0] -----+--- eth0 [etcd] m1, m2, m3
#
# Both routers have G on their WAN side and their own LAN address; the
# clients' addresses (CL_CLI_FIRST + i) and the etcd members share the LAN.
# Each router runs in a mount namespace of its own with a private /run/xdnat
# (two routers on one machine must not share the instance lock and control
# socket, which are named after the instance the store keys are too); the
# bpffs is shared, so each router has its own pin base.  Addresses come from
# the variables below (RFC 5737 for G and the WAN side, RFC 1918 for the LAN).

. "$(dirname "${BASH_SOURCE[0]}")/cluster_ns.sh"

CL_G=${CL_G:-192.0.2.73}
CL_LAN16=${CL_LAN16:-10.73}                 # the LAN is $CL_LAN16.0.0/16
CL_RA_LAN=$CL_LAN16.0.1
CL_RB_LAN=$CL_LAN16.0.2
CL_ETCD_NET=$CL_LAN16.9                     # members $CL_ETCD_NET.1 ...
CL_CLI_FIRST=${CL_CLI_FIRST:-$CL_LAN16.16.1} # client i: this address + i
CL_WAN_A=${CL_WAN_A:-198.51.100.73}          # /31 pairs: router, upstream
CL_WAN_B=${CL_WAN_B:-198.51.100.75}
CL_INSTANCE=${CL_INSTANCE:-cl$$}
CL_PIN=${CL_PIN:-/sys/fs/bpf/xdnat-$XD_TAG}  # router r pins under $CL_PIN-r
CL_PREFIX=${CL_PREFIX:-/xdnat-$XD_TAG}       # key prefix in etcd
CL_ETCD=${CL_ETCD:-/usr/bin/etcd}
CL_ETCDCTL=${CL_ETCDCTL:-/usr/bin/etcdctl}
CL_BENCH=${CL_BENCH:-$XD_BUILD/cluster-bench}
CL_NS_SW=$XD_TAG-sw
CL_NS_UP=$XD_TAG-up
CL_NS_CLI=$XD_TAG-cli
CL_NS_ETCD=$XD_TAG-etcd
declare -A CL_PID=()        # router name -> xdnatd pid
declare -a CL_ETCD_PID=()   # member index -> pid
CL_ETCD_N=0

cl_ns_r() { printf '%s-r%s' "$XD_TAG" "$1"; }
cl_lan() { [ "$1" = a ] && echo "$CL_RA_LAN" || echo "$CL_RB_LAN"; }
cl_member() { printf '%s.%s' "$CL_ETCD_NET" "$1"; }
cl_store() { printf 'etcd://%s:2379%s' "$(cl_member "$1")" "$CL_PREFIX"; }
cl_endpoints() {
	local i e=
	for ((i = 1; i <= CL_ETCD_N; i++)); do e+="${e:+,}http://$(cl_member "$i"):2379"; done
	echo "$e"
}

cl_cleanup() {
	rm -rf "${CL_PIN:?}-a" "${CL_PIN:?}-b"
}

# ip(8) with the address after the last dot incremented by @2.
cl_addr_plus() {
	python3 -c 'import ipaddress,sys; print(ipaddress.ip_address(sys.argv[1]) + int(sys.argv[2]))' "$1" "$2"
}

cl_topology() {
	local r ns
	xk_need_etcd "$CL_ETCD" "$CL_ETCDCTL"
	[ -x "$CL_BENCH" ] || fail "missing $CL_BENCH: run 'make all' first"
	XD_CLEANUP_HOOKS+=(cl_cleanup)
	for ns in "$CL_NS_SW" "$CL_NS_UP" "$CL_NS_CLI" "$CL_NS_ETCD" "$(cl_ns_r a)" "$(cl_ns_r b)"; do
		xd_netns_add "$ns"
	done
	ip -n "$CL_NS_SW" link add br0 type bridge
	for r in a b; do
		ns=$(cl_ns_r "$r")
		ip -n "$ns" link add wan type veth peer name "u-$r" netns "$CL_NS_UP"
		ip -n "$ns" link add lan type veth peer name "p-$r" netns "$CL_NS_SW"
		ip -n "$CL_NS_SW" link set "p-$r" master br0 up
		ip -n "$ns" addr add "$(cl_lan "$r")/16" dev lan
		ip -n "$ns" addr add "$CL_G/32" dev wan
		ip -n "$ns" link set wan up
		ip -n "$ns" link set lan up
		xd_ns "$CL_NS_SW" ethtool -K "p-$r" gro on >/dev/null
		xd_ns "$CL_NS_UP" ethtool -K "u-$r" gro on >/dev/null
	done
	ip -n "$(cl_ns_r a)" addr add "$CL_WAN_A/31" dev wan
	ip -n "$(cl_ns_r b)" addr add "$CL_WAN_B/31" dev wan
	ip -n "$CL_NS_UP" addr add "$(cl_addr_plus "$CL_WAN_A" -1)/31" dev u-a
	ip -n "$CL_NS_UP" addr add "$(cl_addr_plus "$CL_WAN_B" -1)/31" dev u-b
	ip -n "$CL_NS_UP" link set u-a up
	ip -n "$CL_NS_UP" link set u-b up
	for ns in "$CL_NS_CLI" "$CL_NS_ETCD"; do
		ip -n "$ns" link add eth0 type veth peer name "p-${ns##*-}" netns "$CL_NS_SW"
		ip -n "$CL_NS_SW" link set "p-${ns##*-}" master br0 up
		ip -n "$ns" link set eth0 up
	done
	ip -n "$CL_NS_SW" link set br0 up
	mkdir -p "$XD_TMP/etcd"
}

# cl_clients N: give the client namespace N addresses from CL_CLI_FIRST.
cl_clients() {
	python3 - "$CL_CLI_FIRST" "$1" <<'EOF' | ip -n "$CL_NS_CLI" -b -
import ipaddress, sys
a = ipaddress.ip_address(sys.argv[1])
for i in range(int(sys.argv[2])):
    print("addr add %s/16 dev eth0" % (a + i))
EOF
}

# cl_etcd_start N: members m1..mN, one cluster, until it answers.
cl_etcd_start() {
	local n=$1 i cluster=
	CL_ETCD_N=$n
	for ((i = 1; i <= n; i++)); do
		ip -n "$CL_NS_ETCD" addr add "$(cl_member "$i")/16" dev eth0
		cluster+="${cluster:+,}m$i=http://$(cl_member "$i"):2380"
	done
	for ((i = 1; i <= n; i++)); do
		cl_etcd_member "$i" "$cluster" new
	done
	wait_for 30 cl_etcdctl endpoint health || fail "etcd did not become healthy: $(tail -3 "$XD_TMP/etcd/m1.log")"
}

cl_etcd_member() {
	local i=$1 cluster=$2 state=$3 a
	a=$(cl_member "$i")
	xk_etcd_member "$CL_ETCD" "m$i" "$CL_NS_ETCD" "http://$a:2379" "http://$a:2380" \
		"$cluster" "$state" "$XD_TMP/etcd/m$i" "$XD_TMP/etcd/m$i.log"
	CL_ETCD_PID[$i]=$XD_LAST_PID
	CL_ETCD_CLUSTER=$cluster
}

# cl_etcd_kill I / cl_etcd_restart I: a member dies (SIGKILL) / comes back.
cl_etcd_kill() {
	kill -KILL "${CL_ETCD_PID[$1]}"
	wait "${CL_ETCD_PID[$1]}" 2>/dev/null || true
}
cl_etcd_restart() {
	cl_etcd_member "$1" "$CL_ETCD_CLUSTER" existing
	wait_for 20 cl_etcdctl --endpoints "http://$(cl_member "$1"):2379" endpoint health ||
		fail "etcd m$1 did not come back"
}

cl_etcdctl() {
	local ep
	ep=$(cl_endpoints)
	if [ "${1:-}" = --endpoints ]; then ep=$2; shift 2; fi
	xk_etcdctl "$CL_ETCDCTL" "$CL_NS_ETCD" "$ep" --command-timeout=5s "$@"
}

# The store's current revision.
cl_revision() {
	cl_etcdctl endpoint status -w json | python3 -c \
		'import json,sys; print(max(int(e["Status"]["header"]["revision"]) for e in json.load(sys.stdin)))'
}

# cl_router_start R MEMBER ARGS...: xdnatd R (a or b) with its store at
# member MEMBER (-: none, give --state-dir), in its own mount namespace;
# waits for "ready".
cl_router_start() {
	local r=$1 m=$2 log store=()
	shift 2
	[ "$m" = - ] || store=(--state-dir "$(cl_store "$m")")
	log=$XD_TMP/xdnatd-$r.log
	xk_xdnatd_bg "xdnatd $r" "$(cl_ns_r "$r")" "$log" --wan wan --lan lan --global "$CL_G" \
		--lan-addr "$(cl_lan "$r")" --instance "$CL_INSTANCE" --pin-base "$CL_PIN-$r" --rsip \
		"${store[@]}" --no-sysctl "$@"
	CL_PID[$r]=$XD_LAST_PID
	# a start reconciles every registration with the maps: with etcd one
	# scan of the bindings per registration (minutes at a few hundred)
	xd_wait_line "$XD_LAST_PID" "$log" '^xdnatd: ready' 180
}

cl_router_stop() {
	xd_stop "${CL_PID[$1]}" 10 || fail "xdnatd $1 exited with an error on SIGTERM: $(tail -3 "$XD_TMP/xdnatd-$1.log")"
}

# cl_ctl R ARGS...: xdnatctl against router R (its mount and net namespace).
cl_ctl() {
	local r=$1
	shift
	xk_ctl "${CL_PID[$r]}" "$(cl_ns_r "$r")" -i "$CL_INSTANCE" --pin-base "$CL_PIN-$r" \
		--state-dir "$(cl_store 1)" "$@"
}

# cl_storm ARGS...: cluster-bench storm from the client namespace, its hosts
# on client addresses no earlier storm used (CL_SRC_USED; +50 for --latency).
CL_SRC_USED=0
cl_storm() {
	local a n
	a=$(cl_addr_plus "$CL_CLI_FIRST" "$CL_SRC_USED")
	n=$(python3 -c 'import sys; a=sys.argv[1:]; print(int(a[a.index("--hosts")+1]) + 50)' "$@")
	CL_SRC_USED=$((CL_SRC_USED + n))
	xd_ns "$CL_NS_CLI" "$CL_BENCH" storm --store "${CL_STORE:-$(cl_store 1)}" --instance "$CL_INSTANCE" --src "$a" "$@"
}

# cl_check R: router R's maps equal the store (cluster-bench check).
cl_check() {
	xd_ns "$CL_NS_CLI" "$CL_BENCH" check --store "$(cl_store 1)" --instance "$CL_INSTANCE" --maps "$CL_PIN-$1:$CL_INSTANCE"
}
