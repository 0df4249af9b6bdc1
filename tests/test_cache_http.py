"""AsyncCacheMixin and HTTP: freshness (RFC 9111, shared cache), bounded waits for a
hung leader, the entry size limit, and where Django's own helpers do the work.

Each behaviour whose code path differs between stores runs on Redis (``default``)
and on local memory (``locmem``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.http import FileResponse, HttpRequest, HttpResponse
from django.test import AsyncClient
from django.utils.http import http_date

import django_async_cbv.cache.flow as cache_module
from django_async_cbv import AsyncCacheMixin, AsyncRateLimitMixin, AsyncView
from tests.test_cache import counted, entered, get, route, runs

pytestmark = [pytest.mark.urls("tests.test_cache"), pytest.mark.redis]

ALIASES = ["default", "locmem"]


class FakeClock:
    """Wall-clock time under the test's control (monotonic time stays real)."""

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


def responder(**headers: Any) -> Any:
    """A handler answering ``run <n>`` with ``headers`` (callables get the clock's now)."""

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        now = cache_module.time.time()
        values = {name: value(now) if callable(value) else value for name, value in headers.items()}
        return HttpResponse(f"run {n}", headers=values)

    return respond


async def states(url: str, clock: FakeClock, *offsets: float) -> list[str]:
    """``X-Cache`` of a GET at each offset (seconds after the first GET)."""
    start = clock.now
    found = []
    for offset in offsets:
        clock.now = start + offset
        found.append((await get(url))["X-Cache"])
    return found


# ------------------------------------------------------------------ freshness


@pytest.mark.parametrize("alias", ALIASES)
async def test_s_maxage_takes_precedence_over_max_age(alias: str, clock: FakeClock) -> None:
    """A shared cache uses s-maxage, not the smaller max-age meant for browsers."""
    view_class, name = counted(
        cache_alias=alias, respond=responder(**{"Cache-Control": "max-age=10, s-maxage=60"})
    )
    url = route(view_class)
    assert await states(url, clock, 0, 30, 59, 61) == ["MISS", "HIT", "HIT", "MISS"]
    assert runs[name] == 2


async def test_cache_timeout_still_caps_s_maxage(clock: FakeClock) -> None:
    view_class, _ = counted(cache_timeout=20, respond=responder(**{"Cache-Control": "s-maxage=60"}))
    assert await states(route(view_class), clock, 0, 19, 21) == ["MISS", "HIT", "MISS"]


@pytest.mark.parametrize("alias", ALIASES)
async def test_expires_bounds_the_life(alias: str, clock: FakeClock) -> None:
    """Expires minus Date (RFC 9111 4.2.1), less the age Date shows, below cache_timeout."""
    view_class, name = counted(
        cache_alias=alias,
        respond=responder(
            Date=lambda now: http_date(now - 5),  # an upstream's answer, 5 s old
            Expires=lambda now: http_date(now - 5 + 25),
        ),
    )
    url = route(view_class)
    assert await states(url, clock, 0, 19, 21) == ["MISS", "HIT", "MISS"]
    assert runs[name] == 2


async def test_expires_without_date_counts_from_now(clock: FakeClock) -> None:
    view_class, _ = counted(respond=responder(Expires=lambda now: http_date(now + 20)))
    url = route(view_class)
    assert await states(url, clock, 0, 19, 21) == ["MISS", "HIT", "MISS"]


@pytest.mark.parametrize("expires", ["0", "not a date", "Thu, 01 Jan 1970 00:00:00 GMT"])
async def test_an_invalid_or_past_expires_is_not_stored(expires: str, clock: FakeClock) -> None:
    """RFC 9111 5.3: an invalid Expires (such as "0") means already expired."""
    view_class, name = counted(respond=responder(Expires=expires))
    url = route(view_class)
    assert await states(url, clock, 0, 1) == ["MISS", "MISS"]
    assert runs[name] == 2


