"""CircuitBreaker with per-process state: transitions, probes, epochs, signals, threads."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from django_async_cbv import (
    AsyncCircuitBreakerMixin,
    AsyncView,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ProblemError,
    UpstreamError,
    UpstreamTimeout,
    get_breaker,
)
from django_async_cbv.checks import check_views
from django_async_cbv.signals import circuit_state_changed

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
PROBLEM_JSON = "application/problem+json"
_names = itertools.count()


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: Callable[[], float] | None = None, **options: Any) -> CircuitBreaker:
    """A breaker with a name of its own (no two tests share a configuration)."""
    return CircuitBreaker(f"test-{next(_names)}", clock=clock, **options)


class Upstream:
    """A stand-in for an upstream service that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def ok(self, value: Any = "ok") -> Any:
        self.calls += 1
        return value

    async def fail(self, exc: BaseException | None = None) -> Any:
        self.calls += 1
        raise exc if exc is not None else OSError("connection refused")

    async def fail_when_released(self) -> Any:
        """Fails once ``release`` is set."""
        self.calls += 1
        self.started.set()
        await self.release.wait()
        raise OSError("late failure")

    async def held(self) -> str:
        """Succeeds once ``release`` is set."""
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return "probe"


async def trip(breaker: CircuitBreaker, times: int | None = None) -> None:
    """Fail ``times`` calls (default: the failure threshold)."""
    for _ in range(breaker.failure_threshold if times is None else times):
        with pytest.raises(OSError, match="down"):
            await breaker.call(Upstream().fail, OSError("down"))


# -- closed -> open -> half-open -> closed ------------------------------------------------------


async def test_consecutive_failures_open_the_circuit(clock: FakeClock) -> None:
    """failure_threshold consecutive failures open it; a success in between resets the count."""
    breaker = make(clock, failure_threshold=3)
    upstream = Upstream()
    await trip(breaker, 2)
    assert await breaker.call(upstream.ok) == "ok"
    await trip(breaker, 2)
    assert breaker.state is CLOSED
    await trip(breaker, 1)
    assert breaker.state is OPEN


async def test_open_circuit_calls_nothing_and_says_when_to_retry(clock: FakeClock) -> None:
    """While open: CircuitOpenError at once, 0 calls, retry_after rounded up and >= 1."""
    breaker = make(clock, failure_threshold=1, recovery_timeout=30)
    await trip(breaker)
    upstream = Upstream()
    clock.advance(10.5)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(upstream.ok)
    assert info.value.retry_after == 20  # 19.5 rounded up
    clock.advance(19.4)
    for _ in range(50):
        with pytest.raises(CircuitOpenError) as info:
            await breaker.call(upstream.ok)
        assert info.value.retry_after == 1
    assert upstream.calls == 0
    assert breaker.stats.rejections == 51


async def test_fifty_concurrent_callers_in_half_open_make_max_calls(clock: FakeClock) -> None:
    """50 callers at once in half-open: exactly half_open_max_calls reach the upstream."""
    breaker = make(clock, failure_threshold=1, recovery_timeout=5, half_open_max_calls=3)
    await trip(breaker)
    clock.advance(5)
    upstream = Upstream()
    tasks = [asyncio.ensure_future(breaker.call(upstream.held)) for _ in range(50)]
    refused = await asyncio.gather(*tasks[3:], return_exceptions=True)
    assert all(isinstance(r, CircuitOpenError) and r.retry_after >= 1 for r in refused)
    assert upstream.calls == 3
    assert breaker.state is HALF_OPEN
    upstream.release.set()
    assert await asyncio.gather(*tasks[:3]) == ["probe"] * 3
    assert upstream.calls == 3
    assert breaker.state is CLOSED


async def test_success_threshold_probe_successes_close_it(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=1, success_threshold=2)
    await trip(breaker)
    clock.advance(1)
    upstream = Upstream()
    await breaker.call(upstream.ok)
    assert breaker.state is HALF_OPEN
    await breaker.call(upstream.ok)
    assert breaker.state is CLOSED


