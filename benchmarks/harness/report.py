"""Summaries and the side-by-side tables.

Per variant and endpoint, over rounds: the median req/s, its spread
((max - min) / median), the medians of the per-round p50 and p99 latencies,
of the server's CPU use (CPU seconds / wall seconds: below ~95% the server
was waiting, on locks or on a busy core, not computing) and of its CPU
microseconds per request (less sensitive to other load on the machine than
req/s, blind to time spent waiting). Ratios are ratios of medians; beside each one, the range of the
per-round ratios (variant and baseline measured in the same round, a few
seconds apart), which shows how much of a difference is noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

from .load import LoadResult
from .scenarios import Scenario, Table


@dataclass
class Summary:
    rounds: list[LoadResult]

    @property
    def rps(self) -> float:
        return median(r.rps for r in self.rounds)

    @property
    def spread(self) -> float:
        values = [r.rps for r in self.rounds]
        return (max(values) - min(values)) / self.rps if self.rps else 0.0

    @property
    def p50(self) -> float:
        return median(r.p50_ms for r in self.rounds)

    @property
    def p99(self) -> float:
        return median(r.p99_ms for r in self.rounds)

    @property
    def cpu_share(self) -> float | None:
        values = [r.server_cpu_share for r in self.rounds if r.server_cpu_share is not None]
        return median(values) if values else None

    @property
    def cpu_per_request(self) -> float | None:
        values = [r.cpu_us_per_request for r in self.rounds if r.cpu_us_per_request is not None]
        return median(values) if values else None


def ratio(a: Summary, b: Summary) -> float:
    return a.rps / b.rps if b.rps else float("nan")


def paired_range(a: Summary, b: Summary) -> tuple[float, float]:
    pairs = [x.rps / y.rps for x, y in zip(a.rounds, b.rounds, strict=False) if y.rps]
    return (min(pairs), max(pairs)) if pairs else (float("nan"), float("nan"))


def _fmt_ratio(a: Summary | None, b: Summary | None) -> str:
    if a is None or b is None:
        return "-"
    if a is b:
        return "1.00 (base)"
    lo, hi = paired_range(a, b)
    if len(a.rounds) > 1:
        return f"{ratio(a, b):.2f} [{lo:.2f}-{hi:.2f}]"
    return f"{ratio(a, b):.2f}"


def _row_baseline(
    table: Table,
    key: str,
    row: Summary,
    base: Summary | None,
    get: Callable[[str], Summary | None],
) -> Summary | None:
    """The summary a row is compared with: its pair's baseline, itself, or the table's."""
    if table.pairs is None:
        return base
    if key in table.pairs:
        return get(table.pairs[key])
    return row  # a baseline of its own: "1.00 (base)"


def render_table(table: Table, scenario: Scenario, results: dict[tuple[str, str], Summary]) -> str:
    labels = {v.key: v.label for v in scenario.variants}
    skipped = {v.key: v.skipped for v in scenario.variants if v.skipped}

    def get(key: str) -> Summary | None:
        return results.get((key, table.endpoint))

    base = get(table.baseline)
    other = get(table.also_vs) if table.also_vs else None
    headers = [
        "variant", "req/s", "spread", "p50 ms", "p99 ms", "srv cpu", "cpu us/req",
        "x own baseline" if table.pairs else f"x {labels[table.baseline]}",
    ]  # fmt: skip
    if table.also_vs:
        headers.append(f"x {labels[table.also_vs]}")
    rows: list[list[str]] = []
    for key in table.rows:
        s = get(key)
        if s is None:
            reason = skipped.get(key, "not measured")
            rows.append([labels[key], f"skipped: {reason}"])
            continue
        row = [
            labels[key],
            f"{s.rps:,.0f}",
            f"{s.spread * 100:.0f}%",
            f"{s.p50:.2f}",
            f"{s.p99:.2f}",
            "n/a" if s.cpu_share is None else f"{s.cpu_share * 100:.0f}%",
            "n/a" if s.cpu_per_request is None else f"{s.cpu_per_request:,.0f}",
            _fmt_ratio(s, _row_baseline(table, key, s, base, get)),
        ]
        if table.also_vs:
            row.append(_fmt_ratio(s, other))
        rows.append(row)
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) == len(headers):
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [table.title]
    lines.append(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    )
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        if len(row) != len(headers):
            lines.append(row[0].ljust(widths[0]) + "  " + row[1])
            continue
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for variant, versus, minimum in table.targets:
        a, b = get(variant), get(versus)
        if a is None or b is None:
            continue
        value = ratio(a, b)
        verdict = "meets" if value >= minimum else "BELOW"
        lines.append(
            f"  target: {labels[variant]} >= {minimum:.2f}x {labels[versus]}: "
            f"{value:.2f} ({verdict})"
        )
    return "\n".join(lines)
