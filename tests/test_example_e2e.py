"""The example project, served by real ASGI server processes and called over real HTTP.

The tests run under each server of the matrix (tests/asgi_servers.py: uvicorn with
httptools, uvicorn with h11, Hypercorn), but for the few of the application's own slow
logic (``ONE_SERVER``: under uvicorn with httptools). Each server runs ``example.asgi:application``
from ``example_project/`` on a port the OS picks, read from the server's "running on"
log line, which is also the readiness signal. A server that logs an ASGI error fails
the test (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.asgi_servers import DEFAULT, HYPERCORN, SERVERS, AsgiServer, ServerKind

pytestmark = [pytest.mark.e2e, pytest.mark.servers(*SERVERS)]

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "example_project"
PROBLEM_JSON = "application/problem+json"

#: For the tests of the application's own logic (timeouts, the breaker's states, Redis),
#: which no server changes and which take seconds each: the default server only.
ONE_SERVER = pytest.mark.servers(DEFAULT)


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, *, method: str = "GET", headers: Mapping[str, str] | None = None) -> Response:
    """Make one HTTP request; 4xx and 5xx answers are returned, not raised."""
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.headers, error.read())


def example_env(db_path: Path, **overrides: str) -> dict[str, str]:
    """The environment of an example-project process (never the test settings)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "EXAMPLE_UPSTREAM_URL", "DJANGO_DEBUG"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="example.settings",
        EXAMPLE_DB_PATH=str(db_path),
        DJANGO_DEBUG="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


