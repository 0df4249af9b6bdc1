"""Stored responses: the entry format (a JSON head and the body, never a pickle)."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Final

from django.http import HttpResponse

from .headers import _BAD_VALUE, PER_REQUEST_HEADERS, _is_header_name

_MAGIC: Final = b"django-async-cbv:cache:1\n"


@dataclass
class Entry:
    """A stored response: status, headers and body, with its times (Unix seconds)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    etag: str
    stored_at: float
    fresh_until: float
    generation: str = ""
    vary: tuple[str, ...] = ()
    name: str = ""  # the entry's key name: which variant of the URL it is
    revalidate: bool = False  # must-revalidate, proxy-revalidate, s-maxage: never stale

    def dumps(self) -> bytes:
        head = {
            "status": self.status,
            "reason": self.reason,
            "headers": self.headers,
            "etag": self.etag,
            "stored_at": self.stored_at,
            "fresh_until": self.fresh_until,
            "generation": self.generation,
            "vary": list(self.vary),
            "name": self.name,
            "revalidate": self.revalidate,
        }
        return _MAGIC + json.dumps(head, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def loads(cls, data: object) -> Entry | None:
        """The entry in ``data``, or None when it is not a valid one.

        Nothing in ``data`` is executed, and anything malformed (whoever wrote it to a
        shared store) is a miss, never an error: the status must be a real one, the
        times finite, and every header a field name and a value without line breaks.
        """
        if not isinstance(data, bytes) or not data.startswith(_MAGIC):
            return None
        head, sep, body = data[len(_MAGIC) :].partition(b"\n")
        if not sep:
            return None
        try:
            meta = json.loads(head)
            headers = meta["headers"]
            if not isinstance(headers, list) or not all(
                isinstance(pair, list)
                and len(pair) == 2
                and _is_header_name(pair[0])
                and isinstance(pair[1], str)
                and not _BAD_VALUE.search(pair[1])
                for pair in headers
            ):
                return None
            entry = cls(
                status=meta["status"],
                reason=meta["reason"],
                headers=[(name, value) for name, value in headers],
                body=body,
                etag=meta["etag"],
                stored_at=meta["stored_at"],
                fresh_until=meta["fresh_until"],
                generation=meta["generation"],
                vary=tuple(meta["vary"]),
                name=meta["name"],
                revalidate=meta.get("revalidate", False),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not (
            type(entry.status) is int
            and 200 <= entry.status <= 599
            and all(isinstance(v, str) for v in (entry.reason, entry.etag, entry.generation))
            and all(isinstance(v, str) for v in (entry.name, *entry.vary))
            and all(
                isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
                for t in (entry.stored_at, entry.fresh_until)
            )
            and isinstance(entry.revalidate, bool)
            and not _BAD_VALUE.search(entry.reason + entry.etag)
        ):
            return None
        return entry

    def response(self, *, head: bool) -> HttpResponse:
        """A new response with the entry's status, headers and body (none for HEAD)."""
        response = HttpResponse(b"" if head else self.body, status=self.status)
        response.reason_phrase = self.reason
        for name, value in self.headers:
            if name.lower() not in PER_REQUEST_HEADERS:
                response.headers[name] = value
        if head:
            response.headers["Content-Length"] = str(len(self.body))
        return response


@functools.lru_cache(maxsize=256)
def _load_cached(data: bytes) -> Entry | None:
    return Entry.loads(data)


def _load_entry(data: object) -> Entry | None:
    """:meth:`Entry.loads`, remembering recent results: a hot entry is parsed once.

    Entries are never changed once made, so one may serve many requests.
    """
    if not isinstance(data, bytes):
        return None
    if len(data) > _MEMO_LIMIT:
        return Entry.loads(data)
    return _load_cached(data)


_MEMO_LIMIT: Final = 64 * 1024  # larger entries are parsed each time, not kept
