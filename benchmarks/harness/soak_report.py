"""The verdict of ``soak.py``: the per-URL table, the figures and the pass criteria."""

from __future__ import annotations

import argparse
import collections
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .soak import ExampleServer, Sample, Sampler, WrkResult

# Documented 5xx this long after Redis came back still count as "during the outage".
OUTAGE_TAIL_S = 10


@dataclass
class Report:
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        print(f"  {'PASS' if ok else 'FAIL'}  {message}")
        if not ok:
            self.failures.append(message)


def _table(targets: Sequence[Any], results: Mapping[str, WrkResult], classify: Callable) -> None:
    head = (
        f"{'url':14} {'requests':>9} {'req/s':>7} {'2xx':>8} {'3xx':>6} {'429':>8} "
        f"{'4xx':>5} {'5xx doc':>7} {'5xx !':>6} {'sock':>5} {'p99 ms':>7}  X-Cache"
    )
    print(head)
    print("-" * len(head))
    for t in targets:
        r = results[t.label]
        by = collections.Counter[str]()
        for status, n in r.statuses.items():
            bucket = {2: "2xx", 3: "3xx", 5: "5xx"}.get(status // 100, "4xx")
            by["429" if status == 429 else bucket] += n
        doc = sum(n for k, n in r.fivexx.items() if classify(t, k) != "other")
        cache = " ".join(f"{k}={v}" for k, v in sorted(r.xcache.items()))
        print(f"{t.label:14} {r.requests:9} {r.requests / r.duration_s:7.0f} {by['2xx']:8} "
              f"{by['3xx']:6} {by['429']:8} {by['4xx']:5} {doc:7} {by['5xx'] - doc:6} "
              f"{sum(r.errors.values()):5} {r.p99_ms:7.0f}  {cache}")  # fmt: skip


def _at(samples: Sequence[Sample], t: float) -> Sample:
    """The first sample at or after ``t`` seconds (the last one if none is)."""
    return next((s for s in samples if s.t >= t), samples[-1])


def _clients(samples: Sequence[Sample], pick: Callable[[Sample], bool], last: bool) -> int | None:
    chosen = [s.clients for s in samples if s.clients is not None and pick(s)]
    if not chosen:
        return None
    return chosen[-1] if last else chosen[0]


def evaluate(
    args: argparse.Namespace,
    targets: Sequence[Any],
    classify: Callable,
    results: Mapping[str, WrkResult],
    sampler: Sampler,
    server: ExampleServer,
    alive: list[int],
    after: Mapping[str, object],
    killed: float,
    restarted: float,
) -> Report:
    """Print the table and the figures, check every criterion."""
    report = Report()
    fig = report.figures
    print()
    _table(targets, results, classify)
    print()
    requests = sum(r.requests for r in results.values())
    wall = max(r.duration_s for r in results.values())
    statuses = collections.Counter[int]()
    xcache = collections.Counter[str]()
    errors = collections.Counter[str]()
    doc = collections.Counter[str]()
    other: list[str] = []
    fail_open = 0
    for t in targets:
        r = results[t.label]
        statuses.update(r.statuses)
        errors.update(r.errors)
        if t.label == "cached":
            xcache.update(r.xcache)
        if t.kind == "limiter":
            fail_open += r.no_ratelimit
        for key, n in r.fivexx.items():
            kind = classify(t, key)
            if kind == "other":
                other.append(f"{t.label}: {n} x {key[0]} (Retry-After {key[1]}, {key[2]})")
                continue
            during = killed - 1 <= key[3] <= restarted + OUTAGE_TAIL_S
            doc[f"{kind} {'during outage' if during else 'outside outage'}"] += n
    fig.update(
        requests=requests,
        rps=round(requests / wall, 1),
        statuses=dict(sorted(statuses.items())),
        cache_x_cache=dict(xcache),
        documented_5xx=dict(doc),
        limiter_admitted_without_ratelimit_header=fail_open,
        other_5xx=other,
        socket_errors=dict(errors),
        server_log_problems=dict(server.problem_counts),
        server_log_redis_notices=server.notices,
        server_log_expected_tracebacks=server.expected_tracebacks,
        redis_down_epoch=[round(killed, 1), round(restarted, 1)],
        per_url={
            t.label: vars(results[t.label])
            | {"fivexx": {" ".join(map(str, k)): n for k, n in results[t.label].fivexx.items()}}
            for t in targets
        },
        after_restart=dict(after),
    )
    print(f"requests {requests} in {wall:.0f}s = {requests / wall:.0f} req/s; statuses "
          f"{dict(sorted(statuses.items()))}")  # fmt: skip
    print(f"cache X-Cache: {dict(xcache)}")
    print(f"limiter admissions without RateLimit fields (fail-open): {fail_open}")
    print(f"documented 5xx: {dict(doc) or 'none'}; other 5xx: {other or 'none'}")
    print(
        f"server log: {server.notices} Redis notices, {server.expected_tracebacks} "
        f"tracebacks of the example's 'did not answer' warning, "
        f"problems {dict(server.problem_counts)}"
    )
    print(f"server log: {server.log_path}")
    for line in server.problem_examples:
        print(f"    | {line}")

    samples = sampler.samples
    base, end = _at(samples, args.baseline), samples[-1]
    rss = {}
    print(f"RSS (KiB) at {base.t:.0f}s and at the end ({end.t:.0f}s):")
    for pid in server.worker_pids:
        b, e = base.rss_kib.get(pid), end.rss_kib.get(pid)
        growth = (e / b - 1) if b and e else None
        rss[pid] = {"baseline": b, "end": e, "growth": growth}
        shown = f"{growth:+.1%}" if growth is not None else "n/a"
        print(f"  worker {pid}: {b} -> {e} ({shown})")
    fig["rss_kib"] = rss
    first = samples[0]
    shares = {}
    for pid in server.worker_pids:
        c0, c1 = first.cpu_s.get(pid), end.cpu_s.get(pid)
        if c0 is not None and c1 is not None and end.t > first.t:
            shares[pid] = round((c1 - c0) / (end.t - first.t), 2)
    fig["worker_cpu_share"] = shares
    print(f"worker CPU time / wall time over the run (1.0 = one core): {shares}")
    fig["rss_series"] = [[round(s.t), *s.rss_kib.values()] for s in samples]

    restart_t = args.restart_at
    clients = {
        "baseline": _clients(samples, lambda s: s.t >= args.baseline, last=False),
        "before_restart": _clients(samples, lambda s: s.t < restart_t, last=True),
        "after_restart": _clients(samples, lambda s: s.t >= restart_t + args.settle, last=False),
        "end": _clients(samples, lambda s: True, last=True),
    }
    fig["redis_clients"] = clients
    fig["clients_series"] = [[round(s.t), s.clients] for s in samples]
    print(f"Redis connected_clients (the sampler's own included): {clients}")
    print()

    report.check(not other, f"no undocumented 5xx ({len(other)} kinds)")
    report.check(not any(errors.values()), f"no socket errors or timeouts ({dict(errors)})")
    problems = sum(server.problem_counts.values())
    report.check(problems == 0, f"no error or traceback in the server log ({problems})")
    report.check(alive == server.worker_pids, f"workers alive to the end ({alive})")
    for pid, r in rss.items():
        g = r["growth"]
        report.check(g is not None and g <= args.rss_growth,
                     f"worker {pid} RSS within +{args.rss_growth:.0%} of baseline")  # fmt: skip
    bound = args.clients_bound
    c = clients
    if None in c.values():
        report.check(False, f"Redis clients sampled at every point ({c})")
    else:
        report.check(abs(c["before_restart"] - c["baseline"]) <= bound,
                     f"clients flat before the restart (±{bound})")  # fmt: skip
        report.check(abs(c["end"] - c["after_restart"]) <= bound,
                     f"clients flat after the restart (±{bound})")  # fmt: skip
        report.check(c["end"] - c["baseline"] <= bound, f"clients at the end ≤ baseline + {bound}")
    report.check(after.get("cache") == "200 HIT", f"cache HIT after the restart ({after['cache']})")
    report.check(
        after.get("limiter") == 429, f"limiter refuses after the load ({after['limiter']})"
    )
    return report
