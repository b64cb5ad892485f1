# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Helper library for the xdnat network-namespace tests and the demo.
# Source it from a bash script running as root with `set -euo pipefail`:
#
#     . "$(dirname "$0")/lib/netns.sh"
#     xd_init                 # checks, temp dir, EXIT trap
#     xd_topology 2           # remote, router, switch, h1, h2
#     xd_start_router         # xdnatd in the router namespace
#     xd_ctl host add 1 lan "$(xd_host_lan 1)" ports 20000-20999
#     xd_start_host 1 20000-20999
#
# Topology (every name carries the suffix $XD_TAG, unique per run):
#
#   [remote] eth0 ---- wan [router] lan ---- p-router [switch: br0] p-h1 ---- eth0 [h1]
#   198.51.100.2/24    198.51.100.1/24       (bridge)                p-h2 ---- eth0 [h2]
#   192.0.2.0/24 via   10.0.0.1/24                                          10.0.0.2, .3, ...
#   198.51.100.1       192.0.2.1/32 (G)
#                      default via 198.51.100.2
#
# All addresses come from variables (XD_GLOBAL, XD_WAN_*, XD_LAN_*) that the
# caller may set before sourcing or before xd_topology.  Global and WAN
# addresses are RFC 5737 documentation ranges; the LAN is RFC 1918.
#
# Daemons run under `nsenter --net=/var/run/netns/NAME`, never under
# `ip netns exec`: the latter gives the command a private /sys without the
# bpffs, so xdnatd's pins would vanish with it and xdnatctl (run in the root
# namespace) would not find them.
#
# Cleanup (kill the processes we started, delete our namespaces, remove our
# pin directory and lock file) runs from an EXIT trap, so it also runs when a
# check fails, on `set -e` errors and on SIGINT/SIGTERM.

# ------------------------------------------------------------ configuration

XD_ROOT=${XD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
XD_BUILD=${XD_BUILD:-$XD_ROOT/build}
XD_XDNATD=${XD_XDNATD:-$XD_BUILD/xdnatd}
XD_XDNATCTL=${XD_XDNATCTL:-$XD_BUILD/xdnatctl}
XD_XDNAT_HOST=${XD_XDNAT_HOST:-$XD_BUILD/xdnat-host}
XD_TRAFFIC=${XD_TRAFFIC:-$XD_ROOT/selftests/lib/traffic.py}

XD_TAG=${XD_TAG:-xd$$}                      # suffix of every name we create
XD_INSTANCE=${XD_INSTANCE:-e2e-$XD_TAG}      # xdnatd --instance
XD_PIN_BASE=${XD_PIN_BASE:-/sys/fs/bpf/xdnat}
XD_RUN_DIR=${XD_RUN_DIR:-/run/xdnat}         # where xdnatd keeps INSTANCE.lock

XD_GLOBAL=${XD_GLOBAL:-192.0.2.1}            # the shared global address G
XD_GLOBAL_NET=${XD_GLOBAL_NET:-192.0.2.0/24} # what the remote routes via the router
XD_WAN_PLEN=${XD_WAN_PLEN:-24}
XD_ROUTER_WAN=${XD_ROUTER_WAN:-198.51.100.1}
XD_REMOTE_WAN=${XD_REMOTE_WAN:-198.51.100.2}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.0.0}       # hosts get PREFIX.2, PREFIX.3, ...
XD_LAN_PLEN=${XD_LAN_PLEN:-24}
XD_ROUTER_LAN=${XD_ROUTER_LAN:-$XD_LAN_PREFIX.1}

# Interface names inside the namespaces (no clash between runs: each run has
# its own namespaces).
XD_IF_REMOTE=eth0
XD_IF_WAN=wan
XD_IF_LAN=lan
XD_IF_HOST=eth0
XD_BRIDGE=br0

XD_NS_REMOTE=${XD_TAG}-remote
XD_NS_ROUTER=${XD_TAG}-router
XD_NS_SWITCH=${XD_TAG}-switch

XD_TIMEOUT=${XD_TIMEOUT:-10}   # default seconds for wait_for and daemon start
XD_VERBOSE=${XD_VERBOSE:-0}    # 1: echo every namespace command

# ------------------------------------------------------------------ state

XD_NETNS=()        # namespaces we created, deleted on exit
XD_PIDS=()         # background processes we started, killed on exit
XD_PID_NAMES=()    # their names, for messages
XD_TMP=""          # scratch directory (logs, captures), removed on exit
XD_LAST_PID=""     # pid of the last xd_bg / xd_start_* process
XD_ROUTER_PID=""
declare -A XD_HOST_PID=()
XD_CLEANUP_HOOKS=()

# ---------------------------------------------------------------- output

