"""AsyncView + AsyncRateLimitMixin, keyed by client address (unlimited: urls.hello_asyncview)."""

from django.http import JsonResponse
from django.urls import path

from django_async_cbv import AsyncRateLimitMixin, AsyncView

from . import ALGORITHM, PAYLOAD, RATE


class LimitedHello(AsyncRateLimitMixin, AsyncView):
    rate_limit = RATE
    rate_limit_key = "ip"
    rate_limit_algorithm = ALGORITHM

    async def get(self, request):
        return JsonResponse(PAYLOAD)


urlpatterns = [path("hello/", LimitedHello.as_view())]
