#!/usr/bin/env bash
# The black-box suite (`api`) against a real `spin up` of this repository's spin.toml, outside dev
# mode, with an API key and the suite's SMTP listener as the relay: the same components the host
# serves, on Spin's SQLite, variables and outbound TCP. Needs the wasm components built (the test
# build makes them: target/wasm/wasm32-wasip2/release).
#
# The Spin CLI: $SPIN, else `spin` on PATH, else the copy in ../shared/tools (tests and CI here).
# Without any of them the step says it did NOT run — it never counts as passed tests — and under
# CI=true it fails, since CI machines have the copy.
#
# `--serve`: only start Spin and print its URL, key and SMTP address (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! spin_bin=$(scripts/find-spin.sh); then
    echo "spin-suite: NOT RUN — no Spin CLI (set SPIN, put spin on PATH, or provide ../shared/tools/spin); the black-box suite did not run against Spin"
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
for wasm in $(sed -n 's/^source = "\(.*\)"$/\1/p' spin.toml) target/wasm/wasm32-wasip2/release/gpt_user_spin_adapter.wasm; do
    [ -f "$wasm" ] || { echo "spin-suite: $wasm is not built (run the test build first: cargo nextest run --no-run)" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
smtp=$(free_port)
key="spin-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
state=$(mktemp -d)
logs=target/spin-suite
rm -rf "$logs"; mkdir -p "$logs"
RUST_BACKTRACE=0 "$spin_bin" up --from spin.toml --listen "127.0.0.1:$port" --state-dir "$state" --log-dir "$logs" \
    --variable base_url="http://127.0.0.1:$port" --variable api_keys="$key" --variable smtp_address="127.0.0.1:$smtp" \
    --variable max_pending_signups_per_hour=0 \
    >"$logs/spin.out" 2>&1 &
spin_pid=$!
trap 'kill -INT $spin_pid 2>/dev/null || true; wait $spin_pid 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 $spin_pid 2>/dev/null || { echo "spin-suite: spin up exited:" >&2; cat "$logs/spin.out" >&2; exit 1; }
    sleep 0.2
done
echo "spin-suite: $("$spin_bin" --version) serving on 127.0.0.1:$port"
if [ "${1:-}" = "--serve" ]; then
    echo "URL http://127.0.0.1:$port  API key $key  SMTP relay expected at 127.0.0.1:$smtp"
    wait $spin_pid
    exit 0
fi
GPT_USER_TEST_BASE_URL="http://127.0.0.1:$port" GPT_USER_TEST_SMTP_LISTEN="127.0.0.1:$smtp" GPT_USER_TEST_API_KEY="$key" \
    cargo nextest run --no-fail-fast -j 1 -E 'binary(api) - test(/^email_change::(postgres|redis)::/)'
kill -INT $spin_pid 2>/dev/null || true; wait $spin_pid 2>/dev/null || true

# A relay that accepts the connection and never says a word (issue 21): the sign-up is answered
# within 2 s, Spin answers other requests within 1 s each while the flush waits, the adapter gives
# up at its reply deadline (10 s; smtp::REPLY_MS) and closes the connection, and Spin goes on serving.
silent=$(free_port)
python3 - "$silent" >"$logs/silent-relay.out" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
s.settimeout(60)
c, _ = s.accept()
accepted = time.monotonic()
print("accepted", flush=True)
c.settimeout(60)
data = c.recv(1)
print(f"closed {time.monotonic() - accepted:.1f} {len(data)}", flush=True)
PY
relay_pid=$!
silent_state=$(mktemp -d)
RUST_BACKTRACE=0 "$spin_bin" up --from spin.toml --listen "127.0.0.1:$port" --state-dir "$silent_state" --log-dir "$logs/silent" \
    --variable base_url="http://127.0.0.1:$port" --variable api_keys="$key" --variable smtp_address="127.0.0.1:$silent" \
    >"$logs/silent.out" 2>&1 &
silent_pid=$!
for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
answer=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"email":"silent-relay@example.com","consent":true,"locale":"en","passphrase":"a silent relay holds nobody 42"}' \
    "http://127.0.0.1:$port/api/signup/init")
