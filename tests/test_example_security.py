"""The example project at its edges: paths that climb out, files that are not its own,
a cache that does not answer, and server errors with DEBUG off.

Like tests/test_example_e2e.py, each test runs the example under a real ASGI server
process and calls it over HTTP; a server that logs a traceback fails the test.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.asgi_servers import SERVERS, AsgiServer, ServerKind
from tests.test_example_e2e import (
    CSRF_HEADERS,
    EXAMPLE_DIR,
    PROBLEM_JSON,
    ExampleServer,
    Response,
    example_env,
    fetch,
    migrated_db,  # noqa: F401  (a fixture)
    start_server,
)

pytestmark = pytest.mark.e2e


def fetch_raw_path(server: ExampleServer, path: str) -> Response:
    """GET ``path`` exactly as written: no client normalises its dots or escapes."""
    url = urllib.parse.urlsplit(server.url("/"))
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=15)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(
    migrated_db: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    server_kind: ServerKind,
) -> Iterator[ExampleServer]:
    """The example project with its default settings."""
    running = start_server(migrated_db, tmp_path_factory.mktemp("security"), server_kind)
    yield running
    running.stop()


# -- static files -------------------------------------------------------------------------


@pytest.mark.servers(*SERVERS)
@pytest.mark.parametrize(
    "path",
    [
        "/static/../example/settings.py",
        "/static/%2e%2e/example/settings.py",
        "/static/admin/../../example/settings.py",
        "/static/..%2fexample%2fsettings.py",
    ],
)
def test_static_paths_out_of_the_static_folders_are_refused(
    server: ExampleServer, path: str
) -> None:
    """A path climbing out of STATIC_URL's folders is a 400, not a server error."""
    response = fetch_raw_path(server, path)
    assert response.status == 400, (path, response.status)
    assert b"SECRET_KEY" not in response.body
    assert fetch_raw_path(server, "/static/site.css").status == 200


# -- source pages -------------------------------------------------------------------------


def test_source_pages_leave_out_links_and_hidden_files(
    migrated_db: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Linked files and folders (which may point anywhere) and hidden ones are not shown;
    a file that is not UTF-8 is shown with replacement characters."""
    project = tmp_path / "example_project"
    shutil.copytree(
        EXAMPLE_DIR, project, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*")
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("TOKEN = 'outside-the-project'\n")
    (project / "leak.py").symlink_to(outside / "secret.py")
    (project / "linked").symlink_to(outside, target_is_directory=True)
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "site.py").write_text("HIDDEN = 'folder'\n")
    (project / ".notes.md").write_text("hidden file\n")
    (project / "latin1.md").write_bytes(b"caf\xe9\n")

    db_path = tmp_path / "example.sqlite3"
    shutil.copyfile(migrated_db, db_path)
    # The copy is served, not the repository's example_project.
    running = AsgiServer(
        "example.asgi:application", example_env(db_path), lifespan=True, app_dir=project
    )
    try:
        running.wait_ready()
        base = running.base_url
        assert base is not None
        listing = fetch(base + "/source/").body.decode()
        pages = {
            path: fetch(base + "/source/" + path)
            for path in ("leak.py", "linked/secret.py", ".venv/lib/site.py", ".notes.md")
        }
        shown = fetch(base + "/source/example/settings.py")
        latin1 = fetch(base + "/source/latin1.md")
    finally:
        running.stop()

    assert 'href="/source/example/settings.py"' in listing
    assert shown.status == 200
    for path, page in pages.items():
        assert f'href="/source/{path}"' not in listing, path
        assert page.status == 404, path
        assert b"outside-the-project" not in page.body
    assert latin1.status == 200
    assert "caf\N{REPLACEMENT CHARACTER}" in latin1.body.decode()


# -- the cache demo with Redis down -------------------------------------------------------


def closed_port() -> int:
    """A local port nothing listens on: a Redis that does not answer."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_cache_invalidation_without_redis_is_a_503_problem(
    migrated_db: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """When the cache does not answer, invalidating says so (503), and the page still works."""
    server = start_server(migrated_db, tmp_path, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    try:
        refused = fetch(server.url("/demo/cached/invalidate/"), method="POST", headers=CSRF_HEADERS)
        page = fetch(server.url("/demo/cached/"))
    finally:
        log = server.stop()

    assert refused.status == 503, log
    assert refused.headers.get_content_type() == PROBLEM_JSON
    assert "nothing was invalidated" in refused.json()["detail"]
    assert page.status == 200, log  # served uncached
    assert "CachedView was not invalidated" in log


# -- logging ------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", ["0", "1"])
def test_server_errors_are_logged_once_debug_on_or_off(tmp_path: Path, debug: str) -> None:
    """django.request's errors (a view's 500, with its traceback) reach the console once."""
    probe = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').error('Internal Server Error: /probe/')"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=EXAMPLE_DIR,
        env=example_env(tmp_path / "unused.sqlite3", DJANGO_DEBUG=debug),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Internal Server Error: /probe/") == 1, result.stderr
