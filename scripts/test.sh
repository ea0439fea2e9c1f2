#!/usr/bin/env bash
# The one test command (`make test`, run by .ci/run): every check CI runs, then a summary.
#
#   scripts/test.sh
#
# deps, tools, format, unit tests plain and under ASan+UBSan, then ONE pytest over tests/
# (integration, tracing, k8s, e2e) against the sanitized services, then the Kubernetes flows
# on a real cluster (scripts/test-cluster.sh). Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
PY=/usr/bin/python3

results=()
failed=0

# step NAME COMMAND...: runs a step, records PASS/FAIL; later steps still run.
step() {
	local name=$1 start=$SECONDS
	shift
	printf '\n==> %s\n' "$name"
	if "$@"; then
		results+=("PASS  $name ($((SECONDS - start))s)")
	else
		results+=("FAIL  $name ($((SECONDS - start))s)")
		failed=1
	fi
}

passed=0
failed_tests=0
# count FILE: adds the "N passed, N failed" figures of a runner's output to the totals.
count() {
	local p f
	p=$(grep -aoE '[0-9]+ passed' "$1" | awk '{s += $1} END {print s + 0}')
	f=$(grep -aoE '[0-9]+ (failed|errors?)' "$1" | awk '{s += $1} END {print s + 0}')
	passed=$((passed + p))
	failed_tests=$((failed_tests + f))
}

# units DIR: runs every DIR/test_* binary; fails if any fails or none exist.
units() {
	local t n=0 bad=0 out
	out=$(mktemp)
	for t in "$1"/test_*; do
		[ -x "$t" ] || continue
		n=$((n + 1))
		"$t" | tee -a "$out" || { echo "FAILED: $t"; bad=1; }
	done
	count "$out"
	rm -f "$out"
	[ "$n" -gt 0 ] || { echo "no unit tests in $1"; return 1; }
	return $bad
}

# pytests COMMAND...: a pytest run, its figures added to the totals.
pytests() {
	local out rc
	out=$(mktemp)
	"$@" | tee "$out"
	rc=${PIPESTATUS[0]}
	tail -n 1 "$out" >"$out.last"
	count "$out.last"
	rm -f "$out" "$out.last"
	return "$rc"
}

san_units() {
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 units build/san/tests
}

step deps scripts/deps.sh
step tools scripts/tools.sh all
step check-format make -s check-format
step "build + unit" make -s -j2 all unit
step "unit tests" units build/tests
step "build + unit (ASan+UBSan)" make -s -j2 SAN=1 all unit
step "unit tests (ASan+UBSan)" san_units
step "fuzz (each target 30 s, ASan+UBSan)" make -s fuzz FUZZ_SECONDS=30
export BAKERY_BUILD=build/san
step "pytest tests/ (services: build/san)" pytests "$PY" -m pytest -ra --ignore=tests/cluster tests/
unset BAKERY_BUILD
step "Kubernetes flows (tests/cluster)" pytests scripts/test-cluster.sh

printf '\n==> summary\n'
printf '%s\n' "${results[@]}"
if [ "$failed" -ne 0 ] && [ "$failed_tests" -eq 0 ]; then
	failed_tests=1 # a step failed outside any test runner (deps, tools, format, build)
fi
echo "summary: $passed passed, $failed_tests failed"
[ "$failed" -eq 0 ]
