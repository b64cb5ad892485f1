#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The life of a router and its hosts, on an address plan other than the
# forwarding test's (other global and LAN ranges, three hosts, two global
# addresses, 4096-SPI blocks):
#   - pinned maps are readable with bpftool (typed, BTF-described entries);
#   - a second xdnatd on the same interfaces, or with the same instance name,
#     is refused with a clear error and disturbs nothing;
#   - xdnatctl rejects overlapping, foreign, misaligned and malformed blocks
#     (exit 1 / 2) and changes nothing;
#   - a host on the second global address works, and cannot use the first;
#   - --unknown drop drops traffic to unallocated ports;
#   - SIGKILL leaves the datapath forwarding; a restart takes it over;
#   - --keep-maps keeps hosts and blocks across a restart;
#   - SIGTERM detaches everything and restores the sysctls; xdnat-host undoes
#     every change it made on the host.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-203.0.113.77}
XD_GLOBAL2=${XD_GLOBAL2:-203.0.113.78}
XD_GLOBAL_NET=${XD_GLOBAL_NET:-203.0.113.0/24}
XD_ROUTER_WAN=${XD_ROUTER_WAN:-198.18.0.1}
XD_REMOTE_WAN=${XD_REMOTE_WAN:-198.18.0.2}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-172.16.5}
. "$(dirname "$0")/lib/netns.sh"

SPI_BITS=${SPI_BITS:-12}
ROUTER_PORT=${ROUTER_PORT:-2222}   # a service of the router itself on G
# expect_rc WANT DESCRIPTION COMMAND...: run, check exit status, keep stderr.
expect_rc() {
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$XD_TMP/out" 2>"$XD_TMP/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$XD_TMP/out" "$XD_TMP/err" >&2; fail "$what: exit $rc, expected $want"; }
	[ "$want" = 0 ] || [ -s "$XD_TMP/err" ] || fail "$what: failed without an error message"
}
hosts_json() { xd_ctl -j host show; }

xd_init
xd_step "topology: global $XD_GLOBAL,$XD_GLOBAL2, LAN $XD_LAN_PREFIX.0/24, 3 hosts"
xd_topology 3
ip -n "$XD_NS_ROUTER" addr add "$XD_GLOBAL2/32" dev "$XD_IF_WAN"
xd_start_router --global "$XD_GLOBAL2" --spi-block-bits "$SPI_BITS" --unknown drop --keep-maps \
	--router-ports "$ROUTER_PORT"
PIN=$XD_PIN_BASE/$XD_INSTANCE
xd_ok "xdnatd up, pins in $PIN"

xd_step "bpftool reads the pinned maps"
for m in xdnat_ports xdnat_spis xdnat_hosts xdnat_stats xdnat_hstats xdnat_lan_idx xdnat_info; do
	[ -e "$PIN/$m" ] || fail "map $m is not pinned in $PIN"
done
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports 1024-1535 spi 0x1000-0x1fff
xd_ctl host add 2 lan "$(xd_host_lan 2)" ports 1536-2047 spi 0x2000-0x3fff
xd_ctl host add 3 lan "$(xd_host_lan 3)" global "$XD_GLOBAL2" ports 1024-1535
bpftool map dump pinned "$PIN/xdnat_hosts" >"$XD_TMP/hosts.dump"
grep -q '"lan_addr"' "$XD_TMP/hosts.dump" || { cat "$XD_TMP/hosts.dump" >&2; fail "bpftool shows no typed host entries"; }
bpftool map lookup pinned "$PIN/xdnat_spis" key 1 0 0 0 >"$XD_TMP/spi.dump" 2>&1 ||
	fail "bpftool cannot look up SPI block 1: $(cat "$XD_TMP/spi.dump")"
grep -q '"host_id": 1' "$XD_TMP/spi.dump" || { cat "$XD_TMP/spi.dump" >&2; fail "SPI block 1 not owned by host 1"; }
xd_ok "bpftool map dump shows typed entries (lan_addr, host_id)"

xd_step "a second router is refused"
expect_rc 1 "second xdnatd on the same interfaces" \
	xd_ns "$XD_NS_ROUTER" "$XD_XDNATD" --wan "$XD_IF_WAN" --lan "$XD_IF_LAN" --global "$XD_GLOBAL" \
	--instance "other-$XD_TAG" --pin-base "$XD_PIN_BASE" --mode xdp
grep -qi 'already' "$XD_TMP/err" || fail "unclear error: $(cat "$XD_TMP/err")"
xd_info "$(head -1 "$XD_TMP/err")"
expect_rc 1 "second xdnatd with the same instance" \
	xd_ns "$XD_NS_ROUTER" "$XD_XDNATD" --wan "$XD_IF_WAN" --lan "$XD_IF_LAN" --global "$XD_GLOBAL" \
	--instance "$XD_INSTANCE" --pin-base "$XD_PIN_BASE"
grep -qi 'already running' "$XD_TMP/err" || fail "unclear error: $(cat "$XD_TMP/err")"
xd_info "$(head -1 "$XD_TMP/err")"
[ -d "$PIN" ] && xd_alive "$XD_ROUTER_PID" || fail "the refused instance disturbed the running one"
rm -rf "${XD_PIN_BASE:?}/other-$XD_TAG"
xd_ok "both refused with a clear message; the running router is untouched"

