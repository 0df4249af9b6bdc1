"""AsyncCacheMixin in one process: keys, storage rules, headers, coalescing, failure."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import pickle
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.test import AsyncClient, AsyncRequestFactory, override_settings
from django.urls import path
from django.utils import timezone, translation

import django_async_cbv.cache.flow as cache_module
from django_async_cbv import AsyncAPIView, AsyncCacheMixin, AsyncRateLimitMixin, AsyncView
from django_async_cbv.cache import Entry, digest
from tests.models import Category

pytestmark = [pytest.mark.urls(__name__), pytest.mark.redis]

User = get_user_model()
runs: dict[str, int] = {}
entered: dict[str, asyncio.Event] = {}
_made = itertools.count()
_routes: list[Any] = []


def route(view_class: type, **initkwargs: Any) -> str:
    """Route ``view_class`` at a fresh URL of this module's URLconf; return the URL."""
    url = f"r{next(_made)}/"
    _routes.append(path(url, view_class.as_view(**initkwargs)))
    urlpatterns[:] = list(_routes)
    from django.urls import clear_url_caches

    clear_url_caches()
    return "/" + url


def counted(**attrs: Any) -> tuple[type, str]:
    """A cached view answering ``{"run": n}``; its runs counted in ``runs[name]``."""
    name = f"Cached{next(_made)}"
    handler_response = attrs.pop("respond", None)

    async def get(self: Any, request: HttpRequest) -> HttpResponse:
        runs[name] = runs.get(name, 0) + 1
        if handler_response is not None:
            return await handler_response(self, request, runs[name])
        return JsonResponse({"run": runs[name]})

    view_class = type(
        name, (AsyncCacheMixin, AsyncView), {"__module__": __name__, "get": get, **attrs}
    )
    runs[name] = 0
    entered[name] = asyncio.Event()
    return view_class, name


async def get(url: str, client: AsyncClient | None = None, **kwargs: Any) -> Any:
    return await (client or AsyncClient()).get(url, **kwargs)


# ------------------------------------------------------------------ hit and miss


