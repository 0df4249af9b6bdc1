"""The same hello AsyncView under Django's ``cache_page``, on the same django-redis cache.

``cache_page(TIMEOUT)(View.as_view())``: Django wraps the async view in an async
wrapper that calls CacheMiddleware's ``process_request``/``process_response``
synchronously, so its cache reads and writes block the event loop (Django's own
behaviour, kept as is).
"""

from django.urls import path
from django.views.decorators.cache import cache_page

from django_async_cbv import AsyncView

from . import TIMEOUT, hello_handler, slow_handler


class Hello(AsyncView):
    async def get(self, request):
        return await hello_handler()


class Slow(AsyncView):
    async def get(self, request):
        return await slow_handler()


urlpatterns = [
    path("hello/", cache_page(TIMEOUT)(Hello.as_view())),
    path("slow/", cache_page(TIMEOUT)(Slow.as_view())),
]
