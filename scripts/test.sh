#!/usr/bin/env bash
# The one test command (`make test`, run by .ci/run): every check CI runs, then a summary.
#
#   scripts/test.sh
#
# deps, tools, format, unit tests plain and under ASan+UBSan, then ONE pytest over tests/
# (integration, tracing, k8s, e2e) against the sanitized services. Exits non-zero on any failure.
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

# units DIR: runs every DIR/test_* binary; fails if any fails or none exist.
units() {
	local t n=0 bad=0
	for t in "$1"/test_*; do
		[ -x "$t" ] || continue
		n=$((n + 1))
		"$t" || { echo "FAILED: $t"; bad=1; }
	done
	[ "$n" -gt 0 ] || { echo "no unit tests in $1"; return 1; }
	return $bad
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
step "pytest tests/ (services: build/san)" env BAKERY_BUILD=build/san "$PY" -m pytest -ra tests/

printf '\n==> summary\n'
printf '%s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
	echo "make test: FAILED"
	exit 1
fi
echo "make test: all passed"
