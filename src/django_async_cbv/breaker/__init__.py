"""``CircuitBreaker``: stop calling an upstream service that keeps failing.

The breaker is in ``circuit`` (calls in ``engine``, state shared in Redis in
``shared`` and ``scripts``, state in this process's memory in ``state``); the view
mixin in ``mixin``.
"""

from __future__ import annotations

from typing import Final

from . import calls
from .calls import upstream_unwell
from .circuit import CircuitBreaker, get_breaker
from .circuit import breakers as breakers
from .mixin import AsyncCircuitBreakerMixin
from .state import CircuitState, CircuitStats

#: The exceptions :class:`AsyncCircuitBreakerMixin` counts as failures of an upstream
#: (an ``UpstreamError`` only when :func:`upstream_unwell` says so).
UPSTREAM_FAILURES: Final = calls.UPSTREAM_FAILURES

__all__ = [
    "UPSTREAM_FAILURES",
    "AsyncCircuitBreakerMixin",
    "CircuitBreaker",
    "CircuitState",
    "CircuitStats",
    "get_breaker",
    "upstream_unwell",
]
