"""App config of the items app; ``demos`` feeds the index page."""

from __future__ import annotations

from django.apps import AppConfig
from example.demos import Demo


class ItemsConfig(AppConfig):
    name = "items"
    verbose_name = "JSON API demo"
    default_auto_field = "django.db.models.BigAutoField"
    demos = [
        Demo(
            "items:list",
            "JSON API with AsyncAPIView",
            "List, create, read, update and delete items as JSON: pages with absolute "
            "next/previous links, ModelForm validation, problem+json errors. Reads are "
            "open; writes need the header Authorization: Bearer demo-token.",
        ),
        Demo(
            "api-docs",
            "OpenAPI 3.1 document and Swagger UI",
            "The items API described by OpenAPIView (/api/openapi.json) and explored in "
            "Swagger UI, whose files come from a package: the page works offline. Click "
            "Authorize and enter demo-token to try the writes.",
        ),
        Demo(
            "catalogue:list",
            "HTML pages with the async generic views",
            "A paginated list, detail, create, edit and delete pages over the same items, "
            "served by AsyncListView, AsyncDetailView, AsyncCreateView, AsyncUpdateView and "
            "AsyncDeleteView; creating and editing need a signed-in user "
            "(AsyncLoginRequiredMixin), deleting a permission (AsyncPermissionRequiredMixin).",
        ),
        Demo(
            "source",
            "The example's source",
            "Every file of this project, served by the project itself: each panel of the "
            "dashboard links the code behind it.",
        ),
    ]
