"""App config: ``"django_async_cbv"`` in INSTALLED_APPS registers the system checks.

The app is optional: without it ``as_view()`` runs the same checks for each view
(:func:`check_without_app`), so a misconfiguration is never passed over silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

APP = "django_async_cbv"

logger = logging.getLogger("django_async_cbv")
_logged: set[str] = set()


class AsyncCBVConfig(AppConfig):
    """Registers django-async-cbv's system checks."""

    name = APP
    verbose_name = "Django async class-based views"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from .checks import check_breakers, check_redis_caches, check_settings, check_views

        register(check_settings, Tags.compatibility)
        register(check_views, Tags.urls)
        register(check_breakers, Tags.compatibility)
        register(check_redis_caches, Tags.caches)


def _installed() -> bool:
    if apps.apps_ready:
        return apps.is_installed(APP)
    # Before the app registry is ready (a view module imported from settings): read
    # the setting as Django will.
    entries = getattr(settings, "INSTALLED_APPS", ())
    return any(entry == APP or str(entry).startswith(APP + ".apps.") for entry in entries)


def check_without_app(view_class: type[Any], initkwargs: Mapping[str, Any]) -> None:
    """Run at ``as_view()`` the checks that the app would give ``manage.py check``.

    With ``"django_async_cbv"`` in INSTALLED_APPS the system checks report every
    problem at startup. Without it (it is optional) they would never run, so each
    ``as_view()`` of a library view runs them itself; nothing is skipped silently.

    - The view's own checks against the settings: an error raises
      ``ImproperlyConfigured`` with the check's id, message and hint.
    - The checks of the whole project (the ``ASYNC_CBV`` setting, the Redis caches,
      the circuit breakers made so far) are logged once each, errors at ERROR and
      warnings at WARNING. They do not stop this view: as with the app installed,
      only the views that read a broken part stop (``ImproperlyConfigured`` naming
      it), and the rest of the URLconf keeps working.

    Ids in ``SILENCED_SYSTEM_CHECKS`` are skipped, as ``manage.py check`` skips them.
    """
    if _installed() or not apps.ready:
        return
    from .checks import breaker_messages, check_redis_caches, check_settings
    from .conf import SettingsError

    # The breakers made so far (those of the view modules imported before this one).
    for message in (*check_settings(), *check_redis_caches(), *breaker_messages()):
        if not message.is_silenced():
            _log_once(message)
    _warn_atomic_requests(view_class)
    try:
        found = view_class.check_against_settings(initkwargs)
    except SettingsError:
        return  # a broken part of ASYNC_CBV, logged above; the view raises when it reads it
    errors = []
    for message in found:
        if message.is_silenced():
            continue
        if message.is_serious():
            errors.append(_describe(message))
        else:
            _log_once(message)
    if errors:
        raise ImproperlyConfigured("\n".join(errors))


def _warn_atomic_requests(view_class: type[Any]) -> None:
    """Log E016 for ``view_class`` when ``ATOMIC_REQUESTS`` is on and ``dispatch`` is
    not exempt: a warning, since the route may still be exempt by a decorator that
    ``as_view()`` cannot see (the system check sees the route as it is)."""
    from .checks import atomic_request_aliases, atomic_requests_error

    aliases = atomic_request_aliases()
    message = atomic_requests_error(view_class, view_class.dispatch, aliases) if aliases else None
    if message is None or message.is_silenced():
        return
    text = _describe(message)
    if text in _logged:
        return
    _logged.add(text)
    logger.warning(
        "%s (unless its route is exempt with transaction.non_atomic_requests: %r is not "
        "in INSTALLED_APPS, so as_view() checked the class and cannot see its route)",
        text,
        APP,
    )


def _describe(message: CheckMessage) -> str:
    return f"{message.id}: {message.msg}" + (f" HINT: {message.hint}" if message.hint else "")


def _log_once(message: CheckMessage) -> None:
    text = _describe(message)
    if text in _logged:
        return
    _logged.add(text)
    level = logging.ERROR if message.is_serious() else logging.WARNING
    logger.log(level, "%s (%r is not in INSTALLED_APPS, so as_view() checked it)", text, APP)
