"""``AsyncHTTPClient``: calls to one upstream service over aiohttp.

::

    async with AsyncHTTPClient("http://users.internal/api", timeout=5, retries=2,
                               circuit_breaker="users") as client:
        user = await client.get_json("/users/42")   # http://users.internal/api/users/42

- **Sessions.** One pooled ``aiohttp.ClientSession`` per event loop and origin,
  shared by every client object of that origin and closed when its loop shuts down
  (or by :func:`django_async_cbv.aclose`); leaving ``async with`` closes nothing.
  Sessions have no cookie jar: a cookie an upstream sets for one user's call is
  never sent with another's. Redirects are not followed (they could leave the origin).
- **Paths** are appended to the base URL's path; see ``urls`` for what is refused.
- **Errors.** Every failure is raised, never turned into ``None``::

      UpstreamError          non-2xx (.status, .body), connection errors, bad bodies
      └── UpstreamTimeout    an attempt outlived ``timeout`` (also a TimeoutError)

  aiohttp's exceptions are mapped in :func:`_upstream_error`, and nowhere else.
- **Retries** (``retries`` extra attempts) only for idempotent methods, only after a
  connection error, a timeout or a 502/503/504, waiting for exponential backoff with
  full jitter or the upstream's ``Retry-After``, whichever is longer.
- **Circuit breaker.** The whole call, retries included, runs inside the breaker:
  it counts once; while the circuit is open ``CircuitOpenError`` is raised at once.
"""

from __future__ import annotations

from .errors import RETRY_STATUSES
from .http import DEFAULT_MAX_BODY_SIZE, IDEMPOTENT_METHODS, AsyncHTTPClient
from .pool import sessions as sessions
from .response import UpstreamResponse

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "AsyncHTTPClient",
    "UpstreamResponse",
]
