#!/usr/bin/env bash
# Builds the wasm components and the host, then serves on 127.0.0.1:3000 with the data in
# ./.gpt-user (SQLite file, dev mailbox at /dev/mail), in dev mode (no API key needed, loopback
# only). Extra arguments go to `gpt-user serve`.
#
# It builds exactly what the test command's build (`.ci/run`, `cargo nextest run`) builds — the
# same package selection, features and profile — and runs the `gpt-user` binary that build makes,
# so after one of the two README commands the other compiles nothing heavy again (`cargo run -p
# gpt-user` would resolve other features and compile wasmtime a second time).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --no-run
exec "${CARGO_TARGET_DIR:-target}/debug/gpt-user" serve --dev "$@"
