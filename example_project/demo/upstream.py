"""The demos' upstream calls, made with ``AsyncHTTPClient``.

The client keeps one pooled session per event loop and origin, so these helpers
make a client object per call: it costs nothing and reads the settings when used.
Errors arrive as ``UpstreamError`` / ``UpstreamTimeout`` (or ``CircuitOpenError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_async_cbv import AsyncHTTPClient

#: Seconds one upstream call may take, connecting included.
REQUEST_TIMEOUT = 10.0
#: The named breaker of the flaky demo (configured in ASYNC_CBV["CIRCUIT_BREAKERS"]).
FLAKY_BREAKER = "flaky-upstream"


async def get_json(origin: str, path: str, *, params: Mapping[str, str] | None = None) -> Any:
    """GET ``path`` of the fake upstream at ``origin``; decoded JSON or ``UpstreamError``.

    No retries: the fan-out demo shows each failure as it happens. Callers wanting
    less than ``REQUEST_TIMEOUT`` wrap it (``AsyncView.gather(timeout=...)`` does).
    """
    client = AsyncHTTPClient(origin, timeout=REQUEST_TIMEOUT, retries=0)
    return await client.get_json(path, params=params)


def flaky_client(origin: str) -> AsyncHTTPClient:
    """The client of the flaky demo: one retry, through the named breaker."""
    return AsyncHTTPClient(origin, timeout=2.0, retries=1, circuit_breaker=FLAKY_BREAKER)
