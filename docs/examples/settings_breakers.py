"""Settings for named circuit breakers, one of them shared by every process in Redis."""

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1},
    },
}

ASYNC_CBV = {
    "CIRCUIT_BREAKERS": {
        # One state for all processes and hosts, kept in the "default" Redis cache.
        "payments": {"failure_threshold": 5, "recovery_timeout": 30, "storage": "default"},
        # Per process: each process counts its own failures.
        "search": {"failure_threshold": 10, "recovery_timeout": 5, "half_open_max_calls": 3},
    },
}
