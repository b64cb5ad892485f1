#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Roaming host registration end to end (docs/ROAMING.md):
#   - h1 registers over RSIP at home (blocks in the maps), then "leaves"
#     (its agent is killed: nothing is freed);
#   - from a foreign namespace behind an nftables masquerading NAT it
#     registers with `xdnat-host mobile` through UDP 434 of G: the reply
#     comes back accepted; `xdnatctl mobile show` lists the care-of endpoint
#     as the NAT's public address and mapped port; the RSIP lease is renewed
#     by the registration;
#   - the same request replayed (same NAT mapping) is refused with 133, the
#     reply decoded by Scapy's MobileIPRRP (not our code), and changes
#     nothing; a request with a wrong key is refused with 131;
#   - with `xdnat-host mobile --tun`, UDP from G:port (h1's block) to the
#     remote and back goes through the RFC 3519 tunnel via the NAT; the
#     remote sees only G;
#   - the same with the host's tunnel end in BPF (--dev); the tunnel
#     packets on the foreign network decode as Scapy's MobileIPTunnelData;
#   - a registration built in Python (its own HMAC) is accepted and the
#     reply decodes with Scapy field by field (UDP Tunnel Reply, keepalive,
#     authenticator);
#   - deregistration (lifetime 0) clears the endpoint; /metrics counts
#     accepted, refused by code and deregistered.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.52}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.52.0}
. "$(dirname "$0")/lib/netns.sh"

NAT_PUB_NET=${NAT_PUB_NET:-203.0.113}      # the foreign network's public side (RFC 5737)
FOREIGN_NET=${FOREIGN_NET:-10.77.0}         # the hotel LAN behind the NAT
NAT_PORTS=${NAT_PORTS:-40000-40099}          # the NAT maps source ports here
ROAM_IF_FOREIGN=${ROAM_IF_FOREIGN:-eth0}     # the away host's NIC
. "$(dirname "$0")/lib/roam.sh"
LEASE=${LEASE:-20}
STATE=""

SCAPY_PY=""
for py in ${XD_SCAPY_PYTHON:-} python3 /usr/bin/python3; do
	if command -v "$py" >/dev/null && "$py" -c 'import scapy.layers.mobileip' 2>/dev/null; then
		SCAPY_PY=$(command -v "$py")
		break
	fi
done
[ -n "$SCAPY_PY" ] || fail "Scapy is not importable by python3 or /usr/bin/python3: install python3-scapy (scripts/deps.sh does)"