class ExampleServer(AsgiServer):
    """A server child process serving the example project, which answers the lifespan."""

    def __init__(self, env: Mapping[str, str], kind: ServerKind) -> None:
        super().__init__(
            "example.asgi:application", env, kind=kind, lifespan=True, app_dir=EXAMPLE_DIR
        )

    def url(self, path: str) -> str:
        assert self.base_url is not None
        return self.base_url + path


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database of the example project with every migration applied."""
    db_path = tmp_path_factory.mktemp("example-db") / "template.sqlite3"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "manage.py"), "migrate", "--no-input"],
        env=example_env(db_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return db_path


def start_server(
    migrated_db: Path, tmp_path: Path, kind: ServerKind = DEFAULT, **env: str
) -> ExampleServer:
    db_path = tmp_path / "example.sqlite3"
    shutil.copyfile(migrated_db, db_path)
    server = ExampleServer(example_env(db_path, **env), kind)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def server(
    migrated_db: Path, tmp_path_factory: pytest.TempPathFactory, server_kind: ServerKind
) -> Iterator[ExampleServer]:
    """The example project with its default settings (local-memory cache)."""
    running = start_server(
        migrated_db,
        tmp_path_factory.mktemp("example"),
        server_kind,
        EXAMPLE_BREAKER_RECOVERY_TIMEOUT="1",
    )
    yield running
    running.stop()


# -- index ---------------------------------------------------------------------------------


def test_index_lists_the_demos(server: ExampleServer) -> None:
    """The index page links every installed demo, with its description."""
    data = fetch(server.url("/?format=json")).json()
    titles = [demo["title"] for demo in data["demos"]]
    assert "Fan-out with gather()" in titles

    page = fetch(server.url("/"))
    assert page.status == 200
    assert page.headers.get_content_type() == "text/html"
    html = page.body.decode()
    for demo in data["demos"]:
        assert f'href="{demo["url"]}"' in html
        assert demo["description"] in html


def test_index_uses_local_memory_cache_by_default(server: ExampleServer) -> None:
    """Without REDIS_URL the cache is local memory, and it answers."""
    cache = fetch(server.url("/?format=json")).json()["cache"]
    assert cache["backend"] == "django.core.cache.backends.locmem.LocMemCache"
    assert cache["ok"] is True
    assert "LocMemCache" in fetch(server.url("/")).body.decode()


def test_head_is_answered_without_a_body(server: ExampleServer) -> None:
    """HEAD works on an AsyncView that defines only get()."""
    response = fetch(server.url("/"), method="HEAD")
    assert response.status == 200
    assert response.body == b""


# -- fan-out -------------------------------------------------------------------------------


def test_fanout_runs_the_calls_concurrently(server: ExampleServer) -> None:
    """Three 0.2 s calls take about 0.2 s together, well under their 0.6 s sum."""
    response = fetch(server.url("/demo/fanout/?format=json&delay=0.2"))
    assert response.status == 200
    data = response.json()
    assert data["sequential_ms"] == 600
    assert 200 <= data["elapsed_ms"] < 0.8 * data["sequential_ms"]
    assert set(data["results"]) == {"profile", "orders", "recommendations"}
    for name, result in data["results"].items():
        assert result == {
            "ok": True,
            "delay": 0.2,
            "data": {"name": name, "delay": 0.2, "value": f"data from {name}"},
            "ms": result["ms"],
        }
        assert 200 <= result["ms"] <= data["elapsed_ms"]  # each slot's own time


def test_fanout_html_shows_both_timings(server: ExampleServer) -> None:
    """The HTML page shows the elapsed time next to the sequential sum."""
    response = fetch(server.url("/demo/fanout/?delay=0.1"))
    assert response.status == 200
    html = response.body.decode()
    assert re.search(r'id="elapsed-ms">\d+<', html)
    assert 'id="sequential-ms">300<' in html


def test_fanout_upstream_failure_fills_only_its_slot(server: ExampleServer) -> None:
    """A failing upstream shows its error class; the other calls still succeed."""
    response = fetch(server.url("/demo/fanout/?format=json&delay=0.05&fail=orders"))
    assert response.status == 200
    results = response.json()["results"]
    assert results["orders"] == {
        "ok": False,
        "delay": 0.05,
        "error": "UpstreamError",
        "ms": results["orders"]["ms"],
    }
    assert results["profile"]["ok"] is True
    assert results["recommendations"]["ok"] is True
    assert b"Traceback" not in response.body

    html = fetch(server.url("/demo/fanout/?delay=0.05&fail=orders")).body.decode()
    assert "UpstreamError" in html
    assert "Traceback" not in html


@ONE_SERVER
def test_fanout_timeout_cancels_the_straggler(server: ExampleServer) -> None:
    """A call slower than the gather timeout is cancelled; its slot is TimeoutError."""
    response = fetch(server.url("/demo/fanout/?format=json&delay=0.05&orders=4"))
    data = response.json()
    orders = data["results"]["orders"]
    assert orders == {"ok": False, "delay": 4.0, "error": "TimeoutError", "ms": orders["ms"]}
    # The slot ran until the deadline cancelled it, not for its 4 seconds.
    assert data["timeout_s"] * 1000 - 50 <= orders["ms"] < 4000
    assert data["results"]["profile"]["ok"] is True
    assert data["results"]["profile"]["ms"] < orders["ms"]
    assert data["elapsed_ms"] < 4000
    assert data["elapsed_ms"] >= data["timeout_s"] * 1000 - 50


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/demo/upstream/orders/?delay=abc", "delay"),
        ("/demo/upstream/orders/?delay=nan", "delay"),
        ("/demo/upstream/orders/?delay=99", "delay"),
        ("/demo/fanout/?delay=-1", "delay"),
        ("/demo/fanout/?orders=inf", "orders"),
    ],
)
def test_bad_delay_is_a_400_problem(server: ExampleServer, path: str, field: str) -> None:
    """An invalid delay is rejected with 400 problem+json naming the field."""
    response = fetch(server.url(path))
    assert response.status == 400
    assert response.headers.get_content_type() == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == 400
    assert problem["type"] == "about:blank"
    assert problem["title"] == "Bad Request"
    assert set(problem["errors"]) == {field}


# -- HTTP methods --------------------------------------------------------------------------

# Django's CSRF check compares the X-CSRFToken header with the csrftoken cookie, as a
# JavaScript client would send them; any 32 alphanumeric characters form a valid secret.
CSRF_SECRET = "e2e0" * 8
CSRF_HEADERS = {"Cookie": f"csrftoken={CSRF_SECRET}", "X-CSRFToken": CSRF_SECRET}


def test_unsupported_method_is_a_405_problem_with_allow(server: ExampleServer) -> None:
    """POST to a GET-only AsyncView passes CSRF, then gets 405 problem+json with Allow."""
    response = fetch(server.url("/demo/fanout/"), method="POST", headers=CSRF_HEADERS)
    assert response.status == 405
    assert response.headers.get_content_type() == PROBLEM_JSON
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    problem = response.json()
    assert problem["status"] == 405
    assert problem["title"] == "Method Not Allowed"


def test_csrf_protection_still_applies(server: ExampleServer) -> None:
    """Without a CSRF token, Django's middleware refuses the POST before the view runs."""
    response = fetch(server.url("/demo/fanout/"), method="POST")
    assert response.status == 403