async def test_miss_then_hit_with_headers(redis_client: redis.Redis) -> None:
    view_class, name = counted()
    url = route(view_class)
    miss = await get(url)
    hit = await get(url)
    assert runs[name] == 1
    assert (miss["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert hit.content == miss.content == b'{"run": 1}'
    assert miss["ETag"] == hit["ETag"]
    assert miss["ETag"].startswith('"')  # strong: no W/
    assert miss["Cache-Control"] == "max-age=300"
    # the lifetime with Age: downstream caches subtract Age themselves (RFC 9111)
    assert hit["Cache-Control"] == "max-age=300"
    assert hit["Age"] in ("0", "1")
    assert "Age" not in miss
    assert hit["Content-Type"] == "application/json"


async def test_head_is_answered_from_a_stored_get_and_never_stored() -> None:
    view_class, name = counted()
    url = route(view_class)
    head_miss = await AsyncClient().head(url)
    assert head_miss["X-Cache"] == "MISS"
    assert (await get(url))["X-Cache"] == "MISS"  # the HEAD stored nothing
    head = await AsyncClient().head(url)
    assert head["X-Cache"] == "HIT"
    assert head.content == b""
    assert head["Content-Length"] == str(len(b'{"run": 2}'))
    assert runs[name] == 2


@pytest.mark.parametrize("form", ["same", "weak", "star", "list"])
async def test_if_none_match_on_a_stored_entry_is_304(form: str) -> None:
    view_class, _ = counted()
    url = route(view_class)
    etag = (await get(url))["ETag"]
    header = {"same": etag, "weak": f"W/{etag}", "star": "*", "list": f'"nope", {etag}'}[form]
    for method in ("get", "head"):
        response = await getattr(AsyncClient(), method)(url, headers={"If-None-Match": header})
        assert response.status_code == 304
        assert response.content == b""
        assert response["ETag"] == etag
        assert response["X-Cache"] == "HIT"
    other = await get(url, headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


async def test_a_view_etag_is_kept() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse("x", headers={"ETag": '"v1"'})

    view_class, _ = counted(respond=respond)
    url = route(view_class)
    assert (await get(url))["ETag"] == '"v1"'
    assert (await get(url, headers={"If-None-Match": '"v1"'})).status_code == 304


# ------------------------------------------------------------------ keys


async def test_query_order_and_repeats() -> None:
    view_class, name = counted()
    url = route(view_class)
    await get(url + "?a=1&b=2")
    assert (await get(url + "?b=2&a=1"))["X-Cache"] == "HIT"
    assert (await get(url + "?a=1&b=2&a=3"))["X-Cache"] == "MISS"
    assert (await get(url + "?b=2&a=3&a=1"))["X-Cache"] == "MISS"  # repeated values keep order
    assert (await get(url + "?a=1&a=3&b=2"))["X-Cache"] == "HIT"
    assert runs[name] == 3


async def test_cache_vary_on_absent_differs_from_empty() -> None:
    view_class, name = counted(cache_vary_on=["X-Tenant"])
    url = route(view_class)
    first = await get(url)
    assert "x-tenant" in first["Vary"].lower()
    assert (await get(url, headers={"X-Tenant": ""}))["X-Cache"] == "MISS"
    assert (await get(url, headers={"X-Tenant": "a"}))["X-Cache"] == "MISS"
    assert (await get(url, headers={"X-Tenant": "a"}))["X-Cache"] == "HIT"
    assert (await get(url))["X-Cache"] == "HIT"
    assert runs[name] == 3


async def test_the_response_vary_is_learned_per_url() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        lang = request.headers.get("Accept-Language", "-")
        return HttpResponse(f"{lang}:{n}", headers={"Vary": " Accept-Language "})

    view_class, name = counted(respond=respond)
    url = route(view_class)
    assert (await get(url, headers={"Accept-Language": "fr"})).content == b"fr:1"
    de = await get(url, headers={"Accept-Language": "de"})
    assert (de["X-Cache"], de.content) == ("MISS", b"de:2")
    assert (await get(url, headers={"Accept-Language": "fr"})).content == b"fr:1"
    assert (await get(url)).content == b"-:3"  # absent is its own variant
    assert (await get(url, headers={"Accept-Language": ""})).content == b":4"
    assert (await get(url, headers={"Accept-Language": "de"})).content == b"de:2"
    assert runs[name] == 4


async def test_language_and_time_zone_are_in_the_key() -> None:
    view_class, _ = counted()
    view = view_class()
    view.setup(AsyncRequestFactory().get("/x/"))
    keys = set()
    for language in ("en", "fr"):
        for zone in ("UTC", "Europe/Paris"):
            with translation.override(language), timezone.override(zone):
                keys.add(await view.get_cache_key())
    assert len(keys) == 4


async def test_keys_go_through_make_key_and_never_hold_raw_values(
    redis_client: redis.Redis, settings: Any
) -> None:
    caches = dict(settings.CACHES)
    caches["default"] = {**caches["default"], "KEY_PREFIX": "siteA"}
    settings.CACHES = caches
    view_class, _ = counted(cache_vary_on=["X-Secret"])
    url = route(view_class)
    await get(url + "?q=private-query", headers={"X-Secret": "hunter2"})
    keys = [k.decode() for k in redis_client.keys("*")]
    assert keys
    assert all(k.startswith("siteA:1:async_cbv:c:") for k in keys)
    assert not any("hunter2" in k or "private-query" in k or "Cached" in k for k in keys)


async def test_entries_are_not_pickles_and_planted_pickles_are_ignored(
    redis_client: redis.Redis,
) -> None:
    view_class, name = counted()
    url = route(view_class)
    await get(url)
    [entry_key] = redis_client.keys("*:e:*")
    raw = redis_client.get(entry_key)
    assert raw is not None
    assert raw.startswith(b"django-async-cbv:cache:1\n")
    head = json.loads(raw.split(b"\n")[1])
    assert head["status"] == 200

    class Boom:
        def __reduce__(self) -> Any:
            return (exec, ("raise SystemExit('unpickled!')",))

    redis_client.set(entry_key, pickle.dumps(Boom()))
    assert (await get(url))["X-Cache"] == "MISS"  # not an entry: a miss, nothing executed
    assert runs[name] == 2


# ------------------------------------------------------------------ what is stored


def _responder(**headers: str) -> Any:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse(f"run {n}", headers=headers)

    return respond


@pytest.mark.parametrize(
    "headers",
    [
        {"Vary": "*"},
        {"Vary": "Accept,  * "},
        {"Cache-Control": "private"},
        {"Cache-Control": "PRIVATE"},
        {"Cache-Control": 'private="Set-Cookie", max-age=60'},
        {"Cache-Control": "No-Store"},
        {"Cache-Control": "no-cache"},
        {"Cache-Control": "max-age=0"},
        {"Cache-Control": "s-maxage=0, max-age=60"},
        {"Cache-Control": "max-age=abc"},
    ],
)
async def test_responses_that_must_not_be_stored(headers: dict[str, str]) -> None:
    view_class, name = counted(respond=_responder(**headers))
    url = route(view_class)
    assert [(await get(url))["X-Cache"] for _ in range(2)] == ["MISS", "MISS"]
    assert runs[name] == 2


async def test_set_cookie_responses_are_not_stored() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        response = HttpResponse("secret")
        response.set_cookie("token", f"t{n}")
        return response

    view_class, name = counted(respond=respond)
    url = route(view_class)
    responses = [await get(url) for _ in range(2)]
    assert [r.cookies["token"].value for r in responses] == ["t1", "t2"]
    assert runs[name] == 2


async def test_status_other_than_200_needs_the_hook() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse("gone", status=410)

    plain, plain_name = counted(respond=respond)
    widened, widened_name = counted(
        respond=respond,
        should_cache_response=lambda self, response: response.status_code in (200, 410),
    )
    for view_class in (plain, widened):
        url = route(view_class)
        for _ in range(2):
            await get(url)
    assert (runs[plain_name], runs[widened_name]) == (2, 1)


async def test_streaming_is_not_stored() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> StreamingHttpResponse:
        return StreamingHttpResponse(iter([b"a", b"b"]))

    view_class, name = counted(respond=respond)
    url = route(view_class)
    for _ in range(2):
        await get(url)
    assert runs[name] == 2


async def test_max_age_caps_the_lifetime() -> None:
    view_class, _ = counted(respond=_responder(**{"Cache-Control": "public, max-age=7"}))
    url = route(view_class)
    await get(url)
    hit = await get(url)
    assert hit["X-Cache"] == "HIT"
    assert hit["Cache-Control"] == "public, max-age=7"  # the view's own header is kept


async def test_per_request_headers_are_never_replayed() -> None:
    view_class, _ = counted(
        respond=_responder(**{"Age": "999", "X-Cache": "FAKE", "RateLimit": '"x";r=1;t=1'})
    )
    url = route(view_class)
    await get(url)
    hit = await get(url)
    assert hit["X-Cache"] == "HIT"
    # Age is the cache's own count: the age the answer came with, plus its time stored.
    assert hit["Age"] in ("999", "1000")
    assert "RateLimit" not in hit


# ------------------------------------------------------------------ session, CSRF, CSP


async def test_anonymous_pages_are_cached_with_the_stock_middleware() -> None:
    view_class, name = counted()
    url = route(view_class)
    client = AsyncClient()
    assert [(await get(url, client))["X-Cache"] for _ in range(3)] == ["MISS", "HIT", "HIT"]
    assert runs[name] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("touch", ["read", "write"])
async def test_a_view_that_touches_the_session_is_never_stored(touch: str) -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        if touch == "read":
            seen = await request.session.aget("seen", 0)
        else:
            await request.session.aset("seen", n)
            seen = n
        return HttpResponse(f"seen {seen}")

    view_class, name = counted(respond=respond)
    url = route(view_class)
    for _ in range(2):
        assert (await get(url))["X-Cache"] == "MISS"
    assert runs[name] == 2


async def test_a_view_that_needs_a_csrf_cookie_is_never_stored() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse(f"token {get_token(request)}")

    view_class, name = counted(respond=respond)
    url = route(view_class)
    for _ in range(2):
        await get(url)
    assert runs[name] == 2


async def test_a_view_that_used_a_csp_nonce_is_never_stored(settings: Any) -> None:
    csp = pytest.importorskip("django.middleware.csp", reason="CSP middleware is Django 6.0+")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.middleware.csp.ContentSecurityPolicyMiddleware",
    ]
    assert csp

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        if request.GET.get("nonce"):
            return HttpResponse(f"<script nonce='{request._csp_nonce}'></script>")  # type: ignore[attr-defined]
        return HttpResponse("no script")

    view_class, name = counted(respond=respond)
    url = route(view_class)
    for _ in range(2):
        await get(url + "?nonce=1")
    assert runs[name] == 2
    for _ in range(2):
        await get(url)
    assert runs[name] == 3  # without a nonce: stored


# ------------------------------------------------------------------ users


@pytest.mark.django_db(transaction=True)
async def test_signed_in_users_and_authorization_bypass() -> None:
    view_class, name = counted()
    url = route(view_class)
    await get(url)  # anonymous, stored
    ada = AsyncClient()
    await ada.aforce_login(await User.objects.acreate(username="cache-ada"))
    mine = await get(url, ada)
    assert mine["X-Cache"] == "BYPASS"
    assert mine.content == b'{"run": 2}'
    token = await get(url, headers={"Authorization": "Bearer x"})
    assert token["X-Cache"] == "BYPASS"
    assert runs[name] == 3


@pytest.mark.django_db(transaction=True)
async def test_per_user_entries_never_leak() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        who = request.user.username if request.user.is_authenticated else "anonymous"
        return HttpResponse(f"{who}:{n}")

    view_class, _ = counted(respond=respond, cache_per_user=True)
    url = route(view_class)
    ada, bob = AsyncClient(), AsyncClient()
    await ada.aforce_login(await User.objects.acreate(username="leak-ada"))
    await bob.aforce_login(await User.objects.acreate(username="leak-bob"))
    assert (await get(url, ada)).content == b"leak-ada:1"
    bob_page = await get(url, bob)
    assert bob_page.content == b"leak-bob:2"
    assert "private" in bob_page["Cache-Control"]
    anonymous = await get(url)
    assert anonymous.content == b"anonymous:3"
    assert (await get(url, ada)).content == b"leak-ada:1"
    assert (await get(url, bob)).content == b"leak-bob:2"
    assert (await get(url)).content == b"anonymous:3"
    assert (await get(url, headers={"Authorization": "Bearer k1"})).content == b"anonymous:4"
    assert (await get(url, headers={"Authorization": "Bearer k2"})).content == b"anonymous:5"
    assert (await get(url, headers={"Authorization": "Bearer k1"})).content == b"anonymous:4"


@pytest.mark.django_db(transaction=True)
async def test_per_user_views_mark_every_answer_private() -> None:
    """Writes too: their answers hold the user's data as much as a page does."""

    async def post(self: Any, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"saved": request.user.username}, status=201)

    view_class, _ = counted(cache_per_user=True, post=post)
    url = route(view_class)
    client = AsyncClient()
    await client.aforce_login(await User.objects.acreate(username="private-ada"))
    written = await client.post(url)
    assert written.status_code == 201
    assert written["X-Cache"] == "BYPASS"
    assert "private" in written["Cache-Control"]
    shared_view, _ = counted(post=post)  # without cache_per_user: left alone
    assert not (await client.post(route(shared_view))).has_header("Cache-Control")


@pytest.mark.django_db(transaction=True)
async def test_a_failing_per_user_hook_fails_a_write_before_it_is_made() -> None:
    """As for a read, get_cache_per_user() is asked before the handler: a write that was
    made is not answered 500 (which a client would retry, writing twice)."""

    async def post(self: Any, request: HttpRequest) -> HttpResponse:
        await Category.objects.acreate(name="written")
        return JsonResponse({"saved": True}, status=201)

    def get_cache_per_user(self: Any) -> bool:
        raise RuntimeError("the hook's bug")

    view_class, _ = counted(post=post, get_cache_per_user=get_cache_per_user)
    client = AsyncClient(raise_request_exception=False)
    assert (await client.post(route(view_class))).status_code == 500
    assert not await Category.objects.filter(name="written").aexists()


# ------------------------------------------------------------------ coalescing


def gated(**attrs: Any) -> tuple[type, str, asyncio.Event]:
    gate = asyncio.Event()

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        entered[type(self).__name__].set()
        await gate.wait()
        variant = request.headers.get("X-Variant", "")
        return HttpResponse(f"{variant}:{n}", headers={"Vary": "X-Variant"})

    view_class, name = counted(respond=respond, **attrs)
    return view_class, name, gate


async def started(name: str) -> None:
    """Return once the handler of ``name`` has been entered (it then awaits its gate)."""
    await entered[name].wait()
    for _ in range(20):  # let the other requests reach their await points
        await asyncio.sleep(0)


async def test_a_cold_stampede_runs_the_handler_once() -> None:
    view_class, name, gate = gated()
    url = route(view_class)
    client = AsyncClient()
    tasks = [asyncio.ensure_future(get(url, client)) for _ in range(100)]
    await started(name)
    gate.set()
    responses = await asyncio.gather(*tasks)
    assert runs[name] == 1
    assert {r.content for r in responses} == {b":1"}
    assert sorted(r["X-Cache"] for r in responses).count("MISS") == 1
    assert len({id(r) for r in responses}) == 100


async def test_followers_with_other_variants_run_their_own() -> None:
    view_class, name, gate = gated()
    url = route(view_class)
    leader = asyncio.ensure_future(get(url, headers={"X-Variant": "a"}))
    await started(name)  # an "a" request leads
    tasks = [leader] + [
        asyncio.ensure_future(get(url, headers={"X-Variant": variant}))
        for variant in ["a"] * 4 + ["b"] * 3
    ]
    for _ in range(20):
        await asyncio.sleep(0)
    gate.set()
    responses = await asyncio.gather(*tasks)
    contents = sorted(r.content for r in responses)
    assert 2 <= runs[name] <= 4  # one "a" run; each "b" runs, or b followers share one b run
    assert all(c.startswith(b"a:") for c in contents[:5])
    assert all(c.startswith(b"b:") for c in contents[5:])


async def test_followers_run_themselves_when_the_leader_fails() -> None:
    gate = asyncio.Event()

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        entered[type(self).__name__].set()
        await gate.wait()
        if n == 1:
            return HttpResponse("try later", status=503)
        return HttpResponse(f"ok {n}")

    view_class, name = counted(respond=respond)
    url = route(view_class)
    tasks = [asyncio.ensure_future(get(url)) for _ in range(5)]
    await started(name)
    gate.set()
    responses = await asyncio.gather(*tasks)
    # Nobody gets the failed leader's 503 but the leader. Each other request ran the
    # handler itself, unless (on a slow machine) it arrived after a follower's answer
    # was stored and was a HIT of it.
    assert sorted(r.status_code for r in responses) == [200] * 4 + [503]
    hits = [r.get("X-Cache") for r in responses].count("HIT")
    assert runs[name] == 5 - hits
    assert runs[name] >= 2


async def test_a_lock_held_by_another_process_is_waited_for(
    redis_client: redis.Redis,
) -> None:
    view_class, name = counted()
    url = route(view_class)
    # Another process is computing the key and died: its lock is in Redis, 0.3 s to live.
    assert redis_client.keys("*:lock:*") == []
    view = view_class()
    request = AsyncRequestFactory().get(url)
    view.setup(request)
    plan = await view._plan(request)
    redis_client.set(f":1:{plan.lock_name}", "other", px=300)
    started = time.monotonic()
    response = await get(url)
    waited = time.monotonic() - started
    assert response.status_code == 200
    assert 0.25 <= waited < 2.0  # the dead leader's lock expired; this request took over
    assert runs[name] == 1


async def test_a_lock_whose_reply_was_lost_is_still_this_requests(
    redis_db: str, redis_client: redis.Redis
) -> None:
    """The connection breaks after Redis took the lock, before its reply arrived: the
    command is sent once more on a new connection (see docs/redis.md), and must find
    the lock this request's own, not another's to wait out (LOCK_TIMEOUT, 10 s)."""
    host, port = (
        redis_client.connection_pool.connection_kwargs["host"],
        int(redis_client.connection_pool.connection_kwargs["port"]),
    )
    cut: list[bool] = []  # one connection is cut, once
    streams: list[asyncio.StreamWriter] = []
    relays: list[asyncio.Task[None]] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        assert current is not None
        relays.append(current)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        streams.extend((writer, upstream_writer))
        cutting = False

        async def replies() -> None:
            while data := await upstream_reader.read(65536):
                if cutting:  # Redis ran the command: its reply is lost with the connection
                    writer.transport.abort()
                    return
                writer.write(data)

        task = asyncio.ensure_future(replies())
        try:
            while data := await reader.read(65536):
                if not cut and b":lock:" in data:  # the first command on the lock: taking it
                    cut.append(True)
                    cutting = True
                upstream_writer.write(data)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    db = redis_db.rsplit("/", 1)[1]
    location = f"redis://127.0.0.1:{proxy.sockets[0].getsockname()[1]}/{db}"
    try:
        with override_settings(
            CACHES={
                "default": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": location,
                }
            }
        ):
            view_class, name = counted()
            url = route(view_class)
            started = time.monotonic()
            response = await get(url)
            waited = time.monotonic() - started
            assert cut  # the reply to the lock command was lost
            assert (response["X-Cache"], runs[name]) == ("MISS", 1)
            assert waited < 2.0  # not the lock's 10 s
            assert (await get(url))["X-Cache"] == "HIT"
    finally:
        proxy.close()
        for stream in streams:
            stream.close()
        await asyncio.gather(*(stream.wait_closed() for stream in streams), return_exceptions=True)
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await proxy.wait_closed()