# mip_exchange SPORT (file PATH | build NAI KEY LIFETIME IDLOW): from UDP
# port SPORT of the away host, one registration request to G:434 (the
# bytes in PATH, or one built here with its own HMAC: KEY is a secret file,
# the key derived from it as the router does, or "random"; Identification:
# now in NTP seconds, IDLOW below) and its reply decoded by Scapy (not our
# C code).  Prints: type code lifetime home ha id_echoed id_low_echoed
# reply_len request_len tunnel_code keepalive auth_ok src sport (an
# accepted reply must carry a UDP Tunnel Reply and an authenticator; the
# two "-" on a refusal).
mip_exchange() {
	xd_ns "$NS_AWAY" "$SCAPY_PY" - "$XD_GLOBAL" "$FOREIGN_NET.2" "$@" <<'PY'
import hashlib, hmac, os, socket, struct, sys, time
from scapy.layers.mobileip import MobileIP, MobileIPRRP
g, coa = socket.inet_aton(sys.argv[1]), socket.inet_aton(sys.argv[2])
sport, how = int(sys.argv[3]), sys.argv[4]
key = os.urandom(32)
if how == "file":
    req = open(sys.argv[5], "rb").read()
else:
    nai, keysrc, life, low = sys.argv[5], sys.argv[6], int(sys.argv[7]), int(sys.argv[8], 0)
    if keysrc != "random":
        secret = bytes.fromhex(open(keysrc).read().strip())
        key = hmac.new(secret, b"xdnat-mip-1 mn-ha", hashlib.sha256).digest()
    ident = (int(time.time()) + 2208988800) << 32 | low
    # RFC 5944 3.3: type 1, flags D|T, lifetime, home G, HA G, care-of, id
    req = struct.pack("!BBH4s4s4sQ", 1, 0x22, life, g, g, coa, ident)
    req += bytes([131, len(nai)]) + nai.encode()     # NAI (RFC 2794)
    req += bytes([144, 6, 0, 0, 0, 4, 0, 0])         # UDP Tunnel Request (RFC 3519)
    req += bytes([32, 36]) + struct.pack("!I", 256)  # MH auth, SPI 256
    req += hmac.new(key, req, hashlib.sha256).digest()
qid = int.from_bytes(req[16:24], "big")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", sport))
s.settimeout(3)
s.sendto(req, (sys.argv[1], 434))
data, src = s.recvfrom(2048)
p = MobileIP(data)
r = p[MobileIPRRP]
tun_code = ka = "-"
if r.code <= 1:                                      # accepted
    ext = bytes(r.payload)
    assert ext[:2] == bytes([44, 6]) and ext[2] == 0, ext   # UDP Tunnel Reply, sub-type 0
    tun_code, ka = ext[3], struct.unpack("!H", ext[6:8])[0]
    assert ext[8:14] == bytes([32, 36, 0, 0, 1, 0]), ext[8:14]
ok = hmac.compare_digest(hmac.new(key, data[:-32], hashlib.sha256).digest(), data[-32:])
print(p.type, r.code, r.lifetime, r.homeaddr, r.haaddr, int(r.id == qid),
      int(r.id & 0xffffffff == qid & 0xffffffff), len(data), len(req), tun_code, ka, int(ok),
      src[0], src[1])
PY
}

# tunnel_echoes PORT TAG: from G:PORT in the away host, 5 datagrams (TAG0
# to TAG4) to the remote's echo server; prints how many came back.
tunnel_echoes() {
	xd_ns "$NS_AWAY" python3 - "$XD_GLOBAL" "$1" "$XD_REMOTE_WAN" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(1)
got = 0
for i in range(5):
    m = b"%s%d" % (sys.argv[4].encode(), i)
    s.sendto(m, (sys.argv[3], 7777))
    try:
        d, a = s.recvfrom(2048)
        got += d == m
    except socket.timeout:
        pass
print(got)
PY
}

xd_init
STATE=$XD_TMP/state
NS_AWAY=$XD_TAG-away

xd_step "topology: router with --rsip --mobile, h1 at home; remote -- NAT ($NAT_PUB_NET.2) -- foreign host"
# lib/roam.sh's, with the foreign link on a host of its own (NS_AWAY)
roam_topology "$NS_AWAY"
xd_ns "$ROAM_NS_NAT" ethtool -K outside gro on >/dev/null

xd_start_router --rsip --mobile --state-dir "$STATE" --lease "$LEASE" --max-lease "$LEASE" \
	--unknown drop --mobile-keepalive 5
grep -q "Mobile IPv4 home agent on UDP 434" "$XD_TMP/xdnatd.log" || fail "no home agent line"
xd_ok "xdnatd: home agent on UDP 434; 434 is a router port (passed to the stack under --unknown drop)"

xd_step "h1 registers over RSIP at home, then leaves (agent killed: its blocks stay)"
xd_ctl --state-dir "$STATE" enroll h1 secret-file "$XD_TMP/h1.key"
xd_ctl --state-dir "$STATE" enroll h2 secret-file "$XD_TMP/h2.key"
roam_h1_blocks
PORTS=$ROAM_PORTS
PFIRST=${PORTS%-*}
[ -n "$PFIRST" ] || fail "h1 got no ports"
xd_ok "h1 holds ports $PORTS"

