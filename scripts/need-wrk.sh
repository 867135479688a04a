#!/usr/bin/env bash
# Installs Debian's wrk if it is missing (the benchmarks' HTTP load generator).
set -euo pipefail
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing Debian's wrk"
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
