#!/usr/bin/env bash
# Stops Bakery's Compose stack and removes what `make up` created: containers, network, volumes.
#
#   scripts/down.sh
#
# The images stay (make images rebuilds them incrementally). Safe to run when nothing is up.
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/compose.sh down --volumes --remove-orphans --timeout 10
