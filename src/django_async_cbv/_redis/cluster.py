"""The library's commands on a Redis Cluster, per event loop (internal).

A cluster alias (django-redis with the connection factory of
:mod:`django_async_cbv.redis_cluster`) gets a :class:`ClusterBackend` per loop instead
of a single pool: a ``redis.asyncio.cluster.RedisCluster`` client, which owns the
cluster's topology (the slot table, read with ``CLUSTER SLOTS`` from the nodes it
knows), and, per primary and purpose, a :class:`~.channel.Channel` on a pool of that
node's connections.

:class:`ClusterChannel` offers what the blocks use of a channel (``execute``,
``evalsha``, ``eval``, ``transaction``), each routed by its first key: every command
of the library touches the keys of one hash slot (see docs/redis.md, "Key layout"), so
it goes, pipelined with the other commands of the loop turn, to the primary that
redis-py's slot table names for that slot.

When the cluster answers otherwise:

- ``MOVED`` (a slot handed over): the slot table is reloaded, once for all the
  commands that were on their way (unless it already names the new primary), and the
  command is sent again on its primary's channel: a burst of redirected commands
  shares that primary's connections as the others do.
- ``ASK`` (a slot migrating): the command is sent again, after ``ASKING``, on the
  channel of the node the reply names.
- ``ASK`` to a node redis-py does not know, or a second redirection: the command is
  sent again through ``RedisCluster.execute_command``, so redis-py follows the
  redirection (``ASKING`` included) and updates or reloads its slot table, which the
  next commands are routed by. A transaction is sent again once, on the fast path,
  after the slot table was reloaded.
- ``TRYAGAIN`` (a script naming keys of a migrating slot of which some have moved
  and some are missing: a cache lookup whose entry is missing, say) and
  ``CLUSTERDOWN`` go to the caller at once, which degrades as below (redis-py's
  retries would hold the request for up to a second); ``CLUSTERDOWN`` also reloads
  the slot table in the background.
- A connection error or timeout (a primary down): the slot table is reloaded in the
  background (one reload at a time) and the error goes to the caller, which degrades
  as it does for a single Redis (cache ``BYPASS``, rate limit per
  ``RATE_LIMIT_FAIL_OPEN``, breaker on its own state). Once the cluster has promoted a
  replica, the reloaded table routes to it.
- ``NOSCRIPT`` (a primary that never ran the script, or a promoted replica: scripts
  are not replicated) goes to the caller, which sends ``EVAL`` (see the stores).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from .channel import Channel
from .cluster_wire import is_moved, kind_of, node_kwargs, node_url

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    from .config import RedisSpec

__all__ = ["ClusterBackend", "ClusterChannel"]

logger = logging.getLogger("django_async_cbv")

#: Seconds between two background reloads of the slot table (while commands fail).
RELOAD_INTERVAL: Final = 0.25


class ClusterBackend:
    """One loop's cluster client for one alias, with its per-node pools and channels."""

    def __init__(self, spec: RedisSpec) -> None:
        from redis.asyncio.cluster import RedisCluster

        self.spec = spec
        self.cluster: RedisCluster = RedisCluster.from_url(spec.url, **spec.kwargs)
        self.pools: dict[str, ConnectionPool] = {}
        self.node_channels: dict[tuple[str, str], Channel] = {}
        self.channels: dict[str, ClusterChannel] = {}
        self._ready = False
        self._loading: asyncio.Task[None] | None = None
        self._loaded_at = float("-inf")  # loop time of the last reload's end
        self._again = False  # reload once more when the running reload ends
        self._later: asyncio.TimerHandle | None = None  # a reload waiting for its turn
        self._closed = False

    def channel(self, purpose: str) -> ClusterChannel:
        """The loop's channel to the cluster for ``purpose``."""
        channel = self.channels.get(purpose)
        if channel is None:
            channel = self.channels[purpose] = ClusterChannel(self, purpose)
        return channel

    def node_channel(self, node: ClusterNode, purpose: str) -> Channel:
        """The channel to primary ``node`` for ``purpose`` (on that node's pool)."""
        key = (node.name, purpose)
        channel = self.node_channels.get(key)
        if channel is None:
            pool = self.pools.get(node.name)
            if pool is None:
                url = node_url(self.spec.url, node.host, int(node.port))
                pool = self.pools[node.name] = self.spec.pool_class.from_url(
                    url, **node_kwargs(self.spec.kwargs)
                )
            channel = self.node_channels[key] = Channel(
                pool,
                self.spec.socket_timeout,
                f"{self.spec.alias}/{node.name}/{purpose}",
                self.spec.connect_timeout,
            )
        return channel

    @property
    def is_ready(self) -> bool:
        """Whether the slot table was loaded once (commands can be routed)."""
        return self._ready

    async def ready(self) -> None:
        """Wait for the first load of the slot table (raises redis-py's error if it fails)."""
        if not self._ready:
            await self.reload()

    async def reload(self) -> None:
        """Reload the slot table from the cluster; concurrent callers share one reload."""
        if self._loading is None:
            self._reload_now()
        task = self._loading
        if task is None:  # closed
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError(f"The cluster client of {self.spec.alias!r} is closed.")
        await asyncio.shield(task)

    def _address(self, redirect: BaseException) -> tuple[str, int]:
        """The node a ``MOVED`` or ``ASK`` reply points to (remapped as redis-py would)."""
        host, _, port = str(redirect).rsplit(" ", 1)[-1].rpartition(":")
        remap = getattr(self.cluster.nodes_manager, "remap_host_port", None)
        host, number = remap(host, int(port)) if remap is not None else (host, int(port))
        return host, int(number)

    def node_at(self, redirect: BaseException) -> ClusterNode | None:
        """The known node a ``MOVED`` or ``ASK`` reply points to, if any."""
        host, port = self._address(redirect)
        node: ClusterNode | None = self.cluster.nodes_manager.get_node(host=host, port=port)
        return node

    async def follow_moved(self, key: str, moved: BaseException) -> None:
        """Reload the slot table unless it already names the primary ``moved`` (a
        ``MOVED`` reply for ``key``) points to; concurrent callers share one reload."""
        node = self.primary_for(key)
        if (node.host, int(node.port)) != self._address(moved):
            await self.reload()

    def reload_soon(self) -> None:
        """Reload the slot table in the background, at most one reload every
        :data:`RELOAD_INTERVAL` seconds however many commands fail; a failure during a
        reload (which may have read the table before a failover ended), or too soon
        after one, gets a reload of its own once its turn comes."""
        if self._closed or self._later is not None:
            return
        if self._loading is not None:
            self._again = True
            return
        loop = asyncio.get_running_loop()
        wait = self._loaded_at + RELOAD_INTERVAL - loop.time()
        if wait > 0:
            self._later = loop.call_later(wait, self._reload_now)
        else:
            self._reload_now()

    def _reload_now(self) -> None:
        self._later = None
        if self._loading is None and not self._closed:
            task = self._loading = asyncio.ensure_future(self._load())
            task.add_done_callback(self._loaded)

    async def _load(self) -> None:
        bound = self.spec.connect_timeout + self.spec.socket_timeout
        async with asyncio.timeout(bound * 3):  # a few nodes tried, each within its timeouts
            if self._ready:
                await self.cluster.nodes_manager.initialize()
            else:  # the client's own first initialisation (its command parser too)
                await self.cluster.initialize()
        self._ready = True

    def _loaded(self, task: asyncio.Task[None]) -> None:
        self._loading = None
        self._loaded_at = task.get_loop().time()
        if not task.cancelled() and task.exception() is not None:
            logger.debug("Redis Cluster %r: reloading the slots failed", self.spec.alias)
        if self._again and not self._closed:
            self._again = False
            self.reload_soon()

    def primary_for(self, key: str) -> ClusterNode:
        """The primary serving ``key``'s slot, per redis-py's slot table."""
        node = self.cluster.get_node_from_key(key)
        assert node is not None
        return node

    async def aclose(self) -> None:
        self._closed = True
        if self._later is not None:
            self._later.cancel()
            self._later = None
        loading = self._loading
        if loading is not None:
            loading.cancel()
            with contextlib.suppress(BaseException):
                await loading
        await asyncio.gather(
            *(channel.aclose() for channel in self.node_channels.values()),
            return_exceptions=True,
        )
        for pool in self.pools.values():
            with contextlib.suppress(Exception):
                await pool.aclose()
        with contextlib.suppress(Exception):
            await self.cluster.aclose()


