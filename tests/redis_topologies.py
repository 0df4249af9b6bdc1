"""Redis topologies for the connection tests: replicas, Sentinel, a trickling proxy.

Standard library and redis-py only (``trustme`` for TLS, in ``tests/redis_server.py``).
Every wait is a poll of the servers with a deadline, never a bare sleep.

:class:`ReplicatedPair`
    A primary and a replica (``--replicaof``); ``start()`` returns once the replica
    reports ``master_link_status:up`` and the primary counts it.
:class:`SentinelGroup`
    A :class:`ReplicatedPair` watched by one (or three) Sentinels under the name
    ``mymaster``, with ``down-after-milliseconds`` 500 and ``failover-timeout``
    2000, so a failover takes a second or two. ``start()`` returns once every
    Sentinel reports the primary and knows the replica. ``kill_master()`` ends
    the primary with SIGKILL; ``wait_for_failover()`` returns the new primary's
    ``(host, port)`` once every Sentinel's ``SENTINEL MASTER`` names it (the
    failover has ended) and it says ``role:master``.
    ``sentinels`` lists ``("127.0.0.1", port)`` pairs, as django-redis's
    ``SENTINELS`` option takes them.
:class:`TrickleProxy`
    A TCP proxy on loopback in front of a Redis server (two threads per
    connection). Bytes flow both ways at full speed until ``trickle = True``;
    from then on server-to-client bytes are sent ``chunk`` bytes every
    ``interval`` seconds (64 bytes every 20 ms by default: about 3 KiB/s), so
    large replies keep arriving, slowly. ``stop()`` closes every connection.

The fixtures that start these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import redis

from tests.redis_server import RedisServer, RedisStartError

__all__ = ["ReplicatedPair", "SentinelGroup", "TrickleProxy", "wait_until"]

T = TypeVar("T")

SERVICE = "mymaster"


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.02, what: str
) -> T:
    """Poll ``probe`` until it returns something other than None (or False); return it.

    Redis errors while polling count as "not yet". Raises RedisStartError with
    ``what`` and the last error after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
        except (redis.RedisError, OSError) as exc:
            last_error, result = exc, None
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise RedisStartError(f"{what}: not within {timeout:g}s{detail}")
        # Pacing of the poll, not synchronisation: the deadline above bounds it.
        time.sleep(interval)


def client_for(port: int, **kwargs: Any) -> redis.Redis:
    """A blocking redis-py client for ``127.0.0.1:port`` with short timeouts."""
    return redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=2, socket_timeout=2, **kwargs
    )


def _info(port: int, section: str) -> dict[str, Any]:
    client = client_for(port)
    try:
        return dict(client.info(section))
    finally:
        client.close()