def test_options_lists_the_allowed_methods(server: ExampleServer) -> None:
    """OPTIONS answers 200 with Allow and an empty body, as in Django."""
    response = fetch(server.url("/demo/upstream/orders/"), method="OPTIONS")
    assert response.status == 200
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert response.body == b""


# -- rate limiting -------------------------------------------------------------------------

LIMITED = "/demo/limited/"
LIMITED_POLICY = '"5/m";q=5;w=60'
RATE_LIMIT_FIELD = re.compile(r'"5/m";r=(\d+);t=(\d+)')


def fetch_limited_six_times(server: ExampleServer) -> list[Response]:
    """Six GETs of the rate limit demo (5/m), all within one clock minute.

    The local-memory fixed window starts afresh at every minute of the clock: with
    less than 5 seconds left in this one, wait (computed) for the next before starting.
    """
    seconds_left = 60 - time.time() % 60
    if seconds_left < 5:
        time.sleep(seconds_left + 0.2)
    minute = time.time() // 60
    responses = [fetch(server.url(LIMITED)) for _ in range(6)]
    assert time.time() // 60 == minute, "the six requests took more than 5 seconds"
    return responses


def assert_limited_five_times(responses: list[Response]) -> None:
    """5 x 200 with 4, 3, 2, 1, 0 requests left, then a 429 problem with Retry-After."""
    *admitted, refused = responses
    assert [r.status for r in admitted] == [200] * 5
    assert refused.status == 429
    left = []
    for response in responses:
        assert response.headers["RateLimit-Policy"] == LIMITED_POLICY
        match = RATE_LIMIT_FIELD.fullmatch(response.headers["RateLimit"])
        assert match is not None, response.headers["RateLimit"]
        assert 1 <= int(match[2]) <= 60
        left.append(int(match[1]))
    assert left == [4, 3, 2, 1, 0, 0]
    assert all(r.json()["rate_limit"] == "5/m" for r in admitted)
    assert refused.headers.get_content_type() == PROBLEM_JSON
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    problem = refused.json()
    assert problem["status"] == 429
    assert problem["title"] == "Too Many Requests"


def test_rate_limited_demo_refuses_the_sixth_request(server: ExampleServer) -> None:
    """5 requests a minute in local memory (fixed window): the sixth gets 429."""
    responses = fetch_limited_six_times(server)
    assert_limited_five_times(responses)
    assert responses[0].json()["algorithm"] == "fixed_window"
    # A forged X-Forwarded-For buys nothing: the server keeps REMOTE_ADDR the peer's.
    forged = fetch(server.url(LIMITED), headers={"X-Forwarded-For": "203.0.113.9"})
    assert forged.status == 429


@ONE_SERVER
def test_rate_limited_demo_on_redis_uses_the_sliding_window(
    redis_url: str, redis_client: Any, migrated_db: Path, tmp_path: Path, server_kind: ServerKind
) -> None:
    """With REDIS_URL the demo counts in Redis with the sliding window."""
    server = start_server(migrated_db, tmp_path, server_kind, REDIS_URL=redis_url)
    try:
        responses = [fetch(server.url(LIMITED)) for _ in range(6)]
    finally:
        log = server.stop()
    assert responses[0].json()["algorithm"] == "sliding_window", log
    assert_limited_five_times(responses)
    # The sliding window's log and sequence, under the project's KEY_PREFIX and version.
    keys = sorted(key.decode() for key in redis_client.scan_iter("example:1:async_cbv:rl:*"))
    assert len(keys) == 2, keys
    assert all(redis_client.pttl(key) > 0 for key in keys)
    assert "127.0.0.1" not in "".join(keys)


# -- caching -------------------------------------------------------------------------------

CACHED = "/demo/cached/"


def timed_fetch(url: str, **kwargs: Any) -> tuple[Response, float]:
    """``fetch()``, and the seconds it took."""
    started = time.monotonic()
    response = fetch(url, **kwargs)
    return response, time.monotonic() - started


