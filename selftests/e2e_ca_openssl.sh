#!/usr/bin/env bash
# Local CA interoperability: certificates from xdnat-ca checked by a verifier
# nobody here wrote (`openssl verify`), and by xdnat-verify.
#   accepted: a host certificate, before and after a CRL that does not list it
#   rejected: an identity outside the LCA's name constraints (forged with the
#             LCA key by `openssl x509`), a revoked one (-crl_check), an
#             expired one
#   xdnat-verify: yes for the host's own ports/SPIs, no for the other host's
#   restart: the issued list survives reopening the database
#   profile (docs/LCA.md): strongSwan's `pki` parses the LCA and host
#             certificates; import-lca names every missing piece of a weak
#             operator certificate; CRLs never go back; the root revokes the
#             LCA (revoke-lca, root-crl); keys and the database are private
# No network, no root needed.  Exit 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
CA="$PWD/$OUT/xdnat-ca"
VERIFY="$PWD/$OUT/xdnat-verify"
for b in "$CA" "$VERIFY"; do
	[ -x "$b" ] || { echo "e2e_ca_openssl: $b missing (make)" >&2; exit 1; }
done
command -v pki >/dev/null || { echo "e2e_ca_openssl: strongSwan's pki missing (scripts/deps.sh)" >&2; exit 1; }

