# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The roaming topology of the netns tests (e2e_roam_move.sh,
# e2e_roam_strongswan.sh, e2e_roam_register.sh, `make demo ROAM=1`):
# xd_topology 1 plus a NAT namespace on the WAN side, and the moves of h1
# between its LAN link and a foreign link behind that NAT.  Source after
# lib/netns.sh; call after xd_init:
#
#   remote ── pub NAT_PUB_NET.1 ─── outside NAT_PUB_NET.2 [NAT: nftables
#                                   masquerade] inside FOREIGN_NET.1 ─── eth1 h1
#
# h1's foreign link (eth1, FOREIGN_NET.2) starts down; roam_move_out and
# roam_move_back do what a real move does (one link down, the other up,
# the default route from DHCP or the RSIP agent).  Or the foreign link is
# a host's of its own that is only ever away (roam_topology AWAY_NS).

NAT_PUB_NET=${NAT_PUB_NET:-203.0.113}    # the NAT's public side (RFC 5737)
FOREIGN_NET=${FOREIGN_NET:-10.78.0}      # the foreign LAN behind it
NAT_PORTS=${NAT_PORTS:-41000-41099}      # the NAT's UDP source ports
ROAM_IF_FOREIGN=${ROAM_IF_FOREIGN:-eth1} # h1's foreign NIC

# roam_topology [AWAY_NS]: xd_topology 1, the NAT namespace (ROAM_NS_NAT)
# and the foreign link; the router routes NAT_PUB_NET via the remote (the
# "Internet").  The foreign link is h1's, down; with AWAY_NS it is instead
# that of a new namespace AWAY_NS, a host that is only ever away: up, with
# its default route via the NAT.  Sets ROAM_H1 (h1's namespace) and
# ROAM_AWAY (the namespace on the foreign link: h1's or AWAY_NS).
roam_topology() {
	command -v nft >/dev/null || fail "nft not found: install nftables (scripts/deps.sh)"
	ROAM_NS_NAT=$XD_TAG-nat
	ROAM_H1=$(xd_host_ns 1)
	ROAM_AWAY=${1:-$ROAM_H1}
	xd_topology 1
	xd_netns_add "$ROAM_NS_NAT"
	[ "$ROAM_AWAY" = "$ROAM_H1" ] || xd_netns_add "$ROAM_AWAY"
	ip -n "$XD_NS_REMOTE" link add pub type veth peer name outside netns "$ROAM_NS_NAT"
	ip -n "$ROAM_NS_NAT" link add inside type veth peer name "$ROAM_IF_FOREIGN" netns "$ROAM_AWAY"
	ip -n "$XD_NS_REMOTE" addr add "$NAT_PUB_NET.1/24" dev pub
	ip -n "$XD_NS_REMOTE" link set pub up
	xd_ns "$XD_NS_REMOTE" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$ROAM_NS_NAT" addr add "$NAT_PUB_NET.2/24" dev outside
	ip -n "$ROAM_NS_NAT" addr add "$FOREIGN_NET.1/24" dev inside
	ip -n "$ROAM_NS_NAT" link set outside up
	ip -n "$ROAM_NS_NAT" link set inside up
	ip -n "$ROAM_NS_NAT" route add default via "$NAT_PUB_NET.1"
	xd_ns "$ROAM_NS_NAT" sysctl -qw net.ipv4.ip_forward=1
	xd_ns "$ROAM_NS_NAT" nft -f - <<EON
table ip xdnat_e2e_nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "outside" meta l4proto udp masquerade to :$NAT_PORTS
		oifname "outside" masquerade
	}
}
EON
	ip -n "$ROAM_AWAY" addr add "$FOREIGN_NET.2/24" dev "$ROAM_IF_FOREIGN"
	xd_ns "$ROAM_AWAY" sysctl -qw net.ipv4.conf.all.rp_filter=0 "net.ipv4.conf.$ROAM_IF_FOREIGN.rp_filter=0"
	if [ "$ROAM_AWAY" != "$ROAM_H1" ]; then
		ip -n "$ROAM_AWAY" link set "$ROAM_IF_FOREIGN" up
		ip -n "$ROAM_AWAY" route add default via "$FOREIGN_NET.1"
		# devices made later (a TUN) without reverse-path filtering too
		xd_ns "$ROAM_AWAY" sysctl -qw net.ipv4.conf.default.rp_filter=0
	fi
	ip -n "$XD_NS_ROUTER" route add "$NAT_PUB_NET.0/24" via "$XD_REMOTE_WAN"
	local ns i
	for ns in "$XD_NS_REMOTE" "$ROAM_NS_NAT" "$ROAM_AWAY"; do
		for i in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
			[ "$i" = lo ] || xd_ns "$ns" ethtool -K "$i" tx off >/dev/null 2>&1 || true
		done
	done
}

# roam_move_out: h1's LAN link down, the foreign link up with a default
# route via the NAT (DHCP's part).  The routes through the LAN link (the
# RSIP agent's: via the router, src G, mtu = LAN MTU - 20 for the IP-in-IP
# header) are saved first: the kernel deletes them with the link.
roam_move_out() {
	ROAM_HOME_ROUTES=$(ip -n "$ROAM_H1" -4 route show dev "$XD_IF_HOST" | grep ' via ' || true)
	ip -n "$ROAM_H1" link set "$XD_IF_HOST" down
	ip -n "$ROAM_H1" link set "$ROAM_IF_FOREIGN" up
	ip -n "$ROAM_H1" route replace default via "$FOREIGN_NET.1"
}

# roam_move_back: the foreign link down, the LAN link up, the routes via
# the router exactly as the RSIP agent had set them (with their MTU: a
# default route without it lets TCP send 1500-byte packets the IP-in-IP
# tunnel cannot carry, and the flow stalls for good).
roam_move_back() {
	local r
	ip -n "$ROAM_H1" link set "$ROAM_IF_FOREIGN" down
	ip -n "$ROAM_H1" link set "$XD_IF_HOST" up
	[ -n "${ROAM_HOME_ROUTES:-}" ] || fail "roam_move_back: no home routes saved (roam_move_out first)"
	while read -r r; do
		# shellcheck disable=SC2086   # a route, word by word
		ip -n "$ROAM_H1" route replace $r dev "$XD_IF_HOST"
	done <<<"$ROAM_HOME_ROUTES"
}

# roam_h1_blocks: h1's agent takes 100 ports over RSIP at home (enrolled
# as h1 with the secret $XD_TMP/h1.key), then is killed: SIGKILL frees
# nothing, its LAN set-up stays, as for a host that keeps it.  Sets
# ROAM_PORTS (FIRST-LAST, as in its info file).
roam_h1_blocks() {
	local pid
	xd_bg "xdnat-host h1" "$(xd_host_ns 1)" "$XD_TMP/h1.log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
		--router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h1.key" --name h1 --port-count 100 \
		--info-file "$XD_TMP/h1.env" --replace-routes --no-cert
	pid=$XD_LAST_PID
	xd_wait_line "$pid" "$XD_TMP/h1.log" '^xdnat-host: ready'
	ROAM_PORTS=$(sed -n 's/^XDNAT_PORTS=//p' "$XD_TMP/h1.env")
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
}

# roam_mobile_count: how many bindings `xdnatctl mobile show` lists.
roam_mobile_count() {
	xd_ctl -j mobile show | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["mobile"]))'
}
