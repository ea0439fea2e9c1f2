#!/usr/bin/env bash
# fuzz/run.sh — builds every fuzz/*_fuzz.c with clang (libFuzzer, ASan, UBSan) and runs each one.
#
#   FUZZ_SECONDS=60 fuzz/run.sh [target...]     (make fuzz; default: every target, 60 s each)
#
# The common library is compiled once with coverage and sanitizers into $FUZZ_BUILD (default
# build/fuzz); each target runs for FUZZ_SECONDS on a working copy of its seed corpus
# fuzz/corpus/<target>/ (new inputs stay under $FUZZ_BUILD, not in the repository). A crash, a
# sanitizer report, a leak or a timeout fails the run: the reproducer is kept as
# $FUZZ_BUILD/<target>-crash-* and the script exits 1 after running the rest. Prints each
# target's executions.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
out=${FUZZ_BUILD:-build/fuzz}
cc=${FUZZ_CC:-clang}
pkgs="hiredis librabbitmq libcurl jansson zlib"
# shellcheck disable=SC2207
targets=($(if [ $# -gt 0 ]; then echo "$@"; else for f in fuzz/*_fuzz.c; do basename "${f%_fuzz.c}"; done; fi))
cflags="-g -O1 -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Wall -Wextra -Werror -pthread
        -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -Icommon
        $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs) -lcivetweb -lpthread -lm"

# The common library (with the SDK in common/otel), rebuilt when any of its sources or headers
# is newer than it.
mkdir -p "$out/obj"
lib="$out/libbakery-fuzz.a"
if [ ! -f "$lib" ] || [ -n "$(find common -newer "$lib" -name '*.[ch]' | head -1)" ]; then
	rm -f "$lib" "$out"/obj/*.o
	for src in common/*.c common/otel/*.c; do
		# named by path: common/http.c and common/otel/http.c are two objects
		obj=${src%.c}
		# shellcheck disable=SC2086
		"$cc" $cflags -fsanitize=fuzzer-no-link -c -o "$out/obj/${obj//\//_}.o" "$src"
	done
	ar rcs "$lib" "$out"/obj/*.o
fi

failed=0
total_execs=0
printf '%-16s %12s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
	bin="$out/$t"
	# shellcheck disable=SC2086
	"$cc" $cflags -fsanitize=fuzzer -o "$bin" "fuzz/${t}_fuzz.c" "$lib" $libs
	mkdir -p "$out/corpus/$t"
	cp -n fuzz/corpus/"$t"/* "$out/corpus/$t/" 2>/dev/null || true
	rc=0
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/$t-" "$out/corpus/$t" >"$out/$t.log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t.log" | tail -1)
	result=ok
	if [ "$rc" -ne 0 ]; then
		result="FAILED (exit $rc; log $out/$t.log)"
		failed=1
		grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$out/$t.log" | head -20 >&2 || true
	fi
	total_execs=$((total_execs + ${execs:-0}))
	printf '%-16s %12s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
done
printf 'fuzz: %d targets, %s s each, %d executions in all\n' "${#targets[@]}" "$seconds" "$total_execs"
exit "$failed"
