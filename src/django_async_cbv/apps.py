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
from django.core.exceptions import ImproperlyConfigured

APP = "django_async_cbv"

logger = logging.getLogger("django_async_cbv")
_warned: set[str] = set()


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
    ``as_view()`` of a library view runs the settings checks, the checks of the
    circuit breakers made so far, and the view's own checks against the settings:
    an error raises ``ImproperlyConfigured`` with the check's id, message and hint,
    and a warning is logged once. Nothing is skipped silently.
    """
    if _installed() or not apps.ready:
        return
    from .checks import breaker_messages, check_redis_caches, check_settings

    # The breakers made so far (those of the view modules imported before this one).
    messages = [*check_settings(), *check_redis_caches(), *breaker_messages()]
    if not any(message.is_serious() for message in messages):
        messages += view_class.check_against_settings(initkwargs)
    errors = []
    for message in messages:
        if message.is_silenced():  # SILENCED_SYSTEM_CHECKS, as manage.py check honours it
            continue
        text = f"{message.id}: {message.msg}" + (f" HINT: {message.hint}" if message.hint else "")
        if message.is_serious():
            errors.append(text)
        elif text not in _warned:
            _warned.add(text)
            logger.warning("%s (%r is not in INSTALLED_APPS, so as_view() checked it)", text, APP)
    if errors:
        raise ImproperlyConfigured("\n".join(errors))
