"""The transaction around a write, and what runs in it.

``write_transaction()`` is ``transaction.atomic()`` on the write's database, rolled
back if the request was cancelled meanwhile. On SQLite, whose write lock is one
for the whole database, the writes of a process also queue for it in a queue of
their own, woken in the order they came: SQLite's own waiting (sleep and retry,
in growing steps) lets some writers starve while others pass. Each then begins
with ``BEGIN IMMEDIATE``, taking the write lock before it reads anything.

A write waits in the queue at most as long as SQLite itself would wait for its
lock: the database's busy ``timeout`` (``DATABASES[...]["OPTIONS"]["timeout"]``,
5 seconds by default). Then it gives up with :class:`WriteQueueTimeout`, which
the view answers with 503 and ``Retry-After``, so that one hung write holds up the
others for a bounded time. A waiting write whose request is cancelled (the view's
``timeout``, a client that went away) leaves the queue at once. The queue does not
span processes: a write that then waits the busy timeout for the lock another
process holds ("database is locked") is rolled back and refused the same way.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import OperationalError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from django_async_cbv._validation import is_number

__all__ = [
    "AfterCommitError",
    "WriteAbandoned",
    "WriteQueueTimeout",
    "abandon",
    "check_cancelled",
    "lost_a_lock_race",
    "write_transaction",
]

logger = logging.getLogger("django_async_cbv")

#: SQLite's busy timeout when the database's OPTIONS set none (``sqlite3.connect()``'s).
DEFAULT_BUSY_TIMEOUT = 5.0
#: SQLite's primary result code for "database is locked" (``sqlite3.SQLITE_BUSY``).
_SQLITE_BUSY = 5


class WriteAbandoned(Exception):
    """Raised in a write's thread to roll it back: its request was cancelled."""


class AfterCommitError(Exception):
    """An ``on_commit`` callback of a write failed after the write had committed.

    Raised from the callback's exception, so that no answer says the write was
    refused or rolled back (a ``503`` to retry, a ``409``): it is stored.
    """


class WriteQueueTimeout(Exception):
    """A write waited its database's busy timeout in the queue without getting its turn."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"a write waited {waited:g} s for the writes ahead of it")
        self.waited = waited


class _Waiter:
    """A writer waiting in a :class:`_WriteQueue`: woken when given the turn or abandoned."""

    __slots__ = ("abandoned", "granted", "woken")

    def __init__(self, abandoned: threading.Event) -> None:
        self.abandoned = abandoned
        self.granted = False
        self.woken = threading.Event()


class _WriteQueue:
    """The writers of this process to one SQLite database, let in one at a time.

    First come, first served: the writer that leaves hands the turn to the one that
    has waited longest, so that no writer arriving meanwhile takes it first. A
    waiter gives up after a timeout, or when its request is cancelled
    (:func:`abandon` wakes it); one given the turn as it gave up keeps it.
    """

    __slots__ = ("_busy", "_lock", "_waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._waiters: deque[_Waiter] = deque()

    def enter(self, timeout: float, abandoned: threading.Event) -> None:
        """Wait for this writer's turn; raise if ``timeout`` passes or it is abandoned."""
        with self._lock:
            if not self._busy:
                self._busy = True
                return
            waiter = _Waiter(abandoned)
            self._waiters.append(waiter)
        if not abandoned.is_set():
            waiter.woken.wait(timeout)
        with self._lock:
            if waiter.granted:
                return
            self._waiters.remove(waiter)
        if abandoned.is_set():
            raise WriteAbandoned("the request was cancelled while its write waited")
        raise WriteQueueTimeout(timeout)

    def leave(self) -> None:
        """End this writer's turn: hand it to the writer that has waited longest."""
        with self._lock:
            if not self._waiters:
                self._busy = False
                return
            waiter = self._waiters.popleft()
            waiter.granted = True
        waiter.woken.set()

    def wake(self, abandoned: threading.Event) -> None:
        """Wake the writer waiting for ``abandoned``'s request, so that it leaves."""
        with self._lock:
            waiting = [waiter for waiter in self._waiters if waiter.abandoned is abandoned]
        for waiter in waiting:
            waiter.woken.set()


