"""CircuitBreaker on Redis: one state for every breaker of a name, on the suite's real Redis.

Two breaker objects of one name stand for two processes here (each has its own
memory; only Redis is shared); tests/test_breaker_processes.py does it with real
processes. Breakers get a fake clock, which the scripts then use instead of Redis
``TIME``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.checks import Error
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncRequestFactory, override_settings

from django_async_cbv import (
    AsyncCircuitBreakerMixin,
    AsyncView,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    UpstreamError,
)
from django_async_cbv._redis import health as _store_health
from django_async_cbv.checks import check_breakers, check_settings
from django_async_cbv.signals import circuit_state_changed
from tests.test_breaker import FakeClock, Upstream

pytestmark = pytest.mark.redis

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_names = itertools.count()


@pytest.fixture(autouse=True)
def fresh_health() -> Iterator[None]:
    _store_health.forget()
    yield
    _store_health.forget()
    # The system checks see every live breaker: leave none on an alias that the
    # suite's own CACHES lacks.
    gc.collect()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def name() -> str:
    return f"shared-{next(_names)}"


def pair(
    name: str, clock: FakeClock, storage: str = "redis", **options: Any
) -> tuple[CircuitBreaker, CircuitBreaker]:
    """Two breakers of one name on one Redis: two processes' views of one circuit."""
    return (
        CircuitBreaker(name, storage=storage, clock=clock, **options),
        CircuitBreaker(name, storage=storage, clock=clock, **options),
    )


async def trip(breaker: CircuitBreaker, times: int | None = None) -> None:
    for _ in range(breaker.failure_threshold if times is None else times):
        with pytest.raises(OSError, match="down"):
            await breaker.call(Upstream().fail, OSError("down"))


def stored(client: redis.Redis, name: str) -> dict[str, str]:
    """The circuit's hash in Redis (found by its hash-tagged name)."""
    keys = [k.decode() for k in client.scan_iter(match=f"*{{{name}}}")]
    assert len(keys) == 1, keys
    return {k.decode(): v.decode() for k, v in client.hgetall(keys[0]).items()}


@pytest.mark.parametrize("storage", ["redis", "redis_builtin"])
async def test_one_breaker_opens_the_circuit_for_the_other(
    storage: str, name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    """Failures through A open it; B then calls nothing, and says when to retry."""
    a, b = pair(name, clock, storage, failure_threshold=3, recovery_timeout=30)
    await trip(a, 2)
    await trip(b, 1)  # consecutive failures add up across processes
    assert stored(redis_client, name)["s"] == "1"
    upstream = Upstream()
    clock.advance(12.5)
    for breaker in (a, b):
        with pytest.raises(CircuitOpenError) as info:
            await breaker.call(upstream.ok)
        assert info.value.retry_after == 18
    assert upstream.calls == 0
    assert b.state is OPEN
    assert await a.current_state() is OPEN


async def test_creating_a_breaker_never_resets_the_shared_state(
    name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    a = CircuitBreaker(name, storage="redis", clock=clock, failure_threshold=1)
    await trip(a)
    before = stored(redis_client, name)
    late = CircuitBreaker(name, storage="redis", clock=clock, failure_threshold=1)
    assert stored(redis_client, name) == before
    assert await late.current_state() is OPEN
    with pytest.raises(CircuitOpenError):
        await late.call(Upstream().ok)


async def test_fifty_callers_over_two_breakers_make_max_calls_in_half_open(
    name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=5, half_open_max_calls=2)
    await trip(a)
    clock.advance(5)
    upstream = Upstream()
    tasks = [asyncio.ensure_future((a, b)[i % 2].call(upstream.held)) for i in range(50)]
    _done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    refused = [t for t in tasks if t.done()]
    while len(refused) < 48:  # each refusal is one round trip: wait for all of them
        await asyncio.wait([t for t in tasks if not t.done()], return_when=asyncio.FIRST_COMPLETED)
        refused = [t for t in tasks if t.done()]
    assert len(refused) == 48
    assert all(isinstance(t.exception(), CircuitOpenError) for t in refused)
    assert upstream.calls == 2
    assert stored(redis_client, name)["s"] == "2"
    upstream.release.set()
    assert [await t for t in tasks if t not in refused] == ["probe", "probe"]
    assert upstream.calls == 2
    assert await b.current_state() is CLOSED
    assert stored(redis_client, name)["s"] == "0"


async def test_a_stuck_probe_elsewhere_does_not_wedge_half_open(
    name: str, clock: FakeClock
) -> None:
    """A probe that never reports (its process died) holds its slot only until its
    lease expires (the breaker's timeout; else one recovery period)."""
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=10)
    a._sleep = never  # a process that died renews nothing
    await trip(a)
    clock.advance(10)
    stuck = Upstream()
    probe = asyncio.ensure_future(a.call(stuck.held))
    await stuck.started.wait()
    clock.advance(9)
    with pytest.raises(CircuitOpenError):
        await b.call(Upstream().ok)
    clock.advance(1)
    assert await b.call(Upstream().ok) == "ok"
    assert await b.current_state() is CLOSED
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe


async def never(delay: float) -> None:
    await asyncio.Event().wait()


class Renewals:
    """An injected sleep for lease renewals: each renewal waits for ``tick``."""

    def __init__(self) -> None:
        self.tick = asyncio.Event()
        self.waiting = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.waiting.set()
        await self.tick.wait()
        self.tick.clear()

    async def renew(self) -> None:
        """Let the renewal task renew once, and wait until it is asleep again."""
        async with asyncio.timeout(5):  # a safety net: no renewal task would hang here
            await self.waiting.wait()
            self.waiting.clear()
            self.tick.set()
            await self.waiting.wait()


async def test_a_live_probe_renews_its_lease(name: str, clock: FakeClock) -> None:
    """A probe running longer than its lease (no timeout: one recovery period) keeps
    its slot while its process renews the lease: no second probe runs beside it."""
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=10)
    renewals = Renewals()
    a._sleep = renewals
    await trip(a)
    clock.advance(10)
    slow = Upstream()
    probe = asyncio.ensure_future(a.call(slow.held))
    await slow.started.wait()
    clock.advance(9)
    await renewals.renew()  # the lease now ends at +19
    clock.advance(5)  # past the lease's first expiry (+10)
    other = Upstream()
    with pytest.raises(CircuitOpenError):
        await b.call(other.ok)
    assert other.calls == 0
    slow.release.set()
    assert await probe == "probe"
    assert await b.current_state() is CLOSED


