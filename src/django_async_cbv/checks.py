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
======  =====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
        nested = getattr(pattern, "url_patterns", None)
        if nested is not None:
            yield from _walk(nested)
        else:
            yield getattr(pattern, "callback", None)


def check_views(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the configuration of every AsyncView subclass routed in the URLconf."""
    from django.urls import get_resolver

    from .views import AsyncView

    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    try:
        patterns = get_resolver().url_patterns
    except Exception:
        return []
    errors: list[CheckMessage] = []
    seen: set[type] = set()
    for callback in _walk(patterns):
        view_class = getattr(callback, "view_class", None)
        if not (isinstance(view_class, type) and issubclass(view_class, AsyncView)):
            continue
        if view_class in seen:
            continue
        seen.add(view_class)
        try:
            view_class.check_configuration()
        except ImproperlyConfigured as exc:
            errors.append(
                Error(
                    str(exc),
                    hint="Fix the class attribute named in the message.",
                    obj=view_class,
                    id="django_async_cbv.E010",
                )
            )
    return errors