_QUEUES: dict[str, _WriteQueue] = {}
_QUEUES_LOCK = threading.Lock()
# SQLite transaction modes whose BEGIN takes the write lock.
_LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})


def abandon(abandoned: threading.Event) -> None:
    """Mark a write's request as cancelled, and wake it if it waits in a queue."""
    abandoned.set()
    for queue in list(_QUEUES.values()):
        queue.wake(abandoned)


def check_cancelled(abandoned: threading.Event) -> None:
    """Raise :class:`WriteAbandoned` (rolling the transaction back) if the request was cancelled.

    Called before committing, and before each hook that a write calls (``form_valid()``,
    ``perform_create()``, ...): a request already answered (a view ``timeout``, a client
    gone) calls no further hook. A sync hook already running is not interrupted.
    """
    if abandoned.is_set():
        logger.warning("Rolled back a write: its request was cancelled before it committed")
        raise WriteAbandoned("the request was cancelled before the write committed")


def _queue(using: str, connection: BaseDatabaseWrapper) -> _WriteQueue | None:
    """The in-process queue of writers to database ``using``, if it has one (SQLite)."""
    if connection.vendor != "sqlite":
        return None
    queue = _QUEUES.get(using)
    if queue is None:
        with _QUEUES_LOCK:
            queue = _QUEUES.setdefault(using, _WriteQueue())
    return queue


def busy_timeout(connection: BaseDatabaseWrapper) -> float:
    """How long SQLite waits for ``connection``'s lock: its database's ``timeout`` option."""
    value = connection.settings_dict.get("OPTIONS", {}).get("timeout")
    return max(0.0, float(value)) if is_number(value) else DEFAULT_BUSY_TIMEOUT


