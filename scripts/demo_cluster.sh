#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# `make demo CLUSTER=1`: two xdnat routers for one global address, one of
# them crashing in the middle of a transfer (issue 17).  Network namespaces
# only (selftests/lib/cluster.sh):
#
#   remote ── WAN ── r1, r2 (xdnatd each, the same G; keepalived) ── LAN ── h1, h2
#                    etcd members e1, e2, e3 on a management network
#
# h1 uploads to the remote over TCP and holds an IKEv2/ESP session with it
# (strongSwan, through G); h2 runs a UDP echo probe; the router holding G
# and the hosts' tunnel endpoint (the VIP) is killed (kill -9 of xdnatd and
# keepalived, its links down).  The demo prints what happens and the
# interruption in ms and packets lost.
#
#   make demo CLUSTER=1                       active/standby (VRRP)
#   make demo CLUSTER=1 CLUSTER_MODE=ecmp     active/active (ECMP upstream)
#   CLUSTER_STORE=static|etcd|auto            where the routers' tables come
#                                             from (auto: etcd when xdnatd
#                                             has the etcd store backend)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
XD_TAG=${XD_TAG:-demo$$}
XD_INSTANCE=${XD_INSTANCE:-demo}
. "$ROOT/selftests/lib/netns.sh"
. "$ROOT/selftests/lib/strongswan.sh"

XC_MODE=${CLUSTER_MODE:-vrrp}
case $XC_MODE in vrrp | ecmp) ;; *) echo "demo: CLUSTER_MODE='$XC_MODE': vrrp or ecmp" >&2; exit 2 ;; esac
store=${CLUSTER_STORE:-auto}
# The etcd backend is there when xdnatd's configuration knows a [store] section.
has_etcd=0
"$XD_XDNATD" --help-config 2>/dev/null | grep -q '^\[store\]' && has_etcd=1
case $store in
auto) if [ "$has_etcd" = 1 ]; then XC_STORE=etcd; else XC_STORE=static; fi ;;
static | etcd) XC_STORE=$store ;;
*) echo "demo: CLUSTER_STORE='$store': static, etcd or auto" >&2; exit 2 ;;
esac
XC_ETCD=1
XC_SECONDS=${XC_SECONDS:-12}
XC_KILL_AT=${XC_KILL_AT:-5}
XC_TCP_BYTES=${XC_TCP_BYTES:-15000000}
[ "$XC_MODE" = ecmp ] && { XC_FLOWS=${XC_FLOWS:-8}; XC_INTERVAL_MS=${XC_INTERVAL_MS:-5}; }
. "$ROOT/selftests/lib/cluster.sh"

xc_init
xs_init
if [ "$XC_MODE" = vrrp ]; then
	cat <<DIAGRAM

  remote $XD_REMOTE_WAN ── WAN switch ──┬── wan ${XC_WAN_ADDR[1]} [r1: xdnatd + keepalived] lan ${XC_LAN_ADDR[1]} ──┬── LAN switch ── h1 $(xd_host_lan 1), h2 $(xd_host_lan 2)
                                   └── wan ${XC_WAN_ADDR[2]} [r2: xdnatd + keepalived] lan ${XC_LAN_ADDR[2]} ──┘
  keepalived (VRRPv3) moves G = $XD_GLOBAL (WAN) and the hosts' tunnel endpoint $XC_VIP (LAN)
  etcd members e1..e3 at $(xc_etcd_addr 1)..$(xc_etcd_addr 3) (management network)
DIAGRAM
else
	cat <<DIAGRAM

  remote/upstream $XD_REMOTE_WAN ─ eth1 ── wan [r1: xdnatd, G = $XD_GLOBAL] lan ──┬── LAN switch ── h1 $(xd_host_lan 1), h2 $(xd_host_lan 2)
                          └ eth2 ── wan [r2: xdnatd, G = $XD_GLOBAL] lan ──┘
  upstream: ip route add $XD_GLOBAL nexthop via ${XC_ECMP_RTR[1]} nexthop via ${XC_ECMP_RTR[2]}
  keepalived (VRRPv3) moves the hosts' tunnel endpoint $XC_VIP (LAN)
  etcd members e1..e3 at $(xc_etcd_addr 1)..$(xc_etcd_addr 3) (management network)
