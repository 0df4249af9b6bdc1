"""Code examples included in the documentation; every one is run by tests/test_docs.py."""
