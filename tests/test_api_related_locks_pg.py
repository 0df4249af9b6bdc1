"""On PostgreSQL, a write that validates a restricted relation locks the related rows
it names: a concurrent change to one of them waits until the write has ended.

Runs against a throw-away PostgreSQL cluster when Debian's ``postgresql`` package is
installed; without it the test is skipped loudly, and under ``CI=true`` it fails.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import OperationalError, connections, models, transaction
from django.db.backends.signals import connection_created
from django.forms import modelform_factory
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.api.related import has_restricted_choices, lock_chosen_rows
from django_async_cbv.api.transactions import lost_a_lock_race
from tests.models import Category, Listing
from tests.postgres_server import postgres_aliases

pytestmark = [pytest.mark.e2e, pytest.mark.urls(__name__)]

ALIAS = "related_locks_pg"


@pytest.fixture
def pg(django_db_blocker: Any) -> Iterator[str]:
    """A PostgreSQL database alias with the Category and Listing tables (only it: the
    test database of the suite is not used, so no test case guards the aliases)."""
    with postgres_aliases(django_db_blocker, [ALIAS], [Category, Listing]):
        yield ALIAS


class ListingAPI(AsyncAPIView):
    model = Listing


urlpatterns = [path("listings/", ListingAPI.as_view())]


class ToPostgres:
    """Sends every query and write of the test models to the PostgreSQL alias."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return ALIAS if model in {Category, Listing} else None

    db_for_write = db_for_read


@contextmanager
def holding_a_lock_on(pg: str, category: Category) -> Iterator[None]:
    """Another connection holds a row lock on ``category`` while the block runs."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(using=pg):
                list(Category.objects.using(pg).select_for_update().filter(pk=category.pk))
                locked.set()
                release.wait(30)
        finally:
            connections[pg].close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(30)
        yield
    finally:
        release.set()
        thread.join(30)


def _in_thread(target: Any) -> list[Any]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(target())
        finally:
            connections[ALIAS].close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return outcome


def test_the_related_row_a_write_validates_is_locked_until_it_ends(pg: str) -> None:
    category = Category.objects.using(pg).create(name="open-1")
    form_class = modelform_factory(Listing, fields=["title", "category"])
    assert has_restricted_choices(form_class)

    def close_the_category() -> str:
        with transaction.atomic(using=pg), connections[pg].cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '200ms'")
            try:
                with transaction.atomic(using=pg):
                    Category.objects.using(pg).filter(pk=category.pk).update(name="closed-1")
            except OperationalError:
                return "waited"
        return "changed"

    with transaction.atomic(using=pg):
        form = form_class(data={"title": "t", "category": category.pk})
        form.fields["category"].queryset = Category.objects.using(pg)
        lock_chosen_rows(form, pg)
        assert form.is_valid(), form.errors
        assert _in_thread(close_the_category) == ["waited"]
        form.instance.save(using=pg)
    assert Listing.objects.using(pg).count() == 1
    assert _in_thread(close_the_category) == ["changed"]  # the lock ended with the write


def test_a_value_that_is_no_key_leaves_the_transaction_usable(pg: str) -> None:
    form_class = modelform_factory(Listing, fields=["title", "category"])
    with transaction.atomic(using=pg):
        form = form_class(data={"title": "t", "category": "not-a-number"})
        form.fields["category"].queryset = Category.objects.using(pg)
        lock_chosen_rows(form, pg)
        assert not form.is_valid()
        assert Category.objects.using(pg).count() == 0


def test_a_chosen_row_that_cannot_be_locked_ends_the_write(pg: str) -> None:
    """A lock on a chosen row that cannot be had (here a lock timeout; a deadlock with
    code that locks in the other order alike) is raised, not skipped: validating a row
    the write could not lock could store a reference that a concurrent change breaks."""
    category = Category.objects.using(pg).create(name="open-1")
    form_class = modelform_factory(Listing, fields=["title", "category"])
    with holding_a_lock_on(pg, category), transaction.atomic(using=pg):
        connections[pg].cursor().execute("SET LOCAL lock_timeout = '100ms'")
        form = form_class(data={"title": "t", "category": category.pk})
        form.fields["category"].queryset = Category.objects.using(pg)
        with pytest.raises(OperationalError) as raised:
            lock_chosen_rows(form, pg)
    assert lost_a_lock_race(raised.value)
    connections[pg].close()


async def test_a_write_the_database_ends_over_its_locks_is_503(pg: str) -> None:
    """The API answers a write rolled back for a lock it could not take with 503 and
    Retry-After (it may be sent again), and writes nothing."""
    # Made in a thread of its own, which closes its connection: the write's is a new one.
    [category] = _in_thread(lambda: Category.objects.using(pg).create(name="open-1"))

    def short_lock_timeout(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.alias == pg:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 100")

    connection_created.connect(short_lock_timeout)
    try:
        with override_settings(DATABASE_ROUTERS=[ToPostgres()]), holding_a_lock_on(pg, category):
            response = await AsyncClient().post(
                "/listings/", {"title": "t", "category": category.pk}, "application/json"
            )
    finally:
        connection_created.disconnect(short_lock_timeout)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "1"
    assert response["Content-Type"] == "application/problem+json"
    assert _in_thread(Listing.objects.using(pg).count) == [0]
