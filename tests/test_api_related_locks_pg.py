"""On PostgreSQL, a write that validates a restricted relation locks the related rows
it names: a concurrent change to one of them waits until the write has ended.

Runs against a throw-away PostgreSQL cluster when Debian's ``postgresql`` package is
installed; without it the test is skipped loudly, and under ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction
from django.forms import modelform_factory

from django_async_cbv.api.related import has_restricted_choices, lock_chosen_rows
from tests.models import Category, Listing
from tests.postgres_server import PostgresServer, find_bin_dir

pytestmark = pytest.mark.e2e

ALIAS = "related_locks_pg"


@pytest.fixture
def pg(django_db_blocker: Any) -> Iterator[str]:
    """A PostgreSQL database alias with the Category and Listing tables (only it: the
    test database of the suite is not used, so no test case guards the aliases)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bin_dir)
    server.start()
    unblocked = django_db_blocker.unblock()
    unblocked.__enter__()
    defaults = connections.settings["default"]
    connections.settings[ALIAS] = {
        **defaults,
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "HOST": server.host,
        "PORT": str(server.port),
        "USER": server.user,
        "PASSWORD": "",
        "OPTIONS": {},
        "TEST": {},
    }
    try:
        with connections[ALIAS].schema_editor() as editor:
            editor.create_model(Category)
            editor.create_model(Listing)
        yield ALIAS
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]
        del connections.settings[ALIAS]
        unblocked.__exit__(None, None, None)
        server.stop()


def _in_thread(target: Any) -> list[str]:
    outcome: list[str] = []

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
