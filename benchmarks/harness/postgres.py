"""The api scenario's PostgreSQL: the test suite's throw-away cluster, one database per variant.

The cluster itself (initdb into a temp dir, pg_ctl start and stop, as the package's
``postgres`` user when run as root) is ``tests/postgres_server.py``'s; the benchmark
adds ``psql`` and the ``BENCH_PG`` value of a database.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.postgres_server import USER, find_bin_dir  # noqa: E402
from tests.postgres_server import PostgresServer as _Cluster  # noqa: E402

__all__ = ["PostgresServer", "find_bin_dir"]


class PostgresServer(_Cluster):
    """A throw-away cluster with what the benchmark does to it."""

    def psql(self, sql: str, dbname: str = "postgres") -> None:
        """Run ``sql`` through psql; raise RuntimeError with its output on failure."""
        result = self._run(
            "psql", "-h", self.host, "-p", str(self.port), "-U", USER, "-d", dbname,
            "-v", "ON_ERROR_STOP=1", "-q", "-c", sql,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {sql}\n{result.stdout}{result.stderr}")

    def dsn(self, dbname: str) -> str:
        """The ``BENCH_PG`` value of a database of this server."""
        return f"{self.host}:{self.port}:{USER}:{dbname}"
