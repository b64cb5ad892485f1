#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Raw ESP and AH (IPv4 protocols 50 and 51) made by an IPsec implementation
# we did not write: Scapy's SecurityAssociation (python3-scapy with
# python3-cryptography), through a real xdnat router, for the attach mode in
# XD_MODE (xdp by default; e2e_scapy_ipsec_tc.sh runs it with tc).
#
# Two hosts with distinct SPI blocks.  The remote encrypts, for each host,
# N packets with an ESP SA (AES-GCM, 16-byte ICV, RFC 4106) and N with an AH
# SA (HMAC-SHA-256-128), at SPIs on the edges of the host's block, transport
# mode, to the global address G (selftests/lib/ipsec_scapy.py documents
# the SAs, keys and payloads).  Proves:
#   - each host decrypts every one of its ESP packets and verifies the ICV
#     of every one of its AH packets with the same SAs, the inner payloads
#     are intact, and the packets are byte-identical to what the remote sent;
#   - no host receives any packet of the other host's SPIs;
#   - ESP and AH to an SPI in no block are counted by the router as
#     unknown_spi and reach no host;
#   - the checks are real: every packet is rejected with a wrong key.
# Scapy missing = failure with a message (scripts/deps.sh installs it).
set -euo pipefail
. "$(dirname "$0")/lib/netns.sh"

XD_MODE=${XD_MODE:-xdp}
N=${N:-10}                                   # packets per SA
SEED=${SEED:-xdnat-scapy-$$}                 # keys are derived from it per SPI
H1_PORTS=${H1_PORTS:-20000-20999}
H2_PORTS=${H2_PORTS:-21000-21999}
H1_SPIS=${H1_SPIS:-0x00010000-0x0001ffff}
H2_SPIS=${H2_SPIS:-0x00020000-0x0002ffff}
UNKNOWN_SPI=${UNKNOWN_SPI:-0x00550000}
IPSEC_PY=$XD_ROOT/selftests/lib/ipsec_scapy.py

# Debian's python3-scapy is installed for the system interpreter, which
# need not be the first python3 on PATH (pyenv, venvs): take the first one
# that can import Scapy's IPsec layer and the cryptography package.
SCAPY_PY=""
for py in ${XD_SCAPY_PYTHON:-} python3 /usr/bin/python3; do
	if command -v "$py" >/dev/null && "$py" -c 'import cryptography, scapy.layers.ipsec' 2>/dev/null; then
		SCAPY_PY=$(command -v "$py")
		break
	fi
done
[ -n "$SCAPY_PY" ] || fail "Scapy with python3-cryptography is not importable by python3 or /usr/bin/python3: install python3-scapy and python3-cryptography (scripts/deps.sh does)"

jlast() { python3 -c 'import sys; print(sys.stdin.read().strip().splitlines()[-1])'; }

xd_init
xd_step "topology: remote, router ($XD_MODE), 2 hosts; Scapy $("$SCAPY_PY" -c 'import scapy; print(scapy.VERSION)') ($SCAPY_PY)"
xd_topology 2
xd_start_router --mode "$XD_MODE" --spi-block-bits 16
[ "$XD_MODE" = tc ] && { grep -q "tc" "$XD_TMP/xdnatd.log" || fail "xdnatd did not attach in tc mode"; }
xd_ctl host add 1 lan "$(xd_host_lan 1)" ports "$H1_PORTS" spi "$H1_SPIS"
xd_ctl host add 2 lan "$(xd_host_lan 2)" ports "$H2_PORTS" spi "$H2_SPIS"
xd_start_host 1 "$H1_PORTS"
xd_start_host 2 "$H2_PORTS"
R=$XD_NS_REMOTE
xd_ok "router and hosts up"