if [ -t 1 ]; then
	XD_C_BOLD=$'\e[1m' XD_C_RED=$'\e[31m' XD_C_GREEN=$'\e[32m' XD_C_DIM=$'\e[2m' XD_C_OFF=$'\e[0m'
else
	XD_C_BOLD="" XD_C_RED="" XD_C_GREEN="" XD_C_DIM="" XD_C_OFF=""
fi

xd_log()  { printf '%s\n' "$*"; }
xd_step() { printf '\n%s==> %s%s\n' "$XD_C_BOLD" "$*" "$XD_C_OFF"; }
xd_ok()   { printf '%s  ok%s  %s\n' "$XD_C_GREEN" "$XD_C_OFF" "$*"; }
xd_info() { printf '%s      %s%s\n' "$XD_C_DIM" "$*" "$XD_C_OFF"; }

# fail MESSAGE...: print and exit 1 (the EXIT trap cleans up).
fail() {
	printf '%sFAIL%s: %s\n' "$XD_C_RED" "$XD_C_OFF" "$*" >&2
	exit 1
}

# wait_for TIMEOUT_SECONDS COMMAND...: poll COMMAND every 0.1 s until it
# succeeds; return 1 on timeout.
wait_for() {
	local timeout=$1 deadline
	shift
	deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# ------------------------------------------------------------- namespaces

# xd_ns NS COMMAND...: run COMMAND in network namespace NS (root mount
# namespace, so /sys/fs/bpf is the real bpffs).
xd_ns() {
	local ns=$1
	shift
	[ "$XD_VERBOSE" = 1 ] && printf '%s      [%s] %s%s\n' "$XD_C_DIM" "$ns" "$*" "$XD_C_OFF" >&2
	nsenter --net="/var/run/netns/$ns" -- "$@"
}

xd_host_ns()  { printf '%s-h%s' "$XD_TAG" "$1"; }
xd_host_lan() { printf '%s.%s' "$XD_LAN_PREFIX" "$(( $1 + 1 ))"; }

xd_netns_add() {
	local ns=$1
	ip netns add "$ns"
	XD_NETNS+=("$ns")
	# No IPv6: keeps captures free of DAD/RS noise; xdnat is IPv4 only.
	xd_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	xd_ns "$ns" ip link set lo up
}

# xd_topology [NHOSTS]: build remote, router, switch and h1..hNHOSTS (default 2).
xd_topology() {
	local n=${1:-2} i hns
	XD_NHOSTS=$n

	xd_netns_add "$XD_NS_REMOTE"
	xd_netns_add "$XD_NS_ROUTER"
	xd_netns_add "$XD_NS_SWITCH"

	# remote <-> router WAN
	ip -n "$XD_NS_ROUTER" link add "$XD_IF_WAN" type veth peer name "$XD_IF_REMOTE" netns "$XD_NS_REMOTE"
	# router LAN <-> switch
	ip -n "$XD_NS_ROUTER" link add "$XD_IF_LAN" type veth peer name p-router netns "$XD_NS_SWITCH"
	ip -n "$XD_NS_SWITCH" link add "$XD_BRIDGE" type bridge
	ip -n "$XD_NS_SWITCH" link set p-router master "$XD_BRIDGE" up

	for ((i = 1; i <= n; i++)); do
		hns=$(xd_host_ns "$i")
		xd_netns_add "$hns"
		ip -n "$hns" link add "$XD_IF_HOST" type veth peer name "p-h$i" netns "$XD_NS_SWITCH"
		ip -n "$XD_NS_SWITCH" link set "p-h$i" master "$XD_BRIDGE" up
		ip -n "$hns" addr add "$(xd_host_lan "$i")/$XD_LAN_PLEN" dev "$XD_IF_HOST"
		ip -n "$hns" link set "$XD_IF_HOST" up
	done
	ip -n "$XD_NS_SWITCH" link set "$XD_BRIDGE" up

	# Remote: a peer on the Internet; the global prefix is reached via the router.
	ip -n "$XD_NS_REMOTE" addr add "$XD_REMOTE_WAN/$XD_WAN_PLEN" dev "$XD_IF_REMOTE"
	ip -n "$XD_NS_REMOTE" link set "$XD_IF_REMOTE" up
	ip -n "$XD_NS_REMOTE" route add "$XD_GLOBAL_NET" via "$XD_ROUTER_WAN"

	# Router: G on the WAN interface (it answers ARP and ICMP echo for G),
	# LAN address = tunnel endpoint, default route via the remote.
	ip -n "$XD_NS_ROUTER" addr add "$XD_ROUTER_WAN/$XD_WAN_PLEN" dev "$XD_IF_WAN"
	ip -n "$XD_NS_ROUTER" addr add "$XD_GLOBAL/32" dev "$XD_IF_WAN"
	ip -n "$XD_NS_ROUTER" addr add "$XD_ROUTER_LAN/$XD_LAN_PLEN" dev "$XD_IF_LAN"
	ip -n "$XD_NS_ROUTER" link set "$XD_IF_WAN" up
	ip -n "$XD_NS_ROUTER" link set "$XD_IF_LAN" up
	ip -n "$XD_NS_ROUTER" route add default via "$XD_REMOTE_WAN"

	# XDP_REDIRECT (and XDP_TX) into a veth only delivers when the PEER of
	# that veth runs XDP or has GRO on (veth NAPI); otherwise the frame is
	# dropped and shows only as an rx "dropped" count.  The router redirects
	# out of wan (peer: the remote's eth0) and lan (peer: the switch port).
	xd_ns "$XD_NS_REMOTE" ethtool -K "$XD_IF_REMOTE" gro on >/dev/null
	xd_ns "$XD_NS_SWITCH" ethtool -K p-router gro on >/dev/null

	# Checksum offload.  A veth sends TCP/UDP with CHECKSUM_PARTIAL (the
	# checksum field holds only the pseudo-header sum, "the NIC will finish
	# it").  When such a packet hits native XDP on the router and leaves by
	# XDP_REDIRECT, it becomes a bare xdp_frame: the "finish the checksum"
	# note is lost and the receiver sees a bad checksum and drops it.
	# Verified by experiment (see selftests/e2e_forwarding.sh history): with
	# tx checksumming on, TCP from the remote to a host stalls and tcpdump
	# on the host shows "incorrect" TCP checksums.  Real NICs compute the
	# checksum in hardware before the wire, so this is a veth-only artefact:
	# turn tx checksum offload off on every interface that sends into the
	# router (remote eth0, host eth0s), so senders put full checksums in.
	if [ "${XD_TX_CSUM_OFF:-1}" = 1 ]; then
		xd_ns "$XD_NS_REMOTE" ethtool -K "$XD_IF_REMOTE" tx off >/dev/null
		for ((i = 1; i <= n; i++)); do
			xd_ns "$(xd_host_ns "$i")" ethtool -K "$XD_IF_HOST" tx off >/dev/null
		done
	fi
}

# ------------------------------------------------------ background processes

# xd_bg NAME NS LOG COMMAND...: start COMMAND in namespace NS in the
# background, stdout+stderr to LOG; sets XD_LAST_PID.  NS "-" = root namespace.
xd_bg() {
	local name=$1 ns=$2 log=$3
	shift 3
	if [ "$ns" = - ]; then
		"$@" >"$log" 2>&1 </dev/null &
	else
		nsenter --net="/var/run/netns/$ns" -- "$@" >"$log" 2>&1 </dev/null &
	fi
	XD_LAST_PID=$!
	XD_PIDS+=("$XD_LAST_PID")
	XD_PID_NAMES+=("$name")
}

xd_alive() { kill -0 "$1" 2>/dev/null; }

# xd_wait_line PID LOG REGEX [TIMEOUT]: wait until LOG has a line matching
# REGEX (extended); fail with the log if PID exits or the time runs out.
xd_wait_line() {
	local pid=$1 log=$2 re=$3 timeout=${4:-$XD_TIMEOUT} deadline rc
	deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
	while ! grep -Eq -- "$re" "$log" 2>/dev/null; do
		if ! xd_alive "$pid"; then
			rc=0
			wait "$pid" 2>/dev/null || rc=$?
			sed 's/^/    | /' "$log" >&2
			fail "process $pid exited (status $rc) before printing /$re/ (log $log)"
		fi
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			sed 's/^/    | /' "$log" >&2
			fail "no /$re/ from process $pid within ${timeout}s (log $log)"
		fi
		sleep 0.05
	done
}

# xd_stop PID [TIMEOUT]: SIGTERM, wait; SIGKILL after TIMEOUT (default 5 s).
# Returns the process's exit status (137 if it had to be killed).
xd_stop() {
	local pid=$1 timeout=${2:-5} i rc=0
	if xd_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < timeout * 20; i++)); do
			xd_alive "$pid" || break
			sleep 0.05
		done
		if xd_alive "$pid"; then
			echo "xd_stop: pid $pid ignored SIGTERM for ${timeout}s, killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# xd_start_router [XDNATD OPTIONS...]: start xdnatd in the router namespace
