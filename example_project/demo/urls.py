"""URLs of the demo app, mounted under ``/demo/``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from .flaky import BreakersView, FlakyServiceView, FlakyView
from .limits import ALGORITHM_VIEWS
from .views import (
    CachedView,
    CacheInvalidateView,
    FanOutView,
    LimitedView,
    SlowView,
    UpstreamView,
)

app_name = "demo"

urlpatterns: list[URLPattern | URLResolver] = [
    path("fanout/", FanOutView.as_view(), name="fanout"),
    path("upstream/<slug:name>/", UpstreamView.as_view(), name="upstream"),
    path("slow/", SlowView.as_view(), name="slow"),
    path("limited/", LimitedView.as_view(), name="limited"),
    *(
        path(f"limits/{algorithm}/", view.as_view(), name=f"limit-{algorithm}")
        for algorithm, view in ALGORITHM_VIEWS.items()
    ),
    path("cached/", CachedView.as_view(), name="cached"),
    path("cached/invalidate/", CacheInvalidateView.as_view(), name="cached-invalidate"),
    path("flaky/", FlakyView.as_view(), name="flaky"),
    path("flaky/service/", FlakyServiceView.as_view(), name="flaky-service"),
    path("breakers/", BreakersView.as_view(), name="breakers"),
]
