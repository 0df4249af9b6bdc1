"""URLconf of the fan-out benchmark: three concurrent upstream calls per request.

``FANOUT_UPSTREAM`` (set by benchmarks/fanout.py) is the upstream's base URL; each
of its endpoints sleeps 50 ms and answers a small JSON object.

- ``/ours/``: an ``AsyncView`` calling through ``AsyncHTTPClient`` with ``gather()``.
- ``/plain/``: a hand-written ``django.views.View`` with an ``async def get``, one
  aiohttp session per event loop and ``asyncio.gather``: what the client replaces.
- ``/vc/`` and ``/ap/``: the two mixes (``View`` + client, ``AsyncView`` + session).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views import View

from django_async_cbv import AsyncHTTPClient, AsyncView

UPSTREAM = os.environ.get("FANOUT_UPSTREAM", "http://127.0.0.1:1")
PARTS = ("profile", "orders", "recommendations")

client = AsyncHTTPClient(UPSTREAM, timeout=2, retries=2)


class OursView(AsyncView):
    async def get(self, request: HttpRequest) -> JsonResponse:
        results = await self.gather(**{name: client.get_json(f"/{name}") for name in PARTS})
        for value in results.values():
            if isinstance(value, BaseException):
                raise value  # a failed part fails the request, as in PlainView
        return JsonResponse(results)


_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def _session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None:
        session = _sessions[loop] = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    return session


async def _fetch(name: str) -> Any:
    timeout = aiohttp.ClientTimeout(total=2)
    async with _session().get(f"{UPSTREAM}/{name}", timeout=timeout) as response:
        response.raise_for_status()
        return await response.json()


class PlainView(View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        values = await asyncio.gather(*(_fetch(name) for name in PARTS))
        return JsonResponse(dict(zip(PARTS, values, strict=True)))


class ViewWithClient(View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        values = await asyncio.gather(*(client.get_json(f"/{name}") for name in PARTS))
        return JsonResponse(dict(zip(PARTS, values, strict=True)))


class AsyncViewPlainCalls(AsyncView):
    async def get(self, request: HttpRequest) -> JsonResponse:
        values = await asyncio.gather(*(_fetch(name) for name in PARTS))
        return JsonResponse(dict(zip(PARTS, values, strict=True)))


urlpatterns = [
    path("ours/", OursView.as_view()),
    path("plain/", PlainView.as_view()),
    path("vc/", ViewWithClient.as_view()),
    path("ap/", AsyncViewPlainCalls.as_view()),
]
