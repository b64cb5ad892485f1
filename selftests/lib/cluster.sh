# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Two xdnat routers for one global address G, in network namespaces: the
# topology of the failover tests (selftests/e2e_failover_*.sh) and of
# `make demo CLUSTER=1`.  Source after lib/netns.sh (whose helpers, cleanup
# and variables it uses); it sources lib/cluster_ns.sh (what it shares with
# lib/cluster_store.sh):
#
#     . "$(dirname "$0")/lib/netns.sh"
#     . "$(dirname "$0")/lib/cluster.sh"
#     xc_init                      # xd_init + tools + cleanup of our daemons
#     xc_topology vrrp 2           # or ecmp; 2 hosts
#     xc_start_router 1; xc_start_router 2
#     xc_keepalived_start 1; xc_keepalived_start 2; xc_wait_master 1
#     xc_hosts_up                  # the same hosts on both routers, hosts up
#     xc_wait_tables; xc_point_to 1
#     ...
#     xc_fail_router 1             # kill -9 xdnatd + keepalived, links down
#     xc_rsip_after 2              # etcd: the survivor renews and grants
#
# XC_MODE=vrrp (active/standby):
#
#   [remote] eth0 ── WAN switch ── wan [r1] lan ── LAN switch ── eth0 [h1]
#   198.51.100.2      (bridge)  └─ wan [r2] lan ─┘  (bridge)  └─ eth0 [h2]
#                                198.51.100.11/.12    10.0.0.251/.252   10.0.0.2, .3
#   G/32 onlink        keepalived moves G (wan) and the VIP 10.0.0.1 (lan)
#
# XC_MODE=ecmp (active/active): the remote is the upstream router, with one
# link per router; G is on both routers' wan; the remote's route to G has
# one nexthop per router (`ip route add G nexthop via .. nexthop via ..`),
# flows spread by an L4 hash (fib_multipath_hash_policy=1) and a nexthop
# whose link goes down is skipped (ignore_routes_with_linkdown=1), at once
# (XC_LINKWATCH=urgent) or at linkwatch's next run like a physical NIC
# (batched: up to 1 s later).  The LAN side is as in vrrp (keepalived moves
# only the VIP).
#
#   [remote] eth1 198.51.100.5/30 ── wan 198.51.100.6/30 [r1]
#            eth2 198.51.100.9/30 ── wan 198.51.100.10/30 [r2]
#            lo   198.51.100.2/32 (the remote's own address)
#
# Both routers run xdnatd with --lan-addr VIP (the hosts' tunnel endpoint,
# whichever router holds it), the same instance name (each in a mount
# namespace of its own, with its own pin base) and the same allocation
# tables.  The tables come from XC_STORE:
#   static  every host added to both routers with `xdnatctl host add` (the
#           same id, LAN address, ports, SPIs) and xdnat-host --ports;
#   etcd    both routers share an etcd store (three members started here,
#           `[store] backend = etcd`, router-id r1 / r2) and the hosts
#           register over RSIP at the VIP (so keepalived must hold it
#           first): the blocks live in etcd and each router's maps follow
#           the store (cluster sync, docs/CLUSTER.md).
# With XC_ETCD=1 (implied by XC_STORE=etcd) three etcd members run on a
# management bridge (10.255.0.0/24, the routers at .1, .2), data dirs in
# the run's temporary directory.
#
# Failing a router (xc_fail_router) models a crash: its links go down (the
# still-attached XDP programs no longer see anything), then SIGKILL to
# xdnatd and to every keepalived process at once (no priority-0
# advertisement, no clean-up).

. "$(dirname "${BASH_SOURCE[0]}")/cluster_ns.sh"

XC_MODE=${XC_MODE:-vrrp}
XC_STORE=${XC_STORE:-static}
XC_ETCD=${XC_ETCD:-0}
XC_LINKWATCH=${XC_LINKWATCH:-urgent}   # ecmp: urgent | batched (see xc_topology)
[ "$XC_STORE" = etcd ] && XC_ETCD=1
XC_NS_RTR=("" "${XD_TAG}-r1" "${XD_TAG}-r2")
XC_NS_WSW=${XD_TAG}-wsw          # WAN switch (vrrp)
XC_NS_MSW=${XD_TAG}-msw          # management switch (etcd)
# Both routers run the same instance (etcd keys are per instance), each in a
# mount namespace of its own with a private /run/xdnat (the instance lock
# and control socket are named after the instance) and its own pin base.
XC_INSTANCE=$XD_INSTANCE
XC_PIN=("" "$XD_PIN_BASE/$XD_INSTANCE-r1" "$XD_PIN_BASE/$XD_INSTANCE-r2")

# Addresses (RFC 5737 outside, RFC 1918 inside); XD_GLOBAL, XD_REMOTE_WAN,
# XD_LAN_PREFIX come from lib/netns.sh.
XC_VIP=${XC_VIP:-$XD_LAN_PREFIX.1}                     # hosts' tunnel endpoint
XC_LAN_ADDR=("" "${XC_LAN1:-$XD_LAN_PREFIX.251}" "${XC_LAN2:-$XD_LAN_PREFIX.252}")
XC_WAN_PREFIX=${XC_WAN_PREFIX:-198.51.100}
XC_WAN_ADDR=("" "${XC_WAN1:-$XC_WAN_PREFIX.11}" "${XC_WAN2:-$XC_WAN_PREFIX.12}")   # vrrp
XC_ECMP_UP=("" "$XC_WAN_PREFIX.5" "$XC_WAN_PREFIX.9")                            # ecmp: upstream side
XC_ECMP_RTR=("" "$XC_WAN_PREFIX.6" "$XC_WAN_PREFIX.10")                          # ecmp: router side
XC_MGMT_PREFIX=${XC_MGMT_PREFIX:-10.255.0}
XC_VRID=${XC_VRID:-51}
XC_ADVERT=${XC_ADVERT:-0.1}          # VRRPv3 advertisement interval, seconds
XC_PRIO=("" 150 100)
XC_ETCD_PORT=${XC_ETCD_PORT:-2379}
XC_ETCD_PEER_PORT=${XC_ETCD_PEER_PORT:-2380}
XC_ETCD_PREFIX=${XC_ETCD_PREFIX:-/xdnat/$XD_TAG}

XC_KEEPALIVED=${XC_KEEPALIVED:-keepalived}
XC_ETCD_BIN=${XC_ETCD_BIN:-etcd}
XC_ETCDCTL=${XC_ETCDCTL:-etcdctl}
XC_PROBE=${XC_PROBE:-$XD_ROOT/selftests/lib/failover_probe.py}

