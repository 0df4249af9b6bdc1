"""AsyncRateLimitMixin in one process: configuration, keys, responses, stores, failure."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import redis
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.test import AsyncClient, AsyncRequestFactory, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView, AsyncRateLimitMixin, AsyncView, ProblemError
from django_async_cbv.checks import check_views
from django_async_cbv.ratelimit import ratelimit_fields
from django_async_cbv.ratelimit.client_ip import UNKNOWN_CLIENT, client_ip, normalise_ip
from django_async_cbv.stages import CACHE, CallNext, request_stage
from tests.models import Category

factory = AsyncRequestFactory()
PROBLEM_JSON = "application/problem+json"


class Hello(AsyncRateLimitMixin, AsyncView):
    rate_limit = "3/m"
    calls = 0

    async def get(self, request: HttpRequest) -> HttpResponse:
        type(self).calls += 1
        return JsonResponse({"hello": "world"})

    async def post(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"posted": True})


_made = itertools.count()


def view(base: type = Hello, **attrs: Any) -> type:
    """A subclass of ``base`` with ``attrs``, named (so scoped) uniquely: ``Limited<n>``."""
    return type(f"Limited{next(_made)}", (base,), {"__module__": __name__, "calls": 0, **attrs})


async def call(
    view_class: type,
    method: str = "get",
    *,
    user: Any = None,
    initkwargs: dict[str, Any] | None = None,
    **extra: Any,
) -> HttpResponseBase:
    request = getattr(factory, method)("/")
    request.META.update(extra)  # AsyncRequestFactory would put them in the ASGI scope
    if user is not None:
        request.user = user
    return await view_class.as_view(**(initkwargs or {}))(request)


async def statuses(view_class: type, n: int, **kwargs: Any) -> list[int]:
    return [(await call(view_class, **kwargs)).status_code for _ in range(n)]


def user(pk: int) -> Any:
    return SimpleNamespace(pk=pk, is_authenticated=True)


ANONYMOUS = SimpleNamespace(pk=None, is_authenticated=False)

# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"rate_limit": "100/x"}, r"Limited\d+\.rate_limit: Invalid rate '100/x'"),
        ({"rate_limit": "0/m"}, r"Limited\d+\.rate_limit: Invalid rate '0/m'"),
        ({"rate_limit": ["1/m", "60/h", "1/60s"]}, r"'1/60s' means the same as '1/m'"),
        ({"rate_limit": []}, r"the list of rates is empty"),
        ({"rate_limit": None}, r"Limited\d+\.rate_limit: Invalid rate limit None"),
        ({"rate_limit": {"1/m": 1}}, r"Limited\d+\.rate_limit"),
        ({"rate_limit_algorithm": "leaky"}, r"rate_limit_algorithm is 'leaky'; expected one of"),
        ({"rate_limit_key": "address"}, r"Limited\d+\.rate_limit_key is 'address'"),
        ({"rate_limit_key": "header:"}, r"rate_limit_key is 'header:'"),
        ({"rate_limit_key": "header:X Key"}, r"rate_limit_key is 'header:X Key'"),
        ({"rate_limit_key": 42}, r"rate_limit_key is 42"),
        ({"rate_limit_methods": "POST"}, r"rate_limit_methods must be None .* not 'POST'"),
        ({"rate_limit_methods": []}, r"rate_limit_methods must be None"),
        ({"rate_limit_methods": ["PO ST"]}, r"rate_limit_methods must be None"),
        ({"rate_limit_scope": ""}, r"rate_limit_scope must be None .* not ''"),
        ({"rate_limit_scope": 3}, r"rate_limit_scope must be None"),
        ({"rate_limit_cache_alias": ""}, r"rate_limit_cache_alias must be None"),
    ],
)
def test_bad_attributes_fail_at_as_view(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        view(**attrs).as_view()


def test_bad_as_view_arguments_fail_too() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"Invalid rate '5/fortnight'"):
        Hello.as_view(rate_limit="5/fortnight")


@pytest.mark.parametrize(
    "attrs",
    [
        {"rate_limit": ["100/m", "1000/h"]},
        {"rate_limit": ("5/2s",)},
        {"rate_limit_key": "header:X-Api-Key"},
        {"rate_limit_key": staticmethod(lambda request: "k")},
        {"rate_limit_methods": ("post", "PUT")},
        {"rate_limit_algorithm": "token_bucket"},
        {"rate_limit_cache_alias": "locmem"},
    ],
)
def test_good_attributes_pass(attrs: dict[str, Any]) -> None:
    view(**attrs).as_view()


def _route(view_class: type, **initkwargs: Any) -> Any:
    urlconf = ModuleType("routes")
    urlconf.urlpatterns = [path("x/", view_class.as_view(**initkwargs))]  # type: ignore[attr-defined]
    return urlconf


def test_checks_report_each_problem_with_its_id(settings: Any) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "db": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"},
        "dummy": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        "files": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": "/tmp/x",
        },
    }
    sliding = view()  # the default algorithm, on local memory
    fixed = view(rate_limit_algorithm="fixed_window")
    on_db = view(rate_limit_algorithm="fixed_window", rate_limit_cache_alias="db")
    on_dummy = view(rate_limit_algorithm="fixed_window", rate_limit_cache_alias="dummy")
    on_files = view(rate_limit_algorithm="fixed_window", rate_limit_cache_alias="files")
    missing = view(rate_limit_algorithm="fixed_window", rate_limit_cache_alias="nope")
    expected: list[tuple[type, type, str, str]] = [
        (sliding, CheckWarning, "W001", "local-memory cache 'default': every process"),
        (fixed, CheckWarning, "W001", "local-memory cache 'default': every process"),
        (on_db, CheckError, "E011", "'db' .*DatabaseCache.* has no atomic increment"),
        (on_dummy, CheckError, "E011", "has no atomic increment"),
        (on_files, CheckError, "E011", "has no atomic increment"),
        (missing, CheckError, "E011", "'nope' is not in CACHES"),
    ]
    for view_class, kind, check_id, text in expected:
        settings.ROOT_URLCONF = _route(view_class)
        messages = check_views()
        assert len(messages) == 1, messages
        assert type(messages[0]) is kind
        assert messages[0].id == f"django_async_cbv.{check_id}"
        assert re.search(text, messages[0].msg), messages[0].msg
        assert messages[0].obj is view_class


def test_checks_use_the_routes_arguments(settings: Any) -> None:
    settings.ROOT_URLCONF = _route(view(), rate_limit_algorithm="fixed_window")
    assert [m.id for m in check_views()] == ["django_async_cbv.W001"]


@pytest.mark.redis
def test_checks_pass_on_redis(settings: Any) -> None:
    for algorithm in ("sliding_window", "fixed_window", "token_bucket"):
        settings.ROOT_URLCONF = _route(view(rate_limit_algorithm=algorithm))
        assert check_views() == []


async def test_a_request_on_an_unfit_cache_is_refused_loudly() -> None:
    # CACHES may change after as_view() (tests override it): the request checks again.
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    with (
        override_settings(CACHES=dummy),
        pytest.raises(ImproperlyConfigured, match="has no atomic increment"),
    ):
        await call(view())


# ------------------------------------------------------------------ responses


def _fields(response: HttpResponseBase) -> tuple[str | None, str | None]:
    return response.headers.get("RateLimit-Policy"), response.headers.get("RateLimit")


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ["sliding_window", "fixed_window", "token_bucket"])
async def test_count_admitted_then_429_problem(algorithm: str) -> None:
    limited = view(rate_limit="3/h", rate_limit_algorithm=algorithm)
    responses = [await call(limited) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert limited.calls == 3  # a refused request never reaches the handler
    assert [_fields(r)[0] for r in responses] == ['"3/h";q=3;w=3600'] * 5
    remaining = [re.fullmatch(r'"3/h";r=(\d+);t=(\d+)', _fields(r)[1] or "") for r in responses]
    assert [int(m[1]) for m in remaining if m] == [2, 1, 0, 0, 0]
    refused = responses[3]
    assert refused["Content-Type"] == PROBLEM_JSON
    body = json.loads(refused.content)
    assert body["status"] == 429
    assert body["title"] == "Too Many Requests"
    retry = int(refused["Retry-After"])
    assert 1 <= retry <= 3600
    assert int(remaining[3][2]) >= retry  # t is never before a slot frees  # type: ignore[index]


@pytest.mark.redis
async def test_every_response_carries_the_fields() -> None:
    class Varied(AsyncRateLimitMixin, AsyncView):
        rate_limit = ["2/m", "10/h"]

        async def get(self, request: HttpRequest) -> HttpResponse:
            if request.GET.get("missing"):
                raise ProblemError(404)
            return HttpResponse(status=204)

    first = await call(Varied)
    assert first.status_code == 204
    assert _fields(first) == ('"2/m";q=2;w=60, "10/h";q=10;w=3600', '"2/m";r=1;t=60')
    not_found = await Varied.as_view()(factory.get("/", {"missing": "1"}))
    assert not_found.status_code == 404
    assert _fields(not_found)[1] == '"2/m";r=0;t=60'
    refused = await call(Varied)
    assert refused.status_code == 429
    assert _fields(refused)[0] == first["RateLimit-Policy"]


def test_the_field_syntax() -> None:
    from django_async_cbv.ratelimit.rates import parse_rates
    from django_async_cbv.ratelimit.redis_limiter import Decision

    rates = parse_rates(["10/m", "100/h", "1000/d"])
    decision = Decision(allowed=True, retry_after=0, remaining=(4, 4, 900), reset=(30, 3000, 9))
    assert ratelimit_fields(rates, decision) == {
        "RateLimit-Policy": '"10/m";q=10;w=60, "100/h";q=100;w=3600, "1000/d";q=1000;w=86400',
        # fewest left; on a tie the one that takes longer to come back
        "RateLimit": '"100/h";r=4;t=3000',
    }


@pytest.mark.redis
async def test_several_rates_all_or_nothing(redis_client: redis.Redis) -> None:
    limited = view(rate_limit=["2/m", "3/h"], rate_limit_key=staticmethod(lambda r: "one"))
    assert await statuses(limited, 4) == [200, 200, 429, 429]
    # the refused requests took nothing from the hourly budget
    [hourly] = [k for k in redis_client.keys("*") if k.endswith(b":3/3600")]
    assert redis_client.zcard(hourly) == 2
    assert all(redis_client.pttl(k) > 0 for k in redis_client.keys("*"))


# ------------------------------------------------------------------ identity


@pytest.mark.redis
async def test_ip_key_and_proxies() -> None:
    limited = view(rate_limit="1/h")

    async def status(remote: str, forwarded: str | None = None) -> int:
        extra = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        return (await call(limited, **extra)).status_code

    assert await status("10.0.0.1", "1.1.1.1") == 200
    # NUM_PROXIES = 0: the header is ignored, so forging it buys nothing
    assert await status("10.0.0.1", "2.2.2.2") == 429
    assert await status("10.0.0.2") == 200
    with override_settings(ASYNC_CBV={"NUM_PROXIES": 1}):
        assert await status("10.0.0.9", "6.6.6.6, 3.3.3.3") == 200
        assert await status("10.0.0.8", "7.7.7.7, 3.3.3.3") == 429  # same rightmost entry
        assert await status("10.0.0.7", "3.3.3.4") == 200
        assert await status("10.0.0.1", "") == 429  # no usable entry: REMOTE_ADDR's budget
        assert await status("10.0.0.1", "not-an-ip") == 429
    with override_settings(ASYNC_CBV={"NUM_PROXIES": 2}):
        assert await status("10.0.0.9", "5.5.5.5, 4.4.4.4, 10.1.1.1") == 200
        assert await status("10.0.0.9", "9.9.9.9, 4.4.4.4, 10.1.1.2") == 429
        assert await status("10.0.0.3", "4.4.4.4") == 200  # fewer entries: REMOTE_ADDR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:8080", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("[::ffff:192.0.2.1]:80", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("64:ff9b::192.0.2.1", "192.0.2.1"),  # NAT64
        ("::ffff:0:192.0.2.1", "192.0.2.1"),  # IPv4-translated
        ("::192.0.2.1", "192.0.2.1"),  # IPv4-compatible
        ("2002:c000:0201:5::1", "192.0.2.1"),  # 6to4: one budget, not one per /64
        ("2002:c000:0201:6::1", "192.0.2.1"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo client
        ("::1", "::/64"),
        ("", None),
        ("unknown", None),
        ("192.0.2.1:99999", "192.0.2.1"),  # a port is dropped, whatever its digits
        ("1.2.3", None),
        ("192.0.2.1, 192.0.2.2", None),
        ("x" * 500, None),
        ("[::1", None),
    ],
)
def test_address_normalisation(text: str, expected: str | None) -> None:
    assert normalise_ip(text) == expected


def test_a_missing_remote_addr_shares_one_bucket_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="django_async_cbv"):
        assert client_ip({}, 0) == UNKNOWN_CLIENT
        assert client_ip({"REMOTE_ADDR": "garbage"}, 0) == UNKNOWN_CLIENT
    assert len(caplog.records) == 2
    assert "shares one rate limit bucket" in caplog.records[0].getMessage()


@pytest.mark.redis
async def test_user_keys() -> None:
    for kind in ("user", "user_or_ip"):
        limited = view(rate_limit="1/h", rate_limit_key=kind)
        assert (await call(limited, user=user(1))).status_code == 200
        assert (await call(limited, user=user(1))).status_code == 429
        assert (await call(limited, user=user(2))).status_code == 200
        # anonymous requests fall back to the address, shared by all anonymous users
        assert (await call(limited, user=ANONYMOUS)).status_code == 200
        assert (await call(limited, user=ANONYMOUS)).status_code == 429
        assert (await call(limited, user=ANONYMOUS, REMOTE_ADDR="10.9.9.9")).status_code == 200


@pytest.mark.redis
async def test_header_key_falls_back_to_the_address() -> None:
    limited = view(rate_limit="1/h", rate_limit_key="header:X-Api-Key")
    assert (await call(limited, HTTP_X_API_KEY="a")).status_code == 200
    assert (await call(limited, HTTP_X_API_KEY="a")).status_code == 429
    assert (await call(limited, HTTP_X_API_KEY="b")).status_code == 200
    # leaving the header out, or empty, never escapes the limit: the address's budget
    assert (await call(limited)).status_code == 200
    assert (await call(limited)).status_code == 429
    assert (await call(limited, HTTP_X_API_KEY="  ")).status_code == 429


@pytest.mark.redis
async def test_callable_keys_sync_and_async_and_none_exempts() -> None:
    def sync_key(request: HttpRequest) -> str | None:
        return None if request.GET.get("free") else request.GET.get("k", "x")

    async def async_key(request: HttpRequest) -> str | None:
        await asyncio.sleep(0)
        return sync_key(request)

    for key in (sync_key, async_key):
        for limited, initkwargs in (
            (view(rate_limit="1/h", rate_limit_key=staticmethod(key)), {}),
            (view(rate_limit="1/h", rate_limit_key=key), {}),  # a plain function attribute
            (view(rate_limit="1/h"), {"rate_limit_key": key}),  # an as_view() argument
        ):
            go = limited.as_view(**initkwargs)
            assert (await go(factory.get("/", {"k": "a"}))).status_code == 200
            assert (await go(factory.get("/", {"k": "a"}))).status_code == 429
            assert (await go(factory.get("/", {"k": "b"}))).status_code == 200
            for _ in range(3):
                free = await go(factory.get("/", {"free": "1"}))
                assert free.status_code == 200
                assert "RateLimit" not in free.headers  # exempt: no budget to report


@pytest.mark.redis
async def test_a_callable_returning_a_non_string_is_an_error() -> None:
    limited = view(rate_limit_key=staticmethod(lambda request: 42))
    with pytest.raises(ImproperlyConfigured, match=r"rate_limit_key returned 42"):
        await call(limited)


@pytest.mark.redis
async def test_get_rate_limit_key_can_be_overridden() -> None:
    class PerTenant(AsyncRateLimitMixin, AsyncView):
        rate_limit = "1/h"

        async def get_rate_limit_key(self) -> str | None:
            return self.kwargs.get("tenant")

        async def get(self, request: HttpRequest, tenant: str) -> HttpResponse:
            return HttpResponse("ok")

    go = PerTenant.as_view()
    assert (await go(factory.get("/"), tenant="a")).status_code == 200
    assert (await go(factory.get("/"), tenant="a")).status_code == 429
    assert (await go(factory.get("/"), tenant="b")).status_code == 200


# ------------------------------------------------------------------ methods, scope


@pytest.mark.redis
async def test_only_the_listed_methods_are_limited() -> None:
    limited = view(rate_limit="1/h", rate_limit_methods=["post"])
    for _ in range(3):
        response = await call(limited)
        assert response.status_code == 200
        assert "RateLimit-Policy" not in response.headers
    assert (await call(limited, "post")).status_code == 200
    assert (await call(limited, "post")).status_code == 429


@pytest.mark.redis
async def test_get_includes_head() -> None:
    limited = view(rate_limit="2/h", rate_limit_methods=["GET"])
    assert [(await call(limited, m)).status_code for m in ("get", "head", "head")] == [
        200,
        200,
        429,
    ]
    assert (await call(limited, "post")).status_code == 200  # not limited


@pytest.mark.redis
async def test_scopes_share_budgets_per_rate() -> None:
    first = view(rate_limit="2/h", rate_limit_scope="shared")
    second = view(rate_limit="2/h", rate_limit_scope="shared")
    other_rate = view(rate_limit="3/h", rate_limit_scope="shared")
    unscoped = view(rate_limit="2/h")
    assert (await call(first)).status_code == 200
    assert (await call(second)).status_code == 200
    assert (await call(first)).status_code == 429
    assert (await call(second)).status_code == 429
    assert await statuses(other_rate, 4) == [200, 200, 200, 429]  # the rate is in the key
    assert await statuses(unscoped, 3) == [200, 200, 429]  # its own dotted path


@pytest.mark.redis
async def test_hooks_vary_the_limit_per_request() -> None:
    class Tiered(AsyncRateLimitMixin, AsyncView):
        def get_rate_limit(self) -> str:
            return "1/h" if self.request.GET.get("tier") == "free" else "3/h"

        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    go = Tiered.as_view()
    assert [(await go(factory.get("/", {"tier": "free"}))).status_code for _ in range(2)] == [
        200,
        429,
    ]
    assert [(await go(factory.get("/"))).status_code for _ in range(4)] == [200, 200, 200, 429]

    class Broken(Tiered):
        def get_rate_limit(self) -> str:
            return "lots"

    with pytest.raises(ImproperlyConfigured, match=r"Broken\.rate_limit: Invalid rate 'lots'"):
        await Broken.as_view()(factory.get("/"))


# ------------------------------------------------------------------ stages


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_api_view_responses_carry_the_fields() -> None:
    class Categories(AsyncRateLimitMixin, AsyncAPIView):
        model = Category
        fields = ["name"]
        rate_limit = "5/h"

    go = Categories.as_view()
    missing = await go(factory.get("/"), pk=12345)
    assert missing.status_code == 404
    assert missing["RateLimit"] == '"5/h";r=4;t=3600'
    assert (await go(factory.get("/")))["RateLimit"] == '"5/h";r=3;t=3600'


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_a_denied_request_still_costs_budget() -> None:
    class Closed(AsyncRateLimitMixin, AsyncAPIView):
        model = Category
        fields = ["name"]
        rate_limit = "2/h"

        async def has_permission(self) -> bool:
            return False

    go = Closed.as_view()
    first = await go(factory.get("/"))
    assert first.status_code in (401, 403)
    assert first["RateLimit"] == '"2/h";r=1;t=3600'
    await go(factory.get("/"))
    assert (await go(factory.get("/"))).status_code == 429


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("refusal", [ProblemError(401, detail="Bad token."), PermissionDenied()])
async def test_a_request_authenticate_refuses_still_costs_budget(refusal: Exception) -> None:
    """Guessing bearer tokens is rate limited: authenticate()'s refusal costs budget."""

    class Guarded(AsyncRateLimitMixin, AsyncAPIView):
        model = Category
        fields = ["name"]
        rate_limit = "2/h"
        rate_limit_key = "user_or_ip"
        handled = 0

        async def authenticate(self) -> Any:
            if "HTTP_AUTHORIZATION" in self.request.META:
                raise refusal
            return None

        async def list(self) -> HttpResponse:
            type(self).handled += 1
            return HttpResponse("listed")

    go = Guarded.as_view()
    answers = []
    for n in range(3):
        request = factory.get("/", headers={"Authorization": f"Bearer guess-{n}"})
        answers.append(await go(request))
    assert [a.status_code for a in answers[:2]] == [refusal_status(refusal)] * 2
    assert answers[0]["RateLimit"] == '"2/h";r=1;t=3600'
    assert answers[2].status_code == 429
    assert Guarded.handled == 0


