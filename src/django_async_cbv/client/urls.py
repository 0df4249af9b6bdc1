"""The URLs an AsyncHTTPClient may call: its base URL plus a relative path (internal).

A client never leaves its base origin (scheme, host and port). The path a caller
gives is appended to the base URL's path; anything that could change the origin or
climb out of the base path is refused with ``ValueError`` rather than "fixed":

- absolute URLs (``http://other/``) and anything with a scheme (``mailto:x``);
- network-path references (``//host/x``, RFC 3986 section 4.2);
- backslashes (some servers and proxies treat ``\\`` as ``/``);
- dot segments (``..``, ``.``), also percent-encoded (``%2e%2e``), double-encoded
  (``%252e``) or hidden behind an encoded slash (``..%2f``), which servers may
  resolve after the prefix check (RFC 3986 section 5.2.4);
- the same behind a ``;`` parameter (``..;/``, which some servers strip), behind
  Unicode compatibility forms (fullwidth full stops, NFKC-normalised before the test),
  or in percent escapes that are not valid UTF-8 (overlong ``%c0%ae``), which are
  refused;
- control characters and spaces, malformed percent escapes, and fragments (never
  sent to a server; a ``#`` in a path is an unquoted value: quote it as ``%23``).

A query string in the path is kept. Non-ASCII characters are UTF-8 percent-encoded.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import NamedTuple
from urllib.parse import quote, unquote

from yarl import URL

__all__ = ["Base", "parse_base_url", "resolve"]

# Characters a path and query may carry as they are (RFC 3986 pchar, "/" and "?"),
# plus "%" for escapes already made (checked separately).
_SAFE = "/?:@!$&'()*+,;=-._~%"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_DOT_SEGMENTS = frozenset({".", ".."})


class Base(NamedTuple):
    """A validated base URL: its origin and its path without a trailing slash."""

    url: URL
    origin: str
    path: str


def parse_base_url(base_url: str) -> Base:
    """Validate ``base_url`` (http or https, a host, no credentials, query or fragment)."""
    if not isinstance(base_url, str) or not base_url:
        raise TypeError(f"AsyncHTTPClient base_url must be a URL string, not {base_url!r}")
    if _CONTROL.search(base_url) or "\\" in base_url:
        raise ValueError(f"AsyncHTTPClient base_url {base_url!r} contains a space or backslash")
    try:
        url = URL(base_url)
    except ValueError as exc:
        raise ValueError(f"AsyncHTTPClient base_url {base_url!r} is not a valid URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"AsyncHTTPClient base_url must be an absolute http(s) URL, not {base_url!r}"
        )
    if url.raw_user is not None or url.raw_password is not None:
        raise ValueError(
            "AsyncHTTPClient base_url must not carry credentials; "
            "send them in headers={'Authorization': ...} instead"
        )
    if url.raw_query_string or url.raw_fragment:
        raise ValueError(
            f"AsyncHTTPClient base_url {base_url!r} must not have a query or fragment; "
            "pass params= to each call instead"
        )
    _check_segments(url.raw_path, base_url)
    return Base(url, str(url.origin()), url.raw_path.rstrip("/"))


@functools.lru_cache(maxsize=4096)  # most calls repeat a path; a refusal is not cached
def resolve(base: Base, path: str) -> URL:
    """The URL of ``path`` under ``base``; raise ``ValueError`` if it would leave it."""
    if not isinstance(path, str):
        raise TypeError(f"An upstream path must be a string, not {path!r}")
    if "\\" in path or _CONTROL.search(path):
        raise ValueError(f"Refusing upstream path {path!r}: backslash, space or control character")
    if "#" in path:
        raise ValueError(
            f"Refusing upstream path {path!r}: a fragment is never sent (quote '#' as %23)"
        )
    if path.startswith("//"):
        raise ValueError(f"Refusing upstream path {path!r}: it names another host")
    head = re.split(r"[/?]", path, maxsplit=1)[0]
    if _SCHEME.match(head):
        raise ValueError(
            f"Refusing upstream path {path!r}: absolute URLs are not allowed, "
            "only paths under the client's base URL"
        )
    if _BAD_ESCAPE.search(path):
        raise ValueError(f"Refusing upstream path {path!r}: malformed percent escape")
    raw = quote(path, safe=_SAFE)  # non-ASCII to UTF-8 escapes; existing escapes kept
    raw_path, question, raw_query = raw.partition("?")
    _check_segments(raw_path, path)
    if raw_path and not raw_path.startswith("/"):
        raw_path = "/" + raw_path
    full = base.path + raw_path if raw_path else base.url.raw_path
    if not full.startswith("/"):
        full = "/" + full
    # The origin came from the base URL and ``full`` starts with "/": the text
    # after the origin can only be a path and a query.
    url = URL(base.origin + full + (f"?{raw_query}" if question else ""), encoded=True)
    if str(url.origin()) != base.origin:  # belt and braces: the checks above forbid it
        raise ValueError(f"Refusing upstream path {path!r}: it leaves {base.origin}")
    return url


def _check_segments(raw_path: str, shown: str) -> None:
    """Refuse dot segments, however they are encoded."""
    for segment in raw_path.split("/"):
        decoded = segment
        try:
            for _ in range(4):  # decode until stable: double-encoded dots are dots to someone
                once = unquote(decoded, errors="strict")
                if once == decoded:
                    break
                decoded = once
            if "%" in decoded and unquote(decoded, errors="strict") != decoded:
                raise ValueError(f"Refusing upstream path {shown!r}: too many levels of escapes")
        except UnicodeDecodeError:
            raise ValueError(
                f"Refusing upstream path {shown!r}: percent escapes that are not UTF-8"
            ) from None
        decoded = unicodedata.normalize("NFKC", decoded)  # fullwidth dots are dots
        if "\\" in decoded or any(
            part.split(";", 1)[0] in _DOT_SEGMENTS  # "..;" is ".." to some servers
            for part in re.split(r"[/\\]", decoded)
            if part
        ):
            raise ValueError(
                f"Refusing upstream path {shown!r}: dot segments, encoded slashes with "
                "dots, or backslashes could leave the base path"
            )
