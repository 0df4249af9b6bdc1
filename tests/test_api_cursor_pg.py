"""Cursor pages on PostgreSQL, which sorts NULLs last in ascending order (SQLite sorts
them first): the keyset must agree with the database's ORDER BY in both directions.
Also keys PostgreSQL alone has (arrays, ranges), and NUL characters in query values,
which PostgreSQL refuses in text.

Runs against a throw-away PostgreSQL cluster when Debian's ``postgresql`` package is
installed; without it the tests are skipped loudly, and under ``CI=true`` they fail.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.postgres.fields import ArrayField, IntegerRangeField
from django.db import connections, models
from django.db.backends.postgresql.psycopg_any import NumericRange
from django.test import override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from tests.models import Category, Reading, Tag, Ticket
from tests.postgres_server import postgres_aliases
from tests.test_api_cursor import assert_readings_page_through_nulls, get, walk, walk_back
from tests.test_api_support import PROBLEM, body

pytestmark = [pytest.mark.e2e, pytest.mark.urls(__name__)]

ALIAS = "cursor_pg"


class Stock(models.Model):
    """Columns only PostgreSQL has, as ordering keys."""

    labels = ArrayField(models.CharField(max_length=10))
    days = ArrayField(models.DateField(), default=list)
    window = IntegerRangeField(null=True, blank=True)
    # Generated copies, read as their output fields (which have no name of their own).
    labels_copy = models.GeneratedField(
        expression=models.F("labels"),
        output_field=ArrayField(models.CharField(max_length=10)),
        db_persist=True,
    )
    window_copy = models.GeneratedField(
        expression=models.F("window"), output_field=IntegerRangeField(), db_persist=True
    )

    class Meta:
        app_label = "tests"
        managed = False  # its table is made on PostgreSQL only

    def __str__(self) -> str:
        return ",".join(self.labels)


MODELS = (Category, Tag, Ticket, Reading, Stock)


class ToPostgres:
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return ALIAS if model in MODELS else None

    db_for_write = db_for_read


@pytest.fixture(scope="module")
def server(django_db_blocker: Any) -> Iterator[None]:
    """The test models' tables on a PostgreSQL alias, and a router that sends them there."""
    routed = override_settings(DATABASE_ROUTERS=[ToPostgres()])
    with postgres_aliases(django_db_blocker, [ALIAS], MODELS), routed:
        yield


@pytest.fixture
def pg(server: None) -> None:
    """Empty tables for each test."""
    tables = ", ".join(model._meta.db_table for model in MODELS)
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")


#: Ticket's nullable fields of every kind, and a unique one.
NULLABLE = ["due", "opened", "size", "flagged", "cost", "took", "ref", "at", "category"]


class TicketAPI(AsyncAPIView):
    model = Ticket
    fields = ["title", *NULLABLE]
    filter_fields = ["title", "email", "ref"]
    search_fields = ["title"]
    ordering_fields = NULLABLE
    pagination = "cursor"
    paginate_by = 2


class ReadingAPI(AsyncAPIView):
    model = Reading
    fields = ["value", "doubled"]
    read_only_fields = ["doubled"]
    ordering_fields = ["doubled"]
    pagination = "cursor"
    paginate_by = 2


class StockAPI(AsyncAPIView):
    model = Stock
    fields = ["labels", "days"]
    ordering_fields = ["labels", "days", "window", "labels_copy", "window_copy"]
    pagination = "cursor"
    paginate_by = 1


urlpatterns = [
    path("tickets/", TicketAPI.as_view()),
    path("readings/", ReadingAPI.as_view()),
    path("stock/", StockAPI.as_view()),
]

_serial = itertools.count()


