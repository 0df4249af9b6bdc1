"""The blocks on every Redis configuration users bring to a cache alias.

Each test installs one ``CACHES["redis"]`` entry (django-redis or Django's own
``RedisCache``) and drives a block through it the way a user would, then looks at
Redis with a separate redis-py client:

``cache``
    A view with AsyncCacheMixin answers ``X-Cache: MISS`` then ``HIT``, its handler
    ran once, and the entry is in the Redis (server, db) the alias names.
``sliding_window`` / ``token_bucket``
    A view with AsyncRateLimitMixin, ``rate_limit = "5/m"``: 8 requests answer five
    200s then three 429s, and the limiter's key is in that Redis.
``breaker``
    ``CircuitBreaker(name, storage="redis")``: two failures through one breaker
    object open the circuit for a second object of the same name (state shared in
    Redis, not per process).

Topologies come from ``tests/conftest.py`` (``tls_redis``, ``acl_redis``,
``unix_redis``, ``replicated_redis``, ``trickle_proxy``) and the suite's
``redis_url`` server. Tests marked "NOTE for the connection layer" state choices
that the connection layer may adjust (e.g. how a misconfiguration surfaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import trustme
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, AsyncRequestFactory, override_settings
from django.urls import clear_url_caches, path, resolve

from django_async_cbv import (
    AsyncCacheMixin,
    AsyncRateLimitMixin,
    AsyncView,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
)
from tests.conftest import ACL_USERS
from tests.redis_server import RedisServer
from tests.redis_topologies import ReplicatedPair, TrickleProxy, client_for

pytestmark = [
    pytest.mark.urls(__name__),
    pytest.mark.redis,
    pytest.mark.usefixtures("fresh_redis_state"),
]

ALIAS = "redis"
DJANGO_REDIS = "django_redis.cache.RedisCache"
BUILTIN = "django.core.cache.backends.redis.RedisCache"
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
BLOCKS = ["cache", "sliding_window", "token_bucket", "breaker"]
SHORT = {"sliding_window": "sw", "token_bucket": "tb"}

runs: dict[str, int] = {}
_made = itertools.count()
_routes: list[Any] = []
urlpatterns: list[Any] = []


# -- views and requests -------------------------------------------------------------------------


def route(view_class: type) -> str:
    """Route ``view_class`` at a fresh URL of this module's URLconf; return the URL."""
    url = f"r{next(_made)}/"
    _routes.append(path(url, view_class.as_view()))
    urlpatterns[:] = list(_routes)
    clear_url_caches()
    return "/" + url


def cached_view(body: bytes | None = None, alias: str = ALIAS) -> tuple[str, str]:
    """A cached view on ``alias``; returns (url, name); its runs are counted in ``runs``."""
    name = f"Cached{next(_made)}"

    async def get(self: Any, request: HttpRequest) -> HttpResponse:
        runs[name] += 1
        if body is not None:
            return HttpResponse(body, content_type="application/octet-stream")
        return JsonResponse({"run": runs[name]})

    attrs = {"__module__": __name__, "get": get, "cache_alias": alias}
    runs[name] = 0
    return route(type(name, (AsyncCacheMixin, AsyncView), attrs)), name


def limited_view(algorithm: str, rate: str = "5/m", alias: str = ALIAS) -> str:
    """A rate-limited view (its own scope) on ``alias``; returns its URL."""

    async def get(self: Any, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"ok": True})

    attrs = {
        "__module__": __name__,
        "get": get,
        "rate_limit": rate,
        "rate_limit_algorithm": algorithm,
        "rate_limit_cache_alias": alias,
    }
    return route(type(f"Limited{next(_made)}", (AsyncRateLimitMixin, AsyncView), attrs))


async def get(url: str) -> Any:
    """GET through Django's test client; a view's exception becomes a 500, as in production."""
    return await AsyncClient(raise_request_exception=False).get(url)


async def burst(urls: list[str]) -> list[Any]:
    """GET every URL at once, in this event loop."""
    return list(await asyncio.gather(*(get(url) for url in urls)))


class Failing(OSError):
    pass


async def fail() -> None:
    raise Failing("upstream down")


async def ok() -> str:
    return "ok"


def breaker_name() -> str:
    return f"configs-{next(_made)}"


def pair(name: str, **options: Any) -> tuple[CircuitBreaker, CircuitBreaker]:
    """Two breakers of one name on the alias: two processes' views of one circuit."""
    options = {"failure_threshold": 2, "recovery_timeout": 60, **options}
    return (
        CircuitBreaker(name, storage=ALIAS, **options),
        CircuitBreaker(name, storage=ALIAS, **options),
    )