async def test_a_cancelled_leader_hands_over_to_one_waiter() -> None:
    view_class, name, gate = gated()
    url = route(view_class)
    leader = asyncio.ensure_future(get(url))
    await started(name)
    waiters = [asyncio.ensure_future(get(url)) for _ in range(10)]
    for _ in range(50):
        await asyncio.sleep(0)
    leader.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await leader
    for _ in range(50):
        await asyncio.sleep(0)
    gate.set()
    responses = await asyncio.gather(*waiters)
    assert runs[name] == 2  # the cancelled run and one more: not one per waiter
    assert {r.content for r in responses} == {b":2"}


async def test_a_slow_leader_keeps_its_lock(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "LOCK_TIMEOUT", 0.3)
    view_class, name, gate = gated()
    url = route(view_class)
    leader = asyncio.ensure_future(get(url))
    await started(name)
    [lock] = redis_client.keys("*:lock:*")
    for _ in range(4):  # four lifetimes of the lock go by; the leader renews it
        await asyncio.sleep(0.3)
        assert redis_client.exists(lock) == 1
    gate.set()
    assert (await leader)["X-Cache"] == "MISS"
    assert redis_client.exists(lock) == 0  # released
    assert runs[name] == 1


# ------------------------------------------------------------------ stale


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(cache_module, "time", fake)
    return fake


