"""``AsyncCacheMixin``: the view mixin (see the package for what it does)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone, translation
from django.utils.cache import has_vary_header

from django_async_cbv._checked import Checked
from django_async_cbv._redis.health import health_of
from django_async_cbv._util import StoreError, maybe_await
from django_async_cbv.conf import get_settings
from django_async_cbv.stages import CACHE, USER, CallNext, request_stage

from .flow import _CacheFlow
from .freshness import Freshness, freshness
from .headers import X_CACHE, _request_header
from .plan import (
    DEFAULT_MAX_ENTRY_SIZE,
    _header_names,
    _Plan,
    _static_plan,
    _user_identity,
    _validate,
    digest,
    key_namespace,
)
from .policy import _NEVER_STORED, _messages_used
from .store import set_generation, store_for

__all__ = ["AsyncCacheMixin"]

logger = logging.getLogger("django_async_cbv.cache")

#: Where ``cache_header_stage`` runs: before every built-in stage, so it sees their answers.
CACHE_HEADER: Final = USER - 10


class AsyncCacheMixin(_CacheFlow, Checked):
    """Cache a view's GET responses; one handler run per cold key; safe by default.

    Put it in the bases of an :class:`~django_async_cbv.AsyncView` (in any order).
    Every attribute has a ``get_<name>()`` method to vary it per request.
    """

    #: Seconds a response stays fresh (less when its ``s-maxage``, ``max-age`` or
    #: ``Expires`` says so).
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
    #: Largest body (bytes) that is stored; larger responses are served, not stored.
    #: None: no limit.
    cache_max_entry_size: ClassVar[int | None] = DEFAULT_MAX_ENTRY_SIZE

    request: HttpRequest

    # -- configuration ---------------------------------------------------------------
    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Validate the cache attributes (and ``as_view()`` arguments); see AsyncView."""
        super().check_configuration(initkwargs)
        values = {
            name: (initkwargs or {}).get(name, getattr(cls, name))
            for name in (
                "cache_timeout",
                "cache_alias",
                "cache_key_prefix",
                "cache_vary_on",
                "cache_per_user",
                "cache_stale_ttl",
                "cache_max_entry_size",
            )
        }
        _validate(cls.__qualname__, values)

    @classmethod
    def check_against_settings(cls, initkwargs: Mapping[str, Any] | None = None) -> list[Any]:
        """Report a ``cache_alias`` that is not in ``CACHES`` (check E012)."""
        from django.core.checks import Error

        messages: list[Any] = list(super().check_against_settings(initkwargs))
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

    async def _answers_per_user(self) -> bool:
        """Whether this request's answer is marked ``private`` (``cache_per_user``)."""
        return bool(await maybe_await(self.get_cache_per_user()))  # in doubt, private

    def get_cache_stale_ttl(self) -> float:
        """Seconds a stale entry may still be served, for this request."""
        return self.cache_stale_ttl

    def get_cache_max_entry_size(self) -> int | None:
        """Largest body in bytes that is stored, for this request (None: no limit)."""
        return self.cache_max_entry_size

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
        for header in _header_names(await maybe_await(self.get_cache_vary_on())):
            parts += [header, _request_header(request, header)]
        parts += ["lang", translation.get_language(), "tz", timezone.get_current_timezone_name()]
        if await maybe_await(self.get_cache_per_user()):
            parts += ["user", _user_identity(request)]
        return digest(*parts)

    def should_cache_response(self, response: HttpResponseBase) -> bool:
        """Whether the view wants ``response`` stored: status 200 by default.

        Widen it to store other statuses; the safety rules (cookies, ``Vary: *``,
        ``Cache-Control``, the session, CSRF and CSP nonces) apply whatever it says.
        May be overridden with ``async def``.
        """
        return response.status_code == 200

    # -- invalidation -----------------------------------------------------------------

    @classmethod
    def _class_plan_names(cls) -> tuple[str, str]:
        alias = cls.cache_alias or get_settings().cache_alias
        prefix = cls.cache_key_prefix or f"{cls.__module__}.{cls.__qualname__}"
        return alias, f"{key_namespace(alias, digest(prefix))}:gen"

    @classmethod
    def invalidate_cache(cls) -> None:
        """Turn every entry of the view into a miss (sync; see :meth:`ainvalidate_cache`).

        Uses the class attributes ``cache_alias`` and ``cache_key_prefix``.
        """
        alias, gen_name = cls._class_plan_names()
        set_generation(alias, gen_name)

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
        return await self._serve(request, call_next)

    async def _plan(self, request: HttpRequest) -> _Plan:
        cls = type(self)
        view = cls.__qualname__
        timeout = await maybe_await(self.get_cache_timeout())
        alias = await maybe_await(self.get_cache_alias())
        prefix = await maybe_await(self.get_cache_key_prefix())
        vary_on = await maybe_await(self.get_cache_vary_on())
        per_user = await maybe_await(self.get_cache_per_user())
        stale_ttl = await maybe_await(self.get_cache_stale_ttl())
        max_size = await maybe_await(self.get_cache_max_entry_size())
        if not isinstance(vary_on, str | tuple) and isinstance(vary_on, Iterable):
            vary_on = tuple(vary_on)  # read once: a generator would be empty the second time
        try:
            static = _static_plan(
                cls.__module__, view, timeout, alias, prefix, vary_on, per_user, stale_ttl, max_size
            )
        except TypeError:  # an unhashable value: validated every time
            static = _static_plan.__wrapped__(
                cls.__module__, view, timeout, alias, prefix, vary_on, per_user, stale_ttl, max_size
            )
        alias = static.alias or get_settings().cache_alias
        if alias not in settings.CACHES:
            raise ImproperlyConfigured(f"{view}.cache_alias is {alias!r}, which is not in CACHES.")
        base = await maybe_await(self.get_cache_key())
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
            max_entry_size=static.max_entry_size,
        )

    async def _storable(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        plan: _Plan,
        touched: bool,
        now: float,
    ) -> Freshness | None:
        """How long to store ``response`` for, or None when a rule forbids storing it."""
        if request.method != "GET" or response.streaming or not isinstance(response, HttpResponse):
            return None  # streaming and file responses included
        if response.status_code in _NEVER_STORED or "Content-Range" in response.headers:
            return None  # partial or validator-dependent: another request would get it
        if not await maybe_await(self.should_cache_response(response)):
            return None
        if response.cookies or "Set-Cookie" in response.headers:
            return None
        if has_vary_header(response, "*"):
            return None
        if touched or request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
            return None
        if _messages_used(request):
            return None
        nonce = getattr(request, "_csp_nonce", None)
        if nonce is not None and bool(nonce):
            return None
        fresh = freshness(response, plan.timeout, now)
        if fresh is None:
            return None
        size = len(response.content)
        if plan.max_entry_size is not None and size > plan.max_entry_size:
            logger.debug(
                "%s: a response of %d bytes is not stored (cache_max_entry_size is %d).",
                type(self).__qualname__,
                size,
                plan.max_entry_size,
            )
            return None
        return fresh

    async def _invalidate_after_write(self) -> None:
        alias = await maybe_await(self.get_cache_alias()) or get_settings().cache_alias
        prefix = await maybe_await(self.get_cache_key_prefix()) or (
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
            await store_for(alias).bump(f"{key_namespace(alias, digest(prefix))}:gen")
        except StoreError as exc:
            health.failed(definitive=exc.definitive)
            health.log(lost, alias, exc, level=logging.ERROR)
        else:
            health.succeeded()
