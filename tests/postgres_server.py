"""A throw-away PostgreSQL cluster for the tests: initdb into a temp dir, pg_ctl start/stop.

Debian's ``postgresql`` package puts the server binaries in
``/usr/lib/postgresql/<version>/bin``. PostgreSQL refuses to run as root, so as
root the cluster belongs to the package's ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

USER = "postgres"


def find_bin_dir() -> Path | None:
    """The newest installed server's bin directory, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts)
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def require_bin_dir() -> Path:
    """The server's bin directory; without one the test skips, or fails under CI=true."""
    import pytest

    bin_dir = find_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return bin_dir


def alias_settings(server: PostgresServer, defaults: dict[str, Any]) -> dict[str, Any]:
    """A DATABASES entry for ``server``'s ``postgres`` database, over ``defaults``."""
    return {
        **defaults,
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "HOST": server.host,
        "PORT": str(server.port),
        "USER": server.user,
        "PASSWORD": "",
        "OPTIONS": {},
        "TEST": {},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` on 127.0.0.1 and a free port; ``stop()`` removes it all."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="acbv-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.user = USER
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        """Create the cluster and start it; raise RuntimeError with its output on failure."""
        if self._as_root:
            shutil.chown(self.root, USER)
        steps = [
            ("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8"),
            (
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", f"-h {self.host} -p {self.port} -k {self.root} -F", "start",
            ),
        ]  # fmt: skip
        for step in steps:
            result = self._run(*step)
            if result.returncode != 0:
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"{step[0]} failed:\n{result.stdout}{result.stderr}{log}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_aliases(
    django_db_blocker: Any, aliases: Sequence[str], models: Sequence[type[Any]]
) -> Iterator[None]:
    """Start a throw-away server and point the database ``aliases`` at it, with the tables
    of ``models`` created (through the first alias); all undone on exit. Skips the test
    (fails it under CI) where no server can be had, as :func:`require_bin_dir` does."""
    from django.db import connections

    server = PostgresServer(require_bin_dir())
    server.start()
    unblocked = django_db_blocker.unblock()
    unblocked.__enter__()
    settings = alias_settings(server, connections.settings["default"])
    for alias in aliases:
        connections.settings[alias] = dict(settings)
    try:
        with connections[aliases[0]].schema_editor() as editor:
            for model in models:
                editor.create_model(model)
        yield
    finally:
        for alias in aliases:
            connections[alias].close()
            del connections[alias]
            del connections.settings[alias]
        unblocked.__exit__(None, None, None)
        server.stop()
