#!/usr/bin/env bash
# Runs schemathesis (PyPI) with every check against a running gpt-user: BASE_URL API_KEY [SMTP_LISTEN].
# The service actions with the API key; with SMTP_LISTEN (the address the server sends its mail to,
# nobody listening there now) also the person's actions (SPEC §2.5, the `oauth2` scheme) with a
# signed-in person's access token (scripts/person-token.py). Installs schemathesis if missing.
# Fails on any failed check, or when fewer requests were generated than asked for.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1
key=$2
smtp=${3:-}
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
out=$(mktemp)
token_file=$(mktemp)
trap 'rm -f "$out" "$token_file"' EXIT
min=${GPT_USER_SCHEMATHESIS_EXAMPLES:-1000}

# run MIN_REQUESTS AUTHORIZATION schemathesis-args…
run() {
    local want=$1 auth=$2
    shift 2
    schemathesis run "$base/openapi.json" \
        --url "$base" \
        --checks all \
        --header "Authorization: Bearer $auth" \
        --seed 1 \
        --workers 2 \
        --request-timeout 30 \
        --no-color "$@" | tee "$out"
    # At least that many generated requests, or the run proved less than it claims.
    generated=$(grep -oE '[0-9]+ generated' "$out" | tail -n 1 | grep -oE '^[0-9]+')
    if [ "${generated:-0}" -lt "$want" ]; then
        echo "schemathesis: only ${generated:-0} requests generated, fewer than $want" >&2
        exit 1
    fi
}

run "$min" "$key" --max-examples "$min" --exclude-path-regex '^/api/me'
if [ -n "$smtp" ]; then
    python3 scripts/person-token.py "$base" "$key" "$smtp" "$token_file"
    # whoAmI takes no input: a few requests are all there is to generate.
    run 2 "$(cat "$token_file")" --max-examples 100 --include-path-regex '^/api/me'
else
    echo "schemathesis: the person's actions (/api/me…) NOT RUN: no SMTP_LISTEN to sign a person up with"
fi
