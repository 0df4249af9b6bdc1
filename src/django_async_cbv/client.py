"""``AsyncHTTPClient``: calls to one upstream service over aiohttp.

::

    async with AsyncHTTPClient("http://users.internal/api", timeout=5, retries=2,
                               circuit_breaker="users") as client:
        user = await client.get_json("/users/42")   # http://users.internal/api/users/42

- **Sessions.** One pooled ``aiohttp.ClientSession`` per event loop and origin,
  shared by every client object of that origin and closed when its loop shuts down
  (or by :func:`django_async_cbv.aclose`); leaving ``async with`` closes nothing.
  Sessions have no cookie jar: a cookie an upstream sets for one user's call is
  never sent with another's. Redirects are not followed (they could leave the origin).
- **Paths** are appended to the base URL's path; see ``_http_urls`` for what is refused.
- **Errors.** Every failure is raised, never turned into ``None``::

      UpstreamError          non-2xx (.status, .body), connection errors, bad bodies
      └── UpstreamTimeout    an attempt outlived ``timeout`` (also a TimeoutError)

  aiohttp's exceptions are mapped in :func:`_upstream_error`, and nowhere else.
- **Retries** (``retries`` extra attempts) only for idempotent methods, only after a
  connection error, a timeout or a 502/503/504, waiting for exponential backoff with
  full jitter or the upstream's ``Retry-After``, whichever is longer.
- **Circuit breaker.** The whole call, retries included, runs inside the breaker:
  it counts once; while the circuit is open ``CircuitOpenError`` is raised at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random as _random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import _http_urls, _loops
from .breaker import CircuitBreaker, CircuitState, get_breaker, upstream_unwell
from .breaker.calls import _CallTimeout
from .breaker.state import FAILURE, NEUTRAL, SUCCESS
from .exceptions import UpstreamError, UpstreamTimeout

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "AsyncHTTPClient",
    "UpstreamResponse",
]

#: Bytes a response body may have unless the client says otherwise (10 MiB).
DEFAULT_MAX_BODY_SIZE: Final = 10 * 1024 * 1024
#: Methods that may be retried: repeating them has the effect of sending them once
#: (RFC 9110, section 9.2.2).
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses that say "try again": the gateway or the service is briefly unavailable.
RETRY_STATUSES: Final = frozenset({502, 503, 504})

_CHUNK = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 205})
# Connection failures a retry may cure (not TLS or fingerprint errors: they persist).
_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
_PERMANENT_CONNECTION_ERRORS = (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch)


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A fully read upstream response.

    ``headers`` is case-insensitive and keeps repeated headers; ``body`` is the
    decoded (decompressed) body.
    """

    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes = field(repr=False)

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body as text, in the charset of ``Content-Type`` (UTF-8 if none is given)."""
        charset = _charset(self.headers.get("Content-Type", "")) or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON; ``UpstreamError`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
            raise UpstreamError(
                f"{self.method} {_shown(self.url)} answered {self.status} with a body "
                "that is not JSON",
                status=self.status,
                body=self.body,
                url=self.url,
                headers=self.headers,
            ) from exc


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _shown(url: str) -> str:
    """``url`` without its query, for messages (queries may carry secrets)."""
    return url.partition("?")[0]


# -- sessions ------------------------------------------------------------------------


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


# -- errors --------------------------------------------------------------------------


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


# -- the client ----------------------------------------------------------------------


def _positive(value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"AsyncHTTPClient {what} must be a positive number, not {value!r}")
    return float(value)


class AsyncHTTPClient:
    """Call one upstream service: paths under ``base_url``; see the module docstring.

    ``timeout`` bounds each attempt (connecting, sending, reading the whole body),
    ``None`` for no bound. ``retries`` extra attempts follow a retryable failure of
    an idempotent call, after ``backoff * 2**n`` seconds at most (full jitter, at
    most ``max_backoff``) or the upstream's ``Retry-After``; a ``Retry-After`` longer
    than ``max_retry_after`` ends the retries. ``circuit_breaker`` is a breaker name
    (:func:`~django_async_cbv.get_breaker`) or a :class:`~django_async_cbv.CircuitBreaker`.
    ``headers`` are sent with every call. A body longer than ``max_body_size`` bytes
    (``None``: no limit) raises ``UpstreamError`` without being read further.
    ``sleep``, ``random`` and ``clock`` (wall seconds, for HTTP dates) replace
    ``asyncio.sleep``, ``random.random`` and ``time.time``: for tests.

    The object holds no connection: make one per service at import time and share
    it, or make one per call; both use the same pooled session.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | None = 10.0,
        retries: int = 2,
        circuit_breaker: str | CircuitBreaker | None = None,
        headers: Mapping[str, str] | None = None,
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        max_retry_after: float = 30.0,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        random: Callable[[], float] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._base = _http_urls.parse_base_url(base_url)
        self.base_url = base_url
        self.timeout = None if timeout is None else _positive(timeout, "timeout")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(
                f"AsyncHTTPClient retries must be a whole number >= 0, not {retries!r}"
            )
        self.retries = retries
        if circuit_breaker is not None and not (
            isinstance(circuit_breaker, CircuitBreaker)
            or (isinstance(circuit_breaker, str) and circuit_breaker)
        ):
            raise TypeError(
                "AsyncHTTPClient circuit_breaker must be a breaker name or a CircuitBreaker, "
                f"not {circuit_breaker!r}"
            )
        self.circuit_breaker = circuit_breaker
        self.headers: CIMultiDict[str] = CIMultiDict(headers or {})
        if max_body_size is not None and (
            isinstance(max_body_size, bool)
            or not isinstance(max_body_size, int)
            or max_body_size < 1
        ):
            raise ValueError(
                "AsyncHTTPClient max_body_size must be a positive number of bytes or None, "
                f"not {max_body_size!r}"
            )
        self.max_body_size = max_body_size
        self.backoff = _positive(backoff, "backoff")
        self.max_backoff = _positive(max_backoff, "max_backoff")
        self.max_retry_after = _positive(max_retry_after, "max_retry_after")
        self._sleep = sleep or asyncio.sleep
        self._random = random or _random.random
        self._clock = clock or time.time

    def __repr__(self) -> str:
        return f"<AsyncHTTPClient {self.base_url!r}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the block; the pooled session stays open for the next call."""

    # -- public calls ----------------------------------------------------------------

    def url(self, path: str) -> URL:
        """The URL ``path`` resolves to; ``ValueError`` if it would leave the base URL."""
        return _http_urls.resolve(self._base, path)

    def get_circuit_breaker(self) -> CircuitBreaker | None:
        """The breaker calls go through, or None. Override to choose one per call."""
        spec = self.circuit_breaker
        if isinstance(spec, str):
            return get_breaker(spec)
        return spec

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """Send one logical call (retries included) and return the fully read response.

        ``json`` is sent as a JSON body, ``data`` as it is (not both). Raises
        ``UpstreamError`` for a non-2xx answer or a failure, ``UpstreamTimeout`` when
        the last attempt timed out, ``CircuitOpenError`` while the breaker is open,
        and ``ValueError`` (before any I/O) for a path that leaves the base URL.
        """
        method = method.upper()
        url = self.url(path)
        if json is not None and data is not None:
            raise ValueError("Pass json= or data=, not both")
        send_headers = self.headers
        if headers:
            send_headers = send_headers.copy()
            send_headers.update(headers)
        payload: dict[str, Any] = {"headers": send_headers}
        if params:
            payload["params"] = params
        if json is not None:
            payload["json"] = json
        elif data is not None:
            payload["data"] = data
        breaker = self.get_circuit_breaker()
        if breaker is None:
            return await self._call(method, url, payload, None)
        classify = breaker._classify

        def outcome(exc: BaseException) -> int:
            counted = classify(exc)
            if counted == FAILURE and not upstream_unwell(exc):
                return SUCCESS if isinstance(exc, UpstreamError) else NEUTRAL
            return counted

        try:
            return await breaker._guard(self._call, (method, url, payload, breaker), {}, outcome)
        except _CallTimeout as exc:
            raise UpstreamTimeout(
                f"{method} {_shown(str(url))}: circuit {breaker.name!r} timed out "
                f"after {breaker.timeout:g}s",
                url=str(url),
            ) from exc

    async def get(self, path: str, **kwargs: Any) -> UpstreamResponse:
        """``GET path``; see :meth:`request`."""
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> UpstreamResponse:
        """``POST path`` (never retried); see :meth:`request`."""
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> UpstreamResponse:
        """``PUT path``; see :meth:`request`."""
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> UpstreamResponse:
        """``PATCH path`` (never retried); see :meth:`request`."""
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> UpstreamResponse:
        """``DELETE path``; see :meth:`request`."""
        return await self.request("DELETE", path, **kwargs)

    async def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, then the body decoded as JSON.

        A 204 or 205 answer gives ``None``; any other empty or non-JSON body raises
        ``UpstreamError``.
        """
        response = await self.request(method, path, **kwargs)
        if response.status in _NO_BODY_STATUSES and not response.body:
            return None
        return response.json()

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        """``GET path`` and return its decoded JSON body; see :meth:`request_json`."""
        return await self.request_json("GET", path, **kwargs)

    async def post_json(self, path: str, **kwargs: Any) -> Any:
        """``POST path`` and return its decoded JSON body; see :meth:`request_json`."""
        return await self.request_json("POST", path, **kwargs)

    async def put_json(self, path: str, **kwargs: Any) -> Any:
        """``PUT path`` and return its decoded JSON body; see :meth:`request_json`."""
        return await self.request_json("PUT", path, **kwargs)

    async def patch_json(self, path: str, **kwargs: Any) -> Any:
        """``PATCH path`` and return its decoded JSON body; see :meth:`request_json`."""
        return await self.request_json("PATCH", path, **kwargs)

    async def delete_json(self, path: str, **kwargs: Any) -> Any:
        """``DELETE path`` and return its decoded JSON body; see :meth:`request_json`."""
        return await self.request_json("DELETE", path, **kwargs)

    # -- attempts --------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        url: URL,
        payload: dict[str, Any],
        breaker: CircuitBreaker | None,
    ) -> UpstreamResponse:
        """One logical call: attempts, with waits between them."""
        attempts = 1 + (self.retries if method in IDEMPOTENT_METHODS else 0)
        for attempt in range(attempts):
            try:
                return await self._attempt(method, url, payload)
            except UpstreamError as exc:
                if attempt + 1 == attempts or not _retryable(exc):
                    raise
                # Another call may have opened the circuit meanwhile: stop hammering.
                if breaker is not None and breaker.state is CircuitState.OPEN:
                    raise
                delay = self._delay(attempt, exc)
                if delay is None:
                    raise
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, exc: UpstreamError) -> float | None:
        """Seconds to wait before the next attempt; None to give up."""
        jittered = self._random() * min(self.max_backoff, self.backoff * 2.0**attempt)
        asked = _retry_after(exc.headers, self._clock()) if exc.status is not None else None
        if asked is None:
            return jittered
        if asked > self.max_retry_after:
            return None  # waiting less than asked is pointless, waiting longer too costly
        return max(asked, jittered)

    async def _attempt(self, method: str, url: URL, payload: dict[str, Any]) -> UpstreamResponse:
        """One request, read in full; aiohttp's errors mapped."""
        session = sessions.get_or_create(self._base.origin, _new_session, _usable)
        shown = str(url)
        try:
            async with asyncio.timeout(self.timeout):
                async with session.request(
                    method, url, allow_redirects=False, **payload
                ) as response:
                    headers = response.headers
                    status = response.status
                    body = await self._read(response, method, shown)
        except _MAPPED as exc:
            raise _upstream_error(exc, method, shown) from exc
        if not 200 <= status < 300:
            raise UpstreamError(
                f"{method} {_shown(shown)} answered {status}",
                status=status,
                body=body,
                url=shown,
                headers=headers,
            )
        return UpstreamResponse(method, shown, status, headers, body)

    async def _read(self, response: aiohttp.ClientResponse, method: str, url: str) -> bytes:
        """The whole body, never holding more than ``max_body_size`` bytes (plus one)."""
        cap = self.max_body_size
        if cap is None:
            return await response.read()
        length = response.content_length
        if length is not None and "Content-Encoding" not in response.headers:
            if length > cap:
                raise self._too_large(response, method, url)
            return await response.read()  # reads Content-Length bytes, no more
        buffer = bytearray()
        while True:
            chunk = await response.content.read(min(_CHUNK, cap + 1 - len(buffer)))
            if not chunk:
                return bytes(buffer)
            buffer += chunk
            if len(buffer) > cap:
                raise self._too_large(response, method, url)

    def _too_large(self, response: aiohttp.ClientResponse, method: str, url: str) -> UpstreamError:
        response.close()  # drop the connection rather than drain an oversized body
        return UpstreamError(
            f"{method} {_shown(url)} answered {response.status} with a body over "
            f"{self.max_body_size} bytes",
            status=response.status,
            url=url,
            headers=response.headers,
        )
