"""URLs of the demo app, mounted under ``/demo/``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from .flaky import BreakersView, FlakyServiceView, FlakyView
from .views import CachedView, FanOutView, LimitedView, UpstreamView

app_name = "demo"

urlpatterns: list[URLPattern | URLResolver] = [
    path("fanout/", FanOutView.as_view(), name="fanout"),
    path("upstream/<slug:name>/", UpstreamView.as_view(), name="upstream"),
    path("limited/", LimitedView.as_view(), name="limited"),
    path("cached/", CachedView.as_view(), name="cached"),
    path("flaky/", FlakyView.as_view(), name="flaky"),
    path("flaky/service/", FlakyServiceView.as_view(), name="flaky-service"),
    path("breakers/", BreakersView.as_view(), name="breakers"),
]
