"""How a circuit breaker admits a call and records its outcome (internal)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django_async_cbv.exceptions import CircuitOpenError
from django_async_cbv.signals import circuit_state_changed

from .calls import _OPEN, Classify, _active, _CallTimeout, _counted, _mark_counted, _Ticket
from .shared import _SharedState
from .state import FAILURE, NEUTRAL, SUCCESS, CircuitState, MemoryCircuit

logger = logging.getLogger("django_async_cbv")

T = TypeVar("T")


class _CircuitEngine(_SharedState):
    """Admission, timeouts and outcomes of protected calls. A base of ``CircuitBreaker``."""

    timeout: float | None
    failure_exceptions: tuple[type[BaseException], ...]
    _neutral: tuple[type[BaseException], ...]
    _mem: MemoryCircuit
    _successes: int
    _failures: int
    _ignored: int
    _timeouts: int
    _last_failure: str | None
    _last_failure_at: float | None

    def _classify(self, exc: BaseException) -> int:
        """How an exception raised by a protected call counts."""
        if not isinstance(exc, Exception):  # cancellation, GeneratorExit, KeyboardInterrupt
            return NEUTRAL
        if isinstance(exc, self._neutral):
            return NEUTRAL
        if isinstance(exc, self.failure_exceptions):
            return FAILURE
        return SUCCESS

    async def _guard(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        classify: Classify,
    ) -> T:
        """The general path: admit, call under the timeout, record the outcome.

        A call nested in a call of this same breaker (in this task, or a task the
        outer call started) passes straight through: no admission, no recording.
        """
        active = _active.get()
        if self in active:
            return await fn(*args, **kwargs)
        start = self._start()
        ticket = await self._admit()
        renewal = self._renewal(ticket)
        _active.set((*active, self))
        try:
            if self.timeout is None:
                result = await fn(*args, **kwargs)
            else:
                scope = self._scope(start, ticket)
                try:
                    async with scope:
                        result = await fn(*args, **kwargs)
                except TimeoutError as exc:
                    if not scope.expired():
                        raise
                    raise _CallTimeout(self._timeout_message()) from exc
        except _CallTimeout:
            _active.set(active)
            self._stop(renewal)
            await self._ended(ticket, FAILURE, None, timed_out=True)
            raise
        except BaseException as exc:
            _active.set(active)
            self._stop(renewal)
            await self._ended(ticket, classify(exc), exc)
            raise
        _active.set(active)
        self._stop(renewal)
        await self._ended(ticket, SUCCESS, None)
        return result

    def _start(self) -> float:
        """The loop time a call's timeout counts from: before its admission, so that a
        shared probe lease (taken during admission) never ends before the timeout."""
        return asyncio.get_running_loop().time() if self.timeout is not None else 0.0

    def _scope(self, start: float, ticket: _Ticket) -> asyncio.Timeout:
        assert self.timeout is not None
        if ticket[2]:
            return asyncio.timeout_at(start + self.timeout)
        return asyncio.timeout(self.timeout)

    @staticmethod
    def _stop(renewal: asyncio.Task[None] | None) -> None:
        if renewal is not None:
            renewal.cancel()

    def _timeout_message(self) -> str:
        return f"circuit {self.name!r}: the call did not finish within {self.timeout:g}s"

    async def _closed_ended(self, epoch: int, outcome: int, exc: BaseException) -> None:
        """The fast path's failure: record it in memory (no await unless it opened)."""
        if outcome == FAILURE:
            if _counted(exc, self):
                return  # a nested call of this breaker counted it already
            _mark_counted(exc, self)
        self._count(outcome, exc, timed_out=False)
        if outcome != SUCCESS or self._mem.failures:
            change = self._mem.record(epoch, None, outcome)
            if change is not None:
                await self._changed(*change)

    def _count(self, outcome: int, exc: BaseException | None, *, timed_out: bool) -> None:
        if outcome == SUCCESS:
            self._successes += 1
        elif outcome == NEUTRAL:
            self._ignored += 1
        else:
            self._failures += 1
            self._timeouts += timed_out
            self._last_failure = (
                f"{type(exc).__name__}: {exc}" if exc is not None else "TimeoutError: timed out"
            )
            self._last_failure_at = time.time()

    async def _admit(self) -> _Ticket:
        """Admit a call (raising ``CircuitOpenError`` if refused); return its ticket."""
        if self.storage is not None:
            ticket = await self._admit_shared()
            if ticket is not None:
                return ticket
        epoch, lease, retry_after, change = self._mem.admit()
        self._seen = self._mem.state
        if change is not None:
            try:
                await self._changed(*change)
            except BaseException:  # cancelled while a receiver ran: free the slot
                if epoch >= 0:
                    self._mem.record(epoch, lease, NEUTRAL)
                raise
        if epoch < 0:
            self._rejections += 1
            raise CircuitOpenError(self.name, retry_after)
        return (epoch, lease, False, 0, 0)

    def _release(self, ticket: _Ticket) -> None:
        """Free the probe slot of a call that never ran (no outcome recorded)."""
        epoch, lease, shared, _pending, generation = ticket
        if lease is None:
            return
        if not shared:
            self._mem.record(epoch, lease, NEUTRAL)
            return
        self._in_background(self._record_shared(epoch, lease, NEUTRAL, generation))

    def _in_background(self, work: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``work`` in a task of its own, which cancelling the caller does not stop."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _ended(
        self,
        ticket: _Ticket,
        outcome: int,
        exc: BaseException | None,
        *,
        timed_out: bool = False,
    ) -> None:
        """Record the outcome of an admitted call."""
        if outcome == FAILURE and exc is not None:
            if _counted(exc, self):  # by a nested call of this breaker: count it once
                outcome = NEUTRAL
            else:
                _mark_counted(exc, self)
        self._count(outcome, exc, timed_out=timed_out)
        epoch, lease, shared, pending, generation = ticket
        if not shared:
            change = self._mem.record(epoch, lease, outcome)
            if change is not None:
                await self._changed(*change)
            return
        if lease is None and (outcome == NEUTRAL or (outcome == SUCCESS and not pending)):
            return  # a closed-state call with nothing to write
        if isinstance(exc, GeneratorExit):
            return  # closed outside a running call: nothing may be awaited; the lease expires
        if exc is not None and not isinstance(exc, Exception):
            # Cancelled: free the probe slot in a task of its own, which a second
            # cancellation of the caller does not stop.
            task = self._in_background(self._record_shared(epoch, lease, NEUTRAL, generation))
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
            return
        await self._record_shared(epoch, lease, outcome, generation)

    async def _changed(self, old: CircuitState, new: CircuitState) -> None:
        """Log a transition this process made, and send ``circuit_state_changed``."""
        self._seen = new
        if new is _OPEN:
            self._opened_at = time.time()
        logger.log(
            logging.WARNING if new is _OPEN else logging.INFO,
            "Circuit breaker %r: %s -> %s",
            self.name,
            old.value,
            new.value,
        )
        # A receiver's error is logged, never raised into the protected call (every
        # receiver still runs). Cancellation does propagate: see ``_admit``.
        try:
            sent = await circuit_state_changed.asend_robust(
                sender=self, old_state=old, new_state=new
            )
        except Exception:  # Django's own logging of a receiver's error failed
            logger.exception("Circuit breaker %r: sending circuit_state_changed failed", self.name)
            return
        for receiver_, result in sent:
            if isinstance(result, BaseException):
                logger.error(
                    "Circuit breaker %r: circuit_state_changed receiver %r raised",
                    self.name,
                    receiver_,
                    exc_info=result,
                )
