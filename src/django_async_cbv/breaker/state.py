"""The circuit breaker's state machine in this process's memory (internal).

States and epochs: every transition increments the circuit's *epoch*. A call is
admitted under one epoch and its outcome counts only if the circuit is still in that
epoch when the call ends, so a slow call begun while CLOSED that ends during
HALF_OPEN is not a probe result, and a call begun before a reset does not count
after it.

Probe slots are leases: ``lease_time`` seconds each, dropped when their call ends
(whatever the outcome, cancellation included) or when they expire, so a probe that
never ends cannot hold HALF_OPEN forever.

Thread safety: every method takes ``lock`` for a few attribute updates and never
awaits, so several event loops in several threads may share one machine. The
breaker's closed-state fast path reads ``state``, ``epoch`` and ``failures``
without the lock (single attribute reads are atomic) and takes it only to write.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["FAILURE", "NEUTRAL", "SUCCESS", "CircuitState", "CircuitStats", "MemoryCircuit"]


class CircuitState(enum.Enum):
    """The state of a circuit breaker."""

    #: Calls go through; consecutive failures are counted.
    CLOSED = "closed"
    #: Calls fail at once with ``CircuitOpenError`` until ``recovery_timeout`` has passed.
    OPEN = "open"
    #: At most ``half_open_max_calls`` probe calls at a time go through.
    HALF_OPEN = "half_open"


CLOSED: Final = CircuitState.CLOSED
OPEN: Final = CircuitState.OPEN
HALF_OPEN: Final = CircuitState.HALF_OPEN

#: How a call ended, as far as the circuit is concerned.
SUCCESS: Final = 1
FAILURE: Final = 2
NEUTRAL: Final = 0  # ignored exceptions, cancellation, an inner breaker's refusal

#: Seconds a caller refused because every probe slot is taken is asked to wait.
PROBES_BUSY_RETRY: Final = 1.0

Change = tuple[CircuitState, CircuitState] | None


@dataclass(frozen=True, slots=True)
class CircuitStats:
    """A snapshot of one breaker's counters in this process, for monitoring.

    Times are Unix timestamps (``time.time()``). Counts are of calls made through
    this breaker object in this process; with several threads, the count of
    successes may miss a few concurrent increments (the fast path takes no lock).
    """

    state: CircuitState
    successes: int
    failures: int
    ignored: int
    rejections: int
    timeouts: int
    consecutive_failures: int
    last_failure: str | None
    last_failure_at: float | None
    opened_at: float | None


class MemoryCircuit:
    """One circuit's state in this process (see the module docstring)."""

    __slots__ = (
        "clock",
        "epoch",
        "failure_threshold",
        "failures",
        "lease_time",
        "leases",
        "lock",
        "max_probes",
        "next_lease",
        "opened_at",
        "opened_wall",
        "recovery_timeout",
        "state",
        "success_threshold",
        "successes",
    )

    def __init__(
        self,
        *,
        failure_threshold: int,
        recovery_timeout: float,
        half_open_max_calls: int,
        success_threshold: int,
        lease_time: float,
        clock: Callable[[], float],
    ) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.max_probes = half_open_max_calls
        self.success_threshold = success_threshold
        self.lease_time = lease_time
        self.state: CircuitState = CLOSED
        self.epoch = 0
        self.failures = 0  # consecutive counted failures while CLOSED
        self.successes = 0  # probe successes while HALF_OPEN
        self.opened_at = 0.0  # clock() when it last opened
        self.opened_wall: float | None = None
        self.leases: dict[int, float] = {}  # lease id -> expiry (clock)
        self.next_lease = 0

    def admit(self) -> tuple[int, int | None, float, Change]:
        """Admit a call or not: ``(epoch, lease, retry_after, change)``.

        ``epoch`` is -1 for a refused call, whose ``retry_after`` says how long to
        wait; ``lease`` is the probe slot of a call admitted in HALF_OPEN (else None);
        ``change`` the transition this made (OPEN -> HALF_OPEN), or None.
        """
        with self.lock:
            if self.state is CLOSED:
                return self.epoch, None, 0.0, None
            now = self.clock()
            change: Change = None
            if self.state is OPEN:
                due = self.opened_at + self.recovery_timeout
                if now < due:
                    return -1, None, due - now, None
                self._move(HALF_OPEN, now)
                change = (OPEN, HALF_OPEN)
            leases = self.leases
            if leases:
                for lease in [lease for lease, expiry in leases.items() if expiry <= now]:
                    del leases[lease]
            if len(leases) >= self.max_probes:
                return -1, None, PROBES_BUSY_RETRY, change
            lease = self.next_lease = self.next_lease + 1
            leases[lease] = now + self.lease_time
            return self.epoch, lease, 0.0, change

    def record(self, epoch: int, lease: int | None, outcome: int) -> Change:
        """Record how a call admitted under ``epoch`` ended; return the transition made."""
        with self.lock:
            if lease is not None:
                self.leases.pop(lease, None)
            if epoch != self.epoch or outcome == NEUTRAL:
                return None
            if self.state is CLOSED:
                if outcome == SUCCESS:
                    self.failures = 0
                    return None
                self.failures += 1
                if self.failures < self.failure_threshold:
                    return None
                self._move(OPEN, self.clock())
                return (CLOSED, OPEN)
            if self.state is HALF_OPEN and lease is not None:
                if outcome == FAILURE:
                    self._move(OPEN, self.clock())
                    return (HALF_OPEN, OPEN)
                self.successes += 1
                if self.successes >= self.success_threshold:
                    self._move(CLOSED, self.clock())
                    return (HALF_OPEN, CLOSED)
            return None

    def peek(self) -> tuple[CircuitState, Change]:
        """The state now, making the OPEN -> HALF_OPEN transition if it is due."""
        with self.lock:
            if self.state is OPEN:
                now = self.clock()
                if now >= self.opened_at + self.recovery_timeout:
                    self._move(HALF_OPEN, now)
                    return HALF_OPEN, (OPEN, HALF_OPEN)
            return self.state, None

    def reset(self) -> Change:
        """Close the circuit (a new epoch: calls in flight no longer count)."""
        with self.lock:
            old = self.state
            self._move(CLOSED, self.clock())
            return None if old is CLOSED else (old, CLOSED)

    def retry_after(self) -> float:
        """Seconds until an OPEN circuit lets a probe through (0 when not OPEN)."""
        with self.lock:
            if self.state is not OPEN:
                return 0.0
            return max(0.0, self.opened_at + self.recovery_timeout - self.clock())

    def _move(self, state: CircuitState, now: float) -> None:
        """Enter ``state`` in a new epoch (under ``lock``)."""
        self.state = state
        self.epoch += 1
        self.failures = 0
        self.successes = 0
        self.leases.clear()
        if state is OPEN:
            self.opened_at = now
            self.opened_wall = time.time()
