#!/usr/bin/env bash
# Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance, which needs
# Node 22: run through `npx -y node@22`) against a running gpt-user's /mcp: BASE_URL API_KEY.
# Fails on any failed check. GPT_USER_MCP_SCENARIOS overrides the list of scenarios.
#
# The suite sends no Authorization header, so it talks to a local proxy that adds the service
# key and forwards everything else unchanged. Only the server scenarios that apply to a
# stateless, tools-only server with a key are run:
#   server-initialize, ping, tools-list.
# Left out: every tools-call-*, prompts-*, resources-*, completion, logging, elicitation and
# json-schema scenario (they call fixture tools and features of the suite's reference server),
# the SSE scenarios (we answer one JSON message per POST), and dns-rebinding-protection, which
# is for servers without authentication and would see the proxy's port as a foreign origin
# (tests/api/mcp.rs checks that a foreign Origin gets 403).
set -euo pipefail
base=$1
key=$2
version=0.1.16
dir=${GPT_USER_MCP_CONFORMANCE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpt-user/mcp-conformance-$version}
cli=$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js
if [ ! -f "$cli" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --silent "@modelcontextprotocol/conformance@$version"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MCP_KEY="$key" MCP_TARGET="$base" python3 - "$port" <<'PY' &
import http.client, os, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

target = urllib.parse.urlsplit(os.environ["MCP_TARGET"])
key = os.environ["MCP_KEY"]
HOP = {"connection", "keep-alive", "transfer-encoding", "authorization"}

class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP:
                conn.putheader(name, value)
        conn.putheader("Authorization", f"Bearer {key}")
        conn.endheaders(body)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = forward

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that hangs up is not a finding

Server(("127.0.0.1", int(sys.argv[1])), Proxy).serve_forever()
PY
proxy=$!
trap 'kill $proxy 2>/dev/null' EXIT
for _ in $(seq 1 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break; sleep 0.1; done

failed=0
for scenario in ${GPT_USER_MCP_SCENARIOS:-server-initialize ping tools-list}; do
    if ! npx -y node@22 "$cli" server --url "http://127.0.0.1:$port/mcp" --scenario "$scenario"; then
        echo "mcp-conformance: $scenario failed" >&2
        failed=1
    fi
done
exit $failed
