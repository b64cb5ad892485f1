#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Shared IKE ports with real IKE daemons (issue 8, docs/SHARED-IKE.md): two
# hosts behind one xdnat router, both running UNMODIFIED strongSwan 5.9.8 on
# the standard ports UDP 500/4500 of the one global address G, and a
# strongSwan remote that listens on 500/4500 only.
#
#   [remote] ---- [router: xdnatd --rsip --shared-ike-ports on, LCA] ---- h1, h2
#   charon :500/:4500          G: 500/4500 belong to no host             charon :500/:4500 each
#
# The hosts enrol over RSIP (blocks + certificate); xdnat-host --shared-ike
# --swan-dir writes charon.port = 500, port_nat_t = 4500, spi_min/spi_max =
# the SPI block and spi_mask/spi_label so that the top 32 bits of every IKE
# SPI the host picks lie in its block.  Checked:
#   - both hosts bring up IKE_SAs and CHILD_SAs at the same time, both from
#     G:500 then G:4500 (kernel-libipsec fakes a NAT to get ESP in UDP);
#     traffic flows through both tunnels concurrently;
#   - CHILD_SA and IKE_SA rekeys started by the hosts AND by the remote (the
#     remote-initiated IKE rekey puts the host's SPI in the responder
#     position) keep both SAs up and traffic flowing;
#   - captures on the remote's WAN and on each host's LAN: every datagram
#     the remote sent to G:500/4500 reached exactly the host whose SPI block
#     holds the IKE SPI (initiator or responder position, by the Initiator
#     flag) or the ESP SPI, byte-identical, and nothing else reached a host;
#   - the slow-path fraction (xdnatctl -j stats): every inbound datagram of
#     the host-initiated SAs is counted as ike_to_host or esp_udp_to_host;
#     unknown_ike_spi, unknown_spi, unknown_shared, drop_spoof_ike,
#     ike_no_default and ike_to_default stay 0;
#   - a remote-initiated IKE_SA to G:500 reaches the default host
#     (xdnatctl ike default 500 HOST): its IKE_SA_INIT is the one datagram
#     counted as ike_to_default, the rest of that SA is routed by SPI.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.88}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.88.0}
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/strongswan.sh"

REMOTE_INNER=${REMOTE_INNER:-10.99.0.1}      # the remote's tunnel-side address
HOST_INNER_PREFIX=${HOST_INNER_PREFIX:-10.98} # host I: PREFIX.I.1
POOL=${POOL:-20000-29999}
PORTS_PER_HOST=${PORTS_PER_HOST:-100}
XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}

host_inner() { printf '%s.%s.1' "$HOST_INNER_PREFIX" "$1"; }
envget() { sed -n "s/^$2=//p" "$1"; }
stats() { xd_ctl -j stats >"$1" || fail "xdnatctl -j stats failed"; }

T_START=$(date +%s)
xd_init
xs_init
[ -x "$XD_CA" ] || fail "missing $XD_CA: run 'make all' first"
command -v openssl >/dev/null || fail "missing openssl (scripts/deps.sh)"
PKI=$XD_TMP/pki STATE=$XD_TMP/state
mkdir -p "$PKI"

# ---------------------------------------------------------------- set-up
xd_step "PKI: root, the router's LCA, the remote's certificate"
"$XD_CA" init-root -k "$PKI/root.key" -o "$PKI/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$PKI/lca.key" -R "$PKI/root.crt" -K "$PKI/root.key" \
	-o "$PKI/lca.crt" >/dev/null
# The hosts send the LCA certificate itself (a profile strongSwan 5.9.8
# parses: docs/LCA.md); the remote pins it by ca_id.
xs_anchors "$PKI"
xs_remote_pki "$PKI" "$XD_REMOTE_WAN"
xd_ok "root, LCA for $XD_GLOBAL, remote certificate"