# -- Redis inspection ---------------------------------------------------------------------------


def keys(client: redis.Redis, pattern: str = "*") -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=pattern, count=1000))


def breaker_hash(client: redis.Redis, name: str) -> dict[str, str]:
    found = list(keys(client, f"*{{{name}}}"))
    assert len(found) == 1, f"the breaker's hash is not in this Redis: {keys(client)}"
    return {k.decode(): v.decode() for k, v in client.hgetall(found[0]).items()}


def other_clients(client: redis.Redis) -> list[dict[str, Any]]:
    """``CLIENT LIST`` of everyone but ``client`` itself."""
    own = client.client_id()
    return [c for c in client.client_list() if int(c["id"]) != own]


# -- fixtures -----------------------------------------------------------------------------------


@contextlib.contextmanager
def alias(config: dict[str, Any], **settings: Any) -> Iterator[None]:
    """``CACHES["redis"] = config`` (``default`` stays local memory) for the block."""
    with override_settings(CACHES={"default": LOCMEM, ALIAS: config}, **settings):
        yield


def django_redis(location: Any, **options: Any) -> dict[str, Any]:
    return {"BACKEND": DJANGO_REDIS, "LOCATION": location, "OPTIONS": options}


def builtin(location: Any, **options: Any) -> dict[str, Any]:
    return {"BACKEND": BUILTIN, "LOCATION": location, "OPTIONS": options}


async def exercise(block: str, where: redis.Redis) -> None:
    """Drive ``block`` through the ``redis`` alias; ``where`` is the Redis it must land in."""
    if block == "cache":
        url, name = cached_view()
        miss = await get(url)
        hit = await get(url)
        assert (miss.status_code, miss.get("X-Cache")) == (200, "MISS")
        assert (hit.status_code, hit.get("X-Cache")) == (200, "HIT")
        assert hit.content == miss.content == b'{"run": 1}'
        assert runs[name] == 1
        assert keys(where), "the entry is not in the Redis the alias names"
    elif block in SHORT:
        url = limited_view(block)
        statuses = [(await get(url)).status_code for _ in range(8)]
        assert statuses == [200] * 5 + [429] * 3
        found = keys(where, f"*async_cbv:rl*:{SHORT[block]}:5/60")
        assert len(found) == 1, f"no limiter key in this Redis: {keys(where)}"
        if block == "sliding_window":
            assert where.zcard(found[0]) == 5
    else:
        await check_breaker(where)


async def check_breaker(where: redis.Redis) -> None:
    """Two failures through one breaker object open the circuit another object sees."""
    name = breaker_name()
    a, b = pair(name)
    for _ in range(2):
        with pytest.raises(Failing):
            await a.call(fail)
    assert await b.current_state() is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        await b.call(ok)
    assert breaker_hash(where, name)["s"] == "1"


@pytest.fixture
def session_server(redis_client: redis.Redis, redis_url: str) -> tuple[str, redis.Redis]:
    """The suite's redis-server: (URL of db 0, a client of db 0), after FLUSHALL."""
    redis_client.flushall()
    return redis_url, redis_client


def db_client(redis_url: str, db: int) -> redis.Redis:
    return redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{db}", socket_timeout=5)


# -- a. BlockingConnectionPool ------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_blocking_connection_pool(
    backend: str, block: str, session_server: tuple[str, redis.Redis]
) -> None:
    """redis.BlockingConnectionPool with max_connections and timeout, as both backends
    take it: the blocks work and count in Redis."""
    url, client = session_server
    if backend == "django-redis":
        config = django_redis(
            url,
            CONNECTION_POOL_CLASS="redis.BlockingConnectionPool",
            CONNECTION_POOL_KWARGS={"max_connections": 50, "timeout": 20},
        )
    else:
        config = builtin(
            url, pool_class="redis.BlockingConnectionPool", max_connections=50, timeout=20
        )
    with alias(config):
        await exercise(block, client)


# -- b. capped pools under concurrency ----------------------------------------------------------

# (backend, max_connections, concurrent requests); health_check_interval and client_name
# are options that keep redis-py's pool in use today.
CAPPED = [
    pytest.param("django-redis", 50, 64, id="django-redis-50x64"),
    pytest.param("django-redis", 100, 160, id="django-redis-100x160"),
    pytest.param("builtin", 50, 64, id="builtin-50x64"),
]


