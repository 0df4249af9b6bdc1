"""AsyncAPIView's query string: filter_fields, search_fields, ordering_fields.

Through real requests; the misconfigurations through as_view() and the system check.
"""

from __future__ import annotations

import contextvars
import datetime
import itertools
import re
from typing import Any

import pytest
from asgiref import sync
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.db.backends.utils import CursorWrapper
from django.test import AsyncClient, RequestFactory, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.checks import check_views
from django_async_cbv.openapi import build_document
from tests.models import Appointment, Category, Rectangle, Tag, Widget
from tests.test_api_support import PROBLEM, body, make_widget

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class FilteredAPI(AsyncAPIView):
    model = Widget
    fields = ["name", "quantity", "price", "active", "released", "created", "category"]
    filter_fields = ["name", "quantity", "price", "active", "released", "created", "category"]
    search_fields = ["name", "description"]
    ordering_fields = ["price", "quantity", "released"]
    paginate_by = 50


class LookupsAPI(AsyncAPIView):
    model = Widget
    fields = ["name", "quantity"]
    filter_fields = {"quantity": ["gte"], "tag": ["exact"]}


class AppointmentAPI(AsyncAPIView):
    model = Appointment
    filter_fields = ["at", "span"]


class RectangleAPI(AsyncAPIView):
    model = Rectangle
    fields = ["width", "height", "area"]
    read_only_fields = ["area"]
    filter_fields = ["area"]


urlpatterns = [
    path("widgets/", FilteredAPI.as_view()),
    path("widgets/<int:pk>/", FilteredAPI.as_view()),
    path("lookups/", LookupsAPI.as_view()),
    path("appointments/", AppointmentAPI.as_view()),
    path("rectangles/", RectangleAPI.as_view()),
]


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


async def names(client: AsyncClient, query: str, url: str = "/widgets/") -> list[str]:
    response = await client.get(f"{url}?{query}")
    assert response.status_code == 200, response.content
    return [w["name"] for w in body(response)["results"]]


async def titles(client: AsyncClient, query: str) -> list[str]:
    response = await client.get(f"/appointments/?{query}")
    assert response.status_code == 200, response.content
    return [a["title"] for a in body(response)["results"]]


