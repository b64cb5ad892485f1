#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# One writer (issue 13, docs/ARCHITECTURE.md "Who writes what"): xdnatd
# applies every change to its instance, in order, so concurrent writers
# cannot race.  Against one xdnatd --rsip in the usual namespace topology,
# all at once:
#   - WRITERS xdnatctl writers change their own host ids with port and SPI
#     ranges that overlap one another's and the RSIP pool; after each change
#     reported done, the writer reads the maps back: what it was given is
#     its host's (no other writer was given an overlapping range as well),
#     what it freed is gone;
#   - PAIRS writers start four `host add` with overlapping port ranges at
#     the same moment, PAIR_ROUNDS times: at most one may succeed;
#   - SAMEID writers add and delete the same host ids with different LAN
#     addresses;
#   - RSIP agents (xdnat-host) in the host namespaces register, obtain
#     ports and an SPI block from the same pool, check that the maps give
#     them to their host, and free them, CYCLES times each;
#   - `xdnatctl -b` batches of overlapping changes run too.
# Then: at least MIN_OPS operations ran; no port or SPI block was ever found
# owned by another host than the one it was granted to; `xdnatctl -j host
# show` equals `bpftool map dump` of the pinned maps; the host table and
# the LAN index agree (no stale entry); the RSIP store's active bindings are
# exactly the RSIP hosts' blocks in the maps.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.61}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.61.0}
. "$(dirname "$0")/lib/netns.sh"

WRITERS=${WRITERS:-6}
OPS_PER_WRITER=${OPS_PER_WRITER:-100}
PAIRS=${PAIRS:-2}
PAIR_ROUNDS=${PAIR_ROUNDS:-40}
SAMEID=${SAMEID:-2}
SAMEID_ROUNDS=${SAMEID_ROUNDS:-80}
AGENTS=${AGENTS:-3}
CYCLES=${CYCLES:-6}
BATCHES=${BATCHES:-2}
MIN_OPS=${MIN_OPS:-1000}
POOL=20000-21999
STRESS=$(dirname "$0")/lib/writer_stress.py
command -v bpftool >/dev/null || fail "bpftool is needed (apt-get install bpftool)"

