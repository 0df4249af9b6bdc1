"""Writes through real uvicorn servers, on SQLite and PostgreSQL.

Several PATCHes carry the same ``If-Match`` at once: exactly one wins, every other
gets 412, and none fails with a 500 or a lock error. Writes that read first do not
fail with "database is locked"; what a database stores differently from what was
sent (``jsonb``) or cannot store (a null character) is answered as it should be.
SQLite runs with Django's default settings (no ``transaction_mode``). PostgreSQL
runs when Debian's ``postgresql`` package is installed; without it the test is
skipped loudly, and under ``CI=true`` it fails instead (CI installs the package).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.asgi_servers import AsgiServer
from tests.postgres_server import PostgresServer, require_bin_dir

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "tests.write_server.settings"
WRITERS = 8


def server_env(db: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        PYTHONUNBUFFERED="1",
        **db,
    )
    return env


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = require_bin_dir()
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """A migrated database and two uvicorn processes serving the write test server.

    Two processes, so that writers meet in the database's own locks, not only in
    one process's queue.
    """
    if request.param == "sqlite":
        db = {"WRITE_SERVER_ENGINE": "sqlite", "WRITE_SERVER_NAME": str(tmp_path / "db.sqlite3")}
    else:
        pg: PostgresServer = request.getfixturevalue("postgres")
        db = {
            "WRITE_SERVER_ENGINE": "postgresql",
            "WRITE_SERVER_NAME": "postgres",
            "WRITE_SERVER_HOST": pg.host,
            "WRITE_SERVER_PORT": str(pg.port),
            "WRITE_SERVER_USER": pg.user,
        }
    env = server_env(db)
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--run-syncdb", "--no-input", "-v0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    servers = [AsgiServer("tests.write_server.asgi:application", env, cwd=ROOT) for _ in range(2)]
    try:
        yield [server.wait_ready() for server in servers]
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.log, server.log
        assert "locked" not in server.log, server.log


async def send(
    session: aiohttp.ClientSession, method: str, url: str, data: Any = None, **headers: str
) -> tuple[int, Any, Any]:
    async with session.request(method, url, json=data, headers=headers) as response:
        raw = await response.read()
        if response.content_type.endswith("json"):
            return response.status, response.headers.copy(), json.loads(raw)
        return response.status, response.headers.copy(), raw.decode() or None


async def test_concurrent_patches_with_one_etag_one_wins(served: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        status, headers, note = await send(session, "POST", f"{served[0]}/notes/", {"title": "t"})
        assert status == 201
        urls = [f"{base}/notes/{note['id']}/" for base in served]
        url = urls[0]
        etag = headers["ETag"]
        for attempt in range(3):  # a fresh ETag each time: every round is a new race
            answers = await asyncio.gather(
                *(
                    send(
                        session,
                        "PATCH",
                        urls[i % len(urls)],  # half to each process
                        {"body": f"round {attempt} writer {i}"},
                        **{"If-Match": etag},
                    )
                    for i in range(WRITERS)
                )
            )
            statuses = sorted(status for status, _, _ in answers)
            assert statuses == [200] + [412] * (WRITERS - 1), (attempt, answers)
            [(_, won_headers, winner)] = [a for a in answers if a[0] == 200]
            assert all(
                h["Content-Type"] == "application/problem+json" for s, h, _ in answers if s == 412
            )
            status, headers, stored = await send(session, "GET", url)
            assert stored["body"] == winner["body"]
            assert headers["ETag"] == won_headers["ETag"] != etag
            etag = headers["ETag"]


async def test_require_if_match_refuses_an_unconditional_patch(served: list[str]) -> None:
    base = served[0]
    async with aiohttp.ClientSession() as session:
        status, _, note = await send(session, "POST", f"{base}/notes/", {"title": "u"})
        assert status == 201
        status, headers, _ = await send(
            session, "PATCH", f"{base}/notes/{note['id']}/", {"body": "x"}
        )
        assert status == 428
        assert headers["Content-Type"] == "application/problem+json"


async def test_the_etag_of_a_write_is_the_etag_of_the_stored_row(served: list[str]) -> None:
    """PostgreSQL's jsonb stores object keys in its own order: the ETag a create or
    update answers with must still be the one the next conditional write is compared to."""
    base = served[0]
    async with aiohttp.ClientSession() as session:
        data = {"title": "j", "data": {"zz": 1, "a": {"yy": 2, "b": 3}}}
        status, created_headers, created = await send(session, "POST", f"{base}/notes/", data)
        assert status == 201
        url = f"{base}/notes/{created['id']}/"
        status, headers, stored = await send(session, "GET", url)
        assert (stored, headers["ETag"]) == (created, created_headers["ETag"])
        etag = created_headers["ETag"]
        for round_ in range(2):
            change = {"data": {"zz": round_, "a": 1}}
            status, headers, updated = await send(
                session, "PATCH", url, change, **{"If-Match": etag}
            )
            assert status == 200, updated
            etag = headers["ETag"]
            status, headers, stored = await send(session, "GET", url)
            assert (stored, headers["ETag"]) == (updated, etag)


async def test_writes_that_read_first_do_not_fail_with_database_locked(served: list[str]) -> None:
    """Deleting a folder reads the rows filed in it before it writes. On SQLite, a
    transaction that has read cannot take the write lock while another process holds
    it to commit: SQLite answers "database is locked" at once, without waiting. Every
    write takes the write lock first, so none fails with a 500."""
    async with aiohttp.ClientSession() as session:
        for _ in range(4):  # each round a new race; at most 40 requests (connections) at once
            created = await asyncio.gather(
                *(send(session, "POST", f"{served[0]}/folders/", {"name": "f"}) for _ in range(20))
            )
            assert {status for status, _, _ in created} == {201}
            answers = await asyncio.gather(
                *(
                    request
                    for i, (_, _, folder) in enumerate(created)
                    for request in (
                        send(session, "DELETE", f"{served[i % 2]}/folders/{folder['id']}/"),
                        send(session, "POST", f"{served[1 - i % 2]}/folders/", {"name": "new"}),
                    )
                )
            )
            assert sorted({status for status, _, _ in answers}) == [201, 204], answers


async def post_form(session: aiohttp.ClientSession, url: str, **fields: str) -> tuple[int, str]:
    """POST an HTML form; return the status (a redirect is not followed) and the body."""
    async with session.post(url, data=fields, allow_redirects=False) as response:
        return response.status, await response.text()


async def test_form_views_and_callbacks_never_fail_with_database_locked(served: list[str]) -> None:
    """The generic create, update and delete views validate (reading the database)
    before they write. Without the write lock taken first, nearly every one of 40
    concurrent creates on SQLite failed with a 500 ("database is locked"). Now each
    redirects, and of creates racing for one unique title one wins and the others
    get the form's error. Transactions that on_commit callbacks open take the lock
    first too."""
    async with aiohttp.ClientSession() as session:
        created = await asyncio.gather(
            *(
                post_form(session, f"{served[i % 2]}/forms/notes/", title=f"form-{i}", body="b")
                for i in range(40)
            )
        )
        assert [status for status, _ in created] == [302] * 40, created
        _, _, page = await send(session, "GET", f"{served[0]}/notes/?page_size=100")
        notes = [note for note in page["results"] if note["title"].startswith("form-")]
        assert len(notes) == 40
        updated = await asyncio.gather(
            *(
                post_form(
                    session,
                    f"{served[i % 2]}/forms/notes/{note['id']}/",
                    title=note["title"],
                    body=f"changed {i}",
                )
                for i, note in enumerate(notes)
            )
        )
        assert [status for status, _ in updated] == [302] * 40, updated
        duplicates = await asyncio.gather(
            *(
                post_form(session, f"{served[i % 2]}/forms/notes/", title="contested")
                for i in range(WRITERS)
            )
        )
        assert sorted(status for status, _ in duplicates) == [200] * (WRITERS - 1) + [302]
        assert all("title:" in text for status, text in duplicates if status == 200)
        folders = await asyncio.gather(
            *(send(session, "POST", f"{served[0]}/folders/", {"name": "f"}) for _ in range(20))
        )
        deleted = await asyncio.gather(
            *(
                post_form(session, f"{served[i % 2]}/forms/folders/{folder['id']}/delete/")
                for i, (_, _, folder) in enumerate(folders)
            )
        )
        assert [status for status, _ in deleted] == [302] * 20, deleted
        # A composite primary key, and a plain form whose form_valid() reads then writes.
        seats = await asyncio.gather(
            *(
                post_form(session, f"{served[i % 2]}/forms/seats/", row="A", number=str(i))
                for i in range(20)
            )
        )
        assert [status for status, _ in seats] == [302] * 20, seats
        plain = await asyncio.gather(
            *(post_form(session, f"{served[i % 2]}/forms/folders/", name="p") for i in range(20))
        )
        assert [status for status, _ in plain] == [302] * 20, plain
        # on_commit callbacks whose transactions read, then write, while the process's
        # next write has already been let in: both take the write lock first, so every
        # create succeeds and no count is lost.
        assert (await send(session, "POST", f"{served[0]}/tally/", {}))[0] == 201
        answers = await asyncio.gather(
            *(send(session, "POST", f"{served[i % 2]}/tallied/", {"name": "t"}) for i in range(40))
        )
        assert [status for status, _, _ in answers] == [201] * 40, answers
        _, _, tally = await send(session, "GET", f"{served[0]}/tally/")
        assert [row["count"] for row in tally["results"]] == [40]
        _, _, remaining = await send(session, "GET", f"{served[1]}/folders/?page_size=100")
        left = {folder["id"] for folder in remaining["results"]}
        assert left.isdisjoint(folder["id"] for _, _, folder in folders)


async def test_a_null_character_in_a_json_value_is_400_not_500(served: list[str]) -> None:
    """PostgreSQL cannot store one (a DataError): it is refused like one in a text field."""
    async with aiohttp.ClientSession() as session:
        body = {"title": "nul", "data": {"k": ["a\x00"]}}
        status, _, problem = await send(session, "POST", f"{served[0]}/notes/", body)
        assert status == 400, problem
        assert problem["errors"] == {"data": ["Null characters are not allowed."]}


@pytest.fixture(params=["DEFERRED", "IMMEDIATE"])
def sqlite_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """One uvicorn process on a SQLite file whose busy timeout is short, its
    transactions begun in each mode (BEGIN IMMEDIATE takes the write lock itself)."""
    name = tmp_path / "db.sqlite3"
    db = {"WRITE_SERVER_ENGINE": "sqlite", "WRITE_SERVER_NAME": str(name)}
    env = server_env(
        {**db, "WRITE_SERVER_TIMEOUT": "0.2", "WRITE_SERVER_TRANSACTION_MODE": request.param}
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--run-syncdb", "--no-input", "-v0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    server = AsgiServer("tests.write_server.asgi:application", env, cwd=ROOT)
    try:
        yield server.wait_ready(), name
    finally:
        server.stop()


async def test_a_write_another_process_keeps_waiting_is_503_not_500(
    sqlite_server: tuple[str, Path],
) -> None:
    """The process's write queue does not span processes: a write that waits SQLite's
    busy timeout for the lock another process holds is answered as one that waited in
    the queue, 503 with Retry-After, and writes nothing."""
    base, name = sqlite_server
    other = sqlite3.connect(name, isolation_level=None)  # another process's writer
    try:
        other.execute("BEGIN IMMEDIATE")
        async with aiohttp.ClientSession() as session:
            status, headers, problem = await send(
                session, "POST", f"{base}/folders/", {"name": "f"}
            )
            assert status == 503, problem
            assert headers["Content-Type"] == "application/problem+json"
            assert headers["Retry-After"] == "1"
            assert problem["detail"] == "The database is busy with other writes. Try again later."
            # The generic form views too: 503, not a 500 with "database is locked".
            async with session.post(
                f"{base}/forms/notes/", data={"title": "busy"}, allow_redirects=False
            ) as response:
                assert response.status == 503, await response.text()
                assert response.headers["Retry-After"] == "1"
            other.execute("ROLLBACK")
            status, _, _ = await send(session, "POST", f"{base}/folders/", {"name": "g"})
            assert status == 201
            status, _, listed = await send(session, "GET", f"{base}/folders/")
            status, _, notes = await send(session, "GET", f"{base}/notes/")
    finally:
        other.close()
    assert [folder["name"] for folder in listed["results"]] == ["g"]
    assert notes["results"] == []


async def test_creates_naming_restricted_rows_in_either_order_never_deadlock(
    served: list[str], request: pytest.FixtureRequest
) -> None:
    """Each create locks the rows its restricted relations name (PostgreSQL) before it
    validates them; two creates naming the same two rows in the other order must not
    each hold one and wait for the other (PostgreSQL would break the deadlock after a
    second and log it)."""
    async with aiohttp.ClientSession() as session:
        tags = [
            (await send(session, "POST", f"{served[0]}/tags/", {"name": f"open-{i}"}))[2]["id"]
            for i in range(2)
        ]
        for _ in range(5):
            answers = await asyncio.gather(
                *(
                    send(
                        session,
                        "POST",
                        f"{served[i % 2]}/pairings/",
                        {"first": tags[i % 2], "second": tags[1 - i % 2]},
                    )
                    for i in range(WRITERS)
                )
            )
            assert {status for status, _, _ in answers} == {201}, answers
    if "postgres" in request.fixturenames:
        pg: PostgresServer = request.getfixturevalue("postgres")
        assert "deadlock" not in pg.log.read_text()


async def test_conditional_updates_of_rows_that_point_at_each_other_never_deadlock(
    served: list[str], request: pytest.FixtureRequest
) -> None:
    """A conditional update locks its row, then its new foreign key checks the row it
    points at. A book pointed at a shelf while that shelf is pointed at the book: each
    update holds its own row and checks the other's, which must not deadlock (a 500)."""
    async with aiohttp.ClientSession() as session:
        shelves = [
            (await send(session, "POST", f"{served[0]}/shelves/", {}))[2]["id"] for _ in range(2)
        ]
        books = [
            (await send(session, "POST", f"{served[0]}/books/", {}))[2]["id"] for _ in range(2)
        ]
        for round_ in range(8):
            changes = []
            for i in range(2):
                book, shelf = books[i], shelves[(i + round_) % 2]
                changes += [
                    (f"books/{book}/", {"shelf": shelf}),
                    (f"shelves/{shelf}/", {"featured": book}),
                ]
            etags = []
            for path, _ in changes:
                _, headers, _ = await send(session, "GET", f"{served[0]}/{path}")
                etags.append(headers["ETag"])
            answers = await asyncio.gather(
                *(
                    send(session, "PATCH", f"{served[i % 2]}/{path}", change, **{"If-Match": etag})
                    for i, ((path, change), etag) in enumerate(zip(changes, etags, strict=True))
                )
            )
            assert {status for status, _, _ in answers} == {200}, answers
    if "postgres" in request.fixturenames:
        pg: PostgresServer = request.getfixturevalue("postgres")
        assert "deadlock" not in pg.log.read_text()
