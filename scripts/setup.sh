#!/usr/bin/env bash
# Makes a fresh machine ready to build and test gpt-user: the wasm target, Chromium for the
# browser test, and the PostgreSQL and Redis the tests use (started if they are down). Idempotent.
set -euo pipefail

rustup target add wasm32-wasip2 >/dev/null

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "${1:-}" = "--test" ]; then
    if ! command -v cargo-nextest >/dev/null 2>&1; then
        cargo install --locked cargo-nextest
    fi
    if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
        echo "setup: installing Debian's chromium and chromium-driver for the browser test"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    # jq reads the JSON log lines in host/tests/cli.rs.
    if ! command -v jq >/dev/null 2>&1; then
        echo "setup: installing Debian's jq for the JSON log test"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
    fi
    # openssl makes the test CA of tests/host/oauth.rs (client ID metadata documents over HTTPS).
    if ! command -v openssl >/dev/null 2>&1; then
        echo "setup: installing Debian's openssl for the metadata document test"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
    fi
    # The official MCP Python SDK (scripts/mcp-oauth-client.py, the OAuth reference client of
    # tests/api/oauth.rs) in a venv at target/py, installed once here, not by tests side by side.
    # shellcheck source=scripts/python-deps.sh
    source "$(dirname "$0")/python-deps.sh"
    python_deps >/dev/null
    if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
        echo "setup: starting PostgreSQL"
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
        for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 0.2; done
    fi
    # Tests that stop and restart Redis start their own redis-server on a free port; this one, on
    # the default port, is for the tests that only need a Redis to keep codes in.
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "setup: installing Debian's redis-server"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
        echo "setup: starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp --logfile ""
        for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.2; done
    fi
fi
