"""Rate strings, and the rate limiter's Redis scripts on a real Redis (internal core)."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
import redis.asyncio

from django_async_cbv._redis import async_redis_for_alias
from django_async_cbv.ratelimit.rates import MAX_COUNT, MAX_PERIOD, Rate, parse_rate, parse_rates
from django_async_cbv.ratelimit.redis_limiter import ALGORITHMS, Decision, RedisLimiter, redis_keys

S = 1_000_000  # microseconds per second
# A fake clock start on a day boundary (so on every period boundary of these tests).
T0 = 1_700_006_400 * S
ALGOS = sorted(ALGORITHMS)

# ---------------------------------------------------------------------------- rates


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("1/s", 1, 1),
        ("100/m", 100, 60),
        ("100/5m", 100, 300),
        ("5/2s", 5, 2),
        ("60/h", 60, 3600),
        ("7/1d", 7, 86400),
        ("3/365d", 3, MAX_PERIOD),
        (f"{MAX_COUNT}/s", MAX_COUNT, 1),
        ("10/10s", 10, 10),
    ],
)
def test_parse_rate_accepts(text: str, count: int, period: int) -> None:
    assert parse_rate(text) == Rate(count=count, period=period, text=text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "100",
        "100/",
        "/m",
        " 100/m",
        "100/m ",
        "100 /m",
        "100/ m",
        "100/m\n",
        "0/m",
        "100/0m",
        "-1/m",
        "100/-1m",
        "+1/m",
        "1.5/m",
        "1/1.5m",
        "1e3/m",
        "100/w",
        "100/M",
        "100/min",
        "100/sec",
        "100/ms",
        "01/m",
        "1/01m",
        "1/m/m",
        "1_000/m",
        "\u0661/m",  # an Arabic-Indic digit one: int() would accept it
        "1/366d",
        "1/31536001s",
        f"{MAX_COUNT + 1}/s",
        "9" * 13 + "/s",
        "1/" + "9" * 13 + "s",
        "9" * 5000 + "/s",
    ],
)
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="Invalid rate") as info:
        parse_rate(text)
    message = str(info.value)
    assert '"<count>/<period>"' in message
    if len(text) < 100:
        assert repr(text) in message


@pytest.mark.parametrize("value", [None, 100, 1.5, b"100/m", ["100/m", 5]])
def test_parse_rate_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="Invalid rate"):
        parse_rates(value)


def test_parse_rates() -> None:
    assert parse_rates("100/m") == (Rate(100, 60, "100/m"),)
    assert parse_rates(["10/s", "100/5m"]) == (Rate(10, 1, "10/s"), Rate(100, 300, "100/5m"))
    assert parse_rates(("10/s",)) == (Rate(10, 1, "10/s"),)
    # the same count with another period, or another count with the same period, is fine
    assert len(parse_rates(["10/m", "10/h", "20/h"])) == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "empty"),
        ((), "empty"),
        (["10/m", "10/m"], "'10/m' is repeated"),
        (["60/m", "60/60s"], "'60/60s' means the same as '60/m'"),
        (["1/h", "5/m", "1/60m"], "'1/60m' means the same as '1/h'"),
        (["10/m", "bad"], "'bad'"),
        ({"10/m"}, "expected a rate string or a list"),
    ],
)
def test_parse_rates_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_rates(value)


# ---------------------------------------------------------------------------- helpers


class Client:
    """One client identity checked against the real Redis, on a fake clock by default."""

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        rates: str | list[str],
        algorithm: str,
        identity: str = "203.0.113.7",
    ) -> None:
        self.redis = redis_client
        self.rates = parse_rates(rates)
        self.algorithm = algorithm
        self.identity = identity
        self.limiter = RedisLimiter()

    async def check(self, now_us: int | None) -> Decision:
        return await self.limiter.check(
            self.redis, "rl:test", self.identity, self.rates, self.algorithm, now_us=now_us
        )

    async def admitted(self, now_us: int | None, times: int = 1) -> int:
        return sum([(await self.check(now_us)).allowed for _ in range(times)])


@pytest.fixture
def client_for(async_redis_client: redis.asyncio.Redis) -> Any:
    def make(rates: str | list[str], algorithm: str, identity: str = "203.0.113.7") -> Client:
        return Client(async_redis_client, rates, algorithm, identity)

    return make


# ---------------------------------------------------------------------------- counts


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_exactly_count_admitted_in_one_period(client_for: Any, algorithm: str) -> None:
    client = client_for("5/m", algorithm)
    decisions = [await client.check(T0 + i * S) for i in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions] == [(4,), (3,), (2,), (1,), (0,), (0,), (0,), (0,)]
    assert all(d.retry_after == 0 for d in decisions[:5])
    assert all(d.retry_after >= 1 for d in decisions[5:])


@pytest.mark.redis
async def test_identities_and_prefixes_have_their_own_budgets(
    async_redis_client: redis.asyncio.Redis,
) -> None:
    limiter = RedisLimiter()
    rates = parse_rates("1/m")
    for algorithm in ALGOS:
        for prefix, identity in [("a", "x"), ("a", "y"), ("b", "x")]:
            first = await limiter.check(async_redis_client, prefix, identity, rates, algorithm)
            second = await limiter.check(async_redis_client, prefix, identity, rates, algorithm)
            assert (first.allowed, second.allowed) == (True, False)


@pytest.mark.redis
async def test_sliding_window_boundary_is_exact(client_for: Any) -> None:
    client = client_for("3/m", "sliding_window")
    t1 = T0 + 123_457
    assert await client.admitted(t1) == 1
    assert await client.admitted(t1 + 20 * S, 2) == 2
    assert await client.admitted(t1 + 60 * S - 1) == 0  # the first is still in the window
    assert await client.admitted(t1 + 60 * S) == 1  # exactly one period later: it left
    assert await client.admitted(t1 + 60 * S) == 0
    assert await client.admitted(t1 + 80 * S - 1) == 0
    assert await client.admitted(t1 + 80 * S, 3) == 2  # the two of t1+20s left
    # at no instant did an interval of one period hold more than 3 admissions


@pytest.mark.redis
async def test_fixed_window_allows_twice_count_across_an_aligned_boundary(
    client_for: Any,
) -> None:
    client = client_for("3/m", "fixed_window")
    boundary = T0 + 60 * S  # T0 is minute-aligned (epoch-aligned windows)
    assert await client.admitted(boundary - 1, 5) == 3
    decision = await client.check(boundary - 1)
    assert not decision.allowed
    assert decision.retry_after == 1  # 1 microsecond, rounded up to a whole second
    assert await client.admitted(boundary, 5) == 3
    assert await client.admitted(boundary + 60 * S - 1) == 0
    assert await client.admitted(boundary + 60 * S) == 1


@pytest.mark.redis
async def test_fixed_window_reset_is_the_window_end(client_for: Any) -> None:
    client = client_for(["3/m", "10/h"], "fixed_window")
    decision = await client.check(T0 + 15 * S + 1)
    assert decision.reset == (45, 3585)
    assert decision.remaining == (2, 9)


@pytest.mark.redis
async def test_token_bucket_refills_one_token_per_period_over_count(client_for: Any) -> None:
    client = client_for("5/2s", "token_bucket")  # one token per 0.4 s
    assert await client.admitted(T0, 7) == 5
    decision = await client.check(T0)
    assert not decision.allowed
    assert decision.reset == (2,)
    assert await client.admitted(T0 + 400_000 - 1) == 0
    assert await client.admitted(T0 + 400_000) == 1
    assert await client.admitted(T0 + 400_000) == 0
    # half a token, then the other half: fractional tokens are kept
    assert await client.admitted(T0 + 600_000) == 0
    assert await client.admitted(T0 + 800_000 - 1) == 0
    assert await client.admitted(T0 + 800_000) == 1
    # a long pause refills to the capacity, no more
    assert await client.admitted(T0 + 3600 * S, 7) == 5


@pytest.mark.redis
async def test_token_bucket_reports_time_to_full(client_for: Any) -> None:
    client = client_for("10/m", "token_bucket")  # one token per 6 s
    decision = await client.check(T0)
    assert (decision.remaining, decision.reset) == ((9,), (6,))
    await client.admitted(T0, 3)
    decision = await client.check(T0 + 3 * S)  # 6 used, half a token back
    assert decision.remaining == (5,)
    assert decision.reset == (27,)  # 4.5 tokens missing, 6 s each


# ---------------------------------------------------------------------------- several rates


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_a_refusal_consumes_from_no_rate(client_for: Any, algorithm: str) -> None:
    client = client_for(["2/m", "10/h"], algorithm)
    assert await client.admitted(T0, 2) == 2
    for _ in range(5):
        decision = await client.check(T0 + S)
        assert not decision.allowed
        assert decision.remaining == (0, 8)  # the hour's budget was not spent
    assert await client.admitted(T0 + 60 * S, 3) == 2
    decision = await client.check(T0 + 60 * S)
    assert decision.remaining == (0, 6)


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_the_longer_rate_refusing_spares_the_shorter(client_for: Any, algorithm: str) -> None:
    client = client_for(["10/m", "3/h"], algorithm)
    assert await client.admitted(T0, 3) == 3
    for _ in range(4):
        decision = await client.check(T0 + S)
        assert not decision.allowed
        assert decision.remaining == (7, 0)


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_retry_after_covers_every_refusing_rate(client_for: Any, algorithm: str) -> None:
    client = client_for(["1/10s", "2/m"], algorithm)
    assert await client.admitted(T0) == 1
    assert await client.admitted(T0 + 10 * S) == 1  # now both rates refuse
    now = T0 + 10 * S + 1
    decision = await client.check(now)
    assert not decision.allowed
    at = now + decision.retry_after * S
    assert await client.admitted(at - S) == 0
    assert await client.admitted(at) == 1


# ---------------------------------------------------------------------------- retry_after


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("offset", [0, 1, 333_333, 999_999, 1_000_001])
async def test_retry_after_is_never_early(client_for: Any, algorithm: str, offset: int) -> None:
    client = client_for("3/10s", algorithm)
    assert await client.admitted(T0 + 7, 1) == 1
    assert await client.admitted(T0 + 1_500_000, 2) == 2
    now = T0 + 2_200_000 + offset
    decision = await client.check(now)
    assert not decision.allowed
    assert decision.retry_after >= 1
    assert await client.admitted(now + (decision.retry_after - 1) * S) == 0
    assert await client.admitted(now + decision.retry_after * S) == 1


@pytest.mark.redis
async def test_sliding_window_retry_after_is_when_the_oldest_leaves(client_for: Any) -> None:
    client = client_for("2/10s", "sliding_window")
    assert await client.admitted(T0 + 300_000) == 1
    assert await client.admitted(T0 + 4 * S) == 1
    decision = await client.check(T0 + 5 * S)
    assert (decision.allowed, decision.retry_after) == (False, 6)  # 5.3 s, rounded up
    assert decision.reset == (9,)  # the newest leaves at T0 + 14 s


# ---------------------------------------------------------------------------- keys


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_every_key_expires(
    async_redis_client: redis.asyncio.Redis, client_for: Any, algorithm: str
) -> None:
    rates = ["2/s", "3/m", "10/h"]
    await client_for(rates, algorithm).check(None)
    await client_for(rates, algorithm).check(T0)  # a fake clock far from the real one
    keys = [key async for key in async_redis_client.scan_iter()]
    assert len(keys) == 3 + (algorithm == "sliding_window")
    for key in keys:
        ttl = await async_redis_client.pttl(key)
        period = int(key.rsplit(b"/", 1)[1]) if b"/" in key else 3600
        assert 0 < ttl <= period * 1000 + 1000, (key, ttl)


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_raw_identity_never_reaches_redis(
    async_redis_client: redis.asyncio.Redis, client_for: Any, algorithm: str
) -> None:
    identities = ["198.51.100.23", "user:alice@example.com", "2001:db8:1::/64", "\udcff{}"]
    for identity in identities:
        await client_for(["5/m", "100/d"], algorithm, identity).check(None)
    keys = [key async for key in async_redis_client.scan_iter()]
    assert keys
    values: list[bytes] = []
    for key in keys:
        kind = await async_redis_client.type(key)
        if kind == b"zset":
            values += await async_redis_client.zrange(key, 0, -1)
        elif kind == b"string":
            values.append(await async_redis_client.get(key))
    blob = b"\n".join(keys + values)
    for identity in identities[:3]:
        assert identity.encode() not in blob
    assert b"alice" not in blob


def test_keys_of_one_check_share_one_hash_slot() -> None:
    rates = parse_rates(["1/s", "10/m", "100/h"])
    for algorithm in ALGOS:
        keys = redis_keys("rl:view.path", "198.51.100.23", rates, algorithm)
        tags = {re.search(r"\{([^}]*)\}", key)[1] for key in keys}  # type: ignore[index]
        assert len(tags) == 1
        assert len(tags.pop()) == 64
    other = redis_keys("rl:view.path", "198.51.100.24", rates, "sliding_window")
    assert set(other).isdisjoint(
        redis_keys("rl:view.path", "198.51.100.23", rates, "sliding_window")
    )


@pytest.mark.parametrize("prefix", ["rl:{x}", "rl:{", "rl:}"])
def test_a_prefix_with_braces_is_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="braces"):
        redis_keys(prefix, "x", parse_rates("1/s"), "fixed_window")


@pytest.mark.redis
async def test_bad_arguments_are_rejected(async_redis_client: redis.asyncio.Redis) -> None:
    limiter = RedisLimiter()
    rates = parse_rates("1/s")
    with pytest.raises(ValueError, match="Unknown rate limit algorithm 'leaky'"):
        await limiter.check(async_redis_client, "p", "x", rates, "leaky")
    with pytest.raises(ValueError, match="at least one rate"):
        await limiter.check(async_redis_client, "p", "x", (), "fixed_window")
    same = (*parse_rates("60/m"), *parse_rates("60/60s"))
    with pytest.raises(ValueError, match="same rate"):
        await limiter.check(async_redis_client, "p", "x", same, "fixed_window")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="now_us"):
            await limiter.check(async_redis_client, "p", "x", rates, "fixed_window", now_us=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- scripts


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_one_command_per_check_and_noscript_recovery(
    async_redis_client: redis.asyncio.Redis, client_for: Any, algorithm: str
) -> None:
    client = client_for("5/m", algorithm)
    await client.check(T0)  # loads the script if this server never saw it
    await async_redis_client.config_resetstat()
    assert await client.admitted(T0, 2) == 2
    stats = await async_redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 2
    assert "cmdstat_eval" not in stats

    await async_redis_client.script_flush()
    assert await client.admitted(T0) == 1  # NOSCRIPT, then EVAL
    assert await client.admitted(T0) == 1  # cached again by that EVAL
    assert await client.admitted(T0, 3) == 0
    stats = await async_redis_client.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] == 1


@pytest.mark.redis
@pytest.mark.parametrize("alias", ["default", "redis_builtin"])
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_works_on_the_client_of_a_cache_alias(alias: str, algorithm: str) -> None:
    client = async_redis_for_alias(alias)
    assert client is not None
    limiter = RedisLimiter()
    rates = parse_rates(["2/m", "5/h"])
    identity = f"id-{uuid.uuid4().hex}"
    # a fixed instant: on the real clock a fixed window may roll over between the checks
    decisions = [
        await limiter.check(client, "rl", identity, rates, algorithm, now_us=T0) for _ in range(3)
    ]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[1].remaining == (0, 3)


# ---------------------------------------------------------------------------- real clock


async def _wait_clear_of_minute_boundary(client: redis.asyncio.Redis) -> None:
    """Fixed windows: keep a real-clock burst inside one minute-aligned window."""
    seconds, micros = await client.time()
    into = seconds % 60 + micros / S
    if into > 55:
        await asyncio.sleep(60.2 - into)


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ALGOS)
async def test_concurrent_burst_admits_exactly_count(redis_db: str, algorithm: str) -> None:
    # redis-py's asyncio pool holds at most 100 connections unless told otherwise
    burst_client = redis.asyncio.Redis.from_url(redis_db, max_connections=200, socket_timeout=5)
    try:
        if algorithm == "fixed_window":
            await _wait_clear_of_minute_boundary(burst_client)
        client = Client(burst_client, "50/m", algorithm)
        decisions = await asyncio.gather(*(client.check(None) for _ in range(200)))
    finally:
        await burst_client.aclose()
    assert sum(d.allowed for d in decisions) == 50
    refused = [d for d in decisions if not d.allowed]
    assert all(1 <= d.retry_after <= 60 for d in refused)
    if algorithm != "token_bucket":  # a refill of a fraction of a token may blur these
        assert sorted(d.remaining[0] for d in decisions if d.allowed) == list(range(50))
