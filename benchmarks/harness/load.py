"""Drive bounded load at one URL and return a summary.

``wrk`` is used when it is installed (fixed duration, fixed connections, one
thread); otherwise ``harness/pyload.py``, a small asyncio load generator with a
fixed connection count, a request cap and a duration cap. Both print one
``BENCH_RESULT {json}`` line with the same fields, parsed here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .server import BENCH_DIR, pin_prefix

LUA_DIR = BENCH_DIR / "lua"


class LoadError(RuntimeError):
    """The load generator failed or its output could not be read."""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    duration_s: float
    non2xx: int
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    tool: str
    # CPU seconds the server process used during the run (filled in by run.py)
    server_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def server_cpu_share(self) -> float | None:
        """Server CPU time / wall time: near 1.0 means its core was saturated."""
        if self.server_cpu_s is None or self.duration_s <= 0:
            return None
        return self.server_cpu_s / self.duration_s

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _parse(output: str, tool: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            data = json.loads(line[len("BENCH_RESULT ") :])
            lat = data["latency_us"]
            return LoadResult(
                requests=int(data["requests"]),
                duration_s=data["duration_us"] / 1e6,
                non2xx=int(data["non2xx"]),
                errors={k: int(v) for k, v in data["errors"].items()},
                p50_ms=lat["p50"] / 1000,
                p90_ms=lat["p90"] / 1000,
                p99_ms=lat["p99"] / 1000,
                mean_ms=lat["mean"] / 1000,
                max_ms=lat["max"] / 1000,
                tool=tool,
            )
    raise LoadError(f"no BENCH_RESULT line in {tool} output:\n{output[-2000:]}")


def run_load(
    *,
    port: int,
    path: str,
    method: str,
    duration: int,
    connections: int,
    tag: str,
    cpu: int | None,
    use_wrk: bool = True,
    max_requests: int = 2_000_000,
    xff_pool: int = 0,
) -> LoadResult:
    """Load ``http://127.0.0.1:PORT/PATH`` for ``duration`` seconds and summarise.

    ``xff_pool`` > 0 (GET only): every request carries an ``X-Forwarded-For``
    address from a pool of that many, in turn (``lua/xff.lua``).
    """
    url = f"http://127.0.0.1:{port}{path}"
    if xff_pool and method != "GET":
        raise ValueError("xff_pool is for GET endpoints only")
    wrk = wrk_path() if use_wrk else None
    if wrk:
        extra = []
        if xff_pool:
            script = LUA_DIR / "xff.lua"
            extra = [str(xff_pool)]
        else:
            script = LUA_DIR / ("post.lua" if method == "POST" else "get.lua")
        cmd = [
            *pin_prefix(cpu), wrk,
            "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
            "-s", str(script), url, "--", tag, *extra,
        ]  # fmt: skip
        tool = "wrk"
    else:
        cmd = [
            *pin_prefix(cpu), sys.executable, str(Path(__file__).with_name("pyload.py")),
            "--url", url, "--method", method, "--connections", str(connections),
            "--duration", str(duration), "--max-requests", str(max_requests), "--tag", tag,
            "--xff-pool", str(xff_pool),
        ]  # fmt: skip
        tool = "pyload"
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"{tool} did not finish within {duration + 60}s") from exc
    if proc.returncode != 0:
        raise LoadError(f"{tool} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    return _parse(proc.stdout, tool)
