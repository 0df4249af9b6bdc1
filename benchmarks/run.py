#!/usr/bin/env python
"""Benchmark harness for django-async-cbv.

    python benchmarks/run.py hello            # AsyncView vs Django's View (+ bare ASGI)
    python benchmarks/run.py api              # AsyncAPIView vs ninja, adrf, DRF, hand-written View
    python benchmarks/run.py ratelimit        # AsyncRateLimitMixin vs DRF, ninja, django-ratelimit
    python benchmarks/run.py cache            # AsyncCacheMixin hits vs no cache and cache_page
    python benchmarks/run.py hello --quick    # smoke run: 1 round of 2 s

Each variant runs in its own uvicorn process (uvloop + httptools, one worker,
DEBUG off, no access log, ``--lifespan off``), started once, checked and
warmed up; all of them are pinned to one core and the load generator (wrk,
else harness/pyload.py) to the other. Rounds interleave the variants: in each
round every endpoint is measured for every variant in turn, the order reversed
every other round, and the results are summarised by medians. Every endpoint
is checked (status and body) before each measurement; a server that fails to
start, answers wrongly, or answers non-2xx under load makes the run exit
non-zero. The ``ratelimit`` scenario also starts a redis-server of its own
(or uses REDIS_URL), counts Redis commands per check and counts what each
limiter admits of a burst (harness/ratelimit.py). The ``cache`` scenario does
the same for AsyncCacheMixin and cache_page: it checks that every measured
request was a hit, counts Redis commands per hit, and counts handler runs in
a cold stampede (harness/cache.py). See README.md for the method.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness import cache as cb  # noqa: E402
from harness import checks, scenarios  # noqa: E402
from harness import ratelimit as rl  # noqa: E402
from harness.load import LoadError, LoadResult, run_load, wrk_path  # noqa: E402
from harness.postgres import PostgresServer, find_bin_dir  # noqa: E402
from harness.redis_server import RedisError, RedisServer  # noqa: E402
from harness.redis_server import from_environment as redis_from_environment  # noqa: E402
from harness.report import Summary, ratio, render_table  # noqa: E402
from harness.server import Server, ServerError  # noqa: E402

EXIT_WRONG_ANSWER = 1
EXIT_SETUP = 2
SEEDED_ROWS = 1000


class RunFailed(Exception):
    def __init__(self, message: str, code: int = EXIT_WRONG_ANSWER) -> None:
        super().__init__(message)
        self.code = code


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run a benchmark scenario and print a side-by-side table."
    )
    parser.add_argument("scenario", choices=["hello", "api", "pages", "ratelimit", "cache"])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds measured per run (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of warm-up load per run (default 1)"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent connections (default 32)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 s, 1 s warm-up")
    parser.add_argument(
        "--middleware",
        choices=["default", "minimal"],
        default="default",
        help="api, ratelimit and cache: Django's startproject MIDDLEWARE (default) or none",
    )
    parser.add_argument(
        "--variants",
        help="comma-separated variant keys to run (default: all); see --list",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="api: SQLite (default) or a PostgreSQL server the harness starts itself",
    )
    parser.add_argument(
        "--endpoints", help="api: comma-separated endpoints to measure (default: all)"
    )
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument(
        "--server-cpu", type=int, help="core for the server (default: the last one)"
    )
    parser.add_argument(
        "--load-cpu", type=int, help="core for the load generator (default: the first one)"
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the Python load generator even if wrk exists"
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the JSON results (default: benchmarks/results/)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2, 1
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be between 1 and 50")
    if not 1 <= args.duration <= 120:
        parser.error("--duration must be between 1 and 120 seconds")
    if not 0 <= args.warmup <= 30:
        parser.error("--warmup must be between 0 and 30 seconds")
    if not 1 <= args.connections <= 1024:
        parser.error("--connections must be between 1 and 1024")
    return args


def preflight(scenario: str) -> None:
    missing = []
    needed = ["django", "uvicorn", "uvloop", "httptools", "django_async_cbv"]
    if scenario in ("ratelimit", "cache"):
        needed += ["redis", "django_redis"]
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise RunFailed(
            f"missing in this interpreter ({sys.executable}): {', '.join(missing)}.\n"
            "Create the benchmark venv first (see benchmarks/README.md) and run with its python.",
            EXIT_SETUP,
        )


def choose_cpus(args: argparse.Namespace) -> tuple[int | None, int | None, str]:
    if args.no_pin:
        return None, None, "off (--no-pin)"
    if not shutil.which("taskset"):
        return None, None, "off (taskset not found)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None, "off (only one core available)"
    server = args.server_cpu if args.server_cpu is not None else cpus[-1]
    load = args.load_cpu if args.load_cpu is not None else cpus[0]
    if server not in cpus or load not in cpus:
        raise RunFailed(f"cores must be among {cpus}", EXIT_SETUP)
    return server, load, f"server on core {server}, load generator on core {load}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:3.0f}%"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in (
        "django", "django-async-cbv", "uvicorn", "uvloop", "httptools",
        "djangorestframework", "adrf", "django-ninja", "pydantic",
        "django-redis", "redis", "hiredis", "django-ratelimit",
    ):  # fmt: skip
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def source_state() -> dict[str, str]:
    """The library's commit, and whether its source differs from it (results are a snapshot)."""
    repo = BENCH_DIR.parent

    def git(*cmd: str) -> str:
        try:
            proc = subprocess.run(
                ["git", "-C", str(repo), *cmd],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "src_modified": str(bool(changed)).lower(),
    }


