"""``AsyncCacheMixin``: response caching as a request stage, with request coalescing.

The mixin is one request stage (:data:`~django_async_cbv.stages.CACHE`): after the
user, the rate limit and the access checks, before the circuit breaker and the
handler. A GET (or HEAD) is answered from the cache when an entry exists; otherwise
the handler runs once for all concurrent requests of one key, and its response is
stored when every storage rule allows it.

Stores: with django-redis or Django's ``RedisCache`` behind the alias, the stage
talks to Redis directly with redis-py's asyncio client; a hit is one script (the
view's generation, the URL's learned ``Vary`` names and the entry together). Other
backends go through Django's ``a*`` cache methods. Entries are bytes in a format of
this module (a JSON head and the body), never pickles.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import random
import re
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.http.request import HttpHeaders
from django.utils import timezone, translation

from . import _redis
from ._store_health import health_of, is_definitive
from .conf import get_settings
from .stages import CACHE, USER, CallNext, request_stage

if TYPE_CHECKING:
    from ._redis import Channel

__all__ = ["AsyncCacheMixin"]

logger = logging.getLogger("django_async_cbv")

X_CACHE: Final = "X-Cache"
#: Headers that belong to one request/response exchange: never stored, never replayed.
PER_REQUEST_HEADERS: Final = frozenset(
    {"set-cookie", "ratelimit", "ratelimit-policy", "x-cache", "age", "content-length"}
)
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAGIC: Final = b"django-async-cbv:cache:1\n"
#: Seconds a leader may hold a key's lock before another request may take over.
LOCK_TIMEOUT: Final = 10.0
#: Longest pause between two looks at a key another process is computing.
_POLL_MAX: Final = 0.1

_ABSENT: Final = object()
#: Where ``cache_header_stage`` runs: before every built-in stage, so it sees their answers.
CACHE_HEADER: Final = USER - 10
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")


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


# -------------------------------------------------------------------- header parsing


def _request_header(request: HttpRequest, name: str) -> str | None:
    """``request.headers.get(name)``, read from ``META`` without building ``headers``."""
    return request.META.get(_meta_key(name))


@functools.lru_cache(maxsize=256)
def _meta_key(name: str) -> str:
    return str(HttpHeaders.to_wsgi_name(name))


def _directives(value: str) -> dict[str, str | None]:
    """``Cache-Control`` directives by lower-case name (quoted commas are rare; a
    comma inside a quoted value splits it, which only ever adds directives)."""
    found: dict[str, str | None] = {}
    for item in value.split(","):
        name, sep, argument = item.strip().partition("=")
        name = name.strip().lower()
        if name:
            found.setdefault(name, argument.strip().strip('"') if sep else None)
    return found


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


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): ``W/`` prefixes are ignored; ``*`` matches."""
    if if_none_match.strip() == "*":
        return True
    target = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == target for tag in if_none_match.split(","))


# -------------------------------------------------------------------- entries


@dataclass
class Entry:
    """A stored response: status, headers and body, with its times (Unix seconds)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    etag: str
    stored_at: float
    fresh_until: float
    generation: str = ""
    vary: tuple[str, ...] = ()
    name: str = ""  # the entry's key name: which variant of the URL it is

    def dumps(self) -> bytes:
        head = {
            "status": self.status,
            "reason": self.reason,
            "headers": self.headers,
            "etag": self.etag,
            "stored_at": self.stored_at,
            "fresh_until": self.fresh_until,
            "generation": self.generation,
            "vary": list(self.vary),
            "name": self.name,
        }
        return _MAGIC + json.dumps(head, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def loads(cls, data: object) -> Entry | None:
        """The entry in ``data``, or None when it is not a valid one.

        Nothing in ``data`` is executed, and anything malformed (whoever wrote it to a
        shared store) is a miss, never an error: the status must be a real one, the
        times finite, and every header a field name and a value without line breaks.
        """
        if not isinstance(data, bytes) or not data.startswith(_MAGIC):
            return None
        head, sep, body = data[len(_MAGIC) :].partition(b"\n")
        if not sep:
            return None
        try:
            meta = json.loads(head)
            headers = meta["headers"]
            if not isinstance(headers, list) or not all(
                isinstance(pair, list)
                and len(pair) == 2
                and _is_header_name(pair[0])
                and isinstance(pair[1], str)
                and not _BAD_VALUE.search(pair[1])
                for pair in headers
            ):
                return None
            entry = cls(
                status=meta["status"],
                reason=meta["reason"],
                headers=[(name, value) for name, value in headers],
                body=body,
                etag=meta["etag"],
                stored_at=meta["stored_at"],
                fresh_until=meta["fresh_until"],
                generation=meta["generation"],
                vary=tuple(meta["vary"]),
                name=meta["name"],
            )
        except (ValueError, KeyError, TypeError):
            return None
        if not (
            type(entry.status) is int
            and 200 <= entry.status <= 599
            and all(isinstance(v, str) for v in (entry.reason, entry.etag, entry.generation))
            and all(isinstance(v, str) for v in (entry.name, *entry.vary))
            and all(
                isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
                for t in (entry.stored_at, entry.fresh_until)
            )
            and not _BAD_VALUE.search(entry.reason + entry.etag)
        ):
            return None
        return entry

    def response(self, *, head: bool) -> HttpResponse:
        """A new response with the entry's status, headers and body (none for HEAD)."""
        response = HttpResponse(b"" if head else self.body, status=self.status)
        response.reason_phrase = self.reason
        for name, value in self.headers:
            if name.lower() not in PER_REQUEST_HEADERS:
                response.headers[name] = value
        if head:
            response.headers["Content-Length"] = str(len(self.body))
        return response


