#!/usr/bin/env bash
# Runs the k6 load test (loadtest/orders.js) with the pinned k6 against a running Bakery.
#
#   scripts/loadtest.sh                      smoke profile against http://127.0.0.1:8000
#   LOADTEST_PROFILE=full scripts/loadtest.sh          the original's 15 VUs for 15 minutes
#   BASE_URL=http://127.0.0.1:18000 scripts/loadtest.sh
#
# Start Bakery first (`make up` or `make run`). k6 prints its summary at the end and exits
# non-zero when a threshold fails (99 = thresholds crossed). Extra arguments go to `k6 run`
# (e.g. --summary-export=summary.json).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${BAKERY_TOOLS:-$HOME/.cache/bakery-tools}
export LOADTEST_PROFILE=${LOADTEST_PROFILE:-smoke}
export BASE_URL=${BASE_URL:-http://127.0.0.1:8000}

[ -x "$TOOLS/k6" ] || scripts/tools.sh k6 >/dev/null
echo "loadtest: profile $LOADTEST_PROFILE against $BASE_URL" >&2
exec "$TOOLS/k6" run --no-usage-report \
	-e LOADTEST_PROFILE="$LOADTEST_PROFILE" -e BASE_URL="$BASE_URL" "$@" loadtest/orders.js
