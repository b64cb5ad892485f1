#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# xdnatd's control socket (docs/CONTROL-PLANE.md, "Control socket"):
#   - xdnatd --rsip opens /run/xdnat/INSTANCE.ctl, mode 0600, owner root;
#   - `xdnatctl enroll` (without --state-dir) goes to the daemon, whose
#     --state-dir is not the default: the hosts register (issue 13);
#   - `xdnatctl rsip list` over the socket equals the state database's view
#     (`--direct`), in JSON and as text;
#   - a non-root peer is refused: by the socket's mode, and by SO_PEERCRED
#     when the mode is opened up;
#   - malformed, oversized and unknown requests get an error response, idle
#     connections beyond the limit get "busy"; none of it disturbs the
#     daemon (it answers and its hosts keep renewing);
#   - `xdnatctl rsip evict h2` runs inside the daemon: h2's blocks leave the
#     maps at once, into quarantine, and h2's next renewal is refused;
#   - the socket survives reload-programs (re-created by the new process);
#   - a batch ('--batch' header) answers each line in order and runs nothing
#     after a failed line;
#   - while xdnatd holds the instance lock, the offline path (--direct, or a
#     lock held with no socket) refuses to change anything;
#   - with xdnatd stopped, xdnatctl reads the database, applies an enrolment
#     itself under the lock and says so; evict needs the daemon.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.47}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.47.0}
. "$(dirname "$0")/lib/netns.sh"

LEASE=12
QUARANTINE=60
POOL=32000-32999
STATE=""
SOCK=""

jlast() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(eval("d"+sys.argv[1]))' "$1"; }
envget() { sed -n "s/^$2=//p" "$1"; }
owner() { xd_ctl -j lookup port "$1" | jlast '["host"]'; }
# The bindings of `rsip list -j` on stdin, sorted, lease time left out.
norm_list() {
	python3 -c '
import json, sys
for b in sorted(json.load(sys.stdin)["bindings"], key=lambda b: (b["host"], b.get("bind_id", 0))):
    b.pop("remaining_s", None)
    print(json.dumps(b, sort_keys=True))'
}
# raw PYTHON_BYTES_EXPR: send those bytes to the socket, print the response.
raw() {
	python3 - "$SOCK" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(eval(sys.argv[2]))
except (BrokenPipeError, ConnectionResetError):
    pass
out = b""
while True:
    try:
        b = s.recv(65536)
    except ConnectionResetError:
        break
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
EOF
}
ctl_count() { xd_ctl -j daemon stats | jlast "[\"control\"][\"$1\"]"; }

start_host() {
	local i=$1
	shift
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$XD_TMP/xdnat-host-h$i.log" "$XD_XDNAT_HOST" \
		--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" \
		--name "h$i" --port-count 300 --info-file "$XD_TMP/h$i.env" --replace-routes "$@"
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h$i.log" '^xdnat-host: ready'
}

xd_init
STATE=$XD_TMP/state
SOCK=$XD_RUN_DIR/$XD_INSTANCE.ctl

xd_step "topology: 2 hosts; xdnatd --rsip opens its control socket"
xd_topology 2
xd_start_router --rsip --state-dir "$STATE" --lease "$LEASE" --max-lease "$LEASE" \
	--quarantine "$QUARANTINE" --port-range "$POOL" --unknown drop --keep-maps
[ -S "$SOCK" ] || fail "no control socket $SOCK"
[ "$(stat -c '%a %u %g' "$SOCK")" = "600 0 0" ] || fail "$SOCK is $(stat -c '%a %u %g' "$SOCK"), not 600 root root"
grep -q "control socket $SOCK" "$XD_TMP/xdnatd.log" || fail "xdnatd did not announce its socket"
DEFAULT_DB=/var/lib/xdnat/$XD_INSTANCE.db
for i in 1 2; do
	# No --state-dir: the daemon's own store is the one that changes.
	xd_ctl enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key"
	start_host "$i"
done
[ ! -e "$DEFAULT_DB" ] || fail "xdnatctl enroll wrote $DEFAULT_DB, not the daemon's $STATE"
grep -q "control socket: enrolled h2" "$XD_TMP/xdnatd.log" || fail "the enrolment did not go through xdnatd"
P1=$(envget "$XD_TMP/h1.env" XDNAT_PORTS) P2=$(envget "$XD_TMP/h2.env" XDNAT_PORTS)
[ "$(xd_ctl -j daemon ping | jlast '["instance"]')" = "$XD_INSTANCE" ] || fail "daemon ping"
xd_ok "$SOCK (600 root); h1 $P1, h2 $P2 over RSIP"

