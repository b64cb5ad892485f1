#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Secrets at rest (issue 14):
#   - the state directory exists with mode 0755 before the first run (what
#     systemd's StateDirectory= makes without StateDirectoryMode=); xdnatd
#     runs RSIP and the Local CA, a host is enrolled, registers and gets a
#     certificate;
#   - then neither the directory nor any file in it (INSTANCE.db, -wal,
#     -shm...) is readable by another user: modes have no group/other bits,
#     and `runuser -u nobody -- cat FILE` fails for every file;
#   - a state file made world-readable while xdnatd was stopped is made
#     private at the next start, with a warning naming it; a readable file
#     xdnatd cannot fix (another user's) stops the start with the fix;
#   - a readable --ca-key stops the start;
#   - xdnatctl as another user says "permission denied", not "no instance".
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.48}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.48.0}
. "$(dirname "$0")/lib/netns.sh"

XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}
OTHER=${OTHER:-nobody}     # the other local user

envget() { sed -n "s/^$2=//p" "$1"; }
for t in runuser stat; do
	command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
id "$OTHER" >/dev/null 2>&1 || { echo "no user '$OTHER' (set OTHER=USER)" >&2; exit 1; }

xd_init
# The state directory must be reachable by $OTHER up to its own mode, or
# the checks below would pass for the wrong reason: not under $XD_TMP
# (mode 0700) but in a directory of its own, world-searchable.
PUB=$(mktemp -d "/tmp/xdnat-pub-$XD_TAG.XXXXXX")
chmod 0755 "$PUB"
rm_pub() { rm -rf "$PUB"; }
XD_CLEANUP_HOOKS+=(rm_pub)
STATE=$PUB/state
mkdir -m 0755 "$STATE"
DB=$STATE/$XD_INSTANCE.db

xd_step "LCA; xdnatd with RSIP and the Local CA; the state directory starts as 0755"
"$XD_CA" init-root -k "$XD_TMP/root.key" -o "$XD_TMP/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$XD_TMP/lca.key" -R "$XD_TMP/root.crt" -K "$XD_TMP/root.key" \
	-o "$XD_TMP/lca.crt" >/dev/null
xd_topology 1
ROUTER_OPTS=(--rsip --state-dir "$STATE" --port-block 100 --unknown drop
	--ca-key "$XD_TMP/lca.key" --ca-cert "$XD_TMP/lca.crt")
xd_start_router "${ROUTER_OPTS[@]}"

xd_step "h1 enrolled, registered, certified"
xd_ctl --state-dir "$STATE" enroll h1 secret-file "$XD_TMP/h1.key" >/dev/null
xd_bg "xdnat-host h1" "$(xd_host_ns 1)" "$XD_TMP/xdnat-host-h1.log" "$XD_XDNAT_HOST" \
	--dev "$XD_IF_HOST" --router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h1.key" --name h1 \
	--port-count 100 --info-file "$XD_TMP/h1.env" --state-dir "$XD_TMP/hoststate-h1" \
	--replace-routes
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-host-h1.log" '^xdnat-host: ready'
[ -s "$(envget "$XD_TMP/h1.env" XDNAT_CERT)" ] || fail "h1 has no certificate"
xd_ok "h1: ports $(envget "$XD_TMP/h1.env" XDNAT_PORTS), certificate $(envget "$XD_TMP/h1.env" XDNAT_CERT_SERIAL)"

