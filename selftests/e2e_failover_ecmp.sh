#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Active/active failover (issue 17): two xdnat routers both carry G.  The
# upstream (the remote's namespace) routes G over one link per router with
# a multipath route (`ip route add G nexthop via R1 nexthop via R2`,
# fib_multipath_hash_policy=1: flows spread by their ports) and skips a
# nexthop whose link is down (ignore_routes_with_linkdown=1); G is on both
# routers' own WAN links (no ARP conflict).  On the LAN side keepalived
# moves the hosts' tunnel endpoint VIP as in e2e_failover_vrrp.sh.  Both
# routers hold the same allocation tables (lib/cluster.sh, XC_STORE).
# Before the failover both routers carry inbound traffic (their wan_to_host
# counters move); then, under the same load as e2e_failover_vrrp.sh (25 MB
# TCP, IKE/ESP session with a probe inside it, a UDP probe of XC_FLOWS
# flows through G), router XC_KILL crashes (kill -9 xdnatd and keepalived,
# links down): default 1, the router holding the VIP (all outbound and its
# share of inbound move); XC_KILL=2: the other one (only its share of
# inbound moves, when the upstream drops its nexthop).  Checked: transfer
# byte-identical, SAs unchanged, the upstream's route to G keeps only the
# surviving nexthop; with XC_STORE=etcd (e2e_failover_ecmp_etcd.sh) the
# survivor renews every host's leases and grants a new host (xc_rsip_after);
# printed: interruption and loss.
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/strongswan.sh"
XC_MODE=ecmp
XC_FLOWS=${XC_FLOWS:-8}              # flows of the UDP probe (spread over both routers)
XC_INTERVAL_MS=${XC_INTERVAL_MS:-5}
. "$(dirname "$0")/lib/cluster.sh"

XC_KILL=${XC_KILL:-1}
MAX_INTERRUPTION_MS=${MAX_INTERRUPTION_MS:-3000}
case $XC_KILL in 1 | 2) ;; *) echo "XC_KILL=$XC_KILL: 1 or 2" >&2; exit 2 ;; esac

T_START=$(date +%s)
xc_init
xs_init
command -v openssl >/dev/null || fail "missing openssl (scripts/deps.sh)"

xd_step "topology: upstream/remote with a link to each router, r1 + r2 (both G = $XD_GLOBAL), LAN VIP $XC_VIP, h1, h2; store: $XC_STORE"
xc_topology ecmp 2
[ "$XC_ETCD" = 1 ] && { xc_etcd_start; xd_ok "3 etcd members healthy"; }
xc_start_router 1
xc_start_router 2
route=$(ip -n "$XD_NS_REMOTE" route show "$XD_GLOBAL/32")
grep -q "via ${XC_ECMP_RTR[1]} dev eth1" <<<"$route" && grep -q "via ${XC_ECMP_RTR[2]} dev eth2" <<<"$route" ||
	fail "the upstream's route to G is not multipath: $route"
xd_ok "both xdnatd up; upstream: $(tr -s ' \n' ' ' <<<"$route")"

xd_step "keepalived on the LAN side (VRRPv3, advert ${XC_ADVERT}s): the VIP only"
xc_keepalived_start 1
xc_keepalived_start 2
xc_wait_master 1
xd_ok "r1 holds $XC_VIP"

xd_step "hosts: $([ "$XC_STORE" = etcd ] && echo "register over RSIP at $XC_VIP (r1), blocks in etcd" || echo "the same static hosts on both routers")"
xc_hosts_up
xc_wait_tables
xc_point_to 1
for i in 1 2; do
	xd_ns "$(xd_host_ns "$i")" ping -c 2 -i 0.2 -W 2 -e $(( ${XC_PORTS[$i]%-*} + 7 )) "$XD_REMOTE_WAN" >/dev/null ||
		fail "h$i cannot reach the remote"
done
xd_ok "the same tables on both routers: $XC_NTABLES hosts; the hosts resolve $XC_VIP to r1; h1, h2 reach the remote"