@functools.lru_cache(maxsize=256)
def _load_cached(data: bytes) -> Entry | None:
    return Entry.loads(data)


def _load_entry(data: object) -> Entry | None:
    """:meth:`Entry.loads`, remembering recent results: a hot entry is parsed once.

    Entries are never changed once made, so one may serve many requests.
    """
    if not isinstance(data, bytes):
        return None
    if len(data) > _MEMO_LIMIT:
        return Entry.loads(data)
    return _load_cached(data)


_MEMO_LIMIT: Final = 64 * 1024  # larger entries are parsed each time, not kept


# -------------------------------------------------------------------- stores


class StoreError(Exception):
    """The cache could not be read or written; ``definitive``: it cannot be reached."""

    def __init__(self, message: str, *, definitive: bool = False) -> None:
        super().__init__(message)
        self.definitive = definitive


# One round trip for a lookup: the generation (created at a random value when
# missing), the URL's learned Vary names and the candidate entry.
_LOOKUP = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  gen = redis.call('GET', KEYS[1])
end
return {gen, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4])}
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_SHAS = {
    source: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    for source in (_LOOKUP, _RELEASE, _EXTEND)
}


def _new_generation() -> int:
    # Unique, not secret: a fresh random start whenever the key is (re)created.
    return random.getrandbits(62) + 1


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or value is False:
        return None
    return str(value)


def _encode_vary(names: Iterable[str]) -> str:
    return json.dumps(list(names), separators=(",", ":"))


def _decode_vary(value: object) -> tuple[str, ...] | None:
    text = _text(value)
    if text is None:
        return None
    try:
        names = json.loads(text)
    except ValueError:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return tuple(names)


@dataclass
class Lookup:
    """What one look at the cache found (raw: the caller checks the entry)."""

    generation: str
    vary: tuple[str, ...] | None  # None: nothing learned for this URL yet
    entry: Entry | None
    passing: bool = False  # the URL's last answer could not be stored (see mark_pass)


