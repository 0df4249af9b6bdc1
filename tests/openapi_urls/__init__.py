"""URLconfs and views for the OpenAPI tests (tests/test_openapi.py)."""
