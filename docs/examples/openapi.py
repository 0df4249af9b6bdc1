"""The items API with its OpenAPI document and a Swagger UI page."""

from typing import Any

from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.openapi import OpenAPIView, SwaggerUIView

from .models import Item


class ItemAPI(AsyncAPIView):
    """The catalogue: every item in stock."""

    model = Item

    async def filter_queryset(self, queryset: Any) -> Any:
        if name := self.request.GET.get("q"):
            queryset = queryset.filter(name__icontains=name)
        return queryset

    def get_openapi_operation(
        self, operation: dict[str, Any], *, method: str, action: str, path: str
    ) -> dict[str, Any]:
        if action == "list":  # the parameter filter_queryset() reads
            operation.setdefault("parameters", []).append(
                {
                    "name": "q",
                    "in": "query",
                    "description": "Only items whose name contains this text.",
                    "schema": {"type": "string"},
                }
            )
        return operation


urlpatterns = [
    path("items/", ItemAPI.as_view()),
    path("items/<int:pk>/", ItemAPI.as_view()),
    path(
        "api/openapi.json",
        OpenAPIView.as_view(title="Shop API", version="1.0.0"),
        name="openapi",
    ),
    path("api/docs/", SwaggerUIView.as_view(schema_url="openapi")),
]