# While the flush waits for the relay, Spin goes on serving (the flush waits in an async call, so
# an instance that serves it takes other requests meanwhile).
for _ in $(seq 1 100); do grep -q accepted "$logs/silent-relay.out" && break; sleep 0.1; done
during=$(for _ in 1 2 3; do curl -sS -o /dev/null -w '%{http_code}:%{time_total} ' "http://127.0.0.1:$port/healthz" || true; done)
second=$(curl -sS -o /dev/null -w '%{http_code}:%{time_total}' -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"email":"during-the-hang@example.com","consent":true,"locale":"en","passphrase":"served while the relay hangs 42"}' \
    "http://127.0.0.1:$port/api/signup/init" || true)
for _ in $(seq 1 400); do kill -0 $relay_pid 2>/dev/null || break; sleep 0.1; done
relay=$(grep -v accepted "$logs/silent-relay.out" || true)
health=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
kill $relay_pid 2>/dev/null || true
kill -INT $silent_pid 2>/dev/null || true; wait $silent_pid 2>/dev/null || true
rm -rf "$silent_state"
if python3 -c '
import sys
status, took = sys.argv[1].split()
relay = sys.argv[2].split()
ok = status == "201" and float(took) < 2 and relay[:1] == ["closed"] and float(relay[1]) < 30 and relay[2] == "0" and sys.argv[3] == "200"
during = [a.split(":") for a in sys.argv[4].split() + [sys.argv[5]]]
ok = ok and len(during) == 4 and all(c == w and float(t) < 1 for (c, t), w in zip(during, ["200"] * 3 + ["201"]))
sys.exit(0 if ok else 1)' "$answer" "${relay:-none}" "$health" "$during" "$second"; then
    echo "spin-suite: a silent relay: sign-up answered ${answer% *} in ${answer#* } s; meanwhile /healthz ${during}and a second sign-up $second; the adapter hung up after $(cut -d' ' -f2 <<<"$relay") s having sent nothing, /healthz $health"
else
    echo "spin-suite: a silent relay held Spin: sign-up '$answer', during the hang '$during' and '$second', relay '${relay:-still connected after 40 s}', /healthz '$health'" >&2
    exit 1
fi

# A client ID metadata document (SPEC §2.5) through Spin's `wasi:http/client@0.3.0`: dev mode, and a
# copy of spin.toml whose oauth component may also reach two loopback ports (spin.toml itself
# allows https on 443 only). One serves a document: the page names its client. The other takes the
# connection and never answers: meanwhile Spin answers the OAuth component's other requests within
# 1 s each, and the request that named it at the fetch's deadline (5 s). (That the waiting instance
# itself serves them is asserted where instances are counted: tests/spin/tests/served.rs.)
docs=$(free_port)
silent_docs=$(free_port)
python3 - "$docs" "$silent_docs" >"$logs/documents.out" <<'PY' &
import http.server, socket, sys, threading
port, silent = int(sys.argv[1]), int(sys.argv[2])
doc = ('{"client_id": "http://127.0.0.1:%d/client.json", "client_name": "Spin Chat", '
       '"redirect_uris": ["http://127.0.0.1:5555/callback"]}' % port).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(doc)))
        self.end_headers()
        self.wfile.write(doc)
    def log_message(self, *a): pass
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", silent))
s.listen()
held = []
def hold():
    while True:
        c, _ = s.accept()
        held.append(c)
        print("held", flush=True)
threading.Thread(target=hold, daemon=True).start()
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
docs_pid=$!
manifest="$PWD/$logs/spin-documents.toml"
sed -e "s|^source = \"target/|source = \"$PWD/target/|" -e "s|{ path = \"target/|{ path = \"$PWD/target/|" \
    -e "s|\"https://\*:443\"\]|\"https://*:443\", \"http://127.0.0.1:$docs\", \"http://127.0.0.1:$silent_docs\"]|" spin.toml >"$manifest"
