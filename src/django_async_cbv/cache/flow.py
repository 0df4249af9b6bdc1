"""How the cache stage answers: lookups, coalescing, locks and storing (internal)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import secrets
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_cache_control, set_response_etag
from django.utils.http import quote_etag

from django_async_cbv._redis.health import health_of
from django_async_cbv._util import StoreError
from django_async_cbv.stages import CallNext

from .entry import Entry
from .freshness import Freshness
from .headers import PER_REQUEST_HEADERS, SAFE_METHODS, UNSAFE_METHODS, X_CACHE, _vary_names
from .locks import _held, _store_failed, _take
from .plan import _authenticated, _Plan, _same_variant
from .policy import _PRECONDITIONS, _answer, _evaluated_live, _mark
from .store import Store, store_for

#: Seconds a leader may hold a key's lock before another request may take over.
LOCK_TIMEOUT: Final = 10.0
#: Longest pause between two looks at a key another process is computing.
_POLL_MAX: Final = 0.1

_RELEAD: Final = object()  # a flight's outcome when its leader was cancelled
#: Longest time a URL whose answer could not be stored skips coalescing.
_PASS_TTL: Final = 10.0
_DEFAULT_WAIT: Final = 30.0  # seconds a waiter allows a leader of a view without timeout


# Learned Vary names per URL, per process: a hint that saves the second round trip.
_KNOWN_VARY_MAX = 10_000
_known_vary: dict[str, tuple[str, ...]] = {}

#: Seconds a leader's followers allow it beyond its own wait for another's lock.
_GRACE: Final = 1.0


@dataclass(eq=False)
class _Flight:
    """One leader's run in this process: its outcome, and how long followers wait."""

    future: asyncio.Future[object]
    deadline: float  # time.monotonic() past which followers stop waiting (the leader moves it)


async def _follow(flight: _Flight) -> object:
    """The leader's outcome; TimeoutError once its deadline has passed unmet."""
    while (remaining := flight.deadline - time.monotonic()) > 0:
        try:
            return await asyncio.wait_for(asyncio.shield(flight.future), remaining)
        except TimeoutError:
            continue  # the leader may have moved its deadline (its handler started)
    if flight.future.done():
        return flight.future.result()
    raise TimeoutError


# In-process coalescing: one flight per event loop and key, set by the leader.
_flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _Flight]] = (
    weakref.WeakKeyDictionary()
)


def _remember_vary(name: str, vary: tuple[str, ...]) -> None:
    if name not in _known_vary and len(_known_vary) >= _KNOWN_VARY_MAX:
        _known_vary.pop(next(iter(_known_vary)))
    _known_vary[name] = vary


def _loop_flights() -> dict[tuple[str, str], _Flight]:
    loop = asyncio.get_running_loop()
    flights = _flights.get(loop)
    if flights is None:
        flights = _flights[loop] = {}
    return flights


@dataclass
class _Found:
    entry: Entry | None
    generation: str
    passing: bool


