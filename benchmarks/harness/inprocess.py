"""Driving Django's ASGI handler in-process: one request, no server, no sockets."""

from __future__ import annotations

import asyncio
from typing import Any


def scope_for(path: str, method: str = "GET", body: bytes = b"") -> dict[str, Any]:
    """Return an HTTP scope for ``method path`` from 127.0.0.1 (a JSON body if given)."""
    headers = [(b"host", b"127.0.0.1")]
    if body:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def one_request(handler: Any, scope: dict[str, Any], body: bytes = b"") -> int:
    """Send one request through ``handler`` and return the response status."""
    first = True
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: wait until Django cancels us
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await handler(scope, receive, send)
    return status