DIAGRAM
fi

xd_step "namespaces, three etcd members"
xc_topology "$XC_MODE" 2
xc_etcd_start
xc_etcdctl member list | sed 's/^/      /'
if [ "$XC_STORE" = etcd ]; then
	xd_ok "etcd: 3 members healthy; the routers keep their tables in it (prefix $XC_ETCD_PREFIX)"
else
	xd_ok "etcd: 3 members healthy, idle: this xdnatd has no etcd store backend yet, so both routers get the same tables by hand (xdnatctl host add on each)"
fi

xd_step "two routers: xdnatd with the same G and --lan-addr $XC_VIP on each"
xc_start_router 1
xc_start_router 2
for i in 1 2; do
	xd_info "r$i: $(grep '^xdnatd: ready' "$XD_TMP/xdnatd-r$i.log")"
done

# keepalived before the hosts: with the store in etcd they register over
# RSIP at the VIP, which the master holds.
xd_step "keepalived in each router namespace"
xc_keepalived_start 1
xc_keepalived_start 2
xc_wait_master 1
sed -n 's/^\(.*\): (xdnat) \(Entering .* STATE\).*/      r1: \2/p' "$XD_TMP/keepalived-r1.log" | tail -n 1
sed -n 's/^\(.*\): (xdnat) \(Entering .* STATE\).*/      r2: \2/p' "$XD_TMP/keepalived-r2.log" | tail -n 1
xd_ok "r1 is the master: it holds $XC_VIP$([ "$XC_MODE" = vrrp ] && echo " and $XD_GLOBAL")"

xd_step "hosts: $([ "$XC_STORE" = etcd ] && echo "register over RSIP at $XC_VIP (r1); the blocks are in etcd, both routers' maps follow it" || echo "the same static hosts on both routers")"
xc_hosts_up
xc_wait_tables
xc_point_to 1
xc_ctl 1 host show | sed 's/^/      /'
xd_ok "r1 and r2 hold the same tables: a packet's fate does not depend on which one it crosses"

xd_step "strongSwan: h1 <-> remote, IKEv2/ESP through $XD_GLOBAL"
xc_swan_up
xs_sas h1 | sed 's/^/      /'

xd_step "the crash: r1 is killed ${XC_KILL_AT}s into a ${XC_SECONDS}s transfer"
xc_measure 1
xc_wait_master 2 5
t_master=$(sed -n 's/^\(.*\): (xdnat) Entering MASTER STATE.*/\1/p' "$XD_TMP/keepalived-r2.log" | tail -n 1)
xd_info "r2 keepalived: 'Entering MASTER STATE' at $t_master"
[ "$XC_MODE" = ecmp ] &&
	xd_info "upstream: $(ip -n "$XD_NS_REMOTE" route show "$XD_GLOBAL/32" | tr -s ' \n\t' ' ')"
xd_ok "TCP: $(( XC_TCP_BYTES / 1000000 )) MB arrived byte-identical (sha256) in ${XC_R_TCP_SECONDS} s; the connection never noticed"
xd_ok "IPsec: the same IKE_SA and CHILD_SA SPIs before and after ($XC_R_SA_STATE), no rekey"
xd_step "r2 after the failover (xdnatctl host show)"
xc_ctl 2 host show | sed 's/^/      /'

echo
printf '  %-32s %-16s %-14s %s\n' "failover ($XC_MODE)" "interruption" "packets lost" "SAs kept"
printf '  %-32s %-16s %-14s %s\n' "UDP probe through G" "$XC_R_INT ms" "$XC_R_LOST/$XC_R_SENT" "-"
printf '  %-32s %-16s %-14s %s\n' "UDP probe inside the CHILD_SA" "$XC_R_ESP_INT ms" "$XC_R_ESP_LOST/$XC_R_ESP_SENT" "yes"
echo
echo "demo finished; tearing down"
