#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Shared IKE ports (issue 8, docs/SHARED-IKE.md) end to end: xdnatd with
# --shared-ike-ports on, two hosts behind one global address that BOTH use
# UDP 500 and 4500 as their own ports, a remote that only speaks 500/4500.
# Crafted IKEv2-like datagrams (IKE headers with labelled SPIs, the non-ESP
# marker, ESP-in-UDP) prove:
#   - both hosts' IKE_SA_INITs leave from G:500 (source port kept);
#   - replies are delivered by the host's IKE SPI (initiator position),
#     ESP-in-UDP by its SPI, marker+IKE on 4500 by SPI: each host gets
#     exactly its own datagrams, byte-identical, and nothing else;
#   - a remote's IKE_SA_INIT goes to the default host (xdnatctl ike default);
#   - a host sending with another host's IKE SPI is dropped and counted;
#   - the counters ike_from_host, ike_to_host, ike_to_default,
#     esp_udp_to_host, shared_unchecked, drop_spoof_ike account for it;
#   - the router announces the shared ports over RSIP (XDNAT_VS_SHARED_IKE,
#     docs/CONTROL-PLANE.md): an RSIP host (h3) started without --shared-ike
#     writes XDNAT_IKE_PORT=500 / _NAT_T=4500 and the SPI label of its block
#     into its info file and strongSwan fragment; with --no-shared-ike it
#     keeps to its own ports.  (e2e_rsip.sh: no shared ports, no such lines.)
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"

XD_MODE=${XD_MODE:-xdp}
H1_PORTS=${H1_PORTS:-20000-20999}
H2_PORTS=${H2_PORTS:-21000-21999}
H1_SPIS=${H1_SPIS:-0x00010000-0x0001ffff}
H2_SPIS=${H2_SPIS:-0x00020000-0x0002ffff}
# IKE SPIs as strongSwan labels them: top 32 bits in the host's SPI block.
S1=0001a1b2c3d4e5f6   # h1's IKE SPI (spi_label 0x0001000000000000)
S2=0002deadbeef0102   # h2's IKE SPI
SR=77665544332211aa   # the remote's IKE SPI

ike() { python3 "$XD_TRAFFIC" ike "$@"; }

xd_init
STATE=$XD_TMP/state
xd_step "topology: remote, router ($XD_MODE, shared IKE ports, RSIP), 3 hosts; global $XD_GLOBAL"
xd_topology 3
xd_start_router --mode "$XD_MODE" --shared-ike-ports on --rsip --state-dir "$STATE" \
	--port-range 30000-30999
grep -q "shared IKE ports 500,4500" "$XD_TMP/xdnatd.log" || fail "xdnatd did not announce the shared ports"
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$H1_PORTS" spi "$H1_SPIS"
xd_ctl host add 2 lan "$(xd_host_lan 2)" ports "$H2_PORTS" spi "$H2_SPIS"
xd_start_host 1 "$H1_PORTS"
xd_start_host 2 "$H2_PORTS"
H1=$(xd_host_ns 1) H2=$(xd_host_ns 2) R=$XD_NS_REMOTE
xd_ctl ike list | grep -q "udp 500: IKE" || fail "xdnatctl ike list shows no shared 500"
if xd_ctl ports add 1 500-500 2>/dev/null; then fail "a shared port was handed to a host"; fi
xd_ctl ike default 500 1
xd_ctl ike list | grep -q "udp 500: IKE, IKE_SA_INIT of remote initiators to host 1" ||
	fail "default host not recorded"
xd_ok "router and hosts up; 500/4500 shared, default host for 500 is h1"

