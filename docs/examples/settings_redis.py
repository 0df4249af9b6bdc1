"""A production-style configuration: Redis for the cache, one proxy, a shared breaker."""

import os

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Keeps this site's keys apart when several sites share one Redis.
        "KEY_PREFIX": "shop",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
}

ASYNC_CBV = {
    "CACHE_ALIAS": "default",
    # One load balancer in front: it appends the client's address to X-Forwarded-For.
    "NUM_PROXIES": 1,
    # If Redis is down, refuse rate-limited requests (503) instead of admitting them.
    "RATE_LIMIT_FAIL_OPEN": False,
    "CIRCUIT_BREAKERS": {
        "payments": {
            "failure_threshold": 5,
            "recovery_timeout": 30,
            # State shared by every process through this cache alias.
            "storage": "default",
        },
    },
}
