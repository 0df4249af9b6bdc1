"""System checks for django-async-cbv (ids ``django_async_cbv.E001``...).

======  =====================================================================
E001    ``ASYNC_CBV`` is not a dict.
E002    ``ASYNC_CBV`` has an unknown key.
E003    ``CACHE_ALIAS`` is not an alias in ``CACHES``.
E004    ``NUM_PROXIES`` is not a whole number >= 0.
E005    ``RATE_LIMIT_FAIL_OPEN`` is not a bool.
E006    ``CIRCUIT_BREAKERS`` (or one entry) is not a dict keyed by name.
E007    A circuit breaker has an unknown option.
E008    A circuit breaker option has a bad value.
E009    A circuit breaker's ``storage`` is not an alias in ``CACHES``.
E010    A view class in the URLconf is misconfigured.
E011    A rate-limited view's cache cannot run its algorithm.
E012    A cached view's ``cache_alias`` is not an alias in ``CACHES``.
W001    A rate-limited view counts requests in local memory (per process).
======  =====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from .conf import settings_problems

__all__ = ["check_settings", "check_views"]


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate every key of the ``ASYNC_CBV`` setting."""
    raw = getattr(settings, "ASYNC_CBV", {})
    return [Error(p.msg, hint=p.hint, id=p.id) for p in settings_problems(raw)]


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


def check_views(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the configuration of every AsyncView routed in the URLconf.

    Each route is checked with the keyword arguments it passed to ``as_view()``.
    A view whose check fails in any way is reported as E010 (with the exception's
    type and message when it is not ``ImproperlyConfigured``), and the other views
    are still checked.
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
    for callback in _walk(patterns):
        view_class = getattr(callback, "view_class", None)
        if not (isinstance(view_class, type) and issubclass(view_class, AsyncView)):
            continue
        if id(callback) in seen:
            continue
        seen.add(id(callback))
        initkwargs = _route_kwargs(callback)
        try:
            view_class.check_configuration(initkwargs)
            found = view_class.check_against_settings(initkwargs)
        except Exception as exc:
            found = [_view_error(view_class, exc)]
        for message in found:
            if message not in errors:  # one class routed several times: one message
                errors.append(message)
    return errors
