#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Renewal and revocation against a real strongSwan remote (issue 16 item 7).
# Two hosts behind one xdnat router, each running unmodified strongSwan 5.9.8
# charon with the configuration xdnat-host --swan-dir writes, and a remote
# peer running charon, xdnat-peer and the updown/notice scripts of
# docs/STRONGSWAN.md (selftests/lib/strongswan.sh).  Short leases
# (RENEW_LEASE s, renewal at half) make the hosts renew their certificates
# every few seconds.  Checked:
#   - renewal never disturbs an SA: through at least RENEWALS renewals per
#     host, each host's IKE_SA and CHILD_SA stay the same on both ends
#     (unique ids and SPIs), pings pass with at most MAX_LOST lost, no
#     revocation notice goes out (superseded is no revocation event) and
#     xdnat-peer runs nothing;
#   - after each renewal xdnat-host reloads charon through vici (creds and
#     conns) and runs its --on-renew hook with the new serial;
#   - the next authentication uses the new certificate: with the router's
#     current CRL (listing every superseded one) loaded into the remote, h1
#     reauthenticates its IKE_SA and the remote reauthenticates h2's; both
#     succeed, and the certificate the remote received is one issued after
#     the renewals (its updown hook checked that serial);
#   - `xdnatctl cert revoke` of h2's current certificate, which the remote
#     never saw (h2's IKE_SA was authenticated with an earlier one): the
#     remote loses every SA of h2 within REVOKE_WITHIN s (notice, match by
#     identity), h1 keeps its SA and traffic;
#   - h2 cannot come back: its next renewals are refused a certificate
#     (REGISTRATION_DENIED, logged by xdnat-host) and its charon cannot
#     authenticate (the CRL the notice carried);
#   - after `xdnatctl enroll h2` again (new secret) and a restart of its
#     xdnat-host, h2 gets a certificate, authenticates and carries traffic.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.78}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.78.0}
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/strongswan.sh"

REMOTE_INNER=${REMOTE_INNER:-10.99.0.1}
HOST_INNER_PREFIX=${HOST_INNER_PREFIX:-10.98}
POOL=${POOL:-20000-29999}
PORTS_PER_HOST=${PORTS_PER_HOST:-100}
CRL_PORT=${CRL_PORT:-8080}
RENEW_LEASE=${RENEW_LEASE:-6}          # lease (s): a new certificate every RENEW_LEASE/2 s
RENEWALS=${RENEWALS:-3}                # renewals each host's SAs must survive
MAX_LOST=${MAX_LOST:-3}                # pings lost during them, per host
REVOKE_WITHIN=${REVOKE_WITHIN:-10}
XD_VERIFY=${XD_VERIFY:-$XD_BUILD/xdnat-verify}
XD_PEER=${XD_PEER:-$XD_BUILD/xdnat-peer}
XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}

host_inner() { printf '%s.%s.1' "$HOST_INNER_PREFIX" "$1"; }
host_inner2() { printf '%s.%s.2' "$HOST_INNER_PREFIX" "$1"; }   # a second, port-less child
envget() { sed -n "s/^$2=//p" "$1"; }
norm() { tr -d ':' <<<"$1" | tr 'A-F' 'a-f' | sed 's/^0*//'; }

T_START=$(date +%s)
xd_init
xs_init
for b in "$XD_CA" "$XD_VERIFY" "$XD_PEER"; do
	[ -x "$b" ] || fail "missing $b: run 'make all' first"
done
command -v openssl >/dev/null || fail "missing openssl (scripts/deps.sh)"
PKI=$XD_TMP/pki STATE=$XD_TMP/state
mkdir -p "$PKI"

xd_step "PKI, router (lease ${RENEW_LEASE}s), two enrolled hosts with --swan-dir, --swan-vici, --on-renew"
"$XD_CA" init-root -k "$PKI/root.key" -o "$PKI/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$PKI/lca.key" -R "$PKI/root.crt" -K "$PKI/root.key" \
	-o "$PKI/lca.crt" >/dev/null
