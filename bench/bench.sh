#!/usr/bin/env bash
# xdnat benchmark driver (issue 6): builds the namespaces, runs
# build/bench/xdnat-bench once, prints its table, and removes everything it
# created on exit, also on failure or interrupt.
#
#   bench/bench.sh [--smoke] [xdnat-bench options...]
#
# --smoke: small tables and short runs (~20 s); checks that every figure is
# produced and every sink check passes, not how large the figures are.
# Environment (defaults in brackets): XDNAT_BENCH_GADDR [192.0.2.1],
# XDNAT_BENCH_GADDRS [4], XDNAT_BENCH_HOSTS [4000], XDNAT_BENCH_LAN
# [10.64.0.0/16], XDNAT_BENCH_REMOTE [203.0.113.2], XDNAT_BENCH_CPU [last],
# XDNAT_BENCH_TAG [xdb<pid>] (namespace prefix), XDNAT_BENCH_BIN.
# Options given on the command line override them (see xdnat-bench --help).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${XDNAT_BENCH_BIN:-$ROOT/build/bench/xdnat-bench}
TAG=${XDNAT_BENCH_TAG:-xdb$$}
GADDR=${XDNAT_BENCH_GADDR:-192.0.2.1}
GADDRS=${XDNAT_BENCH_GADDRS:-4}
HOSTS=${XDNAT_BENCH_HOSTS:-4000}
LAN=${XDNAT_BENCH_LAN:-10.64.0.0/16}
REMOTE=${XDNAT_BENCH_REMOTE:-203.0.113.2}
CPU=${XDNAT_BENCH_CPU:-}

args=()
if [ "${1:-}" = --smoke ]; then
	shift
	GADDRS=${XDNAT_BENCH_GADDRS:-2}
	HOSTS=${XDNAT_BENCH_HOSTS:-64}
	args+=(--flows 256 --rounds 3 --repeat 20000 --slices 2 --slice-pkts 50000)
fi
args=(--tag "$TAG" --gaddr "$GADDR" --gaddrs "$GADDRS" --hosts "$HOSTS" --lan "$LAN"
      --remote "$REMOTE" ${CPU:+--cpu "$CPU"} "${args[@]}" "$@")

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF, network namespaces)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench: missing $BIN: run 'make bench-build'" >&2; exit 1; }
for t in ip nft; do
	command -v "$t" >/dev/null || { echo "bench: missing tool $t (scripts/deps.sh)" >&2; exit 1; }
done

NSS=(gen sink r1 rf rm rc)
TMP=""
cleanup() {
	local rc=$? ns
	set +e
	trap - EXIT INT TERM
	for ns in "${NSS[@]}"; do
		ip netns del "$TAG-$ns" 2>/dev/null
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

TMP=$(mktemp -d "/tmp/xdnat-bench-$TAG.XXXXXX")
"$BIN" "${args[@]}" --emit-setup "$TMP"
# shellcheck disable=SC1091
. "$TMP/addrs"   # ROUTER_LAN, ROUTER_WAN, REMOTE

n() { local ns=$1; shift; ip -n "$TAG-$ns" "$@"; }
mac() { n "$1" -br link show dev "$2" | awk '{print $3}'; }

for ns in "${NSS[@]}"; do
	ip netns add "$TAG-$ns"
	ip netns exec "$TAG-$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1
	n "$ns" link set lo up
done

# Every veth has one queue pair per CPU: the scaling scenario runs the
# generator on each CPU at once, and a veth feeds the peer queue of the
# sending CPU (smp_processor_id() % queues), each with its own NAPI.
Q=$(nproc)
vpair() { # ns1 if1 ns2 if2
	n "$1" link add "$2" numtxqueues "$Q" numrxqueues "$Q" type veth \
		peer name "$4" numtxqueues "$Q" numrxqueues "$Q" netns "$TAG-$3"
}
vpair gen g-a sink s-a
# router namespace of each path: b1 -> r1, bf -> rf, m -> rm (minimal router), c -> rc
rns() { case $1 in b1) echo r1 ;; bf) echo rf ;; m) echo rm ;; c) echo rc ;; esac; }
for r in b1 bf m c; do
	ns=$(rns "$r")
	vpair gen "g-$r" "$ns" wan
	vpair "$ns" lan sink "s-$r"
done
for i in g-a g-b1 g-bf g-m g-c; do n gen link set "$i" up; done
for i in s-a s-b1 s-bf s-m s-c; do n sink link set "$i" up; done

for r in b1 bf m c; do
	ns=$(rns "$r")
	n "$ns" addr add "$ROUTER_WAN" dev wan
	n "$ns" addr add "$ROUTER_LAN" dev lan
	n "$ns" link set wan up
	n "$ns" link set lan up
	n "$ns" neigh replace "$REMOTE" lladdr "$(mac gen "g-$r")" dev wan nud permanent
	sed "s/@MAC@/$(mac sink "s-$r")/" "$TMP/neigh.batch" > "$TMP/neigh.$r"
	n "$ns" -batch "$TMP/neigh.$r"
done
# Forwarding on in every router: bpf_fib_lookup() answers FWD_DISABLED otherwise.
for ns in r1 rf rm rc; do
	ip netns exec "$TAG-$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.wan.rp_filter=0
done
ip netns exec "$TAG-rc" nft -f "$TMP/nat.nft"

"$BIN" "${args[@]}"
