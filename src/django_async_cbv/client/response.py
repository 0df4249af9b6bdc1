"""``UpstreamResponse``: a fully read upstream response."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDictProxy

from django_async_cbv.exceptions import UpstreamError

__all__ = ["UpstreamResponse"]


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A fully read upstream response.

    ``headers`` is case-insensitive and keeps repeated headers; ``body`` is the
    decoded (decompressed) body.
    """

    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes = field(repr=False)

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body as text, in the charset of ``Content-Type`` (UTF-8 if none is given)."""
        charset = _charset(self.headers.get("Content-Type", "")) or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON; ``UpstreamError`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
            raise UpstreamError(
                f"{self.method} {_shown(self.url)} answered {self.status} with a body "
                "that is not JSON",
                status=self.status,
                body=self.body,
                url=self.url,
                headers=self.headers,
            ) from exc


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _shown(url: str) -> str:
    """``url`` without its query, for messages (queries may carry secrets)."""
    return url.partition("?")[0]
