#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# RSIP across `kill -9 xdnatd` (docs/CONTROL-PLANE.md, "State and crash
# safety"), and operator eviction:
#   - h1 and h2 hold blocks over RSIP and carry traffic (a paced UDP stream
#     and a slow TCP transfer) while xdnatd is SIGKILLed and, seconds later,
#     restarted with the same --state-dir: not one datagram is lost and the
#     TCP transfer arrives intact (the pinned maps keep forwarding);
#   - `xdnatctl rsip list` is the same before and after (lease times aside),
#     and h1 and h2 renew their leases against the new daemon;
#   - h3 stopped renewing just before the kill, and its lease lapses while
#     xdnatd is down: the restarted daemon expires it at once (out of the
#     maps, into quarantine);
#   - `xdnatctl rsip evict h2` takes all of h2's blocks out of the maps at
#     once, into quarantine; h2's agent is refused at its next renewal and
#     exits 1; an unknown name changes nothing and exits 1.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.46}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.46.0}
. "$(dirname "$0")/lib/netns.sh"

LEASE=16          # h1, h2: renewed every 8 s
SHORT_LEASE=3     # h3: lapses while xdnatd is down
DOWN=5            # seconds xdnatd stays down
QUARANTINE=60
POOL=31000-31999
STREAM_S=12       # the traffic spans the kill, the outage and the restart
STATE=""

jlast() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(eval("d"+sys.argv[1]))' "$1"; }
envget() { sed -n "s/^$2=//p" "$1"; }
owner() { xd_ctl -j lookup port "$1" | jlast '["host"]'; }
rsip_list() { xd_ctl --state-dir "$STATE" -j rsip list; }
# The bindings of host $1 from `rsip list -j` on stdin, one per line, lease time left out.
bindings_of() {
	python3 -c '
import json, sys
for b in json.load(sys.stdin)["bindings"]:
    if b["host"] == sys.argv[1] and "bind_id" in b:
        b.pop("remaining_s")
        print(json.dumps(b, sort_keys=True))' "$1"
}
# How many of host $1's bindings are active.
active_of() {
	rsip_list | python3 -c '
import json, sys
print(sum(1 for b in json.load(sys.stdin)["bindings"]
          if b["host"] == sys.argv[1] and b.get("state") == "active"))' "$1"
}

start_host() {
	local i=$1
	shift
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" \
		--name "h$i" --port-count 300 --info-file "$XD_TMP/h$i.env" --replace-routes "$@"
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready'
}

ROUTER_OPTS=()
xd_init
STATE=$XD_TMP/state
ROUTER_OPTS=(--rsip --state-dir "$STATE" --lease "$LEASE" --max-lease "$LEASE"
	--quarantine "$QUARANTINE" --port-range "$POOL" --unknown drop --keep-maps)

xd_step "topology: global $XD_GLOBAL, LAN $XD_LAN_PREFIX.0/24, 3 hosts; xdnatd --rsip"
xd_topology 3
xd_start_router "${ROUTER_OPTS[@]}"
for i in 1 2 3; do
	xd_ctl --state-dir "$STATE" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key"
done
start_host 1
start_host 2
start_host 3 --lease "$SHORT_LEASE"
P1=$(envget "$XD_TMP/h1.env" XDNAT_PORTS) P2=$(envget "$XD_TMP/h2.env" XDNAT_PORTS)
P3=$(envget "$XD_TMP/h3.env" XDNAT_PORTS)
for p in "$P1" "$P2" "$P3"; do
	[ "$(owner "${p%-*}")" != 0 ] || fail "ports $p are not in the maps"
done
H3_ID=$(owner "${P3%-*}")
xd_ok "h1 $P1, h2 $P2, h3 $P3 (lease ${SHORT_LEASE}s, map host $H3_ID) registered over RSIP"

xd_step "traffic through h1 (UDP stream) and h2 (slow TCP transfer)"
R=$XD_NS_REMOTE
xd_bg ucount "$R" "$XD_TMP/ucount" python3 "$XD_TRAFFIC" udp-count --port 5400 --idle 3 \
	--timeout $((STREAM_S + 30))
UCOUNT=$XD_LAST_PID
xd_wait_line "$UCOUNT" "$XD_TMP/ucount" listening
xd_bg tserver "$R" "$XD_TMP/tserver" python3 "$XD_TRAFFIC" tcp-server --port 5401 \
	--timeout $((STREAM_S + 30))
TSERVER=$XD_LAST_PID
xd_wait_line "$TSERVER" "$XD_TMP/tserver" listening
xd_bg ustream "$(xd_host_ns 1)" "$XD_TMP/ustream" python3 "$XD_TRAFFIC" udp-stream \
	--dst "$XD_REMOTE_WAN" --port 5400 --rate 500 --seconds "$STREAM_S"
