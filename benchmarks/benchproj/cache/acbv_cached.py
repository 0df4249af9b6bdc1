"""The hello AsyncView with AsyncCacheMixin (uncached baseline: urls.hello_asyncview).

``/hello/`` answers what the baseline answers; ``/slow/`` takes ~200 ms. Both count
their handler's runs in Redis (see the package docstring).
"""

from django.urls import path

from django_async_cbv import AsyncCacheMixin, AsyncView

from . import TIMEOUT, hello_handler, slow_handler


class CachedHello(AsyncCacheMixin, AsyncView):
    cache_timeout = TIMEOUT

    async def get(self, request):
        return await hello_handler()


class CachedSlow(AsyncCacheMixin, AsyncView):
    cache_timeout = TIMEOUT

    async def get(self, request):
        return await slow_handler()


urlpatterns = [
    path("hello/", CachedHello.as_view()),
    path("slow/", CachedSlow.as_view()),
]
