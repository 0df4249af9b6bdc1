"""Fixtures shared by the whole test suite.

Real Redis
----------
Tests that need a real Redis carry ``@pytest.mark.redis`` or request one of the
fixtures below; requesting a fixture adds the mark, so ``pytest -m "not redis"``
leaves all of them out. Every test marked ``redis`` runs with ``redis_caches``.

``redis_url`` (session)
    URL of the Redis database the tests may use. ``REDIS_URL`` when it is set
    (it is flushed before every Redis test: never point it at data you keep);
    otherwise a ``redis-server`` from PATH, started on a free loopback port for
    the session and stopped at its end. With neither, Redis tests are skipped
    with a loud reason and a banner in the summary; under ``CI=true`` they fail.
``redis_db`` (function)
    ``redis_url`` after ``FLUSHDB``: each test starts with an empty database.
``redis_client`` / ``async_redis_client`` (function)
    redis-py clients, blocking and asyncio, on that clean database, for
    asserting what ended up in Redis. The asyncio one belongs to the test's
    event loop (use it from async tests) and is closed afterwards.
``redis_caches`` (function)
    ``CACHES`` overridden for one test: ``default`` and ``redis`` are
    django-redis caches and ``redis_builtin`` is Django's own ``RedisCache``,
    all on the clean database; ``locmem`` is local memory. The previous
    ``CACHES`` (and fresh cache connections) are restored afterwards.
``fresh_redis_state`` (function)
    Forgets the library's store health records and django-redis's process-wide
    pools before and after a test that builds its own ``CACHES``.

Redis topologies
----------------
Started only for the tests that request them (``tests/redis_topologies.py`` and
``tests/redis_server.py``); like ``redis_url`` they skip loudly without
redis-server (or trustme, for TLS) and fail under ``CI=true``. Requesting one
adds the ``redis`` mark. Tests flush them themselves (``FLUSHALL``).

``tls_redis`` (session)
    A :class:`RedisServer` serving TLS only: ``.url`` is ``rediss://127.0.0.1:PORT/0``,
    ``.ca_file`` the CA to trust (trustme), no client certificates asked for.
``acl_redis`` (session)
    A server whose ``default`` user is off. Users: ``np`` (no password, keys
    ``np:*``), ``pw`` (password ``secret``, keys ``pw:*``) and ``admin`` (password
    ``adminpw``, every key and command), see ``ACL_USERS``.
``unix_redis`` (session)
    A server also listening on a Unix socket: ``.unix_url(db)``.
``replicated_redis`` (session)
    A :class:`ReplicatedPair`: ``.primary`` and ``.replica`` (``--replicaof``).
``trickle_redis`` (session) / ``trickle_proxy`` (function)
    A server and, per test, a :class:`TrickleProxy` in front of it (``.url``);
    ``proxy.trickle = True`` slows server-to-client bytes to a trickle.
``sentinel_group`` (module) / ``failover_sentinel_group`` (function)
    A :class:`SentinelGroup` (primary, replica, one Sentinel, service
    ``mymaster``); the function-scoped one is for tests that kill the primary.
``redis_cluster`` (session) / ``failover_redis_cluster`` (function)
    A :class:`~tests.redis_cluster.RedisCluster`: three primaries with one replica
    each (``.url`` names a node); the function-scoped one is for tests that kill a
    primary.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from django.db.backends.signals import connection_created
from django.test import override_settings

from tests.asgi_servers import DEFAULT, AsgiErrorLogged, ServerKind, check_logs
from tests.http_upstream import Upstream
from tests.redis_server import RedisServer, RedisStartError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.redis_cluster import RedisCluster
    from tests.redis_topologies import ReplicatedPair, SentinelGroup, TrickleProxy

if TYPE_CHECKING:
    import redis
    import redis.asyncio

TOPOLOGY_FIXTURES = frozenset(
    {
        "tls_redis",
        "acl_redis",
        "unix_redis",
        "replicated_redis",
        "trickle_redis",
        "trickle_proxy",
        "sentinel_group",
        "failover_sentinel_group",
        "redis_cluster",
        "failover_redis_cluster",
    }
)
REDIS_FIXTURES = (
    frozenset({"redis_url", "redis_db", "redis_client", "async_redis_client", "redis_caches"})
    | TOPOLOGY_FIXTURES
)
SKIP_PREFIX = "NO REDIS AVAILABLE"

_redis_notes = pytest.StashKey[str]()
_redis_skip_reason = pytest.StashKey[str]()


def in_ci() -> bool:
    """True under CI, where every test must really run."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that request a Redis fixture, so ``-m`` selects them like marked ones."""
    for item in items:
        if REDIS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say which Redis the suite used, and shout when Redis tests were skipped."""
    if note := config.stash.get(_redis_notes, None):
        terminalreporter.write_line(f"Redis: {note}")
    reason = config.stash.get(_redis_skip_reason, None)
    if reason is None:
        return
    skipped = sum(
        1
        for report in terminalreporter.stats.get("skipped", [])
        if SKIP_PREFIX in str(report.longrepr)
    )
    terminalreporter.write_sep("!", "REDIS TESTS WERE SKIPPED", red=True, bold=True)
    terminalreporter.write_line(
        f"{skipped} test(s) need a real Redis and did not run: {reason}.", red=True, bold=True
    )
    terminalreporter.write_line(
        "Install redis-server (e.g. apt-get install redis-server) or set "
        "REDIS_URL=redis://host:port/db to run them; under CI=true this is an error.",
        red=True,
    )
    terminalreporter.write_sep("!", red=True, bold=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test that uses ``server_kind`` once under each server its marker names."""
    if "server_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("servers")
    kinds = marker.args if marker is not None else (DEFAULT,)
    metafunc.parametrize("server_kind", kinds, indirect=True, ids=str, scope="module")


