"""A circuit breaker's state shared in Redis: atomic transitions in server-side scripts.

Each operation is one ``EVALSHA`` (an ``EVAL`` after the server lost the script:
``NOSCRIPT``) on two keys sharing one hash tag, so one Redis Cluster slot:

``<prefix>:{<name>}``
    A hash: ``s`` the state (0 closed, 1 open, 2 half-open), ``e`` the epoch (one
    more on every transition), ``f`` consecutive failures while closed, ``n`` probe
    successes while half-open, ``o`` when it last opened and ``lf`` the last failure
    (microseconds of the Redis clock), ``l`` the last probe lease id, ``g`` the
    generation: a random number the first write stores (the last argument of every
    script is a candidate). A missing hash is a closed circuit in epoch 0 of
    generation 0: creating a breaker writes nothing, so it never resets a shared
    state. Every write renews an expiry of :data:`KEEP_MS`.

    Tickets (epoch, lease) count only in the generation they were issued in: after
    ``FLUSHALL`` or a restart without persistence, which reset every shared circuit
    to closed, epochs and lease ids start again from 0, and a call admitted before
    must not count as, or free the slot of, a call admitted after.
``<prefix>:{<name>}:probes``
    A sorted set of the probe leases held in half-open, scored by their expiry. The
    process running a probe renews its lease while the probe runs (``renew``), so
    only the lease of a process that died or lost Redis expires.

The clock is Redis ``TIME`` (ARGV[1] empty), or ARGV[1] in microseconds when the
breaker was given a clock of its own (tests). The thresholds come from the caller's
configuration with every call.

Round trips: a call admitted while closed costs one script (a read, no write); its
success costs nothing more unless failures were pending, which it then clears; a
failure, a probe's outcome and a reset cost one more. Reading the state from a
local copy instead would save the first round trip but let every process keep
calling an upstream for as long as its copy is stale after another process opened
the circuit, so every admission asks Redis.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ._redis import Channel

__all__ = ["KEEP_MS", "SCRIPTS", "keys_for", "run"]

#: Milliseconds a circuit's keys outlive their last write (a week).
KEEP_MS: Final = 7 * 24 * 3600 * 1000

_HEAD = """
if redis.replicate_commands then redis.replicate_commands() end
local function clock()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local KEEP = @KEEP@
local h = redis.call('HMGET', KEYS[1], 's', 'e', 'f', 'n', 'o', 'g')
local state = tonumber(h[1]) or 0
local epoch = tonumber(h[2]) or 0
local failures = tonumber(h[3]) or 0
local successes = tonumber(h[4]) or 0
local opened = tonumber(h[5]) or 0
local gen = h[6] or '0'
local function own()
  if gen == '0' then
    gen = ARGV[#ARGV]
    redis.call('HSET', KEYS[1], 'g', gen)
  end
end
local function move(to, now)
  own()
  epoch = epoch + 1
  state = to
  redis.call('HSET', KEYS[1], 's', to, 'e', epoch, 'f', 0, 'n', 0)
  if to == 1 then
    opened = now
    redis.call('HSET', KEYS[1], 'o', string.format('%d', now))
  end
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], KEEP)
end
""".replace("@KEEP@", str(KEEP_MS))

# ARGV: now, recovery (us), max probes, lease (us), generation candidate.
# Returns {admitted, state, epoch, extra, old state or -1, opened (us), generation,
# failures}; extra is the failure count (admitted while closed), the lease id (a
# probe) or the ms to wait.
_ADMIT = (
    _HEAD
    + """
if state == 0 then return {1, 0, epoch, failures, -1, opened, tonumber(gen), failures} end
local now = clock()
local old = -1
if state == 1 then
  local due = opened + tonumber(ARGV[2])
  if now < due then
    return {0, 1, epoch, math.ceil((due - now) / 1000), -1, opened, tonumber(gen), failures}
  end
  move(2, now)
  old = 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return {0, 2, epoch, 1000, old, opened, tonumber(gen), failures}
end
own()
local lease = redis.call('HINCRBY', KEYS[1], 'l', 1)
local expiry = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], string.format('%d', expiry), lease)
redis.call('PEXPIRE', KEYS[2], KEEP)
return {1, 2, epoch, lease, old, opened, tonumber(gen), failures}
"""
)

# ARGV: now, epoch, outcome (0 neutral, 1 success, 2 failure), lease or '',
# failure threshold, success threshold, generation, generation candidate.
# Returns {state, epoch, old state or -1, failures, opened (us)}.
_RECORD = (
    _HEAD
    + """
