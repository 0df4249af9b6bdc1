"""A tiny Django project that tests/test_cache_processes.py serves with real uvicorn
processes, so that several processes share one Redis cache as they would in production.

Configured by environment variables (see ``settings``); never imported by the test
process itself, which only starts servers and talks HTTP (and Redis) to them.
"""
