"""Async class-based-view building blocks for Django.

Every public name is importable from the package root; see the documentation
for the full API.
"""

from __future__ import annotations

from django_async_cbv._redis.loops import aclose

from .api import AsyncAPIView
from .breaker import AsyncCircuitBreakerMixin, CircuitBreaker, CircuitState, get_breaker
from .cache import AsyncCacheMixin
from .client import AsyncHTTPClient, UpstreamResponse
from .exceptions import (
    AsyncCBVError,
    CircuitOpenError,
    HandlerTimeout,
    ProblemError,
    UpstreamError,
    UpstreamTimeout,
)
from .generic import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncDetailView,
    AsyncFormView,
    AsyncListView,
    AsyncLoginRequiredMixin,
    AsyncPermissionRequiredMixin,
    AsyncRedirectView,
    AsyncTemplateView,
    AsyncUpdateView,
    AsyncUserPassesTestMixin,
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
    "AsyncCreateView",
    "AsyncDeleteView",
    "AsyncDetailView",
    "AsyncFormView",
    "AsyncHTTPClient",
    "AsyncListView",
    "AsyncLoginRequiredMixin",
    "AsyncPermissionRequiredMixin",
    "AsyncRateLimitMixin",
    "AsyncRedirectView",
    "AsyncTemplateView",
    "AsyncUpdateView",
    "AsyncUserPassesTestMixin",
    "AsyncView",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "HandlerTimeout",
    "ProblemError",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "__version__",
    "aclose",
    "get_breaker",
    "problem_response",
]