# ------------------------------------------- both hosts initiate from :500
xd_step "both hosts send IKE_SA_INIT from their own UDP 500 to the remote's 500"
INIT1=$(ike --spii "$S1" --flags 0x08)
INIT2=$(ike --spii "$S2" --flags 0x08)
SPOOF=$(ike --spii "$S1" --flags 0x08 --body 12)   # h2 with h1's SPI
xd_bg rr "$R" "$XD_TMP/rr" python3 "$XD_TRAFFIC" udp-peer --port 500 --count 3 --timeout 4
RR=$XD_LAST_PID
xd_wait_line "$RR" "$XD_TMP/rr" listening
spoof_before=$(xd_stat drop_spoof_ike)
xd_py "$H1" udp-peer --port 500 --send "$INIT1@$XD_REMOTE_WAN:500" --timeout 0 >/dev/null
xd_py "$H2" udp-peer --port 500 --send "$INIT2@$XD_REMOTE_WAN:500" --timeout 0 >/dev/null
xd_py "$H2" udp-peer --port 500 --send "$SPOOF@$XD_REMOTE_WAN:500" --timeout 0 >/dev/null
wait "$RR" || fail "remote receiver failed"
python3 - "$XD_TMP/rr" "$XD_GLOBAL:500" "$INIT1" "$INIT2" <<'PY' || fail "remote did not get exactly both IKE_SA_INITs from G:500"
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["datagrams"]
got = sorted(x["payload"] for x in d)
if got != sorted(sys.argv[3:5]) or any(x["from"] != sys.argv[2] for x in d):
    print("remote got", d, file=sys.stderr)
    sys.exit(1)
PY
[ "$(xd_stat drop_spoof_ike)" -gt "$spoof_before" ] || fail "h2 using h1's IKE SPI not counted as drop_spoof_ike"
xd_ok "both IKE_SA_INITs left from $XD_GLOBAL:500; h2's datagram with h1's SPI dropped (drop_spoof_ike)"

# ------------------------------- the remote answers; each host gets its own
xd_step "remote replies on 500 and 4500: IKE by SPI, ESP-in-UDP by SPI, IKE_SA_INIT to the default host"
RESP1=$(ike --spii "$S1" --spir "$SR" --flags 0x20)           # to h1 (initiator SPI)
RESP2=$(ike --spii "$S2" --spir "$SR" --flags 0x20)           # to h2
RINIT=$(ike --spii "$SR" --flags 0x08 --body 60)               # remote initiator: default h1
AUTH2=$(ike --spii "$S2" --spir "$SR" --flags 0x20 --marker)  # 4500 marker, to h2
ESP1=$(ike --esp 0x0001beef --body 64)                         # ESP-in-UDP to h1
ESP2=$(ike --esp 0x0002beef --body 64)                         # to h2
declare -A WANT=([h1_500]="$RESP1,$RINIT" [h2_500]="$RESP2" [h1_4500]="$ESP1" [h2_4500]="$AUTH2,$ESP2")
for h in 1 2; do
	for p in 500 4500; do
		xd_bg "h${h}_$p" "$(xd_host_ns $h)" "$XD_TMP/h${h}_$p" python3 "$XD_TRAFFIC" udp-peer \
			--port "$p" --count 3 --timeout 8
		eval "P_h${h}_$p=$XD_LAST_PID"
		xd_wait_line "$XD_LAST_PID" "$XD_TMP/h${h}_$p" listening
	done
done
before_to_host=$(xd_stat ike_to_host) before_default=$(xd_stat ike_to_default)
before_esp=$(xd_stat esp_udp_to_host)
xd_py "$R" udp-peer --port 500 --timeout 0 --send "$RESP1@$XD_GLOBAL:500" \
	--send "$RESP2@$XD_GLOBAL:500" --send "$RINIT@$XD_GLOBAL:500" >/dev/null
xd_py "$R" udp-peer --port 4500 --timeout 0 --send "$AUTH2@$XD_GLOBAL:4500" \
	--send "$ESP1@$XD_GLOBAL:4500" --send "$ESP2@$XD_GLOBAL:4500" >/dev/null