def refusal_status(refusal: Exception) -> int:
    return 401 if isinstance(refusal, ProblemError) else 403


class StoreLike:
    """A stand-in for a cache stage: answers ?cached=1 requests without the handler."""

    @request_stage(CACHE)
    async def store_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        if request.GET.get("cached"):
            return HttpResponse("from the store")
        return await call_next(request)


@pytest.mark.redis
@pytest.mark.parametrize("order", ["limit first", "store first"])
async def test_answers_from_a_later_stage_still_cost_budget(order: str) -> None:
    class Plain(AsyncView):
        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("from the handler")

    if order == "limit first":
        bases: tuple[type, ...] = (AsyncRateLimitMixin, StoreLike, Plain)
    else:
        bases = (StoreLike, AsyncRateLimitMixin, Plain)
    cached = type(f"Cached{order[0]}", bases, {"rate_limit": "2/h", "__module__": __name__})
    go = cached.as_view()
    hits = [await go(factory.get("/", {"cached": "1"})) for _ in range(3)]
    assert [r.status_code for r in hits] == [200, 200, 429]
    assert hits[0].content == b"from the store"
    assert hits[1]["RateLimit"] == '"2/h";r=0;t=3600'


# ------------------------------------------------------------------ real short windows


@pytest.mark.redis
async def test_token_bucket_refills_on_a_real_clock() -> None:
    limited = view(rate_limit="5/2s", rate_limit_algorithm="token_bucket")
    assert await statuses(limited, 6) == [200] * 5 + [429]
    refused = await call(limited)
    assert refused["Retry-After"] == "1"  # one token per 0.4 s
    started = time.monotonic()
    await asyncio.sleep(0.45)  # the clock under test: one token's worth of time passes
    assert (await call(limited)).status_code == 200
    assert (await call(limited)).status_code == 429
    assert time.monotonic() - started < 0.8  # only one token came back, not the bucket


