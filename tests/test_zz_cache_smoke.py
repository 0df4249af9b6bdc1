import asyncio
import pytest
from django.http import JsonResponse, HttpResponse
from django.test import AsyncClient
from django.urls import path
from django_async_cbv import AsyncView, AsyncCacheMixin, AsyncRateLimitMixin

pytestmark = [pytest.mark.urls(__name__)]
runs = {"n": 0}
gate = None

class V(AsyncCacheMixin, AsyncView):
    async def get(self, request):
        runs["n"] += 1
        if gate is not None:
            await gate.wait()
        return JsonResponse({"n": runs["n"]})

class L(AsyncRateLimitMixin, AsyncCacheMixin, AsyncView):
    rate_limit = "3/h"
    async def get(self, request):
        return HttpResponse("x")

urlpatterns = [path("v/", V.as_view()), path("l/", L.as_view())]

@pytest.mark.redis
async def test_basic():
    global gate
    runs["n"] = 0
    c = AsyncClient()
    r1 = await c.get("/v/")
    r2 = await c.get("/v/")
    print(r1.headers, r2.headers)
    assert r1["X-Cache"] == "MISS" and r2["X-Cache"] == "HIT"
    assert r2.content == r1.content
    r3 = await c.get("/v/", headers={"If-None-Match": r1["ETag"]})
    assert r3.status_code == 304
    await V.ainvalidate_cache()
    r4 = await c.get("/v/?a=1")
    assert r4["X-Cache"] == "MISS"
    gate = asyncio.Event()
    tasks = [asyncio.ensure_future(c.get("/v/?b=2")) for _ in range(50)]
    await asyncio.sleep(0.2)
    gate.set()
    rs = await asyncio.gather(*tasks)
    print(runs, sorted(r["X-Cache"] for r in rs)[:3])
    assert runs["n"] == 3
    gate = None
    rl = [await c.get("/l/") for _ in range(4)]
    print([(r.status_code, r.get("X-Cache"), r.get("RateLimit")) for r in rl])