async def test_max_age_overrides_expires(clock: FakeClock) -> None:
    view_class, _ = counted(respond=responder(**{"Cache-Control": "max-age=60", "Expires": "0"}))
    assert await states(route(view_class), clock, 0, 30, 61) == ["MISS", "HIT", "MISS"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "max-age=60"},
        {"Cache-Control": "s-maxage=60"},
        {"Expires": lambda now: http_date(now - 100 + 60)},
    ],
)
async def test_a_date_older_than_the_life_is_not_stored(
    headers: dict[str, Any], clock: FakeClock
) -> None:
    """RFC 9111 4.2.3: the age is at least now minus Date (the apparent age)."""
    view_class, name = counted(respond=responder(Date=lambda now: http_date(now - 100), **headers))
    assert await states(route(view_class), clock, 0, 1) == ["MISS", "MISS"]
    assert runs[name] == 2


async def test_the_larger_of_age_and_the_apparent_age_counts(clock: FakeClock) -> None:
    view_class, _ = counted(
        respond=responder(
            **{"Cache-Control": "max-age=60", "Age": "10"}, Date=lambda now: http_date(now - 30)
        )
    )
    assert await states(route(view_class), clock, 0, 29, 31) == ["MISS", "HIT", "MISS"]


async def test_an_upstream_age_shortens_the_life(clock: FakeClock) -> None:
    """An answer already 50 s old with max-age=60 has 10 s left."""
    view_class, _ = counted(respond=responder(**{"Cache-Control": "max-age=60", "Age": "50"}))
    url = route(view_class)
    assert await states(url, clock, 0, 9, 11) == ["MISS", "HIT", "MISS"]
    clock.now += 1
    # A hit's Age is the age it was stored with and its time in the cache (RFC 9111
    # 4.2.3): with the stored max-age=60, a cache downstream sees 9 s left, not 59.
    hit = await get(url)
    assert (hit["X-Cache"], hit["Cache-Control"], hit["Age"]) == ("HIT", "max-age=60", "51")


