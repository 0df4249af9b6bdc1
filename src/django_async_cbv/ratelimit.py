"""``AsyncRateLimitMixin``: exact rate limits, shared by every process on one store.

The mixin is one request stage (:data:`~django_async_cbv.stages.RATE_LIMIT`): it runs
after the user is resolved and before access checks, the cache and the handler, so a
denied request and a cached answer still cost budget, and every response of a limited
view that the stages see (errors that ``handle_exception()`` maps and cache hits
included) carries the ``RateLimit-Policy`` and ``RateLimit`` fields.

Stores: on a Redis cache alias (django-redis or Django's ``RedisCache``) every
algorithm runs as one server-side script per check (see ``_limiter_redis``); on local
memory, memcached and other Redis caches only ``fixed_window`` is available, through
the cache's atomic ``add`` and ``incr`` (see ``_limiter_cache``). Other backends have
no atomic increment and are refused.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import inspect
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.checks import CheckMessage
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

from . import _redis
from ._client_ip import client_ip
from ._limiter_cache import fixed_window_check
from ._limiter_redis import ALGORITHMS, Decision, RedisLimiter
from ._rates import Rate, parse_rates
from ._store_health import StoreHealth, health_of, is_definitive
from ._store_health import forget as _forget_health
from .conf import get_settings
from .problems import problem_response
from .stages import RATE_LIMIT, CallNext, request_stage

__all__ = ["AsyncRateLimitMixin", "ratelimit_fields"]

logger = logging.getLogger("django_async_cbv")

#: The rate limit key kinds named by a string (besides ``"header:<Name>"``).
KEY_KINDS: Final = ("ip", "user", "user_or_ip")
_HEADER_PREFIX = "header:"
# RFC 9110 field-name (token) characters.
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
_METHOD = re.compile(r"[A-Za-z]+", re.ASCII)

_limiter = RedisLimiter()


def ratelimit_fields(rates: tuple[Rate, ...], decision: Decision) -> dict[str, str]:
    """The ``RateLimit-Policy`` and ``RateLimit`` fields for one check.

    Syntax of draft-ietf-httpapi-ratelimit-headers-11 (structured-field lists):
    one policy item per rate, named by its rate string, with ``q`` (the count) and
    ``w`` (the period in seconds); ``RateLimit`` reports the rate closest to running
    out (fewest requests left; on a tie, the later reset) with ``r`` (requests left)
    and ``t`` (seconds until that rate is back to its full count).
    """
    policy = ", ".join(f'"{rate.text}";q={rate.count};w={rate.period}' for rate in rates)
    index = min(range(len(rates)), key=lambda i: (decision.remaining[i], -decision.reset[i], i))
    current = f'"{rates[index].text}";r={decision.remaining[index]};t={decision.reset[index]}'
    return {"RateLimit-Policy": policy, "RateLimit": current}


@dataclass(frozen=True)
class _Store:
    """How a cache alias can count requests."""

    alias: str
    redis: bool  # one script per check through redis.asyncio; else add + incr
    local_memory: bool  # per process
    label: str


_LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
_MEMCACHED = "django.core.cache.backends.memcached.BaseMemcachedCache"
_REDIS_BACKENDS = (_redis.DJANGO_BACKEND, _redis.DJANGO_REDIS_BACKEND)
_stores: dict[str, _Store] = {}


def _store_for(alias: str) -> _Store:
    """Classify the backend of ``alias``; ImproperlyConfigured when it cannot count."""
    store = _stores.get(alias)
    if store is not None:
        return store
    config = settings.CACHES.get(alias) if isinstance(settings.CACHES, Mapping) else None
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured(f"The cache alias {alias!r} is not in CACHES.")
    backend = str(config.get("BACKEND"))
    try:
        is_redis = _redis.is_redis_alias(alias)
    except _redis.RedisConfigError:
        is_redis = True  # its checks fail, logged, with 503 (see _check_redis)
    if is_redis:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Rate limiting on the Redis cache {alias!r} needs redis-py: install the "
                'redis extra (pip install "django-async-cbv[redis]").'
            ) from exc
        store = _Store(alias, redis=True, local_memory=False, label=backend)
    else:
        try:
            backend_class = import_string(backend)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"The backend {backend!r} of cache {alias!r} cannot be imported: {exc}"
            ) from exc
        atomic = [_LOCMEM, _MEMCACHED]
        for name in _REDIS_BACKENDS:
            try:
                import_string(name)
            except ImportError:
                continue
            atomic.append(name)
        if not any(_is_subclass(backend_class, name) for name in atomic):
            raise ImproperlyConfigured(
                f"The cache {alias!r} ({backend}) has no atomic increment, so it cannot "
                "count requests exactly. Rate limit on a Redis cache (any algorithm), or "
                "on memcached or local memory (fixed_window only)."
            )
        local = _is_subclass(backend_class, _LOCMEM)
        store = _Store(alias, redis=False, local_memory=local, label=backend)
    _stores[alias] = store
    return store


def _is_subclass(cls: Any, dotted: str) -> bool:
    try:
        base = import_string(dotted)
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, base)


@receiver(setting_changed)
def _forget_stores(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CACHES", "ASYNC_CBV"):
        _stores.clear()
        _prefixes.clear()
        _plan.cache_clear()
    if setting == "CACHES":
        _forget_health()


_prefixes: dict[str, str] = {}


def _key_prefix(alias: str) -> str:
    """The alias's own prefix and version around the library's namespace (no braces)."""
    prefix = _prefixes.get(alias)
    if prefix is None:
        made = str(caches[alias].make_key("async_cbv:rl"))
        prefix = _prefixes[alias] = made.replace("{", "(").replace("}", ")")
    return prefix


@dataclass(frozen=True)
class _Plan:
    """The validated settings of one check."""

    rates: tuple[Rate, ...]
    algorithm: str
    alias: str
    scope: str


def _validate_rates(view: str, rate: object, algorithm: object) -> tuple[Rate, ...]:
    try:
        rates = parse_rates(list(rate) if isinstance(rate, tuple) else rate)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{view}.rate_limit: {exc}") from None
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ImproperlyConfigured(
            f"{view}.rate_limit_algorithm is {algorithm!r}; expected one of "
            f"{', '.join(sorted(ALGORITHMS))}."
        )
    return rates


@functools.lru_cache(maxsize=256)
def _plan(view: str, rate: object, algorithm: object, alias: object, scope: str) -> _Plan:
    """Validate one combination of a view's settings (cached; raises ImproperlyConfigured)."""
    rates = _validate_rates(view, rate, algorithm)
    assert isinstance(algorithm, str)
    if not isinstance(alias, str) or not alias:
        raise ImproperlyConfigured(
            f"{view}.rate_limit_cache_alias must be None or a cache alias, not {alias!r}."
        )
    try:
        store = _store_for(alias)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"{view}.rate_limit_cache_alias: {exc}") from None
    if not store.redis and algorithm != "fixed_window":
        raise ImproperlyConfigured(
            f"{view}.rate_limit_algorithm is {algorithm!r}, but the cache {alias!r} "
            f"({store.label}) supports only 'fixed_window'. Use a Redis cache for "
            f"{algorithm!r}."
        )
    return _Plan(rates=rates, algorithm=algorithm, alias=alias, scope=scope)


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _plan_for(view: str, rate: object, algorithm: object, alias: object, scope: str) -> _Plan:
    """:func:`_plan`, uncached for values that cannot be cached (they are then refused)."""
    rate = _hashable(rate)
    try:
        return _plan(view, rate, algorithm, alias, scope)
    except TypeError:  # unhashable: not a valid value, so let _plan say why
        return _plan.__wrapped__(view, rate, algorithm, alias, scope)


