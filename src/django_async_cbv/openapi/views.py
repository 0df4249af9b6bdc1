"""``OpenAPIView`` serves the document; ``SwaggerUIView`` serves an interactive page for it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import weakref
from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import NoReverseMatch, get_resolver, reverse
from django.urls.resolvers import URLResolver
from django.utils import translation
from django.utils.html import format_html

from django_async_cbv._util import encoded_path
from django_async_cbv.exceptions import ProblemError
from django_async_cbv.views import AsyncView

from .document import build_document

__all__ = ["ASSETS_PACKAGE", "OpenAPIView", "SwaggerUIView"]

#: The distribution that ships Swagger UI's files (the ``openapi`` extra installs it).
ASSETS_PACKAGE = "drf-spectacular-sidecar"
_ASSETS_MODULE = "drf_spectacular_sidecar"
_ASSETS_DIR = "static/drf_spectacular_sidecar/swagger-ui-dist"
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Reads the page's data attributes, so the page needs no inline script (CSP).
_INIT_JS = b"""\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      // Django's CSRF token, from the page (whatever the CSRF settings), and only
      // to this site: a token is never sent to another origin.
      var url = new URL(request.url, window.location.href);
      if (root.dataset.csrfToken && url.origin === window.location.origin) {
        request.headers[root.dataset.csrfHeader] = root.dataset.csrfToken;
      }
      return request;
    }
  });
});
"""
_INIT_JS_VERSION = hashlib.sha256(_INIT_JS).hexdigest()[:12]
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
<link rel="icon" type="image/png" href="{}">
<link rel="stylesheet" href="{}">
</head>
<body>
<div id="swagger-ui" data-schema-url="{}" data-csrf-header="{}" data-csrf-token="{}"></div>
<script src="{}"></script>
<script src="{}"></script>
</body>
</html>
"""

_documents: weakref.WeakKeyDictionary[URLResolver, dict[tuple[Any, ...], bytes]] = (
    weakref.WeakKeyDictionary()
)
_asset_bytes: dict[str, bytes] = {}


class OpenAPIView(AsyncView):
    """Serve the OpenAPI 3.1 document of every ``AsyncAPIView`` in the URLconf as JSON.

    ``OpenAPIView.as_view(title="Shop API", version="1.0.0")``. The document is
    built on the first request and kept until the URLconf changes.
    """

    title: str = "API"
    version: str = "1.0.0"
    description: str | None = None
    #: The URLconf to document (None: ``ROOT_URLCONF``).
    urlconf: str | None = None

    http_method_names: ClassVar[list[str]] = ["get", "head", "options"]  # type: ignore[misc]

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Require ``title`` and ``version`` to be non-empty strings."""
        super().check_configuration(initkwargs)
        initkwargs = initkwargs or {}
        for name in ("title", "version"):
            value = initkwargs.get(name, getattr(cls, name))
            if not isinstance(value, str) or not value:
                raise ImproperlyConfigured(
                    f"{cls.__qualname__}.{name} must be a non-empty string, not {value!r}."
                )

    def get_document(self) -> dict[str, Any]:
        """Return the document as a dict. Override to post-process it."""
        return build_document(
            self.title, self.version, description=self.description, urlconf=self.urlconf
        )

    def _encoded(self, script_prefix: str, language: str | None) -> bytes:
        resolver = get_resolver(self.urlconf)
        key = (type(self), self.title, self.version, self.description, script_prefix, language)
        cached = _documents.setdefault(resolver, {})
        body = cached.get(key)
        if body is None:
            # Descriptions and summaries come from (translatable) names and help
            # texts: one document per language, in the request's language.
            with translation.override(language):
                document = self.get_document()
            if script_prefix and "servers" not in document:
                # The paths are the URLconf's; the site serves them under its prefix.
                document = {**document, "servers": [{"url": script_prefix}]}
            body = cached[key] = json.dumps(document, ensure_ascii=False).encode()
        return body

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Answer with the document (``application/json``).

        Under a script prefix (``SCRIPT_NAME``, ``FORCE_SCRIPT_NAME``, an ASGI
        server's ``root_path``), the document names it as its server.
        """
        # Walking the URLconf may import its modules: kept off the event loop.
        script_prefix = request.path.removesuffix(request.path_info).rstrip("/")
        language = translation.get_language()
        body = await sync_to_async(self._encoded)(script_prefix, language)
        return HttpResponse(body, content_type="application/json")


