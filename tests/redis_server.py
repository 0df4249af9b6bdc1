"""Start a throwaway ``redis-server`` for the test suite (standard library only).

The server listens on a free loopback port, keeps its data in memory only, and
runs in the foreground as a child process. Readiness is read from its log on
stdout ("Ready to accept connections"), never guessed with sleeps; when the
port turns out to be taken (another process won the race for it) the next
port is tried.

Options of :class:`RedisServer` for the topologies of ``tests/redis_topologies.py``:

``args``
    Extra command-line configuration, e.g. ``["--user", "np", "on", "nopass",
    "~np:*", "&*", "+@all"]`` or ``["--replicaof", "127.0.0.1", "6379"]``. Each
    ``--name`` starts one configuration line, so ``--user`` may be given twice.
``tls``
    Serve TLS only (``--port 0 --tls-port PORT``), with a certificate for
    ``127.0.0.1`` and ``localhost`` issued by a fresh test CA (``trustme``, imported
    only then). ``url`` is then ``rediss://``, ``ca_file`` is the CA's PEM file and
    clients are not asked for certificates (``--tls-auth-clients no``). Debian's
    redis-server 7 is built with TLS.
``unixsocket``
    Also listen on ``<temp dir>/redis.sock`` (``unix_socket``; ``unix_url(db)``).
``config`` and ``ready_line``
    A configuration file (its text, written to the server's temp directory and
    passed first) and the log line that says the server is ready: a Sentinel
    (``args=["--sentinel"]``) logs ``+monitor master`` instead of the usual line.

``kill()`` ends the server with SIGKILL (a crash: no shutdown, no final save).
"""

from __future__ import annotations

import collections
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
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
        args: Sequence[str] = (),
        tls: bool = False,
        unixsocket: bool = False,
        config: str | None = None,
        ready_line: str = READY_LINE,
    ) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisStartError("redis-server is not on PATH")
        self.executable = found
        self.attempts = attempts
        self.startup_timeout = startup_timeout
        self.port_factory = port_factory
        self.args = list(args)
        self.tls = tls
        self.unixsocket = unixsocket
        self.config = config
        self.ready_line = ready_line
        self.port: int | None = None
        self.ca_file: str | None = None  # with tls: the PEM file of the CA to trust
        self.version: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._log: _LogReader | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://`` (``rediss://`` with tls) URL of database 0 of the running server."""
        return self.url_for(0)

    def url_for(self, db: int | None = 0, *, userinfo: str = "") -> str:
        """The server's URL for ``db`` (no path for None), with ``user[:password]@`` if given."""
        if self.port is None:
            raise RuntimeError("The server is not running")
        scheme = "rediss" if self.tls else "redis"
        at = f"{userinfo}@" if userinfo else ""
        path = "" if db is None else f"/{db}"
        return f"{scheme}://{at}127.0.0.1:{self.port}{path}"

    @property
    def unix_socket(self) -> str:
        """Path of the Unix socket (servers started with ``unixsocket=True``)."""
        if not self.unixsocket or self._tmpdir is None:
            raise RuntimeError("The server does not listen on a Unix socket")
        return os.path.join(self._tmpdir.name, "redis.sock")

    def unix_url(self, db: int = 0) -> str:
        """``unix://`` URL of the Unix socket, database ``db``."""
        return f"unix://{self.unix_socket}?db={db}"

    @property
    def directory(self) -> str:
        """The server's temporary directory (its working dir, certificates, config)."""
        if self._tmpdir is None:
            raise RuntimeError("The server is not running")
        return self._tmpdir.name

    @property
    def process(self) -> subprocess.Popen[str] | None:
        return self._process

    def start(self) -> RedisServer:
        """Start the server, retrying on another port when one is taken."""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="django-async-cbv-redis-")
        failures: list[str] = []
        try:
            if self.tls:
                self._write_certificates()
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
            "port": "0" if self.tls else str(port),
            "bind": "127.0.0.1",
            "save": "",  # no RDB snapshots
            "appendonly": "no",
            "daemonize": "no",  # stay a child we can wait for
            "dir": self._tmpdir.name,
            "loglevel": "notice",  # the level that logs the readiness line
            "enable-debug-command": "local",  # DEBUG SLEEP: a server that stops answering
        }
        if self.tls:
            certs = self._tmpdir.name
            options.update(
                {
                    "tls-port": str(port),
                    "tls-cert-file": os.path.join(certs, "server.crt"),
                    "tls-key-file": os.path.join(certs, "server.key"),
                    "tls-ca-cert-file": os.path.join(certs, "ca.crt"),
                    "tls-auth-clients": "no",
                }
            )
        if self.unixsocket:
            options.update({"unixsocket": self.unix_socket, "unixsocketperm": "700"})
        argv = [self.executable]
        if self.config is not None:
            config_file = os.path.join(self._tmpdir.name, "redis.conf")
            with open(config_file, "w") as out:
                out.write(self.config)
            argv.append(config_file)
        for name, value in options.items():
            argv += [f"--{name}", value]
        argv += self.args
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
                if self.ready_line in line:
                    self._process, self._log = process, log
                    return None
        except queue.Empty:
            output = f"no '{self.ready_line}' line within {self.startup_timeout:g}s\n{log.tail()}"
        else:
            output = log.tail()
        _terminate(process)
        log.thread.join()
        return output

    def _write_certificates(self) -> None:
        """A fresh CA and a server certificate for 127.0.0.1 and localhost, as PEM files."""
        import trustme

        assert self._tmpdir is not None
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        directory = self._tmpdir.name
        self.ca_file = os.path.join(directory, "ca.crt")
        ca.cert_pem.write_to_path(self.ca_file)
        cert.private_key_pem.write_to_path(os.path.join(directory, "server.key"))
        with open(os.path.join(directory, "server.crt"), "wb") as out:
            for blob in cert.cert_chain_pems:
                out.write(blob.bytes())

    def kill(self) -> None:
        """End the server with SIGKILL (a crash) and reap it; ``stop()`` still cleans up."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

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
