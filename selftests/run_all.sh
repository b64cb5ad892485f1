#!/usr/bin/env bash
# Run every xdnat test suite and finish with one "N passed, M failed" line.
# Unit and packet suites are Criterion binaries (each case counted); every
# selftests/e2e_*.sh is one netns end-to-end test (exit 0 = pass).  Needs
# root: BPF, network namespaces.  A suite that cannot run counts as failed.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
passed=0
failed=0
known=0
failed_names=()

if [ "$(id -u)" -ne 0 ]; then
	echo "run_all: the tests load BPF programs and create network namespaces: run as root (sudo make check)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# Criterion's JSON report (--json) gives the counts; a skipped case counts
# as failed (a full run skips nothing), a missing report as one failure.
for t in "$OUT"/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	echo "=== $name"
	report=$(mktemp)
	"$t" --verbose=0 -j1 --json="$report"
	rc=$?
	# Cases listed in selftests/known_failures.txt that fail are counted
	# as known failures (printed with their reason), never as passed.
	if counts=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
known = {}
for line in open(sys.argv[2]):
    if line.strip() and not line.startswith("#"):
        k, _, why = line.strip().partition(" ")
        known[k] = why
kf = 0
for suite in d["test_suites"]:
    for t in suite["tests"]:
        n = suite["name"] + "::" + t["name"]
        if n in known and t["status"] in ("FAILED", "ERRORED"):
            kf += 1
            print("run_all: KNOWN FAILURE " + n + ": " + known[n], file=sys.stderr)
        elif n in known:
            print("run_all: " + n + " is listed in selftests/known_failures.txt but " + t["status"], file=sys.stderr)
print(d["passed"], d["failed"] + d["errored"] - kf, d["skipped"], kf)' "$report" selftests/known_failures.txt); then
		read -r p f s k <<<"$counts"
		passed=$((passed + p))
		failed=$((failed + f + s))
		known=$((known + k))
		[ "$s" -gt 0 ] && echo "run_all: $name skipped $s cases" >&2
		if [ $((f + s)) -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$k" -eq 0 ]; }; then
			failed_names+=("$name")
			[ $((f + s)) -eq 0 ] && failed=$((failed + 1))
		fi
	else
		echo "run_all: $name wrote no Criterion JSON report (exit $rc)" >&2
		failed=$((failed + 1))
		failed_names+=("$name")
	fi
	rm -f "$report"
done

for t in selftests/e2e_*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	echo "=== $name"
	if timeout 600 bash "$t"; then
		echo "PASS $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name"
		failed=$((failed + 1))
		failed_names+=("$name")
	fi
done

# The RSIP, CA and neighbour (netlink) end-to-end tests once more against the sanitizer build of
# every program (make SAN=1 -> build-san/): an ASan/UBSan report from any
# daemon or tool, which the test itself may not notice, fails the run.
SAN_BUILD=${SAN_BUILD:-build-san}
SAN_E2E=${SAN_E2E:-e2e_rsip e2e_lca e2e_neigh}
for name in $SAN_E2E; do
	echo "=== $name [sanitizers]"
	if [ ! -x "$SAN_BUILD/xdnatd" ]; then
		echo "run_all: $SAN_BUILD/xdnatd missing: build it with 'make SAN=1'" >&2
		echo "FAIL $name [sanitizers]"
		failed=$((failed + 1)); failed_names+=("$name[san]")
		continue
	fi
	reports=$(mktemp -d)
	ok=1
	XD_BUILD=$(cd "$SAN_BUILD" && pwd) \
	ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0" \
	UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1" \
		timeout 600 bash "selftests/$name.sh" || ok=0
	if [ -n "$(ls -A "$reports")" ]; then
		echo "run_all: sanitizer reports from $name:" >&2
		cat "$reports"/* >&2
		ok=0
	fi
	rm -rf "$reports"
	if [ $ok -eq 1 ]; then
		echo "PASS $name [sanitizers]"
		passed=$((passed + 1))
	else
		echo "FAIL $name [sanitizers]"
		failed=$((failed + 1)); failed_names+=("$name[san]")
	fi
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed suites: ${failed_names[*]}"
if [ "$known" -gt 0 ]; then
	echo "$passed passed, $failed failed, $known known failures (selftests/known_failures.txt: open bugs, not passes)"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
