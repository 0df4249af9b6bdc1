"""The three rate limit algorithms side by side: ``GET /demo/limits/<algorithm>/``.

Each view admits 5 requests per 10 seconds and client address, counted by one
algorithm (see docs/ratelimit.md):

- ``sliding_window``: at most 5 in any 10 seconds; a slot comes back 10 seconds
  after the request that used it.
- ``fixed_window``: at most 5 in each 10-second window of the clock; the whole
  budget comes back when the window turns.
- ``token_bucket``: a bucket of 5 tokens refilled at one token every 2 seconds.

Every answer carries ``RateLimit-Policy`` and ``RateLimit``; the sixth request in a
row gets a 429 problem+json with ``Retry-After``. The dashboard drains and refills
each budget from the browser.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from django_async_cbv import AsyncRateLimitMixin, AsyncView

#: The rate of the three views: short, so a budget visibly refills within seconds.
RATE = "5/10s"


class AlgorithmView(AsyncRateLimitMixin, AsyncView):
    """Admit 5 requests per 10 seconds per client address; say how they are counted."""

    rate_limit = RATE
    rate_limit_key = "ip"
    rate_limit_cache_alias = settings.EXAMPLE_RATE_LIMIT_CACHE
    #: One line on how the algorithm refills the budget, shown by the dashboard.
    refill: ClassVar[str] = ""

    async def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(
            {
                "algorithm": self.get_rate_limit_algorithm(),
                "rate_limit": self.get_rate_limit(),
                "refill": self.refill,
            }
        )


class SlidingWindowView(AlgorithmView):
    rate_limit_algorithm = "sliding_window"
    refill = "Each request's slot comes back 10 seconds after it was admitted."


class FixedWindowView(AlgorithmView):
    rate_limit_algorithm = "fixed_window"
    refill = "The whole budget comes back when the clock's 10-second window turns."


class TokenBucketView(AlgorithmView):
    rate_limit_algorithm = "token_bucket"
    refill = "One token comes back every 2 seconds, up to 5."


#: The views by algorithm, as routed by demo/urls.py.
ALGORITHM_VIEWS: dict[str, type[AlgorithmView]] = {
    view.rate_limit_algorithm: view
    for view in (SlidingWindowView, FixedWindowView, TokenBucketView)
}