# on wan/lan with G and our instance; waits for its ready line.  Sets
# XD_ROUTER_PID; log in $XD_TMP/xdnatd.log.
xd_start_router() {
	local log=$XD_TMP/xdnatd.log
	xd_bg xdnatd "$XD_NS_ROUTER" "$log" "$XD_XDNATD" --wan "$XD_IF_WAN" --lan "$XD_IF_LAN" \
		--global "$XD_GLOBAL" --instance "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" "$@"
	XD_ROUTER_PID=$XD_LAST_PID
	xd_wait_line "$XD_ROUTER_PID" "$log" '^xdnatd: ready'
}

# xd_start_host I PORTS [XDNAT-HOST OPTIONS...]: start xdnat-host in host I's
# namespace with port block PORTS; waits for its ready line.
xd_start_host() {
	local i=$1 ports=$2 log
	shift 2
	log=$XD_TMP/xdnat-host-h$i.log
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
		--global "$XD_GLOBAL" --router "$XD_ROUTER_LAN" --ports "$ports" "$@"
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$log" '^xdnat-host: ready'
}

# xd_ctl ARGS...: xdnatctl on our instance.
xd_ctl() {
	"$XD_XDNATCTL" -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" "$@"
}

# xd_stat REASON [packets|bytes]: one counter of `xdnatctl -j stats`.
xd_stat() {
	xd_ctl -j stats | python3 -c '
import json, sys
c = json.load(sys.stdin)["counters"]
print(c.get(sys.argv[1], {}).get(sys.argv[2], 0))' "$1" "${2:-packets}"
}