def test_cached_demo_misses_once_then_hits(server: ExampleServer) -> None:
    """The 1-second page: a MISS that takes the second, then a HIT at once with the
    same body, Age and the same ETag; If-None-Match with that ETag gets a 304."""
    titles = [demo["title"] for demo in fetch(server.url("/?format=json")).json()["demos"]]
    assert "Response caching with AsyncCacheMixin" in titles

    miss, miss_seconds = timed_fetch(server.url(CACHED))
    assert miss.status == 200, server.log
    assert miss.headers["X-Cache"] == "MISS"
    assert miss_seconds >= 1.0
    assert miss.headers["Cache-Control"] == "max-age=10"
    assert "Age" not in miss.headers
    data = miss.json()
    assert set(data) == {"computed_at", "work_seconds", "cache_timeout"}
    assert (data["work_seconds"], data["cache_timeout"]) == (1.0, 10)

    hit, hit_seconds = timed_fetch(server.url(CACHED))
    assert hit.status == 200
    assert hit.headers["X-Cache"] == "HIT"
    assert hit_seconds < 0.5
    assert hit.body == miss.body  # the same computed_at: the handler did not run again
    assert hit.headers["ETag"] == miss.headers["ETag"]
    assert hit.headers["Age"] in ("0", "1")
    assert hit.headers["Cache-Control"] in ("max-age=10", "max-age=9")

    not_modified = fetch(server.url(CACHED), headers={"If-None-Match": miss.headers["ETag"]})
    assert not_modified.status == 304
    assert not_modified.body == b""
    assert not_modified.headers["ETag"] == miss.headers["ETag"]
    assert not_modified.headers["X-Cache"] == "HIT"


# -- flaky upstream and circuit breakers ----------------------------------------------------


def breaker_state(server: ExampleServer) -> str:
    state: str = fetch(server.url("/demo/breakers/")).json()["breakers"]["flaky-upstream"]["state"]
    return state


@ONE_SERVER
def test_flaky_upstream_opens_fails_fast_probes_and_closes(server: ExampleServer) -> None:
    """The demo's breaker goes through every state, over real HTTP through AsyncHTTPClient."""
    ok = fetch(server.url("/demo/flaky/?failure_rate=0"))
    assert ok.status == 200
    assert ok.json()["data"] == {"quote": "Simple is better than complex."}

    for _ in range(3):  # threshold 3: each failed call (two attempts) counts once
        failed = fetch(server.url("/demo/flaky/?failure_rate=1"))
        assert failed.status == 502
        assert failed.headers.get_content_type() == PROBLEM_JSON
        assert failed.json()["upstream_status"] == 503
    assert breaker_state(server) == "open"

    refused = fetch(server.url("/demo/flaky/?failure_rate=0"))  # healthy, but not called
    assert refused.status == 503
    assert refused.json()["outcome"] == "circuit_open"
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["breaker"]["rejections"] >= 1

    deadline = time.monotonic() + 10  # the recovery timeout is 1 s in this server
    while breaker_state(server) != "half_open":
        assert time.monotonic() < deadline, "the breaker never became half-open"
        time.sleep(0.05)
    probe = fetch(server.url("/demo/flaky/?failure_rate=0"))
    assert probe.status == 200
    assert probe.json()["breaker"]["state"] == "closed"
    assert breaker_state(server) == "closed"


def test_flaky_service_answers_by_its_failure_rate(server: ExampleServer) -> None:
    assert fetch(server.url("/demo/flaky/service/?failure_rate=1")).status == 503
    assert fetch(server.url("/demo/flaky/service/?failure_rate=0")).status == 200
    bad = fetch(server.url("/demo/flaky/?failure_rate=2"))
    assert bad.status == 400
    assert "failure_rate" in bad.json()["errors"]


def test_breakers_page_lists_the_named_breakers(server: ExampleServer) -> None:
    data = fetch(server.url("/demo/breakers/")).json()
    flaky = data["breakers"]["flaky-upstream"]
    assert flaky["failure_threshold"] == 3
    assert flaky["recovery_timeout"] == 1.0
    assert flaky["state"] in {"closed", "open", "half_open"}


# -- process lifecycle ---------------------------------------------------------------------


def test_shutdown_is_clean(migrated_db: Path, tmp_path: Path, server_kind: ServerKind) -> None:
    """SIGTERM runs the lifespan shutdown, which closes the upstream session cleanly."""
    server = start_server(migrated_db, tmp_path, server_kind)
    try:
        assert fetch(server.url("/demo/fanout/?format=json&delay=0")).status == 200
    finally:
        log = server.stop()
    # Recent uvicorn versions re-raise the SIGTERM they handled once shut down.
    assert server.process.returncode in (0, -signal.SIGTERM), log
    if server_kind.shutdown_complete is not None:
        assert server_kind.shutdown_complete in log
    if server_kind is HYPERCORN:  # it says so when the application refuses the lifespan
        assert "without Lifespan support" not in log, log
    assert server.asgi_errors() == [], log
    for trouble in ("Unclosed", "never awaited", "Task was destroyed"):
        assert trouble not in log, log


