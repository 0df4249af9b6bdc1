"""Every block, and Django's own cache API, on a real Redis Cluster (three primaries, one
replica each: ``tests/redis_cluster.py``), through the ``CACHES`` entry of docs/redis.md.

What is asserted:

- Django's ``cache`` API (``get``/``set``/``add``/``delete``/``incr``/``get_many``/
  ``set_many``/``delete_many``/``touch``/``clear``) and ``cache_page`` work on the entry;
- a cached view: ``MISS`` then ``HIT``, the hit one command (``EVALSHA``) on one
  primary, every key of the view in one hash slot; invalidation turns it into a miss;
- each rate limit algorithm counts exactly, its keys in one slot; a shared breaker
  opens for every breaker object of its name;
- a view's slot moved to another primary while it is served: ``BYPASS`` while the
  slot migrates (``TRYAGAIN``), a command for a moved key follows ``ASK``, the hit
  follows ``MOVED`` once the slot is handed over, then goes straight to the new
  primary;
- a primary killed mid-test: every answer in between is a 200 (``BYPASS``, a
  fail-open rate limit), never a 500; once its replica is promoted, the blocks work
  again on the new primary (whose script cache is empty: ``NOSCRIPT``, then ``EVAL``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import clear_url_caches, path, resolve
from django.views.decorators.cache import cache_page
from docs.examples import settings_redis

from django_async_cbv import CircuitBreaker, _redis
from django_async_cbv.checks import check_redis_caches
from tests import test_redis_configs as configs
from tests.redis_cluster import RedisCluster, SlotMove
from tests.redis_topologies import client_for

pytestmark = [pytest.mark.redis, pytest.mark.urls("tests.test_redis_configs")]

ALIAS = configs.ALIAS


@pytest.fixture
def cluster(redis_cluster: RedisCluster, fresh_redis_state: None) -> Iterator[RedisCluster]:
    """The session's cluster, emptied, as the ``redis`` alias (and ``default``)."""
    redis_cluster.flushall()
    entry = settings_redis.cluster(redis_cluster.url)["default"]
    with override_settings(CACHES={"default": entry, ALIAS: entry}):
        yield redis_cluster


@pytest.fixture
def where(cluster: RedisCluster) -> Iterator[redis.RedisCluster]:
    client = cluster.cluster_client()
    yield client
    client.close()


def route_function(view: Any) -> str:
    """Route a function view at a fresh URL of the configs URLconf; return the URL."""
    url = f"f{next(configs._made)}/"
    configs._routes.append(path(url, view))
    configs.urlpatterns[:] = list(configs._routes)
    clear_url_caches()
    return "/" + url


def slots_of(client: redis.RedisCluster, keys: list[str]) -> set[int]:
    return {client.keyslot(key) for key in keys}


def commands_on_primaries(cluster: RedisCluster) -> dict[int, dict[str, int]]:
    """Per primary, the commands it ran (``INFO commandstats``: the calls a script makes
    count too), the test's own (HELLO, INFO, CONFIG, CLUSTER, CLIENT) and the replicas'
    (REPLCONF ACK each second, PSYNC/SYNC on a reconnect) left out."""
    counts: dict[int, dict[str, int]] = {}
    for port in cluster.primaries():
        client = client_for(port)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        counts[port] = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name.removeprefix("cmdstat_").split("|")[0] not in _TOOLING
        }
    return counts


_TOOLING = frozenset(
    {"hello", "info", "config", "cluster", "client", "ping", "replconf", "psync", "sync"}
)


def reset_stats(cluster: RedisCluster) -> None:
    for port in cluster.primaries():
        client = client_for(port)
        try:
            client.config_resetstat()
        finally:
            client.close()


