#!/usr/bin/env python3
"""A signed-in person's OAuth access token for a running gpt-user, for tools that call the
person's GPT actions (scripts/schemathesis.sh).

Usage: scripts/person-token.py BASE API_KEY SMTP_LISTEN TOKEN_FILE

Listens as the server's SMTP relay on SMTP_LISTEN (host:port; the server must send its mail
there), signs a new person up through the GPT action with API_KEY, opens the verification link
as the verify page does, then runs the authorization-code flow a GPT with OAuth runs (a
registered public client, PKCE, the authorize page's sign-in and consent) for the resource of
the person's actions (BASE/api) and writes the access token (valid an hour) to TOKEN_FILE. Prints the person's email
only; no passphrase, link or token is printed. Exit 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import re
import secrets
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


class Mailbox:
    """Messages received, by recipient."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.cond = threading.Condition()

    def add(self, rcpts: list[str], data: bytes) -> None:
        with self.cond:
            self.messages.append((rcpts, data))
            self.cond.notify_all()

    def wait_for(self, rcpt: str, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for rcpts, data in self.messages:
                    if rcpt in rcpts:
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"person-token: no mail to {rcpt} within {timeout:g} s")
                self.cond.wait(left)


MAILBOX = Mailbox()


class Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for the server's client (lettre): EHLO, MAIL, RCPT, DATA, RSET, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 person-token ESMTP")
        rcpts: list[str] = []
        while line := self.rfile.readline():
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-person-token")
                self.reply("250 8BITMIME")
            elif verb == "MAIL":
                rcpts = []
                self.reply("250 OK")
            elif verb == "RCPT":
                found = re.search(rb"<([^>]*)>", line)
                rcpts.append(found.group(1).decode() if found else "")
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                MAILBOX.add(rcpts, data)
                self.reply("250 OK")
            elif verb == "RSET":
                rcpts = []
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


def post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    base, key, listen, token_file = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4]
    host, port = listen.rsplit(":", 1)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((host, int(port)), Smtp)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    address = f"person-{secrets.token_hex(6)}@example.com"
    passphrase = "person token " + secrets.token_urlsafe(18)
    status, answer = post(f"{base}/api/signup/init", {"email": address, "consent": True, "locale": "en", "passphrase": passphrase},
                          {"authorization": f"Bearer {key}"})
    if status != 201:
        raise SystemExit(f"person-token: sign-up answered {status} {answer.get('code')}")
    message = email.message_from_bytes(MAILBOX.wait_for(address, 60), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"/signup/verify#token=([A-Za-z0-9_\-]+)", text)
    if not found:
        raise SystemExit("person-token: the verification mail has no link")
    status, answer = post(f"{base}/api/signup/verify", {"token": found.group(1)}, {"origin": base})
    if status != 200:
        raise SystemExit(f"person-token: verification answered {status} {answer.get('code')}")
    # The OAuth code flow as a GPT with OAuth does it, for the person's actions (resource BASE/api).
    redirect = "http://127.0.0.1:9/callback"
    status, client = post(f"{base}/oauth/register", {"client_name": "person-token", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}, {})
    if status != 201:
        raise SystemExit(f"person-token: registration answered {status} {client.get('error')}")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"client_id": client["client_id"], "redirect_uri": redirect, "response_type": "code", "code_challenge": challenge,
              "code_challenge_method": "S256", "state": "person-token", "resource": f"{base}/api", "scope": "account"}
    page = {"origin": base}
    signing_in = {"client_id": client["client_id"], "redirect_uri": redirect, "email": address, "passphrase": passphrase}
    status, signed = post(f"{base}/api/oauth/sign-in", signing_in, page)
    if status != 200:
        raise SystemExit(f"person-token: sign-in answered {status} {signed.get('code')}")
    status, allowed = post(f"{base}/api/oauth/consent", {**params, "ticket": signed["ticket"], "allow": True}, page)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(allowed.get("redirect", "")).query).get("code", [""])[0]
    if status != 200 or not code:
        raise SystemExit(f"person-token: consent answered {status} without a code")
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                                   "client_id": client["client_id"], "code_verifier": verifier}).encode()
    request = urllib.request.Request(f"{base}/oauth/token", data=form, method="POST")
    request.add_header("content-type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=30) as response:
        tokens = json.loads(response.read())
    Path(token_file).write_text(tokens["access_token"] + "\n")
    print(f"person-token: {address} signed in; its access token is in {token_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