#: Connect and socket timeout of the capped pools: what is under test is the pool's cap,
#: not the timeouts, and a loaded machine has stalled 64 connects on loopback past 5 s.
CAPPED_TIMEOUT = 20


def capped(backend: str, url: str, cap: int) -> dict[str, Any]:
    if backend == "django-redis":
        return django_redis(
            url,
            SOCKET_TIMEOUT=CAPPED_TIMEOUT,
            SOCKET_CONNECT_TIMEOUT=CAPPED_TIMEOUT,
            CONNECTION_POOL_KWARGS={"max_connections": cap, "health_check_interval": 30},
        )
    return builtin(
        url,
        max_connections=cap,
        client_name="capped",
        socket_timeout=CAPPED_TIMEOUT,
        socket_connect_timeout=CAPPED_TIMEOUT,
    )


@pytest.mark.parametrize(("backend", "cap", "concurrent"), CAPPED)
async def test_capped_pool_rate_limit_burst(
    backend: str, cap: int, concurrent: int, session_server: tuple[str, redis.Redis]
) -> None:
    """A burst wider than the user's pool: every request is counted, none answers 503."""
    url, client = session_server
    with alias(capped(backend, url, cap)):
        view = limited_view("sliding_window", rate="100000/m")
        responses = await burst([view] * concurrent)
    statuses = [r.status_code for r in responses]
    assert statuses.count(503) == 0, f"{statuses.count(503)} of {concurrent} answered 503"
    assert statuses == [200] * concurrent
    (key,) = keys(client, "*async_cbv:rl*:sw:100000/60")
    assert client.zcard(key) == concurrent


@pytest.mark.parametrize(("backend", "cap", "concurrent"), CAPPED)
async def test_capped_pool_cache_burst(
    backend: str, cap: int, concurrent: int, session_server: tuple[str, redis.Redis]
) -> None:
    """Concurrent cached-view requests (distinct keys, then the same ones again): no BYPASS."""
    url, _client = session_server
    with alias(capped(backend, url, cap)):
        view, name = cached_view()
        urls = [f"{view}?n={i}" for i in range(concurrent)]
        first = await burst(urls)
        second = await burst(urls)
    for label, responses, expected in (("cold", first, "MISS"), ("warm", second, "HIT")):
        marks = [r.get("X-Cache") for r in responses]
        assert marks.count("BYPASS") == 0, f"{label}: {marks.count('BYPASS')} BYPASS"
        assert [r.status_code for r in responses] == [200] * concurrent
        assert marks == [expected] * concurrent, label
    assert runs[name] == concurrent


@pytest.mark.parametrize(("backend", "cap", "concurrent"), CAPPED)
async def test_capped_pool_shared_breaker_burst(
    backend: str, cap: int, concurrent: int, session_server: tuple[str, redis.Redis]
) -> None:
    """Concurrent failing calls through one shared breaker: each is recorded in Redis
    (none fell back to per-process state)."""
    url, client = session_server
    with alias(capped(backend, url, cap)):
        name = breaker_name()
        a, _ = pair(name, failure_threshold=10 * concurrent)
        outcomes = await asyncio.gather(
            *(a.call(fail) for _ in range(concurrent)), return_exceptions=True
        )
        assert all(isinstance(o, Failing) for o in outcomes), outcomes
        assert breaker_hash(client, name)["f"] == str(concurrent)


# -- c. a trickling Redis -----------------------------------------------------------------------

SOCKET_TIMEOUT = 0.5
#: How long a request may take when Redis trickles: about three socket timeouts.
BOUND = 3 * SOCKET_TIMEOUT
#: A request still running after this long is cut off (and fails the bound).
CUT_OFF = 5.0
BIG = b"x" * (256 * 1024)  # trickles for over a minute at 64 bytes per 20 ms

# The plain options take the library's pipelined connection today; health_check_interval
# keeps redis-py's client.
TRICKLE_PATHS = [
    pytest.param({}, id="plain"),
    pytest.param({"CONNECTION_POOL_KWARGS": {"health_check_interval": 30}}, id="pool-kwargs"),
]


