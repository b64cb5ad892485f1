#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Real IPsec through xdnat (issue 7): two hosts behind one xdnat router and a
# remote peer, each running UNMODIFIED strongSwan 5.9.8 charon (kernel-libipsec:
# ESP in UDP), authenticated with certificates from the router's Local CA.
#
#   [remote] ---- [router: xdnatd --rsip --ca-key/--ca-cert] ---- switch ---- h1, h2
#   charon          G (shared); the LCA serves its CRL at             charon each
#   trusts root     http://G:8080/crl/lca.crl and sends revocation notices
#   xdnat-peer
#
# Each host is enrolled (xdnatctl enroll) and obtains its port and SPI blocks
# and its certificate over RSIP (its key never leaves it); xdnat-host
# --swan-dir writes its strongSwan fragment from them (charon.port/port_nat_t,
# spi_min/spi_max, spi_mask/spi_label, copies of the key, the certificate
# and the CA certificates, the IKE identity).  Checked, with captures on the
# remote's WAN and on each host's LAN interface:
#   - both hosts bring up IKE_SAs and CHILD_SAs to the remote at the same
#     time through the one global address; the remote sees only G;
#   - each host is authenticated by its own identity (subject DN with its LAN
#     address), not by G: both SAs stay up (no INITIAL_CONTACT collision);
#   - every ESP-in-UDP packet the remote sends carries an SPI of the
#     receiving host's block and reaches that host only; inbound SPIs and the
#     hosts' IKE SPIs stay in the host's block (spi_label) across rekeys;
#   - ping, UDP and TCP flow through both tunnels concurrently; a CHILD_SA
#     and an IKE_SA rekey keep traffic flowing;
#   - a forced IKE reauthentication (h1 initiates its own, the remote
#     initiates h2's) replaces each IKE_SA with a new one (new unique id and
#     SPIs, fresh IKE_AUTH on both ends) whose IKE SPIs and CHILD_SA SPIs lie
#     in the host's block; the remote still holds one IKE_SA per host DN,
#     traffic flows, and no misdelivery counter of the router moves;
#   - the remote fetches the CRL from xdnatd's own endpoint through G
#     (revocation = ifuri: no CRL, no authentication);
#   - an updown hook on the remote calls xdnat-verify and tears down at once
#     a CHILD_SA whose traffic selectors use ports outside the certified
#     range (another host's port), and keeps one inside it;
#   - certificates signed with the LCA's key for identities outside G's
#     namespace are refused by the remote's charon during IKE_AUTH, with the
#     README's remote configuration (remote.id per host or "<DN base>, CN=*",
#     ca_id = the LCA): an IP SAN/identity of another address, G plus that
#     address, another router's DN; a DN inside G's namespace with an extra
#     SAN of another address authenticates as that DN (strongSwan 5.9.8
#     checks no name constraint of this LCA) and the updown hook's
#     xdnat-verify ends its IKE_SA within seconds (docs/STRONGSWAN.md);
#     last, the same with h1's own DN on h1's own connection: only that
#     IKE_SA ends, h1's own stays;
#   - `xdnatctl cert revoke` of h2's certificate: xdnatd sends the remote (a
#     recorded ESP-in-UDP peer of h2) an LCA-signed notice; xdnat-peer on
#     the remote verifies it, loads the CRL it carries and terminates h2's
#     IKE_SA (swanctl --terminate --ike-id) within seconds; h2 cannot
#     authenticate again; h1 is untouched.
set -euo pipefail
XD_GLOBAL=${XD_GLOBAL:-192.0.2.77}
XD_LAN_PREFIX=${XD_LAN_PREFIX:-10.77.0}
. "$(dirname "$0")/lib/netns.sh"
. "$(dirname "$0")/lib/strongswan.sh"

REMOTE_INNER=${REMOTE_INNER:-10.99.0.1}      # the remote's tunnel-side address
HOST_INNER_PREFIX=${HOST_INNER_PREFIX:-10.98} # host I: PREFIX.I.1
POOL=${POOL:-20000-29999}
PORTS_PER_HOST=${PORTS_PER_HOST:-200}
CRL_PORT=${CRL_PORT:-8080}                   # xdnatd's CRL endpoint (outside POOL)
FORGED_G=${FORGED_G:-203.0.113.99}           # another router's G: outside the LCA's namespace
FOREIGN_IP=${FOREIGN_IP:-198.51.100.88}      # an address nobody behind G owns (a partner's)
REVOKE_WITHIN=${REVOKE_WITHIN:-10}           # seconds from `cert revoke` to the SA's end
XD_CA=${XD_CA:-$XD_BUILD/xdnat-ca}
XD_VERIFY=${XD_VERIFY:-$XD_BUILD/xdnat-verify}
XD_PEER=${XD_PEER:-$XD_BUILD/xdnat-peer}
CRL_URL="http://$XD_GLOBAL:$CRL_PORT/crl/lca.crl"

host_inner() { printf '%s.%s.1' "$HOST_INNER_PREFIX" "$1"; }
envget() { sed -n "s/^$2=//p" "$1"; }
hex() { printf '%08x' "$(( $1 ))"; }

# ---------------------------------------------------------------- set-up
T_START=$(date +%s)
xd_init
xs_init
for b in "$XD_CA" "$XD_VERIFY" "$XD_PEER"; do
	[ -x "$b" ] || fail "missing $b: run 'make all' first"
done
command -v openssl >/dev/null || fail "missing openssl (scripts/deps.sh)"
PKI=$XD_TMP/pki STATE=$XD_TMP/state
mkdir -p "$PKI"

xd_step "PKI: root CA, the router's LCA (name-constrained to G), the remote's certificate"
"$XD_CA" init-root -k "$PKI/root.key" -o "$PKI/root.crt" >/dev/null
"$XD_CA" init-lca -g "$XD_GLOBAL" -k "$PKI/lca.key" -R "$PKI/root.crt" -K "$PKI/root.key" \
	-o "$PKI/lca.crt" >/dev/null
# ONE LCA certificate, whose profile strongSwan 5.9.8 parses (docs/LCA.md,
# "Certificate profile and why"): checked here, not assumed.
xs_anchors "$PKI"
xd_info "strongSwan $(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null) parses the LCA certificate; the remote pins it with ca_id = '$XS_LCA_ID'"
# The remote is any IPsec peer with a certificate from the root.
xs_remote_pki "$PKI" "$XD_REMOTE_WAN"
# Forgeries: the LCA's key signs certificates outside G's namespace.
#   ip:   identity and IP SAN FOREIGN_IP          (IKE ID FOREIGN_IP)
#   gip:  G's DN base, IP SANs G and FOREIGN_IP   (IKE ID FOREIGN_IP)
#   dn:   another router's DN (FORGED_G)          (IKE ID that DN)
#   san:  a DN inside G's base, SANs G, a DNS name of G's domain and
#         FOREIGN_IP                               (IKE ID that DN)
#   h1:   h1's own DN and DNS name, plus FOREIGN_IP (IKE ID h1's DN, on
#         h1's own connection; made once h1's identity is known)
DOMAIN=$(awk -F. '{ print $4"."$3"."$2"."$1".in-addr.arpa" }' <<<"$XD_GLOBAL")
SAN_DN_CN=10.77.0.99@$XD_GLOBAL
declare -A FORGE_SUBJ=(
	[ip]="/O=partner/CN=$FOREIGN_IP"
	[gip]="/O=xdnat/OU=$XD_GLOBAL/CN=10.77.0.98@$XD_GLOBAL"
	[dn]="/O=xdnat/OU=$FORGED_G/CN=$(xd_host_lan 1)@$FORGED_G"
	[san]="/O=xdnat/OU=$XD_GLOBAL/CN=$SAN_DN_CN"
)
declare -A FORGE_SAN=(
	[ip]="IP:$FOREIGN_IP"
	[gip]="IP:$XD_GLOBAL, IP:$FOREIGN_IP"
	[dn]="IP:$FORGED_G"
	[san]="IP:$XD_GLOBAL, DNS:10-77-0-99.$DOMAIN, IP:$FOREIGN_IP"
)
declare -A FORGE_ID=(
	[ip]=$FOREIGN_IP
	[gip]=$FOREIGN_IP
	[dn]="O=xdnat, OU=$FORGED_G, CN=$(xd_host_lan 1)@$FORGED_G"
	[san]="O=xdnat, OU=$XD_GLOBAL, CN=$SAN_DN_CN"
)
for f in ip gip dn san; do
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/forged-$f.key" \
		-subj "${FORGE_SUBJ[$f]}" -out "$PKI/forged-$f.csr" 2>/dev/null
	printf '[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nsubjectAltName = %s\nauthorityKeyIdentifier = keyid\n' \
		"${FORGE_SAN[$f]}" >"$PKI/forged-$f.cnf"
	openssl x509 -req -in "$PKI/forged-$f.csr" -CA "$PKI/lca.crt" -CAkey "$PKI/lca.key" -days 1 \
		-set_serial "0x$(openssl rand -hex 16)" -extfile "$PKI/forged-$f.cnf" -extensions v3 \
		-out "$PKI/forged-$f.crt" 2>/dev/null
	python3 - "$PKI/forged-$f.crt" "$PKI/lca.crt" <<'PY' || fail "the forged certificate $f is not signed by the LCA key"
import sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
f, l = (x509.load_pem_x509_certificate(open(p, "rb").read()) for p in sys.argv[1:3])
l.public_key().verify(f.signature, f.tbs_certificate_bytes, ec.ECDSA(f.signature_hash_algorithm))
assert f.issuer == l.subject
PY
	# A verifier that reads the LCA's constraints refuses each of them.
	! openssl verify -x509_strict -CAfile "$PKI/root.crt" -untrusted "$PKI/lca.crt" "$PKI/forged-$f.crt" >/dev/null 2>&1 ||
		fail "openssl verify accepts the forged certificate $f"
done
xd_ok "root, LCA for $XD_GLOBAL, remote certificate; 4 certificates forged with the LCA key (openssl verify refuses each)"

xd_step "topology: remote, router (G = $XD_GLOBAL, Local CA on), h1, h2"
xd_topology 2
xd_start_router --rsip --state-dir "$STATE" --port-range "$POOL" --lease 600 \
	--ca-key "$PKI/lca.key" --ca-cert "$PKI/lca.crt"
grep -q "Local CA on, CRL at $CRL_URL" "$XD_TMP/xdnatd.log" ||
	fail "xdnatd did not announce its CRL at $CRL_URL: $(grep -i 'CRL\|CA' "$XD_TMP/xdnatd.log" | head -3)"
for i in 1 2; do
	xd_ctl --state-dir "$STATE" enroll "h$i" lan "$(xd_host_lan "$i")" secret-file "$XD_TMP/h$i.key" >/dev/null
done
xd_ok "xdnatd serves the LCA's CRL at $CRL_URL; h1, h2 enrolled"

xd_step "hosts: xdnat-host over RSIP (blocks and certificate) with --swan-dir"
SWAN_CA=(--swan-ca "$PKI/anchors.pem")   # root (to verify the remote) + the LCA certificate
declare -A PORTS=() SPIS=() SWAN=() ID=() SERIAL=() UDP_ECHOED=()
for i in 1 2; do
	SWAN[$i]=$XD_TMP/h$i-swan
	log=$XD_TMP/xdnat-host-h$i.log
	xd_bg "xdnat-host h$i" "$(xd_host_ns "$i")" "$log" "$XD_XDNAT_HOST" --dev "$XD_IF_HOST" \
		--router "$XD_ROUTER_LAN" --secret-file "$XD_TMP/h$i.key" --name "h$i" \
		--port-count "$PORTS_PER_HOST" --info-file "$XD_TMP/h$i.env" \
		--state-dir "$XD_TMP/h$i-state" --swan-dir "${SWAN[$i]}" "${SWAN_CA[@]}"
	XD_HOST_PID[$i]=$XD_LAST_PID
	xd_wait_line "$XD_LAST_PID" "$log" '^xdnat-host: ready'
	env=$XD_TMP/h$i.env
	PORTS[$i]=$(envget "$env" XDNAT_PORTS)
	SPIS[$i]=$(envget "$env" XDNAT_SPIS)
	SERIAL[$i]=$(envget "$env" XDNAT_CERT_SERIAL)
	[ -n "${PORTS[$i]}" ] && [ -n "${SPIS[$i]}" ] || fail "h$i: no port or SPI block in its info file"
	[ -n "${SERIAL[$i]}" ] && [ -s "$(envget "$env" XDNAT_CERT)" ] ||
		fail "h$i: no certificate from the router's LCA (XDNAT_CERT in $env): $(grep -i cert "$log" | head -3)"
	frag=${SWAN[$i]}/strongswan.d/xdnat.conf
	[ -f "$frag" ] || fail "h$i: xdnat-host wrote no $frag"
	grep -q "port = ${PORTS[$i]%-*}\$" "$frag" || fail "h$i: charon.port is not the block's first port"
	grep -q "spi_min = 0x$(hex "${SPIS[$i]%-*}")" "$frag" || fail "h$i: spi_min is not the block's first SPI"
	grep -q "spi_max = 0x$(hex "${SPIS[$i]#*-}")" "$frag" || fail "h$i: spi_max is not the block's last SPI"
	# The enrolled key and certificate, not new ones.
	cmp -s "${SWAN[$i]}/swanctl/private/host.key" "$(envget "$env" XDNAT_KEY)" ||
		fail "h$i: --swan-dir's key is not the key xdnat-host enrolled with"
	cmp -s "${SWAN[$i]}/swanctl/x509/host.crt" "$(envget "$env" XDNAT_CERT)" ||
		fail "h$i: --swan-dir's certificate is not the one the LCA issued over RSIP"
	[ ! -e "${SWAN[$i]}/host.csr" ] || fail "h$i: --swan-dir made a CSR although the CSR went over RSIP"
	[ "$(stat -c %a "${SWAN[$i]}/swanctl/private/host.key")" = 600 ] || fail "h$i: key not mode 600"
	openssl verify -CAfile "$PKI/root.crt" -untrusted "$(envget "$env" XDNAT_CERT_CHAIN)" \
		"${SWAN[$i]}/swanctl/x509/host.crt" >/dev/null 2>&1 ||
		fail "h$i: its certificate does not verify to the root through the LCA chain it received"
	ID[$i]=$(sed -n 's/^\t\tid = "\(.*\)"$/\1/p' "${SWAN[$i]}/swanctl/conf.d/xdnat.conf")
	subj=$(openssl x509 -in "${SWAN[$i]}/swanctl/x509/host.crt" -noout -subject -nameopt sep_comma_plus_space,sname,-esc_msb)
	[ "subject=${ID[$i]}" = "$subj" ] || fail "h$i: identity '${ID[$i]}' is not the certificate's subject ($subj)"
	xd_ok "h$i: ports ${PORTS[$i]}, SPIs ${SPIS[$i]}, certificate ${SERIAL[$i]:0:12}..., identity '${ID[$i]}'"
done
# The forgery for h1's own connection: its DN and DNS name, plus FOREIGN_IP.
f=h1
FORGE_ID[h1]=${ID[1]}
h1_dns=$(openssl x509 -in "${SWAN[1]}/swanctl/x509/host.crt" -noout -ext subjectAltName | grep -o 'DNS:[^,]*' | head -n 1)
[ -n "$h1_dns" ] || fail "h1's certificate has no DNS SAN"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/forged-h1.key" \
	-subj "/$(sed 's/, /\//g' <<<"${ID[1]}")" -out "$PKI/forged-h1.csr" 2>/dev/null
printf '[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nsubjectAltName = IP:%s, %s, IP:%s\nauthorityKeyIdentifier = keyid\n' \
	"$XD_GLOBAL" "$h1_dns" "$FOREIGN_IP" >"$PKI/forged-h1.cnf"
openssl x509 -req -in "$PKI/forged-h1.csr" -CA "$PKI/lca.crt" -CAkey "$PKI/lca.key" -days 1 \
	-set_serial "0x$(openssl rand -hex 16)" -extfile "$PKI/forged-h1.cnf" -extensions v3 \
	-out "$PKI/forged-h1.crt" 2>/dev/null
[ "$(openssl x509 -in "$PKI/forged-h1.crt" -noout -subject)" = "$(openssl x509 -in "${SWAN[1]}/swanctl/x509/host.crt" -noout -subject)" ] ||
	fail "the forgery for h1's connection does not carry h1's DN"
! openssl verify -x509_strict -CAfile "$PKI/root.crt" -untrusted "$PKI/lca.crt" "$PKI/forged-h1.crt" >/dev/null 2>&1 ||
	fail "openssl verify accepts the forged certificate for h1's DN"
[ "${ID[1]}" != "${ID[2]}" ] || fail "both hosts have the identity ${ID[1]}"


# ----------------------------------------------------------- strongSwan
xd_step "strongSwan: charon per namespace (kernel-libipsec), swanctl configurations"
# Remote: standard ports; trusts the root only; a CRL is required when the
# certificate names a distribution point (revocation = ifuri); every
# CHILD_SA goes through the xdnat-verify updown hook.
RD=$(xs_dir remote)
xs_conf remote
cp "$PKI/root.crt" "$RD/swanctl/x509ca/root.crt"
cp "$(envget "$XD_TMP/h1.env" XDNAT_CERT_CHAIN)" "$RD/lca-full.crt"   # the LCA certificate as the router sends it
cp "$PKI/remote.crt" "$RD/swanctl/x509/remote.crt"
cp "$PKI/remote.key" "$RD/swanctl/private/remote.key"
# The updown hook of docs/STRONGSWAN.md (the library writes it): xdnat-verify
# on the certificate that authenticated the peer (the newest charon holds
# for its DN); a refused child with ports is terminated, a refused
# port-less child ends its IKE_SA.  Log: updown-verify.sh.log.
xs_remote_updown_script "$RD/updown-verify.sh" remote "$XD_VERIFY" "$RD/swanctl/x509ca/root.crt" "$RD/lca-full.crt"
# The wildcard connection's hook: the library's (checks the certificate that
# authenticated the IKE_SA; a refused port-less child ends its IKE_SA).
xs_remote_updown_script "$RD/updown-any.sh" remote "$XD_VERIFY" "$RD/swanctl/x509ca/root.crt" "$RD/lca-full.crt"
{
	echo "connections {"
	for i in 1 2; do
		cat <<EOF
	h$i {
		version = 2
		local_addrs = $XD_REMOTE_WAN
		remote_addrs = $XD_GLOBAL
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = remote.crt
			id = $XD_REMOTE_WAN
		}
		remote {
			auth = pubkey
			id = "${ID[$i]}"
			ca_id = "$XS_LCA_ID"
			revocation = ifuri
		}
		children {
			h$i {
				local_ts = $REMOTE_INNER/32
				remote_ts = $(host_inner "$i")/32
				esp_proposals = aes256gcm16
				updown = $RD/updown-verify.sh
			}
			h$i-ports {
				# narrowed to what the host proposes: its ports on G
				local_ts = $REMOTE_INNER/32[udp]
				remote_ts = $XD_GLOBAL/32[udp]
				esp_proposals = aes256gcm16
				updown = $RD/updown-verify.sh
			}
		}
	}
EOF
	done
	# Configured as README "Running strongSwan behind xdnat" says:
	# any host behind G (the wildcard DN, pinned to this G's LCA), another
	# router's hosts (pinned to that router's LCA), and a partner that is
	# not behind xdnat at all (pinned to its own issuing CA).
	cat <<EOF
	g-any {
		version = 2
		local_addrs = $XD_REMOTE_WAN
		remote_addrs = $XD_GLOBAL
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = remote.crt
			id = $XD_REMOTE_WAN
		}
		remote {
			auth = pubkey
			id = "O=xdnat, OU=$XD_GLOBAL, CN=*"
			ca_id = "$XS_LCA_ID"
			revocation = ifuri
		}
		children {
			g-any {
				local_ts = $REMOTE_INNER/32
				remote_ts = 10.98.99.1/32
				esp_proposals = aes256gcm16
				updown = $RD/updown-any.sh
			}
		}
	}
	other-g {
		version = 2
		local_addrs = $XD_REMOTE_WAN
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = remote.crt
			id = $XD_REMOTE_WAN
		}
		remote {
			auth = pubkey
			id = "O=xdnat, OU=$FORGED_G, CN=*"
			ca_id = "O=xdnat, OU=$FORGED_G, CN=xdnat LCA $FORGED_G"
		}
		children {
			other-g {
				local_ts = $REMOTE_INNER/32
				remote_ts = 10.98.99.1/32
				esp_proposals = aes256gcm16
			}
		}
	}
	partner {
		version = 2
		local_addrs = $XD_REMOTE_WAN
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = remote.crt
			id = $XD_REMOTE_WAN
		}
		remote {
			auth = pubkey
			id = $FOREIGN_IP
			ca_id = "O=partner, CN=partner CA"
		}
		children {
			partner {
				local_ts = $REMOTE_INNER/32
				remote_ts = 10.98.99.1/32
				esp_proposals = aes256gcm16
			}
		}
	}
