"""Start and stop one uvicorn server process per measurement.

The server binds port 0 on 127.0.0.1 and the harness learns the port from
uvicorn's own startup line ("Uvicorn running on http://127.0.0.1:PORT"), read
from the process's stderr with a deadline: no sleeping, no polling of the port.
"""

from __future__ import annotations

import collections
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_READY = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class ServerError(RuntimeError):
    """The server did not start, or died."""


def pin_prefix(cpu: int | None) -> list[str]:
    """``taskset -c CPU`` when pinning is possible, else nothing."""
    if cpu is None:
        return []
    return ["taskset", "-c", str(cpu)]


class Server:
    """One uvicorn process serving ``app`` with ``env`` added to the environment."""

    def __init__(
        self,
        name: str,
        app: str,
        env: dict[str, str],
        *,
        cpu: int | None = None,
        python: str = sys.executable,
        start_timeout: float = 30.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.app = app
        self.env = env
        self.cpu = cpu
        self.python = python
        self.start_timeout = start_timeout
        self.extra_args = extra_args
        self.port: int | None = None
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tail: collections.deque[str] = collections.deque(maxlen=60)
        self._ready = False

    # -- lifecycle ---------------------------------------------------------

    def command(self) -> list[str]:
        return [
            *pin_prefix(self.cpu),
            self.python, "-m", "uvicorn", self.app,
            "--app-dir", str(BENCH_DIR),
            "--host", "127.0.0.1",
            "--port", "0",
            "--loop", "uvloop",
            "--http", "httptools",
            "--workers", "1",
            "--lifespan", "off",
            "--no-access-log",
            "--log-level", "info",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> int:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        env.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=BENCH_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._pump, name=f"stderr-{self.name}", daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise ServerError(
                    f"{self.name}: no startup line within {self.start_timeout:.0f}s\n" + self.tail()
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:  # stderr closed: the process exited
                code = self.proc.wait(timeout=5)
                raise ServerError(
                    f"{self.name}: exited with {code} before it was ready\n" + self.tail()
                )
            match = _READY.search(line)
            if match:
                self.port = int(match.group(1))
                self._ready = True
                return self.port

    def _pump(self) -> None:
        """Read stderr for the life of the process (so the pipe never fills)."""
        assert self.proc is not None
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._tail.append(line.rstrip("\n"))
            if not self._ready:
                self._lines.put(line)
        self._lines.put(None)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system, all threads) the server has used so far, if readable."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        return "\n".join(f"    | {line}" for line in self._tail)

    def problems(self) -> list[str]:
        """Lines from the server's log that report an error (tracebacks, 5xx)."""
        keys = ("Traceback", "ERROR", "Internal Server Error", "Exception in ASGI")
        return [line for line in self._tail if any(k in line for k in keys)]

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
