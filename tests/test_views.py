"""Tests for AsyncView: dispatch, mixed handlers, timeouts, errors, gather, decorators."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, AsyncRequestFactory, override_settings
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.functional import SimpleLazyObject
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.vary import vary_on_headers

from django_async_cbv import (
    AsyncView,
    CircuitOpenError,
    ProblemError,
    UpstreamError,
    UpstreamTimeout,
)
from django_async_cbv import _handler_threads as views_module

# --- views under test -------------------------------------------------------------------


class MixedView(AsyncView):
    """A sync GET beside an async POST: allowed, unlike Django's View."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"thread": threading.get_ident(), "loop": _has_running_loop()})

    async def post(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"thread": threading.get_ident(), "loop": _has_running_loop()})


def _has_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SyncOnlyView(AsyncView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("sync")


class OrmView(AsyncView):
    def get(self, request: HttpRequest) -> HttpResponse:
        # Would raise SynchronousOnlyOperation if run on the event loop.
        return HttpResponse(str(User.objects.count()))


class UserView(AsyncView):
    def get(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        return JsonResponse(
            {
                "lazy": isinstance(user, SimpleLazyObject),
                "authenticated": user.is_authenticated,
                "username": user.get_username(),
            }
        )

    async def post(self, request: HttpRequest) -> HttpResponse:
        # Reading request.user synchronously in async code must be safe.
        user = request.user
        return JsonResponse({"lazy": isinstance(user, SimpleLazyObject), "id": user.pk})


class Hooks:
    """Events shared between a test and the handler it drives."""

    started: asyncio.Event
    finished_cleanup: asyncio.Event
    release: threading.Event
    thread_done: threading.Event


hooks = Hooks()


class SlowView(AsyncView):
    timeout = 0.05

    async def get(self, request: HttpRequest) -> HttpResponse:
        try:
            await asyncio.Event().wait()  # never set: only the timeout ends this
        finally:
            hooks.finished_cleanup.set()
        return HttpResponse("unreachable")  # pragma: no cover

    def post(self, request: HttpRequest) -> HttpResponse:
        hooks.release.wait(10)
        hooks.thread_done.set()
        return HttpResponse("discarded")


class FastView(AsyncView):
    timeout = 5

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("fast")


class PerRequestTimeoutView(AsyncView):
    def get_timeout(self) -> float | None:
        return 0.05 if "short" in self.request.GET else None

    async def get(self, request: HttpRequest) -> HttpResponse:
        if "short" in request.GET:
            await asyncio.Event().wait()
        return HttpResponse("no timeout")


class OwnTimeoutErrorView(AsyncView):
    timeout = 5

    async def get(self, request: HttpRequest) -> HttpResponse:
        raise TimeoutError("a socket timed out inside the handler")


class RaisingView(AsyncView):
    """Raises whatever ``?kind=`` names."""

    async def get(self, request: HttpRequest) -> HttpResponse:
        kind = request.GET["kind"]
        if kind == "problem":
            exc = ProblemError(
                409, detail="Stock ran out.", type="https://example.com/probs/stock", sku="A-1"
            )
            exc.headers["X-Problem"] = "yes"
            raise exc
        if kind == "circuit":
            raise CircuitOpenError("payments", retry_after=2.2)
        if kind == "upstream-timeout":
            raise UpstreamTimeout("users timed out", url="http://users.internal/secret")
        if kind == "upstream":
            raise UpstreamError("bad gateway", status=500, body=b"secret upstream stack trace")
        if kind == "404":
            raise Http404("secret object name")
        raise ValueError("secret internal detail")


class ExtendedErrorsView(RaisingView):
    async def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, ValueError):
            return HttpResponse("mapped by subclass", status=422)
        return await super().handle_exception(exc)  # type: ignore[return-value]


class SyncHookView(AsyncView):
    """Overrides hooks as plain functions: they must still work."""

    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        return HttpResponse(f"sync hook: {type(exc).__name__}", status=418)

    def http_method_not_allowed(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> Any:
        # super() returns a coroutine; the dispatcher awaits it.
        return super().http_method_not_allowed(request, *args, **kwargs)

    async def get(self, request: HttpRequest) -> HttpResponse:
        raise KeyError("x")


@method_decorator(login_required, name="dispatch")
class LoginRequiredView(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"hello {request.user.get_username()}")


class PlainPostView(AsyncView):
    async def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("posted")


@method_decorator(csrf_exempt, name="dispatch")
class ExemptPostView(PlainPostView):
    pass


@method_decorator(cache_control(max_age=60, public=True), name="dispatch")
@method_decorator(vary_on_headers("Accept-Language"), name="dispatch")
class HeaderDecoratedView(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("decorated")


urlpatterns = [
    path("mixed/", MixedView.as_view()),
    path("sync/", SyncOnlyView.as_view()),
    path("orm/", OrmView.as_view()),
    path("user/", UserView.as_view()),
    path("slow/", SlowView.as_view()),
    path("fast/", FastView.as_view()),
    path("per-request/", PerRequestTimeoutView.as_view()),
    path("own-timeout/", OwnTimeoutErrorView.as_view()),
    path("raise/", RaisingView.as_view()),
    path("extended/", ExtendedErrorsView.as_view()),
    path("sync-hooks/", SyncHookView.as_view()),
    path("login/", LoginRequiredView.as_view()),
    path("plain-post/", PlainPostView.as_view()),
    path("exempt-post/", ExemptPostView.as_view()),
    path("decorated/", HeaderDecoratedView.as_view()),
]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


def problem(response: HttpResponse) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


# --- always async -------------------------------------------------------------------------


@pytest.mark.parametrize("view_class", [MixedView, SyncOnlyView, FastView])
def test_as_view_is_always_a_coroutine_function(view_class: type[AsyncView]) -> None:
    """Whatever the handlers are, Django sees an async view."""
    assert iscoroutinefunction(view_class.as_view())


def test_mixed_handlers_do_not_raise_djangos_all_sync_or_all_async_error() -> None:
    """Django's View refuses mixed handlers; AsyncView accepts them."""
    assert MixedView.view_is_async is True


async def test_sync_handler_runs_in_a_thread_and_async_handler_on_the_loop(
    client: AsyncClient,
) -> None:
    """A def handler runs off the event loop; an async def handler runs on it."""
    sync_body = json.loads((await client.get("/mixed/")).content)
    async_body = json.loads((await client.post("/mixed/")).content)
    assert sync_body["loop"] is False
    assert async_body["loop"] is True
    assert sync_body["thread"] != threading.get_ident()
    assert async_body["thread"] == threading.get_ident()


@pytest.mark.django_db(transaction=True)
async def test_sync_handler_may_use_the_orm(client: AsyncClient) -> None:
    """Sync handlers can do blocking ORM calls without SynchronousOnlyOperation."""
    await User.objects.acreate(username="ann")
    response = await client.get("/orm/")
    assert response.status_code == 200
    assert response.content == b"1"


# --- request.user -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_request_user_is_resolved_before_the_handler(client: AsyncClient) -> None:
    """request.user is the real user object, safe to read from sync and async code."""
    user = await User.objects.acreate(username="bob")
    await client.aforce_login(user)
    body = json.loads((await client.get("/user/")).content)
    assert body == {"lazy": False, "authenticated": True, "username": "bob"}
    body = json.loads((await client.post("/user/")).content)
    assert body == {"lazy": False, "id": user.pk}


@pytest.mark.django_db(transaction=True)
async def test_request_user_is_anonymous_without_a_session(client: AsyncClient) -> None:
    """An anonymous request gets an AnonymousUser, not a lazy object."""
    body = json.loads((await client.get("/user/")).content)
    assert body == {"lazy": False, "authenticated": False, "username": ""}


@override_settings(MIDDLEWARE=[])
async def test_views_work_without_the_auth_middleware(client: AsyncClient) -> None:
    """Without AuthenticationMiddleware there is no user to resolve, and no error."""
    response = await client.get("/sync/")
    assert response.status_code == 200
    assert response.content == b"sync"


# --- timeouts -----------------------------------------------------------------------------------


async def test_timeout_answers_504_problem_and_cancels_the_handler(client: AsyncClient) -> None:
    """When the timeout expires the handler is cancelled (its finally runs) and 504 is sent."""
    hooks.finished_cleanup = asyncio.Event()
    response = await client.get("/slow/")
    assert response.status_code == 504
    body = problem(response)
    assert body["title"] == "Gateway Timeout"
    await asyncio.wait_for(hooks.finished_cleanup.wait(), timeout=5)


async def test_timeout_of_a_sync_handler_answers_without_waiting_for_the_thread(
    client: AsyncClient,
) -> None:
    """A sync handler cannot be interrupted: 504 goes out, the thread finishes later."""
    hooks.release = threading.Event()
    hooks.thread_done = threading.Event()
    response = await client.post("/slow/")
    assert response.status_code == 504
    assert not hooks.thread_done.is_set()  # the answer did not wait for the thread
    workers = [t for t in threading.enumerate() if t.name.startswith("async-cbv-handler")]
    assert len(workers) == 1
    hooks.release.set()
    assert await asyncio.to_thread(hooks.thread_done.wait, 10)
    # The handler's thread exits once it returns: nothing is leaked.
    await asyncio.to_thread(workers[0].join, 10)
    assert not workers[0].is_alive()
    assert not views_module._abandoned


async def test_handler_within_its_timeout_answers_normally(client: AsyncClient) -> None:
    """A timeout that does not expire changes nothing."""
    response = await client.get("/fast/")
    assert response.status_code == 200
    assert response.content == b"fast"


async def test_get_timeout_can_vary_per_request(client: AsyncClient) -> None:
    """get_timeout() is consulted per request."""
    assert (await client.get("/per-request/")).status_code == 200
    assert (await client.get("/per-request/?short=1")).status_code == 504


async def test_a_timeout_error_raised_by_the_handler_itself_is_not_a_504(
    client: AsyncClient,
) -> None:
    """Only the view's own timeout maps to 504; other TimeoutErrors are re-raised."""
    with pytest.raises(TimeoutError, match="socket timed out"):
        await client.get("/own-timeout/")


@pytest.mark.parametrize("bad", [0, -1, "5", True, float("nan"), float("inf")])
def test_invalid_timeout_is_reported_at_as_view(bad: object) -> None:
    """A bad timeout fails at as_view() with a message naming the class."""
    view_class = type("BadTimeoutView", (AsyncView,), {"timeout": bad})
    with pytest.raises(ImproperlyConfigured, match=r"BadTimeoutView\.timeout"):
        view_class.as_view()


def test_invalid_timeout_in_as_view_kwargs_is_reported() -> None:
    """as_view(timeout=...) is validated like the class attribute."""
    with pytest.raises(ImproperlyConfigured, match=r"FastView\.timeout"):
        FastView.as_view(timeout=-3)


# --- handle_exception -----------------------------------------------------------------------


async def test_problem_error_becomes_its_problem_response(client: AsyncClient) -> None:
    """ProblemError answers with its status, members, extensions and headers."""
    response = await client.get("/raise/?kind=problem")
    assert response.status_code == 409
    assert response["X-Problem"] == "yes"
    assert problem(response) == {
        "type": "https://example.com/probs/stock",
        "title": "Conflict",
        "status": 409,
        "detail": "Stock ran out.",
        "sku": "A-1",
    }


async def test_circuit_open_becomes_503_with_retry_after(client: AsyncClient) -> None:
    """CircuitOpenError answers 503 with Retry-After in whole seconds (rounded up)."""
    response = await client.get("/raise/?kind=circuit")
    assert response.status_code == 503
    assert response["Retry-After"] == "3"
    problem(response)


async def test_upstream_timeout_becomes_504(client: AsyncClient) -> None:
    """UpstreamTimeout answers 504 without the upstream URL."""
    response = await client.get("/raise/?kind=upstream-timeout")
    assert response.status_code == 504
    problem(response)
    assert b"users.internal" not in response.content


async def test_upstream_error_becomes_502_without_leaking_the_body(client: AsyncClient) -> None:
    """UpstreamError answers 502; its body never reaches the client."""
    response = await client.get("/raise/?kind=upstream")
    assert response.status_code == 502
    problem(response)
    assert b"secret" not in response.content


async def test_other_exceptions_are_re_raised(client: AsyncClient) -> None:
    """Unknown exceptions propagate, so Django's logging and handler500 run."""
    with pytest.raises(ValueError, match="secret internal detail"):
        await client.get("/raise/?kind=other")


async def test_unknown_exception_reaches_djangos_500_handling() -> None:
    """Through Django's handler an unknown exception is a plain 500 with no detail."""
    client = AsyncClient(raise_request_exception=False)
    response = await client.get("/raise/?kind=other")
    assert response.status_code == 500
    assert b"secret" not in response.content


async def test_http404_is_left_to_django_in_a_plain_async_view() -> None:
    """AsyncView keeps Django's 404 handling (no problem+json, no exception text)."""
    client = AsyncClient(raise_request_exception=False)
    response = await client.get("/raise/?kind=404")
    assert response.status_code == 404
    assert response["Content-Type"] != "application/problem+json"
    assert b"secret" not in response.content


async def test_handle_exception_can_be_extended_with_super(client: AsyncClient) -> None:
    """A subclass maps more exceptions and defers the rest to super()."""
    assert (await client.get("/extended/?kind=other")).status_code == 422
    assert (await client.get("/extended/?kind=circuit")).status_code == 503


async def test_sync_hook_overrides_are_supported(client: AsyncClient) -> None:
    """Hooks overridden with plain def work; their results are awaited when awaitable."""
    response = await client.get("/sync-hooks/")
    assert response.status_code == 418
    assert response.content == b"sync hook: KeyError"
    response = await client.delete("/sync-hooks/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, OPTIONS"


# --- HEAD, OPTIONS, 405 ----------------------------------------------------------------------


async def test_head_uses_get_and_sends_no_body(client: AsyncClient) -> None:
    """HEAD is answered by get() as in Django."""
    response = await client.head("/sync/")
    assert response.status_code == 200
    assert response.content == b""


async def test_options_lists_allowed_methods(client: AsyncClient) -> None:
    """OPTIONS answers with Allow and an empty body, as in Django."""
    response = await client.options("/mixed/")
    assert response.status_code == 200
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert response["Content-Length"] == "0"


async def test_method_not_allowed_is_problem_json_with_allow(client: AsyncClient) -> None:
    """405 carries Allow and a problem body."""
    response = await client.put("/mixed/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert problem(response)["title"] == "Method Not Allowed"


async def test_unknown_method_is_405(client: AsyncClient) -> None:
    """A method outside http_method_names is refused with 405."""
    response = await client.generic("PROPFIND", "/mixed/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


# --- Django decorators on dispatch --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_login_required_on_dispatch(client: AsyncClient) -> None:
    """method_decorator(login_required, name='dispatch') redirects anonymous users."""
    response = await client.get("/login/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    await client.aforce_login(await User.objects.acreate(username="carol"))
    response = await client.get("/login/")
    assert response.status_code == 200
    assert response.content == b"hello carol"


async def test_csrf_is_enforced_as_in_django_and_csrf_exempt_works() -> None:
    """Plain AsyncViews keep Django's CSRF checks; csrf_exempt on dispatch lifts them."""
    client = AsyncClient(enforce_csrf_checks=True)
    assert (await client.post("/plain-post/")).status_code == 403
    response = await client.post("/exempt-post/")
    assert response.status_code == 200
    assert response.content == b"posted"


async def test_cache_control_and_vary_on_headers(client: AsyncClient) -> None:
    """cache_control and vary_on_headers decorate an async dispatch."""
    response = await client.get("/decorated/")
    assert response.status_code == 200
    assert "max-age=60" in response["Cache-Control"]
    assert "public" in response["Cache-Control"]
    assert "Accept-Language" in response["Vary"]


# --- gather -----------------------------------------------------------------------------------


async def _value(value: Any, started: asyncio.Event | None = None) -> Any:
    if started is not None:
        started.set()
    await asyncio.sleep(0)
    return value


async def _fail(message: str) -> Any:
    await asyncio.sleep(0)
    raise ValueError(message)


async def _forever(cleaned: list[str], name: str, started: asyncio.Event | None = None) -> Any:
    try:
        if started is not None:
            started.set()
        await asyncio.Event().wait()
    finally:
        cleaned.append(name)


async def test_gather_returns_results_by_name() -> None:
    """gather() maps each name to its awaitable's result."""
    view = AsyncView()
    results = await view.gather(a=_value(1), b=_value("two"))
    assert results == {"a": 1, "b": "two"}


async def test_gather_isolates_failures() -> None:
    """A failing awaitable does not cancel the others; its slot holds the exception."""
    view = AsyncView()
    results = await view.gather(ok=_value(1), bad=_fail("boom"), also_ok=_value(3))
    assert results["ok"] == 1
    assert results["also_ok"] == 3
    assert isinstance(results["bad"], ValueError)
    assert str(results["bad"]) == "boom"


async def test_gather_timeout_cancels_stragglers_before_returning() -> None:
    """On timeout unfinished awaitables are cancelled and awaited; slots hold TimeoutError."""
    view = AsyncView()
    cleaned: list[str] = []
    results = await view.gather(timeout=0.05, fast=_value("done"), slow=_forever(cleaned, "slow"))
    assert results["fast"] == "done"
    assert isinstance(results["slow"], TimeoutError)
    assert cleaned == ["slow"]  # its finally ran before gather returned: no task outlives it


async def test_gather_propagates_cancellation_and_cancels_children() -> None:
    """Cancelling the caller cancels every child, waits for them, and re-raises."""
    view = AsyncView()
    cleaned: list[str] = []
    started_a, started_b = asyncio.Event(), asyncio.Event()
    outer = asyncio.ensure_future(
        view.gather(a=_forever(cleaned, "a", started_a), b=_forever(cleaned, "b", started_b))
    )
    await started_a.wait()
    await started_b.wait()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert sorted(cleaned) == ["a", "b"]


async def test_gather_accepts_tasks_and_futures() -> None:
    """Any awaitable works, not only coroutines."""
    view = AsyncView()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(7)
    task = asyncio.ensure_future(_value(8))
    assert await view.gather(f=future, t=task) == {"f": 7, "t": 8}


async def test_gather_with_nothing_returns_empty_dict() -> None:
    """No awaitables, no results."""
    assert await AsyncView().gather() == {}


async def test_gather_rejects_non_awaitables_without_leaking_coroutines() -> None:
    """A non-awaitable argument is a TypeError; the coroutines passed are closed, not leaked."""
    view = AsyncView()
    coro = _value(1)
    with pytest.raises(TypeError, match="bad"):
        await view.gather(good=coro, bad=42)  # type: ignore[arg-type]
    assert coro.cr_frame is None  # closed: no "never awaited" warning later


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1", True])
async def test_gather_rejects_invalid_timeout(bad: Any) -> None:
    """A timeout that is not a positive number is a ValueError."""
    coro = _value(1)
    with pytest.raises(ValueError, match="timeout"):
        await AsyncView().gather(timeout=bad, a=coro)
    coro.close()


async def test_gather_in_a_view_runs_concurrently(client: AsyncClient) -> None:
    """Three awaitables that each wait for the others' start can only finish concurrently."""
    barrier = asyncio.Barrier(3)

    async def step(name: str) -> str:
        await asyncio.wait_for(barrier.wait(), timeout=5)
        return name

    view = AsyncView()
    results = await view.gather(a=step("a"), b=step("b"), c=step("c"))
    assert results == {"a": "a", "b": "b", "c": "c"}


class BadGetTimeoutView(AsyncView):
    def get_timeout(self) -> float | None:
        return -5

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("never")  # pragma: no cover


async def test_invalid_value_from_get_timeout_is_reported() -> None:
    """A bad value returned by get_timeout() raises ImproperlyConfigured naming the hook."""
    request = AsyncRequestFactory().get("/")
    with pytest.raises(ImproperlyConfigured, match=r"BadGetTimeoutView\.get_timeout\(\)"):
        await BadGetTimeoutView.as_view()(request)