xd_step "rsip list over the socket equals the state database's view"
r0=$(ctl_count requests)
xd_ctl --state-dir "$STATE" -j rsip list >"$XD_TMP/list-sock.json" 2>"$XD_TMP/list-sock.err"
xd_ctl --state-dir "$STATE" --direct -j rsip list >"$XD_TMP/list-db.json"
[ ! -s "$XD_TMP/list-sock.err" ] || fail "rsip list said: $(cat "$XD_TMP/list-sock.err")"
[ "$(ctl_count requests)" = $((r0 + 2)) ] || fail "rsip list did not go over the socket"
norm_list <"$XD_TMP/list-sock.json" >"$XD_TMP/list-sock"
norm_list <"$XD_TMP/list-db.json" >"$XD_TMP/list-db"
NACT=$(grep -c '"state": "active"' "$XD_TMP/list-sock")
[ "$NACT" -ge 4 ] || fail "expected 2 or more bindings per host: $(cat "$XD_TMP/list-sock")"
diff -u "$XD_TMP/list-db" "$XD_TMP/list-sock" || fail "rsip list differs between the socket and the database"
head -c 12 "$XD_TMP/list-sock.json" | grep -q '^{"bindings":' || fail "-j output is not the database path's shape"
xd_ctl --state-dir "$STATE" rsip list >"$XD_TMP/list-sock.txt"
xd_ctl --state-dir "$STATE" --direct rsip list >"$XD_TMP/list-db.txt"
# Same rows and columns, the remaining seconds aside.
diff <(sed 's/ [0-9]*s$//' "$XD_TMP/list-db.txt") <(sed 's/ [0-9]*s$//' "$XD_TMP/list-sock.txt") ||
	fail "text rsip list differs"
xd_ctl daemon stats | grep -q "^rsip: 2 hosts enrolled, 2 registrations, $NACT active bindings" ||
	fail "daemon stats: $(xd_ctl daemon stats | tail -2)"
xd_ok "$(wc -l <"$XD_TMP/list-sock") rows identical in JSON and text; daemon stats agree"

xd_step "non-root peers are refused"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
rc=0
"${NOBODY[@]}" "$XD_XDNATCTL" -i "$XD_INSTANCE" -j rsip list >"$XD_TMP/nobody.out" 2>"$XD_TMP/nobody.err" || rc=$?
[ "$rc" = 1 ] || fail "non-root rsip list exited $rc, not 1"
grep -q "permission denied" "$XD_TMP/nobody.err" || fail "non-root: $(cat "$XD_TMP/nobody.err")"
[ ! -s "$XD_TMP/nobody.out" ] || fail "non-root got output: $(cat "$XD_TMP/nobody.out")"
ref0=$(ctl_count refused)
chmod 0666 "$SOCK"   # past the file mode: SO_PEERCRED still says no
rc=0
"${NOBODY[@]}" "$XD_XDNATCTL" -i "$XD_INSTANCE" rsip evict h1 >"$XD_TMP/nobody.out" 2>"$XD_TMP/nobody.err" || rc=$?
chmod 0600 "$SOCK"
[ "$rc" = 1 ] || fail "non-root rsip evict exited $rc, not 1"
grep -q "root only" "$XD_TMP/nobody.err" || fail "non-root (mode 0666): $(cat "$XD_TMP/nobody.err")"
[ "$(ctl_count refused)" = $((ref0 + 1)) ] || fail "the daemon did not count the refusal"
[ "$(owner "${P1%-*}")" != 0 ] || fail "h1 lost its ports to a non-root request"
grep -q "refused a peer with uid 65534" "$XD_TMP/xdnatd.log" || fail "refusal not logged"
for cmd in "host add 9 lan 10.47.0.99" "enroll h9" "host show"; do
	rc=0
	# shellcheck disable=SC2086
	"${NOBODY[@]}" "$XD_XDNATCTL" -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" $cmd \
		>"$XD_TMP/nobody.out" 2>"$XD_TMP/nobody.err" || rc=$?
	[ "$rc" = 1 ] && grep -q "permission denied" "$XD_TMP/nobody.err" ||
		fail "non-root '$cmd': rc $rc, $(cat "$XD_TMP/nobody.err")"
done
xd_ok "mode 0600 keeps uid 65534 out; with 0666 the daemon refuses it (SO_PEERCRED); h1 untouched; changes and views say 'permission denied'"

