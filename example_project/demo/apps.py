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
            "slowest one, not the sum; a failing call only empties its own slot, and a call "
            "past the 2-second deadline is cancelled (TimeoutError).",
        ),
        Demo(
            "demo:slow",
            "Handler timeout",
            "AsyncView.timeout = 1: a handler still running after a second is cancelled "
            "and answered 504 problem+json (?seconds=0.2 finishes in time).",
        ),
        Demo(
            "demo:limited",
            "Rate limiting with AsyncRateLimitMixin",
            "At most 5 requests a minute per client address: the sixth is refused with "
            "429 and Retry-After, and every answer carries the RateLimit-Policy and "
            "RateLimit headers.",
        ),
        Demo(
            "demo:limit-token_bucket",
            "Three rate limit algorithms",
            "5 requests per 10 seconds counted by sliding_window, fixed_window and "
            "token_bucket (/demo/limits/ALGORITHM/): each budget drains, then refills "
            "in its own way.",
        ),
        Demo(
            "demo:cached",
            "Response caching with AsyncCacheMixin",
            "A page that takes a second to compute: the first request is a MISS, the next "
            "ones HITs answered at once; once expired it is served STALE while one request "
            "refreshes it, and POST /demo/cached/invalidate/ empties it.",
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
