"""The dashboard: every demo exercised live from one page, and the cache in use."""

from __future__ import annotations

import logging
from typing import Any

from demo.limits import ALGORITHM_VIEWS
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.templatetags.static import static

from django_async_cbv import AsyncView
from django_async_cbv.conf import get_settings
from django_async_cbv.openapi import SwaggerUIView

from .demos import installed_demos

logger = logging.getLogger("demo")


class IndexView(AsyncView):
    """The dashboard: a panel per demo, driven by static/dashboard.js; the demo list.

    ``?format=json`` answers the list of demos and the cache status as JSON.
    """

    template_name = "index.html"
    hits_key = "index-hits"

    async def get(self, request: HttpRequest) -> HttpResponse:
        context = {
            "demos": [
                {"title": d.title, "url": d.url, "description": d.description}
                for d in installed_demos()
            ],
            "cache": await self.cache_status(),
        }
        if request.GET.get("format") == "json":
            return JsonResponse(context)
        get_token(request)  # the CSRF cookie, which the page's scripts send back
        breaker = settings.ASYNC_CBV["CIRCUIT_BREAKERS"]["flaky-upstream"]
        return render(
            request,
            self.template_name,
            {
                **context,
                "algorithms": [
                    {"name": name, "refill": view.refill} for name, view in ALGORITHM_VIEWS.items()
                ],
                "cache_timeout": settings.EXAMPLE_CACHE_TIMEOUT,
                "breaker": breaker,
            },
        )

    async def cache_status(self) -> dict[str, Any]:
        """Count this page's views in the library's cache, proving a round trip."""
        alias = get_settings().cache_alias
        cache = caches[alias]
        backend = f"{type(cache).__module__}.{type(cache).__qualname__}"
        try:
            await cache.aadd(self.hits_key, 0, timeout=None)
            hits = await cache.aincr(self.hits_key)
        except Exception:  # a demo page should render even when Redis is down
            logger.warning("Cache %r did not answer", alias, exc_info=True)
            return {"alias": alias, "backend": backend, "ok": False, "hits": None}
        return {"alias": alias, "backend": backend, "ok": True, "hits": hits}


class APIDocsView(SwaggerUIView):
    """Swagger UI under the site's nav bar: the library's page, with the nav added."""

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().get(request, *args, **kwargs)
        if not response["Content-Type"].startswith("text/html"):
            return response  # one of the page's files (?asset=...), served as it is
        nav = render_to_string("nav.html", request=request)
        stylesheet = f'<link rel="stylesheet" href="{static("nav.css")}">'
        page = response.content.decode()
        page = page.replace("</head>", f"{stylesheet}\n</head>", 1)
        page = page.replace("<body>", f"<body>\n{nav}", 1)
        response.content = page.encode()
        return response