xs_lca_swan "$PKI" "$XD_GLOBAL"
xs_remote_pki "$PKI" "$XD_REMOTE_WAN"
xd_topology 2
xd_start_router --rsip --state-dir "$STATE" --port-range "$POOL" --lease "$RENEW_LEASE" \
	--max-lease 60 --ca-key "$PKI/lca.key" --ca-cert "$PKI/lca.crt"
declare -A PORTS=() SWAN=() ID=() SECRET=()
# start_host I [LEASE]: xdnat-host for host I (blocks and certificate over RSIP).
start_host() {
	local i=$1 lease=${2:-$RENEW_LEASE} log=$XD_TMP/xdnat-host-h$1.log
	SWAN[$i]=$XD_TMP/h$i-swan
	: >>"$XD_TMP/h$i-renew.log"
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
		--router "$XD_ROUTER_LAN" --secret-file "${SECRET[$i]}" --name "h$i" \
		--port-count "$PORTS_PER_HOST" --lease "$lease" --info-file "$XD_TMP/h$i.env" \
		--state-dir "$XD_TMP/h$i-state" --swan-dir "${SWAN[$i]}" --swan-ca "$PKI/anchors.pem" \
		--swan-vici "unix://$(xs_dir "h$i")/run/charon.vici" \
		--on-renew "echo \"\$(date +%s.%N) \$XDNAT_CERT_PREVIOUS_SERIAL \$XDNAT_CERT_SERIAL \$XDNAT_SWAN_DIR\" >>'$XD_TMP/h$i-renew.log'"
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$log" '^xdnat-host: ready'
	PORTS[$i]=$(envget "$XD_TMP/h$i.env" XDNAT_PORTS)
	[ -n "$(envget "$XD_TMP/h$i.env" XDNAT_CERT_SERIAL)" ] || fail "h$i: no certificate from the LCA"
	ID[$i]=$(xs_swan_id "${SWAN[$i]}")
}
for i in 1 2; do
	SECRET[$i]=$XD_TMP/h$i.secret
	xd_ctl --state-dir "$STATE" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "${SECRET[$i]}" >/dev/null
	start_host "$i"
done
xd_ok "h1 '${ID[1]}' ports ${PORTS[1]}, h2 '${ID[2]}' ports ${PORTS[2]}"

xd_step "strongSwan: remote (xdnat-peer, updown hook with xdnat-verify), h1, h2"
RD=$(xs_dir remote)
xs_remote_setup remote "$PKI"
cp "$(envget "$XD_TMP/h1.env" XDNAT_CERT_CHAIN)" "$RD/lca-full.crt"
xs_remote_updown_script "$RD/updown.sh" remote "$XD_VERIFY" "$RD/swanctl/x509ca/root.crt" "$RD/lca-full.crt"
xs_remote_revoked_script "$RD/revoked.sh" remote
# child_conf NAME LOCAL_TS REMOTE_TS [UPDOWN]: one more child for a children {} block.
child_conf() {
	printf '\t\t\t%s {\n\t\t\t\tlocal_ts = %s\n\t\t\t\tremote_ts = %s\n\t\t\t\tesp_proposals = aes256gcm16\n' "$1" "$2" "$3"
	[ -z "${4:-}" ] || printf '\t\t\t\tupdown = %s\n' "$4"
	printf '\t\t\t}\n'
}
{
	echo "connections {"
	for i in 1 2; do
		child_conf "h${i}b" "$REMOTE_INNER/32" "$(host_inner2 "$i")/32" "$RD/updown.sh" >"$XD_TMP/child-r$i.conf"
		xs_remote_conn "h$i" "$XD_REMOTE_WAN" "$XD_GLOBAL" "${ID[$i]}" "$REMOTE_INNER/32" "$(host_inner "$i")/32" |
			sed "s|esp_proposals = aes256gcm16|esp_proposals = aes256gcm16\n\t\t\t\tupdown = $RD/updown.sh|" |
			sed "/children {/r $XD_TMP/child-r$i.conf"
	done
	echo "}"
} >"$RD/swanctl/swanctl.conf"
xd_ns "$XD_NS_REMOTE" ip addr add "$REMOTE_INNER/32" dev lo
xs_start remote "$XD_NS_REMOTE"
xs_load remote
for i in 1 2; do
	xs_host_setup "h$i" "${SWAN[$i]}" "$XD_REMOTE_WAN" "h$i" "$(host_inner "$i")/32" "$REMOTE_INNER/32"
	child_conf "h${i}b" "$(host_inner2 "$i")/32" "$REMOTE_INNER/32" >"$XD_TMP/child-h$i.conf"
	sed -i "/children {/r $XD_TMP/child-h$i.conf" "${SWAN[$i]}/swanctl/swanctl.conf"
	xd_ns "$(xd_host_ns "$i")" ip addr add "$(host_inner "$i")/32" dev lo
	xd_ns "$(xd_host_ns "$i")" ip addr add "$(host_inner2 "$i")/32" dev lo
	xs_start "h$i" "$(xd_host_ns "$i")"
	xs_load "h$i"
