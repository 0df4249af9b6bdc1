#!/usr/bin/env python
"""Sample one variant's server with py-spy while wrk loads one endpoint.

Starts the variant exactly as run.py does (same settings, pinning, seeded
database), checks and warms the endpoint, then runs py-spy (all threads, so
the work that Django hands to sync_to_async threads is seen too) during a
bounded wrk run, and prints the functions that appear in the most samples
(inclusive) and those that burn the most samples themselves (self).

    python benchmarks/profile_server.py api asyncapiview create
    python benchmarks/profile_server.py hello default/asyncview hello --filter django_async_cbv
    python benchmarks/profile_server.py ratelimit acbv-rl hello   # starts a redis-server too

py-spy needs permission to read the server's memory (root, or ptrace allowed).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness import scenarios  # noqa: E402
from harness.load import run_load  # noqa: E402
from harness.redis_server import from_environment as redis_from_environment  # noqa: E402
from harness.server import Server  # noqa: E402

# Leaf frames of threads that are only waiting (py-spy does not always see them
# as idle): thread-pool workers waiting for work, threads waiting on a lock.
_WAITING_LEAVES = (
    "_worker (concurrent/futures/thread.py)",
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
    "Thread._wait_for_tstate_lock (threading.py)",
)

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["hello", "api", "ratelimit"])
    parser.add_argument("variant")
    parser.add_argument("endpoint")
    parser.add_argument("--middleware", choices=["default", "minimal"], default="default")
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=400, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--filter", help="only list functions whose line contains this text")
    parser.add_argument("--idle", action="store_true", help="count idle (waiting) samples too")
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (Python CPU)"
    )
    args = parser.parse_args()
    if not 2 <= args.duration <= 60:
        parser.error("--duration must be between 2 and 60 seconds")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is not installed in this environment (pip install py-spy)", file=sys.stderr)
        return 2

    if args.scenario == "hello":
        scenario = scenarios.hello()
    elif args.scenario == "api":
        scenario = scenarios.api(args.middleware)
    else:
        scenario = scenarios.ratelimit(args.middleware)
    variant = next((v for v in scenario.variants if v.key == args.variant), None)
    endpoint = next((e for e in scenario.endpoints if e.key == args.endpoint), None)
    if variant is None or endpoint is None:
        print(
            f"variants: {[v.key for v in scenario.variants]}; "
            f"endpoints: {[e.key for e in scenario.endpoints]}",
            file=sys.stderr,
        )
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (
        (cpus[-1], cpus[0]) if len(cpus) > 1 and shutil.which("taskset") else (None, None)
    )

    tmp = Path(tempfile.mkdtemp(prefix="django-async-cbv-pyspy-"))
    env = dict(variant.env)
    server = None
    redis = None
    try:
        if args.scenario == "ratelimit":  # as run.py: Redis on the load generator's core
            redis = redis_from_environment(load_cpu)
            env["BENCH_REDIS_URL"] = redis.start()
        if variant.needs_db:
            db = tmp / "db.sqlite3"
            subprocess.run(
                [sys.executable, "-m", "benchproj.seed", "1000"],
                cwd=BENCH_DIR, check=True, capture_output=True, timeout=300,
                env={**os.environ, "BENCH_DB": str(db), "PYTHONPATH": str(BENCH_DIR),
                     "DJANGO_SETTINGS_MODULE": "benchproj.settings"},
            )  # fmt: skip
            env["BENCH_DB"] = str(db)
        server = Server(
            variant.key, variant.app, env, cpu=server_cpu, extra_args=variant.server_args
        )
        port = server.start()
        endpoint.verify(port, "pyspy-pre")
        load = {
            "port": port,
            "path": endpoint.path,
            "method": endpoint.method,
            "connections": args.connections,
            "cpu": load_cpu,
            "xff_pool": endpoint.xff_pool,
        }
        run_load(duration=2, tag="pyspy-warm", **load)
        raw = tmp / "stacks.txt"
        cmd = [
            py_spy, "record", "--pid", str(server.proc.pid), "--threads",
            "--rate", str(args.rate), "--duration", str(args.duration - 1),
            "--format", "raw", "--output", str(raw), "--nonblocking",
        ]  # fmt: skip
        if args.idle:
            cmd.append("--idle")
        if args.gil:
            cmd.append("--gil")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)  # let py-spy attach before the load starts
        result = run_load(duration=args.duration, tag="pyspy", **load)
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if spy.returncode != 0 or not raw.exists():
            print(f"py-spy failed ({spy.returncode}):\n{err[-2000:]}", file=sys.stderr)
            return 1
        print(
            f"{variant.key} {endpoint.key}: {result.rps:,.0f} req/s while sampled "
            f"(p50 {result.p50_ms:.1f} ms), non-2xx {result.non2xx}"
        )
        inclusive: collections.Counter[str] = collections.Counter()
        own: collections.Counter[str] = collections.Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [short(f) for f in stack.split(";") if f and not f.startswith("thread (")]
            if not frames or (not args.idle and frames[-1] in _WAITING_LEAVES):
                continue
            total += count
            for name in set(frames):
                inclusive[name] += count
            own[frames[-1]] += count
        scope = "idle included" if args.idle else "busy only, waiting threads left out"
        print(f"{total} samples (all threads, {scope})\n")
        for title, counter in (("inclusive", inclusive), ("self", own)):
            print(f"top {args.top} by {title} share of samples")
            shown = 0
            for name, count in counter.most_common():
                if args.filter and args.filter not in name:
                    continue
                print(f"  {count / total * 100:5.1f}%  {name}")
                shown += 1
                if shown >= args.top:
                    break
            print()
        return 0
    finally:
        if server is not None:
            server.stop()
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