xd_step "xdnatctl rejects bad blocks and changes nothing"
hosts_json >"$XD_TMP/before.json"
expect_rc 1 "overlapping ports" xd_ctl ports add 2 1500-1600
expect_rc 1 "overlapping SPIs" xd_ctl spi add 2 0x1000-0x1fff
expect_rc 1 "misaligned SPI block" xd_ctl spi add 2 0x4800-0x57ff
expect_rc 1 "reserved SPIs" xd_ctl spi add 2 0-0xfff
expect_rc 1 "freeing another host's ports" xd_ctl ports del 2 1024-1100
expect_rc 1 "duplicate host id" xd_ctl host add 1 lan "$XD_LAN_PREFIX.99"
expect_rc 1 "duplicate LAN address" xd_ctl host add 9 lan "$(xd_host_lan 1)"
expect_rc 1 "unknown global address" xd_ctl host add 9 lan "$XD_LAN_PREFIX.99" global 192.0.2.99
expect_rc 2 "malformed range" xd_ctl ports add 2 3000-2000
expect_rc 2 "malformed address" xd_ctl host add 9 lan 300.1.1.1
expect_rc 2 "unknown command" xd_ctl host frobnicate
hosts_json >"$XD_TMP/after.json"
cmp -s "$XD_TMP/before.json" "$XD_TMP/after.json" || fail "a rejected command changed the tables"
xd_ctl -j lookup port 1500 | grep -q '"host":1[,}]' || fail "lookup port 1500 is not host 1"
xd_ok "11 bad commands rejected with messages, tables unchanged"

xd_step "hosts on two global addresses"
xd_start_host 1 1024-1535
xd_start_host 3 1024-1535 --global "$XD_GLOBAL2"
xd_bg echo "$XD_NS_REMOTE" "$XD_TMP/echo" python3 "$XD_TRAFFIC" udp-echo --port 7000 --count 10 --timeout 10
ECHO=$XD_LAST_PID
xd_wait_line "$ECHO" "$XD_TMP/echo" listening
xd_py "$(xd_host_ns 1)" udp-client --dst "$XD_REMOTE_WAN" --port 7000 --count 5 >"$XD_TMP/c1"
xd_py "$(xd_host_ns 3)" udp-client --dst "$XD_REMOTE_WAN" --port 7000 --count 5 >"$XD_TMP/c3"
wait "$ECHO" || true
[ "$(jget '["echoed"]' <"$XD_TMP/c1")" = 5 ] || fail "h1 on $XD_GLOBAL: no echoes"
[ "$(jget '["echoed"]' <"$XD_TMP/c3")" = 5 ] || fail "h3 on $XD_GLOBAL2: no echoes"
python3 - "$(jget '["peers"]' <"$XD_TMP/echo")" "$XD_GLOBAL" "$XD_GLOBAL2" <<'EOF' || fail "remote saw the wrong sources"
import ast, sys
addrs = sorted(k.split(":")[0] for k in ast.literal_eval(sys.argv[1]))
assert addrs == sorted(sys.argv[2:4]), addrs
EOF
xd_ok "h1 appears as $XD_GLOBAL, h3 as $XD_GLOBAL2, same port block on each"
# h3 (on G2) forges G1 as source, plain and inside its tunnel: both dropped.
before=$(xd_stat drop_spoof_src)
forged=$(xd_py "$XD_NS_REMOTE" ipv4 --src "$XD_GLOBAL" --dst "$XD_REMOTE_WAN" --proto 17 \
	--payload-hex 04001b5800080000 | jget '["hex"]')
tunnelled=$(xd_py "$XD_NS_REMOTE" ipv4 --src "$(xd_host_lan 3)" --dst "$XD_ROUTER_LAN" --proto 4 \
	--payload-hex "$forged" | jget '["hex"]')
xd_py "$(xd_host_ns 3)" raw-send --dst "$XD_ROUTER_LAN" --proto 17 --hex "$forged" --count 2 >/dev/null
xd_py "$(xd_host_ns 3)" raw-send --dst "$XD_ROUTER_LAN" --proto 4 --hex "$tunnelled" --count 2 >/dev/null
sleep 0.3
after=$(xd_stat drop_spoof_src)
[ $((after - before)) -ge 4 ] || fail "h3 sending as $XD_GLOBAL: drop_spoof_src $before -> $after, expected +4"
xd_ok "h3 cannot send as $XD_GLOBAL, plain or tunnelled (drop_spoof_src +$((after - before)))"

xd_step "--unknown drop: unallocated ports are dropped in XDP"
before=$(xd_stat unknown_port)
xd_py "$XD_NS_REMOTE" udp-client --dst "$XD_GLOBAL" --port 40000 --count 3 --timeout 0.2 >/dev/null || true
after=$(xd_stat unknown_port)
[ $((after - before)) -ge 3 ] || fail "unknown_port $before -> $after"
xd_ok "3 datagrams to an unallocated port counted and dropped"

