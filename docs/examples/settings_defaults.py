"""The ``ASYNC_CBV`` setting with every key at its default value."""

ASYNC_CBV = {
    "CACHE_ALIAS": "default",
    "NUM_PROXIES": 0,
    "RATE_LIMIT_FAIL_OPEN": True,
    "CIRCUIT_BREAKERS": {},
}
