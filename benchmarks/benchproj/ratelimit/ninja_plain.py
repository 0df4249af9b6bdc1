"""django-ninja: an async operation, no throttle (the baseline of ninja_throttled)."""

from django.urls import path
from ninja import NinjaAPI

from . import PAYLOAD

api = NinjaAPI(urls_namespace="bench-rl-ninja", docs_url=None)


@api.get("/hello/")
async def hello(request):
    return PAYLOAD


urlpatterns = [path("", api.urls)]