def test_django_cache_api(cluster: RedisCluster, where: redis.RedisCluster) -> None:
    cache = caches["default"]
    cache.set("a", {"x": 1}, 30)
    assert cache.get("a") == {"x": 1}
    assert cache.add("a", 2) is False
    assert cache.incr("n", 1) if cache.add("n", 1) else False
    assert cache.get("n") == 2
    assert cache.incr("n", 5) == 7
    many = {f"k{i}": i for i in range(20)}  # keys of many slots
    cache.set_many(many, 30)
    assert len(slots_of(where, [cache.make_key(k) for k in many])) > 1
    assert cache.get_many([*list(many), "missing"]) == many
    assert cache.touch("a", 60) is True
    assert 0 < where.ttl(cache.make_key("a")) <= 60
    cache.delete_many(list(many))
    assert cache.get_many(list(many)) == {}
    assert cache.delete("a") is True
    assert cache.get("a") is None
    cache.set("b", 1)
    cache.clear()
    assert cache.get("b") is None
    assert cache.get("n") is None


def test_keys_reads_every_primary(cluster: RedisCluster, where: redis.RedisCluster) -> None:
    """``keys`` (KEYS) names the matching keys of every primary, as ``iter_keys`` does."""
    cache = caches["default"]
    many = {f"k{i}": i for i in range(20)}
    cache.set_many(many, 30)
    assert len({where.get_node_from_key(cache.make_key(k)).name for k in many}) == 3
    assert sorted(cache.keys("k*")) == sorted(many)
    assert sorted(cache.iter_keys("k*")) == sorted(many)


def test_cache_page(cluster: RedisCluster) -> None:
    counted: list[int] = []

    @cache_page(30)
    def page(request: HttpRequest) -> HttpResponse:
        counted.append(1)
        return HttpResponse(f"run {len(counted)}")

    url = route_function(page)
    client = Client()
    first, second = client.get(url), client.get(url)
    assert first.content == second.content == b"run 1"
    assert len(counted) == 1


async def test_cache_miss_then_hit_in_one_command(
    cluster: RedisCluster, where: redis.RedisCluster
) -> None:
    url, name = configs.cached_view()
    miss = await configs.get(url)
    assert (miss.status_code, miss["X-Cache"]) == (200, "MISS")
    reset_stats(cluster)
    hit = await configs.get(url)
    assert (hit.status_code, hit["X-Cache"], hit.content) == (200, "HIT", miss.content)
    ran = {port: stats for port, stats in commands_on_primaries(cluster).items() if stats}
    # One command, on one primary: the lookup script (and the 4 GETs it makes).
    assert list(ran.values()) == [{"evalsha": 1, "get": 4}], ran
    assert configs.runs[name] == 1
    found = configs.keys(where, "*async_cbv:c:*")
    assert len(found) >= 3, found
    assert all("{" in key for key in found), found
    assert len(slots_of(where, found)) == 1, found  # one view: one slot


async def test_invalidation_on_the_cluster(cluster: RedisCluster) -> None:
    url, name = configs.cached_view()
    await configs.get(url)
    view = resolve(url).func.view_class  # type: ignore[attr-defined]
    await view.ainvalidate_cache()
    assert (await configs.get(url))["X-Cache"] == "MISS"
    view.invalidate_cache()
    assert (await configs.get(url))["X-Cache"] == "MISS"
    assert (await configs.get(url))["X-Cache"] == "HIT"
    assert configs.runs[name] == 3


@pytest.mark.parametrize("block", ["cache", "sliding_window", "token_bucket", "breaker"])
async def test_blocks(cluster: RedisCluster, where: redis.RedisCluster, block: str) -> None:
    await configs.exercise(block, where)
    assert check_redis_caches() == []  # no E015


async def test_fixed_window_and_key_slots(cluster: RedisCluster, where: redis.RedisCluster) -> None:
    for algorithm in ("fixed_window", "sliding_window", "token_bucket"):
        url = configs.limited_view(algorithm, "3/m")
        statuses = [(await configs.get(url)).status_code for _ in range(5)]
        assert statuses == [200] * 3 + [429] * 2
    found = configs.keys(where, "*async_cbv:rl*")
    assert len(found) == 4  # one per algorithm, and the sliding window's counter
    by_algorithm: dict[str, list[str]] = {}
    for key in found:
        by_algorithm.setdefault(key.split("}:")[1][:2], []).append(key)
    for group in by_algorithm.values():
        assert len(slots_of(where, group)) == 1, group


