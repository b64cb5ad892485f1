#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Local CA end to end (issue 4, docs/LCA.md):
#   - xdnatd runs the LCA (demo root -> LCA made with xdnat-ca); two hosts
#     enrol over RSIP, send CSRs and get certificates for their blocks;
#   - on the remote, xdnat-verify accepts host 1's certificate for host 1's
#     ports and refuses it for host 2's;
#   - host 1 frees its blocks: its certificate is revoked; the remote fetches
#     the CRL from http://G:8080/crl/lca.crl through the router and
#     `openssl verify -crl_check` rejects the certificate (host 2's passes);
#   - xdnat-peer on the remote, which sent ESP to host 1 (so the datapath
#     recorded it as host 1's peer), receives the LCA-signed revocation
#     notice, verifies it against the root, runs its command with the
#     revoked serial and identity, and acknowledges it to xdnatd;
#   - kill -9 xdnatd, restart: `xdnatctl cert list -j` is intact, and a
#     certificate whose allocation lapsed while xdnatd was down is revoked.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.46}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.46.0}
. "$(dirname "$0")/lib/netns.sh"

XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}
XD_VERIFY=${XD_VERIFY:-$XD_BUILD/xdnat-verify}
XD_PEER=${XD_PEER:-$XD_BUILD/xdnat-peer}
LEASE=${LEASE:-30}
POOL=${POOL:-31000-31999}

envget() { sed -n "s/^$2=//p" "$1"; }
certs_json() { xd_ctl --state-dir "$STATE" -j cert list; }
cert_status() { # SERIAL -> status in the store
	certs_json | python3 -c 'import json,sys; s=sys.argv[1].replace(":","").upper()
print(next((c["status"] for c in json.load(sys.stdin) if c["serial"]==s), "absent"))' "$1"
}
fetch_crl() { # OUT: the remote fetches the CRL through G
	xd_ns "$XD_NS_REMOTE" python3 -c 'import sys, urllib.request
d = urllib.request.urlopen(sys.argv[1], timeout=3).read()
open(sys.argv[2], "wb").write(d)' "http://$XD_GLOBAL:8080/crl/lca.crl" "$1"
}

crl_lists() { # OUT SERIAL: fetch the CRL, does it list SERIAL?
	fetch_crl "$1" && openssl crl -inform DER -in "$1" -noout -text | tr -d ':' | grep -qi "$2"
}

start_host() { # I NAME
	local i=$1 name=$2
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/$name.key" \
		--name "$name" --port-count 100 --info-file "$XD_TMP/$name.env" \
		--state-dir "$XD_TMP/hoststate-$name" --replace-routes
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready'
}

xd_init
STATE=$XD_TMP/state
T0=$(date +%s)

xd_step "demo root and LCA for $XD_GLOBAL (xdnat-ca)"
"$XD_CA" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" -K "$XD_TMP/root.key" \
	-o "$XD_TMP/lca.crt" >/dev/null
xd_ok "root.crt, lca.crt (name-constrained to $XD_GLOBAL)"

xd_step "topology and xdnatd with --rsip and the Local CA"
xd_topology 2
ROUTER_OPTS=(--rsip --state-dir "$STATE" --lease "$LEASE" --max-lease "$LEASE" --port-range "$POOL"
	--port-block 100 --unknown drop --ca-key "$XD_TMP/lca.key" --ca-cert "$XD_TMP/lca.crt"
	--crl-period 3600)
xd_start_router "${ROUTER_OPTS[@]}"
grep -q "Local CA on, CRL at http://$XD_GLOBAL:8080/crl/lca.crl" "$XD_TMP/xdnatd.log" ||
	fail "xdnatd did not announce the CRL URL"
xd_ok "xdnatd: Local CA on, CRL at http://$XD_GLOBAL:8080/crl/lca.crl"

xd_step "h1 and h2 enrol over RSIP and get certificates"
for n in h1 h2; do
	xd_ctl --state-dir "$STATE" enroll "$n" secret-file "$XD_TMP/$n.key" >/dev/null
