#!/usr/bin/env bash
# Local CA interoperability: certificates from xdnat-ca checked by a verifier
# nobody here wrote (`openssl verify`), and by xdnat-verify.
#   accepted: a host certificate, before and after a CRL that does not list it
#   rejected: an identity outside the LCA's name constraints (forged with the
#             LCA key by `openssl x509`), a revoked one (-crl_check), an
#             expired one
#   xdnat-verify: yes for the host's own ports/SPIs, no for the other host's
#   restart: the issued list survives reopening the database
# No network, no root needed.  Exit 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
CA="$PWD/$OUT/xdnat-ca"
VERIFY="$PWD/$OUT/xdnat-verify"
for b in "$CA" "$VERIFY"; do
	[ -x "$b" ] || { echo "e2e_ca_openssl: $b missing (make)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/xdnat-e2e-ca.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
G=203.0.113.7
fails=0
ok()   { echo "  ok   $*"; }
bad()  { echo "  FAIL $*"; fails=$((fails + 1)); }
# expect_verify OK|FAIL description openssl-verify-args...
expect_verify() {
	local want=$1 what=$2
	shift 2
	local out
	if out=$(openssl verify "$@" 2>&1); then
		[ "$want" = OK ] && ok "openssl verify accepts $what" || bad "openssl verify accepted $what: $out"
	else
		[ "$want" = FAIL ] && ok "openssl verify rejects $what ($(grep -o 'error [0-9]* at [0-9]* depth lookup: .*' <<<"$out" | head -1))" \
			|| bad "openssl verify rejected $what: $out"
	fi
}
newcsr() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null; }

echo "== PKI: demo root -> LCA for $G"
"$CA" init-root -k root.key -o root.crt
"$CA" init-lca -g "$G" -k lca.key -R root.crt -K root.key -o lca.crt
openssl x509 -in lca.crt -noout -ext nameConstraints | grep -q "IP:$G/255.255.255.255" \
	&& ok "LCA carries critical name constraints for $G/32" || bad "LCA name constraints"
openssl x509 -in lca.crt -noout -text | grep -q "Name Constraints: critical" || bad "name constraints not critical"
CAOPTS=(--db ca.db -k lca.key -c lca.crt)
URL=http://$G/lca.crl

echo "== issue two hosts from CSRs made by openssl"
newcsr h1
newcsr h2
"$CA" issue "${CAOPTS[@]}" --csr h1.csr --host-id h1 --lan 10.77.0.11 --ports 20000-20999 \
	--spis 0xa1000000-0xa1000fff --lease 3600 --crl-url "$URL" -o h1.crt >/dev/null
"$CA" issue "${CAOPTS[@]}" --csr h2.csr --host-id h2 --lan 10.77.0.12 --ports 21000-21999 \
	--spis 0xa1001000-0xa1001fff --lease 3600 --crl-url "$URL" -o h2.crt >/dev/null
expect_verify OK "host h1" -CAfile root.crt -untrusted lca.crt h1.crt
openssl x509 -in h1.crt -noout -ext subjectAltName | grep -q "IP Address:$G" && ok "h1 has IP SAN $G" || bad "IP SAN"
openssl x509 -in h1.crt -noout -text | grep -q "$URL" && ok "h1 names the CRL URL" || bad "CRL DP"
"$CA" crl "${CAOPTS[@]}" -o empty.crl
expect_verify OK "host h1 with an empty CRL" -crl_check -CRLfile empty.crl -CAfile root.crt -untrusted lca.crt h1.crt

echo "== forged with the LCA key, outside the namespace"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout f.key \
	-subj "/O=xdnat/OU=$G/CN=x@$G" -out f.csr 2>/dev/null
forge() { # name san [subject]
	printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=%s\n' "$2" > "$1.ext"
	openssl x509 -req -in f.csr -CA lca.crt -CAkey lca.key -set_serial "0x$(openssl rand -hex 16)" \
		-days 1 -extfile "$1.ext" ${3:+-subj "$3"} -out "$1.crt" 2>/dev/null
}
forge in_ns "IP:$G,URI:xdnat://7.113.0.203.in-addr.arpa/10.9.9.9"
expect_verify OK "a forged identity inside the namespace (control)" -CAfile root.crt -untrusted lca.crt in_ns.crt
forge other_ip "IP:198.51.100.9"
expect_verify FAIL "IP SAN 198.51.100.9" -CAfile root.crt -untrusted lca.crt other_ip.crt
forge lan_ip "IP:$G,IP:10.77.0.11"
expect_verify FAIL "the LAN address as IP SAN" -CAfile root.crt -untrusted lca.crt lan_ip.crt
forge v6 "IP:$G,IP:2001:db8::1"
expect_verify FAIL "an IPv6 SAN" -CAfile root.crt -untrusted lca.crt v6.crt
forge uri_ip "IP:$G,URI:xdnat://$G/10.77.0.11"
expect_verify FAIL "a URI with an IP-literal host" -CAfile root.crt -untrusted lca.crt uri_ip.crt
forge dns "IP:$G,DNS:www.bank.example"
expect_verify FAIL "DNS SAN www.bank.example" -CAfile root.crt -untrusted lca.crt dns.crt
forge mail "IP:$G,email:ceo@bank.example"
expect_verify FAIL "e-mail SAN ceo@bank.example" -CAfile root.crt -untrusted lca.crt mail.crt
forge dn "IP:$G" "/O=Bank/CN=x@$G"
expect_verify FAIL "subject O=Bank" -CAfile root.crt -untrusted lca.crt dn.crt

