#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# IKE_SA + CHILD_SA establishment time of unmodified strongSwan through
# xdnat vs direct, in the same run (issue 7's closing note).
#
#   through xdnat:  [remote] ---- [router: xdnatd, XDP, RSIP + LCA] ---- switch ---- [h1]
#   direct:         [dremote] ------------- veth ------------------------------- [dhost]
#
# Both pairs run the same charon configuration: h1 and dhost share
# xdnat-host's --swan-dir output (same fragment: ports and SPIs of h1's
# block; same key, certificate and identity; dhost owns G itself), remote
# and dremote have the same swanctl.conf, certificates and the LCA's CRL
# (loaded, so neither fetches it during the measurement).  The host
# initiates (swanctl --initiate --child: IKE_SA_INIT, IKE_AUTH with the
# CHILD_SA), then terminates; the two paths alternate, after one warm-up
# each.  Measured in the host's charon log (ms timestamps, "initiating
# IKE_SA" to "CHILD_SA established") and as the swanctl call's wall time
# (which adds a fixed ~30-40 ms of process start and vici round trip).
# Prints medians and their ratio; asserts only that every set-up succeeds
# and that traffic flows through both tunnels.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.78}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.78.0}
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/strongswan.sh"

RUNS=${RUNS:-15}                             # measured set-ups per path
REMOTE_INNER=${REMOTE_INNER:-10.99.0.1}
HOST_INNER=${HOST_INNER:-10.98.1.1}
POOL=${POOL:-20000-29999}
XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}
CRL_URL="http://$XD_GLOBAL:8080/crl/lca.crl"
envget() { sed -n "s/^$2=//p" "$1"; }

T_START=$(date +%s)
xd_init
xs_init
[ -x "$XD_CA" ] || fail "missing $XD_CA: run 'make all' first"
PKI=$XD_TMP/pki STATE=$XD_TMP/state
mkdir -p "$PKI"

xd_step "PKI, xdnat topology with one host, and a direct pair without xdnat"
"$XD_CA" init-root -k "$PKI/root.key" -o "$PKI/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$PKI/lca.key" -R "$PKI/root.crt" -K "$PKI/root.key" \
	-o "$PKI/lca.crt" >/dev/null
xs_anchors "$PKI"
xs_remote_pki "$PKI" "$XD_REMOTE_WAN"

xd_topology 1
xd_start_router --rsip --state-dir "$STATE" --port-range "$POOL" --lease 600 \
	--ca-key "$PKI/lca.key" --ca-cert "$PKI/lca.crt"
xd_ctl --state-dir "$STATE" enroll h1 lan "$(xd_host_lan 1)" secret-file "$XD_TMP/h1.key" >/dev/null
SWAN=$XD_TMP/h1-swan
xd_bg "xdnat-host h1" "$(xd_host_ns 1)" "$XD_TMP/xdnat-host-h1.log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
	--router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h1.key" --name h1 --port-count 200 \
	--info-file "$XD_TMP/h1.env" --state-dir "$XD_TMP/h1-state" --swan-dir "$SWAN" --swan-ca "$PKI/anchors.pem"
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h1.log" '^xdnat-host: ready'
[ -f "$SWAN/strongswan.d/xdnat.conf" ] || fail "xdnat-host wrote no $SWAN/strongswan.d/xdnat.conf"
ID=$(xs_swan_id "$SWAN")
[ -n "$ID" ] || fail "no IKE identity in $SWAN/swanctl/conf.d/xdnat.conf"

# The direct pair: the same addresses, one veth, no router.  dhost owns G.
NS_DR=${XD_TAG}-dremote NS_DH=${XD_TAG}-dhost
xd_netns_add "$NS_DR"
xd_netns_add "$NS_DH"
ip -n "$NS_DH" link add eth0 type veth peer name eth0 netns "$NS_DR"
ip -n "$NS_DR" addr add "$XD_REMOTE_WAN/$XD_WAN_PLEN" dev eth0
ip -n "$NS_DR" link set eth0 up
ip -n "$NS_DR" route add "$XD_GLOBAL/32" dev eth0
ip -n "$NS_DH" addr add "$XD_GLOBAL/32" dev eth0
ip -n "$NS_DH" link set eth0 up
ip -n "$NS_DH" route add "$XD_REMOTE_WAN/32" dev eth0 src "$XD_GLOBAL"
xd_ns "$NS_DH" ping -c 1 -W 2 "$XD_REMOTE_WAN" >/dev/null || fail "direct pair: no ping from G to the remote"

