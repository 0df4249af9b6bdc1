"""API views with the features the OpenAPI document describes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from django_async_cbv import AsyncAPIView, AsyncRateLimitMixin, AsyncView
from django_async_cbv.api import AsyncReadOnlyAPIView
from tests.models import Bookmark, Country, Tag, Widget


class WidgetAPI(AsyncAPIView):
    """Widgets, every field type.

    Only the first paragraph becomes the description.
    """

    model = Widget
    paginate_by = 5


class BookmarkAPI(AsyncReadOnlyAPIView):
    model = Bookmark
    paginate_by = None


class CountryAPI(AsyncAPIView):
    model = Country
    fields = ["code", "name"]
    lookup_field = "code"


class TagAPI(AsyncAPIView):
    model = Tag


class QueriedWidgetAPI(AsyncAPIView):
    """The attributes of filtering, search, ordering and cursor pages."""

    model = Widget
    filter_fields = ["quantity", "active", "released", "name"]
    search_fields = ["name", "description"]
    ordering_fields = ["price", "name"]
    pagination = "cursor"


class ConditionalWidgetAPI(AsyncAPIView):
    model = Widget
    require_if_match = True


class LimitedWidgetAPI(AsyncRateLimitMixin, AsyncAPIView):
    model = Widget
    rate_limit = "10/m"
    rate_limit_methods = ["POST"]


class BearerWidgetAPI(AsyncAPIView):
    model = Widget
    timeout = 5.0

    def get_authenticate_header(self) -> str | None:
        return 'Bearer realm="widgets"'


class HookedWidgetAPI(AsyncAPIView):
    model = Widget

    def get_openapi_operation(
        self, operation: dict[str, Any], *, method: str, action: str, path: str
    ) -> dict[str, Any]:
        operation["x-seen"] = [method, action, path]
        if action == "destroy":
            operation["deprecated"] = True
        return operation


class Plain(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("not an API view")