xd_init
STATE=$XD_TMP/state
PIN=$XD_PIN_BASE/$XD_INSTANCE
CTL=("$XD_XDNATCTL" -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" --state-dir "$STATE")

xd_step "topology: $AGENTS RSIP hosts; xdnatd --rsip, pool $POOL"
xd_topology "$AGENTS"
xd_start_router --rsip --state-dir "$STATE" --port-range "$POOL" --quarantine 0 --lease 60 \
	--spi-block-bits 16
for ((i = 1; i <= AGENTS; i++)); do
	xd_ctl enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key"
done
xd_ok "xdnatd up, $AGENTS hosts enrolled"

# agent_cycles I N: N times, start h I's agent, check its ports are its own
# in the maps, stop it (its blocks are freed).  Prints one line per problem.
agent_cycles() {
	local i=$1 n=$2 k t pid log ports owner hid ops=0
	set +e   # every problem is reported as a VIOLATION line
	for ((k = 1; k <= n; k++)); do
		log=$XD_TMP/agent-h$i-$k.log
		: >"$log"
		nsenter --net="/var/run/netns/$(xd_host_ns "$i")" -- "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
			--router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" --name "h$i" \
			--port-count 100 --no-cert --info-file "$XD_TMP/h$i.env" --replace-routes \
			>"$log" 2>&1 </dev/null &
		pid=$!
		for ((t = 0; t < 150; t++)); do
			grep -q '^xdnat-host: ready' "$log" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if ! grep -q '^xdnat-host: ready' "$log"; then
			echo "VIOLATION h$i cycle $k: agent not ready: $(tail -2 "$log" | tr '\n' ' ')"
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			continue
		fi
		ops=$((ops + 3))   # register, ports, SPI block
		ports=$(sed -n 's/^XDNAT_PORTS=//p' "$XD_TMP/h$i.env" | tr -d '"')
		hid=$("${CTL[@]}" -j rsip list | python3 -c '
import json, sys
print(max([b["host_id"] for b in json.load(sys.stdin)["bindings"]
           if b["host"] == sys.argv[1] and b["state"] == "active"] or [0]))' "h$i")
		for p in "${ports%-*}" "${ports#*-}"; do
			owner=$("${CTL[@]}" -j lookup port "$p" | jget '["host"]')
			[ "$owner" = "$hid" ] && [ "$hid" != 0 ] ||
				echo "VIOLATION h$i cycle $k: port $p granted over RSIP to host $hid is host $owner's"
		done
		kill -TERM "$pid"
		wait "$pid" || echo "VIOLATION h$i cycle $k: agent exited $? on SIGTERM: $(tail -2 "$log" | tr '\n' ' ')"
		ops=$((ops + 1))   # free
	done
	echo "OPS $ops"
}

xd_step "concurrently: $WRITERS range writers, $SAMEID same-id writers, $AGENTS RSIP agents, $BATCHES batches"
pids=()
t0=$(date +%s%N)
for ((w = 0; w < WRITERS; w++)); do
	xd_bg "writer $w" - "$XD_TMP/writer-$w.json" python3 "$STRESS" ranges "$w" "$OPS_PER_WRITER" \
		"$((w + 1))" -- "${CTL[@]}"
	pids+=("$XD_LAST_PID")
done
for ((w = 0; w < PAIRS; w++)); do
	xd_bg "pairs $w" - "$XD_TMP/pairs-$w.json" python3 "$STRESS" pairs "$w" "$PAIR_ROUNDS" \
		"$((w + 70))" -- "${CTL[@]}"
	pids+=("$XD_LAST_PID")
done
for ((w = 0; w < SAMEID; w++)); do
	xd_bg "sameid $w" - "$XD_TMP/sameid-$w.json" python3 "$STRESS" sameid "$w" "$SAMEID_ROUNDS" \
		"$((w + 50))" -- "${CTL[@]}"
	pids+=("$XD_LAST_PID")
done
for ((i = 1; i <= AGENTS; i++)); do
	( agent_cycles "$i" "$CYCLES" ) >"$XD_TMP/agent-$i.out" 2>&1 &
	XD_PIDS+=("$!")
	XD_PID_NAMES+=("agent h$i")
	pids+=("$!")
done
# Batches: overlapping block churn on two hosts of their own; a batch stops
# at its first refused line, so each is split into independent small files.
for ((b = 0; b < BATCHES; b++)); do
	(
		set +e
		id=$((80 + b)) n=0
		"${CTL[@]}" host add "$id" lan "10.202.0.$((b + 1))" >/dev/null 2>&1 || true
		for ((r = 0; r < 40; r++)); do
			p=$((20000 + (r * 7 % 40) * 50))
			printf 'ports add %d %d-%d\nports del %d %d-%d\n' "$id" "$p" $((p + 49)) "$id" "$p" $((p + 49)) \
				>"$XD_TMP/batch-$b-$r"
			"${CTL[@]}" -b "$XD_TMP/batch-$b-$r" >/dev/null 2>&1 || true
			n=$((n + 2))
		done
		echo "OPS $n"
	) >"$XD_TMP/batch-$b.out" 2>&1 &
	XD_PIDS+=("$!")
	XD_PID_NAMES+=("batch $b")
	pids+=("$!")
done
rc=0
for p in "${pids[@]}"; do
	wait "$p" || rc=1
done
t1=$(date +%s%N)
cat "$XD_TMP"/writer-*.json "$XD_TMP"/pairs-*.json "$XD_TMP"/sameid-*.json
violations=$(cat "$XD_TMP"/agent-*.out "$XD_TMP"/batch-*.out | grep VIOLATION || true)
[ -z "$violations" ] || fail "$violations"
[ "$rc" = 0 ] || fail "a writer found a violation (above)"
total=$(python3 - "$XD_TMP" <<'EOF'
import glob, json, re, sys
n = 0
for f in glob.glob(sys.argv[1] + "/writer-*.json") + glob.glob(sys.argv[1] + "/sameid-*.json") + \
        glob.glob(sys.argv[1] + "/pairs-*.json"):
    n += json.loads(open(f).read().strip().splitlines()[-1])["ops"]
for f in glob.glob(sys.argv[1] + "/agent-*.out") + glob.glob(sys.argv[1] + "/batch-*.out"):
    for m in re.finditer(r"^OPS (\d+)$", open(f).read(), re.M):
        n += int(m.group(1))
print(n)
EOF
)
[ "$total" -ge "$MIN_OPS" ] || fail "only $total operations ran (need $MIN_OPS)"
xd_ok "$total operations in $(( (t1 - t0) / 1000000 )) ms; every granted range read back as its host's"

xd_step "RSIP hosts hold blocks at the end too"
for ((i = 1; i <= AGENTS; i++)); do
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/final-h$i.log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
		--router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" --name "h$i" --port-count 100 \
		--no-cert --info-file "$XD_TMP/h$i.env" --replace-routes
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/final-h$i.log" '^xdnat-host: ready'
done
xd_ok "$AGENTS agents registered"

xd_step "the end state: listing == bpftool map dump; hosts == LAN index; store == maps"
xd_alive "$XD_ROUTER_PID" || fail "xdnatd died"
python3 "$STRESS" check "$PIN" -- "${CTL[@]}" >"$XD_TMP/check.json" || fail "$(cat "$XD_TMP/check.json")"
xd_ok "$(cat "$XD_TMP/check.json")"
grep -q "runtime error\|AddressSanitizer" "$XD_TMP/xdnatd.log" && fail "xdnatd: $(grep "runtime error\|AddressSanitizer" "$XD_TMP/xdnatd.log" | head -3)"
echo "e2e_writer_stress: all checks passed"
