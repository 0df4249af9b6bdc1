"""Views of the cache test server.

Every cached view counts its handler runs in Redis (``INCR runs:<name>`` at
``RUNS_REDIS_URL``), so the runs of all server processes add up in one place, and
answers ``{"pid": <the serving process>, "run": <that run's number>}``.

``slow/``
    The handler takes 0.5 s (``asyncio.sleep``: the stand-in for slow work), then
    counts its run: a cold key stays cold long enough for a stampede to pile up.
``quick/``
    Counts its run and answers at once.
``first-fails/``
    Counts its run, takes 0.5 s, and answers 500 (a problem) on the first run only.
``first-hangs/``
    Counts its run; the first run never returns (the test kills its process).
``hangs/``
    Counts its run; the first run hangs (it ignores cancellation, as a call stuck in
    a thread would) until the test pushes to the Redis list ``release:hangs``. No
    ``timeout``: nothing but the cache's own bound stops its followers waiting.
``big/``
    Counts its run and answers a body of 2 MiB (above the default
    ``cache_max_entry_size``).
``package/``
    Not cached: where the server imported ``django_async_cbv`` from, and the host
    the request named.
``broken/stream/`` and ``broken/length/``
    Deliberately broken, for the test of the harness (tests/test_asgi_servers.py):
    a streamed answer whose iterator raises after the first chunk, which Django's
    ASGI handler passes on to the server, and an answer whose body is longer than its
    ``Content-Length``, which the server refuses to send. Each server logs an ASGI
    error.

``CACHE_TEST_WAIT`` (seconds), when set, shortens the cache's waits in this process
(the default wait for a view without ``timeout``, and the lock's lifetime), so that a
test of those bounds takes seconds rather than 40; only the servers such tests start
set it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import redis.asyncio
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import URLPattern, path

import django_async_cbv
from django_async_cbv import AsyncCacheMixin, AsyncView, problem_response
from django_async_cbv.cache import flow

if wait := os.environ.get("CACHE_TEST_WAIT"):
    flow._DEFAULT_WAIT = flow.LOCK_TIMEOUT = float(wait)  # type: ignore[misc]


async def count_run(name: str) -> int:
    """Add one to the run counter of ``name`` in Redis; return the new count."""
    client = redis.asyncio.Redis.from_url(settings.RUNS_REDIS_URL)
    try:
        return int(await client.incr(f"runs:{name}"))
    finally:
        await client.aclose()


def answer(run: int) -> JsonResponse:
    return JsonResponse({"pid": os.getpid(), "run": run})


class Slow(AsyncCacheMixin, AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0.5)
        return answer(await count_run("slow"))


class Quick(AsyncCacheMixin, AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return answer(await count_run("quick"))


class FirstFails(AsyncCacheMixin, AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        run = await count_run("first-fails")
        await asyncio.sleep(0.5)
        if run == 1:
            return problem_response(500, detail="The first run fails, as designed.")
        return answer(run)


class FirstHangs(AsyncCacheMixin, AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        run = await count_run("first-hangs")
        if run == 1:
            await asyncio.Event().wait()  # never set: this run never returns
        return answer(run)


class Hangs(AsyncCacheMixin, AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        run = await count_run("hangs")
        if run == 1:
            client = redis.asyncio.Redis.from_url(settings.RUNS_REDIS_URL)
            try:
                while True:
                    released = asyncio.ensure_future(client.blpop(["release:hangs"], timeout=1))
                    with contextlib.suppress(asyncio.CancelledError):
                        if await asyncio.shield(released) is not None:
                            break
                    if not released.done():
                        await asyncio.wait([released])
                    if released.result() is not None:
                        break
            finally:
                await client.aclose()
        return answer(run)


class Big(AsyncCacheMixin, AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        run = await count_run("big")
        return HttpResponse(b"%d\n" % run + b"x" * (2 * 1024 * 1024))


class Package(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(
            {"pid": os.getpid(), "package": django_async_cbv.__file__, "host": request.get_host()}
        )


class BrokenStream(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"the first chunk\n"
            raise RuntimeError("the stream breaks, as designed")

        return StreamingHttpResponse(chunks(), content_type="text/plain")


class BrokenLength(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(
            b"ten bytes!", content_type="text/plain", headers={"Content-Length": "3"}
        )


urlpatterns: list[URLPattern] = [
    path("slow/", Slow.as_view()),
    path("quick/", Quick.as_view()),
    path("first-fails/", FirstFails.as_view()),
    path("first-hangs/", FirstHangs.as_view()),
    path("hangs/", Hangs.as_view()),
    path("big/", Big.as_view()),
    path("package/", Package.as_view()),
    path("broken/stream/", BrokenStream.as_view()),
    path("broken/length/", BrokenLength.as_view()),
]
