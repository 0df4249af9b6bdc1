"""The hooks a write calls inside its transaction: what they return, and when they run.

- An atomic form view whose ``form_valid()`` returns no response is a 500 with nothing
  written (as Django's check, but before COMMIT), never the form shown again.
- A request answered while its form validates, its hook runs, or its transaction waits
  for SQLite's write lock (the view's ``timeout``) runs none of the hooks that follow
  (``form_valid()``, ``perform_create()``, ``get_location()``, an object's ``delete()``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django import forms
from django.db.backends.signals import connection_created
from django.db.models.signals import pre_delete
from django.http import HttpResponseBase
from django.test import AsyncClient
from django.urls import path

from django_async_cbv import AsyncAPIView, AsyncCreateView, AsyncDeleteView, AsyncFormView
from tests.models import Article, AuditEntry
from tests.test_api_support import in_own_thread, post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
    pytest.mark.usefixtures("request_connections_close"),
]

validating = threading.Event()
release = threading.Event()
hooks_run: list[str] = []


class ArticleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Article
        fields = ["slug", "title", "body"]


class SlowArticleForm(ArticleForm):
    """Validation that waits for the test: the request times out meanwhile."""

    def clean(self) -> dict[str, Any]:
        validating.set()
        release.wait(30)
        return super().clean()  # type: ignore[no-any-return]


class ForgetfulCreate(AsyncCreateView):
    """``form_valid()`` that saves but forgets to return the response."""

    model = Article
    fields = ["slug", "title", "body"]
    success_url = "/made/{slug}/"

    async def form_valid(self, form: Any) -> HttpResponseBase:
        await super().form_valid(form)
        return None  # type: ignore[return-value]


class ForgetfulFormView(AsyncFormView):
    form_class = ArticleForm
    template_name = "generic/contact.html"
    atomic = True

    def form_valid(self, form: Any) -> HttpResponseBase:
        form.save()
        AuditEntry.objects.create(action="forgetful", name=form.cleaned_data["slug"])
        return "done"  # type: ignore[return-value]


class SlowCreate(AsyncCreateView):
    model = Article
    form_class = SlowArticleForm
    success_url = "/made/{slug}/"
    timeout = 0.3

    async def form_valid(self, form: Any) -> HttpResponseBase:
        hooks_run.append("form_valid")
        return await super().form_valid(form)


class SlowArticleAPI(AsyncAPIView):
    model = Article
    form_class = SlowArticleForm
    timeout = 0.3

    async def perform_create(self, form: Any) -> Any:
        hooks_run.append("perform_create")
        await AuditEntry.objects.acreate(action="created", name=form.cleaned_data["slug"])
        return await super().perform_create(form)


class SlowHookAPI(AsyncAPIView):
    """A plain-def ``perform_create()`` that is still running when the answer goes out."""

    model = Article
    fields = ["slug", "title", "body"]
    timeout = 0.3

    def perform_create(self, form: Any) -> Any:
        validating.set()
        release.wait(30)
        return super().perform_create(form)

    def get_location(self, obj: Any) -> str | None:
        hooks_run.append("get_location")
        return super().get_location(obj)  # type: ignore[no-any-return]


class ArticleAPI(AsyncAPIView):
    model = Article
    fields = ["slug", "title", "body"]


class SlowDelete(AsyncDeleteView):
    model = Article
    slug_field = "slug"
    success_url = "/gone/"
    timeout = 0.3


urlpatterns = [
    path("forgetful/", ForgetfulCreate.as_view()),
    path("api/slow-hook/", SlowHookAPI.as_view()),
    path("delete/<slug:slug>/", SlowDelete.as_view()),
    path("api/articles/", ArticleAPI.as_view()),
    path("forgetful-form/", ForgetfulFormView.as_view()),
    path("slow/", SlowCreate.as_view()),
    path("api/slow/", SlowArticleAPI.as_view()),
]


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    validating.clear()
    release.clear()
    hooks_run.clear()
    yield
    release.set()


async def _after_the_abandoned_write() -> None:
    """Return once the write of the answered request has ended: the process's writes to
    SQLite take turns, so another write gets its turn only after it."""
    for thread in [t for t in threading.enumerate() if t.name.startswith("async-cbv-handler")]:
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()
    response = await post(AsyncClient(), "/api/articles/", {"slug": "after", "title": "After"})
    assert response.status_code == 201


@pytest.mark.parametrize(("url", "slug"), [("/forgetful/", "a"), ("/forgetful-form/", "b")])
async def test_form_valid_without_a_response_is_a_500_and_writes_nothing(
    url: str, slug: str
) -> None:
    client = AsyncClient(raise_request_exception=False)
    response = await in_own_thread(lambda: client.post(url, {"slug": slug, "title": "A"}))
    assert response.status_code == 500
    assert not await Article.objects.filter(slug=slug).aexists()
    assert not await AuditEntry.objects.aexists()


async def test_form_valid_without_a_response_names_the_view() -> None:
    with pytest.raises(ValueError, match=r"ForgetfulCreate\.form_valid\(\) didn't return"):
        await in_own_thread(lambda: AsyncClient().post("/forgetful/", {"slug": "c", "title": "C"}))


async def test_a_form_view_answered_while_validating_calls_no_form_valid() -> None:
    response = await in_own_thread(
        lambda: AsyncClient().post("/slow/", {"slug": "s", "title": "S"})
    )
    assert response.status_code == 504
    assert validating.is_set()
    release.set()
    await _after_the_abandoned_write()
    assert hooks_run == []
    assert not await Article.objects.filter(slug="s").aexists()


async def test_an_api_create_answered_while_validating_calls_no_perform_create() -> None:
    response = await post(AsyncClient(), "/api/slow/", {"slug": "t", "title": "T"})
    assert response.status_code == 504
    assert validating.is_set()
    release.set()
    await _after_the_abandoned_write()
    assert hooks_run == []
    assert not await Article.objects.filter(slug="t").aexists()
    assert not await AuditEntry.objects.aexists()


async def test_an_api_create_answered_during_its_hook_calls_no_get_location() -> None:
    response = await post(AsyncClient(), "/api/slow-hook/", {"slug": "l", "title": "L"})
    assert response.status_code == 504
    assert validating.is_set()
    release.set()
    await _after_the_abandoned_write()
    assert hooks_run == []
    assert not await Article.objects.filter(slug="l").aexists()


def _wait_at_begin(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    """SQLite's ``BEGIN IMMEDIATE`` waiting for the lock that another process holds."""
    if sql.startswith("BEGIN") and not release.is_set():
        validating.set()
        release.wait(30)
    return execute(sql, params, many, context)


def _install_wait(sender: Any, connection: Any, **kwargs: Any) -> None:
    connection.execute_wrappers.append(_wait_at_begin)


async def test_a_delete_answered_while_waiting_for_the_write_lock_deletes_nothing() -> None:
    await Article.objects.acreate(slug="x", title="X")

    def deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
        hooks_run.append(f"pre_delete {instance.slug}")

    pre_delete.connect(deleting, sender=Article)
    connection_created.connect(_install_wait)
    try:
        response = await in_own_thread(lambda: AsyncClient().delete("/delete/x/"))
        assert response.status_code == 504
        assert validating.is_set()
        release.set()
        await _after_the_abandoned_write()
    finally:
        release.set()
        connection_created.disconnect(_install_wait)
        pre_delete.disconnect(deleting, sender=Article)
    assert hooks_run == []
    assert await Article.objects.filter(slug="x").aexists()