# jget EXPR: from the last line of stdin (the JSON object traffic.py and
# xdnatctl -j print), print d EXPR, e.g. jget '["sha256"]'.
jget() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(eval("d"+sys.argv[1]))' "$1"; }

# xd_py NS ARGS...: run the traffic helper (selftests/lib/traffic.py) in NS.
xd_py() {
	local ns=$1
	shift
	xd_ns "$ns" python3 "$XD_TRAFFIC" "$@"
}

# xd_capture NAME NS IFACE FILE FILTER...: tcpdump -w FILE in NS, started
# and listening when this returns.  Stop it with xd_stop "$XD_LAST_PID".
xd_capture() {
	local name=$1 ns=$2 ifc=$3 file=$4
	shift 4
	# -U: write each packet at once; -Z root: do not drop privileges (the
	# file is in our root-owned temp dir); -p: not promiscuous.
	xd_bg "$name" "$ns" "$file.log" tcpdump -i "$ifc" -p -n -U -Z root -w "$file" "$@"
	xd_wait_line "$XD_LAST_PID" "$file.log" 'listening on'
}

# --------------------------------------------------------------- lifecycle

xd_cleanup() {
	local rc=$? i pid ns
	set +e
	trap - EXIT INT TERM
	for hook in "${XD_CLEANUP_HOOKS[@]}"; do
		"$hook"
	done
	# Stop in reverse start order: hosts and helpers before the router.
	for ((i = ${#XD_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${XD_PIDS[$i]}
		xd_alive "$pid" && xd_stop "$pid" 5 >/dev/null 2>&1
	done
	if [ "$rc" -ne 0 ] && [ -n "$XD_TMP" ] && [ "${XD_QUIET_LOGS:-0}" != 1 ]; then
		for f in "$XD_TMP"/xdnatd*.log "$XD_TMP"/xdnat-host*.log; do
			[ -s "$f" ] || continue
			echo "--- $(basename "$f")" >&2
			tail -n 20 "$f" >&2
		done
	fi
	for ns in "${XD_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$XD_INSTANCE" ]; then
		rm -rf "${XD_PIN_BASE:?}/$XD_INSTANCE"
		rm -f "$XD_RUN_DIR/$XD_INSTANCE.lock"
	fi
	if [ -n "$XD_TMP" ]; then
		if [ "${XD_KEEP_TMP:-0}" = 1 ]; then
			echo "logs and captures kept in $XD_TMP" >&2
		else
			rm -rf "$XD_TMP"
		fi
	fi
	exit "$rc"
}

xd_on_signal() {
	echo "interrupted" >&2
	exit 130
}

# xd_init: root, binaries and tools present; temp dir; cleanup traps.
xd_init() {
	[ "$(id -u)" -eq 0 ] || { echo "needs root (BPF, network namespaces)" >&2; exit 1; }
	local b t
	for b in "$XD_XDNATD" "$XD_XDNATCTL" "$XD_XDNAT_HOST"; do
		[ -x "$b" ] || { echo "missing $b: run 'make all' first" >&2; exit 1; }
	done
	for t in ip nsenter ethtool tcpdump python3 bpftool; do
		command -v "$t" >/dev/null || { echo "missing tool: $t (scripts/deps.sh)" >&2; exit 1; }
	done
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	XD_TMP=$(mktemp -d "/tmp/xdnat-$XD_TAG.XXXXXX")
	trap xd_cleanup EXIT
	trap xd_on_signal INT TERM
}
