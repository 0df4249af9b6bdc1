"""System checks for django-async-cbv (ids ``django_async_cbv.E001``...).

Every id, with its cause and fix, is listed on the "System checks" page of the docs.
A problem of the ``ASYNC_CBV`` setting is reported once, under its own id, by
:func:`check_settings`; the views that read that setting are not blamed for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured

from .conf import (
    SettingsError,
    breaker_storage_problem,
    get_settings,
    setting_path,
    settings_problems,
)

__all__ = [
    "atomic_request_aliases",
    "atomic_requests_error",
    "breaker_messages",
    "check_breakers",
    "check_redis_caches",
    "check_settings",
    "check_views",
    "lookup_route_warnings",
]


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate every key of the ``ASYNC_CBV`` setting."""
    raw = getattr(settings, "ASYNC_CBV", {})
    return [Error(p.msg, hint=p.hint, id=p.id) for p in settings_problems(raw)]


def check_redis_caches(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E015 for every Redis cache whose options the library cannot use natively async.

    Each is the same ImproperlyConfigured that the first use of the alias raises,
    naming the alias and the option.
    """
    from ._redis import spec_for

    caches = getattr(settings, "CACHES", {})
    if not isinstance(caches, Mapping):
        return []
    errors: list[CheckMessage] = []
    for alias in caches:
        try:
            spec_for(alias)
        except ImproperlyConfigured as exc:
            errors.append(
                Error(
                    str(exc),
                    hint="See the 'Deploying with Redis' page of the django-async-cbv docs "
                    "for the options it supports.",
                    id="django_async_cbv.E015",
                )
            )
    return errors


def _walk(patterns: Iterable[Any]) -> Iterator[Any]:
    for pattern in patterns:
        try:
            nested = getattr(pattern, "url_patterns", None)
        except Exception:
            # An include() whose URLconf fails to import: Django's own URL checks
            # report it; the views of the other patterns are still checked.
            continue
        if nested is not None:
            yield from _walk(nested)
        else:
            yield getattr(pattern, "callback", None)


def _route_kwargs(callback: Any) -> dict[str, Any]:
    """Return the keyword arguments a route passed to ``as_view()``.

    Private ones (a leading underscore), which the library's own ``as_view()``
    methods add, are left out: the class and the route's own arguments are checked.
    """
    initkwargs = getattr(callback, "view_initkwargs", None)
    if not isinstance(initkwargs, Mapping):
        return {}
    return {key: value for key, value in initkwargs.items() if not str(key).startswith("_")}


def _view_error(view_class: type, exc: Exception) -> Error:
    """The E010 error for a view class whose configuration could not be checked."""
    if isinstance(exc, ImproperlyConfigured):
        return Error(
            str(exc),
            hint="Fix the class attribute (or as_view() argument) named in the message.",
            obj=view_class,
            id="django_async_cbv.E010",
        )
    name = f"{view_class.__module__}.{view_class.__qualname__}"
    return Error(
        f"Checking the configuration of {name} raised {type(exc).__name__}: {exc}",
        hint=(
            "A class attribute of the view (or a value it refers to, such as its "
            "form_class or model) is probably not what the view expects; call "
            f"{view_class.__qualname__}.check_configuration() to see the traceback."
        ),
        obj=view_class,
        id="django_async_cbv.E010",
    )


def atomic_request_aliases() -> list[str]:
    """The database aliases whose ``ATOMIC_REQUESTS`` is on."""
    from django.db import connections

    try:
        databases = connections.settings
    except Exception:
        return []  # a broken DATABASES setting: Django's own checks and errors report it
    return [alias for alias, options in databases.items() if options.get("ATOMIC_REQUESTS")]


def atomic_requests_error(view_class: type, callback: Any, aliases: Sequence[str]) -> Error | None:
    """E016 when a routed async view is not exempt from ``ATOMIC_REQUESTS``.

    Django refuses to wrap an async view in a request's transaction: every request to
    it raises ``RuntimeError`` (a 500). ``transaction.non_atomic_requests`` on the
    route (or on ``dispatch``, which ``as_view()`` copies) exempts it.
    """
    exempt = getattr(callback, "_non_atomic_requests", ())
    missing = [alias for alias in aliases if alias not in exempt]
    if not missing:
        return None
    name = f"{view_class.__module__}.{view_class.__qualname__}"
    databases = ", ".join(repr(alias) for alias in missing)
    decorators = "".join(f"transaction.non_atomic_requests(using={alias!r})(" for alias in missing)
    return Error(
        f"{name} is routed while ATOMIC_REQUESTS is on for the database(s) {databases}. "
        "Django cannot run an async view inside a request transaction: it answers every "
        "request to this view with a 500 (RuntimeError).",
        hint=(
            f"Exempt the route: {decorators}{view_class.__qualname__}.as_view()"
            f"{')' * len(missing)}. The view's own writes stay all or nothing: "
            "AsyncAPIView and the generic editing views write in a transaction of their "
            "own (see the 'System checks' page of the django-async-cbv docs)."
        ),
        obj=view_class,
        id="django_async_cbv.E016",
    )


def check_views(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the configuration of every AsyncView routed in the URLconf.

    Each route is checked with the keyword arguments it passed to ``as_view()``,
    and against ``ATOMIC_REQUESTS`` (E016) as routed, decorators included.
    A view whose check fails in any way is reported as E010 (with the exception's
    type and message when it is not ``ImproperlyConfigured``), and the other views
    are still checked. A view that reads an invalid part of ``ASYNC_CBV`` is not
    reported: :func:`check_settings` reports the setting. Then W002 (see
    :func:`lookup_route_warnings`).
    """
    from django.urls import get_resolver

    from .views import AsyncView

    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    try:
        patterns = get_resolver().url_patterns
    except Exception:
        return []
    errors: list[CheckMessage] = []
    seen: set[int] = set()
    atomic = atomic_request_aliases()
    for callback in _walk(patterns):
        view_class = getattr(callback, "view_class", None)
        if not (isinstance(view_class, type) and issubclass(view_class, AsyncView)):
            continue
        if id(callback) in seen:
            continue
        seen.add(id(callback))
        initkwargs = _route_kwargs(callback)
        found: list[CheckMessage] = []
        try:
            view_class.check_configuration(initkwargs)
            found = list(view_class.check_against_settings(initkwargs))
        except SettingsError:
            pass  # a problem of ASYNC_CBV, which check_settings reports under its id
        except Exception as exc:
            found = [_view_error(view_class, exc)]
        atomic_error = atomic_requests_error(view_class, callback, atomic) if atomic else None
        if atomic_error is not None:
            found.append(atomic_error)
        for message in found:
            if message not in errors:  # one class routed several times: one message
                errors.append(message)
    errors += lookup_route_warnings()
    return errors


def lookup_route_warnings() -> list[CheckMessage]:
    """W002 for a route to an API view that captures a lookup value under another name.

    The detail route is the one whose URL captured ``lookup_url_kwarg``; a route that
    captures ``pk``, the model's pk name or ``lookup_field`` under any other name
    (``items/<int:id>/`` with the default ``pk``) is served as the list route: GET
    lists every object and PUT, PATCH and DELETE are 405, with no error anywhere.
    Views that decide the keyword per request (``get_lookup_url_kwarg()`` or
    ``get_lookup_field()`` overridden) are not checked.
    """
    from .api.base import AsyncGenericAPIView
    from .api.config import overrides
    from .api.objects import ObjectMixin
    from .openapi.routes import api_routes

    try:
        routes = api_routes(AsyncGenericAPIView)
    except Exception:
        return []  # an URLconf that fails to load: Django's own URL checks report it
    warnings: list[CheckMessage] = []
    names = ("lookup_field", "lookup_url_kwarg", "model", "queryset")
    for route in routes:
        view_class, initkwargs = route.view_class, route.initkwargs
        if overrides(view_class, ObjectMixin, "get_lookup_url_kwarg") or overrides(
            view_class, ObjectMixin, "get_lookup_field"
        ):
            continue
        values: dict[str, Any] = {name: getattr(view_class, name, None) for name in names}
        values.update(initkwargs)
        lookup_field = values["lookup_field"]
        kwarg = values["lookup_url_kwarg"] or lookup_field
        if not isinstance(kwarg, str) or kwarg in route.parameters:
            continue
        meant: set[str] = {"pk", lookup_field}
        model = values["model"]
        if model is None and values["queryset"] is not None:
            model = getattr(values["queryset"], "model", None)
        with contextlib.suppress(AttributeError):
            meant.add(model._meta.pk.name)
        captured = sorted(meant.intersection(route.parameters))
        if not captured:
            continue
        name = f"{view_class.__module__}.{view_class.__qualname__}"
        message = CheckWarning(
            f"{name} is routed on {route.path!r}, which captures {captured[0]!r} but not "
            f"{kwarg!r} (its lookup_url_kwarg): that route is served as the list route, so "
            "GET lists every object and PUT, PATCH and DELETE are answered 405.",
            hint=(
                f"Capture the lookup value as {kwarg!r} in the route (e.g. '<int:{kwarg}>'), "
                f"or set lookup_url_kwarg = {captured[0]!r} on the view or in as_view()."
            ),
            obj=view_class,
            id="django_async_cbv.W002",
        )
        if message not in warnings:
            warnings.append(message)
    return warnings


def check_breakers(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Check every CircuitBreaker of this process against the others and the settings.

    E013: two breakers of one name configured differently (or differently from
    ``ASYNC_CBV["CIRCUIT_BREAKERS"]``): one name is one circuit. E014: a breaker's
    ``storage`` is a cache alias that is not Redis. The URLconf is loaded first, so
    that breakers created in view modules are seen.
    """
    from django.urls import get_resolver

    if getattr(settings, "ROOT_URLCONF", None):
        # Import the view modules; a failing URLconf is reported by Django's own checks.
        with contextlib.suppress(Exception):
            get_resolver().url_patterns  # noqa: B018
    return breaker_messages()


def breaker_messages() -> list[CheckMessage]:
    """E013 and E014 for the CircuitBreakers alive now (see :func:`check_breakers`).

    Without the URLconf loaded first: ``as_view()`` runs it while the URLconf is imported.
    """
    from .breaker import breakers

    # The valid entries; check_settings reports the others.
    configured = dict(get_settings().circuit_breakers)
    caches = getattr(settings, "CACHES", {})
    errors: list[CheckMessage] = []
    by_name: dict[str, list[Any]] = {}
    for breaker in sorted(breakers(), key=lambda b: b.name):
        by_name.setdefault(breaker.name, []).append(breaker)
        storage = breaker.storage
        if storage is not None:
            where = f"CircuitBreaker({breaker.name!r}).storage"
            if storage not in caches:
                errors.append(
                    Error(
                        f"{where} is {storage!r}, which is not an alias in CACHES.",
                        hint="Use None for per-process state, or the alias of a Redis cache.",
                        obj=breaker,
                        id="django_async_cbv.E014",
                    )
                )
            elif not _is_redis(caches[storage]):
                problem = breaker_storage_problem(where, storage, caches[storage])
                errors.append(Error(problem.msg, hint=problem.hint, obj=breaker, id=problem.id))
    for name, group in by_name.items():
        described = {_describe(b.config) for b in group}
        if name in configured:
            setting = configured[name]
            for breaker in group:
                ours = tuple(getattr(breaker, key) for key in _SETTING_KEYS)
                if ours != tuple(getattr(setting, key) for key in _SETTING_KEYS):
                    where = setting_path("CIRCUIT_BREAKERS", name)
                    described.add(f"{where} {_describe_setting(setting)}")
        if len(described) > 1:
            errors.append(
                Error(
                    f"The circuit breaker {name!r} is configured in {len(described)} "
                    f"different ways: {'; '.join(sorted(described))}.",
                    hint="One name is one circuit: give every breaker of that name the same "
                    "options (e.g. create it once, or use get_breaker(name)), or give the "
                    "others names of their own.",
                    id="django_async_cbv.E013",
                )
            )
    return errors


_SETTING_KEYS = (
    "failure_threshold",
    "recovery_timeout",
    "half_open_max_calls",
    "success_threshold",
    "timeout",
    "storage",
)


def _is_redis(config: object) -> bool:
    from ._redis import is_redis_config

    return isinstance(config, Mapping) and is_redis_config(config)


def _describe(config: tuple[Any, ...]) -> str:
    names = (*_SETTING_KEYS[:4], "failure_exceptions", "ignored_exceptions", *_SETTING_KEYS[4:])
    parts = []
    for key, value in zip(names, config, strict=True):
        if isinstance(value, tuple):
            value = "(" + ", ".join(getattr(v, "__qualname__", str(v)) for v in value) + ")"
        parts.append(f"{key}={value}")
    return "CircuitBreaker(" + ", ".join(parts) + ")"


def _describe_setting(setting: Any) -> str:
    return "{" + ", ".join(f"{key}={getattr(setting, key)!r}" for key in _SETTING_KEYS) + "}"
