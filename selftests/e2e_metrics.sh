#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# /metrics is for whom the operator says (issue 14):
#   - by default xdnatd listens on no TCP port: /metrics is served on the
#     UNIX socket RUN_DIR/INSTANCE.metrics, mode 0600 root; root reads it,
#     another user ($OTHER) is refused;
#   - --metrics-group GROUP: mode 0660 with that group, whose members read it;
#   - --metrics ADDR:PORT: served there over TCP, as before (no socket);
#   - the socket goes when xdnatd stops.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.49}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.49.0}
. "$(dirname "$0")/lib/netns.sh"

OTHER=${OTHER:-nobody}
TCP=${TCP:-127.0.0.1:9477}
for t in curl runuser ss; do
	command -v "$t" >/dev/null || { echo "missing tool: $t (scripts/deps.sh)" >&2; exit 1; }
done
id "$OTHER" >/dev/null 2>&1 || { echo "no user '$OTHER' (set OTHER=USER)" >&2; exit 1; }
OTHER_GROUP=$(id -gn "$OTHER")

xd_init
SOCK=$XD_RUN_DIR/$XD_INSTANCE.metrics
rm_sock() { rm -f "$SOCK"; }
XD_CLEANUP_HOOKS+=(rm_sock)
# scrape [USER]: the metrics page over the socket, as root or USER.
scrape() {
	if [ -n "${1:-}" ]; then
		runuser -u "$1" -- curl -sS --max-time 5 --unix-socket "$SOCK" http://localhost/metrics
	else
		curl -sS --max-time 5 --unix-socket "$SOCK" http://localhost/metrics
	fi
}
restart() {
	xd_stop "$XD_ROUTER_PID" || fail "xdnatd did not stop cleanly"
	[ ! -e "$SOCK" ] || fail "$SOCK left behind after xdnatd stopped"
	mv "$XD_TMP/xdnatd.log" "$XD_TMP/xdnatd-$(date +%s%N).log"
	xd_start_router "$@"
}

xd_step "default: no TCP listener, a UNIX socket root alone can use"
xd_topology 0
xd_start_router
listeners=$(xd_ns "$XD_NS_ROUTER" ss -Hltn)
[ -z "$listeners" ] || fail "xdnatd listens on TCP by default: $listeners"
[ -S "$SOCK" ] || fail "no socket $SOCK"
[ "$(stat -c '%a %U' "$SOCK")" = "600 root" ] || fail "$SOCK is $(stat -c '%a %U:%G' "$SOCK"), not 600 root"
scrape | grep -q '^xdnat_hosts 0$' || fail "root cannot read /metrics on $SOCK"
out=$(scrape "$OTHER" 2>&1) && fail "$OTHER reads /metrics: $(head -3 <<<"$out")"
# curl does not say why it could not connect; connect(2) does.
out=$(runuser -u "$OTHER" -- python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$SOCK" 2>&1) && fail "$OTHER connects to $SOCK"
grep -q "PermissionError" <<<"$out" || fail "$OTHER refused, but not for permission: $out"
xd_ok "no TCP listener; $SOCK 0600 root; root scrapes, $OTHER: ${out##*Error: }"

xd_step "--metrics-group $OTHER_GROUP: mode 0660, the group's members read it"
restart --metrics-group "$OTHER_GROUP"
[ "$(stat -c '%a %G' "$SOCK")" = "660 $OTHER_GROUP" ] ||
	fail "$SOCK is $(stat -c '%a %U:%G' "$SOCK"), not 660 with group $OTHER_GROUP"
scrape "$OTHER" | grep -q '^xdnat_hosts 0$' || fail "$OTHER (group $OTHER_GROUP) cannot read /metrics"
xd_ok "$(stat -c '%A %U:%G' "$SOCK"); $OTHER scrapes"

xd_step "--metrics $TCP: TCP, as the operator named it"
restart --metrics "$TCP"
[ ! -e "$SOCK" ] || fail "$SOCK exists with --metrics $TCP"
xd_ns "$XD_NS_ROUTER" curl -sS --max-time 5 "http://$TCP/metrics" | grep -q '^xdnat_hosts 0$' ||
	fail "no /metrics on $TCP"
xd_ok "http://$TCP/metrics answers"

xd_step "--metrics off, and a bad value"
restart --metrics off
[ -z "$(xd_ns "$XD_NS_ROUTER" ss -Hltn)" ] && [ ! -e "$SOCK" ] || fail "--metrics off still serves"
rc=0
"$XD_XDNATD" --wan x --lan y --global "$XD_GLOBAL" --metrics unix:relative 2>"$XD_TMP/bad.err" || rc=$?
[ "$rc" = 2 ] && grep -q "absolute PATH" "$XD_TMP/bad.err" ||
	fail "--metrics unix:relative: exit $rc, $(cat "$XD_TMP/bad.err")"
xd_ok "off: nothing served; unix:relative: usage error (exit 2)"
xd_log "PASS: /metrics on a root-only UNIX socket by default, TCP only when named"
