#!/usr/bin/env python
"""Soak test: the example project at saturation over every block, with a Redis restart.

    python benchmarks/soak.py                      # 10 minutes, Redis restarted at 5
    python benchmarks/soak.py --duration 90        # a short run
    python benchmarks/soak.py --json soak.json

Starts a redis-server of its own (no persistence) on a free loopback port, the
example project under uvicorn with ``--workers 2`` and ``REDIS_URL`` pointing at
it, and one wrk process per URL of TARGETS below (one per URL, so every status
is counted against the URL that answered it). Midway it kills Redis (SIGKILL)
and starts it again on the same port. Meanwhile it samples each worker's VmRSS
and Redis's connected_clients. It passes when:

- no 5xx answer came but the documented ones (docs/redis.md, docs/ratelimit.md,
  docs/upstream.md): the limiter's ``503`` with ``Retry-After`` when its store
  fails and ``RATE_LIMIT_FAIL_OPEN`` is False (the example keeps the default, True,
  so it admits without RateLimit fields instead), and the breaker
  demo's own ``502``/``503``/``504`` problem answers; the cache's answers while
  Redis is down are ``200`` with ``X-Cache: BYPASS`` and are counted too;
- no connection error or timeout, no traceback in the server log, both workers
  alive to the end;
- each worker's RSS at the end is within +10 % of its RSS after the baseline
  (the first minute);
- Redis's connected_clients is flat: the value before the restart is within
  ``--clients-bound`` of the baseline one, the value at the end within the bound
  of the one after the restart settled, and the end value within the bound of
  the baseline;
- after the load, the blocks work on the restarted Redis (a cache HIT, a 429).

Exit status 0 on a pass, 1 on a failed criterion, 2 when setup failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness.redis_server import RedisError, RedisServer, _free_port  # noqa: E402
from harness.server import ServerError  # noqa: E402
from harness.soak import EXAMPLE_DIR, ExampleServer, Sampler, finish_wrk, start_wrk  # noqa: E402
from harness.soak_report import evaluate  # noqa: E402

API_TOKEN = "soak-token"  # EXAMPLE_API_TOKEN of the servers; the create target sends it


@dataclass(frozen=True)
class Target:
    """One URL under load: a URL name (reversed) or a literal path starting with '/'."""

    label: str
    url: str
    query: str = ""
    method: str = "GET"
    connections: int = 2
    pk: bool = False  # the URL takes the seeded item's pk
    kind: str = ""  # "limiter" or "breaker": which documented 5xx it may answer
    token: bool = False  # send the API token (writes)


# The URLs of every block, by URL name of example_project/*/urls.py. Update here
# when the example's URLs change.
TARGETS = [
    Target("index", "index", "?format=json"),
    Target("fan-out", "demo:fanout", "?format=json&delay=0.05", connections=4),
    Target("fan-out page", "demo:fanout", "?delay=0"),
    Target("api list", "items:list", connections=4),
    Target("api retrieve", "items:detail", pk=True, connections=4),
    Target("api create", "items:list", method="POST", token=True, connections=1),
    Target("cached", "demo:cached", connections=4),
    Target("rate-limited", "demo:limited", kind="limiter", connections=4),
    Target("sliding window", "demo:limit-sliding_window", kind="limiter", connections=1),
    Target("fixed window", "demo:limit-fixed_window", kind="limiter", connections=1),
    Target("token bucket", "demo:limit-token_bucket", kind="limiter", connections=1),
    Target("handler in time", "demo:slow", "?seconds=0.05", connections=1),
    Target("breaker ok", "demo:flaky", "?failure_rate=0", kind="breaker"),
    Target("breaker flaky", "demo:flaky", "?failure_rate=0.5", kind="breaker"),
    Target("breakers", "demo:breakers", connections=1),
    Target("openapi", "openapi", connections=1),
    Target("page list", "catalogue:list"),
    Target("page detail", "catalogue:detail", pk=True),
    Target("page form", "catalogue:create", connections=1),
]

BREAKER_OUTCOMES = {"upstream_error", "circuit_open"}


def resolve_paths(pk: int) -> dict[str, str]:
    """Each target's path: ``reverse()`` in the example's URLconf, or the literal path."""
    sys.path.insert(0, str(EXAMPLE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    import django
    from django.urls import reverse

    django.setup()
    paths = {}
    for target in TARGETS:
        if target.url.startswith("/"):
            path = target.url
        else:
            path = reverse(target.url, kwargs={"pk": pk} if target.pk else None)
        paths[target.label] = path + target.query
    return paths


def http(port: int, path: str, *, method: str = "GET", body: bytes | None = None) -> tuple:
    """One request: (status, headers, body)."""
    headers = {}
    if method != "GET":  # the cache bypasses requests that carry Authorization
        headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=600, help="seconds of load (default 600)")
    p.add_argument("--restart-at", type=float, help="second of the Redis restart (default half)")
    p.add_argument("--redis-down", type=float, default=5.0, help="seconds Redis stays down")
    p.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    p.add_argument("--baseline", type=float, help="second of the reference sample (default 60)")
    p.add_argument("--settle", type=float, default=30.0, help="seconds after the restart")
    p.add_argument("--sample-every", type=float, default=3.0, help="sampling period (s)")
    p.add_argument("--rss-growth", type=float, default=0.10, help="allowed RSS growth (0.10)")
    p.add_argument("--clients-bound", type=int, default=5, help="allowed client drift (5)")
    p.add_argument("--json", type=Path, help="write the figures to this file")
    args = p.parse_args(argv)
    if args.restart_at is None:
        args.restart_at = args.duration / 2
    if args.baseline is None:
        args.baseline = min(60.0, args.restart_at / 2)
    if not args.baseline < args.restart_at < args.duration:
        p.error("need baseline < restart-at < duration")
    # the "after the restart" reference: settled, and leaving time to drift after it
    args.settle = min(args.settle, (args.duration - args.restart_at - args.redis_down) / 2)
    return args


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "manage.py"), "migrate", "--noinput", "-v0"],
        env={**os.environ, **env},
        check=True,
    )


def restart_redis(redis: RedisServer, down: float) -> tuple[RedisServer, float, float]:
    """SIGKILL Redis, wait ``down`` seconds, start it on the same port."""
    assert redis.proc is not None
    assert redis.url is not None
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    killed = time.time()
    redis.proc.send_signal(signal.SIGKILL)
    redis.proc.wait(timeout=10)
    redis.stop()
    time.sleep(down)
    fresh = RedisServer(port_factory=lambda: port)
    fresh.start()
    return fresh, killed, time.time()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    redis = RedisServer()
    try:
        redis_url = redis.start()
    except RedisError as exc:
        print(exc, file=sys.stderr)
        return 2
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    env = {
        "REDIS_URL": redis_url,
        "DJANGO_DEBUG": "0",
        "EXAMPLE_DB_PATH": str(tmp / "db.sqlite3"),
        "EXAMPLE_API_TOKEN": API_TOKEN,
        "DJANGO_SETTINGS_MODULE": "example.settings",
    }
    server = ExampleServer(env, port=_free_port(), workers=args.workers, log=tmp / "server.log")
    wrks: list = []
    try:
        migrate(env)
        port = server.start()
        status, _, body = http(
            port, "/api/items/", method="POST", body=b'{"name": "soak-seed", "price": "1.00"}'
        )
        if status != 201:
            raise ServerError(f"creating the seed item answered {status}: {body[:300]!r}")
        pk = int(json.loads(body)["id"])
        paths = resolve_paths(pk)
        print(f"redis-server on {redis_url}; example on 127.0.0.1:{port}, workers "
              f"{server.worker_pids}; {args.duration}s of load, Redis restart at "
              f"{args.restart_at:.0f}s ({args.redis_down:.0f}s down)")  # fmt: skip
        for target in TARGETS:
            if target.method == "GET":
                status, _, _ = http(port, paths[target.label])
                print(f"  pre-check {target.label:14} {paths[target.label]:40} {status}")
        started = time.monotonic()
        epoch0 = time.time()
        tag = f"soak{int(epoch0)}"
        for target in TARGETS:
            url = f"http://127.0.0.1:{port}{paths[target.label]}"
            token = API_TOKEN if target.token else None
            wrks.append(
                start_wrk(url, method=target.method, connections=target.connections,
                          duration=args.duration, tag=tag, token=token)
            )  # fmt: skip
        sampler = Sampler(server.worker_pids, redis_port, args.sample_every, started)
        sampler.start()
        time.sleep(max(0.0, args.restart_at - (time.monotonic() - started)))
        redis, killed, restarted = restart_redis(redis, args.redis_down)
        print(f"  Redis killed at {killed - epoch0:.1f}s, back at {restarted - epoch0:.1f}s")
        results = {
            t.label: finish_wrk(w, timeout=args.duration + 120)
            for t, w in zip(TARGETS, wrks, strict=True)
        }
        sampler.stop()
        after = probe_after(port, paths)
        alive = [p for p in server.worker_pids if Path(f"/proc/{p}").exists()]
        report = evaluate(
            args, TARGETS, classify, results, sampler, server, alive, after, killed, restarted
        )
    except (ServerError, RedisError, subprocess.CalledProcessError) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        for w in wrks:
            if w.poll() is None:
                w.kill()
        server.stop()
        redis.stop()
    if args.json:
        args.json.write_text(json.dumps(report.figures, indent=2, default=str))
    print("PASS" if not report.failures else f"FAIL ({len(report.failures)} criteria)")
    return 0 if not report.failures else 1


def probe_after(port: int, paths: dict[str, str]) -> dict[str, object]:
    """After the load: the cache serves a HIT and the limiter refuses, on the new Redis."""
    http(port, paths["cached"])
    status, headers, _ = http(port, paths["cached"])
    cache = f"{status} {headers.get('X-Cache')}"
    status, _, _ = http(port, paths["rate-limited"])
    return {"cache": cache, "limiter": status}


def classify(target: Target, key: tuple[int, bool, str, int]) -> str:
    """'limiter' / 'breaker' for a documented 5xx, 'other' for anything else."""
    status, retry_after, outcome, _ = key
    if target.kind == "limiter" and status == 503 and retry_after:
        return "limiter"
    if target.kind == "breaker" and status in (502, 503, 504) and outcome in BREAKER_OUTCOMES:
        return "breaker"
    return "other"


if __name__ == "__main__":
    sys.exit(main())
