#!/usr/bin/env bash
# Runs schemathesis (PyPI) with every check against a running gpt-user: BASE_URL API_KEY.
# Installs schemathesis if missing. Fails on any failed check.
set -euo pipefail
base=$1
key=$2
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check schemathesis
fi
report=$(mktemp -d)
schemathesis run "$base/openapi.json" \
    --url "$base" \
    --checks all \
    --header "Authorization: Bearer $key" \
    --max-examples "${GPT_USER_SCHEMATHESIS_EXAMPLES:-1000}" \
    --seed 1 \
    --workers 2 \
    --request-timeout 30 \
    --no-color \
    --report ndjson --report-dir "$report"
# The run's request count, so the log says how much was generated.
python3 - "$report" <<'PY'
import json, pathlib, sys
n = 0
for f in pathlib.Path(sys.argv[1]).glob("*.ndjson"):
    for line in f.open():
        if '"ScenarioFinished"' in line or '"scenario_finished"' in line.lower():
            n += 1
print(f"schemathesis: {n} scenarios recorded")
PY
rm -rf "$report"
