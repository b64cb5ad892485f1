# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The strongSwan part of the demo: `make demo IPSEC=strongswan`.
#
# Sourced by scripts/demo.sh (after lib/netns.sh and lib/strongswan.sh, with
# the topology up, the hosts enrolled over RSIP and xdnat-host run with
# --swan-dir $XD_TMP/hI-swan --swan-ca $XD_TMP/anchors.pem).  Starts
# unmodified charon (kernel-libipsec) on h1, h2 and the remote with the
# configuration of selftests/e2e_strongswan.sh, brings up both hosts' SAs to
# the remote through the one global address, pings through both tunnels,
# prints swanctl --list-sas and tears the SAs down.  The demo's EXIT trap
# stops the daemons (xs_cleanup).

SW_REMOTE_INNER=${SW_REMOTE_INNER:-10.99.0.1}   # the remote's tunnel-side address
sw_host_inner() { printf '10.98.%s.1' "$1"; }   # host I's tunnel-side address
sw_hex() { printf '0x%08x' "$(( $1 ))"; }

# demo_swan_prepare: before the hosts start: the anchors for --swan-ca (root
# + the LCA certificate), the remote's certificate.
# Sets DEMO_SWAN_HOST_ARGS (extra xdnat-host options; "I" is the host).
demo_swan_prepare() {
	xs_init
	xs_anchors "$XD_TMP"
	xs_remote_pki "$XD_TMP" "$XD_REMOTE_WAN"
}

# demo_swan_host_args I: xdnat-host options for host I.
demo_swan_host_args() {
	printf '%s\n' --swan-dir "$XD_TMP/h$1-swan" --swan-ca "$XD_TMP/anchors.pem"
}

