"""Settings for rate limiting behind one reverse proxy, with counters in Redis."""

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1},
    },
}

ASYNC_CBV = {
    "CACHE_ALIAS": "default",  # where the counters live (a view may name another)
    "NUM_PROXIES": 1,  # one proxy (e.g. nginx) in front: it appends the client's address
    "RATE_LIMIT_FAIL_OPEN": True,  # Redis down: admit requests (False: answer 503)
}