# -- Redis ---------------------------------------------------------------------------------


@ONE_SERVER
def test_redis_cache_when_redis_url_is_set(
    redis_url: str, redis_client: Any, migrated_db: Path, tmp_path: Path, server_kind: ServerKind
) -> None:
    """With REDIS_URL the project caches in Redis through django-redis."""
    server = start_server(migrated_db, tmp_path, server_kind, REDIS_URL=redis_url)
    try:
        first = fetch(server.url("/?format=json")).json()["cache"]
        second = fetch(server.url("/?format=json")).json()["cache"]
        html = fetch(server.url("/")).body.decode()
        fanout = fetch(server.url("/demo/fanout/?format=json&delay=0.1"))
    finally:
        log = server.stop()

    assert first["backend"] == "django_redis.cache.RedisCache", log
    assert first["ok"] is True, log
    assert second["hits"] == first["hits"] + 1
    assert 'id="cache-backend">django_redis.cache.RedisCache<' in html
    # The counter really lives in Redis, under the project's KEY_PREFIX and version 1.
    assert int(redis_client.get("example:1:index-hits")) == second["hits"] + 1
    assert fanout.status == 200


# ------------------------------------------------------------------ HTML pages (generic views)


class Browser:
    """Cookies and CSRF tokens across requests, as a browser keeps them; follows redirects."""

    def __init__(self) -> None:
        import http.cookiejar

        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, url: str, form: Mapping[str, str] | None = None) -> tuple[int, str, str]:
        """GET (or POST ``form``); return the final status, URL and body."""
        data = None if form is None else urllib.parse.urlencode(form).encode()
        try:
            with self.opener.open(url, data=data, timeout=15) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, url, error.read().decode()

    def sign_in(self, server: ExampleServer) -> None:
        """Sign in as the demo user (created by the migration items/0003_demo_user)."""
        status, url, page = self.submit(
            server.url("/accounts/login/"),
            {"username": "demo", "password": "async-cbv-demo", "next": "/items/"},
        )
        assert (status, url) == (200, server.url("/items/")), page
        assert "Signed in as <strong>demo</strong>" in page

    def submit(self, url: str, form: Mapping[str, str]) -> tuple[int, str, str]:
        """Load the form page, then post ``form`` with the page's CSRF token."""
        status, _, page = self.open(url)
        assert status == 200, page
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, page
        return self.open(url, {**form, "csrfmiddlewaretoken": match.group(1)})


def test_html_list_is_paginated_and_links_details(server: ExampleServer) -> None:
    """The sample items are listed; each links its detail page, rendered from the database."""
    browser = Browser()
    status, _, page = browser.open(server.url("/items/"))
    assert status == 200
    assert "Espresso cup" in page
    detail = re.search(r'href="(/items/\d+/)">Espresso cup<', page)
    assert detail, page
    status, _, detail_page = browser.open(server.url(detail.group(1)))
    assert status == 200
    assert "<h1>Espresso cup</h1>" in detail_page
    assert "Porcelain, 80 ml." in detail_page
    assert browser.open(server.url("/items/999999/"))[0] == 404


def test_html_writes_need_a_signed_in_user(server: ExampleServer) -> None:
    """AsyncLoginRequiredMixin and AsyncPermissionRequiredMixin send a visitor to sign in."""
    browser = Browser()
    for path in ("/items/new/", "/items/1/edit/", "/items/1/delete/"):
        status, url, page = browser.open(server.url(path))
        assert status == 200
        assert url == server.url("/accounts/login/?next=" + urllib.parse.quote(path)), url
        assert 'id="login-form"' in page
        assert "async-cbv-demo" in page  # the demo user's password is on the page


