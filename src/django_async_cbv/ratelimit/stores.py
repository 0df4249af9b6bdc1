"""Where a view's requests are counted: the store of a cache alias, and one check (internal).

On a Redis cache alias every algorithm runs as one server-side script per check (see
``redis_limiter``); on local memory, memcached and other Redis caches only
``fixed_window`` is available, through the cache's atomic ``add`` and ``incr`` (see
``cache_limiter``). Other backends have no atomic increment and are refused.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import weakref
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_async_cbv import _redis
from django_async_cbv._redis.health import StoreHealth, health_of
from django_async_cbv._redis.health import forget as _forget_health
from django_async_cbv._util import StoreError, redis_call

from .cache_limiter import fixed_window_check
from .local_limiter import local_check
from .rates import Rate
from .redis_limiter import Decision, RedisLimiter
from .validation import _hashable, _validate_rates

_limiter = RedisLimiter()


@dataclass(frozen=True)
class _Store:
    """How a cache alias can count requests."""

    alias: str
    redis: bool  # one script per check through redis.asyncio; else add + incr
    local_memory: bool  # per process; every algorithm, under a lock of this process
    label: str
    location: str = ""


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
                "count requests exactly. Rate limit on a Redis cache or in local memory "
                "(any algorithm), or on memcached (fixed_window only)."
            )
        local = _is_subclass(backend_class, _LOCMEM)
        location = str(config.get("LOCATION", ""))
        store = _Store(alias, redis=False, local_memory=local, label=backend, location=location)
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
    if not store.redis and not store.local_memory and algorithm != "fixed_window":
        raise ImproperlyConfigured(
            f"{view}.rate_limit_algorithm is {algorithm!r}, but the cache {alias!r} "
            f"({store.label}) supports only 'fixed_window'. Use a Redis cache (or local "
            f"memory, one budget per process) for {algorithm!r}."
        )
    return _Plan(rates=rates, algorithm=algorithm, alias=alias, scope=scope)


def _plan_for(view: str, rate: object, algorithm: object, alias: object, scope: str) -> _Plan:
    """:func:`_plan`, uncached for values that cannot be cached (they are then refused)."""
    rate = _hashable(rate)
    try:
        return _plan(view, rate, algorithm, alias, scope)
    except TypeError:  # unhashable: not a valid value, so let _plan say why
        return _plan.__wrapped__(view, rate, algorithm, alias, scope)


class _StoreDown(Exception):
    """The store is down: RATE_LIMIT_FAIL_OPEN decides."""


class _StoreBusy(Exception):
    """A check failed while the store is otherwise answering: never admit uncounted."""


def client_digest(scope: str, identity: str) -> str:
    """The name of one client's budget in the store: an HMAC of the scope and identity.

    Keyed by ``SECRET_KEY``, so that the stored names cannot be reversed by trying
    addresses, nor linked between sites sharing one Redis. Changing ``SECRET_KEY``
    starts every budget afresh.
    """
    secret = str(settings.SECRET_KEY)
    if len(identity) > MEMO_MAX_IDENTITY:
        # A client-chosen value (a header key) may be long: hashed afresh each time,
        # so that the memo never holds more than 4,096 short identities.
        return _hmac_digest(secret, scope, identity)
    return _digest(secret, scope, identity)


#: The longest identity whose digest is memoized (an address, a user, a short key).
MEMO_MAX_IDENTITY: Final = 256


@functools.lru_cache(maxsize=4096)
def _digest(secret: str, scope: str, identity: str) -> str:
    return _hmac_digest(secret, scope, identity)


def _hmac_digest(secret: str, scope: str, identity: str) -> str:
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


async def _check(plan: _Plan, identity: str) -> Decision:
    """Count one request of ``identity`` under ``plan``.

    Raises _StoreDown when the store is down (or skipped as down), _StoreBusy when a
    call failed while the store is otherwise answering (see ``_redis.health``).
    """
    store = _store_for(plan.alias)
    who = client_digest(plan.scope, identity)
    health = health_of(plan.alias)
    if health.should_skip():
        raise _StoreDown("the store is down (skipped until it answers again)")
    probing = health.down  # down, and this request's turn to try it
    try:
        if store.redis:
            decision = await _check_redis(plan, who, health, probing=probing)
        else:
            decision = await _check_cache(plan, who, store)
    except StoreError as exc:
        if exc.answered:
            # Redis is up and refuses the check (ACL rights, a bad database, a script
            # error): a configuration fault, never a reason to admit uncounted.
            health.log(
                "Rate limit store %r refused the check: %s", plan.alias, exc, level=logging.ERROR
            )
            raise _StoreBusy(str(exc)) from exc
        if health.failed(definitive=exc.definitive) == "transient":
            raise _StoreBusy(str(exc)) from exc
        raise _StoreDown(str(exc)) from exc
    health.succeeded()
    return decision


async def _check_redis(
    plan: _Plan, who: str, health: StoreHealth, *, probing: bool = False
) -> Decision:
    try:
        channel = _redis.channel_for(plan.alias, "ratelimit")
    except _redis.RedisConfigError as exc:
        # Reported by the E015 check. Never an uncounted admission: 503, fail-open or not.
        health.log("%s", exc, level=logging.ERROR)
        raise _StoreBusy(str(exc)) from exc
    if channel is None:  # CACHES changed under the request
        raise StoreError(f"the cache {plan.alias!r} is no longer Redis")
    async with _gate(plan.alias):
        # Found down while this request waited for its turn (a probe goes on: its turn
        # was taken by the check above, and asking again would skip it).
        if not probing and health.should_skip():
            raise _StoreDown("the store is down (skipped until it answers again)")
        # A connection the server has closed (restart, failover, idle timeout) is
        # replaced and the check sent once more by the channel. Should the first
        # attempt have run, the request counts twice: a refusal one request early,
        # never an admission beyond the limit.
        decision: Decision = await redis_call(
            _limiter.check(channel, _key_prefix(plan.alias), who, plan.rates, plan.algorithm)
        )
        return decision


async def _check_cache(plan: _Plan, who: str, store: _Store) -> Decision:
    key_base = f"async_cbv:rl:{who}:fw"
    cache = caches[plan.alias]
    try:
        if store.local_memory:
            # Memory only, under locks of this process: no I/O to keep off the loop.
            if plan.algorithm != "fixed_window":
                return local_check(
                    cache, store.location, f"async_cbv:rl:{who}", plan.rates, plan.algorithm
                )
            return fixed_window_check(cache, key_base, plan.rates)
        return await _in_thread(plan.alias, key_base, plan.rates)
    except Exception as exc:
        raise StoreError.from_exception(exc) from exc


def _in_thread(alias: str, key_base: str, rates: tuple[Rate, ...]) -> Awaitable[Decision]:
    def check() -> Decision:
        # The thread's own cache connection (caches are per thread).
        return fixed_window_check(caches[alias], key_base, rates)

    return sync_to_async(check, thread_sensitive=False)()