xd_step "topology: remote, router (G = $XD_GLOBAL, shared IKE ports 500/4500, Local CA), h1, h2"
xd_topology 2
xd_start_router --rsip --state-dir "$STATE" --port-range "$POOL" --lease 600 \
	--shared-ike-ports on --ca-key "$PKI/lca.key" --ca-cert "$PKI/lca.crt"
grep -q "shared IKE ports 500,4500" "$XD_TMP/xdnatd.log" || fail "xdnatd did not announce the shared ports 500,4500"
for i in 1 2; do
	xd_ctl --state-dir "$STATE" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key" >/dev/null
done
xd_ok "xdnatd up; h1, h2 enrolled"

xd_step "hosts: xdnat-host --shared-ike --swan-dir over RSIP"
declare -A PORTS=() SPIS=() SWAN=() ID=() HID=()
for i in 1 2; do
	SWAN[$i]=$XD_TMP/h$i-swan
	log=$XD_TMP/xdnat-host-h$i.log
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
		--router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" --name "h$i" \
		--port-count "$PORTS_PER_HOST" --info-file "$XD_TMP/h$i.env" --shared-ike \
		--state-dir "$XD_TMP/h$i-state" --swan-dir "${SWAN[$i]}" --swan-ca "$PKI/anchors.pem"
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$log" '^xdnat-host: ready'
	env=$XD_TMP/h$i.env
	PORTS[$i]=$(envget "$env" XDNAT_PORTS)
	SPIS[$i]=$(envget "$env" XDNAT_SPIS)
	[ -n "${SPIS[$i]}" ] || fail "h$i: no SPI block in its info file"
	[ -s "$(envget "$env" XDNAT_CERT)" ] || fail "h$i: no certificate from the LCA"
	frag=${SWAN[$i]}/strongswan.d/xdnat.conf
	grep -q "port = 500\$" "$frag" && grep -q "port_nat_t = 4500\$" "$frag" ||
		fail "h$i: the fragment does not put charon on 500/4500: $(cat "$frag")"
	for k in SPI_MIN SPI_MAX IKE_SPI_MASK IKE_SPI_LABEL; do
		v=$(envget "$env" "XDNAT_$k")
		key=$(tr 'A-Z' 'a-z' <<<"${k#IKE_}")
		grep -q "$key = $v\$" "$frag" || fail "h$i: $key in the fragment is not $v (XDNAT_$k of the info file)"
	done
	grep -q "local_port" "${SWAN[$i]}/swanctl/conf.d/xdnat.conf" &&
		fail "h$i: the swanctl fragment pins a local port in shared mode"
	ID[$i]=$(sed -n 's/^\t\tid = "\(.*\)"$/\1/p' "${SWAN[$i]}/swanctl/conf.d/xdnat.conf")
	HID[$i]=$(xd_ctl -j lookup spi "${SPIS[$i]%-*}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["host"])')
	xd_ok "h$i (host ${HID[$i]}): SPIs ${SPIS[$i]}, IKE SPI label $(envget "$env" XDNAT_IKE_SPI_LABEL)/$(envget "$env" XDNAT_IKE_SPI_MASK), '${ID[$i]}'"
done

# ----------------------------------------------------------- strongSwan
xd_step "strongSwan: remote on 500/4500 only; both hosts' charons on 500/4500"
RD=$(xs_dir remote)
xs_conf remote
cp "$PKI/root.crt" "$RD/swanctl/x509ca/root.crt"
cp "$PKI/remote.crt" "$RD/swanctl/x509/remote.crt"
cp "$PKI/remote.key" "$RD/swanctl/private/remote.key"
{
	echo "connections {"
	for i in 1 2; do
		cat <<EOF
	h$i {
		version = 2
		local_addrs = $XD_REMOTE_WAN
		remote_addrs = $XD_GLOBAL
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = remote.crt
			id = $XD_REMOTE_WAN
		}
		remote {
			auth = pubkey
			id = "${ID[$i]}"
			ca_id = "$XS_LCA_ID"
		}
		children {
			h$i {
				local_ts = $REMOTE_INNER/32
				remote_ts = $(host_inner "$i")/32
				esp_proposals = aes256gcm16
			}
		}
	}
EOF
	done
	echo "}"
} >"$RD/swanctl/swanctl.conf"
for i in 1 2; do
	D=$(xs_dir "h$i")
	xs_conf "h$i" "include ${SWAN[$i]}/strongswan.d/xdnat.conf"
	rm -rf "$D/swanctl"
	ln -s "${SWAN[$i]}/swanctl" "$D/swanctl"
	# Standard ports on both sides: remote_port is left at 500.
	cat >"${SWAN[$i]}/swanctl/swanctl.conf" <<EOF
