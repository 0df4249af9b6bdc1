"""ASGI entry point: ``uvicorn example.asgi:application --app-dir example_project
--no-proxy-headers`` (see README.md: the rate limit demos count by the peer's address).

Django does not speak the ASGI lifespan protocol, so this module answers it
itself: on shutdown it closes the HTTP sessions (and Redis clients) the server's
event loop holds, with ``django_async_cbv.aclose()``, so no connection is left dangling.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from django.core.exceptions import SuspiciousOperation
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest
from django.http.response import HttpResponseBase

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

django_application = get_asgi_application()

import django_async_cbv  # noqa: E402


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's static files handler; a path climbing out of the static folders is a 400.

    Django's handler answers only a missing file (404) itself: the finders refuse
    ``/static/../example/settings.py`` with ``SuspiciousFileOperation``, which would
    otherwise escape to the server as an unhandled error (a 500 and a traceback).
    """

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        try:
            return await super().get_response_async(request)
        except SuspiciousOperation as exc:
            # Django's own answer to it: a 400, logged to django.security.
            return await sync_to_async(response_for_exception, thread_sensitive=False)(request, exc)


# uvicorn serves no files: Django's staticfiles handler answers STATIC_URL (the pages'
# stylesheet and script, the admin's files) from the apps and STATICFILES_DIRS, with
# DEBUG off too. Fine for a local example; a deployment collects them to a web server.
django_application = StaticFilesHandler(django_application)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol; release per-loop resources on shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await django_async_cbv.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    """Route lifespan events here and everything else to Django."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await django_application(scope, receive, send)
