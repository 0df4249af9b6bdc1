"""A minimal aiohttp client for the fake upstream, with one session per event loop.

A ``ClientSession`` holds a connection pool bound to the event loop that created
it, so it is reused by every request served on that loop and never handed to
another loop. Errors are mapped to the library's ``UpstreamError`` /
``UpstreamTimeout`` here, in one place.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping
from typing import Any

import aiohttp

from django_async_cbv import UpstreamError, UpstreamTimeout

#: Seconds one upstream call may take, connecting included.
REQUEST_TIMEOUT = 10.0

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def get_session() -> aiohttp.ClientSession:
    """Return the running loop's session, creating it on first use."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        # No cookie jar: nothing an upstream sets may leak into another user's call.
        session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        _sessions[loop] = session
    return session


async def close_session() -> None:
    """Close the running loop's session, if it has one (on server shutdown)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


async def get_json(url: str, *, params: Mapping[str, str] | None = None) -> Any:
    """GET ``url`` and decode its JSON body; raise ``UpstreamError`` on any failure.

    Each call is bounded by ``REQUEST_TIMEOUT``; callers wanting less wrap it
    (``AsyncView.gather(timeout=...)`` does).
    """
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    try:
        async with get_session().get(url, params=params, timeout=timeout) as response:
            body = await response.read()
            if response.status >= 400:
                raise UpstreamError(
                    f"GET {url} answered {response.status}",
                    status=response.status,
                    body=body,
                    url=url,
                    headers=dict(response.headers),
                )
            return json.loads(body)
    except TimeoutError as exc:  # aiohttp's timeouts are TimeoutError subclasses
        raise UpstreamTimeout(f"GET {url} took longer than {REQUEST_TIMEOUT:g}s", url=url) from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"GET {url} failed: {type(exc).__name__}", url=url) from exc
    except ValueError as exc:  # invalid JSON (json.JSONDecodeError) or bad UTF-8
        raise UpstreamError(f"GET {url} answered with invalid JSON", url=url) from exc