async def test_a_killed_primary_degrades_then_recovers(
    failover_redis_cluster: RedisCluster, fresh_redis_state: None
) -> None:
    cluster = failover_redis_cluster
    entry = settings_redis.cluster(cluster.url)["default"]
    with override_settings(CACHES={"default": entry, ALIAS: entry}):
        url, _name = configs.cached_view()
        limited = configs.limited_view("sliding_window", "1000/m")
        breaker = CircuitBreaker(configs.breaker_name(), storage=ALIAS)
        assert [(await configs.get(url))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
        where = cluster.cluster_client()
        try:
            key = configs.keys(where, "*async_cbv:c:*")[0]  # the view's only keys
        finally:
            where.close()
        dead = cluster.kill_primary_of(key)
        answers: list[tuple[int, str]] = []
        limits: list[int] = []
        # Until the replica is promoted (about 2 s), then until the blocks see it.
        deadline = time.monotonic() + 30
        promoted: int | None = None
        while time.monotonic() < deadline:
            response = await configs.get(url)
            limited_response = await configs.get(limited)
            answers.append((response.status_code, response.get("X-Cache", "")))
            limits.append(limited_response.status_code)
            # A failure while the store answered a moment ago is not "down" (see
            # _redis.health): the limiter may answer 503 then; never 500.
            assert limited_response.status_code in (200, 503), limited_response.content
            assert response.status_code == 200, response.content
            assert await breaker.call(configs.ok) == "ok"
            if promoted is None:
                promoted = cluster.promoted_replica(dead)
            elif response["X-Cache"] == "HIT":
                break
        assert promoted is not None, answers
        assert limits[-1] == 200, limits
        assert answers[-1] == (200, "HIT"), answers
        assert (200, "BYPASS") in answers, answers  # the cache was down for a while
        # The new primary had never run the scripts: NOSCRIPT, then EVAL, answered.
        client = client_for(promoted)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        assert stats["cmdstat_eval"]["calls"] >= 1


async def test_a_resharded_slot_is_followed(
    failover_redis_cluster: RedisCluster, fresh_redis_state: None
) -> None:
    cluster = failover_redis_cluster
    entry = settings_redis.cluster(cluster.url)["default"]
    with override_settings(CACHES={"default": entry, ALIAS: entry}):
        url, name = configs.cached_view()
        assert [(await configs.get(url))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
        where = cluster.cluster_client()
        try:
            key = configs.keys(where, "*async_cbv:c:*")[0]
            slot = where.keyslot(key)
        finally:
            where.close()
        source = cluster.primary_of(key)
        target = next(port for port in cluster.primaries() if port != source)
        move = SlotMove(cluster, slot, source, target)
        move.begin()
        # While the slot migrates, a lookup naming a missing key (the URL's pass key)
        # gets TRYAGAIN: served uncached at once, never an error.
        migrating = await configs.get(url)
        assert (migrating.status_code, migrating["X-Cache"]) == (200, "BYPASS")
        assert move.migrate_keys() >= 3
        reset_stats(cluster)
        # The source answers ASK for a moved key: redis-py asks the target.
        channel = _redis.channel_for(ALIAS, "cache")
        assert channel is not None
        assert await channel.execute("GET", key) is not None
        assert commands_on_primaries(cluster)[target].get("asking") == 1
        assert (await configs.get(url)).status_code == 200
        move.finish()
        moved = await configs.get(url)  # the source answers MOVED
        assert (moved.status_code, moved["X-Cache"]) == (200, "HIT")
        reset_stats(cluster)
        direct = await configs.get(url)  # the slot table knows the new owner
        assert (direct.status_code, direct["X-Cache"]) == (200, "HIT")
        ran = {port: stats for port, stats in commands_on_primaries(cluster).items() if stats}
        assert ran == {target: {"evalsha": 1, "get": 4}}, ran
        assert configs.runs[name] == 3  # the first MISS and the two uncached answers


def test_an_option_the_cluster_client_refuses_is_a_check_error(fresh_redis_state: None) -> None:
    """E015 names the option (no cluster needed: nothing connects)."""
    entry = settings_redis.cluster("redis://127.0.0.1:1/0")["default"]
    entry["OPTIONS"] = {**entry["OPTIONS"], "CONNECTION_POOL_KWARGS": {"no_such_option": 1}}
    with override_settings(CACHES={"default": entry}):
        errors = check_redis_caches()
    assert [e.id for e in errors] == ["django_async_cbv.E015"]
    assert "no_such_option" in errors[0].msg


@pytest.mark.parametrize("reply", ["MOVED", "ASK"])
async def test_a_burst_of_redirected_commands_takes_no_connection_each(
    failover_redis_cluster: RedisCluster, fresh_redis_state: None, reply: str
) -> None:
    """Commands in flight when their keys moved all get ``MOVED`` (the slot was handed
    over) or ``ASK`` (it is migrating): they are all answered, on the new primary's few
    connections, not on a connection each (past redis-py's 100 per node, the rest
    failed)."""
    cluster = failover_redis_cluster
    entry = settings_redis.cluster(cluster.url)["default"]
    with override_settings(CACHES={"default": entry, ALIAS: entry}):
        keys = [f"{{burst}}:{i}" for i in range(300)]
        where = cluster.cluster_client()
        try:
            for key in keys:
                where.set(key, key)
            slot = where.keyslot(keys[0])
        finally:
            where.close()
        channel = _redis.channel_for(ALIAS, "cache")
        assert channel is not None
        assert await channel.execute("GET", keys[0]) == keys[0].encode()  # table loaded
        source = cluster.primary_of(keys[0])
        target = next(port for port in cluster.primaries() if port != source)
        move = SlotMove(cluster, slot, source, target)
        move.begin()
        assert move.migrate_keys() == len(keys)
        if reply == "MOVED":
            move.finish()
        before = connections_received(target)
        replies = await asyncio.gather(
            *(channel.execute("GET", key) for key in keys), return_exceptions=True
        )
        assert replies == [key.encode() for key in keys], [
            r for r in replies if isinstance(r, BaseException)
        ][:3]
        # Besides the INFO calls: the channel's connection, and the cluster client's.
        assert connections_received(target) - before < 10


def connections_received(port: int) -> int:
    """How many connections the node accepted since it started (this one included)."""
    client = client_for(port)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


def _same_address(address: tuple[str, int]) -> tuple[str, int]:
    return address


@pytest.mark.parametrize(
    "option",
    [
        {"require_full_coverage": False},
        {"reinitialize_steps": 10},
        {"address_remap": _same_address},
    ],
    ids=lambda option: next(iter(option)),
)
async def test_options_of_the_cluster_client_alone(
    cluster: RedisCluster, option: dict[str, Any]
) -> None:
    """``RedisCluster``'s own options in CONNECTION_POOL_KWARGS (which the factory passes
    to it) are valid, and the blocks' connections to each node do without them."""
    entry = settings_redis.cluster(cluster.url)["default"]
    entry["OPTIONS"] = {**entry["OPTIONS"], "CONNECTION_POOL_KWARGS": option}
    with override_settings(CACHES={"default": entry, ALIAS: entry}):
        assert check_redis_caches() == []
        url, _name = configs.cached_view()
        assert [(await configs.get(url))["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]


def test_the_library_classes_by_any_path_are_a_cluster(fresh_redis_state: None) -> None:
    from django_async_cbv.redis_cluster import ClusterClient, ClusterConnectionFactory

    entry = settings_redis.cluster("redis://127.0.0.1:1/0")["default"]
    for options in (
        {"CLIENT_CLASS": ClusterClient, "CONNECTION_FACTORY": ClusterConnectionFactory},
        {"CONNECTION_FACTORY": "django_async_cbv.redis_cluster.ClusterConnectionFactory"},
    ):
        with override_settings(CACHES={"default": {**entry, "OPTIONS": options}}):
            assert _redis.is_cluster_alias("default")
    with override_settings(CACHES={"default": {**entry, "OPTIONS": {}}}):
        assert _redis.is_redis_alias("default")
        assert not _redis.is_cluster_alias("default")
