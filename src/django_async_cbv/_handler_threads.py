"""The thread of a handler under a timeout, and the handler tasks a timeout abandoned
(internal; see ``AsyncView``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.db import connections

__all__ = [
    "_TaskTimedOut",
    "_abandon",
    "_abandoned",
    "_caller_in_transaction",
    "_handler_thread",
    "_in_own_task",
    "_run_in_own_thread",
]

logger = logging.getLogger("django_async_cbv")

T = TypeVar("T")

# Handler tasks abandoned by a timeout: kept referenced until they finish so that
# the event loop does not garbage-collect them mid-flight, and so that their
# outcome is retrieved (no "exception was never retrieved" noise).
_abandoned: set[asyncio.Task[Any]] = set()

# The thread of the timed call (a view's or a breaker's timeout) the current task runs
# in, if any: a sync handler is sent there (see ``AsyncView._call``).
_handler_thread: ContextVar[ThreadPoolExecutor | None] = ContextVar(
    "django_async_cbv_handler_thread", default=None
)


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.debug("A timed-out handler later failed", exc_info=task.exception())


def _abandon(task: asyncio.Task[Any]) -> None:
    """Cancel a handler's task and keep it referenced until it has finished."""
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)


class _HandlerThread(ThreadPoolExecutor):
    """The one thread of a timed handler; remembers whether any work was sent to it."""

    used = False

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="async-cbv-handler")

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.used = True
        return super().submit(fn, *args, **kwargs)


def _in_transaction() -> bool:
    return any(conn.in_atomic_block for conn in connections.all(initialized_only=True))


async def _caller_in_transaction() -> bool:
    """Whether an enclosing ``async_to_sync`` was called inside a database transaction.

    As in Django's ``TestCase`` (each test runs in a transaction), or a sync caller
    that wrapped the call in ``transaction.atomic()``. Only that thread's connection
    sees the transaction's rows (and, on SQLite, may read the tables it wrote to).
    """
    if getattr(AsyncToSync.executors, "current", None) is None:
        return False
    # Thread-sensitive under an enclosing async_to_sync: runs in the caller's thread.
    return await sync_to_async(_in_transaction)()


@asynccontextmanager
async def _thread_sensitive_executor(executor: ThreadPoolExecutor) -> AsyncIterator[None]:
    """Within the block, thread-sensitive ``sync_to_async`` calls of this task use ``executor``.

    ``ThreadSensitiveContext()`` cannot do it: only the outermost one counts, and
    ``ASGIHandler`` already opens one per request. asgiref 3.13's
    ``ThreadSensitiveContext(executor=...)`` could, but it also takes the calls away
    from the sync thread of an enclosing ``async_to_sync`` (WSGI, the async tests of
    Django's ``TestCase``), where the ORM must stay on the caller's connection (the
    test's transaction). So this sets, for the current task only, the context
    variable that ``SyncToAsync`` reads (asgiref 3.8 to 3.13), as an outermost
    ``ThreadSensitiveContext`` would; an enclosing ``async_to_sync`` still wins.
    """
    context = ThreadSensitiveContext()
    SyncToAsync.context_to_thread_executor[context] = executor
    token = SyncToAsync.thread_sensitive_context.set(context)
    try:
        yield
    finally:
        SyncToAsync.thread_sensitive_context.reset(token)
        # Tasks the handler left running get a thread of asgiref's from now on.
        SyncToAsync.context_to_thread_executor.pop(context, None)


async def _run_in_own_thread(call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()`` with a thread of its own (``executor``) for its thread-sensitive work.

    Used for handlers under a timeout. Django runs a request's sync work (e.g.
    every ``MiddlewareMixin.process_response``) thread-sensitively, in one thread
    per request; a timed-out handler still busy in that thread (a sync handler,
    ``sync_to_async``, the async ORM) would hold the 504 back until it returned.
    Here the handler's thread-sensitive calls run on ``executor`` instead (a sync
    handler is sent there explicitly: ``_handler_thread`` names it), and an
    abandoned call finishes there in the background.

    When the work sent to that thread has ended, the thread closes the database
    connections it opened (nobody else can: they are thread-local) and exits.
    That clean-up is queued behind the work rather than awaited, so neither an
    abandoned handler nor one that returned while work it started still runs
    waits for it.

    Under ``async_to_sync`` (WSGI) the handler's thread-sensitive calls run in the
    caller's sync thread, as everywhere under WSGI: there the 504 leaves only when
    such a call has returned. A sync handler runs on ``executor`` too, unless that
    caller is inside a database transaction (see ``AsyncView._call``).
    """
    executor = _HandlerThread()
    token = _handler_thread.set(executor)
    try:
        async with _thread_sensitive_executor(executor):
            return await call()
    finally:
        _handler_thread.reset(token)
        if executor.used:
            executor.submit(connections.close_all)
        executor.shutdown(wait=False)


class _TaskTimedOut(Exception):
    """Raised by :func:`_in_own_task` when its ``seconds`` passed (the task is abandoned)."""


async def _in_own_task(call: Callable[[], Awaitable[T]], seconds: float | None = None) -> T:
    """Await ``call()`` in a task with a thread of its own (:func:`_run_in_own_thread`).

    The caller answers on time: when it is cancelled, or when ``seconds`` have
    passed (then :class:`_TaskTimedOut` is raised), the task is abandoned and
    finishes in the background.
    """
    task = asyncio.ensure_future(_run_in_own_thread(call))
    try:
        done, _ = await asyncio.wait((task,), timeout=seconds)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise _TaskTimedOut
    return task.result()
