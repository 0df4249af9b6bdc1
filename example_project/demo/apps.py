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
    ]