async def timed(work: Any) -> tuple[float, Any]:
    """(seconds from start to answer, the answer or its exception), cut off at CUT_OFF."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(CUT_OFF):
            result = await work
    except Exception as exc:
        result = exc
    return time.monotonic() - start, result


@pytest.mark.parametrize("block", ["cache", "ratelimit", "breaker"])
@pytest.mark.parametrize("options", TRICKLE_PATHS)
async def test_trickling_redis_answers_within_the_socket_timeout(
    options: dict[str, Any], block: str, trickle_proxy: TrickleProxy, trickle_redis: RedisServer
) -> None:
    """A large cached entry trickles back; requests sent meanwhile (the ones that read it
    too) answer within about 3x SOCKET_TIMEOUT of being sent: BYPASS, 503 or admitted,
    the breaker falls back. Never a 500, never the minute the reply takes."""
    config = django_redis(
        trickle_proxy.url, SOCKET_TIMEOUT=SOCKET_TIMEOUT, SOCKET_CONNECT_TIMEOUT=SOCKET_TIMEOUT
    )
    config["OPTIONS"].update(options)
    with alias(config):
        big, _name = cached_view(body=BIG)
        assert (await get(big)).get("X-Cache") == "MISS"
        warm = await get(big)
        assert (warm.get("X-Cache"), len(warm.content)) == ("HIT", len(BIG))
        limited = limited_view("sliding_window", rate="1000/m")
        breaker, _ = pair(breaker_name())
        trickle_proxy.trickle = True
        work: list[Any] = [get(big) for _ in range(3)]
        if block == "ratelimit":
            work += [get(limited) for _ in range(5)]
        elif block == "breaker":
            work += [breaker.call(ok) for _ in range(5)]
        results = await asyncio.gather(*(timed(w) for w in work))
    slowest = max(seconds for seconds, _ in results)
    answers = [answer for _, answer in results]
    assert slowest <= BOUND, f"slowest answer after {slowest:.2f}s (bound {BOUND:g}s): {answers}"
    for answer in answers[:3]:
        assert not isinstance(answer, BaseException), answers
        assert (answer.status_code, answer.get("X-Cache")) == (200, "BYPASS")
    for answer in answers[3:]:
        if block == "ratelimit":
            assert not isinstance(answer, BaseException), answers
            assert answer.status_code in (200, 503)
        else:
            assert answer == "ok"


# -- d. ACL users -------------------------------------------------------------------------------


@pytest.fixture
def acl_admin(acl_redis: RedisServer) -> Iterator[redis.Redis]:
    """An admin client of ``acl_redis``, after FLUSHALL and ACL LOG RESET."""
    assert acl_redis.port is not None
    client = client_for(acl_redis.port, username="admin", password=ACL_USERS["admin"][0])
    client.flushall()
    client.acl_log_reset()
    yield client
    client.close()


def assert_ran_as(admin: redis.Redis, user: str) -> None:
    """Every other connection is ``user``'s, and no command was refused."""
    users = {c["user"] for c in other_clients(admin)}
    assert users == {user}, f"connections ran as {users}"
    assert admin.acl_log() == []


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_acl_user_in_the_url(
    backend: str, block: str, acl_redis: RedisServer, acl_admin: redis.Redis
) -> None:
    """``redis://np@host:port/0``, user ``np`` without a password, keys ``np:*`` only
    (KEY_PREFIX "np"); the server's default user is off."""
    location = acl_redis.url_for(0, userinfo="np")
    config = (django_redis if backend == "django-redis" else builtin)(location)
    config["KEY_PREFIX"] = "np"
    with alias(config):
        await exercise(block, acl_admin)
    assert_ran_as(acl_admin, "np")


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_acl_user_with_a_password_in_options(
    backend: str, block: str, acl_redis: RedisServer, acl_admin: redis.Redis
) -> None:
    """User ``pw`` (password ``secret``, keys ``pw:*``) from the options: USERNAME and
    PASSWORD for django-redis, username and password for Django's backend."""
    if backend == "django-redis":
        config = django_redis(acl_redis.url, USERNAME="pw", PASSWORD="secret")
    else:
        config = builtin(acl_redis.url, username="pw", password="secret")
    config["KEY_PREFIX"] = "pw"
    with alias(config):
        await exercise(block, acl_admin)
    assert_ran_as(acl_admin, "pw")


# -- e. TLS -------------------------------------------------------------------------------------


