"""Resources that belong to one event loop, closed when that loop shuts down (internal).

Connection pools (redis-py clients, aiohttp sessions) are bound to the event loop
that made them: using one from another loop fails or, worse, half works. A
:class:`PerLoop` keeps one resource per (running loop, key), never hands it to
another loop, and closes it when the loop shuts down through ``asyncio.run`` or
``asyncio.Runner`` (as ``async_to_sync``, uvicorn and pytest-asyncio do): every
loop's resources hang on an async generator that ``loop.shutdown_asyncgens()``
finalizes. :func:`aclose_current_loop` closes them earlier. A loop closed without
that step cannot have its sockets closed gracefully; its entry is dropped when the
next loop registers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

__all__ = ["PerLoop", "aclose", "aclose_current_loop"]

R = TypeVar("R")


class _Entry:
    """One event loop's resources, and the async generator that closes them at shutdown."""

    def __init__(self) -> None:
        # PerLoop -> key -> resource
        self.kinds: dict[PerLoop[Any], dict[Hashable, Any]] = {}
        self.retired: list[tuple[PerLoop[Any], Any]] = []  # dropped, not closed yet
        self.tasks: set[asyncio.Task[None]] = set()
        self.closer: AsyncGenerator[None, None] | None = None


_lock = threading.Lock()  # guards _registry and every entry; never held across an await
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry] = (
    weakref.WeakKeyDictionary()
)


class PerLoop(Generic[R]):
    """One kind of loop-bound resource, e.g. "the aiohttp sessions" (one per key and loop).

    ``aclose_all`` closes a batch of them; it must not raise.
    """

    def __init__(self, name: str, aclose_all: Callable[[list[R]], Awaitable[None]]) -> None:
        self.name = name
        self.aclose_all = aclose_all

    def __repr__(self) -> str:
        return f"<PerLoop {self.name}>"

    def get(self, key: Hashable) -> R | None:
        """The running loop's resource under ``key``, or None (no lock taken)."""
        entry = _registry.get(asyncio.get_running_loop())
        if entry is None:
            return None
        held = entry.kinds.get(self)
        return None if held is None else held.get(key)

    def get_or_create(
        self, key: Hashable, make: Callable[[], R], usable: Callable[[R], bool] | None = None
    ) -> R:
        """The running loop's resource under ``key``, made by ``make()`` if missing.

        A resource that ``usable`` rejects (e.g. a session someone closed) is replaced.
        ``make`` runs under a lock: it must be quick and must not await.
        """
        loop = asyncio.get_running_loop()
        entry = _registry.get(loop)
        if entry is not None and (held := entry.kinds.get(self)) is not None:
            resource = held.get(key)
            if resource is not None and (usable is None or usable(resource)):
                return resource  # type: ignore[no-any-return]
        with _lock:
            entry = _registry.get(loop)
            if entry is None:
                entry = _register(loop)
            held = entry.kinds.setdefault(self, {})
            resource = held.get(key)
            if resource is None or (usable is not None and not usable(resource)):
                if resource is not None:
                    entry.retired.append((self, resource))
                resource = held[key] = make()
        return resource

    def keys(self, loop: asyncio.AbstractEventLoop) -> list[Hashable]:
        """The keys ``loop`` holds a resource under (for tests and monitoring)."""
        with _lock:
            entry = _registry.get(loop)
            return [] if entry is None else list(entry.kinds.get(self, {}))

    async def aclose_current_loop(self) -> None:
        """Close and forget this kind's resources of the running loop."""
        with _lock:
            entry = _registry.get(asyncio.get_running_loop())
            held = {} if entry is None else entry.kinds.pop(self, {})
        await self.aclose_all(list(held.values()))

    def retire(self) -> None:
        """Drop this kind's resources from every loop; close the running loop's ones.

        Other loops close theirs when they shut down (they cannot be awaited from here).
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with _lock:
            for entry in _registry.values():
                held = entry.kinds.pop(self, {})
                entry.retired.extend((self, resource) for resource in held.values())
            current = _registry.get(running) if running is not None else None
        if running is not None and current is not None and current.retired:
            task = running.create_task(_aclose_retired(current))
            current.tasks.add(task)
            task.add_done_callback(current.tasks.discard)


async def aclose_current_loop() -> None:
    """Close and forget every resource of the running event loop, of every kind."""
    with _lock:
        entry = _registry.pop(asyncio.get_running_loop(), None)
    if entry is not None and entry.closer is not None:
        await entry.closer.aclose()  # its ``finally`` closes the resources


async def aclose() -> None:
    """Close the HTTP sessions and Redis clients the running event loop holds.

    They are closed anyway when the loop shuts down through ``asyncio.run`` (as
    under uvicorn, ``async_to_sync`` and pytest-asyncio); call this earlier, e.g.
    at the end of a test or in an ASGI lifespan shutdown handler. The next call that
    needs one makes a new one.
    """
    await aclose_current_loop()


def _register(loop: asyncio.AbstractEventLoop) -> _Entry:
    """Add ``loop`` to the registry (under ``_lock``), with a closer for its shutdown."""
    for old in [old for old in _registry if old.is_closed()]:
        del _registry[old]  # closed without shutdown_asyncgens(): nothing can be awaited
    entry = _registry[loop] = _Entry()
    entry.closer = _close_at_shutdown(loop, entry)
    # Run the generator to its ``yield`` now (no await comes first, so one step
    # finishes it): the loop's first-iteration hook records it, and
    # ``loop.shutdown_asyncgens()`` later resumes it into its ``finally``.
    with contextlib.suppress(StopIteration):
        entry.closer.asend(None).send(None)
    return entry


async def _close_at_shutdown(
    loop: asyncio.AbstractEventLoop, entry: _Entry
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        with _lock:
            if _registry.get(loop) is entry:
                del _registry[loop]
            closing = [*entry.retired]
            for kind, held in entry.kinds.items():
                closing.extend((kind, resource) for resource in held.values())
            entry.kinds.clear()
            entry.retired.clear()
        await _aclose_grouped(closing)


async def _aclose_grouped(closing: Iterable[tuple[PerLoop[Any], Any]]) -> None:
    by_kind: dict[PerLoop[Any], list[Any]] = {}
    for kind, resource in closing:
        by_kind.setdefault(kind, []).append(resource)
    await asyncio.gather(
        *(kind.aclose_all(resources) for kind, resources in by_kind.items()),
        return_exceptions=True,
    )


async def _aclose_retired(entry: _Entry) -> None:
    with _lock:
        closing = list(entry.retired)
    await _aclose_grouped(closing)
    # Forget them only once closed: if this is cancelled, the closer closes them.
    with _lock:
        entry.retired = [
            item for item in entry.retired if all(item[1] is not done for _, done in closing)
        ]