class _CacheFlow:
    """The cache stage's work, a base of ``AsyncCacheMixin`` (see ``cache_stage``)."""

    if TYPE_CHECKING:

        async def _plan(self, request: HttpRequest) -> _Plan: ...

        async def _storable(
            self,
            request: HttpRequest,
            response: HttpResponseBase,
            plan: _Plan,
            touched: bool,
            now: float,
        ) -> Freshness | None: ...

        async def _invalidate_after_write(self) -> None: ...

        async def _answers_per_user(self) -> bool: ...

    async def _serve(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        """The body of ``cache_stage``."""
        method = (request.method or "").upper()
        if method not in SAFE_METHODS:
            # Asked before the handler runs, as for a read: a hook that fails must not
            # turn a write that was made into an error.
            private = await self._answers_per_user()
            response = await call_next(request)
            if method in UNSAFE_METHODS and response.status_code < 400:
                await self._invalidate_after_write()
            response.headers[X_CACHE] = "BYPASS"
            if private:
                patch_cache_control(response, private=True)  # every response, as documented
            return response
        plan = await self._plan(request)
        if not plan.per_user and (_authenticated(request) or "HTTP_AUTHORIZATION" in request.META):
            return _mark(await call_next(request), "BYPASS", plan)
        store = store_for(plan.alias)
        health = health_of(plan.alias)
        if health.should_skip():
            health.log("Cache %r is down; serving uncached.", plan.alias)
            return _mark(await call_next(request), "BYPASS", plan)
        try:
            found = await self._find(store, request, plan)
        except StoreError as exc:
            _store_failed(plan, exc, "serving uncached")
            return _mark(await call_next(request), "BYPASS", plan)
        health.succeeded()
        now = time.time()
        head = method == "HEAD"
        entry = found.entry
        if entry is not None and now < entry.fresh_until:
            return _answer(request, entry, "HIT", plan, now, head=head)
        if head:
            return _mark(await call_next(request), "MISS", plan)
        if entry is not None and not entry.revalidate and now < entry.fresh_until + plan.stale_ttl:
            token = secrets.token_hex(16)
            try:
                leading = await _take(store, plan, token, LOCK_TIMEOUT)
            except StoreError as exc:
                _store_failed(plan, exc, "serving the stale entry")
                leading = False
            if not leading:
                return _answer(request, entry, "STALE", plan, now, head=False)
            async with _held(store, plan, token, LOCK_TIMEOUT):
                response, _ = await self._run_and_store(
                    request, call_next, plan, store, found.generation
                )
            return response
        if found.passing:
            # The URL's last answer could not be stored: no coalescing, each runs.
            response, _ = await self._run_and_store(
                request, call_next, plan, store, found.generation
            )
            return response
        return await self._coalesce(request, call_next, plan, store, found.generation)

    async def _find(self, store: Store, request: HttpRequest, plan: _Plan) -> _Found:
        """The valid entry for the request (or None), the generation and the Vary names."""
        memo_key = f"{plan.alias}:{plan.vary_name}"
        known = _known_vary.get(memo_key, ())
        look = await store.lookup(
            plan.gen_name, plan.vary_name, plan.entry_name(request, known), plan.pass_name
        )
        vary = look.vary if look.vary is not None else ()
        entry = look.entry
        if vary != known:
            _remember_vary(memo_key, vary)
            entry = await store.get_entry(plan.entry_name(request, vary))
        if entry is not None and (entry.generation != look.generation or entry.vary != vary):
            entry = None
        return _Found(entry, look.generation, look.passing)

    async def _find_fresh(self, store: Store, request: HttpRequest, plan: _Plan) -> _Found:
        """:meth:`_find`, a stale entry counting as none."""
        found = await self._find(store, request, plan)
        if found.entry is not None and time.time() >= found.entry.fresh_until:
            found.entry = None
        return found

    def _wait_bound(self) -> float:
        """Longest wait for one leader: the view's ``timeout`` (30 s without one) plus
        ``LOCK_TIMEOUT``."""
        handler_timeout = getattr(self, "get_timeout", lambda: None)()
        return float(handler_timeout or _DEFAULT_WAIT) + LOCK_TIMEOUT

    async def _coalesce(
        self,
        request: HttpRequest,
        call_next: CallNext,
        plan: _Plan,
        store: Store,
        generation: str,
    ) -> HttpResponseBase:
        """Run the handler once for all concurrent requests of one key."""
        flights = _loop_flights()
        flight_key = (plan.alias, f"{plan.lock_name}:{generation}")
        patient = True
        while (flight := flights.get(flight_key)) is not None:
            try:
                outcome = await _follow(flight)
            except TimeoutError:
                # The leader is hung: stop following it. This request leads instead,
                # without waiting for the lock the hung leader holds, and the others
                # that waited for the hung leader follow this one.
                if flights.get(flight_key) is flight:
                    del flights[flight_key]
                if not flight.future.done():
                    flight.future.set_result(_RELEAD)
                patient = False
                break
            if outcome is _RELEAD:
                continue  # the leader was cancelled: the first waiter here leads instead
            if isinstance(outcome, Entry) and _same_variant(request, plan, outcome):
                return _answer(request, outcome, "HIT", plan, time.time(), head=False)
            response, _ = await self._run_and_store(request, call_next, plan, store, generation)
            return response
        bound = self._wait_bound()
        flight = _Flight(
            asyncio.get_running_loop().create_future(), time.monotonic() + bound + _GRACE
        )
        flights[flight_key] = flight
        result: object = None
        token = secrets.token_hex(16)
        try:
            async with contextlib.AsyncExitStack() as lock:
                try:
                    if await _take(store, plan, token, LOCK_TIMEOUT):
                        await lock.enter_async_context(_held(store, plan, token, LOCK_TIMEOUT))
                        # The key may have been filled between this request's look and
                        # its lock (by a leader that has finished since): look again.
                        found = await self._find_fresh(store, request, plan)
                    elif patient:
                        found = await self._wait_for_other(request, plan, store, token, lock)
                    else:
                        found = _Found(None, generation, False)
                except StoreError as exc:
                    _store_failed(plan, exc, "serving uncached")
                    return _mark(await call_next(request), "BYPASS", plan)
                if found.entry is not None:
                    result = found.entry
                    return _answer(request, found.entry, "HIT", plan, time.time(), head=False)
                # Followers give the handler the same bound from its start.
                flight.deadline = time.monotonic() + bound
                response, result = await self._run_and_store(
                    request, call_next, plan, store, generation, leading=True
                )
                return response
        except asyncio.CancelledError:
            result = _RELEAD  # the client went away: a waiting request takes over
            raise
        finally:
            if not flight.future.done():
                flight.future.set_result(result)
            if flights.get(flight_key) is flight:
                del flights[flight_key]

    async def _wait_for_other(
        self,
        request: HttpRequest,
        plan: _Plan,
        store: Store,
        token: str,
        lock: contextlib.AsyncExitStack,
    ) -> _Found:
        """Another request (maybe in another process) holds the key's lock.

        Poll, with a pause doubling up to 0.1 s, until its entry appears, or the URL is
        marked as not storable (then run without waiting), or its lock is gone and
        this request takes it (the lock then joins ``lock``). A live leader keeps its
        lock; a dead one's lock expires within ``LOCK_TIMEOUT``. The wait is bounded
        all the same, by :meth:`_wait_bound`; past that the handler runs without the
        lock.
        """
        deadline = time.monotonic() + self._wait_bound()
        pause = 0.005
        found = _Found(None, "", False)
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)
            found = await self._find_fresh(store, request, plan)
            if found.entry is not None or found.passing:
                return found
            if await _take(store, plan, token, LOCK_TIMEOUT):
                await lock.enter_async_context(_held(store, plan, token, LOCK_TIMEOUT))
                return await self._find_fresh(store, request, plan)
        return _Found(None, found.generation, False)

    async def _run_and_store(
        self,
        request: HttpRequest,
        call_next: CallNext,
        plan: _Plan,
        store: Store,
        generation: str,
        *,
        leading: bool = False,
    ) -> tuple[HttpResponseBase, Entry | None]:
        """Run the rest of the stages; store the response when the rules allow it.

        ``leading``: this request holds the key's lock, so an answer that cannot be
        stored marks the URL as such for a while (requests for it then run at once,
        instead of queueing behind each other's locks).
        """
        session = getattr(request, "session", None)
        accessed_before = bool(getattr(session, "accessed", False))
        if session is not None:
            session.accessed = False
        # The handler makes the full answer, which is stored; the request's own
        # preconditions (a client revalidating its copy) are evaluated against it,
        # as on a hit. A handler that answered them itself (a 304) would leave the
        # entry empty for as long as clients revalidate.
        preconditions: dict[str, object] = {
            name: request.META.pop(name) for name in _PRECONDITIONS if name in request.META
        }
        # ``request.headers`` is a copy of META made once: one an earlier stage or a
        # middleware made still has them. The handler gets a new one.
        headers = request.__dict__.pop("headers", None) if preconditions else None
        try:
            response = await call_next(request)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                await sync_to_async(response.render)()
        finally:
            request.META.update(preconditions)
            if preconditions:
                request.__dict__.pop("headers", None)
                if headers is not None:
                    request.__dict__["headers"] = headers
            touched = bool(getattr(session, "accessed", False))
            if session is not None:
                session.accessed = accessed_before or touched
        now = time.time()
        fresh = await self._storable(request, response, plan, touched, now)
        if fresh is None:
            if leading:
                try:
                    await store.mark_pass(plan.pass_name, generation, min(plan.timeout, _PASS_TTL))
                except StoreError as exc:
                    _store_failed(plan, exc, "the answer was not stored")
            return _mark(_evaluated_live(request, response), "MISS", plan), None
        assert isinstance(response, HttpResponse)
        ttl = fresh.ttl
        body = response.content
        if "ETag" not in response.headers:
            _set_etag(response)
        vary = tuple(_vary_names(response))
        name = plan.entry_name(request, vary)
        entry = Entry(
            name=name,
            status=response.status_code,
            reason=response.reason_phrase,
            headers=[
                (header, value)
                for header, value in response.headers.items()
                if header.lower() not in PER_REQUEST_HEADERS
            ],
            body=body,
            etag=response.headers["ETag"],
            # When it was made, not received: a hit's Age includes the age it came with.
            stored_at=now - fresh.age,
            fresh_until=now + ttl,
            generation=generation,
            vary=vary,
            revalidate=fresh.revalidate,
        )
        keep = ttl if fresh.revalidate else ttl + plan.stale_ttl
        try:
            await store.store(name, entry, plan.vary_name, vary, keep, plan.pass_name)
        except StoreError as exc:
            _store_failed(plan, exc, "response not stored")
            return _mark(_evaluated_live(request, response), "BYPASS", plan), None
        _remember_vary(f"{plan.alias}:{plan.vary_name}", vary)
        if "Cache-Control" not in response.headers:
            # Its life with the age it has (RFC 9111: what is left is max-age minus Age).
            response.headers["Cache-Control"] = f"max-age={math.floor(ttl + fresh.age)}"
        return _mark(_evaluated_live(request, response), "MISS", plan), entry


def _set_etag(response: HttpResponse) -> None:
    """A strong ETag from the body: Django's, which gives none to an empty body."""
    set_response_etag(response)
    if "ETag" not in response.headers:
        response.headers["ETag"] = quote_etag(hashlib.md5(b"", usedforsecurity=False).hexdigest())
