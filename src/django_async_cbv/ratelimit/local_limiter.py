"""Sliding-window and token-bucket limits in a local-memory cache (internal).

A ``LocMemCache`` lives in one process, so one lock per cache ``LOCATION`` in this
process (the per-thread cache objects of one location share one store) makes a read,
the decision and the write of a check one step for every thread and task of the
process, which is all that can see the cache. The state lives in the cache itself (so
``cache.clear()`` resets it, and its timeouts and ``MAX_ENTRIES`` apply), one entry per
rate, and the arithmetic is the Redis scripts' (``lua/``), on this host's clock, so a
view answers the same on either backend, per process here.

- ``sliding_window``: the admission times of the last period in time order, at most
  ``count`` long, as an ``array('q')`` (pickled as one block of bytes, pruned by
  bisection, so a check of a large count costs little on the event loop's thread);
- ``token_bucket``: ``(tokens, stamp)``, refilled at ``count`` per period.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from array import array
from typing import Any

from .rates import Rate
from .redis_limiter import Decision, decision_of

__all__ = ["local_check"]

_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def _lock_for(location: str) -> threading.Lock:
    with _locks_lock:
        lock = _locks.get(location)
        if lock is None:
            lock = _locks[location] = threading.Lock()
        return lock


def local_check(
    cache: Any,
    location: str,
    key_base: str,
    rates: tuple[Rate, ...],
    algorithm: str,
    now_us: int | None = None,
) -> Decision:
    """Check and, if every rate admits it, count one request of ``key_base`` in
    ``cache``, whose ``LOCATION`` is ``location``; ``now_us`` (microseconds since the
    epoch) replaces this host's clock, for tests only."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    keys = [f"{key_base}:{algorithm}:{rate.count}/{rate.period}" for rate in rates]
    with _lock_for(location):
        if algorithm == "sliding_window":
            values = _sliding_window(cache, keys, rates, now)
        elif algorithm == "token_bucket":
            values = _token_bucket(cache, keys, rates, now)
        else:
            raise ValueError(f"Unknown rate limit algorithm {algorithm!r} for local memory.")
    return decision_of(values)


def _ms(us: float) -> int:
    return math.ceil(us / 1000) if us > 0 else 0


def _timeout(us: float) -> int:
    """An expiry in whole seconds that never drops state early (a second of slack)."""
    return math.ceil(us / 1_000_000) + 1


def _sliding_window(cache: Any, keys: list[str], rates: tuple[Rate, ...], now: int) -> list[int]:
    logs: list[array[int]] = []
    allowed, retry = 1, 0
    for key, rate in zip(keys, rates, strict=True):
        period = rate.period * 1_000_000
        stored = cache.get(key)
        if isinstance(stored, array) and stored.typecode == "q":
            log = stored[bisect.bisect_right(stored, now - period) :]
        else:
            log = array("q")
        logs.append(log)
        if len(log) >= rate.count:
            allowed = 0
            # The entry whose expiry brings the log below count frees the slot.
            retry = max(retry, log[len(log) - rate.count] + period - now)
    out = [allowed, 0 if allowed else _ms(retry)]
    for key, rate, log in zip(keys, rates, logs, strict=True):
        period = rate.period * 1_000_000
        if allowed:
            out += [max(rate.count - len(log) - 1, 0), _ms(period)]
            bisect.insort(log, now)  # in time order even after the clock stepped back
            cache.set(key, log, timeout=_timeout(period))
        else:
            out += [max(rate.count - len(log), 0), _ms(log[-1] + period - now) if log else 0]
    return out


def _token_bucket(cache: Any, keys: list[str], rates: tuple[Rate, ...], now: int) -> list[int]:
    levels: list[tuple[float, int]] = []
    allowed, retry = 1, 0.0
    for key, rate in zip(keys, rates, strict=True):
        count, period = rate.count, rate.period * 1_000_000
        level, stamp = float(count), now
        stored = cache.get(key)
        if isinstance(stored, tuple) and len(stored) == 2:
            level, stamp = stored
            if now > stamp:
                level = min(count, level + (now - stamp) * count / period)
                stamp = now
        levels.append((level, stamp))
        if level < 1:
            allowed = 0
            retry = max(retry, (1 - level) * period / count)
    out = [allowed, _ms(retry)]
    for key, rate, (level, stamp) in zip(keys, rates, levels, strict=True):
        count, period = rate.count, rate.period * 1_000_000
        if allowed:
            level -= 1
        full = (count - level) * period / count
        if allowed:
            cache.set(key, (level, stamp), timeout=_timeout(full))
        out += [math.floor(level), _ms(full)]
    return out