xd_step "strongSwan: h1 <-> remote IKEv2/ESP through G"
xc_swan_up
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -I "$XC_H1_INNER" "$XC_REMOTE_INNER" >/dev/null ||
	fail "no ping through h1's CHILD_SA"
xd_ok "IKE_SA + CHILD_SA up (ESP in UDP to G:$XC_NATT)"

xd_step "failover: r$XC_KILL crashes ${XC_KILL_AT}s into the transfer"
w1=$(xc_counter 1 wan_to_host) w2=$(xc_counter 2 wan_to_host)
XC_BEFORE_KILL=xc_ecmp_spread
xc_ecmp_spread() {
	S1=$(( $(xc_counter 1 wan_to_host) - w1 )) S2=$(( $(xc_counter 2 wan_to_host) - w2 ))
}
# Inbound spread, sampled just before the crash (xc_measure calls the hook).
xc_measure "$XC_KILL"
[ "${S1:-0}" -gt 0 ] && [ "${S2:-0}" -gt 0 ] ||
	fail "inbound traffic did not spread over both routers before the failover (r1 $S1, r2 ${S2:-0} packets)"
xd_ok "before the crash both routers carried inbound traffic: r1 $S1, r2 $S2 packets to the hosts"
alive=$(( 3 - XC_KILL ))
xc_wait_master "$alive" 5
route=$(ip -n "$XD_NS_REMOTE" route show "$XD_GLOBAL/32")
xd_info "upstream route after: $(tr -s ' \n' ' ' <<<"$route")"
dead_nh=$(tr '\n\t' '  ' <<<"$route" | sed 's/nexthop/\n/g' | grep "dev eth$XC_KILL " || true)
[ -z "$dead_nh" ] || grep -q linkdown <<<"$dead_nh" ||
	fail "the upstream still uses the dead nexthop: $route"
xd_ok "r$alive holds $XC_VIP and carries everything; the upstream skips r$XC_KILL's nexthop (link down)"
xc_rsip_after "$alive"
xd_ok "TCP: $(( XC_TCP_BYTES / 1000000 )) MB byte-identical (sha256) in ${XC_R_TCP_SECONDS} s, the remote saw only $XD_GLOBAL"
xd_ok "IPsec: the same IKE_SA and CHILD_SA on both sides (h1: $XC_R_SA_STATE), no rekey, no new SA"
xd_ok "UDP probe through G ($XC_FLOWS flows): interruption $XC_R_INT ms (worst flow), $XC_R_LOST of $XC_R_SENT lost (every ${XC_INTERVAL_MS} ms)"
xd_ok "UDP probe inside the CHILD_SA: interruption $XC_R_ESP_INT ms, $XC_R_ESP_LOST of $XC_R_ESP_SENT lost"
python3 - "$XC_R_INT" "$XC_R_ESP_INT" "$MAX_INTERRUPTION_MS" <<'PY' || fail "interruption above ${MAX_INTERRUPTION_MS} ms"
import sys
a, b, m = map(float, sys.argv[1:4])
sys.exit(0 if max(a, b) <= m else 1)
PY

what="ECMP, r$XC_KILL killed"
[ "$XC_KILL" = 1 ] && what="$what (VIP)"
[ "$XC_LINKWATCH" = batched ] && what="$what, batched"
echo
printf '%-48s %-16s %-14s %-9s\n' "failover (method)" "interruption ms" "packets lost" "SAs kept"
printf '%-48s %-16s %-14s %-9s\n' "$what, UDP through G" "$XC_R_INT" "$XC_R_LOST/$XC_R_SENT" "-"
printf '%-48s %-16s %-14s %-9s\n' "$what, UDP inside ESP" "$XC_R_ESP_INT" "$XC_R_ESP_LOST/$XC_R_ESP_SENT" "yes"
echo "e2e_failover_ecmp: all checks passed in $(( $(date +%s) - T_START )) s"