async def test_a_probe_failure_reopens_for_a_new_recovery_period(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=10, success_threshold=2)
    await trip(breaker)
    clock.advance(10)
    await breaker.call(Upstream().ok)
    await trip(breaker, 1)
    assert breaker.state is OPEN
    clock.advance(9.5)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(Upstream().ok)
    assert info.value.retry_after == 1
    clock.advance(0.5)
    await breaker.call(Upstream().ok)
    assert breaker.state is HALF_OPEN  # the earlier probe success did not carry over


# -- probe slots ------------------------------------------------------------------------------


async def test_a_cancelled_probe_frees_its_slot_without_counting(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=1)
    await trip(breaker)
    clock.advance(1)
    upstream = Upstream()
    probe = asyncio.ensure_future(breaker.call(upstream.held))
    await upstream.started.wait()
    with pytest.raises(CircuitOpenError):
        await breaker.call(upstream.ok)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state is HALF_OPEN  # cancelling is no failure
    assert await breaker.call(upstream.ok) == "ok"  # the slot is free again
    assert breaker.state is CLOSED


async def test_a_probe_keeps_its_slot_for_as_long_as_it_runs(clock: FakeClock) -> None:
    """Without a timeout, a probe outliving recovery_timeout keeps its slot: no second
    probe runs beside it (half_open_max_calls holds); its end frees the slot."""
    breaker = make(clock, failure_threshold=1, recovery_timeout=20)
    await trip(breaker)
    clock.advance(20)
    slow = Upstream()
    probe = asyncio.ensure_future(breaker.call(slow.held))
    await slow.started.wait()
    clock.advance(1000)
    other = Upstream()
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            await breaker.call(other.ok)
    assert other.calls == 0
    slow.release.set()
    assert await probe == "probe"
    assert breaker.state is CLOSED


async def test_a_probe_cancelled_by_the_timeout_frees_its_slot(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=20, timeout=0.01)
    await trip(breaker)
    clock.advance(20)
    with pytest.raises(TimeoutError):
        await breaker.call(Upstream().held)
    assert breaker.state is OPEN  # the timed-out probe was a failure
    clock.advance(20)
    assert await breaker.call(Upstream().ok) == "ok"
    assert breaker.state is CLOSED


# -- what counts ------------------------------------------------------------------------------


async def test_timeout_cancels_the_call_and_counts_a_failure() -> None:
    breaker = make(failure_threshold=2, timeout=0.01)
    cancelled = 0

    async def hangs() -> None:
        nonlocal cancelled
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise

    for _ in range(2):
        with pytest.raises(TimeoutError, match=r"within 0\.01s"):
            await breaker.call(hangs)
    assert cancelled == 2
    assert breaker.state is OPEN
    assert breaker.stats.timeouts == 2


async def test_a_timeout_error_of_the_call_itself_is_an_ordinary_failure() -> None:
    breaker = make(failure_threshold=1, timeout=60)
    with pytest.raises(TimeoutError, match="upstream"):
        await breaker.call(Upstream().fail, TimeoutError("upstream"))
    assert breaker.state is OPEN
    assert breaker.stats.timeouts == 0


async def test_ignored_exceptions_are_neither_success_nor_failure(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2, recovery_timeout=1, ignored_exceptions=(KeyError,))
    upstream = Upstream()
    await trip(breaker, 1)
    with pytest.raises(KeyError):
        await breaker.call(upstream.fail, KeyError("x"))
    await trip(breaker, 1)  # the ignored one did not reset the count
    assert breaker.state is OPEN
    clock.advance(1)
    with pytest.raises(KeyError):
        await breaker.call(upstream.fail, KeyError("x"))
    assert breaker.state is HALF_OPEN  # not closed by it, and its slot is free again
    await breaker.call(upstream.ok)
    assert breaker.state is CLOSED
    assert breaker.stats.ignored == 2


async def test_other_exceptions_count_as_successes() -> None:
    """An exception outside failure_exceptions means the service answered."""
    breaker = make(failure_threshold=2, failure_exceptions=(OSError,))
    await trip(breaker, 1)
    with pytest.raises(ValueError, match="bad json"):
        await breaker.call(Upstream().fail, ValueError("bad json"))
    await trip(breaker, 1)
    assert breaker.state is CLOSED


