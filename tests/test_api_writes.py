"""AsyncAPIView writes: one thread hop, one transaction, hooks sync or async, 400/409."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.db import connection, models, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import F
from django.db.models.signals import post_save
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.api.schema import get_schema
from tests.models import Article, AuditEntry, Category, Widget
from tests.test_api_support import (
    PROBLEM,
    URLS,
    WidgetAPI,
    body,
    make_widget,
    send,
    widget_data,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLS)]


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


def routes(view: type[AsyncAPIView], prefix: str = "v") -> Any:
    """Return a URLconf object routing ``view`` on ``/<prefix>/`` and its detail URL."""
    return type(
        "URLs",
        (),
        {
            "urlpatterns": [
                path(f"{prefix}/", view.as_view()),
                path(f"{prefix}/<int:pk>/", view.as_view(), name="widget-detail"),
            ]
        },
    )


async def counts() -> tuple[int, int]:
    return await Widget.objects.acount(), await AuditEntry.objects.acount()


# -- thread hops -------------------------------------------------------------------------


def _module(func: Callable[..., Any]) -> str:
    target = getattr(func, "func", func)  # functools.partial
    return getattr(target, "__module__", None) or ""


@contextmanager
def recorded_hops() -> Iterator[list[Callable[..., Any]]]:
    """Record the function of every sync_to_async() made while the block runs."""
    hops: list[Callable[..., Any]] = []
    original = SyncToAsync.__init__
    outer = getattr(AsyncToSync.executors, "current", None)

    def init(self: SyncToAsync[Any, Any], func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        # A hop made by a hook inside the write (through async_to_sync) runs in
        # the write's own thread: it is part of that one hop, not a new one.
        if getattr(AsyncToSync.executors, "current", None) is outer:
            hops.append(func)
        original(self, func, *args, **kw)

    with mock.patch.object(SyncToAsync, "__init__", init):
        yield hops


def ours(hops: list[Callable[..., Any]]) -> list[str]:
    return [f.__qualname__ for f in hops if _module(f).startswith("django_async_cbv")]


def orm(hops: list[Callable[..., Any]]) -> list[str]:
    return [f.__name__ for f in hops if _module(f).startswith("django.db")]


async def test_list_takes_one_thread_hop_for_a_full_page(client: AsyncClient) -> None:
    """A full page: the fetch and the count in one sync_to_async, no async ORM call."""
    for i in range(5):
        await make_widget(name=f"w{i}")
    with recorded_hops() as hops:
        response = await client.get("/widgets/")
    assert body(response)["count"] == 5
    assert ours(hops) == ["_fetch_page"]
    assert orm(hops) == []


async def test_short_page_skips_the_count_query(client: AsyncClient) -> None:
    """A page shorter than the page size gives the count without a COUNT query."""
    await make_widget(name="w")
    sql: list[str] = []
    execute = CursorWrapper.execute

    def recording(self: CursorWrapper, query: str, params: Any = None) -> Any:
        sql.append(query)
        return execute(self, query, params)

    with recorded_hops() as hops, mock.patch.object(CursorWrapper, "execute", recording):
        response = await client.get("/widgets/")
    assert body(response)["count"] == 1
    assert ours(hops) == ["_fetch_page"]
    assert len(sql) == 1
    assert "COUNT" not in sql[0]


async def test_retrieve_takes_no_thread_hop_of_its_own(client: AsyncClient) -> None:
    """Retrieve is one aget() and nothing of ours."""
    widget = await make_widget(name="w")
    with recorded_hops() as hops:
        response = await client.get(f"/widgets/{widget.pk}/")
    assert response.status_code == 200
    assert ours(hops) == []
    assert orm(hops) == ["get"]


@pytest.mark.parametrize(
    ("method", "detail"), [("POST", False), ("PUT", True), ("PATCH", True), ("DELETE", True)]
)
async def test_each_write_takes_exactly_one_hop(
    client: AsyncClient, method: str, detail: bool
) -> None:
    """Validation and the write share one sync_to_async hop (plus the lookup's aget())."""
    category = await Category.objects.acreate(name="c")
    widget = await make_widget(name="w")
    url = f"/widgets/{widget.pk}/" if detail else "/widgets/"
    data = {
        "name": "new",
        "description": "",
        "quantity": 1,
        "price": "1.00",
        "weight": None,
        "active": True,
        "released": None,
        "starts_at": None,
        "meta": {},
        "category": category.pk,
        "tag": None,
    }
    with recorded_hops() as hops:
        response = await send(client, method, url, None if method == "DELETE" else data)
    assert response.status_code < 300, response.content
    assert len(ours(hops)) == 1
    assert orm(hops) == (["get"] if detail else [])


async def test_overridden_async_hooks_still_take_one_hop(client: AsyncClient) -> None:
    """An async hook's own ORM calls run in the write's thread, not in new hops of ours."""
    with (
        override_settings(ROOT_URLCONF="tests.test_api_support"),
        recorded_hops() as hops,
    ):
        response = await send(client, "POST", "/audited/", widget_data())
    assert response.status_code == 201
    assert len(ours(hops)) == 1


# -- transactions ------------------------------------------------------------------------


class ThreadProbeAPI(WidgetAPI):
    """Records where an async hook's ORM work runs and whether a transaction is open."""

    seen: dict[str, Any] = {}

    async def perform_create(self, form: Any) -> models.Model:
        def probe() -> tuple[int, bool]:
            return threading.get_ident(), connection.in_atomic_block

        self.seen["hook"] = await sync_to_async(probe)()
        return await super().perform_create(form)

    def get_location(self, obj: models.Model) -> str | None:
        self.seen["write"] = (threading.get_ident(), connection.in_atomic_block)
        return super().get_location(obj)


async def test_async_hook_runs_in_the_writes_thread_and_transaction(client: AsyncClient) -> None:
    """asgiref routes the hook's sync_to_async back to the write's thread, inside atomic."""
    ThreadProbeAPI.seen.clear()
    with override_settings(ROOT_URLCONF=routes(ThreadProbeAPI)):
        response = await send(client, "POST", "/v/", widget_data())
    assert response.status_code == 201
    hook_thread, hook_atomic = ThreadProbeAPI.seen["hook"]
    write_thread, write_atomic = ThreadProbeAPI.seen["write"]
    assert hook_thread == write_thread
    assert hook_atomic
    assert write_atomic


async def test_hook_validation_error_after_two_writes_leaves_nothing(client: AsyncClient) -> None:
    """A ValidationError after the hook wrote two rows is 400 and both are rolled back."""
    response = await send(client, "POST", "/audited/", widget_data(name="boom-validation"))
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert body(response)["errors"] == {"name": ["Rejected by the hook."]}
    assert await counts() == (0, 0)


async def test_hook_non_field_validation_error_is_under_all(client: AsyncClient) -> None:
    """A ValidationError without fields is reported under "__all__"."""
    response = await send(client, "POST", "/audited/", widget_data(name="boom-nonfield"))
    assert response.status_code == 400
    assert body(response)["errors"] == {"__all__": ["The hook refused this object."]}
    assert await counts() == (0, 0)


async def test_integrity_error_in_hook_is_409_and_rolls_back(client: AsyncClient) -> None:
    """A second write the database refuses is 409; the hook's earlier writes are undone."""
    response = await send(client, "POST", "/audited/", widget_data(name="boom-duplicate"))
    assert response.status_code == 409
    problem = body(response)
    assert problem["status"] == 409
    assert "UNIQUE" not in problem["detail"]
    assert await counts() == (0, 0)


async def test_unknown_exception_in_hook_is_reraised_and_rolls_back(client: AsyncClient) -> None:
    """Anything else propagates (Django's 500 handling) after the rollback."""
    with pytest.raises(RuntimeError, match="hook crashed"):
        await send(client, "POST", "/audited/", widget_data(name="boom-crash"))
    assert await counts() == (0, 0)


async def test_successful_async_hook_commits_both_writes(client: AsyncClient) -> None:
    """The hook's extra write is committed with the object."""
    response = await send(client, "POST", "/audited/", widget_data(name="fine"))
    assert response.status_code == 201
    assert await counts() == (1, 1)


async def test_update_hook_failure_leaves_the_object_unchanged(client: AsyncClient) -> None:
    """perform_update failing after its writes rolls the update back."""
    widget = await make_widget(name="w", description="before")
    url = f"/audited/{widget.pk}/"
    response = await send(client, "PATCH", url, {"description": "boom"})
    assert response.status_code == 400
    assert (await Widget.objects.aget(pk=widget.pk)).description == "before"
    assert await AuditEntry.objects.acount() == 0


async def test_destroy_hook_failure_keeps_the_object(client: AsyncClient) -> None:
    """perform_destroy failing after the delete rolls it back: 400, object still there."""
    widget = await make_widget(name="keep-me")
    response = await client.delete(f"/audited/{widget.pk}/")
    assert response.status_code == 400
    assert body(response)["errors"] == {"__all__": ["This widget cannot be deleted."]}
    assert await Widget.objects.filter(pk=widget.pk).aexists()
    assert await AuditEntry.objects.acount() == 0


async def test_sync_hooks_run_in_the_transaction(client: AsyncClient) -> None:
    """Plain def hooks work, and their writes are rolled back on failure too."""
    assert (await send(client, "POST", "/sync-hooks/", widget_data(name="ok"))).status_code == 201
    assert await counts() == (1, 1)
    failed = await send(client, "POST", "/sync-hooks/", widget_data(name="boom"))
    assert failed.status_code == 400
    assert await counts() == (1, 1)
    widget = await Widget.objects.aget(name="ok")
    assert (await client.delete(f"/sync-hooks/{widget.pk}/")).status_code == 204
    assert await counts() == (0, 2)


async def test_hook_returning_none_serializes_the_form_instance(client: AsyncClient) -> None:
    """A hook that returns nothing still gets the saved object in the response."""

    class SilentAPI(WidgetAPI):
        def perform_create(self, form: Any) -> None:  # type: ignore[override]
            form.save()

    with override_settings(ROOT_URLCONF=routes(SilentAPI)):
        response = await send(client, "POST", "/v/", widget_data())
    assert response.status_code == 201
    assert body(response)["id"] == (await Widget.objects.aget()).pk


# -- races the form cannot see ---------------------------------------------------------------


@pytest.fixture
def case_insensitive_names() -> Iterator[None]:
    """A unique index on lower(name): the form's case-sensitive check cannot see it."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX widget_lower_name ON tests_widget (lower(name))")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX widget_lower_name")


@pytest.mark.usefixtures("case_insensitive_names")
async def test_database_only_conflict_on_create_is_409(client: AsyncClient) -> None:
    """The database refuses what validation let through: 409, nothing written."""
    await make_widget(name="taken")
    response = await send(client, "POST", "/widgets/", widget_data(name="TAKEN"))
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert await Widget.objects.acount() == 1


@pytest.mark.usefixtures("case_insensitive_names")
async def test_database_only_conflict_with_a_hook_is_409(client: AsyncClient) -> None:
    """With an overridden hook (full validation first) the race is still 409, rolled back."""
    await make_widget(name="taken")
    response = await send(client, "POST", "/audited/", widget_data(name="TAKEN"))
    assert response.status_code == 409
    assert await counts() == (1, 0)


@pytest.mark.usefixtures("case_insensitive_names")
async def test_database_only_conflict_on_update_is_409(client: AsyncClient) -> None:
    """The same for PATCH: 409 and the object keeps its name."""
    await make_widget(name="taken")
    widget = await make_widget(name="mine")
    response = await send(client, "PATCH", f"/widgets/{widget.pk}/", {"name": "Taken"})
    assert response.status_code == 409
    assert (await Widget.objects.aget(pk=widget.pk)).name == "mine"


async def test_duplicate_with_overridden_hook_is_400_before_the_hook(client: AsyncClient) -> None:
    """An overridden hook only ever sees a fully validated form: no hook writes on a duplicate."""
    await make_widget(name="taken")
    response = await send(client, "POST", "/audited/", widget_data(name="taken"))
    assert response.status_code == 400
    assert body(response)["errors"] == {"name": ["Widget with this Name already exists."]}
    assert await counts() == (1, 0)


async def test_hook_returning_raw_values_still_serializes(client: AsyncClient) -> None:
    """Values a hook assigned as strings are normalised by the field, not a 500."""

    class RawAPI(WidgetAPI):
        async def perform_create(self, form: Any) -> models.Model:
            return await Widget.objects.acreate(
                name=form.cleaned_data["name"],
                price="2.5",
                released="2024-01-02",
                starts_at="08:00",
                code="12345678123456781234567812345678",
            )

    with override_settings(ROOT_URLCONF=routes(RawAPI)):
        response = await send(client, "POST", "/v/", widget_data())
    assert response.status_code == 201
    data = body(response)
    assert (data["price"], data["released"], data["starts_at"]) == (
        "2.50",
        "2024-01-02",
        "08:00:00",
    )
    assert data["code"] == "12345678-1234-5678-1234-567812345678"
    assert body(await client.get(f"/widgets/{data['id']}/")) == data


# -- the transaction around the default save -------------------------------------------


class PlainWidgetAPI(AsyncAPIView):
    """Default hooks, no detail_url_name: the Location is built from the path."""

    model = Widget


class HookedWidgetAPI(PlainWidgetAPI):
    async def perform_create(self, form: Any) -> models.Model:
        return await super().perform_create(form)


@contextmanager
def counting_atomics() -> Iterator[list[bool]]:
    """Record every outermost transaction.atomic entered (in any thread)."""
    entered: list[bool] = []
    original = transaction.Atomic.__enter__

    def enter(self: transaction.Atomic) -> None:
        entered.append(True)
        original(self)

    with mock.patch.object(transaction.Atomic, "__enter__", enter):
        yield entered


async def test_save_signal_receiver_failure_leaves_nothing_written(client: AsyncClient) -> None:
    """A post_save receiver that writes and then fails rolls the whole create back."""

    def receiver(sender: Any, instance: Widget, created: bool, **kwargs: Any) -> None:
        AuditEntry.objects.create(action="signal", name=instance.name)
        raise RuntimeError("receiver failed")

    post_save.connect(receiver, sender=Widget)
    try:
        with (
            override_settings(ROOT_URLCONF=routes(PlainWidgetAPI)),
            pytest.raises(RuntimeError, match="receiver failed"),
        ):
            await send(client, "POST", "/v/", widget_data(name="signalled"))
    finally:
        post_save.disconnect(receiver, sender=Widget)
    assert await counts() == (0, 0)


@pytest.mark.parametrize(
    "case",
    ["plain", "receiver", "overridden hook", "detail_url_name", "get_absolute_url"],
)
async def test_every_create_runs_in_a_transaction(client: AsyncClient, case: str) -> None:
    """Every default create enters transaction.atomic, whatever the view and model."""
    view: type[AsyncAPIView] = PlainWidgetAPI
    data = widget_data(name=f"case-{case.replace(' ', '-')}")
    url = "/v/"

    def receiver(**kwargs: Any) -> None:
        pass

    if case == "receiver":
        post_save.connect(receiver, sender=Widget)
    elif case == "overridden hook":
        view = HookedWidgetAPI
    elif case == "detail_url_name":
        view = WidgetAPI
    elif case == "get_absolute_url":
        view = type("ArticleAPI", (AsyncAPIView,), {"model": Article, "fields": ("slug", "title")})
        data = {"slug": "case", "title": "Case"}
    try:
        with override_settings(ROOT_URLCONF=routes(view)), counting_atomics() as entered:
            response = await send(client, "POST", url, data)
    finally:
        post_save.disconnect(receiver, sender=Widget)
    assert response.status_code == 201, response.content
    assert entered == [True]


def test_default_form_instances_do_not_share_mutable_field_state() -> None:
    """The cheap per-form copy still isolates fields, widgets, messages and querysets."""
    form_class = get_schema("PlainWidgetAPI", Widget, None, ()).form_class
    first, second = form_class(), form_class()
    first.fields["name"].required = False
    first.fields["name"].widget.attrs["data-x"] = "1"
    first.fields["name"].error_messages["required"] = "changed"
    first.fields["name"].validators.append(lambda value: None)
    assert second.fields["name"].required is True
    assert "data-x" not in second.fields["name"].widget.attrs
    assert second.fields["name"].error_messages["required"] != "changed"
    assert len(second.fields["name"].validators) < len(first.fields["name"].validators)
    assert first.fields["category"].queryset is not second.fields["category"].queryset
    assert first.fields["category"].widget is not second.fields["category"].widget
    assert form_class.base_fields["name"].required is True


class CountingWidgetAPI(PlainWidgetAPI):
    """Every update counts itself with an F() expression, as races are best avoided."""

    fields = ("id", "name", "quantity")

    async def perform_update(self, form: Any) -> models.Model:
        form.instance.quantity = F("quantity") + 1
        return await super().perform_update(form)


async def test_a_field_a_hook_sets_to_an_expression_is_answered_as_stored(
    client: AsyncClient,
) -> None:
    """After save() the object still holds the expression, which no JSON encodes: the
    write, stored, was answered 500. It is read back, and the ETag is the stored row's."""
    widget = await make_widget(name="counted", quantity=3)
    with override_settings(ROOT_URLCONF=routes(CountingWidgetAPI)):
        response = await send(client, "PATCH", f"/v/{widget.pk}/", {"name": "recounted"})
        assert response.status_code == 200, response.content
        assert body(response) == {"id": widget.pk, "name": "recounted", "quantity": 4}
        read = await client.get(f"/v/{widget.pk}/")
    assert read["ETag"] == response["ETag"]


class PlainSaveCategory(Category):
    """A model whose save() takes no arguments, as form.save() calls it."""

    class Meta:
        app_label = "tests"
        proxy = True

    def save(self) -> None:  # type: ignore[override]
        self.name = self.name.strip()
        super().save()


class PlainSaveCategoryAPI(AsyncAPIView):
    model = PlainSaveCategory
    fields = ("id", "name")


async def test_an_update_of_a_model_whose_save_takes_no_arguments(client: AsyncClient) -> None:
    """form.save() calls instance.save() without arguments: a save() written so
    worked with Django's forms and must keep working with the API's updates."""
    category = await Category.objects.acreate(name="plain")
    with override_settings(ROOT_URLCONF=routes(PlainSaveCategoryAPI)):
        response = await send(client, "PATCH", f"/v/{category.pk}/", {"name": " renamed "})
    assert response.status_code == 200, response.content
    assert body(response) == {"id": category.pk, "name": "renamed"}
    assert await Category.objects.aget(pk=category.pk) == category
    assert (await Category.objects.aget(pk=category.pk)).name == "renamed"


async def test_a_create_of_a_model_whose_save_takes_no_arguments(client: AsyncClient) -> None:
    with override_settings(ROOT_URLCONF=routes(PlainSaveCategoryAPI)):
        response = await send(client, "POST", "/v/", {"name": " made "})
    assert response.status_code == 201, response.content
    assert [c.name async for c in Category.objects.all()] == ["made"]


class NewRevisionCategoryAPI(AsyncAPIView):
    """An update stores a new row, as a copy is made in Django: pk = None, save()."""

    model = Category
    fields = ("id", "name")

    async def perform_update(self, form: Any) -> models.Model:
        obj = form.save(commit=False)
        obj.pk = None
        obj._state.adding = True
        await obj.asave()
        return obj


async def test_an_update_hook_may_save_the_object_as_a_new_row(client: AsyncClient) -> None:
    category = await Category.objects.acreate(name="first")
    with override_settings(ROOT_URLCONF=routes(NewRevisionCategoryAPI)):
        response = await send(client, "PATCH", f"/v/{category.pk}/", {"name": "second"})
    assert response.status_code == 200, response.content
    assert body(response)["id"] != category.pk
    names = [c.name async for c in Category.objects.order_by("pk")]
    assert names == ["first", "second"]
