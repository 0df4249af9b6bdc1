"""A handler timeout answers 504 on time even while the handler's work holds a thread.

Django runs the sync half of every ``MiddlewareMixin`` middleware (sessions, CSRF,
auth...) through thread-sensitive ``sync_to_async``, in the request's one sync
thread. A timed handler therefore does its thread-sensitive work (``sync_to_async``,
the async ORM, a sync handler) in a thread of its own, or the 504 would queue
behind the abandoned work. That thread's database connections are closed when
its work ends.

The requests go both through Django's ``AsyncClient`` (no per-request
``ThreadSensitiveContext``) and through ``ASGIHandler`` driven with an ASGI scope,
as an ASGI server does (every request inside its own ``ThreadSensitiveContext``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, TestCase
from django.urls import path

from django_async_cbv import AsyncView
from django_async_cbv import _handler_threads as views_module
from tests.models import Category

#: How long a test waits for something that should happen at once (never slept).
PATIENCE = 5.0


@dataclass
class Probe:
    """What the handler's work did, observed from the test."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    connection: BaseDatabaseWrapper | None = None


probe = Probe()


def _query() -> int:
    """Run a query in the calling thread and remember that thread's connection."""
    probe.thread = threading.current_thread()
    count = Category.objects.count()
    conn = connections[DEFAULT_DB_ALIAS]
    assert conn.connection is not None
    # Django ignores close() on an in-memory SQLite database (closing the last
    # connection would drop it). The suite's main connection keeps the shared
    # in-memory database alive, so let this thread's connection really close, as
    # a connection to any other database would.
    conn.is_in_memory_db = lambda: False  # type: ignore[method-assign]
    probe.connection = conn
    return count


def _block(orm: bool) -> str:
    """Optionally query, then block until the test releases the thread (at most 10 s)."""
    probe.thread = threading.current_thread()
    try:
        if orm:
            _query()
        probe.started.set()
        probe.release.wait(10)
    finally:
        probe.finished.set()
    return "finished"


class AsyncAwaitsThreadView(AsyncView):
    """An async handler awaiting thread-sensitive sync work, like any async ORM call."""

    timeout = 0.3

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(await sync_to_async(_block)(orm="orm" in request.GET))


class AsyncQuickOrmView(AsyncView):
    """An async handler whose thread-sensitive ORM work ends well within its timeout."""

    timeout = 5

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(await sync_to_async(_query)()))


class SyncBlockingView(AsyncView):
    """A sync handler under a timeout: it runs in a thread that cannot be interrupted."""

    timeout = 0.3

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(_block(orm="orm" in request.GET))


class SyncOverrideView(AsyncAwaitsThreadView):
    """A sync override returning its parent's coroutine (awaited by the view)."""

    def get(self, request: HttpRequest) -> Any:  # type: ignore[override]
        return super().get(request)


class SyncOrmWriteView(AsyncView):
    """A sync handler under a timeout that reads and writes with the ORM."""

    timeout = 5

    def post(self, request: HttpRequest) -> HttpResponse:
        Category.objects.create(name="from-the-handler")
        return HttpResponse(str(Category.objects.count()))


urlpatterns = [
    path("sync-orm-write/", SyncOrmWriteView.as_view()),
    path("async-awaits-thread/", AsyncAwaitsThreadView.as_view()),
    path("async-quick-orm/", AsyncQuickOrmView.as_view()),
    path("sync-blocking/", SyncBlockingView.as_view()),
    path("sync-override/", SyncOverrideView.as_view()),
]

pytestmark = pytest.mark.urls(__name__)


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.content_type == "application/problem+json"
        body: dict[str, Any] = json.loads(self.body)
        assert body["status"] == self.status
        return body


Get = Callable[[str], Awaitable[Answer]]


async def _via_async_client(url: str) -> Answer:
    response = await AsyncClient().get(url)
    return Answer(response.status_code, response["Content-Type"], response.content)


class _AsgiDriver:
    """Drive Django's ASGIHandler the way an ASGI server does, one request at a time."""

    def __init__(self) -> None:
        self.handler = ASGIHandler()
        self.apps: list[asyncio.Task[None]] = []
        self.disconnect = asyncio.Event()

    async def get(self, url: str) -> Answer:
        path_, _, query = url.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path_,
            "raw_path": path_.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        messages: list[dict[str, Any]] = []
        complete = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete.set()

        self.apps.append(asyncio.create_task(self.handler(scope, receive, send)))
        await complete.wait()
        start = messages[0]
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in messages[1:])
        return Answer(start["status"], headers.get("content-type", ""), body)

    async def close(self) -> None:
        self.disconnect.set()
        await asyncio.wait_for(asyncio.gather(*self.apps), 10)


