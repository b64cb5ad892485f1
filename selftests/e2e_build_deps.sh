#!/usr/bin/env bash
# Header dependencies: touching any project header makes `make all` rebuild
# exactly the C files that include it (directly or through other headers),
# no more, no fewer.  The expected set comes from the #include lines
# (selftests/lib/header_deps.py), the actual one from `make -n all`.  Each
# header's modification time is restored afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "FAIL: $*" >&2; exit 1; }
make -s all >/dev/null || fail "make all does not build"
make -q all 2>/dev/null || [ -z "$(make -n all 2>/dev/null | grep -e ' -c ')" ] ||
	fail "make all is not up to date after a build"
expected=$(python3 selftests/lib/header_deps.py .)
n=0 bad=0
while IFS= read -r line; do
	h=${line%%:*}
	want=$(tr ' ' '\n' <<<"${line#*:}" | sed '/^$/d' | sort)
	stamp=$(stat -c %y "$h")
	touch "$h"
	got=$(make -n all 2>/dev/null | grep -oE -- ' -c [^ ]+\.c' | awk '{print $2}' | sort -u)
	touch -d "$stamp" "$h"
	if [ "$want" != "$got" ]; then
		echo "  $h: expected rebuild of [$(echo $want)], make -n rebuilds [$(echo $got)]" >&2
		bad=$((bad + 1))
	fi
	n=$((n + 1))
done <<<"$expected"
[ "$n" -ge 20 ] || fail "only $n headers found: is the layout readable?"
[ "$bad" -eq 0 ] || fail "$bad of $n headers rebuild the wrong set of files"
echo "  ok  $n headers: touching each rebuilds exactly the files that include it"