async def test_stale_entries_are_served_while_one_request_refreshes(clock: FakeClock) -> None:
    gate = asyncio.Event()

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        if n > 1:
            await gate.wait()
        return HttpResponse(f"v{n}")  # the refresh (n == 2) waits for the gate

    view_class, name = counted(respond=respond, cache_timeout=10, cache_stale_ttl=60)
    url = route(view_class)
    assert (await get(url)).content == b"v1"
    clock.now += 11
    tasks = [asyncio.ensure_future(get(url)) for _ in range(20)]
    # 19 answer from the stale entry while the refresh is still held at its gate
    async with asyncio.timeout(10):
        stale = [await answer for answer in itertools.islice(asyncio.as_completed(tasks), 19)]
    assert runs[name] == 2
    assert {r["X-Cache"] for r in stale} == {"STALE"}
    assert {r.content for r in stale} == {b"v1"}
    assert {r["Cache-Control"] for r in stale} == {"max-age=0"}
    gate.set()
    await asyncio.gather(*tasks)
    assert runs[name] == 2
    fresh = await get(url)
    assert (fresh["X-Cache"], fresh.content) == ("HIT", b"v2")
    clock.now += 10 + 61
    assert (await get(url))["X-Cache"] == "MISS"  # past the stale window: a plain miss


