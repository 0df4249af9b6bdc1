"""The one thread hop of a write, and calling hooks from inside it.

A write (the JSON API's, or a generic form view's) runs all its database work in one
``sync_to_async`` hop: :func:`run_write`. Inside it, hooks that may be sync or
async are called with :func:`call_from_thread`; the default hooks return
:func:`run_sync`'s awaitable, which runs at once when already in the thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Generator
from inspect import isawaitable
from typing import Any, Generic, TypeVar

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.db import DatabaseError

from django_async_cbv.exceptions import ProblemError

from .transactions import WriteQueueTimeout, abandon, lost_a_lock_race

__all__ = ["BUSY_DETAIL", "Done", "call_from_thread", "refusal", "run_sync", "run_write"]

logger = logging.getLogger("django_async_cbv")

BUSY_DETAIL = "The database is busy with other writes. Try again later."

T = TypeVar("T")


class Done(Generic[T]):
    """An awaitable holding a result that is already there."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        yield from ()  # a generator, as __await__ must return an iterator
        return self.value


def run_sync(func: Callable[..., T], *args: Any) -> Awaitable[T]:
    """Run sync ``func`` in the write's thread, from wherever the caller is.

    Awaited on the event loop (an ``async def`` hook calling ``super()``), it hops
    to the thread with ``sync_to_async``, which sends it to the write's thread.
    Called from the write's thread itself, it runs ``func`` at once: no round trip
    through the event loop for the default hooks.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_thread = True
    else:
        in_thread = False
    if in_thread:  # called outside the except block: no misleading __context__
        return Done(func(*args))
    return sync_to_async(func)(*args)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def call_from_thread(hook: Callable[..., Any], *args: Any) -> Any:
    """Call a sync-or-async hook from a ``sync_to_async`` thread and return its result."""
    if iscoroutinefunction(hook):
        return async_to_sync(hook)(*args)
    result = hook(*args)
    if isinstance(result, Done):
        return result.value
    if isawaitable(result):
        return async_to_sync(_await)(result)
    return result


def refusal(exc: BaseException) -> ProblemError | None:
    """The 503 answer, with ``Retry-After``, to a write the database refused for now.

    A write that waited too long for its turn (SQLite), or that the database rolled
    back over its locks (see :func:`lost_a_lock_race`). None for any other error.
    """
    if isinstance(exc, WriteQueueTimeout):
        retry_after = max(1, math.ceil(exc.waited))
    elif isinstance(exc, DatabaseError) and lost_a_lock_race(exc):
        retry_after = 1
    else:
        return None
    logger.warning("Write refused with 503 (rolled back, may be sent again): %s", exc)
    problem = ProblemError(503, detail=BUSY_DETAIL)
    problem.headers = {"Retry-After": str(retry_after)}
    return problem


async def run_write(func: Callable[[threading.Event], T]) -> T:
    """Run ``func(abandoned)`` in one ``sync_to_async`` hop.

    If the awaiting request is cancelled, ``abandoned`` is set (and a write waiting
    in the SQLite queue woken), so that ``func`` rolls its transaction back instead
    of committing after the client got its answer. A write that waited too long for
    the writes ahead of it (SQLite), or that the database rolled back to break a
    deadlock or a lock wait, becomes a 503 problem with ``Retry-After`` (see
    :func:`refusal`); any other exception propagates.
    """
    abandoned = threading.Event()
    try:
        return await sync_to_async(func)(abandoned)
    except asyncio.CancelledError:
        abandon(abandoned)
        raise
    except (WriteQueueTimeout, DatabaseError) as exc:
        problem = refusal(exc)
        if problem is None:
            raise
        raise problem from None
