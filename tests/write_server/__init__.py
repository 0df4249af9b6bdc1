"""A small project served by uvicorn for the concurrent conditional-write tests."""
