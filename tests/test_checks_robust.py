"""The view checks (E010) survive any failure of one view and check every other one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from django import forms
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import include, path

from django_async_cbv import AsyncAPIView, AsyncView
from tests.models import Widget


class PagedView(AsyncView):
    """A view whose own check (an override, as the docs invite) assumes an int."""

    page_limit: Any = 10

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        super().check_configuration(initkwargs)
        if cls.page_limit < 1:  # a TypeError when page_limit is not a number
            raise ImproperlyConfigured(f"{cls.__qualname__}.page_limit must be at least 1.")

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("paged")


class TimedView(AsyncView):
    timeout = 5

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("timed")


class ItemAPI(AsyncAPIView):
    """A generic API view that gets its model from each route."""


urlpatterns = [
    path("paged/", PagedView.as_view()),  # first, so the others are checked after it fails
    path("nested/", include([path("timed/", TimedView.as_view())])),
    path("widgets/", ItemAPI.as_view(model=Widget)),
    path("widgets/<int:pk>/", ItemAPI.as_view(model=Widget)),
]

# Django 6.1's model checks query the database, as manage.py check does.
pytestmark = pytest.mark.django_db


def e010() -> list[Any]:
    with override_settings(ROOT_URLCONF=__name__):
        return [m for m in run_checks() if m.id == "django_async_cbv.E010"]


def test_a_valid_urlconf_has_no_view_errors() -> None:
    """Views configured per route (as_view(model=...)) are checked with those arguments."""
    assert e010() == []


def test_any_exception_from_one_view_is_an_e010_and_the_others_are_still_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TypeError from one view's check is reported, not raised; the next view is checked."""
    monkeypatch.setattr(PagedView, "page_limit", None)
    monkeypatch.setattr(TimedView, "timeout", -1)
    messages = e010()
    assert [m.obj for m in messages] == [PagedView, TimedView]
    broken, misconfigured = messages
    assert broken.msg == (
        f"Checking the configuration of {__name__}.PagedView raised TypeError: "
        "'<' not supported between instances of 'NoneType' and 'int'"
    )
    assert "PagedView.check_configuration()" in (broken.hint or "")
    assert "TimedView.timeout must be None or a positive number" in misconfigured.msg


def test_manage_py_check_lists_every_view_error_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`manage.py check` ends with its usual error report naming both views."""
    monkeypatch.setattr(PagedView, "page_limit", None)
    monkeypatch.setattr(TimedView, "timeout", -1)
    with (
        override_settings(ROOT_URLCONF=__name__),
        pytest.raises(SystemCheckError) as raised,
    ):
        call_command("check")
    report = str(raised.value)
    assert report.count("django_async_cbv.E010") == 2
    assert "PagedView raised TypeError" in report
    assert "TimedView.timeout" in report


class NoMetaForm(forms.ModelForm):  # type: ignore[type-arg]
    """A ModelForm without a Meta: no model to validate against."""


@pytest.mark.parametrize("form_class", [forms.ModelForm, NoMetaForm])
def test_form_class_without_meta_model_is_improperly_configured(form_class: type) -> None:
    """A ModelForm with no Meta.model fails at as_view() with a clear message."""
    view_class = type("OrderAPI", (AsyncAPIView,), {"model": Widget, "form_class": form_class})
    with pytest.raises(
        ImproperlyConfigured,
        match=rf"^OrderAPI\.form_class {form_class.__name__} has no Meta\.model",
    ):
        view_class.as_view()


def test_form_class_without_meta_model_is_caught_without_a_model_too() -> None:
    """Also when the model comes from get_queryset() (nothing to compare the form with)."""

    class QuerysetAPI(AsyncAPIView):
        form_class = NoMetaForm

        async def get_queryset(self) -> Any:
            return Widget.objects.all()

    with pytest.raises(ImproperlyConfigured, match=r"NoMetaForm has no Meta\.model"):
        QuerysetAPI.as_view()
