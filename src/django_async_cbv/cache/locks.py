"""The key's lock while a leader runs, and how failed store calls are reported (internal)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from django_async_cbv._redis.health import health_of
from django_async_cbv._util import StoreError

from .plan import _Plan
from .store import Store


def _store_failed(plan: _Plan, exc: StoreError, consequence: str) -> None:
    """Record a failed call to the store and log it (at most once a second)."""
    health = health_of(plan.alias)
    health.failed(definitive=exc.definitive)
    health.log("Cache %r unavailable (%s); %s.", plan.alias, exc, consequence)


async def _take(store: Store, plan: _Plan, token: str, ttl: float) -> bool:
    """Take the key's lock (``store.lock``); True when taken.

    Cancelled while the store's answer is on its way (the client went away), it waits
    for that answer and releases a lock it took: left alone, a lock that nobody holds
    would hold up the key's requests, in every process, until it expired.
    """
    attempt = asyncio.ensure_future(store.lock(plan.lock_name, token, ttl))
    try:
        return await asyncio.shield(attempt)
    except asyncio.CancelledError:
        cleanup = asyncio.ensure_future(_release_if_taken(attempt, store, plan, token))
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            await cleanup
        raise


async def _release_if_taken(
    attempt: asyncio.Future[bool], store: Store, plan: _Plan, token: str
) -> None:
    try:
        taken = await attempt
    except StoreError:
        return
    if taken:
        await _unlock(store, plan, token)


@contextlib.asynccontextmanager
async def _held(store: Store, plan: _Plan, token: str, ttl: float) -> AsyncIterator[None]:
    """Keep the key's lock (``ttl`` seconds) alive while the block runs; release it after."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await store.extend(plan.lock_name, token, ttl)
            except StoreError:
                return  # it expires by itself; others then take over

    keeper = asyncio.ensure_future(keep())
    try:
        yield
    finally:
        keeper.cancel()
        # Shielded: a cancellation arriving now must not leave the lock behind.
        release = asyncio.ensure_future(_release(keeper, store, plan, token))
        try:
            await asyncio.shield(release)
        except asyncio.CancelledError:
            await release
            raise


async def _release(keeper: asyncio.Future[None], store: Store, plan: _Plan, token: str) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await keeper
    await _unlock(store, plan, token)


async def _unlock(store: Store, plan: _Plan, token: str) -> None:
    try:
        await store.unlock(plan.lock_name, token)
    except StoreError as exc:
        _store_failed(plan, exc, "a lock is left to expire")