# private PATH...: no group/other bits, and $OTHER cannot read (or list) it.
private() {
	local f m
	for f in "$@"; do
		m=$(stat -c %a "$f")
		(( (8#$m & 8#077) == 0 )) || fail "$f is mode $m: readable by group or others"
		if [ -d "$f" ]; then
			runuser -u "$OTHER" -- ls "$f" >/dev/null 2>&1 && fail "$OTHER can list $f"
		else
			runuser -u "$OTHER" -- cat "$f" >/dev/null 2>&1 && fail "$OTHER can read $f"
		fi
		xd_info "$(stat -c '%A %U %n' "$f")"
	done
	return 0
}

xd_step "after the first run: nothing in $STATE is readable by $OTHER"
FILES=("$STATE" "$STATE"/*)
[ -e "$DB" ] && [ -e "$DB-wal" ] || fail "expected $DB and $DB-wal: $(ls -la "$STATE")"
# The same check, made readable again, must fail: the check can fail.
chmod 0644 "$DB-wal"
if (private "$DB-wal") >/dev/null 2>&1; then fail "the check passes a 0644 file"; fi
chmod 0600 "$DB-wal"
# The real check: traverse as root, read as $OTHER with the directory
# opened up, so that only the file's own mode protects it.
private "${FILES[@]}"
chmod 0711 "$STATE"
for f in "$STATE"/*; do
	runuser -u "$OTHER" -- cat "$f" >/dev/null 2>&1 && fail "$OTHER reads $f (mode $(stat -c %a "$f"))"
done
chmod 0700 "$STATE"
xd_ok "${#FILES[@]} entries (the directory, $(cd "$STATE" && echo *)): no group/other bits, $OTHER reads none"

grep -q "$STATE was readable by group or others (mode 0755): now 0700" "$XD_TMP/xdnatd.log" ||
	fail "no warning about the 0755 state directory: $(grep -i readable "$XD_TMP/xdnatd.log")"
xd_ok "xdnatd made $STATE private and said so"

xd_step "another user's xdnatctl: permission denied"
out=$(runuser -u "$OTHER" -- "$XD_XDNATCTL" -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" stats 2>&1) &&
	fail "$OTHER ran xdnatctl stats: $out"
grep -qi "permission denied" <<<"$out" || fail "xdnatctl as $OTHER does not say permission denied: $out"
grep -qi "does not exist\|no xdnat instance" <<<"$out" && fail "xdnatctl as $OTHER says the instance is missing: $out"
out2=$(runuser -u "$OTHER" -- "$XD_XDNATCTL" -i "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" \
	--state-dir "$STATE" enroll h9 secret-file /dev/null 2>&1) && fail "$OTHER enrolled a host: $out2"
grep -qi "permission denied" <<<"$out2" || fail "xdnatctl enroll as $OTHER does not say permission denied: $out2"
xd_ok "$OTHER: $(head -1 <<<"$out")"
xd_ok "$OTHER: $(head -1 <<<"$out2")"

xd_step "a state file made world-readable while stopped is made private at start"
xd_stop "${XD_HOST_PID[1]:-$XD_LAST_PID}" || true
xd_stop "$XD_ROUTER_PID" || fail "xdnatd did not stop cleanly"
chmod 0644 "$DB"
mv "$XD_TMP/xdnatd.log" "$XD_TMP/xdnatd-1.log"
xd_start_router "${ROUTER_OPTS[@]}"
grep -q "$DB was readable by group or others (mode 0644): now 0600" "$XD_TMP/xdnatd.log" ||
	fail "no warning naming $DB: $(grep -i readable "$XD_TMP/xdnatd.log")"
private "$DB"
xd_ok "$DB: 0644 -> 0600, with a warning naming it"
xd_stop "$XD_ROUTER_PID" || fail "xdnatd did not stop cleanly"

xd_step "a readable file xdnatd cannot fix, and a readable --ca-key, stop the start"
install -o "$OTHER" -m 0644 /dev/null "$STATE/foreign"
rc=0
nsenter --net="/var/run/netns/$XD_NS_ROUTER" -- "$XD_XDNATD" --wan "$XD_IF_WAN" --lan "$XD_IF_LAN" \
	--global "$XD_GLOBAL" --instance "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" "${ROUTER_OPTS[@]}" \
	>"$XD_TMP/refused.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "xdnatd started with $STATE/foreign (another user's, 0644)"
grep -q "$STATE/foreign is owned by uid .*fix: chown" "$XD_TMP/refused.log" ||
	fail "the refusal does not name the file and the fix: $(cat "$XD_TMP/refused.log")"
xd_info "$(grep foreign "$XD_TMP/refused.log")"
rm -f "$STATE/foreign"
chmod 0640 "$XD_TMP/lca.key"
rc=0
nsenter --net="/var/run/netns/$XD_NS_ROUTER" -- "$XD_XDNATD" --wan "$XD_IF_WAN" --lan "$XD_IF_LAN" \
	--global "$XD_GLOBAL" --instance "$XD_INSTANCE" --pin-base "$XD_PIN_BASE" "${ROUTER_OPTS[@]}" \
	>"$XD_TMP/refused-key.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "xdnatd started with a 0640 --ca-key"
grep -q "lca.key is readable by group or others (mode 0640).*fix: chmod 600" "$XD_TMP/refused-key.log" ||
	fail "the refusal does not name the key and the fix: $(cat "$XD_TMP/refused-key.log")"
xd_info "$(grep -i "ca-key" "$XD_TMP/refused-key.log")"
xd_ok "both refused (exit $rc) with the file and the fix named"
xd_log "PASS: state private after a first run; readable state fixed or refused at start"