# ------------------------------------------------------------------ invalidation


async def test_generation_starts_random_and_bumps(redis_client: redis.Redis) -> None:
    view_class, name = counted()
    url = route(view_class)
    await get(url)
    [gen_key] = redis_client.keys("*:gen")
    first = int(redis_client.get(gen_key) or 0)
    assert first > 1_000_000  # a random start, not 1
    await view_class.ainvalidate_cache()
    assert int(redis_client.get(gen_key) or 0) != first
    assert (await get(url))["X-Cache"] == "MISS"
    await asyncio.to_thread(view_class.invalidate_cache)
    assert (await get(url))["X-Cache"] == "MISS"
    redis_client.delete(gen_key)  # evicted: old entries never come back
    assert (await get(url))["X-Cache"] == "MISS"
    assert (await get(url))["X-Cache"] == "HIT"
    assert runs[name] == 4


@pytest.mark.django_db(transaction=True)
async def test_a_cached_api_list_is_invalidated_by_a_post() -> None:
    class Categories(AsyncCacheMixin, AsyncAPIView):
        model = Category
        fields = ["name"]

    list_url = route(Categories)
    client = AsyncClient()
    first = await client.get(list_url)
    assert first["X-Cache"] == "MISS"
    assert (await client.get(list_url))["X-Cache"] == "HIT"
    bad = await client.post(list_url, {"name": ""}, content_type="application/json")
    assert bad.status_code == 400
    assert (await client.get(list_url))["X-Cache"] == "HIT"  # a failed write changes nothing
    created = await client.post(list_url, {"name": "new"}, content_type="application/json")
    assert created.status_code == 201
    assert created["X-Cache"] == "BYPASS"
    after = await client.get(list_url)
    assert after["X-Cache"] == "MISS"
    assert json.loads(after.content)["count"] == json.loads(first.content)["count"] + 1


# ------------------------------------------------------------------ failure


@pytest.fixture
def dead_redis() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    finally:
        sock.close()


async def test_redis_down_serves_uncached(
    dead_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    view_class, name = counted()
    url = route(view_class)
    with override_settings(
        CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": dead_redis}}
    ):
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="django_async_cbv"):
            responses = [await get(url) for _ in range(3)]
        elapsed = time.monotonic() - started
    assert [(r.status_code, r["X-Cache"]) for r in responses] == [(200, "BYPASS")] * 3
    assert elapsed < 3 * 1.5
    assert "serving uncached" in caplog.records[0].getMessage()
    assert runs[name] == 3


async def test_one_redis_command_per_hit(redis_client: redis.Redis) -> None:
    view_class, _ = counted()
    url = route(view_class)
    await get(url)
    await get(url)  # warm: script loaded, Vary names known
    redis_client.config_resetstat()
    for _ in range(10):
        assert (await get(url))["X-Cache"] == "HIT"
    stats = redis_client.info("commandstats")
    calls = {name: stat["calls"] for name, stat in stats.items()}
    # What the server ran, besides this test's own CONFIG and INFO: one EVALSHA per hit,
    # whose script reads four keys (GETs inside Redis, counted there too).
    ours = {
        name: n
        for name, n in calls.items()
        if not name.startswith(("cmdstat_config", "cmdstat_info"))
    }
    assert ours == {"cmdstat_evalsha": 10, "cmdstat_get": 40}


