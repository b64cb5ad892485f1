#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The command-line contract of every program (xdnatd, xdnatctl, xdnat-host,
# xdnat-ca, xdnat-verify, xdnat-peer), checked against the option table in
# its source:
#   - --version exits 0 and prints "PROG VERSION" (the Makefile's VERSION);
#   - an unknown option and a missing argument exit 2 with a message on
#     stderr; the retired short options (xdnatctl -p/-s, xdnatd -R/-M) too;
#   - every long option of the table is one getopt knows, --help lists it
#     and the man page made by `make man` lists it;
#   - every key of xdnatd's configuration table is in xdnatd.conf(5) under
#     its section, and every key the shipped example shows is accepted.
# No root, no network: it only runs the programs' argument parsing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d /tmp/xdnat-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
command -v help2man >/dev/null || fail "help2man is missing (scripts/deps.sh installs it)"

# PROG SOURCE TABLE [ARGS BEFORE OPTIONS]: TABLE is the option array's name.
programs=(
	"xdnatd loader/daemon/options.c xdnatd_opts"
	"xdnatctl loader/cli/xdnatctl.c ctl_opts"
	"xdnat-host loader/host/xdnat_host_agent.c host_opts"
	"xdnat-ca ca/tools/xdnat_ca.c lo list"
	"xdnat-verify ca/tools/xdnat_verify.c lo"
	"xdnat-peer ca/tools/xdnat_peer.c lo"
)

# The long options of a table (xo_opt or struct option) in a C file, one a
# line: NAME and 1 if it takes an argument, else 0.
table_opts() { # FILE ARRAY
	python3 - "$1" "$2" <<'EOF'
import re, sys
src = open(sys.argv[1]).read()
m = re.search(r"\b%s\[\]\s*=\s*\{" % re.escape(sys.argv[2]), src)
if not m:
    sys.exit("no table %s in %s" % (sys.argv[2], sys.argv[1]))
end = re.search(r"\n\t?\};", src[m.end():])
body = src[m.end():m.end() + end.start()]
for e in re.finditer(r'\{\s*"([a-z][a-z0-9-]*)",\s*([^,]+),\s*([^,}]+)', body):
    name, second, third = e.group(1), e.group(2).strip(), e.group(3).strip()
    if second in ("0", "1", "no_argument", "required_argument"):   # struct option
        arg = second in ("1", "required_argument")
    else:                                                           # xo_opt: key, arg
        arg = third.startswith('"')
    print(name, int(arg))
if "XO_OPT_VERSION" in body:
    print("version 0")
if "XO_OPT_HELP" in body:
    print("help 0")
EOF
}

# The text of a man page's roff source with escapes undone (no rendering
# differences: hyphens, fonts, line breaks).
man_text() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/--/g' "$1"
}

# SAN=1 with OUT=build-san checks the sanitizer build (make SAN=1).
make --no-print-directory -s man OUT="$OUT" ${SAN:+SAN=$SAN} >/dev/null || fail "make man failed"

