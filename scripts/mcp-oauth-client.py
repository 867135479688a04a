#!/usr/bin/env python3
"""Reference-client test driver for gpt-user's OAuth 2.1 authorization server.

Usage:
    scripts/mcp-oauth-client.py --server B --email E --passphrase P
        [--mode passphrase] [--expect-email E] [--protocol auto|legacy|2026-07-28]
        [--timeout SECONDS] [--verbose]

Connects to B/mcp with the official MCP Python SDK (PyPI `mcp`, pinned in
scripts/python-deps.sh) through its `OAuthClientProvider`, given only the server
URL: the SDK discovers the metadata, registers a client and runs the
authorization-code flow with PKCE. The redirect handler opens no browser: it
does over HTTP what the authorize page's script does (GET the page, POST
sign-in, POST consent) and hands the code from the redirect back to the SDK.
Then it lists the tools, calls whoAmI, forces a refresh through the token
endpoint, calls whoAmI again and checks that the refresh token was rotated.

Stdout: one JSON line, {"ok": true, "protocol", "tools", "who", "refreshed": true}; exit 0.
On any failure: what failed on stderr, exit 1. Tokens, codes, tickets and the
passphrase are never printed.

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
import hashlib
import json
import logging
import socket
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


# ---------------------------------------------------------------- the authorize page, as its script does it


@dataclass
class Browser:
    """Plays the authorize page: no browser, the same HTTP requests as the page's script."""

    base: str
    email: str
    passphrase: str
    web: httpx2.AsyncClient
    traffic: Traffic
    redirect_calls: int = 0
    pending: AuthorizationCodeResult | None = None
    signed_in_email: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.redirect_calls += 1
        if self.redirect_calls > 1:
            raise DriverError(
                "the SDK asked for a second authorization (a refused refresh or a rejected token makes it "
                f"start over); token endpoint traffic: {self.traffic.describe(token_only=True)}"
            )
        parts = urlsplit(authorization_url)
        endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if endpoint != f"{self.base}/oauth/authorize":
            raise DriverError(f"authorization endpoint is {endpoint}, expected {self.base}/oauth/authorize")
        query: dict[str, str] = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if len(values) != 1:
                raise DriverError(f"authorize URL repeats the parameter {key!r}")
            query[key] = values[0]
        for key in ("client_id", "redirect_uri", "state", "code_challenge"):
            if not query.get(key):
                raise DriverError(f"authorize URL has no {key}")

        # 1. The page itself.
        page = await self.web.get(authorization_url, headers={"Accept": "text/html"})
        if page.status_code != 200:
            where = page.headers.get("location")
            detail = f", Location: {_describe_redirect(where)}" if where else f": {_snippet(page.text)}"
            raise DriverError(f"GET authorize page answered {page.status_code}{detail}")
        ctype = page.headers.get("content-type", "")
        if not ctype.lower().startswith("text/html"):
            raise DriverError(f"authorize page Content-Type is {ctype!r}, expected text/html")

        # 2. Sign in (same-origin browser API: the browser sends Origin on a POST).
        headers = {"Origin": self.base, "Accept": "application/json"}
        sign_in = await self.web.post(
            f"{self.base}/api/oauth/sign-in",
            json={
                "client_id": query["client_id"],
                "redirect_uri": query["redirect_uri"],
                "email": self.email,
                "passphrase": self.passphrase,
            },
            headers=headers,
        )
        if sign_in.status_code != 200:
            raise DriverError(f"POST /api/oauth/sign-in answered {sign_in.status_code}: {_api_error(sign_in)}")
        body = _json_object(sign_in, "/api/oauth/sign-in")
        ticket = body.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise DriverError("POST /api/oauth/sign-in: no ticket in the answer")
        REDACT.add(ticket)
        self.signed_in_email = body.get("email")

        # 3. Consent: allow, with the authorization parameters from the page's query.
        request = {k: query[k] for k in AUTHORIZATION_PARAMS if k in query}
        consent = await self.web.post(
            f"{self.base}/api/oauth/consent",
            json={"ticket": ticket, "allow": True, **request},
            headers=headers,
        )
        if consent.status_code != 200:
            raise DriverError(f"POST /api/oauth/consent answered {consent.status_code}: {_api_error(consent)}")
        redirect = _json_object(consent, "/api/oauth/consent").get("redirect")
        if not isinstance(redirect, str):
            raise DriverError("POST /api/oauth/consent: no redirect in the answer")

        # 4. Where the browser would go: the registered redirect URI with code, state, iss.
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
    timeout = httpx2.Timeout(30.0, read=60.0)

    async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as web:
        browser = Browser(base=base, email=args.email, passphrase=args.passphrase, web=web, traffic=traffic)
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
                    raise DriverError(f"sign-in answered email {browser.signed_in_email!r}, whoAmI {who['email']!r}")

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

        # ---- token endpoint answers must not be cached (contract: Cache-Control: no-store)
        for p in traffic.token_posts():
            if "no-store" not in (p.cache_control or "").lower():
                raise DriverError(f"token answer ({p.grant_type}) lacks Cache-Control: no-store")

    return {"ok": True, "protocol": protocol, "tools": names, "who": who, "refreshed": True}


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
    parser.add_argument("--passphrase", required=True)
    parser.add_argument("--mode", choices=["passphrase"], default="passphrase", help="how to sign in")
    parser.add_argument("--expect-email", default=None, help="email whoAmI must return (default: --email)")
    parser.add_argument(
        "--protocol",
        choices=["auto", "legacy", "2026-07-28"],
        default="auto",
        help="SDK Client mode: auto (server/discover, falling back to initialize; the SDK default), "
        "legacy (initialize), or a 2026-07-28 pin",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run")
    parser.add_argument("--verbose", action="store_true", help="SDK and HTTP logs on stderr (secrets redacted)")
    parser.add_argument(
        "--secrets-out",
        default=None,
        help="file to write every secret this run saw (ticket, code, tokens), one per line: the caller's "
        "test checks that none of them reached the server's log",
    )
    args = parser.parse_args()
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
