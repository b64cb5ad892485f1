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
