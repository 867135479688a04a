#!/usr/bin/env python3
"""A round-robin HTTP/1.1 load balancer for the multi-host test (scripts/multihost.sh); Python 3.8+, no
dependencies.

    scripts/roundrobin.py --listen 127.0.0.1:8080 127.0.0.1:3001 127.0.0.1:3002 127.0.0.1:3003

Every request goes to the next backend in turn: each new client connection and each further request on a
kept-alive one. The request head and body and the response are forwarded byte for byte, unchanged (`Host`
and `Origin` included, so a host whose `GPT_USER_BASE_URL` is this balancer's URL sees its own origin), and
streamed as they arrive, not buffered: a backend that answers from the head alone (413 for a declared
length, 401 for a missing key) answers through the balancer too, before any body is sent. Each request
opens a connection of its own to its backend, closed after the response. The client connection is kept
alive unless the client or the backend asked to close it, the response was delimited by the close, or the
backend answered before the whole request body was in (the rest of that body is read and dropped first,
for at most 10 s, so the client reads the answer instead of a reset).

On SIGTERM or SIGINT it prints how many requests each backend got, to stderr; `--verbose` prints one line
per request.
"""

import argparse
import asyncio
import signal
import sys

HEAD_LIMIT = 1 << 20  # the longest request or response head accepted
CHUNK = 64 * 1024
DRAIN_AFTER_EARLY_ANSWER_S = 10.0


class Backends:
    def __init__(self, addrs):
        self.addrs = addrs
        self.counts = [0] * len(addrs)
        self.turn = 0

    def next(self):
        i = self.turn
        self.turn = (self.turn + 1) % len(self.addrs)
        self.counts[i] += 1
        return self.addrs[i]

    def report(self):
        total = sum(self.counts)
        parts = ", ".join(f"{host}:{port} {n}" for (host, port), n in zip(self.addrs, self.counts))
        return f"roundrobin: {total} requests: {parts}"


