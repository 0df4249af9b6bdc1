"""Upstream failures: aiohttp's exceptions mapped, and when to try again (internal)."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from typing import Final

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from django_async_cbv.exceptions import UpstreamError, UpstreamTimeout

from .response import _shown

#: Statuses that say "try again": the gateway or the service is briefly unavailable.
RETRY_STATUSES: Final = frozenset({502, 503, 504})

# Connection failures a retry may cure (not TLS or fingerprint errors: they persist).
_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
_PERMANENT_CONNECTION_ERRORS = (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch)


def _upstream_error(exc: BaseException, method: str, url: str) -> UpstreamError:
    """Map an exception raised while calling ``url`` to ``UpstreamError``: the one place."""
    where = f"{method} {_shown(url)}"
    if isinstance(exc, TimeoutError):  # asyncio's, and aiohttp's ServerTimeoutError family
        return UpstreamTimeout(f"{where} timed out", url=url)
    if isinstance(exc, aiohttp.ClientResponseError):
        # Raised for a response aiohttp could not parse; its ``status`` is aiohttp's
        # guess (400), not an upstream status, so ``status`` stays None.
        return UpstreamError(f"{where} failed: {type(exc).__name__}: {exc.message}", url=url)
    return UpstreamError(f"{where} failed: {type(exc).__name__}: {exc}", url=url)


#: Exceptions :func:`_upstream_error` maps (everything aiohttp raises for a call).
_MAPPED = (aiohttp.ClientError, HttpProcessingError, OSError, TimeoutError, EOFError)


def _retryable(exc: UpstreamError) -> bool:
    """Whether another attempt may succeed where this one failed."""
    if exc.status is not None:
        return exc.status in RETRY_STATUSES
    if isinstance(exc, UpstreamTimeout):
        return True
    cause = exc.__cause__
    return isinstance(cause, _CONNECTION_ERRORS) and not isinstance(
        cause, _PERMANENT_CONNECTION_ERRORS
    )


_DELAY_SECONDS = re.compile(r"[0-9]+")
_LONGEST_RETRY_AFTER = 1e9  # longer delays (any over max_retry_after end the retries)


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds ``Retry-After`` asks for (delay-seconds or an HTTP-date), or None."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if _DELAY_SECONDS.fullmatch(value):  # ASCII digits only ("²".isdigit() is true)
        return float(value) if len(value) <= 9 else _LONGEST_RETRY_AFTER
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - now)
