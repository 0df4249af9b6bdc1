"""All variants of the ``cache`` scenario on one server (``profile_cache.py``)."""

from django.urls import path
from django.views.decorators.cache import cache_page

from benchproj.hello import AsyncViewHello

from . import TIMEOUT
from .acbv_cached import CachedHello
from .dj_cache_page import Hello

urlpatterns = [
    path("hello/plain/", AsyncViewHello.as_view()),
    path("hello/cached/", CachedHello.as_view()),
    path("hello/cache-page/", cache_page(TIMEOUT)(Hello.as_view())),
]