class ClusterChannel:
    """The commands of one purpose on a cluster, each to the primary of its key's slot.

    Each method returns a future, as :class:`~.channel.Channel`'s do: once the slot
    table is loaded, a command is handed to its primary's channel at once, and only a
    failure takes a coroutine (``_recover``).
    """

    def __init__(self, backend: ClusterBackend, purpose: str) -> None:
        self.backend = backend
        self.purpose = purpose
        self.loop = asyncio.get_running_loop()

    def __repr__(self) -> str:
        return f"<ClusterChannel {self.backend.spec.alias}/{self.purpose}>"

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Send one command whose first argument after the name is its key."""
        return self._submit(args[1], lambda channel: channel.execute(*args), args)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> asyncio.Future[Any]:
        """``EVALSHA``; fails with redis-py's NoScriptError when the primary lacks it."""
        command = ("EVALSHA", sha, numkeys, *keys_and_args)
        return self._submit(keys_and_args[0], lambda channel: channel.execute(*command), command)

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> asyncio.Future[Any]:
        """``EVAL`` (which also caches the script on that primary)."""
        command = ("EVAL", script, numkeys, *keys_and_args)
        return self._submit(keys_and_args[0], lambda channel: channel.execute(*command), command)

    def transaction(self, commands: Sequence[tuple[Any, ...]]) -> asyncio.Future[Any]:
        """``MULTI``, ``commands`` (keys of one slot), ``EXEC``; resolves to EXEC's replies."""
        return self._submit(commands[0][1], lambda channel: channel.transaction(commands), None)

    def _submit(
        self, key: Any, send: _Send, command: tuple[Any, ...] | None
    ) -> asyncio.Future[Any]:
        backend = self.backend
        if backend.is_ready:
            try:
                channel = backend.node_channel(backend.primary_for(str(key)), self.purpose)
            except Exception:  # a slot not covered: the slow path says what to do
                pass
            else:
                inner = send(channel)
                outer = self.loop.create_future()
                inner.add_done_callback(
                    functools.partial(self._answered, outer, str(key), send, command)
                )
                outer.add_done_callback(functools.partial(_forward_cancel, inner))
                return outer
        return asyncio.ensure_future(self._recover(None, str(key), send, command))

    def _answered(
        self,
        outer: asyncio.Future[Any],
        key: str,
        send: _Send,
        command: tuple[Any, ...] | None,
        inner: asyncio.Future[Any],
    ) -> None:
        if outer.done():  # the caller gave up
            return
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is None:
            outer.set_result(inner.result())
            return
        kind = kind_of(exc)
        if kind == "redirect":
            task = asyncio.ensure_future(self._recover(exc, key, send, command))
            task.add_done_callback(functools.partial(_chain, outer))
            return
        if kind == "lost":
            self.backend.reload_soon()  # a primary may be down: learn of its replacement
        outer.set_exception(exc)

    async def _recover(
        self,
        redirect: BaseException | None,
        key: str,
        send: _Send,
        command: tuple[Any, ...] | None,
    ) -> Any:
        """The slow path: the first load of the slot table, a redirection to follow."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import RedisError

        backend = self.backend
        try:
            if redirect is None:
                await backend.ready()
                channel = backend.node_channel(backend.primary_for(key), self.purpose)
                try:
                    return await send(channel)
                except Exception as exc:
                    if kind_of(exc) != "redirect":
                        raise
                    redirect = exc
            if command is None:
                await backend.reload()
            elif not is_moved(redirect):
                # ASK: this command alone goes to the node importing the slot.
                node = backend.node_at(redirect)
                if node is not None:
                    try:
                        return await backend.node_channel(node, self.purpose).asking(*command)
                    except Exception as exc:
                        if kind_of(exc) != "redirect":
                            raise
            else:
                # The slot has a new primary: one reload for the whole burst, then the
                # command goes on that primary's channel with the others.
                await backend.follow_moved(key, redirect)
            if command is None or is_moved(redirect):
                channel = backend.node_channel(backend.primary_for(key), self.purpose)
                try:
                    return await send(channel)
                except Exception as exc:
                    if command is None or kind_of(exc) != "redirect":
                        raise
            # redis-py follows MOVED/ASK and updates its slot table (the next commands'
            # routes).
            return await backend.cluster.execute_command(*command)
        except Exception as exc:
            kind = kind_of(exc)
            if kind == "lost":
                backend.reload_soon()
            if isinstance(exc, RedisError):
                raise
            # redis-py's cluster exceptions (no node reachable, a slot not covered: the
            # slot table is older than a failover's end) and a reload that ran out of
            # time: to the callers, the store is unreachable.
            backend.reload_soon()
            raise RedisConnectionError(f"{self}: {type(exc).__name__}: {exc}") from exc


_Send = Callable[[Channel], "asyncio.Future[Any]"]


def _forward_cancel(inner: asyncio.Future[Any], outer: asyncio.Future[Any]) -> None:
    if outer.cancelled():
        inner.cancel()  # the channel skips a command whose caller gave up


def _chain(outer: asyncio.Future[Any], task: asyncio.Future[Any]) -> None:
    if outer.done():
        if not task.cancelled():
            task.exception()  # retrieved: the caller gave up
        return
    if task.cancelled():
        outer.cancel()
    elif (exc := task.exception()) is not None:
        outer.set_exception(exc)
    else:
        outer.set_result(task.result())