xd_step "from behind the NAT: xdnat-host mobile --once"
xd_ns "$NS_AWAY" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" --secret-file "$XD_TMP/h1.key" \
	--name h1 --once --lifetime 60 --dump-request "$XD_TMP/rrq.bin" >"$XD_TMP/m1.log" 2>&1 ||
	{ sed 's/^/    | /' "$XD_TMP/m1.log"; fail "registration refused or unanswered"; }
grep -q "registered: lifetime 60s, UDP tunnel" "$XD_TMP/m1.log" || fail "no accepted reply: $(cat "$XD_TMP/m1.log")"
SHOW=$(xd_ctl -j mobile show)
python3 - "$SHOW" "$NAT_PUB_NET.2" "$NAT_PORTS" "$FOREIGN_NET.2" "$XD_GLOBAL" <<'PY' || fail "mobile show: $SHOW"
import json, sys
d = json.loads(sys.argv[1]); lo, hi = map(int, sys.argv[3].split("-"))
m = d["mobile"]
assert len(m) == 1, m
e = m[0]
assert e["host"] == "h1" and e["tunnel_addr"] == sys.argv[2], e
assert lo <= e["tunnel_port"] <= hi, e
assert e["care_of"] == sys.argv[4] and e["home"] == sys.argv[5] and e["nat"] and e["encap"] == "udp", e
PY
DIRECT=$(xd_ctl -D -j mobile show)
echo "$DIRECT" | python3 -c 'import json,sys; d=json.load(sys.stdin); e=d["mobile"]; assert d["source"]=="maps" and len(e)==1 and e[0]["tunnel_addr"]==sys.argv[1], d' \
	"$NAT_PUB_NET.2" || fail "mobile show -D (the maps): $DIRECT"
xd_ctl mobile show | grep -Eq "^h1 +[0-9]+ +$XD_GLOBAL +$FOREIGN_NET.2 +$NAT_PUB_NET.2:[0-9]+ +udp +yes" ||
	fail "mobile show (text): $(xd_ctl mobile show)"
xd_ok "xdnatctl mobile show: care-of $FOREIGN_NET.2 via the NAT $(echo "$SHOW" | python3 -c 'import json,sys; e=json.load(sys.stdin)["mobile"][0]; print("%s:%s" % (e["tunnel_addr"], e["tunnel_port"]))')"
# The registration renewed h1's RSIP lease (LEASE s) to its end (60 s + grace).
R=$(xd_ctl --state-dir "$STATE" -j rsip list | python3 -c 'import json,sys; print(min(b["remaining_s"] for b in json.load(sys.stdin)["bindings"] if b["host"] == "h1" and "bind_id" in b))')
[ "$R" -gt "$LEASE" ] || fail "h1's lease was not renewed by the registration ($R s left)"
xd_ok "h1's RSIP lease renewed by the registration: ${R}s left (lease $LEASE s)"

xd_step "replayed request (same source, same NAT mapping): 133, decoded by Scapy"
REPLAY=$(mip_exchange 434 file "$XD_TMP/rrq.bin") || fail "no reply to the replayed request"
read -r TYPE CODE LIFE HOME HA IDOK IDLOW RLEN QLEN _ <<<"$REPLAY"
[ "$TYPE" = 3 ] && [ "$CODE" = 133 ] || fail "replay: type $TYPE code $CODE (want 3, 133)"
[ "$HOME" = "$XD_GLOBAL" ] && [ "$HA" = "$XD_GLOBAL" ] || fail "replay reply: home $HOME, ha $HA"
[ "$IDLOW" = 1 ] || fail "133 reply does not copy the low 32 bits of the Identification: $REPLAY"
[ "$RLEN" -le "$(( QLEN + 66 ))" ] || fail "reply $RLEN bytes for a $QLEN-byte request"
xd_ok "Scapy: MobileIPRRP code 133, home $HOME, HA $HA, id low word copied ($RLEN bytes for $QLEN)"
[ "$(roam_mobile_count)" = 1 ] || fail "the replay changed the bindings: $(xd_ctl -j mobile show)"