# The LCA's CRL, fetched once through G, goes to both remotes.
xd_ns "$XD_NS_REMOTE" python3 -c 'import sys, urllib.request
open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=5).read())' "$CRL_URL" "$PKI/lca.crl" ||
	fail "cannot fetch $CRL_URL through G"
xd_ok "h1 enrolled over RSIP (identity '$ID'); direct pair up; CRL fetched from $CRL_URL"

xd_step "charon on remote, h1, dremote, dhost: the same configuration on both paths"
for r in remote dremote; do
	xs_remote_setup "$r" "$PKI"
	cp "$PKI/lca.crl" "$(xs_dir "$r")/swanctl/x509crl/lca.crl"
	{
		echo "connections {"
		xs_remote_conn h1 "$XD_REMOTE_WAN" "$XD_GLOBAL" "$ID" "$REMOTE_INNER/32" "$HOST_INNER/32"
		echo "}"
	} >"$(xs_dir "$r")/swanctl/swanctl.conf"
done
xs_host_setup h1 "$SWAN" "$XD_REMOTE_WAN" net "$HOST_INNER/32" "$REMOTE_INNER/32"
# dhost: the same strongswan.conf (fragment included) and swanctl directory.
xs_conf dhost "include $SWAN/strongswan.d/xdnat.conf"
rm -rf "$(xs_dir dhost)/swanctl"
ln -s "$SWAN/swanctl" "$(xs_dir dhost)/swanctl"
# Milliseconds in every daemon's log: the set-up time inside charon.
for n in remote dremote h1 dhost; do
	printf 'charon {\n\tfilelog {\n\t\tmain {\n\t\t\ttime_add_ms = yes\n\t\t}\n\t}\n}\n' >>"$(xs_dir "$n")/strongswan.conf"
done
for ns in "$XD_NS_REMOTE" "$NS_DR"; do xd_ns "$ns" ip addr add "$REMOTE_INNER/32" dev lo; done
for ns in "$(xd_host_ns 1)" "$NS_DH"; do xd_ns "$ns" ip addr add "$HOST_INNER/32" dev lo; done
xs_start remote "$XD_NS_REMOTE"
xs_start dremote "$NS_DR"
xs_start h1 "$(xd_host_ns 1)"
xs_start dhost "$NS_DH"
for n in remote dremote h1 dhost; do xs_load "$n"; done
xd_ok "4 charons (kernel-libipsec); h1 and dhost on ports $(sed -n 's/^[[:space:]]*port = //p' "$SWAN/strongswan.d/xdnat.conf" | head -n 1)/$(sed -n 's/^[[:space:]]*port_nat_t = //p' "$SWAN/strongswan.d/xdnat.conf" | head -n 1)"

# setup HOST REMOTE: one IKE_SA + CHILD_SA set-up from HOST; its time in us
# in US (not printed: fail must run in this shell, not a subshell); checks
# the SAs on both sides, then deletes them.
setup() {
	local h=$1 r=$2 t0 t1 out
	t0=$(date +%s%N)
	out=$(xs_swanctl "$h" --initiate --child net --ike remote --timeout 15 2>&1) || {
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /' >&2
		fail "$h: IKE_SA + CHILD_SA set-up to $r failed"
	}
	t1=$(date +%s%N)
	xs_sas "$h" | grep -q ESTABLISHED || fail "$h: no ESTABLISHED IKE_SA after --initiate"
	xs_sas "$h" | grep -q 'INSTALLED' || fail "$h: no INSTALLED CHILD_SA after --initiate"
	xs_sas "$r" | grep -q "remote '$ID' @ $XD_GLOBAL\[" || fail "$r: no IKE_SA with '$ID' at $XD_GLOBAL"
	if [ "${PING:-0}" = 1 ]; then
		xd_ns "${XS_NS[$h]}" ping -c 3 -i 0.2 -W 2 -I "$HOST_INNER" "$REMOTE_INNER" >/dev/null ||
			fail "$h: no traffic through the tunnel to $r"
	fi
	# not timed: a loaded machine may take its time (the delete exchange
	# waits for the peer's answer)
	out=$(xs_swanctl "$h" --terminate --ike remote --timeout 30 2>&1) || {
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /' >&2
		fail "$h: --terminate failed"
	}
	wait_for 10 eval '! xs_sas '"$r"' | grep -q ESTABLISHED' || fail "$r: IKE_SA not deleted"
	US=$(( (t1 - t0) / 1000 ))
}

