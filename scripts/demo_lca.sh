#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Local CA part of the demo (docs/LCA.md), run by scripts/demo.sh unless
# DEMO_RSIP=0, or on its own: its own namespaces, a demo root CA and an LCA
# for G, xdnatd with --rsip and the LCA; two hosts enrol over RSIP, send
# CSRs and get certificates; prints each certificate's identity and the
# ranges its allocation extension certifies, as a remote peer reads them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
XD_TAG=${XD_TAG:-lca$$}
XD_INSTANCE=${XD_INSTANCE:-demo-lca$$}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.0.0}
. "$ROOT/selftests/lib/netns.sh"

xd_init
STATE=$XD_TMP/state
"$XD_BUILD/xdnat-ca" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
"$XD_BUILD/xdnat-ca" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" \
	-K "$XD_TMP/root.key" -o "$XD_TMP/lca.crt" >/dev/null
xd_topology 2
xd_start_router --rsip --state-dir "$STATE" --port-range 20000-29999 --port-block 250 --unknown pass \
	--ca-key "$XD_TMP/lca.key" --ca-cert "$XD_TMP/lca.crt"
xd_ok "root CA -> LCA for $XD_GLOBAL (name-constrained); $(grep -o 'CRL at [^ ]*' "$XD_TMP/xdnatd.log")"
for i in 1 2; do
	xd_ctl --state-dir "$STATE" enroll "h$i" secret-file "$XD_TMP/h$i.key" >/dev/null
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" --name "h$i" \
		--info-file "$XD_TMP/h$i.env" --state-dir "$XD_TMP/host$i" --replace-routes
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready'
	crt=$(sed -n 's/^XDNAT_CERT=//p' "$XD_TMP/h$i.env")
	chain=$(sed -n 's/^XDNAT_CERT_CHAIN=//p' "$XD_TMP/h$i.env")
	cat "$crt" "$chain" >"$XD_TMP/h$i-chain.pem"
	# What a remote peer sees: the chain verified to the root, the identity
	# and the certified ranges, read from the certificate itself.
	"$XD_BUILD/xdnat-verify" -j -a "$XD_TMP/root.crt" -c "$XD_TMP/h$i-chain.pem" -s "$XD_GLOBAL" |
		python3 -c 'import json, sys
v = json.load(sys.stdin)
print("      h%s: %s  %s" % (sys.argv[1], v.get("identity"), "valid" if v.get("ok") else "NOT VALID: " + v.get("reason", "")))
print("          global %s  ports %s  SPIs %s  serial %s" % (v.get("global"), v.get("ports"), v.get("spis"), v.get("serial")))' "$i"
done
xd_step "issued certificates (xdnatctl cert list)"
xd_ctl --state-dir "$STATE" cert list | sed 's/^/      /'