def _validate_key_spec(view: str, spec: object) -> None:
    if isinstance(spec, classmethod):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_key is a classmethod; use a plain function or a "
            "staticmethod taking the request, or override get_rate_limit_key()."
        )
    spec = _unwrap(spec)
    if callable(spec):
        try:
            signature = inspect.signature(spec)
        except (TypeError, ValueError):  # no signature to check (some builtins)
            return
        try:
            signature.bind(None)
        except TypeError:
            raise ImproperlyConfigured(
                f"{view}.rate_limit_key is {spec!r}, which cannot be called with the "
                "request alone. A key function takes one argument, the request (a method "
                "defined in the class body also takes self: override "
                "get_rate_limit_key() instead, or make it a staticmethod)."
            ) from None
        return
    if isinstance(spec, str):
        if spec in KEY_KINDS:
            return
        if spec.startswith(_HEADER_PREFIX) and _FIELD_NAME.fullmatch(spec[len(_HEADER_PREFIX) :]):
            return
    raise ImproperlyConfigured(
        f"{view}.rate_limit_key is {spec!r}; expected 'ip', 'user', 'user_or_ip', "
        "'header:<Header-Name>', or a callable taking the request and returning a str "
        "or None."
    )


def _validate_methods(view: str, methods: object) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str) or not isinstance(methods, Iterable):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_methods must be None (all methods) or a list of method "
            f"names such as ['POST'], not {methods!r}."
        )
    names = list(methods)
    if not names or not all(isinstance(m, str) and _METHOD.fullmatch(m) for m in names):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_methods must be None (all methods) or a non-empty list of "
            f"method names such as ['POST'], not {methods!r}."
        )
    limited = {m.upper() for m in names}
    if "GET" in limited:
        limited.add("HEAD")  # Django answers HEAD with get() when a view has no head()
    return frozenset(limited)


