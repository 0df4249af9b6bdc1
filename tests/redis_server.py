"""Start a throwaway ``redis-server`` for the test suite (standard library only).

The server listens on a free loopback port, keeps its data in memory only, and
runs in the foreground as a child process. Readiness is read from its log on
stdout ("Ready to accept connections"), never guessed with sleeps; when the
port turns out to be taken (another process won the race for it) the next
port is tried.
"""

from __future__ import annotations

import collections
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO

__all__ = ["RedisServer", "RedisStartError", "free_port"]

READY_LINE = "Ready to accept connections"
PORT_TAKEN_HINTS = ("Address already in use", "Failed listening on port")


class RedisStartError(RuntimeError):
    """``redis-server`` could not be started; the message carries its last log lines."""


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _LogReader:
    """Drain a child's stdout in a thread: lines go to a queue and a short history.

    Draining for the server's whole life keeps a chatty server from blocking on
    a full pipe; the queue lets the starter wait for one line with a deadline.
    """

    stream: IO[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    history: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="redis-server-log", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.stream:
            for line in self.stream:
                self.history.append(line.rstrip())
                self.lines.put(line)
        self.lines.put(None)  # end of output: the process is exiting

    def tail(self) -> str:
        return "\n".join(self.history)


class RedisServer:
    """A ``redis-server`` child process on ``127.0.0.1``; use as a context manager.

    ``start()`` returns once the server accepts connections and ``stop()``
    terminates it and waits for it to exit. ``port_factory`` picks the port of
    each attempt (a fresh free port by default).
    """

    def __init__(
        self,
        executable: str | None = None,
        *,
        attempts: int = 5,
        startup_timeout: float = 15.0,
        port_factory: Callable[[], int] = free_port,
    ) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisStartError("redis-server is not on PATH")
        self.executable = found
        self.attempts = attempts
        self.startup_timeout = startup_timeout
        self.port_factory = port_factory
        self.port: int | None = None
        self.version: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._log: _LogReader | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0 of the running server."""
        if self.port is None:
            raise RuntimeError("The server is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def process(self) -> subprocess.Popen[str] | None:
        return self._process

    def start(self) -> RedisServer:
        """Start the server, retrying on another port when one is taken."""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="django-async-cbv-redis-")
        failures: list[str] = []
        try:
            for _ in range(self.attempts):
                port = self.port_factory()
                outcome = self._try_start(port)
                if outcome is None:
                    self.port = port
                    return self
                failures.append(outcome)
                if not any(hint in outcome for hint in PORT_TAKEN_HINTS):
                    break  # not a port clash: another port will not help
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise RedisStartError(
            f"{self.executable} did not start after {len(failures)} attempt(s); "
            f"last output:\n{failures[-1] if failures else '(none)'}"
        )

    def _try_start(self, port: int) -> str | None:
        """Start on ``port``; return None when ready, else the server's output."""
        assert self._tmpdir is not None
        options = {
            "port": str(port),
            "bind": "127.0.0.1",
            "save": "",  # no RDB snapshots
            "appendonly": "no",
            "daemonize": "no",  # stay a child we can wait for
            "dir": self._tmpdir.name,
            "loglevel": "notice",  # the level that logs the readiness line
            "enable-debug-command": "local",  # DEBUG SLEEP: a server that stops answering
        }
        argv = [self.executable]
        for name, value in options.items():
            argv += [f"--{name}", value]
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        log = _LogReader(process.stdout)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                line = log.lines.get(timeout=max(deadline - time.monotonic(), 0.0))
                if line is None:
                    break  # exited before becoming ready
                if "Redis version=" in line and self.version is None:
                    self.version = line.split("Redis version=", 1)[1].split(",", 1)[0]
                if READY_LINE in line:
                    self._process, self._log = process, log
                    return None
        except queue.Empty:
            output = f"no '{READY_LINE}' line within {self.startup_timeout:g}s\n{log.tail()}"
        else:
            output = log.tail()
        _terminate(process)
        log.thread.join()
        return output

    def stop(self) -> None:
        """Terminate the server, wait for it, and remove its directory."""
        if self._process is not None:
            _terminate(self._process)
            self._process = None
        if self._log is not None:
            self._log.thread.join()
            self._log = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def log_tail(self) -> str:
        """The server's last log lines (for failure messages)."""
        return self._log.tail() if self._log is not None else ""

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """SIGTERM (a clean shutdown for Redis), then SIGKILL if it lingers; always reap.

    The log reader closes stdout itself once it has read to the end.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
