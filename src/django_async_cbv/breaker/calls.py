"""What a breaker counts, and the calls in progress (internal).

The exceptions the view mixin counts, how a failure is marked as counted (once per
breaker, however deeply calls of one breaker nest), the tickets of admitted calls
and the context variables that tell a nested call of a breaker to pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable
from typing import Any, Final

from django_async_cbv._validation import positive_number, whole_number
from django_async_cbv.exceptions import UpstreamError, UpstreamTimeout

from .state import CircuitState

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
    return whole_number(value, 1, f"CircuitBreaker {what} must be a whole number >= 1")


def _seconds(value: object, what: str) -> float:
    return positive_number(value, f"CircuitBreaker {what} must be a positive number of seconds")