async def test_an_inner_breakers_refusal_is_not_a_failure() -> None:
    inner = make(failure_threshold=1)
    outer = make(failure_threshold=1)
    await trip(inner)
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            await outer.call(inner.call, Upstream().ok)
    assert outer.state is CLOSED


async def test_outcomes_of_calls_begun_in_an_earlier_state_are_not_probe_results(
    clock: FakeClock,
) -> None:
    """A slow call begun while CLOSED and ending in HALF_OPEN does not close or reopen it."""
    breaker = make(clock, failure_threshold=1, recovery_timeout=1)
    slow_ok, slow_bad = Upstream(), Upstream()
    fails = asyncio.Event()

    async def fails_later() -> None:
        slow_bad.calls += 1
        slow_bad.started.set()
        await fails.wait()
        raise OSError("late")

    ok_task = asyncio.ensure_future(breaker.call(slow_ok.held))
    bad_task = asyncio.ensure_future(breaker.call(fails_later))
    await slow_ok.started.wait()
    await slow_bad.started.wait()
    await trip(breaker)
    clock.advance(1)
    probe = Upstream()
    probe_task = asyncio.ensure_future(breaker.call(probe.held))
    await probe.started.wait()
    assert breaker.state is HALF_OPEN
    slow_ok.release.set()
    assert await ok_task == "probe"
    fails.set()
    with pytest.raises(OSError, match="late"):
        await bad_task
    assert breaker.state is HALF_OPEN  # neither outcome counted
    probe.release.set()
    await probe_task
    assert breaker.state is CLOSED


async def test_reset_closes_and_calls_in_flight_no_longer_count(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1)
    slow = Upstream()
    task = asyncio.ensure_future(breaker.call(slow.held))
    await slow.started.wait()
    await trip(breaker)
    await breaker.reset()
    assert breaker.state is CLOSED
    assert await breaker.current_state() is CLOSED
    slow.release.set()
    await task
    assert breaker.state is CLOSED


async def test_current_state_makes_the_due_transition(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=3)
    await trip(breaker)
    assert await breaker.current_state() is OPEN
    clock.advance(3)
    assert breaker.state is OPEN  # last seen: no transition without a look
    assert await breaker.current_state() is HALF_OPEN
    assert breaker.state is HALF_OPEN


# -- the three ways to use it -----------------------------------------------------------------


async def test_decorator_and_async_with(clock: FakeClock) -> None:
    """@breaker and ``async with breaker`` share the breaker's state with call()."""
    breaker = make(clock, failure_threshold=2)
    upstream = Upstream()

    @breaker
    async def fetch(value: int) -> int:
        return await upstream.ok(value)

    assert await fetch(7) == 7
    assert fetch.__name__ == "fetch"
    async with breaker:
        await upstream.ok()
    with pytest.raises(OSError, match="x"):
        async with breaker:
            raise OSError("x")
    await trip(breaker, 1)
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        async with breaker:
            await upstream.ok()  # never runs
    with pytest.raises(CircuitOpenError):
        await fetch(1)
    assert upstream.calls == 2


def test_decorating_a_plain_function_is_refused() -> None:
    with pytest.raises(TypeError, match="async def"):
        make()(lambda: None)