declare -A XC_PID=()       # "xdnatd1", "keepalived2", "etcd3" -> pid
XC_ETCD_ENDPOINTS=""

xc_rns() { printf '%s' "${XC_NS_RTR[$1]}"; }
xc_etcd_ns() { printf '%s-e%s' "$XD_TAG" "$1"; }
xc_etcd_addr() { printf '%s.%s' "$XC_MGMT_PREFIX" "$(( 10 + $1 ))"; }

# xc_ctl I ARGS...: xdnatctl on router I (in its mount and network
# namespaces: its control socket, its etcd members); with XC_STORE=etcd
# with the router's configuration, so that store commands see the cluster.
xc_ctl() {
	local i=$1 p conf=()
	shift
	p=${XC_PID[xdnatd$i]:-}
	[ "$XC_STORE" = etcd ] && conf=(--config "$XD_TMP/xdnatd-r$i.conf")
	xk_ctl "$p" "$(xc_rns "$i")" -i "$XC_INSTANCE" --pin-base "${XC_PIN[$i]}" "${conf[@]}" "$@"
}

# xc_init: lib/netns.sh's checks, temp dir and traps, plus keepalived (and
# etcd when asked); fails with what is missing.
xc_init() {
	xd_init
	case $XC_MODE in vrrp | ecmp) ;; *) fail "XC_MODE='$XC_MODE': vrrp or ecmp" ;; esac
	case $XC_STORE in static | etcd) ;; *) fail "XC_STORE='$XC_STORE': static or etcd" ;; esac
	case $XC_LINKWATCH in urgent | batched) ;; *) fail "XC_LINKWATCH='$XC_LINKWATCH': urgent or batched" ;; esac
	command -v "$XC_KEEPALIVED" >/dev/null ||
		fail "keepalived not found: install keepalived (scripts/deps.sh)"
	command -v unshare >/dev/null || fail "unshare not found: install util-linux"
	[ "$XC_ETCD" = 1 ] && xk_need_etcd "$XC_ETCD_BIN" "$XC_ETCDCTL"
	[ -r "$XC_PROBE" ] || fail "missing $XC_PROBE"
	XD_CLEANUP_HOOKS+=(xc_cleanup)
}

# Cleanup hook (before lib/netns.sh kills the rest and deletes the
# namespaces): our routers' pins and lock files, keepalived's and etcd's
# logs when the test failed.
xc_cleanup() {
	local status=${rc:-0} i f p
	for i in 1 2; do
		# xdnatd unpins its maps on the way out: stop it before the
		# leftovers (of a killed one) are removed.
		p=${XC_PID[xdnatd$i]:-}
		[ -n "$p" ] && xd_alive "$p" && xd_stop "$p" 5 >/dev/null 2>&1
		rm -rf "${XC_PIN[$i]:?}"
	done
	if [ "$status" -ne 0 ] && [ "${XD_QUIET_LOGS:-0}" != 1 ] && [ -n "$XD_TMP" ]; then
		for f in "$XD_TMP"/keepalived*.log "$XD_TMP"/etcd*.log; do
			[ -s "$f" ] || continue
			echo "--- $(basename "$f")" >&2
			tail -n 15 "$f" >&2
		done
	fi
}

# xc_link NS_A IF_A NS_B IF_B: a veth pair between two namespaces.
xc_link() {
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
}

# xc_bridge NS: a switch namespace with bridge br0.
xc_bridge() {
	xd_netns_add "$1"
	ip -n "$1" link add "$XD_BRIDGE" type bridge
	ip -n "$1" link set "$XD_BRIDGE" up
}

# xc_port NS PORT: enslave PORT to NS's bridge and bring it up.
xc_port() {
	ip -n "$1" link set "$2" master "$XD_BRIDGE" up
}

