# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Unmodified strongSwan charon daemons, one per network namespace, for the
# xdnat netns tests.  Source after lib/netns.sh and call xs_init after
# xd_init:
#
#     . "$(dirname "$0")/lib/netns.sh"
#     . "$(dirname "$0")/lib/strongswan.sh"
#     xd_init; xs_init
#     xs_conf remote                 # $XD_TMP/swan-remote/strongswan.conf
#     xs_start remote "$XD_NS_REMOTE"
#     xs_swanctl remote --load-all
#     xs_swanctl h1 --initiate --child c1
#
# Why it looks like this (../shared/research/strongswan-on-this-kernel.md):
#   - the kernel has no ESP/AH (CONFIG_INET_ESP off), so charon must use the
#     kernel-libipsec plugin (user-space ESP over a TUN device, ESP always in
#     UDP), loaded BEFORE kernel-netlink: the first KERNEL_IPSEC provider wins;
#   - charon's pid file is compiled in as /var/run/charon.pid, and there is
#     no option to move it: each daemon runs in its own mount namespace with
#     a private directory bind-mounted on /run;
#   - everything else is per daemon: STRONGSWAN_CONF (its strongswan.conf),
#     its own vici socket (swanctl talks to that one), SWANCTL_DIR (its
#     swanctl.conf, certificates and keys), a filelog;
#   - charon's own IKE/ESP-in-UDP sockets carry fwmark 0x42 and the routes
#     libipsec installs (table 220) apply only to packets without it, so a
#     CHILD_SA whose traffic selectors cover the IKE peer's own address
#     does not swallow the IKE traffic.
#
# Every charon started here is stopped by the EXIT trap of lib/netns.sh
# (SIGTERM, SIGKILL after 5 s: a libipsec SPI-range exhaustion makes charon
# ignore SIGTERM); its log is shown when the test fails.

XS_CHARON=${XS_CHARON:-/usr/lib/ipsec/charon}
XS_PLUGIN_DIR=${XS_PLUGIN_DIR:-/usr/lib/ipsec/plugins}
XS_SWANCTL=${XS_SWANCTL:-swanctl}
# Plugins, in load order.  curl: CRL fetching over HTTP.
XS_PLUGINS=${XS_PLUGINS:-random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey sha1 sha2 hmac gmp kdf curl kernel-libipsec kernel-netlink socket-default vici updown}
XS_FWMARK=${XS_FWMARK:-0x42}
XS_START_TIMEOUT=${XS_START_TIMEOUT:-10}

declare -A XS_PID=()    # name -> charon pid
declare -A XS_NS=()     # name -> namespace
XS_NAMES=()

# xs_dir NAME: the daemon's directory (strongswan.conf, run/, swanctl/, logs).
xs_dir() { printf '%s/swan-%s' "$XD_TMP" "$1"; }

# xs_init: check that strongSwan and what it needs are there; register the
# cleanup hook.  Fails (never skips) with what is missing.
xs_init() {
	local p
	[ -x "$XS_CHARON" ] ||
		fail "strongSwan's charon not found at $XS_CHARON: install strongswan-charon (scripts/deps.sh)"
	command -v "$XS_SWANCTL" >/dev/null ||
		fail "swanctl not found: install strongswan-swanctl (scripts/deps.sh)"
	command -v pki >/dev/null || fail "pki not found: install strongswan-pki (scripts/deps.sh)"
	command -v unshare >/dev/null || fail "unshare (util-linux) not found"
	for p in $XS_PLUGINS; do
		[ -e "$XS_PLUGIN_DIR/libstrongswan-$p.so" ] || case $p in
		kernel-libipsec) fail "strongSwan plugin kernel-libipsec missing: install libcharon-extra-plugins (scripts/deps.sh)" ;;
		curl) fail "strongSwan plugin curl missing: install libstrongswan-extra-plugins (scripts/deps.sh)" ;;
		*) fail "strongSwan plugin $p missing from $XS_PLUGIN_DIR (scripts/deps.sh)" ;;
		esac
	done
	[ -c /dev/net/tun ] ||
		fail "/dev/net/tun missing: kernel-libipsec needs TUN devices (CONFIG_TUN)"
	XD_CLEANUP_HOOKS+=(xs_cleanup)
}