async def test_local_memory_backend_works() -> None:
    view_class, name = counted(cache_alias="locmem")
    url = route(view_class)
    assert [(await get(url))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
    await view_class.ainvalidate_cache()
    assert (await get(url))["X-Cache"] == "MISS"
    assert runs[name] == 2


# ------------------------------------------------------------------ with the rate limit


@pytest.mark.parametrize("order", ["limit first", "cache first"])
async def test_cached_hits_still_spend_the_rate_limit(order: str) -> None:
    async def plain_get(self: Any, request: HttpRequest) -> HttpResponse:
        return HttpResponse("x")

    bases = (
        (AsyncRateLimitMixin, AsyncCacheMixin, AsyncView)
        if order == "limit first"
        else (AsyncCacheMixin, AsyncRateLimitMixin, AsyncView)
    )
    view_class = type(
        f"Both{next(_made)}", bases, {"__module__": __name__, "get": plain_get, "rate_limit": "3/h"}
    )
    url = route(view_class)
    responses = [await get(url) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.get("X-Cache") for r in responses[:3]] == ["MISS", "HIT", "HIT"]
    assert responses[2]["RateLimit"] == '"3/h";r=0;t=3600'


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"cache_timeout": 0}, "cache_timeout must be a positive number"),
        ({"cache_timeout": "5"}, "cache_timeout must be a positive number"),
        ({"cache_stale_ttl": -1}, "cache_stale_ttl must be a number of seconds >= 0"),
        ({"cache_alias": ""}, "cache_alias must be None or a non-empty string"),
        ({"cache_key_prefix": 5}, "cache_key_prefix must be None or a non-empty string"),
        ({"cache_vary_on": "Accept"}, "cache_vary_on must be a list of header names"),
        ({"cache_vary_on": ["Bad Header"]}, "invalid header name"),
        ({"cache_per_user": 1}, "cache_per_user must be True or False"),
    ],
)
def test_bad_attributes_fail_at_as_view(attrs: dict[str, Any], message: str) -> None:
    view_class, _ = counted(**attrs)
    with pytest.raises(ImproperlyConfigured, match=message):
        view_class.as_view()


def test_digest_separates_absent_and_empty() -> None:
    assert digest("a", None) != digest("a", "")
    assert digest("ab", "c") != digest("a", "bc")


def test_entry_round_trip() -> None:
    entry = Entry(
        status=200,
        reason="OK",
        headers=[("A", "b")],
        body=b"x\ny",
        etag='"e"',
        stored_at=1.0,
        fresh_until=2.0,
        generation="7",
        vary=("accept",),
        name="n",
    )
    assert Entry.loads(entry.dumps()) == entry
    assert Entry.loads(b"garbage") is None
    assert Entry.loads(None) is None


urlpatterns: list[Any] = []


def test_check_reports_an_unknown_alias(settings: Any) -> None:
    from types import ModuleType

    from django_async_cbv.checks import check_views

    view_class, _ = counted(cache_alias="nowhere")
    urlconf = ModuleType("routes")
    urlconf.urlpatterns = [path("x/", view_class.as_view())]  # type: ignore[attr-defined]
    settings.ROOT_URLCONF = urlconf
    [message] = check_views()
    assert message.id == "django_async_cbv.E012"
    assert "'nowhere'" in message.msg


# ------------------------------------------------------------------ review findings


@pytest.mark.django_db(transaction=True)
async def test_pages_that_showed_flash_messages_are_never_stored(settings: Any) -> None:
    from django.contrib import messages

    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.messages.middleware.MessageMiddleware",
    ]

    class Page(AsyncCacheMixin, AsyncView):
        async def post(self, request: HttpRequest) -> HttpResponse:
            messages.success(request, "Thanks alice@example.com")
            return HttpResponse(status=302, headers={"Location": request.path})

        async def get(self, request: HttpRequest) -> HttpResponse:
            shown = [str(m) for m in messages.get_messages(request)]
            return JsonResponse({"messages": shown})

    url = route(Page)
    alice = AsyncClient()
    await alice.post(url)
    mine = await alice.get(url)
    assert json.loads(mine.content) == {"messages": ["Thanks alice@example.com"]}
    assert mine["X-Cache"] == "MISS"
    bob = await get(url)
    assert bob["X-Cache"] == "MISS"
    assert json.loads(bob.content) == {"messages": []}


async def test_an_unstorable_answer_stops_requests_queueing_on_the_lock(
    redis_client: redis.Redis,
) -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse(f"private {n}", headers={"Cache-Control": "private"})

    view_class, name = counted(respond=respond)
    url = route(view_class)
    assert (await get(url))["X-Cache"] == "MISS"
    assert redis_client.keys("*:pass:*")  # marked: its answers are not stored
    view = view_class()
    request = AsyncRequestFactory().get(url)
    view.setup(request)
    plan = await view._plan(request)
    redis_client.set(f":1:{plan.lock_name}", "another process", px=5000)
    started = time.monotonic()
    assert (await get(url)).content == b"private 2"
    assert time.monotonic() - started < 1.0  # no waiting behind the other lock
    assert runs[name] == 2


