#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Counter totals across a reboot (docs/CONTROL-PLANE.md, "Counter totals
# across reboots"): xdnatd --state-dir keeps the per-reason and per-host
# totals of each map generation in the state database.
#   - traffic; xdnatd stops (SIGTERM: it saves at exit); its pinned maps are
#     deleted (what a reboot does); it starts again on the same --state-dir;
#     more traffic: `xdnatctl -j stats`, `host show` and /metrics show at
#     least the totals from before plus the new traffic, while the new maps
#     alone hold only the new traffic;
#   - the same after `kill -9` (no save at exit): what the last periodic
#     save (--counters-interval 1) had is kept.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.47}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.47.0}
. "$(dirname "$0")/lib/netns.sh"

PORTS=22000-22999
N=30             # datagrams per round, each echoed
MIN=$((N - 3))   # what a round must show at least (the first datagram may meet an unresolved neighbour)
STATE=""

ctl_state() { xd_ctl --state-dir "$STATE" "$@"; }
# The counters to compare, as one JSON object, from stats, host show and /metrics.
snapshot() {
	local sd=$1
	{
		xd_ctl --state-dir "$sd" -j stats
		xd_ctl --state-dir "$sd" -j host show 1
		xd_ns "$XD_NS_ROUTER" python3 -c '
import json, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9477/metrics", timeout=5).read().decode()
v = {}
for line in body.splitlines():
    if line and not line.startswith("#"):
        k, n = line.rsplit(" ", 1)
        v[k] = int(n)
print(json.dumps(v))'
	} | python3 -c '
import json, sys
stats, hosts, metrics = (json.loads(l) for l in sys.stdin.read().strip().splitlines())
h = hosts["hosts"][0]
print(json.dumps({
    "since": stats.get("since"),
    "wan_to_host": stats["counters"]["wan_to_host"]["packets"],
    "host_to_wan": stats["counters"]["host_to_wan"]["packets"],
    "host_to_wan_bytes": stats["counters"]["host_to_wan"]["bytes"],
    "to_host": h["to_host_packets"], "from_host": h["from_host_packets"],
    "m_wan_to_host": metrics["xdnat_packets_total{reason=\"wan_to_host\"}"],
    "m_host_to_wan": metrics["xdnat_packets_total{reason=\"host_to_wan\"}"],
    "m_from_host": metrics["xdnat_host_packets_total{host=\"1\",direction=\"from_host\"}"],
    "m_since": metrics.get("xdnat_counters_since_seconds"),
}, sort_keys=True))'
}

# One round: the host sends N datagrams to the remote, which echoes them.
traffic() {
	local port=$1
	xd_bg echo "$XD_NS_REMOTE" "$XD_TMP/uecho$port" python3 "$XD_TRAFFIC" udp-echo --port "$port" \
		--count "$N" --timeout 15
	local echo_pid=$XD_LAST_PID
	xd_wait_line "$echo_pid" "$XD_TMP/uecho$port" listening
	xd_ns "$(xd_host_ns 1)" python3 "$XD_TRAFFIC" udp-client --dst "$XD_REMOTE_WAN" --port "$port" \
		--count "$N" --size 200 >"$XD_TMP/uclient$port"
	wait "$echo_pid" || fail "UDP echo on $port failed"
}

# reboot KILL: stop xdnatd (SIGTERM or SIGKILL), delete its pinned maps as a
# reboot would, start it again on the same state and put host 1 back.
reboot() {
	if [ "$1" = KILL ]; then
		kill -KILL "$XD_ROUTER_PID"
		wait "$XD_ROUTER_PID" 2>/dev/null || true
	else
		xd_stop "$XD_ROUTER_PID" || fail "xdnatd did not stop cleanly"
	fi
	rm -rf "${XD_PIN_BASE:?}/$XD_INSTANCE" "$XD_RUN_DIR/$XD_INSTANCE.lock"
	mv "$XD_TMP/xdnatd.log" "$XD_TMP/xdnatd-$2.log"
	xd_start_router "${ROUTER_OPTS[@]}"
	xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$PORTS"
}