def seed_rows(scenario: str) -> int:
    return scenarios.PAGES_ROWS if scenario == "pages" else SEEDED_ROWS


def seed_database(tmpdir: Path, pg: PostgresServer | None = None, rows: int = SEEDED_ROWS) -> Path:
    db = tmpdir / "seed.sqlite3"
    target = {"BENCH_PG": pg.dsn("bench_seed")} if pg is not None else {"BENCH_DB": str(db)}
    if pg is not None:
        pg.psql("CREATE DATABASE bench_seed")
    env = {
        **os.environ,
        **target,
        "DJANGO_SETTINGS_MODULE": "benchproj.settings",
        "PYTHONPATH": str(BENCH_DIR),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "benchproj.seed", str(rows)],
        cwd=BENCH_DIR, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RunFailed(f"seeding the database failed:\n{proc.stdout}\n{proc.stderr}", EXIT_SETUP)
    return db


def select_variants(scenario: scenarios.Scenario, wanted: str | None) -> None:
    if not wanted:
        return
    keys = {k.strip() for k in wanted.split(",") if k.strip()}
    known = {v.key for v in scenario.variants}
    unknown = keys - known
    if unknown:
        raise RunFailed(f"unknown variant(s) {sorted(unknown)}; known: {sorted(known)}", EXIT_SETUP)
    for v in scenario.variants:
        if v.key not in keys:
            v.skipped = "not selected (--variants)"


def apply_probe(scenario: scenarios.Scenario, args: argparse.Namespace) -> None:
    candidates = [v for v in scenario.variants if v.module and not v.skipped]
    env = {"BENCH_MIDDLEWARE": args.middleware, "BENCH_DB": ":memory:"}
    states = scenarios.probe(candidates, env)
    broken = []
    for v in candidates:
        state, detail = states.get(v.module, ("ok", ""))
        if state == "missing":
            reason = detail.splitlines()[-1] if detail else "ImportError"
            v.skipped = "not importable (see the SKIP line above)"
            print(
                f"SKIP {v.key}: {v.label} cannot be imported, so it is not measured: {reason}",
                flush=True,
            )
        elif state == "broken":
            broken.append(f"{v.key} ({v.module}):\n{detail}")
    if broken:
        raise RunFailed("variant module(s) failed to import:\n" + "\n".join(broken), EXIT_SETUP)


@dataclass
class Running:
    """A variant's server process, started once and measured in every round."""

    variant: scenarios.Variant
    server: Server
    port: int
    db: Path | None
    pg: tuple[PostgresServer, str] | None = None  # the server and the variant's database


def start_variant(
    variant: scenarios.Variant,
    scenario: scenarios.Scenario,
    args: argparse.Namespace,
    cpus: tuple[int | None, int | None],
    db_seed: Path | None,
    tmpdir: Path | None,
    use_wrk: bool,
    running: list[Running],
    pg: PostgresServer | None = None,
) -> None:
    """Start the variant's server, check every endpoint, warm it up."""
    env = dict(variant.env)
    db = None
    pg_db = None
    if variant.needs_db and pg is not None:
        name = "bench_" + "".join(c if c.isalnum() else "_" for c in variant.key)
        pg.psql(f"CREATE DATABASE {name} TEMPLATE bench_seed")
        env["BENCH_PG"] = pg.dsn(name)
        pg_db = (pg, name)
    elif variant.needs_db:
        assert db_seed is not None
        assert tmpdir is not None
        db = tmpdir / f"{variant.key.replace('/', '-')}.sqlite3"
        shutil.copyfile(db_seed, db)
        env["BENCH_DB"] = str(db)
    server = Server(variant.key, variant.app, env, cpu=cpus[0], extra_args=variant.server_args)
    try:
        port = server.start()
    except ServerError as exc:
        raise RunFailed(f"server for {variant.key} failed to start: {exc}", EXIT_SETUP) from exc
    run = Running(variant, server, port, db, pg_db)
    running.append(run)
    for ep in scenario.endpoints:
        verify(run, ep, "pre")
    if args.warmup:
        for ep in scenario.endpoints:
            res = run_load(
                port=port, path=ep.path, method=ep.method, duration=args.warmup,
                connections=args.connections, cpu=cpus[1], use_wrk=use_wrk,
                tag=f"{tag_of(variant)}-{ep.key}-warm", xff_pool=ep.xff_pool,
            )  # fmt: skip
            check_load(run, ep, res, "warm-up")
    reset_rows(run, seed_rows(scenario.name))
    print(f"  started {variant.key} on port {port} (checked, warmed up)", flush=True)