class Store:
    """One cache alias, as the stage uses it. Names are made into keys by the store."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    async def lookup(
        self, gen_name: str, vary_name: str, entry_name: str, pass_name: str
    ) -> Lookup:
        raise NotImplementedError

    async def mark_pass(self, name: str, generation: str, ttl: float) -> None:
        raise NotImplementedError

    async def get_entry(self, name: str) -> Entry | None:
        raise NotImplementedError

    async def store(
        self, name: str, entry: Entry, vary_name: str, vary: tuple[str, ...], ttl: float
    ) -> None:
        raise NotImplementedError

    async def lock(self, name: str, token: str, ttl: float) -> bool:
        raise NotImplementedError

    async def unlock(self, name: str, token: str) -> None:
        raise NotImplementedError

    async def extend(self, name: str, token: str, ttl: float) -> None:
        raise NotImplementedError

    async def bump(self, gen_name: str) -> None:
        raise NotImplementedError


class RedisStore(Store):
    """Redis through the library's channel for the cache (django-redis or Django's RedisCache)."""

    def key(self, name: str) -> str:
        return str(_make_key(self.alias)(name))

    def channel(self) -> Channel:
        try:
            channel = _redis.channel_for(self.alias, "cache")
        except _redis.RedisConfigError as exc:
            # Reported by the E015 check; at request time the cache is as good as down.
            health_of(self.alias).log("%s", exc, level=logging.ERROR)
            raise StoreError(str(exc), definitive=True) from exc
        if channel is None:
            raise StoreError(f"The cache {self.alias!r} is no longer Redis.")
        return channel

    async def _script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        channel = self.channel()
        try:
            return await channel.evalsha(_SHAS[source], len(keys), *keys, *args)
        except NoScriptError:
            return await channel.eval(source, len(keys), *keys, *args)

    async def lookup(
        self, gen_name: str, vary_name: str, entry_name: str, pass_name: str
    ) -> Lookup:
        keys = [self.key(n) for n in (gen_name, vary_name, entry_name, pass_name)]
        reply = await _guard(self._script(_LOOKUP, keys, [_new_generation()]))
        generation = _text(reply[0]) or ""
        return Lookup(
            generation,
            _decode_vary(reply[1]),
            _load_entry(reply[2]),
            passing=_text(reply[3]) == generation,
        )

    async def mark_pass(self, name: str, generation: str, ttl: float) -> None:
        ms = max(1, math.ceil(ttl * 1000))
        await _guard(self._execute("SET", self.key(name), generation, "PX", ms))

    async def get_entry(self, name: str) -> Entry | None:
        return _load_entry(await _guard(self._execute("GET", self.key(name))))

    async def store(
        self, name: str, entry: Entry, vary_name: str, vary: tuple[str, ...], ttl: float
    ) -> None:
        ms = max(1, math.ceil(ttl * 1000))
        commands = [
            ("SET", self.key(vary_name), _encode_vary(vary), "PX", ms),
            ("SET", self.key(name), entry.dumps(), "PX", ms),
        ]
        await _guard(self._transaction(commands))

    async def lock(self, name: str, token: str, ttl: float) -> bool:
        ms = max(1, math.ceil(ttl * 1000))
        reply = await _guard(self._execute("SET", self.key(name), token, "NX", "PX", ms))
        return reply is not None

    async def unlock(self, name: str, token: str) -> None:
        await _guard(self._script(_RELEASE, [self.key(name)], [token]))

    async def extend(self, name: str, token: str, ttl: float) -> None:
        ms = max(1, math.ceil(ttl * 1000))
        await _guard(self._script(_EXTEND, [self.key(name)], [token, ms]))

    async def bump(self, gen_name: str) -> None:
        await _guard(self._execute("SET", self.key(gen_name), _new_generation()))

    async def _execute(self, *args: Any) -> Any:
        return await self.channel().execute(*args)

    async def _transaction(self, commands: list[tuple[Any, ...]]) -> Any:
        return await self.channel().transaction(commands)


async def _guard(awaitable: Any) -> Any:
    from redis.exceptions import RedisError

    try:
        return await awaitable
    except (RedisError, OSError, TimeoutError) as exc:
        raise StoreError(f"{type(exc).__name__}: {exc}", definitive=is_definitive(exc)) from exc


class DjangoStore(Store):
    """Any other backend, through Django's ``a*`` cache methods."""

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(caches[self.alias], method)(*args, **kwargs)
        except Exception as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}", definitive=is_definitive(exc)) from exc

    async def lookup(
        self, gen_name: str, vary_name: str, entry_name: str, pass_name: str
    ) -> Lookup:
        found = await self._call("aget_many", [gen_name, vary_name, entry_name, pass_name])
        generation = found.get(gen_name)
        if generation is None:
            await self._call("aadd", gen_name, _new_generation(), timeout=None)
            generation = await self._call("aget", gen_name)
        text = _text(generation) or ""
        return Lookup(
            text,
            _decode_vary(found.get(vary_name)),
            _load_entry(found.get(entry_name)),
            passing=_text(found.get(pass_name)) == text,
        )

    async def mark_pass(self, name: str, generation: str, ttl: float) -> None:
        await self._call("aset", name, generation, timeout=ttl)

    async def get_entry(self, name: str) -> Entry | None:
        return _load_entry(await self._call("aget", name))

    async def store(
        self, name: str, entry: Entry, vary_name: str, vary: tuple[str, ...], ttl: float
    ) -> None:
        await self._call(
            "aset_many", {vary_name: _encode_vary(vary), name: entry.dumps()}, timeout=ttl
        )

    async def lock(self, name: str, token: str, ttl: float) -> bool:
        return bool(await self._call("aadd", name, token, timeout=ttl))

    async def unlock(self, name: str, token: str) -> None:
        if await self._call("aget", name) == token:
            await self._call("adelete", name)

    async def extend(self, name: str, token: str, ttl: float) -> None:
        if await self._call("aget", name) == token:
            await self._call("atouch", name, ttl)

    async def bump(self, gen_name: str) -> None:
        await self._call("aset", gen_name, _new_generation(), timeout=None)


def store_for(alias: str) -> Store:
    """The store for ``alias``: direct Redis when possible, else Django's a* methods."""
    try:
        is_redis = _redis.is_redis_alias(alias)
    except _redis.RedisConfigError:
        is_redis = True  # its calls fail as StoreError, logged (see RedisStore.channel)
    if is_redis:
        return RedisStore(alias)
    return DjangoStore(alias)


# The alias's make_key (a function of its settings only), until CACHES changes.
_make_keys: dict[str, Callable[[str], str]] = {}


def _make_key(alias: str) -> Callable[[str], str]:
    make_key = _make_keys.get(alias)
    if make_key is None:
        make_key = _make_keys[alias] = caches[alias].make_key
    return make_key


@receiver(setting_changed)
def _forget_make_keys(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        _make_keys.clear()


# -------------------------------------------------------------------- the mixin

# Learned Vary names per URL, per process: a hint that saves the second round trip.
_KNOWN_VARY_MAX = 10_000
_known_vary: dict[str, tuple[str, ...]] = {}

# In-process coalescing: one future per event loop and key, set by the leader.
_flights: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Future[object]]
] = weakref.WeakKeyDictionary()


def _remember_vary(name: str, vary: tuple[str, ...]) -> None:
    if name not in _known_vary and len(_known_vary) >= _KNOWN_VARY_MAX:
        _known_vary.pop(next(iter(_known_vary)))
    _known_vary[name] = vary


