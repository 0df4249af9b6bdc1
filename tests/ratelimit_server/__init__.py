"""A tiny Django project that tests/test_ratelimit_processes.py serves with real uvicorn
processes, so that several processes share one Redis as they would in production.

Configured by environment variables (see ``settings``). The test process imports
only this package (for the secret key), never the settings.
"""

#: The servers' SECRET_KEY, which keys the HMAC of the budgets' names in Redis.
SECRET_KEY = "django-async-cbv-ratelimit-test-server"