# baseline NAME: a swanctl call that does no IKE (--stats), in us: the
# fixed cost (process start, vici round trip) inside every measurement.
baseline() {
	local t0 t1
	t0=$(date +%s%N)
	xs_swanctl "$1" --stats >/dev/null || fail "$1: swanctl --stats failed"
	t1=$(date +%s%N)
	US=$(( (t1 - t0) / 1000 ))
}

xd_step "IKE_SA + CHILD_SA set-up: through xdnat vs direct, $RUNS runs each, interleaved"
PING=1 setup h1 remote
PING=1 setup dhost dremote
xd_ok "warm-up: traffic flows through both tunnels (ping $HOST_INNER -> $REMOTE_INNER)"
X=() D=() B=()
for ((k = 0; k < RUNS; k++)); do
	# Alternate which path goes first, so neither always follows the other.
	if (( k % 2 == 0 )); then
		setup h1 remote; X+=("$US")
		setup dhost dremote; D+=("$US")
	else
		setup dhost dremote; D+=("$US")
		setup h1 remote; X+=("$US")
	fi
	baseline h1; B+=("$US")
	sleep 0.1
done
grep -q "fetching crl" "$(xs_log remote)" "$(xs_log dremote)" &&
	fail "a remote fetched the CRL during the measurement (it was loaded): the paths differ"
# In-daemon time from the host's log: "initiating IKE_SA remote[N]" to
# "CHILD_SA net{..} established" of the same IKE_SA; IKE_SA 1 was the
# warm-up, 2..RUNS+1 the measured ones.
python3 - "$RUNS" "$(xs_log h1)" "$(xs_log dhost)" "${X[*]}" "${D[*]}" "${B[*]}" <<'PY' | tee "$XD_TMP/timing.txt"
import re, statistics, sys
runs = int(sys.argv[1])
def charon(log):
    t0, dt = {}, {}
    sec = lambda h, m, s: int(h) * 3600 + int(m) * 60 + float(s)
    for line in open(log):
        m = re.match(r"(\d+):(\d+):([\d.]+) \d+\[IKE\] <remote\|(\d+)> (.*)", line)
        if not m:
            continue
        t, n, msg = sec(*m.group(1, 2, 3)), int(m.group(4)), m.group(5)
        if msg.startswith("initiating IKE_SA remote["):
            t0[n] = t
        elif re.match(r"CHILD_SA net\{\d+\} established", msg) and n in t0 and n not in dt:
            dt[n] = (t - t0[n]) * 1000
    got = [dt[n] for n in range(2, runs + 2) if n in dt]
    assert len(got) == runs, "%s: %d of %d measured set-ups found" % (log, len(got), runs)
    return got
x, d = charon(sys.argv[2]), charon(sys.argv[3])
xw, dw, b = ([int(v) / 1000 for v in a.split()] for a in sys.argv[4:7])
fmt = lambda v: " ".join("%.0f" % t for t in v)
med = statistics.median
print("      in charon, through xdnat (ms): %s" % fmt(x))
print("      in charon, direct        (ms): %s" % fmt(d))
print("      swanctl --initiate wall time, through xdnat / direct (ms): %s / %s" % (fmt(xw), fmt(dw)))
print("      swanctl --stats wall time (ms, the fixed cost of a swanctl call): %s" % fmt(b))
print("RESULT IKE_SA + CHILD_SA in charon: through xdnat median %.1f ms, direct median %.1f ms, ratio %.2f; "
      "swanctl wall time medians %.1f / %.1f ms (ratio %.2f, of which %.1f ms is the swanctl call itself)" % (
      med(x), med(d), med(x) / med(d), med(xw), med(dw), med(xw) / med(dw), med(b)))
PY
xd_ok "$(sed -n 's/^RESULT //p' "$XD_TMP/timing.txt")"
xs_sas h1 | grep -q ESTABLISHED && fail "h1 still has an IKE_SA"
PING=1 setup h1 remote
PING=1 setup dhost dremote
xd_ok "after the runs: both paths still set up SAs and carry traffic"
echo
echo "e2e_strongswan_timing: all checks passed in $(( $(date +%s) - T_START )) s"
