"""What may be stored, and how answers are marked (internal)."""

from __future__ import annotations

import math
from typing import Final

from django.http import HttpRequest, HttpResponse, HttpResponseBase

from .entry import Entry
from .headers import X_CACHE, _directives, _etag_matches, _vary_names
from .plan import _Plan

#: Statuses never stored, whatever should_cache_response() says.
_NEVER_STORED: Final = frozenset({206, 304})


def _mark(response: HttpResponseBase, state: str, plan: _Plan) -> HttpResponseBase:
    response.headers[X_CACHE] = state
    if plan.vary_on:
        present = _vary_names(response)
        extra = [name for name in plan.vary_on if name not in present]
        if extra:
            current = response.headers.get("Vary")
            response.headers["Vary"] = ", ".join(filter(None, [current, *extra]))
    if plan.per_user:
        directives = response.headers.get("Cache-Control")
        if directives is None:
            response.headers["Cache-Control"] = "private"
        elif "private" not in _directives(directives):
            response.headers["Cache-Control"] = f"private, {directives}"
    return response


def _answer(
    request: HttpRequest, entry: Entry, state: str, plan: _Plan, now: float, *, head: bool
) -> HttpResponseBase:
    """A response from ``entry``: a copy, or 304 when ``If-None-Match`` matches."""
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match and 200 <= entry.status < 300 and _etag_matches(if_none_match, entry.etag):
        response: HttpResponse = HttpResponse(status=304)
        for name, value in entry.headers:
            if name.lower() in {"etag", "cache-control", "vary", "expires", "last-modified"}:
                response.headers[name] = value
        del response.headers["Content-Type"]
        # What a 200 would have carried (RFC 9110 8.6), not the empty body's 0.
        response.headers["Content-Length"] = str(len(entry.body))
    else:
        response = entry.response(head=head)
    response.headers["Age"] = str(max(0, math.floor(now - entry.stored_at)))
    if state == "STALE":
        response.headers["Cache-Control"] = "max-age=0"
    elif not any(name.lower() == "cache-control" for name, _ in entry.headers):
        # The entry's lifetime, with Age: a downstream cache keeps it for what is left
        # (max-age minus Age, RFC 9111 4.2.3); a max-age already lowered by the age
        # would have it subtract the age twice.
        lifetime = max(0, math.floor(entry.fresh_until - entry.stored_at))
        response.headers["Cache-Control"] = f"max-age={lifetime}"
    return _mark(response, state, plan)


def _messages_used(request: HttpRequest) -> bool:
    """Whether the request's messages (django.contrib.messages) were read or added.

    Messages belong to one visitor; a page that showed them must not be stored.
    """
    storage = getattr(request, "_messages", None)
    if storage is None:
        return False
    return bool(
        getattr(storage, "used", False)
        or getattr(storage, "added_new", False)
        or getattr(storage, "_queued_messages", None)
        or getattr(storage, "_loaded_data", None)
    )