demo_swan_run() {
	local i swan t0 t1 ids=() id
	xd_step "strongSwan: charon on h1, h2 and the remote (kernel-libipsec, Local-CA certificates)"
	# The remote: trusts the root CA only; one connection per host, selected
	# by the host's identity (its certificate's subject DN).
	xs_remote_setup remote "$XD_TMP"
	for i in 1 2; do
		swan=$XD_TMP/h$i-swan
		[ -f "$swan/strongswan.d/xdnat.conf" ] || fail "h$i: xdnat-host wrote no $swan/strongswan.d/xdnat.conf"
		ids[$i]=$(xs_swan_id "$swan")
		[ -n "${ids[$i]}" ] || fail "h$i: no IKE identity in $swan/swanctl/conf.d/xdnat.conf"
		xs_host_setup "h$i" "$swan" "$XD_REMOTE_WAN" "h$i" "$(sw_host_inner "$i")/32" "$SW_REMOTE_INNER/32"
		xd_ns "$(xd_host_ns "$i")" ip addr add "$(sw_host_inner "$i")/32" dev lo
	done
	{
		echo "connections {"
		for i in 1 2; do
			xs_remote_conn "h$i" "$XD_REMOTE_WAN" "$XD_GLOBAL" "${ids[$i]}" \
				"$SW_REMOTE_INNER/32" "$(sw_host_inner "$i")/32"
		done
		echo "}"
	} >"$(xs_dir remote)/swanctl/swanctl.conf"
	xd_ns "$XD_NS_REMOTE" ip addr add "$SW_REMOTE_INNER/32" dev lo
	xs_start remote "$XD_NS_REMOTE"
	xs_load remote
	for i in 1 2; do
		xs_start "h$i" "$(xd_host_ns "$i")"
		xs_load "h$i"
		sed -n 's/^[[:space:]]*\(port\|port_nat_t\|spi_min\|spi_max\) = /\1=/p' \
			"$XD_TMP/h$i-swan/strongswan.d/xdnat.conf" | tr '\n' ' ' |
			sed "s/^/      h$i: xdnat-host's fragment: /; s/ \$/\n/"
	done
	xd_ok "3 charons up; each host's charon uses the ports and SPIs of its block, identity = its certificate's DN"

	xd_step "both hosts bring up an IKE_SA + CHILD_SA to the remote at the same time"
	t0=$(date +%s%N)
	xs_initiate h1 h1 remote &
	local w1=$!
	xs_initiate h2 h2 remote &
	local w2=$!
	wait "$w1" || fail "h1 could not bring up its SAs"
	wait "$w2" || fail "h2 could not bring up its SAs"
	t1=$(date +%s%N)
	local n
	n=$(xs_sas remote | grep -c ESTABLISHED) || true
	[ "$n" = 2 ] || fail "the remote has $n IKE_SAs, expected 2"
	for i in 1 2; do
		xs_sas remote | grep -q "remote '${ids[$i]}' @ $XD_GLOBAL\[" ||
			fail "the remote has no IKE_SA with '${ids[$i]}' at $XD_GLOBAL"
	done
	xd_ok "2 IKE_SAs + CHILD_SAs in $(( (t1 - t0) / 1000000 )) ms, authenticated by the hosts' Local-CA certificates"
	local crl
	crl=$(sed -n "s/.*fetching crl from '\([^']*\)'.*/\1/p" "$(xs_log remote)" | head -n 1)
	if [ -n "$crl" ] && [ "$(grep -c 'certificate status is good' "$(xs_log remote)")" -ge 2 ]; then
		xd_info "the remote fetched the LCA's CRL from $crl (xdnatd, through $XD_GLOBAL): both certificates good"
	fi

	xd_step "ping through both tunnels"
	for i in 1 2; do
		xd_ns "$(xd_host_ns "$i")" ping -c 3 -i 0.2 -W 2 -I "$(sw_host_inner "$i")" "$SW_REMOTE_INNER" \
			>"$XD_TMP/swan-ping$i" 2>&1 || { cat "$XD_TMP/swan-ping$i" >&2; fail "h$i: no ping through its tunnel"; }
		xd_ok "h$i $(sw_host_inner "$i") -> remote $SW_REMOTE_INNER through its tunnel: $(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$XD_TMP/swan-ping$i")/3 replies"
	done

	xd_step "swanctl --list-sas"
	local spis spi_in lo hi ike
	for i in 1 2; do
		xd_info "h$i:"
		xs_sas "h$i" | sed 's/^/        /'
		spis=H${i}_SPIS
		lo=$(( ${!spis%-*} )) hi=$(( ${!spis#*-} ))
		read -r spi_in _ < <(xs_child_spis "h$i" "h$i")
		[ -n "$spi_in" ] || fail "h$i: no CHILD_SA"
		[ "$(( 0x$spi_in ))" -ge "$lo" ] && [ "$(( 0x$spi_in ))" -le "$hi" ] ||
			fail "h$i: inbound SPI $spi_in outside its block ${!spis}"
		ike=$(xs_sas "h$i" | sed -n 's/.* \([0-9a-f]\{16\}\)_[ir]\*.*/\1/p' | head -n 1)
		id=$(xs_sas "h$i" | sed -n "s/^  local  '\(.*\)' @ .*/\1/p" | head -n 1)
		[ "$id" = "${ids[$i]}" ] || fail "h$i: local identity '$id', expected '${ids[$i]}'"
		xd_ok "h$i: identity '$id' (its certificate's subject); inbound ESP SPI 0x$spi_in in its block $(sw_hex "$lo")-$(sw_hex "$hi"); own IKE SPI $ike"
	done
	xd_info "remote:"
	xs_sas remote | sed 's/^/        /'
	xd_ok "the remote holds 2 IKE_SAs, both with $XD_GLOBAL, told apart by the hosts' DNs"

	xd_step "tear down the SAs and stop the daemons"
	for i in 1 2; do
		xs_swanctl "h$i" --terminate --ike remote --timeout 10 >/dev/null 2>&1 ||
			fail "h$i: swanctl --terminate --ike remote failed"
	done
	wait_for 10 eval '! xs_sas remote | grep -q ESTABLISHED' || fail "the remote still has IKE_SAs"
	for n in h1 h2 remote; do
		xs_stop "$n"
	done
	xd_ok "SAs deleted on both sides; charons stopped"
}