done
xd_bg xdnat-peer "$XD_NS_REMOTE" "$XD_TMP/xdnat-peer.log" "$XD_PEER" -a "$RD/swanctl/x509ca/root.crt" \
	--crl-out "$RD/swanctl/x509crl/lca.crl" -e "'$RD/revoked.sh' >>'$RD/revoked.log' 2>&1"
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-peer.log" 'listening on UDP'
PEER_PID=$XD_LAST_PID
for i in 1 2; do
	xs_initiate "h$i" "h$i" remote
done
for i in 1 2; do
	wait_for 10 grep -q "ALLOW h$i .* id='${ID[$i]}'" "$RD/updown.sh.log" ||
		fail "the remote's updown hook did not allow h$i: $(cat "$RD/updown.sh.log" 2>/dev/null)"
done
xd_ok "both hosts' IKE_SAs and CHILD_SAs up; the updown hook allowed both"

# ike_of NAME ID: "UNIQUEID SPI_I SPI_R" of NAME's ESTABLISHED IKE_SA with
# peer ID (any, on a host).
ike_of() {
	xs_sas "$1" | awk -v id="$2" '
		/^[^ ].*: #[0-9]+, / { u = $2; gsub(/[#,]/, "", u); est = ($3 == "ESTABLISHED,"); si = $5; sr = $6 }
		est && /^  remote / && (id == "" || index($0, "'\''" id "'\''")) { print u, si, sr; est = 0 }'
}
renewals() { wc -l <"$XD_TMP/h$1-renew.log"; }
serials_after() { # I LINE: the serials the hook saw from line LINE on
	tail -n +"$2" "$XD_TMP/h$1-renew.log" | awk '{ print $3 }'
}

# ---------------------------------------------------------------- renewals
xd_step "$RENEWALS certificate renewals per host (every $(( RENEW_LEASE / 2 ))s) under traffic: no SA is disturbed"
declare -A IKE_H=() IKE_R=() CHILD=() MARK=() PING=() LOSS=() SEEN=()
notices0=$(grep -c "revocation notice" "$XD_TMP/xdnatd.log") || true
for i in 1 2; do
	IKE_H[$i]=$(ike_of "h$i" "")
	IKE_R[$i]=$(ike_of remote "${ID[$i]}")
	CHILD[$i]=$(xs_child_spis "h$i" "h$i")
	[ -n "${IKE_H[$i]}" ] && [ -n "${IKE_R[$i]}" ] && [ -n "${CHILD[$i]}" ] ||
		fail "h$i: no IKE_SA/CHILD_SA before the renewals"
	MARK[$i]=$(( $(renewals "$i") + 1 ))
done
t_need=$(( (RENEWALS + 1) * RENEW_LEASE / 2 + 2 ))
for i in 1 2; do
	xd_ns "$(xd_host_ns "$i")" ping -c "$(( t_need * 5 ))" -i 0.2 -W 1 -I "$(host_inner "$i")" "$REMOTE_INNER" \
		>"$XD_TMP/ping-renew$i.out" 2>&1 &
	PING[$i]=$!