def _waited_busy_timeout(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "database is locked": its busy timeout ran out."""
    cause = error.__cause__ if isinstance(error, OperationalError) else None
    code = getattr(cause, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == _SQLITE_BUSY


# SQLSTATEs of a transaction the server rolled back for its locks, which may be retried:
# serialization failure, deadlock detected, lock not available (lock_timeout, NOWAIT).
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
# MySQL and MariaDB: deadlock found, lock wait timeout exceeded, and MariaDB's
# "record has changed since last read" (snapshot isolation).
_RETRYABLE_MYSQL_ERRORS = frozenset({1213, 1205, 1020})
# Oracle: ORA-00060 deadlock detected, ORA-08177 can't serialize access.
_RETRYABLE_ORACLE_ERRORS = frozenset({60, 8177})


def lost_a_lock_race(error: BaseException) -> bool:
    """Whether ``error`` is the database ending a transaction over its locks.

    A deadlock, a lock wait past the database's timeout, a serialization failure:
    the transaction is rolled back, and the same write may succeed if sent again.
    """
    cause = error.__cause__
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _RETRYABLE_SQLSTATES:
        return True
    args: tuple[Any, ...] = getattr(cause, "args", ())
    first = args[0] if args else None
    driver = type(cause).__module__.split(".")[0]
    if driver in {"MySQLdb", "pymysql"}:
        return first in _RETRYABLE_MYSQL_ERRORS
    if driver in {"oracledb", "cx_Oracle"}:
        return getattr(first, "code", None) in _RETRYABLE_ORACLE_ERRORS
    return False


@contextmanager
def _begin_immediate(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Make the next transaction ``connection`` begins on SQLite a ``BEGIN IMMEDIATE``.

    ``BEGIN IMMEDIATE`` takes the write lock (waiting for it within the busy
    timeout) before the transaction reads anything. A ``BEGIN`` that defers it
    lets a write that reads first (validation, a delete's ``on_delete`` checks, a
    hook that queries) hold a read snapshot that it cannot turn into the write
    lock once another process has committed since: SQLite answers "database is
    locked" at once instead of waiting. Django begins with the connection's
    ``transaction_mode`` (``OPTIONS["transaction_mode"]``), set here for the one
    ``BEGIN``; ``EXCLUSIVE`` takes the lock too and is kept.
    """
    mode = getattr(connection, "transaction_mode", None)
    if mode in _LOCKING_MODES:
        yield
        return
    connection.transaction_mode = "IMMEDIATE"  # type: ignore[attr-defined]
    try:
        yield
    finally:
        connection.transaction_mode = mode  # type: ignore[attr-defined]


class write_transaction:  # lower case: used as transaction.atomic() is
    """``transaction.atomic(using=using)`` for a write; rolled back if ``abandoned``.

    On SQLite the write queues in the process (at most the database's busy timeout,
    else :class:`WriteQueueTimeout`), then begins with ``BEGIN IMMEDIATE``, which
    takes the database's write lock first thing; "database is locked" (another
    process held the lock longer than the busy timeout) rolls it back and becomes
    :class:`WriteQueueTimeout` too. Inside an enclosing transaction (a hook's nested
    write) there is nothing to queue for. A context manager of its own rather than a
    stack of them: it runs once for every write.
    """

    __slots__ = ("_abandoned", "_atomic", "_committed", "_queue", "_timeout", "_using")

    def __init__(self, using: str, abandoned: threading.Event) -> None:
        self._using = using
        self._abandoned = abandoned
        self._atomic = transaction.atomic(using=using)
        self._queue: _WriteQueue | None = None
        self._timeout: float | None = None  # the busy timeout of a queued write
        self._committed = False

    def __enter__(self) -> None:
        using = self._using
        connection = connections[using]
        queue = None if connection.in_atomic_block else _queue(using, connection)
        if queue is not None:
            # Connected before queueing: opening a connection (and its init_command)
            # is no write, and would otherwise hold up the writes queued behind it.
            connection.ensure_connection()
            self._timeout = busy_timeout(connection)
            queue.enter(self._timeout, self._abandoned)
            self._queue = queue
        try:
            if queue is not None and self._abandoned.is_set():
                # Woken for its turn after its request was cancelled.
                raise WriteAbandoned("the request was cancelled while its write waited")
            if queue is None:
                self._atomic.__enter__()
            else:
                with _begin_immediate(connection):
                    self._atomic.__enter__()
        except BaseException as exc:
            self._leave()
            self._refuse_if_busy(exc)
            raise
        # The first callback after the COMMIT (the project's own come after it).
        transaction.on_commit(self._on_commit, using=using)

    def _on_commit(self) -> None:
        """Note that the write committed, and give the queue's turn to the next writer
        before the project's ``on_commit`` callbacks run (they may be slow)."""
        self._committed = True
        self._leave()

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        try:
            if self._queue is None:
                self._end(exc_type, exc, traceback)
            else:
                # The turn passes on at the COMMIT (see _on_commit): a transaction that
                # an on_commit callback opens must take the write lock first as well,
                # or, reading before it writes, it fails beside the next writer.
                with _begin_immediate(connections[self._using]):
                    self._end(exc_type, exc, traceback)
        except Exception as error:
            if self._committed:  # an on_commit callback: the write is stored
                raise AfterCommitError(
                    "an on_commit callback failed after the write committed"
                ) from error
            if isinstance(error, OperationalError):  # the COMMIT itself
                self._refuse_if_busy(error)
            raise
        finally:
            self._leave()
        if exc is not None:
            self._refuse_if_busy(exc)

    def _end(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        """Commit, or roll back on an exception or a cancelled request."""
        if exc_type is None:
            try:
                check_cancelled(self._abandoned)
            except WriteAbandoned as abandoned:
                self._atomic.__exit__(WriteAbandoned, abandoned, abandoned.__traceback__)
                raise
        self._atomic.__exit__(exc_type, exc, traceback)

    def _refuse_if_busy(self, error: BaseException) -> None:
        """Raise :class:`WriteQueueTimeout` if ``error`` is SQLite's "database is locked"
        in a queued write (rolled back by then): the write waited its busy timeout."""
        if self._timeout is not None and _waited_busy_timeout(error):
            raise WriteQueueTimeout(self._timeout) from error

    def _leave(self) -> None:
        if self._queue is not None:
            self._queue.leave()
            self._queue = None
