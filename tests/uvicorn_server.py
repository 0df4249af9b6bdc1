"""A uvicorn child process for the end-to-end tests: started on a free port, its log kept."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

READY_LINE = re.compile(r"Uvicorn running on (http://\S+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class UvicornServer:
    """``python -m uvicorn <app>`` on 127.0.0.1, port 0, with ``--no-proxy-headers``.

    uvicorn's own X-Forwarded-For handling (on by default, trusting 127.0.0.1, where
    the tests connect from) would replace the client address before Django sees it:
    only the library's ``NUM_PROXIES`` may read that header.
    """

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        *,
        args: Sequence[str] = ("--no-access-log", "--lifespan", "off"),
        cwd: Path | None = None,
    ) -> None:
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "0"]
        self.process = subprocess.Popen(
            [*command, "--no-proxy-headers", *args],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.base_url: str | None = None
        self._ready = threading.Event()
        assert self.process.stdout is not None
        # Drain the log for the server's whole life: a full pipe would block it.
        self._reader = threading.Thread(
            target=self._read, args=(self.process.stdout,), name="uvicorn-log", daemon=True
        )
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.lines.append(line)
                if self.base_url is None and (match := READY_LINE.search(line)):
                    self.base_url = match.group(1)
                    self._ready.set()
        self._ready.set()  # exited: wake up wait_ready() whatever happened

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> str:
        """Block until uvicorn logs that it is listening; return its base URL."""
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"uvicorn did not start in {START_TIMEOUT:g}s:\n{self.log}")
        if self.base_url is None:
            raise RuntimeError(f"uvicorn exited before listening:\n{self.log}")
        return self.base_url

    def kill(self) -> None:
        """SIGKILL: the process dies at once, holding whatever it held."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> str:
        """SIGTERM (a graceful shutdown), then SIGKILL if it does not exit in time.

        Returns the whole log.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=STOP_TIMEOUT)
        return self.log
