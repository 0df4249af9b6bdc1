"""django-ninja: the same async operation with its AnonRateThrottle (default cache).

Ninja calls a throttle synchronously, also from an async operation: the cache's
blocking get and set run on the event loop.
"""

from django.urls import path
from ninja import NinjaAPI
from ninja.throttling import AnonRateThrottle

from . import PAYLOAD, drf_rate

api = NinjaAPI(urls_namespace="bench-rl-ninja", docs_url=None)


@api.get("/hello/", throttle=AnonRateThrottle(drf_rate()))
async def hello(request):
    return PAYLOAD


urlpatterns = [path("", api.urls)]