done
for i in 1 2; do
	wait_for "$(( t_need + 10 ))" eval '[ "$(serials_after '"$i"' '"${MARK[$i]}"' | wc -l)" -ge '"$RENEWALS"' ]' ||
		fail "h$i: fewer than $RENEWALS renewals with a new certificate in ${t_need}s ($(cat "$XD_TMP/h$i-renew.log"))"
done
for i in 1 2; do
	wait "${PING[$i]}" || true
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$XD_TMP/ping-renew$i.out")
	got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$XD_TMP/ping-renew$i.out")
	[ -n "$sent" ] && [ -n "$got" ] && [ $(( sent - got )) -le "$MAX_LOST" ] ||
		fail "h$i: pings through the renewals: ${got:-?}/${sent:-?} ($(tail -n 2 "$XD_TMP/ping-renew$i.out" | tr '\n' ' '))"
	LOSS[$i]="$got/$sent"
	# every renewal: a new serial, the previous one named
	tail -n +"${MARK[$i]}" "$XD_TMP/h$i-renew.log" | awk -v d="${SWAN[$i]}" '
		$2 == "" || $2 == $3 || $4 != d { bad = 1 } prev != "" && $2 != prev { bad = 1 } { prev = $3 }
		END { exit bad }' || fail "h$i: --on-renew saw inconsistent serials: $(cat "$XD_TMP/h$i-renew.log")"
	[ "$(ike_of "h$i" "")" = "${IKE_H[$i]}" ] || fail "h$i: its IKE_SA changed during the renewals (${IKE_H[$i]} -> $(ike_of "h$i" ""))"
	[ "$(ike_of remote "${ID[$i]}")" = "${IKE_R[$i]}" ] || fail "the remote's IKE_SA with h$i changed during the renewals"
	[ "$(xs_child_spis "h$i" "h$i")" = "${CHILD[$i]}" ] || fail "h$i: its CHILD_SA changed during the renewals"
	n=$(grep -c "charon reloaded the certificate and connections" "$XD_TMP/xdnat-host-h$i.log") || true
	[ "$n" -ge "$RENEWALS" ] || fail "h$i: xdnat-host reloaded charon $n times in $RENEWALS renewals: $(grep -i 'swan\|swanctl' "$XD_TMP/xdnat-host-h$i.log" | tail -n 3)"
	cmp -s "${SWAN[$i]}/swanctl/x509/host.crt" "$(envget "$XD_TMP/h$i.env" XDNAT_CERT)" ||
		fail "h$i: --swan-dir's certificate is not the newest"
done
notices1=$(grep -c "revocation notice" "$XD_TMP/xdnatd.log") || true
[ "$notices1" = "$notices0" ] || fail "xdnatd sent revocation notices for renewals: $(grep "revocation notice" "$XD_TMP/xdnatd.log" | tail -n 2)"
[ ! -s "$RD/revoked.log" ] || fail "xdnat-peer ran its command during renewals: $(cat "$RD/revoked.log")"
xd_ok "h1: $(serials_after 1 "${MARK[1]}" | wc -l) renewals, pings ${LOSS[1]}; h2: $(serials_after 2 "${MARK[2]}" | wc -l) renewals, pings ${LOSS[2]}; same IKE_SAs and CHILD_SAs on both ends; no notice, nothing run by xdnat-peer"

# ------------------------------------------- the next authentication
xd_step "reauthentication after the renewals uses the new certificate (the remote holds the router's current CRL, superseded certificates in it)"
# The router's current CRL (every superseded certificate in it) into the
# remote; its cached, fetched CRL dropped: an old certificate would fail.
# (a superseded certificate is listed from a grace period after the
# renewal until it expires: fetched again until one is)
fetch_crl() {
	xd_ns "$XD_NS_REMOTE" python3 -c '
import sys, urllib.request
open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=5).read())' \
		"http://$XD_GLOBAL:$CRL_PORT/crl/lca.crl" "$RD/swanctl/x509crl/lca.crl"
}
crl_has_superseded() {
	fetch_crl && openssl crl -inform DER -in "$RD/swanctl/x509crl/lca.crl" -noout -text | grep -q Superseded
}
wait_for 10 crl_has_superseded || fail "the router's CRL (fetched through G) never listed a superseded certificate"
xs_swanctl remote --load-creds --noprompt >/dev/null
xs_swanctl remote --flush-certs --type x509_crl >/dev/null
declare -A MARK2=()
for i in 1 2; do MARK2[$i]=$(renewals "$i"); done
u0=$(wc -l <"$RD/updown.sh.log")
xs_swanctl h1 --rekey --ike remote --reauth >/dev/null 2>&1 || fail "h1: --rekey --reauth failed"
xs_swanctl remote --rekey --ike-id "$(ike_of remote "${ID[2]}" | cut -d' ' -f1)" --reauth >/dev/null 2>&1 ||
	fail "remote: --rekey --reauth of h2's IKE_SA failed"