# xc_topology [MODE] [NHOSTS]: namespaces, links and addresses (see the top).
xc_topology() {
	local mode=${1:-$XC_MODE} n=${2:-2} i r
	XC_MODE=$mode
	XD_NHOSTS=$n
	xd_netns_add "$XD_NS_REMOTE"
	xc_bridge "$XD_NS_SWITCH"              # the LAN
	for i in 1 2; do
		xd_netns_add "$(xc_rns "$i")"
	done
	[ "$mode" = vrrp ] && xc_bridge "$XC_NS_WSW"

	for ((i = 1; i <= n; i++)); do
		xc_host_add "$i"
	done

	for i in 1 2; do
		r=$(xc_rns "$i")
		# LAN: own address; the VIP is keepalived's.
		xc_link "$r" "$XD_IF_LAN" "$XD_NS_SWITCH" "p-r$i"
		xc_port "$XD_NS_SWITCH" "p-r$i"
		ip -n "$r" addr add "${XC_LAN_ADDR[$i]}/$XD_LAN_PLEN" dev "$XD_IF_LAN"
		ip -n "$r" link set "$XD_IF_LAN" up
		# The router redirects out of lan with XDP: its peer needs GRO
		# (lib/netns.sh, xd_topology).
		xd_ns "$XD_NS_SWITCH" ethtool -K "p-r$i" gro on >/dev/null
		if [ "$mode" = vrrp ]; then
			xc_link "$r" "$XD_IF_WAN" "$XC_NS_WSW" "p-r$i"
			xc_port "$XC_NS_WSW" "p-r$i"
			xd_ns "$XC_NS_WSW" ethtool -K "p-r$i" gro on >/dev/null
			ip -n "$r" addr add "${XC_WAN_ADDR[$i]}/$XD_WAN_PLEN" dev "$XD_IF_WAN"
			ip -n "$r" link set "$XD_IF_WAN" up
			ip -n "$r" route add default via "$XD_REMOTE_WAN"
		else
			# How fast the upstream drops a dead router's nexthop
			# depends on the kernel's linkwatch: a carrier change of a
			# device whose ifindex differs from its link's (a veth whose
			# peer has another number) is handled at once ("urgent");
			# one of a physical NIC, or of a veth whose peer happens to
			# have the same number, waits for linkwatch's next run, at
			# most once per second for the whole machine.  Both links
			# get the same treatment, chosen by XC_LINKWATCH.
			local up_idx=$(( 20 + i ))
			[ "$XC_LINKWATCH" = batched ] && up_idx=$(( 10 + i ))
			ip -n "$r" link add "$XD_IF_WAN" index $(( 10 + i )) type veth \
				peer name "eth$i" index "$up_idx" netns "$XD_NS_REMOTE"
			xd_ns "$XD_NS_REMOTE" ethtool -K "eth$i" gro on >/dev/null
			ip -n "$r" addr add "${XC_ECMP_RTR[$i]}/30" dev "$XD_IF_WAN"
			# active/active: G lives on both routers, always
			ip -n "$r" addr add "$XD_GLOBAL/32" dev "$XD_IF_WAN"
			ip -n "$r" link set "$XD_IF_WAN" up
			ip -n "$r" route add default via "${XC_ECMP_UP[$i]}"
			ip -n "$XD_NS_REMOTE" addr add "${XC_ECMP_UP[$i]}/30" dev "eth$i"
			ip -n "$XD_NS_REMOTE" link set "eth$i" up
		fi
	done

	if [ "$mode" = vrrp ]; then
		xc_link "$XD_NS_REMOTE" "$XD_IF_REMOTE" "$XC_NS_WSW" p-remote
		xc_port "$XC_NS_WSW" p-remote
		ip -n "$XD_NS_REMOTE" addr add "$XD_REMOTE_WAN/$XD_WAN_PLEN" dev "$XD_IF_REMOTE"
		ip -n "$XD_NS_REMOTE" link set "$XD_IF_REMOTE" up
		# G is on the WAN segment, on whichever router is master: ARP.
		ip -n "$XD_NS_REMOTE" route add "$XD_GLOBAL/32" dev "$XD_IF_REMOTE"
		xd_ns "$XD_NS_REMOTE" ethtool -K "$XD_IF_REMOTE" gro on >/dev/null
	else
		ip -n "$XD_NS_REMOTE" addr add "$XD_REMOTE_WAN/32" dev lo
		xd_ns "$XD_NS_REMOTE" sysctl -qw net.ipv4.ip_forward=1 \
			net.ipv4.fib_multipath_hash_policy=1 \
			net.ipv4.conf.all.ignore_routes_with_linkdown=1 \
			net.ipv4.conf.default.ignore_routes_with_linkdown=1
		for i in 1 2; do
			xd_ns "$XD_NS_REMOTE" sysctl -qw "net.ipv4.conf.eth$i.ignore_routes_with_linkdown=1"
		done
		# src: the remote answers from its own address, not a link's
		ip -n "$XD_NS_REMOTE" route add "$XD_GLOBAL/32" src "$XD_REMOTE_WAN" \
			nexthop via "${XC_ECMP_RTR[1]}" dev eth1 nexthop via "${XC_ECMP_RTR[2]}" dev eth2
	fi

	# Checksums complete on everything that sends into a router's XDP
	# (lib/netns.sh, xd_topology: a veth artefact).
	if [ "${XD_TX_CSUM_OFF:-1}" = 1 ]; then
		if [ "$mode" = vrrp ]; then
			xd_ns "$XD_NS_REMOTE" ethtool -K "$XD_IF_REMOTE" tx off >/dev/null
		else
			xd_ns "$XD_NS_REMOTE" ethtool -K eth1 tx off >/dev/null
			xd_ns "$XD_NS_REMOTE" ethtool -K eth2 tx off >/dev/null
		fi
	fi
	[ "$XC_ETCD" = 1 ] && xc_mgmt_net
	return 0
}

# xc_host_add I: host I's namespace on the LAN switch (xc_topology; later
# for a host that arrives after the failover).  Does not change XD_NHOSTS.
xc_host_add() {
	local i=$1 hns
	hns=$(xd_host_ns "$i")
	xd_netns_add "$hns"
	xc_link "$hns" "$XD_IF_HOST" "$XD_NS_SWITCH" "p-h$i"
	xc_port "$XD_NS_SWITCH" "p-h$i"
	ip -n "$hns" addr add "$(xd_host_lan "$i")/$XD_LAN_PLEN" dev "$XD_IF_HOST"
	ip -n "$hns" link set "$XD_IF_HOST" up
	# checksums complete on what enters a router's XDP (xd_topology)
	[ "${XD_TX_CSUM_OFF:-1}" = 1 ] && xd_ns "$hns" ethtool -K "$XD_IF_HOST" tx off >/dev/null
	return 0
}

# xc_mgmt_net: the management bridge with the routers (.1, .2) and one
# namespace per etcd member (.11, .12, .13).
xc_mgmt_net() {
	local i ns
	xc_bridge "$XC_NS_MSW"
	for i in 1 2; do
		xc_link "$(xc_rns "$i")" mgmt "$XC_NS_MSW" "p-r$i"
		xc_port "$XC_NS_MSW" "p-r$i"
		ip -n "$(xc_rns "$i")" addr add "$XC_MGMT_PREFIX.$i/24" dev mgmt
		ip -n "$(xc_rns "$i")" link set mgmt up
	done
	for i in 1 2 3; do
		ns=$(xc_etcd_ns "$i")
		xd_netns_add "$ns"
		xc_link "$ns" eth0 "$XC_NS_MSW" "p-e$i"
		xc_port "$XC_NS_MSW" "p-e$i"
		ip -n "$ns" addr add "$(xc_etcd_addr "$i")/24" dev eth0
		ip -n "$ns" link set eth0 up
	done
}

# xc_etcd_start: three etcd members (one cluster, token = our tag), data
# dirs under the run's temporary directory (removed by the EXIT trap);
# waits until the cluster answers.  Sets XC_ETCD_ENDPOINTS.
xc_etcd_start() {
	local i cluster="" eps=""
	for i in 1 2 3; do
		cluster+="${cluster:+,}e$i=http://$(xc_etcd_addr "$i"):$XC_ETCD_PEER_PORT"
		eps+="${eps:+,}http://$(xc_etcd_addr "$i"):$XC_ETCD_PORT"
	done
	XC_ETCD_ENDPOINTS=$eps
	for i in 1 2 3; do
		xk_etcd_member "$XC_ETCD_BIN" "e$i" "$(xc_etcd_ns "$i")" \
			"http://$(xc_etcd_addr "$i"):$XC_ETCD_PORT" "http://$(xc_etcd_addr "$i"):$XC_ETCD_PEER_PORT" \
			"$cluster" new "$XD_TMP/etcd$i" "$XD_TMP/etcd$i.log" \
			--heartbeat-interval 50 --election-timeout 500 --logger zap --log-outputs stderr
		XC_PID[etcd$i]=$XD_LAST_PID
	done
	wait_for 20 xc_etcdctl endpoint health --cluster ||
		fail "etcd: the 3 members did not become healthy within 20 s (logs $XD_TMP/etcd*.log)"
}

# xc_etcdctl ARGS...: etcdctl (API v3) against our members, from router 1's
# namespace (the management network).
xc_etcdctl() {
	xk_etcdctl "$XC_ETCDCTL" "$(xc_rns 1)" "$XC_ETCD_ENDPOINTS" --dial-timeout 2s --command-timeout 3s "$@"
}