async def test_a_raising_receiver_does_not_leak_the_shared_probe_slot(
    name: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=2)

    def receiver(sender: Any, old_state: Any, new_state: Any, **_: Any) -> None:
        if sender is a and new_state is HALF_OPEN:
            raise RuntimeError("metrics backend down")

    await trip(a)
    clock.advance(2)
    circuit_state_changed.connect(receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="django_async_cbv"):
            assert await a.call(Upstream().ok) == "ok"
    finally:
        circuit_state_changed.disconnect(receiver)
    assert await b.current_state() is CLOSED
    assert any("circuit_state_changed receiver" in r.getMessage() for r in caplog.records)


async def test_a_caller_cancelled_while_a_receiver_runs_frees_the_shared_slot(
    name: str, clock: FakeClock
) -> None:
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=2)
    entered = asyncio.Event()

    async def receiver(sender: Any, old_state: Any, new_state: Any, **_: Any) -> None:
        if sender is a and new_state is HALF_OPEN:
            entered.set()
            await asyncio.Event().wait()

    await trip(a)
    clock.advance(2)
    upstream = Upstream()
    circuit_state_changed.connect(receiver)
    try:
        caller = asyncio.ensure_future(a.call(upstream.ok))
        await entered.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
    finally:
        circuit_state_changed.disconnect(receiver)
    await asyncio.gather(*a._background)  # the release runs in a task of its own
    assert upstream.calls == 0
    assert await b.call(upstream.ok) == "ok"  # no time passed: the slot was released
    assert await b.current_state() is CLOSED


async def test_a_probe_from_before_a_flush_does_not_count_after_it(
    name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    """FLUSHALL (or a restart) while a probe runs resets the circuit; epochs and lease
    ids start again, but the old probe's outcome matches nothing in the new state."""
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=1)
    a._sleep = b._sleep = never
    await trip(a)
    clock.advance(1)
    old = Upstream()
    old_probe = asyncio.ensure_future(a.call(old.held))  # epoch 2, lease 1
    await old.started.wait()
    redis_client.flushdb()
    assert await b.current_state() is CLOSED
    await trip(b)
    clock.advance(1)
    new = Upstream()
    new_probe = asyncio.ensure_future(b.call(new.held))  # epoch 2, lease 1 again
    await new.started.wait()
    old_probe.cancel()  # frees nothing of the new state...
    with pytest.raises(asyncio.CancelledError):
        await old_probe
    await asyncio.gather(*a._background)
    with pytest.raises(CircuitOpenError):  # ...the new probe still holds the only slot
        await a.call(Upstream().ok)
    new.release.set()
    await new_probe
    assert await a.current_state() is CLOSED


