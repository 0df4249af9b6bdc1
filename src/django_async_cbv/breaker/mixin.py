"""``AsyncCircuitBreakerMixin``: a view's handler run through a circuit breaker."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from django_async_cbv._checked import Checked
from django_async_cbv._handler_threads import _in_own_task
from django_async_cbv._util import is_library_answer
from django_async_cbv.exceptions import HandlerTimeout
from django_async_cbv.stages import BREAKER, CallNext, request_stage

from .calls import UPSTREAM_FAILURES, _CallTimeout, upstream_unwell
from .circuit import CircuitBreaker, get_breaker
from .state import FAILURE, NEUTRAL

__all__ = ["AsyncCircuitBreakerMixin"]


def _validate_breaker_spec(view: str, spec: object) -> None:
    if isinstance(spec, CircuitBreaker) or (isinstance(spec, str) and spec):
        return
    raise ImproperlyConfigured(
        f"{view}.circuit_breaker is {spec!r}; set it to the name of a breaker in "
        "ASYNC_CBV['CIRCUIT_BREAKERS'] or to a CircuitBreaker instance."
    )


def _own_task(call_next: CallNext) -> CallNext:
    """``call_next`` in a task with a thread of its own, abandoned when cancelled.

    As for the view's own ``timeout``: a sync handler (or any thread-sensitive work
    of the handler) then runs on that thread, so the breaker's timeout answers on
    time instead of waiting for the thread to return.
    """

    async def call(request: HttpRequest) -> HttpResponseBase:
        return await _in_own_task(partial(call_next, request))

    return call


class AsyncCircuitBreakerMixin(Checked):
    """Run the handler through a circuit breaker; answer 503 while it is open.

    Put it in the bases of an :class:`~django_async_cbv.AsyncView` (in any order).
    Only upstream failures count (:data:`UPSTREAM_FAILURES`: ``UpstreamError``
    when :func:`upstream_unwell` says so, ``UpstreamTimeout``, ``TimeoutError``,
    ``OSError``, when the breaker counts them too); any other exception, such as an
    upstream's 404 or a ``ProblemError`` 404 or 403, counts as neither success nor
    failure, so it never opens the circuit (nor closes it). A returned response
    counts as a success, whatever its status. The view's built-in answers to
    OPTIONS and to a method it does not answer (405) pass by the breaker: they
    call no service, so they are neither refused nor counted. An ``AsyncHTTPClient`` on the same
    breaker inside the handler is part of this call: it passes straight through.
    While the circuit is open the client gets 503 problem+json with ``Retry-After``.
    """

    #: The name of a breaker in ``ASYNC_CBV["CIRCUIT_BREAKERS"]`` (see
    #: :func:`get_breaker`), or a :class:`CircuitBreaker`.
    circuit_breaker: ClassVar[str | CircuitBreaker | None] = None

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Validate ``circuit_breaker`` (and the ``as_view()`` argument); see AsyncView."""
        super().check_configuration(initkwargs)
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
        """Run the rest of the chain (the handler) through the breaker.

        The view's built-in answers (``options()`` not overridden, the 405 of a
        method it does not answer) call no service: they pass by the breaker,
        neither refused while it is open nor counted as a probe's success.
        """
        handler = self.get_handler(request)  # type: ignore[attr-defined]  # an AsyncView
        if is_library_answer(handler):
            return await call_next(request)
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

        call = call_next if breaker.timeout is None else _own_task(call_next)
        try:
            return await breaker._guard(call, (request,), {}, upstream_only)
        except _CallTimeout:
            assert breaker.timeout is not None
            raise HandlerTimeout(breaker.timeout) from None
