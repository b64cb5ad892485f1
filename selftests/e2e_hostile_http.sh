#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The CRL server on G:8080 under slowloris from the WAN (issue 14):
#   - xdnatd runs RSIP and the Local CA with --unknown drop (the README's
#     deployment); the CRL is served on G:8080;
#   - an attacker on the WAN (a second address of the remote) holds
#     $SLOW connections to G:8080, sending one byte per second on each and
#     reopening every connection the server closes;
#   - meanwhile the remote fetches the CRL through G: it must arrive within
#     $BUDGET s (printed), and the daemon log must not grow by more than a
#     few lines per second;
#   - the same with the $SLOW connections spread over $SPREAD addresses
#     (within the per-address limit: only the global limit holds them).
# CRL_OPTS replaces the CRL server's limits, e.g. the limits of the code
# before issue 14 to see this test fail:
#   CRL_OPTS="--crl-per-address 0 --crl-max-conns 64 --crl-timeout 10"
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.47}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.47.0}
. "$(dirname "$0")/lib/netns.sh"

XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}
XD_ATTACK_WAN=${XD_ATTACK_WAN:-198.51.100.3}   # the attacker's address on the WAN
XD_ATTACK_NET=${XD_ATTACK_NET:-198.51.100}     # ... and PREFIX.100, .101... when spread
SPREAD=${SPREAD:-25}       # addresses of the spread attack
SLOW=${SLOW:-100}          # slow connections held by the attacker
BUDGET=${BUDGET:-3}        # seconds the CRL fetch may take
HOLD=${HOLD:-4}            # seconds of attack before the fetch
read -r -a CRL_LIMITS <<<"${CRL_OPTS:-}"

xd_init
STATE=$XD_TMP/state

xd_step "LCA for $XD_GLOBAL; xdnatd with RSIP, the Local CA and --unknown drop"
"$XD_CA" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" -K "$XD_TMP/root.key" \
	-o "$XD_TMP/lca.crt" >/dev/null
xd_topology 0
xd_ns "$XD_NS_REMOTE" ip addr add "$XD_ATTACK_WAN/$XD_WAN_PLEN" dev "$XD_IF_REMOTE"
xd_start_router --rsip --state-dir "$STATE" --unknown drop --ca-key "$XD_TMP/lca.key" \
	--ca-cert "$XD_TMP/lca.crt" "${CRL_LIMITS[@]}"
URL="http://$XD_GLOBAL:8080/crl/lca.crl"
grep -q "CRL at $URL" "$XD_TMP/xdnatd.log" || fail "xdnatd did not announce $URL"

# fetch SRC: the CRL from SRC through G; prints the milliseconds it took,
# fails if it took longer than $BUDGET s or is not a CRL.
fetch() {
	xd_ns "$XD_NS_REMOTE" python3 - "$URL" "$1" "$BUDGET" "$XD_TMP/crl.der" <<'EOF'
import http.client, sys, time, urllib.parse
url, src, budget, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
u = urllib.parse.urlsplit(url)
t0 = time.monotonic()
try:
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=budget, source_address=(src, 0))
    c.request("GET", u.path)
    r = c.getresponse()
    body = r.read()
except OSError as e:
    print("CRL fetch failed after %.0f ms: %s" % ((time.monotonic() - t0) * 1000, e), file=sys.stderr)
    sys.exit(1)
ms = (time.monotonic() - t0) * 1000
if r.status != 200 or not body.startswith(b"\x30"):
    print("CRL fetch: HTTP %d, %d bytes" % (r.status, len(body)), file=sys.stderr)
    sys.exit(1)
open(out, "wb").write(body)
print("%.0f" % ms)
sys.exit(0 if ms <= budget * 1000 else 1)
EOF
}

xd_step "the remote fetches the CRL through G (no attack)"
MS=$(fetch "$XD_REMOTE_WAN") || fail "no CRL from $URL without an attack"
openssl crl -inform DER -in "$XD_TMP/crl.der" -noout || fail "$URL is not a DER CRL"
xd_ok "CRL in $MS ms"