h1_lo=$(( ${H1_SPIS%-*} )) h1_hi=$(( ${H1_SPIS#*-} ))
h2_lo=$(( ${H2_SPIS%-*} )) h2_hi=$(( ${H2_SPIS#*-} ))
# Both protocols at both edges of a block: h1 ESP at its first SPI and AH
# at its last, h2 the other way round.
H1_SAS="esp:$(printf '0x%08x' $h1_lo) ah:$(printf '0x%08x' $h1_hi)"
H2_SAS="esp:$(printf '0x%08x' $h2_hi) ah:$(printf '0x%08x' $h2_lo)"
UNK_SAS="esp:$(printf '0x%08x' $((UNKNOWN_SPI))) ah:$(printf '0x%08x' $((UNKNOWN_SPI + 1)))"
UNK_N=2

xd_step "receivers: raw sockets for protocols 50 and 51 on each host"
for i in 1 2; do
	blk=H${i}_SPIS
	xd_bg "scapy-recv h$i" "$(xd_host_ns $i)" "$XD_TMP/recv$i" "$SCAPY_PY" "$IPSEC_PY" recv \
		--seed "$SEED" --block "${!blk}" --expect $((2 * N)) --timeout 25 --linger 1
	eval "RECV$i=$XD_LAST_PID"
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/recv$i" listening 20
done
xd_ok "both hosts listening"

xd_step "remote: Scapy ESP (AES-GCM-16) and AH (HMAC-SHA-256-128) to $XD_GLOBAL"
unknown_before=$(xd_stat unknown_spi)
sa_args() { local s; for s in "$@"; do printf -- '--sa\n%s\n' "$s"; done; }
# The unknown SPIs first: a misdelivered one would reach a host before its
# receiver has everything it expects and stops.
# shellcheck disable=SC2086
mapfile -t UNK_ARGS < <(sa_args $UNK_SAS)
# shellcheck disable=SC2086
mapfile -t HOST_ARGS < <(sa_args $H1_SAS $H2_SAS)
xd_ns "$R" "$SCAPY_PY" "$IPSEC_PY" send --seed "$SEED" --src "$XD_REMOTE_WAN" --dst "$XD_GLOBAL" \
	--count "$UNK_N" --first-id 60000 "${UNK_ARGS[@]}" >"$XD_TMP/send-unknown" ||
	{ cat "$XD_TMP/send-unknown" >&2; fail "Scapy sender (unknown SPIs) failed"; }
xd_ns "$R" "$SCAPY_PY" "$IPSEC_PY" send --seed "$SEED" --src "$XD_REMOTE_WAN" --dst "$XD_GLOBAL" \
	--count "$N" --gap 0.002 "${HOST_ARGS[@]}" >"$XD_TMP/send" ||
	{ cat "$XD_TMP/send" >&2; fail "Scapy sender failed"; }
xd_ok "sent $(jlast <"$XD_TMP/send" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])') packets to the hosts' SPIs, $((2 * UNK_N)) to unallocated SPIs"

for i in 1 2; do
	pid_var=RECV$i
	wait "${!pid_var}" || { cat "$XD_TMP/recv$i" >&2; fail "h$i: Scapy receiver failed"; }
done

xd_step "each host: its own packets decrypted/verified, intact, nothing else"
verdict=$(python3 - "$XD_TMP/send" "$N" "$XD_TMP/recv1" "$H1_SAS" "$XD_TMP/recv2" "$H2_SAS" 2>&1 <<'EOF'
import json, sys

def last(path):
    return json.loads(open(path).read().strip().splitlines()[-1])

sent = last(sys.argv[1])
n = int(sys.argv[2])
bad = False
for h, (path, sas) in enumerate(((sys.argv[3], sys.argv[4]), (sys.argv[5], sys.argv[6])), 1):
    r = last(path)
    sas = sas.split()
    want_by_sa = {s: n for s in sas}
    want_digests = sorted(d for s in sas for d in sent["digests"][s])
    problems = []
    if r["failures"]:
        problems.append("failures: %s" % r["failures"][:5])
    if r["foreign"]:
        problems.append("received other SPIs (foreign): %s" % sorted(set(r["foreign"])))
    if r["duplicates"]:
        problems.append("%d duplicates" % r["duplicates"])
    if r["by_sa"] != want_by_sa:
        problems.append("per SA %s, expected %s" % (r["by_sa"], want_by_sa))
    if r["esp_decrypted"] != n or r["ah_verified"] != n:
        problems.append("ESP decrypted %d, AH verified %d, expected %d each"
                        % (r["esp_decrypted"], r["ah_verified"], n))
    if r["wrong_key_rejected"] != r["received"]:
        problems.append("only %d of %d packets rejected with a wrong key"
                        % (r["wrong_key_rejected"], r["received"]))
    if sorted(r["digests"]) != want_digests:
        problems.append("received packets are not byte-identical to the sent ones")
    if problems:
        bad = True
        print("h%d: %s" % (h, "; ".join(problems)), file=sys.stderr)
    else:
        print("h%d: ESP %d/%d decrypted, AH %d/%d ICVs verified (%s), payloads intact, "
              "byte-identical, 0 foreign, wrong key rejected %d/%d"
              % (h, r["esp_decrypted"], n, r["ah_verified"], n, " ".join(sas),
                 r["wrong_key_rejected"], r["received"]))
sys.exit(1 if bad else 0)
EOF
) || { printf '%s\n' "$verdict" >&2; xd_ctl stats >&2; fail "Scapy IPsec delivery wrong (see above)"; }
while read -r line; do xd_ok "$line"; done <<<"$verdict"

xd_step "unallocated SPIs: counted by the router, delivered nowhere"
unknown_after=$(xd_stat unknown_spi)
[ $((unknown_after - unknown_before)) -eq $((2 * UNK_N)) ] ||
	fail "unknown_spi went from $unknown_before to $unknown_after, expected +$((2 * UNK_N)) ($UNK_SAS)"
xd_ok "unknown_spi +$((2 * UNK_N)) for $UNK_SAS; neither host saw them (0 foreign)"

xd_ctl -j host show | python3 -c '
import json, sys
hosts = {h["id"]: h for h in json.load(sys.stdin)["hosts"]}
n = int(sys.argv[1])
for i in (1, 2):
    assert hosts[i]["to_host_packets"] >= 2 * n, hosts[i]
' "$N" || fail "per-host counters do not account for the ESP/AH packets"
xd_ok "per-host counters account for $((2 * N)) packets each"
echo "e2e_scapy_ipsec ($XD_MODE): all checks passed"