async def test_an_aged_answer_without_cache_control_gets_a_consistent_max_age(
    clock: FakeClock,
) -> None:
    """Without the view's Cache-Control, max-age minus Age is what is left, miss or hit."""
    view_class, _ = counted(respond=responder(Age="50"))  # cache_timeout=300 applies
    url = route(view_class)
    miss = await get(url)
    assert (miss["Cache-Control"], miss["Age"]) == ("max-age=350", "50")
    clock.now += 10
    hit = await get(url)
    assert (hit["X-Cache"], hit["Cache-Control"], hit["Age"]) == ("HIT", "max-age=350", "60")


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize(
    "cache_control",
    [
        "max-age=10, must-revalidate",
        "Proxy-Revalidate, max-age=10",
        # RFC 9111 5.2.2.10: s-maxage has proxy-revalidate's meaning for a shared cache.
        "max-age=600, s-maxage=10",
    ],
)
async def test_revalidate_entries_are_never_served_stale(
    alias: str, cache_control: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its life, a request waits for the refresh instead of getting the stale entry."""
    gate = asyncio.Event()
    waiting = asyncio.Event()
    coalesce = AsyncCacheMixin._coalesce

    async def spied_coalesce(self: Any, *args: Any) -> Any:
        waiting.set()  # the request goes on to wait for the running refresh
        return await coalesce(self, *args)

    monkeypatch.setattr(AsyncCacheMixin, "_coalesce", spied_coalesce)

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        if n == 2:
            entered[type(self).__name__].set()
            await gate.wait()
        return HttpResponse(f"run {n}", headers={"Cache-Control": cache_control})

    view_class, name = counted(cache_alias=alias, cache_stale_ttl=600, respond=respond)
    url = route(view_class)
    assert await states(url, clock, 0, 5) == ["MISS", "HIT"]
    clock.now += 11
    refresh = asyncio.ensure_future(get(url))
    await entered[name].wait()
    waiting.clear()
    other = asyncio.ensure_future(get(url))
    # Either answered at once (from the stale entry) or waiting for the refresh:
    await asyncio.wait(
        [other, asyncio.ensure_future(waiting.wait())], return_when="FIRST_COMPLETED"
    )
    gate.set()
    answers = await asyncio.gather(refresh, other)
    assert [(r["X-Cache"], r.content) for r in answers] == [("MISS", b"run 2"), ("HIT", b"run 2")]
    assert runs[name] == 2


@pytest.mark.parametrize("cache_control", ["max-age=10, must-revalidate", "s-maxage=10"])
async def test_a_revalidate_entry_is_kept_no_longer_than_its_life(
    cache_control: str, redis_client: redis.Redis
) -> None:
    view_class, _ = counted(
        cache_stale_ttl=600, respond=responder(**{"Cache-Control": cache_control})
    )
    await get(route(view_class))
    [key] = redis_client.keys("*:e:*")
    assert 0 < redis_client.pttl(key) <= 10_000


async def test_stale_while_revalidate_keeps_the_stale_window(redis_client: redis.Redis) -> None:
    """Only must-revalidate and proxy-revalidate end it, not any directive naming it."""
    view_class, _ = counted(
        cache_stale_ttl=600,
        respond=responder(**{"Cache-Control": "max-age=10, stale-while-revalidate=60"}),
    )
    await get(route(view_class))
    [key] = redis_client.keys("*:e:*")
    assert 600_000 < redis_client.pttl(key) <= 610_000


@pytest.mark.parametrize(
    "cache_control",
    [
        'no-cache="Set-Cookie"',  # RFC 9111 allows storing it, less the field: not done here
        "max-age=60, No-Cache",
        "max-age=0, s-maxage=60",  # max-age=0 is never stored (as Django's middleware)
        "max-age=0",
    ],
)
async def test_no_cache_with_field_names_and_max_age_0_are_not_stored(
    cache_control: str, clock: FakeClock
) -> None:
    view_class, name = counted(respond=responder(**{"Cache-Control": cache_control}))
    url = route(view_class)
    responses = [await get(url) for _ in range(2)]
    assert [r["X-Cache"] for r in responses] == ["MISS", "MISS"]
    assert {r["Cache-Control"] for r in responses} == {cache_control}  # sent as the view said
    assert runs[name] == 2


# ------------------------------------------------------------------ a hung leader


@pytest.mark.parametrize("alias", ALIASES)
async def test_a_hung_leader_does_not_hang_followers_in_its_process(
    alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader's handler never ends (it ignores cancellation) and the view has no
    timeout: its followers wait the bound (here 0.2 + 0.3 s), then one of them runs
    the handler and the others get its answer."""
    monkeypatch.setattr(cache_module, "_DEFAULT_WAIT", 0.2)
    monkeypatch.setattr(cache_module, "LOCK_TIMEOUT", 0.3)
    release = asyncio.Event()

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        if n == 1:
            entered[type(self).__name__].set()
            while not release.is_set():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(release.wait())
        return HttpResponse(f"run {n}")

    view_class, name = counted(cache_alias=alias, respond=respond)
    url = route(view_class)
    client = AsyncClient()
    leader = asyncio.ensure_future(get(url, client))
    await entered[name].wait()
    started = time.monotonic()
    try:
        async with asyncio.timeout(5):
            followers = await asyncio.gather(*(get(url, client) for _ in range(10)))
    finally:
        release.set()
    elapsed = time.monotonic() - started
    assert {r.content for r in followers} == {b"run 2"}
    assert sorted(r["X-Cache"] for r in followers) == ["HIT"] * 9 + ["MISS"]
    assert runs[name] == 2
    # The bound, with room for a loaded machine; the unpatched bounds (10 s, 30 s) would
    # trip the 5 s guard above.
    assert 0.4 <= elapsed < 4.0
    assert (await leader).content == b"run 1"


# ------------------------------------------------------------------ entry size


@pytest.mark.parametrize("alias", ALIASES)
async def test_bodies_above_max_entry_size_are_served_not_stored(
    alias: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse(b"x" * int(request.GET["size"]))

    view_class, name = counted(cache_alias=alias, cache_max_entry_size=10, respond=respond)
    url = route(view_class)
    with caplog.at_level(logging.DEBUG, logger="django_async_cbv"):
        big = [await get(url + "?size=11") for _ in range(2)]
    assert [(r.status_code, r["X-Cache"], len(r.content)) for r in big] == [(200, "MISS", 11)] * 2
    assert "a response of 11 bytes is not stored (cache_max_entry_size is 10)" in caplog.text
    assert [(await get(url + "?size=10"))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
    assert runs[name] == 3


async def test_the_default_max_entry_size_is_one_mib() -> None:
    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse(b"x" * int(request.GET["size"]))

    view_class, _ = counted(respond=respond)
    unlimited, _ = counted(respond=respond, cache_max_entry_size=None)
    url, open_url = route(view_class), route(unlimited)
    mib = 1024 * 1024
    assert [(await get(f"{url}?size={mib + 1}"))["X-Cache"] for _ in range(2)] == ["MISS"] * 2
    assert [(await get(f"{url}?size={mib}"))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
    hits = [(await get(f"{open_url}?size={mib + 1}"))["X-Cache"] for _ in range(2)]
    assert hits == ["MISS", "HIT"]


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "1M"])
def test_a_bad_max_entry_size_fails_at_as_view(value: Any) -> None:
    view_class, _ = counted(cache_max_entry_size=value)
    with pytest.raises(ImproperlyConfigured, match="cache_max_entry_size"):
        view_class.as_view()


async def test_file_responses_are_never_stored(tmp_path: Path) -> None:
    served = tmp_path / "file.txt"
    served.write_bytes(b"content")

    async def respond(self: Any, request: HttpRequest, n: int) -> FileResponse:
        return FileResponse(served.open("rb"))

    view_class, name = counted(respond=respond)
    url = route(view_class)
    responses = [await get(url) for _ in range(2)]
    assert [r["X-Cache"] for r in responses] == ["MISS", "MISS"]
    assert [b"".join(r.streaming_content) for r in responses] == [b"content"] * 2
    assert runs[name] == 2


# ------------------------------------------------------------------ Django's helpers


async def test_per_user_private_replaces_public() -> None:
    """patch_cache_control: ``private`` for per-user entries, and no contradicting ``public``."""
    view_class, _ = counted(
        cache_per_user=True, respond=responder(**{"Cache-Control": "public, max-age=60"})
    )
    url = route(view_class)
    for response in [await get(url) for _ in range(2)]:
        directives = {d.strip() for d in response["Cache-Control"].split(",")}
        assert directives == {"private", "max-age=60"}, response["Cache-Control"]


async def test_cache_vary_on_is_added_once_to_the_view_vary() -> None:
    view_class, _ = counted(
        cache_vary_on=["X-Tenant", "Accept-Language"],
        respond=responder(Vary="accept-language"),
    )
    url = route(view_class)
    for response in [await get(url) for _ in range(2)]:
        names = [name.strip().lower() for name in response["Vary"].split(",")]
        assert names.count("accept-language") == names.count("x-tenant") == 1, names


async def test_an_empty_body_gets_an_etag_and_revalidates() -> None:
    """Django's set_response_etag gives an empty body none; a stored entry needs one."""
    view_class, _ = counted(respond=lambda self, request, n: _empty())
    url = route(view_class)
    first = await get(url)
    assert first["ETag"].startswith('"')
    not_modified = await get(url, headers={"If-None-Match": first["ETag"]})
    assert (not_modified.status_code, not_modified["X-Cache"]) == (304, "HIT")


async def _empty() -> HttpResponse:
    return HttpResponse(b"")


async def test_a_stored_etag_is_djangos() -> None:
    from django.utils.cache import set_response_etag

    view_class, _ = counted(respond=responder())
    response = await get(route(view_class))
    assert response["ETag"] == set_response_etag(HttpResponse(b"run 1"))["ETag"]


def test_entries_without_the_revalidate_flag_still_load() -> None:
    """Entries stored before the flag existed load as may-go-stale; a bad flag is a miss."""
    import json

    from django_async_cbv.cache import Entry

    entry = Entry(200, "OK", [("Content-Type", "text/plain")], b"x", '"e"', 1.0, 2.0)
    magic, head, body = entry.dumps().split(b"\n", 2)
    meta = json.loads(head)
    assert meta.pop("revalidate") is False
    older = Entry.loads(magic + b"\n" + json.dumps(meta).encode() + b"\n" + body)
    assert older is not None
    assert older.revalidate is False
    meta["revalidate"] = "yes"
    assert Entry.loads(magic + b"\n" + json.dumps(meta).encode() + b"\n" + body) is None


async def test_an_async_should_cache_response_is_awaited() -> None:
    """An ``async def`` hook's answer counts (a coroutine is not a yes)."""

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        return HttpResponse(f"run {n}", status=404 if request.GET.get("missing") else 200)

    async def should_cache_response(self: Any, response: HttpResponse) -> bool:
        await asyncio.sleep(0)
        return response.status_code == 404 and self.request.GET.get("keep") is not None

    view_class, name = counted(respond=respond, should_cache_response=should_cache_response)
    url = route(view_class)
    assert [(await get(url))["X-Cache"] for _ in range(2)] == ["MISS", "MISS"]
    kept = url + "?missing=1&keep=1"
    assert [(await get(kept))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
    assert runs[name] == 3


async def test_a_leader_cancelled_while_its_lock_is_being_taken_releases_it(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client gone while the lock's SET is on its way: the lock is not left to expire."""
    from django_async_cbv.cache.store import RedisStore

    view_class, name = counted()
    url = route(view_class)
    sent, reply = asyncio.Event(), asyncio.Event()
    lock = RedisStore.lock

    async def lock_with_a_late_reply(self: Any, *args: Any) -> bool:
        taken = await lock(self, *args)  # Redis has run the SET ...
        sent.set()
        await reply.wait()  # ... and its reply is still on its way
        return taken

    monkeypatch.setattr(RedisStore, "lock", lock_with_a_late_reply)
    leader = asyncio.ensure_future(get(url))
    await sent.wait()
    assert redis_client.keys("*:lock:*")
    leader.cancel()  # before the reply comes
    reply.set()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert redis_client.keys("*:lock:*") == []  # released, not left for LOCK_TIMEOUT
    assert runs[name] == 0


# ------------------------------------------------------------------ revalidating clients


def _validating(etag: str, **headers: Any) -> Any:
    """A handler that answers ``If-None-Match`` itself, as a view with ETags does."""

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        if request.headers.get("If-None-Match") == etag:
            return HttpResponse(status=304, headers={"ETag": etag})
        return HttpResponse(f"run {n}", headers={"ETag": etag, **headers})

    return respond


@pytest.mark.parametrize("alias", ALIASES)
async def test_revalidating_clients_fill_the_cache(alias: str) -> None:
    """On a miss the handler makes the full answer, which is stored; the client's
    If-None-Match is evaluated against it. A handler's own 304 would leave the entry
    empty (and the URL not storable) for as long as clients revalidate."""
    view_class, name = counted(respond=_validating('"v1"'), cache_alias=alias)
    url = route(view_class)
    answers = [await get(url, headers={"If-None-Match": '"v1"'}) for _ in range(5)]
    assert [(a.status_code, a["X-Cache"]) for a in answers] == [(304, "MISS")] + [(304, "HIT")] * 4
    assert all(a.content == b"" and a["ETag"] == '"v1"' for a in answers)
    assert runs[name] == 1
    full = await get(url)
    assert (full.status_code, full["X-Cache"], full.content) == (200, "HIT", b"run 1")
    stale_copy = await get(url, headers={"If-None-Match": '"v0"'})
    assert (stale_copy.status_code, stale_copy.content) == (200, b"run 1")
    assert runs[name] == 1


async def test_a_failed_if_match_on_a_miss_is_412_and_the_entry_is_stored() -> None:
    view_class, name = counted(respond=_validating('"v1"'))
    url = route(view_class)
    refused = await get(url, headers={"If-Match": '"other"'})
    assert (refused.status_code, refused["X-Cache"]) == (412, "MISS")
    assert refused["Content-Type"] == "application/problem+json"
    assert (await get(url))["X-Cache"] == "HIT"
    assert runs[name] == 1


async def test_an_answer_that_is_not_stored_still_answers_if_none_match() -> None:
    """Not storable (private): the handler runs each time, and the client's validator
    is still evaluated against its answer."""
    view_class, name = counted(respond=_validating('"v1"', **{"Cache-Control": "private"}))
    url = route(view_class)
    for _ in range(2):
        answer = await get(url, headers={"If-None-Match": '"v1"'})
        assert (answer.status_code, answer["X-Cache"], answer.content) == (304, "MISS", b"")
    assert runs[name] == 2


@pytest.mark.parametrize(
    ("headers", "status"), [({"If-None-Match": '"v1"'}, 304), ({"If-Match": '"other"'}, 412)]
)
async def test_preconditions_hold_when_the_answer_cannot_be_stored(
    redis_client: redis.Redis, headers: dict[str, str], status: int
) -> None:
    """The store refuses the entry (Redis out of memory after the handler ran): the
    handler ran without the request's preconditions, so they are still evaluated
    against its answer, not dropped with the entry."""

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("maxmemory", "1")  # every write is refused from now
        return await _validating('"v1"')(self, request, n)

    view_class, name = counted(respond=respond)
    url = route(view_class)
    maxmemory = redis_client.config_get("maxmemory")["maxmemory"]
    policy = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        answer = await get(url, headers=headers)
    finally:
        redis_client.config_set("maxmemory", maxmemory)
        redis_client.config_set("maxmemory-policy", policy)
    assert (answer.status_code, answer["X-Cache"]) == (status, "BYPASS")
    assert runs[name] == 1


async def test_a_handler_reading_request_headers_gets_no_preconditions_on_a_miss() -> None:
    """request.headers is built once from META; when an earlier stage built it (the
    rate limit's header key here, or a middleware), the handler must still not see
    the preconditions on a miss, else its own 304 leaves the entry empty."""
    respond = _validating('"v1"')
    name = "HeaderKeyed"
    runs[name] = 0

    async def get_(self: Any, request: HttpRequest) -> HttpResponse:
        runs[name] += 1
        return await respond(self, request, runs[name])

    view_class = type(
        name,
        (AsyncRateLimitMixin, AsyncCacheMixin, AsyncView),
        {"get": get_, "rate_limit": "100/h", "rate_limit_key": "header:X-API-Key"},
    )
    url = route(view_class)
    headers = {"If-None-Match": '"v1"', "X-API-Key": "k"}
    answers = [await get(url, headers=headers) for _ in range(3)]
    assert [(a.status_code, a["X-Cache"]) for a in answers] == [(304, "MISS")] + [(304, "HIT")] * 2
    assert runs[name] == 1


async def test_a_cached_412_says_what_the_json_apis_does() -> None:
    """One detail for a failed precondition, from a hit or from the API's own check."""
    from django_async_cbv.api.conditional import PRECONDITION_FAILED_DETAIL

    view_class, _ = counted(respond=_validating('"v1"'))
    url = route(view_class)
    for _ in range(2):  # a miss, then a hit
        refused = await get(url, headers={"If-Match": '"other"'})
        assert refused.status_code == 412
        assert refused.json()["detail"] == PRECONDITION_FAILED_DETAIL


# ------------------------------------------------------------------ the not-storable mark


@pytest.mark.parametrize("alias", ALIASES)
async def test_a_stored_response_ends_the_not_storable_mark(alias: str, clock: FakeClock) -> None:
    """A failed answer marks the URL (its requests then run uncoalesced); the stored
    answer after it ends the mark, so once that entry expires a burst runs once."""
    gate = asyncio.Event()

    async def respond(self: Any, request: HttpRequest, n: int) -> HttpResponse:
        if n == 1:
            return HttpResponse("unavailable", status=503)
        if n >= 3:
            entered[type(self).__name__].set()
            await gate.wait()
        return HttpResponse(f"run {n}", headers={"Cache-Control": "max-age=2"})

    view_class, name = counted(cache_alias=alias, respond=respond)
    url = route(view_class)
    assert (await get(url)).status_code == 503  # not stored: the URL is marked
    assert (await get(url))["X-Cache"] == "MISS"  # stored
    assert (await get(url))["X-Cache"] == "HIT"
    clock.now += 3  # that entry is no longer fresh: a burst of misses
    client = AsyncClient()
    tasks = [asyncio.ensure_future(get(url, client)) for _ in range(5)]
    await entered[name].wait()
    for _ in range(20):  # let the other requests reach their await points
        await asyncio.sleep(0)
    gate.set()
    responses = await asyncio.gather(*tasks)
    assert runs[name] == 3
    assert sorted(r["X-Cache"] for r in responses) == ["HIT"] * 4 + ["MISS"]