# The attacker: N connections from the addresses SRCS, one byte per second
# on each, a closed one opened again at once.
cat >"$XD_TMP/slowloris.py" <<'EOF'
import socket, sys, time
dst, port, srcs, n = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4])
req = b"GET /crl/lca.crl HTTP/1.1\r\nHost: x\r\nX-a: " + b"a" * 10000
conns = {}   # slot -> [socket, bytes sent]
opened = 0
def connect(i):
    global opened
    s = socket.socket()
    s.setblocking(False)
    s.bind((srcs[i % len(srcs)], 0))
    s.connect_ex((dst, port))
    conns[i] = [s, 0]
    opened += 1
for i in range(n):
    connect(i)
print("started", flush=True)
while True:
    time.sleep(1)
    for i, c in list(conns.items()):
        s, sent = c
        try:
            if s.send(req[sent % len(req):sent % len(req) + 1]) != 1:
                raise OSError("short")
            c[1] += 1
        except (BlockingIOError, InterruptedError):
            pass   # still connecting: keep it
        except OSError:
            s.close()
            connect(i)   # closed by the server: take the slot again
    print("holding %d, opened %d" % (len(conns), opened), flush=True)
EOF

# attack SRCS WHAT: $SLOW slowloris connections from the addresses SRCS
# (comma-separated), then three CRL fetches from the remote's own address.
attack() {
	local srcs=$1 what=$2 i log0 growth
	xd_step "the attacker holds $SLOW slowloris connections (1 byte/s each) from $what"
	xd_bg slowloris "$XD_NS_REMOTE" "$XD_TMP/slowloris.log" python3 -u "$XD_TMP/slowloris.py" \
		"$XD_GLOBAL" 8080 "$srcs" "$SLOW"
	SLOW_PID=$XD_LAST_PID
	xd_wait_line "$SLOW_PID" "$XD_TMP/slowloris.log" '^started'
	log0=$(stat -c %s "$XD_TMP/xdnatd.log")
	sleep "$HOLD"
	xd_alive "$SLOW_PID" || fail "the slowloris client died: $(tail -3 "$XD_TMP/slowloris.log")"
	for i in 1 2 3; do
		MS=$(fetch "$XD_REMOTE_WAN") || fail "fetch $i: no CRL within ${BUDGET}s under $SLOW slow connections from $what ($(tail -1 "$XD_TMP/slowloris.log"))"
		xd_info "fetch $i from $XD_REMOTE_WAN: $MS ms"
		sleep 1
	done
	xd_ok "the CRL arrives within ${BUDGET}s under $SLOW slow connections from $what (last: $MS ms; attacker: $(tail -1 "$XD_TMP/slowloris.log"))"
	growth=$(( $(stat -c %s "$XD_TMP/xdnatd.log") - log0 ))
	xd_stop "$SLOW_PID" || true
	[ "$growth" -lt 8192 ] || fail "the daemon log grew by $growth bytes in $((HOLD + 3)) s of attack"
	xd_ok "daemon log: +$growth bytes during the attack"
	xd_alive "$XD_ROUTER_PID" || fail "xdnatd died under the attack"
}

attack "$XD_ATTACK_WAN" "one address ($XD_ATTACK_WAN)"
MS1=$MS
SRCS=""
for ((i = 0; i < SPREAD; i++)); do
	a=$XD_ATTACK_NET.$((100 + i))
	xd_ns "$XD_NS_REMOTE" ip addr add "$a/$XD_WAN_PLEN" dev "$XD_IF_REMOTE"
	SRCS+=${SRCS:+,}$a
done
attack "$SRCS" "$SPREAD addresses ($XD_ATTACK_NET.100-$((100 + SPREAD - 1)))"
xd_log "PASS: CRL fetched in $MS1 ms ($SLOW slowloris connections from one address), $MS ms (from $SPREAD)"