def parse_addr(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


async def read_head(reader):
    """The head up to and including the empty line; None at a clean end of stream (nothing read)."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip() == b"":
            return None
        raise ConnectionError("the stream ended inside a head") from e
    except asyncio.LimitOverrunError as e:
        raise ConnectionError("a head over the size limit") from e


def parse_head(head):
    """(first line's three parts, {lower-case name: [values]})."""
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return first, headers


def tokens(headers, name):
    return {t.strip().lower() for v in headers.get(name, []) for t in v.split(",") if t.strip()}


def framing(headers):
    """('chunked', None), ('length', n), or ('none', None) when neither header is there."""
    if "chunked" in tokens(headers, "transfer-encoding"):
        return "chunked", None
    lengths = headers.get("content-length")
    if lengths:
        values = {v.strip() for v in ",".join(lengths).split(",")}
        if len(values) != 1 or not values.pop().isdigit():
            raise ValueError("an invalid Content-Length")
        return "length", int(lengths[0].split(",")[0])
    return "none", None


async def copy_body(reader, write, kind, length):
    """Copies one message body from `reader`, delimited as `kind` says, to `write` (an async callable taking
    bytes); the chunked framing is copied as it is. `kind` 'close': until the end of the stream."""
    if kind == "length":
        left = length
        while left > 0:
            data = await reader.read(min(left, CHUNK))
            if not data:
                raise ConnectionError("the stream ended inside a body")
            left -= len(data)
            await write(data)
    elif kind == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            await write(line)
            size = int(line.split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    await write(line)
                    if line == b"\r\n":
                        return
            left = size + 2  # the data and its CRLF
            while left > 0:
                data = await reader.read(min(left, CHUNK))
                if not data:
                    raise ConnectionError("the stream ended inside a chunk")
                left -= len(data)
                await write(data)
    elif kind == "close":
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            await write(data)


def abort(writer):
    if writer is not None and not writer.is_closing():
        writer.transport.abort()


class Balancer:
    def __init__(self, backends, verbose):
        self.backends = backends
        self.verbose = verbose

    async def serve_connection(self, client_r, client_w):
        try:
            while await self.one_exchange(client_r, client_w):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError) as e:
            if self.verbose:
                print(f"roundrobin: connection dropped: {e!r}", file=sys.stderr)
            abort(client_w)
            return
        try:
            client_w.close()
            await client_w.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def one_exchange(self, client_r, client_w):
        """Forwards one request and its response; whether the client connection stays open."""
        head = await read_head(client_r)
        if head is None:
            return False
        (method, target, version), headers = parse_head(head)
        req_kind, req_length = framing(headers)
        if req_kind == "none":
            req_kind, req_length = "length", 0
        client_close = "close" in tokens(headers, "connection") or (
            version.upper() == "HTTP/1.0" and "keep-alive" not in tokens(headers, "connection"))

        backend = self.backends.next()
        try:
            up_r, up_w = await asyncio.open_connection(*backend, limit=HEAD_LIMIT)
        except OSError as e:
            print(f"roundrobin: cannot reach {backend[0]}:{backend[1]}: {e}", file=sys.stderr)
            client_w.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await client_w.drain()
            return False

        upstream_open = True

        async def to_upstream(data):
            # Once the backend has answered (or gone), the rest of the body is read and dropped.
            if upstream_open:
                try:
                    up_w.write(data)
                    await up_w.drain()
                except (ConnectionError, OSError):
                    pass

        async def to_client(data):
            client_w.write(data)
            await client_w.drain()

        body = None
        try:
            await to_upstream(head)
            body = asyncio.ensure_future(copy_body(client_r, to_upstream, req_kind, req_length))
            status = None
            while True:
                rhead = await read_head(up_r)
                if rhead is None:
                    raise ConnectionError(f"{backend[0]}:{backend[1]} closed without an answer")
                (_, code, *_), rheaders = parse_head(rhead)
                status = int(code)
                await to_client(rhead)
                if 100 <= status < 200 and status != 101:
                    continue  # an interim answer (100 Continue): the final one follows
                break
            resp_kind, resp_length = framing(rheaders)
            if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
                resp_kind, resp_length = "length", 0
            elif resp_kind == "none":
                resp_kind = "close"
            await copy_body(up_r, to_client, resp_kind, resp_length)
        except BaseException:
            abort(up_w)
            if body is not None:
                body.cancel()
            raise
        upstream_open = False
        abort(up_w)
        if self.verbose:
            print(f"roundrobin: {method} {target} -> {backend[0]}:{backend[1]} {status}", file=sys.stderr)

        early = not body.done()
        if early:
            # Answered before the request body was in: read the rest (and drop it) so the client sees the
            # answer, not a reset; then close, as the backend did.
            try:
                await asyncio.wait_for(asyncio.shield(body), DRAIN_AFTER_EARLY_ANSWER_S)
            except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError, ValueError):
                body.cancel()
            return False
        if body.cancelled() or body.exception() is not None:
            return False
        backend_close = "close" in tokens(rheaders, "connection") or resp_kind == "close"
        return not (client_close or backend_close)


async def main():
    parser = argparse.ArgumentParser(description="Round-robin HTTP/1.1 load balancer (one request to each backend in turn).")
    parser.add_argument("--listen", type=parse_addr, required=True, help="HOST:PORT to listen on")
    parser.add_argument("--verbose", action="store_true", help="print one line per request to stderr")
    parser.add_argument("backends", type=parse_addr, nargs="+", help="HOST:PORT of each backend")
    args = parser.parse_args()

    backends = Backends(args.backends)
    balancer = Balancer(backends, args.verbose)
    server = await asyncio.start_server(balancer.serve_connection, args.listen[0], args.listen[1], limit=HEAD_LIMIT, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"roundrobin: listening on {args.listen[0]}:{args.listen[1]}, {len(args.backends)} backends", file=sys.stderr, flush=True)
    await stop.wait()
    server.close()  # open connections are cut when the loop ends
    print(backends.report(), file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