async def bad(client: AsyncClient, query: str, url: str = "/widgets/") -> dict[str, Any]:
    response = await client.get(f"{url}?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    return body(response)["errors"]  # type: ignore[no-any-return]


@pytest.fixture
async def stock() -> dict[str, Any]:
    tools = await Category.objects.acreate(name="tools")
    toys = await Category.objects.acreate(name="toys")
    await make_widget(name="a-hammer", quantity=1, price="10.00", category=tools)
    await make_widget(
        name="b-milk-jug", description="Steel Jug", quantity=5, price="14.90", active=False
    )
    await make_widget(
        name="c-ball", quantity=9, price="3.50", category=toys, released=datetime.date(2026, 1, 5)
    )
    return {"tools": tools.pk, "toys": toys.pk}


# -- filters ----------------------------------------------------------------------------


async def test_exact_filters_combine(client: AsyncClient, stock: dict[str, Any]) -> None:
    assert await names(client, f"category={stock['tools']}") == ["a-hammer"]
    assert await names(client, "active=false") == ["b-milk-jug"]
    assert await names(client, "active=true&quantity=9") == ["c-ball"]
    assert await names(client, "name=c-ball") == ["c-ball"]
    assert await names(client, "released=2026-01-05") == ["c-ball"]


async def test_in_and_range_lookups(client: AsyncClient, stock: dict[str, Any]) -> None:
    both = f"{stock['tools']},{stock['toys']}"
    assert await names(client, f"category__in={both}") == ["a-hammer", "c-ball"]
    assert await names(client, "quantity__in=1, 5") == ["a-hammer", "b-milk-jug"]
    assert await names(client, "price__gte=10") == ["a-hammer", "b-milk-jug"]
    assert await names(client, "price__gt=10&price__lte=14.90") == ["b-milk-jug"]
    assert await names(client, "quantity__lt=5") == ["a-hammer"]
    assert await names(client, "released__gte=2026-01-01") == ["c-ball"]
    assert await names(client, "created__lte=2000-01-01T00:00:00Z") == []
    assert len(await names(client, "created__gte=2000-01-01T00:00:00Z")) == 3


async def test_unknown_and_empty_parameters_are_ignored(
    client: AsyncClient, stock: dict[str, Any]
) -> None:
    every = ["a-hammer", "b-milk-jug", "c-ball"]
    assert await names(client, "description=x&weight=1&name__gte=z&price=") == every
    assert await names(client, "quantity__in=,&category__in=") == every
    # A lookup the view does not offer for a field is ignored like any unknown name.
    assert await names(client, "quantity__lt=5", "/lookups/") == every


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("quantity=many", "quantity"),
        ("price__gte=1e400", "price__gte"),
        ("price__gte=12.345", "price__gte"),
        ("active=maybe", "active"),
        ("released=2026-13-01", "released"),
        ("created__gt=yesterday", "created__gt"),
        ("category__in=1,x", "category__in"),
        ("quantity=99999999999999999999", "quantity"),
        ("name=" + "x" * 41, "name"),
        ("category__in=" + ",".join(["1"] * 101), "category__in"),
        ("search=" + "+".join(["w"] * 11), "search"),
        ("search=a%00b", "search"),
        ("name=a%00b", "name"),
        # Valid ISO 8601, but before 0001-01-01 or after 9999-12-31 once in UTC.
        ("created__gte=0001-01-01T00:00:00%2B05:00", "created__gte"),
        ("created=9999-12-31T23:59:59-05:00", "created"),
        ("created__in=2026-01-01T00:00:00Z,0001-01-01T04:59:59%2B05:00", "created__in"),
    ],
)
async def test_a_bad_value_is_400_naming_the_parameter(
    client: AsyncClient, query: str, parameter: str
) -> None:
    errors = await bad(client, query)
    assert list(errors) == [parameter]


OUT_OF_RANGE = "Enter a date and time between 0001-01-01 and 9999-12-31 in UTC."


async def test_without_use_tz_a_datetime_filter_with_an_offset_is_400(
    client: AsyncClient,
) -> None:
    """Datetimes are naive without ``USE_TZ``; SQLite's backend refuses an aware one."""
    with override_settings(USE_TZ=False):
        await Appointment.objects.acreate(title="noon", at=datetime.datetime(2026, 1, 1, 12))
        errors = await bad(client, "at__gte=2026-01-01T00:00:00%2B05:00", "/appointments/")
        assert errors == {"at__gte": ["Enter a date and time without a UTC offset."]}
        assert await titles(client, "at__gte=2026-01-01T00:00:00") == ["noon"]


async def test_datetimes_at_the_edges_of_the_range(client: AsyncClient) -> None:
    """The first and last instants in UTC filter; an instant outside them is a 400."""
    first = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    last = datetime.datetime.max.replace(tzinfo=datetime.UTC)
    await Appointment.objects.acreate(title="first", at=first)
    await Appointment.objects.acreate(title="last", at=last)
    url = "/appointments/"
    assert await titles(client, "at=0001-01-01T00:00:00Z") == ["first"]
    assert await titles(client, "at=0001-01-01T05:00:00%2B05:00") == ["first"]
    assert await titles(client, "at__in=9999-12-31T23:59:59.999999Z,0001-01-01T00:00:00Z") == [
        "first",
        "last",
    ]
    errors = await bad(client, "at=0001-01-01T04:59:59.999999%2B05:00", url)
    assert errors == {"at": [OUT_OF_RANGE]}


