"""Views, URLs and helpers shared by the ``AsyncAPIView`` tests (no tests in here).

Test modules route to these views with ``pytest.mark.urls("tests.test_api_support")``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, connections, models
from django.http import HttpResponse
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from tests.models import Article, AuditEntry, Category, Widget

T = TypeVar("T")

URLS = "tests.test_api_support"
PROBLEM = "application/problem+json"
JSON = "application/json"


class WidgetAPI(AsyncAPIView):
    """Every field of Widget; ``code`` read-only; small pages for the tests."""

    model = Widget
    read_only_fields = ("code",)
    paginate_by = 3
    max_paginate_by = 5
    detail_url_name = "widget-detail"


class CategoryAPI(AsyncAPIView):
    """No pagination; Location built from the list path."""

    queryset = Category.objects.all()
    paginate_by = None


class ArticleAPI(AsyncAPIView):
    """Looked up by slug; the model defines get_absolute_url()."""

    model = Article
    fields = ("slug", "title")
    lookup_field = "slug"


class AuditedWidgetAPI(WidgetAPI):
    """Async hooks that write twice; a name starting with "boom" fails after both writes."""

    async def perform_create(self, form: Any) -> models.Model:
        await AuditEntry.objects.acreate(action="create", name=form.cleaned_data["name"])
        obj = await super().perform_create(form)
        name = form.cleaned_data["name"]
        if name.startswith("boom-validation"):
            raise ValidationError({"name": ["Rejected by the hook."]})
        if name.startswith("boom-nonfield"):
            raise ValidationError("The hook refused this object.")
        if name.startswith("boom-duplicate"):
            # A second row with the same unique name: the database refuses it.
            await Widget.objects.acreate(name=name, price="1.00")
        if name.startswith("boom-crash"):
            raise RuntimeError("hook crashed")
        return obj

    async def perform_update(self, form: Any) -> models.Model:
        await AuditEntry.objects.acreate(action="update", name=form.instance.name)
        obj = await super().perform_update(form)
        if form.cleaned_data.get("description") == "boom":
            raise ValidationError({"description": ["Rejected by the hook."]})
        return obj

    async def perform_destroy(self, obj: models.Model) -> None:
        await AuditEntry.objects.acreate(action="destroy", name=str(obj))
        await super().perform_destroy(obj)
        if str(obj).startswith("keep"):
            raise ValidationError("This widget cannot be deleted.")


class SyncHookWidgetAPI(WidgetAPI):
    """Plain ``def`` hooks, run directly in the write's thread."""

    def perform_create(self, form: Any) -> models.Model:  # type: ignore[override]
        AuditEntry.objects.create(action="sync-create", name=form.cleaned_data["name"])
        obj: models.Model = form.save()
        if form.cleaned_data["name"].startswith("boom"):
            raise ValidationError({"name": ["Rejected by the sync hook."]})
        return obj

    def perform_destroy(self, obj: models.Model) -> None:  # type: ignore[override]
        AuditEntry.objects.create(action="sync-destroy", name=str(obj))
        obj.delete()


def _not_found(request: Any) -> HttpResponse:
    return HttpResponse(status=404)


urlpatterns = [
    path("widgets/", WidgetAPI.as_view(), name="widget-list"),
    path("widgets/<int:pk>/", WidgetAPI.as_view(), name="widget-detail"),
    path("widgets-by-str/<str:pk>/", WidgetAPI.as_view()),
    path("categories/", CategoryAPI.as_view()),
    path("categories/<int:pk>/", CategoryAPI.as_view()),
    path("articles/", ArticleAPI.as_view()),
    path("articles/<slug:slug>/", ArticleAPI.as_view()),
    path("audited/", AuditedWidgetAPI.as_view()),
    path("audited/<int:pk>/", AuditedWidgetAPI.as_view()),
    path("sync-hooks/", SyncHookWidgetAPI.as_view()),
    path("sync-hooks/<int:pk>/", SyncHookWidgetAPI.as_view()),
]


def body(response: Any) -> Any:
    """Return the decoded JSON body of ``response``."""
    return json.loads(response.content)


def widget_data(**overrides: Any) -> dict[str, Any]:
    """Return a valid JSON body for creating a Widget."""
    data: dict[str, Any] = {"name": "sprocket", "price": "9.99"}
    data.update(overrides)
    return data


async def send(
    client: AsyncClient,
    method: str,
    url: str,
    data: Any = None,
    *,
    content_type: str = JSON,
    **extra: Any,
) -> Any:
    """Send ``data`` (JSON-encoded unless bytes or str) with ``method`` to ``url``."""
    if data is not None and not isinstance(data, bytes | str):
        data = json.dumps(data)
    call = getattr(client, method.lower())
    if method.upper() in {"GET", "HEAD", "OPTIONS"} and data is None:
        return await call(url, **extra)
    return await call(url, data if data is not None else b"", content_type=content_type, **extra)


async def make_widget(**fields: Any) -> Widget:
    """Create a Widget directly through the ORM."""
    fields.setdefault("price", "1.00")
    return await Widget.objects.acreate(**fields)


def full_widget(**overrides: Any) -> dict[str, Any]:
    """Return a body with every writable Widget field (as PUT requires)."""
    data: dict[str, Any] = {
        "name": "full",
        "description": "",
        "quantity": 0,
        "price": "1.00",
        "weight": None,
        "active": True,
        "released": None,
        "starts_at": None,
        "meta": {},
        "category": None,
        "tag": None,
    }
    data.update(overrides)
    return data


EXAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "example_project"


@contextmanager
def installed_items_app() -> Iterator[None]:
    """Install the example project's ``items`` app and create its tables, then undo both."""
    if str(EXAMPLE_PROJECT) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_PROJECT))
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "items"]):
        from items.models import Item, ItemEvent

        with connection.schema_editor() as editor:
            editor.create_model(Item)
            editor.create_model(ItemEvent)
        try:
            yield
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(ItemEvent)
                editor.delete_model(Item)


async def in_own_thread(request: Callable[[], Awaitable[T]]) -> T:
    """Send ``request()`` as an ASGI server does: each request with a thread of its own."""
    async with ThreadSensitiveContext():
        try:
            return await request()
        finally:
            # The test client keeps connections open after a request (Django's own
            # close on request_finished is off in tests): close this thread's.
            await sync_to_async(connections.close_all)()


async def post(client: AsyncClient, url: str, data: Any) -> Any:
    """POST ``data`` as JSON, in a thread of its own (see :func:`in_own_thread`)."""
    return await in_own_thread(lambda: send(client, "POST", url, data))