T=$(mktemp -d /tmp/xdnat-e2e-ca.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
G=203.0.113.7
D=7.113.0.203.in-addr.arpa
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
"$CA" init-lca -g "$G" -k lca.key -R root.crt -K root.key -o lca.crt --crl-url http://198.51.100.1/root.crl
openssl x509 -in lca.crt -noout -ext nameConstraints | grep -q "IP:$G/255.255.255.255" \
	&& ok "LCA carries name constraints for $G/32" || bad "LCA name constraints"
openssl x509 -in lca.crt -noout -text | grep -q "Name Constraints: critical" &&
	bad "name constraints critical (strongSwan 5.9.8 cannot parse them)"
ku=$(openssl x509 -in lca.crt -noout -ext keyUsage | tail -1 | tr -d ' ')
[ "$ku" = "CertificateSign,CRLSign" ] && ok "LCA keyUsage is $ku only" || bad "LCA keyUsage $ku"
openssl x509 -in lca.crt -noout -text | grep -q "URI:http://198.51.100.1/root.crl" \
	&& ok "LCA names the root's CRL" || bad "LCA CRL distribution point"
pki --print --in lca.crt >/dev/null 2>err.txt && ok "strongSwan pki parses the LCA certificate" \
	|| bad "pki cannot parse the LCA certificate: $(tail -1 err.txt)"
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
openssl x509 -in h1.crt -noout -ext subjectAltName | grep -q "DNS:10-77-0-11.$D" &&
	ok "h1's identity is DNS:10-77-0-11.$D" || bad "h1 identity"
pki --print --in h1.crt >/dev/null 2>err.txt && ok "strongSwan pki parses h1's certificate" \
	|| bad "pki cannot parse h1: $(tail -1 err.txt)"
nb=$(date -d "$(openssl x509 -in h1.crt -noout -startdate | cut -d= -f2)" +%s)
skew=$(( $(date +%s) - nb ))
[ "$skew" -ge 299 ] && [ "$skew" -le 330 ] && ok "h1's notBefore is ${skew}s ago (backdated 5 min)" \
	|| bad "h1 notBefore ${skew}s ago"
if "$CA" issue "${CAOPTS[@]}" --csr h1.csr --host-id h1 --lan 10.77.0.11 --ports 20000 -o x.crt 2>err.txt; then
	bad "issue without --crl-url or --no-crl-url"
else
	ok "issue without --crl-url or --no-crl-url refused: $(cat err.txt)"
fi
mode=$(stat -c %a ca.db)
[ "$mode" = 600 ] && ok "ca.db created mode 0600" || bad "ca.db mode $mode"
for f in ca.db-wal ca.db-shm; do
	[ ! -e "$f" ] || [ "$(stat -c %a "$f")" = 600 ] || bad "$f mode $(stat -c %a "$f")"
done
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
forge in_ns "IP:$G,DNS:10-9-9-9.$D"
expect_verify OK "a forged identity inside the namespace (control)" -CAfile root.crt -untrusted lca.crt in_ns.crt
forge other_ip "IP:198.51.100.9"
expect_verify FAIL "IP SAN 198.51.100.9" -CAfile root.crt -untrusted lca.crt other_ip.crt
forge lan_ip "IP:$G,IP:10.77.0.11"
expect_verify FAIL "the LAN address as IP SAN" -CAfile root.crt -untrusted lca.crt lan_ip.crt
forge v6 "IP:$G,IP:2001:db8::1"
expect_verify FAIL "an IPv6 SAN" -CAfile root.crt -untrusted lca.crt v6.crt
forge uri_ns "IP:$G,URI:xdnat://$D/10.9.9.9"
expect_verify OK "a URI inside the namespace (control: never issued, xdnat-verify's business)" -CAfile root.crt -untrusted lca.crt uri_ns.crt
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
	--not-before "$now" --lease 2 --no-crl-url -o h3.crt >/dev/null
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
	--lan 10.88.0.4 --ports 5000-5999 --no-crl-url -o h4.crt >/dev/null
expect_verify OK "a host of the imported LCA" -CAfile root.crt -untrusted op.crt h4.crt
openssl x509 -req -in op.csr -CA root.crt -CAkey root.key -set_serial 7 -days 30 -out op-nc.crt 2>/dev/null
if "$CA" import-lca -k op.key -i op-nc.crt -C root.crt 2>err.txt >/dev/null; then
	bad "import-lca accepted a certificate without name constraints"
else
	ok "import-lca refuses a certificate without name constraints: $(cat err.txt)"
fi

echo "== import-lca names what a weak operator certificate lacks"
OPG=198.51.100.20
OPD=20.100.51.198.in-addr.arpa
# weak NAME WANT-IN-ERROR extension-lines...: the operator CA signs op.csr
# with exactly these extensions; import-lca must refuse and say WANT
weak() {
	local name=$1 want=$2 f
	f=w-${1//[^a-z0-9]/_}
	shift 2
	printf '%s\n' "$@" '[dn]' O=xdnat "OU=$OPG" > "$f.ext"
	openssl x509 -req -in op.csr -CA root.crt -CAkey root.key -set_serial "0x$(openssl rand -hex 16)" \
		-days 30 -extfile "$f.ext" -out "$f.crt" 2>/dev/null || { bad "cannot make $name"; return; }
	if "$CA" import-lca -k op.key -i "$f.crt" -C root.crt >/dev/null 2>err.txt; then
		bad "import-lca accepted an LCA certificate $name"
	elif grep -q -- "$want" err.txt; then
		ok "import-lca refuses $name: $(cat err.txt)"
	else
		bad "import-lca refused $name but did not say '$want': $(cat err.txt)"
	fi
}
BC=basicConstraints=critical,CA:TRUE,pathlen:0
KU=keyUsage=critical,keyCertSign,cRLSign
NCIP="permitted;IP:$OPG/255.255.255.255"
NCURI="permitted;URI:$OPD"
NCDNS="permitted;DNS:$OPD"
NCMAIL="permitted;email:$OPD"
NCDIR="permitted;dirName:dn"
nc() { local IFS=,; echo "nameConstraints=$*"; }
weak "without the IP subtree" "iPAddress G/32" "$BC" "$KU" "$(nc "$NCURI" "$NCDNS" "$NCMAIL" "$NCDIR")"
weak "without the URI subtree" "URI <domain>" "$BC" "$KU" "$(nc "$NCIP" "$NCDNS" "$NCMAIL" "$NCDIR")"
weak "without the DNS subtree" "dNSName <domain>" "$BC" "$KU" "$(nc "$NCIP" "$NCURI" "$NCMAIL" "$NCDIR")"
weak "without the e-mail subtree" "rfc822Name <domain>" "$BC" "$KU" "$(nc "$NCIP" "$NCURI" "$NCDNS" "$NCDIR")"
weak "without the dirName subtree" "directoryName" "$BC" "$KU" "$(nc "$NCIP" "$NCURI" "$NCDNS" "$NCMAIL")"
weak "without DNS, e-mail and dirName" "dNSName <domain>, rfc822Name <domain>, directoryName" \
	"$BC" "$KU" "$(nc "$NCIP" "$NCURI")"
weak "with a second IP subtree" "iPAddress G/32 (more than one)" "$BC" "$KU" \
	"$(nc "$NCIP" "permitted;IP:192.0.2.9/255.255.255.255" "$NCURI" "$NCDNS" "$NCMAIL" "$NCDIR")"
weak "with a /24" "outside the profile" "$BC" "$KU" \
	"$(nc "$NCIP" "permitted;IP:192.0.2.0/255.255.255.0" "$NCURI" "$NCDNS" "$NCMAIL" "$NCDIR")"
weak "with a foreign DNS subtree" "different domains" "$BC" "$KU" \
	"$(nc "$NCIP" "$NCURI" "permitted;DNS:bank.example" "$NCMAIL" "$NCDIR")"
ALLNC=$(nc "$NCIP" "$NCURI" "$NCDNS" "$NCMAIL" "$NCDIR")
weak "without pathlen 0" "pathlen" "basicConstraints=critical,CA:TRUE" "$KU" "$ALLNC"
weak "with pathlen 1" "pathlen" "basicConstraints=critical,CA:TRUE,pathlen:1" "$KU" "$ALLNC"
weak "with basicConstraints not critical" "basicConstraints not critical" "basicConstraints=CA:TRUE,pathlen:0" "$KU" "$ALLNC"
weak "with digitalSignature" "exactly keyCertSign and cRLSign" "$BC" \
	"keyUsage=critical,digitalSignature,keyCertSign,cRLSign" "$ALLNC"
weak "without cRLSign" "exactly keyCertSign and cRLSign" "$BC" "keyUsage=critical,keyCertSign" "$ALLNC"
weak "with keyUsage not critical" "keyUsage not critical" "$BC" "keyUsage=keyCertSign,cRLSign" "$ALLNC"
weak "without keyUsage" "no keyUsage" "$BC" "$ALLNC"
printf '%s\n' "$BC" "$KU" "$ALLNC" '[dn]' O=xdnat "OU=$OPG" > full.ext
openssl x509 -req -in op.csr -CA root.crt -CAkey root.key -set_serial 0x$(openssl rand -hex 16) \
	-days 30 -extfile full.ext -out op-full.crt 2>/dev/null
"$CA" import-lca -k op.key -i op-full.crt -C root.crt >out.txt 2>&1 \
	&& ok "import-lca accepts the complete set (control): $(tr '\n' ' ' <out.txt)" || bad "complete set: $(cat out.txt)"

echo "== CRLs never go back"
"$CA" crl "${CAOPTS[@]}" -o c1.crl
"$CA" crl "${CAOPTS[@]}" -o c2.crl
"$CA" crl "${CAOPTS[@]}" -o c3.crl
crlinfo() { openssl crl -in "$1" -noout -crlnumber -lastupdate | cut -d= -f2 | tr '\n' ' '; }
python3 - "$(crlinfo c1.crl)" "$(crlinfo c2.crl)" "$(crlinfo c3.crl)" <<'PY' && ok "three CRLs in a row: numbers and thisUpdate strictly increase" || bad "CRL order: $(crlinfo c1.crl) / $(crlinfo c2.crl) / $(crlinfo c3.crl)"
import sys, email.utils, datetime
rows = []
for a in sys.argv[1:]:
    num, t = a.split(" ", 1)
    rows.append((int(num, 16), datetime.datetime.strptime(t.strip(), "%b %d %H:%M:%S %Y %Z")))
assert all(rows[i][0] < rows[i + 1][0] and rows[i][1] < rows[i + 1][1] for i in range(2)), rows
PY
if "$CA" crl "${CAOPTS[@]}" --now $(( $(date +%s) - 3600 )) -o past.crl 2>err.txt; then
	bad "crl --now in the past accepted"
else
	ok "crl --now an hour ago refused: $(cat err.txt)"
fi

echo "== the root revokes the LCA"
"$CA" root-crl --db root.db -R root.crt -K root.key -o root0.crl
expect_verify OK "h2 with the root's empty CRL and the LCA's CRL" -crl_check_all -CRLfile root0.crl -CRLfile c3.crl -CAfile root.crt -untrusted lca.crt h2.crt
"$CA" revoke-lca --db root.db -R root.crt -i lca.crt >/dev/null
"$CA" root-crl --db root.db -R root.crt -K root.key -o root1.crl
expect_verify FAIL "h2 once the root revoked the LCA" -crl_check_all -CRLfile root1.crl -CRLfile c3.crl -CAfile root.crt -untrusted lca.crt h2.crt
if "$CA" revoke-lca --db root.db -R root.crt -i h2.crt 2>err.txt; then
	bad "revoke-lca accepted a certificate the root did not issue"
else
	ok "revoke-lca refuses a certificate the root did not issue: $(cat err.txt)"
fi
[ "$(stat -c %a root.db)" = 600 ] && ok "root.db is 0600" || bad "root.db mode"

echo "== private keys"
cp lca.key lax.key && chmod 644 lax.key
if "$CA" crl --db ca.db -k lax.key -c lca.crt -o lax.crl 2>err.txt; then
	bad "a world-readable LCA key was used"
else
	ok "world-readable LCA key refused: $(cat err.txt)"
fi
chmod 640 lax.key
"$CA" crl --db ca.db -k lax.key -c lca.crt -o lax.crl 2>/dev/null && bad "a group-readable LCA key was used" \
	|| ok "group-readable LCA key refused"

echo "== refusals"
openssl req -new -newkey rsa:1024 -nodes -keyout weak.key -subj /CN=weak -out weak.csr 2>/dev/null
if "$CA" issue "${CAOPTS[@]}" --csr weak.csr --host-id w --lan 10.77.0.14 --ports 1-2 --no-crl-url -o w.crt 2>err.txt; then
	bad "RSA-1024 CSR accepted"
else
	ok "RSA-1024 CSR refused: $(cat err.txt)"
fi

[ "$fails" -eq 0 ] && echo "e2e_ca_openssl: all checks passed" || echo "e2e_ca_openssl: $fails check(s) failed"
[ "$fails" -eq 0 ]
