"""What may be stored, and how answers are marked (internal)."""

from __future__ import annotations

import copy
import math
from typing import Final

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.http import parse_http_date_safe

from django_async_cbv.problems import PRECONDITION_FAILED, problem_response

from .entry import Entry
from .headers import X_CACHE
from .plan import _Plan

#: Statuses never stored, whatever should_cache_response() says.
_NEVER_STORED: Final = frozenset({206, 304})


def _mark(response: HttpResponseBase, state: str, plan: _Plan) -> HttpResponseBase:
    response.headers[X_CACHE] = state
    if plan.vary_on:
        patch_vary_headers(response, plan.vary_on)
    if plan.per_user:
        patch_cache_control(response, private=True)  # and drops a "public"
    return response


def _answer(
    request: HttpRequest, entry: Entry, state: str, plan: _Plan, now: float, *, head: bool
) -> HttpResponseBase:
    """A response from ``entry``: a copy, or what the request's preconditions call for.

    Preconditions are evaluated by Django (RFC 9110 13.2.2: ``If-Match``,
    ``If-Unmodified-Since``, then ``If-None-Match`` with weak comparison and ``*``,
    which takes precedence over ``If-Modified-Since``), against the entry's ETag and
    stored ``Last-Modified``. A 304 carries no body and no body length (RFC 9110
    15.4.5; some servers, uvicorn's httptools protocol among them, fail the connection
    on a Content-Length with no body), and none of the entry's other representation
    headers; ``Last-Modified`` goes too, since every entry has an ETag.
    """
    full = entry.response(head=head)
    response: HttpResponseBase = full
    if _has_preconditions(request):  # a hit's fast path reads no more headers
        response = _evaluated(request, full, entry.etag, _last_modified(entry))
        if response is not full and response.status_code == 412:
            return _mark(response, state, plan)
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


_PRECONDITIONS: Final = (
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)


def _evaluated(
    request: HttpRequest, full: HttpResponseBase, etag: str | None, last_modified: int | None
) -> HttpResponseBase:
    """``full``, or the 304 or 412 (problem+json) that the request's preconditions
    call for; the caller marks it."""
    if not (200 <= full.status_code < 300 and isinstance(full, HttpResponse)):
        return full  # a streaming answer is passed on whole
    if last_modified is None and "HTTP_IF_UNMODIFIED_SINCE" in request.META:
        # RFC 9110 13.1.4: ignored without a modification date (Django would fail it).
        request = copy.copy(request)
        request.META = {k: v for k, v in request.META.items() if k != "HTTP_IF_UNMODIFIED_SINCE"}
    answer = get_conditional_response(
        request, etag=etag, last_modified=last_modified, response=full
    )
    if answer is None:  # pragma: no cover - never None when given a response
        return full
    if answer.status_code == 304:
        del answer.headers["Last-Modified"]
        return answer
    if answer.status_code == 412:
        return problem_response(412, detail=PRECONDITION_FAILED)
    return full


def _evaluated_live(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """:func:`_evaluated` for a response the handler made (with its own validators)."""
    if not _has_preconditions(request):
        return response
    etag = response.headers.get("ETag")
    last_modified = response.headers.get("Last-Modified")
    if etag is None and last_modified is None:
        return response
    modified = parse_http_date_safe(last_modified) if last_modified else None
    return _evaluated(request, response, etag, modified)


def _has_preconditions(request: HttpRequest) -> bool:
    meta = request.META
    return any(name in meta for name in _PRECONDITIONS)


def _last_modified(entry: Entry) -> int | None:
    """The entry's ``Last-Modified`` as a Unix time, or None."""
    for name, value in entry.headers:
        if name.lower() == "last-modified":
            return parse_http_date_safe(value)
    return None


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