@pytest.fixture
def tls_client(tls_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(
        tls_redis.url, ssl_ca_certs=tls_redis.ca_file, ssl_cert_reqs="required", socket_timeout=5
    )
    client.flushall()
    yield client
    client.close()


def tls_config(backend: str, server: RedisServer, ca_file: str | None) -> dict[str, Any]:
    if backend == "django-redis":
        return django_redis(
            server.url,
            SOCKET_TIMEOUT=1,
            CONNECTION_POOL_KWARGS={"ssl_ca_certs": ca_file, "ssl_cert_reqs": "required"},
        )
    return builtin(server.url, ssl_ca_certs=ca_file, socket_timeout=1)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_tls(
    backend: str, block: str, tls_redis: RedisServer, tls_client: redis.Redis
) -> None:
    """``rediss://`` with the CA to trust: the blocks work over TLS."""
    with alias(tls_config(backend, tls_redis, tls_redis.ca_file)):
        await exercise(block, tls_client)


@pytest.fixture
def untrusted_ca(tmp_path: Any) -> str:
    """The PEM file of a CA that did not sign the server's certificate."""
    ca_file = str(tmp_path / "other-ca.pem")
    trustme.CA().cert_pem.write_to_path(ca_file)
    return ca_file


@pytest.mark.parametrize("block", ["cache", "ratelimit", "breaker"])
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_tls_certificate_not_trusted(
    backend: str, block: str, tls_redis: RedisServer, untrusted_ca: str
) -> None:
    """A server certificate the client does not trust: BYPASS, 503 or admitted, the
    breaker falls back; never a 500."""
    with alias(tls_config(backend, tls_redis, untrusted_ca)):
        if block == "cache":
            url, name = cached_view()
            responses = [await get(url) for _ in range(2)]
            assert [(r.status_code, r.get("X-Cache")) for r in responses] == [(200, "BYPASS")] * 2
            assert runs[name] == 2
        elif block == "ratelimit":
            url = limited_view("sliding_window")
            statuses = {(await get(url)).status_code for _ in range(3)}
            assert statuses <= {200, 503}, statuses
        else:
            breaker, _ = pair(breaker_name())
            assert await breaker.call(ok) == "ok"


# -- f. other options ---------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_client_name(
    backend: str, block: str, session_server: tuple[str, redis.Redis]
) -> None:
    """A client name: CLIENT LIST shows it on the library's connections."""
    url, client = session_server
    if backend == "django-redis":
        config = django_redis(url, CONNECTION_POOL_KWARGS={"client_name": "async-cbv-named"})
    else:
        config = builtin(url, client_name="async-cbv-named")
    with alias(config):
        await exercise(block, client)
        names = {c["name"] for c in other_clients(client)}
    assert names == {"async-cbv-named"}, names


DB3 = [
    pytest.param("django-redis", "path", id="django-redis-path"),
    pytest.param("django-redis", "query", id="django-redis-query"),
    pytest.param("builtin", "path", id="builtin-path"),
    pytest.param("builtin", "query", id="builtin-query"),
    pytest.param("builtin", "option", id="builtin-option"),
]


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize(("backend", "how"), DB3)
async def test_database_3(
    backend: str, how: str, block: str, session_server: tuple[str, redis.Redis], redis_url: str
) -> None:
    """Database 3 chosen by the URL's path, its query or (Django's backend) the db option:
    the keys land in db 3, none in db 0."""
    url, db0 = session_server
    base = url.rsplit("/", 1)[0]
    location = {"path": f"{base}/3", "query": f"{base}?db=3", "option": base}[how]
    options = {"db": 3} if how == "option" else {}
    config = (django_redis if backend == "django-redis" else builtin)(location, **options)
    db3 = db_client(redis_url, 3)
    try:
        with alias(config):
            await exercise(block, db3)
        assert keys(db0) == []
    finally:
        db3.close()


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_unix_socket(backend: str, block: str, unix_redis: RedisServer) -> None:
    """``unix:///…/redis.sock?db=2``: the keys land in db 2 of that server."""
    db2 = redis.Redis.from_url(unix_redis.unix_url(2), socket_timeout=5)
    try:
        db2.flushall()
        config = (django_redis if backend == "django-redis" else builtin)(unix_redis.unix_url(2))
        with alias(config):
            await exercise(block, db2)
    finally:
        db2.close()


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_resp3(backend: str, block: str, session_server: tuple[str, redis.Redis]) -> None:
    """``protocol: 3``: the blocks work, and the library's connections speak RESP3."""
    url, client = session_server
    if backend == "django-redis":
        config = django_redis(url, CONNECTION_POOL_KWARGS={"protocol": 3})
    else:
        config = builtin(url, protocol=3)
    with alias(config):
        await exercise(block, client)
        protocols = {c["resp"] for c in other_clients(client)}
    assert protocols == {"3"}, protocols


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("backend", ["django-redis", "builtin"])
async def test_primary_and_replica_location(
    backend: str, block: str, replicated_redis: ReplicatedPair
) -> None:
    """LOCATION lists the primary then a replica: writes go to the primary."""
    primary, replica = replicated_redis.primary, replicated_redis.replica
    assert replica is not None
    assert primary.port is not None
    client = client_for(primary.port)
    try:
        client.flushall()
        replicated_redis.wait_replicated()
        if backend == "django-redis":
            config = django_redis([primary.url, replica.url])
        else:
            config = builtin(f"{primary.url};{replica.url}")
        with alias(config):
            await exercise(block, client)
    finally:
        client.close()


