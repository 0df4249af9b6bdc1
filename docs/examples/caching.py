"""Response caching: a slow page, per-header variants, and per-user pages."""

import asyncio

from django.http import JsonResponse
from django.urls import path
from django.utils.cache import patch_cache_control

from django_async_cbv import AsyncCacheMixin, AsyncView

CALLS = {"forecast": 0}


async def compute_forecast(city, units):
    CALLS["forecast"] += 1
    await asyncio.sleep(0.2)  # stands in for slow work: a remote service, a big query
    high = 21 if units == "metric" else 70
    return {"city": city, "high": high, "units": units}


class ForecastView(AsyncCacheMixin, AsyncView):
    cache_timeout = 60  # fresh for a minute...
    cache_stale_ttl = 600  # ...then served stale for 10 minutes while one request refreshes
    cache_vary_on = ["X-Units"]  # one entry per value of this request header

    async def get(self, request, city):
        units = request.headers.get("X-Units", "metric")
        return JsonResponse(await compute_forecast(city, units))


class DashboardView(AsyncCacheMixin, AsyncView):
    cache_timeout = 30
    cache_per_user = True  # signed-in users are cached too, each on their own

    async def get(self, request):
        name = request.user.get_username() if request.user.is_authenticated else None
        return JsonResponse({"user": name, "widgets": ["news", "weather"]})


class PricesView(AsyncCacheMixin, AsyncView):
    cache_timeout = 300
    cache_max_entry_size = 256 * 1024  # larger price lists are served, not stored

    async def get(self, request):
        response = JsonResponse({"EUR": 1.0, "NOK": 11.7})
        # Browsers keep it 10 s; shared caches, this one included, 60 s.
        patch_cache_control(response, public=True, max_age=10, s_maxage=60)
        return response


urlpatterns = [
    path("forecast/<slug:city>/", ForecastView.as_view()),
    path("dashboard/", DashboardView.as_view()),
    path("prices/", PricesView.as_view()),
]