for i in 1 2; do
	wait_for 15 eval '[ -n "$(ike_of remote "${ID['"$i"']}")" ] && [ "$(ike_of remote "${ID['"$i"']}")" != "${IKE_R['"$i"']}" ] && [ -n "$(xs_child_spis h'"$i"' h'"$i"')" ]' ||
		fail "h$i: no new IKE_SA after the reauthentication (remote: $(ike_of remote "${ID[$i]}"); h$i log: $(grep -E 'AUTH|revoked|failed' "$(xs_log "h$i")" | tail -n 3 | tr '\n' ' '))"
	wait_for 10 eval 'tail -n +'"$(( u0 + 1 ))"' "$RD/updown.sh.log" | grep -q "ALLOW h'"$i"' .*id='\''${ID['"$i"']}'\''"' ||
		fail "h$i: the updown hook did not allow the new CHILD_SA: $(tail -n 4 "$RD/updown.sh.log")"
	s=$(tail -n +"$(( u0 + 1 ))" "$RD/updown.sh.log" | sed -n "s/^ALLOW h$i .*id='[^']*' serial=\([0-9A-Fa-f]*\).*/\1/p" | tail -n 1)
	# Issued in the renewals (or since): not the one the IKE_SA had.
	fresh=$( (serials_after "$i" "${MARK[$i]}"; serials_after "$i" "$(( MARK2[$i] + 1 ))") | sort -u)
	grep -qix "$(norm "$s")" < <(while read -r x; do norm "$x"; done <<<"$fresh") ||
		fail "h$i: the remote checked certificate $s, not one issued in the renewals ($(tr '\n' ' ' <<<"$fresh"))"
	xd_ns "$(xd_host_ns "$i")" ping -c 3 -i 0.2 -W 2 -I "$(host_inner "$i")" "$REMOTE_INNER" >/dev/null ||
		fail "h$i: no traffic after the reauthentication"
	SEEN[$i]=$s
done
! grep -q "certificate was revoked" "$(xs_log remote)" || fail "the remote refused a superseded certificate during the reauthentications"
xd_ok "h1 reauthenticated its IKE_SA, the remote h2's; the remote checked h1 ${SEEN[1]:0:12}..., h2 ${SEEN[2]:0:12}... (renewed certificates); traffic flows"

# ------------------------------------------------------- revocation
xd_step "xdnatctl cert revoke of h2's newest certificate (the remote never saw it): every SA of h2 ends"
wait_for 10 eval '[ "$(renewals 2)" -gt '"$(renewals 2)"' ]' || fail "h2 did not renew again"
S2=$(envget "$XD_TMP/h2.env" XDNAT_CERT_SERIAL)
xs_swanctl remote --list-certs --type x509 | tr -d ':' | tr 'A-F' 'a-f' | grep -q "$(norm "$S2")" &&
	fail "the remote already holds h2's newest certificate: the test would prove nothing"
H2_IKE=$(ike_of remote "${ID[2]}")
[ -n "$H2_IKE" ] || fail "the remote has no IKE_SA with h2 before the revocation"
H1_IKE=$(ike_of remote "${ID[1]}")
h2_gone() { [ -z "$(ike_of remote "${ID[2]}")" ]; }
log_mark=$(wc -l <"$(xs_log remote)")
r0=$(date +%s%N)
xd_ctl --state-dir "$STATE" cert revoke "$S2" >/dev/null || fail "xdnatctl cert revoke $S2 failed"
wait_for "$REVOKE_WITHIN" h2_gone ||
	fail "the remote still has h2's IKE_SA ${REVOKE_WITHIN}s after the revocation (xdnat-peer: $(tail -n 2 "$XD_TMP/xdnat-peer.log" | tr '\n' ' '); command: $(cat "$RD/revoked.log" 2>/dev/null))"
