"""What one request's caching is made of: its validated settings and key names."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from django_async_cbv import _redis
from django_async_cbv._validation import is_number

from .entry import Entry
from .headers import _is_header_name, _request_header

#: Bytes of body above which a response is served but not stored (1 MiB).
DEFAULT_MAX_ENTRY_SIZE: Final = 1024 * 1024


def digest(*parts: str | bytes | None) -> str:
    """SHA-256 of length-prefixed parts (None, an absent value, differs from "")."""
    hasher = hashlib.sha256()
    for part in parts:
        if part is None:
            hasher.update(b"-;")
            continue
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        hasher.update(b"%d:" % len(data))
        hasher.update(data)
    return hasher.hexdigest()


def key_namespace(alias: str, prefix: str) -> str:
    """The start of every key name of a view's cache (``prefix``: the digest of its prefix).

    ``async_cbv:c:<prefix>``; on a Redis Cluster ``async_cbv:c:{<prefix>}``: the digest is
    the hash tag, so all keys of one view (its generation, every entry, vary, lock and
    pass key) share one slot and a lookup is one script on one primary.
    """
    try:
        cluster = _redis.is_cluster_alias(alias)
    except ImproperlyConfigured:
        cluster = False  # the alias's calls fail, and are logged, anyway
    return f"async_cbv:c:{{{prefix}}}" if cluster else f"async_cbv:c:{prefix}"


def _non_negative(value: object) -> bool:
    return is_number(value) and value >= 0


@dataclass
class _Plan:
    """The cache settings and names of one request."""

    alias: str
    timeout: float
    stale_ttl: float
    vary_on: tuple[str, ...]
    per_user: bool
    prefix: str  # digest of the key prefix
    base: str  # the URL-level key (get_cache_key())
    max_entry_size: int | None = None  # bytes of body; None: no limit

    @functools.cached_property
    def namespace(self) -> str:
        return key_namespace(self.alias, self.prefix)

    @property
    def gen_name(self) -> str:
        return f"{self.namespace}:gen"

    @property
    def vary_name(self) -> str:
        return f"{self.namespace}:vary:{self.base}"

    @property
    def lock_name(self) -> str:
        return f"{self.namespace}:lock:{self.base}"

    @property
    def pass_name(self) -> str:
        return f"{self.namespace}:pass:{self.base}"

    def entry_name(self, request: HttpRequest, vary: tuple[str, ...]) -> str:
        parts: list[str | None] = [self.base]
        for name in vary:
            parts += [name, _request_header(request, name)]
        return f"{self.namespace}:e:{digest(*parts)}"


class _StaticPlan(NamedTuple):
    """The validated values of a view's cache attributes that do not depend on settings."""

    alias: str | None  # None: ASYNC_CBV["CACHE_ALIAS"]
    timeout: float
    stale_ttl: float
    vary_on: tuple[str, ...]
    per_user: bool
    prefix: str  # digest of the key prefix (by default the view's dotted path)
    max_entry_size: int | None  # bytes of body; None: no limit


@functools.lru_cache(maxsize=512, typed=True)  # typed: True, 1 and 1.0 are told apart
def _static_plan(
    module: str,
    view: str,
    timeout: Any,
    alias: Any,
    prefix: Any,
    vary_on: Any,
    per_user: Any,
    stale_ttl: Any,
    max_entry_size: Any = DEFAULT_MAX_ENTRY_SIZE,
) -> _StaticPlan:
    """Validate the values (remembering those found valid) and derive what they give."""
    _validate(
        view,
        {
            "cache_timeout": timeout,
            "cache_alias": alias,
            "cache_key_prefix": prefix,
            "cache_vary_on": vary_on,
            "cache_per_user": per_user,
            "cache_stale_ttl": stale_ttl,
            "cache_max_entry_size": max_entry_size,
        },
    )
    return _StaticPlan(
        alias=alias or None,
        timeout=float(timeout),
        stale_ttl=float(stale_ttl),
        vary_on=_header_names(vary_on),
        per_user=bool(per_user),
        prefix=digest(prefix or f"{module}.{view}"),
        max_entry_size=max_entry_size,
    )


def _validate(view: str, values: Mapping[str, Any]) -> None:
    timeout = values["cache_timeout"]
    if not _non_negative(timeout) or timeout == 0:
        raise ImproperlyConfigured(
            f"{view}.cache_timeout must be a positive number of seconds, not {timeout!r}."
        )
    stale = values["cache_stale_ttl"]
    if not _non_negative(stale):
        raise ImproperlyConfigured(
            f"{view}.cache_stale_ttl must be a number of seconds >= 0, not {stale!r}."
        )
    for name in ("cache_alias", "cache_key_prefix"):
        value = values[name]
        if value is not None and not (isinstance(value, str) and value):
            raise ImproperlyConfigured(
                f"{view}.{name} must be None or a non-empty string, not {value!r}."
            )
    vary_on = values["cache_vary_on"]
    if isinstance(vary_on, str) or not isinstance(vary_on, Iterable):
        raise ImproperlyConfigured(
            f"{view}.cache_vary_on must be a list of header names, not {vary_on!r}."
        )
    bad = [name for name in vary_on if not _is_header_name(name)]
    if bad:
        raise ImproperlyConfigured(
            f"{view}.cache_vary_on has invalid header name(s): {', '.join(map(repr, bad))}."
        )
    size = values.get("cache_max_entry_size")
    if size is not None and not (type(size) is int and size > 0):
        raise ImproperlyConfigured(
            f"{view}.cache_max_entry_size must be a positive number of bytes or None, not {size!r}."
        )
    if not isinstance(values["cache_per_user"], bool):
        raise ImproperlyConfigured(
            f"{view}.cache_per_user must be True or False, not {values['cache_per_user']!r}."
        )


def _header_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({name.lower() for name in names}))


def _authenticated(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and getattr(user, "is_authenticated", False))


def _user_identity(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    authorization = request.META.get("HTTP_AUTHORIZATION")
    if authorization:
        return "authorization:" + hashlib.sha256(authorization.encode()).hexdigest()
    return "anonymous"


def _same_variant(request: HttpRequest, plan: _Plan, entry: Entry) -> bool:
    """Whether ``entry`` (another request's) is the variant this request is keyed to."""
    return plan.entry_name(request, entry.vary) == entry.name