@pytest.mark.parametrize(
    ("time_zone", "fits", "overflows"),
    [
        # Tokyo's local mean time in year 1 is 9:18:59 ahead of UTC.
        ("Asia/Tokyo", "at__gte=0001-01-01T10:00:00", "at__gte=0001-01-01T09:00:00"),
        ("America/New_York", "at__lte=9999-12-31T18:00:00", "at__lte=9999-12-31T19:00:00"),
        ("America/New_York", "at__in=2026-01-01T00:00:00", "at__in=2026-01-01,9999-12-31T19:00"),
    ],
)
async def test_a_naive_datetime_must_fit_once_made_utc(
    client: AsyncClient, time_zone: str, fits: str, overflows: str
) -> None:
    """A value without an offset is in the current time zone; in UTC it must be in range."""
    with override_settings(TIME_ZONE=time_zone):
        assert await titles(client, fits) == []
        errors = await bad(client, overflows, "/appointments/")
    assert errors == {overflows.split("=")[0]: [OUT_OF_RANGE]}


@pytest.mark.parametrize(
    "query",
    [
        "span=999999999%2000:00:00",
        "span=-999999999%2000:00:00",
        "span=106751992%2000:00:00",
        "span__in=1,106751991%2000:00:01",
    ],
)
async def test_a_duration_past_64_bits_of_microseconds_is_400(
    client: AsyncClient, query: str
) -> None:
    """SQLite and MySQL store microseconds in a 64-bit integer; longer is a 400 everywhere."""
    errors = await bad(client, query, "/appointments/")
    assert errors == {
        query.split("=")[0]: ["Enter a duration between -106751991 and 106751991 days."]
    }


async def test_the_longest_durations_filter(client: AsyncClient) -> None:
    longest = datetime.timedelta(days=106751991)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    await Appointment.objects.acreate(title="long", at=now, span=longest)
    await Appointment.objects.acreate(title="negative", at=now, span=-longest)
    assert await titles(client, "span=106751991%2000:00:00") == ["long"]
    assert await titles(client, "span__in=-106751991%2000:00:00,1") == ["negative"]


async def test_a_generated_field_filters_as_its_output_field(client: AsyncClient) -> None:
    """``area`` is computed by the database; its values are parsed as the integers it holds."""
    for width, height in [(2, 3), (4, 5), (1, 1)]:
        await Rectangle.objects.acreate(width=width, height=height)

    async def areas(query: str) -> list[int]:
        response = await client.get(f"/rectangles/?{query}")
        assert response.status_code == 200, response.content
        return [r["area"] for r in body(response)["results"]]

    for query in ["area=abc", "area__in=1,abc", "area__gt=1.5", "area=99999999999999999999"]:
        assert list(await bad(client, query, "/rectangles/")) == [query.split("=")[0]]
    assert await areas("area=6") == [6]
    assert await areas("area__in=1,%2020") == [20, 1]
    assert await areas("area__gte=6&area__lt=20") == [6]
    assert [p.name for p in RectangleAPI.get_query_parameters()][:6] == [
        "area",
        "area__in",
        "area__gt",
        "area__gte",
        "area__lt",
        "area__lte",
    ]


