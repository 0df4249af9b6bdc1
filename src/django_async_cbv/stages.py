"""Request stages: the fixed order in which ``AsyncView.dispatch`` passes a request on.

A stage is an async method ``stage(self, request, call_next) -> response`` marked with
:func:`request_stage` and a position. ``dispatch`` runs the stages of a view class in
the order of their positions, whatever the order of the mixins in the class bases::

    USER (100)        the user is resolved (AsyncAPIView: authenticate())
    RATE_LIMIT (200)  rate limiting
    ACCESS (300)      access checks (AsyncAPIView: CSRF, has_permission())
    CACHE (400)       response caching
    EXCEPTIONS (450)  exceptions handle_exception() maps become responses here
    BREAKER (500)     circuit breaking: sees the handler's exceptions as raised
    (handler)         the handler, bounded by the view's timeout

Each stage either answers itself (returns a response without calling ``call_next``)
or awaits ``call_next(request)`` and may change the response it gets. A stage placed
before ``EXCEPTIONS`` always gets a response from ``call_next`` for the exceptions that
``handle_exception()`` maps; an exception raised by such a stage itself is mapped the
same way before the stage above it sees it. Stages placed after ``EXCEPTIONS`` see
exceptions as raised. Exceptions that ``handle_exception()`` does not map reach Django
untouched; stages see them only in their ``finally`` blocks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase

__all__ = [
    "ACCESS",
    "BREAKER",
    "CACHE",
    "EXCEPTIONS",
    "RATE_LIMIT",
    "USER",
    "CallNext",
    "request_stage",
    "stages_of",
]

USER: Final = 100
RATE_LIMIT: Final = 200
ACCESS: Final = 300
CACHE: Final = 400
EXCEPTIONS: Final = 450
BREAKER: Final = 500

#: What a stage receives as ``call_next``: the rest of the chain.
CallNext = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

_MARK = "request_stage_position"

F = TypeVar("F", bound=Callable[..., Any])


def request_stage(position: int) -> Callable[[F], F]:
    """Mark an ``async def stage(self, request, call_next)`` method as a request stage.

    ``position`` orders the stages of a view (lower runs first); use the constants of
    this module, or a number between two of them. ``EXCEPTIONS`` itself is taken.
    A subclass that overrides a stage method keeps its position without repeating
    the decorator, and may call ``super()``.
    """
    if isinstance(position, bool) or not isinstance(position, int):
        raise TypeError(f"request_stage() takes a whole-number position, not {position!r}")
    if position == EXCEPTIONS:
        raise ValueError(f"request_stage() position {EXCEPTIONS} is where exceptions are mapped")

    def mark(func: F) -> F:
        if not iscoroutinefunction(func):
            raise TypeError(
                f"request stage {getattr(func, '__qualname__', func)!r} must be an async def "
                "method taking (self, request, call_next)"
            )
        setattr(func, _MARK, position)
        return func

    return mark


def stages_of(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the stage method names of ``cls``: those before and after ``EXCEPTIONS``.

    Each tuple is in running order (by position, then by name). A name keeps the
    position of the nearest class in the MRO that marked it.
    """
    positions: dict[str, int] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            position = getattr(value, _MARK, None)
            if isinstance(position, int):
                positions[name] = position
    ordered = sorted(positions, key=lambda name: (positions[name], name))
    before = tuple(name for name in ordered if positions[name] < EXCEPTIONS)
    after = tuple(name for name in ordered if positions[name] > EXCEPTIONS)
    return before, after