xd_step "malformed, oversized and unknown requests: an error each, the daemon carries on"
check_err() { # WHAT ERRNO RESPONSE
	python3 -c '
import json, sys
d = json.loads(sys.argv[3])
assert d["ok"] is False and d["errno"] == int(sys.argv[2]) and d["error"], d' "$1" "$2" "$3" ||
		fail "$1: $3"
}
check_err "oversized (64 KiB, no newline)" 7 "$(raw 'b"x" * 65536')"
check_err "a long line" 7 "$(raw 'b"rsip list " + b"y" * 600 + b"\n"')"
check_err "binary" 22 "$(raw 'bytes(range(1, 256)) + b"\n"')"
check_err "empty" 22 "$(raw 'b"\n"')"
check_err "unknown command" 22 "$(raw 'b"drop tables\n"')"
check_err "too many words" 7 "$(raw 'b"a " * 70 + b"\n"')"
check_err "wrong arity" 22 "$(raw 'b"rsip evict\n"')"
check_err "unknown host" 2 "$(raw 'b"rsip evict nobody\n"')"
rc=0
xd_ctl rsip evict nobody 2>"$XD_TMP/evict-bad.err" || rc=$?
[ "$rc" = 1 ] && grep -q "no enrolled host 'nobody'" "$XD_TMP/evict-bad.err" || fail "evict nobody: rc $rc, $(cat "$XD_TMP/evict-bad.err")"
# Idle connections: the 33rd at once is told "busy"; they are closed after 5 s.
python3 - "$SOCK" <<'EOF' || fail "idle connections"
import json, socket, sys, time
idle = []
for i in range(32):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    idle.append(s)
time.sleep(0.5)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
d = json.loads(s.recv(4096))
assert d["ok"] is False and d["errno"] == 16, d   # EBUSY
for s in idle:
    s.settimeout(10)
    t0 = time.monotonic()
    assert s.recv(4096) == b""
    assert time.monotonic() - t0 < 8
EOF
raw 'b"ping\n"' | grep -q '"ok":true' || fail "the daemon does not answer after the bad requests"
xd_alive "$XD_ROUTER_PID" || fail "xdnatd died"
xd_ctl --state-dir "$STATE" -j rsip list | norm_list >"$XD_TMP/list-after-bad"
diff -u "$XD_TMP/list-sock" "$XD_TMP/list-after-bad" || fail "the bindings changed"
xd_ok "errors with errno 7/22/2/16, idle connections closed; xdnatd answers, bindings unchanged"

xd_step "a batch: one answer per line, in order; nothing runs after a failure"
python3 - "$SOCK" >"$XD_TMP/batch.out" <<'EOF' || fail "batch: $(cat "$XD_TMP/batch.out")"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"--batch\nping\nhost add 200 lan 10.250.0.1 global 192.0.2.250\nping\n")
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
r = [json.loads(l) for l in out.decode().splitlines()]
print(r)
assert len(r) == 4 and r[0] == {"ok": True, "batch": True}, r
assert r[1]["ok"] is True and r[2]["ok"] is False and "global address" in r[2]["error"], r
assert r[3]["ok"] is False and r[3]["errno"] == 125, r   # ECANCELED
EOF
xd_ok "ok, refused (not a global address), not run"

xd_step "the offline path refuses while xdnatd holds the instance lock"
rc=0
xd_ctl --direct host add 200 lan 10.47.0.200 >"$XD_TMP/direct.out" 2>"$XD_TMP/direct.err" || rc=$?
[ "$rc" = 1 ] && grep -q "refusing to change it; nothing changed" "$XD_TMP/direct.err" ||
	fail "--direct host add with xdnatd running: rc $rc, $(cat "$XD_TMP/direct.err")"
rc=0
xd_ctl --direct --state-dir "$STATE" enroll h9 2>"$XD_TMP/direct.err" || rc=$?
[ "$rc" = 1 ] && grep -q "held by pid $XD_ROUTER_PID" "$XD_TMP/direct.err" ||
	fail "--direct enroll with xdnatd running: rc $rc, $(cat "$XD_TMP/direct.err")"
xd_ctl --direct --state-dir "$STATE" -j rsip list | grep -q '"h9"' && fail "h9 was enrolled behind xdnatd's back"
xd_ok "refused: $(head -1 "$XD_TMP/direct.err")"

xd_step "the socket survives reload-programs"
xd_ctl reload-programs >/dev/null
for ((k = 0; k < 50; k++)); do
	xd_ctl daemon ping >/dev/null 2>&1 && break
	sleep 0.1
done
xd_ctl -j daemon ping >/dev/null || fail "no control socket after reload-programs"
[ "$(stat -c '%a %u' "$SOCK")" = "600 0" ] || fail "$SOCK after reload: $(stat -c '%a %u' "$SOCK")"
xd_ok "re-created by the new program, still 0600"

