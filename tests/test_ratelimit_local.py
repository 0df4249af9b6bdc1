"""Sliding-window and token-bucket limits in local memory (Django's default cache).

The local implementation mirrors the Redis scripts: for any sequence of checks on a
fake clock it answers exactly what the scripts answer on a real Redis (a property
test). Through views, a fresh project's ``LocMemCache`` runs every algorithm with the
default settings, exactly under concurrent requests (per process, as documented).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis.asyncio
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_async_cbv import AsyncRateLimitMixin, AsyncView
from django_async_cbv.ratelimit.local_limiter import local_check
from django_async_cbv.ratelimit.rates import parse_rates
from django_async_cbv.ratelimit.redis_limiter import RedisLimiter

S = 1_000_000
T0 = 1_700_006_400 * S
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

_RATES = st.lists(
    st.tuples(st.integers(1, 4), st.integers(1, 5)), min_size=1, max_size=2, unique=True
).map(lambda pairs: [f"{count}/{period}s" for count, period in pairs])
_STEPS = st.lists(st.integers(-S, 3 * S), min_size=1, max_size=25)  # some clock steps back


@pytest.mark.redis
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(algorithm=st.sampled_from(["sliding_window", "token_bucket"]), rates=_RATES, steps=_STEPS)
async def test_local_memory_answers_what_the_redis_scripts_answer(
    async_redis_client: redis.asyncio.Redis, algorithm: str, rates: list[str], steps: list[int]
) -> None:
    parsed = parse_rates(rates)
    identity = uuid.uuid4().hex  # a fresh budget per example, on both sides
    cache = LocMemCache(identity, {})
    limiter = RedisLimiter()
    now = T0
    for step in steps:
        now += step
        remote = await limiter.check(
            async_redis_client, "rl:local-eq", identity, parsed, algorithm, now_us=now
        )
        local = local_check(cache, identity, f"k:{identity}", parsed, algorithm, now_us=now)
        assert local == remote, (now - T0, local, remote)


def limited_view(algorithm: str, rate: str = "5/m") -> Any:
    class Limited(AsyncRateLimitMixin, AsyncView):
        rate_limit = rate
        rate_limit_algorithm = algorithm
        rate_limit_scope = f"local-{uuid.uuid4().hex}"

        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    return Limited.as_view()


@override_settings(CACHES=LOCMEM)
@pytest.mark.parametrize("algorithm", ["sliding_window", "token_bucket", "fixed_window"])
async def test_the_default_cache_runs_every_algorithm_exactly_under_concurrency(
    algorithm: str,
) -> None:
    view = limited_view(algorithm, "20/h")
    factory = AsyncRequestFactory()

    async def one() -> int:
        response = await view(factory.get("/", REMOTE_ADDR="198.51.100.9"))
        return response.status_code

    # Tasks on the loop and requests from worker threads (a sync caller) at once.
    statuses = await asyncio.gather(
        *(one() for _ in range(40)),
        *(sync_to_async(_sync_call, thread_sensitive=False)(view) for _ in range(20)),
    )
    assert statuses.count(200) == 20
    assert statuses.count(429) == 40


def _sync_call(view: Any) -> int:
    from asgiref.sync import async_to_sync

    factory = AsyncRequestFactory()
    response = async_to_sync(view)(factory.get("/", REMOTE_ADDR="198.51.100.9"))
    return int(response.status_code)


@override_settings(CACHES=LOCMEM)
async def test_the_default_algorithm_works_on_a_fresh_projects_cache() -> None:
    """startproject's settings (no CACHES: local memory) and the default algorithm."""
    view = limited_view("sliding_window", "2/m")
    factory = AsyncRequestFactory()
    answers = [await view(factory.get("/", REMOTE_ADDR="192.0.2.1")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0]["RateLimit"] == '"2/m";r=1;t=60'
    assert answers[2]["Retry-After"] == "60"
    caches["default"].clear()  # the budget lives in the cache: clearing it resets it
    assert (await view(factory.get("/", REMOTE_ADDR="192.0.2.1"))).status_code == 200


@pytest.mark.redis
async def test_a_clock_step_backwards_answers_what_the_redis_script_answers(
    async_redis_client: redis.asyncio.Redis,
) -> None:
    """After the host's clock steps back, the log stays in time order, as Redis's is."""
    parsed = parse_rates(["2/m"])
    identity = uuid.uuid4().hex
    cache = LocMemCache(identity, {})
    limiter = RedisLimiter()
    answers = []
    for now in (T0 + 100 * S, T0 + 90 * S, T0 + 95 * S):  # the second check is 10 s earlier
        remote = await limiter.check(
            async_redis_client, "rl:local-back", identity, parsed, "sliding_window", now_us=now
        )
        local = local_check(cache, identity, f"k:{identity}", parsed, "sliding_window", now_us=now)
        answers.append((local, remote))
    assert [local for local, _ in answers] == [remote for _, remote in answers]
    # Refused at T0+95 s: the oldest entry (T0+90 s) frees a slot after 55 s, and the
    # newest (T0+100 s) restores the full count after 65 s.
    assert answers[2][0].retry_after == 55
    assert answers[2][0].reset == (65,)


def _fastest_check(cache: LocMemCache, key: str, rates: Any, now: int) -> float:
    fastest = float("inf")
    for i in range(20):
        started = time.perf_counter()
        local_check(cache, "cost", key, rates, "sliding_window", now_us=now + i)
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


def test_a_long_sliding_log_costs_a_check_about_what_a_short_one_costs() -> None:
    """A large count (say 100000/d) must not make each check (on the event loop's
    thread, under the process's lock) walk and pickle its log element by element."""
    rates = parse_rates(["20000/d"])
    cache = LocMemCache(uuid.uuid4().hex, {"OPTIONS": {"MAX_ENTRIES": 1000}})
    for i in range(10_000):
        local_check(cache, "cost", "long", rates, "sliding_window", now_us=T0 + i)
    long = _fastest_check(cache, "long", rates, T0 + 10_000)
    short = _fastest_check(cache, "short", rates, T0 + 10_000)
    # Element by element, 10000 entries cost about 50 times a short log; as one block
    # of bytes, a few times at most.
    assert long < 15 * short, (long, short)
