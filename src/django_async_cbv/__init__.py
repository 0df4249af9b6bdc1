"""Async class-based-view building blocks for Django.

Every public name is importable from the package root; see the documentation
for the full API.
"""

from __future__ import annotations

from .api import AsyncAPIView
from .breaker import AsyncCircuitBreakerMixin, CircuitBreaker, CircuitState, get_breaker
from .cache import AsyncCacheMixin
from .exceptions import (
    AsyncCBVError,
    CircuitOpenError,
    HandlerTimeout,
    ProblemError,
    UpstreamError,
    UpstreamTimeout,
)
from .problems import problem_response
from .ratelimit import AsyncRateLimitMixin
from .views import AsyncView

__version__ = "0.1.0"

__all__ = [
    "AsyncAPIView",
    "AsyncCBVError",
    "AsyncCacheMixin",
    "AsyncCircuitBreakerMixin",
    "AsyncRateLimitMixin",
    "AsyncView",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "HandlerTimeout",
    "ProblemError",
    "UpstreamError",
    "UpstreamTimeout",
    "__version__",
    "get_breaker",
    "problem_response",
]
