"""Rate strings such as ``"100/m"`` or ``"100/5m"`` (internal).

A rate is ``"<count>/<period>"``: ``count`` is a whole number of requests and the
period is one of ``s``, ``m``, ``h``, ``d`` optionally prefixed by a whole number of
those units (``"100/m"``, ``"100/5m"``, ``"5/2s"``). Parsing is strict: no spaces,
signs, leading zeros, fractions, zero values or unknown units, at most
:data:`MAX_COUNT` requests and a period of at most :data:`MAX_PERIOD` seconds.
Every rejection is a ValueError naming the value and the accepted syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_COUNT", "MAX_PERIOD", "SYNTAX", "Rate", "parse_rate", "parse_rates"]

#: Largest accepted count of requests per period.
MAX_COUNT = 10**9
#: Longest accepted period, in seconds (365 days).
MAX_PERIOD = 365 * 86400
#: The accepted syntax, as error messages state it.
SYNTAX = (
    '"<count>/<period>", period s, m, h or d optionally prefixed by a whole number '
    '(e.g. "100/m", "100/5m", "5/2s")'
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# ASCII digits only (``\d`` would accept other scripts' digits), no leading zeros;
# lengths are capped before int() so a huge string never becomes a huge int.
_RATE_RE = re.compile(r"([1-9][0-9]{0,11})/([1-9][0-9]{0,11})?([smhd])", re.ASCII)


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``period`` seconds, parsed from ``text``."""

    count: int
    period: int
    text: str


def parse_rate(text: object) -> Rate:
    """Parse one rate string; raise ValueError naming ``text`` and the syntax if invalid."""
    if not isinstance(text, str):
        raise ValueError(f"Invalid rate {text!r}: a rate is a string {SYNTAX}.")
    match = _RATE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"Invalid rate {text!r}: expected {SYNTAX}.")
    count = int(match[1])
    period = int(match[2] or 1) * _UNITS[match[3]]
    if count > MAX_COUNT:
        raise ValueError(
            f"Invalid rate {text!r}: the count must be at most {MAX_COUNT}; expected {SYNTAX}."
        )
    if period > MAX_PERIOD:
        raise ValueError(
            f"Invalid rate {text!r}: the period must be at most 365 days ({MAX_PERIOD} "
            f"seconds); expected {SYNTAX}."
        )
    return Rate(count=count, period=period, text=text)


def parse_rates(value: object) -> tuple[Rate, ...]:
    """Parse a rate string or a non-empty list/tuple of distinct rate strings.

    Two strings meaning the same rate (``"60/m"`` and ``"60/60s"``) are duplicates too.
    """
    if isinstance(value, str):
        return (parse_rate(value),)
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"Invalid rate limit {value!r}: expected a rate string or a list of them, "
            f"each {SYNTAX}."
        )
    if not value:
        raise ValueError(f"Invalid rate limit {value!r}: the list of rates is empty.")
    rates: list[Rate] = []
    for item in value:
        rate = parse_rate(item)
        for seen in rates:
            if (seen.count, seen.period) == (rate.count, rate.period):
                same = (
                    "is repeated" if seen.text == rate.text else f"means the same as {seen.text!r}"
                )
                raise ValueError(f"Invalid rate limit {value!r}: the rate {rate.text!r} {same}.")
        rates.append(rate)
    return tuple(rates)
