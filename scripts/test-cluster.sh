#!/usr/bin/env bash
# The Kubernetes flows on a real cluster (`make test-cluster`, part of `make test`).
#
#   scripts/test-cluster.sh [pytest args]
#
# Brings up scripts/cluster.sh's cluster, runs tests/cluster (helm install/test/upgrade,
# chaos, uninstall, tilt ci, live update, k6 from Tilt, teardown check), and always tears the
# cluster down. Each flow prints its duration ("flow: NAME: Ns").
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
scripts/deps.sh && scripts/tools.sh all >/dev/null || exit 1
/usr/bin/python3 -m pytest -s -v -ra tests/cluster "$@"
rc=$?
scripts/cluster.sh down # a no-op when the last flow took it down already
exit $rc
