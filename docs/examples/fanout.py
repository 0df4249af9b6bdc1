"""Fan-out with gather(): required and optional parts, failures and a deadline."""

import asyncio
import logging

from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.urls import path

from django_async_cbv import AsyncView, ProblemError

logger = logging.getLogger(__name__)


async def fetch_profile(user_id: int) -> dict:
    await asyncio.sleep(0.02)  # each fetch stands in for a call to another service
    return {"id": user_id, "name": "Ada"}


async def fetch_orders(user_id: int) -> list:
    await asyncio.sleep(0.03)
    return [{"id": 7, "total": "18.50"}]


async def fetch_recommendations(user_id: int) -> list:
    await asyncio.sleep(0.02)
    return ["green tea", "teapot"]


class DashboardView(AsyncView):
    upstream_timeout = 1.5  # seconds for the three calls together

    @classmethod
    def check_configuration(cls, initkwargs=None):
        # Runs at as_view() and in `manage.py check`: a bad value stops the
        # project from starting instead of failing requests later.
        super().check_configuration(initkwargs)
        value = (initkwargs or {}).get("upstream_timeout", cls.upstream_timeout)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ImproperlyConfigured(
                f"{cls.__qualname__}.upstream_timeout must be a positive number "
                f"of seconds, not {value!r}."
            )

    async def get(self, request, user_id):
        results = await self.gather(
            timeout=self.upstream_timeout,
            profile=fetch_profile(user_id),
            orders=fetch_orders(user_id),
            recommendations=fetch_recommendations(user_id),
        )
        missing = []
        for name, value in results.items():
            if isinstance(value, BaseException):
                # gather() never raises for a failed call, and does not log it either.
                logger.warning("Dashboard part %r failed: %r", name, value)
                missing.append(name)

        # The page is useless without the profile: fail the request...
        if "profile" in missing:
            raise ProblemError(503, detail="Profiles are unavailable. Try again shortly.")
        # ...but the other parts are optional: serve what arrived, say what did not.
        data = {name: [] if name in missing else value for name, value in results.items()}
        return JsonResponse({**data, "missing": missing})


urlpatterns = [path("users/<int:user_id>/dashboard/", DashboardView.as_view())]