def tag_of(variant: scenarios.Variant) -> str:
    return variant.key.replace("/", "-")


def verify(run: Running, ep: scenarios.Endpoint, when: str) -> None:
    try:
        ep.verify(run.port, f"{tag_of(run.variant)}-{when}")
        if run.variant.check is not None:
            run.variant.check(run.port, when)
    except (checks.CheckError, OSError) as exc:
        raise RunFailed(
            f"{run.variant.key} {ep.key}: wrong answer ({when}): {exc}\n{run.server.tail()}"
        ) from exc


def check_load(run: Running, ep: scenarios.Endpoint, res: LoadResult, phase: str) -> None:
    key = run.variant.key
    if res.non2xx or res.errors.get("status", 0):
        raise RunFailed(
            f"{key} {ep.key}: {res.non2xx} non-2xx answers of {res.requests} during the {phase}"
            f"\n{run.server.tail()}"
        )
    if res.errors.get("connect", 0):
        raise RunFailed(f"{key} {ep.key}: connection errors during the {phase}: {res.errors}")
    if not run.server.alive():
        raise RunFailed(f"{key}: server died during {ep.key}\n{run.server.tail()}", EXIT_SETUP)
    if res.requests == 0:
        raise RunFailed(f"{key} {ep.key}: no request completed during the {phase}")


def reset_rows(run: Running, rows: int = SEEDED_ROWS) -> None:
    """Delete the rows that create runs added to the variant's database (SQLite or PostgreSQL)."""
    if run.pg is not None:
        pg, name = run.pg
        pg.psql(f"DELETE FROM items_item WHERE id > {int(rows)}", name)
    elif run.db is not None:
        reset_database(run.db, rows)


def reset_database(db: Path, rows: int = SEEDED_ROWS) -> None:
    """Delete the rows that create runs added, so every list and detail run sees 1,000 rows.

    The server is idle at this point; SQLite in WAL mode lets a second
    connection write, and the server's next connection sees the change.
    """
    with sqlite3.connect(db, timeout=30) as conn:
        conn.execute("DELETE FROM items_item WHERE id > ?", (rows,))
    conn.close()


def check_limiters_active(redis: RedisServer, running: list[Running]) -> None:
    """After warm-up: every limited variant has written keys under its prefix, no other has."""
    counts = []
    for run in running:
        found = rl.keys_with_prefix(redis, run.variant.key)
        counts.append(f"{run.variant.key} {found:,}")
        if run.variant.limited and found == 0:
            raise RunFailed(f"{run.variant.key}: no key in Redis after warm-up: is it limited?")
        if not run.variant.limited and found:
            raise RunFailed(f"{run.variant.key}: {found} keys in Redis, but it is not limited")
    print(f"  Redis keys after warm-up (limiter active): {', '.join(counts)}", flush=True)