xd_init
STATE=$XD_TMP/state
ROUTER_OPTS=(--state-dir "$STATE" --counters-interval 1 --keep-maps --metrics 127.0.0.1:9477)

xd_step "topology: 1 host; xdnatd --state-dir (totals saved every second)"
xd_topology 1
xd_start_router "${ROUTER_OPTS[@]}"
grep -q "counter totals in $STATE" "$XD_TMP/xdnatd.log" || fail "xdnatd does not keep counter totals"
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$PORTS"
xd_start_host 1 "$PORTS"
traffic 5501
snapshot "$STATE" >"$XD_TMP/a.json"
xd_info "before: $(cat "$XD_TMP/a.json")"
python3 - "$XD_TMP/a.json" "$MIN" <<'EOF' || fail "first round not counted"
import json, sys
a, n = json.load(open(sys.argv[1])), int(sys.argv[2])
assert a["since"] and a["m_since"], a
assert a["host_to_wan"] >= n and a["wan_to_host"] >= n and a["from_host"] >= n, a
assert a["m_host_to_wan"] == a["host_to_wan"] and a["m_from_host"] == a["from_host"], a
EOF
xd_ok "round 1 counted; totals since $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["since"])' "$XD_TMP/a.json")"

xd_step "stop xdnatd, delete its maps (a reboot), start it on the same --state-dir; more traffic"
reboot TERM 1
traffic 5502
snapshot "$STATE" >"$XD_TMP/b.json"
snapshot "$XD_TMP/no-such-state" >"$XD_TMP/b-maps.json"
# /metrics reads the daemon's state directory either way; stats and host
# show without a database show the new maps alone.
xd_info "after:  $(cat "$XD_TMP/b.json")"
python3 - "$XD_TMP/a.json" "$XD_TMP/b.json" "$XD_TMP/b-maps.json" "$MIN" <<'EOF' || fail "totals lost across the reboot"
import json, sys
a, b, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[4])
new = json.load(open(sys.argv[3]))   # the new maps alone: the second round
assert new["since"] is None, new
assert b["since"] == a["since"] and b["m_since"] == a["m_since"], (a, b)
for k in ("wan_to_host", "host_to_wan", "from_host", "to_host", "host_to_wan_bytes"):
    assert new[k] >= n or k.endswith("bytes"), (k, new)
    assert new[k] < b[k], (k, new, b)
    assert b[k] >= a[k] + new[k], (k, a[k], new[k], b[k])
for k in ("wan_to_host", "host_to_wan", "from_host"):
    assert b["m_" + k] >= a["m_" + k] + new[k], (k, a, new, b)
EOF
xd_ok "stats, host show and /metrics: totals >= before + the new round (the new maps alone)"

xd_step "kill -9 xdnatd (no save at exit), delete its maps, start again"
traffic 5503
sleep 2.5   # one periodic save (--counters-interval 1) after the traffic
snapshot "$STATE" >"$XD_TMP/c.json"
reboot KILL 2
traffic 5504
snapshot "$STATE" >"$XD_TMP/d.json"
snapshot "$XD_TMP/no-such-state" >"$XD_TMP/d-maps.json"
xd_info "crash:  $(cat "$XD_TMP/c.json") -> $(cat "$XD_TMP/d.json")"
python3 - "$XD_TMP/c.json" "$XD_TMP/d.json" "$XD_TMP/d-maps.json" "$MIN" <<'EOF' || fail "totals lost across kill -9 and reboot"
import json, sys
c, d, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[4])
new = json.load(open(sys.argv[3]))
for k in ("wan_to_host", "host_to_wan", "from_host", "to_host"):
    assert new[k] >= n, (k, new)
    assert d[k] >= c[k] + new[k], (k, c[k], new[k], d[k])
    assert d["m_" + k] >= c["m_" + k] + new[k] if "m_" + k in d else True
EOF
xd_ok "after kill -9: totals >= the last save + the new round"
xd_stop "$XD_ROUTER_PID" || fail "xdnatd did not stop cleanly"
echo "e2e_counters: all checks passed"
