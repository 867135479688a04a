#!/usr/bin/env bash
# Several hosts behind a load balancer (issue 10): three `gpt-user serve` processes on ONE fresh PostgreSQL
# database and one Redis, with the same API key, the same SMTP relay and `GPT_USER_BASE_URL` = the balancer's URL,
# behind a round-robin balancer (scripts/roundrobin.py: each request, on a new or a kept-alive connection, goes to
# the next host in turn). Then the black-box suite (`api`) runs against the balancer, as `.ci/run` step 2 runs it
# against one server; its SMTP listener is the relay of every host. Afterwards every Message-ID the suite's
# listeners received is checked to be unique over the whole run (GPT_USER_TEST_MAIL_LOG), and each host's
# /metrics (its own GPT_USER_METRICS_LISTEN) is checked by scripts/check-metrics.py.
#
#   scripts/multihost.sh            # the suite through the balancer (what .ci/run does); exit code of the suite
#   scripts/multihost.sh --serve    # only start the hosts and the balancer, print how to reach them, wait for ^C
#
# Reuses the build of `cargo nextest run` (same package selection and profile: nothing is rebuilt after .ci/run
# step 1). Needs PostgreSQL (GPT_USER_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres: a
# database with a random name is created and dropped at exit) and Redis (GPT_USER_TEST_REDIS_URL, default
# redis://127.0.0.1:6379; a random database number 1..15 is used; if nothing answers there, a redis-server of its
# own is started on a free port). GPT_USER_MULTIHOST_HOSTS changes the number of hosts (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

serve_only=false
case "${1:-}" in
    "") ;;
    --serve) serve_only=true ;;
    *) echo "usage: scripts/multihost.sh [--serve]" >&2; exit 2 ;;
esac

