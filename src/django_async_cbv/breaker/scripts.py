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

from typing import TYPE_CHECKING, Any, Final

from django_async_cbv._util import lua_script, script_sha

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from django_async_cbv._redis import AnyChannel

__all__ = ["KEEP_MS", "SCRIPTS", "keys_for", "run"]

#: Milliseconds a circuit's keys outlive their last write (a week).
KEEP_MS: Final = 7 * 24 * 3600 * 1000

# The scripts are ``lua/head.lua`` (the clock, the circuit's fields, ``own()`` and
# ``move()``; ``@KEEP@`` stands for KEEP_MS) followed by the operation's own file.
#
# admit: ARGV: now, recovery (us), max probes, lease (us), generation candidate.
#   Returns {admitted, state, epoch, extra, old state or -1, opened (us), generation,
#   failures}; extra is the failure count (admitted while closed), the lease id (a
#   probe) or the ms to wait.
# record: ARGV: now, epoch, outcome (0 neutral, 1 success, 2 failure), lease or '',
#   failure threshold, success threshold, generation, generation candidate.
#   Returns {state, epoch, old state or -1, failures, opened (us)}.
# renew: ARGV: now, epoch, lease, lease time (us), generation, generation candidate.
#   Returns {1} when the lease was renewed, {0} when it is gone (ended, expired, or the
#   state moved on).
# peek: ARGV: now, recovery (us), generation candidate.
#   Returns {state, epoch, old state or -1, failures, opened (us)}.
# reset: ARGV: now, generation candidate.
#   Returns {state, epoch, old state or -1, failures, opened (us)}.
_HEAD = lua_script("django_async_cbv.breaker", "lua/head.lua").replace("@KEEP@", str(KEEP_MS))

#: Lua source per operation.
SCRIPTS: dict[str, str] = {
    name: _HEAD + lua_script("django_async_cbv.breaker", f"lua/{name}.lua")
    for name in ("admit", "record", "renew", "peek", "reset")
}
_SHAS = {name: script_sha(source) for name, source in SCRIPTS.items()}


def keys_for(prefix: str, name: str) -> list[str]:
    """The circuit's two keys: its hash and its probe leases (braces kept out of names)."""
    safe_prefix = prefix.replace("{", "(").replace("}", ")")
    safe_name = name.replace("{", "(").replace("}", ")")
    base = f"{safe_prefix}:{{{safe_name}}}"
    return [base, f"{base}:probes"]


async def run(
    client: AnyChannel | Redis, operation: str, keys: list[str], args: list[str | int]
) -> list[int]:
    """EVALSHA the operation's script; on NOSCRIPT, EVAL it (which also caches it)."""
    from redis.exceptions import NoScriptError

    target: Any = client
    try:
        reply = await target.evalsha(_SHAS[operation], len(keys), *keys, *args)
    except NoScriptError:
        reply = await target.eval(SCRIPTS[operation], len(keys), *keys, *args)
    return [int(value) for value in reply]