def ratelimit_extras(
    args: argparse.Namespace,
    scenario: scenarios.Scenario,
    running: list[Running],
    redis: RedisServer,
    load_cpu: int | None,
    summaries: dict[tuple[str, str], Summary],
) -> dict:
    """Commands per check and the burst (see harness/ratelimit.py); prints them and a summary.

    Wrong answers in the burst (neither admitted nor refused) are returned under
    ``failures``: main() fails the run after writing the results.
    """
    labels = {v.key: v.label for v in scenario.variants}
    limited = [run for run in running if run.variant.limited]
    pool = scenario.endpoints[0].xff_pool
    failures: list[str] = []

    # (b) Redis commands per check, on the warmed-up servers
    print(
        f"\nratelimit: Redis commands per check ({rl.COMMANDS_REQUESTS:,} requests after"
        f" warm-up, {args.connections} connections, X-Forwarded-For from {pool:,} addresses)"
    )
    print(
        "  sent = commands the server sent (MONITOR, without those run inside scripts), less"
        " connection\n  setup (HELLO, CLIENT SETINFO... when a pool opens a connection), shown"
        " apart;\n  executed = INFO commandstats after CONFIG RESETSTAT (includes scripts'"
        " commands)"
    )
    commands: dict[str, rl.CommandCount] = {}
    for run in limited:
        try:
            counted = rl.count_commands(
                redis, run.port, args.connections, pool, load_cpu, tag_of(run.variant)
            )
        except rl.Failed as exc:
            raise RunFailed(f"{run.variant.key}: counting commands: {exc}") from exc
        if counted.non2xx or counted.requests != rl.COMMANDS_REQUESTS:
            raise RunFailed(
                f"{run.variant.key}: {counted.non2xx} non-2xx answers of {counted.requests}"
                " while counting commands"
            )
        if run.server.problems():
            raise RunFailed(f"{run.variant.key}: the server logged errors:\n{run.server.tail()}")
        commands[run.variant.key] = counted
        setup = ""
        if counted.setup:
            setup = f"; connection setup {dict(counted.setup)} in {counted.requests} requests"
        print(
            f"  {labels[run.variant.key]:<33} sent {counted.per_check(counted.checks):5.2f}/check"
            f" ({counted.breakdown(counted.checks)}){setup}\n  {'':<33} executed"
            f" {counted.per_check(counted.executed):5.2f}/check"
            f" ({counted.breakdown(counted.executed)})",
            flush=True,
        )

    for run in running:  # idle from now on; the burst starts servers of its own
        run.server.stop()

    # (c) the burst, on 1 and 2 processes
    selected = {run.variant.key for run in limited}
    limiters = [lim for lim in rl.burst_limiters() if lim.variant in selected]
    print(
        f"\nratelimit: burst of {rl.BURST_REQUESTS} requests on {rl.BURST_CONCURRENCY}"
        f" connections, all from {rl.BURST_ADDRESS}, limit {rl.BURST_RATE}; Redis flushed"
        " before each; servers not pinned"
    )
    bursts: list[rl.BurstResult] = []
    for limiter in limiters:
        for processes in (1, 2):
            try:
                res = rl.run_burst(limiter, processes, redis, args.middleware, print)
            except rl.Failed as exc:
                raise RunFailed(f"burst {limiter.key} x{processes}: {exc}") from exc
            bursts.append(res)
            other = res.other(limiter.refused_status)
            if other:
                failures.append(
                    f"burst {limiter.key} x{processes}: {other} answers neither 2xx nor"
                    f" {limiter.refused_status}: {rl.describe_statuses(res.statuses)}"
                )
            split = " + ".join(str(res.admitted(c)) for c in res.per_process)
            print(
                f"  {limiter.label:<37} {processes} process{'es' if processes > 1 else '  '}"
                f"  admitted {res.admitted():4d} ({split:>9})"
                f"  refused {res.refused(limiter.refused_status):4d}"
                f" ({limiter.refused_status})  other {other:3d}  in {res.seconds:5.2f}s",
                flush=True,
            )

    # summary: one row per limiter, then the targets
    print(
        f"\nsummary ({args.middleware} middleware; throughput = req/s limited / req/s of the same"
        " view unlimited;\nCPU = server CPU us per request, limited - unlimited; burst = admitted"
        f" of {rl.BURST_REQUESTS} with a limit of {rl.BURST_LIMIT}, on 1 / 2 processes)"
    )
    print(
        f"  {'limiter':<33} {'throughput':>10} {'CPU':>8} {'cmds/check':>10}"
        "  burst admitted (1 / 2 processes)"
    )
    short = {"acbv-sw": "sliding_window ", "acbv-fw": "fixed_window ", "acbv-tb": "token_bucket "}
    burst_text: dict[str, list[str]] = {}
    for lim in limiters:
        runs = [b for b in bursts if b.limiter == lim.key]
        text = short.get(lim.key, "") + " / ".join(str(b.admitted()) for b in runs)
        burst_text.setdefault(lim.variant, []).append(text)
    cost: dict[str, float] = {}
    for key, base in (scenario.tables[0].pairs or {}).items():
        a, b = summaries.get((key, "hello")), summaries.get((base, "hello"))
        if a is None or b is None:
            continue
        cost[key] = ratio(a, b)
        cpu = "n/a"
        if a.cpu_per_request is not None and b.cpu_per_request is not None:
            cpu = f"{a.cpu_per_request - b.cpu_per_request:+,.0f}"
        counted = commands.get(key)
        cmds = f"{counted.per_check(counted.checks):.2f}" if counted else "-"
        print(
            f"  {labels[key]:<33} {cost[key]:>10.2f} {cpu:>8} {cmds:>10}"
            f"  {', '.join(burst_text.get(key, ['-']))}"
        )
    if "acbv-rl" in cost:
        value = cost["acbv-rl"]
        met = "met" if value >= scenarios.RATELIMIT_TARGET else "NOT met"
        print(
            f"  target: AsyncRateLimitMixin throughput >= {scenarios.RATELIMIT_TARGET:.2f}x its"
            f" unlimited view: {value:.2f} ({met})"
        )
    if "acbv-rl" in commands:
        counted = commands["acbv-rl"]
        sent = counted.per_check(counted.checks)
        met = "met" if set(counted.checks) == {"evalsha"} and sent == 1.0 else "NOT met"
        print(
            "  target: AsyncRateLimitMixin sends 1 Redis command per check (EVALSHA):"
            f" {sent:.2f} ({counted.breakdown(counted.checks)}) ({met})"
        )
    for lim in limiters:
        runs = [b for b in bursts if b.limiter == lim.key]
        if not runs or lim.variant != "acbv-rl":
            continue
        counts = " / ".join(str(b.admitted()) for b in runs)
        if lim.exact:
            ok = all(b.admitted() == rl.BURST_LIMIT for b in runs)
            print(
                f"  target: {lim.label} admits exactly {rl.BURST_LIMIT} on 1 and 2 processes:"
                f" {counts} ({'met' if ok else 'NOT met'})"
            )
        else:
            print(f"  no exact target: {lim.label} admits {counts} ({lim.note})")
    return {
        "failures": failures,
        "commands_per_check": {
            key: {
                "requests": c.requests,
                "sent": dict(c.checks),
                "connection_setup": dict(c.setup),
                "executed": dict(c.executed),
            }
            for key, c in commands.items()
        },
        "burst": [
            {
                "limiter": b.limiter,
                "processes": b.processes,
                "statuses": {str(k): v for k, v in b.statuses.items()},
                "admitted_per_process": [b.admitted(c) for c in b.per_process],
                "seconds": b.seconds,
            }
            for b in bursts
        ],
    }