for k in h1_500 h2_500 h1_4500 h2_4500; do
	pid=P_$k
	wait "${!pid}" || fail "$k receiver failed"
	python3 - "$XD_TMP/$k" "${WANT[$k]}" "$XD_REMOTE_WAN" <<'PY' || fail "$k did not get exactly its own datagrams"
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["datagrams"]
want = sorted(sys.argv[2].split(","))
if sorted(x["payload"] for x in d) != want or any(not x["from"].startswith(sys.argv[3] + ":") for x in d):
    print(sys.argv[1], "got", d, "want", want, file=sys.stderr)
    sys.exit(1)
PY
	xd_ok "$k: exactly its own $(echo "${WANT[$k]}" | tr ',' '\n' | wc -l) datagram(s), byte-identical"
done
[ "$(xd_stat ike_to_host)" -ge $((before_to_host + 3)) ] || fail "ike_to_host did not count 3"
[ "$(xd_stat ike_to_default)" -ge $((before_default + 1)) ] || fail "ike_to_default did not count"
[ "$(xd_stat esp_udp_to_host)" -ge $((before_esp + 2)) ] || fail "esp_udp_to_host did not count 2"
xd_ok "counters: ike_to_host, ike_to_default, esp_udp_to_host"

# ------------------------------------------------ no default host: dropped
xd_step "without a default host a remote's IKE_SA_INIT is dropped and counted"
xd_ctl ike default 500 none
nd_before=$(xd_stat ike_no_default)
xd_bg h1n "$H1" "$XD_TMP/h1n" python3 "$XD_TRAFFIC" udp-peer --port 500 --count 1 --timeout 2
H1N=$XD_LAST_PID
xd_wait_line "$H1N" "$XD_TMP/h1n" listening
xd_py "$R" udp-peer --port 500 --timeout 0 --send "$RINIT@$XD_GLOBAL:500" >/dev/null
wait "$H1N" || fail "receiver failed"
[ "$(jget '["received"]' <"$XD_TMP/h1n")" = 0 ] || fail "IKE_SA_INIT delivered without a default host"
[ "$(xd_stat ike_no_default)" -gt "$nd_before" ] || fail "ike_no_default not counted"
xd_ok "dropped, counted as ike_no_default"

xd_step "outbound ESP-in-UDP from 4500 (the remote's SPI) is forwarded and counted as unchecked"
un_before=$(xd_stat shared_unchecked)
xd_bg re "$R" "$XD_TMP/re" python3 "$XD_TRAFFIC" udp-peer --port 4500 --count 1 --timeout 3
RE=$XD_LAST_PID
xd_wait_line "$RE" "$XD_TMP/re" listening
OUTESP=$(ike --esp 0xc0ffee01 --body 32)
xd_py "$H2" udp-peer --port 4500 --send "$OUTESP@$XD_REMOTE_WAN:4500" --timeout 0 >/dev/null
wait "$RE" || fail "remote receiver failed"
[ "$(jget '["datagrams"][0]["from"]' <"$XD_TMP/re")" = "$XD_GLOBAL:4500" ] || fail "ESP-in-UDP not from G:4500"
[ "$(xd_stat shared_unchecked)" -gt "$un_before" ] || fail "shared_unchecked not counted"
# The hosts' first IKE_SA_INITs may have met an unresolved WAN neighbour
# (counted pass_no_neigh); now it is resolved.
fh_before=$(xd_stat ike_from_host)
xd_py "$H1" udp-peer --port 500 --send "$INIT1@$XD_REMOTE_WAN:500" --timeout 0 >/dev/null
for _ in $(seq 30); do [ "$(xd_stat ike_from_host)" -gt "$fh_before" ] && break; sleep 0.1; done
[ "$(xd_stat ike_from_host)" -gt "$fh_before" ] || fail "ike_from_host not counted"
xd_ok "forwarded from $XD_GLOBAL:4500, counted as shared_unchecked"