async def test_a_leader_cancelled_after_taking_the_lock_releases_it(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    view_class, name = counted()
    url = route(view_class)
    in_lookup = asyncio.Event()
    original = AsyncCacheMixin._find_fresh

    async def slow_find_fresh(self: Any, store: Any, request: Any, plan: Any) -> Any:
        in_lookup.set()
        await asyncio.Event().wait()  # stuck here (a slow store) until cancelled
        return await original(self, store, request, plan)

    monkeypatch.setattr(AsyncCacheMixin, "_find_fresh", slow_find_fresh)
    leader = asyncio.ensure_future(get(url))
    await in_lookup.wait()
    assert redis_client.keys("*:lock:*")
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert redis_client.keys("*:lock:*") == []  # released, not left to expire
    assert runs[name] == 0


@pytest.mark.parametrize("status", [304, 206])
async def test_304_and_206_are_never_stored_whatever_the_hook(status: int) -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse(status=status, headers={"ETag": '"v1"'})

    view_class, name = counted(respond=respond, should_cache_response=lambda self, response: True)
    url = route(view_class)
    for _ in range(2):
        assert (await get(url)).status_code == status
    assert runs[name] == 2


async def test_preconditions_only_apply_to_stored_successes() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse("gone", status=404)

    view_class, _ = counted(
        respond=respond, should_cache_response=lambda self, response: response.status_code == 404
    )
    url = route(view_class)
    await get(url)
    hit = await get(url, headers={"If-None-Match": "*"})
    assert (hit.status_code, hit["X-Cache"]) == (404, "HIT")


@pytest.mark.parametrize(
    "cache_control",
    [
        "max-age=10, max-age=0",
        "s-maxage=60, max-age=0",
        "max-age=0, s-maxage=60",
        'max-age=60, ext="private"',
        "max-age=²",  # a digit to str.isdigit(), not to int()
    ],
)
async def test_more_responses_that_must_not_be_stored(cache_control: str) -> None:
    view_class, name = counted(respond=_responder(**{"Cache-Control": cache_control}))
    url = route(view_class)
    assert [(await get(url)).status_code for _ in range(2)] == [200, 200]
    assert runs[name] == 2


LAST_MODIFIED = "Sun, 06 Dec 2026 10:00:00 GMT"


async def last_modified_response(view: Any, request: HttpRequest, run: int) -> HttpResponse:
    response = JsonResponse({"run": run})
    response["Last-Modified"] = LAST_MODIFIED
    return response


async def test_if_unmodified_since_is_ignored_without_a_last_modified() -> None:
    """RFC 9110 13.1.4: with no modification date, If-Unmodified-Since is ignored."""
    view_class, _ = counted()
    url = route(view_class)
    await get(url)
    response = await get(url, headers={"If-Unmodified-Since": "Sun, 06 Dec 2026 09:00:00 GMT"})
    assert (response.status_code, response["X-Cache"]) == (200, "HIT")
    etag = response["ETag"]
    both = {"If-Unmodified-Since": "Sun, 06 Dec 2026 09:00:00 GMT", "If-None-Match": etag}
    assert (await get(url, headers=both)).status_code == 304


async def test_a_304_has_no_body_length_and_only_the_headers_a_304_may_carry() -> None:
    """RFC 9110 15.4.5: no body, no length of the 200's, no other representation headers."""
    view_class, _ = counted(respond=last_modified_response)
    url = route(view_class)
    first = await get(url)
    not_modified = await get(url, headers={"If-None-Match": f'W/{first["ETag"]}, "other"'})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.get("Content-Length", "0") == "0"
    assert {name.lower() for name in not_modified.headers} <= {
        *("cache-control", "content-location", "date", "etag", "expires", "vary"),
        *("x-cache", "age", "content-length"),
    }
    assert not_modified["ETag"] == first["ETag"]
    assert not_modified["X-Cache"] == "HIT"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": "*"}, 304),
        ({"If-Modified-Since": "Sun, 06 Dec 2026 10:00:00 GMT"}, 304),
        ({"If-Modified-Since": "Sun, 06 Dec 2026 09:59:59 GMT"}, 200),
        # If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.2.2).
        ({"If-None-Match": '"other"', "If-Modified-Since": "Mon, 07 Dec 2026 00:00:00 GMT"}, 200),
        ({"If-Match": '"other"'}, 412),
        ({"If-Unmodified-Since": "Sun, 06 Dec 2026 09:00:00 GMT"}, 412),
        ({"If-Unmodified-Since": "Sun, 06 Dec 2026 11:00:00 GMT"}, 200),
    ],
)
async def test_preconditions_on_a_stored_entry(headers: dict[str, str], status: int) -> None:
    view_class, name = counted(respond=last_modified_response)
    url = route(view_class)
    await get(url)
    response = await get(url, headers=headers)
    assert (response.status_code, response["X-Cache"]) == (status, "HIT")
    if status == 412:
        assert response["Content-Type"] == "application/problem+json"
    assert runs[name] == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda head: head.update(status=999),
        lambda head: head.update(status="200"),
        lambda head: head.update(fresh_until=float("inf")),
        lambda head: head.update(stored_at=float("nan")),
        lambda head: head.update(headers=[["X-Evil", "a\r\nSet-Cookie: x=1"]]),
        lambda head: head.update(headers={"A": "b"}),
        lambda head: head.update(headers=[["Bad Name", "v"]]),
        lambda head: head.pop("generation"),
    ],
)
async def test_tampered_entries_are_misses_never_errors(
    redis_client: redis.Redis, tamper: Any
) -> None:
    view_class, name = counted()
    url = route(view_class)
    await get(url)
    [key] = redis_client.keys("*:e:*")
    raw = redis_client.get(key)
    assert raw is not None
    magic, head, body = raw.split(b"\n", 2)
    meta = json.loads(head)
    tamper(meta)
    redis_client.set(key, magic + b"\n" + json.dumps(meta).encode() + b"\n" + body)
    response = await get(url)
    assert (response.status_code, response["X-Cache"]) == (200, "MISS")
    assert runs[name] == 2


