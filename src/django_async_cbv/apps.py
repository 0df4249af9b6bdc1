"""App config: ``"django_async_cbv"`` must be in INSTALLED_APPS; it registers the system checks."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

APP = "django_async_cbv"


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


def require_installed() -> None:
    """Raise ``ImproperlyConfigured`` unless the app is in INSTALLED_APPS.

    The system checks are registered by the app; without it ``manage.py check``
    would pass over every mistake silently. Called by ``AsyncView.as_view()``.
    """
    if not _installed():
        raise ImproperlyConfigured(
            f"Add {APP!r} to INSTALLED_APPS: django-async-cbv needs it for the system "
            "checks that validate your views and the ASYNC_CBV setting."
        )
