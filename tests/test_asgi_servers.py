"""The server harness itself: a server that logs an ASGI error fails the test.

The cache test server has two deliberately broken views (tests/cache_server/urls.py):
one streams a chunk and then raises, one answers a body longer than its
``Content-Length``. Under each server of the matrix, a request to either makes the
server log an ASGI error, and ``check_logs()`` (run after every test by
tests/conftest.py) raises ``AsgiErrorLogged`` naming it. The test reads the error
itself, so the check after it passes, and then shows that a clean answer passes it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import test_cache_processes
from tests.asgi_servers import SERVERS, AsgiErrorLogged, ServerKind, check_logs
from tests.test_cache_processes import SITE_HOST, Server, serving

pytestmark = [pytest.mark.e2e, pytest.mark.servers(*SERVERS)]

#: The cache test server's migrated database, a fixture of its own module.
migrated_db = test_cache_processes.migrated_db


@pytest.fixture(scope="module")
def server(redis_url: str, migrated_db: Path, server_kind: ServerKind) -> Iterator[Server]:
    """One process of each server of the matrix."""
    for [running] in serving(redis_url, migrated_db, 1, server_kind):
        yield running


def get_until_closed(url: str) -> bytes:
    """One GET with ``Connection: close``; everything the server sent until it closed.

    The servers log the application's error before they end the broken answer, so once
    this returns, the error is in the server's log.
    """
    parts = urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {SITE_HOST}\r\nConnection: close\r\n\r\n"
    received = []
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(request.encode())
        while chunk := connection.recv(65536):
            received.append(chunk)
    return b"".join(received)


@pytest.mark.parametrize("path", ["broken/stream", "broken/length"])
async def test_a_server_that_logs_an_asgi_error_fails_the_test(server: Server, path: str) -> None:
    check_logs()  # nothing so far
    answer = await asyncio.to_thread(get_until_closed, server.url(path))
    assert b"ten bytes!" not in answer  # neither broken answer went out whole
    with pytest.raises(AsgiErrorLogged) as logged:
        check_logs()
    # The server's own words: "Exception in ASGI application", "Error in ASGI Framework".
    message = str(logged.value)
    assert server.kind.asgi_errors[0] in message, message
    assert f"{server.kind} (pid {server.pid}) logged" in message

    # Read once: the next check passes, and a sound answer keeps it so.
    check_logs()
    sound = await asyncio.to_thread(get_until_closed, server.url("package"))
    assert sound.startswith(b"HTTP/1.1 200 "), sound
    check_logs()
