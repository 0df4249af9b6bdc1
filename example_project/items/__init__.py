"""A JSON API over a small catalogue of items, served by ``AsyncAPIView``."""
