"""How long a response may be reused: RFC 9111's freshness for a shared cache (internal).

Django's ``get_max_age`` reads ``max-age`` only, and reads a malformed or repeated one
as absent; a shared cache must prefer ``s-maxage``, fall back to ``Expires``, and must
not guess which of two ``max-age`` values counts. So the directives are read here, and
a ``Cache-Control`` this module cannot read with certainty means "do not store".
"""

from __future__ import annotations

from typing import Final, NamedTuple

from django.http import HttpResponseBase
from django.utils.http import parse_http_date_safe

from .headers import _seconds

#: Directives that forbid storing, matched as substrings of the lower-cased field
#: (with or without arguments, e.g. ``no-cache="Set-Cookie"``), as strictly as
#: Django's cache middleware matches ``private``.
_REFUSED: Final = ("private", "no-store", "no-cache")
#: Directives that forbid serving the entry once it is stale (RFC 9111 5.2.2.2, 5.2.2.8,
#: and 5.2.2.10: for a shared cache, ``s-maxage`` means ``proxy-revalidate`` too).
_NO_STALE: Final = frozenset({"must-revalidate", "proxy-revalidate", "s-maxage"})


class Freshness(NamedTuple):
    """How long to keep a response: its remaining life, and whether it may go stale."""

    ttl: float  # seconds from now the entry is fresh
    revalidate: bool  # must-revalidate, proxy-revalidate or s-maxage: never served stale
    age: float = 0.0  # seconds old it already is (RFC 9111 4.2.3's corrected initial age)


def freshness(response: HttpResponseBase, timeout: float, now: float) -> Freshness | None:
    """The freshness of ``response`` for a shared cache, capped at ``timeout`` seconds.

    None when the response must not be stored: ``private``, ``no-store`` or ``no-cache``
    anywhere in ``Cache-Control``; a ``max-age`` or ``s-maxage`` that is repeated or not
    a number; ``max-age=0`` (whatever ``s-maxage`` says, as Django's cache middleware);
    an invalid ``Expires`` (RFC 9111 5.3: already expired); or no life left.

    The life is ``s-maxage``, else ``max-age``, else ``Expires`` minus ``Date`` (or
    minus now without ``Date``), less the age the response already has: the larger of
    its ``Age`` and now minus its ``Date`` (an upstream's answer that has already
    aged); without any of them, ``timeout``.
    """
    headers = response.headers
    cache_control = headers.get("Cache-Control", "")
    lowered = cache_control.lower()
    if any(word in lowered for word in _REFUSED):
        return None
    ages: dict[str, list[str | None]] = {}
    names: set[str] = set()
    for item in lowered.split(","):
        name, sep, argument = item.strip().partition("=")
        name = name.strip()
        names.add(name)
        if name in ("max-age", "s-maxage"):
            ages.setdefault(name, []).append(argument.strip().strip('"') if sep else None)
    seconds: dict[str, int] = {}
    for name, values in ages.items():
        if len(values) != 1:
            return None  # a repeated directive: do not guess which one counts
        value = _seconds(values[0])
        if value is None:
            return None
        seconds[name] = value
    if seconds.get("max-age") == 0:
        return None  # expressly not to be reused without revalidation
    date = parse_http_date_safe(headers["Date"]) if "Date" in headers else None
    lifetime: float | None
    if "s-maxage" in seconds:
        lifetime = seconds["s-maxage"]
    elif "max-age" in seconds:
        lifetime = seconds["max-age"]
    elif "Expires" in headers:
        expires = parse_http_date_safe(headers["Expires"])
        if expires is None:
            return None
        lifetime = expires - (date if date is not None else now)
    else:
        lifetime = None
    # RFC 9111 4.2.3: the age it arrived with is the larger of its Age and the time
    # since its Date (the apparent age; never below 0 for a Date ahead).
    age: float = _seconds(headers.get("Age")) or 0
    if date is not None:
        age = max(age, now - date)
    if lifetime is not None:
        lifetime -= age
    ttl = timeout if lifetime is None else min(timeout, lifetime)
    if ttl <= 0:
        return None
    return Freshness(ttl, revalidate=bool(names & _NO_STALE), age=age)