def cache_extras(
    args: argparse.Namespace,
    scenario: scenarios.Scenario,
    running: list[Running],
    redis: RedisServer,
    load_cpu: int | None,
    summaries: dict[tuple[str, str], Summary],
) -> dict:
    """Commands per hit and the cold stampede (see harness/cache.py); prints them and a
    summary. Wrong answers in a stampede are returned under ``failures``."""
    labels = {v.key: v.label for v in scenario.variants}
    cached = [run for run in running if run.variant.cache is not None]
    failures: list[str] = []

    # (c) Redis commands per hit, on the warmed-up servers
    print(
        f"\ncache: Redis commands per hit ({rl.COMMANDS_REQUESTS:,} requests of /hello/ after"
        f" warm-up, {args.connections} connections)"
    )
    print(
        "  sent = commands the server sent (MONITOR, without those run inside scripts), less"
        " connection\n  setup (HELLO, CLIENT SETINFO... when a pool opens a connection), shown"
        " apart;\n  executed = INFO commandstats after CONFIG RESETSTAT (includes scripts'"
        " commands)"
    )
    commands: dict[str, rl.CommandCount] = {}
    for run in cached:
        try:
            counted = rl.count_commands(
                redis, run.port, args.connections, 0, load_cpu, tag_of(run.variant)
            )
        except rl.Failed as exc:
            raise RunFailed(f"{run.variant.key}: counting commands: {exc}") from exc
        if counted.non2xx or counted.requests != rl.COMMANDS_REQUESTS:
            raise RunFailed(
                f"{run.variant.key}: {counted.non2xx} non-2xx answers of {counted.requests}"
                " while counting commands"
            )
        verify(run, scenario.endpoints[0], "after counting commands")
        if run.server.problems():
            raise RunFailed(f"{run.variant.key}: the server logged errors:\n{run.server.tail()}")
        commands[run.variant.key] = counted
        setup = ""
        if counted.setup:
            setup = f"; connection setup {dict(counted.setup)} in {counted.requests} requests"
        print(
            f"  {labels[run.variant.key]:<28} sent {counted.per_check(counted.checks):5.2f}/hit"
            f" ({counted.breakdown(counted.checks)}){setup}\n  {'':<28} executed"
            f" {counted.per_check(counted.executed):5.2f}/hit"
            f" ({counted.breakdown(counted.executed)})",
            flush=True,
        )
    print(
        "  handler runs over the whole run (warm-up, rounds, command count): "
        + ", ".join(
            f"{run.variant.key} {cb.handler_runs(redis, run.variant.key, 'hello')}"
            for run in cached
        ),
        flush=True,
    )

    # (b) the cold stampede
    print(
        f"\ncache: cold stampede: {cb.STAMPEDE_CONCURRENCY} simultaneous GET {cb.SLOW_PATH}"
        f" (handler ~200 ms, runs counted with INCR) on {cb.STAMPEDE_CONCURRENCY} connections;"
        " Redis flushed before each"
    )
    stampedes: list[cb.Stampede] = []
    for rep in range(cb.STAMPEDE_REPEATS):
        order = cached if rep % 2 == 0 else list(reversed(cached))
        for run in order:
            try:
                res = cb.run_stampede(redis, run.variant.key, run.port, cb.STAMPEDE_CONCURRENCY)
            except (cb.Failed, OSError) as exc:
                raise RunFailed(f"stampede {run.variant.key}: {exc}") from exc
            stampedes.append(res)
            if res.ok != cb.STAMPEDE_CONCURRENCY:
                failures.append(
                    f"stampede {run.variant.key}: answers {rl.describe_statuses(res.statuses)}"
                )
            if run.server.problems():
                failures.append(f"stampede {run.variant.key}: server errors\n{run.server.tail()}")
            x_cache = ", ".join(f"{k} {v}" for k, v in sorted(res.x_cache.items()))
            print(
                f"  {rep + 1}/{cb.STAMPEDE_REPEATS}  {labels[run.variant.key]:<28}"
                f" handler runs {res.runs:4d}   2xx {res.ok:3d}/{cb.STAMPEDE_CONCURRENCY}"
                f"   X-Cache: {x_cache}   in {res.seconds:5.2f}s",
                flush=True,
            )

    # summary
    get = summaries.get
    print(f"\nsummary ({args.middleware} middleware)")
    hello, ours, page = (get((k, "hello")) for k in ("hello", "acbv-cache", "cache-page"))
    for name, a, b, target in (
        ("AsyncCacheMixin hit / no cache", ours, hello, scenarios.CACHE_HIT_TARGET),
        ("AsyncCacheMixin hit / cache_page hit", ours, page, scenarios.CACHE_VS_CACHE_PAGE_TARGET),
    ):
        if a is None or b is None:
            continue
        value = ratio(a, b)
        cpu = ""
        if a.cpu_per_request is not None and b.cpu_per_request is not None:
            cpu = f"; server CPU {a.cpu_per_request:,.0f} vs {b.cpu_per_request:,.0f} us/request"
        print(
            f"  target: {name} >= {target:.2f}: {value:.2f}{cpu}"
            f" ({'met' if value >= target else 'NOT met'})"
        )
    for key in ("acbv-cache", "cache-page"):
        runs = [s.runs for s in stampedes if s.variant == key]
        if not runs:
            continue
        text = " / ".join(map(str, runs))
        if key == "acbv-cache":
            met = "met" if all(r == 1 for r in runs) else "NOT met"
            print(
                f"  target: AsyncCacheMixin runs the handler once for {cb.STAMPEDE_CONCURRENCY}"
                f" concurrent cold requests: {text} ({met})"
            )
        else:
            print(
                f"  no target: cache_page ran the handler {text} times for"
                f" {cb.STAMPEDE_CONCURRENCY} concurrent cold requests"
            )
    if "acbv-cache" in commands:
        counted = commands["acbv-cache"]
        sent = counted.per_check(counted.checks)
        met = "met" if set(counted.checks) == {"evalsha"} and sent == 1.0 else "NOT met"
        print(
            f"  target: AsyncCacheMixin sends 1 Redis command per hit (EVALSHA): {sent:.2f}"
            f" ({counted.breakdown(counted.checks)}) ({met})"
        )
    if "cache-page" in commands:
        counted = commands["cache-page"]
        print(
            f"  for comparison: cache_page sends {counted.per_check(counted.checks):.2f} per hit"
            f" ({counted.breakdown(counted.checks)})"
        )
    return {
        "failures": failures,
        "commands_per_hit": {
            key: {
                "requests": c.requests,
                "sent": dict(c.checks),
                "connection_setup": dict(c.setup),
                "executed": dict(c.executed),
            }
            for key, c in commands.items()
        },
        "stampede": [
            {
                "variant": s.variant,
                "handler_runs": s.runs,
                "statuses": {str(k): v for k, v in s.statuses.items()},
                "x_cache": dict(s.x_cache),
                "seconds": s.seconds,
            }
            for s in stampedes
        ],
    }