echo "== revoked"
serial1=$(openssl x509 -in h1.crt -noout -serial | cut -d= -f2)
"$CA" revoke "${CAOPTS[@]}" "$serial1" >/dev/null
"$CA" crl "${CAOPTS[@]}" -o lca.crl
openssl crl -in lca.crl -noout -text | grep -q "$serial1" && ok "CRL lists $serial1" || bad "CRL content"
openssl crl -in lca.crl -CAfile lca.crt -noout 2>&1 | grep -q "verify OK" && ok "CRL signed by the LCA" || bad "CRL signature"
expect_verify FAIL "revoked h1" -crl_check -CRLfile lca.crl -CAfile root.crt -untrusted lca.crt h1.crt
expect_verify OK "unrevoked h2 with the same CRL" -crl_check -CRLfile lca.crl -CAfile root.crt -untrusted lca.crt h2.crt

echo "== expired"
newcsr h3
now=$(date +%s)
"$CA" issue "${CAOPTS[@]}" --csr h3.csr --host-id h3 --lan 10.77.0.13 --ports 22000-22999 \
	--not-before "$now" --lease 2 -o h3.crt >/dev/null
expect_verify OK "h3 inside its 2-second lease" -attime $((now + 1)) -CAfile root.crt -untrusted lca.crt h3.crt
sleep 3
expect_verify FAIL "expired h3" -CAfile root.crt -untrusted lca.crt h3.crt

echo "== xdnat-verify"
cat h2.crt lca.crt > h2.chain
expect_x() { # want(0|1) description args...
	local want=$1 what=$2 out rc
	shift 2
	set +e
	out=$("$VERIFY" "$@")
	rc=$?
	set -e
	[ "$rc" = "$want" ] && ok "xdnat-verify $what -> $out" || bad "xdnat-verify $what: rc $rc: $out"
}
expect_x 0 "h2, own ports and SPI" -a root.crt -c h2.chain -s "$G" -p 21000,21500-21999 -S 0xa1001abc -r lca.crl
expect_x 1 "h2, h1's port" -a root.crt -c h2.chain -s "$G" -p 20001
expect_x 1 "h2, h1's SPI" -a root.crt -c h2.chain -s "$G" -S 0xa1000001
expect_x 1 "h2 from another address" -a root.crt -c h2.chain -s 198.51.100.9 -p 21000
cat h1.crt lca.crt > h1.chain
expect_x 1 "revoked h1" -a root.crt -c h1.chain -s "$G" -p 20001 -r lca.crl
cat other_ip.crt lca.crt > forged.chain
expect_x 1 "forged IP SAN" -a root.crt -c forged.chain -s "$G"
set +e
"$VERIFY" -a root.crt -s "$G" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 2 ] && ok "xdnat-verify usage error exits 2" || bad "usage exit $rc"
json=$("$VERIFY" -j -a root.crt -c h2.chain -s "$G" -p 21000)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] and d["ports"]=="21000-21999", d' "$json" \
	&& ok "xdnat-verify -j is JSON" || bad "JSON: $json"

echo "== store after reopening"
"$CA" list --db ca.db -j > list.json
python3 - list.json "$serial1" <<'EOF' && ok "list: 3 certificates, h1 revoked (cessationOfOperation)" || bad "list"
import json, sys
rows = json.load(open(sys.argv[1]))
by = {r["host_id"]: r for r in rows}
assert len(rows) == 3, rows
assert by["h1"]["serial"] == sys.argv[2] and by["h1"]["status"] == "revoked", by["h1"]
assert by["h1"]["reason"] == "cessationOfOperation"
assert by["h2"]["status"] == "valid" and by["h3"]["status"] == "expired", rows
EOF
"$CA" show --db ca.db "$serial1" | openssl x509 -noout -serial | grep -q "$serial1" \
	&& ok "show returns the stored certificate" || bad "show"

echo "== LCA certificate from an operator CA (CSR out, certificate in)"
"$CA" init-lca -g 198.51.100.20 -k op.key -r op.csr >/dev/null
openssl x509 -req -in op.csr -CA root.crt -CAkey root.key -set_serial 0x$(openssl rand -hex 16) \
	-days 30 -copy_extensions copyall -out op.crt 2>/dev/null
"$CA" import-lca -k op.key -i op.crt -C root.crt -o op-installed.crt >/dev/null \
	&& ok "import-lca accepts the operator-signed LCA certificate" || bad "import-lca"
newcsr h4
"$CA" issue --db op.db -k op.key -c op-installed.crt -C root.crt --csr h4.csr --host-id h4 \
	--lan 10.88.0.4 --ports 5000-5999 -o h4.crt >/dev/null
expect_verify OK "a host of the imported LCA" -CAfile root.crt -untrusted op.crt h4.crt
openssl x509 -req -in op.csr -CA root.crt -CAkey root.key -set_serial 7 -days 30 -out op-nc.crt 2>/dev/null
if "$CA" import-lca -k op.key -i op-nc.crt -C root.crt 2>err.txt >/dev/null; then
	bad "import-lca accepted a certificate without name constraints"
else
	ok "import-lca refuses a certificate without name constraints: $(cat err.txt)"
fi

echo "== refusals"
openssl req -new -newkey rsa:1024 -nodes -keyout weak.key -subj /CN=weak -out weak.csr 2>/dev/null
if "$CA" issue "${CAOPTS[@]}" --csr weak.csr --host-id w --lan 10.77.0.14 --ports 1-2 -o w.crt 2>err.txt; then
	bad "RSA-1024 CSR accepted"
else
	ok "RSA-1024 CSR refused: $(cat err.txt)"
fi

[ "$fails" -eq 0 ] && echo "e2e_ca_openssl: all checks passed" || echo "e2e_ca_openssl: $fails check(s) failed"
[ "$fails" -eq 0 ]
