"""Pieces of ``soak.py``: the example project under uvicorn, wrk per URL, the sampler.

``ExampleServer`` runs ``example.asgi:application`` with ``--workers N`` and
learns the workers' process ids from their own log lines ("Started server
process [PID]"); it is ready once every worker said "Application startup
complete". It counts the log lines that report an error over the whole run (the
base class keeps only a tail). ``Sampler`` reads each worker's ``VmRSS`` and
Redis's ``connected_clients`` every few seconds in a thread of its own.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .load import LUA_DIR
from .server import Server, ServerError

EXAMPLE_DIR = Path(__file__).resolve().parent.parent.parent / "example_project"

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_WORKER = re.compile(r"Started server process \[(\d+)\]")
_NOTICE = re.compile(r"unavailable \(|answers again|did not answer")
_PROBLEM_KEYS = ("ERROR:", "Internal Server Error", "Exception in ASGI")
_CHAINED = ("The above exception", "During handling of the above exception")
# The example's index page logs its cache failures with the traceback (a warning).
_EXPECTED = re.compile(r"Cache '[^']+' did not answer")


class ExampleServer(Server):
    """The example project under ``uvicorn --workers N`` on a fixed loopback port."""

    def __init__(self, env: dict[str, str], *, port: int, workers: int, log: Path) -> None:
        super().__init__("example", "example.asgi:application", env)
        self.log_path = log
        self.fixed_port = port
        self.workers = workers
        self.worker_pids: list[int] = []
        self.problem_counts: collections.Counter[str] = collections.Counter()
        self.problem_examples: list[str] = []
        self.expected_tracebacks = 0  # the example's own warnings while Redis is down
        self.notices = 0  # the library's 'unavailable' / 'answers again' lines
        self._workers_ready = threading.Semaphore(0)

    def command(self) -> list[str]:
        return [
            self.python, "-m", "uvicorn", self.app,
            "--app-dir", str(EXAMPLE_DIR),
            "--host", "127.0.0.1",
            "--port", str(self.fixed_port),
            "--workers", str(self.workers),
            "--loop", "uvloop",
            "--http", "httptools",
            "--lifespan", "on",
            "--no-access-log",
            "--log-level", "info",
        ]  # fmt: skip

    def start(self) -> int:
        self.env.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
        port = super().start()
        deadline = time.monotonic() + self.start_timeout
        for _ in range(self.workers):
            if not self._workers_ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self.stop()
                raise ServerError("example: the workers did not start\n" + self.tail())
        if len(self.worker_pids) != self.workers:
            raise ServerError(f"example: worker pids {self.worker_pids}\n" + self.tail())
        return port

    def _pump(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        with self.log_path.open("w") as log:
            self._read(log)
        self._lines.put(None)

    def _read(self, log: TextIO) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        previous = ""
        for line in self.proc.stderr:
            log.write(line)
            line = line.rstrip("\n")
            self._tail.append(line)
            if match := _WORKER.search(line):
                self.worker_pids.append(int(match.group(1)))
            if "Application startup complete" in line:
                self._workers_ready.release()
            if _NOTICE.search(line):
                self.notices += 1
            if line.startswith("Traceback"):
                self._traceback(previous)
            elif not line[:1].isspace() and any(key in line for key in _PROBLEM_KEYS):
                self.problem_counts[line[:60]] += 1
                self._example(line)
            if line.strip():
                previous = line
            if not self._ready:
                self._lines.put(line)

    def _traceback(self, previous: str) -> None:
        """Count a traceback by the log record it belongs to (chained ones once)."""
        if previous.startswith(_CHAINED):
            return
        if _EXPECTED.search(previous):
            self.expected_tracebacks += 1
        else:
            self.problem_counts["Traceback"] += 1
            self._example(f"Traceback after: {previous}")

    def _example(self, line: str) -> None:
        if len(self.problem_examples) < 10:
            self.problem_examples.append(line)


def rss_kib(pid: int) -> int | None:
    """``VmRSS`` of ``pid`` in KiB, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (all threads), or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass
class Sample:
    t: float  # seconds since the load started
    rss_kib: dict[int, int | None]
    cpu_s: dict[int, float | None]
    clients: int | None  # Redis connected_clients (this sampler's own connection included)


@dataclass
class Sampler:
    """Samples worker RSS and Redis clients every ``every`` seconds until stopped."""

    pids: list[int]
    redis_port: int
    every: float
    started: float
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        import redis

        self._redis = redis.Redis(
            host="127.0.0.1", port=self.redis_port, socket_timeout=1, socket_connect_timeout=1
        )
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> Sample:
        try:
            clients: int | None = int(self._redis.info("clients")["connected_clients"])
        except Exception:  # Redis down (the restart): no value
            clients = None
        return Sample(
            t=time.monotonic() - self.started,
            rss_kib={pid: rss_kib(pid) for pid in self.pids},
            cpu_s={pid: cpu_seconds(pid) for pid in self.pids},
            clients=clients,
        )

    def _run(self) -> None:
        while True:
            self.samples.append(self.sample())
            if self._stop.wait(self.every):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.samples.append(self.sample())
        self._redis.close()


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    statuses: dict[int, int]
    xcache: dict[str, int]
    no_ratelimit: int  # 2xx answers without a RateLimit header (a limiter admitting uncounted)
    # (status, Retry-After present, problem "outcome", epoch second) -> count
    fivexx: dict[tuple[int, bool, str, int], int]
    p50_ms: float
    p99_ms: float
    max_ms: float


def start_wrk(
    url: str, *, method: str, connections: int, duration: int, tag: str, token: str | None
) -> subprocess.Popen[str]:
    """One wrk process (one thread) loading ``url`` for ``duration`` seconds."""
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
        "-s", str(LUA_DIR / "soak.lua"), url, "--", method, tag, *([token] if token else []),
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_wrk(proc: subprocess.Popen[str], timeout: float) -> WrkResult:
    """Wait for a wrk process and parse its SOAK_RESULT line."""
    out, err = proc.communicate(timeout=timeout)
    for line in out.splitlines():
        if line.startswith("SOAK_RESULT "):
            data: dict[str, Any] = json.loads(line[len("SOAK_RESULT ") :])
            fivexx = {}
            for key, count in data["fivexx"].items():
                status, ra, outcome, second = key.split(" ")
                fivexx[(int(status), ra == "RA", outcome, int(second))] = int(count)
            lat = data["latency_us"]
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=data["duration_us"] / 1e6,
                errors={k: int(v) for k, v in data["errors"].items()},
                statuses={int(k): int(v) for k, v in data["statuses"].items()},
                xcache=dict(data["xcache"]),
                no_ratelimit=int(data["no_ratelimit"]),
                fivexx=fivexx,
                p50_ms=lat["p50"] / 1000,
                p99_ms=lat["p99"] / 1000,
                max_ms=lat["max"] / 1000,
            )
    raise RuntimeError(f"wrk exited with {proc.returncode}, no SOAK_RESULT:\n{out}\n{err}")
