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

from django_async_cbv._rates import Rate

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from django_async_cbv._redis import Channel

__all__ = ["ALGORITHMS", "SCRIPTS", "Decision", "RedisLimiter", "redis_keys"]

# Shared head: effects replication (needed before Redis 5 for TIME before writes; a
# no-op since), the clock (ARGV[1], a test-only fake clock, or TIME) and the rates.
# Numbers passed to redis.call() are sent exactly (%.17g); string concatenation and
# tostring() would round to 14 digits, so values are formatted with %d / %.17g.
_HEAD = """
if redis.replicate_commands then redis.replicate_commands() end
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local n = tonumber(ARGV[2])
local counts, periods = {}, {}
for i = 1, n do
  counts[i] = tonumber(ARGV[1 + 2 * i])
  periods[i] = tonumber(ARGV[2 + 2 * i]) * 1000000
end
local function ms(us)
  if us <= 0 then return 0 end
  return math.ceil(us / 1000)
end
-- expiry (ms) for state that matters for ``us`` more microseconds, with one second of
-- slack: state must never vanish early (clock steps, or a fake clock in tests)
local function ttl(us)
  return ms(us) + 1000
end
local allowed = 1
local retry = 0
"""

_SLIDING_WINDOW = (
    _HEAD
    + """
local cards = {}
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - periods[i])
  local card = redis.call('ZCARD', KEYS[i])
  cards[i] = card
  if card >= counts[i] then
    allowed = 0
    -- the entry whose expiry brings the log below count frees the slot
    local entry = redis.call('ZRANGE', KEYS[i], card - counts[i], card - counts[i], 'WITHSCORES')
    local wait = tonumber(entry[2]) + periods[i] - now
    if wait > retry then retry = wait end
  end
end
local out = {allowed, 0}
if allowed == 1 then
  local seq_key = KEYS[n + 1]
  local seq = redis.call('INCR', seq_key)
  local member = string.format('%d:%d', now, seq)
  local longest = 0
  for i = 1, n do
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], ttl(periods[i]))
    if periods[i] > longest then longest = periods[i] end
    out[1 + 2 * i] = math.max(counts[i] - cards[i] - 1, 0)
    out[2 + 2 * i] = ms(periods[i])
  end
  redis.call('PEXPIRE', seq_key, ttl(longest))
else
  out[2] = ms(retry)
  for i = 1, n do
    out[1 + 2 * i] = math.max(counts[i] - cards[i], 0)
    local reset = 0
    if cards[i] > 0 then
      local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
      reset = tonumber(newest[2]) + periods[i] - now
    end
    out[2 + 2 * i] = ms(reset)
  end
end
return out
"""
)

_FIXED_WINDOW = (
    _HEAD
    + """
local used, starts = {}, {}
for i = 1, n do
  -- fmod is exact on doubles, unlike floor(now / period)
  local start = now - math.fmod(now, periods[i])
  starts[i] = start
  used[i] = 0
  local value = redis.call('GET', KEYS[i])
  if value then
    local w, c = string.match(value, '^(%d+):(%d+)$')
    if w and tonumber(w) == start then used[i] = tonumber(c) end
  end
  if used[i] >= counts[i] then
    allowed = 0
    local wait = start + periods[i] - now
    if wait > retry then retry = wait end
  end
end
local out = {allowed, ms(retry)}
for i = 1, n do
  local wait = starts[i] + periods[i] - now
  if allowed == 1 then
    used[i] = used[i] + 1
    redis.call('SET', KEYS[i], string.format('%d:%d', starts[i], used[i]), 'PX', ttl(wait))
  end
  out[1 + 2 * i] = math.max(counts[i] - used[i], 0)
  if used[i] > 0 then out[2 + 2 * i] = ms(wait) else out[2 + 2 * i] = 0 end
end
return out
"""
)

_TOKEN_BUCKET = (
    _HEAD
    + """
local tokens, stamps = {}, {}
for i = 1, n do
  local level = counts[i]
  local stamp = now
  local value = redis.call('GET', KEYS[i])
  if value then
    local t, s = string.match(value, '^([^:]+):(%d+)$')
    if t then
      level = tonumber(t)
      stamp = tonumber(s)
      if now > stamp then
        level = math.min(counts[i], level + (now - stamp) * counts[i] / periods[i])
        stamp = now
      end
    end
  end
  tokens[i] = level
  stamps[i] = stamp
  if level < 1 then
    allowed = 0
    local wait = (1 - level) * periods[i] / counts[i]
    if wait > retry then retry = wait end
  end
end
local out = {allowed, ms(retry)}
for i = 1, n do
  if allowed == 1 then
    tokens[i] = tokens[i] - 1
  end
  local full = (counts[i] - tokens[i]) * periods[i] / counts[i]
  if allowed == 1 then
    redis.call('SET', KEYS[i], string.format('%.17g:%d', tokens[i], stamps[i]), 'PX', ttl(full))
  end
  out[1 + 2 * i] = math.floor(tokens[i])
  out[2 + 2 * i] = ms(full)
end
return out
"""
)

#: Lua source per algorithm.
SCRIPTS: dict[str, str] = {
    "sliding_window": _SLIDING_WINDOW,
    "fixed_window": _FIXED_WINDOW,
    "token_bucket": _TOKEN_BUCKET,
}
ALGORITHMS = frozenset(SCRIPTS)
_SHORT = {"sliding_window": "sw", "fixed_window": "fw", "token_bucket": "tb"}
_SHAS = {  # what EVALSHA names each script by
    name: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    for name, source in SCRIPTS.items()
}


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
        client: Channel | Redis,
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
        values = [int(v) for v in reply]
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
    client: Channel | Redis, algorithm: str, keys: list[str], args: list[str | int]
) -> list[Any]:
    """EVALSHA the algorithm's script; on NOSCRIPT, EVAL it (which also caches it)."""
    from redis.exceptions import NoScriptError

    target: Any = client
    try:
        reply = await target.evalsha(_SHAS[algorithm], len(keys), *keys, *args)
    except NoScriptError:
        reply = await target.eval(SCRIPTS[algorithm], len(keys), *keys, *args)
    return list(reply)
