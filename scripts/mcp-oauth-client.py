#!/usr/bin/env python3
"""Reference-client test driver for gpt-user's OAuth 2.1 authorization server.

Usage:
    scripts/mcp-oauth-client.py --server B --email E [--passphrase P]
        [--mode passphrase|code|signup] [--locale en|ru] [--expect-email E]
        [--protocol auto|legacy|2026-07-28] [--timeout SECONDS] [--verbose] [--secrets-out FILE]
        [--client-metadata-tls CERT KEY]

Connects to B/mcp with the official MCP Python SDK (PyPI `mcp`, pinned in
scripts/python-deps.sh) through its `OAuthClientProvider`, given only the server
URL: the SDK discovers the metadata, registers a client and runs the
authorization-code flow with PKCE. The redirect handler opens no browser: it
does over HTTP what the authorize page's script does and hands the code from the
redirect back to the SDK. Then it lists the tools, calls whoAmI, forces a refresh
through the token endpoint, calls whoAmI again and checks that the refresh token
was rotated.

How the person gets in on the authorize page (--mode):
  passphrase  GET the page, POST /api/oauth/sign-in {email, passphrase}, consent.
  code        GET the page, POST /api/oauth/send-code, then ask the caller for the
              emailed code (protocol below), POST /api/oauth/sign-in {email, code}, consent.
  signup      GET the page, POST /api/oauth/sign-up {email, passphrase (the new one),
              consent: true, locale, every authorization parameter} (201 with a PIN), then
              ask the caller for the verification link, do what the verify page's script
              does (POST /api/signup/verify {token, pin, oauth}), follow its `continue`
              (the authorize page again, a ticket in the fragment) and consent. whoAmI
              must then name --locale and the PIN the sign-up answered, status active.
--passphrase is required in passphrase and signup modes.

With --client-metadata-tls the client is named by a client ID metadata document
(draft-ietf-oauth-client-id-metadata-document) instead of registering itself: the
driver serves the document over HTTPS on 127.0.0.1 with that certificate and key (the
server must trust its CA) and gives its URL to the SDK as `client_metadata_url`; it
checks that the server advertises `client_id_metadata_document_supported`, that no
registration was made and that the tokens were issued to that URL.

Stdin/stdout protocol (code and signup modes), one line each (UTF-8, ended by a newline):
  driver stdout: NEED_CODE   -> caller writes one line on stdin: the 6-digit code
  driver stdout: NEED_LINK   -> caller writes one line on stdin: the verification link
                                (B/signup/verify#token=...&pin=...&lang=...&oauth=...)
Each request line is printed at most once per run and flushed at once; the driver
reads exactly one line after it (EOF before it is a failure). --timeout counts the
wait for the answer too. Stdin is not read at all in passphrase mode.

Stdout, last line: one JSON object, {"ok": true, "protocol", "tools", "who",
"refreshed": true, "client_id", "registered"}; exit 0 (the protocol lines above come before it). On any
failure: what failed on stderr, exit 1, no JSON line. Tokens, codes, tickets,
verification tokens and the passphrase are never printed (--secrets-out writes them
to a file, one a line, for the caller to check the server's log against).

Run with any python3: unless it already runs in the project's venv (target/py),
the script installs that venv (scripts/python-deps.sh) and re-executes itself in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "target" / "py"
_REEXEC_ENV = "GPT_USER_MCP_OAUTH_CLIENT_REEXEC"


def _reexec_in_venv() -> None:
    """Re-execute this script with the pinned venv's python unless already running in it."""
    try:
        in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    except OSError:
        in_venv = False
    if in_venv or os.environ.get(_REEXEC_ENV):
        return
    deps = REPO / "scripts" / "python-deps.sh"
    proc = subprocess.run(
        ["bash", "-c", 'source "$1" && python_deps', "python-deps", str(deps)],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f"mcp-oauth-client: installing the python venv failed ({deps})", file=sys.stderr)
        sys.exit(1)
    py = lines[-1]
    os.environ[_REEXEC_ENV] = "1"
    os.execv(py, [py, str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _reexec_in_venv()

# ruff: noqa: E402 - the imports below need the venv chosen above.
import argparse
import asyncio
import hashlib
import html
import json
import logging
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp import Implementation
from mcp.client import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.shared.exceptions import MCPError
from pydantic import AnyUrl

CLIENT_NAME = "gpt-user test client"
EXPECTED_TOOLS = ["requestProfileLink", "whoAmI"]
WHO_KEYS = ["email", "pin", "status", "locale", "created_at"]
# The authorization parameters the authorize page's script reads from location.search and posts
# back on consent (an absent one is left out), as components/core/src/api/pages/authorize.js does.
AUTHORIZATION_PARAMS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
    "resource",
    "scope",
]


class DriverError(Exception):
    """A check of this driver failed; the message says which (never a secret)."""


# ---------------------------------------------------------------- secrets never printed


class Redactor:
    """Replaces every secret this run has seen (passphrase, ticket, code, tokens) in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:
            self._secrets.add(value)

    def __call__(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(s, "<redacted>")
        return text


REDACT = Redactor()


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return REDACT(super().format(record))


def _fingerprint(secret: str | None) -> str | None:
    return hashlib.sha256(secret.encode()).hexdigest() if secret else None


# ---------------------------------------------------------------- token storage


class MemoryTokenStorage(TokenStorage):
    """In-memory `TokenStorage`; every token stored is also registered with the redactor."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.token_writes = 0

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        REDACT.add(tokens.access_token)
        REDACT.add(tokens.refresh_token)
        self.tokens = tokens
        self.token_writes += 1

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        REDACT.add(client_info.client_secret)
        self.client_info = client_info


# ---------------------------------------------------------------- traffic record


@dataclass
class Exchange:
    method: str
    url: str
    grant_type: str | None = None
    bearer: str | None = None  # sha256 of the bearer token sent, never the token
    status: int | None = None
    cache_control: str | None = None


@dataclass
class Traffic:
    """Every request the SDK's HTTP client sends (the OAuth flow's own requests included)."""

    token_endpoint: str
    exchanges: list[Exchange] = field(default_factory=list)
    _by_request: dict[int, Exchange] = field(default_factory=dict)

    async def on_request(self, request: httpx2.Request) -> None:
        url = str(request.url.copy_with(query=None))
        ex = Exchange(method=request.method, url=url)
        if request.method == "POST" and url == self.token_endpoint:
            try:
                form = parse_qs(request.content.decode(), keep_blank_values=True)
                ex.grant_type = (form.get("grant_type") or [None])[0]
            except Exception:  # noqa: BLE001 - a body we cannot read stays unknown
                ex.grant_type = "?"
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            ex.bearer = _fingerprint(auth[7:])
        self.exchanges.append(ex)
        self._by_request[id(request)] = ex

    async def on_response(self, response: httpx2.Response) -> None:
        ex = self._by_request.pop(id(response.request), None)
        if ex is not None:
            ex.status = response.status_code
            ex.cache_control = response.headers.get("cache-control")

    def token_posts(self, since: int = 0) -> list[Exchange]:
        return [e for e in self.exchanges[since:] if e.method == "POST" and e.url == self.token_endpoint]

    def describe(self, since: int = 0, token_only: bool = False) -> str:
        shown = self.token_posts(since) if token_only else self.exchanges[since:]
        return ", ".join(
            f"{e.method} {urlsplit(e.url).path}{'[' + e.grant_type + ']' if e.grant_type else ''} -> {e.status}"
            for e in shown
        )


# ---------------------------------------------------------------- asking the caller (stdin/stdout)


async def ask_caller(request: str, what: str) -> str:
    """Prints `request` as one line on stdout and reads one line from stdin: what only the
    caller (the mailbox) can give. The read runs on a daemon thread, so a timeout neither waits
    for it nor keeps the process alive; an empty answer or EOF is a failure."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            line: str | BaseException = sys.stdin.readline()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting task
            line = e

        def deliver() -> None:
            if answer.done():
                return
            if isinstance(line, BaseException):
                answer.set_exception(line)
            else:
                answer.set_result(line)

        try:
            loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # the loop is gone (the run timed out): nobody waits any more
            pass

    sys.stdout.write(request + "\n")
    sys.stdout.flush()
    threading.Thread(target=read, name=f"stdin-{request}", daemon=True).start()
    try:
        line = await answer
    except OSError as e:
        raise DriverError(f"reading {what} from stdin failed: {e}") from e
    if not line:
        raise DriverError(f"stdin closed before {what} came (after {request})")
    value = line.strip()
    if not value:
        raise DriverError(f"an empty line came on stdin instead of {what} (after {request})")
    return value


# ---------------------------------------------------------------- the authorize page, as its script does it


@dataclass
class Browser:
    """Plays the authorize page: no browser, the same HTTP requests as the page's script (and, in
    signup mode, as the verify page's script the emailed link opens)."""

    base: str
    mode: str
    email: str
    passphrase: str | None
    locale: str
    web: httpx2.AsyncClient
    traffic: Traffic
    redirect_calls: int = 0
    pending: AuthorizationCodeResult | None = None
    signed_in_email: str | None = None
    signup_pin: str | None = None

    def _headers(self, language: str | None = None) -> dict[str, str]:
        # Same-origin browser API: the browser sends Origin on a POST; the pages send the page's
        # language as Accept-Language.
        headers = {"Origin": self.base, "Accept": "application/json"}
        if language:
            headers["Accept-Language"] = language
        return headers

    async def redirect_handler(self, authorization_url: str) -> None:
        self.redirect_calls += 1
        if self.redirect_calls > 1:
            raise DriverError(
                "the SDK asked for a second authorization (a refused refresh or a rejected token makes it "
                f"start over); token endpoint traffic: {self.traffic.describe(token_only=True)}"
            )
        query = self._authorize_query(authorization_url)
        for key in ("client_id", "redirect_uri", "state", "code_challenge"):
            if not query.get(key):
                raise DriverError(f"authorize URL has no {key}")
        # The authorization parameters as the page's script reads them from location.search.
        request = {k: query[k] for k in AUTHORIZATION_PARAMS if k in query}

        # 1. The page itself.
        await self._get_page(authorization_url, "GET authorize page")

        # 2. Signed in: a ticket (and the authorization parameters the consent step sends back).
        if self.mode == "passphrase":
            assert self.passphrase is not None
            ticket = await self._sign_in(request, {"passphrase": self.passphrase})
        elif self.mode == "code":
            code = await self._emailed_code(request)
            ticket = await self._sign_in(request, {"code": code})
        else:
            ticket, request = await self._sign_up_and_verify(request)

        # 3. Consent, and where the browser would go.
        await self._consent(ticket, request, query)

    def _authorize_query(self, url: str) -> dict[str, str]:
        """The query of an authorize page URL of this server, each parameter once."""
        parts = urlsplit(url)
        endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if endpoint != f"{self.base}/oauth/authorize":
            raise DriverError(f"authorization endpoint is {endpoint}, expected {self.base}/oauth/authorize")
        query: dict[str, str] = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if len(values) != 1:
                raise DriverError(f"authorize URL repeats the parameter {key!r}")
            query[key] = values[0]
        return query

    async def _get_page(self, url: str, what: str) -> None:
        page = await self.web.get(url.split("#", 1)[0], headers={"Accept": "text/html"})
        if page.status_code != 200:
            where = page.headers.get("location")
            detail = f", Location: {_describe_redirect(where)}" if where else f": {_snippet(page.text)}"
            raise DriverError(f"{what} answered {page.status_code}{detail}")
        ctype = page.headers.get("content-type", "")
        if not ctype.lower().startswith("text/html"):
            raise DriverError(f"{what}: Content-Type is {ctype!r}, expected text/html")

    async def _sign_in(self, request: dict[str, str], secret: dict[str, str]) -> str:
        """POST /api/oauth/sign-in with the passphrase or the code: the ticket."""
        sign_in = await self.web.post(
            f"{self.base}/api/oauth/sign-in",
            json={
                "client_id": request["client_id"],
                "redirect_uri": request["redirect_uri"],
                "email": self.email,
                **secret,
            },
            headers=self._headers(),
        )
        if sign_in.status_code != 200:
            raise DriverError(f"POST /api/oauth/sign-in answered {sign_in.status_code}: {_api_error(sign_in)}")
        body = _json_object(sign_in, "/api/oauth/sign-in")
        ticket = body.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise DriverError("POST /api/oauth/sign-in: no ticket in the answer")
        REDACT.add(ticket)
        self.signed_in_email = body.get("email")
        return ticket

    async def _emailed_code(self, request: dict[str, str]) -> str:
        """"Email me a code", then the code from the caller (who reads the mail)."""
        sent = await self.web.post(
            f"{self.base}/api/oauth/send-code",
            json={"client_id": request["client_id"], "redirect_uri": request["redirect_uri"], "email": self.email},
            headers=self._headers(),
        )
        if sent.status_code != 200:
            raise DriverError(f"POST /api/oauth/send-code answered {sent.status_code}: {_api_error(sent)}")
        code = await ask_caller("NEED_CODE", "the emailed code")
        REDACT.add(code)
        if len(code) != 6 or not code.isascii() or not code.isdigit():
            raise DriverError("the line given for NEED_CODE is not 6 digits")
        return code

    async def _sign_up_and_verify(self, request: dict[str, str]) -> tuple[str, dict[str, str]]:
        """A new person: sign-up on the page, the emailed link opened in this browser (the verify
        page's script), and the authorize page it continues to. The ticket from that page's
        fragment and the authorization parameters from its query."""
        assert self.passphrase is not None
        # 1. SignUp_Init from the authorize page.
        signed_up = await self.web.post(
            f"{self.base}/api/oauth/sign-up",
            json={
                "email": self.email,
                "passphrase": self.passphrase,
                "consent": True,
                "locale": self.locale,
                **request,
            },
            headers=self._headers(self.locale),
        )
        if signed_up.status_code != 201:
            raise DriverError(
                f"POST /api/oauth/sign-up answered {signed_up.status_code} (expected 201 with a PIN): {_api_error(signed_up)}"
            )
        pin = _json_object(signed_up, "/api/oauth/sign-up").get("pin")
        if not isinstance(pin, str) or not pin:
            raise DriverError("POST /api/oauth/sign-up: no pin in the 201 answer")
        self.signup_pin = pin

        # 2. The link from the verification email.
        link = await ask_caller("NEED_LINK", "the verification link")
        link = html.unescape(link)  # a link copied from the HTML part: &amp; between the parameters
        parts = urlsplit(link)
        fragment = {k: v[0] for k, v in parse_qs(parts.fragment, keep_blank_values=True).items()}
        REDACT.add(fragment.get("token"))
        REDACT.add(link)
        if f"{parts.scheme}://{parts.netloc}{parts.path}" != f"{self.base}/signup/verify":
            raise DriverError(f"the verification link opens {_describe_link(link)}, expected {self.base}/signup/verify")
        token, link_pin, oauth = fragment.get("token"), fragment.get("pin"), fragment.get("oauth")
        if not token:
            raise DriverError("the verification link has no token in its fragment")
        if not oauth:
            raise DriverError("the verification link names no authorization (no oauth= in its fragment)")
        if link_pin is not None and link_pin != pin:
            raise DriverError(f"the verification link shows the PIN {link_pin!r}, the sign-up answered {pin!r}")
        if fragment.get("lang") not in (None, self.locale):
            raise DriverError(f"the verification link's lang is {fragment.get('lang')!r}, expected {self.locale!r}")
        language = fragment.get("lang") or self.locale

        # 3. The verify page (one GET, as the browser opens the link), then its script's POST.
        await self._get_page(link, "GET verify page")
        body: dict[str, str] = {"token": token}
        if link_pin:
            body["pin"] = link_pin
        body["oauth"] = oauth
        verified = await self.web.post(f"{self.base}/api/signup/verify", json=body, headers=self._headers(language))
        if verified.status_code != 200:
            raise DriverError(f"POST /api/signup/verify answered {verified.status_code}: {_api_error(verified)}")
        answer = _json_object(verified, "/api/signup/verify")
        follow = answer.get("continue")
        if not isinstance(follow, str):
            raise DriverError(
                f"POST /api/signup/verify: no continue in the answer (keys {sorted(answer)}): the authorization was not resumed"
            )
        page, _, page_fragment = follow.partition("#")
        fragment_params = {k: v[0] for k, v in parse_qs(page_fragment, keep_blank_values=True).items()}
        REDACT.add(fragment_params.get("ticket"))
        if not follow.startswith(f"{self.base}/oauth/authorize?"):
            raise DriverError(f"POST /api/signup/verify: continue goes to {_describe_link(follow)}, not {self.base}/oauth/authorize?")

        # 4. The authorize page again, at the consent step: parameters in the query (as sent), the
        # ticket and address in the fragment (never sent to the server).
        resumed = self._authorize_query(page)
        again = {k: resumed[k] for k in AUTHORIZATION_PARAMS if k in resumed}
        if again != request:
            differ = sorted(k for k in set(again) | set(request) if again.get(k) != request.get(k))
            raise DriverError(f"continue's authorization parameters differ from the authorize request's in {differ}")
        ticket = fragment_params.get("ticket")
        if not ticket:
            raise DriverError("continue has no ticket in its fragment")
        self.signed_in_email = fragment_params.get("email")
        await self._get_page(page, "GET authorize page (continue)")
        return ticket, again

    async def _consent(self, ticket: str, request: dict[str, str], query: dict[str, str]) -> None:
        """Consent: allow, with the authorization parameters; the registered redirect URI with
        code, state, iss is where the browser would go."""
        consent = await self.web.post(
            f"{self.base}/api/oauth/consent",
            json={"ticket": ticket, "allow": True, **request},
            headers=self._headers(),
        )
        if consent.status_code != 200:
            raise DriverError(f"POST /api/oauth/consent answered {consent.status_code}: {_api_error(consent)}")
        redirect = _json_object(consent, "/api/oauth/consent").get("redirect")
        if not isinstance(redirect, str):
            raise DriverError("POST /api/oauth/consent: no redirect in the answer")

        target = urlsplit(redirect)
        params = {k: v[0] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        REDACT.add(params.get("code"))
        if f"{target.scheme}://{target.netloc}{target.path}" != query["redirect_uri"]:
            raise DriverError(f"consent redirect goes to {_describe_redirect(redirect)}, not the redirect_uri")
        if "error" in params:
            raise DriverError(f"consent redirect carries an error: {_describe_redirect(redirect)}")
        if params.get("iss") != self.base:
            raise DriverError(f"consent redirect iss is {params.get('iss')!r}, expected {self.base!r}")
        if params.get("state") != query["state"]:
            raise DriverError("consent redirect state differs from the authorize request's state")
        if not params.get("code"):
            raise DriverError("consent redirect has no code")
        self.pending = AuthorizationCodeResult(code=params["code"], state=params["state"], iss=params["iss"])

    async def callback_handler(self) -> AuthorizationCodeResult:
        result, self.pending = self.pending, None
        if result is None:
            raise DriverError("no authorization response to hand to the SDK")
        return result


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return REDACT(text[:limit] + ("..." if len(text) > limit else ""))


def _describe_redirect(url: str) -> str:
    """A redirect URL with its code (if any) hidden."""
    parts = urlsplit(url)
    params = parse_qs(parts.query, keep_blank_values=True)
    shown = {k: ("<code>" if k == "code" else v[0]) for k, v in params.items()}
    return REDACT(f"{parts.scheme}://{parts.netloc}{parts.path} {json.dumps(shown)}")


def _describe_link(url: str) -> str:
    """A URL without its fragment (a ticket or token may be there), secrets hidden."""
    return REDACT(url.split("#", 1)[0])


def _api_error(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _snippet(response.text)
    if isinstance(body, dict):
        keys = ("code", "message", "field", "error", "error_description")
        return REDACT(json.dumps({k: body[k] for k in keys if k in body}, ensure_ascii=False))
    return _snippet(response.text)


def _json_object(response: httpx2.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as e:
        raise DriverError(f"{what}: answer is not JSON") from e
    if not isinstance(body, dict):
        raise DriverError(f"{what}: answer is not a JSON object")
    return body


class MetadataDocument:
    """A client ID metadata document served over HTTPS on 127.0.0.1 from a thread."""

    def __init__(self, cert: str, key: str, redirect_uri: str) -> None:
        import http.server
        import ssl

        document: dict[str, Any] = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.dumps(document).encode()
                found = self.path == "/oauth/client.json"
                self.send_response(200 if found else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body) if found else 0))
                self.end_headers()
                if found:
                    self.wfile.write(body)
                    self.server.fetches += 1  # type: ignore[attr-defined]

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.fetches = 0  # type: ignore[attr-defined]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/oauth/client.json"
        document.update(
            client_id=self.url,
            client_name=CLIENT_NAME,
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        )
        threading.Thread(target=self.server.serve_forever, name="metadata-document", daemon=True).start()

    @property
    def fetches(self) -> int:
        return self.server.fetches  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the run


async def _who_am_i(client: Client, expect_email: str, label: str) -> dict[str, Any]:
    result = await client.call_tool("whoAmI", {})
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise DriverError(f"{label}: whoAmI returned isError: {_snippet(text)}")
    who = result.structured_content
    if not isinstance(who, dict):
        raise DriverError(f"{label}: whoAmI has no structuredContent object")
    missing = [k for k in WHO_KEYS if k not in who]
    if missing:
        raise DriverError(f"{label}: whoAmI structuredContent lacks {missing}")
    if who.get("email") != expect_email:
        raise DriverError(f"{label}: whoAmI email is {who.get('email')!r}, expected {expect_email!r}")
    return who


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = args.server.rstrip("/")
    mcp_url = f"{base}/mcp"
    expect_email = args.expect_email if args.expect_email is not None else args.email
    redirect_uri = f"http://127.0.0.1:{_free_port()}/callback"

    storage = MemoryTokenStorage()
    traffic = Traffic(token_endpoint=f"{base}/oauth/token")
    document = MetadataDocument(*args.client_metadata_tls, redirect_uri) if args.client_metadata_tls else None
    timeout = httpx2.Timeout(30.0, read=60.0)

    async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as web:
        browser = Browser(
            base=base,
            mode=args.mode,
            email=args.email,
            passphrase=args.passphrase,
            locale=args.locale,
            web=web,
            traffic=traffic,
        )
        provider = OAuthClientProvider(
            server_url=mcp_url,
            client_metadata=OAuthClientMetadata(
                client_name=CLIENT_NAME,
                redirect_uris=[AnyUrl(redirect_uri)],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
                scope="account",
            ),
            storage=storage,
            redirect_handler=browser.redirect_handler,
            callback_handler=browser.callback_handler,
            client_metadata_url=document.url if document else None,
        )
        http = httpx2.AsyncClient(
            auth=provider,
            timeout=timeout,
            event_hooks={"request": [traffic.on_request], "response": [traffic.on_response]},
        )
        async with http:
            transport = streamable_http_client(mcp_url, http_client=http)
            client = Client(
                transport,
                mode=args.protocol,
                client_info=Implementation(name=CLIENT_NAME, version="1"),
            )
            async with client:
                protocol = client.protocol_version

                # ---- tools
                listed = await client.list_tools()
                names = sorted(t.name for t in listed.tools)
                if names != EXPECTED_TOOLS or listed.next_cursor is not None:
                    raise DriverError(f"tools/list gave {names}, expected exactly {EXPECTED_TOOLS}")

                # ---- first authorization (at connect, or at tools/list when a 2026-07-28 pin sends
                # nothing at connect): exactly one sign-in and one code exchange
                if browser.redirect_calls != 1:
                    raise DriverError(f"expected one authorization, saw {browser.redirect_calls}")
                posts = traffic.token_posts()
                if [(p.grant_type, p.status) for p in posts] != [("authorization_code", 200)]:
                    raise DriverError(f"expected one authorization_code exchange (200); token traffic: {traffic.describe()}")
                tokens = await storage.get_tokens()
                if tokens is None:
                    raise DriverError("the SDK stored no tokens")
                if not tokens.refresh_token:
                    raise DriverError("the token response carried no refresh_token")
                if tokens.scope != "account":
                    raise DriverError(f"token scope is {tokens.scope!r}, expected 'account'")

                who = await _who_am_i(client, expect_email, "first call")
                if browser.signed_in_email != who["email"]:
                    what = "the verification's continue named" if args.mode == "signup" else "sign-in answered"
                    raise DriverError(f"{what} email {browser.signed_in_email!r}, whoAmI {who['email']!r}")
                if args.mode == "signup":
                    # The account the sign-up made: its language, its PIN, activated by the link.
                    if who.get("locale") != args.locale:
                        raise DriverError(f"whoAmI locale is {who.get('locale')!r}, expected {args.locale!r}")
                    if who.get("pin") != browser.signup_pin:
                        raise DriverError(f"whoAmI pin is {who.get('pin')!r}, the sign-up answered {browser.signup_pin!r}")
                    if who.get("status") != "active":
                        raise DriverError(f"whoAmI status is {who.get('status')!r} after verification, expected 'active'")

                # ---- forced refresh: the SDK refreshes before a request when its context says the
                # access token has expired (OAuthContext.is_token_valid); nothing else is touched.
                before = await storage.get_tokens()
                assert before is not None
                mark = len(traffic.exchanges)
                provider.context.token_expiry_time = time.time() - 1
                who_again = await _who_am_i(client, expect_email, "after refresh")
                after = await storage.get_tokens()
                assert after is not None

                posts = traffic.token_posts(mark)
                if [(p.grant_type, p.status) for p in posts] != [("refresh_token", 200)]:
                    raise DriverError(
                        f"expected one refresh_token grant (200) at the token endpoint; saw: {traffic.describe(mark)}"
                    )
                if browser.redirect_calls != 1:
                    raise DriverError("the refresh fell back to a new authorization")
                if not after.refresh_token:
                    raise DriverError("the refresh answer left no refresh_token")
                if after.refresh_token == before.refresh_token:
                    raise DriverError("the refresh token was not rotated (the refresh answer had no new refresh_token)")
                if after.access_token == before.access_token:
                    raise DriverError("the refresh gave back the same access token")
                calls = [e for e in traffic.exchanges[mark:] if e.method == "POST" and e.url == mcp_url]
                new_fp = _fingerprint(after.access_token)
                if not calls or any(e.bearer != new_fp or e.status != 200 for e in calls):
                    raise DriverError(f"whoAmI after refresh was not sent with the new access token: {traffic.describe(mark)}")
                if who_again.get("email") != who.get("email"):
                    raise DriverError("whoAmI changed identity across the refresh")

        # ---- who the client was: registered by itself, or the metadata document's URL
        registered = any(e.method == "POST" and e.url == f"{base}/oauth/register" for e in traffic.exchanges)
        client_info = await storage.get_client_info()
        client_id = client_info.client_id if client_info else None
        if document is not None:
            metadata = (await web.get(f"{base}/.well-known/oauth-authorization-server")).json()
            if metadata.get("client_id_metadata_document_supported") is not True:
                raise DriverError("the server does not advertise client_id_metadata_document_supported")
            if registered or client_id != document.url:
                raise DriverError(f"expected the metadata document's URL as client_id and no registration; registered={registered}")
            if document.fetches < 1:
                raise DriverError("the server never fetched the metadata document")
        elif not registered:
            raise DriverError("the SDK did not register itself")

        # ---- token endpoint answers must not be cached (contract: Cache-Control: no-store)
        for p in traffic.token_posts():
            if "no-store" not in (p.cache_control or "").lower():
                raise DriverError(f"token answer ({p.grant_type}) lacks Cache-Control: no-store")

    return {"ok": True, "protocol": protocol, "tools": names, "who": who, "refreshed": True, "client_id": client_id, "registered": registered}


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for e in exc.exceptions:
            out.extend(_leaves(e))
        return out
    return [exc]


def _describe_failure(exc: BaseException) -> str:
    leaves = _leaves(exc)
    driver = [e for e in leaves if isinstance(e, DriverError)]
    chosen = driver or leaves
    parts = []
    for e in chosen:
        if isinstance(e, DriverError):
            parts.append(str(e))
        elif isinstance(e, MCPError):
            parts.append(f"MCP error {e.code}: {e.error.message}")
        else:
            parts.append(f"{type(e).__name__}: {e}")
    return REDACT("; ".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="base URL B, e.g. http://127.0.0.1:3000")
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--passphrase",
        default=None,
        help="the account's passphrase (passphrase mode) or the new account's (signup mode); unused in code mode",
    )
    parser.add_argument(
        "--mode",
        choices=["passphrase", "code", "signup"],
        default="passphrase",
        help="how the person gets in on the authorize page: passphrase; an emailed code (NEED_CODE); "
        "a sign-up whose verification link finishes the authorization (NEED_LINK)",
    )
    parser.add_argument(
        "--locale",
        choices=["en", "ru"],
        default="en",
        help="signup mode: the new account's language (whoAmI must name it)",
    )
    parser.add_argument("--expect-email", default=None, help="email whoAmI must return (default: --email)")
    parser.add_argument(
        "--protocol",
        choices=["auto", "legacy", "2026-07-28"],
        default="auto",
        help="SDK Client mode: auto (server/discover, falling back to initialize; the SDK default), "
        "legacy (initialize), or a 2026-07-28 pin",
    )
    parser.add_argument(
        "--client-metadata-tls",
        nargs=2,
        metavar=("CERT", "KEY"),
        default=None,
        help="name the client by a metadata document served over HTTPS with this certificate and key (PEM)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run")
    parser.add_argument("--verbose", action="store_true", help="SDK and HTTP logs on stderr (secrets redacted)")
    parser.add_argument(
        "--secrets-out",
        default=None,
        help="file to write every secret this run saw (passphrase, tickets, codes, verification token, tokens), "
        "one per line: the caller's "
        "test checks that none of them reached the server's log",
    )
    args = parser.parse_args()
    if args.mode in ("passphrase", "signup") and not args.passphrase:
        parser.error(f"--passphrase is required in {args.mode} mode")
    REDACT.add(args.passphrase)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL, handlers=[handler], force=True)

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(args.timeout):
            return await run(args)

    def write_secrets() -> None:
        if args.secrets_out:
            with open(args.secrets_out, "w", encoding="utf-8") as f:
                f.write("".join(f"{secret}\n" for secret in sorted(REDACT._secrets)))

    try:
        summary = anyio.run(bounded)
        write_secrets()
    except BaseException as e:  # noqa: BLE001 - every failure is reported the same way
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(e, TimeoutError):
            msg = f"timed out after {args.timeout:g} s"
        else:
            msg = _describe_failure(e)
        write_secrets()
        print(f"mcp-oauth-client: FAILED: {msg}", file=sys.stderr)
        if args.verbose:
            print(REDACT("".join(traceback.format_exception(e))), file=sys.stderr)
        return 1
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
