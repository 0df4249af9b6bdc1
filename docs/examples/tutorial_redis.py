"""Lines the tutorial adds at the end of mysite/settings.py for several processes."""

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    },
}

ASYNC_CBV = {
    "CIRCUIT_BREAKERS": {
        # "storage": one state for every process, kept in the "default" cache.
        "warehouse": {"failure_threshold": 2, "recovery_timeout": 30, "storage": "default"},
    },
}