@pytest.mark.redis
async def test_sliding_window_frees_slots_one_period_after_each_admission() -> None:
    limited = view(rate_limit="5/2s")
    first = await statuses(limited, 3)
    await asyncio.sleep(1.0)  # real time passes between the two groups
    second = await statuses(limited, 3)
    assert first + second == [200] * 5 + [429]
    # The first three leave the window 2 s after they came; the last two stay.
    await asyncio.sleep(1.1)
    assert await statuses(limited, 4) == [200, 200, 200, 429]


# ------------------------------------------------------------------ local memory


@pytest.mark.redis
async def test_local_memory_fixed_window() -> None:
    limited = view(
        rate_limit=["3/h", "4/d"],
        rate_limit_algorithm="fixed_window",
        rate_limit_cache_alias="locmem",
    )
    responses = [await call(limited) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert responses[0]["RateLimit-Policy"] == '"3/h";q=3;w=3600, "4/d";q=4;w=86400'
    assert re.fullmatch(r'"3/h";r=0;t=\d+', responses[3]["RateLimit"])
    assert 1 <= int(responses[3]["Retry-After"]) <= 3600
    # The refusals took nothing from the daily budget: it still has one left.
    daily = view(
        rate_limit="4/d", rate_limit_algorithm="fixed_window", rate_limit_cache_alias="locmem"
    )
    go = daily.as_view(rate_limit_scope=f"{__name__}.{limited.__qualname__}")
    assert (await go(factory.get("/")))["RateLimit"].startswith('"4/d";r=0;')


@pytest.mark.redis
async def test_long_client_chosen_keys_are_counted_and_not_kept_in_memory() -> None:
    import gc
    import tracemalloc

    limited = view(
        rate_limit="2/h",
        rate_limit_key="header:X-Api-Key",
        rate_limit_algorithm="fixed_window",
        rate_limit_cache_alias="locmem",
    )
    long_key = "k" * 40_000
    assert await statuses(limited, 3, HTTP_X_API_KEY=long_key) == [200, 200, 429]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(100):  # 100 clients, each with a 40 kB key of its own
            assert (await call(limited, HTTP_X_API_KEY=f"{n:05d}" + long_key)).status_code == 200
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000, f"{kept} bytes kept after 100 long keys (4 MB sent)"


@pytest.mark.redis
async def test_local_memory_is_exact_under_concurrency() -> None:
    limited = view(
        rate_limit="50/h", rate_limit_algorithm="fixed_window", rate_limit_cache_alias="locmem"
    )
    go = limited.as_view()
    results = await asyncio.gather(*(go(factory.get("/")) for _ in range(200)))
    assert sorted(r.status_code for r in results) == [200] * 50 + [429] * 150


# ------------------------------------------------------------------ store down


@pytest.fixture
def dead_redis() -> Iterator[str]:
    """A URL on which nothing listens (the port is held, never listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        sock.close()


def _dead_caches(url: str) -> dict[str, Any]:
    return {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}}


async def test_store_down_fails_open_with_a_warning(
    dead_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    limited = view(rate_limit="1/h")
    with override_settings(CACHES=_dead_caches(dead_redis)):
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="django_async_cbv"):
            responses = [await call(limited) for _ in range(3)]
        elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "RateLimit" not in responses[0].headers
    assert elapsed < 1.5  # refused connections: no timeout to wait for; then skipped
    assert "admitting requests" in caplog.records[0].getMessage()
    assert len(caplog.records) == 1  # one line per second, not one per request


async def test_store_down_fails_closed_when_configured(dead_redis: str) -> None:
    limited = view(rate_limit="1/h")
    with override_settings(
        CACHES=_dead_caches(dead_redis), ASYNC_CBV={"RATE_LIMIT_FAIL_OPEN": False}
    ):
        response = await call(limited)
    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM_JSON
    assert limited.calls == 0


class Blackhole:
    """A TCP server that accepts connections and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1000)  # the kernel completes handshakes; nobody reads
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    try:
        yield hole
    finally:
        hole.close()


