"""What each scenario measures: its variants, endpoints and result tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from . import checks
from .server import BENCH_DIR

DJANGO_APP = "benchproj.asgi:application"
RETRIEVE_PK = 500


@dataclass(frozen=True)
class Endpoint:
    key: str
    method: str
    path: str
    # verify(port, tag) raises checks.CheckError on a wrong answer
    verify: Callable[[int, str], None]
    # > 0: every request of a load run carries an X-Forwarded-For address from a
    # pool of this many (GET only; see lua/xff.lua)
    xff_pool: int = 0


@dataclass
class Variant:
    key: str
    label: str
    app: str
    env: dict[str, str] = field(default_factory=dict)
    needs_db: bool = False
    module: str | None = None  # URLconf module probed before the run
    skipped: str | None = None  # why the variant cannot run, if it cannot
    limited: bool = False  # ratelimit: the variant counts requests in Redis
    server_args: tuple[str, ...] = ()  # more uvicorn options
    # cache: which cache the variant uses ("acbv", "cache_page"; None: uncached)
    cache: str | None = None
    # check(port, when) runs after every check of the endpoint (set by run.py);
    # raises checks.CheckError on a wrong answer
    check: Callable[[int, str], None] | None = None


@dataclass(frozen=True)
class Table:
    title: str
    endpoint: str
    rows: list[str]  # variant keys, in display order
    baseline: str
    also_vs: str | None = None
    # (variant, versus, minimum ratio) lines printed under the table
    targets: tuple[tuple[str, str, float], ...] = ()
    # {variant: its own baseline}: one "x own baseline" column instead of `baseline`'s
    pairs: dict[str, str] | None = None


@dataclass
class Scenario:
    name: str
    description: str
    variants: list[Variant]
    endpoints: list[Endpoint]
    tables: list[Table]


# -- verification helpers -----------------------------------------------------


def _verify_hello(port: int, tag: str) -> None:
    checks.check_hello(checks.request(port, "GET", "/hello/"))


def _verify_list(port: int, tag: str) -> None:
    checks.check_list(checks.request(port, "GET", "/items/"))


def _verify_retrieve(port: int, tag: str) -> None:
    check = checks.check_retrieve(RETRIEVE_PK)
    check(checks.request(port, "GET", f"/items/{RETRIEVE_PK}/"))


def _verify_create(port: int, tag: str) -> None:
    body = {
        "name": f"{tag}-check",
        "description": "Created by the pre-flight check.",
        "price": "19.99",
        "quantity": 7,
        "is_active": True,
    }
    checks.check_create(body)(checks.request(port, "POST", "/items/", body))


# -- scenarios ----------------------------------------------------------------


def hello() -> Scenario:
    variants = [Variant("bare", "bare ASGI app (no Django)", "benchproj.bare:app")]
    tables = []
    for mw, title in (("minimal", "no middleware"), ("default", "startproject MIDDLEWARE")):
        django_key, acbv_key = f"{mw}/django", f"{mw}/asyncview"
        variants += [
            Variant(
                django_key,
                "django.views.View",
                DJANGO_APP,
                {"BENCH_URLCONF": "benchproj.urls.hello_django", "BENCH_MIDDLEWARE": mw},
                module="benchproj.urls.hello_django",
            ),
            Variant(
                acbv_key,
                "django_async_cbv.AsyncView",
                DJANGO_APP,
                {"BENCH_URLCONF": "benchproj.urls.hello_asyncview", "BENCH_MIDDLEWARE": mw},
                module="benchproj.urls.hello_asyncview",
            ),
        ]
        tables.append(
            Table(
                f"hello: GET /hello/, {title}",
                "hello",
                ["bare", django_key, acbv_key],
                baseline=django_key,
                targets=((acbv_key, django_key, 0.95),),
            )
        )
    return Scenario(
        "hello",
        "hello-world JSON: AsyncView vs Django's View, with a bare ASGI app as reference",
        variants,
        [Endpoint("hello", "GET", "/hello/", _verify_hello)],
        tables,
    )


API_VARIANTS = [
    # key, label, URLconf module
    ("view", "hand-written async View", "benchproj.api.plain"),
    ("viewform", "hand-written View, ModelForm + atomic", "benchproj.api.plain_form"),
    ("asyncapiview", "django_async_cbv.AsyncAPIView", "benchproj.api.acbv"),
    ("ninja", "django-ninja (async)", "benchproj.api.ninja_api"),
    ("adrf", "adrf generics (async)", "benchproj.api.adrf_api"),
    ("drf", "DRF generics (sync)", "benchproj.api.drf"),
]


def api(middleware: str = "default", database: str = "sqlite", only: str | None = None) -> Scenario:
    variants = [
        Variant(
            key,
            label,
            DJANGO_APP,
            {"BENCH_URLCONF": module, "BENCH_MIDDLEWARE": middleware},
            needs_db=True,
            module=module,
        )
        for key, label, module in API_VARIANTS
    ]
    keys = [v.key for v in variants]
    endpoints = [
        Endpoint("list", "GET", "/items/", _verify_list),
        Endpoint("retrieve", "GET", f"/items/{RETRIEVE_PK}/", _verify_retrieve),
        Endpoint("create", "POST", "/items/", _verify_create),
    ]
    if only:
        wanted = {key.strip() for key in only.split(",")}
        endpoints = [ep for ep in endpoints if ep.key in wanted]
    engine = "PostgreSQL" if database == "postgresql" else "SQLite"
    target_min = {"list": 1.0, "retrieve": 1.0, "create": 0.95}
    tables = [
        Table(
            f"api {ep.key}: {ep.method} {ep.path}",
            ep.key,
            keys,
            baseline="view",
            also_vs="ninja",
            targets=(
                ("asyncapiview", "ninja", target_min[ep.key]),
                ("asyncapiview", "view", 0.95),
            ),
        )
        for ep in endpoints
    ]
    return Scenario(
        "api",
        f"JSON CRUD over one model (1,000 rows, {engine}), {middleware} middleware",
        variants,
        endpoints,
        tables,
    )


PAGES_ROWS = 1_000_000
PAGES_DEEP = 5000  # the deep page's number: rows 99,981 to 100,000
PAGES_TARGET = 0.90  # cursor page 5,000 >= 0.90x cursor page 1
PAGES_VARIANTS = [
    # key, label, URLconf module
    ("cursor", "AsyncAPIView, cursor pages", "benchproj.api.acbv_cursor"),
    ("asyncapiview", "AsyncAPIView, numbered pages", "benchproj.api.acbv"),
    ("ninja", "django-ninja, numbered pages", "benchproj.api.ninja_api"),
]

_CURSOR = r"""
import sys
import django
django.setup()
from benchproj.api.acbv_cursor import cursor_after
print("CURSOR " + cursor_after(int(sys.argv[1])))
"""


def _deep_cursor(after_pk: int) -> str:
    """The cursor variant's signed cursor after row ``after_pk`` ("" if it cannot make one)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchproj.settings",
        "PYTHONPATH": os.pathsep.join(
            [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "BENCH_DB": ":memory:",
        "BENCH_URLCONF": "benchproj.api.acbv_cursor",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _CURSOR, str(after_pk)],
        cwd=BENCH_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("CURSOR "):
            return line[7:]
    return ""  # an older library: the cursor variant is skipped by the probe


def pages(middleware: str = "default") -> Scenario:
    """Page 1 and page 5,000 of a 1,000,000-row table: keyset cursors vs OFFSET pages.

    One URL serves every variant: numbered pages read ``page`` and ignore
    ``cursor``, the cursor variant reads ``cursor`` and ignores ``page``.
    """
    variants = [
        Variant(
            key,
            label,
            DJANGO_APP,
            {"BENCH_URLCONF": module, "BENCH_MIDDLEWARE": middleware},
            needs_db=True,
            module=module,
        )
        for key, label, module in PAGES_VARIANTS
    ]
    first = (PAGES_DEEP - 1) * 20 + 1
    deep = f"/items/?page={PAGES_DEEP}&cursor={_deep_cursor(first - 1)}"
    endpoints = [
        Endpoint("page1", "GET", "/items/", lambda port, tag: _verify_page(port, "/items/", 1)),
        Endpoint("page5000", "GET", deep, lambda port, tag: _verify_page(port, deep, first)),
    ]
    keys = [key for key, *_ in PAGES_VARIANTS]
    tables = [
        Table(
            f"pages {ep.key}: GET {ep.path if len(ep.path) < 40 else ep.path[:40] + '...'}",
            ep.key,
            keys,
            baseline="cursor",
            also_vs="ninja",
        )
        for ep in endpoints
    ]
    return Scenario(
        "pages",
        f"page 1 and page {PAGES_DEEP:,} of a {PAGES_ROWS:,}-row SQLite table, {middleware}"
        " middleware",
        variants,
        endpoints,
        tables,
    )


def _verify_page(port: int, path: str, first_id: int) -> None:
    checks.check_page(first_id)(checks.request(port, "GET", path))


RATELIMIT_RATE = "100/m"
RATELIMIT_XFF_POOL = 5000
RATELIMIT_TARGET = 0.90
# The frameworks take the client address from X-Forwarded-For themselves (one trusted
# proxy); uvicorn must not rewrite it first (its default for connections from 127.0.0.1).
RATELIMIT_SERVER_ARGS = ("--no-proxy-headers",)
RATELIMIT_VARIANTS = [
    # key, label, URLconf module, its unlimited baseline (None: it is a baseline)
    ("acbv", "AsyncView (no limit)", "benchproj.urls.hello_asyncview", None),
    ("acbv-rl", "AsyncView + AsyncRateLimitMixin", "benchproj.ratelimit.acbv_limited", "acbv"),
    ("drf", "DRF APIView (sync, no throttle)", "benchproj.ratelimit.drf_plain", None),
    ("drf-rl", "DRF APIView + AnonRateThrottle", "benchproj.ratelimit.drf_throttled", "drf"),
    ("ninja", "ninja async (no throttle)", "benchproj.ratelimit.ninja_plain", None),
    ("ninja-rl", "ninja async + AnonRateThrottle", "benchproj.ratelimit.ninja_throttled", "ninja"),
    ("django", "Django sync view (no limit)", "benchproj.ratelimit.dj_plain", None),
    ("django-rl", "Django sync view + @ratelimit", "benchproj.ratelimit.dj_ratelimit", "django"),
]


def ratelimit(middleware: str = "default") -> Scenario:
    """Each rate limiter against its own unlimited hello view, over 5,000 client addresses.

    The servers' env gets BENCH_REDIS_URL from run.py once Redis is up.
    """
    variants = [
        Variant(
            key,
            label,
            DJANGO_APP,
            {
                "BENCH_URLCONF": module,
                "BENCH_MIDDLEWARE": middleware,
                "BENCH_CACHE_PREFIX": key,  # no two servers share a key
                "BENCH_RL_RATE": RATELIMIT_RATE,
            },
            module=module,
            limited=baseline is not None,
            server_args=RATELIMIT_SERVER_ARGS,
        )
        for key, label, module, baseline in RATELIMIT_VARIANTS
    ]
    pairs = {key: baseline for key, _, _, baseline in RATELIMIT_VARIANTS if baseline}
    return Scenario(
        "ratelimit",
        f"hello JSON with and without each rate limiter (Redis), {RATELIMIT_RATE} per client,"
        f" {RATELIMIT_XFF_POOL:,} clients, {middleware} middleware",
        variants,
        [Endpoint("hello", "GET", "/hello/", _verify_hello, xff_pool=RATELIMIT_XFF_POOL)],
        [
            Table(
                f"ratelimit: GET /hello/, X-Forwarded-For from {RATELIMIT_XFF_POOL:,} addresses,"
                f" limit {RATELIMIT_RATE} per address, {middleware} middleware",
                "hello",
                [key for key, *_ in RATELIMIT_VARIANTS],
                baseline="acbv",
                targets=(("acbv-rl", "acbv", RATELIMIT_TARGET),),
                pairs=pairs,
            )
        ],
    )


CACHE_HIT_TARGET = 0.90  # x the uncached view
CACHE_VS_CACHE_PAGE_TARGET = 1.5  # x cache_page
CACHE_VARIANTS = [
    # key, label, URLconf module, cache
    ("hello", "AsyncView (no cache)", "benchproj.urls.hello_asyncview", None),
    ("acbv-cache", "AsyncView + AsyncCacheMixin", "benchproj.cache.acbv_cached", "acbv"),
    ("cache-page", "AsyncView + cache_page", "benchproj.cache.dj_cache_page", "cache_page"),
]


def cache(middleware: str = "default") -> Scenario:
    """Hits of AsyncCacheMixin and of cache_page against the uncached hello view.

    All on django-redis (BENCH_REDIS_URL, set by run.py once Redis is up); the
    cached variants' entries are made by the first check, before any load.
    """
    variants = [
        Variant(
            key,
            label,
            DJANGO_APP,
            {
                "BENCH_URLCONF": module,
                "BENCH_MIDDLEWARE": middleware,
                "BENCH_CACHE_PREFIX": key,  # no two servers share an entry
            },
            module=module,
            cache=kind,
        )
        for key, label, module, kind in CACHE_VARIANTS
    ]
    return Scenario(
        "cache",
        f"hello JSON uncached, from AsyncCacheMixin and from cache_page (django-redis),"
        f" {middleware} middleware",
        variants,
        [Endpoint("hello", "GET", "/hello/", _verify_hello)],
        [
            Table(
                f"cache: GET /hello/, cache hits (entry warmed before the load),"
                f" {middleware} middleware",
                "hello",
                [key for key, *_ in CACHE_VARIANTS],
                baseline="hello",
                also_vs="cache-page",
                targets=(
                    ("acbv-cache", "hello", CACHE_HIT_TARGET),
                    ("acbv-cache", "cache-page", CACHE_VS_CACHE_PAGE_TARGET),
                ),
            )
        ],
    )


# -- probing --------------------------------------------------------------------

_PROBE = r"""
import importlib, json, os, sys, traceback
import django
django.setup()
out = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
        out[module] = ["ok", ""]
    except ImportError as exc:
        out[module] = ["missing", f"{type(exc).__name__}: {exc}"]
    except Exception as exc:
        out[module] = ["broken", traceback.format_exc(limit=4)]
print("PROBE " + json.dumps(out))
"""


def probe(variants: list[Variant], env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Import every variant's URLconf in a throw-away process, with the server's settings.

    Returns ``{module: (state, detail)}`` where state is ``ok``, ``missing``
    (an import failed: the variant is skipped) or ``broken`` (it raised
    something else: the run fails).
    """
    modules = sorted({v.module for v in variants if v.module})
    if not modules:
        return {}
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchproj.settings",
        "PYTHONPATH": os.pathsep.join(
            [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        cwd=BENCH_DIR,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE "):
            return {k: (v[0], v[1]) for k, v in json.loads(line[6:]).items()}
    raise RuntimeError(f"probe failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