hosts=${GPT_USER_MULTIHOST_HOSTS:-3}
pg_admin=${GPT_USER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis_base=${GPT_USER_TEST_REDIS_URL:-redis://127.0.0.1:6379}
redis_base=${redis_base%/}
bin=target/debug/gpt-user
work=target/multihost
started=$SECONDS

say() { echo "multihost: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
healthy() { curl -fsS --max-time 2 "$1/healthz" >/dev/null 2>&1; }

# The same cargo call as .ci/run (package selection, profile): a no-op after its step 1, a build otherwise;
# it also builds the `gpt-user` binary (host/tests/cli.rs needs it).
cargo nextest run --no-run
[ -x "$bin" ] || { say "$bin was not built by 'cargo nextest run --no-run'"; exit 1; }

rm -rf "$work"
mkdir -p "$work"
pids=()
lb_pid=
redis_pid=
db=
cleanup() {
    local status=$?
    set +e
    if [ -n "$lb_pid" ]; then kill "$lb_pid" 2>/dev/null; wait "$lb_pid" 2>/dev/null; fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; fi
    if [ -n "$db" ]; then psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; fi
    rm -rf "$work"/data-*
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One fresh database for all hosts.
db="gpt_user_multihost_$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
psql "$pg_admin" -v ON_ERROR_STOP=1 -qAt -c "CREATE DATABASE $db" >/dev/null \
    || { db=; say "cannot create a database on $pg_admin (GPT_USER_TEST_POSTGRES_URL)"; exit 1; }
database_url="${pg_admin%/*}/$db"

# One Redis for all hosts: the machine's, or one of our own.
redis_hostport=${redis_base#*://}
redis_hostport=${redis_hostport##*@}
redis_hostport=${redis_hostport%%/*}
if ! reachable "${redis_hostport%:*}" "${redis_hostport##*:}"; then
    command -v redis-server >/dev/null || { say "no Redis answers at $redis_base and redis-server is not installed"; exit 1; }
    port=$(free_port)
    say "no Redis answers at $redis_base: starting redis-server on 127.0.0.1:$port"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
    redis_pid=$!
    redis_base="redis://127.0.0.1:$port"
    for _ in $(seq 1 50); do reachable 127.0.0.1 "$port" && break; sleep 0.1; done
fi
redis_url="$redis_base/$((RANDOM % 15 + 1))"

lb=$(free_port)
smtp=$(free_port)
key="multihost-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
base="http://127.0.0.1:$lb"

# The hosts start at the same moment: they migrate the fresh database concurrently.
ports=()
metrics=()
for i in $(seq 1 "$hosts"); do
    port=$(free_port)
    ports+=("$port")
    metrics+=("127.0.0.1:$(free_port)")
    mkdir -p "$work/data-$i"
    GPT_USER_DATABASE_URL="$database_url" GPT_USER_REDIS_URL="$redis_url" GPT_USER_API_KEYS="$key" \
    GPT_USER_SMTP_URL="smtp://127.0.0.1:$smtp" GPT_USER_BASE_URL="$base" \
    GPT_USER_MAIL_RETRY_BASE_MS=100 GPT_USER_MAIL_RETRY_MAX_MS=400 GPT_USER_MAIL_POLL_MS=100 RUST_LOG=warn NO_COLOR=1 \
    GPT_USER_RATE_LIMIT_PER_KEY=0 GPT_USER_RATE_LIMIT_PER_PEER=0 GPT_USER_MAX_CONNECTIONS_PER_PEER=0 \
    GPT_USER_MAX_PENDING_SIGNUPS_PER_HOUR=0 GPT_USER_METRICS_LISTEN="${metrics[$((i - 1))]}" \
        "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data-$i" >"$work/host-$i.log" 2>&1 &
    pids+=($!)
done
for i in $(seq 1 "$hosts"); do
    port=${ports[$((i - 1))]}
    for _ in $(seq 1 150); do healthy "http://127.0.0.1:$port" && break; sleep 0.2; done
    healthy "http://127.0.0.1:$port" || { say "host $i (127.0.0.1:$port) did not come up:"; cat "$work/host-$i.log" >&2; exit 1; }
done
python3 scripts/roundrobin.py --listen "127.0.0.1:$lb" "${ports[@]/#/127.0.0.1:}" 2>"$work/balancer.log" &
lb_pid=$!
for _ in $(seq 1 50); do healthy "$base" && break; sleep 0.1; done
healthy "$base" || { say "the balancer did not come up:"; cat "$work/balancer.log" >&2; exit 1; }
say "$hosts hosts (${ports[*]/#/127.0.0.1:}) on PostgreSQL database $db and Redis ${redis_url%/*}/<db ${redis_url##*/}>, behind $base"

if $serve_only; then
    say "balancer $base, API key $key, SMTP relay 127.0.0.1:$smtp (nothing listens there until you start one); ^C stops"
    wait "$lb_pid"
    exit 0
fi

# The black-box suite against the balancer, as .ci/run step 2 runs it against one server.
mail_log="$work/mail-ids.log"
: >"$mail_log"
set +e
GPT_USER_TEST_BASE_URL="$base" GPT_USER_TEST_SMTP_LISTEN="127.0.0.1:$smtp" GPT_USER_TEST_API_KEY="$key" \
GPT_USER_TEST_MAIL_LOG="$(pwd)/$mail_log" \
    cargo nextest run --no-fail-fast -j 1 -E 'binary(api) - test(/^email_change::(postgres|redis)::/)'
suite=$?
set -e

# No message was delivered twice over the whole run (each test checks its own listener on drop; a copy that
# arrived while a later test listened is caught here).
received=$(wc -l <"$mail_log")
twice=$(sort "$mail_log" | uniq -d)
sent=$(psql "$database_url" -qAt -c "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")
kill "$lb_pid" 2>/dev/null; wait "$lb_pid" 2>/dev/null || true; lb_pid=
cat "$work/balancer.log" >&2
errors=$(cat "$work"/host-*.log | grep -c -E '(ERROR|WARN)' || true)
say "$received messages received by the suite's SMTP listeners, $(sort -u "$mail_log" | wc -l) distinct Message-IDs; the outbox marked $sent sent"
say "host logs (RUST_LOG=warn, $errors warnings/errors): $work/host-*.log"
# Each host's /metrics moved as the suite drove it, and the hosts agree on the one outbox.
pairs=()
for i in $(seq 1 "$hosts"); do pairs+=("${metrics[$((i - 1))]}=http://127.0.0.1:${ports[$((i - 1))]}"); done
scripts/check-metrics.py --sent-cmd "psql '$database_url' -qAt -c 'SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL'" \
    --events-cmd "psql '$database_url' -qAt -c \"SELECT COUNT(*) FROM events WHERE kind IN ('account-created', 'signup-repeated')\"" "${pairs[@]}" \
    || { [ "$suite" -ne 0 ] || suite=1; }
if [ -n "$twice" ]; then
    say "delivered more than once:"; echo "$twice" >&2
    [ "$suite" -ne 0 ] || suite=1
fi
[ "$received" -gt 0 ] || { say "no message reached the suite: GPT_USER_TEST_MAIL_LOG was not written"; [ "$suite" -ne 0 ] || suite=1; }
say "done after $((SECONDS - started)) s (suite exit code $suite)"
exit "$suite"
