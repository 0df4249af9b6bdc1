"""The stores: one cache alias as the stage uses it, on Redis or any Django cache."""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_async_cbv import _redis
from django_async_cbv._redis.health import health_of
from django_async_cbv._util import StoreError, lua_script, redis_call, script_sha

from .entry import Entry, _load_entry

if TYPE_CHECKING:
    from django_async_cbv._redis import AnyChannel


# One round trip for a lookup: the generation (created at a random value when
# missing), the URL's learned Vary names and the candidate entry.
_LOOKUP = lua_script("django_async_cbv.cache", "lua/lookup.lua")
_RELEASE = lua_script("django_async_cbv.cache", "lua/release.lua")
_EXTEND = lua_script("django_async_cbv.cache", "lua/extend.lua")
# A script, not SET NX: taking the lock must be idempotent, since a command whose
# connection broke before its reply arrived is sent once more (see _redis.channel).
_LOCK = lua_script("django_async_cbv.cache", "lua/lock.lua")
_SHAS = {source: script_sha(source) for source in (_LOOKUP, _RELEASE, _EXTEND, _LOCK)}


def _new_generation() -> int:
    # Unique, not secret: a fresh random start whenever the key is (re)created.
    return random.getrandbits(62) + 1


def set_generation(alias: str, name: str) -> None:
    """Give the view whose generation key is ``name`` a new generation (sync).

    Raises the backend's own error when the cache cannot be reached: django-redis
    with ``IGNORE_EXCEPTIONS`` would swallow it in ``cache.set()``, and an
    invalidation that did not happen must not pass for one that did, so its
    client (which raises) is called instead.
    """
    cache: Any = caches[alias]
    value = _new_generation()
    if not (getattr(cache, "_ignore_exceptions", False) and _is_django_redis(cache)):
        cache.set(name, value, timeout=None)
        return
    from django_redis.exceptions import (  # type: ignore[import-untyped,unused-ignore]
        ConnectionInterrupted,
    )

    try:
        cache.client.set(name, value, timeout=None)
    except ConnectionInterrupted as exc:
        raise (exc.__cause__ or exc) from None


def _is_django_redis(cache: object) -> bool:
    """Whether ``cache`` is django-redis's backend (not a fork with the same flag)."""
    try:
        from django_redis.cache import RedisCache  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return False
    return isinstance(cache, RedisCache)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or value is False:
        return None
    return str(value)


def _encode_vary(names: Iterable[str]) -> str:
    return json.dumps(list(names), separators=(",", ":"))


def _decode_vary(value: object) -> tuple[str, ...] | None:
    text = _text(value)
    if text is None:
        return None
    try:
        names = json.loads(text)
    except ValueError:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return tuple(names)


@dataclass
class Lookup:
    """What one look at the cache found (raw: the caller checks the entry)."""

    generation: str
    vary: tuple[str, ...] | None  # None: nothing learned for this URL yet
    entry: Entry | None
    passing: bool = False  # the URL's last answer could not be stored (see mark_pass)