xd_step "wrong key (h2's secret under h1's name): 131, nothing changes"
if xd_ns "$NS_AWAY" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" --secret-file "$XD_TMP/h2.key" \
	--name h1 --once --port 4434 >"$XD_TMP/m2.log" 2>&1; then
	fail "a request with the wrong key was accepted"
fi
# Refusals are unauthenticated: the agent ignores them and times out.
grep -q "code 131 without a valid authenticator" "$XD_TMP/m2.log" || fail "no 131: $(cat "$XD_TMP/m2.log")"
xd_ok "refused with 131 (unauthenticated reply, ignored by the agent)"

xd_step "hostile WAN peer: 2,000 datagrams in a burst (junk, bad keys): few replies, none larger"
FLOOD=$(xd_ns "$XD_NS_REMOTE" python3 - "$XD_GLOBAL" <<'PY'
import os, socket, struct, sys, time
g = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
s.setblocking(False)
sent = got = big = 0
gi = socket.inet_aton(g)
for i in range(2000):
    if i % 2:
        m = os.urandom(1 + i % 300)                  # junk
    else:                                           # well formed, wrong key, unknown NAI
        m = struct.pack("!BBH4s4s4sQ", 1, 0x22, 60, gi, gi, gi, i)
        m += bytes([131, 5]) + b"ghost" + bytes([32, 36, 0, 0, 1, 0]) + os.urandom(32)
    s.sendto(m, (g, 434)); sent += 1
    try:
        while True:
            d = s.recv(2048); got += 1; big += len(d) > 66
    except BlockingIOError:
        pass
time.sleep(1)
try:
    while True:
        d = s.recv(2048); got += 1; big += len(d) > 66
except BlockingIOError:
    pass
print(sent, got, big)
PY
)
read -r SENT GOT BIG <<<"$FLOOD"
[ "$GOT" -le 3 ] || fail "$GOT replies to $SENT datagrams from one source (want at most one a second)"
[ "$BIG" = 0 ] || fail "$BIG replies larger than 66 bytes"
xd_ns "$XD_NS_REMOTE" true
kill -0 "$XD_ROUTER_PID" || fail "xdnatd died under the burst"
[ "$(xd_ctl daemon ping >/dev/null && echo ok)" = ok ] || fail "xdnatd does not answer after the burst"
xd_ok "$SENT datagrams from one source: $GOT replies, none above 66 bytes; xdnatd answers"

xd_step "registration round trip through the NAT (20 registrations, --once)"
T=()
for i in $(seq 1 20); do
	t0=$(date +%s%N)
	xd_ns "$NS_AWAY" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" --secret-file "$XD_TMP/h1.key" \
		--name h1 --once --lifetime 60 >/dev/null 2>&1 || fail "registration $i refused"
	T+=($(( ($(date +%s%N) - t0) / 1000 )))
done
MED=$(printf '%s\n' "${T[@]}" | sort -n | sed -n 10p)
xd_ok "median wall time of 'xdnat-host mobile --once' (process start to accepted reply): $((MED / 1000)).$(( (MED % 1000) / 100 )) ms"

xd_step "traffic through the UDP tunnel: UDP from G:$PFIRST to the remote and back"
xd_bg "mobile h1" "$NS_AWAY" "$XD_TMP/m3.log" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" \
	--secret-file "$XD_TMP/h1.key" --name h1 --lifetime 60 --tun xdm0 --route "$XD_REMOTE_WAN/32"
