"""Calling overridable hooks that may be ``def`` or ``async def``.

A hook of a view (``get_queryset()``, ``form_valid()``, ``has_permission()``…) may be
overridden with a plain ``def`` in Django's style, and such an override may query the
database. So a sync hook runs in a worker thread (``sync_to_async``, thread-sensitive
as Django runs the ORM), an async one is awaited on the event loop. Library methods
that are sync and never block are marked with :func:`on_loop` and called directly.

Permission hooks are checked strictly (:func:`call_check`): anything but ``True`` or
``False`` is a configuration error, never a grant. A coroutine is truthy, so a plain
``def`` check that called an ``async def`` one and tested its result would otherwise
let every request through.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from inspect import isawaitable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured

__all__ = ["Verdict", "call_check", "call_hook", "on_loop"]

F = TypeVar("F", bound=Callable[..., Any])

_ON_LOOP = "_async_cbv_on_loop"


def on_loop(func: F) -> F:
    """Mark a sync library method that never blocks: it is called on the event loop.

    An override is not marked (unless it is marked itself), so it runs in a thread.
    """
    setattr(func, _ON_LOOP, True)
    return func


def _runs_on_loop(hook: Callable[..., Any]) -> bool:
    return bool(getattr(getattr(hook, "__func__", hook), _ON_LOOP, False))


async def call_hook(hook: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a sync-or-async hook and return its result.

    ``async def``: awaited. Plain ``def``: run in a thread (it may query), unless
    marked :func:`on_loop`; an awaitable it returns (e.g. ``super()``'s coroutine)
    is awaited on the event loop.
    """
    if iscoroutinefunction(hook):
        return await hook(*args, **kwargs)
    if _runs_on_loop(hook):
        result = hook(*args, **kwargs)
    else:
        result = await sync_to_async(hook)(*args, **kwargs)
    if isawaitable(result):
        return await result
    return result


class Verdict:
    """A default permission hook's answer: awaitable, and usable as a bool.

    ``AsyncAPIView``'s ``has_permission()`` and ``has_object_permission()`` are async
    hooks (``await super().has_permission()`` in an ``async def`` override), yet a
    Django-style plain ``def`` override writes ``return super().has_permission() and
    ...``. A coroutine would be truthy there, whatever it would have answered, so the
    defaults return this instead: awaiting it and testing it give the same answer.
    """

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __await__(self) -> Generator[Any, None, bool]:
        return _answer(self.value).__await__()

    def __repr__(self) -> str:
        return f"Verdict({self.value!r})"


async def _answer(value: bool) -> bool:
    return value


def _name(hook: Callable[..., Any]) -> str:
    return str(getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None) or hook)


async def call_check(hook: Callable[..., Any], *args: Any) -> bool:
    """Call a permission hook (sync or async, as :func:`call_hook`) and return its verdict.

    Fails closed: the hook must return ``True`` or ``False``. A plain ``def`` hook
    that returns an awaitable, or any hook that returns something else, raises
    ``ImproperlyConfigured`` (a 500), so the request is never let through by
    mistake.
    """
    if iscoroutinefunction(hook):
        result = await hook(*args)
    elif _runs_on_loop(hook):
        result = hook(*args)
    else:
        result = await sync_to_async(hook)(*args)
        if isawaitable(result) and not isinstance(result, Verdict):
            close = getattr(result, "close", None)
            if callable(close):
                close()  # never awaited: no "coroutine was never awaited" warning
            raise ImproperlyConfigured(
                f"{_name(hook)}() is a plain def but returned an awaitable. Make it "
                "'async def' and await what it calls, or call only sync code from it."
            )
    if isinstance(result, Verdict):
        result = result.value
    if not isinstance(result, bool):
        close = getattr(result, "close", None)
        if isawaitable(result) and callable(close):
            close()
        raise ImproperlyConfigured(
            f"{_name(hook)}() must return True or False, not {type(result).__name__}."
        )
    return result