include conf.d/*.conf
connections {
	remote : xdnat-local {
		version = 2
		remote_addrs = $XD_REMOTE_WAN
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		remote {
			auth = pubkey
			id = $XD_REMOTE_WAN
		}
		children {
			h$i {
				local_ts = $(host_inner "$i")/32
				remote_ts = $REMOTE_INNER/32
				esp_proposals = aes256gcm16
			}
		}
	}
}
EOF
	xd_ns "$(xd_host_ns "$i")" ip addr add "$(host_inner "$i")/32" dev lo
done
xd_ns "$XD_NS_REMOTE" ip addr add "$REMOTE_INNER/32" dev lo
xs_start remote "$XD_NS_REMOTE"
xs_load remote
for i in 1 2; do
	xs_start "h$i" "$(xd_host_ns "$i")"
	xs_load "h$i"
done
listening() { # NS: charon's UDP ports there, sorted
	xd_ns "$1" ss -Hulnp | awk '/charon/ { n = split($4, a, ":"); print a[n] }' | sort -un | tr '\n' ' '
}
for n in remote h1 h2; do
	ns=$XD_NS_REMOTE
	[ "$n" = remote ] || ns=$(xd_host_ns "${n#h}")
	[ "$(listening "$ns")" = "500 4500 " ] || fail "$n's charon listens on '$(listening "$ns")', not on 500 and 4500 only"
done
xd_ok "3 charons, each on UDP 500 and 4500 only"

# ------------------------------------------------------------- captures
RCAP=$XD_TMP/remote.pcap
xd_capture "cap remote" "$XD_NS_REMOTE" "$XD_IF_REMOTE" "$RCAP" --immediate-mode -B 65536 udp
for i in 1 2; do
	xd_capture "cap h$i" "$(xd_host_ns "$i")" "$XD_IF_HOST" "$XD_TMP/h$i.pcap" --immediate-mode -B 65536 ip proto 4
done
stats "$XD_TMP/stats0.json"

xd_step "both hosts bring up their SAs from G:500/4500 at the same time"
t0=$(date +%s%N)
xs_initiate h1 h1 remote &
w1=$!
xs_initiate h2 h2 remote &
w2=$!
ok=1
wait "$w1" || ok=0
wait "$w2" || ok=0
if [ "$ok" = 0 ]; then
	{
		xd_ctl stats
		echo "remote: $(xd_ns "$XD_NS_REMOTE" grep '^Udp:' /proc/net/snmp | tail -n 1)"
		echo "router neighbours: $(xd_ns "$XD_NS_ROUTER" ip neigh | tr '\n' ';')"
	} 2>&1 | sed 's/^/    | /' >&2 || true
	fail "the hosts could not bring up their CHILD_SAs (router counters and the remote's UDP counters above)"
fi
t1=$(date +%s%N)
for i in 1 2; do
	xs_sas remote | grep -q "remote '${ID[$i]}' @ $XD_GLOBAL\[4500\]" ||
		fail "the remote has no IKE_SA with '${ID[$i]}' at $XD_GLOBAL[4500]: $(xs_sas remote | grep remote)"
done
[ "$(xs_sas remote | grep -c ESTABLISHED)" = 2 ] || fail "the remote does not have exactly 2 IKE_SAs"
xd_ok "2 IKE_SAs + CHILD_SAs in $(( (t1 - t0) / 1000000 )) ms; the remote sees both hosts at $XD_GLOBAL[4500]"

TRAFFIC_N=0
traffic() { # WHEN: ping and UDP through both tunnels at once
	local i port=$(( 7700 + TRAFFIC_N++ ))
	declare -A pp=() pu=()
	xd_bg "udp echo" "$XD_NS_REMOTE" "$XD_TMP/echo.out" python3 "$XD_TRAFFIC" udp-echo \
		--bind "$REMOTE_INNER" --port "$port" --count 20 --timeout 15
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/echo.out" listening
	for i in 1 2; do
		xd_ns "$(xd_host_ns "$i")" ping -c 5 -i 0.1 -W 2 -I "$(host_inner "$i")" "$REMOTE_INNER" \
			>"$XD_TMP/ping$i.out" 2>&1 &
		pp[$i]=$!
		xd_py "$(xd_host_ns "$i")" udp-client --dst "$REMOTE_INNER" --port "$port" --count 10 \
			>"$XD_TMP/udp$i.out" &
		pu[$i]=$!
	done
	for i in 1 2; do
		wait "${pp[$i]}" || { cat "$XD_TMP/ping$i.out" >&2; fail "$1: h$i: ping through the tunnel failed"; }
		wait "${pu[$i]}" || fail "$1: h$i: UDP client failed"
		e=$(sed -n 's/.*"echoed": \([0-9]*\).*/\1/p' "$XD_TMP/udp$i.out")
		[ "${e:-0}" -ge 8 ] || fail "$1: h$i: only ${e:-0}/10 UDP echoes through the tunnel"
	done
}
traffic "after set-up"
xd_ok "ping and UDP through both tunnels concurrently"

