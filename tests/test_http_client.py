"""AsyncHTTPClient against a real aiohttp server on loopback (tests/http_upstream.py)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import threading
import warnings
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncRequestFactory, override_settings

import django_async_cbv
from django_async_cbv import (
    AsyncCircuitBreakerMixin,
    AsyncHTTPClient,
    AsyncView,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    UpstreamError,
    UpstreamTimeout,
    get_breaker,
)
from django_async_cbv.client import sessions
from tests.http_upstream import Upstream


@pytest.fixture(autouse=True)
def fresh(upstream: Upstream) -> None:
    upstream.hits.clear()
    upstream.connections.clear()
    upstream.plans.clear()


class Sleeps:
    """An injected ``sleep`` that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def client_for(upstream: Upstream, **kwargs: Any) -> AsyncHTTPClient:
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("random", lambda: 1.0)
    return AsyncHTTPClient(upstream.url + "/api", **kwargs)


@contextlib.contextmanager
def resource_warnings() -> Iterator[list[str]]:
    """Collect ResourceWarnings (unclosed sessions, connectors, sockets) in the block."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
        # A recorded warning holds its source object; freeing that may warn in turn.
        for _ in range(5):
            gc.collect()
            found.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))
            caught.clear()


# -- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["/api", "/api/"])
@pytest.mark.parametrize("path", ["/users/42", "users/42"])
async def test_paths_are_appended_to_the_base_path(
    upstream: Upstream, base: str, path: str
) -> None:
    async with AsyncHTTPClient(upstream.url + base) as client:
        data = await client.get_json(path, params={"q": "a b"})
    assert data["path"] == "/api/users/42?q=a+b"


async def test_a_query_in_the_path_is_kept_and_non_ascii_is_encoded(upstream: Upstream) -> None:
    client = client_for(upstream)
    data = await client.get_json("/users/é?x=1")
    assert data["path"] == "/api/users/%C3%A9?x=1"


@pytest.mark.parametrize(
    "path",
    [
        "http://evil.example/x",
        "HTTPS://evil.example",
        "//evil.example/x",
        "///evil.example",
        "mailto:a@evil.example",
        "/../admin",
        "../admin",
        "/users/../../admin",
        "/users/.",
        "%2e%2e/admin",
        "%2E%2e%2Fadmin",
        "..%2fadmin",
        "%252e%252e/admin",
        "/users\\..\\admin",
        "/users/%5c..",
        "\\\\evil.example",
        "/users/42#frag",
        "/users/4 2",
        "/users/42\r\nHost: evil",
        "/users/%zz",
        "..;/admin",
        "/users/..;x/admin",
        "%2e%2e;/admin",
        "%c0%ae%c0%ae/admin",
        "/users/%ff",
        "\uff0e\uff0e/admin",
        "/users/\uff0e/x",
    ],
)
async def test_paths_that_could_leave_the_base_are_refused(upstream: Upstream, path: str) -> None:
    client = client_for(upstream)
    with pytest.raises(ValueError, match="Refusing upstream path"):
        await client.get(path)
    assert upstream.total_hits == 0


async def test_at_sign_in_a_path_stays_a_path(upstream: Upstream) -> None:
    """``@`` cannot introduce credentials or a host: the origin comes from the base URL."""
    client = client_for(upstream)
    data = await client.get_json("evil.example@x/y")
    assert data["path"] == "/api/evil.example@x/y"


@pytest.mark.parametrize(
    "base",
    ["ftp://h/", "http://user:pw@h/", "http://h/?q=1", "http://h/#f", "/relative", "http:///x"],
)
def test_bad_base_urls_are_refused(base: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        AsyncHTTPClient(base)


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 0}, {"retries": -1}, {"retries": True}, {"max_body_size": 0}, {"backoff": -1}],
)
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="AsyncHTTPClient"):
        AsyncHTTPClient("http://h/", **kwargs)


def test_a_breaker_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="circuit_breaker"):
        AsyncHTTPClient("http://h/", circuit_breaker=3)  # type: ignore[arg-type]


# -- sessions and connections ----------------------------------------------------------


async def test_twenty_sequential_calls_use_at_most_two_connections(upstream: Upstream) -> None:
    for n in range(20):
        async with client_for(upstream) as client:  # a new client object each time
            assert (await client.get_json(f"/n/{n}"))["hit"] == 1
    assert upstream.total_hits == 20
    assert 1 <= len(upstream.connections) <= 2


async def test_leaving_async_with_keeps_the_session_open(upstream: Upstream) -> None:
    async with client_for(upstream) as client:
        await client.get("/a")
    session = sessions.get(client._base.origin)
    assert session is not None
    assert not session.closed
    async with AsyncHTTPClient(upstream.url + "/other") as other:
        await other.get("/b")
    assert sessions.get(client._base.origin) is session  # one per origin, not per base path


async def test_cookies_set_upstream_are_not_sent_on_the_next_call(upstream: Upstream) -> None:
    # A host name: aiohttp's default jar would silently ignore cookies from an IP address.
    client = AsyncHTTPClient(f"http://localhost:{upstream.port}/api")
    response = await client.get("/cookie")
    assert "session=secret-of-user-a" in response.headers["Set-Cookie"]
    assert (await client.get_json("/who"))["cookie"] is None
    again = AsyncHTTPClient(f"http://localhost:{upstream.port}/api")
    assert (await again.get_json("/who"))["cookie"] is None


async def test_aclose_closes_the_loops_session(upstream: Upstream) -> None:
    client = client_for(upstream)
    await client.get("/a")
    session = sessions.get(client._base.origin)
    assert session is not None
    await django_async_cbv.aclose()
    assert session.closed
    assert sessions.get(client._base.origin) is None
    await client.get("/b")  # a new session
    assert sessions.get(client._base.origin) not in (None, session)


def test_two_loops_in_two_threads_never_share_a_session(upstream: Upstream) -> None:
    """Each loop makes and uses its own session; each is closed when its loop ends."""
    made: dict[str, aiohttp.ClientSession] = {}
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    both_called = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    async def on_a_loop(name: str) -> None:
        client = client_for(upstream)
        await client.get(f"/{name}/1")
        session = sessions.get(client._base.origin)
        assert session is not None
        made[name] = session
        await asyncio.to_thread(both_called.wait)  # both loops alive, each with a session
        await client.get(f"/{name}/2")
        assert sessions.get(client._base.origin) is session
        loops.append(weakref.ref(asyncio.get_running_loop()))

    def thread(name: str) -> None:
        try:
            asyncio.run(on_a_loop(name))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    with resource_warnings() as found:
        threads = [threading.Thread(target=thread, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert errors == []
        assert made["a"] is not made["b"]
        assert made["a"].closed
        assert made["b"].closed
        made.clear()
    assert found == []
    assert all(ref() is None for ref in loops)
    assert upstream.total_hits == 4


def test_async_to_sync_calls_get_a_closed_session_each(upstream: Upstream) -> None:
    """A new loop per call (as under WSGI): a new session, closed with the loop."""

    async def call(n: int) -> aiohttp.ClientSession:
        client = client_for(upstream)
        assert (await client.get_json(f"/sync/{n}"))["hit"] == 1
        session = sessions.get(client._base.origin)
        assert session is not None
        return session

    with resource_warnings() as found:
        first = async_to_sync(call)(1)
        second = async_to_sync(call)(2)
        assert first is not second
        assert first.closed
        assert second.closed
        del first, second
    assert found == []


def test_the_leak_check_is_not_vacuous(upstream: Upstream) -> None:
    """A session left open when its loop ends does warn."""

    async def leak() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession()
        async with session.get(upstream.url + "/api/leak") as response:
            await response.read()
        return session

    with resource_warnings() as found:
        leaked = asyncio.run(leak())
        del leaked
    assert any("nclosed" in message for message in found), found


# -- responses and errors --------------------------------------------------------------


async def test_get_returns_a_fully_read_response(upstream: Upstream) -> None:
    response = await client_for(upstream).get("/users/1", headers={"X-Trace": "t1"})
    assert response.status == 200
    assert response.ok
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["headers"]["x-trace"] == "t1"
    assert response.text == response.body.decode()


async def test_text_uses_the_declared_charset(upstream: Upstream) -> None:
    response = await client_for(upstream).get("/text")
    assert response.text == "café"


async def test_post_json_sends_a_json_body(upstream: Upstream) -> None:
    client = client_for(upstream, headers={"Authorization": "Bearer k"})
    data = await client.post_json("/users", json={"name": "Ada"})
    assert data["method"] == "POST"
    assert data["body"] == '{"name": "Ada"}'
    assert data["headers"]["authorization"] == "Bearer k"


@pytest.mark.parametrize("method", ["put_json", "patch_json", "delete_json"])
async def test_the_other_json_methods(upstream: Upstream, method: str) -> None:
    data = await getattr(client_for(upstream), method)("/users/1")
    assert data["method"] == method.removesuffix("_json").upper()


async def test_non_2xx_raises_upstream_error_with_status_and_body(upstream: Upstream) -> None:
    upstream.plan("/api/missing", [404])
    with pytest.raises(UpstreamError) as info:
        await client_for(upstream).get_json("/missing")
    assert info.value.status == 404
    assert b'"hit": 1' in info.value.body
    assert upstream.hits["/api/missing"] == 1  # a 404 is not retried


async def test_redirects_are_not_followed(upstream: Upstream) -> None:
    upstream.plan("/api/moved", [(302, {"Location": "http://evil.example/"})])
    with pytest.raises(UpstreamError) as info:
        await client_for(upstream).get("/moved")
    assert info.value.status == 302


async def test_invalid_json_is_an_upstream_error(upstream: Upstream) -> None:
    with pytest.raises(UpstreamError, match="not JSON") as info:
        await client_for(upstream).get_json("/text")
    assert info.value.status == 200


async def test_204_gives_none(upstream: Upstream) -> None:
    upstream.plan("/api/gone", [204])
    assert await client_for(upstream).delete_json("/gone") is None


@pytest.mark.parametrize("length", [False, True])
async def test_bodies_over_the_cap_are_refused(upstream: Upstream, length: bool) -> None:
    client = client_for(upstream, max_body_size=100_000)
    query = {"length": "1"} if length else None
    assert len(await client.get_json("/big/100000", params=query)) == 99_998
    with pytest.raises(UpstreamError, match="over 100000 bytes") as info:
        await client.get_json("/big/100001", params=query)
    assert info.value.status == 200
    assert info.value.body == b""
    assert upstream.hits["/api/big/100001"] == 1  # not retried


async def test_a_head_answer_is_not_judged_by_the_size_it_announces(upstream: Upstream) -> None:
    # HEAD's Content-Length is the size a GET would get (RFC 9110, 9.3.2); no body follows.
    client = client_for(upstream, max_body_size=100_000)
    response = await client.request("HEAD", "/big/100001", params={"length": "1"})
    assert response.status == 200
    assert response.headers["Content-Length"] == "100001"
    assert response.body == b""


async def test_the_default_cap_is_ten_mebibytes(upstream: Upstream) -> None:
    with pytest.raises(UpstreamError, match="over 10485760 bytes"):
        await client_for(upstream).get("/big/10485761")


async def test_a_timeout_is_upstream_timeout_and_timeout_error(upstream: Upstream) -> None:
    client = client_for(upstream, timeout=0.05, retries=1)
    with pytest.raises(UpstreamTimeout) as info:
        await client.get("/hang")
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, UpstreamError)
    assert upstream.hits["/api/hang"] == 2  # retried once


async def test_connection_refused_is_mapped_and_retried() -> None:
    with socket_closed_port() as port:
        sleeps = Sleeps()
        client = AsyncHTTPClient(f"http://127.0.0.1:{port}", retries=2, sleep=sleeps)
        with pytest.raises(UpstreamError) as info:
            await client.get("/x")
    assert info.value.status is None
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    assert len(sleeps.delays) == 2


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # bound, never listening: connections are refused


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        (b"", aiohttp.ServerDisconnectedError),
        (b"NOT HTTP AT ALL\r\n\r\n", aiohttp.ClientResponseError),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
            aiohttp.ClientPayloadError,
        ),
    ],
)
async def test_broken_responses_are_upstream_errors(
    upstream: Upstream, reply: bytes, cause: type[BaseException]
) -> None:
    upstream.raw_reply = reply
    client = AsyncHTTPClient(f"http://127.0.0.1:{upstream.raw_port}", retries=0)
    with pytest.raises(UpstreamError) as info:
        await client.get("/x")
    assert type(info.value) is UpstreamError
    assert info.value.status is None
    assert isinstance(info.value.__cause__, cause)


def _aiohttp_errors() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    pending: list[type[BaseException]] = [aiohttp.ClientError]
    while pending:
        cls = pending.pop()
        if cls not in found and cls.__module__.startswith("aiohttp"):
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


def _instance(cls: type[BaseException]) -> BaseException:
    from aiohttp.client_reqrep import ConnectionKey, RequestInfo
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    url = URL("http://h/")
    info = RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    key = ConnectionKey("h", 80, False, True, None, None, None)
    attempts: list[tuple[Any, ...]] = [
        (),
        ("boom",),
        (info, ()),
        (key, OSError(111, "refused")),
        (key, ValueError("cert")),
        (url,),
        (url, "boom"),
        (b"want", b"got", "h", 443),
        ("/run/upstream.sock", key, OSError(2, "missing")),
    ]
    for args in attempts:
        try:
            exc = cls(*args)
            str(exc)
        except Exception:
            continue
        return exc
    raise AssertionError(f"cannot make a {cls.__name__}")


@pytest.mark.parametrize("error", _aiohttp_errors(), ids=lambda cls: cls.__name__)
async def test_every_aiohttp_error_is_mapped(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    raised = _instance(error)

    def failing_request(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(aiohttp.ClientSession, "request", failing_request)
    with pytest.raises(UpstreamError) as info:
        await client_for(upstream, retries=0).get("/x")
    assert info.value.__cause__ is raised
    assert isinstance(info.value, UpstreamTimeout) == isinstance(raised, TimeoutError)
    assert info.value.status is None


# -- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_get_is_retried_on_gateway_statuses(upstream: Upstream, status: int) -> None:
    upstream.plan("/api/flaky", [status, status])
    sleeps = Sleeps()
    data = await client_for(upstream, retries=2, sleep=sleeps).get_json("/flaky")
    assert data["hit"] == 3
    assert sleeps.delays == [0.1, 0.2]  # backoff * 2**n, full jitter at its top (random 1.0)


async def test_jitter_scales_the_backoff(upstream: Upstream) -> None:
    upstream.plan("/api/flaky", [503, 503])
    sleeps = Sleeps()
    client = client_for(upstream, retries=2, sleep=sleeps, random=lambda: 0.25, backoff=1)
    await client.get("/flaky")
    assert sleeps.delays == [0.25, 0.5]


async def test_retries_give_up_with_the_last_error(upstream: Upstream) -> None:
    upstream.plan("/api/down", [503, 503, 503, 503])
    with pytest.raises(UpstreamError) as info:
        await client_for(upstream, retries=2).get("/down")
    assert info.value.status == 503
    assert upstream.hits["/api/down"] == 3


async def test_500_is_never_retried(upstream: Upstream) -> None:
    upstream.plan("/api/bug", [500, 200])
    with pytest.raises(UpstreamError):
        await client_for(upstream, retries=3).get("/bug")
    assert upstream.hits["/api/bug"] == 1


@pytest.mark.parametrize("method", ["post", "patch"])
async def test_non_idempotent_methods_are_never_retried(upstream: Upstream, method: str) -> None:
    upstream.plan("/api/orders", [503, 200])
    with pytest.raises(UpstreamError):
        await getattr(client_for(upstream, retries=3), method)("/orders", json={})
    assert upstream.hits["/api/orders"] == 1


@pytest.mark.parametrize("method", ["put", "delete"])
async def test_put_and_delete_are_retried(upstream: Upstream, method: str) -> None:
    upstream.plan("/api/orders/1", [503])
    response = await getattr(client_for(upstream, retries=1), method)("/orders/1")
    assert response.json()["hit"] == 2


async def test_retry_after_seconds_is_honoured(upstream: Upstream) -> None:
    upstream.plan("/api/busy", [(503, {"Retry-After": "3"})])
    sleeps = Sleeps()
    await client_for(upstream, sleep=sleeps).get("/busy")
    assert sleeps.delays == [3.0]


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1e3", "-5", "9" * 5000])
async def test_a_retry_after_that_is_not_ascii_digits_is_no_crash(
    upstream: Upstream, value: str
) -> None:
    """'²'.isdigit() is true and float('²') raises: such values are ignored (or, huge,
    end the retries); the call raises UpstreamError, never ValueError."""
    sleeps = Sleeps()
    client = client_for(upstream, retries=1, sleep=sleeps)
    upstream.plan("/api/ra", [(503, {"Retry-After": value}), (503, {"Retry-After": value})])
    with pytest.raises(UpstreamError) as info:
        await client.get("/ra")
    assert info.value.status == 503
    assert all(delay <= 30 for delay in sleeps.delays)


async def test_retry_after_http_date_is_honoured(upstream: Upstream) -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now.replace(second=7), usegmt=True)
    upstream.plan("/api/busy", [(503, {"Retry-After": later})])
    sleeps = Sleeps()
    client = client_for(upstream, sleep=sleeps, clock=now.timestamp)
    await client.get("/busy")
    assert sleeps.delays == [7.0]


async def test_a_retry_after_over_the_cap_ends_the_retries(upstream: Upstream) -> None:
    upstream.plan("/api/busy", [(503, {"Retry-After": "120"})])
    sleeps = Sleeps()
    with pytest.raises(UpstreamError) as info:
        await client_for(upstream, sleep=sleeps, max_retry_after=30).get("/busy")
    assert info.value.headers["Retry-After"] == "120"
    assert sleeps.delays == []
    assert upstream.hits["/api/busy"] == 1


# -- circuit breakers ------------------------------------------------------------------


async def test_no_upstream_hit_while_the_breaker_is_open(upstream: Upstream) -> None:
    breaker = CircuitBreaker("http-open", failure_threshold=1, recovery_timeout=60)
    upstream.plan("/api/x", [500])
    client = client_for(upstream, circuit_breaker=breaker)
    with pytest.raises(UpstreamError):
        await client.get("/x")
    assert breaker.state is CircuitState.OPEN
    before = upstream.total_hits
    for _ in range(5):
        with pytest.raises(CircuitOpenError):
            await client.get("/x")
    assert upstream.total_hits == before


async def test_one_logical_call_counts_once(upstream: Upstream) -> None:
    breaker = CircuitBreaker("http-once", failure_threshold=2, recovery_timeout=60)
    client = client_for(upstream, retries=2, circuit_breaker=breaker)
    upstream.plan("/api/x", [503, 503, 503])
    with pytest.raises(UpstreamError):
        await client.get("/x")
    assert upstream.hits["/api/x"] == 3
    assert (breaker.stats.failures, breaker.stats.successes) == (1, 0)
    assert breaker.state is CircuitState.CLOSED  # three attempts, one failure
    upstream.plan("/api/x", [503])
    await client.get("/x")
    assert (breaker.stats.failures, breaker.stats.successes) == (1, 1)


async def test_a_4xx_does_not_count_as_a_failure(upstream: Upstream) -> None:
    breaker = CircuitBreaker("http-4xx", failure_threshold=1)
    upstream.plan("/api/x", [404, 404])
    client = client_for(upstream, circuit_breaker=breaker)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await client.get("/x")
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats.failures == 0


async def test_retries_stop_once_the_circuit_opens(upstream: Upstream) -> None:
    breaker = CircuitBreaker("http-stop", failure_threshold=1, recovery_timeout=60)
    opened_meanwhile = Sleeps()

    async def sleep_while_another_call_fails(delay: float) -> None:
        await opened_meanwhile(delay)
        # Another request (a task of its own, not part of this call) fails through
        # the same breaker and opens it.
        upstream.plan("/api/other", [500])
        other = client_for(upstream, circuit_breaker=breaker).get("/other")
        with pytest.raises(UpstreamError):
            await asyncio.create_task(other, context=contextvars.Context())

    upstream.plan("/api/x", [503, 503, 503])
    client = client_for(
        upstream, retries=2, circuit_breaker=breaker, sleep=sleep_while_another_call_fails
    )
    with pytest.raises(UpstreamError):
        await client.get("/x")
    assert upstream.hits["/api/x"] == 2  # the retry in flight ran; no further one
    assert breaker.state is CircuitState.OPEN


async def test_a_breaker_by_name_comes_from_the_settings(upstream: Upstream) -> None:
    config = {"CIRCUIT_BREAKERS": {"users-http": {"failure_threshold": 1}}}
    with override_settings(ASYNC_CBV=config):
        client = client_for(upstream, retries=0, circuit_breaker="users-http")
        upstream.plan("/api/x", [502])
        with pytest.raises(UpstreamError):
            await client.get("/x")
        assert get_breaker("users-http").state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await client.get("/x")
    assert upstream.hits["/api/x"] == 1


async def test_a_breaker_timeout_is_an_upstream_timeout(upstream: Upstream) -> None:
    breaker = CircuitBreaker("http-slow", timeout=0.05)
    client = client_for(upstream, timeout=None, retries=0, circuit_breaker=breaker)
    with pytest.raises(UpstreamTimeout):
        await client.get("/hang")
    assert breaker.stats.timeouts == 1


class UserView(AsyncCircuitBreakerMixin, AsyncView):
    """A view whose handler calls the upstream through a client (as in the docs)."""

    client: AsyncHTTPClient | None = None

    async def get(self, request: HttpRequest, uid: int) -> HttpResponse:
        assert self.client is not None
        return JsonResponse(await self.client.get_json(f"/users/{uid}"))


async def test_mixin_and_client_on_one_breaker_count_a_failure_once(
    upstream: Upstream,
) -> None:
    breaker = CircuitBreaker("http-mixin-once", failure_threshold=2, recovery_timeout=60)
    client = client_for(upstream, retries=0, circuit_breaker=breaker)
    view = UserView.as_view(circuit_breaker=breaker, client=client)
    upstream.plan("/api/users/1", [500, 500])
    assert (await view(AsyncRequestFactory().get("/"), uid=1)).status_code == 502
    assert breaker.state is CircuitState.CLOSED
    assert (breaker.stats.failures, breaker.stats.consecutive_failures) == (1, 1)
    assert (await view(AsyncRequestFactory().get("/"), uid=1)).status_code == 502
    assert breaker.state is CircuitState.OPEN


async def test_mixin_and_client_on_one_breaker_recover_from_half_open(
    upstream: Upstream,
) -> None:
    """The view's call holds the only probe slot; the client's call inside it is part
    of that probe, not a second one refused: the circuit closes once the upstream is
    back (it stayed half-open for ever)."""
    now = [0.0]
    breaker = CircuitBreaker(
        "http-mixin-probe", failure_threshold=1, recovery_timeout=30, clock=lambda: now[0]
    )
    client = client_for(upstream, retries=0, circuit_breaker=breaker)
    view = UserView.as_view(circuit_breaker=breaker, client=client)
    upstream.plan("/api/users/1", [500])
    assert (await view(AsyncRequestFactory().get("/"), uid=1)).status_code == 502
    assert breaker.state is CircuitState.OPEN
    now[0] += 30
    assert (await view(AsyncRequestFactory().get("/"), uid=1)).status_code == 200
    assert breaker.state is CircuitState.CLOSED
    assert upstream.hits["/api/users/1"] == 2


async def test_mixin_never_opens_on_the_clients_404(upstream: Upstream) -> None:
    """Lookups of missing ids (404 from get_json, the client without a breaker) never
    open the view's circuit; 5xx do."""
    breaker = CircuitBreaker("http-mixin-404", failure_threshold=3, recovery_timeout=60)
    view = UserView.as_view(circuit_breaker=breaker, client=client_for(upstream, retries=0))
    for uid in range(5):
        upstream.plan(f"/api/users/{uid}", [404])
        assert (await view(AsyncRequestFactory().get("/"), uid=uid)).status_code == 502
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats.failures == 0
    for _ in range(3):
        upstream.plan("/api/users/9", [500])
        await view(AsyncRequestFactory().get("/"), uid=9)
    assert breaker.state is CircuitState.OPEN


@pytest.mark.usefixtures("redis_caches")
async def test_aclose_closes_the_loops_redis_clients_too(upstream: Upstream) -> None:
    """One call closes everything the loop holds: HTTP sessions and Redis clients."""
    from django_async_cbv import _redis

    redis_client = _redis.async_redis_for_alias("default")
    assert redis_client is not None
    assert await redis_client.ping() is True
    client = client_for(upstream)
    await client.get("/a")
    session = sessions.get(client._base.origin)
    assert session is not None
    loop = asyncio.get_running_loop()
    assert _redis.backends.keys(loop) == ["default"]

    await django_async_cbv.aclose()

    assert session.closed
    assert _redis.backends.keys(loop) == []
    assert sessions.keys(loop) == []
    pooled = redis_client.connection_pool._available_connections
    assert pooled  # the ping's connection, back in the pool ...
    assert not any(connection.is_connected for connection in pooled)  # ... and closed
    assert _redis.async_redis_for_alias("default") is not redis_client
