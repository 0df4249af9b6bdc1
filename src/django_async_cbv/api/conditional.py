"""Conditional requests: ``ETag``, ``If-None-Match`` on reads, ``If-Match`` on writes.

The ETag of an object is a strong validator of its representation: a hash of the
JSON bytes that ``retrieve`` sends. A write's preconditions are evaluated inside
the write's transaction, against the stored row as it is then, after the row (on
SQLite, the database) has been locked for writing; so of several writes that
carry the same ``If-Match``, one succeeds and the others get 412.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from hashlib import blake2b
from typing import Any

from django.db import connections, models
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import parse_etags

from django_async_cbv.exceptions import ProblemError
from django_async_cbv.problems import PRECONDITION_FAILED, problem_response

__all__ = [
    "PRECONDITION_FAILED_DETAIL",
    "ConditionalMixin",
    "etag_of",
    "has_write_preconditions",
    "lock_row",
]

PRECONDITION_FAILED_DETAIL = PRECONDITION_FAILED
PRECONDITION_REQUIRED_DETAIL = (
    "This request must be conditional: send If-Match with the ETag of the resource."
)


def etag_of(content: bytes) -> str:
    """Return the strong ETag (quoted) of a representation's bytes."""
    return f'"{blake2b(content, digest_size=16).hexdigest()}"'


def has_write_preconditions(request: HttpRequest) -> bool:
    """Whether an unsafe request carries a precondition the write must evaluate."""
    return "HTTP_IF_MATCH" in request.META or "HTTP_IF_NONE_MATCH" in request.META


def _if_match_holds(header: str, etag: str | None) -> bool:
    """RFC 9110 13.1.1: strong comparison; ``*`` matches any current representation."""
    if etag is None:
        return False
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    return etag in tags  # a W/ tag never equals a strong one


def _if_none_match_holds(header: str, etag: str | None) -> bool:
    """RFC 9110 13.1.2: weak comparison; ``*`` fails when a representation exists."""
    if etag is None:
        return True
    tags = parse_etags(header)
    if tags == ["*"]:
        return False
    return all(tag.removeprefix("W/") != etag for tag in tags)


def check_write_preconditions(request: HttpRequest, etag: str | None) -> None:
    """Raise a 412 problem unless the preconditions of a write hold for ``etag``.

    ``etag`` is the stored row's current ETag, or None when the row is gone.
    ``If-Unmodified-Since`` is ignored: objects have no modification date.
    """
    if_match = request.META.get("HTTP_IF_MATCH")
    if if_match is not None and not _if_match_holds(if_match, etag):
        raise ProblemError(412, detail=PRECONDITION_FAILED_DETAIL)
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None and not _if_none_match_holds(if_none_match, etag):
        raise ProblemError(412, detail=PRECONDITION_FAILED_DETAIL)


def lock_row(obj: models.Model, using: str, *, delete: bool = False) -> bool:
    """Lock ``obj``'s row for the enclosing transaction; return whether it still exists.

    Where the database has ``SELECT ... FOR UPDATE``, that; for an update, which changes
    no key, ``FOR NO KEY UPDATE`` where the database has it, so that the foreign keys of
    other writes may still be checked against the row (two updates of rows that point at
    each other would otherwise deadlock). Elsewhere (SQLite) an
    ``UPDATE`` that changes nothing, which takes the database's write lock before
    anything is read, so that concurrent writers wait for each other (within the
    database's busy timeout) instead of failing with "database is locked".
    """
    model = type(obj)
    connection = connections[using]
    if connection.features.has_select_for_update:
        no_key = not delete and connection.features.has_select_for_no_key_update
        rows = model._base_manager.using(using).select_for_update(no_key=no_key)
        rows = rows.filter(pk=obj.pk)
        return bool(list(rows.values_list("pk", flat=True)))
    meta = model._meta
    quote = connection.ops.quote_name
    column = quote(str(meta.pk.column))
    # The child's own table in multi-table inheritance: its pk is the parent link.
    sql = f"UPDATE {quote(meta.db_table)} SET {column} = {column} WHERE {column} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [meta.pk.get_db_prep_value(obj.pk, connection)])
        return bool(cursor.rowcount)


class ConditionalMixin:
    """``require_if_match``, ETags on object responses and 304 on matching reads."""

    #: When True, ``PUT``, ``PATCH`` and ``DELETE`` on the detail route must carry
    #: ``If-Match`` (else 428), so that no client overwrites a change it has not seen.
    require_if_match: bool = False

    request: HttpRequest
    json_response: Callable[..., HttpResponse]

    def get_require_if_match(self) -> bool:
        """Return whether unsafe detail requests must carry ``If-Match``."""
        return self.require_if_match

    def check_precondition_required(self) -> None:
        """Raise a 428 problem if ``If-Match`` is required and the request has none."""
        if self.get_require_if_match() and "HTTP_IF_MATCH" not in self.request.META:
            raise ProblemError(428, detail=PRECONDITION_REQUIRED_DETAIL)

    def object_response(
        self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """Return ``data`` (one serialized object) as JSON with its strong ``ETag``."""
        response = self.json_response(data, status, headers)
        response.headers["ETag"] = etag_of(response.content)
        return response

    def conditional_read(self, response: HttpResponse) -> HttpResponseBase:
        """Answer a read with ``response``, or 304 / 412 as its preconditions say.

        Django's ``get_conditional_response`` evaluates ``If-Match`` and
        ``If-None-Match`` (RFC 9110 13.2.2); its 304 carries the ``ETag`` and no
        body. A failed ``If-Match`` is a 412 problem.
        """
        meta = self.request.META
        if "HTTP_IF_NONE_MATCH" not in meta and "HTTP_IF_MATCH" not in meta:
            return response
        answer = get_conditional_response(
            self.request, etag=response.headers["ETag"], response=response
        )
        if answer is not None and answer.status_code == 412:
            return problem_response(412, detail=PRECONDITION_FAILED_DETAIL)
        return answer if answer is not None else response
