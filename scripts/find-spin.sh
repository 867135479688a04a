#!/usr/bin/env bash
# Prints the path of the Spin CLI the scripts run: $SPIN, else `spin` on PATH, else the copy in
# ../shared/tools (its script unpacks it and prints its path; tests and CI here). Prints nothing
# and exits 1 when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
spin_bin=""
if [ -n "${SPIN:-}" ]; then
    spin_bin=$SPIN
elif command -v spin >/dev/null 2>&1; then
    spin_bin=$(command -v spin)
elif [ -x ../shared/tools/spin ]; then
    spin_bin=$(../shared/tools/spin)
fi
[ -n "$spin_bin" ] && [ -x "$spin_bin" ] || exit 1
echo "$spin_bin"