def pages_extras(scenario: scenarios.Scenario, summaries: dict[tuple[str, str], Summary]) -> dict:
    """Page 5,000 against page 1, per variant; the cursor variant's target."""
    print("\npage 5,000 / page 1 (same variant; [range of per-round ratios]):")
    out: dict = {"ratios": {}, "failures": []}
    for v in scenario.variants:
        deep, first = summaries.get((v.key, "page5000")), summaries.get((v.key, "page1"))
        if deep is None or first is None:
            continue
        value = ratio(deep, first)
        pairs = [d.rps / f.rps for d, f in zip(deep.rounds, first.rounds, strict=False) if f.rps]
        out["ratios"][v.key] = value
        print(f"  {v.label:<34} {value:5.2f}  [{min(pairs):.2f}-{max(pairs):.2f}]")
    if "cursor" in out["ratios"]:
        value = out["ratios"]["cursor"]
        met = "met" if value >= scenarios.PAGES_TARGET else "NOT met"
        print(f"  target: cursor page 5,000 >= {scenarios.PAGES_TARGET:.2f}x page 1: {met}")
    return out


def make_scenario(args: argparse.Namespace) -> scenarios.Scenario:
    if args.scenario == "hello":
        return scenarios.hello()
    if args.scenario == "api":
        return scenarios.api(args.middleware, args.database, args.endpoints)
    if args.scenario == "cache":
        return scenarios.cache(args.middleware)
    if args.scenario == "pages":
        return scenarios.pages(args.middleware)
    return scenarios.ratelimit(args.middleware)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario = make_scenario(args)
    if args.list:
        for v in scenario.variants:
            print(f"{v.key:<20} {v.label}")
        return 0
    tmpdir: Path | None = None
    cleanup: list[list[Running]] = []
    redis: RedisServer | None = None
    pg: PostgresServer | None = None
    try:
        preflight(args.scenario)
        select_variants(scenario, args.variants)
        apply_probe(scenario, args)
        runnable = [v for v in scenario.variants if not v.skipped]
        if not runnable:
            raise RunFailed("no variant left to run", EXIT_SETUP)
        server_cpu, load_cpu, pin_note = choose_cpus(args)
        use_wrk = not args.no_wrk and wrk_path() is not None
        started = dt.datetime.now().astimezone()
        load_before = loadavg()
        print(f"scenario {scenario.name}: {scenario.description}")
        print(
            f"{args.rounds} round(s) x {args.duration}s (+{args.warmup}s warm-up), "
            f"{args.connections} connections, load generator: "
            f"{'wrk -t1' if use_wrk else 'harness/pyload.py'}; pinning: {pin_note}"
        )
        src = source_state()
        dirty = " with uncommitted changes in src/" if src["src_modified"] == "true" else ""
        print(
            f"cores: {os.cpu_count()}, load average before: {load_before};"
            f" library at commit {src['commit']}{dirty}",
            flush=True,
        )

        db_seed = None
        if any(v.needs_db for v in runnable):
            shm = Path("/dev/shm")
            base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
            tmpdir = Path(tempfile.mkdtemp(prefix="django-async-cbv-bench-", dir=base))
            if args.database == "postgresql":
                bin_dir = find_bin_dir()
                if bin_dir is None:
                    raise RunFailed(
                        "PostgreSQL is not installed (apt-get install postgresql)", EXIT_SETUP
                    )
                pg = PostgresServer(bin_dir)
                try:
                    pg.start()
                except RuntimeError as exc:
                    raise RunFailed(str(exc), EXIT_SETUP) from exc
            db_seed = seed_database(tmpdir, pg, seed_rows(args.scenario))
            where = f"PostgreSQL {bin_dir.parent.name} on port {pg.port}" if pg else db_seed
            print(f"database: {seed_rows(args.scenario):,} rows seeded in {where}", flush=True)

        if args.scenario in ("ratelimit", "cache"):
            # Redis stands for a separate machine: on the load generator's core, not the server's.
            redis = redis_from_environment(load_cpu)
            try:
                redis_url = redis.start()
            except RedisError as exc:
                raise RunFailed(str(exc), EXIT_SETUP) from exc
            print(f"redis: {redis.description}", flush=True)
            for variant in runnable:
                variant.env["BENCH_REDIS_URL"] = redis_url
                if variant.cache is not None:
                    variant.check = functools.partial(
                        cb.check_hit, redis, variant.env["BENCH_CACHE_PREFIX"], variant.cache
                    )

        running: list[Running] = []
        cleanup.append(running)
        for variant in runnable:
            start_variant(
                variant, scenario, args, (server_cpu, load_cpu), db_seed, tmpdir, use_wrk,
                running, pg,
            )  # fmt: skip
        if args.scenario == "ratelimit":
            assert redis is not None
            check_limiters_active(redis, running)

        raw: dict[tuple[str, str], list[LoadResult]] = {}
        t0 = time.monotonic()
        for round_no in range(args.rounds):
            order = running if round_no % 2 == 0 else list(reversed(running))
            for ep in scenario.endpoints:
                for run in order:
                    verify(run, ep, f"r{round_no}-pre")
                    cpu_before = run.server.cpu_seconds()
                    res = run_load(
                        port=run.port, path=ep.path, method=ep.method, duration=args.duration,
                        connections=args.connections, cpu=load_cpu, use_wrk=use_wrk,
                        tag=f"{tag_of(run.variant)}-{ep.key}-r{round_no}",
                        xff_pool=ep.xff_pool,
                    )  # fmt: skip
                    cpu_after = run.server.cpu_seconds()
                    if cpu_before is not None and cpu_after is not None:
                        res = dataclasses.replace(res, server_cpu_s=cpu_after - cpu_before)
                    check_load(run, ep, res, f"round {round_no + 1}")
                    if res.socket_errors:
                        print(f"  warning: socket errors {res.errors}", flush=True)
                    raw.setdefault((run.variant.key, ep.key), []).append(res)
                    print(
                        f"  round {round_no + 1}/{args.rounds}  {run.variant.key:<18} {ep.key:<9}"
                        f" {res.rps:>9,.0f} req/s  p50 {res.p50_ms:6.2f} ms"
                        f"  p99 {res.p99_ms:7.2f} ms  server cpu {_pct(res.server_cpu_share)}"
                        f"  load avg {loadavg()}",
                        flush=True,
                    )
            for run in running:
                reset_rows(run, seed_rows(args.scenario))
        for run in running:
            for ep in scenario.endpoints:
                verify(run, ep, "post")
            if run.server.problems():
                raise RunFailed(
                    f"{run.variant.key}: the server logged errors:\n{run.server.tail()}"
                )
        elapsed = time.monotonic() - t0
        load_after = loadavg()

        summaries = {k: Summary(v) for k, v in raw.items()}
        print()
        print(
            f"{started:%Y-%m-%d %H:%M %Z} | {scenario.name} | {args.rounds} round(s) x "
            f"{args.duration}s | {args.connections} conns | {elapsed:.0f}s total | "
            f"load avg {load_before} -> {load_after}"
        )
        print(
            "req/s = median over rounds; spread = (max-min)/median; p50/p99 = medians of the"
            " per-round latency percentiles;\nratio = ratio of medians [range of per-round ratios]."
        )
        for table in scenario.tables:
            print()
            print(render_table(table, scenario, summaries))
        extras: dict = {}
        if redis is not None and args.scenario == "ratelimit":
            extras["ratelimit"] = ratelimit_extras(
                args, scenario, running, redis, load_cpu, summaries
            )
            extras["redis"] = redis.description
        if redis is not None and args.scenario == "cache":
            extras["cache"] = cache_extras(args, scenario, running, redis, load_cpu, summaries)
            extras["redis"] = redis.description
        if args.scenario == "pages":
            extras["pages"] = pages_extras(scenario, summaries)

        out_path = args.output
        if out_path is None:
            out_path = BENCH_DIR / "results" / f"{scenario.name}-{started:%Y%m%dT%H%M%S}.json"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(
            json.dumps(
                {
                    "scenario": scenario.name,
                    "started": started.isoformat(),
                    "settings": {
                        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    },
                    "tool": "wrk" if use_wrk else "pyload",
                    "pinning": pin_note,
                    "cpu_count": os.cpu_count(),
                    "loadavg": [load_before, load_after],
                    "versions": versions(),
                    "source": src,
                    "skipped": {v.key: v.skipped for v in scenario.variants if v.skipped},
                    "results": {
                        f"{variant}|{ep}": [
                            r.__dict__ | {"rps": r.rps, "cpu_us_per_request": r.cpu_us_per_request}
                            for r in runs
                        ]
                        for (variant, ep), runs in raw.items()
                    },
                    **extras,
                },
                indent=2,
            )
        )
        print(f"\nraw results: {out_path}")
        failures = extras.get(args.scenario, {}).get("failures")
        if failures:
            raise RunFailed("\n".join(failures))
        return 0
    except RunFailed as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return exc.code
    except LoadError as exc:
        print(f"\nFAILED: load generator: {exc}", file=sys.stderr)
        return EXIT_WRONG_ANSWER
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for group in cleanup:
            for run in group:
                run.server.stop()
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
