#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# xdnatd on an etcd store ([store] backend = etcd, docs/CLUSTER.md):
#   - an etcd member in the router namespace; xdnatd with the Local CA and
#     RSIP reads its [store] section from a configuration file, with a dead
#     member listed first (skipped);
#   - `xdnatctl --config` enrols two hosts into etcd; they register over
#     RSIP, get port blocks and certificates: bindings, certificates and
#     the latest CRL are etcd keys, and no SQLite database is created;
#   - kill -9 xdnatd, restart: the certificates and the bindings are the
#     same, read back from etcd;
#   - etcd stopped (SIGSTOP, as a cluster without quorum looks to a
#     client): `xdnatctl --direct rsip list` fails within the store
#     timeout, naming the endpoints, instead of hanging; it answers again
#     once etcd runs.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.61}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.61.0}
. "$(dirname "$0")/lib/netns.sh"

ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}
PREFIX=/xdnat-e2e

[ -x "$ETCD" ] || { echo "FAIL: etcd not found at $ETCD (install etcd-server, scripts/deps.sh)" >&2; exit 1; }
[ -x "$ETCDCTL" ] || { echo "FAIL: etcdctl not found at $ETCDCTL (install etcd-client, scripts/deps.sh)" >&2; exit 1; }

ctl() { xd_ns "$XD_NS_ROUTER" "$XD_XDNATCTL" -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" --config "$CONF" "$@"; }
keys() { xd_ns "$XD_NS_ROUTER" env ETCDCTL_API=3 "$ETCDCTL" --endpoints http://127.0.0.1:2379 \
	get --prefix --keys-only "$PREFIX/$XD_INSTANCE/$1" | grep -c . || true; }
certs() { ctl -j cert list | python3 -c 'import json,sys
print(" ".join(sorted(c["serial"] + ":" + c["status"] for c in json.load(sys.stdin))))'; }

two_certs() { [ "$(keys ca/certs/)" = 2 ]; }
crl_kept() { [ "$(keys ca/crl_latest)" = 1 ]; }

xd_init
STATE=$XD_TMP/state
CONF=$XD_TMP/xdnatd.conf

xd_step "demo root and LCA for $XD_GLOBAL; topology; etcd in the router namespace"
"$XD_CA" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" -K "$XD_TMP/root.key" \
	-o "$XD_TMP/lca.crt" >/dev/null
xd_topology 2
xd_bg etcd "$XD_NS_ROUTER" "$XD_TMP/etcd.log" "$ETCD" --data-dir "$XD_TMP/etcd" \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster default=http://127.0.0.1:2380
ETCD_PID=$XD_LAST_PID
xd_wait_line "$ETCD_PID" "$XD_TMP/etcd.log" 'ready to serve client requests'
cat >"$CONF" <<EOF
[store]
backend = etcd
# a member that is down: skipped for the next
endpoints = http://127.0.0.1:2381, http://127.0.0.1:2379
prefix = $PREFIX
timeout = 1000
router-id = gw1
EOF
xd_ok "etcd on 127.0.0.1:2379 in $XD_NS_ROUTER; [store] in $CONF"

xd_step "xdnatd with RSIP and the Local CA on the etcd store"
ROUTER_OPTS=(--config "$CONF" --rsip --state-dir "$STATE" --port-range 31000-31999 --port-block 100
	--ca-key "$XD_TMP/lca.key" --ca-cert "$XD_TMP/lca.crt" --crl-period 3600)
for n in h1 h2; do
	ctl enroll "$n" secret-file "$XD_TMP/$n.key" >/dev/null
done
[ "$(keys hosts/)" = 2 ] || fail "the enrolments are not in etcd"
xd_start_router "${ROUTER_OPTS[@]}"
for i in 1 2; do
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" \
		--name "h$i" --port-count 100 --info-file "$XD_TMP/h$i.env" \
		--state-dir "$XD_TMP/hoststate-h$i" --replace-routes
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready'
done
wait_for 10 two_certs || fail "no two certificates in etcd: $(keys ca/certs/)"
[ "$(keys bindings/)" -ge 2 ] || fail "no bindings in etcd"
[ "$(keys hostids/)" = 2 ] || fail "the datapath host ids are not in etcd"
wait_for 10 crl_kept || fail "no CRL kept in etcd (ca/crl_latest)"
[ -z "$(ls "$STATE"/*.db 2>/dev/null)" ] || fail "an SQLite database was created: $(ls "$STATE")"
BEFORE=$(certs)
case "$BEFORE" in *:valid*:valid) ;; *) fail "certificates: $BEFORE" ;; esac
xd_ok "bindings, host ids, 2 valid certificates and the CRL are etcd keys; no $STATE/*.db"

xd_step "kill -9 xdnatd and restart: the state comes back from etcd"
kill -KILL "$XD_ROUTER_PID"
wait "$XD_ROUTER_PID" 2>/dev/null || true
xd_start_router "${ROUTER_OPTS[@]}"
[ "$(certs)" = "$BEFORE" ] || fail "certificates changed across kill -9: $(certs) vs $BEFORE"
ctl -j rsip list | python3 -c 'import json,sys
b = [x for x in json.load(sys.stdin)["bindings"] if x.get("state") == "active"]
sys.exit(0 if len(b) >= 2 else 1)' || fail "the bindings did not survive"
xd_ok "the same certificates and bindings after the restart"

xd_step "etcd stops answering: errors in time, naming the endpoints"
kill -STOP "$ETCD_PID"
T0=$(date +%s%N)
if ctl --direct rsip list >"$XD_TMP/stopped.out" 2>&1; then
	kill -CONT "$ETCD_PID"
	fail "rsip list succeeded with etcd stopped"
fi
MS=$(( ($(date +%s%N) - T0) / 1000000 ))
# the same through the running xdnatd (its control socket): an error too
if ctl rsip list >"$XD_TMP/stopped_d.out" 2>&1; then
	kill -CONT "$ETCD_PID"
	cat "$XD_TMP/stopped_d.out" >&2
	fail "rsip list through xdnatd succeeded (exit 0) with etcd stopped"
fi
kill -CONT "$ETCD_PID"
grep -q "no answer within 1000 ms" "$XD_TMP/stopped_d.out" ||
	{ cat "$XD_TMP/stopped_d.out" >&2; fail "xdnatd's error does not say etcd did not answer"; }
grep -q "no answer within 1000 ms from http://127.0.0.1:2381, http://127.0.0.1:2379" "$XD_TMP/stopped.out" ||
	{ cat "$XD_TMP/stopped.out" >&2; fail "the error does not name the endpoints"; }
[ "$MS" -lt 5000 ] || fail "xdnatctl took $MS ms with timeout 1000"
xd_info "$(head -n 1 "$XD_TMP/stopped.out")"
wait_for 10 ctl --direct rsip list || fail "xdnatctl does not answer after SIGCONT"
xd_ok "failed after $MS ms (timeout 1000 ms), answered again after SIGCONT"

echo
xd_ok "e2e_store_etcd: all checks passed"