def ticket(n: int) -> Ticket:
    """A ticket whose nullable fields cycle through NULL and two values (ties included)."""
    day = datetime.date(2026, 1, 1)
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    category = Category.objects.get_or_create(name=f"c{n % 2}")[0]

    def pick(*values: Any) -> Any:
        return [None, *values][n % (len(values) + 1)]

    return Ticket.objects.create(
        status="open",
        rate=Decimal("0.5"),
        title=f"t{next(_serial)}",
        due=pick(day, day + datetime.timedelta(days=1)),
        opened=pick(at, at + datetime.timedelta(microseconds=1)),
        size=pick(0, 7),
        flagged=pick(False, True),
        cost=pick(Decimal("1.10"), Decimal("2.00")),
        took=pick(datetime.timedelta(0), datetime.timedelta(days=-1, seconds=5)),
        ref=pick(uuid.UUID(int=1), uuid.UUID(int=2**127)),
        at=pick(datetime.time(1), datetime.time(1, 0, 0, 1)),
        category=pick(category),
    )


def database_order(ordering: str) -> list[int]:
    keys = [key.replace("category", "category_id") for key in ordering.split(",")]
    return list(Ticket.objects.order_by(*keys, "pk").values_list("pk", flat=True))


@pytest.mark.parametrize(
    "ordering", [*NULLABLE, *(f"-{name}" for name in NULLABLE), "size,-due", "-flagged,cost"]
)
def test_nulls_at_either_end_as_postgresql_sorts_them(pg: None, ordering: str) -> None:
    """Forward and back, every row once, in the database's order (NULLs last ascending,
    first descending); rows added between pages, NULLs among them, never make a row
    that was there all along show twice or not at all."""
    for n in range(11):
        ticket(n)
    expected = database_order(ordering)
    first = ordering.split(",")[0]
    nulls = set(Ticket.objects.filter(**{f"{first.lstrip('-')}__isnull": True}).values_list("pk"))
    ends = expected[: len(nulls)] if first.startswith("-") else expected[-len(nulls) :]
    assert {(pk,) for pk in ends} == nulls  # PostgreSQL: NULLs last ascending, first descending
    url = f"/tickets/?ordering={ordering}"
    forward, last = walk(url)
    assert forward == expected
    assert walk_back(last) == expected
    batches = iter([range(20, 23), range(23, 26), range(26, 29), range(29, 32)])

    def arrive() -> None:
        for n in next(batches, ()):
            ticket(n)

    seen, _ = walk(url, between=arrive)
    assert len(seen) == len(set(seen))
    assert [pk for pk in seen if pk in set(expected)] == expected


def test_a_generated_key_holding_nulls_on_postgresql(pg: None) -> None:
    assert_readings_page_through_nulls()


@pytest.mark.parametrize(
    "ordering",
    ["labels", "-days", "window", "-window", "labels_copy", "window_copy", "-window_copy"],
)
def test_array_and_range_keys_round_trip(pg: None, ordering: str) -> None:
    """Arrays and ranges are carried in the cursor as Django's serializers write them
    (the server refused its own cursors of them), generated ones too."""
    day = datetime.date(2026, 1, 1)
    for labels, days, window in [
        (["b"], [day], NumericRange(1, 3)),
        (["a", "z"], [day, day], None),
        (["a"], [], NumericRange(0, 9)),
        (["a", "z"], [day + datetime.timedelta(days=1)], NumericRange(1, 3)),
        (["a b", "\u00e4"], [], NumericRange(2, None)),
    ]:
        Stock.objects.create(labels=labels, days=days, window=window)
    expected = list(Stock.objects.order_by(ordering, "pk").values_list("pk", flat=True))
    forward, last = walk(f"/stock/?ordering={ordering}")
    assert forward == expected
    assert walk_back(last) == expected


@pytest.mark.parametrize(
    "query",
    ["title=a%00b", "title__in=x,a%00b", "email=%00", "search=milk+a%00", "ref=%00"],
)
def test_a_nul_character_in_a_query_value_is_400_on_postgresql(pg: None, query: str) -> None:
    """PostgreSQL refuses NUL in text: the value is refused before it gets there."""
    ticket(1)
    response = get(f"/tickets/?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert list(body(response)["errors"]) == [query.split("=")[0]]
