"""The example on the documentation's front page."""

import asyncio

from django.http import JsonResponse
from django.urls import path

from django_async_cbv import AsyncView, ProblemError

CITIES = {"lima", "oslo", "paris"}


async def fetch_forecast(city: str) -> dict:
    await asyncio.sleep(0.05)  # stands in for an HTTP call to a weather service
    return {"high_c": 21, "low_c": 12}


async def fetch_air_quality(city: str) -> dict:
    await asyncio.sleep(0.05)  # and this one for a second, independent service
    return {"aqi": 42}


class CityView(AsyncView):
    timeout = 5  # seconds: past this the client gets a 504 problem response

    async def get(self, request, city):
        if city not in CITIES:
            raise ProblemError(404, detail=f"There is no data for {city!r}.")
        # Both calls run at once: the wait is the slower one, not the sum.
        results = await self.gather(
            timeout=2,
            forecast=fetch_forecast(city),
            air_quality=fetch_air_quality(city),
        )
        # A failed or timed-out call leaves its exception in its slot.
        return JsonResponse(
            {
                name: None if isinstance(value, BaseException) else value
                for name, value in results.items()
            }
        )


urlpatterns = [path("cities/<slug:city>/", CityView.as_view())]