def _loop_flights() -> dict[tuple[str, str], asyncio.Future[object]]:
    loop = asyncio.get_running_loop()
    flights = _flights.get(loop)
    if flights is None:
        flights = _flights[loop] = {}
    return flights


def _is_header_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in value)
    )


def _non_negative(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


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

    @property
    def gen_name(self) -> str:
        return f"async_cbv:c:{self.prefix}:gen"

    @property
    def vary_name(self) -> str:
        return f"async_cbv:c:{self.prefix}:vary:{self.base}"

    @property
    def lock_name(self) -> str:
        return f"async_cbv:c:{self.prefix}:lock:{self.base}"

    @property
    def pass_name(self) -> str:
        return f"async_cbv:c:{self.prefix}:pass:{self.base}"

    def entry_name(self, request: HttpRequest, vary: tuple[str, ...]) -> str:
        parts: list[str | None] = [self.base]
        for name in vary:
            parts += [name, _request_header(request, name)]
        return f"async_cbv:c:{self.prefix}:e:{digest(*parts)}"


class AsyncCacheMixin:
    """Cache a view's GET responses; one handler run per cold key; safe by default.

    Put it in the bases of an :class:`~django_async_cbv.AsyncView` (in any order).
    Every attribute has a ``get_<name>()`` method to vary it per request.
    """

    #: Seconds a response stays fresh (capped by its own ``max-age``/``s-maxage``).
    cache_timeout: ClassVar[float] = 300
    #: The cache alias; None means ``ASYNC_CBV["CACHE_ALIAS"]``.
    cache_alias: ClassVar[str | None] = None
    #: The namespace of the view's entries; None means the view's dotted path.
    cache_key_prefix: ClassVar[str | None] = None
    #: Request headers whose values are part of the key (and added to ``Vary``).
    cache_vary_on: ClassVar[Iterable[str]] = ()
    #: Cache for signed-in users and ``Authorization`` requests too, one entry set per user.
    cache_per_user: ClassVar[bool] = False
    #: Seconds after expiry during which the stale entry is served while one request
    #: refreshes it.
    cache_stale_ttl: ClassVar[float] = 0

    request: HttpRequest

    # -- configuration ---------------------------------------------------------------

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Validate the cache attributes (and ``as_view()`` arguments); see AsyncView."""
        super().check_configuration(initkwargs)  # type: ignore[misc]
        values = {
            name: (initkwargs or {}).get(name, getattr(cls, name))
            for name in (
                "cache_timeout",
                "cache_alias",
                "cache_key_prefix",
                "cache_vary_on",
                "cache_per_user",
                "cache_stale_ttl",
            )
        }
        _validate(cls.__qualname__, values)

    @classmethod
    def check_against_settings(cls, initkwargs: Mapping[str, Any] | None = None) -> list[Any]:
        """Report a ``cache_alias`` that is not in ``CACHES`` (check E012)."""
        from django.core.checks import Error

        messages: list[Any] = list(super().check_against_settings(initkwargs))  # type: ignore[misc]
        alias = (initkwargs or {}).get("cache_alias", cls.cache_alias)
        if alias is not None and alias not in settings.CACHES:
            messages.append(
                Error(
                    f"{cls.__qualname__}.cache_alias is {alias!r}, which is not in CACHES.",
                    hint="Name an alias of CACHES, or None for ASYNC_CBV['CACHE_ALIAS'].",
                    obj=cls,
                    id="django_async_cbv.E012",
                )
            )
        return messages

    def get_cache_timeout(self) -> float:
        """Seconds a response stays fresh, for this request."""
        return self.cache_timeout

    def get_cache_alias(self) -> str | None:
        """The cache alias for this request (None: ``ASYNC_CBV["CACHE_ALIAS"]``)."""
        return self.cache_alias

    def get_cache_key_prefix(self) -> str | None:
        """The namespace of the entries (None: the view's dotted path)."""
        return self.cache_key_prefix

    def get_cache_vary_on(self) -> Iterable[str]:
        """Request headers that are part of the key, for this request."""
        return self.cache_vary_on

    def get_cache_per_user(self) -> bool:
        """Whether signed-in users get entries of their own, for this request."""
        return self.cache_per_user

    def get_cache_stale_ttl(self) -> float:
        """Seconds a stale entry may still be served, for this request."""
        return self.cache_stale_ttl

    async def get_cache_key(self) -> str:
        """The URL-level key of this request (a hex digest).

        Made of: scheme, host, path, the query sorted by parameter name, the
        ``cache_vary_on`` headers (an absent header differs from an empty one), the
        active language and time zone, and with ``cache_per_user`` the user. The
        library adds the view's generation and the headers named by the stored
        response's ``Vary``. Override to key otherwise; keep everything the response
        depends on in it.
        """
        request = self.request
        parts: list[str | None] = [
            "GET",
            request.scheme,
            request.get_host(),
            request.path,
        ]
        for name, values in sorted(request.GET.lists()):
            parts.append(name)
            parts.append(str(len(values)))
            parts.extend(values)
        for header in _header_names(await _maybe(self.get_cache_vary_on())):
            parts += [header, _request_header(request, header)]
        parts += ["lang", translation.get_language(), "tz", timezone.get_current_timezone_name()]
        if await _maybe(self.get_cache_per_user()):
            parts += ["user", _user_identity(request)]
        return digest(*parts)

    def should_cache_response(self, response: HttpResponseBase) -> bool:
        """Whether the view wants ``response`` stored: status 200 by default.

        Widen it to store other statuses; the safety rules (cookies, ``Vary: *``,
        ``Cache-Control``, the session, CSRF and CSP nonces) apply whatever it says.
        """
        return response.status_code == 200

    # -- invalidation -----------------------------------------------------------------

    @classmethod
    def _class_plan_names(cls) -> tuple[str, str]:
        alias = cls.cache_alias or get_settings().cache_alias
        prefix = cls.cache_key_prefix or f"{cls.__module__}.{cls.__qualname__}"
        return alias, f"async_cbv:c:{digest(prefix)}:gen"

    @classmethod
    def invalidate_cache(cls) -> None:
        """Turn every entry of the view into a miss (sync; see :meth:`ainvalidate_cache`).

        Uses the class attributes ``cache_alias`` and ``cache_key_prefix``.
        """
        alias, gen_name = cls._class_plan_names()
        caches[alias].set(gen_name, _new_generation(), timeout=None)

    @classmethod
    async def ainvalidate_cache(cls) -> None:
        """Turn every entry of the view into a miss, without scanning any key."""
        alias, gen_name = cls._class_plan_names()
        try:
            await store_for(alias).bump(gen_name)
        except StoreError as exc:
            raise (exc.__cause__ or exc) from None  # the backend's own error, as the sync twin

    # -- the stage --------------------------------------------------------------------

    @request_stage(CACHE_HEADER)
    async def cache_header_stage(
        self, request: HttpRequest, call_next: CallNext
    ) -> HttpResponseBase:
        """Mark answers that earlier stages gave (a 429, a 403) ``X-Cache: BYPASS``."""
        response = await call_next(request)
        if X_CACHE not in response.headers:
            response.headers[X_CACHE] = "BYPASS"
        return response

    @request_stage(CACHE)
    async def cache_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        """Answer from the cache, or run the rest once per cold key and store the answer."""
        method = (request.method or "").upper()
        if method not in SAFE_METHODS:
            response = await call_next(request)
            if method in UNSAFE_METHODS and response.status_code < 400:
                await self._invalidate_after_write()
            response.headers[X_CACHE] = "BYPASS"
            return response
        plan = await self._plan(request)
        if not plan.per_user and (_authenticated(request) or "HTTP_AUTHORIZATION" in request.META):
            return _mark(await call_next(request), "BYPASS", plan)
        store = store_for(plan.alias)
        health = health_of(plan.alias)
        if health.should_skip():
            health.log("Cache %r is down; serving uncached.", plan.alias)
            return _mark(await call_next(request), "BYPASS", plan)
        try:
            found = await self._find(store, request, plan)
        except StoreError as exc:
            _store_failed(plan, exc, "serving uncached")
            return _mark(await call_next(request), "BYPASS", plan)
        health.succeeded()
        now = time.time()
        head = method == "HEAD"
        entry = found.entry
        if entry is not None and now < entry.fresh_until:
            return _answer(request, entry, "HIT", plan, now, head=head)
        if head:
            return _mark(await call_next(request), "MISS", plan)
        if entry is not None and now < entry.fresh_until + plan.stale_ttl:
            token = secrets.token_hex(16)
            try:
                leading = await store.lock(plan.lock_name, token, LOCK_TIMEOUT)
            except StoreError as exc:
                _store_failed(plan, exc, "serving the stale entry")
                leading = False
            if not leading:
                return _answer(request, entry, "STALE", plan, now, head=False)
            async with _held(store, plan, token):
                response, _ = await self._run_and_store(
                    request, call_next, plan, store, found.generation
                )
            return response
        if found.passing:
            # The URL's last answer could not be stored: no coalescing, each runs.
            response, _ = await self._run_and_store(
                request, call_next, plan, store, found.generation
            )
            return response
        return await self._coalesce(request, call_next, plan, store, found.generation)

    async def _plan(self, request: HttpRequest) -> _Plan:
        cls = type(self)
        view = cls.__qualname__
        timeout = await _maybe(self.get_cache_timeout())
        alias = await _maybe(self.get_cache_alias())
        prefix = await _maybe(self.get_cache_key_prefix())
        vary_on = await _maybe(self.get_cache_vary_on())
        per_user = await _maybe(self.get_cache_per_user())
        stale_ttl = await _maybe(self.get_cache_stale_ttl())
        if not isinstance(vary_on, str | tuple) and isinstance(vary_on, Iterable):
            vary_on = tuple(vary_on)  # read once: a generator would be empty the second time
        try:
            static = _static_plan(
                cls.__module__, view, timeout, alias, prefix, vary_on, per_user, stale_ttl
            )
        except TypeError:  # an unhashable value: validated every time
            static = _static_plan.__wrapped__(
                cls.__module__, view, timeout, alias, prefix, vary_on, per_user, stale_ttl
            )
        alias = static.alias or get_settings().cache_alias
        if alias not in settings.CACHES:
            raise ImproperlyConfigured(f"{view}.cache_alias is {alias!r}, which is not in CACHES.")
        base = await _maybe(self.get_cache_key())
        if not isinstance(base, str) or not base:
            raise ImproperlyConfigured(f"{view}.get_cache_key() must return a non-empty str.")
        return _Plan(
            alias=alias,
            timeout=static.timeout,
            stale_ttl=static.stale_ttl,
            vary_on=static.vary_on,
            per_user=static.per_user,
            prefix=static.prefix,
            base=base,
        )

    async def _find(self, store: Store, request: HttpRequest, plan: _Plan) -> _Found:
        """The valid entry for the request (or None), the generation and the Vary names."""
        memo_key = f"{plan.alias}:{plan.vary_name}"
        known = _known_vary.get(memo_key, ())
        look = await store.lookup(
            plan.gen_name, plan.vary_name, plan.entry_name(request, known), plan.pass_name
        )
        vary = look.vary if look.vary is not None else ()
        entry = look.entry
        if vary != known:
            _remember_vary(memo_key, vary)
            entry = await store.get_entry(plan.entry_name(request, vary))
        if entry is not None and (entry.generation != look.generation or entry.vary != vary):
            entry = None
        return _Found(entry, look.generation, look.passing)

    async def _find_fresh(self, store: Store, request: HttpRequest, plan: _Plan) -> _Found:
        """:meth:`_find`, a stale entry counting as none."""
        found = await self._find(store, request, plan)
        if found.entry is not None and time.time() >= found.entry.fresh_until:
            found.entry = None
        return found

    async def _coalesce(
        self,
        request: HttpRequest,
        call_next: CallNext,
        plan: _Plan,
        store: Store,
        generation: str,
    ) -> HttpResponseBase:
        """Run the handler once for all concurrent requests of one key."""
        flights = _loop_flights()
        flight_key = (plan.alias, f"{plan.lock_name}:{generation}")
        while (flight := flights.get(flight_key)) is not None:
            outcome = await asyncio.shield(flight)
            if outcome is _RELEAD:
                continue  # the leader was cancelled: the first waiter here leads instead
            if isinstance(outcome, Entry) and _same_variant(request, plan, outcome):
                return _answer(request, outcome, "HIT", plan, time.time(), head=False)
            response, _ = await self._run_and_store(request, call_next, plan, store, generation)
            return response
        flight = asyncio.get_running_loop().create_future()
        flights[flight_key] = flight
        result: object = None
        token = secrets.token_hex(16)
        try:
            async with contextlib.AsyncExitStack() as lock:
                try:
                    if await store.lock(plan.lock_name, token, LOCK_TIMEOUT):
                        await lock.enter_async_context(_held(store, plan, token))
                        # The key may have been filled between this request's look and
                        # its lock (by a leader that has finished since): look again.
                        found = await self._find_fresh(store, request, plan)
                    else:
                        found = await self._wait_for_other(request, plan, store, token, lock)
                except StoreError as exc:
                    _store_failed(plan, exc, "serving uncached")
                    return _mark(await call_next(request), "BYPASS", plan)
                if found.entry is not None:
                    result = found.entry
                    return _answer(request, found.entry, "HIT", plan, time.time(), head=False)
                response, result = await self._run_and_store(
                    request, call_next, plan, store, generation, leading=True
                )
                return response
        except asyncio.CancelledError:
            result = _RELEAD  # the client went away: a waiting request takes over
            raise
        finally:
            if not flight.done():
                flight.set_result(result)
            if flights.get(flight_key) is flight:
                del flights[flight_key]

    async def _wait_for_other(
        self,
        request: HttpRequest,
        plan: _Plan,
        store: Store,
        token: str,
        lock: contextlib.AsyncExitStack,
    ) -> _Found:
        """Another request (maybe in another process) holds the key's lock.

        Poll, with a pause doubling up to 0.1 s, until its entry appears, or the URL is
        marked as not storable (then run without waiting), or its lock is gone and
        this request takes it (the lock then joins ``lock``). A live leader keeps its
        lock; a dead one's lock expires within ``LOCK_TIMEOUT``. The wait is bounded
        all the same, by the view's ``timeout`` (30 s without one) plus
        ``LOCK_TIMEOUT``; past that the handler runs without the lock.
        """
        handler_timeout = getattr(self, "get_timeout", lambda: None)()
        longest = float(handler_timeout or _DEFAULT_WAIT) + LOCK_TIMEOUT
        deadline = time.monotonic() + longest
        pause = 0.005
        found = _Found(None, "", False)
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)
            found = await self._find_fresh(store, request, plan)
            if found.entry is not None or found.passing:
                return found
            if await store.lock(plan.lock_name, token, LOCK_TIMEOUT):
                await lock.enter_async_context(_held(store, plan, token))
                return await self._find_fresh(store, request, plan)
        return _Found(None, found.generation, False)

    async def _run_and_store(
        self,
        request: HttpRequest,
        call_next: CallNext,
        plan: _Plan,
        store: Store,
        generation: str,
        *,
        leading: bool = False,
    ) -> tuple[HttpResponseBase, Entry | None]:
        """Run the rest of the stages; store the response when the rules allow it.

        ``leading``: this request holds the key's lock, so an answer that cannot be
        stored marks the URL as such for a while (requests for it then run at once,
        instead of queueing behind each other's locks).
        """
        session = getattr(request, "session", None)
        accessed_before = bool(getattr(session, "accessed", False))
        if session is not None:
            session.accessed = False
        try:
            response = await call_next(request)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                await sync_to_async(response.render)()
        finally:
            touched = bool(getattr(session, "accessed", False))
            if session is not None:
                session.accessed = accessed_before or touched
        ttl = self._storable_ttl(request, response, plan, touched)
        if ttl is None:
            if leading:
                try:
                    await store.mark_pass(plan.pass_name, generation, min(plan.timeout, _PASS_TTL))
                except StoreError as exc:
                    _store_failed(plan, exc, "the answer was not stored")
            return _mark(response, "MISS", plan), None
        assert isinstance(response, HttpResponse)
        now = time.time()
        body = response.content
        if "ETag" not in response.headers:
            response.headers["ETag"] = f'"{hashlib.sha256(body).hexdigest()[:40]}"'
        vary = tuple(_vary_names(response))
        name = plan.entry_name(request, vary)
        entry = Entry(
            name=name,
            status=response.status_code,
            reason=response.reason_phrase,
            headers=[
                (header, value)
                for header, value in response.headers.items()
                if header.lower() not in PER_REQUEST_HEADERS
            ],
            body=body,
            etag=response.headers["ETag"],
            stored_at=now,
            fresh_until=now + ttl,
            generation=generation,
            vary=vary,
        )
        try:
            await store.store(name, entry, plan.vary_name, vary, ttl + plan.stale_ttl)
        except StoreError as exc:
            _store_failed(plan, exc, "response not stored")
            return _mark(response, "BYPASS", plan), None
        _remember_vary(f"{plan.alias}:{plan.vary_name}", vary)
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = f"max-age={math.floor(ttl)}"
        return _mark(response, "MISS", plan), entry

    def _storable_ttl(
        self, request: HttpRequest, response: HttpResponseBase, plan: _Plan, touched: bool
    ) -> float | None:
        """Seconds to store ``response`` for, or None when a rule forbids storing it."""
        if request.method != "GET" or response.streaming or not isinstance(response, HttpResponse):
            return None
        if response.status_code in _NEVER_STORED or "Content-Range" in response.headers:
            return None  # partial or validator-dependent: another request would get it
        if not self.should_cache_response(response):
            return None
        if response.cookies or "Set-Cookie" in response.headers:
            return None
        if "*" in _vary_names(response):
            return None
        cache_control = response.headers.get("Cache-Control", "")
        lowered = cache_control.lower()
        # Refused by directive, and by substring too (as strict as Django 5.2's check).
        if any(word in lowered for word in ("private", "no-store", "no-cache")):
            return None
        if touched or request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
            return None
        if _messages_used(request):
            return None
        nonce = getattr(request, "_csp_nonce", None)
        if nonce is not None and bool(nonce):
            return None
        ttl = plan.timeout
        ages: dict[str, list[str | None]] = {}
        for item in cache_control.split(","):
            name, sep, argument = item.strip().partition("=")
            name = name.strip().lower()
            if name in ("max-age", "s-maxage"):
                ages.setdefault(name, []).append(argument.strip().strip('"') if sep else None)
        for values in ages.values():
            if len(values) != 1:
                return None  # a repeated directive: do not guess which one counts
            seconds = _seconds(values[0])
            if seconds is None or seconds == 0:
                return None  # malformed, or expressly not to be reused
            ttl = min(ttl, seconds)
        return ttl if ttl > 0 else None

    async def _invalidate_after_write(self) -> None:
        alias = await _maybe(self.get_cache_alias()) or get_settings().cache_alias
        prefix = await _maybe(self.get_cache_key_prefix()) or (
            f"{type(self).__module__}.{type(self).__qualname__}"
        )
        health = health_of(alias)
        lost = (
            "Cache %r unavailable (%s): the view's entries were NOT invalidated after a "
            "successful write; they may be served until they expire."
        )
        if health.should_skip():
            health.log(lost, alias, "down", level=logging.ERROR)
            return
        try:
            await store_for(alias).bump(f"async_cbv:c:{digest(prefix)}:gen")
        except StoreError as exc:
            health.failed(definitive=exc.definitive)
            health.log(lost, alias, exc, level=logging.ERROR)
        else:
            health.succeeded()


class _StaticPlan(NamedTuple):
    """The validated values of a view's cache attributes that do not depend on settings."""

    alias: str | None  # None: ASYNC_CBV["CACHE_ALIAS"]
    timeout: float
    stale_ttl: float
    vary_on: tuple[str, ...]
    per_user: bool
    prefix: str  # digest of the key prefix (by default the view's dotted path)


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
        },
    )
    return _StaticPlan(
        alias=alias or None,
        timeout=float(timeout),
        stale_ttl=float(stale_ttl),
        vary_on=_header_names(vary_on),
        per_user=bool(per_user),
        prefix=digest(prefix or f"{module}.{view}"),
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
    if not isinstance(values["cache_per_user"], bool):
        raise ImproperlyConfigured(
            f"{view}.cache_per_user must be True or False, not {values['cache_per_user']!r}."
        )


def _header_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({name.lower() for name in names}))


