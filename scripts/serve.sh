#!/usr/bin/env bash
# Builds the wasm components and the host, then serves on 127.0.0.1:3000 with the data in
# ./.gpt-user (SQLite file, dev mailbox at /dev/mail), in dev mode (no API key needed, loopback
# only). Extra arguments go to `gpt-user serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run -p gpt-user -- serve --dev "$@"