# -- g. what the library cannot reproduce is a check error --------------------------------------


class WeirdPool(redis.ConnectionPool):
    """A user's own blocking pool class: nothing asyncio can stand in for."""

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        return super().get_connection(*args, **kwargs)


class WeirdConnection(redis.Connection):
    """A user's own blocking connection class."""


MISCONFIGURED = [
    pytest.param(
        "django-redis",
        {"CONNECTION_POOL_CLASS": f"{__name__}.WeirdPool"},
        "CONNECTION_POOL_CLASS",
        id="django-redis-pool-class",
    ),
    pytest.param(
        "django-redis",
        {"CONNECTION_POOL_KWARGS": {"connection_class": WeirdConnection}},
        "connection_class",
        id="django-redis-connection-class",
    ),
    pytest.param("builtin", {"pool_class": WeirdPool}, "pool_class", id="builtin-pool-class"),
    pytest.param(
        "builtin", {"connection_class": WeirdConnection}, "connection_class", id="builtin-conn"
    ),
]
WEIRD_ALIAS = "weird_redis"


@contextlib.contextmanager
def weird(backend: str, url: str, options: dict[str, Any]) -> Iterator[None]:
    config = (django_redis if backend == "django-redis" else builtin)(url, **options)
    caches = {"default": LOCMEM, WEIRD_ALIAS: config}
    with override_settings(CACHES=caches, ASYNC_CBV={"CACHE_ALIAS": WEIRD_ALIAS}):
        yield


@pytest.mark.django_db  # Django 6.1's model checks query the database
@pytest.mark.parametrize(("backend", "options", "option"), MISCONFIGURED)
def test_e015_connection_option_the_library_cannot_reproduce(
    backend: str, options: dict[str, Any], option: str, redis_url: str
) -> None:
    """manage.py check: an Error django_async_cbv.E015 naming the alias and the option."""
    with weird(backend, redis_url, options):
        errors = [m for m in run_checks() if m.id == "django_async_cbv.E015"]
    assert len(errors) == 1, errors
    assert WEIRD_ALIAS in errors[0].msg
    assert option in errors[0].msg


@pytest.mark.parametrize(("backend", "options", "option"), MISCONFIGURED)
async def test_cached_view_on_a_configuration_the_library_cannot_reproduce(
    backend: str,
    options: dict[str, Any],
    option: str,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An ASGI server runs no checks: the view answers uncached, never a 500, and the
    ImproperlyConfigured naming the alias and the option is logged as an error."""
    with weird(backend, redis_url, options), caplog.at_level("ERROR", "django_async_cbv"):
        url, _ = cached_view(alias=WEIRD_ALIAS)
        request = AsyncRequestFactory().get(url)
        response = await resolve(url).func(request)
    assert response.status_code == 200
    assert response["X-Cache"] == "BYPASS"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(WEIRD_ALIAS in message and option in message for message in errors), errors


# -- the harness itself (redis-py only: these must keep passing) ---------------------------------


async def test_harness_trickle_proxy_slows_replies_down_only_when_asked(
    trickle_proxy: TrickleProxy,
) -> None:
    """Full speed, then a trickle: small replies keep arriving, a 64 KiB one (about
    1024 chunks of 20 ms) outlasts a 1 s timeout of redis-py's asyncio client."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(trickle_proxy.url, socket_timeout=1)
    try:
        await client.set("big", b"x" * 65536)
        assert len(await client.get("big") or b"") == 65536
        trickle_proxy.trickle = True
        start = time.monotonic()
        assert await client.ping() is True
        with pytest.raises(redis.TimeoutError):
            await client.get("big")
        assert time.monotonic() - start < 2
    finally:
        await client.aclose()