_PLAIN_TYPES: Final = frozenset({str, list, tuple, frozenset, set, int, float, bool, type(None)})


async def _maybe(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:
        return value
    if hasattr(value, "__await__"):
        return await value
    return value


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


def _mark(response: HttpResponseBase, state: str, plan: _Plan) -> HttpResponseBase:
    response.headers[X_CACHE] = state
    if plan.vary_on:
        present = _vary_names(response)
        extra = [name for name in plan.vary_on if name not in present]
        if extra:
            current = response.headers.get("Vary")
            response.headers["Vary"] = ", ".join(filter(None, [current, *extra]))
    if plan.per_user:
        directives = response.headers.get("Cache-Control")
        if directives is None:
            response.headers["Cache-Control"] = "private"
        elif "private" not in _directives(directives):
            response.headers["Cache-Control"] = f"private, {directives}"
    return response


def _answer(
    request: HttpRequest, entry: Entry, state: str, plan: _Plan, now: float, *, head: bool
) -> HttpResponseBase:
    """A response from ``entry``: a copy, or 304 when ``If-None-Match`` matches."""
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match and 200 <= entry.status < 300 and _etag_matches(if_none_match, entry.etag):
        response: HttpResponse = HttpResponse(status=304)
        for name, value in entry.headers:
            if name.lower() in {"etag", "cache-control", "vary", "expires", "last-modified"}:
                response.headers[name] = value
        del response.headers["Content-Type"]
        # What a 200 would have carried (RFC 9110 8.6), not the empty body's 0.
        response.headers["Content-Length"] = str(len(entry.body))
    else:
        response = entry.response(head=head)
    response.headers["Age"] = str(max(0, math.floor(now - entry.stored_at)))
    if state == "STALE":
        response.headers["Cache-Control"] = "max-age=0"
    elif not any(name.lower() == "cache-control" for name, _ in entry.headers):
        # The entry's lifetime, with Age: a downstream cache keeps it for what is left
        # (max-age minus Age, RFC 9111 4.2.3); a max-age already lowered by the age
        # would have it subtract the age twice.
        lifetime = max(0, math.floor(entry.fresh_until - entry.stored_at))
        response.headers["Cache-Control"] = f"max-age={lifetime}"
    return _mark(response, state, plan)


_RELEAD: Final = object()  # a flight's outcome when its leader was cancelled
#: Statuses never stored, whatever should_cache_response() says.
_NEVER_STORED: Final = frozenset({206, 304})
#: Longest time a URL whose answer could not be stored skips coalescing.
_PASS_TTL: Final = 10.0


@dataclass
class _Found:
    entry: Entry | None
    generation: str
    passing: bool


def _messages_used(request: HttpRequest) -> bool:
    """Whether the request's messages (django.contrib.messages) were read or added.

    Messages belong to one visitor; a page that showed them must not be stored.
    """
    storage = getattr(request, "_messages", None)
    if storage is None:
        return False
    return bool(
        getattr(storage, "used", False)
        or getattr(storage, "added_new", False)
        or getattr(storage, "_queued_messages", None)
        or getattr(storage, "_loaded_data", None)
    )


_DEFAULT_WAIT: Final = 30.0  # seconds a waiter allows a leader of a view without timeout


def _store_failed(plan: _Plan, exc: StoreError, consequence: str) -> None:
    """Record a failed call to the store and log it (at most once a second)."""
    health = health_of(plan.alias)
    health.failed(definitive=exc.definitive)
    health.log("Cache %r unavailable (%s); %s.", plan.alias, exc, consequence)


@contextlib.asynccontextmanager
async def _held(store: Store, plan: _Plan, token: str) -> AsyncIterator[None]:
    """Keep the key's lock alive while the block runs; release it afterwards."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(LOCK_TIMEOUT / 3)
            try:
                await store.extend(plan.lock_name, token, LOCK_TIMEOUT)
            except StoreError:
                return  # it expires by itself; others then take over

    keeper = asyncio.ensure_future(keep())
    try:
        yield
    finally:
        keeper.cancel()
        # Shielded: a cancellation arriving now must not leave the lock behind.
        release = asyncio.ensure_future(_release(keeper, store, plan, token))
        try:
            await asyncio.shield(release)
        except asyncio.CancelledError:
            await release
            raise


async def _release(keeper: asyncio.Future[None], store: Store, plan: _Plan, token: str) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await keeper
    await _unlock(store, plan, token)


async def _unlock(store: Store, plan: _Plan, token: str) -> None:
    try:
        await store.unlock(plan.lock_name, token)
    except StoreError as exc:
        _store_failed(plan, exc, "a lock is left to expire")