@pytest.fixture(params=["AsyncClient", "ASGIHandler"])
async def get(request: pytest.FixtureRequest) -> AsyncIterator[Get]:
    """A GET through AsyncClient or through ASGIHandler, as an ASGI server sends it."""
    global probe
    probe = Probe()
    driver = _AsgiDriver() if request.param == "ASGIHandler" else None
    try:
        yield _via_async_client if driver is None else driver.get
    finally:
        probe.release.set()  # never leave a thread blocked, whatever the outcome
        if driver is not None:
            await driver.close()


@pytest.fixture
async def client_get() -> AsyncIterator[Get]:
    """A GET through AsyncClient only."""
    global probe
    probe = Probe()
    try:
        yield _via_async_client
    finally:
        probe.release.set()


async def _work_ends() -> None:
    """Release the blocked work and wait until its thread has wound down."""
    probe.release.set()
    assert await asyncio.to_thread(probe.finished.wait, 10)
    thread = probe.thread
    assert thread is not None
    # The handler's own thread exits once its work (and the clean-up) is done.
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()


async def _abandoned_tasks_finish() -> None:
    """The abandoned handlers' tasks finish too; nothing is left referenced."""
    if views_module._abandoned:
        await asyncio.wait(set(views_module._abandoned), timeout=PATIENCE)
    assert not views_module._abandoned


@pytest.mark.django_db(transaction=True)
async def test_504_leaves_while_an_async_handler_awaits_a_blocked_thread(get: Get) -> None:
    """The 504 does not queue behind the handler's sync_to_async work."""
    answer = await asyncio.wait_for(get("/async-awaits-thread/"), PATIENCE)
    assert answer.status == 504
    assert answer.problem()["title"] == "Gateway Timeout"
    assert probe.started.is_set()
    assert not probe.finished.is_set()  # the answer did not wait for the thread
    await _work_ends()
    await _abandoned_tasks_finish()


@pytest.mark.django_db(transaction=True)
async def test_abandoned_work_closes_its_db_connection_when_it_ends(get: Get) -> None:
    """The connection the abandoned ORM work opened is closed once that work ends."""
    answer = await asyncio.wait_for(get("/async-awaits-thread/?orm"), PATIENCE)
    assert answer.status == 504
    assert not probe.finished.is_set()
    conn = probe.connection
    assert conn is not None
    assert conn.connection is not None  # still in use by the blocked work
    await _work_ends()
    assert conn.connection is None


@pytest.mark.django_db(transaction=True)
async def test_handler_in_time_leaves_no_open_connection(client_get: Get) -> None:
    """Work that ends within the timeout closes its thread's connection too."""
    await sync_to_async(Category.objects.create)(name="one")
    answer = await asyncio.wait_for(client_get("/async-quick-orm/"), PATIENCE)
    assert (answer.status, answer.body) == (200, b"1")
    conn, thread = probe.connection, probe.thread
    assert conn is not None
    assert thread is not None
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    assert conn.connection is None


@pytest.mark.django_db(transaction=True)
async def test_sync_handler_under_a_timeout_still_answers_504_on_time(get: Get) -> None:
    """A sync handler's thread cannot be interrupted; the 504 does not wait for it."""
    answer = await asyncio.wait_for(get("/sync-blocking/?orm"), PATIENCE)
    assert answer.status == 504
    assert answer.problem()["title"] == "Gateway Timeout"
    assert not probe.finished.is_set()
    conn = probe.connection
    assert conn is not None
    await _work_ends()
    assert conn.connection is None
    await _abandoned_tasks_finish()


@pytest.mark.django_db(transaction=True)
async def test_sync_handler_returning_a_coroutine_answers_504_on_time(get: Get) -> None:
    """The coroutine a sync handler returns runs with the handler's own thread too."""
    answer = await asyncio.wait_for(get("/sync-override/?orm"), PATIENCE)
    assert answer.status == 504
    assert not probe.finished.is_set()
    conn = probe.connection
    assert conn is not None
    await _work_ends()
    assert conn.connection is None
    await _abandoned_tasks_finish()


class SyncHandlerInTestTransactionTests(TestCase):
    """In Django's TestCase a timed sync handler works in the test's transaction.

    The test's rows are visible only on the test thread's connection (and, on
    SQLite, the tables it wrote to are locked for any other connection); the
    handler's writes must be rolled back with the test.
    """

    def setUp(self) -> None:
        Category.objects.create(name="from-the-test")

    def test_with_the_test_client(self) -> None:
        response = Client().post("/sync-orm-write/")
        assert (response.status_code, response.content) == (200, b"2")
        assert Category.objects.filter(name="from-the-handler").exists()

    async def test_with_the_async_test_client(self) -> None:
        response = await AsyncClient().post("/sync-orm-write/")
        assert (response.status_code, response.content) == (200, b"2")
        assert await Category.objects.filter(name="from-the-handler").aexists()
