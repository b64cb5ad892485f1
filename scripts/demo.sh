#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# xdnat demo: `make demo`.
#
# With no interfaces named, builds a self-contained topology in network
# namespaces -- a remote peer on the "Internet", an xdnat router, a LAN
# switch and two hosts sharing the router's one global address -- and shows
# TCP, UDP, ICMP and ESP flowing to and from both hosts, then the per-host
# and per-reason counters, then tears everything down.
#
#   make demo                       run the namespace demo and exit: hosts
#                                   obtain blocks and certificates over RSIP
#   make demo DEMO_STATIC=1         the same with blocks assigned by hand
#   make demo IPSEC=strongswan      then also run unmodified strongSwan
#                                   (charon, kernel-libipsec) on both hosts
#                                   and the remote: SAs through G with the
#                                   hosts' Local-CA certificates, ping through
#                                   both tunnels (scripts/demo_strongswan.sh)
#   make demo CLUSTER=1             two routers for one G (keepalived, three
#                                   etcd members), one killed mid-transfer:
#                                   the interruption, packets lost, SAs kept
#                                   (scripts/demo_cluster.sh; CLUSTER_MODE=ecmp)
#   make demo ROAM=1                a roaming host instead: h1 moves from the
#                                   LAN to a foreign network behind an
#                                   nftables NAT and back while a 20 s TCP
#                                   transfer and a strongSwan SA with the
#                                   remote stay up (the scenario of
#                                   selftests/e2e_roam_strongswan.sh, whose
#                                   steps and figures it prints)
#   make demo HOLD=1                keep it running until Ctrl-C, to look
#                                   around with bpftool, ip, xdnatctl
#   make demo WAN=eth0 LAN=eth1 GLOBAL=203.0.113.5 [XDNATD_ARGS="..."]
#                                   run the router on real NICs (foreground)
#
# Addresses of the namespace demo come from the same variables as the tests
# (XD_GLOBAL, XD_REMOTE_WAN, XD_ROUTER_WAN, XD_LAN_PREFIX, ...; see
# selftests/lib/netns.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${WAN:-}" ] || [ -n "${LAN:-}" ]; then
	[ -n "${WAN:-}" ] && [ -n "${LAN:-}" ] && [ -n "${GLOBAL:-}" ] ||
		{ echo "demo: real-NIC mode needs WAN=, LAN= and GLOBAL=" >&2; exit 2; }
	echo "demo: starting xdnatd on $WAN (WAN) and $LAN (LAN) for $GLOBAL; Ctrl-C stops it"
	echo "demo: add hosts with: $ROOT/build/xdnatctl host add 1 lan ADDR ports 20000-20999"
	# shellcheck disable=SC2086
	exec "$ROOT/build/xdnatd" --wan "$WAN" --lan "$LAN" --global "$GLOBAL" ${XDNATD_ARGS:-}
fi

[ "${CLUSTER:-0}" = 1 ] && exec "$ROOT/scripts/demo_cluster.sh"

XD_TAG=${XD_TAG:-demo$$}
XD_INSTANCE=${XD_INSTANCE:-demo}

# ROAM=1: the roaming scenario is the acceptance test itself (one script,
# so what the demo shows is what `make check` checks).
if [ "${ROAM:-0}" = 1 ]; then
	[ -z "${IPSEC:-}" ] && [ "${DEMO_STATIC:-0}" != 1 ] && [ "${HOLD:-0}" != 1 ] && [ "${MODE:-xdp}" = xdp ] ||
		{ echo "demo: ROAM=1 runs alone (XDP, always with strongSwan: no IPSEC=, DEMO_STATIC=, HOLD=, MODE=)" >&2; exit 2; }
	export XD_TAG XD_INSTANCE
	exec bash "$ROOT/selftests/e2e_roam_strongswan.sh"
fi
. "$ROOT/selftests/lib/netns.sh"

# IPSEC=strongswan: real IKEv2/ESP between the hosts and the remote.
IPSEC=${IPSEC:-}
case $IPSEC in
"") ;;
strongswan)
	[ "${DEMO_STATIC:-0}" != 1 ] ||
		{ echo "demo: IPSEC=strongswan needs the hosts' certificates from RSIP (not DEMO_STATIC=1)" >&2; exit 2; }
	. "$ROOT/selftests/lib/strongswan.sh"
	. "$ROOT/scripts/demo_strongswan.sh"
	;;
*) echo "demo: IPSEC='$IPSEC': only IPSEC=strongswan is known" >&2; exit 2 ;;
esac

