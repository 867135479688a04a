#!/usr/bin/env bash
# After the test build, `scripts/serve.sh` (the README's run command) must start serving without
# compiling anything: it shares the test build's package selection and features. Starts it on a
# free port with a fresh data dir, waits for the first 200 on /healthz, prints the seconds, and
# fails if cargo compiled any crate on the way.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
log="$data/serve.log"
started=$(date +%s.%N)
# cargo's fingerprint log says why a crate is compiled again, should it be.
CARGO_LOG=cargo::core::compiler::fingerprint=info scripts/serve.sh --listen "127.0.0.1:$port" --data-dir "$data" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
ok=""
for _ in $(seq 1 3000); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 $server 2>/dev/null || break
    sleep 0.2
done
seconds=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")
if [ -z "$ok" ]; then
    echo "serve-reuses-build: scripts/serve.sh did not answer /healthz with 200; its output:" >&2
    cat "$log" >&2
    exit 1
fi
if grep -E '^\s*Compiling ' "$log" >&2; then
    echo "serve-reuses-build: why, as cargo's fingerprint log says:" >&2
    grep -iE 'dirty|stale|changed|fingerprint error' "$log" | cut -c1-400 | head -30 >&2 || true
    echo "serve-reuses-build: scripts/serve.sh compiled the crates above after the test build (${seconds} s to the first 200)" >&2
    exit 1
fi
echo "serve-reuses-build: scripts/serve.sh answered /healthz 200 after ${seconds} s, compiling nothing"
