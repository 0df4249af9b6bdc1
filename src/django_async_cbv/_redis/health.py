"""Whether a cache alias's store is down, overloaded, or fine, per process (internal).

One failed call says little on its own: a Redis that stopped answering and a healthy
Redis that a burst of requests keeps this event loop too busy to hear in time both
raise timeouts. A rate limiter that admitted every request whose check timed out
could be made to admit without limit by a large enough burst. So each process keeps,
per alias, when the store last answered:

- A failure while the store answered within :data:`RECENT` seconds is *transient*
  (overload, a broken connection, a failover in progress): the caller must not treat
  the store as down (a rate limit answers 503, never admits uncounted). A process's
  first failure counts as such too: silence is measured from it.
- A failure with no answer for longer than that, or one that says the server cannot
  be reached at all (connection refused, unknown host), means the store is *down*. Then, for
  :data:`PROBE_INTERVAL` seconds, callers skip it at once (no waiting for timeouts,
  one log line per interval); after that, one caller probes it while the others keep
  skipping, until a call succeeds.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["PROBE_INTERVAL", "RECENT", "StoreHealth", "health_of", "is_definitive"]

_now = time.monotonic  # the clock (replaced in tests)

logger = logging.getLogger("django_async_cbv")

#: Seconds since the store's last answer within which a failure is transient.
RECENT: Final = 5.0
#: Seconds a store found down is skipped before one request probes it again.
PROBE_INTERVAL: Final = 1.0

Verdict = Literal["transient", "down"]


@dataclass
class StoreHealth:
    """What this process knows of one alias's store (thread-safe; no awaits inside)."""

    alias: str
    last_ok: float | None = None  # None: no call made yet
    skip_until: float = float("-inf")  # while down: skip the store until then
    down: bool = False
    streak: int = 0  # failures since the last answer
    suppressed: int = 0  # failures not logged since the last log line
    last_log: float = float("-inf")

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def should_skip(self) -> bool:
        """True while the store is down and it is not this caller's turn to probe it."""
        with self._lock:
            if not self.down:
                return False
            now = _now()
            if now < self.skip_until:
                return True
            self.skip_until = now + PROBE_INTERVAL  # this caller probes; others skip
            return False

    def succeeded(self) -> None:
        """The store answered."""
        with self._lock:
            self.last_ok = _now()
            self.streak = 0
            if self.down:
                self.down = False
                logger.warning("Cache %r answers again.", self.alias)

    def failed(self, *, definitive: bool = False, streak_limit: int | None = None) -> Verdict:
        """The store did not answer: say whether that is transient or the store is down.

        ``definitive``: the server cannot be reached at all (connection refused, unknown
        host), which no overload explains. ``streak_limit``: for a caller that loses
        nothing by skipping the store (a circuit breaker falls back to its own state),
        this many failures in a row with no answer between them also mean it is down,
        however recent the last answer (a hung server times out every call).
        """
        with self._lock:
            now = _now()
            self.streak += 1
            if streak_limit is not None and self.streak >= streak_limit:
                definitive = True
            if self.last_ok is None:
                # The first calls of a process: a burst at start-up times out just like
                # a hung store. Count silence from now, as if it had just answered.
                self.last_ok = now
            if not definitive and not self.down and now - self.last_ok < RECENT:
                return "transient"
            self.down = True
            self.skip_until = now + PROBE_INTERVAL
            return "down"

    def log(self, message: str, *args: object, level: int = logging.WARNING) -> None:
        """Log ``message`` at most once per probe interval, with a count of the others."""
        with self._lock:
            now = _now()
            if now - self.last_log < PROBE_INTERVAL:
                self.suppressed += 1
                return
            suppressed, self.suppressed, self.last_log = self.suppressed, 0, now
        if suppressed:
            message += " (%d similar message(s) suppressed)"
            args = (*args, suppressed)
        logger.log(level, message, *args)


_health: dict[tuple[str, str], StoreHealth] = {}
_lock = threading.Lock()


def health_of(alias: str, purpose: str = "") -> StoreHealth:
    """The health record of ``alias`` in this process.

    ``purpose`` keeps a separate record: the circuit breakers give up on a store
    sooner than the rate limiter may (see ``streak_limit``), and their verdict must
    not make the rate limiter skip a store that is merely busy.
    """
    key = (alias, purpose)
    health = _health.get(key)
    if health is None:
        with _lock:
            health = _health.setdefault(key, StoreHealth(alias))
    return health


def forget() -> None:
    """Forget every record (when ``CACHES`` changes, and in tests)."""
    with _lock:
        _health.clear()


def is_definitive(exc: BaseException) -> bool:
    """The error says the server cannot be reached at all (refused, unknown host)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError | socket.gaierror):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
