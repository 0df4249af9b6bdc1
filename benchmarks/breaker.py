"""In-process circuit breaker benchmark: what a breaker costs per call.

Run from the repository root::

    PYTHONPATH=src python benchmarks/breaker.py

Scenarios (each the best of several rounds, to shed noise from a shared machine):

closed
    A call of a trivial ``async def`` through the breaker, circuit closed, against a
    bare ``await`` of the same function: the overhead per call, and the ratio of the
    two. Measured for ``breaker.call(fn, x)`` and for ``@breaker``, and for the other
    libraries that are installed (pybreaker, aiobreaker, purgatory, circuitbreaker).
open
    A call refused by an open circuit (``CircuitOpenError`` raised and caught).
half-open
    50 concurrent callers in half-open with ``half_open_max_calls=2``: how many reach
    the upstream (must be 2) and the time for the round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django.conf.global_settings")
os.environ.setdefault("SECRET_KEY", "benchmark")

N = 200_000
ROUNDS = 7


async def upstream(x: int) -> int:
    return x


async def best(loop_body: Callable[[int], Awaitable[float]]) -> float:
    """Seconds per call: the best of ROUNDS rounds of N calls."""
    return min([await loop_body(N) for _ in range(ROUNDS)])


async def bare(n: int) -> float:
    fn = upstream
    start = time.perf_counter()
    for i in range(n):
        await fn(i)
    return (time.perf_counter() - start) / n


def through(call: Callable[[int], Awaitable[Any]]) -> Callable[[int], Awaitable[float]]:
    async def run(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            await call(i)
        return (time.perf_counter() - start) / n

    return run


def ours() -> dict[str, Callable[[int], Awaitable[Any]]]:
    from django_async_cbv import CircuitBreaker

    breaker = CircuitBreaker("bench-call")
    decorated = CircuitBreaker("bench-decorator")(upstream)

    call = breaker.call
    return {
        "django-async-cbv call()": lambda x: call(upstream, x),
        "django-async-cbv @breaker": decorated,
    }


def others() -> dict[str, Callable[[int], Awaitable[Any]]]:
    found: dict[str, Callable[[int], Awaitable[Any]]] = {}
    with contextlib.suppress(ImportError):
        import aiobreaker

        found["aiobreaker"] = aiobreaker.CircuitBreaker()(upstream)
    with contextlib.suppress(ImportError):
        import circuitbreaker

        found["circuitbreaker"] = circuitbreaker.circuit(upstream)
    with contextlib.suppress(ImportError):
        import pybreaker

        if hasattr(pybreaker.CircuitBreaker, "call_async"):
            pb = pybreaker.CircuitBreaker()

            found["pybreaker"] = pb(upstream)
    with contextlib.suppress(ImportError):
        from purgatory import AsyncCircuitBreakerFactory

        factory = AsyncCircuitBreakerFactory()

        @factory(circuit="bench")  # type: ignore[misc]
        async def purg(x: int) -> int:
            return x

        found["purgatory"] = purg
    return found


async def open_cost() -> float:
    from django_async_cbv import CircuitBreaker, CircuitOpenError

    breaker = CircuitBreaker("bench-open", failure_threshold=1, recovery_timeout=3600)

    async def fail(x: int) -> int:
        raise OSError("down")

    with contextlib.suppress(OSError):
        await breaker.call(fail, 0)

    async def run(n: int) -> float:
        call = breaker.call
        start = time.perf_counter()
        for i in range(n):
            try:  # noqa: SIM105 - suppress() would add its own cost to what is measured
                await call(upstream, i)
            except CircuitOpenError:
                pass
        return (time.perf_counter() - start) / n

    return min([await run(N // 4) for _ in range(ROUNDS)])


async def half_open() -> tuple[int, int, float]:
    from django_async_cbv import CircuitBreaker, CircuitOpenError

    now = [0.0]
    breaker = CircuitBreaker(
        "bench-half-open",
        failure_threshold=1,
        recovery_timeout=1,
        half_open_max_calls=2,
        success_threshold=2,
        clock=lambda: now[0],
    )

    async def fail() -> None:
        raise OSError("down")

    with contextlib.suppress(OSError):
        await breaker.call(fail)
    now[0] += 1
    calls = 0
    release = asyncio.Event()

    async def probe() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "ok"

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(breaker.call(probe)) for _ in range(50)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - start
    refused = sum(isinstance(r, CircuitOpenError) for r in results)
    return calls, refused, elapsed


async def main() -> None:
    import django

    django.setup()
    logging.getLogger("django_async_cbv").setLevel(logging.ERROR)  # transitions are expected
    print(f"Python {sys.version.split()[0]}, {N} calls x best of {ROUNDS} rounds")
    base = await best(bare)
    print(f"{'bare await':32} {base * 1e9:8.0f} ns/call")
    for name, call in {**ours(), **others()}.items():
        per = await best(through(call))
        print(
            f"{name:32} {per * 1e9:8.0f} ns/call  overhead {(per - base) * 1e9:7.0f} ns"
            f"  ratio {per / base:5.2f}x"
        )
    rejected = await open_cost()
    print(f"{'open: refusal (raise + catch)':32} {rejected * 1e9:8.0f} ns/call")
    calls, refused, elapsed = await half_open()
    print(
        f"half-open: 50 concurrent callers, max 2 probes -> {calls} upstream calls, "
        f"{refused} refused, {elapsed * 1e6:.0f} us for the round"
    )


if __name__ == "__main__":
    asyncio.run(main())
