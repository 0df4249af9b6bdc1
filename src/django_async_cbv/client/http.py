"""``AsyncHTTPClient``: calls to one upstream service over aiohttp (see the package)."""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from django_async_cbv._validation import positive_number, whole_number
from django_async_cbv.breaker import CircuitBreaker, CircuitState, get_breaker, upstream_unwell
from django_async_cbv.breaker.calls import _CallTimeout
from django_async_cbv.breaker.state import FAILURE, NEUTRAL, SUCCESS
from django_async_cbv.exceptions import UpstreamError, UpstreamTimeout

from . import urls
from .errors import _MAPPED, _retry_after, _retryable, _upstream_error
from .pool import _new_session, _usable, sessions
from .response import UpstreamResponse, _shown

__all__ = ["DEFAULT_MAX_BODY_SIZE", "IDEMPOTENT_METHODS", "AsyncHTTPClient"]

#: Bytes a response body may have unless the client says otherwise (10 MiB).
DEFAULT_MAX_BODY_SIZE: Final = 10 * 1024 * 1024
#: Methods that may be retried: repeating them has the effect of sending them once
#: (RFC 9110, section 9.2.2).
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_CHUNK = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 205})


def _positive(value: object, what: str) -> float:
    return positive_number(value, f"AsyncHTTPClient {what} must be a positive number")


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
        self._base = urls.parse_base_url(base_url)
        self.base_url = base_url
        self.timeout = None if timeout is None else _positive(timeout, "timeout")
        self.retries = whole_number(
            retries, 0, "AsyncHTTPClient retries must be a whole number >= 0"
        )
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
        if max_body_size is not None:
            whole_number(
                max_body_size,
                1,
                "AsyncHTTPClient max_body_size must be a positive number of bytes or None",
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
        return urls.resolve(self._base, path)

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
        if cap is None or method == "HEAD" or response.status == 304:
            # No body follows a HEAD or a 304, whatever size Content-Length announces
            # (that of the representation a GET would get: RFC 9110, 8.6).
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