M3=$XD_LAST_PID
xd_wait_line "$M3" "$XD_TMP/m3.log" 'registered: lifetime'
xd_bg "udp echo" "$XD_NS_REMOTE" "$XD_TMP/echo.log" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7777))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(2048); print("from", a[0], flush=True); s.sendto(d, a)'
xd_wait_line "$XD_LAST_PID" "$XD_TMP/echo.log" listening
before=$(xd_stat roam_to_coa)
ECHO=$(tunnel_echoes "$PFIRST" roam)
[ "$ECHO" -ge 4 ] || fail "only $ECHO of 5 UDP echoes came back through the tunnel"
grep -q "^from $XD_GLOBAL" "$XD_TMP/echo.log" || fail "the remote did not see G"
grep -Eq "^from $NAT_PUB_NET|^from $FOREIGN_NET" "$XD_TMP/echo.log" && fail "the remote saw the care-of or NAT address"
[ "$(xd_stat roam_to_coa)" -gt "$before" ] || fail "roam_to_coa did not count"
xd_ok "$ECHO/5 echoes through the tunnel; the remote saw only $XD_GLOBAL"
xd_stop "$M3" || true
RULES=$(xd_ns "$NS_AWAY" ip rule show)
grep -Eq '^0:[[:space:]]+from all lookup local' <<<"$RULES" || fail "the agent did not restore the local rule: $RULES"
grep -q fwmark <<<"$RULES" && fail "the agent left its fwmark rule: $RULES"

xd_step "the same with the host's end in BPF (--dev: G on lo, xdnat_host_roam_* on $ROAM_IF_FOREIGN)"
xd_bg "mobile h1 bpf" "$NS_AWAY" "$XD_TMP/m5.log" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" \
	--secret-file "$XD_TMP/h1.key" --name h1 --lifetime 60 --dev "$ROAM_IF_FOREIGN" --route "$XD_REMOTE_WAN/32"
M5=$XD_LAST_PID
xd_wait_line "$M5" "$XD_TMP/m5.log" 'registered: lifetime'
xd_capture "tcpdump away" "$NS_AWAY" "$ROAM_IF_FOREIGN" "$XD_TMP/tun.pcap" udp port 434
CAP=$XD_LAST_PID
: >"$XD_TMP/echo.log.2"
ECHO=$(tunnel_echoes "$((PFIRST + 1))" bpf)
[ "$ECHO" -ge 4 ] || fail "only $ECHO of 5 UDP echoes came back through the BPF tunnel end"
sleep 1   # let tcpdump read what its filter took
xd_stop "$CAP" || true
TD=$("$SCAPY_PY" - "$XD_TMP/tun.pcap" "$XD_GLOBAL" "$XD_REMOTE_WAN" "$((PFIRST + 1))" <<'PY'
import sys
from scapy.all import rdpcap, IP, UDP
from scapy.layers.mobileip import MobileIP, MobileIPTunnelData
g, remote, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
down = up = 0
for pkt in rdpcap(sys.argv[1]):
    if MobileIPTunnelData not in pkt:
        continue
    t = pkt[MobileIPTunnelData]
    assert pkt[MobileIP].type == 4 and t.nexthdr == 4 and t.res == 0, pkt.summary()
    inner = t[IP]
    if pkt[IP].src == g and pkt[UDP].sport == 434:
        assert inner.src == remote and inner.dst == g and inner[UDP].dport == port, inner.summary()
        down += 1
    elif pkt[UDP].dport == 434:
        assert inner.src == g and inner.dst == remote and inner[UDP].sport == port, inner.summary()
        up += 1
print(down, up)
PY
) || fail "tunnel packets do not decode as RFC 3519 tunnel data"
read -r DOWN UP <<<"$TD"
[ "$DOWN" -ge 4 ] && [ "$UP" -ge 4 ] || fail "tunnel data seen: $DOWN from the router, $UP to it"
xd_ok "Scapy MobileIPTunnelData: $DOWN packets from G:434 (inner remote -> G:$((PFIRST + 1))), $UP to it"
xd_ok "$ECHO/5 echoes with the tc programs as the host's tunnel end"
xd_stop "$M5" || true
[ -z "$(xd_ns "$NS_AWAY" ip -o addr show to "$XD_GLOBAL/32")" ] || fail "G left on lo after the agent stopped"

