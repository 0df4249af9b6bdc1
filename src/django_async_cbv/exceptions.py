"""The exceptions django-async-cbv raises and maps to HTTP responses.

Hierarchy::

    AsyncCBVError
    ├── ProblemError             -> the problem it describes (any 4xx/5xx)
    ├── CircuitOpenError         -> 503 + Retry-After
    ├── HandlerTimeout           -> 504 (also a TimeoutError)
    └── UpstreamError            -> 502
        └── UpstreamTimeout      -> 504 (also a TimeoutError)

``AsyncView.handle_exception`` turns each of them into an RFC 9457 problem response;
anything else is re-raised so Django's own logging and ``handler500`` still run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

__all__ = [
    "AsyncCBVError",
    "CircuitOpenError",
    "HandlerTimeout",
    "ProblemError",
    "UpstreamError",
    "UpstreamTimeout",
]

# Members RFC 9457 defines for every problem; extensions may not shadow them.
_RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail"})


class AsyncCBVError(Exception):
    """Base class of every exception this library raises on purpose."""


class ProblemError(AsyncCBVError):
    """Raise anywhere in a view to answer with an RFC 9457 problem response.

    ``title`` defaults to the status phrase and ``type`` to ``"about:blank"``.
    Keyword ``extensions`` become extra members of the JSON object. Set
    ``headers`` (a dict) on the instance to add response headers, e.g.
    ``Retry-After``.
    """

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        type: str | None = None,
        **extensions: Any,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"ProblemError status must be an int from 400 to 599, not {status!r}")
        if title is None:
            try:
                title = HTTPStatus(status).phrase
            except ValueError:
                title = "Client Error" if status < 500 else "Server Error"
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type or "about:blank"
        self.extensions: dict[str, Any] = extensions
        self.headers: dict[str, str] = {}
        super().__init__(status, title, detail)

    def __str__(self) -> str:
        return f"{self.status} {self.title}" + (f": {self.detail}" if self.detail else "")

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as the JSON object sent to the client."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail if self.detail is not None else self.title,
        }
        for key, value in self.extensions.items():
            if key not in _RESERVED_MEMBERS:
                body[key] = value
        return body


class CircuitOpenError(AsyncCBVError):
    """A circuit breaker refused the call without running it.

    ``retry_after`` is the number of whole seconds (at least 1) until the
    breaker may let a probe through.
    """

    def __init__(self, name: str, retry_after: float = 1) -> None:
        self.name = name
        self.retry_after: int = max(1, math.ceil(retry_after))
        super().__init__(f"circuit {name!r} is open; retry after {self.retry_after}s")


class HandlerTimeout(AsyncCBVError, TimeoutError):
    """A view's handler ran longer than its ``timeout`` and was cancelled."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"the handler did not finish within {timeout:g} seconds")


class UpstreamError(AsyncCBVError):
    """An upstream HTTP service failed or answered with a non-2xx status.

    ``status`` is the upstream status (``None`` when no response came), ``body``
    the upstream body. Neither is ever sent to this service's clients.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: bytes = b"",
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.url = url
        self.headers: Mapping[str, str] = headers or {}
        super().__init__(message)


class UpstreamTimeout(UpstreamError, TimeoutError):
    """An upstream call did not complete within its timeout."""