# xs_conf NAME [LINE...]: write NAME's strongswan.conf.  Each LINE is added
# at the top level after the charon section (e.g. "include /path/frag.conf"
# or "charon { port = 20000 }"; later values override earlier ones).
# XS_CHARON_EXTRA (newline-separated key = value lines) goes inside charon {}.
xs_conf() {
	local name=$1 dir
	shift
	dir=$(xs_dir "$name")
	mkdir -p "$dir/run" "$dir/swanctl/"{x509,x509ca,x509crl,x509ocsp,x509aa,x509ac,private,pubkey,rsa,ecdsa,bliss,pkcs8,pkcs12,conf.d}
	chmod 700 "$dir/swanctl/private"
	cat >"$dir/strongswan.conf" <<EOF
# strongSwan configuration of the test daemon '$name' (selftests/lib/strongswan.sh)
charon {
	load_modular = no
	load = $XS_PLUGINS
	install_virtual_ip = no
	# kernel-libipsec + faked NAT: keepalives and MOBIKE only add noise here
	keep_alive = 0
	plugins {
		vici {
			socket = unix://$dir/run/charon.vici
		}
		kernel-libipsec {
			allow_peer_ts = yes
		}
		socket-default {
			fwmark = $XS_FWMARK
		}
		kernel-netlink {
			fwmark = !$XS_FWMARK
		}
		revocation {
			enable_crl = yes
			enable_ocsp = no
		}
		curl {
			# the CRL is fetched from the certificate's distribution point
		}
	}
	filelog {
		main {
			path = $dir/charon.log
			default = 1
			ike = 2
			cfg = 2
			lib = 1
			time_format = %H:%M:%S
			ike_name = yes
			flush_line = yes
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
${XS_CHARON_EXTRA:-}
}
swanctl {
	socket = unix://$dir/run/charon.vici
}
EOF
	local l
	for l in "$@"; do
		printf '%s\n' "$l" >>"$dir/strongswan.conf"
	done
}

# xs_pki ARGS...: strongSwan's pki with only the plugins it needs (the
# packaged default also tries tpm and prints noise without a TPM).
xs_pki() {
	local conf=$XD_TMP/pki-strongswan.conf
	[ -f "$conf" ] ||
		printf 'pki {\n\tload = random nonce openssl pem pkcs1 pkcs8 x509 pubkey sha1 sha2 gmp\n}\n' >"$conf"
	STRONGSWAN_CONF=$conf pki "$@"
}

# xs_start NAME NS: start charon for NAME in namespace NS with a private
# /run (its own pid file), wait until its vici socket answers.
xs_start() {
	local name=$1 ns=$2 dir
	dir=$(xs_dir "$name")
	[ -f "$dir/strongswan.conf" ] || fail "xs_start $name: no strongswan.conf (xs_conf first)"
	# nsenter (net only) and unshare (no --fork) exec, and so does sh: $! is
	# charon's own pid.  The bind mount lives and dies with the mount
	# namespace, i.e. with charon.
	xd_bg "charon $name" "$ns" "$dir/charon.out" unshare -m --propagation private \
		sh -c 'mount --bind "$1" /run && exec env STRONGSWAN_CONF="$2" "$3"' \
		sh "$dir/run" "$dir/strongswan.conf" "$XS_CHARON"
	XS_PID[$name]=$XD_LAST_PID
	XS_NS[$name]=$ns
	XS_NAMES+=("$name")
	local deadline=$(( $(date +%s) + XS_START_TIMEOUT ))
	until xs_swanctl "$name" --stats >/dev/null 2>&1; do
		if ! xd_alive "${XS_PID[$name]}"; then
			sed 's/^/    | /' "$dir/charon.out" "$dir/charon.log" 2>/dev/null >&2
			fail "charon $name exited at start (logs in $dir)"
		fi
		[ "$(date +%s)" -lt "$deadline" ] || fail "charon $name: vici not answering after ${XS_START_TIMEOUT}s"
		sleep 0.05
	done
	grep -q 'kernel-libipsec' "$dir/charon.log" ||
		fail "charon $name did not load kernel-libipsec (see $dir/charon.log)"
}

# xs_swanctl NAME ARGS...: swanctl against NAME's daemon and swanctl dir.
xs_swanctl() {
	local name=$1 dir
	shift
	dir=$(xs_dir "$name")
	xd_ns "${XS_NS[$name]}" env STRONGSWAN_CONF="$dir/strongswan.conf" \
		SWANCTL_DIR="$dir/swanctl" "$XS_SWANCTL" "$@"
}

# xs_load NAME: load NAME's swanctl.conf, certificates and keys; fail with
# swanctl's output if anything is refused.
xs_load() {
	local out
	out=$(xs_swanctl "$1" --load-all --noprompt 2>&1) || {
		printf '%s\n' "$out" | sed 's/^/    | /' >&2
		fail "swanctl --load-all for $1 failed"
	}
	if grep -Eqi 'fail|error' <<<"$out"; then
		printf '%s\n' "$out" | sed 's/^/    | /' >&2
		fail "swanctl --load-all for $1 reported errors"
	fi
}

# xs_initiate NAME CHILD [IKE]: bring up CHILD (and its IKE_SA); fail with
# the daemon's last log lines on error.
xs_initiate() {
	local name=$1 child=$2 ike=${3:-} out args=(--initiate --child "$2" --timeout 15)
	[ -n "$ike" ] && args+=(--ike "$ike")
	out=$(xs_swanctl "$name" "${args[@]}" 2>&1) || {
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/    | /' >&2
		fail "$name: swanctl --initiate --child $child failed"
	}
}

# xs_sas NAME [swanctl --list-sas OPTIONS...]: raw --list-sas output.
xs_sas() {
	local name=$1
	shift
	xs_swanctl "$name" --list-sas "$@" 2>/dev/null
}

# xs_child_spis NAME CHILD: "IN OUT" SPIs (8 hex digits) of NAME's
# CHILD_SAs named CHILD, one line each.
xs_child_spis() {
	xs_sas "$1" | awk -v c="$2" '
		$1 ~ /:$/ && $2 ~ /^#/ { cur = substr($1, 1, length($1) - 1) }
		cur == c && $1 == "in"  { i = $2; sub(/,$/, "", i) }
		cur == c && $1 == "out" { o = $2; sub(/,$/, "", o); print i, o }'
}

# xs_log NAME: path of NAME's charon log.
xs_log() { printf '%s/charon.log' "$(xs_dir "$1")"; }

xs_stop() {
	local name=$1 pid=${XS_PID[$1]:-}
	[ -n "$pid" ] || return 0
	xd_stop "$pid" 5 >/dev/null 2>&1 || true
	unset "XS_PID[$name]"
}

# Cleanup hook (runs before lib/netns.sh kills the remaining processes):
# stop every charon, show the tail of its log if the test failed.
xs_cleanup() {
	# rc: the exit status, a local of xd_cleanup (bash scoping is dynamic)
	local status=${rc:-0} name
	for name in "${XS_NAMES[@]}"; do
		xs_stop "$name"
		if [ "$status" -ne 0 ] && [ -s "$(xs_log "$name")" ] && [ "${XD_QUIET_LOGS:-0}" != 1 ]; then
			echo "--- charon $name (last 25 lines of $(xs_log "$name"))" >&2
			tail -n 25 "$(xs_log "$name")" >&2
		fi
	done
}

# ------------------------------------------- PKI and configuration helpers
# Shared by scripts/demo_strongswan.sh and selftests/e2e_strongswan_timing.sh
# (e2e_strongswan.sh and e2e_strongswan_shared.sh carry the same steps
# inline, with more checks).

# xs_anchors PKI: PKI/anchors.pem for xdnat-host --swan-ca: the root (to
# verify the remote) and the LCA certificate itself (the host's charon sends
# it as the intermediate).  There is ONE LCA certificate: its profile
# (docs/LCA.md, "Certificate profile and why") is one strongSwan 5.9.8 can
# parse; checked here, not assumed.  Sets XS_LCA_ID, the LCA's subject DN,
# for the remote's ca_id (xs_remote_conn).
xs_anchors() {
	local pki=$1
	xs_pki --print --in "$pki/lca.crt" >"$pki/lca-print.out" 2>&1 ||
		fail "strongSwan cannot parse the LCA certificate: $(tail -n 2 "$pki/lca-print.out" | tr '\n' ' ')"
	cat "$pki/root.crt" "$pki/lca.crt" >"$pki/anchors.pem"
	XS_LCA_ID=$(openssl x509 -in "$pki/lca.crt" -noout -subject -nameopt sep_comma_plus_space,sname,-esc_msb)
	XS_LCA_ID=${XS_LCA_ID#subject=}
}
# Former name (it made a weaker root-issued LCA copy; never again).
xs_lca_swan() { xs_anchors "$1"; }

# xs_remote_pki PKI ADDR: the remote peer's key and certificate from the
# root (PKI/remote.{key,crt}; identity and IP SAN = ADDR).
xs_remote_pki() {
	local pki=$1 addr=$2
	xs_pki --gen --type ecdsa --size 256 --outform pem >"$pki/remote.key"
	xs_pki --issue --cacert "$pki/root.crt" --cakey "$pki/root.key" --type priv --in "$pki/remote.key" \
		--dn "O=remote, CN=$addr" --san "$addr" --outform pem >"$pki/remote.crt"
}

# xs_swan_id SWAN_DIR: the IKE identity xdnat-host --swan-dir wrote (the
# certificate's subject DN).
xs_swan_id() {
	sed -n 's/^\t\tid = "\(.*\)"$/\1/p' "$1/swanctl/conf.d/xdnat.conf"
}

# xs_remote_setup NAME PKI: NAME's strongswan.conf and swanctl directory as
# the remote peer: trusts the root only, its own key and certificate.  The
# connections are written by the caller (xs_remote_conn).
xs_remote_setup() {
	local name=$1 pki=$2 d
	d=$(xs_dir "$name")
	xs_conf "$name"
	cp "$pki/root.crt" "$d/swanctl/x509ca/root.crt"
	cp "$pki/remote.crt" "$d/swanctl/x509/remote.crt"
	install -m 600 "$pki/remote.key" "$d/swanctl/private/remote.key"
}

# xs_remote_conn CONN REMOTE_ADDR G ID LOCAL_TS REMOTE_TS: one connection
# of the remote's swanctl.conf for the host with identity ID behind G (the
# configuration of e2e_strongswan.sh, without its test-only children); with
# ca_id = the LCA's subject (XS_LCA_ID, from xs_anchors): only this G's LCA
# may have issued the peer's certificate (strongSwan 5.9.8 does not enforce
# the LCA's name constraints itself; docs/STRONGSWAN.md).
xs_remote_conn() {
	cat <<EOC
	$1 {
		version = 2
		local_addrs = $2
		remote_addrs = $3
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		local {
			auth = pubkey
			certs = remote.crt
			id = $2
		}
		remote {
			auth = pubkey
			id = "$4"
			${XS_LCA_ID:+ca_id = \"$XS_LCA_ID\"}
			revocation = ifuri
		}
		children {
			$1 {
				local_ts = $5
				remote_ts = $6
				esp_proposals = aes256gcm16
			}
		}
	}
EOC
}

# xs_host_setup NAME SWAN_DIR REMOTE_ADDR CHILD LOCAL_TS REMOTE_TS: NAME's
# strongswan.conf includes xdnat-host's fragment, its swanctl directory is
# SWAN_DIR/swanctl, whose swanctl.conf gets the connection "remote"
# (inheriting xdnat-local) with one child CHILD.
xs_host_setup() {
	local name=$1 swan=$2 d
	d=$(xs_dir "$name")
	xs_conf "$name" "include $swan/strongswan.d/xdnat.conf"
	rm -rf "${d:?}/swanctl"
	ln -s "$swan/swanctl" "$d/swanctl"
	cat >"$swan/swanctl/swanctl.conf" <<EOC
include conf.d/*.conf
connections {
	remote : xdnat-local {
		version = 2
		remote_addrs = $3
		remote_port = 4500
		proposals = aes256gcm16-prfsha256-ecp256
		mobike = no
		remote {
			auth = pubkey
			id = $3
		}
		children {
			$4 {
				local_ts = $5
				remote_ts = $6
				esp_proposals = aes256gcm16
			}
		}
	}
}
EOC
}

# ------------------------------------- renewal and revocation on the remote
# (selftests/e2e_strongswan_renewal.sh; the scripts docs/STRONGSWAN.md shows)

# xs_remote_revoked_script FILE SWAN_NAME: write the command xdnat-peer runs
# for each notice on the remote SWAN_NAME: load the CRL the notice carried
# and drop charon's cached CRLs, then terminate every IKE_SA of every host a
# revoked entry names.  Matching is by identity: the subjects of all
# certificates charon holds that carry a revoked serial OR a revoked
# identity (DNS or e-mail SAN; all certificates of a host carry the same one),
# so an IKE_SA authenticated with the host's earlier certificate ends too;
# and IKE_SAs whose peer used the identity itself as its IKE ID.
xs_remote_revoked_script() {
	local file=$1 d
	d=$(xs_dir "$2")
	cat >"$file" <<EOF
#!/bin/bash
export STRONGSWAN_CONF="$d/strongswan.conf" SWANCTL_DIR="$d/swanctl"
EOF
	cat >>"$file" <<'EOF'
echo "notice from $XDNAT_NOTICE_FROM (G $XDNAT_NOTICE_GLOBAL, CRL $XDNAT_NOTICE_CRL_NUMBER): revoked $XDNAT_REVOKED_SERIALS ($XDNAT_REVOKED_IDENTITIES)"
swanctl --load-creds --noprompt >/dev/null
swanctl --flush-certs --type x509_crl >/dev/null
ids=$(swanctl --list-certs --type x509 | awk -v serials="$XDNAT_REVOKED_SERIALS" -v idents="$XDNAT_REVOKED_IDENTITIES" '
	function norm(s) { gsub(":", "", s); s = tolower(s); sub(/^0+/, "", s); return s }
	BEGIN {
		n = split(serials, a, " "); for (i = 1; i <= n; i++) want[norm(a[i])] = 1
		n = split(idents, a, " "); for (i = 1; i <= n; i++) { wid[a[i]] = 1; print a[i] }
	}
	$1 == "subject:" { s = $0; sub(/^[ \t]*subject:[ \t]*"/, "", s); sub(/"$/, "", s); subj = s }
	$1 == "serial:" && (norm($2) in want) { print subj }
	$1 == "altNames:" {
		l = $0; sub(/^[ \t]*altNames:[ \t]*/, "", l)
		n = split(l, a, /, */); for (i = 1; i <= n; i++) if (a[i] in wid) print subj
	}' | sort -u)
[ -n "$ids" ] || { echo "no certificate or SA of these identities"; exit 0; }
swanctl --list-sas --noblock | awk -v ids="$ids" '
	BEGIN { n = split(ids, a, "\n"); for (i = 1; i <= n; i++) want["'\''" a[i] "'\''"] = a[i] }
	/^[^ ].*: #[0-9]+,/ { u = $2; gsub(/[#,]/, "", u) }
	/^  remote '\''/ { r = $0; sub(/^  remote /, "", r); sub(/ @ .*$/, "", r); if (r in want) print u, want[r] }' |
sort -u | while read -r u who; do
	swanctl --terminate --ike-id "$u" --timeout 5 >/dev/null &&
		echo "TERMINATED IKE_SA #$u of '$who'"
done
EOF
	chmod 755 "$file"
}

# xs_remote_updown_script FILE SWAN_NAME VERIFY ANCHORS LCA_CERT: the
# remote's updown hook.  For each CHILD_SA coming up it checks, with
# xdnat-verify, the certificate that authenticated the peer: of the
# certificates charon holds for PLUTO_PEER_ID, the newest (latest
# notBefore), the one the IKE_AUTH just verified (older ones are the same
# host's earlier certificates, maybe expired).  Its validity may have ended
# since (a child added to an older IKE_SA, short leases): it is then checked
# as of its last valid second, without the CRL; if the CRL lists it as
# superseded (the host renewed), it is checked without the CRL too: neither
# is a revocation of the SA (an operator revocation ends the SAs through
# the notices).  A denied child with ports is terminated; a denied
# port-less child means the certificate itself is refused: its IKE_SA is
# terminated.  Logs ALLOW/DENY lines with the serial to FILE.log.
xs_remote_updown_script() {
	local file=$1 d
	d=$(xs_dir "$2")
	cat >"$file" <<EOF
#!/bin/bash
export STRONGSWAN_CONF="$d/strongswan.conf" SWANCTL_DIR="$d/swanctl"
VERIFY="$3" ANCHORS="$4" LCA_CERT="$5" LOG="$file.log"
EOF
	cat >>"$file" <<'EOF'
case "$PLUTO_VERB" in up-client*) ;; *) exit 0 ;; esac
(
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	if ! swanctl --list-certs --subject "$PLUTO_PEER_ID" --pem >"$tmp/certs.txt"; then
		echo "ERROR $PLUTO_CONNECTION id='$PLUTO_PEER_ID': cannot list charon's certificates: nothing done"
		exit 0
	fi
	awk -v d="$tmp" '
		/-BEGIN CERTIFICATE-/ { n++; f = d "/c" n ".pem" }
		f { print > f }
		/-END CERTIFICATE-/ { close(f); f = "" }' "$tmp/certs.txt"
	best= best_nb=-1
	for c in "$tmp"/c*.pem; do
		[ -s "$c" ] || continue
		nb=$(date -d "$(openssl x509 -in "$c" -noout -startdate | cut -d= -f2)" +%s) || continue
		[ "$nb" -ge "$best_nb" ] && best=$c best_nb=$nb
	done
	what="$PLUTO_CONNECTION $PLUTO_PEER_CLIENT port=${PLUTO_PEER_PORT:-0} id='$PLUTO_PEER_ID'"
	if [ -z "$best" ]; then
		out="no certificate of the peer"
		ok=1
	else
		cat "$best" "$LCA_CERT" >"$tmp/chain.pem"
		serial=$(openssl x509 -in "$best" -noout -serial | cut -d= -f2)
		na=$(date -d "$(openssl x509 -in "$best" -noout -enddate | cut -d= -f2)" +%s)
		args=(-a "$ANCHORS" -c "$tmp/chain.pem" -s "$PLUTO_PEER")
		swanctl --list-certs --type x509_crl --pem | awk -v d="$tmp" '
			/-BEGIN X509 CRL-/ { n++; f = d "/r" n ".pem" }
			f { print > f }
			/-END X509 CRL-/ { close(f); f = "" }'
		# One instant for every check, taken after the CRLs were read
		# (none is from after it): now, or the certificate's last second.
		now=$(date +%s)
		if [ "$now" -lt "$na" ]; then
			args+=(-t "$now")
			# Superseded (the host renewed since) is no revocation of
			# this SA: checked without the CRL then.
			sup=0
			for r in "$tmp"/r*.pem; do
				[ -s "$r" ] || continue
				openssl crl -in "$r" -noout -text | awk -v s="$serial" '
					/Serial Number:/ { cur = $3 }
					cur == s && /Superseded/ { f = 1 }
					END { exit !f }' && sup=1
			done
			if [ "$sup" = 1 ]; then
				serial="$serial(superseded)"
			else
				# the newest CRL charon holds (highest CRL number)
				crl= max=-1
				for r in "$tmp"/r*.pem; do
					[ -s "$r" ] || continue
					num=$(openssl crl -in "$r" -noout -crlnumber | cut -d= -f2)
					[ $(( num )) -gt "$max" ] && crl=$r max=$(( num ))
				done
				[ -n "$crl" ] && args+=(-r "$crl")
			fi
		else
			args+=(-t "$(( na - 1 ))")
			serial="$serial(expired)"
		fi
		[ "${PLUTO_PEER_PORT:-0}" != 0 ] && args+=(-p "$PLUTO_PEER_PORT")
		out=$("$VERIFY" "${args[@]}" 2>&1) && ok=0 || ok=1
		what="$what serial=$serial"
	fi
	if [ "$ok" = 0 ]; then
		echo "ALLOW $what: $out"
		exit 0
	fi
	echo "DENY $what: $out"
	if [ "${PLUTO_PEER_PORT:-0}" = 0 ]; then
		swanctl --terminate --ike-id "$PLUTO_UNIQUEID" --timeout 5 >/dev/null
		echo "TERMINATED IKE_SA #$PLUTO_UNIQUEID"
	else
		id=$(swanctl --list-sas --ike-id "$PLUTO_UNIQUEID" | awk -v ts="$PLUTO_PEER_CLIENT" -v p="$PLUTO_PEER_PORT" '
			$2 ~ /^#[0-9]+,$/ { c = substr($2, 2, length($2) - 2) }
			$1 == "remote" && index($2, ts) == 1 && index($2, "/" p "]") { print c }' | tail -n 1)
		[ -n "$id" ] && swanctl --terminate --child-id "$id" --timeout 5 >/dev/null
		echo "TERMINATED child ${id:-?}"
	fi
) >>"$LOG" 2>&1 </dev/null &
exit 0
EOF
	chmod 755 "$file"
}