@pytest.fixture(scope="module")
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    """The ASGI server of this test's parametrization (see pytest_generate_tests)."""
    kind: ServerKind = request.param
    return kind


def _checking_asgi_logs(item: pytest.Item, when: str) -> Generator[None, None, None]:
    """Run a test phase, then fail it if an ASGI server under test logged an error.

    A phase that failed anyway keeps its own failure, and shows the errors beside it.
    """
    try:
        result = yield
    except BaseException:
        try:
            check_logs()
        except AsgiErrorLogged as logged:
            item.add_report_section(when, "ASGI server errors", str(logged))
        raise
    check_logs()
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """What the servers logged during the test."""
    return (yield from _checking_asgi_logs(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """What they logged during its teardown: the shutdown of the servers of its fixtures."""
    return (yield from _checking_asgi_logs(item, "teardown"))


def _unavailable(config: pytest.Config, reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"Redis is required under CI=true, but {reason}.", pytrace=False)
    config.stash[_redis_skip_reason] = reason
    pytest.skip(f"{SKIP_PREFIX}: {reason} (install redis-server or set REDIS_URL)")


def _sync_client(url: str) -> redis.Redis:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a real Redis database for the tests (see the module docstring)."""
    config = request.config
    try:
        import redis
    except ImportError:
        _unavailable(config, "redis-py is not installed (pip install -e '.[redis]')")

    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        client = _sync_client(url)
        try:
            version = client.info("server")["redis_version"]
        except redis.RedisError as exc:
            _unavailable(config, f"REDIS_URL={url} does not answer ({exc})")
        finally:
            client.close()
        config.stash[_redis_notes] = f"redis {version} at {url} (from REDIS_URL)"
        yield url
        return

    try:
        server = RedisServer().start()
    except RedisStartError as exc:
        _unavailable(config, f"REDIS_URL is not set and {exc}")
    try:
        config.stash[_redis_notes] = (
            f"redis-server {server.version or '?'} started by the suite at {server.url}"
        )
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_db(redis_url: str) -> str:
    """``redis_url``, emptied with FLUSHDB before the test."""
    client = _sync_client(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_url


@pytest.fixture
def redis_client(redis_db: str) -> Iterator[redis.Redis]:
    """A blocking redis-py client on the test's clean database."""
    client = _sync_client(redis_db)
    yield client
    client.close()


@pytest.fixture
async def async_redis_client(redis_db: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio redis-py client on the test's clean database, bound to its loop."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_db, socket_connect_timeout=5, socket_timeout=5)
    yield client
    await client.aclose()


def redis_cache_settings(url: str) -> dict[str, dict[str, Any]]:
    """The ``CACHES`` setting that ``redis_caches`` installs."""
    django_redis = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 5, "SOCKET_TIMEOUT": 5},
    }
    return {
        "default": django_redis,
        "redis": django_redis,
        "redis_builtin": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
        },
        "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }


@pytest.fixture
def redis_caches(redis_db: str) -> Iterator[dict[str, dict[str, Any]]]:
    """Point Django's caches at the clean Redis database for one test."""
    caches = redis_cache_settings(redis_db)
    # override_settings sends setting_changed, on which Django closes and
    # forgets the cache connections, both on entry and on exit.
    with override_settings(CACHES=caches):
        yield caches


@pytest.fixture(autouse=True)
def _redis_for_marked_tests(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("redis") is not None:
        request.getfixturevalue("redis_caches")


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """A fake upstream HTTP service on loopback (tests/http_upstream.py), one per module."""
    server = Upstream()
    server.start()
    yield server
    server.stop()


# -- Redis topologies ---------------------------------------------------------------------------

#: ``--user`` lines of ``acl_redis``: name -> (password or None, ACL rules).
ACL_USERS: dict[str, tuple[str | None, list[str]]] = {
    "np": (None, ["on", "nopass", "~np:*", "&*", "+@all"]),
    "pw": ("secret", ["on", ">secret", "~pw:*", "&*", "+@all"]),
    "admin": ("adminpw", ["on", ">adminpw", "~*", "&*", "+@all"]),
    "default": (None, ["off"]),
}


def _started(config: pytest.Config, what: str, start: Callable[[], Any]) -> Any:
    """``start()``, or the loud skip (a failure under CI) when it cannot start."""
    try:
        return start()
    except (RedisStartError, ImportError) as exc:
        _unavailable(config, f"{what} could not be started: {exc}")


@pytest.fixture(scope="session")
def tls_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server serving TLS only, certificates from a test CA (module docstring)."""
    server = _started(request.config, "a TLS redis-server", lambda: RedisServer(tls=True).start())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def acl_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server with the ACL users of ``ACL_USERS`` and ``default`` off."""
    args: list[str] = []
    for name, (_password, rules) in ACL_USERS.items():
        args += ["--user", name, *rules]
    server = _started(request.config, "an ACL redis-server", lambda: RedisServer(args=args).start())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def unix_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server that also listens on a Unix socket."""
    server = _started(
        request.config, "a unix-socket redis-server", lambda: RedisServer(unixsocket=True).start()
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def replicated_redis(request: pytest.FixtureRequest) -> Iterator[ReplicatedPair]:
    """A primary and its replica."""
    from tests.redis_topologies import ReplicatedPair

    pair = _started(request.config, "a primary and replica", lambda: ReplicatedPair().start())
    yield pair
    pair.stop()


@pytest.fixture(scope="session")
def trickle_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The redis-server behind ``trickle_proxy``."""
    server = _started(request.config, "a redis-server", lambda: RedisServer().start())
    yield server
    server.stop()


@pytest.fixture
def trickle_proxy(trickle_redis: RedisServer) -> Iterator[TrickleProxy]:
    """A fresh TrickleProxy in front of ``trickle_redis`` (flushed), not trickling yet."""
    from tests.redis_topologies import TrickleProxy, client_for

    assert trickle_redis.port is not None
    client = client_for(trickle_redis.port)
    try:
        client.flushall()
    finally:
        client.close()
    proxy = TrickleProxy(trickle_redis.port).start()
    yield proxy
    proxy.stop()


def _sentinel_group(config: pytest.Config) -> SentinelGroup:
    from tests.redis_topologies import SentinelGroup

    return _started(config, "a Sentinel group", lambda: SentinelGroup().start())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sentinel_group(request: pytest.FixtureRequest) -> Iterator[SentinelGroup]:
    """A primary, a replica and a Sentinel (``mymaster``), shared by a module's tests."""
    group = _sentinel_group(request.config)
    yield group
    group.stop()


@pytest.fixture
def failover_sentinel_group(request: pytest.FixtureRequest) -> Iterator[SentinelGroup]:
    """A Sentinel group of one test's own, for tests that kill its primary."""
    group = _sentinel_group(request.config)
    yield group
    group.stop()


@pytest.fixture(scope="session")
def redis_cluster(request: pytest.FixtureRequest) -> Iterator[RedisCluster]:
    """Three primaries and their replicas, one cluster, shared by the session."""
    from tests.redis_cluster import RedisCluster

    cluster = _started(request.config, "a Redis Cluster", lambda: RedisCluster().start())
    yield cluster
    cluster.stop()


@pytest.fixture
def failover_redis_cluster(request: pytest.FixtureRequest) -> Iterator[RedisCluster]:
    """A Redis Cluster of one test's own, for tests that kill a primary."""
    from tests.redis_cluster import RedisCluster

    cluster = _started(request.config, "a Redis Cluster", lambda: RedisCluster().start())
    yield cluster
    cluster.stop()


@pytest.fixture
def fresh_redis_state() -> Iterator[None]:
    """Forget the store health records and django-redis's process-wide pools (keyed by URL
    alone, so a pool of an earlier test's options would otherwise be reused), before and
    after the test; then collect garbage (the system checks see every live breaker)."""
    import gc

    from django_redis.pool import ConnectionFactory

    from django_async_cbv._redis import health
    from django_async_cbv.redis_cluster import ClusterConnectionFactory

    health.forget()
    ConnectionFactory._pools.clear()
    ClusterConnectionFactory._clusters.clear()
    yield
    health.forget()
    for client in ClusterConnectionFactory._clusters.values():
        client.close()
    ClusterConnectionFactory._clusters.clear()
    for pool in ConnectionFactory._pools.values():
        pool.disconnect()
    ConnectionFactory._pools.clear()
    gc.collect()


@pytest.fixture
def request_connections_close() -> Iterator[None]:
    """Let each request thread's connection really close when its request finishes.

    Django ignores close() on an in-memory SQLite database, so the connection of every
    thread a request ran in would be left to the garbage collector (a ResourceWarning
    from Python 3.13 on). The test's own connection keeps the shared database alive.
    """
    main = threading.get_ident()

    def closable(sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.get_ident() != main:
            connection.is_in_memory_db = lambda: False

    connection_created.connect(closable, weak=False)
    yield
    connection_created.disconnect(closable)


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every query run from here on (placeholders, not values), in any thread."""
    from django.db.backends.utils import CursorWrapper

    seen: list[str] = []
    original = CursorWrapper.execute

    def execute(self: CursorWrapper, sql: str, params: Any = None) -> Any:
        seen.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", execute)
    return seen
