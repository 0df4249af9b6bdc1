"""Signals django-async-cbv sends.

``circuit_state_changed``
    A circuit breaker changed state. Sent with ``Signal.asend`` (so sync and async
    receivers both work) by the process that made the change, with
    ``sender=<the CircuitBreaker>``, ``old_state`` and ``new_state`` (both
    :class:`~django_async_cbv.CircuitState`). A receiver that raises does not
    break the call that caused the change: its error is logged on the
    ``django_async_cbv`` logger (``Signal.asend_robust`` semantics; every receiver
    runs), and the breaker's state is as if no receiver ran.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["circuit_state_changed"]

#: A circuit breaker changed state: sent with ``Signal.asend`` by the process that made
#: the change, with ``sender`` (the breaker), ``old_state`` and ``new_state``.
circuit_state_changed = Signal()
