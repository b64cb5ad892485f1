#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Active/standby failover (issue 17): two xdnat routers for one global
# address G, keepalived (VRRPv3) moving G on the WAN side and the hosts'
# tunnel endpoint VIP on the LAN side; both routers hold the same allocation
# tables (XC_STORE=static: `xdnatctl host add` on both; etcd: a shared
# store, see lib/cluster.sh).  While
#   - h1 sends 25 MB to the remote over TCP, paced over 20 s,
#   - h1 holds an IKEv2/ESP session with the remote (strongSwan, through G)
#     and a UDP echo probe runs inside its CHILD_SA,
#   - h2 runs a UDP echo probe with the remote through G (one datagram
#     every 10 ms),
# the active router crashes (kill -9 of xdnatd and keepalived, its links
# down).  Checked: the standby takes G and the VIP; the transfer completes
# byte-identical (sha256), the remote saw only G; both charons keep the
# same IKE_SA (unique id, IKE SPIs) and CHILD_SA SPIs, and log no rekey and
# no new SA; the standby's datapath carried traffic after the failover, and
# its CRL server (on G) and RSIP server (on the VIP), started while it held
# neither address, answer.  With XC_STORE=etcd (e2e_failover_vrrp_etcd.sh:
# the hosts register over RSIP, their blocks in etcd) also: after the crash
# every host renews its leases through r2 and a new host gets blocks from
# r2 (xc_rsip_after).
# Printed: interruption (ms) and packets lost of both probes.
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/strongswan.sh"
XC_MODE=vrrp
. "$(dirname "$0")/lib/cluster.sh"

# The interruption must stay below this (keepalived declares the master
# dead after 3 advertisement intervals + skew: ~0.35 s with XC_ADVERT=0.1).
MAX_INTERRUPTION_MS=${MAX_INTERRUPTION_MS:-3000}

T_START=$(date +%s)
xc_init
xs_init
command -v openssl >/dev/null || fail "missing openssl (scripts/deps.sh)"

xd_step "topology: remote, WAN switch, r1 + r2 (G = $XD_GLOBAL, VIP $XC_VIP), LAN switch, h1, h2; store: $XC_STORE"
xc_topology vrrp 2
[ "$XC_ETCD" = 1 ] && { xc_etcd_start; xd_ok "3 etcd members healthy"; }
# Both routers also serve RSIP on the VIP and the Local CA's CRL on G (the
# same LCA key on both): the backup binds both before it holds them
# (IP_FREEBIND) and serves them once keepalived moves the addresses (checked
# after the failover).  Static store: each router has its own state
# database and nobody registers; etcd: the hosts register over RSIP, the
# signer is elected among the routers.
"$XD_BUILD/xdnat-ca" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
"$XD_BUILD/xdnat-ca" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" \
	-K "$XD_TMP/root.key" -o "$XD_TMP/lca.crt" >/dev/null
ROUTER_ARGS=(--rsip --ca-key "$XD_TMP/lca.key" --ca-cert "$XD_TMP/lca.crt")
for i in 1 2; do
	state=()
	[ "$XC_STORE" = static ] && state=(--state-dir "$XD_TMP/state-r$i")
	xc_start_router "$i" "${ROUTER_ARGS[@]}" "${state[@]}"
done
grep -q "RSIP: $XC_VIP is not an address of this router (yet)" "$XD_TMP/xdnatd-r2.log" ||
	fail "r2 did not say that it listens for RSIP on $XC_VIP before holding it"
xd_ok "both xdnatd up with --lan-addr $XC_VIP (on neither router yet)"

xd_step "keepalived in both router namespaces (VRRPv3, advert ${XC_ADVERT}s)"
xc_keepalived_start 1
xc_keepalived_start 2
xc_wait_master 1
grep -q 'Entering BACKUP STATE' "$XD_TMP/keepalived-r2.log" || fail "r2 is not BACKUP"
xd_ok "r1 MASTER (G on wan, $XC_VIP on lan), r2 BACKUP"

xd_step "hosts: $([ "$XC_STORE" = etcd ] && echo "register over RSIP at $XC_VIP (r1), blocks in etcd" || echo "the same static hosts on both routers")"
xc_hosts_up
xc_wait_tables
xc_point_to 1
for i in 1 2; do
	xd_ns "$(xd_host_ns "$i")" ping -c 2 -i 0.2 -W 2 -e $(( ${XC_PORTS[$i]%-*} + 7 )) "$XD_REMOTE_WAN" >/dev/null ||
		fail "h$i cannot reach the remote through r1"
