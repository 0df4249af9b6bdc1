"""Small helpers shared by the cache, the rate limiter and the circuit breaker (internal)."""

from __future__ import annotations

import hashlib
from importlib.resources import files

__all__ = ["lua_script", "script_sha"]


def lua_script(package: str, name: str) -> str:
    """The text of the Lua script ``name`` shipped in ``package`` (read at import time)."""
    return files(package).joinpath(name).read_text(encoding="utf-8")


def script_sha(source: str) -> str:
    """The SHA-1 that ``EVALSHA`` names ``source`` by."""
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