xd_step "rsip evict h2 over the socket: out of the maps at once; its next renewal is refused"
n2=$(grep -c '"host": "h2"' "$XD_TMP/list-sock")
xd_ctl --state-dir "$STATE" -j rsip evict h2 >"$XD_TMP/evict.json" 2>"$XD_TMP/evict.err"
[ ! -s "$XD_TMP/evict.err" ] || fail "evict said: $(cat "$XD_TMP/evict.err")"
[ "$(owner "${P2%-*}")" = 0 ] && [ "$(owner "${P2#*-}")" = 0 ] || fail "h2's ports still mapped after evict"
python3 - "$XD_TMP/evict.json" "$n2" "$QUARANTINE" <<'EOF' || fail "evict -j: $(cat "$XD_TMP/evict.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert "ok" not in d, d
assert d["host"] == "h2" and d["freed_count"] == int(sys.argv[2]) == len(d["freed"]), d
assert d["quarantine_s"] == int(sys.argv[3]), d
EOF
grep -q "control socket: evicted h2: $n2 bindings" "$XD_TMP/xdnatd.log" || fail "the eviction did not run in xdnatd"
python3 - "$STATE/$XD_INSTANCE.db" "$XD_TMP/evict.json" <<'EOF' || fail "h2's bindings are not quarantined"
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for f in json.load(open(sys.argv[2]))["freed"]:
    assert db.execute("SELECT state FROM bindings WHERE bind_id=?", (f["bind_id"],)).fetchone()[0] == 2, f
EOF
[ "$(owner "${P1%-*}")" != 0 ] || fail "h1 lost its ports"
for ((k = 0; k < (LEASE / 2 + 5) * 10; k++)); do
	xd_alive "${XD_HOST_PID[2]}" || break
	sleep 0.1
done
xd_alive "${XD_HOST_PID[2]}" && fail "h2's agent still running after its eviction"
rc=0
wait "${XD_HOST_PID[2]}" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "h2's agent exited $rc, not 1"
grep -q "refused to renew" "$XD_TMP/xdnat-host-h2.log" || fail "h2's agent did not report the refusal"
xd_alive "${XD_HOST_PID[1]}" || fail "h1's agent died"
xd_ok "h2's $n2 bindings freed and quarantined at once; h2 refused at its renewal; h1 renews"

xd_step "without xdnatd: xdnatctl falls back to the database, and says so for a change"
xd_stop "${XD_HOST_PID[1]}" || fail "h1 did not stop cleanly"
xd_stop "$XD_ROUTER_PID" || fail "xdnatd did not stop cleanly"
[ ! -e "$SOCK" ] || fail "$SOCK left behind after a clean stop"
xd_ctl --state-dir "$STATE" -j rsip list >"$XD_TMP/list-down.json" 2>"$XD_TMP/list-down.err"
[ ! -s "$XD_TMP/list-down.err" ] || fail "read-only list warned: $(cat "$XD_TMP/list-down.err")"
grep -q '"host":"h1"' "$XD_TMP/list-down.json" || fail "list without xdnatd: $(cat "$XD_TMP/list-down.json")"
rc=0
xd_ctl --state-dir "$STATE" rsip evict h1 2>"$XD_TMP/evict-down.err" || rc=$?
[ "$rc" = 1 ] || fail "evict without xdnatd exited $rc"
grep -q "no xdnatd answers on $SOCK: rsip evict needs the running xdnatd" "$XD_TMP/evict-down.err" ||
	fail "evict without xdnatd: $(cat "$XD_TMP/evict-down.err")"
# Another process holds the lock (no socket): an enrolment waits, then refuses.
xd_bg locker - "$XD_TMP/locker.log" python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(30)' "$XD_RUN_DIR/$XD_INSTANCE.lock"
LOCKER=$XD_LAST_PID
xd_wait_line "$LOCKER" "$XD_TMP/locker.log" '^locked'
rc=0
xd_ctl --state-dir "$STATE" enroll h9 2>"$XD_TMP/enroll-locked.err" || rc=$?
[ "$rc" = 1 ] && grep -q "refusing to change it" "$XD_TMP/enroll-locked.err" ||
	fail "enroll while the lock is held: rc $rc, $(cat "$XD_TMP/enroll-locked.err")"
xd_stop "$LOCKER" || true
xd_ctl --state-dir "$STATE" enroll h9 secret-file "$XD_TMP/h9.key" 2>"$XD_TMP/enroll-down.err" ||
	fail "enroll without xdnatd: $(cat "$XD_TMP/enroll-down.err")"
grep -q "no xdnatd answers on $SOCK: changing the state database directly" "$XD_TMP/enroll-down.err" ||
	fail "offline enrolment not announced: $(cat "$XD_TMP/enroll-down.err")"
[ "$(wc -c <"$XD_TMP/h9.key")" = 65 ] || fail "h9's secret file"
xd_ctl --state-dir "$STATE" -j rsip list | grep -q '"h9"' || fail "h9 not enrolled offline"
rc=0
xd_ctl daemon ping 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "daemon ping without xdnatd exited $rc"
xd_ok "done"
