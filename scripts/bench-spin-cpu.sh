#!/usr/bin/env bash
# Benchmark only (prints numbers, asserts nothing): what one request to `/healthz` costs a real
# `spin up` in CPU — user + system time of Spin's `trigger http` process divided by the requests
# wrk made — for the sign-up component alone, under the TCP_NODELAY shim (bench/nodelay: without
# it, Nagle's 40 ms stalls hide the CPU cost). req/s on this 2-core machine varies ±25 % run to
# run; CPU per request is steadier, and interleaving two builds round by round is what tells them
# apart (the issue 21 notes used this to find which per-request calls into Spin were dear).
#
#   scripts/bench-spin-cpu.sh [DIR_A [DIR_B]]
#
# DIR_*: a directory holding gpt_user_signup.wasm and gpt_user_spin_adapter.wasm (release builds
# for wasm32-wasip2). Default DIR_A: target/wasm/wasm32-wasip2/release (what the test build makes).
# With DIR_B, the two are measured in turns. ROUNDS (default 5) rounds of wrk -t1 -c32 for
# SECONDS (default 6) s each after a 2 s warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/need-wrk.sh
spin_bin=$(scripts/find-spin.sh) || { echo "bench-spin-cpu: NOT RUN — no Spin CLI (set SPIN, put spin on PATH, or provide ../shared/tools/spin)"; exit 0; }
dirs=("${1:-target/wasm/wasm32-wasip2/release}")
[ -n "${2:-}" ] && dirs+=("$2")
rounds=${ROUNDS:-5}
seconds=${SECONDS_EACH:-6}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -shared -fPIC -O2 -o "$work/nodelay.so" bench/nodelay/nodelay.c -ldl
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One manifest per directory: spin.toml's head and variables, the /healthz route, the sign-up component.
i=0
for dir in "${dirs[@]}"; do
    dir=$(cd "$dir" && pwd)
    for wasm in gpt_user_signup.wasm gpt_user_spin_adapter.wasm; do
        [ -f "$dir/$wasm" ] || { echo "bench-spin-cpu: $dir/$wasm is not built" >&2; exit 1; }
    done
    python3 - "$dir" "$work/spin-$i.toml" <<'PY'
import sys
d, out = sys.argv[1], sys.argv[2]
s = open("spin.toml").read()
head = s[:s.index("\n[[trigger.http]]") + 1]
component = s[s.index("[component.signup]"):s.index("[component.profile]")]
component = component.replace("target/wasm/wasm32-wasip2/release/", d + "/")
open(out, "w").write(head + '[[trigger.http]]\nroute = "/healthz"\ncomponent = "signup"\n\n' + component)
PY
    i=$((i + 1))
done

measure() { # manifest label
    local port state spin_pid child cpu0 cpu1 out
    port=$(free_port)
    state=$(mktemp -d -p "$work")
    LD_PRELOAD="$work/nodelay.so" RUST_BACKTRACE=0 "$spin_bin" up --from "$1" --listen "127.0.0.1:$port" --state-dir "$state" \
        --log-dir "$state/logs" --variable api_keys=bench --variable smtp_address=127.0.0.1:9 >"$state/spin.out" 2>&1 &
    spin_pid=$!
    for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
    # Spin runs the trigger in a child process; its CPU is what a request costs.
    child=$(pgrep -P "$spin_pid" | head -1 || true)
    child=${child:-$spin_pid}
    wrk -t1 -c32 -d2s "http://127.0.0.1:$port/healthz" >/dev/null
    cpu0=$(awk '{print $14 + $15}' "/proc/$child/stat")
    out=$(wrk -t1 -c32 -d"${seconds}s" "http://127.0.0.1:$port/healthz")
    cpu1=$(awk '{print $14 + $15}' "/proc/$child/stat")
    kill -INT "$spin_pid" 2>/dev/null || true; wait "$spin_pid" 2>/dev/null || true
    python3 -c '
import sys
label, out, ticks, tck = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
reqs = int([l for l in out.splitlines() if "requests in" in l][0].split()[0])
non2xx = [l for l in out.splitlines() if "Non-2xx" in l]
rps = float([l for l in out.splitlines() if l.startswith("Requests/sec")][0].split()[1])
print(f"{label}\t{rps:9.0f} req/s\t{ticks / tck * 1e6 / reqs:6.1f} us CPU/request" + ("\t" + non2xx[0].strip() if non2xx else ""))' \
        "$2" "$out" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" | tee -a "$work/results"
}

echo "bench-spin-cpu: $("$spin_bin" --version), /healthz of the sign-up component, wrk -t1 -c32 ${seconds}s, TCP_NODELAY shim"
for round in $(seq 1 "$rounds"); do
    for i in "${!dirs[@]}"; do
        measure "$work/spin-$i.toml" "${dirs[$i]}"
    done
done
echo "median CPU per request:"
for dir in "${dirs[@]}"; do
    awk -F'\t' -v d="$dir" '$1 == d { split($3, a, " "); print a[1] }' "$work/results" | sort -n |
        awk -v d="$dir" '{ v[NR] = $1 } END { printf "  %s: %.1f us (%d rounds)\n", d, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), NR }'
done
