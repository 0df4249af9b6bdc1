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
    ]