EOF
	echo "}"
} >"$RD/swanctl/swanctl.conf"

for i in 1 2; do
	o=$(( 3 - i ))
	D=$(xs_dir "h$i")
	# The operator's strongswan.conf includes xdnat-host's fragment.
	xs_conf "h$i" "include ${SWAN[$i]}/strongswan.d/xdnat.conf"
	rm -rf "$D/swanctl"
	ln -s "${SWAN[$i]}/swanctl" "$D/swanctl"
	cat >"${SWAN[$i]}/swanctl/swanctl.conf" <<EOF
include conf.d/*.conf
connections {
	remote : xdnat-local {
		version = 2
		remote_addrs = $XD_REMOTE_WAN
		remote_port = 4500
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		remote {
			auth = pubkey
			id = $XD_REMOTE_WAN
		}
		children {
			h$i {
				local_ts = $(host_inner "$i")/32
				remote_ts = $REMOTE_INNER/32
				esp_proposals = aes256gcm16
			}
			own-port {
				local_ts = $XD_GLOBAL/32[udp/$(( ${PORTS[$i]%-*} + 10 ))]
				remote_ts = $REMOTE_INNER/32[udp]
				esp_proposals = aes256gcm16
			}
			other-port {
				# a port of the other host's block: must not survive
				local_ts = $XD_GLOBAL/32[udp/$(( ${PORTS[$o]%-*} + 10 ))]
				remote_ts = $REMOTE_INNER/32[udp]
				esp_proposals = aes256gcm16
			}
		}
	}
}
EOF
	if [ "$i" = 1 ]; then
		# h1 also presents the forgeries (its own key and certificate stay),
		# from its charon's NAT-T port, like its own connection.
		for f in ip gip dn san; do
			cp "$PKI/forged-$f.crt" "${SWAN[1]}/swanctl/x509/forged-$f.crt"
			install -m 600 "$PKI/forged-$f.key" "${SWAN[1]}/swanctl/private/forged-$f.key"
			cat >>"${SWAN[1]}/swanctl/swanctl.conf" <<EOF
connections {
	forged-$f {
		version = 2
		local_addrs = $XD_GLOBAL
		local_port = $(( ${PORTS[1]%-*} + 1 ))
		remote_addrs = $XD_REMOTE_WAN
		remote_port = 4500
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = forged-$f.crt
			id = "${FORGE_ID[$f]}"
		}
		remote {
			auth = pubkey
			id = $XD_REMOTE_WAN
		}
		children {
			forged-$f {
				local_ts = 10.98.99.1/32
				remote_ts = $REMOTE_INNER/32
				esp_proposals = aes256gcm16
			}
		}
	}
}
EOF
		done
	fi
	xd_ns "$(xd_host_ns "$i")" ip addr add "$(host_inner "$i")/32" dev lo
done
xd_ns "$XD_NS_REMOTE" ip addr add "$REMOTE_INNER/32" dev lo

xs_start remote "$XD_NS_REMOTE"
xs_load remote
for i in 1 2; do
	xs_start "h$i" "$(xd_host_ns "$i")"
	xs_load "h$i"
done
grep -q "port = ${PORTS[1]%-*}" "$(xs_dir h1)/strongswan.conf" 2>/dev/null ||
	grep -q "include ${SWAN[1]}" "$(xs_dir h1)/strongswan.conf" || fail "h1's strongswan.conf lacks the fragment"
for i in 1 2; do
	ss=$(xd_ns "$(xd_host_ns "$i")" ss -Hulnp) || true
	p=${PORTS[$i]%-*}
	grep -q ":$p " <<<"$ss" && grep -q ":$(( p + 1 )) " <<<"$ss" ||
		fail "h$i: charon does not listen on its ports $p/$(( p + 1 )) (fragment not applied): $ss"
done
xd_ok "3 charons (own /run, vici socket, TUN device); hosts' charons on their block's ports"

# ------------------------------------------------------------- captures
xd_step "both hosts bring up their SAs to the remote at the same time"
# --immediate-mode: each packet is handed to tcpdump at once (with the
# default TPACKET_V3 blocks, the last packets before SIGTERM are lost);
# -B: a buffer big enough for the 1 MB transfers (drops are checked).
xd_capture "cap remote" "$XD_NS_REMOTE" "$XD_IF_REMOTE" "$XD_TMP/remote.pcap" --immediate-mode -B 65536 udp or ip proto 4 or icmp
for i in 1 2; do
	xd_capture "cap h$i" "$(xd_host_ns "$i")" "$XD_IF_HOST" "$XD_TMP/h$i.pcap" --immediate-mode -B 65536 ip proto 4
done
t0=$(date +%s%N)
xs_initiate h1 h1 remote &
w1=$!
xs_initiate h2 h2 remote &
w2=$!
wait "$w1" || fail "h1 could not bring up its CHILD_SA"
wait "$w2" || fail "h2 could not bring up its CHILD_SA"
t1=$(date +%s%N)
for i in 1 2; do
	xs_sas "h$i" | grep -q "ESTABLISHED" || fail "h$i: no ESTABLISHED IKE_SA"
	xs_child_spis "h$i" "h$i" | grep -q . || fail "h$i: no CHILD_SA h$i"
done
ns=$(xs_sas remote | grep -c 'ESTABLISHED') || true
[ "$ns" = 2 ] || fail "the remote has $ns IKE_SAs, expected 2 (one per host)"
for i in 1 2; do
	xs_sas remote | grep -q "remote '${ID[$i]}' @ $XD_GLOBAL\[" ||
		fail "the remote has no IKE_SA with '${ID[$i]}' at $XD_GLOBAL"
done
xd_ok "2 IKE_SAs + CHILD_SAs up in $(( (t1 - t0) / 1000000 )) ms; remote sees '${ID[1]}' and '${ID[2]}', both at $XD_GLOBAL"
grep -q "fetching crl from '$CRL_URL'" "$(xs_log remote)" ||
	fail "the remote did not fetch the CRL from $CRL_URL"
# Who answered: the router's only listener on G:CRL_PORT is xdnatd itself.
lst=$(xd_ns "$XD_NS_ROUTER" ss -Hltnp "sport = :$CRL_PORT") || true
grep -q "$XD_GLOBAL:$CRL_PORT .*\"xdnatd\"" <<<"$lst" ||
	fail "the listener on $XD_GLOBAL:$CRL_PORT in the router is not xdnatd: $lst"
grep -q "certificate status is good" "$(xs_log remote)" ||
	fail "the remote did not check the hosts' certificates against the CRL"
xd_ok "the remote fetched the CRL from xdnatd ($CRL_URL, through G) and checked both certificates"

xd_step "traffic through both tunnels at once (ping, UDP, TCP)"
xd_bg "udp echo" "$XD_NS_REMOTE" "$XD_TMP/echo.out" python3 "$XD_TRAFFIC" udp-echo \
	--bind "$REMOTE_INNER" --port 7777 --count 40 --timeout 30
xd_wait_line "$XD_LAST_PID" "$XD_TMP/echo.out" listening
for i in 1 2; do
	xd_bg "tcp sink $i" "$XD_NS_REMOTE" "$XD_TMP/tcp$i.out" python3 "$XD_TRAFFIC" tcp-server \
		--bind "$REMOTE_INNER" --port "$(( 8000 + i ))" --timeout 30
	xd_wait_line "$XD_LAST_PID" "$XD_TMP/tcp$i.out" listening
done
for i in 1 2; do
	xd_ns "$(xd_host_ns "$i")" ping -c 5 -i 0.2 -W 2 -I "$(host_inner "$i")" "$REMOTE_INNER" \
		>"$XD_TMP/ping$i.out" 2>&1 &
	pp[$i]=$!
	xd_py "$(xd_host_ns "$i")" udp-client --dst "$REMOTE_INNER" --port 7777 --count 10 \
		>"$XD_TMP/udp$i.out" &
	pu[$i]=$!
	xd_py "$(xd_host_ns "$i")" tcp-client --dst "$REMOTE_INNER" --port "$(( 8000 + i ))" \
		--bytes 1000000 --seed "$i" >"$XD_TMP/tcpc$i.out" &
	pt[$i]=$!
done
for i in 1 2; do
	wait "${pp[$i]}" || { cat "$XD_TMP/ping$i.out" >&2; fail "h$i: ping through the tunnel failed"; }
	wait "${pu[$i]}" || fail "h$i: UDP client failed"
	wait "${pt[$i]}" || fail "h$i: TCP client failed"
	# UDP has no retransmission: kernel-libipsec's user-space ESP, busy with
	# the concurrent 1 MB TCP transfer, may lose a datagram (the captures
	# below check that the router lost none).
	e=$(sed -n 's/.*"echoed": \([0-9]*\).*/\1/p' "$XD_TMP/udp$i.out")
	[ "${e:-0}" -ge 8 ] || fail "h$i: UDP through the tunnel: only ${e:-0}/10 echoed: $(cat "$XD_TMP/udp$i.out")"
	UDP_ECHOED[$i]=$e
