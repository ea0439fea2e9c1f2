#!/usr/bin/env bash
# bench/sdk_cost.sh — the tracing SDK's instructions per order and per span, from callgrind.
#
#   bench/sdk_cost.sh build/bench/sdk_cost       (make bench-sdk; scripts/bench.sh calls it)
#
# Runs the driver (bench/sdk_cost.c: one order = reception's three spans, 24 attributes, one
# inject) for SMALL and LARGE orders under callgrind, one count per thread, and divides the
# difference by LARGE - SMALL: what one more order costs the calling thread (reception's request,
# pipeline and confirm threads together) and the export thread, start-up and shutdown excluded.
# Instructions, unlike time, repeat from run to run on a busy machine.
set -euo pipefail

bin=${1:?usage: bench/sdk_cost.sh path/to/sdk_cost}
small=${SMALL:-200}
large=${LARGE:-1200}
target_caller=6000
target_export=1000
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Prints "<calling thread> <export thread>" instructions for one run of n orders.
measure() {
	local n=$1 out="$dir/cg.$1"
	valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
		"$bin" "$n" >"$dir/log.$n" 2>&1 || { cat "$dir/log.$n" >&2; exit 1; }
	local main export
	main=$(awk '/^summary:/ {print $2}' "$out-01")
	export=$(awk '/^summary:/ {print $2}' "$(grep -l 'export_main' "$out"-0* | head -1)")
	echo "$main $export"
}

read -r m1 e1 < <(measure "$small")
read -r m2 e2 < <(measure "$large")
awk -v m1="$m1" -v e1="$e1" -v m2="$m2" -v e2="$e2" -v n=$((large - small)) \
	-v tc="$target_caller" -v te="$target_export" 'BEGIN {
	c = (m2 - m1) / n; e = (e2 - e1) / n
	printf "tracing SDK, instructions (callgrind, %d orders of 3 spans):\n", n
	printf "  calling thread  %7.0f per order  %6.0f per span  (target %d: %s)\n", c, c / 3, tc, c <= tc ? "met" : "NOT met"
	printf "  export thread   %7.0f per order  %6.0f per span  (target %d: %s)\n", e, e / 3, te, e <= te ? "met" : "NOT met"
}'