def _validate_scope(view: str, scope: object) -> None:
    if scope is not None and not (isinstance(scope, str) and scope):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_scope must be None (the view's dotted path) or a "
            f"non-empty string, not {scope!r}."
        )


_UNSET: Final = object()
_valid_specs: set[tuple[str, object]] = set()


def _validate_key_spec_once(view: str, spec: object) -> None:
    """:func:`_validate_key_spec`, remembering the (view, spec) pairs found valid."""
    try:
        if (view, spec) in _valid_specs:
            return
    except TypeError:  # unhashable: check it every time
        _validate_key_spec(view, spec)
        return
    _validate_key_spec(view, spec)
    if len(_valid_specs) < 10_000:
        _valid_specs.add((view, spec))


def _static_attribute(cls: type, name: str) -> object:
    """``inspect.getattr_static(cls, name)`` for a name the mixin defines: no descriptor runs."""
    for klass in cls.__mro__:
        namespace = klass.__dict__
        if name in namespace:
            return namespace[name]
    return inspect.getattr_static(cls, name)  # pragma: no cover - the mixin defines it


def _unwrap(spec: object) -> object:
    """A key spec as stored on the class: a staticmethod is called as its function."""
    if isinstance(spec, staticmethod):
        return spec.__func__
    return spec


class AsyncRateLimitMixin:
    """Limit how often a client may call a view; exact across processes on Redis.

    Put it in the bases of an :class:`~django_async_cbv.AsyncView` (in any order).
    Every attribute has a ``get_<name>()`` method to vary it per request.
    """

    #: A rate string (``"<count>/<period>"``, period ``s``, ``m``, ``h`` or ``d``,
    #: optionally prefixed by a number) or a list of them, all enforced.
    rate_limit: ClassVar[str | list[str] | tuple[str, ...]] = "60/m"
    #: Who a budget belongs to: ``"ip"``, ``"user"``, ``"user_or_ip"``,
    #: ``"header:<Name>"``, or a callable ``(request) -> str | None`` (sync or async;
    #: None exempts the request).
    rate_limit_key: ClassVar[str | Callable[[HttpRequest], Any]] = "ip"
    #: The limited methods (e.g. ``["POST"]``), or None for all. ``"GET"`` includes HEAD.
    rate_limit_methods: ClassVar[Iterable[str] | None] = None
    #: The budget's name; None means the view's dotted path. Views with one scope,
    #: one algorithm and one rate share one budget.
    rate_limit_scope: ClassVar[str | None] = None
    #: ``"sliding_window"``, ``"fixed_window"`` or ``"token_bucket"``.
    rate_limit_algorithm: ClassVar[str] = "sliding_window"
    #: The cache alias that holds the counters; None means ``ASYNC_CBV["CACHE_ALIAS"]``.
    rate_limit_cache_alias: ClassVar[str | None] = None

    request: HttpRequest

    # -- configuration -------------------------------------------------------------

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Validate the rate limit attributes (and ``as_view()`` arguments); see AsyncView.

        Whether the cache can run the algorithm depends on ``CACHES``, which tests
        may override: that is checked by :meth:`check_against_settings` and on use.
        """
        super().check_configuration(initkwargs)  # type: ignore[misc]
        values = {**_class_values(cls), **(initkwargs or {})}
        view = cls.__qualname__
        _validate_key_spec(view, values["rate_limit_key"])
        _validate_methods(view, values["rate_limit_methods"])
        _validate_scope(view, values["rate_limit_scope"])
        _validate_rates(view, values["rate_limit"], values["rate_limit_algorithm"])
        alias = values["rate_limit_cache_alias"]
        if alias is not None and not (isinstance(alias, str) and alias):
            raise ImproperlyConfigured(
                f"{view}.rate_limit_cache_alias must be None or a cache alias, not {alias!r}."
            )

    @classmethod
    def check_against_settings(
        cls, initkwargs: Mapping[str, Any] | None = None
    ) -> list[CheckMessage]:
        """Check the counters' cache: an error if it cannot run the algorithm, a warning
        if it is local memory (one budget per process)."""
        messages: list[CheckMessage] = list(
            super().check_against_settings(initkwargs)  # type: ignore[misc]
        )
        values = {**_class_values(cls), **(initkwargs or {})}
        alias = values["rate_limit_cache_alias"] or get_settings().cache_alias
        view = cls.__qualname__
        try:
            _plan_for(view, values["rate_limit"], values["rate_limit_algorithm"], alias, "")
        except ImproperlyConfigured as exc:
            messages.append(
                CheckError(
                    str(exc),
                    hint="Point rate_limit_cache_alias (or ASYNC_CBV['CACHE_ALIAS']) at a "
                    "Redis cache, or use rate_limit_algorithm = 'fixed_window' on "
                    "memcached or local memory.",
                    obj=cls,
                    id="django_async_cbv.E011",
                )
            )
            return messages
        if _store_for(alias).local_memory:
            messages.append(
                CheckWarning(
                    f"{view} counts requests in the local-memory cache {alias!r}: every "
                    "process has its own budget, so N processes admit up to N times the "
                    "rate, and other use of that cache can evict a counter (MAX_ENTRIES), "
                    "which gives its client a fresh budget.",
                    hint="Use a Redis cache (rate_limit_cache_alias or "
                    "ASYNC_CBV['CACHE_ALIAS']) when more than one process serves the site; "
                    "at least give the counters a local-memory alias of their own.",
                    obj=cls,
                    id="django_async_cbv.W001",
                )
            )
        return messages

    def get_rate_limit(self) -> str | list[str] | tuple[str, ...]:
        """The rate string(s) for this request."""
        return self.rate_limit

    def get_rate_limit_methods(self) -> Iterable[str] | None:
        """The limited methods for this request (None: all)."""
        return self.rate_limit_methods

    def get_rate_limit_scope(self) -> str | None:
        """The budget's name for this request (None: the view's dotted path)."""
        return self.rate_limit_scope

    def get_rate_limit_algorithm(self) -> str:
        """The algorithm for this request."""
        return self.rate_limit_algorithm

    def get_rate_limit_cache_alias(self) -> str | None:
        """The cache alias holding the counters (None: ``ASYNC_CBV["CACHE_ALIAS"]``)."""
        return self.rate_limit_cache_alias

    async def get_rate_limit_key(self) -> str | None:
        """Who this request's budget belongs to, or None to exempt it.

        Built from ``rate_limit_key``: the client address for ``"ip"``; the user's pk
        for ``"user"`` and ``"user_or_ip"`` (the address for anonymous requests); the
        header's value for ``"header:<Name>"`` (the address when it is missing or
        empty); a callable's result (None exempts). Override to key otherwise.
        """
        request = self.request
        raw = self.__dict__.get("rate_limit_key", _UNSET)  # an as_view() argument
        if raw is _UNSET:
            raw = _static_attribute(type(self), "rate_limit_key")
        view = type(self).__qualname__
        _validate_key_spec_once(view, raw)
        spec = _unwrap(raw)
        if callable(spec):
            value = spec(request)
            if inspect.isawaitable(value):
                value = await value
            if value is None:
                return None
            if not isinstance(value, str):
                raise ImproperlyConfigured(
                    f"{view}.rate_limit_key returned {value!r}; it must return a str or None."
                )
            return "key:" + value
        assert isinstance(spec, str)
        if spec in ("user", "user_or_ip"):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                return f"user:{user.pk}"
        elif spec.startswith(_HEADER_PREFIX):
            name = spec[len(_HEADER_PREFIX) :]
            value = request.headers.get(name)
            if value is not None and value.strip():
                return f"header:{name.lower()}:{value.strip()}"
        return "ip:" + client_ip(request.META, get_settings().num_proxies)

    # -- the stage -----------------------------------------------------------------

    @request_stage(RATE_LIMIT)
    async def rate_limit_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        """Count the request; answer 429 when over the limit; add the RateLimit fields."""
        view = type(self).__qualname__
        methods = _validate_methods(view, await _maybe_await(self.get_rate_limit_methods()))
        if methods is not None and (request.method or "").upper() not in methods:
            return await call_next(request)
        identity = await _maybe_await(self.get_rate_limit_key())
        if identity is None:
            return await call_next(request)
        if not isinstance(identity, str):
            raise ImproperlyConfigured(
                f"{view}.get_rate_limit_key() returned {identity!r}; it must return a str or None."
            )
        scope = await _maybe_await(self.get_rate_limit_scope())
        _validate_scope(view, scope)
        if scope is None:
            scope = f"{type(self).__module__}.{type(self).__qualname__}"
        alias = await _maybe_await(self.get_rate_limit_cache_alias())
        if alias is None:
            alias = get_settings().cache_alias
        plan = _plan_for(
            view,
            await _maybe_await(self.get_rate_limit()),
            await _maybe_await(self.get_rate_limit_algorithm()),
            alias,
            scope,
        )
        health = health_of(plan.alias)
        try:
            decision = await _check(plan, identity)
        except _StoreBusy as busy:
            health.log(
                "Rate limit check on %r failed while the store is answering other "
                "requests (%s); answering 503.",
                plan.alias,
                busy,
            )
            return problem_response(
                503,
                detail="The request could not be rate limited. Try again later.",
                headers={"Retry-After": "1"},
            )
        except _StoreDown as down:
            if get_settings().rate_limit_fail_open:
                health.log(
                    "Rate limit store %r unavailable (%s); admitting requests "
                    "(RATE_LIMIT_FAIL_OPEN).",
                    plan.alias,
                    down,
                )
                return await call_next(request)
            health.log(
                "Rate limit store %r unavailable (%s); answering 503 (RATE_LIMIT_FAIL_OPEN "
                "is False).",
                plan.alias,
                down,
            )
            return problem_response(
                503, detail="The request could not be rate limited. Try again later."
            )
        fields = ratelimit_fields(plan.rates, decision)
        if decision.allowed:
            response = await call_next(request)
        else:
            response = problem_response(
                429,
                detail=f"Too many requests. Try again in {_seconds(decision.retry_after)}.",
                headers={"Retry-After": str(decision.retry_after)},
            )
        for name, value in fields.items():
            response.headers[name] = value
        return response


def _seconds(n: int) -> str:
    return f"{n} second" if n == 1 else f"{n} seconds"


class _StoreDown(Exception):
    """The store is down: RATE_LIMIT_FAIL_OPEN decides."""


class _StoreBusy(Exception):
    """A check failed while the store is otherwise answering: never admit uncounted."""


def _class_values(cls: type) -> dict[str, Any]:
    names = (
        "rate_limit",
        "rate_limit_key",
        "rate_limit_methods",
        "rate_limit_scope",
        "rate_limit_algorithm",
        "rate_limit_cache_alias",
    )
    return {name: inspect.getattr_static(cls, name) for name in names}


_PLAIN_TYPES: Final = frozenset({str, list, tuple, frozenset, set, int, float, bool, type(None)})


async def _maybe_await(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:  # the common case, without inspect's checks
        return value
    if inspect.isawaitable(value):
        return await value
    return value


def client_digest(scope: str, identity: str) -> str:
    """The name of one client's budget in the store: an HMAC of the scope and identity.

    Keyed by ``SECRET_KEY``, so that the stored names cannot be reversed by trying
    addresses, nor linked between sites sharing one Redis. Changing ``SECRET_KEY``
    starts every budget afresh.
    """
    return _digest(str(settings.SECRET_KEY), scope, identity)


@functools.lru_cache(maxsize=4096)
def _digest(secret: str, scope: str, identity: str) -> str:
    message = f"{len(scope)}:{scope}{identity}".encode("utf-8", "surrogatepass")
    return hmac.new(_hmac_key_for(secret), message, hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=4)
def _hmac_key_for(secret: str) -> bytes:
    return hashlib.sha256(b"django-async-cbv.ratelimit:" + secret.encode()).digest()


# Checks in flight on Redis, per event loop and alias: more wait for a turn here, so a
# burst never exhausts the connection pool nor times out waiting for a connection.
MAX_CONCURRENT_CHECKS: Final = 64
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _gate(alias: str) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gates = _gates.get(loop)
    if gates is None:
        gates = _gates[loop] = {}
    gate = gates.get(alias)
    if gate is None:
        gate = gates[alias] = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)
    return gate


class _StoreError(Exception):
    """One call to the store failed; ``definitive`` when it surely cannot be reached."""

    def __init__(self, message: str, *, definitive: bool = False) -> None:
        super().__init__(message)
        self.definitive = definitive


_is_definitive = is_definitive


@functools.cache
def _redis_errors() -> tuple[type[Exception], type[Exception]]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError

    return RedisConnectionError, RedisError


async def _check(plan: _Plan, identity: str) -> Decision:
    """Count one request of ``identity`` under ``plan``.

    Raises _StoreDown when the store is down (or skipped as down), _StoreBusy when a
    call failed while the store is otherwise answering (see ``_store_health``).
    """
    store = _store_for(plan.alias)
    who = client_digest(plan.scope, identity)
    health = health_of(plan.alias)
    if health.should_skip():
        raise _StoreDown("the store is down (skipped until it answers again)")
    try:
        if store.redis:
            decision = await _check_redis(plan, who, health)
        else:
            decision = await _check_cache(plan, who, store)
    except _StoreError as exc:
        if health.failed(definitive=exc.definitive) == "transient":
            raise _StoreBusy(str(exc)) from exc
        raise _StoreDown(str(exc)) from exc
    health.succeeded()
    return decision


async def _check_redis(plan: _Plan, who: str, health: StoreHealth) -> Decision:
    _, RedisError = _redis_errors()
    try:
        channel = _redis.channel_for(plan.alias, "ratelimit")
    except _redis.RedisConfigError as exc:
        # Reported by the E015 check. Never an uncounted admission: 503, fail-open or not.
        health.log("%s", exc, level=logging.ERROR)
        raise _StoreBusy(str(exc)) from exc
    if channel is None:  # CACHES changed under the request
        raise _StoreError(f"the cache {plan.alias!r} is no longer Redis")
    async with _gate(plan.alias):
        if health.should_skip():  # found down while this request waited for its turn
            raise _StoreDown("the store is down (skipped until it answers again)")
        # A connection the server has closed (restart, failover, idle timeout) is
        # replaced and the check sent once more by the channel. Should the first
        # attempt have run, the request counts twice: a refusal one request early,
        # never an admission beyond the limit.
        try:
            return await _limiter.check(
                channel, _key_prefix(plan.alias), who, plan.rates, plan.algorithm
            )
        except (RedisError, OSError, TimeoutError) as exc:
            raise _StoreError(
                f"{type(exc).__name__}: {exc}", definitive=_is_definitive(exc)
            ) from exc


async def _check_cache(plan: _Plan, who: str, store: _Store) -> Decision:
    key_base = f"async_cbv:rl:{who}:fw"
    cache = caches[plan.alias]
    try:
        if store.local_memory:
            # Memory only, under the cache's own lock: no I/O to keep off the loop.
            return fixed_window_check(cache, key_base, plan.rates)
        return await _in_thread(plan.alias, key_base, plan.rates)
    except Exception as exc:
        raise _StoreError(f"{type(exc).__name__}: {exc}", definitive=_is_definitive(exc)) from exc


def _in_thread(alias: str, key_base: str, rates: tuple[Rate, ...]) -> Awaitable[Decision]:
    def check() -> Decision:
        # The thread's own cache connection (caches are per thread).
        return fixed_window_check(caches[alias], key_base, rates)

    return sync_to_async(check, thread_sensitive=False)()