# xc_start_router I [XDNATD OPTIONS...]: xdnatd on router I with G and
# --lan-addr VIP (on neither router yet: keepalived adds it), in a mount
# namespace of its own with a private /run/xdnat (see XC_INSTANCE); with
# XC_STORE=etcd also RSIP and the shared store (the same [store] section on
# both, router-id r1 / r2).  Waits for its ready line.
xc_start_router() {
	local i=$1 log=$XD_TMP/xdnatd-r$1.log args=()
	shift
	if [ "$XC_STORE" = etcd ]; then
		# The store section of issue 17 ([store] backend = etcd).
		cat >"$XD_TMP/xdnatd-r$i.conf" <<EOF
[store]
backend = etcd
endpoints = $XC_ETCD_ENDPOINTS
prefix = $XC_ETCD_PREFIX
router-id = r$i
EOF
		args=(--config "$XD_TMP/xdnatd-r$i.conf" --rsip)
	fi
	xk_xdnatd_bg "xdnatd r$i" "$(xc_rns "$i")" "$log" --wan "$XD_IF_WAN" --lan "$XD_IF_LAN" \
		--global "$XD_GLOBAL" --lan-addr "$XC_VIP" --instance "$XC_INSTANCE" \
		--pin-base "${XC_PIN[$i]}" "${args[@]}" "$@"
	XC_PID[xdnatd$i]=$XD_LAST_PID
	# a start with registrations in etcd reconciles them with the maps
	# (lib/cluster_store.sh): allow more than a bare start
	xd_wait_line "$XD_LAST_PID" "$log" '^xdnatd: ready' 30
}

# xc_hosts_up [PORTS_PER_HOST]: hosts 1..XD_NHOSTS with N ports each (default
# 1000) and one SPI block, then xdnat-host on each host with --router VIP.
# static: host I gets ports 20000+(I-1)*N .. +N-1 and the SPI block
# 0x(I)0000-0x(I)ffff (16-bit blocks), added with the same id to both
# routers; etcd: the hosts register over RSIP at the VIP (xc_host_rsip; the
# VIP must be held).  Sets XC_PORTS[I] (one run), XC_SPIS[I].
declare -A XC_PORTS=() XC_SPIS=()
xc_hosts_up() {
	local per=${1:-1000} i r lo
	for ((i = 1; i <= XD_NHOSTS; i++)); do
		if [ "$XC_STORE" = etcd ]; then
			xc_host_rsip "$i" "$per"
			continue
		fi
		lo=$(( 20000 + (i - 1) * per ))
		XC_PORTS[$i]=$lo-$(( lo + per - 1 ))
		XC_SPIS[$i]=$(printf '0x%08x-0x%08x' $(( i << 16 )) $(( (i << 16) | 0xffff )))
		for r in 1 2; do
			xc_ctl "$r" host add "$i" lan "$(xd_host_lan "$i")" ports "${XC_PORTS[$i]}" \
				spi "${XC_SPIS[$i]}" >/dev/null ||
				fail "router $r: xdnatctl host add $i failed"
		done
		XD_ROUTER_LAN=$XC_VIP
		xd_start_host "$i" "${XC_PORTS[$i]}"
	done
}