done
start_host 1 h1
start_host 2 h2
for n in h1 h2; do
	crt=$(envget "$XD_TMP/$n.env" XDNAT_CERT) key=$(envget "$XD_TMP/$n.env" XDNAT_KEY)
	[ -s "$crt" ] || fail "$n has no certificate (XDNAT_CERT in $XD_TMP/$n.env)"
	[ "$(stat -c %a "$key")" = 600 ] || fail "$n's private key is not mode 600"
	cat "$crt" "$(envget "$XD_TMP/$n.env" XDNAT_CERT_CHAIN)" >"$XD_TMP/$n-chain.pem"
	xd_info "$n: $(envget "$XD_TMP/$n.env" XDNAT_CERT_IDENTITY) ports $(envget "$XD_TMP/$n.env" XDNAT_PORTS) SPIs $(envget "$XD_TMP/$n.env" XDNAT_SPIS)"
done
[ "$(certs_json | python3 -c 'import json,sys; print(sum(c["status"]=="valid" for c in json.load(sys.stdin)))')" = 2 ] ||
	fail "xdnatctl cert list does not show 2 valid certificates"
xd_ok "both hosts hold certificates; keys stayed on the hosts (mode 600)"

xd_step "the remote verifies h1's certificate: yes for h1's ports, no for h2's"
P1=$(envget "$XD_TMP/h1.env" XDNAT_PORTS) P2=$(envget "$XD_TMP/h2.env" XDNAT_PORTS)
S1=$(envget "$XD_TMP/h1.env" XDNAT_SPIS)
xd_ns "$XD_NS_REMOTE" "$XD_VERIFY" -a "$XD_TMP/root.crt" -c "$XD_TMP/h1-chain.pem" -s "$XD_GLOBAL" \
	-p "$P1" -S "$S1" >"$XD_TMP/v1.out" || fail "xdnat-verify refused h1 for its own ports: $(cat "$XD_TMP/v1.out")"
if xd_ns "$XD_NS_REMOTE" "$XD_VERIFY" -a "$XD_TMP/root.crt" -c "$XD_TMP/h1-chain.pem" -s "$XD_GLOBAL" \
	-p "$P2" >"$XD_TMP/v2.out"; then
	fail "xdnat-verify accepted h1's certificate for h2's ports $P2"
fi
grep -qi "port" "$XD_TMP/v2.out" || fail "the refusal does not name the ports: $(cat "$XD_TMP/v2.out")"
fetch_crl "$XD_TMP/crl0.der"
openssl verify -CAfile "$XD_TMP/root.crt" -untrusted "$XD_TMP/lca.crt" -crl_check \
	-CRLfile <(openssl crl -inform DER -in "$XD_TMP/crl0.der") "$(envget "$XD_TMP/h1.env" XDNAT_CERT)" >/dev/null ||
	fail "openssl verify -crl_check refuses h1's valid certificate"
xd_ok "yes for $P1/$S1, no for $P2 ($(head -1 "$XD_TMP/v2.out")); openssl accepts it with the CRL"

xd_step "the remote sends ESP to h1 (recorded peer) and starts xdnat-peer"
xd_bg xdnat-peer "$XD_NS_REMOTE" "$XD_TMP/xdnat-peer.log" "$XD_PEER" -a "$XD_TMP/root.crt" --once \
	--timeout 30 --crl-out "$XD_TMP/peer.crl" \
	-e "env | grep ^XDNAT_ | sort >'$XD_TMP/peer.env'"
PEER_PID=$XD_LAST_PID
xd_wait_line "$PEER_PID" "$XD_TMP/xdnat-peer.log" 'listening on UDP'
xd_ns "$XD_NS_REMOTE" python3 -c 'import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
for seq in range(1, 4):
    s.sendto(struct.pack("!II", int(sys.argv[2], 0), seq) + bytes(64), (sys.argv[1], 0))' \
	"$XD_GLOBAL" "${S1%-*}"