# ------------------------------------------------------------- rekeying
ike_spis() { xs_sas "$1" | sed -n 's/.* \([0-9a-f]\{16\}\)_[ir]\*.*/\1/p'; }
check_spis() { # WHEN: hosts' own IKE SPIs (top 32 bits) and inbound ESP SPIs in their blocks
	local i x v in out lo hi
	for i in 1 2; do
		lo=$(( ${SPIS[$i]%-*} )) hi=$(( ${SPIS[$i]#*-} ))
		x=$(ike_spis "h$i")
		[ -n "$x" ] || fail "$1: h$i has no IKE_SA"
		while read -r x; do
			v=$(( 0x${x:0:8} ))
			[ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ] || fail "$1: h$i's IKE SPI $x: top 32 bits outside its block ${SPIS[$i]}"
		done <<<"$(ike_spis "h$i")"
		while read -r in out; do
			[ -n "$in" ] || fail "$1: h$i has no CHILD_SA"
			v=$(( 0x$in ))
			[ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ] || fail "$1: h$i's inbound SPI $in is outside its block"
		done < <(xs_child_spis "h$i" "h$i")
	done
}
rekey() { # WHO(h1|remote) WHAT(--child|--ike) NAME I: rekey, wait for new SPIs
	local who=$1 what=$2 name=$3 i=$4 old
	if [ "$what" = --ike ]; then old=$(ike_spis "h$i"); else old=$(xs_child_spis "h$i" "h$i"); fi
	xs_swanctl "$who" --rekey "$what" "$name" >/dev/null || fail "$who: --rekey $what $name failed"
	if [ "$what" = --ike ]; then
		wait_for 10 eval '[ -n "$(ike_spis h'"$i"')" ] && [ "$(ike_spis h'"$i"')" != "$old" ] && [ "$(ike_spis h'"$i"' | wc -l)" = 1 ]' ||
			fail "$who: IKE_SA rekey of h$i did not complete (SPIs $(ike_spis "h$i" | tr '\n' ' '))"
	else
		wait_for 10 eval '[ "$(xs_child_spis h'"$i"' h'"$i"' | wc -l)" = 1 ] && [ "$(xs_child_spis h'"$i"' h'"$i"')" != "$old" ]' ||
			fail "$who: CHILD_SA rekey of h$i did not complete"
	fi
}
check_spis "after set-up"
xd_step "rekeys: each host rekeys its CHILD_SA and IKE_SA, then the remote rekeys both"
for i in 1 2; do
	rekey "h$i" --child "h$i" "$i" &
	rk[$i]=$!
done
wait "${rk[1]}" && wait "${rk[2]}" || fail "host-initiated CHILD_SA rekey failed"
for i in 1 2; do
	rekey "h$i" --ike remote "$i" &
	rk[$i]=$!
done
wait "${rk[1]}" && wait "${rk[2]}" || fail "host-initiated IKE_SA rekey failed"
check_spis "after the hosts' rekeys"
traffic "after the hosts' rekeys"
# The remote's IKE rekey makes it the initiator of the new IKE_SA: the
# host's SPI is then the responder SPI of every later IKE message.
for i in 1 2; do
	rekey remote --ike "h$i" "$i" &
	rk[$i]=$!
done
wait "${rk[1]}" && wait "${rk[2]}" || fail "remote-initiated IKE_SA rekey failed"
for i in 1 2; do
	rekey remote --child "h$i" "$i" &
	rk[$i]=$!
done
wait "${rk[1]}" && wait "${rk[2]}" || fail "remote-initiated CHILD_SA rekey failed"
check_spis "after the remote's rekeys"
for i in 1 2; do
	xs_sas "h$i" | grep -q "_i \([0-9a-f]\{16\}\)_r\*" ||
		fail "h$i: after the remote's IKE rekey the host is not the responder ($(ike_spis "h$i"))"
done
traffic "after the remote's rekeys"
[ "$(xs_sas remote | grep -c ESTABLISHED)" = 2 ] || fail "after the rekeys the remote does not have 2 IKE_SAs"
xd_ok "4 rekeys per host (CHILD and IKE, by host and by remote); SPIs in the blocks; traffic flows"

# ------------------------------------------------ captures and counters
stop_captures() {
	local n k
	sleep 0.5
	for n in "$@"; do
		for ((k = 0; k < ${#XD_PID_NAMES[@]}; k++)); do
			[ "${XD_PID_NAMES[$k]}" = "$n" ] && xd_stop "${XD_PIDS[$k]}" >/dev/null 2>&1 || true
		done
	done
}
# check_captures TAG DEFAULT_HOST: the remote's capture against each host's;
# DEFAULT_HOST gets IKE_SA_INITs of remote initiators (0: none expected).
check_captures() {
	local f
	for f in remote h1 h2; do
		grep -q '^0 packets dropped by kernel' "$XD_TMP/$f.pcap.log" ||
			fail "the capture on $f lost packets: $(grep 'dropped by kernel' "$XD_TMP/$f.pcap.log")"
		python3 "$XD_ROOT/selftests/lib/ike_pcap.py" "$XD_TMP/$f.pcap" >"$XD_TMP/$f.json" ||
			fail "cannot read $f.pcap"
	done
	python3 - "$XD_TMP" "$XD_GLOBAL" "$XD_REMOTE_WAN" "$2" "${SPIS[1]}" "${SPIS[2]}" \
		"$XD_TMP/stats0.json" "$XD_TMP/stats1.json" "$1" <<'PY' || fail "$1: capture or counter check failed (files in $XD_TMP)"
import collections, json, sys
tmp, g, remote, dflt = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
blocks = {i: tuple(int(x, 0) for x in sys.argv[4 + i].split("-")) for i in (1, 2)}
s0, s1 = (json.load(open(p))["counters"] for p in sys.argv[7:9])
tag = sys.argv[9]
d = {k: s1.get(k, {}).get("packets", 0) - s0.get(k, {}).get("packets", 0) for k in set(s0) | set(s1)}
cap = {n: json.load(open("%s/%s.json" % (tmp, n)))["packets"] for n in ("remote", "h1", "h2")}
def owner32(v):
    o = [i for i, (lo, hi) in blocks.items() if lo <= v <= hi]
    return o[0] if len(o) == 1 else None
def owner(p):
    """(host, how) by what the router reads: ESP SPI, or the host's IKE SPI."""
    if p["kind"] == "esp":
        return owner32(int(p["spi"], 16)), "esp"
    if p["kind"] != "ike":
        return None, p["kind"]
    if not p["flags"] & 0x08:                     # remote is the responder
        return owner32(int(p["ispi"][:8], 16)), "ike-ispi"
    if int(p["rspi"], 16):                        # remote initiated: host is the responder
        return owner32(int(p["rspi"][:8], 16)), "ike-rspi"
    return dflt or None, "ike-init-default"
inb = [p for p in cap["remote"] if p["src"] == remote and p["dst"] == g and p["kind"] != "frag"]
outb = [p for p in cap["remote"] if p["src"] == g and p["dst"] == remote and p["kind"] != "frag"]
bad = [p for p in inb + outb if p.get("dport") not in (500, 4500) and p.get("sport") not in (500, 4500)]
assert not bad, "%s: UDP outside 500/4500 between the remote and G: %s" % (tag, bad[:3])
how = collections.Counter()
want = {1: collections.Counter(), 2: collections.Counter()}
for p in inb:
    h, w = owner(p)
    assert h, "%s: the remote sent a datagram no host's block explains: %s" % (tag, p)
    how[w] += 1
    want[h][p["l4"]] += 1
sent = collections.Counter()
for i in (1, 2):
    got = collections.Counter(p["l4"] for p in cap["h%d" % i]
                              if p["src"] == remote and p["dst"] == g and p["kind"] != "frag")
    missing, extra = want[i] - got, got - want[i]
    assert not missing and not extra, "%s: h%d: %d datagrams of its own missing, %d not its own received" % (
        tag, i, sum(missing.values()), sum(extra.values()))
    sent += collections.Counter(p["l4"] for p in cap["h%d" % i]
                                if p["src"] == g and p["dst"] == remote and p["kind"] != "frag")
    for p in cap["h%d" % i]:
        if p["src"] == g and p["kind"] == "ike":
            spi = p["ispi"] if p["flags"] & 0x08 else p["rspi"]
            assert owner32(int(spi[:8], 16)) == i, "%s: h%d sent IKE with SPI %s (not its block)" % (tag, i, spi)
assert sent == collections.Counter(p["l4"] for p in outb), "%s: what the hosts sent is not what the remote got" % tag
# Counters: every inbound datagram was routed by an SPI, except the
# IKE_SA_INITs of remote initiators (the default host).
fast = d.get("ike_to_host", 0) + d.get("esp_udp_to_host", 0)
slow = {k: d.get(k, 0) for k in ("ike_to_default", "ike_no_default", "unknown_ike_spi", "unknown_spi",
                                 "unknown_shared", "drop_spoof_ike", "drop_malformed")}
n_ike = how["ike-ispi"] + how["ike-rspi"]
assert d.get("ike_to_host", 0) == n_ike, "%s: ike_to_host counted %d, the remote sent %d IKE datagrams routed by SPI" % (
    tag, d.get("ike_to_host", 0), n_ike)
assert d.get("esp_udp_to_host", 0) == how["esp"], "%s: esp_udp_to_host counted %d, the remote sent %d ESP-in-UDP" % (
    tag, d.get("esp_udp_to_host", 0), how["esp"])
assert slow["ike_to_default"] == how["ike-init-default"], "%s: ike_to_default %d, expected %d" % (
    tag, slow["ike_to_default"], how["ike-init-default"])
nz = {k: v for k, v in slow.items() if v and k != "ike_to_default"}
assert not nz, "%s: counters that must stay 0: %s" % (tag, nz)
total = len(inb)
assert fast + slow["ike_to_default"] == total, "%s: counters account for %d of %d inbound datagrams" % (
    tag, fast + slow["ike_to_default"], total)
# Later fragments (none expected: IKE fragmentation keeps datagrams small)
fr = lambda ps: collections.Counter(p["l4"] for p in ps if p["kind"] == "frag" and p["src"] == remote)
assert fr(cap["remote"]) == fr(cap["h1"]) + fr(cap["h2"]), "%s: later fragments lost or duplicated" % tag
print("%s: %d datagrams remote -> G:500/4500: %d IKE by initiator SPI, %d IKE by responder SPI, "
      "%d ESP-in-UDP by SPI, %d IKE_SA_INIT to the default host; %d later fragments" % (
      tag, total, how["ike-ispi"], how["ike-rspi"], how["esp"], how["ike-init-default"],
      sum(fr(cap["remote"]).values())))
print("%s: h1 received %d, h2 %d: each exactly its own, byte-identical; %d datagrams G -> remote, "
      "all sent by the hosts" % (tag, sum(want[1].values()), sum(want[2].values()), len(outb)))
print("%s: counters: ike_to_host %d, esp_udp_to_host %d, ike_to_default %d; unknown_ike_spi, unknown_spi, "
      "unknown_shared, drop_spoof_ike, ike_no_default, drop_malformed 0" % (
      tag, d.get("ike_to_host", 0), d.get("esp_udp_to_host", 0), slow["ike_to_default"]))
print("%s: SLOW_PATH %d/%d (%.2f%%)" % (tag, slow["ike_to_default"], total, 100.0 * slow["ike_to_default"] / total))
PY
}
xd_step "captures and counters: each host got only its own datagrams, all routed by SPI"
stop_captures "cap remote" "cap h1" "cap h2"
stats "$XD_TMP/stats1.json"
check_captures "host-initiated" 0 | tee "$XD_TMP/check1.out" | sed 's/^/      /'
xd_ok "host-initiated SAs: slow path 0, every inbound datagram by SPI (ike_to_host + esp_udp_to_host)"

# ---------------------------------------------- remote-initiated, default
xd_step "the remote initiates to G:500: its IKE_SA_INIT goes to the default host (xdnatctl ike default 500 h1)"
xd_ctl ike default 500 "${HID[1]}"
xd_ctl ike list | grep -q "udp 500: .*host ${HID[1]}" || fail "xdnatctl ike list does not show host ${HID[1]} as the default for 500"
xs_swanctl h1 --terminate --ike remote --timeout 5 >/dev/null 2>&1 || true
wait_for 5 eval '! xs_sas remote | grep -q "remote '"'${ID[1]}'"'"' || fail "h1's IKE_SA did not go away"
xd_capture "cap remote" "$XD_NS_REMOTE" "$XD_IF_REMOTE" "$RCAP" --immediate-mode -B 65536 udp
for i in 1 2; do
	xd_capture "cap h$i" "$(xd_host_ns "$i")" "$XD_IF_HOST" "$XD_TMP/h$i.pcap" --immediate-mode -B 65536 ip proto 4
done
stats "$XD_TMP/stats0.json"
xs_initiate remote h1 h1
xs_sas h1 | grep -q "ESTABLISHED" || fail "h1 has no IKE_SA after the remote initiated"
xs_sas h1 | grep -q "_i \([0-9a-f]\{16\}\)_r\*" || fail "h1 is not the responder of the remote's IKE_SA"
traffic "remote-initiated"
rekey remote --child h1 1
check_spis "remote-initiated"
stop_captures "cap remote" "cap h1" "cap h2"
stats "$XD_TMP/stats1.json"
check_captures "remote-initiated" 1 | tee "$XD_TMP/check2.out" | sed 's/^/      /'
xs_sas h2 | grep -q ESTABLISHED || fail "h2 lost its IKE_SA"
xd_ok "IKE_SA_INIT of the remote -> default host h1 (ike_to_default 1); the rest of that SA by h1's responder SPI"

echo
echo "e2e_strongswan_shared: all checks passed in $(( $(date +%s) - T_START )) s"