async def test_async_with_timeout() -> None:
    breaker = make(failure_threshold=1, timeout=0.01)
    with pytest.raises(TimeoutError):
        async with breaker:
            await asyncio.Event().wait()
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"half_open_max_calls": True}, "half_open_max_calls"),
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"failure_exceptions": (int,)}, "failure_exceptions"),
        ({"storage": ""}, "storage"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        make(**options)


# -- signals, logs, stats ---------------------------------------------------------------------


async def test_every_transition_is_signalled_to_sync_and_async_receivers(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=1)
    sync_seen: list[tuple[CircuitState, CircuitState]] = []
    async_seen: list[tuple[CircuitState, CircuitState]] = []
    threads: set[int] = set()

    def sync_receiver(
        sender: Any, old_state: CircuitState, new_state: CircuitState, **_: Any
    ) -> None:
        if sender is breaker:
            threads.add(threading.get_ident())
            sync_seen.append((old_state, new_state))

    async def async_receiver(
        sender: Any, old_state: CircuitState, new_state: CircuitState, **_: Any
    ) -> None:
        if sender is breaker:
            async_seen.append((old_state, new_state))

    circuit_state_changed.connect(sync_receiver, weak=False)
    circuit_state_changed.connect(async_receiver, weak=False)
    try:
        with caplog.at_level(logging.INFO, logger="django_async_cbv"):
            await trip(breaker)
            clock.advance(1)
            await trip(breaker, 1)
            clock.advance(1)
            await breaker.call(Upstream().ok)
            await trip(breaker)
            await breaker.reset()
    finally:
        circuit_state_changed.disconnect(sync_receiver)
        circuit_state_changed.disconnect(async_receiver)
    expected = [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
        (CLOSED, OPEN),
        (OPEN, CLOSED),
    ]
    assert sync_seen == expected
    assert async_seen == expected
    assert threading.get_ident() not in threads  # sync receivers ran off the event loop
    lines = [r.getMessage() for r in caplog.records if breaker.name in r.getMessage()]
    assert lines[0] == f"Circuit breaker {breaker.name!r}: closed -> open"
    assert len(lines) == len(expected)


def failing_receiver(breaker: CircuitBreaker) -> Callable[..., None]:
    """A circuit_state_changed receiver that raises on OPEN -> HALF_OPEN."""

    def receiver(sender: Any, old_state: CircuitState, new_state: CircuitState, **_: Any) -> None:
        if sender is breaker and new_state is HALF_OPEN:
            raise RuntimeError("metrics backend down")

    return receiver


@contextlib.contextmanager
def receiving(receiver: Any) -> Any:
    circuit_state_changed.connect(receiver, weak=False)
    try:
        yield
    finally:
        circuit_state_changed.disconnect(receiver)


async def test_a_receiver_that_raises_is_logged_and_the_probe_runs(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing receiver neither breaks the call that made the change nor keeps its
    probe slot: the probe runs and closes the circuit; the error is logged."""
    breaker = make(clock, failure_threshold=1, recovery_timeout=2)
    await trip(breaker)
    clock.advance(2)
    upstream = Upstream()
    with receiving(failing_receiver(breaker)), caplog.at_level(logging.ERROR):
        assert await breaker.call(upstream.ok) == "ok"
    assert upstream.calls == 1
    assert breaker.state is CLOSED
    errors = [r for r in caplog.records if r.name == "django_async_cbv" and r.exc_info]
    assert len(errors) == 1, errors
    assert "circuit_state_changed receiver" in errors[0].getMessage()
    assert "metrics backend down" in str(errors[0].exc_info[1])


async def test_a_caller_cancelled_while_a_receiver_runs_frees_the_probe_slot(
    clock: FakeClock,
) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=1)
    entered = asyncio.Event()

    async def slow_receiver(
        sender: Any, old_state: CircuitState, new_state: CircuitState, **_: Any
    ) -> None:
        if sender is breaker and new_state is HALF_OPEN:
            entered.set()
            await asyncio.Event().wait()

    await trip(breaker)
    clock.advance(1)
    upstream = Upstream()
    with receiving(slow_receiver):
        caller = asyncio.ensure_future(breaker.call(upstream.ok))
        await entered.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert upstream.calls == 0
    assert breaker.state is HALF_OPEN
    assert await breaker.call(upstream.ok) == "ok"  # the slot was not leaked
    assert breaker.state is CLOSED


# -- a breaker's call inside a call of the same breaker ----------------------------------------


async def test_a_nested_call_of_the_same_breaker_counts_once(clock: FakeClock) -> None:
    """A call inside a call of the same breaker passes through: one failure, not two."""
    breaker = make(clock, failure_threshold=2)
    upstream = Upstream()

    async def outer() -> Any:
        return await breaker.call(upstream.fail, OSError("down"))

    with pytest.raises(OSError, match="down"):
        await breaker.call(outer)
    assert breaker.state is CLOSED
    assert breaker.stats.failures == 1
    assert breaker.stats.consecutive_failures == 1
    with pytest.raises(OSError, match="down"):
        await breaker.call(outer)
    assert breaker.state is OPEN


@pytest.mark.parametrize("how", ["call", "decorator", "async with"])
async def test_a_nested_call_of_the_same_breaker_is_no_second_probe(
    clock: FakeClock, how: str
) -> None:
    """In HALF_OPEN the outer call holds the only probe slot; the inner call, part of
    the same probe, is not refused, and the probe's success closes the circuit."""
    breaker = make(clock, failure_threshold=1, recovery_timeout=5, half_open_max_calls=1)
    upstream = Upstream()
    inner = breaker(upstream.ok)

    async def outer() -> Any:
        if how == "call":
            return await breaker.call(upstream.ok)
        if how == "decorator":
            return await inner()
        async with breaker:
            return await upstream.ok()

    await trip(breaker)
    clock.advance(5)
    if how == "async with":
        async with breaker:
            assert await outer() == "ok"
    else:
        assert await breaker.call(outer) == "ok"
    assert upstream.calls == 1
    assert breaker.state is CLOSED
    assert breaker.stats.ignored == 0


async def test_a_nested_call_of_another_breaker_is_admitted_on_its_own(
    clock: FakeClock,
) -> None:
    outer_breaker = make(clock, failure_threshold=1)
    inner_breaker = make(clock, failure_threshold=1)

    async def outer() -> Any:
        return await inner_breaker.call(Upstream().fail, OSError("down"))

    with pytest.raises(OSError, match="down"):
        await outer_breaker.call(outer)
    assert inner_breaker.state is OPEN
    assert outer_breaker.state is OPEN


async def test_stats(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2)
    await breaker.call(Upstream().ok)
    assert breaker.stats.opened_at is None
    await trip(breaker)
    with pytest.raises(CircuitOpenError):
        await breaker.call(Upstream().ok)
    stats = breaker.stats
    assert (stats.state, stats.successes, stats.failures, stats.rejections) == (OPEN, 1, 2, 1)
    assert stats.last_failure == "OSError: down"
    assert stats.last_failure_at is not None
    assert stats.opened_at is not None


# -- threads ----------------------------------------------------------------------------------


def test_several_event_loops_in_several_threads_share_one_breaker(clock: FakeClock) -> None:
    """5 threads, each with its own event loop, share one breaker: their concurrent
    failures open it once; then 10 callers per thread in half-open with 2 slots make
    exactly 2 calls of the upstream, the other 48 are refused, and the probes close it."""
    breaker = make(clock, failure_threshold=5, recovery_timeout=1, half_open_max_calls=2)
    lock = threading.Lock()
    changed = threading.Condition(lock)
    counts = {"calls": 0, "refused": 0}
    releases: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    failed = threading.Barrier(6)  # the 5 workers and this thread
    advanced = threading.Barrier(6)
    results: list[Any] = []
    transitions: list[tuple[CircuitState, CircuitState]] = []

    def receiver(sender: Any, old_state: CircuitState, new_state: CircuitState, **_: Any) -> None:
        if sender is breaker:
            with lock:
                transitions.append((old_state, new_state))

    async def work() -> None:
        release = asyncio.Event()
        with lock:
            releases.append((asyncio.get_running_loop(), release))

        async def fail() -> None:
            with contextlib.suppress(OSError, CircuitOpenError):
                await breaker.call(Upstream().fail, OSError("down"))

        await asyncio.gather(*(fail() for _ in range(3)))
        await asyncio.to_thread(failed.wait)
        await asyncio.to_thread(advanced.wait)

        async def held() -> str:
            with lock:
                counts["calls"] += 1
                changed.notify_all()
            await release.wait()
            return "probe"

        async def call() -> str:
            try:
                return await breaker.call(held)
            except CircuitOpenError:
                with lock:
                    counts["refused"] += 1
                    changed.notify_all()
                raise

        outcomes = await asyncio.gather(*(call() for _ in range(10)), return_exceptions=True)
        with lock:
            results.extend(outcomes)

    threads = [threading.Thread(target=asyncio.run, args=(work(),)) for _ in range(5)]
    circuit_state_changed.connect(receiver, weak=False)
    try:
        for thread in threads:
            thread.start()
        failed.wait(timeout=30)
        assert breaker.state is OPEN
        clock.advance(1)
        advanced.wait(timeout=30)
        with lock:
            # Until each of the 50 callers reached the upstream or was refused (a
            # condition, not a timer; the timeout only bounds a broken run).
            assert changed.wait_for(lambda: counts["calls"] + counts["refused"] >= 50, 30)
            for loop, release in releases:
                # A thread whose 10 callers were all refused has finished already.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(release.set)
        for thread in threads:
            thread.join(timeout=30)
    finally:
        circuit_state_changed.disconnect(receiver)
    assert counts == {"calls": 2, "refused": 48}
    assert results.count("probe") == 2
    assert transitions == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


# -- AsyncCircuitBreakerMixin -----------------------------------------------------------------

mixin_breaker = CircuitBreaker("test-mixin", failure_threshold=2, recovery_timeout=30)


class Protected(AsyncCircuitBreakerMixin, AsyncView):
    """Answers as ``?fail=`` says: the upstream's errors, or the handler's own 404/403."""

    circuit_breaker = mixin_breaker
    runs = 0

    async def get(self, request: HttpRequest) -> HttpResponse:
        type(self).runs += 1
        fail = request.GET.get("fail")
        if fail == "upstream":
            raise UpstreamError("upstream said 500", status=500, body=b"secret")
        if fail == "upstream404":
            raise UpstreamError("upstream said 404", status=404)
        if fail == "upstream429":
            raise UpstreamError("upstream said 429", status=429)
        if fail == "upstream-timeout":
            raise UpstreamTimeout("upstream too slow")
        if fail == "oserror":
            raise ConnectionResetError("reset by peer")
        if fail == "problem404":
            raise ProblemError(404, detail="No such item.")
        if fail == "problem403":
            raise ProblemError(403)
        if fail == "http404":
            raise Http404("no such thing")
        if fail == "denied":
            raise PermissionDenied
        if fail == "hang":
            await asyncio.Event().wait()
        return JsonResponse({"ok": True})


class Named(Protected):
    circuit_breaker = "test-named"


class TimedOut(Protected):
    circuit_breaker = CircuitBreaker("test-mixin-timeout", failure_threshold=1, timeout=0.01)


class SyncTimedOut(AsyncCircuitBreakerMixin, AsyncView):
    """A sync handler that blocks its thread until the test releases it."""

    circuit_breaker = CircuitBreaker("test-mixin-sync-timeout", failure_threshold=1, timeout=0.05)
    release = threading.Event()
    finished = threading.Event()

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            type(self).release.wait(timeout=30)
            return JsonResponse({"ok": True})
        finally:
            type(self).finished.set()


class SyncTimedOutUnderWsgi(SyncTimedOut):
    circuit_breaker = CircuitBreaker(
        "test-mixin-sync-timeout-wsgi", failure_threshold=1, timeout=0.05
    )
    release = threading.Event()
    finished = threading.Event()


recovering_clock = FakeClock()


class Recovering(Protected):
    circuit_breaker = CircuitBreaker(
        "test-mixin-recovering", failure_threshold=1, recovery_timeout=30, clock=recovering_clock
    )


urlpatterns = [
    path("protected/", Protected.as_view()),
    path("named/", Named.as_view()),
    path("timed/", TimedOut.as_view()),
    path("recovering/", Recovering.as_view()),
    path("sync-timed/", SyncTimedOut.as_view()),
    path("sync-timed-wsgi/", SyncTimedOutUnderWsgi.as_view()),
]


@pytest.fixture
async def fresh_mixin_breaker() -> AsyncIterator[None]:
    await mixin_breaker.reset()
    Protected.runs = 0
    yield
    await mixin_breaker.reset()


def assert_problem(response: HttpResponseBase, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM_JSON
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == status
    return body


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("fresh_mixin_breaker")
@pytest.mark.parametrize(
    ("fail", "status"), [("upstream", 502), ("upstream-timeout", 504), ("oserror", 500)]
)
async def test_mixin_opens_on_upstream_failures_and_answers_503(fail: str, status: int) -> None:
    """Two upstream failures (as the handler raised them) open it; then 503 + Retry-After."""
    client = AsyncClient(raise_request_exception=False)
    for _ in range(2):
        assert (await client.get("/protected/", {"fail": fail})).status_code == status
    assert mixin_breaker.state is OPEN
    runs = Protected.runs
    refused = await client.get("/protected/")
    body = assert_problem(refused, 503)
    assert body["title"] == "Service Unavailable"
    assert refused["Retry-After"] == "30"
    assert Protected.runs == runs  # the handler did not run


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("fresh_mixin_breaker")
async def test_mixin_never_opens_on_the_handlers_404_or_403() -> None:
    client = AsyncClient(raise_request_exception=False)
    for _ in range(5):
        assert_problem(await client.get("/protected/", {"fail": "problem404"}), 404)
        assert_problem(await client.get("/protected/", {"fail": "problem403"}), 403)
        assert (await client.get("/protected/", {"fail": "http404"})).status_code == 404
        assert (await client.get("/protected/", {"fail": "denied"})).status_code == 403
    assert mixin_breaker.state is CLOSED
    assert (await client.get("/protected/")).status_code == 200
    # ...nor does a 404 in between reset the count of upstream failures
    await client.get("/protected/", {"fail": "upstream"})
    await client.get("/protected/", {"fail": "problem404"})
    await client.get("/protected/", {"fail": "upstream"})
    assert_problem(await client.get("/protected/"), 503)


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("fresh_mixin_breaker")
async def test_mixin_never_opens_on_an_upstream_4xx_but_does_on_429() -> None:
    """An upstream's 404 (a lookup of a missing id) says the service answered; the
    mixin counts upstream errors by the client's rule: no status, 5xx or 429."""
    client = AsyncClient(raise_request_exception=False)
    failures = mixin_breaker.stats.failures
    for _ in range(5):
        assert (await client.get("/protected/", {"fail": "upstream404"})).status_code == 502
    assert mixin_breaker.state is CLOSED
    assert mixin_breaker.stats.failures == failures
    for _ in range(2):
        await client.get("/protected/", {"fail": "upstream429"})
    assert mixin_breaker.state is OPEN


@pytest.mark.urls(__name__)
async def test_mixin_options_and_405_pass_by_the_breaker() -> None:
    """The view's built-in OPTIONS answer and its 405 call no upstream: while the
    circuit is open they are answered, and in half-open they are no probe, so they
    never close a circuit whose upstream is still down."""
    breaker = Recovering.circuit_breaker
    assert isinstance(breaker, CircuitBreaker)
    await breaker.reset()
    client = AsyncClient(raise_request_exception=False)
    assert (await client.get("/recovering/", {"fail": "upstream"})).status_code == 502
    assert breaker.state is OPEN
    options = await client.options("/recovering/")
    assert options.status_code == 200
    assert options["Allow"] == "GET, HEAD, OPTIONS"
    assert (await client.post("/recovering/")).status_code == 405
    recovering_clock.advance(31)
    for _ in range(3):
        assert (await client.options("/recovering/")).status_code == 200
        assert (await client.delete("/recovering/")).status_code == 405
    assert await breaker.current_state() is HALF_OPEN
    # The probe is the first request that runs the handler; the upstream still fails.
    runs = Recovering.runs
    assert (await client.get("/recovering/", {"fail": "upstream"})).status_code == 502
    assert Recovering.runs == runs + 1
    assert breaker.state is OPEN
    assert_problem(await client.get("/recovering/"), 503)
    assert breaker.stats.successes == 0


@pytest.mark.urls(__name__)
async def test_mixin_with_a_named_breaker_from_the_settings() -> None:
    breakers = {"test-named": {"failure_threshold": 1, "recovery_timeout": 7}}
    with override_settings(ASYNC_CBV={"CIRCUIT_BREAKERS": breakers}):
        client = AsyncClient()
        assert (await client.get("/named/", {"fail": "upstream"})).status_code == 502
        refused = await client.get("/named/")
        assert_problem(refused, 503)
        assert refused["Retry-After"] == "7"
        assert get_breaker("test-named").state is OPEN


@pytest.mark.urls(__name__)
async def test_mixin_breaker_timeout_answers_504_and_counts() -> None:
    client = AsyncClient()
    assert_problem(await client.get("/timed/", {"fail": "hang"}), 504)
    assert_problem(await client.get("/timed/"), 503)


@pytest.mark.urls(__name__)
async def test_mixin_breaker_timeout_answers_504_on_time_for_a_sync_handler() -> None:
    """As with the view's own timeout, the 504 leaves while a sync handler still holds
    its thread; it does not wait for the handler to return."""
    client = AsyncClient()
    try:
        assert_problem(await client.get("/sync-timed/"), 504)
        assert not SyncTimedOut.finished.is_set()  # the handler still blocks its thread
        assert SyncTimedOut.circuit_breaker.state is OPEN  # type: ignore[union-attr]
    finally:
        SyncTimedOut.release.set()
    assert await asyncio.to_thread(SyncTimedOut.finished.wait, 30)


@pytest.mark.urls(__name__)
def test_mixin_breaker_timeout_answers_504_on_time_for_a_sync_handler_under_wsgi() -> None:
    """Under WSGI (Django runs the view through async_to_sync) too, as with the view's
    own timeout: the sync handler runs on the breaker's thread, not the request's."""
    try:
        assert_problem(Client().get("/sync-timed-wsgi/"), 504)
        assert not SyncTimedOutUnderWsgi.finished.is_set()  # still blocks its thread
        assert SyncTimedOutUnderWsgi.circuit_breaker.state is OPEN  # type: ignore[union-attr]
    finally:
        SyncTimedOutUnderWsgi.release.set()
    assert SyncTimedOutUnderWsgi.finished.wait(30)


@pytest.mark.parametrize("value", [None, "", 3, CircuitState.OPEN])
def test_mixin_bad_circuit_breaker_is_improperly_configured(value: Any) -> None:
    bad = type("BadBreaker", (Protected,), {"__module__": __name__, "circuit_breaker": value})
    with pytest.raises(ImproperlyConfigured, match=r"BadBreaker\.circuit_breaker"):
        bad.as_view()


def test_mixin_misconfiguration_is_check_error_e010(monkeypatch: pytest.MonkeyPatch) -> None:
    urlconf = ModuleType("routes")
    urlconf.urlpatterns = [path("x/", Named.as_view())]  # type: ignore[attr-defined]
    monkeypatch.setattr(Named, "circuit_breaker", 42)
    with override_settings(ROOT_URLCONF=urlconf):
        messages = [m for m in check_views() if m.id == "django_async_cbv.E010"]
    assert len(messages) == 1
    assert "Named.circuit_breaker is 42" in messages[0].msg


# -- get_breaker ------------------------------------------------------------------------------


def test_get_breaker_returns_one_configured_breaker_per_name() -> None:
    breakers = {"test-payments": {"failure_threshold": 9, "recovery_timeout": 4, "timeout": 2}}
    with override_settings(ASYNC_CBV={"CIRCUIT_BREAKERS": breakers}):
        payments = get_breaker("test-payments")
        assert get_breaker("test-payments") is payments
        assert (payments.failure_threshold, payments.recovery_timeout, payments.timeout) == (
            9,
            4.0,
            2.0,
        )
        unknown = get_breaker("test-unlisted")
        assert (unknown.failure_threshold, unknown.recovery_timeout) == (5, 30.0)
        assert unknown.storage is None
    with override_settings(ASYNC_CBV={}):
        assert get_breaker("test-payments").failure_threshold == 5
