"""Lines the tutorial adds at the end of mysite/settings.py."""

# ruff: noqa: F821 (the settings that startproject wrote define what these lines extend)

INSTALLED_APPS += ["django_async_cbv", "catalog"]

# The stock service the tutorial calls; in production, the real service's URL.
WAREHOUSE_URL = "http://127.0.0.1:8001"

ASYNC_CBV = {
    "CIRCUIT_BREAKERS": {
        # Two failures in a row open the circuit; after 30 seconds one request probes.
        "warehouse": {"failure_threshold": 2, "recovery_timeout": 30},
    },
}