async def test_a_stale_failure_from_before_a_flush_does_not_reopen(
    name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=1)
    a._sleep = b._sleep = never
    await trip(a)
    clock.advance(1)
    old = Upstream()
    old_probe = asyncio.ensure_future(a.call(old.fail_when_released))
    await old.started.wait()
    redis_client.flushdb()
    await trip(b)
    clock.advance(1)
    new = Upstream()
    new_probe = asyncio.ensure_future(b.call(new.held))
    await new.started.wait()
    old.release.set()
    with pytest.raises(OSError, match="late failure"):
        await old_probe
    assert await b.current_state() is HALF_OPEN  # the stale failure did not reopen it
    new.release.set()
    await new_probe
    assert await b.current_state() is CLOSED


async def test_stats_report_the_shared_consecutive_failures(name: str, clock: FakeClock) -> None:
    a, b = pair(name, clock, failure_threshold=5)
    await trip(a, 3)
    assert a.stats.consecutive_failures == 3
    await b.current_state()
    assert b.stats.consecutive_failures == 3
    await b.call(Upstream().ok)
    assert b.stats.consecutive_failures == 0


async def test_a_cancelled_probe_frees_its_shared_slot(name: str, clock: FakeClock) -> None:
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=1)
    await trip(a)
    clock.advance(1)
    held = Upstream()
    probe = asyncio.ensure_future(a.call(held.held))
    await held.started.wait()
    with pytest.raises(CircuitOpenError):
        await b.call(Upstream().ok)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert await b.call(Upstream().ok) == "ok"  # no time passed: the slot was released
    assert b.state is CLOSED


async def test_outcomes_from_an_earlier_epoch_do_not_count(name: str, clock: FakeClock) -> None:
    """A slow call admitted while CLOSED that fails in HALF_OPEN does not reopen it."""
    a, b = pair(name, clock, failure_threshold=1, recovery_timeout=1)
    late = asyncio.Event()
    started = asyncio.Event()

    async def slow_failure() -> None:
        started.set()
        await late.wait()
        raise OSError("late")

    slow = asyncio.ensure_future(a.call(slow_failure))
    await started.wait()
    await trip(b)
    clock.advance(1)
    probe = Upstream()
    probe_task = asyncio.ensure_future(b.call(probe.held))
    await probe.started.wait()
    late.set()
    with pytest.raises(OSError, match="late"):
        await slow
    assert await a.current_state() is HALF_OPEN
    probe.release.set()
    await probe_task
    assert await a.current_state() is CLOSED


async def test_reset_and_signals_come_from_the_process_that_made_the_change(
    name: str, clock: FakeClock
) -> None:
    a, b = pair(name, clock, failure_threshold=1)
    seen: list[tuple[Any, CircuitState, CircuitState]] = []

    async def receiver(sender: Any, old_state: Any, new_state: Any, **_: Any) -> None:
        if sender in (a, b):
            seen.append((sender, old_state, new_state))

    circuit_state_changed.connect(receiver)
    try:
        await trip(a)
        await b.reset()
    finally:
        circuit_state_changed.disconnect(receiver)
    assert seen == [(a, CLOSED, OPEN), (b, OPEN, CLOSED)]
    assert await a.current_state() is CLOSED