versions=
checked=0
for p in "${programs[@]}"; do
	read -r prog src table pre <<<"$p"
	bin=$OUT/$prog
	[ -x "$bin" ] || fail "$bin is not built (make all)"
	table_opts "$src" "$table" >"$tmp/opts" || fail "cannot read $prog's option table"
	[ "$(wc -l <"$tmp/opts")" -ge 3 ] || fail "$prog: table $table in $src has too few options"

	# --version
	out=$("$bin" --version) || fail "$prog --version exited $?"
	[[ $out =~ ^$prog\ ([^ ]+)$ ]] || fail "$prog --version printed '$out', not '$prog VERSION'"
	[ "${BASH_REMATCH[1]}" != unknown ] || fail "$prog was built without -DXDNAT_VERSION"
	versions+="$prog ${BASH_REMATCH[1]}; "

	# Usage errors: exit 2, a message on stderr.
	rc=0
	"$bin" $pre --no-such-option >/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" = 2 ] || fail "$prog --no-such-option exited $rc, not 2"
	[ -s "$tmp/err" ] || fail "$prog --no-such-option: nothing on stderr"
	arg_opt=$(awk '$2 == 1 { print $1; exit }' "$tmp/opts")
	rc=0
	"$bin" $pre "--$arg_opt" >/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" = 2 ] || fail "$prog --$arg_opt without its argument exited $rc, not 2"
	grep -q -- "--$arg_opt\|requires an argument" "$tmp/err" ||
		fail "$prog --$arg_opt: stderr does not say what is missing: $(cat "$tmp/err")"

	# Every option of the table: known to getopt, in --help, in the man page.
	"$bin" --help >"$tmp/help" || fail "$prog --help exited $?"
	man_text "$OUT/man/$prog.8" >"$tmp/man" || fail "no man page $OUT/man/$prog.8"
	while read -r name arg; do
		case $name in help | version | help-config) ;; *)
			rc=0
			timeout 10 "$bin" $pre "--$name" >/dev/null 2>"$tmp/err" </dev/null || rc=$?
			grep -q "unrecognized option" "$tmp/err" && fail "$prog: getopt does not know --$name"
			[ "$rc" != 0 ] || fail "$prog --$name alone succeeded: expected a usage error"
		esac
		grep -q -- "--$name\b" "$tmp/help" || fail "$prog --help does not list --$name"
		grep -q -- "--$name\b" "$tmp/man" || fail "$prog.8 does not list --$name"
		checked=$((checked + 1))
	done <"$tmp/opts"
done

# Retired short options: refused as unknown, the long forms kept.
for c in "xdnatctl -p x pin-base" "xdnatctl -s x state-dir" "xdnatd -R rsip" \
	 "xdnatd -M x metrics"; do
	rc=0
	set -- $c
	"$OUT/$1" "${@:2:$#-2}" >/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" = 2 ] && grep -q "invalid option" "$tmp/err" || fail "'${c% *}' is not refused (exit $rc)"
	grep -q -- "is retired: use --${!#}" "$tmp/err" || fail "'${c% *}': no hint to use --${!#}"
done

# xdnatd.conf(5): every key of the table under its section.
python3 - loader/daemon/options.c <<'EOF' >"$tmp/keys"
import re, sys
src = open(sys.argv[1]).read()
for e in re.finditer(r'\{\s*"([a-z][a-z0-9-]*)",[^{}]*?\.ini = "([a-z]+)(?:\.([a-z-]+))?"', src):
    print(e.group(2), e.group(3) or e.group(1))
EOF
[ "$(wc -l <"$tmp/keys")" -ge 30 ] || fail "too few configuration keys found in options.c"
man_text "$OUT/man/xdnatd.conf.5" >"$tmp/conf5"
while read -r sec key; do
	awk -v s="[$sec]" -v k="$key =" '$0 == s { on = 1; next } /^\[/ { on = 0 }
		on && index($0, k) == 1 { found = 1 } END { exit !found }' \
		<(sed -e 's/^\.[A-Z]*  *//' "$tmp/conf5") || fail "xdnatd.conf.5 lacks '$key' in [$sec]"
done <"$tmp/keys"

# The shipped example configuration: every key it shows (commented out) is
# one of the table's, with a valid value.
sed -E 's/^#([a-z-]+ = )/\1/' systemd/xdnatd.conf.example >"$tmp/example.conf"
n_example=$(grep -cE '^[a-z-]+ = ' "$tmp/example.conf")
[ "$n_example" -ge 10 ] || fail "systemd/xdnatd.conf.example shows only $n_example keys"
"$OUT/xdnatd" --config "$tmp/example.conf" --check-config >/dev/null 2>"$tmp/err" || true
grep -q "example.conf:" "$tmp/err" && fail "xdnatd.conf.example: $(grep example.conf: "$tmp/err")"

echo "e2e_cli: versions: $versions"
echo "e2e_cli: 6 programs, $checked options, $(wc -l <"$tmp/keys") configuration keys OK"
