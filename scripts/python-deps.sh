# Sourced by other scripts (bash). Provides python_deps: makes sure the project's Python
# venv at target/py exists with the pinned packages, and echoes the venv's python path
# (the only thing it writes to stdout; pip and apt output go to stderr).
#
#   source scripts/python-deps.sh
#   py=$(python_deps)
#   "$py" scripts/mcp-oauth-client.py --server ... --email ... --passphrase ...
#
# Pins: the MCP Python SDK (PyPI `mcp`) that scripts/mcp-oauth-client.py was tested with,
# and httpx2, the HTTP client that SDK is built on (mcp 2.x moved from httpx to httpx2;
# the driver passes an httpx2.AsyncClient to the SDK's transport).

GPT_USER_PY_PACKAGES="mcp==2.3.0 httpx2==2.16.2"

python_deps() {
    local root venv py stamp
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    venv="$root/target/py"
    py="$venv/bin/python"
    stamp="$venv/.gpt-user-packages"

    mkdir -p "$root/target"
    (
        # One installer at a time (scripts may run side by side).
        if command -v flock >/dev/null 2>&1; then
            exec 9>"$root/target/py.lock"
            flock 9
        fi

        if [ -x "$py" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$GPT_USER_PY_PACKAGES" ] &&
            "$py" -c 'import mcp.client.auth, httpx2' >/dev/null 2>&1; then
            exit 0
        fi

        if [ ! -x "$py" ] || ! "$py" -c 'import sys' >/dev/null 2>&1; then
            # Debian's python3 lacks venv/ensurepip unless python3-venv is installed.
            if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
                if command -v apt-get >/dev/null 2>&1; then
                    echo "python-deps: installing python3-venv" >&2
                    apt-get update >&2 &&
                        DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv >&2 || exit 1
                else
                    echo "python-deps: python3 has no venv module and apt-get is not here" >&2
                    exit 1
                fi
            fi
            rm -rf "$venv"
            python3 -m venv "$venv" >&2 || exit 1
        fi

        echo "python-deps: installing $GPT_USER_PY_PACKAGES into $venv" >&2
        # shellcheck disable=SC2086 # the package list is meant to split
        "$py" -m pip install --quiet --disable-pip-version-check $GPT_USER_PY_PACKAGES >&2 || exit 1
        printf '%s' "$GPT_USER_PY_PACKAGES" >"$stamp"
    ) || {
        echo "python-deps: could not set up $venv" >&2
        return 1
    }
    echo "$py"
}
