"""The app must be installed: without it the first as_view() says so (no silent checks)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import override_settings

from django_async_cbv import AsyncView


class Installed(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("installed")


def test_as_view_requires_the_app_so_the_checks_cannot_be_skipped() -> None:
    """Without the app no check runs: the first as_view() says what to add."""
    others = ["django.contrib.auth", "django.contrib.contenttypes", "tests"]
    with (
        override_settings(INSTALLED_APPS=others),
        pytest.raises(ImproperlyConfigured, match=r"Add 'django_async_cbv' to INSTALLED_APPS"),
    ):
        Installed.as_view()
    with override_settings(INSTALLED_APPS=[*others, "django_async_cbv.apps.AsyncCBVConfig"]):
        Installed.as_view()  # the AppConfig path counts too


def test_the_app_is_read_from_settings_before_the_registry_is_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A view module imported while Django populates the apps reads the setting."""
    from django.apps import apps
    from django.conf import settings

    monkeypatch.setattr(apps, "apps_ready", False)
    Installed.as_view()
    monkeypatch.setattr(settings, "INSTALLED_APPS", ["tests"])  # no signal: the registry stays
    with pytest.raises(ImproperlyConfigured, match="INSTALLED_APPS"):
        Installed.as_view()


@pytest.mark.django_db  # Django 6.1's model checks query the database
def test_manage_py_check_without_the_app_stops_with_the_message() -> None:
    """The URLconf is imported by the checks: the first as_view() stops them loudly."""
    from types import ModuleType

    from django.core.management import call_command
    from django.urls import path

    urlconf = ModuleType("lazy_routes")

    def routes(name: str) -> object:  # the module's __getattr__: as_view() runs on import
        if name == "urlpatterns":
            return [path("installed/", Installed.as_view())]
        raise AttributeError(name)

    urlconf.__getattr__ = routes  # type: ignore[method-assign]
    others = ["django.contrib.auth", "django.contrib.contenttypes", "tests"]
    with (
        override_settings(INSTALLED_APPS=others, ROOT_URLCONF=urlconf),
        pytest.raises(ImproperlyConfigured, match="Add 'django_async_cbv' to INSTALLED_APPS"),
    ):
        call_command("check")
