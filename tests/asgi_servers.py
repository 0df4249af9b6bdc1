"""ASGI server child processes for the end-to-end tests, under several servers.

``AsgiServer(app, env, kind=...)`` runs ``python -m <server> <app>`` on 127.0.0.1 on a
port the OS picks and reads the port from the server's "running on" log line, which is
also the readiness signal. The servers of the matrix (``SERVERS``):

- ``uvicorn-httptools``: uvicorn with its httptools HTTP protocol (``--http httptools``,
  what ``uvicorn[standard]`` picks by default);
- ``uvicorn-h11``: uvicorn with the pure-Python h11 protocol;
- ``hypercorn``: Hypercorn (h11 for HTTP/1.1, asyncio), in the test's process tree as
  one process (``--workers 0``), so its pid is the pid that answers.

None of them rewrites the client address from ``X-Forwarded-For``: uvicorn runs with
``--no-proxy-headers`` (it would otherwise trust 127.0.0.1, where the tests connect
from), and Hypercorn only does so through a middleware the tests do not install. Only
the library's ``NUM_PROXIES`` may read that header.

The server's output (stdout and stderr) goes to an unnamed temporary file, not a pipe:
whatever the server wrote before the client saw its answer is in the file when the test
reads it, so a check made after a request sees everything that request logged.
``check_logs()`` fails with ``AsgiErrorLogged`` when a server has logged an ASGI error
(uvicorn's "Exception in ASGI application", Hypercorn's "Error in ASGI Framework", a
traceback, ...) since the previous check; tests/conftest.py runs it after every test and
after its teardown (where module-scoped servers shut down), so a server that logs an
ASGI error fails the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
#: How long wait_ready() waits on the process between two reads of its log.
POLL_INTERVAL = 0.02
#: Logged by any server whose application raised, whatever the server.
TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class ServerKind:
    """One ASGI server configuration of the matrix."""

    name: str
    #: ``python -m <module>``.
    module: str
    #: Arguments after the application; ``{lifespan}`` is replaced by "on" or "off".
    #: (Hypercorn always starts the lifespan protocol; Django's own application refuses
    #: it, and Hypercorn logs a warning and serves on: not an error.)
    args: tuple[str, ...]
    #: The log line announcing the listening socket; group 1 is the base URL.
    ready: re.Pattern[str]
    #: Log text that means the server saw the application break the ASGI contract.
    asgi_errors: tuple[str, ...]
    #: Logged once the application completed the lifespan shutdown, if the server logs it.
    shutdown_complete: str | None

    def __str__(self) -> str:
        return self.name

    def command(self, app: str, *, lifespan: bool) -> list[str]:
        mode = "on" if lifespan else "off"
        args = [arg.replace("{lifespan}", mode) for arg in self.args]
        return [sys.executable, "-m", self.module, app, *args]


def _uvicorn(http: str) -> ServerKind:
    return ServerKind(
        name=f"uvicorn-{http}",
        module="uvicorn",
        args=(
            *("--host", "127.0.0.1", "--port", "0", "--http", http),
            *("--no-proxy-headers", "--no-access-log", "--lifespan", "{lifespan}"),
        ),
        ready=re.compile(r"Uvicorn running on (http://\S+)"),
        asgi_errors=(
            "Exception in ASGI application",
            "ASGI callable returned without",
            "ASGI callable should return None",
            "Exception in 'lifespan' protocol",
            "Invalid HTTP request received",
        ),
        shutdown_complete="Application shutdown complete",
    )


UVICORN_HTTPTOOLS = _uvicorn("httptools")
UVICORN_H11 = _uvicorn("h11")
HYPERCORN = ServerKind(
    name="hypercorn",
    module="hypercorn",
    args=("--bind", "127.0.0.1:0", "--workers", "0"),
    ready=re.compile(r"Running on (http://\S+)"),
    asgi_errors=(
        "Error in ASGI Framework",
        "ASGI Framework Lifespan error, shutdown",
        "ASGI Framework Lifespan errored",
    ),
    shutdown_complete=None,
)
#: Every server of the matrix; the first is the one of the single-server tests.
SERVERS = (UVICORN_HTTPTOOLS, UVICORN_H11, HYPERCORN)
DEFAULT = UVICORN_HTTPTOOLS


class AsgiErrorLogged(AssertionError):
    """A server under test logged an ASGI error or a traceback."""


#: Every server started in this session, for check_logs().
_started: list[AsgiServer] = []


class AsgiServer:
    """An ASGI server child process serving ``app`` on 127.0.0.1, port 0.

    ``app_dir`` goes first on the child's ``PYTHONPATH`` (uvicorn's ``--app-dir``);
    ``lifespan`` says whether the application answers the lifespan protocol.
    """

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        *,
        kind: ServerKind = DEFAULT,
        lifespan: bool = False,
        app_dir: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.kind = kind
        child_env = dict(env)
        if app_dir is not None:
            paths = [str(app_dir), *filter(None, [child_env.get("PYTHONPATH")])]
            child_env["PYTHONPATH"] = os.pathsep.join(paths)
        # Open for the server's whole life: closed by stop().
        self._output = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            kind.command(app, lifespan=lifespan),
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        self.base_url: str | None = None
        #: How much of the log check_logs() has already read.
        self.checked = 0
        self._final_log = ""
        _started.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        """Everything the server has written so far (read without moving its offset)."""
        if self._output.closed:
            return self._final_log
        size = os.fstat(self._output.fileno()).st_size
        return os.pread(self._output.fileno(), size, 0).decode(errors="replace")

    def wait_ready(self) -> str:
        """Block until the server logs that it is listening; return its base URL."""
        deadline = time.monotonic() + START_TIMEOUT
        while (match := self.kind.ready.search(self.log)) is None:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited before listening:\n{self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start in {START_TIMEOUT:g}s:\n{self.log}")
            # A bounded wait that ends early if the process exits.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=POLL_INTERVAL)
        self.base_url = match.group(1)
        return self.base_url

    def asgi_errors(self, since: int = 0) -> list[str]:
        """The lines of the log from offset ``since`` that report an ASGI error."""
        markers = (*self.kind.asgi_errors, TRACEBACK)
        return [line for line in self.log[since:].splitlines() if any(m in line for m in markers)]

    def kill(self) -> None:
        """SIGKILL: the process dies at once, holding whatever it held."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> str:
        """SIGTERM (a graceful shutdown), then SIGKILL if it does not exit in time.

        Returns the whole log, which stays readable.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._output.closed:
            self._final_log = self.log
            self._output.close()
        return self._final_log


def check_logs() -> None:
    """Fail if a server has logged an ASGI error since the last check (which this is)."""
    found = []
    for server in _started:
        log = server.log
        errors = server.asgi_errors(server.checked)
        server.checked = len(log)
        if errors:
            found.append((server, errors, log))
    _started[:] = [server for server in _started if server.process.poll() is None]
    if found:
        report = "\n\n".join(
            f"{server.kind} (pid {server.pid}) logged:\n  "
            + "\n  ".join(errors)
            + f"\n--- its log ---\n{log[-4000:]}"
            for server, errors, log in found
        )
        raise AsgiErrorLogged(f"an ASGI server logged an error:\n{report}")
