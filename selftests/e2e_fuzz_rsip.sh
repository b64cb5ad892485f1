#!/usr/bin/env bash
# Short libFuzzer run of the RSIP codec (selftests/fuzz_rsip_wire.c,
# docs/CONTROL-PLANE.md "Fuzzing"): builds the harness if needed, runs it for
# FUZZ_SECONDS (default 30; `make fuzz` passes 60) from the seed corpus
# selftests/fuzz/rsip_wire/ and fails on any crash, sanitizer report, leak,
# timeout or out-of-memory.  Prints execs/s and coverage.  New inputs and
# crash artefacts go to a temporary directory removed on exit; a crashing
# input is printed (hex and base64) so the log is enough to reproduce it:
#   base64 -d > crash <<<'...'; build/fuzz_rsip_wire crash
# Needs clang with libFuzzer (clang-14 on Debian); no root, no network.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "FAIL: $*" >&2; exit 1; }

OUT=${OUT:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
bin=$OUT/fuzz_rsip_wire
seeds=selftests/fuzz/rsip_wire

[[ $FUZZ_SECONDS =~ ^[0-9]+$ ]] && [ "$FUZZ_SECONDS" -gt 0 ] || fail "FUZZ_SECONDS must be a positive integer"
nseeds=$(find "$seeds" -type f | wc -l)
[ "$nseeds" -gt 0 ] || fail "no seed corpus in $seeds (make fuzz-seeds)"
make --no-print-directory OUT="$OUT" "$bin" >/dev/null || fail "cannot build $bin (needs clang with -fsanitize=fuzzer)"

tmp=$(mktemp -d /tmp/xdnat-fuzz-rsip.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/corpus" "$tmp/artifacts"
log=$tmp/log

echo "fuzzing the RSIP codec for ${FUZZ_SECONDS}s from $nseeds seeds"
rc=0
# -timeout: one input taking 10 s is a hang; -rss_limit_mb: a leak or runaway
# allocation.  ASan's leak check is on (libFuzzer's default).
timeout $((FUZZ_SECONDS + 120)) "$bin" -max_len=4096 -max_total_time="$FUZZ_SECONDS" \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$tmp/artifacts/" "$tmp/corpus" "$seeds" >"$log" 2>&1 || rc=$?

grep -a -m1 'INITED' "$log" || true
grep -a -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true
grep -a '^stat::' "$log" || true

bad=$(find "$tmp/artifacts" -type f)
if [ "$rc" -ne 0 ] || [ -n "$bad" ] || grep -aq -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|invariant broken' "$log"; then
	echo "--- fuzzer output (last 60 lines)"
	tail -60 "$log"
	for f in $bad; do
		echo "--- artefact $(basename "$f") ($(stat -c %s "$f") bytes)"
		od -A d -t x1 "$f" | head -40
		echo "base64: $(base64 -w0 "$f")"
	done
	fail "fuzzer exited with $rc; artefacts: $(echo "$bad" | wc -w)"
fi

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
loaded=$(sed -n 's/.*seed corpus: files: \([0-9]*\).*/\1/p' "$log" | head -1)
cov=$(grep -a -E '^#[0-9]+.*cov: ' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/\1 edges, \2 features, corpus \3/p')
[ -n "$execs" ] && [ "$execs" -gt 0 ] || fail "the fuzzer ran no inputs"
[ "${loaded:-0}" -ge "$nseeds" ] || fail "the fuzzer loaded ${loaded:-0} of $nseeds seeds"
echo "PASS: $execs inputs in ${FUZZ_SECONDS}s ($rate execs/s), coverage: $cov, no crash, leak or timeout"