done
xd_ok "the same tables on both routers: $XC_NTABLES hosts; the hosts and the remote resolve G and $XC_VIP to r1; h1, h2 reach the remote"

xd_step "strongSwan: h1 <-> remote IKEv2/ESP through G"
xc_swan_up
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -I "$XC_H1_INNER" "$XC_REMOTE_INNER" >/dev/null ||
	fail "no ping through h1's CHILD_SA"
xd_ok "IKE_SA + CHILD_SA up (h1 ports $(( ${XC_PORTS[1]%-*} + 500 ))/$XC_NATT, ESP in UDP); ping through the tunnel"

xd_step "failover: r1 crashes ${XC_KILL_AT}s into the transfer"
before_r2=$(xc_counter 2 wan_to_host)
xc_measure 1
xc_wait_master 2 5
# A crash, not a hand-over: r1 sent no "leaving" (priority 0) advertisement.
! grep -qi 'priority 0' "$XD_TMP/keepalived-r2.log" ||
	fail "r2 received a priority-0 advertisement: r1's keepalived shut down instead of crashing"
takeover=$(sed -n 's/^\(.*\): (xdnat) Entering MASTER STATE.*/\1/p' "$XD_TMP/keepalived-r2.log" | tail -n 1)
after_r2=$(xc_counter 2 wan_to_host)
[ "$after_r2" -gt "$before_r2" ] || fail "r2's datapath carried nothing after the failover"
[ "$(xc_counter 2 host_to_wan)" -gt 0 ] || fail "r2 sent nothing to the WAN after the failover"
xd_ok "r2 MASTER (keepalived: '$takeover'); it carried $(( after_r2 - before_r2 )) packets to the hosts"
# r2's CRL server on G and RSIP server on the VIP, bound before it held them
xd_ns "$XD_NS_REMOTE" python3 -c 'import sys, urllib.request
b = urllib.request.urlopen(sys.argv[1], timeout=5).read()
sys.exit(0 if b[:1] == b"\x30" else 1)' "http://$XD_GLOBAL:8080/crl/lca.crl" ||
	fail "the remote cannot fetch the CRL from $XD_GLOBAL:8080 after the failover"
xd_ns "$(xd_host_ns 1)" python3 -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()' "$XC_VIP" 4555 ||
	fail "h1 cannot connect to RSIP on $XC_VIP:4555 after the failover"
xd_ok "r2 serves the CRL on $XD_GLOBAL:8080 and RSIP on $XC_VIP:4555 (bound before it held them)"
xc_rsip_after 2
xd_ok "TCP: $(( XC_TCP_BYTES / 1000000 )) MB byte-identical (sha256) in ${XC_R_TCP_SECONDS} s, the remote saw only $XD_GLOBAL"
xd_ok "IPsec: the same IKE_SA and CHILD_SA on both sides (h1: $XC_R_SA_STATE), no rekey, no new SA"
xd_ok "UDP probe through G: interruption $XC_R_INT ms, $XC_R_LOST of $XC_R_SENT lost (every ${XC_INTERVAL_MS} ms)"
xd_ok "UDP probe inside the CHILD_SA: interruption $XC_R_ESP_INT ms, $XC_R_ESP_LOST of $XC_R_ESP_SENT lost"
python3 - "$XC_R_INT" "$XC_R_ESP_INT" "$MAX_INTERRUPTION_MS" <<'PY' || fail "interruption above ${MAX_INTERRUPTION_MS} ms"
import sys
a, b, m = map(float, sys.argv[1:4])
sys.exit(0 if max(a, b) <= m else 1)
PY

echo
printf '%-28s %-16s %-14s %-9s\n' "failover (method)" "interruption ms" "packets lost" "SAs kept"
printf '%-28s %-16s %-14s %-9s\n' "VRRP, UDP through G" "$XC_R_INT" "$XC_R_LOST/$XC_R_SENT" "-"
printf '%-28s %-16s %-14s %-9s\n' "VRRP, UDP inside ESP" "$XC_R_ESP_INT" "$XC_R_ESP_LOST/$XC_R_ESP_SENT" "yes"
echo "e2e_failover_vrrp: all checks passed in $(( $(date +%s) - T_START )) s"
