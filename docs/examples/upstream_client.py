"""Calling another service over HTTP with AsyncHTTPClient."""

from urllib.parse import quote

from django.conf import settings
from django.http import JsonResponse
from django.urls import path

from django_async_cbv import (
    AsyncHTTPClient,
    AsyncView,
    CircuitOpenError,
    ProblemError,
    UpstreamError,
)


def users_api():
    # Cheap to make: every client of one origin shares the event loop's pooled
    # session. Reading the setting here, not at import, lets override_settings work.
    return AsyncHTTPClient(
        settings.USERS_API_URL,  # e.g. "http://users.internal/api"
        timeout=2,  # seconds per attempt
        retries=2,  # GET only: after a connection error, a timeout or a 502/503/504
        circuit_breaker="users",  # ASYNC_CBV["CIRCUIT_BREAKERS"]["users"], or defaults
    )


class UserCardView(AsyncView):
    """Upstream failures need no code here: AsyncView answers 502 (or 504, or 503)."""

    async def get(self, request, user_id):
        async with users_api() as users:
            user = await users.get_json(f"/users/{user_id}")
        return JsonResponse({"id": user["id"], "name": user["name"]})


class UserSearchView(AsyncView):
    """Handles the failures itself: a 404 from upstream is a 404 here."""

    async def get(self, request):
        name = request.GET.get("name", "")
        try:
            # Quote values you put in a path: "/" or "?" in a name must stay in the name.
            found = await users_api().get_json(f"/by-name/{quote(name, safe='')}")
        except CircuitOpenError as exc:
            raise ProblemError(503, detail="User search is unavailable.") from exc
        except UpstreamError as exc:
            if exc.status == 404:
                raise ProblemError(404, detail="No such user.") from exc
            raise  # anything else: 502 (504 for a timeout)
        return JsonResponse({"id": found["id"]})


urlpatterns = [
    path("users/<int:user_id>/card/", UserCardView.as_view()),
    path("users/search/", UserSearchView.as_view()),
]
