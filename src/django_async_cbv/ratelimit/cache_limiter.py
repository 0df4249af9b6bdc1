"""Fixed-window rate limiting on a Django cache with an atomic increment (internal).

For backends other than Redis: local memory, memcached, and Redis caches whose
client the library does not talk to directly. Only the cache's sync ``add`` and
``incr`` are used, because they are atomic on those backends (one lock in local
memory; native commands on memcached and Redis), while Django's ``aincr`` is a
read followed by a write.

One counter per rate and period-aligned window (aligned to the Unix epoch), its
window start in its key, created by ``add(key, 0)`` and counted by ``incr``.
A request is admitted when every counter it increments stays within its count;
otherwise it takes its increments back (``decr``), so a refused request consumes
nothing. A request is refused only when the counters it saw were full; with
several rates, a concurrent request that is about to take its increments back
can make another one see a full counter for a moment: this errs towards refusing.
The clock is this host's.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from .rates import Rate
from .redis_limiter import Decision

__all__ = ["fixed_window_check"]


def fixed_window_check(
    cache: Any, key_base: str, rates: tuple[Rate, ...], now: float | None = None
) -> Decision:
    """Count one request against every rate; take it back if any rate refuses it.

    ``cache`` is a Django cache; ``key_base`` names the client and scope (the
    cache adds its own prefix and version); ``now`` (Unix seconds) is for tests.
    """
    if now is None:
        now = time.time()
    used: list[int] = []
    waits: list[float] = []
    counted: list[str] = []
    allowed = True
    for rate in rates:
        start = math.floor(now / rate.period) * rate.period
        wait = start + rate.period - now
        key = f"{key_base}:{rate.count}/{rate.period}:{start}"
        value = _increment(cache, key, timeout=math.ceil(wait) + 1)
        counted.append(key)
        used.append(value)
        waits.append(wait)
        if value > rate.count:
            allowed = False
            break
    if not allowed:
        for key in counted:
            with contextlib.suppress(ValueError):  # expired meanwhile: nothing to take back
                cache.decr(key)
    remaining: list[int] = []
    reset: list[int] = []
    retry = 0.0
    for index, rate in enumerate(rates):
        if index >= len(used):  # not reached: report it as its window stands
            start = math.floor(now / rate.period) * rate.period
            wait = start + rate.period - now
            current = cache.get(f"{key_base}:{rate.count}/{rate.period}:{start}") or 0
            count_now = current if isinstance(current, int) else 0
            if count_now >= rate.count:  # it would refuse too: the retry waits for it
                retry = max(retry, wait)
        else:
            wait = waits[index]
            count_now = used[index] if allowed else used[index] - 1
            if used[index] > rate.count:
                retry = max(retry, wait)
        remaining.append(max(rate.count - count_now, 0))
        reset.append(math.ceil(wait) if count_now > 0 else 0)
    return Decision(
        allowed=allowed,
        retry_after=0 if allowed else max(1, math.ceil(retry)),
        remaining=tuple(remaining),
        reset=tuple(reset),
    )


def _increment(cache: Any, key: str, timeout: int) -> int:
    """``incr`` the counter at ``key``, creating it at 0 first if it is missing."""
    for _ in range(3):
        cache.add(key, 0, timeout=timeout)
        try:
            return int(cache.incr(key))
        except ValueError:  # evicted or expired between add and incr: create it again
            continue
    raise RuntimeError(f"The rate limit counter {key!r} keeps disappearing from the cache.")
