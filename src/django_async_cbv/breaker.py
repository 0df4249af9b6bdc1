"""``CircuitBreaker``: stop calling an upstream service that keeps failing.

A breaker is CLOSED (calls go through) until ``failure_threshold`` consecutive
counted failures open it. While OPEN, calls fail at once with
:class:`~django_async_cbv.CircuitOpenError`. After ``recovery_timeout`` seconds it is
HALF_OPEN: at most ``half_open_max_calls`` probe calls at a time go through;
``success_threshold`` probe successes close it and one probe failure opens it again.

State lives in this process's memory (``storage=None``; see ``_breaker_state``) or,
with ``storage="<cache alias>"`` of a Redis cache, in Redis, shared by every process
(see ``_breaker_redis``). When that Redis cannot be reached, a breaker falls back to
its own per-process state, with a rate-limited warning, until Redis answers again:
a breaker never fails a call because its store is down.

:class:`AsyncCircuitBreakerMixin` runs a view's handler through a breaker as the
:data:`~django_async_cbv.stages.BREAKER` request stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Final, ParamSpec, TypeVar

from asgiref.sync import iscoroutinefunction
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

from . import _breaker_redis, _redis
from ._breaker_state import (
    FAILURE,
    NEUTRAL,
    SUCCESS,
    CircuitState,
    CircuitStats,
    MemoryCircuit,
)
from ._store_health import health_of, is_definitive
from .conf import BREAKER_DEFAULTS, get_settings
from .exceptions import CircuitOpenError, HandlerTimeout, UpstreamError, UpstreamTimeout
from .signals import circuit_state_changed
from .stages import BREAKER, CallNext, request_stage

__all__ = [
    "UPSTREAM_FAILURES",
    "AsyncCircuitBreakerMixin",
    "CircuitBreaker",
    "CircuitState",
    "CircuitStats",
    "get_breaker",
    "upstream_unwell",
]

logger = logging.getLogger("django_async_cbv")

P = ParamSpec("P")
T = TypeVar("T")

_CLOSED: Final = CircuitState.CLOSED
_OPEN: Final = CircuitState.OPEN
_HALF_OPEN: Final = CircuitState.HALF_OPEN
_BY_CODE: Final = (_CLOSED, _OPEN, _HALF_OPEN)  # the state codes of the Redis scripts

#: The exceptions :class:`AsyncCircuitBreakerMixin` counts as failures of an upstream
#: (an ``UpstreamError`` only when :func:`upstream_unwell` says so).
UPSTREAM_FAILURES: Final = (UpstreamError, UpstreamTimeout, TimeoutError, OSError)


def upstream_unwell(exc: BaseException) -> bool:
    """Whether an upstream error says the service is unwell: the one rule.

    An ``UpstreamError`` counts only without a status (connection error, timeout,
    unreadable answer), with a 5xx or with a 429; any other 4xx means the service
    answered. Any other exception is left to the breaker's own classification.
    """
    if isinstance(exc, UpstreamError) and not isinstance(exc, UpstreamTimeout):
        status = exc.status
        return status is None or status >= 500 or status == 429
    return True


Classify = Callable[[BaseException], int]


_COUNTED: Final = "_django_async_cbv_counted"


def _counted(exc: BaseException, breaker: object) -> bool:
    """Whether ``breaker`` counted ``exc`` as a failure already (in a nested call)."""
    return breaker in getattr(exc, _COUNTED, ())


def _mark_counted(exc: BaseException, breaker: object) -> None:
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _COUNTED, (*getattr(exc, _COUNTED, ()), breaker))


class _CallTimeout(TimeoutError):
    """A call protected by a breaker outlived the breaker's ``timeout``."""


# A ticket for one admitted call: (epoch, probe lease or None, admitted by the shared
# store, closed-state failures pending in the shared store, generation of the shared
# state it was admitted in).
_Ticket = tuple[int, int | None, bool, int, int]

