"""A real HTTP upstream on loopback for the client tests, in a thread with its own loop.

It counts hits per path and the TCP connections it accepted (distinct client
ports), and answers from a plan the test sets::

    upstream.plan("/api/flaky", [503, 503, 200])       # one status per hit, then 200
    upstream.plan("/api/busy", [(503, {"Retry-After": "3"})])
    upstream.plan("/api/users/1", [(200, {}, {"id": 1})])  # this JSON body instead

Every answer is JSON: ``{"path", "hit", "cookie"}`` (the Cookie header it got).
``/api/cookie`` sets a cookie; ``/api/big/<n>`` streams ``n`` bytes (chunked, or with
``Content-Length`` under ``?length=1``; headers only for HEAD); ``/api/hang`` never
answers (until stop); ``/api/text`` answers plain text in latin-1.

``raw_port`` is a plain TCP server that answers each connection with the bytes
``raw_reply`` holds, then closes it: for malformed and truncated responses.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterator
from typing import Any

from aiohttp import web

Plan = int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], Any]


class Upstream:
    """See the module docstring."""

    def __init__(self) -> None:
        self.hits: collections.Counter[str] = collections.Counter()
        self.connections: set[tuple[str, int]] = set()
        self.plans: dict[str, collections.deque[Plan]] = {}
        self.raw_reply = b""
        self.port = 0
        self.raw_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def plan(self, path: str, answers: list[Plan]) -> None:
        self.plans[path] = collections.deque(answers)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the upstream did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/api/cookie", self._cookie)
        app.router.add_get("/api/big/{size}", self._big)
        app.router.add_get("/api/hang", self._hang)
        app.router.add_get("/api/text", self._text)
        app.router.add_route("*", "/{tail:.*}", self._planned)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        assert server.sockets
        self.port = server.sockets[0].getsockname()[1]
        raw = await asyncio.start_server(self._raw, "127.0.0.1", 0)
        self.raw_port = raw.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            raw.close()
            await runner.cleanup()

    def _count(self, request: web.Request) -> int:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer is not None:
            self.connections.add((peer[0], peer[1]))
        self.hits[request.rel_url.raw_path] += 1  # as sent: percent escapes kept
        return self.hits[request.rel_url.raw_path]

    async def _planned(self, request: web.Request) -> web.Response:
        hit = self._count(request)
        plan = self.plans.get(request.rel_url.raw_path)
        status, headers, payload = 200, {}, None
        if plan:
            answer = plan.popleft()
            if isinstance(answer, int):
                status = answer
            elif len(answer) == 2:
                status, headers = answer
            else:
                status, headers, payload = answer
        if payload is not None:
            return web.json_response(payload, status=status, headers=headers)
        body: dict[str, Any] = {
            "path": str(request.rel_url),
            "method": request.method,
            "hit": hit,
            "cookie": request.headers.get("Cookie"),
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
        if request.can_read_body:
            body["body"] = (await request.read()).decode()
        if status in (204, 205):
            return web.Response(status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    async def _cookie(self, request: web.Request) -> web.Response:
        self._count(request)
        response = web.json_response({"set": True})
        response.set_cookie("session", "secret-of-user-a", path="/")
        return response

    async def _big(self, request: web.Request) -> web.StreamResponse:
        self._count(request)
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        response.content_type = "application/json"
        if request.query.get("length"):
            response.content_length = size
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in _chunks(size) if request.method != "HEAD" else ():
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _hang(self, request: web.Request) -> web.Response:
        self._count(request)
        assert self._stop is not None
        await self._stop.wait()
        return web.json_response({})

    async def _text(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.Response(
            body="café".encode("latin-1"), content_type="text/plain", charset="latin-1"
        )

    async def _raw(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.hits["raw"] += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.raw_reply)
        await writer.drain()
        writer.close()


def _chunks(size: int) -> Iterator[bytes]:
    """``size`` bytes of a JSON string (``"xxx..."``), in 16 KiB pieces."""
    if size < 2:
        yield b"1"[:size]
        return
    body = b'"' + b"x" * (size - 2) + b'"'
    for start in range(0, size, 16384):
        yield body[start : start + 16384]