async def test_stored_per_request_headers_are_never_replayed(redis_client: redis.Redis) -> None:
    view_class, _ = counted()
    url = route(view_class)
    await get(url)
    [key] = redis_client.keys("*:e:*")
    raw = redis_client.get(key)
    assert raw is not None
    magic, head, body = raw.split(b"\n", 2)
    meta = json.loads(head)
    meta["headers"] += [["Set-Cookie", "sessionid=attacker"], ["Content-Length", "1"]]
    redis_client.set(key, magic + b"\n" + json.dumps(meta).encode() + b"\n" + body)
    hit = await get(url)
    assert hit["X-Cache"] == "HIT"
    assert "sessionid" not in hit.cookies
    assert hit["Content-Length"] == str(len(hit.content))


@pytest.mark.django_db(transaction=True)
async def test_answers_of_earlier_stages_are_marked_bypass() -> None:
    class Closed(AsyncRateLimitMixin, AsyncCacheMixin, AsyncAPIView):
        model = Category
        fields = ["name"]
        rate_limit = "1/h"

        async def has_permission(self) -> bool:
            return False

    url = route(Closed)
    denied = await get(url)
    assert denied.status_code in (401, 403)
    assert denied["X-Cache"] == "BYPASS"
    limited = await get(url)
    assert limited.status_code == 429
    assert limited["X-Cache"] == "BYPASS"


@pytest.mark.django_db(transaction=True)
async def test_writes_while_the_cache_is_down_do_not_wait_and_log_once(
    dead_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    from django_async_cbv._redis import health as _store_health

    class Writable(AsyncCacheMixin, AsyncView):
        async def post(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse(status=204)

    url = route(Writable)
    _store_health.forget()
    with override_settings(
        CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": dead_redis}}
    ):
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="django_async_cbv"):
            statuses = [(await AsyncClient().post(url)).status_code for _ in range(5)]
        elapsed = time.monotonic() - started
        with pytest.raises(redis.ConnectionError):
            await Writable.ainvalidate_cache()  # the backend's own error, as the sync twin
    _store_health.forget()
    assert statuses == [204] * 5
    assert elapsed < 2.0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "NOT invalidated" in errors[0].getMessage()


def test_sync_invalidation_raises_while_the_cache_is_down_even_if_it_ignores_errors(
    dead_redis: str,
) -> None:
    """django-redis's IGNORE_EXCEPTIONS must not turn a failed invalidation into a silent
    no-op: the docs promise the backend's own error, as from ainvalidate_cache()."""

    class Invalidated(AsyncCacheMixin, AsyncView):
        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    for options in ({}, {"IGNORE_EXCEPTIONS": True}):
        caches_setting = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": dead_redis,
                "OPTIONS": options,
            }
        }
        with override_settings(CACHES=caches_setting), pytest.raises(redis.ConnectionError):
            Invalidated.invalidate_cache()


async def test_sync_invalidation_works_on_a_cache_that_ignores_errors(redis_url: str) -> None:
    view_class, name = counted()
    url = route(view_class)
    caches_setting = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_url,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True},
        }
    }
    with override_settings(CACHES=caches_setting):
        assert [(await get(url))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
        await asyncio.to_thread(view_class.invalidate_cache)
        assert (await get(url))["X-Cache"] == "MISS"
    assert runs[name] == 2


async def test_sync_invalidation_of_another_backend_with_an_ignore_flag() -> None:
    """Only django-redis's client is called directly: another backend that has the same
    flag (a fork, a subclass of Django's) is invalidated through its own set()."""
    view_class, name = counted()
    url = route(view_class)
    backend = f"{__name__}.FlaggedLocMem"
    with override_settings(CACHES={"default": {"BACKEND": backend}}):
        assert [(await get(url))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
        await asyncio.to_thread(view_class.invalidate_cache)
        assert (await get(url))["X-Cache"] == "MISS"
    assert runs[name] == 2


async def test_a_vary_on_generator_is_read_once() -> None:
    class Hooked(AsyncCacheMixin, AsyncView):
        def get_cache_vary_on(self) -> Any:
            return (name for name in ["X-Tenant"])

        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse(request.headers.get("X-Tenant", "-"))

    url = route(Hooked)
    for tenant in ("a", "b"):
        response = await get(url, headers={"X-Tenant": tenant})
        assert (response["X-Cache"], response.content) == ("MISS", tenant.encode())
        assert "x-tenant" in response["Vary"].lower()  # downstream caches must vary too
    assert (await get(url, headers={"X-Tenant": "a"})).content == b"a"


async def test_hook_values_are_validated_by_type_too() -> None:
    class Hooked(AsyncCacheMixin, AsyncView):
        def get_cache_per_user(self) -> Any:
            # 0 == False and hash(0) == hash(False): 0 must still be refused
            return False if self.request.headers.get("X-Tenant") == "a" else 0

        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    url = route(Hooked)
    assert (await get(url, headers={"X-Tenant": "a"}))["X-Cache"] == "MISS"
    with pytest.raises(ImproperlyConfigured, match="cache_per_user must be True or False"):
        await get(url, headers={"X-Tenant": "b"})


@pytest.mark.parametrize(
    "name",
    ["X-Tenant", "x-tenant", "Content-Type", "content-length", "X_Tenant", "Authorization", "Nope"],
)
def test_request_header_reads_meta_like_request_headers(name: str) -> None:
    from django.test import RequestFactory

    from django_async_cbv.cache.headers import _request_header

    request = RequestFactory().get(
        "/",
        headers={"X-Tenant": "t", "Authorization": "Bearer x"},
        CONTENT_TYPE="text/plain",
        CONTENT_LENGTH="3",
    )
    request.META["HTTP_X_TENANT"] = "t"
    assert _request_header(request, name) == request.headers.get(name)


class FlaggedLocMem(LocMemCache):
    """A backend that is not django-redis but has its ``_ignore_exceptions`` flag."""

    _ignore_exceptions = True