# DEMO_STATIC=1: blocks assigned by hand with xdnatctl instead of RSIP.
DEMO_STATIC=${DEMO_STATIC:-0}
POOL=${POOL:-20000-29999}       # ports RSIP hands out
H1_PORTS=${H1_PORTS:-20000-20999} H2_PORTS=${H2_PORTS:-21000-21999}   # static mode
H1_SPIS=${H1_SPIS:-0x00010000-0x0001ffff} H2_SPIS=${H2_SPIS:-0x00020000-0x0002ffff}
envget() { sed -n "s/^$2=//p" "$1" | head -1; }   # FILE KEY

xd_init
cat <<DIAGRAM

  remote $XD_REMOTE_WAN  ---  [router: xdnatd, XDP, RSIP + Local CA]  ---  switch  ---  h1 $(xd_host_lan 1)
                          $XD_ROUTER_WAN / global $XD_GLOBAL                        \--  h2 $(xd_host_lan 2)
                          LAN $XD_ROUTER_LAN
DIAGRAM

xd_step "build the namespaces and start xdnatd (native XDP on both router NICs)"
xd_topology 2
if [ "$DEMO_STATIC" = 1 ]; then
	xd_start_router --mode "${MODE:-xdp}"
else
	STATE=$XD_TMP/state
	"$XD_BUILD/xdnat-ca" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
	"$XD_BUILD/xdnat-ca" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" \
		-K "$XD_TMP/root.key" -o "$XD_TMP/lca.crt" >/dev/null
	xd_info "demo root CA and a Local CA for $XD_GLOBAL, name-constrained to it"
	[ "$IPSEC" = strongswan ] && demo_swan_prepare
	xd_start_router --mode "${MODE:-xdp}" --rsip --state-dir "$STATE" --port-range "$POOL" \
		--port-block 250 --ca-key "$XD_TMP/lca.key" --ca-cert "$XD_TMP/lca.crt"
fi
sed 's/^/      /' "$XD_TMP/xdnatd.log"

if [ "$DEMO_STATIC" = 1 ]; then
	xd_step "register the two hosts and their blocks statically (xdnatctl host add)"
	xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$H1_PORTS" spi "$H1_SPIS"
	xd_ctl host add 2 lan "$(xd_host_lan 2)" ports "$H2_PORTS" spi "$H2_SPIS"
	xd_start_host 1 "$H1_PORTS"
	xd_start_host 2 "$H2_PORTS"
else
	xd_step "enrol both hosts; each registers over RSIP, gets ports, SPIs and a certificate"
	for i in 1 2; do
		xd_ctl --state-dir "$STATE" enroll "h$i" lan "$(xd_host_lan "$i")" \
			secret-file "$XD_TMP/h$i.key" >/dev/null
		swan_args=()
		[ "$IPSEC" = strongswan ] && mapfile -t swan_args < <(demo_swan_host_args "$i")
		xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
			--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --name "h$i" \
			--secret-file "$XD_TMP/h$i.key" --info-file "$XD_TMP/h$i.env" \
			--state-dir "$XD_TMP/host$i" "${swan_args[@]}"
		xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready'
		ports=$(envget "$XD_TMP/h$i.env" XDNAT_PORTS)
		spis=$(envget "$XD_TMP/h$i.env" XDNAT_SPIS)
		[ -n "$ports" ] && [ -n "$spis" ] || fail "h$i: no ports or SPIs in its info file"
		eval "H${i}_PORTS=\${ports%%,*} H${i}_SPIS=\${spis%%,*}"
		cat "$(envget "$XD_TMP/h$i.env" XDNAT_CERT)" "$(envget "$XD_TMP/h$i.env" XDNAT_CERT_CHAIN)" \
			>"$XD_TMP/h$i-chain.pem"
		# What a remote peer reads from the certificate, verified to the root.
		"$XD_BUILD/xdnat-verify" -j -a "$XD_TMP/root.crt" -c "$XD_TMP/h$i-chain.pem" -s "$XD_GLOBAL" |
			python3 -c 'import json, sys
v = json.load(sys.stdin)
print("  ok  h%s: ports %s, SPIs %s over RSIP; certificate %s (%s)" % (sys.argv[1], sys.argv[2],
      sys.argv[3], v.get("identity"), "verifies to the root" if v.get("ok") else "NOT VALID: " + v.get("reason", "")))
print("          certified: global %s  ports %s  SPIs %s  serial %s" % (v.get("global"), v.get("ports"),
      v.get("spis"), v.get("serial")))' "$i" "$ports" "$spis"
	done
fi
xd_ctl host show | sed 's/^/      /'