class Store:
    """One cache alias, as the stage uses it. Names are made into keys by the store."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    async def lookup(
        self, gen_name: str, vary_name: str, entry_name: str, pass_name: str
    ) -> Lookup:
        raise NotImplementedError

    async def mark_pass(self, name: str, generation: str, ttl: float) -> None:
        raise NotImplementedError

    async def get_entry(self, name: str) -> Entry | None:
        raise NotImplementedError

    async def store(
        self,
        name: str,
        entry: Entry,
        vary_name: str,
        vary: tuple[str, ...],
        ttl: float,
        pass_name: str,
    ) -> None:
        """Store ``entry`` and the URL's Vary names; end the URL's mark (see mark_pass)."""
        raise NotImplementedError

    async def lock(self, name: str, token: str, ttl: float) -> bool:
        raise NotImplementedError

    async def unlock(self, name: str, token: str) -> None:
        raise NotImplementedError

    async def extend(self, name: str, token: str, ttl: float) -> None:
        raise NotImplementedError

    async def bump(self, gen_name: str) -> None:
        raise NotImplementedError


class RedisStore(Store):
    """Redis through the library's channel for the cache (django-redis or Django's RedisCache)."""

    def key(self, name: str) -> str:
        return str(_make_key(self.alias)(name))

    def channel(self) -> AnyChannel:
        try:
            channel = _redis.channel_for(self.alias, "cache")
        except _redis.RedisConfigError as exc:
            # Reported by the E015 check; at request time the cache is as good as down.
            health_of(self.alias).log("%s", exc, level=logging.ERROR)
            raise StoreError(str(exc), definitive=True) from exc
        if channel is None:
            raise StoreError(f"The cache {self.alias!r} is no longer Redis.")
        return channel

    async def _script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        channel = self.channel()
        try:
            return await channel.evalsha(_SHAS[source], len(keys), *keys, *args)
        except NoScriptError:
            return await channel.eval(source, len(keys), *keys, *args)

    async def _execute(self, *args: Any) -> Any:
        return await self.channel().execute(*args)

    async def _transaction(self, commands: list[tuple[Any, ...]]) -> Any:
        return await self.channel().transaction(commands)

    async def lookup(
        self, gen_name: str, vary_name: str, entry_name: str, pass_name: str
    ) -> Lookup:
        keys = [self.key(n) for n in (gen_name, vary_name, entry_name, pass_name)]
        reply = await redis_call(self._script(_LOOKUP, keys, [_new_generation()]))
        generation = _text(reply[0]) or ""
        return Lookup(
            generation,
            _decode_vary(reply[1]),
            _load_entry(reply[2]),
            passing=_text(reply[3]) == generation,
        )

    async def mark_pass(self, name: str, generation: str, ttl: float) -> None:
        ms = max(1, math.ceil(ttl * 1000))
        await redis_call(self._execute("SET", self.key(name), generation, "PX", ms))

    async def get_entry(self, name: str) -> Entry | None:
        return _load_entry(await redis_call(self._execute("GET", self.key(name))))

    async def store(
        self,
        name: str,
        entry: Entry,
        vary_name: str,
        vary: tuple[str, ...],
        ttl: float,
        pass_name: str,
    ) -> None:
        ms = max(1, math.ceil(ttl * 1000))
        commands = [
            ("SET", self.key(vary_name), _encode_vary(vary), "PX", ms),
            ("SET", self.key(name), entry.dumps(), "PX", ms),
            ("DEL", self.key(pass_name)),
        ]
        await redis_call(self._transaction(commands))

    async def lock(self, name: str, token: str, ttl: float) -> bool:
        ms = max(1, math.ceil(ttl * 1000))
        reply = await redis_call(self._script(_LOCK, [self.key(name)], [token, ms]))
        return bool(reply)

    async def unlock(self, name: str, token: str) -> None:
        await redis_call(self._script(_RELEASE, [self.key(name)], [token]))

    async def extend(self, name: str, token: str, ttl: float) -> None:
        ms = max(1, math.ceil(ttl * 1000))
        await redis_call(self._script(_EXTEND, [self.key(name)], [token, ms]))

    async def bump(self, gen_name: str) -> None:
        await redis_call(self._execute("SET", self.key(gen_name), _new_generation()))


class DjangoStore(Store):
    """Any other backend, through Django's ``a*`` cache methods."""

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(caches[self.alias], method)(*args, **kwargs)
        except Exception as exc:
            raise StoreError.from_exception(exc) from exc

    async def lookup(
        self, gen_name: str, vary_name: str, entry_name: str, pass_name: str
    ) -> Lookup:
        found = await self._call("aget_many", [gen_name, vary_name, entry_name, pass_name])
        generation = found.get(gen_name)
        if generation is None:
            await self._call("aadd", gen_name, _new_generation(), timeout=None)
            generation = await self._call("aget", gen_name)
        text = _text(generation) or ""
        return Lookup(
            text,
            _decode_vary(found.get(vary_name)),
            _load_entry(found.get(entry_name)),
            passing=_text(found.get(pass_name)) == text,
        )

    async def mark_pass(self, name: str, generation: str, ttl: float) -> None:
        await self._call("aset", name, generation, timeout=ttl)

    async def get_entry(self, name: str) -> Entry | None:
        return _load_entry(await self._call("aget", name))

    async def store(
        self,
        name: str,
        entry: Entry,
        vary_name: str,
        vary: tuple[str, ...],
        ttl: float,
        pass_name: str,
    ) -> None:
        await self._call(
            "aset_many", {vary_name: _encode_vary(vary), name: entry.dumps()}, timeout=ttl
        )
        await self._call("adelete", pass_name)

    async def lock(self, name: str, token: str, ttl: float) -> bool:
        return bool(await self._call("aadd", name, token, timeout=ttl))

    async def unlock(self, name: str, token: str) -> None:
        if await self._call("aget", name) == token:
            await self._call("adelete", name)

    async def extend(self, name: str, token: str, ttl: float) -> None:
        if await self._call("aget", name) == token:
            await self._call("atouch", name, ttl)

    async def bump(self, gen_name: str) -> None:
        try:
            await sync_to_async(set_generation)(self.alias, gen_name)
        except Exception as exc:
            raise StoreError.from_exception(exc) from exc


def store_for(alias: str) -> Store:
    """The store for ``alias``: direct Redis when possible, else Django's a* methods."""
    try:
        is_redis = _redis.is_redis_alias(alias)
    except _redis.RedisConfigError:
        is_redis = True  # its calls fail as StoreError, logged (see RedisStore.channel)
    if is_redis:
        return RedisStore(alias)
    return DjangoStore(alias)


# The alias's make_key (a function of its settings only), until CACHES changes.
_make_keys: dict[str, Callable[[str], str]] = {}


def _make_key(alias: str) -> Callable[[str], str]:
    make_key = _make_keys.get(alias)
    if make_key is None:
        make_key = _make_keys[alias] = caches[alias].make_key
    return make_key


@receiver(setting_changed)
def _forget_make_keys(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        _make_keys.clear()