H1_ID=$(xd_ctl -j lookup spi "${S1%-*}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["host"])')
bpftool -j map dump pinned "$XD_PIN_BASE/$XD_INSTANCE/xdnat_peers" >"$XD_TMP/peers.json"
python3 - "$XD_TMP/peers.json" "$H1_ID" "$XD_REMOTE_WAN" <<'EOF' || fail "the datapath did not record the remote as h1's ESP peer"
import json, socket, struct, sys
rows = json.load(open(sys.argv[1]))
want = (int(sys.argv[2]), socket.inet_aton(sys.argv[3]))
def key(r):
    k = r.get("formatted", {}).get("key") or r["key"]
    if isinstance(k, dict):
        return k["host_id"], struct.pack("=I", k["remote"])
    b = bytes(int(x, 16) for x in k)
    return struct.unpack("=I", b[:4])[0], b[4:8]
assert want in [key(r) for r in rows], rows
EOF
xd_ok "xdnat_peers holds {host $H1_ID, $XD_REMOTE_WAN}; xdnat-peer listens on UDP 4556"

H1_SERIAL=$(envget "$XD_TMP/h1.env" XDNAT_CERT_SERIAL)
H1_IDENTITY=$(envget "$XD_TMP/h1.env" XDNAT_CERT_IDENTITY)
H2_SERIAL=$(envget "$XD_TMP/h2.env" XDNAT_CERT_SERIAL)
cp "$(envget "$XD_TMP/h1.env" XDNAT_CERT)" "$XD_TMP/h1-saved.crt"

xd_step "h1 frees its blocks: certificate revoked, CRL through G, openssl rejects it"
xd_stop "${XD_HOST_PID[1]}" || fail "xdnat-host h1 did not stop cleanly"
[ "$(cert_status "$H1_SERIAL")" = revoked ] || fail "h1's certificate is $(cert_status "$H1_SERIAL") after FREE"
wait_for 10 crl_lists "$XD_TMP/crl1.der" "$H1_SERIAL" || fail "the CRL at G:8080 does not list h1's certificate"
if openssl verify -CAfile "$XD_TMP/root.crt" -untrusted "$XD_TMP/lca.crt" -crl_check \
	-CRLfile <(openssl crl -inform DER -in "$XD_TMP/crl1.der") "$XD_TMP/h1-saved.crt" >"$XD_TMP/ov.out" 2>&1; then
	fail "openssl verify -crl_check accepted the revoked certificate"
fi
grep -q "revoked" "$XD_TMP/ov.out" || fail "openssl's refusal is not 'revoked': $(cat "$XD_TMP/ov.out")"
openssl verify -CAfile "$XD_TMP/root.crt" -untrusted "$XD_TMP/lca.crt" -crl_check \
	-CRLfile <(openssl crl -inform DER -in "$XD_TMP/crl1.der") "$(envget "$XD_TMP/h2.env" XDNAT_CERT)" >/dev/null ||
	fail "h2's certificate no longer verifies"
xd_ok "revoked (cessationOfOperation); openssl: $(grep -o 'certificate revoked' "$XD_TMP/ov.out" | head -1); h2 still valid"

xd_step "xdnat-peer receives and verifies the LCA-signed notice"
xd_stop "$PEER_PID" 30 >/dev/null 2>&1 || true
[ -s "$XD_TMP/peer.env" ] || fail "xdnat-peer ran no command: $(cat "$XD_TMP/xdnat-peer.log")"
grep -qi "^XDNAT_REVOKED_SERIALS=.*$H1_SERIAL" "$XD_TMP/peer.env" ||
	fail "the notice does not name h1's serial $H1_SERIAL: $(cat "$XD_TMP/peer.env")"
grep -q "^XDNAT_REVOKED_0_IDENTITY=$H1_IDENTITY\$" "$XD_TMP/peer.env" ||
	fail "the notice does not carry h1's identity"
grep -q "^XDNAT_NOTICE_GLOBAL=$XD_GLOBAL\$" "$XD_TMP/peer.env" || fail "the notice names another G"
openssl crl -inform DER -in "$XD_TMP/peer.crl" -noout -text | tr -d ':' | grep -qi "$H1_SERIAL" ||
	fail "the CRL carried by the notice does not list h1's certificate"
wait_for 10 grep -q "acknowledged by $XD_REMOTE_WAN" "$XD_TMP/xdnatd.log" ||
	fail "xdnatd never saw the acknowledgement"
xd_ok "$(grep '^notice from' "$XD_TMP/xdnat-peer.log" | cut -c1-110)..."
xd_ok "command ran with XDNAT_REVOKED_SERIALS, _IDENTITY, _REASON=$(envget "$XD_TMP/peer.env" XDNAT_REVOKED_0_REASON); acknowledged"

xd_step "kill -9 xdnatd; h2's allocation lapses while it is down; restart"
certs_json >"$XD_TMP/certs_before.json"
kill -KILL "${XD_HOST_PID[2]}"
wait "${XD_HOST_PID[2]}" 2>/dev/null || true
kill -KILL "$XD_ROUTER_PID"
wait "$XD_ROUTER_PID" 2>/dev/null || true
# The lease lapses in the store's terms while nobody is there (as if down for $LEASE s).
sqlite3 "$STATE/$XD_INSTANCE.db" "UPDATE bindings SET until_ms = 1 WHERE state = 1"
mv "$XD_TMP/xdnatd.log" "$XD_TMP/xdnatd-1.log"
rm -f "$XD_RUN_DIR/$XD_INSTANCE.lock"
xd_start_router "${ROUTER_OPTS[@]}"
certs_json >"$XD_TMP/certs_after.json"
python3 - "$XD_TMP/certs_before.json" "$XD_TMP/certs_after.json" "$H2_SERIAL" <<'EOF' || fail "the issued-certificate list changed across kill -9 (beyond h2's revocation)"
import json, sys
b = {c["serial"]: c for c in json.load(open(sys.argv[1]))}
a = {c["serial"]: c for c in json.load(open(sys.argv[2]))}
h2 = sys.argv[3].replace(":", "").upper()
assert set(a) == set(b), (set(a) ^ set(b))
for s, c in b.items():
    for k in ("host_id", "identity", "ports", "spis", "not_before", "not_after"):
        assert a[s][k] == c[k], (s, k)
assert a[h2]["status"] == "revoked" and a[h2]["reason"] == "cessationOfOperation", a[h2]
EOF
grep -q "revoked: their allocations lapsed while xdnatd was down" "$XD_TMP/xdnatd.log" ||
	fail "xdnatd did not report the recovery revocation"
fetch_crl "$XD_TMP/crl2.der"
openssl crl -inform DER -in "$XD_TMP/crl2.der" -noout -text | tr -d ':' | grep -qi "$H2_SERIAL" ||
	fail "the re-published CRL does not list h2's certificate"
xd_ok "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$XD_TMP/certs_after.json") certificates intact; h2's revoked by recovery; CRL re-published"

xd_step "xdnatctl cert show / revoke"
xd_ctl --state-dir "$STATE" -j cert show "$H2_SERIAL" | python3 -c 'import json, sys
c = json.load(sys.stdin)
assert c["status"] == "revoked" and c["host_id"] == "h2", c' || fail "cert show -j is wrong"
xd_ctl --state-dir "$STATE" cert show "$H1_SERIAL" | grep -q "BEGIN CERTIFICATE" || fail "cert show prints no PEM"
if xd_ctl --state-dir "$STATE" cert revoke "$H2_SERIAL" 2>"$XD_TMP/rv.err"; then
	fail "revoking a revoked certificate succeeded"
fi
grep -q "already revoked" "$XD_TMP/rv.err" || fail "unclear error: $(cat "$XD_TMP/rv.err")"
if xd_ctl --state-dir "$STATE" cert revoke 00 2>/dev/null; then fail "revoked an unknown serial"; fi
xd_ok "show (JSON, PEM), revoke refuses a revoked or unknown serial"

xd_ok "e2e_lca: all checks passed in $(( $(date +%s) - T0 )) s"