done
for i in 1 2; do
	wait_for 10 grep -q sha256 "$XD_TMP/tcp$i.out" || fail "h$i: the TCP sink got nothing"
	a=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$XD_TMP/tcpc$i.out")
	b=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$XD_TMP/tcp$i.out" | tail -n 1)
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "h$i: TCP through the tunnel: sha256 differs ($a / $b)"
	grep -q "\"peer\": \"$(host_inner "$i")\"" "$XD_TMP/tcp$i.out" ||
		fail "h$i: the TCP sink saw another source: $(cat "$XD_TMP/tcp$i.out")"
done
xd_ok "5/5 pings, ${UDP_ECHOED[1]}/10 and ${UDP_ECHOED[2]}/10 UDP echoes, 1 MB TCP (sha256 equal) through each host's tunnel, concurrently"

# ------------------------------------------------------------- rekeying
# ike_spi_ok I: host I's own IKE SPIs (the ones swanctl marks with '*') carry
# its SPI block's prefix (spi_mask/spi_label from the fragment).
ike_spis() { xs_sas "h$1" | sed -n 's/.* \([0-9a-f]\{16\}\)_[ir]\*.*/\1/p'; }
spi_in_block() { # SPI(hex) I
	local v=$(( 0x$1 )) b=${SPIS[$2]}
	[ "$v" -ge $(( ${b%-*} )) ] && [ "$v" -le $(( ${b#*-} )) ]
}
check_spis() { # WHEN
	local i s in out
	for i in 1 2; do
		s=$(ike_spis "$i")
		[ -n "$s" ] || fail "$1: h$i has no IKE_SA"
		while read -r x; do
			spi_in_block "${x:0:8}" "$i" && [ "$(( 0x${x:0:8} & 0xffff0000 ))" = "$(( ${SPIS[$i]%-*} & 0xffff0000 ))" ] ||
				fail "$1: h$i's IKE SPI $x does not carry its SPI block's prefix (${SPIS[$i]})"
		done <<<"$s"
		while read -r in out; do
			[ -n "$in" ] || fail "$1: h$i has no CHILD_SA"
			spi_in_block "$in" "$i" || fail "$1: h$i's inbound SPI $in is outside its block ${SPIS[$i]}"
		done < <(xs_child_spis "h$i" "h$i")
	done
}
check_spis "after set-up"
declare -A OLD_IKE=() OLD_CHILD=()
for i in 1 2; do
	OLD_IKE[$i]=$(ike_spis "$i")
	OLD_CHILD[$i]=$(xs_child_spis "h$i" "h$i")
done
xd_step "rekeying: a CHILD_SA rekey and an IKE_SA rekey on each host"
for i in 1 2; do
	xs_swanctl "h$i" --rekey --child "h$i" >/dev/null || fail "h$i: --rekey --child failed"
	xs_swanctl "h$i" --rekey --ike remote >/dev/null || fail "h$i: --rekey --ike failed"
done
for i in 1 2; do
	wait_for 10 eval '[ -n "$(ike_spis '"$i"')" ] && [ "$(ike_spis '"$i"')" != "${OLD_IKE['"$i"']}" ]' ||
		fail "h$i: the IKE_SA was not rekeyed (SPI still ${OLD_IKE[$i]})"
	wait_for 10 eval '[ "$(xs_child_spis h'"$i"' h'"$i"' | wc -l)" = 1 ] && [ "$(xs_child_spis h'"$i"' h'"$i"')" != "${OLD_CHILD['"$i"']}" ]' ||
		fail "h$i: the CHILD_SA was not rekeyed (SPIs: $(xs_child_spis "h$i" "h$i" | tr '\n' ' '))"
done
check_spis "after rekeying"
for i in 1 2; do
	xd_ns "$(xd_host_ns "$i")" ping -c 3 -i 0.2 -W 2 -I "$(host_inner "$i")" "$REMOTE_INNER" >/dev/null ||
		fail "h$i: no traffic through the tunnel after the rekeys"
done
ns=$(xs_sas remote | grep -c 'ESTABLISHED') || true
[ "$ns" = 2 ] || fail "after rekeying the remote has $ns IKE_SAs, expected 2"
xd_ok "new IKE and CHILD SPIs on both hosts, all in their blocks (IKE SPIs labelled); traffic flows"

# ------------------------------------------------------ reauthentication
# IKEv2 reauthentication (RFC 7296 2.8.3): a new IKE_SA with new SPIs and a
# fresh IKE_AUTH, the CHILD_SAs re-created under it.  h1 reauthenticates its
# IKE_SA; the remote reauthenticates h2's, so the new IKE_SA_INIT comes from
# outside and reaches h2 by its port through G.  strongSwan 5.9.8 defaults
# to break-before-make: the old IKE_SA is deleted first.
# ike_heads NAME: "UID SPI_I SPI_R 'PEER_ID'" of each ESTABLISHED IKE_SA.
ike_heads() {
	xs_sas "$1" | awk '
		/^[^ ].*: #[0-9]+, / {
			u = $2; gsub(/[#,]/, "", u); est = ($3 == "ESTABLISHED,")
			si = $5; sr = $6; sub(/_i\*?$/, "", si); sub(/_r\*?$/, "", sr)
		}
		est && /^  remote / { id = $0; sub(/^  remote /, "", id); sub(/ @ .*$/, "", id); print u, si, sr, id; est = 0 }'
}
# reauth_done I: host I holds one IKE_SA, not the old one (other unique id,
# both SPIs new), with one new CHILD_SA hI; the remote holds one IKE_SA for
# I's identity, not the old one, with the same SPIs as the host's.
reauth_done() {
	local i=$1 h r hs rs hu hi hr ru ri rr ou oi or
	h=$(ike_heads "h$i") r=$(ike_heads remote | grep -F " '${ID[$i]}'") || return 1
	[ "$(wc -l <<<"$h")" = 1 ] && [ "$(wc -l <<<"$r")" = 1 ] || return 1
	read -r hu hi hr _ <<<"$h"
	read -r ou oi or _ <<<"${PRE_HOST[$i]}"
	[ "$hu" != "$ou" ] && [ "$hi" != "$oi" ] && [ "$hr" != "$or" ] || return 1
	read -r ru ri rr _ <<<"$r"
	read -r ou _ <<<"${PRE_REM[$i]}"
	[ "$ru" != "$ou" ] && [ "$ri $rr" = "$hi $hr" ] || return 1
	hs=$(xs_child_spis "h$i" "h$i")
	[ "$(wc -l <<<"$hs")" = 1 ] && [ -n "$hs" ] && [ "$hs" != "${PRE_CHILD[$i]}" ] || return 1
	# the remote's CHILD_SA is the host's, seen from the other side
	rs=$(xs_child_spis remote "h$i")
	[ "$rs" = "$(awk '{ print $2, $1 }' <<<"$hs")" ]
}
MISDELIVERY="unknown_port unknown_spi unknown_ike_spi unknown_shared drop_wrong_gaddr drop_spoof_src drop_spoof_port drop_spoof_ike drop_unregistered drop_malformed drop_internal icmp_err_unknown ike_no_default"
xd_step "reauthentication: h1 reauthenticates its IKE_SA, the remote reauthenticates h2's"
as=$(date +%s%N)
declare -A PRE_HOST=() PRE_REM=() PRE_CHILD=() LOG_MARK=()
for i in 1 2; do
	PRE_HOST[$i]=$(ike_heads "h$i")
	PRE_REM[$i]=$(ike_heads remote | grep -F " '${ID[$i]}'") || true
	PRE_CHILD[$i]=$(xs_child_spis "h$i" "h$i")
	[ "$(wc -l <<<"${PRE_HOST[$i]}")" = 1 ] && [ "$(wc -l <<<"${PRE_REM[$i]}")" = 1 ] && [ -n "${PRE_REM[$i]}" ] ||
		fail "before the reauthentication: h$i has IKE_SAs '${PRE_HOST[$i]}', the remote '${PRE_REM[$i]}' for it (expected one each)"
	LOG_MARK[$i]=$(wc -l <"$(xs_log "h$i")")
done
LOG_MARK[r]=$(wc -l <"$(xs_log remote)")
xd_ctl -j stats >"$XD_TMP/stats-reauth0.json"
a0=$(date +%s%N)
xs_swanctl h1 --rekey --ike remote --reauth >"$XD_TMP/reauth-h1.out" 2>&1 ||
	fail "h1: swanctl --rekey --ike remote --reauth failed: $(tail -n 3 "$XD_TMP/reauth-h1.out")"
xs_swanctl remote --rekey --ike-id "${PRE_REM[2]%% *}" --reauth >"$XD_TMP/reauth-h2.out" 2>&1 ||
	fail "remote: swanctl --rekey --ike-id ${PRE_REM[2]%% *} --reauth failed: $(tail -n 3 "$XD_TMP/reauth-h2.out")"
for i in 1 2; do
	# 12 s: room for one IKE retransmission (charon's first comes after 4 s)
	wait_for 12 reauth_done "$i" ||
		fail "h$i: no new IKE_SA + CHILD_SA after the reauthentication (h$i: $(ike_heads "h$i" | tr '\n' ';') child $(xs_child_spis "h$i" "h$i" | tr '\n' ';'); remote: $(ike_heads remote | tr '\n' ';'); before: ${PRE_HOST[$i]} / ${PRE_REM[$i]})"
done
a1=$(date +%s%N)
# Fresh authentication, not a rekey: the initiator logged the reauth, and
# both ends ran IKE_AUTH again (signature checks after the mark).
tail -n +"$(( LOG_MARK[1] + 1 ))" "$(xs_log h1)" >"$XD_TMP/h1-reauth.log"
tail -n +"$(( LOG_MARK[2] + 1 ))" "$(xs_log h2)" >"$XD_TMP/h2-reauth.log"
tail -n +"$(( LOG_MARK[r] + 1 ))" "$(xs_log remote)" >"$XD_TMP/remote-reauth.log"
grep -q "reauthenticating IKE_SA" "$XD_TMP/h1-reauth.log" || fail "h1 did not log a reauthentication"
grep -q "reauthenticating IKE_SA h2\[" "$XD_TMP/remote-reauth.log" || fail "the remote did not log the reauthentication of h2's IKE_SA"
for i in 1 2; do
	grep -q "authentication of '${ID[$i]}' with .* successful" "$XD_TMP/remote-reauth.log" ||
		fail "the remote did not authenticate '${ID[$i]}' again"
	grep -q "authentication of '$XD_REMOTE_WAN' with .* successful" "$XD_TMP/h$i-reauth.log" ||
		fail "h$i did not authenticate the remote again"
	grep -q "authentication of '${ID[$i]}' (myself) with .* successful" "$XD_TMP/h$i-reauth.log" ||
		fail "h$i did not sign a new IKE_AUTH"
done
# Distinct identities: no INITIAL_CONTACT/uniqueness collision between the hosts.
! grep -q "deleting duplicate IKE_SA" "$XD_TMP/remote-reauth.log" ||
	fail "the remote deleted an IKE_SA as a duplicate: $(grep "deleting duplicate" "$XD_TMP/remote-reauth.log" | head -n 1)"
# h1's new IKE_AUTH normally carries INITIAL_CONTACT (its old IKE_SA is
# already gone): a remote matching peers by address would now drop h2's.
ic="no INITIAL_CONTACT in h1's new IKE_AUTH this time"
grep -q "parsed IKE_AUTH request 1 \[.*N(INIT_CONTACT)" "$XD_TMP/remote-reauth.log" &&
	ic="h1's new IKE_AUTH carried INITIAL_CONTACT; h2's IKE_SA, also from $XD_GLOBAL, was kept"
heads=$(ike_heads remote)
[ "$(wc -l <<<"$heads")" = 2 ] && [ "$(grep -cF " '${ID[1]}'" <<<"$heads")" = 1 ] && [ "$(grep -cF " '${ID[2]}'" <<<"$heads")" = 1 ] ||
	fail "after the reauthentications the remote holds: $(tr '\n' ';' <<<"$heads") (expected one IKE_SA per host DN)"
check_spis "after reauthentication"
for i in 1 2; do
	xd_ns "$(xd_host_ns "$i")" ping -c 3 -i 0.2 -W 2 -I "$(host_inner "$i")" "$REMOTE_INNER" >/dev/null ||
		fail "h$i: no traffic through the tunnel after the reauthentication"
done
xd_ctl -j stats >"$XD_TMP/stats-reauth1.json"
# shellcheck disable=SC2086 # MISDELIVERY: one argument per counter
counters=$(python3 - "$XD_TMP/stats-reauth0.json" "$XD_TMP/stats-reauth1.json" $MISDELIVERY <<'PY'
import json, sys
a, b = (json.load(open(p))["counters"] for p in sys.argv[1:3])
missing = [k for k in sys.argv[3:] + ["wan_to_host", "host_to_wan"] if k not in a or k not in b]
assert not missing, "xdnatctl stats has no counter %s" % missing
get = lambda c, k: c[k]["packets"]
bad = {k: get(b, k) - get(a, k) for k in sys.argv[3:] if get(b, k) != get(a, k)}
assert not bad, "misdelivery counters moved: %s" % bad
print("wan_to_host +%d, host_to_wan +%d; %s unchanged" % (
    get(b, "wan_to_host") - get(a, "wan_to_host"), get(b, "host_to_wan") - get(a, "host_to_wan"), ", ".join(sys.argv[3:])))
PY
) || fail "router counters: misdelivery during the reauthentication"
xd_info "remote: $ic"
xd_info "router: $counters"
for i in 1 2; do
	read -r ou oi or _ <<<"${PRE_HOST[$i]}"
	read -r nu ni nr _ <<<"$(ike_heads "h$i")"
	xd_info "h$i: IKE_SA #$ou ${oi}_i ${or}_r -> #$nu ${ni}_i ${nr}_r; CHILD_SA in/out $(tr '\n' ' ' <<<"${PRE_CHILD[$i]}")-> $(xs_child_spis "h$i" "h$i")"
done
xd_ok "both IKE_SAs reauthenticated in $(( (a1 - a0) / 1000000 )) ms (h1 by itself, h2 by the remote): new unique ids and SPIs, in the hosts' blocks; the remote holds one IKE_SA per host DN; traffic flows; no misdelivery counted (step: $(( ($(date +%s%N) - as) / 1000000 )) ms)"

# ------------------------------------------------------------- captures
xd_step "captures: the remote sees only G; each host's ESP-in-UDP reaches that host only, unchanged"
sleep 0.5
for n in "cap remote" "cap h1" "cap h2"; do
	for ((k = 0; k < ${#XD_PID_NAMES[@]}; k++)); do
		[ "${XD_PID_NAMES[$k]}" = "$n" ] && xd_stop "${XD_PIDS[$k]}" >/dev/null 2>&1 || true
	done
done
for f in remote h1 h2; do
	grep -q '^0 packets dropped by kernel' "$XD_TMP/$f.pcap.log" ||
		fail "the capture on $f lost packets ($(grep 'dropped by kernel' "$XD_TMP/$f.pcap.log")): the comparison would mean nothing"
	python3 "$XD_ROOT/selftests/lib/ike_pcap.py" "$XD_TMP/$f.pcap" >"$XD_TMP/$f.json" ||
		fail "cannot read $f.pcap"
done
python3 - "$XD_TMP" "$XD_GLOBAL" "$XD_REMOTE_WAN" "${PORTS[1]}" "${SPIS[1]}" "${PORTS[2]}" "${SPIS[2]}" <<'PY' ||
import collections, json, sys
tmp, g, remote = sys.argv[1:4]
rng = lambda s: tuple(int(x, 0) for x in s.split("-"))
hosts = {1: (rng(sys.argv[4]), rng(sys.argv[5])), 2: (rng(sys.argv[6]), rng(sys.argv[7]))}
cap = {n: json.load(open("%s/%s.json" % (tmp, n))) for n in ("remote", "h1", "h2")}
def owner_spi(spi):
    v = int(spi, 16)
    return [i for i, (p, s) in hosts.items() if s[0] <= v <= s[1]]
def owner_port(port):
    return [i for i, (p, s) in hosts.items() if p[0] <= port <= p[1]]
bad = set(cap["remote"]["ips"]) - {g, remote}
assert not bad, "the remote saw addresses other than G and itself: %s" % sorted(bad)
rp = cap["remote"]["packets"]
inb = [p for p in rp if p["src"] == remote and p["dst"] == g and p["kind"] != "frag"]
outb = [p for p in rp if p["src"] == g and p["dst"] == remote and p["kind"] != "frag"]
stats = collections.Counter()
for p in inb:
    o = owner_port(p["dport"])
    assert len(o) == 1, "remote -> G port %d: not one host's port" % p["dport"]
    if p["kind"] == "esp":
        so = owner_spi(p["spi"])
        assert so == o, "ESP SPI %s to port %d: SPI of host %s, port of host %s" % (p["spi"], p["dport"], so, o)
    stats["in-%s-h%d" % (p["kind"], o[0])] += 1
for p in outb:
    o = owner_port(p["sport"])
    assert len(o) == 1, "G port %d -> remote: not one host's port" % p["sport"]
    stats["out-%s-h%d" % (p["kind"], o[0])] += 1
for i in (1, 2):
    assert stats["in-esp-h%d" % i] >= 20 and stats["out-esp-h%d" % i] >= 20, "too little ESP for h%d: %s" % (i, dict(stats))
    assert stats["in-ike-h%d" % i] >= 2, "no IKE to h%d: %s" % (i, dict(stats))
    hp = cap["h%d" % i]["packets"]
    got_in = [p for p in hp if p["dst"] == g and p["src"] == remote and p["kind"] != "frag"]
    got_out = [p for p in hp if p["src"] == g and p["dst"] == remote and p["kind"] != "frag"]
    for p in got_in:
        if p["kind"] == "esp":
            assert owner_spi(p["spi"]) == [i], "h%d received ESP with SPI %s (not its block)" % (i, p["spi"])
        assert owner_port(p["dport"]) == [i], "h%d received a packet for port %d" % (i, p["dport"])
    # Byte for byte: what the remote sent to host i's ports is what host i
    # got (UDP header + IKE/ESP), and what host i sent is what the remote got.
    want_in = collections.Counter(p["l4"] for p in inb if owner_port(p["dport"]) == [i] and p["kind"] != "keepalive")
    have_in = collections.Counter(p["l4"] for p in got_in if p["kind"] != "keepalive")
    want_out = collections.Counter(p["l4"] for p in got_out if p["kind"] != "keepalive")
    have_out = collections.Counter(p["l4"] for p in outb if owner_port(p["sport"]) == [i] and p["kind"] != "keepalive")
    assert want_in == have_in, "h%d: %d packets sent by the remote, %d received unchanged (%d missing, %d extra)" % (
        i, sum(want_in.values()), sum((want_in & have_in).values()), sum((want_in - have_in).values()), sum((have_in - want_in).values()))
    assert want_out == have_out, "h%d: %d packets sent, %d reached the remote unchanged" % (
        i, sum(want_out.values()), sum((want_out & have_out).values()))
    print("h%d: %d IKE + %d ESP-in-UDP in, %d IKE + %d ESP-in-UDP out, byte-identical on both sides of the router" % (
        i, stats["in-ike-h%d" % i], stats["in-esp-h%d" % i], stats["out-ike-h%d" % i], stats["out-esp-h%d" % i]))
# Later fragments (large ESP-in-UDP from the hosts): all arrive, unchanged.
frag = lambda ps, src, dst: collections.Counter(p["l4"] for p in ps if p["kind"] == "frag" and p["src"] == src and p["dst"] == dst)
sent = frag(cap["h1"]["packets"], g, remote) + frag(cap["h2"]["packets"], g, remote)
assert sent == frag(rp, g, remote), "fragments from the hosts: %d sent, %d arrived unchanged" % (
    sum(sent.values()), sum((sent & frag(rp, g, remote)).values()))
rcvd = frag(cap["h1"]["packets"], remote, g) + frag(cap["h2"]["packets"], remote, g)
assert rcvd == frag(rp, remote, g), "fragments to the hosts differ"
print("%d later fragments host -> remote, %d remote -> host, all unchanged" % (sum(sent.values()), sum(rcvd.values())))
PY
	fail "capture check failed (captures in $XD_TMP)"
xd_ok "the remote saw only $XD_GLOBAL; every ESP SPI went to the port and host whose block holds it"

# ------------------------------------------------- certified ports (updown)
xd_step "the remote's updown hook (xdnat-verify) keeps a CHILD_SA on h1's own port, tears down one on h2's"
own=$(( ${PORTS[1]%-*} + 10 )) other=$(( ${PORTS[2]%-*} + 10 ))
xs_initiate h1 own-port remote
wait_for 10 grep -q "ALLOW h1-ports .* port=$own " "$RD/updown-verify.sh.log" ||
	fail "no ALLOW from the updown hook for h1's port $own: $(cat "$RD/updown-verify.sh.log" 2>/dev/null)"
xs_swanctl h1 --initiate --child other-port --ike remote --timeout 10 >"$XD_TMP/other-port.out" 2>&1 || true
wait_for 10 grep -q "DENY h1-ports .* port=$other " "$RD/updown-verify.sh.log" ||
	fail "no DENY from the updown hook for h2's port $other: $(cat "$RD/updown-verify.sh.log" 2>/dev/null)"
wait_for 10 eval '! xs_sas remote | grep -q "remote $XD_GLOBAL/32\[udp/$other\]"' ||
	fail "the remote still has a CHILD_SA with h2's port $other"
wait_for 10 eval '! xs_sas h1 | grep -q "^  other-port:.*INSTALLED"' ||
	fail "h1 still has its CHILD_SA on h2's port $other"
xs_sas remote | grep -q "remote $XD_GLOBAL/32\[udp/$own\]" ||
	fail "the CHILD_SA on h1's own port $own did not survive"
grep "DENY" "$RD/updown-verify.sh.log" | head -n 1 | sed 's/^/      /'
# Done with it: its route to G in the remote's table 220 would catch other
# traffic to G (the CRL fetch below).
xs_swanctl h1 --terminate --child own-port --timeout 5 >/dev/null 2>&1 || true
ns=$(xs_sas remote | grep -c 'ESTABLISHED') || true
[ "$ns" = 2 ] || fail "the port checks cost an IKE_SA: the remote has $ns"
xd_ok "port $own (h1's) allowed, port $other (h2's) torn down within seconds; both IKE_SAs up"

# ------------------------------------------------------------- forgery
xd_step "certificates signed with the LCA key outside G's namespace, against the README's remote configuration"
# forge_refused F WHY DESCRIPTION: h1 initiates forged-F; the remote must
# fail its IKE_AUTH and log WHY.
forge_refused() {
	local f=$1 mark
	mark=$(wc -l <"$(xs_log remote)")
	if xs_swanctl h1 --initiate --child "forged-$f" --ike "forged-$f" --timeout 10 >"$XD_TMP/forged-$f.out" 2>&1; then
		fail "the remote accepted the forged certificate $f (${FORGE_ID[$f]})"
	fi
	grep -q "AUTHENTICATION_FAILED" "$XD_TMP/forged-$f.out" ||
		fail "forged $f failed, but not with AUTHENTICATION_FAILED: $(tail -n 3 "$XD_TMP/forged-$f.out")"
	tail -n +"$(( mark + 1 ))" "$(xs_log remote)" >"$XD_TMP/remote-forged-$f.log"
	grep -qF "$2" "$XD_TMP/remote-forged-$f.log" ||
		fail "forged $f: the remote did not say '$2': $(grep -i 'constraint\|peer config\|authentication of' "$XD_TMP/remote-forged-$f.log" | tail -n 3)"
	# (charon logs the signature check as "successful" before the
	# constraints refuse the peer: what counts is that no IKE_SA came up)
	! grep -qF "established between $XD_REMOTE_WAN[$XD_REMOTE_WAN]...$XD_GLOBAL[${FORGE_ID[$f]}]" "$XD_TMP/remote-forged-$f.log" ||
		fail "forged $f: the remote established an IKE_SA with it"
	xd_info "$3: refused: $2"
}
forge_refused ip "constraint check failed: peer not authenticated by CA 'O=partner, CN=partner CA'" \
	"IP $FOREIGN_IP (the partner connection's identity)"
forge_refused gip "constraint check failed: peer not authenticated by CA 'O=partner, CN=partner CA'" \
	"G + $FOREIGN_IP, IKE ID $FOREIGN_IP"
forge_refused dn "constraint check failed: peer not authenticated by CA 'O=xdnat, OU=$FORGED_G, CN=xdnat LCA $FORGED_G'" \
	"another router's DN '${FORGE_ID[dn]}'"
# san: inside G's DN base, plus an IP SAN outside: 5.9.8 authenticates the DN
# (it cannot check this LCA's name constraints); the updown hook's
# xdnat-verify refuses the certificate and ends the IKE_SA.
s0=$(date +%s%N)
xs_swanctl h1 --initiate --child forged-san --ike forged-san --timeout 10 >"$XD_TMP/forged-san.out" 2>&1 || true
wait_for 10 grep -qF "id='${FORGE_ID[san]}'" "$RD/updown-any.sh.log" ||
	fail "the updown hook did not check the in-namespace DN with SAN $FOREIGN_IP: $(cat "$RD/updown-any.sh.log" 2>/dev/null)"
grep -q "^DENY g-any " "$RD/updown-any.sh.log" ||
	fail "the updown hook allowed the in-namespace DN with SAN $FOREIGN_IP: $(cat "$RD/updown-any.sh.log")"
forged_san_gone() { ! xs_sas remote | grep -qF "remote '${FORGE_ID[san]}'"; }
wait_for 10 forged_san_gone || fail "the remote still holds the IKE_SA of '${FORGE_ID[san]}'"
s1=$(date +%s%N)
xd_info "DN '${FORGE_ID[san]}' + SAN $FOREIGN_IP: IKE_AUTH passes on 5.9.8, then $(grep -m1 '^DENY' "$RD/updown-any.sh.log" | sed 's/^.*: no: /xdnat-verify: no: /'); IKE_SA gone after $(( (s1 - s0) / 1000000 )) ms"
[ "$(xs_sas remote | grep -c 'ESTABLISHED')" = 2 ] || fail "the forgery attempts cost an IKE_SA of the hosts"
xd_ok "IP, G + IP and foreign-DN forgeries refused in IKE_AUTH (ca_id); in-namespace DN + foreign SAN ended by xdnat-verify; both hosts' IKE_SAs up"

# ------------------------------------------------ revocation (notice + CRL)
xd_step "xdnatctl cert revoke h2's certificate: xdnat-peer on the remote ends h2's IKE_SA"
H2_HOST=$(xd_ctl -j lookup spi "${SPIS[2]%-*}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["host"])')
bpftool -j map dump pinned "$XD_PIN_BASE/$XD_INSTANCE/xdnat_peers" >"$XD_TMP/peers.json"
python3 - "$XD_TMP/peers.json" "$H2_HOST" "$XD_REMOTE_WAN" <<'PY' || fail "the datapath did not record the remote as an ESP-in-UDP peer of h2 (no notice would reach it)"
import json, socket, struct, sys
rows = json.load(open(sys.argv[1]))
def key(r):
    k = r.get("formatted", {}).get("key") or r["key"]
    if isinstance(k, dict):
        return k["host_id"], struct.pack("=I", k["remote"])
    b = bytes(int(x, 16) for x in k)
    return struct.unpack("=I", b[:4])[0], b[4:8]
assert (int(sys.argv[2]), socket.inet_aton(sys.argv[3])) in [key(r) for r in rows], rows
PY
# xdnat-peer's command: load the CRL the notice carried, then terminate
# every IKE_SA whose peer authenticated with a revoked certificate (found by
# serial among the certificates charon received).
cat >"$RD/revoked.sh" <<EOF
#!/bin/bash
export STRONGSWAN_CONF="$RD/strongswan.conf" SWANCTL_DIR="$RD/swanctl"
echo "notice from \$XDNAT_NOTICE_FROM (G \$XDNAT_NOTICE_GLOBAL, CRL \$XDNAT_NOTICE_CRL_NUMBER): revoked \$XDNAT_REVOKED_SERIALS"
# charon uses the first valid CRL it finds, and its cache (the CRL it
# fetched) comes before loaded ones: load the new CRL, then drop the cache.
swanctl --load-creds --noprompt >/dev/null
swanctl --flush-certs --type x509_crl >/dev/null
for serial in \$XDNAT_REVOKED_SERIALS; do
	subject=\$(swanctl --list-certs --type x509 | awk -v want="\$serial" '
		function norm(s) { gsub(":", "", s); s = tolower(s); sub(/^0+/, "", s); return s }
		\$1 == "subject:" { sub(/^[ \t]*subject:[ \t]*"/, ""); sub(/"\$/, ""); subj = \$0 }
		\$1 == "serial:" && norm(\$2) == norm(want) { print subj }' | head -n 1)
	[ -n "\$subject" ] || { echo "serial \$serial: no peer certificate with it"; continue; }
	swanctl --list-sas | awk -v id="'\$subject'" '
		/^[^ ].*: #[0-9]+,/ { n = \$2; gsub(/[#,]/, "", n) }
		\$1 == "remote" && index(\$0, id) { print n }' | sort -u |
	while read -r n; do
		swanctl --terminate --ike-id "\$n" --timeout 5 >/dev/null &&
			echo "TERMINATED IKE_SA #\$n of '\$subject' (serial \$serial)"
	done
done
EOF
chmod 755 "$RD/revoked.sh"
xd_bg xdnat-peer "$XD_NS_REMOTE" "$XD_TMP/xdnat-peer.log" "$XD_PEER" -a "$RD/swanctl/x509ca/root.crt" \
	--crl-out "$RD/swanctl/x509crl/lca.crl" -e "'$RD/revoked.sh' >>'$RD/revoked.log' 2>&1"
xd_wait_line "$XD_LAST_PID" "$XD_TMP/xdnat-peer.log" 'listening on UDP'
xs_sas remote | grep -q "remote '${ID[2]}'" || fail "the remote has no IKE_SA with h2 before the revocation"
xs_sas h2 | grep -q ESTABLISHED || fail "h2 has no IKE_SA before the revocation"
h2_gone() { ! xs_sas remote | grep -q "remote '${ID[2]}'"; }
log_mark=$(wc -l <"$(xs_log remote)")
r0=$(date +%s%N)
xd_ctl --state-dir "$STATE" cert revoke "${SERIAL[2]}" keyCompromise >/dev/null ||
	fail "xdnatctl cert revoke ${SERIAL[2]} failed"
wait_for "$REVOKE_WITHIN" h2_gone ||
	fail "the remote still has h2's IKE_SA ${REVOKE_WITHIN}s after the revocation (xdnat-peer: $(tail -n 2 "$XD_TMP/xdnat-peer.log" | tr '\n' ' '); command: $(cat "$RD/revoked.log" 2>/dev/null))"
r1=$(date +%s%N)
grep -q "TERMINATED IKE_SA #[0-9]* of '${ID[2]}'" "$RD/revoked.log" ||
	fail "the IKE_SA ended, but not by xdnat-peer's command: $(cat "$RD/revoked.log" 2>/dev/null)"
wait_for 5 eval '! xs_sas h2 | grep -q ESTABLISHED' || fail "h2 still holds its IKE_SA after the remote deleted it"
wait_for 10 grep -q "acknowledged by $XD_REMOTE_WAN" "$XD_TMP/xdnatd.log" ||
	fail "xdnatd saw no acknowledgement of its notice from $XD_REMOTE_WAN"
openssl crl -inform DER -in "$RD/swanctl/x509crl/lca.crl" -noout -text | tr -d ':' | grep -qi "$(tr -d ':' <<<"${SERIAL[2]}")" ||
	fail "the CRL the notice carried does not list h2's certificate"
xd_info "$(head -n 1 "$RD/revoked.log")"
xd_info "$(grep TERMINATED "$RD/revoked.log" | head -n 1)"
xd_ok "h2's IKE_SA gone $(( (r1 - r0) / 1000000 )) ms after xdnatctl cert revoke (LCA-signed notice -> xdnat-peer -> swanctl --terminate); acknowledged"

xd_step "h2 cannot authenticate again; h1 is untouched"
if xs_swanctl h2 --initiate --child h2 --timeout 10 >"$XD_TMP/h2-revoked.out" 2>&1; then
	fail "h2 authenticated again with a revoked certificate"
fi
grep -q "AUTHENTICATION_FAILED" "$XD_TMP/h2-revoked.out" || fail "h2's re-authentication failed, but not with AUTH_FAILED: $(tail -n 3 "$XD_TMP/h2-revoked.out")"
tail -n +"$log_mark" "$(xs_log remote)" >"$XD_TMP/remote-after-revoke.log"
grep -q "certificate was revoked" "$XD_TMP/remote-after-revoke.log" || fail "the remote did not log the revocation"
crl_from="the CRL the notice carried"
grep -q "fetching crl" "$XD_TMP/remote-after-revoke.log" && crl_from="a CRL fetched again through G"
xs_sas h1 | grep -q ESTABLISHED || fail "h1 lost its IKE_SA"
xs_sas remote | grep -q "remote '${ID[1]}'" || fail "the remote lost h1's IKE_SA"
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -I "$(host_inner 1)" "$REMOTE_INNER" >/dev/null ||
	fail "h1's tunnel stopped working"
xd_ok "h2 refused (certificate was revoked, by $crl_from); h1's SAs and traffic unaffected"
xd_step "last: a certificate for h1's own DN with an extra SAN $FOREIGN_IP, on h1's own connection"
# Last, because it is h1's DN: charon's cache then holds two certificates
# for it.  5.9.8 authenticates the DN (no name constraint of this LCA is
# checked); the updown hook checks the newest certificate for the DN, the
# forged one, refuses it and ends that IKE_SA; h1's own IKE_SA stays.
h1_ike=$(xs_sas remote | awk -v id="'${ID[1]}'" '/^[^ ].*: #[0-9]+,/ { u = $2; gsub(/[#,]/, "", u) } $1 == "remote" && index($0, id) { print u }')
[ "$(wc -w <<<"$h1_ike")" = 1 ] || fail "before the h1 forgery the remote holds IKE_SAs '$h1_ike' for h1"
# Loaded only now: with two certificates for its DN from the start, h1's
# charon could pick the forged one for its own connection.
cp "$PKI/forged-h1.crt" "${SWAN[1]}/swanctl/x509/forged-h1.crt"
install -m 600 "$PKI/forged-h1.key" "${SWAN[1]}/swanctl/private/forged-h1.key"
cat >>"${SWAN[1]}/swanctl/swanctl.conf" <<EOF
connections {
	forged-h1 {
		version = 2
		local_addrs = $XD_GLOBAL
		local_port = $(( ${PORTS[1]%-*} + 1 ))
		remote_addrs = $XD_REMOTE_WAN
		remote_port = 4500
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = forged-h1.crt
			id = "${ID[1]}"
		}
		remote {
			auth = pubkey
			id = $XD_REMOTE_WAN
		}
		children {
			forged-h1 {
				local_ts = $(host_inner 1)/32
				remote_ts = $REMOTE_INNER/32
				esp_proposals = aes256gcm16
			}
		}
	}
}
EOF
xs_load h1
f0=$(date +%s%N)
xs_swanctl h1 --initiate --child forged-h1 --ike forged-h1 --timeout 10 >"$XD_TMP/forged-h1.out" 2>&1 || true
forged_serial=$(openssl x509 -in "$PKI/forged-h1.crt" -noout -serial | cut -d= -f2)
wait_for 10 grep -q "^DENY h1 .* serial=$forged_serial" "$RD/updown-verify.sh.log" ||
	fail "the updown hook did not refuse the forged certificate on h1's connection: $(tail -n 3 "$RD/updown-verify.sh.log")"
forged_h1_gone() {
	[ "$(xs_sas remote | awk -v id="'${ID[1]}'" '/^[^ ].*: #[0-9]+,/ { u = $2; gsub(/[#,]/, "", u) } $1 == "remote" && index($0, id) { print u }')" = "$h1_ike" ]
}
wait_for 10 forged_h1_gone || fail "the remote still holds the forged IKE_SA for h1's DN: $(xs_sas remote | grep -c ESTABLISHED) IKE_SAs"
f1=$(date +%s%N)
xd_ns "$(xd_host_ns 1)" ping -c 2 -i 0.2 -W 2 -I "$(host_inner 1)" "$REMOTE_INNER" >/dev/null ||
	fail "h1's own tunnel stopped working"
xd_info "$(grep -m1 "^DENY h1 .* serial=$forged_serial" "$RD/updown-verify.sh.log" | cut -c1-200)"
xd_ok "h1's DN + SAN $FOREIGN_IP: IKE_AUTH passes on 5.9.8, the updown hook's xdnat-verify ended that IKE_SA after $(( (f1 - f0) / 1000000 )) ms; h1's own IKE_SA #$h1_ike and traffic untouched"

echo
echo "e2e_strongswan: all checks passed in $(( $(date +%s) - T_START )) s (IKE_SA + CHILD_SA set-up of both hosts through xdnat: $(( (t1 - t0) / 1000000 )) ms; revocation to SA deletion: $(( (r1 - r0) / 1000000 )) ms)"
