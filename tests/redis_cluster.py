"""A throwaway Redis Cluster for the test suite: three primaries, one replica each.

Six ``redis-server --cluster-enabled yes`` children (:class:`~tests.redis_server.RedisServer`,
each in its own temp directory, on free loopback ports whose cluster bus port, +10000,
is free too), joined by ``redis-cli --cluster create ... --cluster-replicas 1
--cluster-yes``. ``cluster-node-timeout`` is 1000 ms, so a killed primary's replica
takes over within a few seconds. Every wait is a bounded poll (``CLUSTER INFO``
``cluster_state:ok``, ``CLUSTER NODES``), never a bare sleep.

:class:`RedisCluster`
    ``start()`` returns once every node reports ``cluster_state:ok`` and knows six
    nodes, and every replica is in sync. ``url`` names the first node;
    ``primaries()`` lists the ports of the current primaries; ``kill_primary_of(key)``
    ends (SIGKILL) the primary serving ``key``'s slot and returns its port;
    ``wait_for_failover(port)`` returns once a replica has taken over the dead
    node's slots and every live node says ``cluster_state:ok``; ``flushall()`` empties
    every primary.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from types import TracebackType
from typing import Any

import redis

from tests.redis_server import RedisServer, RedisStartError, free_port
from tests.redis_topologies import client_for, wait_until

__all__ = ["RedisCluster", "cluster_port"]

NODES = 6
NODE_TIMEOUT_MS = 1000


def cluster_port() -> int:
    """A free port below 55536 whose cluster bus port (+10000) is free as well."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RedisStartError("no free port pair for a cluster node")


