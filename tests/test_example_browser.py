"""The example project's dashboard, driven in headless Chromium as a visitor would.

The example runs under uvicorn (as in tests/test_example_e2e.py); Debian's ``chromium``
(``/usr/bin/chromium``, or ``$CHROMIUM``) loads its pages through Playwright, with a
fresh profile and the flags that keep it off the network. The tests click each panel's
buttons, wait for what the page shows (explicit waits on the DOM), and assert it:
a fan-out slot that timed out, a 504 from a handler past its timeout, 401 then 201
from the API, MISS then HIT then STALE from the cache, a 429 once a budget is spent
and the budget refilling, the breaker going open, half-open and closed, and the item
pages behind the sign-in.

Each test saves screenshots to ``artifacts/screenshots/`` under the repository root
(``$EXAMPLE_SCREENSHOTS_DIR`` overrides it). Without Chromium or the ``playwright``
package the tests are skipped with a loud reason; under ``CI=true`` they fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.test_example_e2e import (
    ExampleServer,
    migrated_db,  # noqa: F401  (a fixture)
    start_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("EXAMPLE_SCREENSHOTS_DIR") or ROOT / "artifacts" / "screenshots")
# The network is closed: without these Chromium waits on connections it cannot make.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds an explicit wait may take: a fan-out has a 2 s deadline, a fixed
#: window turns within 10 s, and the machine may be busy.
WAIT_MS = 20_000
#: The example's cached page stays fresh this long here (EXAMPLE_CACHE_TIMEOUT).
CACHE_TIMEOUT = 2
#: Seconds the breaker stays open here (EXAMPLE_BREAKER_RECOVERY_TIMEOUT): the call
#: that must be refused follows the opening call after a screenshot and two clicks,
#: which on a busy machine can take most of a second.
BREAKER_RECOVERY = 3


def in_ci() -> bool:
    """True under CI, where a missing browser is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One Chromium with a fresh profile for the module; each test opens its own page."""
    if problem := browser_problem():
        if in_ci():
            pytest.fail(f"Chromium is required under CI=true, but {problem}.", pytrace=False)
        pytest.skip(f"NO BROWSER AVAILABLE: {problem}; the dashboard was not tested")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser_context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        browser_context.set_default_timeout(WAIT_MS)
        yield browser_context
        browser_context.close()


@pytest.fixture(scope="module")
def server(
    migrated_db: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExampleServer]:
    """The example project with a 3-second breaker recovery and a 2-second cache life."""
    running = start_server(
        migrated_db,
        tmp_path_factory.mktemp("browser"),
        EXAMPLE_BREAKER_RECOVERY_TIMEOUT=str(BREAKER_RECOVERY),
        EXAMPLE_CACHE_TIMEOUT=str(CACHE_TIMEOUT),
    )
    yield running
    running.stop()


@pytest.fixture
def page(context: BrowserContext, server: ExampleServer) -> Iterator[Page]:
    """A page on the dashboard; fails the test if a script on it raised."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url("/"))
    yield page
    page.close()
    assert errors == [], errors


def shot(page: Page, name: str, selector: str | None = None) -> None:
    """Save a screenshot of the page (or of one element) as ``<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if selector is None:
        page.screenshot(path=path, full_page=True)
    else:
        page.locator(selector).screenshot(path=path)
    assert path.stat().st_size > 0


def first_text(page: Page, selector: str) -> str:
    """The text of the first element matching ``selector``."""
    return page.locator(selector).first.inner_text()


def wait_for_count(page: Page, selector: str, count: int) -> None:
    """Wait until ``selector`` matches at least ``count`` elements."""
    page.wait_for_function(
        "([s, n]) => document.querySelectorAll(s).length >= n", arg=[selector, count]
    )


# -- fan-out and timeouts ----------------------------------------------------------------


def test_fanout_shows_slot_timings_and_the_timed_out_slot(page: Page) -> None:
    """A 3 s call past the 2 s deadline is a TimeoutError in its slot; the others answer."""
    page.click("#fanout-straggler")
    page.wait_for_selector("#slot-orders td.failed")
    assert first_text(page, "#slot-orders td.failed") == "TimeoutError"
    assert first_text(page, "#slot-profile td.ok") == "data from profile"
    slot_ms = {
        name: int(first_text(page, f"#slot-{name} td:nth-child(3)").removesuffix(" ms"))
        for name in ("profile", "orders", "recommendations")
    }
    assert 1900 <= slot_ms["orders"] < 3000  # cancelled at the 2 s deadline, not after 3 s
    assert slot_ms["profile"] < slot_ms["orders"]
    elapsed = int(first_text(page, "#fanout-elapsed").removesuffix(" ms"))
    assert 1900 <= elapsed < 3000

    page.click("#slow-late")
    page.wait_for_selector('#slow-result[data-status="504"]')
    assert "504 Gateway Timeout" in first_text(page, "#slow-result")
    page.click("#slow-ok")
    page.wait_for_selector('#slow-result[data-status="200"]')
    shot(page, "fanout", "#panel-fanout")


# -- the items API ------------------------------------------------------------------------


def api_log_wait(page: Page, count: int) -> str:
    """Wait for the API panel's log to have ``count`` lines; return the newest."""
    wait_for_count(page, "#api-log li", count)
    return first_text(page, "#api-log li")


