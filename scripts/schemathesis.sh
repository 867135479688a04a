#!/usr/bin/env bash
# Runs schemathesis (PyPI) with every check against a running gpt-user: BASE_URL API_KEY.
# Installs schemathesis if missing. Fails on any failed check.
set -euo pipefail
base=$1
key=$2
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
min=${GPT_USER_SCHEMATHESIS_EXAMPLES:-1000}
schemathesis run "$base/openapi.json" \
    --url "$base" \
    --checks all \
    --header "Authorization: Bearer $key" \
    --max-examples "$min" \
    --seed 1 \
    --workers 2 \
    --request-timeout 30 \
    --no-color | tee "$out"
# At least $min generated requests, or the run proved less than it claims.
generated=$(grep -oE '[0-9]+ generated' "$out" | tail -n 1 | grep -oE '^[0-9]+')
if [ "${generated:-0}" -lt "$min" ]; then
    echo "schemathesis: only ${generated:-0} requests generated, fewer than $min" >&2
    exit 1
fi