grep -q "http://127.0.0.1:$silent_docs" "$manifest" || { echo "spin-suite: could not allow the document servers in $manifest" >&2; exit 1; }
docs_state=$(mktemp -d)
RUST_BACKTRACE=0 "$spin_bin" up --from "$manifest" --listen "127.0.0.1:$port" --state-dir "$docs_state" --log-dir "$logs/documents" \
    --variable base_url="http://127.0.0.1:$port" --variable dev=true --variable smtp_address="127.0.0.1:$smtp" \
    >"$logs/documents-spin.out" 2>&1 &
docs_spin_pid=$!
for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
authorize() {
    curl -sS -o "$2" -w '%{http_code}:%{time_total}' "http://127.0.0.1:$port/oauth/authorize?response_type=code&client_id=http%3A%2F%2F127.0.0.1%3A$1%2Fclient.json&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256" || true
}
named=$(authorize "$docs" "$logs/documents-page.html")
authorize "$silent_docs" /dev/null >"$logs/documents-silent.txt" &
waiting_pid=$!
for _ in $(seq 1 100); do grep -q held "$logs/documents.out" && break; sleep 0.1; done
during=$(for _ in 1 2 3; do curl -sS -o /dev/null -w '%{http_code}:%{time_total} ' "http://127.0.0.1:$port/.well-known/oauth-authorization-server" || true; done)
still=$(kill -0 $waiting_pid 2>/dev/null && echo waiting || echo answered)
wait $waiting_pid || true
silent_answer=$(cat "$logs/documents-silent.txt")
kill $docs_pid 2>/dev/null || true
kill -INT $docs_spin_pid 2>/dev/null || true; wait $docs_spin_pid 2>/dev/null || true
rm -rf "$docs_state"
if python3 -c '
import sys
named, page, during, still, silent = sys.argv[1:6]
code, took = silent.split(":")
ok = named.startswith("200:") and "Spin Chat" in page and still == "waiting" and code == "400" and 4 <= float(took) < 10
ok = ok and [d.split(":")[0] for d in during.split()] == ["200"] * 3 and all(float(d.split(":")[1]) < 1 for d in during.split())
sys.exit(0 if ok else 1)' "$named" "$(cat "$logs/documents-page.html" 2>/dev/null)" "$during" "$still" "$silent_answer"; then
    echo "spin-suite: a client's metadata document: the page named it ($named); a silent document server: meanwhile the OAuth component answered ${during}and the request that named it $silent_answer"
else
    echo "spin-suite: metadata documents on Spin: page '$named' (see $logs/documents-page.html), meanwhile '$during', the named request $still, then '$silent_answer'" >&2
    exit 1
fi

# Every variable with a range or a format, set to a value the service cannot use: Spin serves, and
# every route answers 503 CONFIG_INVALID naming the variable (the suite above ran with good values).
refused=0
for case in pin_length=20 argon2_m_kib=64MiB argon2_t=11 argon2_p=0 email_change_window_s=15 dev=enabled \
            conceal_accounts=maybe base_url=accounts.example.com smtp_address=mail.example.com:25 \
            max_pending_signups_per_hour=-1; do
    variable=${case%%=*}
    bad_state=$(mktemp -d)
    RUST_BACKTRACE=0 "$spin_bin" up --from spin.toml --listen "127.0.0.1:$port" --state-dir "$bad_state" --log-dir "$logs/bad-$variable" \
        --variable api_keys="$key" --variable "$case" >"$logs/bad-$variable.out" 2>&1 &
    bad_pid=$!
    answer=""
    for _ in $(seq 1 100); do
        answer=$(curl -sS "http://127.0.0.1:$port/healthz" 2>/dev/null) && [ -n "$answer" ] && break
        sleep 0.2
    done
    kill -INT $bad_pid 2>/dev/null || true; wait $bad_pid 2>/dev/null || true
    rm -rf "$bad_state"
    if python3 -c 'import json,sys; b=json.loads(sys.argv[1]); sys.exit(0 if b.get("code")=="CONFIG_INVALID" and b.get("variable")==sys.argv[2] and sys.argv[2] in b.get("message","") else 1)' "$answer" "$variable" 2>/dev/null; then
        echo "spin-suite: $case refused by name: $answer"
    else
        echo "spin-suite: $case was NOT refused by name; /healthz answered: $answer" >&2
        refused=1
    fi
done
exit $refused
