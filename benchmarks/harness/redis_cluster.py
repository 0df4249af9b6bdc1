"""A throw-away Redis Cluster for ``cluster.py``: N primaries, no replicas.

Each node is a :class:`~.redis_server.RedisServer` with ``--cluster-enabled yes`` in
a temporary directory of its own, on a free port whose cluster bus port (+10000) is
free too; ``redis-cli --cluster create ... --cluster-yes`` joins them, and ``start()``
returns once every node reports ``cluster_state:ok`` (polled, with a deadline).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

from .redis_server import RedisError, RedisServer, _free_port


def _cluster_port() -> int:
    for _ in range(200):
        port = _free_port()
        if port > 55535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RedisError("no free port pair for a cluster node")


class RedisClusterNodes:
    """``count`` primaries forming one cluster; ``start()`` returns a node's URL."""

    def __init__(self, count: int = 3, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.dirs = [tempfile.TemporaryDirectory(prefix="bench-cluster-") for _ in range(count)]
        options = ("--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
        self.nodes = [
            RedisServer(args=(*options, "--dir", d.name), port_factory=_cluster_port)
            for d in self.dirs
        ]

    def start(self) -> str:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisError("redis-cli not found (Debian/Ubuntu: apt-get install redis-tools)")
        urls = [node.start() for node in self.nodes]
        addresses = [url.split("//", 1)[1].split("/", 1)[0] for url in urls]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-yes"],
            capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL,
            check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise RedisError(f"redis-cli --cluster create failed:\n{created.stdout}")
        deadline = time.monotonic() + self.timeout
        while not all(
            node.client().execute_command("CLUSTER INFO").get("cluster_state") == "ok"
            for node in self.nodes
        ):
            if time.monotonic() > deadline:
                raise RedisError(f"the cluster was not ok within {self.timeout:.0f}s")
            time.sleep(0.05)  # pacing of the poll; the deadline bounds it
        return urls[0]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        for d in self.dirs:
            d.cleanup()
