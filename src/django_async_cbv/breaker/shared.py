"""The part of a circuit breaker that keeps its state in Redis (internal).

See ``scripts`` for the scripts and the keys. When the store cannot be reached, the
breaker falls back to its own per-process state, with a rate-limited warning.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from django_async_cbv import _redis
from django_async_cbv._redis.health import health_of
from django_async_cbv._util import StoreError, redis_call
from django_async_cbv.exceptions import CircuitOpenError

from . import scripts
from .calls import _BY_CODE, _Ticket
from .state import CircuitState

if TYPE_CHECKING:
    pass

logger = logging.getLogger("django_async_cbv")

#: Failed calls in a row after which a breaker's store counts as down (then skipped).
_STORE_FAILURES_IN_A_ROW: Final = 2

_generation = 0  # bumped when CACHES or ASYNC_CBV change (keys and named breakers)


def _next_generation() -> None:
    """Forget every breaker's shared keys (CACHES or ASYNC_CBV changed)."""
    global _generation
    _generation += 1


def _generation_candidate() -> int:
    """A random generation, which a script stores when it creates a circuit's state."""
    return random.randrange(1, 1 << 48)


class _SharedState:
    """A breaker's state in Redis (``storage`` set): the scripts, their arguments and
    replies, and the renewal of probe leases. A base of ``CircuitBreaker``."""

    name: str
    storage: str | None
    recovery_timeout: float
    half_open_max_calls: int
    failure_threshold: int
    success_threshold: int
    lease_time: float
    _clock: Callable[[], float] | None
    _seen: CircuitState
    _keys: tuple[int, list[str]] | None
    _background: set[asyncio.Task[None]]
    _shared_failures: int | None
    _sleep: Callable[[float], Awaitable[Any]]
    _rejections: int
    _opened_at: float | None

    if TYPE_CHECKING:

        async def _changed(self, old: CircuitState, new: CircuitState) -> None: ...

        def _release(self, ticket: _Ticket) -> None: ...

    def _renewal(self, ticket: _Ticket) -> asyncio.Task[None] | None:
        """Start renewing a shared probe lease while its call runs; None if not one."""
        epoch, lease, shared, _pending, generation = ticket
        if not shared or lease is None:
            return None
        task = asyncio.ensure_future(self._keep_lease(epoch, lease, generation))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _keep_lease(self, epoch: int, lease: int, generation: int) -> None:
        """Renew a probe lease every third of its time until cancelled (the call ended),
        or until the store says the lease is gone."""
        while True:
            await self._sleep(self.lease_time / 3)
            try:
                reply = await self._shared(
                    "renew",
                    [self._now_arg(), epoch, lease, self._us(self.lease_time), generation],
                )
            except Exception:  # CACHES changed under the call: let the lease expire
                logger.exception("Circuit breaker %r: renewing a probe lease failed", self.name)
                return
            if reply is not None and not reply[0]:
                return

    def _now_arg(self) -> str | int:
        """ARGV[1] of the scripts: '' (Redis ``TIME``) or the breaker's own clock."""
        return "" if self._clock is None else self._us(self._clock())

    @staticmethod
    def _us(seconds: float) -> int:
        return round(seconds * 1_000_000)

    def _shared_keys(self) -> list[str]:
        keys = self._keys
        if keys is None or keys[0] != _generation:
            assert self.storage is not None
            prefix = str(caches[self.storage].make_key("async_cbv:cb"))
            keys = self._keys = (_generation, scripts.keys_for(prefix, self.name))
        return keys[1]

    async def _shared(self, operation: str, args: list[str | int]) -> list[int] | None:
        """Run one script on the shared store; None when it is down (then logged)."""
        alias = self.storage
        assert alias is not None
        health = health_of(alias, "breaker")
        if health.should_skip():
            health.log(
                "Circuit breaker %r: the Redis cache %r is down; using this process's own state.",
                self.name,
                alias,
            )
            self._shared_failures = None
            return None
        try:
            client = _redis.channel_for(alias, "breaker")
        except _redis.RedisConfigError as exc:
            # Reported by the E015 check; a breaker never fails a call for its store.
            self._shared_failures = None
            health.log("Circuit breaker %r: %s", self.name, exc, level=logging.ERROR)
            return None
        if client is None:
            raise ImproperlyConfigured(
                f"CircuitBreaker {self.name!r}: storage {alias!r} is not a Redis cache; "
                "use None (per-process state) or the alias of a Redis cache."
            )
        try:
            reply: list[int] = await redis_call(
                scripts.run(
                    client, operation, self._shared_keys(), [*args, _generation_candidate()]
                )
            )
        except StoreError as exc:
            self._shared_failures = None
            # A breaker never waits on its store for long: a few failures in a row
            # (timeouts of a hung server included) and it skips the store for a while.
            health.failed(definitive=exc.definitive, streak_limit=_STORE_FAILURES_IN_A_ROW)
            health.log(
                "Circuit breaker %r: the Redis cache %r is unavailable (%s); using this "
                "process's own state.",
                self.name,
                alias,
                exc,
            )
            return None
        health.succeeded()
        return reply

    async def _saw(self, code: int, old: int, opened_us: int) -> None:
        """Take in the state a script reply reports; signal a transition it made."""
        self._seen = _BY_CODE[code]
        if code == 1 and opened_us and self._clock is None:
            self._opened_at = opened_us / 1_000_000  # Redis TIME: a Unix time
        if old >= 0:
            await self._changed(_BY_CODE[old], _BY_CODE[code])

    async def _admit_shared(self) -> _Ticket | None:
        args: list[str | int] = [
            self._now_arg(),
            self._us(self.recovery_timeout),
            self.half_open_max_calls,
            self._us(self.lease_time),
        ]
        reply = await self._shared("admit", args)
        if reply is None:
            return None
        admitted, state, epoch, extra, old, opened, generation, failures = reply
        self._shared_failures = failures
        ticket: _Ticket | None = None
        if admitted:
            if state == 0:
                ticket = (epoch, None, True, extra, generation)
            else:
                ticket = (epoch, extra, True, 0, generation)
        try:
            await self._saw(state, old, opened)
        except BaseException:  # cancelled while a receiver ran: free the slot
            if ticket is not None:
                self._release(ticket)
            raise
        if ticket is None:
            self._rejections += 1
            raise CircuitOpenError(self.name, extra / 1000)
        return ticket

    async def _record_shared(
        self, epoch: int, lease: int | None, outcome: int, generation: int
    ) -> None:
        args: list[str | int] = [
            self._now_arg(),
            epoch,
            outcome,
            "" if lease is None else lease,
            self.failure_threshold,
            self.success_threshold,
            generation,
        ]
        reply = await self._shared("record", args)
        if reply is not None:
            state, _epoch, old, failures, opened = reply
            self._shared_failures = failures
            await self._saw(state, old, opened)