USTREAM=$XD_LAST_PID
# A TCP connection that stays open across the outage: 4 KiB every 20 ms.
xd_bg tclient "$(xd_host_ns 2)" "$XD_TMP/tclient" python3 -c '
import hashlib, json, socket, sys, time
dst, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((dst, port), timeout=30)
h, n, seq, t0 = hashlib.sha256(), 0, 0, time.monotonic()
while time.monotonic() - t0 < secs:
    chunk = seq.to_bytes(8, "big") * 512
    s.sendall(chunk)
    h.update(chunk)
    n += len(chunk)
    seq += 1
    time.sleep(0.02)
s.shutdown(socket.SHUT_WR)
while s.recv(4096):
    pass
print(json.dumps({"sha256": h.hexdigest(), "bytes": n, "sport": s.getsockname()[1]}))
' "$XD_REMOTE_WAN" 5401 "$STREAM_S"
TCLIENT=$XD_LAST_PID
sleep 2
xd_ok "streams running"

xd_step "h3 stops renewing; kill -9 xdnatd; ${DOWN}s later restart it on the same state"
rsip_list >"$XD_TMP/before.json"
xd_ctl -j host show >"$XD_TMP/hosts_before.json"
kill -KILL "${XD_HOST_PID[3]}"
wait "${XD_HOST_PID[3]}" 2>/dev/null || true
kill -KILL "$XD_ROUTER_PID"
wait "$XD_ROUTER_PID" 2>/dev/null || true
t_kill=$(date +%s%N)
xd_alive "$XD_ROUTER_PID" && fail "xdnatd survived SIGKILL"
sleep "$DOWN"
# h3's lease lapsed while nobody was there to notice: still in the maps.
[ "$(owner "${P3%-*}")" != 0 ] || fail "h3's ports left the maps while xdnatd was down"
mv "$XD_TMP/xdnatd.log" "$XD_TMP/xdnatd-1.log"
rm -f "$XD_RUN_DIR/$XD_INSTANCE.lock"
xd_start_router "${ROUTER_OPTS[@]}"
down_ms=$(( ($(date +%s%N) - t_kill) / 1000000 ))
[ "$(owner "${P3%-*}")" = 0 ] || fail "h3's lapsed lease was not expired on start"
[ "$(owner "${P3#*-}")" = 0 ] || fail "the end of h3's lapsed block is still mapped"
xd_ok "xdnatd down ${down_ms} ms; on start h3's lapsed block left the maps"

xd_step "the state survived: same hosts and blocks in the maps and in rsip list"
rsip_list >"$XD_TMP/after.json"
xd_ctl -j host show >"$XD_TMP/hosts_after.json"
for h in h1 h2; do
	bindings_of "$h" <"$XD_TMP/before.json" >"$XD_TMP/$h.before"
	bindings_of "$h" <"$XD_TMP/after.json" >"$XD_TMP/$h.after"
	[ -s "$XD_TMP/$h.before" ] || fail "$h had no bindings before the kill"
	diff -u "$XD_TMP/$h.before" "$XD_TMP/$h.after" || fail "$h's bindings changed across the restart"
done
bindings_of h3 <"$XD_TMP/after.json" | python3 -c '
import json, sys
b = [json.loads(l) for l in sys.stdin]
assert b and all(x["state"] == "quarantine" for x in b), b' || fail "h3's bindings are not quarantined"
python3 - "$XD_TMP/hosts_before.json" "$XD_TMP/hosts_after.json" "$H3_ID" <<'EOF' || fail "the maps' hosts changed across the restart"
import json, sys
h3 = int(sys.argv[3])
def hosts(f):
    keep = ("id", "lan", "global", "ports", "spis")
    return [{k: v for k, v in h.items() if k in keep} for h in json.load(open(f))["hosts"]]
a, b = hosts(sys.argv[1]), hosts(sys.argv[2])
assert len(a) == 3 and [h for h in a if h["id"] != h3] == b, (a, b)
EOF
xd_ok "h1's and h2's bindings identical in rsip list and in the maps; h3's quarantined"

xd_step "the traffic never stopped"
wait "$USTREAM" || fail "UDP sender failed"
wait "$UCOUNT" || fail "UDP counter failed"
wait "$TCLIENT" || { cat "$XD_TMP/tclient"; fail "TCP sender failed"; }
wait "$TSERVER" || { cat "$XD_TMP/tserver"; fail "TCP receiver failed"; }
sent=$(jlast '["sent"]' <"$XD_TMP/ustream")
recv=$(jlast '["received"]' <"$XD_TMP/ucount")
lost=$(jlast '["lost"]' <"$XD_TMP/ucount")
[ "$recv" = "$sent" ] && [ "$lost" = 0 ] || fail "UDP: $recv of $sent datagrams arrived ($lost lost)"
[ "$(jlast '["sha256"]' <"$XD_TMP/tclient")" = "$(jlast '["sha256"]' <"$XD_TMP/tserver")" ] ||
	fail "TCP transfer corrupted: $(cat "$XD_TMP/tclient") vs $(cat "$XD_TMP/tserver")"
tb=$(jlast '["bytes"]' <"$XD_TMP/tserver")
xd_ok "UDP: $recv/$sent datagrams, 0 lost; TCP: $tb bytes intact across the kill and restart"

xd_step "h1 and h2 renew against the new daemon"
# Every lease granted by the killed daemon has run out LEASE s after the
# kill: bindings still active then were renewed by the new one.
left=$(( (t_kill + (LEASE + 2) * 1000000000 - $(date +%s%N)) / 1000000 ))
[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
for i in 1 2; do
	xd_alive "${XD_HOST_PID[$i]}" || fail "xdnat-host h$i died"
	n=$(active_of "h$i")
	[ "$n" = "$(wc -l <"$XD_TMP/h$i.before")" ] || fail "h$i has $n active bindings $((LEASE + 2))s after the kill"
done
[ "$(owner "${P1%-*}")" != 0 ] && [ "$(owner "${P2%-*}")" != 0 ] || fail "h1/h2 lost their ports"
xd_ok "$((LEASE + 2))s after the kill (lease ${LEASE}s) h1's and h2's bindings are active: renewed by the new xdnatd"

xd_step "xdnatctl rsip evict h2: all its blocks at once, into quarantine"
n2=$(wc -l <"$XD_TMP/h2.after")
rc=0
xd_ctl --state-dir "$STATE" rsip evict nobody >"$XD_TMP/evict-bad" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "evicting an unknown host exited $rc, not 1"
xd_ctl --state-dir "$STATE" -j rsip evict h2 >"$XD_TMP/evict.json"
[ "$(owner "${P2%-*}")" = 0 ] && [ "$(owner "${P2#*-}")" = 0 ] || fail "h2's ports still mapped after evict"
python3 - "$XD_TMP/evict.json" "$n2" "$QUARANTINE" <<'EOF' || fail "evict -j: $(cat "$XD_TMP/evict.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["host"] == "h2" and d["freed_count"] == int(sys.argv[2]) == len(d["freed"]), d
assert d["quarantine_s"] == int(sys.argv[3]), d
assert {f["kind"] for f in d["freed"]} == {"ports", "spi"}, d
EOF
# The registration is gone; rsip list still shows the quarantined blocks,
# under the host's name, with the quarantine time left.
rsip_list >"$XD_TMP/evicted.json"
python3 - "$XD_TMP/evicted.json" "$XD_TMP/evict.json" "$QUARANTINE" <<'EOF' || fail "rsip list does not show h2's evicted bindings as quarantined: $(cat "$XD_TMP/evicted.json")"
import json, sys
listed = {b["bind_id"]: b for b in json.load(open(sys.argv[1]))["bindings"] if b["host"] == "h2" and "bind_id" in b}
for f in json.load(open(sys.argv[2]))["freed"]:
    b = listed[f["bind_id"]]
    assert b["state"] == "quarantine" and not b["registered"] and b["enrolled"], b
    assert (b["kind"], b["first"], b["last"]) == (f["kind"], f["first"], f["last"]), (b, f)
    assert 0 < b["remaining_s"] <= int(sys.argv[3]), b
EOF
# And in the state database itself.
python3 - "$STATE/$XD_INSTANCE.db" "$XD_TMP/evict.json" "$QUARANTINE" <<'EOF' || fail "h2's evicted bindings are not quarantined in the store"
import json, sqlite3, sys, time
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
now = time.time() * 1000
for f in json.load(open(sys.argv[2]))["freed"]:
    state, until = db.execute("SELECT state, until_ms FROM bindings WHERE bind_id=?", (f["bind_id"],)).fetchone()
    assert state == 2, (f, state)
    assert now < until <= now + int(sys.argv[3]) * 1000, (f, until - now)
EOF
[ "$(owner "${P1%-*}")" != 0 ] || fail "h1 lost its ports"
xd_ok "h2's $n2 bindings left the maps and went into the ${QUARANTINE}s quarantine; h1 untouched"
rc=0
for ((k = 0; k < (LEASE / 2 + 5) * 10; k++)); do
	xd_alive "${XD_HOST_PID[2]}" || break
	sleep 0.1
done
xd_alive "${XD_HOST_PID[2]}" && fail "h2's agent still running after its blocks were evicted"
wait "${XD_HOST_PID[2]}" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "h2's agent exited $rc, not 1"
grep -q "refused to renew" "$XD_TMP/xdnat-host-h2.log" || fail "h2's agent did not report the refusal"
xd_ok "h2's agent was refused at its next renewal and exited 1"

xd_step "a clean stop of h1 frees its blocks on the restarted daemon"
xd_stop "${XD_HOST_PID[1]}" || fail "xdnat-host h1 did not stop cleanly"
[ "$(owner "${P1%-*}")" = 0 ] || fail "h1's ports still mapped after its clean stop"
xd_ok "done"
