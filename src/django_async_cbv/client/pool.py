"""The pooled aiohttp sessions: one per event loop and origin (internal)."""

from __future__ import annotations

import asyncio

import aiohttp

from django_async_cbv._redis import loops as _loops


async def _aclose_sessions(sessions: list[aiohttp.ClientSession]) -> None:
    await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)


#: The aiohttp sessions of each event loop, by origin.
sessions: _loops.PerLoop[aiohttp.ClientSession] = _loops.PerLoop(
    "aiohttp sessions", _aclose_sessions
)


def _new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        # No cookie jar: cookies set by an upstream for one user's call must not be
        # sent with the next call, which may be another user's.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Each attempt is bounded by the client's own timeout, body read included.
        timeout=aiohttp.ClientTimeout(total=None),
        # Proxies and .netrc from the environment are opt-in for a library, not implied.
        trust_env=False,
        raise_for_status=False,
    )


def _usable(session: aiohttp.ClientSession) -> bool:
    return not session.closed
