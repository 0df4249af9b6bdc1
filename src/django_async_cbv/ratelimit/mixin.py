"""``AsyncRateLimitMixin``: exact rate limits, shared by every process on one store.

The mixin is one request stage (:data:`~django_async_cbv.stages.RATE_LIMIT`): it runs
after the user is resolved and before access checks, the cache and the handler, so a
denied request and a cached answer still cost budget, and every response of a limited
view that the stages see (errors that ``handle_exception()`` maps and cache hits
included) carries the ``RateLimit-Policy`` and ``RateLimit`` fields.

Stores: on a Redis cache alias (django-redis or Django's ``RedisCache``) every
algorithm runs as one server-side script per check (see ``redis_limiter``); on local
memory, memcached and other Redis caches only ``fixed_window`` is available, through
the cache's atomic ``add`` and ``incr`` (see ``cache_limiter``). Other backends have
no atomic increment and are refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from django.core.checks import CheckMessage
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from django_async_cbv._checked import Checked
from django_async_cbv._redis.health import health_of
from django_async_cbv._util import maybe_await
from django_async_cbv.conf import get_settings
from django_async_cbv.problems import problem_response
from django_async_cbv.stages import RATE_LIMIT, CallNext, request_stage

from .client_ip import client_ip
from .rates import Rate
from .redis_limiter import Decision
from .stores import _check, _plan_for, _store_for, _StoreBusy, _StoreDown
from .validation import (
    _HEADER_PREFIX,
    _UNSET,
    _class_values,
    _static_attribute,
    _unwrap,
    _validate_key_spec,
    _validate_key_spec_once,
    _validate_methods,
    _validate_rates,
    _validate_scope,
)

__all__ = ["AsyncRateLimitMixin", "ratelimit_fields"]


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


class AsyncRateLimitMixin(Checked):
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
        super().check_configuration(initkwargs)
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
        messages: list[CheckMessage] = list(super().check_against_settings(initkwargs))
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
                    "Redis cache (or local memory, one budget per process), or use "
                    "rate_limit_algorithm = 'fixed_window' on memcached.",
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
        methods = _validate_methods(view, await maybe_await(self.get_rate_limit_methods()))
        if methods is not None and (request.method or "").upper() not in methods:
            return await call_next(request)
        identity = await maybe_await(self.get_rate_limit_key())
        if identity is None:
            return await call_next(request)
        if not isinstance(identity, str):
            raise ImproperlyConfigured(
                f"{view}.get_rate_limit_key() returned {identity!r}; it must return a str or None."
            )
        scope = await maybe_await(self.get_rate_limit_scope())
        _validate_scope(view, scope)
        if scope is None:
            scope = f"{type(self).__module__}.{type(self).__qualname__}"
        conf = get_settings()
        # Read now, not only once the store is down: an invalid value raises on the
        # first request.
        fail_open = conf.rate_limit_fail_open
        alias = await maybe_await(self.get_rate_limit_cache_alias())
        if alias is None:
            alias = conf.cache_alias
        plan = _plan_for(
            view,
            await maybe_await(self.get_rate_limit()),
            await maybe_await(self.get_rate_limit_algorithm()),
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
            if fail_open:
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
