"""``CircuitBreaker``: stop calling an upstream service that keeps failing.

A breaker is CLOSED (calls go through) until ``failure_threshold`` consecutive
counted failures open it. While OPEN, calls fail at once with
:class:`~django_async_cbv.CircuitOpenError`. After ``recovery_timeout`` seconds it is
HALF_OPEN: at most ``half_open_max_calls`` probe calls at a time go through;
``success_threshold`` probe successes close it and one probe failure opens it again.

State lives in this process's memory (``storage=None``; see ``state``) or,
with ``storage="<cache alias>"`` of a Redis cache, in Redis, shared by every process
(see ``shared`` and ``scripts``). When that Redis cannot be reached, a breaker falls back to
its own per-process state, with a rate-limited warning, until Redis answers again:
a breaker never fails a call because its store is down.

:class:`AsyncCircuitBreakerMixin` runs a view's handler through a breaker as the
:data:`~django_async_cbv.stages.BREAKER` request stage.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import iscoroutinefunction
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_async_cbv.conf import BREAKER_DEFAULTS, get_settings
from django_async_cbv.exceptions import CircuitOpenError

from . import shared
from .calls import (
    _BY_CODE,
    _CLOSED,
    _active,
    _CallTimeout,
    _entered,
    _exception_types,
    _seconds,
    _whole,
)
from .engine import _CircuitEngine
from .state import FAILURE, SUCCESS, CircuitState, CircuitStats, MemoryCircuit

__all__ = ["CircuitBreaker", "breakers", "get_breaker"]

P = ParamSpec("P")
T = TypeVar("T")


class CircuitBreaker(_CircuitEngine):
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


# -- named breakers --------------------------------------------------------------------

_instances_lock = threading.Lock()
_instances: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
_named: dict[str, CircuitBreaker] = {}


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
    if setting in ("ASYNC_CBV", "CACHES"):
        with _instances_lock:
            _named.clear()
            shared._next_generation()
