#!/usr/bin/env bash
# Smoke test of the benchmark (make bench, docs/BENCHMARKS.md): runs
# bench/bench.sh --smoke (small tables, short runs) and checks that every
# figure of the table is produced and every sink check passed.  It does not
# judge the magnitudes: timings belong to `make bench`, not to the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "FAIL: $*" >&2; exit 1; }

make --no-print-directory bench-build >/dev/null || fail "make bench-build"

out=$(mktemp /tmp/xdnat-bench-smoke.XXXXXX)
trap 'rm -f "$out"' EXIT
rc=0
timeout "${XDNAT_BENCH_SMOKE_TIMEOUT:-120}" bench/bench.sh --smoke >"$out" 2>&1 || rc=$?
cat "$out"
[ "$rc" -eq 0 ] || fail "bench/bench.sh --smoke exited with $rc"

# row label -> how many numeric figures the row must carry
rows=(
	"XDP_PASS baseline|2"
	"redirect-only baseline|2"
	"redirect + bpf_fib_lookup|2"
	"harness overhead|1"
	"WAN->LAN ESP|5"
	"WAN->LAN AH|5"
	"WAN->LAN UDP|5"
	"WAN->LAN TCP|5"
	"LAN->WAN UDP|5"
	"flood: TCP SYN to unallocated ports|3"
	"flood: ESP to unallocated SPIs|3"
	"minimal encapsulating router|2"
	"(a) direct|4"
	"(b) xdnat, 1 host, UDP|4"
	"(b) xdnat, full tables, UDP|4"
	"(b) xdnat, full tables, ESP|4"
	"(m) minimal encap router|4"
	"(c) kernel fwd|4"
	"ratios|5"
)
for r in "${rows[@]}"; do
	label=${r%|*}
	want=${r##*|}
	line=$(grep -F -- "$label" "$out" | head -1) || true
	[ -n "$line" ] || fail "no row '$label' in the table"
	rest=${line#*"$label"}
	n=$(tr -s ' ' '\n' <<<"$rest" | grep -cE '^[0-9]+(\.[0-9]+)?(%|M)?$' || true)
	[ "$n" -ge "$want" ] || fail "row '$label' has $n figures, want $want: $line"
done
if grep -Eqi '(^|[^a-z])(nan|inf)([^a-z]|$)' "$out"; then
	fail "a figure is nan/inf"
fi
live_ok=$(grep -cE '^\((a|b|c|m)\) .* ok$' "$out" || true)
[ "$live_ok" -eq 6 ] || fail "$live_ok of 6 live scenarios passed their sink checks"
# the scaling phase: one row per scenario and the summary line (2+ CPUs)
if [ "$(nproc)" -gt 1 ]; then
	grep -q '^scaling: xdnat [0-9.]*x, kernel NAT [0-9.]*x' "$out" || fail "no scaling line"
fi
grep -q '^sink checks: all passed' "$out" || fail "sink checks did not all pass"
grep -qE '^targets: [0-9]+ of 6 met' "$out" || fail "no targets line"
[ "$(grep -cE '^  .* (met|MISSED)$' "$out")" -eq 6 ] || fail "not every target has a verdict"
echo "bench smoke: every figure produced, every sink check passed"