class ReplicatedPair:
    """A primary and one replica of it, on loopback."""

    def __init__(self, *, timeout: float = 15.0) -> None:
        self.timeout = timeout
        # No 5 s wait before a diskless full sync: the replica syncs at once.
        self.primary = RedisServer(args=["--repl-diskless-sync-delay", "0"])
        self.replica: RedisServer | None = None

    def start(self) -> ReplicatedPair:
        try:
            self.primary.start()
            assert self.primary.port is not None
            self.replica = RedisServer(
                args=["--replicaof", "127.0.0.1", str(self.primary.port)]
            ).start()
            self.wait_in_sync()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_in_sync(self) -> None:
        """Wait until the replica's link is up and the primary counts it."""
        assert self.replica is not None
        assert self.replica.port is not None
        primary_port, replica_port = self.primary.port, self.replica.port
        assert primary_port is not None
        wait_until(
            lambda: _info(replica_port, "replication").get("master_link_status") == "up",
            timeout=self.timeout,
            what="the replica's link to the primary",
        )
        wait_until(
            lambda: _info(primary_port, "replication").get("connected_slaves", 0) >= 1,
            timeout=self.timeout,
            what="the primary's count of replicas",
        )

    def wait_replicated(self) -> None:
        """Wait until the replica has applied everything the primary has written so far."""
        assert self.replica is not None
        assert self.replica.port is not None
        assert self.primary.port is not None
        offset = _info(self.primary.port, "replication")["master_repl_offset"]
        replica_port = self.replica.port
        wait_until(
            lambda: _info(replica_port, "replication").get("slave_repl_offset", -1) >= offset,
            timeout=self.timeout,
            what="replication to the replica",
        )

    def stop(self) -> None:
        if self.replica is not None:
            self.replica.stop()
        self.primary.stop()

    def __enter__(self) -> ReplicatedPair:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SentinelGroup:
    """A primary, a replica and ``count`` Sentinels monitoring them as ``mymaster``."""

    def __init__(
        self,
        count: int = 1,
        *,
        down_after_ms: int = 500,
        failover_timeout_ms: int = 2000,
        timeout: float = 15.0,
    ) -> None:
        self.count = count
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.timeout = timeout
        self.pair = ReplicatedPair(timeout=timeout)
        self.sentinel_servers: list[RedisServer] = []
        self.service = SERVICE

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """``("127.0.0.1", port)`` of every Sentinel (django-redis's ``SENTINELS``)."""
        return [("127.0.0.1", s.port) for s in self.sentinel_servers if s.port is not None]

    @property
    def master(self) -> RedisServer:
        return self.pair.primary

    @property
    def replica(self) -> RedisServer:
        assert self.pair.replica is not None
        return self.pair.replica

    def start(self) -> SentinelGroup:
        try:
            self.pair.start()
            quorum = self.count // 2 + 1
            config = (
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} {quorum}\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            for _ in range(self.count):
                self.sentinel_servers.append(
                    RedisServer(
                        args=["--sentinel"], config=config, ready_line="+monitor master"
                    ).start()
                )
            for port in [p for _, p in self.sentinels]:
                wait_until(
                    lambda port=port: self._knows_replica(port),  # type: ignore[misc]
                    timeout=self.timeout,
                    what=f"Sentinel on port {port} to know the replica",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _knows_replica(self, sentinel_port: int) -> bool:
        client = client_for(sentinel_port)
        try:
            replicas = client.sentinel_slaves(self.service)
        finally:
            client.close()
        return any(int(r["port"]) == self.replica.port and r["flags"] == "slave" for r in replicas)

    def master_address(self) -> tuple[str, int]:
        """The primary's address as the first Sentinel reports it."""
        client = client_for(self.sentinels[0][1])
        try:
            host, port = client.sentinel_get_master_addr_by_name(self.service)
        finally:
            client.close()
        if isinstance(host, bytes):
            host = host.decode()
        return str(host), int(port)

    def kill_master(self) -> tuple[str, int]:
        """SIGKILL the primary; return its address."""
        address = ("127.0.0.1", self.master.port or 0)
        self.master.kill()
        return address

    def wait_for_failover(self, timeout: float = 20.0) -> tuple[str, int]:
        """The new primary once every Sentinel has switched to it and it says ``role:master``.

        ``SENTINEL get-master-addr-by-name`` names the promoted replica as soon as it is
        chosen, while ``SENTINEL MASTER`` (what redis-py's ``discover_master`` reads)
        still names the old primary until the failover ends: wait for the latter.
        """
        old = ("127.0.0.1", self.master.port)

        def switched() -> tuple[str, int] | None:
            addresses = set()
            for _, port in self.sentinels:
                client = client_for(port)
                try:
                    state = client.sentinel_master(self.service)
                finally:
                    client.close()
                if state.get("is_master") is False or "failover" in str(state.get("flags")):
                    return None
                addresses.add((str(state["ip"]), int(state["port"])))
            if len(addresses) != 1:
                return None
            (address,) = addresses
            if address == old:
                return None
            role = _info(address[1], "replication").get("role")
            return address if role == "master" else None

        return wait_until(switched, timeout=timeout, interval=0.05, what="Sentinel failover")

    def stop(self) -> None:
        for server in self.sentinel_servers:
            server.stop()
        self.pair.stop()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class TrickleProxy:
    """A loopback TCP proxy whose server-to-client direction can be slowed to a trickle."""

    def __init__(self, upstream_port: int, *, chunk: int = 64, interval: float = 0.02) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.chunk = chunk
        self.interval = interval
        self.trickle = False
        self.port: int | None = None
        self.connections = 0  # accepted so far
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int = 0) -> str:
        if self.port is None:
            raise RuntimeError("The proxy is not running")
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> TrickleProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept, "trickle-accept")
        return self

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopped.is_set():
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
                self.connections += 1
            self._spawn(self._pump, "trickle-up", client, server, False)
            self._spawn(self._pump, "trickle-down", server, client, True)

    def _pump(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not (downstream and self.trickle):
                    sink.sendall(data)
                    continue
                for start in range(0, len(data), self.chunk):
                    # The trickle's pace: an interruptible wait, ended early by stop().
                    if self._stopped.wait(self.interval):
                        return
                    sink.sendall(data[start : start + self.chunk])
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()

    def __enter__(self) -> TrickleProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