def schema_of(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def test_the_openapi_document_describes_a_generated_field_as_its_output_field() -> None:
    document = build_document("Query", "1", urlconf=__name__)
    operation = document["paths"]["/rectangles/"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert {name for name in params if name.startswith("area")} == {
        "area",
        "area__in",
        "area__gte",
        "area__lte",
        "area__gt",
        "area__lt",
    }
    assert params["area"]["type"] == params["area__gte"]["type"] == "integer"
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    item = schema_of(document, schema_of(document, response)["properties"]["results"]["items"])
    assert item["properties"]["area"]["type"] == "integer"


async def test_a_foreign_key_filter_with_a_uuid_target(client: AsyncClient) -> None:
    tag = await Tag.objects.acreate(label="red")
    await make_widget(name="tagged", tag=tag)
    await make_widget(name="plain")
    assert await names(client, f"tag={tag.pk}", "/lookups/") == ["tagged"]
    assert list(await bad(client, "tag=not-a-uuid", "/lookups/")) == ["tag"]


async def test_filters_are_plain_column_comparisons(
    client: AsyncClient, stock: dict[str, Any], queries: list[str]
) -> None:
    """No function wraps the filtered column, so an index on it can serve the query."""
    await names(client, "quantity=1&price__gte=2&category__in=1,2&created__lt=2100-01-01")
    where = queries[0].split(" WHERE ")[1].split(" ORDER BY ")[0]
    conditions = sorted(where.strip("()").split(" AND "))
    assert conditions == [
        '"tests_widget"."category_id" IN (%s, %s)',
        '"tests_widget"."created" < %s',
        '"tests_widget"."price" >= %s',
        '"tests_widget"."quantity" = %s',
    ]


async def test_a_boolean_filter_is_a_comparison_an_index_serves(
    client: AsyncClient, stock: dict[str, Any], queries: list[str]
) -> None:
    """Django writes ``active=True`` as ``WHERE "active"`` (``NOT "active"``), which
    SQLite cannot serve from an index on the column; the filter compares it."""
    index = models.Index(fields=["active"], name="widget_active_idx")

    def explain(sql: str) -> str:
        with connection.schema_editor() as editor:
            editor.add_index(Widget, index)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}", [True])
                return " ".join(str(row[-1]) for row in cursor.fetchall())
        finally:
            with connection.schema_editor() as editor:
                editor.remove_index(Widget, index)

    assert await names(client, "active=false") == ["b-milk-jug"]
    assert await names(client, "active=true") == ["a-hammer", "c-ball"]
    where = queries[-1].split(" WHERE ")[1].split(" ORDER BY ")[0]
    assert where == '"tests_widget"."active" = %s'
    assert "USING INDEX widget_active_idx" in await sync.sync_to_async(explain)(queries[-1])


async def test_filters_apply_to_the_list_only(client: AsyncClient, stock: dict[str, Any]) -> None:
    widget = await Widget.objects.aget(name="a-hammer")
    response = await client.get(f"/widgets/{widget.pk}/?quantity=9")
    assert response.status_code == 200


async def test_more_parameters_than_django_parses_is_a_problem_400(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Over DATA_UPLOAD_MAX_NUMBER_FIELDS, Django refuses to parse the query string:
    a 400 problem like every other refusal of the API (it was Django's HTML page),
    logged to ``django.security`` as Django logs it."""

    def query(count: int) -> str:
        return "&".join(f"x{i}=1" for i in range(count))

    with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=9):
        response = await client.get(f"/widgets/?{query(10)}")
        assert response.status_code == 400
        assert response["Content-Type"] == PROBLEM
        assert body(response)["detail"] == "The request has too many parameters."
        assert [r.name for r in caplog.records] == ["django.security.TooManyFieldsSent"]
        assert (await client.get(f"/widgets/?{query(9)}")).status_code == 200


# -- search -----------------------------------------------------------------------------


async def test_every_search_word_must_match_a_field(
    client: AsyncClient, stock: dict[str, Any]
) -> None:
    assert await names(client, "search=jug") == ["b-milk-jug"]
    assert await names(client, "search=MILK steel") == ["b-milk-jug"]
    assert await names(client, "search=milk+hammer") == []
    assert await names(client, "search=%20") == ["a-hammer", "b-milk-jug", "c-ball"]


@pytest.mark.parametrize("word", ["x" * 30_000, "%" * 25_000, "ä" * 201])
async def test_a_search_word_over_200_characters_is_400(
    client: AsyncClient, stock: dict[str, Any], word: str
) -> None:
    """SQLite refuses a LIKE pattern over 50,000 bytes: a 400, not a 500."""
    assert await bad(client, f"search=milk+{word}") == {
        "search": ["Use words of at most 200 characters."]
    }
    assert await names(client, f"search={'ä' * 200}") == []


# -- ordering ---------------------------------------------------------------------------


async def test_ordering_by_the_offered_fields(client: AsyncClient, stock: dict[str, Any]) -> None:
    assert await names(client, "ordering=-price") == ["b-milk-jug", "a-hammer", "c-ball"]
    assert await names(client, "ordering=price") == ["c-ball", "a-hammer", "b-milk-jug"]
    assert await names(client, "ordering=released,-quantity") == [
        "b-milk-jug",
        "a-hammer",
        "c-ball",
    ]


async def test_ties_are_broken_by_the_pk(client: AsyncClient, queries: list[str]) -> None:
    for name in ("z", "y", "x"):
        await make_widget(name=name, quantity=1)
    assert await names(client, "ordering=quantity") == ["z", "y", "x"]
    queries.clear()
    await names(client, "ordering=-quantity")
    assert queries[0].endswith(
        'ORDER BY "tests_widget"."quantity" DESC, "tests_widget"."id" ASC LIMIT 50'
    )


@pytest.mark.parametrize("query", ["ordering=name", "ordering=-price,price", "ordering=pk"])
async def test_an_ordering_outside_the_list_is_400(client: AsyncClient, query: str) -> None:
    assert list(await bad(client, query)) == ["ordering"]


# -- one thread hop -----------------------------------------------------------------------


async def test_a_full_page_and_its_count_take_one_thread_hop(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page query and the COUNT of a full page run in the same sync_to_async call."""
    for i in range(3):
        await make_widget(name=f"w{i}")
    hop: contextvars.ContextVar[int] = contextvars.ContextVar("hop", default=0)
    hops = itertools.count(1)
    seen: list[tuple[int, str]] = []
    call, execute = sync.SyncToAsync.__call__, CursorWrapper.execute

    async def counting_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = hop.set(next(hops))  # copied into the thread's context by asgiref
        try:
            return await call(self, *args, **kwargs)
        finally:
            hop.reset(token)

    def recording_execute(self: CursorWrapper, sql: str, params: Any = None) -> Any:
        seen.append((hop.get(), sql))
        return execute(self, sql, params)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting_call)
    monkeypatch.setattr(CursorWrapper, "execute", recording_execute)
    response = await client.get("/widgets/?page_size=2")
    assert body(response)["count"] == 3
    assert [sql.startswith("SELECT COUNT(*)") for _, sql in seen] == [False, True]
    assert seen[0][0] == seen[1][0] != 0


# -- description ------------------------------------------------------------------------


def test_the_query_parameters_of_a_view_are_listed() -> None:
    """What an API description generator reads: every parameter, with field and lookup."""
    params = LookupsAPI.get_query_parameters()
    assert [(p.name, p.kind, p.lookup, p.many) for p in params] == [
        ("quantity__gte", "filter", "gte", False),
        ("tag", "filter", "exact", False),
        ("page", "page", None, False),
        ("page_size", "page_size", None, False),
    ]
    assert params[0].field is Widget._meta.get_field("quantity")
    names = [p.name for p in FilteredAPI.get_query_parameters()]
    assert names[:3] == ["name", "name__in", "quantity"]
    assert "created__lte" in names
    assert "category__gte" not in names
    assert names[-4:] == ["search", "ordering", "page", "page_size"]
    ordering = FilteredAPI.get_query_parameters()[-3]
    assert ordering.choices == ("price", "quantity", "released", "-price", "-quantity", "-released")
    cursor = type("C", (FilteredAPI,), {"pagination": "cursor"}).get_query_parameters()
    assert [p.name for p in cursor[-2:]] == ["cursor", "page_size"]


# -- misconfiguration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"filter_fields": ["nope"]}, "filter_fields names 'nope'"),
        ({"filter_fields": ["meta"]}, "'meta', a JSONField"),
        ({"filter_fields": {"name": ["gte"]}}, "range lookups fit number, date and datetime"),
        ({"filter_fields": {"category": ["lt"]}}, "'category' is a ForeignKey"),
        ({"filter_fields": {"quantity": ["iexact"]}}, "unknown lookup 'iexact'"),
        ({"filter_fields": {"quantity": "gte"}}, "must be a list of lookups"),
        ({"filter_fields": "name"}, "must be a list of field names or a dict"),
        ({"search_fields": ["quantity"]}, "search fits text fields"),
        ({"search_fields": ["category__name"]}, "search_fields names 'category__name'"),
        ({"ordering_fields": ["nmae"]}, "ordering_fields names 'nmae'"),
        ({"ordering_fields": ["meta"]}, "cannot order a list"),
        ({"pagination": "offset"}, "pagination must be 'page' or 'cursor'"),
        ({"pagination": "cursor", "paginate_by": None}, "cursor pages need a page size"),
        ({"pagination": "cursor", "ordering": "?"}, "orders by field names only"),
        ({"pagination": "cursor", "ordering": ["category__name"]}, "names 'category__name'"),
    ],
)
def test_misconfiguration_fails_at_as_view_and_in_the_system_check(
    attrs: dict[str, Any], message: str
) -> None:
    view_class = type("Broken", (AsyncAPIView,), {"model": Widget, "__module__": __name__})
    urls = type("URLs", (), {"urlpatterns": [path("x/", view_class.as_view())]})
    for name, value in attrs.items():
        setattr(view_class, name, value)
    view_class._api_class_config = None  # what a fresh process would see
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        view_class.as_view()
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        AsyncAPIView.as_view(model=Widget, **attrs)
    with override_settings(ROOT_URLCONF=urls):
        errors = check_views()
    assert [e.id for e in errors] == ["django_async_cbv.E010"]
    assert message in errors[0].msg


