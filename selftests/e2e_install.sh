#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `make install` / `make uninstall` into a DESTDIR: every binary, BPF object,
# man page and unit lands where PREFIX says, man pages render and carry each
# command's options, units name the installed binaries, uninstall removes
# everything but the operator's settings.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(mktemp -d /tmp/xdnat-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
prefix=/opt/xdnat-test

make --no-print-directory -s install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
for b in xdnatd xdnatctl xdnat-host xdnat-ca xdnat-verify xdnat-peer; do
	[ -x "$dest$prefix/sbin/$b" ] || fail "$b not installed in $prefix/sbin"
	page=$dest$prefix/share/man/man8/$b.8
	[ -s "$page" ] || fail "man page $b.8 missing"
	text=$(MANWIDTH=100 man -l "$page" 2>/dev/null) || fail "$b.8 does not render"
	# Every long option of --help appears in the page.
	for opt in $("build/$b" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
		grep -q -- "$opt" <<<"$text" || fail "$b.8 lacks $opt"
	done
done
page=$dest$prefix/share/man/man5/xdnatd.conf.5
text=$(MANWIDTH=100 man -l "$page" 2>/dev/null) || fail "xdnatd.conf.5 missing or does not render"
for k in wan lan global unknown enabled quarantine listen; do
	grep -qw -- "$k" <<<"$text" || fail "xdnatd.conf.5 lacks key $k"
done
out=$(build/xdnatd --config "$dest/etc/xdnat/xdnatd.conf" --check-config 2>&1 || true)
grep -q "wan, lan and global are required" <<<"$out" || fail "the shipped xdnatd.conf is not parseable: $out"
for o in xdnat_router.bpf.o xdnat_hostside.bpf.o; do
	[ -s "$dest$prefix/lib/xdnat/$o" ] || fail "BPF object $o not installed"
done
for u in xdnatd xdnat-host; do
	unit=$dest$prefix/lib/systemd/system/$u.service
	[ -s "$unit" ] || fail "unit $u.service missing"
	grep -q "^ExecStart=$prefix/sbin/$u " "$unit" || fail "$u.service does not run $prefix/sbin/$u"
	[ "$u" = xdnatd ] && { grep -q "^ExecReload=" "$unit" || fail "xdnatd.service has no ExecReload"; }
	grep -q '^CapabilityBoundingSet=.*CAP_BPF' "$unit" || fail "$u.service has no capability bound"
	[ -s "$dest/etc/default/$u" ] || fail "/etc/default/$u missing"
done
echo "settings" >>"$dest/etc/default/xdnatd"
make --no-print-directory -s install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
grep -q settings "$dest/etc/default/xdnatd" || fail "a second install overwrote /etc/default/xdnatd"
make --no-print-directory -s uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null
left=$(find "$dest" -type f | grep -v "/etc/default/\|/etc/xdnat/" || true)
[ -z "$left" ] || fail "uninstall left: $left"
echo "e2e_install: install, man pages, units and uninstall OK"