xd_step "--router-ports: the router's own service on G stays reachable with --unknown drop"
xd_bg svc "$XD_NS_ROUTER" "$XD_TMP/svc" python3 "$XD_TRAFFIC" tcp-server --port "$ROUTER_PORT"
SVC=$XD_LAST_PID
xd_wait_line "$SVC" "$XD_TMP/svc" listening
before=$(xd_stat pass_router_port)
xd_py "$XD_NS_REMOTE" tcp-client --dst "$XD_GLOBAL" --port "$ROUTER_PORT" --bytes 20000 >"$XD_TMP/svcc" ||
	fail "the router's service $XD_GLOBAL:$ROUTER_PORT is unreachable"
wait "$SVC"
[ "$(jget '["sha256"]' <"$XD_TMP/svc")" = "$(jget '["sha256"]' <"$XD_TMP/svcc")" ] || fail "service data corrupted"
[ $(( $(xd_stat pass_router_port) - before )) -ge 3 ] || fail "pass_router_port not counted"
expect_rc 1 "giving the router's port to a host" xd_ctl ports add 1 "$ROUTER_PORT"
xd_ok "TCP to $XD_GLOBAL:$ROUTER_PORT reached the router (pass_router_port); no host can take the port"

xd_step "SIGKILL leaves forwarding up; a restart takes over"
kill -KILL "$XD_ROUTER_PID"
wait "$XD_ROUTER_PID" 2>/dev/null || true
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -e 1100 "$XD_REMOTE_WAN" >/dev/null || fail "no forwarding after SIGKILL"
rm -f "$XD_RUN_DIR/$XD_INSTANCE.lock"
xd_start_router --global "$XD_GLOBAL2" --spi-block-bits "$SPI_BITS" --unknown drop --keep-maps \
	--router-ports "$ROUTER_PORT"
hosts_json >"$XD_TMP/restarted.json"
python3 - "$XD_TMP/after.json" "$XD_TMP/restarted.json" <<'EOF' || fail "hosts changed across the restart"
import json, sys
strip = lambda f: [{k: v for k, v in h.items() if k in ("id", "lan", "global", "ports", "spis")}
                   for h in json.load(open(f))["hosts"]]
a, b = strip(sys.argv[1]), strip(sys.argv[2])
assert a == b, (a, b)
EOF
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -e 1100 "$XD_REMOTE_WAN" >/dev/null || fail "no forwarding after the restart"
xd_ok "forwarding survived SIGKILL; restart took over with the 3 hosts and blocks intact"

xd_step "SIGTERM: everything detached and restored"
host_state() {
	xd_ns "$(xd_host_ns 1)" sh -c 'ip -o addr show dev lo; ip route; tc filter show dev eth0 ingress; tc filter show dev eth0 egress; sysctl -n net.ipv4.ip_local_port_range'
}
xd_stop "${XD_HOST_PID[1]}" || fail "xdnat-host exited with an error"
state=$(host_state)
grep -q "$XD_GLOBAL" <<<"$state" && fail "xdnat-host left $XD_GLOBAL behind: $state"
grep -q bpf <<<"$state" && fail "xdnat-host left tc programs: $state"
grep -q '1024.*1535' <<<"$state" && fail "xdnat-host left ip_local_port_range: $state"
xd_ok "xdnat-host removed address, routes, tc programs and port range"
xd_stop "$XD_ROUTER_PID" || fail "xdnatd exited with an error"
ip -n "$XD_NS_ROUTER" -d link show "$XD_IF_WAN" | grep -q 'xdp' && fail "XDP still attached to $XD_IF_WAN"
ip -n "$XD_NS_ROUTER" -d link show "$XD_IF_LAN" | grep -q 'xdp' && fail "XDP still attached to $XD_IF_LAN"
[ -e "$PIN/link_wan" ] && fail "link pin left behind"
[ -e "$PIN/xdnat_hosts" ] || fail "--keep-maps: maps were removed"
xd_ok "XDP detached, links unpinned, maps kept (--keep-maps)"

# The SIGKILLed daemon could not restore the sysctls; a clean cycle must.
xd_ns "$XD_NS_ROUTER" sysctl -qw net.ipv4.ip_forward=0 net.ipv4.conf.lan.accept_local=0
xd_start_router --global "$XD_GLOBAL2" --spi-block-bits "$SPI_BITS"
[ "$(xd_ns "$XD_NS_ROUTER" sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "xdnatd did not enable ip_forward"
xd_stop "$XD_ROUTER_PID" || fail "xdnatd exited with an error"
[ "$(xd_ns "$XD_NS_ROUTER" sysctl -n net.ipv4.ip_forward)" = 0 ] || fail "ip_forward not restored"
[ "$(xd_ns "$XD_NS_ROUTER" sysctl -n net.ipv4.conf.lan.accept_local)" = 0 ] || fail "accept_local not restored"
[ -e "$PIN" ] && fail "pins left behind without --keep-maps: $(ls "$PIN")"
xd_ok "sysctls restored, pins removed on a clean stop without --keep-maps"
echo "e2e_lifecycle: all checks passed"
