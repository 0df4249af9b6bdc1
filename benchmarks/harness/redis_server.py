"""The Redis of the ``ratelimit`` scenario: a throw-away redis-server, or REDIS_URL.

Without ``REDIS_URL`` the harness starts ``redis-server`` on a free loopback port
with no persistence (``--save "" --appendonly no``), learns that it is ready from
its own log line, and stops it at the end of the run. With ``REDIS_URL`` it uses
that server and database instead and never stops it; the harness then empties
the URL's database (``FLUSHDB``) between measurements, so give it a database that
holds nothing else, on a server nothing else uses (the command counts are
server-wide).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from .server import pin_prefix

_READY = "Ready to accept connections"


class RedisError(RuntimeError):
    """redis-server could not be started, or redis-py is missing."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server process of our own, or the server named by REDIS_URL."""

    def __init__(
        self,
        url: str | None = None,
        cpu: int | None = None,
        *,
        args: tuple[str, ...] = (),
        port_factory: Callable[[], int] | None = None,
    ) -> None:
        self.external = url
        self.cpu = cpu
        self.args = args  # extra configuration (cluster.py: a cluster node's)
        self.port_factory = port_factory or _free_port
        self.url: str | None = url
        self.proc: subprocess.Popen[str] | None = None
        self._log: list[str] = []
        self._client: Any = None

    @property
    def description(self) -> str:
        if self.external:
            return f"REDIS_URL {self.external} (not started by the harness)"
        pin = f", pinned to core {self.cpu}" if self.cpu is not None else ""
        return f"redis-server {self.version()} on {self.url}, no persistence{pin}"

    def start(self, timeout: float = 15.0) -> str:
        """Start the server (unless external); return its URL once it answers PING."""
        if not self.external:
            binary = shutil.which("redis-server")
            if binary is None:
                raise RedisError(
                    "redis-server not found: install it (Debian/Ubuntu: apt-get install "
                    "redis-server) or set REDIS_URL to a Redis the benchmark may empty."
                )
            for _attempt in range(5):
                port = self.port_factory()
                if self._spawn(binary, port, timeout):
                    self.url = f"redis://127.0.0.1:{port}/0"
                    break
            else:
                raise RedisError("redis-server did not start:\n" + "\n".join(self._log[-20:]))
        if not self.client().ping():
            raise RedisError(f"{self.url} does not answer PING")
        return str(self.url)

    def _spawn(self, binary: str, port: int, timeout: float) -> bool:
        cmd = [
            *pin_prefix(self.cpu), binary,
            "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--daemonize", "no",
            *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc is not None
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self._log.append(line.rstrip("\n"))
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name="redis-server-log", daemon=True).start()
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:  # exited (e.g. the port was taken meanwhile)
                self.proc.wait(timeout=5)
                self.proc = None
                return False
            if _READY in line:
                return True
        self.stop()
        raise RedisError(
            f"redis-server: not ready within {timeout:.0f}s\n" + "\n".join(self._log[-20:])
        )

    def client(self) -> Any:
        """A synchronous redis-py client (decoded replies) for the harness's own commands."""
        if self._client is None:
            try:
                import redis
            except ImportError as exc:
                raise RedisError(
                    "redis-py is missing in this interpreter: pip install -r "
                    "benchmarks/requirements.txt"
                ) from exc
            self._client = redis.Redis.from_url(str(self.url), decode_responses=True)
        return self._client

    def version(self) -> str:
        try:
            return str(self.client().info("server").get("redis_version", "?"))
        except Exception:  # only a label
            return "?"

    def flush(self) -> None:
        """Empty the database (our own server: everything; REDIS_URL: its database)."""
        if self.external:
            self.client().flushdb()
        else:
            self.client().flushall()

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc = self.proc
        self.proc = None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def from_environment(cpu: int | None) -> RedisServer:
    """Our own redis-server, or ``REDIS_URL`` when it is set."""
    return RedisServer(os.environ.get("REDIS_URL") or None, cpu=cpu)
