"""Writes racing other writes: the SQLite write queue's bound, related rows checked in
the write's transaction."""

from __future__ import annotations

import asyncio
import datetime
import threading
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django import forms
from django.db import (
    DatabaseError,
    OperationalError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.backends.signals import connection_created
from django.forms import modelform_factory
from django.test import AsyncClient
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.api import transactions, write_thread
from django_async_cbv.api.transactions import AfterCommitError
from django_async_cbv.api.uniqueness import run_deferred_checks
from tests.models import Booking, Category, Listing, Place, Restaurant
from tests.test_api_support import PROBLEM, body, post, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
    pytest.mark.usefixtures("request_connections_close"),
]

entered = threading.Event()
release = threading.Event()


def _close_with_the_request() -> None:
    # Django ignores close() on an in-memory SQLite database; let this request's
    # thread's connection really close when the request finishes (the test's own
    # connection keeps the shared database alive).
    connection.is_in_memory_db = lambda: False  # type: ignore[method-assign]


class CategoryAPI(AsyncAPIView):
    """Reads nothing before its turn (the unique checks wait for the database): the
    test database, in-memory with a shared cache, refuses reads of a table that
    another connection is writing, where a file database would not."""

    model = Category


class HungAPI(CategoryAPI):
    """A write whose hook hangs, holding the write queue, until the test releases it."""

    def perform_create(self, form: Any) -> Any:  # type: ignore[override]
        _close_with_the_request()
        entered.set()
        release.wait(60)  # longer than the test waits for anything else
        return super().perform_create(form)


class TimedAPI(CategoryAPI):
    timeout = 0.3


class LockLost(Exception):
    """Stands for the driver's error of a lock the database would not give."""

    sqlstate = "55P03"


def fail_over_a_lock() -> None:
    raise OperationalError("could not obtain lock") from LockLost()


class CallbackAPI(CategoryAPI):
    """Registers an on_commit callback that fails, or that hangs until released."""

    def perform_create(self, form: Any) -> Any:  # type: ignore[override]
        if form.data["name"] == "failing":
            transaction.on_commit(fail_over_a_lock)
        else:
            _close_with_the_request()
            transaction.on_commit(lambda: (entered.set(), release.wait(60)))
        return super().perform_create(form)


class HookedAPI(CategoryAPI):
    """The default create, through an override that only calls it."""

    async def perform_create(self, form: Any) -> Any:  # type: ignore[override]
        return await super().perform_create(form)


class ListingAPI(AsyncAPIView):
    model = Listing


class DeletedMeanwhileAPI(AsyncAPIView):
    """Another request deletes the object between the view's lookup and its write."""

    async def get_object(self) -> Any:
        obj = await super().get_object()
        await type(obj)._base_manager.filter(pk=obj.pk).adelete()  # the other request
        return obj


class DeletedCategoryAPI(DeletedMeanwhileAPI):
    model = Category


class ProxyCategory(Category):
    class Meta:
        app_label = "tests"
        proxy = True


class DeletedProxyAPI(DeletedMeanwhileAPI):
    """A proxy model: its concrete model has no parent table to lock first."""

    model = ProxyCategory


class DeletedRestaurantAPI(DeletedMeanwhileAPI):
    model = Restaurant
    fields = ("code", "name", "stars")


class DeletedHookedAPI(DeletedCategoryAPI):
    async def perform_update(self, form: Any) -> Any:  # type: ignore[override]
        obj = form.save(commit=False)
        await sync_to_async(obj.save)()
        return obj


class DeletedUpdateFieldsAPI(DeletedCategoryAPI):
    async def perform_update(self, form: Any) -> Any:  # type: ignore[override]
        obj = form.save(commit=False)
        await obj.asave(update_fields=["name"])
        return obj


urlpatterns = [
    path("categories/", CategoryAPI.as_view()),
    path("deleted-update-fields/<int:pk>/", DeletedUpdateFieldsAPI.as_view()),
    path("deleted/<int:pk>/", DeletedCategoryAPI.as_view()),
    path("deleted-proxy/<int:pk>/", DeletedProxyAPI.as_view()),
    path("deleted-hooked/<int:pk>/", DeletedHookedAPI.as_view()),
    path("deleted-restaurants/<str:pk>/", DeletedRestaurantAPI.as_view()),
    path("hung/", HungAPI.as_view()),
    path("timed/", TimedAPI.as_view()),
    path("callback/", CallbackAPI.as_view()),
    path("listings/", ListingAPI.as_view()),
    path("hooked/", HookedAPI.as_view()),
]


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient(raise_request_exception=False)


