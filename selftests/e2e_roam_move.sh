#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A host leaves home and comes back with `xdnat-host mobile --home-router`
# watching (docs/ROAMING.md), while a UDP echo stream from G:port (its
# block) to the remote runs every 10 ms:
#   - at home nothing is registered and the stream goes over the LAN;
#   - its LAN link goes down and a foreign link behind an nftables
#     masquerading NAT comes up (as DHCP would): the agent sees the router
#     is no longer on-link, registers through UDP 434 of G, routes through
#     its BPF tunnel end; the stream resumes through the RFC 3519 tunnel;
#     `xdnatctl mobile show` lists the NAT's address;
#   - back on the LAN: the agent deregisters, the stream goes over the LAN
#     again, nothing is listed;
#   - the remote only ever sees G; the interruption of each move (longest
#     gap between echoes) and the echoes lost are printed.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.53}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.53.0}
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/roam.sh"

MAX_GAP_MS=${MAX_GAP_MS:-5000}   # a move must not interrupt the stream longer
STATE=""

xd_init
STATE=$XD_TMP/state
H1=$(xd_host_ns 1)

xd_step "topology: h1 on the LAN, and a second (down) link to a NAT ($NAT_PUB_NET.2) on the WAN side"
roam_topology

xd_start_router --rsip --mobile --state-dir "$STATE" --lease 60 --unknown drop --mobile-keepalive 5
xd_ctl --state-dir "$STATE" enroll h1 secret-file "$XD_TMP/h1.key"

xd_step "h1 at home: blocks over RSIP (the agent is then killed: its LAN set-up stays, as for a host that keeps it)"
roam_h1_blocks
PORTS=$ROAM_PORTS
PORT=${PORTS%-*}

xd_bg "mobile h1" "$H1" "$XD_TMP/m.log" "$XD_XDNAT_HOST" mobile --home-agent "$XD_GLOBAL" \
	--secret-file "$XD_TMP/h1.key" --name h1 --lifetime 60 --dev "$ROAM_IF_FOREIGN" \
	--home-router "$XD_ROUTER_LAN" --route "$XD_REMOTE_WAN/32"
M=$XD_LAST_PID
sleep 2
grep -q registered "$XD_TMP/m.log" && fail "registered while at home: $(cat "$XD_TMP/m.log")"
[ "$(roam_mobile_count)" = 0 ] ||
	fail "a binding while h1 is at home"
xd_ok "h1 holds ports $PORTS; the agent watches $XD_ROUTER_LAN and stays quiet at home"

xd_bg "udp echo" "$XD_NS_REMOTE" "$XD_TMP/echo.log" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7777))
seen = set()
print("listening", flush=True)
while True:
    d, a = s.recvfrom(2048)
    if a[0] not in seen:
        seen.add(a[0]); print("from", a[0], flush=True)
    s.sendto(d, a)'
xd_wait_line "$XD_LAST_PID" "$XD_TMP/echo.log" listening

xd_step "a UDP echo stream every 10 ms from G:$PORT; move out at 3 s, back at 10 s"
cat >"$XD_TMP/stream.py" <<'PY'
import json, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.setblocking(False)
dur = float(sys.argv[4]); t0 = time.monotonic(); seq = 0; got = {}; last = None
while time.monotonic() - t0 < dur:
    now = time.monotonic()
    try:
        s.sendto(struct.pack("!Id", seq, now), (sys.argv[3], 7777))
    except OSError:
        pass                      # no route for a moment during the move
    seq += 1
    end = now + 0.01
    while time.monotonic() < end:
        try:
            d = s.recv(64)
            n, t = struct.unpack("!Id", d)
            got[n] = time.monotonic() - t0
        except BlockingIOError:
            time.sleep(0.001)
        except OSError:
            time.sleep(0.001)
times = sorted(got.values())
gaps = sorted(((b - a, a) for a, b in zip(times, times[1:])), reverse=True)[:2]
print(json.dumps({"sent": seq, "got": len(got),
                  "gaps": sorted([[round(g * 1000), round(at, 2)] for g, at in gaps], key=lambda x: x[1])}), flush=True)
PY
xd_bg "stream" "$H1" "$XD_TMP/stream.log" python3 "$XD_TMP/stream.py" "$XD_GLOBAL" "$PORT" "$XD_REMOTE_WAN" 16
S=$XD_LAST_PID
sleep 3
xd_info "moving out: LAN link down, foreign link up with a default route (DHCP's part)"
roam_move_out
xd_wait_line "$M" "$XD_TMP/m.log" 'registered: lifetime'
SHOW=$(xd_ctl -j mobile show)
echo "$SHOW" | python3 -c 'import json,sys; e=json.load(sys.stdin)["mobile"]; assert len(e)==1 and e[0]["tunnel_addr"]==sys.argv[1], e' \
	"$NAT_PUB_NET.2" || fail "mobile show after the move: $SHOW"
xd_ok "away: registered, care-of via the NAT $NAT_PUB_NET.2"
sleep 4
xd_info "moving back: foreign link down, LAN link up, the default route via the router again"
roam_move_back

xd_wait_line "$M" "$XD_TMP/m.log" 'deregistered'
[ "$(roam_mobile_count)" = 0 ] ||
	fail "still listed after coming home"
xd_ok "home: deregistered, nothing listed"
wait "$S" || fail "the stream failed: $(cat "$XD_TMP/stream.log")"
R=$(tail -1 "$XD_TMP/stream.log")
python3 - "$R" "$MAX_GAP_MS" <<'PY' || fail "stream: $R"
import json, sys
r = json.loads(sys.argv[1]); lim = int(sys.argv[2])
assert r["got"] > r["sent"] * 0.5, r
(out, t_out), (back, t_back) = r["gaps"]
assert t_out < t_back and out < lim and back < lim, r
PY
read -r OUT_MS BACK_MS SENT GOT <<<"$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["gaps"][0][0], r["gaps"][1][0], r["sent"], r["got"])' "$R")"
grep -q "^from $XD_GLOBAL" "$XD_TMP/echo.log" || fail "the remote did not see G"
grep -Eq "^from ($NAT_PUB_NET|$FOREIGN_NET)" "$XD_TMP/echo.log" && fail "the remote saw the care-of or NAT address"
xd_ok "interruption: move out ${OUT_MS} ms, move back ${BACK_MS} ms; $GOT of $SENT echoes; the remote saw only $XD_GLOBAL"
xd_stop "$M" || true