-- A call admitted while closed before the circuit had any state carries generation 0:
-- it is this state's own call (another call's failure may have created it since).
local mine = ARGV[7] == gen or (ARGV[7] == '0' and state == 0)
if ARGV[4] ~= '' and mine then redis.call('ZREM', KEYS[2], ARGV[4]) end
local outcome = tonumber(ARGV[3])
if tonumber(ARGV[2]) ~= epoch or not mine or outcome == 0 then
  return {state, epoch, -1, failures, opened}
end
local now = clock()
if outcome == 2 then
  own()
  redis.call('HSET', KEYS[1], 'lf', string.format('%d', now))
end
if state == 0 then
  if outcome == 1 then
    if failures > 0 then redis.call('HSET', KEYS[1], 'f', 0) end
    return {0, epoch, -1, 0, opened}
  end
  failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
  redis.call('PEXPIRE', KEYS[1], KEEP)
  if failures >= tonumber(ARGV[5]) then
    move(1, now)
    return {1, epoch, 0, 0, opened}
  end
  return {0, epoch, -1, failures, opened}
end
if state == 2 and ARGV[4] ~= '' then
  if outcome == 2 then
    move(1, now)
    return {1, epoch, 2, 0, opened}
  end
  successes = redis.call('HINCRBY', KEYS[1], 'n', 1)
  if successes >= tonumber(ARGV[6]) then
    move(0, now)
    return {0, epoch, 2, 0, opened}
  end
end
return {state, epoch, -1, failures, opened}
"""
)

# ARGV: now, epoch, lease, lease time (us), generation, generation candidate.
# Returns {1} when the lease was renewed, {0} when it is gone (ended, expired, or the
# state moved on).
_RENEW = (
    _HEAD
    + """
if tonumber(ARGV[2]) ~= epoch or ARGV[5] ~= gen then return {0} end
if not redis.call('ZSCORE', KEYS[2], ARGV[3]) then return {0} end
local expiry = clock() + tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], 'XX', string.format('%d', expiry), ARGV[3])
redis.call('PEXPIRE', KEYS[2], KEEP)
return {1}
"""
)

# ARGV: now, recovery (us), generation candidate.
# Returns {state, epoch, old state or -1, failures, opened (us)}.
_PEEK = (
    _HEAD
    + """
if state == 1 then
  local now = clock()
  if now >= opened + tonumber(ARGV[2]) then
    move(2, now)
    return {2, epoch, 1, failures, opened}
  end
end
return {state, epoch, -1, failures, opened}
"""
)

# ARGV: now, generation candidate. Returns {state, epoch, old state or -1, failures, opened (us)}.
_RESET = (
    _HEAD
    + """
local old = state
move(0, clock())
if old == 0 then old = -1 end
return {0, epoch, old, 0, opened}
"""
)

#: Lua source per operation.
SCRIPTS: dict[str, str] = {
    "admit": _ADMIT,
    "record": _RECORD,
    "renew": _RENEW,
    "peek": _PEEK,
    "reset": _RESET,
}
_SHAS = {
    name: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    for name, source in SCRIPTS.items()
}


def keys_for(prefix: str, name: str) -> list[str]:
    """The circuit's two keys: its hash and its probe leases (braces kept out of names)."""
    safe_prefix = prefix.replace("{", "(").replace("}", ")")
    safe_name = name.replace("{", "(").replace("}", ")")
    base = f"{safe_prefix}:{{{safe_name}}}"
    return [base, f"{base}:probes"]


async def run(
    client: Channel | Redis, operation: str, keys: list[str], args: list[str | int]
) -> list[int]:
    """EVALSHA the operation's script; on NOSCRIPT, EVAL it (which also caches it)."""
    from redis.exceptions import NoScriptError

    target: Any = client
    try:
        reply = await target.evalsha(_SHAS[operation], len(keys), *keys, *args)
    except NoScriptError:
        reply = await target.eval(SCRIPTS[operation], len(keys), *keys, *args)
    return [int(value) for value in reply]
