"""A primary and a read replica (a router sends reads to one, writes to the other): what
a write reads back of the row it wrote comes from the primary, inside its transaction.

Runs against a throw-away PostgreSQL cluster when Debian's ``postgresql`` package is
installed; without it the tests are skipped loudly, and under ``CI=true`` they fail.
The "replica" is a second connection to the same database: like a real one, it cannot
see what the primary has not committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import models
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from tests.models import Category, Rectangle, Tag, Widget
from tests.postgres_server import postgres_aliases
from tests.test_api_support import body, send

pytestmark = [pytest.mark.e2e, pytest.mark.urls(__name__)]

PRIMARY = "replica_pg_primary"
REPLICA = "replica_pg_replica"
MODELS = (Category, Tag, Widget, Rectangle)


@pytest.fixture(scope="module")
def pg(django_db_blocker: Any) -> Iterator[None]:
    """Two aliases, PRIMARY and REPLICA, on one PostgreSQL database with the test
    models' tables, and a router that reads from REPLICA and writes to PRIMARY."""
    routed = override_settings(DATABASE_ROUTERS=[PrimaryReplica()])
    with postgres_aliases(django_db_blocker, [PRIMARY, REPLICA], MODELS), routed:
        yield


class PrimaryReplica:
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return REPLICA if model in MODELS else None

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        return PRIMARY if model in MODELS else None

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool:
        return True


class WidgetAPI(AsyncAPIView):
    model = Widget
    fields = ("id", "name", "price", "meta")


class RectangleAPI(AsyncAPIView):
    model = Rectangle


urlpatterns = [
    path("widgets/", WidgetAPI.as_view()),
    path("widgets/<int:pk>/", WidgetAPI.as_view()),
    path("rectangles/", RectangleAPI.as_view()),
    path("rectangles/<int:pk>/", RectangleAPI.as_view()),
]


async def test_a_json_field_is_read_back_from_the_primary(pg: None) -> None:
    """PostgreSQL's jsonb reorders keys: the write reads the stored value back, from the
    database it wrote to (the replica has no such row until the commit)."""
    client = AsyncClient(raise_request_exception=False)
    created = await send(
        client, "POST", "/widgets/", {"name": "w", "price": "1", "meta": {"b": 1, "a": 2}}
    )
    assert created.status_code == 201, created.content
    assert body(created)["meta"] == {"a": 2, "b": 1}
    url = created["Location"]
    updated = await send(
        client, "PATCH", url, {"meta": {"z": 1, "y": 2}}, HTTP_IF_MATCH=created["ETag"]
    )
    assert updated.status_code == 200, updated.content
    assert body(updated)["meta"] == {"y": 2, "z": 1}
    read = await client.get(url)
    assert read["ETag"] == updated["ETag"]
    assert await Widget.objects.using(PRIMARY).acount() == 1


async def test_a_generated_field_is_read_back_from_the_primary(pg: None) -> None:
    client = AsyncClient(raise_request_exception=False)
    created = await send(client, "POST", "/rectangles/", {"width": 2, "height": 3})
    assert created.status_code == 201, created.content
    assert body(created)["area"] == 6
    updated = await send(client, "PATCH", created["Location"], {"width": 5})
    assert updated.status_code == 200, updated.content
    assert body(updated)["area"] == 15