def test_api_writes_need_credentials(page: Page) -> None:
    """Anonymous: 401 with the Bearer challenge; with the token: create, patch, delete."""
    page.wait_for_selector('#api-items tbody tr[data-name="Espresso cup"]')
    page.fill("#api-name", "Browser grinder")
    page.click("#api-create-button")
    line = api_log_wait(page, 1)
    assert "as anonymous" in line
    assert "401 Unauthorized" in line
    assert 'WWW-Authenticate: Bearer realm="items"' in line
    assert page.locator('#api-items tr[data-name="Browser grinder"]').count() == 0

    page.check("input[name=api-as][value=token]")
    page.click("#api-create-button")
    assert "201 Created" in api_log_wait(page, 2)
    row = '#api-items tr[data-name="Browser grinder"]'
    page.wait_for_selector(row)
    assert first_text(page, f"{row} td:nth-child(3)") == "1"

    page.click(f"{row} >> text=+1")
    assert "PATCH" in api_log_wait(page, 3)
    assert "200 OK" in first_text(page, "#api-log li")
    page.wait_for_function(
        "s => document.querySelector(s)?.children[2].textContent === '2'", arg=row
    )
    shot(page, "api", "#panel-api")

    page.click(f"{row} >> text=Delete")
    assert "204 No Content" in api_log_wait(page, 4)
    page.wait_for_selector(row, state="detached")


# -- cache --------------------------------------------------------------------------------


def cache_rows(page: Page, clicking: str, requests: int) -> list[tuple[str, str, str]]:
    """Click ``clicking``; wait until the panel has made ``requests`` requests in all;
    return the new rows' X-Cache, time and computed_at, newest first."""
    before = page.locator("#cache-log tbody tr[data-xcache]").count()
    page.click(clicking)
    page.wait_for_function(
        "n => Number(document.querySelector('#cache-log tbody').dataset.requests) >= n",
        arg=requests,
    )
    rows = page.locator("#cache-log tbody tr[data-xcache]")
    found = []
    for index in range(rows.count() - before):
        cells = rows.nth(index).locator("td")
        xcache = rows.nth(index).get_attribute("data-xcache") or ""
        found.append((xcache, cells.nth(2).inner_text(), cells.nth(4).inner_text()))
    return found


def ms(took: str) -> int:
    return int(took.removesuffix(" ms"))


def test_cache_miss_hit_stale_and_invalidation(page: Page) -> None:
    """MISS (a second), HIT (at once, same body); expired, three at once: one refreshes
    (MISS) while two are answered STALE at once; then a HIT of the new body; MISS after
    invalidating."""
    [(xcache, took, computed)] = cache_rows(page, "#cache-fetch", 1)
    assert xcache == "MISS"
    assert ms(took) >= 1000
    stored = time.monotonic()
    [(xcache, took, same)] = cache_rows(page, "#cache-fetch", 2)
    assert xcache == "HIT"
    assert ms(took) < 1000
    assert same == computed

    # Only the server's clock expires the entry: wait out its life on the page.
    page.wait_for_timeout((CACHE_TIMEOUT + 0.3 - (time.monotonic() - stored)) * 1000)
    three = cache_rows(page, "#cache-burst", 5)
    assert sorted(row[0] for row in three) == ["MISS", "STALE", "STALE"], three
    for xcache, took, body in three:
        if xcache == "STALE":  # the expired answer, at once
            assert body == computed
            assert ms(took) < 1000
        else:  # the one request that refreshed it
            assert body != computed
            assert ms(took) >= 1000
    [(xcache, _, refreshed)] = cache_rows(page, "#cache-fetch", 6)
    assert xcache == "HIT"
    assert refreshed not in (computed, "")
    shot(page, "cache", "#panel-cache")

    page.click("#cache-invalidate")
    page.wait_for_selector('#cache-log tr[data-xcache="invalidated"]')
    assert "200 OK" in first_text(page, "#cache-log tbody tr")
    [(xcache, took, _)] = cache_rows(page, "#cache-fetch", 7)
    assert xcache == "MISS"
    assert ms(took) >= 1000


# -- rate limits --------------------------------------------------------------------------