xd_step "TCP: each host uploads 2 MB to the remote, at the same time"
for i in 1 2; do
	xd_bg "srv$i" "$XD_NS_REMOTE" "$XD_TMP/srv$i" python3 "$XD_TRAFFIC" tcp-server --port $((8000 + i))
	eval "SRV$i=$XD_LAST_PID"
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/srv$i" listening
done
for i in 1 2; do
	xd_bg "cli$i" "$(xd_host_ns $i)" "$XD_TMP/cli$i" python3 "$XD_TRAFFIC" tcp-client \
		--dst "$XD_REMOTE_WAN" --port $((8000 + i)) --bytes 2000000 --seed "$i"
	eval "CLI$i=$XD_LAST_PID"
done
wait "$CLI1" "$CLI2" "$SRV1" "$SRV2"
for i in 1 2; do
	[ "$(jget '["sha256"]' <"$XD_TMP/cli$i")" = "$(jget '["sha256"]' <"$XD_TMP/srv$i")" ] ||
		fail "h$i: data corrupted"
	xd_ok "h$i: 2000000 bytes, SHA-256 matches; the remote saw $(jget '["peer"]' <"$XD_TMP/srv$i"):$(jget '["peer_port"]' <"$XD_TMP/srv$i")"
done

xd_step "UDP: each host sends 10 datagrams to a remote echo server"
xd_bg echo "$XD_NS_REMOTE" "$XD_TMP/echo" python3 "$XD_TRAFFIC" udp-echo --port 5353 --count 20
ECHO=$XD_LAST_PID
xd_wait_line "$ECHO" "$XD_TMP/echo" listening
for i in 1 2; do
	xd_py "$(xd_host_ns $i)" udp-client --dst "$XD_REMOTE_WAN" --port 5353 --count 10 >"$XD_TMP/u$i"
	xd_ok "h$i: $(jget '["echoed"]' <"$XD_TMP/u$i")/10 echoed, from $XD_GLOBAL:$(jget '["sport"]' <"$XD_TMP/u$i")"
done
wait "$ECHO" || true

xd_step "ICMP: each host pings the remote with an echo identifier from its block"
for i in 1 2; do
	ports=H${i}_PORTS
	id=$(( ${!ports%-*} + 1 ))
	xd_ns "$(xd_host_ns $i)" ping -c 2 -i 0.2 -W 2 -e "$id" "$XD_REMOTE_WAN" | grep -E 'bytes from|packets' | sed 's/^/      /'
done

xd_step "ESP: the remote sends one ESP packet to an SPI of each host"
for i in 1 2; do
	spis=H${i}_SPIS
	spi=$(( ${!spis%-*} + 0x42 ))
	xd_bg "esp$i" "$(xd_host_ns $i)" "$XD_TMP/esp$i" python3 "$XD_TRAFFIC" raw-recv --proto 50 --count 1 --timeout 3
	eval "ESP$i=$XD_LAST_PID"
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/esp$i" listening
	pkt=$(xd_py "$XD_NS_REMOTE" ipv4 --src "$XD_REMOTE_WAN" --dst "$XD_GLOBAL" --proto 50 \
		--payload-hex "$(printf '%08x%08x' "$spi" 1)deadbeefcafe0000" | jget '["hex"]')
	xd_py "$XD_NS_REMOTE" raw-send --dst "$XD_GLOBAL" --proto 50 --hex "$pkt" >/dev/null
	eval "wait \$ESP$i" || true
	got=$(jget '["packets"]' <"$XD_TMP/esp$i")
	[ "$got" = "['$pkt']" ] || fail "h$i: ESP to SPI $(printf 0x%08x "$spi") not delivered intact ($got)"
	xd_ok "h$i: ESP SPI $(printf 0x%08x "$spi") arrived byte-identical"
done

[ "$IPSEC" = strongswan ] && demo_swan_run

xd_step "counters (xdnatctl host show / xdnatctl stats, non-zero rows)"
xd_ctl host show | sed 's/^/      /'
xd_ctl stats | awk 'NR == 1 || $2 != 0' | sed 's/^/      /'

if [ "$DEMO_STATIC" != 1 ]; then
	xd_step "issued certificates (xdnatctl cert list)"
	xd_ctl --state-dir "$STATE" cert list | sed 's/^/      /'
fi

if [ "${HOLD:-0}" = 1 ]; then
	PIN=$XD_PIN_BASE/$XD_INSTANCE
	cat <<EOF

The demo stays up until Ctrl-C.  Try, in another shell:
  bpftool map dump pinned $PIN/xdnat_hosts
  bpftool map lookup pinned $PIN/xdnat_spis key 1 0 0 0
  $ROOT/build/xdnatctl -i $XD_INSTANCE -j stats
  ip netns exec $XD_NS_ROUTER ip -d link show wan
  ip netns exec $(xd_host_ns 1) ping -e $(( ${H1_PORTS%-*} + 1 )) $XD_REMOTE_WAN
EOF
	while :; do sleep 3600; done
fi
echo
echo "demo finished; tearing down"