class RedisCluster:
    """Three primaries and three replicas on loopback, forming one cluster."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            # Replicas of a dead primary may take over at once, whatever their lag.
            "--cluster-replica-validity-factor",
            "0",
            "--repl-diskless-sync-delay",
            "0",
        ]
        self.nodes = [RedisServer(args=args, port_factory=cluster_port) for _ in range(NODES)]
        self._original_primaries: set[int] = set()

    @property
    def url(self) -> str:
        return self.url_for(self.ports()[0])

    @staticmethod
    def url_for(port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    def ports(self) -> list[int]:
        """Ports of the nodes still running (a killed one is left out)."""
        return [
            node.port
            for node in self.nodes
            if node.port is not None and node.process is not None and node.process.poll() is None
        ]

    def start(self) -> RedisCluster:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisStartError("redis-cli is not on PATH")
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{port}" for port in self.ports()]
            created = subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *addresses,
                    "--cluster-replicas",
                    "1",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
            )
            if created.returncode != 0:
                raise RedisStartError(f"redis-cli --cluster create failed:\n{created.stdout}")
            self.wait_ok(expect_nodes=NODES)
            wait_until(self._replicas_in_sync, timeout=self.timeout, what="replicas in sync")
            self.remember_primaries()
        except BaseException:
            self.stop()
            raise
        return self

    def _state(self, port: int) -> dict[str, Any]:
        client = client_for(port)
        try:
            return dict(client.execute_command("CLUSTER INFO"))
        finally:
            client.close()

    def wait_ok(self, *, expect_nodes: int | None = None) -> None:
        """Poll until every live node says ``cluster_state:ok`` (and knows the nodes)."""

        def ok() -> bool:
            for port in self.ports():
                info = self._state(port)
                if info.get("cluster_state") != "ok":
                    return False
                if expect_nodes is not None and int(info["cluster_known_nodes"]) != expect_nodes:
                    return False
            return True

        wait_until(ok, timeout=self.timeout, what="cluster_state:ok on every node")

    def _nodes(self, port: int) -> list[dict[str, Any]]:
        """``CLUSTER NODES`` of one node: address, flags, slots of every node it knows."""
        client = client_for(port, decode_responses=True)
        try:
            text = client.execute_command("CLUSTER", "NODES")
        finally:
            client.close()
        if not isinstance(text, str):
            text = text.decode() if isinstance(text, bytes) else str(text)
        nodes = []
        for line in text.splitlines():
            fields = line.split()
            address = fields[1].split("@")[0].rsplit(":", 1) if len(fields) >= 8 else []
            if len(address) != 2 or not address[1]:
                continue  # not a node (yet) with an address
            nodes.append(
                {
                    "id": fields[0],
                    "port": int(address[1]),
                    "flags": set(fields[2].split(",")),
                    "slots": fields[8:],
                }
            )
        return nodes

    def _replicas_in_sync(self) -> bool:
        for port in self.ports():
            client = client_for(port)
            try:
                info = client.info("replication")
            finally:
                client.close()
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def primaries(self) -> list[int]:
        """Ports of the primaries that serve slots, as a live node sees them."""
        return sorted(
            node["port"]
            for node in self._nodes(self.ports()[0])
            if "master" in node["flags"] and "fail" not in node["flags"] and node["slots"]
        )

    def primary_of(self, key: str) -> int:
        """Port of the primary serving ``key``'s slot."""
        client = client_for(self.ports()[0])
        try:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
            for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(primary[1])
        finally:
            client.close()
        raise RedisStartError(f"no primary serves {key!r}")

    def node(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def kill_primary_of(self, key: str) -> int:
        """SIGKILL the primary serving ``key``; return its port."""
        port = self.primary_of(key)
        self.node(port).kill()
        return port

    def promoted_replica(self, dead_port: int) -> int | None:
        """The port of a replica promoted in place of a dead primary, once the cluster is
        ok again on every live node; None before (one look, no waiting)."""
        for node in self._nodes(self.ports()[0]):
            if node["port"] == dead_port or node["port"] in self._original_primaries:
                continue
            if "master" in node["flags"] and "fail" not in node["flags"] and node["slots"]:
                for port in self.ports():
                    if self._state(port).get("cluster_state") != "ok":
                        return None
                return int(node["port"])
        return None

    def wait_for_failover(self, dead_port: int) -> int:
        """Wait until a replica serves the dead primary's slots; return its port."""
        return wait_until(
            lambda: self.promoted_replica(dead_port),
            timeout=self.timeout,
            what="a replica promoted",
        )

    def remember_primaries(self) -> list[int]:
        """Note the current primaries (``wait_for_failover`` looks for a new one)."""
        self._original_primaries = set(self.primaries())
        return sorted(self._original_primaries)

    def flushall(self) -> None:
        for port in self.primaries():
            client = client_for(port)
            try:
                client.flushall()
            finally:
                client.close()

    def cluster_client(self, **kwargs: Any) -> redis.RedisCluster:
        """A blocking redis-py cluster client (for asserting what ended up in Redis)."""
        return redis.RedisCluster.from_url(self.url, **kwargs)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _myid(port: int) -> str:
    client = client_for(port)
    try:
        return str(client.execute_command("CLUSTER", "MYID").decode())
    finally:
        client.close()


class SlotMove:
    """Moves one hash slot from its primary to another, step by step (as ``redis-cli
    --cluster reshard`` does): ``begin()`` marks it migrating/importing, ``migrate_keys()``
    moves its keys (requests for it then get ``ASK``), ``finish()`` gives the slot to
    the target on every primary (requests to the source then get ``MOVED``)."""

    def __init__(self, cluster: RedisCluster, slot: int, source: int, target: int) -> None:
        self.cluster = cluster
        self.slot, self.source, self.target = slot, source, target
        self.source_id, self.target_id = _myid(source), _myid(target)

    def _run(self, port: int, *args: Any) -> Any:
        client = client_for(port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def begin(self) -> None:
        self._run(self.target, "CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.source_id)
        self._run(self.source, "CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.target_id)

    def migrate_keys(self) -> int:
        keys = self._run(self.source, "CLUSTER", "GETKEYSINSLOT", self.slot, 1000)
        if keys:
            self._run(self.source, "MIGRATE", "127.0.0.1", self.target, "", 0, 5000, "KEYS", *keys)
        return len(keys)

    def finish(self) -> None:
        for port in (self.target, self.source, *self.cluster.primaries()):
            self._run(port, "CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)
        self.cluster.wait_ok()