def test_each_algorithm_drains_to_429_and_refills(page: Page) -> None:
    """A burst of six: five admitted with r counting down, a 429, then admitted again."""
    algorithms = ["sliding_window", "fixed_window", "token_bucket"]
    # The fixed windows turn every 10 s of the clock: a burst across a turn would be
    # admitted whole, so with under 2 s left in this window, start in the next one.
    if (left := 10 - time.time() % 10) < 2:
        page.wait_for_timeout((left + 0.1) * 1000)
    for algorithm in algorithms:
        page.click(f"#rl-{algorithm} [data-action=burst]")
    for algorithm in algorithms:
        box = f"#rl-{algorithm}"
        page.wait_for_function(
            "s => (document.querySelector(s).dataset.history || '').split(' ').length >= 6",
            arg=box,
        )
        history = page.get_attribute(box, "data-history")
        assert history == "200 200 200 200 200 429", (algorithm, history)
        headers = first_text(page, f"{box}-headers")
        assert re.search(r'RateLimit: "5/10s";r=0;t=\d+', headers), headers
        assert 'RateLimit-Policy: "5/10s";q=5;w=10' in headers
        assert re.search(r"Retry-After: \d+", headers), headers
        assert page.locator(f"{box} .meter i.used").count() == 5
    shot(page, "ratelimit-drained", "#panel-ratelimit")
    # The panel calls again after Retry-After: the refilled budget admits it.
    for algorithm in algorithms:
        page.wait_for_function(
            "s => document.querySelector(s).dataset.lastStatus === '200'", arg=f"#rl-{algorithm}"
        )
        history = page.get_attribute(f"#rl-{algorithm}", "data-history") or ""
        assert history.startswith("200 200 200 200 200 429 "), (algorithm, history)
    shot(page, "ratelimit-refilled", "#panel-ratelimit")


# -- circuit breaker ---------------------------------------------------------------------


def test_breaker_opens_goes_half_open_and_closes(page: Page) -> None:
    """Three failed calls open it; a call is refused at once; after 3 s a probe closes it."""
    state = "#breaker-state"
    page.wait_for_selector(f'{state}[data-state="closed"]')
    page.check("#flaky-failing")
    for n in range(1, 4):
        page.click("#flaky-call")
        wait_for_count(page, "#flaky-log li", n)
        assert "502 Bad Gateway" in first_text(page, "#flaky-log li")
    page.wait_for_selector(f'{state}[data-state="open"]')
    shot(page, "breaker-open", "#panel-breaker")

    page.check("#flaky-healthy")
    page.click("#flaky-call")
    wait_for_count(page, "#flaky-log li", 4)
    refused = first_text(page, "#flaky-log li")
    assert "503 Service Unavailable" in refused
    assert "circuit_open" in refused

    page.wait_for_selector(f'{state}[data-state="half_open"]')
    page.click("#flaky-call")
    wait_for_count(page, "#flaky-log li", 5)
    assert "200 OK" in first_text(page, "#flaky-log li")
    page.wait_for_selector(f'{state}[data-state="closed"]')
    assert page.get_attribute(state, "data-history") == "closed open half_open closed"
    shot(page, "breaker-closed", "#panel-breaker")


# -- sign-in and the generic views -------------------------------------------------------


def test_sign_in_then_the_generic_views(page: Page, server: ExampleServer) -> None:
    """New item sends an anonymous visitor to sign in; the demo user creates and deletes."""
    credentials = first_text(page, "#generic-user")
    assert "demo" in credentials
    assert "async-cbv-demo" in credentials
    shot(page, "dashboard")

    page.click("#generic-new")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/items/new/$"))
    shot(page, "login")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "async-cbv-demo")
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/items/new/$"))
    assert "Signed in as demo" in first_text(page, "#nav-user")

    page.fill("#id_name", "Browser scale")
    page.fill("#id_price", "42.00")
    page.fill("#id_quantity", "4")
    page.click("#item-form button[type=submit]")
    page.wait_for_url(re.compile(r"/items/\d+/$"))
    assert first_text(page, "h1") == "Browser scale"
    assert first_text(page, "#item-facts") == "Price: 42.00 · In stock: 4"
    shot(page, "item-detail")

    page.click("text=Delete")
    page.wait_for_url(re.compile(r"/items/\d+/delete/$"))
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/items/$"))
    assert "Browser scale" not in first_text(page, "#item-list")

    # Signed in, the dashboard's API panel may write with the session (and its CSRF token).
    page.goto(server.url("/"))
    page.check("input[name=api-as][value=session-no-csrf]")
    page.fill("#api-name", "Session grinder")
    page.click("#api-create-button")
    line = api_log_wait(page, 1)
    assert "as session-no-csrf" in line
    assert "403 Forbidden" in line
    page.check("input[name=api-as][value=session]")
    page.click("#api-create-button")
    line = api_log_wait(page, 2)
    assert "as session" in line
    assert "201 Created" in line
    shot(page, "api-session", "#panel-api")

    page.click("#nav-logout")
    page.wait_for_selector("#nav-login")


@pytest.mark.parametrize(
    "path",
    ["/", "/demo/fanout/", "/items/", "/api/docs/", "/source/", "/source/demo/limits.py"],
)
def test_every_page_is_styled_with_the_nav(page: Page, server: ExampleServer, path: str) -> None:
    """The site's pages share the nav bar and its stylesheet, Swagger UI's page too."""
    page.goto(server.url(path))
    if path == "/api/docs/":
        page.wait_for_selector(".swagger-ui .info")  # Swagger UI rendered the document
    nav = page.locator("#nav")
    assert nav.locator("a", has_text="Dashboard").count() == 1
    background = nav.evaluate("node => getComputedStyle(node).backgroundColor")
    assert background == "rgb(22, 32, 46)"  # nav.css was served and applied
    name = path.strip("/").replace("/", "-").replace(".", "-") or "index"
    shot(page, f"page-{name}")