r1=$(date +%s%N)
grep -q "TERMINATED IKE_SA #${H2_IKE%% *} of '${ID[2]}'" "$RD/revoked.log" ||
	fail "h2's IKE_SA ended, but not by the notice script: $(cat "$RD/revoked.log")"
[ "$(ike_of remote "${ID[1]}")" = "$H1_IKE" ] || fail "h1's IKE_SA was touched by h2's revocation"
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -I "$(host_inner 1)" "$REMOTE_INNER" >/dev/null || fail "h1's tunnel stopped"
xd_info "$(grep TERMINATED "$RD/revoked.log" | head -n 1)"
xd_ok "h2's IKE_SA (authenticated with an earlier certificate) gone $(( (r1 - r0) / 1000000 )) ms after the revocation; h1 untouched"

xd_step "h2 cannot come back: no certificate on renewal, no authentication"
wait_for $(( RENEW_LEASE + 5 )) grep -q "refuses this host a certificate (REGISTRATION_DENIED" "$XD_TMP/xdnat-host-h2.log" ||
	fail "h2's xdnat-host did not log the refusal: $(tail -n 5 "$XD_TMP/xdnat-host-h2.log")"
grep -q "certificate for 'h2' refused: certificate .* was revoked" "$XD_TMP/xdnatd.log" ||
	fail "xdnatd did not log why it refused h2"
[ "$(envget "$XD_TMP/h2.env" XDNAT_CERT_SERIAL)" = "$S2" ] || fail "h2 got a new certificate after the revocation"
if xs_swanctl h2 --initiate --child h2 --timeout 10 >"$XD_TMP/h2-revoked.out" 2>&1; then
	fail "h2 authenticated again after its revocation"
fi
# Refused for the revocation (CRL from the notice) or, once the revoked
# certificate's short validity is over, for its expiry: no new one came.
why=$(tail -n +"$log_mark" "$(xs_log remote)" | grep -Eo "certificate was revoked|subject certificate invalid" | tail -n 1) ||
	fail "the remote did not refuse h2 for revocation or expiry: $(tail -n 5 "$(xs_log remote)")"
xd_ok "xdnatd refuses h2 certificates (REGISTRATION_DENIED, logged by xdnat-host); the remote refuses h2 ($why)"

xd_step "updown: a port-less CHILD_SA added to h1's older IKE_SA (its certificate expired or superseded since) is allowed"
H1_IKE=$(ike_of remote "${ID[1]}")
u0=$(wc -l <"$RD/updown.sh.log")
xs_initiate h1 h1b remote
wait_for 10 eval 'tail -n +'"$(( u0 + 1 ))"' "$RD/updown.sh.log" | grep -Eq "^ALLOW h1b $(host_inner2 1)/32 port=0 .*serial=[0-9A-F]*\((expired|superseded)\)"' ||
	fail "the updown hook did not allow h1's port-less child on an IKE_SA older than its certificate: $(tail -n +"$(( u0 + 1 ))" "$RD/updown.sh.log")"
sleep 1
[ "$(ike_of remote "${ID[1]}")" = "$H1_IKE" ] && [ -n "$(xs_child_spis remote h1b)" ] ||
	fail "h1's IKE_SA or its new child did not survive the updown check"
xd_info "$(tail -n +"$(( u0 + 1 ))" "$RD/updown.sh.log" | grep "^ALLOW h1b " | tail -n 1 | cut -c1-150)"
xd_ok "allowed: checked as of its last valid second or without its superseded CRL entry; h1's IKE_SA unchanged"