# The breakers entered with ``async with`` in the current task, innermost last; the
# ticket is None for a block nested in a call of the same breaker (passed through).
_entered: contextvars.ContextVar[
    tuple[tuple[Any, _Ticket | None, asyncio.Timeout | None, Any], ...]
] = contextvars.ContextVar("django_async_cbv_breakers", default=())

# The breakers whose protected call the current context runs in (the current task
# and the tasks it starts). A call of one of them inside it passes straight through:
# the outer call was admitted and records the outcome, once.
_active: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
    "django_async_cbv_active_breakers", default=()
)


def _exception_types(value: object, what: str) -> tuple[type[BaseException], ...]:
    if isinstance(value, type):
        value = (value,)
    if not isinstance(value, tuple | list) or not all(
        isinstance(item, type) and issubclass(item, BaseException) for item in value
    ):
        raise TypeError(
            f"CircuitBreaker {what} must be a tuple of exception classes, not {value!r}"
        )
    return tuple(value)


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"CircuitBreaker {what} must be a whole number >= 1, not {value!r}")
    return value


def _seconds(value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"CircuitBreaker {what} must be a positive number of seconds, not {value!r}"
        )
    return float(value)


class CircuitBreaker:
    """Protect calls to one upstream service; see the module docstring.

    Use ``await breaker.call(fn, *args, **kwargs)``, ``@breaker`` on an
    ``async def``, or ``async with breaker:``. ``failure_exceptions`` are counted as
    failures, ``ignored_exceptions`` as neither success nor failure; any other
    exception counts as a success (the call reached the service and came back).
    ``timeout`` (seconds) cancels a slower call, which raises ``TimeoutError`` and
    counts as a failure. ``clock`` (seconds, monotonic) replaces the clock, Redis
    ``TIME`` included: for tests.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = BREAKER_DEFAULTS["failure_threshold"],
        recovery_timeout: float = BREAKER_DEFAULTS["recovery_timeout"],
        half_open_max_calls: int = BREAKER_DEFAULTS["half_open_max_calls"],
        success_threshold: int = BREAKER_DEFAULTS["success_threshold"],
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        ignored_exceptions: tuple[type[BaseException], ...] = (),
        timeout: float | None = BREAKER_DEFAULTS["timeout"],
        storage: str | None = BREAKER_DEFAULTS["storage"],
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"A CircuitBreaker name must be a non-empty string, not {name!r}")
        if storage is not None and not (isinstance(storage, str) and storage):
            raise ValueError(
                f"CircuitBreaker storage must be None or a cache alias, not {storage!r}"
            )
        self.name = name
        self.failure_threshold = _whole(failure_threshold, "failure_threshold")
        self.recovery_timeout = _seconds(recovery_timeout, "recovery_timeout")
        self.half_open_max_calls = _whole(half_open_max_calls, "half_open_max_calls")
        self.success_threshold = _whole(success_threshold, "success_threshold")
        self.failure_exceptions = _exception_types(failure_exceptions, "failure_exceptions")
        self.ignored_exceptions = _exception_types(ignored_exceptions, "ignored_exceptions")
        # An inner breaker's refusal is not the service failing.
        self._neutral: tuple[type[BaseException], ...] = (
            CircuitOpenError,
            *self.ignored_exceptions,
        )
        self.timeout = None if timeout is None else _seconds(timeout, "timeout")
        self.storage = storage
        self._clock = clock
        #: Seconds a shared probe lease lasts unless renewed: its process renews it
        #: while the probe runs, so only the lease of a process that died expires.
        self.lease_time = self.timeout if self.timeout is not None else self.recovery_timeout
        self._mem = MemoryCircuit(
            failure_threshold=self.failure_threshold,
            recovery_timeout=self.recovery_timeout,
            half_open_max_calls=self.half_open_max_calls,
            success_threshold=self.success_threshold,
            # In this process, a probe's slot is freed when its call ends, however it
            # ends: it never expires while the call runs.
            lease_time=math.inf,
            clock=clock or time.monotonic,
        )
        # The closed-state fast path serves in-memory breakers without a timeout.
        self._fast = self._mem if storage is None and self.timeout is None else None
        self._seen: CircuitState = _CLOSED  # the shared state as last seen
        self._keys: tuple[int, list[str]] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._shared_failures: int | None = None  # as the shared store last said
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep  # lease renewals
        self._successes = 0
        self._failures = 0
        self._ignored = 0
        self._rejections = 0
        self._timeouts = 0
        self._last_failure: str | None = None
        self._last_failure_at: float | None = None
        self._opened_at: float | None = None
        with _instances_lock:
            _instances.add(self)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self.state.value}>"

    # -- configuration -------------------------------------------------------------

    @property
    def config(self) -> tuple[Any, ...]:
        """Everything that configures the breaker (two breakers of one name must agree)."""
        return (
            self.failure_threshold,
            self.recovery_timeout,
            self.half_open_max_calls,
            self.success_threshold,
            self.failure_exceptions,
            self.ignored_exceptions,
            self.timeout,
            self.storage,
        )

    # -- state ---------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The state this process last saw (no I/O)."""
        if self.storage is None:
            return self._mem.state
        return self._seen

    async def current_state(self) -> CircuitState:
        """Read the state (from Redis with shared storage), making a due transition."""
        if self.storage is not None:
            reply = await self._shared("peek", [self._now_arg(), self._us(self.recovery_timeout)])
            if reply is not None:
                code, _epoch, old, failures, opened = reply
                self._shared_failures = failures
                await self._saw(code, old, opened)
                return _BY_CODE[code]
        state, change = self._mem.peek()
        if change is not None:
            await self._changed(*change)
        return state

    async def reset(self) -> None:
        """Close the circuit; the outcomes of calls in flight no longer count."""
        change = self._mem.reset()  # the fallback state too
        if self.storage is not None:
            reply = await self._shared("reset", [self._now_arg()])
            if reply is not None:
                state, _epoch, old, failures, opened = reply
                self._shared_failures = failures
                await self._saw(state, old, opened)
                return
        if change is not None:
            await self._changed(*change)

    @property
    def stats(self) -> CircuitStats:
        """Counts, last failure and opened-at of this breaker in this process."""
        mem = self._mem
        opened = self._opened_at if self.storage is not None else mem.opened_wall
        return CircuitStats(
            state=self.state,
            successes=self._successes,
            failures=self._failures,
            ignored=self._ignored,
            rejections=self._rejections,
            timeouts=self._timeouts,
            consecutive_failures=(
                self._shared_failures
                if self.storage is not None and self._shared_failures is not None
                else mem.failures
            ),
            last_failure=self._last_failure,
            last_failure_at=self._last_failure_at,
            opened_at=opened,
        )

    # -- calling -------------------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Raises ``CircuitOpenError`` without calling ``fn`` while the circuit is open
        (or every probe slot is taken), ``TimeoutError`` when ``timeout`` expires,
        and whatever ``fn`` raises.
        """
        # The closed-state fast path: no lock, no await but the call itself. (The
        # decorator repeats it inline rather than calling this, saving a coroutine.)
        mem = self._fast
        if mem is not None:
            epoch = mem.epoch  # before the state: a transition in between changes it
            if mem.state is _CLOSED:
                # No context variable is set here (that would double the cost of the
                # call): a call nested in this one is admitted on its own, and a
                # failure both raise is counted once (see _closed_ended).
                if self in _active.get():
                    return await fn(*args, **kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    await self._closed_ended(epoch, self._classify(exc), exc)
                    raise
                self._successes += 1
                if mem.failures:
                    mem.record(epoch, None, SUCCESS)
                return result
        return await self._guard(fn, args, kwargs, self._classify)

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate an ``async def``: every call of it goes through the breaker."""
        if not iscoroutinefunction(fn):
            raise TypeError(f"@CircuitBreaker decorates an async def, not {fn!r}")
        breaker = self

        @functools.wraps(fn)
        async def protected(*args: P.args, **kwargs: P.kwargs) -> T:
            mem = breaker._fast
            if mem is not None:
                epoch = mem.epoch  # before the state: a transition in between changes it
                if mem.state is _CLOSED:
                    if breaker in _active.get():
                        return await fn(*args, **kwargs)
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        await breaker._closed_ended(epoch, breaker._classify(exc), exc)
                        raise
                    breaker._successes += 1
                    if mem.failures:
                        mem.record(epoch, None, SUCCESS)
                    return result
            return await breaker._guard(fn, args, kwargs, breaker._classify)

        return protected

    async def __aenter__(self) -> CircuitBreaker:
        active = _active.get()
        if self in active:  # nested in a call of this breaker: pass through
            _entered.set((*_entered.get(), (self, None, None, active)))
            return self
        start = self._start()
        ticket = await self._admit()
        renewal = self._renewal(ticket)
        scope = None
        if self.timeout is not None:
            scope = self._scope(start, ticket)
            try:
                await scope.__aenter__()
            except BaseException:
                self._stop(renewal)
                self._release(ticket)
                raise
        _entered.set((*_entered.get(), (self, ticket, scope, (active, renewal))))
        _active.set((*active, self))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entered = _entered.get()
        index = max(i for i, (breaker, *_) in enumerate(entered) if breaker is self)
        _, ticket, scope, extra = entered[index]
        _entered.set(entered[:index] + entered[index + 1 :])
        if ticket is None:
            return  # passed through: the outer call records the outcome
        active, renewal = extra
        _active.set(active)
        self._stop(renewal)
        if scope is not None:
            try:
                await scope.__aexit__(exc_type, exc, tb)
            except TimeoutError as expired:
                await self._ended(ticket, FAILURE, None, timed_out=True)
                raise _CallTimeout(self._timeout_message()) from expired
        if exc is None:
            await self._ended(ticket, SUCCESS, None)
        else:
            await self._ended(ticket, self._classify(exc), exc)

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

    def _renewal(self, ticket: _Ticket) -> asyncio.Task[None] | None:
        """Start renewing a shared probe lease while its call runs; None if not one."""
        epoch, lease, shared, _pending, generation = ticket
        if not shared or lease is None:
            return None
        task = asyncio.ensure_future(self._keep_lease(epoch, lease, generation))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    @staticmethod
    def _stop(renewal: asyncio.Task[None] | None) -> None:
        if renewal is not None:
            renewal.cancel()

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

    # -- shared storage ------------------------------------------------------------

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
            keys = self._keys = (_generation, _breaker_redis.keys_for(prefix, self.name))
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
        from redis.exceptions import RedisError

        try:
            reply = await _breaker_redis.run(
                client, operation, self._shared_keys(), [*args, _generation_candidate()]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._shared_failures = None
            # A breaker never waits on its store for long: a few failures in a row
            # (timeouts of a hung server included) and it skips the store for a while.
            health.failed(definitive=is_definitive(exc), streak_limit=_STORE_FAILURES_IN_A_ROW)
            health.log(
                "Circuit breaker %r: the Redis cache %r is unavailable (%s: %s); using this "
                "process's own state.",
                self.name,
                alias,
                type(exc).__name__,
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


#: Failed calls in a row after which a breaker's store counts as down (then skipped).
_STORE_FAILURES_IN_A_ROW: Final = 2


def _generation_candidate() -> int:
    """A random generation, which a script stores when it creates a circuit's state."""
    return random.randrange(1, 1 << 48)


# -- named breakers --------------------------------------------------------------------

_instances_lock = threading.Lock()
_instances: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
_named: dict[str, CircuitBreaker] = {}
_generation = 0  # bumped when CACHES or ASYNC_CBV change (keys and named breakers)


def get_breaker(name: str) -> CircuitBreaker:
    """The one process-wide breaker configured as ``ASYNC_CBV["CIRCUIT_BREAKERS"][name]``.

    A name the setting does not list gets a breaker with the default options.
    Raises ``ImproperlyConfigured`` when the setting is invalid.
    """
    breaker = _named.get(name)
    if breaker is not None:
        return breaker
    config = get_settings().circuit_breakers.get(name)
    with _instances_lock:
        breaker = _named.get(name)
    if breaker is None:
        options: dict[str, Any] = {}
        if config is not None:
            options = {key: getattr(config, key) for key in BREAKER_DEFAULTS}
        made = CircuitBreaker(name, **options)
        with _instances_lock:
            breaker = _named.setdefault(name, made)
    return breaker


def breakers() -> list[CircuitBreaker]:
    """Every breaker alive in this process (for the system checks)."""
    with _instances_lock:
        return list(_instances)


@receiver(setting_changed)
def _forget_named(*, setting: str, **kwargs: Any) -> None:
    global _generation
    if setting in ("ASYNC_CBV", "CACHES"):
        with _instances_lock:
            _named.clear()
            _generation += 1


# -- the view mixin --------------------------------------------------------------------


def _validate_breaker_spec(view: str, spec: object) -> None:
    if isinstance(spec, CircuitBreaker) or (isinstance(spec, str) and spec):
        return
    raise ImproperlyConfigured(
        f"{view}.circuit_breaker is {spec!r}; set it to the name of a breaker in "
        "ASYNC_CBV['CIRCUIT_BREAKERS'] or to a CircuitBreaker instance."
    )


class AsyncCircuitBreakerMixin:
    """Run the handler through a circuit breaker; answer 503 while it is open.

    Put it in the bases of an :class:`~django_async_cbv.AsyncView` (in any order).
    Only upstream failures count (:data:`UPSTREAM_FAILURES`: ``UpstreamError``
    when :func:`upstream_unwell` says so, ``UpstreamTimeout``, ``TimeoutError``,
    ``OSError``, when the breaker counts them too); any other exception, such as an
    upstream's 404 or a ``ProblemError`` 404 or 403, counts as neither success nor
    failure, so it never opens the circuit (nor closes it). A returned response
    counts as a success, whatever its status. An ``AsyncHTTPClient`` on the same
    breaker inside the handler is part of this call: it passes straight through.
    While the circuit is open the client gets 503 problem+json with ``Retry-After``.
    """

    #: The name of a breaker in ``ASYNC_CBV["CIRCUIT_BREAKERS"]`` (see
    #: :func:`get_breaker`), or a :class:`CircuitBreaker`.
    circuit_breaker: ClassVar[str | CircuitBreaker | None] = None

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Validate ``circuit_breaker`` (and the ``as_view()`` argument); see AsyncView."""
        super().check_configuration(initkwargs)  # type: ignore[misc]
        spec = (initkwargs or {}).get("circuit_breaker", cls.circuit_breaker)
        _validate_breaker_spec(cls.__qualname__, spec)

    def get_circuit_breaker(self) -> CircuitBreaker:
        """The breaker for this request. Override to choose one per request."""
        spec = self.circuit_breaker
        if isinstance(spec, CircuitBreaker):
            return spec
        _validate_breaker_spec(type(self).__qualname__, spec)
        assert isinstance(spec, str)
        return get_breaker(spec)

    @request_stage(BREAKER)
    async def circuit_breaker_stage(
        self, request: HttpRequest, call_next: CallNext
    ) -> HttpResponseBase:
        """Run the rest of the chain (the handler) through the breaker."""
        breaker = self.get_circuit_breaker()
        classify = breaker._classify

        def upstream_only(exc: BaseException) -> int:
            if (
                isinstance(exc, UPSTREAM_FAILURES)
                and upstream_unwell(exc)
                and classify(exc) == FAILURE
            ):
                return FAILURE
            return NEUTRAL

        try:
            return await breaker._guard(call_next, (request,), {}, upstream_only)
        except _CallTimeout:
            assert breaker.timeout is not None
            raise HandlerTimeout(breaker.timeout) from None