@pytest.fixture
def fresh_health() -> Iterator[None]:
    from django_async_cbv._redis import health as _store_health

    _store_health.forget()
    yield
    _store_health.forget()


async def test_a_hung_store_that_answered_recently_gets_503_never_admission(
    blackhole: Blackhole, fresh_health: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_async_cbv._redis import health as _store_health

    limited = view(rate_limit="1/h")
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(_store_health, "_now", lambda: clock.now)
    with override_settings(CACHES=_dead_caches(blackhole.url)):
        _store_health.health_of("default").succeeded()  # it answered a moment ago
        clock.now += 1
        busy = await call(limited)
        # A timeout while the store answers others may be this loop's own overload:
        # never admitted uncounted, whatever RATE_LIMIT_FAIL_OPEN says.
        assert busy.status_code == 503
        assert busy["Retry-After"] == "1"
        assert limited.calls == 0
        clock.now += _store_health.RECENT  # silent for longer: now it is down
        down = await call(limited)
        assert down.status_code == 200  # RATE_LIMIT_FAIL_OPEN (default True)
        started = time.monotonic()
        skipped = [await call(limited) for _ in range(5)]  # down: skipped at once
        assert [r.status_code for r in skipped] == [200] * 5
        assert time.monotonic() - started < 0.5


async def test_a_store_hung_from_the_start_is_waited_for_briefly_then_skipped(
    blackhole: Blackhole, fresh_health: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_async_cbv._redis import health as _store_health

    limited = view(rate_limit="1/h")
    go = limited.as_view()
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(_store_health, "_now", lambda: clock.now)
    with override_settings(CACHES=_dead_caches(blackhole.url)):
        started = time.monotonic()
        first = await asyncio.gather(*(go(factory.get("/")) for _ in range(300)))
        elapsed = time.monotonic() - started
        # Timeouts at start-up cannot be told from a burst: refused, not admitted.
        assert {r.status_code for r in first} == {503}
        assert elapsed < 8.0  # one read timeout per turn of 64, not per request
        clock.now += _store_health.RECENT  # still silent: down
        later = await asyncio.gather(*(go(factory.get("/")) for _ in range(300)))
        assert {r.status_code for r in later} == {200}  # RATE_LIMIT_FAIL_OPEN
    assert limited.calls == 300


@pytest.mark.redis
@pytest.mark.parametrize("alias", ["default", "redis_builtin"])
async def test_a_large_burst_on_a_healthy_store_admits_exactly_the_limit(
    redis_caches: dict[str, Any], alias: str, fresh_health: None
) -> None:
    url = redis_caches[alias]["LOCATION"]
    backend = redis_caches[alias]["BACKEND"]
    limited = view(rate_limit="10/h")
    go = limited.as_view()
    with override_settings(CACHES={"default": {"BACKEND": backend, "LOCATION": url}}):
        responses = await asyncio.gather(*(go(factory.get("/")) for _ in range(1500)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10
    assert statuses.count(200) + statuses.count(429) + statuses.count(503) == 1500
    assert limited.calls == 10


@pytest.mark.redis
async def test_a_redis_restart_costs_no_admission_and_no_error(fresh_health: None) -> None:
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    port = server.port
    try:
        caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": server.url}}
        limited = view(rate_limit="30/h")
        go = limited.as_view()
        with override_settings(CACHES=caches):
            first = await asyncio.gather(*(go(factory.get("/")) for _ in range(20)))
            server.stop()
            server = RedisServer(port_factory=lambda: port).start()  # same address, empty
            second = await asyncio.gather(*(go(factory.get("/")) for _ in range(20)))
        assert [r.status_code for r in first] == [200] * 20
        # Every pooled connection was closed by the restart: each is retried once on a
        # new connection, so the requests are counted, none is admitted uncounted.
        assert [r.status_code for r in second] == [200] * 20
        assert all("RateLimit" in r.headers for r in second)
    finally:
        server.stop()


@pytest.mark.redis
async def test_a_sync_get_rate_limit_key_override_works() -> None:
    class SyncKey(AsyncRateLimitMixin, AsyncView):
        rate_limit = "1/h"

        def get_rate_limit_key(self) -> str | None:  # type: ignore[override]
            return "tenant:" + self.request.GET.get("t", "")

        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    go = SyncKey.as_view()
    assert [(await go(factory.get("/", {"t": "a"}))).status_code for _ in range(2)] == [200, 429]
    assert (await go(factory.get("/", {"t": "b"}))).status_code == 200


def _method_key(self: Any, request: HttpRequest) -> str:
    return "k"


@pytest.mark.parametrize(
    "spec",
    [classmethod(lambda cls, request: "k"), _method_key, lambda: "k"],
    ids=["classmethod", "method", "no-argument"],
)
def test_key_callables_that_cannot_take_the_request_fail_at_as_view(spec: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"rate_limit_key"):
        view(rate_limit_key=spec).as_view()


@pytest.mark.redis
async def test_budget_names_are_keyed_by_the_secret(
    redis_client: redis.Redis, settings: Any
) -> None:
    import hashlib

    from django_async_cbv.ratelimit import client_digest

    limited = view(rate_limit="5/h")
    scope = f"{__name__}.{limited.__qualname__}"
    await call(limited, REMOTE_ADDR="10.20.30.40")
    keys = b" ".join(redis_client.keys("*")).decode()
    plain = hashlib.sha256(f"{len(scope)}:{scope}ip:10.20.30.40".encode()).hexdigest()
    assert plain not in keys  # not recoverable by hashing candidate addresses
    assert hashlib.sha256(client_digest(scope, "ip:10.20.30.40").encode()).hexdigest() in keys
    settings.SECRET_KEY = "another-site"
    assert client_digest(scope, "ip:10.20.30.40") not in keys


def test_local_memory_retry_after_waits_for_every_full_rate() -> None:
    from django.core.cache.backends.locmem import LocMemCache

    from django_async_cbv.ratelimit.cache_limiter import fixed_window_check
    from django_async_cbv.ratelimit.rates import parse_rates

    cache = LocMemCache("retry-test", {})
    rates = parse_rates(["1/s", "2/m"])
    now = 1_800_000_000.0  # on a minute boundary
    assert fixed_window_check(cache, "k", rates, now=now).allowed
    assert fixed_window_check(cache, "k", rates, now=now + 1).allowed
    refused = fixed_window_check(cache, "k", rates, now=now + 11)
    assert not refused.allowed
    assert refused.retry_after == 49  # the minute window, not the second
    assert not fixed_window_check(cache, "k", rates, now=now + 12).allowed
    assert fixed_window_check(cache, "k", rates, now=now + 60).allowed


# ------------------------------------------------------------------ through Django


@pytest.mark.redis
@pytest.mark.urls(__name__)
async def test_through_the_middleware_stack() -> None:
    client = AsyncClient()
    responses = [await client.get("/hello/") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[3]["Retry-After"].isdigit()


urlpatterns = [path("hello/", view(rate_limit="3/h").as_view())]
