"""The documentation cannot rot: its code is run, its tables and responses are checked.

Every Python example lives in ``docs/examples/`` and is pulled into the pages with
``literalinclude``; Python written inline in a page fails ``test_no_inline_python``.
The tests below import each example and exercise it through Django's ``AsyncClient``.
Responses and tables printed in the pages are compared with the real thing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, override_settings
from docs.examples import (
    auth,
    errors,
    fanout,
    handlers,
    quickstart,
    settings_install,
    settings_sqlite,
    timeouts,
)

import django_async_cbv
from django_async_cbv import UpstreamError
from django_async_cbv.checks import check_views

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PROBLEM_JSON = "application/problem+json"

User = get_user_model()

#: Example modules whose behaviour this file exercises. Examples named
#: ``json_api*`` belong to the JSON API guide and are tested with it.
TESTED_HERE = {
    "auth",
    "errors",
    "fanout",
    "handlers",
    "quickstart",
    "settings_install",
    "settings_sqlite",
    "timeouts",
}
# Tested in tests/test_docs_json_api.py, test_stages.py, test_docs_ratelimit.py and
# test_docs_caching.py (upstream_client and asgi_shutdown: test_docs_http_client.py;
# generic: test_docs_generic.py; models: every test of the shop app; tutorial_*:
# test_docs_tutorial.py).
TESTED_ELSEWHERE = re.compile(
    r"generic$|json_api|stages$|(settings_)?ratelimit$|caching(_api)?$|upstream(_client)?$"
    r"|asgi_shutdown$|settings_breakers$|settings_redis$|openapi$|tutorial_|settings_caches$|models$"
)


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


# -- reading the pages ---------------------------------------------------------------------


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)


def _parser() -> Any:
    pytest.importorskip("myst_parser", reason="install docs/requirements.txt to test the docs")
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions={"deflist"}), RendererHTML)


@dataclass
class Block:
    """A code block or directive of a page: its info string, body and first line."""

    page: Path
    kind: str  # "fence" or "code_block"
    info: str
    content: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def directive(self) -> str | None:
        match = re.match(r"\{([\w:-]+)\}", self.info.strip())
        return match.group(1) if match else None

    @property
    def argument(self) -> str:
        return self.info.strip().partition(" ")[2].strip() if self.directive else ""

    @property
    def language(self) -> str:
        return self.info.strip().split(" ")[0].lower() if not self.directive else ""

    @property
    def options(self) -> dict[str, str]:
        found = {}
        for line in self.content.splitlines():
            match = re.match(r":([\w-]+):\s*(.*)", line)
            if not match:
                break
            found[match.group(1)] = match.group(2).strip()
        return found

    @property
    def body(self) -> str:
        """The content without the leading ``:option:`` lines."""
        lines = self.content.splitlines()
        while lines and re.match(r":[\w-]+:", lines[0]):
            lines.pop(0)
        return "\n".join(lines)


# Directives whose body is itself Markdown (admonitions and the like) are parsed again;
# these are the ones whose body is something else.
NOT_MARKDOWN = {"literalinclude", "include", "toctree", "eval-rst", "code-block", "code"}
NOT_MARKDOWN |= {"sourcecode", "code-cell", "math", "csv-table", "list-table", "raw"}


def blocks(page: Path, text: str | None = None, offset: int = 0) -> Iterator[Block]:
    """Yield every code block and directive of ``page``, nested ones included."""
    if text is None:
        text = page.read_text(encoding="utf-8")
    for token in _parser().parse(text):
        if token.type not in {"fence", "code_block"}:
            continue
        line = offset + (token.map[0] + 1 if token.map else 0)
        block = Block(page, token.type, token.info, token.content, line)
        yield block
        if block.directive and block.directive not in NOT_MARKDOWN:
            yield from blocks(page, block.body, line)


def fences(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.kind == "fence"]


# -- no inline Python ----------------------------------------------------------------------

#: Languages a fence may use: none of them is Python. A fence with no language is
#: refused too, because Sphinx highlights it as Python.
ALLOWED_LANGUAGES = {
    "console",
    "shell",
    "bash",
    "sh",
    "text",
    "http",
    "json",
    "toml",
    "ini",
    "yaml",
    "html",
    "django",
    "html+django",
    "diff",
}
CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "code-cell"}
# reStructuredText inside {eval-rst} that would show code: code directives, doctest
# blocks, and "::" literal blocks (which Sphinx highlights as Python).
RST_CODE = re.compile(
    r"^\s*\.\. (code-block|code|sourcecode|literalinclude|highlight|doctest|testcode|"
    r"ipython|jupyter-execute)::|^\s*>>> |::\s*$",
    re.MULTILINE,
)


def test_there_are_pages() -> None:
    """The scan below looks at the real pages."""
    names = {p.name for p in pages()}
    assert {"index.md", "installation.md", "asyncview.md", "reference.md"} <= names


def test_no_inline_python() -> None:
    """Python appears in the docs only through literalinclude of docs/examples/*.py."""
    problems = []
    for page in pages():
        for block in blocks(page):
            if block.kind == "code_block":
                problems.append(f"{block.where}: indented code block; use a fenced block")
            elif block.directive in CODE_DIRECTIVES:
                language = block.argument.split(" ")[0].lower()
                if language not in ALLOWED_LANGUAGES:
                    problems.append(
                        f"{block.where}: {{{block.directive}}} {language or '(no language)'}"
                        "; put Python in docs/examples/ and use literalinclude"
                    )
            elif block.directive == "eval-rst":
                if match := RST_CODE.search(block.content):
                    problems.append(f"{block.where}: code in eval-rst: {match.group(0).strip()}")
            elif not block.directive and block.language not in ALLOWED_LANGUAGES:
                problems.append(
                    f"{block.where}: ```{block.language or '(no language)'} fence; "
                    "put Python in docs/examples/ and use literalinclude"
                )
    assert not problems, "\n".join(problems)


def test_literalincludes_point_at_examples() -> None:
    """Every literalinclude shows a file of docs/examples/ that exists."""
    problems = []
    for page in pages():
        for block in fences(page):
            if block.directive != "literalinclude":
                continue
            target = (page.parent / block.argument).resolve()
            if target.parent != EXAMPLES or target.suffix != ".py" or not target.is_file():
                problems.append(f"{block.where}: {block.argument} is not in docs/examples/")
    assert not problems, "\n".join(problems)


def included_examples() -> set[str]:
    return {
        Path(block.argument).stem
        for page in pages()
        for block in fences(page)
        if block.directive == "literalinclude"
    }


def example_modules() -> set[str]:
    return {p.stem for p in EXAMPLES.glob("*.py") if p.stem != "__init__"}


def test_every_example_is_shown_in_a_page() -> None:
    """No example sits in docs/examples/ without a page including it."""
    assert example_modules() - included_examples() == set()


def test_every_example_is_tested() -> None:
    """Each example module is exercised here (or, for json_api*, with the JSON API)."""
    mine = {name for name in example_modules() if not TESTED_ELSEWHERE.match(name)}
    assert mine == TESTED_HERE


def test_reference_covers_the_public_api() -> None:
    """Each name the package exports has an autodoc entry in some page."""
    documented = set()
    for page in pages():
        for block in fences(page):
            if block.directive == "eval-rst":
                documented |= set(
                    re.findall(r"\.\. auto\w+:: django_async_cbv\.(\w+)\s*$", block.content, re.M)
                )
    exported = set(django_async_cbv.__all__) - {"__version__"}
    assert exported - documented == set()


def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    """``sphinx-build -W`` succeeds: no broken reference, include or autodoc entry."""
    pytest.importorskip("sphinx", reason="install docs/requirements.txt to build the docs")
    pytest.importorskip("furo", reason="install docs/requirements.txt to build the docs")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [*command, str(DOCS), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- documented responses ------------------------------------------------------------------


@dataclass
class DocumentedResponse:
    status: int
    headers: dict[str, str]
    body: Any


def documented_response(page_name: str, status: int) -> DocumentedResponse:
    """Return the one ```http block of ``page_name`` showing ``status``."""
    found = []
    for block in fences(DOCS / page_name):
        if block.language != "http":
            continue
        head, _, body = block.content.partition("\n\n")
        status_line, *header_lines = head.splitlines()
        if int(status_line.split()[1]) == status:
            headers = dict(line.split(": ", 1) for line in header_lines)
            found.append(DocumentedResponse(status, headers, json.loads(body) if body else None))
    assert len(found) == 1, f"{page_name} shows {len(found)} responses with status {status}"
    return found[0]


def assert_documented(response: Any, page_name: str) -> None:
    """``response`` is exactly what ``page_name`` shows for its status."""
    documented = documented_response(page_name, response.status_code)
    for name, value in documented.headers.items():
        assert response.headers[name] == value, name
    assert json.loads(response.content) == documented.body


DOCUMENTED = {
    ("index.md", 404),
    ("asyncview.md", 400),
    ("asyncview.md", 405),
    ("asyncview.md", 504),
}


def test_every_documented_response_is_checked() -> None:
    """Each ```http block of these pages is compared with a real response below."""
    shown = set()
    for page_name in {name for name, _ in DOCUMENTED}:
        for block in fences(DOCS / page_name):
            if block.language == "http":
                shown.add((page_name, int(block.content.split()[1])))
    assert shown == DOCUMENTED


# -- settings and checks -------------------------------------------------------------------


def test_sqlite_snippet_starts_immediate_transactions(
    tmp_path: Path, django_db_blocker: Any
) -> None:
    """The SQLite settings are accepted by Django and begin transactions IMMEDIATE."""
    from django.db.utils import ConnectionHandler

    config = {**settings_sqlite.DATABASES["default"], "NAME": tmp_path / "db.sqlite3"}
    connection = ConnectionHandler({"default": config})["default"]
    with django_db_blocker.unblock():
        try:
            connection.set_autocommit(False)
            with connection.cursor() as cursor:
                cursor.execute("CREATE TABLE t (x INTEGER)")
            connection.commit()
            assert connection.transaction_mode == "IMMEDIATE"
        finally:
            connection.close()


def test_install_snippet_enables_the_checks() -> None:
    """The INSTALLED_APPS snippet names the app that registers the checks."""
    assert "django_async_cbv" in settings_install.INSTALLED_APPS


# -- quickstart (index.md) -----------------------------------------------------------------

quickstart_urls = pytest.mark.urls("docs.examples.quickstart")


@quickstart_urls
async def test_quickstart_answers(client: AsyncClient) -> None:
    """The city view returns both parts."""
    response = await client.get("/cities/oslo/")
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "forecast": {"high_c": 21, "low_c": 12},
        "air_quality": {"aqi": 42},
    }


@quickstart_urls
async def test_quickstart_calls_run_at_the_same_time(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both calls are in flight at once: each waits until the other has started.

    Run one after the other, the first would wait until gather()'s timeout and leave
    its part null.
    """
    started = {"forecast": asyncio.Event(), "air_quality": asyncio.Event()}

    def meeting(mine: str, other: str) -> Any:
        async def call(city: str) -> dict[str, str]:
            started[mine].set()
            await started[other].wait()
            return {"city": city}

        return call

    monkeypatch.setattr(quickstart, "fetch_forecast", meeting("forecast", "air_quality"))
    monkeypatch.setattr(quickstart, "fetch_air_quality", meeting("air_quality", "forecast"))
    response = await client.get("/cities/lima/")
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "forecast": {"city": "lima"},
        "air_quality": {"city": "lima"},
    }


@quickstart_urls
async def test_quickstart_failed_part_is_null(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing call leaves null in its part of the answer."""

    async def broken(city: str) -> dict[str, str]:
        raise UpstreamError("air quality service down", status=500)

    monkeypatch.setattr(quickstart, "fetch_air_quality", broken)
    response = await client.get("/cities/paris/")
    assert json.loads(response.content)["air_quality"] is None


@quickstart_urls
async def test_quickstart_unknown_city_is_the_documented_404(client: AsyncClient) -> None:
    """An unknown city gets exactly the problem shown on the front page."""
    response = await client.get("/cities/atlantis/")
    assert response.status_code == 404
    assert_documented(response, "index.md")


# -- handlers.py ---------------------------------------------------------------------------


@pytest.mark.urls("docs.examples.handlers")
@pytest.mark.django_db(transaction=True)
async def test_sync_and_async_handlers_side_by_side(client: AsyncClient) -> None:
    """The async GET and the sync POST (with transaction.atomic) both work."""
    assert iscoroutinefunction(handlers.MemberView.as_view())
    await User.objects.acreate(username="docs-new")
    await User.objects.acreate(username="docs-seen", last_login="2025-01-01T00:00:00Z")
    # Counted, not assumed: the table may hold users other tests left behind.
    active = await User.objects.filter(is_active=True).acount()
    never_seen = await User.objects.filter(is_active=True, last_login__isnull=True).acount()
    assert never_seen >= 1

    response = await client.get("/members/")
    assert json.loads(response.content) == {"active_members": active}
    response = await client.post("/members/")
    assert json.loads(response.content) == {"deactivated": never_seen}
    response = await client.get("/members/")
    assert json.loads(response.content) == {"active_members": active - never_seen}
    assert await User.objects.filter(username="docs-seen", is_active=True).aexists()


@pytest.mark.urls("docs.examples.handlers")
@pytest.mark.django_db(transaction=True)
async def test_head_and_options(client: AsyncClient) -> None:
    """HEAD runs the GET handler; OPTIONS lists the methods with an empty body."""
    response = await client.head("/members/")
    assert response.status_code == 200
    assert response.content == b""
    response = await client.options("/members/")
    assert response.status_code == 200
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert response.content == b""


@pytest.mark.urls("docs.examples.handlers")
async def test_405_is_the_documented_problem(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """PUT gets exactly the 405 shown in the guide, and django.request logs it."""
    with caplog.at_level("WARNING", logger="django.request"):
        response = await client.put("/members/")
    assert response.status_code == 405
    assert_documented(response, "asyncview.md")
    assert any(
        r.name == "django.request" and "Method Not Allowed" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.urls("docs.examples.handlers")
async def test_csrf_middleware_answers_before_the_405() -> None:
    """As the guide's note says: without a CSRF token, Django's 403 comes first."""
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.put("/members/")
    assert response.status_code == 403
    assert response["Content-Type"] != PROBLEM_JSON  # Django's page, not the view's
    client.cookies["csrftoken"] = "C" * 32
    response = await client.put("/members/", headers={"X-CSRFToken": "C" * 32})
    assert response.status_code == 405
    assert_documented(response, "asyncview.md")


# -- timeouts.py ---------------------------------------------------------------------------


@pytest.mark.urls("docs.examples.timeouts")
async def test_report_within_its_timeout(client: AsyncClient) -> None:
    """A quick report is answered normally."""
    response = await client.get("/report/")
    assert json.loads(response.content) == {"full": False, "rows": 3}


@pytest.mark.urls("docs.examples.timeouts")
async def test_slow_report_is_the_documented_504_and_is_cancelled(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the timeout the client gets the 504 shown in the guide; the handler is cancelled."""
    cancelled = asyncio.Event()

    async def stuck(*, full: bool) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    monkeypatch.setattr(timeouts, "build_report", stuck)
    monkeypatch.setattr(timeouts.ReportView, "timeout", 0.05)
    response = await client.get("/report/")
    assert response.status_code == 504
    assert_documented(response, "asyncview.md")
    await asyncio.wait_for(cancelled.wait(), timeout=5)


@pytest.mark.urls("docs.examples.timeouts")
@pytest.mark.django_db(transaction=True)
async def test_get_timeout_gives_staff_longer(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff asking for the full report get the longer timeout; others do not."""

    async def slowish(*, full: bool) -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {"full": full}

    monkeypatch.setattr(timeouts, "build_report", slowish)
    monkeypatch.setattr(timeouts.ReportView, "timeout", 0.05)
    assert (await client.get("/report/?full=1")).status_code == 504

    await client.aforce_login(await User.objects.acreate(username="docs-sam", is_staff=True))
    response = await client.get("/report/?full=1")
    assert response.status_code == 200
    assert json.loads(response.content) == {"full": True}
    assert (await client.get("/report/")).status_code == 504


@pytest.mark.urls("docs.examples.timeouts")
async def test_export_returns_csv(client: AsyncClient) -> None:
    """The sync export handler answers with the CSV."""
    response = await client.get("/export.csv")
    assert response["Content-Type"] == "text/csv"
    assert response.content == b"id,name\r\n1,Ada\r\n"


@pytest.mark.urls("docs.examples.timeouts")
async def test_export_thread_runs_on_after_the_504(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 504 goes out on time while the sync handler's thread is still busy."""
    release = threading.Event()
    finished = threading.Event()

    def blocked() -> list[list[str]]:
        release.wait(timeout=10)
        finished.set()
        return [["id"]]

    monkeypatch.setattr(timeouts, "export_rows", blocked)
    monkeypatch.setattr(timeouts.ExportView, "timeout", 0.05)
    try:
        response = await client.get("/export.csv")
        assert response.status_code == 504
        assert not finished.is_set()
    finally:
        release.set()
    assert await asyncio.to_thread(finished.wait, 10)


# -- fanout.py -----------------------------------------------------------------------------


@pytest.mark.urls("docs.examples.fanout")
async def test_dashboard_with_every_part(client: AsyncClient) -> None:
    """All three parts arrive, nothing is missing."""
    response = await client.get("/users/1/dashboard/")
    assert json.loads(response.content) == {
        "profile": {"id": 1, "name": "Ada"},
        "orders": [{"id": 7, "total": "18.50"}],
        "recommendations": ["green tea", "teapot"],
        "missing": [],
    }


@pytest.mark.urls("docs.examples.fanout")
async def test_dashboard_degrades_without_an_optional_part(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing optional part is empty and listed as missing; the failure is logged."""

    async def broken(user_id: int) -> list[Any]:
        raise UpstreamError("orders service answered 500", status=500)

    monkeypatch.setattr(fanout, "fetch_orders", broken)
    response = await client.get("/users/1/dashboard/")
    data = json.loads(response.content)
    assert data["orders"] == []
    assert data["missing"] == ["orders"]
    assert data["recommendations"] == ["green tea", "teapot"]
    assert "Dashboard part 'orders' failed" in caplog.text


@pytest.mark.urls("docs.examples.fanout")
async def test_dashboard_cancels_a_straggler_at_the_deadline(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part slower than upstream_timeout is cancelled before the response is sent."""
    cancelled = False

    async def stuck(user_id: int) -> list[Any]:
        nonlocal cancelled
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise
        return []

    monkeypatch.setattr(fanout, "fetch_recommendations", stuck)
    monkeypatch.setattr(fanout.DashboardView, "upstream_timeout", 0.05)
    response = await client.get("/users/1/dashboard/")
    assert json.loads(response.content)["missing"] == ["recommendations"]
    assert cancelled  # already, not eventually: no task outlives gather()


@pytest.mark.urls("docs.examples.fanout")
async def test_dashboard_without_profile_is_a_503_problem(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing required part fails the request, without leaking the upstream error."""

    async def broken(user_id: int) -> dict[str, Any]:
        raise UpstreamError("secret internal hostname", status=500, body=b"stack trace")

    monkeypatch.setattr(fanout, "fetch_profile", broken)
    response = await client.get("/users/1/dashboard/")
    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM_JSON
    assert json.loads(response.content)["detail"] == "Profiles are unavailable. Try again shortly."
    assert b"secret" not in response.content
    assert b"stack trace" not in response.content


def test_check_configuration_rejects_a_bad_upstream_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """as_view() refuses a bad value, and the system check reports one on the class."""
    with pytest.raises(ImproperlyConfigured, match=r"DashboardView\.upstream_timeout"):
        fanout.DashboardView.as_view(upstream_timeout=0)
    fanout.DashboardView.as_view(upstream_timeout=0.5)

    monkeypatch.setattr(fanout.DashboardView, "upstream_timeout", "soon")
    with override_settings(ROOT_URLCONF="docs.examples.fanout"):
        errors = check_views()
    assert [e.id for e in errors] == ["django_async_cbv.E010"]
    assert "upstream_timeout" in errors[0].msg


# -- errors.py -----------------------------------------------------------------------------


@pytest.fixture
def stock(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    fresh = {"tea": 3, "cocoa": 0}
    monkeypatch.setattr(errors, "STOCK", fresh)
    return fresh


@pytest.mark.urls("docs.examples.errors")
async def test_order_is_created(client: AsyncClient, stock: dict[str, int]) -> None:
    """A valid order reserves stock and answers 201."""
    response = await client.post("/products/tea/orders/", {"quantity": "2"})
    assert response.status_code == 201
    assert json.loads(response.content) == {"sku": "tea", "quantity": 2}
    assert stock["tea"] == 1


@pytest.mark.urls("docs.examples.errors")
@pytest.mark.parametrize("quantity", ["", "0", "-1", "two", "1.5"])
async def test_bad_quantity_is_the_documented_400(
    client: AsyncClient, stock: dict[str, int], quantity: str
) -> None:
    """A bad quantity gets exactly the validation problem shown in the guide."""
    response = await client.post("/products/tea/orders/", {"quantity": quantity})
    assert response.status_code == 400
    assert_documented(response, "asyncview.md")


@pytest.mark.urls("docs.examples.errors")
async def test_out_of_stock_is_a_409_with_extensions(
    client: AsyncClient, stock: dict[str, int]
) -> None:
    """handle_exception() maps the shop's own exception to a typed problem."""
    response = await client.post("/products/cocoa/orders/", {"quantity": "1"})
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM_JSON
    assert json.loads(response.content) == {
        "type": "https://shop.example/problems/out-of-stock",
        "title": "Conflict",
        "status": 409,
        "detail": "Only 0 of 'cocoa' left.",
        "available": 0,
    }


@pytest.mark.urls("docs.examples.errors")
async def test_http404_becomes_a_problem_without_its_message(
    client: AsyncClient, stock: dict[str, int]
) -> None:
    """Http404 is mapped to a 404 problem; the exception text stays server-side."""
    response = await client.post("/products/mystery/orders/", {"quantity": "1"})
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM_JSON
    assert json.loads(response.content)["detail"] == "There is no such product."
    assert b"shop_product" not in response.content


@pytest.mark.urls("docs.examples.errors")
async def test_problem_headers_are_sent(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers set on a ProblemError instance reach the response."""
    monkeypatch.setattr(errors, "ORDERING_PAUSED", True)
    response = await client.post("/products/tea/orders/", {"quantity": "1"})
    assert response.status_code == 503
    assert response["Retry-After"] == "300"
    assert json.loads(response.content)["detail"] == "Ordering is paused for maintenance."


@pytest.mark.urls("docs.examples.errors")
async def test_unknown_exceptions_reach_django(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What neither override nor library maps is re-raised to Django's handling."""

    def broken(sku: str, quantity: int) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(errors, "reserve", broken)
    with pytest.raises(RuntimeError, match="database on fire"):
        await client.post("/products/tea/orders/", {"quantity": "1"})


# -- auth.py -------------------------------------------------------------------------------


@pytest.mark.urls("docs.examples.auth")
async def test_greeting_for_an_anonymous_user(client: AsyncClient) -> None:
    """request.user is an AnonymousUser without a session."""
    response = await client.get("/hello/")
    assert json.loads(response.content) == {"greeting": "Hello, stranger!"}


@pytest.mark.urls("docs.examples.auth")
@pytest.mark.django_db(transaction=True)
async def test_greeting_and_account_for_a_logged_in_user(client: AsyncClient) -> None:
    """request.user is the logged-in user; login_required lets them through."""
    await client.aforce_login(await User.objects.acreate(username="docs-ada"))
    response = await client.get("/hello/")
    assert json.loads(response.content) == {"greeting": "Hello, docs-ada!"}
    response = await client.get("/account/")
    assert response.status_code == 200
    assert json.loads(response.content) == {"username": "docs-ada"}


@pytest.mark.urls("docs.examples.auth")
async def test_login_required_redirects_anonymous_users(client: AsyncClient) -> None:
    """method_decorator(login_required) on dispatch redirects to LOGIN_URL."""
    response = await client.get("/account/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/account/"


@pytest.mark.urls("docs.examples.auth")
async def test_cache_control_and_vary_decorators(client: AsyncClient) -> None:
    """cache_control and vary_on_headers add their headers."""
    response = await client.get("/prices/", headers={"Accept-Language": "de-DE"})
    assert json.loads(response.content) == {"green tea": "4,50 €"}
    assert set(response["Cache-Control"].split(", ")) == {"max-age=300", "public"}
    assert "Accept-Language" in response["Vary"]


@pytest.mark.urls("docs.examples.auth")
async def test_csrf_exempt_webhook_checks_its_signature() -> None:
    """The exempt webhook needs no CSRF token, but does need a valid signature."""
    client = AsyncClient(enforce_csrf_checks=True)
    body = b'{"event": "paid"}'
    signature = hmac.new(auth.WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()
    response = await client.post(
        "/webhooks/payments/",
        body,
        content_type="application/json",
        headers={"X-Signature": signature},
    )
    assert response.status_code == 204

    response = await client.post(
        "/webhooks/payments/",
        body,
        content_type="application/json",
        headers={"X-Signature": "0" * 64},
    )
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM_JSON


@pytest.mark.urls("docs.examples.auth")
async def test_views_without_csrf_exempt_keep_csrf_protection() -> None:
    """A POST to a view that is not exempt is refused by Django's CSRF check."""
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.post("/hello/")
    assert response.status_code == 403
