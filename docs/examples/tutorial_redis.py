"""Lines the tutorial adds at the end of mysite/settings.py, after settings_caches.py."""

ASYNC_CBV = {
    "CIRCUIT_BREAKERS": {
        # "storage": one state for every process, kept in the "default" cache.
        "warehouse": {"failure_threshold": 2, "recovery_timeout": 30, "storage": "default"},
    },
}