xd_step "a registration built in Python (hmac, not our C code), the reply decoded by Scapy"
sleep 1
OUT=$(mip_exchange 4435 build h1 "$XD_TMP/h1.key" 30 0xfffffff0) ||
	fail "the Python registration got no (valid) reply"
read -r TYPE CODE LIFE HOME HA IDOK IDLOW RLEN QLEN TCODE KA AUTHOK SRC SPORT <<<"$OUT"
[ "$TYPE $CODE $LIFE $HOME $HA $IDOK $TCODE $KA $AUTHOK $SRC $SPORT" = "3 0 30 $XD_GLOBAL $XD_GLOBAL 1 0 5 1 $XD_GLOBAL 434" ] ||
	fail "reply fields: $OUT"
xd_ok "MobileIPRRP: type 3 code 0 lifetime 30 home/HA $HOME, id echoed; UDP Tunnel Reply code 0 keepalive 5 s; HMAC verifies; from $SRC:$SPORT"

xd_step "an unenrolled host (NAI 'ghost', any key): 131, decoded by Scapy, nothing changes"
# the endpoints without their time-varying fields (lifetime left, ...)
mobile_endpoints() {
	xd_ctl -j mobile show | python3 -c '
import json, sys
keep = lambda k: any(w in k for w in ("name", "host_id", "addr", "port", "coa", "care"))
print(sorted(json.dumps({k: v for k, v in e.items() if keep(k)}, sort_keys=True)
             for e in json.load(sys.stdin)["mobile"]))'
}
BEFORE=$(mobile_endpoints)
sleep 1.2   # refusals are limited to one per source per second
OUT=$(mip_exchange 4436 build ghost random 30 0x1234) || fail "the unenrolled request got no reply"
read -r TYPE CODE LIFE HOME HA IDOK IDLOW RLEN QLEN _ <<<"$OUT"
[ "$TYPE $CODE $IDLOW" = "3 131 1" ] && [ "$RLEN" -le "$(( QLEN + 66 ))" ] ||
	fail "unenrolled: reply fields $OUT (want type 3, code 131, the id's low word, at most 66 bytes more)"
AFTER=$(mobile_endpoints)
[ "$AFTER" = "$BEFORE" ] || fail "the refused request changed the care-of endpoints: $BEFORE -> $AFTER"
[ "$BEFORE" != "[]" ] || fail "no care-of endpoint listed to compare (h1 should be away)"
xd_ok "MobileIPRRP type 3 code 131 (not enrolled), id low word copied, reply no larger than allowed; care-of endpoints unchanged"

xd_step "back home: deregistration (lifetime 0) from the LAN (G on lo there) clears the endpoint"
xd_ns "$(xd_host_ns 1)" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" --secret-file "$XD_TMP/h1.key" \
	--name h1 --deregister >"$XD_TMP/m4.log" 2>&1 || fail "deregistration: $(cat "$XD_TMP/m4.log")"
grep -q "deregistered" "$XD_TMP/m4.log" || fail "no deregistration reply"
[ "$(roam_mobile_count)" = 0 ] || fail "still listed after deregistration"
xd_ok "mobile show is empty"

xd_step "/metrics counts registrations by result"
M=$(curl -sS --max-time 5 --unix-socket "$XD_RUN_DIR/$XD_INSTANCE.metrics" http://localhost/metrics)
echo "$M" | grep -Eq '^xdnat_mobile_registrations_total\{result="accepted"\} [2-9]' || fail "accepted not counted"
echo "$M" | grep -Eq '^xdnat_mobile_registrations_total\{result="deregistered"\} 1$' || fail "deregistered not counted"
echo "$M" | grep -Eq '^xdnat_mobile_registrations_total\{result="refused",code="133",reason="id_mismatch"\} [1-9]' || fail "133 not counted"
echo "$M" | grep -Eq '^xdnat_mobile_registrations_total\{result="refused",code="131",reason="mn_auth_failed"\} [1-9]' || fail "131 not counted"
xd_ok "$(echo "$M" | grep -c '^xdnat_mobile') xdnat_mobile_* series"
