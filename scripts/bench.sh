#!/usr/bin/env bash
# The benchmark of issue 10 (a benchmark, not a test): prints one table from one run on this
# machine — Update_Load (valid token), SignUp_Verify (unknown token), SignUp_Init (Argon2id) and
# Auth_Check at 32 connections, fixed duration after a warm-up, through our host (release build,
# wasm components) and through the native baseline (the same core compiled natively behind the
# same server and adapters: the hidden `gpt-user serve --native`), with the ratio host/native;
# then the host's RSS before and after 100k requests; then the composed Spin app served as Spin's
# trigger serves it (the tests/spin harness — WASIp3, instances reused as Spin 4 reuses them —
# tests/spin/benches/instantiate.rs, served over HTTP) against
# the host under the same wrk load; then a real `spin up` of spin.toml against the host under that
# load (Spin from $SPIN, PATH or ../shared/tools; without one the table says NOT RUN), and the same
# `spin up` with TCP_NODELAY forced on its connections (bench/nodelay: what Spin would serve with
# it set; benchmark only); then the read path on the host with 10k and with 1M accounts
# seeded into its database (GPT_USER_BENCH_SCALE=0 skips that part); then the same Spin app
# driven in-process (its per-request cost without sockets).
#
# Both servers run from the one release binary, in dev mode (GPT actions without a key, the dev
# mailbox that the setup reads tokens from), each on a fresh SQLite data dir, with RUST_LOG=warn
# (no per-request log line on either). The table is printed by `tests/benches/http.rs` (table
# mode), built in the dev profile with optimised dependencies, as the tests are; it loads
# Update_Load, SignUp_Verify and the Spin-path rows with wrk (1 thread, 32 connections) and
# SignUp_Init and Auth_Check (unique addresses, one account per connection) with its own loop.
#
# GPT_USER_BENCH_SECONDS (10), GPT_USER_BENCH_WARMUP_SECONDS (2), GPT_USER_BENCH_RSS_REQUESTS
# (100000) change the run. The machine's other load is printed before and after: on a shared
# machine, read the ratios, not the absolute numbers.
# Against an earlier commit, same machine, back to back: build it in a worktree (`git worktree add
# ../old <commit>; (cd ../old && cargo build --release -p gpt-user)`) and run this script with
# GPT_USER_BENCH_HOST_BIN=../old/target/release/gpt-user (its host and native rows) and
# GPT_USER_BENCH_SPIN_TOML=../old/spin.toml (its components under real Spin).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# wrk (Debian's package) loads the read-path rows: our own reqwest loop costs more CPU per request
# than the host does, and on 2 cores shared with the servers it, not the server, set the rate.
scripts/need-wrk.sh

