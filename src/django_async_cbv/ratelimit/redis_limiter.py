"""Exact, atomic rate limiting on Redis: one server-side script per check (internal).

One check is one ``EVALSHA`` (plus one ``EVAL`` after the server lost the script:
``NOSCRIPT``). The script reads Redis ``TIME`` (microseconds) as the clock, checks
every rate of the check and consumes from all of them only when every rate admits
the request: a refused request consumes nothing. It sets an expiry on every key it
writes. Algorithms, for ``count`` requests per ``period``:

``sliding_window``
    In any half-open interval of one period, at most ``count`` requests are admitted:
    a sorted-set log of admission times per rate (unique members ``<time>:<n>``, n
    from a per-client counter), entries older than one period dropped on each check.
``fixed_window``
    At most ``count`` per period-aligned window, windows aligned to the Unix epoch;
    the key holds ``<window start>:<used>``.
``token_bucket``
    Capacity ``count``, refilled continuously at ``count`` per period (fractional
    tokens); the key holds ``<tokens>:<last time>``, a missing key is a full bucket.

Keys: ``<key prefix>:{<sha256 of the identity>}:<algorithm>:<count>/<period>`` (plus
``...:sw:seq`` for the sliding window's counter), so the raw identity never reaches
Redis and all keys of one check share the hash tag, hence one Redis Cluster slot.
The keys are passed in ``KEYS``, as Redis requires of scripts.

The script returns ``allowed`` (0/1), ``retry_after_ms`` (0 when admitted; when
refused, the time until every refusing rate frees a slot, rounded up) and per rate
``remaining`` and ``reset_ms``: the time until that rate is back to its full
``count`` with no further requests (rounded up; 0 when already full).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django_async_cbv._util import lua_script, script_sha

from .rates import Rate

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from django_async_cbv._redis import AnyChannel

__all__ = ["ALGORITHMS", "SCRIPTS", "Decision", "RedisLimiter", "redis_keys"]

# The scripts are ``lua/head.lua`` (effects replication, needed before Redis 5 for TIME
# before writes and a no-op since; the clock: ARGV[1], a test-only fake clock, or
# TIME; the rates) followed by the algorithm's own file. Numbers passed to
# redis.call() are sent exactly (%.17g); string concatenation and tostring() would
# round to 14 digits, so values are formatted with %d / %.17g.
_HEAD = lua_script("django_async_cbv.ratelimit", "lua/head.lua")

#: Lua source per algorithm.
SCRIPTS: dict[str, str] = {
    name: _HEAD + lua_script("django_async_cbv.ratelimit", f"lua/{name}.lua")
    for name in ("sliding_window", "fixed_window", "token_bucket")
}
ALGORITHMS = frozenset(SCRIPTS)
_SHORT = {"sliding_window": "sw", "fixed_window": "fw", "token_bucket": "tb"}
_SHAS = {name: script_sha(source) for name, source in SCRIPTS.items()}  # what EVALSHA names


@dataclass(frozen=True)
class Decision:
    """The outcome of one check.

    ``retry_after``: 0 when admitted; when refused, whole seconds (rounded up, at least
    1) until every refusing rate admits again. ``remaining`` and ``reset`` hold one
    value per rate, in the order of the rates: requests left, and whole seconds
    (rounded up) until the rate is back to its full count.
    """

    allowed: bool
    retry_after: int
    remaining: tuple[int, ...]
    reset: tuple[int, ...]


def redis_keys(
    key_prefix: str, identity: str, rates: tuple[Rate, ...], algorithm: str
) -> list[str]:
    """The keys of one check: one per rate, then the sliding window's counter."""
    if "{" in key_prefix or "}" in key_prefix:
        raise ValueError(f"The key prefix {key_prefix!r} must not contain braces.")
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    base = f"{key_prefix}:{{{digest}}}:{_SHORT[algorithm]}"
    keys = [f"{base}:{rate.count}/{rate.period}" for rate in rates]
    if algorithm == "sliding_window":
        keys.append(f"{base}:seq")
    return keys


class RedisLimiter:
    """Runs the check scripts; holds no connection (the client is passed per check)."""

    async def check(
        self,
        client: AnyChannel | Redis,
        key_prefix: str,
        identity: str,
        rates: tuple[Rate, ...],
        algorithm: str,
        *,
        now_us: int | None = None,
    ) -> Decision:
        """Check and, if every rate admits it, count one request of ``identity``.

        ``now_us`` replaces Redis ``TIME`` (microseconds since the epoch): for tests only.
        """
        if algorithm not in SCRIPTS:
            raise ValueError(
                f"Unknown rate limit algorithm {algorithm!r}; expected one of "
                f"{', '.join(sorted(SCRIPTS))}."
            )
        if not rates:
            raise ValueError("A check needs at least one rate.")
        if now_us is not None and (
            isinstance(now_us, bool) or not isinstance(now_us, int) or now_us < 0
        ):
            raise ValueError(f"now_us must be a non-negative int, not {now_us!r}.")
        keys = redis_keys(key_prefix, identity, rates, algorithm)
        if len(set(keys)) != len(keys):  # one key twice would be consumed twice
            raise ValueError(f"Two of the rates {[r.text for r in rates]} are the same rate.")
        args: list[str | int] = ["" if now_us is None else now_us, len(rates)]
        for rate in rates:
            args += [rate.count, rate.period]
        reply = await _run(client, algorithm, keys, args)
        return decision_of([int(v) for v in reply])


def decision_of(values: list[int]) -> Decision:
    """A check script's reply (allowed, retry ms, then remaining and reset ms per rate)."""
    allowed = values[0] == 1
    return Decision(
        allowed=allowed,
        retry_after=0 if allowed else max(1, _seconds(values[1])),
        remaining=tuple(values[2::2]),
        reset=tuple(_seconds(ms) for ms in values[3::2]),
    )


def _seconds(ms: int) -> int:
    return -(-ms // 1000) if ms > 0 else 0


async def _run(
    client: AnyChannel | Redis, algorithm: str, keys: list[str], args: list[str | int]
) -> list[Any]:
    """EVALSHA the algorithm's script; on NOSCRIPT, EVAL it (which also caches it)."""
    from redis.exceptions import NoScriptError

    target: Any = client
    try:
        reply = await target.evalsha(_SHAS[algorithm], len(keys), *keys, *args)
    except NoScriptError:
        reply = await target.eval(SCRIPTS[algorithm], len(keys), *keys, *args)
    return list(reply)
