"""The transaction around a write, and what runs in it.

``write_transaction()`` is ``transaction.atomic()`` on the write's database, rolled
back if the request was cancelled meanwhile. On SQLite, whose write lock is one
for the whole database, the writes of a process also queue for it on a lock of
their own, in the order they come: SQLite's own waiting (sleep and retry, in
growing steps) lets some writers starve while others pass. Each then takes the
write lock before it reads anything (:func:`take_write_lock`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.db import connections, models, transaction

__all__ = ["WriteAbandoned", "inserting", "take_write_lock", "write_transaction"]

logger = logging.getLogger("django_async_cbv")

_QUEUES: dict[str, threading.Lock] = {}
_QUEUES_LOCK = threading.Lock()


class WriteAbandoned(Exception):
    """Raised in a write's thread to roll it back: its request was cancelled."""


@contextmanager
def inserting(instance: models.Model) -> Iterator[None]:
    """Make the next ``instance.save()`` insert, as ``QuerySet.create()`` does.

    Without ``force_insert``, saving an instance whose primary key is set (a
    natural key the client chose) updates a row that already has that key. The
    insert is forced into every table of a multi-table-inheritance model, and
    only for the first save: a ``save()`` or receiver that saves again updates.
    """
    cls = type(instance)
    tables = (cls, *cls._meta.get_parent_list())

    def save_once(*args: Any, **kwargs: Any) -> Any:
        instance.__dict__.pop("save", None)
        if not args and not any(kwargs.get(k) for k in ("force_update", "update_fields")):
            kwargs.setdefault("force_insert", tables)
        return cls.save(instance, *args, **kwargs)

    instance.save = save_once  # type: ignore[method-assign]
    try:
        yield
    finally:
        instance.__dict__.pop("save", None)


@contextmanager
def _unless_cancelled(abandoned: threading.Event) -> Iterator[None]:
    """Roll the enclosing transaction back if the request was cancelled meanwhile."""
    yield
    if abandoned.is_set():
        logger.warning("Rolled back a write: its request was cancelled before it committed")
        raise WriteAbandoned("the request was cancelled before the write committed")


def _queue(using: str) -> threading.Lock | None:
    """The in-process queue of writers to database ``using``, if it has one (SQLite)."""
    if connections[using].vendor != "sqlite":
        return None
    queue = _QUEUES.get(using)
    if queue is None:
        with _QUEUES_LOCK:
            queue = _QUEUES.setdefault(using, threading.Lock())
    return queue


def take_write_lock(model: type[models.Model], using: str) -> None:
    """Take SQLite's write lock for the enclosing transaction before anything is read.

    An ``UPDATE`` that matches no row of ``model``'s table takes the lock (waiting
    for it within the busy timeout). Without it, a write that reads first (a
    delete's ``on_delete`` checks, a ``save()`` that queries) holds a read lock
    that it cannot turn into the write lock while another process waits to commit:
    SQLite answers "database is locked" at once instead of waiting.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    column = quote(str(model._meta.pk.column))
    sql = f"UPDATE {quote(model._meta.db_table)} SET {column} = {column} WHERE 0 = 1"
    with connection.cursor() as cursor:
        cursor.execute(sql)


@contextmanager
def write_transaction(
    using: str, abandoned: threading.Event, model: type[models.Model]
) -> Iterator[None]:
    """``transaction.atomic(using=using)`` for a write to ``model``; rolled back if ``abandoned``.

    On SQLite the write queues in the process, then takes the database's write lock
    first thing. Inside an enclosing transaction (a hook's nested write) there is
    nothing to queue for.
    """
    queue = None if connections[using].in_atomic_block else _queue(using)
    with queue or nullcontext(), transaction.atomic(using=using), _unless_cancelled(abandoned):
        if queue is not None:
            take_write_lock(model, using)
        yield
