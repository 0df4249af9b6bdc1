"""Fan-out benchmark: a view making 3 concurrent 50 ms upstream calls, under load.

Run from the repository root, in the benchmarks venv (uvicorn, uvloop; wrk on PATH)::

    PYTHONPATH=src benchmarks/.venv/bin/python benchmarks/fanout.py [-c 32] [--rounds 3]

An aiohttp upstream on loopback (its own process) answers every call after 50 ms.
The benchmark project (benchproj, no middleware) is served by one uvicorn process
(uvloop) and loaded by ``wrk -c 32``; each request of ``/ours/`` (``AsyncView`` +
``AsyncHTTPClient``) or ``/plain/`` (``django.views.View`` + a hand-held aiohttp
session) makes three concurrent upstream calls. ``--variants "ours plain vc ap"`` adds
the two mixes (``django View`` + client, ``AsyncView`` + hand-held session) to see which
part costs what. The ideal latency is 50 ms; the report gives p50, p90, p99 and
requests per second of each (medians of the rounds).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPSTREAM_SOURCE = """
import asyncio, sys
from aiohttp import web
try:
    import uvloop
except ImportError:
    uvloop = None

async def part(request):
    await asyncio.sleep(0.05)
    return web.json_response({"part": request.match_info["name"], "ok": True})

app = web.Application()
app.router.add_get("/{name}", part)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
            loop=uvloop.new_event_loop() if uvloop else None)
"""
VARIANTS = {
    "ours": "AsyncView + AsyncHTTPClient (/ours/)",
    "plain": "django View + aiohttp session (/plain/)",
    "vc": "django View + AsyncHTTPClient (/vc/)",
    "ap": "AsyncView + aiohttp session (/ap/)",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = {}
    for label in ("50", "90", "99"):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        figures[f"p{label}"] = value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rps, out
    figures["rps"] = float(rps.group(1))
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("--variants", default="ours plain", help=f"of {' '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = args.variants.split()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on PATH")

    upstream_port, server_port = free_port(), free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM_SOURCE, str(upstream_port)])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchproj.settings",
        "BENCH_URLCONF": "benchproj.urls.fanout",
        "BENCH_MIDDLEWARE": "minimal",
        "FANOUT_UPSTREAM": f"http://127.0.0.1:{upstream_port}",
        "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    server = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "benchproj.asgi:application",
            "--host", "127.0.0.1", "--port", str(server_port),
            "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
            "--lifespan", "off",
        ],
        env=env,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{upstream_port}/warm")
        base = f"http://127.0.0.1:{server_port}"
        wait_for(base + "/ours/")
        wait_for(base + "/plain/")
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for name in variants:
            wrk(f"{base}/{name}/", 2, args.connections)  # warm-up: pools, imports
        # Variants alternate, round after round, so a busy spell of a shared machine
        # does not land on one of them only; each figure is the median of the rounds.
        for _ in range(args.rounds):
            for name in variants:
                rounds[name].append(wrk(f"{base}/{name}/", args.seconds, args.connections))
    finally:
        server.terminate()
        upstream.terminate()
        server.wait(10)
        upstream.wait(10)

    print(
        f"fan-out: 3 concurrent 50 ms upstream calls per request, wrk -c{args.connections}, "
        f"median of {args.rounds} rounds of {args.seconds}s"
    )
    print(f"{'variant':<44} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'req/s':>8} {'non-2xx':>8}")
    for name, results in rounds.items():
        median = {key: statistics.median(r[key] for r in results) for key in results[0]}
        print(
            f"{VARIANTS[name]:<44} {median['p50']:>8.1f} {median['p90']:>8.1f} "
            f"{median['p99']:>8.1f} {median['rps']:>8.0f} {median['non_2xx']:>8.0f}"
        )


if __name__ == "__main__":
    main()