xd_step "re-enrolled, h2 works again"
xs_stop h2
xd_stop "${XD_HOST_PID[2]}" 10 >/dev/null 2>&1 || true
SECRET[2]=$XD_TMP/h2.secret2
xd_ctl --state-dir "$STATE" enroll h2 lan "$(xd_host_lan 2)" secret-file "${SECRET[2]}" >/dev/null
start_host 2 60   # a long lease now: the next step needs the certificate h2 authenticates with to stay current
S2B=$(envget "$XD_TMP/h2.env" XDNAT_CERT_SERIAL)
[ "$S2B" != "$S2" ] || fail "h2 has no new certificate after re-enrolment"
xs_start h2 "$(xd_host_ns 2)"
xs_load h2
xs_initiate h2 h2 remote
xd_ns "$(xd_host_ns 2)" ping -c 3 -i 0.2 -W 2 -I "$(host_inner 2)" "$REMOTE_INNER" >/dev/null ||
	fail "h2: no traffic after re-enrolment"
xd_ok "h2 re-enrolled: certificate ${S2B:0:12}..., authenticated, traffic flows"

xd_step "updown: a port-less CHILD_SA of an IKE_SA whose certificate is revoked ends the IKE_SA"
# No notice this time (xdnat-peer stopped): the remote only learns from a
# CRL it fetches, as a peer without xdnat-peer would; the hook must act.
xd_stop "$PEER_PID" >/dev/null 2>&1 || true
[ "$(envget "$XD_TMP/h2.env" XDNAT_CERT_SERIAL)" = "$S2B" ] || fail "h2 renewed before the check (lease 60 s)"
H2_IKE=$(ike_of remote "${ID[2]}")
[ -n "$H2_IKE" ] || fail "the remote has no IKE_SA with h2"
xd_ctl --state-dir "$STATE" cert revoke "$S2B" keyCompromise >/dev/null || fail "xdnatctl cert revoke $S2B failed"
wait_for 5 eval 'xd_ns "$XD_NS_REMOTE" python3 -c "
import sys, urllib.request
d = urllib.request.urlopen(sys.argv[1], timeout=5).read()
open(sys.argv[2], \"wb\").write(d)" "http://$XD_GLOBAL:$CRL_PORT/crl/lca.crl" "$RD/swanctl/x509crl/lca.crl" &&
	openssl crl -inform DER -in "$RD/swanctl/x509crl/lca.crl" -noout -text | grep -q "Serial Number: $S2B"' ||
	fail "the router's CRL does not list $S2B"
xs_swanctl remote --load-creds --noprompt >/dev/null
xs_swanctl remote --flush-certs --type x509_crl >/dev/null
u0=$(wc -l <"$RD/updown.sh.log")
xs_swanctl h2 --initiate --child h2b --ike remote --timeout 10 >/dev/null 2>&1 || true
wait_for 10 eval 'tail -n +'"$(( u0 + 1 ))"' "$RD/updown.sh.log" | grep -q "^DENY h2b $(host_inner2 2)/32 port=0 "' ||
	fail "the updown hook did not deny h2's port-less child: $(tail -n +"$(( u0 + 1 ))" "$RD/updown.sh.log")"
wait_for 10 eval '[ -z "$(ike_of remote "${ID[2]}")" ]' || fail "h2's IKE_SA survived the denial of its port-less child"
tail -n +"$(( u0 + 1 ))" "$RD/updown.sh.log" | grep -q "TERMINATED IKE_SA #${H2_IKE%% *}" ||
	fail "h2's IKE_SA ended, but not by the updown hook: $(tail -n +"$(( u0 + 1 ))" "$RD/updown.sh.log")"
[ "$(ike_of remote "${ID[1]}")" = "$H1_IKE" ] || fail "h1's IKE_SA was touched"
xd_info "$(tail -n +"$(( u0 + 1 ))" "$RD/updown.sh.log" | grep '^DENY' | head -n 1 | cut -c1-160)"
xd_ok "denied (certificate revoked) and h2's IKE_SA terminated by the hook; h1 untouched"
echo
echo "e2e_strongswan_renewal: all checks passed in $(( $(date +%s) - T_START )) s (revocation to the end of h2's SA: $(( (r1 - r0) / 1000000 )) ms)"