# xc_host_rsip I [PORTS]: RSIP at the VIP, the allocation in the shared
# store (XC_STORE=etcd): enrol host I (through the VIP holder: the store is
# shared) and start xdnat-host in RSIP mode; its blocks come from its info
# file.  The VIP must be held (keepalived started): the host registers at
# once.
xc_host_rsip() {
	local i=$1 per=${2:-1000} env m
	m=$(xc_master)
	[ -n "$m" ] || fail "h$i registers over RSIP at the VIP $XC_VIP, which no router holds: start keepalived first"
	xc_ctl "$m" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key" >/dev/null ||
		fail "xdnatctl enroll h$i (on r$m) failed"
	env=$XD_TMP/h$i.env
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XC_VIP" --name "h$i" --secret-file "$XD_TMP/h$i.key" \
		--port-count "$per" --spi-count 1 --no-cert --info-file "$env" \
		--state-dir "$XD_TMP/h$i-state"
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready' 20
	XC_PORTS[$i]=$(sed -n 's/^XDNAT_PORTS=//p' "$env" | head -n 1)
	XC_SPIS[$i]=$(sed -n 's/^XDNAT_SPIS=//p' "$env" | head -n 1)
	XC_SPIS[$i]=${XC_SPIS[$i]%%,*}
	local lo=${XC_PORTS[$i]%-*} hi=${XC_PORTS[$i]#*-}
	[ -n "$lo" ] && [ $(( hi - lo + 1 )) -ge "$per" ] ||
		fail "h$i: its first port run is '${XC_PORTS[$i]}', not $per ports in one run (info file: $(tr '\n' ' ' <"$env"))"
}

# xc_keepalived_conf I: router I's keepalived.conf.  One VRRPv3 instance
# on the LAN (advertisements every XC_ADVERT s) holding the VIP on lan and,
# in vrrp mode, G on wan; both routers start as BACKUP with nopreempt (the
# higher priority wins the first election; a router that comes back does
# not take the addresses away again).
xc_keepalived_conf() {
	local i=$1 g_line=""
	[ "$XC_MODE" = vrrp ] && g_line="		$XD_GLOBAL/32 dev $XD_IF_WAN"
	cat <<EOF
# keepalived.conf of router r$i (selftests/lib/cluster.sh, mode $XC_MODE)
global_defs {
	router_id xdnat-r$i
	vrrp_version 3
	# announce the addresses 3 times at once, no delayed second burst
	vrrp_garp_master_repeat 3
	vrrp_garp_master_delay 0
	vrrp_garp_lower_prio_repeat 0
	vrrp_garp_master_refresh 0
}

vrrp_instance xdnat {
	state BACKUP
	nopreempt
	interface $XD_IF_LAN
	virtual_router_id $XC_VRID
	priority ${XC_PRIO[$i]}
	advert_int $XC_ADVERT
	# WAN down = this router cannot serve G: FAULT, the peer takes over
	track_interface {
		$XD_IF_WAN
	}
	virtual_ipaddress {
		$XC_VIP/$XD_LAN_PLEN dev $XD_IF_LAN
$g_line
	}
}
EOF
}

# xc_keepalived_start I: keepalived (VRRP only) in router I's namespace,
# foreground, with its own configuration, pid files and log: it needs
# nothing from the host's systemd or /etc/keepalived.
xc_keepalived_start() {
	local i=$1 d=$XD_TMP/keepalived-r$1
	mkdir -p "$d"
	xc_keepalived_conf "$i" >"$d/keepalived.conf"
	xd_ns "$(xc_rns "$i")" "$XC_KEEPALIVED" -t -f "$d/keepalived.conf" >"$d/check.log" 2>&1 ||
		{ cat "$d/check.log" >&2; fail "keepalived refuses $d/keepalived.conf"; }
	xd_bg "keepalived r$i" "$(xc_rns "$i")" "$XD_TMP/keepalived-r$i.log" "$XC_KEEPALIVED" \
		--dont-fork --log-console --log-detail --no-syslog --vrrp \
		--use-file "$d/keepalived.conf" --pid "$d/keepalived.pid" --vrrp_pid "$d/vrrp.pid" \
		--checkers_pid "$d/checkers.pid" --bfd_pid "$d/bfd.pid"
	XC_PID[keepalived$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/keepalived-r$i.log" 'Entering BACKUP STATE|Entering MASTER STATE' 10
}

# xc_has_vip I: router I holds the VIP on its LAN interface.
xc_has_vip() {
	ip -n "$(xc_rns "$1")" -4 -o addr show dev "$XD_IF_LAN" | grep -q " $XC_VIP/"
}

# xc_master: the number of the router holding the VIP (empty if none).
xc_master() {
	local i
	for i in 1 2; do
		xc_has_vip "$i" && xc_lan_up "$i" && { echo "$i"; return 0; }
	done
	return 0
}

# xc_wait_master I [TIMEOUT]: wait until router I holds the VIP (and G in
# vrrp mode) and the other does not (or its LAN link is down: a crashed
# router keeps its addresses).
xc_lan_up() { ip -n "$(xc_rns "$1")" -o link show dev "$XD_IF_LAN" | grep -q '[<,]UP[,>]'; }
xc_wait_master_ok() {
	local i=$1 o=$(( 3 - $1 ))
	xc_has_vip "$i" || return 1
	! { xc_has_vip "$o" && xc_lan_up "$o"; } || return 1
	[ "$XC_MODE" = ecmp ] && return 0
	ip -n "$(xc_rns "$i")" -4 -o addr show dev "$XD_IF_WAN" | grep -q " $XD_GLOBAL/32"
}
xc_wait_master() {
	wait_for "${2:-10}" xc_wait_master_ok "$1" ||
		fail "router $1 is not the VRRP master after ${2:-10}s (r1: $(ip -n "$(xc_rns 1)" -4 -o addr show | awk '{print $2, $4}' | tr '\n' ' '); r2: $(ip -n "$(xc_rns 2)" -4 -o addr show | awk '{print $2, $4}' | tr '\n' ' '))"
}

# xc_point_to I: make the hosts' ARP entry for the VIP (and, vrrp, the
# remote's for G) point to router I, the master, and check it.  Needed for a
# clean start: when both keepalived start together the backup may be master
# for a moment and announce itself; the master's gratuitous ARPs that follow
# within a second are ignored by the hosts (neigh locktime), which then keep
# sending to the backup, which forwards (same tables, same lan-addr), and a
# crash of the master would not interrupt anything.
xc_mac() { ip -n "$(xc_rns "$1")" -o link show dev "$2" | sed -n 's/.* link\/ether \([0-9a-f:]*\) .*/\1/p'; }
xc_point_to() {
	local i=$1 h hns mac want
	want=$(xc_mac "$i" "$XD_IF_LAN")
	for ((h = 1; h <= XD_NHOSTS; h++)); do
		hns=$(xd_host_ns "$h")
		ip -n "$hns" neigh del "$XC_VIP" dev "$XD_IF_HOST" 2>/dev/null || true
		xd_ns "$hns" ping -c 1 -W 2 -e $(( ${XC_PORTS[$h]%-*} + 9 )) "$XD_REMOTE_WAN" >/dev/null || true
		mac=$(ip -n "$hns" neigh show "$XC_VIP" dev "$XD_IF_HOST" | sed -n 's/.* lladdr \([0-9a-f:]*\).*/\1/p')
		[ "$mac" = "$want" ] || fail "h$h: the VIP $XC_VIP is at '$mac', not at r$i's $want"
	done
	if [ "$XC_MODE" = vrrp ]; then
		want=$(xc_mac "$i" "$XD_IF_WAN")
		ip -n "$XD_NS_REMOTE" neigh del "$XD_GLOBAL" dev "$XD_IF_REMOTE" 2>/dev/null || true
		xd_ns "$(xd_host_ns 1)" ping -c 1 -W 2 -e $(( ${XC_PORTS[1]%-*} + 9 )) "$XD_REMOTE_WAN" >/dev/null || true
		mac=$(ip -n "$XD_NS_REMOTE" neigh show "$XD_GLOBAL" dev "$XD_IF_REMOTE" | sed -n 's/.* lladdr \([0-9a-f:]*\).*/\1/p')
		[ "$mac" = "$want" ] || fail "the remote has G $XD_GLOBAL at '$mac', not at r$i's $want"
	fi
}

# xc_fail_router I: the crash of router I.  SIGKILL to xdnatd and every
# keepalived process at once (the VRRP child too: a dying parent would let it
# send a priority-0 "I am leaving" advertisement, which a crash never
# does), then both data links down.  Prints the time of the links going
# down (epoch seconds, ms precision).
xc_fail_router() {
	local i=$1 r pids=() p
	r=$(xc_rns "$i")
	p=${XC_PID[keepalived$i]:-}
	if [ -n "$p" ]; then
		mapfile -t pids < <(pgrep -P "$p")
		pids+=("$p")
	fi
	[ -n "${XC_PID[xdnatd$i]:-}" ] && pids+=("${XC_PID[xdnatd$i]}")
	# disowned: bash would report each as "Killed" on stderr
	for p in "${pids[@]}"; do
		disown "$p" 2>/dev/null || true
	done
	# Links first, both in one ip process (LAN first: no advertisement can
	# leave once keepalived notices), then the SIGKILLs: the router stops
	# forwarding and advertising at one instant, as a crashed box does.
	# (The other order would let the still-attached programs forward for
	# as long as the ip commands take, shortening the measured outage.)
	XC_FAILED_AT=$(date +%s.%3N)
	printf 'link set dev %s down\nlink set dev %s down\n' "$XD_IF_LAN" "$XD_IF_WAN" | ip -n "$r" -batch -
	kill -KILL "${pids[@]}" 2>/dev/null || true
	XC_KILLED_AT=$(date +%s.%3N)
}

# xc_probe NAME NS LOG ARGS...: failover_probe.py in the background.
xc_probe() {
	local name=$1 ns=$2 log=$3
	shift 3
	xd_bg "$name" "$ns" "$log" python3 "$XC_PROBE" "$@"
}

# xc_tables I: router I's allocation tables (hosts, LAN addresses, ports,
# SPIs; no counters, not the time each router added the host) as one JSON
# line, to compare routers.
xc_tables() {
	xc_ctl "$1" -j host show | python3 -c '
import json, sys
h = json.load(sys.stdin)["hosts"]
print(json.dumps(sorted(({k: v for k, v in x.items() if k != "since" and not k.endswith(("_packets", "_bytes"))}
                         for x in h), key=lambda x: x["id"]), sort_keys=True))'
}

# xc_wait_tables [TIMEOUT]: both routers' tables equal and holding the
# XD_NHOSTS hosts (etcd: router 2 follows the store's watch, shortly after
# router 1's grant).  Sets XC_NTABLES (hosts in the tables).
xc_tables_equal() {
	local t1 t2
	t1=$(xc_tables 1) t2=$(xc_tables 2)
	[ "$t1" = "$t2" ] || return 1
	XC_NTABLES=$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$t1")
	[ "$XC_NTABLES" -ge "$XD_NHOSTS" ]
}
xc_wait_tables() {
	wait_for "${1:-10}" xc_tables_equal ||
		fail "the routers' tables differ (or lack hosts) after ${1:-10} s: r1 $(xc_tables 1), r2 $(xc_tables 2)"
	xc_tables_equal
}

# xc_counter I REASON: one packet counter of router I.
xc_counter() {
	xc_ctl "$1" -j stats | python3 -c '
import json, sys
print(json.load(sys.stdin)["counters"].get(sys.argv[1], {}).get("packets", 0))' "$2"
}

# xc_remaining I: "NAME BIND_ID REMAINING_S" per active binding, from the
# store as router I reads it (xdnatctl rsip list).
xc_remaining() {
	xc_ctl "$1" -j rsip list | python3 -c '
import json, sys
for b in json.load(sys.stdin)["bindings"]:
    if b.get("state") == "active":
        print(b["host"], b["bind_id"], b["remaining_s"])'
}

# xc_renewed BEFORE AFTER: every binding of BEFORE is in AFTER with at least
# 5 s more remaining (its lease was extended since).
xc_renewed() {
	python3 - "$1" "$2" <<'PY'
import sys
def rows(t):
    return {(l.split()[0], l.split()[1]): int(l.split()[2]) for l in t.splitlines() if l.strip()}
b, a = rows(sys.argv[1]), rows(sys.argv[2])
sys.exit(0 if b and all(k in a and a[k] >= v + 5 for k, v in b.items()) else 1)
PY
}

# xc_least BEFORE AFTER: "NAME Bs -> As" per host, the least time left.
xc_least() {
	python3 - "$1" "$2" <<'PY'
import sys
def least(t):
    m = {}
    for l in t.splitlines():
        if l.strip():
            n, _, s = l.split()
            m[n] = min(m.get(n, 1 << 62), int(s))
    return m
b, a = least(sys.argv[1]), least(sys.argv[2])
print(", ".join("%s %ds -> %ds" % (n, b[n], a.get(n, -1)) for n in sorted(b)))
PY
}

# xc_rsip_after I: with the store in etcd, the surviving router I serves
# RSIP after the failover.  Every host renews at once (SIGHUP to its
# xdnat-host): if its RSIP connection was to the crashed router, the request
# fails, and the agent reconnects to the VIP (now on I), resumes its
# registration and extends its leases; the leases' remaining time in the
# store must grow.  Then host XD_NHOSTS+1 arrives, enrols and registers: a
# grant by router I, in I's tables, with traffic to the remote through G.
xc_rsip_after() {
	local i=$1 h n=$(( XD_NHOSTS + 1 )) r0 r1 lo hlog mark=()
	[ "$XC_STORE" = etcd ] || return 0
	r0=$(xc_remaining "$i")
	for ((h = 1; h <= XD_NHOSTS; h++)); do
		mark[$h]=$(wc -l <"$XD_TMP/xdnat-host-h$h.log")
		kill -HUP "${XD_HOST_PID[$h]}"
	done
	xc_renewed_since() { r1=$(xc_remaining "$i") && xc_renewed "$r0" "$r1"; }
	wait_for 20 xc_renewed_since ||
		fail "the hosts' leases were not extended through r$i within 20 s: before '$r0', after '$(xc_remaining "$i")'"
	for ((h = 1; h <= XD_NHOSTS; h++)); do
		hlog=$XD_TMP/xdnat-host-h$h.log
		xd_alive "${XD_HOST_PID[$h]}" || fail "xdnat-host h$h died after the failover: $(tail -n 5 "$hlog")"
		xd_info "h$h after SIGHUP: $(tail -n +"$(( mark[h] + 1 ))" "$hlog" | sed 's/^xdnat-host: //' | tr '\n' ';' | sed 's/;$//')"
	done
	xd_ok "r$i renewed every host's leases (least time left, before -> after: $(xc_least "$r0" "$r1"))"

	xc_host_add "$n"
	xc_host_rsip "$n" 100
	lo=${XC_PORTS[$n]%-*}
	xc_ctl "$i" -j host show | python3 -c '
import json, sys
sys.exit(0 if any(x.get("name") == sys.argv[1] and x.get("lan") == sys.argv[2]
                  for x in json.load(sys.stdin)["hosts"]) else 1)' "h$n" "$(xd_host_lan "$n")" ||
		fail "h$n registered but is not in r$i's tables: $(xc_tables "$i")"
	xd_ns "$(xd_host_ns "$n")" ping -c 2 -i 0.2 -W 2 -e $(( lo + 7 )) "$XD_REMOTE_WAN" >/dev/null ||
		fail "h$n (granted by r$i) cannot reach the remote"
	xd_ok "r$i granted a new host h$n ports ${XC_PORTS[$n]}, SPIs ${XC_SPIS[$n]} (in its tables; h$n reaches the remote through G)"
}

# ------------------------------------------ the failover measurement
# Shared by e2e_failover_vrrp.sh, e2e_failover_ecmp.sh and the demo.
#
# xc_swan_up: strongSwan IKEv2 between h1 and the remote through G (PSK:
# the failover does not depend on how the peers authenticate; the LCA's
# certificates are e2e_strongswan.sh's subject).  h1's charon uses two
# ports of its block (IKE, NAT-T) and SPIs from its SPI block; ESP travels
# in UDP (kernel-libipsec) to G:NAT-T port, which the routers map to h1.
# Inner addresses: h1 XC_H1_INNER, remote XC_REMOTE_INNER (on lo).
XC_H1_INNER=${XC_H1_INNER:-10.98.1.1}
XC_REMOTE_INNER=${XC_REMOTE_INNER:-10.99.0.1}
xc_swan_up() {
	local lo=${XC_PORTS[1]%-*} spis=${XC_SPIS[1]} psk h1id=h1.failover.test d
	local ike=$(( lo + 500 )) natt=$(( lo + 501 ))
	psk=$(openssl rand -hex 24)
	xd_ns "$(xd_host_ns 1)" ip addr add "$XC_H1_INNER/32" dev lo
	xd_ns "$XD_NS_REMOTE" ip addr add "$XC_REMOTE_INNER/32" dev lo
	xs_conf remote
	xs_conf h1 "charon {
	port = $ike
	port_nat_t = $natt
	spi_min = $(printf '0x%08x' $(( ${spis%-*} )))
	spi_max = $(printf '0x%08x' $(( ${spis#*-} )))
}"
	d=$(xs_dir remote)
	cat >"$d/swanctl/swanctl.conf" <<EOC
connections {
	h1 {
		version = 2
		local_addrs = $XD_REMOTE_WAN
		remote_addrs = $XD_GLOBAL
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local { auth = psk
			id = $XD_REMOTE_WAN }
		remote { auth = psk
			id = $h1id }
		children { h1 { local_ts = $XC_REMOTE_INNER/32
				remote_ts = $XC_H1_INNER/32
				esp_proposals = aes256gcm16 } }
	}
}
secrets { ike-h1 { id-1 = $h1id
		id-2 = $XD_REMOTE_WAN
		secret = 0x$psk } }
EOC
	d=$(xs_dir h1)
	cat >"$d/swanctl/swanctl.conf" <<EOC
connections {
	remote {
		version = 2
		local_addrs = $XD_GLOBAL
		local_port = $natt
		remote_addrs = $XD_REMOTE_WAN
		remote_port = 4500
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local { auth = psk
			id = $h1id }
		remote { auth = psk
			id = $XD_REMOTE_WAN }
		children { h1 { local_ts = $XC_H1_INNER/32
				remote_ts = $XC_REMOTE_INNER/32
				esp_proposals = aes256gcm16 } }
	}
}
secrets { ike-r { id-1 = $h1id
		id-2 = $XD_REMOTE_WAN
		secret = 0x$psk } }
EOC
	xs_start remote "$XD_NS_REMOTE"
	xs_load remote
	xs_start h1 "$(xd_host_ns 1)"
	xs_load h1
	xs_initiate h1 h1 remote
	XC_NATT=$natt
}

# xc_sa_state NAME: "IKE_UNIQUE_ID IKE_SPI_I IKE_SPI_R CHILD_IN CHILD_OUT",
# one line per CHILD_SA, of NAME's charon: what must not change.
xc_sa_state() {
	xs_sas "$1" | awk '
		/^[^ ].*: #[0-9]+,/ { u = $2; gsub(/[#,]/, "", u); si = $5; sr = $6; sub(/_i\*?$/, "", si); sub(/_r\*?$/, "", sr) }
		$1 == "in"  { ci = $2; sub(/,$/, "", ci) }
		$1 == "out" { co = $2; sub(/,$/, "", co); print u, si, sr, ci, co }'
}

# xc_measure KILL_ROUTER: the failover measurement (the tests and the
# demo): a paced TCP transfer h1 -> remote (XC_TCP_BYTES over
# XC_SECONDS), a UDP echo probe h2 <-> remote through G (XC_FLOWS flows,
# one datagram every XC_INTERVAL_MS), the same probe h1 <-> remote inside
# the CHILD_SA; router KILL_ROUTER crashes XC_KILL_AT seconds in (after
# the command XC_BEFORE_KILL, if set, ran).  Sets
# XC_R_* (results) and fails on a corrupted transfer or a changed SA.
XC_TCP_BYTES=${XC_TCP_BYTES:-25000000}
XC_SECONDS=${XC_SECONDS:-20}
XC_KILL_AT=${XC_KILL_AT:-8}
XC_INTERVAL_MS=${XC_INTERVAL_MS:-10}
XC_FLOWS=${XC_FLOWS:-1}
XC_TCP_PORT=${XC_TCP_PORT:-8001}
XC_ECHO_PORT=${XC_ECHO_PORT:-7001}
XC_ESP_ECHO_PORT=${XC_ESP_ECHO_PORT:-7002}
xc_measure() {
	local k=$1 h1 h2 srv cli pr pe e1 e2 sa0 sa1 sr0 sr1 mark_h1 mark_r t_kill p2 lo2
	h1=$(xd_host_ns 1) h2=$(xd_host_ns 2)
	sa0=$(xc_sa_state h1) sr0=$(xc_sa_state remote)
	[ -n "$sa0" ] && [ -n "$sr0" ] || fail "no CHILD_SA before the failover"
	mark_h1=$(wc -l <"$(xs_log h1)") mark_r=$(wc -l <"$(xs_log remote)")
	local ka_mark=() r
	for r in 1 2; do
		ka_mark[$r]=$(wc -l <"$XD_TMP/keepalived-r$r.log")
	done
	xd_info "before: h1 IKE_SA #$(cut -d' ' -f1 <<<"$sa0") SPIs $(cut -d' ' -f2-3 <<<"$sa0"), CHILD_SA in/out $(cut -d' ' -f4-5 <<<"$sa0")"

	xd_bg tcp-srv "$XD_NS_REMOTE" "$XD_TMP/tcp-srv" python3 "$XD_TRAFFIC" tcp-server \
		--port "$XC_TCP_PORT" --timeout 60
	srv=$XD_LAST_PID
	# the echo servers run until stopped below
	xd_bg echo "$XD_NS_REMOTE" "$XD_TMP/echo" python3 "$XD_TRAFFIC" udp-echo --port "$XC_ECHO_PORT" \
		--bind "$XD_REMOTE_WAN" --count 1000000000 --timeout $(( XC_SECONDS + 30 ))
	e1=$XD_LAST_PID
	xd_bg echo-esp "$XD_NS_REMOTE" "$XD_TMP/echo-esp" python3 "$XD_TRAFFIC" udp-echo \
		--port "$XC_ESP_ECHO_PORT" --bind "$XC_REMOTE_INNER" --count 1000000000 \
		--timeout $(( XC_SECONDS + 30 ))
	e2=$XD_LAST_PID
	xd_wait_line "$srv" "$XD_TMP/tcp-srv" listening
	xd_wait_line "$e1" "$XD_TMP/echo" listening
	xd_wait_line "$e2" "$XD_TMP/echo-esp" listening

	lo2=${XC_PORTS[2]%-*}
	# paced over XC_SECONDS (10 ms worth every 10 ms): the crash falls mid-transfer
	xd_bg tcp-cli "$h1" "$XD_TMP/tcp-cli" python3 "$XD_TRAFFIC" tcp-client --dst "$XD_REMOTE_WAN" \
		--port "$XC_TCP_PORT" --bytes "$XC_TCP_BYTES" --rate $(( XC_TCP_BYTES / XC_SECONDS )) \
		--timeout 60
	cli=$XD_LAST_PID
	xc_probe probe "$h2" "$XD_TMP/probe" probe --dst "$XD_REMOTE_WAN" --port "$XC_ECHO_PORT" \
		--interval-ms "$XC_INTERVAL_MS" --seconds "$XC_SECONDS" --flows "$XC_FLOWS" \
		--sport-base $(( lo2 + 100 ))
	pr=$XD_LAST_PID
	xc_probe probe-esp "$h1" "$XD_TMP/probe-esp" probe --dst "$XC_REMOTE_INNER" \
		--port "$XC_ESP_ECHO_PORT" --bind "$XC_H1_INNER" --interval-ms "$XC_INTERVAL_MS" \
		--seconds "$XC_SECONDS"
	pe=$XD_LAST_PID
	xd_info "running: $(( XC_TCP_BYTES / 1000000 )) MB TCP h1 -> remote over ${XC_SECONDS} s, UDP probe h2 <-> remote every ${XC_INTERVAL_MS} ms ($XC_FLOWS flow(s)), the same h1 <-> remote inside the CHILD_SA"
	sleep "$XC_KILL_AT"
	[ -n "${XC_BEFORE_KILL:-}" ] && "$XC_BEFORE_KILL"
	p2=$(xc_master)
	xc_fail_router "$k"
	t_kill=$XC_FAILED_AT
	xd_info "$(date -d "@$t_kill" +%T.%3N): router r$k crashed: links down, then kill -9 of xdnatd and keepalived ($(python3 -c 'import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))' "$t_kill" "$XC_KILLED_AT") ms later); the VIP was on r${p2:-?}"

	for p in "$cli" "$srv"; do
		wait "$p" || { cat "$XD_TMP"/tcp-* >&2; fail "the TCP transfer across the failover failed"; }
	done
	wait "$pr" || fail "the UDP probe failed: $(cat "$XD_TMP/probe")"
	wait "$pe" || fail "the ESP probe failed: $(cat "$XD_TMP/probe-esp")"
	xd_stop "$e1" >/dev/null 2>&1 || true
	xd_stop "$e2" >/dev/null 2>&1 || true

	local sent got peer
	sent=$(jget '["sha256"]' <"$XD_TMP/tcp-cli") got=$(jget '["sha256"]' <"$XD_TMP/tcp-srv")
	peer=$(jget '["peer"]' <"$XD_TMP/tcp-srv")
	[ "$sent" = "$got" ] || fail "TCP across the failover: sha256 sent $sent, received $got"
	[ "$peer" = "$XD_GLOBAL" ] || fail "TCP: the remote saw $peer, not $XD_GLOBAL"
	XC_R_TCP_SECONDS=$(jget '["seconds"]' <"$XD_TMP/tcp-cli")
	XC_R_INT=$(jget '["interruption_ms"]' <"$XD_TMP/probe")
	XC_R_LOST=$(jget '["lost"]' <"$XD_TMP/probe")
	XC_R_SENT=$(jget '["sent"]' <"$XD_TMP/probe")
	XC_R_ESP_INT=$(jget '["interruption_ms"]' <"$XD_TMP/probe-esp")
	XC_R_ESP_LOST=$(jget '["lost"]' <"$XD_TMP/probe-esp")
	XC_R_ESP_SENT=$(jget '["sent"]' <"$XD_TMP/probe-esp")

	# VRRP state changes during the run: the survivor must become master
	# only after the crash (a flap before it, under load, would move the
	# hosts to it early and hide the failover).
	XC_R_FLAPS=0
	for r in 1 2; do
		while IFS= read -r l; do
			xd_info "r$r keepalived: $l"
			[ "$r" != "$k" ] && XC_R_FLAPS=$(( XC_R_FLAPS + 1 ))
		done < <(tail -n +"$(( ${ka_mark[$r]} + 1 ))" "$XD_TMP/keepalived-r$r.log" | grep -o 'Entering [A-Z]* STATE.*')
	done
	# the survivor's one expected change is its takeover
	XC_R_FLAPS=$(( XC_R_FLAPS > 0 ? XC_R_FLAPS - 1 : 0 ))
	[ "$XC_R_FLAPS" = 0 ] ||
		xd_info "warning: r$(( 3 - k )) changed VRRP state $XC_R_FLAPS more time(s) than the takeover: VRRP flapped during the run (advertisements late under load?)"

	# When, relative to the crash, and on which flows the echoes stopped.
	local f
	for f in probe probe-esp; do
		python3 - "$XD_TMP/$f" "$t_kill" "$f" <<'PY' | while IFS= read -r l; do xd_info "$l"; done
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
at = d.get("interruption_at")
rel = "" if at is None else ", starting %+d ms from the crash" % round((at - float(sys.argv[2])) * 1000)
print("%s: worst gap %.1f ms%s; per flow lost: %s" % (sys.argv[3], d["interruption_ms"], rel,
      " ".join(str(x["lost"]) for x in d["per_flow"])))
PY
	done

	sa1=$(xc_sa_state h1) sr1=$(xc_sa_state remote)
	[ "$sa1" = "$sa0" ] ||
		fail "h1's SAs changed across the failover: before '$sa0', after '$sa1'"
	[ "$sr1" = "$sr0" ] ||
		fail "the remote's SAs changed across the failover: before '$sr0', after '$sr1'"
	[ "$(xs_sas h1 | grep -c ESTABLISHED)" = 1 ] && [ "$(xs_sas remote | grep -c ESTABLISHED)" = 1 ] ||
		fail "not exactly one IKE_SA on each side after the failover"
	if tail -n +"$mark_h1" "$(xs_log h1)" | grep -Eiq 'rekey|initiating IKE_SA|establishing CHILD_SA|IKE_SA .* established' ||
	   tail -n +"$mark_r" "$(xs_log remote)" | grep -Eiq 'rekey|IKE_SA .* established|CHILD_SA .* established'; then
		tail -n +"$mark_h1" "$(xs_log h1)" | grep -Ei 'rekey|initiat|establish' | head -n 5 >&2
		fail "charon rekeyed or set up an SA during the failover"
	fi
	XC_R_SA="kept"
	XC_R_SA_STATE=$sa1
}