cargo build --release -p gpt-user
host_bin=${GPT_USER_BENCH_HOST_BIN:-target/release/gpt-user}
spin_toml=${GPT_USER_BENCH_SPIN_TOML:-spin.toml}
# The load generators in the dev profile, over the default members as `cargo nextest run` builds
# them: a `-p` selection would unify features differently and compile wasmtime once more.
cargo bench --no-run --profile dev
# The tests/spin harness's bench binary, which can also serve the composed app over HTTP.
instantiate=$(cargo bench --no-run --profile dev --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "instantiate" and m.get("executable"):
        print(m["executable"])')

work=$(mktemp -d "${TMPDIR:-/tmp}/gpt-user-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# serve NAME [--native]: starts a server on a free port; sets $url and $pid.
serve() {
    local name=$1; shift
    local port; port=$(free_port)
    mkdir -p "$work/$name"
    # The benchmark measures the server, not one client's share: the per-client limits are off.
    GPT_USER_RATE_LIMIT_PER_KEY=0 GPT_USER_RATE_LIMIT_PER_PEER=0 GPT_USER_MAX_CONNECTIONS_PER_PEER=0 \
    GPT_USER_MAX_PENDING_SIGNUPS_PER_HOUR=0 \
    RUST_LOG=warn "$host_bin" serve --dev --listen "127.0.0.1:$port" --data-dir "$work/$name" "$@" \
        >"$work/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    url="http://127.0.0.1:$port"
    for _ in $(seq 1 300); do
        if curl -fsS "$url/healthz" >/dev/null 2>&1; then return; fi
        if ! kill -0 "$pid" 2>/dev/null; then cat "$work/$name.log" >&2; echo "bench: $name did not start" >&2; exit 1; fi
        sleep 0.1
    done
    echo "bench: $name did not answer /healthz" >&2; exit 1
}

serve host
host_url=$url host_pid=$pid
serve native --native
native_url=$url
# The composed Spin app (flow + adapter, served with instance reuse as Spin 4 does) over HTTP, for
# the Spin-path rows; without RUST_BACKTRACE, as below.
spin_port=$(free_port)
env -u RUST_BACKTRACE GPT_USER_BENCH_SERVE="127.0.0.1:$spin_port" "$instantiate" --bench >"$work/spin.log" 2>&1 &
pids+=("$!")
spin_url="http://127.0.0.1:$spin_port"
for _ in $(seq 1 300); do curl -fsS "$spin_url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# A real `spin up` of spin.toml (issue 21 step 0), the same components the host embeds, on Spin's
# SQLite: what the WASIp3 work is measured with. Spin from $SPIN, PATH or ../shared/tools.
real_spin_url=""
real_spin_nodelay_url=""
if spin_bin=$(scripts/find-spin.sh); then
    real_spin_port=$(free_port)
    mkdir -p "$work/real-spin-state" "$work/real-spin-logs"
    # smtp_address: a closed port (these rows send no mail); a key, as a deployment has.
    RUST_BACKTRACE=0 "$spin_bin" up --from "$spin_toml" --listen "127.0.0.1:$real_spin_port" --state-dir "$work/real-spin-state" \
        --log-dir "$work/real-spin-logs" --variable base_url="http://127.0.0.1:$real_spin_port" \
        --variable api_keys="bench-$(free_port)" --variable smtp_address="127.0.0.1:$(free_port)" >"$work/real-spin.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$real_spin_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS "http://127.0.0.1:$real_spin_port/healthz" >/dev/null 2>&1 || { cat "$work/real-spin.log" >&2; echo "bench: spin up did not answer" >&2; exit 1; }
    real_spin_url="http://127.0.0.1:$real_spin_port"
    echo "real Spin: $("$spin_bin" --version) serving $spin_toml on $real_spin_url"
    # The same, with TCP_NODELAY set on its accepted connections by an LD_PRELOAD shim (benchmark
    # only, bench/nodelay/nodelay.c): what Spin serves once its trigger sets it (it does not yet).
    if command -v cc >/dev/null 2>&1 && cc -shared -fPIC -O2 -o "$work/nodelay.so" bench/nodelay/nodelay.c -ldl; then
        nodelay_port=$(free_port)
        mkdir -p "$work/nodelay-state" "$work/nodelay-logs"
        RUST_BACKTRACE=0 LD_PRELOAD="$work/nodelay.so" "$spin_bin" up --from "$spin_toml" --listen "127.0.0.1:$nodelay_port" \
            --state-dir "$work/nodelay-state" --log-dir "$work/nodelay-logs" --variable base_url="http://127.0.0.1:$nodelay_port" \
            --variable api_keys="bench-$(free_port)" --variable smtp_address="127.0.0.1:$(free_port)" >"$work/nodelay-spin.log" 2>&1 &
        pids+=("$!")
        for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$nodelay_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
        curl -fsS "http://127.0.0.1:$nodelay_port/healthz" >/dev/null 2>&1 || { cat "$work/nodelay-spin.log" >&2; echo "bench: spin up with the shim did not answer" >&2; exit 1; }
        real_spin_nodelay_url="http://127.0.0.1:$nodelay_port"
    else
        echo "real Spin with TCP_NODELAY: NOT RUN — no C compiler for bench/nodelay/nodelay.c"
    fi
else
    echo "real Spin: NOT RUN — no Spin CLI (set SPIN, put spin on PATH, or provide ../shared/tools/spin)"
fi

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
others() {
    echo "other processes using CPU ($1, over 2 s):"
    top -b -n 2 -d 2 -w 200 | awk '/^top -/ { n++ } n == 2 && /^ *[0-9]/ && $9 + 0 > 5 { print "  " $9 "% " $12 }' | head -n 8
}
others "before"
db="$work/host/gpt-user.db"
[ "${GPT_USER_BENCH_SCALE:-1}" = 0 ] && db=""
GPT_USER_BENCH_HOST=$host_url GPT_USER_BENCH_NATIVE=$native_url GPT_USER_BENCH_HOST_PID=$host_pid \
    GPT_USER_BENCH_HOST_DB="$db" GPT_USER_BENCH_SPIN="$spin_url" GPT_USER_BENCH_REAL_SPIN="$real_spin_url" \
    GPT_USER_BENCH_REAL_SPIN_NODELAY="$real_spin_nodelay_url" RUST_LOG=warn \
    cargo bench -q --profile dev --bench http
# Without RUST_BACKTRACE: with it, wasmtime captures a backtrace on every store drop.
env -u RUST_BACKTRACE "$instantiate" --bench
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
others "after"
# Level ERROR or a panic (case-sensitive: statements in WARN lines mention `last_error`).
if grep -qE 'ERROR|panicked' "$work/host.log" "$work/native.log"; then
    echo "server logs with errors:"
    grep -hE 'ERROR|panicked' "$work/host.log" "$work/native.log" | head -n 20
fi
