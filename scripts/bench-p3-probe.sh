#!/usr/bin/env bash
# What instance reuse is worth on a real `spin up` (issue 21; a benchmark, not a test): the same
# trivial handler (bench/p3-probe) exporting `wasi:http/handler@0.3.0` (WASIp3: Spin reuses an
# instance for up to 128 requests, 16 at a time) and `wasi:http/incoming-handler@0.2.12` (WASIp2: a
# fresh instance per request), each served by Spin alone and loaded by wrk -t2 -c32 for
# GPT_USER_BENCH_SECONDS (10) after a 2 s warm-up. Prints req/s, p50, p99 and the count the last
# answer reports (how many requests its instance had served: 1 means no reuse). The ceiling the
# flow components could reach once they move to WASIp3; their own numbers are scripts/bench.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! spin_bin=$(scripts/find-spin.sh); then
    echo "bench-p3-probe: NOT RUN — no Spin CLI (set SPIN, put spin on PATH, or provide ../shared/tools/spin)"
    exit 0
fi
scripts/need-wrk.sh
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
seconds=${GPT_USER_BENCH_SECONDS:-10}
out=target/p3-probe
mkdir -p "$out"
for kind in p3 p2; do
    features=(); [ "$kind" = p2 ] && features=(--features p2)
    cargo build --quiet --release --target wasm32-wasip2 --manifest-path bench/p3-probe/Cargo.toml \
        --target-dir "$out/target-$kind" "${features[@]}"
    cp "$out/target-$kind/wasm32-wasip2/release/gpt_user_p3_probe.wasm" "$out/probe-$kind.wasm"
    cat > "$out/spin-$kind.toml" <<TOML
spin_manifest_version = 2
[application]
name = "p3-probe-$kind"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "probe-$kind.wasm"
TOML
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "bench-p3-probe: $("$spin_bin" --version), wrk -t2 -c32, ${seconds} s; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %10s %10s %14s\n' "handler on spin up" "req/s" "p50" "p99" "last count"
for kind in p3 p2; do
    port=$(free_port)
    "$spin_bin" up --from "$out/spin-$kind.toml" --listen "127.0.0.1:$port" --state-dir "$out/state-$kind" \
        --log-dir "$out/logs-$kind" >"$out/spin-$kind.out" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
    wrk -t2 -c32 -d2s "http://127.0.0.1:$port/" >/dev/null
    result=$(wrk -t2 -c32 -d"${seconds}s" --latency "http://127.0.0.1:$port/")
    last=$(curl -fsS "http://127.0.0.1:$port/" | cut -d' ' -f2)
    kill -INT $pid; wait $pid 2>/dev/null || true
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$result")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$result")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$result")
    name=$([ "$kind" = p3 ] && echo "wasi:http/handler@0.3.0 (p3)" || echo "incoming-handler@0.2.12 (p2)")
    printf '%-34s %10s %10s %10s %14s\n' "$name" "$rps" "$p50" "$p99" "$last"
done
