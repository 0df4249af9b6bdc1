"""Async class-based-view building blocks for Django.

Every public name is importable from the package root; see the documentation
for the full API.
"""

from __future__ import annotations

from .api import AsyncAPIView
from .cache import AsyncCacheMixin
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
    "AsyncCreateView",
    "AsyncDeleteView",
    "AsyncDetailView",
    "AsyncFormView",
    "AsyncListView",
    "AsyncLoginRequiredMixin",
    "AsyncPermissionRequiredMixin",
    "AsyncRateLimitMixin",
    "AsyncRedirectView",
    "AsyncTemplateView",
    "AsyncUpdateView",
    "AsyncUserPassesTestMixin",
    "AsyncView",
    "CircuitOpenError",
    "HandlerTimeout",
    "ProblemError",
    "UpstreamError",
    "UpstreamTimeout",
    "__version__",
    "problem_response",
]
