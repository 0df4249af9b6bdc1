"""``AsyncRateLimitMixin``: exact rate limits, shared by every process on one store.

See :mod:`django_async_cbv.ratelimit.mixin` for the stage, ``stores`` for where
requests are counted, ``redis_limiter`` and ``cache_limiter`` for the algorithms.
"""

from __future__ import annotations

from .mixin import AsyncRateLimitMixin, ratelimit_fields
from .stores import MAX_CONCURRENT_CHECKS as MAX_CONCURRENT_CHECKS
from .stores import client_digest as client_digest
from .validation import KEY_KINDS as KEY_KINDS

__all__ = ["AsyncRateLimitMixin", "ratelimit_fields"]
