"""App config: adding ``"django_async_cbv"`` to INSTALLED_APPS enables the system checks."""

from __future__ import annotations

from django.apps import AppConfig


class AsyncCBVConfig(AppConfig):
    """Registers django-async-cbv's system checks."""

    name = "django_async_cbv"
    verbose_name = "Django async class-based views"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from .checks import check_breakers, check_redis_caches, check_settings, check_views

        register(check_settings, Tags.compatibility)
        register(check_views, Tags.urls)
        register(check_breakers, Tags.compatibility)
        register(check_redis_caches, Tags.caches)
