"""App config of the demo app; ``demos`` feeds the index page."""

from __future__ import annotations

from django.apps import AppConfig
from example.demos import Demo


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "AsyncView demos"
    demos = [
        Demo(
            "demo:fanout",
            "Fan-out with gather()",
            "Three slow upstream calls made concurrently: the page takes as long as the "
            "slowest one, not the sum; a failing call only empties its own slot.",
        ),
        Demo(
            "demo:limited",
            "Rate limiting with AsyncRateLimitMixin",
            "At most 5 requests a minute per client address: the sixth is refused with "
            "429 and Retry-After, and every answer carries the RateLimit-Policy and "
            "RateLimit headers.",
        ),
        Demo(
            "demo:cached",
            "Response caching with AsyncCacheMixin",
            "A page that takes a second to compute, cached for 30 seconds: the first "
            "request is a MISS, the next ones are HITs answered at once, with the X-Cache, "
            "Age, ETag and Cache-Control headers.",
        ),
        Demo(
            "demo:flaky",
            "A flaky upstream behind a circuit breaker",
            "AsyncHTTPClient calls a fake service whose failure rate you set with "
            "?failure_rate=0..1: failures open the breaker, calls then fail fast without "
            "reaching the service, a probe goes through after the recovery timeout, and "
            "successes close it again.",
        ),
        Demo(
            "demo:breakers",
            "Circuit breaker states",
            "Each named breaker of the settings, with its state and counts, as JSON.",
        ),
    ]