def test_html_create_update_delete(server: ExampleServer) -> None:
    """A form round trip with CSRF, signed in: create, edit, then delete an item."""
    browser = Browser()
    browser.sign_in(server)
    fields = {"name": "Knock box", "description": "Rubber bar.", "price": "19.00", "quantity": "2"}
    status, url, page = browser.submit(server.url("/items/new/"), {**fields, "active": "on"})
    assert status == 200
    match = re.fullmatch(r".*/items/(\d+)/", url)
    assert match, url
    assert "<h1>Knock box</h1>" in page
    pk = match.group(1)

    status, _, page = browser.submit(server.url(f"/items/{pk}/edit/"), {**fields, "price": "-"})
    assert status == 200
    assert "Enter a number." in page  # invalid: the form again, with its error

    status, url, page = browser.submit(
        server.url(f"/items/{pk}/edit/"), {**fields, "quantity": "7"}
    )
    assert url.endswith(f"/items/{pk}/")
    assert "In stock: 7" in page

    status, url, page = browser.submit(server.url(f"/items/{pk}/delete/"), {})
    assert status == 200
    assert url.endswith("/items/")
    assert "Knock box" not in page
    assert browser.open(server.url(f"/items/{pk}/"))[0] == 404


def test_html_form_without_csrf_token_is_refused(server: ExampleServer) -> None:
    """The generic views are not CSRF-exempt."""
    response = fetch(server.url("/items/new/"), method="POST")
    assert response.status == 403


# ------------------------------------------------------------------ the dashboard's other demos


def test_pages_share_the_stylesheet_and_the_nav(server: ExampleServer) -> None:
    """Every page links site.css and has the nav bar; the files are served with DEBUG off."""
    for path in ("/", "/demo/fanout/?delay=0", "/items/", "/accounts/login/", "/source/"):
        response = fetch(server.url(path))
        assert response.status == 200, path
        html = response.body.decode()
        assert 'href="/static/site.css"' in html, path
        assert 'id="nav"' in html, path
    for name, kind in [
        ("nav.css", "text/css"),
        ("site.css", "text/css"),
        ("dashboard.js", "text/javascript"),
    ]:
        asset = fetch(server.url(f"/static/{name}"))
        assert asset.status == 200
        assert asset.headers.get_content_type() == kind
        assert asset.body


def test_source_pages_serve_only_the_projects_files(server: ExampleServer) -> None:
    """The source view lists and shows the example's own files, and nothing else."""
    listing = fetch(server.url("/source/")).body.decode()
    assert 'href="/source/demo/limits.py"' in listing
    page = fetch(server.url("/source/demo/limits.py"))
    assert page.status == 200
    assert "class TokenBucketView(AlgorithmView):" in page.body.decode()
    for path in ("/source/../pyproject.toml", "/source/%2e%2e/pyproject.toml", "/source/nope.py"):
        assert fetch(server.url(path)).status == 404, path


def test_handler_past_its_timeout_is_a_504(server: ExampleServer) -> None:
    """AsyncView.timeout = 1: a 2-second handler is cancelled; a short one answers."""
    late, seconds = timed_fetch(server.url("/demo/slow/?seconds=2"))
    assert late.status == 504
    assert late.headers.get_content_type() == PROBLEM_JSON
    assert 1.0 <= seconds < 2.0
    assert fetch(server.url("/demo/slow/?seconds=0")).status == 200


@ONE_SERVER
@pytest.mark.parametrize("algorithm", ["sliding_window", "token_bucket"])
def test_algorithm_demos_refuse_the_sixth_request(server: ExampleServer, algorithm: str) -> None:
    """5 per 10 s by each algorithm: r counts down to 0, then 429 with Retry-After."""
    responses = [fetch(server.url(f"/demo/limits/{algorithm}/")) for _ in range(6)]
    assert [r.status for r in responses] == [200] * 5 + [429]
    assert responses[0].json()["algorithm"] == algorithm
    for left, response in zip([4, 3, 2, 1, 0, 0], responses, strict=True):
        assert response.headers["RateLimit-Policy"] == '"5/10s";q=5;w=10'
        assert response.headers["RateLimit"].startswith(f'"5/10s";r={left};t=')
    assert 1 <= int(responses[-1].headers["Retry-After"]) <= 10


@ONE_SERVER
def test_cache_invalidation_makes_the_next_request_a_miss(server: ExampleServer) -> None:
    """POST /demo/cached/invalidate/ (with CSRF) drops the stored answer at once."""
    fetch(server.url(CACHED))
    assert fetch(server.url(CACHED)).headers["X-Cache"] == "HIT"
    assert fetch(server.url("/demo/cached/invalidate/"), method="POST").status == 403  # CSRF
    done = fetch(server.url("/demo/cached/invalidate/"), method="POST", headers=CSRF_HEADERS)
    assert done.status == 200
    assert fetch(server.url(CACHED)).headers["X-Cache"] == "MISS"
