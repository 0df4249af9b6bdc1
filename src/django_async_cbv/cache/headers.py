"""Header names and values as the cache reads and writes them (internal)."""

from __future__ import annotations

import functools
import re
from typing import Final

from django.http import HttpRequest, HttpResponseBase
from django.http.request import HttpHeaders

X_CACHE: Final = "X-Cache"
#: Headers that belong to one request/response exchange: never stored, never replayed.
PER_REQUEST_HEADERS: Final = frozenset(
    {"set-cookie", "ratelimit", "ratelimit-policy", "x-cache", "age", "content-length"}
)
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")


def _request_header(request: HttpRequest, name: str) -> str | None:
    """``request.headers.get(name)``, read from ``META`` without building ``headers``."""
    return request.META.get(_meta_key(name))


@functools.lru_cache(maxsize=256)
def _meta_key(name: str) -> str:
    return str(HttpHeaders.to_wsgi_name(name))


def _vary_names(response: HttpResponseBase) -> list[str]:
    """The response's ``Vary`` field names, trimmed and lower-cased, in order, unique."""
    names: list[str] = []
    for value in response.headers.get("Vary", "").split(","):
        name = value.strip().lower()
        if name and name not in names:
            names.append(name)
    return names


def _seconds(value: str | None) -> int | None:
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def _is_header_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in value)
    )