class Paged(models.Model):
    page = models.IntegerField()

    class Meta:
        app_label = "tests"
        managed = False

    def __str__(self) -> str:
        return str(self.page)


class Labelled(models.Model):
    """Generated fields whose output fields cannot be filtered, or range-compared."""

    name = models.CharField(max_length=20)
    details = models.JSONField()
    label = models.GeneratedField(
        expression=models.F("name"), output_field=models.CharField(max_length=20), db_persist=True
    )
    extra = models.GeneratedField(
        expression=models.F("details"), output_field=models.JSONField(), db_persist=True
    )

    class Meta:
        app_label = "tests"
        managed = False

    def __str__(self) -> str:
        return self.name


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        (
            {"filter_fields": ["extra"]},
            "names 'extra', a GeneratedField (JSONField), which cannot be filtered",
        ),
        (
            {"filter_fields": {"label": ["gte"]}},
            "'label' is a GeneratedField (CharField): range lookups fit",
        ),
        # A JSON column cannot order a list, generated or not (a cursor of it went round
        # in circles, each next page the same row).
        (
            {"ordering_fields": ["extra"]},
            "names 'extra', a GeneratedField (JSONField), which cannot order a list",
        ),
        (
            {"pagination": "cursor", "ordering": ["extra"]},
            "names 'extra', a GeneratedField (JSONField), which cannot order cursor pages",
        ),
    ],
)
def test_a_generated_field_is_configured_as_its_output_field(
    attrs: dict[str, Any], message: str
) -> None:
    assert Labelled.check() == []
    view_class = type("Generated", (AsyncAPIView,), {"model": Labelled})
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        view_class.as_view(**attrs)


def test_a_filter_may_not_take_a_parameter_of_the_list() -> None:
    view_class = type("Clash", (AsyncAPIView,), {"model": Paged, "filter_fields": ["page"]})
    with pytest.raises(ImproperlyConfigured, match="'page' is the list's own"):
        view_class.as_view()


async def test_a_hook_result_is_validated_at_first_use(client: AsyncClient) -> None:
    class Dynamic(AsyncAPIView):
        model = Widget

        def get_filter_fields(self) -> list[str]:
            return ["nope"]

    view = Dynamic.as_view()
    with pytest.raises(ImproperlyConfigured, match="filter_fields names 'nope'"):
        await view(RequestFactory().get("/x/"))