# ------------------------------------ the router announces them over RSIP
envget() { sed -n "s/^$2=//p" "$1"; }
# rsip_host TAG [XDNAT-HOST OPTIONS...]: h3 over RSIP until ready; sets H3PID.
rsip_host() {
	local tag=$1
	shift
	xd_bg "xdnat-host h3 $tag" "$(xd_host_ns 3)" "$XD_TMP/h3-$tag.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h3.key" --name h3 \
		--port-count 20 --no-cert --info-file "$XD_TMP/h3-$tag.env" --replace-routes "$@"
	H3PID=$XD_LAST_PID
	xd_wait_line "$H3PID" "$XD_TMP/h3-$tag.log" '^xdnat-host: ready'
}
xd_step "RSIP: a host learns the shared ports from the router (no --shared-ike)"
xd_ctl --state-dir "$STATE" enroll h3 lan "$(xd_host_lan 3)" secret-file "$XD_TMP/h3.key"
rsip_host auto --swan-dir "$XD_TMP/swan3"
E=$XD_TMP/h3-auto.env
[ "$(envget "$E" XDNAT_IKE_PORT)" = 500 ] || { cat "$E"; fail "h3's info file lacks XDNAT_IKE_PORT=500"; }
[ "$(envget "$E" XDNAT_IKE_PORT_NAT_T)" = 4500 ] || { cat "$E"; fail "h3's info file lacks XDNAT_IKE_PORT_NAT_T=4500"; }
python3 - "$E" <<'PY' || { cat "$E"; fail "h3's IKE SPI label/mask do not select SPIs of its own block"; }
import sys
env = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l and not l.startswith("#"))
first, last = (int(x, 0) for x in env["XDNAT_SPIS"].split("-"))
mask, label = int(env["XDNAT_IKE_SPI_MASK"], 0), int(env["XDNAT_IKE_SPI_LABEL"], 0)
assert int(env["XDNAT_SPI_MIN"], 0) == first and int(env["XDNAT_SPI_MAX"], 0) == last
assert label & ~mask == 0 and label >> 32 == first
# every top-32-bit value the label allows lies in the block
lo, hi = label >> 32, (label | (~mask & (2**64 - 1))) >> 32
assert first <= lo <= hi <= last, (hex(lo), hex(hi))
PY
C=$XD_TMP/swan3/strongswan.d/xdnat.conf
grep -Eq '^\s*port = 500$' "$C" && grep -Eq '^\s*port_nat_t = 4500$' "$C" && grep -q spi_label "$C" ||
	{ cat "$C"; fail "h3's strongSwan fragment is not for the shared ports"; }
grep -q "^xdnat-host: ready: .*shared IKE ports: IKE on 500, NAT-T on 4500 (announced by the router)" "$XD_TMP/h3-auto.log" ||
	fail "h3 did not log the announced shared ports"
xd_stop "$H3PID" || fail "xdnat-host h3 did not stop cleanly"
xd_ok "h3 (RSIP, no --shared-ike): XDNAT_IKE_PORT=500, _NAT_T=4500, SPI label in its block; charon port 500/4500"

xd_step "RSIP: --no-shared-ike refuses the announcement"
rsip_host refuse --no-shared-ike
E=$XD_TMP/h3-refuse.env
grep -q '^XDNAT_IKE_' "$E" && { cat "$E"; fail "h3 with --no-shared-ike wrote IKE port settings"; }
grep -q '^XDNAT_PORTS=3' "$E" || { cat "$E"; fail "h3 with --no-shared-ike has no port block"; }
grep -q "^xdnat-host: ready: .*shared IKE ports announced, not used (--no-shared-ike)" "$XD_TMP/h3-refuse.log" ||
	fail "h3 did not log that it refused the shared ports"
P3=$(envget "$E" XDNAT_PORTS)
xd_stop "$H3PID" || fail "xdnat-host h3 did not stop cleanly"
xd_ok "h3 with --no-shared-ike keeps to its own ports ($P3)"

xd_step "summary"
xd_ctl stats | grep -E "ike|esp_udp|shared" || true
xd_ok "shared IKE ports: every host got only its own IKE and ESP-in-UDP"
