# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# What the two cluster topologies share: lib/cluster.sh (two routers for one
# G behind keepalived or ECMP: the failover tests and `make demo CLUSTER=1`)
# and lib/cluster_store.sh (two routers on one etcd store: e2e_cluster_sync.sh
# and bench/cluster_bench.sh).  Both source this file after lib/netns.sh:
#
#   xk_xdnatd_bg NAME NS LOG ARGS...   xdnatd in a mount namespace of its own
#   xk_ctl PID NS ARGS...              xdnatctl next to that xdnatd
#   xk_etcd_member BIN NAME NS CLIENT_URL PEER_URL CLUSTER STATE DIR LOG [OPTS...]
#   xk_etcdctl BIN NS ENDPOINTS ARGS...
#   xk_need_etcd ETCD ETCDCTL          fail naming the package of a missing tool

# xk_need_etcd ETCD ETCDCTL: both programs there, or fail with the Debian
# package to install.
xk_need_etcd() {
	command -v "$1" >/dev/null || fail "etcd not found ($1): install etcd-server (scripts/deps.sh)"
	command -v "$2" >/dev/null || fail "etcdctl not found ($2): install etcd-client (scripts/deps.sh)"
}

# xk_xdnatd_bg NAME NS LOG XDNATD-ARGS...: xdnatd (XD_XDNATD) in network
# namespace NS and in a mount namespace of its own with a private
# XD_RUN_DIR (a tmpfs): two routers on one machine that run the same
# instance (a cluster's routers must: the store's keys are per instance)
# would otherwise share the instance lock and the control socket, which
# xdnatd keeps under /run/xdnat.  The bpffs is shared: give each router its
# own --pin-base.  Sets XD_LAST_PID to xdnatd's pid (unshare and sh exec it).
xk_xdnatd_bg() {
	local name=$1 ns=$2 log=$3
	shift 3
	command -v unshare >/dev/null || fail "unshare not found: install util-linux"
	mkdir -p "$XD_RUN_DIR"
	xd_bg "$name" "$ns" "$log" unshare --mount --propagation private -- sh -c \
		'mount -t tmpfs -o mode=0755 tmpfs "$0" && exec "$@"' "$XD_RUN_DIR" "$XD_XDNATD" "$@"
}

# xk_ctl PID NS ARGS...: xdnatctl ARGS in the mount namespace of the xdnatd
# whose pid is PID (its control socket) and in network namespace NS (its
# etcd members).
xk_ctl() {
	local p=$1 ns=$2
	shift 2
	[ -n "$p" ] && [ -e "/proc/$p/ns/mnt" ] || { echo "xdnatctl: no running xdnatd '$p'" >&2; return 1; }
	nsenter --mount="/proc/$p/ns/mnt" --net="/var/run/netns/$ns" -- "$XD_XDNATCTL" "$@"
}

# xk_etcd_member BIN NAME NS CLIENT_URL PEER_URL CLUSTER STATE DIR LOG
# [ETCD OPTIONS...]: one etcd member (program BIN) named NAME in namespace
# NS, serving clients at CLIENT_URL and peers at PEER_URL, of the cluster
# CLUSTER ("n1=peerurl,n2=...", token XD_TAG) in initial state STATE (new or
# existing), data in DIR (made 0700), log LOG.  Sets XD_LAST_PID.
xk_etcd_member() {
	local bin=$1 name=$2 ns=$3 cu=$4 pu=$5 cluster=$6 state=$7 dir=$8 log=$9
	shift 9
	mkdir -p "$dir" && chmod 700 "$dir"
	xd_bg "etcd $name" "$ns" "$log" "$bin" --name "$name" --data-dir "$dir" \
		--listen-client-urls "$cu" --advertise-client-urls "$cu" \
		--listen-peer-urls "$pu" --initial-advertise-peer-urls "$pu" \
		--initial-cluster "$cluster" --initial-cluster-state "$state" \
		--initial-cluster-token "$XD_TAG" "$@"
}

# xk_etcdctl BIN NS ENDPOINTS ARGS...: etcdctl (API v3, program BIN) from
# namespace NS against ENDPOINTS (comma-separated URLs).
xk_etcdctl() {
	local bin=$1 ns=$2 ep=$3
	shift 3
	ETCDCTL_API=3 nsenter --net="/var/run/netns/$ns" -- "$bin" --endpoints "$ep" "$@"
}