def assets_available() -> bool:
    """Whether the package with Swagger UI's files is installed."""
    return importlib.util.find_spec(_ASSETS_MODULE) is not None


def _read_asset(name: str) -> bytes:
    data = _asset_bytes.get(name)
    if data is None:
        data = (resources.files(_ASSETS_MODULE) / _ASSETS_DIR / name).read_bytes()
        _asset_bytes[name] = data
    return data


def _csrf_header_name() -> str:
    """The HTTP header that carries the CSRF token, from ``CSRF_HEADER_NAME``."""
    name: str = settings.CSRF_HEADER_NAME
    return name.removeprefix("HTTP_").replace("_", "-")


class SwaggerUIView(AsyncView):
    """Serve Swagger UI for the document at ``schema_url``, offline.

    ``SwaggerUIView.as_view(schema_url="/api/openapi.json")`` (a path, or a URL
    name such as ``"openapi"`` to reverse). The page and its scripts and styles
    are answered by this one view (``?asset=``) from the files of the
    ``drf-spectacular-sidecar`` package: nothing is loaded from another site.
    """

    schema_url: str | None = None
    title: str = "API documentation"

    http_method_names: ClassVar[list[str]] = ["get", "head", "options"]  # type: ignore[misc]

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Require ``schema_url`` and the package with Swagger UI's files."""
        super().check_configuration(initkwargs)
        initkwargs = initkwargs or {}
        schema_url = initkwargs.get("schema_url", cls.schema_url)
        if not isinstance(schema_url, str) or not schema_url:
            raise ImproperlyConfigured(
                f"{cls.__qualname__}.schema_url must be the path or the URL name of the "
                f"OpenAPI document, not {schema_url!r}."
            )
        if not assets_available():
            raise ImproperlyConfigured(
                f"{cls.__qualname__} serves Swagger UI from the {ASSETS_PACKAGE} package, "
                "which is not installed: pip install 'django-async-cbv[openapi]'."
            )

    def get_schema_url(self) -> str:
        """Return the URL of the document: ``schema_url`` reversed if it is a URL name."""
        url = str(self.schema_url)
        if "/" in url:
            return url
        try:
            return reverse(url)
        except NoReverseMatch:
            return url

    def _asset_url(self, name: str) -> str:
        # init.js is this library's own: its URL changes with its content.
        version = (
            _INIT_JS_VERSION if name == "init.js" else importlib.metadata.version(ASSETS_PACKAGE)
        )
        return f"{encoded_path(self.request.path)}?asset={name}&v={version}"

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Answer with the page, or with one of its files for ``?asset=<name>``."""
        asset = request.GET.get("asset")
        if asset is not None:
            return await self._asset(asset)
        page = format_html(
            _PAGE,
            self.title,
            self._asset_url("favicon-32x32.png"),
            self._asset_url("swagger-ui.css"),
            self.get_schema_url(),
            _csrf_header_name(),
            get_token(request),
            self._asset_url("swagger-ui-bundle.js"),
            self._asset_url("init.js"),
        )
        return HttpResponse(page, content_type="text/html; charset=utf-8")

    async def _asset(self, name: str) -> HttpResponse:
        if name == "init.js":
            data, content_type = _INIT_JS, "text/javascript; charset=utf-8"
        elif name in _ASSETS:
            data, content_type = await sync_to_async(_read_asset)(name), _ASSETS[name]
        else:
            raise ProblemError(404, detail=f"No asset named {name!r}.")
        response = HttpResponse(data, content_type=content_type)
        # The URL carries the package's version, so a cached copy never goes stale.
        response.headers["Cache-Control"] = "public, max-age=604800, immutable"
        return response
