#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# xdnatd's configuration file:
#   - --check-config reports every error with file, line and key, exits 1,
#     and touches nothing; a good file passes and still touches nothing;
#     a bad value on the command line is a usage error (exit 2);
#   - the command line overrides the file;
#   - SIGHUP applies a changed policy (unknown = pass -> drop) with 0 packets
#     of a running stream lost and the same daemon pid;
#   - SIGHUP with an invalid file, or one that changes what needs a restart
#     (global addresses), is refused and the router keeps running unchanged.
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"

H1_PORTS=${H1_PORTS:-20000-20999}

xd_init
xd_topology 1
CONF=$XD_TMP/xdnatd.conf
write_conf() { # UNKNOWN GLOBAL
	cat >"$CONF" <<EOF
# written by e2e_config.sh
[router]
wan = $XD_IF_WAN
lan = $XD_IF_LAN
global = $2
unknown = $1
instance = $XD_INSTANCE
pin-base = $XD_PIN_BASE
keep-maps = no

[metrics]
listen = 127.0.0.1:9478
EOF
}

xd_step "--check-config: every error named by file, line and key"
cat >"$XD_TMP/bad.conf" <<EOF
[router]
wan = $XD_IF_WAN
lan = $XD_IF_LAN
global = $XD_GLOBAL, 999.1.1.1
max-hosts = lots
colour = blue
[rsip]
quarantine = -5
[unknown-section]
x = 1
EOF
rc=0
xd_ns "$XD_NS_ROUTER" "$XD_XDNATD" --config "$XD_TMP/bad.conf" --check-config 2>"$XD_TMP/err" || rc=$?
[ "$rc" = 1 ] || fail "bad file: exit $rc, expected 1"
for want in "bad.conf:4: --global" "bad.conf:5: --max-hosts" "bad.conf:6: unknown key 'colour'" \
	    "bad.conf:8: --quarantine" "bad.conf:10: unknown key 'x' in section \[unknown-section\]"; do
	grep -q -- "$want" "$XD_TMP/err" || { cat "$XD_TMP/err" >&2; fail "no error '$want'"; }
done
xd_info "$(wc -l <"$XD_TMP/err") errors reported, e.g. '$(head -1 "$XD_TMP/err")'"
write_conf pass "$XD_GLOBAL"
out=$(xd_ns "$XD_NS_ROUTER" "$XD_XDNATD" --config "$CONF" --check-config) || fail "good file refused"
grep -q "configuration OK" <<<"$out" || fail "no OK line: $out"
[ -e "$XD_PIN_BASE/$XD_INSTANCE" ] && fail "--check-config created pins"
ip -n "$XD_NS_ROUTER" -d link show "$XD_IF_WAN" | grep -q xdp && fail "--check-config attached XDP"
rc=0
xd_ns "$XD_NS_ROUTER" "$XD_XDNATD" --config "$CONF" --wan nonexistent0 --check-config 2>"$XD_TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "nonexistent0" "$XD_TMP/err" || fail "command line did not override the file"
rc=0
xd_ns "$XD_NS_ROUTER" "$XD_XDNATD" --config "$CONF" --max-hosts lots --check-config 2>"$XD_TMP/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- "--max-hosts: 'lots'" "$XD_TMP/err" ||
	fail "a bad value on the command line: exit $rc (expected 2, a usage error): $(cat "$XD_TMP/err")"
xd_ok "bad file: 5 errors with file:line, exit 1; good file: OK, nothing attached or pinned; CLI overrides; CLI usage error: exit 2"

xd_step "run from the file; SIGHUP switches unknown traffic from pass to drop without loss"
xd_bg xdnatd "$XD_NS_ROUTER" "$XD_TMP/xdnatd.log" "$XD_XDNATD" --config "$CONF"
XD_ROUTER_PID=$XD_LAST_PID
xd_wait_line "$XD_ROUTER_PID" "$XD_TMP/xdnatd.log" '^xdnatd: ready'
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$H1_PORTS"
xd_start_host 1 "$H1_PORTS"
[ "$(xd_ctl -j config | jget '["unknown"]')" = pass ] || fail "file's unknown = pass not applied"
port=$(( ${H1_PORTS%-*} + 3 ))
xd_bg sink "$(xd_host_ns 1)" "$XD_TMP/sink" python3 "$XD_TRAFFIC" udp-count --port "$port"
SINK=$XD_LAST_PID
xd_wait_line "$SINK" "$XD_TMP/sink" listening
xd_bg src "$XD_NS_REMOTE" "$XD_TMP/src" python3 "$XD_TRAFFIC" udp-stream --dst "$XD_GLOBAL" \
	--port "$port" --rate 2000 --seconds 4
SRC=$XD_LAST_PID
sleep 1
write_conf drop "$XD_GLOBAL"
kill -HUP "$XD_ROUTER_PID"
deadline=$((SECONDS + 10))
until [ "$(xd_ctl -j config 2>/dev/null | jget '["unknown"]' 2>/dev/null)" = drop ]; do
	[ $SECONDS -lt $deadline ] || { cat "$XD_TMP/xdnatd.log" >&2; fail "SIGHUP did not apply unknown = drop"; }
	sleep 0.1
done
wait "$SRC" "$SINK" || fail "stream failed"
sent=$(jget '["sent"]' <"$XD_TMP/src")
got=$(jget '["received"]' <"$XD_TMP/sink")
[ "$sent" = "$got" ] || fail "$((sent - got)) of $sent packets lost across the reload"
xd_alive "$XD_ROUTER_PID" || fail "xdnatd exited on SIGHUP"
before=$(xd_stat unknown_port)
xd_py "$XD_NS_REMOTE" udp-client --dst "$XD_GLOBAL" --port 40000 --count 2 --timeout 0.2 >/dev/null || true
[ $(( $(xd_stat unknown_port) - before )) -ge 2 ] || fail "unknown traffic not counted after reload"
xd_ok "unknown = drop applied by SIGHUP, same pid $XD_ROUTER_PID, $sent packets, 0 lost"

xd_step "SIGHUP with a file that needs a restart, or is invalid: refused, router unchanged"
write_conf pass 192.0.2.99
kill -HUP "$XD_ROUTER_PID"
wait_for 5 grep -q "needs a restart" "$XD_TMP/xdnatd.log" || fail "no refusal logged for a global change"
echo "bogus line without equals" >>"$CONF"
kill -HUP "$XD_ROUTER_PID"
wait_for 5 grep -q "is not valid" "$XD_TMP/xdnatd.log" || fail "no refusal logged for an invalid file"
sleep 0.5
xd_alive "$XD_ROUTER_PID" || fail "xdnatd exited"
[ "$(xd_ctl -j config | jget '["unknown"]')" = drop ] || fail "a refused reload changed the policy"
xd_ctl -j config | grep -q "\"$XD_GLOBAL\"" || fail "a refused reload changed the global address"
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -e $(( ${H1_PORTS%-*} + 9 )) "$XD_REMOTE_WAN" >/dev/null ||
	fail "forwarding broken after refused reloads"
xd_ok "both refused with a logged reason; still forwarding with the old configuration"
echo "e2e_config: all checks passed"