@pytest.fixture
def hung_writer(client: AsyncClient) -> Any:
    """Start a create whose hook hangs inside its transaction; yield its task."""
    entered.clear()
    release.clear()

    async def start() -> asyncio.Task[Any]:
        task = asyncio.ensure_future(post(client, "/hung/", {"name": "first"}))
        assert await asyncio.to_thread(entered.wait, 10)
        return task

    yield start
    release.set()


def _names() -> list[str]:
    return sorted(Category.objects.values_list("name", flat=True))


# -- the SQLite write queue ----------------------------------------------------------


async def test_a_write_queued_behind_a_hung_one_is_503_within_the_busy_timeout(
    client: AsyncClient, hung_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It waits as long as SQLite would wait for its lock (OPTIONS["timeout"]), then
    gets a 503 with Retry-After, never a 500; the hung write itself still commits."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    first = await hung_writer()
    queued = await asyncio.wait_for(post(client, "/categories/", {"name": "second"}), 10)
    assert queued.status_code == 503
    assert queued["Content-Type"] == PROBLEM
    assert queued["Retry-After"] == "1"
    assert body(queued)["detail"] == "The database is busy with other writes. Try again later."
    release.set()
    assert (await first).status_code == 201
    # The queue goes on: the next write gets its turn.
    assert (await send(client, "POST", "/categories/", {"name": "third"})).status_code == 201
    assert await sync_to_async(_names)() == ["first", "third"]


async def test_a_busy_timeout_of_0_refuses_a_queued_write_at_once(
    client: AsyncClient, hung_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPTIONS["timeout"] = 0 means SQLite does not wait for its lock: nor does the queue
    (not the 5 s of a database that sets no timeout)."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0)
    first = await hung_writer()
    queued = await asyncio.wait_for(post(client, "/categories/", {"name": "second"}), 3)
    assert queued.status_code == 503
    assert queued["Retry-After"] == "1"
    release.set()
    assert (await first).status_code == 201
    assert await sync_to_async(_names)() == ["first"]


async def test_a_queued_write_of_a_view_with_a_timeout_is_504_and_leaves_the_queue(
    client: AsyncClient, hung_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The view's timeout, shorter than the busy timeout, ends the wait: 504, and the
    request's thread leaves the queue at once instead of waiting for its turn."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 60)
    first = await hung_writer()
    timed = await asyncio.wait_for(post(client, "/timed/", {"name": "second"}), 10)
    assert timed.status_code == 504
    assert timed["Content-Type"] == PROBLEM
    waiting = [t for t in threading.enumerate() if t.name.startswith("async-cbv-handler")]
    for thread in waiting:  # the hung write still holds the queue
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()
    assert entered.is_set()
    assert not release.is_set()
    release.set()
    assert (await first).status_code == 201
    assert await sync_to_async(_names)() == ["first"]


@pytest.mark.parametrize(
    ("mode", "first"),
    [
        (None, ["BEGIN IMMEDIATE", "INSERT"]),
        ("DEFERRED", ["BEGIN IMMEDIATE", "INSERT"]),
        ("IMMEDIATE", ["BEGIN IMMEDIATE", "INSERT"]),
        ("EXCLUSIVE", ["BEGIN EXCLUSIVE", "INSERT"]),
    ],
)
async def test_a_write_takes_sqlites_write_lock_before_anything_else(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch, mode: str | None, first: list[str]
) -> None:
    """Whatever the transaction mode, the write's BEGIN takes the lock: IMMEDIATE, or
    EXCLUSIVE when the settings ask for it. Nothing touches a table but the write."""
    if mode is not None:
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "transaction_mode", mode)
    statements: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    def install(sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(record)
        connection.is_in_memory_db = lambda: False  # closed with its request (see above)

    connection_created.connect(install)
    try:
        response = await post(client, "/categories/", {"name": "locked"})
    finally:
        connection_created.disconnect(install)
    assert response.status_code == 201
    writes = [sql for sql in statements if not sql.startswith("PRAGMA")]
    assert len(writes) == len(first)
    assert all(sql.startswith(start) for sql, start in zip(writes, first, strict=True)), writes
    assert writes[0] == first[0]


@pytest.mark.parametrize("url", ["/categories/", "/hooked/"])
async def test_a_duplicate_created_after_validation_is_400_whether_or_not_the_hook_is_overridden(
    client: AsyncClient, url: str
) -> None:
    """Another client creates the same name between this one's validation and its
    save: the database refuses the row, and the answer is the duplicate's 400, the
    same with an override of perform_create() that only calls the default one."""
    validate = forms.BaseForm.is_valid
    raced: list[int] = []

    def create_the_same_name() -> None:
        try:
            Category.objects.create(name="same")
        finally:
            connections["default"].close()

    def is_valid_then_race(form: forms.BaseForm) -> bool:
        valid = validate(form)
        if not raced:
            raced.append(1)
            racer = threading.Thread(target=create_the_same_name)
            racer.start()
            racer.join()
        return valid

    with mock.patch.object(forms.BaseForm, "is_valid", is_valid_then_race):
        response = await post(client, url, {"name": "same"})
    assert response.status_code == 400, body(response)
    assert set(body(response)["errors"]) == {"name"}
    assert await sync_to_async(_names)() == ["same"]


class _Announced(transactions._Waiter):
    """A queue's waiter that says when it starts waiting."""

    __slots__ = ()
    waiting = threading.Event()

    def __init__(self, abandoned: threading.Event) -> None:
        super().__init__(abandoned)
        announced = self.waiting

        class Woken(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                announced.set()
                return super().wait(timeout)

        self.woken = Woken()


def test_the_write_queue_hands_the_turn_to_the_writer_that_waited_longest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A writer that arrives as the turn is handed on (here the one that just left)
    waits behind the writers already waiting: first come, first served."""
    monkeypatch.setattr(transactions, "_Waiter", _Announced)
    _Announced.waiting.clear()
    queue = transactions._WriteQueue()
    queue.enter(1, threading.Event())
    turns: list[str] = []
    done = threading.Event()

    def waiter() -> None:
        queue.enter(10, threading.Event())
        turns.append("waiter")
        done.wait(10)
        queue.leave()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert _Announced.waiting.wait(10)
    queue.leave()
    with pytest.raises(transactions.WriteQueueTimeout):
        queue.enter(0, threading.Event())  # the waiter has the turn now
    done.set()
    queue.enter(10, threading.Event())
    turns.append("newcomer")
    queue.leave()
    thread.join(10)
    assert turns == ["waiter", "newcomer"]


async def test_a_write_still_connecting_does_not_hold_up_the_queue(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a write's connection (a slow ``connection_created`` receiver here) is
    no write: the writes behind it go on meanwhile, and it commits once connected."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 60)
    connecting = threading.Event()
    connected = threading.Event()
    opened: list[int] = []

    def slow_setup(sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.is_in_memory_db = lambda: False  # closed with its request (see above)
        opened.append(threading.get_ident())
        if len(opened) == 1:  # the first write's connection
            connecting.set()
            connected.wait(60)  # longer than the test waits for anything else

    connection_created.connect(slow_setup)
    try:
        first = asyncio.ensure_future(post(client, "/categories/", {"name": "first"}))
        assert await asyncio.to_thread(connecting.wait, 10)
        second = await asyncio.wait_for(post(client, "/categories/", {"name": "second"}), 10)
        assert second.status_code == 201
        assert not first.done()
        connected.set()
        assert (await asyncio.wait_for(first, 10)).status_code == 201
    finally:
        connected.set()
        connection_created.disconnect(slow_setup)
    assert await sync_to_async(_names)() == ["first", "second"]


# -- related rows checked inside the transaction --------------------------------------


async def test_a_related_row_changed_during_validation_never_leaves_an_invalid_reference(
    client: AsyncClient,
) -> None:
    """limit_choices_to is checked inside the write's transaction: a writer that tries
    to close the category between the check and the save must wait (on SQLite it is
    refused), so the stored listing never points at a closed category."""
    category = await Category.objects.acreate(name="open-1")
    other_writes: list[str] = []
    check = models.ForeignKey.validate

    def close_the_category() -> None:
        try:
            Category.objects.filter(pk=category.pk).update(name="closed-1")
        except OperationalError:  # the write lock is held: it must wait
            other_writes.append("refused")
        else:
            other_writes.append("committed")
        finally:
            own = connections["default"]
            if own.connection is not None:
                own.connection.close()
                own.connection = None

    def validate_then_race(self: models.ForeignKey[Any], value: Any, instance: Any) -> None:
        check(self, value, instance)  # the last check of the reference before the save
        if not other_writes:
            writer = threading.Thread(target=close_the_category)
            writer.start()
            writer.join()

    with mock.patch.object(models.ForeignKey, "validate", validate_then_race):
        response = await send(client, "POST", "/listings/", {"title": "t", "category": category.pk})
    stored = [name async for name in Listing.objects.values_list("category__name", flat=True)]
    assert all(name.startswith("open") for name in stored), stored
    assert response.status_code == 201
    assert other_writes == ["refused"]


async def test_a_related_row_outside_limit_choices_to_is_400(client: AsyncClient) -> None:
    category = await Category.objects.acreate(name="closed-2")
    response = await send(client, "POST", "/listings/", {"title": "t", "category": category.pk})
    assert response.status_code == 400
    assert set(body(response)["errors"]) == {"category"}
    assert await Listing.objects.acount() == 0


def test_the_checks_run_after_a_refused_write_include_the_models_constraints() -> None:
    """A row that another request saved after this form validated breaks a
    UniqueConstraint of Meta.constraints: checked again, it is the form's error."""
    form_class = modelform_factory(Booking, fields=["room", "day"])
    form = form_class(data={"room": "blue", "day": "2026-12-07"})
    assert form.is_valid()
    Booking.objects.create(room="blue", day=datetime.date(2026, 12, 7))  # the other request
    assert run_deferred_checks(form)
    assert form.errors.get_json_data()["__all__"][0]["code"] == "unique_together"


async def test_an_on_commit_callback_that_fails_is_never_a_refused_write() -> None:
    """The write is stored: a callback's error, even one that reads as a lost lock, is
    no 503 "send it again" (nor a 409), but the callback's own error (a 500)."""
    with pytest.raises(AfterCommitError) as raised:
        await send(AsyncClient(), "POST", "/callback/", {"name": "failing"})
    assert isinstance(raised.value.__cause__, OperationalError)
    assert await sync_to_async(_names)() == ["failing"]


async def test_a_slow_on_commit_callback_does_not_hold_up_the_next_write(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue's turn passes on at the COMMIT, before the project's callbacks run."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    entered.clear()
    release.clear()
    first = asyncio.ensure_future(post(client, "/callback/", {"name": "slow"}))
    try:
        assert await asyncio.to_thread(entered.wait, 10)
        second = await asyncio.wait_for(post(client, "/categories/", {"name": "next"}), 10)
        assert second.status_code == 201, second.content
    finally:
        release.set()
    assert (await first).status_code == 201
    assert await sync_to_async(_names)() == ["next", "slow"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    "route", ["deleted", "deleted-proxy", "deleted-hooked", "deleted-update-fields"]
)
async def test_an_update_of_an_object_deleted_meanwhile_is_404_and_never_brings_it_back(
    client: AsyncClient, method: str, route: str
) -> None:
    """Without If-Match, the object is looked up before the write's transaction: a
    DELETE that commits in between leaves the UPDATE no row, and Django's save() would
    then INSERT it again (a 204 DELETE undone by a 200 PATCH)."""
    category = await Category.objects.acreate(name="doomed")
    response = await send(client, method, f"/{route}/{category.pk}/", {"name": "back"})
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == PROBLEM
    assert not await Category.objects.aexists()


async def test_an_update_of_a_child_row_deleted_meanwhile_restores_no_table(
    client: AsyncClient,
) -> None:
    """Multi-table inheritance: neither the parent's row nor the child's comes back."""
    await Restaurant.objects.acreate(code="gone", name="Gone", stars=1)
    response = await send(client, "PATCH", "/deleted-restaurants/gone/", {"stars": 2})
    assert response.status_code == 404, response.content
    assert not await Place.objects.aexists()
    assert not await Restaurant.objects.aexists()


def test_a_duplicate_over_a_field_the_form_leaves_out_is_an_error_of_the_form() -> None:
    """The view set the field (``form.instance.owner = request.user`` style): the form's
    own checks cannot see the constraint, checked with every field it is found."""
    form_class = modelform_factory(Booking, fields=["room"])
    form = form_class(data={"room": "blue"})
    form.instance.day = datetime.date(2026, 12, 7)  # set by the view
    assert form.is_valid()
    Booking.objects.create(room="blue", day=datetime.date(2026, 12, 7))  # the other request
    assert run_deferred_checks(form)
    assert list(form.errors) == ["__all__"]
    assert "already exists" in form.errors["__all__"][0]


def _driver_error(module: str, *args: Any, **attributes: Any) -> OperationalError:
    """Django's OperationalError raised from a driver's error (``module`` names the driver)."""
    driver_error = type("DriverError", (Exception,), {"__module__": module, **attributes})(*args)
    error = OperationalError("refused")
    error.__cause__ = driver_error
    return error


class _OracleError:
    def __init__(self, code: int) -> None:
        self.code = code


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (_driver_error("psycopg.errors", sqlstate="40P01"), True),  # deadlock detected
        (_driver_error("psycopg.errors", sqlstate="40001"), True),  # serialization failure
        (_driver_error("psycopg.errors", sqlstate="55P03"), True),  # lock_timeout, NOWAIT
        (_driver_error("psycopg2.errors", pgcode="40P01"), True),
        (_driver_error("psycopg.errors", sqlstate="57014"), False),  # statement_timeout
        (_driver_error("MySQLdb._exceptions", 1213, "Deadlock found"), True),
        (_driver_error("pymysql.err", 1205, "Lock wait timeout exceeded"), True),
        (_driver_error("MySQLdb._exceptions", 1020, "Record has changed"), True),
        (_driver_error("MySQLdb._exceptions", 2013, "Lost connection"), False),
        (_driver_error("oracledb.exceptions", _OracleError(60)), True),
        (_driver_error("oracledb.exceptions", _OracleError(8177)), True),
        (_driver_error("oracledb.exceptions", _OracleError(1013)), False),
        (_driver_error("sqlite3", "database is locked"), False),  # the queue's own case
        (OperationalError("no cause"), False),
    ],
)
def test_which_database_errors_are_a_lost_lock_race(error: Exception, retryable: bool) -> None:
    assert transactions.lost_a_lock_race(error) is retryable


def test_the_checks_with_left_out_fields_report_only_what_a_database_enforces() -> None:
    """A Python-only check (unique_for_date) over a field the form leaves out cannot be
    why the database refused the write: it is not reported as the cause."""
    day = datetime.date(2026, 12, 7)
    Booking.objects.create(room="red", day=day, code="x")
    form = modelform_factory(Booking, fields=["room", "day"])(data={"room": "blue", "day": day})
    form.instance.code = "x"  # set by the view
    assert form.is_valid()
    assert not run_deferred_checks(form)


def test_the_checks_with_left_out_fields_skip_keys_a_failed_insert_may_have_left() -> None:
    """Multi-table inheritance: a failed child insert may leave the parent's key set to a
    row that was rolled back (and reused since); that is no duplicate to report."""
    Place.objects.create(code="taken", name="Other")
    form = modelform_factory(Restaurant, fields=["name", "stars"])(data={"name": "R", "stars": 1})
    form.instance.code = "taken"  # as a failed insert may leave it
    assert form.is_valid()
    assert not run_deferred_checks(form)


def test_a_lost_lock_race_raised_as_a_database_error_is_refused_with_503() -> None:
    """Oracle's driver raises a deadlock as DatabaseError, not OperationalError."""
    error = DatabaseError("ORA-00060: deadlock detected")
    error.__cause__ = _driver_error("oracledb.exceptions", _OracleError(60)).__cause__
    problem = write_thread.refusal(error)
    assert problem is not None
    assert (problem.status, problem.headers) == (503, {"Retry-After": "1"})
    assert write_thread.refusal(DatabaseError("anything else")) is None
