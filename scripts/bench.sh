#!/usr/bin/env bash
# Prints the host's HTTP throughput and latencies (see tests/benches/http.rs). Dev profile with
# optimised dependencies (as the tests), so it needs no second release build of wasmtime.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
RUST_LOG=warn cargo bench -p gpt-user-tests --profile dev --bench http "$@"
