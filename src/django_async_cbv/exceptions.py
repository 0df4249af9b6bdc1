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
from typing import Any

__all__ = [
    "AsyncCBVError",
    "CircuitOpenError",
    "HandlerTimeout",
    "ProblemError",
    "UpstreamError",
    "UpstreamTimeout",
    "status_title",
]

# Members RFC 9457 defines for every problem; extensions may not shadow them.
_RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail"})

# The reason phrases of the error statuses, as their RFCs word them. A fixed table,
# not http.HTTPStatus, whose phrases change between Python versions (3.13 moved
# from RFC 7231's "Request Entity Too Large" to RFC 9110's "Content Too Large").
_TITLES: dict[int, str] = {
    # RFC 9110, section 15.5 (client errors) ...
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    # RFC 9110 15.5.19 reserves 418 without a phrase; RFC 2324 2.3.2 gives this one.
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    426: "Upgrade Required",
    # ... and section 15.6 (server errors).
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    # Other RFCs in the IANA status code registry.
    423: "Locked",  # RFC 4918
    424: "Failed Dependency",  # RFC 4918
    425: "Too Early",  # RFC 8470
    428: "Precondition Required",  # RFC 6585
    429: "Too Many Requests",  # RFC 6585
    431: "Request Header Fields Too Large",  # RFC 6585
    451: "Unavailable For Legal Reasons",  # RFC 7725
    506: "Variant Also Negotiates",  # RFC 2295
    507: "Insufficient Storage",  # RFC 4918
    508: "Loop Detected",  # RFC 5842
    510: "Not Extended",  # RFC 2774
    511: "Network Authentication Required",  # RFC 6585
}


def status_title(status: int) -> str:
    """Return the default problem title of an error ``status``: its RFC reason phrase.

    The same on every Python version. A status without a registered phrase gets
    ``"Client Error"`` (4xx) or ``"Server Error"`` (5xx).
    """
    title = _TITLES.get(status)
    if title is None:
        return "Client Error" if status < 500 else "Server Error"
    return title


class AsyncCBVError(Exception):
    """Base class of every exception this library raises on purpose."""


class ProblemError(AsyncCBVError):
    """Raise anywhere in a view to answer with an RFC 9457 problem response.

    ``title`` defaults to the status's RFC reason phrase (:func:`status_title`, the
    same on every Python) and ``type`` to ``"about:blank"``.
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
            title = status_title(status)
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
