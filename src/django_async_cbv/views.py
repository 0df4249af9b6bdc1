"""``AsyncView``: an always-async Django class-based view.

Dispatch is ``async def``; ``def`` and ``async def`` handlers may sit side by side
(sync ones run through ``sync_to_async``); the handler can be bounded by a timeout;
``gather`` fans out to several awaitables; and the library's own exceptions become
RFC 9457 problem responses through one ``handle_exception`` hook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from inspect import isawaitable
from typing import Any, ClassVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.decorators import classonlymethod
from django.utils.functional import classproperty
from django.utils.log import log_response
from django.views import View

from ._checked import Checked
from ._handler_threads import (
    _caller_in_transaction,
    _handler_thread,
    _in_own_task,
    _TaskTimedOut,
)
from ._overrides import check_dispatch, check_sync_overrides
from ._util import library_answer, maybe_await
from ._validation import is_positive_number
from .apps import check_without_app
from .exceptions import (
    CircuitOpenError,
    HandlerTimeout,
    ProblemError,
    UpstreamError,
    UpstreamTimeout,
)
from .problems import problem_response
from .stages import USER, CallNext, request_stage, stages_of

__all__ = ["AsyncView"]

logger = logging.getLogger("django_async_cbv")


def _validate_timeout(value: object, where: str) -> float | None:
    if value is None:
        return None
    if not is_positive_number(value):
        raise ImproperlyConfigured(
            f"{where} must be None or a positive number of seconds, not {value!r}."
        )
    return float(value)  # type: ignore[arg-type]


class _Unmapped(BaseException):
    """Carries an exception that handle_exception() declined up to dispatch().

    A BaseException, so that stages' ``except Exception`` clauses leave it alone
    and handle_exception() runs once per exception.
    """

    def __init__(self, exc: Exception) -> None:
        super().__init__(exc)
        self.exc = exc


class AsyncView(View, Checked):
    """A class-based view whose dispatch is always async.

    Handlers may be ``async def`` or plain ``def`` (run in a thread with
    ``sync_to_async``). Set ``timeout`` (seconds) to bound the handler: when it
    expires the handler is cancelled and the client gets 504 problem+json.
    """

    timeout: float | None = None

    #: The request stage method names, before and after the exception mapping
    #: point (computed per class from the stage marks; see ``stages.py``).
    _stages: ClassVar[tuple[tuple[str, ...], tuple[str, ...]]] = ((), ())

    @classproperty
    def view_is_async(cls) -> bool:
        """Always true: the view is a coroutine function whatever its handlers are."""
        return True

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Raise ``ImproperlyConfigured`` if a class attribute is invalid.

        Called by ``as_view()`` (with its keyword arguments) and by the system
        checks. Override to validate more attributes; call ``super()``.
        """
        initkwargs = initkwargs or {}
        check_dispatch(cls, AsyncView)
        _validate_timeout(initkwargs.get("timeout", cls.timeout), f"{cls.__qualname__}.timeout")
        # The mixins listed after the view class in the bases come after it in the MRO.
        super().check_configuration(initkwargs)

    @classmethod
    def check_against_settings(
        cls, initkwargs: Mapping[str, Any] | None = None
    ) -> list[CheckMessage]:
        """Return system-check messages about the class in the current settings.

        For what depends on settings such as ``CACHES`` (which tests may override,
        so ``as_view()`` does not check it; the request that uses it does). Called
        by the system checks after :meth:`check_configuration` passed. Override to
        add messages; extend ``super()``'s list.
        """
        return super().check_against_settings(initkwargs)

    @classonlymethod
    def as_view(  # type: ignore[override]  # the callable is a coroutine function
        cls, **initkwargs: Any
    ) -> Callable[..., Awaitable[HttpResponseBase]]:
        """Return the async view callable; validate the class configuration first.

        Raises ``ImproperlyConfigured`` when the class is misconfigured and, when
        ``"django_async_cbv"`` is not in INSTALLED_APPS (so ``manage.py check`` does
        not run its checks), when the settings checks or the class's checks against
        them find an error.
        """
        cls.check_configuration(initkwargs)
        check_without_app(cls, initkwargs)
        return cast(Callable[..., Awaitable[HttpResponseBase]], super().as_view(**initkwargs))

    def get_timeout(self) -> float | None:
        """Return the handler timeout in seconds, or None. Override to vary it per request."""
        return self.timeout

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_sync_overrides(cls, AsyncView)
        cls._stages = stages_of(cls)

    async def dispatch(  # type: ignore[override]  # async by design
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """Pass the request through the view's request stages, then the handler.

        The stages run in the order of their positions (see
        :mod:`django_async_cbv.stages`), whatever the order of the mixins in the
        class bases; exceptions that :meth:`handle_exception` maps become
        responses, the others propagate to Django.
        """
        before, after = self._stages

        async def handler(request: HttpRequest) -> HttpResponseBase:
            return await self.run_handler(request, *args, **kwargs)

        call: CallNext = handler
        for name in reversed(after):
            call = partial(getattr(self, name), call_next=call)
        call = partial(self._map_exceptions, call)
        for name in reversed(before):
            call = partial(self._map_exceptions, partial(getattr(self, name), call_next=call))
        try:
            return await call(request)
        except _Unmapped as carrier:
            unmapped = carrier.exc
        # Raised outside the except block, so Django sees the original exception
        # and traceback, not the carrier.
        raise unmapped

    async def _map_exceptions(self, call: CallNext, request: HttpRequest) -> HttpResponseBase:
        """Await ``call``; turn what it raises into a response through handle_exception()."""
        try:
            return await call(request)
        except Exception as exc:
            try:
                response: HttpResponseBase = await maybe_await(self.handle_exception(exc))
            except Exception as declined:
                raise _Unmapped(declined) from None
            return response

    @request_stage(USER)
    async def user_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        """Resolve the user (see :meth:`resolve_user`), then run the later stages."""
        await self.resolve_user(request)
        return await call_next(request)

    async def resolve_user(self, request: HttpRequest) -> None:
        """Set ``request.user`` to the resolved user, so sync code may read it.

        Default: ``await request.auser()`` when the auth middleware is installed.
        """
        auser = getattr(request, "auser", None)
        if auser is not None:
            request.user = await auser()

    def get_handler(self, request: HttpRequest) -> Callable[..., Any]:
        """Return the method that handles ``request`` (or ``http_method_not_allowed``)."""
        method = (request.method or "").lower()
        if method in self.http_method_names:
            handler = getattr(self, method, None)
            if handler is not None:
                return handler  # type: ignore[no-any-return]
        return self.http_method_not_allowed

    async def run_handler(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """Run the handler for ``request``, bounded by ``get_timeout()``."""
        handler = self.get_handler(request)
        timeout = self.get_timeout()
        call_args = (request, *args)
        if timeout is None:
            return await self._call(handler, call_args, kwargs)  # type: ignore[no-any-return]
        if not is_positive_number(timeout):
            _validate_timeout(timeout, f"{type(self).__qualname__}.get_timeout()")
        # The handler runs in a task of its own, with a thread of its own, so that
        # the 504 goes out on time even while its work holds a thread that cannot
        # be stopped (see _run_in_own_thread).
        try:
            return await _in_own_task(partial(self._call, handler, call_args, kwargs), timeout)
        except _TaskTimedOut:
            raise HandlerTimeout(timeout) from None

    async def _call(
        self,
        handler: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Call ``handler``; a sync one in a thread (that of the timed call it runs in,
        under the view's or a breaker's ``timeout``)."""
        if iscoroutinefunction(handler):
            return await handler(*args, **kwargs)
        # A sync handler may do blocking I/O (the ORM, files): keep it off the loop.
        # Its result is awaited too, for overrides that return super()'s coroutine.
        # Under an async_to_sync called inside a transaction (Django's TestCase), it
        # runs in that caller's thread, on the connection that sees the transaction,
        # as the thread-sensitive calls of an async handler do.
        executor = _handler_thread.get()
        if executor is not None and not await _caller_in_transaction():
            in_thread = sync_to_async(handler, thread_sensitive=False, executor=executor)
        else:
            in_thread = sync_to_async(handler)
        return await maybe_await(await in_thread(*args, **kwargs))

    async def handle_exception(self, exc: Exception) -> HttpResponseBase:
        """Turn an exception into a response, or re-raise it.

        Maps ``ProblemError`` to itself, ``CircuitOpenError`` to 503 with
        ``Retry-After``, handler and upstream timeouts to 504 and other
        ``UpstreamError`` to 502. Everything else is re-raised so Django's
        logging and ``handler500`` run. Override to map more; call ``super()``.
        """
        if isinstance(exc, ProblemError):
            return problem_response(exc)
        if isinstance(exc, CircuitOpenError):
            logger.warning("Circuit %r is open; answering 503", exc.name)
            return problem_response(
                503,
                detail="A service this resource depends on is unavailable. Try again later.",
                headers={"Retry-After": str(exc.retry_after)},
            )
        if isinstance(exc, HandlerTimeout | UpstreamTimeout):
            logger.warning("%s: %s", type(exc).__name__, exc)
            return problem_response(504, detail="The request took too long to complete.")
        if isinstance(exc, UpstreamError):
            logger.warning("%s: %s (upstream status %s)", type(exc).__name__, exc, exc.status)
            return problem_response(
                502, detail="A service this resource depends on answered with an error."
            )
        raise exc

    @library_answer
    async def http_method_not_allowed(  # type: ignore[override]  # async by design
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Answer 405 problem+json with an ``Allow`` header."""
        allowed = self._allowed_methods()
        response = problem_response(
            405,
            detail=f"Method {request.method} is not allowed here.",
            headers={"Allow": ", ".join(allowed)},
        )
        log_response(
            "Method Not Allowed (%s): %s",
            request.method,
            request.path,
            response=response,
            request=request,
        )
        return response

    def _allowed_methods(self) -> list[str]:
        """Return the upper-case methods this view answers (for ``Allow``)."""
        return [m.upper() for m in self.http_method_names if hasattr(self, m)]

    @library_answer
    async def options(  # type: ignore[override]  # async by design
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Answer OPTIONS with the allowed methods, as Django does."""
        response = HttpResponse()
        response.headers["Allow"] = ", ".join(self._allowed_methods())
        response.headers["Content-Length"] = "0"
        return response

    async def gather(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - part of the public API
        **awaitables: Awaitable[Any],
    ) -> dict[str, Any]:
        """Await named awaitables concurrently; return their results by name.

        A failing awaitable does not cancel the others: its slot holds the
        exception. On ``timeout`` (seconds) the unfinished ones are cancelled and
        awaited, and their slots hold ``TimeoutError``; no task outlives the
        call. Cancelling the caller cancels them all.
        """
        if timeout is not None and not is_positive_number(timeout):
            raise ValueError(f"gather() timeout must be None or a positive number, not {timeout!r}")
        bad = [name for name, aw in awaitables.items() if not isawaitable(aw)]
        if bad:
            for aw in awaitables.values():
                close = getattr(aw, "close", None)
                if asyncio.iscoroutine(aw) and close is not None:
                    close()  # avoid "coroutine was never awaited" for the good ones
            raise TypeError(f"gather() arguments must be awaitable: {', '.join(bad)}")
        tasks = {name: asyncio.ensure_future(aw) for name, aw in awaitables.items()}
        if not tasks:
            return {}
        try:
            _, pending = await asyncio.wait(tasks.values(), timeout=timeout)
        except asyncio.CancelledError:
            await _cancel_and_wait(tasks.values())
            raise
        if pending:
            await _cancel_and_wait(pending)
        results: dict[str, Any] = {}
        for name, task in tasks.items():
            if task in pending:
                results[name] = TimeoutError(f"{name!r} did not finish within {timeout:g}s")
            elif task.cancelled():
                results[name] = asyncio.CancelledError()
            else:
                exc = task.exception()
                results[name] = exc if exc is not None else task.result()
        return results


async def _cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished.

    A cancellation of the caller during the wait is held back until the tasks
    are done, then re-raised, so no task outlives the caller.
    """
    pending = list(tasks)
    for task in pending:
        task.cancel()
    cancelled = False
    while True:
        try:
            await asyncio.wait(pending)
            break
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


AsyncView._stages = stages_of(AsyncView)