async def test_first_failures_admitted_together_all_count(
    name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    """Two processes' first calls, admitted before any state exists, both fail: both count."""
    a, b = pair(name, clock, failure_threshold=2)
    inside = 0
    both_inside = asyncio.Event()
    release = asyncio.Event()

    async def failing() -> None:
        nonlocal inside
        inside += 1
        if inside == 2:
            both_inside.set()
        await release.wait()
        raise OSError("down")

    calls = [asyncio.ensure_future(breaker.call(failing)) for breaker in (a, b)]
    await both_inside.wait()  # both admitted while the circuit had no state
    release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert stored(redis_client, name)["s"] == "1"  # two failures: open


async def test_a_closed_success_writes_nothing(
    name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    """Closed with no pending failures: one script per call, no write to Redis."""
    a = CircuitBreaker(name, storage="redis", clock=clock)
    for _ in range(5):
        await a.call(Upstream().ok)
    assert list(redis_client.scan_iter(match=f"*{{{name}}}*")) == []
    await trip(a, 1)
    assert stored(redis_client, name)["f"] == "1"
    await a.call(Upstream().ok)
    assert stored(redis_client, name)["f"] == "0"


# -- Redis down --------------------------------------------------------------------------------


class Guarded(AsyncCircuitBreakerMixin, AsyncView):
    runs = 0

    async def get(self, request: HttpRequest) -> HttpResponse:
        type(self).runs += 1
        if request.GET.get("fail"):
            raise UpstreamError("upstream down", status=503)
        return JsonResponse({"ok": True})


async def test_redis_stopped_mid_test_degrades_to_per_process_state(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With its Redis stopped, a breaker keeps answering from this process's own state:
    no 5xx of its own, one warning per second at most, and it still opens on failures."""
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    try:
        caches = {"private": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": server.url}}
        breaker = CircuitBreaker(name, storage="private", failure_threshold=3)
        view = type("G", (Guarded,), {"circuit_breaker": breaker}).as_view()
        factory = AsyncRequestFactory()
        with override_settings(CACHES=caches):
            assert (await view(factory.get("/"))).status_code == 200
            server.stop()
            with caplog.at_level(logging.WARNING, logger="django_async_cbv"):
                statuses = [(await view(factory.get("/"))).status_code for _ in range(20)]
                assert statuses == [200] * 20
                failing = [
                    (await view(factory.get("/", {"fail": "1"}))).status_code for _ in range(4)
                ]
        assert failing == [502, 502, 502, 503]  # the per-process circuit opened
        assert breaker.state is OPEN
        warnings = [r for r in caplog.records if "using this process's own state" in r.message]
        assert 1 <= len(warnings) <= 3  # rate-limited, not one per request
        assert "private" in warnings[0].message
    finally:
        server.stop()


async def test_a_hung_redis_is_skipped_after_two_timeouts(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that accepts connections and never answers (stopped with SIGSTOP)
    costs two socket timeouts, not one per call: then the breaker skips it, on its
    own state, until a probe a second later finds it answering (or not)."""
    health_clock = FakeClock()
    monkeypatch.setattr(_store_health, "_now", health_clock)
    connections = 0

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    caches = {
        "hung": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_TIMEOUT": 0.05, "SOCKET_CONNECT_TIMEOUT": 0.05},
        }
    }
    try:
        with override_settings(CACHES=caches), caplog.at_level(logging.WARNING):
            breaker = CircuitBreaker(name, storage="hung")
            for _ in range(10):
                assert await breaker.call(Upstream().ok) == "ok"
            assert connections == 2  # two timeouts, then skipped
            health_clock.advance(1)  # PROBE_INTERVAL: one call probes it again
            for _ in range(5):
                assert await breaker.call(Upstream().ok) == "ok"
            assert connections == 3
            from django_async_cbv import aclose

            await aclose()
    finally:
        server.close()
    assert any("using this process's own state" in r.getMessage() for r in caplog.records)


# -- checks ------------------------------------------------------------------------------------


def test_e014_shared_state_needs_a_redis_cache(name: str) -> None:
    breakers = {name: {"storage": "locmem"}}
    with override_settings(ASYNC_CBV={"CIRCUIT_BREAKERS": breakers}):
        assert [m.id for m in check_settings()] == ["django_async_cbv.E014"]
    breaker = CircuitBreaker(name, storage="locmem")
    messages = [
        m for m in check_breakers() if m.id == "django_async_cbv.E014" and m.obj.name == name
    ]
    assert [m.obj for m in messages] == [breaker]
    assert "not a Redis cache" in messages[0].msg


def test_e013_one_name_two_configurations(name: str) -> None:
    first = CircuitBreaker(name, failure_threshold=3, storage="redis")
    same = CircuitBreaker(name, failure_threshold=3, storage="redis")
    assert not [m for m in check_breakers() if m.id == "django_async_cbv.E013"]
    other = CircuitBreaker(name, failure_threshold=4, storage="redis")
    messages = [m for m in check_breakers() if m.id == "django_async_cbv.E013"]
    assert len(messages) == 1
    assert isinstance(messages[0], Error)
    assert name in messages[0].msg
    del other
    assert not [m for m in check_breakers() if m.id == "django_async_cbv.E013"]
    with override_settings(ASYNC_CBV={"CIRCUIT_BREAKERS": {name: {"failure_threshold": 5}}}):
        assert [m.id for m in check_breakers() if name in m.msg] == ["django_async_cbv.E013"]
    del first, same


def test_redis_keys_are_hash_tagged_and_namespaced(
    name: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    breaker = CircuitBreaker(name, storage="redis", clock=clock, failure_threshold=1)

    async def go() -> None:
        await trip(breaker)

    asyncio.run(go())
    keys = sorted(k.decode() for k in redis_client.scan_iter())
    assert keys == [f":1:async_cbv:cb:{{{name}}}"]
    assert json.dumps(stored(redis_client, name))  # plain strings
    assert redis_client.pttl(keys[0]) > 0
